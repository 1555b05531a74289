/* The balance read path: the cache when coherent, else the ledger. */
#include "balance.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "pgpart.h"

#define BALANCE_HOLDS_MAX 4096

/* One statement, one snapshot: the account and its open holds. */
static const char sql_account[] =
	"SELECT a.currency, a.balance, a.held, a.external, a.version, h.txn, h.amount, h.debit "
	"FROM accounts a LEFT JOIN open_holds h ON h.account = a.id "
	"WHERE a.id = $1";
static const char sql_decided[] =
	"SELECT txn, commit FROM decisions WHERE txn = ANY($1::bigint[])";

int balance_reader_init(struct balance_reader *r, const char *shards, const char *ledger_dsns,
			const char *coord_dsn, struct cachestore *cache, const char *app)
{
	memset(r, 0, sizeof(*r));
	if (shardmap_parse(&r->shards, shards))
		return PAYTX_ECONFIG;
	r->ledger_dsns = ledger_dsns;
	r->coord_dsn = coord_dsn;
	r->cache = cache;
	r->app = app;
	return 0;
}

void balance_reader_finish(struct balance_reader *r)
{
	for (size_t i = 0; i < SHARD_MAX; i++)
		if (r->ledgers[i])
			PQfinish(r->ledgers[i]);
	if (r->coord)
		PQfinish(r->coord);
	memset(r->ledgers, 0, sizeof(r->ledgers));
	r->coord = NULL;
}

static int conn_get(PGconn **conn, const char *dsn, const char *app)
{
	if (*conn && pg_broken(*conn)) {
		PQfinish(*conn);
		*conn = NULL;
	}
	if (*conn)
		return 0;
	if (!dsn)
		return PAYTX_ECONFIG;
	return pg_connect(conn, dsn, app, NULL) ? PAYTX_EDB : 0;
}

void balance_apply_holds(struct cache_entry *e, int64_t *undecided, size_t nholds,
			 const int64_t *txns, const int64_t *amounts, const int64_t *debits,
			 size_t ndecided, const int64_t *decided, const bool *commit)
{
	*undecided = 0;
	for (size_t i = 0; i < nholds; i++) {
		size_t j = 0;
		while (j < ndecided && decided[j] != txns[i])
			j++;
		if (j == ndecided) {
			(*undecided)++;
			continue;
		}
		/* committed: what ledger_commit will do (post, release, bump);
		 * aborted: the debit is released, nothing posted */
		e->held -= debits[i];
		if (commit[j]) {
			e->balance += amounts[i];
			e->version++;
		}
	}
}

/* The decisions of txns[0..n) into decided/commit, *nd of them. */
static int read_decisions(struct balance_reader *r, const int64_t *txns, size_t n,
			  int64_t *decided, bool *commit, size_t *nd)
{
	*nd = 0;
	int err = conn_get(&r->coord, r->coord_dsn, r->app);
	if (err)
		return err;
	size_t cap = 2 + n * 21;
	char *arr = malloc(cap), *p = arr;
	if (!arr)
		return PAYTX_ENOMEM;
	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += snprintf(p, cap - (size_t)(p - arr), "%s%" PRId64, i ? "," : "", txns[i]);
	snprintf(p, cap - (size_t)(p - arr), "}");
	const char *params[] = { arr };
	PGresult *res = pg_query(r->coord, sql_decided, 1, params);
	free(arr);
	if (!res)
		return PAYTX_EDB;
	for (int i = 0; i < PQntuples(res) && *nd < n; i++) {
		if (pgpart_parse_int64(PQgetvalue(res, i, 0), &decided[*nd]))
			continue;
		commit[*nd] = strcmp(PQgetvalue(res, i, 1), "t") == 0;
		(*nd)++;
	}
	PQclear(res);
	return 0;
}

static int parse_account(PGresult *res, struct balance *out, int64_t *txns, int64_t *amounts,
			 int64_t *debits, size_t *nholds)
{
	struct cache_entry *e = &out->e;
	*nholds = 0;
	pgpart_copy_str(e->currency, sizeof(e->currency), PQgetvalue(res, 0, 0));
	e->external = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (pgpart_parse_int64(PQgetvalue(res, 0, 1), &e->balance) ||
	    pgpart_parse_int64(PQgetvalue(res, 0, 2), &e->held) ||
	    pgpart_parse_int64(PQgetvalue(res, 0, 4), &e->version))
		return PAYTX_EDB;
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, 5))
			continue;
		if (*nholds == BALANCE_HOLDS_MAX)
			return PAYTX_EDB;
		if (pgpart_parse_int64(PQgetvalue(res, i, 5), &txns[*nholds]) ||
		    pgpart_parse_int64(PQgetvalue(res, i, 6), &amounts[*nholds]) ||
		    pgpart_parse_int64(PQgetvalue(res, i, 7), &debits[*nholds]))
			return PAYTX_EDB;
		(*nholds)++;
	}
	return 0;
}

static int read_through(struct balance_reader *r, const char *account, struct balance *out,
			int64_t *txns, int64_t *amounts, int64_t *debits, bool *commit,
			int64_t *decided, size_t *nholds)
{
	size_t shard = shardmap_index(&r->shards, account);
	char dsn[1024];
	if (shard_dsn(r->ledger_dsns, r->shards.names[shard], dsn, sizeof(dsn)))
		return PAYTX_ECONFIG;
	int err = conn_get(&r->ledgers[shard], dsn, r->app);
	if (err)
		return err;
	const char *params[] = { account };
	PGresult *res = pg_query(r->ledgers[shard], sql_account, 1, params);
	if (!res)
		return PAYTX_EDB;
	err = PQntuples(res) == 0 ? PAYTX_ENOTFOUND
				  : parse_account(res, out, txns, amounts, debits, nholds);
	PQclear(res);
	if (err || *nholds == 0)
		return err;
	size_t nd;
	err = read_decisions(r, txns, *nholds, decided, commit, &nd);
	if (!err)
		balance_apply_holds(&out->e, &out->undecided, *nholds, txns, amounts, debits, nd,
				    decided, commit);
	return err;
}

int balance_read_through(struct balance_reader *r, const char *account, struct balance *out)
{
	if (!account || !paytx_id_valid(account, strlen(account)))
		return PAYTX_EINVAL;
	memset(out, 0, sizeof(*out));
	pgpart_copy_str(out->account, sizeof(out->account), account);
	out->source = BALANCE_FROM_LEDGER;
	size_t nholds = 0;
	int64_t *txns = calloc(4 * BALANCE_HOLDS_MAX, sizeof(int64_t));
	bool *commit = calloc(BALANCE_HOLDS_MAX, sizeof(bool));
	int err = PAYTX_ENOMEM;
	if (txns && commit)
		err = read_through(r, account, out, txns, txns + BALANCE_HOLDS_MAX,
				   txns + 2 * BALANCE_HOLDS_MAX, commit,
				   txns + 3 * BALANCE_HOLDS_MAX, &nholds);
	free(txns);
	free(commit);
	out->anchored = !err && nholds == 0;
	return err;
}

int balance_read(struct balance_reader *r, const char *account, struct balance *out)
{
	struct cache_lookup seen;
	bool looked = false;
	if (!account || !paytx_id_valid(account, strlen(account)))
		return PAYTX_EINVAL;
	if (r->cache && cachestore_lookup(r->cache, account, &seen) == 0) {
		looked = true;
		if (seen.hit) {
			memset(out, 0, sizeof(*out));
			pgpart_copy_str(out->account, sizeof(out->account), account);
			out->e = seen.entry;
			out->source = BALANCE_FROM_CACHE;
			out->anchored = true;
			return 0;
		}
	}
	int err = balance_read_through(r, account, out);
	if (err || !looked || !out->anchored || !seen.epoch[0] || seen.pending)
		return err;
	enum cache_install result;
	if (cachestore_install(r->cache, account, &seen, &out->e, &result) == 0)
		log_debug("cache: %s at version %" PRId64 ": %s", account, out->e.version,
			  result == CACHE_INSTALLED ? "installed"
			  : result == CACHE_NOT_NEWER ? "not newer" : "changed meanwhile");
	return 0;
}

/* Account creation for the benchmark, one statement per shard. */
#include "setup.h"

#include <stdio.h>
#include <string.h>

#include "pg.h"

/* "{id,id,...}" of the shard's accounts (ids need no quoting). */
static int id_array(const struct workload *w, size_t s, struct paytx_buf *out)
{
	int err = paytx_buf_append(out, "{", 1);
	for (size_t k = 0; !err && k < w->nby_shard[s]; k++) {
		const char *id = w->ids[w->by_shard[s][k]];
		err = (k && paytx_buf_append(out, ",", 1)) || paytx_buf_append(out, id, strlen(id));
	}
	return err || paytx_buf_append(out, "}", 1) ? PAYTX_ENOMEM : 0;
}

static int setup_shard(PGconn *c, const struct workload *w, size_t s)
{
	struct paytx_buf ids;
	char ext[PAYTX_ID_MAX + 1];
	paytx_buf_init(&ids);
	workload_external(w, s, ext, sizeof(ext));
	int err = id_array(w, s, &ids);
	const char *params[3] = { ids.data, w->cfg.currency, ext };
	PGresult *res = err ? NULL : pg_query(c,
		"SELECT count(*) FILTER (WHERE r <> 'created') FROM ("
		"  SELECT ledger_account_create(id, $2, false) AS r FROM unnest($1::text[]) id"
		"  UNION ALL SELECT ledger_account_create($3, $2, true)) x", 3, params);
	if (!err && (!res || strcmp(PQgetvalue(res, 0, 0), "0") != 0)) {
		fprintf(stderr, "paytx-bench: could not create the accounts on shard %zu\n", s);
		err = PAYTX_EDB;
	}
	PQclear(res);
	paytx_buf_finish(&ids);
	return err;
}

int setup_accounts(const struct shardmap *shards, const char *dsns, const struct workload *w)
{
	char dsn[1024];
	int err = 0;
	for (size_t s = 0; !err && s < shards->n; s++) {
		PGconn *c;
		if (shard_dsn(dsns, shards->names[s], dsn, sizeof(dsn)) != 0) {
			fprintf(stderr, "paytx-bench: PAYTX_LEDGER_DSNS has no entry for %s\n",
				shards->names[s]);
			return PAYTX_ECONFIG;
		}
		if (pg_connect(&c, dsn, "paytx-bench", NULL) != 0)
			return PAYTX_EDB;
		err = setup_shard(c, w, s);
		PQfinish(c);
	}
	return err;
}

/* Ledger invariants and outcome/journal agreement after a run. */
#include "ledgercheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "pg.h"

/* One bigint from a one-row query, or -1 on failure. */
static int64_t scalar(PGconn *c, const char *sql, const char *param)
{
	const char *params[1] = { param };
	PGresult *res = pg_query(c, sql, param ? 1 : 0, params);
	int64_t v = res && PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
	PQclear(res);
	return v;
}

static int open_all(const struct shardmap *shards, const char *dsns, PGconn **conns,
		    struct ledgercheck *out)
{
	char dsn[1024];
	for (size_t s = 0; s < shards->n; s++) {
		if (shard_dsn(dsns, shards->names[s], dsn, sizeof(dsn)) != 0) {
			snprintf(out->error, sizeof(out->error), "no DSN for %s in PAYTX_LEDGER_DSNS",
				 shards->names[s]);
			return PAYTX_ECONFIG;
		}
		if (pg_connect(&conns[s], dsn, "paytx-bench", NULL) != 0) {
			snprintf(out->error, sizeof(out->error), "cannot connect to %s",
				 shards->names[s]);
			return PAYTX_EDB;
		}
	}
	return 0;
}

static uint64_t open_holds(PGconn **conns, size_t n)
{
	uint64_t total = 0;
	for (size_t s = 0; s < n; s++) {
		int64_t h = scalar(conns[s], "SELECT count(*) FROM open_holds", NULL);
		total += h > 0 ? (uint64_t)h : 0;
	}
	return total;
}

/* Mark posted[seq] for every payment of this run with journal rows here. */
static int journal_payments(PGconn *c, const struct workload *w, uint8_t *posted, size_t n)
{
	char like[48], prefix[40];
	snprintf(prefix, sizeof(prefix), "b%s-p", w->run);
	snprintf(like, sizeof(like), "%s%%", prefix);
	const char *params[1] = { like };
	PGresult *res = pg_query(c, "SELECT DISTINCT payment_id FROM entries "
				    "WHERE payment_id LIKE $1", 1, params);
	if (!res)
		return PAYTX_EDB;
	for (int i = 0; i < PQntuples(res); i++) {
		uint64_t seq = strtoull(PQgetvalue(res, i, 0) + strlen(prefix), NULL, 10);
		if (seq < n)
			posted[seq] = 1;
	}
	PQclear(res);
	return 0;
}

static int check_shard(PGconn *c, const struct workload *w, struct ledgercheck *out,
		       uint8_t *posted, size_t n)
{
	int64_t sum = scalar(c, "SELECT coalesce(sum(balance), 0) FROM accounts "
				"WHERE currency = $1", w->cfg.currency);
	int64_t neg = scalar(c, "SELECT count(*) FROM accounts WHERE NOT external AND balance < 0",
			     NULL);
	int64_t bad = scalar(c, "SELECT count(*) FROM accounts a WHERE balance <> coalesce("
				"(SELECT sum(amount) FROM entries e WHERE e.account = a.id), 0)",
			     NULL);
	if (neg < 0 || bad < 0 || journal_payments(c, w, posted, n) != 0)
		return PAYTX_EDB;
	out->currency_sum += sum;
	out->negative += (uint64_t)neg;
	out->journal_mismatch += (uint64_t)bad;
	return 0;
}

int ledgercheck_run(const struct shardmap *shards, const char *ledger_dsns,
		    const struct workload *w, const struct driver_result *r, double settle_s,
		    struct ledgercheck *out)
{
	PGconn *conns[SHARD_MAX] = { 0 };
	uint8_t *posted = calloc(r->nstate + 1, 1);
	memset(out, 0, sizeof(*out));
	int err = posted ? open_all(shards, ledger_dsns, conns, out) : PAYTX_ENOMEM;
	int64_t until = clock_mono_ms() + (int64_t)(settle_s * 1000);
	while (!err && (out->open_holds = open_holds(conns, shards->n)) && clock_mono_ms() < until)
		clock_sleep_ms(100);
	for (size_t s = 0; !err && s < shards->n; s++)
		err = check_shard(conns[s], w, out, posted, r->nstate);
	if (err && !out->error[0])
		snprintf(out->error, sizeof(out->error), "a ledger query failed (see the log)");
	for (size_t i = 0; !err && i < r->nstate; i++) {
		if (r->state[i] == DS_COMMITTED && !posted[i])
			out->committed_unposted++;
		if ((r->state[i] == DS_ABORTED || r->state[i] == DS_REJECTED) && posted[i])
			out->posted_not_committed++;
	}
	out->ok = !err && out->currency_sum == 0 && !out->negative && !out->open_holds &&
		  !out->journal_mismatch && !out->committed_unposted && !out->posted_not_committed;
	for (size_t s = 0; s < shards->n; s++)
		PQfinish(conns[s]);
	free(posted);
	return err;
}

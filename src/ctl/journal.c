/* paytxctl journal: an account's posted entries, from its ledger shard. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "pg.h"

static void print_entries(const struct ctl *c, PGresult *r, const char *account,
			  const char *currency)
{
	int n = PQntuples(r);
	if (c->json) {
		printf("{\"account\":");
		ctl_json_string(account);
		printf(",\"currency\":\"%s\",\"entries\":[", currency);
		for (int i = 0; i < n; i++) {
			printf("%s{\"id\":%s,\"txn\":%s,\"payment_id\":", i ? "," : "",
			       PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
			if (PQgetisnull(r, i, 2))
				printf("null");
			else
				ctl_json_string(PQgetvalue(r, i, 2));
			printf(",\"amount\":%s,\"balance_after\":%s,\"posted_at\":\"%s\"}",
			       PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5));
		}
		printf("]}\n");
		return;
	}
	printf("%-10s %-8s %-28s %16s %16s  %s\n", "ENTRY", "TXN", "PAYMENT", "AMOUNT",
	       "BALANCE AFTER", "POSTED AT");
	for (int i = 0; i < n; i++)
		printf("%-10s %-8s %-28s %16s %16s  %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		       PQgetisnull(r, i, 2) ? "-" : PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
		       PQgetvalue(r, i, 4), PQgetvalue(r, i, 5));
	printf("%d entries of %s (%s)\n", n, account, currency);
}

int ctl_journal(struct ctl *c)
{
	if (c->argc != 1) {
		fprintf(stderr, "usage: paytxctl journal ACCOUNT [--limit N] "
				"(see paytxctl journal --help)\n");
		return CTL_USAGE;
	}
	int64_t limit = ctl_count_option("--limit", c->limit, 50, 1000000000);
	if (limit < 0)
		return CTL_USAGE;
	const char *account = c->argv[0];
	const char *shard = c->shards.names[shardmap_index(&c->shards, account)];
	PGconn *conn;
	int rc = ctl_open_db(&conn, ctl_ledger_dsn(c, shard), shard, "PAYTX_LEDGER_DSNS");
	if (rc)
		return rc;
	char lim[24];
	snprintf(lim, sizeof(lim), "%" PRId64, limit ? limit : INT64_MAX);
	const char *params[] = { account, lim };
	PGresult *acct = pg_query(conn, "SELECT currency FROM accounts WHERE id = $1", 1, params);
	PGresult *r = acct && PQntuples(acct) == 1 ? pg_query(conn,
		"SELECT id, txn, payment_id, amount, balance_after, "
		"to_char(posted_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF') FROM entries "
		"WHERE account = $1 ORDER BY id DESC LIMIT $2::bigint", 2, params) : NULL;
	if (!acct || (PQntuples(acct) == 1 && !r)) {
		rc = CTL_FAILED;
	} else if (PQntuples(acct) == 0) {
		fprintf(stderr, "paytxctl: no account %s\n", account);
		rc = CTL_NOT_FOUND;
	} else {
		print_entries(c, r, account, PQgetvalue(acct, 0, 0));
	}
	PQclear(r);
	PQclear(acct);
	PQfinish(conn);
	return rc;
}

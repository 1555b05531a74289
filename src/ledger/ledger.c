/* The ledger participant: reservations, postings and releases of one shard. */
#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

/* The steps are functions of sql/ledger.sql: the commits of a batch are
 * one call, its prepares another, each abort its own; a batch of them goes
 * in one pipeline (pgpart), so one round trip for the batch. */
static const struct pgpart_sql ledger_sql = {
	.prepare = "SELECT txn, vote, reason, detail FROM ledger_prepare_set($1, $2::jsonb)",
	.prepare_name = "paytx_ledger_prepare_set",
	.prepare_set = true,
	.commit = "SELECT txn, outcome FROM ledger_commit($1::bigint[], $2)",
	.commit_name = "paytx_ledger_commit_set",
	.commit_set = true,
	.abort = "SELECT ledger_abort($1::bigint, $2, NULL)",
	.abort_name = "paytx_ledger_abort",
	.in_doubt = "SELECT txn FROM ledger_in_doubt($1, $2::bigint, $3::integer) AS t(txn)",
};
static const char sql_account_create[] = "SELECT ledger_account_create($1, $2, $3::boolean)";
static const char sql_account_get[] =
	"SELECT currency, balance, held, external, version FROM accounts WHERE id = $1";

/* Its steps are SQL functions: pgpart is all of its SDK callbacks. */
const struct paytx_participant_ops ledger_ops = PGPART_OPS;

static bool currency_valid(const char *c)
{
	for (int i = 0; i < 3; i++)
		if (c[i] < 'A' || c[i] > 'Z')
			return false;
	return c[3] == '\0';
}

int ledger_init(struct ledger *l, PGconn *conn, const char *participant)
{
	return pgpart_init(&l->pg, conn, "ledger", participant, &ledger_sql);
}

void ledger_finish(struct ledger *l)
{
	if (l)
		pgpart_finish(&l->pg);
}

int ledger_account_create(struct ledger *l, const char *id, const char *currency,
			  bool external)
{
	if (!id || !paytx_id_valid(id, strlen(id)) || !currency || !currency_valid(currency) ||
	    l->pg.in_batch)
		return PAYTX_EINVAL;
	const char *params[] = { id, currency, external ? "true" : "false" };
	PGresult *res = pg_query(l->pg.conn, sql_account_create, 3, params);
	if (!res)
		return PAYTX_EDB;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		log_error("ledger: unexpected result shape from ledger_account_create");
		PQclear(res);
		return PAYTX_EDB;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	int err = strcmp(outcome, "conflict") == 0 ? PAYTX_ECONFLICT : 0;
	if (err)
		log_warn("ledger: account %s exists with another currency or kind", id);
	else if (strcmp(outcome, "created") == 0)
		log_info("ledger: account %s created (%s%s)", id, currency,
			 external ? ", external" : "");
	PQclear(res);
	return err;
}

int ledger_account_get(struct ledger *l, const char *id, struct ledger_account *out)
{
	if (!id || !paytx_id_valid(id, strlen(id)))
		return PAYTX_EINVAL;
	const char *params[] = { id };
	PGresult *res = pg_query(l->pg.conn, sql_account_get, 1, params);
	if (!res)
		return PAYTX_EDB;
	int err = PQntuples(res) == 1 ? 0 : PAYTX_ENOTFOUND;
	if (!err) {
		memset(out, 0, sizeof(*out));
		pgpart_copy_str(out->id, sizeof(out->id), id);
		pgpart_copy_str(out->currency, sizeof(out->currency), PQgetvalue(res, 0, 0));
		out->external = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
		if (pgpart_parse_int64(PQgetvalue(res, 0, 1), &out->balance) ||
		    pgpart_parse_int64(PQgetvalue(res, 0, 2), &out->held) ||
		    pgpart_parse_int64(PQgetvalue(res, 0, 4), &out->version))
			err = PAYTX_EDB;
	}
	PQclear(res);
	return err;
}

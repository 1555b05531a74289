/* The risk participant: limit checks, reservations and their release. */
#include "risk.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

/* Every step is one call of a function of sql/risk.sql; a batch of them
 * goes in one pipeline (pgpart). */
static const struct pgpart_sql risk_sql = {
	.prepare = "SELECT vote, reason, detail FROM risk_prepare($1::bigint, $2, $3, $4::jsonb)",
	.prepare_name = "paytx_risk_prepare",
	.commit = "SELECT risk_commit($1::bigint, $2)",
	.commit_name = "paytx_risk_commit",
	.abort = "SELECT risk_abort($1::bigint, $2, NULL)",
	.abort_name = "paytx_risk_abort",
	.in_doubt = "SELECT txn FROM risk_in_doubt($1, $2::bigint, $3::integer) AS t(txn)",
};
static const char sql_limit_set[] =
	"INSERT INTO limits (account, currency, per_payment, daily) "
	"VALUES ($1, $2, $3::bigint, $4::bigint) ON CONFLICT (account, currency) DO UPDATE "
	"SET per_payment = EXCLUDED.per_payment, daily = EXCLUDED.daily, updated_at = now()";
static const char sql_limit_remove[] = "DELETE FROM limits WHERE account = $1 AND currency = $2";
/* The account's own row, else the default row; and today's usage. */
static const char sql_limit_get[] =
	"SELECT l.account, coalesce(l.per_payment, -1), coalesce(l.daily, -1), d.day, "
	"coalesce(u.committed, 0), coalesce(u.reserved, 0) "
	"FROM (SELECT (now() AT TIME ZONE 'UTC')::date AS day) d "
	"LEFT JOIN LATERAL (SELECT * FROM limits WHERE currency = $2 AND account IN ($1, '*') "
	"ORDER BY account = '*' LIMIT 1) l ON true "
	"LEFT JOIN daily_usage u ON u.account = $1 AND u.currency = $2 AND u.day = d.day";

static bool limit_account_valid(const char *account)
{
	return account && (strcmp(account, RISK_DEFAULT_ACCOUNT) == 0 ||
			   paytx_id_valid(account, strlen(account)));
}

static bool currency_valid(const char *c)
{
	if (!c || strlen(c) != 3)
		return false;
	for (int i = 0; i < 3; i++)
		if (c[i] < 'A' || c[i] > 'Z')
			return false;
	return true;
}

/* Its steps are SQL functions: pgpart is all of its SDK callbacks. */
const struct paytx_participant_ops risk_ops = PGPART_OPS;

int risk_init(struct risk *r, PGconn *conn, const char *participant)
{
	return pgpart_init(&r->pg, conn, "risk", participant, &risk_sql);
}

void risk_finish(struct risk *r)
{
	if (r)
		pgpart_finish(&r->pg);
}

int risk_limit_set(struct risk *r, const char *account, const char *currency,
		   int64_t per_payment, int64_t daily)
{
	if (!limit_account_valid(account) || !currency_valid(currency) || r->pg.in_batch ||
	    per_payment < RISK_NO_LIMIT || daily < RISK_NO_LIMIT)
		return PAYTX_EINVAL;
	char pp[24], dl[24];
	snprintf(pp, sizeof(pp), "%" PRId64, per_payment);
	snprintf(dl, sizeof(dl), "%" PRId64, daily);
	const char *params[] = { account, currency, per_payment == RISK_NO_LIMIT ? NULL : pp,
				 daily == RISK_NO_LIMIT ? NULL : dl };
	PGresult *res = pg_query(r->pg.conn, sql_limit_set, 4, params);
	if (!res)
		return PAYTX_EDB;
	PQclear(res);
	log_info("risk: limit of %s in %s set", account, currency);
	return 0;
}

int risk_limit_remove(struct risk *r, const char *account, const char *currency)
{
	if (!limit_account_valid(account) || !currency_valid(currency) || r->pg.in_batch)
		return PAYTX_EINVAL;
	const char *params[] = { account, currency };
	PGresult *res = pg_query(r->pg.conn, sql_limit_remove, 2, params);
	if (!res)
		return PAYTX_EDB;
	int err = strcmp(PQcmdTuples(res), "0") == 0 ? PAYTX_ENOTFOUND : 0;
	PQclear(res);
	return err;
}

int risk_limit_get(struct risk *r, const char *account, const char *currency,
		   struct risk_limit *out)
{
	if (!limit_account_valid(account) || !currency_valid(currency))
		return PAYTX_EINVAL;
	const char *params[] = { account, currency };
	PGresult *res = pg_query(r->pg.conn, sql_limit_get, 2, params);
	if (!res)
		return PAYTX_EDB;
	int err = PQntuples(res) == 1 ? 0 : PAYTX_EDB;
	if (!err) {
		memset(out, 0, sizeof(*out));
		out->found = !PQgetisnull(res, 0, 0);
		pgpart_copy_str(out->account, sizeof(out->account),
				out->found ? PQgetvalue(res, 0, 0) : account);
		pgpart_copy_str(out->currency, sizeof(out->currency), currency);
		pgpart_copy_str(out->day, sizeof(out->day), PQgetvalue(res, 0, 3));
		if (pgpart_parse_int64(PQgetvalue(res, 0, 1), &out->per_payment) ||
		    pgpart_parse_int64(PQgetvalue(res, 0, 2), &out->daily) ||
		    pgpart_parse_int64(PQgetvalue(res, 0, 4), &out->committed) ||
		    pgpart_parse_int64(PQgetvalue(res, 0, 5), &out->reserved))
			err = PAYTX_EDB;
	}
	PQclear(res);
	return err;
}

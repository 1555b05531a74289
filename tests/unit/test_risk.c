/* Unit tests of the risk participant (limits, reservations, barrier) against a real PostgreSQL. */
#include "unit.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "pgtest.h"
#include "risk.h"

#define PARTICIPANT "risk"

static const char *admin_dsn;   /* PAYTX_TEST_PG_DSN: superuser, any database */
static char test_dsn[2048];     /* the fresh database of this run */

/* Per test case: a risk participant, accounts and a currency of its own
 * (the default row is per currency), so cases never see each other's. */
static struct risk R;
static char alice[PAYTX_ID_MAX + 1], bob[PAYTX_ID_MAX + 1];
static char cur[4];

static int64_t scalar(const char *sql, const char *arg)
{
	const char *params[] = { arg };
	PGresult *res = pg_query(R.pg.conn, sql, arg ? 1 : 0, params);
	ck_assert_msg(res != NULL, "query failed: %s", sql);
	ck_assert_int_eq(PQntuples(res), 1);
	int64_t v = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static int64_t next_txn(void)
{
	return scalar("SELECT nextval('test_txn')", NULL);
}

static struct paytx_prepare transfer(int64_t txn, const char *from, const char *to,
				     int64_t amount)
{
	struct paytx_prepare p = { .txn = txn, .nlegs = 2, .deadline_ms = clock_wall_ms() + 5000 };
	snprintf(p.payment_id, sizeof(p.payment_id), "pay-%" PRId64, txn);
	snprintf(p.legs[0].account, sizeof(p.legs[0].account), "%s", from);
	snprintf(p.legs[1].account, sizeof(p.legs[1].account), "%s", to);
	p.legs[0].amount = -amount;
	p.legs[1].amount = amount;
	memcpy(p.legs[0].currency, cur, 4);
	memcpy(p.legs[1].currency, cur, 4);
	return p;
}

static struct paytx_vote prepare_alone(const struct paytx_prepare *p)
{
	struct paytx_vote v = { .txn = p->txn, .participant = PARTICIPANT };
	ck_assert_int_eq(risk_ops.batch_begin(&R), 0);
	ck_assert_int_eq(risk_ops.prepare(&R, p, &v), 0);
	ck_assert_int_eq(risk_ops.batch_commit(&R), 0);
	return v;
}

static int decide_alone(int64_t txn, bool commit)
{
	ck_assert_int_eq(risk_ops.batch_begin(&R), 0);
	int err = commit ? risk_ops.commit(&R, txn) : risk_ops.abort(&R, txn);
	ck_assert_int_eq(risk_ops.batch_commit(&R), 0);
	return err;
}

/* Prepare and decide a payment of amount from alice; returns the vote. */
static struct paytx_vote pay(int64_t amount, bool commit)
{
	struct paytx_prepare p = transfer(next_txn(), alice, bob, amount);
	struct paytx_vote v = prepare_alone(&p);
	ck_assert_int_eq(decide_alone(p.txn, v.yes && commit), 0);
	return v;
}

static struct risk_limit usage(const char *account)
{
	struct risk_limit l;
	ck_assert_int_eq(risk_limit_get(&R, account, cur, &l), 0);
	return l;
}

static void setup(void)
{
	PGconn *c;
	ck_assert_int_eq(pg_connect(&c, test_dsn, "test_risk", NULL), 0);
	ck_assert_int_eq(risk_init(&R, c, PARTICIPANT), 0);
	int64_t n = scalar("SELECT nextval('test_case')", NULL);
	snprintf(alice, sizeof(alice), "t%" PRId64 ".alice", n);
	snprintf(bob, sizeof(bob), "t%" PRId64 ".bob", n);
	snprintf(cur, sizeof(cur), "X%c%c", (char)('A' + n / 26 % 26), (char)('A' + n % 26));
}

static void teardown(void)
{
	risk_finish(&R);
}

START_TEST(test_payment_over_the_cap_votes_no_naming_the_limit)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, 1000, RISK_NO_LIMIT), 0);
	struct paytx_vote v = pay(1001, true);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "limit_exceeded");
	ck_assert_ptr_nonnull(strstr(v.detail, alice));
	ck_assert_ptr_nonnull(strstr(v.detail, "debits 1001"));
	ck_assert_ptr_nonnull(strstr(v.detail, "its per-payment limit of 1000"));
	ck_assert_int_eq(usage(alice).reserved, 0);
	ck_assert(pay(1000, true).yes);
	ck_assert_int_eq(usage(alice).committed, 1000);
}
END_TEST

START_TEST(test_daily_total_counts_committed_and_reserved)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, RISK_NO_LIMIT, 1000), 0);
	ck_assert(pay(600, true).yes);
	struct paytx_prepare held = transfer(next_txn(), alice, bob, 300);
	ck_assert(prepare_alone(&held).yes);
	struct risk_limit l = usage(alice);
	ck_assert_int_eq(l.committed, 600);
	ck_assert_int_eq(l.reserved, 300);
	struct paytx_vote v = pay(101, true);
	ck_assert(!v.yes);
	ck_assert_ptr_nonnull(strstr(v.detail, "has used 900 of its daily limit of 1000"));
	ck_assert_ptr_nonnull(strstr(v.detail, "(600 committed, 300 reserved)"));
	ck_assert_ptr_nonnull(strstr(v.detail, "needs 101"));
	ck_assert(pay(100, true).yes); /* exactly the total */
	ck_assert_int_eq(decide_alone(held.txn, true), 0);
	l = usage(alice);
	ck_assert_int_eq(l.committed, 1000);
	ck_assert_int_eq(l.reserved, 0);
	ck_assert(!pay(1, true).yes);
}
END_TEST

START_TEST(test_default_applies_to_accounts_without_their_own)
{
	ck_assert_int_eq(risk_limit_set(&R, RISK_DEFAULT_ACCOUNT, cur, 100, RISK_NO_LIMIT), 0);
	struct paytx_vote v = pay(101, true);
	ck_assert(!v.yes);
	ck_assert_ptr_nonnull(strstr(v.detail, "the default per-payment limit of 100"));
	/* an own row replaces the default as a whole: no limit at all here */
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, RISK_NO_LIMIT, RISK_NO_LIMIT), 0);
	ck_assert(pay(5000, true).yes);
	struct risk_limit l = usage(alice);
	ck_assert(l.found);
	ck_assert_str_eq(l.account, alice);
	ck_assert_int_eq(l.per_payment, RISK_NO_LIMIT);
	ck_assert_int_eq(risk_limit_remove(&R, alice, cur), 0);
	ck_assert_int_eq(risk_limit_remove(&R, alice, cur), PAYTX_ENOTFOUND);
	l = usage(alice);
	ck_assert_str_eq(l.account, RISK_DEFAULT_ACCOUNT);
	ck_assert_int_eq(l.per_payment, 100);
	ck_assert(!pay(101, true).yes);
}
END_TEST

START_TEST(test_unlimited_accounts_and_credits_pass_and_usage_is_kept)
{
	ck_assert(pay(1000000, true).yes); /* no row at all: nothing limited */
	struct risk_limit l = usage(alice);
	ck_assert(!l.found);
	ck_assert_int_eq(l.committed, 1000000);
	ck_assert_int_eq(usage(bob).committed, 0); /* credits are not counted */
	/* a daily limit set later in the day counts the day's earlier debits */
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, RISK_NO_LIMIT, 1000001), 0);
	ck_assert(!pay(2, true).yes);
	ck_assert(pay(1, true).yes);
}
END_TEST

START_TEST(test_abort_releases_the_reservation)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, RISK_NO_LIMIT, 500), 0);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 500);
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(usage(alice).reserved, 500);
	ck_assert(!pay(1, true).yes);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
	struct risk_limit l = usage(alice);
	ck_assert_int_eq(l.reserved, 0);
	ck_assert_int_eq(l.committed, 0);
	ck_assert(pay(500, true).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), PAYTX_EPROTO);
}
END_TEST

START_TEST(test_abort_before_prepare_votes_no)
{
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 10);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
	struct paytx_vote v = prepare_alone(&p);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "aborted");
	ck_assert_int_eq(usage(alice).reserved, 0);
	ck_assert_int_eq(decide_alone(p.txn, true), PAYTX_EPROTO);
}
END_TEST

START_TEST(test_duplicates_are_harmless)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, RISK_NO_LIMIT, 100), 0);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60);
	ck_assert(prepare_alone(&p).yes);
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(usage(alice).reserved, 60);
	struct paytx_prepare q = transfer(next_txn(), alice, bob, 60);
	struct paytx_vote first = prepare_alone(&q);
	ck_assert(!first.yes);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(usage(alice).committed, 60);
	struct paytx_vote again = prepare_alone(&q); /* the vote stands */
	ck_assert_str_eq(again.detail, first.detail);
	ck_assert_int_eq(decide_alone(q.txn, true), PAYTX_EPROTO);
	ck_assert_int_eq(decide_alone(q.txn, false), 0);
	ck_assert_int_eq(usage(alice).reserved, 0);
}
END_TEST

START_TEST(test_legs_on_one_account_are_merged)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, 100, RISK_NO_LIMIT), 0);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60);
	p.legs[2] = p.legs[0];
	p.legs[3] = p.legs[1];
	p.nlegs = 4; /* alice -60 twice: 120 in one payment */
	ck_assert(!prepare_alone(&p).yes);
	p = transfer(next_txn(), alice, bob, 60);
	p.legs[2] = p.legs[1];
	snprintf(p.legs[2].account, sizeof(p.legs[2].account), "%s", alice);
	p.legs[2].amount = 50;
	p.legs[1].amount = 10;
	p.nlegs = 3; /* alice -60 + 50: a net debit of 10 */
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(usage(alice).reserved, 10);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
}
END_TEST

/* Two replicas preparing at once: the second waits for the first's usage
 * row and then sees its reservation, so both cannot fit under the total. */
START_TEST(test_concurrent_prepares_cannot_both_fit)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, RISK_NO_LIMIT, 100), 0);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60);
	struct paytx_prepare q = transfer(next_txn(), alice, bob, 60);
	struct paytx_vote v = { .txn = p.txn };
	struct risk other;
	PGconn *c;
	ck_assert_int_eq(pg_connect(&c, test_dsn, "test_risk", NULL), 0);
	ck_assert_int_eq(risk_init(&other, c, PARTICIPANT), 0);
	ck_assert_int_eq(risk_ops.batch_begin(&R), 0);
	ck_assert_int_eq(risk_ops.prepare(&R, &p, &v), 0);

	char txn[24], pid[16], legs[512];
	snprintf(txn, sizeof(txn), "%" PRId64, q.txn);
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(other.pg.conn));
	snprintf(legs, sizeof(legs), "[{\"account\":\"%s\",\"amount\":-60,\"currency\":\"%s\"},"
		 "{\"account\":\"%s\",\"amount\":60,\"currency\":\"%s\"}]", alice, cur, bob, cur);
	const char *params[] = { txn, PARTICIPANT, q.payment_id, legs };
	ck_assert(PQsendQueryParams(other.pg.conn, "SELECT vote, detail FROM risk_prepare("
				    "$1::bigint, $2, $3, $4::jsonb)", 4, NULL, params, NULL, NULL, 0));
	const char *wait_sql = "SELECT count(*) FROM pg_locks WHERE pid = $1::int AND NOT granted";
	int64_t until = clock_mono_ms() + 10000;
	while (scalar(wait_sql, pid) == 0 && clock_mono_ms() < until)
		clock_sleep_ms(10);
	ck_assert_int_gt(scalar(wait_sql, pid), 0); /* it really waits */
	ck_assert_int_eq(risk_ops.batch_commit(&R), 0);
	ck_assert(v.yes);

	PGresult *res = PQgetResult(other.pg.conn);
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "f");
	ck_assert_ptr_nonnull(strstr(PQgetvalue(res, 0, 1), "has used 60"));
	PQclear(res);
	ck_assert_ptr_null(PQgetResult(other.pg.conn));
	risk_finish(&other);
	ck_assert_int_eq(usage(alice).reserved, 60);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
}
END_TEST

START_TEST(test_in_doubt_lists_old_yes_votes_only)
{
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 10);
	ck_assert(prepare_alone(&p).yes);
	int64_t txns[256];
	size_t n;
	bool seen = false;
	ck_assert_int_eq(risk_ops.in_doubt(&R, clock_wall_ms() + 1000, txns, 256, &n), 0);
	for (size_t i = 0; i < n; i++)
		seen = seen || txns[i] == p.txn;
	ck_assert(seen);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(risk_ops.in_doubt(&R, clock_wall_ms() + 1000, txns, 256, &n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert(txns[i] != p.txn);
}
END_TEST

START_TEST(test_limit_arguments_are_checked)
{
	ck_assert_int_eq(risk_limit_set(&R, "bad id", cur, 1, 1), PAYTX_EINVAL);
	ck_assert_int_eq(risk_limit_set(&R, alice, "usd", 1, 1), PAYTX_EINVAL);
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, -2, 1), PAYTX_EINVAL);
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, 0, 7), 0);
	struct risk_limit l = usage(alice);
	ck_assert_int_eq(l.per_payment, 0);
	ck_assert_int_eq(l.daily, 7);
	ck_assert_int_eq(strlen(l.day), 10);
}
END_TEST

START_TEST(test_migrate_is_idempotent)
{
	ck_assert_int_eq(risk_limit_set(&R, alice, cur, 5, RISK_NO_LIMIT), 0);
	ck_assert_int_eq(pg_migrate(R.pg.conn, schema_risk_sql), 0);
	ck_assert_int_eq(pg_migrate(R.pg.conn, schema_risk_sql), 0);
	ck_assert_int_eq(pg_schema_check(R.pg.conn, PG_SCHEMA_RISK, PG_SCHEMA_RISK_VERSION), 0);
	ck_assert_int_eq(usage(alice).per_payment, 5);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_payment_over_the_cap_votes_no_naming_the_limit),
		UNIT_CASE(test_daily_total_counts_committed_and_reserved),
		UNIT_CASE(test_default_applies_to_accounts_without_their_own),
		UNIT_CASE(test_unlimited_accounts_and_credits_pass_and_usage_is_kept),
		UNIT_CASE(test_abort_releases_the_reservation),
		UNIT_CASE(test_abort_before_prepare_votes_no),
		UNIT_CASE(test_duplicates_are_harmless),
		UNIT_CASE(test_legs_on_one_account_are_merged),
		UNIT_CASE(test_concurrent_prepares_cannot_both_fit),
		UNIT_CASE(test_in_doubt_lists_old_yes_votes_only),
		UNIT_CASE(test_limit_arguments_are_checked),
		UNIT_CASE(test_migrate_is_idempotent),
	};
	log_init("test_risk");
	if (!getenv("PAYTX_LOG_LEVEL"))
		(void)log_set_level_name("warn");
	char db[64];
	int status = pgtest_open("risk", schema_risk_sql,
				 "CREATE SEQUENCE test_txn; CREATE SEQUENCE test_case", &admin_dsn,
				 db, sizeof(db), test_dsn, sizeof(test_dsn));
	if (status)
		return status;
	status = UNIT_RUN("risk", cases, setup, teardown);
	pgtest_db_drop(admin_dsn, db);
	return status;
}

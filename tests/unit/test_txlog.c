/* Unit tests of the coordinator log (txlog.c) against a real PostgreSQL. */
#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "pgtest.h"
#include "txlog.h"
#include "unit.h"

static const char *admin_dsn;   /* PAYTX_TEST_PG_DSN: superuser, any database */
static char test_dsn[2048];     /* the fresh database of this run */

/* Per test case: two coordinators on the one log, names unique to the case. */
static struct txlog A, B;
static char prefix[32];
static int ncase;

static void open_log(struct txlog *l, const char *who, int64_t lease_ms)
{
	PGconn *c;
	char owner[64];
	ck_assert_int_eq(pg_connect_options(&c, test_dsn, "test_txlog", TXLOG_PG_OPTIONS, NULL), 0);
	snprintf(owner, sizeof(owner), "%s%s", prefix, who);
	txlog_init(l, c, owner, lease_ms);
}

static void setup(void)
{
	snprintf(prefix, sizeof(prefix), "c%d-%ld-", ++ncase, (long)getpid());
	open_log(&A, "a", 1500);
	open_log(&B, "b", 60000);
}

static void teardown(void)
{
	txlog_finish(&A);
	txlog_finish(&B);
}

static struct paytx_payment payment(const char *id, int64_t amount)
{
	struct paytx_payment p = { .nlegs = 2 };
	snprintf(p.payment_id, sizeof(p.payment_id), "%s%s", prefix, id);
	snprintf(p.legs[0].account, sizeof(p.legs[0].account), "alice");
	snprintf(p.legs[1].account, sizeof(p.legs[1].account), "bob");
	p.legs[0].amount = -amount;
	p.legs[1].amount = amount;
	memcpy(p.legs[0].currency, "EUR", 4);
	memcpy(p.legs[1].currency, "EUR", 4);
	return p;
}

/* Log a submit in a batch of its own; the row is filled for duplicates. */
static enum txlog_insert submit(struct txlog *l, const char *id, int64_t amount,
				const char *reply_to, int64_t *txn)
{
	struct paytx_payment p = payment(id, amount);
	struct paytx_buf canon;
	struct txlog_row row = { 0 };
	enum txlog_insert res = TXLOG_CONFLICT;
	paytx_buf_init(&canon);
	ck_assert_int_eq(paytx_payment_canonical(&p, &canon), 0);
	ck_assert_int_eq(txlog_begin(l), 0);
	ck_assert_int_eq(txlog_insert(l, &p, canon.data, reply_to, "corr", "risk", "",
				      clock_wall_ms(), &res, txn, &row), 0);
	ck_assert_int_eq(txlog_commit(l, true), 0);
	paytx_buf_finish(&canon);
	return res;
}

static int64_t scalar(PGconn *c, const char *sql, const char *arg)
{
	const char *params[] = { arg };
	PGresult *res = pg_query(c, sql, arg ? 1 : 0, params);
	ck_assert_msg(res != NULL, "query failed: %s", sql);
	ck_assert_int_eq(PQntuples(res), 1);
	const char *v = PQgetvalue(res, 0, 0);
	int64_t n = strcmp(v, "t") == 0 ? 1 : strcmp(v, "f") == 0 ? 0 : strtoll(v, NULL, 10);
	PQclear(res);
	return n;
}

/* Row changes on table that this connection has not reported yet:
 * updated, of which in place (HOT). Inside one transaction block nothing is
 * reported, so the difference of two readings there is what ran between
 * them (PostgreSQL 15 also counts earlier transactions not yet reported). */
static void xact_counts(PGconn *c, const char *table, int64_t out[2])
{
	out[0] = scalar(c, "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = $1",
			table);
	out[1] = scalar(c, "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables "
			"WHERE relname = $1", table);
}

static void finish_all(struct txlog *l, int64_t txn, bool commit, bool sent)
{
	struct txlog_row drow = { 0 }, frow = { 0 };
	bool logged;
	ck_assert_int_eq(txlog_begin(l), 0);
	ck_assert_int_eq(txlog_decide(l, txn, commit, "", "", &logged, &drow), 0);
	ck_assert_int_eq(txlog_finish_txn(l, txn, commit, &frow), 0);
	if (sent)
		ck_assert_int_eq(txlog_outcomes_sent(l, &txn, 1), 0);
	ck_assert_int_eq(txlog_commit(l, true), 0);
	txlog_row_finish(&drow);
	txlog_row_finish(&frow);
}

/* What a batch queued goes with its COMMIT: one round trip (one Sync)
 * from BEGIN to COMMIT, every result filled once it has committed. */
START_TEST(test_a_batch_and_its_commit_are_one_round_trip)
{
	int64_t decided_txn = 0, txn[3] = { 0 };
	ck_assert_int_eq(submit(&A, "rt0", 10, NULL, &decided_txn), TXLOG_NEW);
	struct paytx_payment p[3] = { payment("rt1", 1), payment("rt2", 2), payment("rt3", 3) };
	struct paytx_buf canon[3];
	struct txlog_row row[3] = { 0 }, drow = { 0 };
	enum txlog_insert res[3];
	bool logged = false;
	struct pgtest_trace trace;
	ck_assert_int_eq(pgtest_trace_start(&trace, A.conn), 0);
	ck_assert_int_eq(txlog_begin(&A), 0);
	for (int i = 0; i < 3; i++) {
		paytx_buf_init(&canon[i]);
		ck_assert_int_eq(paytx_payment_canonical(&p[i], &canon[i]), 0);
		ck_assert_int_eq(txlog_insert(&A, &p[i], canon[i].data, NULL, NULL, "", "",
					      clock_wall_ms(), &res[i], &txn[i], &row[i]), 0);
	}
	ck_assert_int_eq(txlog_decide(&A, decided_txn, true, "", "", &logged, &drow), 0);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	ck_assert_int_eq(pgtest_trace_stop(&trace, "Sync"), 1);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(res[i], TXLOG_NEW);
		ck_assert_int_gt(txn[i], 0);
		paytx_buf_finish(&canon[i]);
	}
	ck_assert(logged);
	ck_assert_str_eq(drow.state, "committing");
	txlog_row_finish(&drow);
	char id[24];
	snprintf(id, sizeof(id), "%" PRId64, txn[2]);
	ck_assert_int_eq(scalar(B.conn, "SELECT count(*) FROM payment_states WHERE txn = $1", id),
			 1);
}
END_TEST

START_TEST(test_duplicate_is_recognised_and_other_content_conflicts)
{
	int64_t txn = 0, again = 0, other = 0;
	struct txlog_row row;
	char id[80], num[24];
	ck_assert_int_eq(submit(&A, "p", 10, "q0", &txn), TXLOG_NEW);
	ck_assert_int_gt(txn, 0);
	ck_assert_int_eq(submit(&B, "p", 10, "q1", &again), TXLOG_DUP_OPEN);
	ck_assert_int_eq(again, txn);
	ck_assert_int_eq(submit(&B, "p", 11, "q2", &other), TXLOG_CONFLICT);
	snprintf(num, sizeof(num), "%" PRId64, txn);
	/* the duplicate's submitter waits for the outcome too; the conflict's not */
	ck_assert_int_eq(scalar(A.conn, "SELECT jsonb_array_length(waiters) FROM payment_states "
			       "WHERE txn = $1", num), 1);
	snprintf(id, sizeof(id), "%sp", prefix);
	ck_assert_int_eq(txlog_get(&B, id, &row), 0);
	ck_assert_str_eq(row.state, "preparing");
	ck_assert_str_eq(row.owner, A.owner);
	ck_assert_str_eq(row.reply_to, "q0");
	ck_assert(row.extra_known);
	ck_assert_str_eq(row.extra, "risk");
	finish_all(&A, txn, true, true);
	ck_assert_int_eq(submit(&B, "p", 10, NULL, &again), TXLOG_DUP_FINAL);
	ck_assert_int_eq(txlog_get(&B, id, &row), 0);
	ck_assert_str_eq(row.state, "committed");
	ck_assert(row.outcome_sent);
}
END_TEST

START_TEST(test_steps_rewrite_only_the_state_row_in_place)
{
	int64_t txn = 0, t[2];
	char num[24];
	ck_assert_int_eq(submit(&A, "hot", 10, NULL, &txn), TXLOG_NEW);
	snprintf(num, sizeof(num), "%" PRId64, txn);
	/* decide, finish, mark sent: the loop's statements, in one transaction
	 * here so that the transaction's own counters can be read before COMMIT */
	struct txlog_row drow = { 0 }, frow = { 0 };
	bool logged = false;
	int64_t req0[2], st0[2];
	ck_assert_int_eq(pg_exec(A.conn, "BEGIN"), 0);  /* txlog_begin's BEGIN only warns */
	xact_counts(A.conn, "payment_requests", req0);
	xact_counts(A.conn, "payment_states", st0);
	ck_assert_int_eq(txlog_begin(&A), 0);
	ck_assert_int_eq(txlog_decide(&A, txn, true, "", "", &logged, &drow), 0);
	ck_assert_int_eq(txlog_finish_txn(&A, txn, true, &frow), 0);
	ck_assert_int_eq(txlog_outcomes_sent(&A, &txn, 1), 0);
	ck_assert_int_eq(txlog_sync(&A), 0);
	ck_assert(logged);
	ck_assert_str_eq(drow.state, "committing");
	ck_assert_str_eq(frow.state, "committed");
	ck_assert_str_eq(frow.reply_to, "");
	xact_counts(A.conn, "payment_requests", t);
	ck_assert_int_eq(t[0] - req0[0], 0);   /* the request is never rewritten */
	xact_counts(A.conn, "payment_states", t);
	ck_assert_int_eq(t[0] - st0[0], 3);
	ck_assert_int_eq(t[1] - st0[1], 2);    /* only the close leaves the open index */
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	txlog_row_finish(&drow);
	txlog_row_finish(&frow);
	ck_assert_int_eq(scalar(A.conn, "SELECT pending FROM payment_states WHERE txn = $1", num),
			 0);
	/* renewing a lease is in place too */
	ck_assert_int_eq(submit(&A, "hot2", 10, NULL, &txn), TXLOG_NEW);
	ck_assert_int_eq(pg_exec(A.conn, "BEGIN"), 0);
	xact_counts(A.conn, "payment_states", st0);
	ck_assert_int_eq(txlog_renew(&A), 0);
	xact_counts(A.conn, "payment_states", t);
	ck_assert_int_eq(t[0] - st0[0], 1);    /* hot2 only: the closed one is not renewed */
	ck_assert_int_eq(t[1] - st0[1], 1);
	ck_assert_int_eq(pg_exec(A.conn, "COMMIT"), 0);
}
END_TEST

START_TEST(test_finish_in_the_batch_of_its_mark_writes_once)
{
	int64_t early = 0, other = 0, t[2], st0[2];
	struct txlog_row drow = { 0 }, frow = { 0 };
	bool logged;
	char num[24];
	ck_assert_int_eq(submit(&A, "early", 10, NULL, &early), TXLOG_NEW);
	ck_assert_int_eq(submit(&A, "other", 10, NULL, &other), TXLOG_NEW);
	/* an abort is answered at once, before the participants ack it */
	ck_assert_int_eq(txlog_begin(&A), 0);
	ck_assert_int_eq(txlog_decide(&A, early, false, "timeout", "", &logged, &drow), 0);
	ck_assert_int_eq(txlog_sync(&A), 0);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	txlog_row_finish(&drow);
	/* next batch: its answer confirmed, its acks in: mark and finish */
	int64_t marks[] = { early, other };
	ck_assert_int_eq(pg_exec(A.conn, "BEGIN"), 0);
	xact_counts(A.conn, "payment_states", st0);
	ck_assert_int_eq(txlog_begin(&A), 0);
	ck_assert_int_eq(txlog_outcomes_sent(&A, marks, 2), 0);
	ck_assert_int_eq(txlog_finish_txn(&A, early, false, &frow), 0);
	ck_assert_int_eq(txlog_sync(&A), 0);
	xact_counts(A.conn, "payment_states", t);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	ck_assert_int_eq(t[0] - st0[0], 2);    /* one update each, early and other */
	ck_assert_str_eq(frow.state, "aborted");
	ck_assert(frow.outcome_sent);          /* so the loop does not answer again */
	txlog_row_finish(&frow);
	snprintf(num, sizeof(num), "%" PRId64, early);
	ck_assert_int_eq(scalar(A.conn, "SELECT pending FROM payment_states WHERE txn = $1", num),
			 0);
	snprintf(num, sizeof(num), "%" PRId64, other);
	ck_assert_int_eq(scalar(A.conn, "SELECT outcome_sent FROM payment_states WHERE txn = $1",
				num), 1);
	/* a rolled-back batch leaves no mark behind for the next one */
	ck_assert_int_eq(txlog_begin(&A), 0);
	ck_assert_int_eq(txlog_outcomes_sent(&A, marks, 2), 0);
	txlog_rollback(&A);
	ck_assert_uint_eq(A.nmarks, 0);
}
END_TEST

/* Prepared statements run generic plans made once per connection, maybe
 * while the log is small: none may scan a whole table per payment. */
START_TEST(test_steps_scan_no_table_in_generic_plans)
{
	int64_t txn[4];
	char id[8];
	ck_assert_int_eq(pg_exec(A.conn, "SET plan_cache_mode = force_generic_plan"), 0);
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		ck_assert_int_eq(submit(&A, id, 10, NULL, &txn[i]), TXLOG_NEW);
	}
	ck_assert_int_eq(pg_exec(A.conn, "BEGIN"), 0);
	int64_t before = scalar(A.conn, "SELECT sum(seq_scan) FROM pg_stat_xact_user_tables", NULL);
	struct txlog_row drow[4] = { 0 }, frow[4] = { 0 };
	bool logged[4], found[4], commit[4];
	char pid[4][PAYTX_ID_MAX + 1];
	ck_assert_int_eq(txlog_begin(&A), 0);
	/* A lookup reads the log as it was before the batch's decisions. */
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(txlog_decide(&A, txn[i], i % 2, "", "", &logged[i], &drow[i]), 0);
		ck_assert_int_eq(txlog_decision(&A, txn[i], &found[i], &commit[i], pid[i]), 0);
	}
	ck_assert_int_eq(txlog_outcomes_sent(&A, txn, 2), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(txlog_finish_txn(&A, txn[i], i % 2, &frow[i]), 0);
	ck_assert_int_eq(txlog_sync(&A), 0);
	int64_t after = scalar(A.conn, "SELECT sum(seq_scan) FROM pg_stat_xact_user_tables", NULL);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	ck_assert_int_eq(after - before, 0);
	for (int i = 0; i < 4; i++) {
		ck_assert(!found[i]);
		ck_assert_str_eq(frow[i].state, i % 2 ? "committed" : "aborted");
		txlog_row_finish(&drow[i]);
		txlog_row_finish(&frow[i]);
	}
}
END_TEST

/* A batch's decisions are one statement whatever their number, and so are
 * its finishes; each result still reaches its own payment, reasons and
 * details as given (quotes, backslashes, commas and braces included). */
START_TEST(test_a_batch_decides_and_finishes_in_one_statement_each)
{
	enum { N = 5 };
	int64_t txn[N];
	char id[8];
	const char *detail[N] = { "plain", "a \"quoted\" word", "back\\slash", "{brace}, comma",
				  "" };
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "s%d", i);
		ck_assert_int_eq(submit(&A, id, 10, NULL, &txn[i]), TXLOG_NEW);
	}
	struct txlog_row drow[N] = { 0 }, frow[N] = { 0 };
	bool logged[N];
	struct pgtest_trace trace;
	ck_assert_int_eq(pgtest_trace_start(&trace, A.conn), 0);
	ck_assert_int_eq(txlog_begin(&A), 0);
	for (int i = N - 1; i >= 0; i--) /* not in txn order */
		ck_assert_int_eq(txlog_decide(&A, txn[i], i % 2, i % 2 ? "" : "declined", detail[i],
					      &logged[i], &drow[i]), 0);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	ck_assert_int_eq(pgtest_trace_stop(&trace, "Bind"), 3); /* BEGIN, decisions, COMMIT */
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(drow[i].txn, txn[i]);
		ck_assert(logged[i] == (i % 2));
		ck_assert_str_eq(drow[i].state, i % 2 ? "committing" : "aborting");
		ck_assert_str_eq(drow[i].detail, detail[i]);
		char t[24];
		snprintf(t, sizeof(t), "%" PRId64, txn[i]);
		const char *params[] = { t };
		PGresult *r = pg_query(A.conn, "SELECT reason, detail FROM decisions WHERE txn = $1",
				       1, params);
		ck_assert(r && PQntuples(r) == 1);
		ck_assert_str_eq(PQgetvalue(r, 0, 0), i % 2 ? "" : "declined");
		ck_assert_str_eq(PQgetvalue(r, 0, 1), detail[i]);
		PQclear(r);
	}
	ck_assert_int_eq(pgtest_trace_start(&trace, A.conn), 0);
	ck_assert_int_eq(txlog_begin(&A), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(txlog_finish_txn(&A, txn[i], i % 2, &frow[i]), 0);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	ck_assert_int_eq(pgtest_trace_stop(&trace, "Bind"), 3); /* BEGIN, finishes, COMMIT */
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(frow[i].txn, txn[i]);
		ck_assert_str_eq(frow[i].state, i % 2 ? "committed" : "aborted");
		ck_assert_int_gt(frow[i].finished_ms, 0);
		txlog_row_finish(&drow[i]);
		txlog_row_finish(&frow[i]);
	}
}
END_TEST

START_TEST(test_first_logged_decision_stands)
{
	int64_t txn = 0;
	struct txlog_row row = { 0 };
	bool logged = true;
	ck_assert_int_eq(submit(&A, "race", 10, NULL, &txn), TXLOG_NEW);
	ck_assert_int_eq(txlog_begin(&B), 0);
	ck_assert_int_eq(txlog_decide(&B, txn, false, "timeout", "no votes", &logged, &row), 0);
	ck_assert_int_eq(txlog_sync(&B), 0);
	ck_assert_int_eq(txlog_commit(&B, true), 0);
	ck_assert(!logged);
	txlog_row_finish(&row);
	logged = true;
	ck_assert_int_eq(txlog_begin(&A), 0);
	ck_assert_int_eq(txlog_decide(&A, txn, true, "", "", &logged, &row), 0);
	ck_assert_int_eq(txlog_sync(&A), 0);
	ck_assert_int_eq(txlog_commit(&A, true), 0);
	ck_assert(!logged);                     /* A learns the abort B logged */
	ck_assert_str_eq(row.state, "aborting");
	ck_assert_str_eq(row.reason, "timeout");
	txlog_row_finish(&row);
	bool found = false, commit = true;
	char pid[PAYTX_ID_MAX + 1];
	ck_assert_int_eq(txlog_begin(&B), 0);
	ck_assert_int_eq(txlog_decision(&B, txn, &found, &commit, pid), 0);
	ck_assert_int_eq(txlog_sync(&B), 0);
	ck_assert_int_eq(txlog_commit(&B, false), 0);
	ck_assert(found && !commit);
	ck_assert(strstr(pid, "race") != NULL);
}
END_TEST

static char adopted[8][PAYTX_ID_MAX + 1];
static char adopted_state[8][16];
static size_t nadopted;

/* Adoption is global: rows other cases left open are adopted too, and
 * ignored here. */
static int collect(void *arg, struct txlog_row *row)
{
	(void)arg;
	ck_assert_ptr_nonnull(row->request);
	if (strncmp(row->payment_id, prefix, strlen(prefix)) != 0)
		return 0;
	ck_assert_uint_lt(nadopted, 8);
	snprintf(adopted[nadopted], sizeof(adopted[0]), "%s", row->payment_id);
	snprintf(adopted_state[nadopted++], sizeof(adopted_state[0]), "%s", row->state);
	return 0;
}

static bool was_adopted(const char *id, const char *state)
{
	char full[PAYTX_ID_MAX + 1];
	snprintf(full, sizeof(full), "%s%s", prefix, id);
	for (size_t i = 0; i < nadopted; i++)
		if (strcmp(adopted[i], full) == 0)
			return strcmp(adopted_state[i], state) == 0;
	return false;
}

START_TEST(test_adoption_takes_only_expired_unfinished_payments)
{
	int64_t open = 0, closed = 0, unsent = 0;
	struct txlog_row row;
	char id[80];
	ck_assert_int_eq(submit(&A, "open", 10, NULL, &open), TXLOG_NEW);
	ck_assert_int_eq(submit(&A, "closed", 10, NULL, &closed), TXLOG_NEW);
	ck_assert_int_eq(submit(&A, "unsent", 10, NULL, &unsent), TXLOG_NEW);
	finish_all(&A, closed, true, true);
	finish_all(&A, unsent, false, false);
	/* A's lease is live: nothing for B */
	nadopted = 0;
	ck_assert_int_eq(txlog_adopt(&B, false, collect, NULL), 0);
	ck_assert_uint_eq(nadopted, 0);
	clock_sleep_ms(1600);
	ck_assert_int_eq(txlog_adopt(&B, false, collect, NULL), 0);
	ck_assert_uint_eq(nadopted, 2);
	ck_assert(was_adopted("open", "preparing"));
	ck_assert(was_adopted("unsent", "aborted"));  /* its outcome may be lost */
	snprintf(id, sizeof(id), "%sopen", prefix);
	ck_assert_int_eq(txlog_get(&A, id, &row), 0);
	ck_assert_str_eq(row.owner, B.owner);
	/* B's lease is live now: A, expired or restarted, takes nothing back */
	nadopted = 0;
	ck_assert_int_eq(txlog_adopt(&A, true, collect, NULL), 0);
	ck_assert_uint_eq(nadopted, 0);
	/* B restarted under its id takes its own at once */
	nadopted = 0;
	ck_assert_int_eq(txlog_adopt(&B, true, collect, NULL), 0);
	ck_assert_uint_eq(nadopted, 2);
}
END_TEST

START_TEST(test_unknown_payment_is_not_found)
{
	struct txlog_row row;
	bool found = true, commit;
	char pid[PAYTX_ID_MAX + 1];
	ck_assert_int_eq(txlog_get(&A, "no-such-payment", &row), PAYTX_ENOTFOUND);
	ck_assert_int_eq(txlog_begin(&A), 0);
	ck_assert_int_eq(txlog_decision(&A, -1, &found, &commit, pid), 0);
	ck_assert_int_eq(txlog_sync(&A), 0);
	ck_assert_int_eq(txlog_commit(&A, false), 0);
	ck_assert(!found);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_duplicate_is_recognised_and_other_content_conflicts),
		UNIT_CASE(test_steps_rewrite_only_the_state_row_in_place),
		UNIT_CASE(test_finish_in_the_batch_of_its_mark_writes_once),
		UNIT_CASE(test_steps_scan_no_table_in_generic_plans),
		UNIT_CASE(test_a_batch_and_its_commit_are_one_round_trip),
		UNIT_CASE(test_a_batch_decides_and_finishes_in_one_statement_each),
		UNIT_CASE(test_first_logged_decision_stands),
		UNIT_CASE(test_adoption_takes_only_expired_unfinished_payments),
		UNIT_CASE(test_unknown_payment_is_not_found),
	};
	log_init("test_txlog");
	if (!getenv("PAYTX_LOG_LEVEL"))
		(void)log_set_level_name("warn");
	char db[64];
	int status = pgtest_open("txlog", schema_coordinator_sql, NULL, &admin_dsn, db,
				 sizeof(db), test_dsn, sizeof(test_dsn));
	if (status)
		return status;
	status = UNIT_RUN("txlog", cases, setup, teardown);
	pgtest_db_drop(admin_dsn, db);
	return status;
}

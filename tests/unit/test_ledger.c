/* Unit tests of the ledger shard (votes, postings, releases, journal) against a real PostgreSQL. */
#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "pg.h"
#include "pgtest.h"

#define PARTICIPANT "ledger.0"

static const char *admin_dsn;   /* PAYTX_TEST_PG_DSN: superuser, any database */
static char test_dsn[2048];     /* the fresh database of this run */

/* Per test case (checked fixture): a ledger and three USD accounts with
 * names unique to the test, so cases never see each other's money. */
static struct ledger L;
static char world[PAYTX_ID_MAX + 1], alice[PAYTX_ID_MAX + 1], bob[PAYTX_ID_MAX + 1];
static char prefix[32];

static int64_t scalar(const char *sql, const char *arg)
{
	const char *params[] = { arg };
	PGresult *res = pg_query(L.pg.conn, sql, arg ? 1 : 0, params);
	ck_assert_msg(res != NULL, "query failed: %s", sql);
	ck_assert_int_eq(PQntuples(res), 1);
	int64_t v = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static int64_t scalar_txn(const char *sql, int64_t txn)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, txn);
	return scalar(sql, s);
}

static int64_t next_txn(void)
{
	return scalar("SELECT nextval('test_txn')", NULL);
}

static void account(char *out, const char *name, const char *currency, bool external)
{
	snprintf(out, PAYTX_ID_MAX + 1, "%s%s", prefix, name);
	ck_assert_int_eq(ledger_account_create(&L, out, currency, external), 0);
}

static struct ledger_account get(const char *id)
{
	struct ledger_account a;
	ck_assert_int_eq(ledger_account_get(&L, id, &a), 0);
	return a;
}

static struct paytx_prepare transfer(int64_t txn, const char *from, const char *to,
				     int64_t amount, const char *currency)
{
	struct paytx_prepare p = { .txn = txn, .nlegs = 2, .deadline_ms = clock_wall_ms() + 5000 };
	snprintf(p.payment_id, sizeof(p.payment_id), "pay-%" PRId64, txn);
	snprintf(p.legs[0].account, sizeof(p.legs[0].account), "%s", from);
	snprintf(p.legs[1].account, sizeof(p.legs[1].account), "%s", to);
	p.legs[0].amount = -amount;
	p.legs[1].amount = amount;
	memcpy(p.legs[0].currency, currency, 4);
	memcpy(p.legs[1].currency, currency, 4);
	return p;
}

/* One callback in its own batch, as the SDK runs a retried message. */
static struct paytx_vote prepare_alone(const struct paytx_prepare *p)
{
	struct paytx_vote v = { .txn = p->txn, .participant = PARTICIPANT };
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.prepare(&L, p, &v), 0);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	return v;
}

static int decide_alone(int64_t txn, bool commit)
{
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	int err = commit ? ledger_ops.commit(&L, txn) : ledger_ops.abort(&L, txn);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	return err;
}

/* Move amount from the external world account to id, committed. */
static void fund(const char *id, int64_t amount)
{
	struct paytx_prepare p = transfer(next_txn(), world, id, amount, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
}

/* How many legs txn's barrier row records in the given state (0: none). */
static int64_t legs_in(int64_t txn, const char *state)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM barrier, unnest(accounts) "
		 "WHERE txn = $1 AND state = '%s'", state);
	return scalar_txn(sql, txn);
}

static int64_t open_holds(int64_t txn)
{
	return scalar_txn("SELECT count(*) FROM open_holds WHERE txn = $1", txn);
}

static const char *barrier_state(int64_t txn, char *buf, size_t n)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, txn);
	const char *params[] = { s };
	PGresult *res = pg_query(L.pg.conn, "SELECT state FROM barrier WHERE txn = $1", 1, params);
	ck_assert(res != NULL);
	snprintf(buf, n, "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "(none)");
	PQclear(res);
	return buf;
}

static void setup(void)
{
	PGconn *c;
	ck_assert_int_eq(pg_connect(&c, test_dsn, "test_ledger", NULL), 0);
	ck_assert_int_eq(ledger_init(&L, c, PARTICIPANT), 0);
	snprintf(prefix, sizeof(prefix), "t%" PRId64 ".",
		 scalar("SELECT nextval('test_case')", NULL));
	account(world, "world", "USD", true);
	account(alice, "alice", "USD", false);
	account(bob, "bob", "USD", false);
}

static void teardown(void)
{
	ledger_finish(&L);
}

START_TEST(test_prepare_reserves_funds_and_votes_yes)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60, "USD");
	struct paytx_vote v = prepare_alone(&p);
	ck_assert(v.yes);
	ck_assert_str_eq(v.reason, "");
	struct ledger_account a = get(alice), b = get(bob);
	ck_assert_int_eq(a.balance, 100);
	ck_assert_int_eq(a.held, 60);
	ck_assert_int_eq(b.balance, 0);
	ck_assert_int_eq(b.held, 0);
	ck_assert_int_eq(legs_in(p.txn, "prepared"), 2);
	ck_assert_int_eq(open_holds(p.txn), 2);
	ck_assert_int_eq(scalar_txn("SELECT sum(debit) FROM open_holds WHERE txn = $1", p.txn), 60);
	char st[16];
	ck_assert_str_eq(barrier_state(p.txn, st, sizeof(st)), "prepared");
}
END_TEST

START_TEST(test_insufficient_funds_votes_no_and_leaves_no_hold)
{
	fund(alice, 50);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 100, "USD");
	struct paytx_vote v = prepare_alone(&p);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "insufficient_funds");
	ck_assert_ptr_nonnull(strstr(v.detail, alice));
	ck_assert_ptr_nonnull(strstr(v.detail, "has 50 available, needs 100"));
	ck_assert_int_eq(get(alice).held, 0);
	ck_assert_int_eq(open_holds(p.txn), 0);
	ck_assert_int_eq(legs_in(p.txn, "refused"), 0);
	char st[16];
	ck_assert_str_eq(barrier_state(p.txn, st, sizeof(st)), "refused");
}
END_TEST

START_TEST(test_unknown_account_votes_no)
{
	fund(alice, 100);
	char ghost[PAYTX_ID_MAX + 1];
	snprintf(ghost, sizeof(ghost), "%sghost", prefix);
	struct paytx_prepare p = transfer(next_txn(), alice, ghost, 10, "USD");
	struct paytx_vote v = prepare_alone(&p);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "unknown_account");
	ck_assert_ptr_nonnull(strstr(v.detail, ghost));
	ck_assert_int_eq(get(alice).held, 0);
	ck_assert_int_eq(open_holds(p.txn), 0);
}
END_TEST

START_TEST(test_currency_mismatch_votes_no)
{
	fund(alice, 100);
	char eur[PAYTX_ID_MAX + 1];
	account(eur, "eur", "EUR", false);
	struct paytx_prepare p = transfer(next_txn(), alice, eur, 10, "USD");
	struct paytx_vote v = prepare_alone(&p);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "currency_mismatch");
	ck_assert_ptr_nonnull(strstr(v.detail, eur));
	p = transfer(next_txn(), alice, bob, 10, "EUR");
	ck_assert_str_eq(prepare_alone(&p).reason, "currency_mismatch");
	ck_assert_int_eq(get(alice).held, 0);
}
END_TEST

START_TEST(test_external_account_may_go_negative)
{
	struct paytx_prepare p = transfer(next_txn(), world, alice, 1000, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(get(world).balance, -1000);
	p = transfer(next_txn(), alice, bob, 1001, "USD");
	ck_assert_str_eq(prepare_alone(&p).reason, "insufficient_funds");
}
END_TEST

START_TEST(test_commit_posts_journal_and_balances)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 30, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	struct ledger_account a = get(alice), b = get(bob);
	ck_assert_int_eq(a.balance, 70);
	ck_assert_int_eq(a.held, 0);
	ck_assert_int_eq(a.version, 2);
	ck_assert_int_eq(b.balance, 30);
	ck_assert_int_eq(b.version, 1);
	ck_assert_int_eq(legs_in(p.txn, "committed"), 2);
	ck_assert_int_eq(open_holds(p.txn), 0);
	ck_assert_int_eq(scalar_txn("SELECT count(*) FROM entries WHERE txn = $1 AND "
				    "payment_id = 'pay-' || $1 AND currency = 'USD' AND "
				    "((amount = -30 AND balance_after = 70) OR "
				    " (amount = 30 AND balance_after = 30))", p.txn), 2);
	char st[16];
	ck_assert_str_eq(barrier_state(p.txn, st, sizeof(st)), "committed");
}
END_TEST

START_TEST(test_commit_is_idempotent)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 30, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert(prepare_alone(&p).yes); /* a late duplicate prepare re-votes */
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(get(alice).balance, 70);
	ck_assert_int_eq(get(alice).held, 0);
	ck_assert_int_eq(get(bob).balance, 30);
	ck_assert_int_eq(scalar_txn("SELECT count(*) FROM entries WHERE txn = $1", p.txn), 2);
}
END_TEST

START_TEST(test_abort_releases_hold)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(get(alice).held, 60);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
	struct ledger_account a = get(alice);
	ck_assert_int_eq(a.held, 0);
	ck_assert_int_eq(a.balance, 100);
	ck_assert_int_eq(legs_in(p.txn, "aborted"), 2);
	ck_assert_int_eq(open_holds(p.txn), 0);
	ck_assert_int_eq(scalar_txn("SELECT count(*) FROM entries WHERE txn = $1", p.txn), 0);
	struct paytx_prepare all = transfer(next_txn(), alice, bob, 100, "USD");
	ck_assert(prepare_alone(&all).yes);
}
END_TEST

START_TEST(test_abort_before_prepare_votes_no)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60, "USD");
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
	struct paytx_vote v = prepare_alone(&p);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "aborted");
	ck_assert_int_eq(get(alice).held, 0);
	ck_assert_int_eq(open_holds(p.txn), 0);
	ck_assert_int_eq(decide_alone(p.txn, true), PAYTX_EPROTO);
	ck_assert_int_eq(decide_alone(p.txn, false), 0);
}
END_TEST

START_TEST(test_duplicate_prepare_revotes_same)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(get(alice).held, 60);
	ck_assert_int_eq(open_holds(p.txn), 2);

	struct paytx_prepare q = transfer(next_txn(), alice, bob, 60, "USD");
	struct paytx_vote first = prepare_alone(&q);
	ck_assert(!first.yes);
	ck_assert_int_eq(decide_alone(p.txn, false), 0); /* funds free again... */
	struct paytx_vote again = prepare_alone(&q);      /* ...but the vote stands */
	ck_assert(!again.yes);
	ck_assert_str_eq(again.reason, first.reason);
	ck_assert_str_eq(again.detail, first.detail);
}
END_TEST

START_TEST(test_commit_without_prepare_is_protocol_violation)
{
	int64_t txn = next_txn();
	ck_assert_int_eq(decide_alone(txn, true), PAYTX_EPROTO);
	ck_assert_int_eq(scalar_txn("SELECT count(*) FROM barrier WHERE txn = $1", txn), 0);

	struct paytx_prepare p = transfer(next_txn(), alice, bob, 10, "USD");
	ck_assert(!prepare_alone(&p).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), PAYTX_EPROTO);
	char st[16];
	ck_assert_str_eq(barrier_state(p.txn, st, sizeof(st)), "refused");
	ck_assert_int_eq(get(bob).balance, 0);
}
END_TEST

START_TEST(test_abort_after_commit_is_refused)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 40, "USD");
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(decide_alone(p.txn, false), PAYTX_EPROTO);
	ck_assert_int_eq(get(alice).balance, 60);
	ck_assert_int_eq(get(bob).balance, 40);
	char st[16];
	ck_assert_str_eq(barrier_state(p.txn, st, sizeof(st)), "committed");
}
END_TEST

static const char *exec_sqlstate(const char *sql, char *buf, size_t n)
{
	PGresult *res = PQexec(L.pg.conn, sql);
	snprintf(buf, n, "%s", pg_sqlstate(res));
	PQclear(res);
	return buf;
}

START_TEST(test_journal_rows_cannot_be_updated_or_deleted)
{
	fund(alice, 100);
	int64_t before = scalar("SELECT count(*) FROM entries", NULL);
	char st[8];
	ck_assert_str_eq(exec_sqlstate("UPDATE entries SET amount = 0", st, sizeof(st)), "23001");
	ck_assert_str_eq(exec_sqlstate("DELETE FROM entries", st, sizeof(st)), "23001");
	ck_assert_str_eq(exec_sqlstate("TRUNCATE entries CASCADE", st, sizeof(st)), "23001");
	ck_assert_int_eq(scalar("SELECT count(*) FROM entries", NULL), before);
	ck_assert_int_eq(scalar("SELECT count(*) FROM entries WHERE amount = 0", NULL), 0);
}
END_TEST

START_TEST(test_batch_of_prepares_sees_earlier_holds)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 70, "USD");
	struct paytx_prepare q = transfer(next_txn(), alice, bob, 70, "USD");
	struct paytx_vote vp = { .txn = p.txn }, vq = { .txn = q.txn };
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.prepare(&L, &p, &vp), 0);
	ck_assert_int_eq(ledger_ops.prepare(&L, &q, &vq), 0);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	ck_assert(vp.yes);
	ck_assert(!vq.yes);
	ck_assert_str_eq(vq.reason, "insufficient_funds");
	ck_assert_ptr_nonnull(strstr(vq.detail, "has 30 available, needs 70"));
	ck_assert_int_eq(get(alice).held, 70);
}
END_TEST

START_TEST(test_rolled_back_batch_leaves_nothing)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 70, "USD");
	struct paytx_vote v = { .txn = p.txn };
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.prepare(&L, &p, &v), 0);
	ck_assert_int_eq(ledger_ops.abort(&L, next_txn()), 0);
	ledger_ops.batch_rollback(&L);
	ck_assert_int_eq(get(alice).held, 0);
	ck_assert_int_eq(scalar_txn("SELECT count(*) FROM barrier WHERE txn = $1", p.txn), 0);
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(get(alice).held, 70);
}
END_TEST

/* Calls of the one-step ledger_prepare this session made so far, counting
 * its last transaction (whose statistics are flushed first). */
static int64_t prepare_calls(void)
{
	ck_assert_int_eq(pg_exec(L.pg.conn, "SELECT pg_stat_force_next_flush()"), 0);
	return scalar("SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions "
		      "WHERE funcname = 'ledger_prepare'", NULL);
}

/* Apply steps as one batch through the SDK's apply callback, committed;
 * returns how often the one-step ledger_prepare ran inside it. (The
 * steps and their COMMIT are one pipeline: nothing can be asked between.) */
static int64_t apply_batch(struct paytx_step *st, size_t n)
{
	ck_assert_int_eq(pg_exec(L.pg.conn, "SET track_functions = 'pl'"), 0);
	int64_t before = prepare_calls();
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.apply(&L, st, n), 0);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	int64_t one_by_one = prepare_calls() - before;
	ck_assert_int_eq(pg_exec(L.pg.conn, "RESET track_functions"), 0);
	return one_by_one;
}

static struct paytx_step prepare_step(const struct paytx_prepare *p, struct paytx_vote *v)
{
	*v = (struct paytx_vote){ .txn = p->txn, .participant = PARTICIPANT };
	return (struct paytx_step){ .type = PAYTX_MSG_PREPARE, .prepare = p, .txn = p->txn,
				    .payment_id = p->payment_id, .vote = v };
}

/* Steps st[0..n) preparing p[0..n), their votes going to v. */
static void prepare_steps(const struct paytx_prepare *p, struct paytx_vote *v,
			  struct paytx_step *st, size_t n)
{
	for (size_t i = 0; i < n; i++)
		st[i] = prepare_step(&p[i], &v[i]);
}

/* The prepares of a batch are one call (prepare_set): when they all fit,
 * it reserves for all of them at once, holds adding up per account. */
START_TEST(test_batch_of_prepares_that_fit_reserves_at_once)
{
	fund(alice, 100);
	struct paytx_prepare p[3] = { transfer(next_txn(), alice, bob, 30, "USD"),
				      transfer(next_txn(), alice, bob, 70, "USD"),
				      transfer(next_txn(), world, alice, 5, "USD") };
	struct paytx_vote v[3];
	struct paytx_step st[3];
	prepare_steps(p, v, st, 3);
	ck_assert_int_eq(apply_batch(st, 3), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(v[i].yes, "step %d: %s", i, v[i].reason);
		ck_assert_int_eq(legs_in(p[i].txn, "prepared"), 2);
	}
	ck_assert_int_eq(get(alice).held, 100);
	ck_assert_int_eq(get(world).held, 5);
	ck_assert_int_eq(get(bob).held, 0);
	ck_assert_int_eq(scalar_txn("SELECT amounts[1] FROM barrier WHERE txn = $1", p[2].txn), 5);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(decide_alone(p[i].txn, true), 0);
	ck_assert_int_eq(get(alice).balance, 5);
	ck_assert_int_eq(get(bob).balance, 100);
}
END_TEST

/* One that does not fit: every step votes as if prepared one by one. */
START_TEST(test_batch_of_prepares_that_do_not_fit_votes_one_by_one)
{
	fund(alice, 100);
	struct paytx_prepare p[3] = { transfer(next_txn(), alice, bob, 60, "USD"),
				      transfer(next_txn(), alice, bob, 50, "USD"),
				      transfer(next_txn(), alice, bob, 40, "USD") };
	struct paytx_vote v[3];
	struct paytx_step st[3];
	prepare_steps(p, v, st, 3);
	ck_assert_int_eq(apply_batch(st, 3), 3);
	ck_assert(v[0].yes);
	ck_assert(!v[1].yes);
	ck_assert_str_eq(v[1].reason, "insufficient_funds");
	ck_assert(v[2].yes);
	ck_assert_int_eq(get(alice).held, 100);
	ck_assert_int_eq(open_holds(p[1].txn), 0);
}
END_TEST

/* Steps run in the batch's order, each run of prepares as one call: an
 * abort before them frees what it held for them, one after them sees them. */
START_TEST(test_batch_runs_steps_in_order)
{
	fund(alice, 100);
	struct paytx_prepare held = transfer(next_txn(), alice, bob, 60, "USD");
	ck_assert(prepare_alone(&held).yes);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 70, "USD");
	struct paytx_prepare q = transfer(next_txn(), alice, bob, 10, "USD");
	struct paytx_vote vp, vq;
	struct paytx_step st[] = {
		{ .type = PAYTX_MSG_ABORT, .txn = held.txn, .payment_id = "" },
		prepare_step(&p, &vp),
		prepare_step(&q, &vq),
		{ .type = PAYTX_MSG_ABORT, .txn = q.txn, .payment_id = "" },
	};
	ck_assert_int_eq(apply_batch(st, 4), 0);
	ck_assert(vp.yes);
	ck_assert(vq.yes);
	ck_assert_int_eq(st[0].result, 0);
	ck_assert_int_eq(st[3].result, 0);
	ck_assert_int_eq(get(alice).held, 70);
	ck_assert_int_eq(open_holds(q.txn), 0);
	char state[16];
	ck_assert_str_eq(barrier_state(q.txn, state, sizeof(state)), "aborted");
}
END_TEST

/* A txn twice in one batch, or one voted on before: the same vote again. */
START_TEST(test_batch_with_a_repeated_prepare_revotes)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60, "USD");
	struct paytx_prepare q = transfer(next_txn(), alice, bob, 10, "USD");
	struct paytx_vote v[3];
	struct paytx_step st[3] = { prepare_step(&p, &v[0]), prepare_step(&q, &v[1]),
				    prepare_step(&p, &v[2]) };
	apply_batch(st, 3);
	ck_assert(v[0].yes && v[1].yes && v[2].yes);
	ck_assert_int_eq(get(alice).held, 70);
	apply_batch(st, 3);
	ck_assert(v[0].yes && v[1].yes && v[2].yes);
	ck_assert_int_eq(get(alice).held, 70);
}
END_TEST

/* The commits of a batch are one call (commit_set): each account is
 * updated once, and its journal still reads as one posting after another. */
START_TEST(test_batch_of_commits_posts_each_txn_in_order)
{
	fund(alice, 100);
	struct paytx_prepare p[3] = { transfer(next_txn(), alice, bob, 10, "USD"),
				      transfer(next_txn(), alice, bob, 20, "USD"),
				      transfer(next_txn(), bob, alice, 5, "USD") };
	fund(bob, 50);
	for (int i = 0; i < 3; i++)
		ck_assert(prepare_alone(&p[i]).yes);
	ck_assert_int_eq(get(alice).held, 30);
	ck_assert_int_eq(decide_alone(p[0].txn, true), 0); /* already, in the batch */
	int64_t never = next_txn();                         /* no vote here */
	struct paytx_step st[] = {
		{ .type = PAYTX_MSG_COMMIT, .txn = p[2].txn, .payment_id = "" },
		{ .type = PAYTX_MSG_COMMIT, .txn = p[1].txn, .payment_id = "" },
		{ .type = PAYTX_MSG_COMMIT, .txn = never, .payment_id = "" },
		{ .type = PAYTX_MSG_COMMIT, .txn = p[0].txn, .payment_id = "" },
		{ .type = PAYTX_MSG_COMMIT, .txn = p[1].txn, .payment_id = "" }, /* twice */
	};
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.apply(&L, st, 5), 0);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	ck_assert_int_eq(st[0].result, 0);
	ck_assert_int_eq(st[1].result, 0);
	ck_assert_int_eq(st[2].result, PAYTX_EPROTO);
	ck_assert_int_eq(st[3].result, 0);
	ck_assert_int_eq(st[4].result, 0);
	struct ledger_account a = get(alice), b = get(bob);
	ck_assert_int_eq(a.balance, 100 - 10 - 20 + 5);
	ck_assert_int_eq(a.held, 0);
	ck_assert_int_eq(a.version, 4);
	ck_assert_int_eq(b.balance, 50 + 10 + 20 - 5);
	ck_assert_int_eq(b.version, 4);
	char st_never[16];
	ck_assert_str_eq(barrier_state(never, st_never, sizeof(st_never)), "(none)");
	/* In id order, every journal row's balance_after is the one before it
	 * plus its amount, ending at the balance. */
	const char *chain = "SELECT count(*) FROM (SELECT balance_after, amount, "
			    "lag(balance_after, 1, 0::bigint) OVER (ORDER BY id) AS before "
			    "FROM entries WHERE account = $1) e WHERE balance_after <> before + amount";
	ck_assert_int_eq(scalar(chain, alice), 0);
	ck_assert_int_eq(scalar(chain, bob), 0);
	ck_assert_int_eq(scalar("SELECT count(*) FROM entries WHERE account = $1", alice), 4);
	ck_assert_int_eq(scalar("SELECT balance_after FROM entries WHERE account = $1 "
				"ORDER BY id DESC LIMIT 1", bob), b.balance);
}
END_TEST

/* A batch's steps and its COMMIT travel together: one round trip (one
 * Sync) from BEGIN to COMMIT, the votes read once it has committed. */
START_TEST(test_a_batch_and_its_commit_are_one_round_trip)
{
	fund(alice, 100);
	struct paytx_prepare p[3] = { transfer(next_txn(), alice, bob, 10, "USD"),
				      transfer(next_txn(), alice, bob, 20, "USD"),
				      transfer(next_txn(), world, alice, 5, "USD") };
	struct paytx_vote v[3];
	struct paytx_step st[3];
	prepare_steps(p, v, st, 3);
	struct pgtest_trace trace;
	ck_assert_int_eq(pgtest_trace_start(&trace, L.pg.conn), 0);
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.apply(&L, st, 3), 0);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	ck_assert_int_eq(pgtest_trace_stop(&trace, "Sync"), 1);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(v[i].yes, "step %d: %s", i, v[i].reason);
	ck_assert_int_eq(get(alice).held, 30);
	ck_assert_int_eq(get(world).held, 5);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(legs_in(p[i].txn, "prepared"), 2);
}
END_TEST

START_TEST(test_legs_on_one_account_are_merged)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 40, "USD");
	p.legs[2] = p.legs[0];
	p.legs[3] = p.legs[1];
	p.nlegs = 4; /* alice -40 twice, bob +40 twice */
	ck_assert(prepare_alone(&p).yes);
	ck_assert_int_eq(get(alice).held, 80);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(get(alice).balance, 20);
	ck_assert_int_eq(get(bob).balance, 80);
	ck_assert_int_eq(scalar_txn("SELECT count(*) FROM entries WHERE txn = $1", p.txn), 2);
	p = transfer(next_txn(), alice, bob, 15, "USD");
	p.legs[2] = p.legs[0];
	p.nlegs = 3; /* alice -30 in all: more than 20 */
	ck_assert_str_eq(prepare_alone(&p).reason, "insufficient_funds");
}
END_TEST

START_TEST(test_in_doubt_lists_old_yes_votes_only)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 10, "USD");
	ck_assert(prepare_alone(&p).yes);
	int64_t txns[64];
	size_t n;
	ck_assert_int_eq(ledger_ops.in_doubt(&L, clock_wall_ms() - 60000, txns, 64, &n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert(txns[i] != p.txn);
	bool seen = false;
	ck_assert_int_eq(ledger_ops.in_doubt(&L, clock_wall_ms() + 1000, txns, 64, &n), 0);
	for (size_t i = 0; i < n; i++)
		seen = seen || txns[i] == p.txn;
	ck_assert(seen);
	ck_assert_int_eq(ledger_ops.in_doubt(&L, clock_wall_ms() + 1000, txns, 0, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(decide_alone(p.txn, true), 0);
	ck_assert_int_eq(ledger_ops.in_doubt(&L, clock_wall_ms() + 1000, txns, 64, &n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert(txns[i] != p.txn);
}
END_TEST

/* Run sql, which must not fail. */
static void exec_ok(const char *sql)
{
	PGresult *res = pg_query(L.pg.conn, sql, 0, NULL);
	ck_assert_msg(res != NULL, "query failed: %s", sql);
	PQclear(res);
}

/* The step functions run generic plans (sql/ledger.sql, "Plans"), made once
 * per connection, maybe while the tables are small: none may scan a whole
 * table, whichever path a step takes. The tables get a few thousand rows
 * and statistics first, as a shard has. */
START_TEST(test_steps_scan_no_table_in_generic_plans)
{
	exec_ok("INSERT INTO accounts (id, currency, balance) SELECT 'filler.' || g, 'USD', 0 "
		"FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING");
	exec_ok("INSERT INTO barrier (txn, participant, payment_id, state) "
		"SELECT -g, 'ledger.0', 'filler', 'aborted' FROM generate_series(1, 5000) g "
		"ON CONFLICT DO NOTHING");
	exec_ok("ANALYZE accounts, barrier, entries");
	fund(alice, 100);
	int64_t t = next_txn(), u = next_txn(), w = next_txn(), x = next_txn();
	char sql[2048];
	ck_assert_int_eq(pg_exec(L.pg.conn, "BEGIN"), 0);
	int64_t before = scalar("SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_xact_user_tables",
				NULL);
	/* a run that fits (one statement per table), one that does not (one
	 * by one), a single prepare, a run of commits, an abort, in doubt */
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM ledger_prepare_set('" PARTICIPANT "', jsonb_build_array("
		 "jsonb_build_object('txn', %" PRId64 ", 'payment_id', 'p', 'legs', "
		 "jsonb_build_array(jsonb_build_object('account', '%s', 'amount', -10, "
		 "'currency', 'USD'), jsonb_build_object('account', '%s', 'amount', 10, "
		 "'currency', 'USD')))))", t, alice, bob);
	exec_ok(sql);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM ledger_prepare_set('" PARTICIPANT "', jsonb_build_array("
		 "jsonb_build_object('txn', %" PRId64 ", 'payment_id', 'p', 'legs', "
		 "jsonb_build_array(jsonb_build_object('account', '%s', 'amount', -1000, "
		 "'currency', 'USD'), jsonb_build_object('account', '%s', 'amount', 1000, "
		 "'currency', 'USD')))))", u, alice, bob);
	exec_ok(sql);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM ledger_prepare(%" PRId64 ", '" PARTICIPANT "', 'p', "
		 "jsonb_build_array(jsonb_build_object('account', '%s', 'amount', -5, "
		 "'currency', 'USD'), jsonb_build_object('account', '%s', 'amount', 5, "
		 "'currency', 'USD')))", w, alice, bob);
	exec_ok(sql);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM ledger_commit(ARRAY[%" PRId64 ", %" PRId64
		 ", %" PRId64 "]::bigint[], '" PARTICIPANT "')", t, u, x);
	exec_ok(sql);
	snprintf(sql, sizeof(sql), "SELECT ledger_abort(%" PRId64 ", '" PARTICIPANT "', 'p')", w);
	exec_ok(sql);
	exec_ok("SELECT count(*) FROM ledger_in_doubt('" PARTICIPANT "', 0, 10)");
	int64_t after = scalar("SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_xact_user_tables",
			       NULL);
	ck_assert_int_eq(pg_exec(L.pg.conn, "COMMIT"), 0);
	ck_assert_int_eq(after - before, 0);
	ck_assert_int_eq(get(bob).balance, 10);       /* t committed, u refused, w aborted */
	ck_assert_int_eq(get(alice).held, 0);
}
END_TEST

START_TEST(test_account_create_is_idempotent_and_detects_conflict)
{
	ck_assert_int_eq(ledger_account_create(&L, alice, "USD", false), 0);
	ck_assert_int_eq(ledger_account_create(&L, alice, "EUR", false), PAYTX_ECONFLICT);
	ck_assert_int_eq(ledger_account_create(&L, alice, "USD", true), PAYTX_ECONFLICT);
	ck_assert_int_eq(ledger_account_create(&L, "bad id", "USD", false), PAYTX_EINVAL);
	ck_assert_int_eq(ledger_account_create(&L, "x", "usd", false), PAYTX_EINVAL);
	struct ledger_account a = get(world);
	ck_assert_str_eq(a.id, world);
	ck_assert_str_eq(a.currency, "USD");
	ck_assert(a.external);
	char ghost[PAYTX_ID_MAX + 1];
	snprintf(ghost, sizeof(ghost), "%sghost", prefix);
	ck_assert_int_eq(ledger_account_get(&L, ghost, &a), PAYTX_ENOTFOUND);
}
END_TEST

START_TEST(test_reset_recovers_a_lost_connection)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 10, "USD");
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(L.pg.conn));
	PGconn *admin;
	ck_assert_int_eq(pg_connect(&admin, admin_dsn, "test_ledger", NULL), 0);
	const char *params[] = { pid };
	PQclear(pg_query(admin, "SELECT pg_terminate_backend($1::int)", 1, params));
	PQfinish(admin);
	struct paytx_vote v = { .txn = p.txn };
	ck_assert_int_lt(ledger_ops.prepare(&L, &p, &v), 0);
	ck_assert_int_eq(ledger_ops.reset(&L), 0);
	ck_assert(prepare_alone(&p).yes);
}
END_TEST

/* A second replica's duplicate prepare waits for the first and re-votes. */
START_TEST(test_concurrent_duplicate_prepare_waits_and_revotes)
{
	fund(alice, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 60, "USD");
	struct paytx_vote v = { .txn = p.txn };
	struct ledger other;
	PGconn *c;
	ck_assert_int_eq(pg_connect(&c, test_dsn, "test_ledger", NULL), 0);
	ck_assert_int_eq(ledger_init(&other, c, PARTICIPANT), 0);
	ck_assert_int_eq(ledger_ops.batch_begin(&L), 0);
	ck_assert_int_eq(ledger_ops.prepare(&L, &p, &v), 0);

	char txn[24], pid[16];
	snprintf(txn, sizeof(txn), "%" PRId64, p.txn);
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(other.pg.conn));
	char legs[512];
	snprintf(legs, sizeof(legs), "[{\"account\":\"%s\",\"amount\":-60,\"currency\":\"USD\"},"
		 "{\"account\":\"%s\",\"amount\":60,\"currency\":\"USD\"}]", alice, bob);
	const char *params[] = { txn, PARTICIPANT, p.payment_id, legs };
	ck_assert(PQsendQueryParams(other.pg.conn, "SELECT vote FROM ledger_prepare($1::bigint, "
				    "$2, $3, $4::jsonb)", 4, NULL, params, NULL, NULL, 0));
	/* pg_locks, not pg_stat_activity: that one is snapshotted per transaction. */
	const char *wait_sql = "SELECT count(*) FROM pg_locks WHERE pid = $1::int AND NOT granted";
	int64_t until = clock_mono_ms() + 10000;
	while (scalar(wait_sql, pid) == 0 && clock_mono_ms() < until)
		clock_sleep_ms(10);
	ck_assert_int_eq(ledger_ops.batch_commit(&L), 0);
	ck_assert(v.yes);

	PGresult *res = PQgetResult(other.pg.conn);
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
	ck_assert_ptr_null(PQgetResult(other.pg.conn));
	ledger_finish(&other);
	ck_assert_int_eq(get(alice).held, 60);
	ck_assert_int_eq(open_holds(p.txn), 2);
}
END_TEST

START_TEST(test_balances_sum_to_zero_per_currency)
{
	/* Own currency, so other cases' accounts do not count. */
	char ext[PAYTX_ID_MAX + 1], acc[4][PAYTX_ID_MAX + 1];
	account(ext, "xts-world", "XTS", true);
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "xts-%d", i);
		account(acc[i], name, "XTS", false);
	}
	const char *sum_sql = "SELECT sum(balance) FROM accounts WHERE currency = 'XTS'";
	uint32_t seed = 12345;
	int committed = 0;
	for (int round = 0; round < 60; round++) {
		seed = seed * 1103515245u + 12345u;
		int from = (int)(seed >> 8) % 5, to = (int)(seed >> 16) % 4;
		int64_t amount = 1 + (int64_t)((seed >> 4) % 500);
		struct paytx_prepare p = transfer(next_txn(), from == 4 ? ext : acc[from],
						  acc[to], amount, "XTS");
		if (round % 7 == 3) { /* three legs: one debit, two credits */
			p.legs[1].amount = amount / 2;
			p.legs[2] = p.legs[1];
			snprintf(p.legs[2].account, sizeof(p.legs[2].account), "%s", acc[(to + 1) % 4]);
			p.legs[2].amount = amount - amount / 2;
			p.nlegs = 3;
		}
		bool yes = prepare_alone(&p).yes;
		bool commit = yes && round % 5 != 0;
		ck_assert_int_eq(decide_alone(p.txn, commit), 0);
		committed += commit;
		ck_assert_int_eq(scalar(sum_sql, NULL), 0);
	}
	ck_assert_int_gt(committed, 20);
	ck_assert_int_eq(scalar("SELECT sum(held) FROM accounts WHERE currency = 'XTS'", NULL), 0);
	ck_assert_int_eq(scalar("SELECT sum(amount) FROM entries WHERE currency = 'XTS'", NULL), 0);
	/* Every balance is the sum of its journal. */
	ck_assert_int_eq(scalar("SELECT count(*) FROM accounts a WHERE currency = 'XTS' AND "
				"balance <> (SELECT coalesce(sum(amount), 0) FROM entries e "
				"WHERE e.account = a.id)", NULL), 0);
}
END_TEST

START_TEST(test_migrate_is_idempotent)
{
	fund(alice, 100);
	ck_assert_int_eq(pg_migrate(L.pg.conn, schema_ledger_sql), 0);
	ck_assert_int_eq(pg_migrate(L.pg.conn, schema_ledger_sql), 0);
	ck_assert_int_eq(get(alice).balance, 100);
	struct paytx_prepare p = transfer(next_txn(), alice, bob, 100, "USD");
	ck_assert(prepare_alone(&p).yes);
}
END_TEST

/* Processes starting together on an empty shard all migrate it. */
START_TEST(test_concurrent_migrations_do_not_conflict)
{
	char name[64], dsn[sizeof(test_dsn)];
	snprintf(name, sizeof(name), "paytx_test_ledger_%ld_m", (long)getpid());
	ck_assert_int_eq(pgtest_db_create(admin_dsn, name, dsn, sizeof(dsn)), 0);
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		ck_assert_int_ge(kids[i], 0);
		if (kids[i] == 0) {
			PGconn *c;
			int err = pg_connect(&c, dsn, "test_ledger", NULL);
			if (!err)
				err = pg_migrate(c, schema_ledger_sql);
			PQfinish(c);
			_exit(err ? 1 : 0);
		}
	}
	int failed = 0;
	for (int i = 0; i < 4; i++) {
		int status;
		ck_assert_int_eq(waitpid(kids[i], &status, 0), kids[i]);
		failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	pgtest_db_drop(admin_dsn, name);
	ck_assert_int_eq(failed, 0);
}
END_TEST

/* Schema version 1 kept reservations in a table holds. A shard migrated
 * with payments in doubt must still post or release each one exactly once. */
extern const char ledger_v1_sql[];

static int64_t scalar_on(PGconn *c, const char *sql)
{
	PGresult *res = pg_query(c, sql, 0, NULL);
	ck_assert_msg(res != NULL, "query failed: %s", sql);
	ck_assert_int_eq(PQntuples(res), 1);
	int64_t v = PQgetisnull(res, 0, 0) ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static void exec_on(PGconn *c, const char *sql)
{
	ck_assert_msg(pg_exec(c, sql) == 0, "failed: %s", sql);
}

START_TEST(test_upgrade_from_v1_settles_reservations_in_doubt)
{
	char name[64], dsn[sizeof(test_dsn)];
	snprintf(name, sizeof(name), "paytx_test_ledger_%ld_v1", (long)getpid());
	ck_assert_int_eq(pgtest_db_create(admin_dsn, name, dsn, sizeof(dsn)), 0);
	PGconn *c;
	ck_assert_int_eq(pg_connect(&c, dsn, "test_ledger", NULL), 0);
	ck_assert_int_eq(pg_migrate(c, ledger_v1_sql), 0);
	/* Version 1's own functions: 1 funds alice, 2 and 3 stay in doubt,
	 * 4 is aborted before its prepare, 5 is refused. */
	exec_on(c, "SELECT ledger_account_create('w', 'USD', true), "
		   "ledger_account_create('a', 'USD', false), "
		   "ledger_account_create('b', 'USD', false)");
	exec_on(c, "SELECT ledger_prepare(1, 'ledger.0', 'p1', '[{\"account\": \"w\", "
		   "\"amount\": -100, \"currency\": \"USD\"}, {\"account\": \"a\", "
		   "\"amount\": 100, \"currency\": \"USD\"}]'), ledger_commit(1, 'ledger.0')");
	for (int t = 2; t <= 5; t++) {
		char sql[512];
		snprintf(sql, sizeof(sql), "SELECT ledger_prepare(%d, 'ledger.0', 'p%d', "
			 "'[{\"account\": \"a\", \"amount\": -%d, \"currency\": \"USD\"}, "
			 "{\"account\": \"b\", \"amount\": %d, \"currency\": \"USD\"}]')",
			 t, t, t == 5 ? 1000 : t * 10, t == 5 ? 1000 : t * 10);
		if (t == 4)
			exec_on(c, "SELECT ledger_abort(4, 'ledger.0', 'p4')");
		exec_on(c, sql);
	}
	ck_assert_int_eq(scalar_on(c, "SELECT held FROM accounts WHERE id = 'a'"), 50);
	static const char roles_on_holds[] =
		"SELECT count(*) FROM pg_roles r, (VALUES ('SELECT'), ('INSERT'), ('UPDATE')) p(p) "
		"WHERE rolname IN ('paytx_ledger', 'paytx_cache') "
		"AND has_any_column_privilege(r.oid, to_regclass('%s'), p.p)";
	char sql[256];
	snprintf(sql, sizeof(sql), roles_on_holds, "holds");
	ck_assert_int_eq(scalar_on(c, sql), 4); /* version 1's grants, for the check below */

	ck_assert_int_eq(pg_migrate(c, schema_ledger_sql), 0);
	ck_assert_int_eq(pg_migrate(c, schema_ledger_sql), 0); /* and again: harmless */
	ck_assert_int_eq(scalar_on(c, "SELECT version FROM paytx_schema"), PG_SCHEMA_LEDGER_VERSION);
	ck_assert_int_eq(scalar_on(c, "SELECT count(*) FROM open_holds WHERE txn IN (2, 3)"), 4);
	ck_assert_int_eq(scalar_on(c, "SELECT sum(debit) FROM open_holds"), 50);
	ck_assert_int_eq(scalar_on(c, "SELECT (to_regclass('holds') IS NULL)::int"), 1);
	/* the history stays; the moved rows are not left behind as open */
	ck_assert_int_eq(scalar_on(c, "SELECT count(*) FROM holds_v1 WHERE state = 'posted'"), 2);
	ck_assert_int_eq(scalar_on(c, "SELECT count(*) FROM holds_v1 WHERE state = 'held'"), 0);
	snprintf(sql, sizeof(sql), roles_on_holds, "holds_v1");
	ck_assert_int_eq(scalar_on(c, sql), 0); /* the owner's alone now */

	struct ledger l;
	ck_assert_int_eq(ledger_init(&l, c, PARTICIPANT), 0);
	ck_assert_int_eq(ledger_ops.commit(&l, 2), 0);
	ck_assert_int_eq(ledger_ops.abort(&l, 3), 0);
	ck_assert_int_eq(ledger_ops.commit(&l, 2), 0);             /* already */
	ck_assert_int_eq(ledger_ops.commit(&l, 3), PAYTX_EPROTO);  /* aborted */
	ck_assert_int_eq(ledger_ops.commit(&l, 5), PAYTX_EPROTO);  /* refused */
	struct paytx_prepare p = { .txn = 4, .nlegs = 1, .deadline_ms = clock_wall_ms() + 5000 };
	snprintf(p.payment_id, sizeof(p.payment_id), "p4");
	snprintf(p.legs[0].account, sizeof(p.legs[0].account), "a");
	p.legs[0].amount = -1;
	memcpy(p.legs[0].currency, "USD", 4);
	struct paytx_vote v = { .txn = 4 };
	ck_assert_int_eq(ledger_ops.prepare(&l, &p, &v), 0);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "aborted");

	c = l.pg.conn;
	ck_assert_int_eq(scalar_on(c, "SELECT balance * 1000 + held FROM accounts WHERE id = 'a'"),
			 80000);
	ck_assert_int_eq(scalar_on(c, "SELECT balance FROM accounts WHERE id = 'b'"), 20);
	ck_assert_int_eq(scalar_on(c, "SELECT sum(balance) FROM accounts"), 0);
	ck_assert_int_eq(scalar_on(c, "SELECT count(*) FROM entries WHERE txn = 2"), 2);
	ck_assert_int_eq(scalar_on(c, "SELECT count(*) FROM entries WHERE txn = 3"), 0);
	ck_assert_int_eq(scalar_on(c, "SELECT count(*) FROM open_holds"), 0);
	ledger_finish(&l);
	pgtest_db_drop(admin_dsn, name);
}
END_TEST

#define ADD_CASE(s, fn)                                             \
	do {                                                        \
		TCase *tc = tcase_create(#fn);                      \
		tcase_add_checked_fixture(tc, setup, teardown);     \
		tcase_set_timeout(tc, 60);                          \
		tcase_add_test(tc, fn);                             \
		suite_add_tcase(s, tc);                             \
	} while (0)

static Suite *ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	ADD_CASE(s, test_prepare_reserves_funds_and_votes_yes);
	ADD_CASE(s, test_insufficient_funds_votes_no_and_leaves_no_hold);
	ADD_CASE(s, test_unknown_account_votes_no);
	ADD_CASE(s, test_currency_mismatch_votes_no);
	ADD_CASE(s, test_external_account_may_go_negative);
	ADD_CASE(s, test_commit_posts_journal_and_balances);
	ADD_CASE(s, test_commit_is_idempotent);
	ADD_CASE(s, test_abort_releases_hold);
	ADD_CASE(s, test_abort_before_prepare_votes_no);
	ADD_CASE(s, test_duplicate_prepare_revotes_same);
	ADD_CASE(s, test_commit_without_prepare_is_protocol_violation);
	ADD_CASE(s, test_abort_after_commit_is_refused);
	ADD_CASE(s, test_journal_rows_cannot_be_updated_or_deleted);
	ADD_CASE(s, test_batch_of_prepares_sees_earlier_holds);
	ADD_CASE(s, test_rolled_back_batch_leaves_nothing);
	ADD_CASE(s, test_batch_of_commits_posts_each_txn_in_order);
	ADD_CASE(s, test_batch_of_prepares_that_fit_reserves_at_once);
	ADD_CASE(s, test_batch_of_prepares_that_do_not_fit_votes_one_by_one);
	ADD_CASE(s, test_batch_runs_steps_in_order);
	ADD_CASE(s, test_batch_with_a_repeated_prepare_revotes);
	ADD_CASE(s, test_a_batch_and_its_commit_are_one_round_trip);
	ADD_CASE(s, test_legs_on_one_account_are_merged);
	ADD_CASE(s, test_in_doubt_lists_old_yes_votes_only);
	ADD_CASE(s, test_steps_scan_no_table_in_generic_plans);
	ADD_CASE(s, test_account_create_is_idempotent_and_detects_conflict);
	ADD_CASE(s, test_reset_recovers_a_lost_connection);
	ADD_CASE(s, test_concurrent_duplicate_prepare_waits_and_revotes);
	ADD_CASE(s, test_balances_sum_to_zero_per_currency);
	ADD_CASE(s, test_migrate_is_idempotent);
	ADD_CASE(s, test_concurrent_migrations_do_not_conflict);
	ADD_CASE(s, test_upgrade_from_v1_settles_reservations_in_doubt);
	return s;
}

int main(void)
{
	log_init("test_ledger");
	if (!getenv("PAYTX_LOG_LEVEL"))
		(void)log_set_level_name("warn");
	char db[64];
	int status = pgtest_open("ledger", schema_ledger_sql,
				 "CREATE SEQUENCE test_txn; CREATE SEQUENCE test_case", &admin_dsn,
				 db, sizeof(db), test_dsn, sizeof(test_dsn));
	if (status)
		return status;
	SRunner *sr = srunner_create(ledger_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	pgtest_db_drop(admin_dsn, db);
	return failed ? 1 : 0;
}

/* Unit tests of the coordinator's per-transaction state machine. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"
#include "txn.h"

static struct shardmap shards;

static struct paytx_payment transfer(const char *from, const char *to, int64_t amount)
{
	struct paytx_payment p = { .nlegs = 2 };
	snprintf(p.payment_id, sizeof(p.payment_id), "pay-1");
	snprintf(p.legs[0].account, sizeof(p.legs[0].account), "%s", from);
	snprintf(p.legs[1].account, sizeof(p.legs[1].account), "%s", to);
	p.legs[0].amount = -amount;
	p.legs[1].amount = amount;
	memcpy(p.legs[0].currency, "EUR", 4);
	memcpy(p.legs[1].currency, "EUR", 4);
	return p;
}

/* Two account ids that land on different shards. */
static void cross_shard_ids(char *a, char *b)
{
	snprintf(a, 16, "acct-0");
	for (int i = 1;; i++) {
		snprintf(b, 16, "acct-%d", i);
		if (shardmap_index(&shards, a) != shardmap_index(&shards, b))
			return;
	}
}

static void setup(void)
{
	ck_assert_int_eq(shardmap_parse(&shards, "ledger.0,ledger.1"), 0);
}

static void make_txn(struct txn *t)
{
	char a[16], b[16];
	cross_shard_ids(a, b);
	struct paytx_payment p = transfer(a, b, 100);
	ck_assert_int_eq(txn_init(t, 7, &p, &shards, NULL, 1000, 50, 5000), 0);
}

static struct paytx_vote vote(int64_t txn, const char *who, bool yes, const char *reason)
{
	struct paytx_vote v = { .txn = txn, .yes = yes };
	snprintf(v.participant, sizeof(v.participant), "%s", who);
	snprintf(v.reason, sizeof(v.reason), "%s", reason ? reason : "");
	return v;
}

static struct paytx_ack ack(int64_t txn, const char *who, bool commit)
{
	struct paytx_ack a = { .txn = txn, .commit = commit };
	snprintf(a.participant, sizeof(a.participant), "%s", who);
	return a;
}

START_TEST(test_legs_are_split_by_shard)
{
	struct txn t;
	make_txn(&t);
	ck_assert_uint_eq(t.nparts, 2);
	ck_assert_uint_eq(__builtin_popcount(t.parts[0].legs), 1);
	ck_assert_uint_eq(__builtin_popcount(t.parts[1].legs), 1);
	struct paytx_prepare p;
	txn_prepare_for(&t, &t.parts[0], &p);
	ck_assert_uint_eq(p.nlegs, 1);
	ck_assert_int_eq(p.deadline_ms, 6000);
	ck_assert_str_eq(p.payment_id, "pay-1");
}
END_TEST

START_TEST(test_same_shard_legs_make_one_participant)
{
	struct txn t;
	struct paytx_payment p = transfer("same", "same-too", 5);
	/* force both legs onto one shard with a one-shard map */
	struct shardmap one;
	ck_assert_int_eq(shardmap_parse(&one, "ledger.0"), 0);
	ck_assert_int_eq(txn_init(&t, 1, &p, &one, NULL, 0, 0, 1000), 0);
	ck_assert_uint_eq(t.nparts, 1);
	ck_assert_uint_eq(t.parts[0].legs, 3u);
}
END_TEST

START_TEST(test_extra_participant_sees_every_leg)
{
	struct txn t;
	struct shardmap extra;
	ck_assert_int_eq(shardmap_parse(&extra, "risk"), 0);
	struct paytx_payment p = transfer("a", "b", 5);
	ck_assert_int_eq(txn_init(&t, 1, &p, &shards, &extra, 0, 0, 1000), 0);
	struct txn_part *risk = txn_part_find(&t, "risk");
	ck_assert_ptr_nonnull(risk);
	ck_assert_uint_eq(risk->legs, 3u);
}
END_TEST

START_TEST(test_all_yes_decides_commit)
{
	struct txn t;
	make_txn(&t);
	struct paytx_vote v0 = vote(7, t.parts[0].name, true, NULL);
	struct paytx_vote v1 = vote(7, t.parts[1].name, true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &v0), TXN_STEP_NONE);
	ck_assert_int_eq(txn_on_vote(&t, &v1), TXN_STEP_DECIDE);
	ck_assert(t.commit);
	ck_assert(t.deciding);
	ck_assert_int_eq(t.state, TXN_PREPARING);
}
END_TEST

START_TEST(test_one_no_decides_abort_with_its_reason)
{
	struct txn t;
	make_txn(&t);
	struct paytx_vote v = vote(7, t.parts[1].name, false, "insufficient_funds");
	ck_assert_int_eq(txn_on_vote(&t, &v), TXN_STEP_DECIDE);
	ck_assert(!t.commit);
	ck_assert_str_eq(t.reason, "insufficient_funds");
	/* the other participant's late yes changes nothing */
	struct paytx_vote y = vote(7, t.parts[0].name, true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &y), TXN_STEP_NONE);
	ck_assert(!t.commit);
}
END_TEST

START_TEST(test_duplicate_and_foreign_votes_are_ignored)
{
	struct txn t;
	make_txn(&t);
	struct paytx_vote v0 = vote(7, t.parts[0].name, true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &v0), TXN_STEP_NONE);
	ck_assert_int_eq(txn_on_vote(&t, &v0), TXN_STEP_NONE);
	struct paytx_vote stranger = vote(7, "ledger.9", true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &stranger), TXN_STEP_NONE);
	struct paytx_vote other_txn = vote(8, t.parts[1].name, true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &other_txn), TXN_STEP_NONE);
	ck_assert(!t.deciding);
}
END_TEST

START_TEST(test_deadline_decides_abort_timeout)
{
	struct txn t;
	make_txn(&t);
	struct paytx_vote v0 = vote(7, t.parts[0].name, true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &v0), TXN_STEP_NONE);
	ck_assert_int_eq(txn_on_timer(&t, 5999), TXN_STEP_NONE);
	ck_assert_int_eq(txn_on_timer(&t, 6000), TXN_STEP_DECIDE);
	ck_assert(!t.commit);
	ck_assert_str_eq(t.reason, "timeout");
	ck_assert_ptr_nonnull(strstr(t.detail, t.parts[1].name));
	ck_assert_ptr_null(strstr(t.detail, t.parts[0].name));
}
END_TEST

START_TEST(test_nothing_is_sent_while_the_decision_is_being_logged)
{
	struct txn t;
	make_txn(&t);
	ck_assert(txn_resend_due(&t, 50));
	(void)txn_decide(&t, false, "timeout", "");
	ck_assert(!txn_resend_due(&t, 1000000));
	for (size_t i = 0; i < t.nparts; i++)
		ck_assert(!txn_part_waiting(&t, &t.parts[i]));
}
END_TEST

START_TEST(test_acks_finish_only_when_all_arrive)
{
	struct txn t;
	make_txn(&t);
	(void)txn_decide(&t, true, NULL, NULL);
	txn_decided(&t, true, 100);
	ck_assert_int_eq(t.state, TXN_COMMITTING);
	struct paytx_ack a0 = ack(7, t.parts[0].name, true);
	struct paytx_ack wrong = ack(7, t.parts[1].name, false);
	struct paytx_ack a1 = ack(7, t.parts[1].name, true);
	ck_assert_int_eq(txn_on_ack(&t, &a0), TXN_STEP_NONE);
	ck_assert_int_eq(txn_on_ack(&t, &a0), TXN_STEP_NONE);
	ck_assert_int_eq(txn_on_ack(&t, &wrong), TXN_STEP_NONE);
	ck_assert(txn_part_waiting(&t, &t.parts[1]));
	ck_assert(!txn_part_waiting(&t, &t.parts[0]));
	ck_assert_int_eq(txn_on_ack(&t, &a1), TXN_STEP_DONE);
	ck_assert_int_eq(t.state, TXN_COMMITTED);
}
END_TEST

START_TEST(test_logged_decision_of_another_coordinator_wins)
{
	struct txn t;
	make_txn(&t);
	(void)txn_decide(&t, true, NULL, NULL);
	txn_decided(&t, false, 100);
	ck_assert_int_eq(t.state, TXN_ABORTING);
	ck_assert(!t.commit);
	ck_assert_str_eq(t.reason, "decided_elsewhere");
}
END_TEST

START_TEST(test_resends_back_off_exponentially)
{
	struct txn t;
	make_txn(&t);
	ck_assert(txn_resend_due(&t, 50));
	ck_assert(!txn_resend_due(&t, 50 + TXN_RESEND_MIN_MS - 1));
	ck_assert(txn_resend_due(&t, 50 + TXN_RESEND_MIN_MS));
	int64_t next = t.next_send_ms;
	ck_assert_int_eq(next, 50 + TXN_RESEND_MIN_MS + 2 * TXN_RESEND_MIN_MS);
	for (int i = 0; i < 20; i++)
		ck_assert(txn_resend_due(&t, t.next_send_ms));
	ck_assert_int_eq(t.backoff_ms, TXN_RESEND_MAX_MS);
}
END_TEST

START_TEST(test_decision_is_resent_after_decided)
{
	struct txn t;
	make_txn(&t);
	(void)txn_decide(&t, false, "timeout", "");
	txn_decided(&t, false, 100);
	ck_assert(txn_resend_due(&t, 100));
	ck_assert(txn_part_waiting(&t, &t.parts[0]));
	ck_assert(txn_part_waiting(&t, &t.parts[1]));
}
END_TEST

/* A participant draining a long queue is not sent the requests still in it
 * again (that was the recovery re-send storm), nor is one that is down. */
START_TEST(test_no_resend_while_the_request_is_still_queued)
{
	struct peers p = { 0 };
	struct peer *l0 = peers_get(&p, "ledger.0");
	ck_assert_ptr_eq(peers_get(&p, "ledger.0"), l0);
	uint64_t first = peers_sent(l0), mine = 0;
	for (int i = 0; i < 5000; i++)
		mine = peers_sent(l0);
	ck_assert(!peers_resend_useful(&p, l0, mine, 900, 1400));
	for (uint64_t s = first; s < mine; s += 7) {
		peers_answered(l0, s);
		ck_assert(!peers_resend_useful(&p, l0, mine, 900, 900 + PEERS_FORCE_MS - 1));
	}
	/* The safety net: a request waiting PEERS_FORCE_MS goes out again. */
	ck_assert(peers_resend_useful(&p, l0, mine, 900, 900 + PEERS_FORCE_MS));
}
END_TEST

START_TEST(test_resend_when_a_later_request_was_answered)
{
	struct peers p = { 0 };
	struct peer *l0 = peers_get(&p, "ledger.0"), *l1 = peers_get(&p, "ledger.1");
	uint64_t lost = peers_sent(l0), later = peers_sent(l0);
	uint64_t other = peers_sent(l1);
	peers_answered(l0, lost - 1);
	ck_assert(!peers_resend_useful(&p, l0, lost, 1000, 1500));
	peers_answered(l0, later);
	ck_assert(peers_resend_useful(&p, l0, lost, 1000, 1500));
	ck_assert(!peers_resend_useful(&p, l1, other, 1000, 1500)); /* per participant */
}
END_TEST

START_TEST(test_resend_after_a_lost_connection)
{
	struct peers p = { 0 };
	struct peer *risk = peers_get(&p, "risk");
	uint64_t seq = peers_sent(risk);
	ck_assert(!peers_resend_useful(&p, risk, seq, 900, 1500));
	peers_connection_lost(&p, 1100);
	ck_assert(peers_resend_useful(&p, risk, seq, 900, 1500));
	/* Sent on the new connection: no reason to doubt it. */
	ck_assert(!peers_resend_useful(&p, risk, peers_sent(risk), 1200, 1800));
}
END_TEST

START_TEST(test_peers_table_full_allows_every_resend)
{
	struct peers p = { 0 };
	char name[16];
	for (int i = 0; i < PEERS_MAX; i++) {
		snprintf(name, sizeof(name), "p%d", i);
		ck_assert_ptr_nonnull(peers_get(&p, name));
	}
	ck_assert_ptr_null(peers_get(&p, "one-too-many"));
	ck_assert(peers_resend_useful(&p, NULL, 1, 0, 1));
}
END_TEST

START_TEST(test_in_doubt_from_first_yes_until_every_ack)
{
	struct txn t;
	make_txn(&t);
	ck_assert_int_eq(t.started_ms, 50);
	ck_assert(!txn_in_doubt(&t));              /* no one holds anything yet */
	struct paytx_vote v0 = vote(7, t.parts[0].name, true, NULL);
	struct paytx_vote v1 = vote(7, t.parts[1].name, true, NULL);
	ck_assert_int_eq(txn_on_vote(&t, &v0), TXN_STEP_NONE);
	ck_assert(txn_in_doubt(&t));               /* prepared, undecided */
	ck_assert_int_eq(txn_on_vote(&t, &v1), TXN_STEP_DECIDE);
	txn_decided(&t, true, 120);
	ck_assert_int_eq(t.decided_ms, 120);
	ck_assert(txn_in_doubt(&t));               /* decided, not acked */
	struct paytx_ack a0 = ack(7, t.parts[0].name, true);
	struct paytx_ack a1 = ack(7, t.parts[1].name, true);
	ck_assert_int_eq(txn_on_ack(&t, &a0), TXN_STEP_NONE);
	ck_assert(txn_in_doubt(&t));
	ck_assert_int_eq(txn_on_ack(&t, &a1), TXN_STEP_DONE);
	ck_assert(!txn_in_doubt(&t));
}
END_TEST

static Suite *txn_suite(void)
{
	Suite *s = suite_create("txn");
	struct { const char *name; const TTest *fn; } cases[] = {
		{ "legs_are_split_by_shard", test_legs_are_split_by_shard },
		{ "same_shard_legs_make_one_participant", test_same_shard_legs_make_one_participant },
		{ "extra_participant_sees_every_leg", test_extra_participant_sees_every_leg },
		{ "all_yes_decides_commit", test_all_yes_decides_commit },
		{ "one_no_decides_abort_with_its_reason", test_one_no_decides_abort_with_its_reason },
		{ "duplicate_and_foreign_votes_are_ignored", test_duplicate_and_foreign_votes_are_ignored },
		{ "deadline_decides_abort_timeout", test_deadline_decides_abort_timeout },
		{ "nothing_is_sent_while_the_decision_is_being_logged",
		  test_nothing_is_sent_while_the_decision_is_being_logged },
		{ "acks_finish_only_when_all_arrive", test_acks_finish_only_when_all_arrive },
		{ "logged_decision_of_another_coordinator_wins",
		  test_logged_decision_of_another_coordinator_wins },
		{ "resends_back_off_exponentially", test_resends_back_off_exponentially },
		{ "decision_is_resent_after_decided", test_decision_is_resent_after_decided },
		{ "no_resend_while_the_request_is_still_queued",
		  test_no_resend_while_the_request_is_still_queued },
		{ "resend_when_a_later_request_was_answered",
		  test_resend_when_a_later_request_was_answered },
		{ "resend_after_a_lost_connection", test_resend_after_a_lost_connection },
		{ "peers_table_full_allows_every_resend", test_peers_table_full_allows_every_resend },
		{ "in_doubt_from_first_yes_until_every_ack",
		  test_in_doubt_from_first_yes_until_every_ack },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_add_checked_fixture(tc, setup, NULL);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(txn_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

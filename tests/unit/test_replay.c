/* Unit tests of the replay guard. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

#define NOW 1795000000
#define WINDOW 900

static struct replay_guard g;
static const char *why;

static void setup(void)
{
	replay_init(&g, WINDOW);
}

static void teardown(void)
{
	replay_finish(&g);
}

static int check(const char *id, int64_t ts, int64_t now, bool redelivered)
{
	return replay_check(&g, id, ts, now, redelivered, &why);
}

static int check_n(const char *sender, unsigned long long n)
{
	char id[64];
	snprintf(id, sizeof(id), "%s-%llu", sender, n);
	return check(id, NOW, NOW, false);
}

START_TEST(test_first_delivery_is_accepted_and_the_copy_refused)
{
	ck_assert_int_eq(check("a1b2-42-1", NOW, NOW, false), 0);
	ck_assert_int_eq(check("a1b2-42-1", NOW, NOW, false), PAYTX_EREPLAY);
	ck_assert_str_eq(why, "message_id seen before");
	ck_assert_int_eq(check("a1b2-42-2", NOW, NOW, false), 0);
}
END_TEST

START_TEST(test_broker_redelivery_is_not_a_replay)
{
	ck_assert_int_eq(check("s-1", NOW, NOW, false), 0);
	ck_assert_int_eq(check("s-1", NOW, NOW + 5, true), 0);
}
END_TEST

START_TEST(test_timestamp_outside_the_window_is_a_replay)
{
	ck_assert_int_eq(check("s-1", NOW - WINDOW - 1, NOW, false), PAYTX_EREPLAY);
	ck_assert_int_eq(check("s-2", NOW + WINDOW + 1, NOW, false), PAYTX_EREPLAY);
	ck_assert_str_eq(why, "timestamp outside the replay window");
	ck_assert_int_eq(check("s-3", NOW - WINDOW, NOW, false), 0);
	/* Even a redelivery: its first copy may be long gone from memory. */
	ck_assert_int_eq(check("s-4", NOW - WINDOW - 1, NOW, true), PAYTX_EREPLAY);
}
END_TEST

START_TEST(test_malformed_ids_and_missing_timestamps_are_invalid)
{
	const char *bad[] = { "", "nodash", "-1", "s-", "s-x1", "s-0", "s-12345678901234567890",
			      "0123456789012345678901234567890123456789012345678-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(check(bad[i], NOW, NOW, false) == PAYTX_EINVAL, "%s", bad[i]);
	ck_assert_int_eq(check(NULL, NOW, NOW, false), PAYTX_EINVAL);
	ck_assert_int_eq(check("s-1", 0, NOW, false), PAYTX_EINVAL);
}
END_TEST

START_TEST(test_reordering_within_the_span_is_accepted_once)
{
	ck_assert_int_eq(check_n("s", 10), 0);
	ck_assert_int_eq(check_n("s", 5), 0);
	ck_assert_int_eq(check_n("s", 7), 0);
	ck_assert_int_eq(check_n("s", 5), PAYTX_EREPLAY);
	ck_assert_int_eq(check_n("s", 10), PAYTX_EREPLAY);
	ck_assert_int_eq(check_n("s", 11), 0);
}
END_TEST

START_TEST(test_counters_far_behind_are_refused)
{
	ck_assert_int_eq(check_n("s", 1), 0);
	ck_assert_int_eq(check_n("s", 1 + REPLAY_SPAN), 0);
	ck_assert_int_eq(check_n("s", 2), 0);  /* still inside the span */
	ck_assert_int_eq(check_n("s", 1), PAYTX_EREPLAY);
	ck_assert_str_eq(why, "message_id too far behind its sender's newest message");
}
END_TEST

START_TEST(test_window_slides_and_forgets_old_bits)
{
	/* Counter c and c + SPAN share a bit: sliding must clear it. */
	ck_assert_int_eq(check_n("s", 3), 0);
	ck_assert_int_eq(check_n("s", 3 + REPLAY_SPAN), 0);
	ck_assert_int_eq(check_n("s", 3 + REPLAY_SPAN), PAYTX_EREPLAY);
	for (unsigned long long c = 4 + REPLAY_SPAN; c < 4 + 3 * REPLAY_SPAN; c++)
		ck_assert_int_eq(check_n("s", c), 0);
}
END_TEST

START_TEST(test_senders_are_independent)
{
	ck_assert_int_eq(check_n("a", 1), 0);
	ck_assert_int_eq(check_n("b", 1), 0);
	ck_assert_int_eq(check_n("ab", 1), 0);
	ck_assert_int_eq(check_n("a", 1), PAYTX_EREPLAY);
}
END_TEST

START_TEST(test_silent_senders_are_forgotten_and_memory_stays_bounded)
{
	char id[64];
	for (int i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "old%d-1", i);
		ck_assert_int_eq(check(id, NOW, NOW, false), 0);
	}
	ck_assert_uint_eq(g.n, 100);
	/* Much later a new sender arrives: the silent ones are dropped. */
	ck_assert_int_eq(check("new-1", NOW + 2 * WINDOW, NOW + 2 * WINDOW, false), 0);
	ck_assert_uint_eq(g.n, 1);
	for (int i = 0; i < REPLAY_SENDERS_MAX + 10; i++) {
		snprintf(id, sizeof(id), "many%d-1", i);
		ck_assert_int_eq(check(id, NOW + 2 * WINDOW, NOW + 2 * WINDOW, false), 0);
	}
	ck_assert_uint_le(g.n, REPLAY_SENDERS_MAX);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_first_delivery_is_accepted_and_the_copy_refused),
		UNIT_CASE(test_broker_redelivery_is_not_a_replay),
		UNIT_CASE(test_timestamp_outside_the_window_is_a_replay),
		UNIT_CASE(test_malformed_ids_and_missing_timestamps_are_invalid),
		UNIT_CASE(test_reordering_within_the_span_is_accepted_once),
		UNIT_CASE(test_counters_far_behind_are_refused),
		UNIT_CASE(test_window_slides_and_forgets_old_bits),
		UNIT_CASE(test_senders_are_independent),
		UNIT_CASE(test_silent_senders_are_forgotten_and_memory_stays_bounded),
	};
	return UNIT_RUN("replay", cases, setup, teardown);
}

/* Unit tests of a loop's phase accounting and the counters it feeds. */
#include "unit.h"

#include "clock.h"
#include "loopstat.h"
#include "metrics.h"

/* One iteration with a collect and an apply phase, each at least ms long. */
static void iterate(struct loopstat *s, int ms, size_t messages)
{
	loopstat_begin(s);
	clock_sleep_ms(ms);
	loopstat_mark(s, 0, "wait+collect");
	clock_sleep_ms(ms);
	loopstat_mark(s, 1, "apply+commit");
	loopstat_end(s, messages);
}

START_TEST(test_push_adds_iterations_messages_and_phase_time)
{
	struct loopstat s;
	loopstat_init(&s, "participant loop");
	iterate(&s, 2, 3);
	iterate(&s, 2, 4);
	loopstat_push(&s);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_ITERATIONS, "loop", "participant", NULL, NULL),
			  2);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_MESSAGES, "loop", "participant", NULL, NULL),
			  7);
	uint64_t collect = metrics_get(METRIC_LOOP_PHASE_US, "loop", "participant", "phase",
				       "wait+collect");
	uint64_t apply = metrics_get(METRIC_LOOP_PHASE_US, "loop", "participant", "phase",
				     "apply+commit");
	ck_assert_uint_ge(collect, 4000);
	ck_assert_uint_ge(apply, 4000);
	ck_assert_uint_lt(collect, 1000000);
}
END_TEST

START_TEST(test_a_second_push_adds_only_what_is_new)
{
	struct loopstat s;
	loopstat_init(&s, "coordinator loop");
	iterate(&s, 1, 5);
	loopstat_push(&s);
	loopstat_push(&s);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_MESSAGES, "loop", "coordinator", NULL, NULL),
			  5);
	iterate(&s, 1, 2);
	loopstat_push(&s);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_ITERATIONS, "loop", "coordinator", NULL, NULL),
			  2);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_MESSAGES, "loop", "coordinator", NULL, NULL),
			  7);
}
END_TEST

START_TEST(test_the_loop_pushes_by_itself_once_a_push_period_passed)
{
	struct loopstat s;
	loopstat_init(&s, "cache loop");
	iterate(&s, 1, 1);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_ITERATIONS, "loop", "cache", NULL, NULL), 0);
	clock_sleep_ms(LOOPSTAT_PUSH_MS + 10);
	iterate(&s, 1, 1);
	ck_assert_uint_eq(metrics_get(METRIC_LOOP_ITERATIONS, "loop", "cache", NULL, NULL), 2);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_push_adds_iterations_messages_and_phase_time),
		UNIT_CASE(test_a_second_push_adds_only_what_is_new),
		UNIT_CASE(test_the_loop_pushes_by_itself_once_a_push_period_passed),
	};
	return UNIT_RUN("loopstat", cases, NULL, NULL);
}

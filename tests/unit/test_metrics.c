/* Unit tests of the process counters and their Prometheus rendering. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

START_TEST(test_counters_count_per_label_set)
{
	ck_assert_uint_eq(metrics_inc(METRIC_DEAD_LETTERS, "code", "replayed", "queue",
				      "ledger.0", 1), 1);
	ck_assert_uint_eq(metrics_inc(METRIC_DEAD_LETTERS, "code", "replayed", "queue",
				      "ledger.0", 2), 3);
	ck_assert_uint_eq(metrics_inc(METRIC_DEAD_LETTERS, "code", "bad_signature", "queue",
				      "ledger.0", 1), 1);
	ck_assert_uint_eq(metrics_get(METRIC_DEAD_LETTERS, "code", "replayed", "queue",
				      "ledger.0"), 3);
	ck_assert_uint_eq(metrics_get(METRIC_DEAD_LETTERS, "code", "replayed", "queue",
				      "ledger.1"), 0);
	ck_assert_uint_eq(metrics_sum(METRIC_DEAD_LETTERS), 4);
}
END_TEST

START_TEST(test_unknown_names_are_ignored)
{
	ck_assert_uint_eq(metrics_inc("no_such_metric", NULL, NULL, NULL, NULL, 1), 0);
	ck_assert_uint_eq(metrics_get("no_such_metric", NULL, NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(test_renders_prometheus_text_with_escaped_labels)
{
	struct paytx_buf b;
	paytx_buf_init(&b);
	ck_assert_uint_eq(metrics_inc(METRIC_DEAD_LETTERS, "code", "x\"y\\z\n", "queue", "q", 5), 5);
	ck_assert_int_eq(metrics_render(&b), 0);
	ck_assert_ptr_nonnull(strstr(b.data, "# TYPE paytx_dead_letters_total counter\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "# HELP paytx_dead_letters_total "));
	ck_assert_ptr_nonnull(
		strstr(b.data, "paytx_dead_letters_total{code=\"x\\\"y\\\\z\\n\",queue=\"q\"} 5\n"));
	paytx_buf_finish(&b);
}
END_TEST

START_TEST(test_gauges_hold_the_last_value_set)
{
	metrics_set(METRIC_INFLIGHT, NULL, NULL, 7);
	metrics_set(METRIC_INFLIGHT, NULL, NULL, 3);
	ck_assert(metrics_gauge(METRIC_INFLIGHT, NULL, NULL) == 3);
	struct paytx_buf b;
	paytx_buf_init(&b);
	ck_assert_int_eq(metrics_render(&b), 0);
	ck_assert_ptr_nonnull(strstr(b.data, "# TYPE paytx_inflight gauge\npaytx_inflight 3\n"));
	paytx_buf_finish(&b);
}
END_TEST

START_TEST(test_a_name_of_another_kind_is_ignored)
{
	/* Relative checks: without CK_FORK the cases share one process. */
	metrics_set(METRIC_INFLIGHT, NULL, NULL, 11);
	uint64_t payments = metrics_sum(METRIC_PAYMENTS);
	ck_assert_uint_eq(metrics_inc(METRIC_INFLIGHT, NULL, NULL, NULL, NULL, 1), 0);
	metrics_set(METRIC_PAYMENTS, NULL, NULL, 5);
	metrics_observe(METRIC_PAYMENTS, NULL, NULL, 5);
	metrics_observe(METRIC_INFLIGHT, NULL, NULL, 5);
	metrics_observe("no_such_metric", NULL, NULL, 5);
	ck_assert_uint_eq(metrics_sum(METRIC_PAYMENTS), payments);
	ck_assert(metrics_gauge(METRIC_INFLIGHT, NULL, NULL) == 11);
	ck_assert_uint_eq(metrics_observations(METRIC_PAYMENTS, NULL, NULL), 0);
	ck_assert_uint_eq(metrics_observations(METRIC_INFLIGHT, NULL, NULL), 0);
}
END_TEST

START_TEST(test_histograms_render_cumulative_buckets_in_seconds)
{
	static const int64_t ms[] = { 0, 1, 3, 30, 40000, -5 };
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		metrics_observe(METRIC_PHASE_SECONDS, "phase", "prepare", ms[i]);
	ck_assert_uint_eq(metrics_observations(METRIC_PHASE_SECONDS, "phase", "prepare"), 6);
	struct paytx_buf b;
	paytx_buf_init(&b);
	ck_assert_int_eq(metrics_render(&b), 0);
	const char *want =
		"# TYPE paytx_phase_seconds histogram\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.001\"} 3\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.002\"} 3\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.005\"} 4\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.01\"} 4\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.025\"} 4\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.05\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.1\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.25\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"0.5\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"1\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"2.5\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"5\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"10\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"30\"} 5\n"
		"paytx_phase_seconds_bucket{phase=\"prepare\",le=\"+Inf\"} 6\n"
		"paytx_phase_seconds_sum{phase=\"prepare\"} 40.034\n"
		"paytx_phase_seconds_count{phase=\"prepare\"} 6\n";
	ck_assert_ptr_nonnull(strstr(b.data, want));
	paytx_buf_finish(&b);
}
END_TEST

START_TEST(test_unlabelled_histogram_puts_le_alone)
{
	metrics_observe(METRIC_STEP_SECONDS, NULL, NULL, 2);
	struct paytx_buf b;
	paytx_buf_init(&b);
	ck_assert_int_eq(metrics_render(&b), 0);
	ck_assert_ptr_nonnull(strstr(b.data, "\npaytx_step_seconds_bucket{le=\"0.002\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(b.data, "\npaytx_step_seconds_sum 0.002\n"));
	paytx_buf_finish(&b);
}
END_TEST

START_TEST(test_every_metric_has_help_and_type_before_its_samples)
{
	metrics_inc(METRIC_VOTES, "result", "no", "reason", "insufficient_funds", 1);
	struct paytx_buf b;
	paytx_buf_init(&b);
	ck_assert_int_eq(metrics_render(&b), 0);
	static const char *const names[] = {
		METRIC_PAYMENTS, METRIC_PHASE_SECONDS, METRIC_INFLIGHT, METRIC_RESENDS,
		METRIC_VOTES, METRIC_STEPS, METRIC_STEP_SECONDS, METRIC_IN_DOUBT,
		METRIC_OLDEST_IN_DOUBT, METRIC_STATUS_QUERIES, METRIC_DEAD_LETTERS,
		METRIC_RECONNECTS,
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char help[128];
		snprintf(help, sizeof(help), "# HELP %s ", names[i]);
		ck_assert_msg(strstr(b.data, help), "%s has no HELP", names[i]);
	}
	const char *type = strstr(b.data, "# TYPE paytx_votes_total counter\n");
	const char *sample = strstr(b.data, "paytx_votes_total{result=\"no\","
					    "reason=\"insufficient_funds\"} 1\n");
	ck_assert_ptr_nonnull(type);
	ck_assert_ptr_nonnull(sample);
	ck_assert(type < sample);
	ck_assert_int_eq(b.data[b.len - 1], '\n');
	paytx_buf_finish(&b);
}
END_TEST

START_TEST(test_batch_applies_nothing_until_flushed)
{
	struct metrics_batch mb;
	metrics_batch_init(&mb);
	for (int i = 0; i < 100; i++) /* beyond the first allocation */
		metrics_batch_inc(&mb, METRIC_STEPS, "kind", "prepare", NULL, NULL, 1);
	metrics_batch_observe(&mb, METRIC_STEP_SECONDS, "kind", "prepare", 4);
	metrics_batch_set(&mb, METRIC_IN_DOUBT, 5);
	metrics_batch_set(&mb, METRIC_IN_DOUBT, 2);
	metrics_batch_inc(&mb, "no_such_metric", NULL, NULL, NULL, NULL, 1);
	ck_assert_uint_eq(metrics_get(METRIC_STEPS, "kind", "prepare", NULL, NULL), 0);
	ck_assert_uint_eq(mb.n, 103);
	metrics_batch_flush(&mb);
	ck_assert_uint_eq(mb.n, 0);
	ck_assert_uint_eq(metrics_get(METRIC_STEPS, "kind", "prepare", NULL, NULL), 100);
	ck_assert_uint_eq(metrics_observations(METRIC_STEP_SECONDS, "kind", "prepare"), 1);
	ck_assert(metrics_gauge(METRIC_IN_DOUBT, NULL, NULL) == 2); /* in order: last wins */
	metrics_batch_flush(&mb);                          /* empty: nothing twice */
	ck_assert_uint_eq(metrics_get(METRIC_STEPS, "kind", "prepare", NULL, NULL), 100);
	metrics_batch_finish(&mb);
}
END_TEST

START_TEST(test_a_full_table_keeps_the_old_series_counting)
{
	/* Other cases may have made series before (no CK_FORK): count the
	 * new ones kept rather than assume an empty table. */
	char v[32];
	int kept = 0;
	for (int i = 0; i < 600; i++) {
		snprintf(v, sizeof(v), "r%d", i);
		kept += metrics_inc(METRIC_PAYMENTS, "outcome", "aborted", "reason", v, 1) == 1;
	}
	ck_assert_int_gt(kept, 450);
	ck_assert_int_le(kept, 512);
	ck_assert_uint_eq(metrics_inc(METRIC_PAYMENTS, "outcome", "aborted", "reason", "r0", 1), 2);
	ck_assert_uint_eq(metrics_inc(METRIC_PAYMENTS, "outcome", "aborted", "reason", "r599", 1),
			  0);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_counters_count_per_label_set),
		UNIT_CASE(test_unknown_names_are_ignored),
		UNIT_CASE(test_renders_prometheus_text_with_escaped_labels),
		UNIT_CASE(test_gauges_hold_the_last_value_set),
		UNIT_CASE(test_a_name_of_another_kind_is_ignored),
		UNIT_CASE(test_histograms_render_cumulative_buckets_in_seconds),
		UNIT_CASE(test_unlabelled_histogram_puts_le_alone),
		UNIT_CASE(test_every_metric_has_help_and_type_before_its_samples),
		UNIT_CASE(test_batch_applies_nothing_until_flushed),
		UNIT_CASE(test_a_full_table_keeps_the_old_series_counting),
	};
	return UNIT_RUN("metrics", cases, NULL, NULL);
}

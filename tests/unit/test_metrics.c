/* Unit tests of the process counters and their Prometheus rendering. */
#include "unit.h"
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

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_counters_count_per_label_set),
		UNIT_CASE(test_unknown_names_are_ignored),
		UNIT_CASE(test_renders_prometheus_text_with_escaped_labels),
	};
	return UNIT_RUN("metrics", cases, NULL, NULL);
}

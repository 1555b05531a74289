/* Unit tests of the benchmark's latency histogram and payment mix. */
#include "unit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"
#include "procstat.h"
#include "workload.h"

START_TEST(test_quantiles_are_exact_below_128_us)
{
	struct latency h;
	latency_init(&h);
	for (int v = 1; v <= 100; v++)
		latency_add(&h, v);
	ck_assert_int_eq(latency_quantile(&h, 0.5), 50);
	ck_assert_int_eq(latency_quantile(&h, 0.99), 99);
	ck_assert_int_eq(latency_quantile(&h, 1.0), 100);
	ck_assert_int_eq(h.max_us, 100);
}
END_TEST

START_TEST(test_quantiles_never_understate_and_stay_within_1_6_percent)
{
	struct latency h;
	latency_init(&h);
	/* 1 us .. ~1 s, geometric: every bucket size is exercised. */
	for (double v = 1; v < 1e6; v *= 1.01) {
		latency_init(&h);
		latency_add(&h, (int64_t)v);
		latency_add(&h, 2 * (int64_t)v + 7);  /* max above: the bucket top shows */
		int64_t q = latency_quantile(&h, 0.5);
		ck_assert_int_ge(q, (int64_t)v);
		ck_assert_msg((double)q <= (double)(int64_t)v * (1 + 1.0 / 64) + 1, "%lld for %lld",
			      (long long)q, (long long)v);
	}
}
END_TEST

START_TEST(test_merge_and_huge_values)
{
	struct latency a, b;
	latency_init(&a);
	latency_init(&b);
	latency_add(&a, 10);
	latency_add(&b, INT64_MAX);
	latency_add(&b, -5);
	latency_merge(&a, &b);
	ck_assert_uint_eq(a.n, 3);
	ck_assert_int_eq(a.max_us, LATENCY_MAX_US);
	ck_assert_int_eq(latency_quantile(&a, 1.0), LATENCY_MAX_US);
	ck_assert_int_eq(latency_quantile(&a, 0.01), 0);
}
END_TEST

static struct shardmap two_shards(void)
{
	struct shardmap m;
	ck_assert_int_eq(shardmap_parse(&m, "ledger.0,ledger.1"), 0);
	return m;
}

static struct workload make(const struct shardmap *m, double hot, double cross)
{
	struct workload w;
	struct workload_config c = { .accounts = 1000, .hot_accounts = 10, .hot_share = hot,
				     .cross_share = cross, .currency = "EUR", .seed = 7 };
	ck_assert_int_eq(workload_init(&w, &c, m), 0);
	return w;
}

static bool is_hot(const struct workload *w, const char *id)
{
	for (size_t i = 0; i < w->cfg.hot_accounts; i++)
		if (strcmp(w->ids[i], id) == 0)
			return true;
	return false;
}

START_TEST(test_payment_mix_follows_the_shares)
{
	struct shardmap m = two_shards();
	static const double shares[][2] = { { 0, 0 }, { 0, 1 }, { 1, 0.5 }, { 0.3, 0.7 } };
	for (size_t k = 0; k < 4; k++) {
		struct workload w = make(&m, shares[k][0], shares[k][1]);
		int hot = 0, cross = 0, n = 20000;
		for (int i = 0; i < n; i++) {
			struct paytx_payment p;
			workload_payment(&w, (uint64_t)i, &p);
			ck_assert_uint_eq(p.nlegs, 2);
			ck_assert_int_eq(p.legs[0].amount + p.legs[1].amount, 0);
			ck_assert_int_lt(p.legs[0].amount, 0);
			ck_assert_str_ne(p.legs[0].account, p.legs[1].account);
			hot += is_hot(&w, p.legs[0].account) || is_hot(&w, p.legs[1].account);
			cross += shardmap_index(&m, p.legs[0].account) !=
				 shardmap_index(&m, p.legs[1].account);
		}
		/* Uniform picks touch a hot account by chance about 2% of the time. */
		ck_assert_double_ge((double)hot / n, shares[k][0] - 0.02);
		ck_assert_double_le((double)hot / n, shares[k][0] + 0.04);
		ck_assert_double_eq_tol((double)cross / n, shares[k][1], 0.02);
		workload_finish(&w);
	}
}
END_TEST

START_TEST(test_funding_covers_every_account_once)
{
	struct shardmap m = two_shards();
	struct workload w = make(&m, 0, 0.5);
	size_t funded = 0;
	struct paytx_payment p;
	for (size_t k = 0; workload_funding(&w, k, &p) > 0; k++) {
		int64_t sum = 0;
		ck_assert_uint_le(p.nlegs, PAYTX_LEGS_MAX);
		for (size_t i = 0; i < p.nlegs; i++)
			sum += p.legs[i].amount;
		ck_assert_int_eq(sum, 0);
		ck_assert_int_ge(p.legs[0].amount, -PAYTX_AMOUNT_MAX);
		for (size_t i = 1; i < p.nlegs; i++)
			ck_assert_str_eq(p.legs[i].account, w.ids[funded++]);
	}
	ck_assert_uint_eq(funded, 1000);
	workload_finish(&w);
}
END_TEST

/* A process that exits during the run (a helper's test daemon, a
 * PostgreSQL backend) once made the CPU figure negative. */
START_TEST(test_cpu_used_counts_per_process_and_never_goes_negative)
{
	static struct procstat before, after;
	before.npids = 3;
	before.pids[0] = (struct procstat_pid){ .pid = 10, .row = 0, .cpu_s = 5.0 };
	before.pids[1] = (struct procstat_pid){ .pid = 11, .row = 0, .cpu_s = 100.0 }; /* exits */
	before.pids[2] = (struct procstat_pid){ .pid = 20, .row = 4, .cpu_s = 1.0 };
	after.npids = 3;
	after.pids[0] = (struct procstat_pid){ .pid = 10, .row = 0, .cpu_s = 7.5 };
	after.pids[1] = (struct procstat_pid){ .pid = 12, .row = 0, .cpu_s = 0.5 };  /* new */
	after.pids[2] = (struct procstat_pid){ .pid = 20, .row = 4, .cpu_s = 4.0 };
	ck_assert_double_eq_tol(procstat_cpu_used(&before, &after, 0), 3.0, 1e-9);
	ck_assert_double_eq_tol(procstat_cpu_used(&before, &after, 4), 3.0, 1e-9);
	ck_assert_double_eq_tol(procstat_cpu_used(&before, &after, 1), 0.0, 1e-9);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_quantiles_are_exact_below_128_us),
		UNIT_CASE(test_quantiles_never_understate_and_stay_within_1_6_percent),
		UNIT_CASE(test_merge_and_huge_values),
		UNIT_CASE(test_payment_mix_follows_the_shares),
		UNIT_CASE(test_funding_covers_every_account_once),
		UNIT_CASE(test_cpu_used_counts_per_process_and_never_goes_negative),
	};
	return UNIT_RUN("bench", cases, NULL, NULL);
}

/* Latency histogram for the benchmark: log-linear buckets over
 * microseconds, HdrHistogram style. Values below 128 us are exact; above,
 * each power of two is split into 64 buckets, so a reported percentile is
 * at most 1/64 (1.6%) above the true value (we report a bucket's upper
 * bound, never under-state a latency). The maximum is kept exactly.
 * Values are capped at LATENCY_MAX_US (about 12.7 days).
 *
 * Embedded and plain data (latency_init zeroes it); not thread-safe.
 */
#ifndef PAYTX_BENCH_LATENCY_H
#define PAYTX_BENCH_LATENCY_H

#include <stdint.h>

#define LATENCY_SUB 64
#define LATENCY_MAX_US ((INT64_C(1) << 40) - 1)
#define LATENCY_BUCKETS (35 * LATENCY_SUB + 2 * LATENCY_SUB)

struct latency {
	uint64_t counts[LATENCY_BUCKETS];
	uint64_t n;
	int64_t max_us;
	int64_t sum_us;
};

void latency_init(struct latency *h);
void latency_add(struct latency *h, int64_t us);
/* Add every sample of src to dst. */
void latency_merge(struct latency *dst, const struct latency *src);
/* The p-quantile (0 < p <= 1) in microseconds; 0 when empty. */
int64_t latency_quantile(const struct latency *h, double p);

#endif

/* Log-linear latency histogram with bounded relative error. */
#include "latency.h"

#include <math.h>
#include <string.h>

void latency_init(struct latency *h)
{
	memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(int64_t us)
{
	uint64_t v = (uint64_t)us;
	if (v < 2 * LATENCY_SUB)
		return (unsigned)v;
	unsigned shift = (unsigned)(63 - __builtin_clzll(v)) - 6; /* v >> shift in [64, 128) */
	return shift * LATENCY_SUB + (unsigned)(v >> shift);
}

/* The largest value that falls in bucket i. */
static int64_t bucket_top(unsigned i)
{
	if (i < 2 * LATENCY_SUB)
		return i;
	unsigned shift = i / LATENCY_SUB - 1;
	uint64_t mant = i - shift * LATENCY_SUB;
	return (int64_t)(((mant + 1) << shift) - 1);
}

void latency_add(struct latency *h, int64_t us)
{
	if (us < 0)
		us = 0;
	if (us > LATENCY_MAX_US)
		us = LATENCY_MAX_US;
	h->counts[bucket_of(us)]++;
	h->n++;
	h->sum_us += us;
	if (us > h->max_us)
		h->max_us = us;
}

void latency_merge(struct latency *dst, const struct latency *src)
{
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->n += src->n;
	dst->sum_us += src->sum_us;
	if (src->max_us > dst->max_us)
		dst->max_us = src->max_us;
}

int64_t latency_quantile(const struct latency *h, double p)
{
	if (!h->n)
		return 0;
	uint64_t rank = (uint64_t)ceil(p * (double)h->n);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			int64_t top = bucket_top(i);
			return top < h->max_us ? top : h->max_us;
		}
	}
	return h->max_us;
}

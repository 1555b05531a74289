/* The benchmark's accounts and the payments it sends.
 *
 * A workload names `accounts` ordinary accounts "b<run>-<i>" plus one
 * external funding account per shard, places them with the deployment's
 * shard map, and draws two-leg payments from a seeded generator:
 *   - with probability hot_share one side is one of the first
 *     hot_accounts accounts (debited or credited, half each);
 *   - with probability cross_share the other side lives on another shard
 *     than the first, otherwise on the same one (when there is one).
 * Amounts are 1..100 minor units; every account is funded with
 * WORKLOAD_FUNDS, so no payment fails for lack of money unless the run is
 * absurdly long. Plain data owned by the struct; single-threaded.
 */
#ifndef PAYTX_BENCH_WORKLOAD_H
#define PAYTX_BENCH_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "paytx/message.h"
#include "shard.h"

#define WORKLOAD_FUNDS INT64_C(1000000000000) /* per account, minor units */
#define WORKLOAD_FUND_LEGS (PAYTX_LEGS_MAX - 1) /* accounts funded per payment */

struct workload_config {
	size_t accounts;
	size_t hot_accounts;
	double hot_share;            /* 0..1 */
	double cross_share;          /* 0..1 */
	const char *currency;        /* borrowed, 3 upper-case letters */
	uint64_t seed;
};

struct workload {
	struct workload_config cfg;
	const struct shardmap *shards; /* borrowed */
	char run[17];                  /* hex run id: names are unique per run */
	char (*ids)[PAYTX_ID_MAX + 1]; /* accounts[i]; owned */
	size_t **by_shard;             /* account indexes per shard; owned */
	size_t *nby_shard;
	uint64_t rng;
};

int workload_init(struct workload *w, const struct workload_config *cfg,
		  const struct shardmap *shards) PAYTX_MUST_CHECK;
void workload_finish(struct workload *w);

/* The external account that funds shard s's accounts. */
void workload_external(const struct workload *w, size_t shard, char *out, size_t n);
/* Payment seq of the measured run (id "b<run>-p<seq>"). */
void workload_payment(struct workload *w, uint64_t seq, struct paytx_payment *p);
/* Funding payment k: the external account of the first funded account's
 * shard pays WORKLOAD_FUNDS to up to WORKLOAD_FUND_LEGS accounts. Returns 0
 * when there is no payment k. */
size_t workload_funding(const struct workload *w, size_t k, struct paytx_payment *p);

#endif

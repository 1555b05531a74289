/* The ledger invariants at the end of a benchmark run.
 *
 * Over every ledger shard: per currency the balances of all accounts sum
 * to zero; no non-external account is negative; no hold is left open
 * (waiting up to settle_s for aborts to release theirs); every balance
 * equals the sum of its journal rows. And for this run's payments: each
 * one the driver saw committed has journal rows, and none it saw aborted
 * or rejected has any. Reads only; the DSNs are borrowed.
 */
#ifndef PAYTX_BENCH_LEDGERCHECK_H
#define PAYTX_BENCH_LEDGERCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "shard.h"
#include "workload.h"

struct ledgercheck {
	bool ok;
	int64_t currency_sum;        /* of the run's currency, all shards: must be 0 */
	uint64_t negative;           /* non-external accounts below zero */
	uint64_t open_holds;
	uint64_t journal_mismatch;   /* accounts whose balance != sum of entries */
	uint64_t committed_unposted; /* committed outcome, no journal rows */
	uint64_t posted_not_committed; /* journal rows, outcome aborted or rejected */
	char error[256];             /* a database failure, "" if none */
};

int ledgercheck_run(const struct shardmap *shards, const char *ledger_dsns,
		    const struct workload *w, const struct driver_result *r, double settle_s,
		    struct ledgercheck *out) PAYTX_MUST_CHECK;

#endif

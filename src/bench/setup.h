/* Creating the benchmark's accounts on their ledger shards.
 *
 * One statement per shard creates every account of the workload that
 * lives there (ledger_account_create, idempotent) plus the shard's external
 * funding account. Funding itself goes through the real payment path
 * (workload_funding), so the journal stays the only source of balances.
 */
#ifndef PAYTX_BENCH_SETUP_H
#define PAYTX_BENCH_SETUP_H

#include "shard.h"
#include "workload.h"

/* dsns is PAYTX_LEDGER_DSNS (borrowed). Prints why on failure. */
int setup_accounts(const struct shardmap *shards, const char *dsns,
		   const struct workload *w) PAYTX_MUST_CHECK;

#endif

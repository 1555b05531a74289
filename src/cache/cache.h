/* The cache participant (paytx-cache): keeps the balance cache coherent by
 * taking part in every payment's two-phase commit (docs/cache.md).
 *   prepare = mark the payment's accounts pending (readers then go to the
 *             ledger), then vote yes. When Redis cannot be written, report
 *             the loss to the lease and vote yes once the epoch has expired
 *             in Redis: the cache never makes a payment fail.
 *   commit  = clear the marks and drop the accounts' entries; then offer
 *             each account's balance to the cache (installed only when the
 *             ledger has no open hold on it: see balance.h).
 *   abort   = clear the marks (the entries stay right).
 * Idempotent: marks and clears are sets. Single-threaded: the SDK's thread.
 */
#ifndef PAYTX_CACHE_CACHE_H
#define PAYTX_CACHE_CACHE_H

#include <stdint.h>

#include "balance.h"
#include "cachestore.h"
#include "lease.h"
#include "paytx/participant.h"

struct cachepart {
	struct cachestore *cs;       /* owned: this thread's connection */
	struct lease *lease;         /* borrowed */
	struct balance_reader reader; /* installs after commits; uses cs */
	uint64_t blind_votes;        /* yes votes given without a mark */
};

/* cs is taken over; lease is borrowed; the reader's strings too. */
int cachepart_init(struct cachepart *c, struct cachestore *cs, struct lease *lease,
		   const char *shards, const char *ledger_dsns,
		   const char *coord_dsn) PAYTX_MUST_CHECK;
void cachepart_finish(struct cachepart *c);

/* The participant callbacks; ctx is a struct cachepart *. */
extern const struct paytx_participant_ops cachepart_ops;

#endif

/* The cache participant (paytx-cache): keeps the balance cache coherent by
 * taking part in every payment's two-phase commit (docs/cache.md).
 *   prepare = mark the payment's accounts pending (readers then go to the
 *             ledger), then vote yes. When Redis cannot be written, report
 *             the loss to the lease and vote yes once the epoch has expired
 *             in Redis: the cache never makes a payment fail.
 *   commit  = clear the marks and drop the accounts' entries; then hand
 *             the accounts to the query thread, which offers their balances
 *             to the cache (installed only once the ledger has no open hold
 *             on them: see balance.h) without delaying this ack.
 *   abort   = clear the marks (the entries stay right).
 * Idempotent: marks and clears are sets. Single-threaded: the SDK's thread.
 */
#ifndef PAYTX_CACHE_CACHE_H
#define PAYTX_CACHE_CACHE_H

#include <stdint.h>

#include "cachestore.h"
#include "lease.h"
#include "paytx/participant.h"
#include "query.h"

struct cachepart {
	struct cachestore *cs;       /* owned: this thread's connection */
	struct lease *lease;         /* borrowed */
	struct query *query;         /* borrowed: refreshes after commits */
	uint64_t blind_votes;        /* yes votes given without a mark */
};

/* cs is taken over; lease and query are borrowed. */
void cachepart_init(struct cachepart *c, struct cachestore *cs, struct lease *lease,
		    struct query *query);
void cachepart_finish(struct cachepart *c);

/* The participant callbacks; ctx is a struct cachepart *. */
extern const struct paytx_participant_ops cachepart_ops;

#endif

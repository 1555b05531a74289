/* paytx-cache's coherence lease (docs/cache.md, "Redis unreachable").
 *
 * The epoch key in Redis says "the cache may be trusted"; it expires
 * lease_ms after the last SET or renewal was sent (an absolute time, so a
 * command that Redis applies late cannot stretch the lease). The lease thread sets it
 * (after dropping everything and re-marking the open transactions: see
 * lease_establish) and renews it every lease_ms / 4. Whenever a write of
 * the participant fails, the participant calls lease_lost: no renewal is
 * sent after that, so the epoch is gone from Redis by the time lease_lost
 * returns, and the participant votes yes once that time has passed. The
 * thread then re-establishes a new epoch as soon as it reaches Redis.
 *
 * struct lease is shared by the participant thread and the lease thread;
 * its state is under mu. The lease thread owns its own Redis and
 * PostgreSQL connections.
 */
#ifndef PAYTX_CACHE_LEASE_H
#define PAYTX_CACHE_LEASE_H

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cachestore.h"
#include "paytx/error.h"

struct lease {
	pthread_mutex_t mu;
	char epoch[CACHESTORE_EPOCH_MAX]; /* the epoch we hold; "" = none */
	uint64_t losses;             /* lease_lost calls so far */
	bool lost;                   /* a loss not yet followed by a new epoch */
	int64_t last_send_ms;        /* monotonic: last SET or renewal sent */
	int64_t lease_ms;            /* the epoch key's expiry */
	int64_t timeout_ms;          /* Redis command timeout */
	int64_t sweep_ms;            /* how often marks of finished txns are cleared */
	/* the lease thread's own */
	struct cachestore *cs;       /* owned */
	const char *coord_dsn;       /* borrowed: the coordinator log, read-only */
	PGconn *coord;               /* owned */
	volatile sig_atomic_t *stop; /* borrowed */
	pthread_t thread;
	bool running;
};

/* cs is taken over (destroyed by lease_finish); coord_dsn and stop are
 * borrowed. */
int lease_init(struct lease *l, struct cachestore *cs, const char *coord_dsn, int64_t lease_ms,
	       int64_t timeout_ms, int64_t sweep_ms, volatile sig_atomic_t *stop) PAYTX_MUST_CHECK;
/* Start / join the lease thread. */
int lease_start(struct lease *l) PAYTX_MUST_CHECK;
void lease_finish(struct lease *l);

/* From the participant: a write to Redis failed. No renewal follows;
 * returns the monotonic time (ms) by which the epoch has expired in Redis. */
int64_t lease_lost(struct lease *l);

/* Establish a new epoch now (the lease thread does this by itself; tests
 * and the thread call it). Drops every key, marks every transaction the
 * coordinator log still has open, then sets the epoch, unless a loss was
 * reported meanwhile (then PAYTX_ECONFLICT: try again). */
int lease_establish(struct lease *l) PAYTX_MUST_CHECK;

/* The accounts of a payment request as the coordinator stores it (a submit
 * message: legs or from/to) into out[0..*n), distinct. Pure. */
int lease_request_accounts(const char *request, char (*out)[PAYTX_ID_MAX + 1], size_t max,
			   size_t *n) PAYTX_MUST_CHECK;

#endif

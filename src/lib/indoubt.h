/* The transactions a participant holds in doubt: it voted yes and has not
 * applied a decision yet. The SDK keeps this set to report how many there
 * are and how old the oldest is (paytx_in_doubt,
 * paytx_oldest_in_doubt_seconds); the reservations themselves live in the
 * participant's own store.
 *
 * Open addressing by txn id with linear probing and backward-shift
 * deletion; grows by doubling. Embedded: indoubt_init / indoubt_finish.
 * One thread (the participant loop).
 */
#ifndef PAYTX_INDOUBT_H
#define PAYTX_INDOUBT_H

#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"

struct indoubt_slot {
	int64_t txn;
	int64_t since_ms;   /* wall clock; when it became in doubt (as far as known) */
	int used;
};

struct indoubt {
	struct indoubt_slot *slots;
	size_t cap;         /* power of two, or 0 */
	size_t len;
};

void indoubt_init(struct indoubt *d);
void indoubt_finish(struct indoubt *d);
/* Add txn; when it is there already the earlier since_ms is kept.
 * 0 or PAYTX_ENOMEM. */
int indoubt_add(struct indoubt *d, int64_t txn, int64_t since_ms) PAYTX_MUST_CHECK;
/* Remove txn (nothing when absent). */
void indoubt_del(struct indoubt *d, int64_t txn);
/* Remove the members older than older_than (since_ms < it) that are not
 * among held[0..n): the store, asked for everything held that long, says
 * they are not in doubt any more (e.g. a duplicate prepare answered after
 * its commit). */
void indoubt_prune(struct indoubt *d, int64_t older_than, const int64_t *held, size_t n);
/* The smallest since_ms, or none when the set is empty. O(capacity). */
int64_t indoubt_oldest(const struct indoubt *d, int64_t none);

#endif

/* The balance cache's store: one Redis connection (hiredis) and the atomic
 * operations of docs/cache.md, each one Lua script run by EVAL.
 *
 * Keys, all under a prefix (PAYTX_CACHE_PREFIX, default "paytx:cache"):
 *   P:epoch       the coherence epoch: present only while paytx-cache holds
 *                 its lease (an absolute expiry it renews); absent after a flush,
 *                 a restart or a lapsed lease
 *   P:a:ACCOUNT   hash: an installed balance (epoch, balance, held,
 *                 version, currency, external)
 *   P:p:ACCOUNT   set: the txns pending on the account (marked at prepare)
 *   P:g:ACCOUNT   counter: bumped by every mark and clear on the account;
 *                 an install must see it unchanged since its read began
 *   P:t:TXN       set: the accounts TXN marked (for its commit / abort)
 *   P:txns        set: every marked TXN (for the sweep)
 * The scripts build account keys themselves, so the store is one Redis
 * server (or one cluster slot), not a sharded cluster.
 *
 * A struct cachestore is used by one thread. Every call that cannot reach
 * Redis returns PAYTX_EDB and drops the connection; the next call
 * reconnects (at most once per reconnect_ms, so an outage costs each
 * caller one short connect timeout, not one per call).
 */
#ifndef PAYTX_CACHESTORE_H
#define PAYTX_CACHESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"

#define CACHESTORE_EPOCH_MAX 64
#define CACHESTORE_PREFIX_MAX 64

/* A balance as the cache holds it (the read path's answer). */
struct cache_entry {
	char currency[4];
	int64_t balance;       /* minor units: posted + committed, not yet posted */
	int64_t held;          /* minor units reserved by undecided debits */
	int64_t version;       /* the ledger's account version this balance is at */
	bool external;
};

/* What a lookup saw: a hit, or what an install must find unchanged. */
struct cache_lookup {
	bool hit;              /* entry is coherent and may be served */
	char epoch[CACHESTORE_EPOCH_MAX]; /* "" = no epoch: nothing is trusted */
	int64_t gen;           /* the account's mark/clear counter */
	int64_t pending;       /* txns marked on the account */
	struct cache_entry entry; /* when hit */
};

enum cache_install {
	CACHE_INSTALLED,
	CACHE_NOT_NEWER,       /* an entry at this version or newer is there */
	CACHE_CHANGED,         /* epoch, marks or clears changed since the lookup */
};

struct cachestore;

/* Is url redis://HOST[:PORT][/DB]? 0 or PAYTX_ECONFIG. */
int cachestore_url_check(const char *url) PAYTX_MUST_CHECK;
/* Is prefix 1..CACHESTORE_PREFIX_MAX-1 of [A-Za-z0-9:._-]? */
int cachestore_prefix_check(const char *prefix) PAYTX_MUST_CHECK;

/* url and prefix are copied. timeout_ms bounds connect and every command.
 * Does not connect. NULL on a bad argument or no memory. */
struct cachestore *cachestore_create(const char *url, const char *prefix, int timeout_ms,
				     int reconnect_ms);
void cachestore_destroy(struct cachestore *cs);
bool cachestore_connected(const struct cachestore *cs);

int cachestore_lookup(struct cachestore *cs, const char *account,
		      struct cache_lookup *out) PAYTX_MUST_CHECK;
/* Install e for account if the epoch, the account's marks and its counter
 * are what seen saw, and e is newer than the entry there. *result says
 * which. */
int cachestore_install(struct cachestore *cs, const char *account,
		       const struct cache_lookup *seen, const struct cache_entry *e,
		       enum cache_install *result) PAYTX_MUST_CHECK;

/* Mark txn pending on accounts[0..n) (idempotent). */
int cachestore_mark(struct cachestore *cs, int64_t txn, const char *const *accounts,
		    size_t n) PAYTX_MUST_CHECK;
/* Clear txn's marks; commit also drops the accounts' entries. Idempotent.
 * The accounts it had marked go into accounts[0..*n) (up to max; accounts
 * may be NULL with max 0). */
int cachestore_clear(struct cachestore *cs, int64_t txn, bool commit,
		     char (*accounts)[PAYTX_ID_MAX + 1], size_t max,
		     size_t *n) PAYTX_MUST_CHECK;
/* Up to max marked txns into txns, *n of them. */
int cachestore_marked(struct cachestore *cs, int64_t *txns, size_t max,
		      size_t *n) PAYTX_MUST_CHECK;

/* Delete the epoch, then every key under the prefix. */
int cachestore_drop_all(struct cachestore *cs) PAYTX_MUST_CHECK;
/* Set the epoch to epoch, expiring at expire_at_ms (Unix epoch ms: an
 * absolute time, so a command Redis applies late cannot stretch it). */
int cachestore_epoch_set(struct cachestore *cs, const char *epoch,
			 int64_t expire_at_ms) PAYTX_MUST_CHECK;
/* Move the expiry to expire_at_ms if the epoch is still epoch; *ours says
 * whether it was. */
int cachestore_epoch_renew(struct cachestore *cs, const char *epoch, int64_t expire_at_ms,
			   bool *ours) PAYTX_MUST_CHECK;

#endif

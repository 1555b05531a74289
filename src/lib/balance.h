/* The balance read path (docs/cache.md): serve an account's balance from
 * the cache when the cache may be trusted for it, else read through to the
 * ledger shard that owns it and to the coordinator's decisions.
 *
 * Read through: one statement on the shard gives the posted balance, the
 * version and the account's open holds (one snapshot); the coordinator log
 * then says which of those holds' txns are decided committed. The answer is
 * posted + committed-but-not-yet-posted holds: it includes every payment
 * whose committed outcome was sent before the read began and never an
 * aborted or undecided one. When the account had no open hold, the answer
 * is a ledger state (its version orders it) and is offered to the cache
 * with the compare-and-set of cachestore_install.
 *
 * A struct balance_reader owns its PostgreSQL connections (made on first
 * use, re-made after a failure); the cache store is borrowed. One thread.
 */
#ifndef PAYTX_BALANCE_H
#define PAYTX_BALANCE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "cachestore.h"
#include "paytx/error.h"
#include "shard.h"

enum balance_source {
	BALANCE_FROM_CACHE,
	BALANCE_FROM_LEDGER,
};

struct balance {
	char account[PAYTX_ID_MAX + 1];
	struct cache_entry e;        /* balance, held, version, currency, external */
	int64_t undecided;           /* open holds whose txn has no decision yet
				      * (ledger reads only) */
	enum balance_source source;
	bool anchored;               /* served by the cache, or read with no open
				      * hold: a state the cache may hold (a read
				      * through that is not anchored installs
				      * nothing) */
};

struct balance_reader {
	struct shardmap shards;
	const char *ledger_dsns;     /* borrowed: "name=dsn,..." */
	const char *coord_dsn;       /* borrowed: the coordinator log; NULL = none
				      * (then an account with open holds fails) */
	const char *app;             /* borrowed: application_name */
	struct cachestore *cache;    /* borrowed; NULL = ledger only */
	PGconn *ledgers[SHARD_MAX];  /* owned, NULL until used */
	PGconn *coord;               /* owned, NULL until used */
};

/* All strings are borrowed for the reader's life. PAYTX_ECONFIG when
 * shards is not a valid list. */
int balance_reader_init(struct balance_reader *r, const char *shards, const char *ledger_dsns,
			const char *coord_dsn, struct cachestore *cache,
			const char *app) PAYTX_MUST_CHECK;
void balance_reader_finish(struct balance_reader *r);

/* Fill *out for account. PAYTX_ENOTFOUND (no such account), PAYTX_EINVAL
 * (not an account id), PAYTX_ECONFIG (no DSN for what it needs) or
 * PAYTX_EDB. A cache that cannot be reached is not an error. */
int balance_read(struct balance_reader *r, const char *account,
		 struct balance *out) PAYTX_MUST_CHECK;

/* The ledger read alone, without the cache: out->anchored is true when
 * the account had no open hold (the answer is then a ledger state). */
int balance_read_through(struct balance_reader *r, const char *account,
			 struct balance *out) PAYTX_MUST_CHECK;

/* Add the committed ones of holds (txns[i], amounts[i], debits[i]) to e,
 * given the decided txns (decided[j] committed when commit[j]); count the
 * undecided. Pure: the read-through arithmetic, for unit tests. */
void balance_apply_holds(struct cache_entry *e, int64_t *undecided, size_t nholds,
			 const int64_t *txns, const int64_t *amounts, const int64_t *debits,
			 size_t ndecided, const int64_t *decided, const bool *commit);

#endif

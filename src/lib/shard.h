/* Placement of accounts on ledger shards.
 *
 * An account lives on shard index fnv1a64(account id bytes) % nshards of the
 * configured ordered list of shard participant names (PAYTX_SHARDS, e.g.
 * "ledger.0,ledger.1"). FNV-1a 64: offset 14695981039346656037, prime
 * 1099511628211, over the UTF-8 bytes of the id. Changing the list moves
 * accounts, so it is fixed for the life of a deployment.
 */
#ifndef PAYTX_SHARD_H
#define PAYTX_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"

#define SHARD_MAX 64

struct shardmap {
	size_t n;
	char names[SHARD_MAX][PAYTX_ID_MAX + 1];
};

uint64_t shard_hash(const char *account);
/* Parse a comma-separated list of participant names. PAYTX_ECONFIG when
 * empty, too long, or a name is not a valid id. */
int shardmap_parse(struct shardmap *m, const char *list) PAYTX_MUST_CHECK;
/* Index of the shard owning account. */
size_t shardmap_index(const struct shardmap *m, const char *account);

/* The DSN of shard name in a "name=dsn,name=dsn" list (PAYTX_LEDGER_DSNS),
 * copied into out (n bytes). PAYTX_ENOTFOUND when absent or too long. */
int shard_dsn(const char *list, const char *name, char *out, size_t n) PAYTX_MUST_CHECK;

#endif

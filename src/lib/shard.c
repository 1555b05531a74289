/* Placement of accounts on ledger shards by FNV-1a 64 hash. */
#include "shard.h"

#include <stdio.h>
#include <string.h>

uint64_t shard_hash(const char *account)
{
	uint64_t h = 14695981039346656037ULL;
	for (const unsigned char *p = (const unsigned char *)account; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

int shardmap_parse(struct shardmap *m, const char *list)
{
	memset(m, 0, sizeof(*m));
	if (!list || !*list)
		return PAYTX_ECONFIG;
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (m->n == SHARD_MAX || !paytx_id_valid(p, len))
			return PAYTX_ECONFIG;
		memcpy(m->names[m->n], p, len);
		m->names[m->n][len] = '\0';
		for (size_t i = 0; i < m->n; i++)
			if (strcmp(m->names[i], m->names[m->n]) == 0)
				return PAYTX_ECONFIG;
		m->n++;
		if (!end)
			break;
		p = end + 1;
		if (!*p)
			return PAYTX_ECONFIG;
	}
	return 0;
}

size_t shardmap_index(const struct shardmap *m, const char *account)
{
	return (size_t)(shard_hash(account) % m->n);
}

int shard_dsn(const char *list, const char *name, char *out, size_t n)
{
	size_t nlen = strlen(name);
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			if (len - nlen - 1 >= n)
				return PAYTX_ENOTFOUND;
			snprintf(out, n, "%.*s", (int)(len - nlen - 1), p + nlen + 1);
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return PAYTX_ENOTFOUND;
}

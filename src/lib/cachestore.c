/* The balance cache's store in Redis: connection and atomic scripts. */
#include "cachestore.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

#define CS_ARGS_MAX (PAYTX_LEGS_MAX + 8)

struct cachestore {
	redisContext *ctx;           /* NULL while disconnected */
	char host[256];
	int port;
	int db;
	char prefix[CACHESTORE_PREFIX_MAX];
	int timeout_ms;
	int reconnect_ms;
	int64_t next_connect_ms;     /* monotonic: no connect attempt before */
	bool warned;                 /* the outage is logged once */
};

/* What the reader may serve: a coherent epoch, nothing pending, and an
 * entry installed under that epoch. */
static const char lua_lookup[] =
	"local ep = redis.call('GET', KEYS[1]) or ''\n"
	"local gen = tonumber(redis.call('GET', KEYS[4]) or '0')\n"
	"local pend = redis.call('SCARD', KEYS[3])\n"
	"local e = redis.call('HMGET', KEYS[2], 'epoch', 'balance', 'held', 'version',"
	" 'currency', 'external')\n"
	"local hit = 0\n"
	"if ep ~= '' and pend == 0 and e[1] == ep then hit = 1 end\n"
	"return {hit, ep, gen, pend, e[2] or '', e[3] or '', e[4] or '', e[5] or '',"
	" e[6] or ''}\n";

/* Compare and set: same epoch, nothing pending, no mark or clear since the
 * lookup, and a newer version than the entry there. */
static const char lua_install[] =
	"local ep = redis.call('GET', KEYS[1])\n"
	"if not ep or ep ~= ARGV[1] then return 'changed' end\n"
	"if redis.call('SCARD', KEYS[3]) ~= 0 then return 'changed' end\n"
	"if tonumber(redis.call('GET', KEYS[4]) or '0') ~= tonumber(ARGV[2]) then"
	" return 'changed' end\n"
	"local cur = redis.call('HMGET', KEYS[2], 'epoch', 'version')\n"
	"if cur[1] == ep and cur[2] and tonumber(cur[2]) >= tonumber(ARGV[5]) then"
	" return 'not_newer' end\n"
	"redis.call('HSET', KEYS[2], 'epoch', ep, 'balance', ARGV[3], 'held', ARGV[4],"
	" 'version', ARGV[5], 'currency', ARGV[6], 'external', ARGV[7])\n"
	"return 'installed'\n";

static const char lua_mark[] =
	"for i = 3, #ARGV do\n"
	"  redis.call('SADD', ARGV[1] .. ':p:' .. ARGV[i], ARGV[2])\n"
	"  redis.call('INCR', ARGV[1] .. ':g:' .. ARGV[i])\n"
	"  redis.call('SADD', KEYS[2], ARGV[i])\n"
	"end\n"
	"redis.call('SADD', KEYS[1], ARGV[2])\n"
	"return 1\n";

static const char lua_clear[] =
	"local accts = redis.call('SMEMBERS', KEYS[2])\n"
	"for _, a in ipairs(accts) do\n"
	"  redis.call('SREM', ARGV[1] .. ':p:' .. a, ARGV[2])\n"
	"  redis.call('INCR', ARGV[1] .. ':g:' .. a)\n"
	"  if ARGV[3] == '1' then redis.call('DEL', ARGV[1] .. ':a:' .. a) end\n"
	"end\n"
	"redis.call('DEL', KEYS[2])\n"
	"redis.call('SREM', KEYS[1], ARGV[2])\n"
	"return accts\n";

static const char lua_renew[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  redis.call('PEXPIREAT', KEYS[1], ARGV[2])\n"
	"  return 1\n"
	"end\n"
	"return 0\n";

int cachestore_url_check(const char *url)
{
	const char *p;
	if (!url || strncmp(url, "redis://", 8) != 0)
		return PAYTX_ECONFIG;
	p = url + 8;
	size_t host = strcspn(p, ":/");
	if (host == 0 || host >= 256)
		return PAYTX_ECONFIG;
	p += host;
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return PAYTX_ECONFIG;
		p = end;
	}
	if (*p == '/' && p[1]) {
		char *end;
		long db = strtol(p + 1, &end, 10);
		if (end == p + 1 || *end || db < 0 || db > 1000)
			return PAYTX_ECONFIG;
		return 0;
	}
	return *p == '\0' || (*p == '/' && !p[1]) ? 0 : PAYTX_ECONFIG;
}

int cachestore_prefix_check(const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;
	if (n == 0 || n >= CACHESTORE_PREFIX_MAX)
		return PAYTX_ECONFIG;
	return strspn(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			      "0123456789:._-") == n ? 0 : PAYTX_ECONFIG;
}

static void cs_parse_url(struct cachestore *cs, const char *url)
{
	const char *p = url + 8;
	size_t host = strcspn(p, ":/");
	memcpy(cs->host, p, host);
	cs->host[host] = '\0';
	p += host;
	char *end = NULL;
	cs->port = *p == ':' ? (int)strtol(p + 1, &end, 10) : 6379;
	if (end)
		p = end;
	cs->db = *p == '/' && p[1] ? (int)strtol(p + 1, NULL, 10) : 0;
}

struct cachestore *cachestore_create(const char *url, const char *prefix, int timeout_ms,
				     int reconnect_ms)
{
	if (cachestore_url_check(url) || cachestore_prefix_check(prefix) || timeout_ms <= 0)
		return NULL;
	struct cachestore *cs = calloc(1, sizeof(*cs));
	if (!cs)
		return NULL;
	cs_parse_url(cs, url);
	snprintf(cs->prefix, sizeof(cs->prefix), "%s", prefix);
	cs->timeout_ms = timeout_ms;
	cs->reconnect_ms = reconnect_ms;
	return cs;
}

static void cs_drop(struct cachestore *cs, const char *why)
{
	if (!cs->warned)
		log_warn("cache: Redis %s:%d unreachable (%s); reading through to the ledger",
			 cs->host, cs->port, why);
	cs->warned = true;
	if (cs->ctx)
		redisFree(cs->ctx);
	cs->ctx = NULL;
	cs->next_connect_ms = clock_mono_ms() + cs->reconnect_ms;
}

void cachestore_destroy(struct cachestore *cs)
{
	if (!cs)
		return;
	if (cs->ctx)
		redisFree(cs->ctx);
	free(cs);
}

bool cachestore_connected(const struct cachestore *cs)
{
	return cs->ctx != NULL;
}

static int cs_connect(struct cachestore *cs)
{
	if (cs->ctx)
		return 0;
	if (clock_mono_ms() < cs->next_connect_ms)
		return PAYTX_EDB;
	struct timeval tv = { .tv_sec = cs->timeout_ms / 1000,
			      .tv_usec = (cs->timeout_ms % 1000) * 1000 };
	cs->ctx = redisConnectWithTimeout(cs->host, cs->port, tv);
	if (!cs->ctx || cs->ctx->err) {
		cs_drop(cs, cs->ctx ? cs->ctx->errstr : "out of memory");
		return PAYTX_EDB;
	}
	if (redisSetTimeout(cs->ctx, tv) != REDIS_OK) {
		cs_drop(cs, "cannot set the command timeout");
		return PAYTX_EDB;
	}
	if (cs->db) {
		redisReply *r = redisCommand(cs->ctx, "SELECT %d", cs->db);
		bool ok = r && r->type == REDIS_REPLY_STATUS;
		if (r)
			freeReplyObject(r);
		if (!ok) {
			cs_drop(cs, "SELECT failed");
			return PAYTX_EDB;
		}
	}
	if (cs->warned)
		log_info("cache: Redis %s:%d reachable again", cs->host, cs->port);
	cs->warned = false;
	return 0;
}

/* Run argv; *out is the reply (caller frees), never an error reply. */
static int cs_command(struct cachestore *cs, int argc, const char **argv, redisReply **out)
{
	size_t lens[CS_ARGS_MAX];
	*out = NULL;
	if (argc > CS_ARGS_MAX || cs_connect(cs))
		return PAYTX_EDB;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	redisReply *r = redisCommandArgv(cs->ctx, argc, argv, lens);
	if (!r) {
		cs_drop(cs, cs->ctx->errstr);
		return PAYTX_EDB;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		log_error("cache: Redis refused %s: %s", argv[0], r->str);
		freeReplyObject(r);
		return PAYTX_EDB;
	}
	*out = r;
	return 0;
}

static void cs_key(const struct cachestore *cs, char *out, size_t n, const char *kind,
		   const char *name)
{
	snprintf(out, n, "%s:%s%s%s", cs->prefix, kind, name ? ":" : "", name ? name : "");
}

static int reply_int(const redisReply *r, int64_t *out)
{
	if (r->type == REDIS_REPLY_INTEGER) {
		*out = r->integer;
		return 0;
	}
	if (r->type != REDIS_REPLY_STRING)
		return PAYTX_EDB;
	char *end;
	long long v = strtoll(r->str, &end, 10);
	if (end == r->str || *end)
		return PAYTX_EDB;
	*out = v;
	return 0;
}

static int lookup_parse(const redisReply *r, struct cache_lookup *out)
{
	int64_t hit;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 9 || reply_int(r->element[0], &hit) ||
	    r->element[1]->type != REDIS_REPLY_STRING || reply_int(r->element[2], &out->gen) ||
	    reply_int(r->element[3], &out->pending))
		return PAYTX_EDB;
	snprintf(out->epoch, sizeof(out->epoch), "%s", r->element[1]->str);
	out->hit = hit == 1;
	if (!out->hit)
		return 0;
	struct cache_entry *e = &out->entry;
	if (reply_int(r->element[4], &e->balance) || reply_int(r->element[5], &e->held) ||
	    reply_int(r->element[6], &e->version) || r->element[7]->type != REDIS_REPLY_STRING ||
	    r->element[7]->len != 3)
		return PAYTX_EDB;
	memcpy(e->currency, r->element[7]->str, 4);
	e->external = r->element[8]->type == REDIS_REPLY_STRING && r->element[8]->str[0] == '1';
	return 0;
}

int cachestore_lookup(struct cachestore *cs, const char *account, struct cache_lookup *out)
{
	char k[4][CACHESTORE_PREFIX_MAX + PAYTX_ID_MAX + 8];
	redisReply *r;
	memset(out, 0, sizeof(*out));
	cs_key(cs, k[0], sizeof(k[0]), "epoch", NULL);
	cs_key(cs, k[1], sizeof(k[1]), "a", account);
	cs_key(cs, k[2], sizeof(k[2]), "p", account);
	cs_key(cs, k[3], sizeof(k[3]), "g", account);
	const char *argv[] = { "EVAL", lua_lookup, "4", k[0], k[1], k[2], k[3] };
	int err = cs_command(cs, 7, argv, &r);
	if (err)
		return err;
	err = lookup_parse(r, out);
	freeReplyObject(r);
	if (err)
		log_error("cache: unexpected lookup reply for %s", account);
	return err;
}

int cachestore_install(struct cachestore *cs, const char *account,
		       const struct cache_lookup *seen, const struct cache_entry *e,
		       enum cache_install *result)
{
	char k[4][CACHESTORE_PREFIX_MAX + PAYTX_ID_MAX + 8];
	char gen[24], bal[24], held[24], ver[24];
	redisReply *r;
	cs_key(cs, k[0], sizeof(k[0]), "epoch", NULL);
	cs_key(cs, k[1], sizeof(k[1]), "a", account);
	cs_key(cs, k[2], sizeof(k[2]), "p", account);
	cs_key(cs, k[3], sizeof(k[3]), "g", account);
	snprintf(gen, sizeof(gen), "%" PRId64, seen->gen);
	snprintf(bal, sizeof(bal), "%" PRId64, e->balance);
	snprintf(held, sizeof(held), "%" PRId64, e->held);
	snprintf(ver, sizeof(ver), "%" PRId64, e->version);
	const char *argv[] = { "EVAL", lua_install, "4", k[0], k[1], k[2], k[3], seen->epoch,
			       gen, bal, held, ver, e->currency, e->external ? "1" : "0" };
	int err = cs_command(cs, 14, argv, &r);
	if (err)
		return err;
	if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
		err = PAYTX_EDB;
	else if (strcmp(r->str, "installed") == 0)
		*result = CACHE_INSTALLED;
	else if (strcmp(r->str, "not_newer") == 0)
		*result = CACHE_NOT_NEWER;
	else
		*result = CACHE_CHANGED;
	freeReplyObject(r);
	return err;
}

int cachestore_mark(struct cachestore *cs, int64_t txn, const char *const *accounts, size_t n)
{
	char txns[CACHESTORE_PREFIX_MAX + 8], tk[CACHESTORE_PREFIX_MAX + 32], id[24];
	const char *argv[CS_ARGS_MAX];
	redisReply *r;
	if (n > PAYTX_LEGS_MAX)
		return PAYTX_EINVAL;
	cs_key(cs, txns, sizeof(txns), "txns", NULL);
	snprintf(id, sizeof(id), "%" PRId64, txn);
	cs_key(cs, tk, sizeof(tk), "t", id);
	int argc = 0;
	argv[argc++] = "EVAL";
	argv[argc++] = lua_mark;
	argv[argc++] = "2";
	argv[argc++] = txns;
	argv[argc++] = tk;
	argv[argc++] = cs->prefix;
	argv[argc++] = id;
	for (size_t i = 0; i < n; i++)
		argv[argc++] = accounts[i];
	int err = cs_command(cs, argc, argv, &r);
	if (!err)
		freeReplyObject(r);
	return err;
}

int cachestore_clear(struct cachestore *cs, int64_t txn, bool commit,
		     char (*accounts)[PAYTX_ID_MAX + 1], size_t max, size_t *n)
{
	char txns[CACHESTORE_PREFIX_MAX + 8], tk[CACHESTORE_PREFIX_MAX + 32], id[24];
	redisReply *r;
	*n = 0;
	cs_key(cs, txns, sizeof(txns), "txns", NULL);
	snprintf(id, sizeof(id), "%" PRId64, txn);
	cs_key(cs, tk, sizeof(tk), "t", id);
	const char *argv[] = { "EVAL", lua_clear, "2", txns, tk, cs->prefix, id,
			       commit ? "1" : "0" };
	int err = cs_command(cs, 8, argv, &r);
	if (err)
		return err;
	if (r->type != REDIS_REPLY_ARRAY)
		err = PAYTX_EDB;
	for (size_t i = 0; !err && i < r->elements && *n < max; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING)
			snprintf(accounts[(*n)++], PAYTX_ID_MAX + 1, "%s", r->element[i]->str);
	freeReplyObject(r);
	return err;
}

int cachestore_marked(struct cachestore *cs, int64_t *txns, size_t max, size_t *n)
{
	char key[CACHESTORE_PREFIX_MAX + 8];
	redisReply *r;
	*n = 0;
	char count[24];
	cs_key(cs, key, sizeof(key), "txns", NULL);
	snprintf(count, sizeof(count), "%zu", max);
	const char *argv[] = { "SRANDMEMBER", key, count };
	int err = cs_command(cs, 3, argv, &r);
	if (err)
		return err;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && *n < max; i++)
		if (reply_int(r->element[i], &txns[*n]) == 0)
			(*n)++;
	freeReplyObject(r);
	return 0;
}

int cachestore_drop_all(struct cachestore *cs)
{
	char key[CACHESTORE_PREFIX_MAX + 8], match[CACHESTORE_PREFIX_MAX + 4];
	char cursor[32] = "0";
	redisReply *r;
	cs_key(cs, key, sizeof(key), "epoch", NULL);
	const char *del[] = { "DEL", key };
	int err = cs_command(cs, 2, del, &r);
	if (err)
		return err;
	freeReplyObject(r);
	snprintf(match, sizeof(match), "%s:*", cs->prefix);
	do {
		const char *scan[] = { "SCAN", cursor, "MATCH", match, "COUNT", "1000" };
		err = cs_command(cs, 6, scan, &r);
		if (err)
			return err;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING) {
			freeReplyObject(r);
			return PAYTX_EDB;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		redisReply *keys = r->element[1];
		for (size_t i = 0; !err && i < keys->elements; i++) {
			redisReply *u;
			const char *unlink[] = { "UNLINK", keys->element[i]->str };
			err = cs_command(cs, 2, unlink, &u);
			if (!err)
				freeReplyObject(u);
		}
		freeReplyObject(r);
	} while (!err && strcmp(cursor, "0") != 0);
	return err;
}

int cachestore_epoch_set(struct cachestore *cs, const char *epoch, int64_t expire_at_ms)
{
	char key[CACHESTORE_PREFIX_MAX + 8], at[24];
	redisReply *r;
	cs_key(cs, key, sizeof(key), "epoch", NULL);
	snprintf(at, sizeof(at), "%" PRId64, expire_at_ms);
	const char *argv[] = { "SET", key, epoch, "PXAT", at };
	int err = cs_command(cs, 5, argv, &r);
	if (!err)
		freeReplyObject(r);
	return err;
}

int cachestore_epoch_renew(struct cachestore *cs, const char *epoch, int64_t expire_at_ms,
			   bool *ours)
{
	char key[CACHESTORE_PREFIX_MAX + 8], at[24];
	redisReply *r;
	int64_t v = 0;
	*ours = false;
	cs_key(cs, key, sizeof(key), "epoch", NULL);
	snprintf(at, sizeof(at), "%" PRId64, expire_at_ms);
	const char *argv[] = { "EVAL", lua_renew, "1", key, epoch, at };
	int err = cs_command(cs, 6, argv, &r);
	if (err)
		return err;
	err = reply_int(r, &v);
	freeReplyObject(r);
	*ours = v == 1;
	return err;
}

/* The cache participant: pending marks at prepare, clears at commit/abort. */
#include "cache.h"

#include <inttypes.h>
#include <string.h>

#include "clock.h"
#include "log.h"

static int cp_prepare(void *ctx, const struct paytx_prepare *p, struct paytx_vote *vote)
{
	struct cachepart *c = ctx;
	const char *accounts[PAYTX_LEGS_MAX];
	size_t n = 0;
	for (size_t i = 0; i < p->nlegs; i++) {
		size_t j = 0;
		while (j < n && strcmp(accounts[j], p->legs[i].account) != 0)
			j++;
		if (j == n)
			accounts[n++] = p->legs[i].account;
	}
	if (cachestore_mark(c->cs, p->txn, accounts, n) != 0) {
		/* Readers must not trust the cache before this vote counts. */
		int64_t expired = lease_lost(c->lease);
		int64_t wait = expired - clock_mono_ms();
		if (wait > 0)
			clock_sleep_ms(wait);
		c->blind_votes++;
		log_txn(LOG_WARN, p->payment_id, p->txn, "voting yes without a pending mark "
			"(Redis unreachable; the cache's epoch has expired; %" PRIu64 " so far)",
			c->blind_votes);
	}
	vote->yes = true;
	return 0;
}

static int cp_decide(struct cachepart *c, int64_t txn, bool commit)
{
	char accounts[PAYTX_LEGS_MAX][PAYTX_ID_MAX + 1];
	size_t n;
	if (cachestore_clear(c->cs, txn, commit, accounts, PAYTX_LEGS_MAX, &n) != 0) {
		/* The marks stay where they are (readers skip those accounts);
		 * a new epoch and the sweep clean up. */
		(void)lease_lost(c->lease);
		return 0;
	}
	for (size_t i = 0; commit && i < n; i++)
		query_refresh(c->query, accounts[i]);
	return 0;
}

static int cp_commit(void *ctx, int64_t txn)
{
	return cp_decide(ctx, txn, true);
}

static int cp_abort(void *ctx, int64_t txn)
{
	return cp_decide(ctx, txn, false);
}

const struct paytx_participant_ops cachepart_ops = {
	.prepare = cp_prepare,
	.commit = cp_commit,
	.abort = cp_abort,
};

void cachepart_init(struct cachepart *c, struct cachestore *cs, struct lease *lease,
		    struct query *query)
{
	memset(c, 0, sizeof(*c));
	c->cs = cs;
	c->lease = lease;
	c->query = query;
}

void cachepart_finish(struct cachepart *c)
{
	cachestore_destroy(c->cs);
	c->cs = NULL;
}

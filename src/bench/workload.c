/* Benchmark accounts, their placement and the payment mix. */
#include "workload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_next(struct workload *w)
{
	w->rng ^= w->rng << 13; /* xorshift64 */
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static double rng_unit(struct workload *w)
{
	return (double)(rng_next(w) >> 11) / (double)(UINT64_C(1) << 53);
}

static size_t rng_below(struct workload *w, size_t n)
{
	return (size_t)(rng_next(w) % n);
}

int workload_init(struct workload *w, const struct workload_config *cfg,
		  const struct shardmap *shards)
{
	memset(w, 0, sizeof(*w));
	if (cfg->accounts < 2 || cfg->hot_accounts > cfg->accounts || !shards->n)
		return PAYTX_EINVAL;
	w->cfg = *cfg;
	w->shards = shards;
	w->rng = cfg->seed * 2862933555777941757ULL + 3037000493ULL;
	/* The run id is random, not seeded: two runs with one seed against the
	 * same databases must not share account names or payment ids. */
	unsigned char rnd[4] = { 0 };
	FILE *f = fopen("/dev/urandom", "rb");
	if (f) {
		size_t got = fread(rnd, 1, sizeof(rnd), f);
		(void)got;
		fclose(f);
	}
	snprintf(w->run, sizeof(w->run), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	w->ids = calloc(cfg->accounts, sizeof(*w->ids));
	w->by_shard = calloc(shards->n, sizeof(*w->by_shard));
	w->nby_shard = calloc(shards->n, sizeof(*w->nby_shard));
	if (!w->ids || !w->by_shard || !w->nby_shard)
		goto err;
	for (size_t s = 0; s < shards->n; s++)
		if (!(w->by_shard[s] = calloc(cfg->accounts, sizeof(**w->by_shard))))
			goto err;
	for (size_t i = 0; i < cfg->accounts; i++) {
		snprintf(w->ids[i], sizeof(w->ids[i]), "b%s-%zu", w->run, i);
		size_t s = shardmap_index(shards, w->ids[i]);
		w->by_shard[s][w->nby_shard[s]++] = i;
	}
	return 0;
err:
	workload_finish(w);
	return PAYTX_ENOMEM;
}

void workload_finish(struct workload *w)
{
	for (size_t s = 0; w->by_shard && s < w->shards->n; s++)
		free(w->by_shard[s]);
	free(w->by_shard);
	free(w->nby_shard);
	free(w->ids);
	memset(w, 0, sizeof(*w));
}

void workload_external(const struct workload *w, size_t shard, char *out, size_t n)
{
	/* Probe suffixes until the name lands on the shard. */
	for (unsigned k = 0;; k++) {
		snprintf(out, n, "b%s-ext%zu-%u", w->run, shard, k);
		if (shardmap_index(w->shards, out) == shard)
			return;
	}
}

/* Another account than `not`, on shard s's list or (when empty) anywhere. */
static size_t pick_on(struct workload *w, size_t s, size_t not)
{
	for (int tries = 0; tries < 64; tries++) {
		size_t i = w->nby_shard[s] ? w->by_shard[s][rng_below(w, w->nby_shard[s])]
					   : rng_below(w, w->cfg.accounts);
		if (i != not)
			return i;
	}
	return (not + 1) % w->cfg.accounts;
}

/* The counterpart of account a: on another shard with cross_share. */
static size_t pick_other(struct workload *w, size_t a)
{
	size_t s = shardmap_index(w->shards, w->ids[a]);
	if (w->shards->n > 1 && rng_unit(w) < w->cfg.cross_share)
		s = (s + 1 + rng_below(w, w->shards->n - 1)) % w->shards->n;
	return pick_on(w, s, a);
}

static void set_leg(struct paytx_leg *l, const char *account, int64_t amount, const char *cur)
{
	snprintf(l->account, sizeof(l->account), "%s", account);
	snprintf(l->currency, sizeof(l->currency), "%s", cur);
	l->amount = amount;
}

void workload_payment(struct workload *w, uint64_t seq, struct paytx_payment *p)
{
	size_t a, b;
	bool hot = w->cfg.hot_accounts && rng_unit(w) < w->cfg.hot_share;
	a = hot ? rng_below(w, w->cfg.hot_accounts) : rng_below(w, w->cfg.accounts);
	b = pick_other(w, a);
	if (rng_next(w) & 1) { /* the first account pays or is paid */
		size_t t = a;
		a = b;
		b = t;
	}
	int64_t amount = 1 + (int64_t)rng_below(w, 100);
	memset(p, 0, sizeof(*p));
	snprintf(p->payment_id, sizeof(p->payment_id), "b%s-p%llu", w->run,
		 (unsigned long long)seq);
	p->nlegs = 2;
	set_leg(&p->legs[0], w->ids[a], -amount, w->cfg.currency);
	set_leg(&p->legs[1], w->ids[b], amount, w->cfg.currency);
}

size_t workload_funding(const struct workload *w, size_t k, struct paytx_payment *p)
{
	size_t first = k * WORKLOAD_FUND_LEGS;
	if (first >= w->cfg.accounts)
		return 0;
	size_t n = w->cfg.accounts - first < WORKLOAD_FUND_LEGS ? w->cfg.accounts - first
								: WORKLOAD_FUND_LEGS;
	char ext[PAYTX_ID_MAX + 1];
	workload_external(w, shardmap_index(w->shards, w->ids[first]), ext, sizeof(ext));
	memset(p, 0, sizeof(*p));
	snprintf(p->payment_id, sizeof(p->payment_id), "b%s-fund%zu", w->run, k);
	p->nlegs = n + 1;
	set_leg(&p->legs[0], ext, -WORKLOAD_FUNDS * (int64_t)n, w->cfg.currency);
	for (size_t i = 0; i < n; i++)
		set_leg(&p->legs[i + 1], w->ids[first + i], WORKLOAD_FUNDS, w->cfg.currency);
	return n;
}

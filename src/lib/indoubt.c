/* The set of transactions a participant holds in doubt. */
#include "indoubt.h"

#include <stdbool.h>
#include <stdlib.h>

static size_t slot_of(int64_t txn, size_t cap)
{
	uint64_t h = (uint64_t)txn * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 32) & (cap - 1);
}

static struct indoubt_slot *find(const struct indoubt *d, int64_t txn)
{
	if (!d->cap)
		return NULL;
	for (size_t i = slot_of(txn, d->cap);; i = (i + 1) & (d->cap - 1)) {
		struct indoubt_slot *s = &d->slots[i];
		if (!s->used)
			return NULL;
		if (s->txn == txn)
			return s;
	}
}

static void place(struct indoubt *d, struct indoubt_slot v)
{
	size_t i = slot_of(v.txn, d->cap);
	while (d->slots[i].used)
		i = (i + 1) & (d->cap - 1);
	d->slots[i] = v;
}

static int grow(struct indoubt *d)
{
	size_t cap = d->cap ? d->cap * 2 : 64;
	struct indoubt_slot *old = d->slots, *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return PAYTX_ENOMEM;
	size_t oldcap = d->cap;
	d->slots = slots;
	d->cap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			place(d, old[i]);
	free(old);
	return 0;
}

void indoubt_init(struct indoubt *d)
{
	*d = (struct indoubt){ 0 };
}

void indoubt_finish(struct indoubt *d)
{
	free(d->slots);
	*d = (struct indoubt){ 0 };
}

int indoubt_add(struct indoubt *d, int64_t txn, int64_t since_ms)
{
	struct indoubt_slot *s = find(d, txn);
	if (s) {
		if (since_ms < s->since_ms)
			s->since_ms = since_ms;
		return 0;
	}
	/* Keep the load under 1/2 so probes stay short. */
	if ((d->len + 1) * 2 > d->cap && grow(d))
		return PAYTX_ENOMEM;
	place(d, (struct indoubt_slot){ .txn = txn, .since_ms = since_ms, .used = 1 });
	d->len++;
	return 0;
}

void indoubt_del(struct indoubt *d, int64_t txn)
{
	struct indoubt_slot *s = find(d, txn);
	if (!s)
		return;
	size_t mask = d->cap - 1, hole = (size_t)(s - d->slots);
	/* Backward shift: move later members of the probe run into the hole. */
	for (size_t i = (hole + 1) & mask; d->slots[i].used; i = (i + 1) & mask) {
		size_t home = slot_of(d->slots[i].txn, d->cap);
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			d->slots[hole] = d->slots[i];
			hole = i;
		}
	}
	d->slots[hole].used = 0;
	d->len--;
}

static bool among(int64_t txn, const int64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == txn)
			return true;
	return false;
}

void indoubt_prune(struct indoubt *d, int64_t older_than, const int64_t *held, size_t n)
{
	/* A deletion shifts later members back into slot i: look at i again. */
	for (size_t i = 0; i < d->cap;) {
		const struct indoubt_slot *s = &d->slots[i];
		if (s->used && s->since_ms < older_than && !among(s->txn, held, n))
			indoubt_del(d, s->txn);
		else
			i++;
	}
}

int64_t indoubt_oldest(const struct indoubt *d, int64_t none)
{
	int64_t oldest = none;
	for (size_t i = 0; i < d->cap; i++)
		if (d->slots[i].used && (oldest == none || d->slots[i].since_ms < oldest))
			oldest = d->slots[i].since_ms;
	return oldest;
}

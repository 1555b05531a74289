/* Hash table of in-flight transactions keyed by txn id. */
#include "txtable.h"

#include <stdlib.h>

static size_t slot_of(const struct txtable *t, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
	return (size_t)(h >> 17) & (t->cap - 1);
}

static int grow(struct txtable *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct txn **old = t->slots;
	size_t oldcap = t->cap;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return PAYTX_ENOMEM;
	}
	t->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i])
			continue;
		size_t s = slot_of(t, old[i]->id);
		while (t->slots[s])
			s = (s + 1) & (cap - 1);
		t->slots[s] = old[i];
	}
	free(old);
	return 0;
}

void txtable_init(struct txtable *t)
{
	t->slots = NULL;
	t->cap = 0;
	t->len = 0;
}

void txtable_finish(struct txtable *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i]);
	free(t->slots);
	txtable_init(t);
}

struct txn *txtable_get(struct txtable *t, int64_t id)
{
	if (!t->cap)
		return NULL;
	for (size_t s = slot_of(t, id); t->slots[s]; s = (s + 1) & (t->cap - 1))
		if (t->slots[s]->id == id)
			return t->slots[s];
	return NULL;
}

int txtable_put(struct txtable *t, struct txn *x)
{
	if (txtable_get(t, x->id))
		return PAYTX_EINVAL;
	if ((t->len + 1) * 4 > t->cap * 3 && grow(t) != 0)
		return PAYTX_ENOMEM;
	size_t s = slot_of(t, x->id);
	while (t->slots[s])
		s = (s + 1) & (t->cap - 1);
	t->slots[s] = x;
	t->len++;
	return 0;
}

void txtable_del(struct txtable *t, int64_t id)
{
	if (!t->cap)
		return;
	size_t s = slot_of(t, id);
	while (t->slots[s] && t->slots[s]->id != id)
		s = (s + 1) & (t->cap - 1);
	if (!t->slots[s])
		return;
	free(t->slots[s]);
	t->slots[s] = NULL;
	t->len--;
	/* Backward-shift: move later entries of the run into the hole. */
	for (size_t j = (s + 1) & (t->cap - 1); t->slots[j]; j = (j + 1) & (t->cap - 1)) {
		size_t home = slot_of(t, t->slots[j]->id);
		bool between = s <= j ? (home > s && home <= j) : (home > s || home <= j);
		if (!between) {
			t->slots[s] = t->slots[j];
			t->slots[j] = NULL;
			s = j;
		}
	}
}

struct txn *txtable_next(struct txtable *t, size_t *pos)
{
	while (*pos < t->cap) {
		struct txn *x = t->slots[(*pos)++];
		if (x)
			return x;
	}
	return NULL;
}

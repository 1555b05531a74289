/* Replay protection: a time window plus a sliding bitmap per sender. */
#include "grow.h"
#include "replay.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

void replay_init(struct replay_guard *g, int64_t window_s)
{
	memset(g, 0, sizeof(*g));
	g->window_s = window_s > 0 ? window_s : REPLAY_WINDOW_DEFAULT_S;
}

void replay_finish(struct replay_guard *g)
{
	free(g->senders);
	memset(g, 0, sizeof(*g));
}

/* Split "<sender>-<counter>": sender length and counter, or -1. */
static int parse_id(const char *id, size_t *sender_len, uint64_t *counter)
{
	const char *dash = strrchr(id, '-');
	if (!dash || dash == id || (size_t)(dash - id) >= REPLAY_SENDER_ID_MAX || !dash[1] ||
	    strlen(dash + 1) > 19)
		return -1;
	uint64_t c = 0;
	for (const char *p = dash + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		c = c * 10 + (uint64_t)(*p - '0');
	}
	if (c == 0)
		return -1;
	*sender_len = (size_t)(dash - id);
	*counter = c;
	return 0;
}

static bool bit_get(const struct replay_sender *s, uint64_t c)
{
	return s->seen[(c % REPLAY_SPAN) / 64] >> (c % 64) & 1;
}

static void bit_set(struct replay_sender *s, uint64_t c, bool on)
{
	uint64_t mask = (uint64_t)1 << (c % 64);
	uint64_t *w = &s->seen[(c % REPLAY_SPAN) / 64];
	*w = on ? *w | mask : *w & ~mask;
}

/* Drop senders silent for longer than the window; keep the order. */
static void forget_silent(struct replay_guard *g, int64_t now_s)
{
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->senders[i].last_s >= now_s - g->window_s)
			g->senders[k++] = g->senders[i];
	g->n = k;
}

static struct replay_sender *sender_add(struct replay_guard *g, const char *id, size_t len,
					int64_t now_s)
{
	forget_silent(g, now_s);
	if (g->n == REPLAY_SENDERS_MAX) {
		/* More live senders than expected: forget the quietest. */
		size_t oldest = 0;
		for (size_t i = 1; i < g->n; i++)
			if (g->senders[i].last_s < g->senders[oldest].last_s)
				oldest = i;
		log_warn("replay guard: more than %d senders; forgetting the quietest",
			 REPLAY_SENDERS_MAX);
		g->senders[oldest] = g->senders[--g->n];
	}
	struct replay_sender *all = paytx_grow(g->senders, &g->cap, g->n, sizeof(*all), 8);
	if (!all)
		return NULL;
	g->senders = all;
	struct replay_sender *s = &g->senders[g->n++];
	memset(s, 0, sizeof(*s));
	memcpy(s->id, id, len);
	return s;
}

static struct replay_sender *sender_find(struct replay_guard *g, const char *id, size_t len)
{
	for (size_t i = 0; i < g->n; i++)
		if (strncmp(g->senders[i].id, id, len) == 0 && g->senders[i].id[len] == '\0')
			return &g->senders[i];
	return NULL;
}

/* Slide the window up to counter c (c > s->top). */
static void advance(struct replay_sender *s, uint64_t c)
{
	if (c - s->top >= REPLAY_SPAN)
		memset(s->seen, 0, sizeof(s->seen));
	else
		for (uint64_t k = s->top + 1; k < c; k++)
			bit_set(s, k, false);
	s->top = c;
}

int replay_check(struct replay_guard *g, const char *message_id, int64_t timestamp_s,
		 int64_t now_s, bool redelivered, const char **why)
{
	size_t len;
	uint64_t c;
	if (!message_id || parse_id(message_id, &len, &c) != 0) {
		*why = "message_id missing or not <sender>-<counter>";
		return PAYTX_EINVAL;
	}
	if (timestamp_s <= 0) {
		*why = "timestamp missing";
		return PAYTX_EINVAL;
	}
	if (timestamp_s < now_s - g->window_s || timestamp_s > now_s + g->window_s) {
		*why = "timestamp outside the replay window";
		return PAYTX_EREPLAY;
	}
	struct replay_sender *s = sender_find(g, message_id, len);
	if (!s && !(s = sender_add(g, message_id, len, now_s))) {
		*why = "out of memory";
		return PAYTX_ENOMEM;
	}
	s->last_s = now_s;
	if (c > s->top) {
		advance(s, c);
	} else if (s->top - c >= REPLAY_SPAN) {
		if (!redelivered) {
			*why = "message_id too far behind its sender's newest message";
			return PAYTX_EREPLAY;
		}
		return 0;
	} else if (bit_get(s, c) && !redelivered) {
		*why = "message_id seen before";
		return PAYTX_EREPLAY;
	}
	bit_set(s, c, true);
	return 0;
}

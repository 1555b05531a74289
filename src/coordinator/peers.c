/* Participants' progress, for useful re-sends (see peers.h). */
#include "peers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void peers_init(struct peers *p, uint64_t epoch)
{
	memset(p, 0, sizeof(*p));
	p->epoch = epoch;
}

void peers_corr(const struct peers *p, uint64_t seq, char out[PEERS_CORR_MAX])
{
	snprintf(out, PEERS_CORR_MAX, "%" PRIx64 ".%" PRIu64, p->epoch, seq);
}

uint64_t peers_corr_seq(const struct peers *p, const char *corr)
{
	uint64_t epoch, seq;
	int end = 0;
	if (!corr || sscanf(corr, "%" SCNx64 ".%" SCNu64 "%n", &epoch, &seq, &end) != 2 ||
	    corr[end] != '\0' || epoch != p->epoch)
		return 0;
	return seq;
}

struct peer *peers_get(struct peers *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return &p->v[i];
	if (p->n == PEERS_MAX)
		return NULL;
	struct peer *peer = &p->v[p->n++];
	memset(peer, 0, sizeof(*peer));
	snprintf(peer->name, sizeof(peer->name), "%s", name);
	return peer;
}

uint64_t peers_sent(struct peer *peer)
{
	return ++peer->sent_seq;
}

void peers_answered(struct peer *peer, uint64_t seq)
{
	if (seq > peer->answered_seq)
		peer->answered_seq = seq;
}

void peers_connection_lost(struct peers *p, int64_t now_ms)
{
	p->lost_ms = now_ms;
}

bool peers_resend_useful(const struct peers *p, const struct peer *peer, uint64_t seq,
			 int64_t sent_ms, int64_t now_ms)
{
	return !peer || now_ms - sent_ms >= PEERS_FORCE_MS || p->lost_ms >= sent_ms ||
	       peer->answered_seq > seq;
}

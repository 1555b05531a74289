/* What the coordinator knows of each participant's progress, to decide
 * whether re-sending an unanswered request can help.
 *
 * Every request sent to a participant gets the next number of that
 * participant's sequence. Protocol messages sit in a durable queue that the
 * participant consumes in order, with manual acks, so a request that has
 * not been answered is nearly always still queued: re-sending it only
 * lengthens the queue. That is what turned a coordinator adopting 17k
 * payments into 74k abort applications. A re-send is worthwhile when
 *   - the participant has answered a request sent after ours (ours or its
 *     answer was lost: a consumer's batch reorders only within
 *     milliseconds, and a re-send is only considered after the backoff), or
 *   - the broker connection was lost since ours was sent (protocol messages
 *     are transient, and replies die with a lost connection), or
 *   - ours has waited PEERS_FORCE_MS whatever else: the safety net for
 *     what this model does not foresee.
 * A participant that is down keeps its queue; it is not flooded either.
 * Pure bookkeeping, no I/O; the coordinator's thread only.
 */
#ifndef PAYTX_PEERS_H
#define PAYTX_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/message.h"

#define PEERS_MAX 32
#define PEERS_FORCE_MS 10000

struct peer {
	char name[PAYTX_ID_MAX + 1];
	uint64_t sent_seq;        /* last number handed out */
	uint64_t answered_seq;    /* highest number answered */
};

struct peers {
	struct peer v[PEERS_MAX];
	size_t n;
	int64_t lost_ms;          /* monotonic: broker connection last lost */
	uint64_t epoch;           /* this process's, in every correlation id */
};

/* Requests carry "<epoch>.<seq>" as their correlation_id, which
 * participants echo in their answers (the SDK does; docs/participants.md
 * asks every participant to): an answer names exactly the request it
 * answers, and answers to a previous process's requests (a restarted
 * coordinator reads the same reply queue) count for nothing. */
#define PEERS_CORR_MAX 48

void peers_init(struct peers *p, uint64_t epoch);
void peers_corr(const struct peers *p, uint64_t seq, char out[PEERS_CORR_MAX]);
/* The seq of one of this process's correlation ids; 0 for anything else. */
uint64_t peers_corr_seq(const struct peers *p, const char *corr);

/* The peer called name, added on first use; NULL when PEERS_MAX are in use
 * (then every re-send is allowed). */
struct peer *peers_get(struct peers *p, const char *name);
/* A request to peer goes out now: its sequence number. */
uint64_t peers_sent(struct peer *peer);
/* peer answered the request numbered seq. */
void peers_answered(struct peer *peer, uint64_t seq);
/* The broker connection was lost and is back: earlier sends may be gone. */
void peers_connection_lost(struct peers *p, int64_t now_ms);
/* Should the request numbered seq, sent to peer at sent_ms, go out again
 * now? (Asked only once its backoff has passed.) */
bool peers_resend_useful(const struct peers *p, const struct peer *peer, uint64_t seq,
			 int64_t sent_ms, int64_t now_ms);

#endif

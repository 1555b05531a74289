/* Replay protection for signed protocol messages.
 *
 * Every protocol message carries a message_id "<sender>-<counter>", where
 * sender names one running process (random, new at every start) and the
 * counter grows by one with every message it publishes, and an AMQP
 * timestamp; the signature covers both (sign.h). A replay_guard accepts
 * each message once:
 *   - it refuses a timestamp more than window_s away from now (either way),
 *   - it refuses a (sender, counter) it has accepted before, using a sliding
 *     bitmap of the last REPLAY_SPAN counters per sender (as IPsec does), so
 *     memory grows with the number of senders, never with traffic;
 *   - a counter more than REPLAY_SPAN behind the sender's newest is refused
 *     (it can no longer be told apart from a replay).
 * A sender not heard from for window_s is forgotten: anything it sent is
 * by then outside the window. A broker redelivery (the AMQP redelivered
 * flag, which only the broker sets) is not a replay: it is the same
 * delivery again after a lost ack, and its effect may not be durable yet.
 *
 * Embedded (replay_init / replay_finish); one per consuming connection,
 * single-threaded.
 */
#ifndef PAYTX_REPLAY_H
#define PAYTX_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"

#define REPLAY_SPAN 4096          /* counters remembered per sender */
#define REPLAY_SENDER_ID_MAX 48   /* bytes of the sender part, NUL included */
#define REPLAY_SENDERS_MAX 4096   /* senders remembered at once */
#define REPLAY_WINDOW_DEFAULT_S 900

struct replay_sender {
	char id[REPLAY_SENDER_ID_MAX];
	uint64_t top;                      /* newest counter accepted */
	uint64_t seen[REPLAY_SPAN / 64];   /* bit c % SPAN: counter c accepted,
					    * for top - SPAN < c <= top */
	int64_t last_s;                    /* wall clock, Unix seconds */
};

struct replay_guard {
	int64_t window_s;                  /* accepted clock distance, seconds */
	struct replay_sender *senders;     /* owned */
	size_t n;
	size_t cap;
};

void replay_init(struct replay_guard *g, int64_t window_s);
void replay_finish(struct replay_guard *g);

/* Check one message and remember it when accepted. message_id is
 * borrowed. Returns 0 (accepted), PAYTX_EREPLAY (seen before, too old,
 * from the future or too far behind) or PAYTX_EINVAL (message_id or
 * timestamp missing or malformed); *why is then a static sentence. */
int replay_check(struct replay_guard *g, const char *message_id, int64_t timestamp_s,
		 int64_t now_s, bool redelivered, const char **why) PAYTX_MUST_CHECK;

#endif

/* The coordinator's outgoing messages: prepares and decisions to
 * participants, outcomes to clients and events, rejections with their
 * dead letters. Everything is queued on the broker's confirm channel; the
 * caller's broker_flush confirms it. Single-threaded, like the broker.
 */
#ifndef PAYTX_OUTBOX_H
#define PAYTX_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "batch_out.h"
#include "broker.h"
#include "paytx/message.h"
#include "txn.h"

struct outbox {
	struct broker *broker;       /* borrowed */
	const char *reply_queue;     /* borrowed: where votes and acks come back */
	struct paytx_buf buf;
	struct batch_out requests;   /* to participants, sent by outbox_send */
};

void outbox_init(struct outbox *o, struct broker *b, const char *reply_queue);
void outbox_finish(struct outbox *o);

/* Requests to participants are queued, and go out at outbox_send, several
 * for one participant as one txn.batch. corr (may be NULL) is the
 * request's correlation_id: see peers.h. A traceparent (W3C; NULL or "" =
 * none) goes with it, so a trace started by the client follows its payment
 * everywhere. */
int outbox_prepare(struct outbox *o, const struct txn *t, const struct txn_part *part,
		   const char *corr) PAYTX_MUST_CHECK;
int outbox_decision(struct outbox *o, int64_t txn, bool commit, const char *payment_id,
		    const char *participant, const char *corr,
		    const char *traceparent) PAYTX_MUST_CHECK;
/* Publish the queued requests (confirmed at the next broker_flush). */
int outbox_send(struct outbox *o) PAYTX_MUST_CHECK;
/* Send out to reply_to (if any), to every waiter in waiters_json (a JSON
 * array of {reply_to, correlation_id}, may be NULL) and, when event is
 * true, to paytx.events as payment.<status>. */
int outbox_outcome(struct outbox *o, const struct paytx_outcome *out, const char *reply_to,
		   const char *correlation_id, const char *waiters_json, bool event,
		   const char *traceparent) PAYTX_MUST_CHECK;
/* Refuse a submit or protocol message: a rejected outcome to its reply_to
 * and paytx.events (submits only, and not for an outcome found on the submit
 * queue, which would loop), and a dead letter with the reason. */
int outbox_reject(struct outbox *o, const struct broker_msg *m, int err, const char *text) PAYTX_MUST_CHECK;

#endif

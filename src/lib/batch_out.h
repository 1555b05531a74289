/* Protocol messages on their way out, grouped per destination, so that
 * several for one queue go as one txn.batch message (see paytx_entry in
 * paytx/message.h): one publish, one signature, one confirm and one
 * delivery for many protocol steps. A destination with a single message
 * gets it alone, exactly as it would go unbatched. Everything queued is
 * published by batch_out_send, signed, and confirmed by the caller's next
 * broker_flush. Used by the coordinator (requests to each participant) and
 * the participant SDK (votes and acks to each coordinator). One thread.
 */
#ifndef PAYTX_BATCH_OUT_H
#define PAYTX_BATCH_OUT_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"
#include "paytx/message.h"

struct batch_dest {
	char exchange[64];
	char routing_key[256];
	bool mandatory;
	size_t n;                    /* entries queued */
	struct paytx_buf body;       /* n >= 2: the txn.batch being built */
	/* The first entry, sent alone if it stays the only one. */
	enum paytx_msg_type type;
	char corr[PAYTX_CORR_MAX + 1];
	char traceparent[56];
	struct paytx_buf single;
};

struct batch_out {
	struct broker *broker;       /* borrowed */
	const char *reply_to;        /* borrowed; NULL = none */
	struct batch_dest *v;
	size_t n, cap;
	size_t published;            /* messages published, ever (for tests and logs) */
};

void batch_out_init(struct batch_out *o, struct broker *b, const char *reply_to);
void batch_out_finish(struct batch_out *o);

/* Queue one protocol message (body: its JSON as encoded alone) for
 * exchange/routing_key. corr and traceparent may be NULL. A batch that
 * would outgrow PAYTX_MESSAGE_MAX or PAYTX_BATCH_MAX entries is published
 * first and a new one started. mandatory: see struct broker_out. */
int batch_out_add(struct batch_out *o, const char *exchange, const char *routing_key,
		  bool mandatory, enum paytx_msg_type type, const char *corr,
		  const char *traceparent, const char *body, size_t len) PAYTX_MUST_CHECK;
/* Publish everything queued. On failure (PAYTX_EBROKER) nothing queued is
 * kept: the caller redoes its batch, as after a failed broker_flush. */
int batch_out_send(struct batch_out *o) PAYTX_MUST_CHECK;

#endif

/* Reading a queue without consuming it: basic.get and requeue, for
 * operator tools (paytxctl dead). Part of the broker module. */
#include "broker.h"
#include "broker_impl.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

int broker_get(struct broker *b, const char *queue, struct broker_msg *m, uint32_t *left)
{
	if (!b->cons)
		return broker_failed(b);
	memset(m, 0, sizeof(*m));
	amqp_maybe_release_buffers(b->cons);
	amqp_rpc_reply_t r = amqp_basic_get(b->cons, CHANNEL, amqp_cstring_bytes(queue), 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		log_warn("amqp: basic.get on %s failed (no read permission?)", queue);
		return broker_failed(b);
	}
	if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
		return PAYTX_ENOTFOUND;
	const amqp_basic_get_ok_t *ok = r.reply.decoded;
	*left = ok->message_count;
	m->env.channel = CHANNEL;
	m->env.delivery_tag = ok->delivery_tag;
	m->env.redelivered = ok->redelivered;
	m->env.exchange = amqp_bytes_malloc_dup(ok->exchange);
	m->env.routing_key = amqp_bytes_malloc_dup(ok->routing_key);
	r = amqp_read_message(b->cons, CHANNEL, &m->env.message, 0);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_destroy_envelope(&m->env);
		memset(m, 0, sizeof(*m));
		log_warn("amqp: reading a message of %s failed", queue);
		return broker_failed(b);
	}
	broker_fill_msg(b, m);
	snprintf(m->queue, sizeof(m->queue), "%s", queue);
	return 0;
}

int broker_requeue_all(struct broker *b)
{
	/* Delivery tag 0 with "multiple": every unacked message of the channel.
	 * basic.nack has no reply; a basic.qos round trip after it returns only
	 * once the broker has handled the nack, so the messages are back in the
	 * queue when this returns, not when the connection is later dropped. */
	if (!b->cons || amqp_basic_nack(b->cons, CHANNEL, 0, 1, 1) != AMQP_STATUS_OK ||
	    !amqp_basic_qos(b->cons, CHANNEL, 0, 0, 0))
		return broker_failed(b);
	return 0;
}

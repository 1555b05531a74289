/* Publishing with confirms: the confirm window, signed protocol messages,
 * dead letters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "grow.h"
#include "broker.h"
#include "broker_impl.h"
#include "clock.h"
#include "crash.h"
#include "log.h"
#include "metrics.h"

static int window_mark(struct broker *b, uint64_t tag, bool multiple, unsigned char how)
{
	if (tag < b->window_base || tag >= b->window_base + b->window_len)
		return 0; /* a confirm for an earlier, abandoned window */
	size_t last = (size_t)(tag - b->window_base);
	for (size_t i = multiple ? 0 : last; i <= last; i++)
		if (!b->window_acked[i] || how == 2)
			b->window_acked[i] = how;
	return 0;
}

static bool window_done(const struct broker *b)
{
	for (size_t i = 0; i < b->window_len; i++)
		if (!b->window_acked[i])
			return false;
	return true;
}

/* Read one frame on the publisher connection and account for it. */
static int publisher_frame(struct broker *b)
{
	amqp_frame_t f;
	struct timeval tv = { .tv_sec = BROKER_CONFIRM_TIMEOUT_S };
	amqp_maybe_release_buffers(b->pub);
	int rc = amqp_simple_wait_frame_noblock(b->pub, &f, &tv);
	if (rc != AMQP_STATUS_OK) {
		log_warn("amqp: waiting for confirms: %s", amqp_error_string2(rc));
		return PAYTX_EBROKER;
	}
	if (f.frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (f.payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *a = f.payload.method.decoded;
		return window_mark(b, a->delivery_tag, a->multiple, 1);
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *n = f.payload.method.decoded;
		return window_mark(b, n->delivery_tag, n->multiple, 2);
	}
	case AMQP_BASIC_RETURN_METHOD: {
		amqp_message_t msg;
		b->window_returned = true;
		amqp_rpc_reply_t r = amqp_read_message(b->pub, f.channel, &msg, 0);
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return PAYTX_EBROKER;
		amqp_destroy_message(&msg);
		return 0;
	}
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		log_warn("amqp: server closed the publisher channel");
		return PAYTX_EBROKER;
	default:
		return 0;
	}
}

static int window_push(struct broker *b)
{
	if (b->window_len == 0)
		b->window_base = b->pub_seq + 1;
	unsigned char *w = paytx_grow(b->window_acked, &b->window_cap, b->window_len, 1, 256);
	if (!w)
		return PAYTX_ENOMEM;
	b->window_acked = w;
	b->window_acked[b->window_len++] = 0;
	b->pub_seq++;
	return 0;
}

static int publish_raw(struct broker *b, const char *exchange, const char *key, bool mandatory,
		       amqp_basic_properties_t *props, const void *body, size_t len)
{
	if (!b->pub)
		return broker_failed(b);
	int err = window_push(b);
	if (err)
		return err;
	amqp_bytes_t bytes = { .len = len, .bytes = (void *)body };
	int rc = amqp_basic_publish(b->pub, CHANNEL, amqp_cstring_bytes(exchange),
				    amqp_cstring_bytes(key), mandatory, 0, props, bytes);
	if (rc != AMQP_STATUS_OK) {
		log_warn("amqp: publish failed: %s", amqp_error_string2(rc));
		return broker_failed(b);
	}
	return 0;
}

static void set_str(amqp_basic_properties_t *p, amqp_flags_t flag, amqp_bytes_t *field,
		    const char *v)
{
	if (v && *v) {
		p->_flags |= flag;
		*field = amqp_cstring_bytes(v);
	}
}

/* One publish of o under a new message_id (and so a new signature). */
static int publish_once(struct broker *b, const struct broker_out *o)
{
	char msgid[64], sig[SIGN_HEX_LEN + 1];
	amqp_table_entry_t hdr[2];
	amqp_basic_properties_t p = { 0 };
	const char *type = paytx_msg_type_name(o->type);
	/* "<sender>-<counter>": what receivers' replay guards key on. */
	snprintf(msgid, sizeof(msgid), "%s-%llu", b->id_prefix,
		 (unsigned long long)++b->msg_counter);
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
		   AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
		   AMQP_BASIC_HEADERS_FLAG;
	p.content_type = amqp_cstring_bytes("application/json");
	p.delivery_mode = o->persistent ? 2 : 1;
	p.type = amqp_cstring_bytes(type);
	p.message_id = amqp_cstring_bytes(msgid);
	p.timestamp = (uint64_t)(clock_wall_ms() / 1000);
	set_str(&p, AMQP_BASIC_REPLY_TO_FLAG, &p.reply_to, o->reply_to);
	set_str(&p, AMQP_BASIC_CORRELATION_ID_FLAG, &p.correlation_id, o->correlation_id);
	int nh = 0;
	if (o->sign) {
		struct sign_input in = { .type = type, .message_id = msgid,
					 .timestamp_s = (int64_t)p.timestamp, .body = o->body,
					 .len = o->len };
		if (!b->cfg.key || sign_compute(b->cfg.key, &in, sig) != 0)
			return PAYTX_ESIG;
		hdr[nh++] = (amqp_table_entry_t){ .key = amqp_cstring_bytes(SIGN_HEADER),
			.value = { .kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(sig) } };
	}
	if (o->traceparent && *o->traceparent)
		hdr[nh++] = (amqp_table_entry_t){ .key = amqp_cstring_bytes(BROKER_HDR_TRACEPARENT),
			.value = { .kind = AMQP_FIELD_KIND_UTF8,
				   .value.bytes = amqp_cstring_bytes(o->traceparent) } };
	p.headers = (amqp_table_t){ .num_entries = nh, .entries = hdr };
	return publish_raw(b, o->exchange, o->routing_key, o->mandatory, &p, o->body, o->len);
}

int broker_publish(struct broker *b, const struct broker_out *o)
{
	int err = publish_once(b, o);
	/* Fault injection: the same protocol message sent again, as a
	 * re-send would be (a new message_id: a replay is refused instead). */
	if (!err && o->sign && crash_duplicate())
		err = publish_once(b, o);
	return err;
}

int broker_flush(struct broker *b)
{
	while (!window_done(b)) {
		if (publisher_frame(b) != 0)
			return broker_failed(b);
	}
	bool nacked = false;
	for (size_t i = 0; i < b->window_len; i++)
		nacked |= b->window_acked[i] == 2;
	bool returned = b->window_returned;
	b->window_len = 0;
	b->window_returned = false;
	if (nacked) {
		log_warn("amqp: broker refused (nacked) a publish");
		return PAYTX_EBROKER;
	}
	return returned ? PAYTX_EUNROUTABLE : 0;
}

size_t broker_pending(const struct broker *b)
{
	return b->window_len;
}

int broker_ack(struct broker *b, uint64_t tag)
{
	if (!b->cons || amqp_basic_ack(b->cons, CHANNEL, tag, 0) != AMQP_STATUS_OK)
		return broker_failed(b);
	return 0;
}

/* Dead-letter m, or with part set one protocol message taken out of it. */
static int dead_letter(struct broker *b, const struct broker_msg *m,
		       const struct broker_part *part, int err, const char *text)
{
	amqp_basic_properties_t p = m->env.message.properties;
	const amqp_table_t *old = (p._flags & AMQP_BASIC_HEADERS_FLAG) ? &p.headers : NULL;
	int nold = old ? old->num_entries : 0;
	if (nold > 64)
		nold = 64;
	amqp_table_entry_t hdr[64 + 5];
	int n = 0;
	for (int i = 0; i < nold; i++) {
		amqp_bytes_t k = old->entries[i].key;
		/* The batch's signature does not cover one entry's body, and
		 * the entry has its own traceparent. */
		if (part && ((k.len == strlen(SIGN_HEADER) &&
			      memcmp(k.bytes, SIGN_HEADER, k.len) == 0) ||
			     (k.len == strlen(BROKER_HDR_TRACEPARENT) &&
			      memcmp(k.bytes, BROKER_HDR_TRACEPARENT, k.len) == 0)))
			continue;
		hdr[n++] = old->entries[i];
	}
	hdr[n++] = (amqp_table_entry_t){ .key = amqp_cstring_bytes(BROKER_HDR_ERROR_CODE),
		.value = { .kind = AMQP_FIELD_KIND_UTF8,
			   .value.bytes = amqp_cstring_bytes(paytx_errcode(err)) } };
	hdr[n++] = (amqp_table_entry_t){ .key = amqp_cstring_bytes(BROKER_HDR_ERROR_TEXT),
		.value = { .kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(text) } };
	hdr[n++] = (amqp_table_entry_t){ .key = amqp_cstring_bytes(BROKER_HDR_ORIGIN_QUEUE),
		.value = { .kind = AMQP_FIELD_KIND_UTF8,
			   .value.bytes = amqp_cstring_bytes(m->queue) } };
	const char *type_name = m->type_name[0] ? m->type_name : "(untyped)";
	const void *body = m->body;
	size_t len = m->len;
	if (part) {
		hdr[n++] = (amqp_table_entry_t){ .key = amqp_cstring_bytes(BROKER_HDR_BATCH_ENTRY),
			.value = { .kind = AMQP_FIELD_KIND_I64, .value.i64 = (int64_t)part->index } };
		if (part->traceparent && *part->traceparent)
			hdr[n++] = (amqp_table_entry_t){
				.key = amqp_cstring_bytes(BROKER_HDR_TRACEPARENT),
				.value = { .kind = AMQP_FIELD_KIND_UTF8,
					   .value.bytes = amqp_cstring_bytes(part->traceparent) } };
		type_name = paytx_msg_type_name(part->type);
		p._flags |= AMQP_BASIC_TYPE_FLAG;
		p.type = amqp_cstring_bytes(type_name);
		p._flags &= ~(amqp_flags_t)AMQP_BASIC_CORRELATION_ID_FLAG;
		if (part->correlation_id && *part->correlation_id) {
			p._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
			p.correlation_id = amqp_cstring_bytes(part->correlation_id);
		}
		body = part->body;
		len = part->len;
	}
	p._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.delivery_mode = 2;
	p.headers = (amqp_table_t){ .num_entries = n, .entries = hdr };
	uint64_t count = metrics_inc(METRIC_DEAD_LETTERS, "code", paytx_errcode(err), "queue",
				     m->queue, 1);
	log_warn("dead-lettering a %s message from %s%s: %s: %s (%llu %s from %s so far)",
		 type_name, m->queue, part ? " (an entry of a txn.batch)" : "", paytx_errcode(err),
		 text, (unsigned long long)count, paytx_errcode(err), m->queue);
	return publish_raw(b, BROKER_DLX, m->queue, false, &p, body, len);
}

int broker_dead_letter(struct broker *b, const struct broker_msg *m, int err, const char *text)
{
	return dead_letter(b, m, NULL, err, text);
}

int broker_dead_letter_part(struct broker *b, const struct broker_msg *m,
			    const struct broker_part *part, int err, const char *text)
{
	return dead_letter(b, m, part, err, text);
}

static bool header_dropped(amqp_bytes_t key, const char *const *drop)
{
	for (size_t i = 0; drop && drop[i]; i++) {
		size_t n = strlen(drop[i]);
		if (key.len >= n && memcmp(key.bytes, drop[i], n) == 0)
			return true;
	}
	return false;
}

int broker_republish(struct broker *b, const struct broker_msg *m, const char *exchange,
		     const char *key, const char *const *drop_prefixes)
{
	amqp_basic_properties_t p = m->env.message.properties;
	const amqp_table_t *old = (p._flags & AMQP_BASIC_HEADERS_FLAG) ? &p.headers : NULL;
	amqp_table_entry_t hdr[64];
	int n = 0;
	for (int i = 0; old && i < old->num_entries && n < 64; i++)
		if (!header_dropped(old->entries[i].key, drop_prefixes))
			hdr[n++] = old->entries[i];
	p.headers = (amqp_table_t){ .num_entries = n, .entries = hdr };
	if (n == 0)
		p._flags &= ~(amqp_flags_t)AMQP_BASIC_HEADERS_FLAG;
	p._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.delivery_mode = 2;
	return publish_raw(b, exchange, key, true, &p, m->body, m->len);
}

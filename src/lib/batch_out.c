/* Outgoing protocol messages grouped per destination into txn.batch. */
#include "batch_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

void batch_out_init(struct batch_out *o, struct broker *b, const char *reply_to)
{
	memset(o, 0, sizeof(*o));
	o->broker = b;
	o->reply_to = reply_to;
}

void batch_out_finish(struct batch_out *o)
{
	for (size_t i = 0; i < o->n; i++) {
		paytx_buf_finish(&o->v[i].body);
		paytx_buf_finish(&o->v[i].single);
	}
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static struct batch_dest *dest_get(struct batch_out *o, const char *exchange, const char *key,
				   bool mandatory)
{
	for (size_t i = 0; i < o->n; i++) {
		struct batch_dest *d = &o->v[i];
		if (d->mandatory == mandatory && strcmp(d->exchange, exchange) == 0 &&
		    strcmp(d->routing_key, key) == 0)
			return d;
	}
	if (strlen(exchange) >= sizeof(o->v->exchange) || strlen(key) >= sizeof(o->v->routing_key))
		return NULL;
	struct batch_dest *v = paytx_grow(o->v, &o->cap, o->n, sizeof(*v), 8);
	if (!v)
		return NULL;
	o->v = v;
	struct batch_dest *d = &o->v[o->n++];
	memset(d, 0, sizeof(*d));
	snprintf(d->exchange, sizeof(d->exchange), "%s", exchange);
	snprintf(d->routing_key, sizeof(d->routing_key), "%s", key);
	d->mandatory = mandatory;
	paytx_buf_init(&d->body);
	paytx_buf_init(&d->single);
	return d;
}

static int dest_publish(struct batch_out *o, struct batch_dest *d)
{
	if (d->n == 0)
		return 0;
	struct broker_out m = { .exchange = d->exchange, .routing_key = d->routing_key,
				.reply_to = o->reply_to, .mandatory = d->mandatory, .sign = true };
	int err = 0;
	if (d->n == 1) {
		m.type = d->type;
		m.body = d->single.data;
		m.len = d->single.len;
		m.correlation_id = d->corr[0] ? d->corr : NULL;
		m.traceparent = d->traceparent[0] ? d->traceparent : NULL;
	} else {
		err = paytx_batch_end(&d->body);
		m.type = PAYTX_MSG_BATCH;
		m.body = d->body.data;
		m.len = d->body.len;
	}
	if (!err)
		err = broker_publish(o->broker, &m);
	if (!err)
		o->published++;
	d->n = 0;
	return err;
}

int batch_out_add(struct batch_out *o, const char *exchange, const char *routing_key,
		  bool mandatory, enum paytx_msg_type type, const char *corr,
		  const char *traceparent, const char *body, size_t len)
{
	struct batch_dest *d = dest_get(o, exchange, routing_key, mandatory);
	if (!d)
		return PAYTX_ENOMEM;
	size_t add = paytx_batch_entry_size(corr, traceparent, len);
	size_t have = d->n == 1 ? strlen("{\"entries\":[") +
				  paytx_batch_entry_size(d->corr, d->traceparent, d->single.len)
				: d->body.len;
	int err = 0;
	if (d->n && (d->n >= PAYTX_BATCH_MAX || have + add + 2 > PAYTX_MESSAGE_MAX))
		err = dest_publish(o, d);
	if (err)
		return err;
	if (d->n == 0) {
		d->type = type;
		snprintf(d->corr, sizeof(d->corr), "%s", corr && strlen(corr) <= PAYTX_CORR_MAX
			 ? corr : "");
		snprintf(d->traceparent, sizeof(d->traceparent), "%s",
			 traceparent && paytx_traceparent_valid(traceparent, strlen(traceparent))
			 ? traceparent : "");
		paytx_buf_reset(&d->single);
		err = paytx_buf_append(&d->single, body, len);
	} else {
		if (d->n == 1) {
			paytx_buf_reset(&d->body);
			err = paytx_batch_begin(&d->body);
			if (!err)
				err = paytx_batch_add(&d->body, true, d->type, d->corr, d->traceparent,
						      d->single.data, d->single.len);
		}
		if (!err)
			err = paytx_batch_add(&d->body, false, type, corr, traceparent, body, len);
	}
	if (!err)
		d->n++;
	return err;
}

int batch_out_send(struct batch_out *o)
{
	int err = 0;
	for (size_t i = 0; i < o->n; i++) {
		int e = dest_publish(o, &o->v[i]);
		if (!err)
			err = e;
	}
	return err;
}

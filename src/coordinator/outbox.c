/* Building and publishing the coordinator's outgoing messages. */
#include "outbox.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"

void outbox_init(struct outbox *o, struct broker *b, const char *reply_queue)
{
	o->broker = b;
	o->reply_queue = reply_queue;
	paytx_buf_init(&o->buf);
	batch_out_init(&o->requests, b, reply_queue);
}

void outbox_finish(struct outbox *o)
{
	paytx_buf_finish(&o->buf);
	batch_out_finish(&o->requests);
}

static int to_participant(struct outbox *o, enum paytx_msg_type type, const char *participant,
			  const char *corr, const char *traceparent)
{
	/* Mandatory: a participant queue deleted under us must not swallow
	 * requests unseen (see publish_all). */
	return batch_out_add(&o->requests, BROKER_PARTICIPANTS_EXCHANGE, participant, true, type,
			     corr, traceparent, o->buf.data, o->buf.len);
}

int outbox_send(struct outbox *o)
{
	return batch_out_send(&o->requests);
}

int outbox_prepare(struct outbox *o, const struct txn *t, const struct txn_part *part,
		   const char *corr)
{
	struct paytx_prepare p;
	txn_prepare_for(t, part, &p);
	paytx_buf_reset(&o->buf);
	int err = paytx_prepare_encode(&p, &o->buf);
	return err ? err : to_participant(o, PAYTX_MSG_PREPARE, part->name, corr, t->traceparent);
}

int outbox_decision(struct outbox *o, int64_t txn, bool commit, const char *payment_id,
		    const char *participant, const char *corr, const char *traceparent)
{
	struct paytx_decision d = { .txn = txn, .commit = commit };
	snprintf(d.payment_id, sizeof(d.payment_id), "%s", payment_id);
	paytx_buf_reset(&o->buf);
	int err = paytx_decision_encode(&d, &o->buf);
	return err ? err : to_participant(o, commit ? PAYTX_MSG_COMMIT : PAYTX_MSG_ABORT,
					  participant, corr, traceparent);
}

static int reply(struct outbox *o, const char *reply_to, const char *corr, const char *tp)
{
	if (!reply_to || !*reply_to)
		return 0;
	struct broker_out m = { .exchange = "", .routing_key = reply_to,
				.type = PAYTX_MSG_OUTCOME, .body = o->buf.data, .len = o->buf.len,
				.correlation_id = corr, .traceparent = tp, .persistent = true };
	return broker_publish(o->broker, &m);
}

static int reply_waiters(struct outbox *o, const char *waiters_json, const char *tp)
{
	if (!waiters_json)
		return 0;
	struct json_object *arr = json_tokener_parse(waiters_json);
	int err = 0;
	size_t n = arr && json_object_is_type(arr, json_type_array)
			   ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n && !err; i++) {
		struct json_object *w = json_object_array_get_idx(arr, i), *rt, *ci;
		if (json_object_object_get_ex(w, "reply_to", &rt) &&
		    json_object_object_get_ex(w, "correlation_id", &ci))
			err = reply(o, json_object_get_string(rt), json_object_get_string(ci), tp);
	}
	json_object_put(arr);
	return err;
}

int outbox_outcome(struct outbox *o, const struct paytx_outcome *out, const char *reply_to,
		   const char *correlation_id, const char *waiters_json, bool event,
		   const char *traceparent)
{
	paytx_buf_reset(&o->buf);
	int err = paytx_outcome_encode(out, &o->buf);
	if (!err)
		err = reply(o, reply_to, correlation_id, traceparent);
	if (!err)
		err = reply_waiters(o, waiters_json, traceparent);
	if (!err && event) {
		char key[64];
		snprintf(key, sizeof(key), "payment.%s", paytx_status_name(out->status));
		struct broker_out m = { .exchange = BROKER_EVENTS_EXCHANGE, .routing_key = key,
					.type = PAYTX_MSG_OUTCOME, .body = o->buf.data,
					.len = o->buf.len, .traceparent = traceparent,
					.persistent = true };
		err = broker_publish(o->broker, &m);
	}
	return err;
}


int outbox_reject(struct outbox *o, const struct broker_msg *m, int err, const char *text)
{
	/* An outcome on the submit queue is our own event or reply routed back
	 * (a client may bind paytx.submit to paytx.events, or name it as
	 * reply_to): answering it with another outcome would loop forever. */
	bool answer = strcmp(m->queue, BROKER_SUBMIT_QUEUE) == 0 && m->type != PAYTX_MSG_OUTCOME;
	if (answer) {
		struct paytx_outcome out = { .status = PAYTX_STATUS_REJECTED,
					     .submitted_ms = m->timestamp_s * 1000,
					     .finished_ms = clock_wall_ms() };
		paytx_guess_payment_id(m->body, m->len, out.payment_id, sizeof(out.payment_id));
		snprintf(out.reason, sizeof(out.reason), "%s", paytx_errcode(err));
		snprintf(out.detail, sizeof(out.detail), "%s", text);
		log_txn(LOG_INFO, out.payment_id, 0, "rejected: %s: %s", out.reason, out.detail);
		int e = outbox_outcome(o, &out, m->reply_to, m->correlation_id, NULL, true,
				       m->traceparent);
		if (e)
			return e;
	}
	return broker_dead_letter(o->broker, m, err, text);
}

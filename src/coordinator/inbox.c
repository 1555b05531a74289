/* The coordinator's input side: a batch of deliveries, decoded and sorted. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "coordinator_state.h"

static void push_or_die(struct idlist *l, int64_t id)
{
	if (idlist_push(l, id) != 0) {
		log_error("out of memory");
		abort();
	}
}

int inbox_reject(struct in_item *it, int err, const char *text)
{
	it->kind = IN_REJECT;
	it->err = err;
	snprintf(it->text, sizeof(it->text), "%s", text);
	return 0;
}

static int decode_submit(struct in_item *it)
{
	struct paytx_fault f = { 0 };
	if (it->msg.type_name[0] && it->msg.type != PAYTX_MSG_SUBMIT)
		return inbox_reject(it, PAYTX_EMSGTYPE, "paytx.submit accepts payment.submit only");
	int err = paytx_payment_decode(it->msg.body, it->msg.len, &it->pay, &f);
	if (err)
		return inbox_reject(it, err, f.text);
	it->kind = IN_SUBMIT;
	return 0;
}

static void on_vote(struct coordinator *c, const struct paytx_vote *v, const char *corr,
		    int64_t now)
{
	struct txn *t = txtable_get(&c->table, v->txn);
	reply_from(c, t, v->participant, corr, t && t->state == TXN_PREPARING, now);
	if (t && txn_on_vote(t, v) == TXN_STEP_DECIDE)
		push_or_die(&c->decide, t->id);
}

static void on_ack(struct coordinator *c, const struct paytx_ack *a, const char *corr,
		   int64_t now)
{
	struct txn *t = txtable_get(&c->table, a->txn);
	reply_from(c, t, a->participant, corr,
		   t && (t->state == TXN_COMMITTING || t->state == TXN_ABORTING), now);
	if (t && txn_on_ack(t, a) == TXN_STEP_DONE)
		push_or_die(&c->done, t->id);
}

/* Votes and acks, alone or in a txn.batch: valid as a whole or refused. */
static int on_replies(struct coordinator *c, struct in_item *it)
{
	struct broker_msg *m = &it->msg;
	struct paytx_fault f = { 0 };
	size_t n = 0;
	int err = paytx_entries_decode(m->type, PAYTX_BATCH_REPLIES, m->body, m->len,
				       m->correlation_id, m->traceparent, c->entries,
				       PAYTX_BATCH_MAX, &n, &f);
	if (err)
		return inbox_reject(it, err, f.text);
	it->kind = IN_REPLIES;
	int64_t now = clock_mono_ms();
	for (size_t i = 0; i < n; i++) {
		const struct paytx_entry *e = &c->entries[i];
		if (e->type == PAYTX_MSG_VOTE)
			on_vote(c, &e->u.vote, e->correlation_id, now);
		else
			on_ack(c, &e->u.ack, e->correlation_id, now);
	}
	return 0;
}

static int on_status(struct in_item *it)
{
	struct paytx_fault f = { 0 };
	int err = paytx_status_query_decode(it->msg.body, it->msg.len, &it->query, &f);
	if (err)
		return inbox_reject(it, err, f.text);
	it->kind = IN_STATUS;
	return 0;
}

static int classify(struct coordinator *c, struct in_item *it)
{
	struct broker_msg *m = &it->msg;
	if (strcmp(m->queue, BROKER_SUBMIT_QUEUE) == 0)
		return decode_submit(it);
	bool from_replies = strcmp(m->queue, c->reply_queue) == 0;
	bool ok_type = from_replies ? (m->type == PAYTX_MSG_VOTE || m->type == PAYTX_MSG_ACK ||
				       m->type == PAYTX_MSG_BATCH)
				    : m->type == PAYTX_MSG_STATUS;
	if (!ok_type)
		return inbox_reject(it, PAYTX_EMSGTYPE, "unexpected message type on this queue");
	if (m->auth)
		return inbox_reject(it, m->auth, m->auth_text);
	return from_replies ? on_replies(c, it) : on_status(it);
}

void inbox_collect(struct coordinator *c)
{
	/* Marks of outcomes sent (c->sent) are bookkeeping: they ride along
	 * with the next batch, or the scan's, rather than make an iteration
	 * of their own. Counting them as work made every iteration that
	 * published outcomes start the next at once, with whatever had
	 * arrived: under load, a chain of iterations of one or two deliveries
	 * each, every one a PostgreSQL commit. */
	bool busy = c->decide.n || c->done.n || c->kick.n;
	/* One millisecond past the scan: a wait that ends inside the scan's
	 * millisecond (the broker's timer rounds down) made the loop spin
	 * through it, thousands of empty iterations a second. */
	int64_t wait = busy ? 0 : c->next_scan_ms - clock_mono_ms() + 1;
	if (wait < 0)
		wait = 0;
	c->nitems = 0;
	while (c->nitems < c->cfg.batch_max) {
		struct in_item *it = &c->items[c->nitems];
		memset(it, 0, sizeof(*it));
		int err = broker_next(c->broker, &it->msg, c->nitems == 0 ? (int)wait : 0);
		if (err)
			break;
		c->nitems++;
		classify(c, it);
	}
}

void inbox_release(struct coordinator *c)
{
	for (size_t i = 0; i < c->nitems; i++) {
		paytx_payment_finish(&c->items[i].pay);
		broker_msg_release(&c->items[i].msg);
	}
	c->nitems = 0;
}

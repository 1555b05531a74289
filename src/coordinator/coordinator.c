/* The coordinator loop: batch in, one log commit, confirmed publishes, acks. */
#include "coordinator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "crash.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "sign.h"
#include "txlog.h"
#include "txn.h"
#include "txtable.h"

#define SCAN_INTERVAL_MS 100

enum in_kind { IN_SUBMIT, IN_VOTE, IN_ACK, IN_STATUS, IN_REJECT };

struct in_item {
	struct broker_msg msg;
	enum in_kind kind;
	int err;                        /* IN_REJECT: why */
	char text[PAYTX_DETAIL_MAX];
	struct paytx_payment pay;       /* IN_SUBMIT (metadata owned) */
	struct paytx_status_query query;/* IN_STATUS */
	enum txlog_insert ins;          /* IN_SUBMIT result */
	int64_t txn;
	struct txlog_row row;
	bool decided;                   /* IN_STATUS result */
	bool commit;
	char payment_id[PAYTX_ID_MAX + 1];
};

struct idlist {
	int64_t *v;
	size_t n, cap;
};

struct coordinator {
	struct coordinator_config cfg;
	volatile sig_atomic_t *stop;
	char reply_queue[192];
	struct sign_key key;
	struct broker *broker;
	struct outbox outbox;
	struct txlog log;
	struct txtable table;
	struct in_item *items;
	size_t nitems;
	struct idlist decide;           /* decision chosen: log it */
	struct idlist done;             /* all acked: finish, publish outcome */
	struct idlist sent;             /* outcome confirmed: mark it sent */
	struct idlist kick;             /* send requests now */
	struct idlist early;            /* abort outcome published before the acks */
	struct txlog_row *done_rows;    /* parallel to done */
	size_t done_rows_cap;
	struct txlog_row *decide_rows;  /* parallel to decide */
	size_t decide_rows_cap;
	int64_t next_scan_ms, next_renew_ms, next_adopt_ms;
};

static int idlist_push(struct idlist *l, int64_t id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int64_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return PAYTX_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

static void push_or_die(struct idlist *l, int64_t id)
{
	if (idlist_push(l, id) != 0) {
		log_error("out of memory");
		abort();
	}
}

/* ---- inputs ---------------------------------------------------------- */

static int item_reject(struct in_item *it, int err, const char *text)
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
		return item_reject(it, PAYTX_EMSGTYPE, "paytx.submit accepts payment.submit only");
	int err = paytx_payment_decode(it->msg.body, it->msg.len, &it->pay, &f);
	if (err)
		return item_reject(it, err, f.text);
	it->kind = IN_SUBMIT;
	return 0;
}

static int on_vote(struct coordinator *c, struct in_item *it)
{
	struct paytx_vote v;
	struct paytx_fault f = { 0 };
	int err = paytx_vote_decode(it->msg.body, it->msg.len, &v, &f);
	if (err)
		return item_reject(it, err, f.text);
	it->kind = IN_VOTE;
	struct txn *t = txtable_get(&c->table, v.txn);
	if (t && txn_on_vote(t, &v) == TXN_STEP_DECIDE)
		push_or_die(&c->decide, t->id);
	return 0;
}

static int on_ack(struct coordinator *c, struct in_item *it)
{
	struct paytx_ack a;
	struct paytx_fault f = { 0 };
	int err = paytx_ack_decode(it->msg.body, it->msg.len, &a, &f);
	if (err)
		return item_reject(it, err, f.text);
	it->kind = IN_ACK;
	struct txn *t = txtable_get(&c->table, a.txn);
	if (t && txn_on_ack(t, &a) == TXN_STEP_DONE)
		push_or_die(&c->done, t->id);
	return 0;
}

static int on_status(struct in_item *it)
{
	struct paytx_fault f = { 0 };
	int err = paytx_status_query_decode(it->msg.body, it->msg.len, &it->query, &f);
	if (err)
		return item_reject(it, err, f.text);
	it->kind = IN_STATUS;
	return 0;
}

static int classify(struct coordinator *c, struct in_item *it)
{
	struct broker_msg *m = &it->msg;
	if (strcmp(m->queue, BROKER_SUBMIT_QUEUE) == 0)
		return decode_submit(it);
	bool from_replies = strcmp(m->queue, c->reply_queue) == 0;
	bool ok_type = from_replies ? (m->type == PAYTX_MSG_VOTE || m->type == PAYTX_MSG_ACK)
				    : m->type == PAYTX_MSG_STATUS;
	if (!ok_type)
		return item_reject(it, PAYTX_EMSGTYPE, "unexpected message type on this queue");
	if (!m->signature_ok)
		return item_reject(it, PAYTX_ESIG, "missing or bad x-paytx-signature");
	if (m->type == PAYTX_MSG_VOTE)
		on_vote(c, it);
	else if (m->type == PAYTX_MSG_ACK)
		on_ack(c, it);
	else
		on_status(it);
	return 0;
}

static void collect(struct coordinator *c)
{
	bool busy = c->decide.n || c->done.n || c->sent.n || c->kick.n;
	int64_t wait = busy ? 0 : c->next_scan_ms - clock_mono_ms();
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

static void release_items(struct coordinator *c)
{
	for (size_t i = 0; i < c->nitems; i++) {
		paytx_payment_finish(&c->items[i].pay);
		broker_msg_release(&c->items[i].msg);
	}
	c->nitems = 0;
}

/* ---- the log transaction ---------------------------------------------- */

static int log_submit(struct coordinator *c, struct in_item *it)
{
	struct paytx_buf canon;
	paytx_buf_init(&canon);
	int err = paytx_payment_canonical(&it->pay, &canon);
	if (!err)
		err = txlog_insert(&c->log, &it->pay, canon.data, it->msg.reply_to,
				   it->msg.correlation_id, clock_wall_ms(), &it->ins, &it->txn,
				   &it->row);
	paytx_buf_finish(&canon);
	return err;
}

/* Make rows hold n zeroed rows. */
static int rows_reserve(struct txlog_row **rows, size_t *cap, size_t n)
{
	if (n > *cap) {
		struct txlog_row *r = realloc(*rows, n * sizeof(*r));
		if (!r)
			return PAYTX_ENOMEM;
		*rows = r;
		*cap = n;
	}
	if (n)
		memset(*rows, 0, n * sizeof(**rows));
	return 0;
}

static void rows_free(struct txlog_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		txlog_row_finish(&rows[i]);
}

static int log_decisions(struct coordinator *c, bool *logged)
{
	int err = rows_reserve(&c->decide_rows, &c->decide_rows_cap, c->decide.n);
	for (size_t i = 0; !err && i < c->decide.n; i++) {
		struct txn *t = txtable_get(&c->table, c->decide.v[i]);
		err = txlog_decide(&c->log, t->id, t->commit, t->reason, t->detail, &logged[i],
				   &c->decide_rows[i]);
	}
	return err;
}

static int log_done_rows(struct coordinator *c)
{
	int err = rows_reserve(&c->done_rows, &c->done_rows_cap, c->done.n);
	for (size_t i = 0; !err && i < c->done.n; i++) {
		struct txn *t = txtable_get(&c->table, c->done.v[i]);
		err = txlog_finish_txn(&c->log, c->done.v[i], t->commit, &c->done_rows[i]);
	}
	return err;
}

static void free_rows(struct coordinator *c)
{
	rows_free(c->done_rows, c->done.n < c->done_rows_cap ? c->done.n : c->done_rows_cap);
	rows_free(c->decide_rows, c->decide.n < c->decide_rows_cap ? c->decide.n
								   : c->decide_rows_cap);
}

/* Everything this iteration must make durable, in one transaction. */
static int log_try(struct coordinator *c, bool *logged)
{
	bool durable = c->decide.n || c->done.n;
	int err = txlog_begin(&c->log);
	for (size_t i = 0; !err && i < c->nitems; i++) {
		struct in_item *it = &c->items[i];
		if (it->kind == IN_SUBMIT) {
			durable = true;
			err = log_submit(c, it);
		} else if (it->kind == IN_STATUS) {
			err = txlog_decision(&c->log, it->query.txn, &it->commit, it->payment_id);
			it->decided = err == 0;
			err = err == PAYTX_ENOTFOUND ? 0 : err;
		}
	}
	if (!err)
		err = log_decisions(c, logged);
	/* Marks first, so a finish in the same batch sees an early outcome. */
	for (size_t i = 0; !err && i < c->sent.n; i++)
		err = txlog_outcome_sent(&c->log, c->sent.v[i]);
	if (!err)
		err = log_done_rows(c);
	if (!err)
		crash_point("coordinator.before_log_commit");
	if (!err)
		err = txlog_commit(&c->log, durable);
	if (err)
		txlog_rollback(&c->log);
	return err;
}

/* Retry the log transaction until it commits: PostgreSQL may be restarting. */
static int log_batch(struct coordinator *c, bool *logged)
{
	int64_t backoff = 100;
	for (;;) {
		int err = log_try(c, logged);
		if (!err)
			return 0;
		free_rows(c);
		if (*c->stop)
			return err;
		log_warn("coordinator log write failed; retrying in %lld ms", (long long)backoff);
		clock_sleep_ms(backoff);
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
		if (pg_broken(c->log.conn))
			PQreset(c->log.conn);
	}
}

/* ---- after the log commit --------------------------------------------- */

static struct paytx_outcome outcome_of_row(const struct txlog_row *r)
{
	struct paytx_outcome o = { .txn = r->txn, .submitted_ms = r->submitted_ms,
				   .finished_ms = r->finished_ms };
	o.status = strcmp(r->state, "committed") == 0 ? PAYTX_STATUS_COMMITTED
						       : PAYTX_STATUS_ABORTED;
	if (!o.finished_ms)
		o.finished_ms = clock_wall_ms();
	snprintf(o.payment_id, sizeof(o.payment_id), "%s", r->payment_id);
	snprintf(o.reason, sizeof(o.reason), "%s", r->reason);
	snprintf(o.detail, sizeof(o.detail), "%s", r->detail);
	return o;
}

static int start_txn(struct coordinator *c, struct in_item *it)
{
	struct txn *t = malloc(sizeof(*t));
	if (!t)
		return PAYTX_ENOMEM;
	int err = txn_init(t, it->txn, &it->pay, &c->cfg.shards, &c->cfg.extra, clock_wall_ms(),
			   clock_mono_ms(), c->cfg.prepare_timeout_ms);
	if (!err)
		err = txtable_put(&c->table, t);
	if (err) {
		free(t);
		return err;
	}
	log_txn(LOG_INFO, t->payment_id, t->id, "accepted: preparing on %zu participants",
		t->nparts);
	return idlist_push(&c->kick, t->id);
}

static int submit_result(struct coordinator *c, struct in_item *it)
{
	switch (it->ins) {
	case TXLOG_NEW:
		return start_txn(c, it);
	case TXLOG_DUP_OPEN:
		log_txn(LOG_INFO, it->pay.payment_id, it->txn, "duplicate submit while in flight");
		return 0;
	case TXLOG_DUP_FINAL: {
		struct paytx_outcome o = outcome_of_row(&it->row);
		log_txn(LOG_INFO, it->pay.payment_id, it->txn, "duplicate submit: first outcome %s",
			it->row.state);
		return outbox_outcome(&c->outbox, &o, it->msg.reply_to, it->msg.correlation_id,
				      NULL, false);
	}
	case TXLOG_CONFLICT:
		item_reject(it, PAYTX_ECONFLICT, "payment_id was used before for a different "
			    "payment");
		return 0;
	}
	return 0;
}

/* An abort moves no money, so its outcome need not wait for the acks; a
 * commit's does, so that a client told "committed" sees it in balances. */
static int answer_abort(struct coordinator *c, const struct txlog_row *r)
{
	if (r->outcome_sent)
		return 0;
	struct paytx_outcome o = outcome_of_row(r);
	int err = outbox_outcome(&c->outbox, &o, r->reply_to, r->correlation_id, r->waiters, true);
	return err ? err : idlist_push(&c->early, r->txn);
}

static int apply_decisions(struct coordinator *c, const bool *logged)
{
	int64_t now = clock_mono_ms();
	int err = 0;
	for (size_t i = 0; !err && i < c->decide.n; i++) {
		struct txn *t = txtable_get(&c->table, c->decide.v[i]);
		txn_decided(t, logged[i], now);
		log_txn(LOG_INFO, t->payment_id, t->id, "decided %s%s%s",
			t->commit ? "commit" : "abort", t->commit ? "" : ": ", t->reason);
		err = idlist_push(&c->kick, t->id);
		if (!err && !t->commit)
			err = answer_abort(c, &c->decide_rows[i]);
	}
	rows_free(c->decide_rows, c->decide.n);
	c->decide.n = 0;
	return err;
}

static int publish_outcomes(struct coordinator *c)
{
	int err = 0;
	for (size_t i = 0; !err && i < c->done.n; i++) {
		struct txlog_row *r = &c->done_rows[i];
		struct paytx_outcome o = outcome_of_row(r);
		log_txn(LOG_INFO, r->payment_id, r->txn, "%s", r->state);
		if (r->outcome_sent)
			continue;
		err = outbox_outcome(&c->outbox, &o, r->reply_to, r->correlation_id, r->waiters,
				     true);
	}
	return err;
}

/* ---- sending and timers ----------------------------------------------- */

static int send_requests(struct coordinator *c, struct txn *t)
{
	int err = 0;
	for (size_t i = 0; !err && i < t->nparts; i++) {
		const struct txn_part *part = &t->parts[i];
		if (!txn_part_waiting(t, part))
			continue;
		if (t->state == TXN_PREPARING)
			err = outbox_prepare(&c->outbox, t, part);
		else
			err = outbox_decision(&c->outbox, t->id, t->commit, t->payment_id,
					      part->name);
	}
	return err;
}

static int send_kicked(struct coordinator *c)
{
	int64_t now = clock_mono_ms();
	int err = 0;
	for (size_t i = 0; !err && i < c->kick.n; i++) {
		struct txn *t = txtable_get(&c->table, c->kick.v[i]);
		if (t && txn_resend_due(t, now))
			err = send_requests(c, t);
	}
	c->kick.n = 0;
	return err;
}

/* Deadlines and re-sends; O(in flight), so only every SCAN_INTERVAL_MS. */
static int scan(struct coordinator *c)
{
	int64_t now = clock_mono_ms(), wall = clock_wall_ms();
	if (now < c->next_scan_ms)
		return 0;
	c->next_scan_ms = now + SCAN_INTERVAL_MS;
	size_t pos = 0;
	int err = 0;
	for (struct txn *t; !err && (t = txtable_next(&c->table, &pos));) {
		if (txn_on_timer(t, wall) == TXN_STEP_DECIDE) {
			err = idlist_push(&c->decide, t->id);
		} else if (txn_resend_due(t, now)) {
			log_txn(LOG_DEBUG, t->payment_id, t->id, "re-sending %s",
				t->state == TXN_PREPARING ? "prepare" : "decision");
			err = send_requests(c, t);
		}
	}
	return err;
}

/* ---- leases and recovery ---------------------------------------------- */

static int adopt_row(void *arg, struct txlog_row *row)
{
	struct coordinator *c = arg;
	struct paytx_payment p;
	struct paytx_fault f;
	if (txtable_get(&c->table, row->txn))
		return 0;
	if (paytx_payment_decode(row->request, strlen(row->request), &p, &f) != 0) {
		log_txn(LOG_ERROR, row->payment_id, row->txn, "stored request unreadable: %s",
			f.text);
		return 0;
	}
	struct txn *t = malloc(sizeof(*t));
	int err = t ? txn_init(t, row->txn, &p, &c->cfg.shards, &c->cfg.extra,
			       row->submitted_ms, clock_mono_ms(), c->cfg.prepare_timeout_ms)
		    : PAYTX_ENOMEM;
	paytx_payment_finish(&p);
	if (!err)
		err = txtable_put(&c->table, t);
	if (err) {
		free(t);
		return err;
	}
	snprintf(t->reason, sizeof(t->reason), "%s", row->reason);
	snprintf(t->detail, sizeof(t->detail), "%s", row->detail);
	log_txn(LOG_INFO, row->payment_id, row->txn, "adopted in state %s", row->state);
	if (strcmp(row->state, "preparing") == 0) {
		/* Presumed abort: no decision was logged. */
		(void)txn_decide(t, false, "coordinator_recovery",
				 "coordinator failed before all votes arrived");
		return idlist_push(&c->decide, t->id);
	}
	bool commit = strcmp(row->state, "committing") == 0 || strcmp(row->state, "committed") == 0;
	txn_decided(t, commit, clock_mono_ms());
	if (strcmp(row->state, "committed") == 0 || strcmp(row->state, "aborted") == 0) {
		t->state = commit ? TXN_COMMITTED : TXN_ABORTED;
		return idlist_push(&c->done, t->id);
	}
	return idlist_push(&c->kick, t->id);
}

static void leases(struct coordinator *c, bool startup)
{
	int64_t now = clock_mono_ms();
	if (startup || now >= c->next_renew_ms) {
		c->next_renew_ms = now + c->cfg.lease_ms / 3;
		if (txlog_renew(&c->log) != 0)
			log_warn("lease renewal failed");
	}
	if (startup || now >= c->next_adopt_ms) {
		c->next_adopt_ms = now + c->cfg.lease_ms / 2;
		if (txlog_adopt(&c->log, startup, adopt_row, c) != 0)
			log_warn("adopting expired transactions failed");
	}
}

/* ---- the loop ----------------------------------------------------------- */

static bool needs_log(const struct coordinator *c)
{
	if (c->decide.n || c->done.n || c->sent.n)
		return true;
	for (size_t i = 0; i < c->nitems; i++)
		if (c->items[i].kind == IN_SUBMIT || c->items[i].kind == IN_STATUS)
			return true;
	return false;
}

/* Publish everything this iteration produced. */
static int publish_all(struct coordinator *c)
{
	int err = 0;
	for (size_t i = 0; !err && i < c->nitems; i++) {
		struct in_item *it = &c->items[i];
		if (it->kind == IN_SUBMIT)
			err = submit_result(c, it);
		if (!err && it->kind == IN_STATUS && it->decided)
			err = outbox_decision(&c->outbox, it->query.txn, it->commit, it->payment_id,
					      it->query.participant);
		if (!err && it->kind == IN_REJECT)
			err = outbox_reject(&c->outbox, &it->msg, it->err, it->text);
	}
	if (!err)
		err = publish_outcomes(c);
	if (!err)
		err = send_kicked(c);
	if (!err)
		err = scan(c);
	/* Idle iterations publish nothing: only real boundaries count. */
	bool publishing = broker_pending(c->broker) > 0;
	if (publishing)
		crash_point("coordinator.before_publish_confirm");
	if (!err)
		err = broker_flush(c->broker);
	if (publishing && (!err || err == PAYTX_EUNROUTABLE))
		crash_point("coordinator.after_publish_confirm");
	return err == PAYTX_EUNROUTABLE ? 0 : err;
}

static int ack_all(struct coordinator *c)
{
	for (size_t i = 0; i < c->done.n; i++) {
		if (idlist_push(&c->sent, c->done.v[i]))
			return PAYTX_ENOMEM;
		txtable_del(&c->table, c->done.v[i]);
	}
	c->done.n = 0;
	for (size_t i = 0; i < c->early.n; i++)
		if (idlist_push(&c->sent, c->early.v[i]))
			return PAYTX_ENOMEM;
	c->early.n = 0;
	for (size_t i = 0; i < c->nitems; i++) {
		int err = broker_ack(c->broker, c->items[i].msg.tag);
		if (err)
			return err;
	}
	if (c->nitems)
		crash_point("coordinator.after_input_ack");
	return 0;
}

static int iteration(struct coordinator *c)
{
	collect(c);
	leases(c, false);
	bool *logged = calloc(c->decide.n + 1, sizeof(*logged));
	size_t sent = c->sent.n;
	int err = logged ? 0 : PAYTX_ENOMEM;
	bool logging = !err && needs_log(c);
	if (logging)
		err = log_batch(c, logged);
	if (!err) {
		if (logging)
			crash_point("coordinator.after_log_commit");
		/* Outcomes confirmed last time are now marked sent. */
		if (sent) {
			memmove(c->sent.v, c->sent.v + sent,
				(c->sent.n - sent) * sizeof(*c->sent.v));
			c->sent.n -= sent;
		}
		err = apply_decisions(c, logged);
	}
	if (!err)
		err = publish_all(c);
	/* Outcomes are queued: the rows are not needed any more (ack_all
	 * empties the done list, so free them now). */
	rows_free(c->done_rows, c->done.n < c->done_rows_cap ? c->done.n : c->done_rows_cap);
	if (!err)
		err = ack_all(c);
	free_rows(c);
	c->early.n = 0;
	release_items(c);
	free(logged);
	/* A consume can fail with nothing else to do: reconnect (with
	 * backoff) on any loss, not only on a failed publish. */
	if ((err == PAYTX_EBROKER || !broker_connected(c->broker)) && !*c->stop)
		return broker_reconnect(c->broker);
	return *c->stop ? 0 : err;
}

int coordinator_run(struct coordinator *c)
{
	PGconn *conn;
	if (pg_connect(&conn, c->cfg.pg_dsn, "paytx-coordinator", c->stop) != 0)
		return PAYTX_EDB;
	txlog_init(&c->log, conn, c->cfg.id, c->cfg.lease_ms);
	if (pg_migrate(conn, schema_coordinator_sql) != 0)
		return PAYTX_EDB;
	if (broker_connect(c->broker) != 0)
		return PAYTX_EBROKER;
	leases(c, true);
	log_info("coordinator %s ready: %zu shards, %zu other participants, prepare timeout "
		 "%lld ms", c->cfg.id, c->cfg.shards.n, c->cfg.extra.n,
		 (long long)c->cfg.prepare_timeout_ms);
	while (!*c->stop) {
		int err = iteration(c);
		if (err && err != PAYTX_EBROKER) {
			log_error("coordinator stopping: %s", paytx_strerror(err));
			return err;
		}
	}
	log_info("coordinator stopped");
	return 0;
}

struct coordinator *coordinator_create(const struct coordinator_config *cfg,
				       volatile sig_atomic_t *stop)
{
	struct coordinator *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->stop = stop;
	snprintf(c->reply_queue, sizeof(c->reply_queue), "paytx.reply.%s", cfg->id);
	if (sign_key_init(&c->key, cfg->hmac_key, strlen(cfg->hmac_key)) != 0) {
		log_error("PAYTX_HMAC_KEY: must be 16 to 64 bytes");
		free(c);
		return NULL;
	}
	struct broker_config bc = { .url = cfg->amqp_url, .tls_ca = cfg->amqp_tls_ca,
				    .name = c->reply_queue, .key = &c->key, .stop = stop };
	c->items = calloc(cfg->batch_max, sizeof(*c->items));
	c->broker = broker_create(&bc);
	txtable_init(&c->table);
	int err = c->items && c->broker ? 0 : PAYTX_ENOMEM;
	for (size_t i = 0; !err && i < cfg->shards.n; i++)
		err = broker_want_participant_queue(c->broker, cfg->shards.names[i]);
	for (size_t i = 0; !err && i < cfg->extra.n; i++)
		err = broker_want_participant_queue(c->broker, cfg->extra.names[i]);
	if (!err)
		err = broker_want_reply_queue(c->broker, c->reply_queue);
	if (!err)
		err = broker_want_consumer(c->broker, c->reply_queue, cfg->prefetch);
	if (!err)
		err = broker_want_consumer(c->broker, BROKER_SUBMIT_QUEUE, cfg->prefetch);
	if (!err)
		err = broker_want_consumer(c->broker, BROKER_STATUS_QUEUE, cfg->prefetch);
	if (err) {
		coordinator_destroy(c);
		return NULL;
	}
	outbox_init(&c->outbox, c->broker, c->reply_queue);
	return c;
}

void coordinator_destroy(struct coordinator *c)
{
	if (!c)
		return;
	outbox_finish(&c->outbox);
	broker_destroy(c->broker);
	if (c->log.conn)
		txlog_finish(&c->log);
	txtable_finish(&c->table);
	free(c->items);
	free(c->decide.v);
	free(c->done.v);
	free(c->sent.v);
	free(c->kick.v);
	free(c->done_rows);
	free(c->decide_rows);
	free(c->early.v);
	sign_key_finish(&c->key);
	free(c);
}

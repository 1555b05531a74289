/* The coordinator loop: batch in, one log commit, confirmed publishes, acks. */
#include "coordinator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coordinator_state.h"
#include "crash.h"
#include "pg.h"

/* ---- the log transaction ---------------------------------------------- */

static int log_submit(struct coordinator *c, struct in_item *it)
{
	struct paytx_buf canon;
	paytx_buf_init(&canon);
	int err = paytx_payment_canonical(&it->pay, &canon);
	if (!err)
		err = txlog_insert(&c->log, &it->pay, canon.data, it->msg.reply_to,
				   it->msg.correlation_id, c->extra_list, it->msg.traceparent,
				   clock_wall_ms(), &it->ins, &it->txn, &it->row);
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
			err = txlog_decision(&c->log, it->query.txn, &it->decided, &it->commit,
					     it->payment_id);
		}
	}
	if (!err)
		err = log_decisions(c, logged);
	/* Marks first, so a finish in the same batch sees an early outcome. */
	if (!err)
		err = txlog_outcomes_sent(&c->log, c->sent.v, c->sent.n);
	if (!err)
		err = log_done_rows(c);
	loopstat_mark(&c->stats, 1, "log");
	/* Everything above was only queued: one exchange sends it with the
	 * COMMIT and fills the results the code after this reads. */
	if (!err)
		crash_point("coordinator.before_log_commit");
	if (!err)
		err = txlog_commit(&c->log, durable);
	loopstat_mark(&c->stats, 2, "log commit");
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
		txlog_heal(&c->log);
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
	t->backoff_ms = resend_first_ms(c);
	snprintf(t->traceparent, sizeof(t->traceparent), "%s", it->msg.traceparent);
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
		/* Our own row, yet not in our table: an earlier try of this batch
		 * committed but we never heard the reply. Carry the payment on. */
		if (strcmp(it->row.owner, c->cfg.id) == 0 && !txtable_get(&c->table, it->txn) &&
		    strcmp(it->row.state, "preparing") == 0)
			return start_txn(c, it);
		log_txn(LOG_INFO, it->pay.payment_id, it->txn, "duplicate submit while in flight");
		return 0;
	case TXLOG_DUP_FINAL: {
		struct paytx_outcome o = outcome_of_row(&it->row);
		log_txn(LOG_INFO, it->pay.payment_id, it->txn, "duplicate submit: first outcome %s",
			it->row.state);
		return outbox_outcome(&c->outbox, &o, it->msg.reply_to, it->msg.correlation_id,
				      NULL, false, it->msg.traceparent);
	}
	case TXLOG_CONFLICT:
		inbox_reject(it, PAYTX_ECONFLICT, "payment_id was used before for a different "
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
	int err = outbox_outcome(&c->outbox, &o, r->reply_to, r->correlation_id, r->waiters, true,
				 r->traceparent);
	return err ? err : idlist_push(&c->early, r->txn);
}

static int apply_decisions(struct coordinator *c, const bool *logged)
{
	int64_t now = clock_mono_ms();
	int err = 0;
	for (size_t i = 0; !err && i < c->decide.n; i++) {
		struct txn *t = txtable_get(&c->table, c->decide.v[i]);
		txn_decided(t, logged[i], now);
		metrics_batch_observe(&c->metrics, METRIC_PHASE_SECONDS, "phase", "prepare",
				      now - t->started_ms);
		t->backoff_ms = resend_first_ms(c);
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
				     true, r->traceparent);
	}
	return err;
}

/* ---- sending and timers ----------------------------------------------- */

/* Send t's requests to the participants that have not answered; a re-send
 * skips those for which peers.h says it cannot help yet. */
static int send_requests(struct coordinator *c, struct txn *t, bool resend)
{
	int64_t now = clock_mono_ms();
	int err = 0;
	for (size_t i = 0; !err && i < t->nparts; i++) {
		struct txn_part *part = &t->parts[i];
		if (!txn_part_waiting(t, part))
			continue;
		struct peer *peer = peers_get(&c->peers, part->name);
		if (resend && part->seq &&
		    !peers_resend_useful(&c->peers, peer, part->seq, part->sent_ms, now))
			continue;
		if (resend)
			metrics_batch_inc(&c->metrics, METRIC_RESENDS, "request",
					  t->state == TXN_PREPARING ? "prepare" : "decision", NULL,
					  NULL, 1);
		part->seq = peer ? peers_sent(peer) : 0;
		part->sent_ms = now;
		char corr[PEERS_CORR_MAX];
		peers_corr(&c->peers, part->seq, corr);
		if (t->state == TXN_PREPARING)
			err = outbox_prepare(&c->outbox, t, part, corr);
		else
			err = outbox_decision(&c->outbox, t->id, t->commit, t->payment_id,
					      part->name, corr, t->traceparent);
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
			err = send_requests(c, t, false);
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
	int64_t oldest = wall;  /* submit time of the oldest in doubt */
	int err = 0;
	for (struct txn *t; !err && (t = txtable_next(&c->table, &pos));) {
		if (txn_in_doubt(t) && t->submitted_ms < oldest)
			oldest = t->submitted_ms;
		if (txn_on_timer(t, wall) == TXN_STEP_DECIDE) {
			err = idlist_push(&c->decide, t->id);
		} else if (txn_resend_due(t, now)) {
			log_txn(LOG_DEBUG, t->payment_id, t->id, "re-send due: %s",
				t->state == TXN_PREPARING ? "prepare" : "decision");
			err = send_requests(c, t, true);
		}
	}
	metrics_batch_set(&c->metrics, METRIC_OLDEST_IN_DOUBT, (double)(wall - oldest) / 1000.0);
	return err;
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
					      it->query.participant, NULL, it->msg.traceparent);
		if (!err && it->kind == IN_REJECT)
			err = outbox_reject(&c->outbox, &it->msg, it->err, it->text);
	}
	if (!err)
		err = publish_outcomes(c);
	if (!err)
		err = send_kicked(c);
	if (!err)
		err = scan(c);
	if (!err)
		err = outbox_send(&c->outbox);
	/* Idle iterations publish nothing: only real boundaries count. */
	bool publishing = broker_pending(c->broker) > 0;
	if (publishing)
		crash_point("coordinator.before_publish_confirm");
	if (!err)
		err = broker_flush(c->broker);
	if (publishing && (!err || err == PAYTX_EUNROUTABLE))
		crash_point("coordinator.after_publish_confirm");
	if (err == PAYTX_EUNROUTABLE) {
		/* A participant's queue or binding is gone (deleted by hand, say):
		 * after this batch, reconnect, which declares and binds every
		 * participant queue again; peers.h then re-sends what was lost. */
		log_warn("amqp: a request to a participant had no queue; declaring the topology "
			 "again");
		c->redeclare = true;
		return 0;
	}
	return err;
}

/* A payment every participant acked, its outcome published: count it. */
static void count_finished(struct coordinator *c, const struct txn *t, int64_t now,
			   int64_t wall)
{
	metrics_batch_inc(&c->metrics, METRIC_PAYMENTS, "outcome",
			  t->commit ? "committed" : "aborted", "reason", t->reason, 1);
	metrics_batch_observe(&c->metrics, METRIC_PHASE_SECONDS, "phase", "decision",
			      now - t->decided_ms);
	metrics_batch_observe(&c->metrics, METRIC_PHASE_SECONDS, "phase", "total",
			      wall - t->submitted_ms);
}

static int ack_all(struct coordinator *c)
{
	int64_t now = clock_mono_ms(), wall = clock_wall_ms();
	for (size_t i = 0; i < c->done.n; i++) {
		if (idlist_push(&c->sent, c->done.v[i]))
			return PAYTX_ENOMEM;
		const struct txn *t = txtable_get(&c->table, c->done.v[i]);
		if (t)
			count_finished(c, t, now, wall);
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
	loopstat_begin(&c->stats);
	inbox_collect(c);
	loopstat_mark(&c->stats, 0, "wait+collect");
	recovery_leases(c, false);
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
	loopstat_mark(&c->stats, 3, "publish+confirm");
	/* Outcomes are queued: the rows are not needed any more (ack_all
	 * empties the done list, so free them now). */
	rows_free(c->done_rows, c->done.n < c->done_rows_cap ? c->done.n : c->done_rows_cap);
	if (!err)
		err = ack_all(c);
	loopstat_mark(&c->stats, 4, "ack");
	loopstat_end(&c->stats, c->nitems);
	metrics_batch_set(&c->metrics, METRIC_INFLIGHT, (double)c->table.len);
	metrics_batch_flush(&c->metrics);
	free_rows(c);
	c->early.n = 0;
	inbox_release(c);
	free(logged);
	/* A consume can fail with nothing else to do: reconnect (with
	 * backoff) on any loss, not only on a failed publish. */
	if ((err == PAYTX_EBROKER || !broker_connected(c->broker) || c->redeclare) && !*c->stop) {
		c->redeclare = false;
		err = broker_reconnect(c->broker);
		/* What went out before may be gone with the connection. */
		peers_connection_lost(&c->peers, clock_mono_ms());
		return err;
	}
	return *c->stop ? 0 : err;
}

int coordinator_run(struct coordinator *c)
{
	PGconn *conn;
	/* The connects only give up when asked to stop (e.g. SIGTERM while a
	 * refused TLS certificate keeps them retrying): that is a clean stop. */
	if (pg_connect_options(&conn, c->cfg.pg_dsn, "paytx-coordinator", TXLOG_PG_OPTIONS,
			       c->stop) != 0)
		return *c->stop ? 0 : PAYTX_EDB;
	txlog_init(&c->log, conn, c->cfg.id, c->cfg.lease_ms);
	int err = pg_schema_check(conn, PG_SCHEMA_COORDINATOR, PG_SCHEMA_COORDINATOR_VERSION);
	if (err)
		return err;
	err = broker_connect(c->broker);
	if (err)
		return *c->stop ? 0 : err;
	recovery_leases(c, true);
	log_info("coordinator %s ready: %zu shards, %zu other participants, prepare timeout "
		 "%lld ms", c->cfg.id, c->cfg.shards.n, c->cfg.extra.n,
		 (long long)c->cfg.prepare_timeout_ms);
	while (!*c->stop) {
		err = iteration(c);
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
	loopstat_init(&c->stats, "coordinator loop");
	metrics_batch_init(&c->metrics);
	snprintf(c->reply_queue, sizeof(c->reply_queue), "paytx.reply.%s", cfg->id);
	peers_init(&c->peers, (uint64_t)clock_wall_ms());
	for (size_t i = 0, off = 0; i < cfg->extra.n && off < sizeof(c->extra_list); i++)
		off += (size_t)snprintf(c->extra_list + off, sizeof(c->extra_list) - off, "%s%s",
					i ? "," : "", cfg->extra.names[i]);
	if (sign_key_init(&c->key, cfg->hmac_key, strlen(cfg->hmac_key)) != 0) {
		log_error("PAYTX_HMAC_KEY: must be 16 to 64 bytes");
		free(c);
		return NULL;
	}
	struct broker_config bc = { .url = cfg->amqp_url, .tls_ca = cfg->amqp_tls_ca,
				    .tls_cert = cfg->amqp_tls_cert, .tls_key = cfg->amqp_tls_key,
				    .name = c->reply_queue, .role = BROKER_ROLE_COORDINATOR,
				    .key = &c->key, .stop = stop,
				    .replay_window_s = cfg->replay_window_s,
				    .queue_type = cfg->queue_type };
	c->items = calloc(cfg->batch_max, sizeof(*c->items));
	c->entries = calloc(PAYTX_BATCH_MAX, sizeof(*c->entries));
	c->broker = broker_create(&bc);
	txtable_init(&c->table);
	int err = c->items && c->entries && c->broker ? 0 : PAYTX_ENOMEM;
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
	free(c->entries);
	free(c->decide.v);
	free(c->done.v);
	free(c->sent.v);
	free(c->kick.v);
	free(c->done_rows);
	free(c->decide_rows);
	free(c->early.v);
	metrics_batch_finish(&c->metrics);
	sign_key_finish(&c->key);
	free(c);
}

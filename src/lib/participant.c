/* The participant SDK loop: consume, apply in batches, vote/ack, then ack. */
#include "paytx/participant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "crash.h"
#include "indoubt.h"
#include "log.h"
#include "loopstat.h"
#include "metrics.h"
#include "sign.h"

#define PART_ITEM_ATTEMPTS 5
#define PART_IN_DOUBT_MAX 256
#define PART_SEED_MAX 4096          /* reservations from before start-up counted */
#define PART_GAUGE_INTERVAL_MS 250  /* in-doubt gauges: a scan of the set */

struct part_item {
	struct broker_msg msg;
	bool valid;                  /* decoded and signed; apply it */
	bool applied;                /* its local effect is committed */
	int dead_err;                /* != 0: dead-letter with this error */
	char dead_text[PAYTX_DETAIL_MAX];
	int attempts;
	int64_t taken_ms;            /* monotonic: taken from the queue */
	int64_t applied_ms;          /* monotonic: its local transaction committed */
	union {
		struct paytx_prepare prepare;
		struct paytx_decision decision;
	} in;
	struct paytx_vote vote;      /* for prepares */
};

struct part {
	const struct paytx_participant_config *cfg;
	const struct paytx_participant_ops *ops;
	void *ctx;
	volatile sig_atomic_t *stop;
	struct broker *broker;
	struct part_item *items;
	struct paytx_step *steps;    /* for ops->apply, batch_max of them */
	struct paytx_buf out;
	int64_t next_in_doubt_ms;
	struct loopstat stats;       /* where the loop's time goes */
	struct indoubt in_doubt;     /* voted yes, no decision applied yet */
	int64_t next_gauges_ms;      /* monotonic */
	struct metrics_batch metrics;/* this batch's updates, flushed once */
};

static int item_reject(struct part_item *it, int err, const char *text)
{
	it->valid = false;
	it->dead_err = err;
	snprintf(it->dead_text, sizeof(it->dead_text), "%s", text);
	return 0;
}

/* Check and decode one delivery; invalid ones are marked for dead-lettering. */
static int item_decode(struct part *p, struct part_item *it)
{
	struct broker_msg *m = &it->msg;
	struct paytx_fault fault = { 0 };
	int err;
	it->valid = false;
	it->dead_err = 0;
	it->applied = false;
	it->attempts = 0;
	if (m->type != PAYTX_MSG_PREPARE && m->type != PAYTX_MSG_COMMIT &&
	    m->type != PAYTX_MSG_ABORT)
		return item_reject(it, PAYTX_EMSGTYPE, "participants accept txn.prepare, "
			"txn.commit and txn.abort only");
	if (m->auth)
		return item_reject(it, m->auth, m->auth_text);
	if (!m->reply_to[0])
		return item_reject(it, PAYTX_EINVAL, "protocol message without reply_to");
	if (m->type == PAYTX_MSG_PREPARE)
		err = paytx_prepare_decode(m->body, m->len, &it->in.prepare, &fault);
	else
		err = paytx_decision_decode(m->body, m->len, m->type == PAYTX_MSG_COMMIT,
					    &it->in.decision, &fault);
	if (err)
		return item_reject(it, err, fault.text);
	it->valid = true;
	(void)p;
	return 0;
}

/* A commit or abort the participant refused as impossible: dead-letter it. */
static void item_protocol_violation(struct part_item *it)
{
	item_reject(it, PAYTX_EPROTO, it->msg.type == PAYTX_MSG_COMMIT
		? "commit for a transaction this participant did not vote yes on"
		: "abort for a transaction this participant already committed");
}

static void vote_preset(struct part *p, struct part_item *it);

static int item_apply(struct part *p, struct part_item *it)
{
	const struct paytx_participant_ops *ops = p->ops;
	if (it->msg.type == PAYTX_MSG_PREPARE) {
		vote_preset(p, it);
		return ops->prepare(p->ctx, &it->in.prepare, &it->vote);
	}
	int64_t txn = it->in.decision.txn;
	int err = it->msg.type == PAYTX_MSG_COMMIT ? ops->commit(p->ctx, txn)
						   : ops->abort(p->ctx, txn);
	if (err == PAYTX_EPROTO) {
		item_protocol_violation(it);
		return 0;
	}
	return err;
}

static void vote_preset(struct part *p, struct part_item *it)
{
	memset(&it->vote, 0, sizeof(it->vote));
	it->vote.txn = it->in.prepare.txn;
	snprintf(it->vote.participant, sizeof(it->vote.participant), "%s", p->cfg->name);
}

/* The whole batch through ops->apply; results back into the items. */
static int steps_apply(struct part *p, struct part_item *items, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct part_item *it = &items[i];
		if (!it->valid || it->applied)
			continue;
		struct paytx_step *st = &p->steps[k++];
		*st = (struct paytx_step){ .type = it->msg.type };
		if (it->msg.type == PAYTX_MSG_PREPARE) {
			vote_preset(p, it);
			st->prepare = &it->in.prepare;
			st->txn = it->in.prepare.txn;
			st->payment_id = it->in.prepare.payment_id;
			st->vote = &it->vote;
		} else {
			st->txn = it->in.decision.txn;
			st->payment_id = it->in.decision.payment_id;
		}
	}
	int err = k ? p->ops->apply(p->ctx, p->steps, k) : 0;
	k = 0;
	for (size_t i = 0; !err && i < n; i++) {
		struct part_item *it = &items[i];
		if (!it->valid || it->applied)
			continue;
		int r = p->steps[k++].result;
		if (it->msg.type != PAYTX_MSG_PREPARE && r == PAYTX_EPROTO)
			item_protocol_violation(it);
		else if (it->msg.type != PAYTX_MSG_PREPARE && r)
			err = r;
	}
	return err;
}

/* Apply items[0..n) in one local transaction. 0, or the first failure. */
static int batch_try(struct part *p, struct part_item *items, size_t n)
{
	const struct paytx_participant_ops *ops = p->ops;
	int err = ops->batch_begin ? ops->batch_begin(p->ctx) : 0;
	if (!err && ops->apply)
		err = steps_apply(p, items, n);
	for (size_t i = 0; !err && !ops->apply && i < n; i++)
		if (items[i].valid && !items[i].applied)
			err = item_apply(p, &items[i]);
	if (!err)
		crash_point("participant.before_local_commit");
	if (!err && ops->batch_commit)
		err = ops->batch_commit(p->ctx);
	if (err) {
		if (ops->batch_rollback)
			ops->batch_rollback(p->ctx);
		return err;
	}
	crash_point("participant.after_local_commit");
	int64_t now = clock_mono_ms();
	for (size_t i = 0; i < n; i++) {
		if (items[i].valid && !items[i].applied)
			items[i].applied_ms = now;
		if (items[i].valid)
			items[i].applied = true;
	}
	return 0;
}

/* Whole batch first; on failure each item alone, so one bad item cannot
 * hold back the rest. Returns non-zero only when told to stop. */
static int batch_apply(struct part *p, size_t n)
{
	if (batch_try(p, p->items, n) == 0)
		return 0;
	int64_t backoff = 50;
	for (size_t i = 0; i < n; i++) {
		struct part_item *it = &p->items[i];
		while (it->valid && !it->applied) {
			if (*p->stop)
				return -1;
			if (batch_try(p, it, 1) == 0)
				break;
			/* Only failures against a healthy store count against the
			 * item: an outage must not dead-letter good messages. */
			bool store_ok = !p->ops->reset || p->ops->reset(p->ctx) == 0;
			if (store_ok && ++it->attempts >= PART_ITEM_ATTEMPTS) {
				item_reject(it, PAYTX_EDB, "participant failed to apply this "
					    "message repeatedly");
				break;
			}
			log_warn("participant: retrying a failed step in %lld ms",
				 (long long)backoff);
			clock_sleep_ms(backoff);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
		}
	}
	return 0;
}

static int publish_reply(struct part *p, struct part_item *it)
{
	struct broker_msg *m = &it->msg;
	struct broker_out o = { .exchange = "", .routing_key = m->reply_to,
				.correlation_id = m->correlation_id, .sign = true,
				.traceparent = m->traceparent };
	int err;
	paytx_buf_reset(&p->out);
	if (m->type == PAYTX_MSG_PREPARE) {
		o.type = PAYTX_MSG_VOTE;
		err = paytx_vote_encode(&it->vote, &p->out);
		log_txn(LOG_INFO, it->in.prepare.payment_id, it->vote.txn, "voted %s%s%s",
			it->vote.yes ? "yes" : "no", it->vote.yes ? "" : ": ", it->vote.reason);
	} else {
		struct paytx_ack ack = { .txn = it->in.decision.txn,
					 .commit = m->type == PAYTX_MSG_COMMIT };
		snprintf(ack.participant, sizeof(ack.participant), "%s", p->cfg->name);
		o.type = PAYTX_MSG_ACK;
		err = paytx_ack_encode(&ack, &p->out);
		log_txn(LOG_INFO, it->in.decision.payment_id, ack.txn, "%s applied",
			ack.commit ? "commit" : "abort");
	}
	if (err)
		return err;
	o.body = p->out.data;
	o.len = p->out.len;
	return broker_publish(p->broker, &o);
}

static const char *step_kind(enum paytx_msg_type type)
{
	return type == PAYTX_MSG_PREPARE ? "prepare" : type == PAYTX_MSG_COMMIT ? "commit"
										   : "abort";
}

/* A batch is answered and acked: count its steps and follow what is in
 * doubt. Only now, so a batch re-delivered after a failure counts once. */
static void batch_count(struct part *p, size_t n)
{
	int64_t wall = clock_wall_ms();
	for (size_t i = 0; i < n; i++) {
		const struct part_item *it = &p->items[i];
		if (it->dead_err || !it->applied)
			continue;
		const char *kind = step_kind(it->msg.type);
		metrics_batch_inc(&p->metrics, METRIC_STEPS, "kind", kind, NULL, NULL, 1);
		metrics_batch_observe(&p->metrics, METRIC_STEP_SECONDS, "kind", kind,
				      it->applied_ms - it->taken_ms);
		if (it->msg.type != PAYTX_MSG_PREPARE) {
			indoubt_del(&p->in_doubt, it->in.decision.txn);
			continue;
		}
		metrics_batch_inc(&p->metrics, METRIC_VOTES, "result", it->vote.yes ? "yes" : "no",
				  "reason", it->vote.yes ? "" : it->vote.reason, 1);
		if (it->vote.yes && indoubt_add(&p->in_doubt, it->vote.txn, wall))
			log_warn("participant: out of memory; paytx_in_doubt undercounts");
	}
}

/* The in-doubt gauges, at most every PART_GAUGE_INTERVAL_MS (a scan). */
static void gauges_update(struct part *p)
{
	int64_t now = clock_mono_ms(), wall = clock_wall_ms();
	if (now < p->next_gauges_ms)
		return;
	p->next_gauges_ms = now + PART_GAUGE_INTERVAL_MS;
	metrics_batch_set(&p->metrics, METRIC_IN_DOUBT, (double)p->in_doubt.len);
	metrics_batch_set(&p->metrics, METRIC_OLDEST_IN_DOUBT,
			  (double)(wall - indoubt_oldest(&p->in_doubt, wall)) / 1000.0);
}

/* Publish votes, acks and dead letters, wait for confirms, ack inputs. */
static int batch_finish(struct part *p, size_t n)
{
	int err = 0;
	for (size_t i = 0; !err && i < n; i++) {
		struct part_item *it = &p->items[i];
		if (it->dead_err)
			err = broker_dead_letter(p->broker, &it->msg, it->dead_err, it->dead_text);
		else if (it->applied)
			err = publish_reply(p, it);
	}
	crash_point("participant.before_reply_confirm");
	if (!err)
		err = broker_flush(p->broker);
	if (err == PAYTX_EUNROUTABLE) /* a reply queue is gone: its owner re-asks */
		err = 0;
	if (!err)
		crash_point("participant.after_reply_confirm");
	for (size_t i = 0; !err && i < n; i++)
		err = broker_ack(p->broker, p->items[i].msg.tag);
	crash_point("participant.after_input_ack");
	if (!err)
		batch_count(p, n);
	return err;
}

/* Ask the coordinators for decisions on reservations held too long. */
static void ask_in_doubt(struct part *p)
{
	int64_t now = clock_wall_ms();
	if (!p->ops->in_doubt || now < p->next_in_doubt_ms)
		return;
	p->next_in_doubt_ms = now + p->cfg->status_after_ms / 2 + 1;
	int64_t txns[PART_IN_DOUBT_MAX];
	size_t n = 0;
	if (p->ops->in_doubt(p->ctx, now - p->cfg->status_after_ms, txns, PART_IN_DOUBT_MAX, &n))
		return;
	/* A complete answer is the truth about everything held that long. */
	if (n < PART_IN_DOUBT_MAX)
		indoubt_prune(&p->in_doubt, now - p->cfg->status_after_ms, txns, n);
	for (size_t i = 0; i < n; i++) {
		/* Held at least status_after_ms: it may be from before start-up. */
		if (indoubt_add(&p->in_doubt, txns[i], now - p->cfg->status_after_ms))
			log_warn("participant: out of memory; paytx_in_doubt undercounts");
	}
	for (size_t i = 0; i < n; i++) {
		struct paytx_status_query q = { .txn = txns[i] };
		snprintf(q.participant, sizeof(q.participant), "%s", p->cfg->name);
		paytx_buf_reset(&p->out);
		if (paytx_status_query_encode(&q, &p->out))
			continue;
		struct broker_out o = { .exchange = "", .routing_key = BROKER_STATUS_QUEUE,
					.type = PAYTX_MSG_STATUS, .body = p->out.data,
					.len = p->out.len, .sign = true, .reply_to = p->cfg->name };
		log_txn(LOG_INFO, NULL, q.txn, "reservation in doubt: asking for the decision");
		if (broker_publish(p->broker, &o))
			return;
	}
	int err = n ? broker_flush(p->broker) : 0;
	if (err == PAYTX_EBROKER)
		log_warn("participant: status queries not confirmed; will ask again");
	else if (n && !err)
		metrics_inc(METRIC_STATUS_QUERIES, NULL, NULL, NULL, NULL, n);
}

/* Reservations held from before start-up are in doubt too; their age is
 * not known, so they count from now (ask_in_doubt corrects old ones). */
static void seed_in_doubt(struct part *p)
{
	int64_t now = clock_wall_ms();
	int64_t *txns = p->ops->in_doubt ? malloc(PART_SEED_MAX * sizeof(*txns)) : NULL;
	size_t n = 0;
	if (txns && p->ops->in_doubt(p->ctx, now, txns, PART_SEED_MAX, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (indoubt_add(&p->in_doubt, txns[i], now))
				break;
	free(txns);
}

static size_t batch_collect(struct part *p)
{
	size_t n = 0;
	while (n < p->cfg->batch_max) {
		int err = broker_next(p->broker, &p->items[n].msg, n == 0 ? 200 : 0);
		if (err)
			break;
		item_decode(p, &p->items[n]);
		p->items[n].taken_ms = clock_mono_ms();
		n++;
	}
	return n;
}

static void batch_release(struct part *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		broker_msg_release(&p->items[i].msg);
}

static int part_loop(struct part *p)
{
	while (!*p->stop) {
		loopstat_begin(&p->stats);
		size_t n = batch_collect(p);
		loopstat_mark(&p->stats, 0, "wait+collect");
		int err = 0;
		if (n && batch_apply(p, n) == 0) {
			loopstat_mark(&p->stats, 1, "apply+commit");
			err = batch_finish(p, n);
			loopstat_mark(&p->stats, 2, "reply+confirm+ack");
		}
		loopstat_end(&p->stats, n);
		batch_release(p, n);
		if (!err)
			ask_in_doubt(p);
		gauges_update(p);
		metrics_batch_flush(&p->metrics);
		if (!broker_connected(p->broker) && !*p->stop) {
			err = broker_reconnect(p->broker);
			if (err)
				return *p->stop ? 0 : err;
		}
	}
	return 0;
}

int paytx_participant_run(const struct paytx_participant_config *cfg,
			  const struct paytx_participant_ops *ops, void *ctx,
			  volatile sig_atomic_t *stop)
{
	struct sign_key key;
	struct part p = { .cfg = cfg, .ops = ops, .ctx = ctx, .stop = stop };
	int err = PAYTX_ECONFIG;
	bool per_message = ops->prepare && ops->commit && ops->abort;
	if (!cfg->name || !paytx_id_valid(cfg->name, strlen(cfg->name)) ||
	    (!ops->apply && !per_message) || cfg->batch_max == 0 || cfg->prefetch == 0)
		return PAYTX_ECONFIG;
	if (sign_key_init(&key, cfg->hmac_key, cfg->hmac_key ? strlen(cfg->hmac_key) : 0))
		return PAYTX_ECONFIG;
	struct broker_config bc = { .url = cfg->amqp_url, .tls_ca = cfg->amqp_tls_ca,
				    .tls_cert = cfg->amqp_tls_cert, .tls_key = cfg->amqp_tls_key,
				    .name = cfg->name, .role = BROKER_ROLE_PARTICIPANT,
				    .key = &key, .stop = stop,
				    .replay_window_s = cfg->replay_window_s };
	if (cfg->queue_type && queue_type_parse(cfg->queue_type, &bc.queue_type))
		return PAYTX_ECONFIG;
	paytx_buf_init(&p.out);
	loopstat_init(&p.stats, "participant loop");
	indoubt_init(&p.in_doubt);
	metrics_batch_init(&p.metrics);
	err = PAYTX_ENOMEM;
	p.items = calloc(cfg->batch_max, sizeof(*p.items));
	p.steps = calloc(cfg->batch_max, sizeof(*p.steps));
	p.broker = broker_create(&bc);
	if (!p.items || !p.steps || !p.broker)
		goto out;
	err = broker_want_participant_queue(p.broker, cfg->name);
	if (!err)
		err = broker_want_consumer(p.broker, cfg->name, cfg->prefetch);
	if (!err)
		err = broker_connect(p.broker);
	/* broker_connect only gives up when asked to stop (e.g. SIGTERM while
	 * a refused TLS certificate keeps it retrying): a clean stop. */
	if (err == PAYTX_EBROKER && stop && *stop) {
		err = 0;
	} else if (!err) {
		log_info("participant %s ready", cfg->name);
		seed_in_doubt(&p);
		err = part_loop(&p);
	}
out:
	broker_destroy(p.broker);
	free(p.items);
	free(p.steps);
	paytx_buf_finish(&p.out);
	indoubt_finish(&p.in_doubt);
	metrics_batch_finish(&p.metrics);
	sign_key_finish(&key);
	return err;
}

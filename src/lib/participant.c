/* The participant SDK loop: consume, apply in batches, vote/ack, then ack. */
#include "paytx/participant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_out.h"
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

/* One delivery: a protocol message alone or a txn.batch of several. */
struct part_delivery {
	struct broker_msg msg;
	int dead_err;                /* != 0: refused whole; dead-letter it */
	char dead_text[PAYTX_DETAIL_MAX];
	size_t first, n;             /* its items: items[first .. first + n) */
};

/* One protocol message (an entry of its delivery). */
struct part_item {
	struct paytx_entry *in;      /* p->entries[i] for items[i] */
	size_t delivery;             /* index in p->deliveries */
	bool valid;                  /* decoded and signed; apply it */
	bool applied;                /* its local effect is committed */
	int dead_err;                /* != 0: dead-letter with this error */
	char dead_text[PAYTX_DETAIL_MAX];
	int attempts;
	int64_t taken_ms;            /* monotonic: taken from the queue */
	int64_t applied_ms;          /* monotonic: its local transaction committed */
	struct paytx_vote vote;      /* for prepares */
};

struct part {
	const struct paytx_participant_config *cfg;
	const struct paytx_participant_ops *ops;
	void *ctx;
	volatile sig_atomic_t *stop;
	struct broker *broker;
	struct part_delivery *deliveries; /* batch_max of them */
	size_t ndeliveries;
	struct part_item *items;     /* items_max of them, */
	struct paytx_entry *entries; /* and their decoded messages */
	size_t items_max;
	struct paytx_step *steps;    /* for ops->apply, items_max of them */
	struct paytx_buf out;
	struct batch_out replies;    /* votes and acks, per coordinator */
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

static int delivery_reject(struct part_delivery *d, int err, const char *text)
{
	d->dead_err = err;
	snprintf(d->dead_text, sizeof(d->dead_text), "%s", text);
	return err;
}

/* Check and decode delivery d into items from p->nitems on; a delivery
 * that is not valid as a whole is marked for dead-lettering. */
static int delivery_decode(struct part *p, struct part_delivery *d, size_t *nitems)
{
	struct broker_msg *m = &d->msg;
	struct paytx_fault fault = { 0 };
	d->dead_err = 0;
	d->first = *nitems;
	d->n = 0;
	if (m->type != PAYTX_MSG_PREPARE && m->type != PAYTX_MSG_COMMIT &&
	    m->type != PAYTX_MSG_ABORT && m->type != PAYTX_MSG_BATCH)
		return delivery_reject(d, PAYTX_EMSGTYPE, "participants accept txn.prepare, "
				       "txn.commit, txn.abort and txn.batch only");
	if (m->auth)
		return delivery_reject(d, m->auth, m->auth_text);
	if (!m->reply_to[0])
		return delivery_reject(d, PAYTX_EINVAL, "protocol message without reply_to");
	size_t n = 0;
	int err = paytx_entries_decode(m->type, PAYTX_BATCH_REQUESTS, m->body, m->len,
				       m->correlation_id, m->traceparent, &p->entries[*nitems],
				       p->items_max - *nitems, &n, &fault);
	if (err)
		return delivery_reject(d, err, fault.text);
	int64_t now = clock_mono_ms();
	for (size_t i = 0; i < n; i++) {
		struct part_item *it = &p->items[*nitems + i];
		memset(it, 0, sizeof(*it));
		it->in = &p->entries[*nitems + i];
		it->delivery = (size_t)(d - p->deliveries);
		it->valid = true;
		it->taken_ms = now;
	}
	d->n = n;
	*nitems += n;
	return 0;
}

/* A commit or abort the participant refused as impossible: dead-letter it. */
static void item_protocol_violation(struct part_item *it)
{
	item_reject(it, PAYTX_EPROTO, it->in->type == PAYTX_MSG_COMMIT
		? "commit for a transaction this participant did not vote yes on"
		: "abort for a transaction this participant already committed");
}

static void vote_preset(struct part *p, struct part_item *it);

static int item_apply(struct part *p, struct part_item *it)
{
	const struct paytx_participant_ops *ops = p->ops;
	if (it->in->type == PAYTX_MSG_PREPARE) {
		vote_preset(p, it);
		return ops->prepare(p->ctx, &it->in->u.prepare, &it->vote);
	}
	int64_t txn = it->in->u.decision.txn;
	int err = it->in->type == PAYTX_MSG_COMMIT ? ops->commit(p->ctx, txn)
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
	it->vote.txn = it->in->u.prepare.txn;
	snprintf(it->vote.participant, sizeof(it->vote.participant), "%s", p->cfg->name);
}

/* The batch's items still to apply, as steps for ops->apply. */
static size_t steps_build(struct part *p, struct part_item *items, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct part_item *it = &items[i];
		if (!it->valid || it->applied)
			continue;
		struct paytx_step *st = &p->steps[k++];
		*st = (struct paytx_step){ .type = it->in->type };
		if (it->in->type == PAYTX_MSG_PREPARE) {
			vote_preset(p, it);
			st->prepare = &it->in->u.prepare;
			st->txn = it->in->u.prepare.txn;
			st->payment_id = it->in->u.prepare.payment_id;
			st->vote = &it->vote;
		} else {
			st->txn = it->in->u.decision.txn;
			st->payment_id = it->in->u.decision.payment_id;
		}
	}
	return k;
}

/* After batch_commit: what ops->apply's steps say, back into the items. A
 * step that failed fails the try, whose items are then retried alone
 * (idempotent, so whatever of it committed is found done). */
static int steps_read(struct part *p, struct part_item *items, size_t n)
{
	size_t k = 0;
	int err = 0;
	for (size_t i = 0; !err && i < n; i++) {
		struct part_item *it = &items[i];
		if (!it->valid || it->applied)
			continue;
		int r = p->steps[k++].result;
		if (it->in->type != PAYTX_MSG_PREPARE && r == PAYTX_EPROTO)
			item_protocol_violation(it);
		else if (it->in->type != PAYTX_MSG_PREPARE && r)
			err = r;
	}
	return err;
}

/* Apply items[0..n) in one local transaction. 0, or the first failure.
 * ops->apply's steps have their votes and results once batch_commit
 * returned (paytx/participant.h), so that both may be one round trip. */
static int batch_try(struct part *p, struct part_item *items, size_t n)
{
	const struct paytx_participant_ops *ops = p->ops;
	int err = ops->batch_begin ? ops->batch_begin(p->ctx) : 0;
	size_t k = !err && ops->apply ? steps_build(p, items, n) : 0;
	if (k)
		err = ops->apply(p->ctx, p->steps, k);
	for (size_t i = 0; !err && !ops->apply && i < n; i++)
		if (items[i].valid && !items[i].applied)
			err = item_apply(p, &items[i]);
	loopstat_mark(&p->stats, 1, "apply");
	if (!err)
		crash_point("participant.before_local_commit");
	if (!err && ops->batch_commit)
		err = ops->batch_commit(p->ctx);
	loopstat_mark(&p->stats, 2, "commit");
	if (!err && k)
		err = steps_read(p, items, n);
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
	const struct broker_msg *m = &p->deliveries[it->delivery].msg;
	const struct paytx_entry *in = it->in;
	enum paytx_msg_type type;
	int err;
	paytx_buf_reset(&p->out);
	if (in->type == PAYTX_MSG_PREPARE) {
		type = PAYTX_MSG_VOTE;
		err = paytx_vote_encode(&it->vote, &p->out);
		log_txn(LOG_INFO, in->u.prepare.payment_id, it->vote.txn, "voted %s%s%s",
			it->vote.yes ? "yes" : "no", it->vote.yes ? "" : ": ", it->vote.reason);
	} else {
		struct paytx_ack ack = { .txn = in->u.decision.txn,
					 .commit = in->type == PAYTX_MSG_COMMIT };
		snprintf(ack.participant, sizeof(ack.participant), "%s", p->cfg->name);
		type = PAYTX_MSG_ACK;
		err = paytx_ack_encode(&ack, &p->out);
		log_txn(LOG_INFO, in->u.decision.payment_id, ack.txn, "%s applied",
			ack.commit ? "commit" : "abort");
	}
	return err ? err : batch_out_add(&p->replies, "", m->reply_to, false, type,
					 in->correlation_id, in->traceparent, p->out.data,
					 p->out.len);
}

/* Dead-letter one refused message: the delivery itself when it came alone,
 * else that entry of its txn.batch, as it would have come alone. */
static int dead_letter_item(struct part *p, const struct part_item *it)
{
	const struct part_delivery *d = &p->deliveries[it->delivery];
	if (d->msg.type != PAYTX_MSG_BATCH)
		return broker_dead_letter(p->broker, &d->msg, it->dead_err, it->dead_text);
	paytx_buf_reset(&p->out);
	int err = it->in->type == PAYTX_MSG_PREPARE
			  ? paytx_prepare_encode(&it->in->u.prepare, &p->out)
			  : paytx_decision_encode(&it->in->u.decision, &p->out);
	struct broker_part part = { .index = (size_t)(it - p->items) - d->first,
				    .type = it->in->type,
				    .correlation_id = it->in->correlation_id,
				    .traceparent = it->in->traceparent,
				    .body = p->out.data, .len = p->out.len };
	return err ? err : broker_dead_letter_part(p->broker, &d->msg, &part, it->dead_err,
						   it->dead_text);
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
		const char *kind = step_kind(it->in->type);
		metrics_batch_inc(&p->metrics, METRIC_STEPS, "kind", kind, NULL, NULL, 1);
		metrics_batch_observe(&p->metrics, METRIC_STEP_SECONDS, "kind", kind,
				      it->applied_ms - it->taken_ms);
		if (it->in->type != PAYTX_MSG_PREPARE) {
			indoubt_del(&p->in_doubt, it->in->u.decision.txn);
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
	for (size_t i = 0; !err && i < p->ndeliveries; i++) {
		struct part_delivery *d = &p->deliveries[i];
		if (d->dead_err)
			err = broker_dead_letter(p->broker, &d->msg, d->dead_err, d->dead_text);
	}
	for (size_t i = 0; !err && i < n; i++) {
		struct part_item *it = &p->items[i];
		if (it->dead_err)
			err = dead_letter_item(p, it);
		else if (it->applied)
			err = publish_reply(p, it);
	}
	if (!err)
		err = batch_out_send(&p->replies);
	crash_point("participant.before_reply_confirm");
	if (!err)
		err = broker_flush(p->broker);
	if (err == PAYTX_EUNROUTABLE) /* a reply queue is gone: its owner re-asks */
		err = 0;
	if (!err)
		crash_point("participant.after_reply_confirm");
	for (size_t i = 0; !err && i < p->ndeliveries; i++)
		err = broker_ack(p->broker, p->deliveries[i].msg.tag);
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

/* Deliveries until batch_max protocol messages (a txn.batch counts for
 * its entries) or nothing more is waiting. The number of items. */
static size_t batch_collect(struct part *p)
{
	size_t n = 0;
	p->ndeliveries = 0;
	while (n < p->cfg->batch_max && p->ndeliveries < p->cfg->batch_max) {
		struct part_delivery *d = &p->deliveries[p->ndeliveries];
		int err = broker_next(p->broker, &d->msg, p->ndeliveries == 0 ? 200 : 0);
		if (err)
			break;
		p->ndeliveries++;
		(void)delivery_decode(p, d, &n); /* a refused one is dead-lettered */
	}
	return n;
}

static void batch_release(struct part *p)
{
	for (size_t i = 0; i < p->ndeliveries; i++)
		broker_msg_release(&p->deliveries[i].msg);
	p->ndeliveries = 0;
}

static int part_loop(struct part *p)
{
	while (!*p->stop) {
		loopstat_begin(&p->stats);
		size_t n = batch_collect(p);
		loopstat_mark(&p->stats, 0, "wait+collect");
		int err = 0;
		if (p->ndeliveries && batch_apply(p, n) == 0) {
			err = batch_finish(p, n);
			loopstat_mark(&p->stats, 3, "reply+confirm+ack");
		}
		loopstat_end(&p->stats, n);
		batch_release(p);
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
	/* A txn.batch may bring PAYTX_BATCH_MAX messages past batch_max. */
	p.items_max = cfg->batch_max + PAYTX_BATCH_MAX;
	p.deliveries = calloc(cfg->batch_max, sizeof(*p.deliveries));
	p.items = calloc(p.items_max, sizeof(*p.items));
	p.entries = calloc(p.items_max, sizeof(*p.entries));
	p.steps = calloc(p.items_max, sizeof(*p.steps));
	p.broker = broker_create(&bc);
	if (!p.deliveries || !p.items || !p.entries || !p.steps || !p.broker)
		goto out;
	batch_out_init(&p.replies, p.broker, NULL);
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
	batch_out_finish(&p.replies);
	broker_destroy(p.broker);
	free(p.deliveries);
	free(p.entries);
	free(p.items);
	free(p.steps);
	paytx_buf_finish(&p.out);
	indoubt_finish(&p.in_doubt);
	metrics_batch_finish(&p.metrics);
	sign_key_finish(&key);
	return err;
}

/* The benchmark load loop: confirmed publishes, outcomes, latency. */
#include "driver.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "log.h"

struct driver {
	struct broker *broker;
	char reply_queue[96];
	struct paytx_buf buf;
	unsigned phase;
	volatile sig_atomic_t *stop;
};

/* One phase in progress. */
struct run {
	const struct driver_config *cfg;
	struct driver_result *r;
	int64_t *sched_us;           /* per seq: scheduled (open) or sent (closed) */
	size_t cap;
	int64_t t0, measure_from, measure_to, load_end;
	uint64_t inflight;
	bool exhausted;
	struct latency window;       /* outcomes of the last progress second */
	uint64_t window_done;
	int64_t next_progress;
};

struct driver *driver_create(const char *url, const char *tls_ca, volatile sig_atomic_t *stop)
{
	struct driver *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->stop = stop;
	paytx_buf_init(&d->buf);
	snprintf(d->reply_queue, sizeof(d->reply_queue), "paytx-bench.%d.%lld", (int)getpid(),
		 (long long)clock_wall_ms());
	struct broker_config bc = { .url = url, .tls_ca = tls_ca, .name = "paytx-bench",
				    .role = BROKER_ROLE_CLIENT, .stop = stop };
	d->broker = broker_create(&bc);
	if (!d->broker || broker_want_reply_queue(d->broker, d->reply_queue) ||
	    broker_want_consumer(d->broker, d->reply_queue, 4096) || broker_connect(d->broker)) {
		driver_destroy(d);
		return NULL;
	}
	return d;
}

void driver_destroy(struct driver *d)
{
	if (!d)
		return;
	broker_destroy(d->broker);
	paytx_buf_finish(&d->buf);
	free(d);
}

void driver_result_finish(struct driver_result *r)
{
	free(r->state);
	memset(r, 0, sizeof(*r));
}

static int grow(struct run *run, uint64_t seq)
{
	if (seq < run->cap)
		return 0;
	size_t cap = run->cap ? run->cap * 2 : 65536;
	while (cap <= seq)
		cap *= 2;
	int64_t *s = realloc(run->sched_us, cap * sizeof(*s));
	uint8_t *st = s ? realloc(run->r->state, cap) : NULL;
	if (s)
		run->sched_us = s;
	if (!st)
		return PAYTX_ENOMEM;
	memset(st + run->cap, 0, cap - run->cap);
	run->r->state = st;
	run->cap = cap;
	return 0;
}

static int publish_one(struct driver *d, struct run *run, driver_next_fn next, void *ctx,
		       int64_t sched)
{
	struct paytx_payment p;
	uint64_t seq = run->r->sent;
	char corr[48];
	if (!next(ctx, seq, &p)) {
		run->exhausted = true;
		return 0;
	}
	int err = grow(run, seq);
	paytx_buf_reset(&d->buf);
	if (!err)
		err = paytx_payment_encode(&p, &d->buf);
	paytx_payment_finish(&p);
	if (err)
		return err;
	snprintf(corr, sizeof(corr), "%u-%" PRIu64, d->phase, seq);
	struct broker_out o = { .exchange = BROKER_SUBMIT_EXCHANGE, .routing_key = "",
				.type = PAYTX_MSG_SUBMIT, .body = d->buf.data, .len = d->buf.len,
				.reply_to = d->reply_queue, .correlation_id = corr,
				.persistent = true };
	run->sched_us[seq] = sched;
	run->r->sent++;
	run->inflight++;
	return broker_publish(d->broker, &o);
}

/* Publish what is due now, then wait for the batch's confirms. */
static int send_due(struct driver *d, struct run *run, driver_next_fn next, void *ctx,
		    int64_t now)
{
	const struct driver_config *cfg = run->cfg;
	size_t n = 0;
	int err = 0;
	while (!err && !run->exhausted && n < cfg->batch_max) {
		int64_t sched = now;
		if (cfg->mode == DRIVER_OPEN) {
			sched = run->t0 + (int64_t)((double)run->r->sent * 1e6 / cfg->rate);
			if (sched > now)
				break;
		} else if (run->inflight >= cfg->concurrency) {
			break;
		}
		err = publish_one(d, run, next, ctx, sched);
		n++;
	}
	if (!err && broker_pending(d->broker))
		err = broker_flush(d->broker);
	return err;
}

static void count_reason(struct driver_result *r, enum driver_state st, const char *reason)
{
	for (size_t i = 0; i < r->nreasons; i++)
		if (r->reasons[i].status == st && strcmp(r->reasons[i].reason, reason) == 0) {
			r->reasons[i].n++;
			return;
		}
	if (r->nreasons == DRIVER_REASONS_MAX)
		return;
	struct driver_reason *x = &r->reasons[r->nreasons++];
	x->status = st;
	snprintf(x->reason, sizeof(x->reason), "%s", reason);
	x->n = 1;
}

static void on_outcome(struct driver *d, struct run *run, const struct broker_msg *m,
		       int64_t now)
{
	unsigned phase;
	uint64_t seq;
	struct paytx_outcome o;
	struct paytx_fault f;
	struct driver_result *r = run->r;
	if (sscanf(m->correlation_id, "%u-%" SCNu64, &phase, &seq) != 2 || phase != d->phase ||
	    seq >= r->sent || paytx_outcome_decode(m->body, m->len, &o, &f) != 0)
		return;
	if (r->state[seq] != DS_INFLIGHT) {
		r->duplicates++;
		return;
	}
	enum driver_state st = o.status == PAYTX_STATUS_COMMITTED ? DS_COMMITTED
			       : o.status == PAYTX_STATUS_ABORTED ? DS_ABORTED : DS_REJECTED;
	r->state[seq] = (uint8_t)st;
	r->by_state[st]++;
	r->outcomes++;
	run->inflight--;
	count_reason(r, st, o.reason[0] ? o.reason : "-");
	int64_t lat = now - run->sched_us[seq];
	if (run->sched_us[seq] >= run->measure_from && run->sched_us[seq] < run->measure_to) {
		r->measured++;
		latency_add(&r->lat, lat);
	}
	if (now >= run->measure_from && now < run->measure_to)
		r->done_in_window++;
	latency_add(&run->window, lat);
	run->window_done++;
}

/* Take every outcome available, waiting up to wait_ms for the first. */
static int collect(struct driver *d, struct run *run, int wait_ms)
{
	for (;;) {
		struct broker_msg m;
		int err = broker_next(d->broker, &m, wait_ms);
		if (err == PAYTX_ETIMEOUT)
			return 0;
		if (err)
			return err;
		on_outcome(d, run, &m, clock_mono_us());
		err = broker_ack(d->broker, m.tag);
		broker_msg_release(&m);
		if (err)
			return err;
		wait_ms = 0;
	}
}

static void progress(struct run *run, int64_t now)
{
	if (!run->cfg->progress || now < run->next_progress)
		return;
	run->next_progress += 1000000;
	fprintf(stderr, "[%6.1fs] sent %8" PRIu64 "  done %8" PRIu64 "  %6" PRIu64
		"/s  in flight %6" PRIu64 "  p50 %7.1f ms  p99 %7.1f ms\n",
		(double)(now - run->t0) / 1e6, run->r->sent, run->r->outcomes, run->window_done,
		run->inflight, (double)latency_quantile(&run->window, 0.50) / 1000.0,
		(double)latency_quantile(&run->window, 0.99) / 1000.0);
	latency_init(&run->window);
	run->window_done = 0;
}

/* How long to wait for outcomes before sending again. */
static int wait_ms(const struct run *run, int64_t now, bool loading)
{
	const struct driver_config *cfg = run->cfg;
	if (!loading)
		return 50;
	if (cfg->mode == DRIVER_CLOSED)
		return run->inflight >= cfg->concurrency ? 50 : 0;
	int64_t next = run->t0 + (int64_t)((double)run->r->sent * 1e6 / cfg->rate);
	/* Rounded up: spinning through the last millisecond would take CPU
	 * from the system under test, and a send up to 1 ms late is counted
	 * anyway, since latency runs from the scheduled time. */
	int64_t ms = (next - now + 999) / 1000;
	return ms < 0 ? 0 : ms > 50 ? 50 : (int)ms;
}

int driver_run(struct driver *d, const struct driver_config *cfg, driver_next_fn next,
	       void *ctx, struct driver_result *r)
{
	struct run run = { .cfg = cfg, .r = r };
	memset(r, 0, sizeof(*r));
	latency_init(&r->lat);
	latency_init(&run.window);
	d->phase++;
	run.t0 = clock_mono_us();
	run.next_progress = run.t0 + 1000000;
	run.measure_from = run.t0 + (int64_t)(cfg->warmup_s * 1e6);
	run.load_end = cfg->duration_s > 0
			       ? run.measure_from + (int64_t)(cfg->duration_s * 1e6) : INT64_MAX;
	run.measure_to = run.load_end;
	int err = 0;
	int64_t stopped = 0;         /* when the load ended: the drain starts */
	for (;;) {
		int64_t now = clock_mono_us();
		bool loading = now < run.load_end && !run.exhausted && !*d->stop;
		if (!loading && !stopped)
			stopped = now;
		if (!loading && (run.inflight == 0 || *d->stop ||
				 now > stopped + (int64_t)(cfg->drain_s * 1e6)))
			break;
		if (loading && (err = send_due(d, &run, next, ctx, now)) != 0)
			break;
		if ((err = collect(d, &run, wait_ms(&run, clock_mono_us(), loading))) != 0)
			break;
		progress(&run, clock_mono_us());
	}
	if (run.load_end == INT64_MAX)
		run.measure_to = stopped ? stopped : clock_mono_us();
	r->window_s = (double)(run.measure_to - run.measure_from) / 1e6;
	r->nstate = r->sent;
	free(run.sched_us);
	return err;
}

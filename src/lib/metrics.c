/* Process metrics (counters, gauges, histograms) and their Prometheus text rendering. */
#include "grow.h"
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define METRICS_MAX 512
#define LABEL_VALUE_MAX 64

enum metric_kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct metric_def {
	const char *name;
	enum metric_kind kind;
	const char *help;
};

/* The one table of metric names: what each means is written here once. */
static const struct metric_def defs[] = {
	{ METRIC_PAYMENTS, KIND_COUNTER,
	  "Payments finished by this coordinator (every participant acked), by outcome "
	  "(committed, aborted) and abort reason (empty when committed)." },
	{ METRIC_PHASE_SECONDS, KIND_HISTOGRAM,
	  "Coordinator phase latency: prepare = start to decision, decision = decision logged "
	  "to last ack, total = submit to last ack (payment finished)." },
	{ METRIC_INFLIGHT, KIND_GAUGE, "Payments this coordinator is running now." },
	{ METRIC_RESENDS, KIND_COUNTER,
	  "Re-sends of unanswered requests, by request (prepare, decision)." },
	{ METRIC_VOTES, KIND_COUNTER,
	  "Votes this participant sent, by result (yes, no) and reason (empty for yes)." },
	{ METRIC_STEPS, KIND_COUNTER,
	  "Steps this participant applied and answered, by kind (prepare, commit, abort)." },
	{ METRIC_STEP_SECONDS, KIND_HISTOGRAM,
	  "Participant step latency, by kind: message taken from the queue to its local "
	  "transaction committed." },
	{ METRIC_IN_DOUBT, KIND_GAUGE,
	  "Transactions this participant voted yes on and has no decision for." },
	{ METRIC_OLDEST_IN_DOUBT, KIND_GAUGE,
	  "Age of the oldest transaction in doubt, 0 when none. Coordinator: since the submit "
	  "of a payment that a participant voted yes on and that is undecided, or decided "
	  "and not acked by every participant. Participant: since its yes vote (or since "
	  "start-up for reservations held from before) of a transaction without a decision." },
	{ METRIC_STATUS_QUERIES, KIND_COUNTER,
	  "Status queries this participant sent for reservations held too long." },
	{ METRIC_DEAD_LETTERS, KIND_COUNTER,
	  "Messages refused and copied to paytx.dead, by error code and origin queue." },
	{ METRIC_RECONNECTS, KIND_COUNTER,
	  "Connections lost and made again, by peer (amqp, postgres)." },
	{ METRIC_LOOP_ITERATIONS, KIND_COUNTER,
	  "Iterations of the daemon's batched loop (one batch each), by loop (coordinator, "
	  "participant)." },
	{ METRIC_LOOP_MESSAGES, KIND_COUNTER,
	  "Messages the loop's batches held (a txn.batch counts its entries), by loop." },
	{ METRIC_LOOP_PHASE_US, KIND_COUNTER,
	  "Microseconds the loop spent in each phase of its iterations, by loop and phase "
	  "(e.g. wait+collect, log, apply+commit, publish+confirm): the rate over the "
	  "iterations' rate is a phase's mean time per batch." },
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static const int64_t bucket_ms[METRICS_NBUCKETS] = METRICS_BUCKETS_MS;

struct series {
	const struct metric_def *def;
	const char *k[2];
	char v[2][LABEL_VALUE_MAX];
	uint64_t count;                      /* counter value; histogram observations */
	double gauge;
	uint64_t sum_ms;                     /* histogram: sum of observations */
	uint64_t bucket[METRICS_NBUCKETS];   /* histogram: observations <= bucket_ms[i]
					      * and > the bound before (not cumulative) */
};

/* One recorded update of a struct metrics_batch. */
struct metrics_update {
	const struct metric_def *def;
	const char *k[2];
	char v[2][LABEL_VALUE_MAX];
	uint64_t by;                         /* counter: add; histogram: ms */
	double value;                        /* gauge */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series table[METRICS_MAX];
static size_t nseries;
static bool full_logged, nomem_logged;

static const struct metric_def *def_find(const char *name, enum metric_kind kind)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].name, name) == 0)
			return defs[i].kind == kind ? &defs[i] : NULL;
	return NULL;
}

static bool label_eq(const char *k, const char *v, const char *ck, const char *cv)
{
	if (!k || !ck)
		return !k && !ck;
	return strcmp(k, ck) == 0 && strncmp(v ? v : "", cv, LABEL_VALUE_MAX - 1) == 0;
}

static struct series *find(const struct metric_def *d, const char *k1, const char *v1,
			   const char *k2, const char *v2)
{
	for (size_t i = 0; i < nseries; i++) {
		struct series *s = &table[i];
		if (s->def == d && label_eq(k1, v1, s->k[0], s->v[0]) &&
		    label_eq(k2, v2, s->k[1], s->v[1]))
			return s;
	}
	return NULL;
}

/* The series, created when new; NULL when the table is full. Locked. */
static struct series *find_or_add(const struct metric_def *d, const char *k1, const char *v1,
				  const char *k2, const char *v2)
{
	struct series *s = find(d, k1, v1, k2, v2);
	if (s || nseries == METRICS_MAX)
		return s;
	s = &table[nseries++];
	*s = (struct series){ .def = d, .k = { k1, k1 ? k2 : NULL } };
	snprintf(s->v[0], sizeof(s->v[0]), "%s", k1 && v1 ? v1 : "");
	snprintf(s->v[1], sizeof(s->v[1]), "%s", k1 && k2 && v2 ? v2 : "");
	return s;
}

static void observe(struct series *s, uint64_t ms)
{
	s->count++;
	s->sum_ms += ms;
	for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
		if (ms <= (uint64_t)bucket_ms[i]) {
			s->bucket[i]++;
			break;
		}
	}
}

/* Apply one update. Locked; returns false when the table is full. */
static bool apply(const struct metrics_update *u, uint64_t *value)
{
	struct series *s = find_or_add(u->def, u->k[0], u->v[0], u->k[1], u->v[1]);
	if (!s)
		return false;
	if (u->def->kind == KIND_COUNTER)
		s->count += u->by;
	else if (u->def->kind == KIND_GAUGE)
		s->gauge = u->value;
	else
		observe(s, u->by);
	if (value)
		*value = s->count;
	return true;
}

static void update_fill(struct metrics_update *u, const struct metric_def *d, const char *k1,
			const char *v1, const char *k2, const char *v2)
{
	u->def = d;
	u->k[0] = k1;
	u->k[1] = k1 ? k2 : NULL;
	snprintf(u->v[0], sizeof(u->v[0]), "%s", k1 && v1 ? v1 : "");
	snprintf(u->v[1], sizeof(u->v[1]), "%s", u->k[1] && v2 ? v2 : "");
}

/* Apply updates under the lock; log once when the table is full. */
static uint64_t apply_all(const struct metrics_update *u, size_t n)
{
	uint64_t value = 0;
	bool full = false;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n; i++)
		full |= !apply(&u[i], &value);
	bool warn = full && !full_logged;
	full_logged |= warn;
	pthread_mutex_unlock(&lock);
	if (warn)
		log_warn("metrics: more than %d series; new ones are not kept", METRICS_MAX);
	return full ? 0 : value;
}

uint64_t metrics_inc(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2, uint64_t by)
{
	const struct metric_def *d = def_find(name, KIND_COUNTER);
	if (!d)
		return 0;
	struct metrics_update u = { .by = by };
	update_fill(&u, d, k1, v1, k2, v2);
	return apply_all(&u, 1);
}

void metrics_set(const char *name, const char *k1, const char *v1, double value)
{
	const struct metric_def *d = def_find(name, KIND_GAUGE);
	if (!d)
		return;
	struct metrics_update u = { .value = value };
	update_fill(&u, d, k1, v1, NULL, NULL);
	apply_all(&u, 1);
}

void metrics_observe(const char *name, const char *k1, const char *v1, int64_t ms)
{
	const struct metric_def *d = def_find(name, KIND_HISTOGRAM);
	if (!d)
		return;
	struct metrics_update u = { .by = ms > 0 ? (uint64_t)ms : 0 };
	update_fill(&u, d, k1, v1, NULL, NULL);
	apply_all(&u, 1);
}

/* The series' field read under the lock (a copy), false when absent. */
static bool snapshot(const char *name, enum metric_kind kind, const char *k1, const char *v1,
		     const char *k2, const char *v2, struct series *out)
{
	const struct metric_def *d = def_find(name, kind);
	pthread_mutex_lock(&lock);
	struct series *s = d ? find(d, k1, v1, k1 ? k2 : NULL, v2) : NULL;
	if (s)
		*out = *s;
	pthread_mutex_unlock(&lock);
	return s != NULL;
}

uint64_t metrics_get(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2)
{
	struct series s;
	return snapshot(name, KIND_COUNTER, k1, v1, k2, v2, &s) ? s.count : 0;
}

double metrics_gauge(const char *name, const char *k1, const char *v1)
{
	struct series s;
	return snapshot(name, KIND_GAUGE, k1, v1, NULL, NULL, &s) ? s.gauge : 0;
}

uint64_t metrics_observations(const char *name, const char *k1, const char *v1)
{
	struct series s;
	return snapshot(name, KIND_HISTOGRAM, k1, v1, NULL, NULL, &s) ? s.count : 0;
}

uint64_t metrics_sum(const char *name)
{
	uint64_t sum = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < nseries; i++)
		if (table[i].def->kind == KIND_COUNTER && strcmp(table[i].def->name, name) == 0)
			sum += table[i].count;
	pthread_mutex_unlock(&lock);
	return sum;
}

/* ---- rendering ---------------------------------------------------------- */

/* Append v with backslash, double quote and newline escaped. */
static int append_escaped(struct paytx_buf *out, const char *v)
{
	int err = 0;
	for (const char *p = v; !err && *p; p++) {
		if (*p == '\\' || *p == '"')
			err = paytx_buf_append(out, "\\", 1) || paytx_buf_append(out, p, 1);
		else if (*p == '\n')
			err = paytx_buf_append(out, "\\n", 2);
		else
			err = paytx_buf_append(out, p, 1);
	}
	return err ? PAYTX_ENOMEM : 0;
}

static int append_str(struct paytx_buf *out, const char *s)
{
	return paytx_buf_append(out, s, strlen(s)) ? PAYTX_ENOMEM : 0;
}

/* name+suffix{k="v",...,le="le"} value\n; le may be NULL. */
static int render_sample(struct paytx_buf *out, const struct series *s, const char *suffix,
			 const char *le, const char *value)
{
	int err = append_str(out, s->def->name) || append_str(out, suffix);
	bool any = false;
	for (int i = 0; !err && i < 2 && s->k[i]; i++, any = true)
		err = append_str(out, i ? "," : "{") || append_str(out, s->k[i]) ||
		      append_str(out, "=\"") || append_escaped(out, s->v[i]) ||
		      append_str(out, "\"");
	if (!err && le) {
		err = append_str(out, any ? ",le=\"" : "{le=\"") || append_str(out, le) ||
		      append_str(out, "\"");
		any = true;
	}
	if (!err && any)
		err = append_str(out, "}");
	if (!err)
		err = append_str(out, " ") || append_str(out, value) || append_str(out, "\n");
	return err ? PAYTX_ENOMEM : 0;
}

static int render_histogram(struct paytx_buf *out, const struct series *s)
{
	char le[32], num[32];
	uint64_t cumulative = 0;
	int err = 0;
	for (size_t i = 0; !err && i < METRICS_NBUCKETS; i++) {
		cumulative += s->bucket[i];
		snprintf(le, sizeof(le), "%g", (double)bucket_ms[i] / 1000.0);
		snprintf(num, sizeof(num), "%" PRIu64, cumulative);
		err = render_sample(out, s, "_bucket", le, num);
	}
	snprintf(num, sizeof(num), "%" PRIu64, s->count);
	if (!err)
		err = render_sample(out, s, "_bucket", "+Inf", num);
	snprintf(num, sizeof(num), "%.3f", (double)s->sum_ms / 1000.0);
	if (!err)
		err = render_sample(out, s, "_sum", NULL, num);
	snprintf(num, sizeof(num), "%" PRIu64, s->count);
	return err ? err : render_sample(out, s, "_count", NULL, num);
}

static int render_series(struct paytx_buf *out, const struct series *s)
{
	char num[40];
	if (s->def->kind == KIND_HISTOGRAM)
		return render_histogram(out, s);
	if (s->def->kind == KIND_COUNTER)
		snprintf(num, sizeof(num), "%" PRIu64, s->count);
	else
		snprintf(num, sizeof(num), "%.15g", s->gauge);
	return render_sample(out, s, "", NULL, num);
}

int metrics_render(struct paytx_buf *out)
{
	static const char *const kinds[] = { "counter", "gauge", "histogram" };
	int err = 0;
	pthread_mutex_lock(&lock);
	for (size_t d = 0; !err && d < NDEFS; d++) {
		err = append_str(out, "# HELP ") || append_str(out, defs[d].name) ||
		      append_str(out, " ") || append_str(out, defs[d].help) ||
		      append_str(out, "\n# TYPE ") || append_str(out, defs[d].name) ||
		      append_str(out, " ") || append_str(out, kinds[defs[d].kind]) ||
		      append_str(out, "\n");
		for (size_t i = 0; !err && i < nseries; i++)
			if (table[i].def == &defs[d])
				err = render_series(out, &table[i]);
	}
	pthread_mutex_unlock(&lock);
	return err ? PAYTX_ENOMEM : 0;
}

/* ---- batches ------------------------------------------------------------ */

void metrics_batch_init(struct metrics_batch *b)
{
	*b = (struct metrics_batch){ 0 };
}

void metrics_batch_finish(struct metrics_batch *b)
{
	free(b->v);
	*b = (struct metrics_batch){ 0 };
}

/* A new update at the end of b, NULL when out of memory (logged once). */
static struct metrics_update *batch_push(struct metrics_batch *b)
{
	struct metrics_update *v = paytx_grow(b->v, &b->cap, b->n, sizeof(*v), 64);
	if (!v) {
		if (!nomem_logged)
			log_warn("metrics: out of memory; updates are dropped");
		nomem_logged = true;
		return NULL;
	}
	b->v = v;
	return &b->v[b->n++];
}

static void batch_add(struct metrics_batch *b, const struct metric_def *d, const char *k1,
		      const char *v1, const char *k2, const char *v2, uint64_t by, double value)
{
	struct metrics_update *u = d ? batch_push(b) : NULL;
	if (!u)
		return;
	update_fill(u, d, k1, v1, k2, v2);
	u->by = by;
	u->value = value;
}

void metrics_batch_inc(struct metrics_batch *b, const char *name, const char *k1,
		       const char *v1, const char *k2, const char *v2, uint64_t by)
{
	batch_add(b, def_find(name, KIND_COUNTER), k1, v1, k2, v2, by, 0);
}

void metrics_batch_set(struct metrics_batch *b, const char *name, double value)
{
	batch_add(b, def_find(name, KIND_GAUGE), NULL, NULL, NULL, NULL, 0, value);
}

void metrics_batch_observe(struct metrics_batch *b, const char *name, const char *k1,
			   const char *v1, int64_t ms)
{
	batch_add(b, def_find(name, KIND_HISTOGRAM), k1, v1, NULL, NULL,
		  ms > 0 ? (uint64_t)ms : 0, 0);
}

void metrics_batch_flush(struct metrics_batch *b)
{
	if (b->n)
		apply_all(b->v, b->n);
	b->n = 0;
}

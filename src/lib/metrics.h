/* Metrics of one process, rendered in the Prometheus text format.
 *
 * Every metric is a name from the one table in metrics.c, which gives its
 * kind (counter, gauge or histogram) and help text. A series is a metric
 * plus up to two label pairs; label values are escaped when rendered. The
 * first update of a (name, labels) creates its series, which then lives
 * for the whole process.
 *
 * Histograms have fixed buckets in milliseconds (METRICS_BUCKETS_MS) and
 * are rendered in seconds, as Prometheus expects: cumulative _bucket
 * series with le="..." up to le="+Inf", then _sum and _count.
 *
 * Every function may be called from any thread (one mutex): the loops
 * update, the HTTP endpoint renders. A loop that handles many messages
 * records into a struct metrics_batch (no lock) and flushes it once per
 * iteration, so the lock is taken once per batch, not per message.
 */
#ifndef PAYTX_METRICS_H
#define PAYTX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"

/* Every daemon. */
#define METRIC_DEAD_LETTERS "paytx_dead_letters_total"    /* {code,queue} */
#define METRIC_RECONNECTS "paytx_reconnects_total"        /* {to="amqp"|"postgres"} */
#define METRIC_LOOP_ITERATIONS "paytx_loop_iterations_total"  /* {loop} */
#define METRIC_LOOP_MESSAGES "paytx_loop_messages_total"      /* {loop} */
#define METRIC_LOOP_PHASE_US "paytx_loop_phase_microseconds_total" /* {loop,phase} */
#define METRIC_OLDEST_IN_DOUBT "paytx_oldest_in_doubt_seconds"
/* The coordinator. */
#define METRIC_PAYMENTS "paytx_payments_total"            /* {outcome,reason} */
#define METRIC_PHASE_SECONDS "paytx_phase_seconds"        /* {phase} */
#define METRIC_INFLIGHT "paytx_inflight"
#define METRIC_RESENDS "paytx_resends_total"              /* {request} */
/* Participants (the SDK). */
#define METRIC_VOTES "paytx_votes_total"                  /* {result,reason} */
#define METRIC_STEPS "paytx_steps_total"                  /* {kind} */
#define METRIC_STEP_SECONDS "paytx_step_seconds"          /* {kind} */
#define METRIC_IN_DOUBT "paytx_in_doubt"
#define METRIC_STATUS_QUERIES "paytx_status_queries_total"

/* Upper bounds of the histogram buckets, in ms; +Inf follows. */
#define METRICS_BUCKETS_MS { 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000 }
#define METRICS_NBUCKETS 14

/* Counters: add by; k2/v2 (or all labels) may be NULL. Names and label
 * keys are borrowed literals; label values are copied (up to 63 bytes). An
 * unknown name, a name of another kind or a full table is ignored (a full
 * table is logged once): counting never fails the caller. Returns the
 * counter's new value (0 when ignored). */
uint64_t metrics_inc(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2, uint64_t by);
/* Gauges: set the value. Ignored like metrics_inc. */
void metrics_set(const char *name, const char *k1, const char *v1, double value);
/* Histograms: record one observation of ms milliseconds (negative = 0). */
void metrics_observe(const char *name, const char *k1, const char *v1, int64_t ms);

/* Current value of a counter, 0 when it does not exist. */
uint64_t metrics_get(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2);
/* Sum of every counter called name, whatever its labels. */
uint64_t metrics_sum(const char *name);
/* Current value of a gauge, 0 when it does not exist. */
double metrics_gauge(const char *name, const char *k1, const char *v1);
/* Observations of a histogram series so far, 0 when it does not exist. */
uint64_t metrics_observations(const char *name, const char *k1, const char *v1);

/* Append every metric in the Prometheus text exposition format (0.0.4):
 * HELP and TYPE lines for each metric of the table, then its samples. */
int metrics_render(struct paytx_buf *out) PAYTX_MUST_CHECK;

/* Updates recorded without the lock, applied by metrics_batch_flush.
 * Owned by one thread; embed it and metrics_batch_init it. */
struct metrics_batch {
	struct metrics_update *v;
	size_t n, cap;
};

void metrics_batch_init(struct metrics_batch *b);
void metrics_batch_finish(struct metrics_batch *b);
/* As metrics_inc, metrics_set and metrics_observe, applied at the next
 * flush. Out of memory drops the update (logged once). */
void metrics_batch_inc(struct metrics_batch *b, const char *name, const char *k1,
		       const char *v1, const char *k2, const char *v2, uint64_t by);
void metrics_batch_set(struct metrics_batch *b, const char *name, double value);
void metrics_batch_observe(struct metrics_batch *b, const char *name, const char *k1,
			   const char *v1, int64_t ms);
/* Apply every recorded update under one lock, in order, and empty b. */
void metrics_batch_flush(struct metrics_batch *b);

#endif

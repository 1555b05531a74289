/* Counters of one process, rendered in the Prometheus text format.
 *
 * A counter is a name from the fixed table in metrics.c (which gives its
 * help text) plus up to two label pairs; label values are escaped when
 * rendered. The first metrics_inc of a (name, labels) creates it. Counters
 * live for the whole process. Every function may be called from any thread
 * (one mutex): the loops count, an HTTP endpoint may render.
 */
#ifndef PAYTX_METRICS_H
#define PAYTX_METRICS_H

#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"

#define METRIC_DEAD_LETTERS "paytx_dead_letters_total"

/* Add by to the counter; k2/v2 may be NULL. Names and label keys are
 * borrowed literals; label values are copied (up to 63 bytes). An unknown
 * name or a full table is ignored (logged once): counting never fails the
 * caller. Returns the counter's new value (0 when ignored). */
uint64_t metrics_inc(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2, uint64_t by);
/* Current value of a counter, 0 when it does not exist. */
uint64_t metrics_get(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2);
/* Sum of every counter called name, whatever its labels. */
uint64_t metrics_sum(const char *name);
/* Append all counters in the Prometheus text exposition format. */
int metrics_render(struct paytx_buf *out) PAYTX_MUST_CHECK;

#endif

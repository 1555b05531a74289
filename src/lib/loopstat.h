/* Where a batched loop spends its time: a line every LOOPSTAT_PERIOD_MS.
 *
 * A loop calls loopstat_begin at the top of an iteration and loopstat_mark
 * after each phase (collect, log, publish, ack, ...); the time since the
 * previous mark goes to that phase. loopstat_end adds the iteration's
 * message count and, once per period with work done, logs iterations,
 * messages, average batch, and each phase's share of the time at info
 * (then starts over). It is how an operator (and the benchmark work) sees
 * whether a daemon waits on PostgreSQL, on the broker or on input.
 * Embedded, single-threaded; phase names are borrowed literals.
 */
#ifndef PAYTX_LOOPSTAT_H
#define PAYTX_LOOPSTAT_H

#include <stddef.h>
#include <stdint.h>

#define LOOPSTAT_PHASES 6
#define LOOPSTAT_PERIOD_MS 10000

struct loopstat {
	const char *name;                       /* e.g. "coordinator loop" */
	const char *phase[LOOPSTAT_PHASES];     /* borrowed literals */
	int64_t spent_us[LOOPSTAT_PHASES];
	int64_t mark_us;
	int64_t period_start_us;
	uint64_t iterations;
	uint64_t messages;
};

void loopstat_init(struct loopstat *s, const char *name);
void loopstat_begin(struct loopstat *s);
/* Time since the last mark (or begin) goes to phase i, named name. */
void loopstat_mark(struct loopstat *s, int i, const char *name);
void loopstat_end(struct loopstat *s, size_t messages);

#endif

/* Where a batched loop spends its time: a line every LOOPSTAT_PERIOD_MS.
 *
 * A loop calls loopstat_begin at the top of an iteration and loopstat_mark
 * after each phase (collect, log, publish, ack, ...); the time since the
 * previous mark goes to that phase. loopstat_end adds the iteration's
 * message count and, once per period with work done, logs iterations,
 * messages, average batch, and each phase's share of the time at info
 * (then starts over). Every LOOPSTAT_PUSH_MS it also adds what it counted
 * since the last push to the counters paytx_loop_iterations_total,
 * paytx_loop_messages_total and paytx_loop_phase_microseconds_total
 * (labels loop = the name's first word, phase), so the split can be read
 * from /metrics at any log level. It is how an operator (and the benchmark
 * work) sees whether a daemon waits on PostgreSQL, on the broker or on input.
 * Embedded, single-threaded; phase names are borrowed literals.
 */
#ifndef PAYTX_LOOPSTAT_H
#define PAYTX_LOOPSTAT_H

#include <stddef.h>
#include <stdint.h>

#define LOOPSTAT_PHASES 6
#define LOOPSTAT_PERIOD_MS 10000
#define LOOPSTAT_PUSH_MS 1000

struct loopstat {
	const char *name;                       /* e.g. "coordinator loop" */
	const char *phase[LOOPSTAT_PHASES];     /* borrowed literals */
	int64_t spent_us[LOOPSTAT_PHASES];
	int64_t mark_us;
	int64_t period_start_us;
	uint64_t iterations;
	uint64_t messages;
	char label[32];                         /* the name's first word */
	int64_t next_push_us;                   /* monotonic */
	/* counted since the last push to the metrics */
	int64_t push_us[LOOPSTAT_PHASES];
	uint64_t push_iterations, push_messages;
};

void loopstat_init(struct loopstat *s, const char *name);
void loopstat_begin(struct loopstat *s);
/* Time since the last mark (or begin) goes to phase i, named name. */
void loopstat_mark(struct loopstat *s, int i, const char *name);
void loopstat_end(struct loopstat *s, size_t messages);
/* Add what was counted since the last push to the metrics now (loopstat_end
 * does it every LOOPSTAT_PUSH_MS). */
void loopstat_push(struct loopstat *s);

#endif

/* CPU time and memory of a deployment's processes, by program, from /proc.
 *
 * A sample sums, for each program name (paytx-coordinator, paytx-ledger,
 * paytx-risk, beam.smp = RabbitMQ, postgres, paytx-bench itself), the CPU
 * seconds (user + system) and resident memory of every process with that
 * name. CPU used during a run is the difference of two samples; a process
 * that exits in between takes its CPU time with it (short-lived PostgreSQL
 * backends are under-counted, never over-counted). Plain data.
 */
#ifndef PAYTX_BENCH_PROCSTAT_H
#define PAYTX_BENCH_PROCSTAT_H

#include <stdint.h>

#define PROCSTAT_NAMES 6

struct procstat_row {
	const char *name;            /* static */
	unsigned nproc;
	double cpu_s;                /* cumulative CPU seconds */
	int64_t rss_kb;              /* resident memory now, summed */
};

struct procstat {
	struct procstat_row rows[PROCSTAT_NAMES];
};

void procstat_sample(struct procstat *s);

#endif

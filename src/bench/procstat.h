/* CPU time and memory of a deployment's processes, by program, from /proc.
 *
 * A sample sums, for each program name (paytx-coordinator, paytx-ledger,
 * paytx-risk, beam.smp = RabbitMQ, postgres, paytx-bench itself), the CPU
 * seconds (user + system) and resident memory of every process with that
 * name. CPU used during a run is counted per process: a process in both
 * samples adds the difference, one that started in between all of its
 * time, one that exited in between nothing (short-lived PostgreSQL
 * backends are under-counted, never over-counted, and never negative).
 * Every process of that name on the machine counts, so run benchmarks on a
 * quiet machine. Plain data.
 */
#ifndef PAYTX_BENCH_PROCSTAT_H
#define PAYTX_BENCH_PROCSTAT_H

#include <stddef.h>
#include <stdint.h>

#define PROCSTAT_NAMES 6
#define PROCSTAT_PIDS 4096

struct procstat_row {
	const char *name;            /* static */
	unsigned nproc;
	double cpu_s;                /* cumulative CPU seconds */
	int64_t rss_kb;              /* resident memory now, summed */
};

struct procstat_pid {
	int pid;
	int row;
	double cpu_s;
};

struct procstat {
	struct procstat_row rows[PROCSTAT_NAMES];
	size_t npids;
	struct procstat_pid pids[PROCSTAT_PIDS];
};

void procstat_sample(struct procstat *s);
/* CPU seconds program row used between the samples before and after. */
double procstat_cpu_used(const struct procstat *before, const struct procstat *after, int row);

#endif

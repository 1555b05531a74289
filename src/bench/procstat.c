/* Per-program CPU seconds and resident memory from /proc. */
#include "procstat.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[PROCSTAT_NAMES] = {
	"paytx-coordinator", "paytx-ledger", "paytx-risk", "beam.smp", "postgres", "paytx-bench",
};

/* comm, utime + stime and rss of one process; -1 when it is gone. */
static int read_proc(const char *pid, char *comm, size_t n, double *cpu_s, int64_t *rss_kb)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close < open)
		return -1;
	snprintf(comm, n, "%.*s", (int)(close - open - 1), open + 1);
	/* Fields after the comm: state is 3rd; utime 14th, stime 15th, rss 24th. */
	unsigned long long utime = 0, stime = 0;
	long long rss = 0;
	if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
			      "%*d %*d %*d %*d %*d %*d %*u %*u %lld", &utime, &stime, &rss) != 3)
		return -1;
	*cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	*rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
	return 0;
}

void procstat_sample(struct procstat *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < PROCSTAT_NAMES; i++)
		s->rows[i].name = names[i];
	DIR *d = opendir("/proc");
	for (struct dirent *e; d && (e = readdir(d));) {
		char comm[64];
		double cpu;
		int64_t rss;
		if (e->d_name[0] < '0' || e->d_name[0] > '9' ||
		    read_proc(e->d_name, comm, sizeof(comm), &cpu, &rss) != 0)
			continue;
		for (int i = 0; i < PROCSTAT_NAMES; i++)
			if (strcmp(comm, names[i]) == 0 ||
			    /* comm is cut at 15 characters: "paytx-coordinat" */
			    (strlen(names[i]) > 15 && strncmp(comm, names[i], 15) == 0)) {
				s->rows[i].nproc++;
				s->rows[i].cpu_s += cpu;
				s->rows[i].rss_kb += rss;
				if (s->npids < PROCSTAT_PIDS)
					s->pids[s->npids++] = (struct procstat_pid){
						.pid = atoi(e->d_name), .row = i, .cpu_s = cpu };
			}
	}
	if (d)
		closedir(d);
}

double procstat_cpu_used(const struct procstat *before, const struct procstat *after, int row)
{
	double used = 0;
	for (size_t i = 0; i < after->npids; i++) {
		const struct procstat_pid *a = &after->pids[i];
		if (a->row != row)
			continue;
		double start = 0;
		for (size_t j = 0; j < before->npids; j++)
			if (before->pids[j].pid == a->pid && before->pids[j].row == row)
				start = before->pids[j].cpu_s;
		if (a->cpu_s > start)
			used += a->cpu_s - start;
	}
	return used;
}

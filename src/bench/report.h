/* The benchmark's report: readable text or one JSON document. */
#ifndef PAYTX_BENCH_REPORT_H
#define PAYTX_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "driver.h"
#include "ledgercheck.h"
#include "procstat.h"
#include "workload.h"

struct report {
	const struct driver_config *load;
	const struct workload *workload;
	size_t shards;
	const struct driver_result *result;
	const struct procstat *before, *after;
	double wall_s;               /* between the two process samples */
	const struct ledgercheck *check;
};

void report_text(FILE *f, const struct report *r);
/* One JSON object on one line. */
int report_json(FILE *f, const struct report *r) PAYTX_MUST_CHECK;

#endif

/* paytxctl's shared state: settings, output mode and exit codes. */
#ifndef PAYTX_CTL_H
#define PAYTX_CTL_H

#include <stdbool.h>

#include "config.h"
#include "shard.h"

/* Exit codes, stable for scripts. */
enum ctl_exit {
	CTL_OK = 0,            /* done; for pay: committed */
	CTL_FAILED = 1,        /* a service failed or was unreachable */
	CTL_USAGE = 2,         /* bad command line or configuration */
	CTL_ABORTED = 3,       /* pay: the payment was aborted */
	CTL_REJECTED = 4,      /* pay: the payment was rejected */
	CTL_TIMEOUT = 5,       /* pay: no outcome in time */
	CTL_NOT_FOUND = 6,     /* no such payment or account */
};

struct ctl {
	struct config cfg;
	struct shardmap shards;
	bool json;
	int argc;              /* positional arguments after the command */
	char **argv;
};

/* DSN of the ledger shard named name, from PAYTX_LEDGER_DSNS (a static
 * buffer; NULL when absent). */
const char *ctl_ledger_dsn(const struct ctl *c, const char *name);
int ctl_pay(struct ctl *c);
int ctl_submit(struct ctl *c);

#endif

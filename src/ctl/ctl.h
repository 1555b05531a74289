/* paytxctl's shared state: settings, output mode and exit codes. */
#ifndef PAYTX_CTL_H
#define PAYTX_CTL_H

#include <libpq-fe.h>
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
	const char *per_payment;  /* limit set --per-payment (borrowed argv), NULL = absent */
	const char *daily;        /* limit set --daily */
	int argc;              /* positional arguments after the command */
	char **argv;
};

/* DSN of the ledger shard named name, from PAYTX_LEDGER_DSNS (a static
 * buffer; NULL when absent). */
const char *ctl_ledger_dsn(const struct ctl *c, const char *name);
/* Connect to dsn (NULL: say which setting to set, CTL_USAGE). */
int ctl_open_db(PGconn **conn, const char *dsn, const char *what, const char *setting);
/* If argv[*i] is --name VALUE or --name=VALUE, point *value at the value,
 * step *i past it and return true. An option without its value is kept
 * as "" so that the command refuses it. */
bool ctl_take_option(int argc, char **argv, int *i, const char *name, const char **value);
int ctl_pay(struct ctl *c);
int ctl_limit(struct ctl *c);
int ctl_submit(struct ctl *c);

#endif

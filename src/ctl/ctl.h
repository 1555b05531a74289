/* paytxctl's shared state: settings, output mode and exit codes. */
#ifndef PAYTX_CTL_H
#define PAYTX_CTL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "shard.h"

/* Exit codes, stable for scripts. */
enum ctl_exit {
	CTL_OK = 0,            /* done; for pay: committed */
	CTL_FAILED = 1,        /* a service failed or was unreachable */
	CTL_USAGE = 2,         /* bad command line or configuration */
	CTL_ABORTED = 3,       /* pay: the payment was aborted */
	CTL_REJECTED = 4,      /* pay: the payment was rejected; dead replay:
				* a message it refuses to replay */
	CTL_TIMEOUT = 5,       /* pay: no outcome in time */
	CTL_NOT_FOUND = 6,     /* no such payment, account or dead letter */
};

/* The command options paytxctl takes out of argv before the settings are
 * parsed; each command says which it accepts (main.c's command table). */
enum ctl_opt {
	CTL_OPT_PER_PAYMENT = 1 << 0,
	CTL_OPT_DAILY = 1 << 1,
	CTL_OPT_LIMIT = 1 << 2,
	CTL_OPT_OLDER_THAN = 1 << 3,
	CTL_OPT_ALL = 1 << 4,
	CTL_OPT_DRY_RUN = 1 << 5,
};

struct ctl {
	struct config cfg;
	struct shardmap shards;
	bool json;
	const char *per_payment;  /* limit set --per-payment (borrowed argv), NULL = absent */
	const char *daily;        /* limit set --daily */
	const char *limit;        /* list, journal, dead list --limit N */
	const char *older_than;   /* list --older-than SECONDS */
	bool all;                 /* dead replay --all */
	bool dry_run;             /* dead replay --dry-run */
	unsigned opts;            /* enum ctl_opt bits given on the command line */
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
/* Parse a count option (--limit, --older-than): absent = dflt, else an
 * integer in 0..max; -1 (and a message naming opt) when it is not. */
int64_t ctl_count_option(const char *opt, const char *value, int64_t dflt, int64_t max);
/* Print s as a JSON string (quotes and escapes). */
void ctl_json_string(const char *s);
int ctl_pay(struct ctl *c);
int ctl_limit(struct ctl *c);
int ctl_submit(struct ctl *c);
extern const char ctl_list_help[], ctl_dead_help[];
int ctl_list(struct ctl *c);
int ctl_journal(struct ctl *c);
int ctl_dead(struct ctl *c);

#endif

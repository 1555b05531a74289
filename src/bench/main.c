/* paytx-bench: load the real submit path and report throughput, latency,
 * outcomes, CPU and the ledger invariants. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "driver.h"
#include "ledgercheck.h"
#include "log.h"
#include "procstat.h"
#include "report.h"
#include "setup.h"
#include "signals.h"
#include "workload.h"

static const struct config_def defs[] = {
	{ "PAYTX_AMQP_URL", "amqp-url", "amqp://guest:guest@127.0.0.1:5672",
	  "RabbitMQ URL (amqp:// or amqps://) of a client.", CONFIG_SECRET },
	{ "PAYTX_AMQP_TLS_CA", "amqp-tls-ca", NULL, "CA certificate file for amqps.", 0 },
	{ "PAYTX_LEDGER_DSNS", "ledger-dsns", NULL,
	  "Ledger databases, name=dsn,...: accounts are created there and checked after.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_SHARDS", "shards", "ledger.0,ledger.1", "Ledger shards, in placement order.", 0 },
	{ "PAYTX_BENCH_MODE", "mode", "closed",
	  "closed (keep --concurrency outstanding: maximum rate) or open (--rate per second).", 0 },
	{ "PAYTX_BENCH_RATE", "rate", "1000", "Payments per second in open loop.", 0 },
	{ "PAYTX_BENCH_CONCURRENCY", "concurrency", "256", "Outstanding payments in closed loop.", 0 },
	{ "PAYTX_BENCH_DURATION_S", "duration", "30", "Measured seconds of load.", 0 },
	{ "PAYTX_BENCH_WARMUP_S", "warmup", "5", "Seconds of load before measuring.", 0 },
	{ "PAYTX_BENCH_DRAIN_S", "drain", "60", "Seconds to wait for the last outcomes.", 0 },
	{ "PAYTX_BENCH_ACCOUNTS", "accounts", "10000", "Accounts, spread over the shards.", 0 },
	{ "PAYTX_BENCH_HOT_ACCOUNTS", "hot-accounts", "10", "How many accounts are hot.", 0 },
	{ "PAYTX_BENCH_HOT_SHARE", "hot-share", "0",
	  "Share of payments (0-1) that debit or credit a hot account.", 0 },
	{ "PAYTX_BENCH_CROSS_SHARD", "cross-shard", "0.5",
	  "Share of payments (0-1) between accounts on different shards.", 0 },
	{ "PAYTX_BENCH_CURRENCY", "currency", "EUR", "Currency of every account.", 0 },
	{ "PAYTX_BENCH_SEED", "seed", "1", "Seed of the payment mix (names are random per run).", 0 },
	{ "PAYTX_OUTPUT", "output", "text", "text or json (--json is short for json).", 0 },
};

static const char summary[] =
	"Creates accounts over the ledger shards, funds them through paytx, then drives\n"
	"payments through the real submit queue (closed or open loop), showing progress\n"
	"on stderr. Reports payments/s, latency percentiles (open loop: from the scheduled\n"
	"send time), outcomes by reason, CPU and memory per program, and checks the ledger\n"
	"invariants. Exit 0 when every payment got an outcome and the invariants hold,\n"
	"1 otherwise, 2 on bad usage. --no-progress silences the per-second lines.";

static int number(const struct config *c, const char *env, double min, double max, double *out)
{
	const char *v = config_str(c, env);
	char *end = NULL;
	errno = 0;
	double x = v ? strtod(v, &end) : NAN;
	if (!v || errno || end == v || *end || !(x >= min && x <= max)) {
		fprintf(stderr, "setting %s: must be a number in [%g, %g]\n", env, min, max);
		return PAYTX_ECONFIG;
	}
	*out = x;
	return 0;
}

struct bench {
	struct config c;
	struct shardmap shards;
	struct workload_config wc;
	struct driver_config load;
	bool json;
	bool progress;
};

static int build(struct bench *b)
{
	const struct config *c = &b->c;
	double conc, accounts, hot, seed;
	const char *mode = config_str(c, "PAYTX_BENCH_MODE");
	if (strcmp(mode, "open") != 0 && strcmp(mode, "closed") != 0) {
		fprintf(stderr, "setting PAYTX_BENCH_MODE: open or closed\n");
		return PAYTX_ECONFIG;
	}
	if (shardmap_parse(&b->shards, config_str(c, "PAYTX_SHARDS")) != 0) {
		fprintf(stderr, "setting PAYTX_SHARDS: a comma-separated list of names\n");
		return PAYTX_ECONFIG;
	}
	b->load = (struct driver_config){ .mode = *mode == 'o' ? DRIVER_OPEN : DRIVER_CLOSED,
					  .batch_max = 256, .progress = b->progress };
	b->wc.currency = config_str(c, "PAYTX_BENCH_CURRENCY");
	if (number(c, "PAYTX_BENCH_RATE", 1, 1e6, &b->load.rate) ||
	    number(c, "PAYTX_BENCH_CONCURRENCY", 1, 65535, &conc) ||
	    number(c, "PAYTX_BENCH_DURATION_S", 1, 86400, &b->load.duration_s) ||
	    number(c, "PAYTX_BENCH_WARMUP_S", 0, 3600, &b->load.warmup_s) ||
	    number(c, "PAYTX_BENCH_DRAIN_S", 1, 3600, &b->load.drain_s) ||
	    number(c, "PAYTX_BENCH_ACCOUNTS", 2, 10000000, &accounts) ||
	    number(c, "PAYTX_BENCH_HOT_ACCOUNTS", 0, 10000000, &hot) ||
	    number(c, "PAYTX_BENCH_HOT_SHARE", 0, 1, &b->wc.hot_share) ||
	    number(c, "PAYTX_BENCH_CROSS_SHARD", 0, 1, &b->wc.cross_share) ||
	    number(c, "PAYTX_BENCH_SEED", 0, 1e15, &seed))
		return PAYTX_ECONFIG;
	if (hot > accounts || strlen(b->wc.currency) != 3) {
		fprintf(stderr, "PAYTX_BENCH_HOT_ACCOUNTS must not exceed the accounts, and "
				"PAYTX_BENCH_CURRENCY is 3 letters\n");
		return PAYTX_ECONFIG;
	}
	b->load.concurrency = (size_t)conc;
	b->wc.accounts = (size_t)accounts;
	b->wc.hot_accounts = (size_t)hot;
	b->wc.seed = (uint64_t)seed;
	b->json = b->json || strcmp(config_str(c, "PAYTX_OUTPUT"), "json") == 0;
	return 0;
}

static bool next_funding(void *ctx, uint64_t seq, struct paytx_payment *p)
{
	return workload_funding(ctx, (size_t)seq, p) > 0;
}

static bool next_payment(void *ctx, uint64_t seq, struct paytx_payment *p)
{
	workload_payment(ctx, seq, p);
	return true;
}

/* Create and fund the accounts; every funding payment must commit. */
static int prepare_accounts(struct bench *b, struct workload *w, struct driver *d)
{
	struct driver_config fund = { .mode = DRIVER_CLOSED, .concurrency = 64, .drain_s = 60,
				      .batch_max = 64 };
	struct driver_result r;
	/* On stderr even with --json: scripts/bench.py times its snapshots
	 * of the daemons' loops from "load starts". */
	fprintf(stderr, "paytx-bench: run %s: creating %zu accounts\n", w->run, w->cfg.accounts);
	if (setup_accounts(&b->shards, config_str(&b->c, "PAYTX_LEDGER_DSNS"), w) != 0)
		return PAYTX_EDB;
	int err = driver_run(d, &fund, next_funding, w, &r);
	if (!err && r.by_state[DS_COMMITTED] != r.sent) {
		fprintf(stderr, "paytx-bench: %llu of %llu funding payments did not commit\n",
			(unsigned long long)(r.sent - r.by_state[DS_COMMITTED]),
			(unsigned long long)r.sent);
		err = PAYTX_EINVAL;
	}
	driver_result_finish(&r);
	return err;
}

static int run(struct bench *b, struct workload *w, struct driver *d)
{
	struct driver_result r;
	struct procstat before, after;
	struct ledgercheck check;
	fprintf(stderr, "paytx-bench: load starts\n");
	procstat_sample(&before);
	int64_t t0 = clock_mono_ms();
	int err = driver_run(d, &b->load, next_payment, w, &r);
	procstat_sample(&after);
	double wall = (double)(clock_mono_ms() - t0) / 1000.0;
	if (err) {
		fprintf(stderr, "paytx-bench: the load stopped: %s\n", paytx_strerror(err));
		driver_result_finish(&r);
		return 1;
	}
	if (ledgercheck_run(&b->shards, config_str(&b->c, "PAYTX_LEDGER_DSNS"), w, &r, 30,
			    &check) != 0)
		check.ok = false;
	struct report rep = { .load = &b->load, .workload = w, .shards = b->shards.n,
			      .result = &r, .before = &before, .after = &after, .wall_s = wall,
			      .check = &check };
	if (b->json)
		err = report_json(stdout, &rep);
	else
		report_text(stdout, &rep);
	int rc = !err && check.ok && r.outcomes == r.sent ? 0 : 1;
	driver_result_finish(&r);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench b = { .progress = true };
	struct workload w;
	signals_install();
	log_init("bench");
	/* "--json" and "--no-progress" are switches, not settings. */
	int n = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			b.json = true;
		else if (strcmp(argv[i], "--no-progress") == 0)
			b.progress = false;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	if (config_load(&b.c, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytx-bench",
			"[options] [--json] [--no-progress]", summary) || build(&b))
		return 2;
	if (b.c.argi < argc) {
		fprintf(stderr, "paytx-bench: unexpected argument '%s'\n", argv[b.c.argi]);
		return 2;
	}
	if (b.c.check_only) {
		printf("paytx-bench: configuration OK\n");
		return 0;
	}
	if (workload_init(&w, &b.wc, &b.shards) != 0)
		return 1;
	struct driver *d = driver_create(config_str(&b.c, "PAYTX_AMQP_URL"),
					 config_str(&b.c, "PAYTX_AMQP_TLS_CA"), &signals_stop);
	int rc = 1;
	if (d && prepare_accounts(&b, &w, d) == 0)
		rc = run(&b, &w, d);
	driver_destroy(d);
	workload_finish(&w);
	return rc;
}

/* paytxctl: operator and client commands over the coordinator log, the
 * ledger shards and the submit queue. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balance.h"
#include "broker.h"
#include "cachestore.h"
#include "clock.h"
#include "ctl.h"
#include "ledger.h"
#include "log.h"
#include "pg.h"

static const struct config_def defs[] = {
	BROKER_CONFIG_DEFS,
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of the coordinator log, as the "
	  "role that owns the schemas (paytx_owner).", CONFIG_SECRET },
	{ "PAYTX_LEDGER_DSNS", "ledger-dsns", NULL,
	  "Ledger databases: name=dsn,name=dsn (for migrate, accounts, balances), "
	  "as the owner role too.",
	  CONFIG_SECRET },
	{ "PAYTX_RISK_DSN", "risk-dsn", NULL,
	  "The risk participant's database (limits), as the owner role; migrate "
	  "skips it when unset.", CONFIG_SECRET },
	{ "PAYTX_SHARDS", "shards", "ledger.0,ledger.1",
	  "Ledger shard participants, in placement order.", 0 },
	{ "PAYTX_REDIS_URL", "redis-url", NULL, "The balance cache (docs/cache.md): balance "
	  "serves from it when it is coherent; unset = the ledger only.", 0 },
	{ "PAYTX_CACHE_PREFIX", "cache-prefix", "paytx:cache",
	  "Prefix of the cache's keys in Redis (as paytx-cache's).", 0 },
	{ "PAYTX_TIMEOUT_MS", "timeout-ms", "30000", "How long pay waits for the outcome.", 0 },
	{ "PAYTX_OUTPUT", "output", "text", "text or json (--json is short for json).", 0 },
};

static const char usage[] =
	"[options] COMMAND [ARGS]\n\n"
	"Commands:\n"
	"  migrate                             apply the schema and the roles' grants to\n"
	"                                      the coordinator log, every ledger\n"
	"                                      database and the risk database if set\n"
	"                                      (idempotent); the daemons refuse to\n"
	"                                      start until it has run\n"
	"  account create ID CURRENCY [external]  create an account on its shard\n"
	"  balance ID                          balance, held amount and version: from the\n"
	"                                      cache when coherent (PAYTX_REDIS_URL), else\n"
	"                                      the ledger plus committed, not yet posted\n"
	"                                      payments (needs PAYTX_PG_DSN then)\n"
	"  pay PAYMENT_ID FROM TO AMOUNT CURRENCY  submit a transfer, wait for the outcome\n"
	"  submit FILE                         submit a JSON payment (- = stdin), wait\n"
	"  status PAYMENT_ID                   state and outcome of a payment\n"
	"  limit set ACCOUNT|default CURRENCY [--per-payment N] [--daily N]\n"
	"                                      set the risk limits (minor units) of an\n"
	"                                      account or of all accounts without their\n"
	"                                      own; a limit left out (or none) is unset\n"
	"  limit show ACCOUNT|default CURRENCY the limit that applies, today's usage\n"
	"  limit remove ACCOUNT|default CURRENCY  delete the row (the default applies)\n\n"
	"Exit codes: 0 done/committed, 1 service failure, 2 usage, 3 aborted, "
	"4 rejected, 5 timeout, 6 not found.";

const char *ctl_ledger_dsn(const struct ctl *c, const char *name)
{
	static char dsn[1024];
	return shard_dsn(config_str(&c->cfg, "PAYTX_LEDGER_DSNS"), name, dsn, sizeof(dsn)) == 0
		       ? dsn : NULL;
}

int ctl_open_db(PGconn **conn, const char *dsn, const char *what, const char *setting)
{
	if (!dsn) {
		fprintf(stderr, "paytxctl: no database configured for %s (set %s)\n", what, setting);
		return CTL_USAGE;
	}
	return pg_connect(conn, dsn, "paytxctl", NULL) == 0 ? CTL_OK : CTL_FAILED;
}

static int open_db(PGconn **conn, const char *dsn, const char *what)
{
	return ctl_open_db(conn, dsn, what, strcmp(what, "the coordinator log") == 0
						    ? "PAYTX_PG_DSN" : "PAYTX_LEDGER_DSNS");
}

static int cmd_migrate(struct ctl *c)
{
	PGconn *conn;
	int rc = open_db(&conn, config_str(&c->cfg, "PAYTX_PG_DSN"), "the coordinator log");
	if (rc)
		return rc;
	rc = pg_migrate(conn, schema_coordinator_sql) ? CTL_FAILED : CTL_OK;
	PQfinish(conn);
	for (size_t i = 0; !rc && i < c->shards.n; i++) {
		rc = open_db(&conn, ctl_ledger_dsn(c, c->shards.names[i]), c->shards.names[i]);
		if (rc)
			return rc;
		rc = pg_migrate(conn, schema_ledger_sql) ? CTL_FAILED : CTL_OK;
		PQfinish(conn);
	}
	const char *risk_dsn = config_str(&c->cfg, "PAYTX_RISK_DSN");
	if (!rc && risk_dsn) {
		rc = ctl_open_db(&conn, risk_dsn, "risk", "PAYTX_RISK_DSN");
		if (rc)
			return rc;
		rc = pg_migrate(conn, schema_risk_sql) ? CTL_FAILED : CTL_OK;
		PQfinish(conn);
	}
	if (!rc)
		printf("migrated the coordinator log, %zu ledger shards%s\n", c->shards.n,
		       risk_dsn ? " and the risk database" : "");
	return rc;
}

/* Open the ledger that owns account id. */
static int open_ledger(struct ctl *c, const char *id, struct ledger *l)
{
	PGconn *conn;
	const char *shard = c->shards.names[shardmap_index(&c->shards, id)];
	int rc = open_db(&conn, ctl_ledger_dsn(c, shard), shard);
	if (rc)
		return rc;
	if (ledger_init(l, conn, shard) != 0)
		return CTL_FAILED;
	return CTL_OK;
}

static int cmd_account_create(struct ctl *c)
{
	struct ledger l;
	if (c->argc < 3 || c->argc > 4 || strcmp(c->argv[0], "create") != 0 ||
	    (c->argc == 4 && strcmp(c->argv[3], "external") != 0)) {
		fprintf(stderr, "usage: paytxctl account create ID CURRENCY [external]\n");
		return CTL_USAGE;
	}
	const char *id = c->argv[1], *cur = c->argv[2];
	if (!paytx_id_valid(id, strlen(id)) || strlen(cur) != 3) {
		fprintf(stderr, "paytxctl: account ids are 1-64 of [A-Za-z0-9._:-]; currencies "
			"3 letters\n");
		return CTL_USAGE;
	}
	int rc = open_ledger(c, id, &l);
	if (rc)
		return rc;
	int err = ledger_account_create(&l, id, cur, c->argc == 4);
	if (err == PAYTX_ECONFLICT)
		fprintf(stderr, "paytxctl: account %s exists with another currency or kind\n", id);
	else if (!err)
		printf(c->json ? "{\"account\":\"%s\",\"shard\":\"%s\",\"created\":true}\n"
			       : "account %s on %s\n", id, l.pg.participant);
	ledger_finish(&l);
	return err == PAYTX_ECONFLICT ? CTL_USAGE : err ? CTL_FAILED : CTL_OK;
}

static int cmd_balance(struct ctl *c)
{
	struct balance_reader r;
	struct balance b;
	struct cachestore *cs = NULL;
	if (c->argc != 1) {
		fprintf(stderr, "usage: paytxctl balance ID\n");
		return CTL_USAGE;
	}
	if (!config_str(&c->cfg, "PAYTX_LEDGER_DSNS")) {
		fprintf(stderr, "paytxctl: no ledger databases configured (set PAYTX_LEDGER_DSNS)\n");
		return CTL_USAGE;
	}
	const char *url = config_str(&c->cfg, "PAYTX_REDIS_URL");
	if (url) {
		cs = cachestore_create(url, config_str(&c->cfg, "PAYTX_CACHE_PREFIX"), 200, 0);
		if (!cs)
			return CTL_FAILED;
	}
	if (balance_reader_init(&r, config_str(&c->cfg, "PAYTX_SHARDS"),
				config_str(&c->cfg, "PAYTX_LEDGER_DSNS"),
				config_str(&c->cfg, "PAYTX_PG_DSN"), cs, "paytxctl")) {
		cachestore_destroy(cs);
		return CTL_USAGE;
	}
	int err = balance_read(&r, c->argv[0], &b);
	balance_reader_finish(&r);
	cachestore_destroy(cs);
	if (err == PAYTX_ENOTFOUND || err == PAYTX_EINVAL) {
		fprintf(stderr, "paytxctl: no account %s\n", c->argv[0]);
		return CTL_NOT_FOUND;
	}
	if (err == PAYTX_ECONFIG)
		fprintf(stderr, "paytxctl: account %s has open holds: set PAYTX_PG_DSN to tell "
			"which are committed\n", c->argv[0]);
	if (err)
		return err == PAYTX_ECONFIG ? CTL_USAGE : CTL_FAILED;
	const char *src = b.source == BALANCE_FROM_CACHE ? "cache" : "ledger";
	if (c->json)
		printf("{\"account\":\"%s\",\"currency\":\"%s\",\"balance\":%" PRId64
		       ",\"held\":%" PRId64 ",\"external\":%s,\"version\":%" PRId64
		       ",\"source\":\"%s\"}\n", b.account, b.e.currency, b.e.balance, b.e.held,
		       b.e.external ? "true" : "false", b.e.version, src);
	else
		printf("%-20s %s %15" PRId64 "  held %" PRId64 "%s\n", b.account, b.e.currency,
		       b.e.balance, b.e.held, b.e.external ? "  (external)" : "");
	return CTL_OK;
}

static int cmd_status(struct ctl *c)
{
	PGconn *conn;
	if (c->argc != 1) {
		fprintf(stderr, "usage: paytxctl status PAYMENT_ID\n");
		return CTL_USAGE;
	}
	int rc = open_db(&conn, config_str(&c->cfg, "PAYTX_PG_DSN"), "the coordinator log");
	if (rc)
		return rc;
	const char *params[] = { c->argv[0] };
	PGresult *r = pg_query(conn,
		"SELECT payment_id, txn, state, reason, detail, owner, "
		"CASE WHEN state IN ('committing', 'committed') THEN 'committed' "
		"WHEN state IN ('aborting', 'aborted') THEN 'aborted' ELSE 'pending' END, "
		"to_char(submitted_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF'), "
		"coalesce(to_char(finished_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.MSOF'), '') "
		"FROM payments WHERE payment_id = $1", 1, params);
	rc = !r ? CTL_FAILED : PQntuples(r) == 0 ? CTL_NOT_FOUND : CTL_OK;
	if (rc == CTL_NOT_FOUND)
		fprintf(stderr, "paytxctl: no payment %s\n", c->argv[0]);
	if (rc == CTL_OK && c->json)
		printf("{\"payment_id\":\"%s\",\"txn\":%s,\"outcome\":\"%s\",\"state\":\"%s\","
		       "\"reason\":\"%s\",\"detail\":\"%s\",\"owner\":\"%s\","
		       "\"submitted_at\":\"%s\",\"finished_at\":\"%s\"}\n", PQgetvalue(r, 0, 0),
		       PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 2),
		       PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5),
		       PQgetvalue(r, 0, 7), PQgetvalue(r, 0, 8));
	else if (rc == CTL_OK)
		printf("%s  txn %s  %s (%s)%s%s%s%s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
		       PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 3)[0] ? ": " : "",
		       PQgetvalue(r, 0, 3), PQgetvalue(r, 0, 4)[0] ? " - " : "",
		       PQgetvalue(r, 0, 4));
	PQclear(r);
	PQfinish(conn);
	return rc;
}

/* Everything that can be checked without connecting; names the setting. */
static int check_settings(struct ctl *c)
{
	int64_t timeout;
	if (config_check(&c->cfg, "PAYTX_AMQP_URL", broker_url_check,
			 "not a valid amqp:// or amqps:// URL") ||
	    config_check(&c->cfg, "PAYTX_PG_DSN", pg_dsn_check,
			 "not a valid PostgreSQL connection string or URI") ||
	    config_check(&c->cfg, "PAYTX_RISK_DSN", pg_dsn_check,
			 "not a valid PostgreSQL connection string or URI") ||
	    config_check(&c->cfg, "PAYTX_REDIS_URL", cachestore_url_check,
			 "not a redis://HOST[:PORT][/DB] URL") ||
	    config_check(&c->cfg, "PAYTX_CACHE_PREFIX", cachestore_prefix_check,
			 "1-63 of [A-Za-z0-9:._-]") ||
	    config_int(&c->cfg, "PAYTX_TIMEOUT_MS", 1, 86400000, &timeout))
		return PAYTX_ECONFIG;
	const char *why = broker_tls_ca_problem(config_str(&c->cfg, "PAYTX_AMQP_URL"),
						config_str(&c->cfg, "PAYTX_AMQP_TLS_CA"));
	if (!why)
		why = broker_tls_key_problem(config_str(&c->cfg, "PAYTX_AMQP_TLS_CERT"),
					     config_str(&c->cfg, "PAYTX_AMQP_TLS_KEY"));
	if (why) {
		fprintf(stderr, "setting %s\n", why);
		return PAYTX_ECONFIG;
	}
	if (!config_str(&c->cfg, "PAYTX_LEDGER_DSNS"))
		return 0;
	for (size_t i = 0; i < c->shards.n; i++) {
		const char *dsn = ctl_ledger_dsn(c, c->shards.names[i]);
		if (!dsn || pg_dsn_check(dsn)) {
			fprintf(stderr, "setting PAYTX_LEDGER_DSNS: %s for shard %s\n",
				dsn ? "not a valid PostgreSQL connection string" : "no database",
				c->shards.names[i]);
			return PAYTX_ECONFIG;
		}
	}
	return 0;
}

static int dispatch(struct ctl *c, const char *cmd)
{
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(c);
	if (strcmp(cmd, "account") == 0)
		return cmd_account_create(c);
	if (strcmp(cmd, "balance") == 0)
		return cmd_balance(c);
	if (strcmp(cmd, "pay") == 0)
		return ctl_pay(c);
	if (strcmp(cmd, "submit") == 0)
		return ctl_submit(c);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(c);
	if (strcmp(cmd, "limit") == 0)
		return ctl_limit(c);
	fprintf(stderr, "paytxctl: unknown command %s (see --help)\n", cmd);
	return CTL_USAGE;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	log_init("paytxctl");
	log_set_format_json(0);
	if (!getenv("PAYTX_LOG_LEVEL"))
		(void)log_set_level_name("warn");
	/* "--json" anywhere is the output switch, not a setting; the limit
	 * options are the limit command's, taken out the same way. */
	int n = 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			c.json = true;
		else if (ctl_take_option(argc, argv, &i, "per-payment", &c.per_payment) ||
			 ctl_take_option(argc, argv, &i, "daily", &c.daily))
			continue;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	if (config_load(&c.cfg, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytxctl",
			usage, "Operate paytx and submit payments."))
		return CTL_USAGE;
	c.json = c.json || strcmp(config_str(&c.cfg, "PAYTX_OUTPUT"), "json") == 0;
	if (shardmap_parse(&c.shards, config_str(&c.cfg, "PAYTX_SHARDS")) != 0) {
		fprintf(stderr, "setting PAYTX_SHARDS: a comma-separated list of names\n");
		return CTL_USAGE;
	}
	if (check_settings(&c))
		return CTL_USAGE;
	if (c.cfg.check_only) {
		printf("paytxctl: configuration OK\n");
		return CTL_OK;
	}
	if (c.cfg.argi >= argc) {
		config_print_help(&c.cfg, "paytxctl", usage, "Operate paytx and submit payments.");
		return CTL_USAGE;
	}
	c.argc = argc - c.cfg.argi - 1;
	c.argv = argv + c.cfg.argi + 1;
	return dispatch(&c, argv[c.cfg.argi]);
}

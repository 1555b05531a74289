/* paytxctl: operator and client commands over the coordinator log, the
 * ledger shards and the submit queue. */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
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
	{ "PAYTX_AMQP_URL_OPERATOR", "amqp-url-operator", NULL,
	  "RabbitMQ URL for the dead commands, as the operator's user (paytx-operator: "
	  "reads paytx.dead, writes paytx.submit); unset = PAYTX_AMQP_URL.", CONFIG_SECRET },
	{ "PAYTX_PARTICIPANTS", "participants", NULL,
	  "Further participants the coordinators send every payment to (their "
	  "PAYTX_PARTICIPANTS), for list; risk's state is read from PAYTX_RISK_DSN.", 0 },
	{ "PAYTX_REDIS_URL", "redis-url", NULL, "The balance cache (docs/cache.md): balance "
	  "serves from it when it is coherent; unset = the ledger only.", 0 },
	{ "PAYTX_CACHE_PREFIX", "cache-prefix", "paytx:cache",
	  "Prefix of the cache's keys in Redis (as paytx-cache's).", 0 },
	{ "PAYTX_TIMEOUT_MS", "timeout-ms", "30000", "How long pay waits for the outcome.", 0 },
	{ "PAYTX_OUTPUT", "output", "text", "text or json (--json is short for json).", 0 },
};

static const char usage[] =
	"[options] COMMAND [ARGS]\n\n"
	"Commands (paytxctl COMMAND --help for each):\n"
	"  migrate                             apply the schema and the roles' grants\n"
	"  account create ID CURRENCY [external]  create an account on its shard\n"
	"  balance ID                          balance, held amount and version: from the\n"
	"                                      cache when coherent (PAYTX_REDIS_URL), else\n"
	"                                      the ledger plus committed, not yet posted\n"
	"                                      payments (needs PAYTX_PG_DSN then)\n"
	"  journal ACCOUNT [--limit N]         the account's journal entries, newest first\n"
	"  pay PAYMENT_ID FROM TO AMOUNT CURRENCY  submit a transfer, wait for the outcome\n"
	"  submit FILE                         submit a JSON payment (- = stdin), wait\n"
	"  status PAYMENT_ID                   state and outcome of a payment\n"
	"  list inflight|in-doubt [--limit N] [--older-than SECONDS]\n"
	"                                      undecided payments, or decided ones not\n"
	"                                      yet applied by every participant\n"
	"  dead list|show|replay ...           inspect and replay dead letters\n"
	"  limit set|show|remove ...           the risk participant's limits\n\n"
	"--json (or PAYTX_OUTPUT=json) makes every read command print JSON.\n"
	"Exit codes: 0 done/committed, 1 service failure, 2 usage, 3 aborted, "
	"4 rejected (dead replay: refused), 5 timeout, 6 not found.";

/* One command: its handler, the options it takes and its --help. */
struct command {
	const char *name;
	int (*run)(struct ctl *c);
	unsigned opts;                /* enum ctl_opt bits it accepts */
	const char *help;
};

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
	if (rc == CTL_OK && c->json) {
		/* Through json-c: detail and owner are free text. */
		static const struct { const char *key; int col; } f[] = {
			{ "payment_id", 0 }, { "outcome", 6 }, { "state", 2 }, { "reason", 3 },
			{ "detail", 4 }, { "owner", 5 }, { "submitted_at", 7 }, { "finished_at", 8 },
		};
		struct json_object *o = json_object_new_object();
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			json_object_object_add(o, f[i].key,
					       json_object_new_string(PQgetvalue(r, 0, f[i].col)));
			if (i == 0)
				json_object_object_add(o, "txn", json_object_new_int64(strtoll(
					PQgetvalue(r, 0, 1), NULL, 10)));
		}
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
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
	    config_check(&c->cfg, "PAYTX_AMQP_URL_OPERATOR", broker_url_check,
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

static const struct command commands[] = {
	{ "migrate", cmd_migrate, 0,
	  "usage: paytxctl migrate\n"
	  "Apply the schema and the roles' grants to the coordinator log (PAYTX_PG_DSN),\n"
	  "every ledger database (PAYTX_LEDGER_DSNS) and the risk database if\n"
	  "PAYTX_RISK_DSN is set, as the owner role. Idempotent; the daemons refuse to\n"
	  "start until it has run.\n" },
	{ "account", cmd_account_create, 0,
	  "usage: paytxctl account create ID CURRENCY [external]\n"
	  "Create an account on the shard that owns ID. external: the outside world,\n"
	  "which may go negative. Exit 2 when it exists with another currency or kind.\n" },
	{ "balance", cmd_balance, 0,
	  "usage: paytxctl balance ID [--json]\n"
	  "Posted balance, amount held by pending debits and version of an account.\n"
	  "Exit 6 when there is no such account.\n" },
	{ "journal", ctl_journal, CTL_OPT_LIMIT,
	  "usage: paytxctl journal ACCOUNT [--limit N] [--json]\n"
	  "The account's journal entries on its ledger shard, newest first (default\n"
	  "the last 50; --limit 0 = all): entry id, txn, payment_id, amount (negative =\n"
	  "debit), balance after the entry, posting time. Exit 6 when there is no\n"
	  "such account.\n" },
	{ "pay", ctl_pay, 0,
	  "usage: paytxctl pay PAYMENT_ID FROM TO AMOUNT CURRENCY [--json]\n"
	  "Submit a transfer of AMOUNT minor units as the client's user (PAYTX_AMQP_URL)\n"
	  "and wait up to PAYTX_TIMEOUT_MS for its outcome. Exit 0 committed, 3 aborted,\n"
	  "4 rejected, 5 no outcome in time, 1 broker failure.\n" },
	{ "submit", ctl_submit, 0,
	  "usage: paytxctl submit FILE [--json]\n"
	  "Submit a JSON payment (the submit schema; - reads standard input) and wait\n"
	  "for its outcome, with the exit codes of pay.\n" },
	{ "status", cmd_status, 0,
	  "usage: paytxctl status PAYMENT_ID [--json]\n"
	  "State (preparing, committing, aborting, committed, aborted) and outcome of a\n"
	  "payment from the coordinator log. Exit 6 when there is none.\n" },
	{ "list", ctl_list, CTL_OPT_LIMIT | CTL_OPT_OLDER_THAN, NULL /* list.c's */ },
	{ "dead", ctl_dead, CTL_OPT_LIMIT | CTL_OPT_ALL | CTL_OPT_DRY_RUN, NULL /* dead.c's */ },
	{ "limit", ctl_limit, CTL_OPT_PER_PAYMENT | CTL_OPT_DAILY,
	  "usage: paytxctl limit set ACCOUNT|default CURRENCY [--per-payment N|none] "
	  "[--daily N|none]\n"
	  "       paytxctl limit show ACCOUNT|default CURRENCY [--json]\n"
	  "       paytxctl limit remove ACCOUNT|default CURRENCY\n"
	  "set: the risk limits (minor units) of an account, or of every account without\n"
	  "its own row (default); a limit left out or none is unset. show: the limit\n"
	  "that applies and today's usage. remove: delete the row (exit 6 when there\n"
	  "was none). Needs PAYTX_RISK_DSN.\n" },
};

static const char *const option_names[] = { "--per-payment", "--daily", "--limit",
					     "--older-than", "--all", "--dry-run" };

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static int run_command(struct ctl *c, const char *name, bool help)
{
	const struct command *cmd = find_command(name);
	if (!cmd) {
		fprintf(stderr, "paytxctl: unknown command %s (see paytxctl --help)\n", name);
		return CTL_USAGE;
	}
	if (help) {
		fputs(cmd->help ? cmd->help : strcmp(name, "list") == 0 ? ctl_list_help
									 : ctl_dead_help, stdout);
		return CTL_OK;
	}
	for (size_t i = 0; i < sizeof(option_names) / sizeof(option_names[0]); i++)
		if ((c->opts & (1u << i)) && !(cmd->opts & (1u << i))) {
			fprintf(stderr, "paytxctl: %s takes no %s option (see paytxctl %s --help)\n",
				name, option_names[i], name);
			return CTL_USAGE;
		}
	return cmd->run(c);
}

int64_t ctl_count_option(const char *opt, const char *value, int64_t dflt, int64_t max)
{
	if (!value)
		return dflt;
	char *end;
	errno = 0;
	long long v = strtoll(value, &end, 10);
	if (errno || end == value || *end || v < 0 || v > max) {
		fprintf(stderr, "paytxctl: %s takes an integer from 0 to %" PRId64 "\n", opt, max);
		return -1;
	}
	return v;
}

void ctl_json_string(const char *s)
{
	struct json_object *o = json_object_new_string(s);
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	json_object_put(o);
}

/* Take the command options and --json / --help out of argv (they may
 * come anywhere); returns the new argc. */
static int take_options(struct ctl *c, int argc, char **argv, bool *help)
{
	int n = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--json") == 0)
			c->json = true;
		else if (i > 0 && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0))
			*help = true;
		else if (ctl_take_option(argc, argv, &i, "per-payment", &c->per_payment))
			c->opts |= CTL_OPT_PER_PAYMENT;
		else if (ctl_take_option(argc, argv, &i, "daily", &c->daily))
			c->opts |= CTL_OPT_DAILY;
		else if (ctl_take_option(argc, argv, &i, "limit", &c->limit))
			c->opts |= CTL_OPT_LIMIT;
		else if (ctl_take_option(argc, argv, &i, "older-than", &c->older_than))
			c->opts |= CTL_OPT_OLDER_THAN;
		else if (strcmp(a, "--all") == 0)
			c->opts |= CTL_OPT_ALL, c->all = true;
		else if (strcmp(a, "--dry-run") == 0)
			c->opts |= CTL_OPT_DRY_RUN, c->dry_run = true;
		else
			argv[n++] = argv[i];
	}
	return n;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	bool help = false;
	log_init("paytxctl");
	log_set_format_json(0);
	if (!getenv("PAYTX_LOG_LEVEL"))
		(void)log_set_level_name("warn");
	argc = take_options(&c, argc, argv, &help);
	if (config_load(&c.cfg, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytxctl",
			usage, "Operate paytx and submit payments."))
		return CTL_USAGE;
	if (help && c.cfg.argi < argc)
		return run_command(&c, argv[c.cfg.argi], true);
	if (help) {
		config_print_help(&c.cfg, "paytxctl", usage, "Operate paytx and submit payments.");
		return CTL_OK;
	}
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
		fprintf(stderr, "paytxctl: no command given\n");
		return CTL_USAGE;
	}
	c.argc = argc - c.cfg.argi - 1;
	c.argv = argv + c.cfg.argi + 1;
	return run_command(&c, argv[c.cfg.argi], false);
}

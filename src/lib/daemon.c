/* Start-up checks of the settings every daemon shares. */
#include "daemon.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "metrics_http.h"
#include "pg.h"
#include "crash.h"
#include "signals.h"

static int hmac_key_check(const char *key)
{
	size_t n = strlen(key);
	return n >= 16 && n <= 64 ? 0 : PAYTX_ECONFIG;
}

static int log_level_check(const char *level)
{
	return log_set_level_name(level);
}

/* Empty turns the endpoint off. */
static int metrics_addr_check(const char *addr)
{
	return *addr ? metrics_http_addr_check(addr) : 0;
}

static int tls_ca_check(const struct config *c)
{
	const char *why = broker_tls_ca_problem(config_str(c, "PAYTX_AMQP_URL"),
						config_str(c, "PAYTX_AMQP_TLS_CA"));
	if (!why)
		why = broker_tls_key_problem(config_str(c, "PAYTX_AMQP_TLS_CERT"),
					     config_str(c, "PAYTX_AMQP_TLS_KEY"));
	if (!why)
		return 0;
	fprintf(stderr, "setting %s\n", why);
	return PAYTX_ECONFIG;
}

int daemon_should_exit(const struct config *c, int argc, char **argv, const char *prog)
{
	if (c->argi < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[c->argi]);
		return 2;
	}
	if (c->check_only) {
		printf("%s: configuration OK\n", prog);
		return 0;
	}
	return -1;
}

int daemon_check_common(const struct config *c)
{
	if (config_check(c, "PAYTX_AMQP_URL", broker_url_check,
			 "not a valid amqp:// or amqps:// URL (amqp://user:password@host:port/vhost)") ||
	    config_check(c, "PAYTX_QUEUE_TYPE", queue_type_check, "classic or quorum") ||
	    config_check(c, "PAYTX_PG_DSN", pg_dsn_check,
			 "not a valid PostgreSQL connection string or URI (unknown option or bad "
			 "sslmode?)") ||
	    config_check(c, "PAYTX_HMAC_KEY", hmac_key_check, "must be 16 to 64 bytes long") ||
	    config_check(c, "PAYTX_METRICS_ADDR", metrics_addr_check,
			 "host:port, e.g. 127.0.0.1:9464 or [::1]:9464 (empty = off)") ||
	    config_check(c, "PAYTX_LOG_LEVEL", log_level_check, "debug, info, warn or error"))
		return PAYTX_ECONFIG;
	return tls_ca_check(c);
}

int daemon_metrics_start(const struct config *c, struct metrics_http **out)
{
	const char *addr = config_str(c, "PAYTX_METRICS_ADDR");
	*out = NULL;
	if (!addr || !*addr)
		return 0;
	if (metrics_http_create(addr, out) != 0)
		return PAYTX_ECONFIG;
	/* A port the system chose is only known from this line: log it at a
	 * level that is always shown. */
	bool chosen = atoi(strrchr(addr, ':') + 1) == 0;
	log_msg(chosen ? LOG_WARN : LOG_INFO, NULL,
		"metrics: serving /metrics and /healthz on %s (port %u)", addr,
		(unsigned)metrics_http_port(*out));
	return 0;
}

int daemon_participant_config(const struct config *c, struct paytx_participant_config *pc)
{
	int64_t prefetch, batch, status_after, replay_window;
	if (daemon_check_common(c) ||
	    config_int(c, "PAYTX_PREFETCH", 1, 65535, &prefetch) ||
	    config_int(c, "PAYTX_BATCH_MAX", 1, 4096, &batch) ||
	    config_int(c, "PAYTX_STATUS_AFTER_MS", 100, 86400000, &status_after) ||
	    config_int(c, "PAYTX_REPLAY_WINDOW_S", 10, 86400, &replay_window))
		return PAYTX_ECONFIG;
	pc->name = config_str(c, "PAYTX_PARTICIPANT");
	if (!pc->name || !paytx_id_valid(pc->name, strlen(pc->name))) {
		fprintf(stderr, "setting PAYTX_PARTICIPANT: 1-64 of [A-Za-z0-9._:-]\n");
		return PAYTX_ECONFIG;
	}
	pc->hmac_key = config_str(c, "PAYTX_HMAC_KEY");
	pc->amqp_url = config_str(c, "PAYTX_AMQP_URL");
	pc->amqp_tls_ca = config_str(c, "PAYTX_AMQP_TLS_CA");
	pc->amqp_tls_cert = config_str(c, "PAYTX_AMQP_TLS_CERT");
	pc->amqp_tls_key = config_str(c, "PAYTX_AMQP_TLS_KEY");
	pc->queue_type = config_str(c, "PAYTX_QUEUE_TYPE");
	pc->prefetch = (uint16_t)prefetch;
	pc->batch_max = (size_t)batch;
	pc->status_after_ms = status_after;
	pc->replay_window_s = replay_window;
	return 0;
}

int daemon_pg_participant_main(const struct daemon_pg_participant *d, int argc, char **argv)
{
	struct config c;
	struct paytx_participant_config pc = { 0 };
	PGconn *conn;
	signals_install();
	log_init(d->component);
	crash_init();
	if (config_load(&c, d->defs, d->ndefs, argc, argv, d->program, "[options]",
			d->summary) ||
	    daemon_participant_config(&c, &pc))
		return 2;
	int status = daemon_should_exit(&c, argc, argv, d->program);
	if (status >= 0)
		return status;
	struct metrics_http *metrics;
	if (daemon_metrics_start(&c, &metrics) != 0)
		return 1;
	int err = 1;
	/* pg_connect only gives up when asked to stop: then it is a clean stop. */
	if (pg_connect(&conn, config_str(&c, "PAYTX_PG_DSN"), pc.name, &signals_stop) != 0) {
		err = signals_stop ? 0 : 1;
		goto out;
	}
	if (pg_schema_check(conn, d->schema, d->schema_version) != 0) {
		PQfinish(conn);
		goto out;
	}
	if (d->init(d->self, conn, pc.name) != 0)
		goto out;
	err = paytx_participant_run(&pc, d->ops, d->self, &signals_stop);
	d->finish(d->self);
	if (err)
		log_error("%s stopping: %s", d->component, paytx_strerror(err));
out:
	metrics_http_destroy(metrics);
	return err ? 1 : 0;
}

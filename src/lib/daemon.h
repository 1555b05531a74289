/* Start-up checks shared by the daemons (coordinator, participants): the
 * settings every one of them has, validated before anything connects.
 * Call from main after config_load. */
#ifndef PAYTX_DAEMON_H
#define PAYTX_DAEMON_H

#include <libpq-fe.h>

#include "broker.h"
#include "config.h"
#include "paytx/error.h"
#include "paytx/participant.h"

/* PAYTX_AMQP_URL, PAYTX_AMQP_TLS_CA/_CERT/_KEY (readable PEM files; a CA
 * for amqps), PAYTX_QUEUE_TYPE, PAYTX_PG_DSN, PAYTX_HMAC_KEY, PAYTX_METRICS_ADDR and
 * PAYTX_LOG_LEVEL (which it also applies). Prints which setting is wrong, never its value;
 * returns 0
 * or PAYTX_ECONFIG. */
int daemon_check_common(const struct config *c) PAYTX_MUST_CHECK;

/* After the settings are checked: refuse positional arguments, and end a
 * --check-config run. Returns -1 to go on, else the exit status for main. */
int daemon_should_exit(const struct config *c, int argc, char **argv, const char *prog);

/* The metrics endpoint's setting: put this row in every daemon's table. */
#define DAEMON_METRICS_DEF                                                               \
	{ "PAYTX_METRICS_ADDR", "metrics-addr", "",                                       \
	  "host:port serving Prometheus metrics (GET /metrics) and GET /healthz over "     \
	  "HTTP, e.g. 127.0.0.1:9464; empty = off; port 0 = any free port (logged).", 0 }

/* After daemon_should_exit: start the metrics endpoint when
 * PAYTX_METRICS_ADDR is set (*out stays NULL when it is empty) and log
 * the port (at warn level when the system chose it). Returns 0,
 * or PAYTX_ECONFIG when it cannot listen (logged, naming the address):
 * the daemon must then not start. Free with metrics_http_destroy. */
struct metrics_http;
int daemon_metrics_start(const struct config *c, struct metrics_http **out) PAYTX_MUST_CHECK;

/* The settings every participant daemon has besides its own
 * PAYTX_PARTICIPANT and PAYTX_PG_DSN rows: put these rows in its table. */
#define DAEMON_PARTICIPANT_DEFS                                                          \
	BROKER_CONFIG_DEFS,                                                               \
	BROKER_QUEUE_TYPE_DEF,                                                            \
	{ "PAYTX_HMAC_KEY", "hmac-key", NULL, "Key signing protocol messages (16-64 bytes).", \
	  CONFIG_SECRET | CONFIG_REQUIRED },                                                \
	{ "PAYTX_PREFETCH", "prefetch", "512", "Deliveries in flight.", 0 },                \
	{ "PAYTX_BATCH_MAX", "batch-max", "256", "Messages per local transaction.", 0 },    \
	{ "PAYTX_STATUS_AFTER_MS", "status-after-ms", "15000",                              \
	  "Ask the coordinator for the decision on a reservation held this long.", 0 },     \
	{ "PAYTX_REPLAY_WINDOW_S", "replay-window-s", "900",                                \
	  "Protocol messages stamped further than this from now are refused as replays "     \
	  "(allow for clock skew between hosts).", 0 },                                      \
	DAEMON_METRICS_DEF,                                                               \
	{ "PAYTX_LOG_LEVEL", "log-level", "info", "debug, info, warn or error.", 0 }

/* Check the common settings and fill pc from them and PAYTX_PARTICIPANT.
 * Strings in pc are borrowed from c. 0 or PAYTX_ECONFIG (printed). */
int daemon_participant_config(const struct config *c,
			      struct paytx_participant_config *pc) PAYTX_MUST_CHECK;

/* A participant whose state is in one PostgreSQL database (paytx-ledger,
 * paytx-risk): everything its main does but its own settings table. */
struct daemon_pg_participant {
	const char *component;            /* log component, e.g. "ledger" */
	const char *program, *summary;    /* for --help */
	const struct config_def *defs;    /* its table: PAYTX_PARTICIPANT, PAYTX_PG_DSN, */
	size_t ndefs;                     /* then DAEMON_PARTICIPANT_DEFS */
	const char *schema;               /* PG_SCHEMA_* and its version, checked */
	int schema_version;
	void *self;                       /* the participant's state, for ops */
	/* Takes conn over, even on failure. */
	int (*init)(void *self, PGconn *conn, const char *participant);
	void (*finish)(void *self);
	const struct paytx_participant_ops *ops;
};

/* Settings, --help / --check-config, the metrics endpoint, the database
 * (retried until it answers; its schema version checked), then the SDK's
 * loop until SIGTERM. Returns main's exit status. */
int daemon_pg_participant_main(const struct daemon_pg_participant *d, int argc, char **argv);

#endif

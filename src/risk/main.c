/* paytx-risk: payment limits as a 2PC participant. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "crash.h"
#include "log.h"
#include "pg.h"
#include "risk.h"
#include "signals.h"

static const struct config_def defs[] = {
	{ "PAYTX_PARTICIPANT", "participant", "risk",
	  "This participant's name (its queue and routing key); name it in the "
	  "coordinators' PAYTX_PARTICIPANTS.", 0 },
	{ "PAYTX_AMQP_URL", "amqp-url", "amqp://guest:guest@127.0.0.1:5672",
	  "RabbitMQ URL (amqp:// or amqps://).", CONFIG_SECRET },
	{ "PAYTX_AMQP_TLS_CA", "amqp-tls-ca", NULL,
	  "CA certificate file (PEM) for amqps; required with amqps.", 0 },
	{ "PAYTX_AMQP_TLS_CERT", "amqp-tls-cert", NULL,
	  "Client certificate (PEM) to present over amqps, with PAYTX_AMQP_TLS_KEY.", 0 },
	{ "PAYTX_AMQP_TLS_KEY", "amqp-tls-key", NULL,
	  "Private key (PEM, unencrypted) of PAYTX_AMQP_TLS_CERT.", 0 },
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of the risk database (limits and usage), "
	  "as the risk role (paytx_risk); run paytxctl migrate first.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_HMAC_KEY", "hmac-key", NULL, "Key signing protocol messages (16-64 bytes).",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_PREFETCH", "prefetch", "512", "Deliveries in flight.", 0 },
	{ "PAYTX_BATCH_MAX", "batch-max", "256", "Messages per local transaction.", 0 },
	{ "PAYTX_STATUS_AFTER_MS", "status-after-ms", "15000",
	  "Ask the coordinator for the decision on a reservation held this long.", 0 },
	{ "PAYTX_REPLAY_WINDOW_S", "replay-window-s", "900",
	  "Protocol messages stamped further than this from now are refused as replays "
	  "(allow for clock skew between hosts).", 0 },
	{ "PAYTX_LOG_LEVEL", "log-level", "info", "debug, info, warn or error.", 0 },
};

static int build_config(const struct config *c, struct paytx_participant_config *pc)
{
	int64_t prefetch, batch, status_after, replay_window;
	if (daemon_check_common(c) ||
	    config_int(c, "PAYTX_PREFETCH", 1, 65535, &prefetch) ||
	    config_int(c, "PAYTX_BATCH_MAX", 1, 4096, &batch) ||
	    config_int(c, "PAYTX_STATUS_AFTER_MS", 100, 86400000, &status_after) ||
	    config_int(c, "PAYTX_REPLAY_WINDOW_S", 10, 86400, &replay_window))
		return PAYTX_ECONFIG;
	pc->name = config_str(c, "PAYTX_PARTICIPANT");
	if (!paytx_id_valid(pc->name, strlen(pc->name))) {
		fprintf(stderr, "setting PAYTX_PARTICIPANT: 1-64 of [A-Za-z0-9._:-]\n");
		return PAYTX_ECONFIG;
	}
	pc->hmac_key = config_str(c, "PAYTX_HMAC_KEY");
	pc->amqp_url = config_str(c, "PAYTX_AMQP_URL");
	pc->amqp_tls_ca = config_str(c, "PAYTX_AMQP_TLS_CA");
	pc->amqp_tls_cert = config_str(c, "PAYTX_AMQP_TLS_CERT");
	pc->amqp_tls_key = config_str(c, "PAYTX_AMQP_TLS_KEY");
	pc->prefetch = (uint16_t)prefetch;
	pc->batch_max = (size_t)batch;
	pc->status_after_ms = status_after;
	pc->replay_window_s = replay_window;
	return 0;
}

int main(int argc, char **argv)
{
	struct config c;
	struct paytx_participant_config pc = { 0 };
	struct risk r;
	PGconn *conn;
	signals_install();
	log_init("risk");
	crash_init();
	if (config_load(&c, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytx-risk",
			"[options]", "Votes no on payments that break a limit (per-payment cap, "
			"per-account daily total), as a two-phase-commit participant.") ||
	    build_config(&c, &pc))
		return 2;
	int status = daemon_should_exit(&c, argc, argv, "paytx-risk");
	if (status >= 0)
		return status;
	/* pg_connect only gives up when asked to stop: then it is a clean stop. */
	if (pg_connect(&conn, config_str(&c, "PAYTX_PG_DSN"), pc.name, &signals_stop) != 0)
		return signals_stop ? 0 : 1;
	if (pg_schema_check(conn, PG_SCHEMA_RISK, PG_SCHEMA_RISK_VERSION) != 0) {
		PQfinish(conn);
		return 1;
	}
	if (risk_init(&r, conn, pc.name) != 0) /* conn is taken over */
		return 1;
	int err = paytx_participant_run(&pc, &risk_ops, &r, &signals_stop);
	risk_finish(&r);
	if (err)
		log_error("risk stopping: %s", paytx_strerror(err));
	return err ? 1 : 0;
}

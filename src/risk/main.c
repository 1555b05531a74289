/* paytx-risk: payment limits as a 2PC participant. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "crash.h"
#include "log.h"
#include "metrics_http.h"
#include "pg.h"
#include "risk.h"
#include "signals.h"

static const struct config_def defs[] = {
	{ "PAYTX_PARTICIPANT", "participant", "risk",
	  "This participant's name (its queue and routing key); name it in the "
	  "coordinators' PAYTX_PARTICIPANTS.", 0 },
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of the risk database (limits and usage), "
	  "as the risk role (paytx_risk); run paytxctl migrate first.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	DAEMON_PARTICIPANT_DEFS,
};

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
	    daemon_participant_config(&c, &pc))
		return 2;
	int status = daemon_should_exit(&c, argc, argv, "paytx-risk");
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
	if (pg_schema_check(conn, PG_SCHEMA_RISK, PG_SCHEMA_RISK_VERSION) != 0) {
		PQfinish(conn);
		goto out;
	}
	if (risk_init(&r, conn, pc.name) != 0) /* conn is taken over */
		goto out;
	err = paytx_participant_run(&pc, &risk_ops, &r, &signals_stop);
	risk_finish(&r);
	if (err)
		log_error("risk stopping: %s", paytx_strerror(err));
out:
	metrics_http_destroy(metrics);
	return err ? 1 : 0;
}

/* paytx-ledger: one ledger shard as a 2PC participant. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "crash.h"
#include "ledger.h"
#include "log.h"
#include "metrics_http.h"
#include "pg.h"
#include "signals.h"

static const struct config_def defs[] = {
	{ "PAYTX_PARTICIPANT", "participant", NULL,
	  "Name of this shard, e.g. ledger.0 (its queue and routing key).", CONFIG_REQUIRED },
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of this shard's ledger database, "
	  "as the ledger role (paytx_ledger); run paytxctl migrate first.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	DAEMON_PARTICIPANT_DEFS,
};

int main(int argc, char **argv)
{
	struct config c;
	struct paytx_participant_config pc = { 0 };
	struct ledger l;
	PGconn *conn;
	signals_install();
	log_init("ledger");
	crash_init();
	if (config_load(&c, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytx-ledger",
			"[options]", "Runs one ledger shard as a two-phase-commit participant.") ||
	    daemon_participant_config(&c, &pc))
		return 2;
	int status = daemon_should_exit(&c, argc, argv, "paytx-ledger");
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
	if (pg_schema_check(conn, PG_SCHEMA_LEDGER, PG_SCHEMA_LEDGER_VERSION) != 0) {
		PQfinish(conn);
		goto out;
	}
	if (ledger_init(&l, conn, pc.name) != 0) /* takes conn over, even on failure */
		goto out;
	err = paytx_participant_run(&pc, &ledger_ops, &l, &signals_stop);
	ledger_finish(&l);
	if (err)
		log_error("ledger stopping: %s", paytx_strerror(err));
out:
	metrics_http_destroy(metrics);
	return err ? 1 : 0;
}

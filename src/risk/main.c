/* paytx-risk: payment limits as a 2PC participant. */
#include "daemon.h"
#include "pg.h"
#include "risk.h"

static const struct config_def defs[] = {
	{ "PAYTX_PARTICIPANT", "participant", "risk",
	  "This participant's name (its queue and routing key); name it in the "
	  "coordinators' PAYTX_PARTICIPANTS.", 0 },
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of the risk database (limits and usage), "
	  "as the risk role (paytx_risk); run paytxctl migrate first.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	DAEMON_PARTICIPANT_DEFS,
};

static int init(void *self, PGconn *conn, const char *participant)
{
	return risk_init(self, conn, participant);
}

static void finish(void *self)
{
	risk_finish(self);
}

int main(int argc, char **argv)
{
	static struct risk state;
	const struct daemon_pg_participant d = {
		.component = "risk", .program = "paytx-risk",
		.summary = "Votes no on payments that break a limit (per-payment cap, "
			   "per-account daily total), as a two-phase-commit participant.",
		.defs = defs, .ndefs = sizeof(defs) / sizeof(defs[0]),
		.schema = PG_SCHEMA_RISK, .schema_version = PG_SCHEMA_RISK_VERSION,
		.self = &state, .init = init, .finish = finish, .ops = &risk_ops,
	};
	return daemon_pg_participant_main(&d, argc, argv);
}

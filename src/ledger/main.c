/* paytx-ledger: one ledger shard as a 2PC participant. */
#include "daemon.h"
#include "ledger.h"
#include "pg.h"

static const struct config_def defs[] = {
	{ "PAYTX_PARTICIPANT", "participant", NULL,
	  "Name of this shard, e.g. ledger.0 (its queue and routing key).", CONFIG_REQUIRED },
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of this shard's ledger database, "
	  "as the ledger role (paytx_ledger); run paytxctl migrate first.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	DAEMON_PARTICIPANT_DEFS,
};

static int init(void *self, PGconn *conn, const char *participant)
{
	return ledger_init(self, conn, participant);
}

static void finish(void *self)
{
	ledger_finish(self);
}

int main(int argc, char **argv)
{
	static struct ledger state;
	const struct daemon_pg_participant d = {
		.component = "ledger", .program = "paytx-ledger",
		.summary = "Runs one ledger shard as a two-phase-commit participant.",
		.defs = defs, .ndefs = sizeof(defs) / sizeof(defs[0]),
		.schema = PG_SCHEMA_LEDGER, .schema_version = PG_SCHEMA_LEDGER_VERSION,
		.self = &state, .init = init, .finish = finish, .ops = &ledger_ops,
	};
	return daemon_pg_participant_main(&d, argc, argv);
}

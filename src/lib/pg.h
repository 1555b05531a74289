/* PostgreSQL helpers over libpq: connect with retry, run statements, apply
 * the embedded schema. Errors are logged with the server's message (never
 * the DSN's password). One PGconn per thread, as libpq requires.
 */
#ifndef PAYTX_PG_H
#define PAYTX_PG_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>

#include "paytx/error.h"

/* Connect, retrying with backoff (100 ms doubling to 5 s) until it works or
 * *stop becomes non-zero (stop may be NULL: one attempt only). */
int pg_connect(PGconn **out, const char *dsn, const char *app,
	       volatile sig_atomic_t *stop) PAYTX_MUST_CHECK;
/* The same with server options for the session (libpq's "options", e.g.
 * "-c name=value"), kept across resets; the DSN's own take precedence. */
int pg_connect_options(PGconn **out, const char *dsn, const char *app, const char *options,
		       volatile sig_atomic_t *stop) PAYTX_MUST_CHECK;
/* Is dsn a valid libpq connection string or URI (known options, a valid
 * sslmode)? 0 or PAYTX_ECONFIG; prints nothing (it may hold a password). */
int pg_dsn_check(const char *dsn) PAYTX_MUST_CHECK;
/* Run one command or script with no parameters; PAYTX_EDB on failure. */
int pg_exec(PGconn *conn, const char *sql) PAYTX_MUST_CHECK;
/* Run a parameterised statement; returns the result (caller PQclear) or NULL
 * on failure (already logged). ok is PGRES_COMMAND_OK or PGRES_TUPLES_OK. */
PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params);
/* True when the connection is gone and must be re-made. */
bool pg_broken(PGconn *conn);
/* PQreset conn; true when it is connected again (counted in
 * paytx_reconnects_total{to="postgres"}). */
bool pg_reset(PGconn *conn);
/* SQLSTATE of res or "" */
const char *pg_sqlstate(const PGresult *res);

/* Embedded schema scripts (the sql directory), applied idempotently by
 * `paytxctl migrate` as the role that owns the schema. The daemons run as
 * application roles that may not change the schema: they only check that
 * the database is at the version they were built for (pg_schema_check).
 * Each version must match the one the script records in paytx_schema. */
extern const char schema_coordinator_sql[];
extern const char schema_ledger_sql[];
extern const char schema_risk_sql[];
#define PG_SCHEMA_COORDINATOR "coordinator"
#define PG_SCHEMA_COORDINATOR_VERSION 3
#define PG_SCHEMA_LEDGER "ledger"
#define PG_SCHEMA_LEDGER_VERSION 3
#define PG_SCHEMA_RISK "risk"
#define PG_SCHEMA_RISK_VERSION 1
int pg_migrate(PGconn *conn, const char *schema_sql) PAYTX_MUST_CHECK;
/* Is component (borrowed) recorded at exactly version in paytx_schema?
 * 0, or PAYTX_ECONFIG with an error logged that says to run paytxctl
 * migrate (schema missing or at another version), or PAYTX_EDB. */
int pg_schema_check(PGconn *conn, const char *component, int version) PAYTX_MUST_CHECK;

#endif

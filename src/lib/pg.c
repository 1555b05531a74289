/* PostgreSQL connections, statements and schema migration over libpq. */
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

static void pg_notice(void *arg, const char *message)
{
	(void)arg;
	log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

int pg_connect(PGconn **out, const char *dsn, const char *app, volatile sig_atomic_t *stop)
{
	return pg_connect_options(out, dsn, app, NULL, stop);
}

int pg_connect_options(PGconn **out, const char *dsn, const char *app, const char *options,
		       volatile sig_atomic_t *stop)
{
	/* Keepalives and a TCP user timeout: a half-open connection fails in
	 * seconds instead of blocking a query forever. These are defaults:
	 * the DSN, expanded last, overrides any of them. */
	const char *keys[] = { "application_name", "connect_timeout", "keepalives",
			       "keepalives_idle", "keepalives_interval", "keepalives_count",
			       "tcp_user_timeout", "options", "dbname", NULL };
	const char *vals[] = { app, "5", "1", "10", "5", "3", "30000", options, dsn, NULL };
	int64_t backoff = 100;
	*out = NULL;
	for (;;) {
		PGconn *c = PQconnectdbParams(keys, vals, 1);
		if (c && PQstatus(c) == CONNECTION_OK) {
			PQsetNoticeProcessor(c, pg_notice, NULL);
			*out = c;
			return 0;
		}
		/* libpq's message names host and port, never the password. */
		const char *msg = c ? PQerrorMessage(c) : "out of memory";
		log_warn("postgres connect failed: %.*s", (int)strcspn(msg, "\n"), msg);
		PQfinish(c);
		if (!stop || *stop)
			return PAYTX_EDB;
		clock_sleep_ms(backoff);
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
	}
}

int pg_dsn_check(const char *dsn)
{
	static const char *const modes[] = { "disable", "allow", "prefer", "require",
					     "verify-ca", "verify-full", NULL };
	char *errmsg = NULL;
	PQconninfoOption *opts = dsn ? PQconninfoParse(dsn, &errmsg) : NULL;
	int err = opts ? 0 : PAYTX_ECONFIG;
	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (strcmp(o->keyword, "sslmode") != 0 || !o->val)
			continue;
		err = PAYTX_ECONFIG;
		for (size_t i = 0; modes[i]; i++)
			if (strcmp(o->val, modes[i]) == 0)
				err = 0;
	}
	PQconninfoFree(opts);
	PQfreemem(errmsg); /* libpq's text may quote the string: never shown */
	return err;
}

static bool pg_result_ok(PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int pg_exec(PGconn *conn, const char *sql)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = pg_result_ok(res);
	if (!ok) {
		const char *msg = PQerrorMessage(conn);
		log_error("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
	}
	PQclear(res);
	return ok ? 0 : PAYTX_EDB;
}

PGresult *pg_query(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (pg_result_ok(res))
		return res;
	const char *msg = PQerrorMessage(conn);
	log_error("postgres: %.*s (sqlstate %s)", (int)strcspn(msg, "\n"), msg,
		  pg_sqlstate(res));
	PQclear(res);
	return NULL;
}

bool pg_broken(PGconn *conn)
{
	return !conn || PQstatus(conn) != CONNECTION_OK;
}

bool pg_reset(PGconn *conn)
{
	PQreset(conn);
	if (pg_broken(conn))
		return false;
	metrics_inc(METRIC_RECONNECTS, "to", "postgres", NULL, NULL, 1);
	return true;
}

const char *pg_sqlstate(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s ? s : "";
}

int pg_migrate(PGconn *conn, const char *schema_sql)
{
	if (pg_exec(conn, "BEGIN") != 0)
		return PAYTX_EDB;
	if (pg_exec(conn, schema_sql) != 0) {
		if (pg_exec(conn, "ROLLBACK") != 0)
			log_warn("postgres: rollback failed");
		return PAYTX_EDB;
	}
	return pg_exec(conn, "COMMIT");
}

/* The recorded version of component as text, "" when there is none. */
static int schema_version(PGconn *conn, const char *component, char *out, size_t size)
{
	const char *params[] = { component };
	out[0] = '\0';
	/* to_regclass: a database never migrated is an answer, not an error. */
	PGresult *r = pg_query(conn, "SELECT to_regclass('paytx_schema') IS NOT NULL", 0, NULL);
	if (!r)
		return PAYTX_EDB;
	bool present = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (!present)
		return 0;
	r = pg_query(conn, "SELECT version FROM paytx_schema WHERE component = $1", 1, params);
	if (!r)
		return PAYTX_EDB;
	if (PQntuples(r) == 1)
		snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

int pg_schema_check(PGconn *conn, const char *component, int version)
{
	char found[16];
	if (schema_version(conn, component, found, sizeof(found)) != 0)
		return PAYTX_EDB;
	if (found[0] && atoi(found) == version)
		return 0;
	if (!found[0])
		log_error("the %s schema is missing from database %s: run `paytxctl migrate` "
			  "(as the owner role) first", component, PQdb(conn));
	else
		log_error("the %s schema of database %s is at version %s, this program needs "
			  "version %d: run `paytxctl migrate` of this release", component,
			  PQdb(conn), found, version);
	return PAYTX_ECONFIG;
}

/* A throw-away PostgreSQL database for the unit tests that need one: made
 * on the server of PAYTX_TEST_PG_DSN (a superuser), dropped at the end.
 * Header-only, like unit.h; used by test_ledger.c, test_risk.c and
 * test_txlog.c. */
#ifndef PAYTX_TEST_PGTEST_H
#define PAYTX_TEST_PGTEST_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg.h"

/* keyword=value DSN for dbname on the server of admin_dsn; 0 or -1. */
static inline int pgtest_dsn_for_db(const char *admin_dsn, const char *dbname, char *out,
				    size_t outsz)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(admin_dsn, &errmsg);
	if (!opts) {
		fprintf(stderr, "PAYTX_TEST_PG_DSN: %s", errmsg ? errmsg : "out of memory\n");
		PQfreemem(errmsg);
		return -1;
	}
	size_t len = 0;
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *val = strcmp(o->keyword, "dbname") == 0 ? NULL : o->val;
		if (!val)
			continue;
		len += (size_t)snprintf(out + len, len < outsz ? outsz - len : 0, "%s='", o->keyword);
		for (const char *c = val; *c; c++)
			len += (size_t)snprintf(out + len, len < outsz ? outsz - len : 0, "%s%c",
						*c == '\'' || *c == '\\' ? "\\" : "", *c);
		len += (size_t)snprintf(out + len, len < outsz ? outsz - len : 0, "' ");
	}
	len += (size_t)snprintf(out + len, len < outsz ? outsz - len : 0, "dbname='%s'", dbname);
	PQconninfoFree(opts);
	return len < outsz ? 0 : -1;
}

static inline int pgtest_admin_exec(const char *admin_dsn, const char *sql)
{
	PGconn *c;
	if (pg_connect(&c, admin_dsn, "pgtest", NULL) != 0)
		return -1;
	int err = pg_exec(c, sql);
	PQfinish(c);
	return err;
}

/* CREATE DATABASE name and its DSN into dsn[dsnsz]; 0 or -1. */
static inline int pgtest_db_create(const char *admin_dsn, const char *name, char *dsn,
				   size_t dsnsz)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	return pgtest_admin_exec(admin_dsn, sql) ||
	       pgtest_dsn_for_db(admin_dsn, name, dsn, dsnsz) ? -1 : 0;
}

static inline void pgtest_db_drop(const char *admin_dsn, const char *name)
{
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
	if (pgtest_admin_exec(admin_dsn, sql) != 0)
		fprintf(stderr, "could not drop test database %s\n", name);
}

/* A test program's own database: paytx_test_<name>_<pid> on the server of
 * PAYTX_TEST_PG_DSN, migrated with schema, then extra (SQL, NULL = none)
 * run in it. Fills *admin (the admin DSN), db and dsn. Returns 0, 77 when
 * no PostgreSQL is configured (the test is skipped, as meson counts 77),
 * or 1 after saying what failed. Drop it with pgtest_db_drop(*admin, db). */
static inline int pgtest_open(const char *name, const char *schema, const char *extra,
			      const char **admin, char *db, size_t dbsz, char *dsn, size_t dsnsz)
{
	*admin = getenv("PAYTX_TEST_PG_DSN");
	if (!*admin || !**admin) {
		printf("PAYTX_TEST_PG_DSN is not set: skipping the %s tests\n", name);
		return 77;
	}
	snprintf(db, dbsz, "paytx_test_%s_%ld", name, (long)getpid());
	if (pgtest_db_create(*admin, db, dsn, dsnsz) != 0) {
		fprintf(stderr, "cannot create test database %s\n", db);
		return 1;
	}
	PGconn *c = NULL;
	int err = pg_connect(&c, dsn, name, NULL);
	if (!err)
		err = pg_migrate(c, schema);
	if (!err && extra)
		err = pg_exec(c, extra);
	PQfinish(c);
	if (err) {
		fprintf(stderr, "cannot set up test database %s\n", db);
		pgtest_db_drop(*admin, db);
		return 1;
	}
	return 0;
}

/* The protocol messages a test's client sends on one connection: start a
 * libpq trace, then count the messages of one kind ("Sync": one per round
 * trip) and stop. */
struct pgtest_trace {
	PGconn *conn;
	FILE *f;
	char *buf;
	size_t len;
};

static inline int pgtest_trace_start(struct pgtest_trace *t, PGconn *conn)
{
	memset(t, 0, sizeof(*t));
	t->conn = conn;
	t->f = open_memstream(&t->buf, &t->len);
	if (!t->f)
		return -1;
	PQtrace(conn, t->f);
	PQsetTraceFlags(conn, PQTRACE_SUPPRESS_TIMESTAMPS);
	return 0;
}

/* Stop and return how many messages called name the client sent. */
static inline int pgtest_trace_stop(struct pgtest_trace *t, const char *name)
{
	PQuntrace(t->conn);
	fclose(t->f);
	int n = 0;
	for (const char *line = t->buf; line && *line; line = strchr(line, '\n'), line += !!line) {
		const char *tab = line[0] == 'F' ? strchr(line + 2, '\t') : NULL;
		if (tab && strncmp(tab + 1, name, strlen(name)) == 0)
			n++;
	}
	free(t->buf);
	return n;
}

#endif

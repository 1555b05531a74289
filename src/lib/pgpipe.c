/* Pipelined PostgreSQL statements: queue, sync, results in order. */
#include "pgpipe.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

void pgpipe_init(struct pgpipe *p)
{
	memset(p, 0, sizeof(*p));
}

void pgpipe_finish(struct pgpipe *p)
{
	free(p->tags);
	memset(p, 0, sizeof(*p));
}

bool pgpipe_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* The pipeline lost track: reset the connection (its transaction dies). */
static int lost(struct pgpipe *p)
{
	log_warn("postgres: the statement pipeline lost track; reconnecting");
	PQreset(p->conn);
	p->active = false;
	p->n = 0;
	return p->err = PAYTX_EDB;
}

static void note(struct pgpipe *p, int err)
{
	if (err && !p->err)
		p->err = err;
}

/* Sync, then hand every unread result to on_result. */
static int drain(struct pgpipe *p)
{
	if (!PQpipelineSync(p->conn))
		return lost(p);
	for (size_t i = 0; i < p->n; i++) {
		PGresult *r = PQgetResult(p->conn);
		if (!r)
			return lost(p);
		if (!pgpipe_ok(r) && PQresultStatus(r) != PGRES_PIPELINE_ABORTED) {
			const char *m = PQresultErrorMessage(r);
			log_error("postgres: %.*s (sqlstate %s)", (int)strcspn(m, "\n"), m,
				  pg_sqlstate(r));
		}
		note(p, pgpipe_ok(r) ? p->on_result(p->arg, p->tags[i], r) : PAYTX_EDB);
		PQclear(r);
		if ((r = PQgetResult(p->conn)) != NULL) { /* each statement ends with NULL */
			PQclear(r);
			return lost(p);
		}
	}
	PGresult *sync = PQgetResult(p->conn);
	bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
	PQclear(sync);
	p->n = 0;
	return synced ? p->err : lost(p);
}

int pgpipe_begin(struct pgpipe *p, PGconn *conn, pgpipe_result_fn on_result, void *arg)
{
	p->conn = conn;
	p->on_result = on_result;
	p->arg = arg;
	p->n = 0;
	p->err = 0;
	if (!PQenterPipelineMode(conn))
		return PAYTX_EDB;
	p->active = true;
	return 0;
}

int pgpipe_send(struct pgpipe *p, const char *sql, int nparams, const char *const *params,
		size_t tag)
{
	if (!p->active)
		return PAYTX_EDB;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : PGPIPE_CHUNK;
		size_t *t = realloc(p->tags, cap * sizeof(*t));
		if (!t)
			return PAYTX_ENOMEM;
		p->tags = t;
		p->cap = cap;
	}
	if (!PQsendQueryParams(p->conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
		const char *m = PQerrorMessage(p->conn);
		log_error("postgres: %.*s", (int)strcspn(m, "\n"), m);
		note(p, PAYTX_EDB);
		return PAYTX_EDB;
	}
	p->tags[p->n++] = tag;
	return p->n >= PGPIPE_CHUNK ? drain(p) : 0;
}

int pgpipe_end(struct pgpipe *p)
{
	if (!p->active)
		return p->err ? p->err : PAYTX_EDB;
	int err = drain(p);
	if (p->active && !PQexitPipelineMode(p->conn))
		return lost(p);
	p->active = false;
	return err;
}

/* Pipelined PostgreSQL statements: queue, sync, results in order. */
#include "grow.h"
#include "pgpipe.h"

#include <stdint.h>
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
	pg_reset(p->conn);
	p->active = false;
	p->n = 0;
	return p->err = PAYTX_EDB;
}

/* The tag of a statement paytx queued for itself (a PREPARE): its result
 * is checked here, not handed to on_result. */
#define TAG_INTERNAL SIZE_MAX

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
		if (!pgpipe_ok(r)) {
			note(p, PAYTX_EDB);
			/* A PREPARE skipped or refused, or a statement missing (a new
			 * server connection that got the old pid): start afresh. */
			p->forget |= p->tags[i] == TAG_INTERNAL ||
				     strcmp(pg_sqlstate(r), "26000") == 0;
		} else if (p->tags[i] != TAG_INTERNAL) {
			note(p, p->on_result(p->arg, p->tags[i], r));
		}
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

static int push_tag(struct pgpipe *p, size_t tag)
{
	size_t *tags = paytx_grow(p->tags, &p->cap, p->n, sizeof(*tags), PGPIPE_CHUNK);
	if (!tags)
		return PAYTX_ENOMEM;
	p->tags = tags;
	p->tags[p->n++] = tag;
	return 0;
}

static int send_failed(struct pgpipe *p)
{
	const char *m = PQerrorMessage(p->conn);
	log_error("postgres: %.*s", (int)strcspn(m, "\n"), m);
	note(p, PAYTX_EDB);
	return PAYTX_EDB;
}

/* After queueing one statement: read results once a chunk is out. */
static int sent(struct pgpipe *p, size_t tag)
{
	int err = push_tag(p, tag);
	if (err)
		return err;
	return p->n >= PGPIPE_CHUNK ? drain(p) : 0;
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
	if (!p->forget)
		return 0;
	p->forget = false;
	p->nprepared = 0;
	if (!PQsendQueryParams(conn, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0))
		return send_failed(p);
	return sent(p, TAG_INTERNAL);
}

int pgpipe_send(struct pgpipe *p, const char *sql, int nparams, const char *const *params,
		size_t tag)
{
	if (!p->active)
		return PAYTX_EDB;
	if (!PQsendQueryParams(p->conn, sql, nparams, NULL, params, NULL, NULL, 0))
		return send_failed(p);
	return sent(p, tag);
}

static bool is_prepared(struct pgpipe *p, const char *name)
{
	int pid = PQbackendPID(p->conn);
	if (pid != p->backend_pid) { /* a new server connection knows none */
		p->backend_pid = pid;
		p->nprepared = 0;
	}
	for (size_t i = 0; i < p->nprepared; i++)
		if (strcmp(p->prepared[i], name) == 0)
			return true;
	return false;
}

int pgpipe_send_prepared(struct pgpipe *p, const char *name, const char *sql, int nparams,
			 const char *const *params, size_t tag)
{
	if (!p->active)
		return PAYTX_EDB;
	if (!is_prepared(p, name)) {
		if (p->nprepared == PGPIPE_PREPARED_MAX)
			return pgpipe_send(p, sql, nparams, params, tag);
		if (!PQsendPrepare(p->conn, name, sql, nparams, NULL))
			return send_failed(p);
		/* Counted as prepared now: a failure fails the batch, and the
		 * connection is then reset (new pid) or the PREPARE is redone. */
		p->prepared[p->nprepared++] = name;
		int err = sent(p, TAG_INTERNAL);
		if (err)
			return err;
	}
	if (!PQsendQueryPrepared(p->conn, name, nparams, params, NULL, NULL, 0))
		return send_failed(p);
	return sent(p, tag);
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

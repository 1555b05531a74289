/* Pipelined statements on one PostgreSQL connection (libpq pipeline mode).
 *
 * Between pgpipe_begin and pgpipe_end, pgpipe_send queues a statement with
 * a caller's tag instead of waiting for its result; results come back in
 * order through the on_result callback, with their tags, when pgpipe_end
 * sends a sync (and every PGPIPE_CHUNK statements before that, which
 * bounds what either side buffers, so neither can block the other on a
 * full socket). A batch of N statements thus costs one network round trip
 * instead of N. Statements run in whatever transaction is open on the
 * connection; after an error in one, the rest of the pipeline is skipped
 * by the server (their results say so) and pgpipe_end returns the first
 * error. If the pipeline loses track (a broken connection, a result where
 * none belongs) the connection is reset: its transaction is gone.
 *
 * Embedded; the PGconn is borrowed; one thread.
 */
#ifndef PAYTX_PGPIPE_H
#define PAYTX_PGPIPE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "paytx/error.h"

#define PGPIPE_CHUNK 64
#define PGPIPE_PREPARED_MAX 16

/* Called once per statement, in order; r is valid only during the call.
 * Tags are the caller's, any value below SIZE_MAX (pgpipe's own).
 * Return 0 or a negative error (the first one is what pgpipe_end returns). */
typedef int (*pgpipe_result_fn)(void *arg, size_t tag, const PGresult *r);

struct pgpipe {
	PGconn *conn;                /* borrowed */
	/* Statements prepared on this server connection (backend_pid): a
	 * statement sent with a name is planned once, not per execution. */
	const char *prepared[PGPIPE_PREPARED_MAX]; /* borrowed literals */
	size_t nprepared;
	int backend_pid;
	bool forget;                 /* a PREPARE failed: start afresh next batch */
	pgpipe_result_fn on_result;
	void *arg;
	size_t *tags;                /* of statements whose results are unread; owned */
	size_t n, cap;
	int err;                     /* first error so far */
	bool active;                 /* in pipeline mode */
};

void pgpipe_init(struct pgpipe *p);
void pgpipe_finish(struct pgpipe *p);

int pgpipe_begin(struct pgpipe *p, PGconn *conn, pgpipe_result_fn on_result,
		 void *arg) PAYTX_MUST_CHECK;
int pgpipe_send(struct pgpipe *p, const char *sql, int nparams, const char *const *params,
		size_t tag) PAYTX_MUST_CHECK;
/* The same as a prepared statement called name (a literal naming this sql
 * for the life of the process): prepared within the pipeline the first
 * time on each server connection, then only executed. */
int pgpipe_send_prepared(struct pgpipe *p, const char *name, const char *sql, int nparams,
			 const char *const *params, size_t tag) PAYTX_MUST_CHECK;
/* Read every outstanding result and leave pipeline mode. Returns the first
 * error of the batch (also when called to clean up after one), 0 if none. */
int pgpipe_end(struct pgpipe *p) PAYTX_MUST_CHECK;
/* True when a statement's result r is a success. */
bool pgpipe_ok(const PGresult *r);

#endif

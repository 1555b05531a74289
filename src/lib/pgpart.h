/* A participant whose steps are SQL functions of its own PostgreSQL
 * database: the ledger shards and paytx-risk. This module is all of the
 * SDK callbacks (paytx/participant.h) for such a participant; what differs
 * is only the SQL it names in a struct pgpart_sql:
 *   prepare ($1 txn, $2 participant, $3 payment_id, $4 legs as jsonb)
 *           returns one row (vote boolean, reason text, detail text);
 *           or, with prepare_set, it takes ($1 participant, $2 a jsonb
 *           array of {txn, payment_id, legs}) and returns a row (txn,
 *           vote, reason, detail) per element, in order;
 *   commit, abort ($1 txn, $2 participant) return one text:
 *           'committed' / 'aborted' / 'already', or 'protocol_violation';
 *           or, with commit_set, commit takes ($1 txns as bigint[], $2
 *           participant) and returns a row (txn, that text) per distinct
 *           txn;
 *   in_doubt ($1 participant, $2 older-than Unix ms, $3 limit) returns txns.
 * Each batch of the SDK is one local transaction, and its steps go in one
 * pipeline of prepared statements (pgpipe) together with its BEGIN and its
 * COMMIT: one round trip for the batch. pgpart_apply only queues the
 * steps; their votes and results are filled when pgpart_batch_commit
 * sends the COMMIT and reads every result (paytx/participant.h allows
 * it). The per-message callbacks (pgpart_prepare, _commit, _abort) apply
 * their step at once, since their result is their return value.
 * Steps run in the batch's order; with commit_set or prepare_set, each run
 * of consecutive commits, or of prepares, is one call of the set form.
 *
 * A struct pgpart owns one PGconn. A participant embeds it as the FIRST
 * member of its own struct and uses PGPART_OPS as its callbacks: the SDK
 * then passes the participant's struct as ctx, which C guarantees is also
 * a pointer to its pgpart. Single-threaded: the thread running
 * paytx_participant_run.
 */
#ifndef PAYTX_PGPART_H
#define PAYTX_PGPART_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"
#include "paytx/participant.h"
#include "pgpipe.h"

/* The participant's step functions, and the names they are prepared as. */
struct pgpart_sql {
	const char *prepare, *prepare_name;
	bool prepare_set;            /* prepare takes a set of steps (above) */
	const char *commit, *commit_name;
	bool commit_set;             /* commit takes a set of txns (above) */
	const char *abort, *abort_name;
	const char *in_doubt;
};

struct pgpart {
	PGconn *conn;                /* owned */
	const char *who;             /* borrowed literal: the module name for logs */
	const struct pgpart_sql *sql; /* borrowed, static */
	char participant[PAYTX_ID_MAX + 1];
	bool in_batch;
	bool begin_pending;          /* in_batch, and BEGIN not sent yet */
	struct pgpipe pipe;          /* the current batch's statements */
	struct paytx_step *queued;   /* borrowed from pgpart_apply until the pipe */
	size_t nqueued;              /* ends: the steps its results go to */
};

/* conn is taken over (closed even on failure); participant is copied. */
int pgpart_init(struct pgpart *p, PGconn *conn, const char *who, const char *participant,
		const struct pgpart_sql *sql) PAYTX_MUST_CHECK;
void pgpart_finish(struct pgpart *p);

/* The SDK callbacks; ctx is a struct pgpart * (or a struct whose first
 * member is one). */
int pgpart_batch_begin(void *ctx);
int pgpart_apply(void *ctx, struct paytx_step *steps, size_t n);
int pgpart_prepare(void *ctx, const struct paytx_prepare *p, struct paytx_vote *vote);
int pgpart_commit(void *ctx, int64_t txn);
int pgpart_abort(void *ctx, int64_t txn);
int pgpart_batch_commit(void *ctx);
void pgpart_batch_rollback(void *ctx);
int pgpart_in_doubt(void *ctx, int64_t older_than_ms, int64_t *txns, size_t max, size_t *n);
int pgpart_reset(void *ctx);

#define PGPART_OPS                                                                   \
	{ .batch_begin = pgpart_batch_begin, .apply = pgpart_apply,                    \
	  .prepare = pgpart_prepare, .commit = pgpart_commit, .abort = pgpart_abort,   \
	  .batch_commit = pgpart_batch_commit, .batch_rollback = pgpart_batch_rollback, \
	  .in_doubt = pgpart_in_doubt, .reset = pgpart_reset }

/* The prepare's legs as a JSON array [{"account","amount","currency"}];
 * the caller frees it. NULL when out of memory. */
char *pgpart_legs_json(const struct paytx_prepare *prep);
/* Are prep's ids, currencies and amounts well formed? 0 or PAYTX_EINVAL. */
int pgpart_prepare_check(const struct paytx_prepare *prep) PAYTX_MUST_CHECK;
/* Copy src into dst[size], truncating; dst is always terminated. */
void pgpart_copy_str(char *dst, size_t size, const char *src);
/* A decimal bigint column value; PAYTX_EDB when it is not one. */
int pgpart_parse_int64(const char *s, int64_t *out) PAYTX_MUST_CHECK;

#endif

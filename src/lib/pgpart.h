/* The plumbing shared by participants whose steps are SQL functions of
 * their own PostgreSQL database (paytx-risk; the ledger has its own copy).
 *
 * A struct pgpart owns one PGconn and the participant's name. Each batch
 * of the SDK is one local transaction (pgpart_batch_begin / _commit /
 * _rollback); commit and abort are one call of a step function that
 * returns 'committed' / 'aborted', 'already' or 'protocol_violation';
 * in-doubt scans call a function returning txns. Single-threaded: the
 * thread running paytx_participant_run. Errors are logged with the name
 * given as who (e.g. "risk").
 */
#ifndef PAYTX_PGPART_H
#define PAYTX_PGPART_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"

struct pgpart {
	PGconn *conn;          /* owned */
	const char *who;       /* borrowed, static: the module name for logs */
	char participant[PAYTX_ID_MAX + 1];
	bool in_batch;
};

/* conn is taken over (closed even on failure); participant is copied. */
int pgpart_init(struct pgpart *p, PGconn *conn, const char *who,
		const char *participant) PAYTX_MUST_CHECK;
void pgpart_finish(struct pgpart *p);

int pgpart_batch_begin(struct pgpart *p) PAYTX_MUST_CHECK;
int pgpart_batch_commit(struct pgpart *p) PAYTX_MUST_CHECK;
void pgpart_batch_rollback(struct pgpart *p);
/* After a failure: reconnect when the connection is gone, else roll back
 * whatever transaction is open. */
int pgpart_reset(struct pgpart *p) PAYTX_MUST_CHECK;

/* Run sql ($1 = txn, $2 = participant) returning one text outcome:
 * 0 for a done or already-done step, PAYTX_EPROTO for
 * 'protocol_violation', PAYTX_EDB on failure. what names the step. */
int pgpart_decide(struct pgpart *p, const char *sql, const char *what,
		  int64_t txn) PAYTX_MUST_CHECK;
/* Run sql ($1 = participant, $2 = older_than_ms, $3 = limit) returning
 * txns; fills up to max of them into txns and sets *n. */
int pgpart_in_doubt(struct pgpart *p, const char *sql, int64_t older_than_ms, int64_t *txns,
		    size_t max, size_t *n) PAYTX_MUST_CHECK;

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

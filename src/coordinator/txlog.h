/* The coordinator's durable log in PostgreSQL (sql/coordinator.sql).
 *
 * Calls between txlog_begin and txlog_commit form one PostgreSQL
 * transaction, so a loop iteration's inserts, decisions and completions
 * cost one forced commit together. Inside it the writes are pipelined
 * (libpq pipeline mode): txlog_insert, _decide, _finish_txn,
 * _outcomes_sent and _decision only queue their statement and remember
 * where their results go; txlog_commit sends what is queued with the
 * COMMIT and fills those results, so a batch costs one network round trip
 * instead of several per payment; a batch's decisions are one statement,
 * and so are its finishes. Every result pointer must stay valid
 * until txlog_commit (or txlog_sync) returns. A payment is two rows: its request
 * (payment_requests), inserted once and never updated, and its narrow 2PC
 * state (payment_states), which each step rewrites in place (HOT) since no
 * index covers what a step changes. Leases: each coordinator owns the open
 * payments it inserted or adopted and renews them; rows whose lease expired
 * are adopted by whoever asks first. A struct txlog owns its PGconn and is
 * used from the coordinator's thread only.
 */
#ifndef PAYTX_TXLOG_H
#define PAYTX_TXLOG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"
#include "pgpipe.h"

struct txlog_op;
struct txlog_step;

/* Server options for the log's connection (pg_connect_options). Its
 * statements look payments up by key, one or a batch's at a time. A plan
 * that reads a table whole to hash or merge a batch against it is the
 * cheaper one only while the table is tiny, and a generic plan made then
 * is kept while the table grows: so the log's plans are index lookups. */
#define TXLOG_PG_OPTIONS                                                        \
	"-c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off " \
	"-c plan_cache_mode=force_generic_plan"

struct txlog {
	PGconn *conn;                /* owned */
	char owner[128];
	int64_t lease_ms;
	bool in_tx;
	struct pgpipe pipe;          /* the writes between begin and commit */
	struct txlog_op *ops;        /* queued statements and their results; owned */
	size_t nops, cap;
	int64_t *marks;              /* outcomes to mark sent at commit; owned */
	size_t nmarks, marks_cap;
	/* Decisions and finishes of the batch, sent as one statement each
	 * (per kind, not per payment) at txlog_sync or txlog_commit; owned. */
	struct txlog_step *decides, *finishes;
	size_t ndecides, decides_cap, nfinishes, finishes_cap;
};

enum txlog_insert {
	TXLOG_NEW,                   /* first time: *txn assigned */
	TXLOG_DUP_OPEN,              /* same content, still in flight: waiter added */
	TXLOG_DUP_FINAL,             /* same content, finished: *row has the outcome */
	TXLOG_CONFLICT,              /* same id, other content */
};

/* A payment row as read back for duplicates, status and recovery. */
struct txlog_row {
	int64_t txn;
	char payment_id[PAYTX_ID_MAX + 1];
	char state[16];
	char reason[PAYTX_REASON_MAX];
	char detail[PAYTX_DETAIL_MAX];
	char owner[128];
	int64_t submitted_ms;
	int64_t finished_ms;         /* 0 while open */
	bool outcome_sent;
	char *request;               /* owned, heap; only filled by txlog_adopt */
	char *waiters;               /* owned, heap JSON array; only by txlog_finish */
	char reply_to[256];
	char correlation_id[256];
	bool extra_known;            /* false in rows logged before schema 2 */
	char extra[256];             /* the further participants it was prepared on */
	char traceparent[64];        /* the submit's W3C traceparent, "" if none */
};

void txlog_row_finish(struct txlog_row *r);

/* conn is taken over; owner is copied. */
void txlog_init(struct txlog *l, PGconn *conn, const char *owner, int64_t lease_ms);
void txlog_finish(struct txlog *l);

/* If the connection is broken (PostgreSQL restarted), make it again; one
 * attempt, so callers retry on their own schedule. */
void txlog_heal(struct txlog *l);

int txlog_begin(struct txlog *l) PAYTX_MUST_CHECK;
/* Send every queued statement, fill their results, leave pipeline mode;
 * the transaction stays open (for a look inside it before txlog_commit:
 * the loop itself does not need it). At most once, after the last queued
 * write. On an error the transaction is lost: roll back, redo the batch. */
int txlog_sync(struct txlog *l) PAYTX_MUST_CHECK;
/* Commit the batch: with what is still queued, in one exchange, and fill
 * its results. On an error nothing may be assumed of the batch (it may
 * have committed, its reply lost): redo it. durable: false lets the
 * commit skip the WAL flush (completions only). */
int txlog_commit(struct txlog *l, bool durable) PAYTX_MUST_CHECK;
void txlog_rollback(struct txlog *l);

/* Record a submit. p, reply_to and correlation_id are borrowed until
 * txlog_commit; canonical is its canonical form (used at once). extra: the
 * further participants (PAYTX_PARTICIPANTS, comma-separated) it will be
 * prepared on, so that whoever adopts it decides on exactly those;
 * traceparent: the submit's, carried on every message about the payment. */
int txlog_insert(struct txlog *l, const struct paytx_payment *p, const char *canonical,
		 const char *reply_to, const char *correlation_id, const char *extra,
		 const char *traceparent, int64_t submitted_ms, enum txlog_insert *res,
		 int64_t *txn, struct txlog_row *row) PAYTX_MUST_CHECK;
/* Record a decision; *logged_commit is the decision that is in the log
 * (another coordinator's if it was first). row gets the payment's reply
 * targets (waiters on the heap) so an abort can be answered at once.
 * reason and detail are borrowed until txlog_commit (or txlog_sync). */
int txlog_decide(struct txlog *l, int64_t txn, bool commit, const char *reason,
		 const char *detail, bool *logged_commit, struct txlog_row *row) PAYTX_MUST_CHECK;
/* Mark the payment finished; returns its waiters (row->waiters, reply_to,
 * correlation_id, submitted_ms) for the outcome replies. If its outcome
 * was marked sent earlier in the batch (txlog_outcomes_sent), the mark is
 * written by this same update (row->outcome_sent is then true). */
int txlog_finish_txn(struct txlog *l, int64_t txn, bool commit, struct txlog_row *row) PAYTX_MUST_CHECK;
/* Mark the outcomes of txns[0..n) as sent: one statement at txlog_commit for
 * those no txlog_finish_txn of the batch took over. Call it before the
 * batch's finishes. */
int txlog_outcomes_sent(struct txlog *l, const int64_t *txns, size_t n) PAYTX_MUST_CHECK;
/* Look up a decision: *found false when none is logged. It reads the log
 * as it was before the batch's decisions (they are sent at the commit). */
int txlog_decision(struct txlog *l, int64_t txn, bool *found, bool *commit,
		   char *payment_id) PAYTX_MUST_CHECK;

/* Renew this owner's leases (own transaction). */
int txlog_renew(struct txlog *l) PAYTX_MUST_CHECK;
/* Take over open rows whose lease expired, or that this owner held before
 * (all_mine). Calls fn for each adopted row. Own transaction. */
int txlog_adopt(struct txlog *l, bool all_mine, int (*fn)(void *arg, struct txlog_row *row),
		void *arg) PAYTX_MUST_CHECK;
/* Status of one payment (PAYTX_ENOTFOUND). */
int txlog_get(struct txlog *l, const char *payment_id, struct txlog_row *row) PAYTX_MUST_CHECK;

#endif

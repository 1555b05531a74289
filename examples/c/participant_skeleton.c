/* A minimal participant on the C SDK: votes no on any leg above a cap.
 *
 * Only the public header paytx/participant.h and libpq: the SDK does all
 * the AMQP (consume, verify, batch, reply with confirms, ack, dead-letter,
 * status queries). The state is one barrier table in PostgreSQL:
 *     CREATE TABLE barrier (txn bigint PRIMARY KEY, state text NOT NULL,
 *                           reason text, updated_at timestamptz DEFAULT now());
 * Every callback reads and writes it inside the batch's transaction, so a
 * duplicate, a re-sent or a reordered message always gets the same answer.
 * Built (not installed) so that docs/participants.md cannot rot.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "paytx/participant.h"

#define CAP 100000 /* minor units per leg */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* One statement; 0 when it succeeded. rows (may be NULL) gets the result. */
static int sql(PGconn *db, const char *q, int n, const char *const *args, PGresult **rows)
{
	PGresult *r = PQexecParams(db, q, n, NULL, args, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
	if (ok && rows)
		*rows = r;
	else
		PQclear(r);
	return ok ? 0 : PAYTX_EDB;
}

static int batch_begin(void *ctx)
{
	return sql(ctx, "BEGIN", 0, NULL, NULL);
}

static int prepare(void *ctx, const struct paytx_prepare *p, struct paytx_vote *vote)
{
	char txn[24];
	PGresult *r;
	snprintf(txn, sizeof(txn), "%lld", (long long)p->txn);
	const char *args[] = { txn, NULL };
	/* 1. The barrier first: a txn seen before gets the same vote again. */
	if (sql(ctx, "SELECT state, reason FROM barrier WHERE txn = $1", 1, args, &r))
		return PAYTX_EDB;
	if (PQntuples(r) == 1) {
		const char *state = PQgetvalue(r, 0, 0);
		vote->yes = strcmp(state, "prepared") == 0 || strcmp(state, "committed") == 0;
		if (!vote->yes) /* refused, or aborted before this prepare arrived */
			snprintf(vote->reason, sizeof(vote->reason), "%s",
				 PQgetisnull(r, 0, 1) ? "aborted" : PQgetvalue(r, 0, 1));
		PQclear(r);
		return 0;
	}
	PQclear(r);
	/* 2. Decide, and record the vote in the same transaction. */
	vote->yes = true;
	for (size_t i = 0; i < p->nlegs; i++)
		if (p->legs[i].amount > CAP || p->legs[i].amount < -CAP)
			vote->yes = false;
	if (!vote->yes) {
		snprintf(vote->reason, sizeof(vote->reason), "limit_exceeded");
		snprintf(vote->detail, sizeof(vote->detail), "a leg is above %d", CAP);
	}
	args[1] = vote->yes ? NULL : vote->reason;
	return sql(ctx, vote->yes ? "INSERT INTO barrier (txn, state) VALUES ($1, 'prepared')"
		   : "INSERT INTO barrier (txn, state, reason) VALUES ($1, 'refused', $2)",
		   vote->yes ? 1 : 2, args, NULL);
}

/* Apply a decision; PAYTX_EPROTO when the barrier's state forbids it. */
static int decide(void *ctx, int64_t txn_id, const char *q)
{
	char txn[24];
	PGresult *r;
	snprintf(txn, sizeof(txn), "%lld", (long long)txn_id);
	const char *args[] = { txn };
	if (sql(ctx, q, 1, args, &r))
		return PAYTX_EDB;
	int n = PQntuples(r);
	PQclear(r);
	return n == 1 ? 0 : PAYTX_EPROTO;
}

static int commit(void *ctx, int64_t txn)
{
	/* Only after our yes vote; a second commit is a no-op. */
	return decide(ctx, txn, "UPDATE barrier SET state = 'committed', updated_at = now() "
		      "WHERE txn = $1 AND state IN ('prepared', 'committed') RETURNING 1");
}

static int abort_txn(void *ctx, int64_t txn)
{
	/* Also without a prepare: the row then makes the late prepare vote no.
	 * Never after a commit. */
	return decide(ctx, txn, "INSERT INTO barrier (txn, state) VALUES ($1, 'aborted') "
		      "ON CONFLICT (txn) DO UPDATE SET state = 'aborted', updated_at = now() "
		      "WHERE barrier.state <> 'committed' RETURNING 1");
}

static int batch_commit(void *ctx)
{
	/* COMMIT of a failed transaction answers ROLLBACK: not durable. */
	PGresult *r = PQexec(ctx, "COMMIT");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
	PQclear(r);
	return ok ? 0 : PAYTX_EDB;
}

static void batch_rollback(void *ctx)
{
	PQclear(PQexec(ctx, "ROLLBACK"));
}

static int in_doubt(void *ctx, int64_t older_than_ms, int64_t *txns, size_t max, size_t *n)
{
	char older[24];
	PGresult *r;
	snprintf(older, sizeof(older), "%lld", (long long)older_than_ms);
	const char *args[] = { older };
	*n = 0;
	if (sql(ctx, "SELECT txn FROM barrier WHERE state = 'prepared' "
		"AND updated_at < to_timestamp($1 / 1000.0) ORDER BY updated_at LIMIT 256",
		1, args, &r))
		return PAYTX_EDB;
	for (int i = 0; i < PQntuples(r) && *n < max; i++)
		txns[(*n)++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
	PQclear(r);
	return 0;
}

static int reset(void *ctx)
{
	if (PQstatus(ctx) != CONNECTION_OK)
		PQreset(ctx);
	return PQstatus(ctx) == CONNECTION_OK ? 0 : PAYTX_EDB;
}

static const struct paytx_participant_ops ops = {
	.batch_begin = batch_begin, .prepare = prepare, .commit = commit,
	.abort = abort_txn, .batch_commit = batch_commit, .batch_rollback = batch_rollback,
	.in_doubt = in_doubt, .reset = reset,
};

int main(void)
{
	struct paytx_participant_config cfg = {
		.name = getenv("PAYTX_PARTICIPANT"),
		.amqp_url = getenv("PAYTX_AMQP_URL"),
		.hmac_key = getenv("PAYTX_HMAC_KEY"),
		.prefetch = 256, .batch_max = 64,
		.status_after_ms = 15000, .replay_window_s = 900,
	};
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	PGconn *db = PQconnectdb(getenv("PAYTX_PG_DSN") ? getenv("PAYTX_PG_DSN") : "");
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to PostgreSQL\n");
		PQfinish(db);
		return 1;
	}
	int err = paytx_participant_run(&cfg, &ops, db, &stop);
	PQfinish(db);
	if (err)
		fprintf(stderr, "participant: %s\n", paytx_strerror(err));
	return err ? 1 : 0;
}

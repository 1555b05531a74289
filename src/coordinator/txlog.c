/* The coordinator's durable 2PC log and leases in PostgreSQL. */
#include "grow.h"
#include "txlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "log.h"
#include "pg.h"
#include "pgpipe.h"

/* A payment is its request r (payment_requests, never updated) and its
 * state s (payment_states, the narrow row every step rewrites). */
#define ROW_COLS                                                                            \
	"s.txn, r.payment_id, s.state, s.reason, s.detail, s.owner, "                       \
	"(extract(epoch from r.submitted_at) * 1000)::bigint, "                             \
	"coalesce((extract(epoch from s.finished_at) * 1000)::bigint, 0), s.outcome_sent, " \
	"coalesce(r.reply_to, ''), coalesce(r.correlation_id, ''), r.request, "            \
	"s.waiters::text, r.participants IS NOT NULL, coalesce(r.participants, ''), "       \
	"coalesce(r.traceparent, '')"
#define ROW_NCOLS 16 /* the first column after ROW_COLS */
#define ROW_FROM "payment_requests r JOIN payment_states s ON s.txn = r.txn"

static void copy_field(char *dst, size_t n, const PGresult *res, int row, int col)
{
	snprintf(dst, n, "%s", PQgetvalue(res, row, col));
}

static void row_read(const PGresult *res, int i, struct txlog_row *r, bool heap)
{
	memset(r, 0, sizeof(*r));
	r->txn = strtoll(PQgetvalue(res, i, 0), NULL, 10);
	copy_field(r->payment_id, sizeof(r->payment_id), res, i, 1);
	copy_field(r->state, sizeof(r->state), res, i, 2);
	copy_field(r->reason, sizeof(r->reason), res, i, 3);
	copy_field(r->detail, sizeof(r->detail), res, i, 4);
	copy_field(r->owner, sizeof(r->owner), res, i, 5);
	r->submitted_ms = strtoll(PQgetvalue(res, i, 6), NULL, 10);
	r->finished_ms = strtoll(PQgetvalue(res, i, 7), NULL, 10);
	r->outcome_sent = PQgetvalue(res, i, 8)[0] == 't';
	copy_field(r->reply_to, sizeof(r->reply_to), res, i, 9);
	copy_field(r->correlation_id, sizeof(r->correlation_id), res, i, 10);
	if (heap) {
		r->request = strdup(PQgetvalue(res, i, 11));
		r->waiters = strdup(PQgetvalue(res, i, 12));
	}
	r->extra_known = PQgetvalue(res, i, 13)[0] == 't';
	copy_field(r->extra, sizeof(r->extra), res, i, 14);
	copy_field(r->traceparent, sizeof(r->traceparent), res, i, 15);
}

static void sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void txlog_row_finish(struct txlog_row *r)
{
	free(r->request);
	free(r->waiters);
	r->request = NULL;
	r->waiters = NULL;
}

void txlog_init(struct txlog *l, PGconn *conn, const char *owner, int64_t lease_ms)
{
	memset(l, 0, sizeof(*l));
	l->conn = conn;
	snprintf(l->owner, sizeof(l->owner), "%s", owner);
	l->lease_ms = lease_ms;
}

void txlog_finish(struct txlog *l)
{
	PQfinish(l->conn);
	l->conn = NULL;
	free(l->ops);
	l->ops = NULL;
	free(l->marks);
	l->marks = NULL;
	free(l->decides);
	free(l->finishes);
	l->decides = l->finishes = NULL;
	pgpipe_finish(&l->pipe);
}

void txlog_heal(struct txlog *l)
{
	if (!pg_broken(l->conn))
		return;
	if (pg_reset(l->conn))
		log_info("postgres: coordinator log reconnected");
	else
		log_warn("postgres: coordinator log still unreachable");
	l->in_tx = false;
	l->pipe.active = false;
}

/* ---- pipelined writes ---------------------------------------------------- */

enum op_kind { OP_PLAIN, OP_INSERT, OP_DECIDES, OP_FINISHES, OP_DECISION, OP_COMMIT };

/* A decision or a finish, waiting to be sent with the others of its kind. */
struct txlog_step {
	int64_t txn;
	bool commit;                      /* decide: asked for; finish: the outcome */
	bool mark;                        /* finish: its outcome was marked sent */
	const char *reason, *detail;      /* decide; borrowed */
	bool *logged_commit;              /* decide */
	struct txlog_row *row;
	bool filled;
};

/* A queued statement and where its result goes (all borrowed). */
struct txlog_op {
	enum op_kind kind;
	const struct paytx_payment *pay;  /* OP_INSERT: for a follow-up */
	const char *reply_to, *corr;
	char hash[65];
	enum txlog_insert *res;
	int64_t *txn;
	struct txlog_row *row;            /* OP_INSERT (follow-up) */
	struct txlog_step *steps;         /* OP_DECIDES, _FINISHES: sorted by txn */
	size_t nsteps;
	bool *commit;                     /* OP_DECISION */
	bool *found;                      /* OP_DECISION */
	char *payment_id;                 /* OP_DECISION: PAYTX_ID_MAX + 1 bytes */
	bool follow;                      /* OP_INSERT: the payment_id was taken */
};

/* One row per distinct txn of a set statement's steps: fill each step of
 * that txn (the steps are sorted by txn). A step without a row is missing
 * from the log or not yet visible (a concurrent decision): retry. */
static int steps_result(const struct txlog_op *op, const PGresult *r)
{
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t txn = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		size_t lo = 0, hi = op->nsteps;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (op->steps[mid].txn < txn)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t j = lo; j < op->nsteps && op->steps[j].txn == txn; j++) {
			struct txlog_step *st = &op->steps[j];
			if (st->filled)
				continue;
			row_read(r, i, st->row, true);
			st->filled = true;
			if (!st->row->request || !st->row->waiters)
				return PAYTX_ENOMEM;
			if (op->kind == OP_DECIDES)
				*st->logged_commit = PQgetvalue(r, i, ROW_NCOLS)[0] == 't';
		}
	}
	for (size_t j = 0; j < op->nsteps; j++)
		if (!op->steps[j].filled)
			return PAYTX_EDB;
	return 0;
}

/* Fill an op's outputs from its (successful) result; a pgpipe_result_fn. */
static int op_result(void *arg, size_t tag, const PGresult *r)
{
	struct txlog *l = arg;
	struct txlog_op *op = &l->ops[tag];
	switch (op->kind) {
	case OP_PLAIN:
		return 0;
	case OP_INSERT:
		op->follow = PQntuples(r) == 0; /* look at the existing row after */
		if (!op->follow) {
			*op->txn = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
			*op->res = TXLOG_NEW;
		}
		return 0;
	case OP_DECIDES:
	case OP_FINISHES:
		return steps_result(op, r);
	case OP_DECISION:
		*op->found = PQntuples(r) == 1;
		if (*op->found) {
			*op->commit = PQgetvalue(r, 0, 0)[0] == 't';
			snprintf(op->payment_id, PAYTX_ID_MAX + 1, "%s", PQgetvalue(r, 0, 1));
		}
		return 0;
	case OP_COMMIT:
		/* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
		if (strcmp(PQcmdStatus((PGresult *)r), "COMMIT") == 0)
			return 0;
		log_error("postgres: coordinator log batch was rolled back by the server");
		return PAYTX_EDB;
	}
	return PAYTX_EDB;
}

/* Queue one statement; name (a literal) makes it a prepared statement. */
static int queue(struct txlog *l, const char *name, const char *sql, int n,
		 const char *const *params, const struct txlog_op *op)
{
	struct txlog_op *ops = paytx_grow(l->ops, &l->cap, l->nops, sizeof(*ops), 64);
	if (!ops)
		return PAYTX_ENOMEM;
	l->ops = ops;
	l->ops[l->nops] = *op;
	size_t tag = l->nops++;
	return name ? pgpipe_send_prepared(&l->pipe, name, sql, n, params, tag)
		    : pgpipe_send(&l->pipe, sql, n, params, tag);
}

int txlog_begin(struct txlog *l)
{
	l->nops = 0;
	l->nmarks = 0;
	l->ndecides = l->nfinishes = 0;
	int err = pgpipe_begin(&l->pipe, l->conn, op_result, l);
	l->in_tx = err == 0;
	return err ? err : queue(l, NULL, "BEGIN", 0, NULL, &(struct txlog_op){ .kind = OP_PLAIN });
}

/* The payment_id exists: same content (duplicate) or not (conflict)? */
static int insert_existing(struct txlog *l, const struct txlog_op *op)
{
	const struct paytx_payment *p = op->pay;
	const char *sel[] = { p->payment_id };
	PGresult *r = pg_query(l->conn, "SELECT " ROW_COLS ", r.request_hash FROM " ROW_FROM
			       " WHERE r.payment_id = $1", 1, sel);
	if (!r || PQntuples(r) != 1) {
		PQclear(r);
		return PAYTX_EDB;
	}
	row_read(r, 0, op->row, false);
	bool same = strcmp(PQgetvalue(r, 0, ROW_NCOLS), op->hash) == 0;
	PQclear(r);
	*op->txn = op->row->txn;
	if (!same) {
		*op->res = TXLOG_CONFLICT;
		return 0;
	}
	const char *state = op->row->state;
	bool open = strcmp(state, "committed") != 0 && strcmp(state, "aborted") != 0;
	*op->res = open ? TXLOG_DUP_OPEN : TXLOG_DUP_FINAL;
	if (!open || !op->reply_to || !*op->reply_to)
		return 0;
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, op->row->txn);
	const char *upd[] = { id, op->reply_to, op->corr ? op->corr : "" };
	r = pg_query(l->conn, "UPDATE payment_states SET waiters = waiters || "
		     "jsonb_build_array(jsonb_build_object('reply_to', $2::text, "
		     "'correlation_id', $3::text)) WHERE txn = $1", 3, upd);
	PQclear(r);
	return r ? 0 : PAYTX_EDB;
}

/* Array literals for the set statements' parameters. */
static int array_sep(struct paytx_buf *b)
{
	return paytx_buf_append(b, b->len ? "," : "{", 1);
}

static int array_int(struct paytx_buf *b, int64_t v)
{
	char num[24];
	int len = snprintf(num, sizeof(num), "%" PRId64, v);
	int err = array_sep(b);
	return err ? err : paytx_buf_append(b, num, (size_t)len);
}

static int array_bool(struct paytx_buf *b, bool v)
{
	int err = array_sep(b);
	return err ? err : paytx_buf_append(b, v ? "t" : "f", 1);
}

/* A text element: quoted, with its quotes and backslashes escaped. */
static int array_text(struct paytx_buf *b, const char *s)
{
	int err = array_sep(b);
	if (!err)
		err = paytx_buf_append(b, "\"", 1);
	while (!err && *s) {
		size_t span = strcspn(s, "\"\\");
		err = paytx_buf_append(b, s, span);
		s += span;
		if (!err && *s) {
			char esc[2] = { '\\', *s++ };
			err = paytx_buf_append(b, esc, 2);
		}
	}
	return err ? err : paytx_buf_append(b, "\"", 1);
}

static int array_close(struct paytx_buf *b)
{
	/* The buffer stays NUL-terminated. */
	return paytx_buf_append(b, b->len ? "}" : "{}", b->len ? 1 : 2);
}

static int step_cmp(const void *a, const void *b)
{
	int64_t x = ((const struct txlog_step *)a)->txn, y = ((const struct txlog_step *)b)->txn;
	return (x > y) - (x < y);
}

/* The batch's decisions as one statement: each one's decision (or the one
 * already logged, maybe by another coordinator), the payment's new state,
 * and its row back for answering an abort at once. The statement's
 * snapshot sees the decisions logged before it, not those it inserts; and
 * the states before it, so a payment the update skipped is read as it was
 * (one the update skipped although it was preparing, because another
 * coordinator changed it meanwhile, has no row: retried). Every join is
 * driven by the batch, never a batch against a batch. The commit flag is
 * the last column. */
#define DECIDES_SQL                                                                          \
	"WITH f AS (SELECT * FROM unnest($1::bigint[], $2::boolean[], $3::text[], $4::text[]) " \
	"  AS f(txn, commit, reason, detail)), "                                            \
	"ins AS (INSERT INTO decisions (txn, commit, reason, detail, decided_by) "           \
	"  SELECT f.txn, f.commit, f.reason, f.detail, $5 FROM f "                           \
	"  ON CONFLICT (txn) DO NOTHING RETURNING txn, commit, reason, detail), "            \
	"d AS (SELECT * FROM ins UNION ALL SELECT o.txn, o.commit, o.reason, o.detail "      \
	"  FROM decisions o WHERE o.txn = ANY ($1::bigint[])), "                             \
	"u AS (UPDATE payment_states p SET state = CASE WHEN d.commit THEN 'committing' "    \
	"  ELSE 'aborting' END, decided_at = now(), reason = d.reason, detail = d.detail "   \
	"  FROM d WHERE p.txn = d.txn AND p.state = 'preparing' "                           \
	"  RETURNING p.*, d.commit AS d_commit) "                                            \
	"SELECT " ROW_COLS ", s.d_commit FROM (SELECT * FROM u UNION ALL "                   \
	"  SELECT q.*, d.commit FROM d JOIN payment_states q ON q.txn = d.txn "              \
	"  WHERE q.state <> 'preparing') s JOIN payment_requests r ON r.txn = s.txn"

/* The batch's finishes as one statement; a finish whose outcome was
 * marked sent in the batch writes the mark too. */
#define FINISHES_SQL                                                                        \
	"UPDATE payment_states s SET state = CASE WHEN f.commit THEN 'committed' "          \
	"  ELSE 'aborted' END, finished_at = coalesce(s.finished_at, now()), "              \
	"  outcome_sent = s.outcome_sent OR f.mark "                                        \
	"FROM unnest($1::bigint[], $2::boolean[], $3::boolean[]) AS f(txn, commit, mark), " \
	"  payment_requests r WHERE s.txn = f.txn AND r.txn = f.txn RETURNING " ROW_COLS

/* Queue steps[0..n) of one kind as one statement; its result fills them. */
static int queue_steps(struct txlog *l, enum op_kind kind, struct txlog_step *steps, size_t n)
{
	if (!n)
		return 0;
	qsort(steps, n, sizeof(*steps), step_cmp);
	bool decides = kind == OP_DECIDES;
	struct paytx_buf a[4];
	for (int k = 0; k < 4; k++)
		paytx_buf_init(&a[k]);
	int err = 0;
	for (size_t i = 0; !err && i < n; i++) {
		err = array_int(&a[0], steps[i].txn);
		if (!err)
			err = array_bool(&a[1], steps[i].commit);
		if (!err)
			err = decides ? array_text(&a[2], steps[i].reason) : array_bool(&a[2], steps[i].mark);
		if (!err && decides)
			err = array_text(&a[3], steps[i].detail);
	}
	for (int k = 0; !err && k < (decides ? 4 : 3); k++)
		err = array_close(&a[k]);
	const char *params[] = { a[0].data, a[1].data, a[2].data, decides ? a[3].data : NULL,
				 l->owner };
	const struct txlog_op op = { .kind = kind, .steps = steps, .nsteps = n };
	if (!err)
		err = decides ? queue(l, "paytx_txlog_decides", DECIDES_SQL, 5, params, &op)
			      : queue(l, "paytx_txlog_finishes", FINISHES_SQL, 3, params, &op);
	for (int k = 0; k < 4; k++)
		paytx_buf_finish(&a[k]);
	return err ? (err == PAYTX_ENOMEM ? err : PAYTX_EDB) : 0;
}

/* What the batch decided and finished: one statement per kind. The step
 * arrays stay as they are until the results are read (nothing is added
 * between here and the end of the pipeline). */
static int queue_sets(struct txlog *l)
{
	int err = queue_steps(l, OP_DECIDES, l->decides, l->ndecides);
	if (!err)
		err = queue_steps(l, OP_FINISHES, l->finishes, l->nfinishes);
	l->ndecides = l->nfinishes = 0;
	return err;
}

/* Queue the marks no finish took over, as one statement. */
static int queue_marks(struct txlog *l)
{
	if (!l->nmarks)
		return 0;
	struct paytx_buf arr;
	paytx_buf_init(&arr);
	int err = 0;
	for (size_t i = 0; !err && i < l->nmarks; i++)
		err = array_int(&arr, l->marks[i]);
	if (!err)
		err = array_close(&arr);
	const char *params[] = { arr.data };
	if (!err)
		err = queue(l, "paytx_txlog_sent",
			    "UPDATE payment_states SET outcome_sent = true "
			    "WHERE txn = ANY($1::bigint[])",
			    1, params, &(struct txlog_op){ .kind = OP_PLAIN });
	paytx_buf_finish(&arr);
	l->nmarks = 0;
	return err ? (err == PAYTX_ENOMEM ? err : PAYTX_EDB) : 0;
}

/* Submits whose payment_id was taken: what is there, one by one (they
 * are rare), in the transaction still open or, after the COMMIT, each in
 * its own (a waiter added then is durable before the submit is acked). */
static int follow_ups(struct txlog *l)
{
	int err = 0;
	for (size_t i = 0; !err && i < l->nops; i++)
		if (l->ops[i].kind == OP_INSERT && l->ops[i].follow)
			err = insert_existing(l, &l->ops[i]);
	l->nops = 0;
	return err;
}

int txlog_sync(struct txlog *l)
{
	int err = queue_sets(l);
	if (!err)
		err = queue_marks(l);
	int end = pgpipe_end(&l->pipe);
	err = err ? err : end;
	return err ? err : follow_ups(l);
}

/* The queued statements (none after txlog_sync), then (SET LOCAL and)
 * COMMIT, in one exchange. A result the loop cannot use after the server
 * committed is a commit whose reply was lost: the caller redoes the batch,
 * whose steps are idempotent. */
int txlog_commit(struct txlog *l, bool durable)
{
	const struct txlog_op plain = { .kind = OP_PLAIN }, commit = { .kind = OP_COMMIT };
	int err = l->pipe.active ? 0 : pgpipe_begin(&l->pipe, l->conn, op_result, l);
	if (!err)
		err = queue_sets(l);
	if (!err)
		err = queue_marks(l);
	if (!err && !durable)
		err = queue(l, NULL, "SET LOCAL synchronous_commit = off", 0, NULL, &plain);
	if (!err)
		err = queue(l, NULL, "COMMIT", 0, NULL, &commit);
	int end = pgpipe_end(&l->pipe);
	err = err ? err : end;
	if (err) {
		l->nops = 0;
		txlog_rollback(l);
		return err;
	}
	l->in_tx = false;
	return follow_ups(l);
}

void txlog_rollback(struct txlog *l)
{
	/* Drain what is queued so the connection can leave pipeline mode. */
	if (l->pipe.active && !pg_broken(l->conn) && pgpipe_end(&l->pipe) && l->pipe.active)
		log_warn("postgres: could not leave pipeline mode");
	l->nops = 0;
	l->nmarks = 0;
	l->ndecides = l->nfinishes = 0;
	if (l->in_tx && !pg_broken(l->conn) && PQtransactionStatus(l->conn) != PQTRANS_IDLE)
		if (pg_exec(l->conn, "ROLLBACK") != 0)
			log_warn("postgres: rollback failed");
	l->in_tx = false;
}

int txlog_insert(struct txlog *l, const struct paytx_payment *p, const char *canonical,
		 const char *reply_to, const char *correlation_id, const char *extra,
		 const char *traceparent, int64_t submitted_ms, enum txlog_insert *res,
		 int64_t *txn, struct txlog_row *row)
{
	char lease[32], ts[32];
	struct paytx_buf req;
	struct paytx_payment bare = *p;
	struct txlog_op op = { .kind = OP_INSERT, .pay = p, .reply_to = reply_to,
			       .corr = correlation_id, .res = res, .txn = txn, .row = row };
	bare.metadata = NULL;
	paytx_buf_init(&req);
	if (paytx_payment_encode(&bare, &req) != 0) {
		paytx_buf_finish(&req);
		return PAYTX_ENOMEM;
	}
	sha256_hex(canonical, op.hash);
	snprintf(lease, sizeof(lease), "%" PRId64, l->lease_ms);
	snprintf(ts, sizeof(ts), "%" PRId64, submitted_ms);
	const char *params[] = { p->payment_id, op.hash, req.data, p->metadata,
				 reply_to && *reply_to ? reply_to : NULL,
				 correlation_id && *correlation_id ? correlation_id : NULL,
				 l->owner, lease, ts, extra,
				 traceparent && *traceparent ? traceparent : NULL };
	/* libpq copies the parameters into its buffer: req can go now. The
	 * state row is inserted only with a new request, by the same statement. */
	int err = queue(l, "paytx_txlog_insert",
		"WITH r AS (INSERT INTO payment_requests (payment_id, request_hash, request, "
		"  metadata, reply_to, correlation_id, submitted_at, participants, traceparent) "
		"  VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($9::bigint / 1000.0), $10, $11) "
		"  ON CONFLICT (payment_id) DO NOTHING RETURNING txn) "
		"INSERT INTO payment_states (txn, state, owner, lease_until) "
		"SELECT txn, 'preparing', $7, now() + $8::bigint * interval '1 millisecond' FROM r "
		"RETURNING txn", 11, params, &op);
	paytx_buf_finish(&req);
	return err;
}

/* Append a step to steps[0..*n) (capacity *cap). */
static int step_add(struct txlog *l, struct txlog_step **steps, size_t *n, size_t *cap,
		    const struct txlog_step *st)
{
	if (!l->pipe.active)
		return PAYTX_EDB;
	struct txlog_step *grown = paytx_grow(*steps, cap, *n, sizeof(*grown), 64);
	if (!grown)
		return PAYTX_ENOMEM;
	*steps = grown;
	grown[(*n)++] = *st;
	return 0;
}

int txlog_decide(struct txlog *l, int64_t txn, bool commit, const char *reason,
		 const char *detail, bool *logged_commit, struct txlog_row *row)
{
	return step_add(l, &l->decides, &l->ndecides, &l->decides_cap,
			&(struct txlog_step){ .txn = txn, .commit = commit, .reason = reason,
					      .detail = detail, .logged_commit = logged_commit,
					      .row = row });
}

/* Take txn out of the pending marks: true if it was there. */
static bool take_mark(struct txlog *l, int64_t txn)
{
	for (size_t i = 0; i < l->nmarks; i++) {
		if (l->marks[i] == txn) {
			l->marks[i] = l->marks[--l->nmarks];
			return true;
		}
	}
	return false;
}

int txlog_finish_txn(struct txlog *l, int64_t txn, bool commit, struct txlog_row *row)
{
	/* An outcome answered early (an abort) and confirmed since: one update
	 * closes the payment instead of a mark and then a finish. */
	return step_add(l, &l->finishes, &l->nfinishes, &l->finishes_cap,
			&(struct txlog_step){ .txn = txn, .commit = commit,
					      .mark = take_mark(l, txn), .row = row });
}

int txlog_outcomes_sent(struct txlog *l, const int64_t *txns, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t *m = paytx_grow(l->marks, &l->marks_cap, l->nmarks, sizeof(*m), 64);
		if (!m)
			return PAYTX_ENOMEM;
		l->marks = m;
		l->marks[l->nmarks++] = txns[i];
	}
	return 0;
}

int txlog_decision(struct txlog *l, int64_t txn, bool *found, bool *commit, char *payment_id)
{
	char id[32];
	snprintf(id, sizeof(id), "%" PRId64, txn);
	const char *params[] = { id };
	*found = false;
	return queue(l, "paytx_txlog_decision", "SELECT d.commit, r.payment_id FROM decisions d "
		     "JOIN payment_requests r USING (txn) WHERE d.txn = $1", 1, params,
		     &(struct txlog_op){ .kind = OP_DECISION, .found = found, .commit = commit,
					 .payment_id = payment_id });
}

int txlog_renew(struct txlog *l)
{
	char lease[32];
	snprintf(lease, sizeof(lease), "%" PRId64, l->lease_ms);
	const char *params[] = { l->owner, lease };
	PGresult *r = pg_query(l->conn,
		"UPDATE payment_states SET lease_until = now() + $2::bigint * interval "
		"'1 millisecond' WHERE owner = $1 AND pending", 2, params);
	PQclear(r);
	return r ? 0 : PAYTX_EDB;
}

int txlog_adopt(struct txlog *l, bool all_mine, int (*fn)(void *arg, struct txlog_row *row),
		void *arg)
{
	char lease[32];
	snprintf(lease, sizeof(lease), "%" PRId64, l->lease_ms);
	const char *params[] = { l->owner, lease, all_mine ? "t" : "f" };
	PGresult *r = pg_query(l->conn,
		"UPDATE payment_states s SET owner = $1, "
		"lease_until = now() + $2::bigint * interval '1 millisecond' "
		"FROM payment_requests r WHERE r.txn = s.txn AND s.pending "
		"AND (s.lease_until < now() OR ($3::boolean AND s.owner = $1)) "
		"RETURNING " ROW_COLS, 3, params);
	if (!r)
		return PAYTX_EDB;
	int err = 0;
	for (int i = 0; i < PQntuples(r) && !err; i++) {
		struct txlog_row row;
		row_read(r, i, &row, true);
		err = row.request && row.waiters ? fn(arg, &row) : PAYTX_ENOMEM;
		txlog_row_finish(&row);
	}
	PQclear(r);
	return err;
}

int txlog_get(struct txlog *l, const char *payment_id, struct txlog_row *row)
{
	const char *params[] = { payment_id };
	PGresult *r = pg_query(l->conn, "SELECT " ROW_COLS " FROM " ROW_FROM
			       " WHERE r.payment_id = $1", 1, params);
	if (!r)
		return PAYTX_EDB;
	int err = PQntuples(r) == 1 ? 0 : PAYTX_ENOTFOUND;
	if (!err)
		row_read(r, 0, row, false);
	PQclear(r);
	return err;
}

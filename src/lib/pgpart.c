/* The SDK callbacks of a participant whose steps are SQL functions. */
#include "pgpart.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "pgpipe.h"

static bool currency_valid(const char *c)
{
	for (int i = 0; i < 3; i++)
		if (c[i] < 'A' || c[i] > 'Z')
			return false;
	return c[3] == '\0';
}

void pgpart_copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int pgpart_parse_int64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return PAYTX_EDB;
	*out = v;
	return 0;
}

int pgpart_init(struct pgpart *p, PGconn *conn, const char *who, const char *participant,
		const struct pgpart_sql *sql)
{
	memset(p, 0, sizeof(*p));
	if (!conn || !who || !sql || !participant ||
	    !paytx_id_valid(participant, strlen(participant))) {
		PQfinish(conn); /* taken over even on failure */
		return PAYTX_EINVAL;
	}
	p->conn = conn;
	p->who = who;
	p->sql = sql;
	pgpart_copy_str(p->participant, sizeof(p->participant), participant);
	return 0;
}

void pgpart_finish(struct pgpart *p)
{
	if (!p)
		return;
	PQfinish(p->conn); /* an open batch is rolled back by the server */
	pgpipe_finish(&p->pipe);
	memset(p, 0, sizeof(*p));
}

/* BEGIN goes with the batch's first statements (pgpart_apply): one round
 * trip less for every batch. */
int pgpart_batch_begin(void *ctx)
{
	struct pgpart *p = ctx;
	if (p->in_batch)
		return PAYTX_EDB;
	p->in_batch = true;
	p->begin_pending = true;
	return 0;
}

/* The vote in row r of res, whose columns from col on are (vote, reason, detail). */
static void read_vote(struct pgpart *p, const PGresult *res, int r, int col,
		      const struct paytx_step *st)
{
	struct paytx_vote *vote = st->vote;
	vote->yes = strcmp(PQgetvalue(res, r, col), "t") == 0;
	pgpart_copy_str(vote->reason, sizeof(vote->reason),
			vote->yes ? "" : PQgetvalue(res, r, col + 1));
	pgpart_copy_str(vote->detail, sizeof(vote->detail),
			vote->yes ? "" : PQgetvalue(res, r, col + 2));
	if (!vote->yes) /* the detail names accounts: not logged */
		log_txn(LOG_INFO, st->payment_id, st->txn, "%s: vote no: %s", p->who, vote->reason);
}

/* 'committed' / 'aborted' / 'already' are done, 'protocol_violation' is PAYTX_EPROTO. */
static int read_decision(struct pgpart *p, const char *outcome, const struct paytx_step *st)
{
	const char *what = st->type == PAYTX_MSG_COMMIT ? "commit" : "abort";
	if (strcmp(outcome, "protocol_violation") == 0) {
		log_txn(LOG_WARN, NULL, st->txn, "%s: %s refused: protocol_violation", p->who,
			what);
		return PAYTX_EPROTO;
	}
	if (strcmp(outcome, "already") == 0)
		log_txn(LOG_DEBUG, NULL, st->txn, "%s: %s again: already done", p->who, what);
	return 0;
}

/* A run of steps whose results one statement returns. */
struct apply_ctx {
	struct pgpart *p;
	struct paytx_step *steps;
	size_t n;
};

/* Tags of the pipeline's statements: a step's index in p->queued; for a
 * run of commits or prepares sent as one call (commit_set, prepare_set)
 * RUN_TAG plus the index of the run's first step; and two of their own
 * above every run (pgpipe keeps SIZE_MAX). */
#define RUN_TAG (SIZE_MAX / 2 + 1)
#define BEGIN_TAG (SIZE_MAX - 1)
#define COMMIT_TAG (SIZE_MAX - 2)
/* A commit step's result before its row is read. */
#define RESULT_UNSET 1

static bool is_set_commit(const struct pgpart *p, const struct paytx_step *st)
{
	return p->sql->commit_set && st->type == PAYTX_MSG_COMMIT;
}

static bool is_set_prepare(const struct pgpart *p, const struct paytx_step *st)
{
	return p->sql->prepare_set && st->type == PAYTX_MSG_PREPARE;
}

/* How many steps from steps[0] on are one run: consecutive commits with
 * commit_set, or prepares with prepare_set; 0 when steps[0] goes alone. */
static size_t run_length(const struct pgpart *p, const struct paytx_step *steps, size_t n)
{
	size_t k = 0;
	if (n && (is_set_commit(p, &steps[0]) || is_set_prepare(p, &steps[0])))
		while (k < n && steps[k].type == steps[0].type)
			k++;
	return k;
}

/* The rows (txn, vote, reason, detail) of a run of prepares (a->steps):
 * one per step, in order. */
static int prepares_result(struct apply_ctx *a, const PGresult *res)
{
	int r = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct paytx_step *st = &a->steps[i];
		int64_t txn;
		if (r >= PQntuples(res) || PQnfields(res) != 4 || PQgetisnull(res, r, 0) ||
		    PQgetisnull(res, r, 1) ||
		    pgpart_parse_int64(PQgetvalue(res, r, 0), &txn) != 0 || txn != st->txn) {
			log_txn(LOG_ERROR, st->payment_id, st->txn, "%s: no vote for a prepare",
				a->p->who);
			return PAYTX_EDB;
		}
		read_vote(a->p, res, r++, 1, st);
	}
	if (r != PQntuples(res)) {
		log_error("%s: more votes than prepares", a->p->who);
		return PAYTX_EDB;
	}
	return 0;
}

/* The rows (txn, outcome) of a run of commits (a->steps): one per
 * distinct txn. */
static int commits_result(struct apply_ctx *a, const PGresult *res)
{
	if (PQnfields(res) != 2) {
		log_error("%s: unexpected result shape of the commits", a->p->who);
		return PAYTX_EDB;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		int64_t txn;
		if (PQgetisnull(res, r, 0) || PQgetisnull(res, r, 1) ||
		    pgpart_parse_int64(PQgetvalue(res, r, 0), &txn) != 0)
			return PAYTX_EDB;
		for (size_t i = 0; i < a->n; i++) {
			struct paytx_step *st = &a->steps[i];
			if (st->txn == txn)
				st->result = read_decision(a->p, PQgetvalue(res, r, 1), st);
		}
	}
	for (size_t i = 0; i < a->n; i++)
		if (a->steps[i].result == RESULT_UNSET) {
			log_txn(LOG_ERROR, NULL, a->steps[i].txn, "%s: no outcome for a commit",
				a->p->who);
			return PAYTX_EDB;
		}
	return 0;
}

/* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
static int commit_result(struct pgpart *p, const PGresult *res)
{
	if (strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0)
		return 0;
	log_error("%s: batch was rolled back by the server (%s)", p->who,
		  PQcmdStatus((PGresult *)res));
	return PAYTX_EDB;
}

/* A pgpipe_result_fn (arg: the pgpart): the result of p->queued[tag], of a
 * run of them, of BEGIN or of COMMIT. */
static int step_result(void *arg, size_t tag, const PGresult *res)
{
	struct pgpart *p = arg;
	if (tag == BEGIN_TAG)
		return 0;
	if (tag == COMMIT_TAG)
		return commit_result(p, res);
	if (tag >= RUN_TAG) {
		size_t first = tag - RUN_TAG;
		struct apply_ctx run = { .p = p, .steps = p->queued + first,
					 .n = run_length(p, p->queued + first, p->nqueued - first) };
		return run.steps->type == PAYTX_MSG_COMMIT ? commits_result(&run, res)
							   : prepares_result(&run, res);
	}
	struct paytx_step *st = &p->queued[tag];
	if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
		log_txn(LOG_ERROR, st->payment_id, st->txn, "%s: unexpected result shape", p->who);
		return PAYTX_EDB;
	}
	if (st->type == PAYTX_MSG_PREPARE)
		read_vote(p, res, 0, 0, st);
	else
		st->result = read_decision(p, PQgetvalue(res, 0, 0), st);
	return 0;
}

/* Queue one call for the run of commits steps[0..n), as a bigint[] literal. */
static int commits_send(struct pgpart *p, struct paytx_step *steps, size_t n, size_t tag)
{
	struct paytx_buf txns;
	paytx_buf_init(&txns);
	int err = paytx_buf_append(&txns, "{", 1);
	for (size_t i = 0; !err && i < n; i++) {
		steps[i].result = RESULT_UNSET;
		char txn[24];
		int len = snprintf(txn, sizeof(txn), "%s%" PRId64, i ? "," : "", steps[i].txn);
		err = paytx_buf_append(&txns, txn, (size_t)len);
	}
	if (!err)
		err = paytx_buf_append(&txns, "}", 1);
	if (!err) {
		const char *params[] = { txns.data, p->participant };
		err = pgpipe_send_prepared(&p->pipe, p->sql->commit_name, p->sql->commit, 2, params,
					   tag);
	}
	paytx_buf_finish(&txns);
	return err;
}

static json_object *legs_array(const struct paytx_prepare *prep);

/* Queue one call for the run of prepares steps[0..n), as a JSON array of
 * {txn, payment_id, legs}. */
static int prepares_send(struct pgpart *p, struct paytx_step *steps, size_t n, size_t tag)
{
	json_object *arr = json_object_new_array();
	int err = arr ? 0 : PAYTX_ENOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		const struct paytx_prepare *prep = steps[i].prepare;
		if (pgpart_prepare_check(prep) != 0) {
			log_txn(LOG_ERROR, prep->payment_id, prep->txn, "%s: malformed prepare",
				p->who);
			err = PAYTX_EINVAL;
			break;
		}
		json_object *o = json_object_new_object(), *legs = legs_array(prep);
		if (!o || !legs || json_object_array_add(arr, o) != 0) {
			json_object_put(o);
			json_object_put(legs);
			err = PAYTX_ENOMEM;
		} else if (json_object_object_add(o, "legs", legs) ||
			   json_object_object_add(o, "txn", json_object_new_int64(prep->txn)) ||
			   json_object_object_add(o, "payment_id",
						  json_object_new_string(prep->payment_id))) {
			err = PAYTX_ENOMEM;
		}
	}
	const char *json = err ? NULL : json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	if (!err && !json)
		err = PAYTX_ENOMEM;
	if (!err) {
		const char *params[] = { p->participant, json };
		/* libpq copies the parameters: the JSON can go at once. */
		err = pgpipe_send_prepared(&p->pipe, p->sql->prepare_name, p->sql->prepare, 2,
					   params, tag);
	}
	json_object_put(arr);
	return err;
}

/* Queue the statement of one step. */
static int step_send(struct pgpart *p, const struct paytx_step *st, size_t tag)
{
	const struct pgpart_sql *sql = p->sql;
	char txn[24];
	snprintf(txn, sizeof(txn), "%" PRId64, st->txn);
	if (st->type != PAYTX_MSG_PREPARE) {
		const char *params[] = { txn, p->participant };
		bool commit = st->type == PAYTX_MSG_COMMIT;
		return pgpipe_send_prepared(&p->pipe, commit ? sql->commit_name : sql->abort_name,
					    commit ? sql->commit : sql->abort, 2, params, tag);
	}
	const struct paytx_prepare *prep = st->prepare;
	if (pgpart_prepare_check(prep) != 0) {
		log_txn(LOG_ERROR, prep->payment_id, prep->txn, "%s: malformed prepare", p->who);
		return PAYTX_EINVAL;
	}
	char *legs = pgpart_legs_json(prep);
	if (!legs)
		return PAYTX_ENOMEM;
	const char *params[] = { txn, p->participant, prep->payment_id, legs };
	/* libpq copies the parameters: legs can go at once. */
	int err = pgpipe_send_prepared(&p->pipe, sql->prepare_name, sql->prepare, 4, params, tag);
	free(legs);
	return err;
}

/* Read every result of the open pipeline (if one is open) and close it. */
static int pipe_end(struct pgpart *p)
{
	if (!p->pipe.active)
		return 0;
	int err = pgpipe_end(&p->pipe);
	p->queued = NULL;
	p->nqueued = 0;
	return err;
}

/* Open the batch's pipeline (BEGIN first, when still to be sent) and queue
 * steps[0..n) in order; a run of commits or of prepares is one call. Only
 * queued: the results come with the COMMIT (pgpart_batch_commit). */
int pgpart_apply(void *ctx, struct paytx_step *steps, size_t n)
{
	struct pgpart *p = ctx;
	if (p->pipe.active) /* one apply per batch */
		return PAYTX_EDB;
	int err = pgpipe_begin(&p->pipe, p->conn, step_result, p);
	if (err)
		return err;
	p->queued = steps;
	p->nqueued = n;
	if (p->begin_pending) {
		err = pgpipe_send(&p->pipe, "BEGIN", 0, NULL, BEGIN_TAG);
		p->begin_pending = false;
	}
	for (size_t i = 0, run; !err && i < n; i += run ? run : 1) {
		run = run_length(p, &steps[i], n - i);
		if (!run)
			err = step_send(p, &steps[i], i);
		else if (steps[i].type == PAYTX_MSG_COMMIT)
			err = commits_send(p, &steps[i], run, RUN_TAG + i);
		else
			err = prepares_send(p, &steps[i], run, RUN_TAG + i);
	}
	return err;
}

/* One callback's step, applied now: its result is the callback's. */
static int apply_now(struct pgpart *p, struct paytx_step *st)
{
	int err = pgpart_apply(p, st, 1);
	int end = pipe_end(p);
	return err ? err : end;
}

int pgpart_prepare(void *ctx, const struct paytx_prepare *prep, struct paytx_vote *vote)
{
	struct paytx_step st = { .type = PAYTX_MSG_PREPARE, .prepare = prep, .txn = prep->txn,
				 .payment_id = prep->payment_id, .vote = vote };
	return apply_now(ctx, &st);
}

static int decide_one(void *ctx, enum paytx_msg_type type, int64_t txn)
{
	struct paytx_step st = { .type = type, .txn = txn, .payment_id = "" };
	int err = apply_now(ctx, &st);
	return err ? err : st.result;
}

int pgpart_commit(void *ctx, int64_t txn)
{
	return decide_one(ctx, PAYTX_MSG_COMMIT, txn);
}

int pgpart_abort(void *ctx, int64_t txn)
{
	return decide_one(ctx, PAYTX_MSG_ABORT, txn);
}

int pgpart_batch_commit(void *ctx)
{
	struct pgpart *p = ctx;
	p->in_batch = false;
	if (p->begin_pending) { /* nothing was sent */
		p->begin_pending = false;
		return 0;
	}
	/* After what apply queued (one round trip for the batch), or alone
	 * after the per-message callbacks' steps. */
	int err = p->pipe.active ? 0 : pgpipe_begin(&p->pipe, p->conn, step_result, p);
	if (!err)
		err = pgpipe_send(&p->pipe, "COMMIT", 0, NULL, COMMIT_TAG);
	int end = pipe_end(p);
	return err ? err : end;
}

void pgpart_batch_rollback(void *ctx)
{
	struct pgpart *p = ctx;
	(void)pipe_end(p); /* what apply queued: skipped or rolled back below */
	p->in_batch = false;
	p->begin_pending = false;
	if (!pg_broken(p->conn) && PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    pg_exec(p->conn, "ROLLBACK") != 0)
		log_warn("%s: rollback failed; the next reset re-makes the connection", p->who);
}

int pgpart_in_doubt(void *ctx, int64_t older_than_ms, int64_t *txns, size_t max, size_t *n)
{
	struct pgpart *p = ctx;
	char older[24], limit[24];
	*n = 0;
	snprintf(older, sizeof(older), "%" PRId64, older_than_ms);
	snprintf(limit, sizeof(limit), "%zu", max > INT32_MAX ? (size_t)INT32_MAX : max);
	const char *params[] = { p->participant, older, limit };
	PGresult *res = pg_query(p->conn, p->sql->in_doubt, 3, params);
	if (!res)
		return PAYTX_EDB;
	int err = 0;
	for (int i = 0; i < PQntuples(res) && *n < max && !err; i++)
		err = pgpart_parse_int64(PQgetvalue(res, i, 0), &txns[(*n)++]);
	PQclear(res);
	return err;
}

/* After a failure: re-make the connection only when it is gone, and leave
 * no half-done transaction behind. */
int pgpart_reset(void *ctx)
{
	struct pgpart *p = ctx;
	(void)pipe_end(p);
	p->in_batch = false;
	p->begin_pending = false;
	if (pg_broken(p->conn)) {
		log_warn("%s: postgres connection lost, reconnecting", p->who);
		if (!pg_reset(p->conn)) {
			const char *msg = PQerrorMessage(p->conn);
			log_error("%s: reconnect failed: %.*s", p->who, (int)strcspn(msg, "\n"), msg);
			return PAYTX_EDB;
		}
		return 0;
	}
	if (PQtransactionStatus(p->conn) != PQTRANS_IDLE)
		return pg_exec(p->conn, "ROLLBACK");
	return 0;
}

/* The prepare's legs as a JSON array [{"account","amount","currency"}];
 * NULL when out of memory. */
static json_object *legs_array(const struct paytx_prepare *prep)
{
	json_object *arr = json_object_new_array();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < prep->nlegs; i++) {
		const struct paytx_leg *leg = &prep->legs[i];
		json_object *o = json_object_new_object();
		if (!o || json_object_array_add(arr, o) != 0) {
			json_object_put(o);
			goto err_arr;
		}
		if (json_object_object_add(o, "account", json_object_new_string(leg->account)) ||
		    json_object_object_add(o, "amount", json_object_new_int64(leg->amount)) ||
		    json_object_object_add(o, "currency", json_object_new_string(leg->currency)))
			goto err_arr;
	}
	return arr;
err_arr:
	json_object_put(arr);
	return NULL;
}

char *pgpart_legs_json(const struct paytx_prepare *prep)
{
	json_object *arr = legs_array(prep);
	const char *s = arr ? json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN) : NULL;
	char *copy = s ? strdup(s) : NULL;
	json_object_put(arr);
	return copy;
}

int pgpart_prepare_check(const struct paytx_prepare *prep)
{
	if (prep->nlegs > PAYTX_LEGS_MAX ||
	    !paytx_id_valid(prep->payment_id, strlen(prep->payment_id)))
		return PAYTX_EINVAL;
	for (size_t i = 0; i < prep->nlegs; i++) {
		const struct paytx_leg *leg = &prep->legs[i];
		if (!paytx_id_valid(leg->account, strlen(leg->account)) ||
		    !currency_valid(leg->currency) || leg->amount > PAYTX_AMOUNT_MAX ||
		    leg->amount < -PAYTX_AMOUNT_MAX)
			return PAYTX_EINVAL;
	}
	return 0;
}

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

int pgpart_batch_begin(void *ctx)
{
	struct pgpart *p = ctx;
	if (p->in_batch || pg_exec(p->conn, "BEGIN") != 0)
		return PAYTX_EDB;
	p->in_batch = true;
	return 0;
}

/* The vote of a prepare row. */
static void read_vote(struct pgpart *p, const PGresult *res, const struct paytx_step *st)
{
	struct paytx_vote *vote = st->vote;
	vote->yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	pgpart_copy_str(vote->reason, sizeof(vote->reason), vote->yes ? "" : PQgetvalue(res, 0, 1));
	pgpart_copy_str(vote->detail, sizeof(vote->detail), vote->yes ? "" : PQgetvalue(res, 0, 2));
	if (!vote->yes) /* the detail names accounts: not logged */
		log_txn(LOG_INFO, st->payment_id, st->txn, "%s: vote no: %s", p->who, vote->reason);
}

/* 'committed' / 'aborted' / 'already' are done, 'protocol_violation' is PAYTX_EPROTO. */
static int read_decision(struct pgpart *p, const PGresult *res, const struct paytx_step *st)
{
	const char *what = st->type == PAYTX_MSG_COMMIT ? "commit" : "abort";
	const char *outcome = PQgetvalue(res, 0, 0);
	if (strcmp(outcome, "protocol_violation") == 0) {
		log_txn(LOG_WARN, NULL, st->txn, "%s: %s refused: protocol_violation", p->who,
			what);
		return PAYTX_EPROTO;
	}
	if (strcmp(outcome, "already") == 0)
		log_txn(LOG_DEBUG, NULL, st->txn, "%s: %s again: already done", p->who, what);
	return 0;
}

struct apply_ctx {
	struct pgpart *p;
	struct paytx_step *steps;
};

/* A pgpipe_result_fn: the result of steps[tag]. */
static int step_result(void *arg, size_t tag, const PGresult *res)
{
	struct apply_ctx *a = arg;
	struct paytx_step *st = &a->steps[tag];
	if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
		log_txn(LOG_ERROR, st->payment_id, st->txn, "%s: unexpected result shape", a->p->who);
		return PAYTX_EDB;
	}
	if (st->type == PAYTX_MSG_PREPARE)
		read_vote(a->p, res, st);
	else
		st->result = read_decision(a->p, res, st);
	return 0;
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

int pgpart_apply(void *ctx, struct paytx_step *steps, size_t n)
{
	struct pgpart *p = ctx;
	struct apply_ctx a = { .p = p, .steps = steps };
	int err = pgpipe_begin(&p->pipe, p->conn, step_result, &a);
	for (size_t i = 0; !err && i < n; i++)
		err = step_send(p, &steps[i], i);
	int end = pgpipe_end(&p->pipe);
	return err ? err : end;
}

int pgpart_prepare(void *ctx, const struct paytx_prepare *prep, struct paytx_vote *vote)
{
	struct paytx_step st = { .type = PAYTX_MSG_PREPARE, .prepare = prep, .txn = prep->txn,
				 .payment_id = prep->payment_id, .vote = vote };
	return pgpart_apply(ctx, &st, 1);
}

static int decide_one(void *ctx, enum paytx_msg_type type, int64_t txn)
{
	struct paytx_step st = { .type = type, .txn = txn, .payment_id = "" };
	int err = pgpart_apply(ctx, &st, 1);
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
	/* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
	PGresult *res = pg_query(p->conn, "COMMIT", 0, NULL);
	bool ok = res && strcmp(PQcmdStatus(res), "COMMIT") == 0;
	if (res && !ok)
		log_error("%s: batch was rolled back by the server (%s)", p->who, PQcmdStatus(res));
	PQclear(res);
	return ok ? 0 : PAYTX_EDB;
}

void pgpart_batch_rollback(void *ctx)
{
	struct pgpart *p = ctx;
	p->in_batch = false;
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
	p->in_batch = false;
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

char *pgpart_legs_json(const struct paytx_prepare *prep)
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
	const char *s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	char *copy = s ? strdup(s) : NULL;
	json_object_put(arr);
	return copy;
err_arr:
	json_object_put(arr);
	return NULL;
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

/* The ledger participant: reservations, postings and releases of one shard. */
#include "ledger.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "pgpipe.h"

/* Every step is one call of a function of sql/ledger.sql; a batch of them
 * goes in one pipeline (ledger_apply), so one round trip for the batch. */
static const char sql_prepare[] =
	"SELECT vote, reason, detail FROM ledger_prepare($1::bigint, $2, $3, $4::jsonb)";
static const char sql_commit[] = "SELECT ledger_commit($1::bigint, $2)";
static const char sql_abort[] = "SELECT ledger_abort($1::bigint, $2, NULL)";
static const char sql_in_doubt[] =
	"SELECT txn FROM ledger_in_doubt($1, $2::bigint, $3::integer) AS t(txn)";
static const char sql_account_create[] = "SELECT ledger_account_create($1, $2, $3::boolean)";
static const char sql_account_get[] =
	"SELECT currency, balance, held, external, version FROM accounts WHERE id = $1";

/* Copy src into dst[size], truncating; dst is always terminated. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int parse_int64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return PAYTX_EDB;
	*out = v;
	return 0;
}

static bool currency_valid(const char *c)
{
	for (int i = 0; i < 3; i++)
		if (c[i] < 'A' || c[i] > 'Z')
			return false;
	return c[3] == '\0';
}

/* The result of a one-row, one-column call; NULL on failure (logged). */
static PGresult *call_text(struct ledger *l, const char *sql, int nparams,
			   const char *const *params)
{
	PGresult *res = pg_query(l->conn, sql, nparams, params);
	if (res && (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0))) {
		log_error("ledger: unexpected result shape from %.40s", sql);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* legs as the JSON array ledger_prepare takes; caller frees. */
static char *legs_json(const struct paytx_prepare *p)
{
	json_object *arr = json_object_new_array();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < p->nlegs; i++) {
		const struct paytx_leg *leg = &p->legs[i];
		json_object *o = json_object_new_object();
		if (!o || json_object_array_add(arr, o) != 0) {
			json_object_put(o);
			json_object_put(arr);
			return NULL;
		}
		if (json_object_object_add(o, "account", json_object_new_string(leg->account)) ||
		    json_object_object_add(o, "amount", json_object_new_int64(leg->amount)) ||
		    json_object_object_add(o, "currency", json_object_new_string(leg->currency))) {
			json_object_put(arr);
			return NULL;
		}
	}
	const char *s = json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN);
	char *copy = s ? strdup(s) : NULL;
	json_object_put(arr);
	return copy;
}

static int prepare_check(const struct paytx_prepare *p)
{
	if (p->nlegs > PAYTX_LEGS_MAX || !paytx_id_valid(p->payment_id, strlen(p->payment_id)))
		return PAYTX_EINVAL;
	for (size_t i = 0; i < p->nlegs; i++) {
		const struct paytx_leg *leg = &p->legs[i];
		if (!paytx_id_valid(leg->account, strlen(leg->account)) ||
		    !currency_valid(leg->currency) || leg->amount > PAYTX_AMOUNT_MAX ||
		    leg->amount < -PAYTX_AMOUNT_MAX)
			return PAYTX_EINVAL;
	}
	return 0;
}

static int ledger_batch_begin(void *ctx)
{
	struct ledger *l = ctx;
	assert(!l->in_batch);
	if (pg_exec(l->conn, "BEGIN") != 0)
		return PAYTX_EDB;
	l->in_batch = true;
	return 0;
}

/* The vote of a ledger_prepare row. */
static void read_vote(const PGresult *res, const struct paytx_step *st)
{
	struct paytx_vote *vote = st->vote;
	vote->yes = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	copy_str(vote->reason, sizeof(vote->reason), vote->yes ? "" : PQgetvalue(res, 0, 1));
	copy_str(vote->detail, sizeof(vote->detail), vote->yes ? "" : PQgetvalue(res, 0, 2));
	if (!vote->yes)
		log_txn(LOG_INFO, st->payment_id, st->txn, "ledger: vote no: %s", vote->reason);
}

/* commit and abort: 'committed' / 'aborted' / 'already' are done,
 * 'protocol_violation' is PAYTX_EPROTO. */
static int read_decision(const PGresult *res, const struct paytx_step *st)
{
	const char *what = st->type == PAYTX_MSG_COMMIT ? "commit" : "abort";
	const char *outcome = PQgetvalue(res, 0, 0);
	if (strcmp(outcome, "protocol_violation") == 0) {
		log_txn(LOG_WARN, NULL, st->txn, "ledger: %s refused: protocol_violation", what);
		return PAYTX_EPROTO;
	}
	if (strcmp(outcome, "already") == 0)
		log_txn(LOG_DEBUG, NULL, st->txn, "ledger: %s again: already done", what);
	return 0;
}

/* A pgpipe_result_fn: the result of steps[tag]. */
static int step_result(void *arg, size_t tag, const PGresult *res)
{
	struct paytx_step *st = &((struct paytx_step *)arg)[tag];
	if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
		log_txn(LOG_ERROR, st->payment_id, st->txn, "ledger: unexpected result shape");
		return PAYTX_EDB;
	}
	if (st->type == PAYTX_MSG_PREPARE)
		read_vote(res, st);
	else
		st->result = read_decision(res, st);
	return 0;
}

/* Queue the statement of one step. */
static int step_send(struct ledger *l, struct pgpipe *pipe, const struct paytx_step *st,
		     size_t tag)
{
	char txn[24];
	snprintf(txn, sizeof(txn), "%" PRId64, st->txn);
	if (st->type != PAYTX_MSG_PREPARE) {
		const char *params[] = { txn, l->participant };
		bool commit = st->type == PAYTX_MSG_COMMIT;
		return pgpipe_send_prepared(pipe, commit ? "paytx_ledger_commit" : "paytx_ledger_abort",
					    commit ? sql_commit : sql_abort, 2, params, tag);
	}
	const struct paytx_prepare *p = st->prepare;
	if (prepare_check(p) != 0) {
		log_txn(LOG_ERROR, p->payment_id, p->txn, "ledger: malformed prepare");
		return PAYTX_EINVAL;
	}
	char *legs = legs_json(p);
	if (!legs)
		return PAYTX_ENOMEM;
	const char *params[] = { txn, l->participant, p->payment_id, legs };
	/* libpq copies params */
	int err = pgpipe_send_prepared(pipe, "paytx_ledger_prepare", sql_prepare, 4, params, tag);
	free(legs);
	return err;
}

/* Every step of the batch in one pipeline: one round trip for all. */
static int ledger_apply(void *ctx, struct paytx_step *steps, size_t n)
{
	struct ledger *l = ctx;
	int err = pgpipe_begin(&l->pipe, l->conn, step_result, steps);
	for (size_t i = 0; !err && i < n; i++)
		err = step_send(l, &l->pipe, &steps[i], i);
	int end = pgpipe_end(&l->pipe);
	return err ? err : end;
}

static int ledger_prepare(void *ctx, const struct paytx_prepare *p, struct paytx_vote *vote)
{
	struct paytx_step st = { .type = PAYTX_MSG_PREPARE, .prepare = p, .txn = p->txn,
				 .payment_id = p->payment_id, .vote = vote };
	return ledger_apply(ctx, &st, 1);
}

static int ledger_decide(void *ctx, enum paytx_msg_type type, int64_t txn)
{
	struct paytx_step st = { .type = type, .txn = txn, .payment_id = "" };
	int err = ledger_apply(ctx, &st, 1);
	return err ? err : st.result;
}

static int ledger_commit(void *ctx, int64_t txn)
{
	return ledger_decide(ctx, PAYTX_MSG_COMMIT, txn);
}

static int ledger_abort(void *ctx, int64_t txn)
{
	return ledger_decide(ctx, PAYTX_MSG_ABORT, txn);
}

static int ledger_batch_commit(void *ctx)
{
	struct ledger *l = ctx;
	l->in_batch = false;
	/* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
	PGresult *res = pg_query(l->conn, "COMMIT", 0, NULL);
	bool ok = res && strcmp(PQcmdStatus(res), "COMMIT") == 0;
	if (res && !ok)
		log_error("ledger: batch was rolled back by the server (%s)", PQcmdStatus(res));
	PQclear(res);
	return ok ? 0 : PAYTX_EDB;
}

static void ledger_batch_rollback(void *ctx)
{
	struct ledger *l = ctx;
	l->in_batch = false;
	if (!pg_broken(l->conn) && PQtransactionStatus(l->conn) != PQTRANS_IDLE &&
	    pg_exec(l->conn, "ROLLBACK") != 0)
		log_warn("ledger: rollback failed; the next reset re-makes the connection");
}

static int ledger_in_doubt(void *ctx, int64_t older_than_ms, int64_t *txns, size_t max,
			   size_t *n)
{
	struct ledger *l = ctx;
	char older[24], limit[24];
	*n = 0;
	snprintf(older, sizeof(older), "%" PRId64, older_than_ms);
	snprintf(limit, sizeof(limit), "%zu", max > INT32_MAX ? (size_t)INT32_MAX : max);
	const char *params[] = { l->participant, older, limit };
	PGresult *res = pg_query(l->conn, sql_in_doubt, 3, params);
	if (!res)
		return PAYTX_EDB;
	int err = 0;
	for (int i = 0; i < PQntuples(res) && *n < max && !err; i++)
		err = parse_int64(PQgetvalue(res, i, 0), &txns[(*n)++]);
	PQclear(res);
	return err;
}

/* After a failure: re-make the connection only when it is gone, and leave
 * no half-done transaction behind. */
static int ledger_reset(void *ctx)
{
	struct ledger *l = ctx;
	l->in_batch = false;
	if (pg_broken(l->conn)) {
		log_warn("ledger: postgres connection lost, reconnecting");
		PQreset(l->conn);
		if (pg_broken(l->conn)) {
			const char *msg = PQerrorMessage(l->conn);
			log_error("ledger: reconnect failed: %.*s", (int)strcspn(msg, "\n"), msg);
			return PAYTX_EDB;
		}
		return 0;
	}
	if (PQtransactionStatus(l->conn) != PQTRANS_IDLE)
		return pg_exec(l->conn, "ROLLBACK");
	return 0;
}

const struct paytx_participant_ops ledger_ops = {
	.batch_begin = ledger_batch_begin,
	.apply = ledger_apply,
	.prepare = ledger_prepare,
	.commit = ledger_commit,
	.abort = ledger_abort,
	.batch_commit = ledger_batch_commit,
	.batch_rollback = ledger_batch_rollback,
	.in_doubt = ledger_in_doubt,
	.reset = ledger_reset,
};

int ledger_init(struct ledger *l, PGconn *conn, const char *participant)
{
	memset(l, 0, sizeof(*l));
	if (!conn || !participant || !paytx_id_valid(participant, strlen(participant))) {
		PQfinish(conn); /* taken over even on failure */
		return PAYTX_EINVAL;
	}
	l->conn = conn;
	copy_str(l->participant, sizeof(l->participant), participant);
	return 0;
}

void ledger_finish(struct ledger *l)
{
	if (!l)
		return;
	PQfinish(l->conn); /* an open batch is rolled back by the server */
	pgpipe_finish(&l->pipe);
	memset(l, 0, sizeof(*l));
}

int ledger_account_create(struct ledger *l, const char *id, const char *currency,
			  bool external)
{
	if (!id || !paytx_id_valid(id, strlen(id)) || !currency || !currency_valid(currency) ||
	    l->in_batch)
		return PAYTX_EINVAL;
	const char *params[] = { id, currency, external ? "true" : "false" };
	PGresult *res = call_text(l, sql_account_create, 3, params);
	if (!res)
		return PAYTX_EDB;
	const char *outcome = PQgetvalue(res, 0, 0);
	int err = strcmp(outcome, "conflict") == 0 ? PAYTX_ECONFLICT : 0;
	if (err)
		log_warn("ledger: account %s exists with another currency or kind", id);
	else if (strcmp(outcome, "created") == 0)
		log_info("ledger: account %s created (%s%s)", id, currency,
			 external ? ", external" : "");
	PQclear(res);
	return err;
}

int ledger_account_get(struct ledger *l, const char *id, struct ledger_account *out)
{
	if (!id || !paytx_id_valid(id, strlen(id)))
		return PAYTX_EINVAL;
	const char *params[] = { id };
	PGresult *res = pg_query(l->conn, sql_account_get, 1, params);
	if (!res)
		return PAYTX_EDB;
	int err = PQntuples(res) == 1 ? 0 : PAYTX_ENOTFOUND;
	if (!err) {
		memset(out, 0, sizeof(*out));
		copy_str(out->id, sizeof(out->id), id);
		copy_str(out->currency, sizeof(out->currency), PQgetvalue(res, 0, 0));
		out->external = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
		if (parse_int64(PQgetvalue(res, 0, 1), &out->balance) ||
		    parse_int64(PQgetvalue(res, 0, 2), &out->held) ||
		    parse_int64(PQgetvalue(res, 0, 4), &out->version))
			err = PAYTX_EDB;
	}
	PQclear(res);
	return err;
}

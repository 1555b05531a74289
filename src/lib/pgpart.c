/* Batches, decisions and in-doubt scans of a participant kept in PostgreSQL. */
#include "pgpart.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"

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

int pgpart_init(struct pgpart *p, PGconn *conn, const char *who, const char *participant)
{
	memset(p, 0, sizeof(*p));
	if (!conn || !who || !participant || !paytx_id_valid(participant, strlen(participant))) {
		PQfinish(conn); /* taken over even on failure */
		return PAYTX_EINVAL;
	}
	p->conn = conn;
	p->who = who;
	pgpart_copy_str(p->participant, sizeof(p->participant), participant);
	return 0;
}

void pgpart_finish(struct pgpart *p)
{
	if (!p)
		return;
	PQfinish(p->conn); /* an open batch is rolled back by the server */
	memset(p, 0, sizeof(*p));
}

int pgpart_batch_begin(struct pgpart *p)
{
	if (p->in_batch || pg_exec(p->conn, "BEGIN") != 0)
		return PAYTX_EDB;
	p->in_batch = true;
	return 0;
}

int pgpart_batch_commit(struct pgpart *p)
{
	p->in_batch = false;
	/* COMMIT of a failed transaction "succeeds" with tag ROLLBACK. */
	PGresult *res = pg_query(p->conn, "COMMIT", 0, NULL);
	bool ok = res && strcmp(PQcmdStatus(res), "COMMIT") == 0;
	if (res && !ok)
		log_error("%s: batch was rolled back by the server (%s)", p->who, PQcmdStatus(res));
	PQclear(res);
	return ok ? 0 : PAYTX_EDB;
}

void pgpart_batch_rollback(struct pgpart *p)
{
	p->in_batch = false;
	if (!pg_broken(p->conn) && PQtransactionStatus(p->conn) != PQTRANS_IDLE &&
	    pg_exec(p->conn, "ROLLBACK") != 0)
		log_warn("%s: rollback failed; the next reset re-makes the connection", p->who);
}

int pgpart_reset(struct pgpart *p)
{
	p->in_batch = false;
	if (pg_broken(p->conn)) {
		log_warn("%s: postgres connection lost, reconnecting", p->who);
		PQreset(p->conn);
		if (pg_broken(p->conn)) {
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

int pgpart_decide(struct pgpart *p, const char *sql, const char *what, int64_t txn)
{
	char txn_s[24];
	snprintf(txn_s, sizeof(txn_s), "%" PRId64, txn);
	const char *params[] = { txn_s, p->participant };
	PGresult *res = pg_query(p->conn, sql, 2, params);
	if (!res || PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
		log_txn(LOG_ERROR, NULL, txn, "%s: %s failed", p->who, what);
		PQclear(res);
		return PAYTX_EDB;
	}
	const char *outcome = PQgetvalue(res, 0, 0);
	int err = 0;
	if (strcmp(outcome, "protocol_violation") == 0) {
		log_txn(LOG_WARN, NULL, txn, "%s: %s refused: protocol_violation", p->who, what);
		err = PAYTX_EPROTO;
	} else if (strcmp(outcome, "already") == 0) {
		log_txn(LOG_DEBUG, NULL, txn, "%s: %s again: already done", p->who, what);
	}
	PQclear(res);
	return err;
}

int pgpart_in_doubt(struct pgpart *p, const char *sql, int64_t older_than_ms, int64_t *txns,
		    size_t max, size_t *n)
{
	char older[24], limit[24];
	*n = 0;
	snprintf(older, sizeof(older), "%" PRId64, older_than_ms);
	snprintf(limit, sizeof(limit), "%zu", max > INT32_MAX ? (size_t)INT32_MAX : max);
	const char *params[] = { p->participant, older, limit };
	PGresult *res = pg_query(p->conn, sql, 3, params);
	if (!res)
		return PAYTX_EDB;
	int err = 0;
	for (int i = 0; i < PQntuples(res) && *n < max && !err; i++)
		err = pgpart_parse_int64(PQgetvalue(res, i, 0), &txns[(*n)++]);
	PQclear(res);
	return err;
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

/* Protocol messages one at a time or several in a txn.batch: decoding a
 * delivery into entries, and building a batch body. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "message_json.h"
#include "paytx/message.h"
#include "strict_json.h"

static bool type_of_dir(enum paytx_msg_type t, enum paytx_batch_dir dir)
{
	if (dir == PAYTX_BATCH_REQUESTS)
		return t == PAYTX_MSG_PREPARE || t == PAYTX_MSG_COMMIT || t == PAYTX_MSG_ABORT;
	return t == PAYTX_MSG_VOTE || t == PAYTX_MSG_ACK;
}

/* Correlation ids are echoed into batch bodies: only printable ASCII that
 * needs no JSON escape is carried; anything else cannot be one of ours. */
static bool corr_valid(const char *s, size_t len)
{
	if (len > PAYTX_CORR_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

static void entry_props(struct paytx_entry *e, const char *corr, const char *tp)
{
	if (corr && corr_valid(corr, strlen(corr)))
		snprintf(e->correlation_id, sizeof(e->correlation_id), "%s", corr);
	if (tp && paytx_traceparent_valid(tp, strlen(tp)))
		snprintf(e->traceparent, sizeof(e->traceparent), "%s", tp);
}

static int body_from_json(enum paytx_msg_type type, struct json_object *body,
			  struct paytx_entry *e, struct paytx_fault *fault)
{
	switch (type) {
	case PAYTX_MSG_PREPARE:
		return msg_prepare_from_json(body, &e->u.prepare, fault);
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		e->u.decision.commit = type == PAYTX_MSG_COMMIT;
		return msg_decision_from_json(body, &e->u.decision, fault);
	case PAYTX_MSG_VOTE:
		return msg_vote_from_json(body, &e->u.vote, fault);
	default:
		return msg_ack_from_json(body, &e->u.ack, fault);
	}
}

static int single_decode(enum paytx_msg_type type, const char *body, size_t len,
			 struct paytx_entry *e, struct paytx_fault *fault)
{
	switch (type) {
	case PAYTX_MSG_PREPARE:
		return paytx_prepare_decode(body, len, &e->u.prepare, fault);
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		return paytx_decision_decode(body, len, type == PAYTX_MSG_COMMIT, &e->u.decision,
					     fault);
	case PAYTX_MSG_VOTE:
		return paytx_vote_decode(body, len, &e->u.vote, fault);
	default:
		return paytx_ack_decode(body, len, &e->u.ack, fault);
	}
}

__attribute__((format(printf, 3, 4)))
static int fail(struct paytx_fault *fault, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fault->text, sizeof(fault->text), fmt, ap);
	va_end(ap);
	fault->err = err;
	return err;
}

/* "entries[i].body.<field>: <rule>" from a body's own fault, or
 * "entries[i].body: <rule>" when that names the object itself. */
static int entry_fail(struct paytx_fault *fault, size_t i, const struct paytx_fault *inner)
{
	static const char itself[] = "message: ";
	char text[PAYTX_DETAIL_MAX];
	bool whole = strncmp(inner->text, itself, strlen(itself)) == 0;
	snprintf(text, sizeof(text), "%s", whole ? inner->text + strlen(itself) - 2 : inner->text);
	return fail(fault, inner->err, "entries[%zu].body%s%s", i, whole ? "" : ".", text);
}

static int entry_from_json(struct json_object *v, size_t i, enum paytx_batch_dir dir,
			   struct paytx_entry *e, struct paytx_fault *fault)
{
	struct paytx_fault inner = { 0 };
	struct json_object *type, *body, *corr = NULL, *tp = NULL;
	if (!json_object_is_type(v, json_type_object))
		return fail(fault, PAYTX_ETYPE, "entries[%zu]: must be an object", i);
	json_object_object_foreach(v, key, val) {
		(void)val;
		if (strcmp(key, "type") && strcmp(key, "correlation_id") &&
		    strcmp(key, "traceparent") && strcmp(key, "body"))
			return strict_json_safe_name(key)
				? fail(fault, PAYTX_EINVAL, "entries[%zu].%s: unknown field", i, key)
				: fail(fault, PAYTX_EINVAL, "entries[%zu]: unknown field (name not "
				       "shown)", i);
	}
	if (!json_object_object_get_ex(v, "type", &type) ||
	    !json_object_is_type(type, json_type_string))
		return fail(fault, PAYTX_EINVAL, "entries[%zu].type: required, a string", i);
	e->type = paytx_msg_type_parse(json_object_get_string(type),
				       (size_t)json_object_get_string_len(type));
	if (!type_of_dir(e->type, dir))
		return fail(fault, PAYTX_EMSGTYPE, "entries[%zu].type: must be %s", i,
			    dir == PAYTX_BATCH_REQUESTS ? "txn.prepare, txn.commit or txn.abort"
							: "txn.vote or txn.ack");
	json_object_object_get_ex(v, "correlation_id", &corr);
	if (corr && (!json_object_is_type(corr, json_type_string) ||
		     !corr_valid(json_object_get_string(corr),
				 (size_t)json_object_get_string_len(corr))))
		return fail(fault, PAYTX_EINVAL, "entries[%zu].correlation_id: must be a string "
			    "of at most %d printable ASCII characters", i, PAYTX_CORR_MAX);
	json_object_object_get_ex(v, "traceparent", &tp);
	if (tp && (!json_object_is_type(tp, json_type_string) ||
		   !paytx_traceparent_valid(json_object_get_string(tp),
					    (size_t)json_object_get_string_len(tp))))
		return fail(fault, PAYTX_EINVAL, "entries[%zu].traceparent: must be a W3C "
			    "traceparent", i);
	entry_props(e, corr ? json_object_get_string(corr) : NULL,
		    tp ? json_object_get_string(tp) : NULL);
	if (!json_object_object_get_ex(v, "body", &body))
		return fail(fault, PAYTX_EMISSING, "entries[%zu].body: required", i);
	if (!json_object_is_type(body, json_type_object))
		return fail(fault, PAYTX_ETYPE, "entries[%zu].body: must be an object", i);
	int err = body_from_json(e->type, body, e, &inner);
	return err ? entry_fail(fault, i, &inner) : 0;
}

static int batch_decode(enum paytx_batch_dir dir, const char *body, size_t len,
			struct paytx_entry *out, size_t max, size_t *n, struct paytx_fault *fault)
{
	struct json_object *root, *entries;
	int err = strict_json_parse(body, len, NULL, &root, fault);
	if (err)
		return err;
	size_t count = 0;
	json_object_object_foreach(root, key, val) {
		(void)val;
		if (strcmp(key, "entries")) {
			err = fail(fault, PAYTX_EINVAL, "%s: unknown field",
				   strict_json_safe_name(key) ? key : "(name not shown)");
			goto out;
		}
	}
	if (!json_object_object_get_ex(root, "entries", &entries)) {
		err = fail(fault, PAYTX_EMISSING, "entries: required");
		goto out;
	}
	if (!json_object_is_type(entries, json_type_array) ||
	    (count = json_object_array_length(entries)) < 1 || count > PAYTX_BATCH_MAX ||
	    count > max) {
		err = fail(fault, PAYTX_EINVAL, "entries: must be an array of 1 to %d entries",
			   PAYTX_BATCH_MAX);
		goto out;
	}
	for (size_t i = 0; !err && i < count; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		err = entry_from_json(json_object_array_get_idx(entries, i), i, dir, &out[i], fault);
	}
out:
	json_object_put(root);
	*n = err ? 0 : count;
	return err;
}

int paytx_entries_decode(enum paytx_msg_type type, enum paytx_batch_dir dir, const char *body,
			 size_t len, const char *correlation_id, const char *traceparent,
			 struct paytx_entry *out, size_t max, size_t *n, struct paytx_fault *fault)
{
	struct paytx_fault scratch;
	if (!fault)
		fault = &scratch;
	fault->err = 0;
	fault->text[0] = '\0';
	*n = 0;
	if (type == PAYTX_MSG_BATCH)
		return batch_decode(dir, body, len, out, max, n, fault);
	if (!type_of_dir(type, dir))
		return fail(fault, PAYTX_EMSGTYPE, "%s",
			    dir == PAYTX_BATCH_REQUESTS
				    ? "participants accept txn.prepare, txn.commit, txn.abort and "
				      "txn.batch only"
				    : "expected txn.vote, txn.ack or txn.batch");
	if (max < 1)
		return fail(fault, PAYTX_EINVAL, "no room for the message");
	memset(out, 0, sizeof(*out));
	out->type = type;
	int err = single_decode(type, body, len, out, fault);
	if (err)
		return err;
	entry_props(out, correlation_id, traceparent);
	*n = 1;
	return 0;
}

/* ---- building ----------------------------------------------------------- */

#define BATCH_HEAD "{\"entries\":["
#define BATCH_TAIL "]}"

int paytx_batch_begin(struct paytx_buf *out)
{
	return paytx_buf_append(out, BATCH_HEAD, strlen(BATCH_HEAD));
}

int paytx_batch_end(struct paytx_buf *out)
{
	return paytx_buf_append(out, BATCH_TAIL, strlen(BATCH_TAIL));
}

static bool carried_corr(const char *c)
{
	return c && *c && corr_valid(c, strlen(c));
}

static bool carried_tp(const char *tp)
{
	return tp && paytx_traceparent_valid(tp, strlen(tp));
}

size_t paytx_batch_entry_size(const char *correlation_id, const char *traceparent, size_t len)
{
	/* ,{"type":"txn.prepare","correlation_id":"...","traceparent":"...","body":...} */
	size_t n = 1 + 10 + 16 + 9 + len + 1;
	if (carried_corr(correlation_id))
		n += 20 + strlen(correlation_id);
	if (carried_tp(traceparent))
		n += 17 + strlen(traceparent);
	return n;
}

int paytx_batch_add(struct paytx_buf *out, bool first, enum paytx_msg_type type,
		    const char *correlation_id, const char *traceparent, const char *body,
		    size_t len)
{
	char head[320];
	int k = snprintf(head, sizeof(head), "%s{\"type\":\"%s\"", first ? "" : ",",
			 paytx_msg_type_name(type));
	if (carried_corr(correlation_id))
		k += snprintf(head + k, sizeof(head) - (size_t)k, ",\"correlation_id\":\"%s\"",
			      correlation_id);
	if (carried_tp(traceparent))
		k += snprintf(head + k, sizeof(head) - (size_t)k, ",\"traceparent\":\"%s\"",
			      traceparent);
	k += snprintf(head + k, sizeof(head) - (size_t)k, ",\"body\":");
	int err = paytx_buf_append(out, head, (size_t)k);
	if (!err)
		err = paytx_buf_append(out, body, len);
	if (!err)
		err = paytx_buf_append(out, "}", 1);
	return err;
}

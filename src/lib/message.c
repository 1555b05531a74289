/* Messages of the paytx protocol: type names, identifiers and strict decoders */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "paytx/message.h"
#include "message_json.h"
#include "strict_json.h"

#define AMOUNT_RULE "must be a nonzero integer of at most 10^15 in magnitude"

/* The sum of one currency's amounts cannot overflow int64. */
_Static_assert(PAYTX_LEGS_MAX * PAYTX_AMOUNT_MAX < INT64_MAX / 2, "leg sums fit in int64");

static const char *const msg_type_names[] = {
	[PAYTX_MSG_UNKNOWN] = "unknown",
	[PAYTX_MSG_SUBMIT] = "payment.submit",
	[PAYTX_MSG_PREPARE] = "txn.prepare",
	[PAYTX_MSG_VOTE] = "txn.vote",
	[PAYTX_MSG_COMMIT] = "txn.commit",
	[PAYTX_MSG_ABORT] = "txn.abort",
	[PAYTX_MSG_ACK] = "txn.ack",
	[PAYTX_MSG_STATUS] = "txn.status",
	[PAYTX_MSG_OUTCOME] = "payment.outcome",
	[PAYTX_MSG_BALANCE_QUERY] = "balance.query",
	[PAYTX_MSG_BALANCE] = "balance.result",
	[PAYTX_MSG_BATCH] = "txn.batch",
};

#define MSG_TYPE_COUNT (sizeof(msg_type_names) / sizeof(msg_type_names[0]))

static const char *const status_names[] = { "committed", "aborted", "rejected", NULL };

/* One JSON object being decoded, and where it sits in the message. */
struct fields {
	struct json_object *obj;
	const char *path;                /* "" at top level, "legs[1]" in a leg */
	struct paytx_fault *fault;
};

typedef int (*decode_fn)(struct json_object *root, void *out, struct paytx_fault *fault);

/* Fill the fault as "path.key: rule"; key NULL names the object itself. */
__attribute__((format(printf, 4, 5)))
static int fld_fail(const struct fields *f, const char *key, int err, const char *fmt, ...)
{
	char rule[128];
	const char *sep = f->path[0] && key ? "." : "";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rule, sizeof(rule), fmt, ap);
	va_end(ap);
	if (!f->path[0] && !key)
		key = "message";
	f->fault->err = err;
	snprintf(f->fault->text, sizeof(f->fault->text), "%s%s%s: %s", f->path, sep,
		 key ? key : "", rule);
	return err;
}

/* 0 with *v set when present, 1 when absent and optional, < 0 on error. */
static int fld_find(const struct fields *f, const char *key, bool required,
		    struct json_object **v)
{
	if (json_object_object_get_ex(f->obj, key, v))
		return 0;
	if (required)
		return fld_fail(f, key, PAYTX_EMISSING, "required");
	return 1;
}

/* Refuse members not in allowed (NULL-terminated). */
static int fld_only(const struct fields *f, const char *const *allowed)
{
	size_t i;

	json_object_object_foreach(f->obj, key, val) {
		(void)val;
		for (i = 0; allowed[i] && strcmp(allowed[i], key) != 0; i++)
			;
		if (allowed[i])
			continue;
		if (strict_json_safe_name(key))
			return fld_fail(f, key, PAYTX_EINVAL, "unknown field");
		return fld_fail(f, NULL, PAYTX_EINVAL, "unknown field (name not shown)");
	}
	return 0;
}

/* json-c saturates integers beyond int64 (to INT64_MIN, INT64_MAX or a
 * uint64 up to UINT64_MAX); treat all of them, and INT64_MIN, as out of range. */
static bool int64_exact(struct json_object *v, int64_t *out)
{
	int64_t i = json_object_get_int64(v);

	if (i == INT64_MIN)
		return false;
	if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return false;
	*out = i;
	return true;
}

static int fld_int(const struct fields *f, const char *key, struct json_object **v)
{
	int err = fld_find(f, key, true, v);

	if (err)
		return err;
	if (!json_object_is_type(*v, json_type_int))
		return fld_fail(f, key, PAYTX_ETYPE, "must be an integer");
	return 0;
}

/* A required integer in [min, 2^63 - 1]; min is 0 or 1. */
static int fld_int64(const struct fields *f, const char *key, int64_t min, int64_t *out)
{
	struct json_object *v;
	int err = fld_int(f, key, &v);

	if (err)
		return err;
	if (!int64_exact(v, out) || *out < min)
		return fld_fail(f, key, PAYTX_ERANGE, "must be an integer from %s to 2^63-1",
				min > 0 ? "1" : "0");
	return 0;
}

static int fld_amount(const struct fields *f, const char *key, bool positive, int64_t *out)
{
	struct json_object *v;
	int err = fld_int(f, key, &v);

	if (err)
		return err;
	if (!int64_exact(v, out) || *out == 0 || *out > PAYTX_AMOUNT_MAX ||
	    *out < -PAYTX_AMOUNT_MAX)
		return fld_fail(f, key, PAYTX_ERANGE, AMOUNT_RULE);
	if (positive && *out < 0)
		return fld_fail(f, key, PAYTX_ERANGE, "must be an integer from 1 to 10^15");
	return 0;
}

/* 0 with the string in *s (length *n, may hold NUL), 1 when absent. */
static int fld_string(const struct fields *f, const char *key, bool required,
		      const char **s, size_t *n)
{
	struct json_object *v;
	int err = fld_find(f, key, required, &v);

	if (err)
		return err;
	if (!json_object_is_type(v, json_type_string))
		return fld_fail(f, key, PAYTX_ETYPE, "must be a string");
	*s = json_object_get_string(v);
	*n = (size_t)json_object_get_string_len(v);
	return 0;
}

/* A required identifier; allow_empty admits "" as well. */
static int fld_id(const struct fields *f, const char *key, bool allow_empty,
		  char out[PAYTX_ID_MAX + 1])
{
	const char *s = NULL;
	size_t n = 0;
	int err = fld_string(f, key, true, &s, &n);

	if (err)
		return err;
	if (!paytx_id_valid(s, n) && !(allow_empty && n == 0))
		return fld_fail(f, key, PAYTX_EINVAL,
				"must be 1 to 64 characters of A-Z a-z 0-9 . _ : -");
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* Free text that fits in out[size]; absent and optional gives "". */
static int fld_text(const struct fields *f, const char *key, bool required, char *out,
		    size_t size)
{
	const char *s = NULL;
	size_t n = 0;
	int err = fld_string(f, key, required, &s, &n);

	out[0] = '\0';
	if (err)
		return err < 0 ? err : 0;
	if (n >= size)
		return fld_fail(f, key, PAYTX_EINVAL, "longer than %zu bytes", size - 1);
	if (memchr(s, '\0', n))
		return fld_fail(f, key, PAYTX_EINVAL, "must not contain NUL");
	memcpy(out, s, n + 1);
	return 0;
}

static int fld_currency(const struct fields *f, const char *key, char out[4])
{
	const char *s = NULL;
	size_t n = 0;
	int err = fld_string(f, key, true, &s, &n);

	if (err)
		return err;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			n = 0;
	if (n != 3)
		return fld_fail(f, key, PAYTX_EINVAL, "must be 3 upper-case letters A-Z");
	memcpy(out, s, 4);
	return 0;
}

/* A required string among choices (NULL-terminated); *index tells which. */
static int fld_choice(const struct fields *f, const char *key, const char *const *choices,
		      const char *rule, size_t *index)
{
	const char *s = NULL;
	size_t n = 0;
	int err = fld_string(f, key, true, &s, &n);

	if (err)
		return err;
	for (size_t i = 0; choices[i]; i++) {
		if (strlen(choices[i]) == n && memcmp(choices[i], s, n) == 0) {
			*index = i;
			return 0;
		}
	}
	return fld_fail(f, key, PAYTX_EINVAL, "%s", rule);
}

static int decode_leg(struct json_object *v, size_t i, struct paytx_fault *fault,
		      struct paytx_leg *leg)
{
	static const char *const allowed[] = { "account", "amount", "currency", NULL };
	char path[32];
	struct fields f = { v, path, fault };
	int err;

	snprintf(path, sizeof(path), "legs[%zu]", i);
	if (!json_object_is_type(v, json_type_object))
		return fld_fail(&f, NULL, PAYTX_ETYPE, "must be an object");
	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_id(&f, "account", false, leg->account)) < 0 ||
	    (err = fld_amount(&f, "amount", false, &leg->amount)) < 0 ||
	    (err = fld_currency(&f, "currency", leg->currency)) < 0)
		return err;
	return 0;
}

static int decode_legs(const struct fields *f, size_t min, struct paytx_leg *legs,
		       size_t *nlegs)
{
	struct json_object *arr;
	size_t n = 0;
	int err = fld_find(f, "legs", true, &arr);

	if (err)
		return err;
	if (!json_object_is_type(arr, json_type_array))
		return fld_fail(f, "legs", PAYTX_ETYPE, "must be an array");
	n = json_object_array_length(arr);
	if (n < min || n > PAYTX_LEGS_MAX)
		return fld_fail(f, "legs", PAYTX_EINVAL, "must have %zu to %d legs", min,
				PAYTX_LEGS_MAX);
	for (size_t i = 0; i < n; i++)
		if ((err = decode_leg(json_object_array_get_idx(arr, i), i, f->fault,
				      &legs[i])) < 0)
			return err;
	*nlegs = n;
	return 0;
}

static int check_balance(const struct fields *f, const struct paytx_leg *legs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t sum = 0;
		bool done = false;

		for (size_t j = 0; j < i && !done; j++)
			done = strcmp(legs[j].currency, legs[i].currency) == 0;
		for (size_t j = i; j < n && !done; j++) {
			if (strcmp(legs[j].currency, legs[i].currency) == 0)
				sum += legs[j].amount;
			assert(sum <= PAYTX_LEGS_MAX * PAYTX_AMOUNT_MAX &&
			       sum >= -PAYTX_LEGS_MAX * PAYTX_AMOUNT_MAX);
		}
		if (!done && sum != 0)
			return fld_fail(f, "legs", PAYTX_EUNBALANCED,
					"amounts must sum to zero in each currency");
	}
	return 0;
}

/* Legs that net to zero on every (account, currency) would post nothing. */
static int check_moves_money(const struct fields *f, const struct paytx_leg *legs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t net = 0;
		for (size_t j = 0; j < n; j++)
			if (strcmp(legs[j].account, legs[i].account) == 0 &&
			    strcmp(legs[j].currency, legs[i].currency) == 0)
				net += legs[j].amount;
		if (net != 0)
			return 0;
	}
	return fld_fail(f, "legs", PAYTX_EINVAL, "the payment moves no money");
}

static int decode_shorthand(const struct fields *f, struct paytx_payment *p)
{
	int64_t amount;
	int err;

	if ((err = fld_id(f, "from", false, p->legs[0].account)) < 0 ||
	    (err = fld_id(f, "to", false, p->legs[1].account)) < 0 ||
	    (err = fld_amount(f, "amount", true, &amount)) < 0 ||
	    (err = fld_currency(f, "currency", p->legs[0].currency)) < 0)
		return err;
	if (strcmp(p->legs[0].account, p->legs[1].account) == 0)
		return fld_fail(f, "to", PAYTX_EINVAL, "must differ from 'from'");
	memcpy(p->legs[1].currency, p->legs[0].currency, sizeof(p->legs[1].currency));
	p->legs[0].amount = -amount;
	p->legs[1].amount = amount;
	p->nlegs = 2;
	return 0;
}

/* Optional object; stored serialized, so it is the last thing decoded. */
/* Would json-c store this metadata value differently from what was sent?
 * It clamps integers beyond 64 bits and turns huge decimals into inf. */
static bool metadata_exact(struct json_object *v)
{
	int64_t i;

	switch (json_object_get_type(v)) {
	case json_type_int:
		return int64_exact(v, &i);
	case json_type_double:
		return isfinite(json_object_get_double(v));
	case json_type_array:
		for (size_t k = 0; k < json_object_array_length(v); k++)
			if (!metadata_exact(json_object_array_get_idx(v, k)))
				return false;
		return true;
	case json_type_object: {
		json_object_object_foreach(v, key, val) {
			(void)key;
			if (!metadata_exact(val))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

static int decode_metadata(const struct fields *f, char **out)
{
	struct json_object *v;
	const char *s = NULL;
	size_t n = 0;
	int err = fld_find(f, "metadata", false, &v);

	*out = NULL;
	if (err)
		return err < 0 ? err : 0;
	if (!json_object_is_type(v, json_type_object))
		return fld_fail(f, "metadata", PAYTX_ETYPE, "must be an object");
	if (!metadata_exact(v))
		return fld_fail(f, "metadata", PAYTX_EINVAL,
				"numbers must be integers within 64 bits or finite decimals");
	s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
					       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return fld_fail(f, "metadata", PAYTX_ENOMEM, "out of memory");
	n = strlen(s);
	if (n > PAYTX_METADATA_MAX)
		return fld_fail(f, "metadata", PAYTX_ETOOBIG, "more than %d bytes serialized",
				PAYTX_METADATA_MAX);
	*out = malloc(n + 1);
	if (!*out)
		return fld_fail(f, "metadata", PAYTX_ENOMEM, "out of memory");
	memcpy(*out, s, n + 1);
	return 0;
}

static int payment_from_json(struct json_object *root, void *out, struct paytx_fault *fault)
{
	static const char *const allowed[] = { "payment_id", "legs", "from", "to", "amount",
					       "currency", "metadata", NULL };
	static const char *const shorthand[] = { "from", "to", "amount", "currency", NULL };
	struct paytx_payment *p = out;
	struct fields f = { root, "", fault };
	bool has_legs = json_object_object_get_ex(root, "legs", NULL);
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_id(&f, "payment_id", false, p->payment_id)) < 0)
		return err;
	for (size_t i = 0; has_legs && shorthand[i]; i++)
		if (json_object_object_get_ex(root, shorthand[i], NULL))
			return fld_fail(&f, "legs", PAYTX_EINVAL,
					"cannot be combined with from, to, amount, currency");
	if (has_legs)
		err = decode_legs(&f, PAYTX_LEGS_MIN, p->legs, &p->nlegs);
	else if (!json_object_object_get_ex(root, "from", NULL) &&
		 !json_object_object_get_ex(root, "to", NULL))
		return fld_fail(&f, "legs", PAYTX_EMISSING, "required (or from, to, amount, currency)");
	else
		err = decode_shorthand(&f, p);
	if (err < 0 || (err = check_balance(&f, p->legs, p->nlegs)) < 0 ||
	    (err = check_moves_money(&f, p->legs, p->nlegs)) < 0)
		return err;
	return decode_metadata(&f, &p->metadata);
}

int msg_prepare_from_json(struct json_object *root, void *out, struct paytx_fault *fault)
{
	static const char *const allowed[] = { "txn", "payment_id", "legs", "deadline_ms", NULL };
	struct paytx_prepare *p = out;
	struct fields f = { root, "", fault };
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_int64(&f, "txn", 1, &p->txn)) < 0 ||
	    (err = fld_id(&f, "payment_id", false, p->payment_id)) < 0 ||
	    (err = decode_legs(&f, 1, p->legs, &p->nlegs)) < 0 ||
	    (err = fld_int64(&f, "deadline_ms", 0, &p->deadline_ms)) < 0)
		return err;
	return 0;
}

int msg_vote_from_json(struct json_object *root, void *out, struct paytx_fault *fault)
{
	static const char *const allowed[] = { "txn", "participant", "vote", "reason", "detail",
					       NULL };
	static const char *const votes[] = { "yes", "no", NULL };
	struct paytx_vote *v = out;
	struct fields f = { root, "", fault };
	size_t which;
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_int64(&f, "txn", 1, &v->txn)) < 0 ||
	    (err = fld_id(&f, "participant", false, v->participant)) < 0 ||
	    (err = fld_choice(&f, "vote", votes, "must be \"yes\" or \"no\"", &which)) < 0)
		return err;
	v->yes = which == 0;
	if ((err = fld_text(&f, "reason", !v->yes, v->reason, sizeof(v->reason))) < 0 ||
	    (err = fld_text(&f, "detail", false, v->detail, sizeof(v->detail))) < 0)
		return err;
	if (!v->yes && !v->reason[0])
		return fld_fail(&f, "reason", PAYTX_EINVAL, "must not be empty when vote is no");
	if (v->yes && v->reason[0])
		return fld_fail(&f, "reason", PAYTX_EINVAL, "only allowed when vote is no");
	return 0;
}

int msg_decision_from_json(struct json_object *root, void *out, struct paytx_fault *fault)
{
	static const char *const allowed[] = { "txn", "payment_id", NULL };
	struct paytx_decision *d = out;
	struct fields f = { root, "", fault };
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_int64(&f, "txn", 1, &d->txn)) < 0 ||
	    (err = fld_id(&f, "payment_id", false, d->payment_id)) < 0)
		return err;
	return 0;
}

int msg_ack_from_json(struct json_object *root, void *out, struct paytx_fault *fault)
{
	static const char *const allowed[] = { "txn", "participant", "decision", NULL };
	static const char *const decisions[] = { "commit", "abort", NULL };
	struct paytx_ack *a = out;
	struct fields f = { root, "", fault };
	size_t which;
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_int64(&f, "txn", 1, &a->txn)) < 0 ||
	    (err = fld_id(&f, "participant", false, a->participant)) < 0 ||
	    (err = fld_choice(&f, "decision", decisions, "must be \"commit\" or \"abort\"",
			      &which)) < 0)
		return err;
	a->commit = which == 0;
	return 0;
}

static int status_query_from_json(struct json_object *root, void *out,
				  struct paytx_fault *fault)
{
	static const char *const allowed[] = { "txn", "participant", NULL };
	struct paytx_status_query *q = out;
	struct fields f = { root, "", fault };
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_int64(&f, "txn", 1, &q->txn)) < 0 ||
	    (err = fld_id(&f, "participant", false, q->participant)) < 0)
		return err;
	return 0;
}

static int outcome_from_json(struct json_object *root, void *out, struct paytx_fault *fault)
{
	static const char *const allowed[] = { "payment_id", "status", "reason", "detail", "txn",
					       "submitted_at_ms", "finished_at_ms", NULL };
	struct paytx_outcome *o = out;
	struct fields f = { root, "", fault };
	size_t which;
	int err;

	if ((err = fld_only(&f, allowed)) < 0 ||
	    (err = fld_choice(&f, "status", status_names,
			      "must be \"committed\", \"aborted\" or \"rejected\"", &which)) < 0)
		return err;
	o->status = (enum paytx_status)(PAYTX_STATUS_COMMITTED + (int)which);
	/* A request rejected before its payment_id was read has none. */
	if ((err = fld_id(&f, "payment_id", o->status == PAYTX_STATUS_REJECTED,
			  o->payment_id)) < 0 ||
	    (err = fld_text(&f, "reason", true, o->reason, sizeof(o->reason))) < 0 ||
	    (err = fld_text(&f, "detail", true, o->detail, sizeof(o->detail))) < 0 ||
	    (err = fld_int64(&f, "txn", 0, &o->txn)) < 0 ||
	    (err = fld_int64(&f, "submitted_at_ms", 0, &o->submitted_ms)) < 0 ||
	    (err = fld_int64(&f, "finished_at_ms", 0, &o->finished_ms)) < 0)
		return err;
	return 0;
}

/* Parse strictly, then run fn on the root object. out (size bytes) must be
 * zeroed except for what the caller preset; it is zeroed again on failure. */
static int decode(const char *body, size_t len, decode_fn fn, void *out, size_t size,
		  struct paytx_fault *fault)
{
	struct paytx_fault scratch;
	struct json_object *root;
	int err;

	if (!fault)
		fault = &scratch;
	fault->err = 0;
	fault->text[0] = '\0';
	err = strict_json_parse(body, len, "metadata", &root, fault);
	if (err == 0) {
		err = fn(root, out, fault);
		json_object_put(root);
	}
	if (err < 0)
		memset(out, 0, size);
	return err;
}

const char *paytx_msg_type_name(enum paytx_msg_type type)
{
	if ((size_t)type >= MSG_TYPE_COUNT)
		return msg_type_names[PAYTX_MSG_UNKNOWN];
	return msg_type_names[type];
}

enum paytx_msg_type paytx_msg_type_parse(const char *name, size_t len)
{
	if (!name)
		return PAYTX_MSG_UNKNOWN;
	for (size_t i = PAYTX_MSG_UNKNOWN + 1; i < MSG_TYPE_COUNT; i++)
		if (strlen(msg_type_names[i]) == len && memcmp(msg_type_names[i], name, len) == 0)
			return (enum paytx_msg_type)i;
	return PAYTX_MSG_UNKNOWN;
}

bool paytx_msg_type_protocol(enum paytx_msg_type t)
{
	return (t >= PAYTX_MSG_PREPARE && t <= PAYTX_MSG_STATUS) || t == PAYTX_MSG_BATCH;
}

const char *paytx_status_name(enum paytx_status status)
{
	if (status < PAYTX_STATUS_COMMITTED || status > PAYTX_STATUS_REJECTED)
		return "unknown";
	return status_names[status - PAYTX_STATUS_COMMITTED];
}

bool paytx_id_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > PAYTX_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

void paytx_guess_payment_id(const char *body, size_t len, char *out, size_t n)
{
	out[0] = '\0';
	if (len > PAYTX_MESSAGE_MAX)
		return;
	struct json_tokener *tok = json_tokener_new_ex(PAYTX_JSON_DEPTH_MAX);
	struct json_object *root = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
	struct json_object *id;
	if (root && json_object_object_get_ex(root, "payment_id", &id) &&
	    json_object_is_type(id, json_type_string) &&
	    paytx_id_valid(json_object_get_string(id), (size_t)json_object_get_string_len(id)))
		snprintf(out, n, "%s", json_object_get_string(id));
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
}

bool paytx_traceparent_valid(const char *s, size_t len)
{
	if (!s || len != 55)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool dash = i == 2 || i == 35 || i == 52;
		char c = s[i];
		if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

int paytx_payment_decode(const char *body, size_t len, struct paytx_payment *out,
			 struct paytx_fault *fault)
{
	/* metadata is decoded last, so a failure never leaves it allocated. */
	memset(out, 0, sizeof(*out));
	return decode(body, len, payment_from_json, out, sizeof(*out), fault);
}

int paytx_prepare_decode(const char *body, size_t len, struct paytx_prepare *out,
			 struct paytx_fault *fault)
{
	memset(out, 0, sizeof(*out));
	return decode(body, len, msg_prepare_from_json, out, sizeof(*out), fault);
}

int paytx_vote_decode(const char *body, size_t len, struct paytx_vote *out,
		      struct paytx_fault *fault)
{
	memset(out, 0, sizeof(*out));
	return decode(body, len, msg_vote_from_json, out, sizeof(*out), fault);
}

int paytx_decision_decode(const char *body, size_t len, bool commit,
			  struct paytx_decision *out, struct paytx_fault *fault)
{
	memset(out, 0, sizeof(*out));
	out->commit = commit;
	return decode(body, len, msg_decision_from_json, out, sizeof(*out), fault);
}

int paytx_ack_decode(const char *body, size_t len, struct paytx_ack *out,
		     struct paytx_fault *fault)
{
	memset(out, 0, sizeof(*out));
	return decode(body, len, msg_ack_from_json, out, sizeof(*out), fault);
}

int paytx_status_query_decode(const char *body, size_t len, struct paytx_status_query *out,
			      struct paytx_fault *fault)
{
	memset(out, 0, sizeof(*out));
	return decode(body, len, status_query_from_json, out, sizeof(*out), fault);
}

int paytx_outcome_decode(const char *body, size_t len, struct paytx_outcome *out,
			 struct paytx_fault *fault)
{
	memset(out, 0, sizeof(*out));
	return decode(body, len, outcome_from_json, out, sizeof(*out), fault);
}

void paytx_payment_finish(struct paytx_payment *p)
{
	if (!p)
		return;
	free(p->metadata);
	p->metadata = NULL;
}

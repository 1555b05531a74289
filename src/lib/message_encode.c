/* Messages of the paytx protocol: JSON encoders and the canonical payment form */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "paytx/message.h"
#include "strict_json.h"

#define ENCODE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Add v (taken over, NULL meaning out of memory) as obj[key]; false on failure. */
static bool put(struct json_object *obj, const char *key, struct json_object *v)
{
	if (!v)
		return false;
	if (json_object_object_add(obj, key, v) < 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

static bool put_str(struct json_object *obj, const char *key, const char *s)
{
	return put(obj, key, json_object_new_string(s));
}

static bool put_int(struct json_object *obj, const char *key, int64_t i)
{
	return put(obj, key, json_object_new_int64(i));
}

/* Serialize obj (taken over, may be NULL) and append it to out; ok false
 * means building obj ran out of memory. */
static int emit(struct json_object *obj, bool ok, struct paytx_buf *out)
{
	const char *s;
	int err = PAYTX_ENOMEM;

	if (obj && ok) {
		s = json_object_to_json_string_ext(obj, ENCODE_FLAGS);
		if (s)
			err = paytx_buf_append(out, s, strlen(s));
	}
	json_object_put(obj);
	return err;
}

static struct json_object *legs_to_json(const struct paytx_leg *legs, size_t n)
{
	struct json_object *arr = json_object_new_array_ext((int)n);
	struct json_object *leg;
	bool ok = arr != NULL;

	for (size_t i = 0; ok && i < n; i++) {
		leg = json_object_new_object();
		ok = leg && put_str(leg, "account", legs[i].account) &&
		     put_int(leg, "amount", legs[i].amount) &&
		     put_str(leg, "currency", legs[i].currency) &&
		     json_object_array_add(arr, leg) == 0;
		if (!ok)
			json_object_put(leg);
	}
	if (!ok) {
		json_object_put(arr);
		return NULL;
	}
	return arr;
}

/* Parse stored metadata (a JSON object) back into a tree. */
static int metadata_parse(const char *metadata, struct json_object **out)
{
	struct paytx_fault fault;

	return strict_json_parse(metadata, strlen(metadata), NULL, out, &fault);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int sorted_copy(struct json_object *v, struct json_object **out);

/* A copy of object v whose members are inserted in byte order of keys;
 * json-c serializes members in insertion order. */
static int sorted_object(struct json_object *v, struct json_object **out)
{
	size_t n = (size_t)json_object_object_length(v), i = 0;
	const char **keys = malloc((n + 1) * sizeof(*keys));
	struct json_object *copy = json_object_new_object(), *child;
	int err = copy && keys ? 0 : PAYTX_ENOMEM;

	json_object_object_foreach(v, key, val) {
		(void)val;
		if (keys)
			keys[i++] = key;
	}
	if (keys)
		qsort(keys, n, sizeof(*keys), cmp_key);
	for (i = 0; err == 0 && i < n; i++) {
		err = sorted_copy(json_object_object_get(v, keys[i]), &child);
		if (err == 0 && json_object_object_add(copy, keys[i], child) < 0) {
			json_object_put(child);
			err = PAYTX_ENOMEM;
		}
	}
	free(keys);
	if (err < 0) {
		json_object_put(copy);
		copy = NULL;
	}
	*out = copy;
	return err;
}

/* Deep copy with sorted keys; scalars are shared. json null is NULL. */
static int sorted_copy(struct json_object *v, struct json_object **out)
{
	struct json_object *arr, *child;
	size_t n;
	int err = 0;

	if (json_object_is_type(v, json_type_object))
		return sorted_object(v, out);
	if (!json_object_is_type(v, json_type_array)) {
		*out = json_object_get(v);
		return 0;
	}
	n = json_object_array_length(v);
	arr = json_object_new_array_ext((int)n);
	if (!arr)
		return PAYTX_ENOMEM;
	for (size_t i = 0; err == 0 && i < n; i++) {
		err = sorted_copy(json_object_array_get_idx(v, i), &child);
		if (err == 0 && json_object_array_add(arr, child) < 0) {
			json_object_put(child);
			err = PAYTX_ENOMEM;
		}
	}
	if (err < 0) {
		json_object_put(arr);
		arr = NULL;
	}
	*out = arr;
	return err;
}

static int cmp_leg(const void *a, const void *b)
{
	const struct paytx_leg *x = a, *y = b;
	int c = strcmp(x->account, y->account);

	return c ? c : strcmp(x->currency, y->currency);
}

/* Legs sorted by (account, currency), same pairs summed, zero sums dropped. */
static size_t merge_legs(const struct paytx_payment *p, struct paytx_leg *legs)
{
	size_t n = 0;

	memcpy(legs, p->legs, p->nlegs * sizeof(*legs));
	qsort(legs, p->nlegs, sizeof(*legs), cmp_leg);
	for (size_t i = 0; i < p->nlegs; i++) {
		if (n > 0 && cmp_leg(&legs[n - 1], &legs[i]) == 0)
			legs[n - 1].amount += legs[i].amount;
		else
			legs[n++] = legs[i];
		if (legs[n - 1].amount == 0 && (i + 1 == p->nlegs ||
						cmp_leg(&legs[n - 1], &legs[i + 1]) != 0))
			n--;
	}
	return n;
}

int paytx_payment_canonical(const struct paytx_payment *p, struct paytx_buf *out)
{
	struct paytx_leg legs[PAYTX_LEGS_MAX];
	struct json_object *obj, *meta = NULL, *sorted = NULL;
	size_t n;
	bool ok;
	int err;

	if (p->nlegs > PAYTX_LEGS_MAX)
		return PAYTX_EINVAL;
	n = merge_legs(p, legs);
	if (p->metadata && (err = metadata_parse(p->metadata, &meta)) < 0)
		return err;
	err = meta ? sorted_copy(meta, &sorted) : 0;
	json_object_put(meta);
	if (err < 0)
		return err;
	obj = json_object_new_object();
	ok = obj && put_str(obj, "payment_id", p->payment_id) &&
	     put(obj, "legs", legs_to_json(legs, n));
	/* No metadata is a json null, which json-c stores as a NULL value. */
	if (ok && json_object_object_add(obj, "metadata", sorted) == 0)
		sorted = NULL;
	else
		ok = false;
	json_object_put(sorted);
	return emit(obj, ok, out);
}

int paytx_payment_encode(const struct paytx_payment *p, struct paytx_buf *out)
{
	struct json_object *obj, *meta = NULL;
	bool ok;
	int err;

	if (p->nlegs > PAYTX_LEGS_MAX)
		return PAYTX_EINVAL;
	if (p->metadata && (err = metadata_parse(p->metadata, &meta)) < 0)
		return err;
	obj = json_object_new_object();
	ok = obj && put_str(obj, "payment_id", p->payment_id) &&
	     put(obj, "legs", legs_to_json(p->legs, p->nlegs));
	if (ok && meta)
		ok = put(obj, "metadata", meta);
	else
		json_object_put(meta);
	return emit(obj, ok, out);
}

int paytx_prepare_encode(const struct paytx_prepare *p, struct paytx_buf *out)
{
	struct json_object *obj;

	if (p->nlegs > PAYTX_LEGS_MAX)
		return PAYTX_EINVAL;
	obj = json_object_new_object();
	return emit(obj, obj && put_int(obj, "txn", p->txn) &&
			 put_str(obj, "payment_id", p->payment_id) &&
			 put(obj, "legs", legs_to_json(p->legs, p->nlegs)) &&
			 put_int(obj, "deadline_ms", p->deadline_ms),
		    out);
}

int paytx_vote_encode(const struct paytx_vote *v, struct paytx_buf *out)
{
	struct json_object *obj = json_object_new_object();

	return emit(obj, obj && put_int(obj, "txn", v->txn) &&
			 put_str(obj, "participant", v->participant) &&
			 put_str(obj, "vote", v->yes ? "yes" : "no") &&
			 (v->yes || put_str(obj, "reason", v->reason)) &&
			 (!v->detail[0] || put_str(obj, "detail", v->detail)),
		    out);
}

int paytx_decision_encode(const struct paytx_decision *d, struct paytx_buf *out)
{
	struct json_object *obj = json_object_new_object();

	return emit(obj, obj && put_int(obj, "txn", d->txn) &&
			 put_str(obj, "payment_id", d->payment_id),
		    out);
}

int paytx_ack_encode(const struct paytx_ack *a, struct paytx_buf *out)
{
	struct json_object *obj = json_object_new_object();

	return emit(obj, obj && put_int(obj, "txn", a->txn) &&
			 put_str(obj, "participant", a->participant) &&
			 put_str(obj, "decision", a->commit ? "commit" : "abort"),
		    out);
}

int paytx_status_query_encode(const struct paytx_status_query *q, struct paytx_buf *out)
{
	struct json_object *obj = json_object_new_object();

	return emit(obj, obj && put_int(obj, "txn", q->txn) &&
			 put_str(obj, "participant", q->participant),
		    out);
}

int paytx_outcome_encode(const struct paytx_outcome *o, struct paytx_buf *out)
{
	struct json_object *obj;

	if (o->status < PAYTX_STATUS_COMMITTED || o->status > PAYTX_STATUS_REJECTED)
		return PAYTX_EINVAL;
	obj = json_object_new_object();
	return emit(obj, obj && put_str(obj, "payment_id", o->payment_id) &&
			 put_str(obj, "status", paytx_status_name(o->status)) &&
			 put_str(obj, "reason", o->reason) &&
			 put_str(obj, "detail", o->detail) &&
			 put_int(obj, "txn", o->txn) &&
			 put_int(obj, "submitted_at_ms", o->submitted_ms) &&
			 put_int(obj, "finished_at_ms", o->finished_ms),
		    out);
}

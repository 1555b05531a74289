/* Unit tests of the message codec: strict decoding, encoders, canonical form */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paytx/error.h"
#include "paytx/message.h"
#include "grow.h"

#define LEGS "'legs':[{'account':'acc-a','amount':-100,'currency':'EUR'}," \
	     "{'account':'acc-b','amount':100,'currency':'EUR'}]"
#define LEG1 "'legs':[{'account':'acc-a','amount':-100,'currency':'EUR'}]"
#define BIG (PAYTX_MESSAGE_MAX + 64)

/* Tests write JSON with single quotes; J() turns them into double quotes.
 * Results live in a small ring, so a few may be used at once. */
static const char *J(const char *s)
{
	static char ring[4][BIG];
	static unsigned next;
	char *out = ring[next++ % 4];
	size_t i;

	for (i = 0; s[i] && i < BIG - 1; i++)
		out[i] = s[i] == '\'' ? '"' : s[i];
	out[i] = '\0';
	return out;
}

/* Decode body as a message of type; frees whatever a success allocated. */
static int decode_as(enum paytx_msg_type type, const char *body, size_t len,
		     struct paytx_fault *f)
{
	union {
		struct paytx_payment pay;
		struct paytx_prepare prep;
		struct paytx_vote vote;
		struct paytx_decision dec;
		struct paytx_ack ack;
		struct paytx_status_query st;
		struct paytx_outcome out;
	} u;
	int rc = PAYTX_EMSGTYPE;

	switch (type) {
	case PAYTX_MSG_SUBMIT:
		rc = paytx_payment_decode(body, len, &u.pay, f);
		if (rc < 0)
			ck_assert_ptr_null(u.pay.metadata);
		paytx_payment_finish(&u.pay);
		break;
	case PAYTX_MSG_PREPARE:
		rc = paytx_prepare_decode(body, len, &u.prep, f);
		break;
	case PAYTX_MSG_VOTE:
		rc = paytx_vote_decode(body, len, &u.vote, f);
		break;
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		rc = paytx_decision_decode(body, len, type == PAYTX_MSG_COMMIT, &u.dec, f);
		break;
	case PAYTX_MSG_ACK:
		rc = paytx_ack_decode(body, len, &u.ack, f);
		break;
	case PAYTX_MSG_STATUS:
		rc = paytx_status_query_decode(body, len, &u.st, f);
		break;
	case PAYTX_MSG_OUTCOME:
		rc = paytx_outcome_decode(body, len, &u.out, f);
		break;
	case PAYTX_MSG_BATCH: {
		static struct paytx_entry entries[PAYTX_BATCH_MAX];
		size_t n;
		rc = paytx_entries_decode(type, PAYTX_BATCH_REQUESTS, body, len, NULL, NULL, entries,
					  PAYTX_BATCH_MAX, &n, f);
		break;
	}
	case PAYTX_MSG_BALANCE_QUERY: /* read by paytx-cache's query service */
	case PAYTX_MSG_BALANCE:
	case PAYTX_MSG_UNKNOWN:
		break;
	}
	return rc;
}

static void fails_raw(enum paytx_msg_type type, const char *body, size_t len, int err,
		      const char *text)
{
	struct paytx_fault f;
	int rc = decode_as(type, body, len, &f);

	ck_assert_msg(rc == err, "%s: got %s (%s), want %s", paytx_msg_type_name(type),
		      paytx_errcode(rc), f.text, paytx_errcode(err));
	ck_assert_int_eq(f.err, err);
	if (text)
		ck_assert_msg(strstr(f.text, text) != NULL, "fault '%s' lacks '%s'", f.text, text);
}

static void fails(enum paytx_msg_type type, const char *json, int err, const char *text)
{
	const char *body = J(json);

	fails_raw(type, body, strlen(body), err, text);
}

static void passes(enum paytx_msg_type type, const char *json)
{
	struct paytx_fault f;
	const char *body = J(json);
	int rc = decode_as(type, body, strlen(body), &f);

	ck_assert_msg(rc == 0, "%s: got %s (%s)", body, paytx_errcode(rc), f.text);
	ck_assert_int_eq(f.err, 0);
}

static void decode_payment(const char *json, struct paytx_payment *p)
{
	struct paytx_fault f;
	const char *body = J(json);
	int rc = paytx_payment_decode(body, strlen(body), p, &f);

	ck_assert_msg(rc == 0, "%s: got %s (%s)", body, paytx_errcode(rc), f.text);
}

/* Canonical form of a submit body, as a malloc'ed string. */
static char *canonical_of(const char *json)
{
	struct paytx_payment p;
	struct paytx_buf buf;
	char *s;

	decode_payment(json, &p);
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_payment_canonical(&p, &buf), 0);
	s = strdup(buf.data);
	paytx_buf_finish(&buf);
	paytx_payment_finish(&p);
	return s;
}

/* A submit whose metadata is {"k":"xxx..."} serialized in exactly n bytes. */
static const char *submit_with_metadata_size(size_t n)
{
	static char body[BIG];
	size_t fill = n - strlen("{'k':''}");
	int off = snprintf(body, sizeof(body), "%s", J("{'payment_id':'p1'," LEGS ",'metadata':{'k':'"));

	memset(body + off, 'x', fill);
	snprintf(body + off + fill, sizeof(body) - (size_t)off - fill, "\"}}");
	return body;
}

/* ---- error codes ---- */

START_TEST(test_errcode_gives_the_documented_codes)
{
	ck_assert_str_eq(paytx_errcode(PAYTX_OK), "ok");
	ck_assert_str_eq(paytx_errcode(PAYTX_EINVAL), "invalid_request");
	ck_assert_str_eq(paytx_errcode(PAYTX_EJSON), "malformed_json");
	ck_assert_str_eq(paytx_errcode(PAYTX_ETOOBIG), "message_too_large");
	ck_assert_str_eq(paytx_errcode(PAYTX_EUTF8), "invalid_encoding");
	ck_assert_str_eq(paytx_errcode(PAYTX_EMISSING), "missing_field");
	ck_assert_str_eq(paytx_errcode(PAYTX_ETYPE), "wrong_type");
	ck_assert_str_eq(paytx_errcode(PAYTX_ERANGE), "amount_out_of_range");
	ck_assert_str_eq(paytx_errcode(PAYTX_EUNBALANCED), "unbalanced_legs");
	ck_assert_str_eq(paytx_errcode(PAYTX_EMSGTYPE), "unknown_message_type");
	ck_assert_str_eq(paytx_errcode(PAYTX_ESIG), "bad_signature");
	ck_assert_str_eq(paytx_errcode(PAYTX_ECONFLICT), "payment_id_conflict");
	ck_assert_str_eq(paytx_errcode(PAYTX_EBROKER), "broker_error");
	ck_assert_str_eq(paytx_errcode(PAYTX_EDB), "database_error");
	ck_assert_str_eq(paytx_errcode(PAYTX_ECONFIG), "bad_configuration");
	ck_assert_str_eq(paytx_errcode(PAYTX_ETIMEOUT), "timeout");
	ck_assert_str_eq(paytx_errcode(PAYTX_ENOTFOUND), "not_found");
	ck_assert_str_eq(paytx_errcode(PAYTX_EPROTO), "protocol_violation");
	ck_assert_str_eq(paytx_errcode(PAYTX_EUNROUTABLE), "unroutable");
}
END_TEST

START_TEST(test_unknown_error_values_give_unknown_error)
{
	ck_assert_str_eq(paytx_errcode(PAYTX_ERR_MIN_), "unknown_error");
	ck_assert_str_eq(paytx_errcode(-1000), "unknown_error");
	ck_assert_str_eq(paytx_errcode(1), "unknown_error");
	ck_assert_str_eq(paytx_strerror(1), "Unknown error");
}
END_TEST

START_TEST(test_strerror_gives_a_sentence_for_every_value)
{
	for (int err = PAYTX_ERR_MIN_ - 3; err <= 3; err++) {
		ck_assert_ptr_nonnull(paytx_strerror(err));
		ck_assert_uint_gt(strlen(paytx_strerror(err)), 3);
		ck_assert_ptr_nonnull(paytx_errcode(err));
	}
	ck_assert_str_ne(paytx_strerror(PAYTX_EJSON), paytx_strerror(PAYTX_EUTF8));
}
END_TEST

/* ---- buffer ---- */

START_TEST(test_grow_doubles_from_first_and_refuses_overflow)
{
	size_t cap = 0;
	int *v = paytx_grow(NULL, &cap, 0, sizeof(*v), 4);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(cap, 4);
	ck_assert_ptr_eq(paytx_grow(v, &cap, 3, sizeof(*v), 4), v); /* room left */
	v = paytx_grow(v, &cap, 4, sizeof(*v), 4);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(cap, 8);
	size_t huge = SIZE_MAX / 2;
	ck_assert_ptr_null(paytx_grow(v, &huge, huge, 4, 4));         /* would overflow */
	ck_assert_uint_eq(huge, SIZE_MAX / 2);
	free(v);
}
END_TEST

START_TEST(test_buf_append_grows_and_stays_nul_terminated)
{
	struct paytx_buf buf;
	char chunk[1000];

	memset(chunk, 'a', sizeof(chunk));
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_buf_append(&buf, "", 0), 0);
	ck_assert_uint_eq(buf.len, 0);
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(paytx_buf_append(&buf, chunk, sizeof(chunk)), 0);
		ck_assert_uint_eq(buf.len, (size_t)(i + 1) * sizeof(chunk));
		ck_assert_int_eq(buf.data[buf.len], '\0');
		ck_assert_uint_gt(buf.cap, buf.len);
	}
	ck_assert_int_eq(buf.data[0], 'a');
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_buf_reset_empties_and_keeps_memory)
{
	struct paytx_buf buf;
	size_t cap;

	paytx_buf_init(&buf);
	paytx_buf_reset(&buf);
	ck_assert_int_eq(paytx_buf_append(&buf, "hello", 5), 0);
	cap = buf.cap;
	paytx_buf_reset(&buf);
	ck_assert_uint_eq(buf.len, 0);
	ck_assert_uint_eq(buf.cap, cap);
	ck_assert_str_eq(buf.data, "");
	ck_assert_int_eq(paytx_buf_append(&buf, "yo", 2), 0);
	ck_assert_str_eq(buf.data, "yo");
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_buf_finish_releases_and_allows_reuse)
{
	struct paytx_buf buf;

	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_buf_append(&buf, "abc", 3), 0);
	paytx_buf_finish(&buf);
	ck_assert_ptr_null(buf.data);
	ck_assert_uint_eq(buf.len, 0);
	ck_assert_uint_eq(buf.cap, 0);
	paytx_buf_finish(&buf);
	ck_assert_int_eq(paytx_buf_append(&buf, "d", 1), 0);
	ck_assert_str_eq(buf.data, "d");
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_buf_append_of_null_data_is_invalid)
{
	struct paytx_buf buf;

	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_buf_append(&buf, NULL, 3), PAYTX_EINVAL);
	paytx_buf_finish(&buf);
}
END_TEST

/* ---- names and identifiers ---- */

START_TEST(test_msg_type_names_round_trip)
{
	static const char *const names[] = { "payment.submit", "txn.prepare", "txn.vote",
					     "txn.commit", "txn.abort", "txn.ack",
					     "txn.status", "payment.outcome", "balance.query",
					     "balance.result" };

	for (int t = PAYTX_MSG_SUBMIT; t <= PAYTX_MSG_BALANCE; t++) {
		const char *name = paytx_msg_type_name((enum paytx_msg_type)t);

		ck_assert_str_eq(name, names[t - 1]);
		ck_assert_int_eq(paytx_msg_type_parse(name, strlen(name)), t);
	}
	ck_assert_str_eq(paytx_msg_type_name(PAYTX_MSG_UNKNOWN), "unknown");
	ck_assert_str_eq(paytx_msg_type_name((enum paytx_msg_type)99), "unknown");
}
END_TEST

START_TEST(test_msg_type_parse_of_unknown_name_is_unknown)
{
	ck_assert_int_eq(paytx_msg_type_parse("txn.vot", 7), PAYTX_MSG_UNKNOWN);
	ck_assert_int_eq(paytx_msg_type_parse("txn.votes", 9), PAYTX_MSG_UNKNOWN);
	ck_assert_int_eq(paytx_msg_type_parse("unknown", 7), PAYTX_MSG_UNKNOWN);
	ck_assert_int_eq(paytx_msg_type_parse("", 0), PAYTX_MSG_UNKNOWN);
	ck_assert_int_eq(paytx_msg_type_parse(NULL, 3), PAYTX_MSG_UNKNOWN);
	/* len governs, not a NUL */
	ck_assert_int_eq(paytx_msg_type_parse("txn.voteXYZ", 8), PAYTX_MSG_VOTE);
}
END_TEST

START_TEST(test_status_names)
{
	ck_assert_str_eq(paytx_status_name(PAYTX_STATUS_COMMITTED), "committed");
	ck_assert_str_eq(paytx_status_name(PAYTX_STATUS_ABORTED), "aborted");
	ck_assert_str_eq(paytx_status_name(PAYTX_STATUS_REJECTED), "rejected");
	ck_assert_str_eq(paytx_status_name((enum paytx_status)0), "unknown");
}
END_TEST

START_TEST(test_id_valid_accepts_allowed_characters_up_to_64)
{
	char id[65];

	ck_assert(paytx_id_valid("a", 1));
	ck_assert(paytx_id_valid("AZaz09._:-", 10));
	memset(id, 'x', 64);
	ck_assert(paytx_id_valid(id, 64));
}
END_TEST

START_TEST(test_guess_payment_id_of_a_refused_body)
{
	char id[PAYTX_ID_MAX + 1];
	const char *ok = "{\"payment_id\":\"p-1\",\"amount\":1.5,\"junk\":true}";
	paytx_guess_payment_id(ok, strlen(ok), id, sizeof(id));
	ck_assert_str_eq(id, "p-1");
	const char *bad[] = { "{\"payment_id\":\"a b\"}", "{\"payment_id\":7}", "[\"p-1\"]",
			      "{\"payment_id\":\"p-1\"", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(id, "x", 2);
		paytx_guess_payment_id(bad[i], strlen(bad[i]), id, sizeof(id));
		ck_assert_str_eq(id, "");
	}
}
END_TEST

START_TEST(test_traceparent_valid_only_in_the_w3c_form)
{
	const char *ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	ck_assert(paytx_traceparent_valid(ok, strlen(ok)));
	ck_assert(!paytx_traceparent_valid(ok, strlen(ok) - 1));
	ck_assert(!paytx_traceparent_valid(NULL, 55));
	ck_assert(!paytx_traceparent_valid(
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 55)); /* upper case */
	ck_assert(!paytx_traceparent_valid(
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55));
	ck_assert(!paytx_traceparent_valid(
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\n", 55));
	ck_assert(!paytx_traceparent_valid(
		"00-4bf92f3577b34da6a3ce929d0e0e4736\"00f067aa0ba902b7-01", 55));
}
END_TEST

START_TEST(test_id_valid_rejects_empty_long_and_bad_characters)
{
	char id[66];

	memset(id, 'x', 65);
	ck_assert(!paytx_id_valid(id, 65));
	ck_assert(!paytx_id_valid("", 0));
	ck_assert(!paytx_id_valid(NULL, 3));
	ck_assert(!paytx_id_valid("a b", 3));
	ck_assert(!paytx_id_valid("a/b", 3));
	ck_assert(!paytx_id_valid("a\0b", 3));
	ck_assert(!paytx_id_valid("caf\xc3\xa9", 5));
	ck_assert(!paytx_id_valid("a\"", 2));
}
END_TEST

/* ---- strict parsing ---- */

START_TEST(test_body_longer_than_message_max_is_too_big)
{
	char *body = malloc(PAYTX_MESSAGE_MAX + 1);

	memset(body, ' ', PAYTX_MESSAGE_MAX + 1);
	body[0] = '{';
	body[PAYTX_MESSAGE_MAX] = '}';
	fails_raw(PAYTX_MSG_STATUS, body, PAYTX_MESSAGE_MAX + 1, PAYTX_ETOOBIG, "message");
	free(body);
}
END_TEST

START_TEST(test_body_of_exactly_message_max_is_parsed)
{
	char *body = malloc(PAYTX_MESSAGE_MAX);
	const char *json = J("{'txn':1,'participant':'p1'}");

	memset(body, ' ', PAYTX_MESSAGE_MAX);
	memcpy(body, json, strlen(json));
	fails_raw(PAYTX_MSG_STATUS, body, PAYTX_MESSAGE_MAX, PAYTX_OK, NULL);
	free(body);
}
END_TEST

START_TEST(test_invalid_utf8_is_invalid_encoding)
{
	static const char *const bad[] = {
		"\xc3\x28", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80",
		"\xf0\x80\x80\xaf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
		"\x80", "\xbf", "\xfe", "\xff", "\xe2\x82",
	};
	char body[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"txn\":1,\"participant\":\"p\",\"x\":\"%s\"}", bad[i]);
		fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EUTF8, "UTF-8");
	}
	/* truncated sequence at the very end of the body */
	snprintf(body, sizeof(body), "{\"txn\":1}\xe2\x82");
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EUTF8, NULL);
	/* in a key */
	snprintf(body, sizeof(body), "{\"t\xc0\xafn\":1}");
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EUTF8, NULL);
}
END_TEST

START_TEST(test_valid_multibyte_utf8_is_accepted)
{
	struct paytx_vote v;
	struct paytx_fault f;
	const char *body = "{\"txn\":1,\"participant\":\"p\",\"vote\":\"yes\","
			   "\"detail\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb6 \xf4\x8f\xbf\xbf\"}";

	ck_assert_int_eq(paytx_vote_decode(body, strlen(body), &v, &f), 0);
	ck_assert_str_eq(v.detail, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb6 \xf4\x8f\xbf\xbf");
}
END_TEST

START_TEST(test_unpaired_surrogate_escape_is_invalid_encoding)
{
	fails(PAYTX_MSG_VOTE, "{'txn':1,'participant':'p','vote':'yes','detail':'\\ud800'}",
	      PAYTX_EUTF8, "surrogate");
	fails(PAYTX_MSG_VOTE, "{'txn':1,'participant':'p','vote':'yes','detail':'\\udc00x'}",
	      PAYTX_EUTF8, "surrogate");
	fails(PAYTX_MSG_VOTE, "{'txn':1,'participant':'p','vote':'yes','detail':'\\ud800\\u0041'}",
	      PAYTX_EUTF8, "surrogate");
	fails(PAYTX_MSG_VOTE, "{'txn':1,'participant':'p','vote':'yes','detail':'\\uD83D'}",
	      PAYTX_EUTF8, "surrogate");
}
END_TEST

START_TEST(test_escaped_surrogate_pair_is_decoded)
{
	struct paytx_vote v;
	const char *body = J("{'txn':1,'participant':'p','vote':'yes','detail':'\\ud83d\\udcb6\\u00e9'}");

	ck_assert_int_eq(paytx_vote_decode(body, strlen(body), &v, NULL), 0);
	ck_assert_str_eq(v.detail, "\xf0\x9f\x92\xb6\xc3\xa9");
}
END_TEST

START_TEST(test_nul_byte_in_body_is_malformed)
{
	static const char inside[] = "{\"txn\":1,\"participant\":\"p\0\"}";
	static const char after[] = "{\"txn\":1,\"participant\":\"p\"}\0";

	fails_raw(PAYTX_MSG_STATUS, inside, sizeof(inside) - 1, PAYTX_EJSON, "NUL");
	fails_raw(PAYTX_MSG_STATUS, after, sizeof(after) - 1, PAYTX_EJSON, "NUL");
}
END_TEST

START_TEST(test_escaped_nul_in_a_key_is_invalid)
{
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p','txn\\u0000x':2}", PAYTX_EINVAL, "NUL");
}
END_TEST

START_TEST(test_escaped_nul_in_a_value_is_invalid)
{
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p\\u0000'}", PAYTX_EINVAL, "participant");
	fails(PAYTX_MSG_VOTE, "{'txn':1,'participant':'p','vote':'no','reason':'a\\u0000b'}",
	      PAYTX_EINVAL, "reason: must not contain NUL");
}
END_TEST

static void nested(char *out, size_t size, const char *open, const char *inner,
		   const char *close, int n)
{
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		strncat(out, open, size - strlen(out) - 1);
	strncat(out, inner, size - strlen(out) - 1);
	for (int i = 0; i < n; i++)
		strncat(out, close, size - strlen(out) - 1);
}

START_TEST(test_nesting_deeper_than_limit_is_malformed)
{
	char body[1024];

	/* the top-level value is depth 1: 16 nested arrays hold values at 17 */
	nested(body, sizeof(body), "[", "1", "]", PAYTX_JSON_DEPTH_MAX);
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EJSON, "too deep");
	nested(body, sizeof(body), "{\"a\":", "{}", "}", PAYTX_JSON_DEPTH_MAX);
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EJSON, "too deep");
	nested(body, sizeof(body), "[", "", "]", 1000);
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EJSON, "too deep");
}
END_TEST

START_TEST(test_nesting_at_the_limit_is_parsed)
{
	char body[1024], meta[512];

	nested(body, sizeof(body), "[", "1", "]", PAYTX_JSON_DEPTH_MAX - 1);
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_ETYPE, NULL);
	nested(body, sizeof(body), "{\"a\":", "{}", "}", PAYTX_JSON_DEPTH_MAX - 1);
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EINVAL, "a: unknown field");
	/* metadata is depth 2, so 14 more levels fit */
	nested(meta, sizeof(meta), "{'m':", "[1]", "}", PAYTX_JSON_DEPTH_MAX - 3);
	snprintf(body, sizeof(body), "{'payment_id':'p1'," LEGS ",'metadata':%s}", meta);
	passes(PAYTX_MSG_SUBMIT, body);
}
END_TEST

START_TEST(test_trailing_garbage_is_malformed)
{
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p'} x", PAYTX_EJSON, "trailing");
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p'}{}", PAYTX_EJSON, "trailing");
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p'},", PAYTX_EJSON, "trailing");
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p'}}", PAYTX_EJSON, "trailing");
}
END_TEST

START_TEST(test_surrounding_whitespace_is_accepted)
{
	passes(PAYTX_MSG_STATUS, " \t\r\n{ 'txn' : 1 ,\n 'participant' : 'p' } \n\t");
}
END_TEST

START_TEST(test_top_level_non_object_is_wrong_type)
{
	fails(PAYTX_MSG_STATUS, "[]", PAYTX_ETYPE, "message: must be a JSON object");
	fails(PAYTX_MSG_STATUS, "1", PAYTX_ETYPE, NULL);
	fails(PAYTX_MSG_STATUS, " 'txn' ", PAYTX_ETYPE, NULL);
	fails(PAYTX_MSG_STATUS, "null", PAYTX_ETYPE, NULL);
	fails(PAYTX_MSG_SUBMIT, "[{'payment_id':'p1'}]", PAYTX_ETYPE, NULL);
}
END_TEST

START_TEST(test_empty_body_is_malformed)
{
	fails_raw(PAYTX_MSG_STATUS, "", 0, PAYTX_EJSON, "empty");
	fails_raw(PAYTX_MSG_STATUS, NULL, 0, PAYTX_EJSON, "empty");
	fails_raw(PAYTX_MSG_STATUS, "  \n ", 4, PAYTX_EJSON, "empty");
}
END_TEST

START_TEST(test_non_standard_json_is_malformed)
{
	static const char *const bad[] = {
		"{\"txn\":1,\"participant\":\"p\",}",
		"{'txn':1}",
		"{\"txn\":NaN}", "{\"txn\":Infinity}", "{\"txn\":-Infinity}", "{\"txn\":nan}",
		"{\"txn\":01}", "{\"txn\":-01}", "{\"txn\":1.}", "{\"txn\":.5}", "{\"txn\":+1}",
		"{\"txn\":0x10}", "{\"txn\":1e}", "{\"txn\":-}", "{\"txn\":1.5e+}",
		"{\"txn\":\"a\x01\"}", "{\"txn\":\"a\tb\"}", "{\"txn\":\"a\nb\"}",
		"{\"txn\":\"\\x41\"}", "{\"txn\":\"\\u12\"}", "{\"txn\":\"\\u12G4\"}", "{\"txn\":\"\\'\"}",
		"{\"txn\" 1}", "{\"txn\":1 /* c */}", "// c\n{\"txn\":1}", "{\"txn\":1",
		"{\"txn\":tru}", "{\"txn\":True}", "{\"txn\":nul}", "{\"txn\":[1,]}", "{\"txn\":[,1]}",
		"{,}", "{\"txn\"}", "{\"txn\":}", "{txn:1}", "{\"txn\":1;\"a\":2}",
		"{\"txn\":\"abc}", "\xef\xbb\xbf{\"txn\":1}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fails_raw(PAYTX_MSG_STATUS, bad[i], strlen(bad[i]), PAYTX_EJSON, "malformed JSON");
}
END_TEST

START_TEST(test_body_need_not_be_nul_terminated)
{
	const char *json = J("{'txn':7,'participant':'p1'}");
	size_t len = strlen(json);
	char *body = malloc(len);
	struct paytx_status_query q;

	memcpy(body, json, len);
	ck_assert_int_eq(paytx_status_query_decode(body, len, &q, NULL), 0);
	ck_assert_int_eq(q.txn, 7);
	/* a number running into the end of the buffer */
	ck_assert_int_eq(paytx_status_query_decode(body, 8, &q, NULL), PAYTX_EJSON);
	free(body);
}
END_TEST

START_TEST(test_length_argument_bounds_the_body)
{
	const char *json = J("{'txn':7,'participant':'p1'}garbage");
	struct paytx_status_query q;

	ck_assert_int_eq(paytx_status_query_decode(json, strlen(json) - 7, &q, NULL), 0);
	ck_assert_int_eq(paytx_status_query_decode(json, strlen(json), &q, NULL), PAYTX_EJSON);
}
END_TEST

START_TEST(test_duplicate_top_level_key_is_malformed)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','payment_id':'p2'," LEGS "}", PAYTX_EJSON,
	      "duplicate key 'payment_id'");
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p','txn':2}", PAYTX_EJSON,
	      "duplicate key 'txn'");
}
END_TEST

START_TEST(test_duplicate_key_with_escaped_spelling_is_detected)
{
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','from':'a','to':'b','amount':1,'\\u0061mount':100000,"
	      "'currency':'EUR'}",
	      PAYTX_EJSON, "duplicate key 'amount'");
}
END_TEST

START_TEST(test_duplicate_key_inside_a_leg_is_detected_with_path)
{
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-1,'currency':'EUR'},"
	      "{'account':'b','amount':1,'amount':1000,'currency':'EUR'}]}",
	      PAYTX_EJSON, "legs[1]: duplicate key 'amount'");
}
END_TEST

START_TEST(test_duplicate_key_whose_first_value_held_objects_is_detected)
{
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':{'x':{'y':{}}},'amount':-1,"
	      "'currency':'EUR'},{'account':'b','amount':1,'currency':'EUR'}],"
	      "'metadata':{'n':{}}}",
	      PAYTX_EJSON, "legs[0]: duplicate key 'amount'");
	fails(PAYTX_MSG_SUBMIT,
	      "{'metadata':{'a':[{}]},'payment_id':'p1'," LEGS ",'metadata':{}}",
	      PAYTX_EJSON, "duplicate key 'metadata'");
}
END_TEST

START_TEST(test_duplicate_key_in_metadata_is_detected_without_naming_it)
{
	struct paytx_payment p;
	struct paytx_fault f;
	const char *body = J("{'payment_id':'p1'," LEGS ","
			     "'metadata':{'a':{'b':1},'c':[{'secret_key':1,'secret_key':2}]}}");

	ck_assert_int_eq(paytx_payment_decode(body, strlen(body), &p, &f), PAYTX_EJSON);
	ck_assert_str_eq(f.text, "metadata: duplicate key");
	ck_assert_ptr_null(p.metadata);
}
END_TEST

START_TEST(test_duplicate_among_many_keys_is_detected)
{
	static char body[BIG];
	int off = snprintf(body, sizeof(body), "{\"txn\":1,\"participant\":\"p\",\"x\":{");

	for (int i = 0; i < 4000; i++)
		off += snprintf(body + off, sizeof(body) - (size_t)off, "\"k%d\":%d,", i, i);
	snprintf(body + off, sizeof(body) - (size_t)off, "\"k3999\":0}}");
	fails_raw(PAYTX_MSG_STATUS, body, strlen(body), PAYTX_EJSON, "x: duplicate key 'k3999'");
}
END_TEST

START_TEST(test_nested_objects_without_duplicates_are_accepted)
{
	passes(PAYTX_MSG_SUBMIT,
	       "{'payment_id':'p1'," LEGS ",'metadata':{'a':[{'b':{}},{'c':{'d':[{},{'a':1}]}}],"
	       "'e':{},'b':{'b':{'b':{}}},'f':[[],[{}],{}]}}");
}
END_TEST

/* ---- submit ---- */

START_TEST(test_submit_with_legs_decodes)
{
	struct paytx_payment p;

	decode_payment("{'payment_id':'order-1:x_y.z'," LEGS "}", &p);
	ck_assert_str_eq(p.payment_id, "order-1:x_y.z");
	ck_assert_uint_eq(p.nlegs, 2);
	ck_assert_str_eq(p.legs[0].account, "acc-a");
	ck_assert_int_eq(p.legs[0].amount, -100);
	ck_assert_str_eq(p.legs[0].currency, "EUR");
	ck_assert_str_eq(p.legs[1].account, "acc-b");
	ck_assert_int_eq(p.legs[1].amount, 100);
	ck_assert_ptr_null(p.metadata);
	paytx_payment_finish(&p);
}
END_TEST

START_TEST(test_submit_shorthand_decodes_to_two_legs)
{
	struct paytx_payment p;

	decode_payment("{'payment_id':'p1','from':'alice','to':'bob','amount':250,"
		       "'currency':'USD'}", &p);
	ck_assert_uint_eq(p.nlegs, 2);
	ck_assert_str_eq(p.legs[0].account, "alice");
	ck_assert_int_eq(p.legs[0].amount, -250);
	ck_assert_str_eq(p.legs[0].currency, "USD");
	ck_assert_str_eq(p.legs[1].account, "bob");
	ck_assert_int_eq(p.legs[1].amount, 250);
	ck_assert_str_eq(p.legs[1].currency, "USD");
	paytx_payment_finish(&p);
}
END_TEST

START_TEST(test_submit_metadata_is_stored_serialized)
{
	struct paytx_payment p;

	decode_payment("{'payment_id':'p1'," LEGS ",'metadata':{'order':{'n':12,'tags':['a','b']},"
		       "'note':'x'}}", &p);
	ck_assert_str_eq(p.metadata, J("{'order':{'n':12,'tags':['a','b']},'note':'x'}"));
	paytx_payment_finish(&p);
	ck_assert_ptr_null(p.metadata);
	paytx_payment_finish(&p);
	paytx_payment_finish(NULL);
}
END_TEST

START_TEST(test_submit_missing_fields_are_missing)
{
	fails(PAYTX_MSG_SUBMIT, "{" LEGS "}", PAYTX_EMISSING, "payment_id: required");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'}", PAYTX_EMISSING, "legs: required");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','amount':5,'currency':'EUR'}", PAYTX_EMISSING,
	      "legs: required");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','to':'b','amount':5,'currency':'EUR'}",
	      PAYTX_EMISSING, "from: required");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'b','amount':5}",
	      PAYTX_EMISSING, "currency: required");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','amount':5,'currency':'EUR'}",
	      PAYTX_EMISSING, "to: required");
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-1,'currency':'EUR'},"
	      "{'account':'b','currency':'EUR'}]}",
	      PAYTX_EMISSING, "legs[1].amount: required");
}
END_TEST

START_TEST(test_submit_legs_with_shorthand_fields_is_invalid)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'from':'a'}", PAYTX_EINVAL, "legs");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'currency':'EUR'}", PAYTX_EINVAL,
	      "legs");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'amount':100}", PAYTX_EINVAL, "legs");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'to':'b'}", PAYTX_EINVAL, "legs");
}
END_TEST

START_TEST(test_unknown_top_level_field_is_invalid_and_named)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'memo':'hi'}", PAYTX_EINVAL,
	      "memo: unknown field");
	fails(PAYTX_MSG_PREPARE, "{'txn':1,'payment_id':'p1'," LEG1 ",'deadline_ms':5,'x':1}",
	      PAYTX_EINVAL, "x: unknown field");
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p','vote':'yes'}", PAYTX_EINVAL,
	      "vote: unknown field");
}
END_TEST

START_TEST(test_unknown_field_with_unsafe_name_is_not_echoed)
{
	struct paytx_fault f;
	const char *body = J("{'payment_id':'p1'," LEGS ",'SECRET value\\n':1}");

	ck_assert_int_eq(decode_as(PAYTX_MSG_SUBMIT, body, strlen(body), &f), PAYTX_EINVAL);
	ck_assert_str_eq(f.text, "message: unknown field (name not shown)");
}
END_TEST

START_TEST(test_unknown_field_inside_a_leg_is_invalid)
{
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-1,'currency':'EUR','memo':1},"
	      "{'account':'b','amount':1,'currency':'EUR'}]}",
	      PAYTX_EINVAL, "legs[0].memo: unknown field");
}
END_TEST

START_TEST(test_amount_of_wrong_type_is_wrong_type)
{
	static const char *const amounts[] = { "1.0", "1e3", "'100'", "true", "null", "[1]",
					       "{}", "-100.0", "1E2" };
	char body[256];

	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		snprintf(body, sizeof(body),
			 "{'payment_id':'p1','legs':[{'account':'a','amount':-100,'currency':'EUR'},"
			 "{'account':'b','amount':%s,'currency':'EUR'}]}", amounts[i]);
		fails(PAYTX_MSG_SUBMIT, body, PAYTX_ETYPE, "legs[1].amount: must be an integer");
		snprintf(body, sizeof(body),
			 "{'payment_id':'p1','from':'a','to':'b','amount':%s,'currency':'EUR'}",
			 amounts[i]);
		fails(PAYTX_MSG_SUBMIT, body, PAYTX_ETYPE, "amount: must be an integer");
	}
}
END_TEST

START_TEST(test_amount_beyond_int64_is_out_of_range)
{
	static const char *const amounts[] = {
		"18446744073709551615", "18446744073709551616", "9223372036854775808",
		"9223372036854775807", "-9223372036854775809", "-9223372036854775808",
		"99999999999999999999999999", "-99999999999999999999999999",
	};
	char body[256];

	for (size_t i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		snprintf(body, sizeof(body),
			 "{'payment_id':'p1','legs':[{'account':'a','amount':%s,'currency':'EUR'},"
			 "{'account':'b','amount':100,'currency':'EUR'}]}", amounts[i]);
		fails(PAYTX_MSG_SUBMIT, body, PAYTX_ERANGE, "legs[0].amount");
		snprintf(body, sizeof(body), "{'txn':1,'payment_id':'p1','legs':[{'account':'a',"
			 "'amount':%s,'currency':'EUR'}],'deadline_ms':1}", amounts[i]);
		fails(PAYTX_MSG_PREPARE, body, PAYTX_ERANGE, "legs[0].amount");
	}
}
END_TEST

START_TEST(test_amount_zero_is_out_of_range)
{
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':0,'currency':'EUR'},"
	      "{'account':'b','amount':-1,'currency':'EUR'},{'account':'c','amount':1,"
	      "'currency':'EUR'}]}",
	      PAYTX_ERANGE, "legs[0].amount");
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-0,'currency':'EUR'},"
	      "{'account':'b','amount':0,'currency':'EUR'}]}",
	      PAYTX_ERANGE, "legs[0].amount");
	fails(PAYTX_MSG_PREPARE, "{'txn':1,'payment_id':'p1','legs':[{'account':'a','amount':0,"
	      "'currency':'EUR'}],'deadline_ms':1}", PAYTX_ERANGE, "legs[0].amount");
}
END_TEST

START_TEST(test_amount_beyond_ten_to_the_fifteen_is_out_of_range)
{
	struct paytx_payment p;

	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-1000000000000001,"
	      "'currency':'EUR'},{'account':'b','amount':1000000000000001,'currency':'EUR'}]}",
	      PAYTX_ERANGE, "legs[0].amount");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'b','amount':1000000000000001,"
	      "'currency':'EUR'}", PAYTX_ERANGE, "amount");
	decode_payment("{'payment_id':'p1','legs':[{'account':'a','amount':-1000000000000000,"
		       "'currency':'EUR'},{'account':'b','amount':1000000000000000,"
		       "'currency':'EUR'}]}", &p);
	ck_assert_int_eq(p.legs[1].amount, PAYTX_AMOUNT_MAX);
	ck_assert_int_eq(p.legs[0].amount, -PAYTX_AMOUNT_MAX);
}
END_TEST

START_TEST(test_shorthand_amount_must_be_positive)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'b','amount':-5,"
	      "'currency':'EUR'}", PAYTX_ERANGE, "amount: must be an integer from 1 to 10^15");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'b','amount':0,"
	      "'currency':'EUR'}", PAYTX_ERANGE, "amount");
}
END_TEST

START_TEST(test_shorthand_from_equal_to_is_invalid)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'a','amount':5,"
	      "'currency':'EUR'}", PAYTX_EINVAL, "to: must differ");
}
END_TEST

START_TEST(test_submit_leg_count_outside_2_to_16_is_invalid)
{
	char body[4096];
	int off;

	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEG1 "}", PAYTX_EINVAL, "legs: must have 2 to 16");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','legs':[]}", PAYTX_EINVAL, "legs");
	for (int n = 16; n <= 17; n++) {
		off = snprintf(body, sizeof(body), "{'payment_id':'p1','legs':[");
		for (int i = 0; i < n - 1; i++)
			off += snprintf(body + off, sizeof(body) - (size_t)off,
					"{'account':'a%d','amount':-1,'currency':'EUR'},", i);
		snprintf(body + off, sizeof(body) - (size_t)off,
			 "{'account':'z','amount':%d,'currency':'EUR'}]}", n - 1);
		if (n == 16)
			passes(PAYTX_MSG_SUBMIT, body);
		else
			fails(PAYTX_MSG_SUBMIT, body, PAYTX_EINVAL, "legs: must have 2 to 16");
	}
}
END_TEST

START_TEST(test_legs_of_wrong_type_are_wrong_type)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','legs':{}}", PAYTX_ETYPE, "legs: must be an array");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','legs':[1,2]}", PAYTX_ETYPE,
	      "legs[0]: must be an object");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','legs':null}", PAYTX_ETYPE, "legs");
}
END_TEST

START_TEST(test_unbalanced_legs_are_unbalanced)
{
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-100,'currency':'EUR'},"
	      "{'account':'b','amount':99,'currency':'EUR'}]}",
	      PAYTX_EUNBALANCED, "legs: amounts must sum to zero");
	/* the total is zero, but not per currency */
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-100,'currency':'EUR'},"
	      "{'account':'b','amount':100,'currency':'USD'}]}",
	      PAYTX_EUNBALANCED, NULL);
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-1000000000000000,'currency':'EUR'},"
	      "{'account':'b','amount':-1000000000000000,'currency':'EUR'},"
	      "{'account':'c','amount':-1000000000000000,'currency':'EUR'}]}",
	      PAYTX_EUNBALANCED, NULL);
}
END_TEST

START_TEST(test_metadata_numbers_json_c_would_change_are_refused)
{
	/* json-c clamps these; storing the clamped value would change what the
	 * client sent and make different metadata compare equal */
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','from':'a','to':'b','amount':5,'currency':'EUR',"
	      "'metadata':{'ref':18446744073709551616}}",
	      PAYTX_EINVAL, "metadata: numbers must be integers within 64 bits");
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','from':'a','to':'b','amount':5,'currency':'EUR',"
	      "'metadata':{'deep':[{'x':-99999999999999999999}]}}",
	      PAYTX_EINVAL, "metadata");
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','from':'a','to':'b','amount':5,'currency':'EUR',"
	      "'metadata':{'big':1e400}}",
	      PAYTX_EINVAL, "metadata");
	/* the largest exact values are kept */
	struct paytx_payment p;
	struct paytx_fault f;
	const char *ok = "{\"payment_id\":\"p1\",\"from\":\"a\",\"to\":\"b\",\"amount\":5,"
			 "\"currency\":\"EUR\",\"metadata\":{\"m\":9223372036854775807,"
			 "\"n\":-9223372036854775807,\"d\":1.5e300}}";
	ck_assert_int_eq(paytx_payment_decode(ok, strlen(ok), &p, &f), 0);
	ck_assert_ptr_nonnull(strstr(p.metadata, "9223372036854775807"));
	paytx_payment_finish(&p);
}
END_TEST

START_TEST(test_legs_that_move_no_money_are_invalid)
{
	/* each account's legs net to zero: nothing would be posted */
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-100,'currency':'EUR'},"
	      "{'account':'a','amount':100,'currency':'EUR'}]}",
	      PAYTX_EINVAL, "legs: the payment moves no money");
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a','amount':-5,'currency':'EUR'},"
	      "{'account':'b','amount':7,'currency':'EUR'},{'account':'a','amount':5,'currency':'EUR'},"
	      "{'account':'b','amount':-7,'currency':'EUR'}]}",
	      PAYTX_EINVAL, "moves no money");
}
END_TEST

START_TEST(test_multi_currency_legs_balanced_per_currency_are_accepted)
{
	passes(PAYTX_MSG_SUBMIT,
	       "{'payment_id':'fx-1','legs':[{'account':'a','amount':-100,'currency':'EUR'},"
	       "{'account':'b','amount':110,'currency':'USD'},"
	       "{'account':'fx','amount':100,'currency':'EUR'},"
	       "{'account':'fx','amount':-110,'currency':'USD'}]}");
}
END_TEST

START_TEST(test_invalid_ids_are_invalid)
{
	char body[512], id[80];

	fails(PAYTX_MSG_SUBMIT, "{'payment_id':''," LEGS "}", PAYTX_EINVAL, "payment_id: must be");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'a b'," LEGS "}", PAYTX_EINVAL, "payment_id");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'caf\\u00e9'," LEGS "}", PAYTX_EINVAL, "payment_id");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':7," LEGS "}", PAYTX_ETYPE, "payment_id: must be a string");
	memset(id, 'x', 65);
	id[65] = '\0';
	snprintf(body, sizeof(body), "{'payment_id':'%s'," LEGS "}", id);
	fails(PAYTX_MSG_SUBMIT, body, PAYTX_EINVAL, "payment_id");
	id[64] = '\0';
	snprintf(body, sizeof(body), "{'payment_id':'%s'," LEGS "}", id);
	passes(PAYTX_MSG_SUBMIT, body);
	fails(PAYTX_MSG_SUBMIT,
	      "{'payment_id':'p1','legs':[{'account':'a/b','amount':-1,'currency':'EUR'},"
	      "{'account':'b','amount':1,'currency':'EUR'}]}", PAYTX_EINVAL, "legs[0].account");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'','amount':5,"
	      "'currency':'EUR'}", PAYTX_EINVAL, "to");
	fails(PAYTX_MSG_STATUS, "{'txn':1,'participant':'p q'}", PAYTX_EINVAL, "participant");
}
END_TEST

START_TEST(test_invalid_currency_is_invalid)
{
	static const char *const bad[] = { "eur", "EURO", "EU", "E1R", "", "\\u00c9UR", "EUr" };
	char body[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{'payment_id':'p1','from':'a','to':'b','amount':5,"
			 "'currency':'%s'}", bad[i]);
		fails(PAYTX_MSG_SUBMIT, body, PAYTX_EINVAL, "currency: must be 3 upper-case");
	}
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1','from':'a','to':'b','amount':5,"
	      "'currency':978}", PAYTX_ETYPE, "currency");
}
END_TEST

START_TEST(test_metadata_not_an_object_is_wrong_type)
{
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'metadata':[]}", PAYTX_ETYPE,
	      "metadata: must be an object");
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'metadata':'x'}", PAYTX_ETYPE, NULL);
	fails(PAYTX_MSG_SUBMIT, "{'payment_id':'p1'," LEGS ",'metadata':null}", PAYTX_ETYPE, NULL);
}
END_TEST

START_TEST(test_metadata_larger_than_limit_is_too_big)
{
	struct paytx_payment p;
	struct paytx_fault f;
	const char *body = submit_with_metadata_size(PAYTX_METADATA_MAX + 1);

	ck_assert_int_eq(paytx_payment_decode(body, strlen(body), &p, &f), PAYTX_ETOOBIG);
	ck_assert_ptr_null(p.metadata);
	ck_assert_ptr_null(strstr(f.text, "xxx"));
	body = submit_with_metadata_size(PAYTX_METADATA_MAX);
	ck_assert_int_eq(paytx_payment_decode(body, strlen(body), &p, &f), 0);
	ck_assert_uint_eq(strlen(p.metadata), PAYTX_METADATA_MAX);
	paytx_payment_finish(&p);
}
END_TEST

START_TEST(test_fault_text_never_contains_values)
{
	static const char *const bodies[] = {
		"{'payment_id':'SECRET!'," LEGS "}",
		"{'payment_id':'p1','from':'SECRET','to':'SECRET','amount':5,'currency':'EUR'}",
		"{'payment_id':'p1'," LEGS ",'metadata':{'SECRET':{'SECRET':1,'SECRET':2}}}",
		"{'payment_id':'p1'," LEGS ",'metadata':{'SECRET':'\\ud800'}}",
		"{'payment_id':'p1','legs':[{'account':'SECRET ','amount':-1,'currency':'EUR'}]}",
		"{'payment_id':'p1','from':'a','to':'b','amount':5,'currency':'SECRET'}",
		"{'payment_id':'p1'," LEGS ",'metadata':{'x':[1,2,{'SECRET':1,'y':2,'SECRET':3}]}}",
		"{'payment_id':'p1'," LEGS ",'SECRET X':{'a':1,'a':2}}",
		"{'payment_id':'p1'," LEGS ",'metadata':{'SECRET':1} 'SECRET'}",
	};
	struct paytx_fault f;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const char *body = J(bodies[i]);

		ck_assert_int_lt(decode_as(PAYTX_MSG_SUBMIT, body, strlen(body), &f), 0);
		ck_assert_msg(strstr(f.text, "SECRET") == NULL, "leaks: %s", f.text);
		ck_assert_uint_gt(strlen(f.text), 0);
	}
}
END_TEST

START_TEST(test_decoders_accept_a_null_fault)
{
	struct paytx_payment p;

	ck_assert_int_eq(paytx_payment_decode("{", 1, &p, NULL), PAYTX_EJSON);
	ck_assert_ptr_null(p.metadata);
}
END_TEST

/* ---- prepare ---- */

START_TEST(test_prepare_decodes_legs_that_need_not_balance)
{
	struct paytx_prepare p;
	const char *body = J("{'txn':42,'payment_id':'p1','legs':[{'account':'a','amount':-100,"
			     "'currency':'EUR'}],'deadline_ms':1700000000000}");

	ck_assert_int_eq(paytx_prepare_decode(body, strlen(body), &p, NULL), 0);
	ck_assert_int_eq(p.txn, 42);
	ck_assert_str_eq(p.payment_id, "p1");
	ck_assert_uint_eq(p.nlegs, 1);
	ck_assert_int_eq(p.legs[0].amount, -100);
	ck_assert_int_eq(p.deadline_ms, 1700000000000LL);
}
END_TEST

START_TEST(test_txn_must_be_a_positive_int64)
{
	fails(PAYTX_MSG_PREPARE, "{'txn':0,'payment_id':'p1'," LEG1 ",'deadline_ms':1}",
	      PAYTX_ERANGE, "txn");
	fails(PAYTX_MSG_PREPARE, "{'txn':-1,'payment_id':'p1'," LEG1 ",'deadline_ms':1}",
	      PAYTX_ERANGE, "txn");
	fails(PAYTX_MSG_STATUS, "{'txn':9223372036854775808,'participant':'p'}", PAYTX_ERANGE, "txn");
	fails(PAYTX_MSG_STATUS, "{'txn':18446744073709551615,'participant':'p'}", PAYTX_ERANGE, "txn");
	fails(PAYTX_MSG_STATUS, "{'txn':-9223372036854775809,'participant':'p'}", PAYTX_ERANGE, "txn");
	fails(PAYTX_MSG_STATUS, "{'txn':1.5,'participant':'p'}", PAYTX_ETYPE, "txn");
	fails(PAYTX_MSG_STATUS, "{'txn':'1','participant':'p'}", PAYTX_ETYPE, "txn");
	passes(PAYTX_MSG_STATUS, "{'txn':9223372036854775807,'participant':'p'}");
}
END_TEST

START_TEST(test_prepare_leg_count_outside_1_to_16_is_invalid)
{
	char body[4096];
	int off = snprintf(body, sizeof(body), "{'txn':1,'payment_id':'p1','legs':[");

	fails(PAYTX_MSG_PREPARE, "{'txn':1,'payment_id':'p1','legs':[],'deadline_ms':1}",
	      PAYTX_EINVAL, "legs: must have 1 to 16");
	for (int i = 0; i < 17; i++)
		off += snprintf(body + off, sizeof(body) - (size_t)off,
				"%s{'account':'a%d','amount':5,'currency':'EUR'}", i ? "," : "", i);
	snprintf(body + off, sizeof(body) - (size_t)off, "],'deadline_ms':1}");
	fails(PAYTX_MSG_PREPARE, body, PAYTX_EINVAL, "legs: must have 1 to 16");
}
END_TEST

START_TEST(test_prepare_deadline_is_required_and_not_negative)
{
	fails(PAYTX_MSG_PREPARE, "{'txn':1,'payment_id':'p1'," LEG1 "}", PAYTX_EMISSING,
	      "deadline_ms: required");
	fails(PAYTX_MSG_PREPARE, "{'txn':1,'payment_id':'p1'," LEG1 ",'deadline_ms':-1}",
	      PAYTX_ERANGE, "deadline_ms");
	fails(PAYTX_MSG_PREPARE, "{'txn':1,'payment_id':'p1'," LEG1 ",'deadline_ms':1e12}",
	      PAYTX_ETYPE, "deadline_ms");
	fails(PAYTX_MSG_PREPARE, "{'payment_id':'p1'," LEG1 ",'deadline_ms':1}", PAYTX_EMISSING,
	      "txn: required");
}
END_TEST

/* ---- vote ---- */

START_TEST(test_vote_yes_decodes)
{
	struct paytx_vote v;
	const char *body = J("{'txn':3,'participant':'ledger-1','vote':'yes'}");

	ck_assert_int_eq(paytx_vote_decode(body, strlen(body), &v, NULL), 0);
	ck_assert_int_eq(v.txn, 3);
	ck_assert_str_eq(v.participant, "ledger-1");
	ck_assert(v.yes);
	ck_assert_str_eq(v.reason, "");
	ck_assert_str_eq(v.detail, "");
}
END_TEST

START_TEST(test_vote_no_requires_a_reason)
{
	struct paytx_vote v;
	const char *body = J("{'txn':3,'participant':'p','vote':'no','reason':'insufficient_funds',"
			     "'detail':'balance 5 < 100'}");

	ck_assert_int_eq(paytx_vote_decode(body, strlen(body), &v, NULL), 0);
	ck_assert(!v.yes);
	ck_assert_str_eq(v.reason, "insufficient_funds");
	ck_assert_str_eq(v.detail, "balance 5 < 100");
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'no'}", PAYTX_EMISSING,
	      "reason: required");
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'no','reason':''}", PAYTX_EINVAL,
	      "reason: must not be empty");
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'no','reason':5}", PAYTX_ETYPE,
	      "reason: must be a string");
}
END_TEST

START_TEST(test_vote_yes_with_a_reason_is_invalid)
{
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'yes','reason':'x'}",
	      PAYTX_EINVAL, "reason: only allowed");
	passes(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'yes','reason':''}");
}
END_TEST

START_TEST(test_vote_reason_and_detail_longer_than_buffers_are_invalid)
{
	char body[1024], s[300];

	memset(s, 'r', sizeof(s));
	s[PAYTX_REASON_MAX - 1] = '\0';
	snprintf(body, sizeof(body), "{'txn':3,'participant':'p','vote':'no','reason':'%s'}", s);
	passes(PAYTX_MSG_VOTE, body);
	s[PAYTX_REASON_MAX - 1] = 'r';
	s[PAYTX_REASON_MAX] = '\0';
	snprintf(body, sizeof(body), "{'txn':3,'participant':'p','vote':'no','reason':'%s'}", s);
	fails(PAYTX_MSG_VOTE, body, PAYTX_EINVAL, "reason: longer than 39 bytes");
	memset(s, 'd', sizeof(s));
	s[PAYTX_DETAIL_MAX - 1] = '\0';
	snprintf(body, sizeof(body), "{'txn':3,'participant':'p','vote':'yes','detail':'%s'}", s);
	passes(PAYTX_MSG_VOTE, body);
	s[PAYTX_DETAIL_MAX - 1] = 'd';
	s[PAYTX_DETAIL_MAX] = '\0';
	snprintf(body, sizeof(body), "{'txn':3,'participant':'p','vote':'yes','detail':'%s'}", s);
	fails(PAYTX_MSG_VOTE, body, PAYTX_EINVAL, "detail: longer than 255 bytes");
}
END_TEST

START_TEST(test_vote_other_than_yes_or_no_is_invalid)
{
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'YES'}", PAYTX_EINVAL, "vote");
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':'yes\\u0000'}", PAYTX_EINVAL, "vote");
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p','vote':true}", PAYTX_ETYPE, "vote");
	fails(PAYTX_MSG_VOTE, "{'txn':3,'participant':'p'}", PAYTX_EMISSING, "vote: required");
}
END_TEST

/* ---- decision, ack, status ---- */

START_TEST(test_decision_takes_commit_or_abort_from_the_argument)
{
	struct paytx_decision d;
	const char *body = J("{'txn':9,'payment_id':'p1'}");

	ck_assert_int_eq(paytx_decision_decode(body, strlen(body), true, &d, NULL), 0);
	ck_assert(d.commit);
	ck_assert_int_eq(d.txn, 9);
	ck_assert_str_eq(d.payment_id, "p1");
	ck_assert_int_eq(paytx_decision_decode(body, strlen(body), false, &d, NULL), 0);
	ck_assert(!d.commit);
	fails(PAYTX_MSG_COMMIT, "{'txn':9}", PAYTX_EMISSING, "payment_id: required");
	fails(PAYTX_MSG_ABORT, "{'txn':9,'payment_id':'p1','decision':'abort'}", PAYTX_EINVAL,
	      "decision: unknown field");
}
END_TEST

START_TEST(test_ack_decision_must_be_commit_or_abort)
{
	struct paytx_ack a;
	const char *body = J("{'txn':9,'participant':'p','decision':'abort'}");

	ck_assert_int_eq(paytx_ack_decode(body, strlen(body), &a, NULL), 0);
	ck_assert(!a.commit);
	ck_assert_str_eq(a.participant, "p");
	fails(PAYTX_MSG_ACK, "{'txn':9,'participant':'p','decision':'committed'}", PAYTX_EINVAL,
	      "decision: must be");
	fails(PAYTX_MSG_ACK, "{'txn':9,'participant':'p'}", PAYTX_EMISSING, "decision");
}
END_TEST

START_TEST(test_status_query_decodes)
{
	struct paytx_status_query q;
	const char *body = J("{'participant':'ledger-2','txn':77}");

	ck_assert_int_eq(paytx_status_query_decode(body, strlen(body), &q, NULL), 0);
	ck_assert_int_eq(q.txn, 77);
	ck_assert_str_eq(q.participant, "ledger-2");
	fails(PAYTX_MSG_STATUS, "{'txn':77}", PAYTX_EMISSING, "participant: required");
}
END_TEST

/* ---- outcome ---- */

START_TEST(test_outcome_rejected_may_have_an_empty_payment_id)
{
	struct paytx_outcome o;
	const char *body = J("{'payment_id':'','status':'rejected','reason':'malformed_json',"
			     "'detail':'x','txn':0,'submitted_at_ms':5,'finished_at_ms':6}");

	ck_assert_int_eq(paytx_outcome_decode(body, strlen(body), &o, NULL), 0);
	ck_assert_int_eq(o.status, PAYTX_STATUS_REJECTED);
	ck_assert_str_eq(o.payment_id, "");
	ck_assert_int_eq(o.txn, 0);
	ck_assert_int_eq(o.submitted_ms, 5);
	ck_assert_int_eq(o.finished_ms, 6);
}
END_TEST

START_TEST(test_outcome_other_than_rejected_needs_a_payment_id)
{
	fails(PAYTX_MSG_OUTCOME, "{'payment_id':'','status':'committed','reason':'','detail':'',"
	      "'txn':1,'submitted_at_ms':5,'finished_at_ms':6}", PAYTX_EINVAL, "payment_id");
	fails(PAYTX_MSG_OUTCOME, "{'payment_id':'a b','status':'rejected','reason':'','detail':'',"
	      "'txn':1,'submitted_at_ms':5,'finished_at_ms':6}", PAYTX_EINVAL, "payment_id");
}
END_TEST

START_TEST(test_outcome_fields_are_checked)
{
	fails(PAYTX_MSG_OUTCOME, "{'payment_id':'p','status':'done','reason':'','detail':'',"
	      "'txn':1,'submitted_at_ms':5,'finished_at_ms':6}", PAYTX_EINVAL, "status: must be");
	fails(PAYTX_MSG_OUTCOME, "{'payment_id':'p','status':'aborted','reason':'','detail':'',"
	      "'txn':1,'submitted_at_ms':5}", PAYTX_EMISSING, "finished_at_ms: required");
	fails(PAYTX_MSG_OUTCOME, "{'payment_id':'p','status':'aborted','detail':'',"
	      "'txn':1,'submitted_at_ms':5,'finished_at_ms':6}", PAYTX_EMISSING, "reason: required");
	fails(PAYTX_MSG_OUTCOME, "{'payment_id':'p','status':'aborted','reason':'','detail':'',"
	      "'txn':-1,'submitted_at_ms':5,'finished_at_ms':6}", PAYTX_ERANGE, "txn");
}
END_TEST

/* ---- canonical form ---- */

START_TEST(test_canonical_form_is_exact)
{
	char *c = canonical_of("{'payment_id':'p1','from':'b','to':'a','amount':5,'currency':'EUR',"
			       "'metadata':{'z':1,'a':{'y':[1,{'d':2,'c':'s/t'}],'x':null}}}");

	ck_assert_str_eq(c, J("{'payment_id':'p1','legs':[{'account':'a','amount':5,'currency':'EUR'},"
			      "{'account':'b','amount':-5,'currency':'EUR'}],"
			      "'metadata':{'a':{'x':null,'y':[1,{'c':'s/t','d':2}]},'z':1}}"));
	free(c);
	c = canonical_of("{'payment_id':'p1','from':'b','to':'a','amount':5,'currency':'EUR'}");
	ck_assert_str_eq(c, J("{'payment_id':'p1','legs':[{'account':'a','amount':5,'currency':'EUR'},"
			      "{'account':'b','amount':-5,'currency':'EUR'}],'metadata':null}"));
	free(c);
}
END_TEST

START_TEST(test_canonical_shorthand_equals_legs_form)
{
	char *a = canonical_of("{'payment_id':'p1','from':'alice','to':'bob','amount':250,"
			       "'currency':'USD','metadata':{'k':'v'}}");
	char *b = canonical_of("{'metadata':{'k':'v'},'legs':[{'currency':'USD','amount':250,"
			       "'account':'bob'},{'account':'alice','amount':-250,"
			       "'currency':'USD'}],'payment_id':'p1'}");

	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_canonical_merges_and_sorts_legs)
{
	char *a = canonical_of("{'payment_id':'p1','legs':["
			       "{'account':'b','amount':60,'currency':'EUR'},"
			       "{'account':'a','amount':-50,'currency':'EUR'},"
			       "{'account':'c','amount':7,'currency':'USD'},"
			       "{'account':'b','amount':40,'currency':'EUR'},"
			       "{'account':'c','amount':-7,'currency':'USD'},"
			       "{'account':'a','amount':-50,'currency':'EUR'}]}");

	ck_assert_str_eq(a, J("{'payment_id':'p1','legs':[{'account':'a','amount':-100,"
			      "'currency':'EUR'},{'account':'b','amount':100,'currency':'EUR'}],"
			      "'metadata':null}"));
	free(a);
}
END_TEST

START_TEST(test_canonical_ignores_metadata_key_order)
{
	char *a = canonical_of("{'payment_id':'p1'," LEGS ",'metadata':{'b':{'y':1,'x':[{'q':1,"
			       "'p':2}]},'a':'\\u00e9','c':1.5}}");
	char *b = canonical_of("{'payment_id':'p1'," LEGS ",'metadata':{'c':1.5,'a':'\xc3\xa9',"
			       "'b':{'x':[{'p':2,'q':1}],'y':1}}}");

	ck_assert_str_eq(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_canonical_differs_when_content_differs)
{
	char *base = canonical_of("{'payment_id':'p1'," LEGS ",'metadata':{'k':1}}");
	char *other_meta = canonical_of("{'payment_id':'p1'," LEGS ",'metadata':{'k':2}}");
	char *no_meta = canonical_of("{'payment_id':'p1'," LEGS "}");
	char *empty_meta = canonical_of("{'payment_id':'p1'," LEGS ",'metadata':{}}");
	char *other_amount = canonical_of("{'payment_id':'p1','from':'acc-a','to':'acc-b',"
					  "'amount':101,'currency':'EUR','metadata':{'k':1}}");
	char *other_id = canonical_of("{'payment_id':'p2'," LEGS ",'metadata':{'k':1}}");

	ck_assert_str_ne(base, other_meta);
	ck_assert_str_ne(base, no_meta);
	ck_assert_str_ne(no_meta, empty_meta);
	ck_assert_str_ne(base, other_amount);
	ck_assert_str_ne(base, other_id);
	free(base);
	free(other_meta);
	free(no_meta);
	free(empty_meta);
	free(other_amount);
	free(other_id);
}
END_TEST

START_TEST(test_canonical_appends_to_the_buffer)
{
	struct paytx_payment p;
	struct paytx_buf buf;

	decode_payment("{'payment_id':'p1'," LEGS "}", &p);
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_buf_append(&buf, "X", 1), 0);
	ck_assert_int_eq(paytx_payment_canonical(&p, &buf), 0);
	ck_assert_int_eq(buf.data[0], 'X');
	ck_assert_int_eq(buf.data[1], '{');
	paytx_buf_finish(&buf);
}
END_TEST

/* ---- encoders and round trips ---- */

static void assert_legs_eq(const struct paytx_leg *a, const struct paytx_leg *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(a[i].account, b[i].account);
		ck_assert_int_eq(a[i].amount, b[i].amount);
		ck_assert_str_eq(a[i].currency, b[i].currency);
	}
}

static void set_leg(struct paytx_leg *leg, const char *account, int64_t amount,
		    const char *currency)
{
	snprintf(leg->account, sizeof(leg->account), "%s", account);
	leg->amount = amount;
	snprintf(leg->currency, sizeof(leg->currency), "%s", currency);
}

START_TEST(test_payment_round_trips)
{
	struct paytx_payment in = { .nlegs = 3 }, out;
	struct paytx_buf buf;
	const char *meta = J("{'note':'a \\'quoted\\' \\\\ path/x\\n','n':[1,2.5,true,null],"
			     "'o':{'z':{},'e':'\xe2\x82\xac'}}");

	snprintf(in.payment_id, sizeof(in.payment_id), "order:42");
	set_leg(&in.legs[0], "acc-a", -PAYTX_AMOUNT_MAX, "EUR");
	set_leg(&in.legs[1], "acc-b", PAYTX_AMOUNT_MAX - 1, "EUR");
	set_leg(&in.legs[2], "fees", 1, "EUR");
	in.metadata = strdup(meta);
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_payment_encode(&in, &buf), 0);
	ck_assert_int_eq(paytx_payment_decode(buf.data, buf.len, &out, NULL), 0);
	ck_assert_str_eq(out.payment_id, in.payment_id);
	ck_assert_uint_eq(out.nlegs, in.nlegs);
	assert_legs_eq(out.legs, in.legs, in.nlegs);
	ck_assert_str_eq(out.metadata, in.metadata);
	paytx_payment_finish(&out);
	/* and without metadata */
	paytx_payment_finish(&in);
	paytx_buf_reset(&buf);
	ck_assert_int_eq(paytx_payment_encode(&in, &buf), 0);
	ck_assert_int_eq(paytx_payment_decode(buf.data, buf.len, &out, NULL), 0);
	ck_assert_ptr_null(out.metadata);
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_payment_encode_gives_the_legs_form)
{
	struct paytx_payment in = { .nlegs = 2 };
	struct paytx_buf buf;

	snprintf(in.payment_id, sizeof(in.payment_id), "p1");
	set_leg(&in.legs[0], "a", -5, "EUR");
	set_leg(&in.legs[1], "b", 5, "EUR");
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_payment_encode(&in, &buf), 0);
	ck_assert_str_eq(buf.data, J("{'payment_id':'p1','legs':[{'account':'a','amount':-5,"
				     "'currency':'EUR'},{'account':'b','amount':5,'currency':'EUR'}]}"));
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_prepare_round_trips)
{
	struct paytx_prepare in = { .txn = INT64_MAX, .nlegs = 2, .deadline_ms = 1700000000123LL };
	struct paytx_prepare out;
	struct paytx_buf buf;

	snprintf(in.payment_id, sizeof(in.payment_id), "p-9");
	set_leg(&in.legs[0], "a", -7, "JPY");
	set_leg(&in.legs[1], "b", -3, "JPY");
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_prepare_encode(&in, &buf), 0);
	ck_assert_int_eq(paytx_prepare_decode(buf.data, buf.len, &out, NULL), 0);
	ck_assert_int_eq(out.txn, in.txn);
	ck_assert_str_eq(out.payment_id, in.payment_id);
	ck_assert_uint_eq(out.nlegs, in.nlegs);
	assert_legs_eq(out.legs, in.legs, in.nlegs);
	ck_assert_int_eq(out.deadline_ms, in.deadline_ms);
	paytx_buf_finish(&buf);
}
END_TEST

static void vote_round_trip(const struct paytx_vote *in)
{
	struct paytx_vote out;
	struct paytx_buf buf;
	struct paytx_fault f;

	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_vote_encode(in, &buf), 0);
	ck_assert_msg(paytx_vote_decode(buf.data, buf.len, &out, &f) == 0, "%s: %s", buf.data,
		      f.text);
	ck_assert_int_eq(out.txn, in->txn);
	ck_assert_str_eq(out.participant, in->participant);
	ck_assert_int_eq(out.yes, in->yes);
	ck_assert_str_eq(out.reason, in->reason);
	ck_assert_str_eq(out.detail, in->detail);
	paytx_buf_finish(&buf);
}

START_TEST(test_vote_round_trips)
{
	struct paytx_vote v = { .txn = 5, .yes = true };

	snprintf(v.participant, sizeof(v.participant), "ledger-1");
	vote_round_trip(&v);
	snprintf(v.detail, sizeof(v.detail), "ok \"fine\"");
	vote_round_trip(&v);
	v.yes = false;
	snprintf(v.reason, sizeof(v.reason), "insufficient_funds");
	snprintf(v.detail, sizeof(v.detail), "tab\there \\ \"q\" / \x01 caf\xc3\xa9 \xf0\x9f\x92\xb6");
	vote_round_trip(&v);
}
END_TEST

START_TEST(test_decision_round_trips)
{
	struct paytx_decision in = { .txn = 12, .commit = true }, out;
	struct paytx_buf buf;

	snprintf(in.payment_id, sizeof(in.payment_id), "p1");
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_decision_encode(&in, &buf), 0);
	ck_assert_str_eq(buf.data, J("{'txn':12,'payment_id':'p1'}"));
	ck_assert_int_eq(paytx_decision_decode(buf.data, buf.len, true, &out, NULL), 0);
	ck_assert_int_eq(out.txn, 12);
	ck_assert(out.commit);
	ck_assert_str_eq(out.payment_id, "p1");
	in.commit = false;
	paytx_buf_reset(&buf);
	ck_assert_int_eq(paytx_decision_encode(&in, &buf), 0);
	ck_assert_int_eq(paytx_decision_decode(buf.data, buf.len, false, &out, NULL), 0);
	ck_assert(!out.commit);
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_ack_round_trips)
{
	struct paytx_ack in = { .txn = 13, .commit = true }, out;
	struct paytx_buf buf;

	snprintf(in.participant, sizeof(in.participant), "ledger-3");
	paytx_buf_init(&buf);
	for (int i = 0; i < 2; i++) {
		in.commit = i == 0;
		paytx_buf_reset(&buf);
		ck_assert_int_eq(paytx_ack_encode(&in, &buf), 0);
		ck_assert_int_eq(paytx_ack_decode(buf.data, buf.len, &out, NULL), 0);
		ck_assert_int_eq(out.txn, in.txn);
		ck_assert_str_eq(out.participant, in.participant);
		ck_assert_int_eq(out.commit, in.commit);
	}
	ck_assert_str_eq(buf.data, J("{'txn':13,'participant':'ledger-3','decision':'abort'}"));
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_status_query_round_trips)
{
	struct paytx_status_query in = { .txn = 1 }, out;
	struct paytx_buf buf;

	snprintf(in.participant, sizeof(in.participant), "p.x");
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_status_query_encode(&in, &buf), 0);
	ck_assert_int_eq(paytx_status_query_decode(buf.data, buf.len, &out, NULL), 0);
	ck_assert_int_eq(out.txn, 1);
	ck_assert_str_eq(out.participant, "p.x");
	paytx_buf_finish(&buf);
}
END_TEST

static void outcome_round_trip(const struct paytx_outcome *in)
{
	struct paytx_outcome out;
	struct paytx_buf buf;
	struct paytx_fault f;

	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_outcome_encode(in, &buf), 0);
	ck_assert_msg(paytx_outcome_decode(buf.data, buf.len, &out, &f) == 0, "%s: %s", buf.data,
		      f.text);
	ck_assert_str_eq(out.payment_id, in->payment_id);
	ck_assert_int_eq(out.status, in->status);
	ck_assert_str_eq(out.reason, in->reason);
	ck_assert_str_eq(out.detail, in->detail);
	ck_assert_int_eq(out.txn, in->txn);
	ck_assert_int_eq(out.submitted_ms, in->submitted_ms);
	ck_assert_int_eq(out.finished_ms, in->finished_ms);
	paytx_buf_finish(&buf);
}

START_TEST(test_outcome_round_trips)
{
	struct paytx_outcome o = { .status = PAYTX_STATUS_COMMITTED, .txn = 99,
				   .submitted_ms = 1700000000000LL, .finished_ms = 1700000000050LL };
	struct paytx_buf buf;

	snprintf(o.payment_id, sizeof(o.payment_id), "p1");
	outcome_round_trip(&o);
	o.status = PAYTX_STATUS_ABORTED;
	snprintf(o.reason, sizeof(o.reason), "insufficient_funds");
	snprintf(o.detail, sizeof(o.detail), "account \"a\" has 5 < 100\n");
	outcome_round_trip(&o);
	o.status = PAYTX_STATUS_REJECTED;
	o.payment_id[0] = '\0';
	o.txn = 0;
	outcome_round_trip(&o);
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_outcome_encode(&o, &buf), 0);
	ck_assert_str_eq(buf.data, J("{'payment_id':'','status':'rejected',"
				     "'reason':'insufficient_funds',"
				     "'detail':'account \\'a\\' has 5 < 100\\n','txn':0,"
				     "'submitted_at_ms':1700000000000,'finished_at_ms':1700000000050}"));
	o.status = (enum paytx_status)0;
	paytx_buf_reset(&buf);
	ck_assert_int_eq(paytx_outcome_encode(&o, &buf), PAYTX_EINVAL);
	paytx_buf_finish(&buf);
}
END_TEST

START_TEST(test_outcome_with_empty_reason_and_detail_emits_them)
{
	struct paytx_outcome o = { .status = PAYTX_STATUS_COMMITTED, .txn = 1 };
	struct paytx_buf buf;

	snprintf(o.payment_id, sizeof(o.payment_id), "p1");
	paytx_buf_init(&buf);
	ck_assert_int_eq(paytx_outcome_encode(&o, &buf), 0);
	ck_assert_str_eq(buf.data, J("{'payment_id':'p1','status':'committed','reason':'',"
				     "'detail':'','txn':1,'submitted_at_ms':0,'finished_at_ms':0}"));
	paytx_buf_finish(&buf);
}
END_TEST

#define ADD(s, fn)                                   \
	do {                                         \
		TCase *tc = tcase_create(#fn);       \
		tcase_add_test(tc, fn);              \
		suite_add_tcase(s, tc);              \
	} while (0)

static Suite *message_suite(void)
{
	Suite *s = suite_create("message");

	ADD(s, test_errcode_gives_the_documented_codes);
	ADD(s, test_legs_that_move_no_money_are_invalid);
	ADD(s, test_metadata_numbers_json_c_would_change_are_refused);
	ADD(s, test_unknown_error_values_give_unknown_error);
	ADD(s, test_strerror_gives_a_sentence_for_every_value);
	ADD(s, test_buf_append_grows_and_stays_nul_terminated);
	ADD(s, test_buf_reset_empties_and_keeps_memory);
	ADD(s, test_buf_finish_releases_and_allows_reuse);
	ADD(s, test_buf_append_of_null_data_is_invalid);
	ADD(s, test_msg_type_names_round_trip);
	ADD(s, test_msg_type_parse_of_unknown_name_is_unknown);
	ADD(s, test_status_names);
	ADD(s, test_id_valid_accepts_allowed_characters_up_to_64);
	ADD(s, test_id_valid_rejects_empty_long_and_bad_characters);
	ADD(s, test_traceparent_valid_only_in_the_w3c_form);
	ADD(s, test_guess_payment_id_of_a_refused_body);
	ADD(s, test_grow_doubles_from_first_and_refuses_overflow);
	ADD(s, test_body_longer_than_message_max_is_too_big);
	ADD(s, test_body_of_exactly_message_max_is_parsed);
	ADD(s, test_invalid_utf8_is_invalid_encoding);
	ADD(s, test_valid_multibyte_utf8_is_accepted);
	ADD(s, test_unpaired_surrogate_escape_is_invalid_encoding);
	ADD(s, test_escaped_surrogate_pair_is_decoded);
	ADD(s, test_nul_byte_in_body_is_malformed);
	ADD(s, test_escaped_nul_in_a_key_is_invalid);
	ADD(s, test_escaped_nul_in_a_value_is_invalid);
	ADD(s, test_nesting_deeper_than_limit_is_malformed);
	ADD(s, test_nesting_at_the_limit_is_parsed);
	ADD(s, test_trailing_garbage_is_malformed);
	ADD(s, test_surrounding_whitespace_is_accepted);
	ADD(s, test_top_level_non_object_is_wrong_type);
	ADD(s, test_empty_body_is_malformed);
	ADD(s, test_non_standard_json_is_malformed);
	ADD(s, test_body_need_not_be_nul_terminated);
	ADD(s, test_length_argument_bounds_the_body);
	ADD(s, test_duplicate_top_level_key_is_malformed);
	ADD(s, test_duplicate_key_with_escaped_spelling_is_detected);
	ADD(s, test_duplicate_key_inside_a_leg_is_detected_with_path);
	ADD(s, test_duplicate_key_whose_first_value_held_objects_is_detected);
	ADD(s, test_duplicate_key_in_metadata_is_detected_without_naming_it);
	ADD(s, test_duplicate_among_many_keys_is_detected);
	ADD(s, test_nested_objects_without_duplicates_are_accepted);
	ADD(s, test_submit_with_legs_decodes);
	ADD(s, test_submit_shorthand_decodes_to_two_legs);
	ADD(s, test_submit_metadata_is_stored_serialized);
	ADD(s, test_submit_missing_fields_are_missing);
	ADD(s, test_submit_legs_with_shorthand_fields_is_invalid);
	ADD(s, test_unknown_top_level_field_is_invalid_and_named);
	ADD(s, test_unknown_field_with_unsafe_name_is_not_echoed);
	ADD(s, test_unknown_field_inside_a_leg_is_invalid);
	ADD(s, test_amount_of_wrong_type_is_wrong_type);
	ADD(s, test_amount_beyond_int64_is_out_of_range);
	ADD(s, test_amount_zero_is_out_of_range);
	ADD(s, test_amount_beyond_ten_to_the_fifteen_is_out_of_range);
	ADD(s, test_shorthand_amount_must_be_positive);
	ADD(s, test_shorthand_from_equal_to_is_invalid);
	ADD(s, test_submit_leg_count_outside_2_to_16_is_invalid);
	ADD(s, test_legs_of_wrong_type_are_wrong_type);
	ADD(s, test_unbalanced_legs_are_unbalanced);
	ADD(s, test_multi_currency_legs_balanced_per_currency_are_accepted);
	ADD(s, test_invalid_ids_are_invalid);
	ADD(s, test_invalid_currency_is_invalid);
	ADD(s, test_metadata_not_an_object_is_wrong_type);
	ADD(s, test_metadata_larger_than_limit_is_too_big);
	ADD(s, test_fault_text_never_contains_values);
	ADD(s, test_decoders_accept_a_null_fault);
	ADD(s, test_prepare_decodes_legs_that_need_not_balance);
	ADD(s, test_txn_must_be_a_positive_int64);
	ADD(s, test_prepare_leg_count_outside_1_to_16_is_invalid);
	ADD(s, test_prepare_deadline_is_required_and_not_negative);
	ADD(s, test_vote_yes_decodes);
	ADD(s, test_vote_no_requires_a_reason);
	ADD(s, test_vote_yes_with_a_reason_is_invalid);
	ADD(s, test_vote_reason_and_detail_longer_than_buffers_are_invalid);
	ADD(s, test_vote_other_than_yes_or_no_is_invalid);
	ADD(s, test_decision_takes_commit_or_abort_from_the_argument);
	ADD(s, test_ack_decision_must_be_commit_or_abort);
	ADD(s, test_status_query_decodes);
	ADD(s, test_outcome_rejected_may_have_an_empty_payment_id);
	ADD(s, test_outcome_other_than_rejected_needs_a_payment_id);
	ADD(s, test_outcome_fields_are_checked);
	ADD(s, test_canonical_form_is_exact);
	ADD(s, test_canonical_shorthand_equals_legs_form);
	ADD(s, test_canonical_merges_and_sorts_legs);
	ADD(s, test_canonical_ignores_metadata_key_order);
	ADD(s, test_canonical_differs_when_content_differs);
	ADD(s, test_canonical_appends_to_the_buffer);
	ADD(s, test_payment_round_trips);
	ADD(s, test_payment_encode_gives_the_legs_form);
	ADD(s, test_prepare_round_trips);
	ADD(s, test_vote_round_trips);
	ADD(s, test_decision_round_trips);
	ADD(s, test_ack_round_trips);
	ADD(s, test_status_query_round_trips);
	ADD(s, test_outcome_round_trips);
	ADD(s, test_outcome_with_empty_reason_and_detail_emits_them);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(message_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

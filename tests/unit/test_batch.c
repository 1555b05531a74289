/* txn.batch: decoding a delivery into entries (message_batch.c), and
 * grouping outgoing messages per destination (batch_out.c), the latter
 * against a recording broker_publish instead of RabbitMQ. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch_out.h"
#include "paytx/message.h"
#include "unit.h"

static struct paytx_entry entries[PAYTX_BATCH_MAX];

#define TP "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
#define PREP "{\"txn\":7,\"payment_id\":\"p-7\",\"legs\":[{\"account\":\"a\",\"amount\":-5," \
	     "\"currency\":\"EUR\"}],\"deadline_ms\":100}"

/* ---- a broker that records what is published --------------------------- */

struct published {
	char type[32];
	char key[64];
	char corr[PAYTX_CORR_MAX + 1];
	char traceparent[64];
	char *body;
	size_t len;
};

static struct published pubs[64];
static size_t npubs;
static int publish_fails;

int broker_publish(struct broker *b, const struct broker_out *o)
{
	(void)b;
	if (publish_fails)
		return PAYTX_EBROKER;
	ck_assert_uint_lt(npubs, 64);
	struct published *p = &pubs[npubs++];
	snprintf(p->type, sizeof(p->type), "%s", paytx_msg_type_name(o->type));
	snprintf(p->key, sizeof(p->key), "%s", o->routing_key);
	snprintf(p->corr, sizeof(p->corr), "%s", o->correlation_id ? o->correlation_id : "");
	snprintf(p->traceparent, sizeof(p->traceparent), "%s",
		 o->traceparent ? o->traceparent : "");
	ck_assert(o->sign);
	p->body = malloc(o->len + 1);
	memcpy(p->body, o->body, o->len);
	p->body[o->len] = '\0';
	p->len = o->len;
	return 0;
}

static void pubs_clear(void)
{
	for (size_t i = 0; i < npubs; i++)
		free(pubs[i].body);
	npubs = 0;
	publish_fails = 0;
}

static int decode(const char *body, enum paytx_batch_dir dir, size_t *n, struct paytx_fault *f)
{
	return paytx_entries_decode(PAYTX_MSG_BATCH, dir, body, strlen(body), "ignored", NULL,
				    entries, PAYTX_BATCH_MAX, n, f);
}

static void refused(const char *body, enum paytx_batch_dir dir, int err, const char *text)
{
	struct paytx_fault f;
	size_t n = 99;
	int rc = decode(body, dir, &n, &f);
	ck_assert_msg(rc == err, "%s: got %s (%s)", body, paytx_errcode(rc), f.text);
	ck_assert_str_eq(f.text, text);
	ck_assert_uint_eq(n, 0);
}

/* ---- decoding ----------------------------------------------------------- */

START_TEST(test_round_trip)
{
	struct paytx_buf b;
	paytx_buf_init(&b);
	ck_assert_int_eq(paytx_batch_begin(&b), 0);
	ck_assert_int_eq(paytx_batch_add(&b, true, PAYTX_MSG_PREPARE, "1.2", TP, PREP,
					 strlen(PREP)), 0);
	const char *abort_body = "{\"txn\":8,\"payment_id\":\"p-8\"}";
	ck_assert_int_eq(paytx_batch_add(&b, false, PAYTX_MSG_ABORT, NULL, "", abort_body,
					 strlen(abort_body)), 0);
	ck_assert_int_eq(paytx_batch_end(&b), 0);
	size_t n = 0;
	struct paytx_fault f;
	ck_assert_int_eq(decode(b.data, PAYTX_BATCH_REQUESTS, &n, &f), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(entries[0].type, PAYTX_MSG_PREPARE);
	ck_assert_str_eq(entries[0].correlation_id, "1.2");
	ck_assert_str_eq(entries[0].traceparent, TP);
	ck_assert_int_eq(entries[0].u.prepare.txn, 7);
	ck_assert_uint_eq(entries[0].u.prepare.nlegs, 1);
	ck_assert_int_eq(entries[0].u.prepare.legs[0].amount, -5);
	ck_assert_int_eq(entries[1].type, PAYTX_MSG_ABORT);
	ck_assert_str_eq(entries[1].correlation_id, "");
	ck_assert_str_eq(entries[1].traceparent, "");
	ck_assert_int_eq(entries[1].u.decision.txn, 8);
	ck_assert(!entries[1].u.decision.commit);
	ck_assert_uint_le(b.len, paytx_batch_entry_size("1.2", TP, strlen(PREP)) +
			  paytx_batch_entry_size(NULL, NULL, strlen(abort_body)) + 14);
	paytx_buf_finish(&b);
}
END_TEST

START_TEST(test_a_single_message_is_one_entry)
{
	const char *vote = "{\"txn\":3,\"participant\":\"ledger.0\",\"vote\":\"no\","
			   "\"reason\":\"insufficient_funds\"}";
	size_t n = 0;
	struct paytx_fault f;
	ck_assert_int_eq(paytx_entries_decode(PAYTX_MSG_VOTE, PAYTX_BATCH_REPLIES, vote,
					      strlen(vote), "5.9", TP, entries, 1, &n, &f), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(entries[0].type, PAYTX_MSG_VOTE);
	ck_assert_str_eq(entries[0].correlation_id, "5.9");
	ck_assert_str_eq(entries[0].traceparent, TP);
	ck_assert(!entries[0].u.vote.yes);
	/* A property that cannot be carried into a batch is dropped, not fatal. */
	ck_assert_int_eq(paytx_entries_decode(PAYTX_MSG_VOTE, PAYTX_BATCH_REPLIES, vote,
					      strlen(vote), "with \"quote\"", "00-bad", entries, 1,
					      &n, &f), 0);
	ck_assert_str_eq(entries[0].correlation_id, "");
	ck_assert_str_eq(entries[0].traceparent, "");
	/* The wrong side's messages are refused, alone as in a batch. */
	ck_assert_int_eq(paytx_entries_decode(PAYTX_MSG_VOTE, PAYTX_BATCH_REQUESTS, vote,
					      strlen(vote), NULL, NULL, entries, 1, &n, &f),
			 PAYTX_EMSGTYPE);
	ck_assert_int_eq(paytx_entries_decode(PAYTX_MSG_STATUS, PAYTX_BATCH_REPLIES, vote,
					      strlen(vote), NULL, NULL, entries, 1, &n, &f),
			 PAYTX_EMSGTYPE);
}
END_TEST

START_TEST(test_refusals_name_the_entry)
{
	enum paytx_batch_dir rq = PAYTX_BATCH_REQUESTS, rp = PAYTX_BATCH_REPLIES;
	refused("[]", rq, PAYTX_ETYPE, "message: must be a JSON object");
	refused("{}", rq, PAYTX_EMISSING, "entries: required");
	refused("{\"entries\":[],\"x\":1}", rq, PAYTX_EINVAL, "x: unknown field");
	refused("{\"entries\":[]}", rq, PAYTX_EINVAL, "entries: must be an array of 1 to 256 entries");
	refused("{\"entries\":{}}", rq, PAYTX_EINVAL, "entries: must be an array of 1 to 256 entries");
	refused("{\"entries\":[1]}", rq, PAYTX_ETYPE, "entries[0]: must be an object");
	refused("{\"entries\":[{\"body\":{}}]}", rq, PAYTX_EINVAL,
		"entries[0].type: required, a string");
	refused("{\"entries\":[{\"type\":\"txn.vote\",\"body\":{}}]}", rq, PAYTX_EMSGTYPE,
		"entries[0].type: must be txn.prepare, txn.commit or txn.abort");
	refused("{\"entries\":[{\"type\":\"txn.commit\",\"body\":{}}]}", rp, PAYTX_EMSGTYPE,
		"entries[0].type: must be txn.vote or txn.ack");
	refused("{\"entries\":[{\"type\":\"txn.batch\",\"body\":{}}]}", rq, PAYTX_EMSGTYPE,
		"entries[0].type: must be txn.prepare, txn.commit or txn.abort");
	refused("{\"entries\":[{\"type\":\"txn.abort\"}]}", rq, PAYTX_EMISSING,
		"entries[0].body: required");
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":\"x\"}]}", rq, PAYTX_ETYPE,
		"entries[0].body: must be an object");
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"},\"extra\":1}]}", rq,
		PAYTX_EINVAL, "entries[0].extra: unknown field");
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"},"
		"\"correlation_id\":\"a\\\"b\"}]}", rq, PAYTX_EINVAL,
		"entries[0].correlation_id: must be a string of at most 127 printable ASCII "
		"characters");
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"},"
		"\"correlation_id\":7}]}", rq, PAYTX_EINVAL,
		"entries[0].correlation_id: must be a string of at most 127 printable ASCII "
		"characters");
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"},"
		"\"traceparent\":\"00-x\"}]}", rq, PAYTX_EINVAL,
		"entries[0].traceparent: must be a W3C traceparent");
	/* A fault of the body object itself names the body. */
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":"
		"\"p\",\"bad key!\":1}}]}", rq, PAYTX_EINVAL,
		"entries[0].body: unknown field (name not shown)");
	/* One bad entry among good ones refuses them all, naming it. */
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"}},"
		"{\"type\":\"txn.commit\",\"body\":{\"txn\":0}}]}", rq, PAYTX_ERANGE,
		"entries[1].body.txn: must be an integer from 1 to 2^63-1");
	refused("{\"entries\":[{\"type\":\"txn.prepare\",\"body\":{\"txn\":1,\"payment_id\":\"p\",\"legs\":[],"
		"\"deadline_ms\":1}}]}", rq, PAYTX_EINVAL,
		"entries[0].body.legs: must have 1 to 16 legs");
	refused("{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"}},]}", rq, PAYTX_EJSON,
		"malformed JSON at byte 67: expected a value");
}
END_TEST

START_TEST(test_limits)
{
	struct paytx_buf b;
	paytx_buf_init(&b);
	const char *body = "{\"txn\":1,\"payment_id\":\"p\"}";
	for (size_t count = PAYTX_BATCH_MAX; count <= PAYTX_BATCH_MAX + 1; count++) {
		paytx_buf_reset(&b);
		ck_assert_int_eq(paytx_batch_begin(&b), 0);
		for (size_t i = 0; i < count; i++)
			ck_assert_int_eq(paytx_batch_add(&b, i == 0, PAYTX_MSG_ABORT, NULL, NULL,
							 body, strlen(body)), 0);
		ck_assert_int_eq(paytx_batch_end(&b), 0);
		size_t n = 0;
		struct paytx_fault f;
		int rc = decode(b.data, PAYTX_BATCH_REQUESTS, &n, &f);
		ck_assert_int_eq(rc, count == PAYTX_BATCH_MAX ? 0 : PAYTX_EINVAL);
		ck_assert_uint_eq(n, count == PAYTX_BATCH_MAX ? count : 0);
	}
	/* No room for more than max entries: refused, nothing written past. */
	size_t n = 0;
	const char *two = "{\"entries\":[{\"type\":\"txn.abort\",\"body\":{\"txn\":1,\"payment_id\":\"p\"}},"
			  "{\"type\":\"txn.abort\",\"body\":{\"txn\":2,\"payment_id\":\"p\"}}]}";
	ck_assert_int_eq(paytx_entries_decode(PAYTX_MSG_BATCH, PAYTX_BATCH_REQUESTS, two,
					      strlen(two), NULL, NULL, entries, 1, &n, NULL),
			 PAYTX_EINVAL);
	/* Every message, a batch too, is at most PAYTX_MESSAGE_MAX bytes. */
	paytx_buf_reset(&b);
	ck_assert_int_eq(paytx_batch_begin(&b), 0);
	for (size_t i = 0; b.len <= PAYTX_MESSAGE_MAX; i++)
		ck_assert_int_eq(paytx_batch_add(&b, i == 0, PAYTX_MSG_PREPARE, NULL, TP, PREP,
						 strlen(PREP)), 0);
	ck_assert_int_eq(paytx_batch_end(&b), 0);
	ck_assert_int_eq(decode(b.data, PAYTX_BATCH_REQUESTS, &n, NULL), PAYTX_ETOOBIG);
	paytx_buf_finish(&b);
}
END_TEST

/* ---- batch_out ---------------------------------------------------------- */

static void add(struct batch_out *o, const char *key, enum paytx_msg_type type,
		const char *corr, const char *body)
{
	ck_assert_int_eq(batch_out_add(o, "paytx.participants", key, true, type, corr, TP, body,
				       strlen(body)), 0);
}

START_TEST(test_out_groups_per_destination)
{
	struct batch_out o;
	batch_out_init(&o, NULL, "reply-q");
	add(&o, "ledger.0", PAYTX_MSG_PREPARE, "1.1", PREP);
	add(&o, "ledger.1", PAYTX_MSG_COMMIT, "1.2", "{\"txn\":9,\"payment_id\":\"p\"}");
	add(&o, "ledger.0", PAYTX_MSG_ABORT, "1.3", "{\"txn\":8,\"payment_id\":\"p\"}");
	ck_assert_uint_eq(npubs, 0);
	ck_assert_int_eq(batch_out_send(&o), 0);
	ck_assert_uint_eq(npubs, 2);
	/* ledger.0 got both of its messages as one batch ... */
	ck_assert_str_eq(pubs[0].key, "ledger.0");
	ck_assert_str_eq(pubs[0].type, "txn.batch");
	ck_assert_str_eq(pubs[0].corr, "");
	size_t n = 0;
	ck_assert_int_eq(decode(pubs[0].body, PAYTX_BATCH_REQUESTS, &n, NULL), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(entries[0].correlation_id, "1.1");
	ck_assert_int_eq(entries[0].u.prepare.txn, 7);
	ck_assert_str_eq(entries[1].correlation_id, "1.3");
	ck_assert_int_eq(entries[1].type, PAYTX_MSG_ABORT);
	/* ... ledger.1 its only one alone, with its properties. */
	ck_assert_str_eq(pubs[1].key, "ledger.1");
	ck_assert_str_eq(pubs[1].type, "txn.commit");
	ck_assert_str_eq(pubs[1].corr, "1.2");
	ck_assert_str_eq(pubs[1].traceparent, TP);
	ck_assert_str_eq(pubs[1].body, "{\"txn\":9,\"payment_id\":\"p\"}");
	/* Sent means emptied: the next send publishes nothing. */
	ck_assert_int_eq(batch_out_send(&o), 0);
	ck_assert_uint_eq(npubs, 2);
	ck_assert_uint_eq(o.published, 2);
	batch_out_finish(&o);
	pubs_clear();
}
END_TEST

START_TEST(test_out_splits_at_the_limits)
{
	struct batch_out o;
	batch_out_init(&o, NULL, "reply-q");
	size_t total = 3 * PAYTX_BATCH_MAX / 2;
	for (size_t i = 0; i < total; i++)
		add(&o, "risk", PAYTX_MSG_ABORT, NULL, "{\"txn\":1,\"payment_id\":\"p\"}");
	ck_assert_uint_eq(npubs, 1); /* the first 256 went when the 257th came */
	ck_assert_int_eq(batch_out_send(&o), 0);
	ck_assert_uint_eq(npubs, 2);
	size_t n = 0, seen = 0;
	for (size_t i = 0; i < npubs; i++) {
		ck_assert_int_eq(decode(pubs[i].body, PAYTX_BATCH_REQUESTS, &n, NULL), 0);
		seen += n;
	}
	ck_assert_uint_eq(seen, total);
	pubs_clear();
	/* Big prepares: every batch stays under PAYTX_MESSAGE_MAX. */
	for (size_t i = 0; i < 600; i++)
		add(&o, "ledger.0", PAYTX_MSG_PREPARE, "123456789.123456789", PREP);
	ck_assert_int_eq(batch_out_send(&o), 0);
	ck_assert_uint_gt(npubs, 2);
	seen = 0;
	for (size_t i = 0; i < npubs; i++) {
		ck_assert_uint_le(pubs[i].len, PAYTX_MESSAGE_MAX);
		ck_assert_int_eq(decode(pubs[i].body, PAYTX_BATCH_REQUESTS, &n, NULL), 0);
		seen += n;
	}
	ck_assert_uint_eq(seen, 600);
	batch_out_finish(&o);
	pubs_clear();
}
END_TEST

START_TEST(test_out_forgets_after_a_failed_send)
{
	struct batch_out o;
	batch_out_init(&o, NULL, NULL);
	add(&o, "ledger.0", PAYTX_MSG_COMMIT, "1", "{\"txn\":1,\"payment_id\":\"p\"}");
	add(&o, "ledger.1", PAYTX_MSG_COMMIT, "2", "{\"txn\":2,\"payment_id\":\"p\"}");
	add(&o, "ledger.1", PAYTX_MSG_COMMIT, "3", "{\"txn\":3,\"payment_id\":\"p\"}");
	publish_fails = 1;
	ck_assert_int_eq(batch_out_send(&o), PAYTX_EBROKER);
	publish_fails = 0;
	/* The caller redoes its batch; nothing stale goes out with it. */
	add(&o, "ledger.1", PAYTX_MSG_COMMIT, "4", "{\"txn\":4,\"payment_id\":\"p\"}");
	ck_assert_int_eq(batch_out_send(&o), 0);
	ck_assert_uint_eq(npubs, 1);
	ck_assert_str_eq(pubs[0].type, "txn.commit");
	ck_assert_str_eq(pubs[0].corr, "4");
	batch_out_finish(&o);
	pubs_clear();
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_round_trip),
		UNIT_CASE(test_a_single_message_is_one_entry),
		UNIT_CASE(test_refusals_name_the_entry),
		UNIT_CASE(test_limits),
		UNIT_CASE(test_out_groups_per_destination),
		UNIT_CASE(test_out_splits_at_the_limits),
		UNIT_CASE(test_out_forgets_after_a_failed_send),
	};
	return UNIT_RUN("batch", cases, NULL, NULL);
}

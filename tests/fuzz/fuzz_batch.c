/* libFuzzer target: txn.batch bodies (message_batch.c).
 *
 * Input: one byte choosing the side, (byte - '0') % 2: 0 requests (prepare,
 * commit, abort), 1 replies (vote, ack); then the body. Whatever the body,
 * decoding must not crash or leak, and a refusal must come with a fault
 * naming where. A batch that decodes must encode, entry by entry, to a
 * batch that decodes to the same entries and encodes to the same bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paytx/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct paytx_entry first[PAYTX_BATCH_MAX], second[PAYTX_BATCH_MAX];

static void fail(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_batch: %s\n  first:  %s\n  second: %s\n", what, a ? a : "-",
		b ? b : "-");
	abort();
}

static int encode_body(const struct paytx_entry *e, struct paytx_buf *out)
{
	switch (e->type) {
	case PAYTX_MSG_PREPARE:
		return paytx_prepare_encode(&e->u.prepare, out);
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		return paytx_decision_encode(&e->u.decision, out);
	case PAYTX_MSG_VOTE:
		return paytx_vote_encode(&e->u.vote, out);
	default:
		return paytx_ack_encode(&e->u.ack, out);
	}
}

static void encode(const struct paytx_entry *v, size_t n, struct paytx_buf *out)
{
	struct paytx_buf body;
	paytx_buf_init(&body);
	if (paytx_batch_begin(out))
		fail("begin failed", NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		paytx_buf_reset(&body);
		if (encode_body(&v[i], &body) ||
		    paytx_batch_add(out, i == 0, v[i].type, v[i].correlation_id, v[i].traceparent,
				    body.data, body.len))
			fail("encoding a decoded entry failed", NULL, NULL);
	}
	if (paytx_batch_end(out))
		fail("end failed", NULL, NULL);
	paytx_buf_finish(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum paytx_batch_dir dir = (enum paytx_batch_dir)((data[0] - '0') % 2);
	const char *body = (const char *)data + 1;
	size_t len = size - 1, n = 0, n2 = 0;
	struct paytx_fault f;
	int err = paytx_entries_decode(PAYTX_MSG_BATCH, dir, body, len, NULL, NULL, first,
				       PAYTX_BATCH_MAX, &n, &f);
	if (err) {
		if (err >= 0 || f.err != err || !f.text[0] || n != 0)
			fail("a refusal without its fault", f.text, NULL);
		return 0;
	}
	struct paytx_buf a, b;
	paytx_buf_init(&a);
	paytx_buf_init(&b);
	encode(first, n, &a);
	if (paytx_entries_decode(PAYTX_MSG_BATCH, dir, a.data, a.len, NULL, NULL, second,
				 PAYTX_BATCH_MAX, &n2, &f))
		fail("re-encoded batch refused", a.data, f.text);
	if (n2 != n)
		fail("entry count changed", a.data, NULL);
	encode(second, n2, &b);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		fail("encode(decode(encode(x))) != encode(x)", a.data, b.data);
	paytx_buf_finish(&a);
	paytx_buf_finish(&b);
	return 0;
}

/* libFuzzer target: decoders and encoders of the coordinator-participant messages.
 *
 * Input: one byte choosing the message type, then the body. The byte is
 * read as (byte - '0') % 7, so seed files can start with a digit:
 * 0 prepare, 1 vote, 2 commit, 3 abort, 4 ack, 5 status, 6 outcome.
 *
 * Whatever the body, decoding must not crash or leak, and a refusal must
 * come with a loggable fault. A message that decodes must encode to a body
 * that decodes to the same struct and encodes to the same bytes:
 * encode(decode(encode(x))) == encode(x).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paytx/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum paytx_msg_type types[] = {
	PAYTX_MSG_PREPARE, PAYTX_MSG_VOTE, PAYTX_MSG_COMMIT, PAYTX_MSG_ABORT,
	PAYTX_MSG_ACK,     PAYTX_MSG_STATUS, PAYTX_MSG_OUTCOME,
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

union message {
	struct paytx_prepare prepare;
	struct paytx_vote vote;
	struct paytx_decision decision;
	struct paytx_ack ack;
	struct paytx_status_query status;
	struct paytx_outcome outcome;
};

/* A broken invariant: say which, show both sides, and crash for libFuzzer. */
static void fail(enum paytx_msg_type type, const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_protocol: %s: %s\n  first:  %s\n  second: %s\n",
		paytx_msg_type_name(type), what, a ? a : "-", b ? b : "-");
	abort();
}

/* Decode body as type into *m; the decoder zeroes *m before filling it. */
static int decode_as(enum paytx_msg_type type, const char *body, size_t len, union message *m,
		     struct paytx_fault *fault)
{
	switch (type) {
	case PAYTX_MSG_PREPARE:
		return paytx_prepare_decode(body, len, &m->prepare, fault);
	case PAYTX_MSG_VOTE:
		return paytx_vote_decode(body, len, &m->vote, fault);
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		return paytx_decision_decode(body, len, type == PAYTX_MSG_COMMIT, &m->decision,
					     fault);
	case PAYTX_MSG_ACK:
		return paytx_ack_decode(body, len, &m->ack, fault);
	case PAYTX_MSG_STATUS:
		return paytx_status_query_decode(body, len, &m->status, fault);
	case PAYTX_MSG_OUTCOME:
		return paytx_outcome_decode(body, len, &m->outcome, fault);
	default:
		abort();
	}
}

static int encode_as(enum paytx_msg_type type, const union message *m, struct paytx_buf *out)
{
	switch (type) {
	case PAYTX_MSG_PREPARE:
		return paytx_prepare_encode(&m->prepare, out);
	case PAYTX_MSG_VOTE:
		return paytx_vote_encode(&m->vote, out);
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		return paytx_decision_encode(&m->decision, out);
	case PAYTX_MSG_ACK:
		return paytx_ack_encode(&m->ack, out);
	case PAYTX_MSG_STATUS:
		return paytx_status_query_encode(&m->status, out);
	case PAYTX_MSG_OUTCOME:
		return paytx_outcome_encode(&m->outcome, out);
	default:
		abort();
	}
}

static size_t struct_size(enum paytx_msg_type type)
{
	switch (type) {
	case PAYTX_MSG_PREPARE:
		return sizeof(struct paytx_prepare);
	case PAYTX_MSG_VOTE:
		return sizeof(struct paytx_vote);
	case PAYTX_MSG_COMMIT:
	case PAYTX_MSG_ABORT:
		return sizeof(struct paytx_decision);
	case PAYTX_MSG_ACK:
		return sizeof(struct paytx_ack);
	case PAYTX_MSG_STATUS:
		return sizeof(struct paytx_status_query);
	case PAYTX_MSG_OUTCOME:
		return sizeof(struct paytx_outcome);
	default:
		abort();
	}
}

/* A refusal: the error is in the fault, whose text is printable ASCII
 * because it names positions and safe field names only. */
static void check_fault(enum paytx_msg_type type, int rc, const struct paytx_fault *fault)
{
	size_t n = strnlen(fault->text, sizeof(fault->text));

	if (rc >= 0 || rc <= PAYTX_ERR_MIN_ || fault->err != rc)
		fail(type, "decode failed with an unexpected code", paytx_errcode(rc),
		     paytx_errcode(fault->err));
	if (n == 0 || n == sizeof(fault->text))
		fail(type, "fault text empty or not terminated", NULL, NULL);
	for (size_t i = 0; i < n; i++)
		if (fault->text[i] < 0x20 || fault->text[i] > 0x7e)
			fail(type, "fault text has a byte that is not printable ASCII", fault->text,
			     NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum paytx_msg_type type;
	union message m, again;
	struct paytx_fault fault;
	struct paytx_buf enc, enc2;
	int rc;

	if (size < 1)
		return 0;
	type = types[(uint8_t)(data[0] - '0') % NTYPES];
	rc = decode_as(type, (const char *)data + 1, size - 1, &m, &fault);
	if (rc != 0) {
		check_fault(type, rc, &fault);
		return 0;
	}
	paytx_buf_init(&enc);
	paytx_buf_init(&enc2);
	if ((rc = encode_as(type, &m, &enc)) != 0)
		fail(type, "encoding a decoded message failed", paytx_errcode(rc), NULL);
	if (decode_as(type, enc.data, enc.len, &again, &fault) != 0)
		fail(type, "the encoding of a decoded message does not decode", enc.data,
		     fault.text);
	/* Decoders zero the whole struct first, padding and string tails
	 * included, so equal content means equal bytes. */
	if (memcmp(&m, &again, struct_size(type)) != 0)
		fail(type, "decoded struct changed in an encode/decode round trip", enc.data, NULL);
	if ((rc = encode_as(type, &again, &enc2)) != 0)
		fail(type, "encoding after round trip failed", paytx_errcode(rc), NULL);
	if (enc.len != enc2.len || memcmp(enc.data, enc2.data, enc.len) != 0)
		fail(type, "encoding changed in an encode/decode round trip", enc.data, enc2.data);
	paytx_buf_finish(&enc2);
	paytx_buf_finish(&enc);
	return 0;
}

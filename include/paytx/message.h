/* Messages of the paytx protocol and their JSON codec.
 *
 * The public API is the submit message (a payment) and the outcome; the
 * coordinator and participants exchange prepare, vote, commit/abort, ack and
 * status messages. Every struct here is plain data with fixed-size fields,
 * so a decoded message owns no heap memory except paytx_payment.metadata.
 *
 * Decoding is strict: size and nesting limits, UTF-8, exact types, int64
 * ranges, required fields. On failure a decoder returns a negative
 * enum paytx_err and fills a struct paytx_fault naming the field, so the
 * caller can reject and dead-letter with a precise reason.
 *
 * Encoders append to a caller-provided struct paytx_buf. All functions are
 * reentrant; no global state.
 */
#ifndef PAYTX_MESSAGE_H
#define PAYTX_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"

#define PAYTX_ID_MAX 64             /* payment_id, account, participant */
#define PAYTX_LEGS_MIN 2
#define PAYTX_LEGS_MAX 16
#define PAYTX_AMOUNT_MAX 1000000000000000LL /* 10^15 minor units */
#define PAYTX_METADATA_MAX 4096     /* bytes of serialized metadata */
#define PAYTX_MESSAGE_MAX 65536     /* bytes of any message body */
#define PAYTX_JSON_DEPTH_MAX 16
#define PAYTX_REASON_MAX 40
#define PAYTX_DETAIL_MAX 256

/* Message kinds; the AMQP "type" property carries paytx_msg_type_name(). */
enum paytx_msg_type {
	PAYTX_MSG_UNKNOWN = 0,
	PAYTX_MSG_SUBMIT,       /* "payment.submit"   client -> coordinator */
	PAYTX_MSG_PREPARE,      /* "txn.prepare"      coordinator -> participant */
	PAYTX_MSG_VOTE,         /* "txn.vote"         participant -> coordinator */
	PAYTX_MSG_COMMIT,       /* "txn.commit"       coordinator -> participant */
	PAYTX_MSG_ABORT,        /* "txn.abort"        coordinator -> participant */
	PAYTX_MSG_ACK,          /* "txn.ack"          participant -> coordinator */
	PAYTX_MSG_STATUS,       /* "txn.status"       participant -> coordinator */
	PAYTX_MSG_OUTCOME,      /* "payment.outcome"  coordinator -> client */
	PAYTX_MSG_BALANCE_QUERY,/* "balance.query"    client -> paytx-cache */
	PAYTX_MSG_BALANCE,      /* "balance.result"   paytx-cache -> client */
	PAYTX_MSG_BATCH,        /* "txn.batch"        several of prepare, commit and
				 * abort (to a participant) or vote and ack (to a
				 * coordinator) in one message: see paytx_entry */
};

enum paytx_status {
	PAYTX_STATUS_COMMITTED = 1,
	PAYTX_STATUS_ABORTED,
	PAYTX_STATUS_REJECTED,
};

/* Where decoding failed and why; text is safe to log (no metadata). */
struct paytx_fault {
	int err;                         /* enum paytx_err */
	char text[PAYTX_DETAIL_MAX];     /* e.g. "legs[1].amount: must be an integer" */
};

struct paytx_leg {
	char account[PAYTX_ID_MAX + 1];
	int64_t amount;                  /* minor units, negative = debit */
	char currency[4];                /* ISO 4217 style, 3 upper-case letters */
};

struct paytx_payment {
	char payment_id[PAYTX_ID_MAX + 1]; /* client's idempotency key */
	size_t nlegs;
	struct paytx_leg legs[PAYTX_LEGS_MAX];
	char *metadata;                  /* owned; serialized JSON object or NULL */
};

struct paytx_prepare {
	int64_t txn;
	char payment_id[PAYTX_ID_MAX + 1];
	size_t nlegs;                    /* legs for this participant only */
	struct paytx_leg legs[PAYTX_LEGS_MAX];
	int64_t deadline_ms;             /* Unix epoch ms; vote after it is useless */
};

struct paytx_vote {
	int64_t txn;
	char participant[PAYTX_ID_MAX + 1];
	bool yes;
	char reason[PAYTX_REASON_MAX];   /* "" when yes */
	char detail[PAYTX_DETAIL_MAX];
};

/* commit and abort share one shape; the message type says which. */
struct paytx_decision {
	int64_t txn;
	bool commit;
	char payment_id[PAYTX_ID_MAX + 1];
};

struct paytx_ack {
	int64_t txn;
	char participant[PAYTX_ID_MAX + 1];
	bool commit;                     /* which decision is acknowledged */
};

struct paytx_status_query {
	int64_t txn;
	char participant[PAYTX_ID_MAX + 1];
};

struct paytx_outcome {
	char payment_id[PAYTX_ID_MAX + 1];
	enum paytx_status status;
	char reason[PAYTX_REASON_MAX];   /* "" when committed */
	char detail[PAYTX_DETAIL_MAX];
	int64_t txn;                     /* 0 when rejected before a txn existed */
	int64_t submitted_ms;            /* Unix epoch ms */
	int64_t finished_ms;
};

/* One protocol message, whether it came alone (its AMQP properties give
 * correlation_id and traceparent) or as an entry of a txn.batch message,
 * whose body is
 *   {"entries": [{"type": "txn.commit", "correlation_id": "...",
 *                 "traceparent": "...", "body": {...}}, ...]}
 * with 1..PAYTX_BATCH_MAX entries, correlation_id and traceparent optional,
 * and body what the message of that type would carry alone. A batch goes
 * one way: prepare, commit and abort to a participant, or vote and ack to a
 * coordinator; it is signed, and valid or refused, as a whole. */
#define PAYTX_BATCH_MAX 256
#define PAYTX_CORR_MAX 127

struct paytx_entry {
	enum paytx_msg_type type;        /* PREPARE, COMMIT, ABORT, VOTE or ACK */
	char correlation_id[PAYTX_CORR_MAX + 1]; /* "" = none */
	char traceparent[56];            /* W3C form or "" */
	union {
		struct paytx_prepare prepare;
		struct paytx_decision decision; /* COMMIT and ABORT */
		struct paytx_vote vote;
		struct paytx_ack ack;
	} u;
};

/* Which side a batch is for. */
enum paytx_batch_dir {
	PAYTX_BATCH_REQUESTS,            /* prepare, commit, abort */
	PAYTX_BATCH_REPLIES,             /* vote, ack */
};

/* Growable byte buffer for encoders. Embedded: paytx_buf_init/finish. */
struct paytx_buf {
	char *data;                      /* owned, NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
};

void paytx_buf_init(struct paytx_buf *buf);
void paytx_buf_finish(struct paytx_buf *buf);
void paytx_buf_reset(struct paytx_buf *buf);
int paytx_buf_append(struct paytx_buf *buf, const void *data, size_t len) PAYTX_MUST_CHECK;

/* Name <-> kind for the AMQP "type" property. Unknown names give
 * PAYTX_MSG_UNKNOWN; paytx_msg_type_name never returns NULL. */
const char *paytx_msg_type_name(enum paytx_msg_type type);
enum paytx_msg_type paytx_msg_type_parse(const char *name, size_t len);
const char *paytx_status_name(enum paytx_status status);
/* Is type one of the signed protocol messages between coordinator and
 * participants (prepare, vote, commit, abort, ack, status, batch)? */
bool paytx_msg_type_protocol(enum paytx_msg_type type);

/* Is s (len bytes) a valid identifier: 1..64 of [A-Za-z0-9._:-]? */
bool paytx_id_valid(const char *s, size_t len);
/* The payment_id of a message body that may be invalid in any other way
 * (a refused submit, a dead letter): copied into out (n bytes) when the
 * body is a JSON object with a valid one, else out is "". */
void paytx_guess_payment_id(const char *body, size_t len, char *out, size_t n);
/* Is s (len bytes) a W3C traceparent: 2-32-16-2 lowercase hex digits
 * joined by '-' (55 bytes)? Anything else is not carried on. */
bool paytx_traceparent_valid(const char *s, size_t len);

/* Decoders: body is borrowed and need not be NUL-terminated. On success the
 * output struct is filled (paytx_payment.metadata is then owned by the
 * caller: release with paytx_payment_finish). On failure they return a
 * negative enum paytx_err, fill *fault and leave nothing to free. */
int paytx_payment_decode(const char *body, size_t len, struct paytx_payment *out,
			 struct paytx_fault *fault) PAYTX_MUST_CHECK;
int paytx_prepare_decode(const char *body, size_t len, struct paytx_prepare *out,
			 struct paytx_fault *fault) PAYTX_MUST_CHECK;
int paytx_vote_decode(const char *body, size_t len, struct paytx_vote *out,
		      struct paytx_fault *fault) PAYTX_MUST_CHECK;
int paytx_decision_decode(const char *body, size_t len, bool commit,
			  struct paytx_decision *out, struct paytx_fault *fault) PAYTX_MUST_CHECK;
int paytx_ack_decode(const char *body, size_t len, struct paytx_ack *out,
		     struct paytx_fault *fault) PAYTX_MUST_CHECK;
int paytx_status_query_decode(const char *body, size_t len, struct paytx_status_query *out,
			      struct paytx_fault *fault) PAYTX_MUST_CHECK;
int paytx_outcome_decode(const char *body, size_t len, struct paytx_outcome *out,
			 struct paytx_fault *fault) PAYTX_MUST_CHECK;

void paytx_payment_finish(struct paytx_payment *p);

/* The protocol messages of one delivery of AMQP type type (a single
 * message of one of dir's types, or a txn.batch) into out[0..*n), at most
 * max (>= PAYTX_BATCH_MAX, or 1 for a single message). correlation_id and
 * traceparent (NULL = none) are the delivery's properties: they become a
 * single message's entry fields; a batch's entries carry their own. A
 * type not of dir's side is PAYTX_EMSGTYPE; any invalid entry refuses the
 * whole delivery, the fault naming it ("entries[3].body.txn: ..."). */
int paytx_entries_decode(enum paytx_msg_type type, enum paytx_batch_dir dir, const char *body,
			 size_t len, const char *correlation_id, const char *traceparent,
			 struct paytx_entry *out, size_t max, size_t *n,
			 struct paytx_fault *fault) PAYTX_MUST_CHECK;

/* Building a txn.batch body: begin, add each entry (body: the JSON text an
 * encoder above produced for that type; correlation_id and traceparent may
 * be NULL or ""), end. Appends to out. */
int paytx_batch_begin(struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_batch_add(struct paytx_buf *out, bool first, enum paytx_msg_type type,
		    const char *correlation_id, const char *traceparent, const char *body,
		    size_t len) PAYTX_MUST_CHECK;
int paytx_batch_end(struct paytx_buf *out) PAYTX_MUST_CHECK;
/* The bytes paytx_batch_add appends for an entry with these fields. */
size_t paytx_batch_entry_size(const char *correlation_id, const char *traceparent, size_t len);

/* Canonical form of a payment for idempotency: legs merged per
 * (account, currency) and sorted, metadata included. Two submits are "the
 * same content" exactly when their canonical forms are equal. Appends to
 * out. The shorthand from/to form and the legs form of one transfer are the
 * same content. */
int paytx_payment_canonical(const struct paytx_payment *p, struct paytx_buf *out) PAYTX_MUST_CHECK;

/* Encoders append one JSON document to out. */
int paytx_payment_encode(const struct paytx_payment *p, struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_prepare_encode(const struct paytx_prepare *p, struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_vote_encode(const struct paytx_vote *v, struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_decision_encode(const struct paytx_decision *d, struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_ack_encode(const struct paytx_ack *a, struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_status_query_encode(const struct paytx_status_query *q, struct paytx_buf *out) PAYTX_MUST_CHECK;
int paytx_outcome_encode(const struct paytx_outcome *o, struct paytx_buf *out) PAYTX_MUST_CHECK;

#endif

/* The participant SDK: a participant is a few callbacks, nothing about AMQP.
 *
 * paytx_participant_run consumes the participant's queue on the
 * paytx.participants exchange (routing key = its name), verifies signatures,
 * decodes prepare / commit / abort, and calls the callbacks in batches:
 * batch_begin, then one callback per message, then batch_commit. Only after
 * batch_commit returns 0 are votes and acks published (with confirms) and
 * the inputs acked. If batch_commit fails, or a callback returns an error,
 * the batch is rolled back and each message is retried alone, so one bad
 * message never holds back the others.
 *
 * Callbacks must be idempotent and safe under duplicates and reordering:
 * keep a barrier keyed by txn in the same local transaction as the effect
 * (an abort that arrives before its prepare makes the later prepare vote
 * no). All callbacks run on the thread that called paytx_participant_run.
 */
#ifndef PAYTX_PARTICIPANT_H
#define PAYTX_PARTICIPANT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"

/* One message of a batch, for the optional apply callback. */
struct paytx_step {
	enum paytx_msg_type type;        /* PAYTX_MSG_PREPARE, _COMMIT or _ABORT */
	const struct paytx_prepare *prepare; /* PAYTX_MSG_PREPARE only; borrowed */
	int64_t txn;
	const char *payment_id;          /* borrowed; "" when the message had none */
	struct paytx_vote *vote;         /* PREPARE: fill as prepare() would (txn and
					  * participant are preset); borrowed */
	int result;                      /* COMMIT/ABORT: set as commit()/abort() return */
};

struct paytx_participant_ops {
	/* Start a local transaction for a batch. Optional (NULL). */
	int (*batch_begin)(void *ctx);
	/* Reserve what the legs need and fill *vote (txn and participant are
	 * preset; set yes, or reason + detail for no). Return 0 when a vote
	 * was decided, negative on an infrastructure failure. */
	int (*prepare)(void *ctx, const struct paytx_prepare *p, struct paytx_vote *vote);
	/* Apply / release txn. Return 0 (also when already done),
	 * PAYTX_EPROTO when the step is impossible (commit without a yes
	 * vote): the message is then dead-lettered, not acked as applied. */
	int (*commit)(void *ctx, int64_t txn);
	int (*abort)(void *ctx, int64_t txn);
	/* Apply every step of a batch at once, between batch_begin and
	 * batch_commit, so a participant can pipeline its database calls.
	 * The votes and results are read only after batch_commit returned 0,
	 * so apply may just queue the steps and send them with the commit
	 * (one round trip for the batch). Optional: when set it is used
	 * instead of prepare, commit and abort, which may then be NULL.
	 * Return 0 when every step is applied or queued, negative on a
	 * failure: the batch is then rolled back and retried one step at a
	 * time, as it is when a step's result is a failure other than
	 * PAYTX_EPROTO. */
	int (*apply)(void *ctx, struct paytx_step *steps, size_t n);
	/* Make the batch durable. Optional when each callback commits alone. */
	int (*batch_commit)(void *ctx);
	/* Undo an uncommitted batch. Optional. */
	void (*batch_rollback)(void *ctx);
	/* Txns this participant holds a yes vote for without a decision, older
	 * than older_than_ms (Unix epoch ms). Used to ask the coordinator for
	 * the outcome. Optional. Fills up to max txns, sets *n. */
	int (*in_doubt)(void *ctx, int64_t older_than_ms, int64_t *txns, size_t max, size_t *n);
	/* Called after a reconnect or failure so the participant can re-make
	 * its own connections (optional). */
	int (*reset)(void *ctx);
};

struct paytx_participant_config {
	const char *name;             /* queue / routing key, e.g. "ledger.0" */
	const char *amqp_url;
	const char *amqp_tls_ca;      /* NULL = no TLS CA */
	const char *amqp_tls_cert;    /* PEM client certificate for amqps, NULL = none */
	const char *amqp_tls_key;     /* its PEM private key; set both or neither */
	const char *hmac_key;         /* shared signing key (>= 16 bytes) */
	uint16_t prefetch;            /* deliveries in flight, e.g. 256 */
	size_t batch_max;             /* messages per local transaction */
	int64_t status_after_ms;      /* ask for a decision after this long in doubt */
	int64_t replay_window_s;      /* refuse protocol messages stamped further than
				       * this from now; 0 = 900 s */
	const char *queue_type;       /* of the participant's queue, as every process
				       * declares it: "classic" (NULL) or "quorum" */
};

/* Runs until *stop is set (by a signal handler). Borrowed arguments.
 * Returns 0 on a clean stop, negative on a fatal error. */
int paytx_participant_run(const struct paytx_participant_config *cfg,
			  const struct paytx_participant_ops *ops, void *ctx,
			  volatile sig_atomic_t *stop) PAYTX_MUST_CHECK;

#endif

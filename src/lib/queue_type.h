/* The RabbitMQ queue type of the shared durable queues (PAYTX_QUEUE_TYPE).
 *
 * paytx.submit, paytx.status, paytx.dead and the participant queues are
 * declared by every process at each (re)connect, classic or quorum as this
 * setting says. Private reply queues stay classic whatever it says: they are
 * non-durable and expire, which a quorum queue cannot be. A queue's type is
 * fixed when it is created, so a process configured for one type finds a
 * queue of the other refused by RabbitMQ with PRECONDITION_FAILED;
 * queue_type_refusal turns that into a message naming the setting.
 * Pure functions, callable from any thread.
 */
#ifndef PAYTX_QUEUE_TYPE_H
#define PAYTX_QUEUE_TYPE_H

#include <stdbool.h>
#include <stddef.h>

#include <amqp.h>

#include "paytx/error.h"

enum queue_type {
	QUEUE_TYPE_CLASSIC,           /* no x-queue-type argument (the default) */
	QUEUE_TYPE_QUORUM,            /* x-queue-type=quorum, replicated by Raft */
};

/* Declare arguments of a durable shared queue on top of the dead-letter
 * exchange: at most this many entries. */
#define QUEUE_TYPE_MAX_ARGS 3

/* "classic" or "quorum" into *out: 0 or PAYTX_ECONFIG. Prints nothing. */
int queue_type_parse(const char *value, enum queue_type *out) PAYTX_MUST_CHECK;
/* queue_type_parse without a result, for config_check. */
int queue_type_check(const char *value);
const char *queue_type_name(enum queue_type t);

/* Append to e (room for QUEUE_TYPE_MAX_ARGS) the arguments a durable queue
 * of type t needs; dlx says whether it dead-letters. Classic: none, so its
 * declare is what it always was. Quorum: x-queue-type, and with a DLX
 * at-least-once dead-lettering (x-dead-letter-strategy, which RabbitMQ
 * honours only with x-overflow=reject-publish). Returns how many. The
 * values are static strings. */
int queue_type_args(enum queue_type t, bool dlx, amqp_table_entry_t *e);

/* Was reply_text (len bytes, not NUL-terminated), the text of a channel
 * close refusing the declare of queue as type want, an "inequivalent arg"
 * refusal: a queue of that name created with other arguments? Then write a
 * message naming PAYTX_QUEUE_TYPE and the queue into out (outlen bytes) and
 * return true. When the argument RabbitMQ names is one that only the quorum
 * declare sets, the message says which type the queue has. */
bool queue_type_refusal(enum queue_type want, const char *queue, const char *reply_text,
			size_t len, char *out, size_t outlen);

#endif

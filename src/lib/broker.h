/* The AMQP connection of one paytx process.
 *
 * A broker holds two connections to RabbitMQ: a consumer (manual acks,
 * prefetch) and a publisher in confirm mode, so confirms never interleave
 * with deliveries. Publishes are queued with broker_publish and confirmed
 * together by broker_flush, which is how loops batch their confirms.
 *
 * On any connection failure a call returns PAYTX_EBROKER; the caller then
 * calls broker_reconnect, which retries with backoff, redeclares the
 * topology and the consumers, and returns when connected or told to stop.
 * Unacked deliveries are redelivered by RabbitMQ; unconfirmed publishes are
 * the caller's to redo. Single-threaded: one broker per thread.
 */
#ifndef PAYTX_BROKER_H
#define PAYTX_BROKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "paytx/error.h"
#include "paytx/message.h"
#include "queue_type.h"
#include "replay.h"
#include "sign.h"

#define BROKER_SUBMIT_QUEUE "paytx.submit"
/* Fanout exchange bound to the submit queue: clients may write to it but not
 * to the default exchange, which would let them into any queue. */
#define BROKER_SUBMIT_EXCHANGE "paytx.submit"
#define BROKER_PARTICIPANTS_EXCHANGE "paytx.participants"
#define BROKER_EVENTS_EXCHANGE "paytx.events"
#define BROKER_DLX "paytx.dlx"
#define BROKER_DEAD_QUEUE "paytx.dead"
#define BROKER_STATUS_QUEUE "paytx.status"
#define BROKER_MAX_CONSUMERS 8

#define BROKER_HDR_ERROR_CODE "x-paytx-error-code"
#define BROKER_HDR_ERROR_TEXT "x-paytx-error-text"
#define BROKER_HDR_ORIGIN_QUEUE "x-paytx-origin-queue"
#define BROKER_HDR_BATCH_ENTRY "x-paytx-batch-entry"
#define BROKER_HDR_TRACEPARENT "traceparent"   /* W3C trace context */

/* The settings of a broker connection, as rows of a program's
 * struct config_def table (config.h): URL, TLS CA, client cert and key. */
#define BROKER_CONFIG_DEFS                                                                \
	{ "PAYTX_AMQP_URL", "amqp-url", "amqp://guest:guest@127.0.0.1:5672",                \
	  "RabbitMQ URL (amqp:// or amqps://).", CONFIG_SECRET },                            \
	{ "PAYTX_AMQP_TLS_CA", "amqp-tls-ca", NULL,                                         \
	  "CA certificate file (PEM) for amqps; required with amqps.", 0 },                  \
	{ "PAYTX_AMQP_TLS_CERT", "amqp-tls-cert", NULL,                                     \
	  "Client certificate (PEM) to present over amqps, with PAYTX_AMQP_TLS_KEY.", 0 },   \
	{ "PAYTX_AMQP_TLS_KEY", "amqp-tls-key", NULL,                                       \
	  "Private key (PEM, unencrypted) of PAYTX_AMQP_TLS_CERT.", 0 }

/* The setting of the processes that declare the shared durable queues (the
 * daemons; paytxctl declares only its private reply queue): a row of the
 * same tables, validated by daemon_check_common. */
#define BROKER_QUEUE_TYPE_DEF                                                             \
	{ "PAYTX_QUEUE_TYPE", "queue-type", "classic",                                      \
	  "Type of the durable queues paytx.submit, paytx.status, paytx.dead and the "       \
	  "participant queues: classic or quorum (replicated, for a RabbitMQ cluster). "     \
	  "The same in every process; an existing queue of the other type is refused "       \
	  "at start-up. Reply queues stay classic.", 0 }

struct broker;

/* What a process declares at each (re)connect. RabbitMQ refuses a declare
 * without configure permission on the name, and each role's user has it
 * only for its own part of the topology (docker/rabbitmq-definitions.json). */
enum broker_role {
	BROKER_ROLE_CLIENT,           /* its reply queues only, without a DLX */
	BROKER_ROLE_PARTICIPANT,      /* paytx.dlx and its queues, left unbound */
	BROKER_ROLE_COORDINATOR,      /* all of section 2 of DESIGN.md, and binds
				       * the participant queues it sends to */
};

struct broker_config {
	const char *url;              /* amqp:// or amqps:// URL; borrowed */
	const char *tls_ca;           /* PEM CA file for amqps, NULL = none */
	const char *tls_cert;         /* PEM client certificate, NULL = none */
	const char *tls_key;          /* its PEM private key, NULL = none */
	const char *name;             /* connection name shown by RabbitMQ */
	enum broker_role role;        /* what to declare; 0 = client */
	enum queue_type queue_type;   /* of the durable shared queues; 0 = classic */
	const struct sign_key *key;   /* borrowed; signs and verifies protocol msgs */
	int64_t replay_window_s;      /* protocol messages older/newer than this are
				       * replays; 0 = REPLAY_WINDOW_DEFAULT_S */
	volatile sig_atomic_t *stop;  /* borrowed; reconnect gives up when set */
};

/* One received message; fields point into the delivery and are valid until
 * broker_msg_release. */
struct broker_msg {
	uint64_t tag;                 /* delivery tag, for broker_ack */
	enum paytx_msg_type type;
	char type_name[64];           /* as received, for dead-letter headers */
	const char *body;
	size_t len;
	char queue[128];              /* queue it came from */
	char reply_to[256];
	char correlation_id[256];
	char message_id[128];
	char traceparent[64];
	bool redelivered;
	int auth;                     /* protocol messages: 0 when signed, fresh and
				       * not seen before; else PAYTX_ESIG,
				       * PAYTX_EREPLAY or PAYTX_EINVAL */
	const char *auth_text;        /* static: why auth failed, "" when 0 */
	int64_t timestamp_s;          /* AMQP timestamp property, 0 if absent */
	amqp_envelope_t env;          /* owned */
};

struct broker_out {
	const char *exchange;         /* "" = default exchange */
	const char *routing_key;
	enum paytx_msg_type type;
	const void *body;
	size_t len;
	const char *reply_to;         /* NULL = none */
	const char *correlation_id;   /* NULL = none */
	bool persistent;              /* delivery_mode 2 */
	bool mandatory;               /* unroutable -> PAYTX_EUNROUTABLE at flush */
	bool sign;                    /* add the HMAC header */
	const char *traceparent;      /* NULL = none */
};

/* Is url a usable amqp:// or amqps:// URL? 0 or PAYTX_ECONFIG; prints
 * nothing (the URL may hold a password). */
int broker_url_check(const char *url) PAYTX_MUST_CHECK;

/* What is wrong with the CA file ca (NULL = not set) for url, as
 * "SETTING: why" (a static string; callers print "setting " before it), or
 * NULL when nothing is: amqps needs one, and it must be a readable file
 * holding a PEM certificate. Prints nothing. */
const char *broker_tls_ca_problem(const char *url, const char *ca);

/* The same for the client certificate and key (NULL = not set): both or
 * neither, each a readable file holding PEM of its kind. */
const char *broker_tls_key_problem(const char *cert, const char *key);

/* cfg and its strings are borrowed for the broker's life. Does not connect. */
struct broker *broker_create(const struct broker_config *cfg);
void broker_destroy(struct broker *b);

/* Declare the role's part of the topology (see enum broker_role) plus, when
 * given, participant queues (bound to paytx.participants by a coordinator).
 * Runs again on reconnect. */
int broker_want_participant_queue(struct broker *b, const char *name) PAYTX_MUST_CHECK;
/* Declare a private reply queue (non-durable, expiring when unused;
 * dead-lettered to paytx.dlx unless the role is client). */
int broker_want_reply_queue(struct broker *b, const char *name) PAYTX_MUST_CHECK;
/* Consume queue with the given prefetch (applies from next (re)connect). */
int broker_want_consumer(struct broker *b, const char *queue, uint16_t prefetch) PAYTX_MUST_CHECK;

/* Connect both connections, declare, start consumers. Retries with backoff
 * until connected or *stop (PAYTX_EBROKER), except when RabbitMQ refuses to
 * declare a queue because one of that name exists with other arguments
 * (e.g. of the other PAYTX_QUEUE_TYPE): that is logged, naming the setting,
 * and returned as PAYTX_ECONFIG at once, since retrying cannot cure it. */
int broker_connect(struct broker *b) PAYTX_MUST_CHECK;
int broker_reconnect(struct broker *b) PAYTX_MUST_CHECK;
bool broker_connected(const struct broker *b);
uint64_t broker_reconnects(const struct broker *b);

/* Wait up to timeout_ms (0 = only what is already buffered) for the next
 * delivery. Returns 0 with *m filled, PAYTX_ETIMEOUT, or PAYTX_EBROKER. */
int broker_next(struct broker *b, struct broker_msg *m, int timeout_ms) PAYTX_MUST_CHECK;
void broker_msg_release(struct broker_msg *m);

/* Queue a publish on the confirm channel. */
int broker_publish(struct broker *b, const struct broker_out *o) PAYTX_MUST_CHECK;
/* Wait for the confirms of every publish since the last flush. Returns 0,
 * PAYTX_EBROKER (nacked or connection lost: republish), or
 * PAYTX_EUNROUTABLE (at least one mandatory message had no queue; the
 * others were confirmed). */
int broker_flush(struct broker *b) PAYTX_MUST_CHECK;
/* Publishes queued since the last flush. */
size_t broker_pending(const struct broker *b);
/* Ack one delivery. */
int broker_ack(struct broker *b, uint64_t tag) PAYTX_MUST_CHECK;

/* Take the next message of queue without consuming it (basic.get, not
 * acked): 0 with *m filled (m->queue is queue) and *left the number of
 * messages still ready in the queue behind it, PAYTX_ENOTFOUND when no
 * message is left, PAYTX_EBROKER. The message stays invisible to others
 * until broker_ack (removes it), broker_requeue_all or the connection
 * closes (both put it back). Used by operator tools on queues nobody
 * consumes, such as paytx.dead. */
int broker_get(struct broker *b, const char *queue, struct broker_msg *m,
	       uint32_t *left) PAYTX_MUST_CHECK;
/* Put every message taken by broker_get and not acked back in its queue,
 * where it was (RabbitMQ keeps a requeued message's position). */
int broker_requeue_all(struct broker *b) PAYTX_MUST_CHECK;
/* Publish m's body and properties as they are (message_id, timestamp,
 * type, reply_to, correlation_id, signature), with its headers less those
 * whose names start with one of drop_prefixes (NULL-terminated; NULL =
 * keep all), to exchange/key, persistent and mandatory; confirmed at the
 * next broker_flush (PAYTX_EUNROUTABLE when nothing is bound). */
int broker_republish(struct broker *b, const struct broker_msg *m, const char *exchange,
		     const char *key, const char *const *drop_prefixes) PAYTX_MUST_CHECK;

/* Copy m to paytx.dlx (routing key = origin queue) with error code and text
 * headers, persistent; confirmed at the next broker_flush. The caller acks m
 * after that flush. text must not contain secrets or metadata. Counted in
 * paytx_dead_letters_total{code, queue}. */
int broker_dead_letter(struct broker *b, const struct broker_msg *m, int err,
		       const char *text) PAYTX_MUST_CHECK;

/* One protocol message of a txn.batch delivery: its index in the batch,
 * type, correlation id (NULL = none) and body (its JSON as sent alone). */
struct broker_part {
	size_t index;
	enum paytx_msg_type type;
	const char *correlation_id;
	const char *traceparent;      /* W3C, NULL or "" = none */
	const void *body;
	size_t len;
};

/* Dead-letter only part of the txn.batch m, as the message it would have
 * been alone: m's properties and headers (less the batch's signature, which
 * does not cover it) with part's type, correlation_id, traceparent and body, and
 * BROKER_HDR_BATCH_ENTRY giving its index. As broker_dead_letter otherwise. */
int broker_dead_letter_part(struct broker *b, const struct broker_msg *m,
			    const struct broker_part *part, int err,
			    const char *text) PAYTX_MUST_CHECK;

#endif

/* The coordinator: consumes submits, drives two-phase commit over the
 * participants, logs decisions in PostgreSQL before sending them, and
 * publishes outcomes once every participant acknowledged.
 *
 * One loop iteration: collect a batch of deliveries (submits, votes, acks,
 * status queries), feed them to the per-transaction state machines, write
 * every resulting log change in one PostgreSQL transaction, publish the
 * resulting messages, wait for their confirms together, then ack the
 * inputs. Created and run from one thread; coordinator_run returns when
 * *stop is set.
 */
#ifndef PAYTX_COORDINATOR_H
#define PAYTX_COORDINATOR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"
#include "queue_type.h"
#include "shard.h"

struct coordinator_config {
	const char *id;               /* unique per running coordinator; lease owner */
	const char *amqp_url;
	const char *amqp_tls_ca;      /* NULL = none */
	const char *amqp_tls_cert;    /* client certificate, NULL = none */
	const char *amqp_tls_key;     /* its private key, NULL = none */
	const char *pg_dsn;
	const char *hmac_key;
	struct shardmap shards;       /* ledger shards, in placement order */
	struct shardmap extra;        /* participants that see every payment */
	int64_t prepare_timeout_ms;
	int64_t lease_ms;
	uint16_t prefetch;
	size_t batch_max;
	int64_t replay_window_s;      /* see struct broker_config */
	enum queue_type queue_type;   /* PAYTX_QUEUE_TYPE: of the durable queues */
};

struct coordinator;

/* cfg is copied; stop is borrowed. NULL on failure (logged). */
struct coordinator *coordinator_create(const struct coordinator_config *cfg,
				       volatile sig_atomic_t *stop);
void coordinator_destroy(struct coordinator *c);
/* Connect, recover, loop until *stop. 0 on a clean stop. */
int coordinator_run(struct coordinator *c) PAYTX_MUST_CHECK;

#endif

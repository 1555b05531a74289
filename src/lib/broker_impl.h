/* Private to the broker module (broker.c, broker_publish.c): the struct
 * both halves work on. Not for other modules: they use broker.h. */
#ifndef PAYTX_BROKER_IMPL_H
#define PAYTX_BROKER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "broker.h"
#include "replay.h"

#define BROKER_MAX_QUEUES 32
#define BROKER_CONFIRM_TIMEOUT_S 30
#define BROKER_REPLY_EXPIRES_MS 600000
#define CHANNEL 1

struct broker_consumer {
	char queue[128];
	uint16_t prefetch;
	char tag[128];               /* consumer tag given by the broker */
};

struct broker {
	struct broker_config cfg;
	char *url_buf;               /* owned copy that amqp_parse_url splits */
	struct amqp_connection_info info;
	amqp_connection_state_t cons; /* consumer connection, NULL when down */
	amqp_connection_state_t pub;  /* publisher connection in confirm mode */
	char part_queues[BROKER_MAX_QUEUES][PAYTX_ID_MAX + 1];
	size_t npart;
	char reply_queues[BROKER_MAX_QUEUES][128];
	size_t nreply;
	struct broker_consumer consumers[BROKER_MAX_CONSUMERS];
	size_t ncons;
	/* confirm window since the last flush */
	uint64_t window_base;        /* delivery tag of the first publish in it */
	size_t window_len;
	size_t window_cap;
	unsigned char *window_acked; /* 0 pending, 1 acked, 2 nacked */
	bool window_returned;
	uint64_t pub_seq;            /* tags published on the current channel */
	uint64_t msg_counter;
	char id_prefix[40];
	uint64_t reconnects;
	bool connected;
	struct replay_guard replay;  /* of the protocol messages consumed */
};

/* Fill m's fields from m->env (a delivery or a basic.get); protocol
 * messages are authenticated as consumed ones are. */
void broker_fill_msg(struct broker *b, struct broker_msg *m);

/* Mark the broker disconnected; returns PAYTX_EBROKER. */
int broker_failed(struct broker *b);

#endif

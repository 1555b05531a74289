/* The coordinator's state, shared by its loop (coordinator.c), its input
 * side (inbox.c) and its recovery (recovery.c). Private to the
 * coordinator; one thread. */
#ifndef PAYTX_COORDINATOR_STATE_H
#define PAYTX_COORDINATOR_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"
#include "broker.h"
#include "coordinator.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "peers.h"
#include "sign.h"
#include "loopstat.h"
#include "txlog.h"
#include "txn.h"
#include "txtable.h"

#define SCAN_INTERVAL_MS 100

enum in_kind { IN_SUBMIT, IN_REPLIES, IN_STATUS, IN_REJECT };

struct in_item {
	struct broker_msg msg;
	enum in_kind kind;
	int err;                        /* IN_REJECT: why */
	char text[PAYTX_DETAIL_MAX];
	struct paytx_payment pay;       /* IN_SUBMIT (metadata owned) */
	struct paytx_status_query query;/* IN_STATUS */
	enum txlog_insert ins;          /* IN_SUBMIT result */
	int64_t txn;
	struct txlog_row row;
	bool decided;                   /* IN_STATUS result */
	bool commit;
	char payment_id[PAYTX_ID_MAX + 1];
};

struct idlist {
	int64_t *v;
	size_t n, cap;
};

struct coordinator {
	struct coordinator_config cfg;
	volatile sig_atomic_t *stop;
	char reply_queue[192];
	struct sign_key key;
	struct broker *broker;
	struct outbox outbox;
	struct txlog log;
	struct txtable table;
	struct in_item *items;
	size_t nitems;
	struct paytx_entry *entries;    /* a delivery's votes and acks, PAYTX_BATCH_MAX */
	struct idlist decide;           /* decision chosen: log it */
	struct idlist done;             /* all acked: finish, publish outcome */
	struct idlist sent;             /* outcome confirmed: mark it sent */
	struct idlist kick;             /* send requests now */
	struct idlist early;            /* abort outcome published before the acks */
	struct txlog_row *done_rows;    /* parallel to done */
	size_t done_rows_cap;
	struct txlog_row *decide_rows;  /* parallel to decide */
	size_t decide_rows_cap;
	int64_t next_scan_ms, next_renew_ms, next_adopt_ms;
	struct loopstat stats;          /* where the loop's time goes */
	int64_t reply_ms;               /* moving average: request to vote or ack */
	struct peers peers;             /* participants' progress, for re-sends */
	char extra_list[256];           /* cfg.extra, comma-separated, for the log */
	bool redeclare;                 /* a request was unroutable: reconnect */
	struct metrics_batch metrics;   /* this iteration's updates, flushed at its end */
};

/* The first re-send of a transaction's requests waits this many replies'
 * time (never less than TXN_RESEND_MIN_MS): under a backlog replies are
 * slow because queues are long, and re-sending then only lengthens them. */
#define RESEND_REPLIES 4

/* Fold one reply's delay (ms) into c->reply_ms. */
static inline void reply_sample(struct coordinator *c, int64_t ms)
{
	c->reply_ms += (ms - c->reply_ms) / 8;
}

/* participant answered a request of t's (a vote or an ack) that carried
 * corr: note its progress; sample the delay of an answer to the current
 * phase's latest request. */
static inline void reply_from(struct coordinator *c, struct txn *t, const char *participant,
			      const char *corr, bool this_phase, int64_t now)
{
	uint64_t seq = peers_corr_seq(&c->peers, corr);
	struct peer *peer = seq ? peers_get(&c->peers, participant) : NULL;
	if (!peer)
		return;
	peers_answered(peer, seq);
	struct txn_part *part = t ? txn_part_find(t, participant) : NULL;
	if (this_phase && part && part->seq == seq)
		reply_sample(c, now - part->sent_ms);
}

/* The first re-send delay for a transaction's requests sent now. */
static inline int64_t resend_first_ms(const struct coordinator *c)
{
	int64_t ms = RESEND_REPLIES * c->reply_ms;
	return ms < TXN_RESEND_MIN_MS ? TXN_RESEND_MIN_MS
	       : ms > TXN_RESEND_MAX_MS / 2 ? TXN_RESEND_MAX_MS / 2 : ms;
}

/* Growable list of txn ids. */
static inline int idlist_push(struct idlist *l, int64_t id)
{
	int64_t *v = paytx_grow(l->v, &l->cap, l->n, sizeof(*v), 64);
	if (!v)
		return PAYTX_ENOMEM;
	l->v = v;
	l->v[l->n++] = id;
	return 0;
}

/* inbox.c: take a batch of deliveries and decode them; votes and acks are
 * fed to their transactions at once. */
void inbox_collect(struct coordinator *c);
void inbox_release(struct coordinator *c);
/* Mark an input refused: it is answered and dead-lettered with err/text. */
int inbox_reject(struct in_item *it, int err, const char *text);

/* recovery.c: renew this coordinator's leases and adopt payments whose
 * lease expired (at start-up also the ones it held before a restart). */
void recovery_leases(struct coordinator *c, bool startup);

#endif

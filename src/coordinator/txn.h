/* One distributed transaction as the coordinator sees it: a pure state
 * machine with no I/O, so every transition can be unit tested.
 *
 *   PREPARING --all yes--> (decide commit) --logged--> COMMITTING --all acks--> COMMITTED
 *   PREPARING --a no / deadline--> (decide abort) --logged--> ABORTING --all acks--> ABORTED
 *
 * "Deciding" is the gap between choosing a decision and its being durable
 * in the log: nothing is sent to participants in that gap. Requests that
 * were not answered (prepares without votes, decisions without acks) are
 * re-sent with exponential backoff. A struct txn is plain data owned by the
 * coordinator's table; the coordinator's thread only.
 */
#ifndef PAYTX_TXN_H
#define PAYTX_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "paytx/message.h"
#include "shard.h"

#define TXN_PARTS_MAX (PAYTX_LEGS_MAX + 8)
#define TXN_RESEND_MIN_MS 500
#define TXN_RESEND_MAX_MS 10000

enum txn_state { TXN_PREPARING, TXN_COMMITTING, TXN_ABORTING, TXN_COMMITTED, TXN_ABORTED };
enum txn_vote { TXN_VOTE_NONE, TXN_VOTE_YES, TXN_VOTE_NO };

/* What the coordinator must do after feeding an event. */
enum txn_step {
	TXN_STEP_NONE,    /* nothing new */
	TXN_STEP_DECIDE,  /* log the chosen decision (t->commit, t->reason) */
	TXN_STEP_DONE,    /* every participant acked: publish the outcome */
};

struct txn_part {
	char name[PAYTX_ID_MAX + 1];
	uint32_t legs;              /* bit i set: txn legs[i] is this participant's */
	enum txn_vote vote;
	bool acked;
	uint64_t seq;               /* peers.h number of the last request sent */
	int64_t sent_ms;            /* monotonic; when that request went out */
};

struct txn {
	int64_t id;
	char payment_id[PAYTX_ID_MAX + 1];
	char traceparent[64];       /* the submit's, "" if none */
	enum txn_state state;
	bool deciding;              /* decision chosen, not yet durable */
	bool commit;                /* the decision, once deciding or decided */
	char reason[PAYTX_REASON_MAX];
	char detail[PAYTX_DETAIL_MAX];
	size_t nlegs;
	struct paytx_leg legs[PAYTX_LEGS_MAX];
	size_t nparts;
	struct txn_part parts[TXN_PARTS_MAX];
	int64_t deadline_ms;        /* wall clock; prepare votes due by then */
	int64_t next_send_ms;       /* monotonic; when to re-send requests */
	int64_t backoff_ms;         /* wait before the next re-send; the coordinator
				     * may raise the first one (see coordinator.c) */
	int64_t submitted_ms;       /* wall clock */
	int64_t started_ms;         /* monotonic; when this coordinator took it on */
	int64_t decided_ms;         /* monotonic; when its decision became durable */
};

/* Split p's legs over the shards (extra participants, e.g. "risk", see
 * every leg). Returns 0, or PAYTX_EINVAL when there are too many parts. */
int txn_init(struct txn *t, int64_t id, const struct paytx_payment *p,
	     const struct shardmap *shards, const struct shardmap *extra, int64_t now_wall_ms,
	     int64_t now_mono_ms, int64_t prepare_timeout_ms) PAYTX_MUST_CHECK;

struct txn_part *txn_part_find(struct txn *t, const char *name);
enum txn_step txn_on_vote(struct txn *t, const struct paytx_vote *v);
enum txn_step txn_on_ack(struct txn *t, const struct paytx_ack *a);
/* Deadline check: may choose abort with reason "timeout". */
enum txn_step txn_on_timer(struct txn *t, int64_t now_wall_ms);
/* The decision is durable: start sending it now. commit is the logged one,
 * which wins over what this coordinator chose (another may have decided). */
void txn_decided(struct txn *t, bool commit, int64_t now_mono_ms);
/* Choose a decision directly (recovery / presumed abort). */
enum txn_step txn_decide(struct txn *t, bool commit, const char *reason, const char *detail);
/* True when requests are due for re-sending; schedules the next time. */
bool txn_resend_due(struct txn *t, int64_t now_mono_ms);
/* Is t in doubt: a participant holds a yes vote and has no decision yet
 * (prepared, undecided), or the decision is not acked by every one? */
bool txn_in_doubt(const struct txn *t);
/* Should part get a (re-)send now? prepare: no vote yet; decision: no ack. */
bool txn_part_waiting(const struct txn *t, const struct txn_part *part);
const char *txn_state_name(enum txn_state s);
/* Fill the prepare message for part. */
void txn_prepare_for(const struct txn *t, const struct txn_part *part, struct paytx_prepare *out);

#endif

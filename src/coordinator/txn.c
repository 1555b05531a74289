/* The coordinator's per-transaction two-phase-commit state machine. */
#include "txn.h"

#include <stdio.h>
#include <string.h>

static struct txn_part *part_get(struct txn *t, const char *name)
{
	struct txn_part *part = txn_part_find(t, name);
	if (part || t->nparts == TXN_PARTS_MAX)
		return part;
	part = &t->parts[t->nparts++];
	memset(part, 0, sizeof(*part));
	snprintf(part->name, sizeof(part->name), "%s", name);
	return part;
}

static void set_reason(struct txn *t, const char *reason, const char *detail)
{
	snprintf(t->reason, sizeof(t->reason), "%s", reason ? reason : "");
	snprintf(t->detail, sizeof(t->detail), "%s", detail ? detail : "");
}

int txn_init(struct txn *t, int64_t id, const struct paytx_payment *p,
	     const struct shardmap *shards, const struct shardmap *extra, int64_t now_wall_ms,
	     int64_t now_mono_ms, int64_t prepare_timeout_ms)
{
	memset(t, 0, sizeof(*t));
	t->id = id;
	snprintf(t->payment_id, sizeof(t->payment_id), "%s", p->payment_id);
	t->state = TXN_PREPARING;
	t->submitted_ms = now_wall_ms;
	t->deadline_ms = now_wall_ms + prepare_timeout_ms;
	t->backoff_ms = TXN_RESEND_MIN_MS;
	t->next_send_ms = now_mono_ms; /* send prepares at once */
	t->started_ms = now_mono_ms;
	t->nlegs = p->nlegs;
	memcpy(t->legs, p->legs, p->nlegs * sizeof(p->legs[0]));
	for (size_t i = 0; i < p->nlegs; i++) {
		const char *name = shards->names[shardmap_index(shards, p->legs[i].account)];
		struct txn_part *part = part_get(t, name);
		if (!part)
			return PAYTX_EINVAL;
		part->legs |= 1u << i;
	}
	for (size_t e = 0; extra && e < extra->n; e++) {
		struct txn_part *part = part_get(t, extra->names[e]);
		if (!part)
			return PAYTX_EINVAL;
		part->legs = (1u << p->nlegs) - 1;
	}
	return 0;
}

struct txn_part *txn_part_find(struct txn *t, const char *name)
{
	for (size_t i = 0; i < t->nparts; i++)
		if (strcmp(t->parts[i].name, name) == 0)
			return &t->parts[i];
	return NULL;
}

enum txn_step txn_decide(struct txn *t, bool commit, const char *reason, const char *detail)
{
	if (t->state != TXN_PREPARING || t->deciding)
		return TXN_STEP_NONE;
	t->deciding = true;
	t->commit = commit;
	set_reason(t, commit ? "" : reason, commit ? "" : detail);
	return TXN_STEP_DECIDE;
}

enum txn_step txn_on_vote(struct txn *t, const struct paytx_vote *v)
{
	struct txn_part *part = txn_part_find(t, v->participant);
	if (!part || t->state != TXN_PREPARING || t->deciding || v->txn != t->id)
		return TXN_STEP_NONE; /* late, duplicate or foreign: harmless */
	if (part->vote != TXN_VOTE_NONE)
		return TXN_STEP_NONE;
	part->vote = v->yes ? TXN_VOTE_YES : TXN_VOTE_NO;
	if (!v->yes)
		return txn_decide(t, false, v->reason[0] ? v->reason : "refused", v->detail);
	for (size_t i = 0; i < t->nparts; i++)
		if (t->parts[i].vote != TXN_VOTE_YES)
			return TXN_STEP_NONE;
	return txn_decide(t, true, NULL, NULL);
}

enum txn_step txn_on_ack(struct txn *t, const struct paytx_ack *a)
{
	struct txn_part *part = txn_part_find(t, a->participant);
	bool deciding = t->state == TXN_COMMITTING || t->state == TXN_ABORTING;
	if (!part || !deciding || a->txn != t->id || a->commit != t->commit || part->acked)
		return TXN_STEP_NONE;
	part->acked = true;
	for (size_t i = 0; i < t->nparts; i++)
		if (!t->parts[i].acked)
			return TXN_STEP_NONE;
	t->state = t->commit ? TXN_COMMITTED : TXN_ABORTED;
	return TXN_STEP_DONE;
}

enum txn_step txn_on_timer(struct txn *t, int64_t now_wall_ms)
{
	if (t->state != TXN_PREPARING || t->deciding || now_wall_ms < t->deadline_ms)
		return TXN_STEP_NONE;
	char detail[PAYTX_DETAIL_MAX];
	size_t off = (size_t)snprintf(detail, sizeof(detail), "no vote before the deadline from");
	for (size_t i = 0; i < t->nparts && off < sizeof(detail); i++)
		if (t->parts[i].vote == TXN_VOTE_NONE)
			off += (size_t)snprintf(detail + off, sizeof(detail) - off, " %s",
						t->parts[i].name);
	return txn_decide(t, false, "timeout", detail);
}

void txn_decided(struct txn *t, bool commit, int64_t now_mono_ms)
{
	if (t->deciding && commit != t->commit)
		set_reason(t, commit ? "" : "decided_elsewhere",
			   commit ? "" : "another coordinator logged abort first");
	t->deciding = false;
	t->commit = commit;
	t->state = commit ? TXN_COMMITTING : TXN_ABORTING;
	t->backoff_ms = TXN_RESEND_MIN_MS;
	t->next_send_ms = now_mono_ms;
	t->decided_ms = now_mono_ms;
	for (size_t i = 0; i < t->nparts; i++)
		t->parts[i].acked = false;
}

bool txn_in_doubt(const struct txn *t)
{
	if (t->state == TXN_COMMITTING || t->state == TXN_ABORTING)
		return true;
	for (size_t i = 0; t->state == TXN_PREPARING && i < t->nparts; i++)
		if (t->parts[i].vote == TXN_VOTE_YES)
			return true;
	return false;
}

bool txn_resend_due(struct txn *t, int64_t now_mono_ms)
{
	if (t->deciding || t->state == TXN_COMMITTED || t->state == TXN_ABORTED ||
	    now_mono_ms < t->next_send_ms)
		return false;
	t->next_send_ms = now_mono_ms + t->backoff_ms;
	t->backoff_ms = t->backoff_ms * 2 > TXN_RESEND_MAX_MS ? TXN_RESEND_MAX_MS
							       : t->backoff_ms * 2;
	return true;
}

bool txn_part_waiting(const struct txn *t, const struct txn_part *part)
{
	if (t->state == TXN_PREPARING)
		return !t->deciding && part->vote == TXN_VOTE_NONE;
	if (t->state == TXN_COMMITTING || t->state == TXN_ABORTING)
		return !part->acked;
	return false;
}

const char *txn_state_name(enum txn_state s)
{
	static const char *const names[] = { "preparing", "committing", "aborting", "committed",
					     "aborted" };
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

void txn_prepare_for(const struct txn *t, const struct txn_part *part, struct paytx_prepare *out)
{
	memset(out, 0, sizeof(*out));
	out->txn = t->id;
	snprintf(out->payment_id, sizeof(out->payment_id), "%s", t->payment_id);
	out->deadline_ms = t->deadline_ms;
	for (size_t i = 0; i < t->nlegs; i++)
		if (part->legs & (1u << i))
			out->legs[out->nlegs++] = t->legs[i];
}

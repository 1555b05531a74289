/* The coordinator's recovery: leases, and adopting payments left behind. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "coordinator_state.h"

static int adopt_row(void *arg, struct txlog_row *row)
{
	struct coordinator *c = arg;
	struct paytx_payment p;
	struct paytx_fault f;
	if (txtable_get(&c->table, row->txn))
		return 0;
	if (paytx_payment_decode(row->request, strlen(row->request), &p, &f) != 0) {
		log_txn(LOG_ERROR, row->payment_id, row->txn, "stored request unreadable: %s",
			f.text);
		return 0;
	}
	/* The participants it was prepared on, not today's configuration
	 * (rows from before schema 2 do not say). */
	struct shardmap extra = { 0 };
	if (row->extra_known && row->extra[0] && shardmap_parse(&extra, row->extra) != 0) {
		log_txn(LOG_ERROR, row->payment_id, row->txn, "stored participants unreadable");
		paytx_payment_finish(&p);
		return 0;
	}
	struct txn *t = malloc(sizeof(*t));
	int err = t ? txn_init(t, row->txn, &p, &c->cfg.shards,
			       row->extra_known ? &extra : &c->cfg.extra,
			       row->submitted_ms, clock_mono_ms(), c->cfg.prepare_timeout_ms)
		    : PAYTX_ENOMEM;
	paytx_payment_finish(&p);
	if (!err)
		err = txtable_put(&c->table, t);
	if (err) {
		free(t);
		return err;
	}
	snprintf(t->reason, sizeof(t->reason), "%s", row->reason);
	snprintf(t->traceparent, sizeof(t->traceparent), "%s", row->traceparent);
	snprintf(t->detail, sizeof(t->detail), "%s", row->detail);
	log_txn(LOG_INFO, row->payment_id, row->txn, "adopted in state %s", row->state);
	if (strcmp(row->state, "preparing") == 0) {
		/* Presumed abort: no decision was logged. */
		(void)txn_decide(t, false, "coordinator_recovery",
				 "coordinator failed before all votes arrived");
		return idlist_push(&c->decide, t->id);
	}
	bool commit = strcmp(row->state, "committing") == 0 || strcmp(row->state, "committed") == 0;
	txn_decided(t, commit, clock_mono_ms());
	if (strcmp(row->state, "committed") == 0 || strcmp(row->state, "aborted") == 0) {
		t->state = commit ? TXN_COMMITTED : TXN_ABORTED;
		return idlist_push(&c->done, t->id);
	}
	return idlist_push(&c->kick, t->id);
}

void recovery_leases(struct coordinator *c, bool startup)
{
	int64_t now = clock_mono_ms();
	if (startup || now >= c->next_renew_ms) {
		c->next_renew_ms = now + c->cfg.lease_ms / 3;
		if (txlog_renew(&c->log) != 0) {
			log_warn("lease renewal failed");
			txlog_heal(&c->log); /* an idle loop has nothing else to do it */
		}
	}
	if (startup || now >= c->next_adopt_ms) {
		c->next_adopt_ms = now + c->cfg.lease_ms / 2;
		if (txlog_adopt(&c->log, startup, adopt_row, c) != 0) {
			log_warn("adopting expired transactions failed");
			txlog_heal(&c->log);
		}
	}
}

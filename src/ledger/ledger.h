/* The double-entry ledger of one shard (one PostgreSQL database).
 *
 * Tables (sql/ledger.sql): accounts, entries (append-only journal),
 * barrier (whose yes-vote rows carry the reservation's legs; the view
 * open_holds lists the undecided ones). This module implements the
 * participant callbacks of paytx/participant.h over them:
 *   prepare  = in the batch's local transaction, check each account
 *              (exists, currency, funds net of held amounts unless external)
 *              and record a barrier row with the legs, raising the debited
 *              accounts' held; vote yes or no with a reason
 *              (unknown_account, currency_mismatch, insufficient_funds,
 *              account_closed).
 *   commit   = post the legs: one immutable entries row per account leg,
 *              balances updated; barrier committed.
 *   abort    = release the held amounts; barrier aborted. An abort that arrives
 *              before its prepare records an aborted barrier so the late
 *              prepare votes no.
 * All steps are idempotent by txn. Account management (create, balance,
 * journal) is here too, for paytxctl and tests.
 *
 * The participant plumbing (batches, the pipelined steps, in-doubt scans,
 * reconnects) is pgpart's; this module adds the SQL and the accounts.
 * A struct ledger owns one PGconn; single-threaded.
 */
#ifndef PAYTX_LEDGER_H
#define PAYTX_LEDGER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/message.h"
#include "paytx/participant.h"
#include "pgpart.h"

struct ledger {
	struct pgpart pg;      /* first: ledger_ops take a struct ledger * as its pgpart */
};

struct ledger_account {
	char id[PAYTX_ID_MAX + 1];
	char currency[4];
	int64_t balance;       /* minor units, posted */
	int64_t held;          /* minor units reserved by pending debits (>= 0) */
	bool external;         /* may go negative */
	int64_t version;       /* bumped by every posting */
};

/* conn is taken over; participant is copied. */
int ledger_init(struct ledger *l, PGconn *conn, const char *participant) PAYTX_MUST_CHECK;
void ledger_finish(struct ledger *l);

/* The participant callbacks; ctx is a struct ledger *. */
extern const struct paytx_participant_ops ledger_ops;

/* Account management, each in its own transaction. create is idempotent
 * when the account exists with the same currency and flags, PAYTX_ECONFLICT
 * otherwise. */
int ledger_account_create(struct ledger *l, const char *id, const char *currency,
			  bool external) PAYTX_MUST_CHECK;
int ledger_account_get(struct ledger *l, const char *id,
		       struct ledger_account *out) PAYTX_MUST_CHECK; /* PAYTX_ENOTFOUND */

#endif

/* Payment limits as a two-phase-commit participant (paytx-risk).
 *
 * Tables (sql/risk.sql): limits (per account and currency, plus the
 * default row for every account without its own), daily_usage (committed
 * and reserved debits per account, currency and UTC day), reservations
 * (per txn) and the barrier. The coordinator sends this participant every
 * leg of every payment (PAYTX_PARTICIPANTS). Its callbacks:
 *   prepare  = in the batch's local transaction, for each account the
 *              payment debits: check the per-payment cap and the daily
 *              total (committed + reserved + this debit), then reserve the
 *              debit; vote no with limit_exceeded and a detail naming the
 *              account, the limit and the amounts.
 *   commit   = the reservations count as used; abort = released. An abort
 *              before its prepare makes the late prepare vote no.
 * All steps are idempotent by txn. Limit management (set, show, remove)
 * is here too, for paytxctl and tests; it runs as the schema's owner.
 *
 * A struct risk owns one PGconn; single-threaded.
 */
#ifndef PAYTX_RISK_H
#define PAYTX_RISK_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "paytx/error.h"
#include "paytx/participant.h"
#include "pgpart.h"

#define RISK_NO_LIMIT (-1)          /* a limit that is not set */
#define RISK_DEFAULT_ACCOUNT "*"    /* the limits row for all other accounts */

struct risk {
	struct pgpart pg;        /* first: risk_ops take a struct risk * as its pgpart */
};

/* The limit that applies to (account, currency) and today's usage. */
struct risk_limit {
	char account[PAYTX_ID_MAX + 1]; /* whose row applies: the account or "*" */
	char currency[4];
	bool found;                     /* false: no row applies, nothing is limited */
	int64_t per_payment;            /* minor units, or RISK_NO_LIMIT */
	int64_t daily;                  /* minor units per UTC day, or RISK_NO_LIMIT */
	char day[16];                   /* today, UTC, YYYY-MM-DD */
	int64_t committed;              /* the account's debits today, committed */
	int64_t reserved;               /* prepared, not decided yet */
};

/* conn is taken over; participant is copied. */
int risk_init(struct risk *r, PGconn *conn, const char *participant) PAYTX_MUST_CHECK;
void risk_finish(struct risk *r);

/* The participant callbacks; ctx is a struct risk *. */
extern const struct paytx_participant_ops risk_ops;

/* account is an account id or RISK_DEFAULT_ACCOUNT; each call is its own
 * transaction. set creates or replaces the row (RISK_NO_LIMIT for a limit
 * not set); remove returns PAYTX_ENOTFOUND when there was none. */
int risk_limit_set(struct risk *r, const char *account, const char *currency,
		   int64_t per_payment, int64_t daily) PAYTX_MUST_CHECK;
int risk_limit_remove(struct risk *r, const char *account,
		      const char *currency) PAYTX_MUST_CHECK;
/* Fills out (out->found false when no row applies). */
int risk_limit_get(struct risk *r, const char *account, const char *currency,
		   struct risk_limit *out) PAYTX_MUST_CHECK;

#endif

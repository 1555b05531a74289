/* paytxctl limit: set, show and remove the risk participant's limits. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "risk.h"

static const char limit_usage[] =
	"usage: paytxctl limit set ACCOUNT|default CURRENCY [--per-payment N|none] "
	"[--daily N|none]\n"
	"       paytxctl limit show ACCOUNT|default CURRENCY\n"
	"       paytxctl limit remove ACCOUNT|default CURRENCY\n";

bool ctl_take_option(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *arg = argv[*i];
	size_t len = strlen(name);
	if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, len) != 0)
		return false;
	if (arg[2 + len] == '=') {
		*value = arg + 3 + len;
		return true;
	}
	if (arg[2 + len] != '\0')
		return false;
	*value = *i + 1 < argc ? argv[++*i] : "";
	return true;
}

/* A limit option: absent or "none" = RISK_NO_LIMIT, else 0..10^15. */
static int parse_limit(const char *opt, const char *s, int64_t *out)
{
	*out = RISK_NO_LIMIT;
	if (!s || strcmp(s, "none") == 0)
		return 0;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > PAYTX_AMOUNT_MAX) {
		fprintf(stderr, "paytxctl: --%s: an amount in minor units, 0..%lld, or none\n",
			opt, (long long)PAYTX_AMOUNT_MAX);
		return CTL_USAGE;
	}
	*out = v;
	return 0;
}

static void print_amount(bool json, int64_t v)
{
	if (v == RISK_NO_LIMIT)
		printf(json ? "null" : "none");
	else
		printf("%" PRId64, v);
}

static void print_limit(const struct ctl *c, const char *account, const struct risk_limit *l)
{
	const char *whose = !l->found ? "none"
			    : strcmp(l->account, RISK_DEFAULT_ACCOUNT) == 0 ? "default" : "account";
	if (c->json) {
		printf("{\"account\":\"%s\",\"currency\":\"%s\",\"limit\":\"%s\",\"per_payment\":",
		       account, l->currency, whose);
		print_amount(true, l->found ? l->per_payment : RISK_NO_LIMIT);
		printf(",\"daily\":");
		print_amount(true, l->found ? l->daily : RISK_NO_LIMIT);
		printf(",\"day\":\"%s\",\"committed\":%" PRId64 ",\"reserved\":%" PRId64 "}\n",
		       l->day, l->committed, l->reserved);
		return;
	}
	printf("%s %s: ", account, l->currency);
	if (!l->found) {
		printf("no limit");
	} else {
		printf("per-payment ");
		print_amount(false, l->per_payment);
		printf(", daily ");
		print_amount(false, l->daily);
		printf(" (%s)", strcmp(whose, "default") == 0 ? "the default" : "its own");
	}
	printf("; %s UTC: %" PRId64 " committed, %" PRId64 " reserved\n", l->day, l->committed,
	       l->reserved);
}

static int limit_run(struct ctl *c, struct risk *r, const char *sub, const char *account,
		     const char *currency)
{
	if (strcmp(sub, "set") == 0) {
		int64_t per_payment, daily;
		if (parse_limit("per-payment", c->per_payment, &per_payment) ||
		    parse_limit("daily", c->daily, &daily))
			return CTL_USAGE;
		if (risk_limit_set(r, account, currency, per_payment, daily) != 0)
			return CTL_FAILED;
	} else if (strcmp(sub, "remove") == 0) {
		int err = risk_limit_remove(r, account, currency);
		if (err == PAYTX_ENOTFOUND) {
			fprintf(stderr, "paytxctl: no limit of %s in %s\n", c->argv[1], currency);
			return CTL_NOT_FOUND;
		}
		if (err)
			return CTL_FAILED;
		if (!c->json) {
			printf("limit of %s in %s removed\n", c->argv[1], currency);
			return CTL_OK;
		}
	}
	struct risk_limit l;
	if (risk_limit_get(r, account, currency, &l) != 0)
		return CTL_FAILED;
	print_limit(c, strcmp(account, RISK_DEFAULT_ACCOUNT) == 0 ? "default" : account, &l);
	return CTL_OK;
}

int ctl_limit(struct ctl *c)
{
	if (c->argc != 3 || (strcmp(c->argv[0], "set") != 0 && strcmp(c->argv[0], "show") != 0 &&
			     strcmp(c->argv[0], "remove") != 0) ||
	    ((c->per_payment || c->daily) && strcmp(c->argv[0], "set") != 0)) {
		fprintf(stderr, "%s", limit_usage);
		return CTL_USAGE;
	}
	bool is_default = strcmp(c->argv[1], "default") == 0;
	const char *account = is_default ? RISK_DEFAULT_ACCOUNT : c->argv[1];
	const char *currency = c->argv[2];
	bool cur_ok = strlen(currency) == 3;
	for (size_t i = 0; cur_ok && i < 3; i++)
		cur_ok = currency[i] >= 'A' && currency[i] <= 'Z';
	if ((!is_default && !paytx_id_valid(account, strlen(account))) ||
	    !cur_ok) {
		fprintf(stderr, "paytxctl: account ids are 1-64 of [A-Za-z0-9._:-] (or default); "
			"currencies 3 capital letters\n");
		return CTL_USAGE;
	}
	PGconn *conn;
	struct risk r;
	int rc = ctl_open_db(&conn, config_str(&c->cfg, "PAYTX_RISK_DSN"), "the risk limits",
			     "PAYTX_RISK_DSN");
	if (rc)
		return rc;
	if (risk_init(&r, conn, "risk") != 0)
		return CTL_FAILED;
	rc = limit_run(c, &r, c->argv[0], account, currency);
	risk_finish(&r);
	return rc;
}

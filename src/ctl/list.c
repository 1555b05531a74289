/* paytxctl list: payments still open in the coordinator log (in flight or
 * in doubt), with what each participant's own database says about them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "pg.h"

const char ctl_list_help[] =
	"usage: paytxctl list inflight|in-doubt [--limit N] [--older-than SECONDS] [--json]\n"
	"Open payments in the coordinator log (PAYTX_PG_DSN), oldest first:\n"
	"  inflight  undecided: state preparing, no decision logged yet. The\n"
	"            coordinator is collecting votes; at its prepare deadline it\n"
	"            aborts (presumed abort).\n"
	"  in-doubt  decided but not yet applied everywhere: state committing or\n"
	"            aborting, the decision is durable and the coordinator re-sends\n"
	"            it until every participant has acked.\n"
	"Each line shows the payment, txn, state, age since submission (and since the\n"
	"decision), the coordinator holding its lease, the participants (ledger shards\n"
	"of its legs plus the further participants the log names for it, or\n"
	"PAYTX_PARTICIPANTS for payments logged before schema 2) and those still\n"
	"missing: for inflight the ones whose database holds no vote yet, for in-doubt\n"
	"the ones whose database does not show the decision applied yet. A participant\n"
	"whose database is not configured (PAYTX_LEDGER_DSNS, PAYTX_RISK_DSN for risk)\n"
	"or unreachable is shown as unknown. --limit N: at most N (default 100, 0 =\n"
	"all); --older-than SECONDS: only payments submitted at least that long ago.\n";

#define LIST_MAX_PARTS 24

/* One participant of an open payment and what its database says. */
struct part {
	char name[PAYTX_ID_MAX + 1];
	char state[16];        /* barrier state, "none" (no row) or "unknown" */
	bool missing;
};

struct row {
	int i;                 /* row of the coordinator's result */
	size_t nparts;
	struct part parts[LIST_MAX_PARTS];
};

static void add_part(struct row *r, const char *name)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (strcmp(r->parts[i].name, name) == 0)
			return;
	if (r->nparts == LIST_MAX_PARTS)
		return;
	struct part *p = &r->parts[r->nparts++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->state, sizeof(p->state), "unknown");
}

/* The participants the coordinator sent the payment to: the shards of its
 * legs (the request is a submit message) and every further participant:
 * logged is the log's list (NULL in rows from before schema 2: then ours). */
static void find_parts(const struct ctl *c, const char *request, const char *logged,
		       struct row *r)
{
	struct paytx_payment p;
	struct paytx_fault f;
	if (paytx_payment_decode(request, strlen(request), &p, &f) == 0) {
		for (size_t i = 0; i < p.nlegs; i++)
			add_part(r, c->shards.names[shardmap_index(&c->shards, p.legs[i].account)]);
		paytx_payment_finish(&p);
	}
	const char *extra = logged ? logged : config_str(&c->cfg, "PAYTX_PARTICIPANTS");
	while (extra && *extra) {
		size_t n = strcspn(extra, ",");
		char name[PAYTX_ID_MAX + 1];
		if (n > 0 && n < sizeof(name)) {
			memcpy(name, extra, n);
			name[n] = '\0';
			add_part(r, name);
		}
		extra += n + (extra[n] == ',');
	}
}

static const char *part_dsn(const struct ctl *c, const char *name)
{
	if (strcmp(name, "risk") == 0)
		return config_str(&c->cfg, "PAYTX_RISK_DSN");
	return ctl_ledger_dsn(c, name);
}

/* Fill in the barrier state of participant name for every row naming it,
 * in one query on its database. */
static void read_barrier(const struct ctl *c, PGresult *open, struct row *rows, size_t n,
			 const char *name)
{
	const char *dsn = part_dsn(c, name);
	PGconn *conn;
	if (!dsn || pg_connect(&conn, dsn, "paytxctl", NULL) != 0)
		return;
	char txns[8192] = "{";
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(txns);
		snprintf(txns + len, sizeof(txns) - len, "%s%s", len > 1 ? "," : "",
			 PQgetvalue(open, rows[i].i, 1));
	}
	strncat(txns, "}", sizeof(txns) - strlen(txns) - 1);
	const char *params[] = { txns, name };
	PGresult *r = pg_query(conn, "SELECT txn::text, state FROM barrier "
				     "WHERE txn = ANY($1::bigint[]) AND participant = $2", 2, params);
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < rows[i].nparts; k++) {
			struct part *p = &rows[i].parts[k];
			if (strcmp(p->name, name) != 0)
				continue;
			snprintf(p->state, sizeof(p->state), r ? "none" : "unknown");
			for (int j = 0; r && j < PQntuples(r); j++)
				if (strcmp(PQgetvalue(r, j, 0), PQgetvalue(open, rows[i].i, 1)) == 0)
					snprintf(p->state, sizeof(p->state), "%s", PQgetvalue(r, j, 1));
		}
	PQclear(r);
	PQfinish(conn);
}

/* Is p still owed something for a payment in state? */
static bool part_missing(const struct part *p, const char *state)
{
	if (strcmp(p->state, "unknown") == 0)
		return true;
	if (strcmp(state, "preparing") == 0)
		return strcmp(p->state, "none") == 0;
	if (strcmp(state, "committing") == 0)
		return strcmp(p->state, "committed") != 0;
	return strcmp(p->state, "aborted") != 0 && strcmp(p->state, "refused") != 0;
}

static void print_json(PGresult *open, const struct row *rows, size_t n)
{
	printf("[");
	for (size_t i = 0; i < n; i++) {
		int k = rows[i].i;
		printf("%s{\"payment_id\":", i ? "," : "");
		ctl_json_string(PQgetvalue(open, k, 0));
		printf(",\"txn\":%s,\"state\":\"%s\",\"age_s\":%s,\"decided_age_s\":%s,\"owner\":",
		       PQgetvalue(open, k, 1), PQgetvalue(open, k, 2), PQgetvalue(open, k, 4),
		       PQgetisnull(open, k, 5) ? "null" : PQgetvalue(open, k, 5));
		ctl_json_string(PQgetvalue(open, k, 3));
		printf(",\"lease_left_s\":%s,\"participants\":[", PQgetvalue(open, k, 6));
		for (size_t j = 0; j < rows[i].nparts; j++) {
			printf("%s{\"name\":", j ? "," : "");
			ctl_json_string(rows[i].parts[j].name);
			printf(",\"state\":\"%s\"}", rows[i].parts[j].state);
		}
		printf("],\"missing\":[");
		for (size_t j = 0, m = 0; j < rows[i].nparts; j++)
			if (rows[i].parts[j].missing) {
				printf("%s", m++ ? "," : "");
				ctl_json_string(rows[i].parts[j].name);
			}
		printf("]}");
	}
	printf("]\n");
}

static void print_text(PGresult *open, const struct row *rows, size_t n, bool in_doubt)
{
	printf("%-24s %8s %-10s %7s %-20s %s\n", "PAYMENT", "TXN", "STATE",
	       in_doubt ? "DECIDED" : "AGE", "OWNER", "MISSING (participant=state)");
	for (size_t i = 0; i < n; i++) {
		int k = rows[i].i;
		printf("%-24s %8s %-10s %6ss %-20s", PQgetvalue(open, k, 0), PQgetvalue(open, k, 1),
		       PQgetvalue(open, k, 2), PQgetvalue(open, k, in_doubt ? 5 : 4),
		       PQgetvalue(open, k, 3));
		size_t m = 0;
		for (size_t j = 0; j < rows[i].nparts; j++)
			if (rows[i].parts[j].missing)
				printf("%s%s=%s", m++ ? ", " : " ", rows[i].parts[j].name,
				       rows[i].parts[j].state);
		printf("%s\n", m ? "" : " -");
	}
	printf("%zu %s\n", n, in_doubt ? "in doubt" : "in flight");
}

static int list_open(struct ctl *c, bool in_doubt, int64_t limit, int64_t older)
{
	PGconn *conn;
	int rc = ctl_open_db(&conn, config_str(&c->cfg, "PAYTX_PG_DSN"), "the coordinator log",
			     "PAYTX_PG_DSN");
	if (rc)
		return rc;
	char lim[24], old[24];
	snprintf(lim, sizeof(lim), "%" PRId64, limit ? limit : INT64_MAX);
	snprintf(old, sizeof(old), "%" PRId64, older);
	const char *params[] = { in_doubt ? "{committing,aborting}" : "{preparing}", old, lim };
	PGresult *open = pg_query(conn,
		"SELECT payment_id, txn::text, state, owner, "
		"floor(extract(epoch FROM now() - submitted_at))::bigint, "
		"floor(extract(epoch FROM now() - decided_at))::bigint, "
		"greatest(0, ceil(extract(epoch FROM lease_until - now())))::bigint, request, "
		"participants "
		"FROM payments WHERE pending AND state = ANY($1::text[]) " /* the open set's index */
		"AND submitted_at <= now() - make_interval(secs => $2::bigint) "
		"ORDER BY submitted_at, txn LIMIT $3::bigint", 3, params);
	PQfinish(conn);
	if (!open)
		return CTL_FAILED;
	size_t n = (size_t)PQntuples(open);
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		PQclear(open);
		return CTL_FAILED;
	}
	for (size_t i = 0; i < n; i++) {
		rows[i].i = (int)i;
		find_parts(c, PQgetvalue(open, (int)i, 7),
			   PQgetisnull(open, (int)i, 8) ? NULL : PQgetvalue(open, (int)i, 8),
			   &rows[i]);
	}
	/* One connection per participant database, whatever the number of rows,
	 * in pages that fit read_barrier's txn list. */
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < rows[i].nparts; k++) {
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				for (size_t q = 0; q < rows[j].nparts && !seen; q++)
					seen = strcmp(rows[j].parts[q].name, rows[i].parts[k].name) == 0;
			for (size_t page = 0; !seen && page < n; page += 256)
				read_barrier(c, open, rows + page, n - page < 256 ? n - page : 256,
					     rows[i].parts[k].name);
		}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < rows[i].nparts; k++)
			rows[i].parts[k].missing =
				part_missing(&rows[i].parts[k], PQgetvalue(open, (int)i, 2));
	if (c->json)
		print_json(open, rows, n);
	else
		print_text(open, rows, n, in_doubt);
	free(rows);
	PQclear(open);
	return CTL_OK;
}

int ctl_list(struct ctl *c)
{
	bool in_doubt = c->argc == 1 && strcmp(c->argv[0], "in-doubt") == 0;
	if (c->argc != 1 || (!in_doubt && strcmp(c->argv[0], "inflight") != 0)) {
		fprintf(stderr, "usage: paytxctl list inflight|in-doubt [--limit N] "
				"[--older-than SECONDS] (see paytxctl list --help)\n");
		return CTL_USAGE;
	}
	int64_t limit = ctl_count_option("--limit", c->limit, 100, 1000000);
	int64_t older = ctl_count_option("--older-than", c->older_than, 0, 100L * 365 * 86400);
	if (limit < 0 || older < 0)
		return CTL_USAGE;
	return list_open(c, in_doubt, limit, older);
}

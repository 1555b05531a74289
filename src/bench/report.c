/* Benchmark report: text for people, JSON for scripts. */
#include "report.h"

#include <inttypes.h>
#include <string.h>

#include <json-c/json.h>

static const char *const state_names[] = { "in_flight", "committed", "aborted", "rejected" };

static double ms(int64_t us)
{
	return (double)us / 1000.0;
}

static double rate(const struct report *r)
{
	const struct driver_result *x = r->result;
	return x->window_s > 0 ? (double)x->done_in_window / x->window_s : 0;
}

static uint64_t missing(const struct driver_result *x)
{
	return x->sent - x->outcomes;
}

void report_text(FILE *f, const struct report *r)
{
	const struct driver_result *x = r->result;
	const struct workload_config *w = &r->workload->cfg;
	const struct ledgercheck *c = r->check;
	if (r->load->mode == DRIVER_OPEN)
		fprintf(f, "open loop at %.0f/s", r->load->rate);
	else
		fprintf(f, "closed loop, %zu outstanding", r->load->concurrency);
	fprintf(f, ", %.0f s measured after %.0f s warm-up; %zu accounts on %zu shards, "
		   "%.0f%% cross-shard, %.0f%% touching %zu hot accounts\n",
		r->load->duration_s, r->load->warmup_s, w->accounts, r->shards,
		100 * w->cross_share, 100 * w->hot_share, w->hot_accounts);
	fprintf(f, "payments/s        %.1f\n", rate(r));
	fprintf(f, "latency ms        p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%" PRIu64
		   " measured, from the %s)\n",
		ms(latency_quantile(&x->lat, 0.5)), ms(latency_quantile(&x->lat, 0.9)),
		ms(latency_quantile(&x->lat, 0.99)), ms(latency_quantile(&x->lat, 0.999)),
		ms(x->lat.max_us), x->lat.n,
		r->load->mode == DRIVER_OPEN ? "scheduled send" : "send");
	fprintf(f, "outcomes          sent %" PRIu64 "  committed %" PRIu64 "  aborted %" PRIu64
		   "  rejected %" PRIu64 "  no outcome %" PRIu64 "  duplicates %" PRIu64 "\n",
		x->sent, x->by_state[DS_COMMITTED], x->by_state[DS_ABORTED],
		x->by_state[DS_REJECTED], missing(x), x->duplicates);
	for (size_t i = 0; i < x->nreasons; i++)
		if (x->reasons[i].status != DS_COMMITTED)
			fprintf(f, "  %-9s %-28s %" PRIu64 "\n", state_names[x->reasons[i].status],
				x->reasons[i].reason, x->reasons[i].n);
	fprintf(f, "CPU cores, RSS    ");
	for (int i = 0; i < PROCSTAT_NAMES; i++) {
		const struct procstat_row *b = &r->after->rows[i];
		if (!b->nproc)
			continue;
		fprintf(f, "%s %.2f, %.0f MiB (%u)  ", b->name,
			r->wall_s > 0 ? procstat_cpu_used(r->before, r->after, i) / r->wall_s : 0,
			(double)b->rss_kb / 1024.0, b->nproc);
	}
	fprintf(f, "\nledger invariants %s: %s sum %" PRId64 ", negative %" PRIu64
		   ", open holds %" PRIu64 ", balance != journal %" PRIu64
		   ", committed without journal %" PRIu64 ", journal without commit %" PRIu64 "%s%s\n",
		c->ok ? "OK" : "VIOLATED", w->currency, c->currency_sum, c->negative, c->open_holds,
		c->journal_mismatch, c->committed_unposted, c->posted_not_committed,
		c->error[0] ? "; " : "", c->error);
}

static struct json_object *latency_json(const struct latency *h)
{
	static const struct { const char *key; double q; } qs[] = {
		{ "p50", 0.5 }, { "p90", 0.9 }, { "p99", 0.99 }, { "p99_9", 0.999 },
	};
	struct json_object *o = json_object_new_object();
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		json_object_object_add(o, qs[i].key,
				       json_object_new_double(ms(latency_quantile(h, qs[i].q))));
	json_object_object_add(o, "max", json_object_new_double(ms(h->max_us)));
	json_object_object_add(o, "samples", json_object_new_int64((int64_t)h->n));
	return o;
}

static struct json_object *procs_json(const struct report *r)
{
	struct json_object *o = json_object_new_object();
	for (int i = 0; i < PROCSTAT_NAMES; i++) {
		const struct procstat_row *b = &r->after->rows[i];
		if (!b->nproc)
			continue;
		struct json_object *p = json_object_new_object();
		json_object_object_add(p, "processes", json_object_new_int((int)b->nproc));
		json_object_object_add(p, "cpu_cores", json_object_new_double(
			r->wall_s > 0 ? procstat_cpu_used(r->before, r->after, i) / r->wall_s : 0));
		json_object_object_add(p, "rss_kib", json_object_new_int64(b->rss_kb));
		json_object_object_add(o, b->name, p);
	}
	return o;
}

static struct json_object *outcomes_json(const struct driver_result *x)
{
	struct json_object *o = json_object_new_object(), *reasons = json_object_new_array();
	json_object_object_add(o, "sent", json_object_new_int64((int64_t)x->sent));
	for (int s = DS_COMMITTED; s <= DS_REJECTED; s++)
		json_object_object_add(o, state_names[s],
				       json_object_new_int64((int64_t)x->by_state[s]));
	json_object_object_add(o, "no_outcome", json_object_new_int64((int64_t)missing(x)));
	json_object_object_add(o, "duplicates", json_object_new_int64((int64_t)x->duplicates));
	for (size_t i = 0; i < x->nreasons; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "status", json_object_new_string(
			state_names[x->reasons[i].status]));
		json_object_object_add(e, "reason", json_object_new_string(x->reasons[i].reason));
		json_object_object_add(e, "count", json_object_new_int64((int64_t)x->reasons[i].n));
		json_object_array_add(reasons, e);
	}
	json_object_object_add(o, "by_reason", reasons);
	return o;
}

static struct json_object *check_json(const struct ledgercheck *c)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(c->ok));
	json_object_object_add(o, "currency_sum", json_object_new_int64(c->currency_sum));
	json_object_object_add(o, "negative", json_object_new_int64((int64_t)c->negative));
	json_object_object_add(o, "open_holds", json_object_new_int64((int64_t)c->open_holds));
	json_object_object_add(o, "balance_not_journal",
			       json_object_new_int64((int64_t)c->journal_mismatch));
	json_object_object_add(o, "committed_without_journal",
			       json_object_new_int64((int64_t)c->committed_unposted));
	json_object_object_add(o, "journal_without_commit",
			       json_object_new_int64((int64_t)c->posted_not_committed));
	json_object_object_add(o, "error", json_object_new_string(c->error));
	return o;
}

int report_json(FILE *f, const struct report *r)
{
	const struct workload_config *w = &r->workload->cfg;
	struct json_object *o = json_object_new_object(), *load = json_object_new_object();
	json_object_object_add(load, "mode", json_object_new_string(
		r->load->mode == DRIVER_OPEN ? "open" : "closed"));
	json_object_object_add(load, "rate", json_object_new_double(r->load->rate));
	json_object_object_add(load, "concurrency", json_object_new_int64((int64_t)r->load->concurrency));
	json_object_object_add(load, "duration_s", json_object_new_double(r->load->duration_s));
	json_object_object_add(load, "warmup_s", json_object_new_double(r->load->warmup_s));
	json_object_object_add(load, "accounts", json_object_new_int64((int64_t)w->accounts));
	json_object_object_add(load, "shards", json_object_new_int64((int64_t)r->shards));
	json_object_object_add(load, "cross_shard_share", json_object_new_double(w->cross_share));
	json_object_object_add(load, "hot_share", json_object_new_double(w->hot_share));
	json_object_object_add(load, "hot_accounts", json_object_new_int64((int64_t)w->hot_accounts));
	json_object_object_add(o, "load", load);
	json_object_object_add(o, "payments_per_s", json_object_new_double(rate(r)));
	json_object_object_add(o, "latency_ms", latency_json(&r->result->lat));
	json_object_object_add(o, "outcomes", outcomes_json(r->result));
	json_object_object_add(o, "processes", procs_json(r));
	json_object_object_add(o, "invariants", check_json(r->check));
	int ok = fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) > 0;
	json_object_put(o);
	return ok ? 0 : PAYTX_EINVAL;
}

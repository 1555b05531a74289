/* paytx-cache: the balance cache as a 2PC participant, plus the balance
 * query service (docs/cache.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cachestore.h"
#include "config.h"
#include "crash.h"
#include "daemon.h"
#include "lease.h"
#include "log.h"
#include "metrics_http.h"
#include "pg.h"
#include "query.h"
#include "shard.h"
#include "signals.h"

static const struct config_def defs[] = {
	{ "PAYTX_PARTICIPANT", "participant", "cache",
	  "This participant's name (its queue and routing key); name it in the "
	  "coordinators' PAYTX_PARTICIPANTS.", 0 },
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of the coordinator log, as the "
	  "read-only cache role (paytx_cache): decisions and open payments.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_LEDGER_DSNS", "ledger-dsns", NULL, "Ledger databases: name=dsn,name=dsn, as "
	  "the cache role (balances and open holds).", CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_SHARDS", "shards", "ledger.0,ledger.1",
	  "Ledger shard participants, in placement order.", 0 },
	{ "PAYTX_REDIS_URL", "redis-url", NULL, "Redis holding the cache: redis://HOST[:PORT][/DB].",
	  CONFIG_REQUIRED },
	{ "PAYTX_CACHE_PREFIX", "cache-prefix", "paytx:cache",
	  "Prefix of every key of the cache in Redis.", 0 },
	{ "PAYTX_CACHE_LEASE_MS", "cache-lease-ms", "1000",
	  "The coherence lease: readers trust the cache at most this long (plus the Redis "
	  "timeout) after paytx-cache last reached Redis. Keep it well under the "
	  "coordinators' PAYTX_PREPARE_TIMEOUT_MS: a prepare may wait this long.", 0 },
	{ "PAYTX_REDIS_TIMEOUT_MS", "redis-timeout-ms", "200",
	  "Timeout of every Redis connect and command; also the margin allowed for Redis's "
	  "clock running behind this host's (the lease is an absolute time).", 0 },
	{ "PAYTX_CACHE_SWEEP_MS", "cache-sweep-ms", "2000",
	  "How often marks of payments the coordinator log has finished are cleared.", 0 },
	DAEMON_PARTICIPANT_DEFS,
};

struct settings {
	int64_t lease_ms, timeout_ms, sweep_ms;
};

static int check(const struct config *c, struct settings *s)
{
	struct shardmap m;
	char dsn[1024];
	if (config_int(c, "PAYTX_CACHE_LEASE_MS", 100, 60000, &s->lease_ms) ||
	    config_int(c, "PAYTX_REDIS_TIMEOUT_MS", 10, 10000, &s->timeout_ms) ||
	    config_int(c, "PAYTX_CACHE_SWEEP_MS", 100, 3600000, &s->sweep_ms) ||
	    config_check(c, "PAYTX_REDIS_URL", cachestore_url_check,
			 "not a redis://HOST[:PORT][/DB] URL") ||
	    config_check(c, "PAYTX_CACHE_PREFIX", cachestore_prefix_check,
			 "1-63 of [A-Za-z0-9:._-]"))
		return PAYTX_ECONFIG;
	if (shardmap_parse(&m, config_str(c, "PAYTX_SHARDS"))) {
		fprintf(stderr, "setting PAYTX_SHARDS: a comma-separated list of names\n");
		return PAYTX_ECONFIG;
	}
	for (size_t i = 0; i < m.n; i++)
		if (shard_dsn(config_str(c, "PAYTX_LEDGER_DSNS"), m.names[i], dsn, sizeof(dsn)) ||
		    pg_dsn_check(dsn)) {
			fprintf(stderr, "setting PAYTX_LEDGER_DSNS: no valid DSN for shard %s\n",
				m.names[i]);
			return PAYTX_ECONFIG;
		}
	return 0;
}

static struct cachestore *store(const struct config *c, const struct settings *s)
{
	return cachestore_create(config_str(c, "PAYTX_REDIS_URL"),
				 config_str(c, "PAYTX_CACHE_PREFIX"), (int)s->timeout_ms,
				 (int)(s->lease_ms / 4));
}

int main(int argc, char **argv)
{
	struct config c;
	struct paytx_participant_config pc = { 0 };
	struct settings s;
	struct lease lease;
	struct cachepart part;
	struct query query;
	signals_install();
	log_init("cache");
	crash_init();
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (config_load(&c, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytx-cache",
			"[options]", "Keeps the balance cache in Redis coherent as a two-phase-"
			"commit participant, and answers balance queries (paytx.balance).") ||
	    daemon_participant_config(&c, &pc) || check(&c, &s))
		return 2;
	int status = daemon_should_exit(&c, argc, argv, "paytx-cache");
	if (status >= 0)
		return status;
	struct metrics_http *metrics;
	if (daemon_metrics_start(&c, &metrics) != 0)
		return 1;
	const char *coord = config_str(&c, "PAYTX_PG_DSN");
	const char *shards = config_str(&c, "PAYTX_SHARDS");
	const char *ledgers = config_str(&c, "PAYTX_LEDGER_DSNS");
	struct query_config qc = { .amqp_url = pc.amqp_url, .tls_ca = pc.amqp_tls_ca,
				   .tls_cert = pc.amqp_tls_cert, .tls_key = pc.amqp_tls_key,
				   .shards = shards, .ledger_dsns = ledgers, .coord_dsn = coord,
				   .stop = &signals_stop };
	int err = PAYTX_ENOMEM;
	struct cachestore *lcs = store(&c, &s), *pcs = store(&c, &s), *qcs = store(&c, &s);
	if (!lcs || !pcs || !qcs) {
		cachestore_destroy(lcs);
		cachestore_destroy(pcs);
		cachestore_destroy(qcs);
		metrics_http_destroy(metrics);
		return 1;
	}
	if (lease_init(&lease, lcs, coord, s.lease_ms, s.timeout_ms, s.sweep_ms, &signals_stop))
		goto err_stores;
	if (query_init(&query, &qc, qcs)) /* takes qcs, even on failure */
		goto err_lease;
	cachepart_init(&part, pcs, &lease, &query);
	if (lease_start(&lease) || query_start(&query)) {
		signals_stop = 1;
		goto err_part;
	}
	err = paytx_participant_run(&pc, &cachepart_ops, &part, &signals_stop);
	signals_stop = 1; /* the threads end with the participant */
	if (err)
		log_error("cache stopping: %s", paytx_strerror(err));
err_part:
	cachepart_finish(&part);
	query_finish(&query);
	lease_finish(&lease);
	metrics_http_destroy(metrics);
	return err ? 1 : 0;
err_lease:
	lease_finish(&lease);
	cachestore_destroy(pcs);
	metrics_http_destroy(metrics);
	return 1;
err_stores:
	cachestore_destroy(pcs);
	cachestore_destroy(qcs);
	metrics_http_destroy(metrics);
	return 1;
}

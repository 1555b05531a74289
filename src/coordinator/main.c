/* paytx-coordinator: parse configuration, build the coordinator, run it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "coordinator.h"
#include "crash.h"
#include "daemon.h"
#include "log.h"
#include "metrics_http.h"
#include "signals.h"

static const struct config_def defs[] = {
	BROKER_CONFIG_DEFS,
	BROKER_QUEUE_TYPE_DEF,
	{ "PAYTX_PG_DSN", "pg-dsn", NULL, "PostgreSQL DSN of the coordinator log, as the "
	  "coordinator role (paytx_coordinator); run paytxctl migrate first.",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_HMAC_KEY", "hmac-key", NULL, "Key signing protocol messages (16-64 bytes).",
	  CONFIG_SECRET | CONFIG_REQUIRED },
	{ "PAYTX_SHARDS", "shards", "ledger.0,ledger.1",
	  "Ledger shard participants, in placement order.", 0 },
	{ "PAYTX_PARTICIPANTS", "participants", "",
	  "Further participants that vote on every payment (e.g. risk).", 0 },
	{ "PAYTX_COORDINATOR_ID", "id", NULL,
	  "Unique name of this coordinator (lease owner); default: host name.", 0 },
	{ "PAYTX_PREPARE_TIMEOUT_MS", "prepare-timeout-ms", "5000",
	  "Abort a payment whose votes have not all arrived by then.", 0 },
	{ "PAYTX_LEASE_MS", "lease-ms", "10000",
	  "Lease on in-flight payments; others adopt them after it expires.", 0 },
	{ "PAYTX_PREFETCH", "prefetch", "512", "Deliveries in flight per queue.", 0 },
	{ "PAYTX_BATCH_MAX", "batch-max", "256", "Messages handled per loop iteration.", 0 },
	{ "PAYTX_REPLAY_WINDOW_S", "replay-window-s", "900",
	  "Protocol messages stamped further than this from now are refused as replays "
	  "(allow for clock skew between hosts).", 0 },
	DAEMON_METRICS_DEF,
	{ "PAYTX_LOG_LEVEL", "log-level", "info", "debug, info, warn or error.", 0 },
};

static int build_config(const struct config *c, struct coordinator_config *cc, char *host,
			size_t hostlen)
{
	int64_t timeout, lease, prefetch, batch, replay_window;
	if (daemon_check_common(c) ||
	    config_int(c, "PAYTX_PREPARE_TIMEOUT_MS", 100, 3600000, &timeout) ||
	    config_int(c, "PAYTX_LEASE_MS", 1000, 3600000, &lease) ||
	    config_int(c, "PAYTX_PREFETCH", 1, 65535, &prefetch) ||
	    config_int(c, "PAYTX_BATCH_MAX", 1, 4096, &batch) ||
	    config_int(c, "PAYTX_REPLAY_WINDOW_S", 10, 86400, &replay_window))
		return PAYTX_ECONFIG;
	if (shardmap_parse(&cc->shards, config_str(c, "PAYTX_SHARDS")) != 0) {
		fprintf(stderr, "setting PAYTX_SHARDS: a comma-separated list of distinct "
			"participant names ([A-Za-z0-9._:-])\n");
		return PAYTX_ECONFIG;
	}
	const char *extra = config_str(c, "PAYTX_PARTICIPANTS");
	if (extra && *extra && (strlen(extra) > 255 || shardmap_parse(&cc->extra, extra) != 0)) {
		fprintf(stderr, "setting PAYTX_PARTICIPANTS: a comma-separated list of names "
				"(255 bytes at most)\n");
		return PAYTX_ECONFIG;
	}
	cc->id = config_str(c, "PAYTX_COORDINATOR_ID");
	if (!cc->id) {
		gethostname(host, hostlen - 1);
		cc->id = host;
	}
	if (!paytx_id_valid(cc->id, strlen(cc->id))) {
		fprintf(stderr, "setting PAYTX_COORDINATOR_ID: 1-64 of [A-Za-z0-9._:-]\n");
		return PAYTX_ECONFIG;
	}
	const char *key = config_str(c, "PAYTX_HMAC_KEY");
	cc->amqp_url = config_str(c, "PAYTX_AMQP_URL");
	cc->amqp_tls_ca = config_str(c, "PAYTX_AMQP_TLS_CA");
	cc->amqp_tls_cert = config_str(c, "PAYTX_AMQP_TLS_CERT");
	cc->amqp_tls_key = config_str(c, "PAYTX_AMQP_TLS_KEY");
	cc->pg_dsn = config_str(c, "PAYTX_PG_DSN");
	cc->hmac_key = key;
	cc->prepare_timeout_ms = timeout;
	cc->lease_ms = lease;
	cc->prefetch = (uint16_t)prefetch;
	cc->batch_max = (size_t)batch;
	cc->replay_window_s = replay_window;
	/* checked by daemon_check_common */
	if (queue_type_parse(config_str(c, "PAYTX_QUEUE_TYPE"), &cc->queue_type))
		return PAYTX_ECONFIG;
	return 0;
}

int main(int argc, char **argv)
{
	struct config c;
	struct coordinator_config cc = { 0 };
	char host[128] = { 0 };
	signals_install();
	log_init("coordinator");
	crash_init();
	if (config_load(&c, defs, sizeof(defs) / sizeof(defs[0]), argc, argv,
			"paytx-coordinator", "[options]",
			"Runs two-phase commit for payments submitted to paytx.submit.") ||
	    build_config(&c, &cc, host, sizeof(host)))
		return 2;
	int status = daemon_should_exit(&c, argc, argv, "paytx-coordinator");
	if (status >= 0)
		return status;
	struct metrics_http *metrics;
	if (daemon_metrics_start(&c, &metrics) != 0)
		return 1;
	struct coordinator *co = coordinator_create(&cc, &signals_stop);
	int err = co ? coordinator_run(co) : 1;
	coordinator_destroy(co);
	metrics_http_destroy(metrics);
	return err ? 1 : 0;
}

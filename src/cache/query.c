/* The balance query service: paytx.balance requests, answered by reply_to. */
#include "query.h"

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define QUERY_CHANNEL 1
#define QUERY_BODY_MAX 4096

static void answer_error(const char *account, const char *code, char *out, size_t n)
{
	struct json_object *o = json_object_new_object();
	if (account)
		json_object_object_add(o, "account", json_object_new_string(account));
	json_object_object_add(o, "error", json_object_new_string(code));
	snprintf(out, n, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int query_answer(struct balance_reader *r, const char *body, size_t len, char *out, size_t n)
{
	struct json_object *acc, *root = NULL;
	struct json_tokener *tok = json_tokener_new();
	if (tok && len <= QUERY_BODY_MAX)
		root = json_tokener_parse_ex(tok, body, (int)len);
	json_tokener_free(tok);
	if (!root || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "account", &acc) ||
	    !json_object_is_type(acc, json_type_string)) {
		json_object_put(root);
		answer_error(NULL, "invalid_request", out, n);
		return PAYTX_EINVAL;
	}
	struct balance b;
	const char *id = json_object_get_string(acc);
	int err = balance_read(r, id, &b);
	int refused = err == PAYTX_EINVAL ? PAYTX_EINVAL : 0;
	if (err) {
		answer_error(paytx_id_valid(id, strlen(id)) ? id : NULL,
			     err == PAYTX_EINVAL ? "invalid_request" : paytx_errcode(err), out, n);
	} else {
		snprintf(out, n, "{\"account\":\"%s\",\"currency\":\"%s\",\"balance\":%" PRId64
			 ",\"held\":%" PRId64 ",\"version\":%" PRId64 ",\"external\":%s,"
			 "\"source\":\"%s\"}", b.account, b.e.currency, b.e.balance, b.e.held,
			 b.e.version, b.e.external ? "true" : "false",
			 b.source == BALANCE_FROM_CACHE ? "cache" : "ledger");
	}
	json_object_put(root);
	return refused;
}

static bool rpc_ok(amqp_connection_state_t st, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	log_warn("cache query: %s failed", what);
	return false;
}

static amqp_socket_t *open_socket(struct query *q, amqp_connection_state_t st,
				  const struct amqp_connection_info *info)
{
	if (!info->ssl)
		return amqp_tcp_socket_new(st);
	amqp_socket_t *s = amqp_ssl_socket_new(st);
	if (!s || (q->cfg.tls_ca && amqp_ssl_socket_set_cacert(s, q->cfg.tls_ca)) ||
	    (q->cfg.tls_cert && amqp_ssl_socket_set_key(s, q->cfg.tls_cert, q->cfg.tls_key)))
		return NULL;
	return s;
}

/* Connect, declare paytx.balance (exchange and queue), bind, consume. */
static int connect_and_consume(struct query *q, amqp_connection_state_t *out)
{
	struct amqp_connection_info info;
	char *url = strdup(q->cfg.amqp_url);
	amqp_connection_state_t st = amqp_new_connection();
	struct timeval tv = { .tv_sec = 5 };
	int err = PAYTX_EBROKER;
	if (!url || !st || amqp_parse_url(url, &info) != AMQP_STATUS_OK)
		goto out;
	amqp_socket_t *s = open_socket(q, st, &info);
	if (!s || amqp_socket_open_noblock(s, info.host, info.port, &tv) != AMQP_STATUS_OK)
		goto out;
	if (amqp_login(st, info.vhost, 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, info.user,
		       info.password).reply_type != AMQP_RESPONSE_NORMAL)
		goto out;
	amqp_channel_open(st, QUERY_CHANNEL);
	if (!rpc_ok(st, "channel.open"))
		goto out;
	amqp_bytes_t name = amqp_cstring_bytes(QUERY_QUEUE);
	amqp_exchange_declare(st, QUERY_CHANNEL, name, amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
			      amqp_empty_table);
	if (!rpc_ok(st, "exchange.declare paytx.balance"))
		goto out;
	/* Refused queries are rejected into paytx.dlx, like every refusal. */
	amqp_table_entry_t dlx = { .key = amqp_cstring_bytes("x-dead-letter-exchange"),
				   .value = { .kind = AMQP_FIELD_KIND_UTF8,
					      .value.bytes = amqp_cstring_bytes("paytx.dlx") } };
	amqp_table_t args = { .num_entries = 1, .entries = &dlx };
	amqp_queue_declare(st, QUERY_CHANNEL, name, 0, 1, 0, 0, args);
	if (!rpc_ok(st, "queue.declare paytx.balance"))
		goto out;
	amqp_queue_bind(st, QUERY_CHANNEL, name, name, amqp_empty_bytes, amqp_empty_table);
	if (!rpc_ok(st, "queue.bind paytx.balance"))
		goto out;
	amqp_basic_qos(st, QUERY_CHANNEL, 0, 64, 0);
	amqp_basic_consume(st, QUERY_CHANNEL, name, amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (!rpc_ok(st, "basic.consume paytx.balance"))
		goto out;
	*out = st;
	st = NULL;
	err = 0;
out:
	if (st) {
		amqp_connection_close(st, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(st);
	}
	free(url);
	return err;
}

static int publish_reply(struct query *q, amqp_connection_state_t st,
			 const amqp_basic_properties_t *in, const char *reply)
{
	char msgid[64];
	snprintf(msgid, sizeof(msgid), "%s-%llu", q->id_prefix,
		 (unsigned long long)++q->msg_counter);
	amqp_basic_properties_t props = {
		._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_TYPE_FLAG |
			  AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
			  AMQP_BASIC_DELIVERY_MODE_FLAG,
		.content_type = amqp_cstring_bytes("application/json"),
		.type = amqp_cstring_bytes(paytx_msg_type_name(PAYTX_MSG_BALANCE)),
		.message_id = amqp_cstring_bytes(msgid),
		.timestamp = (uint64_t)(clock_wall_ms() / 1000),
		.delivery_mode = 1,
	};
	if (in->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props.correlation_id = in->correlation_id;
	}
	return amqp_basic_publish(st, QUERY_CHANNEL, amqp_empty_bytes, in->reply_to, 0, 0, &props,
				  amqp_cstring_bytes(reply)) == AMQP_STATUS_OK ? 0 : PAYTX_EBROKER;
}

/* Answer one request. A refused one (not a balance.query, not JSON with an
 * account id, or without reply_to) is answered with the error when it has
 * a reply_to, then rejected without requeue: the queue's dead-letter
 * exchange (paytx.dlx) keeps it, with RabbitMQ's x-death header; the log
 * line and paytx_dead_letters_total carry the reason. */
static int serve_one(struct query *q, amqp_connection_state_t st, amqp_envelope_t *env)
{
	char reply[1024];
	const amqp_basic_properties_t *in = &env->message.properties;
	bool has_reply = (in->_flags & AMQP_BASIC_REPLY_TO_FLAG) && in->reply_to.len;
	int refused;
	if ((in->_flags & AMQP_BASIC_TYPE_FLAG) && in->type.len &&
	    paytx_msg_type_parse(in->type.bytes, in->type.len) != PAYTX_MSG_BALANCE_QUERY) {
		refused = PAYTX_EMSGTYPE;
		answer_error(NULL, paytx_errcode(refused), reply, sizeof(reply));
	} else {
		refused = query_answer(&q->reader, env->message.body.bytes, env->message.body.len,
				       reply, sizeof(reply));
	}
	if (!has_reply && !refused)
		refused = PAYTX_EMISSING; /* nowhere to answer */
	if (has_reply && publish_reply(q, st, in, reply))
		return PAYTX_EBROKER;
	if (refused) {
		uint64_t n = metrics_inc(METRIC_DEAD_LETTERS, "code", paytx_errcode(refused), "queue",
					 QUERY_QUEUE, 1);
		log_warn("cache: balance query refused (%s%s), dead-lettered (%llu so far)",
			 paytx_errcode(refused), has_reply ? "" : ": no reply_to",
			 (unsigned long long)n);
		return amqp_basic_reject(st, QUERY_CHANNEL, env->delivery_tag, 0) ? PAYTX_EBROKER
										   : 0;
	}
	return amqp_basic_ack(st, QUERY_CHANNEL, env->delivery_tag, 0) ? PAYTX_EBROKER : 0;
}

/* Queue account (q->mu held): once; an account already queued keeps its
 * place and takes the earlier due time and fewer attempts of the two. */
static void refresh_push(struct query *q, const char *account, int attempts, int64_t due_ms)
{
	for (size_t k = 0; k < q->refresh_n; k++) {
		struct query_refresh *e = &q->refresh[(q->refresh_head + k) % QUERY_REFRESH_MAX];
		if (strcmp(e->account, account) == 0) {
			e->attempts = attempts < e->attempts ? attempts : e->attempts;
			e->due_ms = due_ms < e->due_ms ? due_ms : e->due_ms;
			return;
		}
	}
	if (q->refresh_n == QUERY_REFRESH_MAX) {
		q->refresh_dropped++;
		return;
	}
	struct query_refresh *e = &q->refresh[(q->refresh_head + q->refresh_n++) %
					      QUERY_REFRESH_MAX];
	snprintf(e->account, sizeof(e->account), "%s", account);
	e->attempts = attempts;
	e->due_ms = due_ms;
}

void query_refresh(struct query *q, const char *account)
{
	pthread_mutex_lock(&q->mu);
	refresh_push(q, account, 0, 0);
	pthread_mutex_unlock(&q->mu);
}

/* Take the oldest queued account; false when none. */
static bool refresh_pop(struct query *q, struct query_refresh *out)
{
	pthread_mutex_lock(&q->mu);
	bool any = q->refresh_n > 0;
	if (any) {
		*out = q->refresh[q->refresh_head];
		q->refresh_head = (q->refresh_head + 1) % QUERY_REFRESH_MAX;
		q->refresh_n--;
	}
	pthread_mutex_unlock(&q->mu);
	return any;
}

/* Re-read the accounts that are due (installs what the ledger has posted);
 * one still held, or whose ledger failed, goes back in the queue. */
static void refresh_some(struct query *q)
{
	int64_t now = clock_mono_ms();
	pthread_mutex_lock(&q->mu);
	size_t n = q->refresh_n < 64 ? q->refresh_n : 64; /* not what goes back now */
	pthread_mutex_unlock(&q->mu);
	struct query_refresh e;
	for (size_t k = 0; k < n && refresh_pop(q, &e); k++) {
		int64_t due = e.due_ms;
		if (due <= now) {
			struct balance b;
			int err = balance_read(&q->reader, e.account, &b);
			if (err && err != PAYTX_EDB) {
				log_debug("cache: no refresh of %s: %s", e.account, paytx_strerror(err));
				continue;
			}
			if (!err && b.anchored)
				continue;
			if (++e.attempts >= QUERY_REFRESH_ATTEMPTS) {
				log_debug("cache: %s still held after %d reads; left to readers",
					  e.account, e.attempts);
				continue;
			}
			due = now + QUERY_REFRESH_RETRY_MS;
		}
		pthread_mutex_lock(&q->mu);
		refresh_push(q, e.account, e.attempts, due);
		pthread_mutex_unlock(&q->mu);
	}
}

/* Serve until stopped or the connection fails. */
static void serve(struct query *q, amqp_connection_state_t st)
{
	while (!*q->cfg.stop) {
		refresh_some(q);
		amqp_envelope_t env;
		struct timeval tv = { .tv_usec = 50000 };   /* refreshes wait at most this */
		amqp_maybe_release_buffers(st);
		amqp_rpc_reply_t r = amqp_consume_message(st, &env, &tv, 0);
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return;
		int err = serve_one(q, st, &env);
		amqp_destroy_envelope(&env);
		if (err)
			return;
	}
}

static void *query_main(void *arg)
{
	struct query *q = arg;
	int64_t backoff = 100;
	while (!*q->cfg.stop) {
		amqp_connection_state_t st;
		if (connect_and_consume(q, &st)) {
			refresh_some(q);   /* the cache needs no broker */
			clock_sleep_ms(backoff);
			backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
			continue;
		}
		log_info("cache: serving balance queries on %s", QUERY_QUEUE);
		backoff = 100;
		serve(q, st);
		amqp_connection_close(st, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(st);
		if (!*q->cfg.stop)
			log_warn("cache query: connection lost; reconnecting");
	}
	return NULL;
}

int query_init(struct query *q, const struct query_config *cfg, struct cachestore *cs)
{
	memset(q, 0, sizeof(*q));
	q->cfg = *cfg;
	/* message ids "<16 random hex digits>-<pid>-<counter>", like broker.c's */
	snprintf(q->id_prefix, sizeof(q->id_prefix), "%08lx%08lx-%d",
		 (unsigned long)random() & 0xffffffffUL, (unsigned long)random() & 0xffffffffUL,
		 (int)getpid());
	q->cs = cs;
	q->refresh = calloc(QUERY_REFRESH_MAX, sizeof(*q->refresh));
	int err = q->refresh ? 0 : PAYTX_ENOMEM;
	if (!err && pthread_mutex_init(&q->mu, NULL))
		err = PAYTX_ENOMEM;
	else if (!err)
		err = balance_reader_init(&q->reader, cfg->shards, cfg->ledger_dsns,
					  cfg->coord_dsn, cs, "paytx-cache-query");
	if (err) {
		free(q->refresh);
		q->refresh = NULL;
		cachestore_destroy(cs);
		q->cs = NULL;
	}
	return err;
}

int query_start(struct query *q)
{
	if (pthread_create(&q->thread, NULL, query_main, q))
		return PAYTX_ENOMEM;
	q->running = true;
	return 0;
}

void query_finish(struct query *q)
{
	if (q->running)
		pthread_join(q->thread, NULL);
	q->running = false;
	balance_reader_finish(&q->reader);
	cachestore_destroy(q->cs);
	q->cs = NULL;
	if (q->refresh_dropped)
		log_info("cache: %llu refreshes dropped (queue full)",
			 (unsigned long long)q->refresh_dropped);
	free(q->refresh);
	q->refresh = NULL;
	pthread_mutex_destroy(&q->mu);
}

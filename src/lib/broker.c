/* The AMQP connections of a process: connect, topology, consume, ack. */
#include "broker.h"
#include "broker_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

static int rpc_ok(amqp_connection_state_t st, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
		log_warn("amqp %s: %s", what, amqp_error_string2(r.library_error));
	} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *m = r.reply.decoded;
		log_error("amqp %s: channel closed %u %.*s", what, m->reply_code,
			  (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	} else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *m = r.reply.decoded;
		log_error("amqp %s: connection closed %u %.*s", what, m->reply_code,
			  (int)m->reply_text.len, (const char *)m->reply_text.bytes);
	} else {
		log_error("amqp %s: server error", what);
	}
	return PAYTX_EBROKER;
}

static void conn_drop(amqp_connection_state_t *st)
{
	if (*st)
		amqp_destroy_connection(*st);
	*st = NULL;
}

static amqp_socket_t *conn_socket(struct broker *b, amqp_connection_state_t st)
{
	if (!b->info.ssl)
		return amqp_tcp_socket_new(st);
	amqp_socket_t *s = amqp_ssl_socket_new(st);
	if (!s)
		return NULL;
	amqp_ssl_socket_set_verify_peer(s, 1);
	amqp_ssl_socket_set_verify_hostname(s, 1);
	if (b->cfg.tls_ca && amqp_ssl_socket_set_cacert(s, b->cfg.tls_ca) != AMQP_STATUS_OK) {
		log_error("amqp: cannot load TLS CA file %s", b->cfg.tls_ca);
		return NULL;
	}
	if (b->cfg.tls_cert && b->cfg.tls_key &&
	    amqp_ssl_socket_set_key(s, b->cfg.tls_cert, b->cfg.tls_key) != AMQP_STATUS_OK) {
		log_error("amqp: cannot load the TLS client certificate %s or its key",
			  b->cfg.tls_cert);
		return NULL;
	}
	return s;
}

/* A refused certificate is a configuration problem, not an outage: say
 * which check failed and what to look at. Never the URL (it holds the
 * password). */
static void conn_log_open_error(const struct broker *b, int rc)
{
	const char *host = b->info.host;
	int port = b->info.port;
	switch (rc) {
	case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
		log_error("amqp: TLS verification failed for %s:%d: the broker's certificate "
			  "is not signed by a trusted CA (PAYTX_AMQP_TLS_CA %s)",
			  host, port, b->cfg.tls_ca ? b->cfg.tls_ca : "not set");
		break;
	case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
		log_error("amqp: TLS host-name verification failed: the broker's certificate "
			  "is not for host %s (port %d)", host, port);
		break;
	case AMQP_STATUS_SSL_CONNECTION_FAILED:
	case AMQP_STATUS_SSL_ERROR:
		log_error("amqp: TLS handshake with %s:%d failed: %s", host, port,
			  amqp_error_string2(rc));
		break;
	default:
		log_warn("amqp: cannot reach %s:%d: %s", host, port, amqp_error_string2(rc));
	}
}

static int conn_open(struct broker *b, amqp_connection_state_t *out, const char *role,
		     int heartbeat)
{
	amqp_connection_state_t st = amqp_new_connection();
	amqp_socket_t *s = st ? conn_socket(b, st) : NULL;
	struct timeval tv = { .tv_sec = 5 };
	if (!s)
		goto err_conn;
	int rc = amqp_socket_open_noblock(s, b->info.host, b->info.port, &tv);
	if (rc != AMQP_STATUS_OK) {
		conn_log_open_error(b, rc);
		goto err_conn;
	}
	char name[192];
	snprintf(name, sizeof(name), "%s/%s", b->cfg.name, role);
	/* consumer_cancel_notify: without it RabbitMQ never says that a queue
	 * we consume was deleted, and the process would quietly stop
	 * consuming; with it consumer_frame sees basic.cancel and reconnects,
	 * which declares the queue again. (rabbitmq-c merges these
	 * capabilities with its own.) */
	amqp_table_entry_t cap = { .key = amqp_cstring_bytes("consumer_cancel_notify"),
				   .value = { .kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1 } };
	amqp_table_entry_t prop[] = {
		{ .key = amqp_cstring_bytes("connection_name"),
		  .value = { .kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(name) } },
		{ .key = amqp_cstring_bytes("capabilities"),
		  .value = { .kind = AMQP_FIELD_KIND_TABLE,
			     .value.table = { .num_entries = 1, .entries = &cap } } },
	};
	amqp_table_t props = { .num_entries = 2, .entries = prop };
	amqp_rpc_reply_t r = amqp_login_with_properties(st, b->info.vhost, 0, 131072, heartbeat,
							 &props, AMQP_SASL_METHOD_PLAIN,
							 b->info.user, b->info.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		log_warn("amqp: login to %s:%d vhost %s as %s failed", b->info.host, b->info.port,
			 b->info.vhost, b->info.user);
		goto err_conn;
	}
	amqp_channel_open(st, CHANNEL);
	if (rpc_ok(st, "channel.open"))
		goto err_conn;
	*out = st;
	return 0;
err_conn:
	conn_drop(&st);
	return PAYTX_EBROKER;
}

/* type applies to durable queues only: a private reply queue (expiring,
 * non-durable, its protocol messages re-sent from the logs when lost)
 * cannot be a quorum queue. */
static amqp_table_t queue_args(amqp_table_entry_t *e, bool dlx, bool expiring,
			       enum queue_type type)
{
	int n = 0;
	if (dlx)
		e[n++] = (amqp_table_entry_t){
			.key = amqp_cstring_bytes("x-dead-letter-exchange"),
			.value = { .kind = AMQP_FIELD_KIND_UTF8,
				   .value.bytes = amqp_cstring_bytes(BROKER_DLX) } };
	if (expiring)
		e[n++] = (amqp_table_entry_t){
			.key = amqp_cstring_bytes("x-expires"),
			.value = { .kind = AMQP_FIELD_KIND_I32, .value.i32 = BROKER_REPLY_EXPIRES_MS } };
	else
		n += queue_type_args(type, dlx, e + n);
	return (amqp_table_t){ .num_entries = n, .entries = e };
}

static int declare_exchange(amqp_connection_state_t st, const char *name, const char *type)
{
	amqp_exchange_declare(st, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0,
			      1, 0, 0, amqp_empty_table);
	return rpc_ok(st, "exchange.declare");
}

/* A refusal because the queue exists with other arguments is the
 * operator's to fix (PAYTX_QUEUE_TYPE, or drain and delete the queue):
 * PAYTX_ECONFIG, which broker_connect does not retry. */
static int declare_refused(amqp_connection_state_t st, const char *name, enum queue_type type)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(st);
	char why[768];
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
	    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *m = r.reply.decoded;
		if (m->reply_code == AMQP_PRECONDITION_FAILED &&
		    queue_type_refusal(type, name, m->reply_text.bytes, m->reply_text.len, why,
				       sizeof(why))) {
			log_error("amqp: %s", why);
			return PAYTX_ECONFIG;
		}
	}
	return rpc_ok(st, "queue.declare");
}

static int declare_queue(struct broker *b, const char *name, bool durable, bool dlx,
			 bool expiring)
{
	amqp_table_entry_t e[2 + QUEUE_TYPE_MAX_ARGS];
	enum queue_type type = durable ? b->cfg.queue_type : QUEUE_TYPE_CLASSIC;
	amqp_table_t args = queue_args(e, dlx, expiring, type);
	amqp_queue_declare(b->cons, CHANNEL, amqp_cstring_bytes(name), 0, durable, 0, 0, args);
	return declare_refused(b->cons, name, type);
}

static int bind_queue(amqp_connection_state_t st, const char *queue, const char *exchange,
		      const char *key)
{
	amqp_queue_bind(st, CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
			amqp_cstring_bytes(key), amqp_empty_table);
	return rpc_ok(st, "queue.bind");
}

/* Everything but what a participant declares: the coordinator is the only
 * role allowed to bind, so no participant can route others' traffic (or
 * dead letters) into its own queue. */
static int declare_coordinator(struct broker *b)
{
	amqp_connection_state_t st = b->cons;
	int err;
	if ((err = declare_queue(b, BROKER_DEAD_QUEUE, true, false, false)) ||
	    (err = bind_queue(st, BROKER_DEAD_QUEUE, BROKER_DLX, "")) ||
	    (err = declare_queue(b, BROKER_SUBMIT_QUEUE, true, true, false)) ||
	    (err = declare_exchange(st, BROKER_SUBMIT_EXCHANGE, "fanout")) ||
	    (err = bind_queue(st, BROKER_SUBMIT_QUEUE, BROKER_SUBMIT_EXCHANGE, "")) ||
	    (err = declare_queue(b, BROKER_STATUS_QUEUE, true, true, false)) ||
	    (err = declare_exchange(st, BROKER_PARTICIPANTS_EXCHANGE, "direct")) ||
	    (err = declare_exchange(st, BROKER_EVENTS_EXCHANGE, "topic")))
		return err;
	return 0;
}

static int declare_topology(struct broker *b)
{
	amqp_connection_state_t st = b->cons;
	bool client = b->cfg.role == BROKER_ROLE_CLIENT;
	bool coordinator = b->cfg.role == BROKER_ROLE_COORDINATOR;
	int err;
	if (!client && declare_exchange(st, BROKER_DLX, "fanout"))
		return PAYTX_EBROKER;
	if (coordinator && (err = declare_coordinator(b)))
		return err;
	for (size_t i = 0; i < b->npart; i++)
		if ((err = declare_queue(b, b->part_queues[i], true, true, false)) ||
		    (coordinator && (err = bind_queue(st, b->part_queues[i],
						      BROKER_PARTICIPANTS_EXCHANGE,
						      b->part_queues[i]))))
			return err;
	for (size_t i = 0; i < b->nreply; i++)
		if ((err = declare_queue(b, b->reply_queues[i], false, !client, true)))
			return err;
	return 0;
}

static int start_consumers(struct broker *b)
{
	for (size_t i = 0; i < b->ncons; i++) {
		struct broker_consumer *c = &b->consumers[i];
		amqp_basic_qos(b->cons, CHANNEL, 0, c->prefetch, 0);
		if (rpc_ok(b->cons, "basic.qos"))
			return PAYTX_EBROKER;
		amqp_basic_consume_ok_t *ok =
			amqp_basic_consume(b->cons, CHANNEL, amqp_cstring_bytes(c->queue),
					   amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
		if (rpc_ok(b->cons, "basic.consume") || !ok)
			return PAYTX_EBROKER;
		snprintf(c->tag, sizeof(c->tag), "%.*s", (int)ok->consumer_tag.len,
			 (const char *)ok->consumer_tag.bytes);
	}
	return 0;
}

static int connect_once(struct broker *b)
{
	int err = PAYTX_EBROKER;
	if (conn_open(b, &b->cons, "consume", 60) || conn_open(b, &b->pub, "publish", 0))
		goto err;
	amqp_confirm_select(b->pub, CHANNEL);
	if (rpc_ok(b->pub, "confirm.select") || (err = declare_topology(b)) ||
	    (err = start_consumers(b)))
		goto err;
	b->pub_seq = 0;
	b->window_len = 0;
	b->window_returned = false;
	b->connected = true;
	return 0;
err:
	conn_drop(&b->cons);
	conn_drop(&b->pub);
	return err;
}

static void copy_bytes(char *dst, size_t n, amqp_bytes_t src)
{
	size_t len = src.len < n - 1 ? src.len : n - 1;
	if (len)
		memcpy(dst, src.bytes, len);
	dst[len] = '\0';
}

static const amqp_field_value_t *header_get(const amqp_basic_properties_t *p, const char *key)
{
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];
		if (e->key.len == strlen(key) && memcmp(e->key.bytes, key, e->key.len) == 0)
			return &e->value;
	}
	return NULL;
}

/* Protocol messages: signature first (it covers message_id and timestamp),
 * then the replay guard, so only genuine messages are remembered. */
static void authenticate(struct broker *b, struct broker_msg *m)
{
	const amqp_field_value_t *sig = header_get(&m->env.message.properties, SIGN_HEADER);
	struct sign_input in = { .type = m->type_name, .message_id = m->message_id,
				 .timestamp_s = m->timestamp_s, .body = m->body, .len = m->len };
	if (!b->cfg.key || !sig ||
	    (sig->kind != AMQP_FIELD_KIND_UTF8 && sig->kind != AMQP_FIELD_KIND_BYTES) ||
	    sign_verify(b->cfg.key, &in, sig->value.bytes.bytes, sig->value.bytes.len) != 0) {
		m->auth = PAYTX_ESIG;
		m->auth_text = "missing or bad x-paytx-signature";
		return;
	}
	m->auth = replay_check(&b->replay, m->message_id, m->timestamp_s,
			       clock_wall_ms() / 1000, m->redelivered, &m->auth_text);
	if (!m->auth)
		m->auth_text = "";
}

void broker_fill_msg(struct broker *b, struct broker_msg *m)
{
	const amqp_basic_properties_t *p = &m->env.message.properties;
	m->tag = m->env.delivery_tag;
	m->body = m->env.message.body.bytes;
	m->len = m->env.message.body.len;
	m->redelivered = m->env.redelivered;
	m->auth = PAYTX_ESIG;
	m->auth_text = "not a signed protocol message";
	for (size_t i = 0; i < b->ncons; i++)
		if (m->env.consumer_tag.len == strlen(b->consumers[i].tag) &&
		    memcmp(m->env.consumer_tag.bytes, b->consumers[i].tag,
			   m->env.consumer_tag.len) == 0)
			snprintf(m->queue, sizeof(m->queue), "%s", b->consumers[i].queue);
	if (p->_flags & AMQP_BASIC_TYPE_FLAG)
		copy_bytes(m->type_name, sizeof(m->type_name), p->type);
	if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
		copy_bytes(m->reply_to, sizeof(m->reply_to), p->reply_to);
	if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
		copy_bytes(m->correlation_id, sizeof(m->correlation_id), p->correlation_id);
	if (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
		copy_bytes(m->message_id, sizeof(m->message_id), p->message_id);
	if (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
		m->timestamp_s = (int64_t)p->timestamp;
	m->type = paytx_msg_type_parse(m->type_name, strlen(m->type_name));
	const amqp_field_value_t *tp = header_get(p, BROKER_HDR_TRACEPARENT);
	/* Carried on to other messages only in its W3C form (untrusted). */
	if (tp && (tp->kind == AMQP_FIELD_KIND_UTF8 || tp->kind == AMQP_FIELD_KIND_BYTES) &&
	    paytx_traceparent_valid(tp->value.bytes.bytes, tp->value.bytes.len))
		copy_bytes(m->traceparent, sizeof(m->traceparent), tp->value.bytes);
	if (paytx_msg_type_protocol(m->type))
		authenticate(b, m);
}

/* A non-delivery frame arrived on the consumer connection. */
static int consumer_frame(struct broker *b)
{
	amqp_frame_t f;
	struct timeval tv = { .tv_sec = 1 };
	if (amqp_simple_wait_frame_noblock(b->cons, &f, &tv) != AMQP_STATUS_OK)
		return PAYTX_EBROKER;
	if (f.frame_type != AMQP_FRAME_METHOD)
		return PAYTX_ETIMEOUT;
	switch (f.payload.method.id) {
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		log_warn("amqp: server closed the consumer channel");
		return PAYTX_EBROKER;
	case AMQP_BASIC_CANCEL_METHOD:
		log_warn("amqp: server cancelled a consumer (queue deleted?)");
		return PAYTX_EBROKER;
	default:
		return PAYTX_ETIMEOUT;
	}
}

int broker_failed(struct broker *b)
{
	b->connected = false;
	return PAYTX_EBROKER;
}

struct broker *broker_create(const struct broker_config *cfg)
{
	struct broker *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->cfg = *cfg;
	b->url_buf = strdup(cfg->url ? cfg->url : "");
	if (!b->url_buf)
		goto err_alloc;
	replay_init(&b->replay, cfg->replay_window_s);
	amqp_default_connection_info(&b->info);
	if (amqp_parse_url(b->url_buf, &b->info) != AMQP_STATUS_OK) {
		log_error("PAYTX_AMQP_URL: not a valid amqp:// or amqps:// URL");
		goto err_alloc;
	}
	unsigned char rnd[8] = { 0 };
	FILE *f = fopen("/dev/urandom", "rb");
	if (f) {
		size_t got = fread(rnd, 1, sizeof(rnd), f);
		(void)got;
		fclose(f);
	}
	snprintf(b->id_prefix, sizeof(b->id_prefix), "%02x%02x%02x%02x%02x%02x%02x%02x-%d",
		 rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], (int)getpid());
	return b;
err_alloc:
	replay_finish(&b->replay);
	free(b->url_buf);
	free(b);
	return NULL;
}

void broker_destroy(struct broker *b)
{
	if (!b)
		return;
	conn_drop(&b->cons);
	conn_drop(&b->pub);
	free(b->window_acked);
	free(b->url_buf);
	replay_finish(&b->replay);
	free(b);
}

int broker_want_participant_queue(struct broker *b, const char *name)
{
	for (size_t i = 0; i < b->npart; i++)
		if (strcmp(b->part_queues[i], name) == 0)
			return 0;
	if (b->npart == BROKER_MAX_QUEUES || !paytx_id_valid(name, strlen(name)))
		return PAYTX_ECONFIG;
	snprintf(b->part_queues[b->npart++], sizeof(b->part_queues[0]), "%s", name);
	return 0;
}

int broker_want_reply_queue(struct broker *b, const char *name)
{
	if (b->nreply == BROKER_MAX_QUEUES || strlen(name) >= sizeof(b->reply_queues[0]))
		return PAYTX_ECONFIG;
	snprintf(b->reply_queues[b->nreply++], sizeof(b->reply_queues[0]), "%s", name);
	return 0;
}

int broker_want_consumer(struct broker *b, const char *queue, uint16_t prefetch)
{
	if (b->ncons == BROKER_MAX_CONSUMERS || strlen(queue) >= sizeof(b->consumers[0].queue))
		return PAYTX_ECONFIG;
	struct broker_consumer *c = &b->consumers[b->ncons++];
	snprintf(c->queue, sizeof(c->queue), "%s", queue);
	c->prefetch = prefetch;
	return 0;
}

int broker_connect(struct broker *b)
{
	int64_t backoff = 100;
	for (int attempt = 0;; attempt++) {
		int err = connect_once(b);
		if (err == 0) {
			log_info("amqp: connected to %s:%d vhost %s", b->info.host, b->info.port,
				 b->info.vhost);
			return 0;
		}
		if (err == PAYTX_ECONFIG)
			return err;
		if (!b->cfg.stop || *b->cfg.stop)
			return PAYTX_EBROKER;
		log_warn("amqp: broker unavailable, retrying in %lld ms", (long long)backoff);
		clock_sleep_ms(backoff);
		backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
	}
}

int broker_reconnect(struct broker *b)
{
	conn_drop(&b->cons);
	conn_drop(&b->pub);
	b->connected = false;
	b->reconnects++;
	log_warn("amqp: connection lost, reconnecting");
	int err = broker_connect(b);
	if (!err)
		metrics_inc(METRIC_RECONNECTS, "to", "amqp", NULL, NULL, 1);
	return err;
}

bool broker_connected(const struct broker *b)
{
	return b->connected;
}

uint64_t broker_reconnects(const struct broker *b)
{
	return b->reconnects;
}

int broker_next(struct broker *b, struct broker_msg *m, int timeout_ms)
{
	if (!b->cons)
		return broker_failed(b);
	memset(m, 0, sizeof(*m));
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	amqp_maybe_release_buffers(b->cons);
	amqp_rpc_reply_t r = amqp_consume_message(b->cons, &m->env, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		broker_fill_msg(b, m);
		return 0;
	}
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    r.library_error == AMQP_STATUS_TIMEOUT)
		return PAYTX_ETIMEOUT;
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
	    r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
		int err = consumer_frame(b);
		return err == PAYTX_EBROKER ? broker_failed(b) : err;
	}
	log_warn("amqp: consume failed: %s",
		 r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
			 ? amqp_error_string2(r.library_error) : "server exception");
	return broker_failed(b);
}

void broker_msg_release(struct broker_msg *m)
{
	amqp_destroy_envelope(&m->env);
	memset(m, 0, sizeof(*m));
}

/* paytxctl dead: list, show and replay the dead letters of paytx.dead
 * without losing or reordering them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "broker.h"
#include "clock.h"
#include "ctl.h"

const char ctl_dead_help[] =
	"usage: paytxctl dead list [--limit N] [--json]\n"
	"       paytxctl dead show N|MESSAGE_ID [--json]\n"
	"       paytxctl dead replay N|MESSAGE_ID|--all [--dry-run] [--json]\n"
	"The dead letters in paytx.dead, oldest first, read with basic.get and put back\n"
	"in place (nothing is consumed or reordered), as the operator's RabbitMQ user\n"
	"(PAYTX_AMQP_URL_OPERATOR, else PAYTX_AMQP_URL). N is a position in dead list\n"
	"(1 = oldest); anything that is not only digits is a message_id.\n"
	"  list    count, then per message: position, message_id, type, reason code and\n"
	"          text, original destination, payment_id when the body has one, age\n"
	"          (since it was first published). --limit N: the first N (default 100,\n"
	"          0 = all, at most 10000 are read).\n"
	"  show    one message's properties, every header and its body.\n"
	"  replay  republish the body and properties unchanged (dead-letter headers\n"
	"          removed) to where it was going, wait for the broker's confirm, then\n"
	"          remove the dead letter; a replay that fails leaves it in place. One\n"
	"          that fails again is dead-lettered again with its new reason. Only\n"
	"          messages bound for paytx.submit (client submits) are replayed: a\n"
	"          payment is idempotent by payment_id, so a replay can never move money\n"
	"          twice. Protocol messages (txn.*) are refused (exit 4): they are signed\n"
	"          and single-use, receivers refuse a seen message_id or a timestamp\n"
	"          outside PAYTX_REPLAY_WINDOW_S, and they need no replay because the\n"
	"          coordinator re-sends decisions and participants ask for them (status)\n"
	"          from the PostgreSQL logs. Outcomes are refused too. --all replays every\n"
	"          replayable one and reports the others; --dry-run says what it would\n"
	"          do and changes nothing. With --json, one object per replayed message.\n"
	"Exit 0 done, 1 broker failure, 2 usage, 4 refused, 6 no such dead letter.\n";

#define DEAD_READ_MAX 10000

static const char *const dead_headers[] = { "x-paytx-error-", "x-paytx-origin-", "x-death",
					    "x-first-death-", "x-last-death-", NULL };

/* What a dead letter says about itself: why and where it was going. */
struct dead_info {
	char code[64];            /* x-paytx-error-code, or rabbitmq:<x-death reason> */
	char text[512];           /* x-paytx-error-text */
	char queue[128];          /* the queue it was taken from */
	char exchange[128];       /* x-death: the exchange it was published to */
	char routing_key[256];    /* x-death: its first routing key */
	char payment_id[PAYTX_ID_MAX + 1];
};

struct dead_list {
	struct broker_msg *msgs;
	size_t n;
	size_t total;             /* n plus what was left in the queue */
};

static void bytes_to(char *out, size_t n, const amqp_field_value_t *v)
{
	out[0] = '\0';
	if (v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES))
		snprintf(out, n, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
}

static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *key)
{
	for (int i = 0; t && i < t->num_entries; i++)
		if (t->entries[i].key.len == strlen(key) &&
		    memcmp(t->entries[i].key.bytes, key, t->entries[i].key.len) == 0)
			return &t->entries[i].value;
	return NULL;
}

static const amqp_table_t *headers_of(const struct broker_msg *m)
{
	const amqp_basic_properties_t *p = &m->env.message.properties;
	return (p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : NULL;
}


/* paytx's own dead letters name the origin queue; RabbitMQ's (a rejected,
 * expired or overflowing message of a queue with paytx.dlx) carry x-death,
 * newest first, with the exchange and routing keys it was published to. */
static void dead_info(const struct broker_msg *m, struct dead_info *d)
{
	memset(d, 0, sizeof(*d));
	const amqp_table_t *h = headers_of(m);
	bytes_to(d->code, sizeof(d->code), table_get(h, BROKER_HDR_ERROR_CODE));
	bytes_to(d->text, sizeof(d->text), table_get(h, BROKER_HDR_ERROR_TEXT));
	bytes_to(d->queue, sizeof(d->queue), table_get(h, BROKER_HDR_ORIGIN_QUEUE));
	const amqp_field_value_t *death = table_get(h, "x-death");
	if (death && death->kind == AMQP_FIELD_KIND_ARRAY && death->value.array.num_entries > 0 &&
	    death->value.array.entries[0].kind == AMQP_FIELD_KIND_TABLE) {
		const amqp_table_t *x = &death->value.array.entries[0].value.table;
		char reason[48];
		bytes_to(reason, sizeof(reason), table_get(x, "reason"));
		if (!d->code[0])
			snprintf(d->code, sizeof(d->code), "rabbitmq:%s", reason);
		if (!d->queue[0])
			bytes_to(d->queue, sizeof(d->queue), table_get(x, "queue"));
		bytes_to(d->exchange, sizeof(d->exchange), table_get(x, "exchange"));
		const amqp_field_value_t *keys = table_get(x, "routing-keys");
		if (keys && keys->kind == AMQP_FIELD_KIND_ARRAY && keys->value.array.num_entries > 0)
			bytes_to(d->routing_key, sizeof(d->routing_key),
				 &keys->value.array.entries[0]);
	}
	paytx_guess_payment_id(m->body, m->len, d->payment_id, sizeof(d->payment_id));
}

/* Why m may not be replayed, or NULL when it may. */
static const char *not_replayable(const struct broker_msg *m, const struct dead_info *d)
{
	if (paytx_msg_type_protocol(m->type))
		return "a signed protocol message: never replayed (its message_id is single-use "
		       "and the coordinator and participants re-create it from their logs)";
	if (m->type == PAYTX_MSG_OUTCOME)
		return "an outcome: nothing to replay it to";
	if (strcmp(d->queue, BROKER_SUBMIT_QUEUE) != 0)
		return "not bound for paytx.submit: only client submits are replayed";
	return NULL;
}

static struct broker *dead_connect(const struct ctl *c)
{
	/* The broker borrows its config for its life: static, one per process. */
	static struct broker_config bc;
	const char *url = config_str(&c->cfg, "PAYTX_AMQP_URL_OPERATOR");
	bc = (struct broker_config){ .url = url ? url : config_str(&c->cfg, "PAYTX_AMQP_URL"),
				      .tls_ca = config_str(&c->cfg, "PAYTX_AMQP_TLS_CA"),
				      .tls_cert = config_str(&c->cfg, "PAYTX_AMQP_TLS_CERT"),
				      .tls_key = config_str(&c->cfg, "PAYTX_AMQP_TLS_KEY"),
				      .name = "paytxctl-dead", .role = BROKER_ROLE_CLIENT };
	struct broker *b = broker_create(&bc);
	if (!b || broker_connect(b)) {
		fprintf(stderr, "paytxctl: cannot connect to RabbitMQ as the operator "
				"(PAYTX_AMQP_URL_OPERATOR)\n");
		broker_destroy(b);
		return NULL;
	}
	return b;
}

/* Take up to max messages (0 = DEAD_READ_MAX), all unacked, in queue order. */
static int dead_read(struct broker *b, size_t max, struct dead_list *l)
{
	memset(l, 0, sizeof(*l));
	if (!max || max > DEAD_READ_MAX)
		max = DEAD_READ_MAX;
	l->msgs = calloc(max, sizeof(*l->msgs));
	if (!l->msgs)
		return PAYTX_ENOMEM;
	uint32_t left = 0;
	while (l->n < max) {
		int err = broker_get(b, BROKER_DEAD_QUEUE, &l->msgs[l->n], &left);
		if (err == PAYTX_ENOTFOUND)
			break;
		if (err)
			return err;
		l->n++;
	}
	l->total = l->n + (l->n == max ? left : 0);
	return 0;
}

static void dead_free(struct dead_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		broker_msg_release(&l->msgs[i]);
	free(l->msgs);
}

static int64_t age_s(const struct broker_msg *m)
{
	return m->timestamp_s ? clock_wall_ms() / 1000 - m->timestamp_s : -1;
}

static void print_list_json(const struct dead_list *l, size_t shown)
{
	printf("{\"count\":%zu,\"messages\":[", l->total);
	for (size_t i = 0; i < shown; i++) {
		const struct broker_msg *m = &l->msgs[i];
		struct dead_info d;
		dead_info(m, &d);
		printf("%s{\"position\":%zu,\"message_id\":", i ? "," : "", i + 1);
		ctl_json_string(m->message_id);
		printf(",\"type\":");
		ctl_json_string(m->type_name);
		printf(",\"code\":");
		ctl_json_string(d.code);
		printf(",\"text\":");
		ctl_json_string(d.text);
		printf(",\"origin_queue\":");
		ctl_json_string(d.queue);
		printf(",\"origin_exchange\":");
		ctl_json_string(d.exchange);
		printf(",\"origin_routing_key\":");
		ctl_json_string(d.routing_key);
		printf(",\"payment_id\":");
		if (d.payment_id[0])
			ctl_json_string(d.payment_id);
		else
			printf("null");
		printf(",\"age_s\":");
		if (m->timestamp_s)
			printf("%" PRId64, age_s(m));
		else
			printf("null");
		printf(",\"replayable\":%s}", not_replayable(m, &d) ? "false" : "true");
	}
	printf("]}\n");
}

static void print_list_text(const struct dead_list *l, size_t shown)
{
	printf("%zu dead letter%s\n", l->total, l->total == 1 ? "" : "s");
	if (!shown)
		return;
	printf("%4s  %-24s %-15s %-22s %-14s %-20s %7s  %s\n", "#", "MESSAGE_ID", "TYPE", "CODE",
	       "ORIGIN", "PAYMENT", "AGE", "TEXT");
	for (size_t i = 0; i < shown; i++) {
		const struct broker_msg *m = &l->msgs[i];
		struct dead_info d;
		char age[24] = "-";
		dead_info(m, &d);
		if (m->timestamp_s)
			snprintf(age, sizeof(age), "%" PRId64 "s", age_s(m));
		printf("%4zu  %-24s %-15s %-22s %-14s %-20s %7s  %s\n", i + 1,
		       m->message_id[0] ? m->message_id : "-", m->type_name[0] ? m->type_name : "-",
		       d.code[0] ? d.code : "-", d.queue[0] ? d.queue : "-",
		       d.payment_id[0] ? d.payment_id : "-", age, d.text);
	}
	if (shown < l->total)
		printf("(first %zu shown; --limit N for more)\n", shown);
}

/* An amqp field value as JSON (a new reference). */
static struct json_object *field_json(const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		return json_object_new_string_len(v->value.bytes.bytes, (int)v->value.bytes.len);
	case AMQP_FIELD_KIND_BOOLEAN: return json_object_new_boolean(v->value.boolean);
	case AMQP_FIELD_KIND_I8: return json_object_new_int64(v->value.i8);
	case AMQP_FIELD_KIND_U8: return json_object_new_int64(v->value.u8);
	case AMQP_FIELD_KIND_I16: return json_object_new_int64(v->value.i16);
	case AMQP_FIELD_KIND_U16: return json_object_new_int64(v->value.u16);
	case AMQP_FIELD_KIND_I32: return json_object_new_int64(v->value.i32);
	case AMQP_FIELD_KIND_U32: return json_object_new_int64(v->value.u32);
	case AMQP_FIELD_KIND_I64: return json_object_new_int64(v->value.i64);
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP: return json_object_new_int64((int64_t)v->value.u64);
	case AMQP_FIELD_KIND_F32: return json_object_new_double(v->value.f32);
	case AMQP_FIELD_KIND_F64: return json_object_new_double(v->value.f64);
	case AMQP_FIELD_KIND_TABLE: {
		struct json_object *o = json_object_new_object();
		for (int i = 0; i < v->value.table.num_entries; i++) {
			const amqp_table_entry_t *e = &v->value.table.entries[i];
			char key[256];
			snprintf(key, sizeof(key), "%.*s", (int)e->key.len, (const char *)e->key.bytes);
			json_object_object_add(o, key, field_json(&e->value));
		}
		return o;
	}
	case AMQP_FIELD_KIND_ARRAY: {
		struct json_object *a = json_object_new_array();
		for (int i = 0; i < v->value.array.num_entries; i++)
			json_object_array_add(a, field_json(&v->value.array.entries[i]));
		return a;
	}
	default:
		return NULL;
	}
}

static void show(const struct ctl *c, const struct broker_msg *m, size_t pos)
{
	const amqp_basic_properties_t *p = &m->env.message.properties;
	struct dead_info d;
	dead_info(m, &d);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "position", json_object_new_int64((int64_t)pos));
	json_object_object_add(o, "message_id", json_object_new_string(m->message_id));
	json_object_object_add(o, "type", json_object_new_string(m->type_name));
	json_object_object_add(o, "timestamp", json_object_new_int64(m->timestamp_s));
	json_object_object_add(o, "reply_to", json_object_new_string(m->reply_to));
	json_object_object_add(o, "correlation_id", json_object_new_string(m->correlation_id));
	json_object_object_add(o, "delivery_mode", json_object_new_int(
		(p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? p->delivery_mode : 0));
	const char *why = not_replayable(m, &d);
	json_object_object_add(o, "replayable", json_object_new_boolean(!why));
	if (why)
		json_object_object_add(o, "not_replayable", json_object_new_string(why));
	amqp_field_value_t h = { .kind = AMQP_FIELD_KIND_TABLE,
				 .value.table = headers_of(m) ? *headers_of(m)
							      : (amqp_table_t){ 0 } };
	json_object_object_add(o, "headers", field_json(&h));
	json_object_object_add(o, "body", json_object_new_string_len(m->body, (int)m->len));
	int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
		    (c->json ? JSON_C_TO_STRING_PLAIN : JSON_C_TO_STRING_PRETTY);
	if (c->json) {
		printf("%s\n", json_object_to_json_string_ext(o, flags));
	} else {
		json_object_object_del(o, "body");
		printf("%s\nbody:\n%.*s\n", json_object_to_json_string_ext(o, flags), (int)m->len,
		       m->body);
	}
	json_object_put(o);
}

/* The index of the dead letter named by arg (a position or a message_id). */
static size_t find(const struct dead_list *l, const char *arg)
{
	if (arg[0] && strspn(arg, "0123456789") == strlen(arg)) {
		size_t pos = (size_t)strtoull(arg, NULL, 10);
		return pos >= 1 && pos <= l->n ? pos - 1 : l->n;
	}
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->msgs[i].message_id, arg) == 0)
			return i;
	return l->n;
}

/* Replay one dead letter: publish, wait for the confirm, then ack. */
static int replay_one(const struct ctl *c, struct broker *b, const struct broker_msg *m,
		      size_t pos)
{
	struct dead_info d;
	dead_info(m, &d);
	const char *why = not_replayable(m, &d);
	const char *id = m->message_id[0] ? m->message_id : "-";
	if (why) {
		fprintf(stderr, "paytxctl: dead letter %zu (%s, %s) not replayed: %s\n", pos, id,
			m->type_name[0] ? m->type_name : "untyped", why);
		return CTL_REJECTED;
	}
	if (!c->dry_run) {
		int err = broker_republish(b, m, BROKER_SUBMIT_EXCHANGE, BROKER_SUBMIT_QUEUE,
					   dead_headers);
		if (!err)
			err = broker_flush(b);
		if (err) {
			fprintf(stderr, "paytxctl: the broker did not confirm the replay of %s "
					"(%s); the dead letter is kept\n", id, paytx_errcode(err));
			return CTL_FAILED;
		}
		if (broker_ack(b, m->tag)) {
			fprintf(stderr, "paytxctl: replayed %s but could not remove the dead "
					"letter; it will be listed (and replayable) again\n", id);
			return CTL_FAILED;
		}
	}
	if (c->json) {
		printf("{\"position\":%zu,\"message_id\":", pos);
		ctl_json_string(m->message_id);
		printf(",\"payment_id\":");
		if (d.payment_id[0])
			ctl_json_string(d.payment_id);
		else
			printf("null");
		printf(",\"to\":\"%s\",\"replayed\":%s}\n", BROKER_SUBMIT_EXCHANGE,
		       c->dry_run ? "false" : "true");
	} else {
		printf("%s %zu (%s, payment %s) to exchange %s\n",
		       c->dry_run ? "would replay" : "replayed", pos, id,
		       d.payment_id[0] ? d.payment_id : "-", BROKER_SUBMIT_EXCHANGE);
	}
	return CTL_OK;
}

static int replay(const struct ctl *c, struct broker *b, const struct dead_list *l)
{
	if (!c->all) {
		size_t i = find(l, c->argv[1]);
		if (i == l->n) {
			fprintf(stderr, "paytxctl: no dead letter %s\n", c->argv[1]);
			return CTL_NOT_FOUND;
		}
		return replay_one(c, b, &l->msgs[i], i + 1);
	}
	int rc = CTL_OK;
	for (size_t i = 0; i < l->n; i++) {
		int r = replay_one(c, b, &l->msgs[i], i + 1);
		if (r == CTL_FAILED)
			return r;
		if (r)
			rc = r;
	}
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: paytxctl dead list|show N|MESSAGE_ID|replay N|MESSAGE_ID|--all "
			"[--dry-run] (see paytxctl dead --help)\n");
	return CTL_USAGE;
}

int ctl_dead(struct ctl *c)
{
	const char *sub = c->argc > 0 ? c->argv[0] : "";
	bool list = strcmp(sub, "list") == 0, show_cmd = strcmp(sub, "show") == 0;
	bool replay_cmd = strcmp(sub, "replay") == 0;
	if ((list && c->argc != 1) || (show_cmd && c->argc != 2) ||
	    (replay_cmd && c->argc != (c->all ? 1 : 2)) || (!list && !show_cmd && !replay_cmd) ||
	    (!replay_cmd && (c->all || c->dry_run)) || (!list && c->limit))
		return usage();
	int64_t limit = ctl_count_option("--limit", c->limit, 100, DEAD_READ_MAX);
	if (limit < 0)
		return CTL_USAGE;
	struct broker *b = dead_connect(c);
	if (!b)
		return CTL_FAILED;
	struct dead_list l;
	int rc = dead_read(b, list ? (size_t)limit : 0, &l) ? CTL_FAILED : CTL_OK;
	if (rc) {
		fprintf(stderr, "paytxctl: cannot read %s (does the user have read permission on "
				"it?)\n", BROKER_DEAD_QUEUE);
	} else if (list) {
		if (c->json)
			print_list_json(&l, l.n);
		else
			print_list_text(&l, l.n);
	} else if (show_cmd) {
		size_t i = find(&l, c->argv[1]);
		if (i == l.n) {
			fprintf(stderr, "paytxctl: no dead letter %s\n", c->argv[1]);
			rc = CTL_NOT_FOUND;
		} else {
			show(c, &l.msgs[i], i + 1);
		}
	} else {
		rc = replay(c, b, &l);
	}
	/* Everything not replayed goes back where it was. */
	if (broker_connected(b) && broker_requeue_all(b) && rc == CTL_OK)
		rc = CTL_FAILED;
	dead_free(&l);
	broker_destroy(b);
	return rc;
}

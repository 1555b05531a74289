/* The queue type setting: its values, declare arguments and refusals. */
#include "queue_type.h"

#include <stdio.h>
#include <string.h>

#define DOC_HINT "see docs/operations.md, \"RabbitMQ cluster\""

static const char *const names[] = {
	[QUEUE_TYPE_CLASSIC] = "classic",
	[QUEUE_TYPE_QUORUM] = "quorum",
};

static amqp_table_entry_t str_arg(const char *key, const char *value)
{
	return (amqp_table_entry_t){ .key = amqp_cstring_bytes(key),
				     .value = { .kind = AMQP_FIELD_KIND_UTF8,
						.value.bytes = amqp_cstring_bytes(value) } };
}

/* The text between open and the next quote after it in s, into out. */
static bool quoted_after(const char *s, const char *open, char *out, size_t outlen)
{
	const char *p = strstr(s, open);
	if (!p)
		return false;
	p += strlen(open);
	const char *end = strchr(p, '\'');
	if (!end)
		return false;
	snprintf(out, outlen, "%.*s", (int)(end - p), p);
	return true;
}

int queue_type_parse(const char *value, enum queue_type *out)
{
	for (size_t i = 0; value && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(value, names[i]) == 0) {
			*out = (enum queue_type)i;
			return 0;
		}
	return PAYTX_ECONFIG;
}

int queue_type_check(const char *value)
{
	enum queue_type t;
	return queue_type_parse(value, &t);
}

const char *queue_type_name(enum queue_type t)
{
	return (size_t)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?";
}

int queue_type_args(enum queue_type t, bool dlx, amqp_table_entry_t *e)
{
	if (t != QUEUE_TYPE_QUORUM)
		return 0;
	int n = 0;
	e[n++] = str_arg("x-queue-type", "quorum");
	if (dlx) {
		/* At-most-once (the default) drops a message whose dead-lettering
		 * fails; at-least-once keeps it until paytx.dead has it. */
		e[n++] = str_arg("x-dead-letter-strategy", "at-least-once");
		e[n++] = str_arg("x-overflow", "reject-publish");
	}
	return n;
}

/* The type of the queue that refused a declare of type want because of
 * argument arg, or NULL when arg says nothing about it. Which differing
 * argument RabbitMQ names first depends on its version, so each of those
 * only paytx's quorum declare sets counts: the queue has it and the declare
 * has not (want classic), or the other way round. */
static const char *existing_type(enum queue_type want, const char *arg, const char *text,
				 char *value, size_t valuelen)
{
	if (strcmp(arg, "x-queue-type") == 0)
		return quoted_after(text, "current is the value '", value, valuelen) ? value
										       : "classic";
	if (strcmp(arg, "x-dead-letter-strategy") == 0 || strcmp(arg, "x-overflow") == 0)
		return queue_type_name(want == QUEUE_TYPE_QUORUM ? QUEUE_TYPE_CLASSIC
								 : QUEUE_TYPE_QUORUM);
	return NULL;
}

bool queue_type_refusal(enum queue_type want, const char *queue, const char *reply_text,
			size_t len, char *out, size_t outlen)
{
	char text[512], arg[64], value[64];
	snprintf(text, sizeof(text), "%.*s", (int)(len < sizeof(text) ? len : sizeof(text) - 1),
		 reply_text);
	if (!quoted_after(text, "inequivalent arg '", arg, sizeof(arg)))
		return false;
	const char *why = strstr(text, "received ");
	const char *have = existing_type(want, arg, text, value, sizeof(value));
	if (have)
		snprintf(out, outlen,
			 "queue %s exists as a %s queue but PAYTX_QUEUE_TYPE is %s: set "
			 "PAYTX_QUEUE_TYPE=%s in every paytx process, or drain and delete the "
			 "queue so that it is declared again (a queue's type cannot change; "
			 DOC_HINT "; RabbitMQ: '%s' %s)",
			 queue, have, queue_type_name(want), have, arg, why ? why : "differs");
	else
		snprintf(out, outlen,
			 "queue %s exists with other arguments than paytx declares with "
			 "PAYTX_QUEUE_TYPE=%s ('%s': %s): it was created by hand or by another "
			 "release; drain and delete it so that it is declared again (" DOC_HINT ")",
			 queue, queue_type_name(want), arg, why ? why : "differs");
	return true;
}

/* Process counters and their Prometheus text rendering. */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define METRICS_MAX 512
#define LABEL_VALUE_MAX 64

struct metric_def {
	const char *name;
	const char *help;
};

static const struct metric_def defs[] = {
	{ METRIC_DEAD_LETTERS,
	  "Messages refused and copied to paytx.dead, by error code and origin queue." },
};

struct counter {
	const struct metric_def *def;
	const char *k[2];
	char v[2][LABEL_VALUE_MAX];
	uint64_t value;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter counters[METRICS_MAX];
static size_t ncounters;
static bool full_logged;

static const struct metric_def *def_find(const char *name)
{
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
		if (strcmp(defs[i].name, name) == 0)
			return &defs[i];
	return NULL;
}

static bool label_eq(const char *k, const char *v, const char *ck, const char *cv)
{
	if (!k || !ck)
		return !k && !ck;
	return strcmp(k, ck) == 0 && strncmp(v ? v : "", cv, LABEL_VALUE_MAX - 1) == 0;
}

static struct counter *find(const struct metric_def *d, const char *k1, const char *v1,
			    const char *k2, const char *v2)
{
	for (size_t i = 0; i < ncounters; i++) {
		struct counter *c = &counters[i];
		if (c->def == d && label_eq(k1, v1, c->k[0], c->v[0]) &&
		    label_eq(k2, v2, c->k[1], c->v[1]))
			return c;
	}
	return NULL;
}

uint64_t metrics_inc(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2, uint64_t by)
{
	const struct metric_def *d = def_find(name);
	uint64_t value = 0;
	if (!d)
		return 0;
	pthread_mutex_lock(&lock);
	struct counter *c = find(d, k1, v1, k2, v2);
	if (!c && ncounters < METRICS_MAX) {
		c = &counters[ncounters++];
		*c = (struct counter){ .def = d, .k = { k1, k2 } };
		snprintf(c->v[0], sizeof(c->v[0]), "%s", k1 && v1 ? v1 : "");
		snprintf(c->v[1], sizeof(c->v[1]), "%s", k2 && v2 ? v2 : "");
	}
	if (c) {
		c->value += by;
		value = c->value;
	}
	bool warn = !c && !full_logged;
	full_logged |= warn;
	pthread_mutex_unlock(&lock);
	if (warn)
		log_warn("metrics: more than %d counters; new ones are not kept", METRICS_MAX);
	return value;
}

uint64_t metrics_get(const char *name, const char *k1, const char *v1, const char *k2,
		     const char *v2)
{
	const struct metric_def *d = def_find(name);
	pthread_mutex_lock(&lock);
	struct counter *c = d ? find(d, k1, v1, k2, v2) : NULL;
	uint64_t value = c ? c->value : 0;
	pthread_mutex_unlock(&lock);
	return value;
}

uint64_t metrics_sum(const char *name)
{
	uint64_t sum = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ncounters; i++)
		if (strcmp(counters[i].def->name, name) == 0)
			sum += counters[i].value;
	pthread_mutex_unlock(&lock);
	return sum;
}

/* Append v with backslash, double quote and newline escaped. */
static int append_escaped(struct paytx_buf *out, const char *v)
{
	int err = 0;
	for (const char *p = v; !err && *p; p++) {
		if (*p == '\\' || *p == '"')
			err = paytx_buf_append(out, "\\", 1) || paytx_buf_append(out, p, 1);
		else if (*p == '\n')
			err = paytx_buf_append(out, "\\n", 2);
		else
			err = paytx_buf_append(out, p, 1);
	}
	return err ? PAYTX_ENOMEM : 0;
}

static int render_counter(struct paytx_buf *out, const struct counter *c)
{
	char num[32];
	int err = paytx_buf_append(out, c->def->name, strlen(c->def->name));
	for (int i = 0; !err && i < 2 && c->k[i]; i++) {
		err = paytx_buf_append(out, i ? ",": "{", 1) ||
		      paytx_buf_append(out, c->k[i], strlen(c->k[i])) ||
		      paytx_buf_append(out, "=\"", 2) || append_escaped(out, c->v[i]) ||
		      paytx_buf_append(out, "\"", 1);
	}
	if (!err && c->k[0])
		err = paytx_buf_append(out, "}", 1);
	int n = snprintf(num, sizeof(num), " %" PRIu64 "\n", c->value);
	return err || paytx_buf_append(out, num, (size_t)n) ? PAYTX_ENOMEM : 0;
}

int metrics_render(struct paytx_buf *out)
{
	int err = 0;
	pthread_mutex_lock(&lock);
	for (size_t d = 0; !err && d < sizeof(defs) / sizeof(defs[0]); d++) {
		char head[512];
		int n = snprintf(head, sizeof(head), "# HELP %s %s\n# TYPE %s counter\n",
				 defs[d].name, defs[d].help, defs[d].name);
		err = paytx_buf_append(out, head, (size_t)n);
		for (size_t i = 0; !err && i < ncounters; i++)
			if (counters[i].def == &defs[d])
				err = render_counter(out, &counters[i]);
	}
	pthread_mutex_unlock(&lock);
	return err ? PAYTX_ENOMEM : 0;
}

/* Structured log lines on stderr: JSON lines or readable text. */
#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "paytx/error.h"

static const char *log_component = "paytx";
static enum log_level log_level = LOG_INFO;
static int log_json = 1;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static void json_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

static void format_time(char *out, size_t n)
{
	int64_t ms = clock_wall_ms();
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t len = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + len, n - len, ".%03dZ", (int)(ms % 1000));
}

void log_init(const char *component)
{
	log_component = component;
	log_json = !isatty(STDERR_FILENO);
	const char *fmt = getenv("PAYTX_LOG_FORMAT");
	if (fmt && strcmp(fmt, "text") == 0)
		log_json = 0;
	else if (fmt && strcmp(fmt, "json") == 0)
		log_json = 1;
	const char *lvl = getenv("PAYTX_LOG_LEVEL");
	if (lvl && log_set_level_name(lvl) != 0)
		fprintf(stderr, "PAYTX_LOG_LEVEL: unknown level, using info\n");
}

int log_set_level_name(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			log_level = (enum log_level)i;
			return 0;
		}
	}
	return PAYTX_ECONFIG;
}

void log_set_format_json(int json)
{
	log_json = json;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
	if (level < log_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	char ts[40];
	format_time(ts, sizeof(ts));

	flockfile(stderr);
	if (log_json) {
		fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"", ts,
			level_names[level]);
		json_escape(stderr, log_component);
		fputs("\",\"msg\":\"", stderr);
		json_escape(stderr, msg);
		fputc('"', stderr);
		if (ctx && ctx->payment_id && ctx->payment_id[0]) {
			fputs(",\"payment_id\":\"", stderr);
			json_escape(stderr, ctx->payment_id);
			fputc('"', stderr);
		}
		if (ctx && ctx->txn)
			fprintf(stderr, ",\"txn\":%lld", (long long)ctx->txn);
		fputs("}\n", stderr);
	} else {
		fprintf(stderr, "%s %-5s %s: %s", ts, level_names[level], log_component, msg);
		if (ctx && ctx->payment_id && ctx->payment_id[0])
			fprintf(stderr, " payment_id=%s", ctx->payment_id);
		if (ctx && ctx->txn)
			fprintf(stderr, " txn=%lld", (long long)ctx->txn);
		fputc('\n', stderr);
	}
	funlockfile(stderr);
}

/* Redact "scheme://user:PASSWORD@host" and "password=VALUE" forms. */
void log_redact(const char *s, char *out, size_t outsz)
{
	char tmp[1024];
	if (outsz == 0)
		return;
	snprintf(tmp, sizeof(tmp), "%s", s ? s : "");
	const char *scheme = strstr(tmp, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *colon = at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
	if (colon)
		snprintf(out, outsz, "%.*s:***%s", (int)(colon - tmp), tmp, at);
	else
		snprintf(out, outsz, "%s", tmp);

	char *pw = strstr(out, "password=");
	if (pw) {
		char *v = pw + strlen("password=");
		char *end = v;
		while (*end && !isspace((unsigned char)*end) && *end != '&')
			end++;
		snprintf(tmp, sizeof(tmp), "%.*s***%s", (int)(v - out), out, end);
		snprintf(out, outsz, "%s", tmp);
	}
}

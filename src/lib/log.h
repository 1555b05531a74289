/* Structured logging for every paytx process.
 *
 * One line per event on stderr: JSON lines (level, ts, component, msg and
 * fields) by default, readable text when stderr is a terminal or
 * PAYTX_LOG_FORMAT=text. Level from PAYTX_LOG_LEVEL (debug|info|warn|error).
 * Callers must never pass secrets or payment metadata. Single-threaded
 * processes; log_init once from main before any other call.
 */
#ifndef PAYTX_LOG_H
#define PAYTX_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* component is borrowed and must outlive the process (a literal). */
void log_init(const char *component);
int log_set_level_name(const char *name); /* 0 or PAYTX_ECONFIG */
void log_set_format_json(int json);
enum log_level log_get_level(void);

/* Context fields attached to one line: payment_id and txn are optional
 * (NULL / 0 to omit). */
struct log_ctx {
	const char *payment_id;
	int64_t txn;
};

void log_msg(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, NULL, __VA_ARGS__)
#define log_txn(level, pid, txnid, ...) \
	log_msg(level, &(struct log_ctx){ .payment_id = (pid), .txn = (txnid) }, __VA_ARGS__)

/* Copy url/dsn into out with any password replaced by "***". */
void log_redact(const char *secretish, char *out, size_t outsz);

#endif

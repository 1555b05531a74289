/* Configuration from environment variables, overridden by flags.
 *
 * A program lists its settings in a table of struct config_def; config_load
 * reads PAYTX_* variables, then "--flag=value" / "--flag value" arguments,
 * handles --help (prints usage, exits 0) and --check-config (validate and
 * exit without connecting: see config.check_only). An unknown flag or a
 * missing required setting fails with a message naming the setting. Values
 * are borrowed from the environment / argv. Secrets are never printed.
 */
#ifndef PAYTX_CONFIG_H
#define PAYTX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"

#define CONFIG_MAX 48

enum config_flags {
	CONFIG_SECRET = 1 << 0,   /* never echo the value */
	CONFIG_REQUIRED = 1 << 1, /* no default: must be set */
};

struct config_def {
	const char *env;   /* e.g. "PAYTX_AMQP_URL" */
	const char *flag;  /* e.g. "amqp-url" for --amqp-url */
	const char *dflt;  /* default value, NULL for none */
	const char *help;
	unsigned flags;    /* enum config_flags */
};

struct config {
	const struct config_def *defs; /* borrowed table */
	size_t n;
	const char *values[CONFIG_MAX];
	bool check_only;               /* --check-config given */
	int argi;                      /* first positional argument in argv */
};

/* usage is the one-line synopsis after the program name. Returns 0, or
 * PAYTX_ECONFIG after printing why on stderr. Exits 0 on --help. */
int config_load(struct config *c, const struct config_def *defs, size_t n, int argc,
		char **argv, const char *prog, const char *usage, const char *summary) PAYTX_MUST_CHECK;
void config_print_help(const struct config *c, const char *prog, const char *usage,
		       const char *summary);
/* Value of the setting named by env (NULL when unset and no default). */
const char *config_str(const struct config *c, const char *env);
/* Parse an integer setting within [min, max]; on failure prints a message
 * naming the setting and returns PAYTX_ECONFIG. */
int config_int(const struct config *c, const char *env, int64_t min, int64_t max,
	       int64_t *out) PAYTX_MUST_CHECK;

/* Validate the setting named by env with check (0 = valid); on failure
 * print "setting ENV: what" (never the value) and return PAYTX_ECONFIG.
 * An unset optional setting passes. */
int config_check(const struct config *c, const char *env, int (*check)(const char *value),
		 const char *what) PAYTX_MUST_CHECK;

#endif

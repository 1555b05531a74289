/* Settings from PAYTX_* environment variables, overridden by --flags. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int config_find_flag(const struct config *c, const char *arg, size_t len)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->defs[i].flag && strlen(c->defs[i].flag) == len &&
		    strncmp(c->defs[i].flag, arg, len) == 0)
			return (int)i;
	return -1;
}

void config_print_help(const struct config *c, const char *prog, const char *usage,
		       const char *summary)
{
	printf("Usage: %s %s\n\n%s\n\nSettings (environment variable, flag, default):\n", prog,
	       usage, summary);
	for (size_t i = 0; i < c->n; i++) {
		const struct config_def *d = &c->defs[i];
		const char *dflt = d->dflt ? d->dflt : "(none)";
		if (d->flags & CONFIG_SECRET)
			dflt = d->dflt ? "(built-in)" : "(none)";
		printf("  %-26s --%-20s %s\n      %s%s\n", d->env, d->flag, dflt, d->help,
		       (d->flags & CONFIG_REQUIRED) ? " Required." : "");
	}
	printf("\n  --check-config   validate the settings and exit without connecting\n"
	       "  --help           show this help\n");
}

/* Handle one "--x[=v]" argument at argv[*i]; returns 0, 1 (was help) or error. */
static int config_flag(struct config *c, int argc, char **argv, int *i)
{
	const char *arg = argv[*i] + 2;
	if (strcmp(arg, "help") == 0)
		return 1;
	if (strcmp(arg, "check-config") == 0) {
		c->check_only = true;
		return 0;
	}
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	int idx = config_find_flag(c, arg, len);
	if (idx < 0) {
		fprintf(stderr, "unknown option --%.*s (see --help)\n", (int)len, arg);
		return PAYTX_ECONFIG;
	}
	if (eq) {
		c->values[idx] = eq + 1;
	} else if (*i + 1 < argc) {
		c->values[idx] = argv[++*i];
	} else {
		fprintf(stderr, "option --%s needs a value\n", c->defs[idx].flag);
		return PAYTX_ECONFIG;
	}
	return 0;
}

int config_load(struct config *c, const struct config_def *defs, size_t n, int argc,
		char **argv, const char *prog, const char *usage, const char *summary)
{
	memset(c, 0, sizeof(*c));
	if (n > CONFIG_MAX)
		return PAYTX_ECONFIG;
	c->defs = defs;
	c->n = n;
	for (size_t i = 0; i < n; i++) {
		const char *env = getenv(defs[i].env);
		c->values[i] = env && *env ? env : defs[i].dflt;
	}
	/* Flags may come anywhere before "--"; positional arguments keep their
	 * order and are moved to argv[argi..]. */
	int npos = 0;
	char *pos[256];
	bool rest = false;
	for (int i = 1; i < argc; i++) {
		if (!rest && strcmp(argv[i], "--") == 0) {
			rest = true;
			continue;
		}
		if (rest || strncmp(argv[i], "--", 2) != 0) {
			if (npos == (int)(sizeof(pos) / sizeof(pos[0])))
				return PAYTX_ECONFIG;
			pos[npos++] = argv[i];
			continue;
		}
		int r = config_flag(c, argc, argv, &i);
		if (r == 1) {
			config_print_help(c, prog, usage, summary);
			exit(0);
		}
		if (r < 0)
			return r;
	}
	c->argi = argc - npos;
	for (int i = 0; i < npos; i++)
		argv[c->argi + i] = pos[i];
	for (size_t k = 0; k < n; k++) {
		if ((defs[k].flags & CONFIG_REQUIRED) && !c->values[k]) {
			fprintf(stderr, "%s: setting %s (--%s) is required: %s\n", prog,
				defs[k].env, defs[k].flag, defs[k].help);
			return PAYTX_ECONFIG;
		}
	}
	return 0;
}

const char *config_str(const struct config *c, const char *env)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->defs[i].env, env) == 0)
			return c->values[i];
	return NULL;
}

int config_check(const struct config *c, const char *env, int (*check)(const char *value),
		 const char *what)
{
	const char *v = config_str(c, env);
	if (!v || check(v) == 0)
		return 0;
	fprintf(stderr, "setting %s: %s\n", env, what);
	return PAYTX_ECONFIG;
}

int config_int(const struct config *c, const char *env, int64_t min, int64_t max, int64_t *out)
{
	const char *v = config_str(c, env);
	char *end = NULL;
	errno = 0;
	long long x = v ? strtoll(v, &end, 10) : 0;
	if (!v || errno || end == v || *end || x < min || x > max) {
		fprintf(stderr, "setting %s: must be an integer in [%" PRId64 ", %" PRId64 "]\n",
			env, min, max);
		return PAYTX_ECONFIG;
	}
	*out = x;
	return 0;
}

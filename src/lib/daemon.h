/* Start-up checks shared by the daemons (coordinator, participants): the
 * settings every one of them has, validated before anything connects.
 * Call from main after config_load. */
#ifndef PAYTX_DAEMON_H
#define PAYTX_DAEMON_H

#include "config.h"
#include "paytx/error.h"

/* PAYTX_AMQP_URL, PAYTX_AMQP_TLS_CA/_CERT/_KEY (readable PEM files; a CA
 * for amqps), PAYTX_PG_DSN, PAYTX_HMAC_KEY and PAYTX_LOG_LEVEL (which it
 * also applies). Prints which setting is wrong, never its value; returns 0
 * or PAYTX_ECONFIG. */
int daemon_check_common(const struct config *c) PAYTX_MUST_CHECK;

/* After the settings are checked: refuse positional arguments, and end a
 * --check-config run. Returns -1 to go on, else the exit status for main. */
int daemon_should_exit(const struct config *c, int argc, char **argv, const char *prog);

#endif

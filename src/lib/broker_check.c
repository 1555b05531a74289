/* Checks of the broker settings, without connecting: the URL and the
 * TLS files (see daemon.c). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "broker.h"

int broker_url_check(const char *url)
{
	struct amqp_connection_info info;
	char *copy = url ? strdup(url) : NULL;
	int ok = copy && amqp_parse_url(copy, &info) == AMQP_STATUS_OK && info.port > 0 &&
		 info.port <= 65535 && info.host && *info.host;
	free(copy);
	return ok ? 0 : PAYTX_ECONFIG;
}

/* Does the file at path begin a PEM block whose label contains what?
 * Reads at most 64 KiB: enough for a bundle of a few certificates. */
static bool pem_file_has(const char *path, const char *what)
{
	char buf[65536];
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (const char *p = strstr(buf, "-----BEGIN "); p; p = strstr(p + 1, "-----BEGIN ")) {
		const char *end = strstr(p + 11, "-----");
		if (!end)
			break;
		const char *hit = strstr(p + 11, what);
		if (hit && hit < end)
			return true;
	}
	return false;
}

const char *broker_tls_key_problem(const char *cert, const char *key)
{
	if (!cert != !key)
		return "PAYTX_AMQP_TLS_CERT, PAYTX_AMQP_TLS_KEY: set both or neither";
	if (cert && !pem_file_has(cert, "CERTIFICATE"))
		return "PAYTX_AMQP_TLS_CERT: cannot read a PEM certificate from this file";
	if (key && !pem_file_has(key, "PRIVATE KEY"))
		return "PAYTX_AMQP_TLS_KEY: cannot read a PEM private key from this file";
	return NULL;
}

const char *broker_tls_ca_problem(const char *url, const char *ca)
{
	/* rabbitmq-c 0.11 never loads OpenSSL's default CA paths: amqps
	 * without a CA file trusts nothing and could never connect. */
	if (!ca)
		return url && strncmp(url, "amqps://", 8) == 0
			       ? "PAYTX_AMQP_TLS_CA: required with an amqps:// PAYTX_AMQP_URL "
				 "(the system's CA store is not used)"
			       : NULL;
	return pem_file_has(ca, "CERTIFICATE")
		       ? NULL
		       : "PAYTX_AMQP_TLS_CA: cannot read a PEM certificate from this file";
}

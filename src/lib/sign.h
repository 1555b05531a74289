/* HMAC-SHA256 signatures on protocol messages.
 *
 * The signature covers the AMQP type, a newline, then the exact body bytes,
 * and travels hex-encoded in the "x-paytx-signature" header. Keys come from
 * configuration (PAYTX_HMAC_KEY); verification is constant-time. A struct
 * sign_key is embedded (sign_key_init/finish), read-only after init and so
 * safe to share between threads.
 */
#ifndef PAYTX_SIGN_H
#define PAYTX_SIGN_H

#include <stddef.h>

#include "paytx/error.h"

#define SIGN_HEX_LEN 64
#define SIGN_HEADER "x-paytx-signature"

struct sign_key {
	unsigned char bytes[64];
	size_t len;
};

/* key is borrowed; at least 16 bytes. Returns 0 or PAYTX_ECONFIG. */
int sign_key_init(struct sign_key *k, const char *key, size_t len) PAYTX_MUST_CHECK;
void sign_key_finish(struct sign_key *k);

/* Writes SIGN_HEX_LEN hex chars plus NUL into hex. */
int sign_compute(const struct sign_key *k, const char *type, const void *body, size_t len,
		 char hex[SIGN_HEX_LEN + 1]) PAYTX_MUST_CHECK;
/* 0 when sig (sig_len bytes, not NUL-terminated) is right, PAYTX_ESIG otherwise. */
int sign_verify(const struct sign_key *k, const char *type, const void *body, size_t len,
		const char *sig, size_t sig_len) PAYTX_MUST_CHECK;

#endif

/* HMAC-SHA256 signatures on protocol messages.
 *
 * The signature covers the AMQP type, message_id and timestamp properties
 * and the exact body bytes, as
 *     type "\n" message_id "\n" timestamp "\n" body
 * (timestamp in decimal Unix seconds), and travels hex-encoded in the
 * "x-paytx-signature" header. Covering message_id and timestamp is what
 * lets a receiver refuse replays (see replay.h): a copy cannot be given a
 * new identity or a new time without the key. type and message_id may not
 * contain a newline (it would make the input ambiguous).
 *
 * Keys come from configuration (PAYTX_HMAC_KEY); verification is
 * constant-time. A struct sign_key is embedded (sign_key_init/finish),
 * read-only after init and so safe to share between threads.
 */
#ifndef PAYTX_SIGN_H
#define PAYTX_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "paytx/error.h"

#define SIGN_HEX_LEN 64
#define SIGN_HEADER "x-paytx-signature"

struct sign_key {
	unsigned char bytes[64];
	size_t len;
	void *keyed;       /* EVP_MAC_CTX with the key set: each MAC starts
			    * from a copy (fetching HMAC and setting the key
			    * cost more than the MAC itself) */
};

/* What a signature covers; every pointer is borrowed. */
struct sign_input {
	const char *type;         /* AMQP type property, NUL-terminated */
	const char *message_id;   /* AMQP message_id property, NUL-terminated */
	int64_t timestamp_s;      /* AMQP timestamp property, Unix seconds */
	const void *body;
	size_t len;
};

/* key is borrowed; at least 16 bytes. Returns 0 or PAYTX_ECONFIG. */
int sign_key_init(struct sign_key *k, const char *key, size_t len) PAYTX_MUST_CHECK;
void sign_key_finish(struct sign_key *k);

/* Writes SIGN_HEX_LEN hex chars plus NUL into hex. PAYTX_ESIG when the
 * input cannot be signed (a newline in type or message_id). */
int sign_compute(const struct sign_key *k, const struct sign_input *in,
		 char hex[SIGN_HEX_LEN + 1]) PAYTX_MUST_CHECK;
/* 0 when sig (sig_len bytes, not NUL-terminated) is right, PAYTX_ESIG otherwise. */
int sign_verify(const struct sign_key *k, const struct sign_input *in, const char *sig,
		size_t sig_len) PAYTX_MUST_CHECK;

#endif

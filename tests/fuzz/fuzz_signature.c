/* libFuzzer target: HMAC signatures of protocol messages (sign_compute, sign_verify).
 *
 * Input layout:
 *   byte 0          key length: 16 + byte % 49, so 16 to 64 bytes
 *   key             that many bytes
 *   type byte       paytx_msg_type_name(byte % 9), "unknown" included
 *   forged length   n: the last min(byte, what is left) bytes are a forged
 *                   signature; the bytes between are the body
 * Shorter inputs are ignored.
 *
 * A computed signature is 64 lower-case hex digits and verifies. It stops
 * verifying when any single body byte, any single hex digit, one key byte
 * or the message type changes, or when it is cut or extended by a byte.
 * It also stops verifying under another message_id or timestamp (what the
 * replay guard relies on). The forged signature (any bytes, any length)
 * verifies exactly when it equals the computed one, and never crashes the
 * check.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paytx/message.h"
#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NTYPES (PAYTX_MSG_OUTCOME + 1)
#define MSG_ID "f00dfeed-1-1"
#define MSG_TS 1795000000

/* What a signature covers, with a fixed message_id and timestamp. */
#define IN(t, b, l) (&(struct sign_input){ .type = (t), .message_id = MSG_ID, \
					    .timestamp_s = MSG_TS, .body = (b), .len = (l) })

static const char hex_digits[] = "0123456789abcdef";

/* A broken invariant: say which, and crash for libFuzzer. */
static void fail(const char *what, size_t at)
{
	fprintf(stderr, "fuzz_signature: %s (at %zu)\n", what, at);
	abort();
}

/* A heap copy of exactly len bytes (at least one byte allocated), so that
 * AddressSanitizer catches any read past what the caller passed. */
static char *copy(const void *p, size_t len)
{
	char *c = malloc(len ? len : 1);

	if (!c)
		abort();
	if (len)
		memcpy(c, p, len);
	return c;
}

static void expect(int rc, int want, const char *what, size_t at)
{
	if (rc != want)
		fail(what, at);
}

/* Every single-byte change of the body breaks the signature. */
static void check_body_flips(const struct sign_key *k, const char *type, const char *body,
			     size_t len, const char *sig)
{
	char *b = copy(body, len);

	for (size_t i = 0; i < len; i++) {
		b[i] ^= 0x01;
		expect(sign_verify(k, IN(type, b, len), sig, SIGN_HEX_LEN), PAYTX_ESIG,
		       "signature still verifies after a body byte changed", i);
		b[i] ^= 0x01;
	}
	free(b);
}

/* Every single hex digit changed to another hex digit breaks it. */
static void check_sig_flips(const struct sign_key *k, const char *type, const char *body,
			    size_t len, const char *hex)
{
	char *s = copy(hex, SIGN_HEX_LEN);

	for (size_t i = 0; i < SIGN_HEX_LEN; i++) {
		const char *d = strchr(hex_digits, s[i]);
		char was = s[i];

		s[i] = hex_digits[(d - hex_digits + 1) % 16];
		expect(sign_verify(k, IN(type, body, len), s, SIGN_HEX_LEN), PAYTX_ESIG,
		       "signature still verifies after a hex digit changed", i);
		s[i] = was;
	}
	free(s);
}

/* Another key of the same length breaks it; a short key is refused. */
static void check_key(const char *key, size_t key_len, unsigned t, const char *body,
		      size_t len, const char *hex)
{
	const char *type = paytx_msg_type_name((enum paytx_msg_type)t);
	struct sign_key k2;
	char *key2 = copy(key, key_len);

	key2[t % key_len] ^= 0x01;
	expect(sign_key_init(&k2, key2, key_len), 0, "sign_key_init refused a valid key", key_len);
	expect(sign_verify(&k2, IN(type, body, len), hex, SIGN_HEX_LEN), PAYTX_ESIG,
	       "signature verifies under another key", t % key_len);
	sign_key_finish(&k2);
	free(key2);
	expect(sign_key_init(&k2, key, 15), PAYTX_ECONFIG, "sign_key_init took a 15-byte key", 15);
}

/* Another message type, or a signature cut, extended or missing, fails. */
static void check_context(const struct sign_key *k, unsigned t, const char *body, size_t len,
			  const char *hex)
{
	const char *type = paytx_msg_type_name((enum paytx_msg_type)t);
	const char *other = paytx_msg_type_name((enum paytx_msg_type)((t + 1) % NTYPES));

	expect(sign_verify(k, IN(other, body, len), hex, SIGN_HEX_LEN), PAYTX_ESIG,
	       "signature verifies under another message type", t);
	expect(sign_verify(k, IN(type, body, len), hex, SIGN_HEX_LEN - 1), PAYTX_ESIG,
	       "a signature cut by one digit verifies", SIGN_HEX_LEN - 1);
	/* hex[64] is its NUL: a 65-byte header with a trailing NUL. */
	expect(sign_verify(k, IN(type, body, len), hex, SIGN_HEX_LEN + 1), PAYTX_ESIG,
	       "a signature with a trailing byte verifies", SIGN_HEX_LEN + 1);
	expect(sign_verify(k, IN(type, body, len), NULL, 0), PAYTX_ESIG,
	       "a missing signature verifies", 0);
	struct sign_input id = *IN(type, body, len), ts = id;
	id.message_id = "f00dfeed-1-2";
	ts.timestamp_s++;
	expect(sign_verify(k, &id, hex, SIGN_HEX_LEN), PAYTX_ESIG,
	       "signature verifies under another message_id", 0);
	expect(sign_verify(k, &ts, hex, SIGN_HEX_LEN), PAYTX_ESIG,
	       "signature verifies under another timestamp", 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *key, *body, *type;
	size_t key_len, body_len, forged_len, pos;
	struct sign_key k;
	char hex[SIGN_HEX_LEN + 1], *sig;
	const char *forged;
	unsigned t;
	int rc;

	if (size < 1)
		return 0;
	key_len = 16 + data[0] % 49;
	if (size < 1 + key_len + 2)
		return 0;
	key = in + 1;
	pos = 1 + key_len;
	t = data[pos++] % NTYPES;
	type = paytx_msg_type_name((enum paytx_msg_type)t);
	forged_len = data[pos++];
	if (forged_len > size - pos)
		forged_len = size - pos;
	body = in + pos;
	body_len = size - pos - forged_len;

	expect(sign_key_init(&k, key, key_len), 0, "sign_key_init refused a valid key", key_len);
	expect(sign_compute(&k, IN(type, body, body_len), hex), 0, "sign_compute failed", body_len);
	if (strspn(hex, hex_digits) != SIGN_HEX_LEN || hex[SIGN_HEX_LEN] != '\0')
		fail("sign_compute did not write 64 lower-case hex digits", 0);
	sig = copy(hex, SIGN_HEX_LEN);
	expect(sign_verify(&k, IN(type, body, body_len), sig, SIGN_HEX_LEN), 0,
	       "a computed signature does not verify", body_len);

	check_body_flips(&k, type, body, body_len, sig);
	check_sig_flips(&k, type, body, body_len, hex);
	check_key(key, key_len, t, body, body_len, sig);
	check_context(&k, t, body, body_len, hex);

	/* The forged signature is the input's tail, so reading past it is
	 * reading past libFuzzer's buffer. */
	forged = in + size - forged_len;
	rc = sign_verify(&k, IN(type, body, body_len), forged, forged_len);
	if (forged_len == SIGN_HEX_LEN && memcmp(forged, hex, SIGN_HEX_LEN) == 0)
		expect(rc, 0, "the right signature, given as input, does not verify", 0);
	else
		expect(rc, PAYTX_ESIG, "a forged signature does not give PAYTX_ESIG", forged_len);

	free(sig);
	sign_key_finish(&k);
	return 0;
}

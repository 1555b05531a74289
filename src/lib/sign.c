/* HMAC-SHA256 signatures of protocol messages (OpenSSL libcrypto). */
#include "sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* A MAC context with k's key set; NULL on failure. */
static EVP_MAC_CTX *keyed_new(const struct sign_key *k)
{
	EVP_MAC *hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
				OSSL_PARAM_construct_end() };
	EVP_MAC_free(hmac); /* the context keeps its own reference */
	if (ctx && !EVP_MAC_init(ctx, k->bytes, k->len, params)) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

int sign_key_init(struct sign_key *k, const char *key, size_t len)
{
	memset(k, 0, sizeof(*k));
	if (!key || len < 16 || len > sizeof(k->bytes))
		return PAYTX_ECONFIG;
	memcpy(k->bytes, key, len);
	k->len = len;
	k->keyed = keyed_new(k);
	return k->keyed ? 0 : PAYTX_ENOMEM;
}

void sign_key_finish(struct sign_key *k)
{
	EVP_MAC_CTX_free(k->keyed);
	k->keyed = NULL;
	OPENSSL_cleanse(k->bytes, sizeof(k->bytes));
	k->len = 0;
}

static int sign_raw(const struct sign_key *k, const struct sign_input *in, unsigned char mac[32])
{
	char ts[24];
	size_t maclen = 0;
	if (!in->type || !in->message_id || strchr(in->type, '\n') || strchr(in->message_id, '\n'))
		return PAYTX_ESIG;
	int tslen = snprintf(ts, sizeof(ts), "%" PRId64, in->timestamp_s);
	/* A copy of the keyed context: k stays read-only, so shareable. */
	EVP_MAC_CTX *ctx = k->keyed ? EVP_MAC_CTX_dup(k->keyed) : keyed_new(k);
	int ok = ctx && EVP_MAC_update(ctx, (const unsigned char *)in->type, strlen(in->type)) &&
		 EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) &&
		 EVP_MAC_update(ctx, (const unsigned char *)in->message_id,
				strlen(in->message_id)) &&
		 EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) &&
		 EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tslen) &&
		 EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) &&
		 EVP_MAC_update(ctx, in->body, in->len) && EVP_MAC_final(ctx, mac, &maclen, 32);
	EVP_MAC_CTX_free(ctx);
	return ok && maclen == 32 ? 0 : PAYTX_ESIG;
}

int sign_compute(const struct sign_key *k, const struct sign_input *in,
		 char hex[SIGN_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[32];
	int err = sign_raw(k, in, mac);
	if (err)
		return err;
	for (size_t i = 0; i < 32; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[SIGN_HEX_LEN] = '\0';
	return 0;
}

int sign_verify(const struct sign_key *k, const struct sign_input *in, const char *sig,
		size_t sig_len)
{
	char want[SIGN_HEX_LEN + 1];
	if (!sig || sig_len != SIGN_HEX_LEN)
		return PAYTX_ESIG;
	if (sign_compute(k, in, want) != 0)
		return PAYTX_ESIG;
	return CRYPTO_memcmp(want, sig, SIGN_HEX_LEN) == 0 ? 0 : PAYTX_ESIG;
}

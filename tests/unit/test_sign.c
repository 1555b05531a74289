/* Unit tests of protocol message signatures. */
#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "sign.h"

static const char body[] = "{\"txn\":1,\"payment_id\":\"p\"}";

/* The caller owns the result: sign_key_finish it. */
static struct sign_key key(const char *k)
{
	struct sign_key s;
	ck_assert_int_eq(sign_key_init(&s, k, strlen(k)), 0);
	return s;
}

static struct sign_input input(const char *type)
{
	return (struct sign_input){ .type = type, .message_id = "ab12-7-1",
				    .timestamp_s = 1795000000, .body = body,
				    .len = strlen(body) };
}

START_TEST(test_signature_verifies)
{
	struct sign_key k = key("0123456789abcdef0123");
	struct sign_input in = input("txn.commit");
	char hex[SIGN_HEX_LEN + 1];
	ck_assert_int_eq(sign_compute(&k, &in, hex), 0);
	ck_assert_uint_eq(strlen(hex), SIGN_HEX_LEN);
	ck_assert_int_eq(sign_verify(&k, &in, hex, SIGN_HEX_LEN), 0);
	sign_key_finish(&k);
}
END_TEST

START_TEST(test_known_hmac_sha256_vector)
{
	/* printf 'T\nm-1\n1700000000\nD' | openssl dgst -sha256 -hmac 'Jefe-Jefe-Jefe-Jefe!' */
	struct sign_key k = key("Jefe-Jefe-Jefe-Jefe!");
	struct sign_input in = { .type = "T", .message_id = "m-1", .timestamp_s = 1700000000,
				 .body = "D", .len = 1 };
	char hex[SIGN_HEX_LEN + 1];
	ck_assert_int_eq(sign_compute(&k, &in, hex), 0);
	ck_assert_str_eq(hex, "099acf753f498438b68ca4feddbaebf933beeff0158dcb1f517c41d3993da301");
	sign_key_finish(&k);
}
END_TEST

START_TEST(test_changed_body_type_or_key_fails)
{
	struct sign_key k = key("0123456789abcdef0123");
	struct sign_key other = key("0123456789abcdef0124");
	struct sign_input in = input("txn.commit");
	char hex[SIGN_HEX_LEN + 1];
	ck_assert_int_eq(sign_compute(&k, &in, hex), 0);
	struct sign_input abort_in = input("txn.abort");
	ck_assert_int_eq(sign_verify(&k, &abort_in, hex, SIGN_HEX_LEN), PAYTX_ESIG);
	struct sign_input cut = in;
	cut.len--;
	ck_assert_int_eq(sign_verify(&k, &cut, hex, SIGN_HEX_LEN), PAYTX_ESIG);
	ck_assert_int_eq(sign_verify(&other, &in, hex, SIGN_HEX_LEN), PAYTX_ESIG);
	sign_key_finish(&k);
	sign_key_finish(&other);
}
END_TEST

START_TEST(test_changed_message_id_or_timestamp_fails)
{
	/* A replayed copy cannot be given a new identity or a new time. */
	struct sign_key k = key("0123456789abcdef0123");
	struct sign_input in = input("txn.commit");
	char hex[SIGN_HEX_LEN + 1];
	ck_assert_int_eq(sign_compute(&k, &in, hex), 0);
	struct sign_input id = in, ts = in;
	id.message_id = "ab12-7-2";
	ts.timestamp_s++;
	ck_assert_int_eq(sign_verify(&k, &id, hex, SIGN_HEX_LEN), PAYTX_ESIG);
	ck_assert_int_eq(sign_verify(&k, &ts, hex, SIGN_HEX_LEN), PAYTX_ESIG);
	sign_key_finish(&k);
}
END_TEST

START_TEST(test_newline_in_type_or_message_id_is_refused)
{
	/* "a\nb" + "c" and "a" + "b\nc" would otherwise sign the same bytes. */
	struct sign_key k = key("0123456789abcdef0123");
	struct sign_input in = input("txn.commit");
	char hex[SIGN_HEX_LEN + 1];
	in.message_id = "x\ny-1";
	ck_assert_int_eq(sign_compute(&k, &in, hex), PAYTX_ESIG);
	in = input("txn.commit\nx");
	ck_assert_int_eq(sign_compute(&k, &in, hex), PAYTX_ESIG);
	sign_key_finish(&k);
}
END_TEST

START_TEST(test_truncated_or_empty_signature_fails)
{
	struct sign_key k = key("0123456789abcdef0123");
	struct sign_input in = input("txn.vote");
	char hex[SIGN_HEX_LEN + 1];
	ck_assert_int_eq(sign_compute(&k, &in, hex), 0);
	ck_assert_int_eq(sign_verify(&k, &in, hex, SIGN_HEX_LEN - 1), PAYTX_ESIG);
	ck_assert_int_eq(sign_verify(&k, &in, "", 0), PAYTX_ESIG);
	ck_assert_int_eq(sign_verify(&k, &in, NULL, 0), PAYTX_ESIG);
	sign_key_finish(&k);
}
END_TEST

START_TEST(test_short_key_is_refused)
{
	struct sign_key k;
	ck_assert_int_eq(sign_key_init(&k, "short", 5), PAYTX_ECONFIG);
	ck_assert_int_eq(sign_key_init(&k, NULL, 0), PAYTX_ECONFIG);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_signature_verifies),
		UNIT_CASE(test_known_hmac_sha256_vector),
		UNIT_CASE(test_changed_body_type_or_key_fails),
		UNIT_CASE(test_changed_message_id_or_timestamp_fails),
		UNIT_CASE(test_newline_in_type_or_message_id_is_refused),
		UNIT_CASE(test_truncated_or_empty_signature_fails),
		UNIT_CASE(test_short_key_is_refused),
	};
	return UNIT_RUN("sign", cases, NULL, NULL);
}

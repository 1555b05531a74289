/* Unit tests of the broker's TLS settings checks (no broker needed). */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"

#define URL "amqps://u:p@localhost:5671/v"

static char cert_path[64], key_path[64], other_path[64];

/* Only the PEM labels matter to the checks, not the base64 inside. */
static void write_file(char *path, const char *text)
{
	strcpy(path, "/tmp/paytx-test-broker-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void setup(void)
{
	write_file(cert_path, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
	write_file(key_path, "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n");
	write_file(other_path, "not PEM at all\n");
}

static void teardown(void)
{
	unlink(cert_path);
	unlink(key_path);
	unlink(other_path);
}

START_TEST(test_amqps_without_ca_is_refused)
{
	const char *why = broker_tls_ca_problem(URL, NULL);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_nonnull(strstr(why, "PAYTX_AMQP_TLS_CA"));
	ck_assert_ptr_null(strstr(why, "u:p@"));
}
END_TEST

START_TEST(test_plain_amqp_needs_no_ca)
{
	ck_assert_ptr_null(broker_tls_ca_problem("amqp://u:p@localhost:5672/v", NULL));
}
END_TEST

START_TEST(test_ca_file_must_hold_a_certificate)
{
	ck_assert_ptr_null(broker_tls_ca_problem(URL, cert_path));
	ck_assert_ptr_nonnull(broker_tls_ca_problem(URL, "/nonexistent/ca.pem"));
	ck_assert_ptr_nonnull(broker_tls_ca_problem(URL, key_path));
	ck_assert_ptr_nonnull(broker_tls_ca_problem(URL, other_path));
}
END_TEST

START_TEST(test_client_cert_and_key_go_together)
{
	ck_assert_ptr_null(broker_tls_key_problem(NULL, NULL));
	ck_assert_ptr_null(broker_tls_key_problem(cert_path, key_path));
	ck_assert_ptr_nonnull(broker_tls_key_problem(cert_path, NULL));
	ck_assert_ptr_nonnull(broker_tls_key_problem(NULL, key_path));
}
END_TEST

START_TEST(test_client_files_must_hold_their_kind)
{
	ck_assert_ptr_nonnull(strstr(broker_tls_key_problem(key_path, key_path),
				     "PAYTX_AMQP_TLS_CERT"));
	ck_assert_ptr_nonnull(strstr(broker_tls_key_problem(cert_path, cert_path),
				     "PAYTX_AMQP_TLS_KEY"));
	ck_assert_ptr_nonnull(broker_tls_key_problem(cert_path, "/nonexistent/key.pem"));
	ck_assert_ptr_nonnull(broker_tls_key_problem(other_path, key_path));
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_amqps_without_ca_is_refused),
		UNIT_CASE(test_plain_amqp_needs_no_ca),
		UNIT_CASE(test_ca_file_must_hold_a_certificate),
		UNIT_CASE(test_client_cert_and_key_go_together),
		UNIT_CASE(test_client_files_must_hold_their_kind),
	};
	return UNIT_RUN("broker", cases, setup, teardown);
}

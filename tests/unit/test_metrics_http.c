/* Unit tests of the metrics HTTP endpoint, over a real loopback socket. */
#include "unit.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics_http.h"

/* Send one HTTP/1.0 request to 127.0.0.1:port; the whole response in out. */
static void http(uint16_t port, const char *method, const char *path, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	char req[256];
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	size_t len = 0;
	ssize_t r;
	while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fd);
}

START_TEST(test_addresses_are_host_colon_port)
{
	static const char *const good[] = { "127.0.0.1:9464", "localhost:0", "[::1]:80",
					    "0.0.0.0:65535", "metrics.example:1" };
	static const char *const bad[] = { "", "127.0.0.1", "127.0.0.1:", ":9464", "::1:80",
					   "[::1:80", "[]:80", "h:65536", "h:9x", "h:-1",
					   "h:123456" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(metrics_http_addr_check(good[i]) == 0, "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(metrics_http_addr_check(bad[i]) == PAYTX_EINVAL, "%s", bad[i]);
}
END_TEST

START_TEST(test_serves_metrics_healthz_and_404)
{
	struct metrics_http *h;
	char resp[65536];
	metrics_inc(METRIC_STATUS_QUERIES, NULL, NULL, NULL, NULL, 4);
	ck_assert_int_eq(metrics_http_create("127.0.0.1:0", &h), 0);
	uint16_t port = metrics_http_port(h);
	ck_assert_uint_ne(port, 0);

	http(port, "GET", "/metrics", resp, sizeof(resp));
	ck_assert_ptr_nonnull(strstr(resp, " 200 "));
	ck_assert_ptr_nonnull(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
	ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\n# HELP "));
	ck_assert_ptr_nonnull(strstr(resp, "\npaytx_status_queries_total 4\n"));

	http(port, "GET", "/healthz", resp, sizeof(resp));
	ck_assert_ptr_nonnull(strstr(resp, " 200 "));
	ck_assert_ptr_nonnull(strstr(resp, "\r\n\r\nok\n"));

	http(port, "GET", "/", resp, sizeof(resp));
	ck_assert_ptr_nonnull(strstr(resp, " 404 "));
	http(port, "DELETE", "/metrics", resp, sizeof(resp));
	ck_assert_ptr_nonnull(strstr(resp, " 405 "));
	metrics_http_destroy(h);
	metrics_http_destroy(NULL);
}
END_TEST

START_TEST(test_a_port_in_use_or_a_bad_address_fails)
{
	struct metrics_http *a, *b;
	char addr[64];
	ck_assert_int_eq(metrics_http_create("127.0.0.1:0", &a), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)metrics_http_port(a));
	ck_assert_int_eq(metrics_http_create(addr, &b), PAYTX_ECONFIG);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(metrics_http_create("nonsense", &b), PAYTX_ECONFIG);
	ck_assert_ptr_null(b);
	metrics_http_destroy(a);
	/* Stopped: the port is free again. */
	ck_assert_int_eq(metrics_http_create(addr, &b), 0);
	metrics_http_destroy(b);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_addresses_are_host_colon_port),
		UNIT_CASE(test_serves_metrics_healthz_and_404),
		UNIT_CASE(test_a_port_in_use_or_a_bad_address_fails),
	};
	return UNIT_RUN("metrics_http", cases, NULL, NULL);
}

/* Serving the process metrics over HTTP (libmicrohttpd). */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define HOST_MAX 256
#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
	struct MHD_Daemon *daemon;
	uint16_t port;
};

/* Split "host:port" into host (brackets removed) and port. 0 or PAYTX_EINVAL. */
static int addr_split(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	if (!colon)
		return PAYTX_EINVAL;
	const char *h = addr, *hend = colon;
	if (*h == '[') {
		if (hend == h || hend[-1] != ']')
			return PAYTX_EINVAL;
		h++;
		hend--;
	} else if (memchr(h, ':', (size_t)(hend - h))) {
		return PAYTX_EINVAL; /* an IPv6 address needs brackets */
	}
	size_t n = (size_t)(hend - h), plen = strlen(colon + 1);
	if (n == 0 || n >= hostlen || memchr(h, ']', n) || memchr(h, '[', n) || plen == 0 ||
	    plen > 5 || plen >= portlen || strspn(colon + 1, "0123456789") != plen ||
	    atoi(colon + 1) > 65535)
		return PAYTX_EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	memcpy(port, colon + 1, plen + 1);
	return 0;
}

int metrics_http_addr_check(const char *addr)
{
	char host[HOST_MAX], port[8];
	return addr_split(addr, host, sizeof(host), port, sizeof(port));
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (ok == MHD_YES)
		ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	return reply(conn, status, "text/plain; charset=utf-8", text, strlen(text));
}

static enum MHD_Result serve_metrics(struct MHD_Connection *conn)
{
	struct paytx_buf b;
	paytx_buf_init(&b);
	enum MHD_Result ok;
	if (metrics_render(&b) == 0)
		ok = reply(conn, MHD_HTTP_OK, CONTENT_TYPE_METRICS, b.len ? b.data : "", b.len);
	else
		ok = reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	paytx_buf_finish(&b);
	return ok;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!get) {
		/* Refuse at once: no request body is read. */
		return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	}
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(conn);
	if (strcmp(url, "/healthz") == 0)
		return reply_text(conn, MHD_HTTP_OK, "ok\n");
	return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n");
}

/* A listening socket on host:port, its port in *bound. -1 with errno set
 * (or *gai set for a name that did not resolve). */
static int listen_on(const char *host, const char *port, uint16_t *bound, int *family, int *gai)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	*gai = getaddrinfo(host, port, &hints, &res);
	if (*gai)
		return -1;
	int fd = -1, one = 1;
	for (struct addrinfo *ai = res; fd < 0 && ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
		    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
			int e = errno;
			close(fd);
			fd = -1;
			errno = e;
			continue;
		}
		*family = ai->ai_family;
	}
	freeaddrinfo(res);
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	if (fd >= 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		*bound = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
							: ((struct sockaddr_in *)&sa)->sin_port);
	return fd;
}

int metrics_http_create(const char *addr, struct metrics_http **out)
{
	char host[HOST_MAX], port[8];
	int family = AF_INET, gai = 0;
	*out = NULL;
	if (addr_split(addr, host, sizeof(host), port, sizeof(port))) {
		log_error("metrics: address '%s' is not host:port", addr ? addr : "");
		return PAYTX_ECONFIG;
	}
	struct metrics_http *h = calloc(1, sizeof(*h));
	if (!h)
		return PAYTX_ENOMEM;
	int fd = listen_on(host, port, &h->port, &family, &gai);
	if (fd < 0) {
		log_error("metrics: cannot listen on %s: %s", addr,
			  gai ? gai_strerror(gai) : strerror(errno));
		free(h);
		return PAYTX_ECONFIG;
	}
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
				     MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				     MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				     MHD_OPTION_CONNECTION_LIMIT, 32u, MHD_OPTION_END);
	if (!h->daemon) {
		log_error("metrics: cannot start the HTTP server on %s", addr);
		close(fd);
		free(h);
		return PAYTX_ECONFIG;
	}
	*out = h;
	return 0;
}

uint16_t metrics_http_port(const struct metrics_http *h)
{
	return h->port;
}

void metrics_http_destroy(struct metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->daemon); /* closes the listening socket */
	free(h);
}

/* The metrics endpoint: an HTTP server (libmicrohttpd, its own thread)
 * answering GET /metrics with metrics_render's Prometheus text and
 * GET /healthz with "ok"; any other path is 404, any other method 405.
 *
 * The server thread only renders (under the metrics mutex) and never
 * touches a daemon's state, so a slow scraper cannot hold a loop back.
 * Created and destroyed by the daemon's main thread.
 */
#ifndef PAYTX_METRICS_HTTP_H
#define PAYTX_METRICS_HTTP_H

#include <stdint.h>

#include "paytx/error.h"

struct metrics_http;

/* Is addr "host:port" (host a name, an IPv4 address or a [bracketed] IPv6
 * address; port 0-65535)? 0 or PAYTX_EINVAL. Does not resolve the host. */
int metrics_http_addr_check(const char *addr);

/* Listen on addr (see metrics_http_addr_check; port 0 picks a free port)
 * and serve until metrics_http_destroy. On failure (bad address, host not
 * found, bind refused) logs why, naming addr, and returns
 * PAYTX_ECONFIG; *out is then NULL. */
int metrics_http_create(const char *addr, struct metrics_http **out) PAYTX_MUST_CHECK;
/* The port listened on (the chosen one when addr asked for port 0). */
uint16_t metrics_http_port(const struct metrics_http *h);
/* Stop serving and free. NULL does nothing. */
void metrics_http_destroy(struct metrics_http *h);

#endif

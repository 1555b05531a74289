/* The balance query service of paytx-cache (docs/cache.md): a thread that
 * consumes requests {"account": ID} from the paytx.balance queue (bound to
 * the paytx.balance fanout exchange, both declared here) and answers each on
 * its reply_to with its correlation_id:
 *   {"account", "currency", "balance", "held", "version", "external",
 *    "source": "cache"|"ledger"}  or  {"account", "error": CODE}
 * through the read path of balance.h. The thread owns its AMQP connection
 * (reconnected with backoff), its Redis connection and its PostgreSQL
 * connections. A request that is not a balance.query, not JSON with an
 * account id, or has no reply_to is refused: answered with the error when
 * it can be, and dead-lettered (rejected into paytx.dlx).
 *
 * The same thread refreshes the cache for accounts the participant hands
 * it after a commit (query_refresh): it reads them through the read path,
 * which installs a balance once the ledger has posted. The cache's commit
 * and the ledgers' postings of one payment race, so an account read while
 * still held (or while its ledger is unreachable) is read again every
 * QUERY_REFRESH_RETRY_MS, up to QUERY_REFRESH_ATTEMPTS times. This keeps
 * ledger reads out of the participant's commit (the coordinator waits for
 * that ack). query_refresh may be called from any thread.
 */
#ifndef PAYTX_CACHE_QUERY_H
#define PAYTX_CACHE_QUERY_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "balance.h"
#include "cachestore.h"
#include "paytx/error.h"

#define QUERY_QUEUE "paytx.balance"
#define QUERY_REFRESH_MAX 1024     /* accounts waiting; more are dropped */
#define QUERY_REFRESH_RETRY_MS 200 /* between reads of a still-held account */
#define QUERY_REFRESH_ATTEMPTS 50  /* reads of one account at most: 10 s */

/* An account to read again. */
struct query_refresh {
	char account[PAYTX_ID_MAX + 1];
	int attempts;                /* reads so far */
	int64_t due_ms;              /* monotonic: not read before */
};

struct query_config {
	const char *amqp_url;        /* borrowed, like the rest */
	const char *tls_ca, *tls_cert, *tls_key;
	const char *shards, *ledger_dsns, *coord_dsn;
	volatile sig_atomic_t *stop;
};

struct query {
	struct query_config cfg;
	struct cachestore *cs;       /* owned */
	struct balance_reader reader;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;          /* guards the refresh ring */
	struct query_refresh *refresh; /* owned ring of QUERY_REFRESH_MAX, an
					* account at most once */
	size_t refresh_head, refresh_n;
	uint64_t refresh_dropped;
	char id_prefix[40];          /* of the replies' message ids */
	uint64_t msg_counter;
};

/* cs is taken over. */
int query_init(struct query *q, const struct query_config *cfg,
	       struct cachestore *cs) PAYTX_MUST_CHECK;
int query_start(struct query *q) PAYTX_MUST_CHECK;
void query_finish(struct query *q);

/* Ask the thread to re-read account soon (copied; dropped when full). */
void query_refresh(struct query *q, const char *account);

/* The reply body for one request body (pure but for the read itself):
 * fills out (size n). Returns PAYTX_EINVAL when the request itself is
 * invalid (out is then its error reply), else 0 (out may still be an error
 * such as not_found). */
int query_answer(struct balance_reader *r, const char *body, size_t len, char *out, size_t n);

#endif

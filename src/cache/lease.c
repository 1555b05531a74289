/* paytx-cache's coherence lease: establish, renew, sweep. */
#include "lease.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "pg.h"
#include "pgpart.h"

#define LEASE_SWEEP_MAX 512

/* Payments whose cache commit may not have run yet: not finished
 * (`pending` lets the log's index of its open set find them). */
static const char sql_open[] = "SELECT txn, request FROM payments "
			       "WHERE pending AND state IN ('preparing', 'committing')";
static const char sql_finished[] =
	"SELECT txn, state = 'committed' FROM payments "
	"WHERE txn = ANY($1::bigint[]) AND state IN ('committed', 'aborted')";

static void add_account(const char *id, char (*out)[PAYTX_ID_MAX + 1], size_t max, size_t *n)
{
	if (!id || !paytx_id_valid(id, strlen(id)))
		return;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(out[i], id) == 0)
			return;
	if (*n < max)
		snprintf(out[(*n)++], PAYTX_ID_MAX + 1, "%s", id);
}

static const char *obj_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : NULL;
}

int lease_request_accounts(const char *request, char (*out)[PAYTX_ID_MAX + 1], size_t max,
			   size_t *n)
{
	struct json_object *legs, *root = json_tokener_parse(request);
	*n = 0;
	if (!root || !json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		return PAYTX_EJSON;
	}
	add_account(obj_str(root, "from"), out, max, n);
	add_account(obj_str(root, "to"), out, max, n);
	if (json_object_object_get_ex(root, "legs", &legs) &&
	    json_object_is_type(legs, json_type_array))
		for (size_t i = 0; i < json_object_array_length(legs); i++)
			add_account(obj_str(json_object_array_get_idx(legs, i), "account"), out,
				    max, n);
	json_object_put(root);
	return *n ? 0 : PAYTX_EINVAL;
}

int lease_init(struct lease *l, struct cachestore *cs, const char *coord_dsn, int64_t lease_ms,
	       int64_t timeout_ms, int64_t sweep_ms, volatile sig_atomic_t *stop)
{
	memset(l, 0, sizeof(*l));
	l->cs = cs;
	l->coord_dsn = coord_dsn;
	l->lease_ms = lease_ms;
	l->timeout_ms = timeout_ms;
	l->sweep_ms = sweep_ms;
	l->stop = stop;
	l->lost = true; /* nothing is trusted until the first epoch */
	/* A predecessor that died may have renewed an epoch just now: a yes
	 * vote without a mark waits for that lease too. */
	l->last_send_ms = clock_mono_ms();
	if (pthread_mutex_init(&l->mu, NULL)) {
		cachestore_destroy(cs);
		l->cs = NULL;
		return PAYTX_ENOMEM;
	}
	return 0;
}

int64_t lease_lost(struct lease *l)
{
	pthread_mutex_lock(&l->mu);
	l->losses++;
	if (!l->lost)
		log_warn("cache: coherence lost (a Redis write failed); readers go to the "
			 "ledger until a new epoch");
	l->lost = true;
	/* No SET or renewal is sent while lost, and the last one, sent at
	 * last_send_ms, set an absolute expiry lease_ms after it was sent
	 * (by our clock: timeout_ms is the margin for Redis's clock being
	 * behind ours), however late Redis applied it. */
	int64_t expired = l->last_send_ms + l->lease_ms + l->timeout_ms;
	l->epoch[0] = '\0';
	pthread_mutex_unlock(&l->mu);
	return expired;
}

static int coord_get(struct lease *l)
{
	if (l->coord && pg_broken(l->coord)) {
		PQfinish(l->coord);
		l->coord = NULL;
	}
	if (l->coord)
		return 0;
	return pg_connect(&l->coord, l->coord_dsn, "paytx-cache", NULL) ? PAYTX_EDB : 0;
}

/* Mark every transaction the coordinator log has not finished. */
static int mark_open(struct lease *l, size_t *marked)
{
	char accounts[PAYTX_LEGS_MAX][PAYTX_ID_MAX + 1];
	const char *ptrs[PAYTX_LEGS_MAX];
	*marked = 0;
	int err = coord_get(l);
	if (err)
		return err;
	PGresult *res = pg_query(l->coord, sql_open, 0, NULL);
	if (!res)
		return PAYTX_EDB;
	for (int i = 0; !err && i < PQntuples(res); i++) {
		int64_t txn;
		size_t n;
		if (pgpart_parse_int64(PQgetvalue(res, i, 0), &txn) ||
		    lease_request_accounts(PQgetvalue(res, i, 1), accounts, PAYTX_LEGS_MAX, &n)) {
			log_error("cache: cannot read the accounts of open txn %s",
				  PQgetvalue(res, i, 0));
			err = PAYTX_EDB; /* no epoch without every open txn marked */
			break;
		}
		for (size_t j = 0; j < n; j++)
			ptrs[j] = accounts[j];
		err = cachestore_mark(l->cs, txn, ptrs, n);
		(*marked)++;
	}
	PQclear(res);
	return err;
}

int lease_establish(struct lease *l)
{
	char epoch[CACHESTORE_EPOCH_MAX];
	size_t marked;
	pthread_mutex_lock(&l->mu);
	uint64_t losses = l->losses;
	pthread_mutex_unlock(&l->mu);
	int err = cachestore_drop_all(l->cs);
	if (!err)
		err = mark_open(l, &marked);
	if (err)
		return err;
	snprintf(epoch, sizeof(epoch), "%" PRId64 "-%08lx", clock_wall_ms(),
		 (unsigned long)random());
	pthread_mutex_lock(&l->mu);
	if (l->losses != losses) {
		pthread_mutex_unlock(&l->mu);
		return PAYTX_ECONFLICT;
	}
	l->last_send_ms = clock_mono_ms();
	err = cachestore_epoch_set(l->cs, epoch, clock_wall_ms() + l->lease_ms);
	if (!err) {
		snprintf(l->epoch, sizeof(l->epoch), "%s", epoch);
		l->lost = false;
	}
	pthread_mutex_unlock(&l->mu);
	if (!err)
		log_info("cache: coherent under epoch %s (%zu open txns marked)", epoch, marked);
	return err;
}

static void renew(struct lease *l)
{
	bool ours = false;
	pthread_mutex_lock(&l->mu);
	if (l->lost || !l->epoch[0]) {
		pthread_mutex_unlock(&l->mu);
		return;
	}
	int64_t sent = clock_mono_ms();
	int err = cachestore_epoch_renew(l->cs, l->epoch, clock_wall_ms() + l->lease_ms, &ours);
	if (!err && ours) {
		l->last_send_ms = sent;
	} else {
		/* the sent renewal may still count: keep its time */
		l->last_send_ms = sent;
		l->lost = true;
		l->losses++;
		l->epoch[0] = '\0';
		log_warn("cache: the epoch %s; re-establishing",
			 err ? "cannot be renewed (Redis unreachable)" : "is gone (flush or restart)");
	}
	pthread_mutex_unlock(&l->mu);
}

/* Clear the marks of txns the coordinator log has finished: their cache
 * commit or abort has run, or ran while Redis was unreachable. */
static void sweep(struct lease *l)
{
	int64_t txns[LEASE_SWEEP_MAX];
	size_t n;
	char arr[LEASE_SWEEP_MAX * 21 + 2], *p = arr;
	if (cachestore_marked(l->cs, txns, LEASE_SWEEP_MAX, &n) || n == 0 || coord_get(l))
		return;
	*p++ = '{';
	for (size_t i = 0; i < n; i++)
		p += snprintf(p, sizeof(arr) - (size_t)(p - arr), "%s%" PRId64, i ? "," : "",
			      txns[i]);
	snprintf(p, sizeof(arr) - (size_t)(p - arr), "}");
	const char *params[] = { arr };
	PGresult *res = pg_query(l->coord, sql_finished, 1, params);
	if (!res)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		int64_t txn;
		size_t cleared;
		if (pgpart_parse_int64(PQgetvalue(res, i, 0), &txn) ||
		    cachestore_clear(l->cs, txn, strcmp(PQgetvalue(res, i, 1), "t") == 0, NULL, 0,
				     &cleared))
			break;
		log_info("cache: cleared the marks of finished txn %" PRId64, txn);
	}
	PQclear(res);
}

static void *lease_main(void *arg)
{
	struct lease *l = arg;
	int64_t next_renew = 0, next_sweep = 0, next_try = 0;
	while (!*l->stop) {
		int64_t now = clock_mono_ms();
		pthread_mutex_lock(&l->mu);
		bool lost = l->lost;
		pthread_mutex_unlock(&l->mu);
		if (lost && now >= next_try) {
			if (lease_establish(l))
				next_try = now + l->lease_ms / 4;
			next_renew = clock_mono_ms() + l->lease_ms / 4;
		} else if (!lost && now >= next_renew) {
			renew(l);
			next_renew = now + l->lease_ms / 4;
		}
		if (now >= next_sweep) {
			sweep(l);
			next_sweep = now + l->sweep_ms;
		}
		clock_sleep_ms(20);
	}
	return NULL;
}

int lease_start(struct lease *l)
{
	if (pthread_create(&l->thread, NULL, lease_main, l))
		return PAYTX_ENOMEM;
	l->running = true;
	return 0;
}

void lease_finish(struct lease *l)
{
	if (l->running)
		pthread_join(l->thread, NULL);
	l->running = false;
	cachestore_destroy(l->cs);
	l->cs = NULL;
	if (l->coord)
		PQfinish(l->coord);
	l->coord = NULL;
	pthread_mutex_destroy(&l->mu);
}

/* The benchmark's load loop over the real submit path.
 *
 * A driver owns one broker (publisher confirms, a private reply queue) and
 * runs phases: each phase publishes payments drawn from a callback to
 * paytx.submit, persistent, with reply_to and a correlation id
 * "<phase>-<seq>", waits for the confirms of each batch together, and
 * collects outcomes until every payment has one or the drain time is over.
 *
 *   open loop:   payment seq is due at start + seq / rate; latency counts
 *                from that scheduled time, so a slow system cannot hide its
 *                queueing (no coordinated omission);
 *   closed loop: `concurrency` payments outstanding; latency counts from
 *                the send.
 * Only payments scheduled after the warm-up and before its end are
 * measured. Single-threaded.
 */
#ifndef PAYTX_BENCH_DRIVER_H
#define PAYTX_BENCH_DRIVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "latency.h"
#include "paytx/error.h"
#include "paytx/message.h"

enum driver_mode { DRIVER_CLOSED, DRIVER_OPEN };

struct driver_config {
	enum driver_mode mode;
	double rate;                 /* payments/s (open loop) */
	size_t concurrency;          /* outstanding payments (closed loop) */
	double warmup_s;             /* load before measuring */
	double duration_s;           /* measured load; <= 0: until next() runs out */
	double drain_s;              /* wait for outcomes after the load */
	size_t batch_max;            /* publishes per confirm wait */
	bool progress;               /* one line per second on stderr */
};

/* Fill *p with payment seq; false when there are no more. */
typedef bool (*driver_next_fn)(void *ctx, uint64_t seq, struct paytx_payment *p);

enum driver_state { DS_INFLIGHT = 0, DS_COMMITTED, DS_ABORTED, DS_REJECTED };

struct driver_reason {
	enum driver_state status;
	char reason[PAYTX_REASON_MAX];
	uint64_t n;
};

#define DRIVER_REASONS_MAX 32

struct driver_result {
	uint64_t sent;
	uint64_t outcomes;           /* distinct payments with an outcome */
	uint64_t duplicates;         /* outcomes received more than once */
	uint64_t by_state[4];        /* enum driver_state */
	uint64_t measured;           /* outcomes of measured payments */
	uint64_t done_in_window;     /* outcomes that arrived in the measured window */
	double window_s;             /* length of the measured window */
	struct latency lat;          /* measured payments */
	struct driver_reason reasons[DRIVER_REASONS_MAX];
	size_t nreasons;
	uint8_t *state;              /* enum driver_state per seq; owned */
	size_t nstate;
};

struct driver;

/* url, tls_ca borrowed. Connects (retrying until stop is set). NULL on failure. */
struct driver *driver_create(const char *url, const char *tls_ca, volatile sig_atomic_t *stop);
void driver_destroy(struct driver *d);

/* Run one phase; r is initialised here (driver_result_finish frees it). */
int driver_run(struct driver *d, const struct driver_config *cfg, driver_next_fn next,
	       void *ctx, struct driver_result *r) PAYTX_MUST_CHECK;
void driver_result_finish(struct driver_result *r);

#endif

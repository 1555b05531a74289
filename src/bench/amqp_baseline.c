/* paytx-bench-amqp: what RabbitMQ alone does on this machine.
 *
 * One publisher connection sends persistent 300-byte messages with
 * publisher confirms, `window` outstanding, to a durable classic queue;
 * a consumer on its own connection and thread acks each one. Prints
 * messages/s consumed over the measured time: the raw broker figure that
 * paytx's own message rate is compared with (scripts/bench.sh). Needs a
 * user that may declare and use its queue (the local admin, PAYTX_AMQP_URL_ADMIN).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "signals.h"

#define QUEUE "paytx-bench-amqp"

static const struct config_def defs[] = {
	{ "PAYTX_AMQP_URL", "amqp-url", "amqp://guest:guest@127.0.0.1:5672",
	  "RabbitMQ URL (amqp:// or amqps://).", CONFIG_SECRET },
	{ "PAYTX_BENCH_DURATION_S", "duration", "20", "Measured seconds.", 0 },
	{ "PAYTX_BENCH_WARMUP_S", "warmup", "3", "Seconds before measuring.", 0 },
	{ "PAYTX_BENCH_WINDOW", "window", "100", "Unconfirmed publishes at most.", 0 },
	{ "PAYTX_BENCH_SIZE", "size", "300", "Bytes per message.", 0 },
};

struct shared {
	const char *url;
	atomic_int done;              /* set by main: the consumer stops */
	volatile sig_atomic_t stop;
	int64_t measure_from_us, measure_to_us;
	uint64_t consumed_in_window;
	int err;
};

static void *consume(void *arg)
{
	struct shared *s = arg;
	struct broker_config bc = { .url = s->url, .name = "paytx-bench-amqp",
				    .role = BROKER_ROLE_PARTICIPANT, .stop = &s->stop };
	struct broker *b = broker_create(&bc);
	if (!b || broker_want_participant_queue(b, QUEUE) || broker_want_consumer(b, QUEUE, 1000) ||
	    broker_connect(b)) {
		s->err = PAYTX_EBROKER;
		broker_destroy(b);
		return NULL;
	}
	while (!atomic_load(&s->done)) {
		struct broker_msg m;
		int err = broker_next(b, &m, 100);
		if (err == PAYTX_ETIMEOUT)
			continue;
		if (err || broker_ack(b, m.tag)) {
			s->err = PAYTX_EBROKER;
			break;
		}
		int64_t now = clock_mono_us();
		if (now >= s->measure_from_us && now < s->measure_to_us)
			s->consumed_in_window++;
		broker_msg_release(&m);
	}
	broker_destroy(b);
	return NULL;
}

static int publish(struct shared *s, int64_t window, int64_t size, int64_t end_us)
{
	struct broker_config bc = { .url = s->url, .name = "paytx-bench-amqp",
				    .role = BROKER_ROLE_PARTICIPANT, .stop = &s->stop };
	struct broker *b = broker_create(&bc);
	char *body = malloc((size_t)size);
	int err = b && body ? 0 : PAYTX_ENOMEM;
	if (!err)
		memset(body, 'x', (size_t)size);
	if (!err)
		err = broker_want_participant_queue(b, QUEUE) || broker_connect(b) ? PAYTX_EBROKER : 0;
	struct broker_out o = { .exchange = "", .routing_key = QUEUE, .type = PAYTX_MSG_SUBMIT,
				.body = body, .len = (size_t)size, .persistent = true };
	while (!err && !signals_stop && clock_mono_us() < end_us) {
		for (int64_t i = 0; !err && i < window; i++)
			err = broker_publish(b, &o);
		if (!err)
			err = broker_flush(b);
	}
	broker_destroy(b);
	free(body);
	return err;
}

static int setting(const struct config *c, const char *env, int64_t min, int64_t max,
		   int64_t *out)
{
	return config_int(c, env, min, max, out);
}

int main(int argc, char **argv)
{
	struct config c;
	int64_t duration, warmup, window, size;
	signals_install();
	log_init("bench-amqp");
	if (config_load(&c, defs, sizeof(defs) / sizeof(defs[0]), argc, argv, "paytx-bench-amqp",
			"[options]", "Raw RabbitMQ baseline: confirmed persistent publishes "
			"through a durable queue to an acking consumer; prints messages/s.") ||
	    setting(&c, "PAYTX_BENCH_DURATION_S", 1, 3600, &duration) ||
	    setting(&c, "PAYTX_BENCH_WARMUP_S", 0, 600, &warmup) ||
	    setting(&c, "PAYTX_BENCH_WINDOW", 1, 65535, &window) ||
	    setting(&c, "PAYTX_BENCH_SIZE", 1, PAYTX_MESSAGE_MAX, &size))
		return 2;
	if (c.check_only)
		return 0;
	struct shared s = { .url = config_str(&c, "PAYTX_AMQP_URL") };
	int64_t t0 = clock_mono_us();
	s.measure_from_us = t0 + warmup * 1000000;
	s.measure_to_us = s.measure_from_us + duration * 1000000;
	pthread_t th;
	if (pthread_create(&th, NULL, consume, &s) != 0)
		return 1;
	int err = publish(&s, window, size, s.measure_to_us);
	/* Let the consumer take what is still queued; it counts only the window. */
	clock_sleep_ms(1000);
	atomic_store(&s.done, 1);
	pthread_join(th, NULL);
	if (err || s.err) {
		fprintf(stderr, "paytx-bench-amqp: %s\n", paytx_strerror(err ? err : s.err));
		return 1;
	}
	printf("%.1f\n", (double)s.consumed_in_window / (double)duration);
	return 0;
}

/* paytxctl pay / submit: publish a payment to the paytx.submit exchange and
 * wait for its outcome on a private reply queue. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "clock.h"
#include "ctl.h"
#include "log.h"

static int print_outcome(const struct ctl *c, const struct broker_msg *m)
{
	struct paytx_outcome o;
	struct paytx_fault f;
	if (paytx_outcome_decode(m->body, m->len, &o, &f) != 0) {
		fprintf(stderr, "paytxctl: unreadable outcome: %s\n", f.text);
		return CTL_FAILED;
	}
	if (c->json)
		printf("%.*s\n", (int)m->len, m->body);
	else
		printf("%s: %s%s%s%s%s (%" PRId64 " ms)\n", o.payment_id[0] ? o.payment_id : "-",
		       paytx_status_name(o.status), o.reason[0] ? " " : "", o.reason,
		       o.detail[0] ? " - " : "", o.detail, o.finished_ms - o.submitted_ms);
	return o.status == PAYTX_STATUS_COMMITTED ? CTL_OK
	       : o.status == PAYTX_STATUS_ABORTED ? CTL_ABORTED : CTL_REJECTED;
}

static int wait_outcome(const struct ctl *c, struct broker *b, const char *corr)
{
	int64_t timeout;
	if (config_int(&c->cfg, "PAYTX_TIMEOUT_MS", 1, 86400000, &timeout))
		return CTL_USAGE;
	int64_t until = clock_mono_ms() + timeout;
	for (int64_t left; (left = until - clock_mono_ms()) > 0;) {
		struct broker_msg m;
		int err = broker_next(b, &m, left > 1000 ? 1000 : (int)left);
		if (err == PAYTX_ETIMEOUT)
			continue;
		if (err)
			return CTL_FAILED;
		int rc = strcmp(m.correlation_id, corr) == 0 ? print_outcome(c, &m) : -1;
		err = broker_ack(b, m.tag);
		broker_msg_release(&m);
		if (err && rc < 0)
			return CTL_FAILED;
		if (rc >= 0)
			return rc;
	}
	fprintf(stderr, "paytxctl: no outcome within the timeout; see paytxctl status\n");
	return CTL_TIMEOUT;
}

static int submit_body(struct ctl *c, const char *body, size_t len, const char *corr)
{
	char queue[96];
	snprintf(queue, sizeof(queue), "paytxctl.%d.%lld", (int)getpid(),
		 (long long)clock_mono_ms());
	struct broker_config bc = { .url = config_str(&c->cfg, "PAYTX_AMQP_URL"),
				    .tls_ca = config_str(&c->cfg, "PAYTX_AMQP_TLS_CA"),
				    .tls_cert = config_str(&c->cfg, "PAYTX_AMQP_TLS_CERT"),
				    .tls_key = config_str(&c->cfg, "PAYTX_AMQP_TLS_KEY"),
				    .name = "paytxctl", .role = BROKER_ROLE_CLIENT };
	struct broker *b = broker_create(&bc);
	int rc = CTL_FAILED;
	if (!b || broker_want_reply_queue(b, queue) || broker_want_consumer(b, queue, 16) ||
	    broker_connect(b))
		goto out;
	/* The exchange, not the default one: a client's user may write to it only. */
	struct broker_out o = { .exchange = BROKER_SUBMIT_EXCHANGE,
				.routing_key = BROKER_SUBMIT_QUEUE, .type = PAYTX_MSG_SUBMIT,
				.body = body, .len = len, .reply_to = queue,
				.correlation_id = corr, .persistent = true };
	if (broker_publish(b, &o) || broker_flush(b)) {
		fprintf(stderr, "paytxctl: the broker did not confirm the payment\n");
		goto out;
	}
	rc = wait_outcome(c, b, corr);
out:
	broker_destroy(b);
	return rc;
}

static int parse_amount(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > PAYTX_AMOUNT_MAX)
		return -1;
	*out = v;
	return 0;
}

int ctl_pay(struct ctl *c)
{
	struct paytx_payment p = { .nlegs = 2 };
	int64_t amount;
	if (c->argc != 5 || parse_amount(c->argv[3], &amount)) {
		fprintf(stderr, "usage: paytxctl pay PAYMENT_ID FROM TO AMOUNT CURRENCY\n"
				"  AMOUNT is a positive integer in minor units\n");
		return CTL_USAGE;
	}
	snprintf(p.payment_id, sizeof(p.payment_id), "%s", c->argv[0]);
	snprintf(p.legs[0].account, sizeof(p.legs[0].account), "%s", c->argv[1]);
	snprintf(p.legs[1].account, sizeof(p.legs[1].account), "%s", c->argv[2]);
	snprintf(p.legs[0].currency, sizeof(p.legs[0].currency), "%s", c->argv[4]);
	snprintf(p.legs[1].currency, sizeof(p.legs[1].currency), "%s", c->argv[4]);
	p.legs[0].amount = -amount;
	p.legs[1].amount = amount;
	struct paytx_buf buf;
	paytx_buf_init(&buf);
	int rc = paytx_payment_encode(&p, &buf) ? CTL_USAGE
						: submit_body(c, buf.data, buf.len, c->argv[0]);
	paytx_buf_finish(&buf);
	return rc;
}

int ctl_submit(struct ctl *c)
{
	if (c->argc != 1) {
		fprintf(stderr, "usage: paytxctl submit FILE   (- reads standard input)\n");
		return CTL_USAGE;
	}
	FILE *f = strcmp(c->argv[0], "-") == 0 ? stdin : fopen(c->argv[0], "rb");
	if (!f) {
		fprintf(stderr, "paytxctl: cannot open %s\n", c->argv[0]);
		return CTL_USAGE;
	}
	static char body[PAYTX_MESSAGE_MAX + 2];
	size_t len = fread(body, 1, sizeof(body) - 1, f);
	if (f != stdin)
		fclose(f);
	char corr[64];
	snprintf(corr, sizeof(corr), "paytxctl-%d-%lld", (int)getpid(), (long long)clock_wall_ms());
	return submit_body(c, body, len, corr);
}

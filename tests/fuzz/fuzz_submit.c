/* libFuzzer target: the submit decoder, the payment encoder and the canonical form.
 *
 * The input is a submit body. Whatever it is, decoding must not crash or
 * leak, and a refusal must come with a loggable fault. A payment that
 * decodes must re-encode to a submit that decodes again to the same
 * content: equal canonical forms, and the same encoding (the encoder is a
 * fixed point after one round). The legs of the canonical form are also
 * checked against a separate computation, since a round trip cannot see a
 * mistake that both sides make.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paytx/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: say which, show both sides, and crash for libFuzzer. */
static void fail(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_submit: %s\n  first:  %s\n  second: %s\n", what, a ? a : "-",
		b ? b : "-");
	abort();
}

static void need_ok(int rc, const char *what)
{
	if (rc != 0)
		fail(what, paytx_errcode(rc), NULL);
}

/* A refusal: the error is in the fault, whose text is printable ASCII
 * because it names positions and safe field names only. */
static void check_fault(int rc, const struct paytx_fault *fault)
{
	size_t n = strnlen(fault->text, sizeof(fault->text));

	if (rc >= 0 || rc <= PAYTX_ERR_MIN_ || fault->err != rc)
		fail("decode failed with an unexpected code", paytx_errcode(rc),
		     paytx_errcode(fault->err));
	if (n == 0 || n == sizeof(fault->text))
		fail("fault text empty or not terminated", NULL, NULL);
	for (size_t i = 0; i < n; i++)
		if (fault->text[i] < 0x20 || fault->text[i] > 0x7e)
			fail("fault text has a byte that is not printable ASCII", fault->text, NULL);
}

/* What the decoder promises about a payment it accepts. */
static void check_payment(const struct paytx_payment *p)
{
	int64_t sum = 0;

	if (!paytx_id_valid(p->payment_id, strlen(p->payment_id)))
		fail("decoded payment_id is not an identifier", p->payment_id, NULL);
	if (p->nlegs < PAYTX_LEGS_MIN || p->nlegs > PAYTX_LEGS_MAX)
		fail("decoded leg count out of range", NULL, NULL);
	for (size_t i = 0; i < p->nlegs; i++) {
		const struct paytx_leg *l = &p->legs[i];

		if (!paytx_id_valid(l->account, strlen(l->account)))
			fail("decoded account is not an identifier", l->account, NULL);
		if (l->amount == 0 || l->amount > PAYTX_AMOUNT_MAX || l->amount < -PAYTX_AMOUNT_MAX)
			fail("decoded amount out of range", l->account, NULL);
		if (strlen(l->currency) != 3 || strspn(l->currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3)
			fail("decoded currency is not 3 letters", l->currency, NULL);
		sum += l->amount;
	}
	/* Each currency sums to zero, so all of them together do too. */
	if (sum != 0)
		fail("decoded legs do not balance", NULL, NULL);
	if (p->metadata && (p->metadata[0] != '{' || strlen(p->metadata) > PAYTX_METADATA_MAX))
		fail("decoded metadata is not a serialized object within the limit", p->metadata,
		     NULL);
}

static int cmp_leg(const void *a, const void *b)
{
	const struct paytx_leg *x = a, *y = b;
	int c = strcmp(x->account, y->account);

	return c ? c : strcmp(x->currency, y->currency);
}

/* Append to want[WANT_SIZE] at *len, or fail if it does not fit. */
#define WANT_SIZE 4096
__attribute__((format(printf, 3, 4)))
static void appendf(char *want, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(want + *len, WANT_SIZE - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= WANT_SIZE - *len)
		fail("expected canonical form does not fit the test buffer", want, NULL);
	*len += (size_t)n;
}

/* The canonical form starts with payment_id, then one leg per (account,
 * currency) whose amounts do not cancel out, in byte order of account then
 * currency; it ends with the metadata, null when there is none. Identifiers
 * and currencies need no JSON escaping. */
static void check_canonical(const struct paytx_payment *p, const struct paytx_buf *canon)
{
	struct paytx_leg net[PAYTX_LEGS_MAX];
	char want[WANT_SIZE];
	size_t n = 0, k = 0, len = 0;

	for (size_t i = 0; i < p->nlegs; i++) {
		size_t j = 0;

		while (j < n && cmp_leg(&net[j], &p->legs[i]) != 0)
			j++;
		if (j == n)
			net[n++] = p->legs[i];
		else
			net[j].amount += p->legs[i].amount;
	}
	for (size_t j = 0; j < n; j++)
		if (net[j].amount != 0)
			net[k++] = net[j];
	qsort(net, k, sizeof(net[0]), cmp_leg);
	appendf(want, &len, "{\"payment_id\":\"%s\",\"legs\":[", p->payment_id);
	for (size_t j = 0; j < k; j++)
		appendf(want, &len, "%s{\"account\":\"%s\",\"amount\":%lld,\"currency\":\"%s\"}",
			j ? "," : "", net[j].account, (long long)net[j].amount, net[j].currency);
	appendf(want, &len, "],\"metadata\":%s", p->metadata ? "{" : "null}");
	if (canon->len < len || memcmp(canon->data, want, len) != 0 ||
	    (p->metadata && memcmp(canon->data + canon->len - 2, "}}", 2) != 0) ||
	    (!p->metadata && canon->len != len))
		fail("canonical form is not what its definition gives", canon->data, want);
}

/* decode(encode(p)) has the same canonical form and encoding as p. */
static void check_round_trip(const struct paytx_payment *p)
{
	struct paytx_payment again;
	struct paytx_fault fault;
	struct paytx_buf canon, enc, canon2, enc2;

	paytx_buf_init(&canon);
	paytx_buf_init(&enc);
	paytx_buf_init(&canon2);
	paytx_buf_init(&enc2);
	need_ok(paytx_payment_canonical(p, &canon), "canonical form of a decoded payment failed");
	check_canonical(p, &canon);
	need_ok(paytx_payment_encode(p, &enc), "encoding a decoded payment failed");
	if (paytx_payment_decode(enc.data, enc.len, &again, &fault) != 0)
		fail("the encoding of a decoded payment does not decode", enc.data, fault.text);
	check_payment(&again);
	need_ok(paytx_payment_canonical(&again, &canon2), "canonical form after round trip failed");
	need_ok(paytx_payment_encode(&again, &enc2), "encoding after round trip failed");
	if (canon.len != canon2.len || memcmp(canon.data, canon2.data, canon.len) != 0)
		fail("canonical form changed in an encode/decode round trip", canon.data,
		     canon2.data);
	if (enc.len != enc2.len || memcmp(enc.data, enc2.data, enc.len) != 0)
		fail("encoding changed in an encode/decode round trip", enc.data, enc2.data);
	paytx_payment_finish(&again);
	paytx_buf_finish(&enc2);
	paytx_buf_finish(&canon2);
	paytx_buf_finish(&enc);
	paytx_buf_finish(&canon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct paytx_payment p;
	struct paytx_fault fault;
	int rc = paytx_payment_decode((const char *)data, size, &p, &fault);

	if (rc != 0) {
		check_fault(rc, &fault);
		if (p.metadata)
			fail("a failed decode left metadata allocated", p.metadata, NULL);
	} else {
		if (fault.err != 0)
			fail("a successful decode left a fault", fault.text, NULL);
		check_payment(&p);
		check_round_trip(&p);
	}
	paytx_payment_finish(&p);
	return 0;
}

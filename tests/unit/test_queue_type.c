/* Unit tests of the queue type setting: values, declare arguments, and the
 * explanation of a declare RabbitMQ refused (texts as RabbitMQ 3.10 sends). */
#include "unit.h"
#include <stdio.h>
#include <string.h>

#include "queue_type.h"

#define TO_QUORUM "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue " \
	"'paytx.submit' in vhost '/': received the value 'quorum' of type 'longstr' but " \
	"current is none"
#define TO_CLASSIC "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue " \
	"'ledger.0' in vhost '/': received none but current is the value 'quorum' of type " \
	"'longstr'"
/* RabbitMQ may name another of the differing arguments first */
#define QUORUM_STRATEGY "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-strategy' " \
	"for queue 'ledger.1' in vhost '/': received none but current is the value " \
	"'at-least-once' of type 'longstr'"
#define CLASSIC_OVERFLOW "PRECONDITION_FAILED - inequivalent arg 'x-overflow' for queue " \
	"'ledger.0' in vhost '/': received the value 'reject-publish' of type 'longstr' but " \
	"current is none"
#define OTHER_ARG "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for " \
	"queue 'paytx.submit' in vhost '/': received the value 'paytx.dlx' of type " \
	"'longstr' but current is none"

static const char *arg(const amqp_table_entry_t *e, int n, const char *key)
{
	static char value[64];
	for (int i = 0; i < n; i++)
		if (e[i].key.len == strlen(key) && memcmp(e[i].key.bytes, key, e[i].key.len) == 0) {
			ck_assert_int_eq(e[i].value.kind, AMQP_FIELD_KIND_UTF8);
			snprintf(value, sizeof(value), "%.*s", (int)e[i].value.value.bytes.len,
				 (const char *)e[i].value.value.bytes.bytes);
			return value;
		}
	return NULL;
}

static bool refusal(enum queue_type want, const char *queue, const char *text, char *out)
{
	return queue_type_refusal(want, queue, text, strlen(text), out, 512);
}

START_TEST(test_only_classic_and_quorum_are_accepted)
{
	enum queue_type t = QUEUE_TYPE_CLASSIC;
	ck_assert_int_eq(queue_type_parse("quorum", &t), 0);
	ck_assert_int_eq(t, QUEUE_TYPE_QUORUM);
	ck_assert_int_eq(queue_type_parse("classic", &t), 0);
	ck_assert_int_eq(t, QUEUE_TYPE_CLASSIC);
	const char *bad[] = { "", "Quorum", "stream", "quorum ", "mirrored" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(queue_type_check(bad[i]), PAYTX_ECONFIG);
	ck_assert_int_eq(queue_type_parse(NULL, &t), PAYTX_ECONFIG);
	ck_assert_str_eq(queue_type_name(QUEUE_TYPE_QUORUM), "quorum");
}
END_TEST

START_TEST(test_classic_declares_no_extra_arguments)
{
	amqp_table_entry_t e[QUEUE_TYPE_MAX_ARGS];
	ck_assert_int_eq(queue_type_args(QUEUE_TYPE_CLASSIC, true, e), 0);
	ck_assert_int_eq(queue_type_args(QUEUE_TYPE_CLASSIC, false, e), 0);
}
END_TEST

START_TEST(test_quorum_dead_letters_at_least_once)
{
	amqp_table_entry_t e[QUEUE_TYPE_MAX_ARGS];
	int n = queue_type_args(QUEUE_TYPE_QUORUM, true, e);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(arg(e, n, "x-queue-type"), "quorum");
	ck_assert_str_eq(arg(e, n, "x-dead-letter-strategy"), "at-least-once");
	/* without which RabbitMQ falls back to at-most-once */
	ck_assert_str_eq(arg(e, n, "x-overflow"), "reject-publish");
}
END_TEST

START_TEST(test_quorum_without_dlx_only_sets_the_type)
{
	amqp_table_entry_t e[QUEUE_TYPE_MAX_ARGS];
	int n = queue_type_args(QUEUE_TYPE_QUORUM, false, e);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(arg(e, n, "x-queue-type"), "quorum");
}
END_TEST

START_TEST(test_existing_quorum_queue_names_the_setting)
{
	char out[512];
	ck_assert(refusal(QUEUE_TYPE_CLASSIC, "ledger.0", TO_CLASSIC, out));
	ck_assert_ptr_nonnull(strstr(out, "queue ledger.0 exists as a quorum queue"));
	ck_assert_ptr_nonnull(strstr(out, "PAYTX_QUEUE_TYPE is classic"));
	ck_assert_ptr_nonnull(strstr(out, "set PAYTX_QUEUE_TYPE=quorum"));
	ck_assert_ptr_nonnull(strstr(out, "drain and delete"));
}
END_TEST

START_TEST(test_existing_classic_queue_names_the_setting)
{
	char out[512];
	ck_assert(refusal(QUEUE_TYPE_QUORUM, "paytx.submit", TO_QUORUM, out));
	ck_assert_ptr_nonnull(strstr(out, "queue paytx.submit exists as a classic queue"));
	ck_assert_ptr_nonnull(strstr(out, "PAYTX_QUEUE_TYPE is quorum"));
	ck_assert_ptr_nonnull(strstr(out, "set PAYTX_QUEUE_TYPE=classic"));
}
END_TEST

START_TEST(test_quorum_only_arguments_tell_the_type_too)
{
	char out[512];
	ck_assert(refusal(QUEUE_TYPE_CLASSIC, "ledger.1", QUORUM_STRATEGY, out));
	ck_assert_ptr_nonnull(strstr(out, "queue ledger.1 exists as a quorum queue but "
					  "PAYTX_QUEUE_TYPE is classic"));
	ck_assert_ptr_nonnull(strstr(out, "'x-dead-letter-strategy'"));
	ck_assert(refusal(QUEUE_TYPE_QUORUM, "ledger.0", CLASSIC_OVERFLOW, out));
	ck_assert_ptr_nonnull(strstr(out, "queue ledger.0 exists as a classic queue but "
					  "PAYTX_QUEUE_TYPE is quorum"));
	ck_assert_ptr_nonnull(strstr(out, "set PAYTX_QUEUE_TYPE=classic"));
}
END_TEST

START_TEST(test_other_inequivalent_argument_names_it)
{
	char out[512];
	ck_assert(refusal(QUEUE_TYPE_QUORUM, "paytx.submit", OTHER_ARG, out));
	ck_assert_ptr_nonnull(strstr(out, "queue paytx.submit exists with other arguments"));
	ck_assert_ptr_nonnull(strstr(out, "PAYTX_QUEUE_TYPE=quorum"));
	ck_assert_ptr_nonnull(strstr(out, "'x-dead-letter-exchange'"));
	ck_assert_ptr_nonnull(strstr(out, "received the value 'paytx.dlx'"));
	ck_assert_ptr_nonnull(strstr(out, "drain and delete"));
}
END_TEST

START_TEST(test_other_refusals_are_not_explained)
{
	char out[512] = "";
	ck_assert(!refusal(QUEUE_TYPE_QUORUM, "q",
			   "PRECONDITION_FAILED - invalid property 'non-durable' for queue 'q' in "
			   "vhost '/'", out));
	ck_assert(!refusal(QUEUE_TYPE_QUORUM, "q",
			   "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused", out));
	ck_assert(!refusal(QUEUE_TYPE_CLASSIC, "q", "", out));
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_reply_text_is_read_only_up_to_its_length)
{
	/* AMQP short strings are not NUL-terminated: cut before the quote that
	 * ends the argument's name, the text is no longer recognised. */
	char out[512];
	size_t cut = strstr(TO_CLASSIC, "x-queue-type") - TO_CLASSIC + 4;
	ck_assert(!queue_type_refusal(QUEUE_TYPE_CLASSIC, "q", TO_CLASSIC, cut, out, sizeof(out)));
	/* and a small out buffer is truncated, not overrun */
	char small[16];
	memset(small, 'x', sizeof(small));
	ck_assert(queue_type_refusal(QUEUE_TYPE_CLASSIC, "ledger.0", TO_CLASSIC,
				     strlen(TO_CLASSIC), small, 8));
	ck_assert_int_eq(strlen(small), 7);
	ck_assert_int_eq(small[8], 'x');
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_only_classic_and_quorum_are_accepted),
		UNIT_CASE(test_classic_declares_no_extra_arguments),
		UNIT_CASE(test_quorum_dead_letters_at_least_once),
		UNIT_CASE(test_quorum_without_dlx_only_sets_the_type),
		UNIT_CASE(test_existing_quorum_queue_names_the_setting),
		UNIT_CASE(test_existing_classic_queue_names_the_setting),
		UNIT_CASE(test_quorum_only_arguments_tell_the_type_too),
		UNIT_CASE(test_other_inequivalent_argument_names_it),
		UNIT_CASE(test_other_refusals_are_not_explained),
		UNIT_CASE(test_reply_text_is_read_only_up_to_its_length),
	};
	return UNIT_RUN("queue_type", cases, NULL, NULL);
}

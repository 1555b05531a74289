/* Unit tests of the read path's arithmetic (balance.c) and of how the
 * cache finds a payment's accounts in the coordinator log (lease.c). */
#include "unit.h"
#include <string.h>

#include "balance.h"
#include "lease.h"

START_TEST(test_committed_unposted_holds_are_added)
{
	struct cache_entry e = { "EUR", 1000, 300, 4, false };
	int64_t undecided;
	const int64_t txns[] = { 10, 11, 12 };
	const int64_t amounts[] = { -300, 50, 20 };
	const int64_t debits[] = { 300, 0, 0 };
	const int64_t decided[] = { 11, 10 };
	const bool commit[] = { true, true };
	balance_apply_holds(&e, &undecided, 3, txns, amounts, debits, 2, decided, commit);
	ck_assert_int_eq(e.balance, 1000 - 300 + 50);
	ck_assert_int_eq(e.held, 0);
	ck_assert_int_eq(e.version, 6); /* what the ledger will be at once posted */
	ck_assert_int_eq(undecided, 1);
}
END_TEST

START_TEST(test_aborted_and_undecided_holds_are_not_counted)
{
	struct cache_entry e = { "EUR", 1000, 400, 4, false };
	int64_t undecided;
	const int64_t txns[] = { 10, 11 };
	const int64_t amounts[] = { -300, -100 };
	const int64_t debits[] = { 300, 100 };
	const int64_t decided[] = { 10 };
	const bool commit[] = { false };
	balance_apply_holds(&e, &undecided, 2, txns, amounts, debits, 1, decided, commit);
	ck_assert_int_eq(e.balance, 1000);
	ck_assert_int_eq(e.held, 100);  /* the undecided debit stays reserved */
	ck_assert_int_eq(e.version, 4);
	ck_assert_int_eq(undecided, 1);
}
END_TEST

START_TEST(test_request_accounts_from_legs_and_shorthand)
{
	char out[PAYTX_LEGS_MAX][PAYTX_ID_MAX + 1];
	size_t n;
	ck_assert_int_eq(lease_request_accounts("{\"payment_id\":\"p\",\"from\":\"a\",\"to\":\"b\","
						"\"amount\":5,\"currency\":\"EUR\"}",
						out, PAYTX_LEGS_MAX, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(out[0], "a");
	ck_assert_str_eq(out[1], "b");
	ck_assert_int_eq(lease_request_accounts("{\"legs\":[{\"account\":\"x\",\"amount\":-2},"
						"{\"account\":\"y\",\"amount\":1},"
						"{\"account\":\"x\",\"amount\":1}]}",
						out, PAYTX_LEGS_MAX, &n), 0);
	ck_assert_uint_eq(n, 2); /* distinct */
	ck_assert_str_eq(out[1], "y");
}
END_TEST

START_TEST(test_request_without_accounts_is_refused)
{
	char out[PAYTX_LEGS_MAX][PAYTX_ID_MAX + 1];
	size_t n;
	ck_assert_int_eq(lease_request_accounts("not json", out, PAYTX_LEGS_MAX, &n),
			 PAYTX_EJSON);
	ck_assert_int_eq(lease_request_accounts("{\"legs\":[]}", out, PAYTX_LEGS_MAX, &n),
			 PAYTX_EINVAL);
	ck_assert_int_eq(lease_request_accounts("{\"from\":\"a b\"}", out, PAYTX_LEGS_MAX, &n),
			 PAYTX_EINVAL);
}
END_TEST


int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_committed_unposted_holds_are_added),
		UNIT_CASE(test_aborted_and_undecided_holds_are_not_counted),
		UNIT_CASE(test_request_accounts_from_legs_and_shorthand),
		UNIT_CASE(test_request_without_accounts_is_refused),
	};
	return UNIT_RUN("balance", cases, NULL, NULL);
}

/* Unit tests of the participant's set of transactions in doubt. */
#include "unit.h"
#include <stdbool.h>
#include <stdlib.h>

#include "indoubt.h"

START_TEST(test_add_keeps_the_earliest_time)
{
	struct indoubt d;
	indoubt_init(&d);
	ck_assert_int_eq(indoubt_oldest(&d, -1), -1);
	ck_assert_int_eq(indoubt_add(&d, 7, 500), 0);
	ck_assert_int_eq(indoubt_add(&d, 7, 900), 0);
	ck_assert_int_eq(indoubt_add(&d, 8, 700), 0);
	ck_assert_uint_eq(d.len, 2);
	ck_assert_int_eq(indoubt_oldest(&d, -1), 500);
	ck_assert_int_eq(indoubt_add(&d, 7, 100), 0);
	ck_assert_int_eq(indoubt_oldest(&d, -1), 100);
	indoubt_del(&d, 7);
	indoubt_del(&d, 7);      /* absent: nothing */
	indoubt_del(&d, 12345);
	ck_assert_uint_eq(d.len, 1);
	ck_assert_int_eq(indoubt_oldest(&d, -1), 700);
	indoubt_del(&d, 8);
	ck_assert_uint_eq(d.len, 0);
	ck_assert_int_eq(indoubt_oldest(&d, -1), -1);
	indoubt_finish(&d);
}
END_TEST

/* Many adds and deletes, checked against a plain array: growth and the
 * backward-shift deletion must lose no member and keep no removed one. */
START_TEST(test_matches_a_reference_under_churn)
{
	enum { N = 3000 };
	static bool in[N];
	struct indoubt d;
	indoubt_init(&d);
	srand(42);
	size_t len = 0;
	for (int step = 0; step < 40000; step++) {
		int64_t txn = rand() % N;
		if (rand() % 3) {
			ck_assert_int_eq(indoubt_add(&d, txn * 64, 1000 + txn), 0);
			len += !in[txn];
			in[txn] = true;
		} else {
			indoubt_del(&d, txn * 64);
			len -= in[txn];
			in[txn] = false;
		}
		ck_assert_uint_eq(d.len, len);
	}
	int64_t oldest = -1;
	for (int64_t t = N - 1; t >= 0; t--)
		if (in[t])
			oldest = 1000 + t;
	ck_assert_int_ne(oldest, -1);
	ck_assert_int_eq(indoubt_oldest(&d, -1), oldest);
	for (int64_t t = 0; t < N; t++) {
		indoubt_del(&d, t * 64);
		ck_assert_uint_eq(d.len, len -= in[t]);
	}
	ck_assert_uint_eq(d.len, 0);
	indoubt_finish(&d);
}
END_TEST

START_TEST(test_prune_drops_old_members_the_store_does_not_hold)
{
	struct indoubt d;
	indoubt_init(&d);
	for (int64_t t = 1; t <= 200; t++)
		ck_assert_int_eq(indoubt_add(&d, t, t), 0);   /* since_ms = t */
	/* The store holds the even ones among those older than 150. */
	int64_t held[75];
	size_t n = 0;
	for (int64_t t = 2; t < 150; t += 2)
		held[n++] = t;
	indoubt_prune(&d, 150, held, n);
	ck_assert_uint_eq(d.len, n + 51);                  /* + 150..200, too young */
	for (int64_t t = 1; t <= 200; t++) {
		bool kept = t >= 150 || t % 2 == 0;
		size_t before = d.len;
		indoubt_del(&d, t);
		ck_assert_msg(d.len == before - kept, "txn %lld", (long long)t);
	}
	indoubt_prune(&d, 1000, NULL, 0);                  /* empty: nothing */
	ck_assert_uint_eq(d.len, 0);
	indoubt_finish(&d);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_add_keeps_the_earliest_time),
		UNIT_CASE(test_matches_a_reference_under_churn),
		UNIT_CASE(test_prune_drops_old_members_the_store_does_not_hold),
	};
	return UNIT_RUN("indoubt", cases, NULL, NULL);
}

/* Unit tests of account placement on ledger shards. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>

#include "shard.h"

START_TEST(test_hash_is_fnv1a_64)
{
	ck_assert_uint_eq(shard_hash(""), 14695981039346656037ULL);
	ck_assert_uint_eq(shard_hash("a"), 0xaf63dc4c8601ec8cULL);
	ck_assert_uint_eq(shard_hash("foobar"), 0x85944171f73967e8ULL);
}
END_TEST

START_TEST(test_list_is_parsed_in_order)
{
	struct shardmap m;
	ck_assert_int_eq(shardmap_parse(&m, "ledger.0,ledger.1,ledger.2"), 0);
	ck_assert_uint_eq(m.n, 3);
	ck_assert_str_eq(m.names[0], "ledger.0");
	ck_assert_str_eq(m.names[2], "ledger.2");
	ck_assert_uint_eq(shardmap_index(&m, "a"), 0xaf63dc4c8601ec8cULL % 3);
}
END_TEST

START_TEST(test_bad_lists_are_refused)
{
	struct shardmap m;
	ck_assert_int_eq(shardmap_parse(&m, ""), PAYTX_ECONFIG);
	ck_assert_int_eq(shardmap_parse(&m, NULL), PAYTX_ECONFIG);
	ck_assert_int_eq(shardmap_parse(&m, "a,,b"), PAYTX_ECONFIG);
	ck_assert_int_eq(shardmap_parse(&m, "a,b,"), PAYTX_ECONFIG);
	ck_assert_int_eq(shardmap_parse(&m, "a,a"), PAYTX_ECONFIG);
	ck_assert_int_eq(shardmap_parse(&m, "a b"), PAYTX_ECONFIG);
}
END_TEST

START_TEST(test_accounts_spread_over_shards)
{
	struct shardmap m;
	size_t count[2] = { 0, 0 };
	ck_assert_int_eq(shardmap_parse(&m, "ledger.0,ledger.1"), 0);
	for (int i = 0; i < 10000; i++) {
		char id[32];
		snprintf(id, sizeof(id), "acct-%d", i);
		count[shardmap_index(&m, id)]++;
	}
	ck_assert_uint_gt(count[0], 4500);
	ck_assert_uint_gt(count[1], 4500);
}
END_TEST

int main(void)
{
	const struct unit_case cases[] = {
		UNIT_CASE(test_hash_is_fnv1a_64),
		UNIT_CASE(test_list_is_parsed_in_order),
		UNIT_CASE(test_bad_lists_are_refused),
		UNIT_CASE(test_accounts_spread_over_shards),
	};
	return UNIT_RUN("shard", cases, NULL, NULL);
}

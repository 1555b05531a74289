/* Unit tests of the cache store's scripts against a real Redis
 * (PAYTX_TEST_REDIS_URL; skipped when unset), each test under its own key
 * prefix: the compare-and-set decisions of docs/cache.md. */
#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cachestore.h"
#include "clock.h"
#include "log.h"

static const char *url;
static char prefix[64];
static struct cachestore *cs;
static int serial;

static void setup(void)
{
	snprintf(prefix, sizeof(prefix), "paytx:unit:%d:%d", (int)getpid(), ++serial);
	cs = cachestore_create(url, prefix, 1000, 0);
	ck_assert_ptr_nonnull(cs);
	ck_assert_int_eq(cachestore_drop_all(cs), 0);
	ck_assert_int_eq(cachestore_epoch_set(cs, "e1", clock_wall_ms() + 60000), 0);
}

static void teardown(void)
{
	ck_assert_int_eq(cachestore_drop_all(cs), 0);
	cachestore_destroy(cs);
}

static const struct cache_entry e700 = { "EUR", 700, 0, 3, false };

static enum cache_install install(const char *acct, const struct cache_entry *e)
{
	struct cache_lookup seen;
	enum cache_install r;
	ck_assert_int_eq(cachestore_lookup(cs, acct, &seen), 0);
	ck_assert_int_eq(cachestore_install(cs, acct, &seen, e, &r), 0);
	return r;
}

START_TEST(test_installed_entry_is_served)
{
	struct cache_lookup l;
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(!l.hit);
	ck_assert_str_eq(l.epoch, "e1");
	ck_assert_int_eq(install("alice", &e700), CACHE_INSTALLED);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(l.hit);
	ck_assert_int_eq(l.entry.balance, 700);
	ck_assert_int_eq(l.entry.version, 3);
	ck_assert_str_eq(l.entry.currency, "EUR");
}
END_TEST

START_TEST(test_older_version_never_overwrites_newer)
{
	struct cache_entry newer = e700, older = e700;
	newer.version = 5;
	newer.balance = 500;
	older.version = 4;
	older.balance = 900;
	ck_assert_int_eq(install("alice", &newer), CACHE_INSTALLED);
	ck_assert_int_eq(install("alice", &older), CACHE_NOT_NEWER);
	ck_assert_int_eq(install("alice", &newer), CACHE_NOT_NEWER);
	struct cache_lookup l;
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert_int_eq(l.entry.balance, 500);
}
END_TEST

START_TEST(test_pending_account_is_not_served_nor_installed)
{
	const char *accts[] = { "alice", "bob" };
	struct cache_lookup l, seen;
	enum cache_install r;
	ck_assert_int_eq(install("alice", &e700), CACHE_INSTALLED);
	ck_assert_int_eq(cachestore_mark(cs, 42, accts, 2), 0);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(!l.hit);
	ck_assert_int_eq(l.pending, 1);
	ck_assert_int_eq(cachestore_lookup(cs, "bob", &seen), 0);
	ck_assert_int_eq(cachestore_install(cs, "bob", &seen, &e700, &r), 0);
	ck_assert_int_eq(r, CACHE_CHANGED);
}
END_TEST

START_TEST(test_mark_or_clear_after_lookup_refuses_the_install)
{
	const char *accts[] = { "alice" };
	struct cache_lookup seen;
	enum cache_install r;
	char got[PAYTX_LEGS_MAX][PAYTX_ID_MAX + 1];
	size_t n;
	/* a read began, then a payment was prepared and decided meanwhile */
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &seen), 0);
	ck_assert_int_eq(cachestore_mark(cs, 7, accts, 1), 0);
	ck_assert_int_eq(cachestore_clear(cs, 7, true, got, PAYTX_LEGS_MAX, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(got[0], "alice");
	ck_assert_int_eq(cachestore_install(cs, "alice", &seen, &e700, &r), 0);
	ck_assert_int_eq(r, CACHE_CHANGED);
}
END_TEST

START_TEST(test_commit_drops_entries_abort_keeps_them)
{
	const char *accts[] = { "alice" };
	struct cache_lookup l;
	size_t n;
	ck_assert_int_eq(install("alice", &e700), CACHE_INSTALLED);
	ck_assert_int_eq(cachestore_mark(cs, 8, accts, 1), 0);
	ck_assert_int_eq(cachestore_clear(cs, 8, false, NULL, 0, &n), 0);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(l.hit);
	ck_assert_int_eq(cachestore_mark(cs, 9, accts, 1), 0);
	ck_assert_int_eq(cachestore_clear(cs, 9, true, NULL, 0, &n), 0);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(!l.hit);
	/* idempotent: a duplicate clear finds nothing */
	ck_assert_int_eq(cachestore_clear(cs, 9, true, NULL, 0, &n), 0);
}
END_TEST

START_TEST(test_no_epoch_no_hit_no_install)
{
	struct cache_lookup seen, l;
	enum cache_install r;
	ck_assert_int_eq(install("alice", &e700), CACHE_INSTALLED);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &seen), 0);
	ck_assert_int_eq(cachestore_drop_all(cs), 0); /* as a flush */
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(!l.hit);
	ck_assert_str_eq(l.epoch, "");
	ck_assert_int_eq(cachestore_install(cs, "alice", &seen, &e700, &r), 0);
	ck_assert_int_eq(r, CACHE_CHANGED);
	/* a new epoch does not revive an entry of the old one */
	ck_assert_int_eq(cachestore_epoch_set(cs, "e1", clock_wall_ms() + 60000), 0);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(!l.hit);
}
END_TEST

START_TEST(test_entry_of_another_epoch_is_not_served)
{
	struct cache_lookup l;
	ck_assert_int_eq(install("alice", &e700), CACHE_INSTALLED);
	ck_assert_int_eq(cachestore_epoch_set(cs, "e2", clock_wall_ms() + 60000), 0);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert(!l.hit);
	ck_assert_str_eq(l.epoch, "e2");
}
END_TEST

START_TEST(test_renew_only_our_epoch_and_lease_expires)
{
	bool ours;
	struct cache_lookup l;
	ck_assert_int_eq(cachestore_epoch_renew(cs, "e1", clock_wall_ms() + 150, &ours), 0);
	ck_assert(ours);
	ck_assert_int_eq(cachestore_epoch_renew(cs, "other", clock_wall_ms() + 60000, &ours), 0);
	ck_assert(!ours);
	usleep(400 * 1000);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert_str_eq(l.epoch, "");
	ck_assert_int_eq(cachestore_epoch_renew(cs, "e1", clock_wall_ms() + 60000, &ours), 0);
	ck_assert(!ours);
}
END_TEST

START_TEST(test_a_late_renewal_cannot_stretch_the_lease)
{
	bool ours;
	struct cache_lookup l;
	/* applied after the time it was meant to end at: it ends the epoch */
	ck_assert_int_eq(cachestore_epoch_renew(cs, "e1", clock_wall_ms() - 10, &ours), 0);
	ck_assert(ours);
	ck_assert_int_eq(cachestore_lookup(cs, "alice", &l), 0);
	ck_assert_str_eq(l.epoch, "");
}
END_TEST

START_TEST(test_marked_txns_are_listed_until_cleared)
{
	const char *accts[] = { "alice", "bob" };
	int64_t txns[8];
	size_t n;
	ck_assert_int_eq(cachestore_mark(cs, 11, accts, 2), 0);
	ck_assert_int_eq(cachestore_mark(cs, 12, accts, 1), 0);
	ck_assert_int_eq(cachestore_marked(cs, txns, 8, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(cachestore_clear(cs, 11, true, NULL, 0, &n), 0);
	ck_assert_int_eq(cachestore_marked(cs, txns, 8, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(txns[0], 12);
}
END_TEST

START_TEST(test_unreachable_redis_fails_fast)
{
	struct cachestore *down = cachestore_create("redis://127.0.0.1:1", "p", 100, 10000);
	struct cache_lookup l;
	ck_assert_ptr_nonnull(down);
	ck_assert_int_eq(cachestore_lookup(down, "alice", &l), PAYTX_EDB);
	ck_assert(!cachestore_connected(down));
	/* within reconnect_ms no new attempt is made */
	ck_assert_int_eq(cachestore_lookup(down, "alice", &l), PAYTX_EDB);
	cachestore_destroy(down);
}
END_TEST

START_TEST(test_urls_and_prefixes_are_checked)
{
	ck_assert_int_eq(cachestore_url_check("redis://127.0.0.1:6399"), 0);
	ck_assert_int_eq(cachestore_url_check("redis://localhost"), 0);
	ck_assert_int_eq(cachestore_url_check("redis://h:1/3"), 0);
	ck_assert_int_eq(cachestore_url_check("http://h:1"), PAYTX_ECONFIG);
	ck_assert_int_eq(cachestore_url_check("redis://:1"), PAYTX_ECONFIG);
	ck_assert_int_eq(cachestore_url_check("redis://h:0"), PAYTX_ECONFIG);
	ck_assert_int_eq(cachestore_url_check("redis://h:1/x"), PAYTX_ECONFIG);
	ck_assert_int_eq(cachestore_prefix_check("paytx:cache"), 0);
	ck_assert_int_eq(cachestore_prefix_check("a b"), PAYTX_ECONFIG);
	ck_assert_int_eq(cachestore_prefix_check("a*"), PAYTX_ECONFIG);
	ck_assert_int_eq(cachestore_prefix_check(""), PAYTX_ECONFIG);
	ck_assert_ptr_null(cachestore_create("nope", "p", 100, 0));
}
END_TEST


int main(void)
{
	log_init("test_cachestore");
	(void)log_set_level_name("error");
	url = getenv("PAYTX_TEST_REDIS_URL");
	if (!url || !*url) {
		printf("PAYTX_TEST_REDIS_URL is not set: skipping the cache store tests\n");
		return 77;
	}
	const struct unit_case cases[] = {
		UNIT_CASE(test_installed_entry_is_served),
		UNIT_CASE(test_older_version_never_overwrites_newer),
		UNIT_CASE(test_pending_account_is_not_served_nor_installed),
		UNIT_CASE(test_mark_or_clear_after_lookup_refuses_the_install),
		UNIT_CASE(test_commit_drops_entries_abort_keeps_them),
		UNIT_CASE(test_no_epoch_no_hit_no_install),
		UNIT_CASE(test_entry_of_another_epoch_is_not_served),
		UNIT_CASE(test_renew_only_our_epoch_and_lease_expires),
		UNIT_CASE(test_a_late_renewal_cannot_stretch_the_lease),
		UNIT_CASE(test_marked_txns_are_listed_until_cleared),
		UNIT_CASE(test_unreachable_redis_fails_fast),
		UNIT_CASE(test_urls_and_prefixes_are_checked),
	};
	return UNIT_RUN("cachestore", cases, setup, teardown);
}

/* The shared main of the Check unit tests: a table of cases, one TCase per
 * behaviour (named after its test function without "test_"), an optional
 * fixture around each, then run them all and turn the count into an exit
 * status. Header-only: each test program includes it once. */
#ifndef PAYTX_TEST_UNIT_H
#define PAYTX_TEST_UNIT_H

#include <check.h>
#include <stddef.h>
#include <stdlib.h>

struct unit_case {
	const char *name;
	const TTest *fn;
};

/* { "name", test_name } for START_TEST(test_name). */
#define UNIT_CASE(fn) { (#fn) + 5, fn }
#define UNIT_RUN(suite, cases, setup, teardown) \
	unit_run((suite), (cases), sizeof(cases) / sizeof((cases)[0]), (setup), (teardown))

static inline int unit_run(const char *suite, const struct unit_case *cases, size_t n,
			   SFun setup, SFun teardown)
{
	Suite *s = suite_create(suite);
	for (size_t i = 0; i < n; i++) {
		TCase *tc = tcase_create(cases[i].name);
		if (setup || teardown)
			tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, cases[i].fn);
		suite_add_tcase(s, tc);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif

/* Tests for qs_dirs_within: whole components only, trailing slashes, the root directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/dirs.h"

static void test_within(void **state)
{
	(void)state;
	assert_true(qs_dirs_within("/home/u/sync", "/home/u/sync"));
	assert_true(qs_dirs_within("/home/u/sync", "/home/u/sync/"));
	assert_true(qs_dirs_within("/home/u/sync", "/home/u/sync/a/b.txt"));
	assert_true(qs_dirs_within("/home/u/sync/", "/home/u/sync/a"));
	assert_true(qs_dirs_within("/home/u/sync/", "/home/u/sync"));
	assert_false(qs_dirs_within("/home/u/sync", "/home/u/sync2"));
	assert_false(qs_dirs_within("/home/u/sync", "/home/u/syn"));
	assert_false(qs_dirs_within("/home/u/sync", "/home/u"));
	assert_false(qs_dirs_within("/home/u/sync", "/other"));
	assert_true(qs_dirs_within("/", "/anything/at/all"));
	assert_true(qs_dirs_within("/", "/"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_within),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

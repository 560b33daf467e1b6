/* Tests for checked number parsing: every malformed form is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/num.h"

static void test_parse_u64_table(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		uint64_t max;
		int rc;
		uint64_t want;
	} cases[] = {
		{"0", 10, 0, 0},
		{"10", 10, 0, 10},
		{"11", 10, QS_E2BIG, 0},
		{"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
		{"18446744073709551616", UINT64_MAX, QS_E2BIG, 0},
		{"", 10, QS_EINVAL, 0},
		{"-1", 10, QS_EINVAL, 0},
		{"+1", 10, QS_EINVAL, 0},
		{" 1", 10, QS_EINVAL, 0},
		{"1 ", 10, QS_EINVAL, 0},
		{"1x", 10, QS_EINVAL, 0},
		{"0x1", 10, QS_EINVAL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;
		assert_int_equal(qs_parse_u64(cases[i].in, cases[i].max, &v), cases[i].rc);
		assert_int_equal(v, cases[i].rc == 0 ? cases[i].want : 12345);
	}
}

static void test_parse_size(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(qs_parse_size("64K", UINT64_MAX, &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(qs_parse_size("4M", UINT64_MAX, &v), 0);
	assert_int_equal(v, 4 << 20);
	assert_int_equal(qs_parse_size("K", UINT64_MAX, &v), QS_EINVAL);
	assert_int_equal(qs_parse_size("99999999999T", UINT64_MAX, &v), QS_E2BIG);
	assert_int_equal(qs_parse_size("2G", 1 << 30, &v), QS_E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_u64_table),
		cmocka_unit_test(test_parse_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

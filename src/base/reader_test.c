/* Tests for the bounds-checked reader: sticky errors and leftover detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/reader.h"

static void test_reads_in_order(void **state)
{
	(void)state;
	const uint8_t in[] = {1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 'x', 'y'};
	struct qs_reader r;
	qs_reader_init(&r, in, sizeof(in));
	assert_int_equal(qs_reader_u8(&r), 1);
	assert_int_equal(qs_reader_u16be(&r), 2);
	assert_int_equal(qs_reader_u32be(&r), 3);
	assert_int_equal(qs_reader_u64be(&r), 4);
	const uint8_t *p = qs_reader_bytes(&r, 2);
	assert_non_null(p);
	assert_memory_equal(p, "xy", 2);
	assert_int_equal(qs_reader_finish(&r), 0);
}

static void test_short_read_is_sticky(void **state)
{
	(void)state;
	const uint8_t in[] = {0xff, 0xff, 0xff};
	struct qs_reader r;
	qs_reader_init(&r, in, sizeof(in));
	assert_int_equal(qs_reader_u32be(&r), 0);
	assert_int_equal(r.err, QS_EPROTO);
	/* A later read that would fit still fails: the error is sticky. */
	assert_int_equal(qs_reader_u8(&r), 0);
	assert_null(qs_reader_bytes(&r, 0));
	assert_int_equal(qs_reader_finish(&r), QS_EPROTO);
}

static void test_leftover_fails_finish(void **state)
{
	(void)state;
	const uint8_t in[] = {1, 2};
	struct qs_reader r;
	qs_reader_init(&r, in, sizeof(in));
	(void)qs_reader_u8(&r);
	assert_int_equal(qs_reader_finish(&r), QS_EPROTO);
}

static void test_huge_length_rejected(void **state)
{
	(void)state;
	const uint8_t in[] = {1, 2, 3};
	struct qs_reader r;
	qs_reader_init(&r, in, sizeof(in));
	assert_null(qs_reader_bytes(&r, SIZE_MAX));
	assert_int_equal(qs_reader_finish(&r), QS_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_in_order),
		cmocka_unit_test(test_short_read_is_sticky),
		cmocka_unit_test(test_leftover_fails_finish),
		cmocka_unit_test(test_huge_length_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the bounded buffer: limits are hard, failures leave the buffer unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"

static void test_append_within_limit(void **state)
{
	(void)state;
	struct qs_buf b;
	qs_buf_init(&b, 10);
	assert_int_equal(qs_buf_append(&b, "hello", 5), 0);
	assert_int_equal(qs_buf_append(&b, "world", 5), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "helloworld", 10);
	qs_buf_release(&b);
}

static void test_limit_plus_one_fails_unchanged(void **state)
{
	(void)state;
	struct qs_buf b;
	qs_buf_init(&b, 10);
	assert_int_equal(qs_buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(qs_buf_append(&b, "x", 1), QS_E2BIG);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "0123456789", 10);
	assert_int_equal(qs_buf_reserve(&b, SIZE_MAX), QS_E2BIG);
	qs_buf_release(&b);
}

static void test_integers_big_endian(void **state)
{
	(void)state;
	struct qs_buf b;
	qs_buf_init(&b, 64);
	assert_int_equal(qs_buf_put_u8(&b, 0x01), 0);
	assert_int_equal(qs_buf_put_u16be(&b, 0x0203), 0);
	assert_int_equal(qs_buf_put_u32be(&b, 0x04050607), 0);
	assert_int_equal(qs_buf_put_u64be(&b, 0x08090a0b0c0d0e0fULL), 0);
	const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	qs_buf_release(&b);
}

static void test_consume_moves_rest(void **state)
{
	(void)state;
	struct qs_buf b;
	qs_buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(qs_buf_put_u32be(&b, (uint32_t)i), 0);
	qs_buf_consume(&b, 4 * 500);
	assert_int_equal(b.len, 4 * 500);
	assert_int_equal(b.data[3], (uint8_t)500);
	qs_buf_consume(&b, b.len);
	assert_int_equal(b.len, 0);
	qs_buf_release(&b);
}

static void test_array_reserve(void **state)
{
	(void)state;
	uint32_t *v = NULL;
	size_t cap = 0;
	assert_int_equal(qs_array_reserve((void **)&v, &cap, 1, sizeof(*v)), 0);
	assert_true(cap >= 1);
	assert_int_equal(qs_array_reserve((void **)&v, &cap, 1000, sizeof(*v)), 0);
	assert_true(cap >= 1000);
	for (uint32_t i = 0; i < 1000; i++)
		v[i] = i;
	size_t before = cap;
	uint32_t *keep = v;
	assert_int_equal(qs_array_reserve((void **)&v, &cap, SIZE_MAX / 2, sizeof(*v)), QS_ENOMEM);
	assert_ptr_equal(v, keep); /* unchanged on failure */
	assert_int_equal(cap, before);
	assert_int_equal(v[999], 999);
	qs_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append_within_limit),
		cmocka_unit_test(test_limit_plus_one_fails_unchanged),
		cmocka_unit_test(test_integers_big_endian),
		cmocka_unit_test(test_consume_moves_rest),
		cmocka_unit_test(test_array_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

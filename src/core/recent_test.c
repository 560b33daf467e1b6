/* Unit tests of core/recent: membership per root, expiry, eviction of the oldest entry when
 * full, and chains that stay intact while slots are reused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/recent.h"

static void hash_of(unsigned n, uint8_t h[QS_SHA256_LEN])
{
	memset(h, 0, QS_SHA256_LEN);
	/* Same first bytes for every n: all entries share one bucket chain. */
	h[31] = (uint8_t)n;
	h[30] = (uint8_t)(n >> 8);
}

static void test_add_has_per_root(void **state)
{
	(void)state;
	struct qs_recent *r;
	assert_int_equal(qs_recent_new(8, 1000, &r), 0);
	uint8_t h[QS_SHA256_LEN];
	hash_of(1, h);
	assert_false(qs_recent_has(r, 1, h, 0));
	qs_recent_add(r, 1, h, 100);
	assert_true(qs_recent_has(r, 1, h, 100));
	assert_false(qs_recent_has(r, 2, h, 100)); /* another root never sees it */
	hash_of(2, h);
	assert_false(qs_recent_has(r, 1, h, 100));
	qs_recent_free(r);
}

static void test_expiry_and_refresh(void **state)
{
	(void)state;
	struct qs_recent *r;
	assert_int_equal(qs_recent_new(8, 1000, &r), 0);
	uint8_t h[QS_SHA256_LEN];
	hash_of(7, h);
	qs_recent_add(r, 1, h, 0);
	assert_true(qs_recent_has(r, 1, h, 1000));
	assert_false(qs_recent_has(r, 1, h, 1001));
	qs_recent_add(r, 1, h, 1001); /* refreshed */
	assert_true(qs_recent_has(r, 1, h, 2000));
	qs_recent_free(r);
}

static void test_eviction_when_full(void **state)
{
	(void)state;
	struct qs_recent *r;
	assert_int_equal(qs_recent_new(4, 1000, &r), 0);
	uint8_t h[QS_SHA256_LEN];
	for (unsigned i = 0; i < 10; i++) {
		hash_of(i, h);
		qs_recent_add(r, 1, h, 0);
	}
	for (unsigned i = 0; i < 10; i++) {
		hash_of(i, h);
		/* The last four stay; the older ones were dropped and unlinked. */
		assert_int_equal(qs_recent_has(r, 1, h, 0), i >= 6);
	}
	qs_recent_free(r);
}

static void test_capacity_limits(void **state)
{
	(void)state;
	struct qs_recent *r = NULL;
	assert_int_equal(qs_recent_new(0, 1, &r), QS_EINVAL);
	assert_int_equal(qs_recent_new(((size_t)1 << 24) + 1, 1, &r), QS_EINVAL);
	assert_null(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_has_per_root),
		cmocka_unit_test(test_expiry_and_refresh),
		cmocka_unit_test(test_eviction_when_full),
		cmocka_unit_test(test_capacity_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

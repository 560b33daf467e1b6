/* Tests for the hash table: a randomized run of inserts, finds and removes checked against
 * a plain array, with colliding hashes forced so probe runs wrap and deletion shifts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fswatch/htab.h"

#define N 3000

static bool eq_int(const void *val, const void *key)
{
	return *(const int *)val == *(const int *)key;
}

static void test_against_array(void **state)
{
	(void)state;
	static int vals[N];
	static bool present[N];
	struct qs_htab t;
	qs_htab_init(&t);
	uint64_t seed = 1;
	size_t count = 0;
	for (int round = 0; round < 200000; round++) {
		seed = seed * 6364136223846793005u + 1442695040888963407u;
		int k = (int)((seed >> 33) % N);
		/* Few distinct hashes for many keys: long runs that wrap around the table. */
		uint64_t h = (uint64_t)(k % 7) * 0x9E3779B97F4A7C15u + (k % 3 == 0 ? 15 : 0);
		vals[k] = k;
		void **slot = qs_htab_find(&t, h, eq_int, &k);
		assert_int_equal(slot != NULL, present[k]);
		if (slot != NULL)
			assert_int_equal(*(int *)*slot, k);
		if ((seed >> 20) % 2 == 0 && !present[k]) {
			assert_int_equal(qs_htab_insert(&t, h, &vals[k]), 0);
			present[k] = true;
			count++;
		} else if (present[k]) {
			assert_ptr_equal(qs_htab_remove(&t, h, eq_int, &k), &vals[k]);
			present[k] = false;
			count--;
		}
		assert_int_equal(t.count, count);
	}
	size_t seen = 0;
	for (size_t i = 0; i < t.cap; i++)
		seen += t.slots[i].val != NULL;
	assert_int_equal(seen, count);
	int absent = N + 1;
	assert_null(qs_htab_remove(&t, 0, eq_int, &absent));
	qs_htab_clear(&t);
	assert_int_equal(t.count, 0);
	assert_null(qs_htab_find(&t, 0, eq_int, &vals[0]));
	qs_htab_release(&t);
	assert_null(qs_htab_find(&t, 0, eq_int, &vals[0]));
}

static void test_hashes_differ(void **state)
{
	(void)state;
	assert_true(qs_htab_hash_bytes("a/b", 3) != qs_htab_hash_bytes("a/c", 3));
	assert_true(qs_htab_hash_bytes("", 0) != qs_htab_hash_bytes("a", 1));
	assert_true(qs_htab_hash_u64(1) != qs_htab_hash_u64(2));
	assert_int_equal(qs_htab_hash_bytes("xyz", 3), qs_htab_hash_bytes("xyz", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_array),
		cmocka_unit_test(test_hashes_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Chunker tests: the gear table matches its recipe, boundaries do not depend on how the
 * stream is split into feeds, one inserted byte changes at most two chunks, sizes stay in
 * [min, max], content without boundaries is cut at max, chunk hashes are the SHA-256 of the
 * bytes, fixed known answers, and the callback error contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/err.h"
#include "core/chunker.h"
#include "core/sha256.h"

/* Sanitizer builds run the slow whole-buffer passes fewer times. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

#define MIB ((size_t)1024 * 1024)

static const struct qs_chunker_params small_params = {256, 1024, 4096};

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Fills buf with the splitmix64 stream of seed, each output as 8 little-endian bytes. */
static void fill_seeded(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = splitmix64(&seed);
		buf[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

static uint8_t *alloc_seeded(size_t len, uint64_t seed)
{
	uint8_t *buf = qs_malloc(len);
	assert_non_null(buf);
	fill_seeded(buf, len, seed);
	return buf;
}

struct chunk_rec {
	uint64_t offset;
	size_t len;
	uint8_t sha[QS_SHA256_LEN];
};

struct chunk_list {
	struct chunk_rec *v;
	size_t n, cap;
	size_t fail_at; /* the callback fails on this chunk index (SIZE_MAX: never) */
};

static void list_init(struct chunk_list *l)
{
	memset(l, 0, sizeof(*l));
	l->fail_at = SIZE_MAX;
}

static void list_release(struct chunk_list *l)
{
	qs_free(l->v);
	list_init(l);
}

static int collect(void *arg, uint64_t offset, size_t len_bytes,
		   const uint8_t sha256[QS_SHA256_LEN])
{
	struct chunk_list *l = arg;
	if (l->n == l->fail_at)
		return QS_ECANCELED;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = qs_realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	struct chunk_rec *r = &l->v[l->n++];
	r->offset = offset;
	r->len = len_bytes;
	memcpy(r->sha, sha256, QS_SHA256_LEN);
	return 0;
}

/* Chunks data through the streaming API. split_seed 0 feeds everything at once; otherwise
 * feeds have pseudo-random sizes in [0, max_feed]. */
static void run_chunker(const struct qs_chunker_params *p, const uint8_t *data, size_t len,
			uint64_t split_seed, size_t max_feed, struct chunk_list *out)
{
	struct qs_chunker c;
	list_init(out);
	assert_int_equal(qs_chunker_init(&c, p, collect, out), 0);
	size_t off = 0;
	while (off < len) {
		size_t n = len - off;
		if (split_seed != 0) {
			size_t want = (size_t)(splitmix64(&split_seed) % (max_feed + 1));
			n = want < n ? want : n;
		}
		assert_int_equal(qs_chunker_feed(&c, data + off, n), 0);
		off += n;
	}
	assert_int_equal(qs_chunker_finish(&c), 0);
	qs_chunker_release(&c);
}

/* Checks every property of a chunking of data: contiguous offsets covering all bytes,
 * lengths in [min, max] (the last in [1, max]), each hash the SHA-256 of its bytes, and
 * the same boundaries as the boundary-only scan. */
static void check_chunks(const struct qs_chunker_params *p, const uint8_t *data, size_t len,
			 const struct chunk_list *l)
{
	uint64_t off = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct chunk_rec *r = &l->v[i];
		assert_int_equal(r->offset, off);
		assert_true(r->len >= 1 && r->len <= p->max_bytes);
		if (i + 1 < l->n)
			assert_true(r->len >= p->min_bytes);
		uint8_t want[QS_SHA256_LEN];
		assert_int_equal(qs_sha256(data + off, r->len, want), 0);
		assert_memory_equal(r->sha, want, QS_SHA256_LEN);
		size_t scanned;
		assert_int_equal(qs_chunker_scan(p, data + off, len - (size_t)off, &scanned), 0);
		assert_int_equal(scanned, r->len);
		off += r->len;
	}
	assert_int_equal(off, len);
}

static void assert_same_chunks(const struct chunk_list *a, const struct chunk_list *b)
{
	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->v, b->v, a->n * sizeof(*a->v));
}

static void test_gear_table_recipe(void **state)
{
	(void)state;
	uint64_t s = 0x51554943532d4344u; /* "QUICS-CD" */
	for (size_t i = 0; i < 256; i++)
		assert_int_equal(qs_chunker_gear[i], splitmix64(&s));
}

static void test_params_validation(void **state)
{
	(void)state;
	const struct qs_chunker_params bad[] = {
		{63, 1024, 4096},   /* min below the window */
		{256, 1000, 4096},  /* avg not a power of two */
		{2048, 1024, 4096}, /* avg below min */
		{256, 1024, 1000},  /* max below avg */
		{64, 4, 4096},      /* avg too small for the loose mask */
		{256, 1024, (size_t)UINT32_MAX + 1},
	};
	assert_true(qs_chunker_params_valid(&qs_chunker_default_params));
	assert_int_equal(qs_chunker_default_params.min_bytes, 256 * 1024);
	assert_int_equal(qs_chunker_default_params.avg_bytes, 1024 * 1024);
	assert_int_equal(qs_chunker_default_params.max_bytes, 4 * 1024 * 1024);
	assert_true(qs_chunker_params_valid(&small_params));
	const struct qs_chunker_params edge = {64, 64, 64};
	assert_true(qs_chunker_params_valid(&edge));
	struct chunk_list l;
	list_init(&l);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qs_chunker c;
		size_t n = 77;
		assert_false(qs_chunker_params_valid(&bad[i]));
		assert_int_equal(qs_chunker_init(&c, &bad[i], collect, &l), QS_EINVAL);
		assert_int_equal(qs_chunker_scan(&bad[i], (const uint8_t *)"x", 1, &n), QS_EINVAL);
		assert_int_equal(n, 77);
	}
	struct qs_chunker c;
	assert_int_equal(qs_chunker_init(&c, &small_params, NULL, NULL), QS_EINVAL);
}

static void test_empty_and_short_streams(void **state)
{
	(void)state;
	struct chunk_list l;
	run_chunker(&qs_chunker_default_params, NULL, 0, 0, 0, &l);
	assert_int_equal(l.n, 0);
	list_release(&l);

	uint8_t *buf = alloc_seeded(1000, 1);
	run_chunker(&qs_chunker_default_params, buf, 1000, 5, 100, &l);
	assert_int_equal(l.n, 1);
	check_chunks(&qs_chunker_default_params, buf, 1000, &l);
	list_release(&l);
	qs_free(buf);
}

/* Boundaries and hashes do not depend on how the stream is split into feeds. */
static void test_split_independence_small(void **state)
{
	(void)state;
	const size_t len = MIB, tiny_len = 128 * 1024;
	uint8_t *buf = alloc_seeded(len, 2);
	struct chunk_list ref, got;
	run_chunker(&small_params, buf, len, 0, 0, &ref);
	assert_true(ref.n > len / small_params.max_bytes);
	check_chunks(&small_params, buf, len, &ref);
	const size_t max_feeds[] = {3, 64, 1000, 5000, 70000};
	for (size_t i = 0; i < sizeof(max_feeds) / sizeof(max_feeds[0]); i++) {
		run_chunker(&small_params, buf, len, 100 + i, max_feeds[i], &got);
		assert_same_chunks(&ref, &got);
		list_release(&got);
	}
	list_release(&ref);

	/* One byte per feed on a smaller buffer. */
	run_chunker(&small_params, buf, tiny_len, 0, 0, &ref);
	struct qs_chunker c;
	list_init(&got);
	assert_int_equal(qs_chunker_init(&c, &small_params, collect, &got), 0);
	for (size_t i = 0; i < tiny_len; i++)
		assert_int_equal(qs_chunker_feed(&c, buf + i, 1), 0);
	assert_int_equal(qs_chunker_finish(&c), 0);
	qs_chunker_release(&c);
	assert_same_chunks(&ref, &got);
	check_chunks(&small_params, buf, tiny_len, &got);
	list_release(&got);
	list_release(&ref);
	qs_free(buf);
}

static void test_split_independence_default(void **state)
{
	(void)state;
	const size_t len = 24 * MIB;
	uint8_t *buf = alloc_seeded(len, 3);
	struct chunk_list ref, got;
	run_chunker(&qs_chunker_default_params, buf, len, 0, 0, &ref);
	check_chunks(&qs_chunker_default_params, buf, len, &ref);
	assert_true(ref.n >= 6);
	run_chunker(&qs_chunker_default_params, buf, len, 7, 3 * MIB, &got);
	assert_same_chunks(&ref, &got);
	list_release(&got);
	run_chunker(&qs_chunker_default_params, buf, len, 8, 4093, &got);
	assert_same_chunks(&ref, &got);
	list_release(&got);
	list_release(&ref);
	qs_free(buf);
}

static bool same_chunk(const struct chunk_rec *a, const struct chunk_rec *b)
{
	return a->len == b->len && memcmp(a->sha, b->sha, QS_SHA256_LEN) == 0;
}

/* Inserting one byte into a 64 MiB buffer keeps every chunk but at most two: the new list
 * is the old one with a run of at most two chunks replaced by at most two. */
static void test_insert_one_byte(void **state)
{
	(void)state;
	const size_t len = 64 * MIB;
	const size_t positions = TEST_SANITIZED ? 3 : 8;
	uint8_t *buf = alloc_seeded(len, 4);
	uint8_t *mod = qs_malloc(len + 1);
	assert_non_null(mod);
	struct chunk_list old, got;
	run_chunker(&qs_chunker_default_params, buf, len, 0, 0, &old);
	assert_true(old.n >= 40);
	uint64_t rng = 44;
	for (size_t k = 0; k < positions; k++) {
		/* One random position in each of `positions` equal stretches of the buffer. */
		size_t stretch = len / positions;
		size_t pos = k * stretch + (size_t)(splitmix64(&rng) % stretch);
		memcpy(mod, buf, pos);
		mod[pos] = (uint8_t)splitmix64(&rng);
		memcpy(mod + pos + 1, buf + pos, len - pos);
		run_chunker(&qs_chunker_default_params, mod, len + 1, 0, 0, &got);
		size_t prefix = 0, suffix = 0;
		while (prefix < old.n && prefix < got.n &&
		       same_chunk(&old.v[prefix], &got.v[prefix]))
			prefix++;
		while (suffix < old.n - prefix && suffix < got.n - prefix &&
		       same_chunk(&old.v[old.n - 1 - suffix], &got.v[got.n - 1 - suffix]))
			suffix++;
		print_message("insert at %zu: old %zu chunks, new %zu, replaced %zu by %zu\n", pos,
			      old.n, got.n, old.n - prefix - suffix, got.n - prefix - suffix);
		assert_true(old.n - prefix - suffix >= 1 && old.n - prefix - suffix <= 2);
		assert_true(got.n - prefix - suffix >= 1 && got.n - prefix - suffix <= 2);
		list_release(&got);
	}
	list_release(&old);
	qs_free(mod);
	qs_free(buf);
}

/* Low-entropy content (text-like, short repeats) still gives chunks within bounds. */
static void test_sizes_within_bounds(void **state)
{
	(void)state;
	const size_t len = 2 * MIB;
	uint8_t *buf = qs_malloc(len);
	assert_non_null(buf);
	uint64_t rng = 5;
	static const char words[] = "the quick brown fox jumps over a lazy dog 0123456789\n";
	for (size_t i = 0; i < len; i++) {
		if (i % 4096 == 0)
			rng ^= i;
		buf[i] = (uint8_t)words[(i + (splitmix64(&rng) % 3 == 0)) % (sizeof(words) - 1)];
	}
	struct chunk_list l;
	run_chunker(&small_params, buf, len, 9, 10000, &l);
	check_chunks(&small_params, buf, len, &l);
	list_release(&l);
	run_chunker(&qs_chunker_default_params, buf, len, 0, 0, &l);
	check_chunks(&qs_chunker_default_params, buf, len, &l);
	list_release(&l);
	qs_free(buf);
}

/* All zeros never satisfies a mask, so every chunk but the last is exactly max. */
static void test_zeros_cut_at_max(void **state)
{
	(void)state;
	const struct qs_chunker_params *params[] = {&small_params, &qs_chunker_default_params};
	for (size_t k = 0; k < 2; k++) {
		const struct qs_chunker_params *p = params[k];
		size_t len = 3 * p->max_bytes + 1234;
		uint8_t *buf = qs_calloc(len, 1);
		assert_non_null(buf);
		struct chunk_list l;
		run_chunker(p, buf, len, 11, p->max_bytes / 3, &l);
		assert_int_equal(l.n, 4);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(l.v[i].len, p->max_bytes);
		assert_int_equal(l.v[3].len, 1234);
		check_chunks(p, buf, len, &l);
		list_release(&l);
		qs_free(buf);
	}
}

static void check_known_lengths(const struct qs_chunker_params *p, size_t len, uint64_t seed,
				const size_t *want, size_t want_n, const char *first_sha_hex)
{
	uint8_t *buf = alloc_seeded(len, seed);
	struct chunk_list l;
	run_chunker(p, buf, len, 0, 0, &l);
	assert_int_equal(l.n, want_n);
	for (size_t i = 0; i < want_n; i++)
		assert_int_equal(l.v[i].len, want[i]);
	char hex[QS_SHA256_HEX_LEN + 1];
	qs_hex_encode(l.v[0].sha, QS_SHA256_LEN, hex);
	assert_string_equal(hex, first_sha_hex);
	list_release(&l);
	qs_free(buf);
}

/* Boundaries of fixed seeded buffers. These numbers are the on-disk contract: if this
 * test fails, the gear table, the masks or the boundary rule changed. */
static void test_known_answer(void **state)
{
	(void)state;
	/* Cross-checked against an independent Python model of docs/chunker.md. */
	static const size_t want_default[] = {
		530599, 1136888, 566212,  1095625, 1338430, 674324,  804226,  1157997, 367221,
		544634, 1293152, 1271114, 1064387, 1180915, 1254632, 1154902, 1098866, 243092,
	};
	static const size_t want_small[] = {
		1489, 620,  1545, 1054, 1028, 1866, 1196, 1075, 1235, 2315, 1232, 1071, 1968, 1093,
		1202, 1464, 972,  1130, 1283, 1295, 1478, 1473, 1152, 1594, 532,  1393, 1294, 476,
		1113, 481,  1059, 1145, 295,  1304, 1102, 1818, 1131, 1040, 1312, 1337, 576,  897,
		1228, 1039, 1364, 1284, 1096, 1205, 486,  1112, 851,  316,  521,  2887, 1161, 851,
	};
	check_known_lengths(&qs_chunker_default_params, 16 * MIB, 0x4b4154, want_default,
			    sizeof(want_default) / sizeof(want_default[0]),
			    "6966fb7f8ae52d59c1b848bfa476bbd5d1ece15f36f7e12876ff1845c2c4c99d");
	check_known_lengths(&small_params, 64 * 1024, 0x4b4154, want_small,
			    sizeof(want_small) / sizeof(want_small[0]),
			    "582afddf356bfed57399344f58f06ed34ba280c2f1c8ddbf1cf8178349aa7f47");
}

/* A callback error stops the stream at once, is returned, and sticks. */
static void test_callback_error_aborts(void **state)
{
	(void)state;
	const size_t len = 256 * 1024;
	uint8_t *buf = alloc_seeded(len, 6);
	struct chunk_list l;
	list_init(&l);
	l.fail_at = 3;
	struct qs_chunker c;
	assert_int_equal(qs_chunker_init(&c, &small_params, collect, &l), 0);
	assert_int_equal(qs_chunker_feed(&c, buf, len), QS_ECANCELED);
	assert_int_equal(l.n, 3);
	assert_int_equal(qs_chunker_feed(&c, buf, len), QS_ECANCELED);
	assert_int_equal(qs_chunker_finish(&c), QS_ECANCELED);
	assert_int_equal(l.n, 3);
	qs_chunker_release(&c);
	list_release(&l);

	/* The error from the last chunk comes back from finish. */
	list_init(&l);
	l.fail_at = 0;
	assert_int_equal(qs_chunker_init(&c, &small_params, collect, &l), 0);
	assert_int_equal(qs_chunker_feed(&c, buf, 100), 0);
	assert_int_equal(qs_chunker_finish(&c), QS_ECANCELED);
	assert_int_equal(l.n, 0);
	qs_chunker_release(&c);
	list_release(&l);
	qs_free(buf);
}

static void test_use_after_finish(void **state)
{
	(void)state;
	struct chunk_list l;
	list_init(&l);
	struct qs_chunker c;
	assert_int_equal(qs_chunker_init(&c, &small_params, collect, &l), 0);
	assert_int_equal(qs_chunker_feed(&c, "abc", 3), 0);
	assert_int_equal(qs_chunker_finish(&c), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(qs_chunker_feed(&c, "d", 1), QS_ESTATE);
	assert_int_equal(qs_chunker_finish(&c), QS_ESTATE);
	assert_int_equal(l.n, 1);
	qs_chunker_release(&c);
	list_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gear_table_recipe),
		cmocka_unit_test(test_params_validation),
		cmocka_unit_test(test_empty_and_short_streams),
		cmocka_unit_test(test_split_independence_small),
		cmocka_unit_test(test_split_independence_default),
		cmocka_unit_test(test_insert_one_byte),
		cmocka_unit_test(test_sizes_within_bounds),
		cmocka_unit_test(test_zeros_cut_at_max),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_callback_error_aborts),
		cmocka_unit_test(test_use_after_finish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

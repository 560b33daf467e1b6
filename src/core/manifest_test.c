/* Manifest tests: the encoding layout of docs/manifest.md, round trip through the chunker,
 * every truncation and each kind of garbage rejected with the output untouched, the chunk
 * count limit (limit passes, limit + 1 fails) and the manifest hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "core/chunker.h"
#include "core/manifest.h"
#include "core/sha256.h"

#define ENCODING_MAX ((size_t)64 * 1024 * 1024)

static void sha_of_index(size_t i, uint8_t out[QS_SHA256_LEN])
{
	for (size_t k = 0; k < QS_SHA256_LEN; k++)
		out[k] = (uint8_t)(i * 7 + k * 13 + (i >> 8));
}

/* A manifest of n chunks with distinct hashes and lengths 1000 + i. */
static void build(struct qs_manifest *m, size_t n)
{
	qs_manifest_init(m);
	for (size_t i = 0; i < n; i++) {
		uint8_t sha[QS_SHA256_LEN];
		sha_of_index(i, sha);
		assert_int_equal(qs_manifest_append(m, sha, 1000 + i), 0);
	}
}

static void encode(const struct qs_manifest *m, struct qs_buf *b)
{
	qs_buf_init(b, ENCODING_MAX);
	assert_int_equal(qs_manifest_encode(m, b), 0);
	assert_int_equal(b->len, qs_manifest_encoded_size(m));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Decoding must fail with want and leave a previously decoded manifest untouched. */
static void assert_decode_fails(const uint8_t *data, size_t len, int want)
{
	struct qs_manifest keep, ref;
	build(&keep, 2);
	build(&ref, 2);
	assert_int_equal(qs_manifest_decode(&keep, data, len), want);
	assert_true(qs_manifest_equal(&keep, &ref));
	qs_manifest_release(&keep);
	qs_manifest_release(&ref);
}

static void test_empty_manifest(void **state)
{
	(void)state;
	struct qs_manifest m, d;
	struct qs_buf b;
	qs_manifest_init(&m);
	encode(&m, &b);
	static const uint8_t want[QS_MANIFEST_HEADER_BYTES] = {'Q', 'S', 'M', 'F', 1};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	build(&d, 3);
	assert_int_equal(qs_manifest_decode(&d, b.data, b.len), 0);
	assert_int_equal(d.count, 0);
	assert_int_equal(d.size_bytes, 0);
	uint8_t h[QS_SHA256_LEN], hw[QS_SHA256_LEN];
	assert_int_equal(qs_manifest_hash(&m, h), 0);
	assert_int_equal(qs_sha256(want, sizeof(want), hw), 0);
	assert_memory_equal(h, hw, QS_SHA256_LEN);
	qs_manifest_release(&d);
	qs_buf_release(&b);
}

/* The byte layout is the one in docs/manifest.md. */
static void test_encoding_layout(void **state)
{
	(void)state;
	struct qs_manifest m;
	struct qs_buf b;
	build(&m, 3);
	encode(&m, &b);
	assert_int_equal(b.len, 17 + 3 * 36);
	assert_memory_equal(b.data, "QSMF", 4);
	assert_int_equal(b.data[4], 1);
	assert_int_equal(get_be(b.data + 5, 8), 1000 + 1001 + 1002);
	assert_int_equal(get_be(b.data + 13, 4), 3);
	for (size_t i = 0; i < 3; i++) {
		const uint8_t *e = b.data + 17 + 36 * i;
		uint8_t sha[QS_SHA256_LEN];
		sha_of_index(i, sha);
		assert_memory_equal(e, sha, QS_SHA256_LEN);
		assert_int_equal(get_be(e + 32, 4), 1000 + i);
	}
	qs_buf_release(&b);
	qs_manifest_release(&m);
}

/* A manifest built by the chunker survives encode/decode, and its hash is the SHA-256 of
 * the encoding. */
static void test_round_trip_from_chunker(void **state)
{
	(void)state;
	const struct qs_chunker_params p = {256, 1024, 4096};
	const size_t len = 300 * 1000;
	uint8_t *data = qs_malloc(len);
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)((i * 2654435761u) >> 13);
	struct qs_manifest m, d;
	struct qs_chunker c;
	qs_manifest_init(&m);
	assert_int_equal(qs_chunker_init(&c, &p, qs_manifest_on_chunk, &m), 0);
	assert_int_equal(qs_chunker_feed(&c, data, len), 0);
	assert_int_equal(qs_chunker_finish(&c), 0);
	qs_chunker_release(&c);
	assert_int_equal(m.size_bytes, len);
	assert_true(m.count > 50);

	struct qs_buf b, b2;
	encode(&m, &b);
	qs_manifest_init(&d);
	assert_int_equal(qs_manifest_decode(&d, b.data, b.len), 0);
	assert_true(qs_manifest_equal(&m, &d));
	encode(&d, &b2);
	assert_int_equal(b2.len, b.len);
	assert_memory_equal(b2.data, b.data, b.len);

	uint8_t h[QS_SHA256_LEN], hw[QS_SHA256_LEN];
	assert_int_equal(qs_manifest_hash(&m, h), 0);
	assert_int_equal(qs_sha256(b.data, b.len, hw), 0);
	assert_memory_equal(h, hw, QS_SHA256_LEN);

	/* Swapping two chunks changes the manifest and its hash. */
	struct qs_manifest_chunk t = d.chunks[0];
	d.chunks[0] = d.chunks[1];
	d.chunks[1] = t;
	assert_false(qs_manifest_equal(&m, &d));
	assert_int_equal(qs_manifest_hash(&d, hw), 0);
	assert_memory_not_equal(h, hw, QS_SHA256_LEN);

	qs_buf_release(&b);
	qs_buf_release(&b2);
	qs_manifest_release(&m);
	qs_manifest_release(&d);
	qs_free(data);
}

static void test_every_truncation_fails(void **state)
{
	(void)state;
	struct qs_manifest m;
	struct qs_buf b;
	build(&m, 4);
	encode(&m, &b);
	for (size_t n = 0; n < b.len; n++)
		assert_decode_fails(b.data, n, QS_EPROTO);
	/* One byte too many fails as well. */
	assert_int_equal(qs_buf_put_u8(&b, 0), 0);
	assert_decode_fails(b.data, b.len, QS_EPROTO);
	qs_buf_release(&b);
	qs_manifest_release(&m);
}

static void test_garbage_rejected(void **state)
{
	(void)state;
	struct qs_manifest m;
	struct qs_buf b;
	build(&m, 2);
	encode(&m, &b);
	uint8_t *x = qs_malloc(b.len);
	assert_non_null(x);
	const size_t len0 = 17, len1 = 17 + 36 + 32;
	struct {
		size_t at, size;
		uint64_t value;
	} cases[] = {
		{0, 1, 'q'},                                /* magic */
		{4, 1, 0},                                  /* version */
		{4, 1, 2},                                  /* version */
		{5, 8, 1000 + 1001 + 1},                    /* total size below the sum */
		{5, 8, 1000 + 1001 + 1000},                 /* total size above the sum */
		{13, 4, 1},                                 /* fewer chunks than entries */
		{13, 4, 3},                                 /* more chunks than entries */
		{len1, 4, 0},                               /* zero-length chunk */
		{len1, 4, QS_MANIFEST_CHUNK_MAX_BYTES + 1}, /* chunk above the maximum */
		{len0 + 32, 4, 0xffffffffu},                /* chunk far above the maximum */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(x, b.data, b.len);
		put_be(x + cases[i].at, cases[i].value, cases[i].size);
		assert_decode_fails(x, b.len, QS_EPROTO);
	}
	/* The unmodified copy decodes, so each failure above is due to its one change. */
	memcpy(x, b.data, b.len);
	struct qs_manifest d;
	qs_manifest_init(&d);
	assert_int_equal(qs_manifest_decode(&d, x, b.len), 0);
	qs_manifest_release(&d);
	/* A chunk of exactly the maximum is fine. */
	put_be(x + len1, QS_MANIFEST_CHUNK_MAX_BYTES, 4);
	put_be(x + 5, 1000 + QS_MANIFEST_CHUNK_MAX_BYTES, 8);
	assert_int_equal(qs_manifest_decode(&d, x, b.len), 0);
	assert_int_equal(d.size_bytes, 1000 + QS_MANIFEST_CHUNK_MAX_BYTES);
	qs_manifest_release(&d);
	qs_free(x);
	qs_buf_release(&b);
	qs_manifest_release(&m);
}

static void test_append_rules(void **state)
{
	(void)state;
	struct qs_manifest m, ref;
	uint8_t sha[QS_SHA256_LEN] = {1};
	build(&m, 1);
	build(&ref, 1);
	assert_int_equal(qs_manifest_append(&m, sha, 0), QS_EINVAL);
	assert_int_equal(qs_manifest_append(&m, sha, QS_MANIFEST_CHUNK_MAX_BYTES + 1), QS_EINVAL);
	assert_true(qs_manifest_equal(&m, &ref));
	/* The chunker callback insists on contiguous offsets. */
	assert_int_equal(qs_manifest_on_chunk(&m, 999, 10, sha), QS_EINVAL);
	assert_int_equal(qs_manifest_on_chunk(&m, 1001, 10, sha), QS_EINVAL);
	assert_true(qs_manifest_equal(&m, &ref));
	assert_int_equal(qs_manifest_on_chunk(&m, 1000, 10, sha), 0);
	assert_int_equal(m.count, 2);
	assert_int_equal(m.size_bytes, 1010);
	qs_manifest_release(&m);
	qs_manifest_release(&ref);
}

static void test_encode_respects_buffer_limit(void **state)
{
	(void)state;
	struct qs_manifest m;
	struct qs_buf b;
	build(&m, 2);
	qs_buf_init(&b, qs_manifest_encoded_size(&m) - 1);
	assert_int_equal(qs_buf_append(&b, "x", 1), 0);
	assert_int_equal(qs_manifest_encode(&m, &b), QS_E2BIG);
	assert_int_equal(b.len, 1);
	qs_buf_release(&b);
	qs_manifest_release(&m);
}

/* QS_MANIFEST_MAX_CHUNKS chunks decode; one more is refused by append and by decode. */
static void test_chunk_count_limit(void **state)
{
	(void)state;
	struct qs_manifest m, d;
	struct qs_buf b;
	uint8_t sha[QS_SHA256_LEN] = {7};
	qs_manifest_init(&m);
	for (size_t i = 0; i < QS_MANIFEST_MAX_CHUNKS; i++)
		assert_int_equal(qs_manifest_append(&m, sha, 1 + i % 4096), 0);
	assert_int_equal(qs_manifest_append(&m, sha, 1), QS_E2BIG);
	assert_int_equal(m.count, QS_MANIFEST_MAX_CHUNKS);
	encode(&m, &b);
	qs_manifest_init(&d);
	assert_int_equal(qs_manifest_decode(&d, b.data, b.len), 0);
	assert_true(qs_manifest_equal(&m, &d));
	qs_manifest_release(&d);

	/* limit + 1: a well-formed encoding in every other respect. */
	uint8_t entry[QS_MANIFEST_ENTRY_BYTES] = {7};
	put_be(entry + 32, 1, 4);
	assert_int_equal(qs_buf_append(&b, entry, sizeof(entry)), 0);
	put_be(b.data + 5, m.size_bytes + 1, 8);
	put_be(b.data + 13, QS_MANIFEST_MAX_CHUNKS + 1, 4);
	assert_decode_fails(b.data, b.len, QS_ELIMIT);
	/* A huge count in a short input is refused without allocating for it. */
	assert_decode_fails(b.data, QS_MANIFEST_HEADER_BYTES, QS_ELIMIT);
	qs_buf_release(&b);
	qs_manifest_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_manifest),
		cmocka_unit_test(test_encoding_layout),
		cmocka_unit_test(test_round_trip_from_chunker),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_garbage_rejected),
		cmocka_unit_test(test_append_rules),
		cmocka_unit_test(test_encode_respects_buffer_limit),
		cmocka_unit_test(test_chunk_count_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

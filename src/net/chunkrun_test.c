/* Chunk run receiver: a correct run completes, and every lie in a run is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_frameHeaderSize, to rewrite a frame's content size */
#include <zstd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "core/frame.h"
#include "core/wire.h"
#include "net/chunkrun.h"

/* Packs a ChunkHeader's payload (without the frame header) into b. */
static void header(struct qs_buf *b, const uint8_t *hash, uint32_t length, uint32_t wire_length,
		   Quics__Compression comp)
{
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	h.hash.data = (uint8_t *)(uintptr_t)hash;
	h.hash.len = QS_SHA256_LEN;
	h.length = length;
	h.wire_length = wire_length;
	h.compression = comp;
	qs_buf_init(b, 1 << 20);
	assert_int_equal(qs_wire_pack(b, &h.base), 0);
	qs_buf_consume(b, QS_FRAME_HEADER_LEN);
}

static void test_good_run_in_pieces(void **state)
{
	(void)state;
	uint8_t data[10000], hash[QS_SHA256_LEN];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	assert_int_equal(qs_sha256(data, sizeof(data), hash), 0);
	struct qs_buf b;
	header(&b, hash, sizeof(data), sizeof(data), QUICS__COMPRESSION__COMPRESSION_NONE);
	struct qs_chunk_rx rx;
	qs_chunk_rx_init(&rx);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, hash), 0);
	bool done = false;
	for (size_t off = 0; off < sizeof(data); off += 999) {
		size_t n = sizeof(data) - off < 999 ? sizeof(data) - off : 999;
		assert_false(done);
		assert_int_equal(qs_chunk_rx_data(&rx, data + off, n, &done), 0);
	}
	assert_true(done);
	assert_int_equal(rx.data.len, sizeof(data));
	assert_memory_equal(rx.data.data, data, sizeof(data));
	/* One byte more than announced is refused. */
	assert_int_equal(qs_chunk_rx_data(&rx, data, 1, &done), QS_ESTATE);
	qs_chunk_rx_release(&rx);
	qs_buf_release(&b);
}

static void test_lies_refused(void **state)
{
	(void)state;
	uint8_t data[100], hash[QS_SHA256_LEN], other[QS_SHA256_LEN];
	memset(data, 'x', sizeof(data));
	assert_int_equal(qs_sha256(data, sizeof(data), hash), 0);
	memset(other, 1, sizeof(other));
	struct qs_chunk_rx rx;
	struct qs_buf b;
	bool done;
	qs_chunk_rx_init(&rx);
	/* Bytes that do not match the announced hash. */
	header(&b, other, sizeof(data), sizeof(data), QUICS__COMPRESSION__COMPRESSION_NONE);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, NULL), 0);
	assert_int_equal(qs_chunk_rx_data(&rx, data, sizeof(data), &done), QS_EPROTO);
	qs_buf_release(&b);
	qs_chunk_rx_release(&rx);
	/* A header naming another chunk than the one asked for. */
	qs_chunk_rx_init(&rx);
	header(&b, other, sizeof(data), sizeof(data), QUICS__COMPRESSION__COMPRESSION_NONE);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, hash), QS_EPROTO);
	qs_buf_release(&b);
	/* Over the chunk maximum (limit + 1), and wire_length != length. */
	header(&b, hash, 4u * 1024 * 1024 + 1, 4u * 1024 * 1024 + 1,
	       QUICS__COMPRESSION__COMPRESSION_NONE);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, NULL), QS_EPROTO);
	qs_buf_release(&b);
	header(&b, hash, sizeof(data), sizeof(data) - 1, QUICS__COMPRESSION__COMPRESSION_NONE);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, NULL), QS_EPROTO);
	qs_buf_release(&b);
	/* More DATA than announced. */
	header(&b, hash, sizeof(data), sizeof(data), QUICS__COMPRESSION__COMPRESSION_NONE);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, NULL), 0);
	assert_int_equal(qs_chunk_rx_data(&rx, data, 60, &done), 0);
	assert_int_equal(qs_chunk_rx_data(&rx, data, 41, &done), QS_EPROTO);
	qs_buf_release(&b);
	/* Garbage instead of a header; DATA without a header. */
	qs_chunk_rx_release(&rx);
	qs_chunk_rx_init(&rx);
	assert_int_equal(qs_chunk_rx_header(&rx, (const uint8_t *)"\xff\xff\xff", 3, NULL),
			 QS_EPROTO);
	assert_int_equal(qs_chunk_rx_data(&rx, data, 1, &done), QS_ESTATE);
	qs_chunk_rx_release(&rx);
}

/* Deterministic filler: xorshift bytes (incompressible) or lines of words (text-like). */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint8_t *random_bytes(size_t len, uint64_t seed)
{
	uint8_t *p = qs_malloc(len);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(next_rand(&seed) >> 24);
	return p;
}

static uint8_t *text_bytes(size_t len, uint64_t seed)
{
	static const char *const words[] = {"sync ", "chunk ",   "the ",     "server ", "client ",
					    "file ", "version ", "of ",      "a ",      "manifest ",
					    "hash ", "quic ",    "stream\n", "42 ",     "folder "};
	uint8_t *p = qs_malloc(len);
	assert_non_null(p);
	for (size_t i = 0; i < len;) {
		const char *w = words[next_rand(&seed) % (sizeof(words) / sizeof(words[0]))];
		for (size_t j = 0; w[j] != '\0' && i < len; j++)
			p[i++] = (uint8_t)w[j];
	}
	return p;
}

/* Feeds a whole run (header, then DATA in pieces: 1-byte pieces first, so the frame header
 * arrives split) and returns the last call's result. */
static int feed_run(struct qs_chunk_rx *rx, const uint8_t *hash, uint32_t length,
		    const uint8_t *wire, uint32_t wire_length, Quics__Compression comp, bool *done)
{
	struct qs_buf b;
	header(&b, hash, length, wire_length, comp);
	int rc = qs_chunk_rx_header(rx, b.data, b.len, hash);
	qs_buf_release(&b);
	*done = false;
	for (size_t off = 0; rc == 0 && off < wire_length;) {
		size_t n = off < 40 ? 1 : 65536;
		if (n > wire_length - off)
			n = wire_length - off;
		assert_false(*done);
		rc = qs_chunk_rx_data(rx, wire + off, n, done);
		off += n;
	}
	return rc;
}

static void test_compressible_goes_zstd(void **state)
{
	(void)state;
	const size_t len = (size_t)4 << 20; /* the largest chunk */
	uint8_t *text = text_bytes(len, 7), hash[QS_SHA256_LEN];
	assert_int_equal(qs_sha256(text, len, hash), 0);
	uint8_t *z;
	size_t zlen;
	assert_int_equal(qs_chunk_compress(text, len, &z, &zlen), 0);
	assert_non_null(z);
	assert_true(zlen <= len - len / 10);
	/* The bytes on the wire: the header and the DATA of the run, compressed or not. */
	struct qs_buf hz, hraw;
	header(&hz, hash, (uint32_t)len, (uint32_t)zlen, QUICS__COMPRESSION__COMPRESSION_ZSTD);
	header(&hraw, hash, (uint32_t)len, (uint32_t)len, QUICS__COMPRESSION__COMPRESSION_NONE);
	size_t wire_z = QS_FRAME_HEADER_LEN + hz.len + QS_FRAME_HEADER_LEN + zlen;
	size_t wire_raw = QS_FRAME_HEADER_LEN + hraw.len + QS_FRAME_HEADER_LEN + len;
	print_message("text chunk: %zu bytes raw on the wire, %zu compressed\n", wire_raw, wire_z);
	assert_true(wire_z < wire_raw / 2);
	qs_buf_release(&hz);
	qs_buf_release(&hraw);
	struct qs_chunk_rx rx;
	qs_chunk_rx_init(&rx);
	bool done;
	for (int round = 0; round < 2; round++) { /* the context is reused for the next run */
		assert_int_equal(feed_run(&rx, hash, (uint32_t)len, z, (uint32_t)zlen,
					  QUICS__COMPRESSION__COMPRESSION_ZSTD, &done),
				 0);
		assert_true(done);
		assert_int_equal(rx.data.len, len);
		assert_memory_equal(rx.data.data, text, len);
	}
	/* A raw run on the same receiver after a compressed one. */
	assert_int_equal(feed_run(&rx, hash, (uint32_t)len, text, (uint32_t)len,
				  QUICS__COMPRESSION__COMPRESSION_NONE, &done),
			 0);
	assert_true(done);
	assert_memory_equal(rx.data.data, text, len);
	qs_chunk_rx_release(&rx);
	qs_free(z);
	qs_free(text);
}

static void test_incompressible_goes_raw(void **state)
{
	(void)state;
	const size_t sizes[] = {(size_t)4 << 20, 300000, 5000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *r = random_bytes(sizes[i], 99 + i), *z = (uint8_t *)"x";
		size_t zlen = 1;
		assert_int_equal(qs_chunk_compress(r, sizes[i], &z, &zlen), 0);
		assert_null(z);
		assert_int_equal(zlen, 0);
		qs_free(r);
	}
	/* Random bytes with a compressible middle: the samples do not see it all, and the
	 * whole chunk is still compressed only if it shrinks by a tenth. */
	const size_t len = (size_t)1 << 20;
	uint8_t *mix = random_bytes(len, 5), *z;
	memset(mix + len / 4, 'a', len / 2);
	size_t zlen;
	assert_int_equal(qs_chunk_compress(mix, len, &z, &zlen), 0);
	assert_non_null(z);
	assert_true(zlen < len - len / 10);
	qs_free(z);
	qs_free(mix);
	uint8_t one = 0;
	assert_int_equal(qs_chunk_compress(&one, 0, &z, &zlen), QS_EINVAL);
	assert_int_equal(qs_chunk_compress(&one, ((size_t)4 << 20) + 1, &z, &zlen), QS_EINVAL);
}

/* A compressed text chunk of len bytes (its frame in *z) and its hash. */
static uint8_t *compressed_text(size_t len, uint8_t hash[QS_SHA256_LEN], uint8_t **z, size_t *zlen)
{
	uint8_t *text = text_bytes(len, 3);
	assert_int_equal(qs_sha256(text, len, hash), 0);
	assert_int_equal(qs_chunk_compress(text, len, z, zlen), 0);
	assert_non_null(*z);
	return text;
}

static void expect_fault(struct qs_chunk_rx *rx, const uint8_t *hash, uint32_t length,
			 const uint8_t *wire, uint32_t wire_length, enum qs_chunk_fault f)
{
	bool done = true;
	assert_int_equal(feed_run(rx, hash, length, wire, wire_length,
				  QUICS__COMPRESSION__COMPRESSION_ZSTD, &done),
			 QS_EPROTO);
	assert_false(done);
	assert_string_equal(qs_chunk_fault_name(rx->fault), qs_chunk_fault_name(f));
	qs_chunk_rx_release(rx);
	qs_chunk_rx_init(rx);
}

static void test_hostile_zstd(void **state)
{
	(void)state;
	const size_t len = 200000;
	uint8_t hash[QS_SHA256_LEN], *z;
	size_t zlen;
	uint8_t *text = compressed_text(len, hash, &z, &zlen);
	uint32_t n = (uint32_t)len, zn = (uint32_t)zlen;
	struct qs_chunk_rx rx;
	qs_chunk_rx_init(&rx);
	/* The header announces another size than the frame declares (either way). */
	expect_fault(&rx, hash, n + 1, z, zn, QS_CHUNK_FAULT_ZSTD_SIZE);
	expect_fault(&rx, hash, n - 1, z, zn, QS_CHUNK_FAULT_ZSTD_SIZE);
	/* Lengths refused by the header alone: over 4 MiB (limit + 1), a compressed length
	 * over the uncompressed one, an empty frame, an unknown compression (which the wire
	 * codec already refuses as a malformed header). */
	expect_fault(&rx, hash, (4u << 20) + 1, z, zn, QS_CHUNK_FAULT_LENGTH);
	expect_fault(&rx, hash, zn - 1, z, zn, QS_CHUNK_FAULT_WIRE_LENGTH);
	expect_fault(&rx, hash, n, z, 0, QS_CHUNK_FAULT_WIRE_LENGTH);
	struct qs_buf b;
	header(&b, hash, n, zn, (Quics__Compression)7);
	assert_int_equal(qs_chunk_rx_header(&rx, b.data, b.len, NULL), QS_EPROTO);
	assert_int_equal(rx.fault, QS_CHUNK_FAULT_HEADER);
	qs_buf_release(&b);
	/* A truncated frame: wire_length ends before the frame does; and a frame cut inside
	 * its own header. */
	expect_fault(&rx, hash, n, z, zn - 1, QS_CHUNK_FAULT_ZSTD_TRUNCATED);
	expect_fault(&rx, hash, n, z, 5, QS_CHUNK_FAULT_ZSTD_FRAME);
	/* Trailing bytes after a complete frame. */
	uint8_t *more = qs_malloc(zlen + 1);
	assert_non_null(more);
	memcpy(more, z, zlen);
	more[zlen] = 0;
	expect_fault(&rx, hash, n, more, zn + 1, QS_CHUNK_FAULT_ZSTD_TRAILING);
	/* Garbage instead of a frame: no magic; then the right header and a reserved block
	 * type after it. */
	uint8_t *junk = random_bytes(zlen, 11);
	expect_fault(&rx, hash, n, junk, zn, QS_CHUNK_FAULT_ZSTD_FRAME);
	size_t fh = ZSTD_frameHeaderSize(z, zlen);
	assert_false(ZSTD_isError(fh));
	memcpy(junk, z, fh);
	memset(junk + fh, 0xff, 3);
	expect_fault(&rx, hash, n, junk, zn, QS_CHUNK_FAULT_ZSTD_DATA);
	/* A frame whose declared content size (4 bytes at the end of its header here) is not
	 * what its blocks hold, with a run header that agrees with the frame. */
	memcpy(junk, z, zlen);
	assert_int_equal(junk[fh - 4] | junk[fh - 3] << 8 | junk[fh - 2] << 16, n);
	junk[fh - 4] = (uint8_t)(n + 1);
	expect_fault(&rx, hash, n + 1, junk, zn, QS_CHUNK_FAULT_ZSTD_DATA);
	/* A frame without a content size. */
	ZSTD_CCtx *c = ZSTD_createCCtx();
	assert_non_null(c);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
	size_t un = ZSTD_compress2(c, junk, zlen + 64, text, len);
	assert_false(ZSTD_isError(un));
	assert_true(un <= len);
	ZSTD_freeCCtx(c);
	expect_fault(&rx, hash, n, junk, (uint32_t)un, QS_CHUNK_FAULT_ZSTD_SIZE);
	/* A valid frame of other bytes than the hash names. */
	text[0] ^= 1;
	uint8_t *z2;
	size_t z2len;
	assert_int_equal(qs_chunk_compress(text, len, &z2, &z2len), 0);
	expect_fault(&rx, hash, n, z2, (uint32_t)z2len, QS_CHUNK_FAULT_HASH);
	qs_free(z2);
	qs_chunk_rx_release(&rx);
	qs_free(junk);
	qs_free(more);
	qs_free(z);
	qs_free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_run_in_pieces),
		cmocka_unit_test(test_lies_refused),
		cmocka_unit_test(test_compressible_goes_zstd),
		cmocka_unit_test(test_incompressible_goes_raw),
		cmocka_unit_test(test_hostile_zstd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

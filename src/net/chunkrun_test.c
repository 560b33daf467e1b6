/* Chunk run receiver: a correct run completes, and every lie in a run is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_run_in_pieces),
		cmocka_unit_test(test_lies_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* libFuzzer harness for the receiving side of chunk runs (net/chunkrun.h): ChunkHeader
 * messages and the DATA bytes after them, as a peer sends them. The input is a list of
 * records; the first byte of each picks what comes next:
 *   0: a raw header payload (2-byte length, bytes), checked against no hash or a fixed one
 *   1: a well-formed run: n bytes of the input become a chunk, its header is built (with the
 *      right hash or a flipped one, the right lengths or off by one), then its bytes are fed
 *      in pieces whose sizes come from the input
 *   2: raw DATA bytes (2-byte length, bytes)
 * Whatever the order, a call fails only with its documented errors, and a chunk reported
 * done holds exactly its announced length of bytes whose SHA-256 is the announced hash. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "core/sha256.h"
#include "core/wire.h"
#include "net/chunkrun.h"

static void fuzz_check(bool ok)
{
	if (!ok)
		abort();
}

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static size_t fuzz_take(struct fuzz_in *in, size_t want, const uint8_t **out)
{
	size_t n = want < in->left ? want : in->left;
	*out = in->p;
	in->p += n;
	in->left -= n;
	return n;
}

static size_t fuzz_u16(struct fuzz_in *in)
{
	const uint8_t *b;
	size_t n = fuzz_take(in, 2, &b);
	return n == 2 ? (size_t)b[0] << 8 | b[1] : n == 1 ? b[0] : 0;
}

static void fuzz_done(const struct qs_chunk_rx *rx, int rc, bool done)
{
	fuzz_check(rc == 0 || !done);
	if (!done)
		return;
	uint8_t d[QS_SHA256_LEN];
	fuzz_check(rx->state == QS_CHUNK_RX_DONE && rx->data.len == rx->length);
	fuzz_check(qs_sha256(rx->data.data, rx->data.len, d) == 0);
	fuzz_check(memcmp(d, rx->hash, QS_SHA256_LEN) == 0);
}

static void fuzz_data(struct qs_chunk_rx *rx, const uint8_t *p, size_t n)
{
	bool done = true;
	int rc = qs_chunk_rx_data(rx, p, n, &done);
	fuzz_check(rc == 0 || rc == QS_EPROTO || rc == QS_ESTATE || rc == QS_ENOMEM);
	fuzz_done(rx, rc, done);
}

static void fuzz_header(struct qs_chunk_rx *rx, const uint8_t *p, size_t n, const uint8_t *expect)
{
	int rc = qs_chunk_rx_header(rx, p, n, expect);
	fuzz_check(rc == 0 || rc == QS_EPROTO || rc == QS_ENOENT || rc == QS_ESTATE ||
		   rc == QS_ENOMEM);
	if (rc == 0)
		fuzz_check(rx->state == QS_CHUNK_RX_DATA && rx->length >= 1 && rx->data.len == 0);
}

/* Record 1: a run built from the input, slightly wrong when the flags say so. */
static void fuzz_run(struct qs_chunk_rx *rx, struct fuzz_in *in)
{
	const uint8_t *flags;
	if (fuzz_take(in, 1, &flags) == 0)
		return;
	const uint8_t *bytes;
	size_t n = fuzz_take(in, fuzz_u16(in) % 4097, &bytes);
	uint8_t hash[QS_SHA256_LEN];
	fuzz_check(qs_sha256(bytes, n, hash) == 0);
	if (flags[0] & 1)
		hash[flags[0] % QS_SHA256_LEN] ^= 0x80;
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	h.hash.data = hash;
	h.hash.len = flags[0] & 2 ? QS_SHA256_LEN - 1 : QS_SHA256_LEN;
	h.length = (uint32_t)n + (flags[0] & 4 ? 1u : 0u);
	h.wire_length = (uint32_t)n - (flags[0] & 8 && n > 0 ? 1u : 0u);
	h.compression = flags[0] & 16 ? QUICS__COMPRESSION__COMPRESSION_ZSTD
				      : QUICS__COMPRESSION__COMPRESSION_NONE;
	uint8_t enc[128];
	size_t len = quics__chunk_header__pack(&h, enc);
	fuzz_header(rx, enc, len, flags[0] & 32 ? hash : NULL);
	/* The bytes in pieces: each piece size is one input byte (0 = the rest). */
	size_t at = 0;
	while (at < n) {
		const uint8_t *s;
		size_t piece = fuzz_take(in, 1, &s) == 1 && s[0] != 0 ? s[0] : n - at;
		if (piece > n - at)
			piece = n - at;
		fuzz_data(rx, bytes + at, piece);
		at += piece;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t fixed[QS_SHA256_LEN] = {1, 2, 3};
	struct fuzz_in in = {data, size};
	struct qs_chunk_rx rx;
	qs_chunk_rx_init(&rx);
	const uint8_t *op;
	while (fuzz_take(&in, 1, &op) == 1) {
		const uint8_t *p;
		size_t n;
		switch (op[0] % 3) {
		case 0:
			n = fuzz_take(&in, fuzz_u16(&in), &p);
			fuzz_header(&rx, p, n, op[0] & 0x80 ? fixed : NULL);
			break;
		case 1: fuzz_run(&rx, &in); break;
		default:
			n = fuzz_take(&in, fuzz_u16(&in), &p);
			fuzz_data(&rx, p, n);
			break;
		}
	}
	qs_chunk_rx_release(&rx);
	return 0;
}

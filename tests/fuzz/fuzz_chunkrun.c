/* libFuzzer harness for the receiving side of chunk runs (net/chunkrun.h): ChunkHeader
 * messages and the DATA bytes after them, as a peer sends them. The input is a list of
 * records; the first byte of each picks what comes next:
 *   0: a raw header payload (2-byte length, bytes), checked against no hash or a fixed one
 *   1: a well-formed run: n bytes of the input become a chunk, its header is built (with the
 *      right hash or a flipped one, the right lengths or off by one, NONE or ZSTD), its
 *      DATA is the bytes or their zstd frame (one frame byte flipped when the flags say so),
 *      then the DATA is fed in pieces whose sizes come from the input
 *   2: raw DATA bytes (2-byte length, bytes)
 * Whatever the order, a call fails only with its documented errors (QS_EPROTO always with a
 * fault), a chunk reported done holds exactly its announced length of bytes whose SHA-256
 * is the announced hash, and a run without a lie always completes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

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

static bool fuzz_data(struct qs_chunk_rx *rx, const uint8_t *p, size_t n)
{
	bool done = true;
	int rc = qs_chunk_rx_data(rx, p, n, &done);
	fuzz_check(rc == 0 || rc == QS_EPROTO || rc == QS_ESTATE || rc == QS_ENOMEM);
	fuzz_check(rc != QS_EPROTO || rx->fault != QS_CHUNK_FAULT_NONE);
	fuzz_done(rx, rc, done);
	return done;
}

static void fuzz_header(struct qs_chunk_rx *rx, const uint8_t *p, size_t n, const uint8_t *expect)
{
	int rc = qs_chunk_rx_header(rx, p, n, expect);
	fuzz_check(rc == 0 || rc == QS_EPROTO || rc == QS_ENOENT || rc == QS_ESTATE ||
		   rc == QS_ENOMEM);
	fuzz_check(rc != QS_EPROTO || rx->fault != QS_CHUNK_FAULT_NONE);
	if (rc == 0)
		fuzz_check(rx->state == QS_CHUNK_RX_DATA && rx->length >= 1 && rx->data.len == 0);
}

/* Flags of record 1: lies (any makes the run invalid) and how the DATA is made. */
#define FUZZ_FLIP_HASH 1
#define FUZZ_SHORT_HASH 2
#define FUZZ_LENGTH_PLUS 4
#define FUZZ_WIRE_MINUS 8
#define FUZZ_SAY_ZSTD 16
#define FUZZ_EXPECT 32
#define FUZZ_COMPRESS 64
#define FUZZ_FLIP_FRAME 128
#define FUZZ_LIES                                                                                  \
	(FUZZ_FLIP_HASH | FUZZ_SHORT_HASH | FUZZ_LENGTH_PLUS | FUZZ_WIRE_MINUS | FUZZ_FLIP_FRAME)

/* Record 1: a run built from the input, slightly wrong when the flags say so. */
static void fuzz_run(struct qs_chunk_rx *rx, struct fuzz_in *in)
{
	static uint8_t frame[ZSTD_COMPRESSBOUND(4096)];
	const uint8_t *flags;
	if (fuzz_take(in, 1, &flags) == 0)
		return;
	const uint8_t f = flags[0];
	const uint8_t *bytes;
	size_t n = fuzz_take(in, fuzz_u16(in) % 4097, &bytes);
	uint8_t hash[QS_SHA256_LEN];
	fuzz_check(qs_sha256(bytes, n, hash) == 0);
	if (f & FUZZ_FLIP_HASH)
		hash[f % QS_SHA256_LEN] ^= 0x80;
	const uint8_t *wire = bytes;
	size_t wire_n = n;
	if (f & FUZZ_COMPRESS) {
		wire_n = ZSTD_compress(frame, sizeof(frame), bytes, n, 1);
		fuzz_check(!ZSTD_isError(wire_n));
		wire = frame;
		const uint8_t *at;
		if (f & FUZZ_FLIP_FRAME && fuzz_take(in, 1, &at) == 1)
			frame[at[0] % wire_n] ^= (uint8_t)(1u << (at[0] % 8));
	}
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	h.hash.data = hash;
	h.hash.len = f & FUZZ_SHORT_HASH ? QS_SHA256_LEN - 1 : QS_SHA256_LEN;
	h.length = (uint32_t)n + (f & FUZZ_LENGTH_PLUS ? 1u : 0u);
	h.wire_length = (uint32_t)wire_n - (f & FUZZ_WIRE_MINUS && wire_n > 0 ? 1u : 0u);
	h.compression = f & FUZZ_SAY_ZSTD ? QUICS__COMPRESSION__COMPRESSION_ZSTD
					  : QUICS__COMPRESSION__COMPRESSION_NONE;
	/* Valid: no lie, DATA matching the compression, a frame no longer than the chunk. */
	bool valid = (f & FUZZ_LIES) == 0 && n > 0 && rx->state != QS_CHUNK_RX_DATA &&
		     !(f & FUZZ_SAY_ZSTD) == !(f & FUZZ_COMPRESS) && wire_n <= n;
	uint8_t enc[128];
	size_t len = quics__chunk_header__pack(&h, enc);
	fuzz_header(rx, enc, len, f & FUZZ_EXPECT ? hash : NULL);
	/* All the DATA made (even past a wire_length that lies), in pieces: each piece size is
	 * one input byte (0 = the rest). */
	size_t at = 0;
	bool done = false;
	while (at < wire_n) {
		const uint8_t *s;
		size_t piece = fuzz_take(in, 1, &s) == 1 && s[0] != 0 ? s[0] : wire_n - at;
		if (piece > wire_n - at)
			piece = wire_n - at;
		done = fuzz_data(rx, wire + at, piece);
		at += piece;
	}
	fuzz_check(!valid || done);
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

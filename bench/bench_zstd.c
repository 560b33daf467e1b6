/* Chunk compression on the wire (net/chunkrun.h) for a 4 MiB random chunk and a 4 MiB
 * text-like chunk: the product's decision + compression (qs_chunk_compress: three 4 KiB
 * samples, then level 1 on the whole when they shrink), a full level-1 attempt without
 * samples (the alternative way to decide), level 3 for the ratio it would buy, and the
 * receiving side (qs_chunk_rx: decompress or copy, then SHA-256). MB/s are 10^6 bytes of
 * chunk per second, per wall second and per CPU second of the thread (the machine is
 * shared); each figure is the best of --runs runs.
 * Usage: bench_zstd [--runs N]   (default 10). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/num.h"
#include "core/frame.h"
#include "core/sha256.h"
#include "core/wire.h"
#include "net/chunkrun.h"

#define BENCH_CHUNK_BYTES ((size_t)4 << 20)

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct best {
	double wall_s, cpu_s; /* the fastest run's seconds */
	size_t out_bytes;     /* what the run produced (0: sent raw, SIZE_MAX: not shown) */
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void fill_random(uint8_t *p, size_t len)
{
	uint64_t s = 0x9e3779b97f4a7c15u;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(xorshift(&s) >> 32);
}

/* Lines of words and numbers, like a log or a source file. */
static void fill_text(uint8_t *p, size_t len)
{
	static const char *const words[] = {
		"the ",    "sync ",   "client ", "server ", "chunk ",  "version ", "file ",
		"folder ", "update ", "error ",  "info ",   "return ", "if (",     "} else {",
		"int ",    "size ",   "= ",      "0;\n",    "path ",   "\n\t",     "manifest "};
	uint64_t s = 12345;
	size_t i = 0;
	while (i < len) {
		uint64_t r = xorshift(&s);
		char num[24];
		const char *w = words[r % (sizeof(words) / sizeof(words[0]))];
		if (r % 7 == 0) {
			snprintf(num, sizeof(num), "%u ", (unsigned)(r >> 40) % 100000u);
			w = num;
		}
		for (size_t j = 0; w[j] != '\0' && i < len; j++)
			p[i++] = (uint8_t)w[j];
	}
}

enum bench_op { OP_PRODUCT, OP_FULL_L1, OP_L3, OP_RECEIVE };

struct bench_ctx {
	const uint8_t *chunk;
	uint8_t hash[QS_SHA256_LEN];
	uint8_t *wire; /* the run's DATA for OP_RECEIVE */
	size_t wire_len;
	uint8_t *scratch; /* compressBound(chunk) bytes */
	ZSTD_CCtx *cctx;
	struct qs_chunk_rx rx;
};

/* One run of op; returns the bytes it produced (0 for "sent raw"), or SIZE_MAX on error. */
static size_t run_op(struct bench_ctx *c, enum bench_op op)
{
	size_t n = BENCH_CHUNK_BYTES, keep = n - n / 10, r;
	uint8_t *z;
	switch (op) {
	case OP_PRODUCT:
		if (qs_chunk_compress(c->chunk, n, &z, &r) != 0)
			return SIZE_MAX;
		qs_free(z);
		return r;
	case OP_FULL_L1:
		r = ZSTD_compressCCtx(c->cctx, c->scratch, keep, c->chunk, n, 1);
		return ZSTD_isError(r) ? 0 : r;
	case OP_L3:
		r = ZSTD_compressCCtx(c->cctx, c->scratch, ZSTD_compressBound(n), c->chunk, n, 3);
		return ZSTD_isError(r) ? SIZE_MAX : r;
	case OP_RECEIVE: break;
	}
	struct qs_buf b;
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	h.hash.data = c->hash;
	h.hash.len = QS_SHA256_LEN;
	h.length = (uint32_t)n;
	h.wire_length = (uint32_t)c->wire_len;
	h.compression = c->wire_len < n ? QUICS__COMPRESSION__COMPRESSION_ZSTD
					: QUICS__COMPRESSION__COMPRESSION_NONE;
	qs_buf_init(&b, 1024);
	if (qs_wire_pack(&b, &h.base) != 0 ||
	    qs_chunk_rx_header(&c->rx, b.data + QS_FRAME_HEADER_LEN, b.len - QS_FRAME_HEADER_LEN,
			       c->hash) != 0) {
		qs_buf_release(&b);
		return SIZE_MAX;
	}
	qs_buf_release(&b);
	bool done = false;
	for (size_t off = 0; off < c->wire_len; off += 65536) {
		size_t piece = c->wire_len - off < 65536 ? c->wire_len - off : 65536;
		if (qs_chunk_rx_data(&c->rx, c->wire + off, piece, &done) != 0)
			return SIZE_MAX;
	}
	return done ? c->rx.data.len : SIZE_MAX;
}

static int measure(struct bench_ctx *c, enum bench_op op, int runs, struct best *out)
{
	*out = (struct best){1e30, 1e30, 0};
	for (int i = 0; i < runs; i++) {
		double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
		size_t r = run_op(c, op);
		double w = clock_s(CLOCK_MONOTONIC) - w0,
		       cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
		if (r == SIZE_MAX)
			return QS_EIO;
		out->out_bytes = r;
		if (w < out->wall_s)
			out->wall_s = w;
		if (cpu < out->cpu_s)
			out->cpu_s = cpu;
	}
	return 0;
}

static void print_row(const char *chunk, const char *what, const struct best *b)
{
	double mb = (double)BENCH_CHUNK_BYTES / 1e6;
	printf("%-6s %-34s %8.2f ms %8.0f MB/s wall %8.0f MB/s cpu  ", chunk, what, b->wall_s * 1e3,
	       mb / b->wall_s, mb / b->cpu_s);
	if (b->out_bytes == SIZE_MAX)
		printf("\n");
	else if (b->out_bytes == 0)
		printf("raw (no gain)\n");
	else
		printf("ratio %.3f (%zu bytes)\n", (double)b->out_bytes / (double)BENCH_CHUNK_BYTES,
		       b->out_bytes);
}

static int bench_chunk(const char *name, struct bench_ctx *c, int runs)
{
	static const char *const what[] = {"decide+compress (product)", "full level-1 attempt",
					   "level 3 (for the ratio)"};
	struct best b;
	for (int op = OP_PRODUCT; op <= OP_L3; op++) {
		if (measure(c, (enum bench_op)op, runs, &b) != 0)
			return QS_EIO;
		print_row(name, what[op], &b);
	}
	/* The receiving side of what the product sends. */
	uint8_t *z;
	if (qs_chunk_compress(c->chunk, BENCH_CHUNK_BYTES, &z, &c->wire_len) != 0)
		return QS_ENOMEM;
	c->wire = z != NULL ? z : (uint8_t *)(uintptr_t)c->chunk;
	if (z == NULL)
		c->wire_len = BENCH_CHUNK_BYTES;
	int rc = measure(c, OP_RECEIVE, runs, &b);
	if (rc == 0 && c->rx.dctx != NULL)
		printf("%-6s receiver's zstd context: %zu bytes (beside the chunk's own buffer)\n",
		       name, ZSTD_sizeof_DCtx(c->rx.dctx));
	if (rc == 0) {
		b.out_bytes = SIZE_MAX; /* no ratio to show */
		print_row(name,
			  z != NULL ? "receive: decompress + SHA-256" : "receive: copy + SHA-256",
			  &b);
	}
	qs_free(z);
	return rc;
}

int main(int argc, char **argv)
{
	int runs = 10;
	if (argc == 3 && strcmp(argv[1], "--runs") == 0) {
		uint64_t v;
		if (qs_parse_u64(argv[2], 1000, &v) != 0 || v == 0) {
			fprintf(stderr, "bench_zstd: bad --runs\n");
			return 2;
		}
		runs = (int)v;
	} else if (argc != 1) {
		fprintf(stderr, "usage: bench_zstd [--runs N]\n");
		return 2;
	}
	struct bench_ctx c = {0};
	uint8_t *chunk = qs_malloc(BENCH_CHUNK_BYTES);
	c.scratch = qs_malloc(ZSTD_compressBound(BENCH_CHUNK_BYTES));
	c.cctx = ZSTD_createCCtx();
	qs_chunk_rx_init(&c.rx);
	int rc = chunk != NULL && c.scratch != NULL && c.cctx != NULL ? 0 : QS_ENOMEM;
	c.chunk = chunk;
	printf("zstd %s, chunk %zu bytes, best of %d runs\n", ZSTD_versionString(),
	       BENCH_CHUNK_BYTES, runs);
	if (rc == 0) {
		fill_random(chunk, BENCH_CHUNK_BYTES);
		rc = qs_sha256(chunk, BENCH_CHUNK_BYTES, c.hash);
	}
	if (rc == 0)
		rc = bench_chunk("random", &c, runs);
	if (rc == 0) {
		fill_text(chunk, BENCH_CHUNK_BYTES);
		rc = qs_sha256(chunk, BENCH_CHUNK_BYTES, c.hash);
	}
	if (rc == 0)
		rc = bench_chunk("text", &c, runs);
	qs_chunk_rx_release(&c.rx);
	ZSTD_freeCCtx(c.cctx);
	qs_free(c.scratch);
	qs_free(chunk);
	if (rc != 0)
		fprintf(stderr, "bench_zstd: %s\n", qs_strerror(rc));
	return rc == 0 ? 0 : 1;
}

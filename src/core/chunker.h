/* Content-defined chunker: FastCDC-style gear hash with normalized chunking. Splits a byte
 * stream into chunks whose boundaries depend only on content, and hashes each chunk with
 * SHA-256 while the bytes stream through (constant memory, no chunk buffering).
 * Boundaries are part of the on-disk and wire contract: the gear table, the masks and the
 * default parameters must never change (docs/chunker.md). Pure: no I/O, no clock. */
#ifndef QS_CORE_CHUNKER_H
#define QS_CORE_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"

/* The one definition of the production chunk sizes (DESIGN.md section 3). */
#define QS_CHUNKER_MIN_BYTES ((size_t)256 * 1024)
#define QS_CHUNKER_AVG_BYTES ((size_t)1024 * 1024)
#define QS_CHUNKER_MAX_BYTES ((size_t)4 * 1024 * 1024)

/* Bytes that decide a boundary: the gear hash at a position depends on exactly the last
 * QS_CHUNKER_WINDOW_BYTES bytes. */
#define QS_CHUNKER_WINDOW_BYTES 64

/* Chunk size parameters. Valid when: WINDOW <= min <= avg <= max <= UINT32_MAX and avg is a
 * power of two in [2^3, 2^61]. Chunks are in [min, max] bytes except the last one of a
 * stream, which is in [1, max]. Tests use small values; everything else uses
 * qs_chunker_default_params. */
struct qs_chunker_params {
	size_t min_bytes;
	size_t avg_bytes; /* where the strict mask gives way to the loose one */
	size_t max_bytes;
};

/* min 256 KiB, avg 1 MiB, max 4 MiB. */
extern const struct qs_chunker_params qs_chunker_default_params;

/* Called once per chunk, in stream order: offset of the chunk in the stream, its length
 * (>= 1) and its SHA-256 (borrowed for the duration of the call). Return 0 to go on, or a
 * negative QS_E* code to abort: the feed/finish call that ran the callback returns that code
 * and the chunker stays failed. */
typedef int (*qs_chunk_fn)(void *arg, uint64_t offset, size_t len_bytes,
			   const uint8_t sha256[QS_SHA256_LEN]);

/* Streaming chunker state. Caller-owned; the fields are private. */
struct qs_chunker {
	size_t min_bytes;
	size_t avg_bytes;
	size_t max_bytes;
	uint64_t mask_strict; /* tested for chunk lengths in [min, avg] */
	uint64_t mask_loose;  /* tested for chunk lengths in (avg, max) */
	uint64_t gear;        /* rolling gear hash */
	uint64_t offset;      /* stream offset of the current chunk */
	size_t len_bytes;     /* bytes of the current chunk seen so far */
	struct qs_sha256 sha; /* SHA-256 of the current chunk so far */
	qs_chunk_fn fn;
	void *arg;
	int err; /* sticky: 0, a callback's error, or QS_ESTATE after finish */
};

/* Returns true if p satisfies the rules of struct qs_chunker_params. */
bool qs_chunker_params_valid(const struct qs_chunker_params *p);

/* Starts a stream. params is copied; fn(arg, ...) runs for every chunk from within
 * qs_chunker_feed and qs_chunker_finish. On success release with qs_chunker_release.
 * Errors: QS_EINVAL (invalid params or NULL fn), QS_ENOMEM. */
int qs_chunker_init(struct qs_chunker *c, const struct qs_chunker_params *params, qs_chunk_fn fn,
		    void *arg);

/* Feeds the next len bytes of the stream (any size, including 0; data is borrowed for the
 * call only). Runs fn for every chunk completed by these bytes. The boundaries do not
 * depend on how the stream is split into feeds.
 * Errors: the callback's error (the chunker is then failed and every later call returns
 * it), QS_ESTATE after qs_chunker_finish. */
int qs_chunker_feed(struct qs_chunker *c, const void *data, size_t len);

/* Ends the stream: runs fn for the last chunk if the stream did not end on a boundary. An
 * empty stream has no chunks. Errors: as qs_chunker_feed. Later feed/finish fail with
 * QS_ESTATE (or the earlier error). */
int qs_chunker_finish(struct qs_chunker *c);

/* Frees the hash state. Call once after a successful init, finished or not. */
void qs_chunker_release(struct qs_chunker *c);

/* Boundary-only scan, no hashing (used by benchmarks and to cross-check the stream):
 * writes to *chunk_len the length of the first chunk of data[0, len) where data holds the
 * rest of the stream (so the end of data is a boundary). len == 0 gives 0.
 * Errors: QS_EINVAL (invalid params). */
int qs_chunker_scan(const struct qs_chunker_params *params, const uint8_t *data, size_t len,
		    size_t *chunk_len);

/* The gear table (exposed so a test can regenerate it from its documented recipe). */
extern const uint64_t qs_chunker_gear[256];

#endif

/* Manifest of a file: the ordered list of its chunks (SHA-256, length), the total size, a
 * canonical binary encoding (docs/manifest.md) and the manifest hash, SHA-256 over that
 * encoding, which is the file's content hash. Pure: no I/O. A manifest is used by one
 * thread at a time. */
#ifndef QS_CORE_MANIFEST_H
#define QS_CORE_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "core/sha256.h"

/* Most chunks a manifest may hold: 2^20 chunks is about 1 TiB at the average chunk size
 * (4 TiB at the maximum) and an encoding of about 36 MiB. */
#define QS_MANIFEST_MAX_CHUNKS ((size_t)1 << 20)
/* Longest chunk a manifest accepts (the chunker's maximum, QS_CHUNKER_MAX_BYTES). */
#define QS_MANIFEST_CHUNK_MAX_BYTES ((uint32_t)4 * 1024 * 1024)

#define QS_MANIFEST_HEADER_BYTES 17 /* magic, version, total size, chunk count */
#define QS_MANIFEST_ENTRY_BYTES 36  /* length, SHA-256 */

struct qs_manifest_chunk {
	uint8_t sha256[QS_SHA256_LEN];
	uint32_t len_bytes; /* 1 .. QS_MANIFEST_CHUNK_MAX_BYTES */
};

/* Invariants: count <= cap, count <= QS_MANIFEST_MAX_CHUNKS, size_bytes is the sum of the
 * chunk lengths; chunks is NULL only when cap == 0. 0 chunks is the empty file. */
struct qs_manifest {
	struct qs_manifest_chunk *chunks; /* owned */
	size_t count;
	size_t cap;
	uint64_t size_bytes;
};

/* Initializes an empty manifest (the empty file). Allocates nothing. */
void qs_manifest_init(struct qs_manifest *m);
/* Frees the chunk list; the manifest is empty afterwards and can be reused. */
void qs_manifest_release(struct qs_manifest *m);

/* Appends a chunk. Errors (the manifest is unchanged): QS_EINVAL (len_bytes is 0 or above
 * QS_MANIFEST_CHUNK_MAX_BYTES), QS_E2BIG (already QS_MANIFEST_MAX_CHUNKS chunks),
 * QS_ENOMEM. */
int qs_manifest_append(struct qs_manifest *m, const uint8_t sha256[QS_SHA256_LEN],
		       size_t len_bytes);

/* A qs_chunk_fn (core/chunker.h) that appends each chunk to the struct qs_manifest passed
 * as arg, so a chunker builds a manifest directly. Errors: as qs_manifest_append, and
 * QS_EINVAL if offset is not the manifest's current size (chunks out of order). */
int qs_manifest_on_chunk(void *arg, uint64_t offset, size_t len_bytes,
			 const uint8_t sha256[QS_SHA256_LEN]);

/* Returns true if a and b list the same chunks in the same order. */
bool qs_manifest_equal(const struct qs_manifest *a, const struct qs_manifest *b);

/* Size in bytes of the encoding of m. */
size_t qs_manifest_encoded_size(const struct qs_manifest *m);

/* Appends the encoding of m to out. Errors (out unchanged): QS_E2BIG (out's limit),
 * QS_ENOMEM. */
int qs_manifest_encode(const struct qs_manifest *m, struct qs_buf *out);

/* Writes the manifest hash of m: SHA-256 of its encoding. Errors: QS_ENOMEM. */
int qs_manifest_hash(const struct qs_manifest *m, uint8_t out[QS_SHA256_LEN]);

/* Decodes exactly len bytes (borrowed) into *out, which must be initialized and is
 * replaced (its old chunks freed) only on success. Rejects anything that is not the one
 * canonical encoding of a manifest.
 * Errors: QS_EPROTO (malformed: magic, version, truncation, trailing bytes, a chunk length
 * of 0 or above the maximum, total size not the sum of the lengths), QS_ELIMIT (more than
 * QS_MANIFEST_MAX_CHUNKS chunks), QS_ENOMEM. */
int qs_manifest_decode(struct qs_manifest *out, const uint8_t *data, size_t len);

#endif

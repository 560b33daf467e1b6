/* Chunk runs on a transaction (docs/wire.md, "chunk runs"): a ChunkHeader MSG followed by
 * exactly wire_length bytes of DATA. The sender side queues one chunk, zstd-compressed when
 * that saves at least a tenth of it (incompressible chunks are recognized from samples and
 * sent raw without copying). The receiver side assembles one chunk (at most 4 MiB),
 * decompressing in constant memory with strict bounds, and verifies its SHA-256 (always of
 * the uncompressed bytes) before anyone may store it. Loop thread only. */
#ifndef QS_NET_CHUNKRUN_H
#define QS_NET_CHUNKRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "core/sha256.h"
#include "net/quic.h"

/* Queues the header and the bytes of one chunk. When the chunk goes raw, data stays
 * borrowed until release(arg) runs; when it goes compressed, release(arg) runs before this
 * returns (the compressed copy is owned and freed here). release may be NULL; on error it is
 * not called. Compression is skipped when the environment has QUICS_COMPRESS=0. Errors:
 * QS_EINVAL (len 0 or over 4 MiB), QS_ENOMEM, and the transport's. */
int qs_chunk_send(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN], const void *data, size_t len,
		  void (*release)(void *arg), void *arg);
/* Sends a ChunkHeader saying the chunk cannot be provided (no DATA follows). */
int qs_chunk_send_missing(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN]);

/* Decides how a chunk of len bytes (1..4 MiB) goes on the wire, as qs_chunk_send does. On
 * success *out is NULL when it goes raw (incompressible: a sample or the whole does not
 * shrink by a tenth), or a qs_malloc'd zstd frame of *out_len bytes (at most 9/10 of len,
 * declaring len as its content size) that the caller frees with qs_free. Errors: QS_EINVAL
 * (len), QS_ENOMEM. Any thread. */
int qs_chunk_compress(const void *data, size_t len, uint8_t **out, size_t *out_len);

enum qs_chunk_rx_state { QS_CHUNK_RX_IDLE, QS_CHUNK_RX_DATA, QS_CHUNK_RX_DONE };

/* Why the last refused header or DATA was refused (each is returned as QS_EPROTO). */
enum qs_chunk_fault {
	QS_CHUNK_FAULT_NONE,
	QS_CHUNK_FAULT_HEADER,         /* not a ChunkHeader, or not the chunk asked for */
	QS_CHUNK_FAULT_LENGTH,         /* length 0 or over 4 MiB */
	QS_CHUNK_FAULT_WIRE_LENGTH,    /* wire_length != length (NONE), 0 or > length (ZSTD) */
	QS_CHUNK_FAULT_COMPRESSION,    /* an unknown compression */
	QS_CHUNK_FAULT_EXCESS,         /* more DATA than wire_length */
	QS_CHUNK_FAULT_ZSTD_FRAME,     /* not a zstd frame (bad magic, skippable, bad header) */
	QS_CHUNK_FAULT_ZSTD_SIZE,      /* the frame declares no content size, or not `length` */
	QS_CHUNK_FAULT_ZSTD_DATA,      /* decompression failed (corrupt, window too large...) */
	QS_CHUNK_FAULT_ZSTD_TRAILING,  /* bytes after the end of the frame */
	QS_CHUNK_FAULT_ZSTD_TRUNCATED, /* wire_length bytes ended inside the frame */
	QS_CHUNK_FAULT_HASH,           /* the (decompressed) bytes do not match the hash */
};

/* A short name for a fault ("zstd_size"), for logs and error messages. Never NULL. */
const char *qs_chunk_fault_name(enum qs_chunk_fault f);

struct qs_chunk_rx {
	enum qs_chunk_rx_state state;
	enum qs_chunk_fault fault; /* set with every QS_EPROTO */
	uint8_t hash[QS_SHA256_LEN];
	uint32_t length;      /* uncompressed */
	uint32_t wire_length; /* DATA bytes announced */
	uint32_t wire_got;    /* DATA bytes taken so far */
	bool zstd;            /* the current run is compressed */
	bool zstd_started;    /* its frame header was checked */
	bool zstd_ended;      /* its frame is complete */
	uint8_t zhead[18];    /* the frame header while it is incomplete */
	size_t zhead_len;
	void *dctx;         /* ZSTD_DCtx, made at the first compressed run, kept */
	struct qs_buf data; /* the chunk once state is DONE */
};

void qs_chunk_rx_init(struct qs_chunk_rx *rx);
void qs_chunk_rx_release(struct qs_chunk_rx *rx);
/* Takes a MSG that must be a ChunkHeader (state IDLE or DONE). If `expect` is not NULL the
 * header must name that hash. Errors: QS_EPROTO (not a header, wrong hash, bad lengths,
 * unknown compression; rx->fault says which), QS_ENOENT (the sender reports the chunk
 * missing), QS_ESTATE, QS_ENOMEM. */
int qs_chunk_rx_header(struct qs_chunk_rx *rx, const uint8_t *payload, size_t len,
		       const uint8_t *expect);
/* Takes DATA bytes of the current chunk; *done is set when the chunk is complete (and
 * decompressed) and its hash verified (then rx->data holds it until the next header). Memory
 * stays bounded by the 4 MiB chunk plus one zstd decompression context. Errors: QS_EPROTO
 * (more bytes than announced, a bad zstd frame, a size mismatch, or the hash does not match;
 * rx->fault says which), QS_ESTATE (no header), QS_ENOMEM. */
int qs_chunk_rx_data(struct qs_chunk_rx *rx, const uint8_t *p, size_t len, bool *done);

#endif

/* Chunk runs on a transaction (docs/wire.md, "chunk runs"): a ChunkHeader MSG followed by
 * exactly wire_length bytes of DATA. The sender side queues one chunk without copying; the
 * receiver side assembles one chunk (at most 4 MiB) and verifies its SHA-256 before anyone
 * may store it. Only COMPRESSION_NONE is produced; a ZSTD run is refused (QS_EPROTO) until
 * compression lands. Loop thread only. */
#ifndef QS_NET_CHUNKRUN_H
#define QS_NET_CHUNKRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "core/sha256.h"
#include "net/quic.h"

/* Queues the header and the bytes of one chunk; data stays borrowed until release(arg)
 * runs (release may be NULL; on error it is not called). Errors: QS_EINVAL (len 0 or over
 * 4 MiB), and the transport's. */
int qs_chunk_send(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN], const void *data, size_t len,
		  void (*release)(void *arg), void *arg);
/* Sends a ChunkHeader saying the chunk cannot be provided (no DATA follows). */
int qs_chunk_send_missing(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN]);

enum qs_chunk_rx_state { QS_CHUNK_RX_IDLE, QS_CHUNK_RX_DATA, QS_CHUNK_RX_DONE };

struct qs_chunk_rx {
	enum qs_chunk_rx_state state;
	uint8_t hash[QS_SHA256_LEN];
	uint32_t length;
	struct qs_buf data; /* the chunk once state is DONE */
};

void qs_chunk_rx_init(struct qs_chunk_rx *rx);
void qs_chunk_rx_release(struct qs_chunk_rx *rx);
/* Takes a MSG that must be a ChunkHeader (state IDLE or DONE). If `expect` is not NULL the
 * header must name that hash. Errors: QS_EPROTO (not a header, wrong hash, bad lengths,
 * compression), QS_ENOENT (the sender reports the chunk missing), QS_ESTATE. */
int qs_chunk_rx_header(struct qs_chunk_rx *rx, const uint8_t *payload, size_t len,
		       const uint8_t *expect);
/* Takes DATA bytes of the current chunk; *done is set when the chunk is complete and its
 * hash verified (then rx->data holds it until the next header). Errors: QS_EPROTO (more
 * bytes than announced, or the hash does not match), QS_ESTATE (no header), QS_ENOMEM. */
int qs_chunk_rx_data(struct qs_chunk_rx *rx, const uint8_t *p, size_t len, bool *done);

#endif

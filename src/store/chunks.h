/* Content-addressed chunk store on local disk (docs/store.md): chunks are stored once under
 * their SHA-256, verified before they are stored and again whenever they are read. Chunks up
 * to QS_CHUNKS_SMALL_MAX_BYTES are appended to pack files indexed in SQLite; larger ones are
 * one file each in a two-level fan-out directory. A store directory belongs to one open
 * qs_chunks at a time (an exclusive lock file; a second open fails).
 *
 * Durability (DESIGN.md section 5): qs_chunks_put returns after the chunk is synced to disk,
 * unless a batch is open (qs_chunks_batch_begin); then every put of the batch becomes durable
 * together when qs_chunks_batch_sync returns 0 (group commit: one sync of the pack and one
 * index commit for any number of small chunks). A batch is store-wide: puts from any thread
 * join the open batch, so batches belong to one owner (the daemon's commit loop), and a
 * caller that needs a durable put outside that loop must not rely on put alone while a batch
 * may be open.
 *
 * Threads: every function may be called from any thread (the libuv thread pool); an internal
 * mutex serializes the index and the pack writer, while hashing and reading chunk bytes run
 * outside it. */
#ifndef QS_STORE_CHUNKS_H
#define QS_STORE_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sha256.h"

#define QS_CHUNKS_MAX_BYTES ((size_t)4 * 1024 * 1024)      /* the chunker's maximum */
#define QS_CHUNKS_SMALL_MAX_BYTES ((size_t)64 * 1024)      /* up to this: packed */
#define QS_CHUNKS_PACK_DEFAULT_BYTES ((uint64_t)256 << 20) /* a pack closes near this size */
#define QS_CHUNKS_BATCH_FILES_MAX 64 /* large chunks awaiting a sync before an early flush */

struct qs_chunks;

struct qs_chunks_options {
	/* A new pack file is started when the next record would make the current one larger
	 * than this (a pack always takes at least one record). 0: QS_CHUNKS_PACK_DEFAULT_BYTES. */
	uint64_t pack_max_bytes;
};

/* Opens the store in directory dir (borrowed), creating it and its layout if missing (its
 * parent must exist). Removes temporary files left by a crash and cuts the current pack back
 * to its last committed size. opt may be NULL. Errors: QS_EAGAIN (another qs_chunks has this
 * directory open), QS_EIO (unreadable index, an index newer than this build, not a QUIC-S
 * chunk index), QS_EACCES, QS_ENOSPC, QS_ENOMEM. */
int qs_chunks_open(const char *dir, const struct qs_chunks_options *opt, struct qs_chunks **out);

/* Closes the store; an open batch is aborted (its puts are not kept). NULL-safe. */
void qs_chunks_close(struct qs_chunks *cs);

/* Stores len bytes at data (borrowed) as the chunk whose SHA-256 is hash, after checking
 * that it is. Storing a chunk that is already present succeeds and writes nothing. Without
 * an open batch the chunk is durable when this returns 0; in a batch, when the batch's sync
 * returns 0 (has/get see it at once). Errors: QS_EINVAL (len 0), QS_E2BIG (len above
 * QS_CHUNKS_MAX_BYTES), QS_EPROTO (the data does not hash to hash: nothing is stored),
 * QS_EIO (I/O error, or the store refuses writes after a failed sync), QS_ENOSPC,
 * QS_ENOMEM. */
int qs_chunks_put(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], const void *data,
		  size_t len);
/* qs_chunks_put for a caller that has just checked len bytes at data hash to hash (a chunk
 * received through net/chunkrun.h is verified on arrival): the same without hashing again. */
int qs_chunks_put_verified(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN],
			   const void *data, size_t len);

/* Opens a batch. Errors: QS_ESTATE (a batch is already open), QS_EIO. */
int qs_chunks_batch_begin(struct qs_chunks *cs);

/* Makes every put of the open batch durable (large chunk files synced and renamed into
 * place, their directories synced, the pack synced, then the index committed) and ends the
 * batch. On failure the batch is aborted (none of its puts count) and, because a failed
 * sync leaves the disk in an unknown state, the store refuses further puts with QS_EIO until
 * it is reopened. Errors: QS_ESTATE (no batch open), QS_EIO, QS_ENOSPC. */
int qs_chunks_batch_sync(struct qs_chunks *cs);

/* Ends the open batch without keeping its puts (large chunks already flushed early may
 * stay: they are complete and verified). Errors: QS_ESTATE (no batch open), QS_EIO. */
int qs_chunks_batch_abort(struct qs_chunks *cs);

/* Sets *present to whether the chunk is stored (including puts of the open batch). Does not
 * read or verify the bytes. Errors: QS_EIO. */
int qs_chunks_has(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], bool *present);

/* Reads the chunk into buf (cap bytes) and writes its length to *len, after checking its
 * SHA-256: damaged data is never returned. buf is unspecified after an error. A buffer of
 * QS_CHUNKS_MAX_BYTES always suffices. Errors: QS_ENOENT (not stored), QS_E2BIG (cap is
 * smaller than the chunk), QS_EIO (the stored bytes are damaged or unreadable), QS_ENOMEM. */
int qs_chunks_read(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], uint8_t *buf,
		   size_t cap, size_t *len);

/* As qs_chunks_read into a new buffer of exactly the chunk's length: *data (caller frees
 * with qs_free) and *len are written only on success. Errors: as qs_chunks_read. */
int qs_chunks_get(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], uint8_t **data,
		  size_t *len);

/* ---- garbage collection (docs/store.md, "Garbage collection") ----
 *
 * A chunk that no stored version (or conflict candidate) references is garbage, except one
 * an in-flight upload is about to reference: such a transaction pins every chunk of its
 * manifest with qs_chunks_pin before it decides which chunks it may skip, and unpins them
 * when it has committed or failed. Pins and the collector's deletions are made under the
 * store's lock, so for each chunk either the pin comes first (the collector keeps it) or the
 * deletion does (the pin then reports it absent and the upload sends it). Chunks younger
 * than the grace period are also kept (a retried upload reuses what a dropped one sent). */

/* Pins the chunk (a counter: pin it as many times as it is unpinned) and sets *present to
 * whether it is stored, both under one hold of the lock. Errors: QS_EIO, QS_ENOMEM (then
 * nothing is pinned). */
int qs_chunks_pin(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], bool *present);
/* Drops one pin of the chunk (no-op if it is not pinned). */
void qs_chunks_unpin(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN]);

/* Whether a chunk is referenced (the collector keeps it). */
typedef bool (*qs_chunks_live_fn)(void *arg, const uint8_t hash[QS_SHA256_LEN]);

struct qs_chunks_gc_stats {
	uint64_t examined;      /* chunks looked at */
	uint64_t deleted;       /* chunks removed */
	uint64_t deleted_bytes; /* their lengths */
	uint64_t kept_pinned;   /* unreferenced but pinned */
	uint64_t kept_young;    /* unreferenced but stored at or after the cutoff */
};

/* Removes every stored chunk for which live(arg, hash) is false, that is not pinned, and
 * whose file (large chunks) or pack (small ones) was last written before cutoff_unix_s. A
 * large chunk's file is deleted; a small chunk's index row is deleted (its pack bytes are
 * reclaimed only when packs are compacted, which is not written yet). Must not run while a
 * batch is open. stats may be NULL. Errors: QS_ESTATE (a batch is open), QS_EIO, QS_ENOMEM
 * (chunks deleted before the error stay deleted; nothing referenced is ever deleted). */
int qs_chunks_gc(struct qs_chunks *cs, qs_chunks_live_fn live, void *arg, int64_t cutoff_unix_s,
		 struct qs_chunks_gc_stats *stats);

#endif

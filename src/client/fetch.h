/* Client side of the server's download flow (HISTORY_DOWNLOAD, CONFLICT_DOWNLOAD;
 * docs/wire.md): request; the reply carries a FileState; the client asks with a ChunkWant
 * for the chunks it cannot take from the local copy of the same path; the server sends them
 * and ends. The content is written to a new file at any local path: a temp file in the
 * target's directory, every chunk verified, then renamed into place. Also a plain
 * request/reply call with a caller argument. Loop thread only. */
#ifndef QS_CLIENT_FETCH_H
#define QS_CLIENT_FETCH_H

#include <stdint.h>

#include "client/engine.h"
#include "core/wire.h"

/* then(arg, reply, err) runs exactly once: reply is the unpacked reply (borrowed for the
 * call) with err 0, or NULL with err a QS_E* (an error reply is mapped by
 * qic_wire_error: ERROR_NOT_FOUND is QS_ENOENT, ERROR_STALE QS_ECONFLICT...) and message a
 * one-line text. */
typedef void (*qic_call_fn)(void *arg, const ProtobufCMessage *reply, int err, const char *message);
/* One request/reply transaction name on the engine's connection. */
void qic_call(struct qic_engine *e, const char *name, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *reply_desc, qic_call_fn then, void *arg);
/* The same for a request that changes nothing on the server (a list, a history): if the
 * connection is lost before the answer, it is asked once more on the next connection (when
 * one is up within 3 s). name must be a static string. */
void qic_call_read(struct qic_engine *e, const char *name, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *reply_desc, qic_call_fn then, void *arg);

/* The QS_E* code for an error a server replied with. */
int qic_wire_error(const Quics__Error *err);

/* Where a download goes. */
struct qic_fetch_target {
	struct qic_root *root; /* with path: a local copy whose chunks may be reused; NULL */
	const char *path;      /* root-relative path of that copy, or NULL */
	const char *out_path;  /* absolute path of the file to create; it must not exist */
};

/* The FileState inside the reply message (for HistoryDownloadResponse: ->state). */
typedef const Quics__FileState *(*qic_fetch_state_fn)(const ProtobufCMessage *reply);
/* err 0: out_path holds the content (size_bytes bytes; a symlink is created as a symlink).
 * Errors: QS_ENOENT (no such version/candidate, or it is a deletion), QS_EEXIST (out_path
 * exists), QS_EINVAL (a directory has no content), QS_ECONN, the server's (mapped), local
 * I/O errors. */
typedef void (*qic_fetch_done_fn)(void *arg, int err, const char *message, uint64_t size_bytes);

/* Opens transaction tx_name with req (borrowed for the call), reads the reply with
 * reply_desc and state_of, downloads the content into t->out_path (t and its strings are
 * copied), then done runs exactly once. */
void qic_fetch_file(struct qic_engine *e, const char *tx_name, const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *reply_desc, qic_fetch_state_fn state_of,
		    const struct qic_fetch_target *t, qic_fetch_done_fn done, void *arg);

#endif

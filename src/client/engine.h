/* The qic sync engine: roots on disk, their index, the connection to the server, and the
 * work queue that turns local changes into proposals (PLEASE_SYNC) and server pushes
 * (MUST_SYNC) into files.
 *
 * Concurrency model: one libuv loop thread runs the engine, the transport and the REST API.
 * File I/O of a single path is short (at most one 4 MiB chunk per step) and runs on the loop
 * in this version; hashing whole files runs on the loop too (a thread-pool move is planned,
 * docs/client.md). The index is SQLite, written from the loop only. */
#ifndef QS_CLIENT_ENGINE_H
#define QS_CLIENT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "client/localfile.h"
#include "core/version.h"
#include "net/quic.h"

struct qic_engine;

/* The index's view of one path: what the client last agreed with the server. */
struct qic_entry {
	uint64_t base_version; /* 0: never agreed */
	struct qs_content content;
	struct qs_fingerprint fp; /* of the local file when it matched content */
	uint8_t *manifest;        /* owned: manifest encoding (files) or symlink target */
	size_t manifest_len;
	uint32_t mode;
	int64_t mtime_ns;
	bool conflicted;
};

void qic_entry_release(struct qic_entry *e);

struct qic_root {
	struct qic_engine *e;
	uint64_t root_id;
	char *name;
	char *dir;
	int dir_fd;
	struct qic_root *next;
};

/* Index access for one root (engine.c, on the client index). get: QS_ENOENT when absent. */
int qic_index_get(struct qic_root *r, const char *path, struct qic_entry *out);
int qic_index_put(struct qic_root *r, const char *path, const struct qic_entry *e);
int qic_index_delete(struct qic_root *r, const char *path);

/* Queues path of r for a look: hash it and propose it if it changed. */
void qic_mark_dirty(struct qic_root *r, const char *path);
struct qic_root *qic_root_by_id(struct qic_engine *e, uint64_t root_id);

/* Looks at root/path and, if it changed against the index, proposes it on conn
 * (propose.c). *started tells whether a transaction was opened; done(err) then runs when it
 * ends (err 0: the server answered). Without a transaction nothing was needed (or an error
 * is returned: QS_EAGAIN when the file is being written). */
int qic_propose(struct qic_root *r, const char *path, struct qs_conn *conn,
		void (*done)(struct qic_root *r, const char *path, int err, void *arg), void *arg,
		bool *started);

/* MUST_SYNC / FORCE_SYNC from the server (receive.c). */
int qic_receive_accept(struct qic_engine *e, struct qs_tx *tx, bool force);

#endif

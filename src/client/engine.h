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
struct qs_ignore;
struct root_watch;

/* The index's view of one path: what the client last agreed with the server. */
struct qic_entry {
	uint64_t base_version; /* 0: never agreed */
	struct qs_content content;
	struct qs_fingerprint fp; /* of the local file when it matched content */
	uint8_t *manifest;        /* owned: manifest encoding (files) or symlink target */
	size_t manifest_len;
	uint32_t mode;
	int64_t mtime_ns;
	bool durable; /* false: a received file not yet synced to disk */
	bool conflicted;
	uint64_t conflict_version;   /* when conflicted: the server's version then */
	struct qs_content candidate; /* when conflicted: our proposed content */
};

void qic_entry_release(struct qic_entry *e);

struct qic_root {
	struct qic_engine *e;
	uint64_t root_id;
	char *name;
	char *dir;
	int dir_fd;
	struct root_watch *watch;       /* engine.c: the watcher and the root's ignore rules */
	const struct qs_ignore *ignore; /* current rules (.quicsignore + built-ins), or NULL */
	bool paused;                    /* mass-loss guard: nothing is read or written */
	bool confirmed; /* the user confirmed: the next scan skips the deletion guard */
	char pause_reason[256];
	struct qic_root *next;
};

/* Index access (index.c, on the client index). get: QS_ENOENT when absent. */
int qic_index_get(struct qic_root *r, const char *path, struct qic_entry *out);
int qic_index_put(struct qic_root *r, const char *path, const struct qic_entry *e);
int qic_index_delete(struct qic_root *r, const char *path);
/* Calls fn for each entry of r in path byte order; fn returning nonzero stops. */
typedef int (*qic_index_fn)(void *arg, const char *path, const struct qic_entry *e);
int qic_index_each(struct qic_root *r, qic_index_fn fn, void *arg);
/* Client settings (server address, id, token...). get: QS_ENOENT when unset. */
int qic_setting_get(struct qic_engine *e, const char *key, char *out, size_t cap);
int qic_setting_set(struct qic_engine *e, const char *key, const char *value);
/* Roots known to this client: loads them all into e (opening their directories), or saves
 * one. */
int qic_roots_load(struct qic_engine *e);
int qic_root_save(struct qic_engine *e, const struct qic_root *r);
int qic_root_forget(struct qic_engine *e, uint64_t root_id);
/* Batched durability of received files: if any is pending, sync_fn(arg) syncs the disks,
 * then those entries are marked durable. */
int qic_index_sync_batch(struct qic_engine *e, int (*sync_fn)(void *arg), void *arg);
/* Commits the batch of index writes (also done by qic_index_sync_batch). */
int qic_index_flush(struct qic_engine *e);
/* Opens / closes the index in the state directory. */
int qic_index_open(struct qic_engine *e, const char *path);
void qic_index_close(struct qic_engine *e);

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

/* A directory deleted on the server still holds entries here: remove it once they are gone. */
void qic_defer_rmdir(struct qic_root *r, const char *path);

/* MUST_SYNC / FORCE_SYNC from the server (receive.c). */
int qic_receive_accept(struct qic_engine *e, struct qs_tx *tx, bool force);

/* ---- the engine's public face (qic.c, the REST API) ---- */

/* Done callback of engine operations: err 0 or a QS_E*, with a one-line message. */
typedef void (*qic_done_fn)(void *arg, int err, const char *message, uint64_t id);

/* Opens the index under state_dir (created 0700), loads roots and the server settings, and
 * connects if a server is configured. Errors: QS_EIO, QS_EACCES, QS_ENOMEM. */
int qic_engine_start(uv_loop_t *loop, const char *state_dir, struct qic_engine **out);
void qic_engine_stop(struct qic_engine *e, void (*done)(void *arg), void *arg);
void qic_engine_free(struct qic_engine *e);

/* Registers this client with a server (server password), pins its certificate (fingerprint
 * NULL: trust the one it presents now), and keeps the connection. */
void qic_engine_connect_server(struct qic_engine *e, const char *host, uint16_t port,
			       const char *password, const char *fingerprint, qic_done_fn done,
			       void *arg);
/* Registers a new root on the server from a local directory, or joins a remote root into a
 * local directory (created if missing). */
void qic_engine_add_root(struct qic_engine *e, bool create, const char *name, const char *password,
			 const char *dir, qic_done_fn done, void *arg);
/* Forgets the root synced in dir (files stay). Errors: QS_ENOENT. */
int qic_engine_remove_root(struct qic_engine *e, const char *dir);
/* Full local scan of every root now. */
void qic_engine_rescan(struct qic_engine *e);
/* FULL_SCAN of one root with the server now (when connected): the server pushes every path
 * whose version is newer than the index's. */
void qic_engine_full_scan(struct qic_root *r);
/* The user confirms the deletions that paused the root synced in dir. Errors: QS_ENOENT,
 * QS_ESTATE (not paused). */
int qic_engine_confirm(struct qic_engine *e, const char *dir);

struct qic_root_status {
	uint64_t root_id;
	const char *name, *dir;
	uint64_t files, pending;
	bool paused;
	const char *pause_reason;
};
struct qic_status {
	bool configured, connected;
	const char *server;      /* "host:port" */
	const char *fingerprint; /* pinned */
	uint64_t client_id;
	uint64_t queued, in_flight, uploaded, downloaded;
};
void qic_engine_status(struct qic_engine *e, struct qic_status *out);
/* Calls fn for each root. */
void qic_engine_each_root(struct qic_engine *e,
			  void (*fn)(void *arg, const struct qic_root_status *st), void *arg);

#endif

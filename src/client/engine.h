/* The qic sync engine: roots on disk, their index, the connection to the server, and the
 * work queue that turns local changes into proposals (PLEASE_SYNC) and server pushes
 * (MUST_SYNC) into files.
 *
 * Concurrency model: one libuv loop thread runs the engine, the transport and the REST API.
 * File I/O of a single path is short (at most one 4 MiB chunk per step) and runs on the loop;
 * hashing a whole file before it is proposed runs on the libuv thread pool (hashjob.h; at
 * most QIC_HASHING at once), with the job's own fd, path and result: the index and every
 * other engine structure are touched from the loop only. The index is SQLite. */
#ifndef QS_CLIENT_ENGINE_H
#define QS_CLIENT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/path.h"
#include "client/localfile.h"
#include "core/version.h"
#include "core/wire.h"
#include "net/quic.h"

struct qic_engine;
struct recv; /* receive.c */
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

/* The kind that should be on disk at e's path: the agreed content's, or when conflicted our
 * candidate's (a path the server deleted may hold our candidate file). */
static inline enum qs_kind qic_entry_local_kind(const struct qic_entry *e)
{
	return e->conflicted ? e->candidate.kind : e->content.kind;
}

void qic_entry_release(struct qic_entry *e);

/* Transfers of one direction in progress on a root: each running transfer adds its file and
 * its bytes when it starts and takes them back when it ends (propose.c, receive.c). */
struct qic_transfers {
	uint64_t files;      /* transfers running */
	uint64_t bytes;      /* bytes they move in all */
	uint64_t bytes_done; /* of which moved so far */
};

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
	struct qic_transfers up, down; /* proposals sending chunks, files being received */
	struct recv *receiving;        /* receive.c: the files being received (down) */
	bool push_failed;              /* a push failed to apply since the last retry (receive.c) */
	bool retry_due;                /* and another applied since: a retry FULL_SCAN is due */
	uint64_t retry_scan_ms;        /* when the last retry FULL_SCAN went out (loop time) */
	uint64_t push_failed_ms;       /* when a push last failed to apply (loop time) */
	uint64_t retry_backoff_ms;     /* retry without a push applying: after this, doubling */
	struct qic_deleter *deletes;   /* delete.c: subtree deletes in flight */
	struct qic_part *parts;        /* engine.c: part files no download holds */
	struct qic_part *refused;      /* engine.c: paths whose push we refused (local change) */
	size_t n_refused;
	struct qic_root *next;
};

/* Part files of interrupted downloads (localfile.h, resumable downloads) that no running
 * download holds: noted when a download is suspended or when the start finds one, forgotten
 * when a download takes one over. Whenever the index's entry of a path changes (index.c) the
 * path's noted part files are removed: whatever comes next for the path names its own, so
 * they could only be litter (up to a day, as large as the file). */
void qic_parts_note(struct qic_root *r, const char *path, const char *part_name);
void qic_parts_forget(struct qic_root *r, const char *path, const char *part_name);
void qic_parts_drop(struct qic_root *r, const char *path);
/* For a rename of from (and what is below it) to to: removes the part files of from and of
 * every path below it (now below to). */
void qic_parts_drop_below(struct qic_root *r, const char *from, const char *to);
void qic_parts_free(struct qic_root *r);

/* A push applied (receive.c): if one failed to apply before (a path below what was a file
 * here, say), the tree may now let it, so it is asked for again with a FULL_SCAN, at most
 * every QIC_RETRY_SCAN_MS (a due retry waits for the engine's next tick). A failed push
 * never asks again at once: it would fail again at once, without end (chaos seed 1003);
 * without a push that applies, it is asked for again after 5 s, then 10, 20, ... 5 min. */
void qic_retry_failed_pushes(struct qic_root *r);
void qic_push_failed(struct qic_root *r);

/* A push of path was refused because the local path differs from the index (receive.c): if
 * the proposal that follows finds no change after all (touched, same bytes), the newer
 * version would never come again by itself; qic_push_refused_take then says so once, and the
 * caller asks the server for everything newer (FULL_SCAN). */
void qic_push_refused(struct qic_root *r, const char *path);
bool qic_push_refused_take(struct qic_root *r, const char *path);

/* Index access (index.c, on the client index). get: QS_ENOENT when absent. */
int qic_index_get(struct qic_root *r, const char *path, struct qic_entry *out);
int qic_index_put(struct qic_root *r, const char *path, const struct qic_entry *e);
int qic_index_delete(struct qic_root *r, const char *path);
/* Calls fn for each entry of r in path byte order; fn returning nonzero stops. */
typedef int (*qic_index_fn)(void *arg, const char *path, const struct qic_entry *e);
int qic_index_each(struct qic_root *r, qic_index_fn fn, void *arg);
/* The same for the entries at or below dir. */
int qic_index_each_below(struct qic_root *r, const char *dir, qic_index_fn fn, void *arg);
/* Moves the entries of from and everything below it to to (a rename), dropping first
 * whatever the index held at or below to (the caller made sure it may go). Errors:
 * QS_ENOENT (nothing at from), QS_EINVAL, QS_EPATH_TOO_LONG, QS_EIO. */
int qic_index_move(struct qic_root *r, const char *from, const char *to);
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
/* Calls fn for every entry not yet durable (a received file whose batch was not synced when
 * the daemon stopped), all roots, by root and path; fn must not change the index. */
typedef int (*qic_pending_fn)(void *arg, uint64_t root_id, const char *path,
			      const struct qic_entry *e);
int qic_index_each_pending(struct qic_engine *e, qic_pending_fn fn, void *arg);
/* Commits the batch of index writes (also done by qic_index_sync_batch). */
int qic_index_flush(struct qic_engine *e);
/* Opens / closes the index in the state directory. */
int qic_index_open(struct qic_engine *e, const char *path);
void qic_index_close(struct qic_engine *e);

/* Queues path of r for a look: hash it and propose it if it changed. */
void qic_mark_dirty(struct qic_root *r, const char *path);
struct qic_root *qic_root_by_id(struct qic_engine *e, uint64_t root_id);

/* Proposals (propose.c). True if path still has exactly the stat fingerprint the index
 * recorded for its agreed (or candidate) content: then it is unchanged and is not hashed. */
bool qic_propose_unchanged(struct qic_root *r, const char *path);
/* True if the index marks path conflicted. */
bool qic_propose_conflicted(struct qic_root *r, const char *path);
/* Whether root/path is still what f describes (its stat fingerprint; absent for a
 * tombstone, a directory for a directory): a hash made off the loop is checked with it. */
bool qic_propose_still_local(struct qic_root *r, const char *path, const struct qs_localfile *f);
/* f is root/path as just hashed (taken over: *f is left empty). If f differs from the index,
 * proposes it on conn. *started tells whether a transaction was opened; done(err) then runs
 * when it ends (err 0: the server answered). Without a transaction nothing was needed (or an
 * error is returned: QS_EAGAIN when the file is being written). */
int qic_propose(struct qic_root *r, const char *path, struct qs_localfile *f, struct qs_conn *conn,
		void (*done)(struct qic_root *r, const char *path, int err, void *arg), void *arg,
		bool *started);

/* Moves (move.c; docs/client.md, "moves"). A rename seen by the watcher: proposes it as a
 * move (PLEASE_SYNC with moved_from) when the index knows from and conn is usable.
 * QIC_MOVE_STARTED: the proposal runs and handles the outcome (falling back to a delete
 * plus a create when refused); QIC_MOVE_KNOWN: the index already holds to and not from
 * (a move this client received); QIC_MOVE_NO: the caller handles the paths as changes. */
enum qic_move_start { QIC_MOVE_NO, QIC_MOVE_STARTED, QIC_MOVE_KNOWN };
enum qic_move_start qic_move_propose(struct qic_root *r, struct qs_conn *conn, const char *from,
				     const char *to, bool is_dir);
/* After a move from -> to was applied (by the server, and on disk here): renames the index
 * subtree and records each moved path's new version (moved: n entries whose paths must be
 * to or below it) where the index holds the same content; *stale tells that some entry
 * did not match (the caller asks the server for a FULL_SCAN). Errors: those of
 * qic_index_move, QS_EPROTO (a path outside to). */
int qic_move_record(struct qic_root *r, const char *from, const char *to,
		    Quics__ScanEntry *const *moved, size_t n, bool *stale);
/* Engine services for moves: a FULL_SCAN of r with the server; a local scan of path and
 * everything below it (queues what changed against the index). */
void qic_root_full_scan(struct qic_root *r);
void qic_root_scan_below(struct qic_root *r, const char *path);

/* Subtree deletes (delete.c; docs/client.md, "subtree deletes"). The watcher reported path
 * removed: true when that is taken care of by one deletion of the highest directory above
 * (or at) path that is gone, proposed now or already in flight (the caller then does
 * nothing more); false: the caller handles path as a change. conn NULL: not connected.
 * *refused (caller-owned, NULL at first; free with qs_free) remembers the last directory
 * that could not be deleted whole, so a batch of removals below it asks only once. */
bool qic_delete_removed(struct qic_root *r, struct qs_conn *conn, const char *path, bool is_dir,
			char **refused);
/* Files the watcher reported removed from directory dir, which is still there (paths: n
 * paths directly below dir, caller-owned; reordered). Those the index holds as agreed files
 * or symlinks, not conflicted, and that are absent, go to the server as one subtree delete
 * that keeps the directory; every other one is marked dirty (proposed on its own), all of
 * them when that delete cannot be proposed. conn NULL: not connected. */
void qic_delete_files(struct qic_root *r, struct qs_conn *conn, const char *dir, char **paths,
		      size_t n);
/* Whether a subtree delete in flight covers path (at or below its directory; for one that
 * keeps its directory, one of the paths it lists). */
bool qic_delete_covers(struct qic_root *r, const char *path);
/* Drops the queued (not yet started) changes at or below dir (engine.c). */
void qic_unqueue_below(struct qic_root *r, const char *dir);
/* A directory deleted on the server still holds entries here: remove it once they are gone. */
void qic_defer_rmdir(struct qic_root *r, const char *path);

/* NEED_CONTENT from the server (need.c): send it the chunks it asks for from local files. */
int qic_need_accept(struct qic_engine *e, struct qs_tx *tx);

/* MUST_SYNC / FORCE_SYNC from the server (receive.c). */
int qic_receive_accept(struct qic_engine *e, struct qs_tx *tx, bool force);

/* The authenticated connection to the server, or NULL (not connected yet). */
struct qs_conn *qic_engine_conn(struct qic_engine *e);
uv_loop_t *qic_engine_loop(struct qic_engine *e);
/* True once qic_engine_stop began: nothing new should be started. */
bool qic_engine_stopping(const struct qic_engine *e);
/* Whether the client has a server to connect to (it reconnects whenever it is not connected). */
bool qic_engine_configured(const struct qic_engine *e);
/* The root a local absolute path lies in and the path relative to it (*rel: caller frees
 * with qs_free; validated by base/path.h). Errors: QS_EINVAL (not absolute), QS_ENOENT (in
 * no synced root), a path error (QS_EPATH_*), QS_ENOMEM. */
int qic_engine_resolve(struct qic_engine *e, const char *abs_path, struct qic_root **root,
		       char **rel);

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
/* The user confirms the deletions that paused the root synced in dir. Errors: QS_ENOENT,
 * QS_ESTATE (not paused). */
int qic_engine_confirm(struct qic_engine *e, const char *dir);

struct qic_root_status {
	uint64_t root_id;
	const char *name, *dir;
	uint64_t files, pending; /* pending: paths queued or being hashed (not yet proposed) */
	bool paused;
	const char *pause_reason;
	bool connected;                /* the client is authenticated and the root not paused */
	uint64_t conflicts;            /* paths in conflict */
	struct qic_transfers up, down; /* running transfers (see struct qic_transfers) */
};
struct qic_status {
	bool configured, connected;
	const char *server;      /* "host:port" */
	const char *host;        /* the server's host without brackets ("" when unset) */
	uint16_t port;           /* its port (0 when unset) */
	const char *fingerprint; /* pinned */
	const char *client_name; /* sent at registration ("" when unknown) */
	uint64_t client_id;
	uint64_t queued, in_flight, uploaded, downloaded;
	int64_t connected_since_ms; /* Unix ms of the last authentication; 0 when not connected */
	const char *last_error;     /* why the last connection ended or failed ("" if none) */
	int64_t last_error_ms;      /* when (Unix ms; 0 if none) */
};
void qic_engine_status(struct qic_engine *e, struct qic_status *out);

/* The first root (roots are linked by next). */
struct qic_root *qic_engine_roots(struct qic_engine *e);
/* The connection to the server while this client is authenticated on it, else NULL. */
struct qs_conn *qic_engine_conn(struct qic_engine *e);
/* One root of a LIST_ROOTS answer (remote.c). */
struct qic_remote_root {
	uint64_t root_id;
	char *name;
	bool joined; /* this client joined it (the server's view) */
};
/* Done callback of qic_engine_list_remote: err 0 with the roots in name order (borrowed for
 * the call), or a QS_E* with a one-line message and no roots. */
typedef void (*qic_remote_fn)(void *arg, int err, const char *message,
			      const struct qic_remote_root *roots, size_t n);
/* Lists every root on the server (LIST_ROOTS, page after page over the kept connection).
 * done runs exactly once, possibly before this returns: QS_ECONN when not connected, a
 * transport error, QS_EACCES (the server refused), QS_EPROTO (a malformed answer, or a
 * cursor that does not advance), QS_E2BIG (more than QIC_REMOTE_MAX roots), QS_ENOMEM. */
#define QIC_REMOTE_MAX 100000
void qic_engine_list_remote(struct qic_engine *e, qic_remote_fn done, void *arg);
/* The transport's byte counters since the current server connection was configured (all
 * zero while none is). */
void qic_engine_traffic(struct qic_engine *e, struct qs_quic_bytes *out);
/* Calls fn for each root. */
void qic_engine_each_root(struct qic_engine *e,
			  void (*fn)(void *arg, const struct qic_root_status *st), void *arg);

#endif

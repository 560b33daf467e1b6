/* The qis daemon: owns the metadata store, the chunk store, the QUIC server and the
 * sessions of connected clients.
 *
 * Concurrency model: one libuv loop thread runs everything: network I/O, transaction
 * handlers, SQLite (single writer; each accepted version commits with synchronous=FULL
 * before it is acknowledged). Password hashing (Argon2id, tens of ms) runs on the libuv
 * thread pool; its result comes back to the loop thread, and a session that closed
 * meanwhile is detected by a generation check. */
#ifndef QS_SERVER_DAEMON_H
#define QS_SERVER_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "core/recent.h"
#include "net/quic.h"
#include "store/chunks.h"
#include "store/meta.h"

struct qis_config {
	const char *addr;        /* sync protocol bind address */
	uint16_t quic_port;      /* 0 = free port */
	uint16_t http_port;      /* admin REST on 127.0.0.1 (0 = free port) */
	const char *config_dir;  /* where the endpoint file qis.api goes; NULL: no admin API */
	const char *data_dir;    /* created 0700 */
	const char *password;    /* server password to set on start, or NULL */
	bool fast_password_hash; /* tests only: cheap Argon2 parameters */
	/* Retention (server/retention.c): keep the newest keep_versions versions of a path
	 * and/or those younger than keep_days (0 and 0: keep all); unreferenced chunks older
	 * than gc_grace_s seconds are collected. */
	uint32_t keep_versions;
	uint32_t keep_days;
	int64_t gc_grace_s;
	/* A client's transaction that waits on the client without progress this long is
	 * canceled (qs_quic_limits.stall_timeout_ms); 0: never. */
	uint32_t stall_timeout_s;
	/* Called on the loop thread when the admin API asks the daemon to stop (POST /v1/stop),
	 * as a signal would; it is expected to call qis_daemon_stop. NULL: the daemon stops
	 * itself with no done callback. */
	void (*on_stop_request)(void *arg);
	void *stop_arg;
};

struct qis_session;
struct qis_admin;

struct qis_daemon {
	uv_loop_t *loop;
	struct qis_config cfg;
	struct qs_meta *meta;
	struct qs_chunks *chunks;
	struct qs_quic_server *quic;
	struct qis_admin *admin; /* NULL when cfg.config_dir is NULL */
	struct qis_session *sessions;
	uint64_t next_generation;
	bool stopping;
	struct qis_group *group;         /* sync.c: proposals waiting for the next group commit */
	struct qis_retention *retention; /* retention.c: the periodic prune and GC */
	struct qs_recent *recent; /* sync.c: chunks uploaded lately, per root (NULL until one) */
	unsigned stop_parts;      /* servers still shutting down (admin, QUIC) */
	void (*stop_done)(void *arg);
	void *stop_done_arg;
};

/* Opens the stores under cfg->data_dir (creating them) and starts serving: the admin API
 * (server/admin.h, when cfg->config_dir is set) and the sync protocol. Errors: QS_EIO,
 * QS_EACCES, QS_ENOMEM, the admin API's and the transport's. */
int qis_daemon_start(uv_loop_t *loop, const struct qis_config *cfg, struct qis_daemon **out);
/* Closes every connection of both servers; done runs when the loop may end; then
 * qis_daemon_free (which removes the endpoint file). */
void qis_daemon_stop(struct qis_daemon *d, void (*done)(void *arg), void *arg);
void qis_daemon_free(struct qis_daemon *d);

/* ---- internal to src/server ---- */

struct qis_session {
	struct qis_daemon *d;
	struct qs_conn *conn;
	uint64_t generation; /* unique per session: async work checks it is still alive */
	uint64_t client_id;  /* 0 until AUTH succeeded */
	unsigned failed_passwords;
	struct qis_session *next, *prev;
};

/* The live session with this generation, or NULL. */
struct qis_session *qis_session_find(struct qis_daemon *d, uint64_t generation);

/* Wall-clock time in Unix milliseconds, for the now_unix_ms of store commands (display only,
 * never ordering). */
int64_t qis_now_unix_ms(void);

/* Handlers: each installs its ops on tx. Errors refuse the transaction. */
int qis_tx_account(struct qis_session *s, struct qs_tx *tx, const char *name);
int qis_tx_sync(struct qis_session *s, struct qs_tx *tx, const char *name);
int qis_tx_conflict(struct qis_session *s, struct qs_tx *tx, const char *name);
/* Pushes the current version of root/path to session s (MUST_SYNC). */
int qis_push_to(struct qis_session *s, uint64_t root_id, const char *path);
/* Pushes a new version of root/path to every other connected member (MUST_SYNC). */
void qis_push_version(struct qis_daemon *d, uint64_t from_client, uint64_t root_id,
		      const char *path);
/* The store lost chunks of root/path's versions: asks the connected members for them
 * (NEED_CONTENT, need.c), stores what comes back verified, and pushes the path again. */
void qis_need_content(struct qis_daemon *d, uint64_t root_id, const char *path,
		      const uint8_t (*hashes)[QS_SHA256_LEN], size_t count);
int qis_tx_history(struct qis_session *s, struct qs_tx *tx, const char *name);
/* Retention and chunk GC (retention.c): _start runs it once and then every hour; _run runs
 * it now (stats may be NULL). Errors of _run: QS_ESTATE (a chunk batch is open: try again
 * later), the store's. */
int qis_retention_start(struct qis_daemon *d);
int qis_retention_run(struct qis_daemon *d, struct qs_chunks_gc_stats *stats);
/* _stop ends the periodic runs (the loop may end); _free closes the timer. */
void qis_retention_stop(struct qis_daemon *d);
void qis_retention_free(struct qis_daemon *d);
/* Group commit of proposals (sync.c): set up at start, torn down at free. */
int qis_group_init(struct qis_daemon *d);
void qis_group_free(struct qis_daemon *d);

#endif

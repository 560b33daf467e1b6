/* The qis admin REST API (docs/server.md): served by the running daemon on 127.0.0.1 with a
 * bearer token that is new at every start, found by the `qis show|password|stop` commands
 * through the endpoint file qis.api in the config directory (cli/endpoint.h). Reads go to
 * the metadata store; every change goes through qs_meta_apply. Password hashing runs on the
 * libuv thread pool, the answer waiting meanwhile (net/http.h deferred answers).
 *
 * Threading: everything here runs on the daemon's loop thread. */
#ifndef QS_SERVER_ADMIN_H
#define QS_SERVER_ADMIN_H

#include <stdint.h>

struct qis_daemon;
struct qis_admin;

/* Serves the admin API of d (borrowed: must outlive it) on 127.0.0.1:d->cfg.http_port (0: a
 * free port) with a new random token, then writes the endpoint file "qis.api" in
 * d->cfg.config_dir (created with mode 0700 when missing). Errors: QS_EIO (the port is taken),
 * QS_EACCES, QS_ENOENT, QS_EEXIST, QS_ENOSPC (the config directory or the endpoint file could
 * not be written), QS_ENOMEM. */
int qis_admin_start(struct qis_daemon *d, struct qis_admin **out);

/* The bound port. */
uint16_t qis_admin_port(const struct qis_admin *a);

/* Stops listening, answers requests still waiting for a password hash with 503, lets answers
 * in flight finish (up to one second) and calls done(arg) once everything is closed. The
 * endpoint file stays until qis_admin_free, so a `qis stop` waiting for it to vanish returns
 * when the daemon is about to exit. May be called from a handler (POST /v1/stop). Calling it
 * twice is a bug. */
void qis_admin_shutdown(struct qis_admin *a, void (*done)(void *arg), void *arg);

/* Removes the endpoint file (unless it already names another daemon) and frees a (NULL is
 * fine). An admin API that was not shut down is shut down here first, running the loop until
 * its handles are closed: that happens only when the daemon fails to start after it. */
void qis_admin_free(struct qis_admin *a);

#endif

/* The qis daemon's wiring (see daemon.h for the concurrency model): stores, QUIC server,
 * sessions, and dispatch of incoming transactions to their handlers. */
#include "server/daemon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>

#include <gnutls/crypto.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "core/sha256.h"
#include "net/txmsg.h"
#include "server/admin.h"
#include "store/password.h"

static const struct qs_password_params fast_params = {1, 64, 1};

struct qis_session *qis_session_find(struct qis_daemon *d, uint64_t generation)
{
	for (struct qis_session *s = d->sessions; s != NULL; s = s->next)
		if (s->generation == generation)
			return s;
	return NULL;
}

static void on_conn_open(struct qs_conn *conn, void *arg)
{
	struct qis_daemon *d = arg;
	struct qis_session *s = qs_calloc(1, sizeof(*s));
	if (s == NULL) {
		qs_conn_close(conn, QS_QUIC_ERR_INTERNAL);
		return;
	}
	s->d = d;
	s->conn = conn;
	s->generation = ++d->next_generation;
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	qs_conn_set_data(conn, s);
}

static void on_conn_close(struct qs_conn *conn, int err, void *arg)
{
	(void)err;
	struct qis_daemon *d = arg;
	struct qis_session *s = qs_conn_data(conn);
	if (s == NULL)
		return;
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	qs_free(s);
}

int64_t qis_now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_tx_open(struct qs_conn *conn, struct qs_tx *tx, const char *name, void *arg)
{
	(void)arg;
	struct qis_session *s = qs_conn_data(conn);
	if (s == NULL)
		return QS_ESTATE;
	int rc = qis_tx_account(s, tx, name);
	if (rc == QS_ENOENT)
		rc = qis_tx_sync(s, tx, name);
	if (rc == QS_ENOENT)
		rc = qis_tx_conflict(s, tx, name);
	if (rc == QS_ENOENT)
		rc = qis_tx_history(s, tx, name);
	if (rc == QS_ENOENT)
		qs_debug("server", "event=unknown_transaction name=%s peer=%s", name,
			 qs_conn_peer(conn));
	return rc;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return qs_err_from_errno(errno);
	return 0;
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? QS_E2BIG : 0;
}

/* Sets the server password: the one given, or a generated one printed once. */
static int setup_password(struct qis_daemon *d)
{
	char stored[QS_PASSWORD_HASH_MAX];
	int rc = qs_meta_server_password(d->meta, stored, sizeof(stored));
	if (rc != 0)
		return rc;
	char generated[33];
	const char *pw = d->cfg.password;
	if (pw == NULL && stored[0] != '\0')
		return 0;
	if (pw == NULL) {
		uint8_t raw[16];
		if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) != 0)
			return QS_ENOMEM;
		qs_hex_encode(raw, sizeof(raw), generated);
		qs_wipe(raw, sizeof(raw));
		pw = generated;
		printf("server password (generated; clients need it to register): %s\n", pw);
	}
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_SET_SERVER_PASSWORD;
	uint8_t salt[QS_META_SALT_LEN];
	if (gnutls_rnd(GNUTLS_RND_RANDOM, salt, sizeof(salt)) != 0)
		return QS_ENOMEM;
	rc = qs_password_hash(d->cfg.fast_password_hash ? &fast_params : NULL, pw, strlen(pw), salt,
			      sizeof(salt), cmd.u.set_server_password.password_hash,
			      sizeof(cmd.u.set_server_password.password_hash));
	qs_wipe(generated, sizeof(generated));
	struct qs_meta_result res;
	if (rc == 0)
		rc = qs_meta_apply(d->meta, &cmd, &res);
	return rc;
}

int qis_daemon_start(uv_loop_t *loop, const struct qis_config *cfg, struct qis_daemon **out)
{
	char path[4096];
	struct qis_daemon *d = qs_calloc(1, sizeof(*d));
	if (d == NULL)
		return QS_ENOMEM;
	d->loop = loop;
	d->cfg = *cfg;
	int rc = make_dir(cfg->data_dir);
	if (rc == 0)
		rc = join(path, sizeof(path), cfg->data_dir, "meta.db");
	if (rc == 0)
		rc = qs_meta_open(path, &d->meta);
	if (rc == 0)
		rc = join(path, sizeof(path), cfg->data_dir, "chunks");
	if (rc == 0)
		rc = qs_chunks_open(path, NULL, &d->chunks);
	if (rc == 0)
		rc = setup_password(d);
	if (rc == 0 && cfg->config_dir != NULL)
		rc = qis_admin_start(d, &d->admin);
	if (rc == 0)
		rc = qis_group_init(d);
	if (rc == 0)
		rc = qis_retention_start(d);
	if (rc == 0)
		rc = join(path, sizeof(path), cfg->data_dir, "tls");
	if (rc == 0) {
		struct qs_quic_server_config qc;
		qs_quic_server_config_default(&qc);
		qc.addr = cfg->addr;
		qc.port = cfg->quic_port;
		qc.cert_dir = path;
		qc.limits.stall_timeout_ms = (uint64_t)cfg->stall_timeout_s * 1000;
		qc.on_conn_open = on_conn_open;
		qc.on_conn_close = on_conn_close;
		qc.on_tx_open = on_tx_open;
		qc.arg = d;
		rc = qs_quic_server_new(loop, &qc, &d->quic);
	}
	if (rc != 0) {
		qis_daemon_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

/* One server finished shutting down; the last one calls the caller's done. */
static void stop_part_done(void *arg)
{
	struct qis_daemon *d = arg;
	if (--d->stop_parts == 0 && d->stop_done != NULL)
		d->stop_done(d->stop_done_arg);
}

void qis_daemon_stop(struct qis_daemon *d, void (*done)(void *arg), void *arg)
{
	d->stopping = true;
	qis_retention_stop(d);
	d->stop_done = done;
	d->stop_done_arg = arg;
	d->stop_parts = d->admin != NULL ? 2 : 1;
	if (d->admin != NULL)
		qis_admin_shutdown(d->admin, stop_part_done, d);
	qs_quic_server_shutdown(d->quic, stop_part_done, d);
}

void qis_daemon_free(struct qis_daemon *d)
{
	if (d == NULL)
		return;
	qs_quic_server_free(d->quic);
	qis_admin_free(d->admin);
	while (d->sessions != NULL) {
		struct qis_session *s = d->sessions;
		d->sessions = s->next;
		qs_free(s);
	}
	qis_group_free(d);
	qis_retention_free(d);
	qs_recent_free(d->recent);
	qs_chunks_close(d->chunks);
	qs_meta_close(d->meta);
	qs_free(d);
}

/* Account transactions: REGISTER_CLIENT, AUTH, REGISTER_ROOT, LIST_ROOTS, JOIN_ROOT,
 * LEAVE_ROOT. Password checks and hashing (Argon2id) run on the thread pool; every outcome
 * is recorded through qs_meta_apply. A session gets QIS_PASSWORD_TRIES wrong passwords, then
 * its connection is closed. */
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "core/sha256.h"
#include "server/reqrep.h"
#include "store/password.h"

#define QIS_PASSWORD_TRIES 5
#define LIST_ROOTS_MAX 1000

static const struct qs_password_params fast_params = {1, 64, 1};

/* Password work done off the loop: verify against `encoded`, or hash into `encoded`. */
struct pw_job {
	uv_work_t work;
	struct qis_req *req;
	bool hash; /* false: verify */
	const struct qs_password_params *params;
	char *password;
	size_t password_len;
	uint8_t salt[QS_META_SALT_LEN];
	char encoded[QS_PASSWORD_HASH_MAX];
	int rc;
	uint64_t root_id;
	void (*then)(struct pw_job *job);
};

static void pw_work(uv_work_t *w)
{
	struct pw_job *j = w->data;
	if (j->hash)
		j->rc = qs_password_hash(j->params, j->password, j->password_len, j->salt,
					 sizeof(j->salt), j->encoded, sizeof(j->encoded));
	else
		j->rc = qs_password_verify(j->encoded, j->password, j->password_len);
}

static void pw_job_free(struct pw_job *j)
{
	if (j->password != NULL) {
		qs_wipe(j->password, j->password_len);
		qs_free(j->password);
	}
	qs_free(j);
}

static void pw_after(uv_work_t *w, int status)
{
	struct pw_job *j = w->data;
	if (status != 0)
		j->rc = QS_ECANCELED;
	if (qis_req_async_done(j->req))
		j->then(j);
	pw_job_free(j);
}

/* Starts a password job for r; then(job) runs on the loop if the request is still alive. */
static int pw_start(struct qis_req *r, bool hash, const char *password, const char *encoded,
		    uint64_t root_id, void (*then)(struct pw_job *))
{
	struct pw_job *j = qs_calloc(1, sizeof(*j));
	if (j == NULL)
		return QS_ENOMEM;
	j->password_len = strlen(password);
	j->password = qs_strndup(password, j->password_len);
	if (j->password == NULL) {
		qs_free(j);
		return QS_ENOMEM;
	}
	j->req = r;
	j->hash = hash;
	j->root_id = root_id;
	j->params = r->s->d->cfg.fast_password_hash ? &fast_params : NULL;
	j->then = then;
	if (encoded != NULL)
		snprintf(j->encoded, sizeof(j->encoded), "%s", encoded);
	if (hash && gnutls_rnd(GNUTLS_RND_RANDOM, j->salt, sizeof(j->salt)) != 0) {
		pw_job_free(j);
		return QS_ENOMEM;
	}
	j->work.data = j;
	qis_req_async_start(r);
	if (uv_queue_work(r->s->d->loop, &j->work, pw_work, pw_after) != 0) {
		qis_req_async_done(r);
		pw_job_free(j);
		return QS_ENOMEM;
	}
	return 0;
}

/* A wrong password: count it, and close the connection after too many. */
static void wrong_password(struct qis_req *r)
{
	qis_reply_error(r, QS_EACCES, "wrong password");
	struct qis_session *s = r->s;
	if (s != NULL && ++s->failed_passwords >= QIS_PASSWORD_TRIES) {
		qs_warn("server", "event=too_many_passwords peer=%s", qs_conn_peer(s->conn));
		qs_conn_close(s->conn, QS_QUIC_ERR_LIMIT);
	}
}

/* ---- REGISTER_CLIENT ---- */

static void register_client_checked(struct pw_job *j)
{
	struct qis_req *r = j->req;
	if (j->rc == QS_EACCES) {
		wrong_password(r);
		return;
	}
	if (j->rc != 0) {
		qis_reply_error(r, j->rc, "password check failed");
		return;
	}
	const char *name = r->data;
	uint8_t token[QS_META_TOKEN_LEN];
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_REGISTER_CLIENT;
	cmd.now_unix_ms = qis_now_unix_ms();
	snprintf(cmd.u.register_client.name, sizeof(cmd.u.register_client.name), "%s", name);
	struct qs_meta_result res;
	int rc = gnutls_rnd(GNUTLS_RND_KEY, token, sizeof(token)) == 0 ? 0 : QS_ENOMEM;
	if (rc == 0)
		rc = qs_sha256(token, sizeof(token), cmd.u.register_client.token_hash);
	if (rc == 0)
		rc = qs_meta_apply(r->s->d->meta, &cmd, &res);
	if (rc != 0) {
		qis_reply_error(r, rc, "cannot register the client");
		qs_wipe(token, sizeof(token));
		return;
	}
	Quics__RegisterClientResponse resp = QUICS__REGISTER_CLIENT_RESPONSE__INIT;
	resp.client_id = res.id;
	resp.token.data = token;
	resp.token.len = sizeof(token);
	qis_reply(r, &resp.base);
	qs_wipe(token, sizeof(token));
	qs_info("server", "event=client_registered client=%llu name=\"%s\"",
		(unsigned long long)res.id, cmd.u.register_client.name);
}

static int on_register_client(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__RegisterClientRequest *req = (const void *)msg;
	char encoded[QS_PASSWORD_HASH_MAX];
	int rc = qs_meta_server_password(r->s->d->meta, encoded, sizeof(encoded));
	if (rc != 0)
		return rc;
	if (encoded[0] == '\0')
		return QS_EACCES; /* no server password: registration is closed */
	/* The display name outlives the message: keep a bounded copy for the reply path. */
	char *name = qs_calloc(1, QS_META_NAME_MAX + 1);
	if (name == NULL)
		return QS_ENOMEM;
	snprintf(name, QS_META_NAME_MAX + 1, "%s", req->client_name);
	r->data = name;
	return pw_start(r, false, req->server_password, encoded, 0, register_client_checked);
}

/* ---- AUTH ---- */

static int on_auth(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__AuthRequest *req = (const void *)msg;
	if (req->token.len != QS_META_TOKEN_LEN)
		return QS_EPROTO;
	int rc = qs_meta_client_check(r->s->d->meta, req->client_id, req->token.data);
	if (rc == QS_EACCES || rc == QS_ENOENT) {
		qis_reply_error(r, QS_EACCES, "unknown client or wrong token");
		if (++r->s->failed_passwords >= QIS_PASSWORD_TRIES)
			qs_conn_close(r->s->conn, QS_QUIC_ERR_LIMIT);
		return 0;
	}
	if (rc != 0)
		return rc;
	r->s->client_id = req->client_id;
	Quics__AuthResponse resp = QUICS__AUTH_RESPONSE__INIT;
	resp.server_version = (char *)"qis " QS_VERSION;
	qis_reply(r, &resp.base);
	qs_info("server", "event=auth client=%llu peer=%s", (unsigned long long)req->client_id,
		qs_conn_peer(r->s->conn));
	return 0;
}

/* ---- REGISTER_ROOT ---- */

struct root_req {
	char name[QS_META_NAME_MAX + 1];
};

static void register_root_hashed(struct pw_job *j)
{
	struct qis_req *r = j->req;
	struct root_req *rr = r->data;
	if (j->rc != 0) {
		qis_reply_error(r, j->rc, "cannot hash the root password");
		return;
	}
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_REGISTER_ROOT;
	cmd.now_unix_ms = qis_now_unix_ms();
	cmd.client_id = r->s->client_id;
	snprintf(cmd.u.register_root.name, sizeof(cmd.u.register_root.name), "%s", rr->name);
	snprintf(cmd.u.register_root.password_hash, sizeof(cmd.u.register_root.password_hash), "%s",
		 j->encoded);
	struct qs_meta_result res;
	int rc = qs_meta_apply(r->s->d->meta, &cmd, &res);
	if (rc != 0) {
		qis_reply_error(r, rc,
				rc == QS_EEXIST ? "a root with that name exists"
						: "cannot register the root");
		return;
	}
	Quics__RegisterRootResponse resp = QUICS__REGISTER_ROOT_RESPONSE__INIT;
	resp.root_id = res.id;
	qis_reply(r, &resp.base);
	qs_info("server", "event=root_registered root=%llu name=\"%s\" client=%llu",
		(unsigned long long)res.id, rr->name, (unsigned long long)cmd.client_id);
}

static int root_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > QS_META_NAME_MAX)
		return QS_EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == '/')
			return QS_EINVAL;
	return 0;
}

static int on_register_root(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__RegisterRootRequest *req = (const void *)msg;
	if (root_name_valid(req->name) != 0)
		return QS_EPROTO;
	if (req->password[0] == '\0')
		return QS_EPROTO;
	uint64_t id;
	char enc[QS_PASSWORD_HASH_MAX];
	if (qs_meta_root_by_name(r->s->d->meta, req->name, &id, enc, sizeof(enc)) == 0)
		return QS_EEXIST;
	struct root_req *rr = qs_calloc(1, sizeof(*rr));
	if (rr == NULL)
		return QS_ENOMEM;
	snprintf(rr->name, sizeof(rr->name), "%s", req->name);
	r->data = rr;
	return pw_start(r, true, req->password, NULL, 0, register_root_hashed);
}

/* ---- JOIN_ROOT / LEAVE_ROOT / LIST_ROOTS ---- */

static int apply_membership(struct qis_req *r, enum qs_meta_cmd_type type, uint64_t root_id)
{
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = type;
	cmd.now_unix_ms = qis_now_unix_ms();
	cmd.client_id = r->s->client_id;
	cmd.u.join_root.root_id = root_id;
	struct qs_meta_result res;
	return qs_meta_apply(r->s->d->meta, &cmd, &res);
}

static void join_root_checked(struct pw_job *j)
{
	struct qis_req *r = j->req;
	if (j->rc == QS_EACCES) {
		wrong_password(r);
		return;
	}
	int rc = j->rc != 0 ? j->rc : apply_membership(r, QS_CMD_JOIN_ROOT, j->root_id);
	if (rc != 0) {
		qis_reply_error(r, rc, "cannot join the root");
		return;
	}
	Quics__JoinRootResponse resp = QUICS__JOIN_ROOT_RESPONSE__INIT;
	resp.root_id = j->root_id;
	qis_reply(r, &resp.base);
}

static int on_join_root(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__JoinRootRequest *req = (const void *)msg;
	uint64_t id;
	char enc[QS_PASSWORD_HASH_MAX];
	int rc = qs_meta_root_by_name(r->s->d->meta, req->name, &id, enc, sizeof(enc));
	if (rc == QS_ENOENT) {
		qis_reply_error(r, QS_ENOENT, "no root with that name");
		return 0;
	}
	if (rc != 0)
		return rc;
	return pw_start(r, false, req->password, enc, id, join_root_checked);
}

static int on_leave_root(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__LeaveRootRequest *req = (const void *)msg;
	int rc = apply_membership(r, QS_CMD_LEAVE_ROOT, req->root_id);
	if (rc != 0)
		return rc;
	Quics__LeaveRootResponse resp = QUICS__LEAVE_ROOT_RESPONSE__INIT;
	qis_reply(r, &resp.base);
	return 0;
}

struct list_acc {
	Quics__RootInfo *infos;
	Quics__RootInfo **ptrs;
	char **names;
	size_t n, cap;
};

static int list_one(void *arg, uint64_t root_id, const char *name, bool joined)
{
	struct list_acc *a = arg;
	if (a->n == a->cap)
		return 1;
	Quics__RootInfo init = QUICS__ROOT_INFO__INIT;
	a->infos[a->n] = init;
	a->names[a->n] = qs_strdup(name);
	if (a->names[a->n] == NULL)
		return QS_ENOMEM;
	a->infos[a->n].root_id = root_id;
	a->infos[a->n].name = a->names[a->n];
	a->infos[a->n].joined = joined;
	a->ptrs[a->n] = &a->infos[a->n];
	a->n++;
	return 0;
}

static int on_list_roots(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__ListRootsRequest *req = (const void *)msg;
	size_t limit = req->limit == 0 || req->limit > LIST_ROOTS_MAX ? LIST_ROOTS_MAX : req->limit;
	struct list_acc a = {0};
	a.cap = limit + 1; /* one more tells whether a next page exists */
	a.infos = qs_calloc(a.cap, sizeof(*a.infos));
	a.ptrs = qs_calloc(a.cap, sizeof(*a.ptrs));
	a.names = qs_calloc(a.cap, sizeof(*a.names));
	int rc = a.infos && a.ptrs && a.names ? 0 : QS_ENOMEM;
	if (rc == 0)
		rc = qs_meta_roots(r->s->d->meta, r->s->client_id, req->cursor, a.cap, list_one,
				   &a);
	if (rc == 0 || rc == 1) {
		Quics__ListRootsResponse resp = QUICS__LIST_ROOTS_RESPONSE__INIT;
		bool more = a.n > limit;
		resp.n_roots = more ? limit : a.n;
		resp.roots = a.ptrs;
		resp.next_cursor = more ? a.names[limit - 1] : (char *)"";
		qis_reply(r, &resp.base);
		rc = 0;
	}
	for (size_t i = 0; i < a.n; i++)
		qs_free(a.names[i]);
	qs_free(a.infos);
	qs_free(a.ptrs);
	qs_free(a.names);
	return rc;
}

/* ---- dispatch ---- */

int qis_tx_account(struct qis_session *s, struct qs_tx *tx, const char *name)
{
	static const struct {
		const char *name;
		const ProtobufCMessageDescriptor *desc;
		qis_req_fn fn;
		bool needs_auth;
	} table[] = {
		{"REGISTER_CLIENT", &quics__register_client_request__descriptor, on_register_client,
		 false},
		{"AUTH", &quics__auth_request__descriptor, on_auth, false},
		{"REGISTER_ROOT", &quics__register_root_request__descriptor, on_register_root,
		 true},
		{"LIST_ROOTS", &quics__list_roots_request__descriptor, on_list_roots, true},
		{"JOIN_ROOT", &quics__join_root_request__descriptor, on_join_root, true},
		{"LEAVE_ROOT", &quics__leave_root_request__descriptor, on_leave_root, true},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(name, table[i].name) != 0)
			continue;
		if (table[i].needs_auth && s->client_id == 0)
			return qis_refuse_unauthenticated(tx);
		return qis_req_accept(s, tx, table[i].desc, table[i].fn);
	}
	return QS_ENOENT;
}

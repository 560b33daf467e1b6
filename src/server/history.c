/* History transactions of the server: HISTORY_SHOW (a page of a path's stored versions,
 * newest first, with the operation that made each), HISTORY_DOWNLOAD (one stored version's
 * content through the shared download flow, server/fetch.h) and ROLLBACK (a ROLLBACK
 * command through qs_meta_apply, then FORCE_SYNC of the new version to every member).
 * Membership is checked before anything is read: a client sees only roots it joined. */
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "core/filestate.h"
#include "net/txmsg.h"
#include "server/fetch.h"
#include "server/reqrep.h"

#define HISTORY_PAGE_DEFAULT 100
#define HISTORY_PAGE_MAX 1000

/* The request's root and path: valid, and a root this client joined. */
static int check_access(struct qis_session *s, uint64_t root_id, const char *path)
{
	int rc = qs_path_check(path, strlen(path));
	if (rc != 0)
		return rc;
	return qs_meta_is_member(s->d->meta, s->client_id, root_id) ? 0 : QS_EACCES;
}

static Quics__VersionOperation wire_operation(enum qs_meta_op op)
{
	switch (op) {
	case QS_OP_CREATE: return QUICS__VERSION_OPERATION__VERSION_OPERATION_CREATE;
	case QS_OP_MODIFY: return QUICS__VERSION_OPERATION__VERSION_OPERATION_MODIFY;
	case QS_OP_DELETE: return QUICS__VERSION_OPERATION__VERSION_OPERATION_DELETE;
	case QS_OP_RENAME: return QUICS__VERSION_OPERATION__VERSION_OPERATION_RENAME;
	case QS_OP_ROLLBACK: return QUICS__VERSION_OPERATION__VERSION_OPERATION_ROLLBACK;
	case QS_OP_RESOLVE: return QUICS__VERSION_OPERATION__VERSION_OPERATION_RESOLVE;
	default: return QUICS__VERSION_OPERATION__VERSION_OPERATION_UNSPECIFIED;
	}
}

/* ---- HISTORY_SHOW ---- */

struct show_acc {
	struct qs_meta *meta;
	Quics__HistoryEntry *es;
	Quics__HistoryEntry **ps;
	char (*names)[QS_META_NAME_MAX + 1];
	uint8_t (*hashes)[QS_CONTENT_HASH_LEN];
	size_t n, cap;
};

static int show_one(void *arg, const struct qs_meta_version_info *v)
{
	struct show_acc *a = arg;
	if (a->n == a->cap)
		return 1;
	Quics__HistoryEntry init = QUICS__HISTORY_ENTRY__INIT;
	Quics__HistoryEntry *e = &a->es[a->n];
	*e = init;
	struct qs_meta_client_info c;
	if (qs_meta_client(a->meta, v->modified_by, &c) == 0)
		memcpy(a->names[a->n], c.name, sizeof(c.name));
	memcpy(a->hashes[a->n], v->content.hash, QS_CONTENT_HASH_LEN);
	e->version = v->version;
	e->kind = qs_filestate_wire_kind(v->content.kind);
	e->size = v->size;
	e->mode = v->mode;
	e->mtime_ns = v->mtime_ns;
	e->content_hash.data = a->hashes[a->n];
	e->content_hash.len = QS_CONTENT_HASH_LEN;
	e->modified_by = v->modified_by;
	e->client_name = a->names[a->n];
	e->accepted_unix_ms = v->accepted_unix_ms;
	e->operation = wire_operation(v->op);
	a->ps[a->n] = e;
	a->n++;
	return 0;
}

static int on_history_show(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__HistoryShowRequest *req = (const void *)msg;
	int rc = check_access(r->s, req->root_id, req->path);
	if (rc != 0)
		return rc;
	size_t limit = req->limit == 0                 ? HISTORY_PAGE_DEFAULT
		       : req->limit > HISTORY_PAGE_MAX ? HISTORY_PAGE_MAX
						       : req->limit;
	struct show_acc a = {.meta = r->s->d->meta, .cap = limit + 1};
	a.es = qs_calloc(a.cap, sizeof(*a.es));
	a.ps = qs_calloc(a.cap, sizeof(*a.ps));
	a.names = qs_calloc(a.cap, sizeof(*a.names));
	a.hashes = qs_calloc(a.cap, sizeof(*a.hashes));
	rc = a.es && a.ps && a.names && a.hashes ? 0 : QS_ENOMEM;
	if (rc == 0)
		rc = qs_meta_history_desc(a.meta, req->root_id, req->path, req->before_version,
					  a.cap, show_one, &a);
	if (rc == 0 || rc == 1) {
		Quics__HistoryShowResponse resp = QUICS__HISTORY_SHOW_RESPONSE__INIT;
		bool more = a.n > limit;
		resp.n_versions = more ? limit : a.n;
		resp.versions = a.ps;
		resp.next_before_version = more ? a.es[limit - 1].version : 0;
		qis_reply(r, &resp.base);
		rc = 0;
	}
	qs_free(a.es);
	qs_free(a.ps);
	qs_free(a.names);
	qs_free(a.hashes);
	return rc;
}

/* ---- HISTORY_DOWNLOAD ---- */

static int history_lookup(struct qis_session *s, const ProtobufCMessage *msg,
			  struct qs_meta_file *f, uint8_t **manifest)
{
	const Quics__HistoryDownloadRequest *req = (const void *)msg;
	int rc = check_access(s, req->root_id, req->path);
	if (rc == 0)
		rc = qs_meta_version_get(s->d->meta, req->root_id, req->path, req->version, NULL, f,
					 manifest);
	return rc;
}

static int history_first(struct qs_tx *tx, const Quics__FileState *st, void *arg)
{
	(void)arg;
	Quics__HistoryDownloadResponse resp = QUICS__HISTORY_DOWNLOAD_RESPONSE__INIT;
	resp.state = (Quics__FileState *)st;
	return qs_tx_send_pb(tx, &resp.base);
}

/* ---- ROLLBACK ---- */

static int on_rollback(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__RollbackRequest *req = (const void *)msg;
	struct qis_daemon *d = r->s->d;
	int rc = check_access(r->s, req->root_id, req->path);
	if (rc != 0)
		return rc;
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_ROLLBACK;
	cmd.now_unix_ms = qis_now_unix_ms();
	cmd.client_id = r->s->client_id;
	cmd.u.rollback.root_id = req->root_id;
	cmd.u.rollback.path = req->path;
	cmd.u.rollback.version = req->version;
	cmd.u.rollback.current_version = req->current_version;
	struct qs_meta_result res;
	rc = qs_meta_apply(d->meta, &cmd, &res);
	if (rc == QS_ECONFLICT) {
		qis_reply_error(r, rc, "the current version changed: look at the history again");
		return 0;
	}
	if (rc == QS_ENOENT) {
		qis_reply_error(r, rc, "no such path or version");
		return 0;
	}
	if (rc == QS_EKIND) {
		qis_reply_error(r, rc,
				"that version is a file, and the path is now a directory holding "
				"paths, or lies below a file: move or delete those first");
		return 0;
	}
	if (rc != 0)
		return rc;
	Quics__RollbackResponse resp = QUICS__ROLLBACK_RESPONSE__INIT;
	resp.version = res.decision.version;
	qis_reply(r, &resp.base);
	if (res.decision.verdict == QS_VERDICT_FAST_FORWARD) {
		qs_info("server",
			"event=rollback client=%llu root=%llu path=\"%s\" to=%llu version=%llu",
			(unsigned long long)cmd.client_id, (unsigned long long)req->root_id,
			req->path, (unsigned long long)req->version,
			(unsigned long long)res.decision.version);
		qis_force_version(d, cmd.client_id, req->root_id, req->path,
				  QUICS__FORCE_REASON__FORCE_REASON_ROLLBACK);
	}
	return 0;
}

int qis_tx_history(struct qis_session *s, struct qs_tx *tx, const char *name)
{
	bool show = strcmp(name, "HISTORY_SHOW") == 0;
	bool download = strcmp(name, "HISTORY_DOWNLOAD") == 0;
	bool rollback = strcmp(name, "ROLLBACK") == 0;
	if (!show && !download && !rollback)
		return QS_ENOENT;
	if (s->client_id == 0)
		return qis_refuse_unauthenticated(tx);
	if (download)
		return qis_download_accept(s, tx, &quics__history_download_request__descriptor,
					   history_lookup, history_first);
	if (show)
		return qis_req_accept(s, tx, &quics__history_show_request__descriptor,
				      on_history_show);
	return qis_req_accept(s, tx, &quics__rollback_request__descriptor, on_rollback);
}

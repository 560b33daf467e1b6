/* History operations of the client daemon (history.h): HISTORY_SHOW pages gathered into one
 * answer, HISTORY_DOWNLOAD through the shared download flow (fetch.h), ROLLBACK after a
 * look at the current version. Each operation owns a small context freed when done runs. */
#include "client/history.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/fetch.h"
#include "core/filestate.h"
#include "core/sha256.h"

#define SHOW_PAGE 1000

struct hop {
	struct qic_engine *e;
	uint64_t root_id;
	char *rel;
	uint64_t limit, version, current;
	json_t *versions;
	char *out;
	qic_json_done_fn done;
	void *arg;
};

static void hop_end(struct hop *h, int err, const char *msg, json_t *result)
{
	h->done(h->arg, err, msg, result);
	json_decref(h->versions);
	qs_free(h->rel);
	qs_free(h->out);
	qs_free(h);
}

/* A context for abs_path, or NULL after done ran with the error. */
static struct hop *hop_new(struct qic_engine *e, const char *abs_path, qic_json_done_fn done,
			   void *arg, struct qic_root **root)
{
	struct hop *h = qs_calloc(1, sizeof(*h));
	if (h == NULL) {
		done(arg, QS_ENOMEM, "out of memory", NULL);
		return NULL;
	}
	h->e = e;
	h->done = done;
	h->arg = arg;
	struct qic_root *r = NULL;
	int rc = qic_engine_resolve(e, abs_path, &r, &h->rel);
	if (rc != 0) {
		hop_end(h, rc == QS_ENOENT ? QS_ENOENT : QS_EINVAL,
			rc == QS_ENOENT ? "the path is not inside a synced folder"
					: "not a valid path inside a synced folder",
			NULL);
		return NULL;
	}
	h->root_id = r->root_id;
	if (root != NULL)
		*root = r;
	return h;
}

static const char *op_name(Quics__VersionOperation op)
{
	switch (op) {
	case QUICS__VERSION_OPERATION__VERSION_OPERATION_CREATE: return "create";
	case QUICS__VERSION_OPERATION__VERSION_OPERATION_MODIFY: return "modify";
	case QUICS__VERSION_OPERATION__VERSION_OPERATION_DELETE: return "delete";
	case QUICS__VERSION_OPERATION__VERSION_OPERATION_RENAME: return "rename";
	case QUICS__VERSION_OPERATION__VERSION_OPERATION_ROLLBACK: return "rollback";
	case QUICS__VERSION_OPERATION__VERSION_OPERATION_RESOLVE: return "resolve";
	default: return "unknown";
	}
}

static const char *kind_name(Quics__FileKind k)
{
	switch (qs_filestate_kind(k)) {
	case QS_KIND_FILE: return "file";
	case QS_KIND_DIR: return "dir";
	case QS_KIND_SYMLINK: return "symlink";
	default: return "deleted";
	}
}

static json_t *entry_json(const Quics__HistoryEntry *v)
{
	char hex[2 * QS_SHA256_LEN + 1];
	size_t n = v->content_hash.len == QS_SHA256_LEN ? QS_SHA256_LEN : 0;
	qs_hex_encode(v->content_hash.data, n, hex);
	hex[2 * n] = '\0';
	return json_pack("{s:I,s:s,s:I,s:I,s:I,s:s,s:I,s:s,s:I,s:s}", "version",
			 (json_int_t)v->version, "kind", kind_name(v->kind), "size",
			 (json_int_t)v->size, "mode", (json_int_t)v->mode, "mtime_ns",
			 (json_int_t)v->mtime_ns, "content_hash", hex, "client_id",
			 (json_int_t)v->modified_by, "client_name", v->client_name,
			 "accepted_unix_ms", (json_int_t)v->accepted_unix_ms, "operation",
			 op_name(v->operation));
}

/* ---- show ---- */

static void show_page(struct hop *h, uint64_t before);

static void show_reply(void *arg, const ProtobufCMessage *reply, int err, const char *msg)
{
	struct hop *h = arg;
	if (err != 0) {
		hop_end(h, err, msg, NULL);
		return;
	}
	const Quics__HistoryShowResponse *r = (const void *)reply;
	for (size_t i = 0; i < r->n_versions; i++) {
		if (h->limit != 0 && json_array_size(h->versions) >= h->limit)
			break;
		/* Newest first on the wire: prepend, so the answer ascends. */
		json_array_insert_new(h->versions, 0, entry_json(r->versions[i]));
	}
	bool full = h->limit != 0 && json_array_size(h->versions) >= h->limit;
	if (r->next_before_version != 0 && !full) {
		show_page(h, r->next_before_version);
		return;
	}
	json_t *res = json_pack("{s:I,s:s,s:O}", "root_id", (json_int_t)h->root_id, "path", h->rel,
				"versions", h->versions);
	hop_end(h, res != NULL ? 0 : QS_ENOMEM, "out of memory", res);
}

static void show_page(struct hop *h, uint64_t before)
{
	Quics__HistoryShowRequest req = QUICS__HISTORY_SHOW_REQUEST__INIT;
	req.root_id = h->root_id;
	req.path = h->rel;
	req.before_version = before;
	uint64_t left = h->limit != 0 ? h->limit - json_array_size(h->versions) : SHOW_PAGE;
	req.limit = (uint32_t)(left < SHOW_PAGE ? left : SHOW_PAGE);
	qic_call_read(h->e, "HISTORY_SHOW", &req.base, &quics__history_show_response__descriptor,
		      show_reply, h);
}

void qic_history_show(struct qic_engine *e, const char *abs_path, uint64_t from_head,
		      qic_json_done_fn done, void *arg)
{
	struct hop *h = hop_new(e, abs_path, done, arg, NULL);
	if (h == NULL)
		return;
	h->limit = from_head;
	h->versions = json_array();
	if (h->versions == NULL) {
		hop_end(h, QS_ENOMEM, "out of memory", NULL);
		return;
	}
	show_page(h, 0);
}

/* ---- download ---- */

static const Quics__FileState *history_state(const ProtobufCMessage *reply)
{
	return ((const Quics__HistoryDownloadResponse *)reply)->state;
}

static void download_done(void *arg, int err, const char *msg, uint64_t size)
{
	struct hop *h = arg;
	json_t *res = NULL;
	if (err == 0) {
		res = json_pack("{s:s,s:I,s:s,s:I}", "path", h->rel, "version",
				(json_int_t)h->version, "out", h->out, "size", (json_int_t)size);
		err = res != NULL ? 0 : QS_ENOMEM;
	}
	hop_end(h, err, msg, res);
}

void qic_history_download(struct qic_engine *e, const char *abs_path, uint64_t version,
			  const char *out_path, qic_json_done_fn done, void *arg)
{
	struct qic_root *r;
	struct hop *h = hop_new(e, abs_path, done, arg, &r);
	if (h == NULL)
		return;
	h->version = version;
	h->out = qs_strdup(out_path);
	if (h->out == NULL || out_path[0] != '/') {
		hop_end(h, h->out == NULL ? QS_ENOMEM : QS_EINVAL,
			"the output path must be absolute", NULL);
		return;
	}
	Quics__HistoryDownloadRequest req = QUICS__HISTORY_DOWNLOAD_REQUEST__INIT;
	req.root_id = h->root_id;
	req.path = h->rel;
	req.version = version;
	struct qic_fetch_target t = {r, h->rel, h->out};
	qic_fetch_file(e, "HISTORY_DOWNLOAD", &req.base,
		       &quics__history_download_response__descriptor, history_state, &t,
		       download_done, h);
}

/* ---- rollback ---- */

static void rollback_reply(void *arg, const ProtobufCMessage *reply, int err, const char *msg)
{
	struct hop *h = arg;
	json_t *res = NULL;
	if (err == 0) {
		const Quics__RollbackResponse *r = (const void *)reply;
		res = json_pack("{s:s,s:I,s:I}", "path", h->rel, "version", (json_int_t)r->version,
				"rolled_back_to", (json_int_t)h->version);
		err = res != NULL ? 0 : QS_ENOMEM;
	}
	hop_end(h, err, msg, res);
}

static void rollback_send(struct hop *h)
{
	Quics__RollbackRequest req = QUICS__ROLLBACK_REQUEST__INIT;
	req.root_id = h->root_id;
	req.path = h->rel;
	req.version = h->version;
	req.current_version = h->current;
	qic_call(h->e, "ROLLBACK", &req.base, &quics__rollback_response__descriptor, rollback_reply,
		 h);
}

static void rollback_head(void *arg, const ProtobufCMessage *reply, int err, const char *msg)
{
	struct hop *h = arg;
	const Quics__HistoryShowResponse *r = (const void *)reply;
	if (err == 0 && r->n_versions == 0) {
		err = QS_ENOENT;
		msg = "the path has no history";
	}
	if (err != 0) {
		hop_end(h, err, msg, NULL);
		return;
	}
	h->current = r->versions[0]->version;
	rollback_send(h);
}

void qic_history_rollback(struct qic_engine *e, const char *abs_path, uint64_t version,
			  uint64_t current_version, qic_json_done_fn done, void *arg)
{
	struct hop *h = hop_new(e, abs_path, done, arg, NULL);
	if (h == NULL)
		return;
	h->version = version;
	h->current = current_version;
	if (current_version != 0) {
		rollback_send(h);
		return;
	}
	Quics__HistoryShowRequest req = QUICS__HISTORY_SHOW_REQUEST__INIT;
	req.root_id = h->root_id;
	req.path = h->rel;
	req.limit = 1;
	qic_call_read(e, "HISTORY_SHOW", &req.base, &quics__history_show_response__descriptor,
		      rollback_head, h);
}

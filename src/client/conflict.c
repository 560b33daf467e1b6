/* Conflict routes of the qic REST API (see conflict.h). A deferred HTTP request and the
 * server transactions it waits for share one struct op; if the HTTP server cancels the
 * request (shutdown), the op only forgets it and is freed when the transaction ends. */
#include "client/conflict.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/path.h"
#include "client/api.h"
#include "client/fetch.h"

struct op {
	struct qic_engine *e;
	struct qs_http_request *req; /* NULL once cancelled */
	json_t *out;                 /* list: the conflicts array being built */
	uint64_t *roots;             /* list: root ids still to ask */
	size_t nroots, next;
	char *cursor;
	uint64_t root_id;
	char *path;
};

static void op_free(struct op *o)
{
	json_decref(o->out);
	qs_free(o->roots);
	qs_free(o->cursor);
	qs_free(o->path);
	qs_free(o);
}

static void op_cancel(void *arg)
{
	struct op *o = arg;
	o->req = NULL;
}

/* Answers the op's request with an error for a failed transaction and frees the op. */
static void op_fail(struct op *o, int err, const char *message, const char *what)
{
	if (o->req != NULL) {
		json_t *body = NULL;
		unsigned status = qic_api_status(err);
		qs_http_fail(&body, status, qic_api_code(err), "%s: %s", what,
			     message != NULL && message[0] != '\0' ? message : qs_strerror(err));
		qs_http_complete(o->req, status, body);
	}
	op_free(o);
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static const char *kind_name(Quics__FileKind k)
{
	switch (k) {
	case QUICS__FILE_KIND__FILE_KIND_FILE: return "file";
	case QUICS__FILE_KIND__FILE_KIND_DIR: return "dir";
	case QUICS__FILE_KIND__FILE_KIND_SYMLINK: return "symlink";
	case QUICS__FILE_KIND__FILE_KIND_TOMBSTONE: return "deleted";
	default: return "?";
	}
}

/* ---- GET /v1/conflicts ---- */

static void list_next(struct op *o);

static json_t *candidate_json(const Quics__Candidate *c, uint64_t me)
{
	char h[2 * QS_CONTENT_HASH_LEN + 1] = "";
	if (c->content_hash.len == QS_CONTENT_HASH_LEN)
		hex(c->content_hash.data, QS_CONTENT_HASH_LEN, h);
	return json_pack("{s:I,s:I,s:s,s:I,s:s,s:I,s:I,s:s,s:I,s:b}", "id",
			 (json_int_t)c->candidate_id, "client_id", (json_int_t)c->client_id,
			 "client_name", c->client_name, "base_version", (json_int_t)c->base_version,
			 "kind", kind_name(c->kind), "size", (json_int_t)c->size, "mtime_ns",
			 (json_int_t)c->mtime_ns, "hash", h, "proposed_unix_ms",
			 (json_int_t)c->proposed_unix_ms, "mine", c->client_id == me);
}

static void list_reply(void *arg, const ProtobufCMessage *reply, int err, const char *message)
{
	struct op *o = arg;
	if (err != 0) {
		op_fail(o, err, message, "cannot list conflicts");
		return;
	}
	const Quics__ConflictListResponse *resp = (const void *)reply;
	struct qic_root *r = qic_root_by_id(o->e, o->root_id);
	struct qic_status st;
	qic_engine_status(o->e, &st);
	for (size_t i = 0; r != NULL && i < resp->n_conflicts; i++) {
		const Quics__ConflictInfo *ci = resp->conflicts[i];
		json_t *cands = json_array();
		for (size_t k = 0; k < ci->n_candidates; k++)
			json_array_append_new(cands,
					      candidate_json(ci->candidates[k], st.client_id));
		size_t n = strlen(r->dir) + strlen(ci->path) + 2;
		char *local = qs_malloc(n);
		if (local != NULL)
			snprintf(local, n, "%s/%s", r->dir, ci->path);
		json_array_append_new(
			o->out, json_pack("{s:I,s:s,s:s,s:s,s:s?,s:I,s:o}", "root_id",
					  (json_int_t)r->root_id, "root", r->name, "dir", r->dir,
					  "path", ci->path, "local_path", local, "server_version",
					  (json_int_t)ci->server_version, "candidates", cands));
		qs_free(local);
	}
	qs_free(o->cursor);
	o->cursor = NULL;
	if (resp->next_cursor[0] != '\0') {
		o->cursor = qs_strdup(resp->next_cursor);
		if (o->cursor == NULL) {
			op_fail(o, QS_ENOMEM, NULL, "cannot list conflicts");
			return;
		}
	} else {
		o->next++;
	}
	list_next(o);
}

static void list_next(struct op *o)
{
	if (o->req == NULL) {
		op_free(o);
		return;
	}
	if (o->next == o->nroots) {
		json_t *body = json_pack("{s:O}", "conflicts", o->out);
		qs_http_complete(o->req, 200, body);
		op_free(o);
		return;
	}
	o->root_id = o->roots[o->next];
	Quics__ConflictListRequest req = QUICS__CONFLICT_LIST_REQUEST__INIT;
	req.root_id = o->root_id;
	req.cursor = o->cursor != NULL ? o->cursor : (char *)"";
	qic_call_read(o->e, "CONFLICT_LIST", &req.base, &quics__conflict_list_response__descriptor,
		      list_reply, o);
}

static unsigned get_conflicts(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_engine *e = arg;
	struct op *o = qs_calloc(1, sizeof(*o));
	size_t n = 0;
	for (struct qic_root *r = qic_engine_roots(e); r != NULL; r = r->next)
		n++;
	if (o != NULL) {
		o->out = json_array();
		o->roots = qs_calloc(n ? n : 1, sizeof(*o->roots));
	}
	if (o == NULL || o->out == NULL || o->roots == NULL) {
		if (o != NULL)
			op_free(o);
		return qs_http_fail(body, 500, "failed", "out of memory");
	}
	for (struct qic_root *r = qic_engine_roots(e); r != NULL; r = r->next)
		o->roots[o->nroots++] = r->root_id;
	o->e = e;
	o->req = req;
	qs_http_defer(req, op_cancel, o);
	list_next(o);
	return QS_HTTP_DEFERRED;
}

/* ---- POST /v1/conflicts/choose ---- */

static void choose_reply(void *arg, const ProtobufCMessage *reply, int err, const char *message)
{
	struct op *o = arg;
	if (err != 0) {
		op_fail(o, err, message, "cannot choose");
		return;
	}
	const Quics__ConflictChooseResponse *resp = (const void *)reply;
	if (o->req != NULL)
		qs_http_complete(o->req, 200,
				 json_pack("{s:s,s:s,s:I}", "result", "resolved", "path", o->path,
					   "version", (json_int_t)resp->version));
	op_free(o);
}

/* Finds the root and root-relative path of an absolute local path the user gave. */
static unsigned resolve_path(struct qic_engine *e, json_t *in, json_t **body,
			     struct qic_root **root, char **rel_out)
{
	json_t *p = in != NULL ? json_object_get(in, "path") : NULL;
	const char *abs = json_is_string(p) ? json_string_value(p) : NULL;
	if (abs == NULL || abs[0] != '/')
		return qs_http_fail(body, 400, "bad_request", "an absolute path is needed");
	int rc = qic_engine_resolve(e, abs, root, rel_out);
	if (rc == QS_ENOENT)
		return qs_http_fail(body, 404, "not_found", "%s is not a path inside a synced root",
				    abs);
	if (rc != 0)
		return qs_http_fail(body, 400, "bad_path", "%s: %s", abs, qs_strerror(rc));
	return 0;
}

static bool u64_field(json_t *in, const char *name, uint64_t *out)
{
	json_t *v = in != NULL ? json_object_get(in, name) : NULL;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static unsigned post_choose(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_engine *e = arg;
	json_t *in = qs_http_body(req);
	uint64_t cand, server_version;
	if (!u64_field(in, "candidate", &cand) || !u64_field(in, "server_version", &server_version))
		return qs_http_fail(body, 400, "bad_request",
				    "path, candidate and server_version are needed");
	char *rel = NULL;
	struct qic_root *r = NULL;
	unsigned st = resolve_path(e, in, body, &r, &rel);
	if (st != 0)
		return st;
	uint64_t root_id = r->root_id;
	struct op *o = qs_calloc(1, sizeof(*o));
	if (o == NULL) {
		qs_free(rel);
		return qs_http_fail(body, 500, "failed", "out of memory");
	}
	o->e = e;
	o->req = req;
	o->path = rel;
	o->root_id = root_id;
	qs_http_defer(req, op_cancel, o);
	Quics__ConflictChooseRequest creq = QUICS__CONFLICT_CHOOSE_REQUEST__INIT;
	creq.root_id = root_id;
	creq.path = rel;
	creq.candidate_id = cand;
	creq.server_version = server_version;
	qic_call(e, "CONFLICT_CHOOSE", &creq.base, &quics__conflict_choose_response__descriptor,
		 choose_reply, o);
	return QS_HTTP_DEFERRED;
}

/* ---- POST /v1/conflicts/download ---- */

static const Quics__FileState *download_state(const ProtobufCMessage *reply)
{
	return ((const Quics__ConflictDownloadResponse *)(const void *)reply)->state;
}

static void download_done(void *arg, int err, const char *message, uint64_t size)
{
	struct op *o = arg;
	if (err != 0) {
		op_fail(o, err, message, "cannot download the candidate");
		return;
	}
	if (o->req != NULL)
		qs_http_complete(o->req, 200,
				 json_pack("{s:s,s:s,s:I}", "result", "downloaded", "out",
					   o->cursor, "size", (json_int_t)size));
	op_free(o);
}

/* Body: path (absolute, in a root), candidate (0: the server's version), out (absolute; must
 * not exist). The candidate's bytes are written there, verified. */
static unsigned post_download(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_engine *e = arg;
	json_t *in = qs_http_body(req);
	uint64_t cand;
	json_t *out = in != NULL ? json_object_get(in, "out") : NULL;
	if (!u64_field(in, "candidate", &cand) || !json_is_string(out) ||
	    json_string_value(out)[0] != '/')
		return qs_http_fail(body, 400, "bad_request",
				    "path, candidate and an absolute out are needed");
	char *rel = NULL;
	struct qic_root *r = NULL;
	unsigned st = resolve_path(e, in, body, &r, &rel);
	if (st != 0)
		return st;
	struct op *o = qs_calloc(1, sizeof(*o));
	char *out_path = qs_strdup(json_string_value(out));
	if (o == NULL || out_path == NULL) {
		qs_free(o);
		qs_free(out_path);
		qs_free(rel);
		return qs_http_fail(body, 500, "failed", "out of memory");
	}
	o->e = e;
	o->req = req;
	o->path = rel;
	o->cursor = out_path; /* the output path, for the answer */
	qs_http_defer(req, op_cancel, o);
	Quics__ConflictDownloadRequest dreq = QUICS__CONFLICT_DOWNLOAD_REQUEST__INIT;
	dreq.root_id = r->root_id;
	dreq.path = rel;
	dreq.candidate_id = cand;
	/* The local copy is not a chunk source: it may be this client's candidate. */
	struct qic_fetch_target t = {NULL, NULL, out_path};
	qic_fetch_file(e, "CONFLICT_DOWNLOAD", &dreq.base,
		       &quics__conflict_download_response__descriptor, download_state, &t,
		       download_done, o);
	return QS_HTTP_DEFERRED;
}

int qic_conflict_routes(struct qic_engine *e, struct qs_http_route *out, size_t cap, size_t *n)
{
	const struct qs_http_route routes[] = {
		{"GET", "/v1/conflicts", NULL, get_conflicts, e},
		{"POST", "/v1/conflicts/choose", NULL, post_choose, e},
		{"POST", "/v1/conflicts/download", NULL, post_download, e},
	};
	size_t count = sizeof(routes) / sizeof(routes[0]);
	if (cap - *n < count)
		return QS_E2BIG;
	memcpy(out + *n, routes, sizeof(routes));
	*n += count;
	return 0;
}

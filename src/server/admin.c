/* The qis admin REST API: routes, handlers and the endpoint file (docs/server.md). Owns the
 * HTTP server, the token (wiped at free) and the password jobs on the thread pool. Reads
 * answer from the metadata store directly; the only writes are SET_SERVER_PASSWORD commands
 * through qs_meta_apply. Lists come in pages: at most `limit` items and a `next_after`
 * cursor (null on the last page). */
#include "server/admin.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "base/path.h"
#include "cli/dirs.h"
#include "cli/endpoint.h"
#include "core/sha256.h"
#include "net/http.h"
#include "server/daemon.h"
#include "store/password.h"

#define ADMIN_TOKEN_BYTES 32
#define ADMIN_PAGE_DEFAULT 1000
#define ADMIN_PAGE_MAX 10000
#define ADMIN_GENERATED_PASSWORD_BYTES 16
#define ADMIN_ROUTES 12

static const struct qs_password_params fast_params = {1, 64, 1};

struct qis_admin {
	struct qis_daemon *d;
	struct qs_http_server *http;
	struct qs_http_route routes[ADMIN_ROUTES];
	struct qs_endpoint ep;
	char *ep_path;
	bool published;   /* the endpoint file holds our token */
	bool shutting;    /* qis_admin_shutdown was called */
	bool http_closed; /* the HTTP server's shutdown finished */
	unsigned jobs;    /* password jobs on the thread pool */
	void (*done)(void *arg);
	void *done_arg;
};

/* ---- helpers ---------------------------------------------------------------------------- */

static unsigned meta_fail(json_t **body, int rc)
{
	return qs_http_fail(body, 500, "internal", "cannot read the metadata: %s", qs_strerror(rc));
}

static unsigned oom(json_t **body)
{
	return qs_http_fail(body, 500, "internal", "out of memory");
}

static const char *kind_name(enum qs_kind kind)
{
	switch (kind) {
	case QS_KIND_FILE: return "file";
	case QS_KIND_DIR: return "dir";
	case QS_KIND_SYMLINK: return "symlink";
	case QS_KIND_TOMBSTONE: break;
	}
	return "deleted";
}

/* Connections of client_id open now (a client may have several). */
static unsigned sessions_of(const struct qis_daemon *d, uint64_t client_id)
{
	unsigned n = 0;
	for (const struct qis_session *s = d->sessions; s != NULL; s = s->next)
		n += s->client_id == client_id;
	return n;
}

/* The page size from "limit": 1..ADMIN_PAGE_MAX, ADMIN_PAGE_DEFAULT when absent. */
static unsigned page_limit(const struct qs_http_request *req, size_t *out, json_t **body)
{
	uint64_t n = ADMIN_PAGE_DEFAULT;
	int rc = qs_http_query_u64(req, "limit", ADMIN_PAGE_MAX, &n);
	if ((rc != 0 && rc != QS_ENOENT) || n == 0)
		return qs_http_fail(body, 400, "invalid_query", "limit must be 1 to %d",
				    ADMIN_PAGE_MAX);
	*out = (size_t)n;
	return 0;
}

/* A numeric cursor from "after" (0 when absent). */
static unsigned page_after_u64(const struct qs_http_request *req, uint64_t *out, json_t **body)
{
	int rc = qs_http_query_u64(req, "after", UINT64_MAX, out);
	if (rc == QS_ENOENT)
		*out = 0;
	else if (rc != 0)
		return qs_http_fail(body, 400, "invalid_query", "after must be a number");
	return 0;
}

/* A page being filled by a store callback: at most limit items; one more tells that a next
 * page exists. */
struct page {
	struct qis_admin *a;
	json_t *items;
	size_t limit, n;
	bool more;
	uint64_t name_id; /* the client whose name is in name (0: none yet) */
	char name[QS_META_NAME_MAX + 1];
};

static int page_init(struct page *p, struct qis_admin *a, size_t limit)
{
	memset(p, 0, sizeof(*p));
	p->a = a;
	p->limit = limit;
	p->items = json_array();
	return p->items != NULL ? 0 : QS_ENOMEM;
}

/* Whether the page has room; when full, notes that there is more. */
static bool page_room(struct page *p)
{
	if (p->n < p->limit)
		return true;
	p->more = true;
	return false;
}

static int page_add(struct page *p, json_t *item)
{
	if (item == NULL || json_array_append_new(p->items, item) != 0)
		return QS_ENOMEM;
	p->n++;
	return 0;
}

/* Moves the items into obj under key with "next_after" (the last item's cursor member, or
 * null) and makes obj the answer. Consumes obj and the page. */
static unsigned page_answer(struct page *p, json_t *obj, const char *key, const char *cursor,
			    json_t **body)
{
	json_t *next = json_null();
	if (p->more && p->n > 0)
		next = json_incref(json_object_get(json_array_get(p->items, p->n - 1), cursor));
	int rc = obj != NULL && next != NULL ? json_object_set_new(obj, key, p->items) : -1;
	if (rc != 0) {
		if (obj == NULL || next == NULL)
			json_decref(p->items); /* set_new consumed it otherwise */
		json_decref(obj);
		json_decref(next);
		return oom(body);
	}
	p->items = NULL;
	if (json_object_set_new(obj, "next_after", next) != 0) {
		json_decref(obj);
		return oom(body);
	}
	*body = obj;
	return 200;
}

/* The display name of a client for a page of versions (the last one looked up is kept:
 * consecutive rows are mostly by the same client). "" when it is gone. */
static const char *page_client_name(struct page *p, uint64_t id)
{
	if (p->name_id != id) {
		struct qs_meta_client_info c;
		p->name[0] = '\0';
		if (qs_meta_client(p->a->d->meta, id, &c) == 0)
			memcpy(p->name, c.name, sizeof(p->name));
		p->name_id = id;
	}
	return p->name;
}

/* ---- clients ---------------------------------------------------------------------------- */

static json_t *client_json(const struct qis_daemon *d, const struct qs_meta_client_info *c)
{
	unsigned n = sessions_of(d, c->id);
	return json_pack("{s:I, s:s, s:I, s:b, s:I}", "id", (json_int_t)c->id, "name", c->name,
			 "created_unix_ms", (json_int_t)c->created_unix_ms, "connected", n > 0,
			 "sessions", (json_int_t)n);
}

static int client_add(void *arg, const struct qs_meta_client_info *c)
{
	struct page *p = arg;
	if (!page_room(p))
		return 1;
	return page_add(p, client_json(p->a->d, c));
}

static int id_compare(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* The clients connected now, in id order, one page. */
static int clients_connected(struct page *p, uint64_t after)
{
	size_t n = 0, cap = 0;
	for (const struct qis_session *s = p->a->d->sessions; s != NULL; s = s->next)
		cap++;
	uint64_t *ids = qs_calloc(cap + 1, sizeof(*ids));
	if (ids == NULL)
		return QS_ENOMEM;
	for (const struct qis_session *s = p->a->d->sessions; s != NULL; s = s->next)
		if (s->client_id > after)
			ids[n++] = s->client_id;
	qsort(ids, n, sizeof(*ids), id_compare);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct qs_meta_client_info c;
		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		rc = qs_meta_client(p->a->d->meta, ids[i], &c);
		if (rc == QS_ENOENT)
			rc = 0;
		else if (rc == 0)
			rc = client_add(p, &c);
	}
	qs_free(ids);
	return rc;
}

static unsigned h_clients(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	size_t limit;
	uint64_t after;
	bool connected;
	unsigned st = page_limit(req, &limit, body);
	if (st == 0)
		st = page_after_u64(req, &after, body);
	if (st == 0 && qs_http_query_bool(req, "connected", &connected) != 0)
		st = qs_http_fail(body, 400, "invalid_query", "connected must be true or false");
	if (st != 0)
		return st;
	struct page p;
	if (page_init(&p, a, limit) != 0)
		return oom(body);
	int rc = connected ? clients_connected(&p, after)
			   : qs_meta_clients(a->d->meta, after, limit + 1, client_add, &p);
	if (rc != 0 && rc != 1) {
		json_decref(p.items);
		return meta_fail(body, rc);
	}
	return page_answer(&p, json_object(), "clients", "id", body);
}

/* Parses the "{id}" parameter as a store id. */
static unsigned id_param(struct qs_http_request *req, const char *what, uint64_t *id, json_t **body)
{
	const char *text = qs_http_param(req, "id");
	if (text == NULL || qs_parse_u64(text, (uint64_t)INT64_MAX, id) != 0 || *id == 0)
		return qs_http_fail(body, 400, "invalid_id", "%s ids are numbers from 1: '%.64s'",
				    what, text != NULL ? text : "");
	return 0;
}

static int client_root_add(void *arg, uint64_t root_id, const char *name, bool joined)
{
	(void)joined;
	return json_array_append_new(
		       arg, json_pack("{s:I, s:s}", "id", (json_int_t)root_id, "name", name)) == 0
		       ? 0
		       : QS_ENOMEM;
}

static unsigned h_client(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	uint64_t id;
	unsigned st = id_param(req, "client", &id, body);
	if (st != 0)
		return st;
	struct qs_meta_client_info c;
	int rc = qs_meta_client(a->d->meta, id, &c);
	if (rc == QS_ENOENT)
		return qs_http_fail(body, 404, "client_not_found", "no client %llu",
				    (unsigned long long)id);
	if (rc != 0)
		return meta_fail(body, rc);
	json_t *obj = client_json(a->d, &c), *roots = json_array();
	rc = obj != NULL && roots != NULL ? 0 : QS_ENOMEM;
	if (rc == 0)
		rc = qs_meta_client_roots(a->d->meta, id, client_root_add, roots);
	if (rc == 0 && json_object_set(obj, "roots", roots) != 0)
		rc = QS_ENOMEM;
	json_decref(roots);
	if (rc != 0) {
		json_decref(obj);
		return rc == QS_ENOMEM ? oom(body) : meta_fail(body, rc);
	}
	*body = obj;
	return 200;
}

/* ---- roots ------------------------------------------------------------------------------ */

struct members_acc {
	struct qis_admin *a;
	json_t *list;
	bool detailed; /* objects with name and connection, not bare ids */
};

static int member_add(void *arg, uint64_t id)
{
	struct members_acc *m = arg;
	if (!m->detailed)
		return json_array_append_new(m->list, json_integer((json_int_t)id)) == 0
			       ? 0
			       : QS_ENOMEM;
	struct qs_meta_client_info c;
	int rc = qs_meta_client(m->a->d->meta, id, &c);
	if (rc != 0)
		return rc;
	return json_array_append_new(m->list, client_json(m->a->d, &c)) == 0 ? 0 : QS_ENOMEM;
}

/* {"id", "name", "members": [...]} for a root. */
static int root_json(struct qis_admin *a, uint64_t id, const char *name, bool detailed,
		     json_t **out)
{
	struct members_acc m = {a, json_array(), detailed};
	json_t *obj = json_pack("{s:I, s:s}", "id", (json_int_t)id, "name", name);
	int rc = obj != NULL && m.list != NULL ? 0 : QS_ENOMEM;
	if (rc == 0)
		rc = qs_meta_members(a->d->meta, id, member_add, &m);
	if (rc == 0 && json_object_set(obj, "members", m.list) != 0)
		rc = QS_ENOMEM;
	json_decref(m.list);
	if (rc != 0) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

static int root_add(void *arg, uint64_t root_id, const char *name, bool joined)
{
	(void)joined;
	struct page *p = arg;
	if (!page_room(p))
		return 1;
	json_t *obj;
	int rc = root_json(p->a, root_id, name, false, &obj);
	return rc == 0 ? page_add(p, obj) : rc;
}

static unsigned h_roots(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	size_t limit;
	unsigned st = page_limit(req, &limit, body);
	if (st != 0)
		return st;
	const char *name = qs_http_query(req, "name");
	struct page p;
	if (page_init(&p, a, limit) != 0)
		return oom(body);
	int rc;
	if (name != NULL) {
		uint64_t id;
		rc = qs_meta_root_by_name(a->d->meta, name, &id, NULL, 0);
		if (rc == 0)
			rc = root_add(&p, id, name, false);
		else if (rc == QS_ENOENT)
			rc = 0;
	} else {
		rc = qs_meta_roots(a->d->meta, 0, qs_http_query(req, "after"), limit + 1, root_add,
				   &p);
	}
	if (rc != 0 && rc != 1) {
		json_decref(p.items);
		return meta_fail(body, rc);
	}
	return page_answer(&p, json_object(), "roots", "name", body);
}

/* The root named by the "{id}" parameter. */
static unsigned root_param(struct qis_admin *a, struct qs_http_request *req,
			   struct qs_meta_root_info *r, json_t **body)
{
	uint64_t id;
	unsigned st = id_param(req, "root", &id, body);
	if (st != 0)
		return st;
	int rc = qs_meta_root(a->d->meta, id, r);
	if (rc == QS_ENOENT)
		return qs_http_fail(body, 404, "root_not_found", "no root %llu",
				    (unsigned long long)id);
	return rc != 0 ? meta_fail(body, rc) : 0;
}

static unsigned h_root(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	struct qs_meta_root_info r;
	unsigned st = root_param(a, req, &r, body);
	if (st != 0)
		return st;
	json_t *obj;
	int rc = root_json(a, r.id, r.name, true, &obj);
	if (rc != 0)
		return rc == QS_ENOMEM ? oom(body) : meta_fail(body, rc);
	if (json_object_set_new(obj, "created_by", json_integer((json_int_t)r.created_by)) != 0 ||
	    json_object_set_new(obj, "created_unix_ms", json_integer(r.created_unix_ms)) != 0) {
		json_decref(obj);
		return oom(body);
	}
	*body = obj;
	return 200;
}

/* ---- files and history ------------------------------------------------------------------ */

static json_t *version_json(struct page *p, const struct qs_meta_version_info *v)
{
	json_t *o = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:s, s:I}", "path", v->path,
			      "version", (json_int_t)v->version, "kind", kind_name(v->content.kind),
			      "size", (json_int_t)v->size, "mode", (json_int_t)v->mode, "mtime_ns",
			      (json_int_t)v->mtime_ns, "modified_by", (json_int_t)v->modified_by,
			      "modified_by_name", page_client_name(p, v->modified_by),
			      "accepted_unix_ms", (json_int_t)v->accepted_unix_ms);
	if (o == NULL)
		return NULL;
	/* History rows say what made them; current entries (op unknown) do not. */
	if (v->op != QS_OP_UNKNOWN &&
	    json_object_set_new(o, "operation", json_string(qs_meta_op_name(v->op))) != 0) {
		json_decref(o);
		return NULL;
	}
	json_t *hash = json_null();
	if (v->content.kind == QS_KIND_FILE || v->content.kind == QS_KIND_SYMLINK) {
		char hex[2 * QS_CONTENT_HASH_LEN + 1];
		qs_hex_encode(v->content.hash, QS_CONTENT_HASH_LEN, hex);
		hash = json_string(hex);
	}
	if (json_object_set_new(o, "content_hash", hash) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int version_add(void *arg, const struct qs_meta_version_info *v)
{
	struct page *p = arg;
	if (!page_room(p))
		return 1;
	return page_add(p, version_json(p, v));
}

/* A root-relative path from query parameter name: required, or "" allowed when optional. */
static unsigned path_query(struct qs_http_request *req, const char *name, bool required,
			   const char **out, json_t **body)
{
	const char *v = qs_http_query(req, name);
	if (v == NULL && required)
		return qs_http_fail(body, 400, "invalid_query", "the %s parameter is required",
				    name);
	if (v == NULL || (!required && v[0] == '\0')) {
		*out = "";
		return 0;
	}
	int rc = qs_path_check(v, strlen(v));
	if (rc != 0)
		return qs_http_fail(body, 400, "invalid_path", "invalid %s '%.200s': %s", name, v,
				    qs_strerror(rc));
	*out = v;
	return 0;
}

static json_t *root_ref(const struct qs_meta_root_info *r)
{
	return json_pack("{s:I, s:s}", "root", (json_int_t)r->id, "root_name", r->name);
}

static unsigned h_files(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	struct qs_meta_root_info r;
	const char *dir;
	size_t limit;
	bool deleted;
	unsigned st = root_param(a, req, &r, body);
	if (st == 0)
		st = path_query(req, "dir", false, &dir, body);
	if (st == 0)
		st = page_limit(req, &limit, body);
	if (st == 0 && qs_http_query_bool(req, "deleted", &deleted) != 0)
		st = qs_http_fail(body, 400, "invalid_query", "deleted must be true or false");
	if (st != 0)
		return st;
	struct page p;
	if (page_init(&p, a, limit) != 0)
		return oom(body);
	int rc = qs_meta_entries_below(a->d->meta, r.id, dir, qs_http_query(req, "after"), deleted,
				       limit + 1, version_add, &p);
	if (rc != 0 && rc != 1) {
		json_decref(p.items);
		return meta_fail(body, rc);
	}
	json_t *obj = root_ref(&r);
	if (obj != NULL && json_object_set_new(obj, "dir", json_string(dir)) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	return page_answer(&p, obj, "files", "path", body);
}

static unsigned h_file(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	struct qs_meta_root_info r;
	const char *path;
	unsigned st = root_param(a, req, &r, body);
	if (st == 0)
		st = path_query(req, "path", true, &path, body);
	if (st != 0)
		return st;
	struct qs_meta_version_info v;
	int rc = qs_meta_entry_info(a->d->meta, r.id, path, &v);
	if (rc == QS_ENOENT)
		return qs_http_fail(body, 404, "file_not_found", "no file %.200s in root %.100s",
				    path, r.name);
	if (rc != 0)
		return meta_fail(body, rc);
	struct page p;
	memset(&p, 0, sizeof(p));
	p.a = a;
	json_t *obj = root_ref(&r), *file = version_json(&p, &v);
	if (obj == NULL || file == NULL || json_object_update(obj, file) != 0) {
		json_decref(obj);
		json_decref(file);
		return oom(body);
	}
	json_decref(file);
	*body = obj;
	return 200;
}

static unsigned h_history(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	struct qs_meta_root_info r;
	const char *path;
	size_t limit;
	uint64_t after;
	unsigned st = root_param(a, req, &r, body);
	if (st == 0)
		st = path_query(req, "path", true, &path, body);
	if (st == 0)
		st = page_limit(req, &limit, body);
	if (st == 0)
		st = page_after_u64(req, &after, body);
	if (st != 0)
		return st;
	struct page p;
	if (page_init(&p, a, limit) != 0)
		return oom(body);
	int rc = qs_meta_history(a->d->meta, r.id, path, after, limit + 1, version_add, &p);
	if (rc != 0 && rc != 1) {
		json_decref(p.items);
		return meta_fail(body, rc);
	}
	if (p.n == 0 && after == 0) {
		json_decref(p.items);
		return qs_http_fail(body, 404, "file_not_found", "no file %.200s in root %.100s",
				    path, r.name);
	}
	json_t *obj = root_ref(&r);
	if (obj != NULL && json_object_set_new(obj, "path", json_string(path)) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	return page_answer(&p, obj, "versions", "version", body);
}

/* ---- conflicts -------------------------------------------------------------------------- */

static int candidate_add(void *arg, const struct qs_meta_candidate *c)
{
	struct page *p = arg;
	if (!page_room(p))
		return 1;
	struct qs_meta_root_info r;
	const char *root = qs_meta_root(p->a->d->meta, c->root_id, &r) == 0 ? r.name : "";
	char hex[2 * QS_CONTENT_HASH_LEN + 1] = "";
	if (c->content.kind == QS_KIND_FILE || c->content.kind == QS_KIND_SYMLINK)
		qs_hex_encode(c->content.hash, QS_CONTENT_HASH_LEN, hex);
	struct qs_version_entry cur;
	uint64_t server_version =
		qs_meta_entry(p->a->d->meta, c->root_id, c->path, &cur, NULL, NULL) == 0
			? cur.version
			: 0;
	return page_add(p,
			json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:s, s:I, s:s, s:I, s:s,"
				  " s:I}",
				  "id", (json_int_t)c->id, "root_id", (json_int_t)c->root_id,
				  "root", root, "path", c->path, "server_version",
				  (json_int_t)server_version, "client_id", (json_int_t)c->client_id,
				  "client_name", c->client_name, "base_version",
				  (json_int_t)c->base_version, "kind", kind_name(c->content.kind),
				  "size", (json_int_t)c->size, "content_hash", hex,
				  "proposed_unix_ms", (json_int_t)c->proposed_unix_ms));
}

/* Every open conflict's candidates, in id order (oldest first), paged by id. */
static unsigned h_conflicts(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	size_t limit;
	uint64_t after;
	unsigned st = page_limit(req, &limit, body);
	if (st == 0)
		st = page_after_u64(req, &after, body);
	if (st != 0)
		return st;
	struct page p;
	if (page_init(&p, a, limit) != 0)
		return oom(body);
	int rc = qs_meta_candidates(a->d->meta, 0, NULL, after, limit + 1, candidate_add, &p);
	if (rc != 0 && rc != 1) {
		json_decref(p.items);
		return meta_fail(body, rc);
	}
	return page_answer(&p, json_object(), "candidates", "id", body);
}

/* ---- password --------------------------------------------------------------------------- */

/* Hashing off the loop; the request waits (deferred) and is NULL once the server canceled
 * it (shutdown), in which case nothing is applied. */
struct pw_job {
	uv_work_t work;
	struct qis_admin *a;
	struct qs_http_request *req;
	bool reset; /* answer with the generated password */
	const struct qs_password_params *params;
	size_t len;
	char password[QS_PASSWORD_MAX + 1];
	uint8_t salt[QS_META_SALT_LEN];
	char encoded[QS_PASSWORD_HASH_MAX];
	int rc;
};

static void pw_work(uv_work_t *w)
{
	struct pw_job *j = w->data;
	j->rc = qs_password_hash(j->params, j->password, j->len, j->salt, sizeof(j->salt),
				 j->encoded, sizeof(j->encoded));
}

static void pw_cancel(void *arg)
{
	struct pw_job *j = arg;
	j->req = NULL;
}

static int password_apply(struct qis_admin *a, const char *encoded)
{
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_SET_SERVER_PASSWORD;
	cmd.now_unix_ms = qis_now_unix_ms();
	snprintf(cmd.u.set_server_password.password_hash,
		 sizeof(cmd.u.set_server_password.password_hash), "%s", encoded);
	struct qs_meta_result res;
	int rc = qs_meta_apply(a->d->meta, &cmd, &res);
	qs_wipe(&cmd, sizeof(cmd));
	return rc;
}

static void pw_after(uv_work_t *w, int status)
{
	struct pw_job *j = w->data;
	j->a->jobs--;
	if (j->req != NULL) {
		int rc = status != 0 ? QS_ECANCELED : j->rc;
		if (rc == 0)
			rc = password_apply(j->a, j->encoded);
		json_t *body = NULL;
		unsigned st = 200;
		if (rc != 0)
			st = qs_http_fail(&body, 500, "internal", "cannot set the password: %s",
					  qs_strerror(rc));
		else if (j->reset && (body = json_pack("{s:s}", "password", j->password)) == NULL)
			st = oom(&body);
		qs_http_complete(j->req, st, body);
		if (rc == 0)
			qs_info("admin", "event=server_password_%s", j->reset ? "reset" : "set");
	}
	qs_wipe(j, sizeof(*j));
	qs_free(j);
}

/* Queues the hashing of j->password and defers req until it is applied. */
static unsigned pw_start(struct qis_admin *a, struct pw_job *j, struct qs_http_request *req,
			 json_t **body)
{
	j->a = a;
	j->req = req;
	j->params = a->d->cfg.fast_password_hash ? &fast_params : NULL;
	j->work.data = j;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, j->salt, sizeof(j->salt)) != 0 ||
	    uv_queue_work(a->d->loop, &j->work, pw_work, pw_after) != 0) {
		qs_wipe(j, sizeof(*j));
		qs_free(j);
		return qs_http_fail(body, 500, "internal", "cannot start hashing the password");
	}
	a->jobs++;
	qs_http_defer(req, pw_cancel, j);
	return QS_HTTP_DEFERRED;
}

static unsigned h_password_set(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	json_t *in = qs_http_body(req);
	const char *pw = json_string_value(json_object_get(in, "password"));
	if (!json_is_object(in) || json_object_size(in) != 1 || pw == NULL)
		return qs_http_fail(body, 400, "bad_request",
				    "send {\"password\": \"...\"} and nothing else");
	size_t len = json_string_length(json_object_get(in, "password"));
	if (len == 0)
		return qs_http_fail(body, 400, "invalid_password", "the password is empty");
	if (len > QS_PASSWORD_MAX)
		return qs_http_fail(body, 400, "invalid_password",
				    "the password is longer than %d bytes", QS_PASSWORD_MAX);
	struct pw_job *j = qs_calloc(1, sizeof(*j));
	if (j == NULL)
		return oom(body);
	memcpy(j->password, pw, len);
	j->len = len;
	return pw_start(a, j, req, body);
}

static unsigned h_password_reset(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qis_admin *a = arg;
	struct pw_job *j = qs_calloc(1, sizeof(*j));
	if (j == NULL)
		return oom(body);
	uint8_t raw[ADMIN_GENERATED_PASSWORD_BYTES];
	if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) != 0) {
		qs_free(j);
		return qs_http_fail(body, 500, "internal", "no random bytes");
	}
	qs_hex_encode(raw, sizeof(raw), j->password);
	qs_wipe(raw, sizeof(raw));
	j->len = 2 * sizeof(raw);
	j->reset = true;
	return pw_start(a, j, req, body);
}

/* ---- traffic --------------------------------------------------------------------------- */

static json_t *bytes_json(const struct qs_quic_bytes *b)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "stream_sent", (json_int_t)b->stream_sent,
			 "stream_received", (json_int_t)b->stream_received, "udp_sent",
			 (json_int_t)b->udp_sent, "udp_received", (json_int_t)b->udp_received);
}

/* Byte counters of the transport: totals since start, and each open connection's own. */
static unsigned h_traffic(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	struct qis_admin *a = arg;
	struct qs_quic_bytes b;
	qs_quic_server_bytes(a->d->quic, &b);
	json_t *sessions = json_array();
	for (const struct qis_session *s = a->d->sessions; s != NULL && sessions != NULL;
	     s = s->next) {
		struct qs_quic_bytes sb;
		qs_conn_bytes(s->conn, &sb);
		json_t *o = bytes_json(&sb);
		if (o != NULL) {
			json_object_set_new(o, "client_id", json_integer((json_int_t)s->client_id));
			json_object_set_new(o, "peer", json_string(qs_conn_peer(s->conn)));
		}
		json_array_append_new(sessions, o);
	}
	*body = json_pack("{s:o, s:o}", "total", bytes_json(&b), "sessions", sessions);
	return *body != NULL ? 200 : oom(body);
}

/* ---- stop ------------------------------------------------------------------------------- */

/* Answers, then stops: the stop closes the listening socket at once, and the HTTP server's
 * drain lets this answer go out before the connection is closed. */
static unsigned h_stop(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	struct qis_admin *a = arg;
	struct qis_daemon *d = a->d;
	*body = json_pack("{s:b}", "stopping", 1);
	if (!d->stopping) {
		qs_info("admin", "event=stop_requested");
		if (d->cfg.on_stop_request != NULL)
			d->cfg.on_stop_request(d->cfg.stop_arg);
		else
			qis_daemon_stop(d, NULL, NULL);
	}
	return 200;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static const struct qs_http_route route_table[ADMIN_ROUTES] = {
	{"GET", "/v1/clients", "after,limit,connected", h_clients, NULL},
	{"GET", "/v1/clients/{id}", NULL, h_client, NULL},
	{"GET", "/v1/roots", "after,limit,name", h_roots, NULL},
	{"GET", "/v1/roots/{id}", NULL, h_root, NULL},
	{"GET", "/v1/roots/{id}/files", "dir,after,limit,deleted", h_files, NULL},
	{"GET", "/v1/roots/{id}/file", "path", h_file, NULL},
	{"GET", "/v1/roots/{id}/history", "path,after,limit", h_history, NULL},
	{"GET", "/v1/conflicts", "after,limit", h_conflicts, NULL},
	{"PUT", "/v1/password", NULL, h_password_set, NULL},
	{"POST", "/v1/password/reset", NULL, h_password_reset, NULL},
	{"POST", "/v1/stop", NULL, h_stop, NULL},
	{"GET", "/v1/traffic", NULL, h_traffic, NULL},
};

/* Starts the HTTP server and publishes the endpoint file. */
static int admin_serve(struct qis_admin *a)
{
	uint8_t token[ADMIN_TOKEN_BYTES];
	int rc = gnutls_rnd(GNUTLS_RND_KEY, token, sizeof(token)) == 0 ? 0 : QS_ENOMEM;
	if (rc == 0) /* the port is known once the server listens */
		rc = qs_endpoint_init(&a->ep, 1, token, sizeof(token));
	qs_wipe(token, sizeof(token));
	if (rc == 0)
		rc = qs_dir_create(a->d->cfg.config_dir);
	if (rc == 0) {
		a->ep_path = qs_endpoint_path(a->d->cfg.config_dir, "qis");
		rc = a->ep_path != NULL ? 0 : QS_ENOMEM;
	}
	if (rc == 0) {
		struct qs_http_config hc;
		qs_http_config_default(&hc);
		hc.port = a->d->cfg.http_port;
		hc.token = a->ep.token;
		hc.routes = a->routes;
		hc.nroutes = ADMIN_ROUTES;
		rc = qs_http_server_new(a->d->loop, &hc, &a->http);
	}
	if (rc != 0)
		return rc;
	a->ep.port = qs_http_server_port(a->http);
	rc = qs_endpoint_write(&a->ep, a->ep_path);
	if (rc != 0)
		return rc;
	a->published = true;
	qs_info("admin", "event=listening port=%u endpoint=\"%s\"", (unsigned)a->ep.port,
		a->ep_path);
	return 0;
}

int qis_admin_start(struct qis_daemon *d, struct qis_admin **out)
{
	struct qis_admin *a = qs_calloc(1, sizeof(*a));
	if (a == NULL)
		return QS_ENOMEM;
	a->d = d;
	for (size_t i = 0; i < ADMIN_ROUTES; i++) {
		a->routes[i] = route_table[i];
		a->routes[i].arg = a;
	}
	int rc = admin_serve(a);
	if (rc != 0) {
		qs_error("admin", "event=start_failed port=%u err=\"%s\"",
			 (unsigned)d->cfg.http_port, qs_strerror(rc));
		qis_admin_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

uint16_t qis_admin_port(const struct qis_admin *a)
{
	return a->ep.port;
}

static void http_done(void *arg)
{
	struct qis_admin *a = arg;
	a->http_closed = true;
	if (a->done != NULL)
		a->done(a->done_arg);
}

void qis_admin_shutdown(struct qis_admin *a, void (*done)(void *arg), void *arg)
{
	a->shutting = true;
	a->done = done;
	a->done_arg = arg;
	if (a->http == NULL) {
		http_done(a);
		return;
	}
	qs_http_server_shutdown(a->http, http_done, a);
}

void qis_admin_free(struct qis_admin *a)
{
	if (a == NULL)
		return;
	/* Only a daemon that failed to start gets here with the server open: nothing else runs
	 * on the loop yet, so turning it until the handles are closed ends at once. */
	if (a->http != NULL && !a->shutting)
		qis_admin_shutdown(a, NULL, NULL);
	while (a->http != NULL && !a->http_closed)
		uv_run(a->d->loop, UV_RUN_NOWAIT);
	while (a->jobs > 0)
		uv_run(a->d->loop, UV_RUN_ONCE);
	qs_http_server_free(a->http);
	if (a->published) {
		int rc = qs_endpoint_remove(a->ep_path, &a->ep);
		if (rc != 0 && rc != QS_ENOENT && rc != QS_ESTATE)
			qs_warn("admin", "event=endpoint_remove_failed err=\"%s\"",
				qs_strerror(rc));
	}
	qs_endpoint_clear(&a->ep);
	qs_free(a->ep_path);
	qs_free(a);
}

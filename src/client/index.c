/* The engine's view of the client index (store/index.h): conversions between the engine's
 * entries and the index's, roots and settings. */
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/path.h"
#include "client/engine.h"
#include "store/index.h"

void **qic_engine_index_slot(struct qic_engine *e);
int qic_root_attach(struct qic_engine *e, uint64_t id, const char *name, const char *dir);

/* Writes are batched: the first write opens a transaction that qic_index_flush commits
 * (the engine calls it every few hundred milliseconds), so a burst of files costs one disk
 * sync, not one per file. Losing an uncommitted batch in a crash is harmless: the files are
 * looked at again, and proposing unchanged content is answered "same" by the server. */
struct ixw {
	struct qs_index *ix;
	bool in_txn;
};

static struct ixw *w_of(struct qic_engine *e)
{
	return *qic_engine_index_slot(e);
}

static struct qs_index *ix_of(struct qic_engine *e)
{
	return w_of(e)->ix;
}

static int ix_write(struct qic_engine *e, struct qs_index **out)
{
	struct ixw *w = w_of(e);
	if (!w->in_txn) {
		int rc = qs_index_begin(w->ix);
		if (rc != 0)
			return rc;
		w->in_txn = true;
	}
	*out = w->ix;
	return 0;
}

int qic_index_flush(struct qic_engine *e)
{
	struct ixw *w = w_of(e);
	if (!w->in_txn)
		return 0;
	w->in_txn = false;
	return qs_index_commit(w->ix);
}

int qic_index_open(struct qic_engine *e, const char *path)
{
	struct ixw *w = qs_calloc(1, sizeof(*w));
	if (w == NULL)
		return QS_ENOMEM;
	int rc = qs_index_open(path, &w->ix);
	if (rc == 0)
		*qic_engine_index_slot(e) = w;
	else
		qs_free(w);
	return rc;
}

void qic_index_close(struct qic_engine *e)
{
	struct ixw *w = w_of(e);
	if (w == NULL)
		return;
	qic_index_flush(e);
	qs_index_close(w->ix);
	qs_free(w);
	*qic_engine_index_slot(e) = NULL;
}

static int from_index(const struct qs_index_entry *ie, struct qic_entry *out)
{
	memset(out, 0, sizeof(*out));
	out->base_version = ie->base_version;
	out->content = ie->base;
	out->fp = ie->fp;
	out->mode = ie->mode;
	out->mtime_ns = ie->mtime_ns;
	out->conflicted = ie->conflicted;
	out->conflict_version = ie->conflict_version;
	out->candidate = ie->candidate;
	out->durable = ie->durable;
	if (ie->manifest_len > 0) {
		out->manifest = qs_malloc(ie->manifest_len);
		if (out->manifest == NULL)
			return QS_ENOMEM;
		memcpy(out->manifest, ie->manifest, ie->manifest_len);
		out->manifest_len = ie->manifest_len;
	}
	return 0;
}

int qic_index_get(struct qic_root *r, const char *path, struct qic_entry *out)
{
	struct qs_path p;
	int rc = qs_path_init(&p, path, strlen(path));
	if (rc != 0)
		return rc;
	struct qs_index_entry ie;
	rc = qs_index_get(ix_of(r->e), r->root_id, &p, &ie);
	qs_path_release(&p);
	if (rc != 0)
		return rc;
	rc = from_index(&ie, out);
	qs_index_entry_release(&ie);
	return rc;
}

int qic_index_put(struct qic_root *r, const char *path, const struct qic_entry *e)
{
	struct qs_path p;
	int rc = qs_path_init(&p, path, strlen(path));
	if (rc != 0)
		return rc;
	struct qs_index_entry ie;
	memset(&ie, 0, sizeof(ie));
	ie.base_version = e->base_version;
	ie.base = e->content;
	ie.mode = e->mode;
	ie.mtime_ns = e->mtime_ns;
	ie.manifest = e->manifest;
	ie.manifest_len = e->manifest_len;
	ie.fp = e->fp;
	ie.durable = e->durable;
	ie.conflicted = e->conflicted;
	ie.conflict_version = e->conflict_version;
	ie.candidate = e->candidate;
	struct qs_index *ix;
	rc = ix_write(r->e, &ix);
	if (rc == 0)
		rc = qs_index_put(ix, r->root_id, &p, &ie);
	qs_path_release(&p);
	if (e->content.kind == QS_KIND_TOMBSTONE)
		/* A deleted directory: part files below it are litter too, and would keep it
		 * from being removed (chaos seed 1524: a client killed mid-download, the
		 * directory moved away while it was down). */
		qic_parts_drop_below(r, path, path);
	else
		qic_parts_drop(r, path);
	return rc;
}

int qic_index_delete(struct qic_root *r, const char *path)
{
	struct qs_path p;
	int rc = qs_path_init(&p, path, strlen(path));
	if (rc != 0)
		return rc;
	struct qs_index *ix;
	rc = ix_write(r->e, &ix);
	if (rc == 0)
		rc = qs_index_delete(ix, r->root_id, &p);
	qs_path_release(&p);
	qic_parts_drop(r, path);
	return rc;
}

struct each_ctx {
	qic_index_fn fn;
	void *arg;
};

static int each_one(void *arg, const struct qs_path *path, const struct qs_index_entry *ie)
{
	struct each_ctx *c = arg;
	struct qic_entry e;
	int rc = from_index(ie, &e);
	if (rc == 0)
		rc = c->fn(c->arg, path->str, &e);
	qic_entry_release(&e);
	return rc;
}

int qic_index_each(struct qic_root *r, qic_index_fn fn, void *arg)
{
	struct each_ctx c = {fn, arg};
	return qs_index_each(ix_of(r->e), r->root_id, NULL, each_one, &c);
}

int qic_index_each_below(struct qic_root *r, const char *dir, qic_index_fn fn, void *arg)
{
	struct qs_path p;
	int rc = qs_path_init(&p, dir, strlen(dir));
	if (rc != 0)
		return rc;
	struct each_ctx c = {fn, arg};
	rc = qs_index_each(ix_of(r->e), r->root_id, &p, each_one, &c);
	qs_path_release(&p);
	return rc;
}

struct paths {
	char **v;
	size_t n, cap;
};

static int paths_add(void *arg, const char *path, const struct qic_entry *e)
{
	(void)e;
	struct paths *ps = arg;
	int rc = qs_array_reserve((void **)&ps->v, &ps->cap, ps->n + 1, sizeof(*ps->v));
	if (rc == 0 && (ps->v[ps->n] = qs_strdup(path)) == NULL)
		rc = QS_ENOMEM;
	if (rc == 0)
		ps->n++;
	return rc;
}

struct pending_ctx {
	qic_pending_fn fn;
	void *arg;
};

static int pending_one(void *arg, uint64_t root_id, const struct qs_path *path,
		       const struct qs_index_entry *ie)
{
	struct pending_ctx *c = arg;
	struct qic_entry e;
	int rc = from_index(ie, &e);
	if (rc == 0)
		rc = c->fn(c->arg, root_id, path->str, &e);
	qic_entry_release(&e);
	return rc;
}

int qic_index_each_pending(struct qic_engine *e, qic_pending_fn fn, void *arg)
{
	struct pending_ctx c = {fn, arg};
	return qs_index_not_durable(ix_of(e), pending_one, &c);
}

int qic_index_move(struct qic_root *r, const char *from, const char *to)
{
	struct qs_path pf, pt;
	struct paths old = {0};
	int rc = qs_path_init(&pf, from, strlen(from));
	if (rc != 0)
		return rc;
	rc = qs_path_init(&pt, to, strlen(to));
	if (rc != 0) {
		qs_path_release(&pf);
		return rc;
	}
	struct qs_index *ix;
	rc = ix_write(r->e, &ix);
	if (rc == 0)
		rc = qic_index_each_below(r, to, paths_add, &old);
	for (size_t i = 0; rc == 0 && i < old.n; i++)
		rc = qic_index_delete(r, old.v[i]);
	if (rc == 0)
		rc = qs_index_rename(ix, r->root_id, &pf, &pt);
	qic_parts_drop_below(r, from, to);
	for (size_t i = 0; i < old.n; i++)
		qs_free(old.v[i]);
	qs_free(old.v);
	qs_path_release(&pf);
	qs_path_release(&pt);
	return rc;
}

int qic_setting_get(struct qic_engine *e, const char *key, char *out, size_t cap)
{
	struct qs_buf b;
	qs_buf_init(&b, cap > 0 ? cap - 1 : 0);
	int rc = qs_index_setting_get(ix_of(e), key, &b);
	if (rc == 0) {
		if (b.len > 0)
			memcpy(out, b.data, b.len);
		out[b.len] = '\0';
	}
	qs_buf_release(&b);
	return rc;
}

int qic_setting_set(struct qic_engine *e, const char *key, const char *value)
{
	int rc = qic_index_flush(e); /* settings (the client's token...) commit on their own */
	return rc != 0 ? rc : qs_index_setting_set(ix_of(e), key, value, strlen(value));
}

static int load_one(void *arg, uint64_t root_id, const char *dir, const char *name)
{
	int rc = qic_root_attach(arg, root_id, name, dir);
	return rc == 0 || rc == QS_ENOENT ? 0 : rc; /* a missing folder stays paused */
}

int qic_roots_load(struct qic_engine *e)
{
	return qs_index_roots(ix_of(e), load_one, e);
}

int qic_root_save(struct qic_engine *e, const struct qic_root *r)
{
	int rc = qic_index_flush(e);
	return rc != 0 ? rc : qs_index_root_put(ix_of(e), r->root_id, r->dir, r->name);
}

int qic_root_forget(struct qic_engine *e, uint64_t root_id)
{
	int rc = qic_index_flush(e);
	return rc != 0 ? rc : qs_index_root_delete(ix_of(e), root_id);
}

int qic_index_sync_batch(struct qic_engine *e, int (*sync_fn)(void *arg), void *arg)
{
	struct qs_index *ix = ix_of(e);
	uint64_t mark = qs_index_durable_mark(ix);
	int rc = 0;
	if (mark != 0) {
		rc = sync_fn(arg);
		struct qs_index *wix;
		if (rc == 0)
			rc = ix_write(e, &wix);
		if (rc == 0)
			rc = qs_index_mark_durable(wix, mark);
	}
	int rc2 = qic_index_flush(e);
	return rc != 0 ? rc : rc2;
}

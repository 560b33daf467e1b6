/* Subtree deletes on the client (docs/client.md, "subtree deletes"): a directory the watcher
 * reports removed is proposed as one PLEASE_SYNC (a tombstone with with_below) listing every
 * live path the index holds below it with its agreed version; the server deletes what is
 * still at those versions and answers with the list, which the index records. Anything not
 * in the answer (refused, changed elsewhere, an old server) is looked at again path by path,
 * as before subtree deletes. Owns the root's list of deletes in flight; runs on the loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/engine.h"
#include "core/filestate.h"
#include "net/txmsg.h"

/* At most this many paths below a directory travel in one subtree delete (the server's
 * QS_META_MOVE_MAX); a larger tree is deleted path by path. */
#define DELETE_MAX 10000

struct qic_deleter {
	struct qic_root *r;
	char *dir;
	uint64_t dir_version;
	bool keep;         /* files deleted from dir, which stays (PleaseSyncRequest.keep) */
	uint32_t dir_mode; /* keep: dir's agreed state, repeated in the request */
	int64_t dir_mtime_ns;
	char **paths; /* the live paths below dir, in byte order */
	uint64_t *versions;
	uint8_t (*hashes)[QS_SHA256_LEN];
	size_t n, cap;
	bool answered;
	struct qic_deleter *next; /* in r->deletes */
};

static void deleter_free(struct qic_deleter *d)
{
	for (size_t i = 0; i < d->n; i++)
		qs_free(d->paths[i]);
	qs_free(d->paths);
	qs_free(d->versions);
	qs_free(d->hashes);
	qs_free(d->dir);
	qs_free(d);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool qic_delete_covers(struct qic_root *r, const char *path)
{
	for (const struct qic_deleter *d = r->deletes; d != NULL; d = d->next)
		if (d->keep ? bsearch(&path, d->paths, d->n, sizeof(*d->paths), cmp_str) != NULL
			    : qs_path_str_within(path, d->dir))
			return true;
	return false;
}

static void unlink_from_root(struct qic_deleter *d)
{
	for (struct qic_deleter **pp = &d->r->deletes; *pp != NULL; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			return;
		}
}

/* Everything the delete covered is a change again: each path is proposed on its own. */
static void fall_back(struct qic_deleter *d)
{
	qic_mark_dirty(d->r, d->dir);
	for (size_t i = 0; i < d->n; i++)
		qic_mark_dirty(d->r, d->paths[i]);
}

static int record_tombstone(struct qic_root *r, const char *path, uint64_t version)
{
	struct qic_entry e;
	memset(&e, 0, sizeof(e));
	e.base_version = version;
	e.content.kind = QS_KIND_TOMBSTONE;
	e.durable = true;
	return qic_index_put(r, path, &e);
}

/* Records the deleted paths (in the server's order: dir first if it went, then the listed
 * paths in byte order) and looks again at every listed path the server kept. */
static int deleter_record(struct qic_deleter *d, Quics__ScanEntry *const *gone, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (!qs_path_str_within(gone[k]->path, d->dir) || gone[k]->version == 0)
			return QS_EPROTO;
	size_t k = 0;
	int rc = 0;
	if (n > 0 && strcmp(gone[0]->path, d->dir) == 0)
		rc = record_tombstone(d->r, gone[k++]->path, gone[0]->version);
	else
		qic_mark_dirty(d->r, d->dir); /* kept: something below it lives on */
	for (size_t i = 0; rc == 0 && i < d->n; i++) {
		if (k < n && strcmp(gone[k]->path, d->paths[i]) == 0)
			rc = record_tombstone(d->r, d->paths[i], gone[k++]->version);
		else
			qic_mark_dirty(d->r, d->paths[i]); /* changed elsewhere, or not listed */
	}
	return rc == 0 && k != n ? QS_EPROTO : rc;
}

static void deleter_answer(struct qic_deleter *d, const Quics__PleaseSyncResponse *resp)
{
	if (resp->result_case != QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED ||
	    resp->accepted->n_deleted == 0) {
		/* Refused, or a server that predates subtree deletes (it took the directory's
		 * tombstone only): path by path. */
		qs_info("client", "event=delete_tree_fallback dir=\"%s\" code=%d", d->dir,
			resp->error != NULL ? (int)resp->error->code : -1);
		fall_back(d);
		return;
	}
	int rc = deleter_record(d, resp->accepted->deleted, resp->accepted->n_deleted);
	if (rc != 0) {
		qs_warn("client", "event=delete_tree_record_failed dir=\"%s\" err=%s", d->dir,
			qs_strerror(rc));
		fall_back(d);
		return;
	}
	qs_info("client", "event=delete_tree dir=\"%s\" listed=%zu deleted=%zu", d->dir, d->n,
		resp->accepted->n_deleted);
}

static int deleter_on_msg(struct qs_tx *tx, const uint8_t *data, size_t len, void *arg)
{
	struct qic_deleter *d = arg;
	if (d->answered)
		return QS_EPROTO;
	d->answered = true;
	ProtobufCMessage *msg;
	int rc = qs_wire_unpack(&quics__please_sync_response__descriptor, data, len, NULL, &msg);
	if (rc != 0) {
		fall_back(d);
		return rc;
	}
	deleter_answer(d, (const Quics__PleaseSyncResponse *)msg);
	qs_wire_free(msg);
	(void)tx;
	return 0;
}

static void deleter_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	struct qic_deleter *d = arg;
	unlink_from_root(d);
	if (!d->answered)
		fall_back(d);
	deleter_free(d);
}

static const struct qs_tx_ops deleter_ops = {.on_msg = deleter_on_msg,
					     .on_close = deleter_on_close};

/* Appends path at its agreed version and content to d's list. */
static int deleter_add(struct qic_deleter *d, const char *path, const struct qic_entry *e)
{
	if (d->n >= DELETE_MAX)
		return QS_E2BIG;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		char **np = qs_realloc(d->paths, cap * sizeof(*np));
		if (np != NULL)
			d->paths = np;
		uint64_t *nv = qs_realloc(d->versions, cap * sizeof(*nv));
		if (nv != NULL)
			d->versions = nv;
		uint8_t(*nh)[QS_SHA256_LEN] = qs_realloc(d->hashes, cap * sizeof(*nh));
		if (nh != NULL)
			d->hashes = nh;
		if (np == NULL || nv == NULL || nh == NULL)
			return QS_ENOMEM;
		d->cap = cap;
	}
	if ((d->paths[d->n] = qs_strdup(path)) == NULL)
		return QS_ENOMEM;
	d->versions[d->n] = e->base_version;
	memcpy(d->hashes[d->n], e->content.hash, QS_SHA256_LEN);
	d->n++;
	return 0;
}

/* Adds each live path below the directory; a path the server has not agreed (new, or a
 * conflict) stops the walk with QS_ECONFLICT: such a tree is deleted path by path. */
static int collect(void *arg, const char *path, const struct qic_entry *e)
{
	struct qic_deleter *d = arg;
	if (strcmp(path, d->dir) == 0)
		return 0;
	/* A conflict first: its agreed content may be "deleted" while the file there is our
	 * candidate (chaos seed 1545: the candidate's deletion was dropped with the tree's). */
	if (e->conflicted)
		return QS_ECONFLICT;
	if (e->content.kind == QS_KIND_TOMBSTONE)
		return 0;
	if (e->base_version == 0)
		return QS_ECONFLICT;
	return deleter_add(d, path, e);
}

static int send_delete(struct qic_deleter *d, struct qs_conn *conn)
{
	Quics__ScanEntry *es = qs_calloc(d->n + 1, sizeof(*es));
	Quics__ScanEntry **ps = qs_calloc(d->n + 1, sizeof(*ps));
	int rc = es == NULL || ps == NULL ? QS_ENOMEM : 0;
	for (size_t i = 0; rc == 0 && i < d->n; i++) {
		Quics__ScanEntry init = QUICS__SCAN_ENTRY__INIT;
		es[i] = init;
		es[i].path = d->paths[i];
		es[i].version = d->versions[i];
		es[i].hash.data = d->hashes[i];
		es[i].hash.len = QS_SHA256_LEN;
		ps[i] = &es[i];
	}
	struct qs_filestate_out fs;
	if (rc == 0 && d->keep)
		rc = qs_filestate_out_init(&fs, QS_KIND_DIR, d->dir_mode, d->dir_mtime_ns, NULL,
					   NULL, 0, NULL);
	else if (rc == 0)
		rc = qs_filestate_out_init(&fs, QS_KIND_TOMBSTONE, 0, 0, NULL, NULL, 0, NULL);
	if (rc == 0) {
		Quics__PleaseSyncRequest req = QUICS__PLEASE_SYNC_REQUEST__INIT;
		req.root_id = d->r->root_id;
		req.path = d->dir;
		req.base_version = d->dir_version;
		req.state = &fs.st;
		req.with_below = true;
		req.keep = d->keep;
		req.n_below = d->n;
		req.below = ps;
		struct qs_tx *tx;
		rc = qs_conn_open_tx(conn, "PLEASE_SYNC", &deleter_ops, d, &tx);
		if (rc == 0 && (qs_tx_send_pb(tx, &req.base) != 0 || qs_tx_finish(tx) != 0))
			qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL); /* on_close falls back */
		qs_filestate_out_release(&fs);
	}
	qs_free(es);
	qs_free(ps);
	return rc;
}

/* Whether path is absent on disk (its parent may be gone too). */
static bool absent(struct qic_root *r, const char *path)
{
	struct stat st;
	return fstatat(r->dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT;
}

static bool propose(struct qic_root *r, struct qs_conn *conn, const char *dir)
{
	struct qic_entry de;
	if (qic_index_get(r, dir, &de) != 0)
		return false;
	bool ok = de.content.kind == QS_KIND_DIR && !de.conflicted && de.base_version > 0 &&
		  absent(r, dir);
	uint64_t dir_version = de.base_version;
	qic_entry_release(&de);
	struct qic_deleter *d = ok ? qs_calloc(1, sizeof(*d)) : NULL;
	if (d == NULL)
		return false;
	d->r = r;
	d->dir_version = dir_version;
	d->dir = qs_strdup(dir);
	int rc = d->dir == NULL ? QS_ENOMEM : qic_index_each_below(r, dir, collect, d);
	if (rc == 0)
		rc = send_delete(d, conn);
	if (rc != 0) {
		deleter_free(d);
		return false;
	}
	d->next = r->deletes; /* d belongs to the transaction now */
	r->deletes = d;
	qic_unqueue_below(r, dir); /* their deletions travel with the directory's */
	return true;
}

bool qic_delete_removed(struct qic_root *r, struct qs_conn *conn, const char *path, bool is_dir,
			char **refused)
{
	if (qic_delete_covers(r, path))
		return true; /* travels with a directory's deletion */
	if (conn == NULL || r->paused)
		return false;
	/* rm -rf reports a directory's children before the directory, and a subdirectory
	 * before its parent: delete the highest directory that is gone, in one proposal (a
	 * file's own path is not a directory to delete whole). */
	char *top = qs_strdup(path);
	if (top == NULL)
		return false;
	bool started = false;
	for (char *s = strchr(top, '/');; s = strchr(s + 1, '/')) {
		if (s == NULL && !is_dir)
			break;
		if (s != NULL)
			*s = '\0';
		bool gone = absent(r, top);
		bool tried = gone && *refused != NULL && strcmp(*refused, top) == 0;
		if (gone && !tried)
			started = propose(r, conn, top);
		if (gone && !tried && !started) {
			/* Everything the index holds below it is a change of its own: the watcher
			 * may report none of it (a directory renamed out of the root reports
			 * only the directory: chaos seed 8039). */
			qic_root_scan_below(r, top);
			/* The rest of the batch below it: path by path, not asked again. */
			char *copy = qs_strdup(top);
			if (copy != NULL) {
				qs_free(*refused);
				*refused = copy;
			}
		}
		if (s != NULL)
			*s = '/';
		if (gone || s == NULL)
			break;
	}
	qs_free(top);
	return started;
}

void qic_delete_files(struct qic_root *r, struct qs_conn *conn, const char *dir, char **paths,
		      size_t n)
{
	struct qic_entry de;
	struct qic_deleter *d = NULL;
	struct stat st;
	if (conn != NULL && !r->paused && qic_index_get(r, dir, &de) == 0) {
		if (de.content.kind == QS_KIND_DIR && !de.conflicted && de.base_version > 0 &&
		    fstatat(r->dir_fd, dir, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			d = qs_calloc(1, sizeof(*d));
		if (d != NULL) {
			d->r = r;
			d->keep = true;
			d->dir_version = de.base_version;
			d->dir_mode = de.mode;
			d->dir_mtime_ns = de.mtime_ns;
		}
		qic_entry_release(&de);
	}
	if (d != NULL && (d->dir = qs_strdup(dir)) == NULL) {
		deleter_free(d);
		d = NULL;
	}
	/* In byte order, as the server wants them (and qic_delete_covers looks them up). */
	qsort(paths, n, sizeof(*paths), cmp_str);
	for (size_t i = 0; i < n; i++) {
		struct qic_entry e;
		bool take = false;
		if (d != NULL && qic_index_get(r, paths[i], &e) == 0) {
			take = (e.content.kind == QS_KIND_FILE ||
				e.content.kind == QS_KIND_SYMLINK) &&
			       !e.conflicted && e.base_version > 0 && absent(r, paths[i]) &&
			       (i == 0 || strcmp(paths[i - 1], paths[i]) != 0) &&
			       deleter_add(d, paths[i], &e) == 0;
			qic_entry_release(&e);
		}
		if (!take)
			qic_mark_dirty(r, paths[i]);
	}
	if (d != NULL && d->n > 0 && send_delete(d, conn) == 0) {
		d->next = r->deletes; /* d belongs to the transaction now */
		r->deletes = d;
		return;
	}
	for (size_t i = 0; d != NULL && i < d->n; i++)
		qic_mark_dirty(r, d->paths[i]);
	if (d != NULL)
		deleter_free(d);
}

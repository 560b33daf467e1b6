/* The qic sync engine (see engine.h for the concurrency model). Owns: the index, the QUIC
 * client, the roots with their watchers, and the queue of paths to look at. A path enters
 * the queue from the watcher, a scan, or a MUST_SYNC that met a local change; at most
 * QIC_IN_FLIGHT looks (a hash on the thread pool, then a proposal) run at once, of which at
 * most QIC_HASHING hashes; a path is queued at most once at a time, and in flight at most
 * once. */
#include "client/engine.h"
#include "client/hashjob.h"
#include "client/repair.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "base/num.h"
#include "core/sha256.h"
#include "core/wire.h"
#include "fswatch/guard.h"
#include "fswatch/htab.h"
#include "fswatch/ignore.h"
#include "fswatch/scan.h"
#include "fswatch/watch.h"
#include "net/txmsg.h"

#define QIC_IN_FLIGHT 32
/* Hashes on the thread pool at once (each also counts against QIC_IN_FLIGHT). Hashing is
 * CPU-bound (chunker + SHA-256, about 1 GB/s a core): two keep both cores of a small machine
 * busy and leave two of libuv's four pool threads free; a queue of 10,000 paths still
 * makes only two jobs at a time. */
#define QIC_HASHING 2
/* A regular file up to this size is hashed on the loop: about 0.1 ms, less than the round
 * trip through the pool (10,000 files of 4 KiB took 3x longer through it, bench S2). */
#define QIC_HASH_INLINE_MAX ((uint64_t)64 * 1024)
#define QIC_RETRY_MS 200
/* Removals are held until the watcher is quiet this long (at most QIC_HOLD_MAX_MS after the
 * first), so that a directory removed with everything below it (rm -rf reports the entries
 * first, in several batches, the directory last) is proposed as one subtree delete. */
#define QIC_HOLD_QUIET_MS 25
#define QIC_HOLD_MAX_MS 100
/* Files removed from one directory in one batch that go to the server as one proposal. */
#define QIC_DELETE_BATCH_MIN 8
#define QIC_SCAN_PAGE 1000
#define QIC_RESCAN_MS (5 * 60 * 1000)
#define QIC_DURABLE_MS 300
#define QIC_RETRY_SCAN_MS 3000
#define QIC_RETRY_BACKOFF_MIN_MS 5000
#define QIC_RETRY_BACKOFF_MAX_MS (5 * 60 * 1000)

struct dirty {
	struct qic_root *r;
	char *path;
	struct dirty *next;
	bool again;   /* in flight: changed again since its look started */
	bool waiting; /* in flight: waiting for a hash job (in the engine's wait list) */
	struct qic_hashjob *hash; /* in flight: being hashed on the pool */
	struct dirty *wait_next;
};

/* A removal the watcher reported, held until it is quiet (QIC_HOLD_QUIET_MS). */
struct held_removal {
	struct qic_root *r;
	char *path;
	bool is_dir;
	struct held_removal *next;
};

struct pending_rmdir {
	struct qic_root *r;
	char *path;
	struct pending_rmdir *next;
};

struct root_watch {
	struct qic_root *r;
	struct qs_watch *w;
	struct qs_ignore *ig;
};

struct qic_engine {
	uv_loop_t *loop;
	char *state_dir;
	void *index; /* index.c's handle */
	struct qs_quic_client *quic;
	struct qs_conn *conn;
	bool authed, stopping;
	uint64_t client_id;
	uint8_t token[32];
	char server[300];
	char fpr[65];
	char client_name[256];
	char server_host[300]; /* qic_engine_status's copy of the host part of server */
	int64_t connected_since_ms, last_error_ms; /* Unix ms, for the status */
	char last_error[256];
	struct qic_root *roots;
	struct dirty *q_head, *q_tail;
	struct qs_htab queued; /* "root\0path" of queued paths */
	struct dirty *flying;  /* paths being hashed or proposed (at most QIC_IN_FLIGHT) */
	uint64_t queued_n, in_flight, uploaded, downloaded;
	uint64_t hashing; /* of in_flight, hash jobs on the pool (at most QIC_HASHING) */
	struct dirty *wait_head, **wait_tail; /* of flying, those waiting for a hash job */
	uv_timer_t retry, rescan, durable;
	uv_timer_t hold; /* releases the held removals */
	struct held_removal *held, **held_tail;
	uint64_t held_since_ms;       /* loop time of the oldest held removal */
	uv_timer_t drop;              /* gives up a refused registration's connection (drop_cb) */
	struct pending_rmdir *rmdirs; /* directories deleted remotely, not empty yet */
	/* a pending connect-server or add-root operation */
	qic_done_fn op_done;
	void *op_arg;
	char *op_password;
	char *op_name, *op_dir;
	bool op_create;
};

/* ---- the queue ---------------------------------------------------------------------------- */

static uint64_t key_hash(uint64_t root_id, const char *path)
{
	uint64_t h = 1469598103934665603ULL ^ root_id;
	for (const char *p = path; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return h;
}

struct key {
	uint64_t root_id;
	const char *path;
};

static bool dirty_eq(const void *val, const void *k)
{
	const struct dirty *d = val;
	const struct key *key = k;
	return d->r->root_id == key->root_id && strcmp(d->path, key->path) == 0;
}

static void pump(struct qic_engine *e);

static void retry_cb(uv_timer_t *t)
{
	pump(t->data);
}

void qic_mark_dirty(struct qic_root *r, const char *path)
{
	struct qic_engine *e = r->e;
	if (r->paused)
		return;
	struct key k = {r->root_id, path};
	uint64_t h = key_hash(r->root_id, path);
	if (qs_htab_find(&e->queued, h, dirty_eq, &k) != NULL)
		return;
	struct dirty *d = qs_calloc(1, sizeof(*d));
	if (d == NULL || (d->path = qs_strdup(path)) == NULL) {
		qs_free(d);
		return;
	}
	d->r = r;
	if (qs_htab_insert(&e->queued, h, d) != 0) {
		qs_free(d->path);
		qs_free(d);
		return;
	}
	if (e->q_tail != NULL)
		e->q_tail->next = d;
	else
		e->q_head = d;
	e->q_tail = d;
	e->queued_n++;
	uv_timer_start(&e->retry, retry_cb, 0, 0);
}

/* A path is proposed once at a time: a second proposal started before the first is answered
 * would carry the same base version and conflict with it (rapid edits of one file made a
 * client conflict with itself, and the later answer could record the older content as the
 * agreed one: chaos seed 2). A change seen while the path is in flight sets `again`, and the
 * answer queues the path once more, with the new base. */
static struct dirty **flying_slot(struct qic_engine *e, uint64_t root_id, const char *path)
{
	for (struct dirty **s = &e->flying; *s != NULL; s = &(*s)->next)
		if ((*s)->r->root_id == root_id && strcmp((*s)->path, path) == 0)
			return s;
	return NULL;
}

static struct dirty *flying_take(struct qic_engine *e, uint64_t root_id, const char *path)
{
	struct dirty **s = flying_slot(e, root_id, path);
	struct dirty *d = s != NULL ? *s : NULL;
	if (d != NULL)
		*s = d->next;
	return d;
}

void qic_unqueue_below(struct qic_root *r, const char *dir)
{
	struct qic_engine *e = r->e;
	struct dirty **pp = &e->q_head, *last = NULL;
	while (*pp != NULL) {
		struct dirty *d = *pp;
		if (d->r != r || !qs_path_str_within(d->path, dir)) {
			last = d;
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		struct key k = {r->root_id, d->path};
		qs_htab_remove(&e->queued, key_hash(r->root_id, d->path), dirty_eq, &k);
		e->queued_n--;
		qs_free(d->path);
		qs_free(d);
	}
	e->q_tail = last;
}

static void proposal_done(struct qic_root *r, const char *path, int err, void *arg)
{
	struct qic_engine *e = arg;
	e->in_flight--;
	struct dirty *f = flying_take(e, r->root_id, path);
	bool again = f != NULL && f->again;
	if (f != NULL) {
		qs_free(f->path);
		qs_free(f);
	}
	if (err == 0)
		e->uploaded++;
	else if (err != QS_ECANCELED && err != QS_ECONN)
		qs_debug("client", "event=proposal_ended path=\"%s\" err=%s", path,
			 qs_strerror(err));
	if (err == QS_ECONN || again)
		qic_mark_dirty(r, path); /* try again (when connected) */
	pump(e);
}

/* Whether r is still one of the engine's roots (qic_engine_remove_root unlinks it). */
static bool root_attached(struct qic_engine *e, const struct qic_root *r)
{
	return qic_root_by_id(e, r->root_id) == r;
}

/* A look that proposed nothing (or could not) ends: d leaves the flight, and is queued
 * again if it changed meanwhile, is being written (QS_EAGAIN) or was not connected. Returns
 * whether the engine goes on with r (false: stopping, or r was removed). */
static bool look_end(struct qic_engine *e, struct dirty *d, int rc)
{
	struct dirty **s = &e->flying;
	while (*s != d)
		s = &(*s)->next;
	*s = d->next;
	e->in_flight--;
	struct qic_root *r = d->r;
	bool live = !e->stopping && root_attached(e, r);
	if (rc != 0 && rc != QS_EAGAIN && rc != QS_ECONN && rc != QS_ECANCELED)
		qs_warn("client", "event=look_failed path=\"%s\" err=%s", d->path, qs_strerror(rc));
	if (live && (d->again || rc == QS_EAGAIN || rc == QS_ECONN))
		qic_mark_dirty(r, d->path);
	if (live && rc == QS_EAGAIN)
		uv_timer_start(&e->retry, retry_cb, QIC_RETRY_MS, 0); /* look again shortly */
	qs_free(d->path);
	qs_free(d);
	return live;
}

/* d (in flight) was hashed into f (err: the hash's error): the index decides whether to
 * propose it, on the connection there is now. Off the loop, the engine may have begun to
 * stop, the root been removed, the connection been lost, or the path changed (qic_propose
 * checks its stat again). Returns whether the engine goes on (see look_end). */
static bool look_hashed(struct qic_engine *e, struct dirty *d, int err, struct qs_localfile *f,
			int *rc_out)
{
	struct qic_root *r = d->r;
	int rc = err;
	if (rc == 0 && (e->stopping || !root_attached(e, r)))
		rc = QS_ECANCELED;
	struct qs_conn *conn = e->authed ? e->conn : NULL;
	if (rc == 0 && conn == NULL)
		rc = QS_ECONN;
	bool started = false;
	/* A removal covered by a directory's deletion in flight travels with it. */
	if (rc == 0 && (f->kind != QS_KIND_TOMBSTONE || !qic_delete_covers(r, d->path)))
		rc = qic_propose(r, d->path, f, conn, proposal_done, e, &started);
	*rc_out = rc;
	return started || look_end(e, d, rc); /* started: proposal_done ends d */
}

static void start_hashes(struct qic_engine *e);

/* A hash job ended (on the loop). */
static void hashed(void *arg, int err, struct qs_localfile *f)
{
	struct dirty *d = arg;
	struct qic_engine *e = d->r->e;
	d->hash = NULL;
	e->hashing--;
	/* Hashed off the loop: the path (and the index) may have moved on since. A file we
	 * received meanwhile was renamed over the one hashed, whose old content must not be
	 * proposed on top of the new version: look again. */
	if (err == 0 && !e->stopping && !qic_propose_still_local(d->r, d->path, f))
		err = QS_EAGAIN;
	int rc;
	if (!look_hashed(e, d, err, f, &rc))
		return;
	if (rc == QS_EAGAIN)
		start_hashes(e); /* the queue waits for the retry timer, as in pump */
	else
		pump(e);
}

/* Starts hash jobs for the looks waiting for one, oldest first, up to QIC_HASHING. */
static void start_hashes(struct qic_engine *e)
{
	while (e->authed && e->hashing < QIC_HASHING && e->wait_head != NULL && !e->stopping) {
		struct dirty *d = e->wait_head;
		e->wait_head = d->wait_next;
		if (e->wait_head == NULL)
			e->wait_tail = &e->wait_head;
		d->waiting = false;
		int rc = root_attached(e, d->r) ? qic_hashjob_start(e->loop, d->r->dir_fd, d->path,
								    hashed, d, &d->hash)
						: QS_ECANCELED;
		if (rc == 0)
			e->hashing++;
		else
			look_end(e, d, rc);
	}
}

/* Starts looks at queued paths while connected and under the in-flight limit. A path that
 * is not a regular file larger than QIC_HASH_INLINE_MAX is hashed here, on the loop (a
 * thread-pool round trip costs more than such a hash); a larger one waits for a hash job. */
static void pump(struct qic_engine *e)
{
	while (e->authed && e->conn != NULL && e->in_flight < QIC_IN_FLIGHT && e->q_head != NULL) {
		struct dirty *d = e->q_head;
		e->q_head = d->next;
		if (e->q_head == NULL)
			e->q_tail = NULL;
		struct key k = {d->r->root_id, d->path};
		qs_htab_remove(&e->queued, key_hash(d->r->root_id, d->path), dirty_eq, &k);
		e->queued_n--;
		struct dirty **fly = flying_slot(e, d->r->root_id, d->path);
		if (fly != NULL) {
			(*fly)->again = true;
			qs_free(d->path);
			qs_free(d);
			continue;
		}
		if (qic_propose_unchanged(d->r, d->path)) { /* e.g. a file we just received */
			/* A push we refused for this path, and no change after all: ask for
			 * everything newer, or that version never comes (chaos seed 505). */
			if (qic_push_refused_take(d->r, d->path) &&
			    !qic_propose_conflicted(d->r, d->path))
				qic_root_full_scan(d->r);
			qs_free(d->path);
			qs_free(d);
			continue;
		}
		/* In the list before the proposal starts, as its answer may come at once; d is
		 * the list's (and then proposal_done's) once the proposal started. */
		d->again = false;
		d->next = e->flying;
		e->flying = d;
		e->in_flight++;
		struct qs_localfile f;
		qs_localfile_init(&f);
		int rc = qs_localfile_hash_bounded(d->r->dir_fd, d->path, QIC_HASH_INLINE_MAX, NULL,
						   &f);
		if (rc == QS_E2BIG) {
			d->waiting = true;
			*e->wait_tail = d;
			e->wait_tail = &d->wait_next;
			d->wait_next = NULL;
		} else {
			look_hashed(e, d, rc, &f, &rc);
		}
		qs_localfile_release(&f);
		/* Being written: the retry timer looks again shortly. Or the connection is dying
		 * (not reported yet): the path is queued again for the next one. */
		if (rc == QS_EAGAIN || rc == QS_ECONN)
			break;
	}
	start_hashes(e);
}

/* Stops the hash jobs of r (all roots: NULL); their looks end as canceled. */
static void cancel_hashes(struct qic_engine *e, const struct qic_root *r)
{
	for (struct dirty *d = e->flying; d != NULL; d = d->next)
		if (d->hash != NULL && (r == NULL || d->r == r))
			qic_hashjob_cancel(d->hash);
}

/* ---- roots, watchers, scans ------------------------------------------------------------ */

struct qic_root *qic_root_by_id(struct qic_engine *e, uint64_t root_id)
{
	for (struct qic_root *r = e->roots; r != NULL; r = r->next)
		if (r->root_id == root_id)
			return r;
	return NULL;
}

/* Reads DIR/.quicsignore (gitignore syntax; it syncs like any file, so every client of
 * the root shares it). A file that does not parse keeps the previous rules and is logged. */
static void load_ignore(struct root_watch *w)
{
	struct qic_root *r = w->r;
	char text[QS_IGNORE_MAX_BYTES + 1];
	size_t len = 0;
	int fd;
	if (qs_localfile_open(r->dir_fd, ".quicsignore", O_RDONLY | O_NOFOLLOW, &fd) == 0) {
		ssize_t n;
		while (len < sizeof(text) && (n = read(fd, text + len, sizeof(text) - len)) > 0)
			len += (size_t)n;
		close(fd);
	}
	struct qs_ignore *ig;
	struct qs_ignore_error err = {0};
	int rc = qs_ignore_parse(text, len, &ig, &err);
	if (rc != 0) {
		qs_warn("client",
			"event=bad_quicsignore root=%s line=%zu err=%s (previous rules kept)",
			r->dir, err.line, qs_strerror(rc));
		return;
	}
	if (w->w != NULL)
		qs_watch_set_ignore(w->w, ig);
	qs_ignore_free(w->ig);
	w->ig = ig;
	r->ignore = ig;
}

static void scan_root(struct qic_root *r);

/* A rename the watcher paired: one move proposal when the index knows the old name (the
 * content is on the server already), else both names are looked at as changes. A rename
 * this client made itself while applying a server's move is already in the index. */
static void on_renamed(struct qic_root *r, const char *from, const char *to, bool is_dir)
{
	struct qic_engine *e = r->e;
	/* Part files of interrupted downloads below from went along (a directory) or stayed
	 * (a file): either way no download names them any more (chaos seeds 1003, 1521). */
	qic_parts_drop_below(r, from, to);
	switch (qic_move_propose(r, e->authed ? e->conn : NULL, from, to, is_dir)) {
	case QIC_MOVE_STARTED: return;
	case QIC_MOVE_KNOWN:
		if (is_dir)
			qic_root_scan_below(r, to);
		else
			qic_mark_dirty(r, to);
		/* And the old name: nothing to propose after our own rename, but a conflicted
		 * copy the user renamed away is its deletion (chaos seed 33031). */
		qic_mark_dirty(r, from);
		return;
	case QIC_MOVE_NO: break;
	}
	/* The old path becomes a tombstone, the new one a proposal whose chunks the server
	 * already holds; a directory moves with everything below it. */
	qic_mark_dirty(r, from);
	qic_mark_dirty(r, to);
	if (is_dir)
		qic_engine_rescan(e);
}

/* The length of path's parent directory ("" at the root: 0). */
static size_t parent_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash != NULL ? (size_t)(slash - path) : 0;
}

static bool same_parent(const struct held_removal *x, const struct held_removal *y)
{
	size_t n = parent_len(x->path);
	return x->r == y->r && parent_len(y->path) == n && memcmp(x->path, y->path, n) == 0;
}

/* Orders held removals by root, then parent directory, then name. */
static int held_cmp(const void *a, const void *b)
{
	const struct held_removal *x = *(struct held_removal *const *)a;
	const struct held_removal *y = *(struct held_removal *const *)b;
	if (x->r != y->r)
		return x->r->root_id < y->r->root_id ? -1 : 1;
	size_t lx = parent_len(x->path), ly = parent_len(y->path);
	int c = memcmp(x->path, y->path, lx < ly ? lx : ly);
	if (c == 0 && lx != ly)
		c = lx < ly ? -1 : 1;
	return c != 0 ? c : strcmp(x->path, y->path);
}

/* Files removed from a directory that stays, QIC_DELETE_BATCH_MIN or more in one batch, go as
 * one subtree delete that keeps the directory (bench S6: 1,000 files deleted one by one were
 * 1,000 proposals, 1,000 commits and 1,000 pushes); fewer, or at the root, are changes of
 * their own. v: the batch's file removals no subtree delete took (freed here). */
static void delete_files(struct qic_engine *e, struct held_removal **v, size_t n)
{
	if (n == 0)
		return;
	qsort(v, n, sizeof(*v), held_cmp);
	for (size_t i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && same_parent(v[i], v[j]); j++)
			;
		size_t dir_len = parent_len(v[i]->path); /* 0: at the root, never a batch */
		char **paths = j - i >= QIC_DELETE_BATCH_MIN && dir_len > 0
				       ? qs_calloc(j - i, sizeof(*paths))
				       : NULL;
		char *dir = paths != NULL ? qs_strndup(v[i]->path, dir_len) : NULL;
		if (dir != NULL) {
			for (size_t k = i; k < j; k++)
				paths[k - i] = v[k]->path;
			qic_delete_files(v[i]->r, e->authed ? e->conn : NULL, dir, paths, j - i);
		} else {
			for (size_t k = i; k < j; k++)
				qic_mark_dirty(v[k]->r, v[k]->path);
		}
		qs_free(dir);
		qs_free(paths);
	}
	for (size_t i = 0; i < n; i++) {
		qs_free(v[i]->path);
		qs_free(v[i]);
	}
}

/* The held removals: each is part of a subtree delete (the highest directory above it that
 * is gone), of a batch of files removed from one directory, or a change of its own. */
static void hold_cb(uv_timer_t *t)
{
	struct qic_engine *e = t->data;
	struct held_removal *h = e->held;
	e->held = NULL;
	e->held_tail = &e->held;
	char *refused = NULL;
	struct held_removal **files = NULL;
	size_t nfiles = 0, cap = 0;
	while (h != NULL) {
		struct held_removal *next = h->next;
		bool started = qic_delete_removed(h->r, e->authed ? e->conn : NULL, h->path,
						  h->is_dir, &refused);
		if (!started && h->is_dir) {
			qic_root_scan_below(h->r, h->path); /* it and all it held, path by path */
		} else if (!started && qs_array_reserve((void **)&files, &cap, nfiles + 1,
							sizeof(*files)) == 0) {
			files[nfiles++] = h;
			h = next;
			continue;
		} else if (!started) {
			qic_mark_dirty(h->r, h->path);
		}
		qs_free(h->path);
		qs_free(h);
		h = next;
	}
	qs_free(refused);
	delete_files(e, files, nfiles);
	qs_free(files);
}

static void hold_removal(struct qic_root *r, const char *path, bool is_dir)
{
	struct qic_engine *e = r->e;
	if (qic_delete_covers(r, path))
		return; /* travels with a directory's deletion in flight */
	struct held_removal *h = qs_calloc(1, sizeof(*h));
	if (h == NULL || (h->path = qs_strdup(path)) == NULL) {
		qs_free(h);
		qic_mark_dirty(r, path);
		return;
	}
	h->r = r;
	h->is_dir = is_dir;
	uint64_t now = uv_now(e->loop);
	if (e->held == NULL)
		e->held_since_ms = now;
	*e->held_tail = h;
	e->held_tail = &h->next;
	uint64_t waited = now - e->held_since_ms;
	if (waited < QIC_HOLD_MAX_MS)
		uv_timer_start(&e->hold, hold_cb,
			       QIC_HOLD_MAX_MS - waited < QIC_HOLD_QUIET_MS
				       ? QIC_HOLD_MAX_MS - waited
				       : QIC_HOLD_QUIET_MS,
			       0);
}

static void on_watch(void *arg, const struct qs_watch_event *ev)
{
	struct root_watch *w = arg;
	switch (ev->type) {
	case QS_WATCH_CHANGED:
	case QS_WATCH_REMOVED:
		if (ev->type == QS_WATCH_REMOVED && strcmp(ev->path->str, ".quicsignore") != 0) {
			hold_removal(w->r, ev->path->str, ev->is_dir);
			break;
		}
		qic_mark_dirty(w->r, ev->path->str);
		if (strcmp(ev->path->str, ".quicsignore") == 0) {
			load_ignore(w); /* new rules: look at everything again */
			scan_root(w->r);
		}
		break;
	case QS_WATCH_RENAMED: on_renamed(w->r, ev->from->str, ev->path->str, ev->is_dir); break;
	case QS_WATCH_RESCAN:
		qs_info("client", "event=rescan root=%s reason=watcher", w->r->dir);
		qic_engine_rescan(w->r->e);
		break;
	case QS_WATCH_ROOT_LOST:
		qs_error("client", "event=root_lost root=%s (paused: the folder is gone)",
			 w->r->dir);
		break;
	}
}

static int root_watch_start(struct qic_engine *e, struct qic_root *r)
{
	struct root_watch *w = qs_calloc(1, sizeof(*w));
	if (w == NULL)
		return QS_ENOMEM;
	w->r = r;
	r->watch = w;
	load_ignore(w);
	struct qs_watch_config cfg;
	qs_watch_config_default(&cfg);
	return qs_watch_new(e->loop, r->dir_fd, &cfg, w->ig, on_watch, w, &w->w);
}

static void root_watch_close(struct qic_root *r)
{
	struct root_watch *w = r->watch;
	if (w != NULL && w->w != NULL) {
		qs_watch_close(w->w);
		w->w = NULL;
	}
}

struct scan_ctx {
	struct qic_root *r;
	struct qs_htab seen; /* paths found on disk */
	char **gone;         /* indexed paths no longer on disk */
	size_t ngone, gone_cap;
	uint64_t indexed_files, gone_files;
};

static bool str_eq(const void *val, const void *key)
{
	return strcmp(val, key) == 0;
}

static uint64_t str_hash(const char *s)
{
	return key_hash(0, s);
}

static int scan_entry(void *arg, const struct qs_scan_entry *se)
{
	struct scan_ctx *sc = arg;
	char *p = qs_strdup(se->path->str);
	if (p == NULL || qs_htab_insert(&sc->seen, str_hash(p), p) != 0) {
		qs_free(p);
		return QS_ENOMEM;
	}
	struct qic_entry ie;
	if (qic_index_get(sc->r, se->path->str, &ie) != 0) {
		qic_mark_dirty(sc->r, se->path->str);
		return 0;
	}
	const struct qs_fingerprint fp = se->st;
	/* A directory changes by its kind or its permission bits (its content, core/content.h). */
	bool changed =
		ie.content.kind == QS_KIND_DIR
			? se->kind != QS_KIND_DIR || (fp.mode & 07777u) != (ie.fp.mode & 07777u)
			: !qs_fingerprint_equal(&fp, &ie.fp);
	if (changed || ie.conflicted)
		qic_mark_dirty(sc->r, se->path->str);
	qic_entry_release(&ie);
	return 0;
}

static int scan_missing(void *arg, const char *path, const struct qic_entry *ie)
{
	struct scan_ctx *sc = arg;
	if (ie->content.kind == QS_KIND_FILE)
		sc->indexed_files++;
	/* A deleted path's candidate may be a file we hold (chaos seed 8039). */
	if (qic_entry_local_kind(ie) == QS_KIND_TOMBSTONE ||
	    qs_htab_find(&sc->seen, str_hash(path), str_eq, path) != NULL)
		return 0;
	if (ie->content.kind == QS_KIND_FILE)
		sc->gone_files++;
	int rc = qs_array_reserve((void **)&sc->gone, &sc->gone_cap, sc->ngone + 1,
				  sizeof(*sc->gone));
	if (rc == 0 && (sc->gone[sc->ngone] = qs_strdup(path)) == NULL)
		rc = QS_ENOMEM;
	if (rc == 0)
		sc->ngone++;
	return rc;
}

static void pause_root(struct qic_root *r, const char *reason)
{
	r->paused = true;
	snprintf(r->pause_reason, sizeof(r->pause_reason), "%s", reason);
	qs_error("client", "event=root_paused root=%s reason=\"%s\"", r->dir, reason);
}

/* The folder must still be the root it was: a missing marker means an empty mount point or a
 * replaced folder, which must never be read as "everything was deleted". */
static bool marker_ok(struct qic_root *r)
{
	char id[32];
	int n = snprintf(id, sizeof(id), "%llu", (unsigned long long)r->root_id);
	int rc = qs_guard_marker_check(r->dir_fd, id, (size_t)n);
	if (rc == 0)
		return true;
	pause_root(r, "the folder is missing its QUIC-S marker (unmounted or replaced?); "
		      "nothing is synced until it is back");
	return false;
}

static void scan_root(struct qic_root *r)
{
	if (r->paused || !marker_ok(r))
		return;
	struct scan_ctx sc = {.r = r};
	qs_htab_init(&sc.seen);
	struct qs_scan_ops ops = {.on_entry = scan_entry};
	int rc = qs_scan_tree(r->dir_fd, NULL, r->ignore, &ops, &sc);
	if (rc == 0)
		rc = qic_index_each(r, scan_missing, &sc);
	if (rc != 0)
		qs_warn("client", "event=scan_failed root=%s err=%s", r->dir, qs_strerror(rc));
	struct qs_guard_limits lim;
	qs_guard_limits_default(&lim);
	if (rc == 0 && !r->confirmed &&
	    qs_guard_mass_delete(&lim, sc.indexed_files, sc.gone_files)) {
		char reason[256];
		snprintf(reason, sizeof(reason),
			 "a scan would delete %llu of %llu files; run qic sync confirm --path %s",
			 (unsigned long long)sc.gone_files, (unsigned long long)sc.indexed_files,
			 r->dir);
		pause_root(r, reason);
	} else if (rc == 0) {
		for (size_t i = 0; i < sc.ngone; i++)
			qic_mark_dirty(r, sc.gone[i]); /* deleted while we were not looking */
		r->confirmed = false;
	}
	for (size_t i = 0; i < sc.ngone; i++)
		qs_free(sc.gone[i]);
	qs_free(sc.gone);
	for (size_t i = 0; i < sc.seen.cap; i++)
		if (sc.seen.slots != NULL && sc.seen.slots[i].val != NULL)
			qs_free(sc.seen.slots[i].val);
	qs_htab_release(&sc.seen);
}

void qic_root_scan_below(struct qic_root *r, const char *path)
{
	qic_mark_dirty(r, path);
	if (r->paused)
		return;
	struct qs_path start;
	if (qs_path_init(&start, path, strlen(path)) != 0)
		return;
	struct scan_ctx sc = {.r = r};
	qs_htab_init(&sc.seen);
	struct qs_scan_ops ops = {.on_entry = scan_entry};
	int rc = qs_scan_tree(r->dir_fd, &start, r->ignore, &ops, &sc);
	/* And what the index has below it that is gone (chaos seed 6: a file renamed away just
	 * before its directory moved was never proposed deleted at its new index name). A path
	 * that is absent, or no longer a directory, has nothing on disk below it: all of that
	 * is gone (chaos seed 8039: a directory renamed out of the root). */
	if (rc == 0 || rc == QS_ENOENT)
		rc = qic_index_each_below(r, path, scan_missing, &sc);
	if (rc != 0)
		qic_engine_rescan(r->e); /* moved again meanwhile, or unreadable: look at all */
	else
		for (size_t i = 0; i < sc.ngone; i++)
			qic_mark_dirty(r, sc.gone[i]);
	for (size_t i = 0; i < sc.ngone; i++)
		qs_free(sc.gone[i]);
	qs_free(sc.gone);
	for (size_t i = 0; i < sc.seen.cap; i++)
		if (sc.seen.slots != NULL && sc.seen.slots[i].val != NULL)
			qs_free(sc.seen.slots[i].val);
	qs_htab_release(&sc.seen);
	qs_path_release(&start);
}

int qic_engine_confirm(struct qic_engine *e, const char *dir)
{
	for (struct qic_root *r = e->roots; r != NULL; r = r->next) {
		if (strcmp(r->dir, dir) != 0)
			continue;
		if (!r->paused)
			return QS_ESTATE;
		char id[32];
		int n = snprintf(id, sizeof(id), "%llu", (unsigned long long)r->root_id);
		int rc = qs_guard_marker_write(r->dir_fd, id, (size_t)n);
		if (rc != 0)
			return rc;
		r->paused = false;
		r->confirmed = true;
		r->pause_reason[0] = '\0';
		qs_info("client", "event=root_confirmed root=%s", r->dir);
		scan_root(r);
		return 0;
	}
	return QS_ENOENT;
}

void qic_engine_rescan(struct qic_engine *e)
{
	for (struct qic_root *r = e->roots; r != NULL; r = r->next)
		scan_root(r);
}

static void rescan_cb(uv_timer_t *t)
{
	qic_engine_rescan(t->data);
}

/* Received files are renamed into place unsynced; every QIC_DURABLE_MS the disks holding
 * the roots are synced once and the files recorded durable (DESIGN.md section 5). */
static int sync_roots(void *arg)
{
	struct qic_engine *e = arg;
	for (struct qic_root *r = e->roots; r != NULL; r = r->next)
		if (syncfs(r->dir_fd) != 0)
			return qs_err_from_errno(errno);
	return 0;
}

void qic_defer_rmdir(struct qic_root *r, const char *path)
{
	struct pending_rmdir *p = qs_calloc(1, sizeof(*p));
	if (p == NULL || (p->path = qs_strdup(path)) == NULL) {
		qs_free(p);
		return;
	}
	p->r = r;
	p->next = r->e->rmdirs;
	r->e->rmdirs = p;
}

/* Retries removing directories whose deletion arrived before their contents'. Deepest
 * first works out over a few rounds: each round removes what became empty. */
static void retry_rmdirs(struct qic_engine *e)
{
	for (struct pending_rmdir **pp = &e->rmdirs; *pp != NULL;) {
		struct pending_rmdir *p = *pp;
		int fd;
		const char *slash = strrchr(p->path, '/');
		char *parent =
			slash ? qs_strndup(p->path, (size_t)(slash - p->path)) : qs_strdup(".");
		int rc = parent == NULL ? QS_ENOMEM
					: qs_localfile_open(p->r->dir_fd, parent,
							    O_RDONLY | O_DIRECTORY, &fd);
		qs_free(parent);
		bool done = rc == QS_ENOENT;
		if (rc == 0) {
			done = unlinkat(fd, slash ? slash + 1 : p->path, AT_REMOVEDIR) == 0 ||
			       errno == ENOENT;
			close(fd);
		}
		if (done) {
			*pp = p->next;
			qs_free(p->path);
			qs_free(p);
		} else {
			pp = &p->next;
		}
	}
}

static void retry_scan_if_due(struct qic_root *r)
{
	uint64_t now = uv_now(r->e->loop);
	if (r->push_failed && !r->retry_due && now - r->push_failed_ms >= r->retry_backoff_ms) {
		/* Nothing applied since (e.g. chunks the server had lost, NEED_CONTENT, and its
		 * push again raced ours: sync_need_content). */
		r->retry_due = true;
		r->retry_backoff_ms = r->retry_backoff_ms * 2 < QIC_RETRY_BACKOFF_MAX_MS
					      ? r->retry_backoff_ms * 2
					      : QIC_RETRY_BACKOFF_MAX_MS;
	}
	if (!r->retry_due || (r->retry_scan_ms != 0 && now - r->retry_scan_ms < QIC_RETRY_SCAN_MS))
		return;
	r->retry_due = false;
	r->push_failed = false;
	r->retry_scan_ms = now;
	qs_debug("client", "event=retry_failed_pushes root=%s", r->dir);
	qic_root_full_scan(r);
}

void qic_retry_failed_pushes(struct qic_root *r)
{
	r->retry_backoff_ms = QIC_RETRY_BACKOFF_MIN_MS;
	if (!r->push_failed)
		return;
	r->retry_due = true;
	retry_scan_if_due(r);
}

void qic_push_failed(struct qic_root *r)
{
	r->push_failed = true;
	r->push_failed_ms = uv_now(r->e->loop);
	if (r->retry_backoff_ms == 0)
		r->retry_backoff_ms = QIC_RETRY_BACKOFF_MIN_MS;
}

static void durable_cb(uv_timer_t *t)
{
	struct qic_engine *e = t->data;
	retry_rmdirs(e);
	for (struct qic_root *r = e->roots; r != NULL; r = r->next)
		retry_scan_if_due(r);
	int rc = qic_index_sync_batch(e, sync_roots, e);
	if (rc != 0)
		qs_warn("client", "event=sync_failed err=%s", qs_strerror(rc));
}

/* ---- server transactions ------------------------------------------------------------------ */

struct call {
	struct qic_engine *e;
	const ProtobufCMessageDescriptor *desc;
	void (*then)(struct qic_engine *e, const ProtobufCMessage *reply, int err);
	bool answered;
};

static void call_then(struct call *c, const ProtobufCMessage *reply, int err)
{
	c->then(c->e, reply, err);
}

static int call_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct call *c = arg;
	if (c->answered)
		return QS_EPROTO;
	c->answered = true;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(c->desc, d, len, NULL, &m);
	if (rc != 0) {
		call_then(c, NULL, rc);
		return 0;
	}
	const Quics__Error *err = qs_wire_reply_error(m);
	call_then(c, m, err != NULL ? QS_EACCES : 0);
	qs_wire_free(m);
	return 0;
}

static void call_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct call *c = arg;
	if (!c->answered)
		call_then(c, NULL, err != 0 ? err : QS_EPROTO);
	qs_free(c);
}

static const struct qs_tx_ops call_ops = {.on_msg = call_msg, .on_close = call_close};

static void call_start(struct call *c, const char *name, const ProtobufCMessage *req)
{
	struct qs_tx *tx;
	if (c->e->conn == NULL) {
		call_then(c, NULL, QS_ECONN);
		qs_free(c);
		return;
	}
	int rc = qs_conn_open_tx(c->e->conn, name, &call_ops, c, &tx);
	if (rc != 0) {
		call_then(c, NULL, rc);
		qs_free(c);
		return;
	}
	if (qs_tx_send_pb(tx, req) != 0 || qs_tx_finish(tx) != 0)
		qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL);
}

/* One request/reply transaction; then(reply or NULL, err) runs exactly once. */
static void call(struct qic_engine *e, const char *name, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *reply_desc,
		 void (*then)(struct qic_engine *e, const ProtobufCMessage *reply, int err))
{
	struct call *c = qs_calloc(1, sizeof(*c));
	if (c == NULL) {
		then(e, NULL, QS_ENOMEM);
		return;
	}
	c->e = e;
	c->desc = reply_desc;
	c->then = then;
	call_start(c, name, req);
}

struct qic_root *qic_engine_roots(struct qic_engine *e)
{
	return e->roots;
}

static void op_finish(struct qic_engine *e, int err, const char *msg, uint64_t id)
{
	qic_done_fn done = e->op_done;
	void *arg = e->op_arg;
	e->op_done = NULL;
	if (e->op_password != NULL) {
		qs_wipe(e->op_password, strlen(e->op_password));
		qs_free(e->op_password);
	}
	qs_free(e->op_name);
	qs_free(e->op_dir);
	e->op_password = e->op_name = e->op_dir = NULL;
	if (done != NULL)
		done(arg, err, msg, id);
}

static const char *reply_message(const ProtobufCMessage *m, const char *fallback)
{
	const Quics__Error *err = m != NULL ? qs_wire_reply_error(m) : NULL;
	return err != NULL && err->message[0] != '\0' ? err->message : fallback;
}

/* FULL_SCAN of one root: our base versions go up; the server pushes what we lack. */
struct fscan {
	Quics__ScanEntry *es;
	Quics__ScanEntry **ps;
	char **paths;
	size_t n, cap;
};

static int fscan_add(void *arg, const char *path, const struct qic_entry *ie)
{
	struct fscan *f = arg;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		Quics__ScanEntry *es = qs_realloc(f->es, cap * sizeof(*es));
		if (es == NULL)
			return QS_ENOMEM;
		f->es = es;
		char **ps = qs_realloc(f->paths, cap * sizeof(*ps));
		if (ps == NULL)
			return QS_ENOMEM;
		f->paths = ps;
		f->cap = cap;
	}
	Quics__ScanEntry init = QUICS__SCAN_ENTRY__INIT;
	f->es[f->n] = init;
	f->paths[f->n] = qs_strdup(path);
	if (f->paths[f->n] == NULL)
		return QS_ENOMEM;
	f->es[f->n].version = ie->base_version;
	memcpy(&f->es[f->n].hash, &(ProtobufCBinaryData){32, NULL}, sizeof(ProtobufCBinaryData));
	f->n++;
	return 0;
}

struct qic_part {
	struct qic_part *next;
	char rel[]; /* root-relative path of the part file */
};

static bool part_start(const char *path, char *out, size_t cap);
static void parts_remove(struct qic_root *r, const char *start, bool exact, bool forget_only);

/* The part files no download holds, checked against the server's pages of a FULL_SCAN (the
 * local scan covers what the server lacks; they are read for this alone). A part file whose
 * path the server does not hold as live content can never be resumed, and no push names that
 * path again: it was deleted elsewhere while the download was interrupted (chaos seed 5530;
 * before, the part file stayed until it was a day old). */
struct fscan_parts {
	struct qic_engine *e;
	uint64_t root_id;
	char **rels; /* the part files noted when the scan started */
	bool *alive; /* the server listed their path as live */
	size_t n;
	bool failed;
};

static void fscan_parts_free(struct fscan_parts *fp)
{
	for (size_t i = 0; fp != NULL && i < fp->n; i++)
		qs_free(fp->rels[i]);
	if (fp != NULL) {
		qs_free(fp->rels);
		qs_free(fp->alive);
		qs_free(fp);
	}
}

/* NULL when the root holds no part file (nothing to check) or out of memory. */
static struct fscan_parts *fscan_parts_new(struct qic_engine *e, struct qic_root *r)
{
	size_t n = 0;
	for (const struct qic_part *p = r->parts; p != NULL; p = p->next)
		n++;
	struct fscan_parts *fp = n > 0 ? qs_calloc(1, sizeof(*fp)) : NULL;
	if (fp == NULL)
		return NULL;
	fp->e = e;
	fp->root_id = r->root_id;
	fp->rels = qs_calloc(n, sizeof(*fp->rels));
	fp->alive = qs_calloc(n, sizeof(*fp->alive));
	bool ok = fp->rels != NULL && fp->alive != NULL;
	for (const struct qic_part *p = r->parts; ok && p != NULL; p = p->next)
		ok = (fp->rels[fp->n++] = qs_strdup(p->rel)) != NULL;
	if (!ok) {
		fscan_parts_free(fp);
		return NULL;
	}
	return fp;
}

static void fscan_parts_page(struct fscan_parts *fp, const Quics__FullScanPage *pg)
{
	static const uint8_t tombstone[QS_SHA256_LEN];
	char start[QS_PATH_MAX + 64];
	for (size_t k = 0; k < pg->n_entries; k++) {
		const Quics__ScanEntry *se = pg->entries[k];
		if (se->hash.len != QS_SHA256_LEN ||
		    memcmp(se->hash.data, tombstone, QS_SHA256_LEN) == 0 ||
		    !part_start(se->path, start, sizeof(start)))
			continue;
		size_t len = strlen(start);
		for (size_t i = 0; i < fp->n; i++)
			fp->alive[i] = fp->alive[i] || strncmp(fp->rels[i], start, len) == 0;
	}
	struct qic_root *r = pg->last ? qic_root_by_id(fp->e, fp->root_id) : NULL;
	for (size_t i = 0; r != NULL && i < fp->n; i++)
		if (!fp->alive[i])
			parts_remove(r, fp->rels[i], true, false); /* unless a download took it */
}

static int fscan_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct fscan_parts *fp = arg;
	if (fp == NULL || fp->failed)
		return 0;
	ProtobufCMessage *msg;
	if (qs_wire_unpack(&quics__full_scan_page__descriptor, d, len, NULL, &msg) != 0) {
		fp->failed = true; /* the server's side is its business: keep the part files */
		return 0;
	}
	const Quics__FullScanPage *pg = (const Quics__FullScanPage *)msg;
	if (pg->error != NULL)
		fp->failed = true;
	else
		fscan_parts_page(fp, pg);
	fp->failed = fp->failed || pg->last;
	qs_wire_free(msg);
	return 0;
}

static void fscan_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	fscan_parts_free(arg);
}

static const struct qs_tx_ops fscan_ops = {.on_msg = fscan_on_msg, .on_close = fscan_on_close};

static void full_scan(struct qic_engine *e, struct qic_root *r)
{
	struct fscan f = {0};
	static uint8_t zero[32];
	int rc = qic_index_each(r, fscan_add, &f);
	struct qs_tx *tx = NULL;
	struct fscan_parts *fp = rc == 0 ? fscan_parts_new(e, r) : NULL;
	if (rc == 0)
		rc = qs_conn_open_tx(e->conn, "FULL_SCAN", &fscan_ops, fp, &tx);
	if (tx == NULL)
		fscan_parts_free(fp); /* else the transaction's, freed when it closes */
	if (rc == 0) {
		Quics__FullScanRequest req = QUICS__FULL_SCAN_REQUEST__INIT;
		req.root_id = r->root_id;
		rc = qs_tx_send_pb(tx, &req.base);
	}
	size_t i = 0;
	while (rc == 0) {
		size_t n = f.n - i < QIC_SCAN_PAGE ? f.n - i : QIC_SCAN_PAGE;
		f.ps = qs_calloc(n + 1, sizeof(*f.ps));
		if (f.ps == NULL) {
			rc = QS_ENOMEM;
			break;
		}
		for (size_t k = 0; k < n; k++) {
			f.es[i + k].path = f.paths[i + k];
			f.es[i + k].hash.data = zero;
			f.es[i + k].hash.len = 32;
			f.ps[k] = &f.es[i + k];
		}
		Quics__FullScanPage page = QUICS__FULL_SCAN_PAGE__INIT;
		page.n_entries = n;
		page.entries = f.ps;
		i += n;
		page.last = i == f.n;
		rc = qs_tx_send_pb(tx, &page.base);
		qs_free(f.ps);
		f.ps = NULL;
		if (page.last)
			break;
	}
	if (rc == 0)
		rc = qs_tx_finish(tx);
	if (rc != 0) {
		qs_warn("client", "event=full_scan_failed root=%s err=%s", r->dir, qs_strerror(rc));
		if (tx != NULL)
			qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL);
	}
	for (size_t k = 0; k < f.n; k++)
		qs_free(f.paths[k]);
	qs_free(f.paths);
	qs_free(f.es);
}

void qic_root_full_scan(struct qic_root *r)
{
	if (r->e->authed && r->e->conn != NULL && !r->paused)
		full_scan(r->e, r);
}

static void resync(struct qic_engine *e)
{
	for (struct qic_root *r = e->roots; r != NULL; r = r->next)
		full_scan(e, r);
	qic_engine_rescan(e);
	pump(e);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void note_error(struct qic_engine *e, const char *what, const char *detail)
{
	snprintf(e->last_error, sizeof(e->last_error), "%s%s%s", what, detail[0] ? ": " : "",
		 detail);
	e->last_error_ms = wall_ms();
}

static void after_auth(struct qic_engine *e, const ProtobufCMessage *reply, int err)
{
	if (err != 0) {
		qs_error("client", "event=auth_failed err=%s msg=\"%s\"", qs_strerror(err),
			 reply_message(reply, ""));
		note_error(e, "the server refused this client", reply_message(reply, ""));
		if (e->op_done != NULL)
			op_finish(e, err, "the server refused this client", 0);
		return;
	}
	e->authed = true;
	e->connected_since_ms = wall_ms();
	qs_info("client", "event=authenticated client=%llu server=%s",
		(unsigned long long)e->client_id, e->server);
	if (e->op_done != NULL && e->op_name == NULL)
		op_finish(e, 0, "connected", e->client_id);
	resync(e);
}

static void auth(struct qic_engine *e)
{
	Quics__AuthRequest req = QUICS__AUTH_REQUEST__INIT;
	req.client_id = e->client_id;
	req.token.data = e->token;
	req.token.len = sizeof(e->token);
	req.client_version = (char *)"qic " QS_VERSION;
	call(e, "AUTH", &req.base, &quics__auth_response__descriptor, after_auth);
}

static void quic_closed(void *arg)
{
	qs_quic_client_free(arg);
}

/* Gives up the connection of a registration that failed (the user will try again). */
static void drop_quic(struct qic_engine *e)
{
	struct qs_quic_client *q = e->quic;
	e->quic = NULL;
	e->conn = NULL;
	e->fpr[0] = '\0';
	if (q != NULL)
		qs_quic_client_close(q, quic_closed, q);
}

static void drop_cb(uv_timer_t *t)
{
	struct qic_engine *e = t->data;
	if (e->client_id == 0)
		drop_quic(e);
}

static void after_register(struct qic_engine *e, const ProtobufCMessage *reply, int err)
{
	if (err != 0) {
		op_finish(e, err, reply_message(reply, "registration refused"), 0);
		/* Not from here: this runs inside the transport's packet processing, which must
		 * not see its connection closed under it. */
		uv_timer_start(&e->drop, drop_cb, 0, 0);
		return;
	}
	const Quics__RegisterClientResponse *r = (const void *)reply;
	if (r->token.len != sizeof(e->token)) {
		op_finish(e, QS_EPROTO, "malformed registration answer", 0);
		return;
	}
	e->client_id = r->client_id;
	memcpy(e->token, r->token.data, sizeof(e->token));
	char id[32], hex[65];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)e->client_id);
	qs_hex_encode(e->token, sizeof(e->token), hex);
	int rc = qic_setting_set(e, "client_id", id);
	if (rc == 0)
		rc = qic_setting_set(e, "token", hex);
	if (rc == 0)
		rc = qic_setting_set(e, "server", e->server);
	if (rc == 0)
		rc = qic_setting_set(e, "fingerprint", e->fpr);
	if (rc == 0)
		rc = qic_setting_set(e, "client_name", e->client_name);
	qs_wipe(hex, sizeof(hex));
	if (rc != 0) {
		op_finish(e, rc, "cannot save the registration", 0);
		return;
	}
	auth(e);
}

static void on_connected(struct qs_conn *conn, void *arg)
{
	struct qic_engine *e = arg;
	e->conn = conn;
	if (e->fpr[0] == '\0')
		snprintf(e->fpr, sizeof(e->fpr), "%s", qs_conn_peer_fingerprint(conn));
	if (e->client_id != 0) {
		auth(e);
		return;
	}
	if (e->op_password == NULL)
		return;
	Quics__RegisterClientRequest req = QUICS__REGISTER_CLIENT_REQUEST__INIT;
	snprintf(e->client_name, sizeof(e->client_name), "qic");
	gethostname(e->client_name, sizeof(e->client_name) - 1);
	req.server_password = e->op_password;
	req.client_name = e->client_name;
	call(e, "REGISTER_CLIENT", &req.base, &quics__register_client_response__descriptor,
	     after_register);
}

static void on_disconnected(struct qs_conn *conn, int err, void *arg)
{
	(void)conn;
	struct qic_engine *e = arg;
	e->conn = NULL;
	e->authed = false;
	e->connected_since_ms = 0;
	if (e->quic == NULL)
		return; /* drop_quic is closing a client it already let go of */
	const char *msg;
	qs_quic_client_last_error(e->quic, &msg);
	if (err != 0)
		note_error(e, "disconnected", msg[0] ? msg : qs_strerror(err));
	if (e->op_done != NULL && (err == QS_ECERT || e->client_id == 0)) {
		op_finish(e, err != 0 ? err : QS_ECONN, msg[0] ? msg : qs_strerror(err), 0);
		if (e->client_id == 0 && !e->stopping) /* stopping: being closed, freed by free */
			drop_quic(e);
	}
}

static int on_tx_open(struct qs_conn *conn, struct qs_tx *tx, const char *name, void *arg)
{
	(void)conn;
	struct qic_engine *e = arg;
	if (strcmp(name, "MUST_SYNC") == 0 || strcmp(name, "FORCE_SYNC") == 0) {
		e->downloaded++;
		return qic_receive_accept(e, tx, name[0] == 'F');
	}
	if (strcmp(name, "NEED_CONTENT") == 0)
		return qic_need_accept(e, tx);
	return QS_ENOENT;
}

static int connect_quic(struct qic_engine *e, const char *host, uint16_t port)
{
	struct qs_quic_client_config cfg;
	qs_quic_client_config_default(&cfg);
	cfg.host = host;
	cfg.port = port;
	cfg.pinned_fingerprint = e->fpr[0] != '\0' ? e->fpr : NULL;
	cfg.on_connected = on_connected;
	cfg.on_disconnected = on_disconnected;
	cfg.on_tx_open = on_tx_open;
	cfg.arg = e;
	return qs_quic_client_new(e->loop, &cfg, &e->quic);
}

/* "host:port" or "[v6]:port" into its parts. */
static int split_server(const char *s, char *host, size_t cap, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	uint64_t p;
	if (colon == NULL || (size_t)(colon - s) >= cap || qs_parse_u64(colon + 1, 65535, &p) != 0)
		return QS_EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}

void qic_engine_connect_server(struct qic_engine *e, const char *host, uint16_t port,
			       const char *password, const char *fingerprint, qic_done_fn done,
			       void *arg)
{
	if (e->op_done != NULL) {
		done(arg, QS_EAGAIN, "another operation is in progress", 0);
		return;
	}
	if (e->quic != NULL) {
		done(arg, QS_EEXIST, "already connected to a server", 0);
		return;
	}
	if (fingerprint != NULL && strlen(fingerprint) != 64) {
		done(arg, QS_EINVAL, "a fingerprint is 64 hex characters", 0);
		return;
	}
	e->op_done = done;
	e->op_arg = arg;
	e->op_password = qs_strdup(password);
	snprintf(e->fpr, sizeof(e->fpr), "%s", fingerprint != NULL ? fingerprint : "");
	bool v6 = strchr(host, ':') != NULL;
	snprintf(e->server, sizeof(e->server), v6 ? "[%s]:%u" : "%s:%u", host, port);
	int rc = e->op_password == NULL ? QS_ENOMEM : connect_quic(e, host, port);
	if (rc != 0)
		op_finish(e, rc, "cannot connect", 0);
}

/* ---- roots ------------------------------------------------------------------------------- */

#define PART_MAX_AGE_S ((int64_t)24 * 3600)

/* "dir/name" or "name" into out; false if it does not fit. */
static bool join_rel(char *out, size_t cap, const char *dir, size_t dir_len, const char *name)
{
	int n = dir_len > 0 ? snprintf(out, cap, "%.*s/%s", (int)dir_len, dir, name)
			    : snprintf(out, cap, "%s", name);
	return n > 0 && (size_t)n < cap;
}

/* The root-relative start shared by the part files of path: "dir/" + its part prefix. */
static bool part_start(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash != NULL ? slash + 1 : path;
	char prefix[64];
	return qs_localfile_part_prefix(name, prefix) == 0 &&
	       join_rel(out, cap, path, slash != NULL ? (size_t)(slash - path) : 0, prefix);
}

static void part_note_rel(struct qic_root *r, const char *rel)
{
	for (struct qic_part *p = r->parts; p != NULL; p = p->next)
		if (strcmp(p->rel, rel) == 0)
			return;
	size_t n = strlen(rel) + 1;
	struct qic_part *p = qs_malloc(sizeof(*p) + n);
	if (p == NULL)
		return; /* it stays until it is a day old */
	memcpy(p->rel, rel, n);
	p->next = r->parts;
	r->parts = p;
}

void qic_parts_note(struct qic_root *r, const char *path, const char *part_name)
{
	char rel[QS_PATH_MAX + 64];
	const char *slash = strrchr(path, '/');
	if (join_rel(rel, sizeof(rel), path, slash != NULL ? (size_t)(slash - path) : 0, part_name))
		part_note_rel(r, rel);
}

/* Removes the noted part files whose relative path starts with start (all of them, or only
 * an exact match), unlinking them unless forget_only. */
static void parts_remove(struct qic_root *r, const char *start, bool exact, bool forget_only)
{
	size_t n = strlen(start);
	for (struct qic_part **pp = &r->parts; *pp != NULL;) {
		struct qic_part *p = *pp;
		if (exact ? strcmp(p->rel, start) == 0 : strncmp(p->rel, start, n) == 0) {
			if (!forget_only && unlinkat(r->dir_fd, p->rel, 0) == 0)
				qs_debug("client", "event=part_removed path=\"%s\"", p->rel);
			*pp = p->next;
			qs_free(p);
		} else {
			pp = &p->next;
		}
	}
}

void qic_parts_forget(struct qic_root *r, const char *path, const char *part_name)
{
	char rel[QS_PATH_MAX + 64];
	const char *slash = strrchr(path, '/');
	if (r->parts != NULL &&
	    join_rel(rel, sizeof(rel), path, slash != NULL ? (size_t)(slash - path) : 0, part_name))
		parts_remove(r, rel, true, true);
}

void qic_parts_drop(struct qic_root *r, const char *path)
{
	char start[QS_PATH_MAX + 64];
	if (r->parts != NULL && part_start(path, start, sizeof(start)))
		parts_remove(r, start, false, false);
}

void qic_parts_drop_below(struct qic_root *r, const char *from, const char *to)
{
	if (r->parts == NULL)
		return;
	qic_parts_drop(r, from);
	size_t fl = strlen(from);
	char moved[QS_PATH_MAX + 64];
	for (struct qic_part **pp = &r->parts; *pp != NULL;) {
		struct qic_part *p = *pp;
		if (strncmp(p->rel, from, fl) == 0 && p->rel[fl] == '/') {
			/* The part file went along with its directory. */
			int n = snprintf(moved, sizeof(moved), "%s%s", to, p->rel + fl);
			if (n > 0 && (size_t)n < sizeof(moved))
				unlinkat(r->dir_fd, moved, 0);
			*pp = p->next;
			qs_free(p);
		} else {
			pp = &p->next;
		}
	}
}

void qic_parts_free(struct qic_root *r)
{
	while (r->parts != NULL) {
		struct qic_part *p = r->parts;
		r->parts = p->next;
		qs_free(p);
	}
	while (r->refused != NULL) {
		struct qic_part *p = r->refused;
		r->refused = p->next;
		qs_free(p);
	}
	r->n_refused = 0;
}

#define REFUSED_MAX 1024

void qic_push_refused(struct qic_root *r, const char *path)
{
	for (struct qic_part *p = r->refused; p != NULL; p = p->next)
		if (strcmp(p->rel, path) == 0)
			return;
	size_t n = strlen(path) + 1;
	struct qic_part *p = r->n_refused < REFUSED_MAX ? qs_malloc(sizeof(*p) + n) : NULL;
	if (p == NULL) {
		qic_root_full_scan(r); /* too many to remember: ask for everything newer now */
		return;
	}
	memcpy(p->rel, path, n);
	p->next = r->refused;
	r->refused = p;
	r->n_refused++;
}

bool qic_push_refused_take(struct qic_root *r, const char *path)
{
	for (struct qic_part **pp = &r->refused; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->rel, path) == 0) {
			struct qic_part *p = *pp;
			*pp = p->next;
			qs_free(p);
			r->n_refused--;
			return true;
		}
	return false;
}

/* Removes temp files a crash left in dir_fd's tree (a received file that was not complete:
 * it never replaced anything) and notes the part files young enough to resume. rel holds the
 * root-relative path of dir_fd (rel_len bytes, "" for the root) in a buffer of
 * QS_PATH_MAX + 64 shared by the whole walk. Never follows symlinks; depth is bounded by the
 * path limit. */
static void remove_stale_temps(struct qic_root *r, int dir_fd, char *rel, size_t rel_len,
			       unsigned depth)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	size_t plen = strlen(QS_LOCALFILE_TMP_PREFIX);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, QS_LOCALFILE_TMP_PREFIX, plen) == 0) {
			/* A download's part file stays a day for a resume. */
			if (qs_localfile_part_is_stale(dirfd(d), de->d_name, PART_MAX_AGE_S))
				unlinkat(dirfd(d), de->d_name, 0);
			else if (rel_len + 1 + strlen(de->d_name) < QS_PATH_MAX + 64 &&
				 snprintf(rel + rel_len, QS_PATH_MAX + 64 - rel_len, "%s%s",
					  rel_len > 0 ? "/" : "", de->d_name) > 0)
				part_note_rel(r, rel);
			rel[rel_len] = '\0';
			continue;
		}
		size_t n = strlen(de->d_name);
		if (de->d_type == DT_DIR && depth < 2048 && rel_len + 1 + n <= QS_PATH_MAX) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				size_t sub_len = rel_len;
				if (rel_len > 0)
					rel[sub_len++] = '/';
				memcpy(rel + sub_len, de->d_name, n + 1);
				remove_stale_temps(r, sub, rel, sub_len + n, depth + 1);
				rel[rel_len] = '\0';
				close(sub);
			}
		}
	}
	closedir(d);
}

static int root_attach(struct qic_engine *e, uint64_t id, const char *name, const char *dir,
		       struct qic_root **out)
{
	struct qic_root *r = qs_calloc(1, sizeof(*r));
	if (r == NULL)
		return QS_ENOMEM;
	r->e = e;
	r->root_id = id;
	r->name = qs_strdup(name);
	r->dir = qs_strdup(dir);
	r->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = r->name == NULL || r->dir == NULL ? QS_ENOMEM
		 : r->dir_fd < 0                   ? qs_err_from_errno(errno)
						   : 0;
	if (rc != 0) {
		if (r->dir_fd >= 0)
			close(r->dir_fd);
		qs_free(r->name);
		qs_free(r->dir);
		qs_free(r);
		return rc;
	}
	r->next = e->roots;
	e->roots = r;
	static char rel[QS_PATH_MAX + 64]; /* loop thread only */
	rel[0] = '\0';
	remove_stale_temps(r, r->dir_fd, rel, 0, 0);
	rc = root_watch_start(e, r);
	if (rc != 0)
		qs_warn("client", "event=watch_failed root=%s err=%s (periodic scans only)", dir,
			qs_strerror(rc));
	*out = r;
	return 0;
}

int qic_root_attach(struct qic_engine *e, uint64_t id, const char *name, const char *dir);
int qic_root_attach(struct qic_engine *e, uint64_t id, const char *name, const char *dir)
{
	struct qic_root *r;
	return root_attach(e, id, name, dir, &r);
}

static void after_root(struct qic_engine *e, const ProtobufCMessage *reply, int err)
{
	if (err != 0) {
		op_finish(e, err, reply_message(reply, "refused"), 0);
		return;
	}
	uint64_t id = e->op_create
			      ? ((const Quics__RegisterRootResponse *)(const void *)reply)->root_id
			      : ((const Quics__JoinRootResponse *)(const void *)reply)->root_id;
	struct qic_root *r;
	int rc = root_attach(e, id, e->op_name, e->op_dir, &r);
	char marker[32];
	int n = snprintf(marker, sizeof(marker), "%llu", (unsigned long long)id);
	if (rc == 0)
		rc = qs_guard_marker_write(r->dir_fd, marker, (size_t)n);
	if (rc == 0)
		rc = qic_root_save(e, r);
	if (rc != 0) {
		op_finish(e, rc, "cannot use the local directory", 0);
		return;
	}
	qs_info("client", "event=root_added root=%llu name=\"%s\" dir=%s", (unsigned long long)id,
		r->name, r->dir);
	op_finish(e, 0, "root connected", id);
	full_scan(e, r);
	scan_root(r);
	pump(e);
}

void qic_engine_add_root(struct qic_engine *e, bool create, const char *name, const char *password,
			 const char *dir, qic_done_fn done, void *arg)
{
	if (e->op_done != NULL) {
		done(arg, QS_EAGAIN, "another operation is in progress", 0);
		return;
	}
	if (!e->authed) {
		done(arg, QS_ECONN, "not connected to a server (qic connect server first)", 0);
		return;
	}
	for (struct qic_root *r = e->roots; r != NULL; r = r->next) {
		if (strcmp(r->dir, dir) == 0) {
			done(arg, QS_EEXIST, "this directory is already synced", 0);
			return;
		}
	}
	if (!create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
		done(arg, qs_err_from_errno(errno), "cannot create the directory", 0);
		return;
	}
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		done(arg, QS_ENOENT, "not a directory", 0);
		return;
	}
	e->op_done = done;
	e->op_arg = arg;
	e->op_create = create;
	e->op_name = qs_strdup(name);
	e->op_dir = qs_strdup(dir);
	if (create) {
		Quics__RegisterRootRequest req = QUICS__REGISTER_ROOT_REQUEST__INIT;
		req.name = (char *)name;
		req.password = (char *)password;
		call(e, "REGISTER_ROOT", &req.base, &quics__register_root_response__descriptor,
		     after_root);
	} else {
		Quics__JoinRootRequest req = QUICS__JOIN_ROOT_REQUEST__INIT;
		req.name = (char *)name;
		req.password = (char *)password;
		call(e, "JOIN_ROOT", &req.base, &quics__join_root_response__descriptor, after_root);
	}
}

int qic_engine_remove_root(struct qic_engine *e, const char *dir)
{
	for (struct qic_root **pp = &e->roots; *pp != NULL; pp = &(*pp)->next) {
		struct qic_root *r = *pp;
		if (strcmp(r->dir, dir) != 0)
			continue;
		int rc = qic_root_forget(e, r->root_id);
		if (rc != 0)
			return rc;
		root_watch_close(r);
		cancel_hashes(e, r);
		/* The root stays allocated (queued work may point at it) but is unlinked. */
		*pp = r->next;
		return 0;
	}
	return QS_ENOENT;
}

/* ---- lifecycle and status ------------------------------------------------------------------ */

int qic_engine_start(uv_loop_t *loop, const char *state_dir, struct qic_engine **out)
{
	struct qic_engine *e = qs_calloc(1, sizeof(*e));
	if (e == NULL)
		return QS_ENOMEM;
	e->loop = loop;
	qs_htab_init(&e->queued);
	uv_timer_init(loop, &e->retry);
	e->retry.data = e;
	uv_timer_init(loop, &e->rescan);
	e->rescan.data = e;
	uv_timer_init(loop, &e->durable);
	e->durable.data = e;
	uv_timer_init(loop, &e->drop);
	e->drop.data = e;
	uv_timer_init(loop, &e->hold);
	e->hold.data = e;
	e->held_tail = &e->held;
	e->wait_tail = &e->wait_head;
	e->state_dir = qs_strdup(state_dir);
	char path[4096];
	int rc = e->state_dir == NULL ? QS_ENOMEM : 0;
	if (rc == 0 && mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		rc = qs_err_from_errno(errno);
	if (rc == 0) {
		snprintf(path, sizeof(path), "%s/index.db", state_dir);
		rc = qic_index_open(e, path);
	}
	if (rc == 0)
		rc = qic_roots_load(e);
	if (rc != 0) {
		qic_engine_free(e);
		return rc;
	}
	size_t checked = 0, repaired = 0;
	rc = qic_repair_pending(e, &checked, &repaired);
	if (rc != 0)
		qs_warn("client", "event=repair_failed err=%s", qs_strerror(rc));
	else if (checked > 0)
		qs_info("client", "event=verified_not_durable files=%zu repaired=%zu", checked,
			repaired);
	char v[200], host[256];
	uint16_t port;
	if (qic_setting_get(e, "client_name", e->client_name, sizeof(e->client_name)) != 0)
		e->client_name[0] = '\0'; /* registered before the name was kept */
	if (qic_setting_get(e, "client_id", v, sizeof(v)) == 0) {
		uint64_t id;
		char hex[80];
		if (qs_parse_u64(v, UINT64_MAX, &id) == 0 &&
		    qic_setting_get(e, "token", hex, sizeof(hex)) == 0 &&
		    qs_hex_decode(hex, strlen(hex), e->token, sizeof(e->token)) == 0 &&
		    qic_setting_get(e, "server", e->server, sizeof(e->server)) == 0 &&
		    qic_setting_get(e, "fingerprint", e->fpr, sizeof(e->fpr)) == 0 &&
		    split_server(e->server, host, sizeof(host), &port) == 0) {
			e->client_id = id;
			char *h = host;
			if (h[0] == '[') {
				h++;
				h[strlen(h) - 1] = '\0';
			}
			rc = connect_quic(e, h, port);
		}
		qs_wipe(hex, sizeof(hex));
	}
	uv_timer_start(&e->rescan, rescan_cb, QIC_RESCAN_MS, QIC_RESCAN_MS);
	uv_timer_start(&e->durable, durable_cb, QIC_DURABLE_MS, QIC_DURABLE_MS);
	*out = e;
	return rc;
}

static int stop_count;
static void handle_closed(uv_handle_t *h)
{
	(void)h;
	stop_count--;
}

void qic_engine_stop(struct qic_engine *e, void (*done)(void *arg), void *arg)
{
	e->stopping = true;
	cancel_hashes(e, NULL); /* the loop runs until their ends have run */
	for (struct qic_root *r = e->roots; r != NULL; r = r->next)
		root_watch_close(r);
	uv_close((uv_handle_t *)&e->retry, handle_closed);
	uv_close((uv_handle_t *)&e->rescan, handle_closed);
	uv_close((uv_handle_t *)&e->durable, handle_closed);
	uv_close((uv_handle_t *)&e->drop, handle_closed);
	uv_close((uv_handle_t *)&e->hold, handle_closed);
	stop_count += 5;
	durable_cb(&e->durable);
	if (e->quic != NULL)
		qs_quic_client_close(e->quic, done, arg);
	else if (done != NULL)
		done(arg);
}

void qic_engine_free(struct qic_engine *e)
{
	if (e == NULL)
		return;
	qs_quic_client_free(e->quic);
	while (e->q_head != NULL) {
		struct dirty *d = e->q_head;
		e->q_head = d->next;
		qs_free(d->path);
		qs_free(d);
	}
	qs_htab_release(&e->queued);
	assert(e->hashing == 0); /* the loop ran until every hash job had ended */
	while (e->flying != NULL) {
		struct dirty *d = e->flying;
		e->flying = d->next;
		qs_free(d->path);
		qs_free(d);
	}
	while (e->held != NULL) {
		/* Not proposed: the next start's scan finds them deleted. */
		struct held_removal *h = e->held;
		e->held = h->next;
		qs_free(h->path);
		qs_free(h);
	}
	while (e->roots != NULL) {
		struct qic_root *r = e->roots;
		e->roots = r->next;
		close(r->dir_fd);
		qs_free(r->name);
		qs_free(r->dir);
		qic_parts_free(r);
		if (r->watch != NULL) {
			qs_ignore_free(r->watch->ig);
			qs_free(r->watch);
		}
		qs_free(r);
	}
	qic_index_close(e);
	qs_free(e->state_dir);
	qs_wipe(e->token, sizeof(e->token));
	qs_free(e);
}

void qic_engine_status(struct qic_engine *e, struct qic_status *out)
{
	memset(out, 0, sizeof(*out));
	out->configured = e->client_id != 0;
	out->connected = e->authed;
	out->server = e->server;
	out->fingerprint = e->fpr;
	out->client_id = e->client_id;
	out->queued = e->queued_n;
	out->in_flight = e->in_flight;
	out->uploaded = e->uploaded;
	out->downloaded = e->downloaded;
	out->client_name = e->client_name;
	out->connected_since_ms = e->authed ? e->connected_since_ms : 0;
	out->last_error = e->last_error;
	out->last_error_ms = e->last_error_ms;
	out->host = "";
	char *host = e->server_host, *h = host;
	if (split_server(e->server, host, sizeof(e->server_host), &out->port) == 0) {
		size_t n = strlen(host);
		if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
			host[n - 1] = '\0';
			h++;
		}
		out->host = h;
	}
}

struct qs_conn *qic_engine_conn(struct qic_engine *e)
{
	return e->authed ? e->conn : NULL;
}

uv_loop_t *qic_engine_loop(struct qic_engine *e)
{
	return e->loop;
}

bool qic_engine_stopping(const struct qic_engine *e)
{
	return e->stopping;
}

bool qic_engine_configured(const struct qic_engine *e)
{
	return e->client_id != 0;
}

void qic_engine_traffic(struct qic_engine *e, struct qs_quic_bytes *out)
{
	memset(out, 0, sizeof(*out));
	if (e->quic != NULL)
		qs_quic_client_bytes(e->quic, out);
}

struct count_ctx {
	uint64_t files, conflicts;
};

static int count_one(void *arg, const char *path, const struct qic_entry *ie)
{
	(void)path;
	struct count_ctx *c = arg;
	if (ie->content.kind == QS_KIND_FILE)
		c->files++;
	if (ie->conflicted)
		c->conflicts++;
	return 0;
}

void qic_engine_each_root(struct qic_engine *e,
			  void (*fn)(void *arg, const struct qic_root_status *st), void *arg)
{
	for (struct qic_root *r = e->roots; r != NULL; r = r->next) {
		struct count_ctx c = {0};
		qic_index_each(r, count_one, &c);
		struct qic_root_status st = {
			.root_id = r->root_id,
			.name = r->name,
			.dir = r->dir,
			.files = c.files,
			.paused = r->paused,
			.pause_reason = r->pause_reason,
			.connected = e->authed && !r->paused,
			.conflicts = c.conflicts,
			.up = r->up,
			.down = r->down,
		};
		for (struct dirty *d = e->q_head; d != NULL; d = d->next)
			if (d->r == r)
				st.pending++;
		for (struct dirty *d = e->flying; d != NULL; d = d->next)
			if (d->r == r && (d->hash != NULL || d->waiting))
				st.pending++; /* to be hashed or being hashed: not proposed yet */
		fn(arg, &st);
	}
}

void qic_entry_release(struct qic_entry *e)
{
	qs_free(e->manifest);
	e->manifest = NULL;
}

/* Where index.c keeps its handle. */
void **qic_engine_index_slot(struct qic_engine *e);
void **qic_engine_index_slot(struct qic_engine *e)
{
	return &e->index;
}

int qic_engine_resolve(struct qic_engine *e, const char *abs_path, struct qic_root **root,
		       char **rel)
{
	if (abs_path == NULL || abs_path[0] != '/')
		return QS_EINVAL;
	for (struct qic_root *r = e->roots; r != NULL; r = r->next) {
		size_t n = strlen(r->dir);
		while (n > 1 && r->dir[n - 1] == '/')
			n--;
		if (strncmp(abs_path, r->dir, n) != 0 || abs_path[n] != '/')
			continue;
		const char *p = abs_path + n + 1;
		int rc = qs_path_check(p, strlen(p));
		if (rc != 0)
			return rc;
		*rel = qs_strdup(p);
		if (*rel == NULL)
			return QS_ENOMEM;
		*root = r;
		return 0;
	}
	return QS_ENOENT;
}

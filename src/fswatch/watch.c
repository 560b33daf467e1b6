/* Watcher (see watch.h, docs/fswatch.md). One inotify instance, polled by uv_poll, holds a
 * watch per directory; each directory is opened without following symlinks (the scanner's
 * walk) and watched through /proc/self/fd, so a watch is always on the inode that was
 * checked. Raw events become pending events in arrival order; a table maps each path to its
 * latest pending event so a burst on one path is one event. A timer flushes the pending list
 * coalesce_ms after its first event. Directory moves update the watch map at once, when the
 * IN_MOVED_TO arrives, so later events already carry the new paths.
 * Invariants: every watched directory is inside the root and not ignored (a set_ignore or
 * resync sweeps the others); each by_wd entry is a kernel watch, or one whose IN_IGNORED is
 * still queued; pending events own their paths. */
#include "fswatch/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/utf8.h"
#include "fswatch/htab.h"
#include "fswatch/scan.h"

#define MODULE "fswatch"
#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE |        \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)
/* Pending events held at most; more within one window is handled as a queue overflow. */
#define PENDING_MAX ((size_t)1 << 17)

struct dirwatch {
	int wd;
	struct qs_path path; /* str NULL: the root */
	uint64_t gen;        /* the last resync that saw it */
};

enum pend_type { PEND_CHANGE, PEND_REMOVE, PEND_RENAME, PEND_MOVED_FROM };

struct pend {
	enum pend_type type;
	bool is_dir;
	bool closed; /* CHANGE: report as is; else a new regular file may still be open */
	bool dead;   /* superseded by a later event */
	uint32_t cookie;
	struct qs_path path; /* MOVED_FROM: empty when the source is ignored or invalid */
	struct qs_path from; /* RENAME */
	/* MOVED_FROM of a directory: the watches it took along, dropped if it left the root.
	 * Kept by descriptor, not path: a new directory may take the old name meanwhile. */
	int *wds;
	size_t wd_count;
};

struct pend_list {
	struct pend **v;
	size_t n, cap;
};

struct qs_watch {
	uv_loop_t *loop;
	uv_poll_t poll;
	uv_timer_t timer;
	int handles_open;
	int ifd;
	int root_fd;
	struct qs_watch_config cfg;
	const struct qs_ignore *ig;
	qs_watch_fn fn;
	void *arg;
	struct qs_htab by_wd;
	uint64_t gen;
	struct pend_list pend;
	struct qs_htab by_path;
	bool rescan;           /* report RESCAN at the next flush */
	bool pending_overflow; /* PENDING_MAX was reached: the list is dropped at the flush */
	bool root_lost;
	bool finished; /* ROOT_LOST delivered: nothing more */
	bool closing;
	bool limit_logged; /* the watch limit was logged during the current walk */
	struct qs_ratelimit log_rl;
	alignas(struct inotify_event) char buf[64 * 1024];
};

/* ---- small helpers ---- */

static bool path_set(const struct qs_path *p)
{
	return p->str != NULL;
}

static uint64_t path_hash(const struct qs_path *p)
{
	return qs_htab_hash_bytes(p->str, p->len);
}

static uint64_t wd_hash(int wd)
{
	return qs_htab_hash_u64((uint64_t)(unsigned)wd);
}

static bool wd_eq(const void *val, const void *key)
{
	return ((const struct dirwatch *)val)->wd == *(const int *)key;
}

static bool pend_names(const void *val, const void *key)
{
	const struct pend *p = val;
	const struct qs_path *k = key;
	return (path_set(&p->path) && qs_path_equal(&p->path, k)) ||
	       (path_set(&p->from) && qs_path_equal(&p->from, k));
}

/* True if p is dir or below it; dir NULL is the root. */
static bool at_or_below(const struct qs_path *p, const struct qs_path *dir)
{
	if (dir == NULL)
		return true;
	return path_set(p) && (qs_path_equal(p, dir) || qs_path_is_inside(p, dir));
}

/* Writes s for a log line: bytes that could break the line or a terminal become \xNN. */
static const char *log_str(char *out, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bool utf8 = qs_utf8_valid_nonul(s, len);
	size_t o = 0;
	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F || c == '\\' || c == '"' || (c >= 0x80 && !utf8)) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

static bool log_allowed(struct qs_watch *w)
{
	return qs_ratelimit_allow(&w->log_rl, uv_now(w->loop) * 1000000u);
}

static void lost_events(struct qs_watch *w, const char *why)
{
	if (log_allowed(w))
		qs_warn(MODULE, "event=lost reason=%s action=rescan", why);
	w->rescan = true;
}

/* ---- the watch map ---- */

static struct dirwatch *watch_find(struct qs_watch *w, int wd)
{
	void **slot = qs_htab_find(&w->by_wd, wd_hash(wd), wd_eq, &wd);
	return slot != NULL ? *slot : NULL;
}

static void watch_free(struct dirwatch *dw)
{
	qs_path_release(&dw->path);
	qs_free(dw);
}

static void limit_reached(struct qs_watch *w)
{
	if (!w->limit_logged)
		qs_warn(MODULE,
			"event=watch-limit watches=%zu action=rescan hint=\"raise "
			"fs.inotify.max_user_watches or the client's max_watches\"",
			w->by_wd.count);
	w->limit_logged = true;
	w->rescan = true;
}

static bool same_path(const struct dirwatch *dw, const struct qs_path *dir)
{
	if (dir == NULL)
		return !path_set(&dw->path);
	return path_set(&dw->path) && qs_path_equal(&dw->path, dir);
}

/* Watches the directory open at fd (path dir, NULL for the root), or refreshes the path and
 * generation of its existing watch. Errors: QS_EIO (the root cannot be watched through
 * /proc), QS_ENOMEM. */
static int watch_add(struct qs_watch *w, const struct qs_path *dir, int fd)
{
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int wd = inotify_add_watch(w->ifd, proc, WATCH_MASK);
	if (wd < 0) {
		int e = errno;
		if (e == ENOSPC)
			limit_reached(w);
		else if (dir == NULL)
			return QS_EIO; /* no /proc, or no inotify for this file system */
		else
			lost_events(w, "add-watch-failed");
		return 0;
	}
	struct dirwatch *dw = watch_find(w, wd);
	if (dw == NULL) {
		if (w->cfg.max_watches != 0 && w->by_wd.count >= w->cfg.max_watches) {
			inotify_rm_watch(w->ifd, wd);
			limit_reached(w);
			return 0;
		}
		dw = qs_calloc(1, sizeof(*dw));
		if (dw == NULL || (dir != NULL && qs_path_copy(&dw->path, dir) != 0) ||
		    qs_htab_insert(&w->by_wd, wd_hash(wd), dw) != 0) {
			if (dw != NULL)
				watch_free(dw);
			inotify_rm_watch(w->ifd, wd);
			return QS_ENOMEM;
		}
		dw->wd = wd;
	} else if (!same_path(dw, dir)) {
		struct qs_path p = {NULL, 0};
		if (dir != NULL && qs_path_copy(&p, dir) != 0)
			return QS_ENOMEM;
		qs_path_release(&dw->path); /* heals a path that missed a move */
		dw->path = p;
	}
	dw->gen = w->gen;
	return 0;
}

static void watch_remove(struct qs_watch *w, struct dirwatch *dw, bool rm_kernel)
{
	if (rm_kernel)
		inotify_rm_watch(w->ifd, dw->wd);
	qs_htab_remove(&w->by_wd, wd_hash(dw->wd), wd_eq, &dw->wd);
	watch_free(dw);
}

/* Collects the watches at or below dir into a new array (caller frees). */
static struct dirwatch **watches_below(struct qs_watch *w, const struct qs_path *dir, size_t *n)
{
	struct dirwatch **v = qs_calloc(w->by_wd.count + 1, sizeof(*v));
	*n = 0;
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < w->by_wd.cap; i++) {
		struct dirwatch *dw = w->by_wd.slots[i].val;
		if (dw != NULL && at_or_below(&dw->path, dir))
			v[(*n)++] = dw;
	}
	return v;
}

/* Stops watching the directories in wds that are still watched. */
static void watches_drop_wds(struct qs_watch *w, const int *wds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct dirwatch *dw = watch_find(w, wds[i]);
		if (dw != NULL)
			watch_remove(w, dw, true);
	}
}

/* Stops watching the directories at or below dir that the current resync did not see. */
static void watches_sweep(struct qs_watch *w, const struct qs_path *dir)
{
	size_t n;
	struct dirwatch **v = watches_below(w, dir, &n);
	if (v == NULL) {
		lost_events(w, "out-of-memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i]->gen != w->gen)
			watch_remove(w, v[i], true);
	}
	qs_free(v);
}

/* Rewrites the paths of watches at or below from to the same place below to. */
static void watches_rename(struct qs_watch *w, const struct qs_path *from, const struct qs_path *to)
{
	for (size_t i = 0; i < w->by_wd.cap; i++) {
		struct dirwatch *dw = w->by_wd.slots[i].val;
		if (dw == NULL || !at_or_below(&dw->path, from))
			continue;
		struct qs_path np;
		int rc = dw->path.len == from->len
				 ? qs_path_copy(&np, to)
				 : qs_path_join(&np, to, dw->path.str + from->len + 1,
						dw->path.len - from->len - 1);
		if (rc != 0) {
			lost_events(w,
				    "rename-path"); /* too long below the new name, or no memory */
			continue;
		}
		qs_path_release(&dw->path);
		dw->path = np;
	}
}

/* ---- pending events ---- */

static struct pend *latest(struct qs_watch *w, const struct qs_path *p)
{
	void **slot = qs_htab_find(&w->by_path, path_hash(p), pend_names, p);
	return slot != NULL ? *slot : NULL;
}

static void latest_set(struct qs_watch *w, const struct qs_path *p, struct pend *node)
{
	void **slot = qs_htab_find(&w->by_path, path_hash(p), pend_names, p);
	if (slot != NULL)
		*slot = node;
	else if (qs_htab_insert(&w->by_path, path_hash(p), node) != 0)
		lost_events(w, "out-of-memory");
}

static struct pend *pend_new(struct qs_watch *w, enum pend_type type, bool is_dir)
{
	if (w->pending_overflow)
		return NULL;
	if (w->pend.n == PENDING_MAX) {
		w->pending_overflow = true;
		lost_events(w, "too-many-pending");
		return NULL;
	}
	if (w->pend.n == w->pend.cap) {
		size_t ncap = w->pend.cap == 0 ? 64 : w->pend.cap * 2;
		struct pend **nv = qs_realloc(w->pend.v, ncap * sizeof(*nv));
		if (nv == NULL) {
			lost_events(w, "out-of-memory");
			return NULL;
		}
		w->pend.v = nv;
		w->pend.cap = ncap;
	}
	struct pend *node = qs_calloc(1, sizeof(*node));
	if (node == NULL) {
		lost_events(w, "out-of-memory");
		return NULL;
	}
	node->type = type;
	node->is_dir = is_dir;
	w->pend.v[w->pend.n++] = node;
	return node;
}

static void pend_free_list(struct pend_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		qs_path_release(&l->v[i]->path);
		qs_path_release(&l->v[i]->from);
		qs_free(l->v[i]->wds);
		qs_free(l->v[i]);
	}
	qs_free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Records a change of p (closed: report without the still-being-written check). */
static void add_change(struct qs_watch *w, const struct qs_path *p, bool is_dir, bool closed)
{
	struct pend *l = latest(w, p);
	if (l != NULL && !l->dead && l->type == PEND_CHANGE) {
		l->closed = l->closed || closed;
		l->is_dir = is_dir;
		return;
	}
	struct pend *node = pend_new(w, PEND_CHANGE, is_dir);
	if (node == NULL)
		return;
	node->closed = closed;
	if (qs_path_copy(&node->path, p) != 0) {
		node->dead = true;
		lost_events(w, "out-of-memory");
		return;
	}
	latest_set(w, p, node);
}

static void add_remove(struct qs_watch *w, const struct qs_path *p, bool is_dir)
{
	struct pend *l = latest(w, p);
	if (l != NULL && !l->dead && l->type == PEND_REMOVE)
		return;
	if (l != NULL && !l->dead && l->type == PEND_CHANGE)
		l->dead = true; /* created or changed, then removed: only the removal matters */
	struct pend *node = pend_new(w, PEND_REMOVE, is_dir);
	if (node == NULL)
		return;
	if (qs_path_copy(&node->path, p) != 0) {
		node->dead = true;
		lost_events(w, "out-of-memory");
		return;
	}
	latest_set(w, p, node);
}

/* ---- walks ---- */

struct walk {
	struct qs_watch *w;
	bool report;
};

static int walk_on_dir(void *arg, const struct qs_path *dir, int fd)
{
	struct walk *c = arg;
	return watch_add(c->w, dir, fd);
}

static int walk_on_entry(void *arg, const struct qs_scan_entry *e)
{
	struct walk *c = arg;
	add_change(c->w, e->path, e->kind == QS_KIND_DIR, true);
	return 0;
}

static int walk_on_skip(void *arg, const struct qs_scan_skip *s)
{
	struct walk *c = arg;
	char buf[512];
	if (log_allowed(c->w))
		qs_info(MODULE, "event=skip path=\"%s\" reason=%d err=\"%s\"",
			log_str(buf, sizeof(buf), s->path, s->path_len), (int)s->reason,
			qs_strerror(s->err));
	return 0;
}

/* Watches every directory at or below start (NULL: the root); with report, records every
 * entry found as changed. */
static int walk(struct qs_watch *w, const struct qs_path *start, bool report)
{
	struct walk c = {w, report};
	struct qs_scan_ops ops = {walk_on_dir, report ? walk_on_entry : NULL, walk_on_skip, 0};
	w->limit_logged = false;
	int rc = qs_scan_tree(w->root_fd, start, w->ig, &ops, &c);
	if (rc == QS_ENOENT && start != NULL)
		return 0; /* gone again already: its removal event follows */
	if (rc != 0 && start != NULL)
		lost_events(w, rc == QS_EAGAIN ? "moved-during-walk" : "walk-failed");
	return rc;
}

/* Re-walks start (NULL: the root) marking every watch it finds, then drops the watches
 * below start it did not find: gone, moved away, or now ignored. */
static int resync(struct qs_watch *w, const struct qs_path *start)
{
	w->gen++;
	int rc = walk(w, start, false);
	if (rc == 0)
		watches_sweep(w, start);
	else
		w->rescan = true;
	return rc;
}

static void overflow(struct qs_watch *w)
{
	qs_warn(MODULE, "event=overflow action=rescan");
	w->rescan = true;
	resync(w, NULL);
}

/* ---- raw events ---- */

static struct pend *find_moved_from(struct qs_watch *w, uint32_t cookie)
{
	for (size_t i = w->pend.n; i-- > 0;) {
		struct pend *p = w->pend.v[i];
		if (!p->dead && p->type == PEND_MOVED_FROM && p->cookie == cookie)
			return p;
	}
	return NULL;
}

static void moved_from(struct qs_watch *w, const struct qs_path *p, bool is_dir, uint32_t cookie)
{
	struct pend *node = pend_new(w, PEND_MOVED_FROM, is_dir);
	if (node == NULL)
		return;
	node->cookie = cookie;
	if (p == NULL)
		return;
	if (qs_path_copy(&node->path, p) != 0) {
		lost_events(w, "out-of-memory");
		return;
	}
	latest_set(w, p, node);
	if (!is_dir)
		return;
	struct dirwatch **v = watches_below(w, p, &node->wd_count);
	node->wds = v != NULL ? qs_calloc(node->wd_count + 1, sizeof(int)) : NULL;
	if (node->wds == NULL) {
		node->wd_count = 0;
		lost_events(w, "out-of-memory");
	}
	for (size_t i = 0; node->wds != NULL && i < node->wd_count; i++)
		node->wds[i] = v[i]->wd;
	qs_free(v);
}

/* Events recorded between a directory's IN_MOVED_FROM and IN_MOVED_TO still name the old
 * place: point them at the new one. */
static void repath_after(struct qs_watch *w, const struct pend *f, const struct qs_path *to)
{
	size_t i = 0;
	while (i < w->pend.n && w->pend.v[i] != f)
		i++;
	for (i++; i < w->pend.n; i++) {
		struct pend *p = w->pend.v[i];
		if (p->dead || p->type != PEND_CHANGE || !qs_path_is_inside(&p->path, &f->from))
			continue;
		struct qs_path np;
		if (qs_path_join(&np, to, p->path.str + f->from.len + 1,
				 p->path.len - f->from.len - 1) != 0) {
			p->dead = true;
			continue;
		}
		qs_path_release(&p->path);
		p->path = np;
		latest_set(w, &p->path, p);
	}
}

static void moved_to(struct qs_watch *w, const struct qs_path *p, bool is_dir, uint32_t cookie)
{
	struct pend *f = find_moved_from(w, cookie);
	bool src_ok = f != NULL && path_set(&f->path);
	if (src_ok && p != NULL) { /* a move inside the root */
		struct qs_path to;
		if (qs_path_copy(&to, p) != 0) {
			lost_events(w, "out-of-memory");
			return;
		}
		f->type = PEND_RENAME;
		f->from = f->path;
		f->path = to;
		latest_set(w, p, f);
		if (is_dir) {
			watches_rename(w, &f->from, p);
			repath_after(w, f, p);
			resync(w, p); /* ignore rules may see the moved directories differently */
		}
		return;
	}
	if (src_ok) { /* moved to an ignored or invalid name: gone as far as sync goes */
		f->type = PEND_REMOVE;
		watches_drop_wds(w, f->wds, f->wd_count);
		return;
	}
	if (f != NULL)
		f->dead = true;
	if (p == NULL)
		return;
	add_change(w, p, is_dir, true); /* moved in from outside, or from an ignored name */
	if (is_dir)
		walk(w, p, true);
}

/* Handles an event without a name: about the watched directory itself. */
static void self_event(struct qs_watch *w, const struct dirwatch *dw, uint32_t mask)
{
	bool root = !path_set(&dw->path);
	if (root && (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED))) {
		if (!w->root_lost)
			qs_warn(MODULE, "event=root-lost action=pause");
		w->root_lost = true;
	} else if (mask & IN_UNMOUNT) {
		lost_events(w, "unmount-below-root");
	}
}

static void named_event(struct qs_watch *w, const struct dirwatch *dw,
			const struct inotify_event *ev)
{
	bool is_dir = (ev->mask & IN_ISDIR) != 0;
	struct qs_path p;
	int rc = qs_path_join(&p, path_set(&dw->path) ? &dw->path : NULL, ev->name,
			      strnlen(ev->name, ev->len));
	bool ok = rc == 0 && !qs_ignore_match_leaf(w->ig, &p, is_dir);
	if (rc != 0 && rc != QS_ENOMEM && log_allowed(w)) {
		char buf[512];
		qs_info(MODULE, "event=skip name=\"%s\" err=\"%s\"",
			log_str(buf, sizeof(buf), ev->name, strnlen(ev->name, ev->len)),
			qs_strerror(rc));
	} else if (rc == QS_ENOMEM) {
		lost_events(w, "out-of-memory");
	}
	if (ev->mask & IN_MOVED_FROM) {
		moved_from(w, ok ? &p : NULL, is_dir, ev->cookie);
	} else if (ev->mask & IN_MOVED_TO) {
		moved_to(w, ok ? &p : NULL, is_dir, ev->cookie);
	} else if (ok && (ev->mask & IN_DELETE)) {
		add_remove(w, &p, is_dir);
	} else if (ok && (ev->mask & IN_CREATE) && is_dir) {
		add_change(w, &p, true, true);
		walk(w, &p, true); /* it may have filled before its watch existed */
	} else if (ok && (ev->mask & (IN_CREATE | IN_CLOSE_WRITE | IN_ATTRIB))) {
		add_change(w, &p, is_dir, (ev->mask & IN_CREATE) == 0);
	}
	if (rc == 0)
		qs_path_release(&p);
}

static void handle_event(struct qs_watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		overflow(w);
		return;
	}
	struct dirwatch *dw = watch_find(w, ev->wd);
	if (dw == NULL)
		return; /* a watch we removed: its last events and IN_IGNORED */
	if (ev->len == 0 || ev->name[0] == '\0')
		self_event(w, dw, ev->mask);
	else
		named_event(w, dw, ev);
	if (ev->mask & IN_IGNORED)
		watch_remove(w, dw, false);
}

/* Reads and handles every queued event. */
static void read_events(struct qs_watch *w)
{
	for (;;) {
		ssize_t n = read(w->ifd, w->buf, sizeof(w->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			lost_events(w, "read-failed");
		if (n <= 0)
			return;
		for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
			const struct inotify_event *ev = (const void *)(w->buf + off);
			if (!w->finished)
				handle_event(w, ev);
			off += sizeof(*ev) + ev->len;
		}
	}
}

/* ---- delivery ---- */

static void flush_cb(uv_timer_t *t);

static void arm(struct qs_watch *w)
{
	bool work = w->pend.n > 0 || w->rescan || w->root_lost;
	if (work && !w->closing && !w->finished && !uv_is_active((uv_handle_t *)&w->timer))
		uv_timer_start(&w->timer, flush_cb, w->cfg.coalesce_ms, 0);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct qs_watch *w = h->data;
	(void)events;
	if (status < 0)
		lost_events(w, "poll-failed");
	read_events(w);
	arm(w);
}

/* A new regular file reported by IN_CREATE only waits for its IN_CLOSE_WRITE, unless it
 * is a hard link (it was complete when created) or no longer a regular file. */
static bool still_being_written(struct qs_watch *w, const struct qs_path *p)
{
	struct qs_path parent = {NULL, 0};
	int rc = qs_path_parent(&parent, p);
	int fd;
	if (rc == 0 || rc == QS_ENOENT)
		rc = qs_scan_open_dir(w->root_fd, rc == 0 ? &parent : NULL, &fd);
	qs_path_release(&parent);
	if (rc != 0)
		return rc == QS_ENOENT; /* gone: its removal event follows */
	size_t len;
	const char *name = qs_path_name(p, &len);
	struct stat sb;
	bool waiting = fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
		       (S_ISREG(sb.st_mode) && sb.st_nlink == 1);
	close(fd);
	return waiting;
}

static void deliver(struct qs_watch *w, struct pend *p)
{
	struct qs_watch_event ev = {QS_WATCH_CHANGED, &p->path, NULL, p->is_dir};
	switch (p->type) {
	case PEND_MOVED_FROM: /* never paired: moved out of the root */
		if (!path_set(&p->path))
			return;
		watches_drop_wds(w, p->wds, p->wd_count);
		ev.type = QS_WATCH_REMOVED;
		break;
	case PEND_CHANGE:
		if (!p->closed && still_being_written(w, &p->path))
			return;
		break;
	case PEND_REMOVE: ev.type = QS_WATCH_REMOVED; break;
	case PEND_RENAME:
		ev.type = QS_WATCH_RENAMED;
		ev.from = &p->from;
		break;
	}
	w->fn(w->arg, &ev);
}

static void flush_cb(uv_timer_t *t)
{
	struct qs_watch *w = t->data;
	read_events(w);
	if (w->pending_overflow) {
		pend_free_list(&w->pend);
		qs_htab_clear(&w->by_path);
		w->pending_overflow = false;
		overflow(w);
	}
	struct pend_list list = w->pend;
	memset(&w->pend, 0, sizeof(w->pend));
	qs_htab_clear(&w->by_path);
	bool rescan = w->rescan, lost = w->root_lost;
	w->rescan = false;
	for (size_t i = 0; i < list.n && !w->closing; i++) {
		if (!list.v[i]->dead)
			deliver(w, list.v[i]);
	}
	pend_free_list(&list);
	struct qs_watch_event ev = {QS_WATCH_RESCAN, NULL, NULL, false};
	if (rescan && !w->closing)
		w->fn(w->arg, &ev);
	if (lost && !w->closing) {
		w->finished = true;
		ev.type = QS_WATCH_ROOT_LOST;
		w->fn(w->arg, &ev);
	}
	arm(w); /* events that came while delivering */
}

/* ---- lifecycle ---- */

void qs_watch_config_default(struct qs_watch_config *c)
{
	c->coalesce_ms = QS_WATCH_COALESCE_MS_DEFAULT;
	c->max_watches = 0;
}

static void free_all(struct qs_watch *w)
{
	for (size_t i = 0; i < w->by_wd.cap; i++) {
		if (w->by_wd.slots[i].val != NULL)
			watch_free(w->by_wd.slots[i].val);
	}
	qs_htab_release(&w->by_wd);
	pend_free_list(&w->pend);
	qs_htab_release(&w->by_path);
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->root_fd >= 0)
		close(w->root_fd);
	qs_free(w);
}

static void close_cb(uv_handle_t *h)
{
	struct qs_watch *w = h->data;
	if (--w->handles_open == 0)
		free_all(w);
}

int qs_watch_new(uv_loop_t *loop, int root_fd, const struct qs_watch_config *cfg,
		 const struct qs_ignore *ig, qs_watch_fn fn, void *arg, struct qs_watch **out)
{
	struct qs_watch *w = qs_calloc(1, sizeof(*w));
	if (w == NULL)
		return QS_ENOMEM;
	int rc = 0;
	w->loop = loop;
	w->ig = ig;
	w->fn = fn;
	w->arg = arg;
	w->ifd = -1;
	if (cfg != NULL)
		w->cfg = *cfg;
	else
		qs_watch_config_default(&w->cfg);
	qs_htab_init(&w->by_wd);
	qs_htab_init(&w->by_path);
	qs_ratelimit_init(&w->log_rl, 10 * (uint64_t)1000000000, 20);
	w->root_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
	if (w->root_fd < 0) {
		rc = qs_err_from_errno(errno);
		goto out;
	}
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0) {
		rc = errno == EMFILE ? QS_ENOSPC : QS_EIO;
		goto out;
	}
	rc = walk(w, NULL, false);
	if (rc != 0)
		goto out;
	rc = uv_poll_init(loop, &w->poll, w->ifd) == 0 ? 0 : QS_EIO;
	if (rc != 0)
		goto out;
	uv_timer_init(loop, &w->timer);
	w->poll.data = w;
	w->timer.data = w;
	w->handles_open = 2;
	if (uv_poll_start(&w->poll, UV_READABLE, poll_cb) != 0) {
		qs_watch_close(w);
		return QS_EIO;
	}
	arm(w); /* the watch limit may have been hit already */
	*out = w;
	return 0;
out:
	free_all(w);
	return rc;
}

int qs_watch_set_ignore(struct qs_watch *w, const struct qs_ignore *ig)
{
	w->ig = ig;
	int rc = resync(w, NULL);
	w->rescan = true;
	arm(w);
	return rc;
}

size_t qs_watch_count(const struct qs_watch *w)
{
	return w->by_wd.count;
}

void qs_watch_simulate_overflow(struct qs_watch *w)
{
	overflow(w);
	arm(w);
}

void qs_watch_close(struct qs_watch *w)
{
	if (w->closing)
		return;
	w->closing = true;
	uv_poll_stop(&w->poll);
	uv_timer_stop(&w->timer);
	uv_close((uv_handle_t *)&w->poll, close_cb);
	uv_close((uv_handle_t *)&w->timer, close_cb);
}

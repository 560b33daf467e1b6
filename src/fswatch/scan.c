/* Tree scanner (see scan.h). One level per directory on the way down: its names and stats
 * are read into a level (arena of names + records), sorted so that the output is in byte
 * order of whole paths, and walked. Only the directory being read holds a descriptor: a
 * subdirectory is opened from its parent, the parent is closed, and on the way back it is
 * reopened through "..", checked to be the same inode, so depth costs no descriptors and a
 * directory moved during the walk is noticed (QS_EAGAIN) instead of followed. */
#include "fswatch/scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/utf8.h"

/* Kind of a record whose type the sync does not handle. */
#define KIND_OTHER 0xFF

struct rec {
	uint32_t name_off;
	uint32_t name_len;
	uint8_t kind;
	bool walk; /* a reported directory: descend at its subtree key */
	int err;   /* nonzero: stat failed with this code */
	uint64_t dev;
	struct qs_fingerprint st;
};

/* One directory's entries. keys hold (record index << 1 | subtree): the entry itself sorts
 * as its name, its contents as name + "/", which puts them where their paths belong. */
struct level {
	struct rec *recs;
	size_t count, cap;
	char *names; /* each name NUL-terminated */
	size_t names_len, names_cap;
	uint32_t *keys;
	size_t key_count;
};

struct scan {
	int root_fd;
	const struct qs_ignore *ig;
	const struct qs_scan_ops *ops;
	void *arg;
	char raw[QS_PATH_MAX + 1 + 256 + 1]; /* a refused path: parent + '/' + name */
	char target[QS_PATH_MAX + 1];
};

static uint8_t kind_of(mode_t mode)
{
	if (S_ISREG(mode))
		return QS_KIND_FILE;
	if (S_ISDIR(mode))
		return QS_KIND_DIR;
	return S_ISLNK(mode) ? QS_KIND_SYMLINK : KIND_OTHER;
}

int qs_scan_open_dir(int root_fd, const struct qs_path *dir, int *out_fd)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	long fd;
	int tries = 0;
	do {
		/* EAGAIN: a rename elsewhere raced the lookup; the kernel asks for a retry. */
		fd = syscall(SYS_openat2, root_fd, dir != NULL ? dir->str : ".", &how, sizeof(how));
	} while (fd < 0 && (errno == EINTR || errno == EAGAIN) && ++tries < 100);
	if (fd < 0)
		return errno == ELOOP || errno == EXDEV ? QS_EACCES : qs_err_from_errno(errno);
	*out_fd = (int)fd;
	return 0;
}

int qs_scan_lstat(int root_fd, const struct qs_path *p, enum qs_kind *kind,
		  struct qs_fingerprint *st)
{
	struct qs_path parent = {NULL, 0};
	int rc = qs_path_parent(&parent, p);
	if (rc != 0 && rc != QS_ENOENT)
		return rc;
	int fd;
	rc = qs_scan_open_dir(root_fd, rc == 0 ? &parent : NULL, &fd);
	qs_path_release(&parent);
	if (rc != 0)
		return rc;
	size_t name_len;
	const char *name = qs_path_name(p, &name_len); /* ends at p's NUL */
	struct stat sb;
	if (fstatat(fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
		rc = qs_err_from_errno(errno);
		goto out;
	}
	uint8_t k = kind_of(sb.st_mode);
	*kind = k == KIND_OTHER ? QS_KIND_TOMBSTONE : (enum qs_kind)k;
	qs_fingerprint_from_stat(&sb, st);
out:
	close(fd);
	return rc;
}

/* ---- reading one directory ---- */

static void level_release(struct level *lv)
{
	qs_free(lv->recs);
	qs_free(lv->names);
	qs_free(lv->keys);
}

/* Adds name with its stat (or its stat error). A name that vanished is left out. */
static int level_add(struct level *lv, int dir_fd, const char *name, size_t max_entries)
{
	struct stat sb;
	int err = 0;
	if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return 0;
		err = qs_err_from_errno(errno);
	}
	if (lv->count == max_entries)
		return QS_E2BIG;
	size_t len = strlen(name);
	int rc = qs_array_reserve((void **)&lv->recs, &lv->cap, lv->count + 1, sizeof(*lv->recs));
	if (rc == 0)
		rc = qs_array_reserve((void **)&lv->names, &lv->names_cap, lv->names_len + len + 1,
				      1);
	if (rc != 0)
		return rc;
	struct rec *r = &lv->recs[lv->count++];
	memset(r, 0, sizeof(*r));
	r->name_off = (uint32_t)lv->names_len;
	r->name_len = (uint32_t)len;
	memcpy(lv->names + lv->names_len, name, len + 1);
	lv->names_len += len + 1;
	r->err = err;
	if (err == 0) {
		r->kind = kind_of(sb.st_mode);
		r->dev = (uint64_t)sb.st_dev;
		qs_fingerprint_from_stat(&sb, &r->st);
	}
	return 0;
}

static int key_cmp(const void *a, const void *b, void *ctx)
{
	const struct level *lv = ctx;
	uint32_t ka = *(const uint32_t *)a, kb = *(const uint32_t *)b;
	const struct rec *ra = &lv->recs[ka >> 1], *rb = &lv->recs[kb >> 1];
	const unsigned char *na = (const unsigned char *)lv->names + ra->name_off;
	const unsigned char *nb = (const unsigned char *)lv->names + rb->name_off;
	size_t la = ra->name_len + (ka & 1), lb = rb->name_len + (kb & 1);
	for (size_t i = 0; i < la && i < lb; i++) {
		unsigned char ca = i < ra->name_len ? na[i] : '/';
		unsigned char cb = i < rb->name_len ? nb[i] : '/';
		if (ca != cb)
			return ca < cb ? -1 : 1;
	}
	return (la > lb) - (la < lb);
}

/* Reads the entries of dir_fd into lv and sorts their keys. Errors: QS_E2BIG (too many
 * entries), QS_ENOMEM, the mapped errno of opening or reading the directory. */
static int level_read(struct level *lv, int dir_fd, size_t max_entries)
{
	int dup_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return qs_err_from_errno(errno);
	DIR *d = fdopendir(dup_fd);
	if (d == NULL) {
		int rc = qs_err_from_errno(errno);
		close(dup_fd);
		return rc;
	}
	int rc = 0;
	rewinddir(d);
	for (;;) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (e == NULL) {
			rc = errno != 0 ? qs_err_from_errno(errno) : 0;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		rc = level_add(lv, dir_fd, e->d_name, max_entries);
		if (rc != 0)
			break;
	}
	closedir(d);
	if (rc != 0 || lv->count == 0)
		return rc;
	/* Directories that could be stat'ed get a second key for their contents. */
	lv->keys = qs_calloc(lv->count, 2 * sizeof(*lv->keys));
	if (lv->keys == NULL)
		return QS_ENOMEM;
	for (uint32_t i = 0; i < lv->count; i++) {
		lv->keys[lv->key_count++] = i << 1;
		if (lv->recs[i].kind == QS_KIND_DIR && lv->recs[i].err == 0)
			lv->keys[lv->key_count++] = i << 1 | 1;
	}
	qsort_r(lv->keys, lv->key_count, sizeof(*lv->keys), key_cmp, lv);
	return 0;
}

/* ---- reporting ---- */

static int skip_raw(struct scan *s, const struct qs_path *dir, const char *name, size_t len,
		    enum qs_scan_skip_reason reason, int err, bool is_dir)
{
	if (s->ops->on_skip == NULL)
		return 0;
	size_t off = 0;
	if (dir != NULL) {
		memcpy(s->raw, dir->str, dir->len);
		s->raw[dir->len] = '/';
		off = dir->len + 1;
	}
	size_t n = len < sizeof(s->raw) - off ? len : sizeof(s->raw) - off;
	memcpy(s->raw + off, name, n);
	struct qs_scan_skip sk = {s->raw, off + n, reason, err, is_dir};
	return s->ops->on_skip(s->arg, &sk);
}

static int skip_path(struct scan *s, const struct qs_path *p, enum qs_scan_skip_reason reason,
		     int err, bool is_dir)
{
	if (s->ops->on_skip == NULL)
		return 0;
	struct qs_scan_skip sk = {p->str, p->len, reason, err, is_dir};
	return s->ops->on_skip(s->arg, &sk);
}

/* Reports a symlink with its target, or skips it. */
static int report_link(struct scan *s, int dir_fd, const char *name, struct qs_scan_entry *e)
{
	ssize_t n = readlinkat(dir_fd, name, s->target, sizeof(s->target));
	if (n < 0) {
		if (errno == ENOENT || errno == EINVAL)
			return 0; /* gone or replaced since it was read: the watcher reports it */
		return skip_path(s, e->path, QS_SCAN_SKIP_IO, qs_err_from_errno(errno), false);
	}
	if ((size_t)n > QS_PATH_MAX)
		return skip_path(s, e->path, QS_SCAN_SKIP_TARGET, QS_EPATH_TOO_LONG, false);
	if (!qs_utf8_valid_nonul(s->target, (size_t)n))
		return skip_path(s, e->path, QS_SCAN_SKIP_TARGET, QS_EPATH_UTF8, false);
	e->target = s->target;
	e->target_len = (size_t)n;
	return s->ops->on_entry != NULL ? s->ops->on_entry(s->arg, e) : 0;
}

/* Handles the entry key of r: reports it or says why not, and marks directories to walk. */
static int visit_entry(struct scan *s, struct level *lv, struct rec *r, int dir_fd,
		       const struct qs_path *dir)
{
	const char *name = lv->names + r->name_off;
	bool is_dir = r->err == 0 && r->kind == QS_KIND_DIR;
	struct qs_path p;
	int rc = qs_path_join(&p, dir, name, r->name_len);
	if (rc == QS_ENOMEM)
		return rc;
	if (rc != 0)
		return skip_raw(s, dir, name, r->name_len, QS_SCAN_SKIP_NAME, rc, is_dir);
	if (qs_ignore_match_leaf(s->ig, &p, is_dir))
		goto out;
	if (r->err != 0) {
		rc = skip_path(s, &p, QS_SCAN_SKIP_IO, r->err, false);
		goto out;
	}
	if (r->kind == KIND_OTHER) {
		rc = skip_path(s, &p, QS_SCAN_SKIP_TYPE, 0, false);
		goto out;
	}
	struct qs_scan_entry e = {&p, (enum qs_kind)r->kind, r->st, NULL, 0};
	if (r->kind == QS_KIND_SYMLINK) {
		rc = report_link(s, dir_fd, name, &e);
		goto out;
	}
	r->walk = is_dir;
	rc = s->ops->on_entry != NULL ? s->ops->on_entry(s->arg, &e) : 0;
out:
	qs_path_release(&p);
	return rc;
}

/* ---- walking ---- */

struct dir_id {
	uint64_t dev;
	uint64_t ino;
};

static int scan_dir(struct scan *s, int *fd, const struct qs_path *dir, struct dir_id self,
		    bool is_start);

/* Opens the child of *fd named by r, closes *fd, walks the child, and reopens *fd through
 * "..", which must be the directory `self` again. */
static int descend(struct scan *s, int *fd, struct level *lv, const struct rec *r,
		   const struct qs_path *dir, struct dir_id self)
{
	const char *name = lv->names + r->name_off;
	struct qs_path p;
	int rc = qs_path_join(&p, dir, name, r->name_len); /* checked by visit_entry: ENOMEM */
	if (rc != 0)
		return rc;
	int child = openat(*fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (child < 0) {
		/* Gone, or replaced by a symlink or a file since it was read: the watcher reports
		 * that change. Anything else is an unreadable directory. */
		if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR)
			rc = skip_path(s, &p, QS_SCAN_SKIP_IO, qs_err_from_errno(errno), true);
		goto out;
	}
	struct stat sb;
	if (fstat(child, &sb) != 0 || (uint64_t)sb.st_ino != r->st.inode ||
	    (uint64_t)sb.st_dev != r->dev) {
		close(child); /* replaced by another directory since it was read */
		goto out;
	}
	close(*fd);
	*fd = -1;
	rc = scan_dir(s, &child, &p, (struct dir_id){r->dev, r->st.inode}, false);
	int parent = openat(child, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(child);
	if (parent < 0)
		rc = rc != 0 ? rc : QS_EAGAIN;
	else
		*fd = parent;
	if (parent >= 0 && (fstat(parent, &sb) != 0 || (uint64_t)sb.st_ino != self.ino ||
			    (uint64_t)sb.st_dev != self.dev))
		rc = rc != 0 ? rc : QS_EAGAIN; /* the directory moved while we were below it */
out:
	qs_path_release(&p);
	return rc;
}

/* Walks the directory open at *fd (path dir; NULL for the root). *fd may be replaced by a
 * descriptor of the same directory; the caller closes it. */
static int scan_dir(struct scan *s, int *fd, const struct qs_path *dir, struct dir_id self,
		    bool is_start)
{
	struct level lv;
	memset(&lv, 0, sizeof(lv));
	int rc = s->ops->on_dir != NULL ? s->ops->on_dir(s->arg, dir, *fd) : 0;
	if (rc != 0)
		return rc;
	size_t max =
		s->ops->max_dir_entries != 0 ? s->ops->max_dir_entries : QS_SCAN_DIR_ENTRIES_MAX;
	rc = level_read(&lv, *fd, max < QS_SCAN_DIR_ENTRIES_MAX ? max : QS_SCAN_DIR_ENTRIES_MAX);
	if (rc != 0 && rc != QS_ENOMEM && !is_start) {
		enum qs_scan_skip_reason why =
			rc == QS_E2BIG ? QS_SCAN_SKIP_LIMIT : QS_SCAN_SKIP_IO;
		rc = skip_path(s, dir, why, rc, true);
		goto out;
	}
	for (size_t k = 0; k < lv.key_count && rc == 0; k++) {
		struct rec *r = &lv.recs[lv.keys[k] >> 1];
		if ((lv.keys[k] & 1) == 0)
			rc = visit_entry(s, &lv, r, *fd, dir);
		else if (r->walk)
			rc = descend(s, fd, &lv, r, dir, self);
	}
out:
	level_release(&lv);
	return rc;
}

int qs_scan_tree(int root_fd, const struct qs_path *start, const struct qs_ignore *ig,
		 const struct qs_scan_ops *ops, void *arg)
{
	if (start != NULL && qs_ignore_match(ig, start, true))
		return 0;
	int fd;
	int rc = qs_scan_open_dir(root_fd, start, &fd);
	if (rc != 0)
		return rc;
	struct scan *s = qs_calloc(1, sizeof(*s));
	struct stat sb;
	if (s == NULL) {
		rc = QS_ENOMEM;
		goto out;
	}
	if (fstat(fd, &sb) != 0) {
		rc = qs_err_from_errno(errno);
		goto out;
	}
	s->root_fd = root_fd;
	s->ig = ig;
	s->ops = ops;
	s->arg = arg;
	rc = scan_dir(s, &fd, start, (struct dir_id){(uint64_t)sb.st_dev, (uint64_t)sb.st_ino},
		      true);
out:
	if (fd >= 0)
		close(fd);
	qs_free(s);
	return rc;
}

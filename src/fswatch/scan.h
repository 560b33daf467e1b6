/* Tree scanner (docs/fswatch.md, "Scanner"): walks a synced root, or a directory below it,
 * relative to the root's directory fd without ever following a symlink, and reports every
 * entry in byte order of its root-relative path (the order of the client index), with its
 * kind and stat fingerprint. Ignored entries are left out (and not descended into); entries
 * that cannot be synced are reported as skipped, with the reason, and the walk goes on.
 * Blocking I/O: run it on the libuv thread pool or in a test; no shared state. */
#ifndef QS_FSWATCH_SCAN_H
#define QS_FSWATCH_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/fingerprint.h"
#include "base/path.h"
#include "core/version.h"
#include "fswatch/ignore.h"

/* Default for the most entries one directory may hold; a larger one is skipped
 * (QS_SCAN_SKIP_LIMIT). */
#define QS_SCAN_DIR_ENTRIES_MAX ((size_t)1 << 20)

struct qs_scan_entry {
	const struct qs_path *path; /* borrowed for the callback */
	enum qs_kind kind;          /* QS_KIND_FILE, QS_KIND_DIR or QS_KIND_SYMLINK */
	struct qs_fingerprint st;
	/* Symlinks: the target (borrowed, not NUL-terminated): 1..QS_PATH_MAX bytes of UTF-8
	 * without NUL. It is data, never followed. NULL otherwise. */
	const char *target;
	size_t target_len;
};

enum qs_scan_skip_reason {
	QS_SCAN_SKIP_NAME = 1,   /* the path breaks a rule of base/path.h; err: its QS_EPATH_* */
	QS_SCAN_SKIP_TYPE = 2,   /* not a file, directory or symlink (fifo, socket, device) */
	QS_SCAN_SKIP_TARGET = 3, /* a symlink target that is not 1..QS_PATH_MAX bytes of
				  * UTF-8 without NUL; err: QS_EPATH_TOO_LONG or QS_EPATH_UTF8 */
	QS_SCAN_SKIP_IO = 4,     /* stat, open or read failed; err: the mapped errno */
	QS_SCAN_SKIP_LIMIT = 5,  /* a directory with more entries than the limit */
};

/* An entry that was not reported. When is_dir, nothing below it was read: what the index
 * holds there is unknown, not deleted. */
struct qs_scan_skip {
	const char *path; /* borrowed raw bytes, not validated, not NUL-terminated */
	size_t path_len;
	enum qs_scan_skip_reason reason;
	int err;
	bool is_dir;
};

/* What the walk calls, and its limit. Every callback may be NULL. A callback returning
 * nonzero stops the walk, and the walk returns that value. */
struct qs_scan_ops {
	/* A directory was opened (dir NULL for the root), before its entries are read: a
	 * watcher adds its watch here so nothing created later is missed. dir_fd is borrowed
	 * for the call. Called for the start directory, then for each directory reported. */
	int (*on_dir)(void *arg, const struct qs_path *dir, int dir_fd);
	int (*on_entry)(void *arg, const struct qs_scan_entry *e);
	int (*on_skip)(void *arg, const struct qs_scan_skip *s);
	/* Most entries per directory; 0 (or anything larger): QS_SCAN_DIR_ENTRIES_MAX. */
	size_t max_dir_entries;
};

/* Walks start (NULL: the whole root) below root_fd (borrowed; an open directory). Entries
 * come in byte order of their paths, each directory right before its contents; the start
 * directory itself is not reported. ig (borrowed; NULL: built-in rules only) is applied to
 * every entry; an ignored start gives no callbacks at all. Memory: the names of one
 * directory per level of depth; file descriptors: two at a time, whatever the depth.
 * Errors: a callback's nonzero value; QS_ENOENT (start is absent or not a directory),
 * QS_EACCES (a symlink on the way, or no permission), QS_EIO (start cannot be read),
 * QS_E2BIG (start has more entries than the limit); QS_EAGAIN (a directory
 * being walked was moved meanwhile: scan again); QS_ENOMEM. */
int qs_scan_tree(int root_fd, const struct qs_path *start, const struct qs_ignore *ig,
		 const struct qs_scan_ops *ops, void *arg);

/* Opens directory dir (NULL: the root itself) below root_fd, refusing symlinks on the way.
 * *out_fd (O_RDONLY | O_DIRECTORY | O_CLOEXEC) is written only on success; the caller
 * closes it. Errors: QS_ENOENT (absent, or a component is not a directory), QS_EACCES (a
 * symlink on the way, or no permission), QS_EIO. */
int qs_scan_open_dir(int root_fd, const struct qs_path *dir, int *out_fd);

/* Stats path p below root_fd without following symlinks (p's last component included).
 * Writes *kind (QS_KIND_FILE, QS_KIND_DIR, QS_KIND_SYMLINK, or QS_KIND_TOMBSTONE for any
 * other type) and *st only on success. Errors: QS_ENOENT (absent), those of
 * qs_scan_open_dir for its parent. */
int qs_scan_lstat(int root_fd, const struct qs_path *p, enum qs_kind *kind,
		  struct qs_fingerprint *st);

#endif

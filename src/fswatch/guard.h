/* Guards against mass loss (docs/fswatch.md, "Mass-loss guard"). A root whose folder is
 * gone or unmounted must be paused, never read as "everything was deleted": the client
 * keeps a marker file in each root's state directory and checks it before trusting a scan.
 * And a scan that would delete a large share of a root's files pauses the root until the
 * user confirms. Marker functions do blocking I/O (run them on the thread pool); the
 * threshold is a pure function. */
#ifndef QS_FSWATCH_GUARD_H
#define QS_FSWATCH_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The marker: QS_IGNORE_STATE_DIR "/" QS_GUARD_MARKER_NAME, holding the caller's identity
 * bytes for the root (for example its server root id), at most QS_GUARD_MARKER_MAX. */
#define QS_GUARD_MARKER_NAME "root-id"
#define QS_GUARD_MARKER_MAX 1024

/* Creates the state directory if needed (0700) and writes the marker atomically (temp file,
 * fsync, rename, fsync of the directory), replacing an older one. root_fd and id are
 * borrowed. Errors: QS_EINVAL (len is 0 or above QS_GUARD_MARKER_MAX), QS_EACCES (the
 * state directory is a symlink or not writable), QS_ENOSPC, QS_EIO. */
int qs_guard_marker_write(int root_fd, const void *id, size_t len);

/* Checks that the marker below root_fd holds exactly id. Errors: QS_ENOENT (no marker or
 * no state directory: the folder is not the root it was, e.g. an empty mount point),
 * QS_ECONFLICT (a marker of another root), QS_EACCES (the state directory or the marker is a
 * symlink), QS_EINVAL (bad len), QS_EIO. */
int qs_guard_marker_check(int root_fd, const void *id, size_t len);

/* The deletion threshold: a scan that would delete at least min_files files and more than
 * max_percent percent of the root's indexed files is paused. */
struct qs_guard_limits {
	uint32_t max_percent; /* 0..100 */
	uint64_t min_files;
};

#define QS_GUARD_MAX_PERCENT_DEFAULT 50
#define QS_GUARD_MIN_FILES_DEFAULT 100

void qs_guard_limits_default(struct qs_guard_limits *l);

/* True if deleting `deleted` of `indexed` files needs the user's confirmation. */
bool qs_guard_mass_delete(const struct qs_guard_limits *l, uint64_t indexed, uint64_t deleted);

#endif

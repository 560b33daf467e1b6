/* Single-instance locks of the daemons: "<dir>/<prog>.lock", an advisory flock(2) held for
 * the daemon's whole life, holding its pid as text for messages. The kernel drops the lock
 * when the process ends however it ends, so a crash never leaves a stale lock. The descriptor
 * is close-on-exec and passes to a forked child (the same lock). Thread-safe (no shared
 * state). */
#ifndef QS_CLI_LOCK_H
#define QS_CLI_LOCK_H

#include <stdbool.h>

/* The lock file's path for prog in dir: a heap string the caller frees with qs_free, or NULL
 * when memory runs out. */
char *qs_lock_path(const char *dir, const char *prog);

/* Opens or creates path (mode 0600, never through a symlink), takes the lock without waiting
 * and writes pid into the file. On success *fd holds the lock until it is closed. Errors:
 * QS_EAGAIN (another process holds it: *holder is its pid, 0 if the file does not say),
 * QS_EACCES, QS_ENOENT, QS_EIO. *fd and *holder are written only as said. */
int qs_lock_acquire(const char *path, long pid, int *fd, long *holder);

/* Writes pid into the locked file (after a fork, the child's). Errors: QS_EIO. */
int qs_lock_set_pid(int fd, long pid);

/* True if some process holds the lock on path (a missing file is not held); *holder gets
 * its pid when known, else 0. */
bool qs_lock_held(const char *path, long *holder);

#endif

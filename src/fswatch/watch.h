/* Watcher (docs/fswatch.md, "Watcher"): inotify over a whole synced root on a libuv loop,
 * directories created later included. Raw inotify events become few, meaningful events:
 * bursts are coalesced over a short window, file content is reported once it is closed after
 * writing, a move inside the root is one rename (a directory with all it holds included),
 * a move out of or into the root is a removal or a creation, and lost events (queue overflow,
 * watch limit) become one "rescan needed". Ignored paths are never reported.
 *
 * Events are hints, not facts: the daemon re-stats each path when it handles the event, and
 * after RESCAN compares a full scan with its index. Start the watcher before the start-up
 * scan, so that nothing changed in between is missed.
 *
 * Threading: every function runs on the loop thread; callbacks run there too. */
#ifndef QS_FSWATCH_WATCH_H
#define QS_FSWATCH_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/path.h"
#include "fswatch/ignore.h"

#define QS_WATCH_COALESCE_MS_DEFAULT 5

struct qs_watch_config {
	/* Events are held this long after the first one of a batch, then delivered together,
	 * each path once (a burst of writes to one file is one event). */
	uint32_t coalesce_ms;
	/* At most this many directories are watched (0: only the kernel's limit,
	 * fs.inotify.max_user_watches). Past either limit the watcher reports RESCAN. */
	size_t max_watches;
};

void qs_watch_config_default(struct qs_watch_config *c);

enum qs_watch_type {
	/* The path was created or changed (content closed after writing, mode, mtime), or a
	 * directory appeared with it (every entry found in a new directory is reported). */
	QS_WATCH_CHANGED = 1,
	/* The path was removed or moved out of the root (or to an ignored name). */
	QS_WATCH_REMOVED = 2,
	/* from was moved to path, both inside the root; for a directory, everything below it
	 * moved along without further events. Entries below a moved directory whose ignore
	 * status differs under the new name are the daemon's to reconcile (scan the subtree). */
	QS_WATCH_RENAMED = 3,
	/* Events were lost (queue overflow, watch limit, a directory moved during a walk): the
	 * daemon must compare a full scan with its index. */
	QS_WATCH_RESCAN = 4,
	/* The root directory itself was deleted, moved or unmounted: pause the root (check the
	 * marker, docs/fswatch.md "Mass-loss guard"); this watcher reports nothing more. */
	QS_WATCH_ROOT_LOST = 5,
};

struct qs_watch_event {
	enum qs_watch_type type;
	const struct qs_path
		*path; /* CHANGED, REMOVED: the path; RENAMED: the new path; else NULL */
	const struct qs_path *from; /* RENAMED: the old path; else NULL */
	bool is_dir;
};

/* Receives one event; ev and its paths are borrowed for the call. The callback may call
 * qs_watch_set_ignore or qs_watch_close (then no further event is delivered). */
typedef void (*qs_watch_fn)(void *arg, const struct qs_watch_event *ev);

struct qs_watch;

/* Starts watching the directory root_fd (borrowed; duplicated, so the caller may close its
 * own) and everything below it that ig (borrowed, NULL: built-in rules only) does not
 * ignore; ig must stay valid until replaced or the watcher is closed. Every directory is
 * watched before this returns (a blocking walk of the tree). Hitting the watch limit is not
 * an error: it is logged and reported as RESCAN. *out is written only on success; on error
 * fn never runs. Errors: QS_EIO (no inotify, or /proc is not mounted), QS_ENOSPC (the
 * inotify instance limit), QS_ENOENT / QS_EACCES (the root cannot be read), QS_EAGAIN (a
 * directory moved during the walk: try again), QS_ENOMEM. */
int qs_watch_new(uv_loop_t *loop, int root_fd, const struct qs_watch_config *cfg,
		 const struct qs_ignore *ig, qs_watch_fn fn, void *arg, struct qs_watch **out);

/* Replaces the ignore rules (after the daemon re-read .quicsignore): directories now
 * ignored are no longer watched, newly visible ones are, and RESCAN is reported so the
 * daemon reconciles entries whose status changed. Errors: QS_ENOMEM, QS_EAGAIN (the tree
 * moved during the walk; RESCAN is reported anyway). */
int qs_watch_set_ignore(struct qs_watch *w, const struct qs_ignore *ig);

/* Number of directories watched now (for status pages and tests). */
size_t qs_watch_count(const struct qs_watch *w);

/* Test hook: handles a queue overflow exactly as if the kernel had reported IN_Q_OVERFLOW
 * (an unprivileged test cannot lower fs.inotify.max_queued_events). */
void qs_watch_simulate_overflow(struct qs_watch *w);

/* Stops watching. No event is delivered after this call; w is freed once the loop has run
 * its handles' close callbacks (uv_run the loop to let that happen). */
void qs_watch_close(struct qs_watch *w);

#endif

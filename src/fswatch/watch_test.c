/* Integration tests for the watcher on real files in a temp dir: create, write, append,
 * truncate, delete, chmod, symlink, hard link; a file held open is not reported until it is
 * closed; renames of a file and of a directory with 100 files (one event, and the moved
 * directory still watched); moves out of and into the root; "mkdir -p" filled before its
 * watch existed; a burst of writes as one event; ignore rules and built-in names; a
 * simulated queue overflow and the watch limit (RESCAN and a log line); new ignore rules;
 * the root itself moved away. File operations are done while the loop is not running, so
 * the kernel queues them all before the watcher reads: what is coalesced does not depend on
 * timing. Tests wait for the events they expect with a generous timeout and never bound the
 * latency; "nothing else" is checked over a short settling period after that. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/log.h"
#include "fswatch/fstest.h"
#include "fswatch/watch.h"

#define EVENTS_MAX 4096
#define WAIT_MS 20000 /* generous: a loaded CI machine is slow, never this slow */
#define SETTLE_MS 150 /* after the expected events: time for unexpected ones to show */
#define WINDOW_MS 10

struct tw {
	uv_loop_t loop;
	uv_timer_t timer;
	bool timed_out;
	struct qs_watch *w;
	struct qs_ignore *ig;
	char root[FST_PATH_MAX];
	char *ev[EVENTS_MAX];
	size_t n;
};

static const char *type_name(enum qs_watch_type t)
{
	switch (t) {
	case QS_WATCH_CHANGED: return "changed";
	case QS_WATCH_REMOVED: return "removed";
	case QS_WATCH_RENAMED: return "renamed";
	case QS_WATCH_RESCAN: return "rescan";
	case QS_WATCH_ROOT_LOST: return "root-lost";
	}
	return "?";
}

static void on_event(void *arg, const struct qs_watch_event *e)
{
	struct tw *t = arg;
	char line[FST_PATH_MAX];
	if (e->type == QS_WATCH_RENAMED)
		snprintf(line, sizeof(line), "renamed%s %s -> %s", e->is_dir ? "/" : "",
			 e->from->str, e->path->str);
	else if (e->path != NULL)
		snprintf(line, sizeof(line), "%s%s %s", type_name(e->type), e->is_dir ? "/" : "",
			 e->path->str);
	else
		snprintf(line, sizeof(line), "%s", type_name(e->type));
	assert_true(t->n < EVENTS_MAX);
	t->ev[t->n++] = strdup(line);
	/* The flush may run at the start of a UV_RUN_ONCE iteration, which would then block in
	 * poll until the next timer (the 20 s timeout): stop, so the waiter looks at once. */
	uv_stop(&t->loop);
}

/* Sets up a loop, an empty temp root and the rules (NULL: none). */
static void tw_start(struct tw *t, const char *rules)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(uv_loop_init(&t->loop), 0);
	assert_int_equal(uv_timer_init(&t->loop, &t->timer), 0);
	t->timer.data = t;
	fst_root(t->root);
	if (rules != NULL)
		assert_int_equal(qs_ignore_parse(rules, strlen(rules), &t->ig, NULL), 0);
}

/* Starts the watcher on t->root (already filled by the test). */
static void tw_watch(struct tw *t, size_t max_watches)
{
	struct qs_watch_config cfg;
	qs_watch_config_default(&cfg);
	cfg.coalesce_ms = WINDOW_MS;
	cfg.max_watches = max_watches;
	int fd = fst_open_root(t->root);
	assert_int_equal(qs_watch_new(&t->loop, fd, &cfg, t->ig, on_event, t, &t->w), 0);
	close(fd); /* the watcher keeps its own descriptor */
}

static void on_timeout(uv_timer_t *h)
{
	((struct tw *)h->data)->timed_out = true;
}

static size_t count_of(const struct tw *t, const char *want)
{
	size_t c = 0;
	for (size_t i = 0; i < t->n; i++)
		c += strcmp(t->ev[i], want) == 0;
	return c;
}

/* Runs the loop until every wanted event arrived (as a multiset) or WAIT_MS passed. */
static bool tw_wait(struct tw *t, const char *const *want, size_t n)
{
	t->timed_out = false;
	uv_timer_start(&t->timer, on_timeout, WAIT_MS, 0);
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < n && all; i++) {
			size_t need = 0;
			for (size_t j = 0; j < n; j++)
				need += strcmp(want[i], want[j]) == 0;
			all = count_of(t, want[i]) >= need;
		}
		if (all || t->timed_out)
			break;
		uv_run(&t->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&t->timer);
	return !t->timed_out;
}

static void tw_run_for(struct tw *t, uint64_t ms)
{
	t->timed_out = false;
	uv_timer_start(&t->timer, on_timeout, ms, 0);
	while (!t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
}

static void tw_dump(const struct tw *t, const char *const *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  wanted %zu: %s\n", i, want[i]);
	for (size_t i = 0; i < t->n; i++)
		fprintf(stderr, "  event %zu: %s\n", i, t->ev[i]);
}

static void tw_clear(struct tw *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->ev[i]);
	t->n = 0;
}

/* Waits for exactly these events (any order), lets the watcher settle, and checks that
 * nothing else came; then forgets them. */
static void tw_expect(struct tw *t, const char *const *want, size_t n)
{
	if (!tw_wait(t, want, n)) {
		tw_dump(t, want, n);
		fail_msg("timed out waiting for %zu events", n);
	}
	tw_run_for(t, SETTLE_MS);
	if (t->n != n) {
		tw_dump(t, want, n);
		fail_msg("got %zu events, want %zu", t->n, n);
	}
	tw_clear(t);
}

/* Same, in this exact order. */
static void tw_expect_seq(struct tw *t, const char *const *want, size_t n)
{
	if (!tw_wait(t, want, n)) {
		tw_dump(t, want, n);
		fail_msg("timed out waiting for %zu events", n);
	}
	tw_run_for(t, SETTLE_MS);
	for (size_t i = 0; i < n || i < t->n; i++) {
		if (i >= n || i >= t->n || strcmp(t->ev[i], want[i]) != 0) {
			tw_dump(t, want, n);
			fail_msg("event %zu differs (want \"%s\")", i, i < n ? want[i] : "none");
		}
	}
	tw_clear(t);
}

static void tw_expect_none(struct tw *t)
{
	tw_run_for(t, SETTLE_MS);
	if (t->n != 0) {
		tw_dump(t, NULL, 0);
		fail_msg("got %zu events, want none", t->n);
	}
}

static void tw_stop(struct tw *t)
{
	if (t->w != NULL)
		qs_watch_close(t->w);
	uv_close((uv_handle_t *)&t->timer, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT); /* runs the close callbacks, which free the watcher */
	assert_int_equal(uv_loop_close(&t->loop), 0);
	tw_clear(t);
	qs_ignore_free(t->ig);
	fst_rm_tree(t->root);
}

#define EXPECT(t, ...)                                                                             \
	do {                                                                                       \
		static const char *const want_[] = {__VA_ARGS__};                                  \
		tw_expect(t, want_, sizeof(want_) / sizeof(want_[0]));                             \
	} while (0)

#define EXPECT_SEQ(t, ...)                                                                         \
	do {                                                                                       \
		static const char *const want_[] = {__VA_ARGS__};                                  \
		tw_expect_seq(t, want_, sizeof(want_) / sizeof(want_[0]));                         \
	} while (0)

static void test_file_lifecycle(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	tw_watch(&t, 0);
	fst_put(t.root, "f", "hello");
	EXPECT(&t, "changed f"); /* IN_CREATE + IN_CLOSE_WRITE: one event */
	fst_put(t.root, "f", "rewritten");
	EXPECT(&t, "changed f");
	fst_write(t.root, "f", "+more", 5, O_APPEND);
	EXPECT(&t, "changed f");
	fst_write(t.root, "f", "", 0, O_TRUNC); /* truncation to 0 by open(O_TRUNC) */
	EXPECT(&t, "changed f");
	char p[FST_PATH_MAX];
	int fd = open(fst_join(p, t.root, "f"), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3), 0); /* truncation of an open file, reported at close */
	assert_int_equal(close(fd), 0);
	EXPECT(&t, "changed f");
	assert_int_equal(chmod(p, 0600), 0);
	EXPECT(&t, "changed f");
	fst_unlink(t.root, "f");
	EXPECT(&t, "removed f");
	/* Created and removed within one window: only the removal. */
	fst_put(t.root, "brief", "x");
	fst_unlink(t.root, "brief");
	EXPECT(&t, "removed brief");
	tw_stop(&t);
}

/* Content is reported only once the writer closes the file. */
static void test_open_file_waits_for_close(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	tw_watch(&t, 0);
	char p[FST_PATH_MAX];
	int fd = open(fst_join(p, t.root, "big"), O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "part", 4), 4);
	tw_run_for(&t, 10 * WINDOW_MS); /* many windows pass while it is open */
	assert_int_equal(write(fd, "rest", 4), 4);
	tw_expect_none(&t);
	assert_int_equal(close(fd), 0);
	EXPECT(&t, "changed big");
	tw_stop(&t);
}

/* Links: a symlink is reported when created (no close follows); so is a hard link, whose
 * content was complete when it appeared. */
static void test_links(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	fst_put(t.root, "target", "data");
	tw_watch(&t, 0);
	fst_symlink("target", t.root, "soft");
	char a[FST_PATH_MAX], b[FST_PATH_MAX];
	assert_int_equal(link(fst_join(a, t.root, "target"), fst_join(b, t.root, "hard")), 0);
	EXPECT(&t, "changed soft", "changed hard");
	tw_stop(&t);
}

static void test_burst_is_one_event(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	tw_watch(&t, 0);
	/* Interleaved, so the kernel cannot merge repeats: the watcher coalesces them. */
	for (int i = 0; i < 100; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		fst_write(t.root, "log", line, (size_t)n, O_APPEND);
		fst_put(t.root, "other", line);
	}
	EXPECT(&t, "changed log", "changed other");
	tw_stop(&t);
}

static void test_rename_file(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	fst_put(t.root, "a", "content");
	fst_mkdir(t.root, "sub");
	tw_watch(&t, 0);
	fst_rename(t.root, "a", "b");
	EXPECT(&t, "renamed a -> b");
	fst_rename(t.root, "b", "sub/c");
	EXPECT(&t, "renamed b -> sub/c");
	tw_stop(&t);
}

/* A directory of 100 files renamed: one event, and the watches below follow it. */
static void test_rename_dir(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	fst_mkdir(t.root, "d");
	fst_mkdir(t.root, "d/inner");
	for (int i = 0; i < 100; i++) {
		char name[32];
		snprintf(name, sizeof(name), "d/f%03d", i);
		fst_put(t.root, name, "x");
	}
	tw_watch(&t, 0);
	assert_int_equal(qs_watch_count(t.w), 3);
	fst_rename(t.root, "d", "e");
	EXPECT(&t, "renamed/ d -> e");
	fst_put(t.root, "e/f000", "changed");
	fst_put(t.root, "e/inner/new", "n");
	EXPECT(&t, "changed e/f000", "changed e/inner/new");
	assert_int_equal(qs_watch_count(t.w), 3);
	tw_stop(&t);
}

/* Moves across the root's edge: out is a removal (and the directory's watches go), in is a
 * creation of the directory and of everything inside it. */
static void test_move_out_and_in(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	char outside[FST_PATH_MAX], a[FST_PATH_MAX], b[FST_PATH_MAX];
	fst_root(outside);
	fst_mkdir(t.root, "leaving");
	fst_put(t.root, "leaving/x", "x");
	fst_put(t.root, "f", "f");
	fst_mkdir(outside, "arriving");
	fst_mkdir(outside, "arriving/sub");
	fst_put(outside, "arriving/sub/y", "y");
	tw_watch(&t, 0);
	assert_int_equal(qs_watch_count(t.w), 2);
	assert_int_equal(rename(fst_join(a, t.root, "leaving"), fst_join(b, outside, "leaving")),
			 0);
	assert_int_equal(rename(fst_join(a, t.root, "f"), fst_join(b, outside, "f")), 0);
	EXPECT(&t, "removed/ leaving", "removed f");
	assert_int_equal(qs_watch_count(t.w), 1);
	/* Writes in the directory that left are not reported under its old name. */
	fst_put(outside, "leaving/x", "changed outside");
	tw_expect_none(&t);
	assert_int_equal(rename(fst_join(a, outside, "arriving"), fst_join(b, t.root, "arriving")),
			 0);
	EXPECT(&t, "changed/ arriving", "changed/ arriving/sub", "changed arriving/sub/y");
	assert_int_equal(qs_watch_count(t.w), 3);
	fst_put(t.root, "arriving/sub/z", "z");
	EXPECT(&t, "changed arriving/sub/z");
	/* Out, and a new directory of the same name at once: the old one's watch goes, the new
	 * one's stays. */
	assert_int_equal(rename(fst_join(a, t.root, "arriving"), fst_join(b, outside, "again")), 0);
	fst_mkdir(t.root, "arriving");
	fst_put(t.root, "arriving/new", "n");
	EXPECT_SEQ(&t, "removed/ arriving", "changed/ arriving", "changed arriving/new");
	assert_int_equal(qs_watch_count(t.w), 2);
	fst_put(t.root, "arriving/new2", "n");
	EXPECT(&t, "changed arriving/new2");
	fst_rm_tree(outside);
	tw_stop(&t);
}

/* "mkdir -p a/b/c && touch a/b/c/f" before the watcher reads anything: the watch on "a" did
 * not exist when "b" was made, yet everything is reported and watched. */
static void test_mkdir_p_race(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	tw_watch(&t, 0);
	fst_mkdir(t.root, "a");
	fst_mkdir(t.root, "a/b");
	fst_mkdir(t.root, "a/b/c");
	fst_put(t.root, "a/b/c/f", "f");
	EXPECT_SEQ(&t, "changed/ a", "changed/ a/b", "changed/ a/b/c", "changed a/b/c/f");
	assert_int_equal(qs_watch_count(t.w), 4);
	fst_put(t.root, "a/b/c/g", "g");
	EXPECT(&t, "changed a/b/c/g");
	tw_stop(&t);
}

static void test_delete_tree(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	fst_mkdir(t.root, "d");
	fst_mkdir(t.root, "d/e");
	fst_put(t.root, "d/e/x", "x");
	fst_put(t.root, "d/y", "y");
	tw_watch(&t, 0);
	char p[FST_PATH_MAX];
	fst_rm_tree(fst_join(p, t.root, "d"));
	EXPECT(&t, "removed d/e/x", "removed/ d/e", "removed d/y", "removed/ d");
	assert_int_equal(qs_watch_count(t.w), 1);
	tw_stop(&t);
}

static void test_ignore_rules(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, "*.tmp\nbuild/\n");
	fst_mkdir(t.root, "build");
	fst_put(t.root, "a.tmp", "a");
	tw_watch(&t, 0);
	assert_int_equal(qs_watch_count(t.w), 1); /* "build" is not watched */
	fst_put(t.root, "x.tmp", "x");
	fst_put(t.root, "build/out", "o");
	fst_mkdir(t.root, "build/deeper");
	fst_put(t.root, ".quics-tmp-1234", "client temp file");
	fst_mkdir(t.root, ".quics");
	fst_put(t.root, ".quics/root-id", "1");
	fst_put(t.root, "ok.txt", "ok");
	EXPECT(&t, "changed ok.txt");
	/* Renamed to an ignored name: removed; from an ignored name: created. */
	fst_rename(t.root, "ok.txt", "ok.tmp");
	EXPECT(&t, "removed ok.txt");
	fst_rename(t.root, "a.tmp", "a.txt");
	EXPECT(&t, "changed a.txt");
	/* A temp file renamed over its target, as the client installs a received file. */
	fst_put(t.root, ".quics-tmp-99", "new content");
	fst_rename(t.root, ".quics-tmp-99", "a.txt");
	EXPECT(&t, "changed a.txt");
	tw_stop(&t);
}

/* New rules: directories that become visible are watched, newly ignored ones are not, and
 * RESCAN tells the daemon to reconcile. */
static void test_set_ignore(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, "hidden/\n");
	fst_mkdir(t.root, "hidden");
	fst_mkdir(t.root, "hidden/sub");
	fst_mkdir(t.root, "shown");
	tw_watch(&t, 0);
	assert_int_equal(qs_watch_count(t.w), 2);
	struct qs_ignore *next;
	assert_int_equal(qs_ignore_parse("shown/\n", 7, &next, NULL), 0);
	assert_int_equal(qs_watch_set_ignore(t.w, next), 0);
	qs_ignore_free(t.ig);
	t.ig = next;
	assert_int_equal(qs_watch_count(t.w), 3); /* root, hidden, hidden/sub */
	EXPECT(&t, "rescan");
	fst_put(t.root, "hidden/sub/now-seen", "x");
	fst_put(t.root, "shown/now-ignored", "x");
	EXPECT(&t, "changed hidden/sub/now-seen");
	tw_stop(&t);
}

struct captured {
	char lines[64][256];
	size_t n;
};

static struct captured captured;

static void capture_log(enum qs_log_level level, const char *line, void *arg)
{
	(void)level;
	(void)arg;
	if (captured.n < 64)
		snprintf(captured.lines[captured.n++], sizeof(captured.lines[0]), "%s", line);
}

static bool logged(const char *needle)
{
	for (size_t i = 0; i < captured.n; i++) {
		if (strstr(captured.lines[i], needle) != NULL)
			return true;
	}
	return false;
}

/* A queue overflow (simulated: an unprivileged test cannot shrink the kernel's queue) is
 * one RESCAN and a log line; the watches are rebuilt, including a directory whose creation
 * event was "lost". */
static void test_overflow(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	fst_mkdir(t.root, "d");
	tw_watch(&t, 0);
	memset(&captured, 0, sizeof(captured));
	qs_log_set_sink(capture_log, NULL);
	/* "late" is made while the watcher is not reading; the overflow's rebuild, which runs
	 * before the watcher reads that creation, already watches it. */
	fst_mkdir(t.root, "late");
	qs_watch_simulate_overflow(t.w);
	qs_log_set_sink(NULL, NULL);
	assert_true(logged("event=overflow action=rescan"));
	assert_int_equal(qs_watch_count(t.w), 3);
	EXPECT(&t, "rescan", "changed/ late");
	fst_put(t.root, "d/after", "x");
	EXPECT(&t, "changed d/after");
	tw_stop(&t);
}

/* The watch limit (here max_watches; the kernel's gives ENOSPC the same way): the watcher
 * still starts, reports RESCAN and logs it. */
static void test_watch_limit(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "d%d", i);
		fst_mkdir(t.root, name);
	}
	memset(&captured, 0, sizeof(captured));
	qs_log_set_sink(capture_log, NULL);
	tw_watch(&t, 3);
	qs_log_set_sink(NULL, NULL);
	assert_int_equal(qs_watch_count(t.w), 3);
	assert_true(logged("event=watch-limit"));
	EXPECT(&t, "rescan");
	/* A new directory past the limit: reported, and RESCAN again for what it may hold. */
	memset(&captured, 0, sizeof(captured));
	qs_log_set_sink(capture_log, NULL);
	fst_mkdir(t.root, "d9");
	EXPECT(&t, "changed/ d9", "rescan");
	qs_log_set_sink(NULL, NULL);
	assert_true(logged("event=watch-limit"));
	tw_stop(&t);
}

/* The root itself moved away (or deleted, or unmounted): ROOT_LOST, then silence. */
static void test_root_lost(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	tw_watch(&t, 0);
	char moved[FST_PATH_MAX + 8];
	snprintf(moved, sizeof(moved), "%s.gone", t.root);
	assert_int_equal(rename(t.root, moved), 0);
	EXPECT(&t, "root-lost");
	fst_put(moved, "late", "x");
	tw_expect_none(&t);
	assert_int_equal(rename(moved, t.root), 0);
	tw_stop(&t);
}

/* Closing from inside the callback stops delivery at once. */
static void close_on_first(void *arg, const struct qs_watch_event *e)
{
	struct tw *t = arg;
	on_event(arg, e);
	qs_watch_close(t->w);
	t->w = NULL;
}

static void test_close_in_callback(void **state)
{
	(void)state;
	struct tw t;
	tw_start(&t, NULL);
	int fd = fst_open_root(t.root);
	assert_int_equal(qs_watch_new(&t.loop, fd, NULL, NULL, close_on_first, &t, &t.w), 0);
	close(fd);
	fst_put(t.root, "a", "1");
	fst_put(t.root, "b", "2");
	static const char *const first[] = {"changed a"};
	assert_true(tw_wait(&t, first, 1));
	tw_run_for(&t, SETTLE_MS);
	assert_int_equal(t.n, 1);
	tw_stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_lifecycle),
		cmocka_unit_test(test_open_file_waits_for_close),
		cmocka_unit_test(test_links),
		cmocka_unit_test(test_burst_is_one_event),
		cmocka_unit_test(test_rename_file),
		cmocka_unit_test(test_rename_dir),
		cmocka_unit_test(test_move_out_and_in),
		cmocka_unit_test(test_mkdir_p_race),
		cmocka_unit_test(test_delete_tree),
		cmocka_unit_test(test_ignore_rules),
		cmocka_unit_test(test_set_ignore),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_watch_limit),
		cmocka_unit_test(test_root_lost),
		cmocka_unit_test(test_close_in_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

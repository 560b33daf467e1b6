/* Tests for the tree scanner on real files: the exact report of a tree holding files, dirs,
 * symlinks (never followed), a fifo, refused names and ignored entries, in byte order of
 * whole paths; fingerprints equal to lstat's; a subtree start; the per-directory limit at
 * limit and limit+1; an unreadable directory skipped, not fatal; depth costing no file
 * descriptors; a directory moved during the walk; callbacks stopping the walk; and the
 * safe open/lstat helpers refusing symlinks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "base/err.h"
#include "fswatch/fstest.h"
#include "fswatch/scan.h"

#define LINES_MAX 4096

/* Every callback appends one line, "<what> <path>", so a walk is compared as text. */
struct log {
	char *lines[LINES_MAX];
	size_t n;
	int stop_at; /* on_entry returns 77 at this line index; -1: never */
	const char *root;
	const char *move_at; /* when this path is reported, rename move_from to move_to */
	const char *move_from, *move_to;
};

static void log_add(struct log *l, const char *what, const char *p, size_t len)
{
	assert_true(l->n < LINES_MAX);
	size_t wl = strlen(what);
	char *s = malloc(wl + 1 + len + 1);
	assert_non_null(s);
	memcpy(s, what, wl);
	s[wl] = ' ';
	memcpy(s + wl + 1, p, len);
	s[wl + 1 + len] = '\0';
	l->lines[l->n++] = s;
}

static void log_release(struct log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->lines[i]);
	l->n = 0;
}

static int on_dir(void *arg, const struct qs_path *dir, int fd)
{
	assert_true(fd >= 0);
	log_add(arg, "open", dir != NULL ? dir->str : "/", dir != NULL ? dir->len : 1);
	return 0;
}

static int on_entry(void *arg, const struct qs_scan_entry *e)
{
	struct log *l = arg;
	static const char *const kinds[] = {"?", "file", "dir", "link"};
	char what[FST_PATH_MAX];
	int n = snprintf(what, sizeof(what), "%s", kinds[e->kind]);
	if (e->kind == QS_KIND_SYMLINK)
		n = snprintf(what, sizeof(what), "link(%.*s)", (int)e->target_len, e->target);
	assert_true(n > 0);
	if (l->stop_at >= 0 && (size_t)l->stop_at == l->n)
		return 77;
	/* The fingerprint is lstat's. */
	struct stat sb;
	char full[FST_PATH_MAX];
	assert_int_equal(lstat(fst_join(full, l->root, e->path->str), &sb), 0);
	struct qs_fingerprint want;
	qs_fingerprint_from_stat(&sb, &want);
	assert_int_equal(want.size, e->st.size);
	assert_int_equal(want.mtime_ns, e->st.mtime_ns);
	assert_int_equal(want.ctime_ns, e->st.ctime_ns);
	assert_int_equal(want.inode, e->st.inode);
	assert_int_equal(want.mode, e->st.mode);
	log_add(l, what, e->path->str, e->path->len);
	if (l->move_at != NULL && strcmp(l->move_at, e->path->str) == 0)
		fst_rename(l->root, l->move_from, l->move_to);
	return 0;
}

static int on_skip(void *arg, const struct qs_scan_skip *s)
{
	char what[64];
	snprintf(what, sizeof(what), "skip%d%s(%d)", (int)s->reason, s->is_dir ? "d" : "", s->err);
	log_add(arg, what, s->path, s->path_len);
	return 0;
}

static const struct qs_scan_ops all_ops = {on_dir, on_entry, on_skip, 0};

static void expect_lines(const struct log *l, const char *const *want, size_t n)
{
	for (size_t i = 0; i < l->n || i < n; i++) {
		const char *got = i < l->n ? l->lines[i] : "(none)";
		const char *w = i < n ? want[i] : "(none)";
		if (strcmp(got, w) != 0)
			fail_msg("line %zu: got \"%s\", want \"%s\"", i, got, w);
	}
}

static void log_init(struct log *l, const char *root)
{
	memset(l, 0, sizeof(*l));
	l->stop_at = -1;
	l->root = root;
}

static void test_tree(void **state)
{
	(void)state;
	char root[FST_PATH_MAX], p[FST_PATH_MAX];
	fst_root(root);
	/* "a", "a.txt", "a-b" and "a/..." are ordered as whole paths: '-' < '.' < '/'. */
	fst_mkdir(root, "a");
	fst_put(root, "a/z", "zz");
	fst_mkdir(root, "a/b");
	fst_put(root, "a/b/c", "c");
	fst_put(root, "a.txt", "text");
	fst_put(root, "a-b", "");
	fst_mkdir(root, "empty");
	fst_symlink("/etc/passwd", root, "abs-link");
	fst_symlink("a", root, "dir-link"); /* a link to a directory: not followed */
	fst_symlink("nowhere", root, "dangling");
	assert_int_equal(mkfifo(fst_join(p, root, "fifo"), 0644), 0);
	fst_put(root, "bad\nname", "x");
	fst_put(root, "bad\xff", "x");
	fst_mkdir(root, "bad\x01"
			"dir");
	fst_put(root,
		"bad\x01"
		"dir/inner",
		"never read");
	fst_put(root, "caf\xc3\xa9", "utf-8 names are fine");
	fst_mkdir(root, ".quics");
	fst_put(root, ".quics/root-id", "1");
	fst_put(root, "a/.quics-tmp-123", "temp");
	fst_mkdir(root, "build");
	fst_put(root, "build/out.o", "o");
	fst_put(root, "x.o", "o");
	fst_put(root, "keep.o", "o");

	const char *rules = "*.o\n!keep.o\nbuild/\n";
	struct qs_ignore *ig;
	assert_int_equal(qs_ignore_parse(rules, strlen(rules), &ig, NULL), 0);
	struct log l;
	log_init(&l, root);
	int fd = fst_open_root(root);
	assert_int_equal(qs_scan_tree(fd, NULL, ig, &all_ops, &l), 0);
	static const char *const expected[] = {
		"open /",
		"dir a",
		"file a-b",
		"file a.txt",
		"open a",
		"dir a/b",
		"open a/b",
		"file a/b/c",
		"file a/z",
		"link(/etc/passwd) abs-link",
		("skip1d(-50) bad\x01"
		 "dir"), /* split so that \x01 is not read as \x01d */
		"skip1(-50) bad\nname",
		"skip1(-44) bad\xff",
		"file caf\xc3\xa9",
		"link(nowhere) dangling",
		"link(a) dir-link",
		"dir empty",
		"open empty",
		"skip2(0) fifo",
		"file keep.o",
	};
	expect_lines(&l, expected, sizeof(expected) / sizeof(expected[0]));
	/* Whole paths come in strictly increasing byte order. */
	const char *prev = NULL;
	for (size_t i = 0; i < l.n; i++) {
		const char *path = strchr(l.lines[i], ' ') + 1;
		if (strncmp(l.lines[i], "open ", 5) == 0)
			continue;
		if (prev != NULL && strcmp(prev, path) >= 0)
			fail_msg("out of order: \"%s\" after \"%s\"", path, prev);
		prev = path;
	}
	log_release(&l);

	/* A subtree: only what is below the start, which itself is not reported. */
	struct qs_path start;
	assert_int_equal(qs_path_init(&start, "a", 1), 0);
	log_init(&l, root);
	assert_int_equal(qs_scan_tree(fd, &start, ig, &all_ops, &l), 0);
	static const char *const sub[] = {"open a", "dir a/b", "open a/b", "file a/b/c",
					  "file a/z"};
	expect_lines(&l, sub, sizeof(sub) / sizeof(sub[0]));
	log_release(&l);
	qs_path_release(&start);

	/* An ignored start gives nothing; a start that is a symlink is refused. */
	assert_int_equal(qs_path_init(&start, "build", 5), 0);
	log_init(&l, root);
	assert_int_equal(qs_scan_tree(fd, &start, ig, &all_ops, &l), 0);
	assert_int_equal(l.n, 0);
	qs_path_release(&start);
	assert_int_equal(qs_path_init(&start, "dir-link", 8), 0);
	assert_int_equal(qs_scan_tree(fd, &start, ig, &all_ops, &l), QS_EACCES);
	assert_int_equal(l.n, 0);
	qs_path_release(&start);
	assert_int_equal(qs_path_init(&start, "missing", 7), 0);
	assert_int_equal(qs_scan_tree(fd, &start, ig, &all_ops, &l), QS_ENOENT);
	qs_path_release(&start);

	close(fd);
	qs_ignore_free(ig);
	fst_rm_tree(root);
}

/* max_dir_entries: a directory at the limit is read, one above it is skipped (as a
 * directory whose contents are unknown), and a start above it is an error. */
static void test_dir_limit(void **state)
{
	(void)state;
	char root[FST_PATH_MAX];
	fst_root(root);
	fst_mkdir(root, "big");
	for (int i = 0; i < 5; i++) {
		char name[32];
		snprintf(name, sizeof(name), "big/f%d", i);
		fst_put(root, name, "x");
	}
	int fd = fst_open_root(root);
	struct log l;
	log_init(&l, root);
	struct qs_scan_ops ops = all_ops;
	ops.max_dir_entries = 5;
	assert_int_equal(qs_scan_tree(fd, NULL, NULL, &ops, &l), 0);
	assert_int_equal(l.n, 1 + 2 + 5); /* open /, dir big, open big, 5 files */
	log_release(&l);
	ops.max_dir_entries = 4;
	assert_int_equal(qs_scan_tree(fd, NULL, NULL, &ops, &l), 0);
	static const char *const want[] = {"open /", "dir big", "open big", "skip5d(-3) big"};
	expect_lines(&l, want, 4);
	log_release(&l);
	struct qs_path big;
	assert_int_equal(qs_path_init(&big, "big", 3), 0);
	assert_int_equal(qs_scan_tree(fd, &big, NULL, &ops, &l), QS_E2BIG);
	log_release(&l);
	qs_path_release(&big);
	close(fd);
	fst_rm_tree(root);
}

/* An unreadable directory is reported as skipped and the walk goes on. Root reads
 * anything, so as root the walk runs in a child that drops to an unprivileged user. */
static void test_unreadable_dir(void **state)
{
	(void)state;
	char root[FST_PATH_MAX], p[FST_PATH_MAX];
	fst_root(root);
	assert_int_equal(chmod(root, 0755), 0);
	fst_mkdir(root, "locked");
	fst_put(root, "locked/secret", "x");
	fst_put(root, "open", "x");
	assert_int_equal(chmod(fst_join(p, root, "locked"), 0), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(2);
		int fd = fst_open_root(root);
		struct log l;
		log_init(&l, root);
		struct qs_scan_ops ops = {NULL, NULL, on_skip, 0};
		int rc = qs_scan_tree(fd, NULL, NULL, &ops, &l);
		bool ok = rc == 0 && l.n == 1 && strcmp(l.lines[0], "skip4d(-15) locked") == 0;
		if (!ok)
			fprintf(stderr, "rc %d, %zu lines, first: %s\n", rc, l.n,
				l.n ? l.lines[0] : "");
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(chmod(fst_join(p, root, "locked"), 0755), 0);
	fst_rm_tree(root);
}

/* 300 levels deep with only 16 descriptors allowed: the walk holds two at a time. */
static void test_depth_costs_no_fds(void **state)
{
	(void)state;
	char root[FST_PATH_MAX], rel[FST_PATH_MAX] = "";
	fst_root(root);
	const int depth = 300;
	for (int i = 0; i < depth; i++) {
		strncat(rel, i == 0 ? "d" : "/d", sizeof(rel) - strlen(rel) - 1);
		fst_mkdir(root, rel);
	}
	strncat(rel, "/leaf", sizeof(rel) - strlen(rel) - 1);
	fst_put(root, rel, "bottom");
	int fd = fst_open_root(root);
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 16;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	struct log l;
	log_init(&l, root);
	struct qs_scan_ops ops = {NULL, on_entry, on_skip, 0};
	int rc = qs_scan_tree(fd, NULL, NULL, &ops, &l);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(l.n, (size_t)depth + 1);
	assert_string_equal(l.lines[l.n - 1] + strlen(l.lines[l.n - 1]) - 5, "/leaf");
	log_release(&l);
	close(fd);
	fst_rm_tree(root);
}

/* A directory moved elsewhere while the walk is below it: QS_EAGAIN, not a wrong tree. */
static void test_moved_during_walk(void **state)
{
	(void)state;
	char root[FST_PATH_MAX];
	fst_root(root);
	fst_mkdir(root, "m");
	fst_mkdir(root, "m/b");
	fst_put(root, "m/b/f", "x");
	fst_mkdir(root, "c");
	int fd = fst_open_root(root);
	struct log l;
	log_init(&l, root);
	l.move_at = "m/b/f";
	l.move_from = "m/b";
	l.move_to = "c/b";
	struct qs_scan_ops ops = {NULL, on_entry, on_skip, 0};
	assert_int_equal(qs_scan_tree(fd, NULL, NULL, &ops, &l), QS_EAGAIN);
	log_release(&l);
	/* Moving the directory being walked within its own parent is harmless. */
	log_init(&l, root);
	l.move_at = "c/b/f";
	l.move_from = "c/b";
	l.move_to = "c/b2";
	assert_int_equal(qs_scan_tree(fd, NULL, NULL, &ops, &l), 0);
	log_release(&l);
	close(fd);
	fst_rm_tree(root);
}

static void test_callback_stops(void **state)
{
	(void)state;
	char root[FST_PATH_MAX];
	fst_root(root);
	fst_put(root, "a", "1");
	fst_put(root, "b", "2");
	fst_put(root, "c", "3");
	int fd = fst_open_root(root);
	struct log l;
	log_init(&l, root);
	l.stop_at = 1;
	struct qs_scan_ops ops = {NULL, on_entry, NULL, 0};
	assert_int_equal(qs_scan_tree(fd, NULL, NULL, &ops, &l), 77);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.lines[0], "file a");
	log_release(&l);
	close(fd);
	fst_rm_tree(root);
}

static void expect_lstat(int fd, const char *path, int rc, enum qs_kind kind)
{
	struct qs_path p;
	assert_int_equal(qs_path_init(&p, path, strlen(path)), 0);
	enum qs_kind k = (enum qs_kind)99;
	struct qs_fingerprint st;
	memset(&st, 0xAB, sizeof(st));
	assert_int_equal(qs_scan_lstat(fd, &p, &k, &st), rc);
	if (rc == 0) {
		assert_int_equal(k, kind);
		assert_true(st.inode != 0);
	} else {
		assert_int_equal(k, 99); /* out-params untouched on error */
	}
	qs_path_release(&p);
}

static void test_lstat_and_open_dir(void **state)
{
	(void)state;
	char root[FST_PATH_MAX], p[FST_PATH_MAX];
	fst_root(root);
	fst_mkdir(root, "d");
	fst_put(root, "d/f", "x");
	fst_symlink("d", root, "ld");
	assert_int_equal(mkfifo(fst_join(p, root, "fifo"), 0644), 0);
	int fd = fst_open_root(root);
	expect_lstat(fd, "d", 0, QS_KIND_DIR);
	expect_lstat(fd, "d/f", 0, QS_KIND_FILE);
	expect_lstat(fd, "ld", 0, QS_KIND_SYMLINK);
	expect_lstat(fd, "fifo", 0, QS_KIND_TOMBSTONE);
	expect_lstat(fd, "missing", QS_ENOENT, 0);
	expect_lstat(fd, "d/missing", QS_ENOENT, 0);
	expect_lstat(fd, "ld/f", QS_EACCES, 0);  /* through a symlink */
	expect_lstat(fd, "d/f/x", QS_ENOENT, 0); /* through a file */
	struct qs_path ld;
	assert_int_equal(qs_path_init(&ld, "ld", 2), 0);
	int dfd = 12345;
	assert_int_equal(qs_scan_open_dir(fd, &ld, &dfd), QS_EACCES);
	assert_int_equal(dfd, 12345);
	qs_path_release(&ld);
	assert_int_equal(qs_scan_open_dir(fd, NULL, &dfd), 0);
	close(dfd);
	close(fd);
	fst_rm_tree(root);
}

/* A file dated in the year 3000 gets a saturated, not an overflowed, nanosecond time. */
static void test_far_future_mtime(void **state)
{
	(void)state;
	struct stat sb;
	memset(&sb, 0, sizeof(sb));
	sb.st_mtim.tv_sec = (time_t)32503680000;
	sb.st_ctim.tv_sec = 2;
	sb.st_ctim.tv_nsec = 7;
	struct qs_fingerprint st;
	qs_fingerprint_from_stat(&sb, &st);
	assert_int_equal(st.mtime_ns, INT64_MAX);
	assert_int_equal(st.ctime_ns, 2000000007);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_dir_limit),
		cmocka_unit_test(test_unreadable_dir),
		cmocka_unit_test(test_depth_costs_no_fds),
		cmocka_unit_test(test_moved_during_walk),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_lstat_and_open_dir),
		cmocka_unit_test(test_far_future_mtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

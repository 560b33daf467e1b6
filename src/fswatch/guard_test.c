/* Tests for the mass-loss guard: the marker written, checked, refused when missing (an
 * empty mount point), foreign, or reached through a symlink, rewritten atomically; its
 * size limit at limit and limit+1; and the deletion threshold at its edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "fswatch/fstest.h"
#include "fswatch/guard.h"

static void test_marker(void **state)
{
	(void)state;
	char root[FST_PATH_MAX], p[FST_PATH_MAX];
	fst_root(root);
	int fd = fst_open_root(root);
	const char *id = "root 42";
	/* A fresh folder has no marker: it is not (yet) the root. */
	assert_int_equal(qs_guard_marker_check(fd, id, strlen(id)), QS_ENOENT);
	assert_int_equal(qs_guard_marker_write(fd, id, strlen(id)), 0);
	assert_int_equal(qs_guard_marker_check(fd, id, strlen(id)), 0);
	/* Another root's marker, and a prefix of ours, are not ours. */
	assert_int_equal(qs_guard_marker_check(fd, "root 43", 7), QS_ECONFLICT);
	assert_int_equal(qs_guard_marker_check(fd, "root 4", 6), QS_ECONFLICT);
	/* The state directory is private and no temp file is left behind. */
	struct stat sb;
	assert_int_equal(stat(fst_join(p, root, ".quics"), &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(fst_join(p, root, ".quics/.quics-tmp-marker"), &sb), -1);
	/* Rewriting replaces it. */
	assert_int_equal(qs_guard_marker_write(fd, "root 43", 7), 0);
	assert_int_equal(qs_guard_marker_check(fd, "root 43", 7), 0);
	assert_int_equal(qs_guard_marker_check(fd, id, strlen(id)), QS_ECONFLICT);
	/* The marker gone (folder emptied or unmounted) is ENOENT, never "all deleted". */
	fst_unlink(root, ".quics/root-id");
	assert_int_equal(qs_guard_marker_check(fd, "root 43", 7), QS_ENOENT);
	assert_int_equal(rmdir(fst_join(p, root, ".quics")), 0);
	assert_int_equal(qs_guard_marker_check(fd, "root 43", 7), QS_ENOENT);
	close(fd);
	fst_rm_tree(root);
}

static void test_marker_symlinks(void **state)
{
	(void)state;
	char root[FST_PATH_MAX], other[FST_PATH_MAX];
	fst_root(root);
	fst_root(other);
	int ofd = fst_open_root(other);
	assert_int_equal(qs_guard_marker_write(ofd, "x", 1), 0);
	close(ofd);
	/* A state directory that is a symlink to another root's is refused, for both calls. */
	char target[FST_PATH_MAX];
	fst_symlink(fst_join(target, other, ".quics"), root, ".quics");
	int fd = fst_open_root(root);
	assert_int_equal(qs_guard_marker_check(fd, "x", 1), QS_EACCES);
	assert_int_equal(qs_guard_marker_write(fd, "x", 1), QS_EACCES);
	fst_unlink(root, ".quics");
	/* So is a marker that is a symlink. */
	fst_mkdir(root, ".quics");
	fst_symlink(fst_join(target, other, ".quics/root-id"), root, ".quics/root-id");
	assert_int_equal(qs_guard_marker_check(fd, "x", 1), QS_EACCES);
	close(fd);
	fst_rm_tree(root);
	fst_rm_tree(other);
}

static void test_marker_limit(void **state)
{
	(void)state;
	char root[FST_PATH_MAX];
	fst_root(root);
	int fd = fst_open_root(root);
	char id[QS_GUARD_MARKER_MAX + 1];
	memset(id, 'i', sizeof(id));
	assert_int_equal(qs_guard_marker_write(fd, id, QS_GUARD_MARKER_MAX), 0);
	assert_int_equal(qs_guard_marker_check(fd, id, QS_GUARD_MARKER_MAX), 0);
	assert_int_equal(qs_guard_marker_write(fd, id, QS_GUARD_MARKER_MAX + 1), QS_EINVAL);
	assert_int_equal(qs_guard_marker_check(fd, id, QS_GUARD_MARKER_MAX + 1), QS_EINVAL);
	assert_int_equal(qs_guard_marker_write(fd, id, 0), QS_EINVAL);
	/* A marker file grown past the limit on disk is not ours either. */
	fst_write(root, ".quics/root-id", id, sizeof(id), O_TRUNC);
	assert_int_equal(qs_guard_marker_check(fd, id, QS_GUARD_MARKER_MAX), QS_ECONFLICT);
	close(fd);
	fst_rm_tree(root);
}

static void test_threshold(void **state)
{
	(void)state;
	struct qs_guard_limits l;
	qs_guard_limits_default(&l);
	assert_int_equal(l.max_percent, 50);
	assert_int_equal(l.min_files, 100);
	static const struct {
		uint64_t indexed, deleted;
		bool pause;
	} cases[] = {
		{0, 0, false},
		{10, 10, false}, /* everything, but fewer than 100 */
		{199, 99, false},
		{200, 100, false}, /* exactly half is not more than half */
		{199, 100, true},
		{100, 100, true}, /* at least 100 and more than half */
		{1000, 499, false},
		{1000, 501, true},
		{1000000, 500001, true},
		{UINT64_MAX, UINT64_MAX, true}, /* no overflow */
		{UINT64_MAX, UINT64_MAX / 2, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (qs_guard_mass_delete(&l, cases[i].indexed, cases[i].deleted) != cases[i].pause)
			fail_msg("case %zu", i);
	}
	l.max_percent = 0;
	l.min_files = 1;
	assert_true(qs_guard_mass_delete(&l, 1000, 1));
	assert_false(qs_guard_mass_delete(&l, 1000, 0));
	l.max_percent = 100;
	assert_false(qs_guard_mass_delete(&l, 1000, 1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marker),
		cmocka_unit_test(test_marker_symlinks),
		cmocka_unit_test(test_marker_limit),
		cmocka_unit_test(test_threshold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Verify-and-repair of received files that were not durable at an unclean stop, on real
 * files in a temporary directory: an intact file stays, a truncated, corrupted or missing one
 * is reported damaged and removed, a directory or symlink now at the path is left alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "client/localfile.h"
#include "client/repair.h"

static char root[256];
static int root_fd;

static void write_file(const char *rel, const char *data, size_t len)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static bool exists(const char *rel)
{
	struct stat st;
	return fstatat(root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The content identity of rel as it is now (what the index recorded when received). */
static struct qs_content content_of(const char *rel)
{
	struct qs_localfile f;
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, rel, &f), 0);
	assert_int_equal(f.kind, QS_KIND_FILE);
	struct qs_content c = f.content;
	qs_localfile_release(&f);
	return c;
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/qs-repair-XXXXXX");
	assert_non_null(mkdtemp(root));
	root_fd = open(root, O_RDONLY | O_DIRECTORY);
	return root_fd >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	close(root_fd);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_intact_stays(void **state)
{
	(void)state;
	assert_int_equal(mkdirat(root_fd, "d", 0755), 0);
	write_file("d/ok.txt", "received and intact\n", 20);
	struct qs_content want = content_of("d/ok.txt");
	enum qic_repair_verdict v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "d/ok.txt", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_INTACT);
	assert_true(exists("d/ok.txt"));
}

static void test_damaged_is_removed(void **state)
{
	(void)state;
	static const char data[] = "0123456789abcdefghij";
	write_file("cut.bin", data, 20);
	write_file("bad.bin", data, 20);
	struct qs_content want = content_of("cut.bin");
	/* A torn write: the tail never reached the disk. */
	int fd = openat(root_fd, "cut.bin", O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 7), 0);
	close(fd);
	/* Same size, other bytes (a block of garbage). */
	write_file("bad.bin", "0123456789abcdefghiX", 20);
	enum qic_repair_verdict v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "cut.bin", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_DAMAGED);
	assert_false(exists("cut.bin"));
	v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "bad.bin", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_DAMAGED);
	assert_false(exists("bad.bin"));
	/* Lost altogether (its rename never reached the disk), also in a lost directory. */
	v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "gone.bin", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_DAMAGED);
	v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "nodir/gone.bin", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_DAMAGED);
}

static void test_other_kinds_left_alone(void **state)
{
	(void)state;
	write_file("f", "x", 1);
	struct qs_content want = content_of("f");
	assert_int_equal(unlinkat(root_fd, "f", 0), 0);
	assert_int_equal(mkdirat(root_fd, "f", 0755), 0);
	enum qic_repair_verdict v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "f", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_OTHER);
	assert_true(exists("f"));
	assert_int_equal(symlinkat("elsewhere", root_fd, "l"), 0);
	v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "l", &want, &v), 0);
	assert_int_equal(v, QIC_REPAIR_OTHER);
	assert_true(exists("l"));
	/* Never through a symlinked directory: refused, nothing removed behind it. */
	assert_int_equal(mkdirat(root_fd, "real", 0755), 0);
	write_file("real/x", "zz", 2);
	assert_int_equal(symlinkat("real", root_fd, "link"), 0);
	v = 0;
	assert_int_equal(qic_repair_verify(root_fd, "link/x", &want, &v), QS_EACCES);
	assert_int_equal(v, 0);
	assert_true(exists("real/x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_intact_stays, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_is_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_kinds_left_alone, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

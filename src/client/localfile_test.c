/* Local files beneath a root: hashing, refusing symlinks and escapes, reading chunks back,
 * and installing received files without ever overwriting a user's change. Real files in a
 * temporary directory. */
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
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "client/localfile.h"

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

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/qs-localfile-XXXXXX");
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

static void test_hash_file_dir_symlink_absent(void **state)
{
	(void)state;
	write_file("a.txt", "hello", 5);
	struct qs_localfile f;
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "a.txt", &f), 0);
	assert_int_equal(f.kind, QS_KIND_FILE);
	assert_int_equal(f.size, 5);
	assert_int_equal(f.manifest.count, 1);
	struct qs_content first = f.content;
	qs_localfile_release(&f);
	/* Same size, different bytes: different content. */
	write_file("a.txt", "jello", 5);
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "a.txt", &f), 0);
	assert_false(qs_content_equal(&first, &f.content));
	qs_localfile_release(&f);
	/* A chmod is a content change too. */
	char p[512];
	snprintf(p, sizeof(p), "%s/a.txt", root);
	write_file("a.txt", "hello", 5);
	assert_int_equal(chmod(p, 0700), 0);
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "a.txt", &f), 0);
	assert_false(qs_content_equal(&first, &f.content));
	qs_localfile_release(&f);

	snprintf(p, sizeof(p), "%s/d", root);
	assert_int_equal(mkdir(p, 0755), 0);
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "d", &f), 0);
	assert_int_equal(f.kind, QS_KIND_DIR);
	qs_localfile_release(&f);

	snprintf(p, sizeof(p), "%s/link", root);
	assert_int_equal(symlink("/etc", p), 0);
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "link", &f), 0);
	assert_int_equal(f.kind, QS_KIND_SYMLINK);
	assert_string_equal(f.target, "/etc");
	qs_localfile_release(&f);

	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "missing/x", &f), 0);
	assert_int_equal(f.kind, QS_KIND_TOMBSTONE);
	qs_localfile_release(&f);
}

static void test_never_through_symlinks(void **state)
{
	(void)state;
	char p[512];
	snprintf(p, sizeof(p), "%s/esc", root);
	assert_int_equal(symlink("/etc", p), 0);
	int fd = -1;
	/* Reading or creating through a symlinked directory is refused. */
	assert_int_equal(qs_localfile_open(root_fd, "esc/passwd", O_RDONLY, &fd), QS_EACCES);
	struct qs_localfile_writer w;
	assert_int_equal(qs_localfile_writer_open(&w, root_fd, "esc/new"), QS_EACCES);
	assert_int_equal(qs_localfile_open(root_fd, "../etc/passwd", O_RDONLY, &fd), QS_EACCES);
	/* Installing over a symlink replaces the link itself, never writes through it. */
	assert_int_equal(qs_localfile_writer_open(&w, root_fd, "esc"), 0);
	assert_int_equal(qs_localfile_writer_append(&w, "x", 1), 0);
	struct qs_fingerprint got;
	assert_int_equal(qs_localfile_install(&w, 0644, 0, false, NULL, &got), QS_ECONFLICT);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
}

static void test_install_and_conflict(void **state)
{
	(void)state;
	struct qs_localfile_writer w;
	struct qs_fingerprint fp1, fp2;
	assert_int_equal(qs_localfile_writer_open(&w, root_fd, "new.bin"), 0);
	assert_int_equal(qs_localfile_writer_append(&w, "version one", 11), 0);
	assert_int_equal(qs_localfile_install(&w, 0640, 1000000000LL, true, NULL, &fp1), 0);
	char p[512];
	snprintf(p, sizeof(p), "%s/new.bin", root);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_size, 11);
	/* An update based on fp1 installs. */
	assert_int_equal(qs_localfile_writer_open(&w, root_fd, "new.bin"), 0);
	assert_int_equal(qs_localfile_writer_append(&w, "version two", 11), 0);
	assert_int_equal(qs_localfile_install(&w, 0640, 0, false, &fp1, &fp2), 0);
	/* The user edits the file (same size, same second); an update based on fp2 must not
	 * overwrite it. */
	write_file("new.bin", "USER EDIT!!", 11);
	assert_int_equal(qs_localfile_writer_open(&w, root_fd, "new.bin"), 0);
	assert_int_equal(qs_localfile_writer_append(&w, "version 3!!", 11), 0);
	struct qs_fingerprint fp3;
	assert_int_equal(qs_localfile_install(&w, 0640, 0, false, &fp2, &fp3), QS_ECONFLICT);
	char buf[16] = {0};
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf), f), 11);
	fclose(f);
	assert_string_equal(buf, "USER EDIT!!");
	/* No temp file is left behind. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -q '%s'", root, QS_LOCALFILE_TMP_PREFIX);
	assert_int_not_equal(system(cmd), 0);
}

static void test_read_chunk_checks_hash(void **state)
{
	(void)state;
	write_file("c.txt", "0123456789", 10);
	struct qs_localfile f;
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "c.txt", &f), 0);
	uint8_t buf[10];
	assert_int_equal(
		qs_localfile_read_chunk(root_fd, "c.txt", 0, 10, f.manifest.chunks[0].sha256, buf),
		0);
	assert_memory_equal(buf, "0123456789", 10);
	write_file("c.txt", "9876543210", 10);
	assert_int_equal(
		qs_localfile_read_chunk(root_fd, "c.txt", 0, 10, f.manifest.chunks[0].sha256, buf),
		QS_ECONFLICT);
	qs_localfile_release(&f);
}

static void test_part_file_resume(void **state)
{
	(void)state;
	uint8_t content[QS_CONTENT_HASH_LEN] = {1, 2, 3};
	uint8_t h[QS_SHA256_LEN], buf[16];
	struct qs_localfile_writer w;
	uint64_t have = 99;
	assert_int_equal(qs_localfile_writer_resume(&w, root_fd, "p.bin", content, &have), 0);
	assert_int_equal(have, 0);
	assert_int_equal(qs_localfile_writer_append(&w, "0123456789", 10), 0);
	qs_localfile_writer_suspend(&w);
	/* Another version of the same path has another part file. */
	uint8_t other[QS_CONTENT_HASH_LEN] = {9};
	assert_int_equal(qs_localfile_writer_resume(&w, root_fd, "p.bin", other, &have), 0);
	assert_int_equal(have, 0);
	qs_localfile_writer_abort(&w);
	/* The same version finds what was written; verify checks bytes and length. */
	assert_int_equal(qs_localfile_writer_resume(&w, root_fd, "p.bin", content, &have), 0);
	assert_int_equal(have, 10);
	assert_int_equal(qs_sha256("0123", 4, h), 0);
	assert_int_equal(qs_localfile_writer_verify(&w, 0, 4, h, buf), 0);
	assert_int_equal(qs_localfile_writer_verify(&w, 1, 4, h, buf), QS_ECONFLICT);
	assert_int_equal(qs_sha256("89ab", 4, h), 0);
	assert_int_equal(qs_localfile_writer_verify(&w, 8, 4, h, buf), QS_ECONFLICT);
	assert_int_equal(qs_localfile_writer_truncate(&w, 4), 0);
	assert_int_equal(qs_localfile_writer_append(&w, "ab", 2), 0);
	assert_false(qs_localfile_part_is_stale(root_fd, w.tmp_name, 3600));
	/* Age is judged from the part file's mtime: two hours back is stale after an hour. The
	 * clock the kernel stamps files with can be a second ahead of time(), so "now" is never
	 * compared against a zero or negative age here. */
	struct timespec old_times[2] = {{.tv_sec = time(NULL) - 7200, .tv_nsec = 0},
					{.tv_sec = time(NULL) - 7200, .tv_nsec = 0}};
	assert_int_equal(utimensat(root_fd, w.tmp_name, old_times, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(qs_localfile_part_is_stale(root_fd, w.tmp_name, 3600));
	assert_false(qs_localfile_part_is_stale(root_fd, w.tmp_name, 3 * 3600));
	struct qs_fingerprint fp;
	assert_int_equal(qs_localfile_install(&w, 0644, 0, false, NULL, &fp), 0);
	char got[16] = {0};
	int fd = openat(root_fd, "p.bin", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got)), 6);
	close(fd);
	assert_memory_equal(got, "0123ab", 6);
}

static void test_read_upload_checks_fingerprint(void **state)
{
	(void)state;
	write_file("u.bin", "abcdefgh", 8);
	struct qs_localfile f;
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "u.bin", &f), 0);
	uint8_t buf[8];
	assert_int_equal(qs_localfile_read_upload(root_fd, "u.bin", 2, 4, &f.fp, buf), 0);
	assert_memory_equal(buf, "cdef", 4);
	/* Past the end: the file is shorter than the manifest says. */
	assert_int_equal(qs_localfile_read_upload(root_fd, "u.bin", 6, 4, &f.fp, buf),
			 QS_ECONFLICT);
	struct timespec later[2] = {{0, UTIME_OMIT}, {12345, 0}};
	assert_int_equal(utimensat(root_fd, "u.bin", later, 0), 0);
	assert_int_equal(qs_localfile_read_upload(root_fd, "u.bin", 2, 4, &f.fp, buf),
			 QS_ECONFLICT);
	qs_localfile_release(&f);
}

static void test_writer_copy_checks_fingerprint(void **state)
{
	(void)state;
	write_file("old.bin", "0123456789", 10);
	struct qs_localfile f;
	qs_localfile_init(&f);
	assert_int_equal(qs_localfile_hash(root_fd, "old.bin", &f), 0);
	struct qs_localfile_writer w;
	uint8_t buf[16];
	assert_int_equal(qs_localfile_writer_open(&w, root_fd, "new.bin"), 0);
	assert_int_equal(qs_localfile_writer_copy(&w, root_fd, "old.bin", 6, 4, &f.fp, buf), 0);
	assert_int_equal(qs_localfile_writer_copy(&w, root_fd, "old.bin", 0, 2, &f.fp, buf), 0);
	assert_int_equal(w.written, 6);
	/* Past the end of the old file, or after it changed: refused. */
	assert_int_equal(qs_localfile_writer_copy(&w, root_fd, "old.bin", 8, 4, &f.fp, buf),
			 QS_ECONFLICT);
	struct timespec later[2] = {{0, UTIME_OMIT}, {12345, 0}};
	assert_int_equal(utimensat(root_fd, "old.bin", later, 0), 0);
	assert_int_equal(qs_localfile_writer_copy(&w, root_fd, "old.bin", 0, 2, &f.fp, buf),
			 QS_ECONFLICT);
	struct qs_fingerprint fp;
	assert_int_equal(qs_localfile_writer_truncate(&w, 6), 0);
	assert_int_equal(qs_localfile_install(&w, 0644, 0, false, NULL, &fp), 0);
	char got[16] = {0};
	int fd = openat(root_fd, "new.bin", O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got)), 6);
	close(fd);
	assert_memory_equal(got, "678901", 6);
	qs_localfile_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hash_file_dir_symlink_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_through_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_install_and_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_chunk_checks_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_part_file_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_upload_checks_fingerprint, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_writer_copy_checks_fingerprint, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the XDG locations and the daemon endpoint file: resolution from the environment,
 * private directories, the file's round trip, its mode whatever the umask, atomic replacement,
 * and the refusals of a reader (permissions, owner checks via symlinks, FIFOs, size, content). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/dirs.h"
#include "cli/endpoint.h"

static const uint8_t token_bytes[32] = {0x00, 0x01, 0x02, 0xab, 0xcd, 0xef, 0x10, 0xff,
					0x5a, 0xa5, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
					0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
					0xf0, 0x0f, 0x80, 0x08, 0x7f, 0xf7, 0x42, 0x24};

struct tmp {
	char dir[64];
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/qs-endpoint-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	*state = t;
	return 0;
}

static void remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		chmod(path, 0700);
		DIR *d = opendir(path);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[512];
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			remove_tree(sub);
		}
		if (d != NULL)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	remove_tree(t->dir);
	free(t);
	return 0;
}

static char *path_in(const struct tmp *t, const char *name)
{
	static char p[256];
	snprintf(p, sizeof(p), "%s/%s", t->dir, name);
	return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static size_t entries(const char *dir)
{
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- dirs ------------------------------------------------------------------------------- */

static void set_env(const char *name, const char *value)
{
	if (value == NULL)
		unsetenv(name);
	else
		setenv(name, value, 1);
}

static void test_dirs_resolution(void **state)
{
	(void)state;
	static const struct {
		const char *home, *xdg_config, *xdg_data;
		int rc;
		const char *config, *data;
	} cases[] = {
		{"/home/u", NULL, NULL, 0, "/home/u/.config/quics", "/home/u/.local/share/quics"},
		{"/home/u/", NULL, NULL, 0, "/home/u/.config/quics", "/home/u/.local/share/quics"},
		{"/home/u", "/x/cfg", "/x/data", 0, "/x/cfg/quics", "/x/data/quics"},
		{"/home/u", "/x/cfg/", "", 0, "/x/cfg/quics", "/home/u/.local/share/quics"},
		{"/home/u", "relative/cfg", "rel", 0, "/home/u/.config/quics",
		 "/home/u/.local/share/quics"},
		{NULL, "/x/cfg", "/x/data", 0, "/x/cfg/quics", "/x/data/quics"},
		{NULL, NULL, NULL, QS_ENOENT, NULL, NULL},
		{"", NULL, NULL, QS_ENOENT, NULL, NULL},
		{"relative", NULL, "/x/data", QS_ENOENT, NULL, NULL},
		{NULL, "/x/cfg", NULL, QS_ENOENT, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set_env("HOME", cases[i].home);
		set_env("XDG_CONFIG_HOME", cases[i].xdg_config);
		set_env("XDG_DATA_HOME", cases[i].xdg_data);
		struct qs_dirs d = {(char *)"untouched", (char *)"untouched"};
		assert_int_equal(qs_dirs_init(&d), cases[i].rc);
		if (cases[i].rc != 0) {
			assert_string_equal(d.config, "untouched");
			continue;
		}
		assert_string_equal(d.config, cases[i].config);
		assert_string_equal(d.data, cases[i].data);
		qs_dirs_release(&d);
	}
	char *long_home = malloc(5000);
	long_home[0] = '/';
	memset(long_home + 1, 'h', 4998);
	long_home[4999] = '\0';
	set_env("HOME", long_home);
	set_env("XDG_CONFIG_HOME", NULL);
	struct qs_dirs d;
	assert_int_equal(qs_dirs_init(&d), QS_E2BIG);
	free(long_home);
}

static mode_t mode_of(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void test_dirs_create(void **state)
{
	struct tmp *t = *state;
	char cfg[256], data[256];
	snprintf(cfg, sizeof(cfg), "%s/a/b", t->dir);
	snprintf(data, sizeof(data), "%s/c", t->dir);
	set_env("XDG_CONFIG_HOME", cfg);
	set_env("XDG_DATA_HOME", data);
	mode_t old = umask(0);
	struct qs_dirs d;
	assert_int_equal(qs_dirs_init(&d), 0);
	assert_int_equal(qs_dirs_create(&d), 0);
	assert_int_equal(mode_of(d.config), 0700);
	assert_int_equal(mode_of(d.data), 0700);
	assert_int_equal(mode_of(cfg), 0700); /* missing parents too, as XDG asks */
	/* An existing quics directory open to others is closed; creating again is fine. */
	assert_int_equal(chmod(d.config, 0755), 0);
	assert_int_equal(qs_dirs_create(&d), 0);
	assert_int_equal(mode_of(d.config), 0700);
	/* An existing parent keeps its mode. */
	assert_int_equal(chmod(cfg, 0755), 0);
	assert_int_equal(qs_dirs_create(&d), 0);
	assert_int_equal(mode_of(cfg), 0755);
	qs_dirs_release(&d);
	umask(old);

	/* A file where a directory should be. */
	char file[256];
	snprintf(file, sizeof(file), "%s/file", t->dir);
	write_file(file, "x", 0600);
	snprintf(cfg, sizeof(cfg), "%s/file/sub", t->dir);
	assert_int_equal(qs_dir_create(cfg), QS_EEXIST);
	assert_int_equal(qs_dir_create(file), QS_EEXIST);
	assert_int_equal(qs_dir_create("relative/dir"), QS_EINVAL);
}

static void test_dirs_display(void **state)
{
	(void)state;
	char buf[128];
	set_env("HOME", "/home/u");
	assert_string_equal(qs_dirs_display("/home/u/.config/quics/qic.api", buf, sizeof(buf)),
			    "~/.config/quics/qic.api");
	assert_string_equal(qs_dirs_display("/home/u", buf, sizeof(buf)), "~");
	assert_string_equal(qs_dirs_display("/home/user2/x", buf, sizeof(buf)), "/home/user2/x");
	assert_string_equal(qs_dirs_display("/etc/x", buf, sizeof(buf)), "/etc/x");
	set_env("HOME", "/home/u/");
	assert_string_equal(qs_dirs_display("/home/u/x", buf, sizeof(buf)), "~/x");
	set_env("HOME", "/");
	assert_string_equal(qs_dirs_display("/x", buf, sizeof(buf)), "/x");
	set_env("HOME", NULL);
	assert_string_equal(qs_dirs_display("/home/u/x", buf, sizeof(buf)), "/home/u/x");
}

/* ---- endpoint file ------------------------------------------------------------------------ */

static void test_endpoint_init(void **state)
{
	(void)state;
	struct qs_endpoint e;
	assert_int_equal(qs_endpoint_init(&e, 6130, token_bytes, 32), 0);
	assert_int_equal(e.port, 6130);
	assert_string_equal(e.token,
			    "000102abcdef10ff5aa5112233445566778899aabbccddeef00f80087ff74224");
	assert_int_equal(qs_endpoint_init(&e, 0, token_bytes, 32), QS_EINVAL);
	assert_int_equal(qs_endpoint_init(&e, 1, token_bytes, 15), QS_EINVAL);
	assert_int_equal(qs_endpoint_init(&e, 1, token_bytes, 16), 0);
	assert_int_equal(strlen(e.token), 32);
	uint8_t big[65] = {0};
	assert_int_equal(qs_endpoint_init(&e, 1, big, 64), 0);
	assert_int_equal(qs_endpoint_init(&e, 1, big, 65), QS_EINVAL);
	qs_endpoint_clear(&e);
	assert_int_equal(e.token[0], 0);
	char *p = qs_endpoint_path("/c/quics", "qic");
	assert_string_equal(p, "/c/quics/qic.api");
	qs_free(p);
}

static void test_endpoint_round_trip(void **state)
{
	struct tmp *t = *state;
	const char *path = path_in(t, "qic.api");
	static const mode_t umasks[] = {0, 022, 077, 0277};
	for (size_t i = 0; i < sizeof(umasks) / sizeof(umasks[0]); i++) {
		mode_t old = umask(umasks[i]);
		struct qs_endpoint w, r;
		assert_int_equal(qs_endpoint_init(&w, (uint16_t)(6130 + i), token_bytes, 32), 0);
		assert_int_equal(qs_endpoint_write(&w, path), 0);
		umask(old);
		assert_int_equal(mode_of(path), 0600);
		assert_int_equal(entries(t->dir), 1); /* no temporary file left */
		memset(&r, 0x55, sizeof(r));
		assert_int_equal(qs_endpoint_read(path, &r), 0);
		assert_int_equal(r.port, 6130 + i);
		assert_string_equal(r.token, w.token);
	}
	/* Replacing keeps one file, now with the new content. */
	struct qs_endpoint w, r;
	uint8_t other[16] = {9};
	assert_int_equal(qs_endpoint_init(&w, 7000, other, sizeof(other)), 0);
	assert_int_equal(qs_endpoint_write(&w, path), 0);
	assert_int_equal(qs_endpoint_read(path, &r), 0);
	assert_int_equal(r.port, 7000);
	assert_string_equal(r.token, "09000000000000000000000000000000");
	assert_int_equal(entries(t->dir), 1);
	/* A missing directory is an error, not a crash. */
	assert_int_equal(qs_endpoint_write(&w, path_in(t, "missing/qic.api")), QS_ENOENT);
}

static void test_endpoint_remove(void **state)
{
	struct tmp *t = *state;
	char path[256];
	snprintf(path, sizeof(path), "%s", path_in(t, "qis.api"));
	struct qs_endpoint mine, newer;
	uint8_t other[16] = {1};
	assert_int_equal(qs_endpoint_init(&mine, 6120, token_bytes, 32), 0);
	assert_int_equal(qs_endpoint_init(&newer, 6120, other, sizeof(other)), 0);
	assert_int_equal(qs_endpoint_remove(path, &mine), QS_ENOENT);
	assert_int_equal(qs_endpoint_write(&newer, path), 0);
	assert_int_equal(qs_endpoint_remove(path, &mine), QS_ESTATE);
	assert_int_equal(access(path, F_OK), 0); /* another daemon's file stays */
	assert_int_equal(qs_endpoint_write(&mine, path), 0);
	assert_int_equal(qs_endpoint_remove(path, &mine), 0);
	assert_int_not_equal(access(path, F_OK), 0);
}

static void test_endpoint_refusals(void **state)
{
	struct tmp *t = *state;
	const char *good = "{\"port\": 6130, \"token\": \"00112233445566778899aabbccddeeff\"}";
	char path[256];
	snprintf(path, sizeof(path), "%s", path_in(t, "qic.api"));
	struct qs_endpoint e = {.port = 1};

	assert_int_equal(qs_endpoint_read(path, &e), QS_ENOENT);

	static const mode_t loose[] = {0640, 0604, 0644, 0660, 0666, 0700 | 0004};
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		write_file(path, good, loose[i]);
		assert_int_equal(qs_endpoint_read(path, &e), QS_EACCES);
	}
	write_file(path, good, 0400); /* read-only for the owner is fine */
	assert_int_equal(qs_endpoint_read(path, &e), 0);
	assert_int_equal(e.port, 6130);

	/* Not a regular file: a symlink (even to a good file), a directory, a FIFO (no hang). */
	char link[256];
	snprintf(link, sizeof(link), "%s", path_in(t, "link.api"));
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(qs_endpoint_read(link, &e), QS_EACCES);
	char sub[256];
	snprintf(sub, sizeof(sub), "%s", path_in(t, "dir.api"));
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_not_equal(qs_endpoint_read(sub, &e), 0);
	char fifo[256];
	snprintf(fifo, sizeof(fifo), "%s", path_in(t, "fifo.api"));
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(qs_endpoint_read(fifo, &e), QS_EACCES);

	/* Size: padding to exactly the limit is fine, one byte more is refused. */
	char *big = malloc(QS_ENDPOINT_FILE_MAX + 2);
	size_t glen = strlen(good);
	memset(big, ' ', QS_ENDPOINT_FILE_MAX + 1);
	memcpy(big, good, glen);
	big[QS_ENDPOINT_FILE_MAX] = '\0';
	write_file(path, big, 0600);
	assert_int_equal(qs_endpoint_read(path, &e), 0);
	big[QS_ENDPOINT_FILE_MAX] = ' ';
	big[QS_ENDPOINT_FILE_MAX + 1] = '\0';
	write_file(path, big, 0600);
	assert_int_equal(qs_endpoint_read(path, &e), QS_E2BIG);
	free(big);

	static const char *const malformed[] = {
		"",
		"{}",
		"[]",
		"not json",
		"{\"port\": 6130}",
		"{\"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": 0, \"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": 65536, \"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": -1, \"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": 6130.0, \"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": \"6130\", \"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": 6130, \"token\": \"00112233445566778899AABBCCDDEEFF\"}",
		"{\"port\": 6130, \"token\": \"00112233445566778899aabbccddeef\"}",
		"{\"port\": 6130, \"token\": \"0011223344556677889aabbccddeeff\"}",
		"{\"port\": 6130, \"token\": \"00112233445566778899aabbccddeefg\"}",
		"{\"port\": 6130, \"token\": \"00112233445566778899aabbccddeeff\\u0000\"}",
		"{\"port\": 6130, \"token\": 1234}",
		"{\"port\": 6130, \"port\": 6131, \"token\": \"00112233445566778899aabbccddeeff\"}",
		"{\"port\": 6130, \"token\": \"00112233445566778899aabbccddeeff\"} trailing",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		write_file(path, malformed[i], 0600);
		struct qs_endpoint before = e;
		assert_int_equal(qs_endpoint_read(path, &e), QS_EPROTO);
		assert_memory_equal(&e, &before, sizeof(e)); /* untouched on failure */
	}
	/* 128 hex digits is the longest token; unknown members are ignored. */
	char longest[256];
	snprintf(longest, sizeof(longest), "{\"v\": 2, \"port\": 1, \"token\": \"%0128d\"}", 0);
	write_file(path, longest, 0600);
	assert_int_equal(qs_endpoint_read(path, &e), 0);
	assert_int_equal(strlen(e.token), 128);
	snprintf(longest, sizeof(longest), "{\"port\": 1, \"token\": \"%0130d\"}", 0);
	write_file(path, longest, 0600);
	assert_int_equal(qs_endpoint_read(path, &e), QS_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dirs_resolution),
		cmocka_unit_test_setup_teardown(test_dirs_create, setup, teardown),
		cmocka_unit_test(test_dirs_display),
		cmocka_unit_test(test_endpoint_init),
		cmocka_unit_test_setup_teardown(test_endpoint_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

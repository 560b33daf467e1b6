/* Tests for the daemon locks: one holder at a time, its pid readable by the refused one, the
 * lock gone with its descriptor (as with its process), a forked child keeps it, and a lock
 * file that is a symlink is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/lock.h"

static char dir[] = "/tmp/qs-lock-test-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_one_holder(void **state)
{
	(void)state;
	char *path = qs_lock_path(dir, "qic");
	assert_non_null(path);
	assert_string_equal(path + strlen(dir), "/qic.lock");
	long holder = -1;
	assert_false(qs_lock_held(path, &holder)); /* no file yet */
	assert_int_equal(holder, 0);
	int fd = -1, fd2 = -1;
	assert_int_equal(qs_lock_acquire(path, 4242, &fd, &holder), 0);
	assert_true(fd >= 0);
	assert_int_equal(qs_lock_acquire(path, 1, &fd2, &holder), QS_EAGAIN);
	assert_int_equal(fd2, -1);
	assert_int_equal(holder, 4242);
	assert_true(qs_lock_held(path, &holder));
	assert_int_equal(holder, 4242);
	assert_int_equal(qs_lock_set_pid(fd, 77), 0);
	assert_true(qs_lock_held(path, &holder));
	assert_int_equal(holder, 77);
	close(fd);
	assert_false(qs_lock_held(path, &holder));
	assert_int_equal(qs_lock_acquire(path, 5, &fd2, &holder), 0);
	close(fd2);
	qs_free(path);
}

static void test_fork_keeps_lock(void **state)
{
	(void)state;
	char *path = qs_lock_path(dir, "fork");
	int fd, go[2];
	long holder;
	assert_int_equal(pipe(go), 0);
	assert_int_equal(qs_lock_acquire(path, (long)getpid(), &fd, &holder), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		char b;
		close(go[1]);
		_exit(read(go[0], &b, 1) >= 0 ? 0 : 1); /* holds the inherited lock until told */
	}
	close(go[0]);
	close(fd); /* the parent lets go: the child still holds it */
	assert_true(qs_lock_held(path, &holder));
	close(go[1]);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_false(qs_lock_held(path, &holder));
	qs_free(path);
}

static void test_symlink_refused(void **state)
{
	(void)state;
	char target[256], link[256];
	snprintf(target, sizeof(target), "%s/elsewhere", dir);
	snprintf(link, sizeof(link), "%s/link.lock", dir);
	assert_int_equal(symlink(target, link), 0);
	int fd = -1;
	long holder = -1;
	assert_int_equal(qs_lock_acquire(link, 1, &fd, &holder), QS_EACCES);
	assert_int_equal(fd, -1);
	assert_int_equal(access(target, F_OK), -1); /* nothing was created through the link */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_holder),
		cmocka_unit_test(test_fork_keeps_lock),
		cmocka_unit_test(test_symlink_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

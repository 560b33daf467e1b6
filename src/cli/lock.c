/* Daemon single-instance locks (lock.h). flock locks belong to the open file description, so
 * the test "is it held" opens the file anew and tries a non-blocking lock, which conflicts
 * with the holder even inside the same process. */
#include "cli/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"

char *qs_lock_path(const char *dir, const char *prog)
{
	size_t n = strlen(dir) + strlen(prog) + sizeof("/.lock");
	char *p = qs_malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s.lock", dir, prog);
	return p;
}

/* The pid written in the file, or 0. */
static long read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	uint64_t pid;
	if (qs_parse_u64(buf, 0x7fffffff, &pid) != 0)
		return 0;
	return (long)pid;
}

int qs_lock_set_pid(int fd, long pid)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", pid);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return QS_EIO;
	return 0;
}

int qs_lock_acquire(const char *path, long pid, int *fd, long *holder)
{
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0)
		return errno == ELOOP ? QS_EACCES : qs_err_from_errno(errno);
	int rc = 0;
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		rc = errno == EWOULDBLOCK ? QS_EAGAIN : qs_err_from_errno(errno);
		if (rc == QS_EAGAIN)
			*holder = read_pid(f);
	}
	if (rc == 0)
		rc = qs_lock_set_pid(f, pid);
	if (rc != 0) {
		close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

bool qs_lock_held(const char *path, long *holder)
{
	*holder = 0;
	int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f < 0)
		return false;
	bool held = flock(f, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	if (held)
		*holder = read_pid(f);
	close(f); /* drops our lock if we got it */
	return held;
}

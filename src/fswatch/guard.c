/* Mass-loss guard (see guard.h): the root marker in the client's state directory, written
 * atomically and opened without following symlinks, and the deletion threshold. */
#include "fswatch/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "fswatch/ignore.h"

#define MARKER_TMP QS_IGNORE_TEMP_PREFIX "marker"

static int map_open_errno(int e)
{
	return e == ELOOP || e == ENOTDIR ? QS_EACCES : qs_err_from_errno(e);
}

/* Opens the state directory, creating it first when create is set. */
static int open_state_dir(int root_fd, bool create, int *out)
{
	if (create && mkdirat(root_fd, QS_IGNORE_STATE_DIR, 0700) != 0 && errno != EEXIST)
		return qs_err_from_errno(errno);
	int fd = openat(root_fd, QS_IGNORE_STATE_DIR,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? QS_ENOENT : map_open_errno(errno);
	*out = fd;
	return 0;
}

static int write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len > 0) {
		ssize_t n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return qs_err_from_errno(errno);
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int qs_guard_marker_write(int root_fd, const void *id, size_t len)
{
	if (len == 0 || len > QS_GUARD_MARKER_MAX)
		return QS_EINVAL;
	int dir_fd;
	int rc = open_state_dir(root_fd, true, &dir_fd);
	if (rc != 0)
		return rc;
	int fd = openat(dir_fd, MARKER_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0600);
	if (fd < 0) {
		rc = map_open_errno(errno);
		goto out;
	}
	rc = write_all(fd, id, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = qs_err_from_errno(errno);
	if (close(fd) != 0 && rc == 0)
		rc = qs_err_from_errno(errno);
	if (rc == 0 && renameat(dir_fd, MARKER_TMP, dir_fd, QS_GUARD_MARKER_NAME) != 0)
		rc = qs_err_from_errno(errno);
	if (rc == 0 && fsync(dir_fd) != 0)
		rc = qs_err_from_errno(errno);
	if (rc != 0)
		unlinkat(dir_fd, MARKER_TMP, 0);
out:
	close(dir_fd);
	return rc;
}

int qs_guard_marker_check(int root_fd, const void *id, size_t len)
{
	if (len == 0 || len > QS_GUARD_MARKER_MAX)
		return QS_EINVAL;
	int dir_fd;
	int rc = open_state_dir(root_fd, false, &dir_fd);
	if (rc != 0)
		return rc;
	int fd = openat(dir_fd, QS_GUARD_MARKER_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? QS_ENOENT : map_open_errno(errno);
		goto out;
	}
	char buf[QS_GUARD_MARKER_MAX + 1];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = qs_err_from_errno(errno);
		if (n <= 0 || (got += (size_t)n) == sizeof(buf))
			break;
	}
	close(fd);
	if (rc == 0 && (got != len || memcmp(buf, id, len) != 0))
		rc = QS_ECONFLICT;
out:
	close(dir_fd);
	return rc;
}

void qs_guard_limits_default(struct qs_guard_limits *l)
{
	l->max_percent = QS_GUARD_MAX_PERCENT_DEFAULT;
	l->min_files = QS_GUARD_MIN_FILES_DEFAULT;
}

bool qs_guard_mass_delete(const struct qs_guard_limits *l, uint64_t indexed, uint64_t deleted)
{
	if (deleted < l->min_files)
		return false;
	/* deleted / indexed > max_percent / 100, in 128 bits so nothing overflows. */
	__extension__ typedef unsigned __int128 u128;
	return (u128)deleted * 100 > (u128)indexed * l->max_percent;
}

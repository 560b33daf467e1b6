/* Test-only LD_PRELOAD shim for crash-consistency tests (docs/chaos.md): counts the calls that
 * decide what survives a crash — write and pwrite to regular files, fsync, fdatasync, rename,
 * renameat — and kills the process with SIGKILL just before the Nth one, so a test can stop
 * the server at every step of accepting a version. Environment:
 *   QS_CRASH_ARM    path: counting starts once this file exists (unset: from the start)
 *   QS_CRASH_AT     N >= 1: SIGKILL before the Nth counted call (unset or 0: count only)
 *   QS_CRASH_TRACE  path: one line per counted call, "N kind target" (and "crash N ...") */
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static long crash_at = -1; /* -1: not read yet */
static long counted;
static int armed;
static int trace_fd = -1;

static void shim_init(void)
{
	if (crash_at >= 0)
		return;
	/* Digits only (no libc number parser: STYLE.md); anything else means count only. */
	const char *at = getenv("QS_CRASH_AT");
	long n = 0;
	for (const char *p = at; p != NULL && *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || n > 100000000) {
			n = 0;
			break;
		}
		n = n * 10 + (*p - '0');
	}
	const char *trace = getenv("QS_CRASH_TRACE");
	if (trace != NULL)
		trace_fd = (int)syscall(SYS_openat, AT_FDCWD, trace,
					O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	crash_at = n;
}

static int shim_armed(void)
{
	if (!armed) {
		const char *arm = getenv("QS_CRASH_ARM");
		armed = arm == NULL || access(arm, F_OK) == 0;
	}
	return armed;
}

static void shim_trace(const char *what, long n, const char *kind, const char *target)
{
	if (trace_fd < 0)
		return;
	char line[4200];
	int len = snprintf(line, sizeof(line), "%s%ld %s %s\n", what, n, kind, target);
	if (len > 0)
		(void)syscall(SYS_write, trace_fd, line,
			      (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
}

/* Counts one call; dies before it when it is the Nth. */
static void shim_count(const char *kind, const char *target)
{
	shim_init();
	if (!shim_armed())
		return;
	long n = __atomic_add_fetch(&counted, 1, __ATOMIC_SEQ_CST);
	if (crash_at > 0 && n == crash_at) {
		shim_trace("crash ", n, kind, target);
		kill(getpid(), SIGKILL);
	}
	shim_trace("", n, kind, target);
}

static void fd_target(int fd, char *out, size_t cap)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, out, cap - 1);
	out[n > 0 ? (size_t)n : 0] = '\0';
}

/* Only writes to regular files count: the daemon's log lines go to a pipe or a terminal. */
static void count_fd(const char *kind, int fd, int regular_only)
{
	struct stat st;
	if (regular_only && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)))
		return;
	char target[4096];
	fd_target(fd, target, sizeof(target));
	shim_count(kind, target);
}

/* The next definition of name (libc's): dlsym gives an object pointer, copied into the
 * function pointer *out (ISO C has no conversion between the two). */
static void real_fn(const char *name, void *out, size_t size)
{
	void *p = dlsym(RTLD_NEXT, name);
	memcpy(out, &p, size);
}

#define REAL(name, var)                                                                            \
	__typeof__(&name) var;                                                                     \
	real_fn(#name, &var, sizeof(var))

ssize_t write(int fd, const void *buf, size_t len)
{
	count_fd("write", fd, 1);
	REAL(write, real);
	return real(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	count_fd("pwrite", fd, 1);
	REAL(pwrite, real);
	return real(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	count_fd("pwrite", fd, 1);
	REAL(pwrite64, real);
	return real(fd, buf, len, off);
}

int fsync(int fd)
{
	count_fd("fsync", fd, 0);
	REAL(fsync, real);
	return real(fd);
}

int fdatasync(int fd)
{
	count_fd("fdatasync", fd, 0);
	REAL(fdatasync, real);
	return real(fd);
}

int rename(const char *from, const char *to)
{
	shim_count("rename", to);
	REAL(rename, real);
	return real(from, to);
}

int renameat(int from_dir, const char *from, int to_dir, const char *to)
{
	shim_count("renameat", to);
	REAL(renameat, real);
	return real(from_dir, from, to_dir, to);
}

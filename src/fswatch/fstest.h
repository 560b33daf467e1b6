/* Test helpers shared by the fswatch tests (header only, not part of the library): a
 * temporary root directory and one-line file operations below it. Every helper aborts the
 * test on failure, so a broken fixture never passes for a working module. */
#ifndef QS_FSWATCH_FSTEST_H
#define QS_FSWATCH_FSTEST_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FST_PATH_MAX 8192

static inline void fst_fail(const char *what, const char *path)
{
	fprintf(stderr, "fstest: %s %s failed\n", what, path);
	abort();
}

/* Writes root + "/" + rel into out (FST_PATH_MAX bytes). */
static inline const char *fst_join(char *out, const char *root, const char *rel)
{
	int n = snprintf(out, FST_PATH_MAX, "%s/%s", root, rel);
	if (n < 0 || n >= FST_PATH_MAX)
		fst_fail("join", rel);
	return out;
}

/* Creates a fresh temporary directory; its path goes to root (FST_PATH_MAX bytes). */
static inline void fst_root(char *root)
{
	const char *tmp = getenv("TMPDIR");
	int n = snprintf(root, FST_PATH_MAX, "%s/qs-fswatch-XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (n < 0 || n >= FST_PATH_MAX || mkdtemp(root) == NULL)
		fst_fail("mkdtemp", root);
}

static inline void fst_mkdir(const char *root, const char *rel)
{
	char p[FST_PATH_MAX];
	if (mkdir(fst_join(p, root, rel), 0755) != 0)
		fst_fail("mkdir", p);
}

/* Creates (or truncates) rel and writes len bytes of data, closing it (IN_CLOSE_WRITE). */
static inline void fst_write(const char *root, const char *rel, const void *data, size_t len,
			     int flags)
{
	char p[FST_PATH_MAX];
	int fd = open(fst_join(p, root, rel), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0)
		fst_fail("write", p);
}

static inline void fst_put(const char *root, const char *rel, const char *text)
{
	fst_write(root, rel, text, strlen(text), O_TRUNC);
}

static inline void fst_symlink(const char *target, const char *root, const char *rel)
{
	char p[FST_PATH_MAX];
	if (symlink(target, fst_join(p, root, rel)) != 0)
		fst_fail("symlink", p);
}

static inline void fst_rename(const char *root, const char *from, const char *to)
{
	char a[FST_PATH_MAX], b[FST_PATH_MAX];
	if (rename(fst_join(a, root, from), fst_join(b, root, to)) != 0)
		fst_fail("rename", a);
}

static inline void fst_unlink(const char *root, const char *rel)
{
	char p[FST_PATH_MAX];
	if (unlink(fst_join(p, root, rel)) != 0)
		fst_fail("unlink", p);
}

static inline int fst_rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

/* Removes the tree below and including root. */
static inline void fst_rm_tree(const char *root)
{
	char cmd[FST_PATH_MAX];
	if (nftw(root, fst_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fst_fail("remove", fst_join(cmd, root, ""));
}

static inline int fst_open_root(const char *root)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fst_fail("open", root);
	return fd;
}

#endif

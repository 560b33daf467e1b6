/* XDG base directories for QUIC-S: resolution from the environment and creation with private
 * permissions. Owns nothing beyond the two strings in struct qs_dirs. */
#include "cli/dirs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/err.h"

#define QS_DIR_NAME "quics"

/* Joins base and the relative rest into a new heap string. */
static int join(const char *base, const char *rest, char **out)
{
	size_t blen = strlen(base);
	while (blen > 1 && base[blen - 1] == '/')
		blen--;
	size_t len;
	if (!qs_size_add(blen, strlen(rest) + 1, &len) || len >= PATH_MAX)
		return QS_E2BIG;
	char *s = qs_malloc(len + 1);
	if (s == NULL)
		return QS_ENOMEM;
	memcpy(s, base, blen);
	s[blen] = '/';
	memcpy(s + blen + 1, rest, strlen(rest) + 1);
	*out = s;
	return 0;
}

static const char *absolute_env(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && v[0] == '/' ? v : NULL;
}

/* $xdg/quics, or $HOME/fallback/quics. */
static int resolve(const char *xdg, const char *fallback, char **out)
{
	const char *base = absolute_env(xdg);
	if (base != NULL)
		return join(base, QS_DIR_NAME, out);
	const char *home = absolute_env("HOME");
	if (home == NULL)
		return QS_ENOENT;
	char rest[64];
	snprintf(rest, sizeof(rest), "%s/%s", fallback, QS_DIR_NAME);
	return join(home, rest, out);
}

int qs_dirs_init(struct qs_dirs *d)
{
	char *config = NULL, *data = NULL;
	int rc = resolve("XDG_CONFIG_HOME", ".config", &config);
	if (rc == 0)
		rc = resolve("XDG_DATA_HOME", ".local/share", &data);
	if (rc != 0) {
		qs_free(config);
		return rc;
	}
	d->config = config;
	d->data = data;
	return 0;
}

void qs_dirs_release(struct qs_dirs *d)
{
	qs_free(d->config);
	qs_free(d->data);
	d->config = d->data = NULL;
}

/* mkdir of one component; an existing directory is fine. */
static int mkdir_one(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return 0;
	int e = errno;
	struct stat st;
	if (e == EEXIST && stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : QS_EEXIST;
	return qs_err_from_errno(e);
}

int qs_dir_create(const char *path)
{
	if (path[0] != '/')
		return QS_EINVAL;
	char *p = qs_strdup(path);
	if (p == NULL)
		return QS_ENOMEM;
	int rc = 0;
	for (char *s = strchr(p + 1, '/'); s != NULL && rc == 0; s = strchr(s + 1, '/')) {
		*s = '\0';
		rc = mkdir_one(p);
		*s = '/';
	}
	if (rc == 0)
		rc = mkdir_one(p);
	qs_free(p);
	return rc;
}

/* Creates path and makes sure nobody else may enter it. */
static int create_private(const char *path)
{
	int rc = qs_dir_create(path);
	if (rc != 0)
		return rc;
	struct stat st;
	if (stat(path, &st) != 0)
		return qs_err_from_errno(errno);
	if ((st.st_mode & 077) != 0 && chmod(path, 0700) != 0)
		return qs_err_from_errno(errno);
	return 0;
}

int qs_dirs_create(const struct qs_dirs *d)
{
	int rc = create_private(d->config);
	if (rc == 0)
		rc = create_private(d->data);
	return rc;
}

const char *qs_dirs_display(const char *path, char *buf, size_t cap)
{
	const char *home = absolute_env("HOME");
	size_t hlen = home != NULL ? strlen(home) : 0;
	while (hlen > 1 && home[hlen - 1] == '/')
		hlen--;
	if (hlen > 1 && strncmp(path, home, hlen) == 0 && (path[hlen] == '/' || path[hlen] == '\0'))
		snprintf(buf, cap, "~%s", path + hlen);
	else
		snprintf(buf, cap, "%s", path);
	return buf;
}

bool qs_dirs_within(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--; /* "/a/b/" is "/a/b" */
	if (strncmp(dir, path, n) != 0)
		return false;
	return path[n] == '\0' || path[n] == '/' || (n == 1 && dir[0] == '/');
}

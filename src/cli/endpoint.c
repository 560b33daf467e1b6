/* Endpoint files: atomic private writes by the daemon, checked reads by the CLI. The token is
 * a secret: buffers that held it are wiped, and it is never logged. */
#include "cli/endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/err.h"

int qs_endpoint_init(struct qs_endpoint *e, uint16_t port, const uint8_t *token, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (port == 0 || token == NULL || len < QS_ENDPOINT_TOKEN_MIN_BYTES ||
	    len > QS_ENDPOINT_TOKEN_MAX_BYTES)
		return QS_EINVAL;
	e->port = port;
	for (size_t i = 0; i < len; i++) {
		e->token[2 * i] = hex[token[i] >> 4];
		e->token[2 * i + 1] = hex[token[i] & 15];
	}
	e->token[2 * len] = '\0';
	return 0;
}

void qs_endpoint_clear(struct qs_endpoint *e)
{
	qs_wipe(e, sizeof(*e));
}

char *qs_endpoint_path(const char *config_dir, const char *prog)
{
	size_t n = strlen(config_dir) + strlen(prog) + 6;
	char *p = qs_malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s.api", config_dir, prog);
	return p;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return qs_err_from_errno(errno);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Syncs the directory holding path, so a rename in it is durable. */
static int sync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? qs_strdup(".")
				  : qs_strndup(path, slash == path ? 1 : (size_t)(slash - path));
	if (dir == NULL)
		return QS_ENOMEM;
	int rc = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = qs_err_from_errno(errno);
	if (fd >= 0)
		close(fd);
	qs_free(dir);
	return rc;
}

/* Writes text to a fresh 0600 file tmp and syncs it. */
static int write_private(const char *tmp, const char *text, size_t len)
{
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) /* left by a crash of this pid */
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return qs_err_from_errno(errno);
	int rc = 0;
	if (fchmod(fd, 0600) != 0) /* the umask may have removed bits we need */
		rc = qs_err_from_errno(errno);
	if (rc == 0)
		rc = write_all(fd, text, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = qs_err_from_errno(errno);
	if (close(fd) != 0 && rc == 0)
		rc = qs_err_from_errno(errno);
	return rc;
}

int qs_endpoint_write(const struct qs_endpoint *e, const char *path)
{
	char text[64 + sizeof(e->token)];
	int n = snprintf(text, sizeof(text), "{\"port\": %u, \"token\": \"%s\"}\n",
			 (unsigned)e->port, e->token);
	size_t tlen = strlen(path) + 32;
	char *tmp = qs_malloc(tlen);
	if (tmp == NULL) {
		qs_wipe(text, sizeof(text));
		return QS_ENOMEM;
	}
	snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
	int rc = write_private(tmp, text, (size_t)n);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = qs_err_from_errno(errno);
	if (rc != 0)
		unlink(tmp);
	if (rc == 0)
		rc = sync_parent(path);
	qs_wipe(text, sizeof(text));
	qs_free(tmp);
	return rc;
}

/* Opens path for reading if it is a private regular file of ours; reads it into buf. */
static int read_private(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? QS_EACCES : qs_err_from_errno(errno);
	int rc = 0;
	struct stat st;
	if (fstat(fd, &st) != 0)
		rc = qs_err_from_errno(errno);
	else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
		rc = QS_EACCES;
	size_t used = 0;
	while (rc == 0) {
		ssize_t r = read(fd, buf + used, cap - used);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = qs_err_from_errno(errno);
		else if (r == 0)
			break;
		else if ((used += (size_t)r) == cap)
			rc = QS_E2BIG;
	}
	close(fd);
	if (rc == 0)
		*len = used;
	return rc;
}

static bool token_valid(const char *t, size_t n)
{
	if (n < 2 * QS_ENDPOINT_TOKEN_MIN_BYTES || n > 2 * QS_ENDPOINT_TOKEN_MAX_BYTES ||
	    n % 2 != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
			return false;
	return true;
}

static int parse(const char *text, size_t len, struct qs_endpoint *e)
{
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *port = json_object_get(root, "port");
	json_t *token = json_object_get(root, "token");
	int rc = QS_EPROTO;
	if (json_is_integer(port) && json_integer_value(port) >= 1 &&
	    json_integer_value(port) <= 65535 && json_is_string(token) &&
	    token_valid(json_string_value(token), json_string_length(token))) {
		e->port = (uint16_t)json_integer_value(port);
		memcpy(e->token, json_string_value(token), json_string_length(token) + 1);
		rc = 0;
	}
	if (json_is_string(token)) /* jansson keeps its own copy of the secret */
		qs_wipe((char *)json_string_value(token), json_string_length(token));
	json_decref(root);
	return rc;
}

int qs_endpoint_read(const char *path, struct qs_endpoint *e)
{
	char buf[QS_ENDPOINT_FILE_MAX + 1]; /* one more byte tells a file over the limit */
	size_t len = 0;
	struct qs_endpoint tmp;
	int rc = read_private(path, buf, sizeof(buf), &len);
	if (rc == 0)
		rc = parse(buf, len, &tmp);
	if (rc == 0)
		*e = tmp;
	qs_wipe(buf, sizeof(buf));
	qs_wipe(&tmp, sizeof(tmp));
	return rc;
}

int qs_endpoint_remove(const char *path, const struct qs_endpoint *e)
{
	struct qs_endpoint cur;
	int rc = qs_endpoint_read(path, &cur);
	if (rc != 0)
		return rc;
	bool ours = strcmp(cur.token, e->token) == 0 && cur.port == e->port;
	qs_endpoint_clear(&cur);
	if (!ours)
		return QS_ESTATE;
	if (unlink(path) != 0)
		return qs_err_from_errno(errno);
	return 0;
}

/* The daemon endpoint file: how the qis/qic front ends (and the web GUI's launcher) find a
 * running daemon's local REST API. The daemon generates a random token, starts its HTTP server
 * on 127.0.0.1, then writes "<config dir>/<prog>.api" (qis.api, qic.api) atomically with mode
 * 0600: {"port": 6130, "token": "<hex>"}. The CLI reads it and sends the token as a bearer
 * token. Format and rules: docs/http.md. Thread-safe (no shared state). */
#ifndef QS_CLI_ENDPOINT_H
#define QS_CLI_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#define QS_ENDPOINT_TOKEN_MIN_BYTES 16
#define QS_ENDPOINT_TOKEN_MAX_BYTES 64
#define QS_ENDPOINT_FILE_MAX 4096 /* bytes read from an endpoint file */

struct qs_endpoint {
	uint16_t port;
	/* The token as the HTTP header carries it: 2 lower-case hex digits per token byte. */
	char token[2 * QS_ENDPOINT_TOKEN_MAX_BYTES + 1];
};

/* Fills e from a port (1..65535) and the daemon's random token bytes (16..64; borrowed).
 * Errors: QS_EINVAL. */
int qs_endpoint_init(struct qs_endpoint *e, uint16_t port, const uint8_t *token, size_t len);
/* Wipes the token. */
void qs_endpoint_clear(struct qs_endpoint *e);

/* The endpoint file's path for prog ("qis" or "qic") in config_dir: a heap string the caller
 * frees with qs_free, or NULL when memory runs out. */
char *qs_endpoint_path(const char *config_dir, const char *prog);

/* Writes e to path atomically: a temporary file in the same directory created with mode 0600,
 * written, synced, renamed over path, and the directory synced; a reader sees the old file or
 * the new one, never a part. The directory must exist (qs_dirs_create). Errors: QS_EACCES,
 * QS_ENOENT, QS_ENOSPC, QS_EIO, QS_ENOMEM. */
int qs_endpoint_write(const struct qs_endpoint *e, const char *path);

/* Reads path into *e (written only on success). The file must be a regular file (not a
 * symlink) owned by this user and closed to group and others, at most QS_ENDPOINT_FILE_MAX
 * bytes, and hold a JSON object with "port" (1..65535) and "token" (32..128 lower-case hex
 * digits, an even number); other members are ignored. Errors: QS_ENOENT (no such file: the
 * daemon is not running), QS_EACCES (permissions, owner, a symlink), QS_E2BIG, QS_EPROTO
 * (malformed), QS_EIO, QS_ENOMEM. */
int qs_endpoint_read(const char *path, struct qs_endpoint *e);

/* Removes path if it still holds e's token (a daemon removes its own file at shutdown, not
 * one a newer daemon wrote). Errors: QS_ENOENT, QS_ESTATE (the file names another daemon),
 * and those of qs_endpoint_read and unlink. */
int qs_endpoint_remove(const char *path, const struct qs_endpoint *e);

#endif

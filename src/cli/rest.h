/* REST client of the qis/qic front ends: finds a running daemon through its endpoint file
 * (cli/endpoint.h), sends JSON requests with its bearer token over one kept-alive connection
 * (libcurl) and turns every failure into one clear line for the user ("qic: the client daemon
 * is not running (no ~/.config/quics/qic.api)"). One struct qs_rest per thread. */
#ifndef QS_CLI_REST_H
#define QS_CLI_REST_H

#include <stdint.h>

#include <jansson.h>

#include "cli/endpoint.h"

/* Names a daemon in messages. */
struct qs_daemon_info {
	const char *prog; /* "qic": the message prefix and the endpoint file's name */
	const char *what; /* "the client daemon" */
};
extern const struct qs_daemon_info qs_daemon_qis;
extern const struct qs_daemon_info qs_daemon_qic;

struct qs_rest;

/* Makes a client for daemon d (borrowed; must outlive it). Returns NULL when memory runs out.
 * Free with qs_rest_free. */
struct qs_rest *qs_rest_new(const struct qs_daemon_info *d);
void qs_rest_free(struct qs_rest *r);

/* Reads the endpoint file of d in config_dir. Errors (with qs_rest_error set): QS_ENOENT (the
 * daemon is not running), QS_EACCES, QS_EPROTO, QS_E2BIG, QS_EIO, QS_ENOMEM. */
int qs_rest_open(struct qs_rest *r, const char *config_dir);
/* Uses endpoint e (copied) instead of a file. */
void qs_rest_use(struct qs_rest *r, const struct qs_endpoint *e);
/* Whole-request timeout (default 120 s; connecting alone is limited to 5 s). */
void qs_rest_set_timeout(struct qs_rest *r, uint32_t timeout_ms);

/* Sends method (e.g. "GET") to path (absolute, already percent-encoded: see qs_rest_escape)
 * with body (borrowed; NULL sends no body) and waits for the answer. On a 2xx answer returns
 * 0 and stores its JSON in *out (a new reference). Errors, each with qs_rest_error set:
 *   QS_ESTATE     neither qs_rest_open nor qs_rest_use succeeded;
 *   QS_ECONN      nothing listens on the port (the daemon is not running) or the connection
 *                 broke;
 *   QS_ETIMEDOUT  no answer in time;
 *   QS_EPROTO     the answer is not JSON, or is larger than 64 MiB;
 *   an HTTP error status, mapped: 400/422 QS_EINVAL, 401/403 QS_EACCES, 404 QS_ENOENT,
 *   409 QS_ECONFLICT, 413/414/431 QS_E2BIG, 503 QS_EAGAIN, others QS_EIO; the message is the
 *   one in the answer's error object, and qs_rest_error_code has its code;
 *   QS_ENOMEM. */
int qs_rest_request(struct qs_rest *r, const char *method, const char *path, const json_t *body,
		    json_t **out);

/* The one-line message of the last failure, starting with the program ("qic: ..."); "" if
 * the last call succeeded. Valid until the next call on r. */
const char *qs_rest_error(const struct qs_rest *r);
/* The error code of the last HTTP error answer ("not_found"), or "". */
const char *qs_rest_error_code(const struct qs_rest *r);
/* The HTTP status of the last answer, 0 if none arrived. */
long qs_rest_status(const struct qs_rest *r);
/* TCP connections opened so far (keep-alive reuses one across requests). */
uint64_t qs_rest_connections(const struct qs_rest *r);

/* Percent-encodes s for use as one path segment or query value (all but A-Z a-z 0-9 - . _ ~)
 * into out. Errors: QS_E2BIG (cap too small; out is then ""). */
int qs_rest_escape(const char *s, char *out, size_t cap);

#endif

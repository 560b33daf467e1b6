/* History operations of the client daemon (HISTORY_SHOW, HISTORY_DOWNLOAD, ROLLBACK) for
 * the REST API: each takes a local absolute path inside a synced root, talks to the server
 * and calls done exactly once with a JSON result (a new reference the callee passes on) or
 * an error. Loop thread only. */
#ifndef QS_CLIENT_HISTORY_H
#define QS_CLIENT_HISTORY_H

#include <stdint.h>

#include <jansson.h>

#include "client/engine.h"

/* err 0: result is the answer object; else message says what failed (result NULL). */
typedef void (*qic_json_done_fn)(void *arg, int err, const char *message, json_t *result);

/* {"root_id", "path", "versions": [{"version", "kind", "size", "mode", "mtime_ns",
 * "content_hash" (hex), "client_id", "client_name", "accepted_unix_ms", "operation"}]} in
 * ascending version order: all stored versions, or the from_head newest (0: all). */
void qic_history_show(struct qic_engine *e, const char *abs_path, uint64_t from_head,
		      qic_json_done_fn done, void *arg);
/* Writes version's content to out_path (absolute; must not exist): {"path", "version",
 * "out", "size"}. */
void qic_history_download(struct qic_engine *e, const char *abs_path, uint64_t version,
			  const char *out_path, qic_json_done_fn done, void *arg);
/* Makes version the path's new version (the current one is looked up first unless
 * current_version is non-zero): {"path", "version" (the new one), "rolled_back_to"}. */
void qic_history_rollback(struct qic_engine *e, const char *abs_path, uint64_t version,
			  uint64_t current_version, qic_json_done_fn done, void *arg);

#endif

/* The qic daemon's local REST API (127.0.0.1, bearer token; net/http.h): the CLI and the GUI
 * drive the engine through these routes. Operations that need the server answer later
 * (deferred requests). */
#include "client/api.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "client/conflict.h"
#include "client/history.h"

unsigned qic_api_status(int err)
{
	switch (err) {
	case 0: return 200;
	case QS_EINVAL:
	case QS_EPROTO: return 400;
	case QS_EACCES:
	case QS_ECERT: return 403;
	case QS_ENOENT: return 404;
	case QS_EEXIST:
	case QS_ECONFLICT:
	case QS_EKIND:
	case QS_EAGAIN: return 409;
	case QS_ECONN:
	case QS_ETIMEDOUT: return 503;
	default: return 500;
	}
}

const char *qic_api_code(int err)
{
	switch (err) {
	case QS_EACCES: return "refused";
	case QS_ECERT: return "certificate_mismatch";
	case QS_ENOENT: return "not_found";
	case QS_EEXIST: return "exists";
	case QS_EAGAIN: return "busy";
	case QS_ECONFLICT: return "stale";
	case QS_EKIND: return "kind_conflict";
	case QS_ECONN:
	case QS_ETIMEDOUT: return "unreachable";
	case QS_EINVAL:
	case QS_EPROTO: return "bad_request";
	default: return "failed";
	}
}

/* A deferred request waiting for an engine operation. The HTTP server may cancel it first
 * (when the daemon stops); the operation's done callback still runs once, and then only
 * frees this. */
struct pending_op {
	struct qs_http_request *req; /* NULL once canceled */
};

static void op_canceled(void *arg)
{
	struct pending_op *op = arg;
	op->req = NULL;
}

static void op_done(void *arg, int err, const char *message, uint64_t id)
{
	struct pending_op *op = arg;
	if (op->req != NULL) {
		json_t *body = NULL;
		if (err == 0) {
			body = json_pack("{s:s,s:I}", "result", message, "id", (json_int_t)id);
		} else {
			qs_http_fail(&body, qic_api_status(err), qic_api_code(err), "%s", message);
		}
		qs_http_complete(op->req, qic_api_status(err), body);
	}
	qs_free(op);
}

/* Defers req until op_done; NULL when memory runs out (then answer at once). */
static struct pending_op *defer_op(struct qs_http_request *req)
{
	struct pending_op *op = qs_calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->req = req;
	qs_http_defer(req, op_canceled, op);
	return op;
}

static const char *str_field(json_t *obj, const char *name)
{
	json_t *v = obj != NULL ? json_object_get(obj, name) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static unsigned post_server(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_engine *e = arg;
	json_t *in = qs_http_body(req);
	const char *host = str_field(in, "host"), *pw = str_field(in, "password");
	const char *fpr = str_field(in, "fingerprint");
	json_t *port = in != NULL ? json_object_get(in, "port") : NULL;
	if (host == NULL || pw == NULL || !json_is_integer(port) || json_integer_value(port) < 1 ||
	    json_integer_value(port) > 65535)
		return qs_http_fail(body, 400, "bad_request", "host, port and password are needed");
	struct pending_op *op = defer_op(req);
	if (op == NULL)
		return qs_http_fail(body, 500, "failed", "out of memory");
	qic_engine_connect_server(e, host, (uint16_t)json_integer_value(port), pw, fpr, op_done,
				  op);
	return QS_HTTP_DEFERRED;
}

static unsigned post_root(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_engine *e = arg;
	json_t *in = qs_http_body(req);
	const char *name = str_field(in, "name"), *pw = str_field(in, "password");
	const char *dir = str_field(in, "dir");
	json_t *create = in != NULL ? json_object_get(in, "create") : NULL;
	if (name == NULL || pw == NULL || dir == NULL || !json_is_boolean(create) || dir[0] != '/')
		return qs_http_fail(body, 400, "bad_request",
				    "name, password, an absolute dir and create are needed");
	struct pending_op *op = defer_op(req);
	if (op == NULL)
		return qs_http_fail(body, 500, "failed", "out of memory");
	qic_engine_add_root(e, json_is_true(create), name, pw, dir, op_done, op);
	return QS_HTTP_DEFERRED;
}

static unsigned delete_root(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_engine *e = arg;
	const char *dir = qs_http_query(req, "dir");
	if (dir == NULL)
		return qs_http_fail(body, 400, "bad_request", "dir is needed");
	int rc = qic_engine_remove_root(e, dir);
	if (rc != 0)
		return qs_http_fail(body, qic_api_status(rc), qic_api_code(rc),
				    "no root is synced in %s", dir);
	return 200;
}

/* {"files": n, "bytes": total, "bytes_done": moved} of one direction; queued paths count as
 * files still to send. */
static json_t *transfers_json(const struct qic_transfers *t, uint64_t queued)
{
	return json_pack("{s:I,s:I,s:I}", "files", (json_int_t)(t->files + queued), "bytes",
			 (json_int_t)t->bytes, "bytes_done", (json_int_t)t->bytes_done);
}

static void add_root_status(void *arg, const struct qic_root_status *st)
{
	json_array_append_new(arg,
			      json_pack("{s:I,s:s,s:s,s:b,s:I,s:I,s:b,s:s,s:I,s:o,s:o}", "root_id",
					(json_int_t)st->root_id, "name", st->name, "dir", st->dir,
					"connected", st->connected, "files", (json_int_t)st->files,
					"pending", (json_int_t)st->pending, "paused", st->paused,
					"pause_reason", st->pause_reason, "conflicts",
					(json_int_t)st->conflicts, "uploads",
					transfers_json(&st->up, st->pending), "downloads",
					transfers_json(&st->down, 0)));
}

/* The transport's byte counters (struct qs_quic_bytes) as an object. */
static json_t *traffic_json(struct qic_engine *e)
{
	struct qs_quic_bytes b;
	qic_engine_traffic(e, &b);
	return json_pack("{s:I,s:I,s:I,s:I}", "stream_sent", (json_int_t)b.stream_sent,
			 "stream_received", (json_int_t)b.stream_received, "udp_sent",
			 (json_int_t)b.udp_sent, "udp_received", (json_int_t)b.udp_received);
}

static unsigned get_status(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	struct qic_engine *e = arg;
	struct qic_status st;
	qic_engine_status(e, &st);
	json_t *roots = json_array();
	qic_engine_each_root(e, add_root_status, roots);
	*body = json_pack("{s:b,s:b,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "configured",
			  st.configured, "connected", st.connected, "server", st.server,
			  "fingerprint", st.fingerprint, "client_id", (json_int_t)st.client_id,
			  "queued", (json_int_t)st.queued, "in_flight", (json_int_t)st.in_flight,
			  "uploaded", (json_int_t)st.uploaded, "downloaded",
			  (json_int_t)st.downloaded, "roots", roots, "traffic", traffic_json(e));
	return 200;
}

static unsigned post_confirm(struct qs_http_request *req, json_t **body, void *arg)
{
	const char *dir = qs_http_query(req, "dir");
	if (dir == NULL)
		return qs_http_fail(body, 400, "bad_request", "dir is needed");
	int rc = qic_engine_confirm(arg, dir);
	if (rc == QS_ESTATE)
		return qs_http_fail(body, 409, "not_paused", "%s is not paused", dir);
	if (rc != 0)
		return qs_http_fail(body, qic_api_status(rc), qic_api_code(rc),
				    "no root is synced in %s", dir);
	return 200;
}

static unsigned post_rescan(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	(void)body;
	qic_engine_rescan(arg);
	return 200;
}

/* ---- history ---- */

/* A deferred request whose operation may outlive it (the daemon shutting down cancels it). */
struct api_op {
	struct qs_http_request *req; /* NULL once cancelled */
};

static void op_cancel(void *arg)
{
	((struct api_op *)arg)->req = NULL;
}

/* Defers req; NULL (and the request is answered 500 by the caller) without memory. */
static struct api_op *op_defer(struct qs_http_request *req)
{
	struct api_op *op = qs_calloc(1, sizeof(*op));
	if (op != NULL) {
		op->req = req;
		qs_http_defer(req, op_cancel, op);
	}
	return op;
}

static void json_done(void *arg, int err, const char *message, json_t *result)
{
	struct api_op *op = arg;
	json_t *body = result;
	if (op->req != NULL) {
		if (err != 0)
			qs_http_fail(&body, qic_api_status(err), qic_api_code(err), "%s", message);
		qs_http_complete(op->req, qic_api_status(err), body);
	} else {
		json_decref(body);
	}
	qs_free(op);
}

/* A JSON body field as a number in [min, max]; absent: def. false if present and bad. */
static bool u64_field(json_t *in, const char *name, uint64_t min, uint64_t max, uint64_t def,
		      uint64_t *out)
{
	json_t *v = in != NULL ? json_object_get(in, name) : NULL;
	*out = def;
	if (v == NULL)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min || (uint64_t)json_integer_value(v) > max)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static unsigned get_history(struct qs_http_request *req, json_t **body, void *arg)
{
	const char *path = qs_http_query(req, "path");
	uint64_t from_head = 0;
	int rc = qs_http_query_u64(req, "from_head", UINT32_MAX, &from_head);
	if (path == NULL || path[0] != '/' || (rc != 0 && rc != QS_ENOENT))
		return qs_http_fail(body, 400, "bad_request",
				    "an absolute path and an optional from_head number are needed");
	struct api_op *op = op_defer(req);
	if (op == NULL)
		return qs_http_fail(body, 500, "failed", "out of memory");
	qic_history_show(arg, path, from_head, json_done, op);
	return QS_HTTP_DEFERRED;
}

static unsigned post_history_download(struct qs_http_request *req, json_t **body, void *arg)
{
	json_t *in = qs_http_body(req);
	const char *path = str_field(in, "path"), *out = str_field(in, "out");
	uint64_t version;
	if (path == NULL || out == NULL || path[0] != '/' || out[0] != '/' ||
	    !u64_field(in, "version", 1, INT64_MAX, 0, &version) || version == 0)
		return qs_http_fail(body, 400, "bad_request",
				    "absolute path and out, and a version, are needed");
	struct api_op *op = op_defer(req);
	if (op == NULL)
		return qs_http_fail(body, 500, "failed", "out of memory");
	qic_history_download(arg, path, version, out, json_done, op);
	return QS_HTTP_DEFERRED;
}

static unsigned post_history_rollback(struct qs_http_request *req, json_t **body, void *arg)
{
	json_t *in = qs_http_body(req);
	const char *path = str_field(in, "path");
	uint64_t version, current;
	if (path == NULL || path[0] != '/' ||
	    !u64_field(in, "version", 1, INT64_MAX, 0, &version) || version == 0 ||
	    !u64_field(in, "current_version", 0, INT64_MAX, 0, &current))
		return qs_http_fail(body, 400, "bad_request",
				    "an absolute path and a version are needed");
	struct api_op *op = op_defer(req);
	if (op == NULL)
		return qs_http_fail(body, 500, "failed", "out of memory");
	qic_history_rollback(arg, path, version, current, json_done, op);
	return QS_HTTP_DEFERRED;
}

int qic_api_routes(struct qic_engine *e, struct qs_http_route *out, size_t cap, size_t *n)
{
	const struct qs_http_route routes[] = {
		{"POST", "/v1/server", NULL, post_server, e},
		{"POST", "/v1/roots", NULL, post_root, e},
		{"DELETE", "/v1/roots", "dir", delete_root, e},
		{"GET", "/v1/status", NULL, get_status, e},
		{"POST", "/v1/rescan", NULL, post_rescan, e},
		{"POST", "/v1/confirm", "dir", post_confirm, e},
		{"GET", "/v1/history", "path,from_head", get_history, e},
		{"POST", "/v1/history/download", NULL, post_history_download, e},
		{"POST", "/v1/history/rollback", NULL, post_history_rollback, e},
	};
	size_t count = sizeof(routes) / sizeof(routes[0]);
	if (cap < count)
		return QS_E2BIG;
	memcpy(out, routes, sizeof(routes));
	*n = count;
	return qic_conflict_routes(e, out, cap, n);
}

/* The qic daemon's local REST API (127.0.0.1, bearer token; net/http.h): the CLI and the GUI
 * drive the engine through these routes. Operations that need the server answer later
 * (deferred requests). */
#include "client/api.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"

static unsigned status_of(int err)
{
	switch (err) {
	case 0: return 200;
	case QS_EINVAL:
	case QS_EPROTO: return 400;
	case QS_EACCES:
	case QS_ECERT: return 403;
	case QS_ENOENT: return 404;
	case QS_EEXIST:
	case QS_EAGAIN: return 409;
	case QS_ECONN:
	case QS_ETIMEDOUT: return 503;
	default: return 500;
	}
}

static const char *code_of(int err)
{
	switch (err) {
	case QS_EACCES: return "refused";
	case QS_ECERT: return "certificate_mismatch";
	case QS_ENOENT: return "not_found";
	case QS_EEXIST: return "exists";
	case QS_EAGAIN: return "busy";
	case QS_ECONN:
	case QS_ETIMEDOUT: return "unreachable";
	case QS_EINVAL:
	case QS_EPROTO: return "bad_request";
	default: return "failed";
	}
}

static void op_done(void *arg, int err, const char *message, uint64_t id)
{
	struct qs_http_request *req = arg;
	json_t *body = NULL;
	if (err == 0) {
		body = json_pack("{s:s,s:I}", "result", message, "id", (json_int_t)id);
	} else {
		qs_http_fail(&body, status_of(err), code_of(err), "%s", message);
	}
	qs_http_complete(req, status_of(err), body);
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
	qs_http_defer(req, NULL, NULL);
	qic_engine_connect_server(e, host, (uint16_t)json_integer_value(port), pw, fpr, op_done,
				  req);
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
	qs_http_defer(req, NULL, NULL);
	qic_engine_add_root(e, json_is_true(create), name, pw, dir, op_done, req);
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
		return qs_http_fail(body, status_of(rc), code_of(rc), "no root is synced in %s",
				    dir);
	return 200;
}

static void add_root_status(void *arg, const struct qic_root_status *st)
{
	json_array_append_new(arg, json_pack("{s:I,s:s,s:s,s:I,s:I,s:b,s:s}", "root_id",
					     (json_int_t)st->root_id, "name", st->name, "dir",
					     st->dir, "files", (json_int_t)st->files, "pending",
					     (json_int_t)st->pending, "paused", st->paused,
					     "pause_reason", st->pause_reason));
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
		return qs_http_fail(body, status_of(rc), code_of(rc), "no root is synced in %s",
				    dir);
	return 200;
}

static unsigned post_rescan(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	(void)body;
	qic_engine_rescan(arg);
	return 200;
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
	};
	size_t count = sizeof(routes) / sizeof(routes[0]);
	if (cap < count)
		return QS_E2BIG;
	memcpy(out, routes, sizeof(routes));
	*n = count;
	return 0;
}

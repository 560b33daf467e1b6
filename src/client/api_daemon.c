/* The qic daemon's configuration, remote-roots and stop routes (api_daemon.h). Times are
 * given as UTC ISO 8601 strings; absent values are JSON null, so scripts can test for them.
 * A listing of the server's roots is a deferred request: it is answered when LIST_ROOTS
 * ends, or canceled (503) if the daemon stops first. */
#include "client/api_daemon.h"

#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"

/* A string member, or null when s is empty. */
static json_t *str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t unix_ms)
{
	if (unix_ms <= 0)
		return json_null();
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;
	char buf[32];
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

static void add_root(void *arg, const struct qic_root_status *st)
{
	json_array_append_new(arg, json_pack("{s:s,s:s,s:I}", "dir", st->dir, "name", st->name,
					     "root_id", (json_int_t)st->root_id));
}

static unsigned get_config(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	struct qic_api_daemon *d = arg;
	struct qic_status st;
	qic_engine_status(d->e, &st);
	json_t *server = json_null();
	if (st.configured)
		server = json_pack("{s:s,s:i,s:s,s:b}", "host", st.host, "port", (int)st.port,
				   "fingerprint", st.fingerprint, "connected", st.connected);
	json_t *roots = json_array();
	qic_engine_each_root(d->e, add_root, roots);
	*body = json_pack("{s:o,s:o,s:s,s:s,s:o,s:i,s:I,s:s,s:o,s:o}", "client_id",
			  st.configured ? json_integer((json_int_t)st.client_id) : json_null(),
			  "client_name", str_or_null(st.client_name), "config_dir", d->config_dir,
			  "data_dir", d->data_dir, "log", str_or_null(d->log_path), "rest_port",
			  (int)d->rest_port, "pid", (json_int_t)d->pid, "version", QS_VERSION,
			  "server", server, "roots", roots);
	return *body != NULL ? 200 : 500;
}

static unsigned get_config_server(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	struct qic_api_daemon *d = arg;
	struct qic_status st;
	qic_engine_status(d->e, &st);
	*body = json_pack(
		"{s:b,s:o,s:o,s:o,s:o,s:b,s:o,s:o,s:o}", "configured", st.configured, "host",
		str_or_null(st.host), "port", st.port != 0 ? json_integer(st.port) : json_null(),
		"fingerprint", str_or_null(st.fingerprint), "client_id",
		st.configured ? json_integer((json_int_t)st.client_id) : json_null(), "connected",
		st.connected, "connected_since", time_or_null(st.connected_since_ms), "last_error",
		str_or_null(st.last_error), "last_error_at", time_or_null(st.last_error_ms));
	return *body != NULL ? 200 : 500;
}

/* ---- GET /v1/server/roots ---- */

struct remote_req {
	struct qic_api_daemon *d;
	struct qs_http_request *req; /* NULL once the server canceled it */
};

static void remote_canceled(void *arg)
{
	struct remote_req *rr = arg;
	rr->req = NULL;
}

static void remote_done(void *arg, int err, const char *message,
			const struct qic_remote_root *roots, size_t n)
{
	struct remote_req *rr = arg;
	if (rr->req == NULL) {
		qs_free(rr);
		return;
	}
	json_t *body = NULL;
	unsigned status = 200;
	if (err == QS_ECONN || err == QS_ETIMEDOUT)
		status = qs_http_fail(&body, 503, "unreachable", "%s", message);
	else if (err == QS_EACCES)
		status = qs_http_fail(&body, 403, "refused", "%s", message);
	else if (err == QS_EPROTO || err == QS_E2BIG)
		status = qs_http_fail(&body, 502, "bad_answer", "%s", message);
	else if (err != 0)
		status = qs_http_fail(&body, 500, "failed", "%s", message);
	if (err == 0) {
		json_t *list = json_array();
		for (size_t i = 0; i < n; i++) {
			struct qic_root *local = qic_root_by_id(rr->d->e, roots[i].root_id);
			json_array_append_new(
				list,
				json_pack("{s:s,s:I,s:b,s:o}", "name", roots[i].name, "root_id",
					  (json_int_t)roots[i].root_id, "joined", roots[i].joined,
					  "dir",
					  local != NULL ? json_string(local->dir) : json_null()));
		}
		body = json_pack("{s:o}", "roots", list);
	}
	qs_http_complete(rr->req, status, body);
	qs_free(rr);
}

static unsigned get_remote_roots(struct qs_http_request *req, json_t **body, void *arg)
{
	struct qic_api_daemon *d = arg;
	if (qic_engine_conn(d->e) == NULL)
		return qs_http_fail(body, 503, "unreachable",
				    "not connected to a server (qic connect server first, or see "
				    "qic config server)");
	struct remote_req *rr = qs_calloc(1, sizeof(*rr));
	if (rr == NULL)
		return qs_http_fail(body, 500, "failed", "out of memory");
	rr->d = d;
	rr->req = req;
	qs_http_defer(req, remote_canceled, rr);
	qic_engine_list_remote(d->e, remote_done, rr);
	return QS_HTTP_DEFERRED;
}

/* ---- POST /v1/stop ---- */

static unsigned post_stop(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	struct qic_api_daemon *d = arg;
	d->stop(d->stop_arg);
	*body = json_pack("{s:s,s:I}", "result", "stopping", "pid", (json_int_t)d->pid);
	return *body != NULL ? 200 : 500;
}

int qic_api_daemon_routes(struct qic_api_daemon *d, struct qs_http_route *out, size_t cap,
			  size_t *n)
{
	const struct qs_http_route routes[QIC_API_DAEMON_ROUTES] = {
		{"GET", "/v1/config", NULL, get_config, d},
		{"GET", "/v1/config/server", NULL, get_config_server, d},
		{"GET", "/v1/server/roots", NULL, get_remote_roots, d},
		{"POST", "/v1/stop", NULL, post_stop, d},
	};
	if (cap < QIC_API_DAEMON_ROUTES)
		return QS_E2BIG;
	memcpy(out, routes, sizeof(routes));
	*n = QIC_API_DAEMON_ROUTES;
	return 0;
}

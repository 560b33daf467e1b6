/* Local REST server for both daemons (and later the web GUI): libmicrohttpd 0.9.75 bound to
 * 127.0.0.1, driven by the daemon's libuv loop, with a routing table of JSON handlers. Every
 * request must carry "Authorization: Bearer <token>"; requests whose Host or Origin is not
 * loopback are refused, so other users and web pages cannot drive the daemon. Conventions,
 * error format and limits: docs/http.md.
 *
 * Threading: MHD runs in external-epoll mode (no MHD thread): its epoll descriptor is watched
 * by a uv_poll_t and its timeouts by a uv_timer_t, so every function here must be called on
 * the loop's thread and every handler runs on it; handlers may use the daemon's state freely.
 * A handler that needs to wait (a network round trip) defers its answer and completes it
 * later from the loop; the HTTP connection is suspended meanwhile.
 *
 * Lifetimes: a struct qs_http_request is owned by the server. It is valid while its handler
 * runs, and for a deferred request until qs_http_complete (or its on_cancel callback) returns.
 */
#ifndef QS_NET_HTTP_H
#define QS_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

struct qs_http_server;
struct qs_http_request;

/* A handler returns this instead of a status after calling qs_http_defer. */
#define QS_HTTP_DEFERRED 0u

/* Handles one request. Returns the HTTP status (200..599) and may set *body to a JSON value
 * whose reference passes to the server (left NULL: "{}" for a success, the standard error
 * object for an error status). Returns QS_HTTP_DEFERRED after qs_http_defer. A status outside
 * 200..599 is answered with 500. */
typedef unsigned (*qs_http_handler_fn)(struct qs_http_request *req, json_t **body, void *arg);

/* One row of the routing table. Patterns are absolute paths whose segments are literals or
 * "{name}" parameters matching one whole non-empty segment, e.g. "/v1/clients/{id}". A
 * request matches a row when every segment matches, so "/v1/clients/" and "/v1//clients"
 * match nothing. */
struct qs_http_route {
	const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *pattern; /* see above; at most QS_HTTP_MAX_SEGMENTS segments */
	const char *query;   /* accepted query parameter names, comma-separated ("id,all"), or
			      * NULL when the route takes none; others are refused with 400 */
	qs_http_handler_fn handler;
	void *arg;
};

#define QS_HTTP_MAX_SEGMENTS 16 /* path segments in a pattern or a request */
#define QS_HTTP_MAX_PARAMS 8    /* "{name}" parameters in a pattern */
#define QS_HTTP_MAX_QUERY 16    /* query parameters in a request */

struct qs_http_limits {
	size_t max_body_bytes;   /* request body (default 1 MiB); more is 413 */
	size_t max_header_bytes; /* request line and headers (default 16 KiB); more is 431 */
	size_t max_url_bytes;    /* request target, path and query (default 4 KiB); more is 414 */
	unsigned max_conns;      /* concurrent connections (default 32) */
	unsigned idle_timeout_s; /* an idle keep-alive connection is closed after (default 60) */
	unsigned drain_ms;       /* at shutdown, in-flight answers get this long (default 1000) */
};

struct qs_http_config {
	uint16_t port;     /* on 127.0.0.1; 0 picks a free port (see qs_http_server_port) */
	const char *token; /* the bearer token: 1..256 printable ASCII characters, no spaces;
			    * copied */
	const struct qs_http_route *routes; /* borrowed: must outlive the server */
	size_t nroutes;
	struct qs_http_limits limits;
};

/* Fills the defaults above (port 0, no token, no routes). */
void qs_http_config_default(struct qs_http_config *c);

/* Checks that every route has a method, a handler and a well-formed pattern and query list.
 * Errors: QS_EINVAL. */
int qs_http_routes_check(const struct qs_http_route *routes, size_t nroutes);

/* Binds 127.0.0.1:port and starts serving on loop. Errors: QS_EINVAL (token, routes, limits),
 * QS_EIO (the port is taken or MHD could not start), QS_ENOMEM. */
int qs_http_server_new(uv_loop_t *loop, const struct qs_http_config *cfg,
		       struct qs_http_server **out);
/* The bound port (the chosen one when the config said 0). */
uint16_t qs_http_server_port(const struct qs_http_server *s);
/* Stops accepting connections, answers every deferred request with 503 (after calling its
 * on_cancel), lets answers in flight finish for up to limits.drain_ms, then closes every
 * connection and handle and calls done (may be NULL); afterwards free the server with
 * qs_http_server_free. May be called from a handler. Calling it twice is a bug. */
void qs_http_server_shutdown(struct qs_http_server *s, void (*done)(void *arg), void *arg);
/* Frees a server whose shutdown has called done (NULL is fine). Wipes the token. */
void qs_http_server_free(struct qs_http_server *s);

/* ---- In a handler: the parsed request ------------------------------------------------- */

/* The method ("GET", ...) and the raw path (percent-encoded, without the query). */
const char *qs_http_method(const struct qs_http_request *req);
const char *qs_http_path(const struct qs_http_request *req);
/* The value of the pattern's "{name}" segment, percent-decoded: valid UTF-8 without control
 * characters (it may contain '/' sent as %2F). NULL if the pattern has no such name. */
const char *qs_http_param(const struct qs_http_request *req, const char *name);
/* The value of query parameter name, decoded ('+' is a space) and validated like path
 * parameters; "" for "?name" without '='. NULL when absent. */
const char *qs_http_query(const struct qs_http_request *req, const char *name);
/* Query parameter as a decimal number in [0, max] (base/num.h). Errors: QS_ENOENT (absent),
 * QS_EINVAL (not a number), QS_E2BIG (> max); *out is written only on success. */
int qs_http_query_u64(const struct qs_http_request *req, const char *name, uint64_t max,
		      uint64_t *out);
/* Query parameter as a boolean: absent is false; "", "1", "true" are true; "0", "false" are
 * false. Errors: QS_EINVAL (anything else). */
int qs_http_query_bool(const struct qs_http_request *req, const char *name, bool *out);
/* The request body parsed as JSON (an object or an array), or NULL when the request had no
 * body. Borrowed: valid as long as the request; take a reference to keep it. */
json_t *qs_http_body(const struct qs_http_request *req);

/* Makes the error object {"error":{"code":code,"message":...}}, stores it in *body and returns
 * status: `return qs_http_fail(body, 404, "not_found", "no client %s", id);`. code is a short
 * snake_case word. If memory runs out *body stays NULL and the server sends the standard
 * error for status. */
unsigned qs_http_fail(json_t **body, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- Deferred answers ------------------------------------------------------------------ */

/* Called in a handler that will answer later; the handler then returns QS_HTTP_DEFERRED.
 * The request and its accessors stay valid until the owner calls qs_http_complete, exactly
 * once. If the server shuts down first, on_cancel(arg) runs instead (the client gets 503) and
 * the request must not be used afterwards. on_cancel may be NULL. */
void qs_http_defer(struct qs_http_request *req, void (*on_cancel)(void *arg), void *arg);
/* Answers a deferred request with status and body (its reference passes to the server, NULL
 * as for handlers). The request is invalid afterwards. Loop thread only; may be called from
 * inside the handler that deferred. */
void qs_http_complete(struct qs_http_request *req, unsigned status, json_t *body);

/* ---- Without sockets -------------------------------------------------------------------- */

/* Runs the routing, query and body stages of the server on a request given as text, then the
 * matched handler, exactly as the server would after authentication: for handler unit tests
 * and fuzzing. target is the raw request target ("/v1/x?y=1"), body may be NULL when
 * body_len is 0. Returns the status and stores the answer in *reply (a new reference, NULL
 * only if memory ran out). A handler that defers is canceled (its on_cancel runs) and the
 * answer is 500: deferral needs the server. */
unsigned qs_http_dispatch(const struct qs_http_route *routes, size_t nroutes,
			  const struct qs_http_limits *limits, const char *method,
			  const char *target, size_t target_len, const void *body, size_t body_len,
			  json_t **reply);

#endif

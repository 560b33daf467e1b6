/* Local REST server: libmicrohttpd in external-epoll mode driven by the daemon's libuv loop
 * (a uv_poll_t on MHD's epoll descriptor plus a uv_timer_t for its timeouts), a routing table
 * of JSON handlers, bearer-token and loopback Host/Origin checks, and deferred answers through
 * MHD's suspend/resume. Owns its requests: each is made when MHD reads a request line and
 * freed when MHD reports the request complete. Invariant: a request is answered exactly once,
 * always on or after the second access-handler call so the connection stays alive. */
#include "net/http.h"

#include <assert.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "base/utf8.h"

#define HTTP_METHOD_MAX 16 /* bytes in a method we keep, with the NUL */
#define HTTP_TOKEN_MAX 256
#define HTTP_ALLOW_MAX 64

/* Sent when even the error object cannot be built. */
static const char oom_reply[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

enum req_stage {
	STAGE_NEW,  /* the request line was read; the first handler call has not happened */
	STAGE_BODY, /* headers checked; body arriving (or an error answer waiting) */
	STAGE_WAIT, /* deferred: the connection is suspended until qs_http_complete */
	STAGE_SENT, /* the answer is queued */
};

struct http_kv {
	const char *name; /* for path parameters: points into the pattern, not NUL-terminated */
	size_t name_len;
	const char *value; /* NUL-terminated, in the request's work buffer */
};

struct qs_http_request {
	struct qs_http_server *server; /* NULL under qs_http_dispatch */
	struct MHD_Connection *conn;
	struct qs_http_request *prev, *next; /* the server's list of deferred requests */
	enum req_stage stage;
	char method[HTTP_METHOD_MAX];
	char *target; /* the raw request target as received */
	size_t target_len;
	char *work;      /* copy of target, split and decoded in place */
	size_t path_len; /* bytes of the raw path in target */
	char *query_str; /* in work, after '?'; NULL without a query */
	bool path_unmatchable;
	const char *segs[QS_HTTP_MAX_SEGMENTS];
	size_t seg_lens[QS_HTTP_MAX_SEGMENTS];
	size_t nsegs;
	const struct qs_http_route *route;
	struct http_kv params[QS_HTTP_MAX_PARAMS];
	size_t nparams;
	struct http_kv query[QS_HTTP_MAX_QUERY];
	size_t nquery;
	struct qs_buf body_buf;
	json_t *body;
	unsigned status; /* the answer, once decided (0: not yet) */
	json_t *reply;
	char allow[HTTP_ALLOW_MAX]; /* for 405 */
	bool in_handler, deferred, completed;
	void (*on_cancel)(void *arg);
	void *cancel_arg;
};

struct qs_http_server {
	uv_loop_t *loop;
	struct qs_http_config cfg;
	char *token;
	size_t token_len;
	struct MHD_Daemon *mhd;
	uint16_t port;
	uv_poll_t poll;
	uv_timer_t timer;
	struct qs_http_request *deferred; /* head of the list of suspended requests */
	bool in_run, rerun, draining, stopped;
	uint64_t drain_deadline_ms;
	int handles_open;
	void (*done)(void *arg);
	void *done_arg;
	struct qs_ratelimit log_rl;
};

void qs_http_config_default(struct qs_http_config *c)
{
	memset(c, 0, sizeof(*c));
	c->limits.max_body_bytes = 1u << 20;
	c->limits.max_header_bytes = 16u << 10;
	c->limits.max_url_bytes = 4u << 10;
	c->limits.max_conns = 32;
	c->limits.idle_timeout_s = 60;
	c->limits.drain_ms = 1000;
}

/* ---- route table checks ----------------------------------------------------------------- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool literal_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static bool segment_valid(const char *p, size_t len)
{
	if (len == 0)
		return false;
	if (p[0] == '{') {
		if (len < 3 || p[len - 1] != '}')
			return false;
		for (size_t i = 1; i + 1 < len; i++)
			if (!name_char(p[i]))
				return false;
		return true;
	}
	if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!literal_char(p[i]))
			return false;
	return true;
}

static bool pattern_valid(const char *pattern)
{
	if (pattern == NULL || pattern[0] != '/')
		return false;
	const char *p = pattern + 1;
	if (*p == '\0')
		return true;
	size_t nsegs = 0, nparams = 0;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (!segment_valid(p, len) || ++nsegs > QS_HTTP_MAX_SEGMENTS)
			return false;
		if (p[0] == '{' && ++nparams > QS_HTTP_MAX_PARAMS)
			return false;
		if (end == NULL)
			return true;
		p = end + 1;
	}
}

static bool query_list_valid(const char *list)
{
	if (list == NULL)
		return true;
	size_t run = 0;
	for (const char *p = list;; p++) {
		if (*p == ',' || *p == '\0') {
			if (run == 0)
				return false;
			if (*p == '\0')
				return true;
			run = 0;
		} else if (name_char(*p)) {
			run++;
		} else {
			return false;
		}
	}
}

static bool method_valid(const char *m)
{
	if (m == NULL || m[0] == '\0' || strlen(m) >= HTTP_METHOD_MAX)
		return false;
	for (const char *p = m; *p != '\0'; p++)
		if (*p < 'A' || *p > 'Z')
			return false;
	return true;
}

int qs_http_routes_check(const struct qs_http_route *routes, size_t nroutes)
{
	if (routes == NULL && nroutes != 0)
		return QS_EINVAL;
	for (size_t i = 0; i < nroutes; i++) {
		const struct qs_http_route *r = &routes[i];
		if (!method_valid(r->method) || !pattern_valid(r->pattern) ||
		    !query_list_valid(r->query) || r->handler == NULL)
			return QS_EINVAL;
	}
	return 0;
}

/* ---- text helpers ----------------------------------------------------------------------- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Valid UTF-8 without NUL or other control characters: what a decoded parameter may hold. */
static bool text_valid(const char *s, size_t len)
{
	if (!qs_utf8_valid_nonul(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* Percent-decodes the len bytes at s in place ('+' as a space when plus_space), writes a NUL
 * after the result (at most at s[len]) and validates it. Errors: QS_EPROTO. */
static int pct_decode(char *s, size_t len, bool plus_space, size_t *out_len)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (len - i < 3)
				return QS_EPROTO;
			int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
			if (hi < 0 || lo < 0)
				return QS_EPROTO;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		s[o++] = c;
	}
	s[o] = '\0';
	if (!text_valid(s, o))
		return QS_EPROTO;
	*out_len = o;
	return 0;
}

static bool ascii_prefix_ci(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != *prefix)
			return false;
	}
	return true;
}

/* True if hostport ("127.0.0.1:6130", "localhost", "[::1]:80") names this machine's loopback
 * interface: what Host and Origin must say, so a DNS-rebound name or a web page is refused. */
static bool loopback_hostport(const char *hp)
{
	static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		size_t n = strlen(hosts[i]);
		if (!ascii_prefix_ci(hp, hosts[i]))
			continue;
		const char *rest = hp + n;
		if (*rest == '\0')
			return true;
		uint64_t port;
		return rest[0] == ':' && qs_parse_u64(rest + 1, 65535, &port) == 0;
	}
	return false;
}

static bool loopback_origin(const char *origin)
{
	if (ascii_prefix_ci(origin, "http://"))
		return loopback_hostport(origin + 7);
	if (ascii_prefix_ci(origin, "https://"))
		return loopback_hostport(origin + 8);
	return false;
}

/* Compares in time that depends only on the expected token's length. */
static bool token_equal(const char *got, size_t got_len, const char *want, size_t want_len)
{
	unsigned char diff = got_len != want_len;
	for (size_t i = 0; i < want_len; i++) {
		unsigned char g = i < got_len ? (unsigned char)got[i] : 0;
		diff |= (unsigned char)(g ^ (unsigned char)want[i]);
	}
	return diff == 0;
}

static bool token_valid(const char *t)
{
	if (t == NULL)
		return false;
	size_t n = strlen(t);
	if (n == 0 || n > HTTP_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (t[i] <= ' ' || t[i] > '~')
			return false;
	return true;
}

/* ---- answers ---------------------------------------------------------------------------- */

static const char *status_code_word(unsigned status)
{
	switch (status) {
	case 400: return "bad_request";
	case 401: return "unauthorized";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 411: return "length_required";
	case 413: return "payload_too_large";
	case 414: return "uri_too_long";
	case 415: return "unsupported_media_type";
	case 422: return "unprocessable";
	case 429: return "too_many_requests";
	case 431: return "header_too_large";
	case 503: return "unavailable";
	default: return status >= 500 ? "internal" : "error";
	}
}

static json_t *error_json_v(const char *code, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static json_t *error_json_v(const char *code, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A message may quote request bytes: keep it printable UTF-8, as JSON strings must be. */
	size_t n = strlen(msg);
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)msg[i];
		size_t seq = c < 0x80 ? 1 : qs_utf8_sequence((const unsigned char *)msg + i, n - i);
		if (seq == 0 || c < 0x20 || c == 0x7f) {
			msg[i] = '?';
			seq = 1;
		}
		i += seq;
	}
	return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}

static json_t *error_json(const char *code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static json_t *error_json(const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_t *j = error_json_v(code, fmt, ap);
	va_end(ap);
	return j;
}

unsigned qs_http_fail(json_t **body, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_t *j = error_json_v(code, fmt, ap);
	va_end(ap);
	if (*body != NULL)
		json_decref(*body);
	*body = j;
	return status;
}

/* Decides the answer: takes the reference to body. */
static void req_answer(struct qs_http_request *req, unsigned status, json_t *body)
{
	assert(req->status == 0);
	if (status < 200 || status > 599) {
		qs_warn("http", "event=bad_status status=%u path=%.200s", status, req->target);
		json_decref(body);
		body = NULL;
		status = 500;
	}
	if (body == NULL && status >= 400)
		body = error_json(status_code_word(status), "HTTP %u", status);
	else if (body == NULL)
		body = json_object();
	req->status = status;
	req->reply = body;
}

/* ---- request parsing: target, route, query, body ---------------------------------------- */

/* Splits the target into path and query and decodes the path segments. Returns 0 or an
 * error status with *err set. */
static unsigned target_parse(struct qs_http_request *req, json_t **err)
{
	const char *t = req->target;
	size_t len = req->target_len;
	if (len == 0 || t[0] != '/' || memchr(t, '#', len) != NULL ||
	    memchr(t, '\0', len) != NULL) {
		*err = error_json("bad_request", "the request target must be an absolute path");
		return 400;
	}
	req->work = qs_strndup(t, len);
	if (req->work == NULL)
		return 500;
	char *q = memchr(req->work, '?', len);
	req->path_len = q != NULL ? (size_t)(q - req->work) : len;
	req->target[req->path_len] = '\0'; /* the target keeps the raw path only */
	if (q != NULL) {
		*q = '\0';
		req->query_str = q + 1;
	}
	char *path_end = req->work + req->path_len;
	for (char *p = req->work + 1; req->path_len > 1;) {
		char *slash = memchr(p, '/', (size_t)(path_end - p));
		char *end = slash != NULL ? slash : path_end;
		size_t seg_len;
		if (end == p || req->nsegs == QS_HTTP_MAX_SEGMENTS) {
			req->path_unmatchable = true; /* empty segment or too many: no route fits */
			break;
		}
		if (pct_decode(p, (size_t)(end - p), false, &seg_len) != 0) {
			*err = error_json("bad_request", "the path is not valid percent-encoded "
							 "UTF-8 without control characters");
			return 400;
		}
		req->segs[req->nsegs] = p;
		req->seg_lens[req->nsegs++] = seg_len;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return 0;
}

/* Matches the decoded segments against pattern; fills the parameters when fill is set. */
static bool pattern_match(struct qs_http_request *req, const char *pattern, bool fill)
{
	const char *p = pattern + 1;
	size_t i = 0, np = 0;
	if (req->path_unmatchable)
		return false;
	if (*p == '\0')
		return req->nsegs == 0;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (i == req->nsegs)
			return false;
		if (p[0] == '{') {
			if (fill)
				req->params[np] = (struct http_kv){p + 1, len - 2, req->segs[i]};
			np++;
		} else if (len != req->seg_lens[i] || memcmp(p, req->segs[i], len) != 0) {
			return false;
		}
		i++;
		if (end == NULL)
			break;
		p = end + 1;
	}
	if (i != req->nsegs)
		return false;
	if (fill)
		req->nparams = np;
	return true;
}

static void allow_add(char *allow, const char *method)
{
	size_t used = strlen(allow), n = strlen(method);
	const char *p = allow;
	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return;
		p += n;
	}
	if (used + n + 3 > HTTP_ALLOW_MAX)
		return;
	if (used > 0) {
		memcpy(allow + used, ", ", 2);
		used += 2;
	}
	memcpy(allow + used, method, n + 1);
}

static unsigned route_select(struct qs_http_request *req, const struct qs_http_route *routes,
			     size_t nroutes, json_t **err)
{
	req->allow[0] = '\0';
	for (size_t i = 0; i < nroutes; i++) {
		if (!pattern_match(req, routes[i].pattern, false))
			continue;
		if (strcmp(routes[i].method, req->method) == 0) {
			req->route = &routes[i];
			pattern_match(req, routes[i].pattern, true);
			return 0;
		}
		allow_add(req->allow, routes[i].method);
	}
	if (req->allow[0] != '\0') {
		*err = error_json("method_not_allowed", "%s is not allowed here (allowed: %s)",
				  req->method, req->allow);
		return 405;
	}
	*err = error_json("not_found", "no such endpoint: %.200s", req->target);
	return 404;
}

static bool query_name_allowed(const char *list, const char *name, size_t len)
{
	if (list == NULL)
		return false;
	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == len && memcmp(p, name, n) == 0)
			return true;
		if (comma == NULL)
			return false;
		p = comma + 1;
	}
}

static const struct http_kv *kv_find(const struct http_kv *kv, size_t n, const char *name,
				     size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (kv[i].name_len == len && memcmp(kv[i].name, name, len) == 0)
			return &kv[i];
	return NULL;
}

/* Decodes and validates one "name[=value]" pair in place. Returns 0 or a status. */
static unsigned query_pair(struct qs_http_request *req, char *pair, json_t **err)
{
	char *eq = strchr(pair, '=');
	char *value = eq != NULL ? eq + 1 : pair + strlen(pair);
	size_t name_len, value_len;
	if (eq != NULL)
		*eq = '\0';
	if (pct_decode(pair, strlen(pair), true, &name_len) != 0 ||
	    pct_decode(value, strlen(value), true, &value_len) != 0) {
		*err = error_json("invalid_query", "a query parameter is not valid percent-encoded "
						   "UTF-8 without control characters");
		return 400;
	}
	if (!query_name_allowed(req->route->query, pair, name_len)) {
		*err = error_json("invalid_query", "unknown query parameter '%.64s'", pair);
		return 400;
	}
	if (kv_find(req->query, req->nquery, pair, name_len) != NULL) {
		*err = error_json("invalid_query", "query parameter '%s' given twice", pair);
		return 400;
	}
	if (req->nquery == QS_HTTP_MAX_QUERY) {
		*err = error_json("invalid_query", "more than %d query parameters",
				  QS_HTTP_MAX_QUERY);
		return 400;
	}
	req->query[req->nquery++] = (struct http_kv){pair, name_len, value};
	return 0;
}

static unsigned query_parse(struct qs_http_request *req, json_t **err)
{
	char *p = req->query_str;
	while (p != NULL) {
		char *amp = strchr(p, '&');
		if (amp != NULL)
			*amp = '\0';
		if (*p != '\0') {
			unsigned st = query_pair(req, p, err);
			if (st != 0)
				return st;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return 0;
}

static unsigned request_route(struct qs_http_request *req, const struct qs_http_route *routes,
			      size_t nroutes, json_t **err)
{
	unsigned st = target_parse(req, err);
	if (st == 0)
		st = route_select(req, routes, nroutes, err);
	if (st == 0)
		st = query_parse(req, err);
	return st;
}

static unsigned body_parse(struct qs_http_request *req, json_t **err)
{
	if (req->body_buf.len == 0)
		return 0;
	json_error_t e;
	req->body = json_loadb((const char *)req->body_buf.data, req->body_buf.len,
			       JSON_REJECT_DUPLICATES, &e);
	if (req->body == NULL) {
		*err = error_json("invalid_json",
				  "the body is not valid JSON: %s (line %d, column %d)", e.text,
				  e.line, e.column);
		return 400;
	}
	return 0;
}

static void deferred_unlink(struct qs_http_request *req);

/* Runs the handler; on return the answer is decided unless the request was deferred. */
static void request_run(struct qs_http_request *req)
{
	json_t *body = NULL;
	req->in_handler = true;
	unsigned st = req->route->handler(req, &body, req->route->arg);
	req->in_handler = false;
	if (st == QS_HTTP_DEFERRED && (req->deferred || req->completed))
		return; /* waiting, or completed from inside the handler */
	if (req->deferred) {
		/* A handler bug: it deferred but answered too. The answer wins. */
		qs_warn("http", "event=defer_misuse path=%.200s", req->target);
		assert(!req->deferred);
		if (req->server != NULL)
			deferred_unlink(req);
		req->deferred = false;
	}
	req_answer(req, st, body);
}

/* ---- request accessors ----------------------------------------------------------------- */

const char *qs_http_method(const struct qs_http_request *req)
{
	return req->method;
}

const char *qs_http_path(const struct qs_http_request *req)
{
	return req->work != NULL ? req->target : "";
}

const char *qs_http_param(const struct qs_http_request *req, const char *name)
{
	const struct http_kv *kv = kv_find(req->params, req->nparams, name, strlen(name));
	return kv != NULL ? kv->value : NULL;
}

const char *qs_http_query(const struct qs_http_request *req, const char *name)
{
	const struct http_kv *kv = kv_find(req->query, req->nquery, name, strlen(name));
	return kv != NULL ? kv->value : NULL;
}

int qs_http_query_u64(const struct qs_http_request *req, const char *name, uint64_t max,
		      uint64_t *out)
{
	const char *v = qs_http_query(req, name);
	if (v == NULL)
		return QS_ENOENT;
	return qs_parse_u64(v, max, out);
}

int qs_http_query_bool(const struct qs_http_request *req, const char *name, bool *out)
{
	const char *v = qs_http_query(req, name);
	if (v == NULL || strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		*out = false;
	else if (v[0] == '\0' || strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
		*out = true;
	else
		return QS_EINVAL;
	return 0;
}

json_t *qs_http_body(const struct qs_http_request *req)
{
	return req->body;
}

/* ---- request lifetime ------------------------------------------------------------------- */

static struct qs_http_request *request_new(struct qs_http_server *s, const char *target,
					   size_t target_len, size_t max_body)
{
	struct qs_http_request *req = qs_calloc(1, sizeof(*req));
	if (req == NULL)
		return NULL;
	req->target = qs_strndup(target, target_len);
	if (req->target == NULL) {
		qs_free(req);
		return NULL;
	}
	req->server = s;
	req->target_len = target_len;
	qs_buf_init(&req->body_buf, max_body);
	return req;
}

static void deferred_unlink(struct qs_http_request *req)
{
	struct qs_http_server *s = req->server;
	if (req->prev != NULL)
		req->prev->next = req->next;
	else if (s->deferred == req)
		s->deferred = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
}

static void request_free(struct qs_http_request *req)
{
	json_decref(req->body);
	json_decref(req->reply);
	qs_buf_release(&req->body_buf);
	qs_free(req->work);
	qs_free(req->target);
	qs_free(req);
}

static void http_kick(struct qs_http_server *s);

void qs_http_defer(struct qs_http_request *req, void (*on_cancel)(void *arg), void *arg)
{
	assert(req->in_handler && !req->deferred);
	req->deferred = true;
	req->on_cancel = on_cancel;
	req->cancel_arg = arg;
	struct qs_http_server *s = req->server;
	if (s != NULL) {
		req->next = s->deferred;
		if (s->deferred != NULL)
			s->deferred->prev = req;
		s->deferred = req;
	}
}

void qs_http_complete(struct qs_http_request *req, unsigned status, json_t *body)
{
	assert(req->deferred && !req->completed);
	req->completed = true;
	req->deferred = false;
	if (req->server != NULL)
		deferred_unlink(req);
	req_answer(req, status, body);
	if (req->stage == STAGE_WAIT) {
		MHD_resume_connection(req->conn);
		http_kick(req->server);
	}
}

/* Cancels every deferred request: its owner hears on_cancel, the client gets 503. */
static void cancel_deferred(struct qs_http_server *s)
{
	while (s->deferred != NULL) {
		struct qs_http_request *req = s->deferred;
		deferred_unlink(req);
		req->deferred = false;
		req->completed = true;
		if (req->on_cancel != NULL)
			req->on_cancel(req->cancel_arg);
		req_answer(req, 503, error_json("unavailable", "the daemon is shutting down"));
		if (req->stage == STAGE_WAIT) {
			MHD_resume_connection(req->conn);
			http_kick(s);
		}
	}
}

/* ---- MHD callbacks ---------------------------------------------------------------------- */

static enum MHD_Result reply_queue(struct qs_http_server *s, struct qs_http_request *req)
{
	char *text = req->reply != NULL ? json_dumps(req->reply, JSON_COMPACT) : NULL;
	struct MHD_Response *r;
	if (text != NULL)
		r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
	else
		r = MHD_create_response_from_buffer(sizeof(oom_reply) - 1, (void *)oom_reply,
						    MHD_RESPMEM_PERSISTENT);
	free(text); /* jansson's default allocator */
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (req->status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (req->status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, req->allow);
	if (s->draining)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(req->conn, req->status, r);
	MHD_destroy_response(r);
	req->stage = STAGE_SENT;
	qs_debug("http", "method=%s path=%.200s status=%u", req->method, req->target, req->status);
	return ret;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static unsigned check_auth(struct qs_http_server *s, struct MHD_Connection *conn, json_t **err)
{
	const char *host = header(conn, MHD_HTTP_HEADER_HOST);
	if (host != NULL && !loopback_hostport(host)) {
		*err = error_json("forbidden_host", "requests must be addressed to 127.0.0.1 or "
						    "localhost");
		return 403;
	}
	const char *origin = header(conn, MHD_HTTP_HEADER_ORIGIN);
	if (origin != NULL && !loopback_origin(origin)) {
		*err = error_json("forbidden_origin",
				  "requests from other web origins are refused");
		return 403;
	}
	const char *auth = header(conn, MHD_HTTP_HEADER_AUTHORIZATION);
	if (auth == NULL || !ascii_prefix_ci(auth, "bearer ") ||
	    !token_equal(auth + 7, strlen(auth + 7), s->token, s->token_len)) {
		*err = error_json("unauthorized",
				  auth == NULL ? "missing bearer token" : "wrong bearer token");
		return 401;
	}
	return 0;
}

static bool json_content_type(const char *ct)
{
	if (ct == NULL || !ascii_prefix_ci(ct, "application/json"))
		return false;
	char next = ct[strlen("application/json")];
	return next == '\0' || next == ';' || next == ' ';
}

/* The body's framing: Content-Length only (stored in *len), within the limit. */
static unsigned check_framing(struct qs_http_server *s, struct MHD_Connection *conn, uint64_t *len,
			      json_t **err)
{
	if (header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL) {
		*err = error_json("length_required", "send the body with a Content-Length");
		return 411;
	}
	const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && qs_parse_u64(cl, UINT64_MAX, len) != 0)
		return 400; /* MHD refuses these before us; kept for safety */
	if (*len > s->cfg.limits.max_body_bytes) {
		*err = error_json("payload_too_large", "the body is larger than %zu bytes",
				  s->cfg.limits.max_body_bytes);
		return 413;
	}
	return 0;
}

/* Checks the headers. Returns 0 or an error status with *err set; *read_body tells whether
 * the body, if any, will be read (and dropped after an error), which keeps the connection:
 * only for an authenticated request whose body is framed and within the limit. */
static unsigned check_request(struct qs_http_server *s, struct qs_http_request *req,
			      struct MHD_Connection *conn, json_t **err, bool *read_body)
{
	const struct qs_http_limits *l = &s->cfg.limits;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	*read_body = false;
	if (req->target_len > l->max_url_bytes) {
		*err = error_json("uri_too_long", "the request target is longer than %zu bytes",
				  l->max_url_bytes);
		return 414;
	}
	if (ci != NULL && ci->header_size > l->max_header_bytes) {
		*err = error_json("header_too_large",
				  "the request headers are larger than %zu bytes",
				  l->max_header_bytes);
		return 431;
	}
	unsigned st = check_auth(s, conn, err);
	if (st != 0)
		return st;
	uint64_t len = 0;
	json_t *framing_err = NULL;
	unsigned framing = check_framing(s, conn, &len, &framing_err);
	*read_body = framing == 0;
	st = request_route(req, s->cfg.routes, s->cfg.nroutes, err);
	if (st == 0 && framing != 0) {
		st = framing;
		*err = framing_err;
		framing_err = NULL;
	}
	json_decref(framing_err);
	if (st == 0 && len > 0 && !json_content_type(header(conn, MHD_HTTP_HEADER_CONTENT_TYPE))) {
		*err = error_json("unsupported_media_type", "the body must be application/json");
		st = 415;
	}
	if (st == 0 && len > 0 && qs_buf_reserve(&req->body_buf, (size_t)len) != 0)
		st = 500;
	return st;
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *cl = header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return header(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL ||
	       (cl != NULL && strcmp(cl, "0") != 0);
}

/* First handler call: headers are in. An error is answered on a later call, keeping the
 * connection, unless a body follows that will not be read (check_request): then it is answered
 * now, and MHD closes the connection after an early answer. */
static enum MHD_Result on_headers(struct qs_http_server *s, struct qs_http_request *req,
				  const char *method)
{
	size_t mlen = strlen(method);
	memcpy(req->method, method, mlen < HTTP_METHOD_MAX ? mlen : HTTP_METHOD_MAX - 1);
	req->stage = STAGE_BODY;
	json_t *err = NULL;
	bool read_body;
	unsigned st = check_request(s, req, req->conn, &err, &read_body);
	if (st == 0)
		return MHD_YES;
	req_answer(req, st, err);
	if (!read_body && has_body(req->conn))
		return reply_queue(s, req);
	return MHD_YES;
}

static enum MHD_Result on_body_done(struct qs_http_server *s, struct qs_http_request *req)
{
	if (req->status == 0) {
		json_t *err = NULL;
		unsigned st = body_parse(req, &err);
		if (st != 0)
			req_answer(req, st, err);
		else
			request_run(req);
	}
	if (req->status == 0) {
		req->stage = STAGE_WAIT;
		MHD_suspend_connection(req->conn);
		return MHD_YES;
	}
	return reply_queue(s, req);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version, const char *upload_data,
				 size_t *upload_data_size, void **req_cls)
{
	struct qs_http_server *s = cls;
	struct qs_http_request *req = *req_cls;
	(void)url;
	(void)version;
	if (req == NULL)
		return MHD_NO; /* out of memory when the request line arrived */
	req->conn = conn;
	switch (req->stage) {
	case STAGE_NEW: return on_headers(s, req, method);
	case STAGE_BODY:
		if (*upload_data_size == 0)
			return on_body_done(s, req);
		/* The body cannot outgrow its buffer: MHD stops at Content-Length, and
		 * check_framing capped that. After an error the body is dropped as it comes. */
		if (req->status == 0 &&
		    qs_buf_append(&req->body_buf, upload_data, *upload_data_size) != 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	case STAGE_WAIT: return reply_queue(s, req); /* resumed after qs_http_complete */
	case STAGE_SENT: break;
	}
	return MHD_NO;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct qs_http_server *s = cls;
	(void)conn;
	if (uri == NULL)
		uri = "";
	return request_new(s, uri, strlen(uri), s->cfg.limits.max_body_bytes);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct qs_http_request *req = *req_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	*req_cls = NULL;
	/* A deferred request is suspended, and MHD closes suspended connections only after
	 * cancel_deferred resumed them; a request still listed here is a bug. */
	assert(!req->deferred);
	request_free(req);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct qs_http_server *s = cls;
	char line[256];
	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (qs_ratelimit_allow(&s->log_rl, uv_now(s->loop) * 1000000ULL))
		qs_warn("http", "event=mhd msg=\"%s\"", line);
}

/* ---- the loop --------------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct qs_http_server *s = h->data;
	if (--s->handles_open == 0 && s->done != NULL)
		s->done(s->done_arg);
}

static void http_stop(struct qs_http_server *s)
{
	s->stopped = true;
	cancel_deferred(s);
	uv_close((uv_handle_t *)&s->poll, on_handle_closed); /* before MHD closes its epoll fd */
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	MHD_stop_daemon(s->mhd);
	s->mhd = NULL;
}

static void on_timer(uv_timer_t *t);

/* Arms the timer for MHD's next timeout; while draining, stops once no connection is left
 * or the drain time is over. */
static void http_schedule(struct qs_http_server *s)
{
	MHD_UNSIGNED_LONG_LONG timeout_ms = 0;
	bool have_timeout = MHD_get_timeout(s->mhd, &timeout_ms) == MHD_YES;
	if (s->draining) {
		const union MHD_DaemonInfo *di =
			MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
		uint64_t now = uv_now(s->loop);
		if (di == NULL || di->num_connections == 0 || now >= s->drain_deadline_ms) {
			http_stop(s);
			return;
		}
		if (!have_timeout || timeout_ms > s->drain_deadline_ms - now)
			timeout_ms = s->drain_deadline_ms - now;
		have_timeout = true;
	}
	if (s->rerun) { /* a request was resumed: MHD must run to answer it */
		s->rerun = false;
		timeout_ms = 0;
		have_timeout = true;
	}
	if (have_timeout)
		uv_timer_start(&s->timer, on_timer, (uint64_t)timeout_ms, 0);
	else
		uv_timer_stop(&s->timer);
}

static void http_run(struct qs_http_server *s)
{
	if (s->stopped)
		return;
	s->in_run = true;
	s->rerun = false;
	MHD_run(s->mhd);
	s->in_run = false;
	http_schedule(s);
}

/* Makes MHD run soon, e.g. to answer a resumed request. */
static void http_kick(struct qs_http_server *s)
{
	if (s->stopped)
		return;
	s->rerun = true; /* http_schedule keeps a zero timeout until MHD has run */
	if (!s->in_run)
		uv_timer_start(&s->timer, on_timer, 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	http_run(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	http_run(p->data);
}

/* ---- server lifecycle ------------------------------------------------------------------- */

static int config_check(const struct qs_http_config *cfg)
{
	const struct qs_http_limits *l = &cfg->limits;
	if (!token_valid(cfg->token) || qs_http_routes_check(cfg->routes, cfg->nroutes) != 0)
		return QS_EINVAL;
	if (l->max_header_bytes == 0 || l->max_url_bytes == 0 || l->max_conns == 0 ||
	    l->max_header_bytes > (64u << 20) || l->max_url_bytes > (64u << 20))
		return QS_EINVAL;
	return 0;
}

static struct MHD_Daemon *mhd_start(struct qs_http_server *s)
{
	const struct qs_http_limits *l = &s->cfg.limits;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(s->cfg.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* MHD's per-connection pool holds the request line and headers: leave room above our
	 * own limits so requests just past them reach check_request and get a JSON answer. */
	size_t pool = 2 * (l->max_header_bytes + l->max_url_bytes) + 8192;
	if (pool < 32768)
		pool = 32768;
	return MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
				NULL, NULL, on_access, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_LIMIT, l->max_conns,
				MHD_OPTION_CONNECTION_TIMEOUT, l->idle_timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
				MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED,
				on_completed, s, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
}

int qs_http_server_new(uv_loop_t *loop, const struct qs_http_config *cfg,
		       struct qs_http_server **out)
{
	int rc = config_check(cfg);
	if (rc != 0)
		return rc;
	struct qs_http_server *s = qs_calloc(1, sizeof(*s));
	if (s == NULL)
		return QS_ENOMEM;
	s->loop = loop;
	s->cfg = *cfg;
	s->cfg.token = NULL;
	s->token_len = strlen(cfg->token);
	s->token = qs_strndup(cfg->token, s->token_len);
	qs_ratelimit_init(&s->log_rl, 10ULL * 1000000000ULL, 20);
	rc = QS_ENOMEM;
	if (s->token == NULL)
		goto out;
	rc = QS_EIO;
	s->mhd = mhd_start(s);
	if (s->mhd == NULL) {
		qs_error("http", "event=start_failed port=%u", (unsigned)cfg->port);
		goto out;
	}
	const union MHD_DaemonInfo *port = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	const union MHD_DaemonInfo *efd = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (port == NULL || efd == NULL || uv_poll_init(loop, &s->poll, efd->epoll_fd) != 0) {
		MHD_stop_daemon(s->mhd);
		goto out;
	}
	s->port = port->port;
	uv_timer_init(loop, &s->timer);
	s->poll.data = s;
	s->timer.data = s;
	s->handles_open = 2;
	uv_poll_start(&s->poll, UV_READABLE, on_poll);
	http_schedule(s);
	qs_info("http", "event=listening addr=127.0.0.1 port=%u", (unsigned)s->port);
	*out = s;
	return 0;
out:
	if (s->token != NULL)
		qs_wipe(s->token, s->token_len);
	qs_free(s->token);
	qs_free(s);
	return rc;
}

uint16_t qs_http_server_port(const struct qs_http_server *s)
{
	return s->port;
}

void qs_http_server_shutdown(struct qs_http_server *s, void (*done)(void *arg), void *arg)
{
	assert(!s->draining);
	s->draining = true;
	s->done = done;
	s->done_arg = arg;
	s->drain_deadline_ms = uv_now(s->loop) + s->cfg.limits.drain_ms;
	MHD_socket lfd = MHD_quiesce_daemon(s->mhd);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	cancel_deferred(s);
	if (s->in_run)
		return; /* http_run schedules once MHD_run returns */
	http_schedule(s);
}

void qs_http_server_free(struct qs_http_server *s)
{
	if (s == NULL)
		return;
	assert(s->handles_open == 0 && s->mhd == NULL);
	qs_wipe(s->token, s->token_len);
	qs_free(s->token);
	qs_free(s);
}

/* ---- without sockets -------------------------------------------------------------------- */

unsigned qs_http_dispatch(const struct qs_http_route *routes, size_t nroutes,
			  const struct qs_http_limits *limits, const char *method,
			  const char *target, size_t target_len, const void *body, size_t body_len,
			  json_t **reply)
{
	struct qs_http_request *req = request_new(NULL, target, target_len, limits->max_body_bytes);
	*reply = NULL;
	if (req == NULL)
		return 500;
	size_t mlen = strlen(method);
	memcpy(req->method, method, mlen < HTTP_METHOD_MAX ? mlen : HTTP_METHOD_MAX - 1);
	json_t *err = NULL;
	unsigned st = 0;
	if (target_len > limits->max_url_bytes)
		st = 414;
	else if (body_len > limits->max_body_bytes)
		st = 413;
	if (st == 0)
		st = request_route(req, routes, nroutes, &err);
	if (st == 0 && body_len > 0 && qs_buf_append(&req->body_buf, body, body_len) != 0)
		st = 500;
	if (st == 0)
		st = body_parse(req, &err);
	if (st != 0)
		req_answer(req, st, err);
	else
		request_run(req);
	if (req->status == 0) { /* deferred: no server to wait with */
		req->deferred = false;
		if (req->on_cancel != NULL)
			req->on_cancel(req->cancel_arg);
		req_answer(req, 500, error_json("internal", "deferred without a server"));
	}
	st = req->status;
	*reply = req->reply;
	req->reply = NULL;
	request_free(req);
	return st;
}

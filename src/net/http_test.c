/* Tests for the local REST server: a real server on a free loopback port, its libuv loop on a
 * thread of its own, driven by raw HTTP/1.1 over sockets so every byte of the exchange (status,
 * headers, keep-alive) is visible: routing, parameters, auth, Host/Origin, limits at +1,
 * malformed JSON, deferred answers, shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/num.h"
#include "net/http.h"

#define TOKEN "0123456789abcdef0123456789abcdef"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define HOST "Host: 127.0.0.1\r\n"
#define BODY_LIMIT 1024
#define URL_LIMIT 512
#define HEADER_LIMIT 2048

/* ---- the server under test, on its own loop thread ------------------------------------- */

struct fixture {
	uv_loop_t loop;
	uv_async_t stop;
	pthread_t thread;
	struct qs_http_server *srv;
	uint16_t port;
	atomic_int handler_calls;
	atomic_int never_started;
	atomic_int canceled;
	atomic_int done_called;
	uv_timer_t slow_timer;
	struct qs_http_request *slow_req;
};

static unsigned h_ping(struct qs_http_request *req, json_t **body, void *arg)
{
	struct fixture *f = arg;
	(void)req;
	atomic_fetch_add(&f->handler_calls, 1);
	*body = json_pack("{s:b}", "pong", 1);
	return 200;
}

static unsigned h_item_get(struct qs_http_request *req, json_t **body, void *arg)
{
	struct fixture *f = arg;
	atomic_fetch_add(&f->handler_calls, 1);
	bool verbose;
	if (qs_http_query_bool(req, "verbose", &verbose) != 0)
		return qs_http_fail(body, 400, "invalid_verbose", "verbose must be a boolean");
	uint64_t limit = 0;
	int rc = qs_http_query_u64(req, "limit", 1000, &limit);
	if (rc != 0 && rc != QS_ENOENT)
		return qs_http_fail(body, 400, "invalid_limit", "limit: %s", qs_strerror(rc));
	const char *name = qs_http_query(req, "name");
	*body = json_pack("{s:s,s:b,s:I,s:s?}", "id", qs_http_param(req, "id"), "verbose", verbose,
			  "limit", (json_int_t)limit, "name", name);
	return 200;
}

static unsigned h_item_post(struct qs_http_request *req, json_t **body, void *arg)
{
	struct fixture *f = arg;
	atomic_fetch_add(&f->handler_calls, 1);
	json_t *in = qs_http_body(req);
	if (in == NULL)
		return qs_http_fail(body, 400, "body_required", "send a JSON object");
	*body = json_pack("{s:O}", "got", in);
	return 201;
}

static unsigned h_tag_delete(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)arg;
	*body = json_pack("{s:s,s:s,s:s}", "id", qs_http_param(req, "id"), "tag",
			  qs_http_param(req, "tag"), "path", qs_http_path(req));
	return 200;
}

static void on_slow_timer(uv_timer_t *t)
{
	struct fixture *f = t->data;
	struct qs_http_request *req = f->slow_req;
	f->slow_req = NULL;
	qs_http_complete(req, 200, json_pack("{s:s}", "slow", qs_http_param(req, "word")));
}

static unsigned h_slow(struct qs_http_request *req, json_t **body, void *arg)
{
	struct fixture *f = arg;
	(void)body;
	if (f->slow_req != NULL)
		return qs_http_fail(body, 409, "busy", "one slow request at a time");
	qs_http_defer(req, NULL, NULL);
	f->slow_req = req;
	uv_timer_start(&f->slow_timer, on_slow_timer, 50, 0);
	return QS_HTTP_DEFERRED;
}

static unsigned h_instant_defer(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)body;
	(void)arg;
	qs_http_defer(req, NULL, NULL);
	qs_http_complete(req, 202, json_pack("{s:b}", "instant", 1));
	return QS_HTTP_DEFERRED;
}

static void on_never_cancel(void *arg)
{
	struct fixture *f = arg;
	atomic_store(&f->canceled, 1);
}

static unsigned h_never(struct qs_http_request *req, json_t **body, void *arg)
{
	struct fixture *f = arg;
	(void)body;
	qs_http_defer(req, on_never_cancel, f);
	atomic_store(&f->never_started, 1);
	return QS_HTTP_DEFERRED;
}

static void on_server_done(void *arg)
{
	struct fixture *f = arg;
	atomic_store(&f->done_called, 1);
	uv_close((uv_handle_t *)&f->stop, NULL);
	uv_close((uv_handle_t *)&f->slow_timer, NULL);
}

static unsigned h_stop(struct qs_http_request *req, json_t **body, void *arg)
{
	struct fixture *f = arg;
	(void)req;
	qs_http_server_shutdown(f->srv, on_server_done, f);
	*body = json_pack("{s:b}", "stopping", 1);
	return 200;
}

static unsigned h_bad_status(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	(void)body;
	(void)arg;
	return 42;
}

static struct qs_http_route routes[] = {
	{"GET", "/v1/ping", NULL, h_ping, NULL},
	{"GET", "/v1/items/{id}", "verbose,limit,name", h_item_get, NULL},
	{"POST", "/v1/items", NULL, h_item_post, NULL},
	{"DELETE", "/v1/items/{id}/tags/{tag}", NULL, h_tag_delete, NULL},
	{"GET", "/v1/slow/{word}", NULL, h_slow, NULL},
	{"GET", "/v1/instant", NULL, h_instant_defer, NULL},
	{"GET", "/v1/never", NULL, h_never, NULL},
	{"POST", "/v1/stop", NULL, h_stop, NULL},
	{"GET", "/v1/bad-status", NULL, h_bad_status, NULL},
	{"POST", "/v1/ping", NULL, h_ping, NULL},
};

static void on_stop_async(uv_async_t *a)
{
	struct fixture *f = a->data;
	qs_http_server_shutdown(f->srv, on_server_done, f);
}

static void *loop_main(void *arg)
{
	struct fixture *f = arg;
	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		routes[i].arg = f;
	struct qs_http_config cfg;
	qs_http_config_default(&cfg);
	cfg.token = TOKEN;
	cfg.routes = routes;
	cfg.nroutes = sizeof(routes) / sizeof(routes[0]);
	cfg.limits.max_body_bytes = BODY_LIMIT;
	cfg.limits.max_url_bytes = URL_LIMIT;
	cfg.limits.max_header_bytes = HEADER_LIMIT;
	assert_int_equal(qs_http_server_new(&f->loop, &cfg, &f->srv), 0);
	f->port = qs_http_server_port(f->srv);
	assert_int_not_equal(f->port, 0);
	uv_async_init(&f->loop, &f->stop, on_stop_async);
	f->stop.data = f;
	uv_timer_init(&f->loop, &f->slow_timer);
	f->slow_timer.data = f;
	assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
	*state = f;
	return 0;
}

static void fixture_join(struct fixture *f)
{
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	assert_int_equal(atomic_load(&f->done_called), 1);
	qs_http_server_free(f->srv);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!atomic_load(&f->done_called))
		uv_async_send(&f->stop);
	fixture_join(f);
	free(f);
	return 0;
}

/* ---- a raw HTTP/1.1 client ---------------------------------------------------------------- */

struct resp {
	unsigned status;
	char head[16384];
	char *body;
	size_t body_len;
	json_t *json;
};

static void resp_clear(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static int conn_open(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return; /* the server may close early (an answer before the body) */
		p += w;
		n -= (size_t)w;
	}
}

/* Case-insensitive search for "\r\nName:" in the head; returns the value or NULL. */
static const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) != 0 || p[2 + n] != ':')
			continue;
		const char *v = p + 3 + n;
		while (*v == ' ')
			v++;
		const char *end = strstr(v, "\r\n");
		size_t len = end != NULL ? (size_t)(end - v) : strlen(v);
		if (len >= cap)
			len = cap - 1;
		memcpy(out, v, len);
		out[len] = '\0';
		return out;
	}
	return NULL;
}

/* Reads one response. Returns 0, or -1 if the connection closed before a full response. */
static int read_resp(int fd, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	size_t used = 0;
	char *end = NULL;
	while (end == NULL) {
		if (used + 1 >= sizeof(r->head))
			return -1;
		ssize_t n = recv(fd, r->head + used, 1, 0); /* byte by byte: never read past */
		if (n <= 0)
			return -1;
		used++;
		r->head[used] = '\0';
		end = strstr(r->head, "\r\n\r\n");
	}
	if (strncmp(r->head, "HTTP/1.1 ", 9) != 0)
		return -1;
	char code[4] = {r->head[9], r->head[10], r->head[11], '\0'};
	uint64_t status;
	assert_int_equal(qs_parse_u64(code, 999, &status), 0);
	r->status = (unsigned)status;
	char v[64];
	uint64_t len = 0;
	if (resp_header(r, "Content-Length", v, sizeof(v)) != NULL)
		assert_int_equal(qs_parse_u64(v, 1u << 24, &len), 0);
	r->body = calloc(1, (size_t)len + 1);
	assert_non_null(r->body);
	while (r->body_len < len) {
		ssize_t n = recv(fd, r->body + r->body_len, (size_t)len - r->body_len, 0);
		if (n <= 0)
			return -1;
		r->body_len += (size_t)n;
	}
	json_error_t e;
	r->json = json_loadb(r->body, r->body_len, 0, &e);
	return 0;
}

/* Sends raw request text on fd and reads the answer. */
static void exchange(int fd, const char *raw, size_t len, struct resp *r)
{
	send_all(fd, raw, len);
	assert_int_equal(read_resp(fd, r), 0);
}

/* One request with the standard headers (Host, the token) plus extra, on connection fd. */
static void request_on(int fd, const char *method, const char *target, const char *extra,
		       const char *body, struct resp *r)
{
	size_t blen = body != NULL ? strlen(body) : 0;
	size_t cap = strlen(target) + (extra != NULL ? strlen(extra) : 0) + blen + 512;
	char *raw = malloc(cap);
	assert_non_null(raw);
	int n = snprintf(raw, cap, "%s %s HTTP/1.1\r\n" HOST AUTH "%s", method, target,
			 extra != NULL ? extra : "");
	if (body != NULL)
		n += snprintf(raw + n, cap - (size_t)n,
			      "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
	n += snprintf(raw + n, cap - (size_t)n, "\r\n%s", body != NULL ? body : "");
	exchange(fd, raw, (size_t)n, r);
	free(raw);
}

static void request(uint16_t port, const char *method, const char *target, const char *extra,
		    const char *body, struct resp *r)
{
	int fd = conn_open(port);
	request_on(fd, method, target, extra, body, r);
	close(fd);
}

static void raw_request(uint16_t port, const char *raw, struct resp *r)
{
	int fd = conn_open(port);
	exchange(fd, raw, strlen(raw), r);
	close(fd);
}

static const char *error_code(const struct resp *r)
{
	json_t *e = json_object_get(r->json, "error");
	return json_string_value(json_object_get(e, "code"));
}

static void assert_error(const struct resp *r, unsigned status, const char *code)
{
	assert_int_equal(r->status, status);
	assert_non_null(r->json);
	assert_string_equal(error_code(r), code);
	json_t *msg = json_object_get(json_object_get(r->json, "error"), "message");
	assert_true(json_is_string(msg) && json_string_length(msg) > 0);
	char v[64];
	assert_non_null(resp_header(r, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, "application/json");
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_routing_and_params(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];

	request(f->port, "GET", "/v1/ping", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_true(json_object_get(r.json, "pong")));
	assert_string_equal(resp_header(&r, "Content-Type", v, sizeof(v)), "application/json");
	resp_clear(&r);

	/* Path parameters are percent-decoded per segment: %2F stays inside the parameter. */
	request(f->port, "GET", "/v1/items/a%20b%2Fc%C3%A9?verbose&limit=5&name=x+y%2Bz", NULL,
		NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "id")), "a b/c\xc3\xa9");
	assert_true(json_is_true(json_object_get(r.json, "verbose")));
	assert_int_equal(json_integer_value(json_object_get(r.json, "limit")), 5);
	assert_string_equal(json_string_value(json_object_get(r.json, "name")), "x y+z");
	resp_clear(&r);

	request(f->port, "DELETE", "/v1/items/7/tags/red?", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "id")), "7");
	assert_string_equal(json_string_value(json_object_get(r.json, "tag")), "red");
	assert_string_equal(json_string_value(json_object_get(r.json, "path")),
			    "/v1/items/7/tags/red");
	resp_clear(&r);

	static const char *const missing[] = {
		"/v1/nope", "/v1/ping/",     "/v1//ping", "/v1/items/",
		"/",        "/v1/items/a/b", "/V1/ping",  "/v1/items/7/tags"};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		request(f->port, "GET", missing[i], NULL, NULL, &r);
		assert_error(&r, 404, "not_found");
		resp_clear(&r);
	}

	request(f->port, "PUT", "/v1/ping", NULL, NULL, &r);
	assert_error(&r, 405, "method_not_allowed");
	assert_string_equal(resp_header(&r, "Allow", v, sizeof(v)), "GET, POST");
	resp_clear(&r);
	request(f->port, "GET", "/v1/items", NULL, NULL, &r);
	assert_error(&r, 405, "method_not_allowed");
	assert_string_equal(resp_header(&r, "Allow", v, sizeof(v)), "POST");
	resp_clear(&r);

	/* A handler's out-of-range status becomes 500 with the standard error object. */
	request(f->port, "GET", "/v1/bad-status", NULL, NULL, &r);
	assert_error(&r, 500, "internal");
	resp_clear(&r);
}

static void test_query_validation(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	static const struct {
		const char *target;
		const char *code;
	} bad[] = {
		{"/v1/items/1?colour=red", "invalid_query"}, /* not in the route's list */
		{"/v1/items/1?limit=1&limit=2", "invalid_query"},
		{"/v1/items/1?name=%zz", "invalid_query"},
		{"/v1/items/1?name=%2", "invalid_query"},
		{"/v1/items/1?name=a%00b", "invalid_query"},
		{"/v1/items/1?name=%0a", "invalid_query"},
		{"/v1/items/1?name=%C3%28", "invalid_query"}, /* invalid UTF-8 */
		{"/v1/items/1?=x", "invalid_query"},
		{"/v1/ping?verbose", "invalid_query"}, /* the route takes no query */
		{"/v1/items/1?limit=abc", "invalid_limit"},
		{"/v1/items/1?limit=1001", "invalid_limit"},
		{"/v1/items/1?limit=-1", "invalid_limit"},
		{"/v1/items/1?verbose=maybe", "invalid_verbose"},
		{"/v1/items/%zz", "bad_request"},
		{"/v1/items/a%00", "bad_request"},
		{"/v1/items/%FF", "bad_request"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		request(f->port, "GET", bad[i].target, NULL, NULL, &r);
		assert_error(&r, 400, bad[i].code);
		resp_clear(&r);
	}
	/* Empty pairs are skipped; "verbose=0" is false; limit 1000 is the maximum. */
	request(f->port, "GET", "/v1/items/1?&verbose=0&&limit=1000&", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_true(json_is_false(json_object_get(r.json, "verbose")));
	assert_int_equal(json_integer_value(json_object_get(r.json, "limit")), 1000);
	resp_clear(&r);
}

static void test_auth(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];
	static const char *const bad[] = {
		"GET /v1/ping HTTP/1.1\r\n" HOST "\r\n",
		"GET /v1/ping HTTP/1.1\r\n" HOST "Authorization: Bearer wrong\r\n\r\n",
		"GET /v1/ping HTTP/1.1\r\n" HOST "Authorization: Bearer " TOKEN "0\r\n\r\n",
		"GET /v1/ping HTTP/1.1\r\n" HOST
		"Authorization: Bearer 0123456789abcdef0123456789abcde\r\n\r\n",
		"GET /v1/ping HTTP/1.1\r\n" HOST "Authorization: Bearer\r\n\r\n",
		"GET /v1/ping HTTP/1.1\r\n" HOST "Authorization: Basic " TOKEN "\r\n\r\n",
		"GET /v1/ping HTTP/1.1\r\n" HOST "Authorization: " TOKEN "\r\n\r\n",
		/* An unauthenticated request learns nothing about routes. */
		"GET /v1/nope HTTP/1.1\r\n" HOST "\r\n",
	};
	int before = atomic_load(&f->handler_calls);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_request(f->port, bad[i], &r);
		assert_error(&r, 401, "unauthorized");
		assert_string_equal(resp_header(&r, "WWW-Authenticate", v, sizeof(v)), "Bearer");
		resp_clear(&r);
	}
	/* A body behind a refused request is never parsed or handed to a handler. */
	raw_request(f->port,
		    "POST /v1/items HTTP/1.1\r\n" HOST "Content-Type: application/json\r\n"
		    "Content-Length: 2\r\n\r\n{}",
		    &r);
	assert_error(&r, 401, "unauthorized");
	resp_clear(&r);
	assert_int_equal(atomic_load(&f->handler_calls), before);

	raw_request(f->port,
		    "GET /v1/ping HTTP/1.1\r\n" HOST "Authorization: bearer " TOKEN "\r\n\r\n", &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	assert_int_equal(atomic_load(&f->handler_calls), before + 1);
}

static void test_host_and_origin(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	static const struct {
		const char *headers;
		unsigned status;
	} cases[] = {
		{"Origin: http://127.0.0.1:6130\r\n", 200},
		{"Origin: http://localhost\r\n", 200},
		{"Origin: https://LOCALHOST:8443\r\n", 200},
		{"Origin: http://[::1]:6130\r\n", 200},
		{"Origin: http://evil.example\r\n", 403},
		{"Origin: http://127.0.0.1.evil.example\r\n", 403},
		{"Origin: http://localhost.evil.example:6130\r\n", 403},
		{"Origin: http://localhost:6130/x\r\n", 403},
		{"Origin: http://localhost:99999\r\n", 403},
		{"Origin: null\r\n", 403},
		{"Origin: file://\r\n", 403},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		request(f->port, "GET", "/v1/ping", cases[i].headers, NULL, &r);
		if (cases[i].status == 200)
			assert_int_equal(r.status, 200);
		else
			assert_error(&r, 403, "forbidden_origin");
		resp_clear(&r);
	}
	static const struct {
		const char *host;
		unsigned status;
	} hosts[] = {
		{"Host: localhost:6130\r\n", 200},
		{"Host: 127.0.0.1:1\r\n", 200},
		{"Host: evil.example:6130\r\n", 403}, /* a DNS-rebound name */
		{"Host: 127.0.0.1.nip.io\r\n", 403},
	};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		char raw[512];
		snprintf(raw, sizeof(raw), "GET /v1/ping HTTP/1.1\r\n%s" AUTH "\r\n",
			 hosts[i].host);
		raw_request(f->port, raw, &r);
		if (hosts[i].status == 200)
			assert_int_equal(r.status, 200);
		else
			assert_error(&r, 403, "forbidden_host");
		resp_clear(&r);
	}
}

static char *json_of_size(size_t n)
{
	/* {"s":"xxx..."} is n bytes when the string holds n - 8 characters. */
	char *s = malloc(n + 1);
	assert_non_null(s);
	memcpy(s, "{\"s\":\"", 6);
	memset(s + 6, 'x', n - 8);
	memcpy(s + n - 2, "\"}", 3);
	return s;
}

static void test_body(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	request(f->port, "POST", "/v1/items", NULL, "{\"a\":[1,2,{\"b\":null}]}", &r);
	assert_int_equal(r.status, 201);
	assert_int_equal(json_array_size(json_object_get(json_object_get(r.json, "got"), "a")), 3);
	resp_clear(&r);

	char *at = json_of_size(BODY_LIMIT);
	request(f->port, "POST", "/v1/items", NULL, at, &r);
	assert_int_equal(r.status, 201);
	resp_clear(&r);
	free(at);

	char *over = json_of_size(BODY_LIMIT + 1);
	request(f->port, "POST", "/v1/items", NULL, over, &r);
	assert_error(&r, 413, "payload_too_large");
	resp_clear(&r);
	free(over);

	static const char *const malformed[] = {
		"{",
		"{\"a\":1,}",
		"nul",
		"{\"a\":1}x",
		"{\"a\":1,\"a\":2}",
		"\"just a string\"",
		"{\"a\":\"\\u0000\"}",
		"{\"a\":\"\xff\"}",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		request(f->port, "POST", "/v1/items", NULL, malformed[i], &r);
		assert_error(&r, 400, "invalid_json");
		resp_clear(&r);
	}

	request(f->port, "POST", "/v1/items", NULL, NULL, &r);
	assert_error(&r, 400, "body_required");
	resp_clear(&r);

	raw_request(f->port,
		    "POST /v1/items HTTP/1.1\r\n" HOST AUTH "Content-Type: text/plain\r\n"
		    "Content-Length: 2\r\n\r\n{}",
		    &r);
	assert_error(&r, 415, "unsupported_media_type");
	resp_clear(&r);

	raw_request(f->port,
		    "POST /v1/items HTTP/1.1\r\n" HOST AUTH "Content-Type: application/json\r\n"
		    "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		    &r);
	assert_error(&r, 411, "length_required");
	resp_clear(&r);

	raw_request(
		f->port,
		"POST /v1/items HTTP/1.1\r\n" HOST AUTH
		"Content-Type: application/json; charset=utf-8\r\nContent-Length: 7\r\n\r\n[1,2,3]",
		&r);
	assert_int_equal(r.status, 201);
	resp_clear(&r);
}

static void test_limits(void **state)
{
	struct fixture *f = *state;
	struct resp r;

	/* The request target: exactly the limit passes (and is routed), one more is 414. */
	char target[URL_LIMIT + 2];
	memcpy(target, "/v1/items/", 10);
	memset(target + 10, 'a', URL_LIMIT - 10);
	target[URL_LIMIT] = '\0';
	request(f->port, "GET", target, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	target[URL_LIMIT] = 'a';
	target[URL_LIMIT + 1] = '\0';
	request(f->port, "GET", target, NULL, NULL, &r);
	assert_error(&r, 414, "uri_too_long");
	resp_clear(&r);

	/* Headers: the request line, header lines and the blank line, in bytes. */
	const char *fixed = "GET /v1/ping HTTP/1.1\r\n" HOST AUTH "X-Pad: \r\n\r\n";
	size_t pad = HEADER_LIMIT - strlen(fixed);
	char raw[HEADER_LIMIT + 64];
	for (size_t extra = 0; extra <= 1; extra++) {
		int n = snprintf(raw, sizeof(raw), "GET /v1/ping HTTP/1.1\r\n" HOST AUTH "X-Pad: ");
		memset(raw + n, 'p', pad + extra);
		memcpy(raw + n + pad + extra, "\r\n\r\n", 5);
		assert_int_equal(strlen(raw), HEADER_LIMIT + extra);
		raw_request(f->port, raw, &r);
		if (extra == 0)
			assert_int_equal(r.status, 200);
		else
			assert_error(&r, 431, "header_too_large");
		resp_clear(&r);
	}
}

static void test_keepalive(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];
	int fd = conn_open(f->port);
	/* Successes and errors alike keep the connection: every answer is queued on the
	 * handler's second call. */
	request_on(fd, "GET", "/v1/ping", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_null(resp_header(&r, "Connection", v, sizeof(v)));
	resp_clear(&r);
	request_on(fd, "GET", "/v1/nope", NULL, NULL, &r);
	assert_int_equal(r.status, 404);
	assert_null(resp_header(&r, "Connection", v, sizeof(v)));
	resp_clear(&r);
	request_on(fd, "POST", "/v1/items", NULL, "{\"k\":1}", &r);
	assert_int_equal(r.status, 201);
	resp_clear(&r);
	request_on(fd, "POST", "/v1/items", NULL, "{bad", &r);
	assert_int_equal(r.status, 400);
	resp_clear(&r);
	request_on(fd, "GET", "/v1/ping", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);

	/* Errors of an authenticated request with a body of acceptable size keep the
	 * connection too: the body is read and dropped. */
	request_on(fd, "POST", "/v1/nope", NULL, "{\"k\":1}", &r);
	assert_int_equal(r.status, 404);
	assert_null(resp_header(&r, "Connection", v, sizeof(v)));
	resp_clear(&r);
	request_on(fd, "POST", "/v1/items?x=1", NULL, "{\"k\":1}", &r);
	assert_error(&r, 400, "invalid_query");
	assert_null(resp_header(&r, "Connection", v, sizeof(v)));
	resp_clear(&r);
	const char *typed = "POST /v1/items HTTP/1.1\r\n" HOST AUTH
			    "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}";
	exchange(fd, typed, strlen(typed), &r);
	assert_error(&r, 415, "unsupported_media_type");
	resp_clear(&r);
	request_on(fd, "GET", "/v1/ping", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	close(fd);

	/* An error answered before its body is read closes the connection (too large, or the
	 * sender is not authenticated): the next request on it gets nothing. */
	fd = conn_open(f->port);
	char *over = json_of_size(BODY_LIMIT + 1);
	request_on(fd, "POST", "/v1/items", NULL, over, &r);
	free(over);
	assert_int_equal(r.status, 413);
	assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
	resp_clear(&r);
	const char *ping = "GET /v1/ping HTTP/1.1\r\n" HOST AUTH "\r\n";
	send_all(fd, ping, strlen(ping));
	assert_int_equal(read_resp(fd, &r), -1);
	resp_clear(&r);
	close(fd);

	fd = conn_open(f->port);
	const char *anon = "POST /v1/items HTTP/1.1\r\n" HOST "Content-Type: application/json\r\n"
			   "Content-Length: 2\r\n\r\n{}";
	exchange(fd, anon, strlen(anon), &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
	resp_clear(&r);
	send_all(fd, ping, strlen(ping));
	assert_int_equal(read_resp(fd, &r), -1);
	resp_clear(&r);
	close(fd);
}

static void test_deferred(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];
	int slow = conn_open(f->port);
	const char *raw = "GET /v1/slow/hello HTTP/1.1\r\n" HOST AUTH "\r\n";
	send_all(slow, raw, strlen(raw));
	/* While the slow request waits, the server keeps answering others. */
	for (int i = 0; i < 3; i++) {
		request(f->port, "GET", "/v1/ping", NULL, NULL, &r);
		assert_int_equal(r.status, 200);
		resp_clear(&r);
	}
	assert_int_equal(read_resp(slow, &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "slow")), "hello");
	assert_null(resp_header(&r, "Connection", v, sizeof(v)));
	resp_clear(&r);
	/* The connection of a deferred request stays alive. */
	request_on(slow, "GET", "/v1/slow/again", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "slow")), "again");
	resp_clear(&r);
	close(slow);

	request(f->port, "GET", "/v1/instant", NULL, NULL, &r);
	assert_int_equal(r.status, 202);
	assert_true(json_is_true(json_object_get(r.json, "instant")));
	resp_clear(&r);
}

static uint64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* An idle keep-alive connection costs no CPU: the loop sleeps until MHD's next timeout. */
static void test_idle_connection_sleeps(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	int fd = conn_open(f->port);
	request_on(fd, "GET", "/v1/ping", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	uint64_t before = cpu_us();
	usleep(300 * 1000);
	uint64_t used = cpu_us() - before;
	assert_true(used < 30000);
	request_on(fd, "GET", "/v1/ping", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_clear(&r);
	close(fd);
}

static void test_shutdown_cancels_deferred(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	int fd = conn_open(f->port);
	const char *raw = "GET /v1/never HTTP/1.1\r\n" HOST AUTH "\r\n";
	send_all(fd, raw, strlen(raw));
	for (int i = 0; i < 5000 && !atomic_load(&f->never_started); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&f->never_started), 1);
	uv_async_send(&f->stop);
	assert_int_equal(read_resp(fd, &r), 0);
	assert_error(&r, 503, "unavailable");
	resp_clear(&r);
	close(fd);
	fixture_join(f);
	assert_int_equal(atomic_load(&f->canceled), 1);
	/* The port is closed. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	free(f);
	*state = NULL;
}

static void test_shutdown_from_handler(void **state)
{
	struct fixture *f = *state;
	struct resp r;
	char v[64];
	request(f->port, "POST", "/v1/stop", NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(resp_header(&r, "Connection", v, sizeof(v)), "close");
	resp_clear(&r);
	fixture_join(f);
	free(f);
	*state = NULL;
}

static int teardown_if_running(void **state)
{
	if (*state == NULL)
		return 0;
	return teardown(state);
}

static void test_port_in_use(void **state)
{
	struct fixture *f = *state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct qs_http_config cfg;
	qs_http_config_default(&cfg);
	cfg.token = TOKEN;
	cfg.port = f->port;
	struct qs_http_server *s = NULL;
	assert_int_equal(qs_http_server_new(&loop, &cfg, &s), QS_EIO);
	assert_null(s);
	cfg.port = 0;
	static const char *const bad_tokens[] = {"", "has space", "tab\t", "\xc3\xa9"};
	for (size_t i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
		cfg.token = bad_tokens[i];
		assert_int_equal(qs_http_server_new(&loop, &cfg, &s), QS_EINVAL);
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- without sockets ------------------------------------------------------------------------ */

static unsigned h_echo_param(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)arg;
	*body = json_pack("{s:s}", "name", qs_http_param(req, "name"));
	return 200;
}

static void on_cancel_count(void *arg)
{
	(*(int *)arg)++;
}

static unsigned h_defer_forever(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)body;
	qs_http_defer(req, on_cancel_count, arg);
	return QS_HTTP_DEFERRED;
}

static void test_routes_check(void **state)
{
	(void)state;
	static const char *const good[] = {"/", "/a", "/a/{b}/c", "/v1/{x_1}", "/a-b.c~d_e"};
	static const char *const bad[] = {"",
					  "a",
					  "/a/",
					  "//",
					  "/a//b",
					  "/{}",
					  "/{B}",
					  "/{b",
					  "/b}",
					  "/{b}c",
					  "/..",
					  "/.",
					  "/a b",
					  "/a?b",
					  "/a/%20",
					  "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}",
					  "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17"};
	struct qs_http_route r = {"GET", NULL, NULL, h_echo_param, NULL};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r.pattern = good[i];
		assert_int_equal(qs_http_routes_check(&r, 1), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.pattern = bad[i];
		assert_int_equal(qs_http_routes_check(&r, 1), QS_EINVAL);
	}
	r.pattern = "/a";
	static const char *const bad_query[] = {"", ",", "a,", ",a", "a b", "A"};
	for (size_t i = 0; i < sizeof(bad_query) / sizeof(bad_query[0]); i++) {
		r.query = bad_query[i];
		assert_int_equal(qs_http_routes_check(&r, 1), QS_EINVAL);
	}
	r.query = "a,b_2";
	assert_int_equal(qs_http_routes_check(&r, 1), 0);
	static const char *const bad_method[] = {"", "get", "G ET", "VERYLONGMETHODNAME"};
	for (size_t i = 0; i < sizeof(bad_method) / sizeof(bad_method[0]); i++) {
		r.method = bad_method[i];
		assert_int_equal(qs_http_routes_check(&r, 1), QS_EINVAL);
	}
	r.method = "GET";
	r.handler = NULL;
	assert_int_equal(qs_http_routes_check(&r, 1), QS_EINVAL);
}

static void test_dispatch(void **state)
{
	(void)state;
	int canceled = 0;
	const struct qs_http_route rt[] = {
		{"GET", "/x/{name}", NULL, h_echo_param, NULL},
		{"GET", "/forever", NULL, h_defer_forever, &canceled},
	};
	struct qs_http_limits limits;
	struct qs_http_config cfg;
	qs_http_config_default(&cfg);
	limits = cfg.limits;
	limits.max_body_bytes = 8;
	json_t *reply;
	const char *t = "/x/caf%C3%A9";
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), NULL, 0, &reply),
			 200);
	assert_string_equal(json_string_value(json_object_get(reply, "name")), "caf\xc3\xa9");
	json_decref(reply);
	t = "/y";
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), NULL, 0, &reply),
			 404);
	json_decref(reply);
	t = "/x/a";
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), "[1]", 3, &reply),
			 200);
	json_decref(reply);
	assert_int_equal(
		qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), "[1,2,3,4]", 9, &reply), 413);
	json_decref(reply);
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), "[1", 2, &reply),
			 400);
	json_decref(reply);
	t = "/forever";
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), NULL, 0, &reply),
			 500);
	assert_int_equal(canceled, 1);
	json_decref(reply);
	t = "x";
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", t, strlen(t), NULL, 0, &reply),
			 400);
	json_decref(reply);
	assert_int_equal(qs_http_dispatch(rt, 2, &limits, "GET", "/x/a\0b", 6, NULL, 0, &reply),
			 400);
	json_decref(reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_check),
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test_setup_teardown(test_routing_and_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_and_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_port_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_connection_sleeps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_cancels_deferred, setup,
						teardown_if_running),
		cmocka_unit_test_setup_teardown(test_shutdown_from_handler, setup,
						teardown_if_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

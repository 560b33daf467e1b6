/* Tests for the REST client against a real net/http server on a free loopback port (its libuv
 * loop on a thread of its own), found through a real endpoint file: answers, HTTP errors as one
 * line, a refused token, keep-alive, a daemon that is not running (no file, a stale file),
 * timeouts, answers that are not JSON, proxies in the environment ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/err.h"
#include "cli/dirs.h"
#include "cli/endpoint.h"
#include "cli/rest.h"
#include "net/http.h"

static const uint8_t token_bytes[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
					12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
					23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct fixture {
	uv_loop_t loop;
	uv_async_t stop;
	pthread_t thread;
	struct qs_http_server *srv;
	struct qs_endpoint ep;
	char home[64];
	char config[128];
};

static unsigned h_status(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	(void)arg;
	*body = json_pack("{s:s,s:i}", "state", "syncing", "files", 12);
	return 200;
}

static unsigned h_echo(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)arg;
	json_t *in = qs_http_body(req);
	if (in == NULL)
		return qs_http_fail(body, 400, "body_required", "send a body");
	*body = json_pack("{s:O,s:s}", "got", in, "name", qs_http_param(req, "name"));
	return 201;
}

static unsigned h_conflict(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)req;
	(void)arg;
	return qs_http_fail(body, 409, "root_exists", "a root named \"docs\" already exists\n");
}

static unsigned h_never(struct qs_http_request *req, json_t **body, void *arg)
{
	(void)body;
	(void)arg;
	qs_http_defer(req, NULL, NULL);
	return QS_HTTP_DEFERRED;
}

static const struct qs_http_route routes[] = {
	{"GET", "/v1/status", NULL, h_status, NULL},
	{"POST", "/v1/roots/{name}", NULL, h_echo, NULL},
	{"PUT", "/v1/conflict", NULL, h_conflict, NULL},
	{"GET", "/v1/never", NULL, h_never, NULL},
};

static void on_done(void *arg)
{
	struct fixture *f = arg;
	uv_close((uv_handle_t *)&f->stop, NULL);
}

static void on_stop(uv_async_t *a)
{
	struct fixture *f = a->data;
	qs_http_server_shutdown(f->srv, on_done, f);
}

static void *loop_main(void *arg)
{
	struct fixture *f = arg;
	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* A home directory of its own (the CLI shows paths under it with "~"), a daemon on a free
 * port, and its endpoint file written the way the daemon will. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->home, sizeof(f->home), "/tmp/qs-rest-XXXXXX");
	assert_non_null(mkdtemp(f->home));
	setenv("HOME", f->home, 1);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_DATA_HOME");
	struct qs_dirs d;
	assert_int_equal(qs_dirs_init(&d), 0);
	assert_int_equal(qs_dirs_create(&d), 0);
	snprintf(f->config, sizeof(f->config), "%s", d.config);
	qs_dirs_release(&d);

	assert_int_equal(uv_loop_init(&f->loop), 0);
	struct qs_http_config cfg;
	qs_http_config_default(&cfg);
	assert_int_equal(qs_endpoint_init(&f->ep, 1, token_bytes, sizeof(token_bytes)), 0);
	cfg.token = f->ep.token;
	cfg.routes = routes;
	cfg.nroutes = sizeof(routes) / sizeof(routes[0]);
	assert_int_equal(qs_http_server_new(&f->loop, &cfg, &f->srv), 0);
	f->ep.port = qs_http_server_port(f->srv);
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	uv_async_send(&f->stop);
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	qs_http_server_free(f->srv);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->home);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void write_endpoint(const struct fixture *f, const struct qs_endpoint *e)
{
	char *path = qs_endpoint_path(f->config, "qic");
	assert_int_equal(qs_endpoint_write(e, path), 0);
	free(path);
}

static struct qs_rest *open_client(const struct fixture *f)
{
	struct qs_rest *r = qs_rest_new(&qs_daemon_qic);
	assert_non_null(r);
	write_endpoint(f, &f->ep);
	assert_int_equal(qs_rest_open(r, f->config), 0);
	return r;
}

static void test_requests(void **state)
{
	struct fixture *f = *state;
	struct qs_rest *r = open_client(f);
	json_t *out = NULL;
	assert_int_equal(qs_rest_request(r, "GET", "/v1/status", NULL, &out), 0);
	assert_int_equal(qs_rest_status(r), 200);
	assert_string_equal(json_string_value(json_object_get(out, "state")), "syncing");
	assert_string_equal(qs_rest_error(r), "");
	json_decref(out);

	char seg[64];
	assert_int_equal(qs_rest_escape("my docs/\xc3\xa9", seg, sizeof(seg)), 0);
	char path[128];
	snprintf(path, sizeof(path), "/v1/roots/%s", seg);
	json_t *body = json_pack("{s:s,s:i}", "local", "/home/u/docs", "n", 3);
	assert_int_equal(qs_rest_request(r, "POST", path, body, &out), 0);
	assert_int_equal(qs_rest_status(r), 201);
	assert_true(json_equal(json_object_get(out, "got"), body));
	assert_string_equal(json_string_value(json_object_get(out, "name")), "my docs/\xc3\xa9");
	json_decref(out);
	json_decref(body);

	/* All of it over one kept-alive connection. */
	assert_int_equal(qs_rest_connections(r), 1);
	qs_rest_free(r);
}

static void test_http_errors(void **state)
{
	struct fixture *f = *state;
	struct qs_rest *r = open_client(f);
	json_t *out = (json_t *)0x1;
	/* The daemon's message (the server replaced its newline) and its code. */
	assert_int_equal(qs_rest_request(r, "PUT", "/v1/conflict", NULL, &out), QS_ECONFLICT);
	assert_ptr_equal(out, (json_t *)0x1);
	assert_string_equal(qs_rest_error(r), "qic: a root named \"docs\" already exists?");
	assert_string_equal(qs_rest_error_code(r), "root_exists");
	assert_int_equal(qs_rest_status(r), 409);

	assert_int_equal(qs_rest_request(r, "GET", "/v1/nope", NULL, &out), QS_ENOENT);
	assert_string_equal(qs_rest_error(r), "qic: no such endpoint: /v1/nope");
	assert_string_equal(qs_rest_error_code(r), "not_found");

	assert_int_equal(qs_rest_request(r, "POST", "/v1/roots/x", NULL, &out), QS_EINVAL);
	assert_string_equal(qs_rest_error(r), "qic: send a body");

	assert_int_equal(qs_rest_request(r, "DELETE", "/v1/status", NULL, &out), QS_EIO);
	assert_int_equal(qs_rest_status(r), 405);

	/* Success clears the previous failure. */
	assert_int_equal(qs_rest_request(r, "GET", "/v1/status", NULL, &out), 0);
	assert_string_equal(qs_rest_error(r), "");
	assert_string_equal(qs_rest_error_code(r), "");
	json_decref(out);
	assert_int_equal(qs_rest_connections(r), 1); /* errors kept the connection too */
	qs_rest_free(r);
}

static void test_wrong_token(void **state)
{
	struct fixture *f = *state;
	struct qs_endpoint other = f->ep;
	uint8_t bytes[32] = {0};
	assert_int_equal(qs_endpoint_init(&other, f->ep.port, bytes, sizeof(bytes)), 0);
	write_endpoint(f, &other);
	struct qs_rest *r = qs_rest_new(&qs_daemon_qic);
	assert_int_equal(qs_rest_open(r, f->config), 0);
	json_t *out = NULL;
	assert_int_equal(qs_rest_request(r, "GET", "/v1/status", NULL, &out), QS_EACCES);
	assert_int_equal(qs_rest_status(r), 401);
	assert_string_equal(qs_rest_error(r), "qic: the client daemon refused the token in "
					      "~/.config/quics/qic.api (wrong bearer token)");
	qs_rest_free(r);
}

static void test_not_running(void **state)
{
	struct fixture *f = *state;
	struct qs_rest *r = qs_rest_new(&qs_daemon_qic);
	json_t *out = NULL;
	assert_int_equal(qs_rest_request(r, "GET", "/v1/status", NULL, &out), QS_ESTATE);
	/* No endpoint file. */
	assert_int_equal(qs_rest_open(r, f->config), QS_ENOENT);
	assert_string_equal(qs_rest_error(r),
			    "qic: the client daemon is not running (no ~/.config/quics/qic.api)");
	qs_rest_free(r);

	r = qs_rest_new(&qs_daemon_qis);
	assert_int_equal(qs_rest_open(r, f->config), QS_ENOENT);
	assert_string_equal(qs_rest_error(r),
			    "qis: the server is not running (no ~/.config/quics/qis.api)");
	qs_rest_free(r);

	/* A stale file: nothing listens on its port any more. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	close(s);
	struct qs_endpoint stale = f->ep;
	stale.port = ntohs(sa.sin_port);
	write_endpoint(f, &stale);
	r = qs_rest_new(&qs_daemon_qic);
	assert_int_equal(qs_rest_open(r, f->config), 0);
	assert_int_equal(qs_rest_request(r, "GET", "/v1/status", NULL, &out), QS_ECONN);
	char want[256];
	snprintf(want, sizeof(want),
		 "qic: the client daemon is not running (connection to 127.0.0.1:%u refused; "
		 "~/.config/quics/qic.api is stale)",
		 (unsigned)stale.port);
	assert_string_equal(qs_rest_error(r), want);
	assert_int_equal(qs_rest_status(r), 0);
	qs_rest_free(r);

	/* A file others may read is refused, with a reason. */
	write_endpoint(f, &f->ep);
	char path[256];
	snprintf(path, sizeof(path), "%s/qic.api", f->config);
	assert_int_equal(chmod(path, 0644), 0);
	r = qs_rest_new(&qs_daemon_qic);
	assert_int_equal(qs_rest_open(r, f->config), QS_EACCES);
	assert_string_equal(qs_rest_error(r), "qic: ~/.config/quics/qic.api must be a regular file "
					      "of yours with mode 0600; refusing to read it");
	qs_rest_free(r);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	struct qs_rest *r = open_client(f);
	qs_rest_set_timeout(r, 200);
	json_t *out = NULL;
	assert_int_equal(qs_rest_request(r, "GET", "/v1/never", NULL, &out), QS_ETIMEDOUT);
	assert_string_equal(qs_rest_error(r), "qic: the client daemon did not answer within 0.2 s");
	qs_rest_free(r);
}

static void test_proxy_ignored(void **state)
{
	struct fixture *f = *state;
	setenv("http_proxy", "http://127.0.0.1:1", 1);
	setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
	setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
	struct qs_rest *r = open_client(f);
	json_t *out = NULL;
	int rc = qs_rest_request(r, "GET", "/v1/status", NULL, &out);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("ALL_PROXY");
	assert_int_equal(rc, 0);
	json_decref(out);
	qs_rest_free(r);
}

/* ---- a daemon that answers nonsense: one raw answer per connection ---------------------- */

struct raw_server {
	int fd;
	uint16_t port;
	const char *answer;
	pthread_t thread;
};

static void *raw_main(void *arg)
{
	struct raw_server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	char buf[4096];
	ssize_t got = 0, n;
	while ((n = recv(c, buf + got, sizeof(buf) - 1 - (size_t)got, 0)) > 0) {
		got += n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	ssize_t w = send(c, s->answer, strlen(s->answer), MSG_NOSIGNAL);
	(void)w;
	close(c);
	return NULL;
}

static void raw_start(struct raw_server *s, const char *answer)
{
	s->answer = answer;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->fd, 1), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, raw_main, s), 0);
}

static void raw_stop(struct raw_server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void test_bad_answers(void **state)
{
	(void)state;
	static const struct {
		const char *answer;
		int rc;
		const char *err;
	} cases[] = {
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", QS_EPROTO,
		 "qic: the client daemon sent an answer that is not JSON (HTTP 200)"},
		{"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\n<h1>", QS_EPROTO,
		 "qic: the client daemon sent an answer that is not JSON (HTTP 500)"},
		{"HTTP/1.1 502 Bad\r\nContent-Length: 2\r\n\r\n{}", QS_EIO,
		 "qic: the client daemon answered HTTP 502"},
		{"HTTP/1.1 503 Busy\r\nContent-Length: 48\r\n\r\n"
		 "{\"error\":{\"code\":\"x\",\"message\":\"\\u001b[2Jbusy\"}}",
		 QS_EAGAIN, "qic:  [2Jbusy"},
		{"garbage\r\n\r\n", QS_ECONN, NULL},
		{"", QS_ECONN, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct raw_server s;
		raw_start(&s, cases[i].answer);
		struct qs_endpoint e;
		assert_int_equal(qs_endpoint_init(&e, s.port, token_bytes, sizeof(token_bytes)), 0);
		struct qs_rest *r = qs_rest_new(&qs_daemon_qic);
		qs_rest_use(r, &e);
		json_t *out = NULL;
		assert_int_equal(qs_rest_request(r, "GET", "/v1/x", NULL, &out), cases[i].rc);
		assert_null(out);
		if (cases[i].err != NULL)
			assert_string_equal(qs_rest_error(r), cases[i].err);
		else
			assert_non_null(strstr(qs_rest_error(r),
					       "qic: talking to the client daemon "
					       "at 127.0.0.1:"));
		assert_null(strchr(qs_rest_error(r), '\n'));
		qs_rest_free(r);
		raw_stop(&s);
	}
}

static void test_escape(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(qs_rest_escape("a b/\xc3\xa9-._~%+?#&=", out, sizeof(out)), 0);
	assert_string_equal(out, "a%20b%2F%C3%A9-._~%25%2B%3F%23%26%3D");
	assert_int_equal(qs_rest_escape("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(qs_rest_escape("abc", out, 4), 0);
	assert_int_equal(qs_rest_escape("abcd", out, 4), QS_E2BIG);
	assert_string_equal(out, "");
	assert_int_equal(qs_rest_escape("a/", out, 4), QS_E2BIG);
	assert_int_equal(qs_rest_escape("/", out, 4), 0);
	assert_string_equal(out, "%2F");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_ignored, setup, teardown),
		cmocka_unit_test(test_bad_answers),
		cmocka_unit_test(test_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

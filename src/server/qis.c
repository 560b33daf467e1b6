/* qis: the QUIC-S server. `qis run` runs the daemon in the foreground; every option of it
 * also comes from a QUICS_* environment variable (the flag wins). The other commands (show,
 * password, stop) talk to the running daemon's admin REST API (server/admin.h), found through
 * the endpoint file in the config directory. Commands, options and exit statuses follow
 * cli/args.h; errors are one line on stderr. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "base/path.h"
#include "cli/args.h"
#include "cli/dirs.h"
#include "cli/out.h"
#include "cli/rest.h"
#include "server/admin.h"
#include "server/daemon.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STOP_WAIT_MS 30000
#define STOP_POLL_MS 50

/* ---- qis run ---------------------------------------------------------------------------- */

static struct qis_daemon *daemon_;
static uv_signal_t sig_term, sig_int;

static void stopped(void *arg)
{
	(void)arg;
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

/* A signal or POST /v1/stop: the daemon stops once; the loop ends when everything closed. */
static void request_stop(void *arg)
{
	(void)arg;
	if (daemon_->stopping)
		return;
	qis_daemon_stop(daemon_, stopped, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	qs_info("server", "event=stopping signal=%d", signum);
	request_stop(NULL);
}

/* A port from the command line, else from the environment variable, else the default. */
static int port_option(const struct qs_cmd_ctx *c, const char *opt, const char *env, uint16_t *out)
{
	const char *v = getenv(env);
	uint64_t n = qs_cmd_num(c, opt);
	if (!qs_cmd_given(c, opt) && v != NULL && qs_parse_u64(v, 65535, &n) != 0) {
		fprintf(c->err, "qis: %s: not a port number: %s\n", env, v);
		return QS_EXIT_USAGE;
	}
	*out = (uint16_t)n;
	return 0;
}

/* A number up to max from the command line, else from the environment variable, else the
 * default. */
static int num_option(const struct qs_cmd_ctx *c, const char *opt, const char *env, uint64_t max,
		      uint64_t *out)
{
	const char *v = getenv(env);
	uint64_t n = qs_cmd_num(c, opt);
	if (!qs_cmd_given(c, opt) && v != NULL && qs_parse_u64(v, max, &n) != 0) {
		fprintf(c->err, "qis: %s: not a number from 0 to %llu: %s\n", env,
			(unsigned long long)max, v);
		return QS_EXIT_USAGE;
	}
	*out = n;
	return 0;
}

/* A string from the command line, else from the environment variable, else the default. */
static const char *str_option(const struct qs_cmd_ctx *c, const char *opt, const char *env)
{
	if (!qs_cmd_given(c, opt) && getenv(env) != NULL)
		return getenv(env);
	return qs_cmd_str(c, opt);
}

/* Creates every missing parent of path (mode 0700), like mkdir -p without the last one. */
static void make_parents(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return;
		*p = '/';
	}
}

static void print_started(const struct qs_cmd_ctx *c, const struct qis_config *cfg)
{
	const struct qis_daemon *d = daemon_;
	uint16_t quic_port = qs_quic_server_port(d->quic);
	const char *fpr = qs_quic_server_fingerprint(d->quic);
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s}", "version", QS_VERSION,
				      "addr", cfg->addr, "quic_port", (json_int_t)quic_port,
				      "admin_port", (json_int_t)qis_admin_port(d->admin),
				      "fingerprint", fpr, "data", cfg->data_dir);
		if (j != NULL) {
			json_dumpf(j, c->out, JSON_COMPACT);
			fputc('\n', c->out);
		}
		json_decref(j);
		return;
	}
	fprintf(c->out,
		"qis %s serving\n"
		"  sync protocol: %s port %u (UDP)\n"
		"  certificate fingerprint: %s\n"
		"  data: %s\n"
		"connect a client: qic connect server --host <this host> --port %u "
		"--password <server password> --fingerprint %s\n",
		QS_VERSION, cfg->addr, quic_port, fpr, cfg->data_dir, quic_port, fpr);
}

static int cmd_run(struct qs_cmd_ctx *c)
{
	struct qis_config cfg = {0};
	struct qs_dirs dirs;
	char data[4096];
	if (port_option(c, "quic-port", "QUICS_QUIC_PORT", &cfg.quic_port) != 0 ||
	    port_option(c, "port", "QUICS_PORT", &cfg.http_port) != 0)
		return QS_EXIT_USAGE;
	cfg.addr = str_option(c, "addr", "QUICS_ADDR");
	cfg.data_dir = str_option(c, "data", "QUICS_DATA");
	cfg.password = str_option(c, "password", "QUICS_PASSWORD");
	uint64_t keep_versions, keep_days, grace, stall;
	if (num_option(c, "keep-versions", "QUICS_KEEP_VERSIONS", UINT32_MAX, &keep_versions) ||
	    num_option(c, "keep-days", "QUICS_KEEP_DAYS", 100000, &keep_days) ||
	    num_option(c, "gc-grace", "QUICS_GC_GRACE", INT32_MAX, &grace) ||
	    num_option(c, "stall-timeout", "QUICS_STALL_TIMEOUT", 86400, &stall))
		return QS_EXIT_USAGE;
	cfg.stall_timeout_s = (uint32_t)stall;
	cfg.keep_versions = (uint32_t)keep_versions;
	cfg.keep_days = (uint32_t)keep_days;
	cfg.gc_grace_s = (int64_t)grace;
	const char *fast = getenv("QUICS_TEST_FAST_HASH");
	cfg.fast_password_hash = fast != NULL && strcmp(fast, "1") == 0;
	cfg.on_stop_request = request_stop;
	if (qs_dirs_init(&dirs) != 0) {
		fprintf(c->err, "qis: no HOME (nor XDG_CONFIG_HOME and --data) to keep files in\n");
		return QS_EXIT_USAGE;
	}
	cfg.config_dir = dirs.config;
	if (cfg.data_dir == NULL) {
		if ((size_t)snprintf(data, sizeof(data), "%s/server", dirs.data) >= sizeof(data)) {
			fprintf(c->err, "qis: the data directory's path is too long\n");
			qs_dirs_release(&dirs);
			return QS_EXIT_USAGE;
		}
		make_parents(data);
		cfg.data_dir = data;
	}
	uv_loop_t *loop = uv_default_loop();
	int rc = qis_daemon_start(loop, &cfg, &daemon_);
	if (rc == QS_EADDRINUSE)
		fprintf(c->err,
			"qis: cannot start: UDP port %u is in use (another qis? --quic-port "
			"chooses another)\n",
			(unsigned)cfg.quic_port);
	else if (rc != 0)
		fprintf(c->err, "qis: cannot start: %s (data dir %s)\n", qs_strerror(rc),
			cfg.data_dir);
	if (rc != 0) {
		qs_dirs_release(&dirs);
		return QS_EXIT_FAIL;
	}
	print_started(c, &cfg);
	fflush(c->out);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
	qis_daemon_free(daemon_);
	uv_loop_close(loop);
	qs_dirs_release(&dirs);
	return QS_EXIT_OK;
}

/* ---- talking to the daemon -------------------------------------------------------------- */

struct api {
	struct qs_dirs dirs;
	bool have_dirs;
	struct qs_rest *rest;
	char msg[512]; /* our own error line, when the failure is not the REST client's */
};

/* Finds the daemon. On failure prints one line and returns QS_EXIT_FAIL. */
static int api_open(struct qs_cmd_ctx *c, struct api *api)
{
	memset(api, 0, sizeof(*api));
	int rc = qs_dirs_init(&api->dirs);
	if (rc != 0) {
		fprintf(c->err, "qis: cannot find the config directory: %s\n", qs_strerror(rc));
		return QS_EXIT_FAIL;
	}
	api->have_dirs = true;
	api->rest = qs_rest_new(&qs_daemon_qis);
	if (api->rest == NULL) {
		fprintf(c->err, "qis: out of memory\n");
		return QS_EXIT_FAIL;
	}
	if (qs_rest_open(api->rest, api->dirs.config) != 0) {
		fprintf(c->err, "%s\n", qs_rest_error(api->rest));
		return QS_EXIT_FAIL;
	}
	return QS_EXIT_OK;
}

static void api_close(struct api *api)
{
	qs_rest_free(api->rest);
	if (api->have_dirs)
		qs_dirs_release(&api->dirs);
}

/* Prints the last failure and returns QS_EXIT_FAIL. */
static int api_fail(struct qs_cmd_ctx *c, const struct api *api)
{
	fprintf(c->err, "%s\n", api->msg[0] != '\0' ? api->msg : qs_rest_error(api->rest));
	return QS_EXIT_FAIL;
}

static int api_request(struct api *api, const char *method, const char *path, const json_t *body,
		       json_t **out)
{
	api->msg[0] = '\0';
	return qs_rest_request(api->rest, method, path, body, out);
}

/* The cursor of a page as URL text: "" when it was the last page. */
static int next_cursor(const json_t *page, char *out, size_t cap)
{
	const json_t *next = json_object_get(page, "next_after");
	out[0] = '\0';
	if (json_is_integer(next)) {
		snprintf(out, cap, "%lld", (long long)json_integer_value(next));
		return 0;
	}
	if (json_is_string(next))
		return qs_rest_escape(json_string_value(next), out, cap);
	return 0;
}

/* One page of a list from url into *page, with its items and its cursor ("" on the last
 * page). */
static int api_get_page(struct api *api, const char *url, const char *key, json_t **page,
			char *cursor, size_t cap)
{
	int rc = api_request(api, "GET", url, NULL, page);
	if (rc != 0)
		return rc;
	if (!json_is_array(json_object_get(*page, key)) || next_cursor(*page, cursor, cap) != 0) {
		snprintf(api->msg, sizeof(api->msg), "qis: the server sent a malformed list of %s",
			 key);
		json_decref(*page);
		*page = NULL;
		return QS_EPROTO;
	}
	return 0;
}

/* Notes a failure found here rather than by the REST client. */
static int local_error(struct api *api, int rc, const char *key)
{
	snprintf(api->msg, sizeof(api->msg), "qis: cannot read the list of %s: %s", key,
		 qs_strerror(rc));
	return rc;
}

/* GETs every page of a list (path may have a query) and returns the first answer with the
 * items of all pages in its array `key`, without "next_after". QUICS_TEST_PAGE_LIMIT sets
 * the page size (tests of the paging). */
static int api_get_all(struct api *api, const char *path, const char *key, json_t **out)
{
	static char base[16384], url[16384], cursor[12800], previous[12800];
	const char *sep = strchr(path, '?') != NULL ? "&" : "?";
	const char *test_limit = getenv("QUICS_TEST_PAGE_LIMIT");
	uint64_t limit;
	if (test_limit != NULL && qs_parse_u64(test_limit, 10000, &limit) == 0)
		snprintf(base, sizeof(base), "%s%slimit=%llu", path, sep,
			 (unsigned long long)limit);
	else
		snprintf(base, sizeof(base), "%s", path);
	sep = strchr(base, '?') != NULL ? "&" : "?";
	json_t *all = NULL;
	int rc = 0;
	cursor[0] = '\0';
	do {
		json_t *page = NULL;
		memcpy(previous, cursor, sizeof(previous));
		if (all == NULL)
			snprintf(url, sizeof(url), "%s", base);
		else if ((size_t)snprintf(url, sizeof(url), "%s%safter=%s", base, sep, cursor) >=
			 sizeof(url))
			rc = local_error(api, QS_E2BIG, key);
		if (rc == 0)
			rc = api_get_page(api, url, key, &page, cursor, sizeof(cursor));
		if (rc == 0 && cursor[0] != '\0' && strcmp(cursor, previous) == 0)
			rc = local_error(api, QS_EPROTO, key); /* it would loop forever */
		if (rc == 0 && all != NULL &&
		    json_array_extend(json_object_get(all, key), json_object_get(page, key)) != 0)
			rc = local_error(api, QS_ENOMEM, key);
		if (rc == 0 && all == NULL)
			all = json_incref(page);
		json_decref(page);
	} while (rc == 0 && cursor[0] != '\0');
	if (rc != 0) {
		json_decref(all);
		return rc;
	}
	json_object_del(all, "next_after");
	*out = all;
	return 0;
}

/* Finds a root by name, or by id when arg is a number that names no root. */
static int root_resolve(struct api *api, const char *arg, uint64_t *id)
{
	char esc[1024], path[1100];
	if (qs_rest_escape(arg, esc, sizeof(esc)) != 0) {
		snprintf(api->msg, sizeof(api->msg), "qis: the root name is too long");
		return QS_E2BIG;
	}
	snprintf(path, sizeof(path), "/v1/roots?name=%s", esc);
	json_t *ans = NULL;
	int rc = api_request(api, "GET", path, NULL, &ans);
	if (rc != 0)
		return rc;
	const json_t *first = json_array_get(json_object_get(ans, "roots"), 0);
	json_int_t found = json_integer_value(json_object_get(first, "id"));
	json_decref(ans);
	if (found > 0) {
		*id = (uint64_t)found;
		return 0;
	}
	uint64_t n;
	if (qs_parse_u64(arg, (uint64_t)INT64_MAX, &n) == 0 && n > 0) {
		snprintf(path, sizeof(path), "/v1/roots/%llu", (unsigned long long)n);
		rc = api_request(api, "GET", path, NULL, &ans);
		json_decref(ans);
		if (rc == 0) {
			*id = n;
			return 0;
		}
		if (rc != QS_ENOENT)
			return rc;
	}
	snprintf(api->msg, sizeof(api->msg), "qis: no root named '%.200s'", arg);
	return QS_ENOENT;
}

/* ---- output ----------------------------------------------------------------------------- */

static void time_text(const json_t *unix_ms, char *buf, size_t cap)
{
	time_t t = (time_t)(json_integer_value(unix_ms) / 1000);
	struct tm tm;
	if (!json_is_integer(unix_ms) || localtime_r(&t, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, cap, "-");
}

/* Adds the member dst: the time of member src as text, for tables. */
static void add_time(json_t *obj, const char *dst, const char *src)
{
	char t[64];
	time_text(json_object_get(obj, src), t, sizeof(t));
	json_object_set_new(obj, dst, json_string(t));
}

/* Adds the display members of a file version: size_text, by, accepted. */
static void version_display(json_t *v)
{
	char size[32], by[300];
	const char *kind = json_string_value(json_object_get(v, "kind"));
	if (kind != NULL && (strcmp(kind, "file") == 0 || strcmp(kind, "symlink") == 0))
		qs_out_bytes((uint64_t)json_integer_value(json_object_get(v, "size")), size,
			     sizeof(size));
	else
		snprintf(size, sizeof(size), "-");
	json_object_set_new(v, "size_text", json_string(size));
	const char *name = json_string_value(json_object_get(v, "modified_by_name"));
	snprintf(by, sizeof(by), "%s (%lld)", name != NULL && name[0] != '\0' ? name : "?",
		 (long long)json_integer_value(json_object_get(v, "modified_by")));
	json_object_set_new(v, "by", json_string(by));
	add_time(v, "accepted", "accepted_unix_ms");
	const char *hash = json_string_value(json_object_get(v, "content_hash"));
	char short_hash[16];
	snprintf(short_hash, sizeof(short_hash), "%.12s", hash != NULL ? hash : "-");
	json_object_set_new(v, "content", json_string(short_hash));
}

/* Prints v as JSON, or calls text(v) for people. */
static int print_answer(struct qs_cmd_ctx *c, json_t *v, int (*text)(FILE *f, json_t *v))
{
	int rc = c->json ? qs_out_json(c->out, v) : text(c->out, v);
	if (rc != 0) {
		fprintf(c->err, "qis: cannot print the answer: %s\n", qs_strerror(rc));
		return QS_EXIT_FAIL;
	}
	return QS_EXIT_OK;
}

/* ---- qis show client -------------------------------------------------------------------- */

static int client_table(FILE *f, json_t *ans)
{
	static const struct qs_out_col cols[] = {
		{"id", "ID", true},
		{"name", "NAME", false},
		{"created", "REGISTERED", false},
		{"connected", "CONNECTED", false},
	};
	json_t *rows = json_object_get(ans, "clients"), *row;
	size_t i;
	if (json_array_size(rows) == 0) {
		fprintf(f, "no clients\n");
		return 0;
	}
	json_array_foreach(rows, i, row) add_time(row, "created", "created_unix_ms");
	return qs_out_table(f, rows, cols, ARRAY_LEN(cols));
}

static int client_detail(FILE *f, json_t *ans)
{
	json_t *shown = json_object(), *roots = json_array(), *r;
	size_t i;
	char t[64];
	time_text(json_object_get(ans, "created_unix_ms"), t, sizeof(t));
	json_array_foreach(json_object_get(ans, "roots"), i, r)
	{
		char one[300];
		snprintf(one, sizeof(one), "%s (%lld)",
			 json_string_value(json_object_get(r, "name")),
			 (long long)json_integer_value(json_object_get(r, "id")));
		json_array_append_new(roots, json_string(one));
	}
	json_object_set(shown, "id", json_object_get(ans, "id"));
	json_object_set(shown, "name", json_object_get(ans, "name"));
	json_object_set_new(shown, "registered", json_string(t));
	json_object_set(shown, "connected", json_object_get(ans, "connected"));
	json_object_set(shown, "connections", json_object_get(ans, "sessions"));
	json_object_set_new(shown, "roots", roots);
	int rc = qs_out_object(f, shown);
	json_decref(shown);
	return rc;
}

static int cmd_show_client(struct qs_cmd_ctx *c)
{
	if (qs_cmd_given(c, "id") && qs_cmd_given(c, "all"))
		return qs_cmd_usage_error(c, "--id and --all exclude each other");
	struct api api;
	int st = api_open(c, &api);
	json_t *ans = NULL;
	if (st == QS_EXIT_OK && qs_cmd_given(c, "id")) {
		char path[64];
		snprintf(path, sizeof(path), "/v1/clients/%llu",
			 (unsigned long long)qs_cmd_num(c, "id"));
		st = api_request(&api, "GET", path, NULL, &ans) == 0
			     ? print_answer(c, ans, client_detail)
			     : api_fail(c, &api);
	} else if (st == QS_EXIT_OK) {
		const char *path =
			qs_cmd_given(c, "all") ? "/v1/clients" : "/v1/clients?connected=true";
		st = api_get_all(&api, path, "clients", &ans) == 0
			     ? print_answer(c, ans, client_table)
			     : api_fail(c, &api);
	}
	json_decref(ans);
	api_close(&api);
	return st;
}

/* ---- qis show dir|file|history ---------------------------------------------------------- */

static int files_table(FILE *f, json_t *ans)
{
	static const struct qs_out_col cols[] = {
		{"path", "PATH", false},      {"kind", "KIND", false},
		{"version", "VERSION", true}, {"size_text", "SIZE", true},
		{"by", "MODIFIED BY", false}, {"accepted", "ACCEPTED", false},
	};
	json_t *rows = json_object_get(ans, "files"), *row;
	size_t i;
	if (json_array_size(rows) == 0) {
		fprintf(f, "no files\n");
		return 0;
	}
	json_array_foreach(rows, i, row) version_display(row);
	return qs_out_table(f, rows, cols, ARRAY_LEN(cols));
}

static int history_table(FILE *f, json_t *ans)
{
	static const struct qs_out_col cols[] = {
		{"version", "VERSION", true},      {"kind", "KIND", false},
		{"operation", "OPERATION", false}, {"size_text", "SIZE", true},
		{"by", "MODIFIED BY", false},      {"accepted", "ACCEPTED", false},
		{"content", "CONTENT", false},
	};
	json_t *rows = json_object_get(ans, "versions"), *row;
	size_t i;
	json_array_foreach(rows, i, row) version_display(row);
	return qs_out_table(f, rows, cols, ARRAY_LEN(cols));
}

static int file_detail(FILE *f, json_t *ans)
{
	char mode[16], mtime[64], root[300];
	json_int_t ns = json_integer_value(json_object_get(ans, "mtime_ns"));
	json_t *ms = json_integer(ns / 1000000);
	time_text(ms, mtime, sizeof(mtime));
	json_decref(ms);
	snprintf(mode, sizeof(mode), "%04llo",
		 (unsigned long long)json_integer_value(json_object_get(ans, "mode")));
	snprintf(root, sizeof(root), "%s (%lld)",
		 json_string_value(json_object_get(ans, "root_name")),
		 (long long)json_integer_value(json_object_get(ans, "root")));
	version_display(ans);
	json_t *shown = json_object();
	json_object_set_new(shown, "root", json_string(root));
	json_object_set(shown, "path", json_object_get(ans, "path"));
	json_object_set(shown, "kind", json_object_get(ans, "kind"));
	json_object_set(shown, "version", json_object_get(ans, "version"));
	json_object_set(shown, "size", json_object_get(ans, "size_text"));
	json_object_set_new(shown, "mode", json_string(mode));
	json_object_set_new(shown, "modified", json_string(mtime));
	json_object_set(shown, "modified_by", json_object_get(ans, "by"));
	json_object_set(shown, "accepted", json_object_get(ans, "accepted"));
	json_object_set(shown, "content_hash", json_object_get(ans, "content_hash"));
	int rc = qs_out_object(f, shown);
	json_decref(shown);
	return rc;
}

/* "/v1/roots/<id>/<what>?<name>=<escaped value>" for the --root and --path options; a
 * trailing '/' of a directory is dropped. */
static int root_query(struct qs_cmd_ctx *c, struct api *api, const char *what, const char *name,
		      char *out, size_t cap)
{
	uint64_t id;
	int rc = root_resolve(api, qs_cmd_str(c, "root"), &id);
	if (rc != 0)
		return rc;
	const char *p = qs_cmd_str(c, "path");
	char value[QS_PATH_MAX + 1], esc[3 * QS_PATH_MAX + 1];
	snprintf(value, sizeof(value), "%s", p != NULL ? p : "");
	size_t n = strlen(value);
	while (strcmp(name, "dir") == 0 && n > 0 && value[n - 1] == '/')
		value[--n] = '\0';
	if (qs_rest_escape(value, esc, sizeof(esc)) != 0 ||
	    (size_t)snprintf(out, cap, "/v1/roots/%llu/%s?%s=%s", (unsigned long long)id, what,
			     name, esc) >= cap) {
		snprintf(api->msg, sizeof(api->msg), "qis: the path is too long");
		return QS_E2BIG;
	}
	return 0;
}

static int cmd_show_dir(struct qs_cmd_ctx *c)
{
	static char path[16384];
	struct api api;
	json_t *ans = NULL;
	int st = api_open(c, &api);
	if (st == QS_EXIT_OK) {
		int rc = root_query(c, &api, "files", "dir", path, sizeof(path));
		if (rc == 0 && qs_cmd_given(c, "deleted"))
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "&deleted=true");
		if (rc == 0)
			rc = api_get_all(&api, path, "files", &ans);
		st = rc == 0 ? print_answer(c, ans, files_table) : api_fail(c, &api);
	}
	json_decref(ans);
	api_close(&api);
	return st;
}

static int cmd_show_file(struct qs_cmd_ctx *c)
{
	static char path[16384];
	struct api api;
	json_t *ans = NULL;
	int st = api_open(c, &api);
	if (st == QS_EXIT_OK) {
		int rc = root_query(c, &api, "file", "path", path, sizeof(path));
		if (rc == 0)
			rc = api_request(&api, "GET", path, NULL, &ans);
		st = rc == 0 ? print_answer(c, ans, file_detail) : api_fail(c, &api);
	}
	json_decref(ans);
	api_close(&api);
	return st;
}

static int cmd_show_history(struct qs_cmd_ctx *c)
{
	static char path[16384];
	struct api api;
	json_t *ans = NULL;
	int st = api_open(c, &api);
	if (st == QS_EXIT_OK) {
		int rc = root_query(c, &api, "history", "path", path, sizeof(path));
		if (rc == 0)
			rc = api_get_all(&api, path, "versions", &ans);
		st = rc == 0 ? print_answer(c, ans, history_table) : api_fail(c, &api);
	}
	json_decref(ans);
	api_close(&api);
	return st;
}

/* ---- qis show conflict ------------------------------------------------------------------ */

static int conflict_table(FILE *f, json_t *ans)
{
	static const struct qs_out_col cols[] = {
		{"root", "ROOT", false},
		{"path", "PATH", false},
		{"server_version", "SERVER VERSION", true},
		{"id", "CANDIDATE", true},
		{"by", "PROPOSED BY", false},
		{"base_version", "BASE", true},
		{"kind", "KIND", false},
		{"size", "SIZE", true},
		{"proposed", "PROPOSED", false},
	};
	json_t *rows = json_object_get(ans, "candidates"), *row;
	size_t i;
	if (json_array_size(rows) == 0) {
		fprintf(f, "no open conflicts\n");
		return 0;
	}
	json_array_foreach(rows, i, row)
	{
		char by[300];
		snprintf(by, sizeof(by), "%s (%lld)",
			 json_string_value(json_object_get(row, "client_name")),
			 (long long)json_integer_value(json_object_get(row, "client_id")));
		json_object_set_new(row, "by", json_string(by));
		add_time(row, "proposed", "proposed_unix_ms");
	}
	return qs_out_table(f, rows, cols, ARRAY_LEN(cols));
}

static int cmd_show_conflict(struct qs_cmd_ctx *c)
{
	struct api api;
	json_t *ans = NULL;
	int st = api_open(c, &api);
	if (st == QS_EXIT_OK)
		st = api_get_all(&api, "/v1/conflicts", "candidates", &ans) == 0
			     ? print_answer(c, ans, conflict_table)
			     : api_fail(c, &api);
	json_decref(ans);
	api_close(&api);
	return st;
}

/* ---- qis password set|reset, qis stop --------------------------------------------------- */

/* Reads one line (without its newline) from stdin into buf; on a terminal, prompts on
 * stderr with echo off. Errors: QS_EINVAL (nothing read), QS_E2BIG. */
static int read_password(char *buf, size_t cap)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		fprintf(stderr, "new server password: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	bool got = fgets(buf, (int)cap, stdin) != NULL;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (!got)
		return QS_EINVAL;
	size_t n = strlen(buf);
	if (n > 0 && buf[n - 1] != '\n' && !feof(stdin))
		return QS_E2BIG;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return 0;
}

static int cmd_password_set(struct qs_cmd_ctx *c)
{
	static char pw[4096 + 2];
	const char *given = qs_cmd_str(c, "password");
	if (given == NULL) {
		int rc = read_password(pw, sizeof(pw));
		if (rc != 0) {
			fprintf(c->err, "qis password set: %s\n",
				rc == QS_E2BIG ? "the password is too long"
					       : "no password on standard input");
			return QS_EXIT_FAIL;
		}
		given = pw;
	}
	if (given[0] == '\0') {
		fprintf(c->err, "qis password set: the password is empty\n");
		qs_wipe(pw, sizeof(pw));
		return QS_EXIT_FAIL;
	}
	struct api api;
	json_t *ans = NULL, *body = json_pack("{s:s}", "password", given);
	qs_wipe(pw, sizeof(pw));
	int st = api_open(c, &api);
	if (st == QS_EXIT_OK && body == NULL) {
		fprintf(c->err, "qis password set: the password must be UTF-8 text\n");
		st = QS_EXIT_FAIL;
	} else if (st == QS_EXIT_OK) {
		st = api_request(&api, "PUT", "/v1/password", body, &ans) == 0 ? QS_EXIT_OK
									       : api_fail(c, &api);
	}
	if (st == QS_EXIT_OK) {
		if (c->json)
			qs_out_json(c->out, ans);
		else
			fprintf(c->out, "server password changed; clients registered before keep "
					"working\n");
	}
	json_decref(body);
	json_decref(ans);
	api_close(&api);
	return st;
}

static int cmd_password_reset(struct qs_cmd_ctx *c)
{
	struct api api;
	json_t *ans = NULL;
	int st = api_open(c, &api);
	if (st == QS_EXIT_OK)
		st = api_request(&api, "POST", "/v1/password/reset", NULL, &ans) == 0
			     ? QS_EXIT_OK
			     : api_fail(c, &api);
	const char *pw = json_string_value(json_object_get(ans, "password"));
	if (st == QS_EXIT_OK && pw == NULL) {
		fprintf(c->err, "qis: the server's answer has no password\n");
		st = QS_EXIT_FAIL;
	}
	if (st == QS_EXIT_OK && c->json)
		qs_out_json(c->out, ans);
	else if (st == QS_EXIT_OK)
		fprintf(c->out,
			"new server password (shown once; new clients register with it): %s\n", pw);
	json_decref(ans);
	api_close(&api);
	return st;
}

/* Whether the endpoint file still names the daemon we asked to stop. */
static bool still_published(const char *path, const struct qs_endpoint *ours)
{
	struct qs_endpoint now;
	if (qs_endpoint_read(path, &now) != 0)
		return false;
	bool same = now.port == ours->port && strcmp(now.token, ours->token) == 0;
	qs_endpoint_clear(&now);
	return same;
}

/* Waits up to STOP_WAIT_MS for the daemon to remove its endpoint file, which it does last,
 * just before it exits. */
static bool wait_unpublished(const char *path, const struct qs_endpoint *ours)
{
	for (unsigned waited_ms = 0; waited_ms < STOP_WAIT_MS; waited_ms += STOP_POLL_MS) {
		if (!still_published(path, ours))
			return true;
		struct timespec ts = {0, STOP_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !still_published(path, ours);
}

static int cmd_stop(struct qs_cmd_ctx *c)
{
	struct api api;
	json_t *ans = NULL;
	struct qs_endpoint ours;
	memset(&ours, 0, sizeof(ours));
	int st = api_open(c, &api);
	char *path = st == QS_EXIT_OK ? qs_endpoint_path(api.dirs.config, "qis") : NULL;
	if (st == QS_EXIT_OK && (path == NULL || qs_endpoint_read(path, &ours) != 0)) {
		fprintf(c->err, "qis: cannot read the endpoint file\n");
		st = QS_EXIT_FAIL;
	}
	if (st == QS_EXIT_OK)
		st = api_request(&api, "POST", "/v1/stop", NULL, &ans) == 0 ? QS_EXIT_OK
									    : api_fail(c, &api);
	bool gone = st == QS_EXIT_OK && wait_unpublished(path, &ours);
	if (st == QS_EXIT_OK && !gone) {
		fprintf(c->err,
			"qis: the server was asked to stop but is still running after %u s\n",
			STOP_WAIT_MS / 1000);
		st = QS_EXIT_FAIL;
	}
	if (gone && c->json) {
		json_object_set_new(ans, "stopped", json_true());
		qs_out_json(c->out, ans);
	} else if (gone) {
		fprintf(c->out, "server stopped\n");
	}
	qs_endpoint_clear(&ours);
	qs_free(path);
	json_decref(ans);
	api_close(&api);
	return st;
}

/* ---- the command table ------------------------------------------------------------------ */

static const struct qs_opt run_opts[] = {
	{"addr", QS_OPT_STRING, "ADDR", "address of the sync protocol (QUICS_ADDR)", 0, 0,
	 "0.0.0.0", false},
	{"quic-port", QS_OPT_U64, "PORT",
	 "UDP port of the sync protocol, 0 for a free one (QUICS_QUIC_PORT)", 0, 65535, "6122",
	 false},
	{"port", QS_OPT_U64, "PORT", "admin REST port on 127.0.0.1, 0 for a free one (QUICS_PORT)",
	 0, 65535, "6120", false},
	{"data", QS_OPT_STRING, "DIR",
	 "data directory (QUICS_DATA; default $XDG_DATA_HOME/quics/server)", 0, 0, NULL, false},
	{"password", QS_OPT_STRING, "PW",
	 "server password clients register with (QUICS_PASSWORD; made up on first start)", 0, 0,
	 NULL, false},
	{"keep-versions", QS_OPT_U64, "N",
	 "keep the N newest versions of each file, 0 for all (QUICS_KEEP_VERSIONS)", 0, UINT32_MAX,
	 "0", false},
	{"keep-days", QS_OPT_U64, "D",
	 "keep versions younger than D days, 0 for all (QUICS_KEEP_DAYS); with --keep-versions a "
	 "version goes when both would drop it",
	 0, 100000, "0", false},
	{"gc-grace", QS_OPT_U64, "SECONDS",
	 "unreferenced chunks younger than this are kept (QUICS_GC_GRACE)", 0, INT32_MAX, "3600",
	 false},
	{"stall-timeout", QS_OPT_U64, "SECONDS",
	 "cancel a client's transfer that makes no progress this long, 0 for never "
	 "(QUICS_STALL_TIMEOUT)",
	 0, 86400, "60", false},
};

static const struct qs_opt client_opts[] = {
	{"id", QS_OPT_U64, "ID", "show this client in detail", 1, (uint64_t)INT64_MAX, NULL, false},
	{"all", QS_OPT_FLAG, NULL, "list every registered client, not only the connected ones", 0,
	 0, NULL, false},
};

static const struct qs_opt dir_opts[] = {
	{"root", QS_OPT_STRING, "ROOT", "the root, by name (or id)", 0, 0, NULL, true},
	{"path", QS_OPT_STRING, "DIR", "only what is below this directory of the root", 0, 0, NULL,
	 false},
	{"deleted", QS_OPT_FLAG, NULL, "list deleted paths too", 0, 0, NULL, false},
};

static const struct qs_opt path_opts[] = {
	{"root", QS_OPT_STRING, "ROOT", "the root, by name (or id)", 0, 0, NULL, true},
	{"path", QS_OPT_STRING, "PATH", "the path in the root", 0, 0, NULL, true},
};

static const struct qs_opt password_opts[] = {
	{"password", QS_OPT_STRING, "PW",
	 "the new password (read from standard input when "
	 "absent)",
	 0, 0, NULL, false},
};

static const struct qs_cmd commands[] = {
	{"run", "run the server in the foreground", NULL, 0, 0, run_opts, ARRAY_LEN(run_opts),
	 cmd_run},
	{"show client", "list the connected clients (--all: every client) or show one", NULL, 0, 0,
	 client_opts, ARRAY_LEN(client_opts), cmd_show_client},
	{"show dir", "list the files of a root, or of a directory in it", NULL, 0, 0, dir_opts,
	 ARRAY_LEN(dir_opts), cmd_show_dir},
	{"show file", "show the current version of a path", NULL, 0, 0, path_opts,
	 ARRAY_LEN(path_opts), cmd_show_file},
	{"show history", "list every version of a path", NULL, 0, 0, path_opts,
	 ARRAY_LEN(path_opts), cmd_show_history},
	{"show conflict", "list the open conflicts of every root, with their candidates", NULL, 0,
	 0, NULL, 0, cmd_show_conflict},
	{"password set", "set the server password new clients register with", NULL, 0, 0,
	 password_opts, ARRAY_LEN(password_opts), cmd_password_set},
	{"password reset", "replace the server password with a generated one", NULL, 0, 0, NULL, 0,
	 cmd_password_reset},
	{"stop", "stop the running server", NULL, 0, 0, NULL, 0, cmd_stop},
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return qs_cli_main("qis", "The QUIC-S server and its administration.", commands,
			   ARRAY_LEN(commands), argc, argv, NULL, stdout, stderr);
}

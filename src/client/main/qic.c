/* qic: the QUIC-S client. `qic start` runs the sync daemon (engine + local REST API); every
 * other command is a REST call to the running daemon, which it finds through the endpoint
 * file in $XDG_CONFIG_HOME/quics (cli/endpoint.h). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <jansson.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/dirs.h"
#include "cli/endpoint.h"
#include "cli/out.h"
#include "cli/rest.h"
#include "client/api.h"
#include "client/engine.h"
#include "net/http.h"

/* ---- the daemon --------------------------------------------------------------------------- */

static struct qic_engine *engine;
static struct qs_http_server *http;
static uv_signal_t sig_term, sig_int;
static char *endpoint_file;
static struct qs_endpoint endpoint;

static void all_closed(void *arg)
{
	(void)arg;
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

static void http_closed(void *arg)
{
	(void)arg;
	qic_engine_stop(engine, all_closed, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	qs_info("client", "event=stopping signal=%d", signum);
	uv_signal_stop(&sig_term);
	uv_signal_stop(&sig_int);
	qs_endpoint_remove(endpoint_file, &endpoint);
	qs_http_server_shutdown(http, http_closed, NULL);
}

static int cmd_start(struct qs_cmd_ctx *c)
{
	struct qs_dirs dirs;
	int rc = qs_dirs_init(&dirs);
	if (rc == 0)
		rc = qs_dirs_create(&dirs);
	if (rc != 0) {
		fprintf(c->err, "qic start: cannot use the XDG directories: %s\n", qs_strerror(rc));
		return QS_EXIT_FAIL;
	}
	uv_loop_t *loop = uv_default_loop();
	rc = qic_engine_start(loop, dirs.data, &engine);
	if (rc != 0) {
		fprintf(c->err, "qic start: cannot start the engine in %s: %s\n", dirs.data,
			qs_strerror(rc));
		return QS_EXIT_FAIL;
	}
	uint8_t token[32];
	char token_hex[65];
	gnutls_rnd(GNUTLS_RND_KEY, token, sizeof(token));
	for (size_t i = 0; i < sizeof(token); i++)
		snprintf(token_hex + 2 * i, 3, "%02x", token[i]);
	static struct qs_http_route routes[QIC_API_MAX_ROUTES];
	size_t nroutes;
	qic_api_routes(engine, routes, QIC_API_MAX_ROUTES, &nroutes);
	struct qs_http_config hc;
	qs_http_config_default(&hc);
	hc.port = (uint16_t)qs_cmd_num(c, "rest-port");
	hc.token = token_hex;
	hc.routes = routes;
	hc.nroutes = nroutes;
	rc = qs_http_server_new(loop, &hc, &http);
	if (rc == 0)
		rc = qs_endpoint_init(&endpoint, qs_http_server_port(http), token, sizeof(token));
	endpoint_file = qs_endpoint_path(dirs.config, "qic");
	if (rc == 0)
		rc = endpoint_file == NULL ? QS_ENOMEM
					   : qs_endpoint_write(&endpoint, endpoint_file);
	qs_wipe(token, sizeof(token));
	qs_wipe(token_hex, sizeof(token_hex));
	if (rc != 0) {
		fprintf(c->err, "qic start: cannot start the REST API on 127.0.0.1:%llu: %s\n",
			(unsigned long long)qs_cmd_num(c, "rest-port"), qs_strerror(rc));
		return QS_EXIT_FAIL;
	}
	printf("qic %s running: REST API on 127.0.0.1:%u, state in %s\n", QS_VERSION,
	       qs_http_server_port(http), dirs.data);
	fflush(stdout);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
	qs_http_server_free(http);
	qic_engine_free(engine);
	qs_free(endpoint_file);
	qs_dirs_release(&dirs);
	return QS_EXIT_OK;
}

/* ---- the front end --------------------------------------------------------------------- */

/* One REST call to the daemon; prints the answer (--json: as is) and returns the status. */
static int call(struct qs_cmd_ctx *c, const char *method, const char *path, json_t *body,
		json_t **out)
{
	struct qs_dirs dirs;
	int rc = qs_dirs_init(&dirs);
	if (rc != 0) {
		fprintf(c->err, "qic: cannot find the config directory: %s\n", qs_strerror(rc));
		json_decref(body);
		return QS_EXIT_FAIL;
	}
	struct qs_rest *r = qs_rest_new(&qs_daemon_qic);
	rc = r == NULL ? QS_ENOMEM : qs_rest_open(r, dirs.config);
	json_t *answer = NULL;
	if (rc == 0)
		rc = qs_rest_request(r, method, path, body, &answer);
	if (rc != 0)
		fprintf(c->err, "%s\n", r != NULL ? qs_rest_error(r) : "qic: out of memory");
	qs_rest_free(r);
	qs_dirs_release(&dirs);
	json_decref(body);
	if (rc != 0)
		return QS_EXIT_FAIL;
	if (out != NULL)
		*out = answer;
	else
		json_decref(answer);
	return QS_EXIT_OK;
}

static int print_result(struct qs_cmd_ctx *c, json_t *answer)
{
	if (c->json)
		qs_out_json(c->out, answer);
	else
		qs_out_object(c->out, answer);
	json_decref(answer);
	return QS_EXIT_OK;
}

static int cmd_connect_server(struct qs_cmd_ctx *c)
{
	json_t *body =
		json_pack("{s:s,s:I,s:s}", "host", qs_cmd_str(c, "host"), "port",
			  (json_int_t)qs_cmd_num(c, "port"), "password", qs_cmd_str(c, "password"));
	if (qs_cmd_str(c, "fingerprint") != NULL)
		json_object_set_new(body, "fingerprint", json_string(qs_cmd_str(c, "fingerprint")));
	json_t *answer;
	int rc = call(c, "POST", "/v1/server", body, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

/* An absolute, normalized directory path from what the user typed. */
static char *absolute_dir(const char *typed)
{
	char *real = realpath(typed, NULL);
	if (real != NULL)
		return real;
	if (typed[0] == '/')
		return strdup(typed);
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	size_t n = strlen(cwd) + strlen(typed) + 2;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", cwd, typed);
	return p;
}

static int cmd_connect_root(struct qs_cmd_ctx *c)
{
	const char *local = qs_cmd_str(c, "local"), *remote = qs_cmd_str(c, "remote");
	const char *dir = local != NULL ? local : qs_cmd_str(c, "dir");
	if ((local == NULL) == (remote == NULL))
		return qs_cmd_usage_error(c, "give exactly one of --local DIR or --remote NAME");
	if (remote != NULL && dir == NULL)
		return qs_cmd_usage_error(c, "--remote needs --dir DIR (where to sync it)");
	char *abs = absolute_dir(dir);
	if (abs == NULL) {
		fprintf(c->err, "qic connect root: cannot resolve %s\n", dir);
		return QS_EXIT_FAIL;
	}
	const char *name = remote;
	if (name == NULL)
		name = qs_cmd_str(c, "name");
	if (name == NULL) {
		const char *slash = strrchr(abs, '/');
		name = slash != NULL && slash[1] != '\0' ? slash + 1 : abs;
	}
	json_t *body = json_pack("{s:s,s:s,s:s,s:b}", "name", name, "password",
				 qs_cmd_str(c, "password"), "dir", abs, "create", local != NULL);
	free(abs);
	json_t *answer;
	int rc = call(c, "POST", "/v1/roots", body, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_disconnect_root(struct qs_cmd_ctx *c)
{
	char *abs = absolute_dir(qs_cmd_str(c, "path"));
	char esc[4096], path[4200];
	if (abs == NULL || qs_rest_escape(abs, esc, sizeof(esc)) != 0) {
		free(abs);
		fprintf(c->err, "qic disconnect root: bad path\n");
		return QS_EXIT_FAIL;
	}
	free(abs);
	snprintf(path, sizeof(path), "/v1/roots?dir=%s", esc);
	json_t *answer;
	int rc = call(c, "DELETE", path, NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_sync_status(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "GET", "/v1/status", NULL, &answer);
	if (rc != 0 || c->json)
		return rc == 0 ? print_result(c, answer) : rc;
	fprintf(c->out, "server: %s (%s)\n", json_string_value(json_object_get(answer, "server")),
		json_is_true(json_object_get(answer, "connected")) ? "connected" : "not connected");
	fprintf(c->out, "queued: %lld  in flight: %lld\n",
		(long long)json_integer_value(json_object_get(answer, "queued")),
		(long long)json_integer_value(json_object_get(answer, "in_flight")));
	json_t *roots = json_object_get(answer, "roots");
	size_t i;
	json_t *ro;
	json_array_foreach(roots, i, ro)
	{
		if (json_is_true(json_object_get(ro, "paused")))
			fprintf(c->out, "PAUSED %s: %s\n",
				json_string_value(json_object_get(ro, "dir")),
				json_string_value(json_object_get(ro, "pause_reason")));
	}
	static const struct qs_out_col cols[] = {
		{"root_id", "ROOT", true},    {"name", "NAME", false},
		{"dir", "DIRECTORY", false},  {"files", "FILES", true},
		{"pending", "PENDING", true},
	};
	qs_out_table(c->out, json_object_get(answer, "roots"), cols,
		     sizeof(cols) / sizeof(cols[0]));
	json_decref(answer);
	return QS_EXIT_OK;
}

static int cmd_sync_confirm(struct qs_cmd_ctx *c)
{
	char *abs = absolute_dir(qs_cmd_str(c, "path"));
	char esc[4096], path[4200];
	if (abs == NULL || qs_rest_escape(abs, esc, sizeof(esc)) != 0) {
		free(abs);
		fprintf(c->err, "qic sync confirm: bad path\n");
		return QS_EXIT_FAIL;
	}
	free(abs);
	snprintf(path, sizeof(path), "/v1/confirm?dir=%s", esc);
	json_t *answer;
	int rc = call(c, "POST", path, NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_sync_rescan(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "POST", "/v1/rescan", NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

/* ---- history ---------------------------------------------------------------------------- */

/* An absolute path for what the user typed: its directory resolved (symlinks, "..") and its
 * last component kept as typed, so a symlink names itself and a deleted file still has a
 * path. Caller frees with free(). */
static char *absolute_path(const char *typed)
{
	const char *slash = strrchr(typed, '/');
	const char *name = slash != NULL ? slash + 1 : typed;
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return realpath(typed, NULL);
	char dir[PATH_MAX];
	if (slash == typed)
		snprintf(dir, sizeof(dir), "/");
	else if (slash != NULL)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - typed), typed);
	else
		snprintf(dir, sizeof(dir), ".");
	char *rdir = realpath(dir, NULL);
	if (rdir == NULL)
		return NULL;
	size_t n = strlen(rdir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir, name);
	free(rdir);
	return p;
}

static void history_display(json_t *row)
{
	char size[32], when[32], hash[17];
	qs_out_bytes((uint64_t)json_integer_value(json_object_get(row, "size")), size,
		     sizeof(size));
	time_t t = (time_t)(json_integer_value(json_object_get(row, "accepted_unix_ms")) / 1000);
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(when, sizeof(when), "?");
	const char *full = json_string_value(json_object_get(row, "content_hash"));
	snprintf(hash, sizeof(hash), "%.16s", full != NULL ? full : "");
	json_object_set_new(row, "size_text", json_string(size));
	json_object_set_new(row, "time", json_string(when));
	json_object_set_new(row, "hash", json_string(hash));
}

static int cmd_history_show(struct qs_cmd_ctx *c)
{
	char *abs = absolute_path(qs_cmd_str(c, "path"));
	char esc[8192], path[8300];
	if (abs == NULL || qs_rest_escape(abs, esc, sizeof(esc)) != 0) {
		free(abs);
		fprintf(c->err, "qic history show: cannot resolve %s\n", qs_cmd_str(c, "path"));
		return QS_EXIT_FAIL;
	}
	free(abs);
	snprintf(path, sizeof(path), "/v1/history?path=%s&from_head=%llu", esc,
		 (unsigned long long)qs_cmd_num(c, "from-head"));
	json_t *answer;
	int rc = call(c, "GET", path, NULL, &answer);
	if (rc != 0 || c->json)
		return rc == 0 ? print_result(c, answer) : rc;
	static const struct qs_out_col cols[] = {
		{"version", "VERSION", true}, {"operation", "OPERATION", false},
		{"kind", "KIND", false},      {"size_text", "SIZE", true},
		{"hash", "HASH", false},      {"client_name", "CLIENT", false},
		{"client_id", "ID", true},    {"time", "TIME", false},
	};
	json_t *rows = json_object_get(answer, "versions"), *row;
	size_t i;
	json_array_foreach(rows, i, row) history_display(row);
	qs_out_table(c->out, rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(answer);
	return QS_EXIT_OK;
}

static int cmd_history_download(struct qs_cmd_ctx *c)
{
	const char *typed = qs_cmd_str(c, "path");
	uint64_t version = qs_cmd_num(c, "version");
	char *abs = absolute_path(typed);
	char *out = NULL;
	if (qs_cmd_str(c, "out") != NULL) {
		out = absolute_path(qs_cmd_str(c, "out"));
	} else if (abs != NULL) {
		/* NAME.vV in the current directory, away from where the sync looks. */
		const char *name = strrchr(abs, '/') + 1;
		char cwd[PATH_MAX], buf[PATH_MAX + 300];
		if (getcwd(cwd, sizeof(cwd)) != NULL) {
			snprintf(buf, sizeof(buf), "%s/%s.v%llu", cwd, name,
				 (unsigned long long)version);
			out = strdup(buf);
		}
	}
	if (abs == NULL || out == NULL) {
		free(abs);
		free(out);
		fprintf(c->err, "qic history download: cannot resolve %s\n", typed);
		return QS_EXIT_FAIL;
	}
	json_t *body =
		json_pack("{s:s,s:I,s:s}", "path", abs, "version", (json_int_t)version, "out", out);
	free(abs);
	free(out);
	json_t *answer;
	int rc = call(c, "POST", "/v1/history/download", body, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_history_rollback(struct qs_cmd_ctx *c)
{
	char *abs = absolute_path(qs_cmd_str(c, "path"));
	if (abs == NULL) {
		fprintf(c->err, "qic history rollback: cannot resolve %s\n", qs_cmd_str(c, "path"));
		return QS_EXIT_FAIL;
	}
	json_t *body = json_pack("{s:s,s:I}", "path", abs, "version",
				 (json_int_t)qs_cmd_num(c, "version"));
	free(abs);
	json_t *answer;
	int rc = call(c, "POST", "/v1/history/rollback", body, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static const struct qs_opt start_opts[] = {
	{"rest-port", QS_OPT_U64, "PORT", "port of the local REST API on 127.0.0.1 (0: any)", 0,
	 65535, "6130", false},
};
static const struct qs_opt server_opts[] = {
	{"host", QS_OPT_STRING, "HOST", "numeric address of the server", 0, 0, NULL, true},
	{"port", QS_OPT_U64, "PORT", "UDP port of the sync protocol", 1, 65535, "6122", false},
	{"password", QS_OPT_STRING, "PW", "the server password", 0, 0, NULL, true},
	{"fingerprint", QS_OPT_STRING, "SHA256", "expected certificate fingerprint (64 hex)", 0, 0,
	 NULL, false},
};
static const struct qs_opt root_opts[] = {
	{"local", QS_OPT_STRING, "DIR", "share this local directory as a new root", 0, 0, NULL,
	 false},
	{"remote", QS_OPT_STRING, "NAME", "sync the server's root NAME", 0, 0, NULL, false},
	{"dir", QS_OPT_STRING, "DIR", "local directory for --remote", 0, 0, NULL, false},
	{"name", QS_OPT_STRING, "NAME", "root name for --local (default: the directory's)", 0, 0,
	 NULL, false},
	{"password", QS_OPT_STRING, "PW", "the root password", 0, 0, NULL, true},
};
static const struct qs_opt disconnect_opts[] = {
	{"path", QS_OPT_STRING, "DIR", "the synced directory", 0, 0, NULL, true},
};

static const struct qs_opt history_show_opts[] = {
	{"path", QS_OPT_STRING, "PATH", "a file inside a synced folder", 0, 0, NULL, true},
	{"from-head", QS_OPT_U64, "N", "only the N newest versions (0: all)", 0, UINT32_MAX, "0",
	 false},
};
static const struct qs_opt history_download_opts[] = {
	{"path", QS_OPT_STRING, "PATH", "a file inside a synced folder", 0, 0, NULL, true},
	{"version", QS_OPT_U64, "V", "the version to fetch", 1, (uint64_t)INT64_MAX, NULL, true},
	{"out", QS_OPT_STRING, "FILE",
	 "where to write it (must not exist; default NAME.vV in the current directory)", 0, 0, NULL,
	 false},
};
static const struct qs_opt history_rollback_opts[] = {
	{"path", QS_OPT_STRING, "PATH", "a file inside a synced folder", 0, 0, NULL, true},
	{"version", QS_OPT_U64, "V", "the version whose content becomes current", 1,
	 (uint64_t)INT64_MAX, NULL, true},
};

static const struct qs_cmd commands[] = {
	{"start", "run the client daemon in the foreground", NULL, 0, 0, start_opts, 1, cmd_start},
	{"connect server", "register this client with a server", NULL, 0, 0, server_opts, 4,
	 cmd_connect_server},
	{"connect root", "sync a directory with a root on the server", NULL, 0, 0, root_opts, 5,
	 cmd_connect_root},
	{"disconnect root", "stop syncing a directory (its files stay)", NULL, 0, 0,
	 disconnect_opts, 1, cmd_disconnect_root},
	{"sync status", "what is synced, queued and connected", NULL, 0, 0, NULL, 0,
	 cmd_sync_status},
	{"sync rescan", "look at every file of every root now", NULL, 0, 0, NULL, 0,
	 cmd_sync_rescan},
	{"sync confirm", "let a paused root delete what a scan found deleted", NULL, 0, 0,
	 disconnect_opts, 1, cmd_sync_confirm},
	{"history show", "list the stored versions of a file", NULL, 0, 0, history_show_opts, 2,
	 cmd_history_show},
	{"history download", "write one stored version of a file", NULL, 0, 0,
	 history_download_opts, 3, cmd_history_download},
	{"history rollback", "make an old version the current one on every client", NULL, 0, 0,
	 history_rollback_opts, 2, cmd_history_rollback},
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	enum qs_log_level level;
	const char *lv = getenv("QUICS_LOG_LEVEL");
	if (lv != NULL && qs_log_level_parse(lv, &level) == 0)
		qs_log_set_level(level);
	return qs_cli_main("qic", "the QUIC-S client", commands,
			   sizeof(commands) / sizeof(commands[0]), argc, argv, NULL, stdout,
			   stderr);
}

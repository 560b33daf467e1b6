/* qic: the QUIC-S client. `qic start` runs the sync daemon (engine + local REST API), in the
 * foreground or detached (--daemon), one per set of XDG directories (cli/lock.h); every other
 * command is a REST call to the running daemon, which it finds through the endpoint file in
 * $XDG_CONFIG_HOME/quics (cli/endpoint.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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
#include "cli/lock.h"
#include "cli/out.h"
#include "cli/rest.h"
#include "client/api.h"
#include "client/api_daemon.h"
#include "client/engine.h"
#include "net/http.h"

/* ---- the daemon --------------------------------------------------------------------------- */

static struct qic_engine *engine;
static struct qs_http_server *http;
static uv_signal_t sig_term, sig_int;
static uv_timer_t stop_timer;
static bool stopping;
static char *endpoint_file;
static struct qs_endpoint endpoint;
static struct qic_api_daemon daemon_info;

#define READY_TIMEOUT_MS 60000 /* a detached daemon's start, as its parent waits for it */
#define STOP_TIMEOUT_MS 30000  /* qic stop waits this long for the daemon to exit */

static void all_closed(void *arg)
{
	(void)arg;
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&stop_timer, NULL);
}

static void http_closed(void *arg)
{
	(void)arg;
	qic_engine_stop(engine, all_closed, NULL);
}

/* The one way the daemon stops: on SIGTERM/SIGINT or `qic stop`. */
static void begin_stop(const char *why)
{
	if (stopping)
		return;
	stopping = true;
	qs_info("client", "event=stopping reason=\"%s\"", why);
	uv_signal_stop(&sig_term);
	uv_signal_stop(&sig_int);
	qs_endpoint_remove(endpoint_file, &endpoint);
	qs_http_server_shutdown(http, http_closed, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	begin_stop(signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void stop_timer_cb(uv_timer_t *t)
{
	(void)t;
	begin_stop("qic stop");
}

/* POST /v1/stop: stop once the answer is on its way (the HTTP shutdown drains it). */
static void stop_requested(void *arg)
{
	(void)arg;
	uv_timer_start(&stop_timer, stop_timer_cb, 10, 0);
}

/* Takes the single-instance locks of the config and data directories: a second daemon on
 * either would fight over the endpoint file or the index. fds[] get -1 or the held locks. */
static int take_locks(struct qs_cmd_ctx *c, const struct qs_dirs *dirs, int fds[2])
{
	const char *where[2] = {dirs->config, dirs->data};
	fds[0] = fds[1] = -1;
	for (int i = 0; i < 2; i++) {
		if (i == 1 && strcmp(dirs->config, dirs->data) == 0)
			break; /* one directory, one lock */
		char *path = qs_lock_path(where[i], "qic");
		long holder = 0;
		int rc = path == NULL ? QS_ENOMEM
				      : qs_lock_acquire(path, (long)getpid(), &fds[i], &holder);
		if (rc == QS_EAGAIN && holder > 0)
			fprintf(c->err,
				"qic start: a client daemon is already running for %s (pid %ld); "
				"stop it with 'qic stop'\n",
				where[i], holder);
		else if (rc == QS_EAGAIN)
			fprintf(c->err,
				"qic start: a client daemon is already running for %s; stop it "
				"with 'qic stop'\n",
				where[i]);
		else if (rc != 0)
			fprintf(c->err, "qic start: cannot lock %s: %s\n", path ? path : where[i],
				qs_strerror(rc));
		qs_free(path);
		if (rc != 0) {
			if (fds[0] >= 0)
				close(fds[0]);
			fds[0] = -1;
			return QS_EXIT_FAIL;
		}
	}
	return QS_EXIT_OK;
}

/* Prints what a started daemon is, from its GET /v1/config answer. */
static void print_started(struct qs_cmd_ctx *c, const char *what, json_t *config)
{
	if (c->json) {
		json_t *o = json_pack(
			"{s:O,s:O,s:O,s:O,s:O}", "pid", json_object_get(config, "pid"), "rest_port",
			json_object_get(config, "rest_port"), "log", json_object_get(config, "log"),
			"config_dir", json_object_get(config, "config_dir"), "data_dir",
			json_object_get(config, "data_dir"));
		qs_out_json(c->out, o);
		json_decref(o);
		return;
	}
	const char *log = json_string_value(json_object_get(config, "log"));
	fprintf(c->out, "qic %s %s: pid %lld, REST API on 127.0.0.1:%lld, state in %s%s%s\n",
		QS_VERSION, what, (long long)json_integer_value(json_object_get(config, "pid")),
		(long long)json_integer_value(json_object_get(config, "rest_port")),
		json_string_value(json_object_get(config, "data_dir")), log ? ", log " : "",
		log ? log : "");
}

static json_t *started_info(const struct qs_dirs *dirs)
{
	return json_pack("{s:I,s:i,s:s,s:s,s:s?}", "pid", (json_int_t)getpid(), "rest_port",
			 (int)qs_http_server_port(http), "config_dir", dirs->config, "data_dir",
			 dirs->data, "log", daemon_info.log_path);
}

/* Reads what a detaching child says on its ready pipe until it closes it (or the time is
 * up): "ready\n", or the one-line error that ended it. */
static size_t read_ready(int fd, char *buf, size_t cap, bool *timed_out)
{
	size_t len = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*timed_out = false;
	while (len + 1 < cap) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long spent =
			(now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (spent >= READY_TIMEOUT_MS) {
			*timed_out = true;
			break;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n = poll(&pfd, 1, (int)(READY_TIMEOUT_MS - spent));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			continue;
		ssize_t got = read(fd, buf + len, cap - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	buf[len] = '\0';
	return len;
}

/* The parent of a detaching daemon: waits until it is ready and its REST API answers, or
 * until it gives up; prints one line either way. */
static int wait_detached(struct qs_cmd_ctx *c, const struct qs_dirs *dirs, pid_t pid, int fd,
			 const char *log_path)
{
	char buf[1024];
	bool timed_out;
	read_ready(fd, buf, sizeof(buf), &timed_out);
	close(fd);
	if (strcmp(buf, "ready\n") != 0) {
		int status;
		waitpid(pid, &status, WNOHANG); /* reap it if it is gone already */
		buf[strcspn(buf, "\n")] = '\0';
		if (buf[0] != '\0')
			fprintf(c->err, "%s\n", buf);
		else if (timed_out)
			fprintf(c->err,
				"qic start: the daemon (pid %ld) was not ready after %d s; see "
				"%s\n",
				(long)pid, READY_TIMEOUT_MS / 1000, log_path);
		else
			fprintf(c->err,
				"qic start: the daemon exited before it was ready; see %s\n",
				log_path);
		return QS_EXIT_FAIL;
	}
	struct qs_rest *r = qs_rest_new(&qs_daemon_qic);
	json_t *config = NULL;
	int rc = r == NULL ? QS_ENOMEM : qs_rest_open(r, dirs->config);
	if (rc == 0)
		rc = qs_rest_request(r, "GET", "/v1/config", NULL, &config);
	if (rc != 0)
		fprintf(c->err,
			"qic start: the daemon (pid %ld) started but its REST API does not answer: "
			"%s\n",
			(long)pid, r != NULL ? qs_rest_error(r) : "out of memory");
	qs_rest_free(r);
	if (rc != 0)
		return QS_EXIT_FAIL;
	print_started(c, "daemon started", config);
	json_decref(config);
	return QS_EXIT_OK;
}

/* Detaches: fork; the child starts a new session, moves to "/", reads nothing and writes its
 * output to the log. It reports on *ready (its error lines, or "ready") while the parent
 * waits in wait_detached. Returns in the parent with *is_child false and the exit status; in
 * the child with *is_child true and 0. */
static int detach(struct qs_cmd_ctx *c, const struct qs_dirs *dirs, const char *log_path,
		  bool *is_child, FILE **ready)
{
	*is_child = false;
	int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	int p[2] = {-1, -1};
	if (log < 0 || pipe2(p, O_CLOEXEC) != 0) {
		fprintf(c->err, "qic start: cannot open %s: %s\n", log < 0 ? log_path : "a pipe",
			qs_strerror(qs_err_from_errno(errno)));
		if (log >= 0)
			close(log);
		return QS_EXIT_FAIL;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0) {
		close(p[1]);
		close(log);
		if (pid < 0) {
			close(p[0]);
			fprintf(c->err, "qic start: cannot fork: %s\n",
				qs_strerror(qs_err_from_errno(errno)));
			return QS_EXIT_FAIL;
		}
		return wait_detached(c, dirs, pid, p[0], log_path);
	}
	close(p[0]);
	*is_child = true;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (setsid() < 0 || chdir("/") != 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
	    dup2(log, 2) < 0 || (*ready = fdopen(p[1], "w")) == NULL) {
		dprintf(p[1], "qic start: cannot detach: %s\n",
			qs_strerror(qs_err_from_errno(errno)));
		_exit(QS_EXIT_FAIL);
	}
	close(null);
	close(log);
	setvbuf(*ready, NULL, _IOLBF, 0);
	return QS_EXIT_OK;
}

/* Runs the daemon on this process until it is told to stop. Errors before it is ready go to
 * c->err (a detached daemon's ready pipe); readiness is reported on ready (if not NULL). */
static int run_daemon(struct qs_cmd_ctx *c, const struct qs_dirs *dirs, const char *log_path,
		      FILE *ready)
{
	uv_loop_t *loop = uv_default_loop();
	int rc = qic_engine_start(loop, dirs->data, &engine);
	if (rc != 0) {
		fprintf(c->err, "qic start: cannot start the engine in %s: %s\n", dirs->data,
			qs_strerror(rc));
		return QS_EXIT_FAIL;
	}
	uint8_t token[32];
	char token_hex[65];
	gnutls_rnd(GNUTLS_RND_KEY, token, sizeof(token));
	for (size_t i = 0; i < sizeof(token); i++)
		snprintf(token_hex + 2 * i, 3, "%02x", token[i]);
	static struct qs_http_route routes[QIC_API_MAX_ROUTES + QIC_API_DAEMON_ROUTES];
	size_t nroutes, nmore;
	qic_api_routes(engine, routes, QIC_API_MAX_ROUTES, &nroutes);
	daemon_info = (struct qic_api_daemon){
		.e = engine,
		.config_dir = dirs->config,
		.data_dir = dirs->data,
		.log_path = log_path,
		.pid = (long)getpid(),
		.stop = stop_requested,
	};
	qic_api_daemon_routes(&daemon_info, routes + nroutes, QIC_API_DAEMON_ROUTES, &nmore);
	struct qs_http_config hc;
	qs_http_config_default(&hc);
	hc.port = (uint16_t)qs_cmd_num(c, "rest-port");
	hc.token = token_hex;
	hc.routes = routes;
	hc.nroutes = nroutes + nmore;
	rc = qs_http_server_new(loop, &hc, &http);
	if (rc == 0)
		rc = qs_endpoint_init(&endpoint, qs_http_server_port(http), token, sizeof(token));
	endpoint_file = qs_endpoint_path(dirs->config, "qic");
	if (rc == 0)
		rc = endpoint_file == NULL ? QS_ENOMEM
					   : qs_endpoint_write(&endpoint, endpoint_file);
	qs_wipe(token, sizeof(token));
	qs_wipe(token_hex, sizeof(token_hex));
	if (rc != 0) {
		fprintf(c->err, "qic start: cannot start the REST API on 127.0.0.1:%llu: %s%s\n",
			(unsigned long long)qs_cmd_num(c, "rest-port"), qs_strerror(rc),
			rc == QS_EIO ? " (is the port in use? choose another with --rest-port)"
				     : "");
		return QS_EXIT_FAIL;
	}
	daemon_info.rest_port = qs_http_server_port(http);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_timer_init(loop, &stop_timer);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	json_t *info = started_info(dirs);
	if (ready != NULL) {
		fputs("ready\n", ready);
		fclose(ready);
		c->err = stderr;
		print_started(c, "running", info);
	} else {
		print_started(c, "running", info);
	}
	json_decref(info);
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	qs_http_server_free(http);
	qic_engine_free(engine);
	qs_free(endpoint_file);
	qs_info("client", "event=stopped");
	return QS_EXIT_OK;
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
	int locks[2];
	int status = take_locks(c, &dirs, locks);
	char *log_path = NULL;
	bool is_child = false;
	FILE *ready = NULL;
	if (status == QS_EXIT_OK && qs_cmd_given(c, "daemon")) {
		size_t n = strlen(dirs.data) + sizeof("/qic.log");
		log_path = qs_malloc(n);
		if (log_path == NULL) {
			fprintf(c->err, "qic start: out of memory\n");
			status = QS_EXIT_FAIL;
		} else {
			snprintf(log_path, n, "%s/qic.log", dirs.data);
			status = detach(c, &dirs, log_path, &is_child, &ready);
		}
	}
	if (status == QS_EXIT_OK && (is_child || !qs_cmd_given(c, "daemon"))) {
		if (is_child) {
			for (int i = 0; i < 2; i++)
				if (locks[i] >= 0)
					qs_lock_set_pid(locks[i], (long)getpid());
			c->err = ready;
		}
		status = run_daemon(c, &dirs, log_path, ready);
		if (c->err == ready && ready != NULL)
			fclose(ready); /* it failed before it was ready */
		/* The locks stay held until the process is gone (exit closes them): `qic stop`
		 * takes their release as the sign that the daemon has ended. */
		if (status == QS_EXIT_OK)
			locks[0] = locks[1] = -1;
	}
	for (int i = 0; i < 2; i++)
		if (locks[i] >= 0)
			close(locks[i]);
	qs_free(log_path);
	qs_dirs_release(&dirs);
	return status;
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

/* A REST call whose query names the synced directory the user typed (--path), made absolute:
 * route is "/v1/roots?dir=", "/v1/confirm?dir=". */
static int call_with_dir(struct qs_cmd_ctx *c, const char *method, const char *route,
			 const char *what)
{
	char *abs = absolute_dir(qs_cmd_str(c, "path"));
	char esc[4096], path[4200];
	if (abs == NULL || qs_rest_escape(abs, esc, sizeof(esc)) != 0) {
		free(abs);
		fprintf(c->err, "qic %s: bad path\n", what);
		return QS_EXIT_FAIL;
	}
	free(abs);
	snprintf(path, sizeof(path), "%s%s", route, esc);
	json_t *answer;
	int rc = call(c, method, path, NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_disconnect_root(struct qs_cmd_ctx *c)
{
	return call_with_dir(c, "DELETE", "/v1/roots?dir=", "disconnect root");
}

static int cmd_sync_confirm(struct qs_cmd_ctx *c)
{
	return call_with_dir(c, "POST", "/v1/confirm?dir=", "sync confirm");
}

static int cmd_sync_rescan(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "POST", "/v1/rescan", NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

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
		rdir = absolute_dir(dir); /* gone here (a conflicted path in a moved folder) */
	if (rdir == NULL)
		return NULL;
	size_t n = strlen(rdir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir, name);
	free(rdir);
	return p;
}

/* ---- conflicts ---------------------------------------------------------------------- */

static void print_candidates(FILE *f, json_t *cands)
{
	fprintf(f, "  %-6s %-20s %-6s %-8s %12s  %s\n", "ID", "CLIENT", "BASE", "KIND", "SIZE",
		"PROPOSED");
	size_t i;
	json_t *c;
	json_array_foreach(cands, i, c)
	{
		char when[32] = "?";
		time_t t =
			(time_t)(json_integer_value(json_object_get(c, "proposed_unix_ms")) / 1000);
		struct tm tm;
		if (localtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		char who[64];
		snprintf(who, sizeof(who), "%s (%lld)%s",
			 json_string_value(json_object_get(c, "client_name")),
			 (long long)json_integer_value(json_object_get(c, "client_id")),
			 json_is_true(json_object_get(c, "mine")) ? " *" : "");
		fprintf(f, "  %-6lld %-20s %-6lld %-8s %12lld  %s\n",
			(long long)json_integer_value(json_object_get(c, "id")), who,
			(long long)json_integer_value(json_object_get(c, "base_version")),
			json_string_value(json_object_get(c, "kind")),
			(long long)json_integer_value(json_object_get(c, "size")), when);
	}
}

static int cmd_conflict_list(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "GET", "/v1/conflicts", NULL, &answer);
	if (rc != 0 || c->json)
		return rc == 0 ? print_result(c, answer) : rc;
	json_t *list = json_object_get(answer, "conflicts");
	if (json_array_size(list) == 0)
		fprintf(c->out, "no open conflicts\n");
	size_t i;
	json_t *ci;
	json_array_foreach(list, i, ci)
	{
		fprintf(c->out, "%s (root %s, server keeps version %lld)\n",
			json_string_value(json_object_get(ci, "local_path")),
			json_string_value(json_object_get(ci, "root")),
			(long long)json_integer_value(json_object_get(ci, "server_version")));
		print_candidates(c->out, json_object_get(ci, "candidates"));
	}
	if (json_array_size(list) > 0)
		fprintf(c->out,
			"(* = this client's candidate; candidate 0 = the server's version)\n");
	json_decref(answer);
	return QS_EXIT_OK;
}

/* The open conflict on the file the user typed (--path), from GET /v1/conflicts: *conflict
 * (a new reference) and *abs (malloc'd). Prints the error itself. */
static int find_conflict(struct qs_cmd_ctx *c, json_t **conflict, char **abs)
{
	*abs = absolute_path(qs_cmd_str(c, "path"));
	if (*abs == NULL) {
		fprintf(c->err, "qic: cannot resolve %s\n", qs_cmd_str(c, "path"));
		return QS_EXIT_FAIL;
	}
	json_t *answer;
	int rc = call(c, "GET", "/v1/conflicts", NULL, &answer);
	if (rc != 0)
		return rc;
	size_t i;
	json_t *ci;
	*conflict = NULL;
	json_array_foreach(json_object_get(answer, "conflicts"), i, ci)
	{
		if (strcmp(json_string_value(json_object_get(ci, "local_path")), *abs) == 0) {
			*conflict = json_incref(ci);
			break;
		}
	}
	json_decref(answer);
	if (*conflict == NULL) {
		fprintf(c->err, "qic: %s has no open conflict (see qic conflict list)\n", *abs);
		free(*abs);
		*abs = NULL;
		return QS_EXIT_FAIL;
	}
	return QS_EXIT_OK;
}

static bool has_candidate(json_t *conflict, uint64_t id)
{
	size_t i;
	json_t *cand;
	json_array_foreach(json_object_get(conflict, "candidates"), i, cand)
	{
		if ((uint64_t)json_integer_value(json_object_get(cand, "id")) == id)
			return true;
	}
	return id == 0;
}

static int cmd_conflict_choose(struct qs_cmd_ctx *c)
{
	json_t *conflict;
	char *abs;
	int rc = find_conflict(c, &conflict, &abs);
	if (rc != 0)
		return rc;
	uint64_t id = qs_cmd_num(c, "candidate");
	if (!has_candidate(conflict, id)) {
		fprintf(c->err, "qic conflict choose: %s has no candidate %llu\n", abs,
			(unsigned long long)id);
		json_decref(conflict);
		free(abs);
		return QS_EXIT_FAIL;
	}
	json_t *body = json_pack("{s:s,s:I,s:O}", "path", abs, "candidate", (json_int_t)id,
				 "server_version", json_object_get(conflict, "server_version"));
	json_decref(conflict);
	free(abs);
	json_t *answer;
	rc = call(c, "POST", "/v1/conflicts/choose", body, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_conflict_download(struct qs_cmd_ctx *c)
{
	json_t *conflict;
	char *abs;
	int rc = find_conflict(c, &conflict, &abs);
	if (rc != 0)
		return rc;
	uint64_t id = qs_cmd_num(c, "candidate");
	bool known = has_candidate(conflict, id);
	json_decref(conflict);
	if (!known) {
		fprintf(c->err, "qic conflict download: %s has no candidate %llu\n", abs,
			(unsigned long long)id);
		free(abs);
		return QS_EXIT_FAIL;
	}
	char *out = NULL;
	if (qs_cmd_str(c, "out") != NULL) {
		out = absolute_path(qs_cmd_str(c, "out"));
	} else {
		/* NAME.cID in the current directory, away from where the sync looks. */
		char cwd[PATH_MAX], buf[PATH_MAX + 300];
		if (getcwd(cwd, sizeof(cwd)) != NULL) {
			snprintf(buf, sizeof(buf), "%s/%s.c%llu", cwd, strrchr(abs, '/') + 1,
				 (unsigned long long)id);
			out = strdup(buf);
		}
	}
	if (out == NULL) {
		fprintf(c->err, "qic conflict download: cannot resolve the output path\n");
		free(abs);
		return QS_EXIT_FAIL;
	}
	json_t *body =
		json_pack("{s:s,s:I,s:s}", "path", abs, "candidate", (json_int_t)id, "out", out);
	free(abs);
	free(out);
	json_t *answer;
	rc = call(c, "POST", "/v1/conflicts/download", body, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

/* ---- qic stop, qic config, qic connect list-remote ------------------------------------- */

/* Waits until no process holds the daemon's lock in the config directory (it has exited). */
static bool wait_exited(uint32_t timeout_ms)
{
	struct qs_dirs dirs;
	if (qs_dirs_init(&dirs) != 0)
		return false;
	char *path = qs_lock_path(dirs.config, "qic");
	qs_dirs_release(&dirs);
	bool held = true;
	long holder;
	for (uint32_t waited = 0; path != NULL; waited += 20) {
		held = qs_lock_held(path, &holder);
		if (!held || waited >= timeout_ms)
			break;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	qs_free(path);
	return !held;
}

static int cmd_stop(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "POST", "/v1/stop", NULL, &answer);
	if (rc != 0)
		return rc;
	long long pid = (long long)json_integer_value(json_object_get(answer, "pid"));
	json_decref(answer);
	if (!wait_exited(STOP_TIMEOUT_MS)) {
		fprintf(c->err,
			"qic stop: the client daemon (pid %lld) is still running after %d s\n", pid,
			STOP_TIMEOUT_MS / 1000);
		return QS_EXIT_FAIL;
	}
	if (c->json) {
		json_t *o = json_pack("{s:s,s:I}", "result", "stopped", "pid", (json_int_t)pid);
		qs_out_json(c->out, o);
		json_decref(o);
	} else {
		fprintf(c->out, "qic: the client daemon (pid %lld) stopped\n", pid);
	}
	return QS_EXIT_OK;
}

static int cmd_config_show(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "GET", "/v1/config", NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_config_server(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "GET", "/v1/config/server", NULL, &answer);
	return rc == 0 ? print_result(c, answer) : rc;
}

static int cmd_connect_list_remote(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "GET", "/v1/server/roots", NULL, &answer);
	if (rc != 0 || c->json)
		return rc == 0 ? print_result(c, answer) : rc;
	static const struct qs_out_col cols[] = {
		{"name", "NAME", false},
		{"root_id", "ROOT", true},
		{"joined", "JOINED", false},
		{"dir", "DIRECTORY", false},
	};
	qs_out_table(c->out, json_object_get(answer, "roots"), cols,
		     sizeof(cols) / sizeof(cols[0]));
	json_decref(answer);
	return QS_EXIT_OK;
}

/* ---- qic sync status ------------------------------------------------------------------- */

/* The index of the root of roots whose directory holds path (the deepest one), or -1. */
static long root_of_path(json_t *roots, const char *path)
{
	long best = -1;
	size_t best_len = 0, i;
	json_t *ro;
	json_array_foreach(roots, i, ro)
	{
		const char *dir = json_string_value(json_object_get(ro, "dir"));
		if (dir != NULL && qs_dirs_within(dir, path) && strlen(dir) >= best_len) {
			best = (long)i;
			best_len = strlen(dir);
		}
	}
	return best;
}

/* Keeps only the root that holds the directory the user typed. */
static int filter_roots(struct qs_cmd_ctx *c, json_t *answer)
{
	char *abs = absolute_dir(qs_cmd_str(c, "path"));
	if (abs == NULL) {
		fprintf(c->err, "qic sync status: cannot resolve %s\n", qs_cmd_str(c, "path"));
		return QS_EXIT_FAIL;
	}
	json_t *roots = json_object_get(answer, "roots");
	long i = root_of_path(roots, abs);
	if (i < 0) {
		fprintf(c->err, "qic sync status: %s is not inside a synced root\n", abs);
		free(abs);
		return QS_EXIT_FAIL;
	}
	free(abs);
	json_t *only = json_array();
	json_array_append(only, json_array_get(roots, (size_t)i));
	json_object_set_new(answer, "roots", only);
	return QS_EXIT_OK;
}

/* "3" or "1 (20.0 MiB of 200.0 MiB)" for a transfers object. */
static json_t *transfers_cell(json_t *t)
{
	uint64_t files = (uint64_t)json_integer_value(json_object_get(t, "files"));
	uint64_t bytes = (uint64_t)json_integer_value(json_object_get(t, "bytes"));
	uint64_t done = (uint64_t)json_integer_value(json_object_get(t, "bytes_done"));
	char cell[96], a[32], b[32];
	if (bytes == 0) {
		snprintf(cell, sizeof(cell), "%llu", (unsigned long long)files);
	} else {
		qs_out_bytes(done < bytes ? done : bytes, a, sizeof(a));
		qs_out_bytes(bytes, b, sizeof(b));
		snprintf(cell, sizeof(cell), "%llu (%s of %s)", (unsigned long long)files, a, b);
	}
	return json_string(cell);
}

/* Adds a progress row for one direction of a root if bytes are on their way. */
static void add_bar(json_t *rows, json_t *name, const char *direction, json_t *t)
{
	uint64_t bytes = (uint64_t)json_integer_value(json_object_get(t, "bytes"));
	uint64_t done = (uint64_t)json_integer_value(json_object_get(t, "bytes_done"));
	if (bytes == 0)
		return;
	char bar[64], a[32], b[32], amount[80];
	qs_out_bar(bar, sizeof(bar), done, bytes, 30);
	qs_out_bytes(done < bytes ? done : bytes, a, sizeof(a));
	qs_out_bytes(bytes, b, sizeof(b));
	snprintf(amount, sizeof(amount), "%s / %s", a, b);
	json_array_append_new(rows, json_pack("{s:O,s:s,s:s,s:s}", "name", name, "direction",
					      direction, "bar", bar, "amount", amount));
}

/* On a terminal, a bar per root and direction with bytes in flight (names from the daemon
 * go through qs_out_table, which keeps control characters off the terminal). */
static void print_bars(FILE *f, json_t *roots)
{
	json_t *rows = json_array(), *ro;
	size_t i;
	json_array_foreach(roots, i, ro)
	{
		add_bar(rows, json_object_get(ro, "name"), "up", json_object_get(ro, "uploads"));
		add_bar(rows, json_object_get(ro, "name"), "down",
			json_object_get(ro, "downloads"));
	}
	static const struct qs_out_col cols[] = {
		{"name", "NAME", false},
		{"direction", "", false},
		{"bar", "PROGRESS", false},
		{"amount", "", true},
	};
	if (json_array_size(rows) > 0) {
		fputc('\n', f);
		qs_out_table(f, rows, cols, sizeof(cols) / sizeof(cols[0]));
	}
	json_decref(rows);
}

static void print_status(struct qs_cmd_ctx *c, json_t *answer)
{
	if (json_is_true(json_object_get(answer, "configured")))
		fprintf(c->out, "server: %s (%s)\n",
			json_string_value(json_object_get(answer, "server")),
			json_is_true(json_object_get(answer, "connected")) ? "connected"
									   : "not connected");
	else
		fprintf(c->out, "server: none (qic connect server first)\n");
	fprintf(c->out, "queued: %lld  in flight: %lld\n",
		(long long)json_integer_value(json_object_get(answer, "queued")),
		(long long)json_integer_value(json_object_get(answer, "in_flight")));
	json_t *roots = json_object_get(answer, "roots"), *rows = json_array(), *ro;
	size_t i;
	json_array_foreach(roots, i, ro)
	{
		bool paused = json_is_true(json_object_get(ro, "paused"));
		if (paused)
			fprintf(c->out, "PAUSED %s: %s\n",
				json_string_value(json_object_get(ro, "dir")),
				json_string_value(json_object_get(ro, "pause_reason")));
		const char *state = paused                                           ? "paused"
				    : json_is_true(json_object_get(ro, "connected")) ? "connected"
										     : "offline";
		json_array_append_new(
			rows,
			json_pack("{s:O,s:O,s:O,s:O,s:o,s:o,s:O,s:s}", "root_id",
				  json_object_get(ro, "root_id"), "name",
				  json_object_get(ro, "name"), "dir", json_object_get(ro, "dir"),
				  "files", json_object_get(ro, "files"), "uploads",
				  transfers_cell(json_object_get(ro, "uploads")), "downloads",
				  transfers_cell(json_object_get(ro, "downloads")), "conflicts",
				  json_object_get(ro, "conflicts"), "state", state));
	}
	static const struct qs_out_col cols[] = {
		{"root_id", "ROOT", true},        {"name", "NAME", false},
		{"dir", "DIRECTORY", false},      {"files", "FILES", true},
		{"uploads", "UPLOADS", true},     {"downloads", "DOWNLOADS", true},
		{"conflicts", "CONFLICTS", true}, {"state", "STATE", false},
	};
	qs_out_table(c->out, rows, cols, sizeof(cols) / sizeof(cols[0]));
	json_decref(rows);
	if (isatty(fileno(c->out)))
		print_bars(c->out, roots); /* bars are for people watching a terminal */
}

static int cmd_sync_status(struct qs_cmd_ctx *c)
{
	json_t *answer;
	int rc = call(c, "GET", "/v1/status", NULL, &answer);
	if (rc != 0)
		return rc;
	if (qs_cmd_str(c, "path") != NULL && filter_roots(c, answer) != QS_EXIT_OK) {
		json_decref(answer);
		return QS_EXIT_FAIL;
	}
	if (c->json)
		return print_result(c, answer);
	print_status(c, answer);
	json_decref(answer);
	return QS_EXIT_OK;
}

/* ---- history ---------------------------------------------------------------------------- */

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
	{"daemon", QS_OPT_FLAG, NULL, "detach; log to $XDG_DATA_HOME/quics/qic.log", 0, 0, NULL,
	 false},
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
static const struct qs_opt status_opts[] = {
	{"path", QS_OPT_STRING, "DIR", "only the root holding DIR (a root or a path inside one)", 0,
	 0, NULL, false},
};

static const struct qs_opt conflict_choose_opts[] = {
	{"path", QS_OPT_STRING, "P", "the conflicted file (absolute or relative to here)", 0, 0,
	 NULL, true},
	{"candidate", QS_OPT_U64, "ID", "the candidate to keep (0: the server's version)", 0, 0,
	 NULL, true},
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

static const struct qs_opt conflict_download_opts[] = {
	{"path", QS_OPT_STRING, "P", "the conflicted file (absolute or relative to here)", 0, 0,
	 NULL, true},
	{"candidate", QS_OPT_U64, "ID", "the candidate to fetch (0: the server's version)", 0, 0,
	 NULL, true},
	{"out", QS_OPT_STRING, "FILE", "where to write it (default: NAME.cID here); must not exist",
	 0, 0, NULL, false},
};

static const struct qs_cmd commands[] = {
	{"start", "run the client daemon (in the foreground unless --daemon)", NULL, 0, 0,
	 start_opts, 2, cmd_start},
	{"connect server", "register this client with a server", NULL, 0, 0, server_opts, 4,
	 cmd_connect_server},
	{"connect root", "sync a directory with a root on the server", NULL, 0, 0, root_opts, 5,
	 cmd_connect_root},
	{"disconnect root", "stop syncing a directory (its files stay)", NULL, 0, 0,
	 disconnect_opts, 1, cmd_disconnect_root},
	{"sync status", "per root: connected, files, transfers, conflicts", NULL, 0, 0, status_opts,
	 1, cmd_sync_status},
	{"sync rescan", "look at every file of every root now", NULL, 0, 0, NULL, 0,
	 cmd_sync_rescan},
	{"sync confirm", "let a paused root delete what a scan found deleted", NULL, 0, 0,
	 disconnect_opts, 1, cmd_sync_confirm},
	{"conflict list", "open conflicts on every synced root, with their candidates", NULL, 0, 0,
	 NULL, 0, cmd_conflict_list},
	{"conflict choose", "resolve a conflict: the chosen candidate becomes the new version",
	 NULL, 0, 0, conflict_choose_opts, 2, cmd_conflict_choose},
	{"conflict download", "write a candidate's bytes to a file, to look at it", NULL, 0, 0,
	 conflict_download_opts, 3, cmd_conflict_download},
	{"stop", "stop the client daemon cleanly", NULL, 0, 0, NULL, 0, cmd_stop},
	{"config show", "this client's id, directories, server and roots", NULL, 0, 0, NULL, 0,
	 cmd_config_show},
	{"config server", "the server this client uses and the connection's state", NULL, 0, 0,
	 NULL, 0, cmd_config_server},
	{"connect list-remote", "the roots on the server, and which this client joined", NULL, 0, 0,
	 NULL, 0, cmd_connect_list_remote},
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

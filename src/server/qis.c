/* qis: the QUIC-S server. `qis run` runs the daemon in the foreground; every option also
 * comes from a QUICS_* environment variable (the flag wins). Other commands will talk to
 * the running daemon's admin REST API. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "server/daemon.h"

static struct qis_daemon *daemon_;
static uv_signal_t sig_term, sig_int;

static void usage(FILE *f)
{
	fprintf(f, "usage: qis run [--addr ADDR] [--quic-port PORT] [--port PORT] [--data DIR]\n"
		   "               [--password PW]\n"
		   "  --addr       address for the sync protocol (QUICS_ADDR, default 0.0.0.0)\n"
		   "  --quic-port  UDP port of the sync protocol (QUICS_QUIC_PORT, default 6122)\n"
		   "  --port       admin REST port on 127.0.0.1 (QUICS_PORT, default 6120)\n"
		   "  --data       data directory (QUICS_DATA, default "
		   "$XDG_DATA_HOME/quics/server)\n"
		   "  --password   server password clients register with (QUICS_PASSWORD;\n"
		   "               generated and printed on first start when absent)\n");
}

static void stopped(void *arg)
{
	(void)arg;
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	qs_info("server", "event=stopping signal=%d", signum);
	qis_daemon_stop(daemon_, stopped, NULL);
}

static int parse_port(const char *opt, const char *v, uint16_t *out)
{
	uint64_t n;
	if (qs_parse_u64(v, 65535, &n) != 0) {
		fprintf(stderr, "qis: %s: not a port number: %s\n", opt, v);
		return 2;
	}
	*out = (uint16_t)n;
	return 0;
}

static int default_data_dir(char *out, size_t cap)
{
	const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int n;
	if (x != NULL && x[0] == '/')
		n = snprintf(out, cap, "%s/quics/server", x);
	else if (home != NULL)
		n = snprintf(out, cap, "%s/.local/share/quics/server", home);
	else
		return QS_ENOENT;
	return n < 0 || (size_t)n >= cap ? QS_E2BIG : 0;
}

/* Creates every missing parent of path (mode 0700), like mkdir -p without the last one. */
static void make_parents(const char *path);

static int run(int argc, char **argv)
{
	struct qis_config cfg = {0};
	char data[4096];
	cfg.addr = getenv("QUICS_ADDR") ? getenv("QUICS_ADDR") : "0.0.0.0";
	cfg.quic_port = 6122;
	cfg.http_port = 6120;
	cfg.data_dir = getenv("QUICS_DATA");
	cfg.password = getenv("QUICS_PASSWORD");
	if (getenv("QUICS_QUIC_PORT") &&
	    parse_port("QUICS_QUIC_PORT", getenv("QUICS_QUIC_PORT"), &cfg.quic_port))
		return 2;
	if (getenv("QUICS_PORT") && parse_port("QUICS_PORT", getenv("QUICS_PORT"), &cfg.http_port))
		return 2;
	const char *fast = getenv("QUICS_TEST_FAST_HASH");
	cfg.fast_password_hash = fast != NULL && strcmp(fast, "1") == 0;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL) {
			fprintf(stderr, "qis: %s needs a value (see qis run --help)\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--addr") == 0)
			cfg.addr = v;
		else if (strcmp(argv[i], "--quic-port") == 0) {
			if (parse_port(argv[i], v, &cfg.quic_port))
				return 2;
		} else if (strcmp(argv[i], "--port") == 0) {
			if (parse_port(argv[i], v, &cfg.http_port))
				return 2;
		} else if (strcmp(argv[i], "--data") == 0)
			cfg.data_dir = v;
		else if (strcmp(argv[i], "--password") == 0)
			cfg.password = v;
		else {
			fprintf(stderr, "qis: unknown option %s (see qis run --help)\n", argv[i]);
			return 2;
		}
		i++;
	}
	if (cfg.data_dir == NULL) {
		if (default_data_dir(data, sizeof(data)) != 0) {
			fprintf(stderr, "qis: no --data given and no HOME to put it in\n");
			return 2;
		}
		make_parents(data);
		cfg.data_dir = data;
	}
	uv_loop_t *loop = uv_default_loop();
	int rc = qis_daemon_start(loop, &cfg, &daemon_);
	if (rc != 0) {
		fprintf(stderr, "qis: cannot start: %s (data dir %s)\n", qs_strerror(rc),
			cfg.data_dir);
		return 1;
	}
	printf("qis %s serving\n"
	       "  sync protocol: %s port %u (UDP)\n"
	       "  certificate fingerprint: %s\n"
	       "  data: %s\n"
	       "connect a client: qic connect server --host <this host> --port %u "
	       "--password <server password> --fingerprint %s\n",
	       QS_VERSION, cfg.addr, qs_quic_server_port(daemon_->quic),
	       qs_quic_server_fingerprint(daemon_->quic), cfg.data_dir,
	       qs_quic_server_port(daemon_->quic), qs_quic_server_fingerprint(daemon_->quic));
	fflush(stdout);
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
	qis_daemon_free(daemon_);
	uv_loop_close(loop);
	return 0;
}

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

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return run(argc - 2, argv + 2);
	fprintf(stderr, "qis: unknown command %s (see qis --help)\n", argv[1]);
	return 2;
}

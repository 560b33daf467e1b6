/* qs-quic-peer: a real QUIC-S transport endpoint for integration tests and benchmarks.
 *   server: serves ECHO (messages back), SINK (hashes DATA, replies with the SHA-256),
 *           SOURCE (sends N pseudo-random bytes then their SHA-256), CALLBACK (opens an
 *           ECHO transaction toward the client and reports whether it worked).
 *   client: runs one scenario against a server and prints results as key=value lines.
 * Exit status 0 means the scenario's property held. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"
#include "core/sha256.h"
#include "net/quic.h"

#define CHUNK (256 * 1024)

static uv_loop_t *loop;
static int exit_code = 1;

static long max_rss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* Deterministic pseudo-random bytes (xorshift64*) so both ends can agree on content. */
static void fill_random(uint64_t *state, uint8_t *p, size_t n)
{
	uint64_t x = *state;
	for (size_t i = 0; i < n; i += 8) {
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		uint64_t v = x * 2685821657736338717ULL;
		size_t k = n - i < 8 ? n - i : 8;
		memcpy(p + i, &v, k);
	}
	*state = x;
}

static void hex_digest(struct qs_sha256 *h, char out[QS_SHA256_HEX_LEN + 1])
{
	uint8_t d[QS_SHA256_LEN];
	qs_sha256_digest(h, d);
	qs_hex_encode(d, sizeof(d), out);
}

/* ---- a data pump: sends `remaining` bytes with backpressure -------------------------------- */

struct pump {
	struct qs_tx *tx;
	uint64_t remaining;
	uint64_t rng;
	struct qs_sha256 hash;
	char hex[QS_SHA256_HEX_LEN + 1]; /* digest of what was sent, once done */
	bool done;
};

struct block {
	uint8_t data[CHUNK];
};

static void block_release(void *arg)
{
	qs_free(arg);
}

/* Queues blocks while the transaction is writable; the last one is followed by the hash. */
static int pump_run(struct pump *p)
{
	while (!p->done && qs_tx_writable(p->tx)) {
		if (p->remaining == 0) {
			hex_digest(&p->hash, p->hex);
			p->done = true;
			int rc = qs_tx_send_msg(p->tx, p->hex, QS_SHA256_HEX_LEN);
			return rc != 0 ? rc : qs_tx_finish(p->tx);
		}
		size_t n = p->remaining < CHUNK ? (size_t)p->remaining : CHUNK;
		struct block *b = qs_malloc(sizeof(*b));
		if (b == NULL)
			return QS_ENOMEM;
		fill_random(&p->rng, b->data, n);
		qs_sha256_update(&p->hash, b->data, n);
		int rc = qs_tx_send_data(p->tx, b->data, n, block_release, b);
		if (rc != 0) {
			qs_free(b);
			return rc;
		}
		p->remaining -= n;
	}
	return 0;
}

/* ---- server ----------------------------------------------------------------------------- */

struct srv_tx {
	char name[16];
	struct qs_sha256 hash;
	uint64_t bytes;
	struct pump pump;
	bool pumping;
};

static struct qs_quic_server *server;

static int srv_on_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	struct srv_tx *st = arg;
	if (strcmp(st->name, "ECHO") == 0)
		return qs_tx_send_msg(tx, p, len);
	if (strcmp(st->name, "SOURCE") == 0 && !st->pumping) {
		char text[32];
		uint64_t n;
		if (len == 0 || len >= sizeof(text))
			return QS_EPROTO;
		memcpy(text, p, len);
		text[len] = '\0';
		if (qs_parse_u64(text, UINT64_MAX, &n) != 0)
			return QS_EPROTO;
		st->pumping = true;
		st->pump.tx = tx;
		st->pump.remaining = n;
		st->pump.rng = 0x9e3779b97f4a7c15ULL;
		if (qs_sha256_init(&st->pump.hash) != 0)
			return QS_ENOMEM;
		return pump_run(&st->pump);
	}
	return 0;
}

static int srv_on_data(struct qs_tx *tx, const uint8_t *p, size_t len, uint64_t off, uint64_t total,
		       void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct srv_tx *st = arg;
	qs_sha256_update(&st->hash, p, len);
	st->bytes += len;
	return 0;
}

static int srv_on_end(struct qs_tx *tx, void *arg)
{
	struct srv_tx *st = arg;
	if (strcmp(st->name, "SINK") == 0) {
		char hex[QS_SHA256_HEX_LEN + 1];
		hex_digest(&st->hash, hex);
		int rc = qs_tx_send_msg(tx, hex, QS_SHA256_HEX_LEN);
		if (rc != 0)
			return rc;
	}
	if (strcmp(st->name, "SOURCE") == 0)
		return 0; /* the pump finishes our half */
	return qs_tx_finish(tx);
}

static void srv_on_writable(struct qs_tx *tx, void *arg)
{
	struct srv_tx *st = arg;
	if (st->pumping && pump_run(&st->pump) != 0)
		qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL);
}

static void srv_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	struct srv_tx *st = arg;
	qs_sha256_release(&st->hash);
	if (st->pumping)
		qs_sha256_release(&st->pump.hash);
	qs_free(st);
}

static const struct qs_tx_ops srv_ops = {
	.on_msg = srv_on_msg,
	.on_data = srv_on_data,
	.on_end = srv_on_end,
	.on_writable = srv_on_writable,
	.on_close = srv_on_close,
};

/* CALLBACK: the server opens ECHO toward the client and reports the result on the
 * client's transaction. */
struct callback {
	struct qs_tx *client_tx;
	bool ok;
};

static int cb_echo_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	struct callback *cb = arg;
	cb->ok = len == 5 && memcmp(p, "hello", 5) == 0;
	return qs_tx_finish(tx);
}

static void cb_echo_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct callback *cb = arg;
	const char *res = err == 0 && cb->ok ? "callback-ok" : "callback-failed";
	if (cb->client_tx != NULL) {
		qs_tx_send_msg(cb->client_tx, res, strlen(res));
		qs_tx_finish(cb->client_tx);
	}
	qs_free(cb);
}

static const struct qs_tx_ops cb_echo_ops = {
	.on_msg = cb_echo_msg,
	.on_close = cb_echo_close,
};

static int cbreq_on_end(struct qs_tx *tx, void *arg)
{
	(void)arg;
	struct callback *cb = qs_calloc(1, sizeof(*cb));
	if (cb == NULL)
		return QS_ENOMEM;
	cb->client_tx = tx;
	struct qs_tx *etx;
	int rc = qs_conn_open_tx(qs_tx_conn(tx), "ECHO", &cb_echo_ops, cb, &etx);
	if (rc != 0) {
		qs_free(cb);
		return rc;
	}
	return qs_tx_send_msg(etx, "hello", 5);
}

static const struct qs_tx_ops cbreq_ops = {.on_end = cbreq_on_end};

static int srv_tx_open(struct qs_conn *conn, struct qs_tx *tx, const char *name, void *arg)
{
	(void)conn;
	(void)arg;
	if (strcmp(name, "CALLBACK") == 0) {
		qs_tx_set_ops(tx, &cbreq_ops, NULL);
		return 0;
	}
	if (strcmp(name, "ECHO") != 0 && strcmp(name, "SINK") != 0 && strcmp(name, "SOURCE") != 0)
		return QS_ENOENT;
	struct srv_tx *st = qs_calloc(1, sizeof(*st));
	if (st == NULL || qs_sha256_init(&st->hash) != 0) {
		qs_free(st);
		return QS_ENOMEM;
	}
	snprintf(st->name, sizeof(st->name), "%s", name);
	qs_tx_set_ops(tx, &srv_ops, st);
	return 0;
}

static uv_signal_t sig_term, sig_int;

static void server_done(void *arg)
{
	(void)arg;
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	struct qs_quic_server_stats st;
	qs_quic_server_stats(server, &st);
	printf("stats datagrams_in=%llu dropped_in=%llu retries=%llu resets=%llu vn=%llu "
	       "accepted=%llu refused=%llu\n",
	       (unsigned long long)st.datagrams_in, (unsigned long long)st.dropped_in,
	       (unsigned long long)st.retries_sent, (unsigned long long)st.resets_sent,
	       (unsigned long long)st.vn_sent, (unsigned long long)st.conns_accepted,
	       (unsigned long long)st.conns_refused);
	fflush(stdout);
	qs_quic_server_shutdown(server, server_done, NULL);
}

static int run_server(int argc, char **argv)
{
	struct qs_quic_server_config cfg;
	qs_quic_server_config_default(&cfg);
	cfg.port = 0;
	const char *port_file = NULL;
	for (int i = 0; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (v == NULL) {
			fprintf(stderr, "server: %s needs a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--addr") == 0)
			cfg.addr = v;
		else if (strcmp(argv[i], "--port") == 0 && qs_parse_u64(v, 65535, &n) == 0)
			cfg.port = (uint16_t)n;
		else if (strcmp(argv[i], "--cert-dir") == 0)
			cfg.cert_dir = v;
		else if (strcmp(argv[i], "--port-file") == 0)
			port_file = v;
		else if (strcmp(argv[i], "--max-conns-per-ip") == 0 &&
			 qs_parse_u64(v, 1000000, &n) == 0)
			cfg.max_conns_per_ip = (uint32_t)n;
		else if (strcmp(argv[i], "--max-streams") == 0 && qs_parse_u64(v, 100000, &n) == 0)
			cfg.limits.max_streams = (uint32_t)n;
		else if (strcmp(argv[i], "--max-msg") == 0 && qs_parse_u64(v, 4 << 20, &n) == 0)
			cfg.limits.max_msg_bytes = (uint32_t)n;
		else if (strcmp(argv[i], "--no-retry") == 0 && strcmp(v, "1") == 0)
			cfg.validate_addr = false;
		else {
			fprintf(stderr, "server: bad option %s %s\n", argv[i], v);
			return 2;
		}
	}
	if (cfg.cert_dir == NULL) {
		fprintf(stderr, "server: --cert-dir is required\n");
		return 2;
	}
	cfg.on_tx_open = srv_tx_open;
	int rc = qs_quic_server_new(loop, &cfg, &server);
	if (rc != 0) {
		fprintf(stderr, "server: %s\n", qs_strerror(rc));
		return 1;
	}
	printf("fingerprint=%s\nport=%u\n", qs_quic_server_fingerprint(server),
	       qs_quic_server_port(server));
	fflush(stdout);
	if (port_file != NULL) {
		FILE *f = fopen(port_file, "w");
		if (f == NULL)
			return 1;
		fprintf(f, "%u %s\n", qs_quic_server_port(server),
			qs_quic_server_fingerprint(server));
		fclose(f);
	}
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
	qs_quic_server_free(server);
	printf("max_rss_kib=%ld\n", max_rss_kib());
	return 0;
}

/* ---- client scenarios ---------------------------------------------------------------------- */

static struct qs_quic_client *client;
static const char *scenario;
static uint64_t arg_n = 1, arg_parallel = 1, arg_bytes = 0;
static unsigned connects;
static uint64_t t_start;

static bool finishing;

static void client_finish(int code)
{
	if (finishing)
		return;
	finishing = true;
	exit_code = code;
	qs_quic_client_close(client, NULL, NULL);
}

/* ECHO scenario: arg_n transactions, arg_parallel at a time, each 3 messages. */
struct echo_tx {
	int got;
	uint64_t index;
	uint64_t t0;
};
static uint64_t echo_started, echo_done, echo_failed;
static uint64_t *latencies;

static void echo_start_more(struct qs_conn *conn);

static int echo_on_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	(void)tx;
	struct echo_tx *et = arg;
	char want[48];
	int n = snprintf(want, sizeof(want), "msg-%llu-%d", (unsigned long long)et->index, et->got);
	if ((size_t)n != len || memcmp(want, p, len) != 0)
		return QS_EPROTO;
	et->got++;
	return 0;
}

static void echo_on_close(struct qs_tx *tx, int err, void *arg)
{
	struct echo_tx *et = arg;
	int want = strcmp(scenario, "latency") == 0 ? 1 : 3;
	if (err != 0 || et->got != want) {
		echo_failed++;
		fprintf(stderr, "echo %llu failed: err=%s got=%d\n", (unsigned long long)et->index,
			qs_strerror(err), et->got);
	} else if (latencies != NULL) {
		latencies[et->index] = uv_hrtime() - et->t0;
	}
	echo_done++;
	struct qs_conn *conn = qs_tx_conn(tx);
	qs_free(et);
	if (echo_done == arg_n) {
		printf("echo_done=%llu echo_failed=%llu\n", (unsigned long long)echo_done,
		       (unsigned long long)echo_failed);
		client_finish(echo_failed == 0 ? 0 : 1);
		return;
	}
	echo_start_more(conn);
}

static const struct qs_tx_ops echo_ops = {.on_msg = echo_on_msg, .on_close = echo_on_close};

static void echo_start_more(struct qs_conn *conn)
{
	int per = strcmp(scenario, "latency") == 0 ? 1 : 3;
	while (echo_started < arg_n && echo_started - echo_done < arg_parallel) {
		struct echo_tx *et = qs_calloc(1, sizeof(*et));
		struct qs_tx *tx;
		et->index = echo_started;
		et->t0 = uv_hrtime();
		int rc = qs_conn_open_tx(conn, "ECHO", &echo_ops, et, &tx);
		if (rc != 0) {
			fprintf(stderr, "open_tx: %s\n", qs_strerror(rc));
			qs_free(et);
			client_finish(1);
			return;
		}
		echo_started++;
		for (int i = 0; i < per; i++) {
			char m[48];
			int n = snprintf(m, sizeof(m), "msg-%llu-%d", (unsigned long long)et->index,
					 i);
			qs_tx_send_msg(tx, m, (size_t)n);
		}
		qs_tx_finish(tx);
	}
}

/* UPLOAD / DOWNLOAD scenarios. */
struct xfer {
	struct pump pump;
	struct qs_sha256 hash;
	uint64_t bytes;
	char reply[QS_SHA256_HEX_LEN + 1];
	bool got_reply;
};
static struct xfer xfer;

static int xfer_on_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	(void)tx;
	struct xfer *x = arg;
	if (len != QS_SHA256_HEX_LEN)
		return QS_EPROTO;
	memcpy(x->reply, p, len);
	x->reply[len] = '\0';
	x->got_reply = true;
	return 0;
}

static int xfer_on_data(struct qs_tx *tx, const uint8_t *p, size_t len, uint64_t off,
			uint64_t total, void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct xfer *x = arg;
	qs_sha256_update(&x->hash, p, len);
	x->bytes += len;
	return 0;
}

static void xfer_on_writable(struct qs_tx *tx, void *arg)
{
	struct xfer *x = arg;
	if (pump_run(&x->pump) != 0)
		qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL);
}

static void xfer_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct xfer *x = arg;
	double secs = (double)(uv_hrtime() - t_start) / 1e9;
	bool upload = strcmp(scenario, "upload") == 0;
	char mine[QS_SHA256_HEX_LEN + 1] = "";
	if (upload) {
		memcpy(mine, x->pump.hex, sizeof(mine));
	} else {
		hex_digest(&x->hash, mine);
	}
	bool ok = err == 0 && x->got_reply && strcmp(mine, x->reply) == 0 &&
		  (upload || x->bytes == arg_bytes);
	printf("%s_bytes=%llu seconds=%.3f mbps=%.1f sha256=%s peer_sha256=%s ok=%d\n", scenario,
	       (unsigned long long)arg_bytes, secs, (double)arg_bytes / 1e6 / secs, mine, x->reply,
	       ok);
	if (err != 0)
		fprintf(stderr, "transfer failed: %s\n", qs_strerror(err));
	client_finish(ok ? 0 : 1);
}

static const struct qs_tx_ops xfer_ops = {
	.on_msg = xfer_on_msg,
	.on_data = xfer_on_data,
	.on_writable = xfer_on_writable,
	.on_close = xfer_on_close,
};

static void start_xfer(struct qs_conn *conn)
{
	struct qs_tx *tx;
	bool upload = strcmp(scenario, "upload") == 0;
	qs_sha256_init(&xfer.hash);
	t_start = uv_hrtime();
	int rc = qs_conn_open_tx(conn, upload ? "SINK" : "SOURCE", &xfer_ops, &xfer, &tx);
	if (rc != 0) {
		client_finish(1);
		return;
	}
	if (upload) {
		xfer.pump.tx = tx;
		xfer.pump.remaining = arg_bytes;
		xfer.pump.rng = 0x9e3779b97f4a7c15ULL;
		qs_sha256_init(&xfer.pump.hash);
		if (pump_run(&xfer.pump) != 0)
			client_finish(1);
	} else {
		char m[32];
		int n = snprintf(m, sizeof(m), "%llu", (unsigned long long)arg_bytes);
		qs_tx_send_msg(tx, m, (size_t)n);
		qs_tx_finish(tx);
	}
}

/* CALLBACK scenario: the server opens a transaction toward us. */
static int cli_echo_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	(void)arg;
	return qs_tx_send_msg(tx, p, len);
}
static int cli_echo_end(struct qs_tx *tx, void *arg)
{
	(void)arg;
	return qs_tx_finish(tx);
}
static const struct qs_tx_ops cli_echo_ops = {.on_msg = cli_echo_msg, .on_end = cli_echo_end};

static int cli_tx_open(struct qs_conn *conn, struct qs_tx *tx, const char *name, void *arg)
{
	(void)conn;
	(void)arg;
	if (strcmp(name, "ECHO") != 0)
		return QS_ENOENT;
	qs_tx_set_ops(tx, &cli_echo_ops, NULL);
	return 0;
}

static char cb_result[32];
static int cbres_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	(void)tx;
	(void)arg;
	snprintf(cb_result, sizeof(cb_result), "%.*s", (int)len, (const char *)p);
	return 0;
}
static void cbres_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)arg;
	printf("callback=%s err=%s\n", cb_result, qs_strerror(err));
	client_finish(err == 0 && strcmp(cb_result, "callback-ok") == 0 ? 0 : 1);
}
static const struct qs_tx_ops cbres_ops = {.on_msg = cbres_msg, .on_close = cbres_close};

/* BIGMSG scenario: a message of arg_bytes on ECHO must cancel that transaction with
 * QS_QUIC_ERR_TOO_BIG (when over the server's limit) while the connection keeps working. */
static void bigmsg_close(struct qs_tx *tx, int err, void *arg)
{
	(void)arg;
	uint64_t code = qs_tx_error(tx);
	printf("bigmsg err=%s peer_code=0x%llx\n", qs_strerror(err), (unsigned long long)code);
	if (err != QS_ECANCELED || code != QS_QUIC_ERR_TOO_BIG) {
		client_finish(1);
		return;
	}
	/* The connection must still serve a normal transaction. */
	scenario = "echo";
	arg_n = 1;
	echo_start_more(qs_tx_conn(tx));
}
static const struct qs_tx_ops bigmsg_ops = {.on_close = bigmsg_close};

static void start_bigmsg(struct qs_conn *conn)
{
	struct qs_tx *tx;
	uint8_t *m = qs_calloc(1, arg_bytes);
	if (m == NULL || qs_conn_open_tx(conn, "ECHO", &bigmsg_ops, NULL, &tx) != 0 ||
	    qs_tx_send_msg(tx, m, arg_bytes) != 0 || qs_tx_finish(tx) != 0)
		client_finish(1);
	qs_free(m);
}

static void on_connected(struct qs_conn *conn, void *arg)
{
	(void)arg;
	connects++;
	printf("connected=%u peer_fingerprint=%s\n", connects, qs_conn_peer_fingerprint(conn));
	fflush(stdout);
	if (strcmp(scenario, "handshake") == 0) {
		client_finish(0);
	} else if (strcmp(scenario, "echo") == 0 || strcmp(scenario, "latency") == 0) {
		echo_start_more(conn);
	} else if (strcmp(scenario, "upload") == 0 || strcmp(scenario, "download") == 0) {
		start_xfer(conn);
	} else if (strcmp(scenario, "callback") == 0) {
		struct qs_tx *tx;
		if (qs_conn_open_tx(conn, "CALLBACK", &cbres_ops, NULL, &tx) != 0 ||
		    qs_tx_finish(tx) != 0)
			client_finish(1);
	} else if (strcmp(scenario, "hold") == 0) {
		/* Keep the connection until killed (per-address limit tests). */
	} else if (strcmp(scenario, "bigmsg") == 0) {
		start_bigmsg(conn);
	} else if (strcmp(scenario, "reconnect") == 0) {
		/* First connection: wait for the test to restart the server. Second: prove a new
		 * transaction works. */
		if (connects >= 2) {
			echo_started = echo_done = 0;
			arg_n = 1;
			echo_start_more(conn);
		}
	}
}

static void on_disconnected(struct qs_conn *conn, int err, void *arg)
{
	(void)conn;
	(void)arg;
	const char *msg;
	qs_quic_client_last_error(client, &msg);
	printf("disconnected err=%s message=\"%s\"\n", qs_strerror(err), msg);
	fflush(stdout);
	if (err == QS_ECERT || strcmp(scenario, "reconnect") != 0)
		client_finish(err == QS_ECERT ? 3 : 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int run_client(int argc, char **argv)
{
	struct qs_quic_client_config cfg;
	qs_quic_client_config_default(&cfg);
	for (int i = 0; i < argc; i += 2) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (v == NULL) {
			fprintf(stderr, "client: %s needs a value\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--host") == 0)
			cfg.host = v;
		else if (strcmp(argv[i], "--port") == 0 && qs_parse_u64(v, 65535, &n) == 0)
			cfg.port = (uint16_t)n;
		else if (strcmp(argv[i], "--fingerprint") == 0)
			cfg.pinned_fingerprint = v;
		else if (strcmp(argv[i], "--scenario") == 0)
			scenario = v;
		else if (strcmp(argv[i], "-n") == 0 && qs_parse_u64(v, 10000000, &n) == 0)
			arg_n = n;
		else if (strcmp(argv[i], "--parallel") == 0 && qs_parse_u64(v, 100000, &n) == 0)
			arg_parallel = n;
		else if (strcmp(argv[i], "--bytes") == 0 && qs_parse_size(v, UINT64_MAX, &n) == 0)
			arg_bytes = n;
		else if (strcmp(argv[i], "--keepalive-ms") == 0 &&
			 qs_parse_u64(v, 3600000, &n) == 0)
			cfg.keepalive_ms = n;
		else if (strcmp(argv[i], "--no-gso") == 0 && strcmp(v, "1") == 0)
			cfg.limits.no_gso = true;
		else {
			fprintf(stderr, "client: bad option %s %s\n", argv[i], v);
			return 2;
		}
	}
	if (scenario == NULL) {
		fprintf(stderr, "client: --scenario is required\n");
		return 2;
	}
	if (strcmp(scenario, "latency") == 0) {
		latencies = qs_calloc(arg_n, sizeof(*latencies));
		arg_parallel = 1;
	}
	cfg.on_connected = on_connected;
	cfg.on_disconnected = on_disconnected;
	cfg.on_tx_open = cli_tx_open;
	cfg.backoff_min_ms = 50;
	cfg.backoff_max_ms = 1000;
	int rc = qs_quic_client_new(loop, &cfg, &client);
	if (rc != 0) {
		fprintf(stderr, "client: %s\n", qs_strerror(rc));
		return 2;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	qs_quic_client_free(client);
	if (latencies != NULL && exit_code == 0) {
		qsort(latencies, arg_n, sizeof(*latencies), cmp_u64);
		printf("latency_n=%llu p50_us=%.1f p99_us=%.1f max_us=%.1f\n",
		       (unsigned long long)arg_n, (double)latencies[arg_n / 2] / 1e3,
		       (double)latencies[arg_n * 99 / 100] / 1e3,
		       (double)latencies[arg_n - 1] / 1e3);
	}
	qs_free(latencies);
	printf("max_rss_kib=%ld\n", max_rss_kib());
	return exit_code;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	loop = uv_default_loop();
	if (argc < 2) {
		fprintf(stderr, "usage: qs-quic-peer server|client [options]\n");
		return 2;
	}
	if (strcmp(argv[1], "server") == 0)
		return run_server(argc - 2, argv + 2);
	if (strcmp(argv[1], "client") == 0)
		return run_client(argc - 2, argv + 2);
	fprintf(stderr, "qs-quic-peer: unknown mode %s\n", argv[1]);
	return 2;
}

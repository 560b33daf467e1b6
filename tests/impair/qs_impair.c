/* qs-impair: a UDP impairment proxy for loopback tests of the QUIC transport. It relays
 * datagrams between any number of clients and one upstream server (one connected upstream
 * socket per client, so each reply finds its client) and applies seeded impairments per
 * direction: drop, duplicate, reorder, delay with jitter, corrupt and a bandwidth cap.
 * Single-threaded (one ppoll loop, monotonic clock). A queued datagram is owned by exactly
 * one place, the delay heap or the hold list; both together hold at most --queue-max. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/num.h"

#define MODULE "impair"
#define PPB UINT64_C(1000000000) /* probabilities are kept in parts per billion */
#define NS_PER_MS UINT64_C(1000000)
#define DGRAM_MAX 65536 /* larger than any UDP payload, so nothing is truncated */
#define RECV_BATCH 16
#define RECV_ROUNDS 4 /* batches per socket per wakeup, so no socket starves the rest */
#define HOLD_MAX 256
#define SOCK_BUF_BYTES (4 * 1024 * 1024)
#define EXIT_USAGE 2

enum dir { DIR_C2S = 0, DIR_S2C = 1, DIR_COUNT = 2 };
static const char *const dir_names[DIR_COUNT] = {"c2s", "s2c"};

/* Per-direction options: "--NAME V" sets both directions, "--NAME-c2s V" (client to
 * server) and "--NAME-s2c V" (server to client) set one. */
enum dopt {
	DOPT_DROP,
	DOPT_DUP,
	DOPT_REORDER,
	DOPT_CORRUPT,
	DOPT_DELAY_MS,
	DOPT_JITTER_MS,
	DOPT_RATE_KBIT,
	DOPT_REORDER_GAP,
	DOPT_REORDER_MS,
	DOPT_COUNT
};

struct dopt_spec {
	const char *name;
	bool is_probability;
	uint64_t min, max, def;
	const char *help;
};

static const struct dopt_spec dopt_specs[DOPT_COUNT] = {
	[DOPT_DROP] = {"drop", true, 0, PPB, 0, "probability a datagram is dropped"},
	[DOPT_DUP] = {"dup", true, 0, PPB, 0, "probability a datagram is sent twice"},
	[DOPT_REORDER] = {"reorder", true, 0, PPB, 0, "probability a datagram is held back"},
	[DOPT_CORRUPT] = {"corrupt", true, 0, PPB, 0,
			  "probability random bits of one random byte are flipped"},
	[DOPT_DELAY_MS] = {"delay-ms", false, 0, 60000, 0, "fixed one-way delay in ms"},
	[DOPT_JITTER_MS] = {"jitter-ms", false, 0, 60000, 0,
			    "uniform extra delay in [-J, +J] ms (never below 0)"},
	[DOPT_RATE_KBIT] = {"rate-kbit", false, 0, 100000000, 0,
			    "bandwidth cap in kbit/s, 0 for none"},
	[DOPT_REORDER_GAP] = {"reorder-gap", false, 1, 1000, 3,
			      "a held datagram goes out after this many later ones"},
	[DOPT_REORDER_MS] = {"reorder-ms", false, 1, 60000, 50,
			     "... or after this many ms, whichever is first"},
};

enum stat {
	ST_RECEIVED,
	ST_FORWARDED,
	ST_DROPPED,
	ST_DUPLICATED,
	ST_REORDERED,
	ST_CORRUPTED,
	ST_OVERFLOW,
	ST_SEND_ERRORS,
	ST_STALE,
	ST_COUNT
};
static const char *const stat_names[ST_COUNT] = {
	"received",  "forwarded", "dropped",     "duplicated", "reordered",
	"corrupted", "overflow",  "send_errors", "stale",
};

struct config {
	struct sockaddr_storage listen_addr;
	socklen_t listen_len;
	struct sockaddr_storage upstream_addr;
	socklen_t upstream_len;
	bool has_upstream;
	uint64_t seed;
	uint64_t queue_max;
	uint64_t max_clients;
	const char *port_file;
	uint64_t dir[DIR_COUNT][DOPT_COUNT];
};

/* xoshiro256** seeded through splitmix64: fast, and the same seed gives the same choices. */
struct rng {
	uint64_t s[4];
};

struct dir_state {
	const uint64_t *conf; /* borrows cfg.dir[d] */
	bool immediate;       /* no delay, jitter or rate cap: send at once, never queue */
	struct rng rng;
	uint64_t link_free_ns; /* when the capped link finishes its backlog */
	uint64_t stats[ST_COUNT];
};

/* One queued datagram. In the heap due_ns is when it is sent; in the hold list it is the
 * deadline for its release and gap_left counts the later datagrams still to pass it. */
struct pkt {
	uint64_t due_ns;
	uint64_t seq;
	uint64_t session_gen;
	uint64_t jitter_draw;
	uint32_t session_idx;
	uint32_t gap_left;
	enum dir dir;
	size_t len;
	unsigned char data[];
};

/* A client and its upstream socket. fd < 0 marks a free slot; gen tells a reused slot from
 * the session a queued datagram was meant for. */
struct session {
	struct sockaddr_storage client;
	socklen_t client_len;
	int fd;
	uint64_t gen;
	uint64_t last_active_ns;
};

/* What the PRNG decided for one datagram. Every datagram draws the same number of values,
 * so one impairment's probability does not shift another's choices for a seed. */
struct verdict {
	bool drop, dup, hold, corrupt;
	size_t corrupt_at;
	unsigned char corrupt_mask;
	uint64_t jitter_draw[2];
};

struct proxy {
	struct config cfg;
	int listen_fd;
	struct session *sessions; /* cfg.max_clients slots */
	uint64_t next_gen;
	uint64_t sessions_opened, sessions_evicted;
	struct dir_state dirs[DIR_COUNT];
	struct pkt **heap; /* min-heap on (due_ns, seq), capacity cfg.queue_max */
	size_t heap_len;
	struct pkt *holds[HOLD_MAX]; /* in the order they were held */
	size_t hold_len;
	uint64_t next_seq;
	struct pollfd *pfds;              /* cfg.max_clients + 1 */
	uint32_t *pfd_session;            /* session slot of pfds[i], i >= 1 */
	unsigned char (*bufs)[DGRAM_MAX]; /* RECV_BATCH receive buffers */
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iovs[RECV_BATCH];
	struct sockaddr_storage names[RECV_BATCH];
	struct qs_ratelimit err_limit;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t stats_requested;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		stats_requested = 1;
	else
		stop_requested = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (size_t i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl64(uint64_t x, unsigned k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

/* The modulo bias is below n / 2^64, far under anything a test could see. */
static bool chance(uint64_t draw, uint64_t ppb)
{
	return draw % PPB < ppb;
}

/* ---- argument parsing ---- */

/* Parses a probability written as a decimal in [0, 1] with at most 9 decimals ("0", "1",
 * "0.05", "1.000") into parts per billion. Signs, exponents, spaces, a bare "." and empty
 * parts are refused; both digit runs go through qs_parse_u64. Errors: QS_EINVAL (not such
 * a decimal), QS_E2BIG (greater than 1), QS_ENOMEM. */
static int parse_probability(const char *s, uint64_t *out_ppb)
{
	const char *dot = strchr(s, '.');
	size_t int_len = dot != NULL ? (size_t)(dot - s) : strlen(s);
	uint64_t frac = 0;
	if (dot != NULL) {
		const char *digits = dot + 1;
		size_t frac_len = strlen(digits);
		if (frac_len == 0 || frac_len > 9)
			return QS_EINVAL;
		char padded[10];
		memset(padded, '0', 9);
		memcpy(padded, digits, frac_len);
		padded[9] = '\0';
		int rc = qs_parse_u64(padded, PPB - 1, &frac);
		if (rc != 0)
			return QS_EINVAL;
	}
	char *int_part = qs_strndup(s, int_len);
	if (int_part == NULL)
		return QS_ENOMEM;
	uint64_t whole;
	int rc = qs_parse_u64(int_part, 1, &whole);
	qs_free(int_part);
	if (rc != 0)
		return rc;
	if (whole == 1 && frac != 0)
		return QS_E2BIG;
	*out_ppb = whole * PPB + frac;
	return 0;
}

/* Parses "IPV4:PORT" or "[IPV6]:PORT" (numeric only) with the port in [min_port, 65535].
 * Prints a message naming `opt` and returns QS_EINVAL when s is not one. */
static int parse_hostport(const char *opt, const char *s, uint64_t min_port,
			  struct sockaddr_storage *out, socklen_t *out_len)
{
	const char *colon = strrchr(s, ':');
	const char *host = s;
	size_t host_len = colon != NULL ? (size_t)(colon - s) : 0;
	bool v6 = s[0] == '[';
	if (v6) {
		if (host_len < 2 || s[host_len - 1] != ']')
			colon = NULL;
		host++;
		host_len -= host_len >= 2 ? 2 : host_len;
	}
	char addr_text[INET6_ADDRSTRLEN];
	if (colon == NULL || host_len == 0 || host_len >= sizeof(addr_text)) {
		fprintf(stderr,
			"qs-impair: %s: \"%s\" is not an address: use IPV4:PORT or [IPV6]:PORT, "
			"e.g. 127.0.0.1:6122 or [::1]:6122\n",
			opt, s);
		return QS_EINVAL;
	}
	memcpy(addr_text, host, host_len);
	addr_text[host_len] = '\0';
	uint64_t port;
	if (qs_parse_u64(colon + 1, 65535, &port) != 0 || port < min_port) {
		fprintf(stderr,
			"qs-impair: %s: port \"%s\" is not a number in [%" PRIu64 ", 65535]\n", opt,
			colon + 1, min_port);
		return QS_EINVAL;
	}
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	int ok;
	if (v6) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		ok = inet_pton(AF_INET6, addr_text, &a6->sin6_addr);
		*out_len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		ok = inet_pton(AF_INET, addr_text, &a4->sin_addr);
		*out_len = sizeof(*a4);
	}
	if (ok != 1) {
		fprintf(stderr, "qs-impair: %s: \"%s\" is not a numeric IP%s address\n", opt,
			addr_text, v6 ? "v6" : "v4");
		return QS_EINVAL;
	}
	*out = ss;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: qs-impair --upstream ADDR:PORT [--listen ADDR:PORT] [options]\n"
		   "Relays UDP datagrams between clients and one server and impairs them.\n"
		   "ADDR:PORT is IPV4:PORT or [IPV6]:PORT; a listen port of 0 picks a free one.\n"
		   "  --listen ADDR:PORT   where clients send to (default 127.0.0.1:0)\n"
		   "  --upstream ADDR:PORT the server (required)\n"
		   "  --seed N             PRNG seed (default 1)\n"
		   "  --port-file PATH     also write the bound port to PATH\n"
		   "  --queue-max N        datagrams queued or held at most (default 4096)\n"
		   "  --max-clients N      clients tracked; the idlest is evicted (default 64)\n"
		   "  --log-level LEVEL    debug, info, warn or error (default warn)\n"
		   "Per direction: --NAME V sets both, --NAME-c2s V and --NAME-s2c V one each:\n");
	for (size_t i = 0; i < DOPT_COUNT; i++) {
		const struct dopt_spec *sp = &dopt_specs[i];
		if (sp->is_probability)
			fprintf(f, "  --%-12s P  %s, P in [0, 1]\n", sp->name, sp->help);
		else
			fprintf(f, "  --%-12s N  %s (default %" PRIu64 ")\n", sp->name, sp->help,
				sp->def);
	}
	fprintf(f,
		"The first line on stdout is \"listening ADDR:PORT\". SIGINT or SIGTERM prints\n"
		"counters (\"stats dir=c2s ...\") and exits; SIGUSR1 prints them and goes on.\n");
}

/* If body starts with name, returns what follows it, else NULL. */
static const char *skip_prefix(const char *body, const char *name)
{
	size_t n = strlen(name);
	return strncmp(body, name, n) == 0 ? body + n : NULL;
}

/* Matches an option name without its dashes ("drop", "drop-c2s") against the
 * per-direction options. On a match writes the option and the directions it sets. */
static bool match_dopt(const char *name, enum dopt *out, bool dirs[DIR_COUNT])
{
	for (size_t i = 0; i < DOPT_COUNT; i++) {
		const char *r = skip_prefix(name, dopt_specs[i].name);
		if (r == NULL)
			continue;
		bool only[DIR_COUNT] = {false, false};
		for (size_t d = 0; d < DIR_COUNT; d++) {
			if (r[0] == '-' && skip_prefix(r + 1, dir_names[d]) != NULL) {
				only[d] = true;
				r += 1 + strlen(dir_names[d]);
				break;
			}
		}
		if (r[0] != '\0')
			continue;
		bool both = !only[DIR_C2S] && !only[DIR_S2C];
		for (size_t d = 0; d < DIR_COUNT; d++)
			dirs[d] = both || only[d];
		*out = (enum dopt)i;
		return true;
	}
	return false;
}

static int parse_dopt_value(const char *opt, const struct dopt_spec *sp, const char *v,
			    uint64_t *out)
{
	if (sp->is_probability) {
		int rc = parse_probability(v, out);
		if (rc == QS_E2BIG)
			fprintf(stderr,
				"qs-impair: %s: \"%s\" is greater than 1: a probability is "
				"in [0, 1]\n",
				opt, v);
		else if (rc != 0)
			fprintf(stderr,
				"qs-impair: %s: \"%s\" is not a probability: write a decimal "
				"in [0, 1] with at most 9 decimals, e.g. 0.05\n",
				opt, v);
		return rc;
	}
	uint64_t x;
	if (qs_parse_u64(v, sp->max, &x) != 0 || x < sp->min) {
		fprintf(stderr,
			"qs-impair: %s: \"%s\" is not a whole number in [%" PRIu64 ", %" PRIu64
			"]\n",
			opt, v, sp->min, sp->max);
		return QS_EINVAL;
	}
	*out = x;
	return 0;
}

static int parse_count(const char *opt, const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t x;
	if (qs_parse_u64(v, max, &x) != 0 || x < min) {
		fprintf(stderr,
			"qs-impair: %s: \"%s\" is not a whole number in [%" PRIu64 ", %" PRIu64
			"]\n",
			opt, v, min, max);
		return QS_EINVAL;
	}
	*out = x;
	return 0;
}

/* Applies one global option (name without dashes) with value v. */
static int apply_global(struct config *cfg, const char *name, const char *v)
{
	char opt[80];
	snprintf(opt, sizeof(opt), "--%s", name);
	if (strcmp(name, "listen") == 0)
		return parse_hostport(opt, v, 0, &cfg->listen_addr, &cfg->listen_len);
	if (strcmp(name, "upstream") == 0) {
		cfg->has_upstream = true;
		return parse_hostport(opt, v, 1, &cfg->upstream_addr, &cfg->upstream_len);
	}
	if (strcmp(name, "seed") == 0)
		return parse_count(opt, v, 0, UINT64_MAX, &cfg->seed);
	if (strcmp(name, "queue-max") == 0)
		return parse_count(opt, v, 1, 1000000, &cfg->queue_max);
	if (strcmp(name, "max-clients") == 0)
		return parse_count(opt, v, 1, 1024, &cfg->max_clients);
	if (strcmp(name, "port-file") == 0) {
		if (v[0] == '\0') {
			fprintf(stderr, "qs-impair: --port-file: the path is empty\n");
			return QS_EINVAL;
		}
		cfg->port_file = v;
		return 0;
	}
	if (strcmp(name, "log-level") == 0) {
		enum qs_log_level level;
		if (qs_log_level_parse(v, &level) != 0) {
			fprintf(stderr,
				"qs-impair: --log-level: \"%s\" is not one of debug, info, "
				"warn, error\n",
				v);
			return QS_EINVAL;
		}
		qs_log_set_level(level);
		return 0;
	}
	fprintf(stderr, "qs-impair: unknown option --%s (see qs-impair --help)\n", name);
	return QS_EINVAL;
}

static void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&cfg->listen_addr;
	a4->sin_family = AF_INET;
	a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cfg->listen_len = sizeof(*a4);
	cfg->seed = 1;
	cfg->queue_max = 4096;
	cfg->max_clients = 64;
	for (size_t d = 0; d < DIR_COUNT; d++)
		for (size_t i = 0; i < DOPT_COUNT; i++)
			cfg->dir[d][i] = dopt_specs[i].def;
}

static const char *const global_options[] = {
	"listen", "upstream", "seed", "queue-max", "max-clients", "port-file", "log-level",
};

static bool is_global_option(const char *name)
{
	for (size_t i = 0; i < sizeof(global_options) / sizeof(global_options[0]); i++)
		if (strcmp(name, global_options[i]) == 0)
			return true;
	return false;
}

/* Applies one option, "--name value" or "--name=value", starting at argv[*i]; advances *i
 * past a separate value. Errors: QS_EINVAL after printing why. */
static int parse_option(struct config *cfg, int argc, char **argv, int *i)
{
	const char *body = argv[*i] + 2;
	const char *eq = strchr(body, '=');
	size_t n = eq != NULL ? (size_t)(eq - body) : strlen(body);
	char name[64];
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, body, n);
	name[n] = '\0';
	enum dopt o;
	bool dirs[DIR_COUNT];
	bool is_dopt = match_dopt(name, &o, dirs);
	if (!is_dopt && !is_global_option(name)) {
		fprintf(stderr, "qs-impair: unknown option --%s (see qs-impair --help)\n", name);
		return QS_EINVAL;
	}
	const char *value = eq != NULL ? eq + 1 : NULL;
	if (value == NULL && *i + 1 < argc)
		value = argv[++*i];
	if (value == NULL) {
		fprintf(stderr, "qs-impair: option --%s needs a value\n", name);
		return QS_EINVAL;
	}
	if (!is_dopt)
		return apply_global(cfg, name, value);
	char opt[80];
	snprintf(opt, sizeof(opt), "--%s", name);
	uint64_t x;
	int rc = parse_dopt_value(opt, &dopt_specs[o], value, &x);
	if (rc != 0)
		return QS_EINVAL;
	for (size_t d = 0; d < DIR_COUNT; d++)
		if (dirs[d])
			cfg->dir[d][o] = x;
	return 0;
}

/* Returns 0 to run, 1 after --help, or QS_EINVAL after printing why the arguments are bad. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
	config_defaults(cfg);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			return 1;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			fprintf(stderr,
				"qs-impair: unexpected argument \"%s\" (see qs-impair --help)\n",
				arg);
			return QS_EINVAL;
		}
		if (parse_option(cfg, argc, argv, &i) != 0)
			return QS_EINVAL;
	}
	if (!cfg->has_upstream) {
		fprintf(stderr, "qs-impair: --upstream is required (the server, e.g. --upstream "
				"127.0.0.1:6122)\n");
		return QS_EINVAL;
	}
	return 0;
}

/* ---- delay heap and hold list ---- */

static bool pkt_before(const struct pkt *a, const struct pkt *b)
{
	return a->due_ns != b->due_ns ? a->due_ns < b->due_ns : a->seq < b->seq;
}

static void heap_push(struct proxy *p, struct pkt *k)
{
	size_t i = p->heap_len++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!pkt_before(k, p->heap[parent]))
			break;
		p->heap[i] = p->heap[parent];
		i = parent;
	}
	p->heap[i] = k;
}

static struct pkt *heap_pop(struct proxy *p)
{
	struct pkt *top = p->heap[0];
	struct pkt *last = p->heap[--p->heap_len];
	size_t i = 0;
	size_t n = p->heap_len;
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= n)
			break;
		if (child + 1 < n && pkt_before(p->heap[child + 1], p->heap[child]))
			child++;
		if (!pkt_before(p->heap[child], last))
			break;
		p->heap[i] = p->heap[child];
		i = child;
	}
	if (n > 0)
		p->heap[i] = last;
	return top;
}

static size_t queued(const struct proxy *p)
{
	return p->heap_len + p->hold_len;
}

static struct pkt *pkt_new(enum dir dir, const struct session *s, uint32_t session_idx,
			   const unsigned char *data, size_t len, uint64_t jitter_draw)
{
	size_t size;
	if (!qs_size_add(sizeof(struct pkt), len, &size))
		return NULL;
	struct pkt *k = qs_malloc(size);
	if (k == NULL)
		return NULL;
	memset(k, 0, sizeof(*k));
	k->dir = dir;
	k->session_gen = s->gen;
	k->session_idx = session_idx;
	k->jitter_draw = jitter_draw;
	k->len = len;
	memcpy(k->data, data, len);
	return k;
}

/* ---- sending ---- */

static void log_send_error(struct proxy *p, enum dir dir, int err)
{
	if (qs_ratelimit_allow(&p->err_limit, now_ns()))
		qs_warn(MODULE, "event=send_failed dir=%s err=\"%s\"", dir_names[dir],
			strerror(err));
}

/* Sends one datagram to its destination and counts it. */
static void emit(struct proxy *p, enum dir dir, uint32_t session_idx, uint64_t gen,
		 const unsigned char *data, size_t len)
{
	uint64_t *st = p->dirs[dir].stats;
	const struct session *s = &p->sessions[session_idx];
	if (s->fd < 0 || s->gen != gen) {
		st[ST_STALE]++;
		return;
	}
	ssize_t n;
	if (dir == DIR_C2S)
		n = send(s->fd, data, len, MSG_DONTWAIT);
	else
		n = sendto(p->listen_fd, data, len, MSG_DONTWAIT,
			   (const struct sockaddr *)&s->client, s->client_len);
	if (n < 0 || (size_t)n != len) {
		st[ST_SEND_ERRORS]++;
		log_send_error(p, dir, n < 0 ? errno : EMSGSIZE);
		return;
	}
	st[ST_FORWARDED]++;
}

static uint64_t delay_ns(const struct dir_state *d, uint64_t jitter_draw)
{
	uint64_t base = d->conf[DOPT_DELAY_MS] * NS_PER_MS;
	uint64_t jitter = d->conf[DOPT_JITTER_MS] * NS_PER_MS;
	if (jitter == 0)
		return base;
	uint64_t offset = jitter_draw % (2 * jitter + 1); /* [0, 2J] stands for [-J, +J] */
	return base + offset >= jitter ? base + offset - jitter : 0;
}

/* Sends a datagram now or queues it for its due time. Takes ownership of k when it is not
 * NULL; otherwise copies data if it must be queued. */
static void schedule(struct proxy *p, enum dir dir, uint32_t session_idx, uint64_t gen,
		     const unsigned char *data, size_t len, uint64_t jitter_draw, struct pkt *k,
		     uint64_t now)
{
	struct dir_state *d = &p->dirs[dir];
	if (d->immediate) {
		emit(p, dir, session_idx, gen, data, len);
		qs_free(k);
		return;
	}
	if (queued(p) >= p->cfg.queue_max) {
		d->stats[ST_OVERFLOW]++;
		qs_free(k);
		return;
	}
	if (k == NULL)
		k = pkt_new(dir, &p->sessions[session_idx], session_idx, data, len, jitter_draw);
	if (k == NULL) {
		d->stats[ST_OVERFLOW]++;
		qs_error(MODULE, "event=alloc_failed bytes=%zu", len);
		return;
	}
	uint64_t start = now;
	uint64_t rate_kbit = d->conf[DOPT_RATE_KBIT];
	if (rate_kbit != 0) {
		/* A bottleneck link: serialization time, then the propagation delay. */
		if (d->link_free_ns > start)
			start = d->link_free_ns;
		start += (uint64_t)len * 8 * UINT64_C(1000000) / rate_kbit;
		d->link_free_ns = start;
	}
	k->due_ns = start + delay_ns(d, jitter_draw);
	k->seq = p->next_seq++;
	heap_push(p, k);
}

/* Releases the held datagram at index i of the hold list into the schedule. */
static void release_hold(struct proxy *p, size_t i, uint64_t now)
{
	struct pkt *k = p->holds[i];
	memmove(&p->holds[i], &p->holds[i + 1], (p->hold_len - i - 1) * sizeof(p->holds[0]));
	p->hold_len--;
	schedule(p, k->dir, k->session_idx, k->session_gen, k->data, k->len, k->jitter_draw, k,
		 now);
}

/* Counts one more datagram past the first `limit` holds of (dir, session) and releases
 * those that have waited for enough of them. */
static void advance_holds(struct proxy *p, enum dir dir, uint32_t session_idx, uint64_t gen,
			  size_t limit, uint64_t now)
{
	size_t i = 0;
	while (i < limit && i < p->hold_len) {
		struct pkt *k = p->holds[i];
		if (k->dir == dir && k->session_idx == session_idx && k->session_gen == gen &&
		    --k->gap_left == 0) {
			release_hold(p, i, now);
			limit--;
			continue;
		}
		i++;
	}
}

static void release_expired_holds(struct proxy *p, uint64_t now)
{
	size_t i = 0;
	while (i < p->hold_len) {
		if (p->holds[i]->due_ns <= now) {
			release_hold(p, i, now);
			continue;
		}
		i++;
	}
}

/* Holds a copy of the datagram back; false when there is no room (it is then not held). */
static bool hold(struct proxy *p, enum dir dir, uint32_t session_idx, const unsigned char *data,
		 size_t len, uint64_t jitter_draw, uint64_t now)
{
	const struct dir_state *d = &p->dirs[dir];
	if (p->hold_len == HOLD_MAX || queued(p) >= p->cfg.queue_max)
		return false;
	struct pkt *k =
		pkt_new(dir, &p->sessions[session_idx], session_idx, data, len, jitter_draw);
	if (k == NULL)
		return false;
	k->due_ns = now + d->conf[DOPT_REORDER_MS] * NS_PER_MS;
	k->gap_left = (uint32_t)d->conf[DOPT_REORDER_GAP];
	p->holds[p->hold_len++] = k;
	return true;
}

static void flush_due(struct proxy *p, uint64_t now)
{
	while (p->heap_len > 0 && p->heap[0]->due_ns <= now) {
		struct pkt *k = heap_pop(p);
		emit(p, k->dir, k->session_idx, k->session_gen, k->data, k->len);
		qs_free(k);
	}
}

/* ---- the impairment pipeline ---- */

static void decide(struct dir_state *d, size_t len, struct verdict *v)
{
	uint64_t r[8];
	for (size_t i = 0; i < 8; i++)
		r[i] = rng_next(&d->rng);
	v->drop = chance(r[0], d->conf[DOPT_DROP]);
	v->dup = chance(r[1], d->conf[DOPT_DUP]);
	v->hold = chance(r[2], d->conf[DOPT_REORDER]);
	v->corrupt = len > 0 && chance(r[3], d->conf[DOPT_CORRUPT]);
	v->corrupt_at = len > 0 ? (size_t)(r[4] % len) : 0;
	v->corrupt_mask = (unsigned char)(1 + r[5] % 255);
	v->jitter_draw[0] = r[6];
	v->jitter_draw[1] = r[7];
}

/* Runs one received datagram through drop, corrupt, duplicate and reorder, in that order.
 * data is a receive buffer and may be modified. */
static void process(struct proxy *p, enum dir dir, uint32_t session_idx, unsigned char *data,
		    size_t len, uint64_t now)
{
	struct dir_state *d = &p->dirs[dir];
	uint64_t gen = p->sessions[session_idx].gen;
	struct verdict v;
	d->stats[ST_RECEIVED]++;
	decide(d, len, &v);
	if (v.drop) {
		d->stats[ST_DROPPED]++;
		return;
	}
	if (v.corrupt) {
		data[v.corrupt_at] ^= v.corrupt_mask;
		d->stats[ST_CORRUPTED]++;
	}
	size_t older_holds = p->hold_len;
	if (v.hold && hold(p, dir, session_idx, data, len, v.jitter_draw[0], now))
		d->stats[ST_REORDERED]++;
	else
		schedule(p, dir, session_idx, gen, data, len, v.jitter_draw[0], NULL, now);
	if (v.dup) {
		d->stats[ST_DUPLICATED]++;
		schedule(p, dir, session_idx, gen, data, len, v.jitter_draw[1], NULL, now);
	}
	advance_holds(p, dir, session_idx, gen, older_holds, now);
}

/* ---- sockets and sessions ---- */

static void set_buffers(int fd)
{
	int size = SOCK_BUF_BYTES;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

static bool addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* Formats an address as "IPV4:PORT" or "[IPV6]:PORT". */
static void format_addr(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
		port = ntohs(a6->sin6_port);
		snprintf(out, size, "[%s]:%u", host, port);
		return;
	}
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
	inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
	port = ntohs(a4->sin_port);
	snprintf(out, size, "%s:%u", host, port);
}

static void session_close(struct proxy *p, uint32_t idx)
{
	struct session *s = &p->sessions[idx];
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Picks a free slot, or evicts the session idle the longest. */
static uint32_t session_slot(struct proxy *p)
{
	uint32_t idlest = 0;
	for (uint32_t i = 0; i < p->cfg.max_clients; i++) {
		if (p->sessions[i].fd < 0)
			return i;
		if (p->sessions[i].last_active_ns < p->sessions[idlest].last_active_ns)
			idlest = i;
	}
	char text[64];
	format_addr(&p->sessions[idlest].client, text, sizeof(text));
	qs_info(MODULE, "event=session_evicted client=%s", text);
	session_close(p, idlest);
	p->sessions_evicted++;
	return idlest;
}

/* Finds the session of a client, opening one (with its own upstream socket) for a new
 * client. Errors: QS_EIO (the upstream socket could not be made). */
static int session_find(struct proxy *p, const struct sockaddr_storage *client,
			socklen_t client_len, uint64_t now, uint32_t *out)
{
	for (uint32_t i = 0; i < p->cfg.max_clients; i++) {
		if (p->sessions[i].fd >= 0 && addr_equal(&p->sessions[i].client, client)) {
			*out = i;
			return 0;
		}
	}
	int fd = socket(p->cfg.upstream_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (fd < 0 ||
	    connect(fd, (const struct sockaddr *)&p->cfg.upstream_addr, p->cfg.upstream_len) != 0) {
		int err = errno;
		if (fd >= 0)
			close(fd);
		qs_error(MODULE, "event=upstream_socket_failed err=\"%s\"", strerror(err));
		return QS_EIO;
	}
	set_buffers(fd);
	uint32_t idx = session_slot(p);
	struct session *s = &p->sessions[idx];
	s->client = *client;
	s->client_len = client_len;
	s->fd = fd;
	s->gen = ++p->next_gen;
	s->last_active_ns = now;
	p->sessions_opened++;
	char text[64];
	format_addr(client, text, sizeof(text));
	qs_info(MODULE, "event=session_opened client=%s", text);
	*out = idx;
	return 0;
}

/* Reads a batch of datagrams from fd into the receive buffers. Returns how many (0 when
 * none are waiting or on an error that was logged). */
static unsigned recv_batch(struct proxy *p, int fd, bool want_names)
{
	for (size_t i = 0; i < RECV_BATCH; i++) {
		struct msghdr *h = &p->msgs[i].msg_hdr;
		memset(h, 0, sizeof(*h));
		p->iovs[i].iov_base = p->bufs[i];
		p->iovs[i].iov_len = DGRAM_MAX;
		h->msg_iov = &p->iovs[i];
		h->msg_iovlen = 1;
		if (want_names) {
			h->msg_name = &p->names[i];
			h->msg_namelen = sizeof(p->names[i]);
		}
	}
	int n = recvmmsg(fd, p->msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		int err = errno;
		/* ECONNREFUSED: an ICMP error for an earlier send; reading clears it. */
		if (err != EAGAIN && err != EWOULDBLOCK && err != ECONNREFUSED &&
		    qs_ratelimit_allow(&p->err_limit, now_ns()))
			qs_warn(MODULE, "event=recv_failed err=\"%s\"", strerror(err));
		return 0;
	}
	return (unsigned)n;
}

static void read_clients(struct proxy *p)
{
	for (int round = 0; round < RECV_ROUNDS; round++) {
		unsigned n = recv_batch(p, p->listen_fd, true);
		uint64_t now = now_ns();
		for (unsigned i = 0; i < n; i++) {
			uint32_t idx;
			if (session_find(p, &p->names[i], p->msgs[i].msg_hdr.msg_namelen, now,
					 &idx) != 0) {
				p->dirs[DIR_C2S].stats[ST_RECEIVED]++;
				p->dirs[DIR_C2S].stats[ST_SEND_ERRORS]++;
				continue;
			}
			p->sessions[idx].last_active_ns = now;
			process(p, DIR_C2S, idx, p->bufs[i], p->msgs[i].msg_len, now);
		}
		if (n < RECV_BATCH)
			break;
	}
}

static void read_upstream(struct proxy *p, uint32_t idx)
{
	for (int round = 0; round < RECV_ROUNDS; round++) {
		unsigned n = recv_batch(p, p->sessions[idx].fd, false);
		uint64_t now = now_ns();
		for (unsigned i = 0; i < n; i++) {
			p->sessions[idx].last_active_ns = now;
			process(p, DIR_S2C, idx, p->bufs[i], p->msgs[i].msg_len, now);
		}
		if (n < RECV_BATCH)
			break;
	}
}

/* ---- set-up, loop, report ---- */

static void print_stats(const struct proxy *p)
{
	for (size_t d = 0; d < DIR_COUNT; d++) {
		size_t pending = 0;
		for (size_t i = 0; i < p->heap_len; i++)
			if (p->heap[i]->dir == (enum dir)d)
				pending++;
		for (size_t i = 0; i < p->hold_len; i++)
			if (p->holds[i]->dir == (enum dir)d)
				pending++;
		printf("stats dir=%s", dir_names[d]);
		for (size_t s = 0; s < ST_COUNT; s++)
			printf(" %s=%" PRIu64, stat_names[s], p->dirs[d].stats[s]);
		printf(" pending=%zu\n", pending);
	}
	printf("stats sessions_opened=%" PRIu64 " sessions_evicted=%" PRIu64 "\n",
	       p->sessions_opened, p->sessions_evicted);
	fflush(stdout);
}

/* Writes the port to path through a temporary file and a rename, so a reader never sees a
 * partial number. Errors: QS_E2BIG (path too long), QS_EIO. */
static int write_port_file(const char *path, unsigned port)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return QS_E2BIG;
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return QS_EIO;
	bool ok = fprintf(f, "%u\n", port) > 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return QS_EIO;
	}
	return 0;
}

/* Binds the listening socket and announces the bound address. Errors: QS_EIO. */
static int open_listener(struct proxy *p)
{
	const struct config *cfg = &p->cfg;
	int fd = socket(cfg->listen_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		qs_error(MODULE, "event=socket_failed err=\"%s\"", strerror(errno));
		return QS_EIO;
	}
	p->listen_fd = fd;
	int one = 1;
	if (cfg->listen_addr.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	set_buffers(fd);
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	char text[64];
	if (bind(fd, (const struct sockaddr *)&cfg->listen_addr, cfg->listen_len) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
		format_addr(&cfg->listen_addr, text, sizeof(text));
		qs_error(MODULE, "event=bind_failed addr=%s err=\"%s\"", text, strerror(errno));
		return QS_EIO;
	}
	unsigned port = bound.ss_family == AF_INET6
				? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
				: ntohs(((struct sockaddr_in *)&bound)->sin_port);
	if (cfg->port_file != NULL && write_port_file(cfg->port_file, port) != 0) {
		qs_error(MODULE, "event=port_file_failed path=%s", cfg->port_file);
		return QS_EIO;
	}
	/* After the port file, so a reader of either finds both. */
	format_addr(&bound, text, sizeof(text));
	printf("listening %s\n", text);
	fflush(stdout);
	return 0;
}

static int proxy_init(struct proxy *p, const struct config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = *cfg;
	p->listen_fd = -1;
	qs_ratelimit_init(&p->err_limit, UINT64_C(1000000000), 10);
	size_t clients = (size_t)cfg->max_clients;
	p->sessions = qs_calloc(clients, sizeof(p->sessions[0]));
	p->heap = qs_calloc((size_t)cfg->queue_max, sizeof(p->heap[0]));
	p->pfds = qs_calloc(clients + 1, sizeof(p->pfds[0]));
	p->pfd_session = qs_calloc(clients + 1, sizeof(p->pfd_session[0]));
	p->bufs = qs_calloc(RECV_BATCH, sizeof(p->bufs[0]));
	if (p->sessions == NULL || p->heap == NULL || p->pfds == NULL || p->pfd_session == NULL ||
	    p->bufs == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < clients; i++)
		p->sessions[i].fd = -1;
	for (size_t d = 0; d < DIR_COUNT; d++) {
		struct dir_state *ds = &p->dirs[d];
		ds->conf = p->cfg.dir[d];
		ds->immediate = ds->conf[DOPT_DELAY_MS] == 0 && ds->conf[DOPT_JITTER_MS] == 0 &&
				ds->conf[DOPT_RATE_KBIT] == 0;
		/* Each direction has its own stream, so one side's traffic cannot shift the
		 * other's choices. */
		rng_seed(&ds->rng, cfg->seed ^ (UINT64_C(0x5851f42d4c957f2d) * (d + 1)));
	}
	return open_listener(p);
}

static void proxy_release(struct proxy *p)
{
	if (p->sessions != NULL)
		for (uint32_t i = 0; i < p->cfg.max_clients; i++)
			session_close(p, i);
	for (size_t i = 0; i < p->heap_len; i++)
		qs_free(p->heap[i]);
	for (size_t i = 0; i < p->hold_len; i++)
		qs_free(p->holds[i]);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	qs_free(p->sessions);
	qs_free(p->heap);
	qs_free(p->pfds);
	qs_free(p->pfd_session);
	qs_free(p->bufs);
}

/* The earliest moment a queued or held datagram is due, or UINT64_MAX. */
static uint64_t next_deadline(const struct proxy *p)
{
	uint64_t next = p->heap_len > 0 ? p->heap[0]->due_ns : UINT64_MAX;
	for (size_t i = 0; i < p->hold_len; i++)
		if (p->holds[i]->due_ns < next)
			next = p->holds[i]->due_ns;
	return next;
}

static nfds_t build_pollfds(struct proxy *p)
{
	nfds_t n = 1;
	p->pfds[0] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
	for (uint32_t i = 0; i < p->cfg.max_clients; i++) {
		if (p->sessions[i].fd < 0)
			continue;
		p->pfds[n] = (struct pollfd){.fd = p->sessions[i].fd, .events = POLLIN};
		p->pfd_session[n] = i;
		n++;
	}
	return n;
}

/* Runs until SIGINT or SIGTERM. Signals are blocked except inside ppoll, so none is lost
 * between the check and the wait. */
static int proxy_run(struct proxy *p, const sigset_t *wait_mask)
{
	for (;;) {
		if (stop_requested)
			return 0;
		if (stats_requested) {
			stats_requested = 0;
			print_stats(p);
		}
		uint64_t now = now_ns();
		release_expired_holds(p, now);
		flush_due(p, now);
		uint64_t next = next_deadline(p);
		struct timespec ts;
		struct timespec *tsp = NULL;
		if (next != UINT64_MAX) {
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / UINT64_C(1000000000));
			ts.tv_nsec = (long)(wait % UINT64_C(1000000000));
			tsp = &ts;
		}
		nfds_t n = build_pollfds(p);
		if (ppoll(p->pfds, n, tsp, wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			qs_error(MODULE, "event=poll_failed err=\"%s\"", strerror(errno));
			return QS_EIO;
		}
		/* Upstream sockets first: reading clients may evict a session and close its fd. */
		for (nfds_t i = 1; i < n; i++)
			if (p->pfds[i].revents != 0)
				read_upstream(p, p->pfd_session[i]);
		if (p->pfds[0].revents != 0)
			read_clients(p);
	}
}

static int install_signals(sigset_t *wait_mask)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &block, wait_mask) != 0)
		return QS_EIO;
	sigdelset(wait_mask, SIGINT);
	sigdelset(wait_mask, SIGTERM);
	sigdelset(wait_mask, SIGUSR1);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGUSR1, &sa, NULL) != 0)
		return QS_EIO;
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	qs_log_set_level(QS_LOG_WARN);
	int rc = parse_args(argc, argv, &cfg);
	if (rc == 1)
		return 0;
	if (rc != 0)
		return EXIT_USAGE;
	sigset_t wait_mask;
	if (install_signals(&wait_mask) != 0) {
		qs_error(MODULE, "event=signal_setup_failed");
		return 1;
	}
	struct proxy p;
	rc = proxy_init(&p, &cfg);
	if (rc == 0) {
		char up[64];
		format_addr(&cfg.upstream_addr, up, sizeof(up));
		qs_info(MODULE, "event=started upstream=%s seed=%" PRIu64, up, cfg.seed);
		rc = proxy_run(&p, &wait_mask);
		print_stats(&p);
	} else if (rc == QS_ENOMEM) {
		qs_error(MODULE, "event=alloc_failed");
	}
	proxy_release(&p);
	return rc == 0 ? 0 : 1;
}

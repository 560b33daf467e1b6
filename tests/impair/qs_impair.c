/* qs-impair: a UDP impairment proxy for loopback tests of the QUIC transport (see
 * docs/impair.md). This file is the socket side: one listening socket for every client,
 * one connected upstream socket per client (so each reply finds its client), and a single
 * ppoll loop on the monotonic clock that feeds the engine (impair_engine.c) and sends what
 * it emits. Owns all sockets; sessions live in a fixed table of --max-clients slots. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "impair.h"

#define MODULE "impair"
#define DGRAM_MAX 65536 /* larger than any UDP payload, so nothing is truncated */
#define RECV_BATCH 16
#define RECV_ROUNDS 4 /* batches per socket per wakeup, so no socket starves the rest */
#define SOCK_BUF_BYTES (4 * 1024 * 1024)
#define EXIT_USAGE 2

/* A client and its upstream socket. fd < 0 marks a free slot; gen tells a reused slot from
 * the session a queued datagram was meant for. */
struct session {
	struct sockaddr_storage client;
	socklen_t client_len;
	int fd;
	uint64_t gen;
	uint64_t last_active_ns;
};

struct proxy {
	struct qs_impair_config cfg;
	struct qs_impair_engine engine;
	bool has_engine;
	int listen_fd;
	struct session *sessions; /* cfg.max_clients slots */
	uint64_t next_gen;
	uint64_t sessions_opened, sessions_evicted;
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

/* The engine's emit callback: sends towards the server (the session's connected socket) or
 * the client (from the listening socket). */
static enum qs_impair_sent emit(void *arg, enum qs_impair_dir dir, uint32_t session_idx,
				uint64_t session_gen, const unsigned char *data, size_t len)
{
	struct proxy *p = arg;
	const struct session *s = &p->sessions[session_idx];
	if (s->fd < 0 || s->gen != session_gen)
		return QS_IMPAIR_SESSION_GONE;
	ssize_t n;
	if (dir == QS_IMPAIR_C2S)
		n = send(s->fd, data, len, MSG_DONTWAIT);
	else
		n = sendto(p->listen_fd, data, len, MSG_DONTWAIT,
			   (const struct sockaddr *)&s->client, s->client_len);
	if (n < 0 || (size_t)n != len) {
		int err = n < 0 ? errno : EMSGSIZE;
		if (qs_ratelimit_allow(&p->err_limit, now_ns()))
			qs_warn(MODULE, "event=send_failed dir=%s err=\"%s\"",
				qs_impair_dir_names[dir], strerror(err));
		return QS_IMPAIR_SEND_FAILED;
	}
	return QS_IMPAIR_SENT;
}

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
				uint64_t *st = p->engine.dirs[QS_IMPAIR_C2S].stats;
				st[QS_IMPAIR_RECEIVED]++;
				st[QS_IMPAIR_SEND_ERRORS]++;
				continue;
			}
			struct session *s = &p->sessions[idx];
			s->last_active_ns = now;
			qs_impair_input(&p->engine, QS_IMPAIR_C2S, idx, s->gen, p->bufs[i],
					p->msgs[i].msg_len, now);
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
		struct session *s = &p->sessions[idx];
		for (unsigned i = 0; i < n; i++) {
			s->last_active_ns = now;
			qs_impair_input(&p->engine, QS_IMPAIR_S2C, idx, s->gen, p->bufs[i],
					p->msgs[i].msg_len, now);
		}
		if (n < RECV_BATCH)
			break;
	}
}

/* ---- set-up, loop, report ---- */

static void print_stats(const struct proxy *p)
{
	for (size_t d = 0; d < QS_IMPAIR_DIRS; d++) {
		printf("stats dir=%s", qs_impair_dir_names[d]);
		for (size_t s = 0; s < QS_IMPAIR_STATS; s++)
			printf(" %s=%" PRIu64, qs_impair_stat_names[s], p->engine.dirs[d].stats[s]);
		printf(" pending=%zu\n", qs_impair_pending(&p->engine, (enum qs_impair_dir)d));
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
	const struct qs_impair_config *cfg = &p->cfg;
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

/* Errors: QS_ENOMEM, QS_EIO (the listening socket or the port file). */
static int proxy_init(struct proxy *p, const struct qs_impair_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->cfg = *cfg;
	p->listen_fd = -1;
	qs_ratelimit_init(&p->err_limit, UINT64_C(1000000000), 10);
	size_t clients = (size_t)cfg->max_clients;
	p->sessions = qs_calloc(clients, sizeof(p->sessions[0]));
	p->pfds = qs_calloc(clients + 1, sizeof(p->pfds[0]));
	p->pfd_session = qs_calloc(clients + 1, sizeof(p->pfd_session[0]));
	p->bufs = qs_calloc(RECV_BATCH, sizeof(p->bufs[0]));
	if (p->sessions == NULL || p->pfds == NULL || p->pfd_session == NULL || p->bufs == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < clients; i++)
		p->sessions[i].fd = -1;
	int rc = qs_impair_engine_init(&p->engine, cfg, emit, p);
	if (rc != 0)
		return rc;
	p->has_engine = true;
	return open_listener(p);
}

static void proxy_release(struct proxy *p)
{
	if (p->sessions != NULL)
		for (uint32_t i = 0; i < p->cfg.max_clients; i++)
			session_close(p, i);
	if (p->has_engine)
		qs_impair_engine_release(&p->engine);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	qs_free(p->sessions);
	qs_free(p->pfds);
	qs_free(p->pfd_session);
	qs_free(p->bufs);
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
		qs_impair_tick(&p->engine, now);
		uint64_t next = qs_impair_next_ns(&p->engine);
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
	struct qs_impair_config cfg;
	qs_log_set_level(QS_LOG_WARN);
	int rc = qs_impair_parse_args(argc, argv, &cfg);
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

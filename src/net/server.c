/* QUIC server endpoint: one UDP socket, a routing table from connection IDs to conns,
 * stateless handling of packets that belong to no connection (version negotiation, Retry
 * address validation, stateless reset, refusal over the per-address limit), graceful
 * shutdown. Owns its conns; frees each after its on_conn_close. */
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/conn.h"
#include "net/quic.h"

#define SERVER_SCID_LEN 18
#define RETRY_TOKEN_TIMEOUT_NS (10ULL * NGTCP2_SECONDS)

struct cid_entry {
	struct cid_entry *next;
	ngtcp2_cid cid;
	struct qs_conn *conn;
};

struct qs_quic_server {
	struct qs_endpoint ep; /* first: conns reach the server through their ep */
	struct qs_quic_server_config cfg;
	struct qs_tls_identity id;
	uv_poll_t poll;
	uv_prepare_t prep;
	uv_timer_t sweep; /* stalled transactions (limits.stall_timeout_ms) */
	struct qs_udp_rx rx;
	struct cid_entry **buckets;
	size_t nbuckets, nentries;
	struct qs_conn *conns;
	struct qs_quic_server_stats stats;
	struct qs_ratelimit log_rl;
	bool shutting_down, want_write;
	int handles_open;
	void (*done)(void *arg);
	void *done_arg;
};

void qs_quic_server_config_default(struct qs_quic_server_config *c)
{
	memset(c, 0, sizeof(*c));
	c->addr = "0.0.0.0";
	c->port = 6122;
	c->validate_addr = true;
	c->max_conns_per_ip = 64;
	qs_quic_limits_default(&c->limits);
	c->limits.stall_timeout_ms = 60000;
}

/* ---- connection ID table ----------------------------------------------------------------- */

static size_t cid_hash(const ngtcp2_cid *cid)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < cid->datalen; i++)
		h = (h ^ cid->data[i]) * 1099511628211ULL;
	return (size_t)h;
}

static bool cid_eq(const ngtcp2_cid *a, const ngtcp2_cid *b)
{
	return a->datalen == b->datalen && memcmp(a->data, b->data, a->datalen) == 0;
}

static struct qs_conn *cid_find(struct qs_quic_server *s, const uint8_t *p, size_t len)
{
	ngtcp2_cid key;
	if (len > NGTCP2_MAX_CIDLEN)
		return NULL;
	ngtcp2_cid_init(&key, p, len);
	for (struct cid_entry *e = s->buckets[cid_hash(&key) & (s->nbuckets - 1)]; e; e = e->next)
		if (cid_eq(&e->cid, &key))
			return e->conn;
	return NULL;
}

static int cid_grow(struct qs_quic_server *s)
{
	size_t n = s->nbuckets * 2;
	struct cid_entry **b = qs_calloc(n, sizeof(*b));
	if (b == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cid_entry *e = s->buckets[i];
		while (e != NULL) {
			struct cid_entry *next = e->next;
			size_t h = cid_hash(&e->cid) & (n - 1);
			e->next = b[h];
			b[h] = e;
			e = next;
		}
	}
	qs_free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
	return 0;
}

static int server_cid_add(struct qs_endpoint *ep, const ngtcp2_cid *cid, struct qs_conn *conn)
{
	struct qs_quic_server *s = (struct qs_quic_server *)ep;
	if (cid_find(s, cid->data, cid->datalen) != NULL)
		return 0;
	if (s->nentries >= s->nbuckets && cid_grow(s) != 0)
		return QS_ENOMEM;
	struct cid_entry *e = qs_calloc(1, sizeof(*e));
	if (e == NULL)
		return QS_ENOMEM;
	e->cid = *cid;
	e->conn = conn;
	size_t h = cid_hash(cid) & (s->nbuckets - 1);
	e->next = s->buckets[h];
	s->buckets[h] = e;
	s->nentries++;
	return 0;
}

static void server_cid_remove(struct qs_endpoint *ep, const ngtcp2_cid *cid)
{
	struct qs_quic_server *s = (struct qs_quic_server *)ep;
	struct cid_entry **pp = &s->buckets[cid_hash(cid) & (s->nbuckets - 1)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (cid_eq(&(*pp)->cid, cid)) {
			struct cid_entry *e = *pp;
			*pp = e->next;
			qs_free(e);
			s->nentries--;
			return;
		}
	}
}

static void cid_remove_conn(struct qs_quic_server *s, struct qs_conn *c)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cid_entry **pp = &s->buckets[i];
		while (*pp != NULL) {
			if ((*pp)->conn == c) {
				struct cid_entry *e = *pp;
				*pp = e->next;
				qs_free(e);
				s->nentries--;
			} else {
				pp = &(*pp)->next;
			}
		}
	}
}

/* ---- endpoint callbacks ------------------------------------------------------------------- */

static void server_established(struct qs_endpoint *ep, struct qs_conn *c)
{
	struct qs_quic_server *s = (struct qs_quic_server *)ep;
	s->stats.conns_accepted++;
	qs_info("quic", "event=conn_open peer=%s", c->peer);
	if (s->cfg.on_conn_open != NULL)
		s->cfg.on_conn_open(c, s->cfg.arg);
}

static void server_closed(struct qs_endpoint *ep, struct qs_conn *c, int err)
{
	struct qs_quic_server *s = (struct qs_quic_server *)ep;
	if (c->established) {
		qs_info("quic", "event=conn_close peer=%s err=%s", c->peer, qs_strerror(err));
		if (s->cfg.on_conn_close != NULL)
			s->cfg.on_conn_close(c, err, s->cfg.arg);
	}
	cid_remove_conn(s, c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->stats.conns_open--;
	qs_conn_free(c);
}

static void server_update_poll(struct qs_quic_server *s);

static void server_want_write(struct qs_endpoint *ep)
{
	struct qs_quic_server *s = (struct qs_quic_server *)ep;
	s->want_write = true;
	server_update_poll(s);
}

static const struct qs_endpoint_ops server_ops = {
	.cid_add = server_cid_add,
	.cid_remove = server_cid_remove,
	.established = server_established,
	.closed = server_closed,
	.want_write = server_want_write,
};

/* ---- stateless replies -------------------------------------------------------------------- */

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

static void send_to(struct qs_quic_server *s, const uint8_t *p, size_t len,
		    const struct sockaddr *to, socklen_t to_len)
{
	size_t sent;
	if (qs_udp_send(&s->ep.udp, to, to_len, p, len, len, &sent) == 0)
		s->stats.datagrams_out++;
}

static void send_version_negotiation(struct qs_quic_server *s, const ngtcp2_version_cid *vc,
				     const struct sockaddr *to, socklen_t to_len)
{
	uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
	uint32_t versions[2];
	uint8_t r;
	(void)gnutls_rnd(GNUTLS_RND_NONCE, &r, 1);
	versions[0] = 0x1a2a3a4aU; /* a reserved version, to exercise clients (RFC 9000 6.3) */
	versions[1] = NGTCP2_PROTO_VER_V1;
	ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(
		buf, sizeof(buf), r, vc->scid, vc->scidlen, vc->dcid, vc->dcidlen, versions, 2);
	if (n > 0) {
		send_to(s, buf, (size_t)n, to, to_len);
		s->stats.vn_sent++;
	}
}

static void send_retry(struct qs_quic_server *s, const ngtcp2_pkt_hd *hd, const struct sockaddr *to,
		       socklen_t to_len, size_t max_len)
{
	ngtcp2_cid scid;
	scid.datalen = SERVER_SCID_LEN;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0)
		return;
	uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
	ngtcp2_ssize tl = ngtcp2_crypto_generate_retry_token(token, s->id.secret,
							     sizeof(s->id.secret), hd->version, to,
							     to_len, &scid, &hd->dcid, wall_ns());
	if (tl < 0)
		return;
	uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
	size_t cap = max_len < sizeof(buf) ? max_len : sizeof(buf);
	ngtcp2_ssize n = ngtcp2_crypto_write_retry(buf, cap, hd->version, &hd->scid, &scid,
						   &hd->dcid, token, (size_t)tl);
	if (n > 0) {
		send_to(s, buf, (size_t)n, to, to_len);
		s->stats.retries_sent++;
	}
}

static void send_stateless_close(struct qs_quic_server *s, const ngtcp2_pkt_hd *hd, uint64_t code,
				 const struct sockaddr *to, socklen_t to_len)
{
	uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
	ngtcp2_ssize n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version,
							      &hd->scid, &hd->dcid, code, NULL, 0);
	if (n > 0)
		send_to(s, buf, (size_t)n, to, to_len);
}

/* A short-header packet for an unknown connection: tell the peer its connection is gone
 * (RFC 9000 10.3), smaller than what it sent so two endpoints cannot loop. */
static void send_stateless_reset(struct qs_quic_server *s, const ngtcp2_version_cid *vc,
				 size_t in_len, const struct sockaddr *to, socklen_t to_len)
{
	/* 1 header byte + at least 5 random bytes + the 16-byte token (RFC 9000 10.3). */
	size_t min_len = 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN;
	if (in_len <= min_len)
		return;
	size_t out_len = in_len - 1 < 1200 ? in_len - 1 : 1200;
	ngtcp2_cid dcid;
	ngtcp2_cid_init(&dcid, vc->dcid, vc->dcidlen);
	uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
	if (ngtcp2_crypto_generate_stateless_reset_token(token, s->id.secret, sizeof(s->id.secret),
							 &dcid) != 0)
		return;
	uint8_t rnd[1200];
	size_t rlen = out_len - NGTCP2_STATELESS_RESET_TOKENLEN - 1;
	(void)gnutls_rnd(GNUTLS_RND_NONCE, rnd, rlen);
	uint8_t buf[1200];
	ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rnd, rlen);
	if (n > 0) {
		send_to(s, buf, (size_t)n, to, to_len);
		s->stats.resets_sent++;
	}
}

static unsigned conns_from_host(struct qs_quic_server *s, const struct sockaddr *from)
{
	unsigned n = 0;
	for (struct qs_conn *c = s->conns; c != NULL; c = c->next)
		if (!c->dead && qs_addr_same_host((const struct sockaddr *)&c->remote, from))
			n++;
	return n;
}

/* ---- receiving ---------------------------------------------------------------------------- */

static void server_new_conn(struct qs_quic_server *s, const uint8_t *data, size_t len,
			    const struct sockaddr *from, socklen_t from_len)
{
	ngtcp2_pkt_hd hd;
	if (ngtcp2_accept(&hd, data, len) != 0) {
		s->stats.dropped_in++;
		return;
	}
	ngtcp2_cid ocid;
	const ngtcp2_cid *pocid = NULL;
	if (s->cfg.validate_addr) {
		if (hd.token.len == 0 || hd.token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
			send_retry(s, &hd, from, from_len, len * 3);
			return;
		}
		if (ngtcp2_crypto_verify_retry_token(&ocid, hd.token.base, hd.token.len,
						     s->id.secret, sizeof(s->id.secret), hd.version,
						     from, from_len, &hd.dcid,
						     RETRY_TOKEN_TIMEOUT_NS, wall_ns()) != 0) {
			send_stateless_close(s, &hd, NGTCP2_INVALID_TOKEN, from, from_len);
			s->stats.dropped_in++;
			return;
		}
		pocid = &ocid;
	}
	if (s->cfg.max_conns_per_ip > 0 && conns_from_host(s, from) >= s->cfg.max_conns_per_ip) {
		send_stateless_close(s, &hd, NGTCP2_CONNECTION_REFUSED, from, from_len);
		s->stats.conns_refused++;
		if (qs_ratelimit_allow(&s->log_rl, qs_now_ns())) {
			char a[64];
			qs_addr_format(from, a, sizeof(a));
			qs_warn("quic",
				"event=conn_refused peer=%s reason=per_address_limit limit=%u", a,
				s->cfg.max_conns_per_ip);
		}
		return;
	}
	struct qs_conn *c;
	if (qs_conn_new_server(&s->ep, &s->id, &hd, pocid, from, from_len, &c) != 0) {
		s->stats.dropped_in++;
		return;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->stats.conns_open++;
	qs_conn_read(c, data, len, from, from_len);
}

static void server_datagram(struct qs_quic_server *s, const uint8_t *data, size_t len,
			    const struct sockaddr *from, socklen_t from_len)
{
	s->stats.datagrams_in++;
	ngtcp2_version_cid vc;
	int rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, SERVER_SCID_LEN);
	if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
		send_version_negotiation(s, &vc, from, from_len);
		return;
	}
	if (rv != 0) {
		s->stats.dropped_in++;
		return;
	}
	struct qs_conn *c = cid_find(s, vc.dcid, vc.dcidlen);
	if (c != NULL) {
		qs_conn_read(c, data, len, from, from_len);
		return;
	}
	if (s->shutting_down) {
		s->stats.dropped_in++;
		return;
	}
	if (data[0] & 0x80)
		server_new_conn(s, data, len, from, from_len);
	else
		send_stateless_reset(s, &vc, len, from, from_len);
}

static void server_poll_cb(uv_poll_t *h, int status, int events)
{
	struct qs_quic_server *s = h->data;
	if (status < 0) {
		/* A pending socket error stopped the watch: read it away and watch again. */
		events = UV_READABLE;
		server_update_poll(s);
	}
	if (events & UV_WRITABLE) {
		s->want_write = false;
		for (struct qs_conn *c = s->conns; c != NULL; c = c->next)
			qs_conn_retry_send(c);
		server_update_poll(s);
	}
	if (events & UV_READABLE) {
		/* Bounded work per wake-up so timers and writes are not starved. */
		for (int round = 0; round < 8; round++) {
			size_t n = 0;
			if (qs_udp_recv(&s->ep.udp, &s->rx, &n) != 0 || n == 0)
				break;
			for (size_t i = 0; i < n; i++)
				server_datagram(s, s->rx.d[i].data, s->rx.d[i].len,
						(const struct sockaddr *)&s->rx.d[i].from,
						s->rx.d[i].from_len);
			qs_endpoint_flush(&s->ep);
		}
	}
	qs_endpoint_flush(&s->ep);
}

static void server_update_poll(struct qs_quic_server *s)
{
	if (s->shutting_down && s->conns == NULL)
		return;
	int ev = UV_READABLE | (s->want_write ? UV_WRITABLE : 0);
	uv_poll_start(&s->poll, ev, server_poll_cb);
}

static void server_prepare_cb(uv_prepare_t *h)
{
	struct qs_quic_server *s = h->data;
	qs_endpoint_flush(&s->ep);
}

static void server_sweep_cb(uv_timer_t *h)
{
	struct qs_quic_server *s = h->data;
	uint64_t now = uv_now(s->ep.loop);
	for (struct qs_conn *c = s->conns; c != NULL; c = c->next)
		qs_conn_sweep_stalled(c, now);
	qs_endpoint_flush(&s->ep);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

int qs_quic_server_new(uv_loop_t *loop, const struct qs_quic_server_config *cfg,
		       struct qs_quic_server **out)
{
	struct sockaddr_storage addr;
	socklen_t alen;
	if (qs_addr_parse(cfg->addr, cfg->port, &addr, &alen) != 0)
		return QS_EINVAL;
	struct qs_quic_server *s = qs_calloc(1, sizeof(*s));
	if (s == NULL)
		return QS_ENOMEM;
	s->cfg = *cfg;
	s->cfg.addr = NULL;
	s->cfg.cert_dir = NULL;
	s->nbuckets = 256;
	s->buckets = qs_calloc(s->nbuckets, sizeof(*s->buckets));
	int rc = s->buckets == NULL ? QS_ENOMEM : qs_udp_rx_init(&s->rx);
	if (rc == 0)
		rc = qs_tls_identity_load(cfg->cert_dir, &s->id);
	if (rc != 0) {
		qs_free(s->buckets);
		qs_udp_rx_release(&s->rx);
		qs_free(s);
		return rc;
	}
	rc = qs_udp_open(&s->ep.udp, (const struct sockaddr *)&addr, alen, NULL, 0);
	if (rc != 0) {
		qs_tls_identity_release(&s->id);
		qs_free(s->buckets);
		qs_udp_rx_release(&s->rx);
		qs_free(s);
		return rc;
	}
	s->ep.loop = loop;
	s->ep.ops = &server_ops;
	s->ep.limits = cfg->limits;
	s->ep.on_tx_open = cfg->on_tx_open;
	s->ep.app_arg = cfg->arg;
	s->ep.secret = s->id.secret;
	s->ep.secret_len = sizeof(s->id.secret);
	qs_ratelimit_init(&s->log_rl, 10ULL * 1000000000ULL, 5);
	uv_poll_init(loop, &s->poll, s->ep.udp.fd);
	s->poll.data = s;
	uv_prepare_init(loop, &s->prep);
	s->prep.data = s;
	uv_prepare_start(&s->prep, server_prepare_cb);
	uv_timer_init(loop, &s->sweep);
	s->sweep.data = s;
	uint64_t stall = cfg->limits.stall_timeout_ms;
	if (stall > 0) {
		/* A stalled transaction goes within a quarter period (at most 1 s) after its time.
		 */
		uint64_t every = stall / 4 < 1000 ? (stall / 4 > 10 ? stall / 4 : 10) : 1000;
		uv_timer_start(&s->sweep, server_sweep_cb, every, every);
	}
	s->handles_open = 3;
	server_update_poll(s);
	char a[64];
	qs_addr_format((const struct sockaddr *)&s->ep.udp.local, a, sizeof(a));
	qs_info("quic", "event=listening addr=%s fingerprint=%s gso=%d", a, s->id.fingerprint,
		s->ep.udp.gso);
	*out = s;
	return 0;
}

uint16_t qs_quic_server_port(const struct qs_quic_server *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->ep.udp.local;
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

const char *qs_quic_server_fingerprint(const struct qs_quic_server *s)
{
	return s->id.fingerprint;
}

void qs_quic_server_stats(const struct qs_quic_server *s, struct qs_quic_server_stats *out)
{
	*out = s->stats;
}

void qs_quic_server_bytes(const struct qs_quic_server *s, struct qs_quic_bytes *out)
{
	*out = s->ep.bytes;
}

static void server_handle_closed(uv_handle_t *h)
{
	struct qs_quic_server *s = h->data;
	if (--s->handles_open == 0 && s->done != NULL)
		s->done(s->done_arg);
}

void qs_quic_server_shutdown(struct qs_quic_server *s, void (*done)(void *arg), void *arg)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	s->done = done;
	s->done_arg = arg;
	for (struct qs_conn *c = s->conns; c != NULL; c = c->next)
		qs_conn_close_app(c, QS_QUIC_ERR_SHUTDOWN, 0);
	qs_endpoint_flush(&s->ep);
	uv_close((uv_handle_t *)&s->poll, server_handle_closed);
	uv_close((uv_handle_t *)&s->prep, server_handle_closed);
	uv_close((uv_handle_t *)&s->sweep, server_handle_closed);
}

void qs_quic_server_free(struct qs_quic_server *s)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		server_closed(&s->ep, s->conns, QS_ECONN);
	qs_udp_close(&s->ep.udp);
	qs_udp_rx_release(&s->rx);
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct cid_entry *e = s->buckets[i];
		while (e != NULL) {
			struct cid_entry *next = e->next;
			qs_free(e);
			e = next;
		}
	}
	qs_free(s->buckets);
	qs_tls_identity_release(&s->id);
	qs_free(s);
}

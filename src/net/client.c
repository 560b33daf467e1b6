/* QUIC client endpoint: one connection to the server at a time, over its own connected UDP
 * socket; reconnects after any loss with exponential backoff and jitter, and announces
 * every new connection (on_connected) so the layer above can resynchronize. A certificate
 * that does not match the pinned fingerprint stops it: that needs the user. */
#include <string.h>

#include <gnutls/crypto.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/conn.h"
#include "net/quic.h"

struct client_sock {
	uv_poll_t poll;
	struct qs_quic_client *client;
	int fd;
};

struct qs_quic_client {
	struct qs_endpoint ep; /* first: conns reach the client through their ep */
	struct qs_quic_client_config cfg;
	char *host;
	char *pinned;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	gnutls_certificate_credentials_t cred;
	struct client_sock *sock;
	uv_prepare_t prep;
	uv_timer_t retry;
	struct qs_udp_rx rx;
	struct qs_conn *conn;
	unsigned attempts;
	int last_err;
	char last_msg[256];
	bool stopped, want_write, closing;
	int handles_open;
	void (*done)(void *arg);
	void *done_arg;
};

void qs_quic_client_config_default(struct qs_quic_client_config *c)
{
	memset(c, 0, sizeof(*c));
	c->host = "127.0.0.1";
	c->port = 6122;
	/* A client that moved (NAT rebinding, a new network) is found again at its next
	 * packet; until then the server sends to the old address, backing off. An idle client
	 * pings every 2.5 s, so pushes lost meanwhile are sent again within seconds, not after
	 * a backoff grown past ten (chaos seeds 272, 3010, 5065, 5068, 5540). */
	c->keepalive_ms = 2500;
	c->backoff_min_ms = 100;
	c->backoff_max_ms = 30000;
	c->reconnect = true;
	qs_quic_limits_default(&c->limits);
}

static void client_connect(struct qs_quic_client *cl);

static void sock_closed_cb(uv_handle_t *h)
{
	struct client_sock *cs = h->data;
	struct qs_quic_client *cl = cs->client;
	qs_free(cs);
	if (--cl->handles_open == 0 && cl->done != NULL)
		cl->done(cl->done_arg);
}

static void client_close_sock(struct qs_quic_client *cl)
{
	if (cl->sock == NULL)
		return;
	qs_udp_close(&cl->ep.udp);
	uv_close((uv_handle_t *)&cl->sock->poll, sock_closed_cb);
	cl->sock = NULL;
}

static uint64_t backoff_ms(struct qs_quic_client *cl)
{
	uint64_t d = cl->cfg.backoff_min_ms;
	for (unsigned i = 1; i < cl->attempts && d < cl->cfg.backoff_max_ms; i++)
		d *= 2;
	if (d > cl->cfg.backoff_max_ms)
		d = cl->cfg.backoff_max_ms;
	/* Jitter: a uniform delay in [d/2, d] so clients of a restarted server spread out. */
	uint32_t r = 0;
	(void)gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
	return d / 2 + (d / 2 + 1) * r / UINT32_MAX;
}

static void retry_cb(uv_timer_t *t)
{
	struct qs_quic_client *cl = t->data;
	if (!cl->stopped && cl->conn == NULL)
		client_connect(cl);
}

static void client_established(struct qs_endpoint *ep, struct qs_conn *c)
{
	struct qs_quic_client *cl = (struct qs_quic_client *)ep;
	cl->attempts = 0;
	cl->last_err = 0;
	cl->last_msg[0] = '\0';
	if (cl->cfg.keepalive_ms > 0)
		ngtcp2_conn_set_keep_alive_timeout(c->conn,
						   cl->cfg.keepalive_ms * NGTCP2_MILLISECONDS);
	qs_info("quic", "event=connected peer=%s fingerprint=%s", c->peer, c->peer_fpr);
	if (cl->cfg.on_connected != NULL)
		cl->cfg.on_connected(c, cl->cfg.arg);
}

static void client_closed(struct qs_endpoint *ep, struct qs_conn *c, int err)
{
	struct qs_quic_client *cl = (struct qs_quic_client *)ep;
	if (c->cert_mismatch) {
		err = QS_ECERT;
		snprintf(cl->last_msg, sizeof(cl->last_msg),
			 "server certificate changed: expected fingerprint %s, server presented %s",
			 cl->pinned != NULL ? cl->pinned : "", c->peer_fpr);
	} else if (err != 0) {
		snprintf(cl->last_msg, sizeof(cl->last_msg), "%s %s: %s",
			 c->established ? "connection to" : "cannot connect to", c->peer,
			 qs_strerror(err));
	}
	cl->last_err = err;
	if (err != 0)
		qs_info("quic", "event=disconnected peer=%s err=%s", c->peer, qs_strerror(err));
	if (cl->cfg.on_disconnected != NULL)
		cl->cfg.on_disconnected(c, err, cl->cfg.arg);
	cl->conn = NULL;
	qs_conn_free(c);
	client_close_sock(cl);
	if (err == QS_ECERT || cl->stopped || !cl->cfg.reconnect) {
		cl->stopped = true;
		return;
	}
	cl->attempts++;
	uv_timer_start(&cl->retry, retry_cb, backoff_ms(cl), 0);
}

static void client_poll_cb(uv_poll_t *h, int status, int events);

static void client_want_write(struct qs_endpoint *ep)
{
	struct qs_quic_client *cl = (struct qs_quic_client *)ep;
	cl->want_write = true;
	if (cl->sock != NULL)
		uv_poll_start(&cl->sock->poll, UV_READABLE | UV_WRITABLE, client_poll_cb);
}

static const struct qs_endpoint_ops client_ops = {
	.established = client_established,
	.closed = client_closed,
	.want_write = client_want_write,
};

static void client_poll_cb(uv_poll_t *h, int status, int events)
{
	struct client_sock *cs = h->data;
	struct qs_quic_client *cl = cs->client;
	if (cl->sock != cs)
		return;
	if (status < 0) {
		/* A pending socket error (ICMP unreachable): libuv stopped the watch. Reading
		 * collects the error; then watch again. */
		events = UV_READABLE;
		uv_poll_start(&cs->poll, UV_READABLE | (cl->want_write ? UV_WRITABLE : 0),
			      client_poll_cb);
	}
	if (events & UV_WRITABLE) {
		cl->want_write = false;
		uv_poll_start(&cs->poll, UV_READABLE, client_poll_cb);
		if (cl->conn != NULL)
			qs_conn_retry_send(cl->conn);
	}
	if (events & UV_READABLE) {
		for (int round = 0; round < 8 && cl->conn != NULL && cl->sock == cs; round++) {
			size_t n = 0;
			int rc = qs_udp_recv(&cl->ep.udp, &cl->rx, &n);
			if (rc == QS_ECONN && !cl->conn->dead) {
				/* ICMP port unreachable: no server there (yet). */
				cl->conn->dead = true;
				cl->conn->close_err = QS_ECONN;
				qs_conn_mark_dirty(cl->conn);
				break;
			}
			if (rc != 0 || n == 0)
				break;
			for (size_t i = 0; i < n && cl->conn != NULL; i++)
				qs_conn_read(cl->conn, cl->rx.d[i].data, cl->rx.d[i].len,
					     (const struct sockaddr *)&cl->rx.d[i].from,
					     cl->rx.d[i].from_len);
			qs_endpoint_flush(&cl->ep);
		}
	}
	qs_endpoint_flush(&cl->ep);
}

static void client_connect(struct qs_quic_client *cl)
{
	struct sockaddr_storage any;
	memset(&any, 0, sizeof(any));
	any.ss_family = cl->remote.ss_family;
	socklen_t any_len =
		any.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int rc = qs_udp_open(&cl->ep.udp, (const struct sockaddr *)&any, any_len,
			     (const struct sockaddr *)&cl->remote, cl->remote_len);
	struct client_sock *cs = NULL;
	if (rc == 0) {
		cs = qs_calloc(1, sizeof(*cs));
		if (cs == NULL) {
			qs_udp_close(&cl->ep.udp);
			rc = QS_ENOMEM;
		}
	}
	if (rc == 0) {
		cs->client = cl;
		cs->fd = cl->ep.udp.fd;
		uv_poll_init(cl->ep.loop, &cs->poll, cs->fd);
		cs->poll.data = cs;
		cl->sock = cs;
		cl->handles_open++;
		uv_poll_start(&cs->poll, UV_READABLE, client_poll_cb);
		rc = qs_conn_new_client(&cl->ep, cl->cred, cl->pinned,
					(const struct sockaddr *)&cl->remote, cl->remote_len,
					&cl->conn);
	}
	if (rc != 0) {
		qs_warn("quic", "event=connect_failed host=%s err=%s", cl->host, qs_strerror(rc));
		client_close_sock(cl);
		cl->last_err = rc;
		cl->attempts++;
		uv_timer_start(&cl->retry, retry_cb, backoff_ms(cl), 0);
		return;
	}
	qs_conn_mark_dirty(cl->conn);
	qs_endpoint_flush(&cl->ep);
}

static void client_prepare_cb(uv_prepare_t *h)
{
	struct qs_quic_client *cl = h->data;
	qs_endpoint_flush(&cl->ep);
}

static void client_handle_closed(uv_handle_t *h)
{
	struct qs_quic_client *cl = h->data;
	if (--cl->handles_open == 0 && cl->done != NULL)
		cl->done(cl->done_arg);
}

int qs_quic_client_new(uv_loop_t *loop, const struct qs_quic_client_config *cfg,
		       struct qs_quic_client **out)
{
	struct qs_quic_client *cl = qs_calloc(1, sizeof(*cl));
	if (cl == NULL)
		return QS_ENOMEM;
	int rc = qs_addr_parse(cfg->host, cfg->port, &cl->remote, &cl->remote_len);
	if (rc == 0 && cfg->pinned_fingerprint != NULL &&
	    strlen(cfg->pinned_fingerprint) != QS_TLS_FPR_HEX_LEN)
		rc = QS_EINVAL;
	if (rc != 0) {
		qs_free(cl);
		return rc;
	}
	cl->cfg = *cfg;
	cl->host = qs_strdup(cfg->host);
	cl->pinned = cfg->pinned_fingerprint != NULL ? qs_strdup(cfg->pinned_fingerprint) : NULL;
	rc = cl->host == NULL || (cfg->pinned_fingerprint != NULL && cl->pinned == NULL)
		     ? QS_ENOMEM
		     : qs_udp_rx_init(&cl->rx);
	if (rc == 0)
		rc = qs_tls_client_cred(qs_conn_verify_fn(), &cl->cred);
	if (rc != 0) {
		qs_udp_rx_release(&cl->rx);
		qs_free(cl->host);
		qs_free(cl->pinned);
		qs_free(cl);
		return rc;
	}
	cl->cfg.host = cl->host;
	cl->cfg.pinned_fingerprint = cl->pinned;
	cl->ep.loop = loop;
	cl->ep.ops = &client_ops;
	cl->ep.limits = cfg->limits;
	cl->ep.on_tx_open = cfg->on_tx_open;
	cl->ep.app_arg = cfg->arg;
	cl->ep.udp.fd = -1;
	uv_prepare_init(loop, &cl->prep);
	cl->prep.data = cl;
	uv_prepare_start(&cl->prep, client_prepare_cb);
	uv_timer_init(loop, &cl->retry);
	cl->retry.data = cl;
	cl->handles_open = 2;
	client_connect(cl);
	*out = cl;
	return 0;
}

struct qs_conn *qs_quic_client_conn(struct qs_quic_client *cl)
{
	return cl->conn != NULL && cl->conn->established && !cl->conn->dead ? cl->conn : NULL;
}

int qs_quic_client_last_error(const struct qs_quic_client *cl, const char **message)
{
	if (message != NULL)
		*message = cl->last_msg;
	return cl->last_err;
}

void qs_quic_client_close(struct qs_quic_client *cl, void (*done)(void *arg), void *arg)
{
	if (cl->closing)
		return;
	cl->closing = true;
	cl->stopped = true;
	cl->done = done;
	cl->done_arg = arg;
	uv_timer_stop(&cl->retry);
	if (cl->conn != NULL) {
		qs_conn_close_app(cl->conn, QS_QUIC_ERR_NONE, 0);
		qs_endpoint_flush(&cl->ep);
	}
	client_close_sock(cl);
	uv_close((uv_handle_t *)&cl->prep, client_handle_closed);
	uv_close((uv_handle_t *)&cl->retry, client_handle_closed);
}

void qs_quic_client_bytes(const struct qs_quic_client *cl, struct qs_quic_bytes *out)
{
	*out = cl->ep.bytes;
}

void qs_quic_client_free(struct qs_quic_client *cl)
{
	if (cl == NULL)
		return;
	qs_udp_rx_release(&cl->rx);
	if (cl->cred != NULL)
		gnutls_certificate_free_credentials(cl->cred);
	qs_free(cl->host);
	qs_free(cl->pinned);
	qs_free(cl);
}

/* One QUIC connection (see conn.h): the ngtcp2_conn, its callbacks, the TLS session, the
 * packet buffer and write loop, timers, closing, and the deferred work of qs_conn_flush.
 * Owns every qs_tx of the connection (their queues live in tx.c) and frees them with it. */
#include "net/conn.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"

#define CONN_SCID_LEN 18

uint64_t qs_now_ns(void)
{
	return uv_hrtime();
}

/* ---- byte counters (struct qs_quic_bytes): each conn and its endpoint's totals ---------- */

static void conn_count_stream(struct qs_conn *c, uint64_t sent, uint64_t received)
{
	c->bytes.stream_sent += sent;
	c->bytes.stream_received += received;
	c->ep->bytes.stream_sent += sent;
	c->ep->bytes.stream_received += received;
}

static void conn_count_udp(struct qs_conn *c, uint64_t sent, uint64_t received)
{
	c->bytes.udp_sent += sent;
	c->bytes.udp_received += received;
	c->ep->bytes.udp_sent += sent;
	c->ep->bytes.udp_received += received;
}

void qs_conn_bytes(const struct qs_conn *c, struct qs_quic_bytes *out)
{
	*out = c->bytes;
}

void qs_quic_limits_default(struct qs_quic_limits *l)
{
	l->max_streams = 128;
	l->max_msg_bytes = QS_FRAME_MSG_MAX;
	l->stream_window_bytes = 16u << 20;
	l->conn_window_bytes = 32u << 20;
	l->send_high_water_bytes = 8u << 20;
	l->idle_timeout_ms = 30000;
	l->handshake_timeout_ms = 10000;
	l->stall_timeout_ms = 0;
	l->max_udp_payload = 16384;
	l->no_gso = false;
}

/* ---- ngtcp2 callbacks ----------------------------------------------------------------------- */

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx)
{
	(void)ctx;
	(void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

static int get_new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
			  void *user_data)
{
	(void)conn;
	struct qs_conn *c = user_data;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	cid->datalen = cidlen;
	if (c->ep->secret != NULL) {
		if (ngtcp2_crypto_generate_stateless_reset_token(token, c->ep->secret,
								 c->ep->secret_len, cid) != 0)
			return NGTCP2_ERR_CALLBACK_FAILURE;
	} else if (gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0) {
		return NGTCP2_ERR_CALLBACK_FAILURE;
	}
	if (c->ep->ops->cid_add != NULL && c->ep->ops->cid_add(c->ep, cid, c) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int remove_cid_cb(ngtcp2_conn *conn, const ngtcp2_cid *cid, void *user_data)
{
	(void)conn;
	struct qs_conn *c = user_data;
	if (c->ep->ops->cid_remove != NULL)
		c->ep->ops->cid_remove(c->ep, cid);
	return 0;
}

static int handshake_completed_cb(ngtcp2_conn *conn, void *user_data)
{
	(void)conn;
	struct qs_conn *c = user_data;
	c->established = true;
	if (c->ep->ops->established != NULL)
		c->ep->ops->established(c->ep, c);
	return 0;
}

static int stream_open_cb(ngtcp2_conn *conn, int64_t sid, void *user_data)
{
	struct qs_conn *c = user_data;
	if (!ngtcp2_is_bidi_stream(sid))
		return 0; /* unidirectional streams are not part of the protocol; ignored */
	struct qs_tx *tx = qs_tx_new(c, sid, QS_FRAME_ACCEPTOR);
	if (tx == NULL)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	ngtcp2_conn_set_stream_user_data(conn, sid, tx);
	return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t offset,
			       const uint8_t *data, size_t datalen, void *user_data,
			       void *stream_user_data)
{
	(void)offset;
	struct qs_tx *tx = stream_user_data;
	conn_count_stream(user_data, 0, datalen);
	if (tx == NULL) {
		/* A stream we do not track (unidirectional): consume and drop. */
		ngtcp2_conn_extend_max_stream_offset(conn, sid, datalen);
		ngtcp2_conn_extend_max_offset(conn, datalen);
		return 0;
	}
	ngtcp2_conn_extend_max_offset(conn, datalen);
	tx->progress_ms = uv_now(tx->conn->ep->loop);
	if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
		tx->fin_received = true;
	if (tx->paused)
		tx->credit_pending += datalen;
	else
		ngtcp2_conn_extend_max_stream_offset(conn, sid, datalen);
	if (tx->cancel_code != 0 || tx->close_queued)
		return 0;
	int rc = 0;
	if (datalen > 0)
		rc = qs_frame_decoder_feed(&tx->dec, data, datalen);
	if (rc == 0 && (flags & NGTCP2_STREAM_DATA_FLAG_FIN)) {
		rc = qs_frame_decoder_finish(&tx->dec);
		if (rc == 0 && tx->ops != NULL && tx->ops->on_end != NULL)
			rc = tx->ops->on_end(tx, tx->arg);
	}
	if (rc != 0 && rc != QS_ECANCELED) {
		if (rc == QS_EPROTO || rc == QS_E2BIG)
			qs_warn("quic", "event=tx_protocol_error peer=%s sid=%lld err=%s",
				tx->conn->peer, (long long)sid, qs_strerror(rc));
		qs_tx_request_cancel(tx, qs_tx_app_error(rc));
	}
	return 0;
}

static int acked_stream_data_cb(ngtcp2_conn *conn, int64_t sid, uint64_t offset, uint64_t datalen,
				void *user_data, void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void)user_data;
	struct qs_tx *tx = stream_user_data;
	if (tx != NULL) {
		qs_tx_acked(tx, offset + datalen);
		tx->progress_ms = uv_now(tx->conn->ep->loop);
	}
	return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t app_error,
			   void *user_data, void *stream_user_data)
{
	(void)user_data;
	struct qs_tx *tx = stream_user_data;
	if (ngtcp2_is_bidi_stream(sid) && !ngtcp2_conn_is_local_stream(conn, sid))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	if (tx == NULL)
		return 0;
	int err = 0;
	if ((flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) && app_error != 0) {
		err = QS_ECANCELED;
		if (tx->cancel_code == 0)
			tx->peer_error = app_error;
	}
	if (tx->cancel_code != 0)
		err = QS_ECANCELED;
	tx->sid = -1 - tx->sid; /* the stream is gone: never touch it in ngtcp2 again */
	tx->cancel_sent = true;
	qs_tx_queue_close(tx, err);
	return 0;
}

static int stream_reset_cb(ngtcp2_conn *conn, int64_t sid, uint64_t final_size, uint64_t app_error,
			   void *user_data, void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void)final_size;
	(void)user_data;
	struct qs_tx *tx = stream_user_data;
	if (tx != NULL) {
		tx->peer_error = app_error;
		qs_tx_request_cancel(tx, QS_QUIC_ERR_CANCELED);
	}
	return 0;
}

static int stream_stop_sending_cb(ngtcp2_conn *conn, int64_t sid, uint64_t app_error,
				  void *user_data, void *stream_user_data)
{
	return stream_reset_cb(conn, sid, 0, app_error, user_data, stream_user_data);
}

static int extend_max_stream_data_cb(ngtcp2_conn *conn, int64_t sid, uint64_t max_data,
				     void *user_data, void *stream_user_data)
{
	(void)conn;
	(void)sid;
	(void)max_data;
	(void)user_data;
	struct qs_tx *tx = stream_user_data;
	if (tx != NULL && qs_tx_has_unsent(tx)) {
		qs_tx_ready_add(tx);
		qs_conn_mark_dirty(tx->conn);
	}
	return 0;
}

static int extend_max_local_streams_cb(ngtcp2_conn *conn, uint64_t max_streams, void *user_data)
{
	(void)conn;
	(void)max_streams;
	struct qs_conn *c = user_data;
	if (c->pending_head != NULL)
		qs_conn_mark_dirty(c);
	return 0;
}

static int recv_stateless_reset_cb(ngtcp2_conn *conn, const ngtcp2_pkt_stateless_reset *sr,
				   void *user_data)
{
	(void)conn;
	(void)sr;
	struct qs_conn *c = user_data;
	qs_info("quic", "event=stateless_reset peer=%s", c->peer);
	return 0;
}

static ngtcp2_conn *get_conn_cb(ngtcp2_crypto_conn_ref *ref)
{
	struct qs_conn *c = ref->user_data;
	return c->conn;
}

static void conn_callbacks(ngtcp2_callbacks *cb, bool server)
{
	memset(cb, 0, sizeof(*cb));
	if (server) {
		cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
	} else {
		cb->client_initial = ngtcp2_crypto_client_initial_cb;
		cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
		cb->recv_stateless_reset = recv_stateless_reset_cb;
	}
	cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
	cb->handshake_completed = handshake_completed_cb;
	cb->encrypt = ngtcp2_crypto_encrypt_cb;
	cb->decrypt = ngtcp2_crypto_decrypt_cb;
	cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
	cb->recv_stream_data = recv_stream_data_cb;
	cb->acked_stream_data_offset = acked_stream_data_cb;
	cb->stream_open = stream_open_cb;
	cb->stream_close = stream_close_cb;
	cb->rand = rand_cb;
	cb->get_new_connection_id = get_new_cid_cb;
	cb->remove_connection_id = remove_cid_cb;
	cb->update_key = ngtcp2_crypto_update_key_cb;
	cb->stream_reset = stream_reset_cb;
	cb->extend_max_stream_data = extend_max_stream_data_cb;
	cb->extend_max_local_streams_bidi = extend_max_local_streams_cb;
	cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
	cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
	cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
	cb->stream_stop_sending = stream_stop_sending_cb;
	cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
}

/* ngtcp2's own protocol trace, for debugging only (QS_QUIC_TRACE=1 in the environment). */
static void trace_printf(void *user_data, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void trace_printf(void *user_data, const char *fmt, ...)
{
	(void)user_data;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void conn_settings(struct qs_conn *c, ngtcp2_settings *s, ngtcp2_transport_params *p)
{
	const struct qs_quic_limits *l = &c->ep->limits;
	ngtcp2_settings_default(s);
	s->initial_ts = qs_now_ns();
	s->max_window = l->conn_window_bytes;
	s->max_stream_window = l->stream_window_bytes;
	s->handshake_timeout = l->handshake_timeout_ms * NGTCP2_MILLISECONDS;
	s->cc_algo = NGTCP2_CC_ALGO_CUBIC;
	const char *trace = getenv("QS_QUIC_TRACE");
	if (trace != NULL && strcmp(trace, "1") == 0)
		s->log_printf = trace_printf;
	/* Large packets where the kernel says the path carries them (loopback, jumbo frames);
	 * otherwise ngtcp2's default size with PMTUD. */
	size_t path = qs_udp_path_payload((const struct sockaddr *)&c->remote, c->remote_len);
	if (path > NGTCP2_MAX_UDP_PAYLOAD_SIZE) {
		size_t m = path < l->max_udp_payload ? path : l->max_udp_payload;
		if (m > NGTCP2_MAX_UDP_PAYLOAD_SIZE) {
			s->max_tx_udp_payload_size = m;
			s->no_tx_udp_payload_size_shaping = 1;
		}
	}
	c->max_payload = s->max_tx_udp_payload_size;
	ngtcp2_transport_params_default(p);
	p->initial_max_stream_data_bidi_local = 1u << 20;
	p->initial_max_stream_data_bidi_remote = 1u << 20;
	p->initial_max_data = 4u << 20;
	p->initial_max_streams_bidi = l->max_streams;
	p->initial_max_streams_uni = 0;
	p->max_idle_timeout = l->idle_timeout_ms * NGTCP2_MILLISECONDS;
	p->active_connection_id_limit = 4;
	p->max_udp_payload_size = QS_UDP_RX_SIZE - 8;
}

static void timer_cb(uv_timer_t *t);

static int conn_alloc(struct qs_endpoint *ep, const struct sockaddr *remote, socklen_t rlen,
		      bool server, struct qs_conn **out)
{
	struct qs_conn *c = qs_calloc(1, sizeof(*c));
	if (c == NULL)
		return QS_ENOMEM;
	c->ep = ep;
	c->is_server = server;
	memcpy(&c->remote, remote, rlen);
	c->remote_len = rlen;
	memcpy(&c->local, &ep->udp.local, ep->udp.local_len);
	c->local_len = ep->udp.local_len;
	qs_addr_format(remote, c->peer, sizeof(c->peer));
	c->conn_ref.get_conn = get_conn_cb;
	c->conn_ref.user_data = c;
	ngtcp2_connection_close_error_default(&c->last_error);
	c->txbuf_cap = (size_t)QS_UDP_MAX_SEGMENTS * QS_UDP_RX_SIZE;
	c->txbuf = qs_malloc(c->txbuf_cap);
	if (c->txbuf == NULL) {
		qs_free(c);
		return QS_ENOMEM;
	}
	uv_timer_init(ep->loop, &c->timer);
	c->timer.data = c;
	c->timer_open = true;
	*out = c;
	return 0;
}

static ngtcp2_path conn_path(struct qs_conn *c)
{
	ngtcp2_path path;
	memset(&path, 0, sizeof(path));
	path.local.addr = (ngtcp2_sockaddr *)&c->local;
	path.local.addrlen = c->local_len;
	path.remote.addr = (ngtcp2_sockaddr *)&c->remote;
	path.remote.addrlen = c->remote_len;
	return path;
}

int qs_conn_new_server(struct qs_endpoint *ep, const struct qs_tls_identity *id,
		       const ngtcp2_pkt_hd *hd, const ngtcp2_cid *ocid,
		       const struct sockaddr *remote, socklen_t remote_len, struct qs_conn **out)
{
	struct qs_conn *c;
	int rc = conn_alloc(ep, remote, remote_len, true, &c);
	if (rc != 0)
		return rc;
	ngtcp2_callbacks cb;
	ngtcp2_settings s;
	ngtcp2_transport_params p;
	conn_callbacks(&cb, true);
	conn_settings(c, &s, &p);
	s.token = hd->token;
	p.stateless_reset_token_present = 1;
	if (ocid != NULL) {
		p.original_dcid = *ocid;
		p.retry_scid = hd->dcid;
		p.retry_scid_present = 1;
	} else {
		p.original_dcid = hd->dcid;
	}
	ngtcp2_cid scid;
	scid.datalen = CONN_SCID_LEN;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0 ||
	    ngtcp2_crypto_generate_stateless_reset_token(p.stateless_reset_token, ep->secret,
							 ep->secret_len, &scid) != 0) {
		rc = QS_ETLS;
		goto fail;
	}
	ngtcp2_path path = conn_path(c);
	if (ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, &path, hd->version, &cb, &s, &p,
				   NULL, c) != 0) {
		rc = QS_ENOMEM;
		goto fail;
	}
	rc = qs_tls_server_session(id, &c->conn_ref, &c->tls);
	if (rc != 0)
		goto fail;
	ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
	if (ep->ops->cid_add(ep, &scid, c) != 0 || ep->ops->cid_add(ep, &hd->dcid, c) != 0) {
		rc = QS_ENOMEM;
		goto fail;
	}
	*out = c;
	return 0;
fail:
	qs_conn_free(c);
	return rc;
}

static int verify_cert_cb(gnutls_session_t session)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
	struct qs_conn *c = ref->user_data;
	if (qs_tls_peer_fingerprint(session, c->peer_fpr) != 0)
		return GNUTLS_E_CERTIFICATE_ERROR;
	if (c->pinned_fpr != NULL && strcmp(c->pinned_fpr, c->peer_fpr) != 0) {
		c->cert_mismatch = true;
		qs_error("quic", "event=certificate_mismatch peer=%s expected=%s got=%s", c->peer,
			 c->pinned_fpr, c->peer_fpr);
		return GNUTLS_E_CERTIFICATE_ERROR;
	}
	return 0;
}

gnutls_certificate_verify_function *qs_conn_verify_fn(void)
{
	return verify_cert_cb;
}

int qs_conn_new_client(struct qs_endpoint *ep, gnutls_certificate_credentials_t cred,
		       const char *pinned_fpr, const struct sockaddr *remote, socklen_t remote_len,
		       struct qs_conn **out)
{
	struct qs_conn *c;
	int rc = conn_alloc(ep, remote, remote_len, false, &c);
	if (rc != 0)
		return rc;
	c->pinned_fpr = pinned_fpr;
	ngtcp2_callbacks cb;
	ngtcp2_settings s;
	ngtcp2_transport_params p;
	conn_callbacks(&cb, false);
	conn_settings(c, &s, &p);
	ngtcp2_cid dcid, scid;
	dcid.datalen = CONN_SCID_LEN;
	scid.datalen = CONN_SCID_LEN;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) != 0 ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0) {
		rc = QS_ETLS;
		goto fail;
	}
	ngtcp2_path path = conn_path(c);
	if (ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &s, &p,
				   NULL, c) != 0) {
		rc = QS_ENOMEM;
		goto fail;
	}
	rc = qs_tls_client_session(cred, &c->conn_ref, &c->tls);
	if (rc != 0)
		goto fail;
	ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
	*out = c;
	return 0;
fail:
	qs_conn_free(c);
	return rc;
}

static void timer_closed_cb(uv_handle_t *h)
{
	struct qs_conn *c = h->data;
	qs_free(c->txbuf);
	qs_free(c);
}

void qs_conn_free(struct qs_conn *c)
{
	while (c->txs != NULL)
		qs_tx_unlink_free(c->txs);
	if (c->conn != NULL)
		ngtcp2_conn_del(c->conn);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	c->conn = NULL;
	c->tls = NULL;
	/* The timer handle closes asynchronously; the memory goes with it. */
	uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
}

/* ---- closing ---------------------------------------------------------------------------- */

void qs_conn_mark_dirty(struct qs_conn *c)
{
	if (c->in_dirty)
		return;
	c->in_dirty = true;
	c->dirty_next = c->ep->dirty;
	c->ep->dirty = c;
}

static void conn_send_raw(struct qs_conn *c, const uint8_t *p, size_t len)
{
	size_t sent;
	conn_count_udp(c, len, 0);
	(void)qs_udp_send(&c->ep->udp, (const struct sockaddr *)&c->remote, c->remote_len, p, len,
			  len, &sent);
}

/* Ends the conn: writes CONNECTION_CLOSE unless draining, marks it dead. The endpoint
 * learns of it at the next flush. */
static void conn_terminate(struct qs_conn *c, int err)
{
	if (c->dead)
		return;
	c->dead = true;
	c->close_err = err;
	if (c->conn != NULL && !ngtcp2_conn_is_in_draining_period(c->conn) &&
	    !ngtcp2_conn_is_in_closing_period(c->conn)) {
		ngtcp2_path_storage ps;
		ngtcp2_path_storage_zero(&ps);
		ngtcp2_pkt_info pi;
		ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
			c->conn, &ps.path, &pi, c->txbuf, NGTCP2_MAX_UDP_PAYLOAD_SIZE,
			&c->last_error, qs_now_ns());
		if (n > 0)
			conn_send_raw(c, c->txbuf, (size_t)n);
	}
	qs_conn_mark_dirty(c);
}

void qs_conn_close_app(struct qs_conn *c, uint64_t app_error, int err)
{
	ngtcp2_connection_close_error_set_application_error(&c->last_error, app_error, NULL, 0);
	conn_terminate(c, err);
}

void qs_conn_close(struct qs_conn *conn, uint64_t app_error)
{
	qs_conn_close_app(conn, app_error, 0);
}

static int lib_err_to_qs(int lib)
{
	switch (lib) {
	case NGTCP2_ERR_IDLE_CLOSE: return QS_ETIMEDOUT;
	case NGTCP2_ERR_HANDSHAKE_TIMEOUT: return QS_ETIMEDOUT;
	case NGTCP2_ERR_CRYPTO: return QS_ETLS;
	case NGTCP2_ERR_NOMEM: return QS_ENOMEM;
	case NGTCP2_ERR_DRAINING: return QS_ECONN;
	default: return QS_ECONN;
	}
}

static void conn_fail(struct qs_conn *c, int lib)
{
	if (lib == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(
			&c->last_error, ngtcp2_conn_get_tls_alert(c->conn), NULL, 0);
	else if (lib != NGTCP2_ERR_DRAINING && lib != NGTCP2_ERR_IDLE_CLOSE)
		ngtcp2_connection_close_error_set_transport_error_liberr(&c->last_error, lib, NULL,
									 0);
	int err = c->cert_mismatch ? QS_ECERT : lib_err_to_qs(lib);
	if (lib == NGTCP2_ERR_DRAINING) {
		/* The peer closed: its code tells whether that was clean. */
		ngtcp2_connection_close_error ce;
		ngtcp2_conn_get_connection_close_error(c->conn, &ce);
		err = ce.error_code == 0 ? 0 : QS_ECONN;
	}
	if (lib == NGTCP2_ERR_IDLE_CLOSE || lib == NGTCP2_ERR_DRAINING) {
		c->dead = true;
		c->close_err = err;
		qs_conn_mark_dirty(c);
		return;
	}
	conn_terminate(c, err);
}

/* ---- reading ----------------------------------------------------------------------------- */

void qs_conn_read(struct qs_conn *c, const uint8_t *data, size_t len, const struct sockaddr *from,
		  socklen_t from_len)
{
	if (c->dead)
		return;
	ngtcp2_path path = conn_path(c);
	path.remote.addr = (ngtcp2_sockaddr *)(uintptr_t)from;
	path.remote.addrlen = from_len;
	ngtcp2_pkt_info pi = {0};
	conn_count_udp(c, 0, len);
	int rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, qs_now_ns());
	if (rv != 0) {
		if (rv == NGTCP2_ERR_DROP_CONN) {
			c->dead = true;
			c->close_err = QS_ECONN;
		} else {
			conn_fail(c, rv);
		}
	}
	qs_conn_mark_dirty(c);
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Sends txbuf[off, off+len) in datagrams of seg bytes; keeps the rest on EAGAIN. */
static bool conn_send_batch(struct qs_conn *c, size_t off, size_t len, size_t seg)
{
	if (len == 0)
		return true;
	size_t sent = 0;
	if (c->ep->limits.no_gso && len > seg) {
		for (size_t o = 0; o < len; o += seg) {
			size_t n = len - o < seg ? len - o : seg;
			size_t s1 = 0;
			int rc = qs_udp_send(&c->ep->udp, (const struct sockaddr *)&c->remote,
					     c->remote_len, c->txbuf + off + o, n, n, &s1);
			if (rc != 0) {
				sent = o;
				goto blocked;
			}
		}
		return true;
	}
	int rc = qs_udp_send(&c->ep->udp, (const struct sockaddr *)&c->remote, c->remote_len,
			     c->txbuf + off, len, seg, &sent);
	if (rc == 0)
		return true;
	if (rc != QS_EAGAIN) {
		qs_warn("quic", "event=send_failed peer=%s err=%s", c->peer, qs_strerror(rc));
		return true; /* treated as loss */
	}
blocked:
	c->pend_off = off + sent;
	c->pend_len = len - sent;
	c->pend_seg = seg;
	c->send_blocked = true;
	if (c->ep->ops->want_write != NULL)
		c->ep->ops->want_write(c->ep);
	return false;
}

void qs_conn_retry_send(struct qs_conn *c)
{
	if (!c->send_blocked)
		return;
	c->send_blocked = false;
	if (conn_send_batch(c, c->pend_off, c->pend_len, c->pend_seg))
		qs_conn_mark_dirty(c);
}

/* Whether ngtcp2 wrote a packet for the address we send to. A server's peer can change its
 * address (a NAT rebinding): ngtcp2 validates the new path and from then on writes its packets
 * for it, so the address must come from each written packet's path, not only from the first
 * packet of the connection. */
static bool conn_path_is_current(const struct qs_conn *c, const ngtcp2_path *path)
{
	const ngtcp2_addr *r = &path->remote;
	return r->addrlen == 0 || r->addrlen > sizeof(c->remote) ||
	       ((socklen_t)r->addrlen == c->remote_len &&
		memcmp(r->addr, &c->remote, (size_t)c->remote_len) == 0);
}

static void conn_set_remote(struct qs_conn *c, const ngtcp2_addr *remote)
{
	char old[sizeof(c->peer)];
	memcpy(old, c->peer, sizeof(old));
	memcpy(&c->remote, remote->addr, remote->addrlen);
	c->remote_len = (socklen_t)remote->addrlen;
	qs_addr_format((const struct sockaddr *)&c->remote, c->peer, sizeof(c->peer));
	qs_info("quic", "event=peer_address_changed old=%s peer=%s", old, c->peer);
}

/* Writes packets until congestion control, pacing or the batch limit stops us. */
static void conn_write(struct qs_conn *c)
{
	if (c->dead || c->send_blocked || ngtcp2_conn_is_in_closing_period(c->conn) ||
	    ngtcp2_conn_is_in_draining_period(c->conn))
		return;
	size_t max_udp = ngtcp2_conn_get_max_tx_udp_payload_size(c->conn);
	size_t quantum = ngtcp2_conn_get_send_quantum(c->conn);
	size_t max_pkts = quantum / max_udp;
	if (max_pkts == 0)
		max_pkts = 1;
	if (max_udp > QS_UDP_RX_SIZE)
		max_udp = QS_UDP_RX_SIZE;
	/* One GSO send is one IP datagram to the kernel: at most 64 KiB in all. */
	size_t gso_max = QS_UDP_GSO_BYTES / max_udp;
	if (max_pkts > gso_max)
		max_pkts = gso_max > 0 ? gso_max : 1;
	if (max_pkts > QS_UDP_MAX_SEGMENTS)
		max_pkts = QS_UDP_MAX_SEGMENTS;
	uint64_t ts = qs_now_ns();
	size_t off = 0, pkts = 0, seg = 0;
	ngtcp2_path_storage ps;
	ngtcp2_path_storage_zero(&ps);
	ngtcp2_pkt_info pi;
	ngtcp2_vec vecs[16];
	for (;;) {
		struct qs_tx *tx = c->ready; /* round-robin head */
		size_t nvec = 0;
		int64_t sid = -1;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		bool fin = false;
		if (tx != NULL) {
			sid = tx->sid;
			nvec = qs_tx_unsent_vecs(tx, vecs, 16);
			uint64_t total = 0;
			for (size_t i = 0; i < nvec; i++)
				total += vecs[i].len;
			fin = tx->fin_queued && tx->sent_off + total == tx->end_off;
			if (fin)
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
		}
		ngtcp2_ssize ndata = -1;
		ngtcp2_ssize n =
			ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, c->txbuf + off, max_udp,
						  &ndata, flags, sid, vecs, nvec, ts);
		if (n < 0) {
			if (n == NGTCP2_ERR_WRITE_MORE) {
				conn_count_stream(c, (uint64_t)ndata, 0);
				qs_tx_advance(tx, (size_t)ndata, fin);
				if (tx->ready && c->ready == tx)
					c->ready = tx->ready_next; /* round robin */
				continue;
			}
			if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
			    n == NGTCP2_ERR_STREAM_NOT_FOUND) {
				qs_tx_ready_remove(tx);
				continue;
			}
			conn_fail(c, (int)n);
			return;
		}
		if (tx != NULL && ndata >= 0) {
			conn_count_stream(c, (uint64_t)ndata, 0);
			qs_tx_advance(tx, (size_t)ndata, fin);
			if (tx->ready && c->ready == tx)
				c->ready = tx->ready_next;
		}
		if (n == 0)
			break;
		size_t sz = (size_t)n;
		if (c->is_server && !conn_path_is_current(c, &ps.path)) {
			/* This packet goes to another address: the batch before it to the old. */
			if (pkts > 0) {
				if (!conn_send_batch(c, 0, off, seg))
					goto out;
				memmove(c->txbuf, c->txbuf + off, sz);
				off = 0;
				pkts = 0;
			}
			conn_set_remote(c, &ps.path.remote);
		}
		conn_count_udp(c, sz, 0);
		if (pkts > 0 && sz > seg) {
			/* Larger than the batch's segment size: send the batch, restart with this
			 * one. */
			if (!conn_send_batch(c, 0, off, seg))
				goto out;
			memmove(c->txbuf, c->txbuf + off, sz);
			off = 0;
			pkts = 0;
		}
		if (pkts == 0)
			seg = sz;
		off += sz;
		pkts++;
		if (pkts == max_pkts || sz < seg) {
			bool full = pkts == max_pkts;
			if (!conn_send_batch(c, 0, off, seg))
				goto out;
			off = 0;
			pkts = 0;
			if (full)
				goto out; /* pacing: the timer brings us back */
		}
	}
	conn_send_batch(c, 0, off, seg);
out:
	ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
}

static void conn_arm_timer(struct qs_conn *c)
{
	if (c->dead || c->conn == NULL)
		return;
	uint64_t expiry = ngtcp2_conn_get_expiry(c->conn);
	if (expiry == UINT64_MAX) {
		uv_timer_stop(&c->timer);
		return;
	}
	uint64_t now = qs_now_ns();
	uint64_t ms = expiry > now ? (expiry - now) / 1000000 : 0;
	uv_timer_start(&c->timer, timer_cb, ms, 0);
}

static void timer_cb(uv_timer_t *t)
{
	struct qs_conn *c = t->data;
	if (c->dead || c->conn == NULL)
		return;
	int rv = ngtcp2_conn_handle_expiry(c->conn, qs_now_ns());
	if (rv != 0)
		conn_fail(c, rv);
	qs_conn_mark_dirty(c);
	qs_endpoint_flush(c->ep);
}

/* True if tx waits on the peer: its request is not complete, or our bytes are not all
 * acknowledged. Otherwise it waits on us (the application is working on it). */
static bool tx_waits_on_peer(const struct qs_tx *tx)
{
	return !tx->fin_received || tx->acked_off < tx->end_off;
}

void qs_conn_sweep_stalled(struct qs_conn *c, uint64_t now_ms)
{
	uint64_t limit = c->ep->limits.stall_timeout_ms;
	if (limit == 0 || c->dead || c->conn == NULL)
		return;
	for (struct qs_tx *tx = c->txs; tx != NULL; tx = tx->next) {
		if (tx->local || tx->close_queued)
			continue;
		if (tx->cancel_code != 0) {
			if (now_ms - tx->cancel_ms <= limit)
				continue;
			/* A compliant peer answers our RESET_STREAM/STOP_SENDING at once. */
			qs_warn("quic", "event=stalled_peer peer=%s sid=%lld", c->peer,
				(long long)tx->sid);
			qs_conn_close_app(c, QS_QUIC_ERR_STALLED_PEER, QS_ETIMEDOUT);
			return;
		}
		if (tx->paused || !tx_waits_on_peer(tx)) {
			tx->progress_ms = now_ms;
			continue;
		}
		if (now_ms - tx->progress_ms > limit) {
			qs_info("quic", "event=tx_stalled peer=%s sid=%lld idle_ms=%llu", c->peer,
				(long long)tx->sid, (unsigned long long)(now_ms - tx->progress_ms));
			qs_tx_request_cancel(tx, QS_QUIC_ERR_STALLED);
		}
	}
}

/* Gives streams to transactions opened while the peer's stream limit was reached. */
static void conn_open_pending(struct qs_conn *c)
{
	while (c->pending_head != NULL) {
		struct qs_tx *tx = c->pending_head;
		int64_t sid;
		if (tx->cancel_code == 0) {
			int rv = ngtcp2_conn_open_bidi_stream(c->conn, &sid, tx);
			if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
				return;
			if (rv != 0) {
				qs_tx_queue_close(tx, QS_ECONN);
			} else {
				tx->sid = sid;
				tx->pending_open = false;
				if (qs_tx_has_unsent(tx))
					qs_tx_ready_add(tx);
			}
		} else {
			tx->cancel_sent = true;
			qs_tx_queue_close(tx, QS_ECANCELED);
		}
		tx->pending_open = false;
		c->pending_head = tx->pending_next;
		if (c->pending_head == NULL)
			c->pending_tail = NULL;
	}
}

/* Runs the deferred stream shutdowns and on_close callbacks. */
static void conn_run_deferred(struct qs_conn *c)
{
	conn_open_pending(c);
	for (struct qs_tx *tx = c->txs; tx != NULL; tx = tx->next) {
		if (tx->cancel_code != 0 && !tx->cancel_sent && !tx->pending_open && !c->dead) {
			tx->cancel_sent = true;
			ngtcp2_conn_shutdown_stream(c->conn, tx->sid, tx->cancel_code);
		}
		if (tx->credit_pending > 0 && !tx->paused && tx->sid >= 0 && !tx->pending_open &&
		    !c->dead) {
			ngtcp2_conn_extend_max_stream_offset(c->conn, tx->sid, tx->credit_pending);
			tx->credit_pending = 0;
		}
	}
	while (c->closed != NULL) {
		struct qs_tx *tx = c->closed;
		c->closed = tx->closed_next;
		if (tx->ops != NULL && tx->ops->on_close != NULL)
			tx->ops->on_close(tx, tx->close_err, tx->arg);
		qs_tx_unlink_free(tx);
	}
	for (struct qs_tx *tx = c->txs; tx != NULL; tx = tx->next) {
		if (tx->want_writable && !tx->close_queued && qs_tx_writable(tx)) {
			tx->want_writable = false;
			if (tx->ops != NULL && tx->ops->on_writable != NULL)
				tx->ops->on_writable(tx, tx->arg);
		}
	}
}

static void conn_finish_dead(struct qs_conn *c)
{
	if (c->close_notified)
		return;
	c->close_notified = true;
	/* Every live transaction ends with the connection. */
	for (struct qs_tx *tx = c->txs; tx != NULL; tx = tx->next)
		if (!tx->close_queued)
			qs_tx_queue_close(tx, c->close_err == 0 ? QS_ECONN : c->close_err);
	while (c->closed != NULL) {
		struct qs_tx *tx = c->closed;
		c->closed = tx->closed_next;
		if (tx->ops != NULL && tx->ops->on_close != NULL)
			tx->ops->on_close(tx, tx->close_err == 0 ? 0 : QS_ECONN, tx->arg);
	}
	uv_timer_stop(&c->timer);
	c->ep->ops->closed(c->ep, c, c->close_err);
}

void qs_conn_flush(struct qs_conn *c)
{
	if (!c->dead) {
		conn_run_deferred(c);
		conn_write(c);
	}
	if (!c->dead) {
		/* Writes may have made room: tell blocked senders, then write what they add. */
		bool again = false;
		for (struct qs_tx *tx = c->txs; tx != NULL; tx = tx->next)
			if (tx->want_writable && qs_tx_writable(tx))
				again = true;
		if (again) {
			conn_run_deferred(c);
			conn_write(c);
		}
		conn_arm_timer(c);
		return;
	}
	conn_finish_dead(c);
}

void qs_endpoint_flush(struct qs_endpoint *ep)
{
	/* Callbacks run from here may call back into the API, which flushes again: the outer
	 * loop picks up whatever they mark dirty, so a conn is never flushed (or freed) while
	 * an outer flush is still working on it. */
	if (ep->flushing)
		return;
	ep->flushing = true;
	while (ep->dirty != NULL) {
		struct qs_conn *c = ep->dirty;
		ep->dirty = c->dirty_next;
		c->in_dirty = false;
		qs_conn_flush(c);
	}
	ep->flushing = false;
}

/* ---- public per-connection API ------------------------------------------------------------- */

const char *qs_conn_peer(const struct qs_conn *c)
{
	return c->peer;
}

const char *qs_conn_peer_fingerprint(const struct qs_conn *c)
{
	return c->peer_fpr;
}

void qs_conn_set_data(struct qs_conn *c, void *data)
{
	c->data = data;
}

void *qs_conn_data(const struct qs_conn *c)
{
	return c->data;
}

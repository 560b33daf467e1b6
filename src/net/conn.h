/* Internal to net/: one QUIC connection (ngtcp2_conn + GnuTLS session) and its
 * transactions, shared by the server and client endpoints. An endpoint owns the UDP socket
 * and routes datagrams to conns; a conn owns its streams' send queues and frame decoders.
 *
 * Re-entrancy rule: ngtcp2 callbacks only record state. Application callbacks that may
 * re-enter the API (on_close, on_conn_close, stream shutdowns) run from qs_conn_flush,
 * which endpoints call after each batch of reads, timer expiry, or loop iteration. */
#ifndef QS_NET_CONN_H
#define QS_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <uv.h>

#include "core/frame.h"
#include "net/quic.h"
#include "net/tls.h"
#include "net/udp.h"

struct qs_endpoint;

/* What a conn needs from the endpoint that owns it. */
struct qs_endpoint_ops {
	/* Connection IDs appear and disappear (server routing table). */
	int (*cid_add)(struct qs_endpoint *ep, const ngtcp2_cid *cid, struct qs_conn *conn);
	void (*cid_remove)(struct qs_endpoint *ep, const ngtcp2_cid *cid);
	/* The handshake completed. */
	void (*established)(struct qs_endpoint *ep, struct qs_conn *conn);
	/* The conn is gone (after its transactions got on_close): err 0 for a clean close. The
	 * endpoint frees it with qs_conn_free after this returns. */
	void (*closed)(struct qs_endpoint *ep, struct qs_conn *conn, int err);
	/* The socket refused a send (buffer full): watch for writability. */
	void (*want_write)(struct qs_endpoint *ep);
};

struct qs_endpoint {
	uv_loop_t *loop;
	const struct qs_endpoint_ops *ops;
	struct qs_udp udp;
	struct qs_quic_limits limits;
	qs_tx_open_fn on_tx_open;
	void *app_arg;
	const uint8_t *secret; /* static secret for stateless reset tokens (server) */
	size_t secret_len;
	struct qs_conn *dirty;      /* conns with work for qs_conn_flush (singly linked) */
	bool flushing;              /* inside qs_endpoint_flush: nested calls return at once */
	struct qs_quic_bytes bytes; /* totals of every conn this endpoint has had */
};

struct qs_seg {
	struct qs_seg *next;
	const uint8_t *p;
	size_t len;
	size_t cap; /* > 0 for owned segments (p is ours, may take appends up to cap) */
	void (*release)(void *arg);
	void *release_arg;
};

struct qs_tx {
	struct qs_conn *conn;
	int64_t sid;
	const struct qs_tx_ops *ops;
	void *arg;
	struct qs_frame_decoder dec;
	bool opened;       /* OPEN frame seen (remote) or sent (local) */
	bool pending_open; /* local, waiting for the peer's stream credit (no sid yet) */
	struct qs_tx *pending_next;

	/* Send queue: stream offsets [acked_off, end_off) are held in segments head..tail;
	 * [sent_off, end_off) has not been handed to ngtcp2 yet. */
	struct qs_seg *head, *tail;
	uint64_t head_off; /* stream offset of head->p[0] */
	uint64_t acked_off, sent_off, end_off;
	struct qs_seg *cur; /* segment holding sent_off, or NULL: not yet located */
	uint64_t cur_off;   /* stream offset of cur->p[0] */
	bool fin_queued, fin_sent;
	bool ready; /* on the conn's ready list */
	struct qs_tx *ready_next, *ready_prev;
	bool want_writable;

	bool paused, close_queued;
	bool local;           /* we opened it (qs_conn_open_tx) */
	bool fin_received;    /* the peer ended its half */
	uint64_t progress_ms; /* loop time of the last byte received or acknowledged */
	uint64_t cancel_ms;   /* loop time the cancel was requested (stall sweep) */
	uint64_t credit_pending;
	uint64_t cancel_code; /* nonzero: shutdown pending or done */
	bool cancel_sent;
	uint64_t peer_error;
	int close_err;

	struct qs_tx *next, *prev; /* all transactions of the conn */
	struct qs_tx *closed_next;
};

struct qs_conn {
	struct qs_endpoint *ep;
	ngtcp2_conn *conn;
	ngtcp2_crypto_conn_ref conn_ref;
	gnutls_session_t tls;
	bool is_server;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	struct sockaddr_storage local;
	socklen_t local_len;
	char peer[64];
	char peer_fpr[QS_TLS_FPR_HEX_LEN + 1];
	const char *pinned_fpr; /* client: expected fingerprint or NULL */
	bool cert_mismatch;

	uv_timer_t timer;
	bool timer_open;
	uint8_t *txbuf; /* QS_UDP_MAX_SEGMENTS * max packet */
	size_t txbuf_cap;
	size_t pend_off, pend_len, pend_seg; /* unsent bytes of txbuf after EAGAIN */
	bool send_blocked;
	size_t max_payload; /* packet size cap for this path */

	struct qs_tx *txs;
	struct qs_tx *ready;  /* round-robin list of transactions with unsent data */
	struct qs_tx *closed; /* transactions waiting for their on_close */
	struct qs_tx *pending_head, *pending_tail; /* opened locally, waiting for credit */
	bool established, dead, in_dirty, close_notified;
	int close_err;
	struct qs_quic_bytes bytes; /* this conn's counters (conn_count_* in conn.c) */
	ngtcp2_connection_close_error last_error;
	struct qs_conn *dirty_next;
	void *data;
	struct qs_conn *next, *prev; /* endpoint's list */
};

/* Server side: a conn for a client's first Initial (hd from ngtcp2_accept). ocid is the
 * original DCID when a Retry token was validated, else NULL. */
int qs_conn_new_server(struct qs_endpoint *ep, const struct qs_tls_identity *id,
		       const ngtcp2_pkt_hd *hd, const ngtcp2_cid *ocid,
		       const struct sockaddr *remote, socklen_t remote_len, struct qs_conn **out);
/* Client side: a conn to remote over the endpoint's (connected) socket. */
int qs_conn_new_client(struct qs_endpoint *ep, gnutls_certificate_credentials_t cred,
		       const char *pinned_fpr, const struct sockaddr *remote, socklen_t remote_len,
		       struct qs_conn **out);
void qs_conn_free(struct qs_conn *c);

/* Feeds one datagram. Errors end the conn (it is marked dead; closed() follows). */
void qs_conn_read(struct qs_conn *c, const uint8_t *data, size_t len, const struct sockaddr *from,
		  socklen_t from_len);
/* Runs deferred work, writes packets, re-arms the timer. */
void qs_conn_flush(struct qs_conn *c);
/* Marks c for the endpoint's next flush. */
void qs_conn_mark_dirty(struct qs_conn *c);
/* Flushes every dirty conn of ep. */
void qs_endpoint_flush(struct qs_endpoint *ep);
/* The socket became writable again. */
void qs_conn_retry_send(struct qs_conn *c);
/* Closes with CONNECTION_CLOSE carrying an application error. */
void qs_conn_close_app(struct qs_conn *c, uint64_t app_error, int err);
/* Server: cancels c's stalled peer-opened transactions and closes c if a canceled stream
 * outlives another period (qs_quic_limits.stall_timeout_ms). now_ms is the loop's time. */
void qs_conn_sweep_stalled(struct qs_conn *c, uint64_t now_ms);
uint64_t qs_now_ns(void);
/* The client certificate check (pinned fingerprint) for qs_tls_client_cred. */
gnutls_certificate_verify_function *qs_conn_verify_fn(void);

/* ---- Transactions (net/tx.c), internal to net/ -------------------------------------------- */

/* Ready list (transactions with something to send): add/remove are idempotent. */
void qs_tx_ready_add(struct qs_tx *tx);
void qs_tx_ready_remove(struct qs_tx *tx);
bool qs_tx_has_unsent(const struct qs_tx *tx);
/* Up to max vectors of unsent bytes starting at sent_off (borrowed until acknowledged). */
size_t qs_tx_unsent_vecs(struct qs_tx *tx, ngtcp2_vec *v, size_t max);
/* n more bytes (and the FIN, if fin and nothing is left) were handed to ngtcp2. */
void qs_tx_advance(struct qs_tx *tx, size_t n, bool fin);
/* The peer acknowledged everything below end: frees those segments. */
void qs_tx_acked(struct qs_tx *tx, uint64_t end);
/* A transaction on stream sid (-1: not opened yet) reading frames in role. NULL: no memory. */
struct qs_tx *qs_tx_new(struct qs_conn *c, int64_t sid, enum qs_frame_role role);
void qs_tx_unlink_free(struct qs_tx *tx);
/* Queues on_close(err) for the next flush (never runs it inside ngtcp2 callbacks). */
void qs_tx_queue_close(struct qs_tx *tx, int err);
/* Asks for a stream shutdown with code at the next flush. */
void qs_tx_request_cancel(struct qs_tx *tx, uint64_t code);
/* The QS_QUIC_ERR_* code that tells the peer why a handler failed with err. */
uint64_t qs_tx_app_error(int err);

#endif

/* QUIC transport for both daemons: a server endpoint, a reconnecting client endpoint, and
 * transactions (one bidirectional QUIC stream each) carrying frames (core/frame.h): an OPEN
 * frame naming the transaction, MSG frames (protobuf payloads) and DATA frames (raw byte
 * runs such as chunk data). Built on ngtcp2 0.12 + GnuTLS + libuv; nothing above this layer
 * touches ngtcp2.
 *
 * Threading: every function here must be called on the thread running the uv_loop_t given
 * at creation, and every callback runs on that thread.
 *
 * Lifetimes: a struct qs_tx is owned by the transport. It stays valid from its creation
 * (qs_conn_open_tx, or the on_tx_open callback) until its on_close callback returns; the
 * transport frees it afterwards. A struct qs_conn is valid from on_conn_open until
 * on_conn_close returns. Callers never free either. */
#ifndef QS_NET_QUIC_H
#define QS_NET_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/sha256.h"

struct qs_conn;
struct qs_tx;
struct qs_quic_server;
struct qs_quic_client;

#define QS_QUIC_ALPN "quics/1"

/* Application error codes carried in RESET_STREAM / STOP_SENDING and CONNECTION_CLOSE.
 * Transaction-level codes cancel one stream; connection-level codes close the connection. */
enum qs_quic_app_error {
	QS_QUIC_ERR_NONE = 0x0,           /* clean close */
	QS_QUIC_ERR_CANCELED = 0x101,     /* the transaction was canceled by its owner */
	QS_QUIC_ERR_PROTOCOL = 0x102,     /* malformed frames on the stream */
	QS_QUIC_ERR_TOO_BIG = 0x103,      /* a frame exceeded the message size limit */
	QS_QUIC_ERR_REFUSED = 0x104,      /* no handler for the transaction name */
	QS_QUIC_ERR_INTERNAL = 0x105,     /* the handler failed */
	QS_QUIC_ERR_STALLED = 0x106,      /* no progress for the stall timeout (limits below) */
	QS_QUIC_ERR_SHUTDOWN = 0x201,     /* connection: the server is shutting down */
	QS_QUIC_ERR_LIMIT = 0x202,        /* connection: too many connections from this address */
	QS_QUIC_ERR_STALLED_PEER = 0x203, /* connection: a stalled transaction was canceled and
					   * the peer left its stream open anyway */
};

/* What a transaction does with incoming frames and when it may send more. Every member may
 * be NULL. A callback returning a negative QS_E* cancels the transaction (the peer sees
 * QS_QUIC_ERR_INTERNAL, or QS_QUIC_ERR_TOO_BIG / QS_QUIC_ERR_PROTOCOL for QS_E2BIG /
 * QS_EPROTO). Data pointers are borrowed for the duration of the call. */
struct qs_tx_ops {
	/* A complete MSG frame arrived. */
	int (*on_msg)(struct qs_tx *tx, const uint8_t *payload, size_t len, void *arg);
	/* Part of a DATA frame arrived: bytes [offset, offset + len) of a frame of `total` bytes.
	 */
	int (*on_data)(struct qs_tx *tx, const uint8_t *p, size_t len, uint64_t offset,
		       uint64_t total, void *arg);
	/* The peer finished sending (clean end of its half at a frame boundary). */
	int (*on_end)(struct qs_tx *tx, void *arg);
	/* Bytes queued for sending fell below the low-water mark: the sender may queue more. */
	void (*on_writable)(struct qs_tx *tx, void *arg);
	/* The transaction is over: err is 0 when both halves ended cleanly, QS_ECANCELED if
	 * either side canceled it (qs_tx_error tells the peer's code), QS_ECONN if the
	 * connection went away. Called exactly once; the tx is freed after it returns. */
	void (*on_close)(struct qs_tx *tx, int err, void *arg);
};

/* Incoming transaction: name is the OPEN frame's name (NUL-terminated, borrowed). Return 0
 * after calling qs_tx_set_ops, or a negative QS_E* to refuse it (the peer sees
 * QS_QUIC_ERR_REFUSED). */
typedef int (*qs_tx_open_fn)(struct qs_conn *conn, struct qs_tx *tx, const char *name, void *arg);
typedef void (*qs_conn_fn)(struct qs_conn *conn, void *arg);
/* A connection ended; err says why (0: closed cleanly by either side). */
typedef void (*qs_conn_close_fn)(struct qs_conn *conn, int err, void *arg);

/* Limits and tuning shared by both endpoints. qs_quic_limits_default fills the defaults. */
struct qs_quic_limits {
	uint32_t max_streams;           /* concurrent peer-opened transactions per connection */
	uint32_t max_msg_bytes;         /* largest MSG frame accepted (<= QS_FRAME_MSG_MAX) */
	uint64_t stream_window_bytes;   /* per-stream receive window (auto-tuned up to this) */
	uint64_t conn_window_bytes;     /* per-connection receive window */
	uint64_t send_high_water_bytes; /* qs_tx_writable() false above this many queued bytes */
	uint64_t idle_timeout_ms;       /* connection idle timeout */
	uint64_t handshake_timeout_ms;
	/* Server only. A transaction the peer opened that waits on the peer (its request is not
	 * complete, or our data is not acknowledged) without progress (no byte received, none
	 * acknowledged) for this long is canceled with QS_QUIC_ERR_STALLED: a client that starts
	 * an upload and never sends it, or never reads a download, does not hold the server's
	 * state for it. Paused transactions (qs_tx_pause_recv) wait on us, not on the peer. If
	 * the canceled stream is still open one more period later, the connection is closed with
	 * QS_QUIC_ERR_STALLED_PEER. 0: never (the default of qs_quic_limits_default;
	 * qs_quic_server_config_default sets 60 s). */
	uint64_t stall_timeout_ms;
	uint32_t max_udp_payload; /* cap for packets on paths that allow large ones */
	bool no_gso;              /* disable UDP GSO (tests the fallback path) */
};
void qs_quic_limits_default(struct qs_quic_limits *l);

/* ---- Server ---------------------------------------------------------------------------- */

struct qs_quic_server_config {
	const char *addr;     /* numeric IPv4/IPv6 address to bind ("0.0.0.0", "::", ...) */
	uint16_t port;        /* 0 picks a free port (see qs_quic_server_port) */
	const char *cert_dir; /* holds key.pem, cert.pem, secret.bin (created on first start) */
	bool validate_addr;   /* send Retry to unvalidated clients (default true via _default) */
	uint32_t max_conns_per_ip;
	struct qs_quic_limits limits;
	qs_conn_fn on_conn_open; /* handshake completed */
	qs_conn_close_fn on_conn_close;
	qs_tx_open_fn on_tx_open;
	void *arg;
};
void qs_quic_server_config_default(struct qs_quic_server_config *c);

/* Creates the credentials in cert_dir if missing (key and secret mode 0600), binds and
 * starts serving on loop. Errors: QS_EINVAL (address), QS_EIO / QS_EACCES (files, bind),
 * QS_ETLS, QS_ENOMEM. */
int qs_quic_server_new(uv_loop_t *loop, const struct qs_quic_server_config *cfg,
		       struct qs_quic_server **out);
uint16_t qs_quic_server_port(const struct qs_quic_server *s);
/* The certificate's SHA-256 fingerprint as 64 lower-case hex characters. */
const char *qs_quic_server_fingerprint(const struct qs_quic_server *s);
/* Closes every connection with QS_QUIC_ERR_SHUTDOWN (each gets on_conn_close), stops
 * reading, and calls done (may be NULL) once all handles are closed; then the server may
 * be freed with qs_quic_server_free. */
void qs_quic_server_shutdown(struct qs_quic_server *s, void (*done)(void *arg), void *arg);
void qs_quic_server_free(struct qs_quic_server *s);

struct qs_quic_server_stats {
	uint64_t datagrams_in, datagrams_out, dropped_in, retries_sent, resets_sent, vn_sent;
	uint64_t conns_accepted, conns_refused, conns_open;
};
void qs_quic_server_stats(const struct qs_quic_server *s, struct qs_quic_server_stats *out);

/* Bytes moved by connections, counted by the transport. stream_* are the sync protocol's own
 * bytes (frames on transaction streams, each byte once, retransmissions not counted);
 * udp_* are whole QUIC packets as handed to or taken from the socket (headers, ACKs,
 * handshake and retransmissions included). */
struct qs_quic_bytes {
	uint64_t stream_sent, stream_received;
	uint64_t udp_sent, udp_received;
};
/* Totals over every connection the server has had since it started. */
void qs_quic_server_bytes(const struct qs_quic_server *s, struct qs_quic_bytes *out);

/* ---- Client ---------------------------------------------------------------------------- */

struct qs_quic_client_config {
	const char *host; /* numeric address of the server */
	uint16_t port;
	/* Expected certificate fingerprint (64 hex chars). NULL: accept any and report it
	 * through qs_conn_peer_fingerprint (trust on first use is the caller's decision). */
	const char *pinned_fingerprint;
	uint64_t keepalive_ms;   /* PING interval while idle (0: none; default 2.5 s) */
	uint64_t backoff_min_ms; /* first reconnect delay */
	uint64_t backoff_max_ms; /* cap of the exponential backoff */
	bool reconnect;          /* reconnect after a loss (default true) */
	struct qs_quic_limits limits;
	qs_conn_fn on_connected;          /* every (re)connection: resynchronize here */
	qs_conn_close_fn on_disconnected; /* a connection ended (or an attempt failed) */
	qs_tx_open_fn on_tx_open;         /* server-opened transactions */
	void *arg;
};
void qs_quic_client_config_default(struct qs_quic_client_config *c);

/* Starts connecting at once. A certificate mismatch reports QS_ECERT through
 * on_disconnected and stops reconnecting (a changed server certificate needs the user).
 * Errors: QS_EINVAL (host), QS_ENOMEM. */
int qs_quic_client_new(uv_loop_t *loop, const struct qs_quic_client_config *cfg,
		       struct qs_quic_client **out);
/* The established connection, or NULL while (re)connecting. */
struct qs_conn *qs_quic_client_conn(struct qs_quic_client *c);
/* The last error that ended a connection or attempt (0 if none), with a message. */
int qs_quic_client_last_error(const struct qs_quic_client *c, const char **message);
/* Closes the connection cleanly and stops reconnecting; done runs when handles are closed. */
void qs_quic_client_close(struct qs_quic_client *c, void (*done)(void *arg), void *arg);
void qs_quic_client_free(struct qs_quic_client *c);
/* Totals over every connection the client has made since it started (qs_quic_bytes). */
void qs_quic_client_bytes(const struct qs_quic_client *c, struct qs_quic_bytes *out);

/* ---- Connections and transactions ------------------------------------------------------- */

/* Opens a transaction named `name` (1..64 chars of [A-Z0-9_]) on conn. The OPEN frame is
 * queued at once. It never fails because of the peer's stream limit: a transaction opened
 * over the limit waits inside the transport (in order) until the peer gives credit.
 * Errors: QS_EINVAL (name), QS_ECONN (connection closing), QS_ENOMEM. */
int qs_conn_open_tx(struct qs_conn *conn, const char *name, const struct qs_tx_ops *ops, void *arg,
		    struct qs_tx **out);
/* "a.b.c.d:port" or "[v6]:port" of the peer. */
const char *qs_conn_peer(const struct qs_conn *conn);
/* Hex SHA-256 of the peer certificate (client side), or "" on the server. */
const char *qs_conn_peer_fingerprint(const struct qs_conn *conn);
void qs_conn_set_data(struct qs_conn *conn, void *data);
void *qs_conn_data(const struct qs_conn *conn);
/* The bytes this connection has moved so far (struct qs_quic_bytes). */
void qs_conn_bytes(const struct qs_conn *conn, struct qs_quic_bytes *out);
/* Closes the connection with an application error code (QS_QUIC_ERR_*). */
void qs_conn_close(struct qs_conn *conn, uint64_t app_error);

void qs_tx_set_ops(struct qs_tx *tx, const struct qs_tx_ops *ops, void *arg);
struct qs_conn *qs_tx_conn(const struct qs_tx *tx);
/* Queues one MSG frame (copied). Errors: QS_E2BIG (over the message limit, or the send
 * queue would exceed 4x the high-water mark), QS_ESTATE (already finished/canceled). */
int qs_tx_send_msg(struct qs_tx *tx, const void *payload, size_t len);
/* Queues one DATA frame of len bytes (1..QS_FRAME_DATA_MAX). The bytes are not copied:
 * p must stay valid and unchanged until release(release_arg) runs (when the peer has
 * acknowledged them or the transaction ended); release may be NULL. If this fails, release
 * is not called. Errors: QS_EINVAL (len), QS_ESTATE, QS_ENOMEM. */
int qs_tx_send_data(struct qs_tx *tx, const void *p, size_t len, void (*release)(void *release_arg),
		    void *release_arg);
/* Queues a copy of one DATA frame (for callers whose buffer is short-lived). */
int qs_tx_send_data_copy(struct qs_tx *tx, const void *p, size_t len);
/* Ends our half after everything queued is sent. Errors: QS_ESTATE. */
int qs_tx_finish(struct qs_tx *tx);
/* Cancels both halves with code (QS_QUIC_ERR_*); on_close(QS_ECANCELED) follows. */
void qs_tx_cancel(struct qs_tx *tx, uint64_t app_error);
/* Bytes queued and not yet acknowledged by the peer. */
uint64_t qs_tx_queued(const struct qs_tx *tx);
/* True while qs_tx_queued is below the high-water mark. */
bool qs_tx_writable(const struct qs_tx *tx);
/* Pauses (true) or resumes (false) receive credit: while paused the peer can send at most
 * one more receive window on this stream. */
void qs_tx_pause_recv(struct qs_tx *tx, bool paused);
/* The application error code the peer used to cancel the transaction, if it did. */
uint64_t qs_tx_error(const struct qs_tx *tx);
uint64_t qs_tx_id(const struct qs_tx *tx);

#endif

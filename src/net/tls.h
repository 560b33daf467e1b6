/* TLS for the QUIC transport (GnuTLS): the server's persistent identity (ECDSA P-256 key,
 * self-signed certificate, static secret for Retry tokens and stateless resets) created on
 * first start, certificate fingerprints, and per-connection session set-up with ALPN
 * quics/1 and TLS 1.3 only. Loop-thread only, like the rest of net/. */
#ifndef QS_NET_TLS_H
#define QS_NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#define QS_TLS_SECRET_LEN 32
#define QS_TLS_FPR_HEX_LEN 64

struct qs_tls_identity {
	gnutls_certificate_credentials_t cred;
	uint8_t secret[QS_TLS_SECRET_LEN]; /* wiped on release */
	char fingerprint[QS_TLS_FPR_HEX_LEN + 1];
};

/* Loads key.pem, cert.pem and secret.bin from dir, creating any that is missing (dir is
 * created with mode 0700, key and secret with mode 0600, written atomically). Errors:
 * QS_EIO, QS_EACCES, QS_ETLS (unreadable or mismatched files), QS_ENOMEM. */
int qs_tls_identity_load(const char *dir, struct qs_tls_identity *out);
void qs_tls_identity_release(struct qs_tls_identity *id);

/* Hex SHA-256 of a DER certificate into out (65 bytes). Errors: QS_ETLS. */
int qs_tls_fingerprint_der(const gnutls_datum_t *der, char out[QS_TLS_FPR_HEX_LEN + 1]);

/* Creates a server session for one connection; user_ptr is what the ngtcp2 GnuTLS glue
 * expects (an ngtcp2_crypto_conn_ref *). Errors: QS_ETLS. */
int qs_tls_server_session(const struct qs_tls_identity *id, void *user_ptr, gnutls_session_t *out);

/* Client credentials whose verify function is verify (it decides on the peer certificate;
 * it must return 0 to accept). Errors: QS_ETLS. */
int qs_tls_client_cred(gnutls_certificate_verify_function *verify,
		       gnutls_certificate_credentials_t *out);
int qs_tls_client_session(gnutls_certificate_credentials_t cred, void *user_ptr,
			  gnutls_session_t *out);

/* Hex fingerprint of the peer's leaf certificate of an in-progress handshake. Errors:
 * QS_ETLS when the peer sent none. */
int qs_tls_peer_fingerprint(gnutls_session_t session, char out[QS_TLS_FPR_HEX_LEN + 1]);

#endif

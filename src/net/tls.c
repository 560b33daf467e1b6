/* Server identity files and GnuTLS session set-up for QUIC. The identity is created once
 * and kept: clients pin the certificate's fingerprint, and the static secret makes Retry
 * tokens and stateless resets valid across server restarts. */
#include "net/tls.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "core/sha256.h"
#include "net/quic.h"

/* TLS 1.3 only; the compatibility mode is meaningless inside QUIC. */
static const char tls_priority[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE";

static const gnutls_datum_t tls_alpn = {(unsigned char *)QS_QUIC_ALPN, sizeof(QS_QUIC_ALPN) - 1};

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= cap ? QS_E2BIG : 0;
}

/* Writes data to path atomically (temp file + fsync + rename) with the given mode. */
static int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return QS_E2BIG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return qs_err_from_errno(errno);
	int rc = 0;
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = qs_err_from_errno(errno);
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = qs_err_from_errno(errno);
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = qs_err_from_errno(errno);
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int read_file(const char *path, gnutls_datum_t *out)
{
	int rc = gnutls_load_file(path, out);
	if (rc == GNUTLS_E_FILE_ERROR)
		return access(path, F_OK) == 0 ? QS_EACCES : QS_ENOENT;
	return rc < 0 ? QS_EIO : 0;
}

static int create_key(const char *key_path, gnutls_x509_privkey_t *out)
{
	gnutls_x509_privkey_t key;
	gnutls_datum_t pem = {NULL, 0};
	int rc = QS_ETLS;
	if (gnutls_x509_privkey_init(&key) < 0)
		return QS_ENOMEM;
	if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0)
		goto out;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &pem) < 0)
		goto out;
	rc = write_file_atomic(key_path, pem.data, pem.size, 0600);
out:
	if (pem.data != NULL) {
		qs_wipe(pem.data, pem.size);
		gnutls_free(pem.data);
	}
	if (rc == 0)
		*out = key;
	else
		gnutls_x509_privkey_deinit(key);
	return rc;
}

static int load_key(const char *key_path, gnutls_x509_privkey_t *out)
{
	gnutls_datum_t pem;
	int rc = read_file(key_path, &pem);
	if (rc != 0)
		return rc;
	gnutls_x509_privkey_t key;
	rc = QS_ENOMEM;
	if (gnutls_x509_privkey_init(&key) >= 0) {
		rc = gnutls_x509_privkey_import(key, &pem, GNUTLS_X509_FMT_PEM) < 0 ? QS_ETLS : 0;
		if (rc != 0)
			gnutls_x509_privkey_deinit(key);
	}
	qs_wipe(pem.data, pem.size);
	gnutls_free(pem.data);
	if (rc == 0)
		*out = key;
	return rc;
}

static int create_cert(const char *cert_path, gnutls_x509_privkey_t key)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t pem = {NULL, 0};
	uint8_t serial[16];
	int rc = QS_ETLS;
	if (gnutls_x509_crt_init(&crt) < 0)
		return QS_ENOMEM;
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)) < 0)
		goto out;
	serial[0] &= 0x7f; /* a positive serial number */
	time_t now = time(NULL);
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 86400) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 100L * 365 * 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "quics-server", 12) <
		    0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) < 0)
		goto out;
	rc = write_file_atomic(cert_path, pem.data, pem.size, 0644);
out:
	gnutls_free(pem.data);
	gnutls_x509_crt_deinit(crt);
	return rc;
}

static int load_secret(const char *path, uint8_t secret[QS_TLS_SECRET_LEN])
{
	gnutls_datum_t d;
	int rc = read_file(path, &d);
	if (rc == QS_ENOENT) {
		if (gnutls_rnd(GNUTLS_RND_KEY, secret, QS_TLS_SECRET_LEN) < 0)
			return QS_ETLS;
		return write_file_atomic(path, secret, QS_TLS_SECRET_LEN, 0600);
	}
	if (rc != 0)
		return rc;
	rc = d.size == QS_TLS_SECRET_LEN ? 0 : QS_ETLS;
	if (rc == 0)
		memcpy(secret, d.data, QS_TLS_SECRET_LEN);
	qs_wipe(d.data, d.size);
	gnutls_free(d.data);
	return rc;
}

int qs_tls_fingerprint_der(const gnutls_datum_t *der, char out[QS_TLS_FPR_HEX_LEN + 1])
{
	uint8_t d[QS_SHA256_LEN];
	if (qs_sha256(der->data, der->size, d) != 0)
		return QS_ETLS;
	qs_hex_encode(d, sizeof(d), out);
	return 0;
}

static int cert_fingerprint(const char *cert_path, char out[QS_TLS_FPR_HEX_LEN + 1])
{
	gnutls_datum_t pem, der = {NULL, 0};
	int rc = read_file(cert_path, &pem);
	if (rc != 0)
		return rc;
	gnutls_x509_crt_t crt;
	rc = QS_ETLS;
	if (gnutls_x509_crt_init(&crt) >= 0) {
		if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) >= 0 &&
		    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) >= 0)
			rc = qs_tls_fingerprint_der(&der, out);
		gnutls_free(der.data);
		gnutls_x509_crt_deinit(crt);
	}
	gnutls_free(pem.data);
	return rc;
}

int qs_tls_identity_load(const char *dir, struct qs_tls_identity *out)
{
	char key_path[4096], cert_path[4096], secret_path[4096];
	if (path_join(key_path, sizeof(key_path), dir, "key.pem") != 0 ||
	    path_join(cert_path, sizeof(cert_path), dir, "cert.pem") != 0 ||
	    path_join(secret_path, sizeof(secret_path), dir, "secret.bin") != 0)
		return QS_E2BIG;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return qs_err_from_errno(errno);

	gnutls_x509_privkey_t key;
	int rc = load_key(key_path, &key);
	bool created = false;
	if (rc == QS_ENOENT) {
		rc = create_key(key_path, &key);
		created = true;
	}
	if (rc != 0)
		return rc;
	if (created || access(cert_path, F_OK) != 0)
		rc = create_cert(cert_path, key);
	gnutls_x509_privkey_deinit(key);
	if (rc == 0)
		rc = load_secret(secret_path, out->secret);
	if (rc == 0)
		rc = cert_fingerprint(cert_path, out->fingerprint);
	if (rc != 0)
		return rc;
	if (gnutls_certificate_allocate_credentials(&out->cred) < 0)
		return QS_ENOMEM;
	if (gnutls_certificate_set_x509_key_file(out->cred, cert_path, key_path,
						 GNUTLS_X509_FMT_PEM) < 0) {
		gnutls_certificate_free_credentials(out->cred);
		qs_wipe(out->secret, sizeof(out->secret));
		return QS_ETLS;
	}
	if (created)
		qs_info("tls", "event=identity_created dir=%s fingerprint=%s", dir,
			out->fingerprint);
	return 0;
}

void qs_tls_identity_release(struct qs_tls_identity *id)
{
	if (id->cred != NULL)
		gnutls_certificate_free_credentials(id->cred);
	id->cred = NULL;
	qs_wipe(id->secret, sizeof(id->secret));
}

int qs_tls_server_session(const struct qs_tls_identity *id, void *user_ptr, gnutls_session_t *out)
{
	gnutls_session_t s;
	if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_END_OF_EARLY_DATA) < 0)
		return QS_ENOMEM;
	if (gnutls_priority_set_direct(s, tls_priority, NULL) < 0 ||
	    ngtcp2_crypto_gnutls_configure_server_session(s) != 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, id->cred) < 0 ||
	    gnutls_alpn_set_protocols(s, &tls_alpn, 1,
				      GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE) < 0) {
		gnutls_deinit(s);
		return QS_ETLS;
	}
	gnutls_session_set_ptr(s, user_ptr);
	*out = s;
	return 0;
}

int qs_tls_client_cred(gnutls_certificate_verify_function *verify,
		       gnutls_certificate_credentials_t *out)
{
	gnutls_certificate_credentials_t cred;
	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return QS_ENOMEM;
	gnutls_certificate_set_verify_function(cred, verify);
	*out = cred;
	return 0;
}

int qs_tls_client_session(gnutls_certificate_credentials_t cred, void *user_ptr,
			  gnutls_session_t *out)
{
	gnutls_session_t s;
	if (gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NO_END_OF_EARLY_DATA) < 0)
		return QS_ENOMEM;
	if (gnutls_priority_set_direct(s, tls_priority, NULL) < 0 ||
	    ngtcp2_crypto_gnutls_configure_client_session(s) != 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0 ||
	    gnutls_alpn_set_protocols(s, &tls_alpn, 1, GNUTLS_ALPN_MANDATORY) < 0 ||
	    gnutls_server_name_set(s, GNUTLS_NAME_DNS, "quics", 5) < 0) {
		gnutls_deinit(s);
		return QS_ETLS;
	}
	gnutls_session_set_ptr(s, user_ptr);
	*out = s;
	return 0;
}

int qs_tls_peer_fingerprint(gnutls_session_t session, char out[QS_TLS_FPR_HEX_LEN + 1])
{
	unsigned int n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
	if (certs == NULL || n == 0)
		return QS_ETLS;
	return qs_tls_fingerprint_der(&certs[0], out);
}

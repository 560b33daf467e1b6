/* SHA-256 via GnuTLS's hash API (which uses the CPU's SHA extensions / AVX2 code paths),
 * and hex encoding of digests. */
#include "core/sha256.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "base/err.h"

int qs_sha256_init(struct qs_sha256 *s)
{
	gnutls_hash_hd_t h;
	if (gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return QS_ENOMEM;
	s->h = h;
	return 0;
}

void qs_sha256_update(struct qs_sha256 *s, const void *data, size_t len)
{
	if (len > 0)
		gnutls_hash((gnutls_hash_hd_t)s->h, data, len);
}

void qs_sha256_digest(struct qs_sha256 *s, uint8_t out[QS_SHA256_LEN])
{
	/* gnutls_hash_output resets the context after producing the digest. */
	gnutls_hash_output((gnutls_hash_hd_t)s->h, out);
}

void qs_sha256_final(struct qs_sha256 *s, uint8_t out[QS_SHA256_LEN])
{
	gnutls_hash_deinit((gnutls_hash_hd_t)s->h, out);
	s->h = NULL;
}

void qs_sha256_release(struct qs_sha256 *s)
{
	if (s->h != NULL)
		gnutls_hash_deinit((gnutls_hash_hd_t)s->h, NULL);
	s->h = NULL;
}

int qs_sha256(const void *data, size_t len, uint8_t out[QS_SHA256_LEN])
{
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out) < 0)
		return QS_ENOMEM;
	return 0;
}

void qs_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int qs_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t n)
{
	if (in_len / 2 != n || in_len % 2 != 0)
		return QS_EINVAL;
	for (size_t i = 0; i < in_len; i++) {
		if (hex_value(in[i]) < 0)
			return QS_EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hex_value(in[2 * i]) << 4 | hex_value(in[2 * i + 1]));
	return 0;
}

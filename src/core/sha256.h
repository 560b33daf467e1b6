/* SHA-256 through GnuTLS (hardware-accelerated where the CPU allows) and hex encoding.
 * Pure computation: no I/O. A struct qs_sha256 is used by one thread at a time. */
#ifndef QS_CORE_SHA256_H
#define QS_CORE_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QS_SHA256_LEN 32
#define QS_SHA256_HEX_LEN 64

struct qs_sha256 {
	void *h; /* gnutls_hash_hd_t */
};

/* Starts a hash. Errors: QS_ENOMEM. On success release with qs_sha256_final or
 * qs_sha256_release. */
int qs_sha256_init(struct qs_sha256 *s);
void qs_sha256_update(struct qs_sha256 *s, const void *data, size_t len);
/* Writes the digest and resets the state so it can hash a new message. */
void qs_sha256_digest(struct qs_sha256 *s, uint8_t out[QS_SHA256_LEN]);
/* Writes the digest and releases the state. */
void qs_sha256_final(struct qs_sha256 *s, uint8_t out[QS_SHA256_LEN]);
void qs_sha256_release(struct qs_sha256 *s);

/* One-shot hash. Errors: QS_ENOMEM. */
int qs_sha256(const void *data, size_t len, uint8_t out[QS_SHA256_LEN]);

/* Lower-case hex of n bytes into out (2n chars + NUL; out must hold 2n + 1). */
void qs_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly 2n hex chars (either case) from in into out[n]. Writes out only on
 * success. Errors: QS_EINVAL (wrong length or non-hex character). */
int qs_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t n);

#endif

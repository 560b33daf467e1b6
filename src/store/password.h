/* Password hashing for the server password and root passwords (DESIGN.md section 6):
 * Argon2id through libargon2, stored as the standard encoded string
 * ("$argon2id$v=19$m=...,t=...,p=...$salt$hash"), which carries its own parameters, so
 * stored hashes stay verifiable after the defaults change. The caller supplies the salt
 * (the daemon draws it from gnutls_rnd): this layer has no randomness of its own.
 * Stateless and thread-safe. Both functions are slow on purpose (tens of milliseconds with
 * the defaults): call them from a worker thread, not the event loop. */
#ifndef QS_STORE_PASSWORD_H
#define QS_STORE_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define QS_PASSWORD_SALT_MIN 16 /* bytes of salt accepted: 16 .. 32 */
#define QS_PASSWORD_SALT_MAX 32
#define QS_PASSWORD_MAX 4096      /* bytes of password accepted (the wire's string limit) */
#define QS_PASSWORD_HASH_MAX 128  /* bytes of an encoded hash, with its NUL (meta.h's fields) */
#define QS_PASSWORD_DIGEST_LEN 32 /* Argon2 output length in bytes */

/* Argon2id cost parameters. */
struct qs_password_params {
	uint32_t t_cost;      /* passes over memory, >= 1 */
	uint32_t m_cost_kib;  /* memory in KiB, >= 8 * parallelism */
	uint32_t parallelism; /* lanes; libargon2 computes them one after another here */
};

/* The defaults: t=3, m=19 MiB, p=1 (RFC 9106's memory-constrained profile raised to 3
 * passes; above OWASP's floor of m=19 MiB, t=2). Measured on the development machine
 * (docs/store.md): about 50-70 ms per hash, where m=64 MiB took over 300 ms. */
extern const struct qs_password_params qs_password_default_params;

/* Hashes password (pw_len bytes, borrowed; may contain any bytes) with salt (borrowed) and
 * writes the NUL-terminated encoded hash to out (cap bytes). The encoded hash is at most
 * QS_PASSWORD_HASH_MAX bytes with its NUL (the size of meta.h's hash fields): about 100
 * with the defaults and a 16-byte salt, 120 with a 32-byte salt. params NULL means
 * qs_password_default_params. out is written only on success. Errors: QS_EINVAL (salt length
 * outside 16..32, parameters libargon2 refuses), QS_E2BIG (password longer than
 * QS_PASSWORD_MAX, or the encoded hash longer than cap or QS_PASSWORD_HASH_MAX), QS_ENOMEM. */
int qs_password_hash(const struct qs_password_params *params, const void *password, size_t pw_len,
		     const uint8_t *salt, size_t salt_len, char *out, size_t cap);

/* Checks password against an encoded Argon2id hash in constant time (libargon2 compares
 * the digests with a constant-time loop). Returns 0 when it matches. Errors: QS_EACCES (wrong
 * password), QS_EINVAL (encoded is not an Argon2id hash this build can read, or longer than
 * QS_PASSWORD_HASH_MAX), QS_E2BIG (password longer than QS_PASSWORD_MAX), QS_ENOMEM. */
int qs_password_verify(const char *encoded, const void *password, size_t pw_len);

#endif

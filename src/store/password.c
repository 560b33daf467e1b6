/* Argon2id password hashes through libargon2's high-level API. Owns nothing: the salt comes
 * from the caller, libargon2 wipes its working memory and digest before freeing them, and the
 * only secret this file holds is the caller's borrowed password. */
#include "store/password.h"

#include <argon2.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

const struct qs_password_params qs_password_default_params = {
	.t_cost = 3,
	.m_cost_kib = 19 * 1024,
	.parallelism = 1,
};

static const char argon2id_prefix[] = "$argon2id$";

static int password_err(int argon2_rc)
{
	switch (argon2_rc) {
	case ARGON2_OK: return 0;
	case ARGON2_MEMORY_ALLOCATION_ERROR: return QS_ENOMEM;
	case ARGON2_VERIFY_MISMATCH: return QS_EACCES;
	case ARGON2_PWD_TOO_LONG: return QS_E2BIG;
	default: return QS_EINVAL;
	}
}

int qs_password_hash(const struct qs_password_params *params, const void *password, size_t pw_len,
		     const uint8_t *salt, size_t salt_len, char *out, size_t cap)
{
	const struct qs_password_params *p = params ? params : &qs_password_default_params;
	if (salt_len < QS_PASSWORD_SALT_MIN || salt_len > QS_PASSWORD_SALT_MAX)
		return QS_EINVAL;
	if (pw_len > QS_PASSWORD_MAX)
		return QS_E2BIG;
	if (p->t_cost < 1 || p->parallelism < 1 || p->m_cost_kib / 8 < p->parallelism)
		return QS_EINVAL;
	size_t need = argon2_encodedlen(p->t_cost, p->m_cost_kib, p->parallelism,
					(uint32_t)salt_len, QS_PASSWORD_DIGEST_LEN, Argon2_id);
	char encoded[QS_PASSWORD_HASH_MAX];
	if (need > cap || need > sizeof(encoded))
		return QS_E2BIG;
	int rc = argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, password, pw_len,
				       salt, salt_len, QS_PASSWORD_DIGEST_LEN, encoded,
				       sizeof(encoded));
	if (rc == ARGON2_OK)
		memcpy(out, encoded, strlen(encoded) + 1);
	qs_wipe(encoded, sizeof(encoded));
	return password_err(rc);
}

int qs_password_verify(const char *encoded, const void *password, size_t pw_len)
{
	size_t len = strnlen(encoded, QS_PASSWORD_HASH_MAX);
	if (len >= QS_PASSWORD_HASH_MAX)
		return QS_EINVAL;
	if (strncmp(encoded, argon2id_prefix, sizeof(argon2id_prefix) - 1) != 0)
		return QS_EINVAL;
	if (pw_len > QS_PASSWORD_MAX)
		return QS_E2BIG;
	return password_err(argon2id_verify(encoded, password, pw_len));
}

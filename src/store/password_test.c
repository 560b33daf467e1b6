/* Tests for Argon2id password hashing: round trips with cheap explicit parameters, known
 * answers from the Argon2 reference test vectors, the encoded form carrying its parameters,
 * salts and passwords at and past their limits, malformed hashes, and one hash with the
 * default parameters. No timing assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "store/password.h"

static const struct qs_password_params cheap = {.t_cost = 1, .m_cost_kib = 64, .parallelism = 1};

static void salt_of(uint8_t *salt, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		salt[i] = (uint8_t)(seed + i * 7u);
}

static void test_round_trip(void **state)
{
	(void)state;
	uint8_t salt[16];
	salt_of(salt, sizeof(salt), 1);
	char hash[QS_PASSWORD_HASH_MAX];
	assert_int_equal(qs_password_hash(&cheap, "correct horse", 13, salt, sizeof(salt), hash,
					  sizeof(hash)),
			 0);
	assert_true(strncmp(hash, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
	assert_int_equal(qs_password_verify(hash, "correct horse", 13), 0);
	assert_int_equal(qs_password_verify(hash, "correct horsE", 13), QS_EACCES);
	assert_int_equal(qs_password_verify(hash, "correct hors", 12), QS_EACCES);
	assert_int_equal(qs_password_verify(hash, "", 0), QS_EACCES);
}

static void test_salt_decides_and_is_deterministic(void **state)
{
	(void)state;
	uint8_t salt[16];
	char a[QS_PASSWORD_HASH_MAX], b[QS_PASSWORD_HASH_MAX], c[QS_PASSWORD_HASH_MAX];
	salt_of(salt, sizeof(salt), 1);
	assert_int_equal(qs_password_hash(&cheap, "pw", 2, salt, sizeof(salt), a, sizeof(a)), 0);
	assert_int_equal(qs_password_hash(&cheap, "pw", 2, salt, sizeof(salt), b, sizeof(b)), 0);
	assert_string_equal(a, b);
	salt[15] ^= 1;
	assert_int_equal(qs_password_hash(&cheap, "pw", 2, salt, sizeof(salt), c, sizeof(c)), 0);
	assert_string_not_equal(a, c);
	assert_int_equal(qs_password_verify(c, "pw", 2), 0);
}

/* The password is bytes: an embedded NUL and what follows it count. */
static void test_password_is_bytes(void **state)
{
	(void)state;
	uint8_t salt[32];
	salt_of(salt, sizeof(salt), 3);
	char hash[QS_PASSWORD_HASH_MAX];
	assert_int_equal(
		qs_password_hash(&cheap, "a\0b", 3, salt, sizeof(salt), hash, sizeof(hash)), 0);
	assert_int_equal(qs_password_verify(hash, "a\0b", 3), 0);
	assert_int_equal(qs_password_verify(hash, "a\0c", 3), QS_EACCES);
	assert_int_equal(qs_password_verify(hash, "a", 1), QS_EACCES);
}

/* Reference vectors of the Argon2 specification's implementation (password "password", salt
 * "somesalt"): verification reads the parameters from the encoded string. */
static void test_reference_vectors(void **state)
{
	(void)state;
	static const char *const vectors[] = {
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/"
		"uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/"
		"5U52iv1cDc",
	};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(qs_password_verify(vectors[i], "password", 8), 0);
		assert_int_equal(qs_password_verify(vectors[i], "passwore", 8), QS_EACCES);
	}
}

static void test_limits(void **state)
{
	(void)state;
	uint8_t salt[QS_PASSWORD_SALT_MAX + 1];
	salt_of(salt, sizeof(salt), 5);
	char hash[QS_PASSWORD_HASH_MAX];
	memset(hash, 'x', sizeof(hash));
	static char pw[QS_PASSWORD_MAX + 1];
	memset(pw, 'p', sizeof(pw));
	assert_int_equal(
		qs_password_hash(&cheap, pw, 1, salt, QS_PASSWORD_SALT_MIN - 1, hash, sizeof(hash)),
		QS_EINVAL);
	assert_int_equal(
		qs_password_hash(&cheap, pw, 1, salt, QS_PASSWORD_SALT_MAX + 1, hash, sizeof(hash)),
		QS_EINVAL);
	assert_int_equal(
		qs_password_hash(&cheap, pw, QS_PASSWORD_MAX + 1, salt, 16, hash, sizeof(hash)),
		QS_E2BIG);
	assert_int_equal(qs_password_hash(&cheap, pw, 1, salt, 16, hash, 40), QS_E2BIG);
	struct qs_password_params bad = cheap;
	bad.t_cost = 0;
	assert_int_equal(qs_password_hash(&bad, pw, 1, salt, 16, hash, sizeof(hash)), QS_EINVAL);
	bad = cheap;
	bad.parallelism = 0;
	assert_int_equal(qs_password_hash(&bad, pw, 1, salt, 16, hash, sizeof(hash)), QS_EINVAL);
	bad = cheap;
	bad.m_cost_kib = 7;
	assert_int_equal(qs_password_hash(&bad, pw, 1, salt, 16, hash, sizeof(hash)), QS_EINVAL);
	bad.m_cost_kib = 4000000000u; /* an encoding past 128 bytes: refused before hashing */
	bad.t_cost = 4000000000u;
	assert_int_equal(
		qs_password_hash(&bad, pw, 1, salt, QS_PASSWORD_SALT_MAX, hash, sizeof(hash)),
		QS_E2BIG);
	assert_int_equal(hash[0], 'x'); /* nothing written on error */

	/* At the limits: a 32-byte salt fits the 128-byte field, the longest password works. */
	assert_int_equal(qs_password_hash(&cheap, pw, QS_PASSWORD_MAX, salt, QS_PASSWORD_SALT_MAX,
					  hash, sizeof(hash)),
			 0);
	assert_true(strlen(hash) < QS_PASSWORD_HASH_MAX);
	assert_int_equal(qs_password_verify(hash, pw, QS_PASSWORD_MAX), 0);
	assert_int_equal(qs_password_verify(hash, pw, QS_PASSWORD_MAX + 1), QS_E2BIG);
}

static void test_malformed_hashes(void **state)
{
	(void)state;
	uint8_t salt[16];
	salt_of(salt, sizeof(salt), 9);
	char hash[QS_PASSWORD_HASH_MAX];
	assert_int_equal(qs_password_hash(&cheap, "pw", 2, salt, 16, hash, sizeof(hash)), 0);
	char cut[QS_PASSWORD_HASH_MAX];
	memcpy(cut, hash, sizeof(cut));
	cut[strlen(cut) - 5] = '\0';
	assert_int_equal(qs_password_verify(cut, "pw", 2), QS_EINVAL);
	assert_int_equal(qs_password_verify("", "pw", 2), QS_EINVAL);
	assert_int_equal(qs_password_verify("plaintext", "pw", 2), QS_EINVAL);
	assert_int_equal(qs_password_verify("$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/"
					    "uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
					    "password", 8),
			 QS_EINVAL);
	char longer[QS_PASSWORD_HASH_MAX + 8];
	memset(longer, 'a', sizeof(longer) - 1);
	memcpy(longer, "$argon2id$", 10);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(qs_password_verify(longer, "pw", 2), QS_EINVAL);
}

static void test_default_params(void **state)
{
	(void)state;
	uint8_t salt[16];
	salt_of(salt, sizeof(salt), 11);
	char hash[QS_PASSWORD_HASH_MAX];
	assert_int_equal(qs_password_hash(NULL, "server secret", 13, salt, 16, hash, sizeof(hash)),
			 0);
	assert_true(strncmp(hash, "$argon2id$v=19$m=19456,t=3,p=1$", 31) == 0);
	assert_int_equal(qs_password_verify(hash, "server secret", 13), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_salt_decides_and_is_deterministic),
		cmocka_unit_test(test_password_is_bytes),
		cmocka_unit_test(test_reference_vectors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_malformed_hashes),
		cmocka_unit_test(test_default_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

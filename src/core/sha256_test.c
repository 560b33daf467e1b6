/* SHA-256 against FIPS 180-2 vectors, streaming equals one-shot, hex round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/sha256.h"

static void check_hex(const char *msg, const char *want)
{
	uint8_t d[QS_SHA256_LEN];
	char hex[QS_SHA256_HEX_LEN + 1];
	assert_int_equal(qs_sha256(msg, strlen(msg), d), 0);
	qs_hex_encode(d, sizeof(d), hex);
	assert_string_equal(hex, want);
}

static void test_known_vectors(void **state)
{
	(void)state;
	check_hex("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_hex("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_streaming_equals_oneshot(void **state)
{
	(void)state;
	uint8_t data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + 7);
	uint8_t want[QS_SHA256_LEN], got[QS_SHA256_LEN];
	assert_int_equal(qs_sha256(data, sizeof(data), want), 0);
	struct qs_sha256 s;
	assert_int_equal(qs_sha256_init(&s), 0);
	for (size_t off = 0, step = 1; off < sizeof(data); off += step, step = step * 3 % 997 + 1) {
		size_t n = sizeof(data) - off < step ? sizeof(data) - off : step;
		qs_sha256_update(&s, data + off, n);
	}
	qs_sha256_digest(&s, got);
	assert_memory_equal(got, want, QS_SHA256_LEN);
	/* After digest the state is reset and hashes a new message. */
	qs_sha256_update(&s, "abc", 3);
	qs_sha256_final(&s, got);
	uint8_t abc[QS_SHA256_LEN];
	assert_int_equal(qs_sha256("abc", 3, abc), 0);
	assert_memory_equal(got, abc, QS_SHA256_LEN);
}

static void test_hex_round_trip_and_errors(void **state)
{
	(void)state;
	const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
	char hex[9];
	qs_hex_encode(in, sizeof(in), hex);
	assert_string_equal(hex, "0001abff");
	uint8_t out[4] = {9, 9, 9, 9};
	assert_int_equal(qs_hex_decode("0001ABff", 8, out, 4), 0);
	assert_memory_equal(out, in, 4);
	uint8_t keep[4] = {9, 9, 9, 9};
	assert_int_equal(qs_hex_decode("0001abf", 7, keep, 4), QS_EINVAL);
	assert_int_equal(qs_hex_decode("0001abfg", 8, keep, 4), QS_EINVAL);
	assert_int_equal(qs_hex_decode("0001abff00", 10, keep, 4), QS_EINVAL);
	assert_int_equal(keep[0], 9);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_streaming_equals_oneshot),
		cmocka_unit_test(test_hex_round_trip_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* FileState rules: what a correct sender builds passes; each broken rule is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/filestate.h"
#include "core/sha256.h"

static void test_round_trip_and_rules(void **state)
{
	(void)state;
	const uint8_t data[] = "small file content";
	uint8_t h[QS_SHA256_LEN];
	assert_int_equal(qs_sha256(data, sizeof(data), h), 0);
	struct qs_manifest m;
	qs_manifest_init(&m);
	assert_int_equal(qs_manifest_append(&m, h, sizeof(data)), 0);
	struct qs_filestate_out out;
	assert_int_equal(
		qs_filestate_out_init(&out, QS_KIND_FILE, 0644, 5, &m, data, sizeof(data), NULL),
		0);
	assert_int_equal(qs_filestate_check(&out.st), 0);
	struct qs_content c1;
	struct qs_buf enc;
	qs_buf_init(&enc, 1 << 20);
	assert_int_equal(qs_filestate_content(&out.st, &c1, &enc), 0);
	assert_int_equal(c1.kind, QS_KIND_FILE);
	/* Inline bytes that do not match the chunk hash. */
	uint8_t bad[sizeof(data)];
	memcpy(bad, data, sizeof(data));
	bad[0] ^= 1;
	out.st.inline_data.data = bad;
	assert_int_equal(qs_filestate_check(&out.st), QS_EPROTO);
	out.st.inline_data.data = (uint8_t *)(uintptr_t)data;
	/* Size that is not the sum of the chunks. */
	out.st.size++;
	assert_int_equal(qs_filestate_check(&out.st), QS_EPROTO);
	out.st.size--;
	/* Mode outside 07777, unknown kind. */
	out.st.mode = 010000;
	assert_int_equal(qs_filestate_check(&out.st), QS_EPROTO);
	out.st.mode = 0644;
	out.st.kind = QUICS__FILE_KIND__FILE_KIND_UNSPECIFIED;
	assert_int_equal(qs_filestate_check(&out.st), QS_EPROTO);
	/* A directory with content, a symlink without a target. */
	out.st.kind = QUICS__FILE_KIND__FILE_KIND_DIR;
	assert_int_equal(qs_filestate_check(&out.st), QS_EPROTO);
	qs_filestate_out_release(&out);
	assert_int_equal(qs_filestate_out_init(&out, QS_KIND_SYMLINK, 0, 0, NULL, NULL, 0, ""), 0);
	assert_int_equal(qs_filestate_check(&out.st), QS_EPROTO);
	qs_filestate_out_release(&out);
	assert_int_equal(qs_filestate_out_init(&out, QS_KIND_SYMLINK, 0, 0, NULL, NULL, 0, "t"), 0);
	assert_int_equal(qs_filestate_check(&out.st), 0);
	qs_filestate_out_release(&out);
	qs_buf_release(&enc);
	qs_manifest_release(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_and_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

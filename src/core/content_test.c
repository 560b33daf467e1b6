/* Content identity: equal inputs give equal content, any relevant difference a different
 * one, and irrelevant inputs (mode of a symlink, bytes of a directory) are ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/err.h"
#include "core/content.h"

static void test_identity(void **state)
{
	(void)state;
	const uint8_t m1[] = "manifest-one", m2[] = "manifest-two";
	struct qs_content a, b;
	assert_int_equal(qs_content_make(QS_KIND_FILE, 0644, m1, sizeof(m1), &a), 0);
	assert_int_equal(qs_content_make(QS_KIND_FILE, 0644, m1, sizeof(m1), &b), 0);
	assert_true(qs_content_equal(&a, &b));
	assert_int_equal(qs_content_make(QS_KIND_FILE, 0755, m1, sizeof(m1), &b), 0);
	assert_false(qs_content_equal(&a, &b)); /* chmod is a change */
	assert_int_equal(qs_content_make(QS_KIND_FILE, 0644, m2, sizeof(m2), &b), 0);
	assert_false(qs_content_equal(&a, &b));
	assert_int_equal(qs_content_make(QS_KIND_SYMLINK, 0777, m1, sizeof(m1), &b), 0);
	assert_false(qs_content_equal(&a, &b)); /* a symlink is not a file with that text */
	struct qs_content s1, s2;
	assert_int_equal(qs_content_make(QS_KIND_SYMLINK, 0777, m1, sizeof(m1), &s1), 0);
	assert_int_equal(qs_content_make(QS_KIND_SYMLINK, 0700, m1, sizeof(m1), &s2), 0);
	assert_true(qs_content_equal(&s1, &s2)); /* symlink modes are not content */
	struct qs_content d1, d2;
	assert_int_equal(qs_content_make(QS_KIND_DIR, 0755, m1, sizeof(m1), &d1), 0);
	assert_int_equal(qs_content_make(QS_KIND_DIR, 0755, NULL, 0, &d2), 0);
	assert_true(qs_content_equal(&d1, &d2)); /* a directory has no bytes */
	assert_int_equal(qs_content_make(QS_KIND_DIR, 040700, NULL, 0, &d2), 0);
	assert_false(qs_content_equal(&d1, &d2)); /* its mode is its content (chaos seed 507) */
	assert_int_equal(qs_content_make(QS_KIND_DIR, 040755, NULL, 0, &d2), 0);
	assert_true(qs_content_equal(&d1, &d2)); /* permission bits only */
	assert_int_equal(qs_content_make((enum qs_kind)9, 0, NULL, 0, &d2), QS_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Strict UTF-8: boundary code points accepted, every classic malformation refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/utf8.h"

static void test_table(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t len;
		bool ok;
	} cases[] = {
		{"", 0, true},
		{"plain ascii", 11, true},
		{"\xc2\x80", 2, true},          /* U+0080 */
		{"\xdf\xbf", 2, true},          /* U+07FF */
		{"\xe0\xa0\x80", 3, true},      /* U+0800 */
		{"\xef\xbf\xbf", 3, true},      /* U+FFFF */
		{"\xf0\x90\x80\x80", 4, true},  /* U+10000 */
		{"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
		{"a\0b", 3, false},             /* NUL */
		{"\xc0\xaf", 2, false},         /* overlong '/' */
		{"\xc1\xbf", 2, false},         /* overlong */
		{"\xe0\x9f\xbf", 3, false},     /* overlong 3-byte */
		{"\xf0\x8f\xbf\xbf", 4, false}, /* overlong 4-byte */
		{"\xed\xa0\x80", 3, false},     /* surrogate U+D800 */
		{"\xed\xbf\xbf", 3, false},     /* surrogate U+DFFF */
		{"\xf4\x90\x80\x80", 4, false}, /* U+110000 */
		{"\xf5\x80\x80\x80", 4, false}, /* F5 lead */
		{"\xff", 1, false},
		{"\x80", 1, false},         /* lone continuation */
		{"\xe2\x82", 2, false},     /* truncated */
		{"\xe2\x28\xa1", 3, false}, /* bad continuation */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(qs_utf8_valid_nonul(cases[i].s, cases[i].len), cases[i].ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

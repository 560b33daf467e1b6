/* Tests for the path rules: hostile paths each refused with their exact code, accepted paths
 * (non-ASCII, 255-byte names, 4096-byte paths), every limit at limit+1, the helpers, and the
 * lexical normalizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "base/path.h"

struct check_case {
	const char *s;
	size_t len;
	int rc;
};

/* A literal with its exact length, so embedded NULs count. */
#define CASE(lit, rc)                                                                              \
	{                                                                                          \
		lit, sizeof(lit) - 1, rc                                                           \
	}

static const struct check_case hostile[] = {
	CASE("", QS_EPATH_EMPTY),
	CASE("/", QS_EPATH_ABSOLUTE),
	CASE("/etc/passwd", QS_EPATH_ABSOLUTE),
	CASE("//a", QS_EPATH_ABSOLUTE),
	CASE("/a\0", QS_EPATH_ABSOLUTE), /* absolute is reported before anything in the path */
	CASE("C:", QS_EPATH_ABSOLUTE),
	CASE("C:\\Windows\\system32", QS_EPATH_ABSOLUTE),
	CASE("c:/x", QS_EPATH_ABSOLUTE),
	CASE("z:relative", QS_EPATH_ABSOLUTE), /* drive-relative on Windows */
	CASE(".", QS_EPATH_DOT),
	CASE("./a", QS_EPATH_DOT),
	CASE("a/.", QS_EPATH_DOT),
	CASE("a/./b", QS_EPATH_DOT),
	CASE("..", QS_EPATH_DOTDOT),
	CASE("../a", QS_EPATH_DOTDOT),
	CASE("a/..", QS_EPATH_DOTDOT),
	CASE("a/../../etc/passwd", QS_EPATH_DOTDOT),
	CASE("../\n", QS_EPATH_DOTDOT), /* the first problem reading left to right wins */
	CASE("a//b", QS_EPATH_EMPTY_NAME),
	CASE("a/", QS_EPATH_EMPTY_NAME),
	CASE("a/b/", QS_EPATH_EMPTY_NAME),
	CASE("\0", QS_EPATH_NUL),
	CASE("a\0b", QS_EPATH_NUL),
	CASE("a/\0", QS_EPATH_NUL),
	CASE("a.txt\0.jpg", QS_EPATH_NUL),
	CASE("\\", QS_EPATH_BACKSLASH),
	CASE("a\\b", QS_EPATH_BACKSLASH),
	CASE("..\\..\\x", QS_EPATH_BACKSLASH),
	CASE("\\\\server\\share", QS_EPATH_BACKSLASH),
	CASE("a/b\\..\\c", QS_EPATH_BACKSLASH),
	CASE("a\nb", QS_EPATH_CONTROL),
	CASE("a\tb", QS_EPATH_CONTROL),
	CASE("a\rb", QS_EPATH_CONTROL),
	CASE("\x1b[31mred", QS_EPATH_CONTROL),
	CASE("a/\x1f", QS_EPATH_CONTROL),
	CASE("a\x7f", QS_EPATH_CONTROL),
	CASE("a\n/../b", QS_EPATH_CONTROL),
	CASE("a\xc2\x80", QS_EPATH_CONTROL), /* U+0080 */
	CASE("\xc2\x9bJ", QS_EPATH_CONTROL), /* U+009B, the 8-bit CSI */
	CASE("\xc2\x9f", QS_EPATH_CONTROL),  /* U+009F */
	CASE("\x80", QS_EPATH_UTF8),         /* lone continuation byte */
	CASE("a\xbf", QS_EPATH_UTF8),
	CASE("a\xff", QS_EPATH_UTF8),
	CASE("\xfe\xff", QS_EPATH_UTF8),
	CASE("\xc0\xaf", QS_EPATH_UTF8), /* overlong '/' */
	CASE("\xc0\x80", QS_EPATH_UTF8), /* overlong NUL (Java's modified UTF-8) */
	CASE("\xc1\xbf", QS_EPATH_UTF8),
	CASE("\xe0\x80\xaf", QS_EPATH_UTF8),             /* 3-byte overlong */
	CASE("\xe0\x9f\xbf", QS_EPATH_UTF8),             /* 3-byte overlong, the highest */
	CASE("\xf0\x80\x80\xaf", QS_EPATH_UTF8),         /* 4-byte overlong */
	CASE("\xf0\x8f\xbf\xbf", QS_EPATH_UTF8),         /* 4-byte overlong, the highest */
	CASE("\xed\xa0\x80", QS_EPATH_UTF8),             /* surrogate U+D800 */
	CASE("\xed\xbf\xbf", QS_EPATH_UTF8),             /* surrogate U+DFFF */
	CASE("\xed\xa0\xbd\xed\xb8\x80", QS_EPATH_UTF8), /* CESU-8 surrogate pair */
	CASE("\xf4\x90\x80\x80", QS_EPATH_UTF8),         /* U+110000 */
	CASE("\xf5\x80\x80\x80", QS_EPATH_UTF8),
	CASE("\xf8\x88\x80\x80\x80", QS_EPATH_UTF8), /* old 5-byte form */
	CASE("\xc3", QS_EPATH_UTF8),                 /* truncated at the end */
	CASE("\xe2\x82", QS_EPATH_UTF8),
	CASE("\xe2\x82/a", QS_EPATH_UTF8), /* truncated before a '/' */
	CASE("\xf0\x9f\x98", QS_EPATH_UTF8),
	CASE("a\xe2\x28\xa1", QS_EPATH_UTF8), /* bad continuation */
	CASE("\xf0\x9f\x98\x41", QS_EPATH_UTF8),
};

static const struct check_case accepted[] = {
	CASE("a", 0),
	CASE("a/b/c", 0),
	CASE("...", 0),
	CASE("a/.../b", 0),
	CASE(".hidden", 0),
	CASE("a/.b", 0),
	CASE("..a", 0),
	CASE("a..", 0),
	CASE("a b", 0),
	CASE(" ", 0),
	CASE("-rf", 0),
	CASE("~", 0),
	CASE("ab:c", 0),
	CASE("ab:", 0),
	CASE("1:", 0), /* a digit and a colon is no drive letter */
	CASE("C", 0),
	CASE("a/C:", 0), /* a drive letter only matters at the start */
	CASE("über/日本語.txt", 0),
	CASE("emoji/\xf0\x9f\x98\x80", 0), /* U+1F600 */
	CASE("\xc2\xa0", 0),               /* U+00A0, the first code point after C1 */
	CASE("\xed\x9f\xbf", 0),           /* U+D7FF, just below the surrogates */
	CASE("\xee\x80\x80", 0),           /* U+E000, just above them */
	CASE("\xef\xbf\xbf", 0),           /* U+FFFF, a noncharacter but a valid scalar value */
	CASE("\xf0\x90\x80\x80", 0),       /* U+10000 */
	CASE("\xf4\x8f\xbf\xbf", 0),       /* U+10FFFF, the last code point */
	CASE("\xe2\x80\xae"
	     "gpj.exe",
	     0), /* U+202E is a format character, not a control */
};

static void assert_check(const struct check_case *c)
{
	int rc = qs_path_check(c->s, c->len);
	if (rc != c->rc)
		fail_msg("path of %zu bytes starting \"%.*s\": got %d (%s), want %d (%s)", c->len,
			 (int)(c->len < 40 ? c->len : 40), c->s, rc, qs_strerror(rc), c->rc,
			 qs_strerror(c->rc));
	/* qs_path_init agrees and writes its output only on success. */
	struct qs_path p = {(char *)"untouched", 9};
	assert_int_equal(qs_path_init(&p, c->s, c->len), c->rc);
	if (c->rc == 0) {
		assert_int_equal(p.len, c->len);
		assert_memory_equal(p.str, c->s, c->len);
		assert_int_equal(p.str[p.len], '\0');
		qs_path_release(&p);
		assert_null(p.str);
	} else {
		assert_string_equal(p.str, "untouched");
	}
}

static void test_hostile(void **state)
{
	(void)state;
	size_t n = sizeof(hostile) / sizeof(hostile[0]);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		assert_int_not_equal(hostile[i].rc, 0);
		assert_check(&hostile[i]);
	}
}

static void test_accepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
		assert_check(&accepted[i]);
}

/* Builds a path of exactly total bytes from names of name_len bytes (the last may be
 * shorter), made of `unit` repeated; name_len must be a multiple of the unit's length. */
static char *build_path(size_t total, size_t name_len, const char *unit)
{
	size_t ulen = strlen(unit);
	char *s = malloc(total + 1);
	assert_non_null(s);
	size_t off = 0, in_name = 0;
	while (off < total) {
		if (in_name == name_len) {
			s[off++] = '/';
			in_name = 0;
			continue;
		}
		if (total - off < ulen)
			break;
		memcpy(s + off, unit, ulen);
		off += ulen;
		in_name += ulen;
	}
	assert_int_equal(off, total);
	assert_true(s[total - 1] != '/');
	s[total] = '\0';
	return s;
}

static void expect_built(size_t total, size_t name_len, const char *unit, int rc)
{
	char *s = build_path(total, name_len, unit);
	struct check_case c = {s, total, rc};
	assert_check(&c);
	free(s);
}

static void test_limits(void **state)
{
	(void)state;
	/* Names: 255 bytes pass, 256 fail, whatever the characters are made of. */
	expect_built(QS_PATH_NAME_MAX, QS_PATH_NAME_MAX, "a", 0);
	expect_built(QS_PATH_NAME_MAX + 1, QS_PATH_NAME_MAX + 1, "a", QS_EPATH_NAME_TOO_LONG);
	expect_built(255, 255, "\xe2\x82\xac", 0);                          /* 85 x € */
	expect_built(258, 258, "\xe2\x82\xac", QS_EPATH_NAME_TOO_LONG);     /* 86 x € */
	expect_built(256, 256, "\xc3\xa9", QS_EPATH_NAME_TOO_LONG);         /* 128 x é */
	expect_built(256, 256, "\xf0\x9f\x98\x80", QS_EPATH_NAME_TOO_LONG); /* 64 x U+1F600 */
	/* A too-long name after a short one. */
	char name[2 + 256 + 1];
	memcpy(name, "a/", 2);
	memset(name + 2, 'b', 256);
	struct check_case c = {name, sizeof(name) - 1, QS_EPATH_NAME_TOO_LONG};
	assert_check(&c);
	c.len--; /* 255 'b': fine */
	c.rc = 0;
	assert_check(&c);
	/* A 255-byte name that ends in a 2-byte character that makes it 256. */
	char cross[256];
	memset(cross, 'a', 254);
	memcpy(cross + 254, "\xc3\xa9", 2);
	struct check_case x = {cross, 256, QS_EPATH_NAME_TOO_LONG};
	assert_check(&x);

	/* Whole paths: 4096 bytes pass, 4097 fail, even with valid names. */
	expect_built(QS_PATH_MAX, 254, "a", 0);
	expect_built(QS_PATH_MAX, 252, "\xe2\x82\xac", 0);
	char full[QS_PATH_MAX + 1]; /* 15 names of 255 bytes, then "b/" and 254 more: 4096 */
	memset(full, 'n', sizeof(full));
	for (size_t i = 255; i < 15 * 256; i += 256)
		full[i] = '/';
	memcpy(full + 15 * 256, "b/", 2);
	struct check_case f = {full, QS_PATH_MAX, 0};
	assert_check(&f);
	f.len++; /* the same with one more byte in the last name */
	f.rc = QS_EPATH_TOO_LONG;
	assert_check(&f);
	expect_built(QS_PATH_MAX + 1, 254, "a", QS_EPATH_TOO_LONG);
	expect_built(QS_PATH_MAX + 1, 1, "a", QS_EPATH_TOO_LONG);
	/* Length is reported before anything else in the path. */
	char *big = build_path(QS_PATH_MAX + 1, 10, "a");
	big[0] = '/';
	big[5] = '\0';
	struct check_case b = {big, QS_PATH_MAX + 1, QS_EPATH_TOO_LONG};
	assert_check(&b);
	free(big);
}

static struct qs_path make(const char *s)
{
	struct qs_path p;
	assert_int_equal(qs_path_init(&p, s, strlen(s)), 0);
	return p;
}

static void expect_join(const char *parent, const char *rel, int rc, const char *want)
{
	struct qs_path par = {NULL, 0};
	if (parent != NULL)
		par = make(parent);
	struct qs_path out = {(char *)"untouched", 9};
	assert_int_equal(qs_path_join(&out, parent ? &par : NULL, rel, strlen(rel)), rc);
	if (rc == 0) {
		assert_string_equal(out.str, want);
		assert_int_equal(out.len, strlen(want));
		qs_path_release(&out);
	} else {
		assert_string_equal(out.str, "untouched");
	}
	qs_path_release(&par);
}

static void test_join(void **state)
{
	(void)state;
	expect_join(NULL, "a", 0, "a");
	expect_join(NULL, "", QS_EPATH_EMPTY, NULL);
	expect_join(NULL, "C:", QS_EPATH_ABSOLUTE, NULL);
	expect_join("a", "b", 0, "a/b");
	expect_join("a/b", "c d", 0, "a/b/c d");
	expect_join("a", "b/c", 0, "a/b/c");
	expect_join("a", "C:", 0, "a/C:");
	expect_join("a", "", QS_EPATH_EMPTY_NAME, NULL);
	expect_join("a", "/b", QS_EPATH_EMPTY_NAME, NULL);
	expect_join("a", "b/", QS_EPATH_EMPTY_NAME, NULL);
	expect_join("a", ".", QS_EPATH_DOT, NULL);
	expect_join("a", "..", QS_EPATH_DOTDOT, NULL);
	expect_join("a", "x/../../..", QS_EPATH_DOTDOT, NULL);
	expect_join("a", "x\\y", QS_EPATH_BACKSLASH, NULL);
	expect_join("a", "x\ny", QS_EPATH_CONTROL, NULL);
	expect_join("a", "\xc0\xae", QS_EPATH_UTF8, NULL);

	/* The joined length: exactly 4096 passes, 4097 fails. */
	char *parent = build_path(QS_PATH_MAX - 11, 200, "p");
	struct qs_path par = make(parent);
	struct qs_path out;
	assert_int_equal(qs_path_join(&out, &par, "0123456789", 10), 0);
	assert_int_equal(out.len, QS_PATH_MAX);
	qs_path_release(&out);
	assert_int_equal(qs_path_join(&out, &par, "0123456789a", 11), QS_EPATH_TOO_LONG);
	/* A huge length is refused before the bytes are read. */
	assert_int_equal(qs_path_join(&out, &par, "x", SIZE_MAX), QS_EPATH_TOO_LONG);
	qs_path_release(&par);
	free(parent);
	char name[257];
	memset(name, 'n', 256);
	name[256] = '\0';
	expect_join("a", name, QS_EPATH_NAME_TOO_LONG, NULL);
	name[255] = '\0';
	struct qs_path a = make("a");
	assert_int_equal(qs_path_join(&out, &a, name, 255), 0);
	qs_path_release(&out);
	qs_path_release(&a);
}

static void test_parent_and_name(void **state)
{
	(void)state;
	struct qs_path p = make("a/b/c.txt"), out = {(char *)"untouched", 9};
	size_t len;
	const char *name = qs_path_name(&p, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(name, "c.txt", 5);
	assert_int_equal(qs_path_parent(&out, &p), 0);
	assert_string_equal(out.str, "a/b");
	struct qs_path up;
	assert_int_equal(qs_path_parent(&up, &out), 0);
	assert_string_equal(up.str, "a");
	name = qs_path_name(&up, &len);
	assert_int_equal(len, 1);
	assert_memory_equal(name, "a", 1);
	struct qs_path none = {(char *)"untouched", 9};
	assert_int_equal(qs_path_parent(&none, &up), QS_ENOENT);
	assert_string_equal(none.str, "untouched");
	/* Joining the parent and the name gives the path back. */
	struct qs_path again;
	name = qs_path_name(&p, &len);
	assert_int_equal(qs_path_join(&again, &out, name, len), 0);
	assert_true(qs_path_equal(&again, &p));
	qs_path_release(&again);
	qs_path_release(&up);
	qs_path_release(&out);
	qs_path_release(&p);
	qs_path_release(&p); /* releasing twice is harmless */
}

static void test_inside_equal_cmp(void **state)
{
	(void)state;
	static const struct {
		const char *p, *dir;
		bool inside;
	} cases[] = {
		{"a/b", "a", true},     {"a/b/c", "a", true},
		{"a/b/c", "a/b", true}, {"a", "a", false},
		{"ab", "a", false},     {"a", "a/b", false},
		{"a/bc", "a/b", false}, {"a-b/c", "a", false},
		{"b/a", "a", false},    {"\xc3\xa9/x", "\xc3\xa9", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct qs_path p = make(cases[i].p), d = make(cases[i].dir);
		assert_int_equal(qs_path_is_inside(&p, &d), cases[i].inside);
		assert_true(qs_path_is_inside(&p, NULL));
		/* The string form includes dir itself. */
		assert_int_equal(qs_path_str_within(cases[i].p, cases[i].dir),
				 cases[i].inside || strcmp(cases[i].p, cases[i].dir) == 0);
		assert_int_equal(qs_path_equal(&p, &d), strcmp(cases[i].p, cases[i].dir) == 0);
		qs_path_release(&p);
		qs_path_release(&d);
	}
	struct qs_path a = make("a"), ab = make("a/b"), a_b = make("a-b"), b = make("b");
	struct qs_path a2 = make("a");
	assert_true(qs_path_cmp(&a, &ab) < 0); /* a parent sorts before its children */
	assert_true(qs_path_cmp(&ab, &a) > 0);
	assert_true(qs_path_cmp(&a_b, &ab) < 0); /* byte order: '-' < '/' */
	assert_true(qs_path_cmp(&ab, &b) < 0);
	assert_int_equal(qs_path_cmp(&a, &a2), 0);
	assert_true(qs_path_equal(&a, &a2));
	qs_path_release(&a);
	qs_path_release(&ab);
	qs_path_release(&a_b);
	qs_path_release(&b);
	qs_path_release(&a2);
}

static void expect_normalize(const char *root, const char *cwd, const char *typed, int rc,
			     const char *want)
{
	struct qs_path out = {(char *)"untouched", 9};
	int got = qs_path_normalize(&out, root, cwd, typed);
	if (got != rc)
		fail_msg("normalize(%s, %s, %s): got %d (%s), want %d", root, cwd, typed, got,
			 qs_strerror(got), rc);
	if (rc == 0) {
		assert_string_equal(out.str, want);
		assert_int_equal(out.len, strlen(want));
		qs_path_release(&out);
	} else {
		assert_string_equal(out.str, "untouched");
	}
}

static void test_normalize_table(void **state)
{
	(void)state;
	static const struct {
		const char *root, *cwd, *typed;
		int rc;
		const char *want;
	} cases[] = {
		{"/home/u/sync", "/home/u/sync", "a", 0, "a"},
		{"/home/u/sync", "/home/u/sync", "a/b/", 0, "a/b"},
		{"/home/u/sync", "/home/u/sync", "./a//b/.", 0, "a/b"},
		{"/home/u/sync", "/home/u/sync", "a/../b", 0, "b"},
		{"/home/u/sync", "/home/u/sync", "a/.", 0, "a"},
		{"/home/u/sync", "/home/u/sync", "../sync/x", 0, "x"},
		{"/home/u/sync", "/home/u/sync", "a/../../sync/b", 0, "b"},
		{"/home/u/sync", "/home/u/sync/docs", "../x", 0, "x"},
		{"/home/u/sync", "/home/u/sync/docs", "x/y", 0, "docs/x/y"},
		{"/home/u/sync", "/home/u/sync/docs", ".", 0, "docs"},
		{"/home/u/sync", "/tmp", "/home/u/sync/a", 0, "a"},
		{"/home/u/sync", "/tmp", "/home//u/./sync/a/", 0, "a"},
		{"/home/u/sync", "/home/u/sync", "/../../home/u/sync/a", 0, "a"},
		{"/home/u/sync", "/", "home/u/sync/a", 0, "a"},
		{"/home/u/sync/", "/home/u/sync", "/home/u/sync/a", 0, "a"},
		{"/home//u/./sync/../sync", "/home/u/sync", "a", 0, "a"},
		{"/", "/", "etc/passwd", 0, "etc/passwd"},
		{"/", "/tmp", "../etc", 0, "etc"},
		{"/home/u/sync", "/home/u/sync", "über", 0, "über"},
		{"/home/u/sync", "/home/u/sync", "ab:c", 0, "ab:c"},
		{"/home/u/sync", "/home/u/sync", "..", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/sync", "a/b/../../..", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/sync", "../sync2/x", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/sync2", "x", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/syn", "x", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/tmp", "a", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/sync", "/", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/sync", "/etc/passwd", QS_EPATH_OUTSIDE, NULL},
		{"/home/u/sync", "/home/u/sync", ".", QS_EPATH_EMPTY, NULL},
		{"/home/u/sync", "/home/u/sync", "", QS_EPATH_EMPTY, NULL},
		{"/home/u/sync", "/home/u/sync", "a/b/../..", QS_EPATH_EMPTY, NULL},
		{"/home/u/sync", "/tmp", "/home/u/sync/", QS_EPATH_EMPTY, NULL},
		{"/", "/", "/", QS_EPATH_EMPTY, NULL},
		{"/", "/", "/..", QS_EPATH_EMPTY, NULL},
		{"/home/u/sync", "/home/u/sync", "a\\b", QS_EPATH_BACKSLASH, NULL},
		{"/home/u/sync", "/home/u/sync", "a\nb", QS_EPATH_CONTROL, NULL},
		{"/home/u/sync", "/home/u/sync", "\xff", QS_EPATH_UTF8, NULL},
		{"/home/u/sync", "/home/u/sync", "C:/x", QS_EPATH_ABSOLUTE, NULL},
		{"sync", "/home/u/sync", "a", QS_EINVAL, NULL},
		{"", "/home/u/sync", "a", QS_EINVAL, NULL},
		{"/home/u/sync", "home", "a", QS_EINVAL, NULL},
		{"/home/u/sync", "", "/home/u/sync/a", QS_EINVAL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_normalize(cases[i].root, cases[i].cwd, cases[i].typed, cases[i].rc,
				 cases[i].want);
}

static void test_normalize_limits(void **state)
{
	(void)state;
	/* A name of 255 bytes passes, 256 fails. */
	char *name = build_path(256, 256, "n");
	expect_normalize("/r", "/r", name, QS_EPATH_NAME_TOO_LONG, NULL);
	name[255] = '\0';
	expect_normalize("/r", "/r", name, 0, name);
	free(name);
	/* The result: 4096 bytes pass, 4097 fail, counted below the root. */
	char *p = build_path(QS_PATH_MAX, 100, "x");
	expect_normalize("/r", "/r", p, 0, p);
	free(p);
	p = build_path(QS_PATH_MAX + 1, 100, "x");
	expect_normalize("/r", "/r", p, QS_EPATH_TOO_LONG, NULL);
	free(p);
	/* Long input that resolves to something short is fine up to QS_PATH_INPUT_MAX. */
	size_t n = QS_PATH_INPUT_MAX;
	char *typed = malloc(n + 2);
	assert_non_null(typed);
	for (size_t i = 0; i + 3 <= n - 2; i += 3)
		memcpy(typed + i, "../", 3);
	size_t used = (n - 2) / 3 * 3;
	memset(typed + used, 'a', n - used);
	typed[n] = '\0';
	char *want = typed + used;
	expect_normalize("/", "/", typed, 0, want);
	typed[n] = 'a';
	typed[n + 1] = '\0';
	expect_normalize("/", "/", typed, QS_EPATH_TOO_LONG, NULL);
	expect_normalize(typed, "/", "a", QS_EPATH_TOO_LONG, NULL);
	expect_normalize("/", typed, "a", QS_EPATH_TOO_LONG, NULL);
	free(typed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile),         cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_limits),          cmocka_unit_test(test_join),
		cmocka_unit_test(test_parent_and_name), cmocka_unit_test(test_inside_equal_cmp),
		cmocka_unit_test(test_normalize_table), cmocka_unit_test(test_normalize_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

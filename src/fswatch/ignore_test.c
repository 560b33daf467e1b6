/* Tests for the ignore rules: a table of (rules, path, kind) -> ignored covering comments,
 * blank lines, escapes, trailing spaces, negation and its order, directory-only rules,
 * anchoring, "*", "?", classes and every form of "**"; parent-directory exclusion; the
 * built-in names; the leaf matcher agreeing with the full one; every parse error with its
 * line; and each limit at limit and limit+1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/err.h"
#include "fswatch/ignore.h"

struct match_case {
	const char *rules;
	const char *path;
	bool is_dir;
	bool ignored;
};

#define F false /* a file */
#define D true  /* a directory */

static const struct match_case cases[] = {
	/* Plain names match at any depth, files and directories alike. */
	{"foo", "foo", F, true},
	{"foo", "a/b/foo", F, true},
	{"foo", "a/foo", D, true},
	{"foo", "foobar", F, false},
	{"foo", "xfoo", F, false},
	/* Comments, blank lines, CRLF, trailing spaces. */
	{"# foo\n\nbar", "foo", F, false},
	{"# foo\n\nbar", "bar", F, true},
	{"\\#foo", "#foo", F, true},
	{"foo\r\nbar\r\n", "foo", F, true},
	{"foo\r\nbar\r\n", "bar", F, true},
	{"foo   ", "foo", F, true},
	{"foo\\ ", "foo ", F, true},
	{"foo\\ ", "foo", F, false},
	{" foo", "foo", F, false}, /* leading spaces are part of the pattern */
	/* Wildcards. */
	{"*.o", "main.o", F, true},
	{"*.o", "src/deep/x.o", F, true},
	{"*.o", "main.c", F, false},
	{"*.o", ".o", F, true},
	{"a?c", "abc", F, true},
	{"a?c", "ac", F, false},
	{"a?c",
	 "a\xc3\xa9"
	 "c",
	 F, true}, /* '?' is one character, not one byte */
	{"*", "anything/at/all", F, true},
	{"a*b*c", "aXXbYYc", F, true},
	{"a*b*c", "aXXbYY", F, false},
	{"*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", F, false},
	/* Classes. */
	{"file[0-9].txt", "file7.txt", F, true},
	{"file[0-9].txt", "fileA.txt", F, false},
	{"file[!0-9].txt", "fileA.txt", F, true},
	{"file[^0-9].txt", "file7.txt", F, false},
	{"[]a]", "]", F, true},
	{"[a-]", "-", F, true},
	{"[\\]]x", "]x", F, true},
	{"[[:digit:]]*", "9lives", F, true},
	{"[[:upper:]]*", "lower", F, false},
	{"[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", F,
	 true}, /* a range of code points: a-grave to y-umlaut */
	/* Escapes. */
	{"\\*", "*", F, true},
	{"\\*", "x", F, false},
	{"\\!important", "!important", F, true},
	/* Directory-only rules. */
	{"build/", "build", D, true},
	{"build/", "build", F, false},
	{"build/", "src/build", D, true},
	{"build/", "build/out.bin", F, true}, /* below an ignored directory */
	{"build/", "src/build/x", F, true},
	/* Anchoring: a leading or inner '/'. */
	{"/todo", "todo", F, true},
	{"/todo", "sub/todo", F, false},
	{"doc/*.txt", "doc/notes.txt", F, true},
	{"doc/*.txt", "doc/server/arch.txt", F, false},
	{"doc/*.txt", "x/doc/notes.txt", F, false},
	{"/a/b/", "a/b", D, true},
	{"/a/b/", "a/b", F, false},
	/* "**" in every position. */
	{"**/logs", "logs", D, true},
	{"**/logs", "a/b/logs", D, true},
	{"**/logs/debug.log", "x/logs/debug.log", F, true},
	{"**/logs/debug.log", "logs/debug.log", F, true},
	{"**/logs/debug.log", "logs/x/debug.log", F, false},
	{"logs/**", "logs/a/b/c", F, true},
	{"logs/**", "logs", D, false},
	{"logs/**", "xlogs/a", F, false},
	{"a/**/b", "a/b", F, true},
	{"a/**/b", "a/x/b", F, true},
	{"a/**/b", "a/x/y/z/b", F, true},
	{"a/**/b", "a/xb", F, false},
	{"a/**/b", "ab", F, false},
	{"a**b", "aXXb", F, true},     /* not at a segment boundary: a plain '*' */
	{"a/x**z", "a/x/z", F, false}, /* same: does not cross '/' */
	{"a/x**z", "a/xyz", F, true},
	{"/**", "deep/down/file", F, true},
	{"***/z", "a/b/z", F, true}, /* three stars are "**" too */
	/* Negation: the last matching rule wins, in file order. */
	{"*.log\n!keep.log", "keep.log", F, false},
	{"*.log\n!keep.log", "drop.log", F, true},
	{"!keep.log\n*.log", "keep.log", F, true},
	{"*.log\n!keep.log\nkeep.log", "keep.log", F, true},
	{"*\n!*.c", "main.c", F, false},
	{"*\n!*.c", "src/main.c", F, true}, /* "src" is excluded by "*": no way back in */
	{"*\n!*/\n!*.c", "src/main.c", F, false},
	{"*\n!*/\n!*.c", "src/main.h", F, true},
	/* A file below an excluded directory cannot be re-included... */
	{"dir/\n!dir/keep", "dir/keep", F, true},
	/* ... but re-including the directory first makes it possible. */
	{"/*\n!/dir\n/dir/*\n!/dir/keep", "dir/keep", F, false},
	{"/*\n!/dir\n/dir/*\n!/dir/keep", "dir/other", F, true},
	{"/*\n!/dir\n/dir/*\n!/dir/keep", "top", F, true},
	/* Negation of a directory-only rule only re-includes directories. */
	{"tmp*\n!tmp*/", "tmpdir", D, false},
	{"tmp*\n!tmp*/", "tmpfile", F, true},
	/* Built-in names: the state directory and temp files, at any depth, whatever the rules
	 * say, and with no rules at all. */
	{"", ".quics", D, true},
	{"", ".quics/root-id", F, true},
	{"", "a/.quics-tmp-1234", F, true},
	{"!.quics-tmp-*\n!.quics", ".quics-tmp-x", F, true},
	{"!.quics-tmp-*\n!.quics", ".quics", D, true},
	{"", ".quicsignore", F, false},
	{"", ".quics-tmp", F, false}, /* the prefix needs its final '-' */
	{"", "x.quics", F, false},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct match_case *c = &cases[i];
		struct qs_ignore *ig = NULL;
		struct qs_path p;
		assert_int_equal(qs_ignore_parse(c->rules, strlen(c->rules), &ig, NULL), 0);
		assert_int_equal(qs_path_init(&p, c->path, strlen(c->path)), 0);
		bool got = qs_ignore_match(ig, &p, c->is_dir);
		if (got != c->ignored)
			fail_msg("case %zu: rules \"%s\" path \"%s\" (%s): got %d, want %d", i,
				 c->rules, c->path, c->is_dir ? "dir" : "file", got, c->ignored);
		qs_path_release(&p);
		qs_ignore_free(ig);
	}
	assert_true(sizeof(cases) / sizeof(cases[0]) >= 40);
}

/* The leaf matcher equals the full one whenever no parent directory is ignored. */
static void test_leaf_agrees(void **state)
{
	(void)state;
	size_t compared = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct match_case *c = &cases[i];
		struct qs_ignore *ig = NULL;
		struct qs_path p, parent;
		assert_int_equal(qs_ignore_parse(c->rules, strlen(c->rules), &ig, NULL), 0);
		assert_int_equal(qs_path_init(&p, c->path, strlen(c->path)), 0);
		bool parents_ignored = false;
		struct qs_path cur;
		assert_int_equal(qs_path_copy(&cur, &p), 0);
		while (qs_path_parent(&parent, &cur) == 0) {
			parents_ignored = parents_ignored || qs_ignore_match(ig, &parent, true);
			qs_path_release(&cur);
			cur = parent;
		}
		qs_path_release(&cur);
		if (!parents_ignored) {
			assert_int_equal(qs_ignore_match_leaf(ig, &p, c->is_dir),
					 qs_ignore_match(ig, &p, c->is_dir));
			compared++;
		}
		qs_path_release(&p);
		qs_ignore_free(ig);
	}
	assert_true(compared > 60);
}

static void test_null_rules_are_builtins(void **state)
{
	(void)state;
	struct qs_path p;
	assert_int_equal(qs_path_init(&p, "a/.quics-tmp-x", 14), 0);
	assert_true(qs_ignore_match(NULL, &p, false));
	assert_true(qs_ignore_match_leaf(NULL, &p, false));
	qs_path_release(&p);
	assert_int_equal(qs_path_init(&p, "a/b", 3), 0);
	assert_false(qs_ignore_match(NULL, &p, false));
	assert_false(qs_ignore_match_leaf(NULL, &p, true));
	qs_path_release(&p);
	assert_int_equal(qs_ignore_rule_count(NULL), 0);
}

struct error_case {
	const char *text;
	size_t len;
	int rc;
	size_t line;
};

#define ERR(lit, rc, line)                                                                         \
	{                                                                                          \
		lit, sizeof(lit) - 1, rc, line                                                     \
	}

static const struct error_case errors[] = {
	ERR("!", QS_EPROTO, 1),
	ERR("ok\n/", QS_EPROTO, 2),
	ERR("ok\n\n!/", QS_EPROTO, 3),
	ERR("foo\\", QS_EPROTO, 1),
	ERR("[abc", QS_EPROTO, 1),
	ERR("[]", QS_EPROTO, 1),
	ERR("[!]", QS_EPROTO, 1),
	ERR("a\n[z-a]", QS_EPROTO, 2),
	ERR("[[:nope:]]", QS_EPROTO, 1),
	ERR("[[:alpha]", QS_EPROTO, 1),
	ERR("[a/b]", QS_EPROTO, 1),
	ERR("[a\\/b]", QS_EPROTO, 1),
	ERR("a\0b", QS_EPROTO, 1),
	ERR("ok\n\xff", QS_EPROTO, 2),
	ERR("\xc0\xaf", QS_EPROTO, 1),
	ERR("# a comment is checked too \xed\xa0\x80", QS_EPROTO, 1),
};

static void test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		struct qs_ignore *ig = (struct qs_ignore *)&ig; /* must stay untouched */
		struct qs_ignore_error err = {999};
		int rc = qs_ignore_parse(errors[i].text, errors[i].len, &ig, &err);
		if (rc != errors[i].rc || err.line != errors[i].line)
			fail_msg("case %zu: rc %d line %zu, want rc %d line %zu", i, rc, err.line,
				 errors[i].rc, errors[i].line);
		assert_ptr_equal(ig, (struct qs_ignore *)&ig);
	}
}

static void test_counts_and_blank(void **state)
{
	(void)state;
	struct qs_ignore *ig = NULL;
	const char *text = "# comment\n\n   \nfoo\n!bar\n*.o   \n";
	assert_int_equal(qs_ignore_parse(text, strlen(text), &ig, NULL), 0);
	assert_int_equal(qs_ignore_rule_count(ig), 3);
	qs_ignore_free(ig);
	assert_int_equal(qs_ignore_parse("", 0, &ig, NULL), 0);
	assert_int_equal(qs_ignore_rule_count(ig), 0);
	qs_ignore_free(ig);
	qs_ignore_free(NULL);
}

/* Fills n bytes with repetitions of unit (which must divide n). */
static char *repeat(const char *unit, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	size_t u = strlen(unit);
	for (size_t i = 0; i < n; i += u)
		memcpy(s + i, unit, u);
	s[n] = '\0';
	return s;
}

static void test_limits(void **state)
{
	(void)state;
	struct qs_ignore *ig = NULL;
	struct qs_ignore_error err;
	/* The file: QS_IGNORE_MAX_BYTES of comments pass, one byte more does not. */
	char *s = repeat("#xxxxxx\n", QS_IGNORE_MAX_BYTES);
	assert_int_equal(qs_ignore_parse(s, QS_IGNORE_MAX_BYTES, &ig, NULL), 0);
	qs_ignore_free(ig);
	err.line = 99;
	assert_int_equal(qs_ignore_parse(s, QS_IGNORE_MAX_BYTES + 1, &ig, &err), QS_E2BIG);
	assert_int_equal(err.line, 0);
	free(s);
	/* A line: QS_IGNORE_LINE_MAX bytes pass (and match), one more does not; "\r\n" does
	 * not count. */
	s = repeat("a", QS_IGNORE_LINE_MAX + 2);
	s[QS_IGNORE_LINE_MAX] = '\r';
	s[QS_IGNORE_LINE_MAX + 1] = '\n';
	assert_int_equal(qs_ignore_parse(s, QS_IGNORE_LINE_MAX + 2, &ig, NULL), 0);
	qs_ignore_free(ig);
	s[QS_IGNORE_LINE_MAX] = 'a';
	assert_int_equal(qs_ignore_parse(s, QS_IGNORE_LINE_MAX + 1, &ig, &err), QS_E2BIG);
	assert_int_equal(err.line, 1);
	free(s);
	/* Rules: QS_IGNORE_MAX_RULES pass, one more does not (and names its line). */
	s = repeat("x\n", 2 * (QS_IGNORE_MAX_RULES + 1));
	assert_int_equal(qs_ignore_parse(s, 2 * QS_IGNORE_MAX_RULES, &ig, NULL), 0);
	assert_int_equal(qs_ignore_rule_count(ig), QS_IGNORE_MAX_RULES);
	qs_ignore_free(ig);
	assert_int_equal(qs_ignore_parse(s, 2 * (QS_IGNORE_MAX_RULES + 1), &ig, &err), QS_E2BIG);
	assert_int_equal(err.line, QS_IGNORE_MAX_RULES + 1);
	free(s);
}

/* A longest pattern of stars against a longest path: the automaton keeps this linear. */
static void test_worst_case_is_linear(void **state)
{
	(void)state;
	char *rules = repeat("*a", QS_IGNORE_LINE_MAX);
	rules[QS_IGNORE_LINE_MAX - 1] = 'b';
	struct qs_ignore *ig = NULL;
	assert_int_equal(qs_ignore_parse(rules, QS_IGNORE_LINE_MAX, &ig, NULL), 0);
	char *path = repeat("a", QS_PATH_NAME_MAX + 1);
	path[QS_PATH_NAME_MAX] = '\0';
	struct qs_path p;
	assert_int_equal(qs_path_init(&p, path, QS_PATH_NAME_MAX), 0);
	assert_false(qs_ignore_match(ig, &p, false));
	qs_path_release(&p);
	free(path);
	free(rules);
	qs_ignore_free(ig);
}

/* The 2048-component path (the most a valid path has) with a rule that hits its deepest
 * directory level. */
static void test_deepest_path(void **state)
{
	(void)state;
	char *path = repeat("a/", QS_PATH_MAX);
	path[QS_PATH_MAX - 1] = '\0';
	struct qs_path p;
	assert_int_equal(qs_path_init(&p, path, QS_PATH_MAX - 1), 0);
	struct qs_ignore *ig = NULL;
	assert_int_equal(qs_ignore_parse("b", 1, &ig, NULL), 0);
	assert_false(qs_ignore_match(ig, &p, false));
	qs_ignore_free(ig);
	assert_int_equal(qs_ignore_parse("a/", 2, &ig, NULL), 0);
	assert_true(qs_ignore_match(ig, &p, false));
	qs_ignore_free(ig);
	qs_path_release(&p);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_leaf_agrees),
		cmocka_unit_test(test_null_rules_are_builtins),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_counts_and_blank),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_worst_case_is_linear),
		cmocka_unit_test(test_deepest_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the output helpers: exact text of objects, tables, byte counts and bars; control
 * characters from a daemon never reach the terminal; the progress bar draws only on a tty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cli/out.h"

struct capture {
	char *text;
	size_t len;
	FILE *f;
};

static void cap_open(struct capture *c)
{
	c->text = NULL;
	c->len = 0;
	c->f = open_memstream(&c->text, &c->len);
	assert_non_null(c->f);
}

static const char *cap_close(struct capture *c)
{
	fclose(c->f);
	return c->text;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	assert_non_null(j);
	return j;
}

static void test_json_as_is(void **state)
{
	(void)state;
	struct capture c;
	json_t *j = parse("{\"z\":1,\"a\":[true,null],\"m\":{\"k\":\"v\"}}");
	cap_open(&c);
	assert_int_equal(qs_out_json(c.f, j), 0);
	/* Member order as received, not sorted. */
	assert_string_equal(cap_close(&c), "{\n"
					   "  \"z\": 1,\n"
					   "  \"a\": [\n"
					   "    true,\n"
					   "    null\n"
					   "  ],\n"
					   "  \"m\": {\n"
					   "    \"k\": \"v\"\n"
					   "  }\n"
					   "}\n");
	free(c.text);
	json_decref(j);
}

static void test_object_text(void **state)
{
	(void)state;
	struct capture c;
	json_t *j =
		parse("{\"name\":\"docs\",\"files_pending\":12,\"connected\":true,"
		      "\"paused\":false,\"ratio\":0.5,\"error\":null,\"tags\":[\"a\",1,true],"
		      "\"none\":[],\"server\":{\"host\":\"h\",\"port\":6122},"
		      "\"roots\":[{\"name\":\"r1\",\"files\":3},{\"name\":\"r2\",\"files\":40}],"
		      "\"ids\":[[1]]}");
	cap_open(&c);
	assert_int_equal(qs_out_object(c.f, j), 0);
	assert_string_equal(cap_close(&c), "name:          docs\n"
					   "files pending: 12\n"
					   "connected:     yes\n"
					   "paused:        no\n"
					   "ratio:         0.5\n"
					   "error:         -\n"
					   "tags:          a, 1, yes\n"
					   "none:          -\n"
					   "server:        \n"
					   "  host: h\n"
					   "  port: 6122\n"
					   "roots:         \n"
					   "  - name:  r1\n"
					   "    files: 3\n"
					   "  - name:  r2\n"
					   "    files: 40\n"
					   "ids:           \n"
					   "  - 1\n");
	free(c.text);
	json_decref(j);

	cap_open(&c);
	j = json_array();
	assert_int_equal(qs_out_object(c.f, j), QS_EINVAL);
	cap_close(&c);
	free(c.text);
	json_decref(j);
}

static void test_control_characters_replaced(void **state)
{
	(void)state;
	struct capture c;
	/* ESC sequences, a C1 control (U+009B, CSI), a bell and a newline in a name. */
	json_t *j = json_pack("{s:s,s:s}", "file", "evil\x1b[2Jname\x07\nx", "c1",
			      "a\xc2\x9b"
			      "b\xc3\xa9");
	cap_open(&c);
	assert_int_equal(qs_out_object(c.f, j), 0);
	assert_string_equal(cap_close(&c), "file: evil?[2Jname??x\n"
					   "c1:   a?b\xc3\xa9\n");
	free(c.text);
	json_decref(j);
}

static void test_table(void **state)
{
	(void)state;
	struct capture c;
	json_t *rows = parse("[{\"path\":\"/home/u/docs\",\"files\":1200,\"state\":\"ok\"},"
			     "{\"path\":\"/m\\u00fcsic\",\"files\":7,\"extra\":1},"
			     "{\"path\":\"/x\",\"files\":null,\"state\":[\"a\",\"b\"]}]");
	const struct qs_out_col cols[] = {
		{"path", "PATH", false},
		{"files", "FILES", true},
		{"state", "STATE", false},
	};
	cap_open(&c);
	assert_int_equal(qs_out_table(c.f, rows, cols, 3), 0);
	/* Widths count code points ("/müsic" is 6 columns); the last column is not padded. */
	assert_string_equal(cap_close(&c), "PATH          FILES  STATE\n"
					   "/home/u/docs   1200  ok\n"
					   "/m\xc3\xbcsic            7  -\n"
					   "/x                -  a, b\n");
	free(c.text);

	json_t *empty = json_array();
	cap_open(&c);
	assert_int_equal(qs_out_table(c.f, empty, cols, 3), 0);
	assert_string_equal(cap_close(&c), "PATH  FILES  STATE\n");
	free(c.text);
	cap_open(&c);
	assert_int_equal(qs_out_table(c.f, rows, cols, 0), QS_EINVAL);
	json_t *obj = json_object();
	assert_int_equal(qs_out_table(c.f, obj, cols, 3), QS_EINVAL);
	json_decref(obj);
	cap_close(&c);
	free(c.text);
	json_decref(empty);
	json_decref(rows);
}

static void test_bytes_and_bar(void **state)
{
	(void)state;
	static const struct {
		uint64_t n;
		const char *text;
	} bytes[] = {
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{20u << 20, "20.0 MiB"},
		{(1ull << 30) * 3 / 2, "1.5 GiB"},
		{UINT64_MAX, "16.0 EiB"},
	};
	char buf[64];
	for (size_t i = 0; i < sizeof(bytes) / sizeof(bytes[0]); i++) {
		qs_out_bytes(bytes[i].n, buf, sizeof(buf));
		assert_string_equal(buf, bytes[i].text);
	}
	static const struct {
		uint64_t done, total;
		const char *text;
	} bars[] = {
		{0, 100, "[..........]   0%"},
		{50, 100, "[#####.....]  50%"},
		{99, 100, "[#########.]  99%"},
		{100, 100, "[##########] 100%"},
		{200, 100, "[##########] 100%"},
		{0, 0, "[##########] 100%"},
		{UINT64_MAX / 4, UINT64_MAX, "[##........]  25%"},
		{UINT64_MAX - 1, UINT64_MAX, "[#########.]  99%"},
		{UINT64_MAX, UINT64_MAX, "[##########] 100%"},
		{1, 3, "[###.......]  33%"},
	};
	for (size_t i = 0; i < sizeof(bars) / sizeof(bars[0]); i++) {
		qs_out_bar(buf, sizeof(buf), bars[i].done, bars[i].total, 10);
		assert_string_equal(buf, bars[i].text);
	}
	qs_out_bar(buf, 8, 1, 2, 10); /* too small for the bar: the percentage alone */
	assert_string_equal(buf, " 50%");
}

static void test_progress_only_on_tty(void **state)
{
	(void)state;
	struct capture c;
	struct qs_progress p;
	cap_open(&c);
	qs_progress_init(&p, c.f);
	assert_false(p.tty); /* a memory stream is not a terminal */
	qs_progress_update(&p, "upload", 1, 2);
	qs_progress_end(&p);
	assert_string_equal(cap_close(&c), "");
	free(c.text);

	cap_open(&c);
	qs_progress_init(&p, c.f);
	p.tty = true;
	p.width = 4;
	qs_progress_update(&p, "up\x1bload", 1024, 4096);
	qs_progress_update(&p, "up\x1bload", 4096, 4096);
	qs_progress_end(&p);
	assert_string_equal(cap_close(&c), "\rup?load [#...]  25%  1.0 KiB / 4.0 KiB\x1b[K"
					   "\rup?load [####] 100%  4.0 KiB / 4.0 KiB\x1b[K\n");
	free(c.text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_as_is),
		cmocka_unit_test(test_object_text),
		cmocka_unit_test(test_control_characters_replaced),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_bytes_and_bar),
		cmocka_unit_test(test_progress_only_on_tty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the command-line front end: table tests of whole command lines (exit status,
 * the exact error line, parsed values) and the help text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cli/args.h"

static char record[512]; /* what the last command run saw */
static int run_status;

static int run_record(struct qs_cmd_ctx *c)
{
	int n = snprintf(record, sizeof(record), "%s json=%d", c->cmd->name, c->json);
	for (size_t k = 0; k < c->cmd->nopts; k++) {
		const struct qs_opt *o = &c->cmd->opts[k];
		if (o->type == QS_OPT_FLAG && qs_cmd_given(c, o->name))
			n += snprintf(record + n, sizeof(record) - (size_t)n, " %s", o->name);
		else if (o->type == QS_OPT_STRING && qs_cmd_str(c, o->name) != NULL)
			n += snprintf(record + n, sizeof(record) - (size_t)n, " %s=%s", o->name,
				      qs_cmd_str(c, o->name));
		else if (o->type != QS_OPT_FLAG && o->type != QS_OPT_STRING &&
			 qs_cmd_str(c, o->name) != NULL)
			n += snprintf(record + n, sizeof(record) - (size_t)n, " %s=%llu", o->name,
				      (unsigned long long)qs_cmd_num(c, o->name));
	}
	for (unsigned i = 0; i < c->nargs; i++)
		n += snprintf(record + n, sizeof(record) - (size_t)n, " [%s]", c->args[i]);
	return run_status;
}

static int run_exclusive(struct qs_cmd_ctx *c)
{
	if (qs_cmd_str(c, "local") != NULL && qs_cmd_str(c, "remote") != NULL)
		return qs_cmd_usage_error(c, "use --local or --remote, not both");
	return run_record(c);
}

static const struct qs_opt server_opts[] = {
	{"host", QS_OPT_STRING, "HOST", "server name or address", 0, 0, NULL, true},
	{"port", QS_OPT_U64, "PORT", "sync protocol port", 1, 65535, "6122", false},
	{"password", QS_OPT_STRING, "PW", "server password", 0, 0, NULL, true},
	{"fingerprint", QS_OPT_STRING, "SHA256", "expected certificate", 0, 0, NULL, false},
	{"chunk", QS_OPT_SIZE, "SIZE", "chunk size", 1024, 1u << 30, NULL, false},
	{"force", QS_OPT_FLAG, NULL, "do it anyway", 0, 0, NULL, false},
	{"retries", QS_OPT_U64, "N", "attempts", 0, 0, NULL, false},
};

static const struct qs_opt root_opts[] = {
	{"local", QS_OPT_STRING, "DIR", "local folder", 0, 0, NULL, false},
	{"remote", QS_OPT_STRING, "NAME", "root on the server", 0, 0, NULL, false},
};

static const struct qs_cmd cmds[] = {
	{"connect server", "Connect this client to a server.", NULL, 0, 0, server_opts,
	 sizeof(server_opts) / sizeof(server_opts[0]), run_record},
	{"connect root", "Sync a folder.", NULL, 0, 0, root_opts,
	 sizeof(root_opts) / sizeof(root_opts[0]), run_exclusive},
	{"sync status", "Show sync state.", "[PATH]", 0, 1, NULL, 0, run_record},
	{"share file", "Share a file.", "PATH", 1, 1, NULL, 0, run_record},
	{"stop", "Stop the daemon.", NULL, 0, 0, NULL, 0, run_record},
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

struct outcome {
	int status;
	char out[4096];
	char err[4096];
};

/* Runs "qic" with the space-separated words of line ('_' stands for an empty argument). */
static void run_line(const char *line, struct outcome *o)
{
	char buf[512];
	char *argv[32];
	int argc = 0;
	snprintf(buf, sizeof(buf), "%s", line);
	memset(o, 0, sizeof(*o));
	argv[argc++] = (char *)"qic";
	for (char *w = buf; *w != '\0';) {
		char *sp = strchr(w, ' ');
		if (sp != NULL)
			*sp = '\0';
		argv[argc++] = strcmp(w, "_") == 0 ? (char *)"" : w;
		if (sp == NULL)
			break;
		w = sp + 1;
	}
	argv[argc] = NULL;
	FILE *out = fmemopen(o->out, sizeof(o->out), "w");
	FILE *err = fmemopen(o->err, sizeof(o->err), "w");
	assert_non_null(out);
	assert_non_null(err);
	record[0] = '\0';
	o->status =
		qs_cli_main("qic", "The QUIC-S client.", cmds, NCMDS, argc, argv, NULL, out, err);
	fclose(out);
	fclose(err);
}

static void test_good_lines(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *record;
	} cases[] = {
		{"connect server --host h --password p",
		 "connect server json=0 host=h port=6122 password=p"},
		{"connect server --password=p= --host=h --port=7000 --json",
		 "connect server json=1 host=h port=7000 password=p="},
		{"connect server --host h --password -dash --force --retries 0",
		 "connect server json=0 host=h port=6122 password=-dash force retries=0"},
		{"connect server --host h --password p --port 65535 --port_x", NULL},
		{"connect server --host h --password p --chunk 4M",
		 "connect server json=0 host=h port=6122 password=p chunk=4194304"},
		{"connect server --host h --password p --chunk 1024 --retries 18446744073709551615",
		 "connect server json=0 host=h port=6122 password=p chunk=1024 "
		 "retries=18446744073709551615"},
		{"connect server --host _ --password p", "connect server json=0 host= port=6122 "
							 "password=p"},
		{"connect root --local /a", "connect root json=0 local=/a"},
		{"sync status", "sync status json=0"},
		{"sync status --json /x", "sync status json=1 [/x]"},
		{"share file -- --weird", "share file json=0 [--weird]"},
		{"share file -", "share file json=0 [-]"},
		{"stop", "stop json=0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome o;
		run_line(cases[i].line, &o);
		if (cases[i].record == NULL) {
			assert_int_equal(o.status, QS_EXIT_USAGE);
			continue;
		}
		assert_int_equal(o.status, 0);
		assert_string_equal(o.err, "");
		assert_string_equal(record, cases[i].record);
	}
}

static void test_bad_lines(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		const char *err;
	} cases[] = {
		{"connect server --host h --password p --port 70000",
		 "qic connect server: --port: 70000 is out of range (1 to 65535) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --port 0",
		 "qic connect server: --port: 0 is out of range (1 to 65535) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --port abc",
		 "qic connect server: --port: 'abc' is not a number "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --port -1",
		 "qic connect server: --port: '-1' is not a number "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --port=",
		 "qic connect server: --port: '' is not a number (see 'qic connect server "
		 "--help')\n"},
		{"connect server --host h --password p --port 1e3",
		 "qic connect server: --port: '1e3' is not a number "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --retries 18446744073709551616",
		 "qic connect server: --retries: 18446744073709551616 is out of range (at least 0) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --chunk 4X",
		 "qic connect server: --chunk: '4X' is not a size (such as 512, 64K, 4M, 1G) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --chunk 2G",
		 "qic connect server: --chunk: 2G is out of range (1024 to 1073741824) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --password p --chunk 1023",
		 "qic connect server: --chunk: 1023 is out of range (1024 to 1073741824) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --hots h --password p",
		 "qic connect server: unknown option --hots (see 'qic connect server --help')\n"},
		{"connect server --host h --password p -x",
		 "qic connect server: unknown option -x (see 'qic connect server --help')\n"},
		{"connect server --password p --host",
		 "qic connect server: --host needs a value (--host HOST) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host --password p",
		 "qic connect server: --host needs a value (--host HOST) "
		 "(see 'qic connect server --help')\n"},
		{"connect server --host h --host i --password p",
		 "qic connect server: --host given twice (see 'qic connect server --help')\n"},
		{"connect server --host h",
		 "qic connect server: missing --password PW (see 'qic connect server --help')\n"},
		{"connect server --host h --password p --force=yes",
		 "qic connect server: --force takes no value (see 'qic connect server --help')\n"},
		{"connect server --host h --password p --json --json",
		 "qic connect server: --json given twice (see 'qic connect server --help')\n"},
		{"connect server --host h --password p --json=1",
		 "qic connect server: unknown option --json (see 'qic connect server --help')\n"},
		{"connect server --host h --password p extra",
		 "qic connect server: unexpected argument 'extra' "
		 "(see 'qic connect server --help')\n"},
		{"connect root --local a --remote b",
		 "qic connect root: use --local or --remote, not both "
		 "(see 'qic connect root --help')\n"},
		{"share file", "qic share file: missing PATH (see 'qic share file --help')\n"},
		{"share file a b", "qic share file: unexpected argument 'b' (see 'qic share file "
				   "--help')\n"},
		{"connect",
		 "qic connect: choose one of: server, root (see 'qic connect --help')\n"},
		{"connect --json", "qic connect: choose one of: server, root "
				   "(see 'qic connect --help')\n"},
		{"conect server", "qic: unknown command 'conect server' (see 'qic --help')\n"},
		{"connect servers", "qic: unknown command 'connect servers' (see 'qic --help')\n"},
		{"--json", "qic: expected a command before '--json' (see 'qic --help')\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome o;
		run_line(cases[i].line, &o);
		assert_int_equal(o.status, QS_EXIT_USAGE);
		assert_string_equal(o.err, cases[i].err);
		assert_string_equal(o.out, "");
		assert_string_equal(record, ""); /* the command never ran */
	}
}

static void test_help(void **state)
{
	(void)state;
	struct outcome o;
	run_line("connect server --help", &o);
	assert_int_equal(o.status, 0);
	assert_string_equal(o.err, "");
	assert_string_equal(
		o.out, "usage: qic connect server --host HOST [--port PORT] --password PW "
		       "[--fingerprint SHA256] [--chunk SIZE] [--force] [--retries N] [--json]\n"
		       "\n"
		       "Connect this client to a server.\n"
		       "\n"
		       "options:\n"
		       "  --host HOST                server name or address (required)\n"
		       "  --port PORT                sync protocol port (default: 6122)\n"
		       "  --password PW              server password (required)\n"
		       "  --fingerprint SHA256       expected certificate\n"
		       "  --chunk SIZE               chunk size\n"
		       "  --force                    do it anyway\n"
		       "  --retries N                attempts\n"
		       "  --json                     print the result as JSON\n"
		       "  -h, --help                 show this help\n");
	assert_string_equal(record, "");

	/* Help wins over other problems on the line, and "help WORDS" is the same. */
	struct outcome o2;
	run_line("connect server --bogus -h", &o2);
	assert_int_equal(o2.status, 0);
	assert_string_equal(o2.out, o.out);
	run_line("help connect server", &o2);
	assert_int_equal(o2.status, 0);
	assert_string_equal(o2.out, o.out);

	run_line("share file --help", &o);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "usage: qic share file [--json] PATH\n"));

	run_line("--help", &o);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "usage: qic COMMAND [OPTIONS]\n\nThe QUIC-S client.\n"));
	assert_non_null(strstr(o.out, "  qic sync status            Show sync state.\n"));
	assert_non_null(strstr(o.out, "Run 'qic COMMAND --help'"));

	/* No command at all: the list, on stderr, status 2. */
	run_line("", &o);
	assert_int_equal(o.status, QS_EXIT_USAGE);
	assert_string_equal(o.out, "");
	assert_non_null(strstr(o.err, "  qic stop "));

	run_line("connect --help", &o);
	assert_int_equal(o.status, 0);
	assert_non_null(strstr(o.out, "qic connect server"));
	assert_non_null(strstr(o.out, "qic connect root"));
	assert_null(strstr(o.out, "qic stop"));
}

static void test_run_status_passes_through(void **state)
{
	(void)state;
	struct outcome o;
	run_status = 7;
	run_line("stop", &o);
	run_status = 0;
	assert_int_equal(o.status, 7);
	assert_string_equal(record, "stop json=0");
}

static void test_parse_direct(void **state)
{
	(void)state;
	struct qs_cmd_ctx ctx = {.prog = "qic"};
	char msg[128];
	char *argv[] = {(char *)"--host", (char *)"h", (char *)"--password", (char *)"p"};
	assert_int_equal(qs_cmd_parse(&cmds[0], 4, argv, &ctx, msg, sizeof(msg)), 0);
	assert_string_equal(qs_cmd_str(&ctx, "host"), "h");
	assert_int_equal(qs_cmd_num(&ctx, "port"), 6122);
	assert_false(qs_cmd_given(&ctx, "port")); /* filled from the default */
	assert_null(qs_cmd_str(&ctx, "fingerprint"));
	char *bad[] = {(char *)"--nope"};
	assert_int_equal(qs_cmd_parse(&cmds[0], 1, bad, &ctx, msg, sizeof(msg)), QS_EINVAL);
	assert_string_equal(msg, "unknown option --nope");
	char *help[] = {(char *)"--", (char *)"--help"};
	assert_int_equal(qs_cmd_parse(&cmds[2], 2, help, &ctx, msg, sizeof(msg)), 0);
	assert_string_equal(ctx.args[0], "--help");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_lines),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_run_status_passes_through),
		cmocka_unit_test(test_parse_direct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

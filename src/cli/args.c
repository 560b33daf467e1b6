/* Subcommand dispatch and option parsing for the front ends. Everything the user typed is
 * checked before a command runs; each refusal is one line saying what was wrong and where
 * help is. Values are borrowed from argv; nothing is allocated. */
#include "cli/args.h"

#include <assert.h>
#include <stdarg.h>
#include <string.h>

#include "base/err.h"
#include "base/num.h"

#define HELP_COLUMN 26

static const char *value_name(const struct qs_opt *o)
{
	return o->value_name != NULL ? o->value_name : "VALUE";
}

static size_t opt_index(const struct qs_cmd *cmd, const char *name, size_t len)
{
	for (size_t i = 0; i < cmd->nopts; i++)
		if (strlen(cmd->opts[i].name) == len && memcmp(cmd->opts[i].name, name, len) == 0)
			return i;
	return SIZE_MAX;
}

static size_t opt_index_checked(const struct qs_cmd_ctx *c, const char *name)
{
	size_t i = opt_index(c->cmd, name, strlen(name));
	assert(i != SIZE_MAX); /* a name missing from the command's table is our bug */
	return i;
}

bool qs_cmd_given(const struct qs_cmd_ctx *c, const char *name)
{
	return c->vals[opt_index_checked(c, name)].given;
}

const char *qs_cmd_str(const struct qs_cmd_ctx *c, const char *name)
{
	const struct qs_optval *v = &c->vals[opt_index_checked(c, name)];
	return v->set ? v->str : NULL;
}

uint64_t qs_cmd_num(const struct qs_cmd_ctx *c, const char *name)
{
	const struct qs_optval *v = &c->vals[opt_index_checked(c, name)];
	return v->set ? v->num : 0;
}

static int fail(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *msg, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, cap, fmt, ap);
	va_end(ap);
	return QS_EINVAL;
}

/* Stores text as the value of o, converting numbers. */
static int set_value(const struct qs_opt *o, struct qs_optval *v, const char *text, char *msg,
		     size_t cap)
{
	uint64_t max = o->max != 0 ? o->max : UINT64_MAX, n = 0;
	int rc = 0;
	if (o->type == QS_OPT_U64)
		rc = qs_parse_u64(text, max, &n);
	else if (o->type == QS_OPT_SIZE)
		rc = qs_parse_size(text, max, &n);
	if (rc == QS_EINVAL)
		return fail(msg, cap, "--%s: '%.64s' is not a %s", o->name, text,
			    o->type == QS_OPT_SIZE ? "size (such as 512, 64K, 4M, 1G)" : "number");
	if (rc == QS_E2BIG || n < o->min) {
		if (o->max == 0)
			return fail(msg, cap, "--%s: %.64s is out of range (at least %llu)",
				    o->name, text, (unsigned long long)o->min);
		return fail(msg, cap, "--%s: %.64s is out of range (%llu to %llu)", o->name, text,
			    (unsigned long long)o->min, (unsigned long long)max);
	}
	v->set = true;
	v->str = text;
	v->num = n;
	return 0;
}

/* Handles argv[*i], an argument starting with "--". */
static int parse_long(const struct qs_cmd *cmd, int argc, char *const *argv, int *i,
		      struct qs_cmd_ctx *ctx, char *msg, size_t cap)
{
	const char *name = argv[*i] + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	if (len == 4 && memcmp(name, "json", 4) == 0 && eq == NULL) {
		if (ctx->json)
			return fail(msg, cap, "--json given twice");
		ctx->json = true;
		return 0;
	}
	size_t k = opt_index(cmd, name, len);
	if (k == SIZE_MAX)
		return fail(msg, cap, "unknown option --%.*s", (int)(len < 64 ? len : 64), name);
	const struct qs_opt *o = &cmd->opts[k];
	struct qs_optval *v = &ctx->vals[k];
	if (v->given)
		return fail(msg, cap, "--%s given twice", o->name);
	v->given = true;
	if (o->type == QS_OPT_FLAG) {
		if (eq != NULL)
			return fail(msg, cap, "--%s takes no value", o->name);
		v->set = true;
		return 0;
	}
	const char *value = eq != NULL ? eq + 1 : NULL;
	if (value == NULL && *i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
		value = argv[++*i];
	if (value == NULL)
		return fail(msg, cap, "--%s needs a value (--%s %s)", o->name, o->name,
			    value_name(o));
	return set_value(o, v, value, msg, cap);
}

/* After the arguments: positional count, required options, defaults. */
static int parse_finish(const struct qs_cmd *cmd, struct qs_cmd_ctx *ctx, char *msg, size_t cap)
{
	if (ctx->nargs < cmd->min_args)
		return fail(msg, cap, "missing %s", cmd->args != NULL ? cmd->args : "arguments");
	for (size_t k = 0; k < cmd->nopts; k++) {
		const struct qs_opt *o = &cmd->opts[k];
		if (ctx->vals[k].set)
			continue;
		if (o->required)
			return fail(msg, cap, "missing --%s %s", o->name, value_name(o));
		if (o->dflt != NULL && o->type != QS_OPT_FLAG) {
			int rc = set_value(o, &ctx->vals[k], o->dflt, msg, cap);
			assert(rc == 0); /* a default that does not parse is our bug */
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int qs_cmd_parse(const struct qs_cmd *cmd, int argc, char *const *argv, struct qs_cmd_ctx *ctx,
		 char *msg, size_t msg_cap)
{
	assert(cmd->nopts <= QS_CMD_MAX_OPTS);
	memset(ctx->vals, 0, sizeof(ctx->vals));
	ctx->json = false;
	ctx->nargs = 0;
	ctx->cmd = cmd;
	msg[0] = '\0';
	for (int i = 0; i < argc; i++) /* help wins over every other problem */
		if (strcmp(argv[i], "--") == 0)
			break;
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	bool only_args = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rc = 0;
		if (!only_args && strcmp(a, "--") == 0) {
			only_args = true;
		} else if (!only_args && a[0] == '-' && a[1] == '-') {
			rc = parse_long(cmd, argc, argv, &i, ctx, msg, msg_cap);
		} else if (!only_args && a[0] == '-' && a[1] != '\0') {
			rc = fail(msg, msg_cap, "unknown option %.64s", a);
		} else if (ctx->nargs == cmd->max_args || ctx->nargs == QS_CMD_MAX_ARGS) {
			rc = fail(msg, msg_cap, "unexpected argument '%.64s'", a);
		} else {
			ctx->args[ctx->nargs++] = a;
		}
		if (rc != 0)
			return rc;
	}
	return parse_finish(cmd, ctx, msg, msg_cap);
}

/* "--name VALUE" as shown in help and usage lines. */
static int opt_text(char *buf, size_t cap, const struct qs_opt *o)
{
	if (o->type == QS_OPT_FLAG)
		return snprintf(buf, cap, "--%s", o->name);
	return snprintf(buf, cap, "--%s %s", o->name, value_name(o));
}

void qs_cmd_help(FILE *f, const char *prog, const struct qs_cmd *cmd)
{
	char t[96];
	fprintf(f, "usage: %s %s", prog, cmd->name);
	for (size_t k = 0; k < cmd->nopts; k++) {
		opt_text(t, sizeof(t), &cmd->opts[k]);
		fprintf(f, cmd->opts[k].required ? " %s" : " [%s]", t);
	}
	fprintf(f, " [--json]%s%s\n\n%s\n\noptions:\n", cmd->args != NULL ? " " : "",
		cmd->args != NULL ? cmd->args : "", cmd->summary);
	for (size_t k = 0; k < cmd->nopts; k++) {
		const struct qs_opt *o = &cmd->opts[k];
		int n = opt_text(t, sizeof(t), o);
		fprintf(f, "  %s%*s %s", t, n < HELP_COLUMN ? HELP_COLUMN - n : 0, "", o->help);
		if (o->required)
			fprintf(f, " (required)");
		else if (o->dflt != NULL)
			fprintf(f, " (default: %s)", o->dflt);
		fputc('\n', f);
	}
	fprintf(f, "  --json%*s print the result as JSON\n", HELP_COLUMN - 6, "");
	fprintf(f, "  -h, --help%*s show this help\n", HELP_COLUMN - 10, "");
}

/* Number of words in a command name. */
static int name_words(const char *name)
{
	int n = 1;
	for (const char *p = name; *p != '\0'; p++)
		n += *p == ' ';
	return n;
}

/* True if the first k words of name equal words[0..k). */
static bool words_match(const char *name, char *const *words, int k)
{
	const char *p = name;
	for (int i = 0; i < k; i++) {
		size_t len = strlen(words[i]);
		if (strncmp(p, words[i], len) != 0 || (p[len] != ' ' && p[len] != '\0'))
			return false;
		p += len;
		if (*p == '\0')
			return i + 1 == k;
		p++;
	}
	return true;
}

static void list_commands(FILE *f, const char *prog, const struct qs_cmd *cmds, size_t ncmds,
			  char *const *words, int k)
{
	for (size_t i = 0; i < ncmds; i++) {
		if (!words_match(cmds[i].name, words, k))
			continue;
		size_t n = strlen(cmds[i].name);
		fprintf(f, "  %s %s%*s %s\n", prog, cmds[i].name,
			n < HELP_COLUMN - 4 ? (int)(HELP_COLUMN - 4 - n) : 0, "", cmds[i].summary);
	}
}

/* Appends the word after the first k words of name to the comma-separated list, once. */
static void next_word_add(char *list, size_t cap, const char *name, int k)
{
	const char *p = name;
	for (int i = 0; i < k; i++)
		p = strchr(p, ' ') + 1;
	size_t n = strcspn(p, " ");
	for (const char *item = list; *item != '\0';) {
		size_t len = strcspn(item, ",");
		if (len == n && strncmp(item, p, n) == 0)
			return;
		item += len;
		item += strspn(item, ", ");
	}
	size_t used = strlen(list);
	if (used + n + 3 >= cap)
		return;
	snprintf(list + used, cap - used, "%s%.*s", used > 0 ? ", " : "", (int)n, p);
}

/* No command fits argv: list the commands that continue the words typed, or refuse. */
static int no_command(const char *prog, const struct qs_cmd *cmds, size_t ncmds, int argc,
		      char *const *argv, FILE *out, FILE *err)
{
	int k = 0;
	bool help = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			help = true;
		else if (argv[i][0] != '-' && k == i - 1)
			k++;
	}
	char typed[128] = "", next[256] = "";
	for (int i = 1; i <= k; i++)
		snprintf(typed + strlen(typed), sizeof(typed) - strlen(typed), "%s%.32s",
			 i > 1 ? " " : "", argv[i]);
	for (size_t i = 0; i < ncmds && k > 0; i++)
		if (name_words(cmds[i].name) > k && words_match(cmds[i].name, argv + 1, k))
			next_word_add(next, sizeof(next), cmds[i].name, k);
	if (k == 0) {
		fprintf(err, "%s: expected a command before '%.64s' (see '%s --help')\n", prog,
			argv[1], prog);
		return QS_EXIT_USAGE;
	}
	if (next[0] == '\0') {
		fprintf(err, "%s: unknown command '%s' (see '%s --help')\n", prog, typed, prog);
		return QS_EXIT_USAGE;
	}
	if (!help) {
		fprintf(err, "%s %s: choose one of: %s (see '%s %s --help')\n", prog, typed, next,
			prog, typed);
		return QS_EXIT_USAGE;
	}
	fprintf(out, "usage: %s %s COMMAND [OPTIONS]\n\ncommands:\n", prog, typed);
	list_commands(out, prog, cmds, ncmds, argv + 1, k);
	return QS_EXIT_OK;
}

/* "prog help WORDS..." is "prog WORDS... --help". */
static int help_words(const char *prog, const char *summary, const struct qs_cmd *cmds,
		      size_t ncmds, int argc, char *const *argv, void *arg, FILE *out, FILE *err)
{
	char *v[QS_CMD_MAX_ARGS + 2];
	int n = 0;
	v[n++] = argv[0];
	for (int i = 2; i < argc && n < QS_CMD_MAX_ARGS; i++)
		v[n++] = argv[i];
	v[n++] = (char *)"--help";
	return qs_cli_main(prog, summary, cmds, ncmds, n, v, arg, out, err);
}

int qs_cli_main(const char *prog, const char *summary, const struct qs_cmd *cmds, size_t ncmds,
		int argc, char *const *argv, void *arg, FILE *out, FILE *err)
{
	if (argc > 2 && strcmp(argv[1], "help") == 0)
		return help_words(prog, summary, cmds, ncmds, argc, argv, arg, out, err);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		FILE *f = argc < 2 ? err : out;
		fprintf(f, "usage: %s COMMAND [OPTIONS]\n\n%s\n\ncommands:\n", prog, summary);
		list_commands(f, prog, cmds, ncmds, NULL, 0);
		fprintf(f, "\nRun '%s COMMAND --help' for the options of a command.\n", prog);
		return argc < 2 ? QS_EXIT_USAGE : QS_EXIT_OK;
	}
	const struct qs_cmd *best = NULL;
	int best_k = 0;
	for (size_t i = 0; i < ncmds; i++) {
		int k = name_words(cmds[i].name);
		if (k < argc && k > best_k && words_match(cmds[i].name, argv + 1, k)) {
			best = &cmds[i];
			best_k = k;
		}
	}
	if (best == NULL)
		return no_command(prog, cmds, ncmds, argc, argv, out, err);
	struct qs_cmd_ctx ctx = {.prog = prog, .out = out, .err = err, .arg = arg};
	char msg[256];
	int rc = qs_cmd_parse(best, argc - 1 - best_k, argv + 1 + best_k, &ctx, msg, sizeof(msg));
	if (rc == 1) {
		qs_cmd_help(out, prog, best);
		return QS_EXIT_OK;
	}
	if (rc != 0) {
		fprintf(err, "%s %s: %s (see '%s %s --help')\n", prog, best->name, msg, prog,
			best->name);
		return QS_EXIT_USAGE;
	}
	return best->run(&ctx);
}

int qs_cmd_usage_error(const struct qs_cmd_ctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(c->err, "%s %s: %s (see '%s %s --help')\n", c->prog, c->cmd->name, msg, c->prog,
		c->cmd->name);
	return QS_EXIT_USAGE;
}

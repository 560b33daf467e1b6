/* Command-line front end of qis and qic: a table of subcommands ("connect server", "sync
 * status"), each with its long options, positional arguments and a run function. Every command
 * gets --help (-h) and --json. Usage errors are one line on stderr and exit status 2; numbers
 * go through base/num.h. Not thread-safe (writes to the given streams). */
#ifndef QS_CLI_ARGS_H
#define QS_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Process exit statuses. */
#define QS_EXIT_OK 0
#define QS_EXIT_FAIL 1  /* the command ran and failed */
#define QS_EXIT_USAGE 2 /* the command line was wrong */

#define QS_CMD_MAX_OPTS 24 /* options in one command, besides --help and --json */
#define QS_CMD_MAX_ARGS 8  /* positional arguments kept */

enum qs_opt_type {
	QS_OPT_FLAG,   /* --name */
	QS_OPT_STRING, /* --name VALUE or --name=VALUE */
	QS_OPT_U64,    /* a decimal number in [min, max] (qs_parse_u64) */
	QS_OPT_SIZE,   /* a size with an optional K/M/G/T suffix in [min, max] (qs_parse_size) */
};

struct qs_opt {
	const char *name; /* without dashes: "port"; lower-case letters, digits, '-' */
	enum qs_opt_type type;
	const char *value_name; /* in help: "PORT" (NULL: "VALUE") */
	const char *help;       /* one line */
	uint64_t min, max;      /* numbers: inclusive range; max 0 means UINT64_MAX */
	const char *dflt;       /* value when absent (parsed like a given one), or NULL */
	bool required;
};

struct qs_cmd_ctx;

struct qs_cmd {
	const char *name;    /* the words after the program: "connect server" */
	const char *summary; /* one line for lists and help */
	const char *args;    /* positional arguments in the usage line ("PATH..."), or NULL */
	unsigned min_args, max_args;
	const struct qs_opt *opts;
	size_t nopts;
	/* Runs the command; returns an exit status. Messages go to ctx->out / ctx->err. */
	int (*run)(struct qs_cmd_ctx *ctx);
};

struct qs_optval {
	bool set; /* given, or filled from dflt */
	bool given;
	const char *str; /* STRING: the value (borrowed from argv or dflt); numbers: the text */
	uint64_t num;    /* U64, SIZE */
};

struct qs_cmd_ctx {
	const char *prog; /* "qic" */
	const struct qs_cmd *cmd;
	bool json;                              /* --json */
	struct qs_optval vals[QS_CMD_MAX_OPTS]; /* in the order of cmd->opts */
	const char *args[QS_CMD_MAX_ARGS];
	unsigned nargs;
	FILE *out, *err;
	void *arg; /* the program's own state, from qs_cli_main */
};

/* Option values by name (names not in the command's table are a bug: asserted). */
bool qs_cmd_given(const struct qs_cmd_ctx *c, const char *name);      /* FLAG: was it given */
const char *qs_cmd_str(const struct qs_cmd_ctx *c, const char *name); /* NULL when unset */
uint64_t qs_cmd_num(const struct qs_cmd_ctx *c, const char *name);    /* 0 when unset */

/* Parses the arguments that follow the command words into ctx (prog, cmd, out and err are
 * left as set by the caller). Returns 0; 1 when --help was asked for; or QS_EINVAL with a
 * one-line reason in msg (without the program name), e.g. "unknown option --hots". */
int qs_cmd_parse(const struct qs_cmd *cmd, int argc, char *const *argv, struct qs_cmd_ctx *ctx,
		 char *msg, size_t msg_cap);

/* Prints a command's usage and options. */
void qs_cmd_help(FILE *f, const char *prog, const struct qs_cmd *cmd);

/* The whole front end: picks the command whose words start argv[1..], parses the rest, prints
 * help or a usage error, or runs the command. "prog --help" and "prog help" list the commands;
 * a prefix of several commands ("qic connect") lists those. Returns the exit status. */
int qs_cli_main(const char *prog, const char *summary, const struct qs_cmd *cmds, size_t ncmds,
		int argc, char *const *argv, void *arg, FILE *out, FILE *err);

/* Prints "prog command: <message>" on ctx->err and returns QS_EXIT_USAGE: for usage errors a
 * command finds itself (options that exclude each other). */
int qs_cmd_usage_error(const struct qs_cmd_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

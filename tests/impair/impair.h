/* qs-impair internals shared by its three parts: the command line (impair_args.c), the
 * impairment engine (impair_engine.c: no sockets, no clock, time is a parameter) and the
 * socket loop (qs_impair.c). See docs/impair.md. */
#ifndef QS_IMPAIR_H
#define QS_IMPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define QS_IMPAIR_PPB UINT64_C(1000000000) /* probabilities are kept in parts per billion */
#define QS_IMPAIR_HOLD_MAX 256             /* datagrams held back for reordering at most */

enum qs_impair_dir { QS_IMPAIR_C2S = 0, QS_IMPAIR_S2C = 1, QS_IMPAIR_DIRS = 2 };
extern const char *const qs_impair_dir_names[QS_IMPAIR_DIRS]; /* "c2s", "s2c" */

/* Per-direction settings: "--NAME V" sets both directions, "--NAME-c2s V" (client to
 * server) and "--NAME-s2c V" (server to client) one. Probabilities are in parts per
 * billion, the rest in the unit their name says. */
enum qs_impair_opt {
	QS_IMPAIR_DROP,
	QS_IMPAIR_DUP,
	QS_IMPAIR_REORDER,
	QS_IMPAIR_CORRUPT,
	QS_IMPAIR_DELAY_MS,
	QS_IMPAIR_JITTER_MS,
	QS_IMPAIR_RATE_KBIT,
	QS_IMPAIR_REORDER_GAP,
	QS_IMPAIR_REORDER_MS,
	QS_IMPAIR_OPTS
};

struct qs_impair_opt_spec {
	const char *name; /* the option without dashes, e.g. "delay-ms" */
	bool is_probability;
	uint64_t min, max, def;
	const char *help;
};
extern const struct qs_impair_opt_spec qs_impair_opt_specs[QS_IMPAIR_OPTS];

/* Counters per direction; see docs/impair.md for what each one means. */
enum qs_impair_stat {
	QS_IMPAIR_RECEIVED,
	QS_IMPAIR_FORWARDED,
	QS_IMPAIR_DROPPED,
	QS_IMPAIR_DUPLICATED,
	QS_IMPAIR_REORDERED,
	QS_IMPAIR_CORRUPTED,
	QS_IMPAIR_OVERFLOW,
	QS_IMPAIR_SEND_ERRORS,
	QS_IMPAIR_STALE,
	QS_IMPAIR_STATS
};
extern const char *const qs_impair_stat_names[QS_IMPAIR_STATS];

/* ---- command line (impair_args.c) ---- */

struct qs_impair_config {
	struct sockaddr_storage listen_addr;
	socklen_t listen_len;
	struct sockaddr_storage upstream_addr;
	socklen_t upstream_len;
	bool has_upstream;
	uint64_t seed;
	uint64_t queue_max;
	uint64_t max_clients;
	const char *port_file; /* borrows argv */
	uint64_t dir[QS_IMPAIR_DIRS][QS_IMPAIR_OPTS];
};

/* Fills *cfg with the defaults: listen on 127.0.0.1, seed 1, no impairment. */
void qs_impair_config_defaults(struct qs_impair_config *cfg);

/* Parses the command line into *cfg (defaults for what is not given). Returns 0 to run, 1
 * after printing --help to stdout, or QS_EINVAL after printing one line saying what is
 * wrong to stderr. May set the log level (--log-level). */
int qs_impair_parse_args(int argc, char **argv, struct qs_impair_config *cfg);

/* Parses a probability written as a decimal in [0, 1] with at most 9 decimals ("0", "1",
 * "0.05", "1.000") into parts per billion. Signs, exponents, spaces, a bare "." and empty
 * parts are refused. Errors: QS_EINVAL (not such a decimal), QS_E2BIG (greater than 1),
 * QS_ENOMEM. */
int qs_impair_parse_probability(const char *s, uint64_t *out_ppb);

/* Parses "IPV4:PORT" or "[IPV6]:PORT" (numeric only) with the port in [min_port, 65535].
 * On failure prints a line naming `opt` to stderr. Errors: QS_EINVAL. */
int qs_impair_parse_hostport(const char *opt, const char *s, uint64_t min_port,
			     struct sockaddr_storage *out, socklen_t *out_len);

void qs_impair_usage(FILE *f);

/* ---- the engine (impair_engine.c) ---- */

/* xoshiro256** seeded through splitmix64: the same seed gives the same choices. */
struct qs_impair_rng {
	uint64_t s[4];
};

enum qs_impair_sent { QS_IMPAIR_SENT, QS_IMPAIR_SEND_FAILED, QS_IMPAIR_SESSION_GONE };

/* Sends one datagram towards dir's destination for the session (slot, generation); data
 * is borrowed for the call. Called from qs_impair_input and qs_impair_tick only. */
typedef enum qs_impair_sent (*qs_impair_emit_fn)(void *arg, enum qs_impair_dir dir,
						 uint32_t session_idx, uint64_t session_gen,
						 const unsigned char *data, size_t len);

struct qs_impair_pkt;

struct qs_impair_dir_state {
	uint64_t conf[QS_IMPAIR_OPTS];
	bool is_immediate; /* no delay, jitter or rate cap: sent at once, never queued */
	struct qs_impair_rng rng;
	uint64_t link_free_ns; /* when the capped link has sent its backlog */
	uint64_t stats[QS_IMPAIR_STATS];
};

/* The impairment pipeline of both directions: decisions, the delay heap (a min-heap on
 * due time, then arrival) and the hold list for reordering. A queued datagram is owned by
 * exactly one of them; together they hold at most queue_max. Single-threaded. */
struct qs_impair_engine {
	struct qs_impair_dir_state dirs[QS_IMPAIR_DIRS];
	size_t queue_max;
	struct qs_impair_pkt **heap; /* capacity queue_max */
	size_t heap_len;
	struct qs_impair_pkt *holds[QS_IMPAIR_HOLD_MAX]; /* in the order they were held */
	size_t hold_len;
	uint64_t next_seq;
	qs_impair_emit_fn emit;
	void *emit_arg;
};

/* Sets up an engine with the settings of cfg (copied) and its seed. Each direction draws
 * from its own stream, so one side's traffic cannot shift the other's choices.
 * Errors: QS_EINVAL (queue_max is 0), QS_ENOMEM. */
int qs_impair_engine_init(struct qs_impair_engine *e, const struct qs_impair_config *cfg,
			  qs_impair_emit_fn emit, void *emit_arg);
/* Frees every queued datagram (they are not sent). */
void qs_impair_engine_release(struct qs_impair_engine *e);

/* Runs one received datagram through drop, corrupt, duplicate and reorder, in that order,
 * then sends it at once or queues it. data may be modified (corruption) and is not kept. */
void qs_impair_input(struct qs_impair_engine *e, enum qs_impair_dir dir, uint32_t session_idx,
		     uint64_t session_gen, unsigned char *data, size_t len, uint64_t now_ns);
/* Releases holds whose time is up and sends every queued datagram that is due. */
void qs_impair_tick(struct qs_impair_engine *e, uint64_t now_ns);
/* When the next queued or held datagram is due, or UINT64_MAX if none is. */
uint64_t qs_impair_next_ns(const struct qs_impair_engine *e);
/* How many datagrams of dir are queued or held. */
size_t qs_impair_pending(const struct qs_impair_engine *e, enum qs_impair_dir dir);

#endif

/* Logging: one event per line, "level module key=value ...". The sink and threshold are
 * process-wide settings made once at start-up (by main) before threads start; qs_log
 * itself is thread-safe as long as the sink is. Secrets are never passed to it. */
#ifndef QS_BASE_LOG_H
#define QS_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum qs_log_level { QS_LOG_DEBUG = 0, QS_LOG_INFO = 1, QS_LOG_WARN = 2, QS_LOG_ERROR = 3 };

/* Receives one finished line (no trailing newline). */
typedef void (*qs_log_fn)(enum qs_log_level level, const char *line, void *arg);

/* Sets the sink (NULL restores the default: stderr) and its argument. */
void qs_log_set_sink(qs_log_fn fn, void *arg);
/* Lines below this level are dropped. Default: QS_LOG_INFO. */
void qs_log_set_level(enum qs_log_level level);
/* Parses "debug", "info", "warn" or "error". Errors: QS_EINVAL. */
int qs_log_level_parse(const char *s, enum qs_log_level *out);
bool qs_log_enabled(enum qs_log_level level);

/* Formats and emits one line: "<level> <module> <fmt...>". Lines are cut at 1 KiB. */
void qs_log(enum qs_log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define qs_debug(module, ...) qs_log(QS_LOG_DEBUG, module, __VA_ARGS__)
#define qs_info(module, ...) qs_log(QS_LOG_INFO, module, __VA_ARGS__)
#define qs_warn(module, ...) qs_log(QS_LOG_WARN, module, __VA_ARGS__)
#define qs_error(module, ...) qs_log(QS_LOG_ERROR, module, __VA_ARGS__)

/* Rate limit for logs of peer errors: at most `burst` events per `window_ns`. The caller
 * supplies the time (base has no clock). */
struct qs_ratelimit {
	uint64_t window_ns;
	uint32_t burst;
	uint64_t window_start_ns;
	uint32_t count;
	uint64_t suppressed;
};

void qs_ratelimit_init(struct qs_ratelimit *rl, uint64_t window_ns, uint32_t burst);
/* Returns true if an event at now_ns may be logged. */
bool qs_ratelimit_allow(struct qs_ratelimit *rl, uint64_t now_ns);

#endif

/* Line logger with a replaceable sink; default sink writes to stderr with one write per
 * line so concurrent lines do not interleave. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"

static qs_log_fn log_sink;
static void *log_sink_arg;
static enum qs_log_level log_threshold = QS_LOG_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void qs_log_set_sink(qs_log_fn fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

void qs_log_set_level(enum qs_log_level level)
{
	log_threshold = level;
}

int qs_log_level_parse(const char *s, enum qs_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum qs_log_level)i;
			return 0;
		}
	}
	return QS_EINVAL;
}

bool qs_log_enabled(enum qs_log_level level)
{
	return level >= log_threshold;
}

void qs_log(enum qs_log_level level, const char *module, const char *fmt, ...)
{
	if (!qs_log_enabled(level))
		return;
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s %s ", log_names[level], module);
	if (n < 0)
		return;
	size_t off = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	if (log_sink != NULL) {
		log_sink(level, line, log_sink_arg);
		return;
	}
	size_t len = strlen(line);
	if (len < sizeof(line) - 1) {
		line[len++] = '\n';
	} else {
		line[len - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void qs_ratelimit_init(struct qs_ratelimit *rl, uint64_t window_ns, uint32_t burst)
{
	memset(rl, 0, sizeof(*rl));
	rl->window_ns = window_ns;
	rl->burst = burst;
}

bool qs_ratelimit_allow(struct qs_ratelimit *rl, uint64_t now_ns)
{
	if (now_ns - rl->window_start_ns >= rl->window_ns || now_ns < rl->window_start_ns) {
		rl->window_start_ns = now_ns;
		rl->count = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}

/* The one checked helper for numbers from text (CLI arguments, config, environment,
 * HTTP headers). Rejects empty input, signs, spaces, trailing garbage and overflow. */
#ifndef QS_BASE_NUM_H
#define QS_BASE_NUM_H

#include <stdint.h>

/* Parses a decimal unsigned integer in [0, max] from the whole string s.
 * Writes *out only on success. Errors: QS_EINVAL (not a number), QS_E2BIG (> max). */
int qs_parse_u64(const char *s, uint64_t max, uint64_t *out);

/* Parses a size with an optional binary suffix K, M, G, T (KiB...) e.g. "64K", "4M".
 * Errors as qs_parse_u64. */
int qs_parse_size(const char *s, uint64_t max, uint64_t *out);

#endif

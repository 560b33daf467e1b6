/* Strict UTF-8 (RFC 3629 / Unicode table 3-7): no overlongs, surrogates or code points past
 * U+10FFFF. The one validator every parser uses (paths, wire strings). */
#ifndef QS_BASE_UTF8_H
#define QS_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (2..4) of the well-formed multi-byte sequence starting at u[0] (a byte >= 0x80)
 * within avail bytes, or 0 when it is malformed, truncated, overlong, a surrogate or above
 * U+10FFFF. */
size_t qs_utf8_sequence(const unsigned char *u, size_t avail);

/* True if s[0..n) is strict UTF-8 containing no NUL byte (which a C string would cut at). */
bool qs_utf8_valid_nonul(const void *s, size_t n);

#endif

/* The stat fingerprint of a file: the scanner reports it, the client index stores it, the
 * engine compares them. A difference in any field means "read the file again"; comparing
 * nanosecond mtime, ctime (which a rewrite moves even when the writer restores the mtime) and
 * the inode (a file replaced by rename) catches a same-size rewrite within the same second. */
#ifndef QS_BASE_FINGERPRINT_H
#define QS_BASE_FINGERPRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct qs_fingerprint {
	uint64_t size;
	int64_t mtime_ns;
	int64_t ctime_ns;
	uint64_t inode;
	uint32_t mode; /* st_mode: type and permission bits */
};

/* Times in nanoseconds since the epoch, saturated (a file dated past 2262 cannot overflow). */
void qs_fingerprint_from_stat(const struct stat *st, struct qs_fingerprint *out);
bool qs_fingerprint_equal(const struct qs_fingerprint *a, const struct qs_fingerprint *b);

#endif

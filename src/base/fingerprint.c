/* Stat fingerprints (see fingerprint.h). */
#include "base/fingerprint.h"

static int64_t ts_ns(const struct timespec *ts)
{
	int64_t ns;
	if (__builtin_mul_overflow((int64_t)ts->tv_sec, (int64_t)1000000000, &ns) ||
	    __builtin_add_overflow(ns, (int64_t)ts->tv_nsec, &ns))
		return ts->tv_sec < 0 ? INT64_MIN : INT64_MAX;
	return ns;
}

void qs_fingerprint_from_stat(const struct stat *st, struct qs_fingerprint *out)
{
	out->size = (uint64_t)st->st_size;
	out->mtime_ns = ts_ns(&st->st_mtim);
	out->ctime_ns = ts_ns(&st->st_ctim);
	out->inode = (uint64_t)st->st_ino;
	out->mode = (uint32_t)st->st_mode;
}

bool qs_fingerprint_equal(const struct qs_fingerprint *a, const struct qs_fingerprint *b)
{
	return a->size == b->size && a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns &&
	       a->inode == b->inode && a->mode == b->mode;
}

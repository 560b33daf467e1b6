/* Hashing a local file on the libuv thread pool, so that a large file does not stop the loop
 * (REST API, QUIC acknowledgements, downloads) while it is read. The job owns a duplicate of
 * the root's directory fd, a copy of the path and the result; the pool thread touches
 * nothing else (no index, no engine state). Everything else runs on the loop thread. */
#ifndef QS_CLIENT_HASHJOB_H
#define QS_CLIENT_HASHJOB_H

#include <uv.h>

#include "client/localfile.h"

struct qic_hashjob;

/* The end of a job, on the loop: err is 0 with the path's state in *f, or the error of
 * qs_localfile_hash (QS_EAGAIN: written while read), or QS_ECANCELED (qic_hashjob_cancel).
 * *f is the job's: done may take it over (copy the struct, then qs_localfile_init(f)); it is
 * released when done returns. */
typedef void (*qic_hashjob_fn)(void *arg, int err, struct qs_localfile *f);

/* Hashes root-relative path beneath root_fd (qs_localfile_hash) on loop's thread pool. On
 * success *out is the job until done runs (exactly once, on the loop, never before this
 * returns); the loop does not end before it has run. Errors (done never runs): QS_ENOMEM,
 * QS_EIO (no fd to duplicate, or the pool refused). */
int qic_hashjob_start(uv_loop_t *loop, int root_fd, const char *path, qic_hashjob_fn done,
		      void *arg, struct qic_hashjob **out);

/* Asks a running job to stop: a job not yet started never reads, one reading stops at its
 * next block, and done runs with QS_ECANCELED (or with the result, if it had finished).
 * Loop thread only; j must be a job whose done has not run yet. */
void qic_hashjob_cancel(struct qic_hashjob *j);

#endif

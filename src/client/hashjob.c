/* Hash jobs on the libuv thread pool (see hashjob.h). The pool thread runs work_cb with the
 * job's own fd, path and result; the cancel flag is the only field both threads touch, and
 * it is atomic. after_cb (the loop) closes the fd, calls done and frees the job. */
#include "client/hashjob.h"

#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"

struct qic_hashjob {
	uv_work_t work;
	int root_fd; /* a duplicate: the root's own may be closed while this runs */
	char *path;
	struct qs_localfile f;
	int err;
	atomic_bool cancel;
	qic_hashjob_fn done;
	void *arg;
};

static void work_cb(uv_work_t *w)
{
	struct qic_hashjob *j = w->data;
	j->err = qs_localfile_hash_bounded(j->root_fd, j->path, UINT64_MAX, &j->cancel, &j->f);
}

static void after_cb(uv_work_t *w, int status)
{
	struct qic_hashjob *j = w->data;
	int err = status == UV_ECANCELED ? QS_ECANCELED : j->err;
	close(j->root_fd);
	j->done(j->arg, err, &j->f);
	qs_localfile_release(&j->f);
	qs_free(j->path);
	qs_free(j);
}

int qic_hashjob_start(uv_loop_t *loop, int root_fd, const char *path, qic_hashjob_fn done,
		      void *arg, struct qic_hashjob **out)
{
	struct qic_hashjob *j = qs_calloc(1, sizeof(*j));
	if (j == NULL)
		return QS_ENOMEM;
	qs_localfile_init(&j->f);
	atomic_init(&j->cancel, false);
	j->done = done;
	j->arg = arg;
	j->work.data = j;
	j->path = qs_strdup(path);
	j->root_fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
	int rc = j->path == NULL ? QS_ENOMEM : j->root_fd < 0 ? QS_EIO : 0;
	if (rc == 0 && uv_queue_work(loop, &j->work, work_cb, after_cb) != 0)
		rc = QS_EIO;
	if (rc != 0) {
		if (j->root_fd >= 0)
			close(j->root_fd);
		qs_free(j->path);
		qs_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

void qic_hashjob_cancel(struct qic_hashjob *j)
{
	atomic_store(&j->cancel, true);
	uv_cancel((uv_req_t *)&j->work); /* fails once the pool has taken it: the flag stops it */
}

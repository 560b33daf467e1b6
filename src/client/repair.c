/* Repair of received files that were not durable when the daemon stopped uncleanly: each is
 * hashed again; a file whose content is not what the index says (a torn or lost write) is the
 * remains of this client's own write, so it is removed and its index entry dropped: the
 * server then sends it again, and the scan never sees it as a user's change. Intact files
 * stay pending until the next durability batch syncs them. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/engine.h"
#include "client/localfile.h"
#include "client/repair.h"

/* Removes the regular file at path (beneath root_fd). A missing one is fine. */
static int remove_file(int root_fd, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *parent = slash != NULL ? qs_strndup(path, (size_t)(slash - path)) : qs_strdup(".");
	int fd = -1;
	int rc = parent == NULL ? QS_ENOMEM
				: qs_localfile_open(root_fd, parent, O_RDONLY | O_DIRECTORY, &fd);
	qs_free(parent);
	if (rc == QS_ENOENT)
		return 0;
	if (rc != 0)
		return rc;
	if (unlinkat(fd, slash != NULL ? slash + 1 : path, 0) != 0 && errno != ENOENT)
		rc = qs_err_from_errno(errno);
	close(fd);
	return rc;
}

int qic_repair_verify(int root_fd, const char *path, const struct qs_content *want,
		      enum qic_repair_verdict *out)
{
	struct qs_localfile f;
	qs_localfile_init(&f);
	int rc = qs_localfile_hash(root_fd, path, &f);
	enum qic_repair_verdict v = QIC_REPAIR_OTHER;
	if (rc == 0 && f.kind == QS_KIND_FILE && qs_content_equal(&f.content, want))
		v = QIC_REPAIR_INTACT;
	else if (rc == 0 && (f.kind == QS_KIND_FILE || f.kind == QS_KIND_TOMBSTONE))
		v = QIC_REPAIR_DAMAGED;
	qs_localfile_release(&f);
	if (rc == 0 && v == QIC_REPAIR_DAMAGED)
		rc = remove_file(root_fd, path);
	if (rc == 0)
		*out = v;
	return rc;
}

struct pending {
	uint64_t root_id;
	char *path;
	struct qs_content content;
};

struct pending_list {
	struct pending *v;
	size_t n, cap;
};

static int collect(void *arg, uint64_t root_id, const char *path, const struct qic_entry *e)
{
	struct pending_list *l = arg;
	if (e->content.kind != QS_KIND_FILE || e->conflicted)
		return 0; /* only received files are ever pending */
	int rc = qs_array_reserve((void **)&l->v, &l->cap, l->n + 1, sizeof(*l->v));
	if (rc != 0)
		return rc;
	struct pending *p = &l->v[l->n];
	p->root_id = root_id;
	p->content = e->content;
	p->path = qs_strdup(path);
	if (p->path == NULL)
		return QS_ENOMEM;
	l->n++;
	return 0;
}

/* Verifies one entry; a damaged file's entry is dropped. *repaired is set when it was. */
static int repair_one(struct qic_engine *e, const struct pending *p, bool *repaired)
{
	*repaired = false;
	struct qic_root *r = qic_root_by_id(e, p->root_id);
	if (r == NULL || r->paused)
		return 0; /* a folder that is not there now: verified when it is back */
	enum qic_repair_verdict v;
	int rc = qic_repair_verify(r->dir_fd, p->path, &p->content, &v);
	if (rc != 0) {
		qs_warn("client", "event=repair_failed path=\"%s\" err=%s", p->path,
			qs_strerror(rc));
		return 0; /* stays pending: verified again at the next start */
	}
	if (v != QIC_REPAIR_DAMAGED)
		return 0;
	qs_warn("client",
		"event=repaired root=%llu path=\"%s\" (not durable at an unclean stop:"
		" removed, the server sends it again)",
		(unsigned long long)p->root_id, p->path);
	*repaired = true;
	return qic_index_delete(r, p->path);
}

int qic_repair_pending(struct qic_engine *e, size_t *checked, size_t *repaired)
{
	struct pending_list l = {0};
	int rc = qic_index_each_pending(e, collect, &l);
	size_t fixed = 0;
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		bool one = false;
		rc = repair_one(e, &l.v[i], &one);
		if (one)
			fixed++;
	}
	if (rc == 0)
		rc = qic_index_flush(e);
	for (size_t i = 0; i < l.n; i++)
		qs_free(l.v[i].path);
	qs_free(l.v);
	if (rc == 0) {
		*checked = l.n;
		*repaired = fixed;
	}
	return rc;
}

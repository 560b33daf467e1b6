/* MUST_SYNC on the client: the server announces a new version of a path. The client asks only
 * for chunks it cannot take from the old version of the same file, writes the new file to a
 * temp file in manifest order (streaming: one chunk in memory at a time), verifies it, and
 * renames it into place only if the user has not touched the path since the index's view —
 * otherwise the local change wins and is proposed instead (DESIGN.md section 5). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "client/engine.h"
#include "core/chunker.h"
#include "core/filestate.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"

struct old_chunk {
	const uint8_t *hash; /* into old manifest */
	uint64_t offset;
	uint32_t len;
};

struct recv {
	struct qic_engine *e;
	struct qic_root *r;
	struct qs_tx *tx;
	char *path;
	uint64_t version;
	enum qs_kind kind;
	uint32_t mode;
	int64_t mtime_ns;
	struct qs_content content;
	struct qs_buf enc; /* manifest encoding or symlink target, for the index */
	struct qs_manifest m;
	bool have_entry;
	struct qic_entry entry; /* the index's view before this version */
	struct qs_manifest old; /* entry's manifest (files) */
	struct old_chunk *olds; /* old chunks by hash: open addressing, size nold_slots */
	size_t nold_slots;
	bool *want;  /* per manifest chunk: fetched from the server */
	size_t next; /* next manifest chunk to write */
	struct qs_localfile_writer w;
	bool writing, got_request, done;
	struct qs_chunk_rx rx;
	uint8_t *buf; /* one chunk, for local copies */
};

static void recv_free(struct recv *v)
{
	if (v->writing)
		qs_localfile_writer_abort(&v->w);
	qs_free(v->path);
	qs_buf_release(&v->enc);
	qs_manifest_release(&v->m);
	qs_manifest_release(&v->old);
	qs_free(v->olds);
	qs_free(v->want);
	qs_free(v->buf);
	qs_chunk_rx_release(&v->rx);
	if (v->have_entry)
		qic_entry_release(&v->entry);
	qs_free(v);
}

static void send_result(struct recv *v, Quics__SyncOutcome outcome, int err, const char *msg)
{
	if (v->done)
		return;
	v->done = true;
	qs_debug("client", "event=must_sync path=\"%s\" version=%llu outcome=%d err=%s",
		 v->path != NULL ? v->path : "", (unsigned long long)v->version, (int)outcome,
		 qs_strerror(err));
	Quics__SyncResult r = QUICS__SYNC_RESULT__INIT;
	Quics__Error e = QUICS__ERROR__INIT;
	r.outcome = outcome;
	if (err != 0) {
		e.code = qs_wire_error_code(err);
		e.message = (char *)msg;
		r.error = &e;
	}
	if (qs_tx_send_pb(v->tx, &r.base) != 0 || qs_tx_finish(v->tx) != 0)
		qs_tx_cancel(v->tx, QS_QUIC_ERR_INTERNAL);
}

static int send_want(struct recv *v)
{
	Quics__ChunkWant w = QUICS__CHUNK_WANT__INIT;
	ProtobufCBinaryData *hs = qs_calloc(v->m.count ? v->m.count : 1, sizeof(*hs));
	if (hs == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < v->m.count; i++) {
		if (v->want != NULL && v->want[i]) {
			hs[w.n_hashes].data = v->m.chunks[i].sha256;
			hs[w.n_hashes].len = QS_SHA256_LEN;
			w.n_hashes++;
		}
	}
	w.hashes = hs;
	int rc = qs_tx_send_pb(v->tx, &w.base);
	qs_free(hs);
	return rc;
}

/* ---- the local state and the index ---- */

static int open_parent_dir(struct recv *v, int *fd, const char **name);

/* Whether the local path is still what the index says (so it may be replaced): compared by
 * stat fingerprint, so unchanged files are never re-read. A path the index does not know is
 * replaceable only if absent, or if it already holds exactly the incoming content. */
static int local_matches_index(struct recv *v, bool *matches)
{
	int dfd;
	const char *name;
	struct stat st;
	bool present = false;
	int rc = open_parent_dir(v, &dfd, &name);
	if (rc == 0) {
		present = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
		if (!present && errno != ENOENT)
			rc = qs_err_from_errno(errno);
		close(dfd);
	} else if (rc == QS_ENOENT) {
		rc = 0;
	}
	if (rc != 0)
		return rc;
	if (v->have_entry && v->entry.content.kind == QS_KIND_DIR) {
		*matches = present && S_ISDIR(st.st_mode);
		return 0;
	}
	if (v->have_entry && v->entry.content.kind != QS_KIND_TOMBSTONE) {
		struct qs_fingerprint fp;
		if (present)
			qs_fingerprint_from_stat(&st, &fp);
		*matches = present && qs_fingerprint_equal(&fp, &v->entry.fp);
		return 0;
	}
	*matches = !present;
	if (present) {
		struct qs_localfile f;
		qs_localfile_init(&f);
		if (qs_localfile_hash(v->r->dir_fd, v->path, &f) == 0)
			*matches = qs_content_equal(&f.content, &v->content);
		qs_localfile_release(&f);
	}
	return 0;
}

static int record(struct recv *v, const struct qs_fingerprint *fp)
{
	struct qic_entry e;
	memset(&e, 0, sizeof(e));
	e.base_version = v->version;
	e.content = v->content;
	if (fp != NULL)
		e.fp = *fp;
	e.manifest = v->enc.data;
	e.manifest_len = v->enc.len;
	e.mode = v->mode;
	e.mtime_ns = v->mtime_ns;
	e.durable = v->kind != QS_KIND_FILE; /* files are synced to disk in batches */
	return qic_index_put(v->r, v->path, &e);
}

/* mkdir -p of path's parent directories beneath the root (never through symlinks). */
static int make_parents(struct recv *v)
{
	char *p = qs_strdup(v->path);
	if (p == NULL)
		return QS_ENOMEM;
	int rc = 0;
	for (char *s = strchr(p, '/'); s != NULL && rc == 0; s = strchr(s + 1, '/')) {
		*s = '\0';
		int fd;
		rc = qs_localfile_open(v->r->dir_fd, p, O_RDONLY | O_DIRECTORY, &fd);
		if (rc == 0) {
			close(fd);
		} else if (rc == QS_ENOENT) {
			const char *slash = strrchr(p, '/');
			int pfd;
			char *parent =
				slash != NULL ? qs_strndup(p, (size_t)(slash - p)) : qs_strdup(".");
			rc = parent == NULL ? QS_ENOMEM
					    : qs_localfile_open(v->r->dir_fd, parent,
								O_RDONLY | O_DIRECTORY, &pfd);
			qs_free(parent);
			if (rc == 0) {
				if (mkdirat(pfd, slash != NULL ? slash + 1 : p, 0755) != 0 &&
				    errno != EEXIST)
					rc = qs_err_from_errno(errno);
				close(pfd);
			}
		}
		*s = '/';
	}
	qs_free(p);
	return rc;
}

static int open_parent_dir(struct recv *v, int *fd, const char **name)
{
	const char *slash = strrchr(v->path, '/');
	*name = slash != NULL ? slash + 1 : v->path;
	if (slash == NULL)
		return qs_localfile_open(v->r->dir_fd, ".", O_RDONLY | O_DIRECTORY, fd);
	char *parent = qs_strndup(v->path, (size_t)(slash - v->path));
	if (parent == NULL)
		return QS_ENOMEM;
	int rc = qs_localfile_open(v->r->dir_fd, parent, O_RDONLY | O_DIRECTORY, fd);
	qs_free(parent);
	return rc;
}

/* ---- applying non-file kinds ---- */

static int apply_tombstone(struct recv *v)
{
	int dfd;
	const char *name;
	int rc = open_parent_dir(v, &dfd, &name);
	if (rc == QS_ENOENT)
		return record(v, NULL);
	if (rc != 0)
		return rc;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		int flags = S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0;
		if (unlinkat(dfd, name, flags) != 0) {
			if (errno == ENOTEMPTY || errno == EEXIST)
				qic_defer_rmdir(v->r, v->path); /* its entries' deletions follow */
			else if (errno != ENOENT)
				rc = qs_err_from_errno(errno);
		}
	}
	close(dfd);
	return rc == 0 ? record(v, NULL) : rc;
}

static int apply_dir(struct recv *v)
{
	int rc = make_parents(v);
	int dfd;
	const char *name;
	if (rc == 0)
		rc = open_parent_dir(v, &dfd, &name);
	if (rc != 0)
		return rc;
	if (mkdirat(dfd, name, (mode_t)(v->mode ? v->mode : 0755)) != 0 && errno != EEXIST)
		rc = qs_err_from_errno(errno);
	struct stat st;
	struct qs_fingerprint fp;
	if (rc == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		if (v->mode != 0)
			fchmodat(dfd, name, (mode_t)v->mode, 0);
		qs_fingerprint_from_stat(&st, &fp);
	} else if (rc == 0) {
		rc = QS_ECONFLICT; /* something else sits there */
	}
	close(dfd);
	return rc == 0 ? record(v, &fp) : rc;
}

static int apply_symlink(struct recv *v)
{
	int rc = make_parents(v);
	int dfd;
	const char *name;
	if (rc == 0)
		rc = open_parent_dir(v, &dfd, &name);
	if (rc != 0)
		return rc;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "%slink-%llu", QS_LOCALFILE_TMP_PREFIX,
		 (unsigned long long)v->version);
	char *target = qs_strndup((const char *)v->enc.data, v->enc.len);
	if (target == NULL) {
		close(dfd);
		return QS_ENOMEM;
	}
	unlinkat(dfd, tmp, 0);
	if (symlinkat(target, dfd, tmp) != 0 || renameat(dfd, tmp, dfd, name) != 0)
		rc = qs_err_from_errno(errno);
	qs_free(target);
	struct stat st;
	struct qs_fingerprint fp;
	if (rc == 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		qs_fingerprint_from_stat(&st, &fp);
	close(dfd);
	return rc == 0 ? record(v, &fp) : rc;
}

/* ---- files: plan, stream, install ---- */

static size_t slot_of(const uint8_t *h, size_t nslots)
{
	uint64_t x;
	memcpy(&x, h, sizeof(x));
	return (size_t)x & (nslots - 1);
}

/* Index of the old version's chunks by hash (the first occurrence of each). */
static int index_old(struct recv *v)
{
	if (!v->have_entry || v->entry.content.kind != QS_KIND_FILE || v->entry.manifest_len == 0)
		return 0;
	int rc = qs_manifest_decode(&v->old, v->entry.manifest, v->entry.manifest_len);
	if (rc != 0)
		return 0; /* an unreadable old manifest only means fetching everything */
	size_t n = 16;
	while (n < v->old.count * 2)
		n *= 2;
	v->olds = qs_calloc(n, sizeof(*v->olds));
	if (v->olds == NULL)
		return QS_ENOMEM;
	v->nold_slots = n;
	uint64_t off = 0;
	for (size_t i = 0; i < v->old.count; i++) {
		size_t s = slot_of(v->old.chunks[i].sha256, n);
		while (v->olds[s].hash != NULL &&
		       memcmp(v->olds[s].hash, v->old.chunks[i].sha256, QS_SHA256_LEN) != 0)
			s = (s + 1) & (n - 1);
		if (v->olds[s].hash == NULL) {
			v->olds[s].hash = v->old.chunks[i].sha256;
			v->olds[s].offset = off;
			v->olds[s].len = v->old.chunks[i].len_bytes;
		}
		off += v->old.chunks[i].len_bytes;
	}
	return 0;
}

static const struct old_chunk *find_old(struct recv *v, const uint8_t *h)
{
	if (v->olds == NULL)
		return NULL;
	for (size_t s = slot_of(h, v->nold_slots); v->olds[s].hash != NULL;
	     s = (s + 1) & (v->nold_slots - 1))
		if (memcmp(v->olds[s].hash, h, QS_SHA256_LEN) == 0)
			return &v->olds[s];
	return NULL;
}

static int install_file(struct recv *v)
{
	struct qs_fingerprint fp;
	const struct qs_fingerprint *expect =
		v->have_entry && v->entry.content.kind != QS_KIND_TOMBSTONE ? &v->entry.fp : NULL;
	v->writing = false;
	int rc = qs_localfile_install(&v->w, v->mode, v->mtime_ns, false, expect, &fp);
	if (rc == 0)
		rc = record(v, &fp);
	return rc;
}

/* Writes every chunk available locally, up to the next one the server must send; installs
 * the file when all are written. */
static int advance(struct recv *v)
{
	while (v->next < v->m.count && !v->want[v->next]) {
		const struct qs_manifest_chunk *c = &v->m.chunks[v->next];
		const struct old_chunk *o = find_old(v, c->sha256);
		int rc = o == NULL ? QS_EIO
				   : qs_localfile_read_chunk(v->r->dir_fd, v->path, o->offset,
							     o->len, c->sha256, v->buf);
		if (rc == 0)
			rc = qs_localfile_writer_append(&v->w, v->buf, c->len_bytes);
		if (rc != 0)
			return rc; /* QS_ECONFLICT: the old file changed under us */
		v->next++;
	}
	if (v->next < v->m.count)
		return 0;
	int rc = install_file(v);
	if (rc == 0)
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED, 0, NULL);
	return rc;
}

static int start_file(struct recv *v, const Quics__FileState *st)
{
	int rc = make_parents(v);
	if (rc == 0)
		rc = qs_localfile_writer_open(&v->w, v->r->dir_fd, v->path);
	if (rc != 0)
		return rc;
	v->writing = true;
	if (st->inline_data.len > 0 || v->m.count == 0) {
		if (st->inline_data.len > 0)
			rc = qs_localfile_writer_append(&v->w, st->inline_data.data,
							st->inline_data.len);
		if (rc == 0)
			rc = send_want(v);
		if (rc == 0)
			rc = install_file(v);
		if (rc == 0)
			send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED, 0, NULL);
		return rc;
	}
	rc = index_old(v);
	v->want = qs_calloc(v->m.count, sizeof(*v->want));
	v->buf = qs_malloc(QS_CHUNKER_MAX_BYTES);
	if (rc == 0 && (v->want == NULL || v->buf == NULL))
		rc = QS_ENOMEM;
	for (size_t i = 0; rc == 0 && i < v->m.count; i++)
		v->want[i] = find_old(v, v->m.chunks[i].sha256) == NULL;
	if (rc == 0)
		rc = send_want(v);
	if (rc == 0)
		rc = advance(v);
	return rc;
}

/* ---- the transaction ---- */

/* Whether the path changed under this transfer because another push of it was installed
 * meanwhile, not because the user changed it: the index moved on since the transfer started
 * and the local path is what the index now says. Then *now_version is the index's base. */
static bool overtaken(struct recv *v, uint64_t *now_version)
{
	struct qic_entry cur;
	if (qic_index_get(v->r, v->path, &cur) != 0)
		return false;
	bool moved = !v->have_entry || cur.base_version != v->entry.base_version;
	if (v->have_entry)
		qic_entry_release(&v->entry);
	v->entry = cur; /* v is ending: compare the local path with the index's view now */
	v->have_entry = true;
	bool matches = false;
	if (moved && local_matches_index(v, &matches) != 0)
		matches = false;
	*now_version = cur.base_version;
	return moved && matches;
}

static void fail(struct recv *v, int rc)
{
	uint64_t now_version;
	if (rc == QS_ECONFLICT && v->path != NULL && overtaken(v, &now_version)) {
		/* Streams can overtake each other: an older version's push (small, inline) was
		 * installed while this newer one waited for its chunks, so the newer one found
		 * the file changed. Not a local change: proposing would send nothing (the file is
		 * what the index says) and the path would stay at the older version (chaos seed
		 * 25). Ask the server again for what is current. */
		if (now_version >= v->version) {
			send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT, 0, NULL);
			return;
		}
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_UNSPECIFIED, QS_EAGAIN,
			    "another version of the path was installed meanwhile");
		qic_engine_full_scan(v->r);
		return;
	}
	if (rc == QS_ECONFLICT) {
		/* The user changed the path: keep it, propose it (the server decides). */
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_LOCAL_CHANGE, 0, NULL);
		qic_mark_dirty(v->r, v->path);
		return;
	}
	qs_warn("client", "event=apply_failed path=\"%s\" err=%s", v->path, qs_strerror(rc));
	send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_UNSPECIFIED, rc, qs_strerror(rc));
}

static int on_request(struct recv *v, const Quics__MustSyncRequest *req)
{
	if (req->state == NULL || qs_filestate_check(req->state) != 0 ||
	    qs_path_check(req->path, strlen(req->path)) != 0)
		return QS_EPROTO;
	v->r = qic_root_by_id(v->e, req->root_id);
	if (v->r == NULL)
		return QS_ENOENT;
	if (v->r->paused)
		return QS_EAGAIN; /* never write into a folder that may not be the root */
	v->path = qs_strdup(req->path);
	if (v->path == NULL)
		return QS_ENOMEM;
	v->version = req->version;
	const Quics__FileState *st = req->state;
	v->kind = (enum qs_kind)qs_filestate_kind(st->kind);
	v->mode = st->mode;
	v->mtime_ns = st->mtime_ns;
	int rc = qs_filestate_content(st, &v->content, &v->enc);
	if (rc == 0 && v->kind == QS_KIND_FILE)
		rc = qs_filestate_manifest(st, &v->m);
	if (rc != 0)
		return rc;
	v->have_entry = qic_index_get(v->r, v->path, &v->entry) == 0;
	if (v->have_entry && v->entry.base_version >= v->version) {
		send_want(v);
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_CURRENT, 0, NULL);
		return 0;
	}
	bool matches;
	rc = local_matches_index(v, &matches);
	if (rc != 0)
		return rc;
	if (!matches) {
		send_want(v);
		return QS_ECONFLICT;
	}
	switch (v->kind) {
	case QS_KIND_FILE: return start_file(v, st);
	case QS_KIND_DIR: rc = apply_dir(v); break;
	case QS_KIND_SYMLINK: rc = apply_symlink(v); break;
	default: rc = apply_tombstone(v); break;
	}
	if (rc == 0) {
		send_want(v);
		send_result(v, QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED, 0, NULL);
	}
	return rc;
}

static int recv_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct recv *v = arg;
	if (v->done)
		return 0;
	if (!v->got_request) {
		v->got_request = true;
		ProtobufCMessage *m;
		int rc = qs_wire_unpack(&quics__must_sync_request__descriptor, d, len, NULL, &m);
		if (rc == 0) {
			rc = on_request(v, (const Quics__MustSyncRequest *)m);
			qs_wire_free(m);
		}
		if (rc != 0 && v->path != NULL)
			fail(v, rc);
		return rc != 0 && v->path == NULL ? rc : 0;
	}
	const uint8_t *expect = v->next < v->m.count ? v->m.chunks[v->next].sha256 : NULL;
	int rc = expect == NULL ? QS_EPROTO : qs_chunk_rx_header(&v->rx, d, len, expect);
	if (rc != 0)
		fail(v, rc);
	return 0;
}

static int recv_on_data(struct qs_tx *tx, const uint8_t *d, size_t len, uint64_t off,
			uint64_t total, void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct recv *v = arg;
	if (v->done)
		return 0;
	bool complete;
	int rc = qs_chunk_rx_data(&v->rx, d, len, &complete);
	if (rc == 0 && complete) {
		rc = qs_localfile_writer_append(&v->w, v->rx.data.data, v->rx.data.len);
		if (rc == 0) {
			v->next++;
			rc = advance(v);
		}
	}
	if (rc != 0)
		fail(v, rc);
	return 0;
}

static void recv_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	recv_free(arg);
}

static const struct qs_tx_ops recv_ops = {
	.on_msg = recv_on_msg,
	.on_data = recv_on_data,
	.on_close = recv_on_close,
};

int qic_receive_accept(struct qic_engine *e, struct qs_tx *tx, bool force)
{
	(void)force; /* FORCE_SYNC arrives with the conflicts issue */
	struct recv *v = qs_calloc(1, sizeof(*v));
	if (v == NULL)
		return QS_ENOMEM;
	v->e = e;
	v->tx = tx;
	qs_buf_init(&v->enc, (size_t)40 << 20);
	qs_manifest_init(&v->m);
	qs_manifest_init(&v->old);
	qs_chunk_rx_init(&v->rx);
	qs_tx_set_ops(tx, &recv_ops, v);
	return 0;
}

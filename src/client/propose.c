/* PLEASE_SYNC on the client: a path changed locally. Its current state, hashed by the engine
 * (a large file on the thread pool, hashjob.c, and checked against the path's stat once
 * back), is compared with the index (unchanged content only refreshes the fingerprint), and
 * proposed with the index's base version. Chunks the server asks for are read back from the
 * file and sent while the transaction has room; a file that changes meanwhile aborts the
 * proposal and is looked at again. The index records the accepted version, or the conflict. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/engine.h"
#include "core/filestate.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"

struct prop {
	struct qic_root *r;
	struct qs_tx *tx;
	char *path;
	struct qs_localfile f;
	struct qs_buf enc;
	uint64_t *offsets; /* of each manifest chunk */
	uint8_t (*need)[QS_SHA256_LEN];
	size_t n_need, next_need;
	bool answered, sending;
	bool counted;                   /* added to r->up (struct qic_transfers) */
	uint64_t xfer_bytes, xfer_done; /* this proposal's share of r->up */
	void (*done)(struct qic_root *r, const char *path, int err, void *arg);
	void *done_arg;
};

/* This proposal's bytes to send become n (the whole file at first, the chunks the server
 * lacks once it has answered). */
static void xfer_set_bytes(struct prop *p, uint64_t n)
{
	p->r->up.bytes = p->r->up.bytes - p->xfer_bytes + n;
	p->xfer_bytes = n;
}

static void xfer_add_done(struct prop *p, uint64_t n)
{
	p->xfer_done += n;
	p->r->up.bytes_done += n;
}

static void prop_free(struct prop *p)
{
	if (p->counted) {
		p->r->up.files--;
		p->r->up.bytes -= p->xfer_bytes;
		p->r->up.bytes_done -= p->xfer_done;
	}
	qs_localfile_release(&p->f);
	qs_buf_release(&p->enc);
	qs_free(p->offsets);
	qs_free(p->need);
	qs_free(p->path);
	qs_free(p);
}

/* Stats path beneath the root without following a final symlink; false if it is absent. */
static bool stat_local(struct qic_root *r, const char *path, struct stat *st)
{
	const char *slash = strrchr(path, '/');
	char *parent = slash != NULL ? qs_strndup(path, (size_t)(slash - path)) : qs_strdup(".");
	int fd;
	bool present = false;
	if (parent != NULL &&
	    qs_localfile_open(r->dir_fd, parent, O_RDONLY | O_DIRECTORY, &fd) == 0) {
		present =
			fstatat(fd, slash != NULL ? slash + 1 : path, st, AT_SYMLINK_NOFOLLOW) == 0;
		close(fd);
	}
	qs_free(parent);
	return present;
}

static int record_accepted(struct prop *p, uint64_t version)
{
	struct qic_entry e;
	memset(&e, 0, sizeof(e));
	e.base_version = version;
	e.content = p->f.content;
	e.fp = p->f.fp;
	e.manifest = p->enc.data;
	e.manifest_len = p->enc.len;
	e.mode = p->f.mode;
	e.mtime_ns = p->f.mtime_ns;
	e.durable = true; /* the user's own file: not ours to sync */
	return qic_index_put(p->r, p->path, &e);
}

static int record_conflict(struct prop *p, uint64_t server_version)
{
	struct qic_entry e;
	int rc = qic_index_get(p->r, p->path, &e);
	if (rc == QS_ENOENT) {
		memset(&e, 0, sizeof(e));
		e.content.kind = QS_KIND_TOMBSTONE;
		rc = 0;
	}
	if (rc != 0)
		return rc;
	e.conflicted = true;
	e.conflict_version = server_version;
	e.candidate = p->f.content;
	e.fp = p->f.fp; /* the local file matches the candidate now */
	e.durable = true;
	rc = qic_index_put(p->r, p->path, &e);
	qic_entry_release(&e);
	return rc;
}

bool qic_propose_still_local(struct qic_root *r, const char *path, const struct qs_localfile *f)
{
	struct stat st;
	bool present = stat_local(r, path, &st);
	if (f->kind == QS_KIND_TOMBSTONE)
		return !present;
	if (!present)
		return false;
	if (f->kind == QS_KIND_DIR)
		return S_ISDIR(st.st_mode);
	struct qs_fingerprint now;
	qs_fingerprint_from_stat(&st, &now);
	return qs_fingerprint_equal(&now, &f->fp);
}

/* After the answer is recorded: if the local path is no longer what was proposed, it is
 * looked at again (the engine re-proposes it once this proposal ends). A watcher event
 * covers the user's edits, but not a path this client moved away itself: a MOVE pushed
 * while the proposal was in flight renames the directory holding it, and the answer then
 * records the old path as present (chaos seed 24: the file stayed indexed at the old name,
 * never proposed deleted, and the clients never converged). */
static void recheck_local(struct prop *p)
{
	if (!qic_propose_still_local(p->r, p->path, &p->f))
		qic_mark_dirty(p->r, p->path);
}

static void chunk_free(void *arg)
{
	qs_free(arg);
}

/* Sends the requested chunks while there is room, then ends our half. */
static void pump(struct prop *p)
{
	while (p->next_need < p->n_need && qs_tx_writable(p->tx)) {
		const uint8_t *h = p->need[p->next_need];
		size_t i = 0;
		while (i < p->f.manifest.count &&
		       memcmp(p->f.manifest.chunks[i].sha256, h, QS_SHA256_LEN) != 0)
			i++;
		if (i == p->f.manifest.count) {
			qs_tx_cancel(p->tx, QS_QUIC_ERR_PROTOCOL); /* not ours: a confused server */
			return;
		}
		size_t len = p->f.manifest.chunks[i].len_bytes;
		uint8_t *buf = qs_malloc(len);
		int rc = buf == NULL ? QS_ENOMEM
				     : qs_localfile_read_upload(p->r->dir_fd, p->path,
								p->offsets[i], len, &p->f.fp, buf);
		if (rc == 0)
			rc = qs_chunk_send(p->tx, h, buf, len, chunk_free, buf);
		if (rc == 0)
			xfer_add_done(p, len);
		if (rc != 0) {
			qs_free(buf);
			qs_tx_cancel(p->tx, QS_QUIC_ERR_CANCELED);
			if (rc == QS_ECONFLICT)
				qic_mark_dirty(p->r, p->path); /* changed while uploading */
			return;
		}
		p->next_need++;
	}
	if (p->next_need == p->n_need && p->sending) {
		p->sending = false;
		qs_tx_finish(p->tx);
	}
}

/* Bytes of the chunks the server asked for (a hash not in the manifest counts 0: pump
 * refuses it). */
static uint64_t need_bytes(const struct prop *p)
{
	uint64_t n = 0;
	for (size_t k = 0; k < p->n_need; k++)
		for (size_t i = 0; i < p->f.manifest.count; i++)
			if (memcmp(p->f.manifest.chunks[i].sha256, p->need[k], QS_SHA256_LEN) ==
			    0) {
				n += p->f.manifest.chunks[i].len_bytes;
				break;
			}
	return n;
}

static int on_answer(struct prop *p, const Quics__PleaseSyncResponse *resp)
{
	int rc;
	switch (resp->result_case) {
	case QUICS__PLEASE_SYNC_RESPONSE__RESULT_NEED_CHUNKS:
		if (p->sending || p->answered)
			return QS_EPROTO;
		p->need = qs_calloc(resp->need_chunks->n_hashes + 1, sizeof(*p->need));
		if (p->need == NULL)
			return QS_ENOMEM;
		for (size_t i = 0; i < resp->need_chunks->n_hashes; i++)
			memcpy(p->need[i], resp->need_chunks->hashes[i].data, QS_SHA256_LEN);
		p->n_need = resp->need_chunks->n_hashes;
		xfer_set_bytes(p, need_bytes(p));
		p->sending = true;
		pump(p);
		return 0;
	case QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED:
		p->answered = true;
		xfer_add_done(p, p->xfer_bytes - p->xfer_done); /* inline data arrived with it */
		rc = record_accepted(p, resp->accepted->version);
		if (rc == 0)
			recheck_local(p);
		return rc;
	case QUICS__PLEASE_SYNC_RESPONSE__RESULT_CONFLICT:
		p->answered = true;
		qs_warn("client", "event=conflict root=%llu path=\"%s\" server_version=%llu",
			(unsigned long long)p->r->root_id, p->path,
			(unsigned long long)resp->conflict->server_version);
		rc = record_conflict(p, resp->conflict->server_version);
		if (rc == 0)
			recheck_local(p);
		return rc;
	default:
		p->answered = true;
		qs_warn("client", "event=proposal_refused path=\"%s\" code=%d msg=\"%s\"", p->path,
			resp->error != NULL ? (int)resp->error->code : -1,
			resp->error != NULL ? resp->error->message : "");
		return 0;
	}
}

static int prop_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct prop *p = arg;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(&quics__please_sync_response__descriptor, d, len, NULL, &m);
	if (rc != 0)
		return rc;
	rc = on_answer(p, (const Quics__PleaseSyncResponse *)m);
	qs_wire_free(m);
	if (rc == 0 && p->answered && !p->sending)
		qs_tx_finish(tx);
	return rc;
}

static void prop_on_writable(struct qs_tx *tx, void *arg)
{
	(void)tx;
	pump(arg);
}

static void prop_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct prop *p = arg;
	int result = err != 0 ? err : p->answered ? 0 : QS_EPROTO;
	if (p->done != NULL)
		p->done(p->r, p->path, result, p->done_arg);
	prop_free(p);
}

static const struct qs_tx_ops prop_ops = {
	.on_msg = prop_on_msg,
	.on_writable = prop_on_writable,
	.on_close = prop_on_close,
};

/* Reads a small file whole for inline sending. */
static int read_inline(struct prop *p, uint8_t **out)
{
	size_t len = (size_t)p->f.manifest.size_bytes;
	uint8_t *b = qs_malloc(len);
	if (b == NULL)
		return QS_ENOMEM;
	int rc = qs_localfile_read_chunk(p->r->dir_fd, p->path, 0, len,
					 p->f.manifest.chunks[0].sha256, b);
	if (rc != 0) {
		qs_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

bool qic_propose_unchanged(struct qic_root *r, const char *path)
{
	struct qic_entry e;
	if (qic_index_get(r, path, &e) != 0)
		return false;
	bool same = false;
	enum qs_kind k = e.conflicted ? e.candidate.kind : e.content.kind;
	struct stat st;
	if ((k == QS_KIND_FILE || k == QS_KIND_SYMLINK) && stat_local(r, path, &st)) {
		struct qs_fingerprint now;
		qs_fingerprint_from_stat(&st, &now);
		same = qs_fingerprint_equal(&now, &e.fp);
	}
	qic_entry_release(&e);
	return same;
}

bool qic_propose_conflicted(struct qic_root *r, const char *path)
{
	struct qic_entry e;
	if (qic_index_get(r, path, &e) != 0)
		return false;
	bool conflicted = e.conflicted;
	qic_entry_release(&e);
	return conflicted;
}

int qic_propose(struct qic_root *r, const char *path, struct qs_localfile *f, struct qs_conn *conn,
		void (*done)(struct qic_root *r, const char *path, int err, void *arg), void *arg,
		bool *started)
{
	*started = false;
	struct prop *p = qs_calloc(1, sizeof(*p));
	if (p == NULL)
		return QS_ENOMEM;
	p->r = r;
	p->done = done;
	p->done_arg = arg;
	p->f = *f;
	qs_localfile_init(f);
	qs_buf_init(&p->enc, (size_t)40 << 20);
	p->path = qs_strdup(path);
	int rc = p->path == NULL ? QS_ENOMEM : 0;
	struct qic_entry e;
	bool have = false;
	if (rc == 0) {
		rc = qic_index_get(r, path, &e);
		have = rc == 0;
		rc = rc == QS_ENOENT ? 0 : rc;
	}
	bool propose = false;
	if (rc == 0) {
		/* What this client last said of the path: its candidate while in conflict. */
		const struct qs_content *said = have && e.conflicted ? &e.candidate : &e.content;
		if (p->f.kind == QS_KIND_TOMBSTONE)
			propose = have && said->kind != QS_KIND_TOMBSTONE;
		else if (have && qs_content_equal(said, &p->f.content)) {
			/* Unchanged (or still the conflict candidate the server already holds). */
			if (!qs_fingerprint_equal(&e.fp, &p->f.fp)) {
				e.fp = p->f.fp; /* touched, not changed: remember the new stat */
				rc = qic_index_put(r, path, &e);
			}
		} else {
			propose = true;
		}
	}
	uint64_t base = have ? e.base_version : 0;
	bool conflicted = have && e.conflicted;
	if (have)
		qic_entry_release(&e);
	/* We refused a newer version for what is no change after all (chaos seed 505); in a
	 * conflict the path holds our candidate, which the server has: nothing to ask for. */
	if (rc == 0 && qic_push_refused_take(r, path) && !propose && !conflicted)
		qic_root_full_scan(r);
	if (rc != 0 || !propose) {
		prop_free(p);
		return rc;
	}
	/* The manifest encoding (for the index) and each chunk's offset. */
	if (p->f.kind == QS_KIND_FILE) {
		rc = qs_manifest_encode(&p->f.manifest, &p->enc);
		p->offsets = qs_calloc(p->f.manifest.count + 1, sizeof(*p->offsets));
		if (rc == 0 && p->offsets == NULL)
			rc = QS_ENOMEM;
		for (size_t i = 1; rc == 0 && i <= p->f.manifest.count; i++)
			p->offsets[i] = p->offsets[i - 1] + p->f.manifest.chunks[i - 1].len_bytes;
	} else if (p->f.kind == QS_KIND_SYMLINK) {
		rc = qs_buf_append(&p->enc, p->f.target, strlen(p->f.target));
	}
	uint8_t *inl = NULL;
	if (rc == 0 && p->f.kind == QS_KIND_FILE && p->f.manifest.count == 1 &&
	    p->f.manifest.size_bytes <= QS_WIRE_INLINE_MAX)
		rc = read_inline(p, &inl);
	struct qs_filestate_out fs;
	if (rc == 0)
		rc = qs_filestate_out_init(&fs, p->f.kind, p->f.mode, p->f.mtime_ns, &p->f.manifest,
					   inl, inl != NULL ? (size_t)p->f.manifest.size_bytes : 0,
					   p->f.target);
	if (rc != 0) {
		qs_free(inl);
		prop_free(p);
		return rc == QS_ECONFLICT ? QS_EAGAIN : rc;
	}
	Quics__PleaseSyncRequest req = QUICS__PLEASE_SYNC_REQUEST__INIT;
	req.root_id = r->root_id;
	req.path = p->path;
	req.base_version = base;
	req.state = &fs.st;
	rc = qs_conn_open_tx(conn, "PLEASE_SYNC", &prop_ops, p, &p->tx);
	if (rc == 0) {
		*started = true;
		p->counted = true;
		r->up.files++;
		if (p->f.kind == QS_KIND_FILE)
			xfer_set_bytes(p, p->f.manifest.size_bytes);
		if (qs_tx_send_pb(p->tx, &req.base) != 0)
			qs_tx_cancel(p->tx, QS_QUIC_ERR_INTERNAL);
	}
	qs_filestate_out_release(&fs);
	qs_free(inl);
	if (rc != 0)
		prop_free(p);
	return rc;
}

/* Serving a stored state (fetch.h): the FileState message, the client's ChunkWant, the
 * chunks in the wanted order as the transaction has room, the end of our direction, and in
 * the push flows the client's SyncResult. Owns a copy of the state's manifest; a want that
 * names a chunk outside it is a protocol error (a client reads only what it was offered). */
#include "server/fetch.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "core/filestate.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"

struct fetch {
	struct qis_daemon *d;
	struct qs_tx *tx;
	char *path;
	char *target; /* a symlink's target: the sent FileState borrows it */
	struct qs_manifest manifest;
	uint8_t (*want)[QS_SHA256_LEN];
	size_t n_want, next_want;
	bool expect_result, got_want, finished;
	uint64_t root_id;      /* push flows: the root, so lost chunks can be asked for; else 0 */
	struct qis_session *s; /* push flows: the client (valid while the transaction is) */
	uint64_t version;      /* push flows: the version pushed */
};

static void fetch_free(struct fetch *p)
{
	qs_free(p->path);
	qs_free(p->target);
	qs_free(p->want);
	qs_manifest_release(&p->manifest);
	qs_free(p);
}

static bool in_manifest(const struct qs_manifest *m, const uint8_t *h)
{
	for (size_t i = 0; i < m->count; i++)
		if (memcmp(m->chunks[i].sha256, h, QS_SHA256_LEN) == 0)
			return true;
	return false;
}

static void chunk_release(void *arg)
{
	qs_free(arg);
}

/* Sends wanted chunks while the transaction has room, then ends our half. */
static void fetch_pump(struct fetch *p)
{
	while (p->next_want < p->n_want && qs_tx_writable(p->tx)) {
		const uint8_t *h = p->want[p->next_want++];
		uint8_t *data;
		size_t len;
		if (qs_chunks_get(p->d->chunks, h, &data, &len) != 0) {
			/* Pruned and collected meanwhile, or damaged: the client gets an error
			 * header, and the transaction ends. A push is of a current version: its
			 * chunks are asked back from the members (NEED_CONTENT), which pushes the
			 * path again once they are in. */
			qs_chunk_send_missing(p->tx, h);
			if (p->root_id != 0)
				qis_need_content(p->d, p->root_id, p->path,
						 (const uint8_t(*)[QS_SHA256_LEN])(
							 p->want + p->next_want - 1),
						 p->n_want - p->next_want + 1);
			p->next_want = p->n_want;
			break;
		}
		if (qs_chunk_send(p->tx, h, data, len, chunk_release, data) != 0) {
			qs_free(data);
			qs_tx_cancel(p->tx, QS_QUIC_ERR_INTERNAL);
			return;
		}
	}
	if (p->next_want == p->n_want && !p->finished) {
		p->finished = true;
		qs_tx_finish(p->tx);
	}
}

static int take_want(struct fetch *p, const Quics__ChunkWant *w)
{
	if (w->error != NULL || w->n_hashes == 0)
		return 0;
	p->want = qs_calloc(w->n_hashes, sizeof(*p->want));
	if (p->want == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < w->n_hashes; i++) {
		if (!in_manifest(&p->manifest, w->hashes[i].data))
			return QS_EPROTO; /* only chunks of this state are served here */
		memcpy(p->want[p->n_want++], w->hashes[i].data, QS_SHA256_LEN);
	}
	return 0;
}

/* The client applied the pushed version, but a newer one was accepted while it was on its
 * way: the newer one is pushed to it as well. Each push of a path announces its own version,
 * and a client that took a move (or a subtree delete) before an older push of a path below
 * it arrived holds that older version at a name it will hear of no more (chaos seed 11026:
 * a file of a moved directory came back at its old name). */
static void push_overtaken(struct fetch *p)
{
	struct qs_meta_version_info v;
	if (p->s == NULL || qs_meta_entry_info(p->d->meta, p->root_id, p->path, &v) != 0 ||
	    v.version <= p->version)
		return;
	qs_debug("server", "event=push_overtaken client=%llu path=\"%s\" version=%llu now=%llu",
		 (unsigned long long)p->s->client_id, p->path, (unsigned long long)p->version,
		 (unsigned long long)v.version);
	int rc = qis_push_to(p->s, p->root_id, p->path);
	if (rc != 0)
		qs_warn("server", "event=push_failed client=%llu path=\"%s\" err=%s",
			(unsigned long long)p->s->client_id, p->path, qs_strerror(rc));
}

static int fetch_on_msg(struct qs_tx *tx, const uint8_t *data, size_t len, void *arg)
{
	(void)tx;
	struct fetch *p = arg;
	ProtobufCMessage *m;
	if (p->got_want) {
		if (!p->expect_result)
			return QS_EPROTO;
		/* The client's SyncResult: it is done with this version. */
		if (qs_wire_unpack(&quics__sync_result__descriptor, data, len, NULL, &m) == 0) {
			const Quics__SyncResult *r = (const void *)m;
			if (r->error != NULL)
				qs_warn("server",
					"event=push_failed path=\"%s\" code=%d msg=\"%s\"", p->path,
					(int)r->error->code, r->error->message);
			else if (r->outcome == QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED)
				push_overtaken(p);
			qs_wire_free(m);
		}
		return 0;
	}
	p->got_want = true;
	int rc = qs_wire_unpack(&quics__chunk_want__descriptor, data, len, NULL, &m);
	if (rc != 0)
		return rc;
	rc = take_want(p, (const Quics__ChunkWant *)m);
	qs_wire_free(m);
	if (rc == 0)
		fetch_pump(p);
	return rc;
}

static void fetch_on_writable(struct qs_tx *tx, void *arg)
{
	(void)tx;
	struct fetch *p = arg;
	if (p->got_want)
		fetch_pump(p);
}

static void fetch_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct fetch *p = arg;
	if (err != 0 && err != QS_ECONN)
		qs_debug("server", "event=fetch_closed path=\"%s\" err=%s", p->path,
			 qs_strerror(err));
	fetch_free(p);
}

static const struct qs_tx_ops fetch_ops = {
	.on_msg = fetch_on_msg,
	.on_writable = fetch_on_writable,
	.on_close = fetch_on_close,
};

/* A fetch of f with its FileState built into *fs (small files inline). */
static int fetch_new(struct qis_daemon *d, const char *path, const struct qs_meta_file *f,
		     struct fetch **out, struct qs_filestate_out *fs)
{
	struct fetch *p = qs_calloc(1, sizeof(*p));
	if (p == NULL)
		return QS_ENOMEM;
	p->d = d;
	qs_manifest_init(&p->manifest);
	p->path = qs_strdup(path);
	int rc = p->path == NULL ? QS_ENOMEM : 0;
	enum qs_kind kind = f->content.kind;
	if (rc == 0 && kind == QS_KIND_FILE && f->manifest_len > 0 &&
	    qs_manifest_decode(&p->manifest, f->manifest, f->manifest_len) != 0)
		rc = QS_EIO;
	if (rc == 0 && kind == QS_KIND_SYMLINK) {
		p->target = qs_strndup((const char *)f->manifest, f->manifest_len);
		rc = p->target == NULL ? QS_ENOMEM : 0;
	}
	uint8_t *inl = NULL;
	size_t inl_len = 0;
	if (rc == 0 && kind == QS_KIND_FILE && p->manifest.count == 1 &&
	    p->manifest.size_bytes <= QS_WIRE_INLINE_MAX &&
	    qs_chunks_get(d->chunks, p->manifest.chunks[0].sha256, &inl, &inl_len) != 0)
		inl = NULL;
	if (rc == 0)
		rc = qs_filestate_out_init(fs, kind, f->mode, f->mtime_ns, &p->manifest, inl,
					   inl_len, p->target);
	if (rc != 0) {
		qs_free(inl);
		fetch_free(p);
		return rc;
	}
	/* The inline bytes must outlive fs: keep them in the state until it is sent. */
	fs->st.inline_data.data = inl;
	*out = p;
	return 0;
}

static void fetch_state_release(struct qs_filestate_out *fs)
{
	qs_free(fs->st.inline_data.data);
	fs->st.inline_data.data = NULL;
	qs_filestate_out_release(fs);
}

int qis_fetch_serve(struct qis_daemon *d, struct qs_tx *tx, const char *path,
		    const struct qs_meta_file *f, bool expect_result, qis_fetch_first_fn first,
		    void *arg)
{
	struct fetch *p;
	struct qs_filestate_out fs;
	int rc = fetch_new(d, path, f, &p, &fs);
	if (rc != 0)
		return rc;
	p->tx = tx;
	p->expect_result = expect_result;
	rc = first(tx, &fs.st, arg);
	fetch_state_release(&fs);
	if (rc != 0) {
		fetch_free(p);
		return rc;
	}
	qs_tx_set_ops(tx, &fetch_ops, p);
	return 0;
}

int qis_fetch_open(struct qis_session *s, const char *tx_name, uint64_t root_id, const char *path,
		   uint64_t version, const struct qs_meta_file *f, qis_fetch_first_fn first,
		   void *arg)
{
	struct fetch *p;
	struct qs_filestate_out fs;
	int rc = fetch_new(s->d, path, f, &p, &fs);
	if (rc != 0)
		return rc;
	p->expect_result = true;
	p->root_id = root_id;
	p->s = s;
	p->version = version;
	rc = qs_conn_open_tx(s->conn, tx_name, &fetch_ops, p, &p->tx);
	if (rc != 0) {
		fetch_state_release(&fs);
		fetch_free(p);
		return rc;
	}
	/* From here the transaction owns p: an error cancels it and on_close frees p. */
	rc = first(p->tx, &fs.st, arg);
	fetch_state_release(&fs);
	if (rc != 0)
		qs_tx_cancel(p->tx, QS_QUIC_ERR_INTERNAL);
	return 0;
}

/* ---- downloads ---- */

struct download {
	struct qis_session *s;
	const ProtobufCMessageDescriptor *desc;
	qis_download_lookup_fn lookup;
	qis_fetch_first_fn first;
	bool got_request;
};

static int download_serve(struct download *dl, struct qs_tx *tx, const ProtobufCMessage *req)
{
	struct qs_meta_file f;
	uint8_t *manifest = NULL;
	memset(&f, 0, sizeof(f));
	int rc = dl->lookup(dl->s, req, &f, &manifest);
	if (rc == 0)
		rc = qis_fetch_serve(dl->s->d, tx, "", &f, false, dl->first, NULL);
	qs_free(manifest);
	return rc;
}

static int download_on_msg(struct qs_tx *tx, const uint8_t *data, size_t len, void *arg)
{
	struct download *dl = arg;
	if (dl->got_request)
		return QS_EPROTO; /* answered with an error already: nothing else may come */
	dl->got_request = true;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(dl->desc, data, len, NULL, &m);
	if (rc == 0) {
		rc = download_serve(dl, tx, m);
		qs_wire_free(m);
		if (rc == 0) {
			qs_free(dl); /* the fetch owns the transaction now */
			return 0;
		}
	}
	if (qs_tx_send_error(tx, qs_wire_error_code(rc), qs_strerror(rc)) != 0)
		qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL);
	return 0;
}

static void download_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	qs_free(arg);
}

static const struct qs_tx_ops download_ops = {
	.on_msg = download_on_msg,
	.on_close = download_on_close,
};

int qis_download_accept(struct qis_session *s, struct qs_tx *tx,
			const ProtobufCMessageDescriptor *req_desc, qis_download_lookup_fn lookup,
			qis_fetch_first_fn first)
{
	struct download *dl = qs_calloc(1, sizeof(*dl));
	if (dl == NULL)
		return QS_ENOMEM;
	dl->s = s;
	dl->desc = req_desc;
	dl->lookup = lookup;
	dl->first = first;
	qs_tx_set_ops(tx, &download_ops, dl);
	return 0;
}

/* ---- FORCE_SYNC ---- */

struct force_first {
	uint64_t root_id, version, by_client;
	const char *path;
	Quics__ForceReason reason;
};

static int force_first(struct qs_tx *tx, const Quics__FileState *st, void *arg)
{
	const struct force_first *ff = arg;
	Quics__ForceSyncRequest req = QUICS__FORCE_SYNC_REQUEST__INIT;
	req.root_id = ff->root_id;
	req.path = (char *)ff->path;
	req.version = ff->version;
	req.state = (Quics__FileState *)st;
	req.reason = ff->reason;
	req.modified_by = ff->by_client;
	return qs_tx_send_pb(tx, &req.base);
}

void qis_force_version(struct qis_daemon *d, uint64_t by_client, uint64_t root_id, const char *path,
		       Quics__ForceReason reason)
{
	struct qs_version_entry e;
	struct qs_meta_file f;
	uint8_t *enc = NULL;
	int rc = qs_meta_entry(d->meta, root_id, path, &e, &f, &enc);
	if (rc != 0 || e.version == 0) {
		qs_warn("server", "event=force_failed root=%llu path=\"%s\" err=%s",
			(unsigned long long)root_id, path, qs_strerror(rc ? rc : QS_ENOENT));
		qs_free(enc);
		return;
	}
	struct force_first ff = {root_id, e.version, by_client, path, reason};
	for (struct qis_session *s = d->sessions; s != NULL; s = s->next) {
		if (s->client_id == 0 || !qs_meta_is_member(d->meta, s->client_id, root_id))
			continue;
		rc = qis_fetch_open(s, "FORCE_SYNC", root_id, path, e.version, &f, force_first,
				    &ff);
		if (rc != 0)
			qs_warn("server", "event=force_failed client=%llu path=\"%s\" err=%s",
				(unsigned long long)s->client_id, path, qs_strerror(rc));
	}
	qs_free(enc);
}

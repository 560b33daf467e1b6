/* NEED_CONTENT on the client (DESIGN.md section 4; docs/wire.md): the server asks for chunks
 * it lacks (it lost them, or an upload it acknowledged never brought them). The client looks
 * for each one in its local copy of the named path, as its index last agreed it, reads it
 * back (verified against its hash: a file the user changed since does not provide stale
 * bytes) and sends it; a chunk it cannot provide is answered "missing". One chunk is read
 * and queued at a time, as the stream drains. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "client/engine.h"
#include "core/chunker.h"
#include "core/manifest.h"
#include "net/chunkrun.h"

struct need {
	struct qic_engine *e;
	struct qs_tx *tx;
	struct qic_root *r;
	char *path;
	struct qs_manifest m; /* the path's agreed manifest (empty if none) */
	uint8_t (*hashes)[QS_SHA256_LEN];
	size_t n, next;
	bool got_request, finished;
};

static void need_free(struct need *n)
{
	qs_free(n->path);
	qs_free(n->hashes);
	qs_manifest_release(&n->m);
	qs_free(n);
}

static void chunk_release(void *arg)
{
	qs_free(arg);
}

/* Reads the chunk h from the local file if the agreed manifest holds it; NULL if not. */
static uint8_t *read_local(struct need *n, const uint8_t *h, size_t *len)
{
	uint64_t off = 0;
	for (size_t i = 0; i < n->m.count; i++) {
		const struct qs_manifest_chunk *c = &n->m.chunks[i];
		if (memcmp(c->sha256, h, QS_SHA256_LEN) == 0) {
			uint8_t *buf = qs_malloc(c->len_bytes);
			if (buf != NULL && qs_localfile_read_chunk(n->r->dir_fd, n->path, off,
								   c->len_bytes, h, buf) == 0) {
				*len = c->len_bytes;
				return buf;
			}
			qs_free(buf);
			return NULL;
		}
		off += c->len_bytes;
	}
	return NULL;
}

static void pump(struct need *n)
{
	while (n->next < n->n && qs_tx_writable(n->tx)) {
		const uint8_t *h = n->hashes[n->next++];
		size_t len = 0;
		uint8_t *data = n->r != NULL && !n->r->paused ? read_local(n, h, &len) : NULL;
		int rc = data != NULL ? qs_chunk_send(n->tx, h, data, len, chunk_release, data)
				      : qs_chunk_send_missing(n->tx, h);
		if (rc != 0) {
			qs_free(data);
			qs_tx_cancel(n->tx, QS_QUIC_ERR_INTERNAL);
			return;
		}
	}
	if (n->next == n->n && !n->finished) {
		n->finished = true;
		qs_tx_finish(n->tx);
	}
}

static int on_request(struct need *n, const Quics__NeedContentRequest *req)
{
	n->r = qic_root_by_id(n->e, req->root_id);
	n->hashes = qs_calloc(req->n_hashes ? req->n_hashes : 1, sizeof(*n->hashes));
	if (n->hashes == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < req->n_hashes; i++) {
		if (req->hashes[i].len != QS_SHA256_LEN)
			return QS_EPROTO;
		memcpy(n->hashes[n->n++], req->hashes[i].data, QS_SHA256_LEN);
	}
	if (n->r == NULL || req->path[0] == '\0' ||
	    qs_path_check(req->path, strlen(req->path)) != 0)
		return 0; /* nothing to look in: every chunk is answered missing */
	n->path = qs_strdup(req->path);
	if (n->path == NULL)
		return QS_ENOMEM;
	struct qic_entry e;
	if (qic_index_get(n->r, n->path, &e) == 0) {
		if (e.content.kind == QS_KIND_FILE && e.manifest_len > 0 &&
		    qs_manifest_decode(&n->m, e.manifest, e.manifest_len) != 0)
			qs_manifest_release(&n->m);
		qic_entry_release(&e);
	}
	qs_info("client", "event=need_content root=%llu path=\"%s\" chunks=%zu",
		(unsigned long long)req->root_id, n->path, n->n);
	return 0;
}

static int need_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct need *n = arg;
	if (n->got_request)
		return QS_EPROTO; /* one request per transaction */
	n->got_request = true;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(&quics__need_content_request__descriptor, d, len, NULL, &m);
	if (rc != 0)
		return rc;
	rc = on_request(n, (const Quics__NeedContentRequest *)m);
	qs_wire_free(m);
	if (rc != 0)
		return rc;
	pump(n);
	return 0;
}

static void need_on_writable(struct qs_tx *tx, void *arg)
{
	(void)tx;
	struct need *n = arg;
	if (n->got_request)
		pump(n);
}

static void need_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	need_free(arg);
}

static const struct qs_tx_ops need_ops = {
	.on_msg = need_on_msg,
	.on_writable = need_on_writable,
	.on_close = need_on_close,
};

int qic_need_accept(struct qic_engine *e, struct qs_tx *tx)
{
	struct need *n = qs_calloc(1, sizeof(*n));
	if (n == NULL)
		return QS_ENOMEM;
	n->e = e;
	n->tx = tx;
	qs_manifest_init(&n->m);
	qs_tx_set_ops(tx, &need_ops, n);
	return 0;
}

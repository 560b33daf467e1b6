/* NEED_CONTENT on the server (DESIGN.md section 4): when the chunk store cannot give a chunk
 * a version needs (lost or damaged on disk), the server asks the connected members of the
 * root for it, naming a path that uses it. Each chunk that comes back is verified against its
 * hash before it is stored (net/chunkrun.c, qs_chunks_put); then the path's current version
 * is pushed again, so the clients that could not get it retry. At most one repair per
 * (root, path) runs at a time. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"
#include "server/daemon.h"

#define NEED_MAX_CHUNKS 1024 /* per request; a bigger loss is repaired request by request */

struct need {
	struct qis_daemon *d;
	struct qs_tx *tx;
	uint64_t root_id;
	char *path;
	uint8_t (*hashes)[QS_SHA256_LEN];
	size_t n, next, stored;
	struct qs_chunk_rx rx;
	struct need *next_active; /* the daemon's in-flight repairs */
};

static struct need *active; /* one daemon per process (qis) */

static void need_free(struct need *n)
{
	for (struct need **p = &active; *p != NULL; p = &(*p)->next_active) {
		if (*p == n) {
			*p = n->next_active;
			break;
		}
	}
	qs_free(n->path);
	qs_free(n->hashes);
	qs_chunk_rx_release(&n->rx);
	qs_free(n);
}

static int need_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct need *n = arg;
	if (n->next >= n->n)
		return QS_EPROTO;
	int rc = qs_chunk_rx_header(&n->rx, d, len, n->hashes[n->next]);
	if (rc == QS_ENOENT) { /* the client does not have it either */
		n->next++;
		return 0;
	}
	return rc;
}

static int need_on_data(struct qs_tx *tx, const uint8_t *d, size_t len, uint64_t off,
			uint64_t total, void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct need *n = arg;
	bool complete;
	int rc = qs_chunk_rx_data(&n->rx, d, len, &complete);
	if (rc == 0 && complete) {
		rc = qs_chunks_put(n->d->chunks, n->rx.hash, n->rx.data.data, n->rx.data.len);
		if (rc == 0) {
			n->stored++;
			n->next++;
		}
	}
	return rc;
}

static int need_on_end(struct qs_tx *tx, void *arg)
{
	(void)tx;
	struct need *n = arg;
	qs_info("server", "event=need_content_done root=%llu path=\"%s\" asked=%zu stored=%zu",
		(unsigned long long)n->root_id, n->path, n->n, n->stored);
	if (n->stored > 0)
		qis_push_version(n->d, 0, n->root_id, n->path);
	return 0;
}

static void need_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	need_free(arg);
}

static const struct qs_tx_ops need_ops = {
	.on_msg = need_on_msg,
	.on_data = need_on_data,
	.on_end = need_on_end,
	.on_close = need_on_close,
};

/* Asks session s for the chunks. Errors: QS_ENOMEM, the transport's. */
static int ask(struct qis_session *s, uint64_t root_id, const char *path,
	       const uint8_t (*hashes)[QS_SHA256_LEN], size_t count)
{
	struct need *n = qs_calloc(1, sizeof(*n));
	if (n == NULL)
		return QS_ENOMEM;
	n->d = s->d;
	n->root_id = root_id;
	n->path = qs_strdup(path);
	n->hashes = qs_calloc(count, sizeof(*n->hashes));
	ProtobufCBinaryData *hs = qs_calloc(count, sizeof(*hs));
	qs_chunk_rx_init(&n->rx);
	int rc = n->path != NULL && n->hashes != NULL && hs != NULL ? 0 : QS_ENOMEM;
	if (rc == 0) {
		memcpy(n->hashes, hashes, count * sizeof(*n->hashes));
		n->n = count;
		for (size_t i = 0; i < count; i++) {
			hs[i].data = n->hashes[i];
			hs[i].len = QS_SHA256_LEN;
		}
		rc = qs_conn_open_tx(s->conn, "NEED_CONTENT", &need_ops, n, &n->tx);
	}
	if (rc != 0) {
		qs_free(hs);
		need_free(n);
		return rc;
	}
	n->next_active = active;
	active = n;
	Quics__NeedContentRequest req = QUICS__NEED_CONTENT_REQUEST__INIT;
	req.root_id = root_id;
	req.path = n->path;
	req.n_hashes = count;
	req.hashes = hs;
	if (qs_tx_send_pb(n->tx, &req.base) != 0 || qs_tx_finish(n->tx) != 0)
		qs_tx_cancel(n->tx, QS_QUIC_ERR_INTERNAL);
	qs_free(hs);
	return 0;
}

void qis_need_content(struct qis_daemon *d, uint64_t root_id, const char *path,
		      const uint8_t (*hashes)[QS_SHA256_LEN], size_t count)
{
	if (count == 0)
		return;
	for (const struct need *n = active; n != NULL; n = n->next_active)
		if (n->d == d && n->root_id == root_id && strcmp(n->path, path) == 0)
			return; /* a repair of this path is under way */
	if (count > NEED_MAX_CHUNKS)
		count = NEED_MAX_CHUNKS;
	qs_warn("server", "event=chunks_missing root=%llu path=\"%s\" count=%zu (asking clients)",
		(unsigned long long)root_id, path, count);
	for (struct qis_session *s = d->sessions; s != NULL; s = s->next) {
		if (s->client_id == 0 || !qs_meta_is_member(d->meta, s->client_id, root_id))
			continue;
		int rc = ask(s, root_id, path, hashes, count);
		if (rc != 0)
			qs_warn("server", "event=need_content_failed client=%llu err=%s",
				(unsigned long long)s->client_id, qs_strerror(rc));
	}
}

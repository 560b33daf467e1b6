/* Downloads of stored content into a local file (fetch.h), and request/reply calls with a
 * caller argument. A download owns its transaction's state: the manifest, which chunks come
 * from the server, a sorted table of the local copy's chunks (reused only when the local
 * file still has the fingerprint the index recorded, and re-hashed when read), and the temp
 * file, which is removed unless the download completes. */
#include "client/fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "core/chunker.h"
#include "core/filestate.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"

int qic_wire_error(const Quics__Error *err)
{
	switch (err->code) {
	case QUICS__ERROR_CODE__ERROR_BAD_REQUEST: return QS_EINVAL;
	case QUICS__ERROR_CODE__ERROR_NOT_JOINED:
	case QUICS__ERROR_CODE__ERROR_UNAUTHENTICATED: return QS_EACCES;
	case QUICS__ERROR_CODE__ERROR_NOT_FOUND: return QS_ENOENT;
	case QUICS__ERROR_CODE__ERROR_ALREADY_EXISTS: return QS_EEXIST;
	case QUICS__ERROR_CODE__ERROR_STALE: return QS_ECONFLICT;
	case QUICS__ERROR_CODE__ERROR_KIND_CONFLICT: return QS_EKIND;
	case QUICS__ERROR_CODE__ERROR_BAD_PATH: return QS_EINVAL;
	case QUICS__ERROR_CODE__ERROR_TOO_LARGE: return QS_E2BIG;
	case QUICS__ERROR_CODE__ERROR_NO_SPACE: return QS_ENOSPC;
	case QUICS__ERROR_CODE__ERROR_UNAVAILABLE:
	case QUICS__ERROR_CODE__ERROR_RATE_LIMITED: return QS_EAGAIN;
	case QUICS__ERROR_CODE__ERROR_HASH_MISMATCH: return QS_EPROTO;
	default: return QS_EIO;
	}
}

/* ---- request/reply ---- */

/* A read-only call whose connection is lost before the answer is asked once more, on the
 * next connection, if one is up within CALL_RETRY_MS: after a server restart the client
 * learns that its connection is gone only from the reset its next packet brings, so the
 * first call after the restart went out on a dead connection and failed (chaos seed 278).
 * One made while the client is reconnecting waits as long for the connection (chaos seed
 * 12015: asked in the 100 ms between that reset and the new connection). */
#define CALL_RETRY_MS 3000
#define CALL_RETRY_POLL_MS 50

struct ccall {
	struct qic_engine *e;
	const char *name; /* a transaction name (static) */
	const ProtobufCMessageDescriptor *desc;
	qic_call_fn then;
	void *arg;
	bool answered;
	uint8_t *req; /* read-only calls: the packed request, for the one retry; else NULL */
	size_t req_len;
	bool retried, has_timer;
	uv_timer_t timer;
	uint64_t waited_ms;
};

static void ccall_free_cb(uv_handle_t *h)
{
	qs_free(h->data);
}

static void ccall_free(struct ccall *c)
{
	qs_free(c->req);
	c->req = NULL;
	if (c->has_timer)
		uv_close((uv_handle_t *)&c->timer, ccall_free_cb);
	else
		qs_free(c);
}

static int ccall_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct ccall *c = arg;
	if (c->answered)
		return QS_EPROTO;
	c->answered = true;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(c->desc, d, len, NULL, &m);
	if (rc != 0) {
		c->then(c->arg, NULL, rc, "malformed reply from the server");
		return 0;
	}
	const Quics__Error *err = qs_wire_reply_error(m);
	if (err != NULL)
		c->then(c->arg, NULL, qic_wire_error(err),
			err->message[0] != '\0' ? err->message : "the server refused");
	else
		c->then(c->arg, m, 0, "");
	qs_wire_free(m);
	return 0;
}

static const struct qs_tx_ops ccall_ops;

/* Opens the call's transaction and sends req (NULL: the kept packed request); false (then
 * answered) if it cannot. From here the transaction's close answers and frees c. */
static bool ccall_send(struct ccall *c, struct qs_conn *conn, const ProtobufCMessage *req)
{
	struct qs_tx *tx;
	int rc = qs_conn_open_tx(conn, c->name, &ccall_ops, c, &tx);
	if (rc != 0) {
		c->then(c->arg, NULL, rc, "cannot open a transaction");
		return false;
	}
	rc = req != NULL ? qs_tx_send_pb(tx, req) : qs_tx_send_msg(tx, c->req, c->req_len);
	if (rc != 0 || qs_tx_finish(tx) != 0)
		qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL);
	return true;
}

static void ccall_retry_cb(uv_timer_t *t)
{
	struct ccall *c = t->data;
	struct qs_conn *conn = qic_engine_conn(c->e);
	bool stopping = qic_engine_stopping(c->e);
	c->waited_ms += CALL_RETRY_POLL_MS;
	if (conn == NULL && !stopping && c->waited_ms < CALL_RETRY_MS)
		return;
	uv_timer_stop(t);
	if (conn == NULL || stopping) {
		c->then(c->arg, NULL, QS_ECONN,
			stopping ? "no answer from the server" : "not connected to the server");
		ccall_free(c);
		return;
	}
	qs_debug("client", "event=call_retried name=%s after_ms=%llu", c->name,
		 (unsigned long long)c->waited_ms);
	if (!ccall_send(c, conn, NULL))
		ccall_free(c);
}

/* Sends c (a read-only call, its request packed) on the next connection within
 * CALL_RETRY_MS; it is asked no more than that once. */
static void ccall_wait(struct ccall *c)
{
	if (!c->has_timer) {
		uv_timer_init(qic_engine_loop(c->e), &c->timer);
		c->timer.data = c;
		c->has_timer = true;
	}
	c->retried = true;
	c->waited_ms = 0;
	uv_timer_start(&c->timer, ccall_retry_cb, CALL_RETRY_POLL_MS, CALL_RETRY_POLL_MS);
}

static void ccall_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct ccall *c = arg;
	if (!c->answered && c->req != NULL && !c->retried && err == QS_ECONN &&
	    !qic_engine_stopping(c->e)) {
		ccall_wait(c);
		return;
	}
	if (!c->answered)
		c->then(c->arg, NULL, err != 0 ? err : QS_ECONN, "no answer from the server");
	ccall_free(c);
}

static const struct qs_tx_ops ccall_ops = {.on_msg = ccall_msg, .on_close = ccall_close};

static void call(struct qic_engine *e, const char *name, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *reply_desc, qic_call_fn then, void *arg,
		 bool read_only)
{
	struct qs_conn *conn = qic_engine_conn(e);
	bool wait =
		conn == NULL && read_only && qic_engine_configured(e) && !qic_engine_stopping(e);
	struct ccall *c = conn != NULL || wait ? qs_calloc(1, sizeof(*c)) : NULL;
	if (c != NULL && read_only) {
		c->req_len = protobuf_c_message_get_packed_size(req);
		c->req = qs_malloc(c->req_len ? c->req_len : 1);
		if (c->req == NULL) {
			qs_free(c);
			c = NULL;
		} else {
			protobuf_c_message_pack(req, c->req);
		}
	}
	if (c == NULL) {
		then(arg, NULL, conn == NULL ? QS_ECONN : QS_ENOMEM,
		     conn == NULL ? "not connected to the server" : "out of memory");
		return;
	}
	c->e = e;
	c->name = name;
	c->desc = reply_desc;
	c->then = then;
	c->arg = arg;
	if (conn == NULL)
		ccall_wait(c);
	else if (!ccall_send(c, conn, req))
		ccall_free(c);
}

void qic_call(struct qic_engine *e, const char *name, const ProtobufCMessage *req,
	      const ProtobufCMessageDescriptor *reply_desc, qic_call_fn then, void *arg)
{
	call(e, name, req, reply_desc, then, arg, false);
}

void qic_call_read(struct qic_engine *e, const char *name, const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *reply_desc, qic_call_fn then, void *arg)
{
	call(e, name, req, reply_desc, then, arg, true);
}

/* ---- downloads ---- */

struct local_chunk {
	uint8_t hash[QS_SHA256_LEN];
	uint64_t offset;
	uint32_t len;
};

struct fetch {
	struct qs_tx *tx;
	const ProtobufCMessageDescriptor *desc;
	qic_fetch_state_fn state_of;
	qic_fetch_done_fn done;
	void *arg;
	struct qic_root *root;
	char *path, *out_path;
	struct qs_manifest m;
	struct local_chunk *local; /* the local copy's chunks, sorted by hash */
	size_t n_local;
	bool *want;
	size_t next;
	struct qs_localfile_writer w;
	struct qs_chunk_rx rx;
	uint8_t *buf;
	uint32_t mode;
	int64_t mtime_ns;
	bool writing, got_reply, finished;
};

static void fetch_finish(struct fetch *f, int err, const char *msg)
{
	if (f->finished)
		return;
	f->finished = true;
	if (f->writing) {
		qs_localfile_writer_abort(&f->w);
		f->writing = false;
	}
	if (err != 0)
		qs_warn("client", "event=download_failed out=\"%s\" err=%s", f->out_path,
			qs_strerror(err));
	f->done(f->arg, err, err != 0 ? msg : "downloaded", err == 0 ? f->m.size_bytes : 0);
}

static int local_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QS_SHA256_LEN);
}

static const struct local_chunk *find_local(const struct fetch *f, const uint8_t *h)
{
	return f->n_local > 0 ? bsearch(h, f->local, f->n_local, sizeof(*f->local), local_cmp)
			      : NULL;
}

/* The local copy's chunks, if it is still what the index says (else none: all are fetched). */
static int index_local(struct fetch *f)
{
	struct qic_entry e;
	if (f->root == NULL || f->path == NULL || qic_index_get(f->root, f->path, &e) != 0)
		return 0;
	int rc = 0, fd = -1;
	struct stat st;
	struct qs_fingerprint fp;
	struct qs_manifest old;
	qs_manifest_init(&old);
	bool usable = e.content.kind == QS_KIND_FILE && !e.conflicted && e.manifest_len > 0 &&
		      qs_localfile_open(f->root->dir_fd, f->path, O_RDONLY, &fd) == 0 &&
		      fstat(fd, &st) == 0;
	if (usable) {
		qs_fingerprint_from_stat(&st, &fp);
		usable = qs_fingerprint_equal(&fp, &e.fp) &&
			 qs_manifest_decode(&old, e.manifest, e.manifest_len) == 0;
	}
	if (fd >= 0)
		close(fd);
	if (usable && old.count > 0) {
		f->local = qs_calloc(old.count, sizeof(*f->local));
		rc = f->local == NULL ? QS_ENOMEM : 0;
		uint64_t off = 0;
		for (size_t i = 0; rc == 0 && i < old.count; i++) {
			memcpy(f->local[i].hash, old.chunks[i].sha256, QS_SHA256_LEN);
			f->local[i].offset = off;
			f->local[i].len = old.chunks[i].len_bytes;
			off += old.chunks[i].len_bytes;
		}
		if (rc == 0) {
			f->n_local = old.count;
			qsort(f->local, f->n_local, sizeof(*f->local), local_cmp);
		}
	}
	qs_manifest_release(&old);
	qic_entry_release(&e);
	return rc;
}

static int install(struct fetch *f)
{
	struct qs_fingerprint fp;
	f->writing = false;
	int rc = qs_localfile_install(&f->w, f->mode, f->mtime_ns, true, NULL, &fp);
	return rc == QS_ECONFLICT ? QS_EEXIST : rc;
}

/* Writes local chunks up to the next one the server sends; installs when all are written. */
static int advance(struct fetch *f)
{
	while (f->next < f->m.count && !f->want[f->next]) {
		const struct qs_manifest_chunk *c = &f->m.chunks[f->next];
		const struct local_chunk *o = find_local(f, c->sha256);
		int rc = o == NULL ? QS_EIO
				   : qs_localfile_read_chunk(f->root->dir_fd, f->path, o->offset,
							     o->len, c->sha256, f->buf);
		if (rc == 0)
			rc = qs_localfile_writer_append(&f->w, f->buf, c->len_bytes);
		if (rc != 0)
			return rc == QS_ECONFLICT ? QS_EAGAIN : rc; /* the local copy changed */
		f->next++;
	}
	if (f->next < f->m.count)
		return 0;
	int rc = install(f);
	if (rc == 0)
		fetch_finish(f, 0, NULL);
	return rc;
}

static int send_want(struct fetch *f)
{
	Quics__ChunkWant w = QUICS__CHUNK_WANT__INIT;
	ProtobufCBinaryData *hs = qs_calloc(f->m.count ? f->m.count : 1, sizeof(*hs));
	if (hs == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < f->m.count; i++) {
		if (f->want != NULL && f->want[i]) {
			hs[w.n_hashes].data = f->m.chunks[i].sha256;
			hs[w.n_hashes].len = QS_SHA256_LEN;
			w.n_hashes++;
		}
	}
	w.hashes = hs;
	int rc = qs_tx_send_pb(f->tx, &w.base);
	qs_free(hs);
	if (rc == 0)
		rc = qs_tx_finish(f->tx);
	return rc;
}

/* Splits out_path into its directory (opened) and its last component. */
static int open_out_dir(const char *out_path, int *dir_fd, const char **name)
{
	const char *slash = strrchr(out_path, '/');
	if (slash == NULL || slash[1] == '\0')
		return QS_EINVAL;
	*name = slash + 1;
	char *dir = slash == out_path ? qs_strdup("/")
				      : qs_strndup(out_path, (size_t)(slash - out_path));
	if (dir == NULL)
		return QS_ENOMEM;
	*dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = *dir_fd < 0 ? qs_err_from_errno(errno) : 0;
	qs_free(dir);
	return rc;
}

static int start_symlink(struct fetch *f, const Quics__FileState *st)
{
	int dfd;
	const char *name;
	int rc = open_out_dir(f->out_path, &dfd, &name);
	if (rc != 0)
		return rc;
	if (symlinkat(st->symlink_target, dfd, name) != 0)
		rc = errno == EEXIST ? QS_EEXIST : qs_err_from_errno(errno);
	close(dfd);
	if (rc == 0)
		rc = send_want(f);
	if (rc == 0)
		fetch_finish(f, 0, NULL);
	return rc;
}

static int start_file(struct fetch *f, const Quics__FileState *st)
{
	int dfd;
	const char *name;
	int rc = qs_filestate_manifest(st, &f->m);
	if (rc == 0)
		rc = open_out_dir(f->out_path, &dfd, &name);
	if (rc != 0)
		return rc;
	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
		rc = QS_EEXIST;
	if (rc == 0)
		rc = qs_localfile_writer_open(&f->w, dfd, name);
	close(dfd);
	if (rc != 0)
		return rc;
	f->writing = true;
	if (st->inline_data.len > 0 || f->m.count == 0) {
		rc = qs_localfile_writer_append(&f->w, st->inline_data.data, st->inline_data.len);
		f->next = f->m.count; /* the whole content came inline */
		if (rc == 0)
			rc = send_want(f);
		return rc == 0 ? advance(f) : rc;
	}
	rc = index_local(f);
	f->want = qs_calloc(f->m.count, sizeof(*f->want));
	f->buf = qs_malloc(QS_CHUNKER_MAX_BYTES);
	if (rc == 0 && (f->want == NULL || f->buf == NULL))
		rc = QS_ENOMEM;
	for (size_t i = 0; rc == 0 && i < f->m.count; i++)
		f->want[i] = find_local(f, f->m.chunks[i].sha256) == NULL;
	if (rc == 0)
		rc = send_want(f);
	return rc == 0 ? advance(f) : rc;
}

static int on_reply(struct fetch *f, const ProtobufCMessage *m)
{
	const Quics__Error *err = qs_wire_reply_error(m);
	if (err != NULL) {
		fetch_finish(f, qic_wire_error(err),
			     err->message[0] != '\0' ? err->message : "the server refused");
		return 0;
	}
	const Quics__FileState *st = f->state_of(m);
	if (st == NULL || qs_filestate_check(st) != 0)
		return QS_EPROTO;
	f->mode = st->mode & 07777u;
	f->mtime_ns = st->mtime_ns;
	switch (qs_filestate_kind(st->kind)) {
	case QS_KIND_FILE: return start_file(f, st);
	case QS_KIND_SYMLINK: return start_symlink(f, st);
	case QS_KIND_DIR:
		fetch_finish(f, QS_EINVAL, "a directory has no content to download");
		return 0;
	default: fetch_finish(f, QS_ENOENT, "the path was deleted in that version"); return 0;
	}
}

static int fetch_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct fetch *f = arg;
	if (f->finished)
		return 0;
	int rc;
	if (!f->got_reply) {
		f->got_reply = true;
		ProtobufCMessage *m;
		rc = qs_wire_unpack(f->desc, d, len, NULL, &m);
		if (rc == 0) {
			rc = on_reply(f, m);
			qs_wire_free(m);
		}
	} else {
		const uint8_t *expect = f->next < f->m.count && f->want != NULL && f->want[f->next]
						? f->m.chunks[f->next].sha256
						: NULL;
		rc = expect == NULL ? QS_EPROTO : qs_chunk_rx_header(&f->rx, d, len, expect);
	}
	if (rc != 0)
		fetch_finish(f, rc,
			     rc == QS_ENOENT ? "the server no longer has that content"
					     : "the download failed");
	return 0;
}

static int fetch_data(struct qs_tx *tx, const uint8_t *d, size_t len, uint64_t off, uint64_t total,
		      void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct fetch *f = arg;
	if (f->finished)
		return 0;
	bool complete;
	int rc = qs_chunk_rx_data(&f->rx, d, len, &complete);
	if (rc == 0 && complete) {
		rc = qs_localfile_writer_append(&f->w, f->rx.data.data, f->rx.data.len);
		if (rc == 0) {
			f->next++;
			rc = advance(f);
		}
	}
	if (rc != 0)
		fetch_finish(f, rc, "the download failed");
	return 0;
}

static void fetch_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct fetch *f = arg;
	fetch_finish(f, err != 0 ? err : QS_ECONN, "the transfer ended early");
	qs_manifest_release(&f->m);
	qs_chunk_rx_release(&f->rx);
	qs_free(f->local);
	qs_free(f->want);
	qs_free(f->buf);
	qs_free(f->path);
	qs_free(f->out_path);
	qs_free(f);
}

static const struct qs_tx_ops fetch_ops = {
	.on_msg = fetch_msg,
	.on_data = fetch_data,
	.on_close = fetch_close,
};

void qic_fetch_file(struct qic_engine *e, const char *tx_name, const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *reply_desc, qic_fetch_state_fn state_of,
		    const struct qic_fetch_target *t, qic_fetch_done_fn done, void *arg)
{
	struct qs_conn *conn = qic_engine_conn(e);
	if (conn == NULL) {
		done(arg, QS_ECONN, "not connected to the server", 0);
		return;
	}
	struct fetch *f = qs_calloc(1, sizeof(*f));
	if (f != NULL) {
		f->out_path = qs_strdup(t->out_path);
		f->path = t->path != NULL ? qs_strdup(t->path) : NULL;
	}
	if (f == NULL || f->out_path == NULL || (t->path != NULL && f->path == NULL)) {
		if (f != NULL) {
			qs_free(f->out_path);
			qs_free(f->path);
		}
		qs_free(f);
		done(arg, QS_ENOMEM, "out of memory", 0);
		return;
	}
	f->desc = reply_desc;
	f->state_of = state_of;
	f->done = done;
	f->arg = arg;
	f->root = t->root;
	qs_manifest_init(&f->m);
	qs_chunk_rx_init(&f->rx);
	int rc = qs_conn_open_tx(conn, tx_name, &fetch_ops, f, &f->tx);
	if (rc != 0) {
		f->finished = true;
		qs_free(f->out_path);
		qs_free(f->path);
		qs_free(f);
		done(arg, rc, "cannot open a transaction", 0);
		return;
	}
	if (qs_tx_send_pb(f->tx, req) != 0)
		qs_tx_cancel(f->tx, QS_QUIC_ERR_INTERNAL); /* on_close answers */
}

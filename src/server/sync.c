/* Sync transactions of the server: PLEASE_SYNC (a client proposes a version; chunks the
 * server lacks are uploaded and verified first; the version is applied through
 * qs_meta_apply and acknowledged only after it is durable), MUST_SYNC (every other
 * connected member of the root is told at once, and sent the chunks it asks for), and
 * FULL_SCAN (a client lists its base versions; the server pushes whatever it has newer). */
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "core/filestate.h"
#include "net/chunkrun.h"
#include "net/txmsg.h"
#include "server/fetch.h"
#include "server/reqrep.h"

#define SCAN_PAGE 1000
#define PUSH_QUEUE_BYTES ((uint64_t)16 << 20)

/* A move that was applied: every moved path at its new place, for the mover's answer and
 * the MUST_SYNC fan-out (docs/wire.md, "moves"). */
struct qis_move {
	char *from;            /* the old name of the moved path */
	uint64_t from_version; /* the version the mover saw; then the old name's tombstone */
	char **paths;          /* new names: the moved path first, then below it */
	uint64_t *versions;
	uint8_t (*hashes)[QS_SHA256_LEN];
	size_t n, cap;
	bool is_delete; /* a subtree delete: the list is announced as MustSyncRequest.deleted */
};

static void move_release(struct qis_move *mv)
{
	for (size_t i = 0; i < mv->n; i++)
		qs_free(mv->paths[i]);
	qs_free(mv->paths);
	qs_free(mv->versions);
	qs_free(mv->hashes);
	qs_free(mv->from);
	memset(mv, 0, sizeof(*mv));
}

struct psync;
static int push_move(struct qis_session *s, uint64_t root_id, const char *path,
		     const struct qis_move *mv);
static int psync_move_request(struct psync *p, const Quics__PleaseSyncRequest *req);
static int psync_move_collect(struct psync *p);
static void psync_move_finish(struct psync *p, const struct qs_meta_result *res);
static int psync_delete_request(struct psync *p, const Quics__PleaseSyncRequest *req);
static void psync_delete_finish(struct psync *p, const struct qs_meta_result *res);

/* Group commit (DESIGN.md section 5): proposals whose chunks are in arrive within a
 * millisecond of each other are applied in one SQLite transaction after one sync of the chunk
 * store, then all are answered. "Acknowledged" still means durable. */
struct qis_group {
	struct qis_daemon *d;
	uv_timer_t timer;
	struct psync *head, **tail;
	bool chunk_batch; /* a qs_chunks batch is open */
	bool closed;
};

#define GROUP_WINDOW_MS 1

/* A chunk need not be uploaded only if this root already uses it and it is stored: a
 * client must prove it has the bytes of any chunk new to its root. */
/* Stores a verified chunk in the open batch (opening one): it is durable at the next group
 * flush, before any version that references it is acknowledged. */
static int chunk_put(struct qis_daemon *d, const uint8_t *h, const uint8_t *data, size_t len,
		     bool verified)
{
	struct qis_group *g = d->group;
	if (!g->chunk_batch) {
		int rc = qs_chunks_batch_begin(d->chunks);
		if (rc != 0)
			return rc;
		g->chunk_batch = true;
	}
	/* qs_chunk_rx verified a received chunk already: the store need not hash it again. */
	return verified ? qs_chunks_put_verified(d->chunks, h, data, len)
			: qs_chunks_put(d->chunks, h, data, len);
}

/* Chunks a root's clients uploaded lately are remembered even before a version uses them, so
 * a proposal retried after a lost connection or a killed client sends only the rest. */
#define RECENT_CHUNKS 65536
#define RECENT_TTL_MS ((uint64_t)3600 * 1000)

/* Remembers an uploaded chunk for root_id (nothing if memory is short: it is only a saving). */
static void recent_add(struct qis_daemon *d, uint64_t root_id, const uint8_t *h)
{
	if (d->recent == NULL && qs_recent_new(RECENT_CHUNKS, RECENT_TTL_MS, &d->recent) != 0)
		return;
	qs_recent_add(d->recent, root_id, h, uv_now(d->loop));
}

/* A chunk need not be uploaded only if this root already uses it and it is stored: a
 * client must prove it has the bytes of any chunk new to its root. The chunk is pinned
 * first (the caller unpins it when the proposal is done), so the garbage collector cannot
 * delete it between this answer and the commit of the version that references it. */
static int chunk_pin_present(struct qis_daemon *d, uint64_t root_id, const uint8_t *h,
			     bool *present)
{
	bool in_root = false, stored = false;
	int rc = qs_chunks_pin(d->chunks, h, &stored);
	if (rc != 0)
		return rc;
	if (d->recent != NULL && qs_recent_has(d->recent, root_id, h, uv_now(d->loop)))
		in_root = true;
	else if (qs_meta_root_has_chunk(d->meta, root_id, h, &in_root) != 0)
		in_root = false;
	*present = stored && in_root;
	return 0;
}

/* ---- PLEASE_SYNC ------------------------------------------------------------------------ */

struct psync {
	struct qis_session *s;
	struct qis_daemon *d; /* outlives s: a queued proposal is applied after its session */
	struct qs_tx *tx;
	uint64_t client_id, root_id, base_version;
	char *path;
	enum qs_kind kind;
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	struct qs_content content;
	struct qs_buf enc; /* manifest encoding or symlink target */
	uint8_t (*need)[QS_SHA256_LEN];
	size_t n_need, next_need;
	uint8_t (*pins)[QS_SHA256_LEN]; /* chunks pinned against the GC until this is freed */
	size_t n_pins;
	struct qs_chunk_rx rx;
	bool got_request, done;
	bool queued; /* waiting in the group; freed by the flush */
	struct psync *next_queued;
	struct qis_move move; /* a move: move.from set */
	struct qis_move del;  /* a subtree delete (del.is_delete): the paths the client agreed */
	bool *del_done;       /* per del path: it got a tombstone */
	bool keep;            /* a subtree delete of files below a directory that stays */
};

static void psync_free(struct psync *p)
{
	for (size_t i = 0; i < p->n_pins; i++)
		qs_chunks_unpin(p->d->chunks, p->pins[i]);
	qs_free(p->pins);
	qs_free(p->path);
	qs_free(p->need);
	qs_buf_release(&p->enc);
	qs_chunk_rx_release(&p->rx);
	move_release(&p->move);
	move_release(&p->del);
	qs_free(p->del_done);
	qs_free(p);
}

static void psync_error(struct psync *p, int err, const char *msg)
{
	if (p->done)
		return;
	p->done = true;
	if (qs_tx_send_error(p->tx, qs_wire_error_code(err), msg) != 0)
		qs_tx_cancel(p->tx, QS_QUIC_ERR_INTERNAL);
}

static void psync_reply(struct psync *p, Quics__PleaseSyncResponse *resp)
{
	p->done = true;
	if (qs_tx_send_pb(p->tx, &resp->base) != 0 || qs_tx_finish(p->tx) != 0)
		qs_tx_cancel(p->tx, QS_QUIC_ERR_INTERNAL);
}

static void reply_decision(struct psync *p, const struct qs_decision *dec, uint64_t candidate_id)
{
	Quics__PleaseSyncResponse resp = QUICS__PLEASE_SYNC_RESPONSE__INIT;
	Quics__PleaseSyncResponse__Accepted acc = QUICS__PLEASE_SYNC_RESPONSE__ACCEPTED__INIT;
	Quics__PleaseSyncResponse__Conflict con = QUICS__PLEASE_SYNC_RESPONSE__CONFLICT__INIT;
	if (dec->verdict == QS_VERDICT_CONFLICT) {
		con.server_version = dec->version;
		con.candidate_id = candidate_id;
		resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_CONFLICT;
		resp.conflict = &con;
	} else {
		acc.version = dec->version;
		resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED;
		resp.accepted = &acc;
	}
	psync_reply(p, &resp);
}

static void psync_fill_cmd(const struct psync *p, struct qs_meta_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->type = QS_CMD_PUT_VERSION;
	cmd->now_unix_ms = qis_now_unix_ms();
	cmd->client_id = p->client_id;
	cmd->u.put_version.root_id = p->root_id;
	cmd->u.put_version.path = p->path;
	cmd->u.put_version.base_version = p->base_version;
	cmd->u.put_version.file.content = p->content;
	cmd->u.put_version.file.mode = p->mode;
	cmd->u.put_version.file.mtime_ns = p->mtime_ns;
	cmd->u.put_version.file.size = p->size;
	cmd->u.put_version.file.manifest = p->enc.data;
	cmd->u.put_version.file.manifest_len = p->enc.len;
	if (p->move.from != NULL) {
		memset(&cmd->u, 0, sizeof(cmd->u));
		cmd->type = QS_CMD_MOVE;
		cmd->u.move.root_id = p->root_id;
		cmd->u.move.from = p->move.from;
		cmd->u.move.to = p->path;
		cmd->u.move.from_version = p->move.from_version;
		cmd->u.move.to_base_version = p->base_version;
		cmd->u.move.content = p->content;
	}
	if (p->del.is_delete) {
		memset(&cmd->u, 0, sizeof(cmd->u));
		cmd->type = QS_CMD_DELETE_TREE;
		cmd->u.delete_tree.root_id = p->root_id;
		cmd->u.delete_tree.path = p->path;
		cmd->u.delete_tree.base_version = p->base_version;
		cmd->u.delete_tree.paths = (const char *const *)p->del.paths;
		cmd->u.delete_tree.versions = p->del.versions;
		cmd->u.delete_tree.n = p->del.n;
		cmd->u.delete_tree.deleted = p->del_done;
		cmd->u.delete_tree.keep = p->keep;
	}
}

/* Answers a flushed proposal and tells the other clients (tx NULL: the client left). */
static void psync_finish(struct psync *p, int rc, const struct qs_meta_result *res)
{
	if (p->move.from != NULL && rc == 0) {
		psync_move_finish(p, res);
		return;
	}
	if (p->del.is_delete && rc == 0) {
		psync_delete_finish(p, res);
		return;
	}
	if (p->tx != NULL) {
		p->done = false;
		if (rc != 0)
			psync_error(p, rc, "cannot apply the proposal");
		else
			reply_decision(p, &res->decision, res->candidate_id);
	}
	if (rc == 0 && res->decision.verdict == QS_VERDICT_CONFLICT)
		qs_info("server",
			"event=conflict client=%llu root=%llu path=\"%s\" server_version=%llu"
			" candidate=%llu",
			(unsigned long long)p->client_id, (unsigned long long)p->root_id, p->path,
			(unsigned long long)res->decision.version,
			(unsigned long long)res->candidate_id);
	if (rc == 0 && res->decision.verdict == QS_VERDICT_FAST_FORWARD) {
		qs_info("server", "event=version client=%llu root=%llu path=\"%s\" version=%llu",
			(unsigned long long)p->client_id, (unsigned long long)p->root_id, p->path,
			(unsigned long long)res->decision.version);
		qis_push_version(p->d, p->client_id, p->root_id, p->path);
	}
}

static void group_flush(struct qis_group *g)
{
	struct qis_daemon *d = g->d;
	struct psync *list = g->head;
	g->head = NULL;
	g->tail = &g->head;
	int rc = 0;
	if (g->chunk_batch) {
		g->chunk_batch = false;
		rc = qs_chunks_batch_sync(d->chunks);
	}
	size_t n = 0;
	for (struct psync *p = list; p != NULL; p = p->next_queued)
		n++;
	struct qs_meta_result *res = qs_calloc(n ? n : 1, sizeof(*res));
	int *rcs = qs_calloc(n ? n : 1, sizeof(*rcs));
	if (rc == 0 && (res == NULL || rcs == NULL))
		rc = QS_ENOMEM;
	if (rc == 0 && n > 0)
		rc = qs_meta_group_begin(d->meta);
	if (rc == 0 && n > 0) {
		size_t i = 0;
		for (struct psync *p = list; p != NULL; p = p->next_queued, i++) {
			struct qs_meta_cmd cmd;
			psync_fill_cmd(p, &cmd);
			rcs[i] = qs_meta_apply(d->meta, &cmd, &res[i]);
			if (rcs[i] == 0 && p->move.from != NULL)
				rcs[i] =
					psync_move_collect(p); /* before later commands change it */
		}
		rc = qs_meta_group_commit(d->meta);
	}
	if (rc != 0)
		qs_error("server", "event=group_commit_failed proposals=%zu err=%s", n,
			 qs_strerror(rc));
	size_t i = 0;
	while (list != NULL) {
		struct psync *p = list;
		list = p->next_queued;
		p->queued = false;
		psync_finish(p, rc != 0 ? rc : rcs[i], &res[i]);
		i++;
		if (p->tx == NULL)
			psync_free(p); /* its transaction is gone: the flush owned it */
	}
	qs_free(res);
	qs_free(rcs);
}

static void group_timer_cb(uv_timer_t *t)
{
	group_flush(t->data);
}

/* All chunks are in: the proposal joins the next group commit. */
static void psync_commit(struct psync *p)
{
	struct qis_group *g = p->s->d->group;
	p->queued = true;
	p->done = true; /* no further input expected; the flush answers */
	p->next_queued = NULL;
	*g->tail = p;
	g->tail = &p->next_queued;
	if (!uv_is_active((uv_handle_t *)&g->timer))
		uv_timer_start(&g->timer, group_timer_cb, GROUP_WINDOW_MS, 0);
}

int qis_group_init(struct qis_daemon *d)
{
	struct qis_group *g = qs_calloc(1, sizeof(*g));
	if (g == NULL)
		return QS_ENOMEM;
	g->d = d;
	g->tail = &g->head;
	uv_timer_init(d->loop, &g->timer);
	g->timer.data = g;
	d->group = g;
	return 0;
}

static void group_closed(uv_handle_t *h)
{
	qs_free(h->data);
}

void qis_group_free(struct qis_daemon *d)
{
	struct qis_group *g = d->group;
	if (g == NULL)
		return;
	if (g->head != NULL)
		group_flush(g);
	d->group = NULL;
	uv_close((uv_handle_t *)&g->timer, group_closed);
}

/* Which chunks of the manifest the server lacks, once each, in manifest order; every chunk
 * of the manifest is pinned on the way. */
static int psync_find_missing(struct psync *p, const Quics__FileState *st)
{
	size_t n = st->n_manifest ? st->n_manifest : 1;
	p->need = qs_calloc(n, sizeof(*p->need));
	p->pins = qs_calloc(n, sizeof(*p->pins));
	if (p->need == NULL || p->pins == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < st->n_manifest; i++) {
		const uint8_t *h = st->manifest[i]->hash.data;
		bool dup = false, present = false;
		int rc = chunk_pin_present(p->s->d, p->root_id, h, &present);
		if (rc != 0)
			return rc;
		memcpy(p->pins[p->n_pins++], h, QS_SHA256_LEN);
		for (size_t k = 0; k < p->n_need && !dup; k++)
			dup = memcmp(p->need[k], h, QS_SHA256_LEN) == 0;
		if (!dup && !present)
			memcpy(p->need[p->n_need++], h, QS_SHA256_LEN);
	}
	return 0;
}

static int psync_request(struct psync *p, const Quics__PleaseSyncRequest *req)
{
	struct qis_daemon *d = p->s->d;
	if (req->state == NULL || qs_filestate_check(req->state) != 0)
		return QS_EPROTO;
	int rc = qs_path_check(req->path, strlen(req->path));
	if (rc != 0)
		return rc;
	if (!qs_meta_is_member(d->meta, p->client_id, req->root_id))
		return QS_EACCES;
	p->root_id = req->root_id;
	p->base_version = req->base_version;
	p->path = qs_strdup(req->path);
	if (p->path == NULL)
		return QS_ENOMEM;
	if (req->moved_from[0] != '\0')
		return psync_move_request(p, req);
	if (req->with_below)
		return psync_delete_request(p, req);
	const Quics__FileState *st = req->state;
	p->kind = (enum qs_kind)qs_filestate_kind(st->kind);
	p->mode = st->mode;
	p->mtime_ns = st->mtime_ns;
	p->size = st->size;
	rc = qs_filestate_content(st, &p->content, &p->enc);
	if (rc != 0)
		return rc;
	/* Decide now so a proposal the server already has (the same content, or this client's
	 * unchanged conflict candidate) uploads nothing; the apply decides again. A new
	 * conflicting proposal uploads its chunks: it is kept as a candidate. */
	struct qs_version_entry cur;
	rc = qs_meta_entry(d->meta, p->root_id, p->path, &cur, NULL, NULL);
	if (rc != 0)
		return rc;
	struct qs_proposal prop = {p->base_version, p->content};
	struct qs_decision dec;
	rc = qs_version_decide(&cur, &prop, &dec);
	if (rc != 0)
		return rc;
	if (dec.verdict == QS_VERDICT_SAME) {
		reply_decision(p, &dec, 0);
		return 0;
	}
	if (dec.verdict == QS_VERDICT_CONFLICT) {
		struct qs_content own;
		uint64_t own_id = 0;
		rc = qs_meta_candidate_of(d->meta, p->root_id, p->path, p->client_id, &own,
					  &own_id);
		if (rc != 0)
			return rc;
		if (own_id != 0 && qs_content_equal(&own, &p->content)) {
			reply_decision(p, &dec, own_id);
			return 0;
		}
	}
	if (st->inline_data.len > 0) {
		rc = chunk_put(d, st->manifest[0]->hash.data, st->inline_data.data,
			       st->inline_data.len, false);
		if (rc != 0)
			return rc;
	}
	rc = psync_find_missing(p, st);
	if (rc != 0)
		return rc;
	if (p->n_need == 0) {
		psync_commit(p);
		return 0;
	}
	Quics__PleaseSyncResponse resp = QUICS__PLEASE_SYNC_RESPONSE__INIT;
	Quics__PleaseSyncResponse__NeedChunks nc = QUICS__PLEASE_SYNC_RESPONSE__NEED_CHUNKS__INIT;
	ProtobufCBinaryData *hs = qs_calloc(p->n_need, sizeof(*hs));
	if (hs == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < p->n_need; i++) {
		hs[i].data = p->need[i];
		hs[i].len = QS_SHA256_LEN;
	}
	nc.n_hashes = p->n_need;
	nc.hashes = hs;
	resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_NEED_CHUNKS;
	resp.need_chunks = &nc;
	rc = qs_tx_send_pb(p->tx, &resp.base);
	qs_free(hs);
	return rc;
}

static int psync_on_msg(struct qs_tx *tx, const uint8_t *data, size_t len, void *arg)
{
	(void)tx;
	struct psync *p = arg;
	if (p->done)
		return 0; /* answered already (an error): what the client still sends is ignored */
	if (!p->got_request) {
		p->got_request = true;
		ProtobufCMessage *m;
		int rc = qs_wire_unpack(&quics__please_sync_request__descriptor, data, len, NULL,
					&m);
		if (rc == 0) {
			rc = psync_request(p, (const Quics__PleaseSyncRequest *)m);
			qs_wire_free(m);
		}
		if (rc != 0)
			psync_error(p, rc, qs_strerror(rc));
		return 0;
	}
	if (p->next_need >= p->n_need)
		return QS_EPROTO;
	int rc = qs_chunk_rx_header(&p->rx, data, len, p->need[p->next_need]);
	if (rc != 0)
		psync_error(p, rc, "bad chunk header");
	return 0;
}

static int psync_on_data(struct qs_tx *tx, const uint8_t *data, size_t len, uint64_t off,
			 uint64_t total, void *arg)
{
	(void)tx;
	(void)off;
	(void)total;
	struct psync *p = arg;
	if (p->done)
		return 0;
	bool complete;
	int rc = qs_chunk_rx_data(&p->rx, data, len, &complete);
	if (rc == 0 && complete)
		rc = chunk_put(p->s->d, p->rx.hash, p->rx.data.data, p->rx.data.len, true);
	if (rc == 0 && complete)
		recent_add(p->s->d, p->root_id, p->rx.hash);
	if (rc != 0) {
		psync_error(p, rc,
			    rc == QS_EPROTO ? "chunk does not match its hash" : "store failed");
		return 0;
	}
	if (complete && ++p->next_need == p->n_need)
		psync_commit(p);
	return 0;
}

static int psync_on_end(struct qs_tx *tx, void *arg)
{
	(void)tx;
	struct psync *p = arg;
	if (!p->done)
		psync_error(p, QS_EPROTO, "stream ended before the proposal was complete");
	return 0;
}

static void psync_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	struct psync *p = arg;
	if (p->queued) {
		p->tx = NULL; /* the group flush still applies it, then frees it */
		return;
	}
	psync_free(p);
}

static const struct qs_tx_ops psync_ops = {
	.on_msg = psync_on_msg,
	.on_data = psync_on_data,
	.on_end = psync_on_end,
	.on_close = psync_on_close,
};

static int start_please_sync(struct qis_session *s, struct qs_tx *tx)
{
	struct psync *p = qs_calloc(1, sizeof(*p));
	if (p == NULL)
		return QS_ENOMEM;
	p->s = s;
	p->d = s->d;
	p->tx = tx;
	p->client_id = s->client_id;
	qs_buf_init(&p->enc, (size_t)40 << 20);
	qs_chunk_rx_init(&p->rx);
	qs_tx_set_ops(tx, &psync_ops, p);
	return 0;
}

/* ---- MUST_SYNC -------------------------------------------------------------------------- */

struct must_first {
	uint64_t root_id, version;
	const char *path;
	const struct qis_move *mv; /* the move this push announces, or NULL */
};

/* The moved list as ScanEntry messages (pointing into mv); caller frees both arrays. */
static int move_entries(const struct qis_move *mv, Quics__ScanEntry **es_out,
			Quics__ScanEntry ***ps_out)
{
	Quics__ScanEntry *es = qs_calloc(mv->n + 1, sizeof(*es));
	Quics__ScanEntry **ps = qs_calloc(mv->n + 1, sizeof(*ps));
	if (es == NULL || ps == NULL) {
		qs_free(es);
		qs_free(ps);
		return QS_ENOMEM;
	}
	for (size_t i = 0; i < mv->n; i++) {
		Quics__ScanEntry init = QUICS__SCAN_ENTRY__INIT;
		es[i] = init;
		es[i].path = mv->paths[i];
		es[i].version = mv->versions[i];
		es[i].hash.data = mv->hashes[i];
		es[i].hash.len = QS_SHA256_LEN;
		ps[i] = &es[i];
	}
	*es_out = es;
	*ps_out = ps;
	return 0;
}

static int must_first(struct qs_tx *tx, const Quics__FileState *st, void *arg)
{
	const struct must_first *mf = arg;
	Quics__MustSyncRequest req = QUICS__MUST_SYNC_REQUEST__INIT;
	req.root_id = mf->root_id;
	req.path = (char *)mf->path;
	req.version = mf->version;
	req.state = (Quics__FileState *)st;
	Quics__ScanEntry *es = NULL, **ps = NULL;
	if (mf->mv != NULL) {
		int rc = move_entries(mf->mv, &es, &ps);
		if (rc != 0)
			return rc;
		if (mf->mv->is_delete) {
			req.n_deleted = mf->mv->n;
			req.deleted = ps;
		} else {
			req.moved_from = mf->mv->from;
			req.moved_from_version = mf->mv->from_version + 1;
			req.n_moved = mf->mv->n;
			req.moved = ps;
		}
	}
	int rc = qs_tx_send_pb(tx, &req.base);
	qs_free(es);
	qs_free(ps);
	return rc;
}

/* Opens MUST_SYNC toward session s for the current entry of root/path (server/fetch.h); mv:
 * as the announcement of that move. */
static int push_to_ex(struct qis_session *s, uint64_t root_id, const char *path,
		      const struct qis_move *mv)
{
	struct qs_version_entry e;
	struct qs_meta_file f;
	uint8_t *enc = NULL;
	int rc = qs_meta_entry(s->d->meta, root_id, path, &e, &f, &enc);
	if (rc == 0 && e.version != 0) {
		struct must_first mf = {root_id, e.version, path, mv};
		rc = qis_fetch_open(s, "MUST_SYNC", root_id, path, e.version, &f, must_first, &mf);
	}
	qs_free(enc);
	return rc;
}

int qis_push_to(struct qis_session *s, uint64_t root_id, const char *path)
{
	return push_to_ex(s, root_id, path, NULL);
}

static int push_move(struct qis_session *s, uint64_t root_id, const char *path,
		     const struct qis_move *mv)
{
	return push_to_ex(s, root_id, path, mv);
}

void qis_push_version(struct qis_daemon *d, uint64_t from_client, uint64_t root_id,
		      const char *path)
{
	for (struct qis_session *s = d->sessions; s != NULL; s = s->next) {
		if (s->client_id == 0 || s->client_id == from_client ||
		    !qs_meta_is_member(d->meta, s->client_id, root_id))
			continue;
		int rc = qis_push_to(s, root_id, path);
		if (rc != 0)
			qs_warn("server", "event=push_failed client=%llu path=\"%s\" err=%s",
				(unsigned long long)s->client_id, path, qs_strerror(rc));
	}
}

/* ---- moves (PLEASE_SYNC with moved_from; docs/wire.md, "moves") ------------------------ */

/* A move needs no chunks: the server holds the moved content already. It is decided again
 * by the MOVE command in the group commit; this early check only spares the group a proposal
 * that is stale already. */
static int psync_move_request(struct psync *p, const Quics__PleaseSyncRequest *req)
{
	struct qis_daemon *d = p->s->d;
	size_t flen = strlen(req->moved_from), tlen = strlen(p->path);
	int rc = qs_path_check(req->moved_from, flen);
	if (rc != 0)
		return rc;
	size_t shorter = flen < tlen ? flen : tlen;
	if (strcmp(req->moved_from, p->path) == 0 ||
	    (memcmp(req->moved_from, p->path, shorter) == 0 &&
	     (flen < tlen ? p->path[flen] : req->moved_from[tlen]) == '/'))
		return QS_EINVAL; /* one inside the other */
	const Quics__FileState *st = req->state;
	p->kind = (enum qs_kind)qs_filestate_kind(st->kind);
	rc = qs_filestate_content(st, &p->content, &p->enc);
	if (rc != 0)
		return rc;
	p->move.from = qs_strdup(req->moved_from);
	if (p->move.from == NULL)
		return QS_ENOMEM;
	p->move.from_version = req->moved_from_version;
	struct qs_version_entry cur;
	rc = qs_meta_entry(d->meta, p->root_id, p->move.from, &cur, NULL, NULL);
	if (rc != 0)
		return rc;
	if (cur.version != p->move.from_version || !qs_content_equal(&cur.content, &p->content))
		return QS_ECONFLICT;
	psync_commit(p);
	return 0;
}

static int move_add(void *arg, const struct qs_meta_version_info *v)
{
	struct qis_move *mv = arg;
	if (mv->n == mv->cap) {
		size_t cap = mv->cap ? mv->cap * 2 : 64;
		char **np = qs_realloc(mv->paths, cap * sizeof(*np));
		if (np != NULL)
			mv->paths = np;
		uint64_t *nv = qs_realloc(mv->versions, cap * sizeof(*nv));
		if (nv != NULL)
			mv->versions = nv;
		uint8_t(*nh)[QS_SHA256_LEN] = qs_realloc(mv->hashes, cap * sizeof(*nh));
		if (nh != NULL)
			mv->hashes = nh;
		if (np == NULL || nv == NULL || nh == NULL)
			return QS_ENOMEM;
		mv->cap = cap;
	}
	mv->paths[mv->n] = qs_strdup(v->path);
	if (mv->paths[mv->n] == NULL)
		return QS_ENOMEM;
	mv->versions[mv->n] = v->version;
	memcpy(mv->hashes[mv->n], v->content.hash, QS_SHA256_LEN);
	mv->n++;
	return 0;
}

/* Right after the MOVE command applied (inside the group): the moved paths at their new
 * places. Nothing was live below the new name before, so everything live there now moved. */
static int psync_move_collect(struct psync *p)
{
	struct qs_meta *m = p->s->d->meta;
	struct qs_meta_version_info v;
	int rc = qs_meta_entry_info(m, p->root_id, p->path, &v);
	if (rc == 0)
		rc = move_add(&p->move, &v);
	if (rc == 0 && p->kind == QS_KIND_DIR)
		rc = qs_meta_entries_below(m, p->root_id, p->path, NULL, false, QS_META_MOVE_MAX,
					   move_add, &p->move);
	return rc;
}

/* Answers the mover with every moved path's new version and tells the other clients. */
static void psync_move_finish(struct psync *p, const struct qs_meta_result *res)
{
	if (p->tx != NULL) {
		Quics__PleaseSyncResponse resp = QUICS__PLEASE_SYNC_RESPONSE__INIT;
		Quics__PleaseSyncResponse__Accepted acc =
			QUICS__PLEASE_SYNC_RESPONSE__ACCEPTED__INIT;
		Quics__ScanEntry *es = NULL, **ps = NULL;
		p->done = false;
		int rc = move_entries(&p->move, &es, &ps);
		if (rc == 0) {
			acc.version = res->decision.version;
			acc.n_moved = p->move.n;
			acc.moved = ps;
			resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED;
			resp.accepted = &acc;
			psync_reply(p, &resp);
		} else {
			psync_error(p, rc, "cannot list the moved paths");
		}
		qs_free(es);
		qs_free(ps);
	}
	struct qis_daemon *d = p->s->d;
	qs_info("server", "event=move client=%llu root=%llu from=\"%s\" path=\"%s\" paths=%zu",
		(unsigned long long)p->client_id, (unsigned long long)p->root_id, p->move.from,
		p->path, p->move.n);
	for (struct qis_session *s = d->sessions; s != NULL; s = s->next) {
		if (s->client_id == 0 || s->client_id == p->client_id ||
		    !qs_meta_is_member(d->meta, s->client_id, p->root_id))
			continue;
		int rc = push_move(s, p->root_id, p->path, &p->move);
		if (rc != 0)
			qs_warn("server", "event=push_failed client=%llu path=\"%s\" err=%s",
				(unsigned long long)s->client_id, p->path, qs_strerror(rc));
	}
}

/* ---- subtree deletes (PLEASE_SYNC with with_below; docs/wire.md, "subtree deletes") ---- */

/* The directory's deletion with the paths below it the client agreed; decided by the
 * DELETE_TREE command in the group commit. The early check spares the group a proposal
 * whose directory changed already (ERROR_STALE: the client deletes path by path). */
static int psync_delete_request(struct psync *p, const Quics__PleaseSyncRequest *req)
{
	struct qis_daemon *d = p->s->d;
	p->kind = (enum qs_kind)qs_filestate_kind(req->state->kind);
	/* keep: files deleted from a directory that stays, whose state the client repeats. */
	if (p->kind != (req->keep ? QS_KIND_DIR : QS_KIND_TOMBSTONE))
		return QS_EINVAL;
	p->keep = req->keep;
	if (req->n_below > QS_META_MOVE_MAX)
		return QS_E2BIG;
	p->content.kind = QS_KIND_TOMBSTONE;
	p->del.is_delete = true;
	p->del_done = qs_calloc(req->n_below + 1, sizeof(*p->del_done));
	if (p->del_done == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < req->n_below; i++) {
		const Quics__ScanEntry *b = req->below[i];
		int rc = qs_path_check(b->path, strlen(b->path));
		if (rc != 0)
			return rc;
		struct qs_meta_version_info v = {.path = b->path, .version = b->version};
		memcpy(v.content.hash, b->hash.data, QS_SHA256_LEN);
		rc = move_add(&p->del, &v);
		if (rc != 0)
			return rc;
	}
	struct qs_version_entry cur;
	int rc = qs_meta_entry(d->meta, p->root_id, p->path, &cur, NULL, NULL);
	if (rc != 0)
		return rc;
	if (cur.content.kind != QS_KIND_DIR || cur.version != p->base_version)
		return QS_ECONFLICT;
	psync_commit(p);
	return 0;
}

/* Answers the client with every path that got a tombstone (the directory first, if it did)
 * and tells the other clients with one MUST_SYNC for the directory. */
static void psync_delete_finish(struct psync *p, const struct qs_meta_result *res)
{
	struct qis_move gone = {.is_delete = true};
	struct qs_meta_version_info v;
	memset(&v, 0, sizeof(v));
	v.content.kind = QS_KIND_TOMBSTONE;
	int rc = 0;
	if (res->decision.verdict == QS_VERDICT_FAST_FORWARD) {
		v.path = p->path;
		v.version = res->decision.version;
		rc = move_add(&gone, &v);
	}
	for (size_t i = 0; rc == 0 && i < p->del.n; i++) {
		if (!p->del_done[i])
			continue;
		v.path = p->del.paths[i];
		v.version = p->del.versions[i] + 1;
		rc = move_add(&gone, &v);
	}
	if (p->tx != NULL) {
		Quics__PleaseSyncResponse resp = QUICS__PLEASE_SYNC_RESPONSE__INIT;
		Quics__PleaseSyncResponse__Accepted acc =
			QUICS__PLEASE_SYNC_RESPONSE__ACCEPTED__INIT;
		Quics__ScanEntry *es = NULL, **ps = NULL;
		p->done = false;
		if (rc == 0)
			rc = move_entries(&gone, &es, &ps);
		if (rc == 0) {
			acc.version = res->decision.version;
			acc.n_deleted = gone.n;
			acc.deleted = ps;
			resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED;
			resp.accepted = &acc;
			psync_reply(p, &resp);
		} else {
			psync_error(p, rc, "cannot list the deleted paths");
		}
		qs_free(es);
		qs_free(ps);
	}
	struct qis_daemon *d = p->s->d;
	qs_info("server",
		"event=delete_tree client=%llu root=%llu path=\"%s\" listed=%zu deleted=%zu "
		"keep=%d",
		(unsigned long long)p->client_id, (unsigned long long)p->root_id, p->path, p->del.n,
		gone.n, (int)p->keep);
	for (struct qis_session *s = d->sessions; rc == 0 && gone.n > 0 && s != NULL; s = s->next) {
		if (s->client_id == 0 || s->client_id == p->client_id ||
		    !qs_meta_is_member(d->meta, s->client_id, p->root_id))
			continue;
		int prc = push_move(s, p->root_id, p->path, &gone);
		if (prc != 0)
			qs_warn("server", "event=push_failed client=%llu path=\"%s\" err=%s",
				(unsigned long long)s->client_id, p->path, qs_strerror(prc));
	}
	move_release(&gone);
}

/* ---- FULL_SCAN -------------------------------------------------------------------------- */

struct scan_entry {
	char *path;
	uint64_t version;
	struct qs_content content;
	bool seen; /* the client listed it */
};

struct scan {
	struct qis_session *s;
	struct qs_tx *tx;
	uint64_t root_id;
	struct scan_entry *e; /* the server's entries, in path order */
	size_t n, cap, merge; /* merge: first entry not yet compared */
	bool got_request, client_done;
};

static int scan_collect(void *arg, const char *path, const struct qs_version_entry *v)
{
	struct scan *sc = arg;
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 256;
		struct scan_entry *ne = qs_realloc(sc->e, cap * sizeof(*ne));
		if (ne == NULL)
			return QS_ENOMEM;
		sc->e = ne;
		sc->cap = cap;
	}
	struct scan_entry *e = &sc->e[sc->n];
	e->path = qs_strdup(path);
	if (e->path == NULL)
		return QS_ENOMEM;
	e->version = v->version;
	e->content = v->content;
	e->seen = false;
	sc->n++;
	return 0;
}

static void scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		qs_free(sc->e[i].path);
	qs_free(sc->e);
	qs_free(sc);
}

/* Sends the server's entries as pages. */
static int scan_send_pages(struct scan *sc)
{
	size_t i = 0;
	do {
		size_t n = sc->n - i < SCAN_PAGE ? sc->n - i : SCAN_PAGE;
		Quics__ScanEntry *es = qs_calloc(n ? n : 1, sizeof(*es));
		Quics__ScanEntry **ps = qs_calloc(n ? n : 1, sizeof(*ps));
		if (es == NULL || ps == NULL) {
			qs_free(es);
			qs_free(ps);
			return QS_ENOMEM;
		}
		for (size_t k = 0; k < n; k++) {
			Quics__ScanEntry init = QUICS__SCAN_ENTRY__INIT;
			es[k] = init;
			es[k].path = sc->e[i + k].path;
			es[k].version = sc->e[i + k].version;
			es[k].hash.data = sc->e[i + k].content.hash;
			es[k].hash.len = QS_SHA256_LEN;
			ps[k] = &es[k];
		}
		Quics__FullScanPage page = QUICS__FULL_SCAN_PAGE__INIT;
		page.n_entries = n;
		page.entries = ps;
		i += n;
		page.last = i == sc->n;
		int rc = qs_tx_send_pb(sc->tx, &page.base);
		qs_free(es);
		qs_free(ps);
		if (rc != 0)
			return rc;
	} while (i < sc->n);
	return 0;
}

static void scan_push(struct scan *sc, size_t i)
{
	const struct scan_entry *e = &sc->e[i];
	if (qis_push_to(sc->s, sc->root_id, e->path) != 0)
		qs_warn("server", "event=scan_push_failed path=\"%s\"", e->path);
}

static int scan_page(struct scan *sc, const Quics__FullScanPage *pg)
{
	for (size_t k = 0; k < pg->n_entries; k++) {
		const Quics__ScanEntry *ce = pg->entries[k];
		/* Server entries before this path: the client lacks them. */
		while (sc->merge < sc->n && strcmp(sc->e[sc->merge].path, ce->path) < 0) {
			if (sc->e[sc->merge].content.kind != QS_KIND_TOMBSTONE)
				scan_push(sc, sc->merge);
			sc->merge++;
		}
		if (sc->merge < sc->n && strcmp(sc->e[sc->merge].path, ce->path) == 0) {
			if (sc->e[sc->merge].version > ce->version)
				scan_push(sc, sc->merge);
			sc->merge++;
		}
	}
	if (pg->last) {
		for (; sc->merge < sc->n; sc->merge++)
			if (sc->e[sc->merge].content.kind != QS_KIND_TOMBSTONE)
				scan_push(sc, sc->merge);
		sc->client_done = true;
		return qs_tx_finish(sc->tx);
	}
	return 0;
}

static int scan_on_msg(struct qs_tx *tx, const uint8_t *data, size_t len, void *arg)
{
	(void)tx;
	struct scan *sc = arg;
	ProtobufCMessage *m;
	if (!sc->got_request) {
		sc->got_request = true;
		int rc = qs_wire_unpack(&quics__full_scan_request__descriptor, data, len, NULL, &m);
		if (rc != 0)
			return rc;
		const Quics__FullScanRequest *req = (const void *)m;
		sc->root_id = req->root_id;
		if (!qs_meta_is_member(sc->s->d->meta, sc->s->client_id, sc->root_id))
			rc = QS_EACCES;
		if (rc == 0)
			rc = qs_meta_list(sc->s->d->meta, sc->root_id, req->cursor, SIZE_MAX,
					  scan_collect, sc);
		qs_wire_free(m);
		if (rc == 0)
			rc = scan_send_pages(sc);
		return rc;
	}
	if (sc->client_done)
		return QS_EPROTO;
	int rc = qs_wire_unpack(&quics__full_scan_page__descriptor, data, len, NULL, &m);
	if (rc != 0)
		return rc;
	rc = scan_page(sc, (const Quics__FullScanPage *)m);
	qs_wire_free(m);
	return rc;
}

static void scan_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	scan_free(arg);
}

static const struct qs_tx_ops scan_ops = {.on_msg = scan_on_msg, .on_close = scan_on_close};

static int start_full_scan(struct qis_session *s, struct qs_tx *tx)
{
	struct scan *sc = qs_calloc(1, sizeof(*sc));
	if (sc == NULL)
		return QS_ENOMEM;
	sc->s = s;
	sc->tx = tx;
	qs_tx_set_ops(tx, &scan_ops, sc);
	return 0;
}

int qis_tx_sync(struct qis_session *s, struct qs_tx *tx, const char *name)
{
	bool please = strcmp(name, "PLEASE_SYNC") == 0, scan = strcmp(name, "FULL_SCAN") == 0;
	if (!please && !scan)
		return QS_ENOENT;
	if (s->client_id == 0)
		return qis_refuse_unauthenticated(tx);
	return please ? start_please_sync(s, tx) : start_full_scan(s, tx);
}

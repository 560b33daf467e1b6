/* Moves on the client (docs/client.md, "moves"): a rename the watcher paired is proposed as
 * one PLEASE_SYNC with moved_from (no content travels: the server holds it), and a move
 * the server accepted or announced is recorded by renaming the index subtree. A refused or
 * lost proposal falls back to what any change gets: both names are looked at again, so the
 * old one is proposed deleted and the new one created. Runs on the engine's loop. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/engine.h"
#include "core/filestate.h"
#include "net/txmsg.h"

struct mover {
	struct qic_root *r;
	char *from, *to;
	bool is_dir, answered;
};

static void mover_free(struct mover *m)
{
	qs_free(m->from);
	qs_free(m->to);
	qs_free(m);
}

/* Both names are changes again (and, for a directory, everything: as before moves). */
static void fall_back(struct qic_root *r, const char *from, const char *to, bool is_dir)
{
	qic_mark_dirty(r, from);
	qic_mark_dirty(r, to);
	if (is_dir)
		qic_engine_rescan(r->e);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The paths at or below the new name that the server's list leaves out. */
struct unlisted {
	const char **listed; /* sorted */
	size_t n_listed;
	char **v;
	size_t n, cap;
};

static int unlisted_add(void *arg, const char *path, const struct qic_entry *e)
{
	(void)e;
	struct unlisted *u = arg;
	if (bsearch(&path, u->listed, u->n_listed, sizeof(*u->listed), cmp_str) != NULL)
		return 0;
	int rc = qs_array_reserve((void **)&u->v, &u->cap, u->n + 1, sizeof(*u->v));
	if (rc == 0 && (u->v[u->n] = qs_strdup(path)) == NULL)
		rc = QS_ENOMEM;
	if (rc == 0)
		u->n++;
	return rc;
}

/* An entry the index moved that the server did not: the server held no such path below
 * from when it moved it (chaos seed 24: a new file accepted at the old name just after the
 * move, its answer recorded before this client took the move). Its agreed version is the
 * old name's, so the entry goes back there; the file itself went along with the rename, so
 * the old name is proposed deleted and the new name created, as the user would see it. */
static int put_back(struct qic_root *r, const char *from, const char *to, const char *path)
{
	size_t tlen = strlen(to), flen = strlen(from);
	size_t rest = strlen(path) - tlen;
	char *old = qs_malloc(flen + rest + 1);
	if (old == NULL)
		return QS_ENOMEM;
	memcpy(old, from, flen);
	memcpy(old + flen, path + tlen, rest + 1);
	struct qic_entry e;
	int rc = qic_index_get(r, path, &e);
	if (rc == 0) {
		rc = qic_index_put(r, old, &e);
		qic_entry_release(&e);
	}
	if (rc == 0)
		rc = qic_index_delete(r, path);
	if (rc == 0) {
		qic_mark_dirty(r, old);
		qic_mark_dirty(r, path);
	}
	qs_free(old);
	return rc;
}

int qic_move_record(struct qic_root *r, const char *from, const char *to,
		    Quics__ScanEntry *const *moved, size_t n, bool *stale)
{
	for (size_t i = 0; i < n; i++)
		if (!qs_path_str_within(moved[i]->path, to) || moved[i]->hash.len != QS_SHA256_LEN)
			return QS_EPROTO;
	int rc = qic_index_move(r, from, to);
	if (rc != 0)
		return rc;
	struct unlisted u = {.n_listed = n};
	u.listed = qs_calloc(n + 1, sizeof(*u.listed));
	if (u.listed == NULL)
		return QS_ENOMEM;
	for (size_t i = 0; i < n; i++)
		u.listed[i] = moved[i]->path;
	qsort(u.listed, n, sizeof(*u.listed), cmp_str);
	rc = qic_index_each_below(r, to, unlisted_add, &u);
	for (size_t i = 0; rc == 0 && i < u.n; i++)
		rc = put_back(r, from, to, u.v[i]);
	for (size_t i = 0; i < u.n; i++)
		qs_free(u.v[i]);
	qs_free(u.v);
	qs_free(u.listed);
	if (rc != 0)
		return rc;
	*stale = false;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct qic_entry e;
		if (qic_index_get(r, moved[i]->path, &e) != 0) {
			*stale = true; /* the server moved a path we did not have */
			continue;
		}
		bool same = e.content.kind == QS_KIND_DIR ||
			    memcmp(e.content.hash, moved[i]->hash.data, QS_SHA256_LEN) == 0;
		if (same) {
			/* The server moved what we agreed: the new version is our base. */
			e.base_version = moved[i]->version;
		} else {
			/* We were behind on it: base 0 makes the FULL_SCAN push the server's
			 * content, which replaces the local file if it is still what we had. */
			e.base_version = 0;
			*stale = true;
		}
		if (e.conflicted) {
			/* The local file is the user's own version (refused at the old name, for
			 * instance because the move had deleted it there): never seen as agreed
			 * again, so it is proposed at the new name. */
			e.conflicted = false;
			e.conflict_version = 0;
			memset(&e.fp, 0, sizeof(e.fp));
		}
		rc = qic_index_put(r, moved[i]->path, &e);
		qic_entry_release(&e);
	}
	return rc;
}

static int mover_answer(struct mover *m, const Quics__PleaseSyncResponse *resp)
{
	if (resp->result_case != QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED) {
		qs_info("client", "event=move_refused from=\"%s\" to=\"%s\" code=%d", m->from,
			m->to, resp->error != NULL ? (int)resp->error->code : -1);
		fall_back(m->r, m->from, m->to, m->is_dir);
		return 0;
	}
	bool stale = false;
	int rc = qic_move_record(m->r, m->from, m->to, resp->accepted->moved,
				 resp->accepted->n_moved, &stale);
	if (rc != 0) {
		qs_warn("client", "event=move_record_failed to=\"%s\" err=%s", m->to,
			qs_strerror(rc));
		fall_back(m->r, m->from, m->to, m->is_dir);
		return 0;
	}
	qs_info("client", "event=moved from=\"%s\" to=\"%s\" paths=%zu", m->from, m->to,
		resp->accepted->n_moved);
	/* What changed on disk meanwhile (an edit after the rename, a file the watcher saw
	 * under the old name) is found by looking at the new names against the index. */
	if (m->is_dir)
		qic_root_scan_below(m->r, m->to);
	else
		qic_mark_dirty(m->r, m->to);
	/* And the old name: something made there while the move was on its way was looked at
	 * against the index of before the move (where the moved path still was), and may have
	 * passed for it (chaos seed 1539: a new directory at the old name never proposed). */
	qic_root_scan_below(m->r, m->from);
	if (stale)
		qic_root_full_scan(m->r);
	return 0;
}

static int mover_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	struct mover *m = arg;
	if (m->answered)
		return QS_EPROTO;
	m->answered = true;
	ProtobufCMessage *msg;
	int rc = qs_wire_unpack(&quics__please_sync_response__descriptor, d, len, NULL, &msg);
	if (rc != 0) {
		fall_back(m->r, m->from, m->to, m->is_dir);
		return rc;
	}
	rc = mover_answer(m, (const Quics__PleaseSyncResponse *)msg);
	qs_wire_free(msg);
	(void)tx;
	return rc;
}

static void mover_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	struct mover *m = arg;
	if (!m->answered)
		fall_back(m->r, m->from, m->to, m->is_dir);
	mover_free(m);
}

static const struct qs_tx_ops mover_ops = {.on_msg = mover_on_msg, .on_close = mover_on_close};

/* The PLEASE_SYNC request of a move: from's agreed content under the new name. */
static int send_move(struct mover *m, struct qs_conn *conn, const struct qic_entry *fe,
		     uint64_t to_base)
{
	struct qs_manifest man;
	qs_manifest_init(&man);
	char *target = NULL;
	int rc = 0;
	if (fe->content.kind == QS_KIND_FILE)
		rc = qs_manifest_decode(&man, fe->manifest, fe->manifest_len);
	else if (fe->content.kind == QS_KIND_SYMLINK)
		rc = (target = qs_strndup((const char *)fe->manifest, fe->manifest_len)) == NULL
			     ? QS_ENOMEM
			     : 0;
	struct qs_filestate_out fs;
	if (rc == 0)
		rc = qs_filestate_out_init(&fs, fe->content.kind, fe->mode, fe->mtime_ns, &man,
					   NULL, 0, target);
	if (rc == 0) {
		Quics__PleaseSyncRequest req = QUICS__PLEASE_SYNC_REQUEST__INIT;
		req.root_id = m->r->root_id;
		req.path = m->to;
		req.base_version = to_base;
		req.state = &fs.st;
		req.moved_from = m->from;
		req.moved_from_version = fe->base_version;
		struct qs_tx *tx;
		rc = qs_conn_open_tx(conn, "PLEASE_SYNC", &mover_ops, m, &tx);
		if (rc == 0 && (qs_tx_send_pb(tx, &req.base) != 0 || qs_tx_finish(tx) != 0))
			qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL); /* on_close falls back */
		qs_filestate_out_release(&fs);
	}
	qs_manifest_release(&man);
	qs_free(target);
	return rc;
}

enum qic_move_start qic_move_propose(struct qic_root *r, struct qs_conn *conn, const char *from,
				     const char *to, bool is_dir)
{
	struct qic_entry fe, te;
	bool have_from = qic_index_get(r, from, &fe) == 0;
	bool have_to = qic_index_get(r, to, &te) == 0;
	bool from_live = have_from && qic_entry_local_kind(&fe) != QS_KIND_TOMBSTONE;
	enum qic_move_start out = QIC_MOVE_NO;
	if (!from_live && have_to && te.content.kind != QS_KIND_TOMBSTONE)
		out = QIC_MOVE_KNOWN;
	else if (from_live && !fe.conflicted && fe.base_version > 0 && conn != NULL && !r->paused &&
		 !(have_to && te.conflicted)) {
		struct mover *m = qs_calloc(1, sizeof(*m));
		int rc = m == NULL ? QS_ENOMEM : 0;
		if (rc == 0) {
			m->r = r;
			m->is_dir = is_dir;
			m->from = qs_strdup(from);
			m->to = qs_strdup(to);
			rc = m->from == NULL || m->to == NULL ? QS_ENOMEM : 0;
		}
		if (rc == 0)
			rc = send_move(m, conn, &fe, have_to ? te.base_version : 0);
		if (rc == 0)
			out = QIC_MOVE_STARTED; /* m belongs to the transaction */
		else if (m != NULL)
			mover_free(m);
	}
	if (have_from)
		qic_entry_release(&fe);
	if (have_to)
		qic_entry_release(&te);
	return out;
}

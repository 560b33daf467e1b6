/* Conflict transactions of the server (DESIGN.md section 3): CONFLICT_LIST pages through a
 * root's open conflicts with their candidates; CONFLICT_DOWNLOAD serves one candidate's
 * content (server/fetch.h); CONFLICT_CHOOSE applies the user's choice as
 * a RESOLVE_CONFLICT command (the chosen content becomes version + 1) and pushes it to every
 * connected member with FORCE_SYNC, the chooser included. Candidates themselves are stored by
 * PLEASE_SYNC (sync.c) when a proposal conflicts. */
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/path.h"
#include "net/txmsg.h"
#include "server/fetch.h"
#include "server/reqrep.h"

#define CONFLICT_PAGE_MAX 100
#define CANDIDATES_MAX 64 /* per path in one page; a path with more lists its oldest */

/* One page of ConflictInfo being built; owns everything it points to. */
struct clist {
	struct qs_meta *meta;
	uint64_t root_id;
	Quics__ConflictInfo **infos;
	size_t n, cap;
	int err;
};

static void clist_free(struct clist *cl)
{
	for (size_t i = 0; i < cl->n; i++) {
		Quics__ConflictInfo *ci = cl->infos[i];
		for (size_t k = 0; k < ci->n_candidates; k++) {
			qs_free(ci->candidates[k]->client_name);
			qs_free(ci->candidates[k]->content_hash.data);
			qs_free(ci->candidates[k]);
		}
		qs_free(ci->candidates);
		qs_free(ci->path);
		qs_free(ci);
	}
	qs_free(cl->infos);
}

static int add_candidate(void *arg, const struct qs_meta_candidate *c)
{
	Quics__ConflictInfo *ci = arg;
	if (ci->n_candidates == CANDIDATES_MAX)
		return 1;
	Quics__Candidate *out = qs_calloc(1, sizeof(*out));
	if (out == NULL)
		return QS_ENOMEM;
	Quics__Candidate init = QUICS__CANDIDATE__INIT;
	*out = init;
	ci->candidates[ci->n_candidates++] = out;
	out->candidate_id = c->id;
	out->client_id = c->client_id;
	out->client_name = qs_strdup(c->client_name);
	out->base_version = c->base_version;
	out->kind = (Quics__FileKind)(c->content.kind == QS_KIND_TOMBSTONE
					      ? QUICS__FILE_KIND__FILE_KIND_TOMBSTONE
					      : (int)c->content.kind);
	out->size = c->size;
	out->mtime_ns = c->mtime_ns;
	out->content_hash.data = qs_malloc(QS_CONTENT_HASH_LEN);
	out->proposed_unix_ms = c->proposed_unix_ms;
	if (out->client_name == NULL || out->content_hash.data == NULL)
		return QS_ENOMEM;
	memcpy(out->content_hash.data, c->content.hash, QS_CONTENT_HASH_LEN);
	out->content_hash.len = QS_CONTENT_HASH_LEN;
	return 0;
}

static int add_conflict(void *arg, const char *path, uint64_t server_version)
{
	struct clist *cl = arg;
	if (cl->n == cl->cap)
		return 1;
	Quics__ConflictInfo *ci = qs_calloc(1, sizeof(*ci));
	if (ci == NULL)
		return QS_ENOMEM;
	Quics__ConflictInfo init = QUICS__CONFLICT_INFO__INIT;
	*ci = init;
	cl->infos[cl->n++] = ci;
	ci->path = qs_strdup(path);
	ci->server_version = server_version;
	ci->candidates = qs_calloc(CANDIDATES_MAX, sizeof(*ci->candidates));
	if (ci->path == NULL || ci->candidates == NULL)
		return QS_ENOMEM;
	int rc = qs_meta_candidates(cl->meta, cl->root_id, path, 0, CANDIDATES_MAX, add_candidate,
				    ci);
	return rc == 1 ? 0 : rc;
}

static int on_conflict_list(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__ConflictListRequest *req = (const void *)msg;
	struct qis_daemon *d = r->s->d;
	if (!qs_meta_is_member(d->meta, r->s->client_id, req->root_id))
		return QS_EACCES;
	size_t limit =
		req->limit == 0 || req->limit > CONFLICT_PAGE_MAX ? CONFLICT_PAGE_MAX : req->limit;
	struct clist cl = {.meta = d->meta, .root_id = req->root_id, .cap = limit + 1};
	cl.infos = qs_calloc(cl.cap, sizeof(*cl.infos));
	int rc = cl.infos != NULL ? 0 : QS_ENOMEM;
	if (rc == 0)
		rc = qs_meta_conflicts(d->meta, req->root_id, req->cursor, cl.cap, add_conflict,
				       &cl);
	if (rc == 0 || rc == 1) {
		Quics__ConflictListResponse resp = QUICS__CONFLICT_LIST_RESPONSE__INIT;
		bool more = cl.n > limit;
		resp.n_conflicts = more ? limit : cl.n;
		resp.conflicts = cl.infos;
		resp.next_cursor = more ? cl.infos[limit - 1]->path : (char *)"";
		qis_reply(r, &resp.base);
		rc = 0;
	}
	clist_free(&cl);
	return rc;
}

static int on_conflict_choose(struct qis_req *r, const ProtobufCMessage *msg)
{
	const Quics__ConflictChooseRequest *req = (const void *)msg;
	struct qis_daemon *d = r->s->d;
	int rc = qs_path_check(req->path, strlen(req->path));
	if (rc != 0)
		return rc;
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_RESOLVE_CONFLICT;
	cmd.now_unix_ms = qis_now_unix_ms();
	cmd.client_id = r->s->client_id;
	cmd.u.resolve.root_id = req->root_id;
	cmd.u.resolve.path = req->path;
	cmd.u.resolve.candidate_id = req->candidate_id;
	cmd.u.resolve.server_version = req->server_version;
	struct qs_meta_result res;
	rc = qs_meta_apply(d->meta, &cmd, &res);
	if (rc == QS_ECONFLICT) {
		qis_reply_error(r, rc,
				"the path changed since the conflict was listed: list again");
		return 0;
	}
	if (rc == QS_ENOENT) {
		qis_reply_error(r, rc, "no open conflict with that candidate on that path");
		return 0;
	}
	if (rc == QS_EKIND) {
		qis_reply_error(
			r, rc,
			"that choice would put a file where the server's directory still "
			"holds paths, or below a file: move or delete those paths first, or "
			"choose another candidate");
		return 0;
	}
	if (rc != 0)
		return rc;
	qs_info("server",
		"event=conflict_resolved client=%llu root=%llu path=\"%s\" candidate=%llu"
		" version=%llu",
		(unsigned long long)cmd.client_id, (unsigned long long)req->root_id, req->path,
		(unsigned long long)req->candidate_id, (unsigned long long)res.decision.version);
	Quics__ConflictChooseResponse resp = QUICS__CONFLICT_CHOOSE_RESPONSE__INIT;
	resp.version = res.decision.version;
	qis_reply(r, &resp.base);
	qis_force_version(d, cmd.client_id, req->root_id, req->path,
			  QUICS__FORCE_REASON__FORCE_REASON_CONFLICT_CHOSEN);
	return 0;
}

/* CONFLICT_DOWNLOAD: a candidate's state (candidate 0: the path's current version) through
 * the shared download flow. Only members see a root's candidates. */
static int candidate_lookup(struct qis_session *s, const ProtobufCMessage *msg,
			    struct qs_meta_file *f, uint8_t **manifest)
{
	const Quics__ConflictDownloadRequest *req = (const void *)msg;
	int rc = qs_path_check(req->path, strlen(req->path));
	if (rc != 0)
		return rc;
	if (!qs_meta_is_member(s->d->meta, s->client_id, req->root_id))
		return QS_EACCES;
	struct qs_version_entry e;
	if (req->candidate_id != 0)
		return qs_meta_candidate_get(s->d->meta, req->root_id, req->path, req->candidate_id,
					     &e, f, manifest);
	rc = qs_meta_entry(s->d->meta, req->root_id, req->path, &e, f, manifest);
	return rc == 0 && e.version == 0 ? QS_ENOENT : rc;
}

static int candidate_first(struct qs_tx *tx, const Quics__FileState *st, void *arg)
{
	(void)arg;
	Quics__ConflictDownloadResponse resp = QUICS__CONFLICT_DOWNLOAD_RESPONSE__INIT;
	resp.state = (Quics__FileState *)st;
	return qs_tx_send_pb(tx, &resp.base);
}

int qis_tx_conflict(struct qis_session *s, struct qs_tx *tx, const char *name)
{
	if (strcmp(name, "CONFLICT_DOWNLOAD") == 0) {
		if (s->client_id == 0)
			return qis_refuse_unauthenticated(tx);
		return qis_download_accept(s, tx, &quics__conflict_download_request__descriptor,
					   candidate_lookup, candidate_first);
	}
	static const struct {
		const char *name;
		const ProtobufCMessageDescriptor *desc;
		qis_req_fn fn;
	} table[] = {
		{"CONFLICT_LIST", &quics__conflict_list_request__descriptor, on_conflict_list},
		{"CONFLICT_CHOOSE", &quics__conflict_choose_request__descriptor,
		 on_conflict_choose},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(name, table[i].name) != 0)
			continue;
		if (s->client_id == 0)
			return qis_refuse_unauthenticated(tx);
		return qis_req_accept(s, tx, table[i].desc, table[i].fn);
	}
	return QS_ENOENT;
}

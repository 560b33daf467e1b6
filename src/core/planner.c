/* Sync planner: one path's (local, index, server) -> one action, and the index updates
 * that follow (docs/versions.md). The invariant it keeps: local content is only ever
 * replaced (DOWNLOAD, DELETE_LOCAL) when the server already holds it, as an accepted
 * version (the index base) or as a conflict candidate. Pure functions. */
#include "core/planner.h"

#include "base/err.h"

static const struct qs_content tombstone = {QS_KIND_TOMBSTONE, {0}};

/* The content the planner compares against: what the stat fingerprint was taken of. */
static const struct qs_content *reference(const struct qs_plan_index *index)
{
	return index->conflicted ? &index->candidate : &index->base;
}

static uint64_t reference_version(const struct qs_plan_index *index)
{
	return index->conflicted ? index->conflict_version : index->base_version;
}

/* The local content: an unchanged file is what the fingerprint was taken of; a file with
 * no live reference must have been hashed. */
static const struct qs_content *effective_local(const struct qs_plan_local *local,
						const struct qs_plan_index *index)
{
	const struct qs_content *ref = reference(index);
	if (!local->present)
		return &tombstone;
	if (!local->changed && ref->kind != QS_KIND_TOMBSTONE)
		return ref;
	return &local->content;
}

static int check_index(const struct qs_plan_index *index)
{
	if (!qs_content_valid(&index->base))
		return QS_EINVAL;
	if (index->base_version == 0 && index->base.kind != QS_KIND_TOMBSTONE)
		return QS_EINVAL;
	if (!index->conflicted)
		return 0;
	if (!qs_content_valid(&index->candidate) || index->conflict_version <= index->base_version)
		return QS_EINVAL;
	if (index->base.kind == QS_KIND_TOMBSTONE && index->candidate.kind == QS_KIND_TOMBSTONE)
		return QS_EINVAL;
	return 0;
}

static int check_inputs(const struct qs_plan_local *local, const struct qs_plan_index *index,
			const struct qs_version_entry *server)
{
	int rc = check_index(index);
	if (rc != 0)
		return rc;
	const struct qs_content *cur = effective_local(local, index);
	if (!qs_content_valid(cur) || (local->present && cur->kind == QS_KIND_TOMBSTONE))
		return QS_EINVAL;
	if (!qs_content_valid(&server->content) ||
	    (server->version == 0 && server->content.kind != QS_KIND_TOMBSTONE))
		return QS_EINVAL;
	if (server->version < reference_version(index))
		return QS_EINVAL;
	if (!index->conflicted && server->version == index->base_version &&
	    !qs_content_equal(&server->content, &index->base))
		return QS_EPROTO;
	return 0;
}

/* The local content is what the server already holds (as base or candidate): follow the
 * server if it moved. */
static enum qs_action plan_unchanged(const struct qs_plan_index *index,
				     const struct qs_version_entry *server)
{
	if (server->version == reference_version(index))
		return QS_ACTION_NOTHING;
	if (server->content.kind == QS_KIND_TOMBSTONE)
		return QS_ACTION_DELETE_LOCAL;
	return QS_ACTION_DOWNLOAD;
}

/* The local content is new to the server: propose it. It fast-forwards when the server
 * still has our base, or when we create where the server has nothing; else the server
 * will keep it as a candidate. */
static enum qs_action plan_changed(const struct qs_content *cur, const struct qs_plan_index *index,
				   const struct qs_version_entry *server, struct qs_proposal *p)
{
	bool creating = index->base.kind == QS_KIND_TOMBSTONE;
	if (creating && cur->kind == QS_KIND_TOMBSTONE) {
		/* A conflicted create whose local file was removed: nothing of ours to keep or
		 * delete (the candidate stays on the server); take the server's content. */
		return QS_ACTION_DOWNLOAD;
	}
	p->base_version = creating ? 0 : index->base_version;
	p->content = *cur;
	bool base_current = !index->conflicted && server->version == index->base_version;
	bool over_nothing = creating && server->content.kind == QS_KIND_TOMBSTONE;
	if (!base_current && !over_nothing)
		return QS_ACTION_CONFLICT;
	return cur->kind == QS_KIND_TOMBSTONE ? QS_ACTION_DELETE_REMOTE : QS_ACTION_UPLOAD;
}

int qs_plan_path(const struct qs_plan_local *local, const struct qs_plan_index *index,
		 const struct qs_version_entry *server, struct qs_plan *out)
{
	int rc = check_inputs(local, index, server);
	if (rc != 0)
		return rc;
	const struct qs_content *cur = effective_local(local, index);
	struct qs_plan plan = {QS_ACTION_NOTHING, {0, {QS_KIND_TOMBSTONE, {0}}}, server->version};
	if (qs_content_equal(cur, &server->content)) {
		bool recorded = !index->conflicted && server->version == index->base_version;
		plan.action = recorded ? QS_ACTION_NOTHING : QS_ACTION_ADOPT;
	} else if (qs_content_equal(cur, reference(index))) {
		plan.action = plan_unchanged(index, server);
	} else {
		plan.action = plan_changed(cur, index, server, &plan.proposal);
	}
	*out = plan;
	return 0;
}

void qs_plan_index_agree(struct qs_plan_index *index, const struct qs_version_entry *entry)
{
	struct qs_plan_index agreed = {entry->version, entry->content, false, 0, tombstone};
	*index = agreed;
}

int qs_plan_index_answer(struct qs_plan_index *index, const struct qs_proposal *p,
			 const struct qs_decision *d)
{
	struct qs_version_entry entry = {d->version, p->content};
	switch (d->verdict) {
	case QS_VERDICT_FAST_FORWARD:
	case QS_VERDICT_SAME: qs_plan_index_agree(index, &entry); return 0;
	case QS_VERDICT_CONFLICT:
		if (d->version <= index->base_version || !qs_content_valid(&p->content))
			return QS_EINVAL;
		if (index->base.kind == QS_KIND_TOMBSTONE && p->content.kind == QS_KIND_TOMBSTONE)
			return QS_EINVAL;
		index->conflicted = true;
		index->conflict_version = d->version;
		index->candidate = p->content;
		return 0;
	default: return QS_EINVAL;
	}
}

const char *qs_action_name(enum qs_action a)
{
	switch (a) {
	case QS_ACTION_NOTHING: return "nothing";
	case QS_ACTION_UPLOAD: return "upload";
	case QS_ACTION_DELETE_REMOTE: return "delete-remote";
	case QS_ACTION_DOWNLOAD: return "download";
	case QS_ACTION_DELETE_LOCAL: return "delete-local";
	case QS_ACTION_CONFLICT: return "conflict";
	case QS_ACTION_ADOPT: return "adopt";
	default: return "?";
	}
}

/* Version rules: the decision the server makes for every proposed change (docs/versions.md).
 * Versions of a path start at 1 and grow by exactly 1 per accepted change; version 0 is a
 * path that never existed and behaves as a tombstone. Pure functions, no state. */
#include "core/version.h"

#include <string.h>

#include "base/err.h"

bool qs_content_valid(const struct qs_content *c)
{
	switch (c->kind) {
	case QS_KIND_TOMBSTONE:
	case QS_KIND_FILE:
	case QS_KIND_DIR:
	case QS_KIND_SYMLINK: return true;
	default: return false;
	}
}

static bool has_hash(enum qs_kind kind)
{
	return kind == QS_KIND_FILE || kind == QS_KIND_SYMLINK || kind == QS_KIND_DIR;
}

bool qs_content_equal(const struct qs_content *a, const struct qs_content *b)
{
	if (a->kind != b->kind)
		return false;
	return !has_hash(a->kind) || memcmp(a->hash, b->hash, QS_CONTENT_HASH_LEN) == 0;
}

static bool entry_valid(const struct qs_version_entry *e)
{
	return qs_content_valid(&e->content) &&
	       (e->version > 0 || e->content.kind == QS_KIND_TOMBSTONE);
}

/* Names the conflict between a refused proposal and the live or deleted server content;
 * the deletes come first, then the kinds, then how the proposal started. */
static enum qs_conflict classify(const struct qs_content *server, const struct qs_proposal *p)
{
	if (p->content.kind == QS_KIND_TOMBSTONE)
		return QS_CONFLICT_DELETE_MODIFY;
	if (server->kind == QS_KIND_TOMBSTONE)
		return QS_CONFLICT_MODIFY_DELETE;
	if (server->kind != p->content.kind)
		return QS_CONFLICT_KIND;
	return p->base_version == 0 ? QS_CONFLICT_CREATE_CREATE : QS_CONFLICT_MODIFY_MODIFY;
}

int qs_version_decide(const struct qs_version_entry *server, const struct qs_proposal *p,
		      struct qs_decision *out)
{
	if (!entry_valid(server))
		return QS_EINVAL;
	if (!qs_content_valid(&p->content) || p->base_version > server->version)
		return QS_EPROTO;

	struct qs_decision d = {QS_VERDICT_SAME, QS_CONFLICT_NONE, server->version};
	bool creating_over_nothing =
		p->base_version == 0 && server->content.kind == QS_KIND_TOMBSTONE;
	if (qs_content_equal(&p->content, &server->content)) {
		/* Same content, whatever the base: no new version (also makes retries idempotent).
		 */
	} else if (p->base_version == server->version || creating_over_nothing ||
		   (p->content.kind == QS_KIND_DIR && server->content.kind == QS_KIND_DIR)) {
		/* A directory against a directory differs only in its mode: the last proposal
		 * wins, whatever its base (two clients making the same directory with other
		 * umasks is not a conflict to put before a user). */
		if (server->version == UINT64_MAX)
			return QS_E2BIG;
		d.verdict = QS_VERDICT_FAST_FORWARD;
		d.version = server->version + 1;
	} else {
		d.verdict = QS_VERDICT_CONFLICT;
		d.conflict = classify(&server->content, p);
	}
	*out = d;
	return 0;
}

int qs_version_compare(const struct qs_version_entry *a, const struct qs_version_entry *b,
		       int *order)
{
	if (!entry_valid(a) || !entry_valid(b))
		return QS_EINVAL;
	if (a->version == b->version && !qs_content_equal(&a->content, &b->content))
		return QS_EPROTO;
	*order = (a->version > b->version) - (a->version < b->version);
	return 0;
}

const char *qs_verdict_name(enum qs_verdict v)
{
	switch (v) {
	case QS_VERDICT_FAST_FORWARD: return "fast-forward";
	case QS_VERDICT_SAME: return "same";
	case QS_VERDICT_CONFLICT: return "conflict";
	default: return "?";
	}
}

const char *qs_conflict_name(enum qs_conflict c)
{
	switch (c) {
	case QS_CONFLICT_NONE: return "none";
	case QS_CONFLICT_MODIFY_MODIFY: return "modify-vs-modify";
	case QS_CONFLICT_DELETE_MODIFY: return "delete-vs-modify";
	case QS_CONFLICT_MODIFY_DELETE: return "modify-vs-delete";
	case QS_CONFLICT_CREATE_CREATE: return "create-vs-create";
	case QS_CONFLICT_KIND: return "kind";
	default: return "?";
	}
}

/* Sync planner (docs/versions.md, "Planner"): for one path, turns the local state, the
 * client index entry and the newest server entry the client knows into exactly one action,
 * and defines how the index changes once the action is done. Pure functions: no I/O, no
 * clock, no state; safe from any thread. Paths are independent here: ordering across paths
 * (parents before children, children before removing a directory) is the caller's. */
#ifndef QS_CORE_PLANNER_H
#define QS_CORE_PLANNER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/version.h"

enum qs_action {
	QS_ACTION_NOTHING = 0,
	QS_ACTION_UPLOAD = 1, /* send plan.proposal; expected to fast-forward */
	QS_ACTION_DELETE_REMOTE =
		2,                  /* send plan.proposal (a tombstone); expected to fast-forward */
	QS_ACTION_DOWNLOAD = 3,     /* fetch plan.version and write it locally */
	QS_ACTION_DELETE_LOCAL = 4, /* remove the local copy (plan.version is a tombstone) */
	QS_ACTION_CONFLICT = 5,     /* send plan.proposal; expected to be kept as a candidate */
	QS_ACTION_ADOPT = 6,        /* local content already equals plan.version: record it */
};

/* The local file as the caller sees it now. */
struct qs_plan_local {
	bool present;
	/* The stat fingerprint differs from the one in the index (or there is none). */
	bool changed;
	/* Kind and hash of the local file. Read only when present and changed, or when the
	 * index has no live content to stand for it; otherwise the caller need not hash. */
	struct qs_content content;
};

/* The client index entry: what this client last agreed with the server, and a pending
 * conflict. A zeroed struct is "no entry". The stat fingerprint is the caller's; it was
 * taken of `candidate` when conflicted, of `base` otherwise. */
struct qs_plan_index {
	uint64_t base_version;       /* 0: no entry */
	struct qs_content base;      /* the content at base_version (a tombstone at version 0) */
	bool conflicted;             /* the server kept our proposal as a conflict candidate */
	uint64_t conflict_version;   /* the server's version when it did (> base_version) */
	struct qs_content candidate; /* the content we proposed then (the local file's) */
};

struct qs_plan {
	enum qs_action action;
	/* UPLOAD, DELETE_REMOTE, CONFLICT: what to send. base_version is 0 when the client is
	 * creating (its index holds no live content), else the index base. */
	struct qs_proposal proposal;
	/* DOWNLOAD, DELETE_LOCAL, ADOPT: the server version to fetch or record. */
	uint64_t version;
};

/* Plans one path. server is the newest entry the client knows (a zeroed struct if it knows
 * none); it must not be older than what the index holds. Writes *out only on success.
 * Errors: QS_EINVAL (an unknown kind; a present local file with a tombstone kind; an index
 * with content at version 0, a conflict version not above its base, or a tombstone
 * candidate for a tombstone base; a server entry older than the index base or conflict
 * version, or live at version 0); QS_EPROTO (the server shows the index's base version
 * with different content: the two come from different histories). */
int qs_plan_path(const struct qs_plan_local *local, const struct qs_plan_index *index,
		 const struct qs_version_entry *server, struct qs_plan *out);

/* After any action, NOTHING included, the local content equals what the updated index
 * refers to (base, or candidate when conflicted), so the caller re-takes the stat
 * fingerprint then. */

/* Records that the local copy now equals the server entry (after DOWNLOAD, DELETE_LOCAL,
 * ADOPT): index := {entry->version, entry->content}, no conflict. The caller re-takes the
 * stat fingerprint of the local file. */
void qs_plan_index_agree(struct qs_plan_index *index, const struct qs_version_entry *entry);

/* Records the server's answer d to proposal p (sent for UPLOAD, DELETE_REMOTE or
 * CONFLICT): fast-forward and same agree with {d->version, p->content}; conflict marks
 * the entry conflicted with candidate p->content at d->version, keeping the base. The
 * caller re-takes the stat fingerprint. Errors: QS_EINVAL (unknown verdict, or a conflict
 * version not above the base); *index is unchanged on error. */
int qs_plan_index_answer(struct qs_plan_index *index, const struct qs_proposal *p,
			 const struct qs_decision *d);

/* Static name for logs: "nothing", "upload", ... ("?" if unknown). */
const char *qs_action_name(enum qs_action a);

#endif

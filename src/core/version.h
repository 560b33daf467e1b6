/* Version rules (DESIGN.md section 3, docs/versions.md): how the server decides a proposed
 * change to one path against its current entry (fast-forward, same content, or conflict),
 * and how two versions of one path are ordered. Pure functions: no I/O, no clock, no state;
 * safe from any thread. */
#ifndef QS_CORE_VERSION_H
#define QS_CORE_VERSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/sha256.h"

#define QS_CONTENT_HASH_LEN QS_SHA256_LEN

/* What a path is. A tombstone is a deleted path; version 0 (never existed) is also treated
 * as a tombstone, so "absent" needs no separate case. */
enum qs_kind {
	QS_KIND_TOMBSTONE = 0,
	QS_KIND_FILE = 1,
	QS_KIND_DIR = 2,
	QS_KIND_SYMLINK = 3,
};

/* What a path holds. The hash identifies the content: a file's manifest hash, a symlink's
 * target hash, a directory's mode hash (core/content.h). It is ignored for tombstones, which
 * have no content. Callers that want metadata such as the mode to count as a change fold it
 * into the hash. A directory against a directory is never a conflict: the newer proposal's
 * mode wins (qs_version_decide). */
struct qs_content {
	enum qs_kind kind;
	uint8_t hash[QS_CONTENT_HASH_LEN];
};

/* The server's entry for one path. version 0: no entry (the path never existed); content
 * is then a tombstone. A zeroed struct is a valid absent entry. */
struct qs_version_entry {
	uint64_t version;
	struct qs_content content;
};

/* A client's proposed change: the content it wants and the version it started from
 * (base_version 0: it is creating a path it never had). Deleting is proposing a tombstone. */
struct qs_proposal {
	uint64_t base_version;
	struct qs_content content;
};

enum qs_verdict {
	QS_VERDICT_FAST_FORWARD = 1, /* accepted: the entry becomes decision.version */
	QS_VERDICT_SAME = 2,         /* accepted, nothing to store: the client adopts .version */
	QS_VERDICT_CONFLICT = 3,     /* refused: the proposal is kept as a conflict candidate */
};

/* The kind of a conflict, named "<proposal>-vs-<server>". */
enum qs_conflict {
	QS_CONFLICT_NONE = 0,
	QS_CONFLICT_MODIFY_MODIFY = 1, /* both changed the content */
	QS_CONFLICT_DELETE_MODIFY = 2, /* the proposal deletes what the server changed */
	QS_CONFLICT_MODIFY_DELETE = 3, /* the proposal changes what the server deleted */
	QS_CONFLICT_CREATE_CREATE = 4, /* both created the path with different content */
	QS_CONFLICT_KIND = 5,          /* both live, different kinds (dir-vs-file, ...) */
};

struct qs_decision {
	enum qs_verdict verdict;
	enum qs_conflict conflict; /* QS_CONFLICT_NONE unless verdict is QS_VERDICT_CONFLICT */
	/* FAST_FORWARD: the new version (server version + 1); SAME: the server's version, which
	 * the client records as its base; CONFLICT: the server's version, left unchanged. */
	uint64_t version;
};

/* True if c->kind is one of enum qs_kind. */
bool qs_content_valid(const struct qs_content *c);
/* True if a and b are the same kind and, for files and symlinks, have the same hash. */
bool qs_content_equal(const struct qs_content *a, const struct qs_content *b);

/* Decides proposal p against the server's current entry. Writes *out only on success.
 * Errors: QS_EINVAL (server entry invalid: unknown kind, or version 0 that is not a
 * tombstone); QS_EPROTO (the proposal is one no correct client sends: unknown kind, base
 * newer than the server's version, or a tombstone with base 0, i.e. deleting a path the
 * client never had); QS_E2BIG (the version would pass UINT64_MAX). */
int qs_version_decide(const struct qs_version_entry *server, const struct qs_proposal *p,
		      struct qs_decision *out);

/* Orders two entries of the same path, absent (version 0) oldest: *order < 0 if a is older
 * than b, 0 if they are the same version, > 0 if a is the latest. Writes *order only on
 * success. Errors: QS_EINVAL (an invalid entry); QS_EPROTO (same version, different
 * content: the two come from different histories). */
int qs_version_compare(const struct qs_version_entry *a, const struct qs_version_entry *b,
		       int *order);

/* Static names for logs: "fast-forward", "modify-vs-delete", ... ("?" if unknown). */
const char *qs_verdict_name(enum qs_verdict v);
const char *qs_conflict_name(enum qs_conflict c);

#endif

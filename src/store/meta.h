/* Server metadata store (SQLite): clients, roots, file entries and every accepted version.
 * Every mutation goes through qs_meta_apply, which applies one command in one SQLite
 * transaction (DESIGN.md section 2: distributed mode replicates exactly this command stream,
 * so nothing else writes). Commands are plain data and their apply is deterministic: the
 * caller supplies ids' randomness (tokens, salts) and the wall-clock time inside the command.
 * One thread at a time (the server's loop thread); SQLite runs in WAL mode.
 *
 * Durability: qs_meta_apply returns after the transaction committed with synchronous=FULL,
 * unless the store is in a group (qs_meta_group_begin/_commit), where the commit at
 * _commit makes all commands of the group durable at once (group commit). */
#ifndef QS_STORE_META_H
#define QS_STORE_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/version.h"

#define QS_META_TOKEN_LEN 32
#define QS_META_SALT_LEN 16
#define QS_META_NAME_MAX 255

struct qs_meta;

enum qs_meta_cmd_type {
	QS_CMD_REGISTER_CLIENT = 1, /* new client id with a token hash */
	QS_CMD_REGISTER_ROOT = 2,   /* new root (name, password hash); the client joins it */
	QS_CMD_JOIN_ROOT = 3,
	QS_CMD_LEAVE_ROOT = 4,
	QS_CMD_PUT_VERSION = 5, /* propose a version of a path (decided by core/version.h) */
	QS_CMD_SET_SERVER_PASSWORD = 6,
	/* the user's choice for a conflicted path: a candidate (or the server's version)
	 * becomes version + 1 and every candidate of the path is dropped */
	QS_CMD_RESOLVE_CONFLICT = 7,
	QS_CMD_MOVE = 8,     /* a path (a directory with everything below it) takes a new name */
	QS_CMD_ROLLBACK = 9, /* an old version's content becomes the path's new version */
	QS_CMD_PRUNE = 10,   /* retention: delete versions the policy no longer keeps */
	QS_CMD_DELETE_TREE = 11, /* a directory deleted with what the client knew below it */
};

/* A move applies to at most this many paths (the directory and everything below it), whose
 * new names total at most QS_META_MOVE_MAX_PATH_BYTES: the reply listing them fits one MSG. */
#define QS_META_MOVE_MAX 10000
#define QS_META_MOVE_MAX_PATH_BYTES ((size_t)2 << 20)

/* What made a version (versions.op; docs/store.md). A MOVE records rename at the new name
 * (its old name gets a delete). */
enum qs_meta_op {
	QS_OP_UNKNOWN = 0, /* not recorded */
	QS_OP_CREATE = 1,  /* the path was absent or deleted before */
	QS_OP_MODIFY = 2,
	QS_OP_DELETE = 3, /* a tombstone */
	QS_OP_RENAME = 4,
	QS_OP_ROLLBACK = 5, /* a copy of an older version (QS_CMD_ROLLBACK) */
	QS_OP_RESOLVE = 6,  /* a conflict candidate chosen by a user */
};
#define QS_OP_MAX QS_OP_RESOLVE

/* "create", "modify", ...; "unknown" for anything else. */
const char *qs_meta_op_name(enum qs_meta_op op);

/* A file version's stored form: content identity (kind + hash), metadata, and the encoded
 * manifest (core/manifest.h encoding; empty for dirs/tombstones) or symlink target. */
struct qs_meta_file {
	struct qs_content content; /* kind and content hash */
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	const uint8_t *manifest; /* borrowed: encoded manifest, or the symlink target bytes */
	size_t manifest_len;
};

struct qs_meta_cmd {
	enum qs_meta_cmd_type type;
	int64_t now_unix_ms; /* wall clock at the proposer, for display only, never ordering */
	uint64_t client_id;  /* the acting client (0 for REGISTER_CLIENT / SET_SERVER_PASSWORD) */
	union {
		struct {
			char name[QS_META_NAME_MAX + 1];
			uint8_t token_hash[32]; /* SHA-256 of the token; the token itself never
						   stored */
		} register_client;
		struct {
			char name[QS_META_NAME_MAX + 1];
			char password_hash[128]; /* Argon2id encoded hash (qs_password_hash) */
		} register_root;
		struct {
			uint64_t root_id;
		} join_root, leave_root;
		struct {
			uint64_t root_id;
			const char *path; /* borrowed, validated (base/path.h) */
			uint64_t base_version;
			struct qs_meta_file file;
		} put_version;
		struct {
			char password_hash[128];
		} set_server_password;
		struct {
			uint64_t root_id;
			const char *path;        /* borrowed, validated */
			uint64_t candidate_id;   /* 0: keep the server's content */
			uint64_t server_version; /* the version the user saw (else QS_ECONFLICT) */
		} resolve;
		/* "to is what from was": from's current entry must have from_version and
		 * content (what the mover last agreed); to must be a fast-forward from
		 * to_base_version with that content; a directory's live entries below from
		 * move below to, where nothing may be live. Every moved path gets a new
		 * version at its new place (the same row but modified_by and accepted time) and
		 * a tombstone at its old place. */
		struct {
			uint64_t root_id;
			const char *from, *to; /* borrowed, validated (base/path.h) */
			uint64_t from_version;
			uint64_t to_base_version;
			struct qs_content content;
		} move;
		struct {
			uint64_t root_id;
			const char *path; /* borrowed, validated (base/path.h) */
			uint64_t version; /* the old version whose content becomes current */
			uint64_t current_version; /* what the user saw; else QS_ECONFLICT */
		} rollback;
		/* Retention, per path: a version that is not the path's current one is deleted
		 * when it is older than the keep_versions newest (if keep_versions > 0) and was
		 * accepted more than keep_days days before now_unix_ms (if keep_days > 0). Both 0:
		 * nothing is deleted (keep everything). */
		struct {
			uint32_t keep_versions;
			uint32_t keep_days;
		} prune;
		/* "path was deleted with everything below it": path's current entry must be a
		 * directory at base_version (else QS_ECONFLICT, nothing changes). Each of the n
		 * paths below it (strictly below, in strictly increasing byte order, at most
		 * QS_META_MOVE_MAX) whose current entry is live at versions[i] gets a tombstone
		 * at versions[i] + 1 and deleted[i] = true (a directory only once nothing live
		 * is left below it); every other path stays as it is (deleted[i] = false): a
		 * change the client did not see is never deleted. path itself gets a tombstone
		 * once nothing live is left below it. deleted (n flags, caller-owned) is written
		 * only on success. */
		struct {
			uint64_t root_id;
			const char *path;         /* borrowed, validated (base/path.h) */
			uint64_t base_version;    /* path's version the client agreed */
			const char *const *paths; /* borrowed */
			const uint64_t *versions; /* the versions the client agreed */
			size_t n;
			bool *deleted;
			bool keep; /* path itself stays (files deleted from a directory) */
		} delete_tree;
	} u;
};

struct qs_meta_result {
	uint64_t id;                 /* REGISTER_CLIENT: client id; REGISTER_ROOT: root id */
	struct qs_decision decision; /* PUT_VERSION: verdict and the resulting/current version;
					RESOLVE_CONFLICT: the new version;
					MOVE: fast-forward and to's new version;
					ROLLBACK: FAST_FORWARD and the new version, or SAME and
					the current version when it is the one asked for;
					DELETE_TREE: fast-forward and path's tombstone
					version, or SAME and its version when it stays */
	/* PUT_VERSION with a CONFLICT verdict: the candidate that now holds the proposal (the
	 * client's earlier candidate for the path, updated, or a new one). */
	uint64_t candidate_id;
	uint64_t pruned; /* PRUNE: versions deleted */
};

/* Opens (creating if needed) the database at path, runs schema migrations up to the current
 * version. Errors: QS_EIO (cannot open, or a newer schema than this build knows), QS_ENOMEM. */
int qs_meta_open(const char *path, struct qs_meta **out);
void qs_meta_close(struct qs_meta *m);
int qs_meta_schema_version(struct qs_meta *m);

/* Applies one command atomically. A PUT_VERSION that conflicts stores the proposal as the
 * proposing client's conflict candidate for the path (one per client and path: a later
 * conflicting proposal replaces its content, keeping its id); its chunks stay referenced.
 * RESOLVE_CONFLICT errors: QS_ENOENT (no open conflict on the path, or no such candidate),
 * QS_ECONFLICT (server_version is no longer current). Errors: QS_EEXIST (name taken), QS_ENOENT
 * (unknown client/root), QS_EACCES (client has not joined the root), QS_EPROTO (the version rules
 * refuse the proposal as malformed), QS_EIO. A conflict is not an error: it is the
 * decision's verdict. On error nothing changed. *res is written only on success.
 * Also QS_EINVAL (a field no correct caller sends: a name that is empty, unterminated,
 * longer than 255 bytes, not UTF-8 or with control characters; an empty or unterminated
 * password hash; an invalid path; a manifest for a dir/tombstone; size above INT64_MAX; an
 * unknown command type), QS_E2BIG (the new version would pass INT64_MAX), QS_ENOSPC.
 * MOVE also fails with QS_ECONFLICT (from is not at from_version with that content, to is
 * not a fast-forward, or a live entry is below to), QS_E2BIG (more than QS_META_MOVE_MAX
 * paths or QS_META_MOVE_MAX_PATH_BYTES of new names), QS_EPATH_TOO_LONG (a new name would
 * pass QS_PATH_MAX) and QS_EINVAL (from equals to, or one is inside the other).
 * DELETE_TREE also fails with QS_ECONFLICT (path is not a directory at base_version),
 * QS_E2BIG (more than QS_META_MOVE_MAX paths) and QS_EINVAL (a path not strictly below path,
 * or out of order).
 * JOIN_ROOT of a member and LEAVE_ROOT of a non-member succeed and change nothing (retries
 * get the same answer); the root password is checked by the caller before JOIN_ROOT.
 * Commands that changed something are appended to the commands log (docs/store.md). */
int qs_meta_apply(struct qs_meta *m, const struct qs_meta_cmd *cmd, struct qs_meta_result *res);

/* Group commit. _begin opens one transaction that every qs_meta_apply joins until _commit;
 * each command of the group still runs in its own SAVEPOINT, so a failing command rolls back
 * only its own changes (its error is returned by qs_meta_apply, the others stay). Nothing of
 * the group is durable, and no result of it may be acknowledged, until _commit returns 0.
 * Queries see the group's uncommitted changes. _rollback discards the whole group (for
 * instance when the chunks its commands reference could not be synced).
 * Errors: QS_ESTATE (_begin inside a group, _commit/_rollback outside one), QS_EIO (the
 * commit failed, or SQLite had already aborted the group after an I/O error in one of its
 * commands: nothing of the group was stored), QS_ENOSPC. */
int qs_meta_group_begin(struct qs_meta *m);
int qs_meta_group_commit(struct qs_meta *m);
int qs_meta_group_rollback(struct qs_meta *m);

/* ---- queries (read-only) ---- */

/* Verifies a client's token (constant-time compare of SHA-256(token)). Errors: QS_ENOENT,
 * QS_EACCES (wrong token). */
int qs_meta_client_check(struct qs_meta *m, uint64_t client_id,
			 const uint8_t token[QS_META_TOKEN_LEN]);
/* The stored server password hash ("" if none set) into out (cap >= 128). */
int qs_meta_server_password(struct qs_meta *m, char *out, size_t cap);
/* Root lookup by name: id and password hash. Errors: QS_ENOENT. */
int qs_meta_root_by_name(struct qs_meta *m, const char *name, uint64_t *root_id,
			 char *password_hash, size_t cap);
bool qs_meta_is_member(struct qs_meta *m, uint64_t client_id, uint64_t root_id);

/* The current entry of a path (version 0 and tombstone content when absent). The manifest
 * is copied into *manifest (caller frees with qs_free; NULL when empty) and file->manifest
 * points into that copy. file and manifest may be NULL when not wanted. Outputs are written
 * only on success. Errors: QS_EINVAL (invalid path), QS_ENOMEM, QS_EIO. */
int qs_meta_entry(struct qs_meta *m, uint64_t root_id, const char *path,
		  struct qs_version_entry *entry, struct qs_meta_file *file, uint8_t **manifest);

/* Calls fn for each current entry of a root with path > after (byte order; NULL: from the
 * start), at most limit entries; fn returning nonzero stops and is returned. fn may run
 * queries but must not apply commands. Errors: QS_EIO. */
typedef int (*qs_meta_entry_fn)(void *arg, const char *path, const struct qs_version_entry *e);
int qs_meta_list(struct qs_meta *m, uint64_t root_id, const char *after, size_t limit,
		 qs_meta_entry_fn fn, void *arg);

/* Whether a version of root_id uses the chunk (so a client of that root may skip uploading
 * it). Errors: QS_EIO. */
int qs_meta_root_has_chunk(struct qs_meta *m, uint64_t root_id, const uint8_t hash[32],
			   bool *present);

/* Roots with name > after (byte order), at most limit, with whether client_id joined each;
 * fn returning nonzero stops and is returned. */
typedef int (*qs_meta_root_fn)(void *arg, uint64_t root_id, const char *name, bool joined);
int qs_meta_roots(struct qs_meta *m, uint64_t client_id, const char *after, size_t limit,
		  qs_meta_root_fn fn, void *arg);

/* Calls fn for each member of a root, in id order (for MUST_SYNC fan-out); the same rules
 * for fn as qs_meta_list. Errors: QS_EIO. */
typedef int (*qs_meta_id_fn)(void *arg, uint64_t id);
int qs_meta_members(struct qs_meta *m, uint64_t root_id, qs_meta_id_fn fn, void *arg);

/* ---- admin queries (read-only; the qis admin API, docs/server.md) ---- */

struct qs_meta_client_info {
	uint64_t id;
	char name[QS_META_NAME_MAX + 1];
	int64_t created_unix_ms;
};

/* Calls fn for each client with id > after_id, in id order, at most limit; fn returning
 * nonzero stops and is returned (fn's struct is valid during the call only). The same rules
 * for fn as qs_meta_list. Errors: QS_EIO, QS_ENOMEM. */
typedef int (*qs_meta_client_fn)(void *arg, const struct qs_meta_client_info *c);
int qs_meta_clients(struct qs_meta *m, uint64_t after_id, size_t limit, qs_meta_client_fn fn,
		    void *arg);
/* One client into *out (written only on success). Errors: QS_ENOENT, QS_EIO, QS_ENOMEM. */
int qs_meta_client(struct qs_meta *m, uint64_t client_id, struct qs_meta_client_info *out);

struct qs_meta_root_info {
	uint64_t id;
	char name[QS_META_NAME_MAX + 1];
	uint64_t created_by; /* the client that registered it */
	int64_t created_unix_ms;
};

/* One root into *out (written only on success). Errors: QS_ENOENT, QS_EIO, QS_ENOMEM. */
int qs_meta_root(struct qs_meta *m, uint64_t root_id, struct qs_meta_root_info *out);
/* Calls fn (joined is always true) for each root client_id has joined, in name order; the
 * same rules for fn as qs_meta_list. Errors: QS_EIO, QS_ENOMEM. */
int qs_meta_client_roots(struct qs_meta *m, uint64_t client_id, qs_meta_root_fn fn, void *arg);

/* A stored version of a path (a versions row, or the entries row that is its current one)
 * without the manifest. */
struct qs_meta_version_info {
	const char *path; /* borrowed: valid during the callback (or as the caller's path) */
	uint64_t version;
	struct qs_content content; /* kind, and the hash of a file or symlink (else zeros) */
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	uint64_t modified_by; /* the client whose proposal it was */
	int64_t accepted_unix_ms;
	enum qs_meta_op op; /* what made it (QS_OP_UNKNOWN for entries rows) */
};
typedef int (*qs_meta_version_fn)(void *arg, const struct qs_meta_version_info *v);

/* Calls fn for each current entry of root_id below dir (dir NULL or "": the whole root;
 * otherwise the paths that start with dir + "/", at any depth) with path > after (NULL: from
 * the start), in byte order, at most limit entries; tombstones (deleted paths) only when
 * with_deleted. The same rules for fn as qs_meta_list. Errors: QS_EINVAL (dir is not a valid
 * path), QS_EIO, QS_ENOMEM. */
int qs_meta_entries_below(struct qs_meta *m, uint64_t root_id, const char *dir, const char *after,
			  bool with_deleted, size_t limit, qs_meta_version_fn fn, void *arg);
/* The current entry of root_id/path with its metadata into *out (out->path is path; written
 * only on success). A deleted path has a tombstone entry. Errors: QS_EINVAL (invalid path),
 * QS_ENOENT (the path never existed), QS_EIO. */
int qs_meta_entry_info(struct qs_meta *m, uint64_t root_id, const char *path,
		       struct qs_meta_version_info *out);
/* Calls fn for each stored version of root_id/path with version > after_version, in version
 * order, at most limit; the same rules for fn as qs_meta_list. A path with no version calls
 * fn never. Errors: QS_EINVAL (invalid path), QS_EIO, QS_ENOMEM. */
int qs_meta_history(struct qs_meta *m, uint64_t root_id, const char *path, uint64_t after_version,
		    size_t limit, qs_meta_version_fn fn, void *arg);

/* ---- conflicts ---- */

struct qs_meta_candidate {
	uint64_t id;
	uint64_t root_id;
	const char *path; /* borrowed: valid during the callback */
	uint64_t client_id;
	char client_name[QS_META_NAME_MAX + 1];
	uint64_t base_version;
	struct qs_content content;
	uint32_t mode;
	int64_t mtime_ns;
	uint64_t size;
	int64_t proposed_unix_ms;
};
typedef int (*qs_meta_candidate_fn)(void *arg, const struct qs_meta_candidate *c);

/* Calls fn for each path of root_id with an open conflict and path > after (NULL: from the
 * start), in byte order, at most limit, with the path's current version; the same rules for
 * fn as qs_meta_list. Errors: QS_EIO, QS_ENOMEM. */
typedef int (*qs_meta_conflict_fn)(void *arg, const char *path, uint64_t server_version);
int qs_meta_conflicts(struct qs_meta *m, uint64_t root_id, const char *after, size_t limit,
		      qs_meta_conflict_fn fn, void *arg);
/* Calls fn for each candidate of root_id/path, oldest first (root_id 0 and path NULL: every
 * candidate of every root with id > after_id, in id order, at most limit). Errors: QS_EIO,
 * QS_ENOMEM. */
int qs_meta_candidates(struct qs_meta *m, uint64_t root_id, const char *path, uint64_t after_id,
		       size_t limit, qs_meta_candidate_fn fn, void *arg);
/* One candidate's full state (as qs_meta_entry: *manifest is a copy the caller frees; entry
 * gets the path's current version and the candidate's content). Errors: QS_ENOENT (no such
 * candidate of that path), QS_EINVAL, QS_EIO, QS_ENOMEM. */
int qs_meta_candidate_get(struct qs_meta *m, uint64_t root_id, const char *path,
			  uint64_t candidate_id, struct qs_version_entry *entry,
			  struct qs_meta_file *file, uint8_t **manifest);
/* The content of client_id's candidate for root_id/path into *out and its id into *id
 * (0 when the client has none; out untouched then). Errors: QS_EIO. */
int qs_meta_candidate_of(struct qs_meta *m, uint64_t root_id, const char *path, uint64_t client_id,
			 struct qs_content *out, uint64_t *id);
/* One stored version of root_id/path: its metadata into *info (info->path is path), its file
 * into *file with the manifest copied into *manifest (caller frees with qs_free; NULL when
 * empty; file->manifest points into it). info, file and manifest may be NULL when not
 * wanted; outputs are written only on success. Errors: QS_EINVAL (invalid path), QS_ENOENT
 * (no such version: never stored, or pruned), QS_EIO, QS_ENOMEM. */
int qs_meta_version_get(struct qs_meta *m, uint64_t root_id, const char *path, uint64_t version,
			struct qs_meta_version_info *info, struct qs_meta_file *file,
			uint8_t **manifest);
/* As qs_meta_history, newest first: versions < before_version (0: from the newest). */
int qs_meta_history_desc(struct qs_meta *m, uint64_t root_id, const char *path,
			 uint64_t before_version, size_t limit, qs_meta_version_fn fn, void *arg);

/* Calls fn for every chunk hash a stored version references (each file version's manifest,
 * so a hash may come several times), for the chunk garbage collector: a chunk no call names
 * is garbage unless an upload in flight pins it (store/chunks.h). fn returning nonzero
 * stops and is returned. Errors: QS_EIO (also an undecodable stored manifest), QS_ENOMEM. */
typedef int (*qs_meta_hash_fn)(void *arg, const uint8_t hash[32]);
int qs_meta_chunk_refs(struct qs_meta *m, qs_meta_hash_fn fn, void *arg);

#endif

/* Client index (docs/index.md): a client's own SQLite database. For each (root, path) it
 * holds what the client last agreed with the server (base version, content identity, the
 * version's mode, mtime and encoded manifest), the stat fingerprint the local file had when
 * it matched that content (so an unchanged file is never re-read), a pending conflict, and
 * whether a received file is durable yet (DESIGN.md section 5: received files are synced to
 * disk in batches). Also the client's roots and its settings.
 *
 * One thread at a time (the client's loop thread): a connection is not shared. SQLite runs in
 * WAL mode with synchronous=FULL: a committed transaction survives a power cut, so callers
 * batch puts in a transaction (qs_index_begin/_commit) rather than commit each. */
#ifndef QS_STORE_INDEX_H
#define QS_STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/fingerprint.h"
#include "base/path.h"
#include "core/manifest.h"
#include "core/version.h"

/* Largest manifest an entry holds: the encoding of QS_MANIFEST_MAX_CHUNKS chunks. */
#define QS_INDEX_MANIFEST_MAX                                                                      \
	(QS_MANIFEST_HEADER_BYTES + QS_MANIFEST_ENTRY_BYTES * QS_MANIFEST_MAX_CHUNKS)
#define QS_INDEX_NAME_MAX 255          /* a root's name, bytes */
#define QS_INDEX_DIR_MAX 4096          /* a root's local directory, bytes */
#define QS_INDEX_KEY_MAX 255           /* a setting's key, bytes */
#define QS_INDEX_VALUE_MAX (64 * 1024) /* a setting's value, bytes */

struct qs_index;

/* One (root, path) entry. The fields match core/planner.h's struct qs_plan_index plus what
 * the client needs to rebuild the agreed version and to skip unchanged files. */
struct qs_index_entry {
	uint64_t base_version;  /* 0: never agreed (e.g. a conflicted create) */
	struct qs_content base; /* kind and content hash at base_version */
	uint32_t mode;          /* the agreed version's permission bits */
	int64_t mtime_ns;       /* the agreed version's mtime */
	/* Encoded manifest (files) or symlink target (symlinks); NULL when empty. qs_index_put
	 * borrows it; qs_index_get allocates it (free with qs_index_entry_release); an
	 * iteration callback borrows it for the call. */
	uint8_t *manifest;
	size_t manifest_len;
	/* The local file's fingerprint when it last matched the reference content (the
	 * candidate when conflicted, the base otherwise). */
	struct qs_fingerprint fp;
	/* false: a received file not yet synced to disk (see qs_index_mark_durable). */
	bool durable;
	bool conflicted;           /* the server kept our proposal as a conflict candidate */
	uint64_t conflict_version; /* the server's version then (> base_version) */
	struct qs_content candidate;
};

/* Frees what qs_index_get allocated; the entry is zeroed. NULL-safe fields. */
void qs_index_entry_release(struct qs_index_entry *e);

/* Opens (creating if needed) the index at path and runs its schema migrations. Errors:
 * QS_EIO (cannot open; not a QUIC-S index; a schema newer than this build), QS_ENOMEM. */
int qs_index_open(const char *path, struct qs_index **out);
/* Closes the index; an open transaction is rolled back. NULL is fine. */
void qs_index_close(struct qs_index *ix);
int qs_index_schema_version(const struct qs_index *ix);

/* A transaction around any number of calls below (one disk sync at commit). Calls outside
 * a transaction commit on their own. Errors: QS_ESTATE (begin inside a transaction, or
 * commit/rollback outside one), QS_EIO. */
int qs_index_begin(struct qs_index *ix);
int qs_index_commit(struct qs_index *ix);
int qs_index_rollback(struct qs_index *ix);

/* ---- roots ---- */

/* Adds or updates root root_id (1..INT64_MAX, the server's id): its local directory
 * (absolute, 1..QS_INDEX_DIR_MAX bytes of UTF-8) and name (1..QS_INDEX_NAME_MAX bytes of
 * UTF-8 without control characters). Errors: QS_EINVAL (bad id, dir or name), QS_EEXIST
 * (another root has this directory), QS_EIO. */
int qs_index_root_put(struct qs_index *ix, uint64_t root_id, const char *local_dir,
		      const char *name);
/* Forgets a root and all its entries. Errors: QS_ENOENT, QS_EIO. */
int qs_index_root_delete(struct qs_index *ix, uint64_t root_id);
/* Calls fn for each root by id (strings borrowed for the call); fn returning nonzero stops,
 * and that value is returned. Errors: QS_EPROTO (a corrupt row), QS_EIO. */
typedef int (*qs_index_root_fn)(void *arg, uint64_t root_id, const char *local_dir,
				const char *name);
int qs_index_roots(struct qs_index *ix, qs_index_root_fn fn, void *arg);

/* ---- entries ---- */

/* Reads the entry of p in root_id into *out (written only on success). Errors: QS_ENOENT,
 * QS_EPROTO (a corrupt row), QS_ENOMEM, QS_EIO. */
int qs_index_get(struct qs_index *ix, uint64_t root_id, const struct qs_path *p,
		 struct qs_index_entry *out);
/* Inserts or replaces the entry of p. A put with durable false gives the entry a new
 * pending sequence number (see qs_index_mark_durable). Errors: QS_EINVAL (an invalid kind;
 * conflicted without a valid candidate or with conflict_version <= base_version; a
 * manifest above QS_INDEX_MANIFEST_MAX), QS_ENOENT (unknown root), QS_EIO. */
int qs_index_put(struct qs_index *ix, uint64_t root_id, const struct qs_path *p,
		 const struct qs_index_entry *e);
/* Removes the entry of p (only p, not what is below it). Errors: QS_ENOENT, QS_EIO. */
int qs_index_delete(struct qs_index *ix, uint64_t root_id, const struct qs_path *p);
/* Moves the entries of from and of everything below it to the same places below to (a
 * directory rename), atomically. Errors: QS_ENOENT (nothing at or below from), QS_EINVAL
 * (to is from, or one is below the other), QS_EEXIST (an entry already at a target path),
 * QS_EPATH_TOO_LONG (a moved path would pass QS_PATH_MAX), QS_EIO. */
int qs_index_rename(struct qs_index *ix, uint64_t root_id, const struct qs_path *from,
		    const struct qs_path *to);

/* Calls fn for the entries of root_id at or below dir (NULL: all), in byte order of their
 * paths, which is the scanner's order. path and e are borrowed for the call. fn must not
 * change the index; returning nonzero stops, and that value is returned. Errors: QS_EPROTO
 * (a corrupt row), QS_ENOMEM, QS_EIO. */
typedef int (*qs_index_entry_fn)(void *arg, const struct qs_path *path,
				 const struct qs_index_entry *e);
int qs_index_each(struct qs_index *ix, uint64_t root_id, const struct qs_path *dir,
		  qs_index_entry_fn fn, void *arg);

/* Number of regular-file entries of root_id (the mass-loss guard's "indexed files"). */
int qs_index_count_files(struct qs_index *ix, uint64_t root_id, uint64_t *count);

/* ---- durability of received files ---- */

/* The pending sequence number of the latest put with durable false (0 if none yet). The
 * batched sync is: mark = qs_index_durable_mark(); sync the file system; then
 * qs_index_mark_durable(mark). Entries put after the mark keep their pending state even if
 * the same path was in the batch, so a file rewritten during the sync is never declared
 * durable too early. */
uint64_t qs_index_durable_mark(const struct qs_index *ix);
/* Marks durable every entry whose pending sequence number is <= upto. Errors: QS_EIO. */
int qs_index_mark_durable(struct qs_index *ix, uint64_t upto);
/* Calls fn for every entry not yet durable, all roots, by root and path (after an unclean
 * stop: re-verify these files against their hashes). Callback rules as qs_index_each. */
typedef int (*qs_index_pending_fn)(void *arg, uint64_t root_id, const struct qs_path *path,
				   const struct qs_index_entry *e);
int qs_index_not_durable(struct qs_index *ix, qs_index_pending_fn fn, void *arg);

/* ---- settings ---- */

/* Reads the value of key (1..QS_INDEX_KEY_MAX bytes of UTF-8) into out, replacing its
 * contents. Errors: QS_ENOENT (unset), QS_EINVAL (bad key), QS_E2BIG (out's limit), QS_EIO. */
int qs_index_setting_get(struct qs_index *ix, const char *key, struct qs_buf *out);
/* Sets key to len bytes of value (at most QS_INDEX_VALUE_MAX). Errors: QS_EINVAL, QS_E2BIG,
 * QS_EIO. */
int qs_index_setting_set(struct qs_index *ix, const char *key, const void *value, size_t len);
/* Errors: QS_ENOENT (unset), QS_EINVAL, QS_EIO. */
int qs_index_setting_delete(struct qs_index *ix, const char *key);

#endif

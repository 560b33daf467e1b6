/* Client index on SQLite (see index.h, docs/index.md): the schema and its migrations, one
 * prepared statement per operation, and row checks on the way out (the database is a file:
 * a row that breaks the rules is QS_EPROTO, never trusted). Invariants: SQL text is constant
 * and every value is bound; paths are compared as bytes (BINARY collation), which is
 * struct qs_path's order; pending_seq is 0 for durable entries and unique per put
 * otherwise, below next_seq. */
#include "store/index.h"

#include <assert.h>
#include <sqlite3.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "base/utf8.h"

#define LOG_MODULE "index"
#define APPLICATION_ID 1364412760 /* 'QSIX' */

struct migration {
	int version;
	const char *name;
	const char *sql;
};

static const char migration_1_sql[] =
	"PRAGMA application_id = 1364412760;"
	"CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT;"
	"CREATE TABLE roots (root_id INTEGER PRIMARY KEY CHECK (root_id >= 1),"
	" local_dir TEXT NOT NULL UNIQUE, name TEXT NOT NULL) STRICT;"
	"CREATE TABLE entries (root_id INTEGER NOT NULL REFERENCES roots(root_id)"
	" ON DELETE CASCADE, path TEXT NOT NULL,"
	" base_version INTEGER NOT NULL CHECK (base_version >= 0),"
	" kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),"
	" content_hash BLOB NOT NULL CHECK (length(content_hash) = 32),"
	" mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, manifest BLOB,"
	" fp_size INTEGER NOT NULL, fp_mtime_ns INTEGER NOT NULL, fp_ctime_ns INTEGER NOT NULL,"
	" fp_inode INTEGER NOT NULL, fp_mode INTEGER NOT NULL,"
	" pending_seq INTEGER NOT NULL CHECK (pending_seq >= 0),"
	" conflicted INTEGER NOT NULL CHECK (conflicted IN (0, 1)),"
	" conflict_version INTEGER NOT NULL CHECK (conflict_version >= 0),"
	" candidate_kind INTEGER NOT NULL CHECK (candidate_kind BETWEEN 0 AND 3),"
	" candidate_hash BLOB NOT NULL CHECK (length(candidate_hash) = 32),"
	" PRIMARY KEY (root_id, path)) STRICT, WITHOUT ROWID;"
	"CREATE INDEX entries_pending ON entries (pending_seq) WHERE pending_seq > 0;"
	"CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT, WITHOUT ROWID;";

static const struct migration migrations[] = {
	{1, "initial schema", migration_1_sql},
};
#define MIGRATIONS_N ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_ROOT_PUT,
	ST_ROOT_DELETE,
	ST_ROOTS,
	ST_GET,
	ST_PUT,
	ST_DELETE,
	ST_EACH_ALL,
	ST_EACH_UNDER,
	ST_RENAME_SPAN,
	ST_RENAME,
	ST_COUNT_FILES,
	ST_MAX_PENDING,
	ST_MARK_DURABLE,
	ST_NOT_DURABLE,
	ST_SETTING_GET,
	ST_SETTING_SET,
	ST_SETTING_DELETE,
	ST_COUNT
};

#define ENTRY_COLUMNS                                                                              \
	"base_version, kind, content_hash, mode, mtime_ns, manifest, fp_size, fp_mtime_ns,"        \
	" fp_ctime_ns, fp_inode, fp_mode, pending_seq, conflicted, conflict_version,"              \
	" candidate_kind, candidate_hash"
/* Rows at or below a directory: ?2 the directory, ?3 = ?2 + "/", ?4 = ?2 + "0" ('/' + 1). */
#define BELOW "root_id = ?1 AND (path = ?2 OR (path >= ?3 AND path < ?4))"

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_ROOT_PUT] = "INSERT INTO roots (root_id, local_dir, name) VALUES (?1, ?2, ?3)"
			" ON CONFLICT (root_id) DO UPDATE SET local_dir = excluded.local_dir,"
			" name = excluded.name",
	[ST_ROOT_DELETE] = "DELETE FROM roots WHERE root_id = ?1",
	[ST_ROOTS] = "SELECT root_id, local_dir, name FROM roots ORDER BY root_id",
	[ST_GET] = "SELECT " ENTRY_COLUMNS " FROM entries WHERE root_id = ?1 AND path = ?2",
	[ST_PUT] = "INSERT OR REPLACE INTO entries (root_id, path, " ENTRY_COLUMNS ")"
		   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
		   " ?16, ?17, ?18)",
	[ST_DELETE] = "DELETE FROM entries WHERE root_id = ?1 AND path = ?2",
	[ST_EACH_ALL] = "SELECT path, " ENTRY_COLUMNS " FROM entries WHERE root_id = ?1"
			" ORDER BY path",
	[ST_EACH_UNDER] =
		"SELECT path, " ENTRY_COLUMNS " FROM entries WHERE " BELOW " ORDER BY path",
	[ST_RENAME_SPAN] = "SELECT count(*), coalesce(max(length(CAST(path AS BLOB))), 0)"
			   " FROM entries WHERE " BELOW,
	/* Byte offsets: substr of a BLOB counts bytes (of TEXT it would count characters). */
	[ST_RENAME] = "UPDATE entries SET path = ?5 || CAST(substr(CAST(path AS BLOB), ?6) AS TEXT)"
		      " WHERE " BELOW,
	[ST_COUNT_FILES] = "SELECT count(*) FROM entries WHERE root_id = ?1 AND kind = 1",
	[ST_MAX_PENDING] = "SELECT coalesce(max(pending_seq), 0) FROM entries",
	[ST_MARK_DURABLE] = "UPDATE entries SET pending_seq = 0"
			    " WHERE pending_seq > 0 AND pending_seq <= ?1",
	[ST_NOT_DURABLE] = "SELECT root_id, path, " ENTRY_COLUMNS " FROM entries"
			   " WHERE pending_seq > 0 ORDER BY root_id, path",
	[ST_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
	[ST_SETTING_SET] = "INSERT INTO settings (key, value) VALUES (?1, ?2)"
			   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[ST_SETTING_DELETE] = "DELETE FROM settings WHERE key = ?1",
};

struct qs_index {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	int schema_version;
	bool in_tx;
	uint64_t next_seq; /* the pending sequence number of the next not-durable put */
};

/* ---- SQLite helpers ---- */

/* Maps a SQLite result code to a QS_E* code, logging what failed. Constraint failures are
 * the caller's to map first. */
static int sql_err(struct qs_index *ix, int rc, const char *what)
{
	qs_error(LOG_MODULE, "op=\"%s\" sqlite=%d msg=\"%s\"", what, rc,
		 ix->db != NULL ? sqlite3_errmsg(ix->db) : sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_NOMEM: return QS_ENOMEM;
	case SQLITE_FULL: return QS_ENOSPC;
	case SQLITE_TOOBIG: return QS_E2BIG;
	default: return QS_EIO;
	}
}

static void stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Steps a statement that returns no rows (binds made) and resets it. */
static int stmt_exec(struct qs_index *ix, enum stmt_id id)
{
	sqlite3_stmt *s = ix->stmt[id];
	int rc = sqlite3_step(s);
	stmt_done(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		return QS_ENOENT;
	if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		return QS_EEXIST;
	return sql_err(ix, rc, stmt_sql[id]);
}

static int exec_static(struct qs_index *ix, const char *sql)
{
	int rc = sqlite3_exec(ix->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : sql_err(ix, rc, sql);
}

static int query_int(struct qs_index *ix, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(ix->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(s, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc == SQLITE_OK ? 0 : sql_err(ix, rc, sql);
}

static void bind_text(sqlite3_stmt *s, int i, const char *p, size_t len)
{
	sqlite3_bind_text64(s, i, p, len, SQLITE_STATIC, SQLITE_UTF8);
}

static void bind_u64(sqlite3_stmt *s, int i, uint64_t v)
{
	sqlite3_bind_int64(s, i, (sqlite3_int64)v); /* the bit pattern: read back with col_u64 */
}

static uint64_t col_u64(sqlite3_stmt *s, int i)
{
	return (uint64_t)sqlite3_column_int64(s, i);
}

/* Binds ?2 (dir), ?3 (dir + "/") and ?4 (dir + "0") for BELOW; bounds has room for both. */
static void bind_below(sqlite3_stmt *s, const struct qs_path *dir, char bounds[2][QS_PATH_MAX + 2])
{
	memcpy(bounds[0], dir->str, dir->len);
	memcpy(bounds[1], dir->str, dir->len);
	bounds[0][dir->len] = '/';
	bounds[1][dir->len] = '0';
	bind_text(s, 2, dir->str, dir->len);
	bind_text(s, 3, bounds[0], dir->len + 1);
	bind_text(s, 4, bounds[1], dir->len + 1);
}

/* ---- open, migrations ---- */

static int schema_read(struct qs_index *ix, int *version)
{
	int64_t app_id = 0, has_table = 0, objects = 0, v = 0;
	int rc = query_int(ix, "PRAGMA application_id", &app_id);
	if (rc == 0)
		rc = query_int(ix,
			       "SELECT count(*) FROM sqlite_master"
			       " WHERE type = 'table' AND name = 'migrations'",
			       &has_table);
	if (rc == 0)
		rc = query_int(ix, "SELECT count(*) FROM sqlite_master", &objects);
	if (rc == 0 && has_table)
		rc = query_int(ix, "SELECT coalesce(max(version), 0) FROM migrations", &v);
	if (rc != 0)
		return rc;
	if ((app_id != 0 && app_id != APPLICATION_ID) || (!has_table && objects > 0) || v < 0 ||
	    v > INT32_MAX) {
		qs_error(LOG_MODULE, "op=open err=\"not a QUIC-S client index\"");
		return QS_EIO;
	}
	*version = (int)v;
	return 0;
}

static int migration_record(struct qs_index *ix, const struct migration *mig)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(
		ix->db, "INSERT INTO migrations (version, name) VALUES (?1, ?2)", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(s, 1, mig->version);
		sqlite3_bind_text(s, 2, mig->name, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : sql_err(ix, rc, "migration record");
}

/* Applies the next due migration in its own transaction (which re-reads the version, so two
 * openers are safe); *done once the schema is current. */
static int migrate_step(struct qs_index *ix, bool *done)
{
	int version = 0;
	int rc = exec_static(ix, "BEGIN IMMEDIATE");
	if (rc != 0)
		return rc;
	rc = schema_read(ix, &version);
	if (rc == 0 && version > MIGRATIONS_N) {
		qs_error(LOG_MODULE,
			 "op=open err=\"index schema version %d is newer than this build's %d:"
			 " upgrade qic\"",
			 version, MIGRATIONS_N);
		rc = QS_EIO;
	}
	*done = rc != 0 || version == MIGRATIONS_N;
	if (rc == 0 && !*done) {
		const struct migration *mig = &migrations[version];
		assert(mig->version == version + 1);
		rc = exec_static(ix, mig->sql);
		if (rc == 0)
			rc = migration_record(ix, mig);
		if (rc == 0)
			qs_info(LOG_MODULE, "op=migrate version=%d name=\"%s\"", mig->version,
				mig->name);
	}
	if (rc == 0)
		rc = exec_static(ix, "COMMIT");
	if (rc != 0) {
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	ix->schema_version = version + (*done ? 0 : 1);
	return 0;
}

static int configure(struct qs_index *ix)
{
	int on = 1;
	sqlite3_extended_result_codes(ix->db, 1);
	sqlite3_busy_timeout(ix->db, 5000);
	sqlite3_db_config(ix->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
	sqlite3_db_config(ix->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &on);
	int rc = exec_static(ix, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;");
	if (rc != 0)
		return rc;
	sqlite3_stmt *s = NULL;
	bool wal = false;
	if (sqlite3_prepare_v2(ix->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *mode = sqlite3_column_text(s, 0);
		wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	}
	sqlite3_finalize(s);
	if (!wal) {
		qs_error(LOG_MODULE, "op=open err=\"cannot switch to WAL mode\"");
		return QS_EIO;
	}
	return 0;
}

static int prepare_all(struct qs_index *ix)
{
	for (int i = 0; i < ST_COUNT; i++) {
		int rc = sqlite3_prepare_v3(ix->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &ix->stmt[i], NULL);
		if (rc != SQLITE_OK)
			return sql_err(ix, rc, stmt_sql[i]);
	}
	return 0;
}

int qs_index_open(const char *path, struct qs_index **out)
{
	struct qs_index *ix = qs_calloc(1, sizeof(*ix));
	if (ix == NULL)
		return QS_ENOMEM;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE;
	int rc = sqlite3_open_v2(path, &ix->db, flags, NULL);
	if (rc != SQLITE_OK) {
		rc = rc == SQLITE_NOMEM ? QS_ENOMEM : sql_err(ix, rc, "open");
		goto out;
	}
	rc = configure(ix);
	for (bool done = false; rc == 0 && !done;)
		rc = migrate_step(ix, &done);
	if (rc == 0)
		rc = prepare_all(ix);
	int64_t max_seq = 0;
	if (rc == 0)
		rc = query_int(ix, stmt_sql[ST_MAX_PENDING], &max_seq);
	ix->next_seq = (uint64_t)max_seq + 1;
out:
	if (rc != 0) {
		qs_index_close(ix);
		return rc;
	}
	*out = ix;
	return 0;
}

void qs_index_close(struct qs_index *ix)
{
	if (ix == NULL)
		return;
	if (ix->in_tx) {
		qs_warn(LOG_MODULE, "op=close err=\"uncommitted transaction discarded\"");
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
	}
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(ix->stmt[i]);
	sqlite3_close(ix->db);
	qs_free(ix);
}

int qs_index_schema_version(const struct qs_index *ix)
{
	return ix->schema_version;
}

/* ---- transactions ---- */

int qs_index_begin(struct qs_index *ix)
{
	if (ix->in_tx)
		return QS_ESTATE;
	int rc = stmt_exec(ix, ST_BEGIN);
	ix->in_tx = rc == 0;
	return rc;
}

static int tx_end(struct qs_index *ix, enum stmt_id id)
{
	if (!ix->in_tx)
		return QS_ESTATE;
	int rc = stmt_exec(ix, id);
	if (rc != 0 && id == ST_COMMIT)
		sqlite3_exec(ix->db, "ROLLBACK", NULL, NULL, NULL);
	ix->in_tx = false;
	return rc;
}

int qs_index_commit(struct qs_index *ix)
{
	return tx_end(ix, ST_COMMIT);
}

int qs_index_rollback(struct qs_index *ix)
{
	return tx_end(ix, ST_ROLLBACK);
}

/* ---- roots ---- */

static bool name_valid(const char *s, size_t max)
{
	size_t len = strnlen(s, max + 1);
	if (len == 0 || len > max || !qs_utf8_valid_nonul(s, len))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F)
			return false;
	}
	return true;
}

static bool id_valid(uint64_t id)
{
	return id >= 1 && id <= (uint64_t)INT64_MAX;
}

int qs_index_root_put(struct qs_index *ix, uint64_t root_id, const char *local_dir,
		      const char *name)
{
	size_t dir_len = strnlen(local_dir, QS_INDEX_DIR_MAX + 1);
	if (!id_valid(root_id) || dir_len > QS_INDEX_DIR_MAX || local_dir[0] != '/' ||
	    !qs_utf8_valid_nonul(local_dir, dir_len) || !name_valid(name, QS_INDEX_NAME_MAX))
		return QS_EINVAL;
	sqlite3_stmt *s = ix->stmt[ST_ROOT_PUT];
	bind_u64(s, 1, root_id);
	bind_text(s, 2, local_dir, dir_len);
	bind_text(s, 3, name, strlen(name));
	return stmt_exec(ix, ST_ROOT_PUT);
}

int qs_index_root_delete(struct qs_index *ix, uint64_t root_id)
{
	bind_u64(ix->stmt[ST_ROOT_DELETE], 1, root_id);
	int rc = stmt_exec(ix, ST_ROOT_DELETE);
	return rc == 0 && sqlite3_changes(ix->db) == 0 ? QS_ENOENT : rc;
}

int qs_index_roots(struct qs_index *ix, qs_index_root_fn fn, void *arg)
{
	sqlite3_stmt *s = ix->stmt[ST_ROOTS];
	int rc = 0, step = SQLITE_DONE;
	while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *dir = (const char *)sqlite3_column_text(s, 1);
		const char *name = (const char *)sqlite3_column_text(s, 2);
		uint64_t id = col_u64(s, 0);
		if (dir == NULL || name == NULL || !id_valid(id))
			rc = QS_EPROTO;
		else
			rc = fn(arg, id, dir, name);
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sql_err(ix, step, "roots");
	stmt_done(s);
	return rc;
}

/* ---- entries ---- */

void qs_index_entry_release(struct qs_index_entry *e)
{
	qs_free(e->manifest);
	memset(e, 0, sizeof(*e));
}

static bool kind_valid(int64_t k)
{
	return k >= QS_KIND_TOMBSTONE && k <= QS_KIND_SYMLINK;
}

/* Reads the ENTRY_COLUMNS starting at column c into *e; manifest is borrowed from the row.
 * Errors: QS_EPROTO (a row that breaks the schema's rules). */
static int row_entry(sqlite3_stmt *s, int c, struct qs_index_entry *e)
{
	memset(e, 0, sizeof(*e));
	int64_t kind = sqlite3_column_int64(s, c + 1), cand = sqlite3_column_int64(s, c + 14);
	const void *hash = sqlite3_column_blob(s, c + 2);
	const void *chash = sqlite3_column_blob(s, c + 15);
	int64_t conflicted = sqlite3_column_int64(s, c + 12), seq = sqlite3_column_int64(s, c + 11);
	size_t mlen = (size_t)sqlite3_column_bytes(s, c + 5);
	if (!kind_valid(kind) || !kind_valid(cand) || hash == NULL || chash == NULL ||
	    sqlite3_column_bytes(s, c + 2) != QS_CONTENT_HASH_LEN ||
	    sqlite3_column_bytes(s, c + 15) != QS_CONTENT_HASH_LEN ||
	    mlen > QS_INDEX_MANIFEST_MAX || (conflicted != 0 && conflicted != 1) || seq < 0)
		return QS_EPROTO;
	e->base_version = col_u64(s, c);
	e->base.kind = (enum qs_kind)kind;
	memcpy(e->base.hash, hash, QS_CONTENT_HASH_LEN);
	e->mode = (uint32_t)sqlite3_column_int64(s, c + 3);
	e->mtime_ns = sqlite3_column_int64(s, c + 4);
	e->manifest = mlen > 0 ? (uint8_t *)sqlite3_column_blob(s, c + 5) : NULL;
	e->manifest_len = mlen;
	e->fp.size = col_u64(s, c + 6);
	e->fp.mtime_ns = sqlite3_column_int64(s, c + 7);
	e->fp.ctime_ns = sqlite3_column_int64(s, c + 8);
	e->fp.inode = col_u64(s, c + 9);
	e->fp.mode = (uint32_t)sqlite3_column_int64(s, c + 10);
	e->durable = seq == 0;
	e->conflicted = conflicted == 1;
	e->conflict_version = col_u64(s, c + 13);
	e->candidate.kind = (enum qs_kind)cand;
	memcpy(e->candidate.hash, chash, QS_CONTENT_HASH_LEN);
	return 0;
}

int qs_index_get(struct qs_index *ix, uint64_t root_id, const struct qs_path *p,
		 struct qs_index_entry *out)
{
	sqlite3_stmt *s = ix->stmt[ST_GET];
	bind_u64(s, 1, root_id);
	bind_text(s, 2, p->str, p->len);
	int step = sqlite3_step(s), rc;
	struct qs_index_entry e;
	if (step == SQLITE_DONE)
		rc = QS_ENOENT;
	else if (step != SQLITE_ROW)
		rc = sql_err(ix, step, "get");
	else
		rc = row_entry(s, 0, &e);
	if (rc == 0 && e.manifest_len > 0) {
		uint8_t *copy = qs_malloc(e.manifest_len);
		if (copy != NULL)
			memcpy(copy, e.manifest, e.manifest_len);
		e.manifest = copy;
		rc = copy == NULL ? QS_ENOMEM : 0;
	}
	stmt_done(s);
	if (rc == 0)
		*out = e;
	return rc;
}

static bool entry_valid(const struct qs_index_entry *e)
{
	if (!qs_content_valid(&e->base) || e->manifest_len > QS_INDEX_MANIFEST_MAX ||
	    (e->manifest_len > 0 && e->manifest == NULL) || e->base_version > (uint64_t)INT64_MAX)
		return false;
	if (!e->conflicted)
		return true;
	return qs_content_valid(&e->candidate) && e->conflict_version > e->base_version &&
	       e->conflict_version <= (uint64_t)INT64_MAX;
}

int qs_index_put(struct qs_index *ix, uint64_t root_id, const struct qs_path *p,
		 const struct qs_index_entry *e)
{
	if (!entry_valid(e))
		return QS_EINVAL;
	static const uint8_t zero_hash[QS_CONTENT_HASH_LEN];
	sqlite3_stmt *s = ix->stmt[ST_PUT];
	bind_u64(s, 1, root_id);
	bind_text(s, 2, p->str, p->len);
	bind_u64(s, 3, e->base_version);
	sqlite3_bind_int(s, 4, (int)e->base.kind);
	sqlite3_bind_blob(s, 5, e->base.hash, QS_CONTENT_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, e->mode);
	sqlite3_bind_int64(s, 7, e->mtime_ns);
	if (e->manifest_len > 0)
		sqlite3_bind_blob64(s, 8, e->manifest, e->manifest_len, SQLITE_STATIC);
	bind_u64(s, 9, e->fp.size);
	sqlite3_bind_int64(s, 10, e->fp.mtime_ns);
	sqlite3_bind_int64(s, 11, e->fp.ctime_ns);
	bind_u64(s, 12, e->fp.inode);
	sqlite3_bind_int64(s, 13, e->fp.mode);
	bind_u64(s, 14, e->durable ? 0 : ix->next_seq);
	sqlite3_bind_int(s, 15, e->conflicted ? 1 : 0);
	bind_u64(s, 16, e->conflicted ? e->conflict_version : 0);
	sqlite3_bind_int(s, 17, e->conflicted ? (int)e->candidate.kind : 0);
	sqlite3_bind_blob(s, 18, e->conflicted ? e->candidate.hash : zero_hash, QS_CONTENT_HASH_LEN,
			  SQLITE_STATIC);
	int rc = stmt_exec(ix, ST_PUT);
	if (rc == 0 && !e->durable)
		ix->next_seq++;
	return rc;
}

int qs_index_delete(struct qs_index *ix, uint64_t root_id, const struct qs_path *p)
{
	sqlite3_stmt *s = ix->stmt[ST_DELETE];
	bind_u64(s, 1, root_id);
	bind_text(s, 2, p->str, p->len);
	int rc = stmt_exec(ix, ST_DELETE);
	return rc == 0 && sqlite3_changes(ix->db) == 0 ? QS_ENOENT : rc;
}

int qs_index_rename(struct qs_index *ix, uint64_t root_id, const struct qs_path *from,
		    const struct qs_path *to)
{
	if (qs_path_equal(from, to) || qs_path_is_inside(to, from) || qs_path_is_inside(from, to))
		return QS_EINVAL;
	char bounds[2][QS_PATH_MAX + 2];
	sqlite3_stmt *s = ix->stmt[ST_RENAME_SPAN];
	bind_u64(s, 1, root_id);
	bind_below(s, from, bounds);
	int step = sqlite3_step(s);
	int64_t count = sqlite3_column_int64(s, 0), longest = sqlite3_column_int64(s, 1);
	stmt_done(s);
	if (step != SQLITE_ROW)
		return sql_err(ix, step, "rename span");
	if (count == 0)
		return QS_ENOENT;
	if ((uint64_t)longest - from->len + to->len > QS_PATH_MAX)
		return QS_EPATH_TOO_LONG;
	s = ix->stmt[ST_RENAME];
	bind_u64(s, 1, root_id);
	bind_below(s, from, bounds);
	bind_text(s, 5, to->str, to->len);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)from->len + 1);
	return stmt_exec(ix, ST_RENAME);
}

/* Runs an entry query; path is at column c - 1, root id (if any) at c - 2. */
static int each_rows(struct qs_index *ix, sqlite3_stmt *s, int c, qs_index_entry_fn fn,
		     qs_index_pending_fn pfn, void *arg)
{
	int rc = 0, step = SQLITE_DONE;
	while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW) {
		struct qs_index_entry e;
		struct qs_path p;
		const char *text = (const char *)sqlite3_column_text(s, c - 1);
		size_t len = (size_t)sqlite3_column_bytes(s, c - 1);
		rc = row_entry(s, c, &e);
		if (rc == 0 && (text == NULL || qs_path_init(&p, text, len) != 0))
			rc = QS_EPROTO;
		if (rc != 0)
			break;
		rc = fn != NULL ? fn(arg, &p, &e) : pfn(arg, col_u64(s, c - 2), &p, &e);
		qs_path_release(&p);
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sql_err(ix, step, "iterate");
	stmt_done(s);
	return rc;
}

int qs_index_each(struct qs_index *ix, uint64_t root_id, const struct qs_path *dir,
		  qs_index_entry_fn fn, void *arg)
{
	char bounds[2][QS_PATH_MAX + 2];
	sqlite3_stmt *s = ix->stmt[dir != NULL ? ST_EACH_UNDER : ST_EACH_ALL];
	bind_u64(s, 1, root_id);
	if (dir != NULL)
		bind_below(s, dir, bounds);
	return each_rows(ix, s, 1, fn, NULL, arg);
}

int qs_index_count_files(struct qs_index *ix, uint64_t root_id, uint64_t *count)
{
	sqlite3_stmt *s = ix->stmt[ST_COUNT_FILES];
	bind_u64(s, 1, root_id);
	int step = sqlite3_step(s);
	int64_t n = sqlite3_column_int64(s, 0);
	stmt_done(s);
	if (step != SQLITE_ROW)
		return sql_err(ix, step, "count files");
	*count = (uint64_t)n;
	return 0;
}

/* ---- durability ---- */

uint64_t qs_index_durable_mark(const struct qs_index *ix)
{
	return ix->next_seq - 1;
}

int qs_index_mark_durable(struct qs_index *ix, uint64_t upto)
{
	bind_u64(ix->stmt[ST_MARK_DURABLE], 1, upto > (uint64_t)INT64_MAX ? INT64_MAX : upto);
	return stmt_exec(ix, ST_MARK_DURABLE);
}

int qs_index_not_durable(struct qs_index *ix, qs_index_pending_fn fn, void *arg)
{
	return each_rows(ix, ix->stmt[ST_NOT_DURABLE], 2, NULL, fn, arg);
}

/* ---- settings ---- */

static bool key_valid(const char *key)
{
	size_t len = strnlen(key, QS_INDEX_KEY_MAX + 1);
	return len > 0 && len <= QS_INDEX_KEY_MAX && qs_utf8_valid_nonul(key, len);
}

int qs_index_setting_get(struct qs_index *ix, const char *key, struct qs_buf *out)
{
	if (!key_valid(key))
		return QS_EINVAL;
	sqlite3_stmt *s = ix->stmt[ST_SETTING_GET];
	bind_text(s, 1, key, strlen(key));
	int step = sqlite3_step(s), rc = 0;
	if (step == SQLITE_DONE)
		rc = QS_ENOENT;
	else if (step != SQLITE_ROW)
		rc = sql_err(ix, step, "setting get");
	if (rc == 0) {
		size_t len = (size_t)sqlite3_column_bytes(s, 0);
		const void *v = sqlite3_column_blob(s, 0);
		if (len > out->max) {
			rc = QS_E2BIG;
		} else {
			qs_buf_clear(out);
			rc = len > 0 ? qs_buf_append(out, v, len) : 0;
		}
	}
	stmt_done(s);
	return rc;
}

int qs_index_setting_set(struct qs_index *ix, const char *key, const void *value, size_t len)
{
	if (!key_valid(key))
		return QS_EINVAL;
	if (len > QS_INDEX_VALUE_MAX)
		return QS_E2BIG;
	static const uint8_t empty[1];
	sqlite3_stmt *s = ix->stmt[ST_SETTING_SET];
	bind_text(s, 1, key, strlen(key));
	sqlite3_bind_blob64(s, 2, len > 0 ? value : empty, len, SQLITE_STATIC);
	return stmt_exec(ix, ST_SETTING_SET);
}

int qs_index_setting_delete(struct qs_index *ix, const char *key)
{
	if (!key_valid(key))
		return QS_EINVAL;
	bind_text(ix->stmt[ST_SETTING_DELETE], 1, key, strlen(key));
	int rc = stmt_exec(ix, ST_SETTING_DELETE);
	return rc == 0 && sqlite3_changes(ix->db) == 0 ? QS_ENOENT : rc;
}

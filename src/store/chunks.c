/* Content-addressed chunk store on local disk (docs/store.md has the on-disk format). Owns
 * the store directory (held with an exclusive flock on LOCK), the SQLite index of packed
 * chunks, the pack being appended to, and the large chunks of the open batch.
 * Invariants: an index row, a pack's committed size and a file under objects/ exist only for
 * bytes that were synced first; pack bytes past the committed size are never referenced and
 * are cut at open or abort; every chunk read is re-hashed before it is returned. */
#include "store/chunks.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"

#define LOG_MODULE "chunks"
#define PACK_HEADER_BYTES 16
#define RECORD_HEADER_BYTES 40
#define PACK_FORMAT_VERSION 1
#define INDEX_APP_ID 1364411209 /* 'QSCI' */
#define INDEX_SCHEMA_VERSION 1
#define NAME_BYTES 96 /* every relative name below the store directory fits */
#define SYNC_DIRS_MAX (3 * QS_CHUNKS_BATCH_FILES_MAX)

static const uint8_t pack_magic[4] = {'Q', 'S', 'P', 'K'};
static const uint8_t record_magic[4] = {'Q', 'S', 'C', 'R'};

static const char index_schema_sql[] =
	"BEGIN IMMEDIATE;"
	"PRAGMA application_id = 1364411209;"
	"CREATE TABLE packs (id INTEGER PRIMARY KEY, size INTEGER NOT NULL) STRICT;"
	"CREATE TABLE chunks (hash BLOB PRIMARY KEY CHECK (length(hash) = 32),"
	" pack INTEGER NOT NULL REFERENCES packs(id), record_offset INTEGER NOT NULL,"
	" length INTEGER NOT NULL) STRICT, WITHOUT ROWID;"
	"PRAGMA user_version = 1;"
	"COMMIT;";

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_CHUNK_GET,
	ST_CHUNK_INSERT,
	ST_PACK_LAST,
	ST_PACK_INSERT,
	ST_PACK_SIZE,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_CHUNK_GET] = "SELECT pack, record_offset, length FROM chunks WHERE hash = ?1",
	[ST_CHUNK_INSERT] = ("INSERT INTO chunks (hash, pack, record_offset, length)"
			     " VALUES (?1, ?2, ?3, ?4)"),
	[ST_PACK_LAST] = "SELECT id, size FROM packs ORDER BY id DESC LIMIT 1",
	[ST_PACK_INSERT] = "INSERT INTO packs (id, size) VALUES (?1, ?2)",
	[ST_PACK_SIZE] = "UPDATE packs SET size = ?2 WHERE id = ?1",
};

/* A pinned chunk (qs_chunks_pin): in a chained table of PIN_BUCKETS lists. */
#define PIN_BUCKETS 4096
struct pin {
	uint8_t hash[QS_SHA256_LEN];
	uint64_t count;
	struct pin *next;
};

/* A large chunk of the open batch: written to tmp/<hex>, not yet synced or in place. */
struct pending {
	uint8_t hash[QS_SHA256_LEN];
	int fd;
	size_t len;
};

struct qs_chunks {
	pthread_mutex_t lock; /* guards everything below */
	int dir_fd;
	int lock_fd;
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	uint64_t pack_max_bytes;
	/* The pack being appended to; pack_fd -1 when none is open (the next small put starts
	 * pack pack_id + 1). pack_size includes the open batch's records. */
	int pack_fd;
	uint64_t pack_id;
	uint64_t pack_size;
	bool pack_dirty; /* records written since the pack was last synced */
	bool pack_new;   /* created in this batch: its directory entry needs a sync too */
	bool in_batch;
	bool batch_failed; /* an index write failed: the batch can only end in an abort */
	bool broken;       /* a sync failed: puts refused until the store is reopened */
	struct pending pending[QS_CHUNKS_BATCH_FILES_MAX];
	size_t pending_n;
	struct pin *pins[PIN_BUCKETS]; /* pinned chunks by the first bytes of their hash */
};

/* Where a chunk is, found under the lock. */
enum where { AT_NONE, AT_PACK, AT_PENDING, AT_OBJECT };

struct location {
	enum where where;
	uint64_t pack;
	uint64_t offset; /* AT_PACK: of the record header */
	size_t len;      /* AT_PACK, AT_PENDING: from the index or the put */
	size_t pending;  /* AT_PENDING: index into cs->pending */
};

/* ---- small helpers ---- */

static int io_err(const char *what, const char *name)
{
	int e = errno;
	qs_error(LOG_MODULE, "op=%s name=%s errno=%d msg=\"%s\"", what, name, e, strerror(e));
	switch (e) {
	case ENOSPC:
	case EDQUOT: return QS_ENOSPC;
	case ENOMEM: return QS_ENOMEM;
	case EACCES:
	case EPERM:
	case EROFS: return QS_EACCES;
	default: return QS_EIO;
	}
}

static int sql_err(struct qs_chunks *cs, int rc, const char *what)
{
	qs_error(LOG_MODULE, "op=%s sqlite=%d msg=\"%s\"", what, rc,
		 cs->db ? sqlite3_errmsg(cs->db) : sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_NOMEM: return QS_ENOMEM;
	case SQLITE_FULL: return QS_ENOSPC;
	default: return QS_EIO;
	}
}

static void put_u32be(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_u32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u64be(uint8_t *p, uint64_t v)
{
	put_u32be(p, (uint32_t)(v >> 32));
	put_u32be(p + 4, (uint32_t)v);
}

static void pack_name(char out[NAME_BYTES], uint64_t id)
{
	snprintf(out, NAME_BYTES, "packs/%016" PRIx64 ".pack", id);
}

static void object_name(char out[NAME_BYTES], const uint8_t hash[QS_SHA256_LEN])
{
	char hex[QS_SHA256_HEX_LEN + 1];
	qs_hex_encode(hash, QS_SHA256_LEN, hex);
	snprintf(out, NAME_BYTES, "objects/%.2s/%.2s/%s", hex, hex + 2, hex);
}

static void temp_name(char out[NAME_BYTES], const uint8_t hash[QS_SHA256_LEN])
{
	char hex[QS_SHA256_HEX_LEN + 1];
	qs_hex_encode(hash, QS_SHA256_LEN, hex);
	snprintf(out, NAME_BYTES, "tmp/%s", hex);
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t offset)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = EIO, -1);
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

/* Reads exactly len bytes; a short file is damage (QS_EIO). */
static int pread_all(int fd, void *buf, size_t len, uint64_t offset)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return QS_EIO;
		p += n;
		len -= (size_t)n;
		offset += (uint64_t)n;
	}
	return 0;
}

static int fsync_dir(struct qs_chunks *cs, const char *name)
{
	int fd = openat(cs->dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_err("open dir", name);
	int rc = fsync(fd) == 0 ? 0 : io_err("fsync dir", name);
	close(fd);
	return rc;
}

static int verify_hash(const uint8_t hash[QS_SHA256_LEN], const void *data, size_t len,
		       int mismatch)
{
	uint8_t digest[QS_SHA256_LEN];
	int rc = qs_sha256(data, len, digest);
	if (rc)
		return rc;
	return memcmp(digest, hash, QS_SHA256_LEN) == 0 ? 0 : mismatch;
}

/* Runs a statement that returns no rows (its binds already made) and resets it. */
static int stmt_exec(struct qs_chunks *cs, enum stmt_id id, const char *what)
{
	sqlite3_stmt *s = cs->stmt[id];
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sql_err(cs, rc, what);
}

/* ---- the index ---- */

static int query_int(struct qs_chunks *cs, const char *sql, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(cs->db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_OK ? 0 : sql_err(cs, rc, sql);
}

static int index_schema(struct qs_chunks *cs)
{
	int64_t app_id = 0, version = 0;
	int rc = query_int(cs, "PRAGMA application_id", &app_id);
	if (!rc)
		rc = query_int(cs, "PRAGMA user_version", &version);
	if (rc)
		return rc;
	if ((app_id != 0 && app_id != INDEX_APP_ID) || version < 0) {
		qs_error(LOG_MODULE, "op=open err=\"not a QUIC-S chunk index\"");
		return QS_EIO;
	}
	if (version > INDEX_SCHEMA_VERSION) {
		qs_error(LOG_MODULE,
			 "op=open err=\"chunk index version %" PRId64
			 " is newer than this build's %d\"",
			 version, INDEX_SCHEMA_VERSION);
		return QS_EIO;
	}
	if (version == INDEX_SCHEMA_VERSION)
		return 0;
	rc = sqlite3_exec(cs->db, index_schema_sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = sql_err(cs, rc, "create index");
		sqlite3_exec(cs->db, "ROLLBACK", NULL, NULL, NULL);
	}
	return rc;
}

static int index_open(struct qs_chunks *cs, const char *dir)
{
	size_t need;
	if (!qs_size_add(strlen(dir), sizeof("/index.db"), &need))
		return QS_E2BIG;
	char *path = qs_malloc(need);
	if (!path)
		return QS_ENOMEM;
	snprintf(path, need, "%s/index.db", dir);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE;
	int rc = sqlite3_open_v2(path, &cs->db, flags, NULL);
	qs_free(path);
	if (rc != SQLITE_OK)
		return sql_err(cs, rc, "open index");
	int on = 1;
	sqlite3_db_config(cs->db, SQLITE_DBCONFIG_DEFENSIVE, 1, &on);
	sqlite3_busy_timeout(cs->db, 5000);
	rc = sqlite3_exec(cs->db,
			  "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			  " PRAGMA foreign_keys = ON;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sql_err(cs, rc, "index pragmas");
	rc = index_schema(cs);
	for (int i = 0; !rc && i < ST_COUNT; i++) {
		int src = sqlite3_prepare_v3(cs->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					     &cs->stmt[i], NULL);
		if (src != SQLITE_OK)
			rc = sql_err(cs, src, stmt_sql[i]);
	}
	return rc;
}

/* ---- packs ---- */

/* Opens the newest pack of the index for appending and cuts it back to its committed size
 * (records of a batch that never committed). A pack that is missing or shorter than its
 * committed size lost data: it is logged and left alone (its chunks fail on read), and the
 * next record starts a new pack. */
static int pack_load(struct qs_chunks *cs)
{
	if (cs->pack_fd >= 0)
		close(cs->pack_fd);
	cs->pack_fd = -1;
	cs->pack_id = 0;
	cs->pack_size = 0;
	cs->pack_dirty = cs->pack_new = false;
	sqlite3_stmt *s = cs->stmt[ST_PACK_LAST];
	int rc = sqlite3_step(s);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	int64_t size = rc == SQLITE_ROW ? sqlite3_column_int64(s, 1) : 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : sql_err(cs, rc, "pack last");
	if (id < 1 || size < PACK_HEADER_BYTES)
		return QS_EIO;
	cs->pack_id = (uint64_t)id;
	char name[NAME_BYTES];
	pack_name(name, cs->pack_id);
	int fd = openat(cs->dir_fd, name, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < size) {
		qs_error(LOG_MODULE,
			 "op=open err=\"pack missing or short: its chunks are lost\""
			 " name=%s",
			 name);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (st.st_size > size && ftruncate(fd, size) != 0) {
		rc = io_err("truncate", name);
		close(fd);
		return rc;
	}
	cs->pack_fd = fd;
	cs->pack_size = (uint64_t)size;
	return 0;
}

/* Syncs the open pack if it has unsynced records (with its directory entry if it is new)
 * and records its size in the index. A failed sync breaks the store. */
static int pack_sync(struct qs_chunks *cs)
{
	if (!cs->pack_dirty && !cs->pack_new)
		return 0;
	char name[NAME_BYTES];
	pack_name(name, cs->pack_id);
	int synced = cs->pack_new ? fsync(cs->pack_fd) : fdatasync(cs->pack_fd);
	int rc = synced == 0 ? 0 : io_err("fsync", name);
	if (!rc && cs->pack_new)
		rc = fsync_dir(cs, "packs");
	if (rc) {
		cs->broken = true;
		return rc;
	}
	sqlite3_stmt *s = cs->stmt[ST_PACK_SIZE];
	sqlite3_bind_int64(s, 1, (int64_t)cs->pack_id);
	sqlite3_bind_int64(s, 2, (int64_t)cs->pack_size);
	rc = stmt_exec(cs, ST_PACK_SIZE, "pack size");
	if (rc) {
		cs->batch_failed = true;
		return rc;
	}
	cs->pack_dirty = cs->pack_new = false;
	return 0;
}

/* Closes the current pack (synced first) and starts pack pack_id + 1. */
static int pack_start(struct qs_chunks *cs)
{
	int rc = 0;
	if (cs->pack_fd >= 0) {
		rc = pack_sync(cs);
		if (rc)
			return rc;
		close(cs->pack_fd);
		cs->pack_fd = -1;
	}
	uint64_t id = cs->pack_id + 1;
	char name[NAME_BYTES];
	pack_name(name, id);
	int fd = openat(cs->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return io_err("create", name);
	uint8_t header[PACK_HEADER_BYTES];
	memcpy(header, pack_magic, 4);
	put_u32be(header + 4, PACK_FORMAT_VERSION);
	put_u64be(header + 8, id);
	if (pwrite_all(fd, header, sizeof(header), 0) != 0) {
		rc = io_err("write", name);
		close(fd);
		return rc;
	}
	sqlite3_stmt *s = cs->stmt[ST_PACK_INSERT];
	sqlite3_bind_int64(s, 1, (int64_t)id);
	sqlite3_bind_int64(s, 2, PACK_HEADER_BYTES);
	rc = stmt_exec(cs, ST_PACK_INSERT, "pack insert");
	if (rc) {
		cs->batch_failed = true;
		close(fd);
		return rc;
	}
	cs->pack_fd = fd;
	cs->pack_id = id;
	cs->pack_size = PACK_HEADER_BYTES;
	cs->pack_new = true;
	return 0;
}

/* Appends one record to the current pack (starting a new pack when it would pass the size
 * limit) and indexes it inside the open batch. */
static int put_small(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], const void *data,
		     size_t len)
{
	uint64_t record = RECORD_HEADER_BYTES + (uint64_t)len;
	int rc = 0;
	bool full =
		cs->pack_size >= cs->pack_max_bytes || record > cs->pack_max_bytes - cs->pack_size;
	if (cs->pack_fd < 0 || (cs->pack_size > PACK_HEADER_BYTES && full))
		rc = pack_start(cs);
	if (rc)
		return rc;
	uint8_t header[RECORD_HEADER_BYTES];
	memcpy(header, record_magic, 4);
	put_u32be(header + 4, (uint32_t)len);
	memcpy(header + 8, hash, QS_SHA256_LEN);
	if (pwrite_all(cs->pack_fd, header, sizeof(header), cs->pack_size) != 0 ||
	    pwrite_all(cs->pack_fd, data, len, cs->pack_size + RECORD_HEADER_BYTES) != 0) {
		char name[NAME_BYTES];
		pack_name(name, cs->pack_id);
		rc = io_err("write", name);
		if (ftruncate(cs->pack_fd, (off_t)cs->pack_size) != 0)
			cs->broken = true;
		return rc;
	}
	sqlite3_stmt *s = cs->stmt[ST_CHUNK_INSERT];
	sqlite3_bind_blob(s, 1, hash, QS_SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)cs->pack_id);
	sqlite3_bind_int64(s, 3, (int64_t)cs->pack_size);
	sqlite3_bind_int64(s, 4, (int64_t)len);
	rc = stmt_exec(cs, ST_CHUNK_INSERT, "chunk insert");
	if (rc) {
		cs->batch_failed = true;
		return rc;
	}
	cs->pack_size += record;
	cs->pack_dirty = true;
	return 0;
}

/* ---- large chunks ---- */

/* Remembers dir for syncing once (dirs holds n names of NAME_BYTES). */
static void sync_dirs_add(char (*dirs)[NAME_BYTES], size_t *n, const char *dir)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(dirs[i], dir) == 0)
			return;
	assert(*n < SYNC_DIRS_MAX); /* at most 3 directories per pending chunk */
	if (*n < SYNC_DIRS_MAX)
		snprintf(dirs[(*n)++], NAME_BYTES, "%s", dir);
}

/* Makes objects/ab/cd for an object name, noting which directories need a sync: the leaf
 * (it gets the new entry) and the parent of any directory created. */
static int object_dirs(struct qs_chunks *cs, const char *object, char (*dirs)[NAME_BYTES],
		       size_t *n)
{
	char dir[NAME_BYTES];
	static const size_t lens[2] = {sizeof("objects/ab") - 1, sizeof("objects/ab/cd") - 1};
	for (size_t i = 0; i < 2; i++) {
		snprintf(dir, NAME_BYTES, "%.*s", (int)lens[i], object);
		if (mkdirat(cs->dir_fd, dir, 0755) == 0) {
			dir[i == 0 ? sizeof("objects") - 1 : lens[0]] = '\0';
			sync_dirs_add(dirs, n, dir);
		} else if (errno != EEXIST) {
			return io_err("mkdir", dir);
		}
	}
	snprintf(dir, NAME_BYTES, "%.*s", (int)lens[1], object);
	sync_dirs_add(dirs, n, dir);
	return 0;
}

/* Syncs every pending large chunk, renames it into place and syncs the directories that
 * changed. On failure the store is broken and the pending list is left for the abort. */
static int flush_large(struct qs_chunks *cs)
{
	char dirs[SYNC_DIRS_MAX][NAME_BYTES];
	size_t ndirs = 0;
	int rc = 0;
	for (size_t i = 0; !rc && i < cs->pending_n; i++) {
		char tmp[NAME_BYTES];
		temp_name(tmp, cs->pending[i].hash);
		if (fsync(cs->pending[i].fd) != 0)
			rc = io_err("fsync", tmp);
	}
	for (size_t i = 0; !rc && i < cs->pending_n; i++) {
		char tmp[NAME_BYTES], object[NAME_BYTES];
		temp_name(tmp, cs->pending[i].hash);
		object_name(object, cs->pending[i].hash);
		rc = object_dirs(cs, object, dirs, &ndirs);
		if (!rc && renameat(cs->dir_fd, tmp, cs->dir_fd, object) != 0)
			rc = io_err("rename", object);
	}
	for (size_t i = 0; !rc && i < ndirs; i++)
		rc = fsync_dir(cs, dirs[i]);
	if (rc) {
		cs->broken = true;
		return rc;
	}
	for (size_t i = 0; i < cs->pending_n; i++)
		close(cs->pending[i].fd);
	cs->pending_n = 0;
	return 0;
}

static int put_large(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], const void *data,
		     size_t len)
{
	if (cs->pending_n == QS_CHUNKS_BATCH_FILES_MAX) {
		int rc = flush_large(cs);
		if (rc)
			return rc;
	}
	char tmp[NAME_BYTES];
	temp_name(tmp, hash);
	int fd = openat(cs->dir_fd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return io_err("create", tmp);
	if (pwrite_all(fd, data, len, 0) != 0) {
		int rc = io_err("write", tmp);
		close(fd);
		unlinkat(cs->dir_fd, tmp, 0);
		return rc;
	}
	struct pending *p = &cs->pending[cs->pending_n++];
	memcpy(p->hash, hash, QS_SHA256_LEN);
	p->fd = fd;
	p->len = len;
	return 0;
}

/* ---- lookup ---- */

static int locate(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], struct location *loc)
{
	memset(loc, 0, sizeof(*loc));
	for (size_t i = 0; i < cs->pending_n; i++) {
		if (memcmp(cs->pending[i].hash, hash, QS_SHA256_LEN) == 0) {
			loc->where = AT_PENDING;
			loc->pending = i;
			loc->len = cs->pending[i].len;
			return 0;
		}
	}
	sqlite3_stmt *s = cs->stmt[ST_CHUNK_GET];
	sqlite3_bind_blob(s, 1, hash, QS_SHA256_LEN, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int64_t pack = sqlite3_column_int64(s, 0), offset = sqlite3_column_int64(s, 1);
		int64_t len = sqlite3_column_int64(s, 2);
		loc->where = AT_PACK;
		loc->pack = (uint64_t)pack;
		loc->offset = (uint64_t)offset;
		loc->len = (size_t)len;
		bool valid = pack >= 1 && offset >= PACK_HEADER_BYTES && len >= 1 &&
			     (uint64_t)len <= QS_CHUNKS_SMALL_MAX_BYTES;
		rc = valid ? 0 : QS_EIO;
	} else {
		rc = rc == SQLITE_DONE ? 0 : sql_err(cs, rc, "chunk get");
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc || loc->where != AT_NONE)
		return rc;
	char object[NAME_BYTES];
	object_name(object, hash);
	struct stat st;
	if (fstatat(cs->dir_fd, object, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		loc->where = AT_OBJECT;
		loc->len = st.st_size > 0 ? (size_t)st.st_size : 0;
		return 0;
	}
	return errno == ENOENT ? 0 : io_err("stat", object);
}

/* An open chunk, ready to be read outside the lock. */
struct source {
	int fd;          /* owned */
	uint64_t offset; /* of the chunk's bytes */
	size_t len;
	bool record; /* a pack record: its header sits before offset */
};

/* Finds the chunk and opens its bytes (under the lock). Errors: QS_ENOENT, QS_EIO. */
static int source_open(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], struct source *src)
{
	struct location loc;
	char name[NAME_BYTES];
	int fd = -1;
	pthread_mutex_lock(&cs->lock);
	int rc = locate(cs, hash, &loc);
	if (!rc && loc.where == AT_NONE)
		rc = QS_ENOENT;
	if (!rc && loc.where == AT_PACK) {
		pack_name(name, loc.pack);
		fd = loc.pack == cs->pack_id && cs->pack_fd >= 0
			     ? fcntl(cs->pack_fd, F_DUPFD_CLOEXEC, 0)
			     : openat(cs->dir_fd, name, O_RDONLY | O_CLOEXEC);
	} else if (!rc && loc.where == AT_PENDING) {
		temp_name(name, hash);
		fd = fcntl(cs->pending[loc.pending].fd, F_DUPFD_CLOEXEC, 0);
	} else if (!rc) {
		object_name(name, hash);
		fd = openat(cs->dir_fd, name, O_RDONLY | O_CLOEXEC);
	}
	if (!rc && fd < 0)
		rc = io_err("open", name);
	pthread_mutex_unlock(&cs->lock);
	struct stat st;
	if (!rc && loc.where == AT_OBJECT && fstat(fd, &st) != 0)
		rc = io_err("stat", name);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	src->fd = fd;
	src->record = loc.where == AT_PACK;
	src->offset = src->record ? loc.offset + RECORD_HEADER_BYTES : 0;
	src->len = loc.where == AT_OBJECT ? (size_t)st.st_size : loc.len;
	if (!src->record &&
	    (src->len <= QS_CHUNKS_SMALL_MAX_BYTES || src->len > QS_CHUNKS_MAX_BYTES)) {
		qs_error(LOG_MODULE, "op=read err=\"large chunk has an impossible size\" name=%s",
			 name);
		close(fd);
		return QS_EIO;
	}
	return 0;
}

/* Reads and verifies the chunk's bytes into buf (src->len bytes). */
static int source_read(const struct source *src, const uint8_t hash[QS_SHA256_LEN], uint8_t *buf)
{
	if (src->record) {
		uint8_t header[RECORD_HEADER_BYTES];
		if (pread_all(src->fd, header, sizeof(header), src->offset - RECORD_HEADER_BYTES))
			return QS_EIO;
		if (memcmp(header, record_magic, 4) != 0 || get_u32be(header + 4) != src->len ||
		    memcmp(header + 8, hash, QS_SHA256_LEN) != 0)
			return QS_EIO;
	}
	if (pread_all(src->fd, buf, src->len, src->offset))
		return QS_EIO;
	return verify_hash(hash, buf, src->len, QS_EIO);
}

static void log_damage(const uint8_t hash[QS_SHA256_LEN])
{
	char hex[QS_SHA256_HEX_LEN + 1];
	qs_hex_encode(hash, QS_SHA256_LEN, hex);
	qs_error(LOG_MODULE, "op=read err=\"stored chunk is damaged\" hash=%s", hex);
}

int qs_chunks_read(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], uint8_t *buf,
		   size_t cap, size_t *len)
{
	struct source src;
	int rc = source_open(cs, hash, &src);
	if (rc)
		return rc;
	rc = src.len > cap ? QS_E2BIG : source_read(&src, hash, buf);
	close(src.fd);
	if (rc == QS_EIO)
		log_damage(hash);
	if (!rc)
		*len = src.len;
	return rc;
}

int qs_chunks_get(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], uint8_t **data,
		  size_t *len)
{
	struct source src;
	int rc = source_open(cs, hash, &src);
	if (rc)
		return rc;
	uint8_t *buf = qs_malloc(src.len);
	rc = buf ? source_read(&src, hash, buf) : QS_ENOMEM;
	close(src.fd);
	if (rc == QS_EIO)
		log_damage(hash);
	if (rc) {
		qs_free(buf);
		return rc;
	}
	*data = buf;
	*len = src.len;
	return 0;
}

int qs_chunks_has(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], bool *present)
{
	struct location loc;
	pthread_mutex_lock(&cs->lock);
	int rc = locate(cs, hash, &loc);
	pthread_mutex_unlock(&cs->lock);
	if (!rc)
		*present = loc.where != AT_NONE;
	return rc;
}

/* ---- batches ---- */

static int batch_begin_locked(struct qs_chunks *cs)
{
	if (cs->in_batch)
		return QS_ESTATE;
	if (cs->broken)
		return QS_EIO;
	int rc = stmt_exec(cs, ST_BEGIN, "begin");
	if (!rc)
		cs->in_batch = true;
	return rc;
}

/* Drops the open batch: its temporary files, its index rows, its pack records. */
static int batch_abort_locked(struct qs_chunks *cs)
{
	for (size_t i = 0; i < cs->pending_n; i++) {
		char tmp[NAME_BYTES];
		temp_name(tmp, cs->pending[i].hash);
		close(cs->pending[i].fd);
		unlinkat(cs->dir_fd, tmp, 0);
	}
	cs->pending_n = 0;
	int rc = 0;
	if (!sqlite3_get_autocommit(cs->db))
		rc = stmt_exec(cs, ST_ROLLBACK, "rollback");
	cs->in_batch = false;
	cs->batch_failed = false;
	int load = pack_load(cs);
	return rc ? rc : load;
}

static int batch_sync_locked(struct qs_chunks *cs)
{
	int rc = cs->batch_failed || cs->broken ? QS_EIO : 0;
	if (!rc)
		rc = flush_large(cs);
	if (!rc)
		rc = pack_sync(cs);
	if (!rc)
		rc = stmt_exec(cs, ST_COMMIT, "commit");
	if (rc) {
		batch_abort_locked(cs);
		cs->broken = true;
		return rc;
	}
	cs->in_batch = false;
	return 0;
}

static int put_locked(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], const void *data,
		      size_t len)
{
	if (cs->batch_failed)
		return QS_EIO;
	struct location loc;
	int rc = locate(cs, hash, &loc);
	if (rc)
		return rc;
	if (loc.where == AT_OBJECT && loc.len != len) {
		char object[NAME_BYTES];
		object_name(object, hash);
		qs_warn(LOG_MODULE, "op=put err=\"damaged object replaced\" name=%s", object);
	} else if (loc.where != AT_NONE) {
		return 0;
	}
	return len <= QS_CHUNKS_SMALL_MAX_BYTES ? put_small(cs, hash, data, len)
						: put_large(cs, hash, data, len);
}

int qs_chunks_put(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], const void *data,
		  size_t len)
{
	if (len == 0)
		return QS_EINVAL;
	if (len > QS_CHUNKS_MAX_BYTES)
		return QS_E2BIG;
	int rc = verify_hash(hash, data, len, QS_EPROTO);
	return rc ? rc : qs_chunks_put_verified(cs, hash, data, len);
}

int qs_chunks_put_verified(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN],
			   const void *data, size_t len)
{
	if (len == 0)
		return QS_EINVAL;
	if (len > QS_CHUNKS_MAX_BYTES)
		return QS_E2BIG;
	int rc;
	pthread_mutex_lock(&cs->lock);
	if (cs->broken) {
		rc = QS_EIO;
	} else if (cs->in_batch) {
		rc = put_locked(cs, hash, data, len);
	} else {
		rc = batch_begin_locked(cs);
		if (!rc)
			rc = put_locked(cs, hash, data, len);
		if (!rc)
			rc = batch_sync_locked(cs);
		else if (cs->in_batch)
			batch_abort_locked(cs);
	}
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

int qs_chunks_batch_begin(struct qs_chunks *cs)
{
	pthread_mutex_lock(&cs->lock);
	int rc = batch_begin_locked(cs);
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

int qs_chunks_batch_sync(struct qs_chunks *cs)
{
	pthread_mutex_lock(&cs->lock);
	int rc = cs->in_batch ? batch_sync_locked(cs) : QS_ESTATE;
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

int qs_chunks_batch_abort(struct qs_chunks *cs)
{
	pthread_mutex_lock(&cs->lock);
	int rc = cs->in_batch ? batch_abort_locked(cs) : QS_ESTATE;
	pthread_mutex_unlock(&cs->lock);
	return rc;
}

/* ---- open, close ---- */

/* Removes what a crash left in tmp/: large chunks of a batch that never synced. */
static int clean_tmp(struct qs_chunks *cs)
{
	int fd = openat(cs->dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_err("open dir", "tmp");
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = io_err("open dir", "tmp");
		close(fd);
		return rc;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(fd, e->d_name, 0);
	}
	closedir(d);
	return 0;
}

/* Creates the directory and its layout where missing; syncs every directory that got a new
 * entry, so the layout survives a crash before the first chunk does. */
static int layout(struct qs_chunks *cs, const char *dir)
{
	bool made_dir = mkdir(dir, 0755) == 0;
	if (!made_dir && errno != EEXIST)
		return io_err("mkdir", dir);
	cs->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cs->dir_fd < 0)
		return io_err("open dir", dir);
	cs->lock_fd = openat(cs->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (cs->lock_fd < 0)
		return io_err("open", "LOCK");
	if (flock(cs->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? QS_EAGAIN : io_err("flock", "LOCK");
	bool made_sub = false;
	static const char *const subdirs[] = {"packs", "objects", "tmp"};
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if (mkdirat(cs->dir_fd, subdirs[i], 0755) == 0)
			made_sub = true;
		else if (errno != EEXIST)
			return io_err("mkdir", subdirs[i]);
	}
	int rc = made_sub || made_dir ? fsync_dir(cs, ".") : 0;
	if (!rc && made_dir)
		rc = fsync_dir(cs, "..");
	return rc;
}

int qs_chunks_open(const char *dir, const struct qs_chunks_options *opt, struct qs_chunks **out)
{
	struct qs_chunks *cs = qs_calloc(1, sizeof(*cs));
	if (!cs)
		return QS_ENOMEM;
	pthread_mutex_init(&cs->lock, NULL);
	cs->dir_fd = cs->lock_fd = cs->pack_fd = -1;
	cs->pack_max_bytes =
		opt && opt->pack_max_bytes ? opt->pack_max_bytes : QS_CHUNKS_PACK_DEFAULT_BYTES;
	int rc = layout(cs, dir);
	if (!rc)
		rc = clean_tmp(cs);
	if (!rc)
		rc = index_open(cs, dir);
	if (!rc)
		rc = pack_load(cs);
	if (rc) {
		qs_chunks_close(cs);
		return rc;
	}
	*out = cs;
	return 0;
}

void qs_chunks_close(struct qs_chunks *cs)
{
	if (!cs)
		return;
	if (cs->in_batch) {
		qs_warn(LOG_MODULE, "op=close err=\"open batch discarded\"");
		batch_abort_locked(cs);
	}
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(cs->stmt[i]);
	sqlite3_close(cs->db);
	if (cs->pack_fd >= 0)
		close(cs->pack_fd);
	if (cs->lock_fd >= 0)
		close(cs->lock_fd);
	if (cs->dir_fd >= 0)
		close(cs->dir_fd);
	for (size_t i = 0; i < PIN_BUCKETS; i++) {
		while (cs->pins[i] != NULL) {
			struct pin *p = cs->pins[i];
			cs->pins[i] = p->next;
			qs_free(p);
		}
	}
	pthread_mutex_destroy(&cs->lock);
	qs_free(cs);
}

/* ---- pins and garbage collection ---- */

static struct pin **pin_slot(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN])
{
	size_t b = ((size_t)hash[0] << 8 | hash[1]) % PIN_BUCKETS;
	struct pin **pp = &cs->pins[b];
	while (*pp != NULL && memcmp((*pp)->hash, hash, QS_SHA256_LEN) != 0)
		pp = &(*pp)->next;
	return pp;
}

int qs_chunks_pin(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN], bool *present)
{
	struct location loc;
	pthread_mutex_lock(&cs->lock);
	int rc = locate(cs, hash, &loc);
	struct pin **pp = pin_slot(cs, hash);
	if (!rc && *pp == NULL) {
		*pp = qs_calloc(1, sizeof(**pp));
		if (*pp == NULL)
			rc = QS_ENOMEM;
		else
			memcpy((*pp)->hash, hash, QS_SHA256_LEN);
	}
	if (!rc)
		(*pp)->count++;
	pthread_mutex_unlock(&cs->lock);
	if (!rc)
		*present = loc.where != AT_NONE;
	return rc;
}

void qs_chunks_unpin(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN])
{
	pthread_mutex_lock(&cs->lock);
	struct pin **pp = pin_slot(cs, hash);
	struct pin *p = *pp;
	if (p != NULL && --p->count == 0) {
		*pp = p->next;
		qs_free(p);
	}
	pthread_mutex_unlock(&cs->lock);
}

static bool hex_hash(const char *name, uint8_t out[QS_SHA256_LEN])
{
	if (strlen(name) != 2 * QS_SHA256_LEN)
		return false;
	for (size_t i = 0; i < QS_SHA256_LEN; i++) {
		int v = 0;
		for (size_t k = 0; k < 2; k++) {
			char c = name[2 * i + k];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
						       : -1;
			if (d < 0)
				return false;
			v = v * 16 + d;
		}
		out[i] = (uint8_t)v;
	}
	return true;
}

/* Under the lock: whether an unreferenced chunk must still be kept (pinned, or young). */
static bool gc_keep_locked(struct qs_chunks *cs, const uint8_t hash[QS_SHA256_LEN],
			   int64_t written_unix_s, int64_t cutoff_unix_s,
			   struct qs_chunks_gc_stats *st)
{
	if (*pin_slot(cs, hash) != NULL) {
		st->kept_pinned++;
		return true;
	}
	if (written_unix_s >= cutoff_unix_s) {
		st->kept_young++;
		return true;
	}
	return false;
}

/* Large chunks: the files of one leaf directory objects/ab/cd. */
static int gc_leaf(struct qs_chunks *cs, const char *leaf, qs_chunks_live_fn live, void *arg,
		   int64_t cutoff, struct qs_chunks_gc_stats *st)
{
	int fd = openat(cs->dir_fd, leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return io_err("open dir", leaf);
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return io_err("open dir", leaf);
	}
	int rc = 0;
	struct dirent *e;
	while (!rc && (e = readdir(d)) != NULL) {
		uint8_t h[QS_SHA256_LEN];
		struct stat sb;
		if (!hex_hash(e->d_name, h) ||
		    fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		st->examined++;
		if (live(arg, h))
			continue;
		pthread_mutex_lock(&cs->lock);
		if (!gc_keep_locked(cs, h, (int64_t)sb.st_mtime, cutoff, st)) {
			if (unlinkat(fd, e->d_name, 0) == 0) {
				st->deleted++;
				st->deleted_bytes += (uint64_t)sb.st_size;
			} else if (errno != ENOENT) {
				rc = io_err("unlink", e->d_name);
			}
		}
		pthread_mutex_unlock(&cs->lock);
	}
	closedir(d);
	return rc;
}

/* Walks objects/ab/cd/ for large chunk files. */
static int gc_objects(struct qs_chunks *cs, qs_chunks_live_fn live, void *arg, int64_t cutoff,
		      struct qs_chunks_gc_stats *st)
{
	int rc = 0;
	for (unsigned a = 0; !rc && a < 256; a++) {
		char top[NAME_BYTES];
		snprintf(top, sizeof(top), "objects/%02x", a);
		struct stat sb;
		if (fstatat(cs->dir_fd, top, &sb, 0) != 0)
			continue;
		for (unsigned b = 0; !rc && b < 256; b++) {
			char leaf[NAME_BYTES];
			snprintf(leaf, sizeof(leaf), "objects/%02x/%02x", a, b);
			if (fstatat(cs->dir_fd, leaf, &sb, 0) == 0)
				rc = gc_leaf(cs, leaf, live, arg, cutoff, st);
		}
	}
	return rc;
}

/* Small chunks: index rows of unreferenced packed chunks. A pack's mtime is the time of its
 * last append, so it is never older than any chunk in it: the grace period holds. */
static int gc_packed(struct qs_chunks *cs, qs_chunks_live_fn live, void *arg, int64_t cutoff,
		     struct qs_chunks_gc_stats *st)
{
	sqlite3_stmt *list = NULL, *del = NULL;
	int rc = sqlite3_prepare_v2(cs->db, "SELECT hash, pack, length FROM chunks", -1, &list,
				    NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(cs->db, "DELETE FROM chunks WHERE hash = ?1", -1, &del,
					NULL);
	rc = rc == SQLITE_OK ? 0 : sql_err(cs, rc, "gc prepare");
	/* Collect first: rows are deleted while the listing is not open. */
	uint8_t(*dead)[QS_SHA256_LEN] = NULL;
	int64_t *packs = NULL, *lens = NULL;
	size_t n = 0, cap = 0;
	int step = SQLITE_DONE;
	while (!rc && (step = sqlite3_step(list)) == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(list, 0);
		if (h == NULL || sqlite3_column_bytes(list, 0) != QS_SHA256_LEN)
			continue;
		st->examined++;
		if (live(arg, h))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			void *nd = qs_realloc(dead, cap * sizeof(*dead));
			void *np = nd ? qs_realloc(packs, cap * sizeof(*packs)) : NULL;
			void *nl = np ? qs_realloc(lens, cap * sizeof(*lens)) : NULL;
			dead = nd ? nd : dead;
			packs = np ? np : packs;
			lens = nl ? nl : lens;
			if (nl == NULL) {
				rc = QS_ENOMEM;
				break;
			}
		}
		memcpy(dead[n], h, QS_SHA256_LEN);
		packs[n] = sqlite3_column_int64(list, 1);
		lens[n++] = sqlite3_column_int64(list, 2);
	}
	if (!rc && step != SQLITE_DONE && step != SQLITE_ROW)
		rc = sql_err(cs, step, "gc list");
	sqlite3_finalize(list);
	/* One index transaction under the lock for all deletions (puts wait meanwhile). */
	pthread_mutex_lock(&cs->lock);
	if (!rc && n > 0)
		rc = stmt_exec(cs, ST_BEGIN, "gc begin");
	for (size_t i = 0; !rc && i < n; i++) {
		char name[NAME_BYTES];
		struct stat sb;
		pack_name(name, (uint64_t)packs[i]);
		int64_t written =
			fstatat(cs->dir_fd, name, &sb, 0) == 0 ? (int64_t)sb.st_mtime : INT64_MAX;
		if (gc_keep_locked(cs, dead[i], written, cutoff, st))
			continue;
		sqlite3_bind_blob(del, 1, dead[i], QS_SHA256_LEN, SQLITE_STATIC);
		step = sqlite3_step(del);
		sqlite3_reset(del);
		if (step != SQLITE_DONE) {
			rc = sql_err(cs, step, "gc delete");
		} else {
			st->deleted++;
			st->deleted_bytes += (uint64_t)lens[i];
		}
	}
	if (n > 0 && !sqlite3_get_autocommit(cs->db)) {
		if (!rc)
			rc = stmt_exec(cs, ST_COMMIT, "gc commit");
		if (rc)
			stmt_exec(cs, ST_ROLLBACK, "gc rollback");
	}
	pthread_mutex_unlock(&cs->lock);
	sqlite3_finalize(del);
	qs_free(dead);
	qs_free(packs);
	qs_free(lens);
	return rc;
}

int qs_chunks_gc(struct qs_chunks *cs, qs_chunks_live_fn live, void *arg, int64_t cutoff_unix_s,
		 struct qs_chunks_gc_stats *stats)
{
	struct qs_chunks_gc_stats st;
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&cs->lock);
	bool busy = cs->in_batch;
	pthread_mutex_unlock(&cs->lock);
	if (busy)
		return QS_ESTATE;
	int rc = gc_objects(cs, live, arg, cutoff_unix_s, &st);
	if (!rc)
		rc = gc_packed(cs, live, arg, cutoff_unix_s, &st);
	qs_info(LOG_MODULE,
		"op=gc examined=%" PRIu64 " deleted=%" PRIu64 " bytes=%" PRIu64
		" kept_pinned=%" PRIu64 " kept_young=%" PRIu64 " err=%s",
		st.examined, st.deleted, st.deleted_bytes, st.kept_pinned, st.kept_young,
		qs_strerror(rc));
	if (stats)
		*stats = st;
	return rc;
}

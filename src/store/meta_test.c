/* Tests for the metadata store on real SQLite files in a fresh temporary directory per test:
 * migrations (reopen, a newer schema, a foreign database), every command's success and error
 * paths, the version sequence, "same" and conflict leaving the database byte-for-byte
 * unchanged, history rows, membership, group commit with a failing command, and durability
 * across a kill -9 of the process that applied a command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "core/sha256.h"
#include "store/meta.h"

struct fixture {
	char dir[64];
	char path[96];
	struct qs_meta *m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/qs-meta-test-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/meta.db", f->dir);
	if (qs_meta_open(f->path, &f->m) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	qs_meta_close(f->m);
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	int rc = rmdir(f->dir);
	free(f);
	return rc;
}

/* ---- raw SQLite access, to look at what the store wrote ---- */

static sqlite3 *raw_open(const char *path)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	return db;
}

static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* SHA-256 over every row of every table, so "nothing changed" is checked byte for byte. */
static void snapshot(const char *path, uint8_t out[QS_SHA256_LEN])
{
	static const char *const tables[] = {
		"SELECT * FROM clients ORDER BY id",
		"SELECT * FROM roots ORDER BY id",
		"SELECT * FROM members ORDER BY client, root",
		"SELECT * FROM entries ORDER BY root, path",
		"SELECT * FROM versions ORDER BY root, path, version",
		"SELECT * FROM settings ORDER BY key",
		"SELECT * FROM commands ORDER BY seq",
		"SELECT * FROM sqlite_sequence ORDER BY name",
	};
	sqlite3 *db = raw_open(path);
	struct qs_sha256 h;
	assert_int_equal(qs_sha256_init(&h), 0);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		sqlite3_stmt *s = NULL;
		assert_int_equal(sqlite3_prepare_v2(db, tables[t], -1, &s, NULL), SQLITE_OK);
		while (sqlite3_step(s) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(s); c++) {
				int type = sqlite3_column_type(s, c);
				const void *p = sqlite3_column_blob(s, c);
				int n = sqlite3_column_bytes(s, c);
				qs_sha256_update(&h, &type, sizeof(type));
				qs_sha256_update(&h, &n, sizeof(n));
				if (p)
					qs_sha256_update(&h, p, (size_t)n);
			}
		}
		sqlite3_finalize(s);
		qs_sha256_update(&h, "|", 1);
	}
	qs_sha256_final(&h, out);
	sqlite3_close(db);
}

/* ---- commands ---- */

static void token_of(uint8_t token[QS_META_TOKEN_LEN], uint8_t seed)
{
	memset(token, seed, QS_META_TOKEN_LEN);
}

static struct qs_meta_cmd cmd_client(const char *name, uint8_t token_seed)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_REGISTER_CLIENT;
	c.now_unix_ms = 1000;
	snprintf(c.u.register_client.name, sizeof(c.u.register_client.name), "%s", name);
	uint8_t token[QS_META_TOKEN_LEN];
	token_of(token, token_seed);
	assert_int_equal(qs_sha256(token, sizeof(token), c.u.register_client.token_hash), 0);
	return c;
}

static struct qs_meta_cmd cmd_root(uint64_t client, const char *name)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_REGISTER_ROOT;
	c.now_unix_ms = 2000;
	c.client_id = client;
	snprintf(c.u.register_root.name, sizeof(c.u.register_root.name), "%s", name);
	snprintf(c.u.register_root.password_hash, sizeof(c.u.register_root.password_hash),
		 "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA");
	return c;
}

static struct qs_meta_cmd cmd_member(enum qs_meta_cmd_type type, uint64_t client, uint64_t root)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = type;
	c.now_unix_ms = 3000;
	c.client_id = client;
	if (type == QS_CMD_JOIN_ROOT)
		c.u.join_root.root_id = root;
	else
		c.u.leave_root.root_id = root;
	return c;
}

/* A real manifest encoding (docs/manifest.md): one 100-byte chunk whose hash is 32 x 0xab,
 * plus one byte more than sizeof needs, as a string literal would have. */
static const uint8_t manifest_bytes[] = {
	'Q',  'S',  'M',  'F',  1,    0,    0,    0,    0,    0,    0,    0,    100,  0,
	0,    0,    1,    0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0,    0,    0,    100,  0};

static struct qs_meta_cmd cmd_put(uint64_t client, uint64_t root, const char *path, uint64_t base,
				  enum qs_kind kind, uint8_t content_id)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_PUT_VERSION;
	c.now_unix_ms = 4000 + content_id;
	c.client_id = client;
	c.u.put_version.root_id = root;
	c.u.put_version.path = path;
	c.u.put_version.base_version = base;
	c.u.put_version.file.content.kind = kind;
	memset(c.u.put_version.file.content.hash, content_id, QS_CONTENT_HASH_LEN);
	c.u.put_version.file.mode = 0644;
	c.u.put_version.file.mtime_ns = 1234567890123456789;
	c.u.put_version.file.size = 100u + content_id;
	if (kind == QS_KIND_FILE || kind == QS_KIND_SYMLINK) {
		c.u.put_version.file.manifest = manifest_bytes;
		c.u.put_version.file.manifest_len = sizeof(manifest_bytes) - 1;
	}
	return c;
}

static uint64_t apply_ok(struct qs_meta *m, const struct qs_meta_cmd *c)
{
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(m, c, &r), 0);
	return r.id;
}

static struct qs_decision put_ok(struct qs_meta *m, const struct qs_meta_cmd *c)
{
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(m, c, &r), 0);
	return r.decision;
}

/* A client that created root "photos": *client and *root. */
static void client_with_root(struct qs_meta *m, uint64_t *client, uint64_t *root)
{
	struct qs_meta_cmd c = cmd_client("laptop", 1);
	*client = apply_ok(m, &c);
	c = cmd_root(*client, "photos");
	*root = apply_ok(m, &c);
}

/* ---- migrations ---- */

static void test_open_twice_keeps_schema_and_data(void **state)
{
	struct fixture *f = *state;
	int version = qs_meta_schema_version(f->m);
	assert_true(version >= 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM migrations"), version);
	assert_int_equal(raw_int(f->path, "SELECT max(version) FROM migrations"), version);
	struct qs_meta_cmd c = cmd_client("laptop", 1);
	uint64_t id = apply_ok(f->m, &c);
	qs_meta_close(f->m);
	f->m = NULL;
	assert_int_equal(qs_meta_open(f->path, &f->m), 0);
	assert_int_equal(qs_meta_schema_version(f->m), version);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM migrations"), version);
	uint8_t token[QS_META_TOKEN_LEN];
	token_of(token, 1);
	assert_int_equal(qs_meta_client_check(f->m, id, token), 0);
}

static void test_settings_wal_and_foreign_keys(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = raw_open(f->path);
	sqlite3_stmt *s = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* The entries -> versions foreign key is enforced on the store's connection: a version
	 * row cannot be removed from under its entry. */
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd p = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &p);
	db = raw_open(f->path);
	assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "DELETE FROM versions", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_newer_schema_is_refused(void **state)
{
	struct fixture *f = *state;
	int version = qs_meta_schema_version(f->m);
	qs_meta_close(f->m);
	f->m = NULL;
	char sql[128];
	snprintf(sql, sizeof(sql), "INSERT INTO migrations (version, name) VALUES (%d, 'future')",
		 version + 1);
	raw_exec(f->path, sql);
	struct qs_meta *m = (struct qs_meta *)(uintptr_t)1;
	assert_int_equal(qs_meta_open(f->path, &m), QS_EIO);
	assert_ptr_equal(m, (struct qs_meta *)(uintptr_t)1); /* untouched on error */
	/* Removing the future migration makes it openable again: nothing else was changed. */
	raw_exec(f->path, "DELETE FROM migrations WHERE name = 'future'");
	assert_int_equal(qs_meta_open(f->path, &f->m), 0);
	assert_int_equal(qs_meta_schema_version(f->m), version);
}

static void test_foreign_database_is_refused(void **state)
{
	struct fixture *f = *state;
	char path[128];
	snprintf(path, sizeof(path), "%s/other.db", f->dir);
	raw_exec(path, "CREATE TABLE t (x INTEGER)");
	struct qs_meta *m = NULL;
	assert_int_equal(qs_meta_open(path, &m), QS_EIO);
	assert_null(m);
	unlink(path);
	assert_int_equal(qs_meta_open("/nonexistent-dir/x/meta.db", &m), QS_EIO);
}

/* ---- clients, roots, members ---- */

static void test_register_client(void **state)
{
	struct fixture *f = *state;
	struct qs_meta_cmd c = cmd_client("laptop", 1);
	struct qs_meta_result r;
	memset(&r, 0xee, sizeof(r));
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.id, 1);
	c = cmd_client("laptop", 2); /* names need not be unique: ids are */
	assert_int_equal(apply_ok(f->m, &c), 2);

	uint8_t token[QS_META_TOKEN_LEN];
	token_of(token, 1);
	assert_int_equal(qs_meta_client_check(f->m, 1, token), 0);
	assert_int_equal(qs_meta_client_check(f->m, 2, token), QS_EACCES);
	token[QS_META_TOKEN_LEN - 1] ^= 1;
	assert_int_equal(qs_meta_client_check(f->m, 1, token), QS_EACCES);
	assert_int_equal(qs_meta_client_check(f->m, 3, token), QS_ENOENT);
	assert_int_equal(qs_meta_client_check(f->m, 0, token), QS_ENOENT);
	assert_int_equal(qs_meta_client_check(f->m, UINT64_MAX, token), QS_ENOENT);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands WHERE type = 1"), 2);
}

static void test_register_client_bad_names(void **state)
{
	struct fixture *f = *state;
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	static const char *const bad[] = {"", "a\nb", "tab\there", "\xc0\xaf", "\xff", "del\x7f"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qs_meta_cmd c = cmd_client(bad[i], 1);
		struct qs_meta_result r;
		assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	}
	struct qs_meta_cmd c = cmd_client("x", 1);
	memset(c.u.register_client.name, 'n', sizeof(c.u.register_client.name)); /* no NUL */
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c.type = (enum qs_meta_cmd_type)99;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
	/* 255 bytes is the limit and accepted; UTF-8 names are fine. */
	c = cmd_client("x", 1);
	memset(c.u.register_client.name, 'n', QS_META_NAME_MAX);
	c.u.register_client.name[QS_META_NAME_MAX] = '\0';
	apply_ok(f->m, &c);
	c = cmd_client("Ordinateur de Zoé", 1);
	apply_ok(f->m, &c);
}

static void test_register_root(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	assert_int_equal(root, 1);
	assert_true(qs_meta_is_member(f->m, client, root));

	uint64_t id = 0;
	char hash[128];
	assert_int_equal(qs_meta_root_by_name(f->m, "photos", &id, hash, sizeof(hash)), 0);
	assert_int_equal(id, root);
	assert_string_equal(hash, "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA");
	assert_int_equal(qs_meta_root_by_name(f->m, "photos", &id, hash, 8), QS_E2BIG);
	assert_int_equal(qs_meta_root_by_name(f->m, "music", &id, hash, sizeof(hash)), QS_ENOENT);

	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	struct qs_meta_cmd c = cmd_root(client, "photos");
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EEXIST);
	c = cmd_root(client + 10, "music");
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_root(0, "music");
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_root(client, "music");
	c.u.register_root.password_hash[0] = '\0';
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_root(client, "");
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));

	c = cmd_root(client, "music");
	assert_int_equal(apply_ok(f->m, &c), root + 1);
}

static int collect_ids(void *arg, uint64_t id)
{
	uint64_t *ids = arg;
	ids[++ids[0]] = id;
	return 0;
}

static void test_join_and_leave(void **state)
{
	struct fixture *f = *state;
	uint64_t owner, root;
	client_with_root(f->m, &owner, &root);
	struct qs_meta_cmd c = cmd_client("desktop", 2);
	uint64_t other = apply_ok(f->m, &c);
	assert_false(qs_meta_is_member(f->m, other, root));

	c = cmd_member(QS_CMD_JOIN_ROOT, other, root);
	assert_int_equal(apply_ok(f->m, &c), root);
	assert_true(qs_meta_is_member(f->m, other, root));
	uint64_t ids[8] = {0};
	assert_int_equal(qs_meta_members(f->m, root, collect_ids, ids), 0);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], owner);
	assert_int_equal(ids[2], other);

	/* Joining again changes nothing, not even the log. */
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	assert_int_equal(apply_ok(f->m, &c), root);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));

	struct qs_meta_result r;
	c = cmd_member(QS_CMD_JOIN_ROOT, other, root + 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_member(QS_CMD_JOIN_ROOT, other + 1, root);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_member(QS_CMD_LEAVE_ROOT, other, root + 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_member(QS_CMD_LEAVE_ROOT, 0, root);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);

	c = cmd_member(QS_CMD_LEAVE_ROOT, other, root);
	apply_ok(f->m, &c);
	assert_false(qs_meta_is_member(f->m, other, root));
	snapshot(f->path, before);
	apply_ok(f->m, &c); /* leaving again: nothing to do */
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
	memset(ids, 0, sizeof(ids));
	assert_int_equal(qs_meta_members(f->m, root, collect_ids, ids), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], owner);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands WHERE type IN (3, 4)"), 2);
}

static void test_server_password(void **state)
{
	struct fixture *f = *state;
	char out[128];
	memset(out, 'x', sizeof(out));
	assert_int_equal(qs_meta_server_password(f->m, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(qs_meta_server_password(f->m, out, 64), QS_EINVAL);

	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_SET_SERVER_PASSWORD;
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL); /* empty */
	memset(c.u.set_server_password.password_hash, 'h', 128);  /* unterminated */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	snprintf(c.u.set_server_password.password_hash, 128, "$argon2id$first");
	apply_ok(f->m, &c);
	snprintf(c.u.set_server_password.password_hash, 128, "$argon2id$second");
	apply_ok(f->m, &c);
	assert_int_equal(qs_meta_server_password(f->m, out, sizeof(out)), 0);
	assert_string_equal(out, "$argon2id$second");
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM settings"), 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands WHERE type = 6"), 2);
}

/* ---- versions ---- */

static void test_fast_forward_sequence_1_2_3(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	for (uint8_t i = 1; i <= 3; i++) {
		struct qs_meta_cmd c = cmd_put(client, root, "docs/a.txt", i - 1u, QS_KIND_FILE, i);
		struct qs_decision d = put_ok(f->m, &c);
		assert_int_equal(d.verdict, QS_VERDICT_FAST_FORWARD);
		assert_int_equal(d.conflict, QS_CONFLICT_NONE);
		assert_int_equal(d.version, i);
	}
	struct qs_version_entry e;
	struct qs_meta_file file;
	uint8_t *manifest = NULL;
	assert_int_equal(qs_meta_entry(f->m, root, "docs/a.txt", &e, &file, &manifest), 0);
	assert_int_equal(e.version, 3);
	assert_int_equal(e.content.kind, QS_KIND_FILE);
	assert_int_equal(e.content.hash[0], 3);
	assert_int_equal(file.size, 103);
	assert_int_equal(file.mode, 0644);
	assert_int_equal(file.mtime_ns, 1234567890123456789);
	assert_non_null(manifest);
	assert_ptr_equal(file.manifest, manifest);
	assert_int_equal(file.manifest_len, sizeof(manifest_bytes) - 1);
	assert_memory_equal(manifest, manifest_bytes, file.manifest_len);
	qs_free(manifest);

	/* History: one row per accepted version, each with its own content and time. */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions"), 3);
	assert_int_equal(raw_int(f->path, "SELECT sum(version) FROM versions"), 6);
	for (int v = 1; v <= 3; v++) {
		uint8_t hash[QS_CONTENT_HASH_LEN];
		char hex[QS_SHA256_HEX_LEN + 1], sql[256];
		memset(hash, v, sizeof(hash));
		qs_hex_encode(hash, sizeof(hash), hex);
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM versions WHERE version = %d AND size = %d"
			 " AND lower(hex(content_hash)) = '%s'",
			 v, 100 + v, hex);
		assert_int_equal(raw_int(f->path, sql), 1);
	}
	assert_int_equal(
		raw_int(f->path, "SELECT accepted_unix_ms FROM versions WHERE version = 1"), 4001);
	assert_int_equal(raw_int(f->path, "SELECT modified_by FROM versions WHERE version = 3"),
			 client);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands WHERE type = 5"), 3);
	assert_int_equal(raw_int(f->path, "SELECT max(version) FROM commands WHERE type = 5"), 3);
}

static void test_same_leaves_database_unchanged(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "a", 1, QS_KIND_FILE, 2);
	put_ok(f->m, &c);

	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	/* The retry of the accepted proposal (base 1), and the same content at base 2. */
	for (uint64_t base = 1; base <= 2; base++) {
		c = cmd_put(client, root, "a", base, QS_KIND_FILE, 2);
		c.u.put_version.file.mode = 0600; /* metadata is not content */
		struct qs_decision d = put_ok(f->m, &c);
		assert_int_equal(d.verdict, QS_VERDICT_SAME);
		assert_int_equal(d.version, 2);
	}
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
}

static int collect_conflict(void *arg, const char *path, uint64_t server_version)
{
	char *out = arg;
	size_t len = strlen(out);
	snprintf(out + len, 256 - len, "%s@%llu;", path, (unsigned long long)server_version);
	return 0;
}

static int collect_candidate(void *arg, const struct qs_meta_candidate *c)
{
	struct qs_meta_candidate *out = arg;
	size_t i = 0;
	while (out[i].id != 0)
		i++;
	assert_true(i < 7);
	out[i] = *c;
	out[i].path = NULL; /* borrowed: not valid after the callback */
	return 0;
}

static struct qs_meta_cmd cmd_resolve(uint64_t client, uint64_t root, const char *path,
				      uint64_t candidate, uint64_t server_version)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_RESOLVE_CONFLICT;
	c.now_unix_ms = 9000;
	c.client_id = client;
	c.u.resolve.root_id = root;
	c.u.resolve.path = path;
	c.u.resolve.candidate_id = candidate;
	c.u.resolve.server_version = server_version;
	return c;
}

/* A conflicting proposal leaves the path's entry and history alone and is kept as its
 * client's candidate (one per client and path, updated in place); the choice becomes
 * version + 1 with the chosen content and closes the conflict. */
static void test_conflict_candidates_and_resolve(void **state)
{
	struct fixture *f = *state;
	uint64_t a, root;
	client_with_root(f->m, &a, &root);
	struct qs_meta_cmd c = cmd_client("desktop", 2);
	uint64_t b = apply_ok(f->m, &c);
	c = cmd_member(QS_CMD_JOIN_ROOT, b, root);
	apply_ok(f->m, &c);
	c = cmd_put(a, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(a, root, "a", 1, QS_KIND_FILE, 2);
	put_ok(f->m, &c);

	struct qs_meta_result r;
	c = cmd_put(b, root, "a", 1, QS_KIND_FILE, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_CONFLICT);
	assert_int_equal(r.decision.conflict, QS_CONFLICT_MODIFY_MODIFY);
	assert_int_equal(r.decision.version, 2);
	uint64_t cand_b = r.candidate_id;
	assert_true(cand_b > 0);
	/* b edits again: the same candidate, new content */
	c = cmd_put(b, root, "a", 1, QS_KIND_FILE, 4);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.candidate_id, cand_b);
	/* a deletes from an old base: a second candidate (delete-vs-modify) */
	c = cmd_put(a, root, "a", 1, QS_KIND_TOMBSTONE, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.conflict, QS_CONFLICT_DELETE_MODIFY);
	uint64_t cand_a = r.candidate_id;
	assert_true(cand_a > cand_b);

	struct qs_version_entry e;
	assert_int_equal(qs_meta_entry(f->m, root, "a", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 2);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions"), 2);

	char paths[256] = "";
	assert_int_equal(qs_meta_conflicts(f->m, root, NULL, 10, collect_conflict, paths), 0);
	assert_string_equal(paths, "a@2;");
	struct qs_meta_candidate cs[8];
	memset(cs, 0, sizeof(cs));
	assert_int_equal(qs_meta_candidates(f->m, root, "a", 0, 10, collect_candidate, cs), 0);
	assert_int_equal(cs[0].id, cand_b);
	assert_int_equal(cs[0].client_id, b);
	assert_string_equal(cs[0].client_name, "desktop");
	assert_int_equal(cs[0].base_version, 1);
	assert_int_equal(cs[0].content.hash[0], 4);
	assert_int_equal(cs[1].id, cand_a);
	assert_int_equal(cs[1].content.kind, QS_KIND_TOMBSTONE);
	assert_int_equal(cs[2].id, 0);
	memset(cs, 0, sizeof(cs));
	assert_int_equal(qs_meta_candidates(f->m, 0, NULL, cand_b, 10, collect_candidate, cs), 0);
	assert_int_equal(cs[0].id, cand_a);
	assert_int_equal(cs[1].id, 0);

	struct qs_content own;
	uint64_t own_id;
	assert_int_equal(qs_meta_candidate_of(f->m, root, "a", b, &own, &own_id), 0);
	assert_int_equal(own_id, cand_b);
	assert_int_equal(own.hash[0], 4);
	assert_int_equal(qs_meta_candidate_of(f->m, root, "b", b, &own, &own_id), 0);
	assert_int_equal(own_id, 0);

	struct qs_meta_file file;
	uint8_t *man = NULL;
	assert_int_equal(qs_meta_candidate_get(f->m, root, "a", cand_b, &e, &file, &man), 0);
	assert_int_equal(e.version, 2);
	assert_int_equal(file.size, 104);
	assert_int_equal(file.manifest_len, sizeof(manifest_bytes) - 1);
	qs_free(man);
	assert_int_equal(qs_meta_candidate_get(f->m, root, "other", cand_b, &e, &file, NULL),
			 QS_ENOENT);

	/* a stale choice, an unknown candidate: refused, nothing changes */
	c = cmd_resolve(a, root, "a", cand_b, 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_resolve(a, root, "a", cand_b + 100, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_resolve(a, root, "b", 0, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	/* a chooses b's candidate: version 3 with its content, made by a; conflict closed */
	c = cmd_resolve(a, root, "a", cand_b, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 3);
	assert_int_equal(qs_meta_entry(f->m, root, "a", &e, &file, NULL), 0);
	assert_int_equal(e.version, 3);
	assert_int_equal(e.content.hash[0], 4);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM candidates"), 0);
	assert_int_equal(raw_int(f->path, "SELECT modified_by FROM entries WHERE path = 'a'"), a);
	paths[0] = '\0';
	assert_int_equal(qs_meta_conflicts(f->m, root, NULL, 10, collect_conflict, paths), 0);
	assert_string_equal(paths, "");
	c = cmd_resolve(a, root, "a", 0, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);

	/* keeping the server's version (candidate 0) is a new version with the same content */
	c = cmd_put(b, root, "a", 2, QS_KIND_FILE, 5);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_CONFLICT);
	c = cmd_resolve(b, root, "a", 0, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 4);
	assert_int_equal(qs_meta_entry(f->m, root, "a", &e, NULL, NULL), 0);
	assert_int_equal(e.content.hash[0], 4);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions"), 4);
}

static void test_put_errors_change_nothing(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_client("stranger", 2);
	uint64_t stranger = apply_ok(f->m, &c);
	c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);

	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	struct qs_meta_result r;
	memset(&r, 0x5a, sizeof(r));
	struct qs_meta_result untouched = r;
	/* Membership: a client that has not joined cannot write, even to a new path. */
	c = cmd_put(stranger, root, "b", 0, QS_KIND_FILE, 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EACCES);
	c = cmd_put(stranger, root, "a", 1, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EACCES);
	c = cmd_put(client, root + 1, "a", 1, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_put(stranger + 1, root, "a", 1, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	/* The version rules: a base the server never issued (deleting with base 0 is no error:
	 * test_put_tombstone_base_zero). */
	c = cmd_put(client, root, "a", 2, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EPROTO);
	c = cmd_put(client, root, "a", 1, (enum qs_kind)9, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EPROTO);
	/* Fields: paths, a manifest on a directory, sizes past INT64_MAX. */
	static const char *const bad_paths[] = {"", "/abs", "a/../b", "a//b", "a\nb"};
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		c = cmd_put(client, root, bad_paths[i], 0, QS_KIND_FILE, 2);
		assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	}
	c = cmd_put(client, root, NULL, 0, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_put(client, root, "d", 0, QS_KIND_DIR, 0);
	c.u.put_version.file.manifest = manifest_bytes;
	c.u.put_version.file.manifest_len = 3;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_put(client, root, "b", 0, QS_KIND_FILE, 2);
	c.u.put_version.file.manifest = NULL;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_put(client, root, "b", 0, QS_KIND_FILE, 2);
	c.u.put_version.file.size = (uint64_t)INT64_MAX + 1;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	assert_memory_equal(&r, &untouched, sizeof(r)); /* results only on success */
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
}

/* A delete with base 0 (a client that never had the path: docs/versions.md): nothing to do
 * where nothing lives, a delete-vs-modify candidate where something does. */
static void test_put_tombstone_base_zero(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_result r;
	struct qs_meta_cmd c = cmd_put(client, root, "never", 0, QS_KIND_TOMBSTONE, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_SAME);
	assert_int_equal(r.decision.version, 0);
	c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "a", 0, QS_KIND_TOMBSTONE, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_CONFLICT);
	assert_int_equal(r.decision.conflict, QS_CONFLICT_DELETE_MODIFY);
	assert_int_equal(r.decision.version, 1);
	assert_true(r.candidate_id > 0);
}

/* The tree the server holds is one every client can hold (docs/conflicts.md, "Kinds"):
 * nothing live is stored below a file, and no choice or rollback puts a file over a
 * directory that holds paths. */
static struct qs_meta_cmd cmd_rollback(uint64_t client, uint64_t root, const char *path,
				       uint64_t version, uint64_t current);

static void test_tree_kinds(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_result r;
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	/* Below a file: kept as a kind candidate, nothing stored, at any depth. */
	struct qs_meta_cmd c = cmd_put(client, root, "p", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	static const char *const below[] = {"p/x", "p/d/y"};
	uint64_t cand_below[2];
	for (size_t i = 0; i < 2; i++) {
		c = cmd_put(client, root, below[i], 0, QS_KIND_FILE, 2);
		assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
		assert_int_equal(r.decision.verdict, QS_VERDICT_CONFLICT);
		assert_int_equal(r.decision.conflict, QS_CONFLICT_KIND);
		assert_int_equal(r.decision.version, 0);
		assert_true(r.candidate_id > 0);
		cand_below[i] = r.candidate_id;
		struct qs_version_entry e;
		assert_int_equal(qs_meta_entry(f->m, root, below[i], &e, NULL, NULL), 0);
		assert_int_equal(e.version, 0);
	}
	/* Choosing p/x while p is a file: refused, nothing changes. */
	snapshot(f->path, before);
	c = cmd_resolve(client, root, "p/x", cand_below[0], 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EKIND);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
	/* Once p is a directory, p/x may be chosen. */
	c = cmd_put(client, root, "p", 1, QS_KIND_DIR, 0);
	put_ok(f->m, &c);
	c = cmd_resolve(client, root, "p/x", cand_below[0], 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 1);
	/* A file chosen over a directory holding p/x: refused; a rollback of p to its file
	 * version likewise. */
	c = cmd_put(client, root, "p", 0, QS_KIND_FILE, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_CONFLICT);
	uint64_t cand = r.candidate_id;
	snapshot(f->path, before);
	c = cmd_resolve(client, root, "p", cand, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EKIND);
	c = cmd_rollback(client, root, "p", 1, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EKIND);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
	/* Once p/x is deleted, both are allowed; and the server's own version of a path that
	 * never existed (candidate 0 of p/d/y) is its deletion. */
	c = cmd_put(client, root, "p/x", 1, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);
	c = cmd_resolve(client, root, "p", cand, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 3);
	c = cmd_resolve(client, root, "p/d/y", 0, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 1);
	struct qs_version_entry e;
	assert_int_equal(qs_meta_entry(f->m, root, "p/d/y", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 1);
	assert_int_equal(e.content.kind, QS_KIND_TOMBSTONE);
}

static void test_failed_command_rolls_back_whole(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	raw_exec(f->path, "CREATE TRIGGER fail_log BEFORE INSERT ON commands"
			  " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	struct qs_meta_cmd c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EIO); /* after its versions row */
	c = cmd_root(client, "music");
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EIO); /* after its roots row */
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
	raw_exec(f->path, "DROP TRIGGER fail_log");
	c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	assert_int_equal(put_ok(f->m, &c).version, 1);
}

static void test_version_past_int64_max(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	raw_exec(f->path, "PRAGMA foreign_keys = OFF;"
			  "UPDATE versions SET version = 9223372036854775807;"
			  "UPDATE entries SET version = 9223372036854775807;");
	c = cmd_put(client, root, "a", (uint64_t)INT64_MAX, QS_KIND_FILE, 2);
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_E2BIG);
	c = cmd_put(client, root, "a", (uint64_t)INT64_MAX, QS_KIND_FILE, 1);
	assert_int_equal(put_ok(f->m, &c).verdict, QS_VERDICT_SAME);
}

static void test_delete_and_recreate_keep_history(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "l", 0, QS_KIND_SYMLINK, 1);
	assert_int_equal(put_ok(f->m, &c).version, 1);
	c = cmd_put(client, root, "l", 1, QS_KIND_TOMBSTONE, 0);
	struct qs_decision d = put_ok(f->m, &c);
	assert_int_equal(d.verdict, QS_VERDICT_FAST_FORWARD);
	assert_int_equal(d.version, 2);

	struct qs_version_entry e;
	struct qs_meta_file file;
	uint8_t *manifest = (uint8_t *)1;
	assert_int_equal(qs_meta_entry(f->m, root, "l", &e, &file, &manifest), 0);
	assert_int_equal(e.version, 2);
	assert_int_equal(e.content.kind, QS_KIND_TOMBSTONE);
	assert_null(manifest);
	assert_null(file.manifest);
	assert_int_equal(file.manifest_len, 0);

	c = cmd_put(client, root, "l", 0, QS_KIND_DIR, 7); /* re-created by someone new to it */
	d = put_ok(f->m, &c);
	assert_int_equal(d.version, 3);
	assert_int_equal(qs_meta_entry(f->m, root, "l", &e, NULL, NULL), 0);
	assert_int_equal(e.content.kind, QS_KIND_DIR);
	assert_memory_equal(e.content.hash, c.u.put_version.file.content.hash,
			    QS_CONTENT_HASH_LEN); /* a directory's hash is kept (its mode's) */
	assert_int_equal(raw_int(f->path, "SELECT group_concat(kind, '') FROM (SELECT kind FROM"
					  " versions WHERE path = 'l' ORDER BY version)"),
			 302);
}

static void test_entry_absent(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_version_entry e;
	memset(&e, 0xff, sizeof(e));
	struct qs_meta_file file;
	uint8_t *manifest = (uint8_t *)1;
	assert_int_equal(qs_meta_entry(f->m, root, "nothing/here", &e, &file, &manifest), 0);
	assert_int_equal(e.version, 0);
	assert_int_equal(e.content.kind, QS_KIND_TOMBSTONE);
	assert_null(manifest);
	assert_int_equal(qs_meta_entry(f->m, root + 5, "x", &e, &file, &manifest), 0);
	assert_int_equal(e.version, 0);
	assert_int_equal(qs_meta_entry(f->m, root, "../x", &e, &file, &manifest), QS_EINVAL);
}

struct listing {
	char paths[16][32];
	uint64_t versions[16];
	size_t n;
	size_t stop_after;
};

static int collect_entry(void *arg, const char *path, const struct qs_version_entry *e)
{
	struct listing *l = arg;
	snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s", path);
	l->versions[l->n++] = e->version;
	return l->n == l->stop_after ? 42 : 0;
}

static void test_list_pages_in_byte_order(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	static const char *const paths[] = {"b", "\xc3\xa9t\xc3\xa9", "a/b", "a", "B", "a-b"};
	for (size_t i = 0; i < 6; i++) {
		struct qs_meta_cmd c = cmd_put(client, root, paths[i], 0, QS_KIND_FILE, (uint8_t)i);
		put_ok(f->m, &c);
	}
	struct qs_meta_cmd c = cmd_put(client, root, "b", 1, QS_KIND_FILE, 9);
	put_ok(f->m, &c);
	/* Another root's entries never show. */
	c = cmd_root(client, "other");
	uint64_t other = apply_ok(f->m, &c);
	c = cmd_put(client, other, "a0", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);

	static const char *const want[] = {"B", "a", "a-b", "a/b", "b", "\xc3\xa9t\xc3\xa9"};
	struct listing l = {.stop_after = 0};
	assert_int_equal(qs_meta_list(f->m, root, NULL, 4, collect_entry, &l), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(qs_meta_list(f->m, root, l.paths[3], 100, collect_entry, &l), 0);
	assert_int_equal(l.n, 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(l.paths[i], want[i]);
	assert_int_equal(l.versions[4], 2); /* "b" was changed once */
	assert_int_equal(l.versions[0], 1);

	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	assert_int_equal(qs_meta_list(f->m, root, "", 100, collect_entry, &l), 42);
	assert_int_equal(l.n, 2);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_list(f->m, root, "\xc3\xa9t\xc3\xa9", 100, collect_entry, &l), 0);
	assert_int_equal(qs_meta_list(f->m, root, NULL, 0, collect_entry, &l), 0);
	assert_int_equal(l.n, 0);
}

/* ---- groups ---- */

static void test_group_with_one_failing_command(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_client("stranger", 2);
	uint64_t stranger = apply_ok(f->m, &c);
	int64_t commands_before = raw_int(f->path, "SELECT count(*) FROM commands");
	/* A command that fails after it wrote its version and entry rows: the log insert of path
	 * "two" is made to fail, so only a rollback of that command's own changes removes them. */
	raw_exec(f->path, "CREATE TRIGGER fail_two BEFORE INSERT ON commands WHEN NEW.path = 'two'"
			  " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");

	assert_int_equal(qs_meta_group_begin(f->m), 0);
	assert_int_equal(qs_meta_group_begin(f->m), QS_ESTATE);
	c = cmd_put(client, root, "one", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "one", 1, QS_KIND_FILE, 2); /* sees the group's own change */
	assert_int_equal(put_ok(f->m, &c).version, 2);
	struct qs_meta_result r;
	c = cmd_put(stranger, root, "two", 0, QS_KIND_FILE, 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EACCES);
	c = cmd_put(client, root, "two", 0, QS_KIND_FILE, 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EIO);
	struct qs_version_entry e;
	assert_int_equal(qs_meta_entry(f->m, root, "two", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 0);
	c = cmd_root(client, "photos");
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EEXIST);
	c = cmd_put(client, root, "three", 0, QS_KIND_FILE, 3);
	put_ok(f->m, &c);
	/* Not committed yet: another connection sees none of it. */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions"), 0);
	assert_int_equal(qs_meta_group_commit(f->m), 0);
	assert_int_equal(qs_meta_group_commit(f->m), QS_ESTATE);

	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM versions"), 3);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entries WHERE path = 'two'"), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM roots"), 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands"), commands_before + 3);
	assert_int_equal(qs_meta_entry(f->m, root, "one", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 2);
}

static void test_group_rollback_and_close_discard(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	assert_int_equal(qs_meta_group_rollback(f->m), QS_ESTATE);
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);

	assert_int_equal(qs_meta_group_begin(f->m), 0);
	struct qs_meta_cmd c = cmd_put(client, root, "a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	assert_int_equal(qs_meta_group_rollback(f->m), 0);
	struct qs_version_entry e;
	assert_int_equal(qs_meta_entry(f->m, root, "a", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 0);

	assert_int_equal(qs_meta_group_begin(f->m), 0);
	put_ok(f->m, &c);
	qs_meta_close(f->m); /* an uncommitted group is not kept */
	f->m = NULL;
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));
	assert_int_equal(qs_meta_open(f->path, &f->m), 0);
	assert_int_equal(qs_meta_entry(f->m, root, "a", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 0);
	/* Outside a group, the same command is its own transaction. */
	assert_int_equal(put_ok(f->m, &c).version, 1);
}

/* Runs fn in a child that is killed with SIGKILL right after, like kill -9 of the server. */
static void in_killed_child(const char *path, void (*fn)(struct qs_meta *m))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct qs_meta *m = NULL;
		if (qs_meta_open(path, &m) != 0)
			_exit(1);
		fn(m);
		raise(SIGKILL);
		_exit(2);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void child_apply(struct qs_meta *m)
{
	struct qs_meta_cmd c = cmd_put(1, 1, "acknowledged", 0, QS_KIND_FILE, 1);
	struct qs_meta_result r;
	if (qs_meta_apply(m, &c, &r) != 0)
		_exit(3);
}

static void child_group_uncommitted(struct qs_meta *m)
{
	struct qs_meta_cmd c = cmd_put(1, 1, "never-acknowledged", 0, QS_KIND_FILE, 1);
	struct qs_meta_result r;
	if (qs_meta_group_begin(m) != 0 || qs_meta_apply(m, &c, &r) != 0)
		_exit(3);
}

static void child_group_committed(struct qs_meta *m)
{
	struct qs_meta_cmd c = cmd_put(1, 1, "group-acknowledged", 0, QS_KIND_FILE, 1);
	struct qs_meta_result r;
	if (qs_meta_group_begin(m) != 0 || qs_meta_apply(m, &c, &r) != 0 ||
	    qs_meta_group_commit(m) != 0)
		_exit(3);
}

static void test_applied_survives_kill(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	assert_int_equal(client, 1);
	assert_int_equal(root, 1);
	qs_meta_close(f->m);
	f->m = NULL;
	in_killed_child(f->path, child_apply);
	in_killed_child(f->path, child_group_uncommitted);
	in_killed_child(f->path, child_group_committed);
	assert_int_equal(qs_meta_open(f->path, &f->m), 0);
	struct qs_version_entry e;
	assert_int_equal(qs_meta_entry(f->m, root, "acknowledged", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 1);
	assert_int_equal(qs_meta_entry(f->m, root, "group-acknowledged", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 1);
	assert_int_equal(qs_meta_entry(f->m, root, "never-acknowledged", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 0);
}

/* A root knows the chunks its own versions use, and only those. */
static void test_root_chunks(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	uint8_t used[32], other[32];
	memset(used, 0xab, sizeof(used));
	memset(other, 0xcd, sizeof(other));
	bool present = true;
	assert_int_equal(qs_meta_root_has_chunk(f->m, root, used, &present), 0);
	assert_false(present);
	struct qs_meta_cmd c = cmd_put(client, root, "f", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	assert_int_equal(qs_meta_root_has_chunk(f->m, root, used, &present), 0);
	assert_true(present);
	assert_int_equal(qs_meta_root_has_chunk(f->m, root, other, &present), 0);
	assert_false(present);
	assert_int_equal(qs_meta_root_has_chunk(f->m, root + 1, used, &present), 0);
	assert_false(present);
}

/* ---- admin queries ---- */

struct clients_seen {
	uint64_t ids[8];
	char names[8][16];
	int64_t created[8];
	size_t n, stop_after;
};

static int collect_client(void *arg, const struct qs_meta_client_info *c)
{
	struct clients_seen *l = arg;
	l->ids[l->n] = c->id;
	snprintf(l->names[l->n], sizeof(l->names[0]), "%.15s", c->name);
	l->created[l->n++] = c->created_unix_ms;
	return l->n == l->stop_after ? 7 : 0;
}

static void test_admin_clients(void **state)
{
	struct fixture *f = *state;
	static const char *const names[] = {"laptop", "desk", "phone"};
	uint64_t ids[3];
	for (size_t i = 0; i < 3; i++) {
		struct qs_meta_cmd c = cmd_client(names[i], (uint8_t)i);
		ids[i] = apply_ok(f->m, &c);
	}
	struct clients_seen l = {.stop_after = 0};
	assert_int_equal(qs_meta_clients(f->m, 0, 2, collect_client, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(qs_meta_clients(f->m, l.ids[1], 10, collect_client, &l), 0);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(l.ids[i], ids[i]);
		assert_string_equal(l.names[i], names[i]);
		assert_int_equal(l.created[i], 1000);
	}
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	assert_int_equal(qs_meta_clients(f->m, 0, 10, collect_client, &l), 7);
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_clients(f->m, ids[2], 10, collect_client, &l), 0);
	assert_int_equal(qs_meta_clients(f->m, 0, 0, collect_client, &l), 0);
	assert_int_equal(qs_meta_clients(f->m, UINT64_MAX, 10, collect_client, &l), 0);
	assert_int_equal(l.n, 0);

	struct qs_meta_client_info c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(qs_meta_client(f->m, ids[1], &c), 0);
	assert_int_equal(c.id, ids[1]);
	assert_string_equal(c.name, "desk");
	assert_int_equal(c.created_unix_ms, 1000);
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(qs_meta_client(f->m, ids[2] + 1, &c), QS_ENOENT);
	assert_int_equal(qs_meta_client(f->m, 0, &c), QS_ENOENT);
	assert_int_equal(qs_meta_client(f->m, UINT64_MAX, &c), QS_ENOENT);
	assert_int_equal(c.id, 0x5a5a5a5a5a5a5a5aULL); /* untouched on error */
}

struct roots_seen {
	uint64_t ids[8];
	char names[8][16];
	size_t n;
};

static int collect_root(void *arg, uint64_t root_id, const char *name, bool joined)
{
	struct roots_seen *l = arg;
	assert_true(joined);
	l->ids[l->n] = root_id;
	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
	return 0;
}

static void test_admin_roots(void **state)
{
	struct fixture *f = *state;
	uint64_t client, photos;
	client_with_root(f->m, &client, &photos);
	struct qs_meta_cmd c = cmd_client("other", 2);
	uint64_t other = apply_ok(f->m, &c);
	c = cmd_root(other, "docs");
	uint64_t docs = apply_ok(f->m, &c);
	c = cmd_root(other, "zeta");
	apply_ok(f->m, &c);
	c = cmd_member(QS_CMD_JOIN_ROOT, client, docs);
	apply_ok(f->m, &c);

	struct qs_meta_root_info r;
	assert_int_equal(qs_meta_root(f->m, docs, &r), 0);
	assert_int_equal(r.id, docs);
	assert_string_equal(r.name, "docs");
	assert_int_equal(r.created_by, other);
	assert_int_equal(r.created_unix_ms, 2000);
	memset(&r, 0x5a, sizeof(r));
	assert_int_equal(qs_meta_root(f->m, docs + 10, &r), QS_ENOENT);
	assert_int_equal(qs_meta_root(f->m, 0, &r), QS_ENOENT);
	assert_int_equal(r.id, 0x5a5a5a5a5a5a5a5aULL);

	struct roots_seen l = {.n = 0};
	assert_int_equal(qs_meta_client_roots(f->m, client, collect_root, &l), 0);
	assert_int_equal(l.n, 2); /* by name: docs, photos; not zeta */
	assert_string_equal(l.names[0], "docs");
	assert_int_equal(l.ids[0], docs);
	assert_string_equal(l.names[1], "photos");
	assert_int_equal(l.ids[1], photos);
	c = cmd_member(QS_CMD_LEAVE_ROOT, client, docs);
	apply_ok(f->m, &c);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_client_roots(f->m, client, collect_root, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "photos");
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_client_roots(f->m, other + 100, collect_root, &l), 0);
	assert_int_equal(qs_meta_client_roots(f->m, 0, collect_root, &l), 0);
	assert_int_equal(l.n, 0);
}

struct versions_seen {
	char paths[16][16];
	uint64_t versions[16];
	enum qs_kind kinds[16];
	uint64_t sizes[16], by[16];
	int64_t accepted[16];
	uint32_t modes[16];
	enum qs_meta_op ops[16];
	size_t n;
};

static int collect_version(void *arg, const struct qs_meta_version_info *v)
{
	struct versions_seen *l = arg;
	assert_true(l->n < 16);
	snprintf(l->paths[l->n], sizeof(l->paths[0]), "%s", v->path);
	l->versions[l->n] = v->version;
	l->kinds[l->n] = v->content.kind;
	l->sizes[l->n] = v->size;
	l->by[l->n] = v->modified_by;
	l->accepted[l->n] = v->accepted_unix_ms;
	l->ops[l->n] = v->op;
	l->modes[l->n++] = v->mode;
	return 0;
}

static void test_admin_entries_below(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	/* '-' sorts before '/' and '0' right after it: neither "a-b" nor "a0" is below "a". */
	static const char *const paths[] = {"a", "a/b", "a/b/c", "a-b", "a0", "ab", "b", "a/x"};
	for (size_t i = 0; i < 8; i++) {
		bool dir = i <= 1; /* nothing lives below a file (test_tree_kinds) */
		struct qs_meta_cmd c =
			cmd_put(client, root, paths[i], 0, dir ? QS_KIND_DIR : QS_KIND_FILE,
				dir ? 0 : (uint8_t)i);
		put_ok(f->m, &c);
	}
	struct qs_meta_cmd c = cmd_put(client, root, "a/x", 1, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);
	c = cmd_root(client, "other");
	uint64_t other = apply_ok(f->m, &c);
	c = cmd_put(client, other, "a/zz", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);

	struct versions_seen l = {.n = 0};
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "a", NULL, false, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.paths[0], "a/b");
	assert_string_equal(l.paths[1], "a/b/c");
	assert_int_equal(l.kinds[1], QS_KIND_FILE);
	assert_int_equal(l.sizes[1], 102);
	assert_int_equal(l.by[1], client);
	assert_int_equal(l.accepted[1], 4002);
	assert_int_equal(l.modes[1], 0644);
	memset(&l, 0, sizeof(l));
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "a", NULL, true, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.paths[2], "a/x");
	assert_int_equal(l.kinds[2], QS_KIND_TOMBSTONE);
	assert_int_equal(l.versions[2], 2);
	/* Pages: a cursor before the range starts at the range, one inside goes on after it. */
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_entries_below(f->m, root, "a", "a", true, 1, collect_version, &l),
			 0);
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "a", l.paths[0], true, 1, collect_version, &l),
		0);
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "a", l.paths[1], true, 5, collect_version, &l),
		0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.paths[1], "a/b/c");
	assert_string_equal(l.paths[2], "a/x");
	memset(&l, 0, sizeof(l));
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "a/b", NULL, false, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.paths[0], "a/b/c");
	/* The whole root, in byte order, without the tombstone. */
	static const char *const all[] = {"a", "a-b", "a/b", "a/b/c", "a0", "ab", "b"};
	memset(&l, 0, sizeof(l));
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "", NULL, false, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(l.paths[i], all[i]);
	assert_int_equal(l.kinds[0], QS_KIND_DIR);
	memset(&l, 0, sizeof(l));
	assert_int_equal(
		qs_meta_entries_below(f->m, root, NULL, "ab", false, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof(l));
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "nothing", NULL, true, 100, collect_version, &l),
		0);
	assert_int_equal(qs_meta_entries_below(f->m, root, "a", NULL, true, 0, collect_version, &l),
			 0);
	assert_int_equal(
		qs_meta_entries_below(f->m, other + 1, NULL, NULL, true, 10, collect_version, &l),
		0);
	assert_int_equal(l.n, 0);
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "a/", NULL, true, 10, collect_version, &l),
		QS_EINVAL);
	assert_int_equal(
		qs_meta_entries_below(f->m, root, "../a", NULL, true, 10, collect_version, &l),
		QS_EINVAL);
}

static void test_admin_history(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "f", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 1, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 2, QS_KIND_DIR, 3);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "g", 0, QS_KIND_FILE, 4);
	put_ok(f->m, &c);

	struct versions_seen l = {.n = 0};
	assert_int_equal(qs_meta_history(f->m, root, "f", 0, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 3);
	static const enum qs_kind kinds[] = {QS_KIND_FILE, QS_KIND_TOMBSTONE, QS_KIND_DIR};
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(l.paths[i], "f");
		assert_int_equal(l.versions[i], i + 1);
		assert_int_equal(l.kinds[i], kinds[i]);
	}
	assert_int_equal(l.sizes[0], 101);
	assert_int_equal(l.accepted[2], 4003);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_history(f->m, root, "f", 1, 1, collect_version, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.versions[0], 2);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_history(f->m, root, "f", 3, 10, collect_version, &l), 0);
	assert_int_equal(qs_meta_history(f->m, root, "none", 0, 10, collect_version, &l), 0);
	assert_int_equal(qs_meta_history(f->m, root + 1, "f", 0, 10, collect_version, &l), 0);
	assert_int_equal(qs_meta_history(f->m, root, "f", UINT64_MAX, 10, collect_version, &l), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(qs_meta_history(f->m, root, "/f", 0, 10, collect_version, &l), QS_EINVAL);

	struct qs_meta_version_info v;
	assert_int_equal(qs_meta_entry_info(f->m, root, "f", &v), 0);
	assert_string_equal(v.path, "f");
	assert_int_equal(v.version, 3);
	assert_int_equal(v.content.kind, QS_KIND_DIR);
	assert_int_equal(v.modified_by, client);
	assert_int_equal(v.size, 103);
	memset(&v, 0x5a, sizeof(v));
	assert_int_equal(qs_meta_entry_info(f->m, root, "none", &v), QS_ENOENT);
	assert_int_equal(qs_meta_entry_info(f->m, 0, "f", &v), QS_ENOENT);
	assert_int_equal(qs_meta_entry_info(f->m, root, "a//b", &v), QS_EINVAL);
	assert_int_equal(v.version, 0x5a5a5a5a5a5a5a5aULL);
}

/* ---- history: operations, rollback, retention ---- */

static struct qs_meta_cmd cmd_rollback(uint64_t client, uint64_t root, const char *path,
				       uint64_t version, uint64_t current)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_ROLLBACK;
	c.now_unix_ms = 9000;
	c.client_id = client;
	c.u.rollback.root_id = root;
	c.u.rollback.path = path;
	c.u.rollback.version = version;
	c.u.rollback.current_version = current;
	return c;
}

static void test_history_operations(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "f", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 1, QS_KIND_FILE, 2);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 2, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 3, QS_KIND_FILE, 4);
	put_ok(f->m, &c);
	struct versions_seen l = {.n = 0};
	assert_int_equal(qs_meta_history(f->m, root, "f", 0, 100, collect_version, &l), 0);
	static const enum qs_meta_op ops[] = {QS_OP_CREATE, QS_OP_MODIFY, QS_OP_DELETE,
					      QS_OP_CREATE};
	assert_int_equal(l.n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(l.ops[i], ops[i]);
	assert_string_equal(qs_meta_op_name(QS_OP_ROLLBACK), "rollback");
	/* Newest first, in pages. */
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_history_desc(f->m, root, "f", 0, 2, collect_version, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.versions[0], 4);
	assert_int_equal(l.versions[1], 3);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_history_desc(f->m, root, "f", 3, 10, collect_version, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.versions[0], 2);
	assert_int_equal(l.versions[1], 1);
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_history_desc(f->m, root, "f", 1, 10, collect_version, &l), 0);
	assert_int_equal(l.n, 0);
}

/* Migration 3 classifies rows written before it: create, modify, delete, create again. */
static void test_migration_3_backfills_operations(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "f", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 1, QS_KIND_FILE, 2);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 2, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "f", 3, QS_KIND_FILE, 4);
	put_ok(f->m, &c);
	qs_meta_close(f->m);
	f->m = NULL;
	/* Back to schema 2: drop what migrations 3 and 4 made and their records, reopen. */
	raw_exec(f->path, "ALTER TABLE versions DROP COLUMN op; DROP TABLE candidates;"
			  " DELETE FROM migrations WHERE version >= 3;");
	assert_int_equal(raw_int(f->path, "SELECT max(version) FROM migrations"), 2);
	assert_int_equal(qs_meta_open(f->path, &f->m), 0);
	assert_int_equal(qs_meta_schema_version(f->m), 4);
	assert_int_equal(raw_int(f->path, "SELECT group_concat(op, '') FROM (SELECT op FROM"
					  " versions ORDER BY version)"),
			 1231);
}

static void test_rollback(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root, other;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_client("outsider", 9);
	other = apply_ok(f->m, &c);
	for (uint8_t i = 1; i <= 3; i++) {
		c = cmd_put(client, root, "f", i - 1u, QS_KIND_FILE, i);
		put_ok(f->m, &c);
	}
	/* Stale: the user saw version 2, the server is at 3. Nothing changes. */
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	struct qs_meta_result r;
	c = cmd_rollback(client, root, "f", 1, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_rollback(client, root, "f", 7, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_rollback(client, root, "nope", 1, 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ENOENT);
	c = cmd_rollback(other, root, "f", 1, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EACCES);
	c = cmd_rollback(client, root, "../f", 1, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	/* The current version itself: nothing to do. */
	c = cmd_rollback(client, root, "f", 3, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_SAME);
	assert_int_equal(r.decision.version, 3);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));

	c = cmd_rollback(client, root, "f", 1, 3);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_FAST_FORWARD);
	assert_int_equal(r.decision.version, 4);
	struct qs_version_entry e;
	struct qs_meta_file file;
	uint8_t *enc = NULL;
	assert_int_equal(qs_meta_entry(f->m, root, "f", &e, &file, &enc), 0);
	assert_int_equal(e.version, 4);
	uint8_t want[QS_CONTENT_HASH_LEN];
	memset(want, 1, sizeof(want));
	assert_memory_equal(e.content.hash, want, sizeof(want));
	assert_int_equal(file.size, 101);
	assert_int_equal(file.manifest_len, sizeof(manifest_bytes) - 1);
	qs_free(enc);
	struct qs_meta_version_info v;
	assert_int_equal(qs_meta_version_get(f->m, root, "f", 4, &v, NULL, NULL), 0);
	assert_int_equal(v.op, QS_OP_ROLLBACK);
	assert_int_equal(v.modified_by, client);
	assert_int_equal(v.accepted_unix_ms, 9000);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands WHERE type = 9"), 1);

	/* A deleted path comes back by rolling back to a version before the delete. */
	c = cmd_put(client, root, "f", 4, QS_KIND_TOMBSTONE, 0);
	assert_int_equal(put_ok(f->m, &c).version, 5);
	c = cmd_rollback(client, root, "f", 2, 5);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 6);
	assert_int_equal(qs_meta_entry(f->m, root, "f", &e, NULL, NULL), 0);
	assert_int_equal(e.content.kind, QS_KIND_FILE);
	memset(want, 2, sizeof(want));
	assert_memory_equal(e.content.hash, want, sizeof(want));
	/* And a rollback to the tombstone deletes it again. */
	c = cmd_rollback(client, root, "f", 5, 6);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(qs_meta_entry(f->m, root, "f", &e, NULL, NULL), 0);
	assert_int_equal(e.version, 7);
	assert_int_equal(e.content.kind, QS_KIND_TOMBSTONE);
}

static struct qs_meta_cmd cmd_prune(uint32_t keep_versions, uint32_t keep_days, int64_t now)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_PRUNE;
	c.now_unix_ms = now;
	c.u.prune.keep_versions = keep_versions;
	c.u.prune.keep_days = keep_days;
	return c;
}

static uint64_t prune_ok(struct qs_meta *m, uint32_t keep_versions, uint32_t keep_days, int64_t now)
{
	struct qs_meta_cmd c = cmd_prune(keep_versions, keep_days, now);
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(m, &c, &r), 0);
	return r.pruned;
}

static int count_hash(void *arg, const uint8_t hash[32])
{
	(void)hash;
	(*(size_t *)arg)++;
	return 0;
}

static void test_prune(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	/* f: versions 1..8 accepted at 4001..4008 ms; g: one version. */
	for (uint8_t i = 1; i <= 8; i++) {
		struct qs_meta_cmd c = cmd_put(client, root, "f", i - 1u, QS_KIND_FILE, i);
		put_ok(f->m, &c);
	}
	struct qs_meta_cmd c = cmd_put(client, root, "g", 0, QS_KIND_FILE, 20);
	put_ok(f->m, &c);
	size_t refs = 0;
	assert_int_equal(qs_meta_chunk_refs(f->m, count_hash, &refs), 0);
	assert_int_equal(refs, 9);

	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	assert_int_equal(prune_ok(f->m, 0, 0, 1000000), 0); /* keep everything */
	assert_int_equal(prune_ok(f->m, 8, 0, 1000000), 0);
	assert_int_equal(prune_ok(f->m, 1, 1, 4008), 0); /* all younger than a day */
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));

	/* Last 5 of f: 4..8 stay; g keeps its only (current) version. */
	assert_int_equal(prune_ok(f->m, 5, 0, 1000000), 3);
	struct versions_seen l = {.n = 0};
	assert_int_equal(qs_meta_history(f->m, root, "f", 0, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 5);
	assert_int_equal(l.versions[0], 4);
	assert_int_equal(l.versions[4], 8);
	struct qs_meta_version_info v;
	assert_int_equal(qs_meta_version_get(f->m, root, "f", 3, &v, NULL, NULL), QS_ENOENT);
	assert_int_equal(qs_meta_version_get(f->m, root, "f", 4, &v, NULL, NULL), 0);
	struct qs_meta_cmd rb = cmd_rollback(client, root, "f", 2, 8);
	struct qs_meta_result r;
	assert_int_equal(qs_meta_apply(f->m, &rb, &r), QS_ENOENT);
	refs = 0;
	assert_int_equal(qs_meta_chunk_refs(f->m, count_hash, &refs), 0);
	assert_int_equal(refs, 6);

	/* By age: versions accepted before now - 1 day go, the current one never. "Both set"
	 * deletes only what both policies would. */
	int64_t day = 86400000;
	assert_int_equal(prune_ok(f->m, 4, 1, 4006 + day), 1); /* 4: old by both; 5 by age only */
	assert_int_equal(prune_ok(f->m, 0, 1, 4006 + day), 1); /* 5; 6 is not older */
	assert_int_equal(prune_ok(f->m, 0, 1, 1000 * day), 2); /* 6, 7; 8 is current */
	memset(&l, 0, sizeof(l));
	assert_int_equal(qs_meta_history(f->m, root, "f", 0, 100, collect_version, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.versions[0], 8);
	assert_int_equal(qs_meta_entry_info(f->m, root, "g", &v), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands WHERE type = 10"), 4);
}

static struct qs_meta_cmd cmd_move(uint64_t client, uint64_t root, const char *from,
				   uint64_t from_version, const char *to, uint64_t to_base,
				   enum qs_kind kind, uint8_t content_id)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_MOVE;
	c.now_unix_ms = 9000;
	c.client_id = client;
	c.u.move.root_id = root;
	c.u.move.from = from;
	c.u.move.to = to;
	c.u.move.from_version = from_version;
	c.u.move.to_base_version = to_base;
	c.u.move.content.kind = kind;
	memset(c.u.move.content.hash, content_id, QS_CONTENT_HASH_LEN);
	return c;
}

static void assert_entry(struct qs_meta *m, uint64_t root, const char *path, uint64_t version,
			 enum qs_kind kind)
{
	struct qs_version_entry e;
	assert_int_equal(qs_meta_entry(m, root, path, &e, NULL, NULL), 0);
	assert_int_equal(e.version, version);
	assert_int_equal(e.content.kind, kind);
}

/* A directory moves with everything live below it in one command: each path gets a new
 * version at its new name (previous version there + 1, or 1) with the same content, and a
 * tombstone at its old name; tombstones below the old name stay; paths beside it (d2) are
 * untouched; a stale, conflicting or malformed move changes nothing. */
static void test_move(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	struct qs_meta_cmd c = cmd_put(client, root, "d", 0, QS_KIND_DIR, 0);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "d/a", 0, QS_KIND_FILE, 1);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "d/sub", 0, QS_KIND_DIR, 0);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "d/sub/b", 0, QS_KIND_FILE, 2);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "d/gone", 0, QS_KIND_FILE, 3);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "d/gone", 1, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "d2", 0, QS_KIND_FILE, 4);
	put_ok(f->m, &c);
	c = cmd_put(client, root, "e/a", 0, QS_KIND_FILE, 5); /* e/a: versions 1, 2 (deleted) */
	put_ok(f->m, &c);
	c = cmd_put(client, root, "e/a", 1, QS_KIND_TOMBSTONE, 0);
	put_ok(f->m, &c);

	/* Refusals first: nothing changes. */
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	struct qs_meta_result r;
	c = cmd_move(client, root, "d", 2, "e", 0, QS_KIND_DIR, 0); /* d is at version 1 */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_move(client, root, "d/a", 1, "e", 0, QS_KIND_FILE, 9); /* other content */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_move(client, root, "d/a", 1, "d2", 0, QS_KIND_FILE, 1); /* d2 is live at 1 */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_move(client, root, "d/a", 1, "d2/a", 0, QS_KIND_FILE, 1); /* below the file d2 */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_move(client, root, "d2", 1, "d", 1, QS_KIND_FILE, 4); /* a file over d/a ... */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_move(client, root, "nothing", 0, "x", 0, QS_KIND_FILE, 1);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_move(client, root, "d", 1, "d/sub/x", 0, QS_KIND_DIR, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_move(client, root, "d/sub", 1, "d", 1, QS_KIND_DIR, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_move(client, root, "d", 1, "d", 1, QS_KIND_DIR, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	c = cmd_move(client, root, "d", 1, "a//b", 0, QS_KIND_DIR, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));

	int64_t commands = raw_int(f->path, "SELECT count(*) FROM commands");
	c = cmd_move(client, root, "d", 1, "e", 0, QS_KIND_DIR, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_FAST_FORWARD);
	assert_int_equal(r.decision.version, 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands"), commands + 1);
	assert_entry(f->m, root, "e", 1, QS_KIND_DIR);
	assert_entry(f->m, root, "e/a", 3, QS_KIND_FILE); /* after the tombstone at 2 */
	assert_entry(f->m, root, "e/sub", 1, QS_KIND_DIR);
	assert_entry(f->m, root, "e/sub/b", 1, QS_KIND_FILE);
	assert_entry(f->m, root, "d", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/a", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/sub/b", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/gone", 2, QS_KIND_TOMBSTONE); /* not moved */
	assert_int_equal(
		qs_meta_entry(f->m, root, "e/gone", &(struct qs_version_entry){0}, NULL, NULL), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entries WHERE path = 'e/gone'"), 0);
	assert_entry(f->m, root, "d2", 1, QS_KIND_FILE);
	/* The moved file keeps its content, metadata and manifest. */
	struct qs_version_entry e;
	struct qs_meta_file file;
	uint8_t *man = NULL;
	assert_int_equal(qs_meta_entry(f->m, root, "e/sub/b", &e, &file, &man), 0);
	uint8_t two[QS_CONTENT_HASH_LEN];
	memset(two, 2, sizeof(two));
	assert_memory_equal(e.content.hash, two, sizeof(two));
	assert_int_equal(file.size, 102);
	assert_int_equal(file.mode, 0644);
	assert_int_equal(file.manifest_len, sizeof(manifest_bytes) - 1);
	qs_free(man);

	/* A file moves over a live file whose version the mover saw, and back to its old name
	 * (now a tombstone at 2): versions continue there. */
	c = cmd_move(client, root, "e/sub/b", 1, "d2", 1, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 2);
	assert_entry(f->m, root, "e/sub/b", 2, QS_KIND_TOMBSTONE);
	c = cmd_move(client, root, "d2", 2, "d/sub/b", 2, QS_KIND_FILE, 2);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.version, 3);
	assert_entry(f->m, root, "d2", 3, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/sub/b", 3, QS_KIND_FILE);
}

/* A directory with more paths below it than QS_META_MOVE_MAX is refused whole. */
static void test_move_too_many(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	assert_int_equal(qs_meta_group_begin(f->m), 0);
	struct qs_meta_cmd c = cmd_put(client, root, "big", 0, QS_KIND_DIR, 0);
	put_ok(f->m, &c);
	char path[32];
	for (int i = 0; i < QS_META_MOVE_MAX; i++) {
		snprintf(path, sizeof(path), "big/%05d", i);
		c = cmd_put(client, root, path, 0, QS_KIND_DIR, 0);
		put_ok(f->m, &c);
	}
	assert_int_equal(qs_meta_group_commit(f->m), 0);
	struct qs_meta_result r;
	c = cmd_move(client, root, "big", 1, "small", 0, QS_KIND_DIR, 0);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_E2BIG);
	assert_entry(f->m, root, "big/09999", 1, QS_KIND_DIR);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM entries WHERE path >= 'small'"), 0);
}

static struct qs_meta_cmd cmd_delete_tree(uint64_t client, uint64_t root, const char *dir,
					  uint64_t base, const char *const *paths,
					  const uint64_t *versions, size_t n, bool *deleted)
{
	struct qs_meta_cmd c;
	memset(&c, 0, sizeof(c));
	c.type = QS_CMD_DELETE_TREE;
	c.now_unix_ms = 9100;
	c.client_id = client;
	c.u.delete_tree.root_id = root;
	c.u.delete_tree.path = dir;
	c.u.delete_tree.base_version = base;
	c.u.delete_tree.paths = paths;
	c.u.delete_tree.versions = versions;
	c.u.delete_tree.n = n;
	c.u.delete_tree.deleted = deleted;
	return c;
}

/* A directory deleted with what the client knew below it: every listed path still at the
 * listed version gets a tombstone; one changed meanwhile (d/b at 2, the client saw 1) and
 * one the client never saw (d/new) stay live, and so do their parent directories (d/sub,
 * d); paths beside it (d2) are untouched. Once nothing live is left, the directory goes
 * too. A stale directory version or a malformed list changes nothing. */
static void test_delete_tree(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	static const char *const mk[] = {"d", "d/a", "d/sub", "d/sub/b", "d/sub/c", "d2"};
	static const enum qs_kind kinds[] = {QS_KIND_DIR,  QS_KIND_FILE, QS_KIND_DIR,
					     QS_KIND_FILE, QS_KIND_FILE, QS_KIND_FILE};
	for (size_t i = 0; i < 6; i++) {
		struct qs_meta_cmd c = cmd_put(client, root, mk[i], 0, kinds[i], (uint8_t)(i + 1));
		put_ok(f->m, &c);
	}
	struct qs_meta_cmd c = cmd_put(client, root, "d/sub/b", 1, QS_KIND_FILE, 9);
	put_ok(f->m, &c); /* another client's edit: d/sub/b at 2 */

	static const char *const below[] = {"d/a", "d/sub", "d/sub/b", "d/sub/c"};
	static const uint64_t seen[] = {1, 1, 1, 1};
	bool del[4];
	struct qs_meta_result r;
	uint8_t before[QS_SHA256_LEN], after[QS_SHA256_LEN];
	snapshot(f->path, before);
	c = cmd_delete_tree(client, root, "d", 2, below, seen, 4, del); /* d is at 1 */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	c = cmd_delete_tree(client, root, "d/a", 1, below, seen, 0, del); /* a file */
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
	static const char *const unordered[] = {"d/sub", "d/a"};
	c = cmd_delete_tree(client, root, "d", 1, unordered, seen, 2, del);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	static const char *const outside[] = {"d2"};
	c = cmd_delete_tree(client, root, "d", 1, outside, seen, 1, del);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_EINVAL);
	snapshot(f->path, after);
	assert_memory_equal(before, after, sizeof(before));

	memset(del, 0x7f, sizeof(del));
	c = cmd_delete_tree(client, root, "d", 1, below, seen, 4, del);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_SAME); /* d/sub/b keeps d */
	assert_int_equal(r.decision.version, 1);
	assert_true(del[0] && !del[1] && !del[2] && del[3]);
	assert_entry(f->m, root, "d", 1, QS_KIND_DIR);
	assert_entry(f->m, root, "d/a", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/sub", 1, QS_KIND_DIR);
	assert_entry(f->m, root, "d/sub/b", 2, QS_KIND_FILE);
	assert_entry(f->m, root, "d/sub/c", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d2", 1, QS_KIND_FILE);

	/* The client saw the edit now; a file it never saw appears meanwhile and stays. */
	c = cmd_put(client, root, "d/new", 0, QS_KIND_FILE, 7);
	put_ok(f->m, &c);
	static const char *const below2[] = {"d/sub", "d/sub/b"};
	static const uint64_t seen2[] = {1, 2};
	c = cmd_delete_tree(client, root, "d", 1, below2, seen2, 2, del);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_true(del[0] && del[1]);
	assert_int_equal(r.decision.verdict, QS_VERDICT_SAME);
	assert_entry(f->m, root, "d/sub", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/sub/b", 3, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/new", 1, QS_KIND_FILE);

	static const char *const below3[] = {"d/new"};
	int64_t commands = raw_int(f->path, "SELECT count(*) FROM commands");
	c = cmd_delete_tree(client, root, "d", 1, below3, seen, 1, del);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_FAST_FORWARD);
	assert_int_equal(r.decision.version, 2);
	assert_true(del[0]);
	assert_entry(f->m, root, "d", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/new", 2, QS_KIND_TOMBSTONE);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM commands"), commands + 1);
	/* A deleted directory is not a directory any more. */
	c = cmd_delete_tree(client, root, "d", 2, NULL, NULL, 0, NULL);
	assert_int_equal(qs_meta_apply(f->m, &c, &r), QS_ECONFLICT);
}

/* Files deleted from a directory that stays (keep): the listed files still at the listed
 * version get tombstones, one changed meanwhile stays, and the directory stays even when
 * nothing live is left in it. */
static void test_delete_tree_keep(void **state)
{
	struct fixture *f = *state;
	uint64_t client, root;
	client_with_root(f->m, &client, &root);
	static const char *const mk[] = {"d", "d/a", "d/b", "d/c"};
	static const enum qs_kind kinds[] = {QS_KIND_DIR, QS_KIND_FILE, QS_KIND_FILE, QS_KIND_FILE};
	for (size_t i = 0; i < 4; i++) {
		struct qs_meta_cmd c = cmd_put(client, root, mk[i], 0, kinds[i], (uint8_t)(i + 1));
		put_ok(f->m, &c);
	}
	struct qs_meta_cmd c = cmd_put(client, root, "d/c", 1, QS_KIND_FILE, 9);
	put_ok(f->m, &c); /* another client's edit: d/c at 2 */
	static const char *const files[] = {"d/a", "d/b", "d/c"};
	static const uint64_t seen[] = {1, 1, 1};
	bool del[3];
	struct qs_meta_result r;
	c = cmd_delete_tree(client, root, "d", 1, files, seen, 3, del);
	c.u.delete_tree.keep = true;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_SAME);
	assert_int_equal(r.decision.version, 1);
	assert_true(del[0] && del[1] && !del[2]);
	assert_entry(f->m, root, "d/a", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/b", 2, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d/c", 2, QS_KIND_FILE);
	static const char *const last[] = {"d/c"};
	static const uint64_t seen2[] = {2};
	c = cmd_delete_tree(client, root, "d", 1, last, seen2, 1, del);
	c.u.delete_tree.keep = true;
	assert_int_equal(qs_meta_apply(f->m, &c, &r), 0);
	assert_int_equal(r.decision.verdict, QS_VERDICT_SAME); /* empty, and it stays */
	assert_true(del[0]);
	assert_entry(f->m, root, "d/c", 3, QS_KIND_TOMBSTONE);
	assert_entry(f->m, root, "d", 1, QS_KIND_DIR);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_twice_keeps_schema_and_data),
		T(test_settings_wal_and_foreign_keys),
		T(test_newer_schema_is_refused),
		T(test_foreign_database_is_refused),
		T(test_register_client),
		T(test_register_client_bad_names),
		T(test_register_root),
		T(test_join_and_leave),
		T(test_server_password),
		T(test_fast_forward_sequence_1_2_3),
		T(test_same_leaves_database_unchanged),
		T(test_conflict_candidates_and_resolve),
		T(test_put_errors_change_nothing),
		T(test_put_tombstone_base_zero),
		T(test_tree_kinds),
		T(test_failed_command_rolls_back_whole),
		T(test_version_past_int64_max),
		T(test_delete_and_recreate_keep_history),
		T(test_entry_absent),
		T(test_list_pages_in_byte_order),
		T(test_group_with_one_failing_command),
		T(test_group_rollback_and_close_discard),
		T(test_applied_survives_kill),
		T(test_root_chunks),
		T(test_admin_clients),
		T(test_admin_roots),
		T(test_admin_entries_below),
		T(test_admin_history),
		T(test_history_operations),
		T(test_migration_3_backfills_operations),
		T(test_rollback),
		T(test_prune),
		T(test_move),
		T(test_move_too_many),
		T(test_delete_tree),
		T(test_delete_tree_keep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

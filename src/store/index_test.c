/* Tests for the client index on real files: migrations and refusal of foreign or newer
 * databases; roots; every entry field round-tripped (64-bit inode and size included); paths
 * iterated in byte order, whole and below a directory; renames by bytes (multi-byte names),
 * refused when they would collide or grow too long; batched durability that never marks a
 * rewrite made during the sync; transactions; settings at limit and limit+1; corrupt rows;
 * and the stat fingerprint catching same-size rewrites within one second on a real file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "store/index.h"

struct fixture {
	char dir[256];
	char db[300];
	struct qs_index *ix;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/qs-index-XXXXXX", tmp != NULL ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/index.db", f->dir);
	assert_int_equal(qs_index_open(f->db, &f->ix), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	qs_index_close(f->ix);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct qs_path mkpath(const char *s)
{
	struct qs_path p;
	assert_int_equal(qs_path_init(&p, s, strlen(s)), 0);
	return p;
}

/* A filled entry; n varies every field. */
static struct qs_index_entry sample(uint64_t n)
{
	struct qs_index_entry e;
	memset(&e, 0, sizeof(e));
	e.base_version = n;
	e.base.kind = QS_KIND_FILE;
	memset(e.base.hash, (int)(n & 0xff), sizeof(e.base.hash));
	e.mode = 0644;
	e.mtime_ns = -5 - (int64_t)n; /* before 1970 is a valid mtime */
	e.fp.size = UINT64_MAX - n;
	e.fp.mtime_ns = 1700000000123456789 + (int64_t)n;
	e.fp.ctime_ns = 1700000000987654321 + (int64_t)n;
	e.fp.inode = UINT64_MAX - 7 * n; /* above INT64_MAX: stored by bit pattern */
	e.fp.mode = 0100644;
	e.durable = true;
	return e;
}

static void put_ok(struct qs_index *ix, uint64_t root, const char *path, uint64_t n)
{
	struct qs_path p = mkpath(path);
	struct qs_index_entry e = sample(n);
	assert_int_equal(qs_index_put(ix, root, &p, &e), 0);
	qs_path_release(&p);
}

static void test_open_and_migrations(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_schema_version(f->ix), 1);
	qs_index_close(f->ix);
	assert_int_equal(qs_index_open(f->db, &f->ix), 0); /* reopening migrates nothing */
	assert_int_equal(qs_index_schema_version(f->ix), 1);
	qs_index_close(f->ix);
	f->ix = NULL;
	/* A newer schema than this build knows is refused, untouched. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db, "INSERT INTO migrations VALUES (99, 'future')", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	struct qs_index *ix = (struct qs_index *)&ix;
	assert_int_equal(qs_index_open(f->db, &ix), QS_EIO);
	assert_ptr_equal(ix, (struct qs_index *)&ix);
	/* So is another program's database. */
	char other[320];
	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(qs_index_open(other, &ix), QS_EIO);
	assert_int_equal(qs_index_open(f->dir, &ix), QS_EIO); /* a directory */
	/* Restore a usable index for the teardown. */
	assert_int_equal(unlink(f->db), 0);
	assert_int_equal(qs_index_open(f->db, &f->ix), 0);
}

struct root_list {
	char lines[8][300];
	size_t n;
};

static int collect_root(void *arg, uint64_t id, const char *dir, const char *name)
{
	struct root_list *l = arg;
	snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%llu %s %s", (unsigned long long)id, dir,
		 name);
	return 0;
}

static void test_roots(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 7, "/home/u/sync", "work"), 0);
	assert_int_equal(qs_index_root_put(f->ix, 3, "/home/u/photos", "photos"), 0);
	assert_int_equal(qs_index_root_put(f->ix, 7, "/home/u/sync", "work2"), 0); /* update */
	assert_int_equal(qs_index_root_put(f->ix, 9, "/home/u/sync", "dup"), QS_EEXIST);
	assert_int_equal(qs_index_root_put(f->ix, 0, "/x", "zero"), QS_EINVAL);
	assert_int_equal(qs_index_root_put(f->ix, (uint64_t)INT64_MAX + 1, "/x", "big"), QS_EINVAL);
	assert_int_equal(qs_index_root_put(f->ix, 9, "relative", "r"), QS_EINVAL);
	assert_int_equal(qs_index_root_put(f->ix, 9, "/x", ""), QS_EINVAL);
	assert_int_equal(qs_index_root_put(f->ix, 9, "/x", "a\nb"), QS_EINVAL);
	assert_int_equal(qs_index_root_put(f->ix, 9, "/x\xff", "n"), QS_EINVAL);
	char name[QS_INDEX_NAME_MAX + 2];
	memset(name, 'n', sizeof(name));
	name[QS_INDEX_NAME_MAX + 1] = '\0';
	assert_int_equal(qs_index_root_put(f->ix, 9, "/x", name), QS_EINVAL);
	name[QS_INDEX_NAME_MAX] = '\0';
	assert_int_equal(qs_index_root_put(f->ix, 9, "/x", name), 0);
	char dir[QS_INDEX_DIR_MAX + 2];
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[QS_INDEX_DIR_MAX + 1] = '\0';
	assert_int_equal(qs_index_root_put(f->ix, 10, dir, "long"), QS_EINVAL);
	dir[QS_INDEX_DIR_MAX] = '\0';
	assert_int_equal(qs_index_root_put(f->ix, 10, dir, "long"), 0);
	assert_int_equal(qs_index_root_delete(f->ix, 10), 0);
	assert_int_equal(qs_index_root_delete(f->ix, 9), 0);
	struct root_list l = {.n = 0};
	assert_int_equal(qs_index_roots(f->ix, collect_root, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.lines[0], "3 /home/u/photos photos");
	assert_string_equal(l.lines[1], "7 /home/u/sync work2");
	/* Deleting a root deletes its entries. */
	put_ok(f->ix, 3, "a", 1);
	assert_int_equal(qs_index_root_delete(f->ix, 3), 0);
	assert_int_equal(qs_index_root_delete(f->ix, 3), QS_ENOENT);
	assert_int_equal(qs_index_root_put(f->ix, 3, "/home/u/photos", "photos"), 0);
	struct qs_path a = mkpath("a");
	struct qs_index_entry e;
	assert_int_equal(qs_index_get(f->ix, 3, &a, &e), QS_ENOENT);
	qs_path_release(&a);
}

static void expect_same(const struct qs_index_entry *a, const struct qs_index_entry *b)
{
	assert_int_equal(a->base_version, b->base_version);
	assert_int_equal(a->base.kind, b->base.kind);
	assert_memory_equal(a->base.hash, b->base.hash, QS_CONTENT_HASH_LEN);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->mtime_ns, b->mtime_ns);
	assert_int_equal(a->manifest_len, b->manifest_len);
	if (a->manifest_len > 0)
		assert_memory_equal(a->manifest, b->manifest, a->manifest_len);
	assert_false(!qs_fingerprint_equal(&a->fp, &b->fp));
	assert_int_equal(a->durable, b->durable);
	assert_int_equal(a->conflicted, b->conflicted);
	if (a->conflicted) {
		assert_int_equal(a->conflict_version, b->conflict_version);
		assert_int_equal(a->candidate.kind, b->candidate.kind);
		assert_memory_equal(a->candidate.hash, b->candidate.hash, QS_CONTENT_HASH_LEN);
	}
}

static void test_entries(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 1, "/r", "r"), 0);
	struct qs_path p = mkpath("dir/caf\xc3\xa9.txt");
	uint8_t manifest[100];
	for (size_t i = 0; i < sizeof(manifest); i++)
		manifest[i] = (uint8_t)(i * 7);
	struct qs_index_entry e = sample(42), got;
	e.manifest = manifest;
	e.manifest_len = sizeof(manifest);
	e.conflicted = true;
	e.conflict_version = 50;
	e.candidate.kind = QS_KIND_SYMLINK;
	memset(e.candidate.hash, 0xCD, sizeof(e.candidate.hash));
	assert_int_equal(qs_index_put(f->ix, 1, &p, &e), 0);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &got), 0);
	expect_same(&e, &got);
	assert_ptr_not_equal(got.manifest, manifest);
	qs_index_entry_release(&got);
	assert_null(got.manifest);
	/* Upsert: the new entry replaces every field. */
	struct qs_index_entry e2 = sample(43);
	e2.base.kind = QS_KIND_DIR;
	assert_int_equal(qs_index_put(f->ix, 1, &p, &e2), 0);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &got), 0);
	expect_same(&e2, &got);
	assert_false(got.conflicted);
	assert_null(got.manifest);
	qs_index_entry_release(&got);
	/* The same path in another root is another entry. */
	assert_int_equal(qs_index_get(f->ix, 2, &p, &got), QS_ENOENT);
	assert_int_equal(qs_index_put(f->ix, 2, &p, &e2), QS_ENOENT); /* unknown root */
	/* Invalid entries change nothing. */
	struct qs_index_entry bad = sample(1);
	bad.base.kind = (enum qs_kind)4;
	assert_int_equal(qs_index_put(f->ix, 1, &p, &bad), QS_EINVAL);
	bad = sample(10);
	bad.conflicted = true;
	bad.conflict_version = 10; /* not above the base */
	bad.candidate.kind = QS_KIND_FILE;
	assert_int_equal(qs_index_put(f->ix, 1, &p, &bad), QS_EINVAL);
	bad.conflict_version = 11;
	bad.candidate.kind = (enum qs_kind)9;
	assert_int_equal(qs_index_put(f->ix, 1, &p, &bad), QS_EINVAL);
	bad = sample(1);
	bad.base_version = (uint64_t)INT64_MAX + 1;
	assert_int_equal(qs_index_put(f->ix, 1, &p, &bad), QS_EINVAL);
	bad = sample(1);
	bad.manifest = manifest;
	bad.manifest_len = QS_INDEX_MANIFEST_MAX + 1; /* refused before it is read */
	assert_int_equal(qs_index_put(f->ix, 1, &p, &bad), QS_EINVAL);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &got), 0);
	expect_same(&e2, &got);
	qs_index_entry_release(&got);
	/* The largest manifest fits. */
	uint8_t *huge = calloc(1, QS_INDEX_MANIFEST_MAX);
	assert_non_null(huge);
	huge[QS_INDEX_MANIFEST_MAX - 1] = 0x5A;
	e2.manifest = huge;
	e2.manifest_len = QS_INDEX_MANIFEST_MAX;
	assert_int_equal(qs_index_put(f->ix, 1, &p, &e2), 0);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &got), 0);
	expect_same(&e2, &got);
	qs_index_entry_release(&got);
	free(huge);
	/* Delete. */
	assert_int_equal(qs_index_delete(f->ix, 1, &p), 0);
	assert_int_equal(qs_index_delete(f->ix, 1, &p), QS_ENOENT);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &got), QS_ENOENT);
	qs_path_release(&p);
}

struct path_list {
	char paths[64][64];
	size_t n;
	int stop_at;
};

static int collect_path(void *arg, const struct qs_path *p, const struct qs_index_entry *e)
{
	struct path_list *l = arg;
	assert_true(e->base_version > 0);
	if (l->stop_at >= 0 && (size_t)l->stop_at == l->n)
		return 99;
	snprintf(l->paths[l->n++], sizeof(l->paths[0]), "%s", p->str);
	return 0;
}

static void expect_paths(struct qs_index *ix, uint64_t root, const char *under,
			 const char *const *want, size_t n)
{
	struct path_list l = {.n = 0, .stop_at = -1};
	struct qs_path d;
	if (under != NULL)
		d = mkpath(under);
	assert_int_equal(qs_index_each(ix, root, under != NULL ? &d : NULL, collect_path, &l), 0);
	if (under != NULL)
		qs_path_release(&d);
	for (size_t i = 0; i < n || i < l.n; i++) {
		if (i >= n || i >= l.n || strcmp(want[i], l.paths[i]) != 0)
			fail_msg("path %zu: got \"%s\", want \"%s\"", i, i < l.n ? l.paths[i] : "",
				 i < n ? want[i] : "");
	}
}

static void test_order_and_subtrees(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 1, "/r", "r"), 0);
	static const char *const inserted[] = {"b",   "a/b", "\xc3\xa9", "a.txt", "a",
					       "a-b", "ab",  "a/b/c",    "a/a"};
	for (size_t i = 0; i < sizeof(inserted) / sizeof(inserted[0]); i++)
		put_ok(f->ix, 1, inserted[i], i + 1);
	/* Byte order of whole paths: '-' < '.' < '/' < 'b', and U+00E9 (C3 A9) last. */
	static const char *const all[] = {"a",     "a-b", "a.txt", "a/a",     "a/b",
					  "a/b/c", "ab",  "b",     "\xc3\xa9"};
	expect_paths(f->ix, 1, NULL, all, 9);
	static const char *const under_a[] = {"a", "a/a", "a/b", "a/b/c"};
	expect_paths(f->ix, 1, "a", under_a, 4);
	static const char *const under_ab[] = {"a/b", "a/b/c"};
	expect_paths(f->ix, 1, "a/b", under_ab, 2);
	expect_paths(f->ix, 1, "zzz", NULL, 0);
	expect_paths(f->ix, 2, NULL, NULL, 0);
	/* A callback's nonzero value stops the walk and comes back. */
	struct path_list l = {.n = 0, .stop_at = 2};
	assert_int_equal(qs_index_each(f->ix, 1, NULL, collect_path, &l), 99);
	assert_int_equal(l.n, 2);
	uint64_t count = 0;
	assert_int_equal(qs_index_count_files(f->ix, 1, &count), 0);
	assert_int_equal(count, 9);
	struct qs_path d = mkpath("b");
	struct qs_index_entry e = sample(1);
	e.base.kind = QS_KIND_DIR;
	assert_int_equal(qs_index_put(f->ix, 1, &d, &e), 0);
	qs_path_release(&d);
	assert_int_equal(qs_index_count_files(f->ix, 1, &count), 0);
	assert_int_equal(count, 8);
}

static void test_rename(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 1, "/r", "r"), 0);
	put_ok(f->ix, 1, "\xc3\xa9t\xc3\xa9", 1); /* "été", 5 bytes, 3 characters */
	put_ok(f->ix, 1, "\xc3\xa9t\xc3\xa9/x", 2);
	put_ok(f->ix, 1, "\xc3\xa9t\xc3\xa9/sub/y", 3);
	put_ok(f->ix, 1, "\xc3\xa9t\xc3\xa9.txt", 4); /* a sibling sharing the prefix: stays */
	put_ok(f->ix, 1, "other", 5);
	struct qs_path from = mkpath("\xc3\xa9t\xc3\xa9"), to = mkpath("summer"),
		       other = mkpath("other"), inside = mkpath("\xc3\xa9t\xc3\xa9/sub"),
		       missing = mkpath("missing");
	assert_int_equal(qs_index_rename(f->ix, 1, &from, &to), 0);
	static const char *const after[] = {"other", "summer", "summer/sub/y", "summer/x",
					    "\xc3\xa9t\xc3\xa9.txt"};
	expect_paths(f->ix, 1, NULL, after, 5);
	/* The entries moved with their fields. */
	struct qs_path y = mkpath("summer/sub/y");
	struct qs_index_entry got, want = sample(3);
	assert_int_equal(qs_index_get(f->ix, 1, &y, &got), 0);
	expect_same(&want, &got);
	qs_index_entry_release(&got);
	qs_path_release(&y);
	/* Refusals leave everything as it was. */
	assert_int_equal(qs_index_rename(f->ix, 1, &to, &other), QS_EEXIST);
	assert_int_equal(qs_index_rename(f->ix, 1, &missing, &other), QS_ENOENT);
	assert_int_equal(qs_index_rename(f->ix, 1, &to, &to), QS_EINVAL);
	struct qs_path sub = mkpath("summer/sub");
	assert_int_equal(qs_index_rename(f->ix, 1, &to, &sub), QS_EINVAL);
	assert_int_equal(qs_index_rename(f->ix, 1, &sub, &to), QS_EINVAL);
	expect_paths(f->ix, 1, NULL, after, 5);
	/* A rename whose deepest path would pass QS_PATH_MAX. */
	char *longname = malloc(QS_PATH_MAX + 1);
	assert_non_null(longname);
	size_t n = 6;
	memcpy(longname, "summer", n);
	while (n + 201 <= QS_PATH_MAX - 20) { /* "summer/lll.../lll", a little under the max */
		longname[n] = '/';
		memset(longname + n + 1, 'l', 200);
		n += 201;
	}
	longname[n] = '\0';
	put_ok(f->ix, 1, longname, 6);
	/* The deepest path is n bytes; renaming "summer" to a name of L bytes makes it
	 * n - 6 + L: just at QS_PATH_MAX is fine, one byte more is not. */
	char name[QS_PATH_NAME_MAX + 1];
	size_t fit = QS_PATH_MAX - (n - 6);
	assert_true(fit + 1 <= QS_PATH_NAME_MAX);
	memset(name, 't', fit + 1);
	name[fit + 1] = '\0';
	struct qs_path longer = mkpath(name);
	assert_int_equal(qs_index_rename(f->ix, 1, &to, &longer), QS_EPATH_TOO_LONG);
	name[fit] = '\0';
	struct qs_path longest = mkpath(name);
	assert_int_equal(qs_index_rename(f->ix, 1, &to, &longest), 0);
	assert_int_equal(qs_index_rename(f->ix, 1, &longest, &to), 0);
	free(longname);
	qs_path_release(&longer);
	qs_path_release(&longest);
	qs_path_release(&sub);
	qs_path_release(&from);
	qs_path_release(&to);
	qs_path_release(&other);
	qs_path_release(&inside);
	qs_path_release(&missing);
}

struct pending_list {
	char paths[16][64];
	size_t n;
};

static int collect_pending(void *arg, uint64_t root, const struct qs_path *p,
			   const struct qs_index_entry *e)
{
	struct pending_list *l = arg;
	assert_false(e->durable);
	snprintf(l->paths[l->n++], sizeof(l->paths[0]), "%llu:%s", (unsigned long long)root,
		 p->str);
	return 0;
}

static void put_pending(struct qs_index *ix, uint64_t root, const char *path)
{
	struct qs_path p = mkpath(path);
	struct qs_index_entry e = sample(1);
	e.durable = false;
	assert_int_equal(qs_index_put(ix, root, &p, &e), 0);
	qs_path_release(&p);
}

static bool is_durable(struct qs_index *ix, uint64_t root, const char *path)
{
	struct qs_path p = mkpath(path);
	struct qs_index_entry e;
	assert_int_equal(qs_index_get(ix, root, &p, &e), 0);
	qs_path_release(&p);
	return e.durable;
}

static void test_durability(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 1, "/r1", "r1"), 0);
	assert_int_equal(qs_index_root_put(f->ix, 2, "/r2", "r2"), 0);
	assert_int_equal(qs_index_durable_mark(f->ix), 0);
	put_ok(f->ix, 1, "mine", 1); /* a user's own file: durable from the start */
	put_pending(f->ix, 1, "a");
	put_pending(f->ix, 2, "b");
	uint64_t mark = qs_index_durable_mark(f->ix);
	assert_true(mark >= 2);
	/* "a" is received again while the batch is being synced. */
	put_pending(f->ix, 1, "a");
	put_pending(f->ix, 1, "c");
	assert_int_equal(qs_index_mark_durable(f->ix, mark), 0);
	assert_true(is_durable(f->ix, 2, "b"));
	assert_false(is_durable(f->ix, 1, "a"));
	assert_false(is_durable(f->ix, 1, "c"));
	assert_true(is_durable(f->ix, 1, "mine"));
	struct pending_list l = {.n = 0};
	assert_int_equal(qs_index_not_durable(f->ix, collect_pending, &l), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.paths[0], "1:a");
	assert_string_equal(l.paths[1], "1:c");
	/* After a restart, new pending entries still sort after the old ones. */
	uint64_t before = qs_index_durable_mark(f->ix);
	qs_index_close(f->ix);
	assert_int_equal(qs_index_open(f->db, &f->ix), 0);
	assert_int_equal(qs_index_durable_mark(f->ix), before);
	put_pending(f->ix, 2, "d");
	assert_int_equal(qs_index_mark_durable(f->ix, before), 0);
	assert_false(is_durable(f->ix, 2, "d"));
	assert_true(is_durable(f->ix, 1, "a"));
	assert_int_equal(qs_index_mark_durable(f->ix, qs_index_durable_mark(f->ix)), 0);
	l.n = 0;
	assert_int_equal(qs_index_not_durable(f->ix, collect_pending, &l), 0);
	assert_int_equal(l.n, 0);
}

static void test_transactions(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 1, "/r", "r"), 0);
	struct qs_path p = mkpath("x");
	struct qs_index_entry e;
	assert_int_equal(qs_index_commit(f->ix), QS_ESTATE);
	assert_int_equal(qs_index_rollback(f->ix), QS_ESTATE);
	assert_int_equal(qs_index_begin(f->ix), 0);
	assert_int_equal(qs_index_begin(f->ix), QS_ESTATE);
	put_ok(f->ix, 1, "x", 1);
	assert_int_equal(qs_index_rollback(f->ix), 0);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &e), QS_ENOENT);
	assert_int_equal(qs_index_begin(f->ix), 0);
	for (int i = 0; i < 500; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%d", i);
		put_ok(f->ix, 1, name, (uint64_t)i + 1);
	}
	put_ok(f->ix, 1, "x", 1);
	assert_int_equal(qs_index_commit(f->ix), 0);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &e), 0);
	qs_index_entry_release(&e);
	/* Closing with a transaction open discards it. */
	assert_int_equal(qs_index_begin(f->ix), 0);
	assert_int_equal(qs_index_delete(f->ix, 1, &p), 0);
	qs_index_close(f->ix);
	assert_int_equal(qs_index_open(f->db, &f->ix), 0);
	assert_int_equal(qs_index_get(f->ix, 1, &p, &e), 0);
	qs_index_entry_release(&e);
	uint64_t count;
	assert_int_equal(qs_index_count_files(f->ix, 1, &count), 0);
	assert_int_equal(count, 501);
	qs_path_release(&p);
}

static void test_settings(void **state)
{
	struct fixture *f = *state;
	struct qs_buf b;
	qs_buf_init(&b, QS_INDEX_VALUE_MAX);
	assert_int_equal(qs_index_setting_get(f->ix, "server", &b), QS_ENOENT);
	assert_int_equal(qs_index_setting_set(f->ix, "server", "host:6122", 9), 0);
	assert_int_equal(qs_index_setting_get(f->ix, "server", &b), 0);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.data, "host:6122", 9);
	assert_int_equal(qs_index_setting_set(f->ix, "server", "h", 1), 0);
	assert_int_equal(qs_index_setting_get(f->ix, "server", &b), 0);
	assert_int_equal(b.len, 1); /* replaced, not appended */
	assert_int_equal(qs_index_setting_set(f->ix, "empty", NULL, 0), 0);
	assert_int_equal(qs_index_setting_get(f->ix, "empty", &b), 0);
	assert_int_equal(b.len, 0);
	assert_int_equal(qs_index_setting_delete(f->ix, "server"), 0);
	assert_int_equal(qs_index_setting_delete(f->ix, "server"), QS_ENOENT);
	/* Limits: value and key at the limit and one past it. */
	uint8_t *v = calloc(1, QS_INDEX_VALUE_MAX + 1);
	assert_non_null(v);
	assert_int_equal(qs_index_setting_set(f->ix, "big", v, QS_INDEX_VALUE_MAX), 0);
	assert_int_equal(qs_index_setting_set(f->ix, "big", v, QS_INDEX_VALUE_MAX + 1), QS_E2BIG);
	assert_int_equal(qs_index_setting_get(f->ix, "big", &b), 0);
	assert_int_equal(b.len, QS_INDEX_VALUE_MAX);
	struct qs_buf small;
	qs_buf_init(&small, 10);
	assert_int_equal(qs_index_setting_get(f->ix, "big", &small), QS_E2BIG);
	qs_buf_release(&small);
	free(v);
	char key[QS_INDEX_KEY_MAX + 2];
	memset(key, 'k', sizeof(key));
	key[QS_INDEX_KEY_MAX + 1] = '\0';
	assert_int_equal(qs_index_setting_set(f->ix, key, "v", 1), QS_EINVAL);
	key[QS_INDEX_KEY_MAX] = '\0';
	assert_int_equal(qs_index_setting_set(f->ix, key, "v", 1), 0);
	assert_int_equal(qs_index_setting_set(f->ix, "", "v", 1), QS_EINVAL);
	assert_int_equal(qs_index_setting_get(f->ix, "\xff", &b), QS_EINVAL);
	qs_buf_release(&b);
}

static int never(void *arg, const struct qs_path *p, const struct qs_index_entry *e)
{
	(void)arg;
	(void)p;
	(void)e;
	fail_msg("a corrupt row reached the callback");
	return 0;
}

/* Rows written behind the index's back that break its rules are refused, not trusted. */
static void test_corrupt_rows(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(qs_index_root_put(f->ix, 1, "/r", "r"), 0);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "INSERT INTO entries VALUES (1, 'a//b', 1, 1, zeroblob(32), 0,"
			     " 0, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, zeroblob(32))",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(qs_index_each(f->ix, 1, NULL, never, NULL), QS_EPROTO);
}

/* ---- the fingerprint ---- */

static void fp_of(const char *path, struct qs_fingerprint *fp)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	qs_fingerprint_from_stat(&st, fp);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

static void test_fingerprint_fields(void **state)
{
	(void)state;
	struct qs_fingerprint a = {100, 5, 6, 7, 0100644}, b = a;
	assert_false(!qs_fingerprint_equal(&a, &b));
	b.size++;
	assert_true(!qs_fingerprint_equal(&a, &b));
	b = a;
	b.mtime_ns++; /* one nanosecond */
	assert_true(!qs_fingerprint_equal(&a, &b));
	b = a;
	b.ctime_ns++;
	assert_true(!qs_fingerprint_equal(&a, &b));
	b = a;
	b.inode++;
	assert_true(!qs_fingerprint_equal(&a, &b));
	b = a;
	b.mode = 0100600;
	assert_true(!qs_fingerprint_equal(&a, &b));
	/* Times past 2262 saturate instead of overflowing. */
	struct stat st;
	memset(&st, 0, sizeof(st));
	st.st_mtim.tv_sec = (time_t)32503680000; /* the year 3000 */
	st.st_ctim.tv_sec = -(time_t)32503680000;
	qs_fingerprint_from_stat(&st, &b);
	assert_int_equal(b.mtime_ns, INT64_MAX);
	assert_int_equal(b.ctime_ns, INT64_MIN);
	st.st_mtim.tv_sec = 1;
	st.st_mtim.tv_nsec = 5;
	qs_fingerprint_from_stat(&st, &b);
	assert_int_equal(b.mtime_ns, 1000000005);
}

/* Same size, same second, on a real file: in place, in place with the mtime put back, and
 * replaced through a rename. A second-resolution size+mtime check misses all three. */
static void test_fingerprint_real_files(void **state)
{
	struct fixture *f = *state;
	char path[320], tmp[330];
	snprintf(path, sizeof(path), "%s/file", f->dir);
	snprintf(tmp, sizeof(tmp), "%s/file.tmp", f->dir);
	for (int attempt = 0;; attempt++) {
		assert_true(attempt < 20); /* each attempt crosses a second boundary by bad luck */
		struct qs_fingerprint fp0, fp1, fp2, fp3;
		write_file(path, "version-1");
		fp_of(path, &fp0);
		fp_of(path, &fp1);
		assert_false(!qs_fingerprint_equal(&fp0, &fp1)); /* untouched: unchanged */
		/* Rewrite in place, same size. 10 ms apart, so even a coarse (jiffy) clock ticks.
		 */
		struct timespec pause = {0, 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
		write_file(path, "version-2");
		fp_of(path, &fp1);
		/* Rewrite again and put the old mtime back, as "cp -p" or "touch -r" would. */
		nanosleep(&pause, NULL);
		write_file(path, "version-3");
		struct timespec times[2] = {{0, UTIME_OMIT},
					    {fp1.mtime_ns / 1000000000, fp1.mtime_ns % 1000000000}};
		assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
		fp_of(path, &fp2);
		/* Replace through a rename, same size and the same mtime again. */
		nanosleep(&pause, NULL);
		write_file(tmp, "version-4");
		assert_int_equal(utimensat(AT_FDCWD, tmp, times, 0), 0);
		assert_int_equal(rename(tmp, path), 0);
		fp_of(path, &fp3);
		if (fp0.mtime_ns / 1000000000 != fp3.ctime_ns / 1000000000)
			continue; /* not within one second: try again */
		assert_int_equal(fp0.size, fp1.size);
		assert_true(!qs_fingerprint_equal(&fp0, &fp1));
		assert_int_equal(fp1.mtime_ns, fp2.mtime_ns); /* size and mtime say "same"... */
		assert_int_equal(fp1.size, fp2.size);
		assert_true(!qs_fingerprint_equal(&fp1, &fp2)); /* ...ctime does not */
		assert_int_equal(fp2.mtime_ns, fp3.mtime_ns);
		assert_true(!qs_fingerprint_equal(&fp2, &fp3)); /* inode and ctime */
		assert_true(fp2.inode != fp3.inode);
		break;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_and_migrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_and_subtrees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_durability, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_rows, setup, teardown),
		cmocka_unit_test(test_fingerprint_fields),
		cmocka_unit_test_setup_teardown(test_fingerprint_real_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests for the chunk store on real files in a fresh temporary directory per test: small
 * (packed) and large (file) chunks at their size boundaries, the documented on-disk format,
 * wrong hashes refused with nothing stored, damage detected on read, batches (sync, abort,
 * early flush, pack rollover), the directory lock, and the durability boundary: what put or
 * a batch sync acknowledged survives a kill -9, what was never synced leaves no trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "core/sha256.h"
#include "store/chunks.h"

#define KIB ((size_t)1024)
#define MIB (KIB * KIB)

struct fixture {
	char tmp[64];
	char dir[96]; /* the store: created by qs_chunks_open */
	struct qs_chunks *cs;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->tmp, sizeof(f->tmp), "/tmp/qs-chunks-test-XXXXXX");
	if (!mkdtemp(f->tmp))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/store", f->tmp);
	if (qs_chunks_open(f->dir, NULL, &f->cs) != 0)
		return -1;
	*state = f;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	qs_chunks_close(f->cs);
	int rc = nftw(f->tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc;
}

static void reopen(struct fixture *f, const struct qs_chunks_options *opt)
{
	qs_chunks_close(f->cs);
	f->cs = NULL;
	assert_int_equal(qs_chunks_open(f->dir, opt, &f->cs), 0);
}

/* A chunk of len pseudo-random bytes (xorshift from seed) and its hash. */
struct chunk {
	uint8_t *data;
	size_t len;
	uint8_t hash[QS_SHA256_LEN];
};

/* Without cmocka asserts, so threads may call it. Returns 0 or -1. */
static int chunk_fill(struct chunk *c, size_t len, uint32_t seed)
{
	c->data = malloc(len ? len : 1);
	c->len = len;
	if (!c->data)
		return -1;
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		c->data[i] = (uint8_t)x;
	}
	return qs_sha256(c->data, len, c->hash) == 0 ? 0 : -1;
}

static struct chunk chunk_make(size_t len, uint32_t seed)
{
	struct chunk c;
	assert_int_equal(chunk_fill(&c, len, seed), 0);
	return c;
}

static void chunk_free(struct chunk *c)
{
	free(c->data);
}

static void put_ok(struct qs_chunks *cs, const struct chunk *c)
{
	assert_int_equal(qs_chunks_put(cs, c->hash, c->data, c->len), 0);
}

static bool has(struct qs_chunks *cs, const struct chunk *c)
{
	bool present = false;
	assert_int_equal(qs_chunks_has(cs, c->hash, &present), 0);
	return present;
}

static void get_equal(struct qs_chunks *cs, const struct chunk *c)
{
	uint8_t *data = NULL;
	size_t len = 0;
	assert_int_equal(qs_chunks_get(cs, c->hash, &data, &len), 0);
	assert_int_equal(len, c->len);
	assert_memory_equal(data, c->data, len);
	qs_free(data);
}

static int get_rc(struct qs_chunks *cs, const struct chunk *c)
{
	uint8_t *data = (uint8_t *)1;
	size_t len = 7;
	int rc = qs_chunks_get(cs, c->hash, &data, &len);
	if (rc) {
		assert_ptr_equal(data, (uint8_t *)1);
		assert_int_equal(len, 7);
	} else {
		qs_free(data);
	}
	return rc;
}

static void path_of(char *out, size_t cap, const struct fixture *f, const char *rel)
{
	snprintf(out, cap, "%s/%s", f->dir, rel);
}

static void object_path(char *out, size_t cap, const struct fixture *f, const struct chunk *c)
{
	char hex[QS_SHA256_HEX_LEN + 1];
	qs_hex_encode(c->hash, QS_SHA256_LEN, hex);
	snprintf(out, cap, "%s/objects/%.2s/%.2s/%s", f->dir, hex, hex + 2, hex);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static int64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static int64_t pack_size(const struct fixture *f, unsigned id)
{
	char p[160], rel[64];
	snprintf(rel, sizeof(rel), "packs/%016x.pack", id);
	path_of(p, sizeof(p), f, rel);
	return file_size(p);
}

static size_t count_entries(const struct fixture *f, const char *rel)
{
	char p[160];
	path_of(p, sizeof(p), f, rel);
	size_t n = 0;
	DIR *d = opendir(p);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Overwrites one byte of a file at offset with its complement. */
static void flip_byte(const char *path, off_t offset)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, offset), 1);
	b = (uint8_t)~b;
	assert_int_equal(pwrite(fd, &b, 1, offset), 1);
	close(fd);
}

/* ---- basics ---- */

static void test_small_put_get_has(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(100, 1), b = chunk_make(1, 2), absent = chunk_make(100, 3);
	assert_false(has(f->cs, &a));
	put_ok(f->cs, &a);
	put_ok(f->cs, &b);
	assert_true(has(f->cs, &a));
	assert_true(has(f->cs, &b));
	assert_false(has(f->cs, &absent));
	get_equal(f->cs, &a);
	get_equal(f->cs, &b);
	assert_int_equal(get_rc(f->cs, &absent), QS_ENOENT);

	uint8_t buf[100];
	size_t len = 0;
	assert_int_equal(qs_chunks_read(f->cs, a.hash, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, 100);
	assert_memory_equal(buf, a.data, 100);
	assert_int_equal(qs_chunks_read(f->cs, a.hash, buf, 99, &len), QS_E2BIG);
	assert_int_equal(qs_chunks_read(f->cs, absent.hash, buf, 100, &len), QS_ENOENT);
	/* Packed: no file of its own. */
	char p[200];
	object_path(p, sizeof(p), f, &a);
	assert_false(exists(p));
	chunk_free(&a);
	chunk_free(&b);
	chunk_free(&absent);
}

static void test_large_put_get_has(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(MIB, 4), max = chunk_make(QS_CHUNKS_MAX_BYTES, 5);
	put_ok(f->cs, &a);
	put_ok(f->cs, &max);
	assert_true(has(f->cs, &a));
	get_equal(f->cs, &a);
	get_equal(f->cs, &max);
	char p[200];
	object_path(p, sizeof(p), f, &a);
	assert_int_equal(file_size(p), MIB);
	assert_int_equal(count_entries(f, "tmp"), 0);
	chunk_free(&a);
	chunk_free(&max);
}

static void test_size_boundaries(void **state)
{
	struct fixture *f = *state;
	struct chunk small = chunk_make(QS_CHUNKS_SMALL_MAX_BYTES, 6);
	struct chunk large = chunk_make(QS_CHUNKS_SMALL_MAX_BYTES + 1, 7);
	struct chunk huge = chunk_make(QS_CHUNKS_MAX_BYTES + 1, 8);
	put_ok(f->cs, &small);
	put_ok(f->cs, &large);
	char p[200];
	object_path(p, sizeof(p), f, &small);
	assert_false(exists(p));
	assert_int_equal(pack_size(f, 1), 16 + 40 + (int64_t)QS_CHUNKS_SMALL_MAX_BYTES);
	object_path(p, sizeof(p), f, &large);
	assert_int_equal(file_size(p), (int64_t)QS_CHUNKS_SMALL_MAX_BYTES + 1);
	get_equal(f->cs, &small);
	get_equal(f->cs, &large);
	assert_int_equal(qs_chunks_put(f->cs, huge.hash, huge.data, huge.len), QS_E2BIG);
	assert_int_equal(qs_chunks_put(f->cs, huge.hash, huge.data, 0), QS_EINVAL);
	assert_false(has(f->cs, &huge));
	chunk_free(&small);
	chunk_free(&large);
	chunk_free(&huge);
}

/* The pack format of docs/store.md, byte for byte. */
static void test_pack_format(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(300, 9), b = chunk_make(5, 10);
	put_ok(f->cs, &a);
	put_ok(f->cs, &b);
	char p[200];
	path_of(p, sizeof(p), f, "packs/0000000000000001.pack");
	FILE *fp = fopen(p, "rb");
	assert_non_null(fp);
	uint8_t bytes[16 + 40 + 300 + 40 + 5 + 1];
	assert_int_equal(fread(bytes, 1, sizeof(bytes), fp), sizeof(bytes) - 1);
	fclose(fp);
	static const uint8_t header[16] = {'Q', 'S', 'P', 'K', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
	assert_memory_equal(bytes, header, 16);
	const uint8_t *r = bytes + 16;
	assert_memory_equal(r, "QSCR", 4);
	static const uint8_t len300[4] = {0, 0, 1, 44};
	assert_memory_equal(r + 4, len300, 4);
	assert_memory_equal(r + 8, a.hash, 32);
	assert_memory_equal(r + 40, a.data, 300);
	r += 340;
	assert_memory_equal(r, "QSCR", 4);
	static const uint8_t len5[4] = {0, 0, 0, 5};
	assert_memory_equal(r + 4, len5, 4);
	assert_memory_equal(r + 8, b.hash, 32);
	assert_memory_equal(r + 40, b.data, 5);
	chunk_free(&a);
	chunk_free(&b);
}

static void test_duplicate_put_stores_once(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(1000, 11), big = chunk_make(200 * KIB, 12);
	put_ok(f->cs, &a);
	put_ok(f->cs, &big);
	int64_t size = pack_size(f, 1);
	put_ok(f->cs, &a);
	put_ok(f->cs, &big);
	assert_int_equal(qs_chunks_batch_begin(f->cs), 0);
	put_ok(f->cs, &a);
	put_ok(f->cs, &a);
	assert_int_equal(qs_chunks_batch_sync(f->cs), 0);
	assert_int_equal(pack_size(f, 1), size);
	assert_int_equal(count_entries(f, "tmp"), 0);
	chunk_free(&a);
	chunk_free(&big);
}

static void test_wrong_hash_stores_nothing(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(1000, 13), big = chunk_make(300 * KIB, 14);
	put_ok(f->cs, &a); /* so the pack exists */
	int64_t size = pack_size(f, 1);
	struct chunk b = chunk_make(1000, 15), big2 = chunk_make(300 * KIB, 16);
	/* b's bytes under a different hash, and one flipped bit under the right hash. */
	assert_int_equal(qs_chunks_put(f->cs, a.hash, b.data, b.len), QS_EPROTO);
	b.data[10] ^= 1;
	assert_int_equal(qs_chunks_put(f->cs, b.hash, b.data, b.len), QS_EPROTO);
	big2.data[big2.len - 1] ^= 0x80;
	assert_int_equal(qs_chunks_put(f->cs, big2.hash, big2.data, big2.len), QS_EPROTO);
	assert_int_equal(qs_chunks_put(f->cs, big.hash, big.data, big.len - 1), QS_EPROTO);
	assert_false(has(f->cs, &b));
	assert_false(has(f->cs, &big2));
	assert_false(has(f->cs, &big));
	assert_int_equal(pack_size(f, 1), size);
	assert_int_equal(count_entries(f, "objects"), 0);
	assert_int_equal(count_entries(f, "tmp"), 0);
	get_equal(f->cs, &a); /* a's own data was not replaced */
	chunk_free(&a);
	chunk_free(&b);
	chunk_free(&big);
	chunk_free(&big2);
}

/* ---- damage ---- */

static void test_damaged_small_chunk_detected(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(500, 17), b = chunk_make(500, 18), c = chunk_make(500, 19);
	put_ok(f->cs, &a);
	put_ok(f->cs, &b);
	put_ok(f->cs, &c);
	char p[200];
	path_of(p, sizeof(p), f, "packs/0000000000000001.pack");
	flip_byte(p, 16 + 40 + 499); /* a's last data byte */
	flip_byte(p, 16 + 540 + 8);  /* b's stored hash */
	assert_int_equal(get_rc(f->cs, &a), QS_EIO);
	assert_int_equal(get_rc(f->cs, &b), QS_EIO);
	uint8_t buf[500];
	size_t len = 0;
	assert_int_equal(qs_chunks_read(f->cs, a.hash, buf, sizeof(buf), &len), QS_EIO);
	assert_int_equal(len, 0);
	get_equal(f->cs, &c);        /* the rest of the pack is fine */
	assert_true(has(f->cs, &a)); /* has does not read */
	/* Cut inside c: a short read is damage too. */
	assert_int_equal(truncate(p, 16 + 540 * 2 + 100), 0);
	assert_int_equal(get_rc(f->cs, &c), QS_EIO);
	chunk_free(&a);
	chunk_free(&b);
	chunk_free(&c);
}

static void test_damaged_large_chunk_detected(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(100 * KIB, 20), b = chunk_make(100 * KIB, 21);
	put_ok(f->cs, &a);
	put_ok(f->cs, &b);
	char pa[200], pb[200];
	object_path(pa, sizeof(pa), f, &a);
	object_path(pb, sizeof(pb), f, &b);
	flip_byte(pa, 12345);
	assert_int_equal(get_rc(f->cs, &a), QS_EIO);
	uint8_t *buf = malloc(QS_CHUNKS_MAX_BYTES);
	size_t len = 0;
	assert_int_equal(qs_chunks_read(f->cs, a.hash, buf, QS_CHUNKS_MAX_BYTES, &len), QS_EIO);
	/* Too short to be a large chunk, and a truncated one. */
	assert_int_equal(truncate(pb, 10), 0);
	assert_int_equal(get_rc(f->cs, &b), QS_EIO);
	/* A put of a chunk whose file has the wrong size replaces the file. */
	put_ok(f->cs, &b);
	get_equal(f->cs, &b);
	free(buf);
	chunk_free(&a);
	chunk_free(&b);
}

/* ---- batches ---- */

static void test_batch_sync(void **state)
{
	struct fixture *f = *state;
	struct chunk small[50], large[3];
	assert_int_equal(qs_chunks_batch_sync(f->cs), QS_ESTATE);
	assert_int_equal(qs_chunks_batch_abort(f->cs), QS_ESTATE);
	assert_int_equal(qs_chunks_batch_begin(f->cs), 0);
	assert_int_equal(qs_chunks_batch_begin(f->cs), QS_ESTATE);
	for (uint32_t i = 0; i < 50; i++) {
		small[i] = chunk_make(100 + i * 37, 100 + i);
		put_ok(f->cs, &small[i]);
	}
	for (uint32_t i = 0; i < 3; i++) {
		large[i] = chunk_make(70 * KIB + i, 200 + i);
		put_ok(f->cs, &large[i]);
	}
	/* Visible inside the batch, from the pack and from the not-yet-placed files. */
	assert_true(has(f->cs, &small[49]));
	get_equal(f->cs, &small[7]);
	get_equal(f->cs, &large[1]);
	assert_int_equal(count_entries(f, "tmp"), 3);
	assert_int_equal(qs_chunks_batch_sync(f->cs), 0);
	assert_int_equal(count_entries(f, "tmp"), 0);
	reopen(f, NULL);
	for (size_t i = 0; i < 50; i++) {
		get_equal(f->cs, &small[i]);
		chunk_free(&small[i]);
	}
	for (size_t i = 0; i < 3; i++) {
		get_equal(f->cs, &large[i]);
		chunk_free(&large[i]);
	}
}

static void test_batch_abort_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct chunk kept = chunk_make(700, 30), small = chunk_make(800, 31);
	struct chunk large = chunk_make(90 * KIB, 32);
	put_ok(f->cs, &kept);
	int64_t size = pack_size(f, 1);
	assert_int_equal(qs_chunks_batch_begin(f->cs), 0);
	put_ok(f->cs, &small);
	put_ok(f->cs, &large);
	assert_true(pack_size(f, 1) > size);
	assert_int_equal(qs_chunks_batch_abort(f->cs), 0);
	assert_false(has(f->cs, &small));
	assert_false(has(f->cs, &large));
	assert_int_equal(get_rc(f->cs, &small), QS_ENOENT);
	assert_int_equal(pack_size(f, 1), size); /* the records were cut off */
	assert_int_equal(count_entries(f, "tmp"), 0);
	get_equal(f->cs, &kept);
	/* The store goes on: the same chunks can be stored again. */
	put_ok(f->cs, &small);
	put_ok(f->cs, &large);
	reopen(f, NULL);
	get_equal(f->cs, &small);
	get_equal(f->cs, &large);
	chunk_free(&kept);
	chunk_free(&small);
	chunk_free(&large);
}

static void test_batch_flushes_large_chunks_early(void **state)
{
	struct fixture *f = *state;
	enum { N = QS_CHUNKS_BATCH_FILES_MAX + 2 };
	static struct chunk large[N];
	assert_int_equal(qs_chunks_batch_begin(f->cs), 0);
	for (uint32_t i = 0; i < N; i++) {
		large[i] = chunk_make(QS_CHUNKS_SMALL_MAX_BYTES + 1 + i, 300 + i);
		put_ok(f->cs, &large[i]);
	}
	/* The first QS_CHUNKS_BATCH_FILES_MAX went into place to make room for the rest. */
	assert_int_equal(count_entries(f, "tmp"), 2);
	for (uint32_t i = 0; i < N; i++)
		assert_true(has(f->cs, &large[i]));
	assert_int_equal(qs_chunks_batch_sync(f->cs), 0);
	reopen(f, NULL);
	for (uint32_t i = 0; i < N; i++) {
		get_equal(f->cs, &large[i]);
		chunk_free(&large[i]);
	}
}

static void test_pack_rollover(void **state)
{
	struct fixture *f = *state;
	struct qs_chunks_options opt = {.pack_max_bytes = 4096};
	reopen(f, &opt);
	struct chunk c[12];
	assert_int_equal(qs_chunks_batch_begin(f->cs), 0);
	for (uint32_t i = 0; i < 6; i++) {
		c[i] = chunk_make(1000, 400 + i);
		put_ok(f->cs, &c[i]);
	}
	assert_int_equal(qs_chunks_batch_sync(f->cs), 0);
	for (uint32_t i = 6; i < 12; i++) {
		c[i] = chunk_make(1000, 400 + i);
		put_ok(f->cs, &c[i]);
	}
	/* 3 records of 1040 bytes fit after the 16-byte header, a 4th would not. */
	assert_int_equal(pack_size(f, 1), 16 + 3 * 1040);
	assert_int_equal(pack_size(f, 2), 16 + 3 * 1040);
	assert_int_equal(pack_size(f, 3), 16 + 3 * 1040);
	assert_int_equal(pack_size(f, 4), 16 + 3 * 1040);
	assert_int_equal(pack_size(f, 5), -1);
	/* A record larger than the limit still gets a pack of its own. */
	struct chunk big = chunk_make(QS_CHUNKS_SMALL_MAX_BYTES, 450);
	put_ok(f->cs, &big);
	assert_int_equal(pack_size(f, 5), 16 + 40 + (int64_t)QS_CHUNKS_SMALL_MAX_BYTES);
	reopen(f, NULL);
	for (size_t i = 0; i < 12; i++) {
		get_equal(f->cs, &c[i]);
		chunk_free(&c[i]);
	}
	get_equal(f->cs, &big);
	chunk_free(&big);
}

/* ---- the directory, the index ---- */

static void test_second_open_is_refused(void **state)
{
	struct fixture *f = *state;
	struct qs_chunks *other = NULL;
	assert_int_equal(qs_chunks_open(f->dir, NULL, &other), QS_EAGAIN);
	assert_null(other);
	qs_chunks_close(f->cs);
	f->cs = NULL;
	assert_int_equal(qs_chunks_open(f->dir, NULL, &f->cs), 0);
}

static void test_newer_or_foreign_index_is_refused(void **state)
{
	struct fixture *f = *state;
	qs_chunks_close(f->cs);
	f->cs = NULL;
	char p[200];
	path_of(p, sizeof(p), f, "index.db");
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct qs_chunks *cs = NULL;
	assert_int_equal(qs_chunks_open(f->dir, NULL, &cs), QS_EIO);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 1; PRAGMA application_id = 7",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(qs_chunks_open(f->dir, NULL, &cs), QS_EIO);
	assert_null(cs);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 1364411209", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(qs_chunks_open(f->dir, NULL, &f->cs), 0);
}

static void test_lost_pack_tail(void **state)
{
	struct fixture *f = *state;
	struct chunk a = chunk_make(500, 40), b = chunk_make(500, 41), c = chunk_make(500, 42);
	put_ok(f->cs, &a);
	put_ok(f->cs, &b);
	qs_chunks_close(f->cs);
	f->cs = NULL;
	char p[200];
	path_of(p, sizeof(p), f, "packs/0000000000000001.pack");
	assert_int_equal(truncate(p, 16 + 540 + 10), 0); /* b lost: shorter than committed */
	assert_int_equal(qs_chunks_open(f->dir, NULL, &f->cs), 0);
	get_equal(f->cs, &a);
	assert_int_equal(get_rc(f->cs, &b), QS_EIO);
	put_ok(f->cs, &c); /* into a new pack, not after the damage */
	assert_int_equal(pack_size(f, 2), 16 + 540);
	assert_int_equal(pack_size(f, 1), 16 + 540 + 10);
	get_equal(f->cs, &c);
	chunk_free(&a);
	chunk_free(&b);
	chunk_free(&c);
}

/* ---- durability ---- */

static struct chunk durable_small, durable_large, unsynced_small, unsynced_large;

/* Runs fn on a freshly opened store in a child killed with SIGKILL right after (kill -9). */
static void in_killed_child(const char *dir, void (*fn)(struct qs_chunks *cs))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct qs_chunks *cs = NULL;
		if (qs_chunks_open(dir, NULL, &cs) != 0)
			_exit(1);
		fn(cs);
		raise(SIGKILL);
		_exit(2);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

static void child_put(struct qs_chunks *cs)
{
	if (qs_chunks_put(cs, durable_small.hash, durable_small.data, durable_small.len) != 0 ||
	    qs_chunks_put(cs, durable_large.hash, durable_large.data, durable_large.len) != 0)
		_exit(3);
}

static void child_unsynced_batch(struct qs_chunks *cs)
{
	if (qs_chunks_batch_begin(cs) != 0 ||
	    qs_chunks_put(cs, unsynced_small.hash, unsynced_small.data, unsynced_small.len) != 0 ||
	    qs_chunks_put(cs, unsynced_large.hash, unsynced_large.data, unsynced_large.len) != 0)
		_exit(3);
}

static void test_acknowledged_survives_kill(void **state)
{
	struct fixture *f = *state;
	qs_chunks_close(f->cs);
	f->cs = NULL;
	durable_small = chunk_make(4000, 50);
	durable_large = chunk_make(300 * KIB, 51);
	unsynced_small = chunk_make(4000, 52);
	unsynced_large = chunk_make(300 * KIB, 53);
	in_killed_child(f->dir, child_put);
	int64_t committed = pack_size(f, 1);
	in_killed_child(f->dir, child_unsynced_batch);
	assert_true(pack_size(f, 1) > committed); /* the child did write the record */
	assert_int_equal(count_entries(f, "tmp"), 1);

	assert_int_equal(qs_chunks_open(f->dir, NULL, &f->cs), 0);
	get_equal(f->cs, &durable_small);
	get_equal(f->cs, &durable_large);
	assert_false(has(f->cs, &unsynced_small));
	assert_false(has(f->cs, &unsynced_large));
	assert_int_equal(pack_size(f, 1), committed); /* cut back at open */
	assert_int_equal(count_entries(f, "tmp"), 0);
	chunk_free(&durable_small);
	chunk_free(&durable_large);
	chunk_free(&unsynced_small);
	chunk_free(&unsynced_large);
}

/* ---- threads ---- */

struct worker {
	struct qs_chunks *cs;
	uint32_t seed;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (uint32_t i = 0; i < 20; i++) {
		struct chunk c;
		uint8_t *data = NULL;
		size_t len = 0;
		bool present = false;
		if (chunk_fill(&c, i % 4 == 0 ? 80 * KIB : 2000, w->seed + i) != 0 ||
		    qs_chunks_put(w->cs, c.hash, c.data, c.len) != 0 ||
		    qs_chunks_has(w->cs, c.hash, &present) != 0 || !present ||
		    qs_chunks_get(w->cs, c.hash, &data, &len) != 0 || len != c.len ||
		    memcmp(data, c.data, len) != 0)
			w->failures++;
		qs_free(data);
		chunk_free(&c);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct worker w[3];
	pthread_t t[3];
	for (uint32_t i = 0; i < 3; i++) {
		w[i] = (struct worker){.cs = f->cs, .seed = 1000 * (i + 1)};
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
	reopen(f, NULL);
	for (uint32_t i = 0; i < 3; i++) {
		for (uint32_t j = 0; j < 20; j++) {
			struct chunk c =
				chunk_make(j % 4 == 0 ? 80 * KIB : 2000, 1000 * (i + 1) + j);
			get_equal(f->cs, &c);
			chunk_free(&c);
		}
	}
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- garbage collection ---- */

/* live: the chunk is one of the n hashes in arg. */
struct live_set {
	const struct chunk *const *c;
	size_t n;
};

static bool live_in(void *arg, const uint8_t hash[QS_SHA256_LEN])
{
	const struct live_set *l = arg;
	for (size_t i = 0; i < l->n; i++)
		if (memcmp(l->c[i]->hash, hash, QS_SHA256_LEN) == 0)
			return true;
	return false;
}

#define FUTURE ((int64_t)4102444800) /* 2100: every chunk is older than this cutoff */

static void test_gc_deletes_only_unreferenced(void **state)
{
	struct fixture *f = *state;
	struct chunk small_keep = chunk_make(1000, 1), small_dead = chunk_make(2000, 2);
	struct chunk big_keep = chunk_make(MIB, 3), big_dead = chunk_make(MIB + 5, 4);
	put_ok(f->cs, &small_keep);
	put_ok(f->cs, &small_dead);
	put_ok(f->cs, &big_keep);
	put_ok(f->cs, &big_dead);
	const struct chunk *keep[] = {&small_keep, &big_keep};
	struct live_set l = {keep, 2};
	struct qs_chunks_gc_stats st;
	/* Everything is younger than a cutoff in the past: kept. */
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &l, 0, &st), 0);
	assert_int_equal(st.examined, 4);
	assert_int_equal(st.deleted, 0);
	assert_int_equal(st.kept_young, 2);
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &l, FUTURE, &st), 0);
	assert_int_equal(st.deleted, 2);
	assert_int_equal(st.deleted_bytes, 2000 + MIB + 5);
	assert_true(has(f->cs, &small_keep));
	assert_true(has(f->cs, &big_keep));
	assert_false(has(f->cs, &small_dead));
	assert_false(has(f->cs, &big_dead));
	uint8_t *data;
	size_t len;
	assert_int_equal(qs_chunks_get(f->cs, big_keep.hash, &data, &len), 0);
	assert_memory_equal(data, big_keep.data, len);
	qs_free(data);
	/* A collected chunk can be stored again, and survives a reopen. */
	put_ok(f->cs, &big_dead);
	put_ok(f->cs, &small_dead);
	reopen(f, NULL);
	assert_true(has(f->cs, &big_dead));
	assert_true(has(f->cs, &small_dead));
	/* No GC inside a batch. */
	assert_int_equal(qs_chunks_batch_begin(f->cs), 0);
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &l, FUTURE, &st), QS_ESTATE);
	assert_int_equal(qs_chunks_batch_abort(f->cs), 0);
	chunk_free(&small_keep);
	chunk_free(&small_dead);
	chunk_free(&big_keep);
	chunk_free(&big_dead);
}

/* The race of an upload with the collector, in both orders (DESIGN: GC never deletes a chunk
 * an in-flight PLEASE_SYNC is about to reference). An upload pins each chunk of its manifest
 * and skips sending those the pin reports present. */
static void test_gc_race_with_upload(void **state)
{
	struct fixture *f = *state;
	struct chunk big = chunk_make(MIB, 7), small = chunk_make(100, 8);
	put_ok(f->cs, &big);
	put_ok(f->cs, &small);
	struct live_set none = {NULL, 0};
	struct qs_chunks_gc_stats st;

	/* 1. The pin comes first: the upload will skip both chunks, so GC must keep them. */
	bool present = false;
	assert_int_equal(qs_chunks_pin(f->cs, big.hash, &present), 0);
	assert_true(present);
	assert_int_equal(qs_chunks_pin(f->cs, small.hash, &present), 0);
	assert_true(present);
	assert_int_equal(qs_chunks_pin(f->cs, small.hash, &present), 0); /* twice in a manifest */
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &none, FUTURE, &st), 0);
	assert_int_equal(st.kept_pinned, 2);
	assert_int_equal(st.deleted, 0);
	assert_true(has(f->cs, &big));
	assert_true(has(f->cs, &small));
	/* Still pinned once: kept. Then the upload committed (a version references them now)
	 * or failed; either way the pins go and the collector decides by references alone. */
	qs_chunks_unpin(f->cs, small.hash);
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &none, FUTURE, &st), 0);
	assert_int_equal(st.kept_pinned, 2);
	qs_chunks_unpin(f->cs, small.hash);
	qs_chunks_unpin(f->cs, big.hash);
	qs_chunks_unpin(f->cs, big.hash); /* unpinning an unpinned chunk changes nothing */

	/* 2. The collector comes first: the pin then reports the chunks absent, so the upload
	 * sends them again instead of referencing deleted bytes. */
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &none, FUTURE, &st), 0);
	assert_int_equal(st.deleted, 2);
	assert_int_equal(qs_chunks_pin(f->cs, big.hash, &present), 0);
	assert_false(present);
	assert_int_equal(qs_chunks_pin(f->cs, small.hash, &present), 0);
	assert_false(present);
	put_ok(f->cs, &big);
	put_ok(f->cs, &small);
	assert_int_equal(qs_chunks_gc(f->cs, live_in, &none, FUTURE, &st), 0);
	assert_int_equal(st.deleted, 0);
	assert_true(has(f->cs, &big));
	assert_true(has(f->cs, &small));
	qs_chunks_unpin(f->cs, big.hash);
	qs_chunks_unpin(f->cs, small.hash);
	chunk_free(&big);
	chunk_free(&small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_small_put_get_has),
		T(test_large_put_get_has),
		T(test_size_boundaries),
		T(test_pack_format),
		T(test_duplicate_put_stores_once),
		T(test_wrong_hash_stores_nothing),
		T(test_damaged_small_chunk_detected),
		T(test_damaged_large_chunk_detected),
		T(test_batch_sync),
		T(test_batch_abort_leaves_nothing),
		T(test_batch_flushes_large_chunks_early),
		T(test_pack_rollover),
		T(test_second_open_is_refused),
		T(test_newer_or_foreign_index_is_refused),
		T(test_lost_pack_tail),
		T(test_acknowledged_survives_kill),
		T(test_threads),
		T(test_gc_deletes_only_unreferenced),
		T(test_gc_race_with_upload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

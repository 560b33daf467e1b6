/* Fuzz harness for the chunker and the manifest decoder. The input is chunked with small
 * parameters (chosen by its first byte) once in a single feed and once in feeds whose sizes
 * derive from the input; both must give the same chunks, the lengths must add up, every
 * chunk must be within bounds, hash to its SHA-256 and match the boundary-only scan. The
 * chunk list must survive a manifest round trip, and the input itself is decoded as a
 * manifest: whatever decodes must re-encode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "core/chunker.h"
#include "core/manifest.h"
#include "core/sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct qs_chunker_params fuzz_params[] = {
	{64, 64, 64},
	{64, 128, 512},
	{100, 256, 300},
	{256, 1024, 4096},
};

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

struct rec {
	uint64_t offset;
	size_t len;
	uint8_t sha[QS_SHA256_LEN];
};

struct recs {
	struct rec *v;
	size_t n, cap;
	struct qs_manifest *m; /* also appended to, when not NULL */
};

static int on_chunk(void *arg, uint64_t offset, size_t len_bytes,
		    const uint8_t sha256[QS_SHA256_LEN])
{
	struct recs *r = arg;
	CHECK(r->n < r->cap);
	r->v[r->n].offset = offset;
	r->v[r->n].len = len_bytes;
	memcpy(r->v[r->n].sha, sha256, QS_SHA256_LEN);
	r->n++;
	if (r->m != NULL)
		return qs_manifest_on_chunk(r->m, offset, len_bytes, sha256);
	return 0;
}

static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Chunks data; split_seed 0 means one feed, else feed sizes in [0, max_feed]. */
static void run(const struct qs_chunker_params *p, const uint8_t *data, size_t size,
		uint64_t split_seed, size_t max_feed, struct recs *out)
{
	struct qs_chunker c;
	CHECK(qs_chunker_init(&c, p, on_chunk, out) == 0);
	for (size_t off = 0; off < size;) {
		size_t n = size - off;
		if (split_seed != 0) {
			size_t want = (size_t)(next_rand(&split_seed) % (max_feed + 1));
			n = want < n ? want : n;
		}
		CHECK(qs_chunker_feed(&c, data + off, n) == 0);
		off += n;
	}
	CHECK(qs_chunker_finish(&c) == 0);
	qs_chunker_release(&c);
}

static void check_invariants(const struct qs_chunker_params *p, const uint8_t *data, size_t size,
			     const struct recs *r)
{
	uint64_t off = 0;
	for (size_t i = 0; i < r->n; i++) {
		CHECK(r->v[i].offset == off);
		CHECK(r->v[i].len >= 1 && r->v[i].len <= p->max_bytes);
		CHECK(i + 1 == r->n || r->v[i].len >= p->min_bytes);
		uint8_t sha[QS_SHA256_LEN];
		CHECK(qs_sha256(data + off, r->v[i].len, sha) == 0);
		CHECK(memcmp(sha, r->v[i].sha, QS_SHA256_LEN) == 0);
		size_t scanned = 0;
		CHECK(qs_chunker_scan(p, data + off, size - (size_t)off, &scanned) == 0);
		CHECK(scanned == r->v[i].len);
		off += r->v[i].len;
	}
	CHECK(off == size);
}

static void check_manifest_round_trip(const struct qs_manifest *m)
{
	struct qs_buf b;
	struct qs_manifest d;
	qs_buf_init(&b, (size_t)64 << 20);
	qs_manifest_init(&d);
	CHECK(qs_manifest_encode(m, &b) == 0);
	CHECK(qs_manifest_decode(&d, b.data, b.len) == 0);
	CHECK(qs_manifest_equal(m, &d));
	qs_manifest_release(&d);
	qs_buf_release(&b);
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
	struct qs_manifest m;
	qs_manifest_init(&m);
	int rc = qs_manifest_decode(&m, data, size);
	CHECK(rc == 0 || rc == QS_EPROTO || rc == QS_ELIMIT);
	if (rc == 0) {
		struct qs_buf b;
		qs_buf_init(&b, size);
		CHECK(qs_manifest_encode(&m, &b) == 0);
		CHECK(b.len == size && memcmp(b.data, data, size) == 0);
		qs_buf_release(&b);
	} else {
		CHECK(m.count == 0 && m.chunks == NULL);
	}
	qs_manifest_release(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_decode(data, size);
	if (size == 0)
		return 0;
	const struct qs_chunker_params *p =
		&fuzz_params[data[0] % (sizeof(fuzz_params) / sizeof(fuzz_params[0]))];
	uint64_t split_seed = 1;
	for (size_t i = 0; i < size && i < 8; i++)
		split_seed = split_seed * 131 + data[i];
	size_t max_feed = (size_t)1 << (data[0] >> 4 & 0xf);

	struct recs one = {0}, split = {0};
	struct qs_manifest m;
	qs_manifest_init(&m);
	one.cap = split.cap = size / p->min_bytes + 1;
	one.v = qs_calloc(one.cap, sizeof(*one.v));
	split.v = qs_calloc(split.cap, sizeof(*split.v));
	CHECK(one.v != NULL && split.v != NULL);
	one.m = &m;
	run(p, data, size, 0, 0, &one);
	run(p, data, size, split_seed, max_feed, &split);
	check_invariants(p, data, size, &one);
	CHECK(one.n == split.n && memcmp(one.v, split.v, one.n * sizeof(*one.v)) == 0);
	CHECK(m.count == one.n && m.size_bytes == size);
	check_manifest_round_trip(&m);
	qs_manifest_release(&m);
	qs_free(one.v);
	qs_free(split.v);
	return 0;
}

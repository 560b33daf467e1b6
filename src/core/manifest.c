/* Manifests: building, the canonical encoding (docs/manifest.md), the manifest hash and a
 * strict decoder. Owns the chunk array of each struct qs_manifest. Invariant: every
 * manifest in memory satisfies the rules the decoder enforces, so encode never fails on
 * content and decode(encode(m)) == m. */
#include "core/manifest.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/reader.h"

static const uint8_t manifest_magic[4] = {'Q', 'S', 'M', 'F'};
#define MANIFEST_VERSION 1

/* Entries are serialized through a small stack block so hashing makes few SHA-256 calls. */
#define MANIFEST_BLOCK_ENTRIES 64

void qs_manifest_init(struct qs_manifest *m)
{
	m->chunks = NULL;
	m->count = 0;
	m->cap = 0;
	m->size_bytes = 0;
}

void qs_manifest_release(struct qs_manifest *m)
{
	qs_free(m->chunks);
	qs_manifest_init(m);
}

static int manifest_grow(struct qs_manifest *m)
{
	size_t cap = m->cap == 0 ? 16 : m->cap * 2;
	if (cap > QS_MANIFEST_MAX_CHUNKS)
		cap = QS_MANIFEST_MAX_CHUNKS;
	size_t bytes;
	if (!qs_size_mul(cap, sizeof(*m->chunks), &bytes))
		return QS_ENOMEM;
	struct qs_manifest_chunk *p = qs_realloc(m->chunks, bytes);
	if (p == NULL)
		return QS_ENOMEM;
	m->chunks = p;
	m->cap = cap;
	return 0;
}

int qs_manifest_append(struct qs_manifest *m, const uint8_t sha256[QS_SHA256_LEN], size_t len_bytes)
{
	if (len_bytes == 0 || len_bytes > QS_MANIFEST_CHUNK_MAX_BYTES)
		return QS_EINVAL;
	if (m->count >= QS_MANIFEST_MAX_CHUNKS)
		return QS_E2BIG;
	if (m->count == m->cap) {
		int rc = manifest_grow(m);
		if (rc != 0)
			return rc;
	}
	struct qs_manifest_chunk *c = &m->chunks[m->count++];
	memcpy(c->sha256, sha256, QS_SHA256_LEN);
	c->len_bytes = (uint32_t)len_bytes;
	m->size_bytes += len_bytes;
	return 0;
}

int qs_manifest_on_chunk(void *arg, uint64_t offset, size_t len_bytes,
			 const uint8_t sha256[QS_SHA256_LEN])
{
	struct qs_manifest *m = arg;
	if (offset != m->size_bytes)
		return QS_EINVAL;
	return qs_manifest_append(m, sha256, len_bytes);
}

bool qs_manifest_equal(const struct qs_manifest *a, const struct qs_manifest *b)
{
	if (a->count != b->count || a->size_bytes != b->size_bytes)
		return false;
	for (size_t i = 0; i < a->count; i++) {
		if (a->chunks[i].len_bytes != b->chunks[i].len_bytes ||
		    memcmp(a->chunks[i].sha256, b->chunks[i].sha256, QS_SHA256_LEN) != 0)
			return false;
	}
	return true;
}

size_t qs_manifest_encoded_size(const struct qs_manifest *m)
{
	return QS_MANIFEST_HEADER_BYTES + m->count * QS_MANIFEST_ENTRY_BYTES;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* Receives the encoding piece by piece; cannot fail. */
typedef void (*manifest_sink_fn)(void *arg, const uint8_t *p, size_t n);

static void manifest_serialize(const struct qs_manifest *m, manifest_sink_fn sink, void *arg)
{
	uint8_t block[MANIFEST_BLOCK_ENTRIES * QS_MANIFEST_ENTRY_BYTES];
	memcpy(block, manifest_magic, sizeof(manifest_magic));
	block[4] = MANIFEST_VERSION;
	put_be(block + 5, m->size_bytes, 8);
	put_be(block + 13, m->count, 4);
	sink(arg, block, QS_MANIFEST_HEADER_BYTES);
	for (size_t i = 0; i < m->count;) {
		size_t n = 0;
		for (; n < MANIFEST_BLOCK_ENTRIES && i < m->count; n++, i++) {
			uint8_t *e = block + n * QS_MANIFEST_ENTRY_BYTES;
			memcpy(e, m->chunks[i].sha256, QS_SHA256_LEN);
			put_be(e + QS_SHA256_LEN, m->chunks[i].len_bytes, 4);
		}
		sink(arg, block, n * QS_MANIFEST_ENTRY_BYTES);
	}
}

static void sink_buf(void *arg, const uint8_t *p, size_t n)
{
	struct qs_buf *b = arg;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

int qs_manifest_encode(const struct qs_manifest *m, struct qs_buf *out)
{
	int rc = qs_buf_reserve(out, qs_manifest_encoded_size(m));
	if (rc != 0)
		return rc;
	manifest_serialize(m, sink_buf, out);
	return 0;
}

static void sink_sha(void *arg, const uint8_t *p, size_t n)
{
	qs_sha256_update(arg, p, n);
}

int qs_manifest_hash(const struct qs_manifest *m, uint8_t out[QS_SHA256_LEN])
{
	struct qs_sha256 s;
	if (qs_sha256_init(&s) != 0)
		return QS_ENOMEM;
	manifest_serialize(m, sink_sha, &s);
	qs_sha256_final(&s, out);
	return 0;
}

/* Reads the header; on success *count is within the limit and exactly count entries
 * remain in r. */
static int manifest_decode_header(struct qs_reader *r, uint64_t *size_bytes, size_t *count)
{
	const uint8_t *magic = qs_reader_bytes(r, sizeof(manifest_magic));
	uint8_t version = qs_reader_u8(r);
	uint64_t size = qs_reader_u64be(r);
	uint32_t n = qs_reader_u32be(r);
	if (r->err != 0 || memcmp(magic, manifest_magic, sizeof(manifest_magic)) != 0 ||
	    version != MANIFEST_VERSION)
		return QS_EPROTO;
	if (n > QS_MANIFEST_MAX_CHUNKS)
		return QS_ELIMIT;
	/* n <= 2^20, so the product cannot overflow. */
	if (r->avail != (size_t)n * QS_MANIFEST_ENTRY_BYTES)
		return QS_EPROTO;
	*size_bytes = size;
	*count = n;
	return 0;
}

int qs_manifest_decode(struct qs_manifest *out, const uint8_t *data, size_t len)
{
	struct qs_reader r;
	struct qs_manifest m;
	uint64_t size_bytes = 0;
	size_t count = 0;
	qs_reader_init(&r, data, len);
	qs_manifest_init(&m);
	int rc = manifest_decode_header(&r, &size_bytes, &count);
	if (rc != 0)
		goto out;
	if (count > 0) {
		m.chunks = qs_calloc(count, sizeof(*m.chunks));
		if (m.chunks == NULL) {
			rc = QS_ENOMEM;
			goto out;
		}
		m.cap = count;
	}
	for (size_t i = 0; i < count; i++) {
		uint8_t sha[QS_SHA256_LEN];
		qs_reader_copy(&r, sha, sizeof(sha));
		uint32_t chunk_len = qs_reader_u32be(&r);
		rc = qs_manifest_append(&m, sha, chunk_len);
		if (rc == QS_EINVAL)
			rc = QS_EPROTO;
		if (rc != 0)
			goto out;
	}
	rc = qs_reader_finish(&r);
	if (rc == 0 && m.size_bytes != size_bytes)
		rc = QS_EPROTO;
out:
	if (rc == 0) {
		qs_manifest_release(out);
		*out = m;
	} else {
		qs_manifest_release(&m);
	}
	return rc;
}

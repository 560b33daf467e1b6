/* FileState rules and conversions (see filestate.h). */
#include "core/filestate.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "core/chunker.h"
#include "core/sha256.h"

int qs_filestate_kind(Quics__FileKind k)
{
	switch (k) {
	case QUICS__FILE_KIND__FILE_KIND_FILE: return QS_KIND_FILE;
	case QUICS__FILE_KIND__FILE_KIND_DIR: return QS_KIND_DIR;
	case QUICS__FILE_KIND__FILE_KIND_SYMLINK: return QS_KIND_SYMLINK;
	case QUICS__FILE_KIND__FILE_KIND_TOMBSTONE: return QS_KIND_TOMBSTONE;
	default: return -1;
	}
}

Quics__FileKind qs_filestate_wire_kind(enum qs_kind k)
{
	switch (k) {
	case QS_KIND_FILE: return QUICS__FILE_KIND__FILE_KIND_FILE;
	case QS_KIND_DIR: return QUICS__FILE_KIND__FILE_KIND_DIR;
	case QS_KIND_SYMLINK: return QUICS__FILE_KIND__FILE_KIND_SYMLINK;
	default: return QUICS__FILE_KIND__FILE_KIND_TOMBSTONE;
	}
}

static int check_file(const Quics__FileState *st)
{
	uint64_t total = 0;
	for (size_t i = 0; i < st->n_manifest; i++) {
		const Quics__ChunkRef *c = st->manifest[i];
		if (c->hash.len != QS_SHA256_LEN || c->length == 0 ||
		    c->length > QS_CHUNKER_MAX_BYTES)
			return QS_EPROTO;
		total += c->length;
	}
	if (total != st->size)
		return QS_EPROTO;
	if (st->inline_data.len == 0)
		return 0;
	if (st->n_manifest != 1 || st->inline_data.len != st->size ||
	    st->inline_data.len > QS_WIRE_INLINE_MAX)
		return QS_EPROTO;
	uint8_t d[QS_SHA256_LEN];
	if (qs_sha256(st->inline_data.data, st->inline_data.len, d) != 0)
		return QS_ENOMEM;
	return memcmp(d, st->manifest[0]->hash.data, QS_SHA256_LEN) == 0 ? 0 : QS_EPROTO;
}

int qs_filestate_check(const Quics__FileState *st)
{
	int kind = qs_filestate_kind(st->kind);
	if (kind < 0 || st->mode > 07777u)
		return QS_EPROTO;
	if (kind == QS_KIND_FILE)
		return check_file(st);
	if (st->n_manifest != 0 || st->inline_data.len != 0)
		return QS_EPROTO;
	size_t tl = strlen(st->symlink_target);
	if (kind == QS_KIND_SYMLINK)
		return tl >= 1 && tl <= QS_FILESTATE_TARGET_MAX ? 0 : QS_EPROTO;
	return tl == 0 ? 0 : QS_EPROTO;
}

int qs_filestate_manifest(const Quics__FileState *st, struct qs_manifest *out)
{
	struct qs_manifest m;
	qs_manifest_init(&m);
	for (size_t i = 0; i < st->n_manifest; i++) {
		int rc =
			qs_manifest_append(&m, st->manifest[i]->hash.data, st->manifest[i]->length);
		if (rc != 0) {
			qs_manifest_release(&m);
			return rc;
		}
	}
	*out = m;
	return 0;
}

int qs_filestate_content(const Quics__FileState *st, struct qs_content *out, struct qs_buf *enc)
{
	int kind = qs_filestate_kind(st->kind);
	if (kind < 0)
		return QS_EPROTO;
	int rc = 0;
	if (kind == QS_KIND_FILE) {
		struct qs_manifest m;
		rc = qs_filestate_manifest(st, &m);
		if (rc == 0) {
			rc = qs_manifest_encode(&m, enc);
			qs_manifest_release(&m);
		}
	} else if (kind == QS_KIND_SYMLINK) {
		rc = qs_buf_append(enc, st->symlink_target, strlen(st->symlink_target));
	}
	if (rc == 0)
		rc = qs_content_make((enum qs_kind)kind, st->mode, enc->data, enc->len, out);
	return rc;
}

int qs_filestate_out_init(struct qs_filestate_out *out, enum qs_kind kind, uint32_t mode,
			  int64_t mtime_ns, const struct qs_manifest *m, const uint8_t *inline_data,
			  size_t inline_len, const char *target)
{
	Quics__FileState init = QUICS__FILE_STATE__INIT;
	memset(out, 0, sizeof(*out));
	out->st = init;
	out->st.kind = qs_filestate_wire_kind(kind);
	out->st.mode = mode & 07777u;
	out->st.mtime_ns = mtime_ns;
	if (kind == QS_KIND_SYMLINK && target != NULL) {
		out->st.symlink_target = (char *)(uintptr_t)target;
		out->st.size = strlen(target);
	}
	if (kind != QS_KIND_FILE || m == NULL)
		return 0;
	out->refs = qs_calloc(m->count ? m->count : 1, sizeof(*out->refs));
	out->ptrs = qs_calloc(m->count ? m->count : 1, sizeof(*out->ptrs));
	if (out->refs == NULL || out->ptrs == NULL) {
		qs_filestate_out_release(out);
		return QS_ENOMEM;
	}
	for (size_t i = 0; i < m->count; i++) {
		Quics__ChunkRef r = QUICS__CHUNK_REF__INIT;
		r.hash.data = (uint8_t *)(uintptr_t)m->chunks[i].sha256;
		r.hash.len = QS_SHA256_LEN;
		r.length = m->chunks[i].len_bytes;
		out->refs[i] = r;
		out->ptrs[i] = &out->refs[i];
	}
	out->st.n_manifest = m->count;
	out->st.manifest = out->ptrs;
	out->st.size = m->size_bytes;
	if (inline_data != NULL) {
		out->st.inline_data.data = (uint8_t *)(uintptr_t)inline_data;
		out->st.inline_data.len = inline_len;
	}
	return 0;
}

void qs_filestate_out_release(struct qs_filestate_out *out)
{
	qs_free(out->refs);
	qs_free(out->ptrs);
	out->refs = NULL;
	out->ptrs = NULL;
}

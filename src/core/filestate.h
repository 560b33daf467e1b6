/* FileState messages (proto/quics.proto) <-> the model: validating a received FileState,
 * turning it into a manifest and content identity, and building one to send. Pure. */
#ifndef QS_CORE_FILESTATE_H
#define QS_CORE_FILESTATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "core/content.h"
#include "core/manifest.h"
#include "core/wire.h"

#define QS_FILESTATE_TARGET_MAX 4096

/* The model's kind for a wire kind, or -1 for UNSPECIFIED/unknown. */
int qs_filestate_kind(Quics__FileKind k);
Quics__FileKind qs_filestate_wire_kind(enum qs_kind k);

/* Checks the rules a FileState must follow beyond the codec's: a known kind; files have
 * chunk lengths 1..4 MiB summing to size, and inline_data (if set) is the whole content in
 * one chunk of at most 64 KiB whose SHA-256 matches; dirs and tombstones have no content;
 * symlinks have a target of 1..4096 bytes without NUL. Errors: QS_EPROTO. */
int qs_filestate_check(const Quics__FileState *st);

/* The manifest of a checked FileState (empty for non-files). Errors: QS_ENOMEM, QS_E2BIG. */
int qs_filestate_manifest(const Quics__FileState *st, struct qs_manifest *out);

/* The content identity of a checked FileState; enc receives the bytes it covers (manifest
 * encoding of a file, the target of a symlink; nothing otherwise). Errors: QS_ENOMEM,
 * QS_E2BIG. */
int qs_filestate_content(const Quics__FileState *st, struct qs_content *out, struct qs_buf *enc);

/* A FileState to send, with the storage its repeated field points into. */
struct qs_filestate_out {
	Quics__FileState st;
	Quics__ChunkRef *refs;
	Quics__ChunkRef **ptrs;
};

/* Builds out for kind/mode/mtime and, for files, manifest m (borrowed: hashes are pointed
 * to, not copied) and inline bytes (borrowed; NULL for none); for symlinks, target
 * (borrowed). Errors: QS_ENOMEM. Release with qs_filestate_out_release. */
int qs_filestate_out_init(struct qs_filestate_out *out, enum qs_kind kind, uint32_t mode,
			  int64_t mtime_ns, const struct qs_manifest *m, const uint8_t *inline_data,
			  size_t inline_len, const char *target);
void qs_filestate_out_release(struct qs_filestate_out *out);

#endif

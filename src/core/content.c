/* Content identity: SHA-256 over a tagged encoding, offset/size/meaning:
 *   0 4 "QSC1" | 4 1 kind | 5 4 mode (big-endian, files and directories, else 0) | 9 n bytes
 * (none for a directory). */
#include "core/content.h"

#include <string.h>

#include "base/err.h"
#include "core/sha256.h"

int qs_content_make(enum qs_kind kind, uint32_t mode, const uint8_t *bytes, size_t len,
		    struct qs_content *out)
{
	struct qs_content c;
	memset(&c, 0, sizeof(c));
	c.kind = kind;
	if (kind == QS_KIND_TOMBSTONE) {
		*out = c;
		return 0;
	}
	if (kind != QS_KIND_FILE && kind != QS_KIND_SYMLINK && kind != QS_KIND_DIR)
		return QS_EINVAL;
	/* A directory's content is its mode alone (no bytes): a chmod is a change to sync. */
	uint32_t m = kind != QS_KIND_SYMLINK ? (mode & 07777u) : 0;
	if (kind == QS_KIND_DIR)
		len = 0;
	uint8_t hdr[9] = {'Q',
			  'S',
			  'C',
			  '1',
			  (uint8_t)kind,
			  (uint8_t)(m >> 24),
			  (uint8_t)(m >> 16),
			  (uint8_t)(m >> 8),
			  (uint8_t)m};
	struct qs_sha256 h;
	if (qs_sha256_init(&h) != 0)
		return QS_ENOMEM;
	qs_sha256_update(&h, hdr, sizeof(hdr));
	qs_sha256_update(&h, bytes, len);
	qs_sha256_final(&h, c.hash);
	*out = c;
	return 0;
}

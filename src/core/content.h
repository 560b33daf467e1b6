/* The content identity of a file version (struct qs_content of core/version.h): which bytes
 * decide whether two versions are "the same content". A file's hash covers its manifest
 * encoding and its permission bits (so a chmod is a change that syncs); a symlink's covers
 * its target; a directory's covers its permission bits alone; tombstones have no content
 * hash. Pure. */
#ifndef QS_CORE_CONTENT_H
#define QS_CORE_CONTENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/version.h"

/* Fills out for kind with mode (07777 bits) and bytes (the manifest encoding of a file, the
 * target of a symlink; ignored otherwise). Errors: QS_EINVAL (unknown kind), QS_ENOMEM. */
int qs_content_make(enum qs_kind kind, uint32_t mode, const uint8_t *bytes, size_t len,
		    struct qs_content *out);

#endif

/* Bounds-checked cursor over borrowed bytes. Errors are sticky: after the first failed
 * read every read fails and returns zeros, so a parser can read a whole record and check
 * once. qs_reader_finish fails if any read failed or bytes are left over. */
#ifndef QS_BASE_READER_H
#define QS_BASE_READER_H

#include <stddef.h>
#include <stdint.h>

struct qs_reader {
	const uint8_t *p; /* borrowed; next unread byte */
	size_t avail;     /* bytes left */
	int err;          /* 0, or the first error (QS_EPROTO) */
};

void qs_reader_init(struct qs_reader *r, const void *data, size_t len);
uint8_t qs_reader_u8(struct qs_reader *r);
uint16_t qs_reader_u16be(struct qs_reader *r);
uint32_t qs_reader_u32be(struct qs_reader *r);
uint64_t qs_reader_u64be(struct qs_reader *r);
/* Returns a pointer to the next n bytes (borrowed from the input) and advances, or NULL
 * (setting the sticky error) if fewer than n remain. */
const uint8_t *qs_reader_bytes(struct qs_reader *r, size_t n);
/* Copies n bytes to out; on failure out is zeroed. */
void qs_reader_copy(struct qs_reader *r, void *out, size_t n);
/* Returns 0 if no read failed and nothing is left, else QS_EPROTO. */
int qs_reader_finish(const struct qs_reader *r);

#endif

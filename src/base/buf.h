/* Bounded growable byte buffer. Invariants: len <= cap <= max; data is NULL only when
 * cap == 0. Growth past max fails with QS_E2BIG and leaves the buffer unchanged, so every
 * buffer fed by the network or a file has a hard limit. Not thread-safe. */
#ifndef QS_BASE_BUF_H
#define QS_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct qs_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* Initializes an empty buffer that may grow up to max_bytes. Allocates nothing. */
void qs_buf_init(struct qs_buf *b, size_t max_bytes);
/* Frees the storage (wiping nothing); the buffer is empty afterwards and can be reused. */
void qs_buf_release(struct qs_buf *b);
/* Sets len to 0, keeping the storage. */
void qs_buf_clear(struct qs_buf *b);

/* Ensures room for `extra` more bytes. Errors: QS_E2BIG (past max), QS_ENOMEM. */
int qs_buf_reserve(struct qs_buf *b, size_t extra);
/* Appends n bytes. Errors: QS_E2BIG, QS_ENOMEM; on error the buffer is unchanged. */
int qs_buf_append(struct qs_buf *b, const void *p, size_t n);
/* Appends big-endian integers. Errors as qs_buf_append. */
int qs_buf_put_u8(struct qs_buf *b, uint8_t v);
int qs_buf_put_u16be(struct qs_buf *b, uint16_t v);
int qs_buf_put_u32be(struct qs_buf *b, uint32_t v);
int qs_buf_put_u64be(struct qs_buf *b, uint64_t v);
/* Removes the first n bytes (n <= len is asserted), moving the rest to the front. */
void qs_buf_consume(struct qs_buf *b, size_t n);
/* Returns the remaining room before max. */
size_t qs_buf_room(const struct qs_buf *b);

#endif

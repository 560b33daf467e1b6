/* Bounded growable byte buffer (see buf.h for the invariants). Capacity doubles up to
 * max so appends are amortized O(1). */
#include "base/buf.h"

#include <assert.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

void qs_buf_init(struct qs_buf *b, size_t max_bytes)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max_bytes;
}

void qs_buf_release(struct qs_buf *b)
{
	qs_free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void qs_buf_clear(struct qs_buf *b)
{
	b->len = 0;
}

size_t qs_buf_room(const struct qs_buf *b)
{
	return b->max - b->len;
}

int qs_buf_reserve(struct qs_buf *b, size_t extra)
{
	assert(b->len <= b->cap && b->cap <= b->max);
	if (b->max - b->len < extra)
		return QS_E2BIG;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if (cap > b->max)
		cap = b->max;
	uint8_t *p = qs_realloc(b->data, cap);
	if (p == NULL)
		return QS_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int qs_buf_append(struct qs_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	int rc = qs_buf_reserve(b, n);
	if (rc != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int qs_buf_put_u8(struct qs_buf *b, uint8_t v)
{
	return qs_buf_append(b, &v, 1);
}

int qs_buf_put_u16be(struct qs_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	return qs_buf_append(b, x, sizeof(x));
}

int qs_buf_put_u32be(struct qs_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return qs_buf_append(b, x, sizeof(x));
}

int qs_buf_put_u64be(struct qs_buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (56 - 8 * i));
	return qs_buf_append(b, x, sizeof(x));
}

void qs_buf_consume(struct qs_buf *b, size_t n)
{
	assert(n <= b->len);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

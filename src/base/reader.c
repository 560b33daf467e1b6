/* Bounds-checked cursor. Every length check compares against the known remainder
 * (avail < need), never adds an untrusted length to an offset. */
#include "base/reader.h"

#include <string.h>

#include "base/err.h"

void qs_reader_init(struct qs_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->avail = len;
	r->err = 0;
}

const uint8_t *qs_reader_bytes(struct qs_reader *r, size_t n)
{
	if (r->err != 0 || r->avail < n) {
		r->err = QS_EPROTO;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->avail -= n;
	return p;
}

void qs_reader_copy(struct qs_reader *r, void *out, size_t n)
{
	const uint8_t *p = qs_reader_bytes(r, n);
	if (p == NULL)
		memset(out, 0, n);
	else
		memcpy(out, p, n);
}

static uint64_t reader_be(struct qs_reader *r, size_t n)
{
	const uint8_t *p = qs_reader_bytes(r, n);
	uint64_t v = 0;
	if (p == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

uint8_t qs_reader_u8(struct qs_reader *r)
{
	return (uint8_t)reader_be(r, 1);
}

uint16_t qs_reader_u16be(struct qs_reader *r)
{
	return (uint16_t)reader_be(r, 2);
}

uint32_t qs_reader_u32be(struct qs_reader *r)
{
	return (uint32_t)reader_be(r, 4);
}

uint64_t qs_reader_u64be(struct qs_reader *r)
{
	return reader_be(r, 8);
}

int qs_reader_finish(const struct qs_reader *r)
{
	if (r->err != 0 || r->avail != 0)
		return QS_EPROTO;
	return 0;
}

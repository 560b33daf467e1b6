/* Frame encoder and incremental decoder (frame.h, docs/wire.md). The decoder owns at most one
 * partial MSG (bounded by msg_max) and one name; DATA passes through unbuffered.
 * Invariant: header_len < QS_FRAME_HEADER_LEN means no frame is in progress; header_len ==
 * QS_FRAME_HEADER_LEN means a frame of `type` with frame_len payload bytes is in progress,
 * done of which were consumed. Once err is set the decoder never calls back again. */
#include "core/frame.h"

#include <assert.h>
#include <string.h>

#include "base/err.h"
#include "base/reader.h"

/* An assembly buffer that grew past this is freed after its message, so an idle stream
 * does not keep a multi-megabyte buffer alive. */
#define FRAME_KEEP_BYTES ((size_t)64 << 10)

bool qs_frame_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > QS_FRAME_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

/* The encoder's view of a payload length: QS_EINVAL for what can never be sent. */
static int frame_check_send(enum qs_frame_type type, size_t len)
{
	switch (type) {
	case QS_FRAME_OPEN:
		if (len == 0)
			return QS_EINVAL;
		return len > QS_FRAME_NAME_MAX ? QS_E2BIG : 0;
	case QS_FRAME_MSG: return len > QS_FRAME_MSG_MAX ? QS_E2BIG : 0;
	case QS_FRAME_DATA:
		if (len == 0)
			return QS_EINVAL;
		return len > QS_FRAME_DATA_MAX ? QS_E2BIG : 0;
	}
	return QS_EINVAL;
}

int qs_frame_header_encode(uint8_t out[QS_FRAME_HEADER_LEN], enum qs_frame_type type,
			   size_t payload_len)
{
	int rc = frame_check_send(type, payload_len);
	if (rc != 0)
		return rc;
	uint32_t n = (uint32_t)payload_len;
	out[0] = (uint8_t)type;
	out[1] = (uint8_t)(n >> 24);
	out[2] = (uint8_t)(n >> 16);
	out[3] = (uint8_t)(n >> 8);
	out[4] = (uint8_t)n;
	return 0;
}

int qs_frame_append(struct qs_buf *b, enum qs_frame_type type, const void *payload, size_t len)
{
	uint8_t header[QS_FRAME_HEADER_LEN];
	int rc = qs_frame_header_encode(header, type, len);
	if (rc != 0)
		return rc;
	if (type == QS_FRAME_OPEN && !qs_frame_name_valid(payload, len))
		return QS_EINVAL;
	/* len <= 4 MiB here, so the sum cannot overflow. */
	rc = qs_buf_reserve(b, sizeof(header) + len);
	if (rc != 0)
		return rc;
	memcpy(b->data + b->len, header, sizeof(header));
	if (len > 0)
		memcpy(b->data + b->len + sizeof(header), payload, len);
	b->len += sizeof(header) + len;
	return 0;
}

int qs_frame_append_open(struct qs_buf *b, const char *name)
{
	return qs_frame_append(b, QS_FRAME_OPEN, name, strlen(name));
}

void qs_frame_decoder_init(struct qs_frame_decoder *d, enum qs_frame_role role, size_t msg_max,
			   qs_frame_event_fn cb, void *ctx)
{
	assert(msg_max <= QS_FRAME_MSG_MAX);
	memset(d, 0, sizeof(*d));
	d->cb = cb;
	d->ctx = ctx;
	d->role = role;
	d->msg_max = msg_max;
	qs_buf_init(&d->msg, QS_FRAME_MSG_MAX);
}

void qs_frame_decoder_release(struct qs_frame_decoder *d)
{
	qs_buf_release(&d->msg);
}

void qs_frame_decoder_set_msg_max(struct qs_frame_decoder *d, size_t msg_max)
{
	assert(msg_max <= QS_FRAME_MSG_MAX);
	d->msg_max = msg_max;
}

bool qs_frame_decoder_at_boundary(const struct qs_frame_decoder *d)
{
	return d->err == 0 && d->header_len == 0;
}

int qs_frame_decoder_finish(const struct qs_frame_decoder *d)
{
	if (d->err != 0)
		return d->err;
	if (d->header_len != 0)
		return QS_EPROTO;
	if (d->role == QS_FRAME_ACCEPTOR && !d->opened)
		return QS_EPROTO;
	return 0;
}

/* The decoder's view of a header: QS_EPROTO for malformed, QS_E2BIG for too long. */
static int frame_check_recv(const struct qs_frame_decoder *d, uint8_t type, size_t len)
{
	bool want_open = d->role == QS_FRAME_ACCEPTOR && !d->opened;
	if (type == QS_FRAME_OPEN) {
		if (!want_open || len == 0)
			return QS_EPROTO;
		return len > QS_FRAME_NAME_MAX ? QS_E2BIG : 0;
	}
	if (want_open)
		return QS_EPROTO;
	if (type == QS_FRAME_MSG)
		return len > d->msg_max ? QS_E2BIG : 0;
	if (type == QS_FRAME_DATA) {
		if (len == 0)
			return QS_EPROTO;
		return len > QS_FRAME_DATA_MAX ? QS_E2BIG : 0;
	}
	return QS_EPROTO;
}

static void frame_emit(struct qs_frame_decoder *d, const uint8_t *data, size_t len, size_t offset)
{
	struct qs_frame_event ev = {
		.type = d->type,
		.data = data,
		.len = len,
		.offset = offset,
		.frame_len = d->frame_len,
	};
	int rc = d->cb(d->ctx, &ev);
	if (rc < 0)
		d->err = rc;
}

static void frame_start(struct qs_frame_decoder *d)
{
	struct qs_reader r;
	qs_reader_init(&r, d->header, sizeof(d->header));
	uint8_t type = qs_reader_u8(&r);
	size_t len = qs_reader_u32be(&r);
	assert(qs_reader_finish(&r) == 0);
	int rc = frame_check_recv(d, type, len);
	if (rc != 0) {
		d->err = rc;
		return;
	}
	d->type = (enum qs_frame_type)type;
	d->frame_len = len;
	d->done = 0;
	if (d->type == QS_FRAME_OPEN)
		d->opened = true;
	if (len == 0) {
		/* Only a MSG may be empty: an empty message is a valid protobuf encoding. */
		d->header_len = 0;
		frame_emit(d, (const uint8_t *)"", 0, 0);
	}
}

static size_t frame_take_header(struct qs_frame_decoder *d, const uint8_t *p, size_t len)
{
	size_t n = QS_FRAME_HEADER_LEN - d->header_len;
	if (n > len)
		n = len;
	memcpy(d->header + d->header_len, p, n);
	d->header_len += n;
	if (d->header_len == QS_FRAME_HEADER_LEN)
		frame_start(d);
	return n;
}

/* Consumes n bytes of a MSG payload; emits the message once it is complete. */
static void frame_take_msg(struct qs_frame_decoder *d, const uint8_t *p, size_t n)
{
	if (d->done == 0 && n == d->frame_len) {
		frame_emit(d, p, n, 0);
		return;
	}
	int rc = qs_buf_append(&d->msg, p, n);
	if (rc != 0) {
		d->err = rc;
		return;
	}
	if (d->done + n < d->frame_len)
		return;
	frame_emit(d, d->msg.data, d->msg.len, 0);
	if (d->msg.cap > FRAME_KEEP_BYTES)
		qs_buf_release(&d->msg);
	else
		qs_buf_clear(&d->msg);
}

/* Consumes n bytes of an OPEN payload; validates and emits the name once complete. */
static void frame_take_open(struct qs_frame_decoder *d, const uint8_t *p, size_t n)
{
	memcpy(d->name + d->done, p, n);
	if (d->done + n < d->frame_len)
		return;
	if (!qs_frame_name_valid(d->name, d->frame_len)) {
		d->err = QS_EPROTO;
		return;
	}
	d->name[d->frame_len] = '\0';
	frame_emit(d, (const uint8_t *)d->name, d->frame_len, 0);
}

static size_t frame_take_payload(struct qs_frame_decoder *d, const uint8_t *p, size_t len)
{
	size_t n = d->frame_len - d->done;
	if (n > len)
		n = len;
	switch (d->type) {
	case QS_FRAME_OPEN: frame_take_open(d, p, n); break;
	case QS_FRAME_MSG: frame_take_msg(d, p, n); break;
	case QS_FRAME_DATA: frame_emit(d, p, n, d->done); break;
	}
	d->done += n;
	if (d->done == d->frame_len)
		d->header_len = 0;
	return n;
}

int qs_frame_decoder_feed(struct qs_frame_decoder *d, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (d->err == 0 && len > 0) {
		size_t used;
		if (d->header_len < QS_FRAME_HEADER_LEN)
			used = frame_take_header(d, p, len);
		else
			used = frame_take_payload(d, p, len);
		p += used;
		len -= used;
	}
	return d->err;
}

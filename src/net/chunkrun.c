/* Chunk runs (see chunkrun.h). The receiver never trusts the header: the bytes are hashed
 * and compared before the chunk is reported complete. */
#include "net/chunkrun.h"

#include <string.h>

#include "base/err.h"
#include "core/chunker.h"
#include "core/frame.h"
#include "core/wire.h"
#include "net/txmsg.h"

int qs_chunk_send(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN], const void *data, size_t len,
		  void (*release)(void *arg), void *arg)
{
	if (len == 0 || len > QS_CHUNKER_MAX_BYTES || len > QS_FRAME_DATA_MAX)
		return QS_EINVAL;
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	h.hash.data = (uint8_t *)(uintptr_t)hash;
	h.hash.len = QS_SHA256_LEN;
	h.length = (uint32_t)len;
	h.wire_length = (uint32_t)len;
	h.compression = QUICS__COMPRESSION__COMPRESSION_NONE;
	int rc = qs_tx_send_pb(tx, &h.base);
	if (rc == 0)
		rc = qs_tx_send_data(tx, data, len, release, arg);
	return rc;
}

int qs_chunk_send_missing(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN])
{
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	Quics__Error e = QUICS__ERROR__INIT;
	h.hash.data = (uint8_t *)(uintptr_t)hash;
	h.hash.len = QS_SHA256_LEN;
	e.code = QUICS__ERROR_CODE__ERROR_CHUNK_MISSING;
	e.message = (char *)"chunk not available";
	h.error = &e;
	return qs_tx_send_pb(tx, &h.base);
}

void qs_chunk_rx_init(struct qs_chunk_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	qs_buf_init(&rx->data, QS_CHUNKER_MAX_BYTES);
}

void qs_chunk_rx_release(struct qs_chunk_rx *rx)
{
	qs_buf_release(&rx->data);
}

int qs_chunk_rx_header(struct qs_chunk_rx *rx, const uint8_t *payload, size_t len,
		       const uint8_t *expect)
{
	if (rx->state == QS_CHUNK_RX_DATA)
		return QS_ESTATE;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(&quics__chunk_header__descriptor, payload, len, NULL, &m);
	if (rc != 0)
		return rc == QS_ENOMEM ? rc : QS_EPROTO;
	Quics__ChunkHeader *h = (Quics__ChunkHeader *)m;
	if (h->hash.len != QS_SHA256_LEN ||
	    (expect != NULL && memcmp(h->hash.data, expect, QS_SHA256_LEN) != 0))
		rc = QS_EPROTO;
	else if (h->error != NULL)
		rc = QS_ENOENT;
	else if (h->compression != QUICS__COMPRESSION__COMPRESSION_NONE || h->length == 0 ||
		 h->length > QS_CHUNKER_MAX_BYTES || h->wire_length != h->length)
		rc = QS_EPROTO;
	if (rc == 0) {
		memcpy(rx->hash, h->hash.data, QS_SHA256_LEN);
		rx->length = h->length;
		qs_buf_clear(&rx->data);
		rc = qs_buf_reserve(&rx->data, h->length);
		if (rc == 0)
			rx->state = QS_CHUNK_RX_DATA;
	}
	qs_wire_free(m);
	return rc;
}

int qs_chunk_rx_data(struct qs_chunk_rx *rx, const uint8_t *p, size_t len, bool *done)
{
	*done = false;
	if (rx->state != QS_CHUNK_RX_DATA)
		return QS_ESTATE;
	if (rx->length - rx->data.len < len)
		return QS_EPROTO;
	int rc = qs_buf_append(&rx->data, p, len);
	if (rc != 0)
		return rc;
	if (rx->data.len < rx->length)
		return 0;
	uint8_t d[QS_SHA256_LEN];
	rc = qs_sha256(rx->data.data, rx->data.len, d);
	if (rc != 0)
		return rc;
	if (memcmp(d, rx->hash, QS_SHA256_LEN) != 0)
		return QS_EPROTO;
	rx->state = QS_CHUNK_RX_DONE;
	*done = true;
	return 0;
}

/* Chunk runs (see chunkrun.h). The sender compresses a chunk only when that saves a tenth of
 * it; the receiver never trusts the header: a zstd frame must declare exactly the announced
 * length, is decompressed straight into the chunk buffer (no window copy), and the bytes are
 * hashed and compared before the chunk is reported complete. */
#include "net/chunkrun.h"

#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_stableOutBuffer: decode into our buffer, no window */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "core/chunker.h"
#include "core/frame.h"
#include "core/wire.h"
#include "net/txmsg.h"

/* Level 1: about ten times faster than the default level for a few percent less ratio; the
 * link, not the CPU, should stay the limit. */
#define CHUNK_ZSTD_LEVEL 1
/* A chunk is compressed only when the frame is at most 9/10 of it. */
#define CHUNK_ZSTD_KEEP(len) ((len) - (len) / 10)
/* Incompressible chunks are recognized from three samples (start, middle, end) before the
 * whole is tried: on random data this costs a fraction of a full attempt (bench_zstd). */
#define CHUNK_SAMPLE_BYTES ((size_t)4096)
#define CHUNK_SAMPLES 3
/* Frames may not ask for a window over the largest chunk (2^22 = 4 MiB). */
#define CHUNK_ZSTD_WINDOW_LOG 22
_Static_assert(QS_CHUNKER_MAX_BYTES <= (size_t)1 << CHUNK_ZSTD_WINDOW_LOG, "window log");
_Static_assert(ZSTD_FRAMEHEADERSIZE_MAX <= sizeof(((struct qs_chunk_rx *)0)->zhead), "zhead");

/* True when the samples shrink by a tenth together (chunks too small to sample pass). */
static bool samples_compress(ZSTD_CCtx *cctx, const uint8_t *p, size_t len)
{
	if (len < 4 * CHUNK_SAMPLE_BYTES)
		return true;
	const size_t at[CHUNK_SAMPLES] = {0, len / 2, len - CHUNK_SAMPLE_BYTES};
	uint8_t out[CHUNK_SAMPLE_BYTES];
	size_t total = 0;
	for (size_t i = 0; i < CHUNK_SAMPLES; i++) {
		size_t n = ZSTD_compressCCtx(cctx, out, CHUNK_ZSTD_KEEP(CHUNK_SAMPLE_BYTES),
					     p + at[i], CHUNK_SAMPLE_BYTES, CHUNK_ZSTD_LEVEL);
		total += ZSTD_isError(n) ? CHUNK_SAMPLE_BYTES : n;
	}
	return total <= CHUNK_ZSTD_KEEP(CHUNK_SAMPLES * CHUNK_SAMPLE_BYTES);
}

int qs_chunk_compress(const void *data, size_t len, uint8_t **out, size_t *out_len)
{
	if (len == 0 || len > QS_CHUNKER_MAX_BYTES)
		return QS_EINVAL;
	int rc = 0;
	uint8_t *z = NULL;
	size_t n = 0;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	if (cctx == NULL) {
		rc = QS_ENOMEM;
		goto out;
	}
	if (!samples_compress(cctx, data, len))
		goto out;
	z = qs_malloc(CHUNK_ZSTD_KEEP(len));
	if (z == NULL) {
		rc = QS_ENOMEM;
		goto out;
	}
	/* A frame that does not fit in 9/10 of the chunk fails with dstSize_tooSmall. */
	n = ZSTD_compressCCtx(cctx, z, CHUNK_ZSTD_KEEP(len), data, len, CHUNK_ZSTD_LEVEL);
	if (ZSTD_isError(n) || n == 0) {
		qs_free(z);
		z = NULL;
		goto out;
	}
	uint8_t *fit = qs_realloc(z, n); /* only the frame stays in flight */
	if (fit != NULL)
		z = fit;
out:
	ZSTD_freeCCtx(cctx);
	if (rc == 0) {
		*out = z;
		*out_len = z != NULL ? n : 0;
	}
	return rc;
}

static bool compress_enabled(void)
{
	const char *v = getenv("QUICS_COMPRESS");
	return v == NULL || strcmp(v, "0") != 0;
}

static void zframe_release(void *arg)
{
	qs_free(arg);
}

static int send_header(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN], size_t len,
		       size_t wire_len, Quics__Compression comp)
{
	Quics__ChunkHeader h = QUICS__CHUNK_HEADER__INIT;
	h.hash.data = (uint8_t *)(uintptr_t)hash;
	h.hash.len = QS_SHA256_LEN;
	h.length = (uint32_t)len;
	h.wire_length = (uint32_t)wire_len;
	h.compression = comp;
	return qs_tx_send_pb(tx, &h.base);
}

int qs_chunk_send(struct qs_tx *tx, const uint8_t hash[QS_SHA256_LEN], const void *data, size_t len,
		  void (*release)(void *arg), void *arg)
{
	if (len == 0 || len > QS_CHUNKER_MAX_BYTES || len > QS_FRAME_DATA_MAX)
		return QS_EINVAL;
	uint8_t *z = NULL;
	size_t zlen = 0;
	if (compress_enabled() && qs_chunk_compress(data, len, &z, &zlen) != 0)
		z = NULL; /* out of memory for the attempt: the chunk goes raw */
	if (z == NULL) {
		int rc = send_header(tx, hash, len, len, QUICS__COMPRESSION__COMPRESSION_NONE);
		if (rc == 0)
			rc = qs_tx_send_data(tx, data, len, release, arg);
		return rc;
	}
	int rc = send_header(tx, hash, len, zlen, QUICS__COMPRESSION__COMPRESSION_ZSTD);
	if (rc == 0)
		rc = qs_tx_send_data(tx, z, zlen, zframe_release, z);
	if (rc != 0) {
		qs_free(z);
		return rc;
	}
	if (release != NULL)
		release(arg); /* the frame is what stays in flight */
	return 0;
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

const char *qs_chunk_fault_name(enum qs_chunk_fault f)
{
	switch (f) {
	case QS_CHUNK_FAULT_NONE: return "none";
	case QS_CHUNK_FAULT_HEADER: return "header";
	case QS_CHUNK_FAULT_LENGTH: return "length";
	case QS_CHUNK_FAULT_WIRE_LENGTH: return "wire_length";
	case QS_CHUNK_FAULT_COMPRESSION: return "compression";
	case QS_CHUNK_FAULT_EXCESS: return "excess_data";
	case QS_CHUNK_FAULT_ZSTD_FRAME: return "zstd_frame";
	case QS_CHUNK_FAULT_ZSTD_SIZE: return "zstd_size";
	case QS_CHUNK_FAULT_ZSTD_DATA: return "zstd_data";
	case QS_CHUNK_FAULT_ZSTD_TRAILING: return "zstd_trailing";
	case QS_CHUNK_FAULT_ZSTD_TRUNCATED: return "zstd_truncated";
	case QS_CHUNK_FAULT_HASH: return "hash";
	}
	return "unknown";
}

/* Records why a run is refused and returns QS_EPROTO. */
static int fault(struct qs_chunk_rx *rx, enum qs_chunk_fault f)
{
	rx->fault = f;
	qs_debug("chunkrun", "refused fault=%s", qs_chunk_fault_name(f));
	return QS_EPROTO;
}

void qs_chunk_rx_init(struct qs_chunk_rx *rx)
{
	memset(rx, 0, sizeof(*rx));
	qs_buf_init(&rx->data, QS_CHUNKER_MAX_BYTES);
}

void qs_chunk_rx_release(struct qs_chunk_rx *rx)
{
	ZSTD_freeDCtx(rx->dctx);
	rx->dctx = NULL;
	qs_buf_release(&rx->data);
}

/* Readies the decompression context for a new frame. Errors: QS_ENOMEM. */
static int zstd_begin(struct qs_chunk_rx *rx)
{
	if (rx->dctx == NULL) {
		ZSTD_DCtx *d = ZSTD_createDCtx();
		if (d == NULL)
			return QS_ENOMEM;
		/* Without the stable output buffer, zstd would keep its own window (up to 4 MiB
		 * more per receiver); the bound on the window holds either way. */
		if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax,
							CHUNK_ZSTD_WINDOW_LOG))) {
			ZSTD_freeDCtx(d);
			return QS_ENOMEM;
		}
		(void)ZSTD_DCtx_setParameter(d, ZSTD_d_stableOutBuffer, 1);
		rx->dctx = d;
	}
	if (ZSTD_isError(ZSTD_DCtx_reset(rx->dctx, ZSTD_reset_session_only)))
		return QS_ENOMEM;
	rx->zstd_started = false;
	rx->zstd_ended = false;
	rx->zhead_len = 0;
	return 0;
}

/* Checks the fields of a header that decoded; 0 or a fault. */
static enum qs_chunk_fault header_fault(const Quics__ChunkHeader *h)
{
	if (h->length == 0 || h->length > QS_CHUNKER_MAX_BYTES)
		return QS_CHUNK_FAULT_LENGTH;
	if (h->compression == QUICS__COMPRESSION__COMPRESSION_NONE)
		return h->wire_length == h->length ? QS_CHUNK_FAULT_NONE
						   : QS_CHUNK_FAULT_WIRE_LENGTH;
	if (h->compression == QUICS__COMPRESSION__COMPRESSION_ZSTD)
		return h->wire_length != 0 && h->wire_length <= h->length
			       ? QS_CHUNK_FAULT_NONE
			       : QS_CHUNK_FAULT_WIRE_LENGTH;
	return QS_CHUNK_FAULT_COMPRESSION;
}

int qs_chunk_rx_header(struct qs_chunk_rx *rx, const uint8_t *payload, size_t len,
		       const uint8_t *expect)
{
	if (rx->state == QS_CHUNK_RX_DATA)
		return QS_ESTATE;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(&quics__chunk_header__descriptor, payload, len, NULL, &m);
	if (rc != 0)
		return rc == QS_ENOMEM ? rc : fault(rx, QS_CHUNK_FAULT_HEADER);
	Quics__ChunkHeader *h = (Quics__ChunkHeader *)m;
	enum qs_chunk_fault f = QS_CHUNK_FAULT_NONE;
	if (h->hash.len != QS_SHA256_LEN ||
	    (expect != NULL && memcmp(h->hash.data, expect, QS_SHA256_LEN) != 0))
		f = QS_CHUNK_FAULT_HEADER;
	else if (h->error != NULL)
		rc = QS_ENOENT;
	else
		f = header_fault(h);
	if (f != QS_CHUNK_FAULT_NONE)
		rc = fault(rx, f);
	if (rc == 0) {
		memcpy(rx->hash, h->hash.data, QS_SHA256_LEN);
		rx->length = h->length;
		rx->wire_length = h->wire_length;
		rx->wire_got = 0;
		rx->zstd = h->compression == QUICS__COMPRESSION__COMPRESSION_ZSTD;
		rx->fault = QS_CHUNK_FAULT_NONE;
		qs_buf_clear(&rx->data);
		rc = qs_buf_reserve(&rx->data, h->length);
		if (rc == 0 && rx->zstd)
			rc = zstd_begin(rx);
		if (rc == 0)
			rx->state = QS_CHUNK_RX_DATA;
	}
	qs_wire_free(m);
	return rc;
}

/* Decompresses p into rx->data; the frame must end exactly at the last byte given. */
static int zstd_feed(struct qs_chunk_rx *rx, const uint8_t *p, size_t len)
{
	ZSTD_inBuffer in = {p, len, 0};
	ZSTD_outBuffer out = {rx->data.data, rx->length, rx->data.len};
	while (in.pos < in.size) {
		if (rx->zstd_ended)
			return fault(rx, QS_CHUNK_FAULT_ZSTD_TRAILING);
		size_t in_was = in.pos, out_was = out.pos;
		size_t r = ZSTD_decompressStream(rx->dctx, &out, &in);
		rx->data.len = out.pos;
		if (ZSTD_isError(r))
			return fault(rx, QS_CHUNK_FAULT_ZSTD_DATA);
		if (r == 0)
			rx->zstd_ended = true;
		else if (in.pos == in_was && out.pos == out_was)
			return fault(rx, QS_CHUNK_FAULT_ZSTD_SIZE); /* wants room past length */
	}
	return 0;
}

/* Takes compressed bytes: the frame header is collected and checked first (it must declare
 * exactly rx->length), then everything goes to the decoder. */
static int zstd_take(struct qs_chunk_rx *rx, const uint8_t *p, size_t len)
{
	if (!rx->zstd_started) {
		size_t n = sizeof(rx->zhead) - rx->zhead_len;
		if (n > len)
			n = len;
		if (n > 0)
			memcpy(rx->zhead + rx->zhead_len, p, n);
		rx->zhead_len += n;
		p += n;
		len -= n;
		if (rx->zhead_len < sizeof(rx->zhead) && rx->wire_got < rx->wire_length)
			return 0;
		unsigned long long size = ZSTD_getFrameContentSize(rx->zhead, rx->zhead_len);
		if (size == ZSTD_CONTENTSIZE_ERROR)
			return fault(rx, QS_CHUNK_FAULT_ZSTD_FRAME);
		if (size != rx->length) /* also ZSTD_CONTENTSIZE_UNKNOWN, and 0 (skippable) */
			return fault(rx, QS_CHUNK_FAULT_ZSTD_SIZE);
		rx->zstd_started = true;
		int rc = zstd_feed(rx, rx->zhead, rx->zhead_len);
		if (rc != 0)
			return rc;
	}
	return len > 0 ? zstd_feed(rx, p, len) : 0;
}

int qs_chunk_rx_data(struct qs_chunk_rx *rx, const uint8_t *p, size_t len, bool *done)
{
	*done = false;
	if (rx->state != QS_CHUNK_RX_DATA)
		return QS_ESTATE;
	if (rx->wire_length - rx->wire_got < len)
		return fault(rx, QS_CHUNK_FAULT_EXCESS);
	rx->wire_got += (uint32_t)len;
	int rc = rx->zstd ? zstd_take(rx, p, len) : qs_buf_append(&rx->data, p, len);
	if (rc != 0 || rx->wire_got < rx->wire_length)
		return rc;
	if (rx->zstd && !rx->zstd_ended)
		return fault(rx, QS_CHUNK_FAULT_ZSTD_TRUNCATED);
	if (rx->data.len != rx->length)
		return fault(rx, QS_CHUNK_FAULT_ZSTD_SIZE);
	uint8_t d[QS_SHA256_LEN];
	rc = qs_sha256(rx->data.data, rx->data.len, d);
	if (rc != 0)
		return rc;
	if (memcmp(d, rx->hash, QS_SHA256_LEN) != 0)
		return fault(rx, QS_CHUNK_FAULT_HASH);
	rx->state = QS_CHUNK_RX_DONE;
	*done = true;
	return 0;
}

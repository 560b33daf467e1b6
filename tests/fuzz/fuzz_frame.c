/* libFuzzer harness for the frame decoder and the wire codec. The input is one direction of
 * a stream (an opener's side when it starts with an OPEN frame, else a reply side). It is
 * decoded three times: whole, one byte at a time, and in pieces whose sizes derive from the
 * input; all three must give the same events and result. Each MSG is unpacked with the
 * transaction's descriptor and a few others; what unpacks must pack and unpack again. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/err.h"
#include "core/frame.h"
#include "core/wire.h"

struct fuzz_pass {
	uint64_t digest;    /* FNV-1a over the normalized events */
	size_t data_offset; /* next expected DATA offset */
	const struct qs_wire_tx *tx;
	bool unpack; /* unpack MSGs (first pass only: the others compare digests) */
};

static void fuzz_check(bool ok)
{
	if (!ok)
		abort();
}

static void fuzz_mix(uint64_t *h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*h ^= p[i];
		*h *= 0x100000001b3u;
	}
}

static void fuzz_mix_tag(uint64_t *h, uint8_t tag, size_t len)
{
	uint8_t b[9] = {tag};
	for (int i = 0; i < 8; i++)
		b[1 + i] = (uint8_t)((uint64_t)len >> (8 * i));
	fuzz_mix(h, b, sizeof(b));
}

/* Unpacks payload as desc; a message that passes must survive a pack/unpack round trip. */
static void fuzz_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n)
{
	ProtobufCMessage *m = NULL;
	int rc = qs_wire_unpack(desc, p, n, NULL, &m);
	fuzz_check(rc == 0 || rc == QS_EPROTO || rc == QS_E2BIG);
	if (rc != 0)
		return;
	(void)qs_wire_reply_error(m);
	struct qs_buf b;
	qs_buf_init(&b, QS_FRAME_HEADER_LEN + QS_FRAME_MSG_MAX);
	fuzz_check(qs_wire_pack(&b, m) == 0);
	ProtobufCMessage *again = NULL;
	rc = qs_wire_unpack(desc, b.data + QS_FRAME_HEADER_LEN, b.len - QS_FRAME_HEADER_LEN, NULL,
			    &again);
	fuzz_check(rc == 0);
	qs_wire_free(again);
	qs_buf_release(&b);
	qs_wire_free(m);
}

static void fuzz_unpack_all(const struct fuzz_pass *fp, const uint8_t *p, size_t n)
{
	size_t count;
	const struct qs_wire_tx *txs = qs_wire_tx_list(&count);
	if (fp->tx != NULL)
		fuzz_unpack(fp->tx->request, p, n);
	fuzz_unpack(&quics__chunk_header__descriptor, p, n);
	/* A few more descriptors, chosen by the payload so the fuzzer can steer. */
	uint64_t h = 0xcbf29ce484222325u;
	fuzz_mix(&h, p, n < 16 ? n : 16);
	for (int i = 0; i < 3; i++) {
		const struct qs_wire_tx *t = &txs[(h >> (8 * i)) % count];
		fuzz_unpack((h >> (8 * i + 4)) & 1 ? t->reply : t->request, p, n);
	}
}

static int fuzz_event(void *ctx, const struct qs_frame_event *ev)
{
	struct fuzz_pass *fp = ctx;
	fuzz_check(ev->data != NULL);
	switch (ev->type) {
	case QS_FRAME_OPEN:
		fuzz_check(ev->len >= 1 && ev->len <= QS_FRAME_NAME_MAX && ev->data[ev->len] == 0);
		fp->tx = qs_wire_tx_find((const char *)ev->data, ev->len);
		fuzz_mix_tag(&fp->digest, 'O', ev->len);
		fuzz_mix(&fp->digest, ev->data, ev->len);
		break;
	case QS_FRAME_MSG:
		fuzz_check(ev->len == ev->frame_len && ev->len <= QS_FRAME_MSG_MAX);
		fuzz_mix_tag(&fp->digest, 'M', ev->len);
		fuzz_mix(&fp->digest, ev->data, ev->len);
		if (fp->unpack)
			fuzz_unpack_all(fp, ev->data, ev->len);
		break;
	case QS_FRAME_DATA:
		fuzz_check(ev->offset == fp->data_offset && ev->len > 0 &&
			   ev->len <= ev->frame_len - ev->offset);
		if (ev->offset == 0)
			fuzz_mix_tag(&fp->digest, 'D', ev->frame_len);
		fuzz_mix(&fp->digest, ev->data, ev->len);
		fp->data_offset = ev->offset + ev->len == ev->frame_len ? 0 : ev->offset + ev->len;
		break;
	}
	return 0;
}

struct fuzz_result {
	uint64_t digest;
	int rc;
	int finish;
	bool boundary;
};

/* Decodes data fed in pieces: piece == 0 means pseudo-random sizes seeded by the input. */
static struct fuzz_result fuzz_decode(const uint8_t *data, size_t size, size_t piece, bool unpack)
{
	struct fuzz_pass fp = {.digest = 0xcbf29ce484222325u, .unpack = unpack};
	struct qs_frame_decoder d;
	enum qs_frame_role role =
		size > 0 && data[0] == QS_FRAME_OPEN ? QS_FRAME_ACCEPTOR : QS_FRAME_INITIATOR;
	qs_frame_decoder_init(&d, role, QS_FRAME_MSG_MAX, fuzz_event, &fp);
	uint64_t rng = 0x9e3779b97f4a7c15u;
	fuzz_mix(&rng, data, size);
	struct fuzz_result r = {0};
	size_t at = 0;
	do {
		size_t n = piece;
		if (n == 0) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			n = 1 + (size_t)((rng >> 8) % ((uint64_t)1 << (rng % 12)));
		}
		if (n > size - at)
			n = size - at;
		r.rc = qs_frame_decoder_feed(&d, data + at, n);
		at += n;
	} while (at < size && r.rc == 0);
	r.digest = fp.digest;
	r.boundary = qs_frame_decoder_at_boundary(&d);
	r.finish = qs_frame_decoder_finish(&d);
	fuzz_check(r.rc == 0 || r.rc == QS_EPROTO || r.rc == QS_E2BIG);
	/* A failed decoder is never at a boundary and finish reports its error. */
	fuzz_check(r.rc == 0 || (!r.boundary && r.finish == r.rc));
	fuzz_check(r.finish == 0 || !r.boundary || role == QS_FRAME_ACCEPTOR);
	qs_frame_decoder_release(&d);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_result whole = fuzz_decode(data, size, size > 0 ? size : 1, true);
	struct fuzz_result bytes = fuzz_decode(data, size, 1, false);
	struct fuzz_result pieces = fuzz_decode(data, size, 0, false);
	fuzz_check(whole.digest == bytes.digest && whole.digest == pieces.digest);
	fuzz_check(whole.rc == bytes.rc && whole.rc == pieces.rc);
	fuzz_check(whole.finish == bytes.finish && whole.finish == pieces.finish);
	return 0;
}

/* Tests for stream framing: encoder/decoder round trip, identical events for every split of
 * the input, every limit and limit+1, protocol violations, truncation, sticky errors, and
 * constant memory for long DATA runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/err.h"
#include "core/frame.h"

/* Records events as a normalized transcript: DATA pieces are joined per frame, so any two
 * splits of the same stream must produce byte-identical transcripts. */
struct rec {
	struct qs_buf log;
	size_t data_offset; /* next expected DATA offset within the current frame */
	int events;
	int fail_at;            /* return QS_ECANCELED at this event number (1-based), 0 = never */
	size_t msg_max_on_open; /* if non-zero, set the decoder's MSG limit on OPEN */
	struct qs_frame_decoder *dec;
	const uint8_t *in; /* the piece being fed, to tell zero-copy MSGs from assembled ones */
	size_t in_len;
	int msgs_zero_copy;
	int msgs_assembled;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	qs_buf_init(&r->log, (size_t)64 << 20);
}

static void rec_put(struct rec *r, char tag, size_t len, const uint8_t *p, size_t n)
{
	assert_int_equal(qs_buf_put_u8(&r->log, (uint8_t)tag), 0);
	assert_int_equal(qs_buf_put_u32be(&r->log, (uint32_t)len), 0);
	assert_int_equal(qs_buf_append(&r->log, p, n), 0);
}

static int rec_event(void *ctx, const struct qs_frame_event *ev)
{
	struct rec *r = ctx;
	r->events++;
	if (r->fail_at != 0 && r->events == r->fail_at)
		return QS_ECANCELED;
	assert_non_null(ev->data);
	switch (ev->type) {
	case QS_FRAME_OPEN:
		assert_int_equal(strlen((const char *)ev->data), ev->len);
		assert_int_equal(ev->frame_len, ev->len);
		rec_put(r, 'O', ev->len, ev->data, ev->len);
		if (r->msg_max_on_open != 0)
			qs_frame_decoder_set_msg_max(r->dec, r->msg_max_on_open);
		break;
	case QS_FRAME_MSG:
		assert_int_equal(ev->frame_len, ev->len);
		if (ev->len > 0 && ev->data >= r->in && ev->data < r->in + r->in_len)
			r->msgs_zero_copy++;
		else if (ev->len > 0)
			r->msgs_assembled++;
		rec_put(r, 'M', ev->len, ev->data, ev->len);
		break;
	case QS_FRAME_DATA:
		assert_int_equal(ev->offset, r->data_offset);
		assert_true(ev->len > 0 && ev->len <= ev->frame_len - ev->offset);
		if (ev->offset == 0)
			rec_put(r, 'D', ev->frame_len, NULL, 0);
		assert_int_equal(qs_buf_append(&r->log, ev->data, ev->len), 0);
		r->data_offset = ev->offset + ev->len == ev->frame_len ? 0 : ev->offset + ev->len;
		break;
	}
	return 0;
}

static int feed(struct qs_frame_decoder *d, struct rec *r, const uint8_t *p, size_t n)
{
	r->in = p;
	r->in_len = n;
	return qs_frame_decoder_feed(d, p, n);
}

static void dec_init(struct qs_frame_decoder *d, struct rec *r, enum qs_frame_role role,
		     size_t msg_max)
{
	rec_init(r);
	r->dec = d;
	qs_frame_decoder_init(d, role, msg_max, rec_event, r);
}

static void dec_release(struct qs_frame_decoder *d, struct rec *r)
{
	qs_frame_decoder_release(d);
	qs_buf_release(&r->log);
}

/* Where the frames of build_stream's stream end. */
static const size_t stream_ends[] = {16, 26, 31, 73, 79, 124, 429};

static bool is_stream_end(size_t at)
{
	for (size_t i = 0; i < sizeof(stream_ends) / sizeof(stream_ends[0]); i++) {
		if (stream_ends[i] == at)
			return true;
	}
	return false;
}

/* A request stream using every frame type, including an empty MSG and multi-frame DATA. */
static void build_stream(struct qs_buf *s)
{
	qs_buf_init(s, 1 << 20);
	uint8_t data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(qs_frame_append_open(s, "PLEASE_SYNC"), 0);
	assert_int_equal(qs_frame_append(s, QS_FRAME_MSG,
					 "\x0a\x03"
					 "abc",
					 5),
			 0);
	assert_int_equal(qs_frame_append(s, QS_FRAME_MSG, NULL, 0), 0);
	assert_int_equal(qs_frame_append(s, QS_FRAME_DATA, data, 37), 0);
	assert_int_equal(qs_frame_append(s, QS_FRAME_DATA, data + 37, 1), 0);
	assert_int_equal(qs_frame_append(s, QS_FRAME_MSG, data, 40), 0);
	assert_int_equal(qs_frame_append(s, QS_FRAME_DATA, data, sizeof(data)), 0);
}

static void test_round_trip_all_types(void **state)
{
	(void)state;
	struct qs_buf s;
	build_stream(&s);
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
	assert_int_equal(feed(&d, &r, s.data, s.len), 0);
	assert_true(qs_frame_decoder_at_boundary(&d));
	assert_int_equal(qs_frame_decoder_finish(&d), 0);
	assert_int_equal(r.events, 7);

	struct qs_buf want;
	qs_buf_init(&want, 1 << 20);
	uint8_t data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	struct rec w = {.log = want};
	rec_put(&w, 'O', 11, (const uint8_t *)"PLEASE_SYNC", 11);
	rec_put(&w, 'M', 5,
		(const uint8_t *)"\x0a\x03"
				 "abc",
		5);
	rec_put(&w, 'M', 0, NULL, 0);
	rec_put(&w, 'D', 37, data, 37);
	rec_put(&w, 'D', 1, data + 37, 1);
	rec_put(&w, 'M', 40, data, 40);
	rec_put(&w, 'D', sizeof(data), data, sizeof(data));
	assert_int_equal(r.log.len, w.log.len);
	assert_memory_equal(r.log.data, w.log.data, w.log.len);
	/* Whole frames in one piece are passed without a copy. */
	assert_int_equal(r.msgs_zero_copy, 2);
	assert_int_equal(r.msgs_assembled, 0);
	assert_int_equal(d.msg.cap, 0);
	qs_buf_release(&w.log);
	dec_release(&d, &r);
	qs_buf_release(&s);
}

static void decode_pieces(const struct qs_buf *s, const size_t *cuts, size_t ncuts,
			  const struct qs_buf *want)
{
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
	size_t at = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : s->len;
		assert_int_equal(feed(&d, &r, s->data + at, end - at), 0);
		at = end;
	}
	assert_int_equal(qs_frame_decoder_finish(&d), 0);
	assert_int_equal(r.log.len, want->len);
	assert_memory_equal(r.log.data, want->data, want->len);
	dec_release(&d, &r);
}

static void test_every_split_gives_same_events(void **state)
{
	(void)state;
	struct qs_buf s;
	build_stream(&s);
	assert_int_equal(s.len, stream_ends[sizeof(stream_ends) / sizeof(stream_ends[0]) - 1]);
	struct qs_frame_decoder d;
	struct rec ref;
	dec_init(&d, &ref, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
	assert_int_equal(feed(&d, &ref, s.data, s.len), 0);
	qs_frame_decoder_release(&d);

	for (size_t i = 0; i <= s.len; i++) {
		decode_pieces(&s, &i, 1, &ref.log);
		for (size_t j = i; j <= s.len; j += 3) {
			size_t cuts[2] = {i, j};
			decode_pieces(&s, cuts, 2, &ref.log);
		}
	}

	/* One byte at a time: every MSG is assembled, none is passed from the input. */
	struct rec r;
	dec_init(&d, &r, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
	for (size_t i = 0; i < s.len; i++) {
		assert_int_equal(feed(&d, &r, s.data + i, 1), 0);
		assert_int_equal(qs_frame_decoder_at_boundary(&d), is_stream_end(i + 1));
	}
	assert_int_equal(r.log.len, ref.log.len);
	assert_memory_equal(r.log.data, ref.log.data, ref.log.len);
	assert_int_equal(r.msgs_zero_copy, 0);
	assert_int_equal(r.msgs_assembled, 2);
	dec_release(&d, &r);
	qs_buf_release(&ref.log);
	qs_buf_release(&s);
}

/* Feeds a header and payload_len bytes of payload; returns the feed's result. */
static int feed_frame(enum qs_frame_role role, size_t msg_max, uint8_t type, size_t payload_len,
		      const char *name)
{
	uint8_t header[QS_FRAME_HEADER_LEN] = {type, (uint8_t)(payload_len >> 24),
					       (uint8_t)(payload_len >> 16),
					       (uint8_t)(payload_len >> 8), (uint8_t)payload_len};
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, role, msg_max);
	int rc = feed(&d, &r, header, sizeof(header));
	if (rc == 0 && payload_len > 0) {
		uint8_t *payload = qs_calloc(payload_len, 1);
		assert_non_null(payload);
		if (name != NULL)
			memcpy(payload, name, payload_len);
		rc = feed(&d, &r, payload, payload_len);
		qs_free(payload);
	}
	if (rc == 0) {
		assert_int_equal(r.events, 1);
		assert_true(qs_frame_decoder_at_boundary(&d));
	} else {
		assert_int_equal(r.events, 0);
		assert_false(qs_frame_decoder_at_boundary(&d));
		assert_int_equal(qs_frame_decoder_finish(&d), rc);
	}
	dec_release(&d, &r);
	return rc;
}

static void test_decoder_limits(void **state)
{
	(void)state;
	char name[QS_FRAME_NAME_MAX + 2];
	memset(name, 'A', sizeof(name));
	const enum qs_frame_role acc = QS_FRAME_ACCEPTOR, ini = QS_FRAME_INITIATOR;
	assert_int_equal(feed_frame(acc, QS_FRAME_MSG_MAX, QS_FRAME_OPEN, 1, name), 0);
	assert_int_equal(feed_frame(acc, QS_FRAME_MSG_MAX, QS_FRAME_OPEN, 64, name), 0);
	assert_int_equal(feed_frame(acc, QS_FRAME_MSG_MAX, QS_FRAME_OPEN, 65, name), QS_E2BIG);
	assert_int_equal(feed_frame(acc, QS_FRAME_MSG_MAX, QS_FRAME_OPEN, 0, NULL), QS_EPROTO);
	assert_int_equal(feed_frame(ini, QS_FRAME_MSG_MAX, QS_FRAME_MSG, 0, NULL), 0);
	assert_int_equal(feed_frame(ini, QS_FRAME_MSG_MAX, QS_FRAME_MSG, QS_FRAME_MSG_MAX, NULL),
			 0);
	assert_int_equal(
		feed_frame(ini, QS_FRAME_MSG_MAX, QS_FRAME_MSG, QS_FRAME_MSG_MAX + 1, NULL),
		QS_E2BIG);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_MSG, 100, NULL), 0);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_MSG, 101, NULL), QS_E2BIG);
	assert_int_equal(feed_frame(ini, 0, QS_FRAME_MSG, 0, NULL), 0);
	assert_int_equal(feed_frame(ini, 0, QS_FRAME_MSG, 1, NULL), QS_E2BIG);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_DATA, 1, NULL), 0);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_DATA, QS_FRAME_DATA_MAX, NULL), 0);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_DATA, QS_FRAME_DATA_MAX + 1, NULL),
			 QS_E2BIG);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_DATA, 0, NULL), QS_EPROTO);
	assert_int_equal(feed_frame(ini, 100, QS_FRAME_DATA, 0xffffffffu, NULL), QS_E2BIG);
}

static void test_encoder_limits(void **state)
{
	(void)state;
	uint8_t h[QS_FRAME_HEADER_LEN];
	memset(h, 0xee, sizeof(h));
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_DATA, QS_FRAME_DATA_MAX), 0);
	assert_memory_equal(h, "\x03\x00\x40\x00\x00", 5);
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_MSG, 0x010203), 0);
	assert_memory_equal(h, "\x02\x00\x01\x02\x03", 5);
	memset(h, 0xee, sizeof(h));
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_DATA, QS_FRAME_DATA_MAX + 1), QS_E2BIG);
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_MSG, QS_FRAME_MSG_MAX + 1), QS_E2BIG);
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_OPEN, QS_FRAME_NAME_MAX + 1), QS_E2BIG);
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_DATA, 0), QS_EINVAL);
	assert_int_equal(qs_frame_header_encode(h, QS_FRAME_OPEN, 0), QS_EINVAL);
	assert_int_equal(qs_frame_header_encode(h, (enum qs_frame_type)4, 1), QS_EINVAL);
	/* Failures leave the output untouched. */
	assert_memory_equal(h, "\xee\xee\xee\xee\xee", 5);

	struct qs_buf b;
	qs_buf_init(&b, 1 << 10);
	assert_int_equal(qs_frame_append_open(&b, "AUTH"), 0);
	assert_int_equal(b.len, 9);
	assert_int_equal(qs_frame_append_open(&b, "auth"), QS_EINVAL);
	assert_int_equal(qs_frame_append_open(&b, ""), QS_EINVAL);
	assert_int_equal(qs_frame_append_open(&b, "A-B"), QS_EINVAL);
	char name[QS_FRAME_NAME_MAX + 2];
	memset(name, 'Z', sizeof(name));
	name[QS_FRAME_NAME_MAX] = '\0';
	assert_int_equal(qs_frame_append_open(&b, name), 0);
	name[QS_FRAME_NAME_MAX] = 'Z';
	name[QS_FRAME_NAME_MAX + 1] = '\0';
	assert_int_equal(qs_frame_append_open(&b, name), QS_E2BIG);
	assert_int_equal(b.len, 9 + 5 + QS_FRAME_NAME_MAX);
	/* A frame that does not fit the buffer's maximum is refused whole. */
	size_t before = b.len;
	uint8_t big[1 << 10] = {0};
	assert_int_equal(qs_frame_append(&b, QS_FRAME_DATA, big, sizeof(big)), QS_E2BIG);
	assert_int_equal(b.len, before);
	qs_buf_release(&b);

	qs_buf_init(&b, QS_FRAME_MSG_MAX + 2 * QS_FRAME_HEADER_LEN);
	uint8_t *payload = qs_calloc(QS_FRAME_MSG_MAX + 1, 1);
	assert_non_null(payload);
	assert_int_equal(qs_frame_append(&b, QS_FRAME_MSG, payload, QS_FRAME_MSG_MAX + 1),
			 QS_E2BIG);
	assert_int_equal(qs_frame_append(&b, QS_FRAME_MSG, payload, QS_FRAME_MSG_MAX), 0);
	assert_int_equal(b.len, QS_FRAME_HEADER_LEN + QS_FRAME_MSG_MAX);
	qs_free(payload);
	qs_buf_release(&b);
}

/* Feeds a whole byte string in one piece and returns the feed's result and event count. */
static int feed_bytes(enum qs_frame_role role, const char *bytes, size_t len, int *events)
{
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, role, QS_FRAME_MSG_MAX);
	int rc = feed(&d, &r, (const uint8_t *)bytes, len);
	*events = r.events;
	dec_release(&d, &r);
	return rc;
}

static void test_protocol_violations(void **state)
{
	(void)state;
	const enum qs_frame_role acc = QS_FRAME_ACCEPTOR, ini = QS_FRAME_INITIATOR;
	int ev;
	/* Unknown types, with a valid OPEN first so only the type is wrong. */
	assert_int_equal(feed_bytes(acc, "\x01\0\0\0\x01X\x00\0\0\0\0", 11, &ev), QS_EPROTO);
	assert_int_equal(ev, 1);
	assert_int_equal(feed_bytes(acc, "\x01\0\0\0\x01X\x04\0\0\0\x01y", 12, &ev), QS_EPROTO);
	assert_int_equal(feed_bytes(ini, "\xff\0\0\0\0", 5, &ev), QS_EPROTO);
	assert_int_equal(ev, 0);
	/* OPEN must come first on an acceptor's stream, and only once. */
	assert_int_equal(feed_bytes(acc, "\x02\0\0\0\0", 5, &ev), QS_EPROTO);
	assert_int_equal(feed_bytes(acc, "\x03\0\0\0\x01z", 6, &ev), QS_EPROTO);
	assert_int_equal(feed_bytes(acc, "\x01\0\0\0\x01X\x01\0\0\0\x01Y", 12, &ev), QS_EPROTO);
	assert_int_equal(ev, 1);
	assert_int_equal(feed_bytes(acc, "\x01\0\0\0\x01X\x02\0\0\0\0\x01\0\0\0\x01Y", 17, &ev),
			 QS_EPROTO);
	assert_int_equal(ev, 2);
	/* An initiator reads replies, which never carry OPEN. */
	assert_int_equal(feed_bytes(ini, "\x01\0\0\0\x01X", 6, &ev), QS_EPROTO);
	assert_int_equal(ev, 0);
	/* Names outside [A-Z0-9_]. */
	assert_int_equal(feed_bytes(acc,
				    "\x01\0\0\0\x03"
				    "A_9",
				    8, &ev),
			 0);
	assert_int_equal(ev, 1);
	assert_int_equal(feed_bytes(acc,
				    "\x01\0\0\0\x03"
				    "AbC",
				    8, &ev),
			 QS_EPROTO);
	assert_int_equal(feed_bytes(acc,
				    "\x01\0\0\0\x03"
				    "A C",
				    8, &ev),
			 QS_EPROTO);
	assert_int_equal(feed_bytes(acc,
				    "\x01\0\0\0\x03"
				    "A\0C",
				    8, &ev),
			 QS_EPROTO);
	assert_int_equal(feed_bytes(acc,
				    "\x01\0\0\0\x02"
				    "A\xc3",
				    7, &ev),
			 QS_EPROTO);
	assert_int_equal(ev, 0);
}

static void test_errors_are_sticky(void **state)
{
	(void)state;
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, QS_FRAME_INITIATOR, QS_FRAME_MSG_MAX);
	const uint8_t good[] = {2, 0, 0, 0, 1, 'x'};
	assert_int_equal(feed(&d, &r, (const uint8_t *)"\x09\0\0\0\0", 5), QS_EPROTO);
	assert_int_equal(feed(&d, &r, good, sizeof(good)), QS_EPROTO);
	assert_int_equal(feed(&d, &r, good, 0), QS_EPROTO);
	assert_int_equal(r.events, 0);
	assert_false(qs_frame_decoder_at_boundary(&d));
	assert_int_equal(qs_frame_decoder_finish(&d), QS_EPROTO);
	dec_release(&d, &r);

	/* A callback's error stops the decoder at once, and the feed returns it. */
	struct qs_buf s;
	build_stream(&s);
	dec_init(&d, &r, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
	r.fail_at = 2;
	assert_int_equal(feed(&d, &r, s.data, s.len), QS_ECANCELED);
	assert_int_equal(r.events, 2);
	assert_int_equal(feed(&d, &r, s.data, s.len), QS_ECANCELED);
	assert_int_equal(r.events, 2);
	assert_int_equal(qs_frame_decoder_finish(&d), QS_ECANCELED);
	dec_release(&d, &r);
	qs_buf_release(&s);
}

static void test_truncated_stream(void **state)
{
	(void)state;
	struct qs_buf s;
	build_stream(&s);
	assert_int_equal(s.len, 429);
	for (size_t cut = 0; cut <= s.len; cut++) {
		struct qs_frame_decoder d;
		struct rec r;
		dec_init(&d, &r, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
		assert_int_equal(feed(&d, &r, s.data, cut), 0);
		bool boundary = is_stream_end(cut);
		assert_int_equal(qs_frame_decoder_at_boundary(&d), boundary || cut == 0);
		/* An acceptor's stream that ends before its OPEN is not a transaction. */
		assert_int_equal(qs_frame_decoder_finish(&d), boundary ? 0 : QS_EPROTO);
		dec_release(&d, &r);
	}
	qs_buf_release(&s);
}

static void test_msg_max_set_on_open(void **state)
{
	(void)state;
	struct qs_buf s;
	qs_buf_init(&s, 1 << 10);
	uint8_t payload[20] = {0};
	assert_int_equal(qs_frame_append_open(&s, "REGISTER_CLIENT"), 0);
	assert_int_equal(qs_frame_append(&s, QS_FRAME_MSG, payload, 10), 0);
	assert_int_equal(qs_frame_append(&s, QS_FRAME_MSG, payload, 11), 0);
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, QS_FRAME_ACCEPTOR, QS_FRAME_MSG_MAX);
	r.msg_max_on_open = 10;
	assert_int_equal(feed(&d, &r, s.data, s.len), QS_E2BIG);
	assert_int_equal(r.events, 2);
	dec_release(&d, &r);
	qs_buf_release(&s);
}

static void test_assembly_buffer_is_bounded_and_freed(void **state)
{
	(void)state;
	const size_t big = (size_t)1 << 20;
	uint8_t *payload = qs_malloc(big);
	assert_non_null(payload);
	for (size_t i = 0; i < big; i++)
		payload[i] = (uint8_t)(i % 251);
	struct qs_buf s;
	qs_buf_init(&s, 2 * big);
	assert_int_equal(qs_frame_append(&s, QS_FRAME_MSG, payload, 100), 0);
	assert_int_equal(qs_frame_append(&s, QS_FRAME_MSG, payload, big), 0);
	struct qs_frame_decoder d;
	struct rec r;
	dec_init(&d, &r, QS_FRAME_INITIATOR, QS_FRAME_MSG_MAX);
	/* The small message is assembled in a buffer that is kept for the next one... */
	assert_int_equal(feed(&d, &r, s.data, 50), 0);
	assert_int_equal(feed(&d, &r, s.data + 50, 55), 0);
	assert_int_equal(r.msgs_assembled, 1);
	assert_true(d.msg.cap > 0 && d.msg.cap <= 4096);
	assert_int_equal(d.msg.len, 0);
	/* ...the big one grows it no further than the message, then it is freed. */
	size_t at = 105;
	while (at < s.len) {
		size_t n = s.len - at < 65536 ? s.len - at : 65536;
		assert_int_equal(feed(&d, &r, s.data + at, n), 0);
		assert_true(d.msg.cap <= 2 * big);
		at += n;
	}
	assert_int_equal(r.msgs_assembled, 2);
	assert_int_equal(d.msg.cap, 0);
	assert_int_equal(r.log.len, 2 * 5 + 100 + big);
	assert_memory_equal(r.log.data + 5 + 100 + 5, payload, big);
	dec_release(&d, &r);
	qs_buf_release(&s);
	qs_free(payload);
}

/* Counts DATA bytes and checks their pattern without recording them. */
struct data_sink {
	uint64_t total;
	uint64_t frames;
	size_t next_offset;
};

static int data_sink_event(void *ctx, const struct qs_frame_event *ev)
{
	struct data_sink *s = ctx;
	assert_int_equal(ev->type, QS_FRAME_DATA);
	assert_int_equal(ev->offset, s->next_offset);
	for (size_t i = 0; i < ev->len; i++) {
		if (ev->data[i] != (uint8_t)((s->total + i) % 251))
			fail_msg("DATA byte %llu corrupted", (unsigned long long)(s->total + i));
	}
	s->total += ev->len;
	s->next_offset = ev->offset + ev->len;
	if (s->next_offset == ev->frame_len) {
		s->next_offset = 0;
		s->frames++;
	}
	return 0;
}

static void test_long_data_run_constant_memory(void **state)
{
	(void)state;
	const uint64_t total = (uint64_t)50 << 20;
	const size_t piece = 1000;
	struct data_sink sink = {0};
	struct qs_frame_decoder d;
	qs_frame_decoder_init(&d, QS_FRAME_INITIATOR, QS_FRAME_MSG_MAX, data_sink_event, &sink);
	/* The stream is produced a piece at a time: DATA frames of QS_FRAME_DATA_MAX bytes
	 * (the last one shorter), each header followed by its pattern bytes. */
	uint8_t buf[1000 + QS_FRAME_HEADER_LEN];
	uint64_t sent = 0, frame_left = 0, pieces = 0;
	while (sent < total || frame_left > 0) {
		size_t n = 0;
		while (n < piece && (sent < total || frame_left > 0)) {
			if (frame_left == 0) {
				uint64_t f = total - sent;
				frame_left = f < QS_FRAME_DATA_MAX ? f : QS_FRAME_DATA_MAX;
				assert_int_equal(qs_frame_header_encode(buf + n, QS_FRAME_DATA,
									(size_t)frame_left),
						 0);
				n += QS_FRAME_HEADER_LEN;
			}
			for (; n < piece && frame_left > 0; n++, frame_left--, sent++)
				buf[n] = (uint8_t)(sent % 251);
		}
		assert_int_equal(qs_frame_decoder_feed(&d, buf, n), 0);
		/* Nothing is ever buffered: the decoder's only buffer stays unallocated. */
		assert_int_equal(d.msg.cap, 0);
		pieces++;
	}
	assert_true(qs_frame_decoder_at_boundary(&d));
	assert_int_equal(qs_frame_decoder_finish(&d), 0);
	assert_true(sink.total == total);
	assert_int_equal(sink.frames, (total + QS_FRAME_DATA_MAX - 1) / QS_FRAME_DATA_MAX);
	assert_true(pieces > 50000);
	qs_frame_decoder_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_all_types),
		cmocka_unit_test(test_every_split_gives_same_events),
		cmocka_unit_test(test_decoder_limits),
		cmocka_unit_test(test_encoder_limits),
		cmocka_unit_test(test_protocol_violations),
		cmocka_unit_test(test_errors_are_sticky),
		cmocka_unit_test(test_truncated_stream),
		cmocka_unit_test(test_msg_max_set_on_open),
		cmocka_unit_test(test_assembly_buffer_is_bounded_and_freed),
		cmocka_unit_test(test_long_data_run_constant_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

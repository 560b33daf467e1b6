/* Stream framing of the sync protocol (docs/wire.md). Every QUIC stream carries one
 * transaction as a sequence of frames: a 5-byte header (type, u32 big-endian payload length)
 * and the payload. OPEN names the transaction (first frame of the opener's side only), MSG
 * holds one protobuf message, DATA holds raw chunk bytes. Pure: no I/O, no clock. */
#ifndef QS_CORE_FRAME_H
#define QS_CORE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define QS_FRAME_HEADER_LEN 5
/* Longest OPEN payload (transaction name of [A-Z0-9_], at least 1 byte). */
#define QS_FRAME_NAME_MAX 64
/* Longest MSG payload the protocol allows; a decoder may be configured lower. */
#define QS_FRAME_MSG_MAX ((size_t)4 << 20)
/* Longest DATA payload; DATA payloads are at least 1 byte. */
#define QS_FRAME_DATA_MAX ((size_t)4 << 20)

enum qs_frame_type {
	QS_FRAME_OPEN = 1,
	QS_FRAME_MSG = 2,
	QS_FRAME_DATA = 3,
};

/* Returns whether name[0..len) is a valid transaction name: 1..QS_FRAME_NAME_MAX bytes of
 * [A-Z0-9_]. */
bool qs_frame_name_valid(const char *name, size_t len);

/* Writes the header of a frame of `type` with a payload of payload_len bytes to out. For
 * senders that write the payload themselves (DATA straight from a file buffer).
 * Errors: QS_EINVAL (unknown type, empty OPEN or DATA), QS_E2BIG (payload_len over the
 * type's maximum). out is written only on success. */
int qs_frame_header_encode(uint8_t out[QS_FRAME_HEADER_LEN], enum qs_frame_type type,
			   size_t payload_len);

/* Appends a whole frame (header and a copy of the payload) to b. An OPEN payload must be a
 * valid name. Errors: as qs_frame_header_encode, QS_EINVAL (bad OPEN name), and from
 * qs_buf_reserve (QS_E2BIG when b's maximum is reached, QS_ENOMEM); b is unchanged on error. */
int qs_frame_append(struct qs_buf *b, enum qs_frame_type type, const void *payload, size_t len);

/* Appends an OPEN frame for the NUL-terminated transaction name. Errors as qs_frame_append. */
int qs_frame_append_open(struct qs_buf *b, const char *name);

/* Which side of a stream the decoder reads. */
enum qs_frame_role {
	/* Reads a stream the peer opened: the first frame must be OPEN, and only the first. */
	QS_FRAME_ACCEPTOR = 1,
	/* Reads the replies on a stream this side opened: OPEN never appears. */
	QS_FRAME_INITIATOR = 2,
};

/* One decoded event. All pointers are borrowed for the duration of the callback only. */
struct qs_frame_event {
	enum qs_frame_type type;
	/* OPEN: the name, NUL-terminated, [A-Z0-9_]. MSG: the whole payload (never NULL, even
	 * when len is 0). DATA: this piece of the frame's payload. */
	const uint8_t *data;
	size_t len;
	/* DATA: offset of this piece within its frame's payload. 0 for OPEN and MSG. */
	size_t offset;
	/* Total payload length of the frame this event belongs to. */
	size_t frame_len;
};

/* Receives events in stream order. Returns 0 to continue or a negative QS_E* to stop the
 * decoder, which then fails with that code. Must not call qs_frame_decoder_feed on the
 * same decoder; may call qs_frame_decoder_set_msg_max. */
typedef int (*qs_frame_event_fn)(void *ctx, const struct qs_frame_event *ev);

/* Incremental decoder: accepts the stream in pieces split anywhere and calls back once per
 * OPEN and MSG frame and once per contiguous piece of a DATA frame. A MSG whose payload is
 * inside one fed piece is passed straight from the input; otherwise it is assembled in
 * `msg`, bounded by msg_max. DATA is never buffered, so memory stays constant for any
 * length of DATA run. Errors are sticky. Fields are private; one thread at a time. */
struct qs_frame_decoder {
	qs_frame_event_fn cb;
	void *ctx;
	enum qs_frame_role role;
	size_t msg_max;
	int err;                             /* 0 or the sticky error */
	bool opened;                         /* an OPEN frame was seen */
	size_t header_len;                   /* header bytes collected so far (0..5) */
	uint8_t header[QS_FRAME_HEADER_LEN]; /* the header being collected */
	enum qs_frame_type type;             /* current frame, when header_len == 5 */
	size_t frame_len;                    /* its payload length */
	size_t done;                         /* payload bytes of it consumed so far */
	struct qs_buf msg;                   /* MSG assembly across pieces */
	char name[QS_FRAME_NAME_MAX + 1];    /* OPEN assembly, NUL-terminated when emitted */
};

/* Initializes d to read a stream in `role`, calling cb(ctx, event) for each event. MSG
 * payloads longer than msg_max (at most QS_FRAME_MSG_MAX) fail with QS_E2BIG. Allocates
 * nothing; release with qs_frame_decoder_release. */
void qs_frame_decoder_init(struct qs_frame_decoder *d, enum qs_frame_role role, size_t msg_max,
			   qs_frame_event_fn cb, void *ctx);

/* Frees the assembly buffer. d may be initialized again afterwards. */
void qs_frame_decoder_release(struct qs_frame_decoder *d);

/* Changes the MSG limit (at most QS_FRAME_MSG_MAX) for frames whose header is not yet
 * complete, e.g. from the OPEN callback once the transaction is known. */
void qs_frame_decoder_set_msg_max(struct qs_frame_decoder *d, size_t msg_max);

/* Consumes len bytes of the stream, calling back for each event they complete.
 * Returns 0, or the sticky error (also on every later call, without calling back):
 * QS_EPROTO (unknown frame type; OPEN not first, repeated, or on an initiator's stream;
 * empty OPEN or DATA; a name outside [A-Z0-9_]), QS_E2BIG (a length over its limit),
 * QS_ENOMEM, or the callback's negative return. */
int qs_frame_decoder_feed(struct qs_frame_decoder *d, const void *data, size_t len);

/* Returns true if the bytes fed so far end exactly at a frame boundary and no error
 * occurred: the stream may end here. False inside a header or payload. */
bool qs_frame_decoder_at_boundary(const struct qs_frame_decoder *d);

/* Call when the stream ended (FIN). Returns 0 for a clean end: at a frame boundary and, for
 * an acceptor, after an OPEN. Otherwise the sticky error, or QS_EPROTO for a truncated
 * frame or a stream that never named its transaction. */
int qs_frame_decoder_finish(const struct qs_frame_decoder *d);

#endif

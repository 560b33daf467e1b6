/* Wire codec: protobuf-c messages (proto/quics.proto) in and out of MSG frames, with the
 * checks every received message gets before a handler sees it, and the table of
 * transactions. Pure: no I/O, no clock. Thread-safe (no shared state). */
#ifndef QS_CORE_WIRE_H
#define QS_CORE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "quics.pb-c.h"

#include "base/buf.h"

/* Length of every hash field (SHA-256). */
#define QS_WIRE_HASH_LEN 32
/* Default limits for received messages (struct qs_wire_limits). */
#define QS_WIRE_STRING_MAX 4096
#define QS_WIRE_REPEATED_MAX 131072
#define QS_WIRE_ALLOC_MAX ((size_t)32 << 20)
/* Files up to this size travel inline (FileState.inline_data) instead of as chunk runs. */
#define QS_WIRE_INLINE_MAX ((size_t)64 << 10)

/* Bounds applied to a received message. */
struct qs_wire_limits {
	size_t string_max;   /* bytes in any string */
	size_t repeated_max; /* elements in any repeated field */
	size_t alloc_max;    /* bytes the decoded message may allocate in total (bounds the
			      * memory a small payload of many empty elements could cost) */
};

/* QS_WIRE_STRING_MAX, QS_WIRE_REPEATED_MAX, QS_WIRE_ALLOC_MAX. */
extern const struct qs_wire_limits qs_wire_limits_default;

/* Appends msg as one MSG frame to out. Errors: QS_E2BIG (packed size over QS_FRAME_MSG_MAX,
 * or out's maximum reached), QS_ENOMEM; out is unchanged on error. */
int qs_wire_pack(struct qs_buf *out, const ProtobufCMessage *msg);

/* Appends an ErrorReply MSG frame with the code and message (NUL-terminated UTF-8, at most
 * QS_WIRE_STRING_MAX bytes; borrowed). Errors: QS_EINVAL (message too long), as
 * qs_wire_pack. */
int qs_wire_pack_error(struct qs_buf *out, Quics__ErrorCode code, const char *message);

/* Decodes a MSG payload (borrowed) as a message of type desc and checks it (qs_wire_check
 * and, on the encoded form, that every string is UTF-8 without NUL and within
 * string_max). lim NULL means qs_wire_limits_default. On success *out is the message; the
 * caller frees it with qs_wire_free. Errors: QS_EPROTO (not a valid encoding of desc, or a
 * check failed), QS_E2BIG (a limit of lim exceeded), QS_ENOMEM. */
int qs_wire_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		   const struct qs_wire_limits *lim, ProtobufCMessage **out);

/* Frees a message from qs_wire_unpack. NULL is fine. */
void qs_wire_free(ProtobufCMessage *msg);

/* Checks a decoded message against the schema's conventions (proto/quics.proto): hash
 * fields exactly QS_WIRE_HASH_LEN bytes, enums holding defined values, repeated fields
 * within lim->repeated_max, recursively. A message whose `error` field is set is only
 * checked in that field. lim NULL means the defaults. Errors: QS_EPROTO, QS_E2BIG. */
int qs_wire_check(const ProtobufCMessage *msg, const struct qs_wire_limits *lim);

/* Returns the error of a reply (its `error` field, number 15) if it is set, else NULL.
 * Borrowed from msg. */
const Quics__Error *qs_wire_reply_error(const ProtobufCMessage *msg);

/* Maps a QS_E* code to the ErrorCode a reply should carry. */
Quics__ErrorCode qs_wire_error_code(int err);

/* Who opens a transaction's stream. */
enum qs_wire_opener {
	QS_WIRE_BY_CLIENT = 1,
	QS_WIRE_BY_SERVER = 2,
	QS_WIRE_BY_EITHER = 3,
};

/* One transaction: its OPEN name, and the first message of each side. */
struct qs_wire_tx {
	const char *name;
	enum qs_wire_opener opener;
	const ProtobufCMessageDescriptor *request; /* the opener's first MSG */
	const ProtobufCMessageDescriptor *reply;   /* the other side's first MSG */
};

/* Returns the transaction named name[0..len) (an OPEN payload), or NULL if none is. */
const struct qs_wire_tx *qs_wire_tx_find(const char *name, size_t len);

/* Returns the table of all transactions and writes its length to *count. */
const struct qs_wire_tx *qs_wire_tx_list(size_t *count);

#endif

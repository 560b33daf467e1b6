/* Wire codec (wire.h, docs/wire.md): packs messages into MSG frames and decodes received
 * payloads in three steps: a scan of the encoded form (strings: UTF-8, no NUL, bounded),
 * protobuf-c's unpack under an allocation budget, and a walk of the decoded message (hash
 * lengths, enum values, repeated counts). Owns nothing beyond each call. */
#include "core/wire.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/reader.h"
#include "base/utf8.h"
#include "core/frame.h"

/* The schema nests a few levels; anything deeper is not ours. */
#define WIRE_DEPTH_MAX 16
/* Largest field number protobuf allows (2^29 - 1). */
#define WIRE_FIELD_NUMBER_MAX 536870911u
/* Field number of `error` in every reply (proto/quics.proto). */
#define WIRE_ERROR_FIELD 15

const struct qs_wire_limits qs_wire_limits_default = {
	.string_max = QS_WIRE_STRING_MAX,
	.repeated_max = QS_WIRE_REPEATED_MAX,
	.alloc_max = QS_WIRE_ALLOC_MAX,
};

int qs_wire_pack(struct qs_buf *out, const ProtobufCMessage *msg)
{
	uint8_t header[QS_FRAME_HEADER_LEN];
	size_t n = protobuf_c_message_get_packed_size(msg);
	int rc = qs_frame_header_encode(header, QS_FRAME_MSG, n);
	if (rc != 0)
		return rc;
	rc = qs_buf_reserve(out, sizeof(header) + n);
	if (rc != 0)
		return rc;
	memcpy(out->data + out->len, header, sizeof(header));
	size_t packed = protobuf_c_message_pack(msg, out->data + out->len + sizeof(header));
	assert(packed == n);
	out->len += sizeof(header) + packed;
	return 0;
}

int qs_wire_pack_error(struct qs_buf *out, Quics__ErrorCode code, const char *message)
{
	if (strlen(message) > QS_WIRE_STRING_MAX)
		return QS_EINVAL;
	Quics__Error error = QUICS__ERROR__INIT;
	error.code = code;
	error.message = (char *)message;
	Quics__ErrorReply reply = QUICS__ERROR_REPLY__INIT;
	reply.error = &error;
	return qs_wire_pack(out, &reply.base);
}

static int wire_varint(struct qs_reader *r, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b = qs_reader_u8(r);
		if (r->err != 0)
			return QS_EPROTO;
		v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*out = v;
			return 0;
		}
	}
	return QS_EPROTO;
}

static int wire_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
		     const struct qs_wire_limits *lim, unsigned depth);

/* Scans one field whose key was read; checks strings and descends into known messages.
 * Everything else is only skipped: protobuf-c judges it. */
static int wire_scan_field(const ProtobufCMessageDescriptor *desc, struct qs_reader *r,
			   uint64_t key, const struct qs_wire_limits *lim, unsigned depth)
{
	/* Checked for every wire type: protobuf-c accepts a non-canonical key of field 0
	 * ("80 00") and keeps it as an unknown field that it then cannot read back. */
	uint64_t number = key >> 3;
	if (number == 0 || number > WIRE_FIELD_NUMBER_MAX)
		return QS_EPROTO;
	uint64_t n;
	switch (key & 7) {
	case 0: return wire_varint(r, &n);
	case 1: return qs_reader_bytes(r, 8) != NULL ? 0 : QS_EPROTO;
	case 5: return qs_reader_bytes(r, 4) != NULL ? 0 : QS_EPROTO;
	case 2: break;
	default: return QS_EPROTO; /* groups (3, 4) and undefined types */
	}
	if (wire_varint(r, &n) != 0 || r->avail < n)
		return QS_EPROTO;
	const uint8_t *v = qs_reader_bytes(r, (size_t)n);
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
	if (f == NULL)
		return 0;
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		if (n > lim->string_max)
			return QS_E2BIG;
		return qs_utf8_valid_nonul(v, (size_t)n) ? 0 : QS_EPROTO;
	}
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return wire_scan(f->descriptor, v, (size_t)n, lim, depth + 1);
	return 0;
}

static int wire_scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
		     const struct qs_wire_limits *lim, unsigned depth)
{
	if (depth > WIRE_DEPTH_MAX)
		return QS_EPROTO;
	struct qs_reader r;
	qs_reader_init(&r, p, len);
	while (r.avail > 0) {
		uint64_t key;
		int rc = wire_varint(&r, &key);
		if (rc == 0)
			rc = wire_scan_field(desc, &r, key, lim, depth);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* protobuf-c allocator that fails once the message would use more than its budget. */
struct wire_budget {
	size_t left;
	bool over; /* an allocation was refused for the budget */
	bool oom;  /* an allocation failed */
};

static void *wire_alloc(void *data, size_t size)
{
	struct wire_budget *b = data;
	if (b->left < size) {
		b->over = true;
		return NULL;
	}
	void *p = qs_malloc(size);
	if (p == NULL) {
		b->oom = true;
		return NULL;
	}
	b->left -= size;
	return p;
}

static void wire_release(void *data, void *p)
{
	(void)data;
	qs_free(p);
}

int qs_wire_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		   const struct qs_wire_limits *lim, ProtobufCMessage **out)
{
	if (lim == NULL)
		lim = &qs_wire_limits_default;
	int rc = wire_scan(desc, data, len, lim, 0);
	if (rc != 0)
		return rc;
	struct wire_budget budget = {.left = lim->alloc_max};
	ProtobufCAllocator a = {
		.alloc = wire_alloc, .free = wire_release, .allocator_data = &budget};
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, len, data);
	if (m == NULL) {
		if (budget.over)
			return QS_E2BIG;
		return budget.oom ? QS_ENOMEM : QS_EPROTO;
	}
	rc = qs_wire_check(m, lim);
	if (rc != 0) {
		qs_wire_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void qs_wire_free(ProtobufCMessage *msg)
{
	/* Freeing allocates nothing, so only the free hook is needed. */
	ProtobufCAllocator a = {.free = wire_release};
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, &a);
}

static bool wire_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The schema's naming convention for SHA-256 fields (proto/quics.proto). */
static bool wire_is_hash_field(const ProtobufCFieldDescriptor *f)
{
	return f->type == PROTOBUF_C_TYPE_BYTES &&
	       (strcmp(f->name, "hash") == 0 || strcmp(f->name, "hashes") == 0 ||
		wire_ends_with(f->name, "_hash") || wire_ends_with(f->name, "_hashes"));
}

/* Whether a singular field holds a value that must be looked at: for a oneof member,
 * whether it is the member set (the others share its storage). */
static bool wire_field_active(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) == 0)
		return true;
	uint32_t which;
	memcpy(&which, (const uint8_t *)m + f->quantifier_offset, sizeof(which));
	return which == f->id;
}

static int wire_check_value(const ProtobufCFieldDescriptor *f, const void *v,
			    const struct qs_wire_limits *lim)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData b;
		memcpy(&b, v, sizeof(b));
		return !wire_is_hash_field(f) || b.len == QS_WIRE_HASH_LEN ? 0 : QS_EPROTO;
	}
	case PROTOBUF_C_TYPE_ENUM: {
		int e;
		memcpy(&e, v, sizeof(e));
		return protobuf_c_enum_descriptor_get_value(f->descriptor, e) ? 0 : QS_EPROTO;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub;
		memcpy(&sub, v, sizeof(sub));
		return sub != NULL ? qs_wire_check(sub, lim) : 0;
	}
	default: return 0;
	}
}

/* Size of one element of a repeated field of a type wire_check_value looks at, else 0. */
static size_t wire_elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	default: return 0;
	}
}

static int wire_check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
			    const struct qs_wire_limits *lim)
{
	const uint8_t *base = (const uint8_t *)m;
	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return wire_field_active(m, f) ? wire_check_value(f, base + f->offset, lim) : 0;
	size_t count;
	const uint8_t *elems;
	memcpy(&count, base + f->quantifier_offset, sizeof(count));
	memcpy(&elems, base + f->offset, sizeof(elems));
	if (count > lim->repeated_max)
		return QS_E2BIG;
	size_t size = wire_elem_size(f);
	for (size_t i = 0; size != 0 && i < count; i++) {
		int rc = wire_check_value(f, elems + i * size, lim);
		if (rc != 0)
			return rc;
	}
	return 0;
}

const Quics__Error *qs_wire_reply_error(const ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(msg->descriptor, WIRE_ERROR_FIELD);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
	    f->descriptor != &quics__error__descriptor || !wire_field_active(msg, f))
		return NULL;
	const Quics__Error *e;
	memcpy(&e, (const uint8_t *)msg + f->offset, sizeof(e));
	return e;
}

int qs_wire_check(const ProtobufCMessage *msg, const struct qs_wire_limits *lim)
{
	if (lim == NULL)
		lim = &qs_wire_limits_default;
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	const Quics__Error *e = qs_wire_reply_error(msg);
	if (e != NULL)
		return qs_wire_check(&e->base, lim);
	for (unsigned i = 0; i < desc->n_fields; i++) {
		int rc = wire_check_field(msg, &desc->fields[i], lim);
		if (rc != 0)
			return rc;
	}
	return 0;
}

Quics__ErrorCode qs_wire_error_code(int err)
{
	if (err <= QS_EPATH_EMPTY && err > QS_ERR_MIN)
		return QUICS__ERROR_CODE__ERROR_BAD_PATH;
	switch (err) {
	case QS_EINVAL:
	case QS_EPROTO: return QUICS__ERROR_CODE__ERROR_BAD_REQUEST;
	case QS_E2BIG:
	case QS_ELIMIT: return QUICS__ERROR_CODE__ERROR_TOO_LARGE;
	case QS_ENOENT: return QUICS__ERROR_CODE__ERROR_NOT_FOUND;
	case QS_EEXIST: return QUICS__ERROR_CODE__ERROR_ALREADY_EXISTS;
	case QS_EACCES: return QUICS__ERROR_CODE__ERROR_NOT_JOINED;
	case QS_ECONFLICT: return QUICS__ERROR_CODE__ERROR_STALE;
	case QS_EKIND: return QUICS__ERROR_CODE__ERROR_KIND_CONFLICT;
	case QS_ENOSPC: return QUICS__ERROR_CODE__ERROR_NO_SPACE;
	case QS_EAGAIN:
	case QS_ECANCELED: return QUICS__ERROR_CODE__ERROR_UNAVAILABLE;
	default: return QUICS__ERROR_CODE__ERROR_INTERNAL;
	}
}

#define WIRE_TX(name, opener, req, rep)                                                            \
	{                                                                                          \
		name, opener, &quics__##req##__descriptor, &quics__##rep##__descriptor             \
	}

static const struct qs_wire_tx wire_txs[] = {
	WIRE_TX("REGISTER_CLIENT", QS_WIRE_BY_CLIENT, register_client_request,
		register_client_response),
	WIRE_TX("AUTH", QS_WIRE_BY_CLIENT, auth_request, auth_response),
	WIRE_TX("REGISTER_ROOT", QS_WIRE_BY_CLIENT, register_root_request, register_root_response),
	WIRE_TX("LIST_ROOTS", QS_WIRE_BY_CLIENT, list_roots_request, list_roots_response),
	WIRE_TX("JOIN_ROOT", QS_WIRE_BY_CLIENT, join_root_request, join_root_response),
	WIRE_TX("LEAVE_ROOT", QS_WIRE_BY_CLIENT, leave_root_request, leave_root_response),
	WIRE_TX("PLEASE_SYNC", QS_WIRE_BY_CLIENT, please_sync_request, please_sync_response),
	WIRE_TX("MUST_SYNC", QS_WIRE_BY_SERVER, must_sync_request, chunk_want),
	WIRE_TX("FORCE_SYNC", QS_WIRE_BY_SERVER, force_sync_request, chunk_want),
	WIRE_TX("FULL_SCAN", QS_WIRE_BY_EITHER, full_scan_request, full_scan_page),
	WIRE_TX("NEED_CONTENT", QS_WIRE_BY_SERVER, need_content_request, chunk_header),
	WIRE_TX("CONFLICT_LIST", QS_WIRE_BY_CLIENT, conflict_list_request, conflict_list_response),
	WIRE_TX("CONFLICT_DOWNLOAD", QS_WIRE_BY_CLIENT, conflict_download_request,
		conflict_download_response),
	WIRE_TX("CONFLICT_CHOOSE", QS_WIRE_BY_CLIENT, conflict_choose_request,
		conflict_choose_response),
	WIRE_TX("HISTORY_SHOW", QS_WIRE_BY_CLIENT, history_show_request, history_show_response),
	WIRE_TX("HISTORY_DOWNLOAD", QS_WIRE_BY_CLIENT, history_download_request,
		history_download_response),
	WIRE_TX("ROLLBACK", QS_WIRE_BY_CLIENT, rollback_request, rollback_response),
	WIRE_TX("SHARE_START", QS_WIRE_BY_CLIENT, share_start_request, share_start_response),
	WIRE_TX("SHARE_STOP", QS_WIRE_BY_CLIENT, share_stop_request, share_stop_response),
};

const struct qs_wire_tx *qs_wire_tx_find(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(wire_txs) / sizeof(wire_txs[0]); i++) {
		if (strlen(wire_txs[i].name) == len && memcmp(wire_txs[i].name, name, len) == 0)
			return &wire_txs[i];
	}
	return NULL;
}

const struct qs_wire_tx *qs_wire_tx_list(size_t *count)
{
	*count = sizeof(wire_txs) / sizeof(wire_txs[0]);
	return wire_txs;
}

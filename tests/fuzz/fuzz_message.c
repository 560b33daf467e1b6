/* libFuzzer harness for every protobuf message type a peer can send (proto/quics.proto). The
 * first input byte picks the message type, the rest is its encoding. It is decoded with the
 * checks every received message gets (qs_wire_unpack: codec, limits, UTF-8, hashes, enums);
 * what passes must pass qs_wire_check again, and pack and unpack to the same encoding. Every
 * FileState inside (at any depth) then goes through the checks the server and client apply
 * before using one (core/filestate.h), and a FileState that passes must give a manifest
 * consistent with it and a content identity. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "core/filestate.h"
#include "core/frame.h"
#include "core/manifest.h"
#include "core/wire.h"

static const ProtobufCMessageDescriptor *const fuzz_types[] = {
	&quics__error__descriptor,
	&quics__error_reply__descriptor,
	&quics__chunk_ref__descriptor,
	&quics__file_state__descriptor,
	&quics__chunk_header__descriptor,
	&quics__chunk_want__descriptor,
	&quics__sync_result__descriptor,
	&quics__register_client_request__descriptor,
	&quics__register_client_response__descriptor,
	&quics__auth_request__descriptor,
	&quics__auth_response__descriptor,
	&quics__register_root_request__descriptor,
	&quics__register_root_response__descriptor,
	&quics__list_roots_request__descriptor,
	&quics__root_info__descriptor,
	&quics__list_roots_response__descriptor,
	&quics__join_root_request__descriptor,
	&quics__join_root_response__descriptor,
	&quics__leave_root_request__descriptor,
	&quics__leave_root_response__descriptor,
	&quics__please_sync_request__descriptor,
	&quics__please_sync_response__descriptor,
	&quics__please_sync_response__accepted__descriptor,
	&quics__please_sync_response__conflict__descriptor,
	&quics__please_sync_response__need_chunks__descriptor,
	&quics__must_sync_request__descriptor,
	&quics__force_sync_request__descriptor,
	&quics__full_scan_request__descriptor,
	&quics__scan_entry__descriptor,
	&quics__full_scan_page__descriptor,
	&quics__need_content_request__descriptor,
	&quics__conflict_list_request__descriptor,
	&quics__candidate__descriptor,
	&quics__conflict_info__descriptor,
	&quics__conflict_list_response__descriptor,
	&quics__conflict_download_request__descriptor,
	&quics__conflict_download_response__descriptor,
	&quics__conflict_choose_request__descriptor,
	&quics__conflict_choose_response__descriptor,
	&quics__history_show_request__descriptor,
	&quics__history_entry__descriptor,
	&quics__history_show_response__descriptor,
	&quics__history_download_request__descriptor,
	&quics__history_download_response__descriptor,
	&quics__rollback_request__descriptor,
	&quics__rollback_response__descriptor,
	&quics__share_start_request__descriptor,
	&quics__share_start_response__descriptor,
	&quics__share_stop_request__descriptor,
	&quics__share_stop_response__descriptor,
};
#define FUZZ_TYPES (sizeof(fuzz_types) / sizeof(fuzz_types[0]))

static void fuzz_check(bool ok)
{
	if (!ok)
		abort();
}

/* The checks a FileState gets before the model uses it, and what must hold when it passes. */
static void fuzz_filestate(const Quics__FileState *st)
{
	if (qs_filestate_check(st) != 0)
		return;
	struct qs_manifest m;
	int rc = qs_filestate_manifest(st, &m);
	fuzz_check(rc == 0 || rc == QS_ENOMEM || rc == QS_E2BIG);
	if (rc == 0) {
		uint64_t sum = 0;
		for (size_t i = 0; i < m.count; i++) {
			fuzz_check(m.chunks[i].len_bytes >= 1 &&
				   m.chunks[i].len_bytes <= QS_MANIFEST_CHUNK_MAX_BYTES);
			sum += m.chunks[i].len_bytes;
		}
		fuzz_check(sum == m.size_bytes);
		fuzz_check(qs_filestate_kind(st->kind) == QS_KIND_FILE || m.count == 0);
		qs_manifest_release(&m);
	}
	struct qs_content c;
	struct qs_buf enc;
	qs_buf_init(&enc, (size_t)64 << 20);
	rc = qs_filestate_content(st, &c, &enc);
	fuzz_check(rc == 0 || rc == QS_ENOMEM || rc == QS_E2BIG);
	if (rc == 0)
		fuzz_check((int)c.kind == qs_filestate_kind(st->kind));
	qs_buf_release(&enc);
}

/* Visits every FileState in msg, at any depth. */
static void fuzz_walk(const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	if (d == &quics__file_state__descriptor)
		fuzz_filestate((const Quics__FileState *)msg);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)msg;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n;
			memcpy(&n, base + f->quantifier_offset, sizeof(n));
			ProtobufCMessage *const *items;
			memcpy(&items, base + f->offset, sizeof(items));
			for (size_t k = 0; k < n; k++)
				fuzz_walk(items[k]);
		} else {
			const ProtobufCMessage *sub;
			memcpy(&sub, base + f->offset, sizeof(sub));
			if (sub != NULL)
				fuzz_walk(sub);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const ProtobufCMessageDescriptor *desc = fuzz_types[data[0] % FUZZ_TYPES];
	ProtobufCMessage *m = NULL;
	int rc = qs_wire_unpack(desc, data + 1, size - 1, NULL, &m);
	fuzz_check(rc == 0 || rc == QS_EPROTO || rc == QS_E2BIG || rc == QS_ENOMEM);
	if (rc != 0)
		return 0;
	fuzz_check(m->descriptor == desc);
	fuzz_check(qs_wire_check(m, NULL) == 0);
	(void)qs_wire_reply_error(m);
	fuzz_walk(m);
	/* What was accepted packs, and the packed form decodes and packs the same again. */
	struct qs_buf a, b;
	qs_buf_init(&a, QS_FRAME_HEADER_LEN + QS_FRAME_MSG_MAX);
	qs_buf_init(&b, QS_FRAME_HEADER_LEN + QS_FRAME_MSG_MAX);
	rc = qs_wire_pack(&a, m);
	fuzz_check(rc == 0 || rc == QS_E2BIG);
	if (rc == 0) {
		ProtobufCMessage *again = NULL;
		fuzz_check(qs_wire_unpack(desc, a.data + QS_FRAME_HEADER_LEN,
					  a.len - QS_FRAME_HEADER_LEN, NULL, &again) == 0);
		fuzz_check(qs_wire_pack(&b, again) == 0);
		fuzz_check(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
		qs_wire_free(again);
	}
	qs_buf_release(&a);
	qs_buf_release(&b);
	qs_wire_free(m);
	return 0;
}

/* Tests for the wire codec: pack/unpack round trips, the pack size limit, garbage, and each
 * check a received message gets (hash lengths, UTF-8 and NUL in strings, string, repeated
 * and allocation limits, enum values), error replies, and the transaction table. */
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
#include "core/wire.h"

/* Unpacks the single MSG frame that b holds. */
static int unpack_frame(const struct qs_buf *b, const ProtobufCMessageDescriptor *desc,
			ProtobufCMessage **out)
{
	assert_true(b->len >= QS_FRAME_HEADER_LEN);
	assert_int_equal(b->data[0], QS_FRAME_MSG);
	size_t n = (size_t)b->data[1] << 24 | (size_t)b->data[2] << 16 | (size_t)b->data[3] << 8 |
		   b->data[4];
	assert_int_equal(n, b->len - QS_FRAME_HEADER_LEN);
	return qs_wire_unpack(desc, b->data + QS_FRAME_HEADER_LEN, n, NULL, out);
}

static void fill_hash(uint8_t h[QS_WIRE_HASH_LEN], uint8_t seed)
{
	for (size_t i = 0; i < QS_WIRE_HASH_LEN; i++)
		h[i] = (uint8_t)(seed + i);
}

static void test_please_sync_round_trip(void **state)
{
	(void)state;
	uint8_t h[3][QS_WIRE_HASH_LEN];
	Quics__ChunkRef refs[3];
	Quics__ChunkRef *ref_ptrs[3];
	for (int i = 0; i < 3; i++) {
		fill_hash(h[i], (uint8_t)(i * 40));
		quics__chunk_ref__init(&refs[i]);
		refs[i].hash.data = h[i];
		refs[i].hash.len = QS_WIRE_HASH_LEN;
		refs[i].length = (uint32_t)(1000000 + i);
		ref_ptrs[i] = &refs[i];
	}
	Quics__FileState st = QUICS__FILE_STATE__INIT;
	st.kind = QUICS__FILE_KIND__FILE_KIND_FILE;
	st.mode = 0644;
	st.mtime_ns = -1234567890123;
	st.size = 3000003;
	st.n_manifest = 3;
	st.manifest = ref_ptrs;
	Quics__PleaseSyncRequest req = QUICS__PLEASE_SYNC_REQUEST__INIT;
	req.root_id = 7;
	req.path = "dir/r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e.txt";
	req.base_version = 41;
	req.state = &st;

	struct qs_buf b;
	qs_buf_init(&b, 1 << 20);
	assert_int_equal(qs_wire_pack(&b, &req.base), 0);
	ProtobufCMessage *m = NULL;
	assert_int_equal(unpack_frame(&b, &quics__please_sync_request__descriptor, &m), 0);
	const Quics__PleaseSyncRequest *got = (const Quics__PleaseSyncRequest *)m;
	assert_int_equal(got->root_id, 7);
	assert_string_equal(got->path, req.path);
	assert_int_equal(got->base_version, 41);
	assert_non_null(got->state);
	assert_int_equal(got->state->kind, QUICS__FILE_KIND__FILE_KIND_FILE);
	assert_int_equal(got->state->mode, 0644);
	assert_true(got->state->mtime_ns == -1234567890123);
	assert_int_equal(got->state->size, 3000003);
	assert_int_equal(got->state->n_manifest, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(got->state->manifest[i]->hash.len, QS_WIRE_HASH_LEN);
		assert_memory_equal(got->state->manifest[i]->hash.data, h[i], QS_WIRE_HASH_LEN);
		assert_int_equal(got->state->manifest[i]->length, 1000000 + i);
	}
	assert_int_equal(got->state->inline_data.len, 0);
	assert_null(qs_wire_reply_error(m));
	qs_wire_free(m);
	qs_buf_release(&b);
}

static void test_reply_variants_round_trip(void **state)
{
	(void)state;
	struct qs_buf b;
	qs_buf_init(&b, 1 << 20);
	ProtobufCMessage *m = NULL;

	Quics__PleaseSyncResponse__Conflict conflict = QUICS__PLEASE_SYNC_RESPONSE__CONFLICT__INIT;
	conflict.server_version = 9;
	conflict.candidate_id = 77;
	Quics__PleaseSyncResponse resp = QUICS__PLEASE_SYNC_RESPONSE__INIT;
	resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_CONFLICT;
	resp.conflict = &conflict;
	assert_int_equal(qs_wire_pack(&b, &resp.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__please_sync_response__descriptor, &m), 0);
	const Quics__PleaseSyncResponse *r = (const Quics__PleaseSyncResponse *)m;
	assert_int_equal(r->result_case, QUICS__PLEASE_SYNC_RESPONSE__RESULT_CONFLICT);
	assert_int_equal(r->conflict->server_version, 9);
	assert_int_equal(r->conflict->candidate_id, 77);
	assert_null(qs_wire_reply_error(m));
	qs_wire_free(m);

	uint8_t h[2][QS_WIRE_HASH_LEN];
	fill_hash(h[0], 1);
	fill_hash(h[1], 2);
	ProtobufCBinaryData hashes[2] = {{QS_WIRE_HASH_LEN, h[0]}, {QS_WIRE_HASH_LEN, h[1]}};
	Quics__PleaseSyncResponse__NeedChunks need = QUICS__PLEASE_SYNC_RESPONSE__NEED_CHUNKS__INIT;
	need.n_hashes = 2;
	need.hashes = hashes;
	resp.result_case = QUICS__PLEASE_SYNC_RESPONSE__RESULT_NEED_CHUNKS;
	resp.need_chunks = &need;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &resp.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__please_sync_response__descriptor, &m), 0);
	r = (const Quics__PleaseSyncResponse *)m;
	assert_int_equal(r->result_case, QUICS__PLEASE_SYNC_RESPONSE__RESULT_NEED_CHUNKS);
	assert_int_equal(r->need_chunks->n_hashes, 2);
	assert_memory_equal(r->need_chunks->hashes[1].data, h[1], QS_WIRE_HASH_LEN);
	qs_wire_free(m);

	Quics__ScanEntry entries[2];
	Quics__ScanEntry *entry_ptrs[2] = {&entries[0], &entries[1]};
	for (int i = 0; i < 2; i++) {
		quics__scan_entry__init(&entries[i]);
		entries[i].path = i == 0 ? "a" : "b/c";
		entries[i].version = (uint64_t)i + 1;
		entries[i].hash = hashes[i];
	}
	Quics__FullScanPage page = QUICS__FULL_SCAN_PAGE__INIT;
	page.n_entries = 2;
	page.entries = entry_ptrs;
	page.last = 1;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &page.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__full_scan_page__descriptor, &m), 0);
	const Quics__FullScanPage *p = (const Quics__FullScanPage *)m;
	assert_int_equal(p->n_entries, 2);
	assert_string_equal(p->entries[1]->path, "b/c");
	assert_int_equal(p->entries[1]->version, 2);
	assert_memory_equal(p->entries[0]->hash.data, h[0], QS_WIRE_HASH_LEN);
	assert_true(p->last);
	qs_wire_free(m);
	qs_buf_release(&b);
}

static void test_inline_and_chunk_header_round_trip(void **state)
{
	(void)state;
	uint8_t h[QS_WIRE_HASH_LEN];
	fill_hash(h, 9);
	uint8_t content[] = "hello, world\n";
	Quics__ChunkRef ref = QUICS__CHUNK_REF__INIT;
	ref.hash.data = h;
	ref.hash.len = sizeof(h);
	ref.length = sizeof(content);
	Quics__ChunkRef *refs[1] = {&ref};
	Quics__FileState st = QUICS__FILE_STATE__INIT;
	st.kind = QUICS__FILE_KIND__FILE_KIND_FILE;
	st.size = sizeof(content);
	st.n_manifest = 1;
	st.manifest = refs;
	st.inline_data.data = content;
	st.inline_data.len = sizeof(content);
	Quics__MustSyncRequest req = QUICS__MUST_SYNC_REQUEST__INIT;
	req.root_id = 1;
	req.path = "x";
	req.version = 3;
	req.state = &st;
	req.modified_by = 5;
	struct qs_buf b;
	qs_buf_init(&b, 1 << 20);
	assert_int_equal(qs_wire_pack(&b, &req.base), 0);
	ProtobufCMessage *m = NULL;
	assert_int_equal(unpack_frame(&b, &quics__must_sync_request__descriptor, &m), 0);
	const Quics__MustSyncRequest *got = (const Quics__MustSyncRequest *)m;
	assert_int_equal(got->state->inline_data.len, sizeof(content));
	assert_memory_equal(got->state->inline_data.data, content, sizeof(content));
	assert_int_equal(got->modified_by, 5);
	qs_wire_free(m);

	Quics__ChunkHeader ch = QUICS__CHUNK_HEADER__INIT;
	ch.hash.data = h;
	ch.hash.len = sizeof(h);
	ch.length = 4 << 20;
	ch.compression = QUICS__COMPRESSION__COMPRESSION_ZSTD;
	ch.wire_length = 12345;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &ch.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__chunk_header__descriptor, &m), 0);
	const Quics__ChunkHeader *gh = (const Quics__ChunkHeader *)m;
	assert_int_equal(gh->compression, QUICS__COMPRESSION__COMPRESSION_ZSTD);
	assert_int_equal(gh->length, 4 << 20);
	assert_int_equal(gh->wire_length, 12345);
	qs_wire_free(m);
	qs_buf_release(&b);
}

static void test_pack_size_limit(void **state)
{
	(void)state;
	/* AuthRequest with only token set packs as tag (1) + length varint (4) + token. */
	size_t len = QS_FRAME_MSG_MAX - 1 - 4;
	uint8_t *token = qs_calloc(len + 1, 1);
	assert_non_null(token);
	Quics__AuthRequest req = QUICS__AUTH_REQUEST__INIT;
	req.token.data = token;
	req.token.len = len;
	assert_int_equal(protobuf_c_message_get_packed_size(&req.base), QS_FRAME_MSG_MAX);
	struct qs_buf b;
	qs_buf_init(&b, 2 * QS_FRAME_MSG_MAX);
	assert_int_equal(qs_buf_append(&b, "x", 1), 0);
	assert_int_equal(qs_wire_pack(&b, &req.base), 0);
	assert_int_equal(b.len, 1 + QS_FRAME_HEADER_LEN + QS_FRAME_MSG_MAX);
	req.token.len = len + 1;
	assert_int_equal(qs_wire_pack(&b, &req.base), QS_E2BIG);
	assert_int_equal(b.len, 1 + QS_FRAME_HEADER_LEN + QS_FRAME_MSG_MAX);
	/* The buffer's own maximum is respected too. */
	struct qs_buf small;
	qs_buf_init(&small, 64);
	req.token.len = 64 - QS_FRAME_HEADER_LEN - 2;
	assert_int_equal(qs_wire_pack(&small, &req.base), 0);
	assert_int_equal(small.len, 64);
	qs_buf_clear(&small);
	req.token.len++;
	assert_int_equal(qs_wire_pack(&small, &req.base), QS_E2BIG);
	assert_int_equal(small.len, 0);
	qs_buf_release(&small);
	qs_buf_release(&b);
	qs_free(token);
}

static int unpack_raw(const ProtobufCMessageDescriptor *desc, const char *bytes, size_t len,
		      const struct qs_wire_limits *lim)
{
	ProtobufCMessage *m = NULL;
	int rc = qs_wire_unpack(desc, (const uint8_t *)bytes, len, lim, &m);
	if (rc == 0)
		assert_non_null(m);
	qs_wire_free(m);
	return rc;
}

#define RAW(desc, lit) unpack_raw(&quics__##desc##__descriptor, lit, sizeof(lit) - 1, NULL)

static void test_garbage_is_eproto(void **state)
{
	(void)state;
	assert_int_equal(RAW(please_sync_request, ""), 0);
	assert_int_equal(RAW(please_sync_request, "\x08"), QS_EPROTO); /* varint cut */
	assert_int_equal(RAW(please_sync_request, "\x08\x80"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x12\x05"
						  "ab"),
			 QS_EPROTO); /* past end */
	assert_int_equal(RAW(please_sync_request, "\x12\xff\xff\xff\xff\x0f"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x10\x01\x13"), QS_EPROTO); /* group */
	assert_int_equal(RAW(please_sync_request, "\x0f"), QS_EPROTO);         /* wire type 7 */
	assert_int_equal(RAW(please_sync_request, "\x00\x01"), QS_EPROTO);     /* field 0 */
	/* Field 0 in a non-canonical key, which protobuf-c alone accepts (fuzzer finding). */
	assert_int_equal(RAW(please_sync_request, "\x80\x00\x01"), QS_EPROTO);
	assert_int_equal(RAW(auth_request, "\x08\x01\x80\x00\x80\xa8\x17"), QS_EPROTO);
	/* Field numbers past 2^29 - 1 (2^29, and one protobuf-c truncates to 32 bits). */
	assert_int_equal(RAW(leave_root_request, "\x80\x80\x80\x80\x10\x01"), QS_EPROTO);
	assert_int_equal(RAW(leave_root_request, "\xfa\xff\xff\xff\x7f\x00"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x22\x03\x08\x01"), QS_EPROTO); /* inner cut */
	/* A string field sent as a varint, a message field sent as a fixed64. */
	assert_int_equal(RAW(please_sync_request, "\x10\x01"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x21\1\2\3\4\5\6\7\x08"), QS_EPROTO);
	assert_int_equal(
		RAW(please_sync_request, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
		QS_EPROTO); /* 11-byte varint */
	/* Deterministic noise: nothing may crash, and the result is 0 or an error. */
	uint32_t x = 12345;
	char noise[64];
	int rejected = 0;
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(round % 64);
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			noise[i] = (char)(x >> 16);
		}
		int rc = unpack_raw(&quics__please_sync_request__descriptor, noise, len, NULL);
		assert_true(rc == 0 || rc == QS_EPROTO || rc == QS_E2BIG);
		rejected += rc != 0;
	}
	assert_true(rejected > 1000);
}

static void test_unknown_fields_are_tolerated(void **state)
{
	(void)state;
	/* Field 100 (varint) and field 101 (bytes) are not in the schema. */
	assert_int_equal(RAW(leave_root_request, "\x08\x05\xa0\x06\x01\xaa\x06\x02xy"), 0);
}

static void test_hash_fields_must_be_32_bytes(void **state)
{
	(void)state;
	uint8_t h[QS_WIRE_HASH_LEN + 1] = {0};
	ProtobufCBinaryData hashes[2] = {{QS_WIRE_HASH_LEN, h}, {QS_WIRE_HASH_LEN, h}};
	Quics__ChunkWant want = QUICS__CHUNK_WANT__INIT;
	want.n_hashes = 2;
	want.hashes = hashes;
	struct qs_buf b;
	qs_buf_init(&b, 1 << 20);
	ProtobufCMessage *m = NULL;
	const size_t lens[] = {0, 1, 31, 33};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		hashes[1].len = lens[i];
		qs_buf_clear(&b);
		assert_int_equal(qs_wire_pack(&b, &want.base), 0);
		assert_int_equal(unpack_frame(&b, &quics__chunk_want__descriptor, &m), QS_EPROTO);
	}
	hashes[1].len = QS_WIRE_HASH_LEN;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &want.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__chunk_want__descriptor, &m), 0);
	qs_wire_free(m);

	/* Nested: a Candidate's content_hash inside a ConflictInfo inside the response. */
	Quics__Candidate cand = QUICS__CANDIDATE__INIT;
	cand.candidate_id = 1;
	cand.content_hash.data = h;
	cand.content_hash.len = QS_WIRE_HASH_LEN;
	Quics__Candidate *cands[1] = {&cand};
	Quics__ConflictInfo info = QUICS__CONFLICT_INFO__INIT;
	info.path = "p";
	info.n_candidates = 1;
	info.candidates = cands;
	Quics__ConflictInfo *infos[1] = {&info};
	Quics__ConflictListResponse resp = QUICS__CONFLICT_LIST_RESPONSE__INIT;
	resp.n_conflicts = 1;
	resp.conflicts = infos;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &resp.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__conflict_list_response__descriptor, &m), 0);
	qs_wire_free(m);
	cand.content_hash.len = 0;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &resp.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__conflict_list_response__descriptor, &m),
			 QS_EPROTO);
	/* A singular hash that is absent is refused as well: it is never optional. */
	Quics__ChunkHeader ch = QUICS__CHUNK_HEADER__INIT;
	ch.length = 1;
	qs_buf_clear(&b);
	assert_int_equal(qs_wire_pack(&b, &ch.base), 0);
	assert_int_equal(unpack_frame(&b, &quics__chunk_header__descriptor, &m), QS_EPROTO);
	qs_buf_release(&b);
}

static void test_strings_must_be_utf8_without_nul(void **state)
{
	(void)state;
	/* PleaseSyncRequest.path is field 2 (tag 0x12). */
	assert_int_equal(RAW(please_sync_request, "\x12\x02\xc3\xa9"), 0);         /* é */
	assert_int_equal(RAW(please_sync_request, "\x12\x04\xf0\x9f\x98\x80"), 0); /* U+1F600 */
	assert_int_equal(RAW(please_sync_request, "\x12\x04\xf4\x8f\xbf\xbf"), 0); /* U+10FFFF */
	assert_int_equal(RAW(please_sync_request, "\x12\x03"
						  "a\0b"),
			 QS_EPROTO); /* NUL */
	assert_int_equal(RAW(please_sync_request, "\x12\x01\xff"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x12\x01\x80"), QS_EPROTO);     /* lone cont. */
	assert_int_equal(RAW(please_sync_request, "\x12\x02\xc0\xaf"), QS_EPROTO); /* overlong */
	assert_int_equal(RAW(please_sync_request, "\x12\x03\xe0\x80\xaf"),
			 QS_EPROTO); /* overlong */
	assert_int_equal(RAW(please_sync_request, "\x12\x03\xed\xa0\x80"),
			 QS_EPROTO); /* surrogate */
	assert_int_equal(RAW(please_sync_request, "\x12\x04\xf4\x90\x80\x80"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x12\x02\xe2\x82"), QS_EPROTO); /* cut */
	assert_int_equal(RAW(please_sync_request, "\x12\x02\xc3\x28"), QS_EPROTO);
	/* Nested: FileState.symlink_target (field 7, tag 0x3a) inside state (field 4). */
	assert_int_equal(RAW(please_sync_request, "\x22\x03\x3a\x01"
						  "a"),
			 0);
	assert_int_equal(RAW(please_sync_request, "\x22\x03\x3a\x01\xfe"), QS_EPROTO);
	/* Inside a repeated message: ListRootsResponse.roots (1) -> RootInfo.name (2). */
	assert_int_equal(RAW(list_roots_response, "\x0a\x03\x12\x01"
						  "a\x0a\x03\x12\x01\x00"),
			 QS_EPROTO);
	/* Inside the error of a reply: ErrorReply.error (15) -> Error.message (2). */
	assert_int_equal(RAW(join_root_response, "\x7a\x03\x12\x01\xc3"), QS_EPROTO);
	/* Bytes fields may hold anything. */
	assert_int_equal(RAW(register_client_response, "\x12\x03\x00\xff\xc3"), 0);
}

static void test_string_limit(void **state)
{
	(void)state;
	char raw[4 + QS_WIRE_STRING_MAX + 1];
	raw[0] = 0x12;
	raw[1] = (char)(0x80 | (QS_WIRE_STRING_MAX & 0x7f));
	raw[2] = (char)(QS_WIRE_STRING_MAX >> 7);
	memset(raw + 3, 'a', QS_WIRE_STRING_MAX + 1);
	const ProtobufCMessageDescriptor *d = &quics__please_sync_request__descriptor;
	assert_int_equal(unpack_raw(d, raw, 3 + QS_WIRE_STRING_MAX, NULL), 0);
	raw[1] = (char)(0x80 | ((QS_WIRE_STRING_MAX + 1) & 0x7f));
	assert_int_equal(unpack_raw(d, raw, 3 + QS_WIRE_STRING_MAX + 1, NULL), QS_E2BIG);

	struct qs_wire_limits lim = qs_wire_limits_default;
	lim.string_max = 3;
	assert_int_equal(unpack_raw(d,
				    "\x12\x03"
				    "abc",
				    5, &lim),
			 0);
	assert_int_equal(unpack_raw(d,
				    "\x12\x04"
				    "abcd",
				    6, &lim),
			 QS_E2BIG);
}

/* Encodes a ChunkWant with n valid hashes (raw, so no message has to be built). */
static void build_want(struct qs_buf *b, size_t n)
{
	qs_buf_init(b, (size_t)64 << 20);
	uint8_t h[QS_WIRE_HASH_LEN];
	fill_hash(h, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(qs_buf_put_u8(b, 0x0a), 0);
		assert_int_equal(qs_buf_put_u8(b, QS_WIRE_HASH_LEN), 0);
		assert_int_equal(qs_buf_append(b, h, sizeof(h)), 0);
	}
}

static void test_repeated_limit(void **state)
{
	(void)state;
	const ProtobufCMessageDescriptor *d = &quics__chunk_want__descriptor;
	struct qs_buf b;
	ProtobufCMessage *m = NULL;
	build_want(&b, QS_WIRE_REPEATED_MAX);
	assert_int_equal(qs_wire_unpack(d, b.data, b.len, NULL, &m), 0);
	assert_int_equal(((Quics__ChunkWant *)m)->n_hashes, QS_WIRE_REPEATED_MAX);
	qs_wire_free(m);
	qs_buf_release(&b);
	build_want(&b, QS_WIRE_REPEATED_MAX + 1);
	assert_int_equal(qs_wire_unpack(d, b.data, b.len, NULL, &m), QS_E2BIG);
	qs_buf_release(&b);

	struct qs_wire_limits lim = qs_wire_limits_default;
	lim.repeated_max = 4;
	build_want(&b, 4);
	assert_int_equal(qs_wire_unpack(d, b.data, b.len, &lim, &m), 0);
	qs_wire_free(m);
	qs_buf_release(&b);
	build_want(&b, 5);
	assert_int_equal(qs_wire_unpack(d, b.data, b.len, &lim, &m), QS_E2BIG);
	qs_buf_release(&b);
}

static void test_allocation_budget(void **state)
{
	(void)state;
	/* 2 million empty RootInfo elements: 4 MB on the wire, well over 100 MB decoded. The
	 * budget must refuse it during decoding, before the repeated count could be checked. */
	const size_t n = 2000000;
	struct qs_buf b;
	qs_buf_init(&b, 2 * n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(qs_buf_append(&b, "\x0a\x00", 2), 0);
	struct qs_wire_limits lim = qs_wire_limits_default;
	lim.repeated_max = SIZE_MAX;
	ProtobufCMessage *m = NULL;
	const ProtobufCMessageDescriptor *d = &quics__list_roots_response__descriptor;
	assert_int_equal(qs_wire_unpack(d, b.data, b.len, &lim, &m), QS_E2BIG);
	assert_int_equal(qs_wire_unpack(d, b.data, b.len, NULL, &m), QS_E2BIG);
	/* A small budget refuses even a modest message; a sufficient one accepts it. */
	lim.alloc_max = 1000;
	assert_int_equal(qs_wire_unpack(d, b.data, 200, &lim, &m), QS_E2BIG);
	lim.alloc_max = 100000;
	assert_int_equal(qs_wire_unpack(d, b.data, 200, &lim, &m), 0);
	assert_int_equal(((Quics__ListRootsResponse *)m)->n_roots, 100);
	qs_wire_free(m);
	qs_buf_release(&b);
}

static void test_enums_must_be_defined(void **state)
{
	(void)state;
	/* FileState.kind (field 1) inside PleaseSyncRequest.state (field 4). */
	assert_int_equal(RAW(please_sync_request, "\x22\x02\x08\x04"), 0);
	assert_int_equal(RAW(please_sync_request, "\x22\x02\x08\x05"), QS_EPROTO);
	assert_int_equal(RAW(please_sync_request, "\x22\x02\x08\x7f"), QS_EPROTO);
	/* ErrorCode inside an error reply. */
	assert_int_equal(RAW(join_root_response, "\x7a\x02\x08\x10"), 0);
	assert_int_equal(RAW(join_root_response, "\x7a\x02\x08\x63"), QS_EPROTO);
	/* ChunkHeader.compression. */
	Quics__ChunkHeader ch = QUICS__CHUNK_HEADER__INIT;
	uint8_t h[QS_WIRE_HASH_LEN] = {0};
	ch.hash.data = h;
	ch.hash.len = sizeof(h);
	ch.compression = (Quics__Compression)2;
	struct qs_buf b;
	qs_buf_init(&b, 1 << 10);
	assert_int_equal(qs_wire_pack(&b, &ch.base), 0);
	ProtobufCMessage *m = NULL;
	assert_int_equal(unpack_frame(&b, &quics__chunk_header__descriptor, &m), QS_EPROTO);
	qs_buf_release(&b);
}

static void test_error_reply_decodes_as_every_reply(void **state)
{
	(void)state;
	struct qs_buf b;
	qs_buf_init(&b, 1 << 16);
	assert_int_equal(qs_wire_pack_error(&b, QUICS__ERROR_CODE__ERROR_UNKNOWN_TRANSACTION,
					    "no such transaction"),
			 0);
	size_t count;
	const struct qs_wire_tx *txs = qs_wire_tx_list(&count);
	const ProtobufCMessageDescriptor *others[] = {
		&quics__sync_result__descriptor,          &quics__chunk_want__descriptor,
		&quics__chunk_header__descriptor,         &quics__full_scan_page__descriptor,
		&quics__please_sync_response__descriptor,
	};
	size_t n = count + sizeof(others) / sizeof(others[0]);
	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessageDescriptor *d = i < count ? txs[i].reply : others[i - count];
		ProtobufCMessage *m = NULL;
		/* ChunkHeader's missing hash is not checked: the message is an error reply. */
		assert_int_equal(unpack_frame(&b, d, &m), 0);
		const Quics__Error *e = qs_wire_reply_error(m);
		if (e == NULL)
			fail_msg("%s does not carry the error", d->name);
		assert_int_equal(e->code, QUICS__ERROR_CODE__ERROR_UNKNOWN_TRANSACTION);
		assert_string_equal(e->message, "no such transaction");
		qs_wire_free(m);
	}
	char *long_message = qs_malloc(QS_WIRE_STRING_MAX + 2);
	assert_non_null(long_message);
	memset(long_message, 'm', QS_WIRE_STRING_MAX + 1);
	long_message[QS_WIRE_STRING_MAX + 1] = '\0';
	size_t before = b.len;
	assert_int_equal(qs_wire_pack_error(&b, QUICS__ERROR_CODE__ERROR_INTERNAL, long_message),
			 QS_EINVAL);
	assert_int_equal(b.len, before);
	long_message[QS_WIRE_STRING_MAX] = '\0';
	assert_int_equal(qs_wire_pack_error(&b, QUICS__ERROR_CODE__ERROR_INTERNAL, long_message),
			 0);
	qs_free(long_message);
	qs_buf_release(&b);
}

/* Every field whose name mentions a hash follows the naming rule wire.c checks by, so no
 * hash escapes the length check. Walks every message reachable from the transactions. */
static void lint_message(const ProtobufCMessageDescriptor *d, int depth)
{
	assert_true(depth < 8);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *name = f->name;
		size_t len = strlen(name);
		if (strstr(name, "hash") != NULL) {
			bool rule = strcmp(name, "hash") == 0 || strcmp(name, "hashes") == 0 ||
				    (len > 5 && strcmp(name + len - 5, "_hash") == 0) ||
				    (len > 7 && strcmp(name + len - 7, "_hashes") == 0);
			if (!rule || f->type != PROTOBUF_C_TYPE_BYTES)
				fail_msg("%s.%s breaks the hash naming rule", d->name, name);
		}
		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			lint_message(f->descriptor, depth + 1);
	}
}

static void test_transaction_table(void **state)
{
	(void)state;
	size_t count;
	const struct qs_wire_tx *txs = qs_wire_tx_list(&count);
	assert_int_equal(count, 19);
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(txs[i].name);
		assert_true(qs_frame_name_valid(txs[i].name, len));
		assert_ptr_equal(qs_wire_tx_find(txs[i].name, len), &txs[i]);
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field(txs[i].reply, 15);
		assert_non_null(f);
		assert_string_equal(f->name, "error");
		assert_ptr_equal(f->descriptor, &quics__error__descriptor);
		assert_null(protobuf_c_message_descriptor_get_field(txs[i].request, 15));
		lint_message(txs[i].request, 0);
		lint_message(txs[i].reply, 0);
	}
	const struct qs_wire_tx *t = qs_wire_tx_find("PLEASE_SYNC", 11);
	assert_non_null(t);
	assert_int_equal(t->opener, QS_WIRE_BY_CLIENT);
	assert_ptr_equal(t->request, &quics__please_sync_request__descriptor);
	assert_int_equal(qs_wire_tx_find("MUST_SYNC", 9)->opener, QS_WIRE_BY_SERVER);
	assert_int_equal(qs_wire_tx_find("FULL_SCAN", 9)->opener, QS_WIRE_BY_EITHER);
	assert_null(qs_wire_tx_find("PLEASE_SYN", 10));
	assert_null(qs_wire_tx_find("PLEASE_SYNCX", 12));
	assert_null(qs_wire_tx_find("please_sync", 11));
	lint_message(&quics__chunk_header__descriptor, 0);
	lint_message(&quics__sync_result__descriptor, 0);
}

static void test_error_code_mapping(void **state)
{
	(void)state;
	assert_int_equal(qs_wire_error_code(QS_EPROTO), QUICS__ERROR_CODE__ERROR_BAD_REQUEST);
	assert_int_equal(qs_wire_error_code(QS_E2BIG), QUICS__ERROR_CODE__ERROR_TOO_LARGE);
	assert_int_equal(qs_wire_error_code(QS_ENOENT), QUICS__ERROR_CODE__ERROR_NOT_FOUND);
	assert_int_equal(qs_wire_error_code(QS_ENOSPC), QUICS__ERROR_CODE__ERROR_NO_SPACE);
	assert_int_equal(qs_wire_error_code(QS_EPATH_EMPTY), QUICS__ERROR_CODE__ERROR_BAD_PATH);
	assert_int_equal(qs_wire_error_code(QS_EPATH_CONTROL), QUICS__ERROR_CODE__ERROR_BAD_PATH);
	assert_int_equal(qs_wire_error_code(QS_EIO), QUICS__ERROR_CODE__ERROR_INTERNAL);
	assert_int_equal(qs_wire_error_code(-1000), QUICS__ERROR_CODE__ERROR_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_please_sync_round_trip),
		cmocka_unit_test(test_reply_variants_round_trip),
		cmocka_unit_test(test_inline_and_chunk_header_round_trip),
		cmocka_unit_test(test_pack_size_limit),
		cmocka_unit_test(test_garbage_is_eproto),
		cmocka_unit_test(test_unknown_fields_are_tolerated),
		cmocka_unit_test(test_hash_fields_must_be_32_bytes),
		cmocka_unit_test(test_strings_must_be_utf8_without_nul),
		cmocka_unit_test(test_string_limit),
		cmocka_unit_test(test_repeated_limit),
		cmocka_unit_test(test_allocation_budget),
		cmocka_unit_test(test_enums_must_be_defined),
		cmocka_unit_test(test_error_reply_decodes_as_every_reply),
		cmocka_unit_test(test_transaction_table),
		cmocka_unit_test(test_error_code_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* qis-probe: a protocol-level client for end-to-end tests of the qis server. It speaks the
 * sync protocol directly (not through qic) so tests can send what a correct client never
 * would. Scenarios print key=value lines; exit 0 means every expectation held.
 *   accounts:  wrong server password refused; register; AUTH; a transaction before AUTH
 *              refused; root register/list/join with wrong and right passwords
 *   upload:    register + root, propose an inline file and a 9 MiB chunked file, re-propose
 *              (same content: no new version), a stale base (conflict), a second client
 *              receives MUST_SYNC with the bytes
 *   hostile:   hostile paths, inconsistent FileStates, chunks that do not match their hash:
 *              each gets an error reply and the server keeps serving
 *   overtaken: a push applied after a newer version was accepted is followed by the newer
 *              one; a push applied in order is not repeated */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "core/filestate.h"
#include "core/sha256.h"
#include "core/wire.h"
#include "net/chunkrun.h"
#include "net/quic.h"
#include "net/txmsg.h"

static uv_loop_t *loop;
static const char *host = "127.0.0.1", *fpr, *password, *scenario;
static uint16_t port;
static int failures;

#define EXPECT(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failures++;                                                                \
			printf("FAIL %s:%d: ", __func__, __LINE__);                                \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

/* ---- a client connection that the scenario drives step by step ------------------------- */

struct peer {
	struct qs_quic_client *cl;
	struct qs_conn *conn;
	uint64_t client_id;
	uint8_t token[32];
	/* MUST_SYNC received by this peer (the last one). */
	char must_path[256];
	uint64_t must_version;
	uint8_t must_sha[32]; /* SHA-256 of the received content */
	uint64_t must_bytes;
	int must_count;
	/* overtaken: the next MUST_SYNC is held unanswered until release_held. */
	bool hold;
	struct qs_tx *held_tx;
	struct must *held;
};

/* Runs the loop until cond becomes true or timeout_ms passes. */
static bool wait_until(bool *cond, uint64_t timeout_ms)
{
	uint64_t end = uv_now(loop) + timeout_ms;
	while (!*cond && uv_now(loop) < end) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
	return *cond;
}

/* Keeps the loop alive while waiting (uv_run ONCE blocks only with active handles). */
static uv_timer_t ticker;
static void tick_cb(uv_timer_t *t)
{
	(void)t;
}

static void on_connected(struct qs_conn *conn, void *arg)
{
	struct peer *p = arg;
	p->conn = conn;
}

static void on_disconnected(struct qs_conn *conn, int err, void *arg)
{
	(void)conn;
	(void)err;
	struct peer *p = arg;
	p->conn = NULL;
}

/* MUST_SYNC handling of a probe: want every chunk, hash what arrives, report. */
struct must {
	struct peer *p;
	struct qs_sha256 h;
	uint64_t bytes, version;
	char path[256];
	struct qs_chunk_rx rx;
	size_t chunks_left;
	bool got_req;
};

static void must_done(struct must *m, struct qs_tx *tx)
{
	Quics__SyncResult r = QUICS__SYNC_RESULT__INIT;
	r.outcome = QUICS__SYNC_OUTCOME__SYNC_OUTCOME_APPLIED;
	qs_tx_send_pb(tx, &r.base);
	qs_tx_finish(tx);
	qs_sha256_digest(&m->h, m->p->must_sha);
	m->p->must_bytes = m->bytes;
	m->p->must_version = m->version;
	snprintf(m->p->must_path, sizeof(m->p->must_path), "%s", m->path);
	m->p->must_count++;
}

static int must_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	struct must *m = arg;
	if (m->got_req)
		return qs_chunk_rx_header(&m->rx, d, len, NULL);
	m->got_req = true;
	ProtobufCMessage *msg;
	int rc = qs_wire_unpack(&quics__must_sync_request__descriptor, d, len, NULL, &msg);
	if (rc != 0)
		return rc;
	const Quics__MustSyncRequest *req = (const void *)msg;
	snprintf(m->path, sizeof(m->path), "%s", req->path);
	m->version = req->version;
	if (m->p->hold && req->state->inline_data.len > 0) {
		m->p->hold = false;
		m->p->held_tx = tx;
		m->p->held = m;
		qs_sha256_update(&m->h, req->state->inline_data.data, req->state->inline_data.len);
		m->bytes = req->state->inline_data.len;
		qs_wire_free(msg);
		return 0;
	}
	Quics__ChunkWant w = QUICS__CHUNK_WANT__INIT;
	ProtobufCBinaryData *hs = qs_calloc(req->state->n_manifest + 1, sizeof(*hs));
	if (req->state->inline_data.len > 0) {
		qs_sha256_update(&m->h, req->state->inline_data.data, req->state->inline_data.len);
		m->bytes = req->state->inline_data.len;
	} else {
		for (size_t i = 0; i < req->state->n_manifest; i++)
			hs[w.n_hashes++] = req->state->manifest[i]->hash;
	}
	w.hashes = hs;
	m->chunks_left = w.n_hashes;
	rc = qs_tx_send_pb(tx, &w.base);
	qs_free(hs);
	qs_wire_free(msg);
	if (rc == 0 && m->chunks_left == 0)
		must_done(m, tx);
	return rc;
}

static int must_data(struct qs_tx *tx, const uint8_t *d, size_t len, uint64_t off, uint64_t tot,
		     void *arg)
{
	(void)off;
	(void)tot;
	struct must *m = arg;
	bool done;
	int rc = qs_chunk_rx_data(&m->rx, d, len, &done);
	if (rc == 0 && done) {
		qs_sha256_update(&m->h, m->rx.data.data, m->rx.data.len);
		m->bytes += m->rx.data.len;
		if (--m->chunks_left == 0)
			must_done(m, tx);
	}
	return rc;
}

/* Answers the held (inline) MUST_SYNC now: applied. */
static void release_held(struct peer *p)
{
	Quics__ChunkWant w = QUICS__CHUNK_WANT__INIT;
	if (p->held_tx != NULL && qs_tx_send_pb(p->held_tx, &w.base) == 0)
		must_done(p->held, p->held_tx);
	p->held_tx = NULL;
	p->held = NULL;
}

static void must_close(struct qs_tx *tx, int err, void *arg)
{
	(void)err;
	struct must *m = arg;
	if (m->p->held_tx == tx) {
		m->p->held_tx = NULL;
		m->p->held = NULL;
	}
	qs_chunk_rx_release(&m->rx);
	qs_sha256_release(&m->h);
	qs_free(m);
}

static const struct qs_tx_ops must_ops = {
	.on_msg = must_msg, .on_data = must_data, .on_close = must_close};

static int on_tx_open(struct qs_conn *conn, struct qs_tx *tx, const char *name, void *arg)
{
	(void)conn;
	if (strcmp(name, "MUST_SYNC") != 0)
		return QS_ENOENT;
	struct must *m = qs_calloc(1, sizeof(*m));
	m->p = arg;
	qs_sha256_init(&m->h);
	qs_chunk_rx_init(&m->rx);
	qs_tx_set_ops(tx, &must_ops, m);
	return 0;
}

static void peer_connect(struct peer *p)
{
	struct qs_quic_client_config cfg;
	qs_quic_client_config_default(&cfg);
	cfg.host = host;
	cfg.port = port;
	cfg.pinned_fingerprint = fpr;
	cfg.on_connected = on_connected;
	cfg.on_disconnected = on_disconnected;
	cfg.on_tx_open = on_tx_open;
	cfg.arg = p;
	if (qs_quic_client_new(loop, &cfg, &p->cl) != 0) {
		printf("FAIL cannot create client\n");
		exit(1);
	}
	uint64_t end = uv_now(loop) + 10000;
	while (p->conn == NULL && uv_now(loop) < end) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
	if (p->conn == NULL) {
		printf("FAIL cannot connect\n");
		exit(1);
	}
}

/* ---- one request/reply transaction, synchronously from the scenario's point of view -------- */

struct rr {
	const ProtobufCMessageDescriptor *reply_desc;
	ProtobufCMessage *reply; /* decoded reply (or ErrorReply as reply_desc: field 15) */
	int err;                 /* transport-level result */
	bool closed;
	/* Chunks to send after a NeedChunks reply (PLEASE_SYNC). */
	const uint8_t *file;
	const struct qs_manifest *m;
	bool corrupt; /* flip one byte of each chunk sent */
	int replies;
	size_t need_count; /* chunks the server asked for */
};

static int rr_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	struct rr *r = arg;
	r->replies++;
	if (r->reply != NULL)
		qs_wire_free(r->reply);
	r->reply = NULL;
	int rc = qs_wire_unpack(r->reply_desc, d, len, NULL, &r->reply);
	if (rc != 0)
		return rc;
	if (r->reply_desc != &quics__please_sync_response__descriptor)
		return 0;
	const Quics__PleaseSyncResponse *ps = (const void *)r->reply;
	if (ps->result_case != QUICS__PLEASE_SYNC_RESPONSE__RESULT_NEED_CHUNKS)
		return r->replies == 1 ? qs_tx_finish(tx) : 0; /* a final answer: end our half */
	r->need_count = ps->need_chunks->n_hashes;
	/* Send the chunks asked for, from the file buffer. */
	for (size_t i = 0; i < ps->need_chunks->n_hashes; i++) {
		uint64_t off = 0;
		for (size_t k = 0; k < r->m->count; k++) {
			if (memcmp(r->m->chunks[k].sha256, ps->need_chunks->hashes[i].data, 32) ==
			    0) {
				size_t n = r->m->chunks[k].len_bytes;
				const uint8_t *src = r->file + off;
				if (r->corrupt) {
					uint8_t *copy = qs_malloc(n);
					memcpy(copy, src, n);
					copy[n / 2] ^= 0x55;
					qs_chunk_send(tx, r->m->chunks[k].sha256, copy, n, qs_free,
						      copy);
				} else {
					qs_chunk_send(tx, r->m->chunks[k].sha256, src, n, NULL,
						      NULL);
				}
				break;
			}
			off += r->m->chunks[k].len_bytes;
		}
	}
	qs_tx_finish(tx);
	return 0;
}

static void rr_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct rr *r = arg;
	r->err = err;
	r->closed = true;
}

static const struct qs_tx_ops rr_ops = {.on_msg = rr_msg, .on_close = rr_close};

/* Sends req on a new transaction `name`, waits for it to close; the reply is in r->reply. */
static void rr_run(struct peer *p, const char *name, const ProtobufCMessage *req, struct rr *r)
{
	struct qs_tx *tx;
	if (p->conn == NULL || qs_conn_open_tx(p->conn, name, &rr_ops, r, &tx) != 0) {
		r->err = QS_ECONN;
		return;
	}
	qs_tx_send_pb(tx, req);
	if (r->m == NULL || r->reply_desc != &quics__please_sync_response__descriptor)
		qs_tx_finish(tx);
	if (!wait_until(&r->closed, 20000))
		r->err = QS_ETIMEDOUT;
}

static void rr_free(struct rr *r)
{
	qs_wire_free(r->reply);
}

/* The error code of a reply (0 when none). */
static int reply_code(const struct rr *r)
{
	if (r->reply == NULL)
		return -1;
	const Quics__Error *e = qs_wire_reply_error(r->reply);
	return e != NULL ? (int)e->code : 0;
}

/* ---- steps ---------------------------------------------------------------------------------- */

static int do_register(struct peer *p, const char *pw, const char *name)
{
	Quics__RegisterClientRequest req = QUICS__REGISTER_CLIENT_REQUEST__INIT;
	req.server_password = (char *)pw;
	req.client_name = (char *)name;
	struct rr r = {.reply_desc = &quics__register_client_response__descriptor};
	rr_run(p, "REGISTER_CLIENT", &req.base, &r);
	int code = reply_code(&r);
	if (code == 0) {
		const Quics__RegisterClientResponse *resp = (const void *)r.reply;
		p->client_id = resp->client_id;
		memcpy(p->token, resp->token.data, 32);
	}
	rr_free(&r);
	return code;
}

static int do_auth(struct peer *p)
{
	Quics__AuthRequest req = QUICS__AUTH_REQUEST__INIT;
	req.client_id = p->client_id;
	req.token.data = p->token;
	req.token.len = 32;
	struct rr r = {.reply_desc = &quics__auth_response__descriptor};
	rr_run(p, "AUTH", &req.base, &r);
	int code = reply_code(&r);
	rr_free(&r);
	return code;
}

static int do_root(struct peer *p, const char *tx, const char *name, const char *pw,
		   uint64_t *root_id)
{
	struct rr r;
	memset(&r, 0, sizeof(r));
	int code;
	if (strcmp(tx, "REGISTER_ROOT") == 0) {
		Quics__RegisterRootRequest req = QUICS__REGISTER_ROOT_REQUEST__INIT;
		req.name = (char *)name;
		req.password = (char *)pw;
		r.reply_desc = &quics__register_root_response__descriptor;
		rr_run(p, tx, &req.base, &r);
		code = reply_code(&r);
		if (code == 0)
			*root_id = ((const Quics__RegisterRootResponse *)(const void *)r.reply)
					   ->root_id;
	} else {
		Quics__JoinRootRequest req = QUICS__JOIN_ROOT_REQUEST__INIT;
		req.name = (char *)name;
		req.password = (char *)pw;
		r.reply_desc = &quics__join_root_response__descriptor;
		rr_run(p, tx, &req.base, &r);
		code = reply_code(&r);
		if (code == 0)
			*root_id =
				((const Quics__JoinRootResponse *)(const void *)r.reply)->root_id;
	}
	rr_free(&r);
	return code;
}

/* Proposes path with content data[len] (a file) based on base; returns the reply code and
 * the accepted version or the conflict's server version in *version. */
static size_t last_need_count;

static int do_propose(struct peer *p, uint64_t root, const char *path, uint64_t base,
		      const uint8_t *data, size_t len, bool corrupt, uint64_t *version,
		      bool *conflict)
{
	struct qs_manifest m;
	qs_manifest_init(&m);
	for (size_t off = 0; off < len;) {
		size_t n = len - off < (1u << 20) ? len - off : (1u << 20); /* 1 MiB chunks */
		uint8_t h[32];
		qs_sha256(data + off, n, h);
		qs_manifest_append(&m, h, (uint32_t)n);
		off += n;
	}
	struct qs_filestate_out fs;
	bool small = len <= QS_WIRE_INLINE_MAX && len > 0;
	qs_filestate_out_init(&fs, QS_KIND_FILE, 0644, 1700000000000000000LL, &m,
			      small ? data : NULL, len, NULL);
	Quics__PleaseSyncRequest req = QUICS__PLEASE_SYNC_REQUEST__INIT;
	req.root_id = root;
	req.path = (char *)path;
	req.base_version = base;
	req.state = &fs.st;
	struct rr r = {.reply_desc = &quics__please_sync_response__descriptor};
	r.file = data;
	r.m = &m;
	r.corrupt = corrupt;
	rr_run(p, "PLEASE_SYNC", &req.base, &r);
	int code = reply_code(&r);
	*conflict = false;
	if (code == 0) {
		const Quics__PleaseSyncResponse *ps = (const void *)r.reply;
		if (ps->result_case == QUICS__PLEASE_SYNC_RESPONSE__RESULT_ACCEPTED)
			*version = ps->accepted->version;
		else if (ps->result_case == QUICS__PLEASE_SYNC_RESPONSE__RESULT_CONFLICT) {
			*version = ps->conflict->server_version;
			*conflict = true;
		} else {
			code = -2;
		}
	}
	last_need_count = r.need_count;
	qs_filestate_out_release(&fs);
	qs_manifest_release(&m);
	rr_free(&r);
	return code;
}

/* ---- scenarios ------------------------------------------------------------------------------ */

static void setup_peer(struct peer *p, const char *name)
{
	peer_connect(p);
	EXPECT(do_register(p, password, name) == 0, "register %s", name);
	EXPECT(do_auth(p) == 0, "auth %s", name);
}

static void scenario_accounts(void)
{
	struct peer a = {0}, b = {0};
	peer_connect(&a);
	EXPECT(do_register(&a, "wrong", "a") > 0, "a wrong server password is refused");
	uint64_t root;
	EXPECT(do_root(&a, "REGISTER_ROOT", "docs", "rootpw", &root) ==
		       QUICS__ERROR_CODE__ERROR_UNAUTHENTICATED,
	       "transactions before AUTH are refused");
	EXPECT(do_register(&a, password, "a") == 0, "register with the right password");
	uint64_t id = a.client_id;
	a.token[0] ^= 1;
	EXPECT(do_auth(&a) != 0, "AUTH with a wrong token is refused");
	a.token[0] ^= 1;
	EXPECT(do_auth(&a) == 0, "AUTH with the token");
	EXPECT(do_root(&a, "REGISTER_ROOT", "docs", "rootpw", &root) == 0, "register root");
	EXPECT(do_root(&a, "REGISTER_ROOT", "docs", "other", &root) != 0, "duplicate root name");
	setup_peer(&b, "b");
	EXPECT(b.client_id != id, "client ids differ");
	uint64_t joined = 0;
	EXPECT(do_root(&b, "JOIN_ROOT", "docs", "nope", &joined) != 0, "wrong root password");
	EXPECT(do_root(&b, "JOIN_ROOT", "nosuch", "rootpw", &joined) ==
		       QUICS__ERROR_CODE__ERROR_NOT_FOUND,
	       "unknown root");
	EXPECT(do_root(&b, "JOIN_ROOT", "docs", "rootpw", &joined) == 0 && joined == root,
	       "join with the root password");
	printf("client_a=%llu client_b=%llu root=%llu\n", (unsigned long long)id,
	       (unsigned long long)b.client_id, (unsigned long long)root);
}

static void scenario_upload(void)
{
	struct peer a = {0}, b = {0};
	setup_peer(&a, "a");
	setup_peer(&b, "b");
	uint64_t root, joined;
	EXPECT(do_root(&a, "REGISTER_ROOT", "photos", "pw", &root) == 0, "register root");
	EXPECT(do_root(&b, "JOIN_ROOT", "photos", "pw", &joined) == 0, "join root");
	uint64_t v;
	bool conflict;
	const char *small = "hello, world\n";
	EXPECT(do_propose(&a, root, "notes/hello.txt", 0, (const uint8_t *)small, strlen(small),
			  false, &v, &conflict) == 0 &&
		       !conflict && v == 1,
	       "inline file accepted as version 1 (got %llu)", (unsigned long long)v);
	uint64_t end = uv_now(loop) + 10000;
	while (b.must_count < 1 && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	uint8_t want[32];
	qs_sha256(small, strlen(small), want);
	EXPECT(b.must_count == 1 && strcmp(b.must_path, "notes/hello.txt") == 0 &&
		       b.must_version == 1 && memcmp(b.must_sha, want, 32) == 0,
	       "the other client received MUST_SYNC with the bytes");
	/* A 9 MiB file in 1 MiB chunks: the server asks for them, verifies, stores. */
	size_t big_len = 9u << 20;
	uint8_t *big = qs_malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	EXPECT(do_propose(&a, root, "big.bin", 0, big, big_len, false, &v, &conflict) == 0 &&
		       v == 1,
	       "chunked file accepted");
	end = uv_now(loop) + 20000;
	while (b.must_count < 2 && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	qs_sha256(big, big_len, want);
	EXPECT(b.must_count == 2 && b.must_bytes == big_len && memcmp(b.must_sha, want, 32) == 0,
	       "the other client received the 9 MiB file intact");
	/* Same content again with an old base: no conflict, no new version. */
	EXPECT(do_propose(&a, root, "big.bin", 0, big, big_len, false, &v, &conflict) == 0 &&
		       !conflict && v == 1,
	       "same content is not a conflict");
	/* A modification based on version 1 → version 2; then a stale one → conflict. */
	big[0] ^= 1;
	EXPECT(do_propose(&a, root, "big.bin", 1, big, big_len, false, &v, &conflict) == 0 &&
		       v == 2,
	       "modification is version 2");
	big[1] ^= 1;
	EXPECT(do_propose(&b, root, "big.bin", 1, big, big_len, false, &v, &conflict) == 0 &&
		       conflict && v == 2,
	       "a stale base with other content is a conflict");
	qs_free(big);
	printf("upload_ok=%d\n", failures == 0);
}

/* Runs the loop until p has answered n MUST_SYNCs or timeout_ms passes. */
static void wait_musts(struct peer *p, int n, uint64_t timeout_ms)
{
	uint64_t end = uv_now(loop) + timeout_ms;
	while (p->must_count < n && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
}

/* A push overtaken by a newer version: b holds the push of version 1, answers the push of
 * version 2, then applies version 1. The server must push version 2 again, or b would hold
 * version 1 as its copy for good (chaos seed 11026: a file of a moved directory). */
static void scenario_overtaken(void)
{
	struct peer a = {0}, b = {0};
	setup_peer(&a, "a");
	setup_peer(&b, "b");
	uint64_t root, joined, v;
	bool conflict;
	EXPECT(do_root(&a, "REGISTER_ROOT", "notes", "pw", &root) == 0, "register root");
	EXPECT(do_root(&b, "JOIN_ROOT", "notes", "pw", &joined) == 0, "join root");
	b.hold = true;
	const char *one = "version one\n", *two = "version two\n";
	EXPECT(do_propose(&a, root, "f.txt", 0, (const uint8_t *)one, strlen(one), false, &v,
			  &conflict) == 0 &&
		       v == 1,
	       "version 1 accepted");
	uint64_t end = uv_now(loop) + 10000;
	while (b.held_tx == NULL && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	EXPECT(b.held_tx != NULL, "b holds the push of version 1");
	EXPECT(do_propose(&a, root, "f.txt", 1, (const uint8_t *)two, strlen(two), false, &v,
			  &conflict) == 0 &&
		       v == 2,
	       "version 2 accepted");
	wait_musts(&b, 1, 10000);
	EXPECT(b.must_count == 1 && b.must_version == 2, "b applied the push of version 2");
	release_held(&b);
	EXPECT(b.must_count == 2 && b.must_version == 1, "b applied version 1 after it");
	wait_musts(&b, 3, 10000);
	uint8_t want[32];
	qs_sha256(two, strlen(two), want);
	EXPECT(b.must_count == 3 && b.must_version == 2 && memcmp(b.must_sha, want, 32) == 0,
	       "the server pushed version 2 again (pushes answered: %d, last version %llu)",
	       b.must_count, (unsigned long long)b.must_version);
	/* Applied in order, a push is not repeated. */
	EXPECT(do_propose(&a, root, "f.txt", 2, (const uint8_t *)one, strlen(one), false, &v,
			  &conflict) == 0 &&
		       v == 3,
	       "version 3 accepted");
	wait_musts(&b, 5, 2000);
	EXPECT(b.must_count == 4 && b.must_version == 3, "version 3 pushed once (%d)",
	       b.must_count);
	printf("overtaken_ok=%d\n", failures == 0);
}

static void scenario_hostile(void)
{
	struct peer a = {0};
	setup_peer(&a, "a");
	uint64_t root, v;
	bool conflict;
	EXPECT(do_root(&a, "REGISTER_ROOT", "h", "pw", &root) == 0, "register root");
	static const char *const paths[] = {"../x", "/etc/passwd", "a/../../x", "a//b",
					    "./a",  "a\\b",        "",          "C:/x"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int code = do_propose(&a, root, paths[i], 0, (const uint8_t *)"x", 1, false, &v,
				      &conflict);
		EXPECT(code == QUICS__ERROR_CODE__ERROR_BAD_PATH || code > 0,
		       "hostile path \"%s\" refused (code %d)", paths[i], code);
	}
	char longname[10001];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	EXPECT(do_propose(&a, root, longname, 0, (const uint8_t *)"x", 1, false, &v, &conflict) !=
		       0,
	       "a 10,000-byte name is refused");
	/* Chunks that do not match their hash. */
	size_t len = 3u << 20;
	uint8_t *data = qs_malloc(len);
	uint64_t x = 88172645463325252ULL; /* xorshift: no two 1 MiB chunks alike */
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		data[i] = (uint8_t)x;
	}
	EXPECT(do_propose(&a, root, "corrupt.bin", 0, data, len, true, &v, &conflict) ==
		       QUICS__ERROR_CODE__ERROR_BAD_REQUEST,
	       "chunks that do not match their hash are refused");
	/* Not a member of the root. */
	EXPECT(do_propose(&a, root + 1000, "x", 0, (const uint8_t *)"x", 1, false, &v, &conflict) !=
		       0,
	       "a root the client has not joined is refused");
	/* The server still serves: a good proposal works. */
	EXPECT(do_propose(&a, root, "fine.bin", 0, data, len, false, &v, &conflict) == 0 && v == 1,
	       "the server keeps serving after hostile input");
	/* Another client in another root proposes the same chunks: knowing the hashes is not
	 * enough, it must upload every chunk new to its root; within its root, not again. */
	struct peer b = {0};
	setup_peer(&b, "b");
	uint64_t other;
	EXPECT(do_root(&b, "REGISTER_ROOT", "other", "pw2", &other) == 0, "second root");
	EXPECT(do_propose(&b, other, "copy.bin", 0, data, len, false, &v, &conflict) == 0 &&
		       last_need_count == 3,
	       "chunks of another root are requested again (asked for %zu)", last_need_count);
	EXPECT(do_propose(&b, other, "copy2.bin", 0, data, len, false, &v, &conflict) == 0 &&
		       last_need_count == 0,
	       "chunks already in the root are not uploaded again (asked for %zu)",
	       last_need_count);
	qs_free(data);
}

/* After a kill -9 and restart following `upload`: the root, its membership rules and the
 * acknowledged version 2 of big.bin are still there. */
static void scenario_persisted(void)
{
	struct peer c = {0};
	setup_peer(&c, "c");
	uint64_t root, v;
	bool conflict;
	EXPECT(do_root(&c, "REGISTER_ROOT", "photos", "x", &root) ==
		       QUICS__ERROR_CODE__ERROR_ALREADY_EXISTS,
	       "the root survived the restart");
	EXPECT(do_root(&c, "JOIN_ROOT", "photos", "pw", &root) == 0, "join the surviving root");
	size_t big_len = 9u << 20;
	uint8_t *big = qs_malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (uint8_t)(i * 2654435761u >> 13);
	EXPECT(do_propose(&c, root, "big.bin", 0, big, big_len, false, &v, &conflict) == 0 &&
		       conflict && v == 2,
	       "version 2 of big.bin survived (got conflict=%d version=%llu)", conflict,
	       (unsigned long long)v);
	qs_free(big);
}

/* ---- abuse (issue 7): a well-behaved client's round trip while others misbehave ---------- */

/* Milliseconds of one LIST_ROOTS round trip of p. The loop also serves the abusers (they live
 * in this process), so this is an upper bound of what the server adds. */
static double rtt_ms(struct peer *p)
{
	uint64_t t0 = uv_hrtime();
	Quics__ListRootsRequest req = QUICS__LIST_ROOTS_REQUEST__INIT;
	struct rr r = {.reply_desc = &quics__list_roots_response__descriptor};
	rr_run(p, "LIST_ROOTS", &req.base, &r);
	int code = reply_code(&r);
	rr_free(&r);
	EXPECT(code == 0 && r.err == 0, "LIST_ROOTS answered (code %d, err %d)", code, r.err);
	return (double)(uv_hrtime() - t0) / 1e6;
}

/* Runs n round trips (at most 64); prints the median and the worst, returns the worst. */
static double rtt_report(struct peer *p, const char *during, int n)
{
	double t[64], worst = 0;
	n = n > 64 ? 64 : n;
	for (int i = 0; i < n; i++) {
		t[i] = rtt_ms(p);
		worst = t[i] > worst ? t[i] : worst;
	}
	for (int i = 1; i < n; i++) /* insertion sort for the median */
		for (int k = i; k > 0 && t[k - 1] > t[k]; k--) {
			double x = t[k];
			t[k] = t[k - 1];
			t[k - 1] = x;
		}
	printf("abuse: %-44s LIST_ROOTS median %.2f ms, worst %.2f ms (%d)\n", during, t[n / 2],
	       worst, n);
	return worst;
}

/* Transactions an abuser opens and then neglects: replies are read and dropped; how they
 * end is counted. */
struct idle {
	int replies, closed, stalled; /* stalled: canceled by the server's stall timeout */
};

static int idle_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	(void)d;
	(void)len;
	struct idle *n = arg;
	n->replies++;
	return 0;
}

static void idle_close(struct qs_tx *tx, int err, void *arg)
{
	struct idle *n = arg;
	n->closed++;
	if (err == QS_ECANCELED && qs_tx_error(tx) == QS_QUIC_ERR_STALLED)
		n->stalled++;
}

/* Runs the loop until n->stalled reaches want or ms pass; returns the milliseconds it took. */
static uint64_t wait_stalled(const struct idle *n, int want, uint64_t ms)
{
	uint64_t start = uv_now(loop);
	while (n->stalled < want && uv_now(loop) - start < ms) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
	return uv_now(loop) - start;
}

/* The server's stall timeout in this run (qis --stall-timeout, given to the probe as
 * QS_STALL_TIMEOUT_S by qis_test.py); 0 when unknown: nothing is asserted about it. */
static uint64_t stall_timeout_s(void)
{
	uint64_t s = 0;
	const char *env = getenv("QS_STALL_TIMEOUT_S");
	if (env == NULL || qs_parse_u64(env, 3600, &s) != 0)
		return 0;
	return s;
}

static const struct qs_tx_ops idle_ops = {.on_msg = idle_msg, .on_close = idle_close};

/* Closes a probe's client cleanly and frees it once its handles are closed. */
static int closing;

static void peer_closed(void *arg)
{
	qs_quic_client_free(arg);
	closing--;
}

static void peer_close(struct peer *p)
{
	if (p->cl == NULL)
		return;
	closing++;
	qs_quic_client_close(p->cl, peer_closed, p->cl);
	p->cl = NULL;
}

static void wait_closed(void)
{
	uint64_t end = uv_now(loop) + 10000;
	while (closing > 0 && uv_now(loop) < end) {
		uv_run(loop, UV_RUN_ONCE);
		uv_update_time(loop);
	}
	EXPECT(closing == 0, "every probe client closed (%d left)", closing);
}

#define ABUSE_CONNS 1000
/* The worst round trip allowed during an abuse: 2 s, or QS_ABUSE_RTT_MAX_MS (the sanitizer
 * build sets it higher: the abusers' handshakes run in this same process, several times
 * slower there, and their cost shows in the measured round trips). */
static double abuse_rtt_max_ms = 2000.0;
#define ABUSE_RTT_MAX_MS abuse_rtt_max_ms

/* 1,000 connections from this one address (the server keeps at most max_conns_per_ip). */
static void abuse_connections(struct peer *good)
{
	struct peer *many = qs_calloc(ABUSE_CONNS, sizeof(*many));
	for (int i = 0; i < ABUSE_CONNS; i++) {
		struct qs_quic_client_config cfg;
		qs_quic_client_config_default(&cfg);
		cfg.host = host;
		cfg.port = port;
		cfg.pinned_fingerprint = fpr;
		cfg.reconnect = false;
		cfg.on_connected = on_connected;
		cfg.on_disconnected = on_disconnected;
		cfg.arg = &many[i];
		if (qs_quic_client_new(loop, &cfg, &many[i].cl) != 0)
			break;
	}
	EXPECT(rtt_report(good, "during 1000 connection attempts", 20) < ABUSE_RTT_MAX_MS,
	       "round trips stay fast during the connection storm");
	bool never = false;
	wait_until(&never, 3000);
	int up = 0;
	for (int i = 0; i < ABUSE_CONNS; i++)
		up += many[i].conn != NULL;
	printf("abuse: %d of %d connections from one address are up\n", up, ABUSE_CONNS);
	EXPECT(up < ABUSE_CONNS, "the server bounds connections per address (%d up)", up);
	EXPECT(rtt_report(good, "with every allowed connection held", 20) < ABUSE_RTT_MAX_MS,
	       "round trips stay fast while the connections are held");
	for (int i = 0; i < ABUSE_CONNS; i++)
		peer_close(&many[i]);
	wait_closed();
	qs_free(many);
}

/* One connection opens transactions without end and never sends a request in them. */
static void abuse_streams(struct peer *good)
{
	struct peer s = {0};
	setup_peer(&s, "streams");
	struct idle n = {0};
	int opened = 0;
	for (int i = 0; i < 5000 && s.conn != NULL; i++) {
		struct qs_tx *tx;
		/* Over the server's stream limit they wait in this client's transport. */
		opened += qs_conn_open_tx(s.conn, "LIST_ROOTS", &idle_ops, &n, &tx) == 0;
		if (i % 100 == 99) {
			bool never = false;
			wait_until(&never, 10);
		}
	}
	printf("abuse: transactions opened and left without a request: %d\n", opened);
	EXPECT(rtt_report(good, "while another connection holds every stream", 20) <
		       ABUSE_RTT_MAX_MS,
	       "round trips stay fast while streams are held open");
	uint64_t stall = stall_timeout_s();
	if (stall > 0) {
		/* The server cancels the ones it holds after the stall timeout; the stream credit
		 * that frees lets the next ones in, which stall in turn. */
		uint64_t took = wait_stalled(&n, 200, (stall * 2 + 10) * 1000);
		printf("abuse: %d of them canceled as stalled by the server after %llu ms "
		       "(stall timeout %llu s)\n",
		       n.stalled, (unsigned long long)took, (unsigned long long)stall);
		EXPECT(n.stalled >= 200, "the server cancels idle transactions (%d)", n.stalled);
		EXPECT(n.replies == 0, "no idle transaction was answered (%d)", n.replies);
	}
	peer_close(&s);
	wait_closed();
}

/* Slow loris: PLEASE_SYNC of files whose chunks are then never sent. */
static void abuse_slow_loris(struct peer *good)
{
	struct peer l = {0};
	setup_peer(&l, "loris");
	uint64_t root;
	EXPECT(do_root(&l, "REGISTER_ROOT", "loris", "pw", &root) == 0, "loris root");
	uint8_t h[32];
	struct idle n = {0};
	int started = 0;
	for (int i = 0; i < 100 && l.conn != NULL; i++) {
		struct qs_manifest m;
		qs_manifest_init(&m);
		for (int k = 0; k < 4; k++) {
			uint8_t seed[8] = {(uint8_t)i, (uint8_t)k, 'l', 'o', 'r', 'i', 's', 0};
			qs_sha256(seed, sizeof(seed), h);
			qs_manifest_append(&m, h, 1u << 20);
		}
		struct qs_filestate_out fs;
		qs_filestate_out_init(&fs, QS_KIND_FILE, 0644, 1700000000000000000LL, &m, NULL, 0,
				      NULL);
		char path[32];
		snprintf(path, sizeof(path), "slow-%d.bin", i);
		Quics__PleaseSyncRequest req = QUICS__PLEASE_SYNC_REQUEST__INIT;
		req.root_id = root;
		req.path = path;
		req.state = &fs.st;
		struct qs_tx *tx;
		if (qs_conn_open_tx(l.conn, "PLEASE_SYNC", &idle_ops, &n, &tx) == 0) {
			started += qs_tx_send_pb(tx, &req.base) == 0;
		}
		qs_filestate_out_release(&fs);
		qs_manifest_release(&m);
	}
	bool never = false;
	wait_until(&never, 1000);
	printf("abuse: %d uploads started and never finished (%d answers: chunk requests)\n",
	       started, n.replies);
	EXPECT(rtt_report(good, "while 100 uploads wait for chunks forever", 20) < ABUSE_RTT_MAX_MS,
	       "round trips stay fast during the slow loris");
	uint64_t stall = stall_timeout_s();
	if (stall > 0) {
		uint64_t took = wait_stalled(&n, started, (stall + 10) * 1000);
		printf("abuse: %d of %d uploads canceled as stalled by the server after %llu ms "
		       "more (stall timeout %llu s)\n",
		       n.stalled, started, (unsigned long long)took, (unsigned long long)stall);
		EXPECT(n.stalled == started, "the server cancels every stalled upload (%d of %d)",
		       n.stalled, started);
		EXPECT(rtt_report(good, "after the stalled uploads were canceled", 20) <
			       ABUSE_RTT_MAX_MS,
		       "round trips stay fast after the cancels");
	}
	peer_close(&l);
	wait_closed();
}

static void scenario_abuse(void)
{
	uint64_t max_ms;
	const char *env = getenv("QS_ABUSE_RTT_MAX_MS");
	if (env != NULL && qs_parse_u64(env, 3600000, &max_ms) == 0)
		abuse_rtt_max_ms = (double)max_ms;
	struct peer good = {0};
	setup_peer(&good, "good");
	rtt_report(&good, "baseline", 20);
	abuse_connections(&good);
	abuse_streams(&good);
	abuse_slow_loris(&good);
	EXPECT(rtt_report(&good, "after the abuse", 20) < ABUSE_RTT_MAX_MS,
	       "the server serves normally afterwards");
}

int main(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		uint64_t n;
		if (strcmp(argv[i], "--host") == 0)
			host = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0 &&
			 qs_parse_u64(argv[i + 1], 65535, &n) == 0)
			port = (uint16_t)n;
		else if (strcmp(argv[i], "--fingerprint") == 0)
			fpr = argv[i + 1];
		else if (strcmp(argv[i], "--password") == 0)
			password = argv[i + 1];
		else if (strcmp(argv[i], "--scenario") == 0)
			scenario = argv[i + 1];
		else {
			fprintf(stderr, "qis-probe: bad option %s\n", argv[i]);
			return 2;
		}
	}
	if (port == 0 || password == NULL || scenario == NULL) {
		fprintf(stderr, "usage: qis-probe --port P --password PW --scenario S "
				"[--fingerprint F]\n");
		return 2;
	}
	loop = uv_default_loop();
	uv_timer_init(loop, &ticker);
	uv_timer_start(&ticker, tick_cb, 50, 50);
	if (strcmp(scenario, "accounts") == 0)
		scenario_accounts();
	else if (strcmp(scenario, "upload") == 0)
		scenario_upload();
	else if (strcmp(scenario, "hostile") == 0)
		scenario_hostile();
	else if (strcmp(scenario, "overtaken") == 0)
		scenario_overtaken();
	else if (strcmp(scenario, "persisted") == 0)
		scenario_persisted();
	else if (strcmp(scenario, "abuse") == 0)
		scenario_abuse();
	else {
		fprintf(stderr, "qis-probe: unknown scenario %s\n", scenario);
		return 2;
	}
	printf("failures=%d\n", failures);
	return failures == 0 ? 0 : 1;
}

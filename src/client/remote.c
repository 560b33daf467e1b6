/* LIST_ROOTS on the client (`qic connect list-remote`): asks the server for its roots page by
 * page over the engine's connection, following next_cursor until it is empty. Owns the list
 * it gathers until the done callback returns. A server that repeats or rewinds its cursor, or
 * lists more than QIC_REMOTE_MAX roots, ends the listing with an error instead of looping. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "client/engine.h"
#include "net/txmsg.h"

#define REMOTE_NAME_MAX 1024 /* bytes of a cursor we keep (root names are shorter) */
#define REMOTE_PAGE 50       /* roots asked for per LIST_ROOTS */

struct listing {
	struct qic_engine *e;
	qic_remote_fn done;
	void *done_arg;
	struct qic_remote_root *roots;
	size_t n, cap;
	char cursor[REMOTE_NAME_MAX + 1]; /* the next page starts after this name */
	bool answered, more;
	int err;
	char message[256];
};

static void listing_end(struct listing *l, int err, const char *message)
{
	if (err != 0)
		l->done(l->done_arg, err, message, NULL, 0);
	else
		l->done(l->done_arg, 0, "", l->roots, l->n);
	for (size_t i = 0; i < l->n; i++)
		qs_free(l->roots[i].name);
	qs_free(l->roots);
	qs_free(l);
}

static int add_root(struct listing *l, const Quics__RootInfo *ri)
{
	if (l->n == QIC_REMOTE_MAX)
		return QS_E2BIG;
	int rc = qs_array_reserve((void **)&l->roots, &l->cap, l->n + 1, sizeof(*l->roots));
	if (rc != 0)
		return rc;
	struct qic_remote_root *r = &l->roots[l->n];
	r->name = qs_strdup(ri->name);
	if (r->name == NULL)
		return QS_ENOMEM;
	r->root_id = ri->root_id;
	r->joined = ri->joined;
	l->n++;
	return 0;
}

/* Takes one page; a next cursor must sort after the previous one (byte order). */
static int take_page(struct listing *l, const Quics__ListRootsResponse *resp)
{
	if (resp->error != NULL) {
		snprintf(l->message, sizeof(l->message), "the server refused: %s",
			 resp->error->message);
		return QS_EACCES;
	}
	for (size_t i = 0; i < resp->n_roots; i++) {
		int rc = add_root(l, resp->roots[i]);
		if (rc != 0)
			return rc;
	}
	const char *next = resp->next_cursor;
	l->more = next[0] != '\0';
	if (!l->more)
		return 0;
	if (strlen(next) > REMOTE_NAME_MAX || strcmp(next, l->cursor) <= 0)
		return QS_EPROTO;
	memcpy(l->cursor, next, strlen(next) + 1);
	return 0;
}

static int list_on_msg(struct qs_tx *tx, const uint8_t *d, size_t len, void *arg)
{
	(void)tx;
	struct listing *l = arg;
	if (l->answered)
		return QS_EPROTO;
	l->answered = true;
	ProtobufCMessage *m;
	int rc = qs_wire_unpack(&quics__list_roots_response__descriptor, d, len, NULL, &m);
	if (rc != 0) {
		l->err = rc;
		return rc;
	}
	rc = take_page(l, (const Quics__ListRootsResponse *)m);
	qs_wire_free(m);
	if (rc != 0)
		l->err = rc;
	return rc == QS_EACCES ? 0 : rc;
}

static void request_page(struct listing *l);

static void list_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	struct listing *l = arg;
	int rc = l->err != 0 ? l->err : err != 0 ? err : l->answered ? 0 : QS_EPROTO;
	if (rc != 0) {
		if (l->message[0] == '\0')
			snprintf(l->message, sizeof(l->message),
				 "listing the server's roots failed: %s", qs_strerror(rc));
		listing_end(l, rc, l->message);
		return;
	}
	if (l->more)
		request_page(l);
	else
		listing_end(l, 0, "");
}

static const struct qs_tx_ops list_ops = {.on_msg = list_on_msg, .on_close = list_on_close};

static void request_page(struct listing *l)
{
	struct qs_conn *conn = qic_engine_conn(l->e);
	if (conn == NULL) {
		listing_end(l, QS_ECONN, "not connected to a server (qic connect server first)");
		return;
	}
	l->answered = false;
	l->more = false;
	struct qs_tx *tx;
	int rc = qs_conn_open_tx(conn, "LIST_ROOTS", &list_ops, l, &tx);
	if (rc != 0) {
		listing_end(l, rc, "cannot ask the server");
		return;
	}
	Quics__ListRootsRequest req = QUICS__LIST_ROOTS_REQUEST__INIT;
	req.cursor = l->cursor;
	req.limit = REMOTE_PAGE;
	if (qs_tx_send_pb(tx, &req.base) != 0 || qs_tx_finish(tx) != 0)
		qs_tx_cancel(tx, QS_QUIC_ERR_INTERNAL); /* on_close ends the listing */
}

void qic_engine_list_remote(struct qic_engine *e, qic_remote_fn done, void *arg)
{
	struct listing *l = qs_calloc(1, sizeof(*l));
	if (l == NULL) {
		done(arg, QS_ENOMEM, "out of memory", NULL, 0);
		return;
	}
	l->e = e;
	l->done = done;
	l->done_arg = arg;
	qs_debug("client", "event=list_remote");
	request_page(l);
}

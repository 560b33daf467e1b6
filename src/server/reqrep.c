/* Request/reply transactions (see reqrep.h). */
#include "server/reqrep.h"

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/txmsg.h"

static void req_free(struct qis_req *r)
{
	qs_free(r->data);
	qs_free(r);
}

static int req_on_msg(struct qs_tx *tx, const uint8_t *p, size_t len, void *arg)
{
	(void)tx;
	struct qis_req *r = arg;
	if (r->got_request)
		return QS_EPROTO; /* one request per transaction */
	r->got_request = true;
	ProtobufCMessage *msg;
	int rc = qs_wire_unpack(r->desc, p, len, NULL, &msg);
	if (rc != 0) {
		qis_reply_error(r, rc, "malformed request");
		return 0;
	}
	rc = r->fn(r, msg);
	qs_wire_free(msg);
	if (rc != 0)
		qis_reply_error(r, rc, qs_strerror(rc));
	return 0;
}

static int req_on_end(struct qs_tx *tx, void *arg)
{
	(void)tx;
	struct qis_req *r = arg;
	if (!r->got_request)
		qis_reply_error(r, QS_EPROTO, "no request");
	return 0;
}

static void req_on_close(struct qs_tx *tx, int err, void *arg)
{
	(void)tx;
	(void)err;
	struct qis_req *r = arg;
	r->tx = NULL;
	r->s = NULL;
	if (!r->async_pending)
		req_free(r);
}

static const struct qs_tx_ops req_ops = {
	.on_msg = req_on_msg,
	.on_end = req_on_end,
	.on_close = req_on_close,
};

int qis_req_accept(struct qis_session *s, struct qs_tx *tx, const ProtobufCMessageDescriptor *desc,
		   qis_req_fn fn)
{
	struct qis_req *r = qs_calloc(1, sizeof(*r));
	if (r == NULL)
		return QS_ENOMEM;
	r->s = s;
	r->tx = tx;
	r->generation = s->generation;
	r->desc = desc;
	r->fn = fn;
	qs_tx_set_ops(tx, &req_ops, r);
	return 0;
}

void qis_reply(struct qis_req *r, const ProtobufCMessage *msg)
{
	if (r->tx == NULL || r->replied)
		return;
	r->replied = true;
	if (qs_tx_send_pb(r->tx, msg) != 0 || qs_tx_finish(r->tx) != 0)
		qs_tx_cancel(r->tx, QS_QUIC_ERR_INTERNAL);
}

void qis_reply_error(struct qis_req *r, int err, const char *message)
{
	if (r->tx == NULL || r->replied)
		return;
	r->replied = true;
	if (qs_tx_send_error(r->tx, qs_wire_error_code(err), message) != 0)
		qs_tx_cancel(r->tx, QS_QUIC_ERR_INTERNAL);
}

void qis_req_async_start(struct qis_req *r)
{
	r->async_pending = true;
}

bool qis_req_async_done(struct qis_req *r)
{
	r->async_pending = false;
	if (r->tx == NULL) {
		req_free(r);
		return false;
	}
	return true;
}

static const struct qs_tx_ops drain_ops = {0};

int qis_refuse_unauthenticated(struct qs_tx *tx)
{
	qs_tx_set_ops(tx, &drain_ops, NULL);
	return qs_tx_send_error(tx, QUICS__ERROR_CODE__ERROR_UNAUTHENTICATED,
				"authenticate first (AUTH)");
}

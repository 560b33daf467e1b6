/* Request/reply transactions of the server: the first MSG is unpacked with the transaction's
 * request descriptor and handed to a handler, which replies (now, or later from async work)
 * with qis_reply / qis_reply_error. The context outlives the transaction while async work
 * is pending, so late results never touch a freed transaction. Loop thread only. */
#ifndef QS_SERVER_REQREP_H
#define QS_SERVER_REQREP_H

#include "core/wire.h"
#include "server/daemon.h"

struct qis_req;

/* Handles the unpacked request (borrowed until the handler returns). Returns 0 if it replied
 * or will reply later, or a negative QS_E* to send as an error reply. */
typedef int (*qis_req_fn)(struct qis_req *r, const ProtobufCMessage *msg);

struct qis_req {
	struct qis_session *s; /* NULL once the transaction is gone */
	struct qs_tx *tx;      /* NULL once the transaction is gone */
	uint64_t generation;
	const ProtobufCMessageDescriptor *desc;
	qis_req_fn fn;
	bool got_request, replied, async_pending;
	void *data; /* handler state, freed with qs_free when the req is freed */
};

/* Accepts tx as a request/reply transaction handled by fn. Errors: QS_ENOMEM. */
int qis_req_accept(struct qis_session *s, struct qs_tx *tx, const ProtobufCMessageDescriptor *desc,
		   qis_req_fn fn);
/* Sends msg as the reply and finishes. No-op if the transaction is gone. */
void qis_reply(struct qis_req *r, const ProtobufCMessage *msg);
/* Sends an ErrorReply for err (a QS_E* code) with message, and finishes. */
void qis_reply_error(struct qis_req *r, int err, const char *message);
/* Answers a transaction of a session that has not authenticated: ERROR_UNAUTHENTICATED,
 * and whatever the peer sends next is ignored. */
int qis_refuse_unauthenticated(struct qs_tx *tx);

/* Async work: mark before queueing, call qis_req_async_done when it is back on the loop
 * (frees the req if the transaction is gone). Returns false if the req was freed. */
void qis_req_async_start(struct qis_req *r);
bool qis_req_async_done(struct qis_req *r);

#endif

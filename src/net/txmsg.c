/* Protobuf messages on transactions (see txmsg.h). Messages are packed through
 * core/wire.h so the size limit and encoding are the codec's, then the frame's payload is
 * handed to the transport (which writes its own frame header). */
#include "net/txmsg.h"

#include "base/buf.h"
#include "base/err.h"
#include "core/frame.h"

int qs_tx_send_pb(struct qs_tx *tx, const ProtobufCMessage *msg)
{
	struct qs_buf b;
	qs_buf_init(&b, QS_FRAME_MSG_MAX + QS_FRAME_HEADER_LEN);
	int rc = qs_wire_pack(&b, msg);
	if (rc == 0)
		rc = qs_tx_send_msg(tx, b.data + QS_FRAME_HEADER_LEN, b.len - QS_FRAME_HEADER_LEN);
	qs_buf_release(&b);
	return rc;
}

int qs_tx_send_error(struct qs_tx *tx, Quics__ErrorCode code, const char *message)
{
	struct qs_buf b;
	qs_buf_init(&b, QS_FRAME_MSG_MAX + QS_FRAME_HEADER_LEN);
	int rc = qs_wire_pack_error(&b, code, message);
	if (rc == 0)
		rc = qs_tx_send_msg(tx, b.data + QS_FRAME_HEADER_LEN, b.len - QS_FRAME_HEADER_LEN);
	qs_buf_release(&b);
	if (rc == 0)
		rc = qs_tx_finish(tx);
	return rc;
}

/* Protobuf messages on transactions: pack a message into one MSG frame of a transaction,
 * and send an error reply. Unpacking is core/wire.h's qs_wire_unpack. Loop thread only. */
#ifndef QS_NET_TXMSG_H
#define QS_NET_TXMSG_H

#include "core/wire.h"
#include "net/quic.h"

/* Sends msg as one MSG frame on tx. Errors: QS_E2BIG (over the frame limit), QS_ENOMEM,
 * and qs_tx_send_msg's. */
int qs_tx_send_pb(struct qs_tx *tx, const ProtobufCMessage *msg);

/* Sends an ErrorReply (code, message) and finishes our half. Errors as qs_tx_send_pb. */
int qs_tx_send_error(struct qs_tx *tx, Quics__ErrorCode code, const char *message);

#endif

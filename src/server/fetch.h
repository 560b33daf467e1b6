/* Serving one stored state to a client: the flow shared by MUST_SYNC, FORCE_SYNC,
 * HISTORY_DOWNLOAD and CONFLICT_DOWNLOAD (docs/wire.md). The server sends a message carrying
 * the FileState (small files inline), the client answers with a ChunkWant, the server sends
 * those chunks (only chunks of this state) and ends its direction; in the push flows the
 * client's SyncResult follows and is logged. Loop thread only. */
#ifndef QS_SERVER_FETCH_H
#define QS_SERVER_FETCH_H

#include "core/wire.h"
#include "server/daemon.h"

/* Sends the first message of the flow on tx around st (borrowed during the call): a
 * HistoryDownloadResponse, a ConflictDownloadResponse, a MustSyncRequest... Returns 0 or a
 * QS_E* (then the transaction is cancelled). */
typedef int (*qis_fetch_first_fn)(struct qs_tx *tx, const Quics__FileState *st, void *arg);

/* Serves file f (borrowed; its manifest bytes are copied) of root path on tx, which the
 * caller accepted and whose request it has read: first(tx, state, arg) is called at once,
 * then tx's ops are replaced (the caller's ops get no more callbacks, not even on_close: it
 * frees its own context). expect_result: the peer ends with a SyncResult (push flows).
 * Errors (nothing was sent, the caller still owns tx): QS_ENOMEM, QS_EIO (an undecodable
 * stored manifest), first's error. */
int qis_fetch_serve(struct qis_daemon *d, struct qs_tx *tx, const char *path,
		    const struct qs_meta_file *f, bool expect_result, qis_fetch_first_fn first,
		    void *arg);

/* Opens a server transaction tx_name ("MUST_SYNC", "FORCE_SYNC") toward session s and
 * serves f (version, the current version of root_id/path) on it as qis_fetch_serve with
 * expect_result; a chunk the store cannot give is asked back from the members
 * (qis_need_content). A client that applied it after a newer version was accepted gets
 * that one pushed too. Errors: as qis_fetch_serve, and the transport's (QS_ECONN...). */
int qis_fetch_open(struct qis_session *s, const char *tx_name, uint64_t root_id, const char *path,
		   uint64_t version, const struct qs_meta_file *f, qis_fetch_first_fn first,
		   void *arg);

/* Looks up what a download request asks for (the request is unpacked and borrowed): f and
 * *manifest as qs_meta_entry fills them (caller-side frees *manifest with qs_free). Returns
 * 0 or a QS_E* sent to the client as an error reply (QS_ENOENT: ERROR_NOT_FOUND...). */
typedef int (*qis_download_lookup_fn)(struct qis_session *s, const ProtobufCMessage *req,
				      struct qs_meta_file *f, uint8_t **manifest);

/* Accepts tx as a download transaction (HISTORY_DOWNLOAD, CONFLICT_DOWNLOAD): its request
 * is unpacked with req_desc, lookup finds the state, then it is served with first (which
 * sends the response message) and no SyncResult. Errors: QS_ENOMEM. */
int qis_download_accept(struct qis_session *s, struct qs_tx *tx,
			const ProtobufCMessageDescriptor *req_desc, qis_download_lookup_fn lookup,
			qis_fetch_first_fn first);

/* FORCE_SYNC of the current entry of root/path to every connected member of the root,
 * including the one that caused it (by_client, the author named in the request). */
void qis_force_version(struct qis_daemon *d, uint64_t by_client, uint64_t root_id, const char *path,
		       Quics__ForceReason reason);

#endif

/* Repair after an unclean stop (docs/index.md, "durability of received files"): received
 * files whose durability batch was not synced are verified against their hashes; a damaged
 * or missing one is removed and forgotten by the index, so that the server sends it again
 * (FULL_SCAN at connect) and it is never proposed as a user's change. */
#ifndef QS_CLIENT_REPAIR_H
#define QS_CLIENT_REPAIR_H

#include <stddef.h>

#include "core/version.h"

struct qic_engine;

enum qic_repair_verdict {
	QIC_REPAIR_INTACT = 1,  /* path holds want */
	QIC_REPAIR_DAMAGED = 2, /* a regular file with other content (now removed), or nothing */
	QIC_REPAIR_OTHER = 3,   /* a directory or symlink is there now: not ours, left alone */
};

/* Verifies root-relative path (beneath root_fd, no symlink followed) against want, the
 * content identity of a file this client received, and removes a damaged file. *out is
 * written on success. Errors: QS_EAGAIN (the file changes while being read), QS_EACCES,
 * QS_EIO, QS_ENOMEM, and those of unlinking. Runs on the caller's thread; reads the file. */
int qic_repair_verify(int root_fd, const char *path, const struct qs_content *want,
		      enum qic_repair_verdict *out);

/* Verifies every not-durable entry of e's roots (qic_repair_verify) and drops the index
 * entry of each damaged one. On the loop, at start, before any proposal runs. *checked and
 * *repaired count the entries verified and repaired. Errors: those of the index. */
int qic_repair_pending(struct qic_engine *e, size_t *checked, size_t *repaired);

#endif

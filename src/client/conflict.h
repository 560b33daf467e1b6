/* The conflict part of the qic daemon's REST API (conflict.c): list a server's open
 * conflicts on every synced root, download a candidate, choose one. Each route runs the
 * server transactions (CONFLICT_LIST / CONFLICT_DOWNLOAD / CONFLICT_CHOOSE) on the engine's
 * connection and answers when they are done. Loop thread only. */
#ifndef QS_CLIENT_CONFLICT_H
#define QS_CLIENT_CONFLICT_H

#include <stddef.h>

#include "client/engine.h"
#include "net/http.h"

/* Appends the conflict routes to out[*n..cap) (advancing *n). Errors: QS_E2BIG. */
int qic_conflict_routes(struct qic_engine *e, struct qs_http_route *out, size_t cap, size_t *n);

#endif

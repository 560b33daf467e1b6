/* The qic daemon's REST routes (api.c) over the engine. */
#ifndef QS_CLIENT_API_H
#define QS_CLIENT_API_H

#include <stddef.h>

#include "client/engine.h"
#include "net/http.h"

#define QIC_API_MAX_ROUTES 48

/* The HTTP status and the short error code word the REST API answers a QS_E* with. */
unsigned qic_api_status(int err);
const char *qic_api_code(int err);

/* Fills out[0..*n) with the routes, each bound to e. Errors: QS_E2BIG (cap too small). */
int qic_api_routes(struct qic_engine *e, struct qs_http_route *out, size_t cap, size_t *n);

#endif

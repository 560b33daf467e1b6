/* The qic daemon's own REST routes (api_daemon.c), beside the sync routes of api.h: the
 * client's configuration (GET /v1/config, GET /v1/config/server), the roots on the server
 * (GET /v1/server/roots) and a clean stop (POST /v1/stop). */
#ifndef QS_CLIENT_API_DAEMON_H
#define QS_CLIENT_API_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "client/engine.h"
#include "net/http.h"

#define QIC_API_DAEMON_ROUTES 4

/* What the daemon process knows about itself; borrowed by the routes (must outlive the HTTP
 * server). */
struct qic_api_daemon {
	struct qic_engine *e;
	const char *config_dir, *data_dir; /* absolute */
	const char *log_path;              /* the log of a detached daemon, or NULL */
	uint16_t rest_port;                /* set once the HTTP server is bound */
	long pid;
	/* Asks the daemon to stop after the current answer is sent (loop thread). */
	void (*stop)(void *arg);
	void *stop_arg;
};

/* Fills out[0..*n) with the routes, each bound to d. Errors: QS_E2BIG (cap too small). */
int qic_api_daemon_routes(struct qic_api_daemon *d, struct qs_http_route *out, size_t cap,
			  size_t *n);

#endif

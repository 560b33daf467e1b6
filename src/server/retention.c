/* Retention and chunk garbage collection on the server (docs/server.md, "Retention"). On
 * start and then every RETENTION_INTERVAL_MS, on the loop thread: a PRUNE command applies
 * the policy (keep all by default), then every chunk that no stored version (or other
 * reference source, qs_meta_chunk_refs) names, that no upload in flight has pinned, and
 * that is older than the grace period is deleted (store/chunks.h). Running on the loop
 * means no command can commit between the reference snapshot and the deletions; the pins
 * cover the proposals whose chunks arrived but whose version is not committed yet. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "server/daemon.h"

#define RETENTION_INTERVAL_MS ((uint64_t)3600 * 1000)

struct qis_retention {
	struct qis_daemon *d;
	uv_timer_t timer;
};

/* The referenced hashes, sorted for bsearch. */
struct refs {
	uint8_t (*h)[QS_SHA256_LEN];
	size_t n, cap;
};

static int refs_add(void *arg, const uint8_t hash[32])
{
	struct refs *r = arg;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 1024;
		void *nh = qs_realloc(r->h, cap * sizeof(*r->h));
		if (nh == NULL)
			return QS_ENOMEM;
		r->h = nh;
		r->cap = cap;
	}
	memcpy(r->h[r->n++], hash, QS_SHA256_LEN);
	return 0;
}

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, QS_SHA256_LEN);
}

static bool refs_live(void *arg, const uint8_t hash[QS_SHA256_LEN])
{
	const struct refs *r = arg;
	return r->n > 0 && bsearch(hash, r->h, r->n, sizeof(*r->h), hash_cmp) != NULL;
}

int qis_retention_run(struct qis_daemon *d, struct qs_chunks_gc_stats *stats)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct qs_meta_cmd cmd;
	memset(&cmd, 0, sizeof(cmd));
	cmd.type = QS_CMD_PRUNE;
	cmd.now_unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	cmd.u.prune.keep_versions = d->cfg.keep_versions;
	cmd.u.prune.keep_days = d->cfg.keep_days;
	struct qs_meta_result res;
	int rc = qs_meta_apply(d->meta, &cmd, &res);
	if (rc == 0 && res.pruned > 0)
		qs_info("server", "event=prune versions=%llu keep_versions=%u keep_days=%u",
			(unsigned long long)res.pruned, d->cfg.keep_versions, d->cfg.keep_days);
	struct refs r = {0};
	if (rc == 0)
		rc = qs_meta_chunk_refs(d->meta, refs_add, &r);
	if (rc == 0) {
		if (r.n > 0)
			qsort(r.h, r.n, sizeof(*r.h), hash_cmp);
		rc = qs_chunks_gc(d->chunks, refs_live, &r, (int64_t)ts.tv_sec - d->cfg.gc_grace_s,
				  stats);
	}
	qs_free(r.h);
	if (rc != 0)
		qs_warn("server", "event=retention_failed err=%s", qs_strerror(rc));
	return rc;
}

static void retention_tick(uv_timer_t *t)
{
	struct qis_retention *rt = t->data;
	qis_retention_run(rt->d, NULL); /* QS_ESTATE (a batch open): the next tick retries */
}

int qis_retention_start(struct qis_daemon *d)
{
	struct qis_retention *rt = qs_calloc(1, sizeof(*rt));
	if (rt == NULL)
		return QS_ENOMEM;
	rt->d = d;
	uv_timer_init(d->loop, &rt->timer);
	rt->timer.data = rt;
	d->retention = rt;
	qis_retention_run(d, NULL);
	uv_timer_start(&rt->timer, retention_tick, RETENTION_INTERVAL_MS, RETENTION_INTERVAL_MS);
	return 0;
}

void qis_retention_stop(struct qis_daemon *d)
{
	if (d->retention != NULL)
		uv_timer_stop(&d->retention->timer);
}

static void retention_closed(uv_handle_t *h)
{
	qs_free(h->data);
}

void qis_retention_free(struct qis_daemon *d)
{
	if (d->retention == NULL)
		return;
	uv_close((uv_handle_t *)&d->retention->timer, retention_closed);
	d->retention = NULL;
}

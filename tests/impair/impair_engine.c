/* qs-impair's engine: what happens to each datagram (drop, corrupt, duplicate, hold back
 * for reordering, delay, bandwidth cap), decided by a seeded PRNG per direction. No
 * sockets and no clock: time comes in as now_ns and datagrams leave through the emit
 * callback, so tests drive it with an injected clock. A queued datagram is owned by either
 * the delay heap or the hold list, never both; together they hold at most queue_max. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "impair.h"

#define NS_PER_MS UINT64_C(1000000)

const char *const qs_impair_stat_names[QS_IMPAIR_STATS] = {
	"received",  "forwarded", "dropped",     "duplicated", "reordered",
	"corrupted", "overflow",  "send_errors", "stale",
};

/* In the heap due_ns is when the datagram is sent; in the hold list it is the deadline for
 * its release and gap_left counts the later datagrams still to pass it. */
struct qs_impair_pkt {
	uint64_t due_ns;
	uint64_t seq;
	uint64_t session_gen;
	uint64_t jitter_draw;
	uint32_t session_idx;
	uint32_t gap_left;
	enum qs_impair_dir dir;
	size_t len;
	unsigned char data[];
};

/* What the PRNG decided for one datagram. Every datagram draws the same number of values,
 * so one impairment's probability does not shift another's choices for a seed. */
struct verdict {
	bool is_dropped, is_duplicated, is_held, is_corrupted;
	size_t corrupt_at;
	unsigned char corrupt_mask;
	uint64_t jitter_draw[2];
};

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void rng_seed(struct qs_impair_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (size_t i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl64(uint64_t x, unsigned k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct qs_impair_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

/* The modulo bias is below 1e9 / 2^64, far under anything a test could see. */
static bool chance(uint64_t draw, uint64_t ppb)
{
	return draw % QS_IMPAIR_PPB < ppb;
}

/* ---- delay heap ---- */

static bool pkt_before(const struct qs_impair_pkt *a, const struct qs_impair_pkt *b)
{
	return a->due_ns != b->due_ns ? a->due_ns < b->due_ns : a->seq < b->seq;
}

static void heap_push(struct qs_impair_engine *e, struct qs_impair_pkt *k)
{
	size_t i = e->heap_len++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!pkt_before(k, e->heap[parent]))
			break;
		e->heap[i] = e->heap[parent];
		i = parent;
	}
	e->heap[i] = k;
}

static struct qs_impair_pkt *heap_pop(struct qs_impair_engine *e)
{
	struct qs_impair_pkt *top = e->heap[0];
	struct qs_impair_pkt *last = e->heap[--e->heap_len];
	size_t n = e->heap_len;
	size_t i = 0;
	for (;;) {
		size_t child = 2 * i + 1;
		if (child >= n)
			break;
		if (child + 1 < n && pkt_before(e->heap[child + 1], e->heap[child]))
			child++;
		if (!pkt_before(e->heap[child], last))
			break;
		e->heap[i] = e->heap[child];
		i = child;
	}
	if (n > 0)
		e->heap[i] = last;
	return top;
}

static size_t queued(const struct qs_impair_engine *e)
{
	return e->heap_len + e->hold_len;
}

static struct qs_impair_pkt *pkt_new(enum qs_impair_dir dir, uint32_t session_idx,
				     uint64_t session_gen, const unsigned char *data, size_t len,
				     uint64_t jitter_draw)
{
	size_t size;
	if (!qs_size_add(sizeof(struct qs_impair_pkt), len, &size))
		return NULL;
	struct qs_impair_pkt *k = qs_malloc(size);
	if (k == NULL)
		return NULL;
	memset(k, 0, sizeof(*k));
	k->dir = dir;
	k->session_idx = session_idx;
	k->session_gen = session_gen;
	k->jitter_draw = jitter_draw;
	k->len = len;
	if (len > 0)
		memcpy(k->data, data, len);
	return k;
}

/* ---- sending and scheduling ---- */

static void emit(struct qs_impair_engine *e, enum qs_impair_dir dir, uint32_t session_idx,
		 uint64_t session_gen, const unsigned char *data, size_t len)
{
	uint64_t *st = e->dirs[dir].stats;
	switch (e->emit(e->emit_arg, dir, session_idx, session_gen, data, len)) {
	case QS_IMPAIR_SENT: st[QS_IMPAIR_FORWARDED]++; break;
	case QS_IMPAIR_SEND_FAILED: st[QS_IMPAIR_SEND_ERRORS]++; break;
	case QS_IMPAIR_SESSION_GONE: st[QS_IMPAIR_STALE]++; break;
	}
}

static uint64_t delay_ns(const struct qs_impair_dir_state *d, uint64_t jitter_draw)
{
	uint64_t base = d->conf[QS_IMPAIR_DELAY_MS] * NS_PER_MS;
	uint64_t jitter = d->conf[QS_IMPAIR_JITTER_MS] * NS_PER_MS;
	if (jitter == 0)
		return base;
	uint64_t offset = jitter_draw % (2 * jitter + 1); /* [0, 2J] stands for [-J, +J] */
	return base + offset >= jitter ? base + offset - jitter : 0;
}

/* Sends a datagram now or queues it for its due time. Takes ownership of k when it is not
 * NULL (a released hold); otherwise copies data if it must be queued. */
static void schedule(struct qs_impair_engine *e, enum qs_impair_dir dir, uint32_t session_idx,
		     uint64_t session_gen, const unsigned char *data, size_t len,
		     uint64_t jitter_draw, struct qs_impair_pkt *k, uint64_t now)
{
	struct qs_impair_dir_state *d = &e->dirs[dir];
	if (d->is_immediate) {
		emit(e, dir, session_idx, session_gen, data, len);
		qs_free(k);
		return;
	}
	if (queued(e) >= e->queue_max) {
		d->stats[QS_IMPAIR_OVERFLOW]++;
		qs_free(k);
		return;
	}
	if (k == NULL)
		k = pkt_new(dir, session_idx, session_gen, data, len, jitter_draw);
	if (k == NULL) {
		d->stats[QS_IMPAIR_OVERFLOW]++; /* out of memory: the queue is full too */
		return;
	}
	uint64_t start = now;
	uint64_t rate_kbit = d->conf[QS_IMPAIR_RATE_KBIT];
	if (rate_kbit != 0) {
		/* A bottleneck link: wait for the backlog, take the serialization time, then
		 * the propagation delay. 1 kbit/s moves one bit in 1e6 ns. */
		if (d->link_free_ns > start)
			start = d->link_free_ns;
		start += (uint64_t)len * 8 * UINT64_C(1000000) / rate_kbit;
		d->link_free_ns = start;
	}
	k->due_ns = start + delay_ns(d, jitter_draw);
	k->seq = e->next_seq++;
	heap_push(e, k);
}

/* ---- holding back for reordering ---- */

static void release_hold(struct qs_impair_engine *e, size_t i, uint64_t now)
{
	struct qs_impair_pkt *k = e->holds[i];
	memmove(&e->holds[i], &e->holds[i + 1], (e->hold_len - i - 1) * sizeof(e->holds[0]));
	e->hold_len--;
	schedule(e, k->dir, k->session_idx, k->session_gen, k->data, k->len, k->jitter_draw, k,
		 now);
}

/* Counts one more datagram past the first `limit` holds of (dir, session) and releases
 * those that have now seen enough of them. */
static void advance_holds(struct qs_impair_engine *e, enum qs_impair_dir dir, uint32_t session_idx,
			  uint64_t session_gen, size_t limit, uint64_t now)
{
	size_t i = 0;
	while (i < limit && i < e->hold_len) {
		struct qs_impair_pkt *k = e->holds[i];
		if (k->dir == dir && k->session_idx == session_idx &&
		    k->session_gen == session_gen && --k->gap_left == 0) {
			release_hold(e, i, now);
			limit--;
			continue;
		}
		i++;
	}
}

/* Holds a copy of the datagram back; false when there is no room (it is then not held). */
static bool hold(struct qs_impair_engine *e, enum qs_impair_dir dir, uint32_t session_idx,
		 uint64_t session_gen, const unsigned char *data, size_t len, uint64_t jitter_draw,
		 uint64_t now)
{
	const struct qs_impair_dir_state *d = &e->dirs[dir];
	if (e->hold_len == QS_IMPAIR_HOLD_MAX || queued(e) >= e->queue_max)
		return false;
	struct qs_impair_pkt *k = pkt_new(dir, session_idx, session_gen, data, len, jitter_draw);
	if (k == NULL)
		return false;
	k->due_ns = now + d->conf[QS_IMPAIR_REORDER_MS] * NS_PER_MS;
	k->gap_left = (uint32_t)d->conf[QS_IMPAIR_REORDER_GAP];
	e->holds[e->hold_len++] = k;
	return true;
}

/* ---- the pipeline ---- */

static void decide(struct qs_impair_dir_state *d, size_t len, struct verdict *v)
{
	uint64_t r[8];
	for (size_t i = 0; i < 8; i++)
		r[i] = rng_next(&d->rng);
	v->is_dropped = chance(r[0], d->conf[QS_IMPAIR_DROP]);
	v->is_duplicated = chance(r[1], d->conf[QS_IMPAIR_DUP]);
	v->is_held = chance(r[2], d->conf[QS_IMPAIR_REORDER]);
	v->is_corrupted = len > 0 && chance(r[3], d->conf[QS_IMPAIR_CORRUPT]);
	v->corrupt_at = len > 0 ? (size_t)(r[4] % len) : 0;
	v->corrupt_mask = (unsigned char)(1 + r[5] % 255);
	v->jitter_draw[0] = r[6];
	v->jitter_draw[1] = r[7];
}

void qs_impair_input(struct qs_impair_engine *e, enum qs_impair_dir dir, uint32_t session_idx,
		     uint64_t session_gen, unsigned char *data, size_t len, uint64_t now_ns)
{
	struct qs_impair_dir_state *d = &e->dirs[dir];
	struct verdict v;
	d->stats[QS_IMPAIR_RECEIVED]++;
	decide(d, len, &v);
	if (v.is_dropped) {
		d->stats[QS_IMPAIR_DROPPED]++;
		return;
	}
	if (v.is_corrupted) {
		data[v.corrupt_at] ^= v.corrupt_mask;
		d->stats[QS_IMPAIR_CORRUPTED]++;
	}
	size_t older_holds = e->hold_len;
	if (v.is_held &&
	    hold(e, dir, session_idx, session_gen, data, len, v.jitter_draw[0], now_ns))
		d->stats[QS_IMPAIR_REORDERED]++;
	else
		schedule(e, dir, session_idx, session_gen, data, len, v.jitter_draw[0], NULL,
			 now_ns);
	if (v.is_duplicated) {
		d->stats[QS_IMPAIR_DUPLICATED]++;
		schedule(e, dir, session_idx, session_gen, data, len, v.jitter_draw[1], NULL,
			 now_ns);
	}
	/* This datagram passes the holds made before it, after it was itself sent. */
	advance_holds(e, dir, session_idx, session_gen, older_holds, now_ns);
}

void qs_impair_tick(struct qs_impair_engine *e, uint64_t now_ns)
{
	size_t i = 0;
	while (i < e->hold_len) {
		if (e->holds[i]->due_ns <= now_ns) {
			release_hold(e, i, now_ns);
			continue;
		}
		i++;
	}
	while (e->heap_len > 0 && e->heap[0]->due_ns <= now_ns) {
		struct qs_impair_pkt *k = heap_pop(e);
		emit(e, k->dir, k->session_idx, k->session_gen, k->data, k->len);
		qs_free(k);
	}
}

uint64_t qs_impair_next_ns(const struct qs_impair_engine *e)
{
	uint64_t next = e->heap_len > 0 ? e->heap[0]->due_ns : UINT64_MAX;
	for (size_t i = 0; i < e->hold_len; i++)
		if (e->holds[i]->due_ns < next)
			next = e->holds[i]->due_ns;
	return next;
}

size_t qs_impair_pending(const struct qs_impair_engine *e, enum qs_impair_dir dir)
{
	size_t n = 0;
	for (size_t i = 0; i < e->heap_len; i++)
		if (e->heap[i]->dir == dir)
			n++;
	for (size_t i = 0; i < e->hold_len; i++)
		if (e->holds[i]->dir == dir)
			n++;
	return n;
}

int qs_impair_engine_init(struct qs_impair_engine *e, const struct qs_impair_config *cfg,
			  qs_impair_emit_fn emit_fn, void *emit_arg)
{
	if (cfg->queue_max == 0 || cfg->queue_max > SIZE_MAX / sizeof(e->heap[0]))
		return QS_EINVAL;
	memset(e, 0, sizeof(*e));
	e->queue_max = (size_t)cfg->queue_max;
	e->heap = qs_calloc(e->queue_max, sizeof(e->heap[0]));
	if (e->heap == NULL)
		return QS_ENOMEM;
	e->emit = emit_fn;
	e->emit_arg = emit_arg;
	for (size_t dir = 0; dir < QS_IMPAIR_DIRS; dir++) {
		struct qs_impair_dir_state *d = &e->dirs[dir];
		memcpy(d->conf, cfg->dir[dir], sizeof(d->conf));
		d->is_immediate = d->conf[QS_IMPAIR_DELAY_MS] == 0 &&
				  d->conf[QS_IMPAIR_JITTER_MS] == 0 &&
				  d->conf[QS_IMPAIR_RATE_KBIT] == 0;
		rng_seed(&d->rng, cfg->seed ^ (UINT64_C(0x5851f42d4c957f2d) * (dir + 1)));
	}
	return 0;
}

void qs_impair_engine_release(struct qs_impair_engine *e)
{
	for (size_t i = 0; i < e->heap_len; i++)
		qs_free(e->heap[i]);
	for (size_t i = 0; i < e->hold_len; i++)
		qs_free(e->holds[i]);
	qs_free(e->heap);
	e->heap = NULL;
	e->heap_len = 0;
	e->hold_len = 0;
}

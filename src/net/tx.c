/* Transactions of a QUIC connection (see conn.h): each qs_tx owns its send queue (segments
 * covering stream offsets [head_off, end_off)), its frame decoder and its place on the
 * conn's ready, pending-open and closed lists. Invariants: head_off <= acked_off <= sent_off
 * <= end_off; a tx is on the ready list iff it has a stream, unsent bytes or an unsent FIN,
 * and is neither blocked by flow control nor canceled. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "net/conn.h"

#define OWNED_SEG_MIN 16384

/* ---- transactions: send queue ----------------------------------------------------------- */

void qs_tx_ready_add(struct qs_tx *tx)
{
	struct qs_conn *c = tx->conn;
	if (tx->ready || tx->cancel_code != 0 || tx->pending_open)
		return;
	tx->ready = true;
	if (c->ready == NULL) {
		tx->ready_next = tx->ready_prev = tx;
		c->ready = tx;
	} else {
		struct qs_tx *last = c->ready->ready_prev;
		tx->ready_prev = last;
		tx->ready_next = c->ready;
		last->ready_next = tx;
		c->ready->ready_prev = tx;
	}
}

void qs_tx_ready_remove(struct qs_tx *tx)
{
	struct qs_conn *c = tx->conn;
	if (!tx->ready)
		return;
	tx->ready = false;
	if (tx->ready_next == tx) {
		c->ready = NULL;
	} else {
		tx->ready_prev->ready_next = tx->ready_next;
		tx->ready_next->ready_prev = tx->ready_prev;
		if (c->ready == tx)
			c->ready = tx->ready_next;
	}
	tx->ready_next = tx->ready_prev = NULL;
}

bool qs_tx_has_unsent(const struct qs_tx *tx)
{
	return tx->sent_off < tx->end_off || (tx->fin_queued && !tx->fin_sent);
}

static void seg_free(struct qs_seg *s)
{
	if (s->cap > 0)
		qs_free((void *)(uintptr_t)s->p);
	else if (s->release != NULL)
		s->release(s->release_arg);
	qs_free(s);
}

static void tx_append_seg(struct qs_tx *tx, struct qs_seg *s)
{
	s->next = NULL;
	if (tx->tail == NULL) {
		tx->head = tx->tail = s;
		tx->head_off = tx->end_off;
	} else {
		tx->tail->next = s;
		tx->tail = s;
	}
	tx->end_off += s->len;
}

/* Appends bytes into an owned segment (the tail if it has room, else a new one). */
static int tx_append_owned(struct qs_tx *tx, const void *p1, size_t n1, const void *p2, size_t n2)
{
	size_t n = n1 + n2;
	struct qs_seg *t = tx->tail;
	if (t == NULL || t->cap == 0 || t->cap - t->len < n) {
		size_t cap = n > OWNED_SEG_MIN ? n : OWNED_SEG_MIN;
		t = qs_calloc(1, sizeof(*t));
		uint8_t *mem = qs_malloc(cap);
		if (t == NULL || mem == NULL) {
			qs_free(t);
			qs_free(mem);
			return QS_ENOMEM;
		}
		t->p = mem;
		t->cap = cap;
		tx_append_seg(tx, t);
	}
	uint8_t *dst = (uint8_t *)(uintptr_t)t->p + t->len;
	memcpy(dst, p1, n1);
	if (n2 > 0)
		memcpy(dst + n1, p2, n2);
	t->len += n;
	tx->end_off += n;
	return 0;
}

static int tx_check_open(const struct qs_tx *tx)
{
	if (tx->fin_queued || tx->cancel_code != 0 || tx->close_queued || tx->conn->dead)
		return QS_ESTATE;
	return 0;
}

static void tx_queued_more(struct qs_tx *tx)
{
	if (!qs_tx_writable(tx))
		tx->want_writable = true;
	qs_tx_ready_add(tx);
	qs_conn_mark_dirty(tx->conn);
}

static int tx_send_frame(struct qs_tx *tx, uint8_t type, const void *p, size_t len)
{
	int rc = tx_check_open(tx);
	if (rc != 0)
		return rc;
	if (tx->end_off - tx->acked_off > 4 * tx->conn->ep->limits.send_high_water_bytes)
		return QS_E2BIG;
	uint8_t hdr[QS_FRAME_HEADER_LEN];
	rc = qs_frame_header_encode(hdr, type, len);
	if (rc == 0)
		rc = tx_append_owned(tx, hdr, sizeof(hdr), p, len);
	if (rc == 0)
		tx_queued_more(tx);
	return rc;
}

int qs_tx_send_msg(struct qs_tx *tx, const void *payload, size_t len)
{
	if (len > tx->conn->ep->limits.max_msg_bytes)
		return QS_E2BIG;
	return tx_send_frame(tx, QS_FRAME_MSG, payload, len);
}

int qs_tx_send_data_copy(struct qs_tx *tx, const void *p, size_t len)
{
	if (len == 0 || len > QS_FRAME_DATA_MAX)
		return QS_EINVAL;
	return tx_send_frame(tx, QS_FRAME_DATA, p, len);
}

int qs_tx_send_data(struct qs_tx *tx, const void *p, size_t len, void (*release)(void *),
		    void *release_arg)
{
	if (len == 0 || len > QS_FRAME_DATA_MAX)
		return QS_EINVAL;
	int rc = tx_check_open(tx);
	if (rc != 0)
		return rc;
	struct qs_seg *s = qs_calloc(1, sizeof(*s));
	if (s == NULL)
		return QS_ENOMEM;
	uint8_t hdr[QS_FRAME_HEADER_LEN];
	rc = qs_frame_header_encode(hdr, QS_FRAME_DATA, len);
	if (rc == 0)
		rc = tx_append_owned(tx, hdr, sizeof(hdr), NULL, 0);
	if (rc != 0) {
		qs_free(s);
		return rc;
	}
	s->p = p;
	s->len = len;
	s->release = release;
	s->release_arg = release_arg;
	tx_append_seg(tx, s);
	tx_queued_more(tx);
	return 0;
}

int qs_tx_finish(struct qs_tx *tx)
{
	int rc = tx_check_open(tx);
	if (rc != 0)
		return rc;
	tx->fin_queued = true;
	tx_queued_more(tx);
	return 0;
}

uint64_t qs_tx_queued(const struct qs_tx *tx)
{
	return tx->end_off - tx->acked_off;
}

bool qs_tx_writable(const struct qs_tx *tx)
{
	return qs_tx_queued(tx) < tx->conn->ep->limits.send_high_water_bytes;
}

/* Collects up to max vectors of unsent data starting at sent_off. */
size_t qs_tx_unsent_vecs(struct qs_tx *tx, ngtcp2_vec *v, size_t max)
{
	if (tx->cur == NULL) {
		tx->cur = tx->head;
		tx->cur_off = tx->head_off;
	}
	size_t n = 0;
	struct qs_seg *s = tx->cur;
	uint64_t off = tx->cur_off;
	while (s != NULL && n < max) {
		size_t skip = tx->sent_off > off ? (size_t)(tx->sent_off - off) : 0;
		if (skip < s->len) {
			v[n].base = (uint8_t *)(uintptr_t)s->p + skip;
			v[n].len = s->len - skip;
			n++;
		}
		off += s->len;
		s = s->next;
	}
	return n;
}

void qs_tx_advance(struct qs_tx *tx, size_t n, bool fin)
{
	tx->sent_off += n;
	while (tx->cur != NULL && tx->cur_off + tx->cur->len <= tx->sent_off &&
	       tx->cur->next != NULL) {
		tx->cur_off += tx->cur->len;
		tx->cur = tx->cur->next;
	}
	if (fin && tx->sent_off == tx->end_off)
		tx->fin_sent = true;
	if (!qs_tx_has_unsent(tx))
		qs_tx_ready_remove(tx);
}

void qs_tx_acked(struct qs_tx *tx, uint64_t end)
{
	if (end > tx->acked_off)
		tx->acked_off = end;
	while (tx->head != NULL && tx->head_off + tx->head->len <= tx->acked_off) {
		struct qs_seg *s = tx->head;
		/* An owned tail may still take appends; keep it while it is the tail. */
		if (s == tx->tail && s->cap > s->len)
			break;
		tx->head = s->next;
		tx->head_off += s->len;
		if (tx->cur == s) {
			tx->cur = NULL;
		}
		if (tx->head == NULL)
			tx->tail = NULL;
		seg_free(s);
	}
	if (tx->want_writable && qs_tx_writable(tx))
		qs_conn_mark_dirty(tx->conn);
}

static void tx_free_segs(struct qs_tx *tx)
{
	struct qs_seg *s = tx->head;
	while (s != NULL) {
		struct qs_seg *next = s->next;
		seg_free(s);
		s = next;
	}
	tx->head = tx->tail = tx->cur = NULL;
}

/* ---- transactions: lifecycle -------------------------------------------------------------- */

static int tx_frame_event(void *arg, const struct qs_frame_event *ev);

struct qs_tx *qs_tx_new(struct qs_conn *c, int64_t sid, enum qs_frame_role role)
{
	struct qs_tx *tx = qs_calloc(1, sizeof(*tx));
	if (tx == NULL)
		return NULL;
	tx->conn = c;
	tx->sid = sid;
	tx->local = role == QS_FRAME_INITIATOR;
	tx->progress_ms = uv_now(c->ep->loop);
	qs_frame_decoder_init(&tx->dec, role, c->ep->limits.max_msg_bytes, tx_frame_event, tx);
	tx->next = c->txs;
	if (c->txs != NULL)
		c->txs->prev = tx;
	c->txs = tx;
	return tx;
}

void qs_tx_unlink_free(struct qs_tx *tx)
{
	struct qs_conn *c = tx->conn;
	qs_tx_ready_remove(tx);
	if (tx->pending_open) {
		struct qs_tx **pp = &c->pending_head;
		while (*pp != tx)
			pp = &(*pp)->pending_next;
		*pp = tx->pending_next;
		c->pending_tail = NULL;
		for (struct qs_tx *t = c->pending_head; t != NULL; t = t->pending_next)
			c->pending_tail = t;
	}
	if (tx->prev != NULL)
		tx->prev->next = tx->next;
	else
		c->txs = tx->next;
	if (tx->next != NULL)
		tx->next->prev = tx->prev;
	tx_free_segs(tx);
	qs_frame_decoder_release(&tx->dec);
	qs_free(tx);
}

/* Queues the tx for its on_close at the next flush (never inside ngtcp2 callbacks). */
void qs_tx_queue_close(struct qs_tx *tx, int err)
{
	if (tx->close_queued)
		return;
	tx->close_queued = true;
	tx->close_err = err;
	qs_tx_ready_remove(tx);
	tx->closed_next = tx->conn->closed;
	tx->conn->closed = tx;
	qs_conn_mark_dirty(tx->conn);
}

void qs_tx_request_cancel(struct qs_tx *tx, uint64_t code)
{
	if (tx->cancel_code != 0 || tx->close_queued)
		return;
	tx->cancel_code = code;
	tx->cancel_ms = uv_now(tx->conn->ep->loop);
	qs_tx_ready_remove(tx);
	qs_conn_mark_dirty(tx->conn);
}

void qs_tx_cancel(struct qs_tx *tx, uint64_t app_error)
{
	qs_tx_request_cancel(tx, app_error != 0 ? app_error : QS_QUIC_ERR_CANCELED);
}

void qs_tx_set_ops(struct qs_tx *tx, const struct qs_tx_ops *ops, void *arg)
{
	tx->ops = ops;
	tx->arg = arg;
}

struct qs_conn *qs_tx_conn(const struct qs_tx *tx)
{
	return tx->conn;
}

uint64_t qs_tx_error(const struct qs_tx *tx)
{
	return tx->peer_error;
}

uint64_t qs_tx_id(const struct qs_tx *tx)
{
	return (uint64_t)tx->sid;
}

void qs_tx_pause_recv(struct qs_tx *tx, bool paused)
{
	tx->paused = paused;
	tx->progress_ms = uv_now(tx->conn->ep->loop); /* a pause waits on us, not the peer */
	if (!paused && tx->credit_pending > 0)
		qs_conn_mark_dirty(tx->conn);
}

uint64_t qs_tx_app_error(int err)
{
	switch (err) {
	case QS_E2BIG: return QS_QUIC_ERR_TOO_BIG;
	case QS_EPROTO: return QS_QUIC_ERR_PROTOCOL;
	default: return QS_QUIC_ERR_INTERNAL;
	}
}

static int tx_frame_event(void *arg, const struct qs_frame_event *ev)
{
	struct qs_tx *tx = arg;
	struct qs_conn *c = tx->conn;
	if (ev->type == QS_FRAME_OPEN) {
		if (c->ep->on_tx_open == NULL)
			return QS_EINVAL;
		tx->opened = true;
		int rc = c->ep->on_tx_open(c, tx, (const char *)ev->data, c->ep->app_arg);
		if (rc != 0) {
			qs_tx_request_cancel(tx, QS_QUIC_ERR_REFUSED);
			return QS_ECANCELED;
		}
		return 0;
	}
	if (tx->ops == NULL)
		return 0;
	if (ev->type == QS_FRAME_MSG)
		return tx->ops->on_msg != NULL ? tx->ops->on_msg(tx, ev->data, ev->len, tx->arg)
					       : 0;
	if (tx->ops->on_data == NULL)
		return 0;
	return tx->ops->on_data(tx, ev->data, ev->len, ev->offset, ev->frame_len, tx->arg);
}

int qs_conn_open_tx(struct qs_conn *c, const char *name, const struct qs_tx_ops *ops, void *arg,
		    struct qs_tx **out)
{
	if (!qs_frame_name_valid(name, strlen(name)))
		return QS_EINVAL;
	if (c->dead || c->conn == NULL || !c->established)
		return QS_ECONN;
	struct qs_tx *tx = qs_tx_new(c, -1, QS_FRAME_INITIATOR);
	if (tx == NULL)
		return QS_ENOMEM;
	/* The stream itself is opened at the next flush, or later when the peer's stream
	 * limit is reached: callers never see that limit. */
	tx->pending_open = true;
	if (c->pending_tail != NULL)
		c->pending_tail->pending_next = tx;
	else
		c->pending_head = tx;
	c->pending_tail = tx;
	tx->opened = true;
	qs_tx_set_ops(tx, ops, arg);
	int rc = tx_send_frame(tx, QS_FRAME_OPEN, name, strlen(name));
	if (rc != 0) {
		qs_tx_request_cancel(tx, QS_QUIC_ERR_INTERNAL);
		return rc;
	}
	*out = tx;
	return 0;
}

/*
 * log_append: the hot path. An append checks the producer, copies the
 * batch into the tail write buffer with the broker's fields patched in and
 * updates the in-memory indexes. No syscall, no allocation once the buffer
 * pool is warm; the only I/O is the producer snapshot at a segment roll.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/log_int.h"
#include "storage/verify.h"

void wbuf_list_push(struct wbuf_list *list, struct wbuf *b)
{
	b->next = NULL;
	if (list->tail != NULL)
		list->tail->next = b;
	else
		list->head = b;
	list->tail = b;
}

struct wbuf *wbuf_list_pop(struct wbuf_list *list)
{
	struct wbuf *b = list->head;
	if (b != NULL) {
		list->head = b->next;
		if (list->head == NULL)
			list->tail = NULL;
	}
	return b;
}

static void wbuf_destroy(struct wbuf *b)
{
	free(b->data);
	free(b);
}

/* A buffer with room for len bytes: from the pool if a standard one does,
 * else a new one (a batch larger than WBUF_BYTES gets its own, rounded up
 * to WBUF_ALIGN so O_DIRECT can take it later). */
static struct wbuf *plog_wbuf_get(struct plog *l, size_t len)
{
	if (len <= WBUF_BYTES && l->free_bufs != NULL) {
		struct wbuf *b = l->free_bufs;
		l->free_bufs = b->next;
		l->n_free_bufs--;
		return b;
	}
	size_t cap = len > WBUF_BYTES ? len : WBUF_BYTES;
	cap = (cap + WBUF_ALIGN - 1) / WBUF_ALIGN * WBUF_ALIGN;
	struct wbuf *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->data = aligned_alloc(WBUF_ALIGN, cap);
	if (b->data == NULL) {
		free(b);
		return NULL;
	}
	b->cap = (uint32_t)cap;
	return b;
}

void plog_wbuf_release(struct plog *l, struct wbuf *b)
{
	if (b->cap != WBUF_BYTES || l->n_free_bufs >= WBUF_POOL_KEEP) {
		wbuf_destroy(b);
		return;
	}
	b->next = l->free_bufs;
	l->free_bufs = b;
	l->n_free_bufs++;
}

void plog_wbufs_free(struct plog *l)
{
	struct wbuf *b;
	while ((b = wbuf_list_pop(&l->pending)) != NULL)
		wbuf_destroy(b);
	while ((b = wbuf_list_pop(&l->chain.bufs)) != NULL)
		wbuf_destroy(b);
	while ((b = l->free_bufs) != NULL) {
		l->free_bufs = b->next;
		wbuf_destroy(b);
	}
	l->n_free_bufs = 0;
}

/* Where the next len bytes of segment s go: the tail buffer if it holds
 * s's data and has room, else a fresh buffer starting at s's end. */
static struct wbuf *plog_reserve(struct plog *l, struct segment *s, size_t len)
{
	struct wbuf *t = l->pending.tail;
	if (t != NULL && t->seg == s && t->cap - t->len >= len)
		return t;
	t = plog_wbuf_get(l, len);
	if (t == NULL)
		return NULL;
	t->seg = s;
	t->file_pos = s->size;
	t->len = 0;
	wbuf_list_push(&l->pending, t);
	return t;
}

/* Start a new segment at the end offset. Its files are created only when
 * its first write is queued, after the old segment is sealed (synced), so
 * a crash can never leave a newer segment after an unsynced one. */
static int plog_roll(struct plog *l)
{
	struct segment *s = segment_new(l->end_offset, l->cfg.segment_bytes,
					l->cfg.index_interval_bytes);
	if (s == NULL)
		return -ENOMEM;
	int rc = plog_segs_push(l, s);
	if (rc != 0) {
		segment_free(s);
		return rc;
	}
	segment_seal_index(l->segs[l->n_segs - 2]);
	/* The state after every batch below the new base. Not synced: if the
	 * crash comes first, recovery finds it past the log end (the old
	 * segment's data was not durable yet) or corrupt, and skips it. */
	if (producer_snapshot_write(&l->producers, l->dir, l->end_offset, false) == 0)
		producer_snapshot_prune(l->dir, PRODUCER_SNAPSHOTS_KEPT);
	l->stats.rolls++;
	return 0;
}

/* The idempotent-producer verdict, as plog_append's return value. */
static int plog_producer_check(struct plog *l, const struct batch_hdr *h,
			       struct plog_append_result *res)
{
	int64_t dup = -1;
	switch (producer_state_check(&l->producers, h, &dup)) {
	case PRODUCER_APPEND:
		return 0;
	case PRODUCER_DUPLICATE:
		res->base_offset = dup;
		l->stats.duplicates++;
		return PLOG_DUPLICATE;
	case PRODUCER_ERR_EPOCH:
		return PLOG_ERR_INVALID_PRODUCER_EPOCH;
	case PRODUCER_ERR_OUT_OF_ORDER:
	default:
		return PLOG_ERR_OUT_OF_ORDER_SEQUENCE;
	}
}

int plog_append(struct plog *l, const uint8_t *batch, size_t len, const struct batch_hdr *h,
		int32_t leader_epoch, int64_t now_ms, struct plog_append_result *res)
{
	(void)now_ms;
	VERIFY(len == (size_t)BATCH_LOG_OVERHEAD + (size_t)h->batch_length);
	res->log_append_time = -1;
	res->log_start_offset = plog_start_offset(l);
	res->base_offset = -1;
	if (l->err != 0 || l->closing)
		return PLOG_ERR_STORAGE;
	bool tracked = producer_batch_tracked(h);
	if (tracked) {
		int rc = plog_producer_check(l, h, res);
		if (rc != 0)
			return rc;
	}
	/* One batch is always accepted into an empty queue, however large,
	 * or a batch bigger than the limit could never be appended. */
	if (l->unwritten_bytes > 0 && l->unwritten_bytes + len > PLOG_PENDING_BYTES_MAX)
		return PLOG_ERR_BUFFER_FULL;
	if (!segment_fits(plog_active(l), (int64_t)len, h->last_offset_delta,
			  l->cfg.segment_bytes) &&
	    plog_roll(l) != 0)
		return PLOG_ERR_BUFFER_FULL; /* out of memory: retriable */
	struct segment *s = plog_active(l);
	struct wbuf *b = plog_reserve(l, s, len);
	if (b == NULL)
		return PLOG_ERR_BUFFER_FULL;

	int64_t base = l->end_offset;
	uint8_t *dst = b->data + b->len;
	memcpy(dst, batch, len);
	batch_set_base_offset(dst, base);
	batch_set_leader_epoch(dst, leader_epoch);
	segment_track_batch(s, dst, h, base, (int64_t)len);
	b->len += (uint32_t)len;
	l->end_offset = base + h->last_offset_delta + 1;
	b->end_offset = l->end_offset;
	l->unwritten_bytes += len;
	if (tracked)
		producer_state_update(&l->producers, h, base); /* ENOMEM: forgets it */
	l->stats.appends++;
	res->base_offset = base;
	return 0;
}

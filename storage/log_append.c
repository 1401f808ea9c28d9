/*
 * log_append: the hot path. An append checks the producer, copies the
 * batch into the tail write buffer with the broker's fields patched in and
 * updates the in-memory indexes. No syscall, and no allocation when the log
 * draws its buffers from the shard's pool (log_config.pool) and the batch
 * fits one; the only I/O is the producer snapshot at a segment roll.
 * Buffers are laid out for O_DIRECT here (page-aligned file positions, see
 * plog_reserve); log_flush.c writes them.
 */
#include <errno.h>
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

/* A buffer with room for len bytes: from the shard's pool when the log
 * has one (NULL when it is empty), else allocated for this log alone. */
static struct wbuf *plog_wbuf_get(struct plog *l, size_t len)
{
	if (l->cfg.pool != NULL)
		return bufpool_get(l->cfg.pool, len);
	return wbuf_new(len);
}

void plog_wbuf_release(struct plog *l, struct wbuf *b)
{
	if (l->cfg.pool != NULL)
		bufpool_put(l->cfg.pool, b);
	else
		wbuf_free(b);
}

void plog_wbufs_drop(struct plog *l)
{
	VERIFY(!l->chain.busy);
	struct wbuf *b;
	while ((b = wbuf_list_pop(&l->pending)) != NULL)
		plog_wbuf_release(l, b);
	while ((b = wbuf_list_pop(&l->chain.bufs)) != NULL)
		plog_wbuf_release(l, b);
	l->unwritten_bytes = 0;
	plog_cache_drop(l, NULL);
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

/* Where the next len bytes go: the tail buffer if it holds the active
 * segment's data and has room, else a fresh buffer, rolling to a new
 * segment first if roll. A fresh buffer starts at the page the segment's
 * data ends in, with that page's bytes so far copied in as its head (from
 * the tail buffer, or from tail_page when the tail buffer has gone to a
 * chain): every write then starts page aligned (log_flush.c). The buffer
 * is taken before the roll, so a shard whose pool is empty turns the
 * append away without having rolled. NULL: no buffer (or no memory to
 * roll). */
static struct wbuf *plog_reserve(struct plog *l, size_t len, bool roll)
{
	struct wbuf *t = l->pending.tail;
	struct segment *s = plog_active(l);
	if (!roll && t != NULL && t->seg == s && t->cap - t->len >= len)
		return t;
	uint32_t head = roll ? 0 : (uint32_t)(s->size % SIO_DIRECT_ALIGN);
	struct wbuf *b = plog_wbuf_get(l, len + head);
	if (b == NULL)
		return NULL;
	if (roll && plog_roll(l) != 0) {
		plog_wbuf_release(l, b);
		return NULL;
	}
	if (head > 0) {
		const uint8_t *src = t != NULL && t->seg == s ? t->data + t->len - head
							       : l->tail_page;
		memcpy(b->data, src, head);
	}
	s = plog_active(l);
	b->seg = s;
	b->file_pos = s->size - head;
	b->len = head;
	b->head = head;
	wbuf_list_push(&l->pending, b);
	return b;
}

/* Roll before this batch? When it does not fit the active segment, or
 * the segment is older than segment.ms (counted from its first append,
 * Kafka counts from its first batch's timestamp, which a producer with an
 * old clock would turn into a roll per batch). */
static bool plog_roll_due(const struct plog *l, int64_t len, const struct batch_hdr *h,
			  int64_t now_ms)
{
	const struct segment *s = plog_active(l);
	if (!segment_fits(s, len, h->last_offset_delta, l->cfg.segment_bytes))
		return true;
	return l->cfg.segment_ms > 0 && s->size > 0 && s->created_ms >= 0 &&
	       now_ms - s->created_ms >= l->cfg.segment_ms;
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
	VERIFY(len == (size_t)BATCH_LOG_OVERHEAD + (size_t)h->batch_length);
	res->log_append_time = -1;
	res->log_start_offset = plog_start_offset(l);
	res->base_offset = -1;
	if (l->err != 0 || l->closing)
		return PLOG_ERR_STORAGE;
	if (l->retry_at_ms >= 0)
		return PLOG_ERR_NO_SPACE;
	bool tracked = producer_batch_tracked(h);
	if (tracked) {
		int rc = plog_producer_check(l, h, res);
		if (rc != 0)
			return rc;
	}
	/* One batch is always accepted into an empty queue, however large,
	 * or a batch bigger than the limit could never be appended (as long
	 * as a buffer can be had: see plog_reserve). */
	if (l->unwritten_bytes > 0 && l->unwritten_bytes + len > PLOG_PENDING_BYTES_MAX)
		return PLOG_ERR_BUFFER_FULL;
	bool roll = plog_roll_due(l, (int64_t)len, h, now_ms);
	struct wbuf *b = plog_reserve(l, len, roll);
	if (b == NULL)
		return PLOG_ERR_BUFFER_FULL; /* pool empty or out of memory: retriable */
	struct segment *s = plog_active(l);
	if (s->size == 0 || s->created_ms < 0)
		s->created_ms = now_ms;

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

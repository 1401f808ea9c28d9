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

#include "storage/copy.h"
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

/* Every PRODUCER_SNAPSHOT_INTERVAL_BYTES appended, a producer snapshot at
 * the end offset, as at a roll (not synced: one taken past what survives a
 * crash is skipped by recovery for an older one). It bounds the batch
 * headers recovery replays. Blocks for a small file write. */
static void plog_snapshot_maybe(struct plog *l, size_t len)
{
	l->bytes_since_snapshot += len;
	if (l->bytes_since_snapshot < PRODUCER_SNAPSHOT_INTERVAL_BYTES)
		return;
	l->bytes_since_snapshot = 0;
	if (producer_snapshot_write(&l->producers, l->dir, l->end_offset, false) == 0)
		producer_snapshot_prune(l->dir, PRODUCER_SNAPSHOTS_KEPT);
}

/* Start a new segment at the end offset. Its files are created only when
 * its first write is queued, after the old segment is sealed (synced), so
 * a crash can never leave a newer segment after an unsynced one. */
static int plog_roll(struct plog *l)
{
	int rc = plog_segs_push_new(l, l->end_offset);
	if (rc != 0)
		return rc;
	segment_seal_index(l->segs[l->n_segs - 2]);
	/* The state after every batch below the new base. Not synced: if the
	 * crash comes first, recovery finds it past the log end (the old
	 * segment's data was not durable yet) or corrupt, and skips it. */
	if (producer_snapshot_write(&l->producers, l->dir, l->end_offset, false) == 0)
		producer_snapshot_prune(l->dir, PRODUCER_SNAPSHOTS_KEPT);
	l->bytes_since_snapshot = 0;
	l->stats.rolls++;
	return 0;
}

/* Append buffer b to the pending list for the active segment. After a
 * buffer of the segment that will be filled to its end (prev), it starts
 * where prev ends, a page boundary. Else it starts at the page the data
 * ends in, with that page's bytes so far copied in as its head (from the
 * tail buffer, or from tail_page when it has gone to a chain): so every
 * write starts page aligned (log_flush.c). */
static void plog_wbuf_open(struct plog *l, struct wbuf *b, const struct wbuf *prev)
{
	struct segment *s = plog_active(l);
	uint32_t head = 0;
	if (prev != NULL) {
		b->file_pos = prev->file_pos + prev->cap;
	} else {
		head = (uint32_t)(s->size % SIO_DIRECT_ALIGN);
		const struct wbuf *t = l->pending.tail;
		if (head > 0)
			memcpy(b->data, t != NULL && t->seg == s ? t->data + t->len - head
								 : l->tail_page, head);
		b->file_pos = s->size - head;
	}
	b->seg = s;
	b->len = head;
	b->head = head;
	b->end_offset = l->end_offset;
	b->batch_end = s->size;
	wbuf_list_push(&l->pending, b);
}

/* Room for len more bytes at the end of the pending list, rolling to a
 * new segment first if roll: the tail buffer if the batch fits, else a
 * fresh buffer, or for a batch larger than a buffer the tail's free space
 * and as many fresh buffers as it takes (all but the last filled to their
 * end; with no pool, one buffer of its own holds it). Every buffer is had before anything changes (the roll included),
 * so a shard whose pool runs short turns the append away with the log as
 * it was. Returns the buffer the bytes start in, NULL when there are not
 * enough buffers (or no memory to roll). */
static struct wbuf *plog_reserve(struct plog *l, size_t len, bool roll)
{
	struct wbuf *t = l->pending.tail;
	bool use_tail = !roll && t != NULL && t->seg == plog_active(l);
	size_t room = use_tail ? t->cap - t->len : 0;
	if (room >= len)
		return t;
	/* A batch that fits one buffer gets one (it is not split for the
	 * tail's last bytes); only larger ones span buffers. */
	if (l->cfg.pool == NULL || len + SIO_DIRECT_ALIGN <= WBUF_BYTES) {
		use_tail = false;
		room = 0;
	}
	/* A first fresh buffer that does not follow the tail starts mid-page
	 * and spends its head on that page. */
	size_t head = roll || use_tail ? 0 : (size_t)(plog_active(l)->size % SIO_DIRECT_ALIGN);
	struct wbuf_list got = { 0 };
	size_t have = room;
	if (l->cfg.pool == NULL) {
		got.head = got.tail = wbuf_new(len - room + head);
		if (got.head != NULL)
			have = len;
	} else {
		while (have < len) {
			struct wbuf *b = bufpool_get(l->cfg.pool, WBUF_BYTES);
			if (b == NULL)
				break;
			have += b->cap - (got.head == NULL ? head : 0);
			wbuf_list_push(&got, b);
		}
	}
	if (have < len || (roll && plog_roll(l) != 0)) {
		struct wbuf *b;
		while ((b = wbuf_list_pop(&got)) != NULL)
			plog_wbuf_release(l, b);
		return NULL;
	}
	struct wbuf *first = got.head, *prev = use_tail ? t : NULL, *b;
	while ((b = wbuf_list_pop(&got)) != NULL) {
		plog_wbuf_open(l, b, prev);
		prev = b;
	}
	return use_tail && room > 0 ? t : first;
}

/* Copy n bytes into the pending buffers from *b on (the room is there:
 * plog_reserve), moving *b along. */
static void plog_copy_in(struct wbuf **bp, const uint8_t *src, size_t n)
{
	while (n > 0) {
		struct wbuf *b = *bp;
		size_t take = b->cap - b->len < n ? b->cap - b->len : n;
		copy_stream(b->data + b->len, src, take);
		b->len += (uint32_t)take;
		src += take;
		n -= take;
		if (n > 0)
			*bp = b->next;
	}
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

	/* The batch goes in as the client sent it, with the broker's base
	 * offset and leader epoch patched into its header (outside the CRC),
	 * across as many buffers as it takes. */
	int64_t base = l->end_offset;
	uint8_t hdr[BATCH_HEADER_BYTES];
	memcpy(hdr, batch, sizeof(hdr));
	batch_set_base_offset(hdr, base);
	batch_set_leader_epoch(hdr, leader_epoch);
	plog_copy_in(&b, hdr, sizeof(hdr));
	plog_copy_in(&b, batch + sizeof(hdr), len - sizeof(hdr));
	segment_track_batch(s, batch, h, base, (int64_t)len);
	l->end_offset = base + h->last_offset_delta + 1;
	b->end_offset = l->end_offset;
	b->batch_end = s->size;
	l->unwritten_bytes += len;
	if (tracked)
		producer_state_update(&l->producers, h, base); /* ENOMEM: forgets it */
	plog_snapshot_maybe(l, len);
	l->stats.appends++;
	res->base_offset = base;
	return 0;
}

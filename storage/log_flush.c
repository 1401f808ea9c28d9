/*
 * log_flush: group commit. Everything appended since the last chain goes
 * out as one chain of operations through the shard's storage backend (sio):
 *
 *   phase 1   one write per buffer (in parallel) of .log,
 *             the new .index / .timeindex entries,
 *             an fallocate of the next stretch of .log when due
 *   phase 2   fdatasync(.log)                      per flush mode
 *             [ftruncate, fdatasync(.index), fdatasync(.timeindex)]  seal
 *
 * A chain of a single data write and a sync links the sync to the write in
 * phase 1 (IOSQE_IO_LINK), which saves a loop turn at low load; otherwise
 * phase 2 is queued by the completion of the last phase-1 operation.
 *
 * Page alignment (O_DIRECT). Buffers start at a page boundary of the file:
 * a buffer opened at a position inside a page begins with a copy of that
 * page's bytes already appended (its head, see log_append.c), so every
 * write starts aligned. Within a chain, a buffer followed by another of the
 * chain writes only its whole pages: its partial last page is the next
 * buffer's head, and two writes in flight must never overlap. The chain's
 * last buffer writes its partial page zero-padded to the page end; the
 * next chain rewrites that page with more data. So the file may run past
 * the data by less than a page (and by the pre-allocated stretch), always
 * zeros; the seal cuts the file to its data, and recovery does the same
 * for a crashed active segment. On a filesystem without O_DIRECT the same
 * buffers are written exactly, without padding.
 *
 * One chain per log is in flight at a time, so offsets become written and
 * durable in order, and a chain's completion starts the next one. A chain
 * covers one segment. The chain that ends a segment that is no longer
 * active "seals" it: it always syncs the data and the indexes, whatever the
 * flush mode, and only after it completes does the next segment's first
 * chain create that segment's files. Recovery relies on this to trust all
 * but the last segment.
 *
 * Errors. A failed write or sync takes the log offline for good (EIO: what
 * reached the disk is unknown, and nothing more is acknowledged). A write
 * that finds the disk full (ENOSPC, or a short write) is not fatal: the
 * chain's buffers go back to the front of the pending list, appends are
 * refused (PLOG_ERR_NO_SPACE) and the chain is written again after
 * cfg.retry_ms, until it succeeds. Index writes are not linked to the data
 * write: an index entry that reaches the disk before its batch is harmless,
 * since recovery checks the batch an entry points at before using it.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "storage/log_int.h"

_Static_assert(WBUF_ALIGN % SIO_DIRECT_ALIGN == 0, "buffers must suit O_DIRECT");

static void plog_op_done(struct uring_op *op, int res, uint32_t cqe_flags);

void plog_ops_init(struct plog *l)
{
	for (int i = 0; i < PLOG_OP_COUNT; i++) {
		l->ops[i].op.done = plog_op_done;
		l->ops[i].l = l;
	}
}

static int64_t page_down(int64_t n)
{
	return n & ~(int64_t)(SIO_DIRECT_ALIGN - 1);
}

static int64_t page_up(int64_t n)
{
	return page_down(n + SIO_DIRECT_ALIGN - 1);
}

static struct uring_op *chain_op(struct plog *l, int kind, int64_t expect)
{
	l->ops[kind].expect = expect;
	l->chain.ops_left++;
	return &l->ops[kind].op;
}

/* Write index entries [flushed, n) at their place in the file. */
static void chain_queue_index(struct plog *l, int fd, struct seg_index *ix,
			      enum sio_file_kind kind, int op)
{
	if (ix->n <= ix->flushed)
		return;
	size_t off = (size_t)ix->flushed * ix->entry_bytes;
	size_t bytes = (size_t)(ix->n - ix->flushed) * ix->entry_bytes;
	struct sio_file f = sio_file_of(fd, kind);
	sio_write(l->io, &f, ix->raw + off, bytes, (int64_t)off, 0, chain_op(l, op, (int64_t)bytes));
	ix->flushed = ix->n;
}

/* Bytes of buffer b the chain writes: see "Page alignment" above. */
static int64_t chain_buf_bytes(const struct segment *s, const struct wbuf *b, bool last)
{
	if (!last)
		return page_down(b->len);
	return s->wfile.direct ? page_up(b->len) : b->len;
}

/* The data writes, one per buffer with bytes to write; how many. With
 * count_only nothing is queued. link: the (single) write is linked to the
 * sync queued right after it. */
static int chain_queue_data(struct plog *l, struct plog_chain *c, bool count_only, bool link)
{
	int n = 0, i = 0;
	for (struct wbuf *b = c->bufs.head; b != NULL; b = b->next, i++) {
		int64_t bytes = chain_buf_bytes(c->seg, b, b->next == NULL);
		if (bytes == 0)
			continue;
		n++;
		if (count_only)
			continue;
		/* The padding of the last page reads as zeros. */
		memset(b->data + b->len, 0, (size_t)(bytes > b->len ? bytes - b->len : 0));
		sio_write(l->io, &c->seg->wfile, b->data, (size_t)bytes, b->file_pos,
			  link ? IOSQE_IO_LINK : 0, chain_op(l, PLOG_OP_DATA + i, bytes));
	}
	return n;
}

/* Reserve the next stretch of the file when the writes come within half a
 * stretch of the reserved end. Pre-allocation only helps: its failure is
 * ignored (see plog_op_done). */
static bool chain_want_fallocate(const struct plog *l, const struct plog_chain *c)
{
	int64_t step = l->cfg.preallocate_bytes;
	const struct segment *s = c->seg;
	if (step <= 0 || c->bufs.head == NULL || s->alloc_end >= l->cfg.segment_bytes)
		return false;
	return page_up(c->readable) + step / 2 > s->alloc_end;
}

/* Whether the next step is written as zeros: the log has been written
 * slower than preallocate_zero_max_rate since the last step (or this is
 * its first), so the zeros cost the disk little and every sync until the
 * step is used up skips the journal commit that an unwritten extent's
 * conversion needs. A fast log gets fallocate: zeros would double its
 * writes. */
static bool chain_zero_due(struct plog *l, const struct segment *s)
{
	int64_t max_rate = l->cfg.preallocate_zero_max_rate;
	int64_t since = l->now_ms - l->prealloc_at_ms;
	uint64_t bytes = l->stats.bytes_written - l->prealloc_at_bytes;
	bool first = l->prealloc_at_ms < 0;
	l->prealloc_at_ms = l->now_ms;
	l->prealloc_at_bytes = l->stats.bytes_written;
	if (max_rate <= 0 || !s->wfile.direct)
		return false;
	return first || (double)bytes * 1000.0 < (double)max_rate * (double)(since > 0 ? since : 0);
}

static void chain_queue_fallocate(struct plog *l, struct plog_chain *c)
{
	struct segment *s = c->seg;
	int64_t len = l->cfg.preallocate_bytes;
	if (chain_zero_due(l, s)) {
		/* Zeros are data: they must start past every byte this chain
		 * writes (its last page padded), which at a high rate may be
		 * past the reserved end. The next chain starts after this one
		 * has completed, so nothing later can race them. */
		int64_t from = page_up(c->readable) > s->alloc_end ? page_up(c->readable)
								   : s->alloc_end;
		int64_t zl = len < SIO_ZERO_MAX_BYTES ? len : SIO_ZERO_MAX_BYTES;
		if (zl > l->cfg.segment_bytes - from)
			zl = l->cfg.segment_bytes - from;
		zl -= zl % SIO_ZERO_CHUNK_BYTES;
		if (zl > 0) {
			sio_zero(l->io, &s->wfile, from, zl, chain_op(l, PLOG_OP_FALLOCATE, -1));
			s->alloc_end = from + zl;
			l->stats.preallocated_bytes += (uint64_t)zl;
			return;
		}
	}
	if (len > l->cfg.segment_bytes - s->alloc_end)
		len = l->cfg.segment_bytes - s->alloc_end;
	sio_fallocate(l->io, &s->wfile, s->alloc_end, len, chain_op(l, PLOG_OP_FALLOCATE, -1));
	s->alloc_end += len;
	l->stats.preallocated_bytes += (uint64_t)len;
}

static bool plog_interval_sync_due(const struct plog *l)
{
	return l->cfg.flush == FLUSH_INTERVAL && l->now_ms >= l->next_sync_ms;
}

/* Keep a copy of the page the segment's data ends in, for the head of the
 * next buffer, once the last pending buffer leaves for a chain. */
static void plog_tail_page_save(struct plog *l, const struct wbuf *b)
{
	int64_t end = b->file_pos + b->len, part = end - page_down(end);
	if (part > 0)
		memcpy(l->tail_page, b->data + b->len - part, (size_t)part);
}

/* Move the segment's pending buffers (up to max) into the chain. Returns
 * how many; *rest tells whether more of s's remain. */
static int chain_take_bufs(struct plog *l, struct plog_chain *c, struct segment *s, int max,
			   bool *rest)
{
	int n = 0;
	c->bytes = 0;
	while (l->pending.head != NULL && l->pending.head->seg == s && n < max) {
		struct wbuf *b = wbuf_list_pop(&l->pending);
		n++;
		c->bytes += b->len - b->head;
		c->end_offset = b->end_offset;
		c->readable = b->batch_end; /* a batch may run on into the next */
		wbuf_list_push(&c->bufs, b);
	}
	*rest = l->pending.head != NULL && l->pending.head->seg == s;
	if (n > 0 && !*rest)
		plog_tail_page_save(l, c->bufs.tail);
	c->nbufs = n;
	return n;
}

/* Put back what chain_take_bufs took (not enough SQEs, or a full disk). */
static void chain_untake_bufs(struct plog *l, struct plog_chain *c)
{
	if (c->bufs.head == NULL)
		return;
	c->bufs.tail->next = l->pending.head;
	if (l->pending.head == NULL)
		l->pending.tail = c->bufs.tail;
	l->pending.head = c->bufs.head;
	c->bufs.head = c->bufs.tail = NULL;
	c->nbufs = 0;
}

/* The first chain of a segment creates its files (blocking, once per
 * segment) and makes their names durable. */
static int chain_open_files(struct plog *l, struct segment *s)
{
	if (s->wfile.fd >= 0)
		return 0;
	int rc = segment_open_files(s, l->dir);
	char path[4096];
	if (rc == 0)
		rc = segment_path(path, sizeof(path), l->dir, s->base_offset, ".log");
	if (rc == 0)
		rc = sio_open(l->io, path, SIO_FILE_LOG, true, &s->wfile);
	return rc != 0 ? rc : plog_dir_fsync(l->dir);
}

static bool chain_phase2(struct plog *l, struct plog_chain *c);
static void chain_done(struct plog *l);

int plog_chain_start(struct plog *l)
{
	struct plog_chain *c = &l->chain;
	if (c->busy || l->err != 0)
		return 0;
	if (l->retry_at_ms >= 0 && l->now_ms < l->retry_at_ms)
		return 0;
	struct segment *s = l->segs[l->n_sealed];
	/* A data write per buffer: take no more than the ring has room for
	 * beside the chain's other SQEs (the rest goes in the next chain). */
	bool iw = s->idx.n > s->idx.flushed, tw = s->tidx.n > s->tidx.flushed;
	bool has_bufs = l->pending.head != NULL && l->pending.head->seg == s;
	if (!has_bufs && !iw && !tw && l->n_sealed == l->n_segs - 1 &&
	    !(l->unsynced && plog_interval_sync_due(l)))
		return 0; /* nothing to do: not a full ring's business */
	int room = (int)sio_sq_space(l->io) - (iw + tw + (l->cfg.preallocate_bytes > 0) + 1);
	if (room < 1)
		return -EBUSY;
	bool rest;
	int nbufs = chain_take_bufs(l, c, s, room < PLOG_CHAIN_BUFS_MAX ? room : PLOG_CHAIN_BUFS_MAX,
				    &rest);
	c->seg = s;
	c->seal = l->n_sealed < l->n_segs - 1 && !rest;
	c->sync = c->seal || (nbufs > 0 && l->cfg.flush == FLUSH_ALWAYS) ||
		  ((nbufs > 0 || l->unsynced) && plog_interval_sync_due(l));
	c->writes = chain_queue_data(l, c, true, false);
	bool falloc = chain_want_fallocate(l, c);
	/* Outside a seal, a sync goes in phase 1 when it can: linked after a
	 * lone write, or alone when there is nothing to write. */
	c->linked = c->sync && !c->seal && c->writes == 1;
	bool sync_now = c->sync && !c->seal && c->writes <= 1;
	int need = c->writes + iw + tw + falloc + sync_now;
	if (need == 0 && !c->seal) {
		chain_untake_bufs(l, c);
		return 0;
	}
	if (sio_sq_space(l->io) < (unsigned)need) {
		chain_untake_bufs(l, c);
		return -EBUSY;
	}
	int rc = chain_open_files(l, s);
	if (rc != 0) {
		chain_untake_bufs(l, c);
		plog_fail(l, rc);
		return 0;
	}
	c->busy = true;
	c->phase = 1;
	c->ops_left = 0;
	c->err = 0;
	c->retry = false;
	c->idx_from = s->idx.flushed;
	c->tidx_from = s->tidx.flushed;
	chain_queue_data(l, c, false, c->linked);
	if (sync_now)
		sio_fdatasync(l->io, &s->wfile, chain_op(l, PLOG_OP_DATA_SYNC, -1));
	chain_queue_index(l, s->index_fd, &s->idx, SIO_FILE_INDEX, PLOG_OP_INDEX);
	chain_queue_index(l, s->timeindex_fd, &s->tidx, SIO_FILE_TIMEINDEX, PLOG_OP_TIMEINDEX);
	if (falloc)
		chain_queue_fallocate(l, c);
	if (c->sync && l->cfg.flush == FLUSH_INTERVAL)
		l->next_sync_ms = l->now_ms + l->cfg.flush_interval_ms;
	l->stats.writes += c->writes > 0;
	l->stats.syncs += c->sync;
	/* A seal with nothing left to write goes straight to its syncs. */
	if (c->ops_left == 0 && !chain_phase2(l, c)) {
		c->busy = false;
		plog_fail(l, c->err != 0 ? c->err : -EIO);
		return 0;
	}
	return c->ops_left;
}

int plog_flush(struct plog *l, struct io_uring *ring, int64_t now_ms)
{
	if (l->io == &l->own_io)
		l->own_io.ring = ring;
	l->now_ms = now_ms;
	if (l->chain.busy && l->chain.phase2_owed) {
		if (!chain_phase2(l, &l->chain))
			chain_done(l); /* failed: chain_done takes it offline */
		return l->chain.phase2_owed ? -EBUSY : 1;
	}
	if (l->closing)
		return 0;
	int rc = plog_chain_start(l);
	/* Going offline here calls the listener, which may close the log. */
	plog_maybe_finish(l);
	return rc;
}

int64_t plog_sync_deadline_ms(const struct plog *l)
{
	if (l->err != 0)
		return -1;
	if (l->chain.busy && l->chain.phase2_owed)
		return 0; /* its syncs could not be queued: at once */
	/* A write to retry is due then; while the retry is in flight its
	 * completion tells the listener what comes next. */
	if (l->retry_at_ms >= 0)
		return l->chain.busy ? -1 : l->retry_at_ms;
	if (l->cfg.flush != FLUSH_INTERVAL || !l->unsynced)
		return -1;
	return l->next_sync_ms < 0 ? 0 : l->next_sync_ms;
}

bool plog_write_stalled(const struct plog *l)
{
	return l->retry_at_ms >= 0;
}

/* A chain completed without error: publish what it made readable. */
static bool chain_publish(struct plog *l, struct plog_chain *c)
{
	bool advanced = c->bufs.head != NULL;
	l->retry_at_ms = -1;
	if (advanced) {
		l->hw = c->end_offset;
		c->seg->readable = c->readable;
		l->unwritten_bytes -= c->bytes;
		l->stats.bytes_written += c->bytes;
		if (l->cfg.flush == FLUSH_INTERVAL && !c->sync)
			l->unsynced = true;
	}
	if (c->sync)
		l->unsynced = false;
	if (c->seal) {
		l->n_sealed++;
		sio_close(l->io, &c->seg->wfile);
		/* Every entry is in the files, synced: lookups read them
		 * from there now (mapped), and the arrays go. */
		segment_settle_indexes(c->seg, c->seg->index_fd, c->seg->timeindex_fd);
		segment_close_index_files(c->seg);
	}
	return advanced;
}

/* The disk was full: everything goes back to wait for the retry. */
static void chain_retry_later(struct plog *l, struct plog_chain *c)
{
	chain_untake_bufs(l, c);
	c->seg->idx.flushed = c->idx_from;
	c->seg->tidx.flushed = c->tidx_from;
	l->retry_at_ms = l->now_ms + l->cfg.retry_ms;
	l->stats.write_retries++;
}

/* Start the next chain from a completion. The caller's loop submits once
 * per turn; if its SQ is full now, submit to make room rather than leave
 * appended data waiting for a plog_flush that may never come. */
static void chain_continue(struct plog *l)
{
	if (l->closing || l->io->ring == NULL)
		return;
	if (plog_chain_start(l) == -EBUSY && io_uring_submit(l->io->ring) >= 0)
		plog_chain_start(l);
}

/* Phase 2: the syncs, after every write of phase 1 is in. Returns true if
 * it queued something. A sealed segment's file is first cut to its data
 * (the padding and the unused pre-allocation go), so that the sealed file
 * is exactly its batches, as Kafka's tools expect. */
static bool chain_phase2(struct plog *l, struct plog_chain *c)
{
	if (!c->seal && !(c->sync && c->writes > 1))
		return false;
	struct segment *s = c->seg;
	if (c->seal) {
		/* Whatever ran past the data (page padding, pre-allocation). */
		if (ftruncate(s->log_fd, s->size) != 0) {
			c->err = -errno;
			return false;
		}
		s->alloc_end = s->size;
	}
	unsigned need = c->seal ? 3 : 1;
	if (sio_sq_space(l->io) < need)
		io_uring_submit(l->io->ring);
	if (sio_sq_space(l->io) < need) {
		/* The ring cannot take it now (a transient state): the next
		 * plog_flush queues it (plog_sync_deadline_ms says it is due). */
		c->phase2_owed = true;
		plog_notify(l); /* the listener puts the log on its owed list */
		return true;
	}
	c->phase2_owed = false;
	c->phase = 2;
	c->ops_left = 0;
	sio_fdatasync(l->io, &s->wfile, chain_op(l, PLOG_OP_DATA_SYNC, -1));
	if (c->seal) {
		struct sio_file fi = sio_file_of(s->index_fd, SIO_FILE_INDEX);
		struct sio_file ft = sio_file_of(s->timeindex_fd, SIO_FILE_TIMEINDEX);
		sio_fdatasync(l->io, &fi, chain_op(l, PLOG_OP_INDEX_SYNC, -1));
		sio_fdatasync(l->io, &ft, chain_op(l, PLOG_OP_TIMEINDEX_SYNC, -1));
	}
	return true;
}

static void chain_done(struct plog *l)
{
	struct plog_chain *c = &l->chain;
	if (c->phase == 1 && c->err == 0 && chain_phase2(l, c))
		return;
	c->busy = false;
	bool advanced = false, retry = false;
	if (c->err != 0 && c->retry && c->phase == 1) {
		chain_retry_later(l, c);
		retry = true;
	} else if (c->err != 0) {
		plog_fail(l, c->err);
	} else {
		advanced = chain_publish(l, c);
	}
	struct wbuf *b;
	while ((b = wbuf_list_pop(&c->bufs)) != NULL)
		plog_wbuf_written(l, b);
	if (c->err == 0)
		chain_continue(l);
	if (advanced || retry)
		plog_notify(l);
	plog_maybe_finish(l);
}

static void plog_op_done(struct uring_op *op, int res, uint32_t cqe_flags)
{
	(void)cqe_flags;
	struct plog_op *po = container_of(op, struct plog_op, op);
	struct plog *l = po->l;
	struct plog_chain *c = &l->chain;
	int kind = (int)(po - l->ops);
	int err = 0;
	if (kind == PLOG_OP_FALLOCATE) {
		/* Pre-allocation only saves work; without it writes still go
		 * (and a full disk shows there). */
		err = 0;
	} else if (res < 0) {
		err = res;
	} else if (po->expect >= 0 && res != po->expect) {
		err = -ENOSPC; /* a short write: the disk is filling up */
	}
	/* The linked fdatasync after a failed write reports -ECANCELED,
	 * which must not hide the first error; an error that cannot be
	 * retried beats a full disk. */
	bool worse = c->retry && err != -ENOSPC && err != -ECANCELED;
	if (err != 0 && (c->err == 0 || c->err == -ECANCELED || worse)) {
		c->err = err;
		c->retry = err == -ENOSPC && kind != PLOG_OP_DATA_SYNC &&
			   kind != PLOG_OP_INDEX_SYNC && kind != PLOG_OP_TIMEINDEX_SYNC;
	}
	if (--c->ops_left == 0)
		chain_done(l);
}

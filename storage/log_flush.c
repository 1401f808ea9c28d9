/*
 * log_flush: group commit. Everything appended since the last chain goes
 * out as one chain of SQEs:
 *
 *   writev(.log)  --link-->  fdatasync(.log)     (sync per flush mode)
 *   write(.index)            [--link--> fdatasync(.index)]      (seal only)
 *   write(.timeindex)        [--link--> fdatasync(.timeindex)]  (seal only)
 *
 * One chain per log is in flight at a time, so offsets become written and
 * durable in order, and a chain's completion starts the next one. A chain
 * covers one segment. The chain that ends a segment that is no longer
 * active "seals" it: it always syncs the data and the indexes, whatever the
 * flush mode, and only after it completes does the next segment's first
 * chain create that segment's files. Recovery relies on this to trust all
 * but the last segment.
 *
 * Index writes are not linked to the data write: an index entry that
 * reaches the disk before its batch is harmless, since recovery checks the
 * batch an entry points at before using it.
 */
#include <errno.h>

#include "storage/log_int.h"

static void plog_op_done(struct uring_op *op, int res, uint32_t cqe_flags);

void plog_ops_init(struct plog *l)
{
	for (int i = 0; i < PLOG_OP_COUNT; i++) {
		l->ops[i].op.done = plog_op_done;
		l->ops[i].l = l;
	}
}

static void chain_prep(struct plog *l, struct io_uring_sqe *sqe, enum plog_op_kind kind,
		       int64_t expect, bool link)
{
	l->ops[kind].expect = expect;
	uring_op_prep(sqe, &l->ops[kind].op);
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
}

static void chain_queue_sync(struct plog *l, int fd, enum plog_op_kind kind)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(l->ring);
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	chain_prep(l, sqe, kind, -1, false);
}

/* Write index entries [flushed, n) at their place in the file, optionally
 * followed by a linked fdatasync. */
static void chain_queue_index(struct plog *l, int fd, struct seg_index *ix,
			      enum plog_op_kind kind, bool sync)
{
	if (ix->n > ix->flushed) {
		size_t off = (size_t)ix->flushed * ix->entry_bytes;
		size_t bytes = (size_t)(ix->n - ix->flushed) * ix->entry_bytes;
		struct io_uring_sqe *sqe = io_uring_get_sqe(l->ring);
		io_uring_prep_write(sqe, fd, ix->raw + off, (unsigned)bytes, off);
		chain_prep(l, sqe, kind, (int64_t)bytes, sync);
		ix->flushed = ix->n;
	}
	if (sync)
		chain_queue_sync(l, fd, (enum plog_op_kind)(kind + 1));
}

static void chain_queue_data(struct plog *l, struct plog_chain *c, int niov)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(l->ring);
	int64_t pos = c->bufs.head->file_pos;
	io_uring_prep_writev(sqe, c->seg->log_fd, c->iov, (unsigned)niov, (uint64_t)pos);
	chain_prep(l, sqe, PLOG_OP_DATA, (int64_t)c->bytes, c->sync);
	if (c->sync)
		chain_queue_sync(l, c->seg->log_fd, PLOG_OP_DATA_SYNC);
}

static bool plog_interval_sync_due(const struct plog *l)
{
	return l->cfg.flush == FLUSH_INTERVAL && l->now_ms >= l->next_sync_ms;
}

/* Move the segment's pending buffers (up to PLOG_CHAIN_IOV_MAX) into the
 * chain. Returns how many; *rest tells whether more of s's remain. */
static int chain_take_bufs(struct plog *l, struct plog_chain *c, struct segment *s, bool *rest)
{
	int n = 0;
	c->bytes = 0;
	while (l->pending.head != NULL && l->pending.head->seg == s && n < PLOG_CHAIN_IOV_MAX) {
		struct wbuf *b = wbuf_list_pop(&l->pending);
		c->iov[n++] = (struct iovec){ b->data, b->len };
		c->bytes += b->len;
		c->end_offset = b->end_offset;
		c->readable = b->file_pos + b->len;
		wbuf_list_push(&c->bufs, b);
	}
	*rest = l->pending.head != NULL && l->pending.head->seg == s;
	return n;
}

/* Put back what chain_take_bufs took (not enough SQEs after all). */
static void chain_untake_bufs(struct plog *l, struct plog_chain *c)
{
	if (c->bufs.head == NULL)
		return;
	c->bufs.tail->next = l->pending.head;
	if (l->pending.head == NULL)
		l->pending.tail = c->bufs.tail;
	l->pending.head = c->bufs.head;
	c->bufs.head = c->bufs.tail = NULL;
}

/* The first chain of a segment creates its files (blocking, once per
 * segment) and makes their names durable. */
static int chain_open_files(struct plog *l, struct segment *s)
{
	if (s->log_fd >= 0 && s->index_fd >= 0 && s->timeindex_fd >= 0)
		return 0;
	int rc = segment_open_files(s, l->dir);
	return rc != 0 ? rc : plog_dir_fsync(l->dir);
}

int plog_chain_start(struct plog *l)
{
	struct plog_chain *c = &l->chain;
	if (c->busy || l->err != 0)
		return 0;
	struct segment *s = l->segs[l->n_sealed];
	bool rest;
	int niov = chain_take_bufs(l, c, s, &rest);
	c->seg = s;
	c->seal = l->n_sealed < l->n_segs - 1 && !rest;
	c->sync = c->seal || (niov > 0 && l->cfg.flush == FLUSH_ALWAYS) ||
		  ((niov > 0 || l->unsynced) && plog_interval_sync_due(l));
	bool iw = s->idx.n > s->idx.flushed, tw = s->tidx.n > s->tidx.flushed;
	int need = (niov > 0) + c->sync + iw + tw + (c->seal ? 2 : 0);
	if (need == 0)
		return 0;
	if (io_uring_sq_space_left(l->ring) < (unsigned)need) {
		chain_untake_bufs(l, c);
		return -EBUSY;
	}
	int rc = chain_open_files(l, s);
	if (rc != 0) {
		chain_untake_bufs(l, c);
		plog_fail(l, rc);
		return 0;
	}
	if (niov > 0)
		chain_queue_data(l, c, niov);
	else if (c->sync)
		chain_queue_sync(l, s->log_fd, PLOG_OP_DATA_SYNC);
	chain_queue_index(l, s->index_fd, &s->idx, PLOG_OP_INDEX, c->seal);
	chain_queue_index(l, s->timeindex_fd, &s->tidx, PLOG_OP_TIMEINDEX, c->seal);
	if (c->sync && l->cfg.flush == FLUSH_INTERVAL)
		l->next_sync_ms = l->now_ms + l->cfg.flush_interval_ms;
	c->busy = true;
	c->ops_left = need;
	c->err = 0;
	l->stats.writes += niov > 0;
	l->stats.syncs += c->sync;
	return need;
}

int plog_flush(struct plog *l, struct io_uring *ring, int64_t now_ms)
{
	l->ring = ring;
	l->now_ms = now_ms;
	if (l->closing)
		return 0;
	int rc = plog_chain_start(l);
	/* Going offline here calls the listener, which may close the log. */
	plog_maybe_finish(l);
	return rc;
}

int64_t plog_sync_deadline_ms(const struct plog *l)
{
	if (l->cfg.flush != FLUSH_INTERVAL || !l->unsynced)
		return -1;
	return l->next_sync_ms < 0 ? 0 : l->next_sync_ms;
}

/* A chain completed without error: publish what it made readable. */
static bool chain_publish(struct plog *l, struct plog_chain *c)
{
	bool advanced = c->bufs.head != NULL;
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
		segment_close_index_files(c->seg);
		segment_shrink_indexes(c->seg);
	}
	return advanced;
}

/* Start the next chain from a completion. The caller's loop submits once
 * per turn; if its SQ is full now, submit to make room rather than leave
 * appended data waiting for a plog_flush that may never come. */
static void chain_continue(struct plog *l)
{
	if (l->closing || l->ring == NULL)
		return;
	if (plog_chain_start(l) == -EBUSY && io_uring_submit(l->ring) >= 0)
		plog_chain_start(l);
}

static void chain_done(struct plog *l)
{
	struct plog_chain *c = &l->chain;
	c->busy = false;
	bool advanced = false;
	if (c->err != 0)
		plog_fail(l, c->err);
	else
		advanced = chain_publish(l, c);
	struct wbuf *b;
	while ((b = wbuf_list_pop(&c->bufs)) != NULL)
		plog_wbuf_release(l, b);
	if (c->err == 0)
		chain_continue(l);
	if (advanced)
		plog_notify(l);
	plog_maybe_finish(l);
}

static void plog_op_done(struct uring_op *op, int res, uint32_t cqe_flags)
{
	(void)cqe_flags;
	struct plog_op *po = container_of(op, struct plog_op, op);
	struct plog *l = po->l;
	struct plog_chain *c = &l->chain;
	/* A short write is a failure too (out of space, most likely); the
	 * linked fdatasync after a failed write reports -ECANCELED, which
	 * must not hide the first error. */
	int err = res < 0 ? res : (po->expect >= 0 && res != po->expect ? -EIO : 0);
	if (err != 0 && (c->err == 0 || c->err == -ECANCELED))
		c->err = err;
	if (--c->ops_left == 0)
		chain_done(l);
}

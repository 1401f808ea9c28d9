/*
 * log_cache: the tail cache. With O_DIRECT writes the page cache no longer
 * holds what was just written, yet most consumers read exactly that. So a
 * write buffer whose chain completed is not given back to the shard's pool
 * at once: it stays on the log's cached list, readable, and the pool takes
 * it back (oldest first, across every log of the shard) when a writer needs
 * a buffer or more than retain_max are kept (bufpool_retain). Writers never
 * wait for the cache, and the cache costs no memory beyond the pool's.
 *
 * A log's cached buffers are in file order (chains complete in order) and
 * the pool evicts in the order buffers were retained, so an evicted buffer
 * is always the head of its log's list.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "storage/log_int.h"
#include "storage/verify.h"

void plog_cache_on_evict(struct wbuf *b)
{
	struct plog *l = b->owner;
	VERIFY(l->cached.head == b);
	wbuf_list_pop(&l->cached);
}

void plog_wbuf_written(struct plog *l, struct wbuf *b)
{
	struct bufpool *p = l->cfg.pool;
	if (p == NULL || !bufpool_owns(p, b) || p->on_evict == NULL || l->err != 0 ||
	    l->closing) {
		plog_wbuf_release(l, b);
		return;
	}
	wbuf_list_push(&l->cached, b);
	bufpool_retain(p, b, l); /* may evict, even this log's head */
}

void plog_cache_drop(struct plog *l, const struct segment *s)
{
	struct wbuf **pp = &l->cached.head, *prev = NULL;
	while (*pp != NULL) {
		struct wbuf *b = *pp;
		if (s != NULL && b->seg != s) {
			prev = b;
			pp = &b->next;
			continue;
		}
		*pp = b->next;
		if (l->cached.tail == b)
			l->cached.tail = prev;
		bufpool_unretain(l->cfg.pool, b);
	}
}

/* Copy [pos, pos + n) of s from the cached buffers if they hold all of it
 * (consecutive buffers may overlap by a page head: either copy serves). */
static bool plog_cache_copy(struct plog *l, const struct segment *s, uint8_t *dst, size_t n,
			    int64_t pos)
{
	int64_t cur = pos, end = pos + (int64_t)n;
	for (struct wbuf *b = l->cached.head; b != NULL && cur < end; b = b->next) {
		if (b->seg != s)
			continue;
		int64_t lo = b->file_pos, hi = b->file_pos + b->len;
		if (cur < lo)
			return false; /* a hole: evicted, or never cached */
		if (cur >= hi)
			continue;
		int64_t take = (end < hi ? end : hi) - cur;
		memcpy(dst + (cur - pos), b->data + (cur - lo), (size_t)take);
		cur += take;
	}
	return cur == end;
}

/* Serve the read from the cache if it holds all of it. */
static bool plog_cache_read(struct plog *l, const struct segment *s, void *buf, size_t n,
			    int64_t pos)
{
	if (l->cached.head == NULL || !plog_cache_copy(l, s, buf, n, pos))
		return false;
	l->stats.cache_reads++;
	l->stats.cache_read_bytes += n;
	return true;
}

ssize_t plog_pread(void *log, const struct segment *s, void *buf, size_t n, int64_t pos)
{
	struct plog *l = log;
	return plog_cache_read(l, s, buf, n, pos) ? (ssize_t)n : segment_pread(s, buf, n, pos);
}

ssize_t plog_pread_nowait(void *log, const struct segment *s, void *buf, size_t n, int64_t pos)
{
	struct plog *l = log;
	if (plog_cache_read(l, s, buf, n, pos))
		return (ssize_t)n;
	/* The page cache may have it (read before, or written buffered):
	 * RWF_NOWAIT answers EAGAIN instead of going to the disk. */
	size_t done = 0;
	while (done < n) {
		struct iovec iov = { (uint8_t *)buf + done, n - done };
		ssize_t r = preadv2(s->log_fd, &iov, 1, pos + (int64_t)done, RWF_NOWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EOPNOTSUPP ? -EAGAIN : -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/*
 * log_cache: the tail cache. With O_DIRECT writes the page cache no longer
 * holds what was just written, yet most consumers read exactly that. So a
 * write buffer whose chain completed is not given back to the shard's pool
 * at once: it stays on the log's cached list, readable, and the pool takes
 * it back (oldest first, across every log of the shard) when a writer needs
 * a buffer or more than retain_max are kept (bufpool_retain). Writers never
 * wait for the cache, and the cache costs no memory beyond the pool's.
 *
 * A log's cached buffers are in file order (chains complete in order, and
 * segments follow each other), so they are kept in a ring, oldest first:
 * the pool evicts in the order buffers were retained, so an evicted buffer
 * is always the oldest of its log's, and a read finds the first buffer it
 * needs by binary search, however many the log holds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "storage/log_int.h"
#include "storage/verify.h"

static struct wbuf **cache_at(const struct plog_cache *c, uint32_t i)
{
	return &c->slot[(c->first + i) % c->cap];
}

int plog_cache_init(struct plog *l)
{
	const struct bufpool *p = l->cfg.pool;
	if (p == NULL || p->retain_max == 0)
		return 0;
	/* A log never holds more than the pool retains, and only for the
	 * moment between its push and the eviction it causes, one more. */
	uint32_t cap = (p->retain_max < p->total ? p->retain_max : p->total) + 1;
	l->cache.slot = calloc(cap, sizeof(l->cache.slot[0]));
	if (l->cache.slot == NULL)
		return -ENOMEM;
	l->cache.cap = cap;
	return 0;
}

void plog_cache_on_evict(struct wbuf *b)
{
	struct plog *l = b->owner;
	struct plog_cache *c = &l->cache;
	VERIFY(c->n > 0 && *cache_at(c, 0) == b);
	c->first = (c->first + 1) % c->cap;
	c->n--;
}

void plog_wbuf_written(struct plog *l, struct wbuf *b)
{
	struct bufpool *p = l->cfg.pool;
	struct plog_cache *c = &l->cache;
	if (p == NULL || !bufpool_owns(p, b) || p->on_evict == NULL || l->err != 0 ||
	    l->closing || c->n == c->cap) {
		plog_wbuf_release(l, b);
		return;
	}
	*cache_at(c, c->n++) = b;
	bufpool_retain(p, b, l); /* may evict, even this log's oldest */
}

void plog_cache_drop(struct plog *l, const struct segment *s)
{
	struct plog_cache *c = &l->cache;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		struct wbuf *b = *cache_at(c, i);
		if (s != NULL && b->seg != s)
			*cache_at(c, kept++) = b; /* in order: kept <= i */
		else
			bufpool_unretain(l->cfg.pool, b);
	}
	c->n = kept;
}

/* Is b wholly before position pos of s? Buffers of earlier segments are;
 * within s, those that end at or before pos. */
static bool cache_before(const struct wbuf *b, const struct segment *s, int64_t pos)
{
	if (b->seg != s)
		return b->seg->base_offset < s->base_offset;
	return b->file_pos + b->len <= pos;
}

/* The first cached buffer not wholly before pos of s (n if none). Buffers
 * are in file order and each ends no earlier than the one before it. */
static uint32_t cache_find(const struct plog_cache *c, const struct segment *s, int64_t pos)
{
	uint32_t lo = 0, hi = c->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (cache_before(*cache_at(c, mid), s, pos))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Copy [pos, pos + n) of s from the cached buffers if they hold all of it
 * (consecutive buffers may overlap by a page head: either copy serves). */
static bool plog_cache_copy(struct plog *l, const struct segment *s, uint8_t *dst, size_t n,
			    int64_t pos)
{
	const struct plog_cache *c = &l->cache;
	int64_t cur = pos, end = pos + (int64_t)n;
	for (uint32_t i = cache_find(c, s, pos); i < c->n && cur < end; i++) {
		const struct wbuf *b = *cache_at(c, i);
		int64_t lo = b->file_pos, hi = b->file_pos + b->len;
		if (b->seg != s || cur < lo)
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
	if (l->cache.n == 0 || !plog_cache_copy(l, s, buf, n, pos))
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

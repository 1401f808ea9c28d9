/*
 * read_pool: a shard's memory for reads of data no longer in memory (cold
 * fetches). One hugemem region (log.read.buffer.bytes) carved into
 * FETCH_READ_WINDOW_BYTES windows (storage/bufpool.h), registered with
 * every shard's io_uring, so the disk read into a window is a READ_FIXED
 * on whichever shard owns the partition, and the Fetch response sends the
 * record bytes from the window itself: no copy, no page pinning per I/O.
 *
 * Whose windows: the fetching request's shard's. A fetch takes windows
 * from its own shard's pool for the partitions found on the disk alone
 * (its own or, after their owner said so, other shards'), hands each to
 * the read by pointer, and gives them back when its response has been
 * sent (request_release, after a zero-copy send's notification too), when
 * it parks, or when a read brought nothing. So taking and giving back are
 * plain list operations on one thread, and a window never crosses back.
 *
 * Waiting without deadlock: a fetch that finds no window free waits in
 * this FIFO holding none, and one that holds windows never waits for
 * more (it takes what is free, its connection's fetches together at most
 * 1/FETCH_READ_WINDOWS_SHARE_DIV of the pool, and its other cold
 * partitions answer empty this time). Windows are held only by fetches
 * whose reads are at the disk or whose responses are being sent, which
 * both end (a client that stops reading holds its share until it reads or
 * goes), so every waiter is served in turn.
 *
 * Threading: a pool is used on its shard's thread only, except that other
 * shards' rings register its memory at start (read_pool_register) and
 * their reads write into windows lent to them by an xcall.
 */
#ifndef SLUICE_READ_POOL_H
#define SLUICE_READ_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/bufpool.h"
#include "xcall.h"

struct shard;

/* A fetch waiting for a window. ready runs (from an xcall to the shard
 * itself, never inside read_pool_put's caller) once a window is free and
 * the waiter is at the head; it takes what it needs with read_pool_get. */
struct read_pool_waiter {
	struct read_pool_waiter *next;
	void (*ready)(struct shard *sh, struct read_pool_waiter *w);
};

struct read_pool {
	struct bufpool bufs;     /* the windows */
	bool ready;              /* mapped */
	struct read_pool_waiter *wait_head, *wait_tail;
	struct xcall wake;       /* runs the waiters, queued to this shard */
	bool wake_queued;
	uint64_t waits;          /* fetches that had to wait for a window */
	uint64_t taken;          /* windows handed out */
};

/* Map the pool (config_read_pool_bytes), on the shard's own thread so
 * the pages are local to its CPU. 0 or -errno. Start-up only. */
int read_pool_init(struct shard *sh);

/* Register the shard's write pool and every shard's read pool with its
 * ring, as one table (io_uring has one per ring). Every shard's pool must
 * be mapped: call once all shards have started, on the shard's thread.
 * Refused (RLIMIT_MEMLOCK, an old kernel), it registers less (this
 * shard's pools, then the write pool alone) and says so: reads and writes
 * outside registered memory are plain ones. */
void read_pool_register(struct shard *sh);

/* Unmap the pool. Windows still out (a shutdown that gave up waiting)
 * leave it mapped. */
void read_pool_destroy(struct shard *sh);

/* A free window, or NULL. Never blocks. */
struct wbuf *read_pool_get(struct shard *sh);

/* Give a window back; the head waiter runs later in this turn's calls. */
void read_pool_put(struct shard *sh, struct wbuf *b);

/* Queue w behind the other waiters (FIFO). */
void read_pool_wait(struct shard *sh, struct read_pool_waiter *w);

static inline uint32_t read_pool_free_count(const struct read_pool *p)
{
	return p->bufs.n_free;
}

static inline uint32_t read_pool_total_count(const struct read_pool *p)
{
	return p->bufs.total;
}

#endif

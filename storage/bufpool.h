/*
 * bufpool: a shard's write buffers. One hugemem region carved into
 * WBUF_BYTES buffers, each with its header (struct wbuf) from an array
 * allocated with the pool, so a steady produce stream allocates nothing: a
 * log takes a buffer when its tail buffer is full and gives it back when
 * the write that carried it has completed. The same carving, with buffers
 * of another size (bufpool_init_sized), gives a shard its read windows
 * for cold fetches (dataplane/read_pool.h).
 *
 * Threading: one pool per shard, used only on the shard's thread (every
 * log of the shard draws from it through log_config.pool); no locks.
 *
 * Sizing (the caller's): a buffer is held from the append that opens it
 * until its write completes, so a shard needs about
 *   2 x (partitions appended to per turn)       one filling, one in flight
 *   + produce bytes/s x write latency / WBUF_BYTES
 * buffers. Running short is not fatal: plog_append answers
 * PLOG_ERR_BUFFER_FULL, which producers retry; the exhausted counter tells
 * how often, the sign to give the pool more memory.
 */
#ifndef SLUICE_STORAGE_BUFPOOL_H
#define SLUICE_STORAGE_BUFPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/hugemem.h"

struct segment;

/* A write buffer: its data, and the fields the log threads it through its
 * lists with. data and cap belong to whoever made the buffer (the pool,
 * or wbuf_new); the rest is the log's: bytes of one segment, contiguous
 * in its file from file_pos (page aligned). data is WBUF_ALIGN aligned and
 * cap a multiple of it, as O_DIRECT needs. */
struct wbuf {
	struct wbuf *next;
	struct segment *seg;
	int64_t file_pos;
	int64_t end_offset; /* log end offset after the last batch that ends in it */
	int64_t batch_end;  /* file position where that batch ends */
	uint32_t len, cap;
	uint32_t head;      /* data[0 .. head) is a copy of the file's bytes
			     * before the appended ones (the partial page
			     * file_pos starts in, which O_DIRECT rewrites) */
	/* Retained (bufpool_retain): its owner and its place in the pool's
	 * oldest-first list. */
	void *owner;
	struct wbuf *ret_prev, *ret_next;
	uint8_t *data;
};

struct bufpool {
	struct hugemem mem;      /* the buffers' data */
	struct wbuf *hdrs;       /* [total]; hdrs[i].data = mem.base + i * buf_bytes */
	struct wbuf *free;       /* last put first: its data is likeliest in cache */
	uint32_t total, n_free;
	uint32_t buf_bytes;      /* each buffer's size: WBUF_BYTES for writes */
	uint64_t oversize_bytes; /* held now by buffers of their own (batches
				  * larger than buf_bytes), outside the region */
	uint64_t exhausted;      /* gets that found every buffer in use */
	/* Retained buffers: written data kept as a read cache (the logs'
	 * tail cache), oldest first. They count as free for writers: a get
	 * that finds no free buffer takes the oldest retained one, after
	 * on_evict has told its owner. */
	struct wbuf *ret_head, *ret_tail;
	uint32_t n_retained, retain_max;
	void (*on_evict)(struct wbuf *b);
	uint64_t evictions;
};

/* Map bytes / WBUF_BYTES buffers (rounded down; 1 .. BUFPOOL_BUFS_MAX of
 * them) per policy (see hugemem_map; the first mapping of the process is
 * what the hugemem logger tells) and allocate their headers. Sizes that
 * are multiples of 2 MiB waste nothing on hugepages. Returns 0, -EINVAL
 * for a size out of range, -ENOMEM, or hugemem_map's error. Blocks
 * (mapping and prefaulting): start-up only. */
int bufpool_init(struct bufpool *p, size_t bytes, enum hugemem_policy policy);

/* bufpool_init with buffers of buf_bytes (a multiple of WBUF_ALIGN, at
 * most BUFPOOL_BUF_BYTES_MAX) instead of WBUF_BYTES: bytes / buf_bytes of them, 1 ..
 * BUFPOOL_BUFS_MAX. Same answers; -EINVAL for a bad buf_bytes. */
int bufpool_init_sized(struct bufpool *p, size_t bytes, size_t buf_bytes,
		       enum hugemem_policy policy);

/* Unmap the buffers. Every one must have been put back: the logs using
 * the pool are closed first (checked; a buffer still out would be written
 * into freed memory). */
void bufpool_destroy(struct bufpool *p);

/* A buffer with room for len bytes (len <= BATCH_BYTES_MAX plus a page
 * head), len 0.
 * len <= buf_bytes: one of the pool's, or NULL when all are in use.
 * Larger: a buffer of its own (cap len rounded up to WBUF_ALIGN), counted
 * in oversize_bytes until put back; NULL if it cannot be allocated.
 * Never blocks. */
struct wbuf *bufpool_get(struct bufpool *p, size_t len);

/* Give back a buffer from bufpool_get (no I/O may still be using it). */
void bufpool_put(struct bufpool *p, struct wbuf *b);

/* Buffers a writer can have now: free ones and retained ones. */
static inline uint32_t bufpool_free_count(const struct bufpool *p)
{
	return p->n_free + p->n_retained;
}

/* Keep b (written, from this pool: bufpool_owns) as a cache entry of
 * owner's instead of putting it back: it stays readable until the owner
 * drops it (bufpool_unretain) or the pool takes it back, oldest first,
 * for a writer or to stay within retain_max, after calling on_evict(b).
 * With retain_max 0 the buffer is simply put back. */
void bufpool_retain(struct bufpool *p, struct wbuf *b, void *owner);

/* The owner gives a retained buffer back. */
void bufpool_unretain(struct bufpool *p, struct wbuf *b);

/* True if b is one of the pool's own buffers (not an oversize one). */
bool bufpool_owns(const struct bufpool *p, const struct wbuf *b);

static inline uint32_t bufpool_total_count(const struct bufpool *p)
{
	return p->total;
}

/* Bytes of the region's buffers now out, retained ones aside (nor
 * counting oversize_bytes). */
uint64_t bufpool_in_use_bytes(const struct bufpool *p);

/* A buffer of its own, outside any pool, with room for len bytes (cap at
 * least WBUF_BYTES, rounded up to WBUF_ALIGN), len 0; NULL without memory.
 * For logs without a pool (unit tests, tools) and oversize batches.
 * Allocates: not for a shard's steady state. */
struct wbuf *wbuf_new(size_t len);
void wbuf_free(struct wbuf *b);

#endif

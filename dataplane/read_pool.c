/*
 * read_pool: see read_pool.h. The windows are a bufpool of
 * FETCH_READ_WINDOW_BYTES buffers; this file adds the FIFO of fetches
 * waiting for one and the registration of every shard's pool with every
 * ring.
 */
#include <errno.h>
#include <string.h>

#include "node.h"
#include "read_pool.h"
#include "say.h"
#include "shard.h"

int read_pool_init(struct shard *sh)
{
	struct read_pool *p = &sh->rpool;
	int64_t bytes = config_read_pool_bytes(sh->cfg);
	int rc = bufpool_init_sized(&p->bufs, (size_t)bytes, FETCH_READ_WINDOW_BYTES,
				    hugemem_policy_parse(sh->cfg->hugepages));
	if (rc != 0) {
		say_error("read buffer pool of %lld bytes: %s", (long long)bytes, strerror(-rc));
		return rc;
	}
	p->ready = true;
	return 0;
}

/* Register regions[0 .. n) with sh's ring; true if the kernel took them. */
static bool read_pool_try_register(struct shard *sh, struct sio_region *regions, int n,
				   const char *what)
{
	int rc = sio_register_regions(&sh->sio, regions, n);
	if (rc == 0)
		return true;
	say_warn("registering %s with io_uring: %s", what, strerror(-rc));
	return false;
}

void read_pool_register(struct shard *sh)
{
	struct sio_region regions[SHARDS_MAX + 1];
	int n = 0;
	regions[n++] = (struct sio_region){ sh->wpool.mem.base, sh->wpool.mem.bytes, 0 };
	regions[n++] = (struct sio_region){ sh->rpool.bufs.mem.base, sh->rpool.bufs.mem.bytes, 0 };
	/* Other shards' windows: a fetch of theirs lends us one for a
	 * partition of ours that is on the disk alone. */
	for (int i = 0; i < sh->n_shards; i++) {
		const struct read_pool *other = &sh->node->shards[i]->rpool;
		if (i != sh->id)
			regions[n++] = (struct sio_region){ other->bufs.mem.base,
							    other->bufs.mem.bytes, 0 };
	}
	if (read_pool_try_register(sh, regions, n, "every shard's read windows"))
		return;
	if (n > 2 && read_pool_try_register(sh, regions, 2, "this shard's buffers")) {
		say_warn("reads for other shards' fetches pin pages each time");
		return;
	}
	if (read_pool_try_register(sh, regions, 1, "the write buffers"))
		say_warn("cold reads pin pages each time");
	else
		say_warn("reads and writes pin pages each time");
}

void read_pool_destroy(struct shard *sh)
{
	struct read_pool *p = &sh->rpool;
	if (!p->ready)
		return;
	if (p->bufs.n_free != p->bufs.total) {
		/* Only after a shutdown that gave up on a connection: its
		 * response still names the window. The process is exiting. */
		say_warn("read buffer pool: %u windows still out at exit: left mapped",
			 p->bufs.total - p->bufs.n_free);
		return;
	}
	bufpool_destroy(&p->bufs);
	p->ready = false;
}

struct wbuf *read_pool_get(struct shard *sh)
{
	struct read_pool *p = &sh->rpool;
	struct wbuf *b = p->bufs.n_free > 0 ? bufpool_get(&p->bufs, FETCH_READ_WINDOW_BYTES) : NULL;
	p->taken += b != NULL;
	return b;
}

/* The self-call: serve the waiters, oldest first, while windows are free.
 * A waiter takes what it needs; one that took nothing (its connection
 * closed) leaves them to the next. */
static void read_pool_wake_run(struct shard *sh, struct xcall *x)
{
	struct read_pool *p = container_of(x, struct read_pool, wake);
	p->wake_queued = false;
	while (p->wait_head != NULL && p->bufs.n_free > 0) {
		struct read_pool_waiter *w = p->wait_head;
		p->wait_head = w->next;
		if (p->wait_head == NULL)
			p->wait_tail = NULL;
		w->next = NULL;
		w->ready(sh, w);
	}
}

void read_pool_put(struct shard *sh, struct wbuf *b)
{
	struct read_pool *p = &sh->rpool;
	bufpool_put(&p->bufs, b);
	/* Not here: the caller may be in the middle of a connection's send
	 * bookkeeping, which a waiter's answer would re-enter. */
	if (p->wait_head != NULL && !p->wake_queued) {
		p->wake_queued = true;
		xcall_send(sh, sh->id, &p->wake, read_pool_wake_run, NULL);
	}
}

void read_pool_wait(struct shard *sh, struct read_pool_waiter *w)
{
	struct read_pool *p = &sh->rpool;
	w->next = NULL;
	if (p->wait_tail != NULL)
		p->wait_tail->next = w;
	else
		p->wait_head = w;
	p->wait_tail = w;
	p->waits++;
	if (p->bufs.n_free > 0 && !p->wake_queued) {
		/* Queued behind waiters a put already called: served with them. */
		p->wake_queued = true;
		xcall_send(sh, sh->id, &p->wake, read_pool_wake_run, NULL);
	}
}

/*
 * xcall: see xcall.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "node.h"
#include "say.h"
#include "shard.h"
#include "xcall.h"

/* Messages taken from one ring per poll: bounds one turn's work per peer. */
#define XCALL_POLL_BURST 64

static void xcall_queue_push(struct xcall **head, struct xcall **tail, struct xcall *x)
{
	x->next = NULL;
	if (*tail != NULL)
		(*tail)->next = x;
	else
		*head = x;
	*tail = x;
}

/* Hand x to shard dst's ring, behind anything already waiting for it. */
static void xcall_post(struct shard *sh, int dst, struct xcall *x)
{
	sh->stats.xcalls_sent++;
	if (dst == sh->id) {
		xcall_queue_push(&sh->self_head, &sh->self_tail, x);
		return;
	}
	sh->xwake_mask |= 1ull << dst;
	if (sh->xq_head[dst] == NULL &&
	    spsc_push_burst(node_ring(sh->node, sh->id, dst), (void *const *)&x, 1) == 1)
		return;
	sh->stats.xcall_overflows++;
	xcall_queue_push(&sh->xq_head[dst], &sh->xq_tail[dst], x);
}

void xcall_send(struct shard *sh, int dst, struct xcall *x, xcall_fn run, xcall_fn done)
{
	x->run = run;
	x->done = done;
	x->src = (int16_t)sh->id;
	x->dst = (int16_t)dst;
	x->returning = false;
	if (done != NULL)
		sh->x_outstanding++;
	xcall_post(sh, dst, x);
}

void xcall_reply(struct shard *sh, struct xcall *x)
{
	if (x->done == NULL)
		return;
	x->returning = true;
	xcall_post(sh, x->src, x);
}

static void xcall_deliver(struct shard *sh, struct xcall *x)
{
	sh->stats.xcalls_received++;
	if (x->returning) {
		sh->x_outstanding--;
		x->done(sh, x);
	} else {
		x->run(sh, x);
	}
}

/* Push as much of the overflow list for dst as the ring takes. */
static void xcall_flush_overflow(struct shard *sh, int dst)
{
	struct spsc *ring = node_ring(sh->node, sh->id, dst);
	while (sh->xq_head[dst] != NULL) {
		struct xcall *x = sh->xq_head[dst];
		if (spsc_push_burst(ring, (void *const *)&x, 1) != 1)
			return;
		sh->xq_head[dst] = x->next;
		if (sh->xq_head[dst] == NULL)
			sh->xq_tail[dst] = NULL;
		sh->xwake_mask |= 1ull << dst;
	}
}

int xcall_poll(struct shard *sh)
{
	int ran = 0;
	struct node *n = sh->node;
	for (int src = 0; src < n->n_shards; src++) {
		if (src == sh->id)
			continue;
		void *batch[XCALL_POLL_BURST];
		uint32_t got = spsc_pop_burst(node_ring(n, src, sh->id), batch, XCALL_POLL_BURST);
		for (uint32_t i = 0; i < got; i++)
			xcall_deliver(sh, batch[i]);
		ran += (int)got;
	}
	/* Calls to ourselves, including any the calls above queued. */
	while (sh->self_head != NULL) {
		struct xcall *x = sh->self_head;
		sh->self_head = x->next;
		if (sh->self_head == NULL)
			sh->self_tail = NULL;
		xcall_deliver(sh, x);
		ran++;
	}
	for (int dst = 0; dst < n->n_shards; dst++)
		if (sh->xq_head[dst] != NULL)
			xcall_flush_overflow(sh, dst);
	return ran;
}

void xcall_ring_doorbells(struct shard *sh)
{
	uint64_t mask = sh->xwake_mask;
	sh->xwake_mask = 0;
	if (mask == 0)
		return;
	/* Pairs with the fence in shard_sleep_begin: either the target sees
	 * our ring entries before it sleeps, or we see it asleep here. */
	atomic_thread_fence(memory_order_seq_cst);
	while (mask != 0) {
		int dst = __builtin_ctzll(mask);
		mask &= mask - 1;
		struct shard *t = sh->node->shards[dst];
		if (!atomic_load_explicit(&t->sleeping, memory_order_relaxed))
			continue;
		if (!atomic_exchange_explicit(&t->sleeping, false, memory_order_relaxed))
			continue; /* someone else woke it */
		uint64_t one = 1;
		sh->stats.doorbells++;
		if (write(t->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			say_warn("shard %d: waking shard %d: %s", sh->id, dst, strerror(errno));
	}
}

bool xcall_incoming(struct shard *sh)
{
	struct node *n = sh->node;
	if (sh->self_head != NULL)
		return true;
	for (int src = 0; src < n->n_shards; src++)
		if (src != sh->id && spsc_count(node_ring(n, src, sh->id)) > 0)
			return true;
	return false;
}

bool xcall_queued(struct shard *sh)
{
	if (sh->self_head != NULL)
		return true;
	for (int dst = 0; dst < sh->node->n_shards; dst++)
		if (sh->xq_head[dst] != NULL)
			return true;
	return false;
}

/*
 * spsc: a bounded single-producer/single-consumer ring of pointers, the only
 * way shards talk to each other (a request part forwarded to the shard that
 * owns a partition, and its answer coming back).
 *
 * Exactly one thread pushes and exactly one thread pops; both run without
 * locks or read-modify-write atomics. The producer publishes slots with a
 * release store of `tail` and the consumer frees them with a release store
 * of `head`; each side reads the other's index with an acquire load, and
 * keeps a private cached copy of it so that most calls touch only its own
 * cache line. Capacity is a power of two; memory is given at init (sized
 * from the config at start-up), nothing is allocated afterwards.
 */
#ifndef SLUICE_SPSC_H
#define SLUICE_SPSC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SPSC_CACHE_LINE 64

struct spsc {
	/* Producer's line. */
	_Alignas(SPSC_CACHE_LINE) _Atomic uint64_t tail;
	uint64_t head_cached;
	/* Consumer's line. */
	_Alignas(SPSC_CACHE_LINE) _Atomic uint64_t head;
	uint64_t tail_cached;
	/* Read-only after init. */
	_Alignas(SPSC_CACHE_LINE) void **slots;
	uint64_t mask;
};

/* Bytes of slot memory for a ring of capacity slots. */
static inline size_t spsc_slots_bytes(uint32_t capacity)
{
	return sizeof(void *) * capacity;
}

/* capacity must be a power of two >= 2; slots must hold
 * spsc_slots_bytes(capacity) and outlive the ring. Returns 0 or -EINVAL. */
int spsc_init(struct spsc *r, void **slots, uint32_t capacity);

/* Producer only. Push up to n pointers in order; returns how many went in
 * (fewer when the ring is full: the caller keeps the rest and retries). */
static inline uint32_t spsc_push_burst(struct spsc *r, void *const *objs, uint32_t n)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t cap = r->mask + 1;
	if (tail + n - r->head_cached > cap) {
		/* Acquire: slots the consumer freed are ours to overwrite. */
		r->head_cached = atomic_load_explicit(&r->head, memory_order_acquire);
		uint64_t free_slots = cap - (tail - r->head_cached);
		if (n > free_slots)
			n = (uint32_t)free_slots;
	}
	for (uint32_t i = 0; i < n; i++)
		r->slots[(tail + i) & r->mask] = objs[i];
	/* Release: the slot writes above become visible before the new tail. */
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

/* Consumer only. Pop up to n pointers in push order; returns how many. */
static inline uint32_t spsc_pop_burst(struct spsc *r, void **objs, uint32_t n)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	if (head + n > r->tail_cached) {
		/* Acquire: pairs with the producer's release of tail. */
		r->tail_cached = atomic_load_explicit(&r->tail, memory_order_acquire);
		uint64_t avail = r->tail_cached - head;
		if (n > avail)
			n = (uint32_t)avail;
	}
	for (uint32_t i = 0; i < n; i++)
		objs[i] = r->slots[(head + i) & r->mask];
	/* Release: our reads of the slots happen before the producer reuses them. */
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

/* Entries in the ring as seen by either side (a snapshot, for counters). */
static inline uint32_t spsc_count(struct spsc *r)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	return (uint32_t)(tail - head);
}

#endif

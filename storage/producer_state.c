/*
 * producer_state: the idempotent producer table and the checks Kafka makes
 * against it. Snapshot files are in producer_snapshot.c.
 */
#include "storage/producer_state.h"

#include <errno.h>
#include <stdlib.h>

#define PRODUCER_TABLE_INITIAL 16

static void table_reset(struct producer_entry *slots, uint32_t cap)
{
	for (uint32_t i = 0; i < cap; i++)
		slots[i].producer_id = -1;
}

int producer_state_init(struct producer_state *ps)
{
	ps->cap = PRODUCER_TABLE_INITIAL;
	ps->count = 0;
	ps->slots = malloc(sizeof(ps->slots[0]) * ps->cap);
	if (ps->slots == NULL)
		return -ENOMEM;
	table_reset(ps->slots, ps->cap);
	return 0;
}

void producer_state_free(struct producer_state *ps)
{
	free(ps->slots);
	ps->slots = NULL;
	ps->cap = ps->count = 0;
}

void producer_state_clear(struct producer_state *ps)
{
	table_reset(ps->slots, ps->cap);
	ps->count = 0;
}

static uint32_t pid_hash(int64_t pid)
{
	uint64_t x = (uint64_t)pid * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(x >> 32);
}

static struct producer_entry *table_find(const struct producer_state *ps, int64_t pid)
{
	uint32_t mask = ps->cap - 1;
	for (uint32_t i = pid_hash(pid) & mask;; i = (i + 1) & mask) {
		struct producer_entry *e = &ps->slots[i];
		if (e->producer_id == pid)
			return e;
		if (e->producer_id < 0)
			return NULL;
	}
}

/* Slot for a new pid (the caller keeps the load factor <= 1/2). */
static struct producer_entry *table_slot(struct producer_state *ps, int64_t pid)
{
	uint32_t mask = ps->cap - 1;
	uint32_t i = pid_hash(pid) & mask;
	while (ps->slots[i].producer_id >= 0)
		i = (i + 1) & mask;
	return &ps->slots[i];
}

static int table_grow(struct producer_state *ps)
{
	uint32_t old_cap = ps->cap;
	struct producer_entry *old = ps->slots;
	struct producer_entry *slots = malloc(sizeof(slots[0]) * old_cap * 2);
	if (slots == NULL)
		return -ENOMEM;
	table_reset(slots, old_cap * 2);
	ps->slots = slots;
	ps->cap = old_cap * 2;
	for (uint32_t i = 0; i < old_cap; i++)
		if (old[i].producer_id >= 0)
			*table_slot(ps, old[i].producer_id) = old[i];
	free(old);
	return 0;
}

static const struct producer_batch *entry_last(const struct producer_entry *e)
{
	return &e->b[(e->head + PRODUCER_BATCHES_KEPT - 1) % PRODUCER_BATCHES_KEPT];
}

/* Remove e with backward-shift deletion, keeping probe chains intact. */
static void table_remove(struct producer_state *ps, struct producer_entry *e)
{
	uint32_t mask = ps->cap - 1;
	uint32_t hole = (uint32_t)(e - ps->slots);
	for (uint32_t i = (hole + 1) & mask; ps->slots[i].producer_id >= 0; i = (i + 1) & mask) {
		uint32_t home = pid_hash(ps->slots[i].producer_id) & mask;
		/* Move slot i into the hole unless its home lies in (hole, i]. */
		bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
		if (!stays) {
			ps->slots[hole] = ps->slots[i];
			hole = i;
		}
	}
	ps->slots[hole].producer_id = -1;
	ps->count--;
}

/* Table full: forget the producer whose last append is oldest. */
static void table_evict_oldest(struct producer_state *ps)
{
	struct producer_entry *victim = NULL;
	for (uint32_t i = 0; i < ps->cap; i++) {
		struct producer_entry *e = &ps->slots[i];
		if (e->producer_id >= 0 &&
		    (victim == NULL || entry_last(e)->last_offset < entry_last(victim)->last_offset))
			victim = e;
	}
	if (victim != NULL)
		table_remove(ps, victim);
}

enum producer_check producer_state_check(const struct producer_state *ps,
					 const struct batch_hdr *h, int64_t *dup_base_offset)
{
	const struct producer_entry *e = table_find(ps, h->producer_id);
	if (e == NULL || e->n == 0)
		return h->base_sequence == 0 ? PRODUCER_APPEND : PRODUCER_ERR_OUT_OF_ORDER;
	if (h->producer_epoch < e->epoch)
		return PRODUCER_ERR_EPOCH;
	if (h->producer_epoch > e->epoch)
		return h->base_sequence == 0 ? PRODUCER_APPEND : PRODUCER_ERR_OUT_OF_ORDER;
	int32_t last_seq = batch_seq_add(h->base_sequence, h->last_offset_delta);
	for (int i = 0; i < e->n; i++) {
		const struct producer_batch *b = &e->b[i];
		if (b->first_seq == h->base_sequence && b->last_seq == last_seq) {
			*dup_base_offset = b->first_offset;
			return PRODUCER_DUPLICATE;
		}
	}
	if (h->base_sequence != batch_seq_add(entry_last(e)->last_seq, 1))
		return PRODUCER_ERR_OUT_OF_ORDER;
	return PRODUCER_APPEND;
}

static void entry_push(struct producer_entry *e, const struct batch_hdr *h, int64_t base_offset)
{
	e->b[e->head] = (struct producer_batch){
		.first_seq = h->base_sequence,
		.last_seq = batch_seq_add(h->base_sequence, h->last_offset_delta),
		.first_offset = base_offset,
		.last_offset = base_offset + h->last_offset_delta,
	};
	e->head = (uint8_t)((e->head + 1) % PRODUCER_BATCHES_KEPT);
	if (e->n < PRODUCER_BATCHES_KEPT)
		e->n++;
}

static struct producer_entry *table_add(struct producer_state *ps, int64_t pid)
{
	if (ps->count >= PRODUCER_IDS_MAX)
		table_evict_oldest(ps);
	if ((ps->count + 1) * 2 > ps->cap && table_grow(ps) != 0)
		return NULL;
	struct producer_entry *e = table_slot(ps, pid);
	*e = (struct producer_entry){ .producer_id = pid };
	ps->count++;
	return e;
}

int producer_state_update(struct producer_state *ps, const struct batch_hdr *h,
			  int64_t base_offset)
{
	struct producer_entry *e = table_find(ps, h->producer_id);
	if (e == NULL) {
		e = table_add(ps, h->producer_id);
		if (e == NULL)
			return -ENOMEM;
		e->epoch = h->producer_epoch;
	}
	if (h->producer_epoch > e->epoch) {
		/* A new epoch starts a new sequence: older batches can no
		 * longer be retried, so they are not kept. */
		e->epoch = h->producer_epoch;
		e->n = e->head = 0;
	}
	entry_push(e, h, base_offset);
	return 0;
}

int64_t producer_state_last_offset(const struct producer_state *ps, int64_t pid)
{
	const struct producer_entry *e = table_find(ps, pid);
	return e == NULL || e->n == 0 ? -1 : entry_last(e)->last_offset;
}

/*
 * compact_map: the cleaner's offset map, key -> the last offset it was seen
 * at, in memory fixed when the map is made (Kafka's SkimpyOffsetMap).
 *
 * A key is not stored, only a 128-bit hash of it: 24 bytes a slot whatever
 * the key's size, so log.cleaner.dedupe.buffer.size says exactly how many
 * keys one cleaning round can take. Two keys with the same hash would make
 * the cleaner drop the older one's latest record; at 128 bits that needs
 * about 2^64 keys, the same bet Kafka makes with MD5.
 *
 * Open addressing with linear probing, filled to COMPACT_MAP_LOAD_PCT at
 * most; "full" is the caller's cue to stop mapping and clean what is mapped
 * (the next round goes on from there).
 *
 * Clearing touches every slot, so it is done in steps (compact_map_clear_step)
 * like the rest of the cleaner's work.
 *
 * Threading: one map per shard cleaner, used on its thread. No I/O.
 */
#ifndef SLUICE_STORAGE_COMPACT_MAP_H
#define SLUICE_STORAGE_COMPACT_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct compact_slot {
	uint64_t h1, h2; /* the key's hash */
	int64_t offset;  /* -1: empty */
};

struct compact_map {
	struct compact_slot *slots;
	uint32_t cap;     /* slots */
	uint32_t max;     /* keys it takes before it is full */
	uint32_t count;   /* keys in it */
	uint32_t cleared; /* slots cleared so far by clear steps */
	uint64_t lookups, probes;
};

/* A map in bytes of memory (bytes / 24 slots). 0, -EINVAL when bytes
 * holds fewer than two slots, or -ENOMEM. */
int compact_map_init(struct compact_map *m, size_t bytes);
void compact_map_free(struct compact_map *m);

/* Memory the map holds. */
size_t compact_map_bytes(const struct compact_map *m);

/* Start emptying the map; then call compact_map_clear_step until it
 * returns true. Each step clears at most max_bytes of slots. */
void compact_map_clear_begin(struct compact_map *m);
bool compact_map_clear_step(struct compact_map *m, size_t max_bytes);

/* Room for n more keys (each may be new)? */
static inline bool compact_map_room(const struct compact_map *m, uint32_t n)
{
	return m->count <= m->max && m->max - m->count >= n;
}

/* key -> offset (replacing an older offset). The caller checked room
 * (compact_map_room); returns false, changing nothing, if the key is new
 * and the map is full. */
bool compact_map_put(struct compact_map *m, const uint8_t *key, size_t len, int64_t offset);

/* The offset stored for key, or -1. */
int64_t compact_map_get(struct compact_map *m, const uint8_t *key, size_t len);

/* The 128-bit hash keys are stored by (exposed for tests). */
void compact_map_hash(const uint8_t *key, size_t len, uint64_t *h1, uint64_t *h2);

#endif

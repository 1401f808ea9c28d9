/*
 * strmap: an intrusive hash table keyed by byte strings (group ids, member
 * ids, group instance ids, topic-partitions of committed offsets).
 *
 * The caller embeds a struct strmap_node in its object and owns both the
 * object and the key bytes, which must stay put while the node is in a
 * map. Chained buckets, a power of two of them, doubled when the entries
 * outnumber them, so lookups and inserts cost O(1) on average and a
 * resize costs O(n) once per doubling. The hash is seeded per map from
 * the kernel's random source, so a client cannot precompute ids that all
 * land in one bucket.
 *
 * Threading: one map belongs to one thread (a shard).
 */
#ifndef SLUICE_STRMAP_H
#define SLUICE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_node {
	struct strmap_node *next;
	uint64_t hash;
	const uint8_t *key;
	uint32_t key_len;
};

struct strmap {
	struct strmap_node **buckets; /* NULL until the first insert */
	uint32_t n_buckets;           /* a power of two, or 0 */
	uint32_t count;
	uint64_t seed;
};

void strmap_init(struct strmap *m);
/* Frees the bucket array; the nodes are the caller's. */
void strmap_free(struct strmap *m);

/* Bytes this map holds itself (its buckets), for memory accounting. */
size_t strmap_bytes(const struct strmap *m);

struct strmap_node *strmap_find(const struct strmap *m, const void *key, size_t len);

/* Insert n under key (not already present). 0, or -ENOMEM when the first
 * bucket array cannot be allocated (a failed growth is not an error: the
 * chains just get longer). */
int strmap_insert(struct strmap *m, struct strmap_node *n, const void *key, size_t len);

void strmap_remove(struct strmap *m, struct strmap_node *n);

/* Iteration in no particular order: first, then next until NULL. The map
 * must not change meanwhile, except by removing the node just returned
 * (take next before removing it). */
struct strmap_node *strmap_first(const struct strmap *m);
struct strmap_node *strmap_next(const struct strmap *m, const struct strmap_node *n);

#endif

/*
 * strmap: see strmap.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "strmap.h"

/* The first bucket array: small, most maps (members of a small group,
 * offsets of a few partitions) never grow past it. */
#define STRMAP_BUCKETS_MIN 8

static uint64_t strmap_hash(const struct strmap *m, const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 14695981039346656037ull ^ m->seed; /* FNV-1a, seeded */
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	/* splitmix64 finaliser: the bucket index uses the low bits. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != sizeof(m->seed))
		m->seed = (uint64_t)(uintptr_t)m * 0x9e3779b97f4a7c15ull; /* early boot only */
}

void strmap_free(struct strmap *m)
{
	free(m->buckets);
	m->buckets = NULL;
	m->n_buckets = 0;
	m->count = 0;
}

size_t strmap_bytes(const struct strmap *m)
{
	return (size_t)m->n_buckets * sizeof(m->buckets[0]);
}

struct strmap_node *strmap_find(const struct strmap *m, const void *key, size_t len)
{
	if (m->count == 0)
		return NULL;
	uint64_t h = strmap_hash(m, key, len);
	for (struct strmap_node *n = m->buckets[h & (m->n_buckets - 1)]; n != NULL; n = n->next)
		if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0)
			return n;
	return NULL;
}

static void strmap_grow(struct strmap *m)
{
	uint32_t nb = m->n_buckets * 2;
	struct strmap_node **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i < m->n_buckets; i++) {
		struct strmap_node *n = m->buckets[i];
		while (n != NULL) {
			struct strmap_node *next = n->next;
			struct strmap_node **slot = &b[n->hash & (nb - 1)];
			n->next = *slot;
			*slot = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = nb;
}

int strmap_insert(struct strmap *m, struct strmap_node *n, const void *key, size_t len)
{
	if (m->buckets == NULL) {
		m->buckets = calloc(STRMAP_BUCKETS_MIN, sizeof(*m->buckets));
		if (m->buckets == NULL)
			return -ENOMEM;
		m->n_buckets = STRMAP_BUCKETS_MIN;
	} else if (m->count >= m->n_buckets && m->n_buckets < (1u << 30)) {
		strmap_grow(m);
	}
	n->hash = strmap_hash(m, key, len);
	n->key = key;
	n->key_len = (uint32_t)len;
	struct strmap_node **slot = &m->buckets[n->hash & (m->n_buckets - 1)];
	n->next = *slot;
	*slot = n;
	m->count++;
	return 0;
}

void strmap_remove(struct strmap *m, struct strmap_node *n)
{
	struct strmap_node **pp = &m->buckets[n->hash & (m->n_buckets - 1)];
	while (*pp != NULL && *pp != n)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return;
	*pp = n->next;
	n->next = NULL;
	m->count--;
}

static struct strmap_node *strmap_scan(const struct strmap *m, uint32_t from)
{
	for (uint32_t i = from; i < m->n_buckets; i++)
		if (m->buckets[i] != NULL)
			return m->buckets[i];
	return NULL;
}

struct strmap_node *strmap_first(const struct strmap *m)
{
	return m->count == 0 ? NULL : strmap_scan(m, 0);
}

struct strmap_node *strmap_next(const struct strmap *m, const struct strmap_node *n)
{
	if (n->next != NULL)
		return n->next;
	return strmap_scan(m, (uint32_t)(n->hash & (m->n_buckets - 1)) + 1);
}

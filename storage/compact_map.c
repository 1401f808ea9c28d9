/*
 * compact_map: see compact_map.h.
 */
#include "storage/compact_map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/limits.h"

_Static_assert(sizeof(struct compact_slot) == 24, "24 bytes a key, as documented");

int compact_map_init(struct compact_map *m, size_t bytes)
{
	memset(m, 0, sizeof(*m));
	size_t cap = bytes / sizeof(struct compact_slot);
	if (cap < 2)
		return -EINVAL;
	if (cap > UINT32_MAX / 2)
		cap = UINT32_MAX / 2;
	m->slots = malloc(cap * sizeof(struct compact_slot));
	if (m->slots == NULL)
		return -ENOMEM;
	m->cap = (uint32_t)cap;
	m->max = (uint32_t)((uint64_t)cap * COMPACT_MAP_LOAD_PCT / 100);
	if (m->max == 0)
		m->max = 1;
	/* Empty from the start: a first round needs no clearing steps. */
	memset(m->slots, 0xff, cap * sizeof(struct compact_slot));
	m->cleared = m->cap;
	return 0;
}

void compact_map_free(struct compact_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

size_t compact_map_bytes(const struct compact_map *m)
{
	return (size_t)m->cap * sizeof(struct compact_slot);
}

void compact_map_clear_begin(struct compact_map *m)
{
	m->cleared = 0;
	m->count = 0;
}

bool compact_map_clear_step(struct compact_map *m, size_t max_bytes)
{
	uint32_t n = (uint32_t)(max_bytes / sizeof(struct compact_slot));
	if (n == 0)
		n = 1;
	if (n > m->cap - m->cleared)
		n = m->cap - m->cleared;
	/* All-ones bytes make offset -1: the empty mark. */
	memset(m->slots + m->cleared, 0xff, (size_t)n * sizeof(struct compact_slot));
	m->cleared += n;
	return m->cleared == m->cap;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* A 64x64->128 multiply folded to 64 bits: the mixing step of the hash. */
static uint64_t mix(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Two 64-bit lanes with different seeds over 8-byte words, each folding in
 * the length and finished with an avalanche; the pair is the 128-bit hash.
 * Not cryptographic: keys come from producers of one's own cluster. */
void compact_map_hash(const uint8_t *key, size_t len, uint64_t *h1, uint64_t *h2)
{
	const uint64_t k1 = 0x9E3779B97F4A7C15ull, k2 = 0xC2B2AE3D27D4EB4Full;
	const uint64_t k3 = 0x165667B19E3779F9ull, k4 = 0xD6E8FEB86659FD93ull;
	uint64_t a = k1 ^ len, b = k2 ^ (len * k3);
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = rd64(key + i);
		a = mix(a ^ w, k3);
		b = mix(b ^ w, k4) + a;
	}
	uint64_t tail = 0;
	for (size_t j = 0; i + j < len; j++)
		tail |= (uint64_t)key[i + j] << (8 * j);
	a = mix(a ^ tail ^ 0xA5, k4);
	b = mix(b ^ tail ^ 0x5A, k3) + a;
	*h1 = mix(a ^ (a >> 29), k1) ^ b;
	*h2 = mix(b ^ (b >> 31), k2) ^ a;
}

/* The slot holding (h1, h2), or the empty slot where it would go. */
static struct compact_slot *map_find(struct compact_map *m, uint64_t h1, uint64_t h2)
{
	uint32_t i = (uint32_t)(h1 % m->cap);
	m->lookups++;
	for (;;) {
		struct compact_slot *s = &m->slots[i];
		m->probes++;
		if (s->offset < 0 || (s->h1 == h1 && s->h2 == h2))
			return s;
		i = i + 1 == m->cap ? 0 : i + 1;
	}
}

bool compact_map_put(struct compact_map *m, const uint8_t *key, size_t len, int64_t offset)
{
	uint64_t h1, h2;
	compact_map_hash(key, len, &h1, &h2);
	struct compact_slot *s = map_find(m, h1, h2);
	if (s->offset < 0) {
		/* count < max < cap keeps an empty slot for every probe to end at. */
		if (m->count >= m->max)
			return false;
		m->count++;
		s->h1 = h1;
		s->h2 = h2;
	}
	s->offset = offset;
	return true;
}

int64_t compact_map_get(struct compact_map *m, const uint8_t *key, size_t len)
{
	uint64_t h1, h2;
	compact_map_hash(key, len, &h1, &h2);
	return map_find(m, h1, h2)->offset;
}

/*
 * ktest_util.c: see ktest_util.h.
 */
#include "ktest_util.h"

#include <stdio.h>
#include <stdlib.h>

void ktest_seed(struct ktest_rng *g, uint64_t seed)
{
	g->s = seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;
	(void)ktest_u64(g);
}

/* splitmix64: tiny, good enough, and the same on every platform. */
uint64_t ktest_u64(struct ktest_rng *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

bool ktest_chance(struct ktest_rng *g, unsigned n)
{
	return ktest_u64(g) % n == 0;
}

int32_t ktest_count(struct ktest_rng *g)
{
	return (int32_t)(ktest_u64(g) % 4);
}

void *ktest_alloc(struct karena *a, size_t bytes)
{
	void *p = karena_alloc(a, bytes ? bytes : 1);
	if (!p) {
		fprintf(stderr, "ktest_alloc: arena exhausted\n");
		abort();
	}
	return p;
}

struct kstr ktest_str(struct ktest_rng *g, struct karena *a, bool nullable)
{
	if (nullable && ktest_chance(g, 4))
		return KSTR_NULL;
	int32_t len = (int32_t)(ktest_u64(g) % 9);
	char *s = ktest_alloc(a, (size_t)len);
	for (int32_t i = 0; i < len; i++)
		s[i] = (char)('a' + ktest_u64(g) % 26);
	return (struct kstr){ s, len };
}

struct kbytes ktest_bytes(struct ktest_rng *g, struct karena *a, bool nullable, bool records)
{
	if (nullable && ktest_chance(g, 4))
		return KBYTES_NULL;
	int32_t len = (int32_t)(ktest_u64(g) % 24);
	if (records && ktest_chance(g, 6))
		len = KW_REF_MIN_BYTES + (int32_t)(ktest_u64(g) % 300);
	uint8_t *p = ktest_alloc(a, (size_t)len);
	for (int32_t i = 0; i < len; i++)
		p[i] = (uint8_t)ktest_u64(g);
	return (struct kbytes){ p, len };
}

struct kuuid ktest_uuid(struct ktest_rng *g)
{
	struct kuuid u;
	uint64_t x = ktest_u64(g), y = ktest_u64(g);
	memcpy(u.b, &x, 8);
	memcpy(u.b + 8, &y, 8);
	return u;
}

bool ktest_mismatch(const char *what)
{
	fprintf(stderr, "mismatch at %s\n", what);
	return false;
}

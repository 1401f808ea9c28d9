/*
 * bench_keys: record keys. "random" draws uniformly from --keys keys,
 * "sequential" cycles through them, "zipf" draws with Zipf's law (theta
 * 0.99, the skew YCSB uses: a few keys take most records) by the method of
 * Gray et al., "Quickly generating billion-record synthetic databases"
 * (SIGMOD 1994): O(keys) once to sum the zeta series, O(1) per key.
 * A record's stream (topic and partition) is a hash of its key, so each key
 * stays in one partition, as a Kafka partitioner would keep it.
 */
#include <math.h>
#include <stdio.h>

#include "bench.h"

#define BENCH_ZIPF_THETA 0.99

/* xorshift64*: fast, good enough for picking keys, seedable per thread. */
uint64_t bench_rng(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static double bench_unit(uint64_t *state)
{
	return (double)(bench_rng(state) >> 11) / (double)(1ull << 53);
}

static double bench_zeta(int64_t n, double theta)
{
	double sum = 0;
	for (int64_t i = 1; i <= n; i++)
		sum += 1.0 / pow((double)i, theta);
	return sum;
}

void bench_keys_init(struct bench_keys *k, const struct bench_opts *o, int seed)
{
	*k = (struct bench_keys){ .dist = o->keydist, .n = o->keys,
				  .rng = 0x9E3779B97F4A7C15ull * (uint64_t)(seed + 1) };
	k->next = (int64_t)seed; /* sequential: each producer from its own key */
	if (k->dist != BENCH_KEYS_ZIPF)
		return;
	double theta = BENCH_ZIPF_THETA, zeta2 = bench_zeta(2, theta);
	k->zipf_zetan = bench_zeta(k->n, theta);
	k->zipf_alpha = 1.0 / (1.0 - theta);
	k->zipf_eta = (1.0 - pow(2.0 / (double)k->n, 1.0 - theta)) / (1.0 - zeta2 / k->zipf_zetan);
	k->zipf_half = 1.0 + pow(0.5, theta);
}

static int64_t bench_zipf(struct bench_keys *k)
{
	double u = bench_unit(&k->rng), uz = u * k->zipf_zetan;
	if (uz < 1.0)
		return 0;
	if (uz < k->zipf_half)
		return 1;
	int64_t v = (int64_t)((double)k->n * pow(k->zipf_eta * u - k->zipf_eta + 1.0, k->zipf_alpha));
	return v < k->n ? v : k->n - 1;
}

/* FNV-1a: a stable hash, the same on every run. */
static uint32_t bench_fnv(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

const char *bench_keys_next(struct bench_keys *k, size_t *len, int streams, int *stream)
{
	int64_t id;
	switch (k->dist) {
	case BENCH_KEYS_NONE:
		*len = 0;
		return NULL;
	case BENCH_KEYS_RANDOM:
		id = (int64_t)(bench_rng(&k->rng) % (uint64_t)k->n);
		break;
	case BENCH_KEYS_SEQUENTIAL:
		id = k->next++ % k->n;
		break;
	default:
		id = bench_zipf(k);
		break;
	}
	*len = (size_t)snprintf(k->buf, sizeof(k->buf), "key-%lld", (long long)id);
	*stream = (int)(bench_fnv(k->buf, *len) % (uint32_t)streams);
	return k->buf;
}

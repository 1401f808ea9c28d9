/*
 * probe_stats: the clock and the percentile printing the C bench probes
 * share (produce_probe, sync_probe, offset_commit). Header-only: each
 * probe is one file built on its own.
 */
#ifndef SLUICE_BENCH_PROBE_STATS_H
#define SLUICE_BENCH_PROBE_STATS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort v (n latencies in ns) and print it as the JSON member
 * "name": {"p50": .., "p90": .., "p99": .., "p99_9": .., "max": ..} in us. */
static inline void print_pcts(const char *name, int64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_i64);
	static const struct { const char *k; double q; } qs[] = {
		{ "p50", .5 }, { "p90", .9 }, { "p99", .99 }, { "p99_9", .999 },
	};
	printf("\"%s\": {", name);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t at = (size_t)(qs[i].q * (double)n);
		printf("\"%s\": %lld, ", qs[i].k, n ? (long long)(v[at < n ? at : n - 1] / 1000) : 0LL);
	}
	printf("\"max\": %lld}", n ? (long long)(v[n - 1] / 1000) : 0LL);
}

#endif

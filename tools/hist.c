/* hist: log-linear histogram with one writer. See hist.h. */
#include "hist.h"

#define RELAXED memory_order_relaxed

static void hist_index(uint64_t v, unsigned *bucket, unsigned *sub)
{
	if (v < HIST_SUB) {
		*bucket = 0;
		*sub = (unsigned)v;
		return;
	}
	unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS */
	*bucket = top - HIST_SUB_BITS + 1;
	*sub = (unsigned)(v >> (top - HIST_SUB_BITS)) & (HIST_SUB - 1);
}

/* The largest value that falls into (bucket, sub). */
static uint64_t hist_value(unsigned bucket, unsigned sub)
{
	if (bucket == 0)
		return sub;
	unsigned shift = bucket - 1;
	return ((uint64_t)(HIST_SUB | sub) << shift) + ((1ull << shift) - 1);
}

/* One writer: a load and a store, not a locked read-modify-write. */
static inline void hist_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, RELAXED) + n, RELAXED);
}

void hist_record(struct hist *h, uint64_t v)
{
	unsigned b, s;
	hist_index(v, &b, &s);
	if (b >= HIST_BUCKETS) {
		b = HIST_BUCKETS - 1;
		s = HIST_SUB - 1;
	}
	hist_add(&h->counts[b][s], 1);
	hist_add(&h->sum, v);
	if (v > atomic_load_explicit(&h->max, RELAXED))
		atomic_store_explicit(&h->max, v, RELAXED);
	/* Last, so a reader that sees the total sees a bucket at least as full. */
	atomic_store_explicit(&h->total, atomic_load_explicit(&h->total, RELAXED) + 1,
			      memory_order_release);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	hist_add(&dst->total, atomic_load_explicit(&src->total, memory_order_acquire));
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		for (unsigned s = 0; s < HIST_SUB; s++) {
			uint64_t n = atomic_load_explicit(&src->counts[b][s], RELAXED);
			if (n != 0)
				hist_add(&dst->counts[b][s], n);
		}
	hist_add(&dst->sum, atomic_load_explicit(&src->sum, RELAXED));
	uint64_t m = atomic_load_explicit(&src->max, RELAXED);
	if (m > atomic_load_explicit(&dst->max, RELAXED))
		atomic_store_explicit(&dst->max, m, RELAXED);
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t total = 0;
	/* Count the buckets rather than trust total: a snapshot of a running
	 * histogram may have one ahead of the other. */
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		for (unsigned s = 0; s < HIST_SUB; s++)
			total += atomic_load_explicit(&h->counts[b][s], RELAXED);
	if (total == 0)
		return 0;
	uint64_t want = q <= 0 ? 0 : (uint64_t)(q * (double)total);
	if (want >= total)
		want = total - 1;
	uint64_t seen = 0, max = atomic_load_explicit(&h->max, RELAXED);
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		for (unsigned s = 0; s < HIST_SUB; s++) {
			seen += atomic_load_explicit(&h->counts[b][s], RELAXED);
			if (seen > want) {
				uint64_t v = hist_value(b, s);
				return v < max ? v : max;
			}
		}
	return max;
}

uint64_t hist_count(const struct hist *h)
{
	return atomic_load_explicit(&h->total, memory_order_acquire);
}

uint64_t hist_max(const struct hist *h)
{
	return atomic_load_explicit(&h->max, RELAXED);
}

double hist_mean(const struct hist *h)
{
	uint64_t n = hist_count(h);
	return n == 0 ? 0.0 : (double)atomic_load_explicit(&h->sum, RELAXED) / (double)n;
}

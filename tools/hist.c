/* hist: log-linear histogram. See hist.h. */
#include "hist.h"

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

static uint64_t hist_value(unsigned bucket, unsigned sub)
{
	if (bucket == 0)
		return sub;
	unsigned shift = bucket - 1;
	return ((uint64_t)(HIST_SUB | sub) << shift) + ((1ull << shift) - 1);
}

void hist_record(struct hist *h, uint64_t v)
{
	unsigned b, s;
	hist_index(v, &b, &s);
	if (b >= HIST_BUCKETS) {
		b = HIST_BUCKETS - 1;
		s = HIST_SUB - 1;
	}
	h->counts[b][s]++;
	h->total++;
	h->sum += (double)v;
	if (v > h->max)
		h->max = v;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (h->total == 0)
		return 0;
	uint64_t want = (uint64_t)(q * (double)h->total);
	if (want >= h->total)
		want = h->total - 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		for (unsigned s = 0; s < HIST_SUB; s++) {
			seen += h->counts[b][s];
			if (seen > want) {
				uint64_t v = hist_value(b, s);
				return v < h->max ? v : h->max;
			}
		}
	return h->max;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned b = 0; b < HIST_BUCKETS; b++)
		for (unsigned s = 0; s < HIST_SUB; s++)
			dst->counts[b][s] += src->counts[b][s];
	dst->total += src->total;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

/*
 * hist: a log-linear latency histogram (HDR-style): values in microseconds,
 * 64 linear sub-buckets per power of two, so every percentile is within
 * ~1.6% of the true value. Fixed size, no allocation; single-threaded.
 */
#ifndef SLUICE_HIST_H
#define SLUICE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 - HIST_SUB_BITS)

struct hist {
	uint64_t counts[HIST_BUCKETS][HIST_SUB];
	uint64_t total;
	uint64_t max;
	double sum;
};

void hist_record(struct hist *h, uint64_t value);
/* The value at quantile q (0..1): the upper edge of its bucket. */
uint64_t hist_quantile(const struct hist *h, double q);
void hist_merge(struct hist *dst, const struct hist *src);

#endif

/*
 * hist: a log-linear latency histogram (HDR-style). Values are microseconds;
 * each power of two is split into HIST_SUB linear sub-buckets, so a
 * reported percentile is the upper edge of a bucket no wider than
 * 1/HIST_SUB of its value: at most 0.8% above the true value (values below
 * HIST_SUB us are exact). Fixed size, no allocation.
 *
 * Threads: one writer (hist_record) and any number of readers
 * (hist_merge, hist_quantile on a snapshot) at once: the counters are
 * atomics written with relaxed stores by their one writer, so a reader sees
 * each counter whole, though a snapshot taken mid-run may be a few records
 * behind on some buckets. That is what the live progress line needs.
 */
#ifndef SLUICE_HIST_H
#define SLUICE_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 - HIST_SUB_BITS)

struct hist {
	_Atomic uint64_t counts[HIST_BUCKETS][HIST_SUB];
	_Atomic uint64_t total;
	_Atomic uint64_t max;
	_Atomic uint64_t sum;
};

/* Add one value. Only the histogram's one writer may call it. */
void hist_record(struct hist *h, uint64_t value);

/* Add src's counts to dst; dst must not have a concurrent writer. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at quantile q (0..1): the upper edge of its bucket, never
 * above the largest value seen; 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

uint64_t hist_count(const struct hist *h);
uint64_t hist_max(const struct hist *h);
double hist_mean(const struct hist *h);

#endif

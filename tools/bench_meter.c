/*
 * bench_meter: what a producer or consumer measured — acknowledged or
 * consumed records and bytes, failures, and latency: for a producer from
 * each record's intended send time to its acknowledgement, for an
 * end-to-end consumer from the send time stamped in the value to the moment
 * the consumer sees it. Records scheduled (or, without a stamp, seen)
 * before the warm-up ends are counted in the totals but not measured.
 */
#include <string.h>

#include "bench.h"

#define RELAXED memory_order_relaxed

/* "SLBENCH" and a version byte: a value that starts otherwise is not stamped. */
static const char bench_stamp_magic[8] = { 'S', 'L', 'B', 'E', 'N', 'C', 'H', 1 };
_Static_assert(BENCH_STAMP_BYTES == sizeof(bench_stamp_magic) + sizeof(int64_t),
	       "stamp = magic + CLOCK_MONOTONIC ns");

void bench_stamp_put(char *value, size_t len, int64_t t)
{
	if (len < BENCH_STAMP_BYTES)
		return;
	memcpy(value, bench_stamp_magic, sizeof(bench_stamp_magic));
	memcpy(value + sizeof(bench_stamp_magic), &t, sizeof(t));
}

int64_t bench_stamp_get(const void *value, size_t len)
{
	int64_t t;
	if (value == NULL || len < BENCH_STAMP_BYTES ||
	    memcmp(value, bench_stamp_magic, sizeof(bench_stamp_magic)) != 0)
		return -1;
	memcpy(&t, (const char *)value + sizeof(bench_stamp_magic), sizeof(t));
	return t;
}

void bench_meter_init(struct bench_meter *m, const struct bench_env *env, bool e2e)
{
	memset(m, 0, sizeof(*m));
	m->warmup_end_ns = env->warmup_end_ns;
	m->e2e = e2e;
	m->requests = -1;
}

/* One writer: a load and a store, not a locked read-modify-write. */
static inline void bench_meter_add(_Atomic int64_t *c, int64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, RELAXED) + n, RELAXED);
}

static void bench_meter_fail(struct bench_meter *m, const char *err)
{
	if (atomic_load_explicit(&m->failed, RELAXED) == 0)
		snprintf(m->first_error, sizeof(m->first_error), "%s", err);
	bench_meter_add(&m->failed, 1);
}

/* Count one record; measure it if it belongs after the warm-up. */
static void bench_meter_count(struct bench_meter *m, int64_t t0, int64_t now, size_t len)
{
	bench_meter_add(&m->records, 1);
	bench_meter_add(&m->bytes, (int64_t)len);
	atomic_store_explicit(&m->last_ns, now, RELAXED);
	if ((t0 >= 0 ? t0 : now) < m->warmup_end_ns)
		return;
	m->measured_records++;
	m->measured_bytes += (int64_t)len;
	if (t0 >= 0)
		hist_record(&m->lat, (uint64_t)(now > t0 ? now - t0 : 0) / 1000);
}

void bench_meter_ack(struct bench_meter *m, int64_t sched_ns, size_t len, const char *err)
{
	if (err != NULL) {
		bench_meter_fail(m, err);
		return;
	}
	bench_meter_count(m, sched_ns, bench_now_ns(), len);
}

void bench_meter_record(struct bench_meter *m, const void *value, size_t len)
{
	int64_t now = bench_now_ns();
	bench_meter_count(m, m->e2e ? bench_stamp_get(value, len) : -1, now, len);
}

void bench_meter_error(struct bench_meter *m, const char *err)
{
	bench_meter_fail(m, err);
}

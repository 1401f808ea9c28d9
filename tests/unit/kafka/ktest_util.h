/*
 * ktest_util: the random source and value makers the generated fillers
 * (gen/ktest_*.c) use. Everything is deterministic for a given seed, so a
 * failing case can be replayed from the message, version and seed printed.
 */
#ifndef SLUICE_KTEST_UTIL_H
#define SLUICE_KTEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/kafka_wire.h"

struct ktest_rng {
	uint64_t s;
};

void ktest_seed(struct ktest_rng *g, uint64_t seed);
uint64_t ktest_u64(struct ktest_rng *g);
/* True one time in n. */
bool ktest_chance(struct ktest_rng *g, unsigned n);
/* An array length: 0..3. */
int32_t ktest_count(struct ktest_rng *g);
/* karena_alloc that aborts the test on failure. */
void *ktest_alloc(struct karena *a, size_t bytes);
/* Short strings (null one time in four when nullable). */
struct kstr ktest_str(struct ktest_rng *g, struct karena *a, bool nullable);
/* Bytes; records are sometimes >= KW_REF_MIN_BYTES to exercise kw_ref. */
struct kbytes ktest_bytes(struct ktest_rng *g, struct karena *a, bool nullable, bool records);
struct kuuid ktest_uuid(struct ktest_rng *g);
/* Print the first differing field and return false. */
bool ktest_mismatch(const char *what);

#endif

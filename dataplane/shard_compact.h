/*
 * shard_compact: the shard's log cleaner (storage/compact.h) run in the
 * shard's own loop, between the turns' real work.
 *
 * At most one log of the shard is cleaned at a time. When none is, the
 * shard looks every log.cleaner.backoff.ms for the owned partition of a
 * compacted topic with the highest dirty ratio that is due (Kafka's
 * "dirtiest log first"), and right away again after a round ends. While a
 * round runs, every loop turn gives it one step: at most
 * log.cleaner.slice.bytes of segment read (and the cleaned bytes written),
 * or one swap, and no more than log.cleaner.io.max.bytes.per.second allow.
 * The turn's produce and fetch work always comes first; a loop that has
 * nothing else to do does not sleep while a step is due. The fsyncs of a
 * swap and of the checkpoint go on the shard's ring: the round waits for
 * their completions without the loop spinning or blocking.
 *
 * The offset map (log.cleaner.dedupe.buffer.size) is allocated the first
 * time the shard has a log to clean, and charged to the shard's memory
 * budget.
 *
 * Threading: the shard's own thread, like everything in struct shard.
 */
#ifndef SLUICE_SHARD_COMPACT_H
#define SLUICE_SHARD_COMPACT_H

#include <stdint.h>

struct shard;

/* 0 or -ENOMEM. */
int shard_compact_init(struct shard *sh);
void shard_compact_destroy(struct shard *sh);

/* One cleaner step if one is due (end of a loop turn). */
void shard_compact_turn(struct shard *sh);

/* When the loop should come back for the cleaner (sh->now_ms based), or -1. */
int64_t shard_compact_deadline_ms(const struct shard *sh);

/* Append the cleaner's counters to the SIGUSR1 line. */
void shard_compact_stats_print(const struct shard *sh);

#endif

/*
 * placement: which shard owns a partition.
 *
 * A stable hash of (topic name, partition index) mapped onto the shard
 * count with jump consistent hashing (Lamping and Veach, 2014): the same
 * inputs give the same shard on every host and every restart, partitions
 * spread evenly, and going from N to N+1 shards moves only about 1/(N+1)
 * of them. Pure functions: any thread may call them.
 */
#ifndef SLUICE_PLACEMENT_H
#define SLUICE_PLACEMENT_H

#include <stdint.h>

#include "kafka/kafka_wire.h"

/* 64-bit FNV-1a of the topic name followed by the partition index (as 4
 * big-endian bytes), finished with a 64-bit mixer so that consecutive
 * partitions of one topic land far apart. */
uint64_t placement_key(struct kstr topic, int32_t partition);

/* Jump consistent hash of key onto [0, n_shards). n_shards >= 1. */
int32_t placement_jump(uint64_t key, int32_t n_shards);

/* The owning shard of a partition. */
static inline int32_t placement_shard(struct kstr topic, int32_t partition, int32_t n_shards)
{
	return placement_jump(placement_key(topic, partition), n_shards);
}

#endif

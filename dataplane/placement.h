/*
 * placement: which shard owns a partition.
 *
 * A topic's partitions are dealt round the shards in order, starting at a
 * shard chosen by a stable hash of the topic name: partition p of topic t
 * goes to (hash(t) + p) mod N. Every topic is spread as evenly as its
 * partition count allows (a 16-partition topic on 2 shards is exactly 8 and
 * 8; a hash per partition gave 11 and 5), and the starting offset keeps
 * many small topics from all landing on shard 0. The same inputs give the
 * same shard on every host and every restart.
 *
 * Changing the shard count moves most partitions to another shard, which
 * costs nothing but a re-open: every shard reads the same data directory,
 * so no data moves.
 *
 * Pure functions: any thread may call them.
 */
#ifndef SLUICE_PLACEMENT_H
#define SLUICE_PLACEMENT_H

#include <stdint.h>

#include "kafka/kafka_wire.h"

/* 64-bit FNV-1a of the topic name, finished with a 64-bit mixer so that
 * similar names start on different shards. */
uint64_t placement_topic_key(struct kstr topic);

/* The owning shard of a partition. n_shards >= 1, partition >= 0. */
int32_t placement_shard(struct kstr topic, int32_t partition, int32_t n_shards);

#endif

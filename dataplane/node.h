/*
 * node: one sluiced process, its shards and the rings between them.
 *
 * Built on the main thread before the shards start and read-only after,
 * except for the few atomics below: the stop and stats requests (written by
 * shard 0, which reads the signals) and each shard's "drained" flag during
 * shutdown. Everything else a shard touches is its own.
 */
#ifndef SLUICE_NODE_H
#define SLUICE_NODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "limits.h"
#include "spsc.h"

struct broker_config;
struct metadata;
struct shard;

/* Messages in flight from one shard to another before the sender starts
 * queueing them in its overflow list: a full ring is backpressure, not an
 * error. */
#define XCALL_RING_SLOTS 4096

struct node {
	const struct broker_config *cfg;
	struct metadata *md; /* changed by shard 0 only, once the shards run */
	int n_shards;
	int cpus[SHARDS_MAX]; /* shard i runs on cpus[i] */
	struct shard *shards[SHARDS_MAX];
	struct spsc *rings;   /* [from * n_shards + to] */
	void **ring_slots;

	_Atomic int n_conns;          /* open client connections, all shards (max.connections) */
	_Atomic bool stop;            /* shard 0 saw SIGINT/SIGTERM */
	_Atomic uint32_t stats_gen;   /* bumped by SIGUSR1: every shard prints */
	_Atomic bool drained[SHARDS_MAX];
};

static inline struct spsc *node_ring(struct node *n, int from, int to)
{
	return &n->rings[from * n->n_shards + to];
}

/* Kafka node id a shard answers as with shard.endpoints=per-shard. */
static inline int32_t node_shard_id(int32_t node_id, int shard)
{
	return node_id + SHARD_NODE_ID_STRIDE * shard;
}

#endif

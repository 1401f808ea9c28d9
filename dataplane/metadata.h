/*
 * metadata: the cluster's durable metadata — cluster id, topics (name, id,
 * partition count, config overrides) and producer-id blocks.
 *
 * This is the single interface the rest of the broker uses. Today it has one
 * implementation, metadata_local.c, which keeps the state in a file under
 * the data directory and makes every change durable (write to a temporary
 * file, fdatasync, rename, fsync the directory) before returning. The
 * control-plane work replaces it with a client of sluice-control behind the
 * same functions.
 *
 * Threading: owned by one shard (shard 0); not thread-safe. Changes block on
 * the disk for a few milliseconds; they happen on admin requests and topic
 * auto-creation, never per record.
 */
#ifndef SLUICE_METADATA_H
#define SLUICE_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/kafka_wire.h"
#include "limits.h"

struct broker_config;

struct topic_config_entry {
	char key[64];
	char value[TOPIC_CONFIG_VALUE_LEN_MAX + 1];
};

struct topic {
	char name[TOPIC_NAME_LEN_MAX + 1];
	struct kuuid id;
	int32_t partitions;
	int n_configs; /* overrides given at creation */
	struct topic_config_entry configs[TOPIC_CONFIGS_MAX];

	/* Effective values: the override, else the broker default. */
	int64_t segment_bytes;
	int64_t segment_ms;
	int32_t max_message_bytes;
	int32_t index_interval_bytes;
	int64_t retention_ms;
	int64_t retention_bytes;
	bool log_append_time; /* message.timestamp.type=LogAppendTime */
	/* Compaction: cleanup.policy includes compact, and its settings. */
	bool cleanup_compact;
	double min_cleanable_dirty_ratio;
	int64_t delete_retention_ms;
	int64_t min_compaction_lag_ms;
};

struct metadata;

/* Open (or initialise) the metadata under data_dir. NULL with *err = -errno
 * on failure. bc must outlive the metadata. */
struct metadata *metadata_open(const char *data_dir, const struct broker_config *bc, int *err);
void metadata_close(struct metadata *md);

const char *metadata_cluster_id(const struct metadata *md);

/* Topics, in creation order. Pointers stay valid until the topic is deleted. */
int metadata_topic_count(const struct metadata *md);
const struct topic *metadata_topic_at(const struct metadata *md, int i);
const struct topic *metadata_topic_find(const struct metadata *md, struct kstr name);
const struct topic *metadata_topic_find_id(const struct metadata *md, struct kuuid id);

/* Check a topic name as Kafka does: 1..249 chars of [a-zA-Z0-9._-], not "."
 * or "..". Returns true when legal. */
bool metadata_topic_name_valid(struct kstr name);

/* Check one topic config override. 0, or -1 with a reason in why. */
int metadata_topic_config_check(const char *key, const char *value, char *why, size_t why_len);

/* Create a topic; durable on return. configs may be NULL when n_configs is 0
 * (they must have passed metadata_topic_config_check). Returns 0, -EEXIST,
 * -ENOSPC when TOPICS_MAX is reached, or -errno from the disk. */
int metadata_topic_create(struct metadata *md, struct kstr name, int32_t partitions,
			  const struct topic_config_entry *configs, int n_configs,
			  const struct topic **out);

/* Delete a topic; durable on return. 0, -ENOENT or -errno. */
int metadata_topic_delete(struct metadata *md, struct kstr name);

/* Give a topic `partitions` partitions (more than it has: -EINVAL
 * otherwise); durable on return. The topic's struct is replaced by a new
 * one (*out), so that shards still reading the old one (*old) are not
 * raced: the caller frees *old with metadata_topic_release once every
 * shard uses the new one. 0, -ENOENT or -errno. */
int metadata_topic_add_partitions(struct metadata *md, struct kstr name, int32_t partitions,
				  const struct topic **out, struct topic **old);
void metadata_topic_release(struct topic *old);

/* A producer id never handed out before, across restarts. Ids are reserved
 * in durable blocks so this touches the disk once per block. 0 or -errno. */
int metadata_producer_id_alloc(struct metadata *md, int64_t *out);

#endif

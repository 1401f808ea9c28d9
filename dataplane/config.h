/*
 * config: the broker's settings.
 *
 * One table names every setting (Kafka's name where Kafka has one), its type,
 * default and help text. Values come, in order, from the defaults, a
 * Kafka-style properties file (--config FILE), then each --set key=value or
 * dedicated flag in command-line order, so the last word wins.
 *
 * Filled once at start-up on the main thread and read-only afterwards: every
 * shard may read it without synchronisation.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "storage/log.h"

#define CONFIG_HOST_LEN_MAX 255

struct broker_config {
	char listen_host[CONFIG_HOST_LEN_MAX + 1];
	int32_t listen_port;
	char advertise_host[CONFIG_HOST_LEN_MAX + 1]; /* empty: same as listen */
	int32_t advertise_port;                       /* 0: same as listen */
	char data_dir[PATH_MAX];
	int32_t shards;                /* 0: one per CPU this process may run on */
	char cpus[256];                /* "": those CPUs, in order */
	char shard_endpoints[16];      /* "shared" | "per-shard" */
	int32_t shard_poll_us;         /* busy-poll this long before sleeping */
	int32_t node_id;

	int64_t memory_per_shard_bytes;
	int32_t recv_buffer_bytes;     /* one provided receive buffer */
	int32_t recv_buffers;          /* provided receive buffers per shard */
	int64_t write_buffer_pool_bytes; /* per shard; 0: an eighth of the budget */
	int64_t connection_memory_max_bytes;
	char hugepages[16];            /* "auto" | "off" | "require" */

	bool auto_create_topics;
	int32_t num_partitions;
	int32_t default_replication_factor;

	int64_t socket_request_max_bytes;
	int32_t message_max_bytes;
	int32_t fetch_max_bytes;
	int32_t max_connections;

	int64_t log_segment_bytes;
	int32_t log_index_interval_bytes;
	int64_t log_retention_ms;
	int64_t log_retention_bytes;
	int64_t log_retention_check_interval_ms;
	int32_t flush; /* enum flush_mode */
	int64_t flush_interval_ms;
	int64_t log_roll_ms;           /* default segment.ms */
	int64_t log_preallocate_bytes; /* fallocate step of an active segment */
	int64_t log_preallocate_zero_max_rate; /* bytes/s below which steps are zeros */
	int64_t tail_cache_bytes;      /* per shard; -1: half the write pool */
	int32_t read_concurrency_max;  /* per shard: fetch reads at the disk at once */
	int64_t read_buffer_bytes;     /* per shard: cold-read windows; 0: automatic */
	int64_t log_write_retry_ms;    /* after ENOSPC */
	bool log_direct_io;            /* O_DIRECT writes where the filesystem allows */
	/* Compaction (dataplane/shard_compact.c, storage/compact.h). */
	bool log_cleaner_enable;
	int64_t log_cleaner_backoff_ms;          /* between looks for a dirty log */
	int64_t log_cleaner_dedupe_buffer_size;  /* offset map bytes, per shard */
	int64_t log_cleaner_io_max_bytes_per_second; /* per shard; 0: no limit */
	int64_t log_cleaner_slice_bytes;         /* cleaner work per loop turn */
	int64_t log_cleaner_decompress_max_bytes; /* per compressed batch */
	/* Group coordinator (dataplane/group*.c), Kafka's names and defaults
	 * unless said. */
	int32_t offsets_topic_num_partitions;
	int64_t offsets_topic_segment_bytes;
	int32_t offset_metadata_max_bytes;
	int64_t offsets_retention_minutes;
	int64_t offsets_retention_check_interval_ms;
	int64_t offsets_retention_test_ms;      /* >= 0: overrides the minutes (tests) */
	int32_t offsets_load_buffer_size;
	int32_t group_initial_rebalance_delay_ms;
	int32_t group_min_session_timeout_ms;
	int32_t group_max_session_timeout_ms;
	int32_t group_max_size;
	int64_t group_max_metadata_bytes;       /* Sluice: per group */
	int32_t group_coordinator_max_groups;   /* Sluice: per shard */
	/* KIP-848 consumer groups (group_consumer.c). */
	int32_t group_consumer_heartbeat_interval_ms;
	int32_t group_consumer_min_heartbeat_interval_ms;
	int32_t group_consumer_max_heartbeat_interval_ms;
	int32_t group_consumer_session_timeout_ms;
	int32_t group_consumer_min_session_timeout_ms;
	int32_t group_consumer_max_session_timeout_ms;
	int32_t group_consumer_max_size;
	char group_consumer_assignors[64];      /* "uniform,range": the first is the default */
	char storage_faults[512];      /* fault injection rules (tests) */
	char log_level[16];
};

/* Set every field to its default. */
void config_defaults(struct broker_config *c);

/* Apply one setting. Returns 0, or -1 with a one-line reason in err. */
int config_set(struct broker_config *c, const char *key, const char *value,
	       char *err, size_t err_len);

/* Apply a properties file: key=value lines, '#' or '!' comments, blank lines.
 * Returns 0, or -1 with "FILE:LINE: reason" in err. */
int config_load_file(struct broker_config *c, const char *path, char *err, size_t err_len);

/* Check cross-setting constraints after everything is applied. */
int config_validate(const struct broker_config *c, char *err, size_t err_len);

/* Print every setting with its default and help text. */
void config_print_help(FILE *out);

/* The address clients are told to connect to. */
const char *config_advertised_host(const struct broker_config *c);
int32_t config_advertised_port(const struct broker_config *c);

/* shard.endpoints=per-shard: each shard is its own broker endpoint. */
static inline bool config_per_shard_endpoints(const struct broker_config *c)
{
	return c->shard_endpoints[0] == 'p';
}

/* Write-buffer pool of one shard (bytes), after the 0 = an eighth default. */
int64_t config_write_pool_bytes(const struct broker_config *c);

/* Tail cache of one shard (bytes, within the write pool), after the -1 =
 * half of the pool default. */
int64_t config_tail_cache_bytes(const struct broker_config *c);

/* Read pool of one shard (bytes, whole FETCH_READ_WINDOW_BYTES windows),
 * after the 0 = automatic default: log.read.concurrency.max windows, at
 * most memory.per.shard.bytes / FETCH_READ_POOL_BUDGET_DIV, at least one. */
int64_t config_read_pool_bytes(const struct broker_config *c);

#endif

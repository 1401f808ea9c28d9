/*
 * group_records: the records of the __consumer_offsets topic, in Apache
 * Kafka's own formats, and which of its partitions a group lives in.
 *
 * A group's state is kept as keyed records in one partition of the
 * compacted internal topic __consumer_offsets: the latest record of a key
 * wins, a record with a null value (a tombstone) deletes the key. Keys and
 * values start with an int16 version and then the fields of Kafka's schemas
 * (Kafka's group-coordinator message JSON files), in the
 * classic (non-flexible) encoding: STRING is an int16 length, BYTES an
 * int32 length, arrays an int32 count.
 *
 *   key v0/v1  OffsetCommitKey    group, topic, partition int32
 *   key v2     GroupMetadataKey   group
 *   OffsetCommitValue v3 (written; v0-v4 read)
 *              offset int64, leaderEpoch int32 (v3+), metadata, commitTimestamp
 *              int64, expireTimestamp int64 (v1 only)
 *   GroupMetadataValue v3 (written; v0-v4 read)
 *              protocolType, generation int32, protocol (nullable), leader
 *              (nullable), currentStateTimestamp int64 (v2+), members[]:
 *              memberId, groupInstanceId (nullable, v3+), clientId,
 *              clientHost, rebalanceTimeout int32 (v1+), sessionTimeout int32,
 *              subscription BYTES, assignment BYTES
 * Version 4 of either value is the flexible form (compact strings and
 * bytes, tagged fields); Kafka 4 writes v3 for the classic protocol and so
 * does Sluice, v4 is only read.
 *
 * The partition of a group is Kafka's: abs(groupId.hashCode()) mod N, with
 * Java's String.hashCode over the UTF-16 code units of the id and Kafka's
 * Utils.abs (which maps Integer.MIN_VALUE to 0), so a group lands in the
 * same partition number as it would on Kafka.
 *
 * Pure functions on caller memory: any thread, no I/O.
 */
#ifndef SLUICE_GROUP_RECORDS_H
#define SLUICE_GROUP_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/kafka_wire.h"

#define OFFSETS_TOPIC_NAME "__consumer_offsets"

/* Record key versions. */
#define OFFSETS_KEY_COMMIT_V0 0
#define OFFSETS_KEY_COMMIT 1 /* what Kafka (and Sluice) writes */
#define OFFSETS_KEY_GROUP 2

#define OFFSETS_VALUE_COMMIT_VERSION 3
#define OFFSETS_VALUE_GROUP_VERSION 3

/* Java's String.hashCode of a UTF-8 string, over its UTF-16 code units
 * (characters past U+FFFF as surrogate pairs; malformed UTF-8 counts as
 * U+FFFD per bad sequence, as Java's decoder replaces it). */
int32_t group_java_hash(struct kstr s);

/* The __consumer_offsets partition of a group: Kafka's
 * Utils.abs(groupId.hashCode) % n_partitions. n_partitions >= 1. */
int32_t group_partition_for(struct kstr group_id, int32_t n_partitions);

/* A decoded record key. Strings point into the key bytes. */
struct offsets_key {
	int16_t version; /* OFFSETS_KEY_*, or a consumer group record type (group_crecords.h) */
	struct kstr group;
	struct kstr topic;  /* offset commit keys */
	int32_t partition;
	struct kstr member; /* consumer group member records */
};

/* 0 with *k filled (offset commits, classic group metadata, and the
 * consumer group records of types 3-8); 1 for a key version this code does
 * not know (share and streams groups, transactions...: skipped); -1 for
 * malformed bytes. */
int offsets_key_decode(const uint8_t *p, size_t n, struct offsets_key *k);

void offsets_key_commit_encode(struct kwriter *w, struct kstr group, struct kstr topic,
			       int32_t partition);
void offsets_key_group_encode(struct kwriter *w, struct kstr group);

struct offset_commit_value {
	int64_t offset;
	int32_t leader_epoch;     /* -1: none */
	struct kstr metadata;     /* never null once decoded ("" for none) */
	int64_t commit_timestamp; /* wall-clock ms */
	int64_t expire_timestamp; /* -1: none (only version 1 carries one) */
};

/* Version 3, or version 1 when expire_timestamp >= 0 (Kafka's choice too).
 * A null metadata is written as "" (Kafka's NoMetadata). */
void offsets_value_commit_encode(struct kwriter *w, const struct offset_commit_value *v);
/* Versions 0-4. 0, or -1 for malformed bytes or an unknown version. */
int offsets_value_commit_decode(const uint8_t *p, size_t n, struct offset_commit_value *v);

struct group_value_member {
	struct kstr member_id;
	struct kstr instance_id; /* null: dynamic member */
	struct kstr client_id, client_host;
	int32_t rebalance_timeout_ms, session_timeout_ms;
	struct kbytes subscription; /* metadata for the group's protocol */
	struct kbytes assignment;
};

struct group_value {
	int16_t version;
	struct kstr protocol_type;
	int32_t generation;
	struct kstr protocol; /* nullable */
	struct kstr leader;   /* nullable */
	int64_t state_timestamp; /* -1: none (before v2) */
	int32_t n_members;
	struct kreader members; /* positioned at the first member */
};

/* Version 3: the header, then n_members members. */
void offsets_value_group_encode_header(struct kwriter *w, const struct group_value *v);
void offsets_value_group_encode_member(struct kwriter *w, const struct group_value_member *m);

/* Versions 0-4: the header, with v->members ready for
 * offsets_value_group_next_member. 0, or -1 for malformed bytes or an
 * unknown version. */
int offsets_value_group_decode(const uint8_t *p, size_t n, struct group_value *v);
/* The next member: 1 with *m filled, 0 after the last, -1 if malformed. */
int offsets_value_group_next_member(struct group_value *v, struct group_value_member *m);

/* A v2 record batch of keyed records, built in a kwriter (inline bytes
 * only): begin, one record per key, end. Timestamps are now_ms (wall
 * clock); no producer id; uncompressed. */
struct offsets_batch {
	struct kwriter *w;
	size_t start;   /* of the batch in w */
	int32_t count;
	int64_t now_ms;
};

void offsets_batch_begin(struct offsets_batch *b, struct kwriter *w, int64_t now_ms);
/* value.len < 0: a tombstone. */
void offsets_batch_add(struct offsets_batch *b, struct kbytes key, struct kbytes value);
/* Patch length, counts and CRC. Returns the batch's bytes, or 0 if the
 * writer failed (w->err). */
size_t offsets_batch_end(struct offsets_batch *b);

#endif

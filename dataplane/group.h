/*
 * group: the group coordinator (classic consumer groups, KIP-848 consumer
 * groups and committed offsets), one per shard.
 *
 * Where a group lives: its state is kept in partition
 * group_partition_for(id, N) of the compacted internal topic
 * __consumer_offsets (N = offsets.topic.num.partitions when the topic was
 * created), and the shard that owns that partition (placement.h) is the
 * group's coordinator: it alone holds the group in memory, runs its
 * state machine and appends its records. Any shard may receive a group
 * request; the handlers (handle_group*.c, handle_offset*.c) decode it and
 * send each group's part to its coordinator as a struct group_op, an
 * xcall that the coordinator answers when it has the result: at once for
 * a heartbeat or an OffsetFetch, once the record is durable for an
 * OffsetCommit, when the rebalance completes for a JoinGroup or
 * SyncGroup.
 *
 * What is durable when: an OffsetCommit is answered after its record's
 * fdatasync under the log's flush policy (like an acks=all produce); the
 * group's generation, protocol, leader and members with their assignment
 * are written when the leader's SyncGroup completes a rebalance (and when
 * a group becomes empty, or a static member is replaced), and SyncGroup
 * answers only after that write; DeleteGroups and OffsetDelete write
 * tombstones and answer once they are durable; a ConsumerGroupHeartbeat
 * is answered once the records it caused (members, epochs, targets,
 * assignments: group_crecords.h) are durable, or at once when it caused
 * none and the group's earlier writes are. At start-up each shard
 * replays the partitions it owns (group_load.c) before it serves their
 * groups (COORDINATOR_LOAD_IN_PROGRESS meanwhile).
 *
 * Threading: each struct group_coord belongs to its shard's thread. A
 * group_op lives in the memory of the request that sent it (the caller's
 * arena); between xcall_send and its done the coordinator owns it, reads
 * the decoded request through it (read-only) and writes the results into
 * the response structures it points to, allocating what varies in size
 * from op->res, an arena the caller frees once the answer is encoded.
 */
#ifndef SLUICE_GROUP_H
#define SLUICE_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka/gen/kafka_msgs.h"
#include "kafka/kafka_wire.h"
#include "shard.h"
#include "xcall.h"

struct shard;
struct request;
struct group;
struct topic;
struct metadata;
struct broker_config;

enum group_op_kind {
	GROUP_OP_JOIN,
	GROUP_OP_SYNC,
	GROUP_OP_HEARTBEAT,
	GROUP_OP_LEAVE,
	GROUP_OP_COMMIT,
	GROUP_OP_FETCH,
	GROUP_OP_OFFSET_DELETE,
	GROUP_OP_DESCRIBE,
	GROUP_OP_DELETE,
	GROUP_OP_LIST,
	GROUP_OP_CHEARTBEAT, /* ConsumerGroupHeartbeat (KIP-848) */
	GROUP_OP_CDESCRIBE,  /* ConsumerGroupDescribe */
};

/* One partition of an OffsetCommit: in from the request, error out. */
struct group_commit_part {
	struct kstr topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	struct kstr metadata;
	int64_t commit_timestamp; /* wall ms */
	int64_t expire_timestamp; /* wall ms (v2-4 retention time), or -1 */
	int16_t *error;           /* in the caller's response */
};

/* One partition of an OffsetFetch or OffsetDelete request. */
struct group_offset_key {
	struct kstr topic;
	int32_t partition;
	int16_t *error; /* OffsetDelete: in the caller's response */
};

/* One committed offset, as OffsetFetch answers it. */
struct group_offset_res {
	struct kstr topic;
	int32_t partition;
	int64_t offset;       /* -1: none */
	int32_t leader_epoch; /* -1: none */
	struct kstr metadata;
	int16_t error;
};

struct group_op {
	struct xcall xc;
	struct request *req; /* the caller's: touched only on its shard */
	enum group_op_kind kind;
	int16_t version;     /* of the request's API */
	struct kstr group_id;
	int16_t error;       /* the group's (top-level) error */
	struct karena res;   /* what the coordinator allocated for the answer */
	union {
		struct {
			const struct kafka_JoinGroupRequest *body;
			struct kstr client_id, client_host;
			struct kafka_JoinGroupResponse *resp;
		} join;
		struct {
			const struct kafka_SyncGroupRequest *body;
			struct kafka_SyncGroupResponse *resp;
		} sync;
		struct {
			const struct kafka_HeartbeatRequest *body;
		} heartbeat;
		struct {
			const struct kafka_LeaveGroupRequest_MemberIdentity *members;
			struct kafka_LeaveGroupResponse_MemberResponse *out; /* [n] */
			int32_t n;
		} leave;
		struct {
			int32_t generation;
			struct kstr member_id, instance_id;
			struct group_commit_part *parts;
			int32_t n;
		} commit;
		struct {
			const struct group_offset_key *keys; /* NULL: every committed offset */
			int32_t n;
			struct group_offset_res *out;        /* from res */
			int32_t n_out;
			struct kstr member_id;               /* v9: null, or a consumer group member */
			int32_t member_epoch;                /* v9: -1 when not a member */
		} fetch;
		struct {
			const struct group_offset_key *keys;
			int32_t n;
		} offset_delete;
		struct {
			struct kafka_DescribeGroupsResponse_DescribedGroup *out;
			bool include_authorized_operations;
		} describe;
		struct {
			const struct kstr *states, *types; /* filters; n 0: none */
			int32_t n_states, n_types;
			struct kafka_ListGroupsResponse_ListedGroup *out; /* from res */
			int32_t n_out;
		} list;
		struct {
			const struct kafka_ConsumerGroupHeartbeatRequest *body;
			struct kstr client_id, client_host;
			struct kafka_ConsumerGroupHeartbeatResponse *resp;
		} cheartbeat;
		struct {
			struct kafka_ConsumerGroupDescribeResponse_DescribedGroup *out;
			bool include_authorized_operations;
		} cdescribe;
	} u;
};

/* ---- the coordinator of one shard (group_coord.c) ---- */

/* Set up after the shard's topics are attached: finds the partitions of
 * __consumer_offsets this shard owns and starts loading them. 0 or
 * -ENOMEM. */
int group_coord_init(struct shard *sh);
void group_coord_destroy(struct shard *sh);

/* End of a loop turn: fire due timers (sessions, rebalance and sync
 * deadlines), go on loading, expire old offsets when the check is due;
 * when the shard is stopping, answer every held request NOT_COORDINATOR.
 * Costs one comparison when the shard has no groups. */
void group_coord_turn(struct shard *sh);

/* When the loop must come back for the coordinator (sh->now_ms based),
 * or -1. */
int64_t group_coord_deadline_ms(const struct shard *sh);

/* Nothing of the coordinator's in flight (shutdown waits for it). */
bool group_coord_idle(const struct shard *sh);

/* Append the coordinator's counters to the SIGUSR1 line. */
void group_coord_stats_print(const struct shard *sh);

/* A topic was created, deleted or grew on this shard (shard_topics.c):
 * consumer groups check their subscribed topics again at their next
 * heartbeat. O(1). */
void group_coord_topics_changed(struct shard *sh);

/* ---- the caller's side (group_call.c) ---- */

/* The shard coordinating group_id, or -1 when __consumer_offsets is
 * missing. */
int group_coordinator_shard(struct shard *sh, struct kstr group_id);

/* Prepare op for group_op_send (zeroes it, sets kind and arena). */
void group_op_init(struct group_op *op, struct request *req, enum group_op_kind kind,
		   struct kstr group_id);

/* Send op to its group's coordinator (dst < 0) or to shard dst
 * (ListGroups), counting it in req->remote_pending; req->resume runs when
 * the last part is back. With no coordinator (the internal topic is
 * missing) the op is answered at once with COORDINATOR_NOT_AVAILABLE,
 * still through the shard's own queue. */
void group_op_send(struct group_op *op, int dst);

/* Free what the coordinator allocated for op's answer (after encoding). */
void group_op_release(struct group_op *op);

/* The client's host as Kafka reports it ("/" and the address), in the
 * request's arena (handle_group.c). */
struct kstr group_client_host(struct request *req);

/* ---- the internal topic (group_coord.c) ---- */

/* Is t the internal __consumer_offsets topic? */
bool group_topic_is_internal(const char *topic_name);

/* Create __consumer_offsets if it is missing (main thread, before the
 * shards start): offsets.topic.num.partitions partitions, compacted. An
 * existing topic keeps its partition count, as on Kafka: changing it would
 * move groups. 0 or -errno. */
int group_offsets_topic_ensure(struct metadata *md, const struct broker_config *cfg);

#endif

/*
 * group_crecords: the records a KIP-848 consumer group keeps in
 * __consumer_offsets, in Apache Kafka 4.0's formats (the group
 * coordinator's ConsumerGroup*Key/Value JSON schemas), so that the log
 * reads as Kafka's own.
 *
 * A key is an int16 record type and the key fields in the classic
 * encoding (STRING: int16 length); a value is an int16 version (0) and
 * the value fields in the flexible encoding (compact strings and arrays,
 * UUIDs as 16 bytes, tagged fields at the end of every struct, none
 * written). A tombstone (null value) deletes the key.
 *
 *   type  key                                   value v0
 *   3     ConsumerGroupMetadata (group)         Epoch int32
 *   4     ConsumerGroupPartitionMetadata        Topics[]: TopicId uuid, TopicName,
 *         (group)                               NumPartitions int32, PartitionMetadata[]
 *                                               (written empty: racks are not tracked)
 *   5     ConsumerGroupMemberMetadata           InstanceId?, RackId?, ClientId, ClientHost,
 *         (group, member)                       SubscribedTopicNames[], SubscribedTopicRegex?,
 *                                               RebalanceTimeoutMs int32, ServerAssignor?
 *   6     ConsumerGroupTargetAssignmentMetadata AssignmentEpoch int32
 *         (group)
 *   7     ConsumerGroupTargetAssignmentMember   TopicPartitions[]: TopicId uuid,
 *         (group, member)                       Partitions int32[]
 *   8     ConsumerGroupCurrentMemberAssignment  MemberEpoch int32, PreviousMemberEpoch int32,
 *         (group, member)                       State int8, AssignedPartitions[],
 *                                               PartitionsPendingRevocation[] (as in 7)
 *
 * (? = nullable.) Kafka 4.0 also writes a resolved regular expression
 * record (type 16) per subscribed regex; Sluice resolves regexes again
 * from the topic table after loading and writes none.
 *
 * Pure functions on caller memory: any thread, no I/O.
 */
#ifndef SLUICE_GROUP_CRECORDS_H
#define SLUICE_GROUP_CRECORDS_H

#include <stdbool.h>
#include <stdint.h>

#include "group_assign.h"
#include "kafka/kafka_wire.h"

#define CGREC_GROUP 3
#define CGREC_PARTITIONS 4
#define CGREC_MEMBER 5
#define CGREC_TARGET 6
#define CGREC_TARGET_MEMBER 7
#define CGREC_CURRENT 8

/* Does the record type carry a member id in its key? */
static inline bool cgrec_has_member(int type)
{
	return type == CGREC_MEMBER || type == CGREC_TARGET_MEMBER || type == CGREC_CURRENT;
}

/* The key of type for group (and member, for the member types). */
void cgrec_key_encode(struct kwriter *w, int type, struct kstr group, struct kstr member);

/* ---- values ---- */

/* Types 3 and 6: one epoch. */
void cgrec_epoch_encode(struct kwriter *w, int32_t epoch);
int cgrec_epoch_decode(const uint8_t *p, size_t n, int32_t *epoch);

/* Type 4: the subscription metadata. */
struct cgrec_topic {
	struct kuuid id;
	struct kstr name;
	int32_t n_parts;
};
void cgrec_partitions_encode(struct kwriter *w, const struct cgrec_topic *t, int32_t n);
/* *out is malloc'ed ([*n], names pointing into p), NULL when *n is 0. */
int cgrec_partitions_decode(const uint8_t *p, size_t n, struct cgrec_topic **out, int32_t *n_out);

/* Type 5: a member's subscription and what it told about itself. */
struct cgrec_member {
	struct kstr instance_id, rack_id; /* nullable */
	struct kstr client_id, client_host;
	const struct kstr *topics;        /* decode: malloc'ed, strings point into the value */
	int32_t n_topics;
	struct kstr regex;                /* nullable */
	int32_t rebalance_timeout_ms;
	struct kstr assignor;             /* nullable */
};
void cgrec_member_encode(struct kwriter *w, const struct cgrec_member *m);
/* The caller frees m->topics. */
int cgrec_member_decode(const uint8_t *p, size_t n, struct cgrec_member *m);

/* Type 7: a member's target assignment. */
void cgrec_target_encode(struct kwriter *w, const struct gtpset *s);
int cgrec_target_decode(const uint8_t *p, size_t n, struct gtpset *out);

/* Type 8: a member's epoch, state and partitions. */
struct cgrec_current {
	int32_t epoch, prev_epoch;
	int8_t state;
	struct gtpset assigned, revoking; /* decode: malloc'ed */
};
void cgrec_current_encode(struct kwriter *w, const struct cgrec_current *c);
int cgrec_current_decode(const uint8_t *p, size_t n, struct cgrec_current *c);

#endif

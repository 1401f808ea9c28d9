/*
 * group_assign: the pure parts of the KIP-848 consumer group protocol:
 * sets of topic-partitions, the server-side assignors (uniform and range)
 * and the reconciliation of one member towards its target assignment
 * (Kafka's CurrentAssignmentBuilder).
 *
 * Sets. The consumer protocol names partitions by topic id; a set is a
 * sorted array of (topic id, partition) without duplicates, so the set
 * operations reconciliation needs are linear merges and membership is a
 * binary search.
 *
 * Assignors. They see topics as indexes into the group's subscription
 * metadata (the subscribed topics that exist, with their partition
 * counts) and members in the order the caller gives (the coordinator
 * sorts them by member id, so an assignment is the same on every run;
 * Kafka walks a hash map). Each partition gets at most one owner, and
 * every partition of a subscribed topic gets one:
 *
 *   uniform  Kafka's default (group.consumer.assignors starts with it):
 *            balanced (when every member subscribes to the same topics,
 *            counts differ by at most one; otherwise as even as the
 *            subscriptions allow) and sticky (a member keeps what it had
 *            in the previous target as long as that stays balanced).
 *   range    per topic, the members subscribed to it get ranges of its
 *            partitions (the first numPartitions % numMembers one extra),
 *            so co-partitioned topics go to the same member; sticky as
 *            Kafka's server-side RangeAssignor is: a member keeps its
 *            lowest previous partitions of the topic up to its quota.
 *
 * Reconciliation moves a member from what it owns to its target without
 * ever letting two members own a partition: partitions leaving the member
 * are revoked first (the member stays in its epoch, state
 * UNREVOKED_PARTITIONS, until its heartbeat stops reporting them); then
 * it takes the new epoch and the target partitions that no other member
 * still owns (the rest wait: UNRELEASED_PARTITIONS).
 *
 * Pure functions on caller memory (malloc for results): any thread.
 */
#ifndef SLUICE_GROUP_ASSIGN_H
#define SLUICE_GROUP_ASSIGN_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka/kafka_wire.h"

/* ---- sets of topic-partitions ---- */

struct gtp {
	struct kuuid topic;
	int32_t partition;
};

/* Sorted by topic id bytes, then partition; no duplicates. v is malloc'ed
 * (NULL when n is 0). */
struct gtpset {
	struct gtp *v;
	int32_t n;
};

int gtp_cmp(const struct gtp *a, const struct gtp *b);
bool gtpset_has(const struct gtpset *s, const struct gtp *x);
bool gtpset_eq(const struct gtpset *a, const struct gtpset *b);
bool gtpset_intersects(const struct gtpset *a, const struct gtpset *b);
/* a ∩ b, a − b, a ∪ b into *out (which the caller frees); 0, or -1 without
 * memory (out empty). */
int gtpset_inter(const struct gtpset *a, const struct gtpset *b, struct gtpset *out);
int gtpset_diff(const struct gtpset *a, const struct gtpset *b, struct gtpset *out);
int gtpset_union(const struct gtpset *a, const struct gtpset *b, struct gtpset *out);
int gtpset_copy(const struct gtpset *a, struct gtpset *out);
/* Take v[0..n) (any order, duplicates allowed) as a set: sorts and
 * dedupes in place and keeps v (malloc'ed, now owned by the set). */
void gtpset_adopt(struct gtpset *s, struct gtp *v, int32_t n);
void gtpset_free(struct gtpset *s);

/* ---- assignors ---- */

enum gassignor { GASSIGN_UNIFORM, GASSIGN_RANGE, GASSIGN_COUNT };

/* "uniform" / "range"; -1 for another name. */
int gassignor_find(struct kstr name);
const char *gassignor_name(int a);
/* Parse a comma-separated list of assignor names (group.consumer.assignors)
 * into out[0..max): the count, or -1 for an unknown or repeated name or an
 * empty list. */
int gassignor_list_parse(const char *list, int8_t *out, int max);

/* A partition by topic index (into the subscription metadata). */
struct gassign_tp {
	int32_t topic, partition;
};

struct gassign_member {
	const int32_t *topics;  /* topic indexes it subscribes to, ascending */
	int32_t n_topics;
	const struct gassign_tp *prev; /* its previous target, sorted by topic then partition */
	int32_t n_prev;
};

struct gassign {
	const struct gassign_member *members;
	int32_t n_members;
	const int32_t *n_parts;  /* [n_topics]: partitions of each topic */
	int32_t n_topics;
	/* out: owner[base[t] + p] is the index of the member that gets
	 * partition p of topic t, or -1 (nobody subscribes to t). base[t] is
	 * the sum of n_parts[0..t); the caller allocates both. */
	const int32_t *base;
	int32_t *owner;
};

/* Fill a->owner with assignor `which`. 0, or -1 without memory. */
int gassign_run(struct gassign *a, enum gassignor which);

/* ---- reconciliation (Kafka's CurrentAssignmentBuilder) ---- */

/* Member states, with the values Kafka stores in its records. */
enum cmember_state {
	CM_STABLE = 0,
	CM_UNREVOKED_PARTITIONS = 1,
	CM_UNRELEASED_PARTITIONS = 2,
	CM_UNKNOWN = 127,
};

const char *cmember_state_name(int state);

struct creconcile {
	/* in: the member as it is */
	int32_t epoch;
	uint8_t state;
	const struct gtpset *assigned, *revoking;
	/* in: where it goes */
	int32_t target_epoch;
	const struct gtpset *target;
	/* what the member's heartbeat says it owns; NULL when the heartbeat
	 * did not say (unchanged since its last one) */
	const struct gtpset *owned;
	/* is the partition owned (assigned or being revoked) by another
	 * member? */
	bool (*taken)(void *arg, const struct gtp *tp);
	void *arg;
	/* out, when changed: the member's new epoch and previous epoch,
	 * state, and sets (malloc'ed: the caller takes them) */
	bool changed;
	int32_t new_epoch, new_prev_epoch;
	uint8_t new_state;
	struct gtpset new_assigned, new_revoking;
};

/* 0 (r->changed says whether anything moved), 1 when the member must be
 * fenced (an unknown state with partitions), -1 without memory. */
int creconcile_run(struct creconcile *r);

#endif

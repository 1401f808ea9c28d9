/*
 * group_int: the coordinator's own structures, shared by group_coord.c
 * (the per-shard table, timers, dispatch), group_member.c (members),
 * group_join.c and group_rebalance.c (the classic membership protocol),
 * group_offsets.c (committed offsets, admin requests, expiry),
 * group_store.c (records appended to __consumer_offsets), group_load.c
 * (replay at start-up), and for KIP-848 consumer groups group_consumer.c
 * (the protocol), group_cmember.c (members and what is counted from
 * them), group_cassign.c (subscription metadata, targets, reconciliation),
 * group_cstore.c and group_cload.c (their records), group_cdescribe.c.
 * Not for other modules: they use group.h.
 *
 * Memory: groups, members and offsets are malloc'ed by the coordinator
 * and charged to the shard's budget (shard_mem_charge) as they come and
 * go; everything a client sends is copied in, since requests are freed
 * once answered.
 */
#ifndef SLUICE_GROUP_INT_H
#define SLUICE_GROUP_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "group.h"
#include "group_assign.h"
#include "group_crecords.h"
#include "group_protocol.h"
#include "group_records.h"
#include "kafka/kafka_errors.h"
#include "shard.h"
#include "strmap.h"

/* Kafka's group states, with its names (DescribeGroups, ListGroups). */
enum group_state {
	GROUP_EMPTY,
	GROUP_PREPARING_REBALANCE,
	GROUP_COMPLETING_REBALANCE,
	GROUP_STABLE,
	GROUP_DEAD,
};

const char *group_state_name(enum group_state s);

/* A deadline on the shard's timer heap. `due` is the real deadline and
 * may move later at no cost (a heartbeat just writes it); `at`, the heap
 * key, catches up when it fires early. Moving a deadline earlier re-sorts
 * the heap. */
enum gtimer_kind { GT_MEMBER, GT_JOIN, GT_SYNC, GT_CSESSION, GT_CREBALANCE };

struct gtimer {
	int64_t at, due; /* sh->now_ms based */
	int32_t idx;     /* in the heap, or -1 */
	uint8_t kind;
};

/* A member, or a pending member (a dynamic member told MEMBER_ID_REQUIRED
 * that has not joined with its id yet: not counted as a member, only
 * remembered so that its join is accepted). */
struct gmember {
	struct strmap_node by_id;
	struct strmap_node by_instance; /* static members, in group->statics */
	struct group *g;
	struct kstr id;
	struct kstr instance_id;        /* null: dynamic */
	struct kstr client_id, client_host;
	int32_t session_timeout_ms, rebalance_timeout_ms;
	struct gproto *protocols;       /* one allocation with their bytes */
	int32_t n_protocols;
	size_t protocols_bytes;         /* metadata bytes, counted in the group */
	struct kbytes assignment;       /* malloc'ed; len 0 when none */
	bool pending;
	bool removed;                   /* waits on group->zombies for its writes */
	bool is_new;                    /* joined, first rebalance not done */
	uint32_t join_seq;              /* bumped whenever join_op is set */
	bool pending_sync;              /* owes a SyncGroup this generation */
	struct group_op *join_op;       /* a JoinGroup waiting for the rebalance */
	struct group_op *sync_op;       /* a SyncGroup waiting for the assignment */
	struct gtimer timer;            /* session, or pending-member expiry */
	struct gmember *next, *prev;    /* group's members or pending list */
	size_t mem_bytes;
};

/* Members' support for one protocol name (Kafka's supportedProtocols):
 * a protocol every member supports has count == n_members. */
struct gproto_count {
	char *name;
	int32_t name_len;
	int32_t count;
};

/* A committed offset. The key (topic bytes then the partition, 4 bytes
 * big-endian) is what the offsets map hashes. */
struct goffset {
	struct strmap_node node;
	uint8_t *key;
	int32_t key_len;
	struct kstr topic;      /* points into key */
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	struct kstr metadata;   /* malloc'ed, or "" */
	int64_t commit_ts;      /* wall ms */
	int64_t expire_ts;      /* wall ms, or -1 (OffsetCommit v2-4 retention) */
};

/* Which protocol a group speaks: classic (JoinGroup/SyncGroup) or the
 * KIP-848 consumer protocol (ConsumerGroupHeartbeat). A group with only
 * committed offsets is classic, as on Kafka. */
enum group_type { GROUP_TYPE_CLASSIC, GROUP_TYPE_CONSUMER };

struct cgroup;

struct group {
	struct strmap_node by_id;
	struct group_coord *gc;
	struct kstr id;
	int32_t partition;           /* of __consumer_offsets */
	enum group_type type;
	struct cgroup *cg;           /* consumer groups: their state (group_consumer.c) */
	int64_t write_end;           /* high watermark that makes its last write durable */
	/* Classic groups: their state. A consumer group is Empty without
	 * members and Stable with some here; its own state is cgroup_state. */
	enum group_state state;
	int64_t state_ts;            /* wall ms of the last state change, or -1 */
	int32_t generation;
	struct kstr protocol_type;   /* null: none yet */
	struct kstr protocol;        /* null: none selected */
	struct gmember *leader;
	struct strmap members;       /* by id: members and pending members */
	struct strmap statics;       /* static members by group.instance.id */
	struct gmember *members_head, *pending_head;
	int32_t n_members, n_pending, n_awaiting_join, n_pending_sync;
	size_t metadata_bytes, assignment_bytes;
	struct gproto_count protos[GROUP_PROTOCOL_NAMES_MAX];
	int32_t n_protos;
	/* PreparingRebalance: when the join ends (Kafka's DelayedJoin, or its
	 * InitialDelayedJoin for a group that was empty). */
	struct gtimer join_timer;
	bool initial_join;
	bool new_member_added;
	int32_t initial_delay_ms;    /* the running initial delay */
	int64_t initial_remaining_ms;
	/* CompletingRebalance/Stable: members must sync by then. */
	struct gtimer sync_timer;
	struct strmap offsets;
	int32_t n_offsets;
	int32_t refs;                /* writes in flight that will touch it */
	struct gmember *zombies;     /* removed while refs > 0: freed at 0 */
	bool removed;                /* out of the table: freed when refs is 0 */
	bool loading;                /* rebuilt by group_load.c */
	struct group *next, *prev;   /* the coordinator's list */
	size_t mem_bytes;
};

/* Loading state of one __consumer_offsets partition on this shard. */
enum gpart_state { GPART_NOT_OWNED, GPART_LOADING, GPART_LOADED, GPART_FAILED };

struct gload;

struct gpart {
	enum gpart_state state;
	struct gload *load; /* while loading */
};

struct group_coord_stats {
	uint64_t joins, syncs, heartbeats, commits, commit_records, fetches;
	uint64_t rebalances, members_expired, offsets_expired, groups_removed;
	uint64_t writes_failed;
	uint64_t cg_heartbeats, cg_assignments, cg_members_fenced;
};

struct group_coord {
	struct shard *sh;
	const struct broker_config *cfg;
	struct strmap groups;
	struct group *groups_head;
	int32_t n_groups;
	int32_t n_partitions;        /* of __consumer_offsets; 0 when missing */
	struct gpart *parts;         /* [n_partitions] */
	int32_t n_loading;
	/* Timers, a binary min-heap on `at`. */
	struct gtimer **heap;
	int32_t heap_n, heap_cap;
	/* Offset expiry: the next pass, and where a pass cut short goes on. */
	int64_t expire_next_ms;
	struct group *expire_cursor;
	bool expire_running;
	int32_t writes_in_flight;
	struct kwriter scratch;      /* keys and values being encoded */
	struct kwriter batch;        /* the batch being built */
	struct offsets_batch cur;    /* ... and its state (group_store.c) */
	bool stopped;                /* held requests answered at shutdown */
	/* Bumped when a topic is created, deleted or grows: consumer groups
	 * whose subscription metadata is older look at their topics again. */
	uint64_t topics_version;
	/* group.consumer.assignors, in order: the first is the default. */
	int8_t assignors[GASSIGN_COUNT];
	int n_assignors;
	struct group_coord_stats stats;
};

static inline struct group_coord *group_coord_of(struct shard *sh)
{
	return sh->groups;
}

/* READ, DELETE and DESCRIBE (AclOperation codes 3, 6, 8): what a group
 * allows, all of it without an authorizer. */
#define GROUP_AUTHORIZED_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

/* ---- group_coord.c ---- */

struct group *group_find(struct group_coord *gc, struct kstr id);
/* A new group in state Empty; NULL past group.coordinator.max.groups or
 * without memory. */
struct group *group_create(struct group_coord *gc, struct kstr id);
/* Take g out of the table for good (it became Dead): held requests are
 * answered with err, members and offsets freed; the struct itself goes
 * when no write refers to it. */
void group_remove(struct group_coord *gc, struct group *g, int16_t err);
/* Drop a group that holds nothing worth keeping and was never written
 * (created by a request that then failed). */
void group_drop_if_unused(struct group_coord *gc, struct group *g);
void group_unref(struct group_coord *gc, struct group *g);
void group_set_state(struct group *g, enum group_state s);
int32_t group_rebalance_timeout_ms(const struct group *g);
/* Errors of a request for group_id before its group is looked at:
 * INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR. */
int16_t group_status(struct group_coord *gc, struct kstr group_id, bool allow_empty_id);
bool group_partition_loading(const struct group_coord *gc, int32_t partition);

void gtimer_init(struct gtimer *t, enum gtimer_kind kind);
void gtimer_set(struct group_coord *gc, struct gtimer *t, int64_t due_ms);
void gtimer_cancel(struct group_coord *gc, struct gtimer *t);

/* Copy a string into malloc'ed memory: null stays null, "" is a shared
 * static empty string; len -2 when out of memory. gstr_free leaves null. */
struct kstr gstr_dup(struct kstr s);
void gstr_free(struct kstr *s);

/* The coordinator's side of a group_op xcall (group_call.c sends it). */
void group_op_run(struct shard *sh, struct xcall *xc);

/* Answer a held op: its xcall goes back to the caller. */
void group_op_reply(struct shard *sh, struct group_op *op);

/* Charge (or give back) coordinator memory to the shard's budget. */
void group_mem(struct group_coord *gc, int64_t delta);

int64_t group_wall_ms(void);

/* ---- group_member.c: members, and the answers of held requests ---- */

struct gmember *group_member_find(struct group *g, struct kstr id); /* pending ones too */
struct gmember *gmember_active(struct group *g, struct kstr id);     /* members only */
struct gmember *gmember_static(struct group *g, struct kstr instance_id);
/* A member (or pending member) with a copy of id, in g's map (and, when
 * pending, its pending list); NULL without memory. */
struct gmember *gmember_new(struct group_coord *gc, struct group *g, struct kstr id,
			    bool pending);
/* Make m (filled in, not pending) a member: in the member list, in the
 * static map when it has an instance id, the leader if there is none. */
void gmember_link(struct group *g, struct gmember *m);
/* Copy instance id, client id and host in; 0, or -1 without memory. */
int gmember_set_strings(struct group_coord *gc, struct gmember *m, struct kstr instance_id,
			struct kstr client_id, struct kstr client_host);
/* Replace m's protocols with the request's (counted in the group for a
 * member); 0, or -1 without memory (m unchanged). */
int gmember_set_protocols(struct group_coord *gc, struct group *g, struct gmember *m,
			  const struct kafka_JoinGroupRequest *b);
bool gmember_matches(const struct gmember *m, const struct kafka_JoinGroupRequest *b);
void gmember_set_assignment(struct group_coord *gc, struct group *g, struct gmember *m,
			    struct kbytes a);
/* Take m out of g and free it (or keep it as a zombie while writes name
 * it); its held JoinGroup gets UNKNOWN_MEMBER_ID, its SyncGroup sync_err. */
void gmember_remove(struct group_coord *gc, struct group *g, struct gmember *m,
		    int16_t sync_err);
/* gmember_remove, then rebalance as the group's state asks (Kafka's
 * removeMemberAndUpdateGroup). */
void gmember_remove_and_update(struct group_coord *gc, struct group *g, struct gmember *m);
/* Free a member already out of its group's maps and lists. */
void gmember_free(struct group_coord *gc, struct gmember *m);
/* Kafka's validateCurrentMember: FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID or
 * NONE. */
int16_t gmember_validate(struct group *g, struct kstr member_id, struct kstr instance_id);
/* prefix + "-" + a random UUID, malloc'ed; len -2 without memory. */
struct kstr gmember_id_generate(struct kstr prefix);
/* Take m's held JoinGroup out of it (the caller answers it). */
struct group_op *gmember_take_join(struct group *g, struct gmember *m);
void gmember_join_error(struct group_coord *gc, struct group *g, struct gmember *m, int16_t err,
			struct kstr member_id);
/* Answer m's held SyncGroup: its assignment, or err. */
void gmember_sync_answer(struct group_coord *gc, struct group *g, struct gmember *m,
			 int16_t err);
/* Kafka's supportsProtocols, and Sluice's bound on distinct names. */
bool group_supports_protocols(struct group *g, const struct kafka_JoinGroupRequest *b);
bool group_protocols_overflow(struct group *g, const struct kafka_JoinGroupRequest *b);
size_t group_protocols_bytes(const struct kafka_JoinGroupRequest *b);
/* Answer op with err (and nothing else). */
void gop_reply(struct group_coord *gc, struct group_op *op, int16_t err);
/* Answer a JoinGroup with err; member_id is what it should use next. */
void gop_join_fail(struct group_coord *gc, struct group_op *op, int16_t err,
		   struct kstr member_id);
/* Fill (not send) a JoinGroup answer with g's current generation. */
void gop_join_result(struct group *g, struct gmember *m, struct group_op *op, bool with_members,
		     struct kstr leader, bool skip_assignment);
struct kstr group_leader_id(const struct group *g);
/* Free every member of g (removal, or replacement while loading),
 * answering their held requests with err. */
void group_members_clear(struct group_coord *gc, struct group *g, int16_t err);
/* A member from a group metadata record (loading). NULL without memory. */
struct gmember *group_member_load(struct group_coord *gc, struct group *g,
				  const struct group_value_member *v, struct kstr protocol);
/* After loading: members' sessions start now. */
void group_members_loaded(struct group_coord *gc, struct group *g);
/* The metadata of m for the group's protocol (empty when none). */
struct kbytes group_member_metadata(const struct gmember *m, struct kstr protocol);
/* Every member subscribed to topic? false only when sure it is not. */
bool group_subscribed_to(const struct group *g, struct kstr topic);

/* ---- group_rebalance.c: the rebalance, its timers, SyncGroup ---- */

void grebalance_prepare(struct group_coord *gc, struct group *g);
void grebalance_maybe_prepare(struct group_coord *gc, struct group *g);
/* Complete the join if every member rejoined (not in an initial delay). */
void grebalance_try_complete(struct group_coord *gc, struct group *g);
/* The protocol the members' votes choose, or NULL. */
const struct gproto *grebalance_select_protocol(struct group *g);
void group_timer_fire(struct group_coord *gc, struct gtimer *t);
void group_do_sync(struct group_coord *gc, struct group_op *op);

/* ---- group_join.c ---- */

void group_do_join(struct group_coord *gc, struct group_op *op);
void group_do_heartbeat(struct group_coord *gc, struct group_op *op);
void group_do_leave(struct group_coord *gc, struct group_op *op);

/* ---- group_offsets.c ---- */

void group_do_commit(struct group_coord *gc, struct group_op *op);
void group_do_fetch(struct group_coord *gc, struct group_op *op);
void group_do_offset_delete(struct group_coord *gc, struct group_op *op);
void group_do_describe(struct group_coord *gc, struct group_op *op);
void group_do_delete(struct group_coord *gc, struct group_op *op);
void group_do_list(struct group_coord *gc, struct group_op *op);
/* One step of the expiry pass (end of turn, when due). */
void group_expire_step(struct group_coord *gc);
struct goffset *group_offset_find(struct group *g, struct kstr topic, int32_t partition);
/* Set (insert or update) a committed offset. NULL without memory. */
struct goffset *group_offset_put(struct group_coord *gc, struct group *g,
				 const struct offset_commit_value *v, struct kstr topic,
				 int32_t partition);
void group_offset_delete(struct group_coord *gc, struct group *g, struct goffset *o);
void group_offsets_clear(struct group_coord *gc, struct group *g);

/* ---- group_store.c ---- */

/* A write of records for one group, durable or failed. */
struct gwrite;
typedef void (*gwrite_done_fn)(struct group_coord *gc, struct gwrite *w);

struct gwrite {
	struct durable_wait wait;
	struct group_coord *gc;
	struct group *g;        /* a reference is held until done */
	int16_t error;          /* KAFKA_NONE, or the coordinator's error for it */
	int32_t generation;     /* of g when it was written */
	struct group_op *op;    /* a request waiting for it, or NULL */
	struct gmember *member; /* static member replacement */
	uint32_t join_seq;      /* of member when written */
	struct kstr old_member_id; /* malloc'ed (static replacement) */
	bool was_leader;
	gwrite_done_fn done;
	int16_t wait_error;     /* set if the durable wait failed */
	struct xcall later_x;   /* reports an append that finished at once */
};

/* Building a batch of records for g: begin, add keys, then submit. */
void gstore_begin(struct group_coord *gc);
void gstore_add_offset(struct group_coord *gc, struct group *g, struct kstr topic,
		       int32_t partition, const struct offset_commit_value *v);
void gstore_add_offset_tombstone(struct group_coord *gc, struct group *g, struct kstr topic,
				 int32_t partition);
/* The group's metadata record (generation, protocol, leader, members with
 * their metadata for the protocol and assignment), or its tombstone. */
void gstore_add_group(struct group_coord *gc, struct group *g);
void gstore_add_group_tombstone(struct group_coord *gc, struct group *g);
/* Append the batch to g's partition and call done (with op and member as
 * given, w->error set) once it is durable or has failed, always from a
 * later point than this call (a failure at once is reported through the
 * shard's own xcall queue), so the caller may still fill in the returned
 * gwrite's fields. The gwrite holds a reference on g (and on member, which
 * is not freed meanwhile). Returns NULL only without memory: then nothing
 * was written and done is not called. */
struct gwrite *gstore_submit(struct group_coord *gc, struct group *g, struct group_op *op,
			     struct gmember *member, gwrite_done_fn done);
/* Add the key and value encoded in gc->scratch (key first, klen bytes;
 * no value: a tombstone) to the batch being built. */
void gstore_add_scratch(struct group_coord *gc, size_t klen, bool tombstone);
/* Bytes of the batch being built. */
size_t gstore_pending_bytes(const struct group_coord *gc);
/* Wait, without writing, until g's last write is durable, then call done
 * (with op; w->error set) from a later point. NULL when it already is
 * (or without memory): the caller goes on at once. */
struct gwrite *gstore_barrier(struct group_coord *gc, struct group *g, struct group_op *op,
			      gwrite_done_fn done);

/* ---- group_load.c ---- */

/* Start loading partition p (this shard owns it). */
void group_load_start(struct group_coord *gc, int32_t p);
/* Go on with the loads that wait for the loop (end of turn). */
void group_load_turn(struct group_coord *gc);
void group_load_free(struct group_coord *gc);

/* ---- KIP-848 consumer groups (group_consumer.c, group_cmember.c,
 * group_cassign.c, group_cstore.c, group_cload.c, group_cdescribe.c) ---- */

/* States of a consumer group, with Kafka's names. */
enum cgroup_state { CG_EMPTY, CG_ASSIGNING, CG_RECONCILING, CG_STABLE };

/* A topic name members subscribe to, and how many do. */
struct cg_sub {
	struct strmap_node node;
	int32_t count;
	int32_t len;
	char name[];
};

/* A SubscribedTopicRegex some members use, resolved against the topic
 * table (POSIX extended syntax, matched against the whole name). */
struct cg_regex {
	struct strmap_node node;
	int32_t count;       /* members using it */
	void *re;            /* regex_t */
	struct kstr *topics; /* matching names, sorted; malloc'ed with their bytes */
	int32_t n_topics;
	uint64_t version;    /* gc->topics_version it was resolved at */
	int32_t len;
	char src[];
};

/* A partition owned by a member (assigned, or being revoked): no other
 * member is given it until the owner's heartbeat has let it go. */
struct cg_owner {
	struct strmap_node node;
	struct gtp tp; /* the key */
	struct cmember *m;
};

struct cmember {
	struct strmap_node by_id;
	struct strmap_node by_instance;  /* static members, in cg->statics */
	struct group *g;
	struct kstr id;
	struct kstr instance_id, rack_id; /* null: none */
	struct kstr client_id, client_host;
	struct kstr *topics;   /* subscribed names, sorted; one allocation with their bytes */
	int32_t n_topics;
	struct cg_regex *regex; /* its SubscribedTopicRegex, or NULL */
	int8_t assignor;       /* enum gassignor it asked for, or -1 */
	int32_t rebalance_timeout_ms;
	int32_t epoch, prev_epoch;
	uint8_t state;         /* enum cmember_state */
	struct gtpset assigned, revoking, target;
	struct gtimer session, rebalance;
	int32_t rebalance_epoch; /* the epoch the rebalance deadline is for */
	bool reconciled;       /* STABLE at the group's assignment epoch */
	bool linked;           /* in the group's maps and list */
	bool has_record;       /* loading: its subscription record was seen */
	struct cmember *next, *prev;
	size_t mem_bytes;
};

struct cgroup {
	int32_t epoch, assignment_epoch;
	struct strmap members;   /* by id */
	struct strmap statics;   /* by instance id */
	struct cmember *head;
	int32_t n_members, n_reconciled;
	/* Subscription metadata: the topics some member subscribes to that
	 * exist, sorted by name (names malloc'ed). */
	struct cgrec_topic *meta;
	int32_t n_meta;
	uint64_t meta_version;   /* gc->topics_version it was last checked at */
	struct strmap subs;      /* cg_sub by topic name */
	struct strmap regexes;   /* cg_regex by source */
	struct strmap owners;    /* cg_owner by topic-partition */
	int32_t assignor_votes[GASSIGN_COUNT];
	bool rewrite;            /* a write failed: the next one carries the whole group */
	bool loaded_group_record; /* loading: its ConsumerGroupMetadata record was seen */
	size_t mem_bytes;
};

/* group_cmember.c: the group's members and what is derived from them. */
struct cgroup *cgroup_new(struct group_coord *gc);
void cgroup_free(struct group_coord *gc, struct group *g);
/* Make g a consumer group (it is classic and holds no members). 0, or
 * -1 without memory. */
int cgroup_attach(struct group_coord *gc, struct group *g);
enum cgroup_state cgroup_state(const struct group *g);
const char *cgroup_state_name(enum cgroup_state s);
struct cmember *cmember_find(struct cgroup *cg, struct kstr id);
struct cmember *cmember_static(struct cgroup *cg, struct kstr instance_id);
/* A member not in the group yet, epoch 0. NULL without memory. */
struct cmember *cmember_new(struct group_coord *gc, struct group *g, struct kstr id);
/* Into the group's maps, list and counts. 0, or -1 without memory (not
 * linked). */
int cmember_link(struct group_coord *gc, struct group *g, struct cmember *m);
/* Out of the group (maps, counts, owners, timers) and freed. */
void cmember_remove(struct group_coord *gc, struct group *g, struct cmember *m);
/* A string field replaced by a copy of s (null stays null). 0 or -1. */
int cmember_set_str(struct group_coord *gc, struct cmember *m, struct kstr *field, struct kstr s);
/* The subscription: names (copied, sorted, deduplicated) and/or regex
 * (NULL to leave one as it is). 0, -1 without memory, -2 for a regex
 * that does not compile. */
int cmember_set_topics(struct group_coord *gc, struct group *g, struct cmember *m,
		       const struct kstr *names, int32_t n);
int cmember_set_regex(struct group_coord *gc, struct group *g, struct cmember *m, struct kstr regex);
bool cmember_topics_equal(const struct cmember *m, const struct kstr *names, int32_t n);
void cmember_set_assignor(struct cgroup *cg, struct cmember *m, int8_t assignor);
/* Replace the member's epoch, state and sets (taking the sets); owners
 * and the reconciled count follow. */
void cmember_set_current(struct group_coord *gc, struct group *g, struct cmember *m, int32_t epoch,
			 int32_t prev_epoch, uint8_t state, struct gtpset assigned,
			 struct gtpset revoking);
void cmember_set_target(struct group_coord *gc, struct cmember *m, struct gtpset target);
/* Recount whether m is reconciled (after its state or the assignment
 * epoch changed). */
void cmember_update_reconciled(struct cgroup *cg, struct cmember *m);
/* Does another member own tp? */
bool cgroup_taken(struct cgroup *cg, struct cmember *self, const struct gtp *tp);
/* Is any member subscribed to topic (by name or regex)? */
bool cgroup_subscribed_to(struct group_coord *gc, struct group *g, struct kstr topic);
/* Resolve regexes whose resolution is older than the topic table. */
void cgroup_regexes_refresh(struct group_coord *gc, struct cgroup *cg);
/* The assignor the members vote for, else the first configured one. */
int cgroup_preferred_assignor(const struct group_coord *gc, const struct cgroup *cg);
/* Group a set's partitions by topic for an answer: calls fn for each
 * topic run. */
typedef int (*gtp_run_fn)(void *arg, struct kuuid topic, const struct gtp *v, int32_t n);
int gtpset_runs(const struct gtpset *s, gtp_run_fn fn, void *arg);
/* Out-of-memory-safe copy of a set. */
struct gtpset cg_set_copy(const struct gtpset *s);

/* group_cassign.c: subscription metadata and target assignments. */
/* Recompute the subscription metadata; true when it changed (then it is
 * replaced; *oom on failure, nothing changed). */
bool cgroup_meta_refresh(struct group_coord *gc, struct group *g, bool *oom);
/* A new target assignment for the group epoch: changed targets and the
 * assignment epoch go into the batch being built. 0 or -1 (no memory). */
int cgroup_assign(struct group_coord *gc, struct group *g);
/* Reconcile m towards its target; records go into the batch. 0, 1
 * (fence it), -1 (no memory). *changed says whether its assignment moved. */
int cmember_reconcile(struct group_coord *gc, struct group *g, struct cmember *m,
		      const struct gtpset *owned, bool *assigned_changed);
/* The name of a topic by id, from the shard's table ("" if deleted). */
struct kstr cgroup_topic_name(struct group_coord *gc, struct kuuid id);

/* group_cstore.c: the records of a consumer group. */
void cgstore_begin(struct group_coord *gc, struct group *g);
void cgstore_epoch(struct group_coord *gc, struct group *g);
void cgstore_meta(struct group_coord *gc, struct group *g);
void cgstore_member(struct group_coord *gc, struct group *g, struct cmember *m);
void cgstore_target(struct group_coord *gc, struct group *g, struct cmember *m);
void cgstore_target_epoch(struct group_coord *gc, struct group *g);
void cgstore_current(struct group_coord *gc, struct group *g, struct cmember *m);
void cgstore_member_tombstones(struct group_coord *gc, struct group *g, struct kstr member_id);
/* Tombstones of every group-level record (the group is deleted or
 * becomes classic; its members are gone). */
void cgstore_group_tombstones(struct group_coord *gc, struct group *g);
/* Cut the batch here when it is large (CGROUP_WRITE_BATCH_BYTES). */
void cgstore_maybe_cut(struct group_coord *gc, struct group *g);
/* Write what was added since cgstore_begin; op (may be NULL) is
 * answered when durable, with the write's error if it failed. Returns
 * false when nothing was added (the caller answers op itself). */
bool cgstore_submit(struct group_coord *gc, struct group *g, struct group_op *op);

/* group_consumer.c: the protocol. */
void group_do_cheartbeat(struct group_coord *gc, struct group_op *op);
void cgroup_timer_fire(struct group_coord *gc, struct gtimer *t);
/* Kafka's ConsumerGroup.validateOffsetCommit / validateOffsetFetch. */
int16_t cgroup_commit_validate(struct group *g, int16_t version, int32_t epoch,
			       struct kstr member_id);
int16_t cgroup_fetch_validate(struct group *g, struct kstr member_id, int32_t epoch);
/* A JoinGroup to an empty consumer group makes it classic again
 * (tombstones written); false when it has members. */
bool cgroup_convert_to_classic(struct group_coord *gc, struct group *g);

/* group_cload.c: replay at start-up. */
void cgroup_load_record(struct group_coord *gc, const struct offsets_key *k, const uint8_t *value,
			int32_t value_len);
/* After its partition is loaded: derived state and timers. false when
 * the group has nothing left (drop it). */
bool cgroup_loaded(struct group_coord *gc, struct group *g);

/* group_cdescribe.c */
void group_do_cdescribe(struct group_coord *gc, struct group_op *op);

#endif

/*
 * group_offsets: committed offsets (OffsetCommit, OffsetFetch,
 * OffsetDelete), the admin requests about groups (DescribeGroups,
 * ListGroups, DeleteGroups), and offset retention.
 *
 * A commit is checked as Kafka's validateOffsetCommit does (a group used
 * only to store offsets commits with generation -1 while it has no
 * members; a member commits with its id and the current generation),
 * written as one batch of OffsetCommit records, and applied in memory and
 * answered once that batch is durable. OffsetFetch answers from memory.
 *
 * Retention (Kafka's cleanupGroupMetadata with KIP-211's rules): every
 * offsets.retention.check.interval.ms the shard expires the offsets of
 * empty groups older than the retention counted from when the group became
 * empty, of groups that never had members counted from their commit, and
 * of a Stable consumer group's topics it is no longer subscribed to. An
 * expired offset gets a tombstone; an empty group left with no offsets
 * becomes Dead and gets one too.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* ---- the offsets of a group ---- */

/* The map key of a topic-partition: the topic's bytes, then the partition
 * big-endian. Written into buf (room for len + 4). */
static size_t offset_key(uint8_t *buf, struct kstr topic, int32_t partition)
{
	size_t n = (size_t)(topic.len > 0 ? topic.len : 0);
	if (n > 0)
		memcpy(buf, topic.ptr, n);
	uint32_t p = (uint32_t)partition;
	buf[n] = (uint8_t)(p >> 24);
	buf[n + 1] = (uint8_t)(p >> 16);
	buf[n + 2] = (uint8_t)(p >> 8);
	buf[n + 3] = (uint8_t)p;
	return n + 4;
}

struct goffset *group_offset_find(struct group *g, struct kstr topic, int32_t partition)
{
	/* Only existing topics' offsets are committed, so a longer name has
	 * none. */
	if (g->n_offsets == 0 || topic.len < 0 || topic.len > TOPIC_NAME_LEN_MAX)
		return NULL;
	uint8_t buf[TOPIC_NAME_LEN_MAX + 4];
	size_t n = offset_key(buf, topic, partition);
	struct strmap_node *node = strmap_find(&g->offsets, buf, n);
	return node == NULL ? NULL : container_of(node, struct goffset, node);
}

static void goffset_free(struct group_coord *gc, struct goffset *o)
{
	group_mem(gc, -(int64_t)(sizeof(*o) + (size_t)o->key_len + (size_t)o->metadata.len));
	gstr_free(&o->metadata);
	free(o->key);
	free(o);
}

struct goffset *group_offset_put(struct group_coord *gc, struct group *g,
				 const struct offset_commit_value *v, struct kstr topic,
				 int32_t partition)
{
	struct kstr meta = gstr_dup(v->metadata.len < 0 ? KSTR("") : v->metadata);
	if (meta.len < 0)
		return NULL;
	struct goffset *o = group_offset_find(g, topic, partition);
	if (o == NULL) {
		o = calloc(1, sizeof(*o));
		uint8_t *key = malloc((size_t)(topic.len > 0 ? topic.len : 0) + 4);
		if (o == NULL || key == NULL) {
			free(o);
			free(key);
			gstr_free(&meta);
			return NULL;
		}
		o->key = key;
		o->key_len = (int32_t)offset_key(key, topic, partition);
		o->topic = (struct kstr){ (const char *)key, o->key_len - 4 };
		o->partition = partition;
		if (strmap_insert(&g->offsets, &o->node, o->key, (size_t)o->key_len) != 0) {
			free(key);
			free(o);
			gstr_free(&meta);
			return NULL;
		}
		g->n_offsets++;
		o->metadata = gstr_dup(KSTR("")); /* the shared "", which gstr_free leaves */
		group_mem(gc, (int64_t)(sizeof(*o) + (size_t)o->key_len));
	}
	group_mem(gc, (int64_t)meta.len - o->metadata.len);
	gstr_free(&o->metadata);
	o->metadata = meta;
	o->offset = v->offset;
	o->leader_epoch = v->leader_epoch;
	o->commit_ts = v->commit_timestamp;
	o->expire_ts = v->expire_timestamp;
	return o;
}

void group_offset_delete(struct group_coord *gc, struct group *g, struct goffset *o)
{
	strmap_remove(&g->offsets, &o->node);
	g->n_offsets--;
	goffset_free(gc, o);
}

void group_offsets_clear(struct group_coord *gc, struct group *g)
{
	struct strmap_node *n = strmap_first(&g->offsets);
	while (n != NULL) {
		struct strmap_node *next = strmap_next(&g->offsets, n);
		group_offset_delete(gc, g, container_of(n, struct goffset, node));
		n = next;
	}
}

/* ---- OffsetCommit ---- */

/* Kafka's validateOffsetCommit (without transactions). */
static int16_t commit_validate(struct group *g, struct group_op *op)
{
	int32_t generation = op->u.commit.generation;
	struct kstr member_id = op->u.commit.member_id, instance_id = op->u.commit.instance_id;
	if (g->state == GROUP_DEAD)
		return KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (g->type == GROUP_TYPE_CONSUMER)
		return cgroup_commit_validate(g, op->version, generation, member_id);
	/* Generation -1: an admin client, or a consumer that only stores
	 * offsets here; allowed while the group has no members. */
	if (generation < 0 && g->state == GROUP_EMPTY)
		return KAFKA_NONE;
	if (generation >= 0 || member_id.len > 0 || instance_id.len >= 0) {
		struct gmember *m = group_member_find(g, member_id);
		if (instance_id.len >= 0) {
			struct strmap_node *s = strmap_find(&g->statics, instance_id.ptr,
							    (size_t)instance_id.len);
			if (s == NULL)
				return KAFKA_UNKNOWN_MEMBER_ID;
			if (!kstr_eq(container_of(s, struct gmember, by_instance)->id, member_id))
				return KAFKA_FENCED_INSTANCE_ID;
		} else if (m == NULL || m->pending) {
			return KAFKA_UNKNOWN_MEMBER_ID;
		}
		return generation != g->generation ? KAFKA_ILLEGAL_GENERATION : KAFKA_NONE;
	}
	return g->state != GROUP_EMPTY ? KAFKA_UNKNOWN_MEMBER_ID : KAFKA_NONE;
}

static void commit_done(struct group_coord *gc, struct gwrite *w)
{
	struct group_op *op = w->op;
	struct group *g = w->g;
	for (int32_t i = 0; i < op->u.commit.n; i++) {
		struct group_commit_part *cp = &op->u.commit.parts[i];
		if (*cp->error != KAFKA_NONE)
			continue;
		if (w->error != KAFKA_NONE) {
			*cp->error = w->error;
			continue;
		}
		if (g->removed)
			continue; /* deleted meanwhile: the record stays in the log, as on Kafka */
		struct offset_commit_value v = { .offset = cp->offset,
						 .leader_epoch = cp->leader_epoch,
						 .metadata = cp->metadata,
						 .commit_timestamp = cp->commit_timestamp,
						 .expire_timestamp = cp->expire_timestamp };
		if (group_offset_put(gc, g, &v, cp->topic, cp->partition) == NULL)
			*cp->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	op->error = KAFKA_NONE;
	group_op_reply(gc->sh, op);
	if (!g->removed)
		group_drop_if_unused(gc, g);
}

static void commit_fail_all(struct group_op *op, int16_t err)
{
	for (int32_t i = 0; i < op->u.commit.n; i++)
		if (*op->u.commit.parts[i].error == KAFKA_NONE)
			*op->u.commit.parts[i].error = err;
}

void group_do_commit(struct group_coord *gc, struct group_op *op)
{
	gc->stats.commits++;
	int16_t err = group_status(gc, op->group_id, true);
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && g == NULL) {
		/* Only a group that stores offsets without membership may be
		 * created by a commit; a member's commit to an unknown group
		 * is from an old generation (from v9, which consumer-protocol
		 * members use, Kafka says GROUP_ID_NOT_FOUND). */
		if (op->u.commit.generation >= 0)
			err = op->version >= 9 ? KAFKA_GROUP_ID_NOT_FOUND : KAFKA_ILLEGAL_GENERATION;
		else if ((g = group_create(gc, op->group_id)) == NULL)
			err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	if (err == KAFKA_NONE)
		err = commit_validate(g, op);
	if (err == KAFKA_NONE && g->state == GROUP_COMPLETING_REBALANCE)
		err = KAFKA_REBALANCE_IN_PROGRESS;
	if (err != KAFKA_NONE) {
		commit_fail_all(op, err);
		op->error = KAFKA_NONE;
		group_op_reply(gc->sh, op);
		if (g != NULL)
			group_drop_if_unused(gc, g);
		return;
	}
	struct gmember *m = group_member_find(g, op->u.commit.member_id);
	if (m != NULL && !m->pending)
		gtimer_set(gc, &m->timer, gc->sh->now_ms + m->session_timeout_ms);
	gstore_begin(gc);
	int32_t records = 0;
	for (int32_t i = 0; i < op->u.commit.n; i++) {
		struct group_commit_part *cp = &op->u.commit.parts[i];
		if (*cp->error != KAFKA_NONE)
			continue;
		if (cp->metadata.len > gc->cfg->offset_metadata_max_bytes) {
			*cp->error = KAFKA_OFFSET_METADATA_TOO_LARGE;
			continue;
		}
		struct offset_commit_value v = { .offset = cp->offset,
						 .leader_epoch = cp->leader_epoch,
						 .metadata = cp->metadata,
						 .commit_timestamp = cp->commit_timestamp,
						 .expire_timestamp = cp->expire_timestamp };
		gstore_add_offset(gc, g, cp->topic, cp->partition, &v);
		records++;
	}
	gc->stats.commit_records += (uint64_t)records;
	if (records == 0) {
		op->error = KAFKA_NONE;
		group_op_reply(gc->sh, op);
		group_drop_if_unused(gc, g);
		return;
	}
	if (gstore_submit(gc, g, op, NULL, commit_done) == NULL) {
		commit_fail_all(op, KAFKA_COORDINATOR_NOT_AVAILABLE);
		op->error = KAFKA_NONE;
		group_op_reply(gc->sh, op);
		group_drop_if_unused(gc, g);
	}
}

/* ---- OffsetFetch ---- */

static void fetch_fill(struct group_op *op, struct group_offset_res *r, const struct goffset *o,
		       bool *oom)
{
	r->offset = -1;
	r->leader_epoch = -1;
	r->metadata = KSTR("");
	r->error = KAFKA_NONE;
	if (o == NULL)
		return;
	r->offset = o->offset;
	r->leader_epoch = o->leader_epoch;
	if (o->metadata.len > 0) {
		char *p = karena_alloc(&op->res, (size_t)o->metadata.len);
		if (p == NULL) {
			*oom = true;
			return;
		}
		memcpy(p, o->metadata.ptr, (size_t)o->metadata.len);
		r->metadata = (struct kstr){ p, o->metadata.len };
	}
}

static struct kstr res_topic(struct group_op *op, struct kstr t, bool *oom)
{
	if (t.len <= 0)
		return KSTR("");
	char *p = karena_alloc(&op->res, (size_t)t.len);
	if (p == NULL) {
		*oom = true;
		return KSTR("");
	}
	memcpy(p, t.ptr, (size_t)t.len);
	return (struct kstr){ p, t.len };
}

void group_do_fetch(struct group_coord *gc, struct group_op *op)
{
	gc->stats.fetches++;
	int16_t err = group_status(gc, op->group_id, true);
	if (err != KAFKA_NONE) {
		op->error = err;
		group_op_reply(gc->sh, op);
		return;
	}
	/* Offsets are answered whatever the group's state: a group may
	 * store offsets without using membership. */
	struct group *g = group_find(gc, op->group_id);
	if (g != NULL && g->type == GROUP_TYPE_CONSUMER && op->version >= 9) {
		/* v9: a consumer-protocol member fetches with its epoch. */
		err = cgroup_fetch_validate(g, op->u.fetch.member_id, op->u.fetch.member_epoch);
		if (err != KAFKA_NONE) {
			op->error = err;
			group_op_reply(gc->sh, op);
			return;
		}
	}
	bool oom = false;
	int32_t n = op->u.fetch.keys != NULL ? op->u.fetch.n : (g != NULL ? g->n_offsets : 0);
	op->u.fetch.n_out = 0;
	if (n > 0) {
		op->u.fetch.out = karena_alloc(&op->res, sizeof(*op->u.fetch.out) * (size_t)n);
		oom = op->u.fetch.out == NULL;
	}
	if (!oom && op->u.fetch.keys != NULL) {
		for (int32_t i = 0; i < n && !oom; i++) {
			const struct group_offset_key *k = &op->u.fetch.keys[i];
			struct group_offset_res *r = &op->u.fetch.out[op->u.fetch.n_out++];
			r->topic = k->topic; /* the caller's own memory */
			r->partition = k->partition;
			fetch_fill(op, r, g != NULL ? group_offset_find(g, k->topic, k->partition)
						    : NULL, &oom);
		}
	} else if (!oom && g != NULL) {
		for (struct strmap_node *s = strmap_first(&g->offsets); s != NULL && !oom;
		     s = strmap_next(&g->offsets, s)) {
			const struct goffset *o = container_of(s, struct goffset, node);
			struct group_offset_res *r = &op->u.fetch.out[op->u.fetch.n_out++];
			r->topic = res_topic(op, o->topic, &oom);
			r->partition = o->partition;
			fetch_fill(op, r, o, &oom);
		}
	}
	op->error = oom ? KAFKA_COORDINATOR_NOT_AVAILABLE : KAFKA_NONE;
	if (oom)
		op->u.fetch.n_out = 0;
	group_op_reply(gc->sh, op);
}

/* ---- OffsetDelete and DeleteGroups ---- */

static void delete_done(struct group_coord *gc, struct gwrite *w)
{
	struct group_op *op = w->op;
	if (op == NULL)
		return;
	if (op->kind == GROUP_OP_OFFSET_DELETE) {
		for (int32_t i = 0; i < op->u.offset_delete.n; i++)
			if (*op->u.offset_delete.keys[i].error == KAFKA_NONE)
				*op->u.offset_delete.keys[i].error = w->error;
		op->error = KAFKA_NONE;
	} else {
		op->error = w->error;
	}
	group_op_reply(gc->sh, op);
}

/* Write the tombstones added since gstore_begin, and the group's own if
 * it is Dead now: deleted, or empty with nothing left (then it is
 * removed); op is answered when that is durable. */
static void delete_write(struct group_coord *gc, struct group *g, struct group_op *op,
			 int32_t tombstones, bool deleted)
{
	bool dead = deleted || (g->state == GROUP_EMPTY && g->n_offsets == 0 &&
				g->n_members == 0 && g->n_pending == 0);
	if (dead && g->type == GROUP_TYPE_CONSUMER) {
		cgstore_group_tombstones(gc, g);
		tombstones++;
	} else if (dead) {
		gstore_add_group_tombstone(gc, g);
		tombstones++;
	}
	if (tombstones == 0) {
		if (op != NULL) {
			op->error = KAFKA_NONE;
			group_op_reply(gc->sh, op);
		}
		return;
	}
	if (gstore_submit(gc, g, op, NULL, delete_done) == NULL && op != NULL) {
		op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
		group_op_reply(gc->sh, op);
	}
	if (dead)
		group_remove(gc, g, KAFKA_COORDINATOR_NOT_AVAILABLE);
}

void group_do_offset_delete(struct group_coord *gc, struct group_op *op)
{
	int16_t err = group_status(gc, op->group_id, true);
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && (g == NULL || g->state == GROUP_DEAD))
		err = KAFKA_GROUP_ID_NOT_FOUND;
	bool consumer = g != NULL && (g->type == GROUP_TYPE_CONSUMER ||
				      kstr_eq(g->protocol_type, KSTR("consumer")));
	if (err == KAFKA_NONE && g->state != GROUP_EMPTY && !consumer)
		err = KAFKA_NON_EMPTY_GROUP;
	if (err != KAFKA_NONE) {
		op->error = err;
		group_op_reply(gc->sh, op);
		return;
	}
	gstore_begin(gc);
	int32_t tombstones = 0;
	for (int32_t i = 0; i < op->u.offset_delete.n; i++) {
		const struct group_offset_key *k = &op->u.offset_delete.keys[i];
		if (*k->error != KAFKA_NONE)
			continue;
		bool subscribed = g->type == GROUP_TYPE_CONSUMER
					  ? cgroup_subscribed_to(gc, g, k->topic)
					  : g->state != GROUP_EMPTY && group_subscribed_to(g, k->topic);
		if (subscribed) {
			*k->error = KAFKA_GROUP_SUBSCRIBED_TO_TOPIC;
			continue;
		}
		struct goffset *o = group_offset_find(g, k->topic, k->partition);
		if (o == NULL)
			continue;
		gstore_add_offset_tombstone(gc, g, k->topic, k->partition);
		group_offset_delete(gc, g, o);
		tombstones++;
	}
	delete_write(gc, g, op, tombstones, false);
}

void group_do_delete(struct group_coord *gc, struct group_op *op)
{
	int16_t err = group_status(gc, op->group_id, true);
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && (g == NULL || g->state == GROUP_DEAD))
		err = KAFKA_GROUP_ID_NOT_FOUND;
	if (err == KAFKA_NONE && g->state != GROUP_EMPTY)
		err = KAFKA_NON_EMPTY_GROUP;
	if (err != KAFKA_NONE) {
		op->error = err;
		group_op_reply(gc->sh, op);
		return;
	}
	/* Pending members (told MEMBER_ID_REQUIRED) do not keep a group. */
	gstore_begin(gc);
	int32_t tombstones = 0;
	for (struct strmap_node *s = strmap_first(&g->offsets); s != NULL;
	     s = strmap_next(&g->offsets, s)) {
		const struct goffset *o = container_of(s, struct goffset, node);
		gstore_add_offset_tombstone(gc, g, o->topic, o->partition);
		tombstones++;
	}
	group_offsets_clear(gc, g);
	say_info("group %.*s: deleted (%d offsets)", g->id.len, g->id.ptr, tombstones);
	delete_write(gc, g, op, tombstones, true);
}

/* ---- DescribeGroups, ListGroups ---- */

static struct kstr res_copy(struct group_op *op, struct kstr s, bool *oom)
{
	if (s.len < 0)
		return KSTR_NULL;
	return res_topic(op, s, oom);
}

void group_do_describe(struct group_coord *gc, struct group_op *op)
{
	struct kafka_DescribeGroupsResponse_DescribedGroup *out = op->u.describe.out;
	int16_t err = group_status(gc, op->group_id, true);
	if (err != KAFKA_NONE) {
		out->ErrorCode = err;
		out->GroupState = KSTR("");
		group_op_reply(gc->sh, op);
		return;
	}
	struct group *g = group_find(gc, op->group_id);
	if (op->u.describe.include_authorized_operations)
		out->AuthorizedOperations = GROUP_AUTHORIZED_OPERATIONS;
	out->ErrorCode = KAFKA_NONE;
	/* Kafka 4.0 describes only classic groups here (up to v5: a consumer
	 * group is "Dead", with no error; ConsumerGroupDescribe is its API). */
	if (g == NULL || g->type == GROUP_TYPE_CONSUMER) {
		out->GroupState = KSTR("Dead");
		group_op_reply(gc->sh, op);
		return;
	}
	bool oom = false, stable = g->state == GROUP_STABLE;
	out->GroupState = kstr_from(group_state_name(g->state));
	out->ProtocolType = res_copy(op, g->protocol_type.len < 0 ? KSTR("") : g->protocol_type, &oom);
	out->ProtocolData = stable ? res_copy(op, g->protocol, &oom) : KSTR("");
	out->Members_count = 0;
	if (g->n_members > 0) {
		out->Members = karena_alloc(&op->res, sizeof(*out->Members) * (size_t)g->n_members);
		oom |= out->Members == NULL;
	}
	for (struct gmember *m = g->members_head; m != NULL && !oom; m = m->next) {
		struct kafka_DescribeGroupsResponse_DescribedGroupMember *d =
			&out->Members[out->Members_count++];
		kafka_DescribeGroupsResponse_DescribedGroupMember_init(d);
		d->MemberId = res_copy(op, m->id, &oom);
		d->GroupInstanceId = res_copy(op, m->instance_id, &oom);
		d->ClientId = res_copy(op, m->client_id.len < 0 ? KSTR("") : m->client_id, &oom);
		d->ClientHost = res_copy(op, m->client_host.len < 0 ? KSTR("") : m->client_host, &oom);
		/* Kafka shows metadata and assignments of a Stable group only. */
		if (stable) {
			struct kbytes md = group_member_metadata(m, g->protocol);
			struct kstr a = res_copy(op, (struct kstr){ (const char *)md.ptr, md.len }, &oom);
			struct kstr b = res_copy(op, (struct kstr){ (const char *)m->assignment.ptr,
								  m->assignment.len }, &oom);
			d->MemberMetadata = (struct kbytes){ (const uint8_t *)a.ptr, a.len };
			d->MemberAssignment = (struct kbytes){ (const uint8_t *)b.ptr, b.len };
		}
	}
	if (oom) {
		out->Members_count = 0;
		out->ErrorCode = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	group_op_reply(gc->sh, op);
}

static bool list_match(const struct kstr *filter, int32_t n, const char *value)
{
	if (n <= 0)
		return true;
	size_t len = strlen(value);
	for (int32_t i = 0; i < n; i++)
		if (filter[i].len == (int32_t)len && strncasecmp(filter[i].ptr, value, len) == 0)
			return true;
	return false;
}

void group_do_list(struct group_coord *gc, struct group_op *op)
{
	/* A shard still loading says so, with the groups it has (Kafka). */
	op->error = gc->n_loading > 0 ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : KAFKA_NONE;
	op->u.list.n_out = 0;
	bool oom = false;
	if (gc->n_groups > 0) {
		op->u.list.out = karena_alloc(&op->res,
					      sizeof(*op->u.list.out) * (size_t)gc->n_groups);
		oom = op->u.list.out == NULL;
	}
	for (struct group *g = gc->groups_head; g != NULL && !oom; g = g->next) {
		bool consumer = g->type == GROUP_TYPE_CONSUMER;
		const char *state = consumer ? cgroup_state_name(cgroup_state(g))
					     : group_state_name(g->state);
		const char *type = consumer ? "consumer" : "classic";
		if (g->loading || !list_match(op->u.list.states, op->u.list.n_states, state) ||
		    !list_match(op->u.list.types, op->u.list.n_types, type))
			continue;
		struct kafka_ListGroupsResponse_ListedGroup *l = &op->u.list.out[op->u.list.n_out++];
		kafka_ListGroupsResponse_ListedGroup_init(l);
		l->GroupId = res_copy(op, g->id, &oom);
		if (consumer)
			l->ProtocolType = KSTR("consumer");
		else
			l->ProtocolType = res_copy(op, g->protocol_type.len < 0 ? KSTR("")
									: g->protocol_type, &oom);
		l->GroupState = kstr_from(state);
		l->GroupType = kstr_from(type);
	}
	if (oom) {
		op->u.list.n_out = 0;
		op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	group_op_reply(gc->sh, op);
}

/* ---- retention ---- */

static int64_t retention_ms(const struct broker_config *cfg)
{
	return cfg->offsets_retention_test_ms >= 0 ? cfg->offsets_retention_test_ms
						    : cfg->offsets_retention_minutes * 60000;
}

/* Is o expired for g at wall time now? (Kafka's getExpiredOffsets) */
static bool offset_expired(struct group *g, const struct goffset *o, int64_t now,
			   int64_t retention)
{
	int64_t base;
	if (g->type == GROUP_TYPE_CONSUMER) {
		/* Kafka's consumer groups: an offset of a topic no member
		 * subscribes to expires counted from its commit. */
		if (cgroup_subscribed_to(g->gc, g, o->topic))
			return false;
		base = o->commit_ts;
	} else if (g->protocol_type.len >= 0 && g->state == GROUP_EMPTY) {
		/* No consumer left: counted from when the group emptied. */
		base = g->state_ts >= 0 ? g->state_ts : o->commit_ts;
	} else if (g->protocol_type.len < 0) {
		base = o->commit_ts; /* offsets only, never members */
	} else if (kstr_eq(g->protocol_type, KSTR("consumer")) && g->state == GROUP_STABLE &&
		   g->protocol.len >= 0 && !group_subscribed_to(g, o->topic)) {
		base = o->commit_ts; /* a topic the group no longer reads */
	} else {
		return false;
	}
	/* A commit that set its own retention (v2-4) expires by it. */
	if (o->expire_ts >= 0)
		return now >= o->expire_ts;
	return now - base >= retention;
}

static void expire_group(struct group_coord *gc, struct group *g, int64_t now)
{
	if (g->loading || g->refs > 0)
		return; /* a write in flight: look again next pass */
	int64_t retention = retention_ms(gc->cfg);
	gstore_begin(gc);
	int32_t expired = 0;
	struct strmap_node *s = strmap_first(&g->offsets);
	while (s != NULL) {
		struct strmap_node *next = strmap_next(&g->offsets, s);
		struct goffset *o = container_of(s, struct goffset, node);
		if (offset_expired(g, o, now, retention)) {
			gstore_add_offset_tombstone(gc, g, o->topic, o->partition);
			group_offset_delete(gc, g, o);
			expired++;
		}
		s = next;
	}
	gc->stats.offsets_expired += (uint64_t)expired;
	if (expired > 0)
		say_info("group %.*s: %d committed offsets expired", g->id.len, g->id.ptr, expired);
	if (g->state == GROUP_EMPTY && g->n_offsets == 0 && g->n_pending == 0)
		say_info("group %.*s: empty with no offsets: removed", g->id.len, g->id.ptr);
	delete_write(gc, g, NULL, expired, false);
}

void group_expire_step(struct group_coord *gc)
{
	if (!gc->expire_running) {
		gc->expire_running = true;
		gc->expire_cursor = gc->groups_head;
	}
	int64_t now = group_wall_ms();
	for (int n = 0; n < GROUP_EXPIRE_GROUPS_PER_TURN && gc->expire_cursor != NULL; n++) {
		struct group *g = gc->expire_cursor;
		gc->expire_cursor = g->next;
		expire_group(gc, g, now); /* may remove g; the cursor is already past it */
	}
	if (gc->expire_cursor == NULL) {
		gc->expire_running = false;
		gc->expire_next_ms = gc->sh->now_ms + gc->cfg->offsets_retention_check_interval_ms;
	}
}

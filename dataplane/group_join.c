/*
 * group_join: JoinGroup, Heartbeat and LeaveGroup on the coordinator, as
 * Kafka's GroupCoordinator answers them.
 *
 * A JoinGroup that must wait for the rebalance is held: the member keeps
 * the op and it is answered when the rebalance completes
 * (group_rebalance.c). From v4 a new dynamic member first gets its id
 * (MEMBER_ID_REQUIRED) and joins with it. A Heartbeat only moves the
 * member's session deadline: O(1), two hash lookups and a store.
 *
 * Static members (group.instance.id) rejoining with an unknown member id
 * take over their old member: its held requests are fenced
 * (FENCED_INSTANCE_ID), and in a Stable group whose protocol stays the
 * same there is no rebalance: the group is written with the new member id
 * and the member gets the current generation back (and its assignment from
 * SyncGroup).
 */
#include <stdlib.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* ---- JoinGroup ---- */

struct join_args {
	const struct kafka_JoinGroupRequest *b;
	int32_t session_ms, rebalance_ms;
};

/* Fill a new member from the join request; 0, or -1 without memory. */
static int member_fill(struct group_coord *gc, struct group *g, struct gmember *m,
		       struct group_op *op, const struct join_args *a)
{
	if (gmember_set_strings(gc, m, a->b->GroupInstanceId, op->u.join.client_id,
			       op->u.join.client_host) != 0)
		return -1;
	m->session_timeout_ms = a->session_ms;
	m->rebalance_timeout_ms = a->rebalance_ms;
	return gmember_set_protocols(gc, g, m, a->b);
}

/* Kafka's addMemberAndRebalance: id is the member's (malloc'ed, taken). */
static void add_member_and_rebalance(struct group_coord *gc, struct group *g, struct group_op *op,
				     const struct join_args *a, struct kstr id)
{
	struct gmember *m = gmember_new(gc, g, id, false);
	gstr_free(&id);
	/* The pending flag is off from the start, so gmember_set_protocols
	 * counts the protocols once they are in. */
	if (m == NULL || member_fill(gc, g, m, op, a) != 0) {
		if (m != NULL) {
			strmap_remove(&g->members, &m->by_id);
			gmember_free(gc, m);
		}
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		return;
	}
	m->is_new = true;
	if (g->state == GROUP_PREPARING_REBALANCE && g->generation == 0)
		g->new_member_added = true;
	if (g->n_members == 0) {
		gstr_free(&g->protocol_type);
		g->protocol_type = gstr_dup(a->b->ProtocolType);
	}
	gmember_link(g, m);
	m->join_op = op;
	m->join_seq++;
	g->n_awaiting_join++;
	gtimer_set(gc, &m->timer, gc->sh->now_ms + GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS);
	grebalance_maybe_prepare(gc, g);
}

/* A member's JoinGroup replaces the one it had waiting (a client that
 * gave up on a request and sent it again): the old one is answered so
 * that its request is freed; the client no longer listens to it. */
static void member_await_join(struct group *g, struct gmember *m, struct group_op *op,
			      struct group_coord *gc)
{
	if (m->join_op != NULL)
		gmember_join_error(gc, g, m, KAFKA_REBALANCE_IN_PROGRESS, m->id);
	m->join_op = op;
	m->join_seq++;
	g->n_awaiting_join++;
}

static void update_member_and_rebalance(struct group_coord *gc, struct group *g,
					struct gmember *m, struct group_op *op,
					const struct join_args *a)
{
	if (gmember_set_protocols(gc, g, m, a->b) != 0) {
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, m->id);
		return;
	}
	m->session_timeout_ms = a->session_ms;
	m->rebalance_timeout_ms = a->rebalance_ms;
	member_await_join(g, m, op, gc);
	grebalance_maybe_prepare(gc, g);
}

/* The write of a Stable group whose static member was replaced. */
static void static_store_done(struct group_coord *gc, struct gwrite *w)
{
	struct gmember *m = w->member;
	struct group *g = w->g;
	if (m->removed || m->join_op == NULL || m->join_seq != w->join_seq)
		return; /* answered meanwhile (fenced again, removed, rebalanced) */
	struct group_op *op = gmember_take_join(g, m);
	if (w->error != KAFKA_NONE) {
		/* The old member id is no longer valid either: the client
		 * starts over with an unknown id and takes over again. */
		gop_join_fail(gc, op, w->error, KSTR(""));
		return;
	}
	bool leader = g->leader == m;
	if (op->version >= 9) {
		/* KIP-814: the leader learns it leads but skips the assignment
		 * of a group that stays Stable. */
		gop_join_result(g, m, op, leader, group_leader_id(g), leader);
	} else {
		/* Before v9 the answer names the old leader id, so a rejoining
		 * leader does not run an assignment that a Stable group would
		 * ignore. */
		gop_join_result(g, m, op, false, w->was_leader ? w->old_member_id : group_leader_id(g),
			    false);
	}
	group_op_reply(gc->sh, op);
}

/* Kafka's updateStaticMemberAndRebalance: m (static) is taken over by a
 * join with an unknown member id; new_id is taken. */
static void update_static_member(struct group_coord *gc, struct group *g, struct gmember *m,
				 struct group_op *op, const struct join_args *a, struct kstr new_id)
{
	/* The old incarnation's waiting requests are fenced now. */
	gmember_join_error(gc, g, m, KAFKA_FENCED_INSTANCE_ID, m->id);
	gmember_sync_answer(gc, g, m, KAFKA_FENCED_INSTANCE_ID);
	struct kstr old_id = m->id;
	bool was_leader = g->leader == m;
	strmap_remove(&g->members, &m->by_id);
	m->id = new_id;
	group_mem(gc, (int64_t)new_id.len - old_id.len);
	m->mem_bytes = m->mem_bytes + (size_t)new_id.len - (size_t)old_id.len;
	strmap_insert(&g->members, &m->by_id, m->id.ptr, (size_t)m->id.len);
	gtimer_set(gc, &m->timer, gc->sh->now_ms + a->session_ms);
	if (gmember_set_protocols(gc, g, m, a->b) != 0) {
		gstr_free(&old_id);
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		grebalance_prepare(gc, g);
		return;
	}
	m->session_timeout_ms = a->session_ms;
	m->rebalance_timeout_ms = a->rebalance_ms;
	member_await_join(g, m, op, gc);
	say_info("group %.*s: static member %.*s rejoined as %.*s (%s)", g->id.len, g->id.ptr,
		 m->instance_id.len, m->instance_id.ptr, m->id.len, m->id.ptr,
		 group_state_name(g->state));
	switch (g->state) {
	case GROUP_STABLE: {
		const struct gproto *p = grebalance_select_protocol(g);
		if (p == NULL || !kstr_eq(p->name, g->protocol)) {
			gstr_free(&old_id);
			grebalance_prepare(gc, g);
			return;
		}
		gstore_begin(gc);
		gstore_add_group(gc, g);
		struct gwrite *w = gstore_submit(gc, g, NULL, m, static_store_done);
		if (w == NULL) {
			gstr_free(&old_id);
			gmember_join_error(gc, g, m, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
			return;
		}
		w->join_seq = m->join_seq;
		w->was_leader = was_leader;
		w->old_member_id = old_id; /* the gwrite frees it */
		return;
	}
	case GROUP_COMPLETING_REBALANCE:
		/* The leader may already have the old id's metadata: a new
		 * round gives it the new id. */
		gstr_free(&old_id);
		grebalance_prepare(gc, g);
		return;
	case GROUP_PREPARING_REBALANCE:
	case GROUP_EMPTY:
	case GROUP_DEAD:
		gstr_free(&old_id);
		return;
	}
}

/* Kafka's doNewMemberJoinGroup. */
static void new_member_join(struct group_coord *gc, struct group *g, struct group_op *op,
			    const struct join_args *a)
{
	const struct kafka_JoinGroupRequest *b = a->b;
	if (g->state == GROUP_DEAD) {
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		return;
	}
	if (!group_supports_protocols(g, b) || group_protocols_overflow(g, b)) {
		gop_join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, KSTR(""));
		return;
	}
	bool is_static = b->GroupInstanceId.len >= 0;
	struct kstr id = gmember_id_generate(is_static ? b->GroupInstanceId : op->u.join.client_id);
	if (id.len < 0) {
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		return;
	}
	struct gmember *old = is_static ? gmember_static(g, b->GroupInstanceId) : NULL;
	if (old != NULL) {
		update_static_member(gc, g, old, op, a, id);
	} else if (!is_static && op->version >= 4) {
		/* KIP-394: the member gets its id first and joins with it, so a
		 * client that times out and retries does not leave ghost
		 * members behind. */
		struct gmember *p = gmember_new(gc, g, id, true);
		if (p == NULL) {
			gstr_free(&id);
			gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
			return;
		}
		gtimer_set(gc, &p->timer, gc->sh->now_ms + a->session_ms);
		gop_join_fail(gc, op, KAFKA_MEMBER_ID_REQUIRED, p->id);
		gstr_free(&id);
	} else {
		add_member_and_rebalance(gc, g, op, a, id);
	}
}

/* Kafka's doCurrentMemberJoinGroup. */
static void current_member_join(struct group_coord *gc, struct group *g, struct group_op *op,
				const struct join_args *a)
{
	const struct kafka_JoinGroupRequest *b = a->b;
	if (g->state == GROUP_DEAD) {
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, b->MemberId);
		return;
	}
	if (!group_supports_protocols(g, b) || group_protocols_overflow(g, b)) {
		gop_join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, b->MemberId);
		return;
	}
	struct gmember *m = group_member_find(g, b->MemberId);
	if (m != NULL && m->pending) {
		/* A pending member is dynamic by construction. */
		if (b->GroupInstanceId.len >= 0) {
			gop_join_fail(gc, op, KAFKA_UNKNOWN_MEMBER_ID, b->MemberId);
			return;
		}
		struct kstr id = gstr_dup(m->id);
		gmember_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		if (id.len < 0) {
			gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, b->MemberId);
			return;
		}
		add_member_and_rebalance(gc, g, op, a, id);
		return;
	}
	int16_t err = gmember_validate(g, b->MemberId, b->GroupInstanceId);
	if (err != KAFKA_NONE) {
		gop_join_fail(gc, op, err, b->MemberId);
		return;
	}
	m = gmember_active(g, b->MemberId);
	switch (g->state) {
	case GROUP_PREPARING_REBALANCE:
		update_member_and_rebalance(gc, g, m, op, a);
		return;
	case GROUP_COMPLETING_REBALANCE:
		if (gmember_matches(m, b)) {
			/* It lost the answer to its first JoinGroup: the same
			 * generation again. */
			gop_join_result(g, m, op, g->leader == m, group_leader_id(g), false);
			group_op_reply(gc->sh, op);
		} else {
			update_member_and_rebalance(gc, g, m, op, a);
		}
		return;
	case GROUP_STABLE:
		if (g->leader == m || !gmember_matches(m, b)) {
			/* A leader's JoinGroup asks for a new assignment (its
			 * topics' metadata changed); new metadata needs one. */
			update_member_and_rebalance(gc, g, m, op, a);
		} else {
			gop_join_result(g, m, op, false, group_leader_id(g), false);
			group_op_reply(gc->sh, op);
		}
		return;
	case GROUP_EMPTY:
	case GROUP_DEAD:
		gop_join_fail(gc, op, KAFKA_UNKNOWN_MEMBER_ID, b->MemberId);
		return;
	}
}

/* Kafka's acceptJoiningMember: room for one more under group.max.size. */
static bool accept_joining(struct group_coord *gc, struct group *g, struct kstr member_id)
{
	int32_t max = gc->cfg->group_max_size;
	struct gmember *m = gmember_active(g, member_id);
	/* Sluice also counts pending members (told MEMBER_ID_REQUIRED, not
	 * joined yet): Kafka does not bound them, and a client repeating
	 * JoinGroup without an id would otherwise pile them up for a whole
	 * session timeout each. */
	if (member_id.len <= 0 && g->n_members + g->n_pending >= max)
		return false;
	switch (g->state) {
	case GROUP_EMPTY:
	case GROUP_DEAD:
		return true;
	case GROUP_PREPARING_REBALANCE:
		return (m != NULL && m->join_op != NULL) || g->n_awaiting_join < max;
	case GROUP_COMPLETING_REBALANCE:
	case GROUP_STABLE:
		return m != NULL || g->n_members < max;
	}
	return false;
}

void group_do_join(struct group_coord *gc, struct group_op *op)
{
	const struct kafka_JoinGroupRequest *b = op->u.join.body;
	const struct broker_config *cfg = gc->cfg;
	gc->stats.joins++;
	int16_t err = group_status(gc, op->group_id, false);
	if (err != KAFKA_NONE) {
		gop_join_fail(gc, op, err, b->MemberId);
		return;
	}
	struct join_args a = { .b = b, .session_ms = b->SessionTimeoutMs,
			       .rebalance_ms = op->version == 0 ? b->SessionTimeoutMs
								: b->RebalanceTimeoutMs };
	if (a.session_ms < cfg->group_min_session_timeout_ms ||
	    a.session_ms > cfg->group_max_session_timeout_ms) {
		gop_join_fail(gc, op, KAFKA_INVALID_SESSION_TIMEOUT, b->MemberId);
		return;
	}
	if (a.rebalance_ms <= 0)
		a.rebalance_ms = a.session_ms;
	if (b->Protocols_count > GROUP_MEMBER_PROTOCOLS_MAX) {
		gop_join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, b->MemberId);
		return;
	}
	bool unknown = b->MemberId.len <= 0;
	struct group *g = group_find(gc, op->group_id);
	if (g != NULL && g->type == GROUP_TYPE_CONSUMER && !cgroup_convert_to_classic(gc, g)) {
		/* Kafka 4.0 would take a classic member into a consumer group
		 * with members (online migration); Sluice does not. */
		gop_join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, KSTR(""));
		return;
	}
	if (g == NULL && !unknown) {
		gop_join_fail(gc, op, KAFKA_UNKNOWN_MEMBER_ID, b->MemberId);
		return;
	}
	if (g == NULL && (g = group_create(gc, op->group_id)) == NULL) {
		gop_join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, b->MemberId);
		return;
	}
	struct gmember *m = gmember_active(g, b->MemberId);
	size_t have = m != NULL ? m->protocols_bytes : 0;
	if (!accept_joining(gc, g, b->MemberId) ||
	    g->metadata_bytes - have + group_protocols_bytes(b) > (size_t)cfg->group_max_metadata_bytes) {
		if (m != NULL)
			gmember_remove_and_update(gc, g, m);
		gop_join_fail(gc, op, KAFKA_GROUP_MAX_SIZE_REACHED, KSTR(""));
	} else if (unknown) {
		new_member_join(gc, g, op, &a);
	} else {
		current_member_join(gc, g, op, &a);
	}
	grebalance_try_complete(gc, g);
	group_drop_if_unused(gc, g);
}

/* ---- Heartbeat ---- */

void group_do_heartbeat(struct group_coord *gc, struct group_op *op)
{
	const struct kafka_HeartbeatRequest *b = op->u.heartbeat.body;
	gc->stats.heartbeats++;
	int16_t err = group_status(gc, op->group_id, false);
	if (err == KAFKA_COORDINATOR_LOAD_IN_PROGRESS) {
		gop_reply(gc, op, KAFKA_NONE); /* Kafka answers blindly while loading */
		return;
	}
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && (g == NULL || g->type == GROUP_TYPE_CONSUMER))
		err = KAFKA_UNKNOWN_MEMBER_ID;
	if (err == KAFKA_NONE && g->state == GROUP_DEAD)
		err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (err == KAFKA_NONE)
		err = gmember_validate(g, b->MemberId, b->GroupInstanceId);
	if (err == KAFKA_NONE && b->GenerationId != g->generation)
		err = KAFKA_ILLEGAL_GENERATION;
	if (err == KAFKA_NONE) {
		if (g->state == GROUP_EMPTY) {
			err = KAFKA_UNKNOWN_MEMBER_ID;
		} else {
			struct gmember *m = gmember_active(g, b->MemberId);
			/* O(1): a later deadline is only written down; the heap
			 * entry catches up with it when it fires. */
			gtimer_set(gc, &m->timer, gc->sh->now_ms + m->session_timeout_ms);
			if (g->state == GROUP_PREPARING_REBALANCE)
				err = KAFKA_REBALANCE_IN_PROGRESS;
		}
	}
	gop_reply(gc, op, err);
}

/* ---- LeaveGroup ---- */

static int16_t leave_one(struct group_coord *gc, struct group *g,
			 const struct kafka_LeaveGroupRequest_MemberIdentity *who)
{
	struct gmember *m;
	if (who->MemberId.len <= 0) {
		/* Administrative removal by group.instance.id. */
		m = gmember_static(g, who->GroupInstanceId);
		if (m == NULL)
			return KAFKA_UNKNOWN_MEMBER_ID;
		gmember_remove_and_update(gc, g, m);
		return KAFKA_NONE;
	}
	m = group_member_find(g, who->MemberId);
	if (m != NULL && m->pending) {
		gmember_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		grebalance_try_complete(gc, g);
		return KAFKA_NONE;
	}
	int16_t err = gmember_validate(g, who->MemberId, who->GroupInstanceId);
	if (err != KAFKA_NONE)
		return err;
	m = gmember_active(g, who->MemberId);
	say_info("group %.*s: member %.*s left", g->id.len, g->id.ptr, m->id.len, m->id.ptr);
	gmember_remove_and_update(gc, g, m);
	return KAFKA_NONE;
}

void group_do_leave(struct group_coord *gc, struct group_op *op)
{
	int16_t err = group_status(gc, op->group_id, false);
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && g != NULL && g->state == GROUP_DEAD)
		err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (err != KAFKA_NONE) {
		gop_reply(gc, op, err);
		return;
	}
	for (int32_t i = 0; i < op->u.leave.n; i++)
		op->u.leave.out[i].ErrorCode = g == NULL || g->type == GROUP_TYPE_CONSUMER
						       ? KAFKA_UNKNOWN_MEMBER_ID
						       : leave_one(gc, g, &op->u.leave.members[i]);
	if (g != NULL)
		group_drop_if_unused(gc, g);
	gop_reply(gc, op, KAFKA_NONE);
}

/*
 * group_rebalance: how a classic group rebalances, as Kafka's
 * GroupCoordinator does it, and SyncGroup.
 *
 * States: Empty -> PreparingRebalance (a member joins, or one leaves or
 * fails) -> CompletingRebalance (every member rejoined, or the rebalance
 * timeout passed: the dynamic members that did not rejoin are dropped, the
 * generation goes up, a protocol is chosen by the members' votes, every
 * JoinGroup is answered, the leader's with all members' metadata) ->
 * Stable (the leader's SyncGroup brought the assignment, which is written
 * to __consumer_offsets; once durable every SyncGroup is answered) ->
 * PreparingRebalance again on the next change; Empty again when the last
 * member goes; Dead when the group is deleted or expires
 * (group_offsets.c).
 *
 * The timers: a member's session (removed when it passes, unless the
 * member waits in a JoinGroup or SyncGroup), a pending member's expiry, the
 * join deadline (the rebalance timeout; for a group that was empty first
 * group.initial.rebalance.delay.ms, again while new members keep coming),
 * and the sync deadline (members that never send SyncGroup are dropped).
 */
#include <stdlib.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* ---- rebalance ---- */

static void sync_clear(struct group_coord *gc, struct group *g)
{
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		m->pending_sync = false;
	g->n_pending_sync = 0;
	gtimer_cancel(gc, &g->sync_timer);
}

static void grebalance_propagate(struct group_coord *gc, struct group *g, int16_t err)
{
	int64_t now = gc->sh->now_ms;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next) {
		if (m->sync_op == NULL)
			continue;
		gmember_sync_answer(gc, g, m, err);
		/* Kafka restarts the session once a member has its answer: its
		 * deadline may have passed while it waited for the leader. */
		gtimer_set(gc, &m->timer, now + m->session_timeout_ms);
	}
}

static void grebalance_reset_and_propagate(struct group_coord *gc, struct group *g, int16_t err)
{
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		gmember_set_assignment(gc, g, m, (struct kbytes){ NULL, 0 });
	grebalance_propagate(gc, g, err);
}

void grebalance_prepare(struct group_coord *gc, struct group *g)
{
	if (g->state == GROUP_COMPLETING_REBALANCE)
		grebalance_reset_and_propagate(gc, g, KAFKA_REBALANCE_IN_PROGRESS);
	sync_clear(gc, g);
	int32_t rt = group_rebalance_timeout_ms(g);
	int64_t now = gc->sh->now_ms;
	/* An empty group waits group.initial.rebalance.delay.ms for more
	 * members first (Kafka's InitialDelayedJoin): a consumer fleet
	 * starting up then rebalances once, not once per member. */
	g->initial_join = g->state == GROUP_EMPTY;
	if (g->initial_join) {
		int32_t d = gc->cfg->group_initial_rebalance_delay_ms;
		g->initial_delay_ms = d;
		g->initial_remaining_ms = rt > d ? rt - d : 0;
		gtimer_set(gc, &g->join_timer, now + d);
	} else {
		gtimer_set(gc, &g->join_timer, now + rt);
	}
	say_debug("group %.*s: preparing to rebalance (generation %d, %d members)", g->id.len,
		  g->id.ptr, g->generation, g->n_members);
	group_set_state(g, GROUP_PREPARING_REBALANCE);
	gc->stats.rebalances++;
	if (!g->initial_join)
		grebalance_try_complete(gc, g);
}

void grebalance_maybe_prepare(struct group_coord *gc, struct group *g)
{
	if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE ||
	    g->state == GROUP_EMPTY)
		grebalance_prepare(gc, g);
}

/* The protocol the members' votes choose (index into the first member's
 * protocols), or NULL. */
const struct gproto *grebalance_select_protocol(struct group *g)
{
	if (g->n_members == 0)
		return NULL;
	struct gproto_list *lists = malloc(sizeof(*lists) * (size_t)g->n_members);
	if (lists == NULL)
		return NULL;
	int n = 0;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		lists[n++] = (struct gproto_list){ m->protocols, m->n_protocols };
	int c = group_protocol_select(lists, n);
	free(lists);
	return c < 0 ? NULL : &g->members_head->protocols[c];
}

static void init_next_generation(struct group_coord *gc, struct group *g)
{
	g->generation++;
	gstr_free(&g->protocol);
	const struct gproto *p = grebalance_select_protocol(g);
	if (p != NULL) {
		g->protocol = gstr_dup(p->name);
		if (g->protocol.len < -1)
			g->protocol = KSTR_NULL;
		group_set_state(g, GROUP_COMPLETING_REBALANCE);
	} else {
		group_set_state(g, g->n_members > 0 ? GROUP_COMPLETING_REBALANCE : GROUP_EMPTY);
	}
	sync_clear(gc, g);
}

static void empty_store_done(struct group_coord *gc, struct gwrite *w)
{
	(void)gc;
	if (w->error != KAFKA_NONE)
		say_warn("group %.*s: could not write its empty generation %d (error %d)",
			 w->g->id.len, w->g->id.ptr, w->generation, w->error);
}

/* Is the leader among the rejoined? If not, another rejoined member
 * leads; false when none rejoined (Kafka's maybeElectNewJoinedLeader). */
static bool elect_joined_leader(struct group *g)
{
	if (g->leader == NULL)
		return false;
	if (g->leader->join_op != NULL)
		return true;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		if (m->join_op != NULL) {
			g->leader = m;
			return true;
		}
	return false;
}

/* Kafka's onCompleteJoin. */
static void complete_join(struct group_coord *gc, struct group *g)
{
	gtimer_cancel(gc, &g->join_timer);
	/* Dynamic members that did not rejoin are gone; static ones keep
	 * their place (and their partitions) until their session ends. */
	for (struct gmember *m = g->members_head, *next; m != NULL; m = next) {
		next = m->next;
		if (m->join_op == NULL && m->instance_id.len < 0)
			gmember_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
	}
	if (g->state == GROUP_DEAD)
		return;
	if (!elect_joined_leader(g) && g->n_members > 0) {
		/* Nobody rejoined: wait another rebalance timeout, until the
		 * sessions of the silent ones end. */
		g->initial_join = false;
		gtimer_set(gc, &g->join_timer, gc->sh->now_ms + group_rebalance_timeout_ms(g));
		return;
	}
	init_next_generation(gc, g);
	if (g->state == GROUP_EMPTY) {
		gstore_begin(gc);
		gstore_add_group(gc, g);
		gstore_submit(gc, g, NULL, NULL, empty_store_done);
		return;
	}
	struct kstr proto = g->protocol.len < 0 ? KSTR("(none in common)") : g->protocol;
	say_info("group %.*s: generation %d with %d members, protocol %.*s", g->id.len, g->id.ptr,
		 g->generation, g->n_members, proto.len, proto.ptr);
	int64_t now = gc->sh->now_ms;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next) {
		struct group_op *op = gmember_take_join(g, m);
		if (op != NULL) {
			gop_join_result(g, m, op, m == g->leader, group_leader_id(g), false);
			group_op_reply(gc->sh, op);
		}
		gtimer_set(gc, &m->timer, now + m->session_timeout_ms);
		m->is_new = false;
		m->pending_sync = true;
	}
	g->n_pending_sync = g->n_members;
	gtimer_set(gc, &g->sync_timer, now + group_rebalance_timeout_ms(g));
}

void grebalance_try_complete(struct group_coord *gc, struct group *g)
{
	if (g->state == GROUP_PREPARING_REBALANCE && !g->initial_join &&
	    g->n_awaiting_join == g->n_members && g->n_pending == 0)
		complete_join(gc, g);
}

/* The join deadline: Kafka's DelayedJoin, or InitialDelayedJoin which
 * waits again (up to the rebalance timeout) while new members keep
 * coming. */
static void join_timer_fire(struct group_coord *gc, struct group *g)
{
	if (g->state != GROUP_PREPARING_REBALANCE)
		return;
	if (g->initial_join && g->new_member_added && g->initial_remaining_ms > 0) {
		int32_t cfg_delay = gc->cfg->group_initial_rebalance_delay_ms;
		int64_t delay = cfg_delay < g->initial_remaining_ms ? cfg_delay
								     : g->initial_remaining_ms;
		int64_t remaining = g->initial_remaining_ms - g->initial_delay_ms;
		g->new_member_added = false;
		g->initial_delay_ms = (int32_t)delay;
		g->initial_remaining_ms = remaining > 0 ? remaining : 0;
		gtimer_set(gc, &g->join_timer, gc->sh->now_ms + delay);
		return;
	}
	g->initial_join = false;
	complete_join(gc, g);
}

/* Members that never sent SyncGroup after the join are dropped. */
static void sync_timer_fire(struct group_coord *gc, struct group *g)
{
	if ((g->state != GROUP_COMPLETING_REBALANCE && g->state != GROUP_STABLE) ||
	    g->n_pending_sync == 0)
		return;
	for (struct gmember *m = g->members_head, *next; m != NULL; m = next) {
		next = m->next;
		if (m->pending_sync) {
			say_info("group %.*s: member %.*s sent no SyncGroup in time: removed",
				 g->id.len, g->id.ptr, m->id.len, m->id.ptr);
			gmember_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		}
	}
	grebalance_prepare(gc, g);
}

static void member_timer_fire(struct group_coord *gc, struct gmember *m)
{
	struct group *g = m->g;
	int64_t now = gc->sh->now_ms;
	if (m->pending) {
		gmember_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		grebalance_try_complete(gc, g);
		group_drop_if_unused(gc, g);
		return;
	}
	/* A member waiting in a JoinGroup or SyncGroup has no way to
	 * heartbeat: it is alive as long as it waits (Kafka's
	 * hasSatisfiedHeartbeat), unless its first join takes too long. */
	if (!m->is_new && (m->join_op != NULL || m->sync_op != NULL)) {
		gtimer_set(gc, &m->timer, now + m->session_timeout_ms);
		return;
	}
	gc->stats.members_expired++;
	say_info("group %.*s: member %.*s failed (session timeout %d ms): removed", g->id.len,
		 g->id.ptr, m->id.len, m->id.ptr, m->session_timeout_ms);
	gmember_remove_and_update(gc, g, m);
}

void group_timer_fire(struct group_coord *gc, struct gtimer *t)
{
	switch ((enum gtimer_kind)t->kind) {
	case GT_MEMBER:
		member_timer_fire(gc, container_of(t, struct gmember, timer));
		return;
	case GT_JOIN:
		join_timer_fire(gc, container_of(t, struct group, join_timer));
		return;
	case GT_SYNC:
		sync_timer_fire(gc, container_of(t, struct group, sync_timer));
		return;
	case GT_CSESSION:
	case GT_CREBALANCE:
		cgroup_timer_fire(gc, t);
		return;
	}
}

/* ---- SyncGroup ---- */

static void sync_store_done(struct group_coord *gc, struct gwrite *w)
{
	struct group *g = w->g;
	/* A member may have joined or left meanwhile: only the generation
	 * this assignment was for is finished here. */
	if (g->removed || g->state != GROUP_COMPLETING_REBALANCE || g->generation != w->generation)
		return;
	if (w->error != KAFKA_NONE) {
		grebalance_reset_and_propagate(gc, g, w->error);
		grebalance_prepare(gc, g);
		return;
	}
	grebalance_propagate(gc, g, KAFKA_NONE);
	group_set_state(g, GROUP_STABLE);
}

/* The leader's assignment: copied to every member (empty for those it
 * left out, ignored for ids not in the group), then written. */
static void sync_leader_assign(struct group_coord *gc, struct group *g,
			       const struct kafka_SyncGroupRequest *b)
{
	size_t total = 0;
	for (int32_t i = 0; i < b->Assignments_count; i++)
		total += (size_t)(b->Assignments[i].Assignment.len > 0 ?
				  b->Assignments[i].Assignment.len : 0);
	if (total > (size_t)gc->cfg->group_max_metadata_bytes) {
		say_warn("group %.*s: assignment of %zu bytes is past group.max.metadata.bytes",
			 g->id.len, g->id.ptr, total);
		grebalance_reset_and_propagate(gc, g, KAFKA_GROUP_MAX_SIZE_REACHED);
		grebalance_prepare(gc, g);
		return;
	}
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		gmember_set_assignment(gc, g, m, (struct kbytes){ NULL, 0 });
	for (int32_t i = 0; i < b->Assignments_count; i++) {
		struct gmember *m = gmember_active(g, b->Assignments[i].MemberId);
		if (m != NULL)
			gmember_set_assignment(gc, g, m, b->Assignments[i].Assignment);
	}
	gstore_begin(gc);
	gstore_add_group(gc, g);
	if (gstore_submit(gc, g, NULL, NULL, sync_store_done) == NULL) {
		grebalance_reset_and_propagate(gc, g, KAFKA_COORDINATOR_NOT_AVAILABLE);
		grebalance_prepare(gc, g);
	}
}

void group_do_sync(struct group_coord *gc, struct group_op *op)
{
	const struct kafka_SyncGroupRequest *b = op->u.sync.body;
	gc->stats.syncs++;
	int16_t err = group_status(gc, op->group_id, false);
	if (err == KAFKA_COORDINATOR_LOAD_IN_PROGRESS)
		err = KAFKA_REBALANCE_IN_PROGRESS; /* Kafka: rejoin, do not rediscover */
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	/* A consumer group has no classic members (see group_do_join). */
	if (err == KAFKA_NONE && (g == NULL || g->type == GROUP_TYPE_CONSUMER))
		err = KAFKA_UNKNOWN_MEMBER_ID;
	if (err == KAFKA_NONE && g->state == GROUP_DEAD)
		err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (err == KAFKA_NONE)
		err = gmember_validate(g, b->MemberId, b->GroupInstanceId);
	if (err == KAFKA_NONE && b->GenerationId != g->generation)
		err = KAFKA_ILLEGAL_GENERATION;
	if (err == KAFKA_NONE && ((b->ProtocolType.len >= 0 && !kstr_eq(b->ProtocolType,
									 g->protocol_type)) ||
				  (b->ProtocolName.len >= 0 && !kstr_eq(b->ProtocolName,
									 g->protocol))))
		err = KAFKA_INCONSISTENT_GROUP_PROTOCOL;
	if (err == KAFKA_NONE && g->state == GROUP_EMPTY)
		err = KAFKA_UNKNOWN_MEMBER_ID;
	if (err == KAFKA_NONE && g->state == GROUP_PREPARING_REBALANCE)
		err = KAFKA_REBALANCE_IN_PROGRESS;
	if (err != KAFKA_NONE) {
		gop_reply(gc, op, err);
		return;
	}
	struct gmember *m = gmember_active(g, b->MemberId);
	if (m->pending_sync) {
		m->pending_sync = false;
		if (--g->n_pending_sync == 0)
			gtimer_cancel(gc, &g->sync_timer);
	}
	if (g->state == GROUP_STABLE) {
		m->sync_op = op;
		gmember_sync_answer(gc, g, m, KAFKA_NONE);
		gtimer_set(gc, &m->timer, gc->sh->now_ms + m->session_timeout_ms);
		return;
	}
	/* CompletingRebalance: wait for the leader's assignment. */
	if (m->sync_op != NULL)
		gmember_sync_answer(gc, g, m, KAFKA_REBALANCE_IN_PROGRESS);
	m->sync_op = op;
	if (g->leader == m)
		sync_leader_assign(gc, g, b);
}

/*
 * group_member: the classic group membership protocol, as Kafka's
 * GroupCoordinator runs it: JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
 * and the timers that drive a rebalance.
 *
 * States: Empty -> PreparingRebalance (a member joins, or one leaves or
 * fails) -> CompletingRebalance (every member rejoined, or the rebalance
 * timeout passed: the members that did not rejoin are dropped, the
 * generation goes up, a protocol is chosen, every JoinGroup is answered,
 * the leader's with all members' metadata) -> Stable (the leader's
 * SyncGroup brought the assignment, written to __consumer_offsets, then
 * every SyncGroup is answered) -> PreparingRebalance again on the next
 * change; Empty again when the last member goes; Dead when the group is
 * deleted or expires (group_offsets.c).
 *
 * A JoinGroup or SyncGroup that must wait is held: the member keeps the
 * op and answers it when the rebalance gets there. Heartbeats only move
 * the member's session deadline (O(1), a hash lookup and a store).
 *
 * Static members (group.instance.id) rejoining with an unknown member id
 * take over their old member: its held requests are fenced
 * (FENCED_INSTANCE_ID), and in a Stable group whose protocol stays the
 * same there is no rebalance: the group is written with the new member id
 * and the member gets the current generation back (and its assignment from
 * SyncGroup).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

static void prepare_rebalance(struct group_coord *gc, struct group *g);
static void join_try_complete(struct group_coord *gc, struct group *g);

/* ---- answers: copies into the op's result arena ---- */

static struct kstr res_str(struct group_op *op, struct kstr s, bool *oom)
{
	if (s.len <= 0)
		return s.len < 0 ? KSTR_NULL : KSTR("");
	char *p = karena_alloc(&op->res, (size_t)s.len);
	if (p == NULL) {
		*oom = true;
		return KSTR("");
	}
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kstr){ p, s.len };
}

static struct kbytes res_bytes(struct group_op *op, struct kbytes b, bool *oom)
{
	struct kstr s = res_str(op, (struct kstr){ (const char *)b.ptr, b.len }, oom);
	return (struct kbytes){ (const uint8_t *)s.ptr, s.len < 0 ? 0 : s.len };
}

static void op_fail(struct group_coord *gc, struct group_op *op, int16_t err)
{
	op->error = err;
	group_op_reply(gc->sh, op);
}

/* A JoinGroup answered with an error; member_id is what the member should
 * use next ("" to start over). */
static void join_fail(struct group_coord *gc, struct group_op *op, int16_t err,
		      struct kstr member_id)
{
	bool oom = false;
	op->u.join.resp->MemberId = res_str(op, member_id, &oom);
	op_fail(gc, op, err);
}

static struct kstr group_leader_id(const struct group *g)
{
	return g->leader != NULL ? g->leader->id : KSTR("");
}

/* Fill a JoinGroup answer with the group's current generation. */
static void join_result(struct group *g, struct gmember *m, struct group_op *op,
			bool with_members, struct kstr leader, bool skip_assignment)
{
	struct kafka_JoinGroupResponse *r = op->u.join.resp;
	bool oom = false;
	op->error = KAFKA_NONE;
	r->GenerationId = g->generation;
	r->ProtocolType = res_str(op, g->protocol_type, &oom);
	r->ProtocolName = res_str(op, g->protocol, &oom);
	r->Leader = res_str(op, leader, &oom);
	r->MemberId = res_str(op, m->id, &oom);
	r->SkipAssignment = skip_assignment;
	r->Members_count = 0;
	if (with_members && g->n_members > 0) {
		r->Members = karena_alloc(&op->res, sizeof(*r->Members) * (size_t)g->n_members);
		if (r->Members == NULL)
			oom = true;
		for (struct gmember *x = g->members_head; x != NULL && !oom; x = x->next) {
			struct kafka_JoinGroupResponse_JoinGroupResponseMember *o =
				&r->Members[r->Members_count++];
			kafka_JoinGroupResponse_JoinGroupResponseMember_init(o);
			o->MemberId = res_str(op, x->id, &oom);
			o->GroupInstanceId = res_str(op, x->instance_id, &oom);
			o->Metadata = res_bytes(op, group_member_metadata(x, g->protocol), &oom);
		}
	}
	if (oom) {
		r->Members_count = 0;
		op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
}

/* Take m's held JoinGroup out of it (the caller answers it). */
static struct group_op *member_take_join(struct group *g, struct gmember *m)
{
	struct group_op *op = m->join_op;
	if (op != NULL) {
		m->join_op = NULL;
		g->n_awaiting_join--;
	}
	return op;
}

static void member_join_error(struct group_coord *gc, struct group *g, struct gmember *m,
			      int16_t err, struct kstr member_id)
{
	struct group_op *op = member_take_join(g, m);
	if (op != NULL)
		join_fail(gc, op, err, member_id);
}

static void member_sync_answer(struct group_coord *gc, struct group *g, struct gmember *m,
			       int16_t err)
{
	struct group_op *op = m->sync_op;
	if (op == NULL)
		return;
	m->sync_op = NULL;
	struct kafka_SyncGroupResponse *r = op->u.sync.resp;
	bool oom = false;
	if (err == KAFKA_NONE) {
		r->ProtocolType = res_str(op, g->protocol_type, &oom);
		r->ProtocolName = res_str(op, g->protocol, &oom);
		r->Assignment = res_bytes(op, m->assignment, &oom);
		if (oom)
			err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	op_fail(gc, op, err);
}

/* ---- members ---- */

struct gmember *group_member_find(struct group *g, struct kstr id)
{
	if (id.len <= 0)
		return NULL;
	struct strmap_node *n = strmap_find(&g->members, id.ptr, (size_t)id.len);
	return n == NULL ? NULL : container_of(n, struct gmember, by_id);
}

static struct gmember *member_active(struct group *g, struct kstr id)
{
	struct gmember *m = group_member_find(g, id);
	return m != NULL && !m->pending ? m : NULL;
}

static struct gmember *static_find(struct group *g, struct kstr instance_id)
{
	if (instance_id.len < 0)
		return NULL;
	struct strmap_node *n = strmap_find(&g->statics, instance_id.ptr, (size_t)instance_id.len);
	return n == NULL ? NULL : container_of(n, struct gmember, by_instance);
}

struct kbytes group_member_metadata(const struct gmember *m, struct kstr protocol)
{
	for (int32_t i = 0; i < m->n_protocols; i++)
		if (kstr_eq(m->protocols[i].name, protocol))
			return m->protocols[i].metadata;
	return (struct kbytes){ (const uint8_t *)"", 0 };
}

void gmember_free(struct group_coord *gc, struct gmember *m)
{
	gstr_free(&m->id);
	gstr_free(&m->instance_id);
	gstr_free(&m->client_id);
	gstr_free(&m->client_host);
	free(m->protocols);
	free((void *)m->assignment.ptr);
	group_mem(gc, -(int64_t)m->mem_bytes);
	free(m);
}

static void list_push(struct gmember **head, struct gmember *m)
{
	m->prev = NULL;
	m->next = *head;
	if (*head != NULL)
		(*head)->prev = m;
	*head = m;
}

static void list_unlink(struct gmember **head, struct gmember *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		*head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	m->next = m->prev = NULL;
}

/* A member (or pending member) with a copy of id; owns nothing else yet. */
static struct gmember *member_new(struct group_coord *gc, struct group *g, struct kstr id,
				  bool pending)
{
	struct gmember *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->id = gstr_dup(id);
	m->instance_id = KSTR_NULL;
	m->client_id = m->client_host = KSTR_NULL;
	if (m->id.len <= 0 ||
	    strmap_insert(&g->members, &m->by_id, m->id.ptr, (size_t)m->id.len) != 0) {
		if (m->id.len > 0)
			gstr_free(&m->id);
		free(m);
		return NULL;
	}
	m->g = g;
	m->pending = pending;
	gtimer_init(&m->timer, GT_MEMBER);
	m->mem_bytes = sizeof(*m) + (size_t)m->id.len;
	group_mem(gc, (int64_t)m->mem_bytes);
	if (pending) {
		list_push(&g->pending_head, m);
		g->n_pending++;
	}
	return m;
}

/* ---- supported protocols (Kafka's supportedProtocols counts) ---- */

static struct gproto_count *proto_count_find(struct group *g, struct kstr name)
{
	for (int32_t i = 0; i < g->n_protos; i++)
		if (g->protos[i].name_len == name.len &&
		    memcmp(g->protos[i].name, name.ptr, (size_t)name.len) == 0)
			return &g->protos[i];
	return NULL;
}

static int32_t proto_support(struct group *g, struct kstr name)
{
	struct gproto_count *c = proto_count_find(g, name);
	return c == NULL ? 0 : c->count;
}

/* Would these protocols bring the group past GROUP_PROTOCOL_NAMES_MAX
 * distinct names? */
static bool protos_overflow(struct group *g, const struct kafka_JoinGroupRequest *b)
{
	int32_t fresh = 0;
	for (int32_t i = 0; i < b->Protocols_count; i++)
		if (proto_count_find(g, b->Protocols[i].Name) == NULL)
			fresh++;
	return g->n_protos + fresh > GROUP_PROTOCOL_NAMES_MAX;
}

static void protos_count(struct group *g, const struct gmember *m, int delta)
{
	for (int32_t i = 0; i < m->n_protocols; i++) {
		struct kstr name = m->protocols[i].name;
		struct gproto_count *c = proto_count_find(g, name);
		if (c == NULL) {
			if (delta < 0 || g->n_protos == GROUP_PROTOCOL_NAMES_MAX)
				continue; /* protos_overflow was checked first */
			c = &g->protos[g->n_protos];
			c->name = malloc(name.len > 0 ? (size_t)name.len : 1);
			if (c->name == NULL)
				continue;
			if (name.len > 0)
				memcpy(c->name, name.ptr, (size_t)name.len);
			c->name_len = name.len;
			c->count = 0;
			g->n_protos++;
		}
		c->count += delta;
		if (c->count <= 0) {
			free(c->name);
			*c = g->protos[--g->n_protos];
		}
	}
}

/* Kafka's supportsProtocols: an empty group takes any non-empty type and
 * list; otherwise the type must match and one protocol must be supported
 * by every member. */
static bool supports_protocols(struct group *g, const struct kafka_JoinGroupRequest *b)
{
	if (g->state == GROUP_EMPTY)
		return b->ProtocolType.len > 0 && b->Protocols_count > 0;
	if (!kstr_eq(g->protocol_type, b->ProtocolType))
		return false;
	for (int32_t i = 0; i < b->Protocols_count; i++)
		if (proto_support(g, b->Protocols[i].Name) == g->n_members)
			return true;
	return false;
}

static size_t protocols_bytes(const struct kafka_JoinGroupRequest *b)
{
	size_t n = 0;
	for (int32_t i = 0; i < b->Protocols_count; i++)
		n += (size_t)(b->Protocols[i].Name.len > 0 ? b->Protocols[i].Name.len : 0) +
		     (size_t)(b->Protocols[i].Metadata.len > 0 ? b->Protocols[i].Metadata.len : 0);
	return n;
}

/* Replace m's protocols with the request's (one allocation). 0, or -1
 * without memory (m unchanged). Counts in the group follow for members. */
static int member_set_protocols(struct group_coord *gc, struct group *g, struct gmember *m,
				const struct kafka_JoinGroupRequest *b)
{
	size_t bytes = protocols_bytes(b);
	size_t n = (size_t)(b->Protocols_count > 0 ? b->Protocols_count : 0);
	struct gproto *p = malloc(n * sizeof(*p) + bytes + 1);
	if (p == NULL)
		return -1;
	char *data = (char *)(p + n);
	for (size_t i = 0; i < n; i++) {
		const struct kafka_JoinGroupRequest_JoinGroupRequestProtocol *rp = &b->Protocols[i];
		int32_t nl = rp->Name.len > 0 ? rp->Name.len : 0;
		int32_t ml = rp->Metadata.len > 0 ? rp->Metadata.len : 0;
		if (nl > 0)
			memcpy(data, rp->Name.ptr, (size_t)nl);
		p[i].name = (struct kstr){ data, nl };
		data += nl;
		if (ml > 0)
			memcpy(data, rp->Metadata.ptr, (size_t)ml);
		p[i].metadata = (struct kbytes){ (const uint8_t *)data, ml };
		data += ml;
	}
	if (!m->pending)
		protos_count(g, m, -1);
	int64_t delta = (int64_t)(n * sizeof(*p) + bytes) -
			(int64_t)((size_t)m->n_protocols * sizeof(*p) + m->protocols_bytes);
	if (!m->pending) {
		g->metadata_bytes -= m->protocols_bytes;
		g->metadata_bytes += bytes;
	}
	free(m->protocols);
	m->protocols = p;
	m->n_protocols = (int32_t)n;
	m->protocols_bytes = bytes;
	m->mem_bytes = (size_t)((int64_t)m->mem_bytes + delta);
	group_mem(gc, delta);
	if (!m->pending)
		protos_count(g, m, +1);
	return 0;
}

static bool member_matches(const struct gmember *m, const struct kafka_JoinGroupRequest *b)
{
	if (m->n_protocols != b->Protocols_count)
		return false;
	for (int32_t i = 0; i < m->n_protocols; i++)
		if (!kstr_eq(m->protocols[i].name, b->Protocols[i].Name) ||
		    !kbytes_eq(m->protocols[i].metadata, b->Protocols[i].Metadata))
			return false;
	return true;
}

static void member_set_assignment(struct group_coord *gc, struct group *g, struct gmember *m,
				  struct kbytes a)
{
	uint8_t *copy = NULL;
	int32_t len = a.len > 0 ? a.len : 0;
	if (len > 0) {
		copy = malloc((size_t)len);
		if (copy == NULL)
			len = 0; /* an empty assignment: the member rejoins */
		else
			memcpy(copy, a.ptr, (size_t)len);
	}
	g->assignment_bytes -= (size_t)m->assignment.len;
	g->assignment_bytes += (size_t)len;
	group_mem(gc, (int64_t)len - m->assignment.len);
	m->mem_bytes = m->mem_bytes + (size_t)len - (size_t)m->assignment.len;
	free((void *)m->assignment.ptr);
	m->assignment = (struct kbytes){ copy, len };
}

/* Take m out of its group (maps, lists, counts, timer) and free it, or
 * keep it as a zombie while writes that name it are in flight. Its held
 * requests are answered: JoinGroup UNKNOWN_MEMBER_ID (with member id "",
 * so a live client starts over), SyncGroup err. */
static void member_remove(struct group_coord *gc, struct group *g, struct gmember *m,
			  int16_t sync_err)
{
	member_join_error(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID, KSTR(""));
	member_sync_answer(gc, g, m, sync_err);
	gtimer_cancel(gc, &m->timer);
	strmap_remove(&g->members, &m->by_id);
	if (m->pending) {
		list_unlink(&g->pending_head, m);
		g->n_pending--;
	} else {
		if (m->instance_id.len >= 0)
			strmap_remove(&g->statics, &m->by_instance);
		protos_count(g, m, -1);
		g->metadata_bytes -= m->protocols_bytes;
		g->assignment_bytes -= (size_t)m->assignment.len;
		if (m->pending_sync)
			g->n_pending_sync--;
		list_unlink(&g->members_head, m);
		g->n_members--;
		if (g->leader == m)
			g->leader = g->members_head; /* Kafka takes any member */
	}
	if (g->refs > 0) {
		m->removed = true;
		m->next = g->zombies;
		g->zombies = m;
	} else {
		gmember_free(gc, m);
	}
}

void group_members_clear(struct group_coord *gc, struct group *g, int16_t err)
{
	while (g->members_head != NULL) {
		struct gmember *m = g->members_head;
		struct group_op *op = member_take_join(g, m);
		if (op != NULL)
			join_fail(gc, op, err, m->id);
		member_remove(gc, g, m, err);
	}
	while (g->pending_head != NULL)
		member_remove(gc, g, g->pending_head, err);
	g->leader = NULL;
}

/* Kafka's removeMemberAndUpdateGroup. */
static void member_remove_and_update(struct group_coord *gc, struct group *g, struct gmember *m)
{
	member_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
	switch (g->state) {
	case GROUP_STABLE:
	case GROUP_COMPLETING_REBALANCE:
		prepare_rebalance(gc, g);
		break;
	case GROUP_PREPARING_REBALANCE:
		join_try_complete(gc, g);
		break;
	case GROUP_EMPTY:
	case GROUP_DEAD:
		break;
	}
}

/* A fresh member id: the client id (or group.instance.id) and a random
 * UUID, as Kafka makes them. malloc'ed; len -2 without memory. */
static struct kstr member_id_generate(struct kstr prefix)
{
	uint8_t u[16];
	if (getrandom(u, sizeof(u), 0) != sizeof(u))
		memset(u, 0, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	int32_t plen = prefix.len > 0 ? prefix.len : 0;
	char *p = malloc((size_t)plen + 1 + 36 + 1);
	if (p == NULL)
		return (struct kstr){ NULL, -2 };
	if (plen > 0)
		memcpy(p, prefix.ptr, (size_t)plen);
	snprintf(p + plen, 38,
		 "-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0],
		 u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
	return (struct kstr){ p, plen + 37 };
}

/* ---- rebalance ---- */

static void sync_clear(struct group_coord *gc, struct group *g)
{
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		m->pending_sync = false;
	g->n_pending_sync = 0;
	gtimer_cancel(gc, &g->sync_timer);
}

static void propagate_assignment(struct group_coord *gc, struct group *g, int16_t err)
{
	int64_t now = gc->sh->now_ms;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next) {
		if (m->sync_op == NULL)
			continue;
		member_sync_answer(gc, g, m, err);
		/* Kafka restarts the session once a member has its answer: its
		 * deadline may have passed while it waited for the leader. */
		gtimer_set(gc, &m->timer, now + m->session_timeout_ms);
	}
}

static void reset_and_propagate(struct group_coord *gc, struct group *g, int16_t err)
{
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		member_set_assignment(gc, g, m, (struct kbytes){ NULL, 0 });
	propagate_assignment(gc, g, err);
}

static void prepare_rebalance(struct group_coord *gc, struct group *g)
{
	if (g->state == GROUP_COMPLETING_REBALANCE)
		reset_and_propagate(gc, g, KAFKA_REBALANCE_IN_PROGRESS);
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
		join_try_complete(gc, g);
}

static void maybe_prepare_rebalance(struct group_coord *gc, struct group *g)
{
	if (g->state == GROUP_STABLE || g->state == GROUP_COMPLETING_REBALANCE ||
	    g->state == GROUP_EMPTY)
		prepare_rebalance(gc, g);
}

/* The protocol the members' votes choose (index into the first member's
 * protocols), or NULL. */
static const struct gproto *group_select_protocol(struct group *g)
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
	const struct gproto *p = group_select_protocol(g);
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
			member_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
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
	say_info("group %.*s: generation %d with %d members, protocol %.*s", g->id.len, g->id.ptr,
		 g->generation, g->n_members, g->protocol.len, g->protocol.ptr);
	int64_t now = gc->sh->now_ms;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next) {
		struct group_op *op = member_take_join(g, m);
		if (op != NULL) {
			join_result(g, m, op, m == g->leader, group_leader_id(g), false);
			group_op_reply(gc->sh, op);
		}
		gtimer_set(gc, &m->timer, now + m->session_timeout_ms);
		m->is_new = false;
		m->pending_sync = true;
	}
	g->n_pending_sync = g->n_members;
	gtimer_set(gc, &g->sync_timer, now + group_rebalance_timeout_ms(g));
}

static void join_try_complete(struct group_coord *gc, struct group *g)
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
			member_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		}
	}
	prepare_rebalance(gc, g);
}

static void member_timer_fire(struct group_coord *gc, struct gmember *m)
{
	struct group *g = m->g;
	int64_t now = gc->sh->now_ms;
	if (m->pending) {
		member_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		join_try_complete(gc, g);
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
	member_remove_and_update(gc, g, m);
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
	}
}

/* ---- JoinGroup ---- */

struct join_args {
	const struct kafka_JoinGroupRequest *b;
	int32_t session_ms, rebalance_ms;
};

/* Copy a member's descriptive strings in; 0, or -1 without memory. */
static int member_set_strings(struct group_coord *gc, struct gmember *m, struct kstr instance_id,
			      struct kstr client_id, struct kstr client_host)
{
	m->instance_id = gstr_dup(instance_id);
	m->client_id = gstr_dup(client_id);
	m->client_host = gstr_dup(client_host);
	if (m->instance_id.len < -1 || m->client_id.len < -1 || m->client_host.len < -1)
		return -1;
	size_t extra = (size_t)(m->instance_id.len > 0 ? m->instance_id.len : 0) +
		       (size_t)(m->client_id.len > 0 ? m->client_id.len : 0) +
		       (size_t)(m->client_host.len > 0 ? m->client_host.len : 0);
	m->mem_bytes += extra;
	group_mem(gc, (int64_t)extra);
	return 0;
}

/* Fill a new member from the join request; 0, or -1 without memory. */
static int member_fill(struct group_coord *gc, struct group *g, struct gmember *m,
		       struct group_op *op, const struct join_args *a)
{
	if (member_set_strings(gc, m, a->b->GroupInstanceId, op->u.join.client_id,
			       op->u.join.client_host) != 0)
		return -1;
	m->session_timeout_ms = a->session_ms;
	m->rebalance_timeout_ms = a->rebalance_ms;
	return member_set_protocols(gc, g, m, a->b);
}

/* Kafka's addMemberAndRebalance: id is the member's (malloc'ed, taken). */
static void add_member_and_rebalance(struct group_coord *gc, struct group *g, struct group_op *op,
				     const struct join_args *a, struct kstr id)
{
	struct gmember *m = member_new(gc, g, id, false);
	gstr_free(&id);
	/* The pending flag is off from the start, so member_set_protocols
	 * counts the protocols once they are in. */
	if (m == NULL || member_fill(gc, g, m, op, a) != 0) {
		if (m != NULL) {
			strmap_remove(&g->members, &m->by_id);
			gmember_free(gc, m);
		}
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		return;
	}
	if (m->instance_id.len >= 0)
		strmap_insert(&g->statics, &m->by_instance, m->instance_id.ptr,
			      (size_t)m->instance_id.len);
	m->is_new = true;
	if (g->state == GROUP_PREPARING_REBALANCE && g->generation == 0)
		g->new_member_added = true;
	if (g->n_members == 0) {
		gstr_free(&g->protocol_type);
		g->protocol_type = gstr_dup(a->b->ProtocolType);
	}
	list_push(&g->members_head, m);
	g->n_members++;
	if (g->leader == NULL)
		g->leader = m;
	m->join_op = op;
	m->join_seq++;
	g->n_awaiting_join++;
	gtimer_set(gc, &m->timer, gc->sh->now_ms + GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS);
	maybe_prepare_rebalance(gc, g);
}

/* A member's JoinGroup replaces the one it had waiting (a client that
 * gave up on a request and sent it again): the old one is answered so
 * that its request is freed; the client no longer listens to it. */
static void member_await_join(struct group *g, struct gmember *m, struct group_op *op,
			      struct group_coord *gc)
{
	if (m->join_op != NULL)
		member_join_error(gc, g, m, KAFKA_REBALANCE_IN_PROGRESS, m->id);
	m->join_op = op;
	m->join_seq++;
	g->n_awaiting_join++;
}

static void update_member_and_rebalance(struct group_coord *gc, struct group *g,
					struct gmember *m, struct group_op *op,
					const struct join_args *a)
{
	if (member_set_protocols(gc, g, m, a->b) != 0) {
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, m->id);
		return;
	}
	m->session_timeout_ms = a->session_ms;
	m->rebalance_timeout_ms = a->rebalance_ms;
	member_await_join(g, m, op, gc);
	maybe_prepare_rebalance(gc, g);
}

/* The write of a Stable group whose static member was replaced. */
static void static_store_done(struct group_coord *gc, struct gwrite *w)
{
	struct gmember *m = w->member;
	struct group *g = w->g;
	if (m->removed || m->join_op == NULL || m->join_seq != w->join_seq)
		return; /* answered meanwhile (fenced again, removed, rebalanced) */
	struct group_op *op = member_take_join(g, m);
	if (w->error != KAFKA_NONE) {
		/* The old member id is no longer valid either: the client
		 * starts over with an unknown id and takes over again. */
		join_fail(gc, op, w->error, KSTR(""));
		return;
	}
	bool leader = g->leader == m;
	if (op->version >= 9) {
		/* KIP-814: the leader learns it leads but skips the assignment
		 * of a group that stays Stable. */
		join_result(g, m, op, leader, group_leader_id(g), leader);
	} else {
		/* Before v9 the answer names the old leader id, so a rejoining
		 * leader does not run an assignment that a Stable group would
		 * ignore. */
		join_result(g, m, op, false, w->was_leader ? w->old_member_id : group_leader_id(g),
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
	member_join_error(gc, g, m, KAFKA_FENCED_INSTANCE_ID, m->id);
	member_sync_answer(gc, g, m, KAFKA_FENCED_INSTANCE_ID);
	struct kstr old_id = m->id;
	bool was_leader = g->leader == m;
	strmap_remove(&g->members, &m->by_id);
	m->id = new_id;
	group_mem(gc, (int64_t)new_id.len - old_id.len);
	m->mem_bytes = m->mem_bytes + (size_t)new_id.len - (size_t)old_id.len;
	strmap_insert(&g->members, &m->by_id, m->id.ptr, (size_t)m->id.len);
	gtimer_set(gc, &m->timer, gc->sh->now_ms + a->session_ms);
	if (member_set_protocols(gc, g, m, a->b) != 0) {
		gstr_free(&old_id);
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		prepare_rebalance(gc, g);
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
		const struct gproto *p = group_select_protocol(g);
		if (p == NULL || !kstr_eq(p->name, g->protocol)) {
			gstr_free(&old_id);
			prepare_rebalance(gc, g);
			return;
		}
		gstore_begin(gc);
		gstore_add_group(gc, g);
		struct gwrite *w = gstore_submit(gc, g, NULL, m, static_store_done);
		if (w == NULL) {
			gstr_free(&old_id);
			member_join_error(gc, g, m, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
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
		prepare_rebalance(gc, g);
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
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		return;
	}
	if (!supports_protocols(g, b) || protos_overflow(g, b)) {
		join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, KSTR(""));
		return;
	}
	bool is_static = b->GroupInstanceId.len >= 0;
	struct kstr id = member_id_generate(is_static ? b->GroupInstanceId : op->u.join.client_id);
	if (id.len < 0) {
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
		return;
	}
	struct gmember *old = is_static ? static_find(g, b->GroupInstanceId) : NULL;
	if (old != NULL) {
		update_static_member(gc, g, old, op, a, id);
	} else if (!is_static && op->version >= 4) {
		/* KIP-394: the member gets its id first and joins with it, so a
		 * client that times out and retries does not leave ghost
		 * members behind. */
		struct gmember *p = member_new(gc, g, id, true);
		if (p == NULL) {
			gstr_free(&id);
			join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, KSTR(""));
			return;
		}
		gtimer_set(gc, &p->timer, gc->sh->now_ms + a->session_ms);
		join_fail(gc, op, KAFKA_MEMBER_ID_REQUIRED, p->id);
		gstr_free(&id);
	} else {
		add_member_and_rebalance(gc, g, op, a, id);
	}
}

/* Kafka's validateCurrentMember: the instance id, if given, must map to
 * this member id; the member must exist. */
static int16_t validate_member(struct group *g, struct kstr member_id, struct kstr instance_id)
{
	if (instance_id.len >= 0) {
		struct gmember *s = static_find(g, instance_id);
		if (s == NULL)
			return KAFKA_UNKNOWN_MEMBER_ID;
		if (!kstr_eq(s->id, member_id))
			return KAFKA_FENCED_INSTANCE_ID;
		return KAFKA_NONE;
	}
	return member_active(g, member_id) != NULL ? KAFKA_NONE : KAFKA_UNKNOWN_MEMBER_ID;
}

/* Kafka's doCurrentMemberJoinGroup. */
static void current_member_join(struct group_coord *gc, struct group *g, struct group_op *op,
				const struct join_args *a)
{
	const struct kafka_JoinGroupRequest *b = a->b;
	if (g->state == GROUP_DEAD) {
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, b->MemberId);
		return;
	}
	if (!supports_protocols(g, b) || protos_overflow(g, b)) {
		join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, b->MemberId);
		return;
	}
	struct gmember *m = group_member_find(g, b->MemberId);
	if (m != NULL && m->pending) {
		/* A pending member is dynamic by construction. */
		if (b->GroupInstanceId.len >= 0) {
			join_fail(gc, op, KAFKA_UNKNOWN_MEMBER_ID, b->MemberId);
			return;
		}
		struct kstr id = gstr_dup(m->id);
		member_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		if (id.len < 0) {
			join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, b->MemberId);
			return;
		}
		add_member_and_rebalance(gc, g, op, a, id);
		return;
	}
	int16_t err = validate_member(g, b->MemberId, b->GroupInstanceId);
	if (err != KAFKA_NONE) {
		join_fail(gc, op, err, b->MemberId);
		return;
	}
	m = member_active(g, b->MemberId);
	switch (g->state) {
	case GROUP_PREPARING_REBALANCE:
		update_member_and_rebalance(gc, g, m, op, a);
		return;
	case GROUP_COMPLETING_REBALANCE:
		if (member_matches(m, b)) {
			/* It lost the answer to its first JoinGroup: the same
			 * generation again. */
			join_result(g, m, op, g->leader == m, group_leader_id(g), false);
			group_op_reply(gc->sh, op);
		} else {
			update_member_and_rebalance(gc, g, m, op, a);
		}
		return;
	case GROUP_STABLE:
		if (g->leader == m || !member_matches(m, b)) {
			/* A leader's JoinGroup asks for a new assignment (its
			 * topics' metadata changed); new metadata needs one. */
			update_member_and_rebalance(gc, g, m, op, a);
		} else {
			join_result(g, m, op, false, group_leader_id(g), false);
			group_op_reply(gc->sh, op);
		}
		return;
	case GROUP_EMPTY:
	case GROUP_DEAD:
		join_fail(gc, op, KAFKA_UNKNOWN_MEMBER_ID, b->MemberId);
		return;
	}
}

/* Kafka's acceptJoiningMember: room for one more under group.max.size. */
static bool accept_joining(struct group_coord *gc, struct group *g, struct kstr member_id)
{
	int32_t max = gc->cfg->group_max_size;
	struct gmember *m = member_active(g, member_id);
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
		join_fail(gc, op, err, b->MemberId);
		return;
	}
	struct join_args a = { .b = b, .session_ms = b->SessionTimeoutMs,
			       .rebalance_ms = op->version == 0 ? b->SessionTimeoutMs
								: b->RebalanceTimeoutMs };
	if (a.session_ms < cfg->group_min_session_timeout_ms ||
	    a.session_ms > cfg->group_max_session_timeout_ms) {
		join_fail(gc, op, KAFKA_INVALID_SESSION_TIMEOUT, b->MemberId);
		return;
	}
	if (a.rebalance_ms <= 0)
		a.rebalance_ms = a.session_ms;
	if (b->Protocols_count > GROUP_MEMBER_PROTOCOLS_MAX) {
		join_fail(gc, op, KAFKA_INCONSISTENT_GROUP_PROTOCOL, b->MemberId);
		return;
	}
	bool unknown = b->MemberId.len <= 0;
	struct group *g = group_find(gc, op->group_id);
	if (g == NULL && !unknown) {
		join_fail(gc, op, KAFKA_UNKNOWN_MEMBER_ID, b->MemberId);
		return;
	}
	if (g == NULL && (g = group_create(gc, op->group_id)) == NULL) {
		join_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, b->MemberId);
		return;
	}
	struct gmember *m = member_active(g, b->MemberId);
	size_t have = m != NULL ? m->protocols_bytes : 0;
	if (!accept_joining(gc, g, b->MemberId) ||
	    g->metadata_bytes - have + protocols_bytes(b) > (size_t)cfg->group_max_metadata_bytes) {
		if (m != NULL)
			member_remove_and_update(gc, g, m);
		join_fail(gc, op, KAFKA_GROUP_MAX_SIZE_REACHED, KSTR(""));
	} else if (unknown) {
		new_member_join(gc, g, op, &a);
	} else {
		current_member_join(gc, g, op, &a);
	}
	join_try_complete(gc, g);
	group_drop_if_unused(gc, g);
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
		reset_and_propagate(gc, g, w->error);
		prepare_rebalance(gc, g);
		return;
	}
	propagate_assignment(gc, g, KAFKA_NONE);
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
		reset_and_propagate(gc, g, KAFKA_GROUP_MAX_SIZE_REACHED);
		prepare_rebalance(gc, g);
		return;
	}
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		member_set_assignment(gc, g, m, (struct kbytes){ NULL, 0 });
	for (int32_t i = 0; i < b->Assignments_count; i++) {
		struct gmember *m = member_active(g, b->Assignments[i].MemberId);
		if (m != NULL)
			member_set_assignment(gc, g, m, b->Assignments[i].Assignment);
	}
	gstore_begin(gc);
	gstore_add_group(gc, g);
	if (gstore_submit(gc, g, NULL, NULL, sync_store_done) == NULL) {
		reset_and_propagate(gc, g, KAFKA_COORDINATOR_NOT_AVAILABLE);
		prepare_rebalance(gc, g);
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
	if (err == KAFKA_NONE && g == NULL)
		err = KAFKA_UNKNOWN_MEMBER_ID;
	if (err == KAFKA_NONE && g->state == GROUP_DEAD)
		err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (err == KAFKA_NONE)
		err = validate_member(g, b->MemberId, b->GroupInstanceId);
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
		op_fail(gc, op, err);
		return;
	}
	struct gmember *m = member_active(g, b->MemberId);
	if (m->pending_sync) {
		m->pending_sync = false;
		if (--g->n_pending_sync == 0)
			gtimer_cancel(gc, &g->sync_timer);
	}
	if (g->state == GROUP_STABLE) {
		m->sync_op = op;
		member_sync_answer(gc, g, m, KAFKA_NONE);
		gtimer_set(gc, &m->timer, gc->sh->now_ms + m->session_timeout_ms);
		return;
	}
	/* CompletingRebalance: wait for the leader's assignment. */
	if (m->sync_op != NULL)
		member_sync_answer(gc, g, m, KAFKA_REBALANCE_IN_PROGRESS);
	m->sync_op = op;
	if (g->leader == m)
		sync_leader_assign(gc, g, b);
}

/* ---- Heartbeat ---- */

void group_do_heartbeat(struct group_coord *gc, struct group_op *op)
{
	const struct kafka_HeartbeatRequest *b = op->u.heartbeat.body;
	gc->stats.heartbeats++;
	int16_t err = group_status(gc, op->group_id, false);
	if (err == KAFKA_COORDINATOR_LOAD_IN_PROGRESS) {
		op_fail(gc, op, KAFKA_NONE); /* Kafka answers blindly while loading */
		return;
	}
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && g == NULL)
		err = KAFKA_UNKNOWN_MEMBER_ID;
	if (err == KAFKA_NONE && g->state == GROUP_DEAD)
		err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (err == KAFKA_NONE)
		err = validate_member(g, b->MemberId, b->GroupInstanceId);
	if (err == KAFKA_NONE && b->GenerationId != g->generation)
		err = KAFKA_ILLEGAL_GENERATION;
	if (err == KAFKA_NONE) {
		if (g->state == GROUP_EMPTY) {
			err = KAFKA_UNKNOWN_MEMBER_ID;
		} else {
			struct gmember *m = member_active(g, b->MemberId);
			/* O(1): a later deadline is only written down; the heap
			 * entry catches up with it when it fires. */
			gtimer_set(gc, &m->timer, gc->sh->now_ms + m->session_timeout_ms);
			if (g->state == GROUP_PREPARING_REBALANCE)
				err = KAFKA_REBALANCE_IN_PROGRESS;
		}
	}
	op_fail(gc, op, err);
}

/* ---- LeaveGroup ---- */

static int16_t leave_one(struct group_coord *gc, struct group *g,
			 const struct kafka_LeaveGroupRequest_MemberIdentity *who)
{
	struct gmember *m;
	if (who->MemberId.len <= 0) {
		/* Administrative removal by group.instance.id. */
		m = static_find(g, who->GroupInstanceId);
		if (m == NULL)
			return KAFKA_UNKNOWN_MEMBER_ID;
		member_remove_and_update(gc, g, m);
		return KAFKA_NONE;
	}
	m = group_member_find(g, who->MemberId);
	if (m != NULL && m->pending) {
		member_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
		join_try_complete(gc, g);
		return KAFKA_NONE;
	}
	int16_t err = validate_member(g, who->MemberId, who->GroupInstanceId);
	if (err != KAFKA_NONE)
		return err;
	m = member_active(g, who->MemberId);
	say_info("group %.*s: member %.*s left", g->id.len, g->id.ptr, m->id.len, m->id.ptr);
	member_remove_and_update(gc, g, m);
	return KAFKA_NONE;
}

void group_do_leave(struct group_coord *gc, struct group_op *op)
{
	int16_t err = group_status(gc, op->group_id, false);
	struct group *g = err == KAFKA_NONE ? group_find(gc, op->group_id) : NULL;
	if (err == KAFKA_NONE && g != NULL && g->state == GROUP_DEAD)
		err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	if (err != KAFKA_NONE) {
		op_fail(gc, op, err);
		return;
	}
	for (int32_t i = 0; i < op->u.leave.n; i++)
		op->u.leave.out[i].ErrorCode = g == NULL ? KAFKA_UNKNOWN_MEMBER_ID
							 : leave_one(gc, g, &op->u.leave.members[i]);
	if (g != NULL)
		group_drop_if_unused(gc, g);
	op_fail(gc, op, KAFKA_NONE);
}

/* ---- loading and descriptions ---- */

struct gmember *group_member_load(struct group_coord *gc, struct group *g,
				  const struct group_value_member *v, struct kstr protocol)
{
	struct gmember *m = member_new(gc, g, v->member_id, false);
	if (m == NULL)
		return NULL;
	int rc = member_set_strings(gc, m, v->instance_id, v->client_id, v->client_host);
	m->session_timeout_ms = v->session_timeout_ms;
	m->rebalance_timeout_ms = v->rebalance_timeout_ms;
	/* A loaded member supports just the group's protocol, with its
	 * subscription: what Kafka restores too. */
	struct kafka_JoinGroupRequest_JoinGroupRequestProtocol p = {
		.Name = protocol.len < 0 ? KSTR("") : protocol, .Metadata = v->subscription };
	struct kafka_JoinGroupRequest b = { .Protocols = &p, .Protocols_count = 1 };
	if (rc != 0 || member_set_protocols(gc, g, m, &b) != 0) {
		strmap_remove(&g->members, &m->by_id);
		gmember_free(gc, m);
		return NULL;
	}
	if (m->instance_id.len >= 0 && static_find(g, m->instance_id) != NULL)
		gstr_free(&m->instance_id); /* a record cannot hold one twice */
	if (m->instance_id.len >= 0)
		strmap_insert(&g->statics, &m->by_instance, m->instance_id.ptr,
			      (size_t)m->instance_id.len);
	list_push(&g->members_head, m);
	g->n_members++;
	member_set_assignment(gc, g, m, v->assignment);
	return m;
}

void group_members_loaded(struct group_coord *gc, struct group *g)
{
	int64_t now = gc->sh->now_ms;
	for (struct gmember *m = g->members_head; m != NULL; m = m->next)
		gtimer_set(gc, &m->timer, now + m->session_timeout_ms);
}

bool group_subscribed_to(const struct group *g, struct kstr topic)
{
	if (g->protocol.len < 0 || g->n_members == 0)
		return true; /* Kafka: not known yet, so assume it is */
	for (const struct gmember *m = g->members_head; m != NULL; m = m->next) {
		int rc = group_subscription_has_topic(group_member_metadata(m, g->protocol), topic);
		if (rc != 0)
			return true; /* subscribed, or unreadable: assume so */
	}
	return false;
}

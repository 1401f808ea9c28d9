/*
 * group_member: a group's members as the coordinator keeps them: create,
 * find (by member id, and static members by group.instance.id, both in
 * hash maps), their protocols (with the group's count of members
 * supporting each, Kafka's supportedProtocols), assignments, removal, and
 * the answers of their held JoinGroup and SyncGroup requests. The protocol
 * itself is in group_join.c (JoinGroup, Heartbeat, LeaveGroup) and
 * group_rebalance.c (the rebalance, its timers, SyncGroup).
 *
 * Answers are copied into the op's result arena (op->res): the member's
 * memory may change or go before the caller encodes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* ---- answers: copies into the op's result arena ---- */

static struct kstr gop_str(struct group_op *op, struct kstr s, bool *oom)
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

static struct kbytes gop_bytes(struct group_op *op, struct kbytes b, bool *oom)
{
	struct kstr s = gop_str(op, (struct kstr){ (const char *)b.ptr, b.len }, oom);
	return (struct kbytes){ (const uint8_t *)s.ptr, s.len < 0 ? 0 : s.len };
}

void gop_reply(struct group_coord *gc, struct group_op *op, int16_t err)
{
	op->error = err;
	group_op_reply(gc->sh, op);
}

/* A JoinGroup answered with an error; member_id is what the member should
 * use next ("" to start over). */
void gop_join_fail(struct group_coord *gc, struct group_op *op, int16_t err,
		      struct kstr member_id)
{
	bool oom = false;
	op->u.join.resp->MemberId = gop_str(op, member_id, &oom);
	gop_reply(gc, op, err);
}

struct kstr group_leader_id(const struct group *g)
{
	return g->leader != NULL ? g->leader->id : KSTR("");
}

/* Fill a JoinGroup answer with the group's current generation. */
void gop_join_result(struct group *g, struct gmember *m, struct group_op *op,
			bool with_members, struct kstr leader, bool skip_assignment)
{
	struct kafka_JoinGroupResponse *r = op->u.join.resp;
	bool oom = false;
	op->error = KAFKA_NONE;
	r->GenerationId = g->generation;
	r->ProtocolType = gop_str(op, g->protocol_type, &oom);
	r->ProtocolName = gop_str(op, g->protocol, &oom);
	r->Leader = gop_str(op, leader, &oom);
	r->MemberId = gop_str(op, m->id, &oom);
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
			o->MemberId = gop_str(op, x->id, &oom);
			o->GroupInstanceId = gop_str(op, x->instance_id, &oom);
			o->Metadata = gop_bytes(op, group_member_metadata(x, g->protocol), &oom);
		}
	}
	if (oom) {
		r->Members_count = 0;
		op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
}

/* Take m's held JoinGroup out of it (the caller answers it). */
struct group_op *gmember_take_join(struct group *g, struct gmember *m)
{
	struct group_op *op = m->join_op;
	if (op != NULL) {
		m->join_op = NULL;
		g->n_awaiting_join--;
	}
	return op;
}

void gmember_join_error(struct group_coord *gc, struct group *g, struct gmember *m,
			      int16_t err, struct kstr member_id)
{
	struct group_op *op = gmember_take_join(g, m);
	if (op != NULL)
		gop_join_fail(gc, op, err, member_id);
}

void gmember_sync_answer(struct group_coord *gc, struct group *g, struct gmember *m,
			       int16_t err)
{
	struct group_op *op = m->sync_op;
	if (op == NULL)
		return;
	m->sync_op = NULL;
	struct kafka_SyncGroupResponse *r = op->u.sync.resp;
	bool oom = false;
	if (err == KAFKA_NONE) {
		r->ProtocolType = gop_str(op, g->protocol_type, &oom);
		r->ProtocolName = gop_str(op, g->protocol, &oom);
		r->Assignment = gop_bytes(op, m->assignment, &oom);
		if (oom)
			err = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	gop_reply(gc, op, err);
}

/* ---- members ---- */

struct gmember *group_member_find(struct group *g, struct kstr id)
{
	if (id.len <= 0)
		return NULL;
	struct strmap_node *n = strmap_find(&g->members, id.ptr, (size_t)id.len);
	return n == NULL ? NULL : container_of(n, struct gmember, by_id);
}

struct gmember *gmember_active(struct group *g, struct kstr id)
{
	struct gmember *m = group_member_find(g, id);
	return m != NULL && !m->pending ? m : NULL;
}

struct gmember *gmember_static(struct group *g, struct kstr instance_id)
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
struct gmember *gmember_new(struct group_coord *gc, struct group *g, struct kstr id,
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

void gmember_link(struct group *g, struct gmember *m)
{
	/* The map's only failure is its first bucket array, which the member
	 * map (same group) already has: the static map then just misses the
	 * member, which stays a dynamic one in effect. */
	if (m->instance_id.len >= 0)
		strmap_insert(&g->statics, &m->by_instance, m->instance_id.ptr,
			      (size_t)m->instance_id.len);
	list_push(&g->members_head, m);
	g->n_members++;
	if (g->leader == NULL)
		g->leader = m;
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
bool group_protocols_overflow(struct group *g, const struct kafka_JoinGroupRequest *b)
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
				continue; /* group_protocols_overflow was checked first */
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
bool group_supports_protocols(struct group *g, const struct kafka_JoinGroupRequest *b)
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

size_t group_protocols_bytes(const struct kafka_JoinGroupRequest *b)
{
	size_t n = 0;
	for (int32_t i = 0; i < b->Protocols_count; i++)
		n += (size_t)(b->Protocols[i].Name.len > 0 ? b->Protocols[i].Name.len : 0) +
		     (size_t)(b->Protocols[i].Metadata.len > 0 ? b->Protocols[i].Metadata.len : 0);
	return n;
}

/* Replace m's protocols with the request's (one allocation). 0, or -1
 * without memory (m unchanged). Counts in the group follow for members. */
int gmember_set_protocols(struct group_coord *gc, struct group *g, struct gmember *m,
				const struct kafka_JoinGroupRequest *b)
{
	size_t bytes = group_protocols_bytes(b);
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

bool gmember_matches(const struct gmember *m, const struct kafka_JoinGroupRequest *b)
{
	if (m->n_protocols != b->Protocols_count)
		return false;
	for (int32_t i = 0; i < m->n_protocols; i++)
		if (!kstr_eq(m->protocols[i].name, b->Protocols[i].Name) ||
		    !kbytes_eq(m->protocols[i].metadata, b->Protocols[i].Metadata))
			return false;
	return true;
}

void gmember_set_assignment(struct group_coord *gc, struct group *g, struct gmember *m,
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
void gmember_remove(struct group_coord *gc, struct group *g, struct gmember *m,
			  int16_t sync_err)
{
	gmember_join_error(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID, KSTR(""));
	gmember_sync_answer(gc, g, m, sync_err);
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
		struct group_op *op = gmember_take_join(g, m);
		if (op != NULL)
			gop_join_fail(gc, op, err, m->id);
		gmember_remove(gc, g, m, err);
	}
	while (g->pending_head != NULL)
		gmember_remove(gc, g, g->pending_head, err);
	g->leader = NULL;
}

/* Kafka's removeMemberAndUpdateGroup. */
void gmember_remove_and_update(struct group_coord *gc, struct group *g, struct gmember *m)
{
	gmember_remove(gc, g, m, KAFKA_UNKNOWN_MEMBER_ID);
	switch (g->state) {
	case GROUP_STABLE:
	case GROUP_COMPLETING_REBALANCE:
		grebalance_prepare(gc, g);
		break;
	case GROUP_PREPARING_REBALANCE:
		grebalance_try_complete(gc, g);
		break;
	case GROUP_EMPTY:
	case GROUP_DEAD:
		break;
	}
}

/* A fresh member id: the client id (or group.instance.id) and a random
 * UUID, as Kafka makes them. malloc'ed; len -2 without memory. */
struct kstr gmember_id_generate(struct kstr prefix)
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

/* Copy a member's descriptive strings in; 0, or -1 without memory. */
int gmember_set_strings(struct group_coord *gc, struct gmember *m, struct kstr instance_id,
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


/* Kafka's validateCurrentMember: the instance id, if given, must map to
 * this member id; the member must exist. */
int16_t gmember_validate(struct group *g, struct kstr member_id, struct kstr instance_id)
{
	if (instance_id.len >= 0) {
		struct gmember *s = gmember_static(g, instance_id);
		if (s == NULL)
			return KAFKA_UNKNOWN_MEMBER_ID;
		if (!kstr_eq(s->id, member_id))
			return KAFKA_FENCED_INSTANCE_ID;
		return KAFKA_NONE;
	}
	return gmember_active(g, member_id) != NULL ? KAFKA_NONE : KAFKA_UNKNOWN_MEMBER_ID;
}


/* ---- loading and descriptions ---- */

struct gmember *group_member_load(struct group_coord *gc, struct group *g,
				  const struct group_value_member *v, struct kstr protocol)
{
	struct gmember *m = gmember_new(gc, g, v->member_id, false);
	if (m == NULL)
		return NULL;
	int rc = gmember_set_strings(gc, m, v->instance_id, v->client_id, v->client_host);
	m->session_timeout_ms = v->session_timeout_ms;
	m->rebalance_timeout_ms = v->rebalance_timeout_ms;
	/* A loaded member supports just the group's protocol, with its
	 * subscription: what Kafka restores too. */
	struct kafka_JoinGroupRequest_JoinGroupRequestProtocol p = {
		.Name = protocol.len < 0 ? KSTR("") : protocol, .Metadata = v->subscription };
	struct kafka_JoinGroupRequest b = { .Protocols = &p, .Protocols_count = 1 };
	if (rc != 0 || gmember_set_protocols(gc, g, m, &b) != 0) {
		strmap_remove(&g->members, &m->by_id);
		gmember_free(gc, m);
		return NULL;
	}
	if (m->instance_id.len >= 0 && gmember_static(g, m->instance_id) != NULL)
		gstr_free(&m->instance_id); /* a record cannot hold one twice */
	gmember_link(g, m);
	gmember_set_assignment(gc, g, m, v->assignment);
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

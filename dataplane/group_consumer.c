/*
 * group_consumer: the KIP-848 consumer group protocol on the coordinator,
 * as Kafka 4.0's GroupMetadataManager runs it: ConsumerGroupHeartbeat
 * (join with epoch 0, heartbeat, leave with -1, a static member's
 * temporary leave with -2), the session and rebalance deadlines, and the
 * checks of OffsetCommit/OffsetFetch against member epochs.
 *
 * A heartbeat: find (or create) the group and the member and check the
 * epoch it sends; apply what changed in its subscription (a change, a new
 * group, or a change in the subscribed topics since the group last looked
 * bumps the group epoch); if the group epoch is past the assignment epoch,
 * compute a new target assignment; reconcile the member towards its
 * target (revoke first, then assign what no one else still owns); restart
 * its session. The answer is built at once; if records were added it goes
 * out once they are durable, otherwise at once (after any earlier write of
 * the group, so nothing not yet durable is ever told).
 *
 * A plain heartbeat of a reconciled member in an unchanged group is two
 * hash lookups, a few comparisons and a store to its session deadline:
 * O(1), whatever the group's size.
 *
 * Group types: a heartbeat with epoch 0 for an id held by an empty classic
 * group converts it (its metadata record gets a tombstone, its offsets
 * stay), as Kafka 4.0 does; a classic group with members is not converted
 * (Kafka 4.0 can migrate one online; Sluice answers GROUP_ID_NOT_FOUND,
 * which Kafka gives when that migration is not allowed).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

#define LEAVE_GROUP_MEMBER_EPOCH (-1)
#define LEAVE_GROUP_STATIC_MEMBER_EPOCH (-2)

/* ---- answers ---- */

static struct kstr res_str(struct group_op *op, struct kstr s)
{
	if (s.len <= 0)
		return s.len < 0 ? KSTR_NULL : KSTR("");
	char *p = karena_alloc(&op->res, (size_t)s.len);
	if (p == NULL)
		return KSTR("");
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kstr){ p, s.len };
}

/* Answer op with err and a message (formatted into its result arena). */
static void hb_fail(struct group_coord *gc, struct group_op *op, int16_t err, const char *fmt,
		    struct kstr arg)
{
	struct kafka_ConsumerGroupHeartbeatResponse *r = op->u.cheartbeat.resp;
	if (fmt != NULL) {
		char buf[CGROUP_ERROR_MESSAGE_BYTES];
		snprintf(buf, sizeof(buf), fmt, arg.len > 0 ? arg.len : 0,
			 arg.ptr != NULL ? arg.ptr : "");
		r->ErrorMessage = res_str(op, kstr_from(buf));
	}
	op->error = err;
	group_op_reply(gc->sh, op);
}

struct assign_fill {
	struct group_op *op;
	struct kafka_ConsumerGroupHeartbeatResponse_TopicPartitions *out;
	int32_t n;
};

static int assign_run(void *arg, struct kuuid topic, const struct gtp *v, int32_t n)
{
	struct assign_fill *f = arg;
	struct kafka_ConsumerGroupHeartbeatResponse_TopicPartitions *t = &f->out[f->n++];
	kafka_ConsumerGroupHeartbeatResponse_TopicPartitions_init(t);
	t->TopicId = topic;
	t->Partitions = karena_alloc(&f->op->res, sizeof(int32_t) * (size_t)n);
	if (t->Partitions == NULL)
		return -1;
	for (int32_t i = 0; i < n; i++)
		t->Partitions[i] = v[i].partition;
	t->Partitions_count = n;
	return 0;
}

/* The member's assigned partitions, grouped by topic. -1 without memory. */
static int hb_fill_assignment(struct group_op *op, const struct cmember *m)
{
	struct kafka_ConsumerGroupHeartbeatResponse *r = op->u.cheartbeat.resp;
	int32_t n_topics = 0;
	for (int32_t i = 0; i < m->assigned.n; i++)
		if (i == 0 || memcmp(m->assigned.v[i].topic.b, m->assigned.v[i - 1].topic.b, 16))
			n_topics++;
	struct assign_fill f = { op, NULL, 0 };
	if (n_topics > 0) {
		f.out = karena_alloc(&op->res, sizeof(*f.out) * (size_t)n_topics);
		if (f.out == NULL)
			return -1;
	}
	if (gtpset_runs(&m->assigned, assign_run, &f) != 0)
		return -1;
	kafka_ConsumerGroupHeartbeatResponse_Assignment_init(&r->Assignment);
	r->Assignment.TopicPartitions = f.out;
	r->Assignment.TopicPartitions_count = f.n;
	r->Assignment_present = true;
	return 0;
}

/* ---- one heartbeat ---- */

struct hb {
	struct group_coord *gc;
	struct group_op *op;
	const struct kafka_ConsumerGroupHeartbeatRequest *b;
	struct group *g;      /* NULL: to be created */
	struct cmember *m;    /* NULL: a new member */
	struct cmember *old;  /* a static member this one replaces */
	struct kstr member_id;
	char id_buf[24];      /* a generated member id */
	struct gtpset owned;  /* what the request says the member owns */
	bool owned_given;
};

/* Kafka's Uuid.randomUuid().toString(): 16 random bytes, URL-safe
 * base64 without padding (22 characters). */
static struct kstr member_id_generate(char *buf)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t u[18] = { 0 };
	if (getrandom(u, 16, 0) != 16)
		memset(u, 0x5a, 16);
	int k = 0;
	for (int i = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
		for (int j = 0; j < 4 && k < 22; j++)
			buf[k++] = b64[(v >> (18 - 6 * j)) & 63];
	}
	buf[22] = '\0';
	return (struct kstr){ buf, 22 };
}

/* The request's TopicPartitions as a set. 0, or -1 without memory. */
static int hb_owned(struct hb *h)
{
	const struct kafka_ConsumerGroupHeartbeatRequest *b = h->b;
	h->owned = (struct gtpset){ NULL, 0 };
	h->owned_given = b->TopicPartitions_count >= 0;
	if (!h->owned_given)
		return 0;
	int64_t total = 0;
	for (int32_t i = 0; i < b->TopicPartitions_count; i++)
		total += b->TopicPartitions[i].Partitions_count > 0 ? b->TopicPartitions[i].Partitions_count : 0;
	if (total == 0)
		return 0;
	struct gtp *v = malloc(sizeof(*v) * (size_t)total);
	if (v == NULL)
		return -1;
	int32_t k = 0;
	for (int32_t i = 0; i < b->TopicPartitions_count; i++)
		for (int32_t j = 0; j < b->TopicPartitions[i].Partitions_count; j++)
			v[k++] = (struct gtp){ b->TopicPartitions[i].TopicId,
					       b->TopicPartitions[i].Partitions[j] };
	gtpset_adopt(&h->owned, v, k);
	return 0;
}

/* Kafka's throwIfConsumerGroupMemberEpochIsInvalid: an epoch behind is
 * accepted only if it is the previous one and the member owns no more
 * than it is assigned (the answer that bumped it may have been lost). */
static bool hb_epoch_valid(const struct hb *h, const struct cmember *m)
{
	int32_t e = h->b->MemberEpoch;
	if (e > m->epoch)
		return false;
	if (e < m->epoch) {
		if (e != m->prev_epoch || !h->owned_given)
			return false;
		for (int32_t i = 0; i < h->owned.n; i++)
			if (!gtpset_has(&m->assigned, &h->owned.v[i]))
				return false;
	}
	return true;
}

#define FENCED_MSG "The consumer group member %.*s has a member epoch other than the " \
		   "one known by the group coordinator. The member must abandon all its " \
		   "partitions and rejoin."

/* Find the member and check what it may do (Kafka's
 * getOrMaybeSubscribe{Dynamic,Static}ConsumerGroupMember); answers and
 * returns false on an error. Nothing is changed yet. */
static bool hb_member(struct hb *h)
{
	const struct kafka_ConsumerGroupHeartbeatRequest *b = h->b;
	struct cgroup *cg = h->g != NULL ? h->g->cg : NULL;
	int32_t e = b->MemberEpoch;
	struct cmember *m = cg != NULL ? cmember_find(cg, h->member_id) : NULL;
	if (b->InstanceId.len < 0) {
		if (m == NULL && e != 0) {
			hb_fail(h->gc, h->op, KAFKA_UNKNOWN_MEMBER_ID,
				"Member %.*s is not a member of the group.", h->member_id);
			return false;
		}
		if (m != NULL && !hb_epoch_valid(h, m)) {
			hb_fail(h->gc, h->op, KAFKA_FENCED_MEMBER_EPOCH, FENCED_MSG, h->member_id);
			return false;
		}
		h->m = m;
		return true;
	}
	struct cmember *s = cg != NULL ? cmember_static(cg, b->InstanceId) : NULL;
	if (e == 0) {
		if (s != NULL && s->epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
			hb_fail(h->gc, h->op, KAFKA_UNRELEASED_INSTANCE_ID,
				"Static member with instance id %.*s cannot join the group because "
				"the instance id is owned by another member.", b->InstanceId);
			return false;
		}
		h->old = s;
		h->m = s == NULL ? m : NULL;
		return true;
	}
	if (s == NULL) {
		hb_fail(h->gc, h->op, KAFKA_UNKNOWN_MEMBER_ID, "Instance id %.*s is unknown.",
			b->InstanceId);
		return false;
	}
	if (!kstr_eq(s->id, h->member_id)) {
		hb_fail(h->gc, h->op, KAFKA_FENCED_INSTANCE_ID,
			"Static member %.*s was fenced by another member.", h->member_id);
		return false;
	}
	if (!hb_epoch_valid(h, s)) {
		hb_fail(h->gc, h->op, KAFKA_FENCED_MEMBER_EPOCH, FENCED_MSG, h->member_id);
		return false;
	}
	h->m = s;
	return true;
}

/* Is g a classic group that a consumer group may take over (Kafka's
 * isEmptyClassicGroup: state Empty; members told MEMBER_ID_REQUIRED and
 * not joined yet do not count)? */
static bool classic_is_empty(const struct group *g)
{
	return g->state == GROUP_EMPTY && g->n_members == 0;
}

/* The group, found or (epoch 0) created or converted; answers and returns
 * false on an error. */
static bool hb_group(struct hb *h, bool *converted)
{
	struct group_coord *gc = h->gc;
	*converted = false;
	if (h->g == NULL) {
		h->g = group_create(gc, h->op->group_id);
		if (h->g == NULL || cgroup_attach(gc, h->g) != 0) {
			if (h->g != NULL)
				group_remove(gc, h->g, KAFKA_NONE);
			h->g = NULL;
			hb_fail(gc, h->op, KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, KSTR_NULL);
			return false;
		}
		say_info("group %.*s: created (consumer protocol)", h->g->id.len, h->g->id.ptr);
		return true;
	}
	if (h->g->type == GROUP_TYPE_CONSUMER)
		return true;
	/* Pending members of the classic group join it no more. */
	group_members_clear(gc, h->g, KAFKA_UNKNOWN_MEMBER_ID);
	if (cgroup_attach(gc, h->g) != 0) {
		hb_fail(gc, h->op, KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, KSTR_NULL);
		return false;
	}
	*converted = true;
	say_info("group %.*s: converted from an empty classic group to a consumer group",
		 h->g->id.len, h->g->id.ptr);
	return true;
}

/* A static member taking over from the one that left with epoch -2: the
 * new member id gets the old one's subscription, target and partitions,
 * at epoch 0 (Kafka's replaceMember). NULL without memory (the old member
 * stays). */
static struct cmember *hb_replace(struct hb *h)
{
	struct group_coord *gc = h->gc;
	struct group *g = h->g;
	struct cmember *old = h->old, *m = cmember_new(gc, g, h->member_id);
	if (m == NULL)
		return NULL;
	int rc = cmember_set_str(gc, m, &m->instance_id, old->instance_id);
	rc |= cmember_set_str(gc, m, &m->rack_id, old->rack_id);
	rc |= cmember_set_str(gc, m, &m->client_id, old->client_id);
	rc |= cmember_set_str(gc, m, &m->client_host, old->client_host);
	rc |= cmember_set_topics(gc, g, m, old->topics, old->n_topics);
	m->rebalance_timeout_ms = old->rebalance_timeout_ms;
	m->assignor = old->assignor;
	struct gtpset assigned = cg_set_copy(&old->assigned), target = cg_set_copy(&old->target);
	struct kstr regex = KSTR_NULL;
	if (old->regex != NULL)
		regex = gstr_dup((struct kstr){ old->regex->src, old->regex->len });
	if (rc != 0 || assigned.n != old->assigned.n || target.n != old->target.n ||
	    regex.len < -1) {
		gtpset_free(&assigned);
		gtpset_free(&target);
		if (regex.len >= 0)
			gstr_free(&regex);
		cmember_remove(gc, g, m);
		return NULL;
	}
	cmember_set_target(gc, m, target);
	cmember_set_current(gc, g, m, 0, 0, old->state, assigned, (struct gtpset){ NULL, 0 });
	say_info("group %.*s: static member %.*s rejoined as %.*s", g->id.len, g->id.ptr,
		 old->instance_id.len, old->instance_id.ptr, m->id.len, m->id.ptr);
	cgstore_member_tombstones(gc, g, old->id);
	/* The old one goes first: the new one takes its instance id and
	 * partitions in the maps. */
	cmember_remove(gc, g, old);
	h->old = NULL;
	if (cmember_link(gc, g, m) != 0) {
		/* The old one is gone (its tombstones are in the batch) and the
		 * new one cannot be kept: the client rejoins. */
		if (regex.len >= 0)
			gstr_free(&regex);
		cmember_remove(gc, g, m);
		g->cg->rewrite = true;
		return NULL;
	}
	if (regex.len > 0 && cmember_set_regex(gc, g, m, regex) != 0)
		g->cg->rewrite = true;
	if (regex.len >= 0)
		gstr_free(&regex);
	cgstore_member(gc, g, m);
	cgstore_target(gc, g, m);
	cgstore_current(gc, g, m);
	return m;
}

/* Apply the request's fields to the member (Kafka's maybeUpdate*).
 * Returns whether the subscription changed; *changed whether anything did.
 * -1 without memory. */
static int hb_update(struct hb *h, bool *changed)
{
	struct group_coord *gc = h->gc;
	const struct kafka_ConsumerGroupHeartbeatRequest *b = h->b;
	struct cmember *m = h->m;
	struct group *g = h->g;
	bool subs = false;
	int rc = 0;
#define SET_STR(field, value)                                                  \
	do {                                                                   \
		if (!kstr_eq(m->field, (value)) || (m->field.len < 0) != ((value).len < 0)) { \
			*changed = true;                                       \
			rc |= cmember_set_str(gc, m, &m->field, (value));     \
		}                                                              \
	} while (0)
	if (b->InstanceId.len >= 0)
		SET_STR(instance_id, b->InstanceId);
	if (b->RackId.len >= 0)
		SET_STR(rack_id, b->RackId);
	SET_STR(client_id, h->op->u.cheartbeat.client_id);
	SET_STR(client_host, h->op->u.cheartbeat.client_host);
#undef SET_STR
	if (b->RebalanceTimeoutMs != -1 && b->RebalanceTimeoutMs != m->rebalance_timeout_ms) {
		m->rebalance_timeout_ms = b->RebalanceTimeoutMs;
		*changed = true;
	}
	if (b->ServerAssignor.len >= 0) {
		int8_t a = (int8_t)gassignor_find(b->ServerAssignor);
		if (a != m->assignor) {
			cmember_set_assignor(g->cg, m, a);
			*changed = true;
		}
	}
	if (b->SubscribedTopicNames_count >= 0 &&
	    !cmember_topics_equal(m, b->SubscribedTopicNames, b->SubscribedTopicNames_count)) {
		rc |= cmember_set_topics(gc, g, m, b->SubscribedTopicNames,
					 b->SubscribedTopicNames_count);
		*changed = subs = true;
	}
	if (b->SubscribedTopicRegex.len >= 0) {
		struct cg_regex *before = m->regex;
		rc |= cmember_set_regex(gc, g, m, b->SubscribedTopicRegex) != 0 ? -1 : 0;
		if (m->regex != before)
			*changed = subs = true;
	}
	if (rc != 0)
		return -1;
	return subs;
}

/* Answer a heartbeat that changed nothing once the group's earlier writes
 * are durable. */
static void hb_barrier_done(struct group_coord *gc, struct gwrite *w)
{
	if (w->error != KAFKA_NONE)
		w->op->error = w->error;
	group_op_reply(gc->sh, w->op);
}

static void hb_send(struct group_coord *gc, struct group *g, struct group_op *op)
{
	if (cgstore_submit(gc, g, op))
		return;
	if (gstore_barrier(gc, g, op, hb_barrier_done) == NULL)
		group_op_reply(gc->sh, op);
}

/* The member, new, taking over a static one, or as found, with the
 * request's fields applied (its record into the batch if anything
 * changed). 1 if its subscription changed, 0 if not, -1 when answered
 * with an error. */
static int hb_member_apply(struct hb *h)
{
	struct group_coord *gc = h->gc;
	struct group *g = h->g;
	bool changed = false, is_new = false;
	if (h->old != NULL) {
		h->m = hb_replace(h);
		changed = true;
	} else if (h->m == NULL) {
		h->m = cmember_new(gc, g, h->member_id);
		if (h->m != NULL && cmember_link(gc, g, h->m) != 0) {
			cmember_remove(gc, g, h->m);
			h->m = NULL;
		}
		if (h->m != NULL) {
			say_info("group %.*s: member %.*s joins", g->id.len, g->id.ptr,
				 h->member_id.len, h->member_id.ptr);
		}
		is_new = changed = true;
	}
	int subs = h->m != NULL ? hb_update(h, &changed) : -1;
	if (subs < 0) {
		if (h->m != NULL && is_new)
			cmember_remove(gc, g, h->m);
		g->cg->rewrite = true; /* records of this heartbeat may be lost */
		hb_fail(gc, h->op, KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, KSTR_NULL);
		return -1;
	}
	if (changed)
		cgstore_member(gc, g, h->m);
	return subs;
}

/* Step 1: a new group, a changed subscription or changed subscribed
 * topics (looked at again when the topic table moved) bump the group
 * epoch. */
static void hb_group_epoch(struct group_coord *gc, struct group *g, bool subs)
{
	struct cgroup *cg = g->cg;
	bool bump = cg->epoch == 0 || subs;
	if (bump || cg->meta_version != gc->topics_version) {
		bool oom = false;
		if (cgroup_meta_refresh(gc, g, &oom)) {
			cgstore_meta(gc, g);
			bump = true;
		}
		if (oom)
			cg->rewrite = true;
	}
	if (bump) {
		cg->epoch++;
		cgstore_epoch(gc, g);
		say_debug("group %.*s: epoch %d", g->id.len, g->id.ptr, cg->epoch);
	}
}

/* The answer: id, epoch, interval, and the assignment when the request
 * was a full one (joining, or after an error: every field given) or the
 * assignment changed. */
static void hb_answer(struct hb *h, bool assigned_changed)
{
	struct group_op *op = h->op;
	struct kafka_ConsumerGroupHeartbeatResponse *r = op->u.cheartbeat.resp;
	const struct kafka_ConsumerGroupHeartbeatRequest *b = h->b;
	r->MemberId = res_str(op, h->m->id);
	r->MemberEpoch = h->m->epoch;
	r->HeartbeatIntervalMs = h->gc->cfg->group_consumer_heartbeat_interval_ms;
	bool full = b->MemberEpoch == 0 ||
		    (b->RebalanceTimeoutMs != -1 &&
		     (b->SubscribedTopicNames_count >= 0 || b->SubscribedTopicRegex.len >= 0) &&
		     h->owned_given);
	if ((full || assigned_changed) && hb_fill_assignment(op, h->m) != 0)
		op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
}

/* Steps 1-3 of Kafka's consumerGroupHeartbeat, the member found. */
static void hb_apply(struct hb *h, bool converted)
{
	struct group_coord *gc = h->gc;
	struct group *g = h->g;
	cgstore_begin(gc, g);
	if (converted)
		gstore_add_group_tombstone(gc, g);
	int subs = hb_member_apply(h);
	if (subs < 0)
		return;
	hb_group_epoch(gc, g, subs);
	/* 2. A new target assignment, once per group epoch. */
	if (g->cg->epoch > g->cg->assignment_epoch && cgroup_assign(gc, g) != 0)
		g->cg->rewrite = true;
	/* 3. The member towards its target. */
	struct cmember *m = h->m;
	bool assigned_changed = false;
	int rc = cmember_reconcile(gc, g, m, h->owned_given ? &h->owned : NULL, &assigned_changed);
	if (rc < 0)
		g->cg->rewrite = true;
	gtimer_set(gc, &m->session, gc->sh->now_ms + gc->cfg->group_consumer_session_timeout_ms);
	if (rc == 1) {
		/* A state written by a newer version: start over. */
		cgstore_submit(gc, g, NULL);
		hb_fail(gc, h->op, KAFKA_FENCED_MEMBER_EPOCH, FENCED_MSG, m->id);
		return;
	}
	hb_answer(h, assigned_changed);
	hb_send(gc, g, h->op);
}

/* ---- leaving, fencing ---- */

/* Kafka's consumerGroupFenceMember: the member's records get tombstones,
 * the subscription metadata is recomputed without it and the group epoch
 * bumped (the next heartbeat computes the new target). Records go into
 * the batch being built. */
static void cg_fence(struct group_coord *gc, struct group *g, struct cmember *m)
{
	struct cgroup *cg = g->cg;
	cgstore_member_tombstones(gc, g, m->id);
	cmember_remove(gc, g, m);
	bool oom = false;
	if (cgroup_meta_refresh(gc, g, &oom))
		cgstore_meta(gc, g);
	if (oom)
		cg->rewrite = true;
	cg->epoch++;
	cgstore_epoch(gc, g);
	gc->stats.cg_members_fenced++;
}

static void cg_leave(struct hb *h)
{
	struct group_coord *gc = h->gc;
	const struct kafka_ConsumerGroupHeartbeatRequest *b = h->b;
	struct group *g = h->g;
	if (g == NULL || g->type != GROUP_TYPE_CONSUMER) {
		hb_fail(gc, h->op, KAFKA_GROUP_ID_NOT_FOUND, "Group %.*s is not a consumer group.",
			h->op->group_id);
		return;
	}
	struct cgroup *cg = g->cg;
	struct cmember *m;
	if (b->InstanceId.len < 0) {
		m = cmember_find(cg, h->member_id);
		if (m == NULL) {
			hb_fail(gc, h->op, KAFKA_UNKNOWN_MEMBER_ID,
				"Member %.*s is not a member of the group.", h->member_id);
			return;
		}
	} else {
		m = cmember_static(cg, b->InstanceId);
		if (m == NULL) {
			hb_fail(gc, h->op, KAFKA_UNKNOWN_MEMBER_ID, "Instance id %.*s is unknown.",
				b->InstanceId);
			return;
		}
		if (!kstr_eq(m->id, h->member_id)) {
			hb_fail(gc, h->op, KAFKA_FENCED_INSTANCE_ID,
				"Static member %.*s was fenced by another member.", h->member_id);
			return;
		}
	}
	struct kafka_ConsumerGroupHeartbeatResponse *r = h->op->u.cheartbeat.resp;
	r->MemberId = res_str(h->op, h->member_id);
	r->MemberEpoch = b->MemberEpoch;
	cgstore_begin(gc, g);
	if (b->InstanceId.len >= 0 && b->MemberEpoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
		/* Back soon (within its session): it keeps its partitions and
		 * its place, at epoch -2, so that it can take them back. */
		say_info("group %.*s: static member %.*s (%.*s) left for now", g->id.len, g->id.ptr,
			 m->id.len, m->id.ptr, m->instance_id.len, m->instance_id.ptr);
		struct gtpset assigned = cg_set_copy(&m->assigned);
		cmember_set_current(gc, g, m, LEAVE_GROUP_STATIC_MEMBER_EPOCH, m->prev_epoch,
				    m->state, assigned, (struct gtpset){ NULL, 0 });
		gtimer_cancel(gc, &m->rebalance);
		cgstore_current(gc, g, m);
	} else {
		say_info("group %.*s: member %.*s left", g->id.len, g->id.ptr, m->id.len, m->id.ptr);
		cg_fence(gc, g, m);
	}
	hb_send(gc, g, h->op);
}

void group_do_cheartbeat(struct group_coord *gc, struct group_op *op)
{
	struct hb h = { .gc = gc, .op = op, .b = op->u.cheartbeat.body };
	gc->stats.cg_heartbeats++;
	int16_t err = group_status(gc, op->group_id, false);
	if (err != KAFKA_NONE) {
		hb_fail(gc, op, err, NULL, KSTR_NULL);
		return;
	}
	h.g = group_find(gc, op->group_id);
	h.member_id = h.b->MemberId;
	if (h.b->MemberEpoch < 0) {
		cg_leave(&h);
		return;
	}
	int32_t e = h.b->MemberEpoch;
	if (h.g != NULL && (h.g->type != GROUP_TYPE_CONSUMER &&
			    (e != 0 || !classic_is_empty(h.g)))) {
		hb_fail(gc, op, KAFKA_GROUP_ID_NOT_FOUND, "Group %.*s is not a consumer group.",
			op->group_id);
		return;
	}
	if (h.g == NULL && e != 0) {
		hb_fail(gc, op, KAFKA_GROUP_ID_NOT_FOUND, "Consumer group %.*s not found.",
			op->group_id);
		return;
	}
	struct cgroup *cg = h.g != NULL ? h.g->cg : NULL;
	if (cg != NULL && cg->n_members >= gc->cfg->group_consumer_max_size &&
	    (h.member_id.len <= 0 || cmember_find(cg, h.member_id) == NULL)) {
		hb_fail(gc, op, KAFKA_GROUP_MAX_SIZE_REACHED,
			"The consumer group %.*s has reached its maximum capacity "
			"(group.consumer.max.size).", op->group_id);
		return;
	}
	if (h.member_id.len <= 0)
		h.member_id = member_id_generate(h.id_buf);
	if (hb_owned(&h) != 0) {
		hb_fail(gc, op, KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, KSTR_NULL);
		return;
	}
	bool converted = false;
	if (hb_member(&h) && hb_group(&h, &converted))
		hb_apply(&h, converted);
	gtpset_free(&h.owned);
}

/* ---- timers ---- */

static void cg_timer_fence(struct group_coord *gc, struct cmember *m, const char *why)
{
	struct group *g = m->g;
	say_info("group %.*s: member %.*s fenced: %s", g->id.len, g->id.ptr, m->id.len, m->id.ptr,
		 why);
	cgstore_begin(gc, g);
	cg_fence(gc, g, m);
	cgstore_submit(gc, g, NULL);
}

void cgroup_timer_fire(struct group_coord *gc, struct gtimer *t)
{
	if (t->kind == GT_CSESSION) {
		struct cmember *m = container_of(t, struct cmember, session);
		gc->stats.members_expired++;
		cg_timer_fence(gc, m, "its session expired");
		return;
	}
	struct cmember *m = container_of(t, struct cmember, rebalance);
	/* Kafka fences only if the member is still in the epoch it was
	 * asked to revoke in. */
	if (m->epoch == m->rebalance_epoch && m->state == CM_UNREVOKED_PARTITIONS)
		cg_timer_fence(gc, m, "it did not revoke its partitions within its rebalance timeout");
}

/* ---- offsets of consumer groups ---- */

int16_t cgroup_commit_validate(struct group *g, int16_t version, int32_t epoch,
			       struct kstr member_id)
{
	struct cgroup *cg = g->cg;
	/* Epoch -1: an admin client, or a consumer outside the group;
	 * allowed while the group has no members. */
	if (epoch < 0 && cg->n_members == 0)
		return KAFKA_NONE;
	struct cmember *m = cmember_find(cg, member_id);
	if (m == NULL)
		return KAFKA_UNKNOWN_MEMBER_ID;
	if (version < 9)
		return KAFKA_UNSUPPORTED_VERSION; /* a consumer-protocol member commits with v9+ */
	return epoch != m->epoch ? KAFKA_STALE_MEMBER_EPOCH : KAFKA_NONE;
}

int16_t cgroup_fetch_validate(struct group *g, struct kstr member_id, int32_t epoch)
{
	if (member_id.len < 0 && epoch < 0)
		return KAFKA_NONE;
	struct cmember *m = cmember_find(g->cg, member_id);
	if (m == NULL)
		return KAFKA_UNKNOWN_MEMBER_ID;
	return epoch != m->epoch ? KAFKA_STALE_MEMBER_EPOCH : KAFKA_NONE;
}

bool cgroup_convert_to_classic(struct group_coord *gc, struct group *g)
{
	if (g->cg->n_members > 0)
		return false;
	cgstore_begin(gc, g);
	cgstore_group_tombstones(gc, g);
	cgstore_submit(gc, g, NULL);
	cgroup_free(gc, g);
	group_set_state(g, GROUP_EMPTY);
	say_info("group %.*s: converted from an empty consumer group to a classic group",
		 g->id.len, g->id.ptr);
	return true;
}

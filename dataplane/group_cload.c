/*
 * group_cload: a consumer group rebuilt from its records at start-up
 * (group_load.c reads the partition and hands every consumer group record
 * here, in offset order: the latest record of a key wins, a tombstone
 * deletes it).
 *
 * Records of one member may come in any order (its target before its
 * subscription, say); a member is created by the first of them and kept
 * only if its subscription record (type 5) is there when the partition
 * is loaded. A group whose metadata record (type 3) is gone is deleted, or
 * becomes a plain classic group if offsets remain. After loading, every
 * member's session starts again, members that were revoking get their
 * rebalance deadline again, and the group looks at its subscribed topics
 * at its next heartbeat (they may have changed while the broker was down).
 */
#include <stdlib.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* The member of a record, created (linked, epoch 0) if the record is the
 * first of it. NULL without memory. */
static struct cmember *load_member(struct group_coord *gc, struct group *g, struct kstr id)
{
	struct cmember *m = cmember_find(g->cg, id);
	if (m != NULL)
		return m;
	m = cmember_new(gc, g, id);
	if (m != NULL && cmember_link(gc, g, m) != 0) {
		cmember_remove(gc, g, m);
		m = NULL;
	}
	return m;
}

static void load_subscription(struct group_coord *gc, struct group *g, struct cmember *m,
			      const uint8_t *value, int32_t len)
{
	struct cgrec_member v;
	if (cgrec_member_decode(value, (size_t)len, &v) != 0) {
		say_warn("loading group %.*s: unreadable member record skipped", g->id.len, g->id.ptr);
		return;
	}
	int rc = cmember_set_str(gc, m, &m->instance_id, v.instance_id);
	rc |= cmember_set_str(gc, m, &m->rack_id, v.rack_id);
	rc |= cmember_set_str(gc, m, &m->client_id, v.client_id);
	rc |= cmember_set_str(gc, m, &m->client_host, v.client_host);
	rc |= cmember_set_topics(gc, g, m, v.topics, v.n_topics);
	/* A regex this build cannot compile is dropped: the member's next
	 * full heartbeat says it again (and is told it is invalid). */
	if (cmember_set_regex(gc, g, m, v.regex.len > 0 ? v.regex : KSTR_NULL) == -1)
		rc = -1;
	m->rebalance_timeout_ms = v.rebalance_timeout_ms;
	cmember_set_assignor(g->cg, m, (int8_t)(v.assignor.len >= 0 ? gassignor_find(v.assignor) : -1));
	free((void *)v.topics);
	if (rc != 0)
		say_warn("loading group %.*s: out of memory for member %.*s", g->id.len, g->id.ptr,
			 m->id.len, m->id.ptr);
	m->has_record = true;
}

static void load_current(struct group_coord *gc, struct group *g, struct cmember *m,
			 const uint8_t *value, int32_t len)
{
	struct cgrec_current v;
	if (value == NULL) {
		cmember_set_current(gc, g, m, 0, 0, CM_STABLE, (struct gtpset){ NULL, 0 },
				    (struct gtpset){ NULL, 0 });
		return;
	}
	if (cgrec_current_decode(value, (size_t)len, &v) != 0) {
		say_warn("loading group %.*s: unreadable assignment record skipped", g->id.len,
			 g->id.ptr);
		return;
	}
	cmember_set_current(gc, g, m, v.epoch, v.prev_epoch, (uint8_t)v.state, v.assigned,
			    v.revoking);
}

static void load_target(struct group_coord *gc, struct group *g, struct cmember *m,
			const uint8_t *value, int32_t len)
{
	struct gtpset t = { NULL, 0 };
	if (value != NULL && cgrec_target_decode(value, (size_t)len, &t) != 0) {
		say_warn("loading group %.*s: unreadable target record skipped", g->id.len, g->id.ptr);
		return;
	}
	cmember_set_target(gc, m, t);
}

static void load_meta(struct group_coord *gc, struct group *g, const uint8_t *value, int32_t len)
{
	struct cgroup *cg = g->cg;
	struct cgrec_topic *t = NULL;
	int32_t n = 0;
	if (value != NULL && cgrec_partitions_decode(value, (size_t)len, &t, &n) != 0) {
		say_warn("loading group %.*s: unreadable subscription metadata skipped", g->id.len,
			 g->id.ptr);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		t[i].name = gstr_dup(t[i].name);
		if (t[i].name.len < 0)
			t[i].name = KSTR("");
	}
	for (int32_t i = 0; i < cg->n_meta; i++)
		gstr_free(&cg->meta[i].name);
	group_mem(gc, (int64_t)(sizeof(*t) * ((size_t)n - (size_t)cg->n_meta)));
	free(cg->meta);
	cg->meta = t;
	cg->n_meta = n;
}

/* A consumer record for a group that is classic here: the group became a
 * consumer group (its classic metadata got a tombstone first). */
static bool load_as_consumer(struct group_coord *gc, struct group *g)
{
	if (g->type == GROUP_TYPE_CONSUMER)
		return true;
	group_members_clear(gc, g, KAFKA_NOT_COORDINATOR);
	return cgroup_attach(gc, g) == 0;
}

void cgroup_load_record(struct group_coord *gc, const struct offsets_key *k, const uint8_t *value,
			int32_t value_len)
{
	struct group *g = group_find(gc, k->group);
	if (g == NULL) {
		if (value == NULL)
			return;
		g = group_create(gc, k->group);
		if (g == NULL)
			return;
		g->loading = true;
	}
	if (g->type != GROUP_TYPE_CONSUMER && value == NULL)
		return; /* the tombstones of a consumer group that became classic */
	if (!load_as_consumer(gc, g)) {
		say_warn("loading group %.*s: out of memory", g->id.len, g->id.ptr);
		return;
	}
	struct cgroup *cg = g->cg;
	struct cmember *m = NULL;
	if (cgrec_has_member(k->version)) {
		m = value != NULL ? load_member(gc, g, k->member) : cmember_find(cg, k->member);
		if (m == NULL)
			return;
	}
	int32_t epoch = 0;
	switch (k->version) {
	case CGREC_GROUP:
		if (value != NULL && cgrec_epoch_decode(value, (size_t)value_len, &epoch) != 0)
			return;
		cg->epoch = epoch;
		cg->loaded_group_record = value != NULL;
		return;
	case CGREC_PARTITIONS:
		load_meta(gc, g, value, value_len);
		return;
	case CGREC_TARGET:
		if (value != NULL && cgrec_epoch_decode(value, (size_t)value_len, &epoch) != 0)
			return;
		cg->assignment_epoch = epoch;
		return;
	case CGREC_MEMBER:
		if (value == NULL)
			cmember_remove(gc, g, m);
		else
			load_subscription(gc, g, m, value, value_len);
		return;
	case CGREC_TARGET_MEMBER:
		load_target(gc, g, m, value, value_len);
		return;
	case CGREC_CURRENT:
		load_current(gc, g, m, value, value_len);
		return;
	}
}

bool cgroup_loaded(struct group_coord *gc, struct group *g)
{
	struct cgroup *cg = g->cg;
	for (struct cmember *m = cg->head, *next; m != NULL; m = next) {
		next = m->next;
		if (!m->has_record)
			cmember_remove(gc, g, m); /* only its assignments were left */
	}
	if (!cg->loaded_group_record) {
		/* Deleted: what remains are committed offsets, which a group
		 * without a protocol keeps (as a classic group, as on Kafka). */
		cgroup_free(gc, g);
		group_set_state(g, GROUP_EMPTY);
		return g->n_offsets > 0;
	}
	int64_t now = gc->sh->now_ms;
	for (struct cmember *m = cg->head; m != NULL; m = m->next) {
		cmember_update_reconciled(cg, m);
		gtimer_set(gc, &m->session, now + gc->cfg->group_consumer_session_timeout_ms);
		if (m->state == CM_UNREVOKED_PARTITIONS) {
			m->rebalance_epoch = m->epoch;
			gtimer_set(gc, &m->rebalance,
				   now + (m->rebalance_timeout_ms > 0 ? m->rebalance_timeout_ms : 0));
		}
	}
	cg->meta_version = UINT64_MAX; /* look at the topics at the next heartbeat */
	group_set_state(g, cg->n_members > 0 ? GROUP_STABLE : GROUP_EMPTY);
	say_debug("group %.*s: loaded (consumer protocol, epoch %d, %d members, %s)", g->id.len,
		  g->id.ptr, cg->epoch, cg->n_members, cgroup_state_name(cgroup_state(g)));
	return true;
}

/*
 * group_cstore: a consumer group's records (group_crecords.h) into the
 * batch being built for its __consumer_offsets partition, and the write.
 *
 * A change writes only what changed, as Kafka does: the member's
 * subscription record when it joins or changes, the group epoch and the
 * subscription metadata when they move, a target record per member whose
 * target moved and the assignment epoch, a current-assignment record per
 * member that reconciled, three tombstones per member that goes. If a
 * write fails, the group's memory is ahead of its log; the next write of
 * the group then carries the whole group again (its records win by being
 * later), and the request that caused the failed one got the error.
 */
#include <stdlib.h>

#include "group_int.h"
#include "say.h"

static void key(struct group_coord *gc, struct group *g, int type, struct kstr member)
{
	kw_reset(&gc->scratch);
	cgrec_key_encode(&gc->scratch, type, g->id, member);
}

void cgstore_epoch(struct group_coord *gc, struct group *g)
{
	key(gc, g, CGREC_GROUP, KSTR_NULL);
	size_t klen = gc->scratch.len;
	cgrec_epoch_encode(&gc->scratch, g->cg->epoch);
	gstore_add_scratch(gc, klen, false);
}

void cgstore_target_epoch(struct group_coord *gc, struct group *g)
{
	key(gc, g, CGREC_TARGET, KSTR_NULL);
	size_t klen = gc->scratch.len;
	cgrec_epoch_encode(&gc->scratch, g->cg->assignment_epoch);
	gstore_add_scratch(gc, klen, false);
}

void cgstore_meta(struct group_coord *gc, struct group *g)
{
	key(gc, g, CGREC_PARTITIONS, KSTR_NULL);
	size_t klen = gc->scratch.len;
	cgrec_partitions_encode(&gc->scratch, g->cg->meta, g->cg->n_meta);
	gstore_add_scratch(gc, klen, false);
}

void cgstore_member(struct group_coord *gc, struct group *g, struct cmember *m)
{
	key(gc, g, CGREC_MEMBER, m->id);
	size_t klen = gc->scratch.len;
	struct cgrec_member v = {
		.instance_id = m->instance_id,
		.rack_id = m->rack_id,
		.client_id = m->client_id,
		.client_host = m->client_host,
		.topics = m->topics,
		.n_topics = m->n_topics,
		.regex = m->regex != NULL ? (struct kstr){ m->regex->src, m->regex->len } : KSTR_NULL,
		.rebalance_timeout_ms = m->rebalance_timeout_ms,
		.assignor = m->assignor >= 0 ? kstr_from(gassignor_name(m->assignor)) : KSTR_NULL,
	};
	cgrec_member_encode(&gc->scratch, &v);
	gstore_add_scratch(gc, klen, false);
}

void cgstore_target(struct group_coord *gc, struct group *g, struct cmember *m)
{
	key(gc, g, CGREC_TARGET_MEMBER, m->id);
	size_t klen = gc->scratch.len;
	cgrec_target_encode(&gc->scratch, &m->target);
	gstore_add_scratch(gc, klen, false);
}

void cgstore_current(struct group_coord *gc, struct group *g, struct cmember *m)
{
	key(gc, g, CGREC_CURRENT, m->id);
	size_t klen = gc->scratch.len;
	struct cgrec_current v = { .epoch = m->epoch, .prev_epoch = m->prev_epoch,
				   .state = (int8_t)m->state, .assigned = m->assigned,
				   .revoking = m->revoking };
	cgrec_current_encode(&gc->scratch, &v);
	gstore_add_scratch(gc, klen, false);
}

static void tombstone(struct group_coord *gc, struct group *g, int type, struct kstr member)
{
	key(gc, g, type, member);
	gstore_add_scratch(gc, gc->scratch.len, true);
}

void cgstore_member_tombstones(struct group_coord *gc, struct group *g, struct kstr member_id)
{
	/* Kafka's order: what depends on the member first. */
	tombstone(gc, g, CGREC_CURRENT, member_id);
	tombstone(gc, g, CGREC_TARGET_MEMBER, member_id);
	tombstone(gc, g, CGREC_MEMBER, member_id);
}

void cgstore_group_tombstones(struct group_coord *gc, struct group *g)
{
	tombstone(gc, g, CGREC_TARGET, KSTR_NULL);
	tombstone(gc, g, CGREC_PARTITIONS, KSTR_NULL);
	tombstone(gc, g, CGREC_GROUP, KSTR_NULL);
}

static void cg_write_done(struct group_coord *gc, struct gwrite *w)
{
	if (w->error != KAFKA_NONE && w->g->cg != NULL && !w->g->removed)
		w->g->cg->rewrite = true;
	struct group_op *op = w->op;
	if (op == NULL)
		return;
	if (w->error != KAFKA_NONE)
		op->error = w->error;
	group_op_reply(gc->sh, op);
}

void cgstore_maybe_cut(struct group_coord *gc, struct group *g)
{
	if (gstore_pending_bytes(gc) < CGROUP_WRITE_BATCH_BYTES)
		return;
	if (gstore_submit(gc, g, NULL, NULL, cg_write_done) == NULL && g->cg != NULL)
		g->cg->rewrite = true;
	gstore_begin(gc);
}

/* The whole group: what its log must say for it to load as it is. */
static void cgstore_all(struct group_coord *gc, struct group *g)
{
	struct cgroup *cg = g->cg;
	cgstore_epoch(gc, g);
	cgstore_meta(gc, g);
	cgstore_target_epoch(gc, g);
	for (struct cmember *m = cg->head; m != NULL; m = m->next) {
		cgstore_member(gc, g, m);
		cgstore_target(gc, g, m);
		cgstore_current(gc, g, m);
		cgstore_maybe_cut(gc, g);
	}
}

void cgstore_begin(struct group_coord *gc, struct group *g)
{
	gstore_begin(gc);
	if (g->cg != NULL && g->cg->rewrite) {
		say_info("group %.*s: writing the whole group again after a failed write",
			 g->id.len, g->id.ptr);
		g->cg->rewrite = false;
		cgstore_all(gc, g);
	}
}

bool cgstore_submit(struct group_coord *gc, struct group *g, struct group_op *op)
{
	if (gstore_pending_bytes(gc) == 0)
		return false;
	if (gstore_submit(gc, g, op, NULL, cg_write_done) == NULL) {
		if (g->cg != NULL)
			g->cg->rewrite = true;
		if (op != NULL) {
			op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
			group_op_reply(gc->sh, op);
		}
	}
	return true;
}

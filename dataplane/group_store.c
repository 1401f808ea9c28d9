/*
 * group_store: the coordinator's writes to __consumer_offsets. A change
 * (offsets committed, a generation's assignment, tombstones) becomes one
 * record batch appended to the group's partition like a produce: it rides
 * the shard's group commit at the end of the turn, and the change's
 * requests are answered when the log's high watermark passes it, i.e.
 * once it is durable under the log's flush policy. Failures are mapped as
 * Kafka's GroupMetadataManager maps them: the log offline or the disk full
 * is NOT_COORDINATOR, a full write buffer COORDINATOR_NOT_AVAILABLE (both
 * make clients retry).
 */
#include <stdlib.h>

#include "group_int.h"
#include "say.h"
#include "storage/batch.h"

void gstore_begin(struct group_coord *gc)
{
	kw_reset(&gc->batch);
	offsets_batch_begin(&gc->cur, &gc->batch, group_wall_ms());
}

void gstore_add_scratch(struct group_coord *gc, size_t klen, bool tombstone)
{
	struct kwriter *s = &gc->scratch;
	if (s->err)
		return;
	struct kbytes key = { s->buf, (int32_t)klen };
	struct kbytes value = tombstone ? KBYTES_NULL
					: (struct kbytes){ s->buf + klen, (int32_t)(s->len - klen) };
	offsets_batch_add(&gc->cur, key, value);
}

size_t gstore_pending_bytes(const struct group_coord *gc)
{
	return gc->cur.count > 0 ? gc->batch.len : 0;
}

void gstore_add_offset(struct group_coord *gc, struct group *g, struct kstr topic,
		       int32_t partition, const struct offset_commit_value *v)
{
	kw_reset(&gc->scratch);
	offsets_key_commit_encode(&gc->scratch, g->id, topic, partition);
	size_t klen = gc->scratch.len;
	offsets_value_commit_encode(&gc->scratch, v);
	gstore_add_scratch(gc, klen, false);
}

void gstore_add_offset_tombstone(struct group_coord *gc, struct group *g, struct kstr topic,
				 int32_t partition)
{
	kw_reset(&gc->scratch);
	offsets_key_commit_encode(&gc->scratch, g->id, topic, partition);
	gstore_add_scratch(gc, gc->scratch.len, true);
}

void gstore_add_group(struct group_coord *gc, struct group *g)
{
	kw_reset(&gc->scratch);
	offsets_key_group_encode(&gc->scratch, g->id);
	size_t klen = gc->scratch.len;
	struct group_value v = {
		.protocol_type = g->protocol_type.len < 0 ? KSTR("") : g->protocol_type,
		.generation = g->generation,
		.protocol = g->protocol,
		.leader = g->leader != NULL ? g->leader->id : KSTR_NULL,
		.state_timestamp = g->state_ts,
		.n_members = g->n_members,
	};
	offsets_value_group_encode_header(&gc->scratch, &v);
	for (struct gmember *m = g->members_head; m != NULL; m = m->next) {
		struct group_value_member vm = {
			.member_id = m->id,
			.instance_id = m->instance_id,
			.client_id = m->client_id.len < 0 ? KSTR("") : m->client_id,
			.client_host = m->client_host.len < 0 ? KSTR("") : m->client_host,
			.rebalance_timeout_ms = m->rebalance_timeout_ms,
			.session_timeout_ms = m->session_timeout_ms,
			.subscription = group_member_metadata(m, g->protocol),
			.assignment = m->assignment,
		};
		offsets_value_group_encode_member(&gc->scratch, &vm);
	}
	gstore_add_scratch(gc, klen, false);
}

void gstore_add_group_tombstone(struct group_coord *gc, struct group *g)
{
	kw_reset(&gc->scratch);
	offsets_key_group_encode(&gc->scratch, g->id);
	gstore_add_scratch(gc, gc->scratch.len, true);
}

static int16_t gstore_error_of_append(int rc)
{
	switch (rc) {
	case PLOG_ERR_BUFFER_FULL:
		return KAFKA_COORDINATOR_NOT_AVAILABLE;
	case PLOG_ERR_STORAGE:
	case PLOG_ERR_NO_SPACE:
	default:
		return KAFKA_NOT_COORDINATOR;
	}
}

static int16_t gstore_error_of_wait(int16_t err)
{
	switch (err) {
	case KAFKA_NONE:
		return KAFKA_NONE;
	case KAFKA_KAFKA_STORAGE_ERROR:
	case KAFKA_NOT_LEADER_OR_FOLLOWER:
		return KAFKA_NOT_COORDINATOR;
	default:
		return KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
}

static void gwrite_finish(struct group_coord *gc, struct gwrite *w)
{
	gc->writes_in_flight--;
	if (w->error == KAFKA_NONE)
		w->error = gstore_error_of_wait(w->wait_error);
	if (w->error != KAFKA_NONE) {
		gc->stats.writes_failed++;
		say_warn("group %.*s: write to %s-%d failed (error %d)", w->g->id.len, w->g->id.ptr,
			 OFFSETS_TOPIC_NAME, w->g->partition, w->error);
	}
	w->done(gc, w);
	gstr_free(&w->old_member_id);
	group_unref(gc, w->g);
	free(w);
}

static void gwrite_durable(struct shard *sh, struct durable_wait *dw)
{
	struct gwrite *w = container_of(dw, struct gwrite, wait);
	gwrite_finish(sh->groups, w);
}

static void gwrite_later_run(struct shard *sh, struct xcall *x)
{
	struct gwrite *w = container_of(x, struct gwrite, later_x);
	gwrite_finish(sh->groups, w);
}

/* Append the batch built in gc->batch to partition p of the topic; 0 with
 * the high watermark to wait for in *needed, or the error. */
static int16_t gstore_append(struct group_coord *gc, struct partition *p, size_t len,
			     int64_t *needed)
{
	struct shard *sh = gc->sh;
	if (len == 0)
		return KAFKA_COORDINATOR_NOT_AVAILABLE; /* could not encode (no memory) */
	if (p == NULL || p->log == NULL)
		return KAFKA_NOT_COORDINATOR;
	if (plog_error(p->log) != 0)
		return KAFKA_NOT_COORDINATOR;
	struct batch_hdr h;
	if (batch_parse(gc->batch.buf, len, &h) != (int)len)
		return KAFKA_COORDINATOR_NOT_AVAILABLE;
	struct plog_append_result res;
	int rc = plog_append(p->log, gc->batch.buf, len, &h, 0, group_wall_ms(), &res);
	if (rc < 0)
		return gstore_error_of_append(rc);
	shard_partition_dirty(sh, p);
	*needed = res.base_offset + h.last_offset_delta + 1;
	return KAFKA_NONE;
}

static struct gwrite *gwrite_new(struct group_coord *gc, struct group *g, struct group_op *op,
				 struct gmember *member, gwrite_done_fn done)
{
	struct gwrite *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->gc = gc;
	w->g = g;
	w->generation = g->generation;
	w->op = op;
	w->member = member;
	w->done = done;
	w->old_member_id = KSTR_NULL;
	w->wait.done = gwrite_durable;
	g->refs++;
	gc->writes_in_flight++;
	return w;
}

struct gwrite *gstore_submit(struct group_coord *gc, struct group *g, struct group_op *op,
			     struct gmember *member, gwrite_done_fn done)
{
	struct shard *sh = gc->sh;
	size_t len = offsets_batch_end(&gc->cur);
	struct gwrite *w = gwrite_new(gc, g, op, member, done);
	if (w == NULL)
		return NULL;
	struct partition *p = shard_partition_find(sh, KSTR(OFFSETS_TOPIC_NAME), g->partition);
	int64_t needed = 0;
	w->error = gstore_append(gc, p, len, &needed);
	if (w->error == KAFKA_NONE) {
		/* Later answers about g wait for this too (gstore_barrier). */
		g->write_end = needed;
		if (plog_high_watermark(p->log) < needed) {
			partition_wait_durable(p, &w->wait, needed, &w->wait_error);
			return w;
		}
	}
	/* Done already (failed, or durable: a duplicate cannot happen here,
	 * but the rule is the produce path's): report it on this turn, after
	 * the caller has filled in what it needs. */
	xcall_send(sh, sh->id, &w->later_x, gwrite_later_run, NULL);
	return w;
}

struct gwrite *gstore_barrier(struct group_coord *gc, struct group *g, struct group_op *op,
			      gwrite_done_fn done)
{
	struct partition *p = shard_partition_find(gc->sh, KSTR(OFFSETS_TOPIC_NAME), g->partition);
	if (p == NULL || p->log == NULL || plog_high_watermark(p->log) >= g->write_end)
		return NULL;
	struct gwrite *w = gwrite_new(gc, g, op, NULL, done);
	if (w == NULL)
		return NULL;
	if (plog_error(p->log) != 0) {
		/* Offline: no advance will come to resolve a wait. */
		w->error = KAFKA_NOT_COORDINATOR;
		xcall_send(gc->sh, gc->sh->id, &w->later_x, gwrite_later_run, NULL);
		return w;
	}
	/* The partition's waits are resolved by a walk of the whole list, so
	 * this one may sit behind later offsets. */
	partition_wait_durable(p, &w->wait, g->write_end, &w->wait_error);
	return w;
}

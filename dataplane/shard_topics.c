/*
 * A shard's table of topics and partitions, and the admin flows that change
 * it on every shard: creation and deletion run on shard 0 (the metadata's
 * owner), which broadcasts an attach or a detach to every shard and answers
 * the caller once all of them did it. See shard.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "group.h"
#include "handlers.h"
#include "kafka/kafka_errors.h"
#include "node.h"
#include "placement.h"
#include "request.h"
#include "say.h"
#include "shard.h"

static uint32_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static uint32_t bucket_of_name(const char *name, size_t len)
{
	return hash_bytes(name, len) & (TOPIC_TABLE_BUCKETS - 1);
}

static uint32_t bucket_of_id(struct kuuid id)
{
	return hash_bytes(id.b, sizeof(id.b)) & (TOPIC_TABLE_BUCKETS - 1);
}

struct topic_state *shard_topic_find(struct shard *sh, struct kstr name)
{
	if (name.len <= 0)
		return NULL;
	uint32_t b = bucket_of_name(name.ptr, (size_t)name.len);
	for (struct topic_state *ts = sh->topics_by_name[b]; ts != NULL; ts = ts->by_name_next)
		if (kstr_eq_cstr(name, ts->meta->name))
			return ts;
	return NULL;
}

struct topic_state *shard_topic_find_id(struct shard *sh, struct kuuid id)
{
	for (struct topic_state *ts = sh->topics_by_id[bucket_of_id(id)]; ts != NULL;
	     ts = ts->by_id_next)
		if (memcmp(ts->meta->id.b, id.b, sizeof(id.b)) == 0)
			return ts;
	return NULL;
}

struct partition *shard_partition_find(struct shard *sh, struct kstr topic, int32_t index)
{
	struct topic_state *ts = shard_topic_find(sh, topic);
	if (ts == NULL || index < 0 || index >= ts->n_parts)
		return NULL;
	return &ts->parts[index];
}

struct partition *shard_partition_owned(struct shard *sh, struct kuuid topic_id, int32_t index)
{
	struct topic_state *ts = shard_topic_find_id(sh, topic_id);
	if (ts == NULL || index < 0 || index >= ts->n_parts || ts->parts[index].log == NULL)
		return NULL;
	return &ts->parts[index];
}

int32_t shard_leader_id(const struct shard *sh, const struct partition *p)
{
	if (!config_per_shard_endpoints(sh->cfg))
		return sh->cfg->node_id;
	return node_shard_id(sh->cfg->node_id, p->owner);
}

static void partition_on_advance(void *arg, struct plog *log)
{
	struct partition *p = arg;
	struct shard *sh = p->sh;
	produce_waits_advance(sh, p);
	/* A write waiting out a full disk, or syncs waiting for room in the
	 * ring, are retried from the owed list. */
	(void)log;
	shard_sync_owed(sh, p);
	sh->fetch_recheck = true;
	/* Fetches on other shards parked on this partition learn at the end
	 * of the turn (one message per shard however many partitions moved). */
	sh->notify_mask |= p->watchers;
	p->watchers = 0;
}

static void topic_log_config(struct shard *sh, const struct topic *t, struct log_config *lc)
{
	memset(lc, 0, sizeof(*lc));
	lc->segment_bytes = t->segment_bytes;
	lc->segment_ms = t->segment_ms;
	lc->preallocate_bytes = sh->cfg->log_preallocate_bytes;
	lc->preallocate_zero_max_rate = sh->cfg->log_preallocate_zero_max_rate;
	lc->retry_ms = sh->cfg->log_write_retry_ms;
	lc->io = &sh->sio;
	lc->index_interval_bytes = t->index_interval_bytes;
	lc->flush = (enum flush_mode)sh->cfg->flush;
	lc->flush_interval_ms = sh->cfg->flush_interval_ms;
	lc->pool = &sh->wpool;
	lc->retention_ms = t->retention_ms;
	lc->retention_bytes = t->retention_bytes;
	lc->compact = t->cleanup_compact;
	lc->min_cleanable_dirty_ratio = t->min_cleanable_dirty_ratio;
	lc->delete_retention_ms = t->delete_retention_ms;
	lc->min_compaction_lag_ms = t->min_compaction_lag_ms;
}

static void topic_state_free(struct topic_state *ts)
{
	free(ts->parts);
	free(ts);
}

static void topic_link(struct shard *sh, struct topic_state *ts)
{
	const struct topic *t = ts->meta;
	uint32_t bn = bucket_of_name(t->name, strlen(t->name)), bi = bucket_of_id(t->id);
	ts->by_name_next = sh->topics_by_name[bn];
	sh->topics_by_name[bn] = ts;
	ts->by_id_next = sh->topics_by_id[bi];
	sh->topics_by_id[bi] = ts;
	ts->list_next = NULL;
	ts->list_prev = sh->topics_tail;
	if (sh->topics_tail != NULL)
		sh->topics_tail->list_next = ts;
	else
		sh->topics_head = ts;
	sh->topics_tail = ts;
	sh->n_topics++;
}

static void topic_unlink(struct shard *sh, struct topic_state *ts)
{
	const struct topic *t = ts->meta;
	uint32_t bn = bucket_of_name(t->name, strlen(t->name)), bi = bucket_of_id(t->id);
	for (struct topic_state **pp = &sh->topics_by_name[bn]; *pp; pp = &(*pp)->by_name_next)
		if (*pp == ts) {
			*pp = ts->by_name_next;
			break;
		}
	for (struct topic_state **pp = &sh->topics_by_id[bi]; *pp; pp = &(*pp)->by_id_next)
		if (*pp == ts) {
			*pp = ts->by_id_next;
			break;
		}
	if (ts->list_prev != NULL)
		ts->list_prev->list_next = ts->list_next;
	else
		sh->topics_head = ts->list_next;
	if (ts->list_next != NULL)
		ts->list_next->list_prev = ts->list_prev;
	else
		sh->topics_tail = ts->list_prev;
	sh->n_topics--;
}

static void topic_close_logs(struct topic_state *ts)
{
	for (int32_t i = 0; i < ts->n_parts; i++)
		if (ts->parts[i].log != NULL)
			plog_close(ts->parts[i].log);
}

/* Set up partition i of t in p (in ts's table) and open its log if this
 * shard owns it. 0 or -errno. */
static int partition_setup(struct shard *sh, struct topic_state *ts, const struct topic *t,
			   const struct log_config *lc, struct partition *p, int32_t i)
{
	p->sh = sh;
	p->topic = ts;
	p->index = i;
	p->owner = placement_shard(kstr_from(t->name), i, sh->n_shards);
	if (p->owner != sh->id)
		return 0;
	char dir[PATH_MAX + TOPIC_NAME_LEN_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/%s-%d", sh->cfg->data_dir, t->name, i);
	int err = 0;
	p->log = plog_open(dir, lc, &err);
	if (p->log == NULL) {
		say_error("cannot open partition log %s: %s", dir, strerror(-err));
		return err;
	}
	plog_set_listener(p->log, partition_on_advance, p);
	return 0;
}

int shard_topic_attach(struct shard *sh, const struct topic *t, struct topic_state **out)
{
	struct topic_state *ts = calloc(1, sizeof(*ts));
	if (ts == NULL)
		return -ENOMEM;
	ts->meta = t;
	ts->n_parts = t->partitions;
	ts->parts = calloc((size_t)t->partitions, sizeof(ts->parts[0]));
	if (ts->parts == NULL) {
		free(ts);
		return -ENOMEM;
	}
	struct log_config lc;
	topic_log_config(sh, t, &lc);
	for (int32_t i = 0; i < t->partitions; i++) {
		int err = partition_setup(sh, ts, t, &lc, &ts->parts[i], i);
		if (err != 0) {
			topic_close_logs(ts);
			topic_state_free(ts);
			return err;
		}
		ts->n_owned += ts->parts[i].log != NULL;
	}
	topic_link(sh, ts);
	group_coord_topics_changed(sh);
	if (out != NULL)
		*out = ts;
	return 0;
}

void shard_topic_detach(struct shard *sh, struct topic_state *ts)
{
	topic_unlink(sh, ts);
	for (struct partition **pp = &sh->dirty_head; *pp;) {
		if ((*pp)->topic == ts)
			*pp = (*pp)->dirty_next;
		else
			pp = &(*pp)->dirty_next;
	}
	for (struct partition **pp = &sh->sync_head; *pp;) {
		if ((*pp)->topic == ts)
			*pp = (*pp)->sync_next;
		else
			pp = &(*pp)->sync_next;
	}
	for (int32_t i = 0; i < ts->n_parts; i++) {
		struct partition *p = &ts->parts[i];
		if (p->log == NULL)
			continue;
		produce_waits_fail_all(sh, p, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
		/* p is freed below while the log may still complete a write:
		 * it must not call back into p. */
		plog_set_listener(p->log, NULL, NULL);
		int err = plog_delete(p->log);
		if (err != 0)
			say_warn("delete topic %s partition %d: %s", ts->meta->name, i,
				 strerror(-err));
	}
	topic_state_free(ts);
	group_coord_topics_changed(sh);
	sh->fetch_recheck = true;
}

static void topic_log_placement(struct shard *sh, const struct topic_state *ts);

/* p, if it points into old[0..n), moved to the same place in new. */
static struct partition *partition_moved(struct partition *p, struct partition *old, int32_t n,
					 struct partition *new)
{
	if (p != NULL && p >= old && p < old + n)
		return new + (p - old);
	return p;
}

int shard_topic_grow(struct shard *sh, struct topic_state *ts, const struct topic *t)
{
	int32_t old_n = ts->n_parts, n = t->partitions;
	if (n <= old_n) {
		ts->meta = t;
		return 0;
	}
	struct partition *parts = calloc((size_t)n, sizeof(*parts));
	if (parts == NULL)
		return -ENOMEM;
	struct log_config lc;
	topic_log_config(sh, t, &lc);
	int32_t opened = 0;
	for (int32_t i = old_n; i < n; i++) {
		int err = partition_setup(sh, ts, t, &lc, &parts[i], i);
		if (err != 0) {
			for (int32_t k = old_n; k < i; k++)
				if (parts[k].log != NULL)
					plog_close(parts[k].log);
			free(parts);
			return err;
		}
		opened += parts[i].log != NULL;
	}
	/* The old partitions move: the lists of this turn's dirty logs and of
	 * logs owed a sync, and each log's listener, point at them. Nothing
	 * else keeps a partition's address across a turn (calls between
	 * shards name a partition by topic id and index). */
	struct partition *old = ts->parts;
	memcpy(parts, old, sizeof(*parts) * (size_t)old_n);
	sh->dirty_head = partition_moved(sh->dirty_head, old, old_n, parts);
	for (struct partition *p = sh->dirty_head; p != NULL; p = p->dirty_next)
		p->dirty_next = partition_moved(p->dirty_next, old, old_n, parts);
	sh->sync_head = partition_moved(sh->sync_head, old, old_n, parts);
	for (struct partition *p = sh->sync_head; p != NULL; p = p->sync_next)
		p->sync_next = partition_moved(p->sync_next, old, old_n, parts);
	for (int32_t i = 0; i < old_n; i++)
		if (parts[i].log != NULL)
			plog_set_listener(parts[i].log, partition_on_advance, &parts[i]);
	ts->parts = parts;
	ts->n_parts = n;
	ts->n_owned += opened;
	ts->meta = t;
	free(old);
	group_coord_topics_changed(sh);
	if (opened > 0)
		topic_log_placement(sh, ts);
	return 0;
}

void shard_topics_free(struct shard *sh)
{
	struct topic_state *ts = sh->topics_head;
	while (ts != NULL) {
		struct topic_state *next = ts->list_next;
		topic_close_logs(ts);
		topic_state_free(ts);
		ts = next;
	}
	sh->topics_head = sh->topics_tail = NULL;
	memset(sh->topics_by_name, 0, sizeof(sh->topics_by_name));
	memset(sh->topics_by_id, 0, sizeof(sh->topics_by_id));
	sh->n_topics = 0;
}

void shard_partition_dirty(struct shard *sh, struct partition *p)
{
	if (p->dirty)
		return;
	p->dirty = true;
	p->dirty_next = sh->dirty_head;
	sh->dirty_head = p;
}

/* ---- admin ops: run on shard 0 ---- */

/* One shard's part of a broadcast attach or detach. */
struct topic_bcast {
	struct xcall xc;
	struct topic_op *op;
	const struct topic *t;
	int rc;
};

static void topic_op_reply(struct shard *sh, struct topic_op *op)
{
	xcall_reply(sh, &op->xc);
}

/* "topic t: shard 1 owns 8 of 16 partitions: 1 3 5 ..." (the list cut
 * short on big topics; --describe-placement has all of it). */
static void topic_log_placement(struct shard *sh, const struct topic_state *ts)
{
	char list[160];
	size_t n = 0;
	for (int32_t i = 0; i < ts->n_parts && n + 16 < sizeof(list); i++)
		if (ts->parts[i].owner == sh->id)
			n += (size_t)snprintf(list + n, sizeof(list) - n, " %d", i);
	bool cut = n + 16 >= sizeof(list);
	say_info("topic %s: shard %d owns %d of %d partitions:%s%s", ts->meta->name, sh->id,
		 ts->n_owned, ts->n_parts, list, cut ? " ..." : "");
}

static void topic_attach_run(struct shard *sh, struct xcall *x)
{
	struct topic_bcast *b = container_of(x, struct topic_bcast, xc);
	struct topic_state *ts = NULL;
	b->rc = shard_topic_attach(sh, b->t, &ts);
	if (b->rc == 0 && ts->n_owned > 0)
		topic_log_placement(sh, ts);
	xcall_reply(sh, x);
}

static void topic_detach_run(struct shard *sh, struct xcall *x)
{
	struct topic_bcast *b = container_of(x, struct topic_bcast, xc);
	struct topic_state *ts = shard_topic_find_id(sh, b->t->id);
	b->rc = 0;
	if (ts != NULL)
		shard_topic_detach(sh, ts);
	xcall_reply(sh, x);
}

static void topic_grow_run(struct shard *sh, struct xcall *x)
{
	struct topic_bcast *b = container_of(x, struct topic_bcast, xc);
	struct topic_state *ts = shard_topic_find_id(sh, b->t->id);
	b->rc = ts != NULL ? shard_topic_grow(sh, ts, b->t) : 0;
	xcall_reply(sh, x);
}

static void topic_op_broadcast_done(struct shard *sh, struct xcall *x);

/* Send run(t) to every shard, shard 0 included; finish when all answered. */
static int topic_op_broadcast(struct shard *sh, struct topic_op *op, const struct topic *t,
			      xcall_fn run)
{
	struct topic_bcast *b = calloc((size_t)sh->n_shards, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	op->bcast = b;
	op->acks_pending = sh->n_shards;
	for (int i = 0; i < sh->n_shards; i++) {
		b[i].op = op;
		b[i].t = t;
		xcall_send(sh, i, &b[i].xc, run, topic_op_broadcast_done);
	}
	return 0;
}

static void topic_op_broadcast_done(struct shard *sh, struct xcall *x)
{
	struct topic_bcast *b = container_of(x, struct topic_bcast, xc);
	struct topic_op *op = b->op;
	if (b->rc != 0 && op->error == KAFKA_NONE) {
		say_error("topic %s: shard %d could not open or delete its logs: %s", b->t->name,
			  b->xc.dst, strerror(-b->rc));
		op->error = KAFKA_KAFKA_STORAGE_ERROR;
	}
	if (--op->acks_pending > 0)
		return;
	free(op->bcast);
	op->bcast = NULL;
	if (op->kind == TOPIC_OP_ADD_PARTITIONS && op->error == KAFKA_NONE) {
		/* Every shard reads the new metadata now. (After a failure a
		 * shard may still read the old one: it is kept.) */
		metadata_topic_release(op->retired);
		op->retired = NULL;
		say_info("topic %.*s: %d partitions now", op->name.len, op->name.ptr,
			 op->partitions);
	}
	if (op->kind == TOPIC_OP_DELETE) {
		/* Detached everywhere, shard 0 included: the metadata goes last. */
		int rc = metadata_topic_delete(sh->node->md, kstr_from(op->deleted_name));
		if (rc != 0) {
			say_error("delete topic %s: metadata: %s", op->deleted_name, strerror(-rc));
			op->error = KAFKA_KAFKA_STORAGE_ERROR;
		} else {
			say_info("deleted topic %s", op->deleted_name);
		}
	}
	topic_op_reply(sh, op);
}

static void topic_op_create(struct shard *sh, struct topic_op *op)
{
	const struct topic *t;
	int rc = metadata_topic_create(sh->node->md, op->name, op->partitions, op->configs,
				       op->n_configs, &t);
	if (rc != 0) {
		if (rc != -EEXIST)
			say_error("create topic %.*s: %s", op->name.len, op->name.ptr,
				  strerror(-rc));
		op->error = rc == -EEXIST   ? KAFKA_TOPIC_ALREADY_EXISTS
			    : rc == -ENOSPC ? KAFKA_POLICY_VIOLATION
					    : KAFKA_KAFKA_STORAGE_ERROR;
		topic_op_reply(sh, op);
		return;
	}
	say_info("created topic %s (%d partitions, id %02x%02x%02x%02x...)", t->name,
		 t->partitions, t->id.b[0], t->id.b[1], t->id.b[2], t->id.b[3]);
	op->topic = t;
	if (topic_op_broadcast(sh, op, t, topic_attach_run) != 0) {
		op->error = KAFKA_KAFKA_STORAGE_ERROR;
		topic_op_reply(sh, op);
	}
}

static void topic_op_delete(struct shard *sh, struct topic_op *op)
{
	/* Logs first, metadata last: a crash in between leaves a topic with
	 * empty logs (consistent, deletable again), never a deleted topic
	 * whose old data would reappear under a re-created name. */
	struct topic_state *ts = op->by_id ? shard_topic_find_id(sh, op->id)
					   : shard_topic_find(sh, op->name);
	if (ts == NULL || ts->deleting) {
		op->error = op->by_id ? KAFKA_UNKNOWN_TOPIC_ID : KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		topic_op_reply(sh, op);
		return;
	}
	if (group_topic_is_internal(ts->meta->name)) {
		/* Every group's offsets live there, and the coordinators use
		 * its partitions. */
		op->error = KAFKA_INVALID_TOPIC_EXCEPTION;
		topic_op_reply(sh, op);
		return;
	}
	ts->deleting = true;
	snprintf(op->deleted_name, sizeof(op->deleted_name), "%s", ts->meta->name);
	op->deleted_id = ts->meta->id;
	if (topic_op_broadcast(sh, op, ts->meta, topic_detach_run) != 0) {
		ts->deleting = false;
		op->error = KAFKA_KAFKA_STORAGE_ERROR;
		topic_op_reply(sh, op);
	}
}

static void topic_op_add_partitions(struct shard *sh, struct topic_op *op)
{
	struct topic_state *ts = shard_topic_find(sh, op->name);
	if (ts == NULL || ts->deleting) {
		op->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		topic_op_reply(sh, op);
		return;
	}
	const struct topic *t;
	int rc = metadata_topic_add_partitions(sh->node->md, op->name, op->partitions, &t,
					       &op->retired);
	if (rc != 0) {
		if (rc != -EINVAL)
			say_error("add partitions to %.*s: %s", op->name.len, op->name.ptr,
				  strerror(-rc));
		op->error = rc == -EINVAL ? KAFKA_INVALID_PARTITIONS : KAFKA_KAFKA_STORAGE_ERROR;
		topic_op_reply(sh, op);
		return;
	}
	if (topic_op_broadcast(sh, op, t, topic_grow_run) != 0) {
		/* Durable in the metadata: every shard opens them at the next
		 * start. The old metadata stays (shards read it). */
		op->error = KAFKA_KAFKA_STORAGE_ERROR;
		topic_op_reply(sh, op);
	}
}

static void topic_op_run(struct shard *sh, struct xcall *x)
{
	struct topic_op *op = container_of(x, struct topic_op, xc);
	op->error = KAFKA_NONE;
	switch (op->kind) {
	case TOPIC_OP_CREATE:
		topic_op_create(sh, op);
		return;
	case TOPIC_OP_DELETE:
		topic_op_delete(sh, op);
		return;
	case TOPIC_OP_ADD_PARTITIONS:
		topic_op_add_partitions(sh, op);
		return;
	case TOPIC_OP_PRODUCER_ID: {
		int rc = metadata_producer_id_alloc(sh->node->md, &op->producer_id);
		if (rc != 0) {
			say_error("producer id allocation failed: %s", strerror(-rc));
			op->error = KAFKA_KAFKA_STORAGE_ERROR;
		}
		topic_op_reply(sh, op);
		return;
	}
	}
}

static void topic_op_done(struct shard *sh, struct xcall *x)
{
	struct topic_op *op = container_of(x, struct topic_op, xc);
	op->finish(sh, op);
}

void shard_topic_op(struct shard *sh, struct topic_op *op)
{
	xcall_send(sh, 0, &op->xc, topic_op_run, topic_op_done);
}

void shard_topic_op_finish_request(struct shard *sh, struct topic_op *op)
{
	(void)sh;
	request_remote_done(op->arg);
}

/* ---- auto-creation from Produce ---- */

struct autocreate {
	struct topic_op op;
	char name[TOPIC_NAME_LEN_MAX + 1];
};

static void autocreate_finish(struct shard *sh, struct topic_op *op)
{
	(void)sh;
	free(container_of(op, struct autocreate, op));
}

void shard_topic_autocreate(struct shard *sh, struct kstr name)
{
	if (name.len <= 0 || name.len > TOPIC_NAME_LEN_MAX)
		return;
	struct autocreate *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return;
	memcpy(a->name, name.ptr, (size_t)name.len);
	a->op.kind = TOPIC_OP_CREATE;
	a->op.name = (struct kstr){ a->name, name.len };
	a->op.partitions = sh->cfg->num_partitions;
	a->op.finish = autocreate_finish;
	shard_topic_op(sh, &a->op);
}

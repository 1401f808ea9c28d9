/*
 * group_coord: one shard's group coordinator: its table of groups, the
 * timer heap that drives sessions and rebalances, the entry point of the
 * group_op xcalls, and the per-turn work (timers, loading, expiry,
 * shutdown). See group.h and group_int.h.
 *
 * Timers: every deadline (a member's session, a pending member's expiry,
 * a rebalance's join and sync deadlines) is a struct gtimer on one binary
 * heap per shard. A heartbeat only writes the member's `due`: its heap
 * entry fires at the old deadline, finds the new one later and sinks to
 * it, so a heartbeat is O(1) whatever the number of members, and each
 * session period costs one O(log n) move per member. The loop's sleep is
 * bounded by the heap's top, and a shard with no groups pays one
 * comparison per turn.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "group_int.h"
#include "metadata.h"
#include "placement.h"
#include "say.h"

static const char *const group_state_names[] = {
	[GROUP_EMPTY] = "Empty",
	[GROUP_PREPARING_REBALANCE] = "PreparingRebalance",
	[GROUP_COMPLETING_REBALANCE] = "CompletingRebalance",
	[GROUP_STABLE] = "Stable",
	[GROUP_DEAD] = "Dead",
};

const char *group_state_name(enum group_state s)
{
	return group_state_names[s];
}

int64_t group_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void group_mem(struct group_coord *gc, int64_t delta)
{
	shard_mem_charge(&gc->sh->mem, delta);
}

/* Empty strings share this, so a kstr from gstr_dup never has a NULL
 * pointer with a length (memcpy from NULL is undefined even for 0 bytes). */
static const char gstr_empty[1];

struct kstr gstr_dup(struct kstr s)
{
	if (s.len < 0)
		return KSTR_NULL;
	if (s.len == 0)
		return (struct kstr){ gstr_empty, 0 };
	char *p = malloc((size_t)s.len);
	if (p == NULL)
		return (struct kstr){ NULL, -2 }; /* callers check len < -1: no memory */
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kstr){ p, s.len };
}

void gstr_free(struct kstr *s)
{
	if (s->ptr != gstr_empty)
		free((void *)s->ptr);
	*s = KSTR_NULL;
}

bool group_topic_is_internal(const char *topic_name)
{
	return strcmp(topic_name, OFFSETS_TOPIC_NAME) == 0;
}

/* ---- timers ---- */

void gtimer_init(struct gtimer *t, enum gtimer_kind kind)
{
	t->at = t->due = 0;
	t->idx = -1;
	t->kind = (uint8_t)kind;
}

static void heap_place(struct group_coord *gc, int32_t i, struct gtimer *t)
{
	gc->heap[i] = t;
	t->idx = i;
}

static void heap_up(struct group_coord *gc, int32_t i)
{
	struct gtimer *t = gc->heap[i];
	while (i > 0) {
		int32_t parent = (i - 1) / 2;
		if (gc->heap[parent]->at <= t->at)
			break;
		heap_place(gc, i, gc->heap[parent]);
		i = parent;
	}
	heap_place(gc, i, t);
}

static void heap_down(struct group_coord *gc, int32_t i)
{
	struct gtimer *t = gc->heap[i];
	for (;;) {
		int32_t c = 2 * i + 1;
		if (c >= gc->heap_n)
			break;
		if (c + 1 < gc->heap_n && gc->heap[c + 1]->at < gc->heap[c]->at)
			c++;
		if (gc->heap[c]->at >= t->at)
			break;
		heap_place(gc, i, gc->heap[c]);
		i = c;
	}
	heap_place(gc, i, t);
}

static void heap_remove_at(struct group_coord *gc, int32_t i)
{
	struct gtimer *t = gc->heap[i];
	struct gtimer *last = gc->heap[--gc->heap_n];
	t->idx = -1;
	if (i == gc->heap_n)
		return;
	heap_place(gc, i, last);
	heap_down(gc, i);
	heap_up(gc, last->idx);
}

void gtimer_set(struct group_coord *gc, struct gtimer *t, int64_t due_ms)
{
	t->due = due_ms;
	if (t->idx >= 0) {
		if (due_ms < t->at) {
			t->at = due_ms;
			heap_up(gc, t->idx);
		}
		return; /* later: the entry catches up when it fires */
	}
	if (gc->heap_n == gc->heap_cap) {
		int32_t cap = gc->heap_cap ? gc->heap_cap * 2 : 64;
		struct gtimer **h = realloc(gc->heap, (size_t)cap * sizeof(*h));
		if (h == NULL) {
			/* Without room the deadline would be lost; the member or
			 * rebalance then waits for the next event that sets one. */
			say_warn("group coordinator: out of memory for a timer");
			return;
		}
		group_mem(gc, (int64_t)(cap - gc->heap_cap) * (int64_t)sizeof(*h));
		gc->heap = h;
		gc->heap_cap = cap;
	}
	t->at = due_ms;
	heap_place(gc, gc->heap_n++, t);
	heap_up(gc, t->idx);
}

void gtimer_cancel(struct group_coord *gc, struct gtimer *t)
{
	if (t->idx >= 0)
		heap_remove_at(gc, t->idx);
}

static void group_timers_run(struct group_coord *gc)
{
	int64_t now = gc->sh->now_ms;
	for (int budget = GROUP_TIMERS_PER_TURN; budget > 0 && gc->heap_n > 0; budget--) {
		struct gtimer *t = gc->heap[0];
		if (t->at > now)
			return;
		if (t->due > now) {
			t->at = t->due;
			heap_down(gc, 0);
			continue;
		}
		heap_remove_at(gc, 0);
		group_timer_fire(gc, t);
	}
}

/* ---- the table of groups ---- */

struct group *group_find(struct group_coord *gc, struct kstr id)
{
	struct strmap_node *n = strmap_find(&gc->groups, id.ptr, (size_t)(id.len > 0 ? id.len : 0));
	return n == NULL ? NULL : container_of(n, struct group, by_id);
}

struct group *group_create(struct group_coord *gc, struct kstr id)
{
	if (gc->n_groups >= gc->cfg->group_coordinator_max_groups) {
		say_warn("group coordinator: group.coordinator.max.groups (%d) reached on shard %d: "
			 "refusing group %.*s", gc->cfg->group_coordinator_max_groups, gc->sh->id,
			 id.len, id.ptr);
		return NULL;
	}
	struct group *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->id = gstr_dup(id.len < 0 ? KSTR("") : id);
	if (g->id.len < 0) {
		free(g);
		return NULL;
	}
	if (strmap_insert(&gc->groups, &g->by_id, g->id.ptr, (size_t)g->id.len) != 0) {
		gstr_free(&g->id);
		free(g);
		return NULL;
	}
	g->gc = gc;
	g->partition = group_partition_for(id, gc->n_partitions);
	g->state = GROUP_EMPTY;
	g->state_ts = group_wall_ms();
	g->protocol_type = KSTR_NULL;
	g->protocol = KSTR_NULL;
	strmap_init(&g->members);
	strmap_init(&g->statics);
	strmap_init(&g->offsets);
	gtimer_init(&g->join_timer, GT_JOIN);
	gtimer_init(&g->sync_timer, GT_SYNC);
	g->next = gc->groups_head;
	if (gc->groups_head != NULL)
		gc->groups_head->prev = g;
	gc->groups_head = g;
	gc->n_groups++;
	g->mem_bytes = sizeof(*g) + (size_t)g->id.len;
	group_mem(gc, (int64_t)g->mem_bytes);
	return g;
}

static void group_free_zombies(struct group_coord *gc, struct group *g)
{
	while (g->zombies != NULL) {
		struct gmember *m = g->zombies;
		g->zombies = m->next;
		gmember_free(gc, m);
	}
}

static void group_free(struct group_coord *gc, struct group *g)
{
	group_free_zombies(gc, g);
	cgroup_free(gc, g);
	strmap_free(&g->members);
	strmap_free(&g->statics);
	strmap_free(&g->offsets);
	for (int32_t i = 0; i < g->n_protos; i++)
		free(g->protos[i].name);
	gstr_free(&g->protocol_type);
	gstr_free(&g->protocol);
	gstr_free(&g->id);
	group_mem(gc, -(int64_t)g->mem_bytes);
	free(g);
}

void group_unref(struct group_coord *gc, struct group *g)
{
	if (--g->refs > 0)
		return;
	if (g->removed)
		group_free(gc, g);
	else
		group_free_zombies(gc, g); /* members removed while writes were out */
}

void group_set_state(struct group *g, enum group_state s)
{
	g->state = s;
	g->state_ts = group_wall_ms();
}

void group_remove(struct group_coord *gc, struct group *g, int16_t err)
{
	if (g->removed)
		return;
	group_set_state(g, GROUP_DEAD);
	g->removed = true;
	strmap_remove(&gc->groups, &g->by_id);
	if (gc->expire_cursor == g)
		gc->expire_cursor = g->next;
	if (g->prev != NULL)
		g->prev->next = g->next;
	else
		gc->groups_head = g->next;
	if (g->next != NULL)
		g->next->prev = g->prev;
	g->next = g->prev = NULL;
	gc->n_groups--;
	gc->stats.groups_removed++;
	gtimer_cancel(gc, &g->join_timer);
	gtimer_cancel(gc, &g->sync_timer);
	group_members_clear(gc, g, err);
	group_offsets_clear(gc, g);
	/* Consumer group members go now (their timers with them); the
	 * struct stays while writes name the group. */
	while (g->cg != NULL && g->cg->head != NULL)
		cmember_remove(gc, g, g->cg->head);
	if (g->refs == 0)
		group_free(gc, g);
}

void group_drop_if_unused(struct group_coord *gc, struct group *g)
{
	/* A consumer group is written when it is created: it stays until it
	 * is deleted or expires. */
	if (!g->removed && g->type == GROUP_TYPE_CLASSIC && g->state == GROUP_EMPTY && g->generation == 0 && g->n_members == 0 &&
	    g->n_pending == 0 && g->n_offsets == 0 && g->refs == 0)
		group_remove(gc, g, KAFKA_NONE);
}

int32_t group_rebalance_timeout_ms(const struct group *g)
{
	int32_t t = 0;
	for (const struct gmember *m = g->members_head; m != NULL; m = m->next)
		if (m->rebalance_timeout_ms > t)
			t = m->rebalance_timeout_ms;
	return t;
}

bool group_partition_loading(const struct group_coord *gc, int32_t partition)
{
	return gc->parts[partition].state == GPART_LOADING;
}

int16_t group_status(struct group_coord *gc, struct kstr group_id, bool allow_empty_id)
{
	/* Kafka's isValidGroupId: the offset APIs, DescribeGroups and
	 * DeleteGroups accept the empty id (old clients commit under it),
	 * the membership APIs do not. */
	if (group_id.len < 0 || (group_id.len == 0 && !allow_empty_id))
		return KAFKA_INVALID_GROUP_ID;
	if (gc->n_partitions <= 0)
		return KAFKA_COORDINATOR_NOT_AVAILABLE;
	switch (gc->parts[group_partition_for(group_id, gc->n_partitions)].state) {
	case GPART_LOADED:
		return KAFKA_NONE;
	case GPART_LOADING:
		return KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
	case GPART_FAILED:
		return KAFKA_COORDINATOR_NOT_AVAILABLE;
	case GPART_NOT_OWNED:
	default:
		return KAFKA_NOT_COORDINATOR;
	}
}

/* ---- ops from the request handlers ---- */

void group_op_reply(struct shard *sh, struct group_op *op)
{
	xcall_reply(sh, &op->xc);
}

void group_op_run(struct shard *sh, struct xcall *xc)
{
	struct group_op *op = container_of(xc, struct group_op, xc);
	struct group_coord *gc = sh->groups;
	if (gc == NULL || gc->stopped) {
		/* Shutting down: clients look for the coordinator again. */
		op->error = KAFKA_NOT_COORDINATOR;
		group_op_reply(sh, op);
		return;
	}
	switch (op->kind) {
	case GROUP_OP_JOIN:
		group_do_join(gc, op);
		return;
	case GROUP_OP_SYNC:
		group_do_sync(gc, op);
		return;
	case GROUP_OP_HEARTBEAT:
		group_do_heartbeat(gc, op);
		return;
	case GROUP_OP_LEAVE:
		group_do_leave(gc, op);
		return;
	case GROUP_OP_COMMIT:
		group_do_commit(gc, op);
		return;
	case GROUP_OP_FETCH:
		group_do_fetch(gc, op);
		return;
	case GROUP_OP_OFFSET_DELETE:
		group_do_offset_delete(gc, op);
		return;
	case GROUP_OP_DESCRIBE:
		group_do_describe(gc, op);
		return;
	case GROUP_OP_DELETE:
		group_do_delete(gc, op);
		return;
	case GROUP_OP_LIST:
		group_do_list(gc, op);
		return;
	case GROUP_OP_CHEARTBEAT:
		group_do_cheartbeat(gc, op);
		return;
	case GROUP_OP_CDESCRIBE:
		group_do_cdescribe(gc, op);
		return;
	}
	op->error = KAFKA_INVALID_REQUEST;
	group_op_reply(sh, op);
}

/* ---- set-up, the turn, shutdown ---- */

int group_coord_init(struct shard *sh)
{
	struct group_coord *gc = calloc(1, sizeof(*gc));
	if (gc == NULL)
		return -ENOMEM;
	gc->sh = sh;
	gc->cfg = sh->cfg;
	gc->n_assignors = gassignor_list_parse(sh->cfg->group_consumer_assignors, gc->assignors,
					       GASSIGN_COUNT);
	if (gc->n_assignors <= 0) { /* config_validate refuses it; be safe */
		gc->assignors[0] = GASSIGN_UNIFORM;
		gc->n_assignors = 1;
	}
	strmap_init(&gc->groups);
	kw_init(&gc->scratch, 4096, 0);
	kw_init(&gc->batch, 4096, 0);
	sh->groups = gc;
	struct topic_state *ts = shard_topic_find(sh, KSTR(OFFSETS_TOPIC_NAME));
	if (ts == NULL) {
		say_warn("shard %d: no %s topic: group requests get COORDINATOR_NOT_AVAILABLE",
			 sh->id, OFFSETS_TOPIC_NAME);
		return 0;
	}
	gc->parts = calloc((size_t)ts->n_parts, sizeof(*gc->parts));
	if (gc->parts == NULL)
		return -ENOMEM;
	gc->n_partitions = ts->n_parts;
	gc->expire_next_ms = -1; /* set by the first turn: the loop's clock runs then */
	for (int32_t p = 0; p < ts->n_parts; p++)
		if (ts->parts[p].log != NULL)
			group_load_start(gc, p);
	return 0;
}

/* Answer every held request: the shard is stopping (Kafka answers
 * NOT_COORDINATOR when a coordinator resigns, and clients look for the
 * coordinator again). Members stay: their state is in the log. */
static void group_coord_stop(struct group_coord *gc)
{
	gc->stopped = true;
	for (struct group *g = gc->groups_head; g != NULL; g = g->next)
		for (struct gmember *m = g->members_head; m != NULL; m = m->next) {
			if (m->join_op != NULL) {
				struct group_op *op = m->join_op;
				m->join_op = NULL;
				g->n_awaiting_join--;
				op->error = KAFKA_NOT_COORDINATOR;
				group_op_reply(gc->sh, op);
			}
			if (m->sync_op != NULL) {
				struct group_op *op = m->sync_op;
				m->sync_op = NULL;
				op->error = KAFKA_NOT_COORDINATOR;
				group_op_reply(gc->sh, op);
			}
		}
}

void group_coord_turn(struct shard *sh)
{
	struct group_coord *gc = sh->groups;
	if (gc == NULL)
		return;
	if (sh->stopping && !gc->stopped)
		group_coord_stop(gc);
	if (gc->heap_n > 0 && gc->heap[0]->at <= sh->now_ms && !gc->stopped)
		group_timers_run(gc);
	if (gc->n_loading > 0)
		group_load_turn(gc);
	if (gc->expire_next_ms < 0)
		gc->expire_next_ms = sh->now_ms + sh->cfg->offsets_retention_check_interval_ms;
	if (gc->n_groups > 0 && !gc->stopped &&
	    (gc->expire_running || sh->now_ms >= gc->expire_next_ms))
		group_expire_step(gc);
}

void group_coord_topics_changed(struct shard *sh)
{
	if (sh->groups != NULL)
		sh->groups->topics_version++;
}

int64_t group_coord_deadline_ms(const struct shard *sh)
{
	const struct group_coord *gc = sh->groups;
	if (gc == NULL || gc->stopped)
		return -1;
	int64_t d = -1;
	if (gc->heap_n > 0)
		d = gc->heap[0]->at;
	if (gc->expire_running)
		d = sh->now_ms;
	else if (gc->n_groups > 0 && gc->expire_next_ms >= 0 && (d < 0 || gc->expire_next_ms < d))
		d = gc->expire_next_ms;
	return d;
}

bool group_coord_idle(const struct shard *sh)
{
	const struct group_coord *gc = sh->groups;
	return gc == NULL || (gc->writes_in_flight == 0 && gc->n_loading == 0);
}

void group_coord_stats_print(const struct shard *sh)
{
	const struct group_coord *gc = sh->groups;
	if (gc == NULL || (gc->n_groups == 0 && gc->stats.joins == 0 && gc->stats.commits == 0 &&
			   gc->stats.cg_heartbeats == 0))
		return;
	const struct group_coord_stats *s = &gc->stats;
	say_info("shard %d groups: groups=%d timers=%d joins=%llu syncs=%llu heartbeats=%llu "
		 "commits=%llu commit_records=%llu offset_fetches=%llu rebalances=%llu "
		 "members_expired=%llu offsets_expired=%llu groups_removed=%llu "
		 "group_writes_failed=%llu cg_heartbeats=%llu cg_assignments=%llu "
		 "cg_members_fenced=%llu", sh->id, gc->n_groups, gc->heap_n,
		 (unsigned long long)s->joins, (unsigned long long)s->syncs,
		 (unsigned long long)s->heartbeats, (unsigned long long)s->commits,
		 (unsigned long long)s->commit_records, (unsigned long long)s->fetches,
		 (unsigned long long)s->rebalances, (unsigned long long)s->members_expired,
		 (unsigned long long)s->offsets_expired, (unsigned long long)s->groups_removed,
		 (unsigned long long)s->writes_failed, (unsigned long long)s->cg_heartbeats,
		 (unsigned long long)s->cg_assignments, (unsigned long long)s->cg_members_fenced);
}

void group_coord_destroy(struct shard *sh)
{
	struct group_coord *gc = sh->groups;
	if (gc == NULL)
		return;
	group_load_free(gc);
	while (gc->groups_head != NULL) {
		struct group *g = gc->groups_head;
		g->refs = 0; /* the loop is over: no write will complete */
		group_remove(gc, g, KAFKA_NOT_COORDINATOR);
	}
	strmap_free(&gc->groups);
	group_mem(gc, -(int64_t)gc->heap_cap * (int64_t)sizeof(*gc->heap));
	free(gc->heap);
	free(gc->parts);
	kw_free(&gc->scratch);
	kw_free(&gc->batch);
	free(gc);
	sh->groups = NULL;
}

/* ---- the internal topic ---- */

int group_offsets_topic_ensure(struct metadata *md, const struct broker_config *cfg)
{
	struct kstr name = KSTR(OFFSETS_TOPIC_NAME);
	if (metadata_topic_find(md, name) != NULL)
		return 0;
	struct topic_config_entry configs[2];
	memset(configs, 0, sizeof(configs));
	snprintf(configs[0].key, sizeof(configs[0].key), "cleanup.policy");
	snprintf(configs[0].value, sizeof(configs[0].value), "compact");
	snprintf(configs[1].key, sizeof(configs[1].key), "segment.bytes");
	snprintf(configs[1].value, sizeof(configs[1].value), "%lld",
		 (long long)cfg->offsets_topic_segment_bytes);
	const struct topic *t;
	int rc = metadata_topic_create(md, name, cfg->offsets_topic_num_partitions, configs, 2, &t);
	if (rc == 0)
		say_info("created %s (%d partitions, compacted)", OFFSETS_TOPIC_NAME, t->partitions);
	return rc;
}

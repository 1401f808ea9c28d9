/*
 * group_cassign: where a consumer group's partitions go. The subscription
 * metadata (the subscribed topics that exist, with their ids and partition
 * counts), the target assignment computed from it by the group's assignor
 * (group_assign.c) whenever the group epoch moves past the assignment
 * epoch, and each member's reconciliation towards its target.
 *
 * Cost: the metadata is looked at again only when the member's
 * subscription changed or the shard's topic table did since the group last
 * looked (O(subscribed names)); a target assignment runs once per group
 * epoch, not per heartbeat (O(members log members + partitions)); a
 * reconciliation runs only for a member that is not yet stable at the
 * assignment epoch (O(its partitions)).
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* ---- subscription metadata ---- */

static int meta_cmp(const void *a, const void *b)
{
	const struct cgrec_topic *x = a, *y = b;
	int32_t n = x->name.len < y->name.len ? x->name.len : y->name.len;
	int c = n > 0 ? memcmp(x->name.ptr, y->name.ptr, (size_t)n) : 0;
	return c != 0 ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* Add topic `name` to t[] if it exists (names point at the shard's
 * topic table, copied only if the metadata is kept). */
static void meta_add(struct group_coord *gc, struct cgrec_topic *t, int32_t *n, struct kstr name)
{
	struct topic_state *ts = shard_topic_find(gc->sh, name);
	if (ts == NULL)
		return;
	t[(*n)++] = (struct cgrec_topic){ ts->meta->id, kstr_from(ts->meta->name), ts->n_parts };
}

static bool meta_equal(const struct cgrec_topic *a, int32_t na, const struct cgrec_topic *b, int32_t nb)
{
	if (na != nb)
		return false;
	for (int32_t i = 0; i < na; i++)
		if (memcmp(a[i].id.b, b[i].id.b, 16) != 0 || !kstr_eq(a[i].name, b[i].name) ||
		    a[i].n_parts != b[i].n_parts)
			return false;
	return true;
}

bool cgroup_meta_refresh(struct group_coord *gc, struct group *g, bool *oom)
{
	struct cgroup *cg = g->cg;
	cgroup_regexes_refresh(gc, cg);
	int64_t cap = cg->subs.count;
	for (struct strmap_node *n = strmap_first(&cg->regexes); n != NULL;
	     n = strmap_next(&cg->regexes, n))
		cap += container_of(n, struct cg_regex, node)->n_topics;
	struct cgrec_topic *t = cap > 0 ? malloc(sizeof(*t) * (size_t)cap) : NULL;
	if (cap > 0 && t == NULL) {
		*oom = true;
		return false;
	}
	int32_t n = 0;
	for (struct strmap_node *s = strmap_first(&cg->subs); s != NULL; s = strmap_next(&cg->subs, s)) {
		const struct cg_sub *sub = container_of(s, struct cg_sub, node);
		meta_add(gc, t, &n, (struct kstr){ sub->name, sub->len });
	}
	for (struct strmap_node *s = strmap_first(&cg->regexes); s != NULL;
	     s = strmap_next(&cg->regexes, s)) {
		const struct cg_regex *r = container_of(s, struct cg_regex, node);
		for (int32_t i = 0; i < r->n_topics; i++)
			meta_add(gc, t, &n, r->topics[i]);
	}
	if (n > 1)
		qsort(t, (size_t)n, sizeof(*t), meta_cmp);
	int32_t w = 0;
	for (int32_t i = 0; i < n; i++)
		if (w == 0 || !kstr_eq(t[w - 1].name, t[i].name))
			t[w++] = t[i];
	cg->meta_version = gc->topics_version;
	if (meta_equal(t, w, cg->meta, cg->n_meta)) {
		free(t);
		return false;
	}
	for (int32_t i = 0; i < w; i++) {
		t[i].name = gstr_dup(t[i].name);
		if (t[i].name.len < 0) {
			for (int32_t k = 0; k < i; k++)
				gstr_free(&t[k].name);
			free(t);
			*oom = true;
			return false;
		}
	}
	for (int32_t i = 0; i < cg->n_meta; i++)
		gstr_free(&cg->meta[i].name);
	group_mem(gc, (int64_t)(sizeof(*t) * ((size_t)w - (size_t)cg->n_meta)));
	free(cg->meta);
	cg->meta = t;
	cg->n_meta = w;
	return true;
}

struct kstr cgroup_topic_name(struct group_coord *gc, struct kuuid id)
{
	struct topic_state *ts = shard_topic_find_id(gc->sh, id);
	return ts != NULL ? kstr_from(ts->meta->name) : KSTR("");
}

/* ---- target assignment ---- */

static int member_id_cmp(const void *a, const void *b)
{
	const struct cmember *x = *(struct cmember *const *)a, *y = *(struct cmember *const *)b;
	int32_t n = x->id.len < y->id.len ? x->id.len : y->id.len;
	int c = memcmp(x->id.ptr, y->id.ptr, (size_t)n);
	return c != 0 ? c : (x->id.len > y->id.len) - (x->id.len < y->id.len);
}

/* A topic of the metadata by id: (id, index), sorted by id. */
struct id_index {
	struct kuuid id;
	int32_t idx;
};

static int id_index_cmp(const void *a, const void *b)
{
	return memcmp(((const struct id_index *)a)->id.b, ((const struct id_index *)b)->id.b, 16);
}

static int tp_idx_cmp(const void *a, const void *b)
{
	const struct gassign_tp *x = a, *y = b;
	if (x->topic != y->topic)
		return x->topic < y->topic ? -1 : 1;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static int int32_cmp(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

/* The metadata index of a topic name, or -1. */
static int32_t meta_index(const struct cgroup *cg, struct kstr name)
{
	struct cgrec_topic key = { .name = name };
	if (cg->n_meta == 0)
		return -1;
	const struct cgrec_topic *t = bsearch(&key, cg->meta, (size_t)cg->n_meta, sizeof(*cg->meta),
					   meta_cmp);
	return t != NULL ? (int32_t)(t - cg->meta) : -1;
}

/* Everything one assignment run allocates. */
struct assign_run {
	struct cmember **members;
	struct gassign_member *am;
	int32_t *topics;           /* every member's topic indexes */
	struct gassign_tp *prev;   /* every member's previous target */
	struct id_index *by_id;
	int32_t *n_parts, *base, *owner;
	int32_t *counts;
	struct gtp **out;
};

static void assign_run_free(struct assign_run *r, int32_t n_members)
{
	if (r->out != NULL)
		for (int32_t i = 0; i < n_members; i++)
			free(r->out[i]);
	free(r->members);
	free(r->am);
	free(r->topics);
	free(r->prev);
	free(r->by_id);
	free(r->n_parts);
	free(r->base);
	free(r->owner);
	free(r->counts);
	free(r->out);
}

/* The assignor's input: members sorted by id with their topic indexes and
 * previous targets. 0 or -1. */
static int assign_input(struct cgroup *cg, struct assign_run *r, int64_t *total_parts)
{
	int32_t nm = cg->n_members, nt = cg->n_meta;
	int64_t n_links = 0, n_prev = 0;
	int32_t k = 0;
	for (struct cmember *m = cg->head; m != NULL; m = m->next) {
		n_links += m->n_topics + (m->regex != NULL ? m->regex->n_topics : 0);
		n_prev += m->target.n;
		r->members[k++] = m;
	}
	qsort(r->members, (size_t)nm, sizeof(*r->members), member_id_cmp);
	r->topics = malloc(sizeof(int32_t) * (size_t)(n_links > 0 ? n_links : 1));
	r->prev = malloc(sizeof(*r->prev) * (size_t)(n_prev > 0 ? n_prev : 1));
	r->by_id = malloc(sizeof(*r->by_id) * (size_t)(nt > 0 ? nt : 1));
	r->n_parts = malloc(sizeof(int32_t) * (size_t)(nt > 0 ? nt : 1));
	r->base = malloc(sizeof(int32_t) * (size_t)(nt > 0 ? nt : 1));
	if (r->topics == NULL || r->prev == NULL || r->by_id == NULL || r->n_parts == NULL ||
	    r->base == NULL)
		return -1;
	int64_t total = 0;
	for (int32_t t = 0; t < nt; t++) {
		r->by_id[t] = (struct id_index){ cg->meta[t].id, t };
		r->n_parts[t] = cg->meta[t].n_parts;
		r->base[t] = (int32_t)total;
		total += cg->meta[t].n_parts;
	}
	qsort(r->by_id, (size_t)nt, sizeof(*r->by_id), id_index_cmp);
	int64_t lk = 0, pk = 0;
	for (int32_t i = 0; i < nm; i++) {
		const struct cmember *m = r->members[i];
		struct gassign_member *a = &r->am[i];
		a->topics = &r->topics[lk];
		for (int32_t j = 0; j < m->n_topics; j++) {
			int32_t idx = meta_index(cg, m->topics[j]);
			if (idx >= 0)
				r->topics[lk + a->n_topics++] = idx;
		}
		for (int32_t j = 0; m->regex != NULL && j < m->regex->n_topics; j++) {
			int32_t idx = meta_index(cg, m->regex->topics[j]);
			if (idx >= 0)
				r->topics[lk + a->n_topics++] = idx;
		}
		qsort(&r->topics[lk], (size_t)a->n_topics, sizeof(int32_t), int32_cmp);
		int32_t w = 0;
		for (int32_t j = 0; j < a->n_topics; j++)
			if (w == 0 || r->topics[lk + w - 1] != r->topics[lk + j])
				r->topics[lk + w++] = r->topics[lk + j];
		a->n_topics = w;
		lk += w;
		a->prev = &r->prev[pk];
		for (int32_t j = 0; j < m->target.n; j++) {
			struct id_index key = { m->target.v[j].topic, 0 };
			const struct id_index *x = nt == 0 ? NULL
							   : bsearch(&key, r->by_id, (size_t)nt,
								     sizeof(*r->by_id), id_index_cmp);
			if (x != NULL)
				r->prev[pk + a->n_prev++] =
					(struct gassign_tp){ x->idx, m->target.v[j].partition };
		}
		qsort(&r->prev[pk], (size_t)a->n_prev, sizeof(*r->prev), tp_idx_cmp);
		pk += a->n_prev;
	}
	*total_parts = total;
	return 0;
}

/* The assignor's owner[] as one set per member: topics in id order and
 * partitions ascending make each member's list sorted already. */
static int assign_output(struct cgroup *cg, struct assign_run *r)
{
	int32_t nm = cg->n_members, nt = cg->n_meta;
	r->counts = calloc((size_t)nm, sizeof(int32_t));
	r->out = calloc((size_t)nm, sizeof(*r->out));
	if (r->counts == NULL || r->out == NULL)
		return -1;
	for (int32_t t = 0; t < nt; t++)
		for (int32_t p = 0; p < r->n_parts[t]; p++) {
			int32_t o = r->owner[r->base[t] + p];
			if (o >= 0)
				r->counts[o]++;
		}
	for (int32_t i = 0; i < nm; i++) {
		if (r->counts[i] == 0)
			continue;
		r->out[i] = malloc(sizeof(struct gtp) * (size_t)r->counts[i]);
		if (r->out[i] == NULL)
			return -1;
		r->counts[i] = 0;
	}
	for (int32_t k = 0; k < nt; k++) {
		int32_t t = r->by_id[k].idx;
		for (int32_t p = 0; p < r->n_parts[t]; p++) {
			int32_t o = r->owner[r->base[t] + p];
			if (o >= 0)
				r->out[o][r->counts[o]++] = (struct gtp){ cg->meta[t].id, p };
		}
	}
	return 0;
}

int cgroup_assign(struct group_coord *gc, struct group *g)
{
	struct cgroup *cg = g->cg;
	int32_t nm = cg->n_members;
	struct assign_run r;
	memset(&r, 0, sizeof(r));
	int64_t total = 0;
	r.members = malloc(sizeof(*r.members) * (size_t)(nm > 0 ? nm : 1));
	r.am = calloc((size_t)(nm > 0 ? nm : 1), sizeof(*r.am));
	if (r.members == NULL || r.am == NULL || assign_input(cg, &r, &total) != 0) {
		assign_run_free(&r, 0);
		return -1;
	}
	r.owner = malloc(sizeof(int32_t) * (size_t)(total > 0 ? total : 1));
	int which = cgroup_preferred_assignor(gc, cg);
	struct gassign a = { .members = r.am, .n_members = nm, .n_parts = r.n_parts,
			     .n_topics = cg->n_meta, .base = r.base, .owner = r.owner };
	if (r.owner == NULL || gassign_run(&a, which) != 0 || assign_output(cg, &r) != 0) {
		assign_run_free(&r, nm);
		return -1;
	}
	int32_t moved = 0;
	for (int32_t i = 0; i < nm; i++) {
		struct cmember *m = r.members[i];
		struct gtpset s = { r.out[i], r.counts[i] };
		if (gtpset_eq(&s, &m->target))
			continue;
		r.out[i] = NULL; /* taken by the member */
		if (s.n == 0) {
			free(s.v);
			s.v = NULL;
		}
		cmember_set_target(gc, m, s);
		cgstore_target(gc, g, m);
		cgstore_maybe_cut(gc, g);
		moved++;
	}
	cg->assignment_epoch = cg->epoch;
	cgstore_target_epoch(gc, g);
	for (struct cmember *m = cg->head; m != NULL; m = m->next)
		cmember_update_reconciled(cg, m);
	gc->stats.cg_assignments++;
	say_info("group %.*s: target assignment for epoch %d with the %s assignor: %d members, "
		 "%lld partitions, %d new targets", g->id.len, g->id.ptr, cg->epoch,
		 gassignor_name(which), nm, (long long)total, moved);
	assign_run_free(&r, nm);
	return 0;
}

/* ---- reconciliation ---- */

struct taken_arg {
	struct cgroup *cg;
	struct cmember *self;
};

static bool taken_cb(void *arg, const struct gtp *tp)
{
	struct taken_arg *t = arg;
	return cgroup_taken(t->cg, t->self, tp);
}

int cmember_reconcile(struct group_coord *gc, struct group *g, struct cmember *m,
		      const struct gtpset *owned, bool *assigned_changed)
{
	struct cgroup *cg = g->cg;
	*assigned_changed = false;
	if (m->state == CM_STABLE && m->epoch == cg->assignment_epoch)
		return 0;
	struct taken_arg ta = { cg, m };
	struct creconcile r = { .epoch = m->epoch, .state = m->state, .assigned = &m->assigned,
				.revoking = &m->revoking, .target_epoch = cg->assignment_epoch,
				.target = &m->target, .owned = owned, .taken = taken_cb,
				.arg = &ta };
	int rc = creconcile_run(&r);
	if (rc != 0 || !r.changed)
		return rc;
	*assigned_changed = !gtpset_eq(&r.new_assigned, &m->assigned);
	cmember_set_current(gc, g, m, r.new_epoch, r.new_prev_epoch, r.new_state, r.new_assigned,
			    r.new_revoking);
	cgstore_current(gc, g, m);
	if (m->state == CM_UNREVOKED_PARTITIONS) {
		/* Kafka's rebalance timeout: a member that does not give its
		 * partitions up within its rebalance timeout is fenced. */
		m->rebalance_epoch = m->epoch;
		gtimer_set(gc, &m->rebalance, gc->sh->now_ms + (m->rebalance_timeout_ms > 0
								 ? m->rebalance_timeout_ms : 0));
	} else {
		gtimer_cancel(gc, &m->rebalance);
	}
	return 0;
}

/*
 * group_cmember: a KIP-848 consumer group's members as the coordinator
 * keeps them, and what the group derives from them as they change: who is
 * static (instance id map), which topic names and regexes are subscribed
 * (with member counts, for the subscription metadata and for "is the
 * group subscribed to this topic"), which member owns which partition
 * (for revoke-before-assign), the assignors members ask for, and how many
 * members are reconciled (for the group's state). Every counter moves with
 * the member field it counts, so none of these needs a walk of the
 * members.
 *
 * Memory: members and their strings and sets are malloc'ed and charged to
 * the shard's budget (group_mem) as they change.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "group_int.h"
#include "say.h"

/* ---- the group ---- */

static const char *const cgroup_state_names[] = {
	[CG_EMPTY] = "Empty",
	[CG_ASSIGNING] = "Assigning",
	[CG_RECONCILING] = "Reconciling",
	[CG_STABLE] = "Stable",
};

const char *cgroup_state_name(enum cgroup_state s)
{
	return cgroup_state_names[s];
}

enum cgroup_state cgroup_state(const struct group *g)
{
	const struct cgroup *cg = g->cg;
	if (cg == NULL || cg->n_members == 0)
		return CG_EMPTY;
	if (cg->epoch > cg->assignment_epoch)
		return CG_ASSIGNING;
	return cg->n_reconciled < cg->n_members ? CG_RECONCILING : CG_STABLE;
}

struct cgroup *cgroup_new(struct group_coord *gc)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (cg == NULL)
		return NULL;
	strmap_init(&cg->members);
	strmap_init(&cg->statics);
	strmap_init(&cg->subs);
	strmap_init(&cg->regexes);
	strmap_init(&cg->owners);
	cg->mem_bytes = sizeof(*cg);
	group_mem(gc, (int64_t)cg->mem_bytes);
	return cg;
}

int cgroup_attach(struct group_coord *gc, struct group *g)
{
	struct cgroup *cg = cgroup_new(gc);
	if (cg == NULL)
		return -1;
	g->cg = cg;
	g->type = GROUP_TYPE_CONSUMER;
	/* The classic group's metadata goes: only its offsets stay (they
	 * belong to the group id, whatever protocol it speaks). */
	gstr_free(&g->protocol_type);
	gstr_free(&g->protocol);
	g->generation = 0;
	return 0;
}

static void meta_free(struct group_coord *gc, struct cgroup *cg)
{
	for (int32_t i = 0; i < cg->n_meta; i++)
		gstr_free(&cg->meta[i].name);
	group_mem(gc, -(int64_t)(sizeof(*cg->meta) * (size_t)cg->n_meta));
	free(cg->meta);
	cg->meta = NULL;
	cg->n_meta = 0;
}

void cgroup_free(struct group_coord *gc, struct group *g)
{
	struct cgroup *cg = g->cg;
	if (cg == NULL)
		return;
	while (cg->head != NULL)
		cmember_remove(gc, g, cg->head);
	meta_free(gc, cg);
	/* With no members left, no name, regex or partition is counted. */
	strmap_free(&cg->members);
	strmap_free(&cg->statics);
	strmap_free(&cg->subs);
	strmap_free(&cg->regexes);
	strmap_free(&cg->owners);
	group_mem(gc, -(int64_t)cg->mem_bytes);
	free(cg);
	g->cg = NULL;
	g->type = GROUP_TYPE_CLASSIC;
}

/* ---- lookups ---- */

struct cmember *cmember_find(struct cgroup *cg, struct kstr id)
{
	if (id.len <= 0)
		return NULL;
	struct strmap_node *n = strmap_find(&cg->members, id.ptr, (size_t)id.len);
	return n == NULL ? NULL : container_of(n, struct cmember, by_id);
}

struct cmember *cmember_static(struct cgroup *cg, struct kstr instance_id)
{
	if (instance_id.len < 0)
		return NULL;
	struct strmap_node *n = strmap_find(&cg->statics, instance_id.ptr, (size_t)instance_id.len);
	return n == NULL ? NULL : container_of(n, struct cmember, by_instance);
}

bool cgroup_taken(struct cgroup *cg, struct cmember *self, const struct gtp *tp)
{
	struct strmap_node *n = strmap_find(&cg->owners, tp, sizeof(*tp));
	return n != NULL && container_of(n, struct cg_owner, node)->m != self;
}

/* ---- memory ---- */

static size_t kstr_bytes(struct kstr s)
{
	return s.len > 0 ? (size_t)s.len : 0;
}

/* Charge what m holds now (its struct, strings and sets). */
static void cmember_recharge(struct group_coord *gc, struct cmember *m)
{
	size_t n = sizeof(*m) + kstr_bytes(m->id) + kstr_bytes(m->instance_id) +
		   kstr_bytes(m->rack_id) + kstr_bytes(m->client_id) + kstr_bytes(m->client_host) +
		   sizeof(struct gtp) * (size_t)(m->assigned.n + m->revoking.n + m->target.n);
	for (int32_t i = 0; i < m->n_topics; i++)
		n += sizeof(struct kstr) + kstr_bytes(m->topics[i]);
	group_mem(gc, (int64_t)n - (int64_t)m->mem_bytes);
	m->mem_bytes = n;
}

/* ---- counted subscriptions ---- */

static void subs_count(struct group_coord *gc, struct cgroup *cg, struct kstr name, int delta)
{
	struct strmap_node *n = strmap_find(&cg->subs, name.ptr, (size_t)name.len);
	struct cg_sub *s = n != NULL ? container_of(n, struct cg_sub, node) : NULL;
	if (s == NULL) {
		if (delta < 0)
			return;
		s = malloc(sizeof(*s) + (size_t)name.len);
		if (s == NULL)
			return; /* "subscribed" then errs towards no: offsets may expire early */
		s->count = 0;
		s->len = name.len;
		memcpy(s->name, name.ptr, (size_t)name.len);
		if (strmap_insert(&cg->subs, &s->node, s->name, (size_t)s->len) != 0) {
			free(s);
			return;
		}
		group_mem(gc, (int64_t)(sizeof(*s) + (size_t)s->len));
	}
	s->count += delta;
	if (s->count <= 0) {
		strmap_remove(&cg->subs, &s->node);
		group_mem(gc, -(int64_t)(sizeof(*s) + (size_t)s->len));
		free(s);
	}
}

static void topics_count(struct group_coord *gc, struct cgroup *cg, const struct cmember *m,
			 int delta)
{
	for (int32_t i = 0; i < m->n_topics; i++)
		subs_count(gc, cg, m->topics[i], delta);
}

static void regex_free(struct group_coord *gc, struct cg_regex *r)
{
	if (r->re != NULL) {
		regfree(r->re);
		free(r->re);
	}
	free(r->topics);
	group_mem(gc, -(int64_t)(sizeof(*r) + (size_t)r->len));
	free(r);
}

static void regex_unref(struct group_coord *gc, struct cgroup *cg, struct cg_regex *r)
{
	if (r == NULL || --r->count > 0)
		return;
	strmap_remove(&cg->regexes, &r->node);
	regex_free(gc, r);
}

/* Match one name against r, as Kafka's Pattern.matcher(name).matches():
 * the whole name. */
static bool regex_matches(const struct cg_regex *r, const char *name)
{
	regmatch_t m;
	if (regexec(r->re, name, 1, &m, 0) != 0)
		return false;
	return m.rm_so == 0 && (size_t)m.rm_eo == strlen(name);
}

static int kstr_cmp(const void *a, const void *b)
{
	const struct kstr *x = a, *y = b;
	int32_t n = x->len < y->len ? x->len : y->len;
	int c = n > 0 ? memcmp(x->ptr, y->ptr, (size_t)n) : 0;
	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Is key among v[0..n) (sorted)? */
static const struct kstr *kstr_find(const struct kstr *v, int32_t n, struct kstr key)
{
	if (n <= 0)
		return NULL;
	return bsearch(&key, v, (size_t)n, sizeof(*v), kstr_cmp);
}

/* The topics of the shard's table that r matches (internal topics are
 * not offered to consumers). */
static void regex_resolve(struct group_coord *gc, struct cg_regex *r)
{
	struct shard *sh = gc->sh;
	int32_t n = 0;
	size_t bytes = 0;
	for (struct topic_state *ts = sh->topics_head; ts != NULL; ts = ts->list_next)
		if (!group_topic_is_internal(ts->meta->name) && regex_matches(r, ts->meta->name)) {
			n++;
			bytes += strlen(ts->meta->name);
		}
	struct kstr *t = n > 0 ? malloc(sizeof(*t) * (size_t)n + bytes) : NULL;
	if (n > 0 && t == NULL)
		return; /* the previous resolution stays; tried again next time */
	char *data = (char *)(t + n);
	int32_t k = 0;
	for (struct topic_state *ts = sh->topics_head; ts != NULL && k < n; ts = ts->list_next)
		if (!group_topic_is_internal(ts->meta->name) && regex_matches(r, ts->meta->name)) {
			size_t len = strlen(ts->meta->name);
			memcpy(data, ts->meta->name, len);
			t[k++] = (struct kstr){ data, (int32_t)len };
			data += len;
		}
	if (k > 1)
		qsort(t, (size_t)k, sizeof(*t), kstr_cmp);
	free(r->topics);
	r->topics = t;
	r->n_topics = k;
	r->version = gc->topics_version;
}

void cgroup_regexes_refresh(struct group_coord *gc, struct cgroup *cg)
{
	for (struct strmap_node *n = strmap_first(&cg->regexes); n != NULL;
	     n = strmap_next(&cg->regexes, n)) {
		struct cg_regex *r = container_of(n, struct cg_regex, node);
		if (r->version != gc->topics_version || r->topics == NULL)
			regex_resolve(gc, r);
	}
}

/* The group's entry for this regex (one more member counted on it);
 * NULL without memory, or with *bad set when it does not compile. */
static struct cg_regex *regex_ref(struct group_coord *gc, struct cgroup *cg, struct kstr src,
				  bool *bad)
{
	struct strmap_node *n = strmap_find(&cg->regexes, src.ptr, (size_t)src.len);
	if (n != NULL) {
		struct cg_regex *r = container_of(n, struct cg_regex, node);
		r->count++;
		return r;
	}
	struct cg_regex *r = calloc(1, sizeof(*r) + (size_t)src.len + 1);
	regex_t *re = malloc(sizeof(*re));
	if (r == NULL || re == NULL) {
		free(r);
		free(re);
		return NULL;
	}
	/* Anchored in a group of its own, so "a|b" matches "a" or "b" whole. */
	char *pat = malloc((size_t)src.len + 5);
	if (pat == NULL) {
		free(r);
		free(re);
		return NULL;
	}
	memcpy(pat, "^(", 2);
	memcpy(pat + 2, src.ptr, (size_t)src.len);
	memcpy(pat + 2 + src.len, ")$", 3);
	int rc = regcomp(re, pat, REG_EXTENDED);
	free(pat);
	if (rc != 0) {
		*bad = true;
		free(r);
		free(re);
		return NULL;
	}
	r->re = re;
	r->len = src.len;
	memcpy(r->src, src.ptr, (size_t)src.len);
	if (strmap_insert(&cg->regexes, &r->node, r->src, (size_t)r->len) != 0) {
		regex_free(gc, r);
		return NULL;
	}
	group_mem(gc, (int64_t)(sizeof(*r) + (size_t)r->len));
	r->count = 1;
	regex_resolve(gc, r);
	return r;
}

bool cgroup_subscribed_to(struct group_coord *gc, struct group *g, struct kstr topic)
{
	struct cgroup *cg = g->cg;
	if (cg == NULL || topic.len <= 0)
		return false;
	if (strmap_find(&cg->subs, topic.ptr, (size_t)topic.len) != NULL)
		return true;
	cgroup_regexes_refresh(gc, cg);
	for (struct strmap_node *n = strmap_first(&cg->regexes); n != NULL;
	     n = strmap_next(&cg->regexes, n)) {
		const struct cg_regex *r = container_of(n, struct cg_regex, node);
		if (kstr_find(r->topics, r->n_topics, topic) != NULL)
			return true;
	}
	return false;
}

/* ---- members ---- */

struct cmember *cmember_new(struct group_coord *gc, struct group *g, struct kstr id)
{
	struct cmember *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->id = gstr_dup(id);
	if (m->id.len <= 0) { /* no memory (an empty id is refused before) */
		free(m);
		return NULL;
	}
	m->g = g;
	m->instance_id = m->rack_id = KSTR_NULL;
	m->client_id = gstr_dup(KSTR("")); /* the shared "", which gstr_free leaves */
	m->client_host = gstr_dup(KSTR(""));
	m->assignor = -1;
	m->rebalance_timeout_ms = -1;
	m->state = CM_STABLE;
	gtimer_init(&m->session, GT_CSESSION);
	gtimer_init(&m->rebalance, GT_CREBALANCE);
	cmember_recharge(gc, m);
	return m;
}

void cmember_update_reconciled(struct cgroup *cg, struct cmember *m)
{
	bool r = m->state == CM_STABLE && m->epoch == cg->assignment_epoch;
	if (m->linked && r != m->reconciled)
		cg->n_reconciled += r ? 1 : -1;
	m->reconciled = r;
}

static void owners_add(struct group_coord *gc, struct cgroup *cg, struct cmember *m,
		       const struct gtpset *s)
{
	for (int32_t i = 0; i < s->n; i++) {
		struct strmap_node *n = strmap_find(&cg->owners, &s->v[i], sizeof(s->v[i]));
		if (n != NULL) {
			/* Reconciliation never gives a taken partition; a
			 * loaded log could (a member's tombstone lost): the
			 * later claim wins, the earlier owner keeps it in its
			 * own sets until it reconciles. */
			container_of(n, struct cg_owner, node)->m = m;
			continue;
		}
		struct cg_owner *o = malloc(sizeof(*o));
		if (o == NULL)
			continue; /* then only the owner's own sets say it is owned */
		o->tp = s->v[i];
		o->m = m;
		if (strmap_insert(&cg->owners, &o->node, &o->tp, sizeof(o->tp)) != 0) {
			free(o);
			continue;
		}
		group_mem(gc, (int64_t)sizeof(*o));
	}
}

static void owners_drop(struct group_coord *gc, struct cgroup *cg, struct cmember *m,
			const struct gtpset *s)
{
	for (int32_t i = 0; i < s->n; i++) {
		struct strmap_node *n = strmap_find(&cg->owners, &s->v[i], sizeof(s->v[i]));
		if (n == NULL)
			continue;
		struct cg_owner *o = container_of(n, struct cg_owner, node);
		if (o->m != m)
			continue;
		strmap_remove(&cg->owners, &o->node);
		free(o);
		group_mem(gc, -(int64_t)sizeof(*o));
	}
}

static void votes_count(struct cgroup *cg, const struct cmember *m, int delta)
{
	if (m->assignor >= 0 && m->assignor < GASSIGN_COUNT)
		cg->assignor_votes[m->assignor] += delta;
}

int cmember_link(struct group_coord *gc, struct group *g, struct cmember *m)
{
	struct cgroup *cg = g->cg;
	if (m->linked)
		return 0;
	if (strmap_insert(&cg->members, &m->by_id, m->id.ptr, (size_t)m->id.len) != 0)
		return -1;
	if (m->instance_id.len >= 0 && cmember_static(cg, m->instance_id) == NULL)
		strmap_insert(&cg->statics, &m->by_instance, m->instance_id.ptr,
			      (size_t)m->instance_id.len);
	m->linked = true;
	m->prev = NULL;
	m->next = cg->head;
	if (cg->head != NULL)
		cg->head->prev = m;
	cg->head = m;
	cg->n_members++;
	m->reconciled = false;
	cmember_update_reconciled(cg, m);
	topics_count(gc, cg, m, +1);
	if (m->regex != NULL)
		m->regex->count++;
	votes_count(cg, m, +1);
	owners_add(gc, cg, m, &m->assigned);
	owners_add(gc, cg, m, &m->revoking);
	if (g->state == GROUP_EMPTY)
		group_set_state(g, GROUP_STABLE);
	return 0;
}

void cmember_remove(struct group_coord *gc, struct group *g, struct cmember *m)
{
	struct cgroup *cg = g->cg;
	gtimer_cancel(gc, &m->session);
	gtimer_cancel(gc, &m->rebalance);
	if (m->linked) {
		owners_drop(gc, cg, m, &m->assigned);
		owners_drop(gc, cg, m, &m->revoking);
		strmap_remove(&cg->members, &m->by_id);
		if (m->instance_id.len >= 0 && cmember_static(cg, m->instance_id) == m)
			strmap_remove(&cg->statics, &m->by_instance);
		if (m->prev != NULL)
			m->prev->next = m->next;
		else
			cg->head = m->next;
		if (m->next != NULL)
			m->next->prev = m->prev;
		cg->n_members--;
		if (m->reconciled)
			cg->n_reconciled--;
		topics_count(gc, cg, m, -1);
		regex_unref(gc, cg, m->regex);
		votes_count(cg, m, -1);
		if (cg->n_members == 0 && g->state != GROUP_DEAD)
			group_set_state(g, GROUP_EMPTY);
	} else if (m->regex != NULL && m->regex->count == 0) {
		strmap_remove(&cg->regexes, &m->regex->node);
		regex_free(gc, m->regex);
	}
	gstr_free(&m->id);
	gstr_free(&m->instance_id);
	gstr_free(&m->rack_id);
	gstr_free(&m->client_id);
	gstr_free(&m->client_host);
	free(m->topics);
	gtpset_free(&m->assigned);
	gtpset_free(&m->revoking);
	gtpset_free(&m->target);
	group_mem(gc, -(int64_t)m->mem_bytes);
	free(m);
}

int cmember_set_str(struct group_coord *gc, struct cmember *m, struct kstr *field, struct kstr s)
{
	if (kstr_eq(*field, s) && (field->len < 0) == (s.len < 0))
		return 0;
	struct kstr copy = gstr_dup(s);
	if (copy.len < -1)
		return -1;
	bool instance = field == &m->instance_id;
	struct cgroup *cg = m->g->cg;
	if (instance && m->linked && m->instance_id.len >= 0 &&
	    cmember_static(cg, m->instance_id) == m)
		strmap_remove(&cg->statics, &m->by_instance);
	gstr_free(field);
	*field = copy;
	if (instance && m->linked && m->instance_id.len >= 0 &&
	    cmember_static(cg, m->instance_id) == NULL)
		strmap_insert(&cg->statics, &m->by_instance, m->instance_id.ptr,
			      (size_t)m->instance_id.len);
	cmember_recharge(gc, m);
	return 0;
}

bool cmember_topics_equal(const struct cmember *m, const struct kstr *names, int32_t n)
{
	/* names may be in any order and repeat: equal as sets when each is
	 * one of m's and every one of m's is named. */
	if (n < m->n_topics)
		return false;
	/* Marks of m's names seen, on the stack for the usual few. */
	enum { SEEN_ON_STACK = 512 };
	uint8_t small[SEEN_ON_STACK];
	uint8_t *seen = m->n_topics <= (int32_t)sizeof(small) ? small : calloc((size_t)m->n_topics, 1);
	if (seen == NULL)
		return false; /* treated as a change: the subscription is replaced */
	memset(seen, 0, m->n_topics <= (int32_t)sizeof(small) ? sizeof(small) : 0);
	int32_t distinct = 0;
	bool equal = true;
	for (int32_t i = 0; i < n && equal; i++) {
		const struct kstr *t = kstr_find(m->topics, m->n_topics, names[i]);
		if (t == NULL) {
			equal = false;
		} else if (!seen[t - m->topics]) {
			seen[t - m->topics] = 1;
			distinct++;
		}
	}
	if (seen != small)
		free(seen);
	return equal && distinct == m->n_topics;
}

int cmember_set_topics(struct group_coord *gc, struct group *g, struct cmember *m,
		       const struct kstr *names, int32_t n)
{
	size_t bytes = 0;
	for (int32_t i = 0; i < n; i++)
		bytes += kstr_bytes(names[i]);
	struct kstr *t = n > 0 ? malloc(sizeof(*t) * (size_t)n + bytes) : NULL;
	if (n > 0 && t == NULL)
		return -1;
	char *data = (char *)(t + n);
	for (int32_t i = 0; i < n; i++) {
		int32_t len = names[i].len > 0 ? names[i].len : 0;
		if (len > 0)
			memcpy(data, names[i].ptr, (size_t)len);
		t[i] = (struct kstr){ data, len };
		data += len;
	}
	if (n > 1)
		qsort(t, (size_t)n, sizeof(*t), kstr_cmp);
	int32_t w = 0;
	for (int32_t i = 0; i < n; i++)
		if (t[i].len > 0 && (w == 0 || !kstr_eq(t[w - 1], t[i])))
			t[w++] = t[i];
	if (m->linked)
		topics_count(gc, g->cg, m, -1);
	free(m->topics);
	m->topics = t;
	m->n_topics = w;
	if (m->linked)
		topics_count(gc, g->cg, m, +1);
	cmember_recharge(gc, m);
	return 0;
}

int cmember_set_regex(struct group_coord *gc, struct group *g, struct cmember *m, struct kstr regex)
{
	struct cgroup *cg = g->cg;
	struct cg_regex *r = NULL;
	if (regex.len > 0) {
		if (m->regex != NULL && m->regex->len == regex.len &&
		    memcmp(m->regex->src, regex.ptr, (size_t)regex.len) == 0)
			return 0;
		bool bad = false;
		r = regex_ref(gc, cg, regex, &bad);
		if (r == NULL)
			return bad ? -2 : -1;
		if (!m->linked)
			r->count--; /* counted when the member is linked */
	}
	if (m->linked)
		regex_unref(gc, cg, m->regex);
	m->regex = r;
	return 0;
}

void cmember_set_assignor(struct cgroup *cg, struct cmember *m, int8_t assignor)
{
	if (m->linked)
		votes_count(cg, m, -1);
	m->assignor = assignor;
	if (m->linked)
		votes_count(cg, m, +1);
}

void cmember_set_current(struct group_coord *gc, struct group *g, struct cmember *m, int32_t epoch,
			 int32_t prev_epoch, uint8_t state, struct gtpset assigned,
			 struct gtpset revoking)
{
	struct cgroup *cg = g->cg;
	if (m->linked) {
		owners_drop(gc, cg, m, &m->assigned);
		owners_drop(gc, cg, m, &m->revoking);
	}
	gtpset_free(&m->assigned);
	gtpset_free(&m->revoking);
	m->assigned = assigned;
	m->revoking = revoking;
	m->epoch = epoch;
	m->prev_epoch = prev_epoch;
	m->state = state;
	if (m->linked) {
		owners_add(gc, cg, m, &m->assigned);
		owners_add(gc, cg, m, &m->revoking);
	}
	cmember_update_reconciled(cg, m);
	cmember_recharge(gc, m);
}

void cmember_set_target(struct group_coord *gc, struct cmember *m, struct gtpset target)
{
	gtpset_free(&m->target);
	m->target = target;
	cmember_recharge(gc, m);
}

int cgroup_preferred_assignor(const struct group_coord *gc, const struct cgroup *cg)
{
	int best = -1;
	for (int i = 0; i < gc->n_assignors; i++) {
		int a = gc->assignors[i];
		if (cg->assignor_votes[a] > 0 && (best < 0 || cg->assignor_votes[a] > cg->assignor_votes[best]))
			best = a;
	}
	return best >= 0 ? best : gc->assignors[0];
}

/* ---- answers ---- */

int gtpset_runs(const struct gtpset *s, gtp_run_fn fn, void *arg)
{
	for (int32_t i = 0; i < s->n;) {
		int32_t j = i;
		while (j < s->n && memcmp(s->v[j].topic.b, s->v[i].topic.b, 16) == 0)
			j++;
		if (fn(arg, s->v[i].topic, &s->v[i], j - i) != 0)
			return -1;
		i = j;
	}
	return 0;
}

struct gtpset cg_set_copy(const struct gtpset *s)
{
	struct gtpset out;
	if (gtpset_copy(s, &out) != 0)
		out = (struct gtpset){ NULL, 0 };
	return out;
}

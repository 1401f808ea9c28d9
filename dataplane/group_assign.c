/*
 * group_assign: topic-partition sets, the uniform and range assignors and
 * member reconciliation. See group_assign.h.
 */
#include <stdlib.h>
#include <string.h>

#include "group_assign.h"
#include "limits.h"

/* ---- sets ---- */

int gtp_cmp(const struct gtp *a, const struct gtp *b)
{
	int c = memcmp(a->topic.b, b->topic.b, sizeof(a->topic.b));
	if (c != 0)
		return c;
	return a->partition < b->partition ? -1 : a->partition > b->partition;
}

static int gtp_qcmp(const void *a, const void *b)
{
	return gtp_cmp(a, b);
}

bool gtpset_has(const struct gtpset *s, const struct gtp *x)
{
	int32_t lo = 0, hi = s->n;
	while (lo < hi) {
		int32_t mid = lo + (hi - lo) / 2;
		int c = gtp_cmp(&s->v[mid], x);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool gtpset_eq(const struct gtpset *a, const struct gtpset *b)
{
	if (a->n != b->n)
		return false;
	return a->n == 0 || memcmp(a->v, b->v, sizeof(*a->v) * (size_t)a->n) == 0;
}

bool gtpset_intersects(const struct gtpset *a, const struct gtpset *b)
{
	int32_t i = 0, j = 0;
	while (i < a->n && j < b->n) {
		int c = gtp_cmp(&a->v[i], &b->v[j]);
		if (c == 0)
			return true;
		if (c < 0)
			i++;
		else
			j++;
	}
	return false;
}

void gtpset_free(struct gtpset *s)
{
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* One merge of a and b: keep elements in a only (KEEP_A), in both
 * (KEEP_BOTH), in b only (KEEP_B), in any combination. */
enum { KEEP_A = 1, KEEP_BOTH = 2, KEEP_B = 4 };

static int gtpset_merge(const struct gtpset *a, const struct gtpset *b, int keep,
			struct gtpset *out)
{
	out->v = NULL;
	out->n = 0;
	int32_t cap = (keep & KEEP_B) ? a->n + b->n : a->n;
	if (cap == 0)
		return 0;
	struct gtp *v = malloc(sizeof(*v) * (size_t)cap);
	if (v == NULL)
		return -1;
	int32_t i = 0, j = 0, n = 0;
	while (i < a->n || j < b->n) {
		int c = i >= a->n ? 1 : j >= b->n ? -1 : gtp_cmp(&a->v[i], &b->v[j]);
		if (c < 0) {
			if (keep & KEEP_A)
				v[n++] = a->v[i];
			i++;
		} else if (c > 0) {
			if (keep & KEEP_B)
				v[n++] = b->v[j];
			j++;
		} else {
			if (keep & KEEP_BOTH)
				v[n++] = a->v[i];
			i++;
			j++;
		}
	}
	if (n == 0) {
		free(v);
		v = NULL;
	}
	out->v = v;
	out->n = n;
	return 0;
}

int gtpset_inter(const struct gtpset *a, const struct gtpset *b, struct gtpset *out)
{
	return gtpset_merge(a, b, KEEP_BOTH, out);
}

int gtpset_diff(const struct gtpset *a, const struct gtpset *b, struct gtpset *out)
{
	return gtpset_merge(a, b, KEEP_A, out);
}

int gtpset_union(const struct gtpset *a, const struct gtpset *b, struct gtpset *out)
{
	return gtpset_merge(a, b, KEEP_A | KEEP_BOTH | KEEP_B, out);
}

int gtpset_copy(const struct gtpset *a, struct gtpset *out)
{
	static const struct gtpset empty;
	return gtpset_merge(a, &empty, KEEP_A, out);
}

void gtpset_adopt(struct gtpset *s, struct gtp *v, int32_t n)
{
	if (n > 1)
		qsort(v, (size_t)n, sizeof(*v), gtp_qcmp);
	int32_t w = 0;
	for (int32_t i = 0; i < n; i++)
		if (w == 0 || gtp_cmp(&v[w - 1], &v[i]) != 0)
			v[w++] = v[i];
	if (w == 0) {
		free(v);
		v = NULL;
	}
	s->v = v;
	s->n = w;
}

/* ---- assignors ---- */

static const char *const gassignor_names[GASSIGN_COUNT] = {
	[GASSIGN_UNIFORM] = "uniform",
	[GASSIGN_RANGE] = "range",
};

int gassignor_find(struct kstr name)
{
	for (int i = 0; i < GASSIGN_COUNT; i++)
		if (kstr_eq_cstr(name, gassignor_names[i]))
			return i;
	return -1;
}

const char *gassignor_name(int a)
{
	return a >= 0 && a < GASSIGN_COUNT ? gassignor_names[a] : "";
}

int gassignor_list_parse(const char *list, int8_t *out, int max)
{
	int n = 0;
	const char *p = list;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		const char *start = p;
		while (*p != '\0' && *p != ',' && *p != ' ')
			p++;
		if (p == start)
			continue;
		int a = gassignor_find((struct kstr){ start, (int32_t)(p - start) });
		if (a < 0 || n >= max)
			return -1;
		for (int i = 0; i < n; i++)
			if (out[i] == a)
				return -1;
		out[n++] = (int8_t)a;
	}
	return n > 0 ? n : -1;
}

static bool member_subscribes(const struct gassign_member *m, int32_t topic)
{
	int32_t lo = 0, hi = m->n_topics;
	while (lo < hi) {
		int32_t mid = lo + (hi - lo) / 2;
		if (m->topics[mid] == topic)
			return true;
		if (m->topics[mid] < topic)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* The first entry of m's previous target on topic t (prev is sorted). */
static int32_t prev_topic_start(const struct gassign_member *m, int32_t t)
{
	int32_t lo = 0, hi = m->n_prev;
	while (lo < hi) {
		int32_t mid = lo + (hi - lo) / 2;
		if (m->prev[mid].topic < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool subscriptions_equal(const struct gassign *a)
{
	const struct gassign_member *m0 = &a->members[0];
	for (int32_t i = 1; i < a->n_members; i++) {
		const struct gassign_member *m = &a->members[i];
		if (m->n_topics != m0->n_topics ||
		    (m->n_topics > 0 &&
		     memcmp(m->topics, m0->topics, sizeof(*m->topics) * (size_t)m->n_topics) != 0))
			return false;
	}
	return true;
}

/* Is previous entry tp still a valid partition for member m? */
static bool prev_valid(const struct gassign *a, const struct gassign_member *m,
		       const struct gassign_tp *tp)
{
	return tp->topic >= 0 && tp->topic < a->n_topics && tp->partition >= 0 &&
	       tp->partition < a->n_parts[tp->topic] && member_subscribes(m, tp->topic);
}

/* Uniform, every member on the same topics: a quota of total / members
 * each, the first total % members that reach it one more. Members keep
 * their previous partitions up to their quota (the extra ones go, in
 * member order, to those that had more); what is left is handed out in
 * topic and partition order to the members below their quota. */
static int uniform_homogeneous(struct gassign *a, int32_t *count)
{
	const struct gassign_member *m0 = &a->members[0];
	int64_t total = 0;
	for (int32_t i = 0; i < m0->n_topics; i++)
		total += a->n_parts[m0->topics[i]];
	int32_t n = a->n_members;
	int32_t quota = (int32_t)(total / n), extra = (int32_t)(total % n);
	bool *has_extra = calloc((size_t)n, sizeof(*has_extra));
	if (has_extra == NULL)
		return -1;
	for (int32_t i = 0; i < n; i++) {
		const struct gassign_member *m = &a->members[i];
		for (int32_t k = 0; k < m->n_prev; k++) {
			const struct gassign_tp *tp = &m->prev[k];
			if (!prev_valid(a, m, tp))
				continue;
			int32_t *o = &a->owner[a->base[tp->topic] + tp->partition];
			if (*o >= 0)
				continue;
			if (count[i] < quota) {
				*o = i;
				count[i]++;
			} else if (count[i] == quota && extra > 0 && !has_extra[i]) {
				*o = i;
				count[i]++;
				has_extra[i] = true;
				extra--;
			}
		}
	}
	/* Hand out the rest: first up to the quota, then the extras. */
	int32_t next_member = 0;
	for (int pass = 0; pass < 2; pass++) {
		next_member = 0;
		for (int32_t ti = 0; ti < m0->n_topics; ti++) {
			int32_t t = m0->topics[ti];
			for (int32_t p = 0; p < a->n_parts[t]; p++) {
				int32_t *o = &a->owner[a->base[t] + p];
				if (*o >= 0)
					continue;
				while (next_member < n) {
					int32_t i = next_member;
					if (pass == 0 ? count[i] < quota
						      : (count[i] == quota && extra > 0 && !has_extra[i]))
						break;
					next_member++;
				}
				if (next_member >= n)
					break;
				*o = next_member;
				count[next_member]++;
				if (pass == 1) {
					has_extra[next_member] = true;
					extra--;
				}
			}
		}
	}
	free(has_extra);
	return 0;
}

/* The subscriber of topic t with the fewest partitions (the first of
 * them), or -1. */
static int32_t least_loaded(const struct gassign *a, const int32_t *count, const int32_t *subs,
			    int32_t n_subs)
{
	int32_t best = -1;
	for (int32_t k = 0; k < n_subs; k++)
		if (best < 0 || count[subs[k]] < count[best])
			best = subs[k];
	(void)a;
	return best;
}

/* Topics by subscriber count, fewest first: the most constrained ones
 * are placed first. */
struct topic_order {
	int32_t topic, n_subs;
};

static int topic_order_cmp(const void *x, const void *y)
{
	const struct topic_order *a = x, *b = y;
	if (a->n_subs != b->n_subs)
		return a->n_subs < b->n_subs ? -1 : 1;
	return a->topic < b->topic ? -1 : a->topic > b->topic;
}

/* Uniform, members on different topics: keep every valid previous
 * partition, give each free one to its least loaded subscriber, then move
 * partitions from a subscriber to one with at least two fewer until no
 * such move is left (each move lowers the sum of squared counts, so this
 * ends; GASSIGN_BALANCE_PASSES_MAX bounds the passes). */
/* The subscribers of each topic, in member order: subs[base[t] ..
 * base[t + 1]) (a counting sort). 0, or -1 without memory. */
static int subscribers(const struct gassign *a, int32_t **base_out, int32_t **subs_out)
{
	int32_t n = a->n_members, nt = a->n_topics;
	int64_t n_links = 0;
	for (int32_t i = 0; i < n; i++)
		n_links += a->members[i].n_topics;
	int32_t *base = calloc((size_t)nt + 1, sizeof(int32_t));
	int32_t *fill = calloc((size_t)nt + 1, sizeof(int32_t));
	int32_t *subs = malloc(sizeof(int32_t) * (size_t)(n_links > 0 ? n_links : 1));
	if (base == NULL || fill == NULL || subs == NULL) {
		free(base);
		free(fill);
		free(subs);
		return -1;
	}
	for (int32_t i = 0; i < n; i++)
		for (int32_t k = 0; k < a->members[i].n_topics; k++)
			base[a->members[i].topics[k] + 1]++;
	for (int32_t t = 0; t < nt; t++)
		base[t + 1] += base[t];
	for (int32_t i = 0; i < n; i++)
		for (int32_t k = 0; k < a->members[i].n_topics; k++) {
			int32_t t = a->members[i].topics[k];
			subs[base[t] + fill[t]++] = i;
		}
	free(fill);
	*base_out = base;
	*subs_out = subs;
	return 0;
}

static int uniform_heterogeneous(struct gassign *a, int32_t *count)
{
	int32_t n = a->n_members, nt = a->n_topics;
	int32_t *subs_base, *subs;
	struct topic_order *order = malloc(sizeof(*order) * (size_t)(nt > 0 ? nt : 1));
	if (order == NULL || subscribers(a, &subs_base, &subs) != 0) {
		free(order);
		return -1;
	}
	for (int32_t i = 0; i < n; i++) {
		const struct gassign_member *m = &a->members[i];
		for (int32_t k = 0; k < m->n_prev; k++) {
			const struct gassign_tp *tp = &m->prev[k];
			if (!prev_valid(a, m, tp))
				continue;
			int32_t *o = &a->owner[a->base[tp->topic] + tp->partition];
			if (*o < 0) {
				*o = i;
				count[i]++;
			}
		}
	}
	for (int32_t t = 0; t < nt; t++)
		order[t] = (struct topic_order){ t, subs_base[t + 1] - subs_base[t] };
	qsort(order, (size_t)nt, sizeof(*order), topic_order_cmp);
	for (int32_t k = 0; k < nt; k++) {
		int32_t t = order[k].topic, ns = order[k].n_subs;
		if (ns == 0)
			continue;
		for (int32_t p = 0; p < a->n_parts[t]; p++) {
			int32_t *o = &a->owner[a->base[t] + p];
			if (*o >= 0)
				continue;
			*o = least_loaded(a, count, &subs[subs_base[t]], ns);
			count[*o]++;
		}
	}
	for (int pass = 0; pass < GASSIGN_BALANCE_PASSES_MAX; pass++) {
		bool moved = false;
		for (int32_t k = 0; k < nt; k++) {
			int32_t t = order[k].topic, ns = order[k].n_subs;
			for (int32_t p = 0; p < a->n_parts[t] && ns > 0; p++) {
				int32_t *o = &a->owner[a->base[t] + p];
				int32_t b = least_loaded(a, count, &subs[subs_base[t]], ns);
				if (*o >= 0 && count[b] + 1 < count[*o]) {
					count[*o]--;
					*o = b;
					count[b]++;
					moved = true;
				}
			}
		}
		if (!moved)
			break;
	}
	free(subs_base);
	free(order);
	free(subs);
	return 0;
}

/* Kafka's server-side RangeAssignor, topic by topic: with m subscribers
 * and n partitions each gets n / m, and n % m of them one more. In member
 * order, a member keeps its lowest previous partitions of the topic up to
 * n / m, and one more if it had more and extras remain; the partitions
 * left go out in ascending ranges, in member order, to the members still
 * short (each taking one of the remaining extras first). */
struct range_need {
	int32_t member, want;
};

static void range_topic(struct gassign *a, int32_t t, const int32_t *subs, int32_t ns,
			struct range_need *needs)
{
	int32_t np = a->n_parts[t];
	int32_t quota = np / ns, extra = np % ns, n_needs = 0;
	int32_t *owner = &a->owner[a->base[t]];
	for (int32_t k = 0; k < ns; k++) {
		int32_t i = subs[k];
		const struct gassign_member *m = &a->members[i];
		int32_t kept = 0, total = 0, spare = -1;
		for (int32_t j = prev_topic_start(m, t); j < m->n_prev && m->prev[j].topic == t; j++) {
			int32_t p = m->prev[j].partition;
			if (p < 0 || p >= np || owner[p] >= 0)
				continue;
			if (kept < quota) {
				owner[p] = i;
				kept++;
			} else if (spare < 0) {
				spare = p;
			}
			total++;
		}
		if (total > quota && extra > 0) {
			owner[spare] = i;
			extra--;
		} else {
			needs[n_needs++] = (struct range_need){ i, quota - total };
		}
	}
	int32_t next_p = 0;
	for (int32_t k = 0; k < n_needs; k++) {
		int32_t want = needs[k].want;
		if (extra > 0) {
			want++;
			extra--;
		}
		while (want > 0 && next_p < np) {
			if (owner[next_p] < 0) {
				owner[next_p] = needs[k].member;
				want--;
			}
			next_p++;
		}
	}
}

static int range_assign(struct gassign *a)
{
	int32_t n = a->n_members;
	int32_t *subs = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
	struct range_need *needs = malloc(sizeof(*needs) * (size_t)(n > 0 ? n : 1));
	if (subs == NULL || needs == NULL) {
		free(subs);
		free(needs);
		return -1;
	}
	for (int32_t t = 0; t < a->n_topics; t++) {
		int32_t ns = 0;
		for (int32_t i = 0; i < n; i++)
			if (member_subscribes(&a->members[i], t))
				subs[ns++] = i;
		if (ns > 0 && a->n_parts[t] > 0)
			range_topic(a, t, subs, ns, needs);
	}
	free(subs);
	free(needs);
	return 0;
}

int gassign_run(struct gassign *a, enum gassignor which)
{
	int64_t total = a->n_topics > 0 ? a->base[a->n_topics - 1] + a->n_parts[a->n_topics - 1] : 0;
	for (int64_t k = 0; k < total; k++)
		a->owner[k] = -1;
	if (a->n_members == 0 || total == 0)
		return 0;
	if (which == GASSIGN_RANGE)
		return range_assign(a);
	int32_t *count = calloc((size_t)a->n_members, sizeof(*count));
	if (count == NULL)
		return -1;
	int rc = subscriptions_equal(a) ? uniform_homogeneous(a, count)
					: uniform_heterogeneous(a, count);
	free(count);
	return rc;
}

/* ---- reconciliation ---- */

const char *cmember_state_name(int state)
{
	switch (state) {
	case CM_STABLE:
		return "stable";
	case CM_UNREVOKED_PARTITIONS:
		return "unrevoked_partitions";
	case CM_UNRELEASED_PARTITIONS:
		return "unreleased_partitions";
	default:
		return "unknown";
	}
}

/* Does the member's heartbeat still report one of these partitions? Not
 * saying counts as yes (Kafka's ownsRevokedPartitions). */
static bool owns_any(const struct creconcile *r, const struct gtpset *s)
{
	return r->owned == NULL || gtpset_intersects(r->owned, s);
}

static void result(struct creconcile *r, int32_t epoch, uint8_t state, struct gtpset assigned,
		   struct gtpset revoking)
{
	r->new_epoch = epoch;
	r->new_prev_epoch = r->epoch;
	r->new_state = state;
	r->new_assigned = assigned;
	r->new_revoking = revoking;
	r->changed = epoch != r->epoch || state != r->state ||
		     !gtpset_eq(&assigned, r->assigned) || !gtpset_eq(&revoking, r->revoking);
	if (!r->changed) {
		gtpset_free(&r->new_assigned);
		gtpset_free(&r->new_revoking);
	}
}

/* Kafka's computeNextAssignment. */
static int compute_next(struct creconcile *r, int32_t member_epoch)
{
	struct gtpset keep, revoke, pending;
	if (gtpset_inter(r->assigned, r->target, &keep) != 0)
		return -1;
	if (gtpset_diff(r->assigned, &keep, &revoke) != 0) {
		gtpset_free(&keep);
		return -1;
	}
	if (gtpset_diff(r->target, &keep, &pending) != 0) {
		gtpset_free(&keep);
		gtpset_free(&revoke);
		return -1;
	}
	/* Partitions another member still owns wait until it releases them. */
	bool unreleased = false;
	int32_t w = 0;
	for (int32_t i = 0; i < pending.n; i++) {
		if (r->taken(r->arg, &pending.v[i]))
			unreleased = true;
		else
			pending.v[w++] = pending.v[i];
	}
	pending.n = w;
	static const struct gtpset none;
	if (revoke.n > 0 && owns_any(r, &revoke)) {
		gtpset_free(&pending);
		result(r, member_epoch, CM_UNREVOKED_PARTITIONS, keep, revoke);
		return 0;
	}
	gtpset_free(&revoke);
	if (pending.n > 0) {
		struct gtpset all;
		int rc = gtpset_union(&keep, &pending, &all);
		gtpset_free(&keep);
		gtpset_free(&pending);
		if (rc != 0)
			return -1;
		result(r, r->target_epoch, unreleased ? CM_UNRELEASED_PARTITIONS : CM_STABLE, all,
		       none);
		return 0;
	}
	gtpset_free(&pending);
	result(r, r->target_epoch, unreleased ? CM_UNRELEASED_PARTITIONS : CM_STABLE, keep, none);
	return 0;
}

int creconcile_run(struct creconcile *r)
{
	r->changed = false;
	r->new_assigned = (struct gtpset){ NULL, 0 };
	r->new_revoking = (struct gtpset){ NULL, 0 };
	switch (r->state) {
	case CM_STABLE:
		if (r->epoch == r->target_epoch)
			return 0;
		return compute_next(r, r->epoch);
	case CM_UNREVOKED_PARTITIONS:
		if (owns_any(r, r->revoking))
			return 0;
		return compute_next(r, r->epoch);
	case CM_UNRELEASED_PARTITIONS:
		return compute_next(r, r->epoch);
	default:
		/* A state a newer version wrote: start over from nothing. */
		if (r->owned == NULL || r->owned->n > 0)
			return 1;
		return compute_next(r, r->target_epoch);
	}
}

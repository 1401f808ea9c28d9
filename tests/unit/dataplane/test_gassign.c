/* Unit tests for the KIP-848 consumer protocol's pure parts
 * (group_assign.h): topic-partition sets, the uniform assignor (balance,
 * stickiness, members on different topics), the range assignor (ranges
 * per topic, co-partitioning, stickiness) and member reconciliation
 * (revoke before assign, unreleased partitions, fencing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "group_assign.h"

/* ---- sets ---- */

static struct kuuid uuid_of(uint8_t b)
{
	struct kuuid u;
	memset(&u, 0, sizeof(u));
	u.b[15] = b;
	return u;
}

static struct gtpset set_of(uint8_t topic, const int32_t *parts, int n)
{
	struct gtp *v = malloc(sizeof(*v) * (size_t)(n > 0 ? n : 1));
	assert_non_null(v);
	for (int i = 0; i < n; i++)
		v[i] = (struct gtp){ uuid_of(topic), parts[i] };
	struct gtpset s;
	gtpset_adopt(&s, v, n);
	return s;
}

static void test_sets(void **state)
{
	(void)state;
	int32_t a_parts[] = { 5, 1, 3, 1 }, b_parts[] = { 3, 4, 5 };
	struct gtpset a = set_of(1, a_parts, 4), b = set_of(1, b_parts, 3), c = set_of(2, b_parts, 1);
	assert_int_equal(a.n, 3); /* sorted, deduplicated: 1 3 5 */
	assert_int_equal(a.v[0].partition, 1);
	assert_int_equal(a.v[2].partition, 5);
	struct gtp x = { uuid_of(1), 3 }, y = { uuid_of(2), 3 };
	assert_true(gtpset_has(&a, &x));
	assert_false(gtpset_has(&a, &y));
	assert_true(gtpset_has(&c, &y));
	struct gtpset i, d, u;
	assert_int_equal(gtpset_inter(&a, &b, &i), 0);
	assert_int_equal(gtpset_diff(&a, &b, &d), 0);
	assert_int_equal(gtpset_union(&a, &c, &u), 0);
	assert_int_equal(i.n, 2); /* 3 5 */
	assert_int_equal(d.n, 1); /* 1 */
	assert_int_equal(d.v[0].partition, 1);
	assert_int_equal(u.n, 4);
	assert_true(gtpset_intersects(&a, &b));
	assert_false(gtpset_intersects(&a, &c));
	struct gtpset cp;
	assert_int_equal(gtpset_copy(&a, &cp), 0);
	assert_true(gtpset_eq(&cp, &a));
	assert_false(gtpset_eq(&a, &b));
	gtpset_free(&d);
	struct gtpset e = { NULL, 0 };
	assert_int_equal(gtpset_diff(&e, &a, &d), 0);
	assert_int_equal(d.n, 0);
	assert_null(d.v);
	gtpset_free(&a);
	gtpset_free(&b);
	gtpset_free(&c);
	gtpset_free(&i);
	gtpset_free(&u);
	gtpset_free(&cp);
	assert_int_equal(gassignor_find(KSTR("uniform")), GASSIGN_UNIFORM);
	assert_int_equal(gassignor_find(KSTR("range")), GASSIGN_RANGE);
	assert_int_equal(gassignor_find(KSTR("sticky")), -1);
}

/* ---- assignors ---- */

#define MAXM 1200
#define MAXT 8
#define MAXP 4096

/* A group for the assignors: members with their topics and previous
 * targets, topics with their partition counts. */
struct fx {
	int32_t n_parts[MAXT], base[MAXT], nt;
	int32_t topics[MAXM][MAXT];
	struct gassign_tp prev[MAXM][MAXP / 4];
	struct gassign_member members[MAXM];
	int32_t nm;
	int32_t owner[MAXP];
	struct gassign a;
};

static struct fx *fx_new(const int32_t *n_parts, int nt)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->nt = nt;
	int32_t b = 0;
	for (int t = 0; t < nt; t++) {
		f->n_parts[t] = n_parts[t];
		f->base[t] = b;
		b += n_parts[t];
	}
	assert_true(b <= MAXP);
	return f;
}

/* Add a member on topics[0..n) (ascending). */
static int fx_member(struct fx *f, const int32_t *topics, int n)
{
	int i = f->nm++;
	memcpy(f->topics[i], topics, sizeof(int32_t) * (size_t)n);
	f->members[i].topics = f->topics[i];
	f->members[i].n_topics = n;
	f->members[i].prev = f->prev[i];
	f->members[i].n_prev = 0;
	return i;
}

static void fx_run(struct fx *f, enum gassignor which)
{
	f->a = (struct gassign){ .members = f->members, .n_members = f->nm,
				 .n_parts = f->n_parts, .n_topics = f->nt,
				 .base = f->base, .owner = f->owner };
	assert_int_equal(gassign_run(&f->a, which), 0);
}

/* The result becomes every member's previous target (for the next run). */
static void fx_carry(struct fx *f)
{
	for (int i = 0; i < f->nm; i++)
		f->members[i].n_prev = 0;
	for (int t = 0; t < f->nt; t++)
		for (int p = 0; p < f->n_parts[t]; p++) {
			int32_t o = f->owner[f->base[t] + p];
			if (o >= 0)
				f->prev[o][f->members[o].n_prev++] = (struct gassign_tp){ t, p };
		}
}

static int fx_count(const struct fx *f, int member)
{
	int n = 0;
	for (int t = 0; t < f->nt; t++)
		for (int p = 0; p < f->n_parts[t]; p++)
			n += f->owner[f->base[t] + p] == member;
	return n;
}

/* Every partition of a topic someone subscribes to has exactly one owner,
 * and that owner subscribes to it. */
static void fx_check_complete(const struct fx *f)
{
	for (int t = 0; t < f->nt; t++) {
		bool subscribed = false;
		for (int i = 0; i < f->nm; i++)
			for (int k = 0; k < f->members[i].n_topics; k++)
				subscribed |= f->members[i].topics[k] == t;
		for (int p = 0; p < f->n_parts[t]; p++) {
			int32_t o = f->owner[f->base[t] + p];
			if (!subscribed) {
				assert_int_equal(o, -1);
				continue;
			}
			assert_true(o >= 0 && o < f->nm);
			bool ok = false;
			for (int k = 0; k < f->members[o].n_topics; k++)
				ok |= f->members[o].topics[k] == t;
			assert_true(ok);
		}
	}
}

static void fx_check_balanced(const struct fx *f)
{
	int lo = INT32_MAX, hi = 0;
	for (int i = 0; i < f->nm; i++) {
		int c = fx_count(f, i);
		lo = c < lo ? c : lo;
		hi = c > hi ? c : hi;
	}
	assert_true(hi - lo <= 1);
}

/* Partitions whose owner differs between two owner arrays. */
static int moved(const int32_t *a, const int32_t *b, int n)
{
	int m = 0;
	for (int i = 0; i < n; i++)
		m += a[i] != b[i];
	return m;
}

static void test_uniform_three_members(void **state)
{
	(void)state;
	int32_t np[] = { 6 }, t0[] = { 0 };
	struct fx *f = fx_new(np, 1);
	for (int i = 0; i < 3; i++)
		fx_member(f, t0, 1);
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fx_count(f, i), 2);
	/* Same members, same result: stickiness keeps everything. */
	int32_t before[MAXP];
	memcpy(before, f->owner, sizeof(before));
	fx_carry(f);
	fx_run(f, GASSIGN_UNIFORM);
	assert_int_equal(moved(before, f->owner, 6), 0);
	/* A fourth member: quota 1, two extras; only what the newcomer needs
	 * moves (one partition), the others keep theirs. */
	fx_member(f, t0, 1);
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	fx_check_balanced(f);
	assert_int_equal(fx_count(f, 3), 1);
	assert_int_equal(moved(before, f->owner, 6), 1);
	for (int p = 0; p < 6; p++)
		if (f->owner[p] != 3)
			assert_int_equal(f->owner[p], before[p]);
	free(f);
}

static void test_uniform_member_leaves(void **state)
{
	(void)state;
	int32_t np[] = { 5, 7 }, t01[] = { 0, 1 };
	struct fx *f = fx_new(np, 2);
	for (int i = 0; i < 4; i++)
		fx_member(f, t01, 2);
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	fx_check_balanced(f);
	int32_t before[MAXP];
	memcpy(before, f->owner, sizeof(before));
	fx_carry(f);
	/* Member 1 goes (the last takes its place in the array): only its
	 * partitions move. */
	f->members[1] = f->members[3];
	memcpy(f->prev[1], f->prev[3], sizeof(f->prev[1]));
	f->members[1].prev = f->prev[1];
	f->nm = 3;
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	fx_check_balanced(f);
	for (int k = 0; k < 12; k++) {
		int32_t was = before[k], now = f->owner[k];
		if (was == 0 || was == 2)
			assert_int_equal(now, was);
		else if (was == 3)
			assert_int_equal(now, 1); /* renumbered, same member */
	}
	free(f);
}

static void test_uniform_thousand_members(void **state)
{
	(void)state;
	int32_t np[] = { 6 }, t0[] = { 0 };
	struct fx *f = fx_new(np, 1);
	for (int i = 0; i < 1000; i++)
		fx_member(f, t0, 1);
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	fx_check_balanced(f);
	int with = 0;
	for (int i = 0; i < 1000; i++)
		with += fx_count(f, i) == 1;
	assert_int_equal(with, 6);
	free(f);
}

static void test_uniform_heterogeneous(void **state)
{
	(void)state;
	/* Topic 0 (6 partitions) read by everyone, topic 1 (6) by members 0
	 * and 1 only, topic 2 (3) by member 2 only. */
	int32_t np[] = { 6, 6, 3 }, t01[] = { 0, 1 }, t0[] = { 0 }, t02[] = { 0, 2 };
	struct fx *f = fx_new(np, 3);
	fx_member(f, t01, 2);
	fx_member(f, t01, 2);
	fx_member(f, t02, 2);
	fx_member(f, t0, 1);
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	/* 15 partitions over 4 members: as even as the subscriptions allow
	 * (member 3 can only take topic 0). */
	int c[4];
	for (int i = 0; i < 4; i++)
		c[i] = fx_count(f, i);
	assert_int_equal(c[0] + c[1] + c[2] + c[3], 15);
	for (int i = 0; i < 4; i++)
		assert_true(c[i] >= 3 && c[i] <= 4);
	/* Sticky: the same members again move nothing. */
	int32_t before[MAXP];
	memcpy(before, f->owner, sizeof(before));
	fx_carry(f);
	fx_run(f, GASSIGN_UNIFORM);
	assert_int_equal(moved(before, f->owner, 15), 0);
	free(f);
}

static void test_uniform_unsubscribed_topic(void **state)
{
	(void)state;
	/* Topic 1 is in the metadata but nobody subscribes any more: its
	 * partitions get no owner, even one's previous target had them. */
	int32_t np[] = { 2, 3 }, t0[] = { 0 };
	struct fx *f = fx_new(np, 2);
	int m = fx_member(f, t0, 1);
	f->prev[m][0] = (struct gassign_tp){ 1, 0 };
	f->members[m].n_prev = 1;
	fx_run(f, GASSIGN_UNIFORM);
	fx_check_complete(f);
	assert_int_equal(fx_count(f, 0), 2);
	free(f);
}

static void test_range_ranges_per_topic(void **state)
{
	(void)state;
	/* Two co-partitioned topics of 6: member i gets partitions 2i, 2i+1
	 * of both (what a join of the two needs). */
	int32_t np[] = { 6, 6 }, t01[] = { 0, 1 };
	struct fx *f = fx_new(np, 2);
	for (int i = 0; i < 3; i++)
		fx_member(f, t01, 2);
	fx_run(f, GASSIGN_RANGE);
	fx_check_complete(f);
	for (int t = 0; t < 2; t++)
		for (int p = 0; p < 6; p++)
			assert_int_equal(f->owner[f->base[t] + p], p / 2);
	free(f);
}

static void test_range_uneven(void **state)
{
	(void)state;
	/* 7 partitions over 3 members: ranges of 3, 2, 2 in member order. */
	int32_t np[] = { 7 }, t0[] = { 0 };
	struct fx *f = fx_new(np, 1);
	for (int i = 0; i < 3; i++)
		fx_member(f, t0, 1);
	fx_run(f, GASSIGN_RANGE);
	static const int32_t want[] = { 0, 0, 0, 1, 1, 2, 2 };
	assert_memory_equal(f->owner, want, sizeof(want));
	/* Members on different topics: each topic split among its own. */
	int32_t np2[] = { 4, 3 }, a[] = { 0 }, ab[] = { 0, 1 }, b[] = { 1 };
	struct fx *g = fx_new(np2, 2);
	fx_member(g, a, 1);
	fx_member(g, ab, 2);
	fx_member(g, b, 1);
	fx_run(g, GASSIGN_RANGE);
	fx_check_complete(g);
	static const int32_t want2[] = { 0, 0, 1, 1, /* topic 1: members 1, 2 */ 1, 1, 2 };
	assert_memory_equal(g->owner, want2, sizeof(want2));
	free(f);
	free(g);
}

static void test_range_sticky(void **state)
{
	(void)state;
	int32_t np[] = { 6 }, t0[] = { 0 };
	struct fx *f = fx_new(np, 1);
	for (int i = 0; i < 2; i++)
		fx_member(f, t0, 1);
	fx_run(f, GASSIGN_RANGE); /* 0-2 to member 0, 3-5 to member 1 */
	fx_carry(f);
	fx_member(f, t0, 1);
	fx_run(f, GASSIGN_RANGE);
	fx_check_complete(f);
	/* Each keeps its two lowest; the newcomer gets what they gave up. */
	static const int32_t want[] = { 0, 0, 2, 1, 1, 2 };
	assert_memory_equal(f->owner, want, sizeof(want));
	free(f);
}

/* ---- reconciliation ---- */

struct taken_fx {
	struct gtpset others; /* what other members own */
};

static bool taken_cb(void *arg, const struct gtp *tp)
{
	struct taken_fx *t = arg;
	return gtpset_has(&t->others, tp);
}

static void test_reconcile_revoke_then_assign(void **state)
{
	(void)state;
	int32_t owned3[] = { 0, 1, 2 }, tgt01[] = { 0, 1 }, p2[] = { 2 };
	struct gtpset assigned = set_of(1, owned3, 3), none = { NULL, 0 };
	struct gtpset target = set_of(1, tgt01, 2);
	struct taken_fx tk = { { NULL, 0 } };
	/* A owns 0-2 at epoch 5; the target at epoch 6 takes 2 away. Its
	 * heartbeat still reports 0-2: revoke first, stay in epoch 5. */
	struct creconcile r = { .epoch = 5, .state = CM_STABLE, .assigned = &assigned,
				.revoking = &none, .target_epoch = 6, .target = &target,
				.owned = &assigned, .taken = taken_cb, .arg = &tk };
	assert_int_equal(creconcile_run(&r), 0);
	assert_true(r.changed);
	assert_int_equal(r.new_epoch, 5);
	assert_int_equal(r.new_state, CM_UNREVOKED_PARTITIONS);
	assert_true(gtpset_eq(&r.new_assigned, &target));
	assert_int_equal(r.new_revoking.n, 1);
	assert_int_equal(r.new_revoking.v[0].partition, 2);
	/* Meanwhile B, target {2}: 2 is still A's, so B moves to epoch 6
	 * with nothing and waits. */
	struct gtpset b_target = set_of(1, p2, 1);
	tk.others = r.new_revoking;
	struct creconcile rb = { .epoch = 5, .state = CM_STABLE, .assigned = &none,
				 .revoking = &none, .target_epoch = 6, .target = &b_target,
				 .owned = &none, .taken = taken_cb, .arg = &tk };
	assert_int_equal(creconcile_run(&rb), 0);
	assert_true(rb.changed);
	assert_int_equal(rb.new_epoch, 6);
	assert_int_equal(rb.new_state, CM_UNRELEASED_PARTITIONS);
	assert_int_equal(rb.new_assigned.n, 0);
	/* A's next heartbeat without reporting its owned partitions: still
	 * waiting. Then it reports 0-1: revoked, epoch 6, stable. */
	struct gtpset a_assigned = r.new_assigned, a_revoking = r.new_revoking;
	struct creconcile r2 = { .epoch = 5, .state = CM_UNREVOKED_PARTITIONS,
				 .assigned = &a_assigned, .revoking = &a_revoking,
				 .target_epoch = 6, .target = &target, .owned = NULL,
				 .taken = taken_cb, .arg = &tk };
	assert_int_equal(creconcile_run(&r2), 0);
	assert_false(r2.changed);
	r2.owned = &a_assigned;
	assert_int_equal(creconcile_run(&r2), 0);
	assert_true(r2.changed);
	assert_int_equal(r2.new_epoch, 6);
	assert_int_equal(r2.new_prev_epoch, 5);
	assert_int_equal(r2.new_state, CM_STABLE);
	assert_int_equal(r2.new_revoking.n, 0);
	/* Now 2 is free: B gets it. */
	struct taken_fx free_tk = { { NULL, 0 } };
	struct creconcile rb2 = { .epoch = 6, .state = CM_UNRELEASED_PARTITIONS,
				  .assigned = &none, .revoking = &none, .target_epoch = 6,
				  .target = &b_target, .owned = &none, .taken = taken_cb,
				  .arg = &free_tk };
	assert_int_equal(creconcile_run(&rb2), 0);
	assert_true(rb2.changed);
	assert_int_equal(rb2.new_state, CM_STABLE);
	assert_true(gtpset_eq(&rb2.new_assigned, &b_target));
	/* Stable at the target epoch: nothing to do. */
	struct creconcile r3 = { .epoch = 6, .state = CM_STABLE, .assigned = &b_target,
				 .revoking = &none, .target_epoch = 6, .target = &b_target,
				 .owned = NULL, .taken = taken_cb, .arg = &free_tk };
	assert_int_equal(creconcile_run(&r3), 0);
	assert_false(r3.changed);
	gtpset_free(&assigned);
	gtpset_free(&target);
	gtpset_free(&b_target);
	gtpset_free(&r.new_assigned);
	gtpset_free(&r.new_revoking);
	gtpset_free(&r2.new_assigned);
	gtpset_free(&rb2.new_assigned);
}

static void test_reconcile_unknown_state(void **state)
{
	(void)state;
	int32_t p[] = { 0 };
	struct gtpset a = set_of(1, p, 1), none = { NULL, 0 };
	struct taken_fx tk = { { NULL, 0 } };
	struct creconcile r = { .epoch = 3, .state = CM_UNKNOWN, .assigned = &a, .revoking = &none,
				.target_epoch = 4, .target = &a, .owned = &a, .taken = taken_cb,
				.arg = &tk };
	assert_int_equal(creconcile_run(&r), 1); /* fenced: it must give everything up */
	r.owned = &none;
	assert_int_equal(creconcile_run(&r), 0);
	assert_int_equal(r.new_epoch, 4);
	assert_int_equal(r.new_state, CM_STABLE);
	gtpset_free(&a);
	gtpset_free(&r.new_assigned);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sets),
		cmocka_unit_test(test_uniform_three_members),
		cmocka_unit_test(test_uniform_member_leaves),
		cmocka_unit_test(test_uniform_thousand_members),
		cmocka_unit_test(test_uniform_heterogeneous),
		cmocka_unit_test(test_uniform_unsubscribed_topic),
		cmocka_unit_test(test_range_ranges_per_topic),
		cmocka_unit_test(test_range_uneven),
		cmocka_unit_test(test_range_sticky),
		cmocka_unit_test(test_reconcile_revoke_then_assign),
		cmocka_unit_test(test_reconcile_unknown_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

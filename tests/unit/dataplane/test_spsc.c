/* Unit tests for dataplane/spsc.h: order, full/empty, index wrap-around, and
 * a producer and a consumer thread racing over a tiny ring. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "spsc.h"

#define OBJ(i) ((void *)(uintptr_t)((i) + 1))
#define IDX(p) ((uint64_t)(uintptr_t)(p) - 1)

static void test_init(void **state)
{
	(void)state;
	struct spsc r;
	void *slots[8];
	assert_int_equal(spsc_init(&r, slots, 0), -22);
	assert_int_equal(spsc_init(&r, slots, 1), -22);
	assert_int_equal(spsc_init(&r, slots, 6), -22);
	assert_int_equal(spsc_init(&r, NULL, 8), -22);
	assert_int_equal(spsc_init(&r, slots, 8), 0);
	assert_int_equal(spsc_count(&r), 0);
}

static void test_full_empty_order(void **state)
{
	(void)state;
	struct spsc r;
	void *slots[4], *in[6], *out[6];
	assert_int_equal(spsc_init(&r, slots, 4), 0);
	for (int i = 0; i < 6; i++)
		in[i] = OBJ(i);
	assert_int_equal(spsc_pop_burst(&r, out, 1), 0);        /* empty */
	assert_int_equal(spsc_push_burst(&r, in, 6), 4);         /* only 4 fit */
	assert_int_equal(spsc_count(&r), 4);
	assert_int_equal(spsc_push_burst(&r, in + 4, 1), 0);     /* full */
	assert_int_equal(spsc_pop_burst(&r, out, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_ptr_equal(out[i], OBJ(i));
	assert_int_equal(spsc_push_burst(&r, in + 4, 2), 2);     /* wraps the slots */
	assert_int_equal(spsc_pop_burst(&r, out, 6), 3);
	assert_ptr_equal(out[0], OBJ(3));
	assert_ptr_equal(out[1], OBJ(4));
	assert_ptr_equal(out[2], OBJ(5));
	assert_int_equal(spsc_count(&r), 0);
}

/* The 64-bit indices themselves wrapping must not matter. */
static void test_index_wrap(void **state)
{
	(void)state;
	struct spsc r;
	void *slots[4], *o;
	assert_int_equal(spsc_init(&r, slots, 4), 0);
	uint64_t start = UINT64_MAX - 5;
	atomic_store(&r.tail, start);
	atomic_store(&r.head, start);
	r.head_cached = r.tail_cached = start;
	for (uint64_t i = 0; i < 20; i++) {
		void *p = OBJ(i);
		assert_int_equal(spsc_push_burst(&r, &p, 1), 1);
		assert_int_equal(spsc_count(&r), 1);
		assert_int_equal(spsc_pop_burst(&r, &o, 1), 1);
		assert_ptr_equal(o, p);
	}
	void *many[4] = { OBJ(0), OBJ(1), OBJ(2), OBJ(3) };
	assert_int_equal(spsc_push_burst(&r, many, 4), 4);
	void *got[4];
	assert_int_equal(spsc_pop_burst(&r, got, 4), 4);
	assert_memory_equal(got, many, sizeof(many));
}

#define RACE_ITEMS 1000000u

struct race {
	struct spsc r;
	void *slots[8];
};

static void *race_producer(void *arg)
{
	struct race *rc = arg;
	uint64_t next = 0;
	unsigned seed = 1;
	while (next < RACE_ITEMS) {
		void *burst[5];
		uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 5);
		if (n > RACE_ITEMS - next)
			n = (uint32_t)(RACE_ITEMS - next);
		for (uint32_t i = 0; i < n; i++)
			burst[i] = OBJ(next + i);
		next += spsc_push_burst(&rc->r, burst, n); /* partial pushes retried */
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	(void)state;
	static struct race rc;
	assert_int_equal(spsc_init(&rc.r, rc.slots, 8), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, race_producer, &rc), 0);
	uint64_t expect = 0;
	unsigned seed = 2;
	while (expect < RACE_ITEMS) {
		void *got[7];
		uint32_t n = spsc_pop_burst(&rc.r, got, 1 + (uint32_t)(rand_r(&seed) % 7));
		for (uint32_t i = 0; i < n; i++) {
			if (IDX(got[i]) != expect)
				fail_msg("item %llu arrived where %llu was due",
					 (unsigned long long)IDX(got[i]), (unsigned long long)expect);
			expect++;
		}
	}
	pthread_join(t, NULL);
	assert_int_equal(spsc_count(&rc.r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_full_empty_order),
		cmocka_unit_test(test_index_wrap),
		cmocka_unit_test(test_two_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

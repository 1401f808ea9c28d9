/* Unit tests for dataplane/placement.c: stable, in range, balanced, and
 * minimal movement when the shard count grows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "placement.h"

static void test_range_and_single_shard(void **state)
{
	(void)state;
	for (int32_t p = 0; p < 1000; p++) {
		assert_int_equal(placement_shard(KSTR("orders"), p, 1), 0);
		int32_t s = placement_shard(KSTR("orders"), p, 7);
		assert_true(s >= 0 && s < 7);
	}
}

/* Placement decides where data lives: it must never change silently
 * between builds. These values pin today's function. */
static void test_golden(void **state)
{
	(void)state;
	static const struct { const char *topic; int32_t partition, shards, shard; } cases[] = {
		{ "orders", 0, 2, 0 }, { "orders", 1, 2, 0 },
		{ "orders", 2, 8, 2 }, { "events", 0, 8, 6 },
		{ "events", 15, 16, 0 }, { "a", 99, 3, 2 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(placement_shard(kstr_from(cases[i].topic), cases[i].partition,
						 cases[i].shards), cases[i].shard);
	assert_int_equal(placement_key(KSTR("orders"), 0), 0x99b09a599a6d0495ull);
}

static void test_balance(void **state)
{
	(void)state;
	enum { SHARDS = 4, TOPICS = 16, PARTS = 64 };
	int count[SHARDS] = { 0 };
	char name[32];
	for (int t = 0; t < TOPICS; t++) {
		snprintf(name, sizeof(name), "topic-%d", t);
		for (int32_t p = 0; p < PARTS; p++)
			count[placement_shard(kstr_from(name), p, SHARDS)]++;
	}
	int mean = TOPICS * PARTS / SHARDS;
	for (int s = 0; s < SHARDS; s++)
		assert_true(count[s] > mean * 3 / 4 && count[s] < mean * 5 / 4);
}

/* Growing from n to n+1 shards moves a partition only onto the new shard,
 * and about 1/(n+1) of them. */
static void test_minimal_movement(void **state)
{
	(void)state;
	enum { KEYS = 20000 };
	for (int32_t n = 1; n < 16; n++) {
		int moved = 0;
		for (int32_t p = 0; p < KEYS; p++) {
			int32_t a = placement_shard(KSTR("grow"), p, n);
			int32_t b = placement_shard(KSTR("grow"), p, n + 1);
			if (a != b) {
				assert_int_equal(b, n);
				moved++;
			}
		}
		double expect = (double)KEYS / (n + 1);
		assert_true(moved > expect * 0.8 && moved < expect * 1.2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_and_single_shard),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_balance),
		cmocka_unit_test(test_minimal_movement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

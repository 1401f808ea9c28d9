/* Unit tests for dataplane/placement.c: stable, in range, and every topic
 * spread evenly. */
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
		{ "orders", 0, 2, 1 }, { "orders", 1, 2, 0 },
		{ "orders", 2, 8, 3 }, { "events", 0, 8, 1 },
		{ "events", 15, 16, 0 }, { "a", 99, 3, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(placement_shard(kstr_from(cases[i].topic), cases[i].partition,
						 cases[i].shards), cases[i].shard);
	assert_int_equal(placement_topic_key(KSTR("orders")), 0x45987d0b68fc7229ull);
}

/* Each topic's partitions differ by at most one between shards. */
static void test_balance(void **state)
{
	(void)state;
	char name[32];
	for (int32_t shards = 1; shards <= 8; shards++)
		for (int t = 0; t < 50; t++) {
			snprintf(name, sizeof(name), "topic-%d", t);
			int32_t parts = 1 + t * 3;
			int count[8] = { 0 };
			for (int32_t p = 0; p < parts; p++)
				count[placement_shard(kstr_from(name), p, shards)]++;
			for (int32_t s = 0; s < shards; s++) {
				assert_true(count[s] >= parts / shards);
				assert_true(count[s] <= parts / shards + 1);
			}
		}
}

/* Single-partition topics start on different shards. */
static void test_topics_spread(void **state)
{
	(void)state;
	enum { SHARDS = 4, TOPICS = 400 };
	int count[SHARDS] = { 0 };
	char name[32];
	for (int t = 0; t < TOPICS; t++) {
		snprintf(name, sizeof(name), "t%d", t);
		count[placement_shard(kstr_from(name), 0, SHARDS)]++;
	}
	for (int s = 0; s < SHARDS; s++)
		assert_true(count[s] > TOPICS / SHARDS * 3 / 4 && count[s] < TOPICS / SHARDS * 5 / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_and_single_shard),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_balance),
		cmocka_unit_test(test_topics_spread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for dataplane/metadata_local.c: topics and producer ids are
 * durable across reopen; names and configs are checked as Kafka does. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "metadata.h"

static char dir[64];
static struct broker_config bc;

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/sluice-test-md-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	config_defaults(&bc);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(metadata_topic_name_valid(KSTR("events.v1_x-y")));
	assert_false(metadata_topic_name_valid(KSTR("")));
	assert_false(metadata_topic_name_valid(KSTR(".")));
	assert_false(metadata_topic_name_valid(KSTR("..")));
	assert_false(metadata_topic_name_valid(KSTR("has space")));
	assert_false(metadata_topic_name_valid(KSTR("slash/no")));
	char longname[251];
	memset(longname, 'a', 250);
	longname[250] = '\0';
	assert_false(metadata_topic_name_valid(kstr_from(longname)));
	longname[249] = '\0';
	assert_true(metadata_topic_name_valid(kstr_from(longname)));
}

static void test_configs(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(metadata_topic_config_check("retention.ms", "1000", why, sizeof(why)), 0);
	assert_int_equal(metadata_topic_config_check("cleanup.policy", "compact", why, sizeof(why)), 0);
	assert_int_equal(metadata_topic_config_check("retention.ms", "abc", why, sizeof(why)), -1);
	assert_int_equal(metadata_topic_config_check("segment.bytes", "1", why, sizeof(why)), -1);
	assert_int_equal(metadata_topic_config_check("cleanup.policy", "keep", why, sizeof(why)), -1);
	assert_int_equal(metadata_topic_config_check("no.such.config", "1", why, sizeof(why)), -1);
	assert_non_null(strstr(why, "Unknown topic config"));
}

static void test_persist(void **state)
{
	(void)state;
	int err = 0;
	struct metadata *md = metadata_open(dir, &bc, &err);
	assert_non_null(md);
	char cluster[32];
	snprintf(cluster, sizeof(cluster), "%s", metadata_cluster_id(md));
	assert_int_equal(strlen(cluster), 22);

	struct topic_config_entry cfg = { "segment.bytes", "2097152" };
	const struct topic *t;
	assert_int_equal(metadata_topic_create(md, KSTR("a"), 3, &cfg, 1, &t), 0);
	assert_int_equal(t->segment_bytes, 2097152);
	assert_int_equal(t->max_message_bytes, bc.message_max_bytes);
	struct kuuid id = t->id;
	assert_int_equal(metadata_topic_create(md, KSTR("b"), 1, NULL, 0, &t), 0);
	assert_int_equal(metadata_topic_create(md, KSTR("a"), 1, NULL, 0, &t), -EEXIST);
	int64_t pid1, pid2;
	assert_int_equal(metadata_producer_id_alloc(md, &pid1), 0);
	assert_int_equal(metadata_producer_id_alloc(md, &pid2), 0);
	assert_true(pid2 > pid1);
	assert_int_equal(metadata_topic_delete(md, KSTR("b")), 0);
	assert_int_equal(metadata_topic_delete(md, KSTR("b")), -ENOENT);
	metadata_close(md);

	md = metadata_open(dir, &bc, &err);
	assert_non_null(md);
	assert_string_equal(metadata_cluster_id(md), cluster);
	assert_int_equal(metadata_topic_count(md), 1);
	t = metadata_topic_find(md, KSTR("a"));
	assert_non_null(t);
	assert_int_equal(t->partitions, 3);
	assert_memory_equal(t->id.b, id.b, 16);
	assert_ptr_equal(metadata_topic_find_id(md, id), t);
	assert_int_equal(t->segment_bytes, 2097152);
	assert_null(metadata_topic_find(md, KSTR("b")));
	int64_t pid3;
	assert_int_equal(metadata_producer_id_alloc(md, &pid3), 0);
	assert_true(pid3 > pid2); /* never handed out twice, across restarts */
	metadata_close(md);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_configs),
		cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

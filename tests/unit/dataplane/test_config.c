/* Unit tests for dataplane/config.c: defaults, --set, properties files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

static void test_defaults(void **state)
{
	(void)state;
	struct broker_config c;
	char err[256];
	config_defaults(&c);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 9092);
	assert_string_equal(c.data_dir, "./data");
	assert_true(c.auto_create_topics);
	assert_int_equal(c.num_partitions, 1);
	assert_int_equal(c.socket_request_max_bytes, 104857600);
	assert_int_equal(c.flush, FLUSH_ALWAYS);
	assert_int_equal(c.log_retention_ms, 604800000);
	assert_int_equal(c.log_retention_bytes, -1);
	assert_int_equal(c.log_retention_check_interval_ms, 300000); /* Kafka's */
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_string_equal(config_advertised_host(&c), "127.0.0.1");
	assert_int_equal(config_advertised_port(&c), 9092);
}

static void test_set(void **state)
{
	(void)state;
	struct broker_config c;
	char err[256];
	config_defaults(&c);
	assert_int_equal(config_set(&c, "listeners", "PLAINTEXT://0.0.0.0:19092", err, sizeof(err)), 0);
	assert_string_equal(c.listen_host, "0.0.0.0");
	assert_int_equal(c.listen_port, 19092);
	assert_int_equal(config_set(&c, "advertised.listeners", "[::1]:9000", err, sizeof(err)), 0);
	assert_string_equal(config_advertised_host(&c), "::1");
	assert_int_equal(config_advertised_port(&c), 9000);
	assert_int_equal(config_set(&c, "auto.create.topics.enable", "false", err, sizeof(err)), 0);
	assert_false(c.auto_create_topics);
	assert_int_equal(config_set(&c, "flush", "interval", err, sizeof(err)), 0);
	assert_int_equal(c.flush, FLUSH_INTERVAL);

	assert_int_equal(config_set(&c, "no.such.key", "1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown setting"));
	assert_int_equal(config_set(&c, "num.partitions", "0", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "num.partitions", "12x", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "auto.create.topics.enable", "yes", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "listeners", "nohostport", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "listeners", "h:70000", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "flush", "sometimes", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "log.retention.check.interval.ms", "250", err,
				    sizeof(err)), 0);
	assert_int_equal(c.log_retention_check_interval_ms, 250);
	assert_int_equal(config_set(&c, "log.retention.check.interval.ms", "0", err,
				    sizeof(err)), -1);
	assert_non_null(strstr(err, "out of range"));
}

static void test_file(void **state)
{
	(void)state;
	struct broker_config c;
	char err[512], path[] = "/tmp/sluice-test-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "# comment\n! also a comment\n\n  num.partitions = 7 \nlog.dirs=/tmp/x\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
	assert_int_equal(c.num_partitions, 7);
	assert_string_equal(c.data_dir, "/tmp/x");

	FILE *f = fopen(path, "w");
	fputs("num.partitions=3\nbogus line\n", f);
	fclose(f);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2:"));
	unlink(path);
	assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
}

/* log.cleaner.dedupe.buffer.size: out of its range (one batch's keys at
 * least, Kafka's 2 GiB at most), past what the shard's budget leaves
 * beside the other settings, or more over all shards than half the
 * machine's memory: refused with a message naming it. The decompression
 * limit has its own range. */
static void test_cleaner_memory(void **state)
{
	(void)state;
	struct broker_config c;
	char err[512];
	config_defaults(&c);
	assert_int_equal(c.log_cleaner_decompress_max_bytes, 64 << 20);
	/* Through the table: the range. */
	assert_int_equal(config_set(&c, "log.cleaner.dedupe.buffer.size", "1000", err,
				    sizeof(err)), -1);
	assert_int_equal(config_set(&c, "log.cleaner.dedupe.buffer.size", "4294967296", err,
				    sizeof(err)), -1);
	assert_int_equal(config_set(&c, "log.cleaner.decompress.max.bytes", "1000", err,
				    sizeof(err)), -1);
	assert_int_equal(config_set(&c, "log.cleaner.decompress.max.bytes", "2147483648", err,
				    sizeof(err)), -1);
	assert_int_equal(config_set(&c, "log.cleaner.decompress.max.bytes", "1048576", err,
				    sizeof(err)), 0);
	/* config_validate checks the value however it was set. */
	c.log_cleaner_dedupe_buffer_size = 24; /* one key */
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "log.cleaner.dedupe.buffer.size"));
	assert_non_null(strstr(err, "24 bytes a key"));
	c.log_cleaner_dedupe_buffer_size = (int64_t)4 << 30;
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "2 GiB"));

	/* The budget of test_shards' flood: 64 MiB per shard, 28 MiB taken by
	 * the pools and two requests; a 16 MiB map fits, 40 MiB does not. */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "memory.per.shard.bytes", "67108864", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "recv.buffers.per.shard", "64", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "write.buffer.pool.bytes", "16777216", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "socket.request.max.bytes", "4194304", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "message.max.bytes", "1048576", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "log.cleaner.dedupe.buffer.size", "41943040", err,
				    sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not fit in memory.per.shard.bytes"));
	/* Without a cleaner the map is never allocated. */
	assert_int_equal(config_set(&c, "log.cleaner.enable", "false", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);

	/* 64 shards of 2 GiB maps (128 GiB) within a budget that holds
	 * them: refused on any machine with less than 256 GiB. */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "num.shards", "64", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "memory.per.shard.bytes", "4294967296", err, sizeof(err)),
			 0);
	assert_int_equal(config_set(&c, "log.cleaner.dedupe.buffer.size", "2147483647", err,
				    sizeof(err)), 0);
	long long phys = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
	if (phys < 256LL << 30) {
		assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "of this machine's"));
	}
	assert_int_equal(config_set(&c, "num.shards", "1", err, sizeof(err)), 0);
	if (phys >= 4LL << 30)
		assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
}

/* The read pool: log.read.concurrency.max windows by default, within a
 * share of the budget, whole windows, counted in the budget. */
static void test_read_pool(void **state)
{
	(void)state;
	struct broker_config c;
	char err[256];
	const int64_t mib = 1024 * 1024;
	config_defaults(&c);
	assert_int_equal(config_read_pool_bytes(&c), 32 * mib); /* 32 reads x 1 MiB */
	assert_int_equal(config_set(&c, "log.read.concurrency.max", "4", err, sizeof(err)), 0);
	assert_int_equal(config_read_pool_bytes(&c), 4 * mib);
	/* a small budget: at most 1/16 of it, at least one window */
	assert_int_equal(config_set(&c, "log.read.concurrency.max", "32", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "memory.per.shard.bytes", "67108864", err, sizeof(err)), 0);
	assert_int_equal(config_read_pool_bytes(&c), 4 * mib);
	assert_int_equal(config_set(&c, "memory.per.shard.bytes", "16777216", err, sizeof(err)), 0);
	assert_int_equal(config_read_pool_bytes(&c), mib);
	/* set: whole windows */
	config_defaults(&c);
	assert_int_equal(config_set(&c, "log.read.buffer.bytes", "3500000", err, sizeof(err)), 0);
	assert_int_equal(config_read_pool_bytes(&c), 3 * mib);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "log.read.buffer.bytes", "4096", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "log.read.buffer.bytes"));
	/* part of the budget: too large for it is refused */
	assert_int_equal(config_set(&c, "log.read.buffer.bytes", "536870912", err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "memory.per.shard.bytes"));
	assert_int_equal(config_set(&c, "log.read.buffer.bytes", "-1", err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_cleaner_memory),
		cmocka_unit_test(test_read_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

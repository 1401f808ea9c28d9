/*
 * config: the settings table and its parsers. See config.h.
 */
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "group_assign.h"
#include "storage/limits.h"
#include "storage/sio.h"
#include "limits.h"

enum config_type { CT_INT32, CT_INT64, CT_BOOL, CT_STRING, CT_ADDR, CT_FLUSH };

struct config_entry {
	const char *name;
	enum config_type type;
	size_t offset;   /* of the field in struct broker_config */
	size_t size;     /* for CT_STRING: buffer size */
	const char *def; /* default, as text */
	int64_t min, max;
	const char *help;
};

#define F(field) offsetof(struct broker_config, field), sizeof(((struct broker_config *)0)->field)

static const struct config_entry config_table[] = {
	{ "listeners", CT_ADDR, F(listen_host), "127.0.0.1:9092", 0, 0,
	  "HOST:PORT (or PLAINTEXT://HOST:PORT) to listen on; flag --listen" },
	{ "advertised.listeners", CT_ADDR, F(advertise_host), "", 0, 0,
	  "HOST:PORT given to clients in Metadata; empty = the listener; flag --advertise" },
	{ "log.dirs", CT_STRING, F(data_dir), "./data", 0, 0,
	  "data directory (one directory per partition inside); flag --data-dir" },
	{ "num.shards", CT_INT32, F(shards), "0", 0, SHARDS_MAX,
	  "shard threads, one pinned per core; 0 = one per CPU this process may use; flag --shards" },
	{ "shard.cpus", CT_STRING, F(cpus), "", 0, 0,
	  "CPUs to pin shards to, e.g. 0-3 or 1,3 (shard i on the i-th, wrapping); \"\" = the "
	  "CPUs this process may use; flag --cpus" },
	{ "shard.endpoints", CT_STRING, F(shard_endpoints), "shared", 0, 0,
	  "shared: one address, requests for another shard's partitions are forwarded; "
	  "per-shard: shard i is also broker node.id+1000*i on port+i, so clients send each "
	  "partition's requests straight to its shard" },
	{ "shard.poll.us", CT_INT32, F(shard_poll_us), "0", 0, 1000000,
	  "an idle shard keeps polling this long before it sleeps (lower wake-up latency, more CPU)" },
	{ "node.id", CT_INT32, F(node_id), "1", 0, INT32_MAX, "this broker's id; flag --node-id" },
	{ "memory.per.shard.bytes", CT_INT64, F(memory_per_shard_bytes), "536870912",
	  16 * 1024 * 1024, INT64_MAX,
	  "memory budget of one shard (receive buffers, write buffers, requests and responses); "
	  "near it the shard stops reading from sockets until writes drain" },
	{ "recv.buffer.bytes", CT_INT32, F(recv_buffer_bytes), "65536", 4096, 16 * 1024 * 1024,
	  "size of one provided receive buffer" },
	{ "recv.buffers.per.shard", CT_INT32, F(recv_buffers), "256", 2, 32768,
	  "provided receive buffers per shard (a power of two)" },
	{ "write.buffer.pool.bytes", CT_INT64, F(write_buffer_pool_bytes), "0", 0, INT64_MAX,
	  "per shard: memory for appended batches not yet written (mapped at start-up); "
	  "0 = an eighth of memory.per.shard.bytes" },
	{ "log.tail.cache.bytes", CT_INT64, F(tail_cache_bytes), "-1", -1, INT64_MAX,
	  "per shard: recently written data kept in write buffers for consumers at the tail "
	  "(O_DIRECT bypasses the page cache); writers take it back when they need the memory; "
	  "-1 = half of write.buffer.pool.bytes, 0 = off" },
	{ "log.read.concurrency.max", CT_INT32, F(read_concurrency_max), "32", 1, 4096,
	  "per shard: fetch reads of data no longer in memory that may be at the disk at once "
	  "(through io_uring); more wait their turn, so old-data consumers cannot crowd out "
	  "the log writes" },
	{ "log.read.buffer.bytes", CT_INT64, F(read_buffer_bytes), "0", 0, INT64_MAX,
	  "per shard: registered memory that reads of data no longer in memory land in and are "
	  "sent from, in 1 MiB windows (mapped at start-up, part of memory.per.shard.bytes); "
	  "fetches wait for a free window; 0 = log.read.concurrency.max windows, at most 1/16 "
	  "of memory.per.shard.bytes" },
	{ "connection.memory.max.bytes", CT_INT64, F(connection_memory_max_bytes), "67108864",
	  1024 * 1024, INT64_MAX,
	  "one connection's requests, responses and partial frame; past it that connection alone "
	  "is not read until its responses drain" },
	{ "hugepages", CT_STRING, F(hugepages), "auto", 0, 0,
	  "buffer pools on hugepages: auto (when reserved), off, or require (fail without)" },
	{ "auto.create.topics.enable", CT_BOOL, F(auto_create_topics), "true", 0, 0,
	  "create a missing topic on Metadata or Produce" },
	{ "num.partitions", CT_INT32, F(num_partitions), "1", 1, 100000,
	  "partitions of an auto-created topic or a CreateTopics with -1" },
	{ "default.replication.factor", CT_INT32, F(default_replication_factor), "1", 1, 1,
	  "replication factor of auto-created topics (1 until replication exists)" },
	{ "socket.request.max.bytes", CT_INT64, F(socket_request_max_bytes), "104857600", 64, INT32_MAX,
	  "largest request frame accepted; a larger one closes the connection" },
	{ "message.max.bytes", CT_INT32, F(message_max_bytes), "1048588", 64, INT32_MAX,
	  "largest record batch; the default of a topic's max.message.bytes" },
	{ "fetch.max.bytes", CT_INT32, F(fetch_max_bytes), "57671680", 1024, INT32_MAX,
	  "most record bytes in one Fetch response" },
	{ "max.connections", CT_INT32, F(max_connections), "10000", 1, 1000000,
	  "client connections per broker; past it new connections are closed at accept" },
	{ "log.segment.bytes", CT_INT64, F(log_segment_bytes), "1073741824", 1024 * 1024, INT32_MAX,
	  "segment size; the default of a topic's segment.bytes" },
	{ "log.index.interval.bytes", CT_INT32, F(log_index_interval_bytes), "4096", 0, INT32_MAX,
	  "bytes of log between offset index entries" },
	{ "log.retention.ms", CT_INT64, F(log_retention_ms), "604800000", -1, INT64_MAX,
	  "default retention.ms of topics (-1: forever)" },
	{ "log.retention.bytes", CT_INT64, F(log_retention_bytes), "-1", -1, INT64_MAX,
	  "default retention.bytes of topics (-1: no size limit)" },
	{ "log.retention.check.interval.ms", CT_INT64, F(log_retention_check_interval_ms), "300000",
	  1, INT64_MAX,
	  "how often each shard deletes the segments of its partitions that retention.ms, "
	  "retention.bytes or DeleteRecords left behind" },
	{ "flush", CT_FLUSH, F(flush), "always", 0, 0,
	  "always: acks=1/all answered after fdatasync (group commit); interval: fdatasync every "
	  "log.flush.interval.ms; none: leave it to the kernel" },
	{ "log.flush.interval.ms", CT_INT64, F(flush_interval_ms), "1000", 1, INT64_MAX,
	  "fdatasync period with flush=interval" },
	{ "log.roll.ms", CT_INT64, F(log_roll_ms), "604800000", 1, INT64_MAX,
	  "roll a segment this old at its next append; the default of a topic's segment.ms" },
	{ "log.segment.preallocate.bytes", CT_INT64, F(log_preallocate_bytes), "16777216", 0,
	  INT32_MAX,
	  "reserve an active segment's disk blocks ahead of its writes in steps of this "
	  "(a multiple of 4096; 0: off)" },
	{ "log.segment.preallocate.zero.max.bytes.per.second", CT_INT64,
	  F(log_preallocate_zero_max_rate), "67108864", 0, INT64_MAX,
	  "while a partition is written slower than this, its next pre-allocation step is "
	  "written as zeros rather than fallocated, so fdatasync needs no journal commit "
	  "(lower acks latency at low load; O_DIRECT files only); 0: always fallocate" },
	{ "log.write.retry.ms", CT_INT64, F(log_write_retry_ms), "1000", 1, 3600000,
	  "after a write finds the disk full, write again this much later (produce answers "
	  "KAFKA_STORAGE_ERROR meanwhile; fetches go on)" },
	{ "log.direct.io", CT_BOOL, F(log_direct_io), "true", 0, 0,
	  "write segments with O_DIRECT (filesystems that refuse it get buffered writes and a "
	  "warning)" },
	{ "log.cleaner.enable", CT_BOOL, F(log_cleaner_enable), "true", 0, 0,
	  "compact the partitions of cleanup.policy=compact topics in the background" },
	{ "log.cleaner.backoff.ms", CT_INT64, F(log_cleaner_backoff_ms), "15000", 1, 86400000,
	  "how long a shard's cleaner waits before looking again when no log was due" },
	{ "log.cleaner.dedupe.buffer.size", CT_INT64, F(log_cleaner_dedupe_buffer_size), "16777216",
	  COMPACT_MAP_BYTES_MIN, COMPACT_MAP_BYTES_MAX,
	  "per shard: memory of the cleaner's key -> offset map (24 bytes a key; allocated when the "
	  "shard first cleans a log, and counted in memory.per.shard.bytes); a round maps at most "
	  "75% of it and cleans the rest in later rounds. Must fit memory.per.shard.bytes beside "
	  "the pools and two largest requests, and all shards' maps at most half the machine's "
	  "memory" },
	{ "log.cleaner.io.max.bytes.per.second", CT_INT64, F(log_cleaner_io_max_bytes_per_second),
	  "0", 0, INT64_MAX, "per shard: bytes the cleaner may read and write per second (0: no limit)" },
	{ "log.cleaner.slice.bytes", CT_INT64, F(log_cleaner_slice_bytes), "262144", 4096, 256 << 20,
	  "the cleaner's work in one loop turn: segment bytes read (and what they become written), "
	  "so a produce waits behind at most this much of it" },
	{ "log.cleaner.decompress.max.bytes", CT_INT64, F(log_cleaner_decompress_max_bytes),
	  "67108864", COMPACT_DECOMPRESS_BYTES_MIN, COMPACT_DECOMPRESS_BYTES_MAX,
	  "per shard: a compressed batch (gzip, snappy, lz4, zstd) whose records decompress past "
	  "this is kept whole by the cleaner; the cleaner's buffer grows to it at most (counted in "
	  "memory.per.shard.bytes)" },
	{ "offsets.topic.num.partitions", CT_INT32, F(offsets_topic_num_partitions), "50", 1, 1000,
	  "partitions of __consumer_offsets when it is created (groups are spread over them by "
	  "hash, and over shards by placement); an existing topic keeps its count" },
	{ "offsets.topic.segment.bytes", CT_INT64, F(offsets_topic_segment_bytes), "104857600",
	  1024 * 1024, INT32_MAX, "segment.bytes of __consumer_offsets when it is created" },
	{ "offset.metadata.max.bytes", CT_INT32, F(offset_metadata_max_bytes), "4096", 0, 1 << 20,
	  "longest metadata string of a committed offset (OFFSET_METADATA_TOO_LARGE past it)" },
	{ "offsets.retention.minutes", CT_INT64, F(offsets_retention_minutes), "10080", 1,
	  INT64_MAX / 60000,
	  "committed offsets of a group with no members are deleted this long after the group "
	  "became empty (of a group that never had members: after their commit)" },
	{ "offsets.retention.check.interval.ms", CT_INT64, F(offsets_retention_check_interval_ms),
	  "600000", 1, INT64_MAX, "how often each shard looks for expired offsets" },
	{ "offsets.retention.test.ms", CT_INT64, F(offsets_retention_test_ms), "-1", -1, INT64_MAX,
	  "TESTS ONLY: offsets.retention.minutes in milliseconds (-1: use the minutes)" },
	{ "offsets.load.buffer.size", CT_INT32, F(offsets_load_buffer_size), "5242880", 64 * 1024,
	  256 << 20,
	  "bytes of __consumer_offsets read at a time while a shard loads its groups at start-up" },
	{ "group.initial.rebalance.delay.ms", CT_INT32, F(group_initial_rebalance_delay_ms), "3000",
	  0, INT32_MAX,
	  "how long the first rebalance of an empty group waits for more members (and again, up "
	  "to the rebalance timeout, while new ones keep joining)" },
	{ "group.min.session.timeout.ms", CT_INT32, F(group_min_session_timeout_ms), "6000", 1,
	  INT32_MAX, "shortest session.timeout.ms a member may ask for (INVALID_SESSION_TIMEOUT)" },
	{ "group.max.session.timeout.ms", CT_INT32, F(group_max_session_timeout_ms), "1800000", 1,
	  INT32_MAX, "longest session.timeout.ms a member may ask for (INVALID_SESSION_TIMEOUT)" },
	{ "group.max.size", CT_INT32, F(group_max_size), "10000", 1, INT32_MAX,
	  "members of one group (GROUP_MAX_SIZE_REACHED past it; Kafka's default has no limit)" },
	{ "group.max.metadata.bytes", CT_INT64, F(group_max_metadata_bytes), "8388608", 4096,
	  16 << 20,
	  "per group: the members' protocol metadata, and separately their assignments, may "
	  "total this much (a join past it gets GROUP_MAX_SIZE_REACHED): bounds the memory of a "
	  "group and the size of its metadata record" },
	{ "group.coordinator.max.groups", CT_INT32, F(group_coordinator_max_groups), "100000", 1,
	  INT32_MAX,
	  "groups one shard coordinates (with offsets or members); past it a new group gets "
	  "COORDINATOR_NOT_AVAILABLE" },
	{ "group.consumer.heartbeat.interval.ms", CT_INT32,
	  F(group_consumer_heartbeat_interval_ms), "5000", 1, INT32_MAX,
	  "consumer protocol (KIP-848): the heartbeat interval members are told" },
	{ "group.consumer.min.heartbeat.interval.ms", CT_INT32,
	  F(group_consumer_min_heartbeat_interval_ms), "5000", 1, INT32_MAX,
	  "lowest group.consumer.heartbeat.interval.ms allowed" },
	{ "group.consumer.max.heartbeat.interval.ms", CT_INT32,
	  F(group_consumer_max_heartbeat_interval_ms), "15000", 1, INT32_MAX,
	  "highest group.consumer.heartbeat.interval.ms allowed" },
	{ "group.consumer.session.timeout.ms", CT_INT32, F(group_consumer_session_timeout_ms),
	  "45000", 1, INT32_MAX,
	  "consumer protocol: a member that sends no heartbeat for this long is fenced (its "
	  "partitions go to the others)" },
	{ "group.consumer.min.session.timeout.ms", CT_INT32,
	  F(group_consumer_min_session_timeout_ms), "45000", 1, INT32_MAX,
	  "lowest group.consumer.session.timeout.ms allowed" },
	{ "group.consumer.max.session.timeout.ms", CT_INT32,
	  F(group_consumer_max_session_timeout_ms), "60000", 1, INT32_MAX,
	  "highest group.consumer.session.timeout.ms allowed" },
	{ "group.consumer.max.size", CT_INT32, F(group_consumer_max_size), "10000", 1, INT32_MAX,
	  "members of one consumer-protocol group (GROUP_MAX_SIZE_REACHED past it; Kafka's "
	  "default has no limit)" },
	{ "group.consumer.assignors", CT_STRING, F(group_consumer_assignors), "uniform,range", 0, 0,
	  "server-side assignors members may ask for (uniform, range), comma-separated; the "
	  "first is used when no member asks (UNSUPPORTED_ASSIGNOR for others)" },
	{ "storage.faults", CT_STRING, F(storage_faults), "", 0, 0,
	  "TESTS ONLY: make storage operations fail, rules EFFECT:OP[:file=..][:after=N]"
	  "[:count=N][:while=PATH] separated by ';' (EFFECT eio|enospc|short|torn|einval, OP "
	  "write|fsync|fallocate|open|read)" },
	{ "log.level", CT_STRING, F(log_level), "info", 0, 0, "debug | info | warn | error" },
};

#undef F

#define CONFIG_TABLE_LEN (sizeof(config_table) / sizeof(config_table[0]))

/* Kafka's checks of the consumer protocol's settings. */
static int config_validate_consumer_groups(const struct broker_config *c, char *err,
					   size_t err_len)
{
	if (c->group_consumer_min_session_timeout_ms > c->group_consumer_session_timeout_ms ||
	    c->group_consumer_session_timeout_ms > c->group_consumer_max_session_timeout_ms) {
		snprintf(err, err_len, "group.consumer.session.timeout.ms must be between "
			 "group.consumer.min.session.timeout.ms and "
			 "group.consumer.max.session.timeout.ms");
		return -1;
	}
	if (c->group_consumer_min_heartbeat_interval_ms > c->group_consumer_heartbeat_interval_ms ||
	    c->group_consumer_heartbeat_interval_ms > c->group_consumer_max_heartbeat_interval_ms) {
		snprintf(err, err_len, "group.consumer.heartbeat.interval.ms must be between "
			 "group.consumer.min.heartbeat.interval.ms and "
			 "group.consumer.max.heartbeat.interval.ms");
		return -1;
	}
	if (c->group_consumer_heartbeat_interval_ms >= c->group_consumer_session_timeout_ms) {
		snprintf(err, err_len, "group.consumer.heartbeat.interval.ms must be less than "
			 "group.consumer.session.timeout.ms");
		return -1;
	}
	int8_t list[GASSIGN_COUNT];
	if (gassignor_list_parse(c->group_consumer_assignors, list, GASSIGN_COUNT) <= 0) {
		snprintf(err, err_len, "group.consumer.assignors: \"%s\" is not a comma-separated "
			 "list of uniform and range", c->group_consumer_assignors);
		return -1;
	}
	return 0;
}

static const struct config_entry *config_find(const char *key)
{
	for (size_t i = 0; i < CONFIG_TABLE_LEN; i++)
		if (strcmp(config_table[i].name, key) == 0)
			return &config_table[i];
	return NULL;
}

static int parse_int64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* "HOST:PORT", "PLAINTEXT://HOST:PORT" or "[v6]:PORT"; "" clears. */
static int parse_addr(const char *s, char *host, size_t host_size, int32_t *port,
		      char *err, size_t err_len)
{
	const char *p = strstr(s, "://");
	if (p != NULL)
		s = p + 3;
	if (*s == '\0') {
		host[0] = '\0';
		*port = 0;
		return 0;
	}
	const char *colon = strrchr(s, ':');
	if (colon == NULL) {
		snprintf(err, err_len, "'%s' is not HOST:PORT", s);
		return -1;
	}
	size_t hlen = (size_t)(colon - s);
	if (hlen > 1 && s[0] == '[' && s[hlen - 1] == ']') {
		s++;
		hlen -= 2;
	}
	if (hlen >= host_size) {
		snprintf(err, err_len, "host name in '%s' is too long", s);
		return -1;
	}
	int64_t v;
	if (parse_int64(colon + 1, &v) != 0 || v < 0 || v > 65535) {
		snprintf(err, err_len, "bad port in '%s'", s);
		return -1;
	}
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	*port = (int32_t)v;
	return 0;
}

static int config_apply(struct broker_config *c, const struct config_entry *e,
			const char *value, char *err, size_t err_len)
{
	char *field = (char *)c + e->offset;
	int64_t v;

	switch (e->type) {
	case CT_INT32:
	case CT_INT64:
		if (parse_int64(value, &v) != 0) {
			snprintf(err, err_len, "%s: '%s' is not an integer", e->name, value);
			return -1;
		}
		if (v < e->min || v > e->max) {
			snprintf(err, err_len, "%s: %s is out of range [%lld, %lld]", e->name,
				 value, (long long)e->min, (long long)e->max);
			return -1;
		}
		if (e->type == CT_INT32)
			*(int32_t *)field = (int32_t)v;
		else
			*(int64_t *)field = v;
		return 0;
	case CT_BOOL:
		if (strcmp(value, "true") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0)
			*(bool *)field = false;
		else {
			snprintf(err, err_len, "%s: '%s' is not true or false", e->name, value);
			return -1;
		}
		return 0;
	case CT_STRING:
		if (strlen(value) >= e->size) {
			snprintf(err, err_len, "%s: value too long", e->name);
			return -1;
		}
		strcpy(field, value);
		return 0;
	case CT_ADDR: {
		/* The host field is followed by its port field in the struct. */
		int32_t *port = (int32_t *)(field + e->size);
		if (parse_addr(value, field, e->size, port, err, err_len) != 0)
			return -1;
		return 0;
	}
	case CT_FLUSH:
		if (strcmp(value, "always") == 0)
			*(int32_t *)field = FLUSH_ALWAYS;
		else if (strcmp(value, "interval") == 0)
			*(int32_t *)field = FLUSH_INTERVAL;
		else if (strcmp(value, "none") == 0)
			*(int32_t *)field = FLUSH_NONE;
		else {
			snprintf(err, err_len, "flush: '%s' is not always, interval or none", value);
			return -1;
		}
		return 0;
	}
	return -1;
}

_Static_assert(offsetof(struct broker_config, listen_port) ==
	       offsetof(struct broker_config, listen_host) + CONFIG_HOST_LEN_MAX + 1,
	       "CT_ADDR expects the port right after the host buffer");
_Static_assert(offsetof(struct broker_config, advertise_port) ==
	       offsetof(struct broker_config, advertise_host) + CONFIG_HOST_LEN_MAX + 1,
	       "CT_ADDR expects the port right after the host buffer");

void config_defaults(struct broker_config *c)
{
	char err[256];
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONFIG_TABLE_LEN; i++)
		if (config_apply(c, &config_table[i], config_table[i].def, err, sizeof(err)) != 0)
			abort(); /* a bad default is a bug in the table above */
}

int config_set(struct broker_config *c, const char *key, const char *value,
	       char *err, size_t err_len)
{
	const struct config_entry *e = config_find(key);
	if (e == NULL) {
		snprintf(err, err_len, "unknown setting '%s' (see --help)", key);
		return -1;
	}
	return config_apply(c, e, value, err, err_len);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int config_load_file(struct broker_config *c, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return -1;
	}
	char line[4096], why[256];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == '!')
			continue;
		char *eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, err_len, "%s:%d: expected key=value", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		if (config_set(c, trim(s), trim(eq + 1), why, sizeof(why)) != 0) {
			snprintf(err, err_len, "%s:%d: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* What a shard's budget must hold besides the cleaner: the fixed pools,
 * plus room for two requests of the largest size in flight (one being
 * assembled, one being answered), so a legal request can always make
 * progress. */
static int64_t config_budget_need(const struct broker_config *c)
{
	return (int64_t)c->recv_buffers * c->recv_buffer_bytes + config_write_pool_bytes(c) +
	       config_read_pool_bytes(c) + 2 * c->socket_request_max_bytes;
}

/* Shards the broker will run: num.shards, else one per CPU it may use
 * (as main.c counts them). */
static int64_t config_shard_count(const struct broker_config *c)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	if (c->shards > 0)
		return c->shards;
	int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
	return n < 1 ? 1 : n > SHARDS_MAX ? SHARDS_MAX : n;
}

/* The cleaner's offset map (log.cleaner.dedupe.buffer.size, per shard,
 * allocated whole when a shard first cleans). The rule: at least
 * COMPACT_MAP_BYTES_MIN (fewer keys than one batch may hold stalls every
 * round), at most COMPACT_MAP_BYTES_MAX (Kafka's 2 GiB per cleaner); and,
 * when the cleaner runs, it must fit each shard's budget beside what the
 * other settings need (it is charged there: a map that does not fit would
 * pause the shard's reads for good), and all shards' maps together at most
 * COMPACT_MAP_PHYS_MEMORY_PCT of the machine's physical memory. */
static int config_validate_cleaner(const struct broker_config *c, char *err, size_t err_len)
{
	long long map = (long long)c->log_cleaner_dedupe_buffer_size;
	if (map < COMPACT_MAP_BYTES_MIN || map > COMPACT_MAP_BYTES_MAX) {
		snprintf(err, err_len, "log.cleaner.dedupe.buffer.size: %lld is outside [%lld, %lld]: "
			 "the offset map takes 24 bytes a key and must hold at least one batch's keys; "
			 "2 GiB is the most one shard's cleaner may use", map,
			 (long long)COMPACT_MAP_BYTES_MIN, (long long)COMPACT_MAP_BYTES_MAX);
		return -1;
	}
	if (!c->log_cleaner_enable)
		return 0;
	long long need = (long long)config_budget_need(c);
	if (map > (long long)c->memory_per_shard_bytes - need) {
		snprintf(err, err_len, "log.cleaner.dedupe.buffer.size=%lld does not fit in "
			 "memory.per.shard.bytes=%lld beside the %lld bytes the other settings need; "
			 "lower it or raise memory.per.shard.bytes", map,
			 (long long)c->memory_per_shard_bytes, need);
		return -1;
	}
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	long long shards = (long long)config_shard_count(c);
	if (pages > 0 && page > 0 &&
	    map * shards > (long long)pages * page / 100 * COMPACT_MAP_PHYS_MEMORY_PCT) {
		snprintf(err, err_len, "log.cleaner.dedupe.buffer.size=%lld x %lld shards is more "
			 "than %d%% of this machine's %lld bytes of memory; lower it", map, shards,
			 COMPACT_MAP_PHYS_MEMORY_PCT, (long long)pages * page);
		return -1;
	}
	return 0;
}

int config_validate(const struct broker_config *c, char *err, size_t err_len)
{
	if (c->listen_host[0] == '\0' || c->listen_port == 0) {
		snprintf(err, err_len, "listeners: a HOST:PORT is required");
		return -1;
	}
	if (c->data_dir[0] == '\0') {
		snprintf(err, err_len, "log.dirs: a directory is required");
		return -1;
	}
	if (c->shards > 0 && c->shards > SHARDS_MAX) {
		snprintf(err, err_len, "num.shards: at most %d", SHARDS_MAX);
		return -1;
	}
	if (strcmp(c->shard_endpoints, "shared") != 0 && strcmp(c->shard_endpoints, "per-shard") != 0) {
		snprintf(err, err_len, "shard.endpoints: '%s' is not shared or per-shard",
			 c->shard_endpoints);
		return -1;
	}
	if (config_per_shard_endpoints(c) && (c->node_id >= SHARD_NODE_ID_STRIDE ||
					      c->listen_port + SHARDS_MAX > 65535)) {
		snprintf(err, err_len, "shard.endpoints=per-shard needs node.id below %d and a "
			 "listener port below %d", SHARD_NODE_ID_STRIDE, 65535 - SHARDS_MAX);
		return -1;
	}
	if (strcmp(c->hugepages, "auto") != 0 && strcmp(c->hugepages, "off") != 0 &&
	    strcmp(c->hugepages, "require") != 0) {
		snprintf(err, err_len, "hugepages: '%s' is not auto, off or require", c->hugepages);
		return -1;
	}
	if ((c->recv_buffers & (c->recv_buffers - 1)) != 0) {
		snprintf(err, err_len, "recv.buffers.per.shard: %d is not a power of two",
			 c->recv_buffers);
		return -1;
	}
	if (c->read_buffer_bytes != 0 &&
	    (c->read_buffer_bytes < FETCH_READ_WINDOW_BYTES ||
	     c->read_buffer_bytes / FETCH_READ_WINDOW_BYTES > BUFPOOL_BUFS_MAX)) {
		snprintf(err, err_len, "log.read.buffer.bytes: %lld is not between one read window "
			 "(%d) and %d of them", (long long)c->read_buffer_bytes,
			 FETCH_READ_WINDOW_BYTES, BUFPOOL_BUFS_MAX);
		return -1;
	}
	{
		int64_t need = config_budget_need(c);
		if (c->memory_per_shard_bytes < need) {
			snprintf(err, err_len, "memory.per.shard.bytes=%lld is below what the other "
				 "settings need: %lld (receive buffers + write.buffer.pool.bytes + "
				 "log.read.buffer.bytes + 2 x socket.request.max.bytes)",
				 (long long)c->memory_per_shard_bytes, (long long)need);
			return -1;
		}
	}
	if (config_validate_cleaner(c, err, err_len) != 0)
		return -1;
	if (c->log_preallocate_bytes % SIO_DIRECT_ALIGN != 0) {
		snprintf(err, err_len, "log.segment.preallocate.bytes: %lld is not a multiple of %d",
			 (long long)c->log_preallocate_bytes, SIO_DIRECT_ALIGN);
		return -1;
	}
	if (c->storage_faults[0] != '\0') {
		char why[160];
		if (sio_faults_parse(c->storage_faults, NULL, SIO_FAULT_RULES_MAX, why,
				     sizeof(why)) < 0) {
			snprintf(err, err_len, "storage.faults: %s", why);
			return -1;
		}
	}
	if (c->group_min_session_timeout_ms > c->group_max_session_timeout_ms) {
		snprintf(err, err_len, "group.min.session.timeout.ms must not exceed "
			 "group.max.session.timeout.ms");
		return -1;
	}
	if (config_validate_consumer_groups(c, err, err_len) != 0)
		return -1;
	if (c->message_max_bytes > c->socket_request_max_bytes) {
		snprintf(err, err_len, "message.max.bytes must not exceed socket.request.max.bytes");
		return -1;
	}
	return 0;
}

void config_print_help(FILE *out)
{
	fprintf(out, "Settings (--set KEY=VALUE, or KEY=VALUE lines in --config FILE):\n");
	for (size_t i = 0; i < CONFIG_TABLE_LEN; i++) {
		const struct config_entry *e = &config_table[i];
		fprintf(out, "  %-28s default %s\n      %s\n", e->name,
			e->def[0] ? e->def : "\"\"", e->help);
	}
}

const char *config_advertised_host(const struct broker_config *c)
{
	return c->advertise_host[0] != '\0' ? c->advertise_host : c->listen_host;
}

int64_t config_write_pool_bytes(const struct broker_config *c)
{
	return c->write_buffer_pool_bytes > 0 ? c->write_buffer_pool_bytes
					      : c->memory_per_shard_bytes / 8;
}

int32_t config_advertised_port(const struct broker_config *c)
{
	return c->advertise_port != 0 ? c->advertise_port : c->listen_port;
}

int64_t config_read_pool_bytes(const struct broker_config *c)
{
	int64_t w = FETCH_READ_WINDOW_BYTES, bytes = c->read_buffer_bytes;
	if (bytes == 0) {
		bytes = (int64_t)c->read_concurrency_max * w;
		if (bytes > c->memory_per_shard_bytes / FETCH_READ_POOL_BUDGET_DIV)
			bytes = c->memory_per_shard_bytes / FETCH_READ_POOL_BUDGET_DIV;
	}
	bytes = bytes / w * w;
	return bytes < w ? w : bytes;
}

int64_t config_tail_cache_bytes(const struct broker_config *c)
{
	int64_t pool = config_write_pool_bytes(c);
	if (c->tail_cache_bytes < 0)
		return pool / 2;
	return c->tail_cache_bytes < pool ? c->tail_cache_bytes : pool;
}

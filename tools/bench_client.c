/*
 * bench_client: librdkafka set-up shared by sluice-bench's workloads — client
 * configuration with -X overrides, topic creation and metadata, watermarks,
 * and the send-time stamp carried in record values. See bench.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

/* How long to wait for the broker's answer to an admin or metadata request. */
#define BENCH_ADMIN_TIMEOUT_MS 15000

/* librdkafka statistics, for the request counts: often enough that the
 * wait for counts taken after a run is short, rarely enough to cost
 * nothing measurable. */
#define BENCH_STATS_INTERVAL_MS "100"
#define BENCH_STATS_WAIT_NS 1000000000

/* "SLBENCH" and a version byte: a value that starts otherwise is not stamped. */
static const char bench_stamp_magic[8] = { 'S', 'L', 'B', 'E', 'N', 'C', 'H', 1 };
_Static_assert(BENCH_STAMP_BYTES == sizeof(bench_stamp_magic) + sizeof(int64_t),
	       "stamp = magic + CLOCK_MONOTONIC ns");

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bench_sleep_until_ns(int64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void bench_conf_put(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[512];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "sluice-bench: %s\n", err);
		exit(2);
	}
}

static void bench_conf_put_int(rd_kafka_conf_t *conf, const char *k, int v)
{
	char num[32];
	snprintf(num, sizeof(num), "%d", v);
	bench_conf_put(conf, k, num);
}

/* The producer's settings. The queue limits are high so a closed-loop run
 * can enqueue everything at once and the broker, not the client's queue, is
 * what limits throughput. */
static void bench_conf_producer(rd_kafka_conf_t *conf, const struct bench_opts *o)
{
	bench_conf_put(conf, "acks", o->acks);
	bench_conf_put(conf, "compression.codec", o->compression);
	bench_conf_put(conf, "enable.idempotence", "false");
	bench_conf_put(conf, "queue.buffering.max.messages", "1000000");
	bench_conf_put(conf, "queue.buffering.max.kbytes", "1048576");
	bench_conf_put_int(conf, "linger.ms", o->linger_ms);
	bench_conf_put_int(conf, "batch.size", o->batch_bytes);
	bench_conf_put_int(conf, "max.in.flight", o->inflight);
}

rd_kafka_conf_t *bench_conf_new(const struct bench_opts *o, rd_kafka_type_t role)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	bench_conf_put(conf, "bootstrap.servers", o->bootstrap);
	bench_conf_put(conf, "statistics.interval.ms", BENCH_STATS_INTERVAL_MS);
	if (role == RD_KAFKA_PRODUCER)
		bench_conf_producer(conf, o);
	for (int i = 0; i < o->props_count; i++) {
		char kv[512];
		snprintf(kv, sizeof(kv), "%s", o->props[i]);
		char *eq = strchr(kv, '=');
		if (eq == NULL) {
			fprintf(stderr, "sluice-bench: -X expects KEY=VALUE, got '%s'\n", kv);
			exit(2);
		}
		*eq = '\0';
		bench_conf_put(conf, kv, eq + 1);
	}
	return conf;
}

static void bench_topic_create(rd_kafka_t *rk, const struct bench_opts *o)
{
	char err[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(o->topic, o->partitions, 1, err, sizeof(err));
	if (nt == NULL) {
		fprintf(stderr, "sluice-bench: create topic: %s\n", err);
		exit(2);
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, BENCH_ADMIN_TIMEOUT_MS);
	if (ev == NULL) {
		fprintf(stderr, "sluice-bench: no answer from %s within %d ms\n", o->bootstrap,
			BENCH_ADMIN_TIMEOUT_MS);
		exit(1);
	}
	if (rd_kafka_event_error(ev) != 0) {
		fprintf(stderr, "sluice-bench: create topic: %s\n", rd_kafka_event_error_string(ev));
		exit(1);
	}
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	size_t n = 0;
	const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
	if (n == 1 && rd_kafka_topic_result_error(tr[0]) != 0 &&
	    rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
		fprintf(stderr, "sluice-bench: create topic: %s\n",
			rd_kafka_topic_result_error_string(tr[0]));
		exit(1);
	}
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
}

struct bench_topic_info bench_topic_prepare(rd_kafka_t *rk, const struct bench_opts *o,
					    bool create)
{
	if (create)
		bench_topic_create(rk, o);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, BENCH_ADMIN_TIMEOUT_MS);
	if (err != 0) {
		fprintf(stderr, "sluice-bench: metadata: %s\n", rd_kafka_err2str(err));
		exit(1);
	}
	struct bench_topic_info info = { .brokers = md->broker_cnt };
	if (md->topic_cnt == 1 && md->topics[0].err == 0)
		info.partitions = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	if (info.partitions < 1) {
		fprintf(stderr, "sluice-bench: topic %s has no partitions\n", o->topic);
		exit(1);
	}
	if (create && info.partitions != o->partitions)
		fprintf(stderr, "sluice-bench: topic %s exists with %d partitions; using them all\n",
			o->topic, info.partitions);
	return info;
}

void bench_watermarks(rd_kafka_t *rk, const char *topic, int n, int64_t *lo, int64_t *hi)
{
	for (int p = 0; p < n; p++) {
		rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
			rk, topic, p, &lo[p], &hi[p], BENCH_ADMIN_TIMEOUT_MS);
		if (err != 0) {
			fprintf(stderr, "sluice-bench: offsets of %s/%d: %s\n", topic, p,
				rd_kafka_err2str(err));
			exit(1);
		}
	}
}

/* The sum of the numbers after every occurrence of key in json. */
static int64_t bench_json_sum(const char *json, size_t len, const char *key)
{
	int64_t sum = 0;
	size_t klen = strlen(key);
	const char *p = json, *end = json + len;
	while ((p = memmem(p, (size_t)(end - p), key, klen)) != NULL) {
		p += klen;
		sum += strtoll(p, NULL, 10); /* the JSON's closing brace ends the number */
	}
	return sum;
}

void bench_requests_take(struct bench_requests *r, const char *json, size_t len)
{
	/* The first "ts" is the top-level one: brokers and topics come after. */
	const char *ts = memmem(json, len, "\"ts\":", 5);
	if (ts == NULL)
		return;
	r->ts_us = strtoll(ts + 5, NULL, 10);
	/* Each broker's "req" object counts requests by name; summed over
	 * brokers, since per-shard endpoints make several. */
	r->produce = bench_json_sum(json, len, "\"Produce\":");
	r->fetch = bench_json_sum(json, len, "\"Fetch\":");
}

void bench_requests_flush(rd_kafka_t *rk, const struct bench_requests *r, int64_t end_ns)
{
	int64_t give_up = bench_now_ns() + BENCH_STATS_WAIT_NS;
	while (r->ts_us * 1000 < end_ns && bench_now_ns() < give_up)
		rd_kafka_poll(rk, 20);
}

void bench_stamp_put(char *value, int len, int64_t t)
{
	if (len < BENCH_STAMP_BYTES)
		return;
	memcpy(value, bench_stamp_magic, sizeof(bench_stamp_magic));
	memcpy(value + sizeof(bench_stamp_magic), &t, sizeof(t));
}

int64_t bench_stamp_get(const void *value, size_t len)
{
	int64_t t;
	if (value == NULL || len < BENCH_STAMP_BYTES ||
	    memcmp(value, bench_stamp_magic, sizeof(bench_stamp_magic)) != 0)
		return -1;
	memcpy(&t, (const char *)value + sizeof(bench_stamp_magic), sizeof(t));
	return t;
}

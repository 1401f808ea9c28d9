/*
 * bench_kafka: the Kafka target (librdkafka): client configuration with -X
 * overrides, topic creation and metadata, watermarks, request counts from
 * librdkafka's statistics. The producer and consumer are in
 * bench_kafka_io.c. See bench_kafka.h.
 */
#include <stdlib.h>
#include <string.h>

#include "bench_kafka.h"

/* librdkafka statistics, for the request counts: often enough that the
 * wait for counts taken after a run is short, rarely enough to cost
 * nothing measurable. */
#define BENCH_STATS_INTERVAL_MS "100"
#define BENCH_STATS_WAIT_NS 1000000000

static void bench_conf_put(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[512];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		bench_die(2, "%s", err);
}

static void bench_conf_put_int(rd_kafka_conf_t *conf, const char *k, int64_t v)
{
	char num[32];
	snprintf(num, sizeof(num), "%lld", (long long)v);
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

rd_kafka_conf_t *bench_kafka_conf(const struct bench_opts *o, rd_kafka_type_t role)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	bench_conf_put(conf, "bootstrap.servers", o->bootstrap);
	bench_conf_put(conf, "statistics.interval.ms", BENCH_STATS_INTERVAL_MS);
	bench_conf_put_int(conf, "socket.connection.setup.timeout.ms",
			   (int64_t)(o->timeout_s * 1000));
	if (role == RD_KAFKA_PRODUCER)
		bench_conf_producer(conf, o);
	for (int i = 0; i < o->props_count; i++) {
		char kv[512];
		snprintf(kv, sizeof(kv), "%s", o->props[i]);
		char *eq = strchr(kv, '=');
		*eq = '\0'; /* bench_opts checked there is one */
		bench_conf_put(conf, kv, eq + 1);
	}
	return conf;
}

static int bench_kafka_timeout_ms(const struct bench_env *env)
{
	return (int)(env->o->timeout_s * 1000);
}

/* Check one CreateTopics result: an existing topic is fine. */
static void bench_kafka_created(rd_kafka_event_t *ev)
{
	if (rd_kafka_event_error(ev) != 0)
		bench_die(1, "create topic: %s", rd_kafka_event_error_string(ev));
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	size_t n = 0;
	const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
	for (size_t i = 0; i < n; i++)
		if (rd_kafka_topic_result_error(tr[i]) != 0 &&
		    rd_kafka_topic_result_error(tr[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			bench_die(1, "create topic %s: %s", rd_kafka_topic_result_name(tr[i]),
				  rd_kafka_topic_result_error_string(tr[i]));
}

static void bench_kafka_create(struct bench_env *env, rd_kafka_t *rk)
{
	const struct bench_opts *o = env->o;
	rd_kafka_NewTopic_t **nt = calloc((size_t)o->topics, sizeof(*nt));
	if (nt == NULL)
		bench_die(1, "out of memory");
	for (int i = 0; i < o->topics; i++) {
		char err[256];
		nt[i] = rd_kafka_NewTopic_new(env->topic_names[i], o->partitions, 1, err, sizeof(err));
		if (nt[i] == NULL)
			bench_die(2, "topic %s: %s", env->topic_names[i], err);
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)o->topics, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, bench_kafka_timeout_ms(env));
	if (ev == NULL)
		bench_die(1, "no answer from %s within %.1f s", o->bootstrap, o->timeout_s);
	bench_kafka_created(ev);
	rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy_array(nt, (size_t)o->topics);
	free(nt);
}

/* Partitions of each topic from metadata; they must all have as many. */
static void bench_kafka_metadata(struct bench_env *env, rd_kafka_t *rk, bool created)
{
	const struct bench_opts *o = env->o;
	for (int i = 0; i < o->topics; i++) {
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, env->topic_names[i], NULL);
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md,
							    bench_kafka_timeout_ms(env));
		if (err != 0)
			bench_die(1, "metadata of %s from %s: %s", env->topic_names[i], o->bootstrap,
				  rd_kafka_err2str(err));
		int n = md->topic_cnt == 1 && md->topics[0].err == 0 ? md->topics[0].partition_cnt : 0;
		env->brokers = md->broker_cnt;
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
		if (n < 1)
			bench_die(1, "topic %s does not exist (produce to it first)", env->topic_names[i]);
		if (i > 0 && n != env->partitions)
			bench_die(1, "topic %s has %d partitions, %s has %d", env->topic_names[i], n,
				  env->topic_names[0], env->partitions);
		if (created && n != o->partitions && i == 0)
			fprintf(stderr, "sluice-bench: topic %s exists with %d partitions; using them "
				"all\n", env->topic_names[i], n);
		env->partitions = n;
	}
	env->streams = o->topics * env->partitions;
}

/* Every stream's log start and end. */
static int bench_kafka_watermarks(struct bench_env *env, rd_kafka_t *rk, int64_t *lo, int64_t *hi)
{
	for (int s = 0; s < env->streams; s++) {
		rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
			rk, env->topic_names[s / env->partitions], s % env->partitions, &lo[s], &hi[s],
			bench_kafka_timeout_ms(env));
		if (err != 0) {
			fprintf(stderr, "sluice-bench: offsets of %s/%d: %s\n",
				env->topic_names[s / env->partitions], s % env->partitions,
				rd_kafka_err2str(err));
			return -1;
		}
	}
	return 0;
}

static void bench_kafka_setup(struct bench_env *env)
{
	const struct bench_opts *o = env->o;
	struct bench_kafka *k = calloc(1, sizeof(*k));
	char err[512];
	if (k == NULL)
		bench_die(1, "out of memory");
	rd_kafka_conf_t *conf = bench_kafka_conf(o, RD_KAFKA_PRODUCER);
	/* Topics are created explicitly, with --partitions; a consume of a
	 * missing topic is an error, not an empty topic made by a lookup. */
	bench_conf_put(conf, "allow.auto.create.topics", "false");
	k->admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (k->admin == NULL)
		bench_die(2, "%s", err);
	env->state = k;
	if (o->workload != BENCH_CONSUME)
		bench_kafka_create(env, k->admin);
	bench_kafka_metadata(env, k->admin, o->workload != BENCH_CONSUME);
	k->lo = calloc((size_t)env->streams, sizeof(*k->lo));
	k->hi = calloc((size_t)env->streams, sizeof(*k->hi));
	if (k->lo == NULL || k->hi == NULL)
		bench_die(1, "out of memory");
	if (bench_kafka_watermarks(env, k->admin, k->lo, k->hi) != 0)
		exit(1);
	if (o->workload != BENCH_CONSUME)
		return;
	env->wanted = 0;
	for (int s = 0; s < env->streams; s++)
		env->wanted += k->hi[s] - k->lo[s];
	if (o->records_given && o->records < env->wanted)
		env->wanted = o->records;
}

static int64_t bench_kafka_count(struct bench_env *env)
{
	struct bench_kafka *k = env->state;
	int64_t *lo = calloc((size_t)env->streams, sizeof(*lo));
	int64_t *hi = calloc((size_t)env->streams, sizeof(*hi));
	int64_t n = -1;
	if (lo != NULL && hi != NULL && bench_kafka_watermarks(env, k->admin, lo, hi) == 0) {
		n = 0;
		for (int s = 0; s < env->streams; s++)
			n += hi[s] - lo[s];
	}
	free(lo);
	free(hi);
	return n;
}

static void bench_kafka_describe(struct bench_env *env, struct bench_json *j)
{
	bench_json_str(j, "kind", "kafka");
	bench_json_int(j, "brokers", env->brokers);
	bench_json_str(j, "client", rd_kafka_version_str());
	bench_json_str(j, "durability", "the broker's own; acks as in settings");
}

static void bench_kafka_teardown(struct bench_env *env)
{
	struct bench_kafka *k = env->state;
	rd_kafka_destroy(k->admin);
	free(k->lo);
	free(k->hi);
	free(k);
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

void bench_kafka_requests_take(struct bench_kafka_requests *r, const char *json, size_t len)
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

void bench_kafka_requests_flush(rd_kafka_t *rk, const struct bench_kafka_requests *r,
				int64_t end_ns)
{
	int64_t give_up = bench_now_ns() + BENCH_STATS_WAIT_NS;
	while (r->ts_us * 1000 < end_ns && bench_now_ns() < give_up)
		rd_kafka_poll(rk, 20);
}

static const char *bench_kafka_check(const struct bench_opts *o)
{
	(void)o;
	return NULL;
}

const struct bench_target bench_target_kafka = {
	.name = "kafka",
	.default_bootstrap = "127.0.0.1:9092",
	.default_port = 9092,
	.check = bench_kafka_check,
	.setup = bench_kafka_setup,
	.producer_open = bench_kafka_producer_open,
	.send = bench_kafka_send,
	.wait = bench_kafka_wait,
	.drain = bench_kafka_drain,
	.producer_close = bench_kafka_producer_close,
	.consumer_open = bench_kafka_consumer_open,
	.consume = bench_kafka_consume,
	.consumer_close = bench_kafka_consumer_close,
	.count = bench_kafka_count,
	.describe = bench_kafka_describe,
	.teardown = bench_kafka_teardown,
};

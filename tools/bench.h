/*
 * bench: the parts of sluice-bench shared by its workloads — options,
 * results, the librdkafka client set-up and the clock. One header for the
 * tool's modules: bench_client.c (configuration, topic, metadata),
 * bench_produce.c, bench_fetch.c and sluice-bench.c (arguments, the modes,
 * the report).
 *
 * Threads: a produce run has a pacing thread (the caller) and a poller
 * thread that serves delivery reports; a fetch run consumes on the calling
 * thread. In mode "both" the fetch runs on a thread of its own next to the
 * produce. Each run's result struct is written by that run's threads only and
 * read by the caller after they are joined; the one thing shared across runs
 * is struct bench_link (atomics).
 */
#ifndef SLUICE_BENCH_H
#define SLUICE_BENCH_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"

/* -X key=value properties accepted; each applies to every client. */
#define BENCH_PROPS_MAX 32

/* A record whose value is at least this long carries its send time, so the
 * consumer of mode "both" can measure end-to-end latency (see
 * bench_stamp_put). */
#define BENCH_STAMP_BYTES 16

/* A fetch that sees no record for this long gives up and says it is
 * incomplete, rather than waiting forever for records that are not coming. */
#define BENCH_FETCH_IDLE_MS 10000

enum bench_mode { BENCH_PRODUCE, BENCH_FETCH, BENCH_BOTH };

struct bench_opts {
	const char *bootstrap;
	enum bench_mode mode;
	const char *topic;
	int partitions;
	int record_size;
	int64_t records;
	bool records_given;
	double duration_s;
	double warmup_s;
	const char *acks;
	int linger_ms;
	int batch_bytes;
	const char *compression;
	double rate;
	int inflight;
	int pace_us; /* the pacer's shortest sleep; see bench_produce.c */
	bool json;
	const char *props[BENCH_PROPS_MAX]; /* "key=value", from -X */
	int props_count;
};

/* Requests the client sent, from librdkafka's statistics (brokers[].req),
 * so a per-record figure can be read against records per request. */
struct bench_requests {
	int64_t produce, fetch;
	int64_t ts_us; /* when librdkafka took these counts (CLOCK_MONOTONIC); -1: none */
};

struct bench_produce_result {
	struct hist lat; /* us, intended send time to delivery report */
	int64_t acked, failed;
	double seconds;
	char first_error[256];
	struct bench_requests req;
	/* Kept by the delivery reports while the run goes on. */
	int64_t record_after_ns, last_ack_ns;
};

struct bench_fetch_result {
	struct hist e2e; /* us, send time stamped in the value to consumption */
	int64_t records, bytes, errors;
	int64_t wanted; /* records it set out to read; -1 in mode "both" until known */
	double seconds;
	bool complete;
	char first_error[256];
	struct bench_requests req;
};

/* Mode "both": how the produce tells the concurrent fetch when to stop. */
struct bench_link {
	atomic_int_fast64_t produced;        /* acknowledged records; -1 while producing */
	atomic_int_fast64_t record_after_ns; /* warm-up end: earlier stamps not counted */
};

/* What the broker said about the topic. */
struct bench_topic_info {
	int partitions;
	int brokers; /* brokers in Metadata: >1 with shard.endpoints=per-shard */
};

int64_t bench_now_ns(void);
void bench_sleep_until_ns(int64_t t);

/* A client configuration: bootstrap, then the role's defaults, then every
 * -X property (so -X overrides anything). Exits with a message on a bad
 * property. The caller owns the result until rd_kafka_new takes it. */
rd_kafka_conf_t *bench_conf_new(const struct bench_opts *o, rd_kafka_type_t role);

/* Create the topic with --partitions partitions when create is true (an
 * existing topic is used as it is), then read its metadata. Exits with a
 * message if the broker does not answer or the topic has no partitions. */
struct bench_topic_info bench_topic_prepare(rd_kafka_t *rk, const struct bench_opts *o,
					    bool create);

/* High watermark (hi) and log start (lo) of each of n partitions. Exits with
 * a message if the broker does not answer. */
void bench_watermarks(rd_kafka_t *rk, const char *topic, int n, int64_t *lo, int64_t *hi);

/* Statistics: take the request counts from one statistics JSON (a
 * stats_cb's), and, after a run, serve rk's callbacks until counts taken
 * after end_ns have arrived (at most 1 s; librdkafka emits them every
 * statistics.interval.ms). Call bench_requests_flush on the one thread that
 * serves rk's callbacks at that point. */
void bench_requests_take(struct bench_requests *r, const char *json, size_t len);
void bench_requests_flush(rd_kafka_t *rk, const struct bench_requests *r, int64_t end_ns);

/* Put send time t into the first BENCH_STAMP_BYTES of value (a no-op for a
 * shorter value); return t from a stamped value, or -1. */
void bench_stamp_put(char *value, int len, int64_t t);
int64_t bench_stamp_get(const void *value, size_t len);

/* A producer whose delivery reports go into res. Exits with a message if
 * librdkafka refuses the configuration. */
rd_kafka_t *bench_producer_new(const struct bench_opts *o, struct bench_produce_result *res);

/* Produce --records (or for --duration) round-robin over partitions and wait
 * for every delivery report. link may be NULL; otherwise its produced is set
 * when the last report is in. Returns 0, or -1 if produce() itself failed. */
int bench_produce_run(const struct bench_opts *o, rd_kafka_t *rk, int partitions,
		      struct bench_link *link, struct bench_produce_result *res);

/* A consumer for bench_fetch_run (no group: partitions are started one by
 * one at explicit offsets), whose statistics go into res. Exits with a message on a bad configuration. */
rd_kafka_t *bench_consumer_new(const struct bench_opts *o, struct bench_fetch_result *res);

/* Consume partitions 0..n-1 of the topic from start[p]. Without link: stop
 * after res->wanted records or --duration. With link: stop once link's
 * produced count has been consumed, and record end-to-end latency. Either
 * way, stop after BENCH_FETCH_IDLE_MS without a record. */
void bench_fetch_run(const struct bench_opts *o, rd_kafka_t *rk, int partitions,
		     const int64_t *start, struct bench_link *link,
		     struct bench_fetch_result *res);

#endif

/*
 * bench_kafka: the Kafka target's parts shared by its two files —
 * bench_kafka.c (client configuration, topics, metadata, watermarks, the
 * request counts from librdkafka's statistics) and bench_kafka_io.c (the
 * producer and consumer ops).
 */
#ifndef SLUICE_BENCH_KAFKA_H
#define SLUICE_BENCH_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "bench.h"

/* The run's state: an admin client for setup and the final count, and each
 * stream's log start and end when setup looked (consumers start there). */
struct bench_kafka {
	rd_kafka_t *admin;
	int64_t *lo, *hi;
};

/* Requests a client sent, from librdkafka's statistics (brokers[].req). */
struct bench_kafka_requests {
	int64_t produce, fetch;
	int64_t ts_us; /* when librdkafka took these counts (CLOCK_MONOTONIC); -1: none */
};

/* A client configuration: bootstrap and timeouts, the role's defaults, then
 * every -X property (so -X overrides anything). Exits 2 on a bad property. */
rd_kafka_conf_t *bench_kafka_conf(const struct bench_opts *o, rd_kafka_type_t role);

/* Take the request counts from one statistics JSON (a stats_cb's). */
void bench_kafka_requests_take(struct bench_kafka_requests *r, const char *json, size_t len);
/* After a run: serve rk's callbacks until counts taken after end_ns have
 * arrived (at most 1 s). Call on the one thread serving rk's callbacks. */
void bench_kafka_requests_flush(rd_kafka_t *rk, const struct bench_kafka_requests *r,
				int64_t end_ns);

/* The ops of bench_kafka_io.c. */
void *bench_kafka_producer_open(struct bench_env *env, int index, struct bench_meter *m);
int bench_kafka_send(void *p, const struct bench_rec *r);
int bench_kafka_wait(void *p, int64_t until_ns);
int bench_kafka_drain(void *p, int64_t deadline_ns);
void bench_kafka_producer_close(void *p);
void *bench_kafka_consumer_open(struct bench_env *env, int index, struct bench_meter *m);
int bench_kafka_consume(void *c, int wait_ms);
void bench_kafka_consumer_close(void *c);

#endif

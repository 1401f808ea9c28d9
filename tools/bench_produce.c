/*
 * bench_produce: the produce workload. Records of --record-size bytes go
 * round-robin to every partition of the topic, as fast as possible or at
 * --rate records/s (open loop: latency is measured from each record's
 * intended send time, so a stalled broker cannot hide its stall —
 * coordinated omission). Latency is per record, from its intended send time
 * to its delivery report (the broker's acknowledgement).
 *
 * Threads: the caller paces and produces (sleeping until each record is due,
 * never spinning, so it does not steal a core from the broker or from
 * librdkafka on a small machine). A sleep is never shorter than --pace-us:
 * on a virtual machine each timer sleep costs some 25 us of CPU, so sleeping
 * per record caps an open-loop run near 45,000 records/s with the client's
 * core saturated. Instead the pacer wakes at most every --pace-us and sends
 * every record then due; the wait of a record that fell due in between is
 * client-side delay, and it is counted in the record's latency, as it should
 * be in an open-loop measurement (up to --pace-us, about half on average,
 * and only at rates above 1e6/pace-us records/s). A poller thread blocks in rd_kafka_poll and
 * timestamps each delivery report as soon as librdkafka hands it over. The
 * result, histogram included, is written by the poller only until it is
 * joined.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Runs on the poller thread (rd_kafka_poll serves it). */
static void bench_produce_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct bench_produce_result *res = opaque;
	(void)rk;
	int64_t t = bench_now_ns(), sent = (int64_t)(intptr_t)m->_private;
	if (m->err != 0) {
		if (res->failed++ == 0)
			snprintf(res->first_error, sizeof(res->first_error), "%s",
				 rd_kafka_err2str(m->err));
		return;
	}
	res->acked++;
	res->last_ack_ns = t;
	if (sent >= res->record_after_ns)
		hist_record(&res->lat, (uint64_t)(t - sent) / 1000);
}

static int bench_produce_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct bench_produce_result *res = opaque;
	(void)rk;
	bench_requests_take(&res->req, json, len);
	return 0;
}

rd_kafka_t *bench_producer_new(const struct bench_opts *o, struct bench_produce_result *res)
{
	char err[512];
	rd_kafka_conf_t *conf = bench_conf_new(o, RD_KAFKA_PRODUCER);
	rd_kafka_conf_set_dr_msg_cb(conf, bench_produce_dr);
	rd_kafka_conf_set_stats_cb(conf, bench_produce_stats);
	res->req.ts_us = -1;
	rd_kafka_conf_set_opaque(conf, res);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "sluice-bench: %s\n", err);
		exit(2);
	}
	return rk;
}

struct bench_poller {
	rd_kafka_t *rk;
	atomic_bool done;
};

/* Serve delivery reports as they arrive (see the threads note above). */
static void *bench_poller_main(void *arg)
{
	struct bench_poller *p = arg;
	while (!atomic_load(&p->done))
		rd_kafka_poll(p->rk, 50);
	rd_kafka_poll(p->rk, 0);
	return NULL;
}

/* Hand one record to librdkafka, waiting while its queue is full. */
static int bench_produce_one(rd_kafka_topic_t *rkt, int32_t partition, char *value, int len,
			     int64_t t)
{
	bench_stamp_put(value, len, t);
	while (rd_kafka_produce(rkt, partition, RD_KAFKA_MSG_F_COPY, value, (size_t)len, NULL, 0,
				(void *)(intptr_t)t) != 0) {
		if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			fprintf(stderr, "sluice-bench: produce: %s\n",
				rd_kafka_err2str(rd_kafka_last_error()));
			return -1;
		}
		bench_sleep_until_ns(bench_now_ns() + 100000); /* queue full: let acks drain */
	}
	return 0;
}

/* The pacing loop. Returns 0, or -1 if produce() failed. */
static int bench_produce_loop(const struct bench_opts *o, rd_kafka_topic_t *rkt, int partitions,
			      int64_t start)
{
	char *value = calloc(1, (size_t)o->record_size + 1);
	memset(value, 'x', (size_t)o->record_size);
	int64_t end = start + (int64_t)(o->duration_s * 1e9);
	int64_t pace_ns = (int64_t)o->pace_us * 1000;
	int rc = 0;
	for (int64_t sent = 0; rc == 0; sent++) {
		if (o->duration_s > 0 ? bench_now_ns() >= end : sent >= o->records)
			break;
		int64_t t = bench_now_ns();
		if (o->rate > 0) {
			/* Open loop: latency counts from the intended send time. */
			int64_t now = t;
			t = start + (int64_t)((double)sent * 1e9 / o->rate);
			if (t > now)
				bench_sleep_until_ns(t > now + pace_ns ? t : now + pace_ns);
		}
		rc = bench_produce_one(rkt, (int32_t)(sent % partitions), value, o->record_size, t);
	}
	free(value);
	return rc;
}

int bench_produce_run(const struct bench_opts *o, rd_kafka_t *rk, int partitions,
		      struct bench_link *link, struct bench_produce_result *res)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	struct bench_poller poller = { .rk = rk };
	pthread_t thread;
	int64_t start = bench_now_ns();
	res->record_after_ns = start + (int64_t)(o->warmup_s * 1e9);
	if (link != NULL)
		atomic_store(&link->record_after_ns, res->record_after_ns);
	pthread_create(&thread, NULL, bench_poller_main, &poller);
	int rc = bench_produce_loop(o, rkt, partitions, start);
	/* Not rd_kafka_flush: it would serve callbacks on this thread too,
	 * racing the poller on the result. */
	while (rd_kafka_outq_len(rk) > 0)
		bench_sleep_until_ns(bench_now_ns() + 1000000);
	atomic_store(&poller.done, true);
	pthread_join(thread, NULL);
	bench_requests_flush(rk, &res->req, bench_now_ns());
	if (link != NULL)
		atomic_store(&link->produced, res->acked);
	res->seconds = (double)(res->last_ack_ns - (o->warmup_s > 0 ? res->record_after_ns : start)) / 1e9;
	if (o->warmup_s > 0)
		res->acked = (int64_t)res->lat.total; /* count only measured records */
	if (res->seconds <= 0)
		res->seconds = 1e-9;
	rd_kafka_topic_destroy(rkt);
	return rc;
}

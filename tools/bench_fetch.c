/*
 * bench_fetch: the fetch workload. One consumer reads every partition of the
 * topic from given offsets, through librdkafka's simple (queue) consumer API:
 * no consumer group, so the broker needs no group coordinator and the
 * measurement is Fetch alone.
 *
 * Messages are served with rd_kafka_consume_callback_queue, which hands over
 * whatever has arrived without waiting for a batch to fill, so each record is
 * timestamped when the application could first see it (the batch call would
 * hold early records back until its batch filled or timed out, inflating
 * end-to-end latency and the elapsed time alike).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* How long one wait for records may block, so stop conditions are checked
 * often enough. */
#define BENCH_FETCH_WAIT_MS 100

struct bench_fetch_ctx {
	struct bench_fetch_result *res;
	struct bench_link *link;
	int64_t last_ns;
};

static void bench_fetch_record(rd_kafka_message_t *m, void *opaque)
{
	struct bench_fetch_ctx *c = opaque;
	struct bench_fetch_result *res = c->res;
	int64_t t = bench_now_ns();
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		return;
	if (m->err != 0) {
		if (res->errors++ == 0)
			snprintf(res->first_error, sizeof(res->first_error), "%s",
				 rd_kafka_message_errstr(m));
		return;
	}
	res->records++;
	res->bytes += (int64_t)m->len;
	c->last_ns = t;
	if (c->link == NULL)
		return;
	int64_t sent = bench_stamp_get(m->payload, m->len);
	if (sent >= 0 && sent >= atomic_load(&c->link->record_after_ns))
		hist_record(&res->e2e, (uint64_t)(t - sent) / 1000);
}

/* Served by rd_kafka_poll only, which the fetch calls after its run: the
 * consume calls serve the consumer's queue, not the main one. */
static int bench_fetch_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct bench_fetch_result *res = opaque;
	(void)rk;
	bench_requests_take(&res->req, json, len);
	return 0;
}

rd_kafka_t *bench_consumer_new(const struct bench_opts *o, struct bench_fetch_result *res)
{
	char err[512];
	rd_kafka_conf_t *conf = bench_conf_new(o, RD_KAFKA_CONSUMER);
	rd_kafka_conf_set_stats_cb(conf, bench_fetch_stats);
	rd_kafka_conf_set_opaque(conf, res);
	res->req.ts_us = -1;
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "sluice-bench: %s\n", err);
		exit(2);
	}
	return rk;
}

/* True once the run has what it came for; sets res->complete then. */
static bool bench_fetch_done(const struct bench_opts *o, struct bench_fetch_ctx *c,
			     int64_t start_ns, int64_t now)
{
	struct bench_fetch_result *res = c->res;
	if (c->link != NULL)
		res->wanted = atomic_load(&c->link->produced);
	if (res->wanted >= 0 && res->records >= res->wanted) {
		res->complete = true;
		return true;
	}
	if (c->link == NULL && o->duration_s > 0 && now - start_ns >= (int64_t)(o->duration_s * 1e9))
		return true;
	/* Idle: nothing for a while. While a linked produce is still going,
	 * silence means the consumer is stuck, which is also worth stopping. */
	return now - c->last_ns >= (int64_t)BENCH_FETCH_IDLE_MS * 1000000;
}

void bench_fetch_run(const struct bench_opts *o, rd_kafka_t *rk, int partitions,
		     const int64_t *start, struct bench_link *link,
		     struct bench_fetch_result *res)
{
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	int64_t start_ns = bench_now_ns();
	struct bench_fetch_ctx c = { .res = res, .link = link, .last_ns = start_ns };
	for (int p = 0; p < partitions; p++)
		if (rd_kafka_consume_start_queue(rkt, p, start[p], q) != 0) {
			fprintf(stderr, "sluice-bench: consume %s/%d: %s\n", o->topic, p,
				rd_kafka_err2str(rd_kafka_last_error()));
			exit(1);
		}
	while (!bench_fetch_done(o, &c, start_ns, bench_now_ns()))
		rd_kafka_consume_callback_queue(q, BENCH_FETCH_WAIT_MS, bench_fetch_record, &c);
	for (int p = 0; p < partitions; p++)
		rd_kafka_consume_stop(rkt, p);
	bench_requests_flush(rk, &res->req, bench_now_ns());
	res->seconds = (double)(c.last_ns - start_ns) / 1e9;
	if (res->seconds <= 0)
		res->seconds = 1e-9;
	rd_kafka_queue_destroy(q);
	rd_kafka_topic_destroy(rkt);
}

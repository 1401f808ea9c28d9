/*
 * bench_kafka_io: the Kafka target's producer and consumer.
 *
 * Producer: librdkafka batches and sends on its own threads; a poller
 * thread of ours blocks in rd_kafka_poll and hands each delivery report to
 * the meter as soon as librdkafka does (so the poller is the meter's one
 * writer). A record's intended send time rides along as the message's
 * opaque, so ack latency needs no stamp in the value.
 *
 * Consumer: librdkafka's simple (queue) consumer, no group: the broker
 * needs no group coordinator and the measurement is Fetch alone. Partitions
 * are dealt out among the consumers (stream s to consumer s % consumers),
 * started at the log start (consume) or at the end setup saw (e2e).
 * Messages are served with rd_kafka_consume_callback_queue, which hands
 * over whatever has arrived without waiting for a batch to fill, so each
 * record is timestamped when the application could first see it.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench_kafka.h"

#define RELAXED memory_order_relaxed
/* A full client queue: wait this long for acks to drain it. */
#define BENCH_KAFKA_FULL_NS 100000

struct bench_kafka_producer {
	struct bench_env *env;
	struct bench_meter *m;
	rd_kafka_t *rk;
	rd_kafka_topic_t **rkt;   /* per topic */
	pthread_t poller;
	_Atomic bool done;
	struct bench_kafka_requests req;
};

/* Runs on the poller thread (rd_kafka_poll serves it). */
static void bench_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	struct bench_kafka_producer *p = opaque;
	(void)rk;
	bench_meter_ack(p->m, (int64_t)(intptr_t)msg->_private, msg->len,
			msg->err != 0 ? rd_kafka_err2str(msg->err) : NULL);
}

static int bench_kafka_pstats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct bench_kafka_producer *p = opaque;
	(void)rk;
	bench_kafka_requests_take(&p->req, json, len);
	return 0;
}

static void *bench_kafka_poller(void *arg)
{
	struct bench_kafka_producer *p = arg;
	while (!atomic_load(&p->done))
		rd_kafka_poll(p->rk, 50);
	rd_kafka_poll(p->rk, 0);
	return NULL;
}

static rd_kafka_topic_t **bench_kafka_topics(struct bench_env *env, rd_kafka_t *rk)
{
	rd_kafka_topic_t **rkt = calloc((size_t)env->o->topics, sizeof(*rkt));
	if (rkt == NULL)
		bench_die(1, "out of memory");
	for (int i = 0; i < env->o->topics; i++)
		rkt[i] = rd_kafka_topic_new(rk, env->topic_names[i], NULL);
	return rkt;
}

void *bench_kafka_producer_open(struct bench_env *env, int index, struct bench_meter *m)
{
	struct bench_kafka_producer *p = calloc(1, sizeof(*p));
	char err[512];
	(void)index;
	if (p == NULL)
		bench_die(1, "out of memory");
	*p = (struct bench_kafka_producer){ .env = env, .m = m, .req.ts_us = -1 };
	rd_kafka_conf_t *conf = bench_kafka_conf(env->o, RD_KAFKA_PRODUCER);
	rd_kafka_conf_set_dr_msg_cb(conf, bench_kafka_dr);
	rd_kafka_conf_set_stats_cb(conf, bench_kafka_pstats);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (p->rk == NULL)
		bench_die(2, "%s", err);
	p->rkt = bench_kafka_topics(env, p->rk);
	if (pthread_create(&p->poller, NULL, bench_kafka_poller, p) != 0)
		bench_die(1, "cannot start a thread");
	return p;
}

/* Hand one record to librdkafka, waiting while its queue is full. */
int bench_kafka_send(void *arg, const struct bench_rec *r)
{
	struct bench_kafka_producer *p = arg;
	int parts = p->env->partitions;
	while (rd_kafka_produce(p->rkt[r->stream / parts], r->stream % parts, RD_KAFKA_MSG_F_COPY,
				(void *)r->value, r->len, r->key, r->key_len,
				(void *)(intptr_t)r->sched_ns) != 0) {
		rd_kafka_resp_err_t err = rd_kafka_last_error();
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			bench_meter_error(p->m, rd_kafka_err2str(err));
			return -1;
		}
		bench_sleep_until_ns(bench_now_ns() + BENCH_KAFKA_FULL_NS);
	}
	return 0;
}

int bench_kafka_wait(void *arg, int64_t until_ns)
{
	(void)arg;
	bench_sleep_until_ns(until_ns); /* the poller serves the acks */
	return 0;
}

int bench_kafka_drain(void *arg, int64_t deadline_ns)
{
	struct bench_kafka_producer *p = arg;
	/* Not rd_kafka_flush: it would serve callbacks on this thread too,
	 * racing the poller on the meter. */
	while (rd_kafka_outq_len(p->rk) > 0 && bench_now_ns() < deadline_ns)
		bench_sleep_until_ns(bench_now_ns() + 1000000);
	int left = rd_kafka_outq_len(p->rk);
	atomic_store(&p->done, true);
	pthread_join(p->poller, NULL);
	bench_kafka_requests_flush(p->rk, &p->req, bench_now_ns());
	p->m->requests = p->req.ts_us < 0 ? -1 : p->req.produce;
	if (left > 0) {
		bench_meter_error(p->m, "records still unacknowledged after the drain time");
		return -1;
	}
	return 0;
}

void bench_kafka_producer_close(void *arg)
{
	struct bench_kafka_producer *p = arg;
	for (int i = 0; i < p->env->o->topics; i++)
		rd_kafka_topic_destroy(p->rkt[i]);
	free(p->rkt);
	rd_kafka_destroy(p->rk);
	free(p);
}

struct bench_kafka_consumer {
	struct bench_env *env;
	struct bench_meter *m;
	rd_kafka_t *rk;
	rd_kafka_topic_t **rkt;
	rd_kafka_queue_t *q;
	int index, seen;
	struct bench_kafka_requests req;
};

/* Served by rd_kafka_poll only, which the consumer calls at close: the
 * consume calls serve the consumer's queue, not the main one. */
static int bench_kafka_cstats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	struct bench_kafka_consumer *c = opaque;
	(void)rk;
	bench_kafka_requests_take(&c->req, json, len);
	return 0;
}

static void bench_kafka_record(rd_kafka_message_t *msg, void *opaque)
{
	struct bench_kafka_consumer *c = opaque;
	if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		return;
	if (msg->err != 0) {
		bench_meter_error(c->m, rd_kafka_message_errstr(msg));
		return;
	}
	bench_meter_record(c->m, msg->payload, msg->len);
	c->seen++;
}

void *bench_kafka_consumer_open(struct bench_env *env, int index, struct bench_meter *m)
{
	struct bench_kafka_consumer *c = calloc(1, sizeof(*c));
	struct bench_kafka *k = env->state;
	char err[512];
	if (c == NULL)
		bench_die(1, "out of memory");
	*c = (struct bench_kafka_consumer){ .env = env, .m = m, .index = index, .req.ts_us = -1 };
	rd_kafka_conf_t *conf = bench_kafka_conf(env->o, RD_KAFKA_CONSUMER);
	rd_kafka_conf_set_stats_cb(conf, bench_kafka_cstats);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (c->rk == NULL)
		bench_die(2, "%s", err);
	c->rkt = bench_kafka_topics(env, c->rk);
	c->q = rd_kafka_queue_new(c->rk);
	int64_t *start = env->o->workload == BENCH_E2E ? k->hi : k->lo;
	for (int s = index; s < env->streams; s += env->o->consumers)
		if (rd_kafka_consume_start_queue(c->rkt[s / env->partitions], s % env->partitions,
						 start[s], c->q) != 0)
			bench_die(1, "consume %s/%d: %s", env->topic_names[s / env->partitions],
				  s % env->partitions, rd_kafka_err2str(rd_kafka_last_error()));
	return c;
}

int bench_kafka_consume(void *arg, int wait_ms)
{
	struct bench_kafka_consumer *c = arg;
	if (c->index >= c->env->streams) { /* more consumers than partitions */
		bench_sleep_until_ns(bench_now_ns() + (int64_t)wait_ms * 1000000);
		return 0;
	}
	c->seen = 0;
	rd_kafka_consume_callback_queue(c->q, wait_ms, bench_kafka_record, c);
	return c->seen;
}

void bench_kafka_consumer_close(void *arg)
{
	struct bench_kafka_consumer *c = arg;
	struct bench_env *env = c->env;
	for (int s = c->index; s < env->streams; s += env->o->consumers)
		rd_kafka_consume_stop(c->rkt[s / env->partitions], s % env->partitions);
	bench_kafka_requests_flush(c->rk, &c->req, bench_now_ns());
	c->m->requests = c->req.ts_us < 0 ? -1 : c->req.fetch;
	rd_kafka_queue_destroy(c->q);
	for (int i = 0; i < env->o->topics; i++)
		rd_kafka_topic_destroy(c->rkt[i]);
	free(c->rkt);
	rd_kafka_destroy(c->rk);
	free(c);
}

/*
 * sluice-bench: a load generator for any Kafka-protocol broker, built on
 * librdkafka (the standard C client), so what it measures is what a real
 * application sees.
 *
 * Workload today: produce. Records of --record-size bytes go round-robin to
 * --partitions partitions of --topic, as fast as possible or at --rate
 * records/s (open loop: latency is measured from each record's intended send
 * time, so a stalled broker cannot hide its stall — coordinated omission).
 * Latency is per record, from produce() to its delivery report (the
 * broker's acknowledgement).
 *
 * Threads: the main thread paces and produces (sleeping until each record is
 * due, never spinning, so it does not steal a core from the broker or from
 * librdkafka on a small machine); a poller thread blocks in rd_kafka_poll and
 * timestamps each delivery report as soon as librdkafka hands it over. The
 * histogram is touched by the poller only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

struct bench_opts {
	const char *bootstrap;
	const char *workload;
	const char *topic;
	int partitions;
	int record_size;
	int64_t records;
	double duration_s;
	double warmup_s;
	const char *acks;
	int linger_ms;
	int batch_bytes;
	const char *compression;
	double rate;
	int inflight;
	bool json;
};

struct bench_state {
	atomic_bool done;
	struct hist lat;
	int64_t acked, failed, record_after_ns;
	int64_t first_ns, last_ack_ns;
	char first_error[256];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluice-bench [--bootstrap HOST:PORT] [--json] produce [options]\n\n"
		"  --bootstrap HOST:PORT  broker to connect to (default 127.0.0.1:9092)\n"
		"  --json                 print one JSON object as the last line\n"
		"Produce options:\n"
		"  --topic NAME           topic (default sluice-bench; created if missing)\n"
		"  --partitions N         partitions to create and spread records over (default 1)\n"
		"  --record-size BYTES    value size (default 1024)\n"
		"  --records N            records to send (default 1000000)\n"
		"  --duration S           send for S seconds instead of a record count\n"
		"  --warmup S             do not count the first S seconds (default 0)\n"
		"  --acks 0|1|all         (default 1)\n"
		"  --linger-ms MS         librdkafka linger.ms (default 5)\n"
		"  --batch-bytes BYTES    librdkafka batch.size (default 1048576)\n"
		"  --compression CODEC    none|gzip|snappy|lz4|zstd (default none)\n"
		"  --rate R               records/s, open loop (default: as fast as possible)\n"
		"  --inflight N           max.in.flight.requests.per.connection (default 5)\n"
		"  --help                 this text\n");
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	static const struct option opts[] = {
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "topic", required_argument, NULL, 't' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "record-size", required_argument, NULL, 's' },
		{ "records", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "acks", required_argument, NULL, 'a' },
		{ "linger-ms", required_argument, NULL, 'l' },
		{ "batch-bytes", required_argument, NULL, 'B' },
		{ "compression", required_argument, NULL, 'z' },
		{ "rate", required_argument, NULL, 'r' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct bench_opts){ .bootstrap = "127.0.0.1:9092", .topic = "sluice-bench",
				  .partitions = 1, .record_size = 1024, .records = 1000000,
				  .acks = "1", .linger_ms = 5, .batch_bytes = 1048576,
				  .compression = "none", .inflight = 5 };
	for (;;) {
		int c = getopt_long(argc, argv, "+", opts, NULL);
		if (c == -1) {
			/* "+" stops at the workload word; options may follow it. */
			if (optind < argc && o->workload == NULL) {
				o->workload = argv[optind++];
				continue;
			}
			if (optind < argc) {
				fprintf(stderr, "sluice-bench: unexpected argument '%s'\n", argv[optind]);
				exit(2);
			}
			break;
		}
		switch (c) {
		case 'b': o->bootstrap = optarg; break;
		case 'j': o->json = true; break;
		case 't': o->topic = optarg; break;
		case 'p': o->partitions = atoi(optarg); break;
		case 's': o->record_size = atoi(optarg); break;
		case 'n': o->records = strtoll(optarg, NULL, 10); o->duration_s = 0; break;
		case 'd': o->duration_s = atof(optarg); break;
		case 'w': o->warmup_s = atof(optarg); break;
		case 'a': o->acks = optarg; break;
		case 'l': o->linger_ms = atoi(optarg); break;
		case 'B': o->batch_bytes = atoi(optarg); break;
		case 'z': o->compression = optarg; break;
		case 'r': o->rate = atof(optarg); break;
		case 'i': o->inflight = atoi(optarg); break;
		case 'h': usage(stdout); exit(0);
		default:
			fprintf(stderr, "sluice-bench: bad option (see --help)\n");
			exit(2);
		}
	}
	if (o->workload == NULL || strcmp(o->workload, "produce") != 0) {
		fprintf(stderr, "sluice-bench: workload must be 'produce' (see --help)\n");
		exit(2);
	}
	if (o->partitions < 1 || o->record_size < 0 || o->inflight < 1 ||
	    (o->records <= 0 && o->duration_s <= 0)) {
		fprintf(stderr, "sluice-bench: bad value (see --help)\n");
		exit(2);
	}
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct bench_state *st = opaque;
	(void)rk;
	int64_t t = now_ns(), sent = (int64_t)(intptr_t)m->_private;
	if (m->err != 0) {
		if (st->failed++ == 0)
			snprintf(st->first_error, sizeof(st->first_error), "%s", rd_kafka_err2str(m->err));
		return;
	}
	st->acked++;
	st->last_ack_ns = t;
	if (sent >= st->record_after_ns)
		hist_record(&st->lat, (uint64_t)(t - sent) / 1000);
}

static rd_kafka_t *bench_producer(const struct bench_opts *o, struct bench_state *st)
{
	char err[512], num[32];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	struct { const char *k, *v; } kv[] = {
		{ "bootstrap.servers", o->bootstrap }, { "acks", o->acks },
		{ "compression.codec", o->compression }, { "enable.idempotence", "false" },
		{ "queue.buffering.max.messages", "1000000" },
		{ "queue.buffering.max.kbytes", "1048576" },
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (rd_kafka_conf_set(conf, kv[i].k, kv[i].v, err, sizeof(err)) != RD_KAFKA_CONF_OK)
			goto fail;
	snprintf(num, sizeof(num), "%d", o->linger_ms);
	if (rd_kafka_conf_set(conf, "linger.ms", num, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		goto fail;
	snprintf(num, sizeof(num), "%d", o->batch_bytes);
	if (rd_kafka_conf_set(conf, "batch.size", num, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		goto fail;
	snprintf(num, sizeof(num), "%d", o->inflight);
	if (rd_kafka_conf_set(conf, "max.in.flight", num, err, sizeof(err)) != RD_KAFKA_CONF_OK)
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, st);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (rk == NULL) {
		fprintf(stderr, "sluice-bench: %s\n", err);
		exit(1);
	}
	return rk;
fail:
	fprintf(stderr, "sluice-bench: %s\n", err);
	exit(2);
}

/* Create the topic with the wanted partition count; an existing one is used
 * as it is. */
static void bench_create_topic(rd_kafka_t *rk, const struct bench_opts *o)
{
	char err[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(o->topic, o->partitions, 1, err, sizeof(err));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
	if (ev == NULL) {
		fprintf(stderr, "sluice-bench: no answer from %s within 15 s\n", o->bootstrap);
		exit(1);
	}
	const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
	size_t n = 0;
	const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
	if (rd_kafka_event_error(ev) != 0) {
		fprintf(stderr, "sluice-bench: create topic: %s\n", rd_kafka_event_error_string(ev));
		exit(1);
	}
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

static void bench_report(const struct bench_opts *o, const struct bench_state *st, double secs)
{
	double mb = (double)st->acked * o->record_size / 1e6;
	const struct hist *h = &st->lat;
	if (o->json) {
		printf("{\"workload\":\"produce\",\"records\":%" PRId64 ",\"failed\":%" PRId64
		       ",\"record_size\":%d,\"partitions\":%d,\"acks\":\"%s\",\"seconds\":%.3f,"
		       "\"mb_per_s\":%.2f,\"records_per_s\":%.0f,\"latency_us\":{\"p50\":%" PRIu64
		       ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"p9999\":%" PRIu64
		       ",\"max\":%" PRIu64 ",\"mean\":%.1f}}\n",
		       st->acked, st->failed, o->record_size, o->partitions, o->acks, secs,
		       mb / secs, (double)st->acked / secs, hist_quantile(h, 0.5),
		       hist_quantile(h, 0.9), hist_quantile(h, 0.99), hist_quantile(h, 0.999),
		       hist_quantile(h, 0.9999), h->max, h->total ? h->sum / (double)h->total : 0.0);
		return;
	}
	printf("produce: %" PRId64 " records (%d B) in %.2f s: %.1f MB/s, %.0f records/s, %" PRId64
	       " failed\n", st->acked, o->record_size, secs, mb / secs, (double)st->acked / secs,
	       st->failed);
	printf("ack latency us: p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  p99.9 %" PRIu64
	       "  p99.99 %" PRIu64 "  max %" PRIu64 "\n", hist_quantile(h, 0.5),
	       hist_quantile(h, 0.9), hist_quantile(h, 0.99), hist_quantile(h, 0.999),
	       hist_quantile(h, 0.9999), h->max);
}

static void sleep_until_ns(int64_t t)
{
	struct timespec ts = { .tv_sec = t / 1000000000, .tv_nsec = t % 1000000000 };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static struct bench_state st;

/* Serve delivery reports as they arrive (see the threads note above). */
static void *bench_poller(void *arg)
{
	rd_kafka_t *rk = arg;
	while (!atomic_load(&st.done))
		rd_kafka_poll(rk, 50);
	rd_kafka_poll(rk, 0);
	return NULL;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	parse_args(argc, argv, &o);
	rd_kafka_t *rk = bench_producer(&o, &st);
	bench_create_topic(rk, &o);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);

	char *payload = malloc((size_t)o.record_size + 1);
	memset(payload, 'x', (size_t)o.record_size);
	pthread_t poller;
	pthread_create(&poller, NULL, bench_poller, rk);
	int64_t start = now_ns(), end = start + (int64_t)(o.duration_s * 1e9);
	st.record_after_ns = start + (int64_t)(o.warmup_s * 1e9);
	st.first_ns = start;
	for (int64_t sent = 0;; sent++) {
		if (o.duration_s > 0 ? now_ns() >= end : sent >= o.records)
			break;
		int64_t t = now_ns();
		if (o.rate > 0) {
			/* Open loop: latency counts from the intended send time. */
			t = start + (int64_t)((double)sent * 1e9 / o.rate);
			sleep_until_ns(t);
		}
		while (rd_kafka_produce(rkt, (int32_t)(sent % o.partitions), RD_KAFKA_MSG_F_COPY,
					payload, (size_t)o.record_size, NULL, 0,
					(void *)(intptr_t)t) != 0) {
			if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "sluice-bench: produce: %s\n",
					rd_kafka_err2str(rd_kafka_last_error()));
				return 1;
			}
			sleep_until_ns(now_ns() + 100000); /* queue full: let acks drain */
		}
	}
	/* Not rd_kafka_flush: it would serve callbacks on this thread too,
	 * racing the poller on the histogram. */
	while (rd_kafka_outq_len(rk) > 0)
		sleep_until_ns(now_ns() + 1000000);
	atomic_store(&st.done, true);
	pthread_join(poller, NULL);
	double secs = (double)(st.last_ack_ns - (o.warmup_s > 0 ? st.record_after_ns : start)) / 1e9;
	if (o.warmup_s > 0)
		st.acked = (int64_t)st.lat.total; /* count only measured records */
	if (secs <= 0)
		secs = 1e-9;
	bench_report(&o, &st, secs);
	if (st.failed > 0)
		fprintf(stderr, "sluice-bench: %" PRId64 " records failed, first: %s\n", st.failed,
			st.first_error);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	free(payload);
	return st.failed > 0 ? 1 : 0;
}

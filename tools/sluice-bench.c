/*
 * sluice-bench: a load generator for any Kafka-protocol broker, built on
 * librdkafka (the standard C client), so what it measures is what a real
 * application sees.
 *
 * Modes: produce (bench_produce.c: throughput, or ack latency at an open-loop
 * --rate), fetch (bench_fetch.c: read back what a topic holds) and both
 * (produce and fetch at once, with end-to-end latency from a send time
 * stamped in each record's value). This file parses the arguments, runs the
 * mode and prints the report, as text or as one line of JSON for scripts.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluice-bench [options] [produce|fetch|both] [options]\n\n"
		"  --bootstrap HOST:PORT  broker to connect to (default 127.0.0.1:9092)\n"
		"  --mode MODE            produce (default), fetch, or both at once; the same as\n"
		"                         the bare word\n"
		"  --json                 print one JSON object as the last line\n"
		"  --topic NAME           topic (default sluice-bench)\n"
		"  -X KEY=VALUE           any librdkafka property, for every client (repeatable),\n"
		"                         e.g. -X fetch.max.bytes=1048576; applied last\n"
		"Produce (and both):\n"
		"  --partitions N         create the topic with N partitions if missing (default 1);\n"
		"                         records go round-robin over all its partitions\n"
		"  --record-size BYTES    value size (default 1024); from 16 B on, a value carries\n"
		"                         its send time\n"
		"  --records N            records to send (default 1000000)\n"
		"  --duration S           send for S seconds instead of a record count\n"
		"  --warmup S             do not count the first S seconds (default 0)\n"
		"  --acks 0|1|all         (default 1)\n"
		"  --linger-ms MS         librdkafka linger.ms (default 5)\n"
		"  --batch-bytes BYTES    librdkafka batch.size (default 1048576)\n"
		"  --compression CODEC    none|gzip|snappy|lz4|zstd (default none)\n"
		"  --rate R               records/s, open loop (default: as fast as possible)\n"
		"  --inflight N           max.in.flight.requests.per.connection (default 5)\n"
		"  --pace-us US           with --rate: sleep at least this long between sends and\n"
		"                         send all records then due (default 100; counted in latency)\n"
		"Fetch:\n"
		"  reads every partition from its start up to the end it had when the run began;\n"
		"  --records N stops after N records, --duration S after S seconds. In mode both\n"
		"  the consumer starts at the end and reads what the producer writes (its\n"
		"  throughput counts the warm-up too; its latency does not).\n"
		"  --help                 this text\n");
}

static enum bench_mode mode_of(const char *s)
{
	if (strcmp(s, "produce") == 0)
		return BENCH_PRODUCE;
	if (strcmp(s, "fetch") == 0)
		return BENCH_FETCH;
	if (strcmp(s, "both") == 0)
		return BENCH_BOTH;
	fprintf(stderr, "sluice-bench: mode must be produce, fetch or both (see --help)\n");
	exit(2);
}

static const char *mode_name(enum bench_mode m)
{
	return m == BENCH_PRODUCE ? "produce" : m == BENCH_FETCH ? "fetch" : "both";
}

static const struct option long_opts[] = {
	{ "bootstrap", required_argument, NULL, 'b' },
	{ "mode", required_argument, NULL, 'm' },
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
	{ "pace-us", required_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void parse_opt(int c, struct bench_opts *o)
{
	switch (c) {
	case 'b': o->bootstrap = optarg; break;
	case 'm': o->mode = mode_of(optarg); break;
	case 'j': o->json = true; break;
	case 't': o->topic = optarg; break;
	case 'p': o->partitions = atoi(optarg); break;
	case 's': o->record_size = atoi(optarg); break;
	case 'n':
		o->records = strtoll(optarg, NULL, 10);
		o->records_given = true;
		o->duration_s = 0;
		break;
	case 'd': o->duration_s = atof(optarg); break;
	case 'w': o->warmup_s = atof(optarg); break;
	case 'a': o->acks = optarg; break;
	case 'l': o->linger_ms = atoi(optarg); break;
	case 'B': o->batch_bytes = atoi(optarg); break;
	case 'z': o->compression = optarg; break;
	case 'r': o->rate = atof(optarg); break;
	case 'i': o->inflight = atoi(optarg); break;
	case 'P': o->pace_us = atoi(optarg); break;
	case 'X':
		if (o->props_count == BENCH_PROPS_MAX) {
			fprintf(stderr, "sluice-bench: at most %d -X properties\n", BENCH_PROPS_MAX);
			exit(2);
		}
		o->props[o->props_count++] = optarg;
		break;
	case 'h': usage(stdout); exit(0);
	default:
		fprintf(stderr, "sluice-bench: bad option (see --help)\n");
		exit(2);
	}
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){ .bootstrap = "127.0.0.1:9092", .topic = "sluice-bench",
				  .partitions = 1, .record_size = 1024, .records = 1000000,
				  .acks = "1", .linger_ms = 5, .batch_bytes = 1048576,
				  .compression = "none", .inflight = 5, .pace_us = 100 };
	bool word_seen = false;
	for (;;) {
		int c = getopt_long(argc, argv, "+X:", long_opts, NULL);
		if (c != -1) {
			parse_opt(c, o);
			continue;
		}
		/* "+" stops at the mode word; options may follow it. */
		if (optind < argc && !word_seen) {
			o->mode = mode_of(argv[optind++]);
			word_seen = true;
			continue;
		}
		if (optind < argc) {
			fprintf(stderr, "sluice-bench: unexpected argument '%s'\n", argv[optind]);
			exit(2);
		}
		break;
	}
	if (o->partitions < 1 || o->record_size < 0 || o->inflight < 1 || o->rate < 0 ||
	    o->pace_us < 0 || o->warmup_s < 0 || (o->records <= 0 && o->duration_s <= 0)) {
		fprintf(stderr, "sluice-bench: bad value (see --help)\n");
		exit(2);
	}
}

static void report_hist_json(const char *name, const struct hist *h)
{
	printf("\"%s\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
	       ",\"p999\":%" PRIu64 ",\"p9999\":%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.1f,"
	       "\"count\":%" PRIu64 "}", name, hist_quantile(h, 0.5), hist_quantile(h, 0.9),
	       hist_quantile(h, 0.99), hist_quantile(h, 0.999), hist_quantile(h, 0.9999), h->max,
	       h->total ? h->sum / (double)h->total : 0.0, h->total);
}

static void report_hist_text(const char *name, const struct hist *h)
{
	printf("%s us: p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  p99.9 %" PRIu64
	       "  p99.99 %" PRIu64 "  max %" PRIu64 "  (%" PRIu64 " samples)\n", name,
	       hist_quantile(h, 0.5), hist_quantile(h, 0.9), hist_quantile(h, 0.99),
	       hist_quantile(h, 0.999), hist_quantile(h, 0.9999), h->max, h->total);
}

static void report_produce(const struct bench_opts *o, const struct bench_produce_result *p)
{
	double mb_per_s = (double)p->acked * o->record_size / 1e6 / p->seconds;
	double rps = (double)p->acked / p->seconds;
	if (o->json) {
		printf(",\"produce\":{\"records\":%" PRId64 ",\"failed\":%" PRId64 ",\"seconds\":%.3f,"
		       "\"mb_per_s\":%.2f,\"records_per_s\":%.0f,\"rate\":%.0f,\"requests\":%" PRId64
		       ",", p->acked, p->failed, p->seconds, mb_per_s, rps, o->rate,
		       p->req.ts_us < 0 ? -1 : p->req.produce);
		report_hist_json("latency_us", &p->lat);
		printf("}");
		return;
	}
	printf("produce: %" PRId64 " records (%d B) in %.2f s: %.1f MB/s, %.0f records/s, %" PRId64
	       " failed, %" PRId64 " Produce requests\n", p->acked, o->record_size, p->seconds,
	       mb_per_s, rps, p->failed, p->req.ts_us < 0 ? -1 : p->req.produce);
	report_hist_text("ack latency", &p->lat);
}

static void report_fetch(const struct bench_opts *o, const struct bench_fetch_result *f)
{
	double mb_per_s = (double)f->bytes / 1e6 / f->seconds;
	double rps = (double)f->records / f->seconds;
	if (o->json) {
		printf(",\"fetch\":{\"records\":%" PRId64 ",\"bytes\":%" PRId64 ",\"wanted\":%" PRId64
		       ",\"complete\":%s,\"errors\":%" PRId64 ",\"seconds\":%.3f,\"mb_per_s\":%.2f,"
		       "\"records_per_s\":%.0f,\"requests\":%" PRId64, f->records, f->bytes, f->wanted,
		       f->complete ? "true" : "false", f->errors, f->seconds, mb_per_s, rps,
		       f->req.ts_us < 0 ? -1 : f->req.fetch);
		if (o->mode == BENCH_BOTH) {
			printf(",");
			report_hist_json("e2e_latency_us", &f->e2e);
		}
		printf("}");
		return;
	}
	printf("fetch: %" PRId64 " of %" PRId64 " records, %.1f MB in %.2f s: %.1f MB/s, %.0f "
	       "records/s, %" PRId64 " errors%s, %" PRId64 " Fetch requests\n", f->records,
	       f->wanted, (double)f->bytes / 1e6, f->seconds, mb_per_s, rps, f->errors,
	       f->complete ? "" : " (incomplete)", f->req.ts_us < 0 ? -1 : f->req.fetch);
	if (o->mode == BENCH_BOTH)
		report_hist_text("end-to-end latency", &f->e2e);
}

static double client_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report(const struct bench_opts *o, const struct bench_topic_info *info,
		   const struct bench_produce_result *p, const struct bench_fetch_result *f)
{
	if (o->json)
		printf("{\"workload\":\"%s\",\"topic\":\"%s\",\"partitions\":%d,\"brokers\":%d,"
		       "\"record_size\":%d,\"acks\":\"%s\",\"client_cpu_s\":%.2f", mode_name(o->mode),
		       o->topic, info->partitions, info->brokers, o->record_size, o->acks,
		       client_cpu_s());
	else
		printf("topic %s: %d partitions, %d brokers in metadata\n", o->topic,
		       info->partitions, info->brokers);
	if (p != NULL)
		report_produce(o, p);
	if (f != NULL)
		report_fetch(o, f);
	if (o->json)
		printf("}\n");
	else
		printf("client CPU: %.2f s\n", client_cpu_s());
}

/* Exit status: 1 if a record failed or a fetch fell short of what it had to
 * read (a --duration fetch may stop early), else 0. */
static int verdict(const struct bench_opts *o, const struct bench_produce_result *p,
		   const struct bench_fetch_result *f)
{
	int rc = 0;
	if (p != NULL && p->failed > 0) {
		fprintf(stderr, "sluice-bench: %" PRId64 " records failed, first: %s\n", p->failed,
			p->first_error);
		rc = 1;
	}
	if (f != NULL && f->errors > 0) {
		fprintf(stderr, "sluice-bench: %" PRId64 " fetch errors, first: %s\n", f->errors,
			f->first_error);
		rc = 1;
	}
	if (f != NULL && !f->complete && (o->mode == BENCH_BOTH || o->duration_s <= 0)) {
		fprintf(stderr, "sluice-bench: fetched %" PRId64 " of %" PRId64 " records, then "
			"nothing for %d ms\n", f->records, f->wanted, BENCH_FETCH_IDLE_MS);
		rc = 1;
	}
	return rc;
}

static int run_produce(const struct bench_opts *o)
{
	struct bench_produce_result produce_res = { 0 };
	rd_kafka_t *rk = bench_producer_new(o, &produce_res);
	struct bench_topic_info info = bench_topic_prepare(rk, o, true);
	int rc = bench_produce_run(o, rk, info.partitions, NULL, &produce_res);
	report(o, &info, &produce_res, NULL);
	rd_kafka_destroy(rk);
	return rc != 0 ? 1 : verdict(o, &produce_res, NULL);
}

/* Read what the topic holds now: from each partition's start to its end,
 * or fewer with --records. */
static int run_fetch(const struct bench_opts *o)
{
	struct bench_fetch_result fetch_res = { 0 };
	rd_kafka_t *rk = bench_consumer_new(o, &fetch_res);
	struct bench_topic_info info = bench_topic_prepare(rk, o, false);
	int64_t *lo = calloc((size_t)info.partitions, sizeof(*lo));
	int64_t *hi = calloc((size_t)info.partitions, sizeof(*hi));
	bench_watermarks(rk, o->topic, info.partitions, lo, hi);
	for (int p = 0; p < info.partitions; p++)
		fetch_res.wanted += hi[p] - lo[p];
	if (o->records_given && o->records < fetch_res.wanted)
		fetch_res.wanted = o->records;
	bench_fetch_run(o, rk, info.partitions, lo, NULL, &fetch_res);
	report(o, &info, NULL, &fetch_res);
	rd_kafka_destroy(rk);
	free(lo);
	free(hi);
	return verdict(o, NULL, &fetch_res);
}

struct both_fetch_arg {
	const struct bench_opts *o;
	rd_kafka_t *rk;
	int partitions;
	const int64_t *start;
	struct bench_link *link;
	struct bench_fetch_result *res;
};

static void *both_fetch_main(void *arg)
{
	struct both_fetch_arg *a = arg;
	bench_fetch_run(a->o, a->rk, a->partitions, a->start, a->link, a->res);
	return NULL;
}

/* Produce and, on a thread of its own, consume from the current end, so the
 * consumer sees each record once, as soon as the broker lets it. */
static int run_both(const struct bench_opts *o)
{
	struct bench_produce_result produce_res = { 0 };
	struct bench_fetch_result fetch_res = { .wanted = -1 };
	rd_kafka_t *prk = bench_producer_new(o, &produce_res);
	struct bench_topic_info info = bench_topic_prepare(prk, o, true);
	rd_kafka_t *crk = bench_consumer_new(o, &fetch_res);
	int64_t *lo = calloc((size_t)info.partitions, sizeof(*lo));
	int64_t *hi = calloc((size_t)info.partitions, sizeof(*hi));
	bench_watermarks(crk, o->topic, info.partitions, lo, hi);
	struct bench_link link = { .produced = -1, .record_after_ns = INT64_MAX };
	struct both_fetch_arg a = { o, crk, info.partitions, hi, &link, &fetch_res };
	pthread_t thread;
	pthread_create(&thread, NULL, both_fetch_main, &a);
	int rc = bench_produce_run(o, prk, info.partitions, &link, &produce_res);
	pthread_join(thread, NULL);
	report(o, &info, &produce_res, &fetch_res);
	rd_kafka_destroy(crk);
	rd_kafka_destroy(prk);
	free(lo);
	free(hi);
	return rc != 0 ? 1 : verdict(o, &produce_res, &fetch_res);
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	parse_args(argc, argv, &o);
	switch (o.mode) {
	case BENCH_FETCH:
		return run_fetch(&o);
	case BENCH_BOTH:
		return run_both(&o);
	case BENCH_PRODUCE:
		break;
	}
	return run_produce(&o);
}

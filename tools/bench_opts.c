/*
 * bench_opts: sluice-bench's command line. Every option is listed in
 * usage(), which --help prints; a bad flag or value is a one-line message
 * and exit status 2, before anything connects anywhere.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *out)
{
	fprintf(out,
"Usage: sluice-bench [--bootstrap HOST:PORT] [--json] WORKLOAD [options]\n"
"\n"
"Workloads (also as --mode WORKLOAD):\n"
"  produce   send records as fast as possible or at --rate; ack latency\n"
"  consume   read what the topics hold, from the start (alias: fetch)\n"
"  e2e       produce and consume at once, the consumers reading from the end;\n"
"            end-to-end latency from a send time stamped in each value\n"
"            (alias: both)\n"
"\n"
"Target:\n"
"  --target kafka|redis|nats  what to measure (default kafka): any Kafka-protocol\n"
"                         broker via librdkafka, Redis Streams via hiredis, or NATS\n"
"                         JetStream via the cnats client\n"
"  --bootstrap HOST:PORT  server to connect to (default 127.0.0.1:9092 for kafka,\n"
"                         127.0.0.1:6379 for redis, 127.0.0.1:4222 for nats)\n"
"  --timeout S            give up connecting or reading metadata after S seconds\n"
"                         (default 10); an unreachable server is an error at once\n"
"\n"
"Where records go:\n"
"  --topic NAME           topic, stream key or JetStream stream (default sluice-bench)\n"
"  --topics N             N topics NAME-0..NAME-(N-1) (default 1: just NAME)\n"
"  --partitions N         partitions per topic, created if missing (default 1); redis:\n"
"                         one stream key NAME:P per partition; nats: subject NAME.P\n"
"  --record-size BYTES    value size (default 1024); from 16 B on a value carries its\n"
"                         send time\n"
"  --key-distribution D   none (default: round-robin over partitions), random,\n"
"                         sequential or zipf (theta 0.99); a key picks the partition\n"
"  --keys N               distinct keys (default 1000)\n"
"\n"
"How much:\n"
"  --records N            records to send (default 1000000); consume: stop once N\n"
"                         are read (the last batch may take it past N)\n"
"  --bytes N              value bytes to send instead (consume: stop once read)\n"
"  --duration S           run S seconds instead, warm-up included\n"
"  --warmup S             do not measure the first S seconds (default 0)\n"
"  --rate R               records/s over all producers, open loop: latency counts\n"
"                         from each record's scheduled send time (coordinated\n"
"                         omission corrected); default: as fast as possible\n"
"  --pace-us US           with --rate: the pacer's shortest sleep; it sends every\n"
"                         record then due (default 100; counted in latency)\n"
"  --producers N          producer threads, a client each (default 1)\n"
"  --consumers N          consumer threads, a client each (default 1); kafka\n"
"                         partitions are dealt out among them\n"
"\n"
"Kafka client (librdkafka):\n"
"  --acks 0|1|all         (default 1)\n"
"  --batch-bytes BYTES    batch.size (default 1048576)\n"
"  --linger-ms MS         linger.ms (default 5)\n"
"  --compression CODEC    none|gzip|snappy|lz4|zstd (default none)\n"
"  --inflight N           max.in.flight.requests.per.connection (default 5)\n"
"  -X KEY=VALUE           any librdkafka property for every client (repeatable),\n"
"                         applied last\n"
"\n"
"Redis Streams (hiredis; durability is the server's appendonly/appendfsync,\n"
"reported in the JSON, never changed):\n"
"  --pipeline N           XADDs outstanding per connection (default 64)\n"
"  --redis-read MODE      group: XREADGROUP NOACK in a fresh group (default);\n"
"                         range: XRANGE paging\n"
"\n"
"NATS JetStream (file storage; NATS 2.9 does not fsync per message):\n"
"  --max-pending N        async publishes awaiting their ack (default 4096)\n"
"\n"
"Redis and NATS:\n"
"  --consume-batch N      records per XREADGROUP/XRANGE or pull Fetch (default 1000)\n"
"\n"
"Output:\n"
"  --json                 print one JSON object as the last line of stdout\n"
"  --progress, --no-progress\n"
"                         a live line on stderr (default: when stderr is a terminal)\n"
"  --help                 this text\n"
"\n"
"Exit status: 0 done; 1 the server was unreachable or refused, a record failed,\n"
"or a consumer read less than it had to; 2 a bad option.\n");
}

enum {
	OPT_BOOTSTRAP = 256, OPT_MODE, OPT_JSON, OPT_TARGET, OPT_TIMEOUT, OPT_TOPIC, OPT_TOPICS,
	OPT_PARTITIONS, OPT_RECORD_SIZE, OPT_KEYDIST, OPT_KEYS, OPT_RECORDS, OPT_BYTES,
	OPT_DURATION, OPT_WARMUP, OPT_RATE, OPT_PACE_US, OPT_PRODUCERS, OPT_CONSUMERS, OPT_ACKS,
	OPT_BATCH_BYTES, OPT_LINGER_MS, OPT_COMPRESSION, OPT_INFLIGHT, OPT_PIPELINE,
	OPT_REDIS_READ, OPT_MAX_PENDING, OPT_CONSUME_BATCH, OPT_PROGRESS, OPT_NO_PROGRESS,
	OPT_HELP,
};

static const struct option bench_long_opts[] = {
	{ "bootstrap", required_argument, NULL, OPT_BOOTSTRAP },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "topic", required_argument, NULL, OPT_TOPIC },
	{ "topics", required_argument, NULL, OPT_TOPICS },
	{ "partitions", required_argument, NULL, OPT_PARTITIONS },
	{ "record-size", required_argument, NULL, OPT_RECORD_SIZE },
	{ "key-distribution", required_argument, NULL, OPT_KEYDIST },
	{ "keys", required_argument, NULL, OPT_KEYS },
	{ "records", required_argument, NULL, OPT_RECORDS },
	{ "bytes", required_argument, NULL, OPT_BYTES },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "pace-us", required_argument, NULL, OPT_PACE_US },
	{ "producers", required_argument, NULL, OPT_PRODUCERS },
	{ "consumers", required_argument, NULL, OPT_CONSUMERS },
	{ "acks", required_argument, NULL, OPT_ACKS },
	{ "batch-bytes", required_argument, NULL, OPT_BATCH_BYTES },
	{ "linger-ms", required_argument, NULL, OPT_LINGER_MS },
	{ "compression", required_argument, NULL, OPT_COMPRESSION },
	{ "inflight", required_argument, NULL, OPT_INFLIGHT },
	{ "pipeline", required_argument, NULL, OPT_PIPELINE },
	{ "redis-read", required_argument, NULL, OPT_REDIS_READ },
	{ "max-pending", required_argument, NULL, OPT_MAX_PENDING },
	{ "consume-batch", required_argument, NULL, OPT_CONSUME_BATCH },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

const char *bench_workload_name(enum bench_workload w)
{
	return w == BENCH_PRODUCE ? "produce" : w == BENCH_CONSUME ? "consume" : "e2e";
}

const char *bench_keydist_name(enum bench_keydist k)
{
	static const char *const names[] = { "none", "random", "sequential", "zipf" };
	return names[k];
}

/* The current option's name, for messages. */
static const char *bench_opt_name(int c)
{
	for (const struct option *p = bench_long_opts; p->name != NULL; p++)
		if (p->val == c)
			return p->name;
	return "?";
}

static int64_t bench_int(int c, const char *s, int64_t min, int64_t max)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		bench_die(2, "--%s: expected an integer from %lld to %lld, got '%s'",
			  bench_opt_name(c), (long long)min, (long long)max, s);
	return v;
}

static double bench_real(int c, const char *s, double min)
{
	char *end;
	double v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || !(v >= min) || v > 1e12)
		bench_die(2, "--%s: expected a number of at least %g, got '%s'", bench_opt_name(c),
			  min, s);
	return v;
}

/* s must be one of the NULL-terminated words; its index. */
static int bench_word(int c, const char *s, const char *const *words)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0)
			return i;
	bench_die(2, "--%s: unknown value '%s' (see --help)", bench_opt_name(c), s);
}

static void bench_workload_set(struct bench_opts *o, const char *s)
{
	static const struct { const char *word; enum bench_workload w; } words[] = {
		{ "produce", BENCH_PRODUCE }, { "consume", BENCH_CONSUME },
		{ "fetch", BENCH_CONSUME },   { "e2e", BENCH_E2E },
		{ "both", BENCH_E2E },
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(s, words[i].word) == 0) {
			o->workload = words[i].w;
			o->workload_word = words[i].word;
			return;
		}
	bench_die(2, "unknown workload '%s': expected produce, consume or e2e (see --help)", s);
}

static void bench_opt_target(struct bench_opts *o, const char *s)
{
	static const struct bench_target *const targets[] = {
		&bench_target_kafka, &bench_target_redis, &bench_target_nats,
	};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (strcmp(s, targets[i]->name) == 0) {
			o->target = targets[i];
			return;
		}
	bench_die(2, "--target: unknown target '%s': expected kafka, redis or nats", s);
}

static void bench_opt_limit(struct bench_opts *o, int c, const char *s)
{
	o->records = o->bytes = 0;
	o->duration_s = 0;
	o->records_given = false;
	if (c == OPT_RECORDS) {
		o->records = bench_int(c, s, 1, INT64_MAX / 2);
		o->records_given = true;
	} else if (c == OPT_BYTES) {
		o->bytes = bench_int(c, s, 1, INT64_MAX / 2);
	} else {
		o->duration_s = bench_real(c, s, 0.001);
	}
}

static void bench_opt_prop(struct bench_opts *o, const char *s)
{
	if (o->props_count == BENCH_PROPS_MAX)
		bench_die(2, "at most %d -X properties", BENCH_PROPS_MAX);
	if (strchr(s, '=') == NULL)
		bench_die(2, "-X expects KEY=VALUE, got '%s'", s);
	o->props[o->props_count++] = s;
}

static void bench_opt_one(struct bench_opts *o, int c, const char *a)
{
	static const char *const keydists[] = { "none", "random", "sequential", "zipf", NULL };
	static const char *const acks[] = { "0", "1", "all", "-1", NULL };
	static const char *const codecs[] = { "none", "gzip", "snappy", "lz4", "zstd", NULL };
	static const char *const reads[] = { "group", "range", NULL };
	switch (c) {
	case OPT_BOOTSTRAP: o->bootstrap = a; break;
	case OPT_MODE: bench_workload_set(o, a); break;
	case OPT_JSON: o->json = true; break;
	case OPT_TARGET: bench_opt_target(o, a); break;
	case OPT_TIMEOUT: o->timeout_s = bench_real(c, a, 0.1); break;
	case OPT_TOPIC: o->topic = a; break;
	case OPT_TOPICS: o->topics = (int)bench_int(c, a, 1, BENCH_TOPICS_MAX); break;
	case OPT_PARTITIONS: o->partitions = (int)bench_int(c, a, 1, BENCH_PARTITIONS_MAX); break;
	case OPT_RECORD_SIZE: o->record_size = (int)bench_int(c, a, 0, BENCH_RECORD_MAX); break;
	case OPT_KEYDIST: o->keydist = (enum bench_keydist)bench_word(c, a, keydists); break;
	case OPT_KEYS: o->keys = bench_int(c, a, 1, BENCH_KEYS_MAX); break;
	case OPT_RECORDS: case OPT_BYTES: case OPT_DURATION: bench_opt_limit(o, c, a); break;
	case OPT_WARMUP: o->warmup_s = bench_real(c, a, 0); break;
	case OPT_RATE: o->rate = bench_real(c, a, 0.001); break;
	case OPT_PACE_US: o->pace_us = (int)bench_int(c, a, 0, 1000000); break;
	case OPT_PRODUCERS: o->producers = (int)bench_int(c, a, 1, BENCH_THREADS_MAX); break;
	case OPT_CONSUMERS: o->consumers = (int)bench_int(c, a, 1, BENCH_THREADS_MAX); break;
	case OPT_ACKS: o->acks = acks[bench_word(c, a, acks)]; break;
	case OPT_BATCH_BYTES: o->batch_bytes = (int)bench_int(c, a, 1, 1 << 30); break;
	case OPT_LINGER_MS: o->linger_ms = (int)bench_int(c, a, 0, 900000); break;
	case OPT_COMPRESSION: o->compression = codecs[bench_word(c, a, codecs)]; break;
	case OPT_INFLIGHT: o->inflight = (int)bench_int(c, a, 1, 1000000); break;
	case OPT_PIPELINE: o->pipeline = (int)bench_int(c, a, 1, 1000000); break;
	case OPT_REDIS_READ: o->redis_read = (enum bench_redis_read)bench_word(c, a, reads); break;
	case OPT_MAX_PENDING: o->max_pending = (int)bench_int(c, a, 1, 10000000); break;
	case OPT_CONSUME_BATCH: o->consume_batch = (int)bench_int(c, a, 1, 1000000); break;
	case OPT_PROGRESS: o->progress = true; break;
	case OPT_NO_PROGRESS: o->progress = false; break;
	case 'X': bench_opt_prop(o, a); break;
	case OPT_HELP: usage(stdout); exit(0);
	default: bench_die(2, "bad option (see --help)");
	}
}

/* Cross-option checks, and the target's own. */
static void bench_opts_check(struct bench_opts *o)
{
	if (o->bootstrap == NULL)
		o->bootstrap = o->target->default_bootstrap;
	if (strlen(o->topic) == 0 || strlen(o->topic) > BENCH_NAME_MAX - 16)
		bench_die(2, "--topic: 1 to %d characters", BENCH_NAME_MAX - 16);
	if (o->warmup_s > 0 && o->duration_s > 0 && o->warmup_s >= o->duration_s)
		bench_die(2, "--warmup must be shorter than --duration");
	if (o->keydist != BENCH_KEYS_NONE && o->workload == BENCH_CONSUME)
		bench_die(2, "--key-distribution applies to produce and e2e");
	if (o->workload != BENCH_CONSUME && o->bytes > 0)
		o->records = (o->bytes + (o->record_size > 0 ? o->record_size : 1) - 1) /
			     (o->record_size > 0 ? o->record_size : 1);
	const char *why = o->target->check != NULL ? o->target->check(o) : NULL;
	if (why != NULL)
		bench_die(2, "--target %s: %s", o->target->name, why);
}

void bench_opts_parse(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){ .target = &bench_target_kafka, .workload_word = "produce",
				  .topic = "sluice-bench", .topics = 1, .partitions = 1,
				  .record_size = 1024, .keys = 1000, .records = 1000000,
				  .acks = "1", .linger_ms = 5, .batch_bytes = 1048576,
				  .compression = "none", .producers = 1, .consumers = 1,
				  .inflight = 5, .pace_us = 100, .pipeline = 64,
				  .max_pending = 4096, .consume_batch = 1000, .timeout_s = 10,
				  .progress = isatty(STDERR_FILENO) };
	bool word_seen = false;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, "+X:", bench_long_opts, NULL);
		if (c == '?' || c == ':')
			bench_die(2, "unknown option or missing value: '%s' (see --help)",
				  argv[optind - 1]);
		if (c != -1) {
			bench_opt_one(o, c, optarg);
			continue;
		}
		/* "+" stops at the workload word; options may follow it. */
		if (optind < argc && !word_seen) {
			bench_workload_set(o, argv[optind++]);
			word_seen = true;
			continue;
		}
		if (optind < argc)
			bench_die(2, "unexpected argument '%s' (see --help)", argv[optind]);
		break;
	}
	bench_opts_check(o);
}

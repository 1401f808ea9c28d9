/*
 * bench: the parts of sluice-bench shared by its modules.
 *
 *   sluice-bench.c    main: options, the run, the exit status
 *   bench_opts.c      the command line and --help
 *   bench_run.c       the workloads: producer and consumer threads, pacing,
 *                     the per-second series and the live progress line
 *   bench_meter.c     what a run measures: counts, latency, the send-time stamp
 *   bench_keys.c      record keys (none, random, sequential, zipf)
 *   bench_report.c    the text report and the --json object
 *   bench_util.c      clock, TCP probe, JSON writer
 *   bench_kafka*.c    the Kafka target (librdkafka)
 *   bench_redis.c     the Redis Streams target (hiredis)
 *   bench_nats.c      the NATS JetStream target (cnats)
 *
 * A target is a small ops table (struct bench_target): set up the topics,
 * open producers and consumers, send, wait, drain, consume. Everything that
 * measures (pacing, warm-up, histograms, the series, the report) is shared,
 * so the three targets are measured the same way.
 *
 * Threads: each producer and each consumer is a thread of its own, with its
 * own client connection; the main thread samples the counters once a second
 * for the series and the progress line. A struct bench_meter has one writer
 * (the thread its target reports acks or records on) and is read by the
 * main thread through atomics; its plain fields are read only after the
 * workers are joined.
 */
#ifndef SLUICE_BENCH_H
#define SLUICE_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

/* -X key=value properties accepted; each applies to every Kafka client. */
#define BENCH_PROPS_MAX 32
/* Producers, consumers, topics: one thread and one connection each per
 * producer or consumer; the cap keeps a typo from forking a thousand. */
#define BENCH_THREADS_MAX 64
#define BENCH_TOPICS_MAX 1024
#define BENCH_PARTITIONS_MAX 4096
/* Topic names, and the names targets derive from them. */
#define BENCH_NAME_MAX 200
#define BENCH_RECORD_MAX (64 << 20)
/* Keys of a key distribution: zipf sums a series over all of them once. */
#define BENCH_KEYS_MAX 10000000
/* A value at least this long carries its send time (see bench_stamp_put). */
#define BENCH_STAMP_BYTES 16
/* A consumer that sees no record for this long gives up and says it is
 * incomplete, rather than waiting for records that are not coming. */
#define BENCH_IDLE_MS 10000
/* How long one consume call may block, so stop conditions are checked. */
#define BENCH_CONSUME_WAIT_MS 100
/* After the last send, how long producers wait for outstanding acks. */
#define BENCH_DRAIN_MS 30000
/* Samples of the per-second series kept (a day); later seconds are not. */
#define BENCH_SERIES_MAX 86400

enum bench_workload { BENCH_PRODUCE, BENCH_CONSUME, BENCH_E2E };
enum bench_keydist { BENCH_KEYS_NONE, BENCH_KEYS_RANDOM, BENCH_KEYS_SEQUENTIAL, BENCH_KEYS_ZIPF };
enum bench_redis_read { BENCH_REDIS_GROUP, BENCH_REDIS_RANGE };

struct bench_target;
struct bench_json;

struct bench_opts {
	const struct bench_target *target;
	const char *bootstrap;
	enum bench_workload workload;
	const char *workload_word; /* as typed: "fetch" and "both" are aliases */
	const char *topic;
	int topics, partitions, record_size;
	enum bench_keydist keydist;
	int64_t keys;
	/* What ends the run: the first of these that is set. */
	int64_t records, bytes;
	double duration_s;
	bool records_given;
	double warmup_s;
	const char *acks;
	int linger_ms, batch_bytes;
	const char *compression;
	int producers, consumers;
	double rate;
	int inflight, pace_us;
	int pipeline, max_pending, consume_batch;
	enum bench_redis_read redis_read;
	double timeout_s;
	bool json, progress;
	const char *props[BENCH_PROPS_MAX];
	int props_count;
};

/* What one producer or consumer measured. One writer; see the file note. */
struct bench_meter {
	struct hist lat;           /* us: ack latency (producer) or end to end (consumer) */
	_Atomic int64_t records;   /* acknowledged / consumed, warm-up included */
	_Atomic int64_t bytes;     /* their values' bytes */
	_Atomic int64_t failed;
	_Atomic int64_t last_ns;   /* the latest ack or record */
	int64_t measured_records;  /* after the warm-up */
	int64_t measured_bytes;
	int64_t warmup_end_ns;
	bool e2e;                  /* consumer: take latency from the value's stamp */
	int64_t requests;          /* requests the client sent, or -1 if unknown */
	char first_error[256];
};

/* One run's shared state, set up by main and the target, read by all. */
struct bench_env {
	const struct bench_opts *o;
	int partitions;            /* per topic: --partitions, or what the broker has */
	int streams;               /* topics x partitions: where records go */
	char (*topic_names)[BENCH_NAME_MAX];
	int brokers;               /* Kafka: brokers in metadata */
	int64_t start_ns, warmup_end_ns;
	int64_t wanted;            /* consume: records to read; -1: not known yet */
	_Atomic int64_t produced;  /* e2e: records acked, set once producers finish */
	_Atomic int64_t consumed_last_ns;
	_Atomic bool stop;         /* SIGINT, or a fatal error in a worker */
	void *state;               /* the target's */
};

/* A record to send: its value already carries the stamp. */
struct bench_rec {
	int stream;                /* topic index * partitions + partition */
	const char *key;           /* NULL: no key */
	size_t key_len;
	const char *value;
	size_t len;
	int64_t sched_ns;          /* intended send time (CLOCK_MONOTONIC) */
};

/*
 * A target. Setup-phase calls print a one-line message and exit(1) when the
 * server is unreachable or refuses; run-phase calls return -1 instead, with
 * the reason in the meter's first_error, so the run still reports.
 */
struct bench_target {
	const char *name;
	const char *default_bootstrap;
	int default_port;
	/* NULL, or why the options cannot run against this target (exit 2). */
	const char *(*check)(const struct bench_opts *o);
	/* Connect, create the topics for produce and e2e (an existing one is
	 * used as it is), check they exist for consume and set env->wanted to
	 * what they hold; prepare e2e consumers to start at the end. */
	void (*setup)(struct bench_env *env);
	/* A producer whose acks go to m (from whatever thread the client
	 * delivers them on: that thread is m's one writer). */
	void *(*producer_open)(struct bench_env *env, int index, struct bench_meter *m);
	/* Send one record; may block while the client's window is full.
	 * 0, or -1 on an error that ends this producer. */
	int (*send)(void *p, const struct bench_rec *r);
	/* Push out what is buffered and serve acks until until_ns. */
	int (*wait)(void *p, int64_t until_ns);
	/* Wait until every record sent is acked or failed, or deadline_ns. */
	int (*drain)(void *p, int64_t deadline_ns);
	void (*producer_close)(void *p);
	/* Consumer index of env->o->consumers, reading what is there from the
	 * start (consume) or what comes after setup (e2e); records go to m. */
	void *(*consumer_open)(struct bench_env *env, int index, struct bench_meter *m);
	/* Wait up to wait_ms for records: records seen, or -1. */
	int (*consume)(void *c, int wait_ms);
	void (*consumer_close)(void *c);
	/* Records the server holds in the run's topics now, or -1. */
	int64_t (*count)(struct bench_env *env);
	/* The target's facts for the report: server version, durability. */
	void (*describe)(struct bench_env *env, struct bench_json *j);
	void (*teardown)(struct bench_env *env);
};

extern const struct bench_target bench_target_kafka;
extern const struct bench_target bench_target_redis;
extern const struct bench_target bench_target_nats;

/* bench_opts.c: parse argv into o; exits 2 with a message on a bad flag,
 * 0 after --help. */
void bench_opts_parse(int argc, char **argv, struct bench_opts *o);
const char *bench_workload_name(enum bench_workload w);
const char *bench_keydist_name(enum bench_keydist k);

/* bench_util.c */
int64_t bench_now_ns(void);
void bench_sleep_until_ns(int64_t t);
/* Print "sluice-bench: ..." and exit with status 1 (runtime) or 2 (usage). */
__attribute__((format(printf, 2, 3), noreturn)) void bench_die(int status, const char *fmt, ...);
/* Split "host:port" (port_default if none) into host and port. 0 or -1. */
int bench_hostport(const char *s, int port_default, char *host, size_t host_len, int *port);
/* Connect to host:port within timeout_ms: a connected socket, or -1 with
 * why set ("connection refused", "timed out"). */
int bench_tcp_connect(const char *host, int port, int timeout_ms, char *why, size_t why_len);
/* Check that the first reachable server of a comma-separated list answers
 * TCP within timeout_ms; exit 1 with a message if none does. */
void bench_probe(const char *servers, int port_default, int timeout_ms);
double bench_cpu_s(double *user_s, double *sys_s);

/* A JSON writer to a stream: nested objects and arrays, commas handled. */
#define BENCH_JSON_DEPTH 8
struct bench_json {
	FILE *f;
	int depth;
	bool first[BENCH_JSON_DEPTH];
};
void bench_json_begin(struct bench_json *j, const char *key, char open);
void bench_json_end(struct bench_json *j, char close);
void bench_json_str(struct bench_json *j, const char *key, const char *v);
void bench_json_int(struct bench_json *j, const char *key, int64_t v);
void bench_json_num(struct bench_json *j, const char *key, double v, int decimals);
void bench_json_bool(struct bench_json *j, const char *key, bool v);

/* bench_meter.c */
void bench_meter_init(struct bench_meter *m, const struct bench_env *env, bool e2e);
/* An ack for a record scheduled at sched_ns (-1: not known) of len bytes;
 * err NULL on success. Called by the meter's one writer. */
void bench_meter_ack(struct bench_meter *m, int64_t sched_ns, size_t len, const char *err);
/* A consumed record's value. */
void bench_meter_record(struct bench_meter *m, const void *value, size_t len);
/* An error that is not about one record (a consume error). */
void bench_meter_error(struct bench_meter *m, const char *err);
/* Put send time t into the first BENCH_STAMP_BYTES of value (a no-op for a
 * shorter value); return t from a stamped value, or -1. */
void bench_stamp_put(char *value, size_t len, int64_t t);
int64_t bench_stamp_get(const void *value, size_t len);

/* bench_keys.c: record keys, one generator per producer thread. */
struct bench_keys {
	enum bench_keydist dist;
	int64_t n, next;
	uint64_t rng;
	double zipf_alpha, zipf_zetan, zipf_eta, zipf_half; /* Gray et al.'s constants */
	char buf[32];
};
void bench_keys_init(struct bench_keys *k, const struct bench_opts *o, int seed);
/* The next key (NULL with no key distribution), its length in *len, and
 * the stream it belongs to: a hash of the key, so a key keeps its partition. */
const char *bench_keys_next(struct bench_keys *k, size_t *len, int streams, int *stream);
uint64_t bench_rng(uint64_t *state);

/* bench_run.c: the workload. Fills the meters (o->producers, then
 * o->consumers) and the series. Returns 0, or 1 if a worker failed. */
struct bench_series {
	int n;
	double *t;            /* seconds since start, at each sample */
	int64_t *p_records, *p_bytes, *c_records, *c_bytes; /* cumulative */
};
struct bench_result {
	struct bench_meter *prod, *cons;
	int nprod, ncons;
	struct bench_series series;
	int64_t end_ns;
	bool complete;        /* consumers read all they were to read */
	int64_t server_records; /* what the target holds afterwards, or -1 */
};
int bench_run(struct bench_env *env, struct bench_result *res);
void bench_result_free(struct bench_result *res);

/* bench_report.c */
void bench_report(const struct bench_env *env, const struct bench_result *res);

#endif

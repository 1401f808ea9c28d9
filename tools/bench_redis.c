/*
 * bench_redis: the Redis Streams target (hiredis).
 *
 * Where records go: one stream key per topic and partition ("TOPIC" with
 * one partition, else "TOPIC:P"); an entry is {k: key, v: value}, or just
 * {v: value} without a key. The value carries the send stamp as in every
 * target.
 *
 * Produce: XADD, pipelined — at most --pipeline commands outstanding per
 * connection, written in one go when the window fills or the pacer waits.
 * Replies come back in order, so a ring of the outstanding records' send
 * times gives each ack its latency. The producer thread reads its own
 * replies: while the pacer waits it polls the socket, so an ack is timed
 * when it arrives, not when the next record is sent.
 *
 * Consume: --redis-read group (default): XREADGROUP with NOACK in a
 * consumer group made for the run (at 0 for consume, at $ for e2e, so
 * several consumers share the streams as a Kafka group would) and
 * destroyed after it; range: XRANGE paging for consume, and for e2e XREAD
 * BLOCK from the last entry setup saw (XRANGE cannot wait for new entries).
 *
 * Durability is the server's AOF setting: the tool reads appendonly and
 * appendfsync and reports them, and never changes them.
 */
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

/* Longest command a consumer builds: XREADGROUP and its fixed words, and a
 * key and an id per stream. */
#define BENCH_REDIS_FIXED_ARGS 12
#define BENCH_REDIS_ID_MAX 48

struct bench_redis {
	char host[256];
	int port;
	char group[64];
	char (*keys)[BENCH_NAME_MAX + 16];  /* per stream */
	char (*start)[BENCH_REDIS_ID_MAX];  /* range mode: last id setup saw */
	char version[32], appendonly[16], appendfsync[16];
};

static redisContext *bench_redis_connect(const struct bench_env *env)
{
	struct bench_redis *r = env->state;
	long us = (long)(env->o->timeout_s * 1e6);
	struct timeval tv = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
	redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
	if (c == NULL || c->err != 0)
		bench_die(1, "cannot connect to redis at %s: %s", env->o->bootstrap,
			  c != NULL ? c->errstr : "out of memory");
	redisSetTimeout(c, tv); /* a server that stops answering is an error */
	return c;
}

/* A command's reply, or exit 1 with the error (setup only). */
static redisReply *bench_redis_cmd(redisContext *c, int argc, const char **argv)
{
	redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
	if (rep == NULL)
		bench_die(1, "redis %s: %s", argv[0], c->errstr);
	if (rep->type == REDIS_REPLY_ERROR)
		bench_die(1, "redis %s %s: %s", argv[0], argc > 1 ? argv[1] : "", rep->str);
	return rep;
}

/* CONFIG GET name into out; "unknown" where CONFIG is disabled. */
static void bench_redis_config(redisContext *c, const char *name, char *out, size_t len)
{
	redisReply *rep = redisCommand(c, "CONFIG GET %s", name);
	snprintf(out, len, "unknown");
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
		snprintf(out, len, "%s", rep->element[1]->str);
	freeReplyObject(rep);
}

static void bench_redis_version(redisContext *c, char *out, size_t len)
{
	redisReply *rep = redisCommand(c, "INFO server");
	snprintf(out, len, "unknown");
	const char *v = rep != NULL && rep->type == REDIS_REPLY_STRING ? rep->str : NULL;
	if (v != NULL && (v = strstr(v, "redis_version:")) != NULL)
		snprintf(out, len, "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
	freeReplyObject(rep);
}

static int64_t bench_redis_xlen(redisContext *c, const char *key)
{
	redisReply *rep = redisCommand(c, "XLEN %s", key);
	int64_t n = rep != NULL && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
	freeReplyObject(rep);
	return n;
}

/* Consume: the streams must exist; how many entries they hold. */
static void bench_redis_wanted(struct bench_env *env, redisContext *c)
{
	struct bench_redis *r = env->state;
	env->wanted = 0;
	for (int s = 0; s < env->streams; s++) {
		redisReply *rep = redisCommand(c, "EXISTS %s", r->keys[s]);
		if (rep == NULL || rep->type != REDIS_REPLY_INTEGER || rep->integer != 1)
			bench_die(1, "stream %s does not exist (produce to it first)", r->keys[s]);
		freeReplyObject(rep);
		env->wanted += bench_redis_xlen(c, r->keys[s]);
	}
	if (env->o->records_given && env->o->records < env->wanted)
		env->wanted = env->o->records;
}

/* Where each consumer starts: a group at 0 or $, or the last id now. */
static void bench_redis_positions(struct bench_env *env, redisContext *c)
{
	struct bench_redis *r = env->state;
	bool e2e = env->o->workload == BENCH_E2E;
	for (int s = 0; s < env->streams; s++) {
		if (env->o->redis_read == BENCH_REDIS_GROUP) {
			const char *argv[] = { "XGROUP", "CREATE", r->keys[s], r->group,
					       e2e ? "$" : "0", "MKSTREAM" };
			freeReplyObject(bench_redis_cmd(c, 6, argv));
			continue;
		}
		snprintf(r->start[s], BENCH_REDIS_ID_MAX, e2e ? "0-0" : "-");
		if (!e2e)
			continue;
		redisReply *rep = redisCommand(c, "XREVRANGE %s + - COUNT 1", r->keys[s]);
		if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1)
			snprintf(r->start[s], BENCH_REDIS_ID_MAX, "%s", rep->element[0]->element[0]->str);
		freeReplyObject(rep);
	}
}

static void bench_redis_setup(struct bench_env *env)
{
	struct bench_redis *r = calloc(1, sizeof(*r));
	if (r == NULL)
		bench_die(1, "out of memory");
	env->state = r;
	if (bench_hostport(env->o->bootstrap, 6379, r->host, sizeof(r->host), &r->port) != 0)
		bench_die(2, "bad server address '%s'", env->o->bootstrap);
	r->keys = calloc((size_t)env->streams, sizeof(*r->keys));
	r->start = calloc((size_t)env->streams, sizeof(*r->start));
	if (r->keys == NULL || r->start == NULL)
		bench_die(1, "out of memory");
	for (int s = 0; s < env->streams; s++)
		if (env->partitions == 1)
			snprintf(r->keys[s], sizeof(r->keys[s]), "%s", env->topic_names[s]);
		else
			snprintf(r->keys[s], sizeof(r->keys[s]), "%s:%d",
				 env->topic_names[s / env->partitions], s % env->partitions);
	snprintf(r->group, sizeof(r->group), "sluice-bench-%d-%lld", (int)getpid(),
		 (long long)(bench_now_ns() / 1000));
	redisContext *c = bench_redis_connect(env);
	bench_redis_version(c, r->version, sizeof(r->version));
	bench_redis_config(c, "appendonly", r->appendonly, sizeof(r->appendonly));
	bench_redis_config(c, "appendfsync", r->appendfsync, sizeof(r->appendfsync));
	if (env->o->workload == BENCH_CONSUME)
		bench_redis_wanted(env, c);
	if (env->o->workload != BENCH_PRODUCE)
		bench_redis_positions(env, c);
	redisFree(c);
}

/* ---- producer ---- */

struct bench_redis_producer {
	struct bench_env *env;
	struct bench_meter *m;
	redisContext *c;
	int64_t *sched;          /* ring of outstanding records' send times */
	size_t *len;
	int cap, head, count;
};

static void *bench_redis_producer_open(struct bench_env *env, int index, struct bench_meter *m)
{
	struct bench_redis_producer *p = calloc(1, sizeof(*p));
	(void)index;
	if (p == NULL)
		bench_die(1, "out of memory");
	*p = (struct bench_redis_producer){ .env = env, .m = m, .cap = env->o->pipeline };
	p->sched = calloc((size_t)p->cap, sizeof(*p->sched));
	p->len = calloc((size_t)p->cap, sizeof(*p->len));
	if (p->sched == NULL || p->len == NULL)
		bench_die(1, "out of memory");
	p->c = bench_redis_connect(env);
	return p;
}

/* One reply: the oldest outstanding XADD's. */
static void bench_redis_ack(struct bench_redis_producer *p, const redisReply *rep)
{
	int i = p->head;
	p->head = (p->head + 1) % p->cap;
	p->count--;
	bench_meter_ack(p->m, p->sched[i], p->len[i],
			rep->type == REDIS_REPLY_ERROR ? rep->str : NULL);
}

/* Take every complete reply already read. 0, or -1 on a protocol error. */
static int bench_redis_take(struct bench_redis_producer *p)
{
	for (;;) {
		void *rep = NULL;
		if (redisGetReplyFromReader(p->c, &rep) != REDIS_OK)
			return -1;
		if (rep == NULL)
			return 0;
		if (p->count > 0)
			bench_redis_ack(p, rep);
		freeReplyObject(rep);
	}
}

static int bench_redis_flush(struct bench_redis_producer *p)
{
	int done = 0;
	while (!done)
		if (redisBufferWrite(p->c, &done) != REDIS_OK)
			return -1;
	return 0;
}

/* Read what arrives within timeout_ns (0: only what is there). */
static int bench_redis_read(struct bench_redis_producer *p, int64_t timeout_ns)
{
	struct pollfd pfd = { .fd = p->c->fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
	int n = ppoll(&pfd, 1, &ts, NULL);
	if (n > 0 && redisBufferRead(p->c) != REDIS_OK)
		return -1;
	return bench_redis_take(p);
}

static int bench_redis_fail(struct bench_redis_producer *p)
{
	bench_meter_error(p->m, p->c->errstr[0] ? p->c->errstr : "redis connection failed");
	return -1;
}

static int bench_redis_send(void *arg, const struct bench_rec *r)
{
	struct bench_redis_producer *p = arg;
	struct bench_redis *st = p->env->state;
	if (p->count == p->cap) { /* window full: out with it, wait for an ack */
		if (bench_redis_flush(p) != 0)
			return bench_redis_fail(p);
		int64_t deadline = bench_now_ns() + (int64_t)(p->env->o->timeout_s * 1e9);
		while (p->count == p->cap) {
			int64_t now = bench_now_ns();
			if (now >= deadline) {
				bench_meter_error(p->m, "no XADD answered within --timeout");
				return -1;
			}
			if (bench_redis_read(p, deadline - now) != 0)
				return bench_redis_fail(p);
		}
	}
	const char *argv[7] = { "XADD", st->keys[r->stream], "*", "k", r->key, "v", r->value };
	size_t lens[7] = { 4, strlen(st->keys[r->stream]), 1, 1, r->key_len, 1, r->len };
	int skip = r->key != NULL ? 0 : 2; /* no key: XADD KEY * v VALUE */
	if (skip != 0) {
		argv[3] = "v", lens[3] = 1;
		argv[4] = r->value, lens[4] = r->len;
	}
	if (redisAppendCommandArgv(p->c, 7 - skip, argv, lens) != REDIS_OK)
		return bench_redis_fail(p);
	int i = (p->head + p->count) % p->cap;
	p->sched[i] = r->sched_ns;
	p->len[i] = r->len;
	p->count++;
	return 0;
}

static int bench_redis_wait(void *arg, int64_t until_ns)
{
	struct bench_redis_producer *p = arg;
	if (bench_redis_flush(p) != 0)
		return bench_redis_fail(p);
	for (int64_t now = bench_now_ns(); now < until_ns; now = bench_now_ns()) {
		if (p->count == 0) {
			bench_sleep_until_ns(until_ns);
			break;
		}
		if (bench_redis_read(p, until_ns - now) != 0)
			return bench_redis_fail(p);
	}
	return 0;
}

static int bench_redis_drain(void *arg, int64_t deadline_ns)
{
	struct bench_redis_producer *p = arg;
	if (bench_redis_flush(p) != 0)
		return bench_redis_fail(p);
	for (int64_t now = bench_now_ns(); p->count > 0 && now < deadline_ns; now = bench_now_ns())
		if (bench_redis_read(p, deadline_ns - now) != 0)
			return bench_redis_fail(p);
	if (p->count > 0) {
		bench_meter_error(p->m, "XADDs still unanswered after the drain time");
		return -1;
	}
	return 0;
}

static void bench_redis_producer_close(void *arg)
{
	struct bench_redis_producer *p = arg;
	redisFree(p->c);
	free(p->sched);
	free(p->len);
	free(p);
}

/* ---- consumer ---- */

struct bench_redis_consumer {
	struct bench_env *env;
	struct bench_meter *m;
	redisContext *c;
	int index;
	char name[32];
	char (*last)[BENCH_REDIS_ID_MAX]; /* range mode: per stream of this consumer */
	int nstreams;
	const char **argv;
	char count[16], block[16];
};

static void *bench_redis_consumer_open(struct bench_env *env, int index, struct bench_meter *m)
{
	struct bench_redis *r = env->state;
	struct bench_redis_consumer *c = calloc(1, sizeof(*c));
	if (c == NULL)
		bench_die(1, "out of memory");
	*c = (struct bench_redis_consumer){ .env = env, .m = m, .index = index };
	snprintf(c->name, sizeof(c->name), "c%d", index);
	snprintf(c->count, sizeof(c->count), "%d", env->o->consume_batch);
	/* Group mode reads every stream (the group shares them out); range
	 * mode reads streams index, index + consumers, ... */
	c->nstreams = env->streams;
	c->last = calloc((size_t)env->streams, sizeof(*c->last));
	c->argv = calloc((size_t)(BENCH_REDIS_FIXED_ARGS + 2 * env->streams), sizeof(*c->argv));
	if (c->last == NULL || c->argv == NULL)
		bench_die(1, "out of memory");
	for (int s = 0; s < env->streams; s++)
		memcpy(c->last[s], r->start[s], BENCH_REDIS_ID_MAX);
	c->c = bench_redis_connect(env);
	return c;
}

/* The value of an entry [id, [field, value, ...]]: field "v". */
static void bench_redis_entry(struct bench_redis_consumer *c, const redisReply *e, char *last)
{
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
		return;
	if (last != NULL)
		snprintf(last, BENCH_REDIS_ID_MAX, "(%s", e->element[0]->str);
	const redisReply *f = e->element[1];
	for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
		if (f->element[i]->len == 1 && f->element[i]->str[0] == 'v') {
			bench_meter_record(c->m, f->element[i + 1]->str, f->element[i + 1]->len);
			return;
		}
	bench_meter_record(c->m, NULL, 0);
}

/* The stream index of key, for XREAD's reply. */
static int bench_redis_stream_of(const struct bench_env *env, const char *key)
{
	struct bench_redis *r = env->state;
	for (int s = 0; s < env->streams; s++)
		if (strcmp(r->keys[s], key) == 0)
			return s;
	return -1;
}

/* XREADGROUP / XREAD reply: [[key, [entry, ...]], ...]. */
static int bench_redis_streams_reply(struct bench_redis_consumer *c, const redisReply *rep,
				     bool track)
{
	int n = 0;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const redisReply *kv = rep->element[i];
		if (kv->type != REDIS_REPLY_ARRAY || kv->elements != 2)
			continue;
		int s = track ? bench_redis_stream_of(c->env, kv->element[0]->str) : -1;
		for (size_t e = 0; e < kv->element[1]->elements; e++, n++)
			bench_redis_entry(c, kv->element[1]->element[e], s >= 0 ? c->last[s] : NULL);
	}
	return n;
}

static int bench_redis_error(struct bench_redis_consumer *c, redisReply *rep)
{
	bench_meter_error(c->m, rep != NULL ? rep->str : c->c->errstr);
	freeReplyObject(rep);
	return -1;
}

/* One blocking read over the consumer's streams: XREADGROUP or XREAD. */
static int bench_redis_read_streams(struct bench_redis_consumer *c, int wait_ms)
{
	struct bench_env *env = c->env;
	struct bench_redis *r = env->state;
	bool group = env->o->redis_read == BENCH_REDIS_GROUP;
	int argc = 0;
	snprintf(c->block, sizeof(c->block), "%d", wait_ms);
	if (group) {
		c->argv[argc++] = "XREADGROUP";
		c->argv[argc++] = "GROUP";
		c->argv[argc++] = r->group;
		c->argv[argc++] = c->name;
	} else {
		c->argv[argc++] = "XREAD";
	}
	const char *fixed[] = { "COUNT", c->count, "BLOCK", c->block };
	for (int i = 0; i < 4; i++)
		c->argv[argc++] = fixed[i];
	if (group)
		c->argv[argc++] = "NOACK";
	c->argv[argc++] = "STREAMS";
	int first = argc;
	for (int s = c->index % (group ? 1 : env->o->consumers); s < env->streams;
	     s += group ? 1 : env->o->consumers)
		c->argv[argc++] = r->keys[s];
	int keys = argc - first;
	for (int i = 0; i < keys; i++) {
		int s = bench_redis_stream_of(env, c->argv[first + i]);
		/* XREAD takes the last id without "(": it is exclusive already. */
		c->argv[argc++] = group ? ">" : c->last[s] + (c->last[s][0] == '(');
	}
	if (keys == 0) {
		bench_sleep_until_ns(bench_now_ns() + (int64_t)wait_ms * 1000000);
		return 0;
	}
	redisReply *rep = redisCommandArgv(c->c, argc, c->argv, NULL);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
		return bench_redis_error(c, rep);
	int n = bench_redis_streams_reply(c, rep, !group);
	freeReplyObject(rep);
	return n;
}

/* XRANGE paging over this consumer's streams; a short sleep when all are
 * read to the end, since XRANGE cannot wait for more. */
static int bench_redis_range(struct bench_redis_consumer *c, int wait_ms)
{
	struct bench_env *env = c->env;
	struct bench_redis *r = env->state;
	int n = 0;
	for (int s = c->index; s < env->streams; s += env->o->consumers) {
		const char *argv[] = { "XRANGE", r->keys[s], c->last[s], "+", "COUNT", c->count };
		redisReply *rep = redisCommandArgv(c->c, 6, argv, NULL);
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			return bench_redis_error(c, rep);
		for (size_t e = 0; rep->type == REDIS_REPLY_ARRAY && e < rep->elements; e++, n++)
			bench_redis_entry(c, rep->element[e], c->last[s]);
		freeReplyObject(rep);
	}
	if (n == 0)
		bench_sleep_until_ns(bench_now_ns() + (int64_t)(wait_ms < 10 ? wait_ms : 10) * 1000000);
	return n;
}

static int bench_redis_consume(void *arg, int wait_ms)
{
	struct bench_redis_consumer *c = arg;
	if (c->env->o->redis_read == BENCH_REDIS_RANGE && c->env->o->workload == BENCH_CONSUME)
		return bench_redis_range(c, wait_ms);
	return bench_redis_read_streams(c, wait_ms);
}

static void bench_redis_consumer_close(void *arg)
{
	struct bench_redis_consumer *c = arg;
	redisFree(c->c);
	free(c->last);
	free(c->argv);
	free(c);
}

/* ---- the run ---- */

static int64_t bench_redis_count(struct bench_env *env)
{
	struct bench_redis *r = env->state;
	redisContext *c = bench_redis_connect(env);
	int64_t n = 0;
	for (int s = 0; s < env->streams && n >= 0; s++) {
		int64_t len = bench_redis_xlen(c, r->keys[s]);
		n = len < 0 ? -1 : n + len;
	}
	redisFree(c);
	return n;
}

static void bench_redis_describe(struct bench_env *env, struct bench_json *j)
{
	struct bench_redis *r = env->state;
	char d[160];
	bench_json_str(j, "kind", "redis");
	bench_json_str(j, "version", r->version);
	bench_json_str(j, "appendonly", r->appendonly);
	bench_json_str(j, "appendfsync", r->appendfsync);
	if (strcmp(r->appendonly, "yes") != 0)
		snprintf(d, sizeof(d), "no AOF: acked in memory only");
	else if (strcmp(r->appendfsync, "always") == 0)
		snprintf(d, sizeof(d), "AOF fsync before each reply batch (appendfsync always)");
	else
		snprintf(d, sizeof(d), "AOF written, fsync not before the ack (appendfsync %s)",
			 r->appendfsync);
	bench_json_str(j, "durability", d);
	bench_json_str(j, "stream_keys", env->partitions == 1 ? "TOPIC" : "TOPIC:PARTITION");
}

static void bench_redis_teardown(struct bench_env *env)
{
	struct bench_redis *r = env->state;
	if (env->o->workload != BENCH_PRODUCE && env->o->redis_read == BENCH_REDIS_GROUP) {
		redisContext *c = bench_redis_connect(env);
		for (int s = 0; s < env->streams; s++)
			freeReplyObject(redisCommand(c, "XGROUP DESTROY %s %s", r->keys[s], r->group));
		redisFree(c);
	}
	free(r->keys);
	free(r->start);
	free(r);
}

static const char *bench_redis_check(const struct bench_opts *o)
{
	if (strcmp(o->acks, "0") == 0)
		return "--acks 0 has no Redis equivalent (every XADD is answered)";
	if (strcmp(o->compression, "none") != 0)
		return "--compression applies to kafka only";
	if (o->props_count > 0)
		return "-X applies to kafka only";
	return NULL;
}

const struct bench_target bench_target_redis = {
	.name = "redis",
	.default_bootstrap = "127.0.0.1:6379",
	.default_port = 6379,
	.check = bench_redis_check,
	.setup = bench_redis_setup,
	.producer_open = bench_redis_producer_open,
	.send = bench_redis_send,
	.wait = bench_redis_wait,
	.drain = bench_redis_drain,
	.producer_close = bench_redis_producer_close,
	.consumer_open = bench_redis_consumer_open,
	.consume = bench_redis_consume,
	.consumer_close = bench_redis_consumer_close,
	.count = bench_redis_count,
	.describe = bench_redis_describe,
	.teardown = bench_redis_teardown,
};

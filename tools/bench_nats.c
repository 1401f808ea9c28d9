/*
 * bench_nats: the NATS JetStream target (cnats, Debian's libnats).
 *
 * Where records go: one stream per topic, named as the topic, on subjects
 * "TOPIC.*", created with file storage if missing; partition P is subject
 * "TOPIC.P". A key travels in a "Sluice-Key" header.
 *
 * Produce: js_PublishAsync, at most --max-pending publishes awaiting their
 * ack per connection. The ack handler (on the connection's delivery thread,
 * the meter's one writer) reads the send stamp back from the published
 * message's value, so ack latency needs values of at least
 * BENCH_STAMP_BYTES; shorter ones are counted but not timed.
 *
 * Consume: a pull consumer per topic, made for the run (deliver all for
 * consume, deliver new for e2e) and deleted after it; every consumer thread
 * binds to it and takes batches with natsSubscription_Fetch, so the server
 * shares the records out as a Kafka group would; while the late tail of a
 * timed-out Fetch is still queued, a Fetch takes one message (cnats 3.4.1,
 * see bench_nats_batch). The consumer asks for no acks (AckNone) where the
 * server allows it, else acks each batch's last message (AckAll).
 *
 * Durability: NATS 2.9 writes each message to its file store but does not
 * fsync it before the ack (it syncs in the background); the JSON says so.
 */
#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define BENCH_NATS_INFO_MAX 4096
#define BENCH_NATS_SUBJECT_MAX (BENCH_NAME_MAX + 16)

struct bench_nats {
	char url[300];
	char version[32];
	char durable[64];
	bool ack_all;                       /* the server refused AckNone */
	char (*subjects)[BENCH_NATS_SUBJECT_MAX]; /* per stream */
	natsConnection *nc;
	jsCtx *js;
};

static const char *bench_nats_err(natsStatus s)
{
	const char *last = nats_GetLastError(NULL);
	return last != NULL && last[0] != '\0' ? last : natsStatus_GetText(s);
}

/* The server's version from the INFO line it greets a client with. */
static void bench_nats_version(const struct bench_env *env, char *out, size_t len)
{
	char host[256], why[128], buf[BENCH_NATS_INFO_MAX];
	int port;
	snprintf(out, len, "unknown");
	if (bench_hostport(env->o->bootstrap, 4222, host, sizeof(host), &port) != 0)
		return;
	int fd = bench_tcp_connect(host, port, (int)(env->o->timeout_s * 1000), why, sizeof(why));
	if (fd < 0)
		return;
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t got = 0;
	ssize_t n;
	while (got + 1 < sizeof(buf) && memchr(buf, '\n', got) == NULL &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	const char *v = strstr(buf, "\"version\":\"");
	if (v != NULL)
		snprintf(out, len, "%.*s", (int)strcspn(v + 11, "\""), v + 11);
}

/* A connection and its JetStream context; closure gets the async acks. */
static void bench_nats_connect(const struct bench_env *env, natsConnection **nc, jsCtx **js,
			       jsPubAckHandler ack, void *closure)
{
	struct bench_nats *st = env->state;
	natsOptions *opts = NULL;
	int64_t timeout_ms = (int64_t)(env->o->timeout_s * 1000);
	natsStatus s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(opts, st->url);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(opts, timeout_ms);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(opts, false);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK)
		bench_die(1, "cannot connect to nats at %s: %s", env->o->bootstrap, bench_nats_err(s));
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = timeout_ms;
	jo.PublishAsync.MaxPending = env->o->max_pending;
	jo.PublishAsync.AckHandler = ack;
	jo.PublishAsync.AckHandlerClosure = closure;
	jo.PublishAsync.StallWait = timeout_ms;
	s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK)
		bench_die(1, "nats JetStream context: %s", bench_nats_err(s));
}

/* Produce and e2e: each topic's stream, created if missing. */
static void bench_nats_streams(struct bench_env *env)
{
	struct bench_nats *st = env->state;
	for (int t = 0; t < env->o->topics; t++) {
		jsStreamInfo *si = NULL;
		jsErrCode jerr = 0;
		natsStatus s = js_GetStreamInfo(&si, st->js, env->topic_names[t], NULL, &jerr);
		if (s == NATS_OK) {
			jsStreamInfo_Destroy(si);
			continue;
		}
		char subj[BENCH_NATS_SUBJECT_MAX];
		const char *subjects[] = { subj };
		snprintf(subj, sizeof(subj), "%s.*", env->topic_names[t]);
		jsStreamConfig cfg;
		jsStreamConfig_Init(&cfg);
		cfg.Name = env->topic_names[t];
		cfg.Subjects = subjects;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		s = js_AddStream(&si, st->js, &cfg, NULL, &jerr);
		if (s != NATS_OK)
			bench_die(1, "create stream %s: %s (is JetStream on? nats-server -js)",
				  env->topic_names[t], bench_nats_err(s));
		jsStreamInfo_Destroy(si);
	}
}

/* Messages a topic's stream holds, or -1 if it does not exist. */
static int64_t bench_nats_msgs(jsCtx *js, const char *stream)
{
	jsStreamInfo *si = NULL;
	if (js_GetStreamInfo(&si, js, stream, NULL, NULL) != NATS_OK)
		return -1;
	int64_t n = (int64_t)si->State.Msgs;
	jsStreamInfo_Destroy(si);
	return n;
}

static natsStatus bench_nats_add_consumer(struct bench_nats *st, const char *stream, bool e2e,
					  jsAckPolicy ack)
{
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig_Init(&cc);
	cc.Durable = st->durable;
	cc.DeliverPolicy = e2e ? js_DeliverNew : js_DeliverAll;
	cc.AckPolicy = ack;
	natsStatus s = js_AddConsumer(&ci, st->js, stream, &cc, NULL, NULL);
	jsConsumerInfo_Destroy(ci);
	return s;
}

/* Consume and e2e: the run's pull consumer on each topic's stream. */
static void bench_nats_consumers(struct bench_env *env)
{
	struct bench_nats *st = env->state;
	bool e2e = env->o->workload == BENCH_E2E;
	snprintf(st->durable, sizeof(st->durable), "sluice-bench-%d-%lld", (int)getpid(),
		 (long long)(bench_now_ns() / 1000));
	for (int t = 0; t < env->o->topics; t++) {
		natsStatus s = NATS_OK;
		if (!st->ack_all &&
		    bench_nats_add_consumer(st, env->topic_names[t], e2e, js_AckNone) != NATS_OK)
			st->ack_all = true;
		if (st->ack_all)
			s = bench_nats_add_consumer(st, env->topic_names[t], e2e, js_AckAll);
		if (s != NATS_OK)
			bench_die(1, "pull consumer on %s: %s", env->topic_names[t], bench_nats_err(s));
	}
}

static void bench_nats_setup(struct bench_env *env)
{
	struct bench_nats *st = calloc(1, sizeof(*st));
	if (st == NULL)
		bench_die(1, "out of memory");
	env->state = st;
	snprintf(st->url, sizeof(st->url), "nats://%s", env->o->bootstrap);
	bench_nats_version(env, st->version, sizeof(st->version));
	st->subjects = calloc((size_t)env->streams, sizeof(*st->subjects));
	if (st->subjects == NULL)
		bench_die(1, "out of memory");
	for (int s = 0; s < env->streams; s++)
		snprintf(st->subjects[s], BENCH_NATS_SUBJECT_MAX, "%s.%d",
			 env->topic_names[s / env->partitions], s % env->partitions);
	bench_nats_connect(env, &st->nc, &st->js, NULL, NULL);
	if (env->o->workload != BENCH_CONSUME) {
		bench_nats_streams(env);
	} else {
		env->wanted = 0;
		for (int t = 0; t < env->o->topics; t++) {
			int64_t n = bench_nats_msgs(st->js, env->topic_names[t]);
			if (n < 0)
				bench_die(1, "stream %s does not exist (produce to it first)",
					  env->topic_names[t]);
			env->wanted += n;
		}
		if (env->o->records_given && env->o->records < env->wanted)
			env->wanted = env->o->records;
	}
	if (env->o->workload != BENCH_PRODUCE)
		bench_nats_consumers(env);
}

/* ---- producer ---- */

struct bench_nats_producer {
	struct bench_env *env;
	struct bench_meter *m;
	natsConnection *nc;
	jsCtx *js;
};

/* On the connection's delivery thread: every ack and every failure. */
static void bench_nats_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct bench_nats_producer *p = closure;
	(void)js;
	(void)pa;
	const char *data = natsMsg_GetData(msg);
	size_t len = (size_t)natsMsg_GetDataLength(msg);
	const char *err = NULL;
	if (pae != NULL)
		err = pae->ErrText != NULL && pae->ErrText[0] ? pae->ErrText
							      : natsStatus_GetText(pae->Err);
	bench_meter_ack(p->m, bench_stamp_get(data, len), len, err);
	natsMsg_Destroy(msg);
}

static void *bench_nats_producer_open(struct bench_env *env, int index, struct bench_meter *m)
{
	struct bench_nats_producer *p = calloc(1, sizeof(*p));
	(void)index;
	if (p == NULL)
		bench_die(1, "out of memory");
	*p = (struct bench_nats_producer){ .env = env, .m = m };
	bench_nats_connect(env, &p->nc, &p->js, bench_nats_ack, p);
	return p;
}

static int bench_nats_send(void *arg, const struct bench_rec *r)
{
	struct bench_nats_producer *p = arg;
	struct bench_nats *st = p->env->state;
	natsMsg *msg = NULL;
	natsStatus s = natsMsg_Create(&msg, st->subjects[r->stream], NULL, r->value, (int)r->len);
	if (s == NATS_OK && r->key != NULL)
		s = natsMsgHeader_Set(msg, "Sluice-Key", r->key);
	/* At --max-pending the call stalls for up to StallWait, then says
	 * timeout: the window is full, try again until the server answers. */
	while (s == NATS_OK && (s = js_PublishMsgAsync(p->js, &msg, NULL)) == NATS_TIMEOUT &&
	       !atomic_load(&p->env->stop))
		s = NATS_OK;
	natsMsg_Destroy(msg); /* a no-op once the library took it */
	if (s != NATS_OK) {
		bench_meter_error(p->m, bench_nats_err(s));
		return -1;
	}
	return 0;
}

static int bench_nats_wait(void *arg, int64_t until_ns)
{
	(void)arg;
	bench_sleep_until_ns(until_ns); /* the connection's thread serves the acks */
	return 0;
}

static int bench_nats_drain(void *arg, int64_t deadline_ns)
{
	struct bench_nats_producer *p = arg;
	jsPubOptions po;
	jsPubOptions_Init(&po);
	int64_t left_ms = (deadline_ns - bench_now_ns()) / 1000000;
	po.MaxWait = left_ms > 1 ? left_ms : 1;
	natsStatus s = js_PublishAsyncComplete(p->js, &po);
	if (s != NATS_OK) {
		bench_meter_error(p->m, s == NATS_TIMEOUT ? "publishes still unacknowledged after the "
							   "drain time" : bench_nats_err(s));
		return -1;
	}
	return 0;
}

static void bench_nats_producer_close(void *arg)
{
	struct bench_nats_producer *p = arg;
	jsCtx_Destroy(p->js);
	natsConnection_Destroy(p->nc);
	free(p);
}

/* ---- consumer ---- */

struct bench_nats_consumer {
	struct bench_env *env;
	struct bench_meter *m;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription **subs;  /* per topic */
};

static void *bench_nats_consumer_open(struct bench_env *env, int index, struct bench_meter *m)
{
	struct bench_nats *st = env->state;
	struct bench_nats_consumer *c = calloc(1, sizeof(*c));
	(void)index;
	if (c == NULL)
		bench_die(1, "out of memory");
	*c = (struct bench_nats_consumer){ .env = env, .m = m };
	c->subs = calloc((size_t)env->o->topics, sizeof(*c->subs));
	if (c->subs == NULL)
		bench_die(1, "out of memory");
	bench_nats_connect(env, &c->nc, &c->js, NULL, NULL);
	for (int t = 0; t < env->o->topics; t++) {
		char subj[BENCH_NATS_SUBJECT_MAX];
		snprintf(subj, sizeof(subj), "%s.*", env->topic_names[t]);
		jsSubOptions so;
		jsSubOptions_Init(&so);
		so.Stream = env->topic_names[t];
		so.Consumer = st->durable;
		natsStatus s = js_PullSubscribe(&c->subs[t], c->js, subj, st->durable, NULL, &so, NULL);
		if (s != NATS_OK)
			bench_die(1, "pull subscribe to %s: %s", env->topic_names[t], bench_nats_err(s));
	}
	return c;
}

/*
 * How many messages to ask one Fetch for. cnats 3.4.1's Fetch first takes
 * what is already queued on the subscription (the late tail of an earlier
 * Fetch that timed out), asks the server for the rest of the batch, and then
 * loops until its count, queued messages included, equals that smaller
 * request rather than the batch. With less than half a batch queued it
 * returns early and strands part of its own request (so the next Fetch finds
 * a queue again); with half or more the count never equals it and the loop
 * stores past the batch-sized array it allocated until it times out, which
 * glibc later reports as "double free or corruption". A Fetch of one that
 * finds a message queued is full before it sends a request, so drain the
 * queue one message at a time. The check is not atomic with the Fetch, but a
 * tail landing in between must be half a batch to do harm.
 */
static int bench_nats_batch(natsSubscription *sub, int batch)
{
	int queued = 0;
	if (natsSubscription_GetPending(sub, &queued, NULL) != NATS_OK || queued > 0)
		return 1;
	return batch;
}

static int bench_nats_consume(void *arg, int wait_ms)
{
	struct bench_nats_consumer *c = arg;
	struct bench_nats *st = c->env->state;
	int topics = c->env->o->topics, n = 0;
	for (int t = 0; t < topics; t++) {
		natsMsgList list = { 0 };
		int64_t timeout = topics == 1 ? wait_ms : 1 + wait_ms / topics;
		int batch = bench_nats_batch(c->subs[t], c->env->o->consume_batch);
		natsStatus s = natsSubscription_Fetch(&list, c->subs[t], batch, timeout, NULL);
		if (s != NATS_OK && s != NATS_TIMEOUT) {
			bench_meter_error(c->m, bench_nats_err(s));
			return -1;
		}
		for (int i = 0; i < list.Count; i++)
			bench_meter_record(c->m, natsMsg_GetData(list.Msgs[i]),
					   (size_t)natsMsg_GetDataLength(list.Msgs[i]));
		if (st->ack_all && list.Count > 0)
			natsMsg_Ack(list.Msgs[list.Count - 1], NULL);
		n += list.Count;
		natsMsgList_Destroy(&list);
	}
	return n;
}

static void bench_nats_consumer_close(void *arg)
{
	struct bench_nats_consumer *c = arg;
	for (int t = 0; t < c->env->o->topics; t++)
		natsSubscription_Destroy(c->subs[t]);
	free(c->subs);
	jsCtx_Destroy(c->js);
	natsConnection_Destroy(c->nc);
	free(c);
}

/* ---- the run ---- */

static int64_t bench_nats_count(struct bench_env *env)
{
	struct bench_nats *st = env->state;
	int64_t total = 0;
	for (int t = 0; t < env->o->topics && total >= 0; t++) {
		int64_t n = bench_nats_msgs(st->js, env->topic_names[t]);
		total = n < 0 ? -1 : total + n;
	}
	return total;
}

static void bench_nats_describe(struct bench_env *env, struct bench_json *j)
{
	struct bench_nats *st = env->state;
	bench_json_str(j, "kind", "nats");
	bench_json_str(j, "version", st->version);
	bench_json_str(j, "client", nats_GetVersion());
	bench_json_str(j, "storage", "file");
	bench_json_bool(j, "fsync_per_message", false);
	bench_json_str(j, "durability", "NATS 2.9 JetStream does not fsync per message: a "
		       "publish is acked once written to the file store, synced later in the "
		       "background");
	if (env->o->workload != BENCH_PRODUCE)
		bench_json_str(j, "consumer_ack_policy", st->ack_all ? "all" : "none");
}

static void bench_nats_teardown(struct bench_env *env)
{
	struct bench_nats *st = env->state;
	if (env->o->workload != BENCH_PRODUCE)
		for (int t = 0; t < env->o->topics; t++)
			js_DeleteConsumer(st->js, env->topic_names[t], st->durable, NULL, NULL);
	jsCtx_Destroy(st->js);
	natsConnection_Destroy(st->nc);
	free(st->subjects);
	free(st);
	nats_Close();
}

static const char *bench_nats_check(const struct bench_opts *o)
{
	if (strcmp(o->acks, "0") == 0)
		return "--acks 0 is not supported (JetStream publishes are acked)";
	if (strcmp(o->compression, "none") != 0)
		return "--compression applies to kafka only";
	if (o->props_count > 0)
		return "-X applies to kafka only";
	if (strpbrk(o->topic, ". *>") != NULL)
		return "--topic: a stream name has no '.', ' ', '*' or '>'";
	return NULL;
}

const struct bench_target bench_target_nats = {
	.name = "nats",
	.default_bootstrap = "127.0.0.1:4222",
	.default_port = 4222,
	.check = bench_nats_check,
	.setup = bench_nats_setup,
	.producer_open = bench_nats_producer_open,
	.send = bench_nats_send,
	.wait = bench_nats_wait,
	.drain = bench_nats_drain,
	.producer_close = bench_nats_producer_close,
	.consumer_open = bench_nats_consumer_open,
	.consume = bench_nats_consume,
	.consumer_close = bench_nats_consumer_close,
	.count = bench_nats_count,
	.describe = bench_nats_describe,
	.teardown = bench_nats_teardown,
};

/*
 * bench_run: the workloads, the same for every target.
 *
 * Producers: each thread owns a client (target producer) and sends its
 * share of the records, as fast as the client takes them, or open loop at
 * --rate / producers. Open loop: record k of producer i is due at
 * start + (k * producers + i) / rate, and its latency is measured from that
 * due time, not from when it was actually handed over, so a stalled server
 * cannot hide its stall behind a stalled client (coordinated omission).
 * The pacer never spins: it waits (serving acks, for targets that read them
 * on this thread) until the next record is due, at least --pace-us, and
 * then sends every record due by then; the wait of a record that fell due
 * in between counts in its latency, as it should in an open-loop run.
 *
 * Consumers: each thread owns a client and reads until the run's consumers
 * together have read what they came for (consume: what the topics held at
 * the start, or --records/--bytes; e2e: everything the producers got
 * acknowledged), --duration passed (consume), or nothing came for
 * BENCH_IDLE_MS (incomplete).
 *
 * The main thread samples the meters once a second into the series (the
 * throughput-over-time chart) and, on a terminal, the progress line.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define RELAXED memory_order_relaxed
/* How often the main thread looks at the workers between samples. */
#define BENCH_TICK_NS 50000000

struct bench_worker {
	struct bench_env *env;
	int index;
	void *handle;             /* the target's producer or consumer */
	struct bench_meter *meter;
	struct bench_meter *all;  /* consumers: every consumer's meter */
	int rc;
	_Atomic bool done;
};

static struct bench_env *bench_sigenv;

static void bench_on_sigint(int sig)
{
	(void)sig;
	if (bench_sigenv != NULL)
		atomic_store(&bench_sigenv->stop, true);
}

/* Records this producer sends: its share of --records (unused with
 * --duration). */
static int64_t bench_share(const struct bench_opts *o, int index)
{
	int64_t n = o->records / o->producers;
	return n + (index < o->records % o->producers ? 1 : 0);
}

static char *bench_value_new(const struct bench_opts *o, int index)
{
	/* Random capital letters, as Kafka's own perf tool sends: compressible
	 * like text, not like a run of one byte. */
	char *v = malloc((size_t)o->record_size + 1);
	if (v == NULL)
		bench_die(1, "out of memory");
	uint64_t rng = 0x51CEull + (uint64_t)index;
	for (int i = 0; i < o->record_size; i++)
		v[i] = (char)('A' + bench_rng(&rng) % 26);
	return v;
}

/* The pacing loop of one producer. 0, or -1 if the target failed. */
static int bench_produce_loop(struct bench_worker *w)
{
	struct bench_env *env = w->env;
	const struct bench_opts *o = env->o;
	const struct bench_target *t = o->target;
	int64_t want = bench_share(o, w->index), end = env->start_ns + (int64_t)(o->duration_s * 1e9);
	int64_t pace_ns = (int64_t)o->pace_us * 1000;
	char *value = bench_value_new(o, w->index);
	struct bench_keys keys;
	bench_keys_init(&keys, o, w->index);
	struct bench_rec r = { .value = value, .len = (size_t)o->record_size };
	int rc = 0;
	for (int64_t k = 0; rc == 0 && !atomic_load_explicit(&env->stop, RELAXED); k++) {
		int64_t now = bench_now_ns(), seq = k * o->producers + w->index;
		if (o->duration_s > 0 ? now >= end : k >= want)
			break;
		r.sched_ns = now;
		if (o->rate > 0) {
			r.sched_ns = env->start_ns + (int64_t)((double)seq * 1e9 / o->rate);
			if (o->duration_s > 0 && r.sched_ns >= end)
				break;
			if (r.sched_ns > now)
				rc = t->wait(w->handle, r.sched_ns > now + pace_ns ? r.sched_ns
										 : now + pace_ns);
		}
		r.stream = (int)(seq % env->streams);
		r.key = bench_keys_next(&keys, &r.key_len, env->streams, &r.stream);
		bench_stamp_put(value, r.len, r.sched_ns);
		if (rc == 0)
			rc = t->send(w->handle, &r);
	}
	free(value);
	int drained = t->drain(w->handle, bench_now_ns() + (int64_t)BENCH_DRAIN_MS * 1000000);
	return rc != 0 ? rc : drained;
}

static void *bench_producer_main(void *arg)
{
	struct bench_worker *w = arg;
	w->rc = bench_produce_loop(w);
	if (w->rc != 0)
		fprintf(stderr, "sluice-bench: producer %d: %s\n", w->index,
			w->meter->first_error[0] ? w->meter->first_error : "failed");
	atomic_store(&w->done, true);
	return NULL;
}

static int64_t bench_sum(const struct bench_meter *m, int n, bool bytes)
{
	int64_t s = 0;
	for (int i = 0; i < n; i++)
		s += atomic_load_explicit(bytes ? &m[i].bytes : &m[i].records, RELAXED);
	return s;
}

/* Has the consuming side read what it came for? Sets *complete then. */
static bool bench_consume_done(struct bench_worker *w, int64_t now, bool *complete)
{
	struct bench_env *env = w->env;
	const struct bench_opts *o = env->o;
	int64_t got = bench_sum(w->all, o->consumers, false);
	int64_t want = o->workload == BENCH_E2E ? atomic_load(&env->produced) : env->wanted;
	if ((want >= 0 && got >= want) ||
	    (o->workload == BENCH_CONSUME && o->bytes > 0 &&
	     bench_sum(w->all, o->consumers, true) >= o->bytes)) {
		*complete = true;
		return true;
	}
	if (o->workload == BENCH_CONSUME && o->duration_s > 0 &&
	    now - env->start_ns >= (int64_t)(o->duration_s * 1e9))
		return true;
	/* Idle: while a linked produce goes on, silence means a stuck consumer. */
	int64_t last = atomic_load_explicit(&env->consumed_last_ns, RELAXED);
	return now - last >= (int64_t)BENCH_IDLE_MS * 1000000 || atomic_load(&env->stop);
}

static void *bench_consumer_main(void *arg)
{
	struct bench_worker *w = arg;
	const struct bench_target *t = w->env->o->target;
	bool complete = false;
	while (!bench_consume_done(w, bench_now_ns(), &complete)) {
		int n = t->consume(w->handle, BENCH_CONSUME_WAIT_MS);
		if (n < 0) {
			fprintf(stderr, "sluice-bench: consumer %d: %s\n", w->index,
				w->meter->first_error);
			w->rc = -1;
			break;
		}
		if (n > 0)
			atomic_store_explicit(&w->env->consumed_last_ns, bench_now_ns(), RELAXED);
	}
	w->rc = w->rc != 0 ? w->rc : complete ? 0 : 1;
	atomic_store(&w->done, true);
	return NULL;
}

static bool bench_all_done(struct bench_worker *w, int n)
{
	for (int i = 0; i < n; i++)
		if (!atomic_load(&w[i].done))
			return false;
	return true;
}

/* Append a sample of the cumulative counts, at most BENCH_SERIES_MAX. */
static void bench_sample(struct bench_env *env, struct bench_result *res, int64_t now)
{
	struct bench_series *s = &res->series;
	if (s->n == BENCH_SERIES_MAX)
		return;
	s->t[s->n] = (double)(now - env->start_ns) / 1e9;
	s->p_records[s->n] = bench_sum(res->prod, res->nprod, false);
	s->p_bytes[s->n] = bench_sum(res->prod, res->nprod, true);
	s->c_records[s->n] = bench_sum(res->cons, res->ncons, false);
	s->c_bytes[s->n] = bench_sum(res->cons, res->ncons, true);
	s->n++;
}

static void bench_series_alloc(struct bench_series *s)
{
	size_t n = BENCH_SERIES_MAX;
	s->t = calloc(n, sizeof(*s->t));
	s->p_records = calloc(n, sizeof(int64_t));
	s->p_bytes = calloc(n, sizeof(int64_t));
	s->c_records = calloc(n, sizeof(int64_t));
	s->c_bytes = calloc(n, sizeof(int64_t));
	if (!s->t || !s->p_records || !s->p_bytes || !s->c_records || !s->c_bytes)
		bench_die(1, "out of memory");
}

/* The p99 so far over n meters' histograms. */
static uint64_t bench_p99(const struct bench_meter *m, int n)
{
	static struct hist all; /* main thread only; too big for the stack */
	memset(&all, 0, sizeof(all));
	for (int i = 0; i < n; i++)
		hist_merge(&all, &m[i].lat);
	return hist_quantile(&all, 0.99);
}

/* The live line: elapsed, what is left, and over the last second the rate,
 * MB/s and the p99 so far of the side that the workload is about. */
static void bench_progress(struct bench_env *env, struct bench_result *res, int64_t now)
{
	const struct bench_opts *o = env->o;
	const struct bench_series *s = &res->series;
	if (s->n < 2)
		return;
	bool cons = o->workload != BENCH_PRODUCE;
	const int64_t *rec = cons ? s->c_records : s->p_records, *by = cons ? s->c_bytes : s->p_bytes;
	double dt = s->t[s->n - 1] - s->t[s->n - 2];
	double rps = (double)(rec[s->n - 1] - rec[s->n - 2]) / dt;
	double mbps = (double)(by[s->n - 1] - by[s->n - 2]) / 1e6 / dt;
	double elapsed = (double)(now - env->start_ns) / 1e9;
	char left[64];
	if (o->duration_s > 0)
		snprintf(left, sizeof(left), "%.0f s left", o->duration_s - elapsed);
	else if (o->workload != BENCH_CONSUME && o->records > 0)
		snprintf(left, sizeof(left), "%.0f%%",
			 100.0 * (double)s->p_records[s->n - 1] / (double)o->records);
	else if (env->wanted > 0)
		snprintf(left, sizeof(left), "%.0f%%", 100.0 * (double)rec[s->n - 1] / (double)env->wanted);
	else
		snprintf(left, sizeof(left), "-");
	uint64_t p99 = cons ? bench_p99(res->cons, res->ncons) : bench_p99(res->prod, res->nprod);
	fprintf(stderr, "\r\033[K%s %s: %.0f s, %s: %.0f records/s, %.1f MB/s, p99 %llu us",
		o->target->name, bench_workload_name(o->workload), elapsed, left, rps, mbps,
		(unsigned long long)p99);
}

/* Sample once a second until every worker is done; e2e: tell the consumers
 * how many records to expect once the producers are done. */
static void bench_watch(struct bench_env *env, struct bench_result *res,
			struct bench_worker *prod, struct bench_worker *cons)
{
	int64_t next = env->start_ns + 1000000000;
	bool producers_done = false;
	bench_sample(env, res, env->start_ns);
	for (;;) {
		if (!producers_done && bench_all_done(prod, res->nprod)) {
			producers_done = true;
			atomic_store(&env->produced, bench_sum(res->prod, res->nprod, false));
		}
		if (producers_done && bench_all_done(cons, res->ncons))
			break;
		int64_t now = bench_now_ns();
		if (now >= next) {
			bench_sample(env, res, now);
			if (env->o->progress)
				bench_progress(env, res, now);
			next += 1000000000;
		}
		bench_sleep_until_ns(now + BENCH_TICK_NS < next ? now + BENCH_TICK_NS : next);
	}
	res->end_ns = bench_now_ns();
	bench_sample(env, res, res->end_ns);
	if (env->o->progress)
		fprintf(stderr, "\r\033[K");
}

static struct bench_worker *bench_workers_open(struct bench_env *env, int n, bool producer,
					       struct bench_meter *meters)
{
	const struct bench_target *t = env->o->target;
	struct bench_worker *w = calloc((size_t)(n > 0 ? n : 1), sizeof(*w));
	if (w == NULL)
		bench_die(1, "out of memory");
	for (int i = 0; i < n; i++) {
		w[i] = (struct bench_worker){ .env = env, .index = i, .meter = &meters[i],
					      .all = meters };
		bench_meter_init(&meters[i], env, !producer && env->o->workload == BENCH_E2E);
		w[i].handle = producer ? t->producer_open(env, i, &meters[i])
				       : t->consumer_open(env, i, &meters[i]);
	}
	return w;
}

static void bench_workers_start(struct bench_worker *w, int n, void *(*fn)(void *),
				pthread_t *threads)
{
	for (int i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, fn, &w[i]) != 0)
			bench_die(1, "cannot start a thread");
}

int bench_run(struct bench_env *env, struct bench_result *res)
{
	const struct bench_opts *o = env->o;
	const struct bench_target *t = o->target;
	memset(res, 0, sizeof(*res));
	res->nprod = o->workload == BENCH_CONSUME ? 0 : o->producers;
	res->ncons = o->workload == BENCH_PRODUCE ? 0 : o->consumers;
	res->prod = calloc((size_t)res->nprod + 1, sizeof(*res->prod));
	res->cons = calloc((size_t)res->ncons + 1, sizeof(*res->cons));
	if (res->prod == NULL || res->cons == NULL)
		bench_die(1, "out of memory");
	bench_series_alloc(&res->series);
	atomic_store(&env->produced, -1);
	bench_sigenv = env;
	signal(SIGINT, bench_on_sigint);

	/* Clients connect before the clock starts: e2e consumers are at the
	 * end before the first record is sent. */
	struct bench_worker *cons = bench_workers_open(env, res->ncons, false, res->cons);
	struct bench_worker *prod = bench_workers_open(env, res->nprod, true, res->prod);
	pthread_t threads[2 * BENCH_THREADS_MAX];
	env->start_ns = bench_now_ns();
	env->warmup_end_ns = env->start_ns + (int64_t)(o->warmup_s * 1e9);
	for (int i = 0; i < res->nprod; i++)
		res->prod[i].warmup_end_ns = env->warmup_end_ns;
	for (int i = 0; i < res->ncons; i++)
		res->cons[i].warmup_end_ns = env->warmup_end_ns;
	atomic_store(&env->consumed_last_ns, env->start_ns);
	bench_workers_start(cons, res->ncons, bench_consumer_main, threads);
	bench_workers_start(prod, res->nprod, bench_producer_main, threads + res->ncons);
	bench_watch(env, res, prod, cons);
	for (int i = 0; i < res->ncons + res->nprod; i++)
		pthread_join(threads[i], NULL);

	int rc = 0;
	res->complete = true;
	for (int i = 0; i < res->ncons; i++) {
		res->complete &= cons[i].rc == 0;
		rc |= cons[i].rc < 0;
		t->consumer_close(cons[i].handle);
	}
	for (int i = 0; i < res->nprod; i++) {
		rc |= prod[i].rc != 0;
		t->producer_close(prod[i].handle);
	}
	free(cons);
	free(prod);
	res->server_records = t->count(env);
	signal(SIGINT, SIG_DFL);
	return rc;
}

void bench_result_free(struct bench_result *res)
{
	struct bench_series *s = &res->series;
	free(s->t);
	free(s->p_records);
	free(s->p_bytes);
	free(s->c_records);
	free(s->c_bytes);
	free(res->prod);
	free(res->cons);
}

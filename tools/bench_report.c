/*
 * bench_report: the result, as text for a person or, with --json, as one
 * JSON object on the last line of stdout for scripts (the tests/bench scripts and
 * the comparison report read it; its keys are a stable interface: add
 * keys, do not rename them). Top level: what ran (target, workload,
 * settings), the headline numbers of the workload (produce: ack latency
 * and acknowledged throughput; consume: read throughput; e2e: end-to-end
 * latency and the consumers' throughput), client CPU, then one section per
 * side ("produce", "fetch"), the per-second "series" and the target's
 * "server" facts (version, durability).
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "bench.h"

#define RELAXED memory_order_relaxed

/* Quantiles of the latency curve: 0 to 1 - 1e-5, denser in the tail, as an
 * HDR percentile plot draws them (x = 1 / (1 - q) on a log axis). */
#define BENCH_CURVE_STEPS_PER_DECADE 4
#define BENCH_CURVE_DECADES 5

/* One side's totals, over its meters. */
struct bench_side {
	struct hist lat;
	int64_t records, bytes, total_records, failed, requests;
	int64_t last_ns;
	double seconds;
	const char *first_error;
};

static void bench_side_sum(const struct bench_env *env, const struct bench_meter *m, int n,
			   struct bench_side *s)
{
	memset(s, 0, sizeof(*s));
	s->requests = n > 0 ? 0 : -1;
	s->first_error = "";
	for (int i = 0; i < n; i++) {
		hist_merge(&s->lat, &m[i].lat);
		s->records += m[i].measured_records;
		s->bytes += m[i].measured_bytes;
		s->total_records += atomic_load_explicit(&m[i].records, RELAXED);
		s->failed += atomic_load_explicit(&m[i].failed, RELAXED);
		int64_t last = atomic_load_explicit(&m[i].last_ns, RELAXED);
		if (last > s->last_ns)
			s->last_ns = last;
		s->requests = m[i].requests < 0 || s->requests < 0 ? -1 : s->requests + m[i].requests;
		if (m[i].first_error[0] != '\0' && s->first_error[0] == '\0')
			s->first_error = m[i].first_error;
	}
	int64_t from = env->o->warmup_s > 0 ? env->warmup_end_ns : env->start_ns;
	s->seconds = s->last_ns > from ? (double)(s->last_ns - from) / 1e9 : 1e-9;
}

static double bench_mbps(const struct bench_side *s)
{
	return (double)s->bytes / 1e6 / s->seconds;
}

static double bench_rps(const struct bench_side *s)
{
	return (double)s->records / s->seconds;
}

static void bench_json_hist(struct bench_json *j, const char *key, const struct hist *h)
{
	bench_json_begin(j, key, '{');
	bench_json_int(j, "p50", (int64_t)hist_quantile(h, 0.5));
	bench_json_int(j, "p90", (int64_t)hist_quantile(h, 0.9));
	bench_json_int(j, "p99", (int64_t)hist_quantile(h, 0.99));
	bench_json_int(j, "p999", (int64_t)hist_quantile(h, 0.999));
	bench_json_int(j, "p9999", (int64_t)hist_quantile(h, 0.9999));
	bench_json_int(j, "max", (int64_t)hist_max(h));
	bench_json_num(j, "mean", hist_mean(h), 1);
	bench_json_int(j, "count", (int64_t)hist_count(h));
	bench_json_end(j, '}');
}

/* [[quantile, us], ...] for the percentile chart. */
static void bench_json_curve(struct bench_json *j, const char *key, const struct hist *h)
{
	bench_json_begin(j, key, '[');
	for (int i = 0; i <= BENCH_CURVE_STEPS_PER_DECADE * BENCH_CURVE_DECADES; i++) {
		double q = 1.0 - pow(10.0, -(double)i / BENCH_CURVE_STEPS_PER_DECADE);
		bench_json_begin(j, NULL, '[');
		bench_json_num(j, NULL, q, 6);
		bench_json_int(j, NULL, (int64_t)hist_quantile(h, q));
		bench_json_end(j, ']');
	}
	bench_json_begin(j, NULL, '[');
	bench_json_num(j, NULL, 1.0, 6);
	bench_json_int(j, NULL, (int64_t)hist_max(h));
	bench_json_end(j, ']');
	bench_json_end(j, ']');
}

static void bench_json_settings(struct bench_json *j, const struct bench_opts *o)
{
	bench_json_begin(j, "settings", '{');
	bench_json_str(j, "workload_word", o->workload_word);
	bench_json_str(j, "topic", o->topic);
	bench_json_int(j, "topics", o->topics);
	bench_json_int(j, "partitions", o->partitions);
	bench_json_int(j, "record_size", o->record_size);
	bench_json_str(j, "key_distribution", bench_keydist_name(o->keydist));
	bench_json_int(j, "keys", o->keydist == BENCH_KEYS_NONE ? 0 : o->keys);
	bench_json_int(j, "records", o->duration_s > 0 ? 0 : o->records);
	bench_json_int(j, "bytes", o->bytes);
	bench_json_num(j, "duration_s", o->duration_s, 3);
	bench_json_num(j, "warmup_s", o->warmup_s, 3);
	bench_json_num(j, "rate", o->rate, 1);
	bench_json_int(j, "pace_us", o->pace_us);
	bench_json_int(j, "producers", o->producers);
	bench_json_int(j, "consumers", o->consumers);
	bench_json_str(j, "acks", o->acks);
	bench_json_int(j, "batch_bytes", o->batch_bytes);
	bench_json_int(j, "linger_ms", o->linger_ms);
	bench_json_str(j, "compression", o->compression);
	bench_json_int(j, "inflight", o->inflight);
	bench_json_int(j, "pipeline", o->pipeline);
	bench_json_str(j, "redis_read", o->redis_read == BENCH_REDIS_GROUP ? "group" : "range");
	bench_json_int(j, "max_pending", o->max_pending);
	bench_json_int(j, "consume_batch", o->consume_batch);
	bench_json_begin(j, "properties", '[');
	for (int i = 0; i < o->props_count; i++)
		bench_json_str(j, NULL, o->props[i]);
	bench_json_end(j, ']');
	bench_json_end(j, '}');
}

static void bench_json_produce(struct bench_json *j, const struct bench_opts *o,
			       const struct bench_side *p)
{
	bench_json_begin(j, "produce", '{');
	bench_json_int(j, "records", p->records);
	bench_json_int(j, "acked_total", p->total_records);
	bench_json_int(j, "failed", p->failed);
	bench_json_int(j, "bytes", p->bytes);
	bench_json_num(j, "seconds", p->seconds, 3);
	bench_json_num(j, "mb_per_s", bench_mbps(p), 2);
	bench_json_num(j, "records_per_s", bench_rps(p), 0);
	bench_json_num(j, "rate", o->rate, 0);
	bench_json_int(j, "requests", p->requests);
	bench_json_hist(j, "latency_us", &p->lat);
	bench_json_curve(j, "latency_curve", &p->lat);
	bench_json_end(j, '}');
}

static void bench_json_fetch(struct bench_json *j, const struct bench_env *env,
			     const struct bench_result *res, const struct bench_side *c)
{
	bench_json_begin(j, "fetch", '{');
	bench_json_int(j, "records", c->total_records);
	bench_json_int(j, "measured_records", c->records);
	bench_json_int(j, "bytes", c->bytes);
	bench_json_int(j, "wanted", env->o->workload == BENCH_E2E ? atomic_load(&env->produced)
								  : env->wanted);
	bench_json_bool(j, "complete", res->complete);
	bench_json_int(j, "errors", c->failed);
	bench_json_num(j, "seconds", c->seconds, 3);
	bench_json_num(j, "mb_per_s", bench_mbps(c), 2);
	bench_json_num(j, "records_per_s", bench_rps(c), 0);
	bench_json_int(j, "requests", c->requests);
	if (env->o->workload == BENCH_E2E) {
		bench_json_hist(j, "e2e_latency_us", &c->lat);
		bench_json_curve(j, "latency_curve", &c->lat);
	}
	bench_json_end(j, '}');
}

/* Per-interval rates between consecutive samples. */
static void bench_json_rates(struct bench_json *j, const char *key, const struct bench_series *s,
			     const int64_t *v, double scale, int decimals)
{
	bench_json_begin(j, key, '[');
	for (int i = 1; i < s->n; i++) {
		double dt = s->t[i] - s->t[i - 1];
		bench_json_num(j, NULL, dt > 0 ? (double)(v[i] - v[i - 1]) / scale / dt : 0, decimals);
	}
	bench_json_end(j, ']');
}

static void bench_json_series(struct bench_json *j, const struct bench_result *res)
{
	const struct bench_series *s = &res->series;
	bench_json_begin(j, "series", '{');
	bench_json_num(j, "interval_s", 1.0, 1);
	bench_json_begin(j, "t", '[');
	for (int i = 1; i < s->n; i++)
		bench_json_num(j, NULL, s->t[i], 3);
	bench_json_end(j, ']');
	if (res->nprod > 0) {
		bench_json_rates(j, "produce_records_per_s", s, s->p_records, 1, 0);
		bench_json_rates(j, "produce_mb_per_s", s, s->p_bytes, 1e6, 2);
	}
	if (res->ncons > 0) {
		bench_json_rates(j, "consume_records_per_s", s, s->c_records, 1, 0);
		bench_json_rates(j, "consume_mb_per_s", s, s->c_bytes, 1e6, 2);
	}
	bench_json_end(j, '}');
}

/* The workload's headline: what --json's top-level keys report. */
static void bench_json_headline(struct bench_json *j, const struct bench_opts *o,
				const struct bench_side *p, const struct bench_side *c)
{
	const struct bench_side *tput = o->workload == BENCH_PRODUCE ? p : c;
	bench_json_int(j, "records", tput->records);
	bench_json_int(j, "bytes", tput->bytes);
	bench_json_num(j, "seconds", tput->seconds, 3);
	bench_json_num(j, "mb_per_s", bench_mbps(tput), 2);
	bench_json_num(j, "records_per_s", bench_rps(tput), 0);
	const struct bench_side *lat = o->workload == BENCH_PRODUCE ? p
				       : o->workload == BENCH_E2E   ? c : NULL;
	bench_json_str(j, "latency", o->workload == BENCH_PRODUCE ? "ack"
				     : o->workload == BENCH_E2E   ? "e2e" : "none");
	static struct hist empty;
	bench_json_hist(j, "latency_us", lat != NULL ? &lat->lat : &empty);
	bench_json_curve(j, "latency_curve", lat != NULL ? &lat->lat : &empty);
}

static void bench_report_json(const struct bench_env *env, const struct bench_result *res,
			      const struct bench_side *p, const struct bench_side *c)
{
	const struct bench_opts *o = env->o;
	struct bench_json j = { .f = stdout, .first = { true } };
	double user_s, sys_s, cpu_s = bench_cpu_s(&user_s, &sys_s);
	bench_json_begin(&j, NULL, '{');
	bench_json_str(&j, "tool", "sluice-bench");
	bench_json_str(&j, "target", o->target->name);
	bench_json_str(&j, "workload", bench_workload_name(o->workload));
	bench_json_str(&j, "bootstrap", o->bootstrap);
	bench_json_str(&j, "topic", o->topic);
	bench_json_int(&j, "topics", o->topics);
	bench_json_int(&j, "partitions", o->partitions);
	bench_json_int(&j, "brokers", env->brokers);
	bench_json_int(&j, "record_size", o->record_size);
	bench_json_str(&j, "acks", o->acks);
	bench_json_settings(&j, o);
	bench_json_headline(&j, o, p, c);
	bench_json_num(&j, "duration_s", (double)(res->end_ns - env->start_ns) / 1e9, 3);
	bench_json_num(&j, "warmup_s", o->warmup_s, 3);
	bench_json_num(&j, "client_cpu_s", cpu_s, 2);
	bench_json_num(&j, "client_user_s", user_s, 2);
	bench_json_num(&j, "client_sys_s", sys_s, 2);
	bench_json_bool(&j, "complete", res->complete);
	bench_json_int(&j, "server_records", res->server_records);
	if (res->nprod > 0)
		bench_json_produce(&j, o, p);
	if (res->ncons > 0)
		bench_json_fetch(&j, env, res, c);
	bench_json_series(&j, res);
	bench_json_begin(&j, "server", '{');
	o->target->describe((struct bench_env *)env, &j);
	bench_json_end(&j, '}');
	bench_json_end(&j, '}');
	fputc('\n', stdout);
}

static void bench_text_hist(const char *name, const struct hist *h)
{
	printf("%s us: p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64 "  p99.9 %" PRIu64
	       "  p99.99 %" PRIu64 "  max %" PRIu64 "  (%" PRIu64 " samples)\n", name,
	       hist_quantile(h, 0.5), hist_quantile(h, 0.9), hist_quantile(h, 0.99),
	       hist_quantile(h, 0.999), hist_quantile(h, 0.9999), hist_max(h), hist_count(h));
}

static void bench_report_text(const struct bench_env *env, const struct bench_result *res,
			      const struct bench_side *p, const struct bench_side *c)
{
	const struct bench_opts *o = env->o;
	double user_s, sys_s;
	printf("%s %s at %s: %d topic(s) of %d partition(s)", o->target->name,
	       bench_workload_name(o->workload), o->bootstrap, o->topics, o->partitions);
	if (env->brokers > 0)
		printf(", %d broker(s) in metadata", env->brokers);
	printf("\n");
	if (res->nprod > 0) {
		printf("produce: %" PRId64 " records (%d B) in %.2f s: %.1f MB/s, %.0f records/s, %"
		       PRId64 " failed, %" PRId64 " requests\n", p->records, o->record_size,
		       p->seconds, bench_mbps(p), bench_rps(p), p->failed, p->requests);
		bench_text_hist("ack latency", &p->lat);
	}
	if (res->ncons > 0) {
		printf("consume: %" PRId64 " records, %.1f MB in %.2f s: %.1f MB/s, %.0f records/s, %"
		       PRId64 " errors%s, %" PRId64 " requests\n", c->total_records,
		       (double)c->bytes / 1e6, c->seconds, bench_mbps(c), bench_rps(c), c->failed,
		       res->complete ? "" : " (incomplete)", c->requests);
		if (o->workload == BENCH_E2E)
			bench_text_hist("end-to-end latency", &c->lat);
	}
	if (res->server_records >= 0)
		printf("server holds %" PRId64 " records in the topic(s)\n", res->server_records);
	printf("client CPU: %.2f s\n", bench_cpu_s(&user_s, &sys_s));
}

void bench_report(const struct bench_env *env, const struct bench_result *res)
{
	static struct bench_side p, c; /* histograms: too big for the stack */
	bench_side_sum(env, res->prod, res->nprod, &p);
	bench_side_sum(env, res->cons, res->ncons, &c);
	if (env->o->json)
		bench_report_json(env, res, &p, &c);
	else
		bench_report_text(env, res, &p, &c);
	fflush(stdout);
	if (p.failed > 0)
		fprintf(stderr, "sluice-bench: %" PRId64 " records failed, first: %s\n", p.failed,
			p.first_error);
	if (c.failed > 0)
		fprintf(stderr, "sluice-bench: %" PRId64 " consume errors, first: %s\n", c.failed,
			c.first_error);
}

/*
 * sluice-bench: a load generator for Kafka-protocol brokers (librdkafka,
 * the standard C client, so what it measures is what an application sees),
 * with drivers for the peers a user would otherwise run on one machine —
 * Redis Streams and NATS JetStream — measured by the same code.
 *
 *   sluice-bench [--bootstrap HOST:PORT] [--json] produce|consume|e2e [options]
 *
 * This file runs the pieces in order: options (bench_opts.c), a TCP probe
 * of the server (so an unreachable one is an error in --timeout, not a
 * client library's retry loop), the target's setup, the workload
 * (bench_run.c), the report (bench_report.c), and the exit status.
 */
#include <stdlib.h>

#include "bench.h"

/* Exit status: 1 if a record failed, a worker failed, or the consumers read
 * less than they had to (a consume bounded by --duration may stop early). */
static int bench_verdict(const struct bench_env *env, const struct bench_result *res, int rc)
{
	const struct bench_opts *o = env->o;
	for (int i = 0; i < res->nprod; i++)
		if (atomic_load(&res->prod[i].failed) > 0)
			rc = 1;
	for (int i = 0; i < res->ncons; i++)
		if (atomic_load(&res->cons[i].failed) > 0)
			rc = 1;
	bool may_stop_early = o->workload == BENCH_CONSUME && o->duration_s > 0;
	if (res->ncons > 0 && !res->complete && !may_stop_early) {
		fprintf(stderr, "sluice-bench: consumers stopped before reading everything "
			"(nothing came for %d ms)\n", BENCH_IDLE_MS);
		rc = 1;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_opts_parse(argc, argv, &o);
	bench_probe(o.bootstrap, o.target->default_port, (int)(o.timeout_s * 1000));
	struct bench_env env = { .o = &o, .partitions = o.partitions,
				 .streams = o.topics * o.partitions, .wanted = -1 };
	env.topic_names = calloc((size_t)o.topics, sizeof(*env.topic_names));
	if (env.topic_names == NULL)
		bench_die(1, "out of memory");
	for (int i = 0; i < o.topics; i++)
		if (o.topics == 1)
			snprintf(env.topic_names[i], BENCH_NAME_MAX, "%s", o.topic);
		else
			snprintf(env.topic_names[i], BENCH_NAME_MAX, "%s-%d", o.topic, i);
	/* May change env.partitions (and so env.streams) to what exists. */
	o.target->setup(&env);
	struct bench_result res;
	int rc = bench_run(&env, &res);
	bench_report(&env, &res);
	rc = bench_verdict(&env, &res, rc);
	o.target->teardown(&env);
	bench_result_free(&res);
	free(env.topic_names);
	return rc;
}

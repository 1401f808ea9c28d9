/*
 * xcall_hop: what one cross-shard hop costs on this machine.
 *
 * Two threads pass a message back and forth over the same SPSC rings the
 * shards use (dataplane/spsc.h), and the replying thread waits the way a
 * shard does: either spinning on its ring (shard.poll.us > 0, a busy shard)
 * or asleep on an eventfd that the sender writes after announcing-and-
 * checking the "sleeping" flag (an idle shard, the default). Each pair of
 * hops is timed; the report gives one hop (half a round trip) in
 * microseconds, for the threads on two CPUs and on one.
 *
 * Usage: xcall_hop [rounds]   (default 20000)
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "spsc.h"

struct side {
	struct spsc in;
	void *slots[64];
	_Atomic bool sleeping;
	int efd;
};

struct run {
	struct side a, b; /* a: the timer, b: the echo */
	bool sleep_mode;
	int rounds;
	int cpu_a, cpu_b;
	double *hops_us;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* As xcall_post + xcall_ring_doorbells. */
static void send_to(struct side *to, void *msg)
{
	while (spsc_push_burst(&to->in, &msg, 1) != 1)
		;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&to->sleeping, memory_order_relaxed) &&
	    atomic_exchange_explicit(&to->sleeping, false, memory_order_relaxed)) {
		uint64_t one = 1;
		if (write(to->efd, &one, sizeof(one)) < 0)
			abort();
	}
}

/* As shard_sleep_begin + the wait + xcall_poll. */
static void *recv_from(struct side *me, bool sleep_mode)
{
	void *msg;
	for (;;) {
		if (spsc_pop_burst(&me->in, &msg, 1) == 1)
			return msg;
		if (!sleep_mode)
			continue;
		atomic_store_explicit(&me->sleeping, true, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (spsc_count(&me->in) > 0) {
			atomic_store_explicit(&me->sleeping, false, memory_order_relaxed);
			continue;
		}
		uint64_t v;
		if (read(me->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			abort();
		atomic_store_explicit(&me->sleeping, false, memory_order_relaxed);
	}
}

static void *echo_main(void *arg)
{
	struct run *r = arg;
	pin(r->cpu_b);
	for (int i = 0; i < r->rounds; i++)
		send_to(&r->a, recv_from(&r->b, r->sleep_mode));
	return NULL;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

static void measure(const char *label, int cpu_a, int cpu_b, bool sleep_mode, int rounds)
{
	struct run r;
	memset(&r, 0, sizeof(r));
	spsc_init(&r.a.in, r.a.slots, 64);
	spsc_init(&r.b.in, r.b.slots, 64);
	r.a.efd = eventfd(0, 0);
	r.b.efd = eventfd(0, 0);
	r.sleep_mode = sleep_mode;
	r.rounds = rounds;
	r.cpu_a = cpu_a;
	r.cpu_b = cpu_b;
	r.hops_us = calloc((size_t)rounds, sizeof(double));
	pthread_t t;
	pthread_create(&t, NULL, echo_main, &r);
	pin(cpu_a);
	int token = 0;
	for (int i = 0; i < rounds; i++) {
		int64_t t0 = now_ns();
		send_to(&r.b, &token);
		recv_from(&r.a, sleep_mode);
		r.hops_us[i] = (double)(now_ns() - t0) / 2000.0;
		if (sleep_mode) {
			/* Let the echo thread fall asleep again, as an idle shard
			 * would between requests. */
			struct timespec gap = { 0, 200000 };
			nanosleep(&gap, NULL);
		}
	}
	pthread_join(t, NULL);
	qsort(r.hops_us, (size_t)rounds, sizeof(double), cmp_double);
	printf("| %-34s | %8.2f | %8.2f | %8.2f |\n", label, r.hops_us[rounds / 2],
	       r.hops_us[rounds * 99 / 100], r.hops_us[rounds * 999 / 1000]);
	free(r.hops_us);
	close(r.a.efd);
	close(r.b.efd);
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20000;
	if (rounds < 1000)
		rounds = 1000;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	printf("| one hop (us), %d round trips       |      p50 |      p99 |    p99.9 |\n", rounds);
	printf("|------------------------------------|----------|----------|----------|\n");
	if (ncpu > 1) {
		measure("2 CPUs, receiver spinning", 0, 1, false, rounds);
		measure("2 CPUs, receiver asleep (eventfd)", 0, 1, true, rounds / 4);
	}
	measure("1 CPU, receiver asleep (eventfd)", 0, 0, true, rounds / 4);
	return 0;
}

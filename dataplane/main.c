/*
 * sluiced: the Sluice broker. Parses flags and settings, opens the data
 * directory and the metadata, starts one pinned thread per shard and runs
 * until SIGINT or SIGTERM, then drains in-flight writes and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "group.h"
#include "metadata.h"
#include "node.h"
#include "placement.h"
#include "say.h"
#include "shard.h"
#include "storage/hugemem.h"
#include "storage/slog.h"

#define SLUICE_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluiced [options]\n"
		"A Kafka-compatible streaming log broker.\n\n"
		"Options:\n"
		"  --listen HOST:PORT     listen address (listeners), default 127.0.0.1:9092\n"
		"  --advertise HOST:PORT  address given to clients (advertised.listeners)\n"
		"  --data-dir DIR         data directory (log.dirs), default ./data\n"
		"  --shards N             shard threads (num.shards), default one per CPU\n"
		"  --cpus LIST            CPUs to pin shards to, e.g. 0-3 or 0,2 (shard.cpus)\n"
		"  --describe-placement   print which shard owns each partition, then exit\n"
		"  --node-id N            broker id (node.id)\n"
		"  --config FILE          Kafka-style key=value properties file\n"
		"  --set KEY=VALUE        any single setting (repeatable)\n"
		"  --version              print the version\n"
		"  --help                 this text and every setting\n\n");
	config_print_help(out);
}

static const struct option long_opts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "advertise", required_argument, NULL, 'a' },
	{ "data-dir", required_argument, NULL, 'd' },
	{ "shards", required_argument, NULL, 's' },
	{ "cpus", required_argument, NULL, 'C' },
	{ "describe-placement", no_argument, NULL, 'P' },
	{ "node-id", required_argument, NULL, 'n' },
	{ "config", required_argument, NULL, 'c' },
	{ "set", required_argument, NULL, 'S' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int apply_flag(struct broker_config *cfg, int opt, char *arg, char *err, size_t n)
{
	switch (opt) {
	case 'l':
		return config_set(cfg, "listeners", arg, err, n);
	case 'a':
		return config_set(cfg, "advertised.listeners", arg, err, n);
	case 'd':
		return config_set(cfg, "log.dirs", arg, err, n);
	case 's':
		return config_set(cfg, "num.shards", arg, err, n);
	case 'C':
		return config_set(cfg, "shard.cpus", arg, err, n);
	case 'n':
		return config_set(cfg, "node.id", arg, err, n);
	case 'S': {
		char *eq = strchr(arg, '=');
		if (eq == NULL) {
			snprintf(err, n, "--set expects KEY=VALUE, got '%s'", arg);
			return -1;
		}
		*eq = '\0';
		int rc = config_set(cfg, arg, eq + 1, err, n);
		*eq = '=';
		return rc;
	}
	}
	return 0;
}

static bool describe_placement;

/* Defaults, then --config, then the other flags in order. Exits on error. */
static void parse_args(int argc, char **argv, struct broker_config *cfg)
{
	char err[512];
	config_defaults(cfg);
	int opt;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		} else if (opt == 'V') {
			printf("sluiced %s\n", SLUICE_VERSION);
			exit(0);
		} else if (opt == '?') {
			fprintf(stderr, "sluiced: unknown or incomplete option '%s' (see --help)\n",
				argv[optind - 1]);
			exit(2);
		} else if (opt == 'P') {
			describe_placement = true;
		} else if (opt == 'c' && config_load_file(cfg, optarg, err, sizeof(err)) != 0) {
			fprintf(stderr, "sluiced: %s\n", err);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluiced: unexpected argument '%s' (see --help)\n", argv[optind]);
		exit(2);
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (apply_flag(cfg, opt, optarg, err, sizeof(err)) != 0) {
			fprintf(stderr, "sluiced: %s\n", err);
			exit(2);
		}
	}
	if (config_validate(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "sluiced: %s\n", err);
		exit(2);
	}
}

/* Create the data directory if needed and lock it against a second broker. */
static int data_dir_open(const char *dir)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "sluiced: cannot create data directory %s: %s\n", dir,
			strerror(errno));
		return -1;
	}
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "sluiced: data directory %s is not usable: %s\n", dir,
			strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		fprintf(stderr, "sluiced: data directory %s is in use by another sluiced\n", dir);
		close(fd);
		return -1;
	}
	return fd; /* held for the life of the process */
}

/* Every connection, segment file and index needs a descriptor: take the
 * hard limit, and say so if max.connections cannot fit under it. */
static void fd_limit_raise(const struct broker_config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)cfg->max_connections + 256 > rl.rlim_cur)
		say_warn("max.connections=%d does not fit the open-file limit %llu (minus files "
			 "for logs): raise it (ulimit -n) or lower max.connections",
			 cfg->max_connections, (unsigned long long)rl.rlim_cur);
}

static enum say_level level_of(const char *s)
{
	if (strcmp(s, "debug") == 0)
		return SAY_DEBUG;
	if (strcmp(s, "warn") == 0)
		return SAY_WARN;
	if (strcmp(s, "error") == 0)
		return SAY_ERROR;
	return SAY_INFO;
}

/* "0-3,6" into cpus[]; the count, or -1 with a reason. */
static int cpus_parse(const char *list, int *cpus, int max, char *err, size_t n)
{
	const char *s = list;
	int count = 0;
	while (*s != '\0') {
		char *end;
		long lo = strtol(s, &end, 10), hi = lo;
		if (end == s || lo < 0 || lo >= CPU_SETSIZE)
			goto bad;
		s = end;
		if (*s == '-') {
			hi = strtol(s + 1, &end, 10);
			if (end == s + 1 || hi < lo || hi >= CPU_SETSIZE)
				goto bad;
			s = end;
		}
		for (long c = lo; c <= hi; c++) {
			if (count == max) {
				snprintf(err, n, "shard.cpus: more than %d CPUs", max);
				return -1;
			}
			cpus[count++] = (int)c;
		}
		if (*s == ',')
			s++;
		else if (*s != '\0')
			goto bad;
	}
	if (count > 0)
		return count;
bad:
	snprintf(err, n, "shard.cpus: '%s' is not a CPU list like 0-3 or 0,2", list);
	return -1;
}

/* Shard count and each shard's CPU: --cpus, else the CPUs this process may
 * run on (taskset, cgroup cpusets), in order; --shards, else one per CPU. */
static int node_cpus(struct node *n, const struct broker_config *cfg)
{
	int cpus[SHARDS_MAX], count = 0;
	char err[256];
	if (cfg->cpus[0] != '\0') {
		count = cpus_parse(cfg->cpus, cpus, SHARDS_MAX, err, sizeof(err));
		if (count < 0) {
			fprintf(stderr, "sluiced: %s\n", err);
			return -1;
		}
	} else {
		cpu_set_t set;
		CPU_ZERO(&set);
		if (sched_getaffinity(0, sizeof(set), &set) == 0)
			for (int c = 0; c < CPU_SETSIZE && count < SHARDS_MAX; c++)
				if (CPU_ISSET(c, &set))
					cpus[count++] = c;
		if (count == 0)
			cpus[count++] = 0;
	}
	n->n_shards = cfg->shards > 0 ? cfg->shards : count;
	for (int i = 0; i < n->n_shards; i++)
		n->cpus[i] = cpus[i % count];
	if (n->n_shards > count)
		say_warn("%d shards on %d CPUs: some CPUs run two shards", n->n_shards, count);
	return 0;
}

static int node_rings_init(struct node *n)
{
	size_t pairs = (size_t)n->n_shards * (size_t)n->n_shards;
	n->rings = aligned_alloc(SPSC_CACHE_LINE, pairs * sizeof(struct spsc));
	n->ring_slots = calloc(pairs * XCALL_RING_SLOTS, sizeof(void *));
	if (n->rings == NULL || n->ring_slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < pairs; i++)
		spsc_init(&n->rings[i], n->ring_slots + i * XCALL_RING_SLOTS, XCALL_RING_SLOTS);
	return 0;
}

/* The placement of every partition, for operators (and the tests). */
static int print_placement(const struct broker_config *cfg)
{
	struct node n = { 0 };
	if (node_cpus(&n, cfg) != 0)
		return 2;
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/__cluster_metadata/metadata", cfg->data_dir);
	printf("shards %d\n", n.n_shards);
	if (access(path, F_OK) != 0)
		return 0; /* no metadata yet: no topics */
	int err = 0;
	struct metadata *md = metadata_open(cfg->data_dir, cfg, &err);
	if (md == NULL) {
		fprintf(stderr, "sluiced: cannot read metadata in %s: %s\n", cfg->data_dir,
			strerror(-err));
		return 1;
	}
	for (int i = 0; i < metadata_topic_count(md); i++) {
		const struct topic *t = metadata_topic_at(md, i);
		for (int32_t p = 0; p < t->partitions; p++) {
			int32_t s = placement_shard(kstr_from(t->name), p, n.n_shards);
			int32_t leader = config_per_shard_endpoints(cfg)
						 ? node_shard_id(cfg->node_id, s) : cfg->node_id;
			printf("%s %d shard %d leader %d\n", t->name, p, s, leader);
		}
	}
	metadata_close(md);
	return 0;
}

static void say_storage(const char *line)
{
	say_info("%s", line);
}

struct shard_thread {
	struct node *node;
	int id;
	pthread_t thread;
	int rc;
	pthread_barrier_t *ready, *go;
};

static void *shard_main(void *arg)
{
	struct shard_thread *st = arg;
	struct node *n = st->node;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(n->cpus[st->id], &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		say_warn("shard %d: cannot pin to CPU %d: running unpinned", st->id, n->cpus[st->id]);
	char name[16];
	snprintf(name, sizeof(name), "shard-%d", st->id);
	pthread_setname_np(pthread_self(), name);

	/* Allocated by its own (pinned) thread: its memory is local to it. */
	struct shard *sh = aligned_alloc(64, (sizeof(struct shard) + 63) / 64 * 64);
	if (sh != NULL) {
		memset(sh, 0, sizeof(*sh));
		n->shards[st->id] = sh;
		st->rc = shard_init(sh, st->id, n);
	} else {
		st->rc = -ENOMEM;
	}
	pthread_barrier_wait(st->ready);
	pthread_barrier_wait(st->go); /* main checked every shard's start-up */
	if (st->rc == 0 && !atomic_load(&n->stop))
		st->rc = shard_run(sh);
	return NULL;
}

int main(int argc, char **argv)
{
	static struct broker_config cfg;
	parse_args(argc, argv, &cfg);
	say_min_level = level_of(cfg.log_level);
	if (describe_placement)
		return print_placement(&cfg);

	/* Signals are read by shard 0 through a signalfd: block them in
	 * every thread first. Writes to a closed socket return EPIPE. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	slog_set_logger(say_storage);
	static struct node node;
	node.cfg = &cfg;
	if (node_cpus(&node, &cfg) != 0)
		return 2;
	fd_limit_raise(&cfg);
	if (data_dir_open(cfg.data_dir) < 0)
		return 1;
	/* Topic deletions a crash interrupted are finished now. */
	int purged = plog_purge_deleted(cfg.data_dir);
	if (purged > 0)
		say_info("removed %d partition directories left by unfinished topic deletions",
			 purged);
	int err = 0;
	node.md = metadata_open(cfg.data_dir, &cfg, &err);
	if (node.md == NULL) {
		fprintf(stderr, "sluiced: cannot open metadata in %s: %s\n", cfg.data_dir,
			strerror(-err));
		return 1;
	}
	err = group_offsets_topic_ensure(node.md, &cfg);
	if (err != 0) {
		fprintf(stderr, "sluiced: cannot create %s: %s\n", "__consumer_offsets",
			strerror(-err));
		return 1;
	}
	if (node_rings_init(&node) != 0) {
		fprintf(stderr, "sluiced: out of memory for %d shards\n", node.n_shards);
		return 1;
	}

	pthread_barrier_t ready, go;
	pthread_barrier_init(&ready, NULL, (unsigned)node.n_shards + 1);
	pthread_barrier_init(&go, NULL, (unsigned)node.n_shards + 1);
	static struct shard_thread threads[SHARDS_MAX];
	for (int i = 0; i < node.n_shards; i++) {
		threads[i] = (struct shard_thread){ .node = &node, .id = i, .ready = &ready, .go = &go };
		if (pthread_create(&threads[i].thread, NULL, shard_main, &threads[i]) != 0) {
			fprintf(stderr, "sluiced: cannot start shard thread %d\n", i);
			return 1; /* not reached in practice; the process exits anyway */
		}
	}
	pthread_barrier_wait(&ready);
	int failed = -1;
	for (int i = 0; i < node.n_shards && failed < 0; i++)
		if (threads[i].rc != 0)
			failed = i;
	if (failed >= 0)
		atomic_store(&node.stop, true);
	else
		say_info("sluiced %s node %d listening on %s:%d (advertised %s:%d), data in %s, "
			 "flush=%s, cluster %s, %d topics, %d shards on CPUs %s%s",
			 SLUICE_VERSION, cfg.node_id, cfg.listen_host, cfg.listen_port,
			 config_advertised_host(&cfg), config_advertised_port(&cfg), cfg.data_dir,
			 cfg.flush == FLUSH_ALWAYS ? "always"
			 : cfg.flush == FLUSH_INTERVAL ? "interval" : "none",
			 metadata_cluster_id(node.md), metadata_topic_count(node.md), node.n_shards,
			 cfg.cpus[0] ? cfg.cpus : "(all allowed)",
			 config_per_shard_endpoints(&cfg) ? ", per-shard endpoints (shard i on port+i)"
							   : "");
	pthread_barrier_wait(&go);
	int rc = failed >= 0 ? 1 : 0;
	for (int i = 0; i < node.n_shards; i++) {
		pthread_join(threads[i].thread, NULL);
		if (threads[i].rc != 0)
			rc = 1;
	}
	for (int i = 0; i < node.n_shards; i++)
		if (node.shards[i] != NULL) {
			shard_destroy(node.shards[i]);
			free(node.shards[i]);
		}
	metadata_close(node.md);
	free(node.rings);
	free(node.ring_slots);
	if (failed >= 0) {
		/* Last, so it is the line a user (or a script) sees. */
		fprintf(stderr, "sluiced: cannot start shard %d: %s\n", failed,
			strerror(-threads[failed].rc));
		return 1;
	}
	say_info("stopped");
	return rc;
}

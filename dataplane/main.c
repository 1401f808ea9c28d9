/*
 * sluiced: the Sluice broker. Parses flags and settings, opens the data
 * directory and the metadata, starts the shard and runs until SIGINT or
 * SIGTERM, then drains in-flight writes and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "metadata.h"
#include "say.h"
#include "shard.h"

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
		"  --shards N             shard threads (num.shards)\n"
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

int main(int argc, char **argv)
{
	static struct broker_config cfg;
	parse_args(argc, argv, &cfg);
	say_min_level = level_of(cfg.log_level);

	/* Signals are read by the shard through a signalfd: block them in
	 * every thread first. Writes to a closed socket return EPIPE. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	fd_limit_raise(&cfg);
	if (data_dir_open(cfg.data_dir) < 0)
		return 1;
	/* Topic deletions a crash interrupted are finished now. */
	int purged = plog_purge_deleted(cfg.data_dir);
	if (purged > 0)
		say_info("removed %d partition directories left by unfinished topic deletions",
			 purged);
	int err = 0;
	struct metadata *md = metadata_open(cfg.data_dir, &cfg, &err);
	if (md == NULL) {
		fprintf(stderr, "sluiced: cannot open metadata in %s: %s\n", cfg.data_dir,
			strerror(-err));
		return 1;
	}
	static struct shard shard0;
	err = shard_init(&shard0, 0, &cfg, md);
	if (err != 0) {
		fprintf(stderr, "sluiced: cannot start: %s\n", strerror(-err));
		return 1;
	}
	say_info("sluiced %s node %d listening on %s:%d (advertised %s:%d), data in %s, "
		 "flush=%s, cluster %s, %d topics", SLUICE_VERSION, cfg.node_id, cfg.listen_host,
		 cfg.listen_port, config_advertised_host(&cfg), config_advertised_port(&cfg),
		 cfg.data_dir,
		 cfg.flush == FLUSH_ALWAYS ? "always" : cfg.flush == FLUSH_INTERVAL ? "interval" : "none",
		 metadata_cluster_id(md), metadata_topic_count(md));
	int rc = shard_run(&shard0);
	shard_destroy(&shard0);
	metadata_close(md);
	say_info("stopped");
	return rc == 0 ? 0 : 1;
}

/*
 * sluicectl: manage a Sluice (or any Kafka-protocol) cluster from the
 * command line, speaking the Kafka protocol to its brokers the way Kafka's
 * own kafka-*.sh tools do.
 *
 *   sluicectl [--bootstrap HOST:PORT] [--timeout-ms N] [--json] group ...
 *
 * See ctl.h for the files and the exit status.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int ctl_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sluicectl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return CTL_EXIT_FAILED;
}

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sluicectl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs(" (see sluicectl --help)\n", stderr);
	va_end(ap);
	return CTL_EXIT_USAGE;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluicectl [options] COMMAND ...\n\n"
		"Options (before the command):\n"
		"  --bootstrap HOST:PORT  a broker of the cluster (default 127.0.0.1:9092)\n"
		"  --timeout-ms N         how long one request may take (default %d)\n"
		"  --json                 print one JSON object instead of tables\n"
		"  --help                 this text\n\n"
		"Commands:\n",
		KC_TIMEOUT_MS_DEFAULT);
	ctl_group_usage(out);
	fprintf(out, "\nExit status: 0 done, 1 the cluster refused or failed, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	struct ctl ctl = { .bootstrap = "127.0.0.1:9092", .timeout_ms = KC_TIMEOUT_MS_DEFAULT };
	static const struct option opts[] = {
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int ch;
	/* "+": stop at the command, whose own options follow it. */
	while ((ch = getopt_long(argc, argv, "+b:t:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			ctl.bootstrap = optarg;
			break;
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end != '\0' || v <= 0 || v > 3600 * 1000)
				return ctl_usage_error("--timeout-ms: '%s' is not 1..3600000", optarg);
			ctl.timeout_ms = (int)v;
			break;
		}
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		default:
			return ctl_usage_error("unknown option");
		}
	}
	if (optind >= argc)
		return ctl_usage_error("no command");
	const char *cmd = argv[optind];
	if (strcmp(cmd, "group") == 0 || strcmp(cmd, "groups") == 0)
		return ctl_group(&ctl, argc - optind - 1, argv + optind + 1);
	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return CTL_EXIT_OK;
	}
	return ctl_usage_error("unknown command '%s'", cmd);
}

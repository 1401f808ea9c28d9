/*
 * sluice-dump: print and verify a partition's files on disk, as Kafka's
 * kafka-dump-log does for Kafka's (the formats are the same): .log
 * segments batch by batch (and record by record with --records), .index
 * and .timeindex checked against their .log, and producer .snapshot
 * files. Read-only; safe on a stopped broker's data directory (on a
 * running one the active segment may change while it is read).
 *
 * Exit status: 0 when every file verifies, 1 when one does not (each
 * problem named on stderr with its file and byte position), 2 on a usage
 * error or a file that cannot be read or is of an unknown kind.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: sluice-dump [options] FILE...\n\n"
		"Prints and verifies a Sluice (or Kafka) partition's files:\n"
		"  <base>.log        every record batch: position, offsets, count, size, magic,\n"
		"                    leader epoch, attributes, producer id/epoch/sequence,\n"
		"                    timestamps, and whether its CRC-32C is valid\n"
		"  <base>.index      offset index entries, checked against <base>.log: each\n"
		"                    must be the start of a batch and hold its last offset\n"
		"  <base>.timeindex  time index entries, checked against <base>.log: each\n"
		"                    timestamp is a batch's maximum, first reached at the\n"
		"                    entry's offset\n"
		"  <offset>.snapshot idempotent producers' state\n\n"
		"Options:\n"
		"  -r, --records          also print every record: offset, timestamp, key, value,\n"
		"                         headers (compressed batches are decompressed: gzip,\n"
		"                         snappy, lz4, zstd)\n"
		"      --deep-iteration, --print-data-log\n"
		"                         the same as --records (kafka-dump-log's names)\n"
		"  -q, --quiet            print no batches or entries: problems and summaries only\n"
		"      --max-bytes N      print at most N bytes of each key, value and header\n"
		"                         (default: all)\n"
		"  -h, --help             this text\n\n"
		"Keys and values are quoted: printable ASCII as is, other bytes as \\xNN.\n"
		"Zero bytes after the last batch of a .log (or entry of an index) are reported\n"
		"as \"N bytes of zero fill\", which is not corruption. Anything else is: a CRC\n"
		"mismatch, a header that does not parse, a length past the end of the file, an\n"
		"index entry that points nowhere. Each problem is printed on stderr as\n"
		"\"sluice-dump: FILE: position N: what\".\n\n"
		"Exit status: 0 every file verifies, 1 a file does not, 2 usage error or a\n"
		"file that cannot be read or is not one of the kinds above.\n");
}

static const struct option long_opts[] = {
	{ "records", no_argument, NULL, 'r' },
	{ "deep-iteration", no_argument, NULL, 'r' },
	{ "print-data-log", no_argument, NULL, 'r' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "max-bytes", required_argument, NULL, 'm' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

typedef int (*dump_fn)(const char *path, const struct dump_opts *o);

/* The dumper for a file name, by its extension; NULL if none. */
static dump_fn dump_fn_of(const char *path)
{
	static const struct {
		const char *ext;
		dump_fn fn;
	} kinds[] = {
		{ ".log", dump_log },
		{ ".index", dump_index },
		{ ".timeindex", dump_timeindex },
		{ ".snapshot", dump_snapshot },
	};
	size_t len = strlen(path);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t el = strlen(kinds[i].ext);
		if (len > el && strcmp(path + len - el, kinds[i].ext) == 0)
			return kinds[i].fn;
	}
	return NULL;
}

static int parse_opts(int argc, char **argv, struct dump_opts *o)
{
	int c;
	while ((c = getopt_long(argc, argv, "rqh", long_opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'r':
			o->records = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'm':
			o->max_bytes = strtoll(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || o->max_bytes < 1) {
				fprintf(stderr, "sluice-dump: --max-bytes: '%s' is not a positive "
					"number\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "sluice-dump: see --help\n");
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "sluice-dump: no FILE given (see --help)\n");
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct dump_opts o = { 0 };
	int status = parse_opts(argc, argv, &o);
	if (status != 0)
		return status;
	/* Fully buffered even on a terminal: a large segment prints millions
	 * of lines. Problems flush it before they go to stderr. */
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
	for (int i = optind; i < argc; i++) {
		const char *path = argv[i];
		dump_fn fn = dump_fn_of(path);
		if (i > optind)
			printf("\n");
		if (fn == NULL) {
			fflush(stdout);
			fprintf(stderr, "sluice-dump: %s: unknown kind of file (expected a .log, "
				".index, .timeindex or .snapshot file)\n", path);
			status = 2;
			continue;
		}
		int rc = fn(path, &o);
		if (rc < 0)
			status = 2;
		else if (rc > 0 && status == 0)
			status = 1;
	}
	if (fflush(stdout) != 0) {
		perror("sluice-dump: stdout");
		return 2;
	}
	return status;
}

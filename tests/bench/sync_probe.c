/*
 * sync_probe: the latency of a write and the fdatasync after it, timed as
 * one operation, the way fio's sync job runs them but timed together.
 *
 * fio's job in tests/bench/storage.sh (io_uring, O_DIRECT, 16 KiB writes,
 * fdatasync=1, one at a time) reports the write's latency and the
 * fdatasync's latency as two separate distributions; what a durable
 * append costs is their sum per operation, whose percentiles are not the
 * sums of theirs. This runs the same loop (io_uring, an O_DIRECT write of
 * BLOCK bytes, wait, an fdatasync, wait, sequentially through a
 * pre-allocated file of FILE_BYTES that it wraps around, as fio does when
 * time-based) and times each pair from the write's submission to the
 * fdatasync's completion.
 *
 * Usage: sync_probe PATH BLOCK FILE_BYTES SECONDS
 * Creates PATH (removed at exit). Prints one JSON line: ops, and
 * pair_us, write_us and sync_us, each {p50,p90,p99,p99_9,max}.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "probe_stats.h"

#define PROBE_ALIGN 4096

/* Submit what is queued, wait for its one completion; its result. */
static int run_one(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait(ring, 1);
	if (rc < 0)
		return rc;
	rc = io_uring_wait_cqe(ring, &cqe);
	if (rc < 0)
		return rc;
	rc = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: sync_probe PATH BLOCK FILE_BYTES SECONDS\n");
		return 2;
	}
	const char *path = argv[1];
	long long block = atoll(argv[2]), file_bytes = atoll(argv[3]);
	double secs = atof(argv[4]);
	if (block <= 0 || block % PROBE_ALIGN != 0 || file_bytes < block || secs <= 0) {
		fprintf(stderr, "sync_probe: BLOCK must be a positive multiple of %d, "
				"FILE_BYTES at least BLOCK, SECONDS positive\n", PROBE_ALIGN);
		return 2;
	}
	file_bytes -= file_bytes % block;

	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0) {
		fprintf(stderr, "sync_probe: %s: %s\n", path, strerror(errno));
		return 1;
	}
	unlink(path); /* gone when we exit, however we exit */
	if (fallocate(fd, 0, 0, file_bytes) != 0) {
		fprintf(stderr, "sync_probe: fallocate: %s\n", strerror(errno));
		return 1;
	}
	void *buf;
	if (posix_memalign(&buf, PROBE_ALIGN, (size_t)block) != 0)
		return 2;
	memset(buf, 0xa5, (size_t)block);

	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);
	if (rc < 0) {
		fprintf(stderr, "sync_probe: io_uring_queue_init: %s\n", strerror(-rc));
		return 1;
	}
	/* At most one pair per 10 us: room for every operation of the run. */
	size_t cap = (size_t)(secs * 1e5) + 1;
	int64_t *pair = malloc(cap * sizeof(*pair)), *wr = malloc(cap * sizeof(*wr)),
		*sy = malloc(cap * sizeof(*sy));
	if (pair == NULL || wr == NULL || sy == NULL)
		return 2;

	int64_t end = now_ns() + (int64_t)(secs * 1e9), pos = 0;
	size_t n = 0;
	while (n < cap) {
		int64_t t0 = now_ns();
		if (t0 >= end)
			break;
		io_uring_prep_write(io_uring_get_sqe(&ring), fd, buf, (unsigned)block, (uint64_t)pos);
		rc = run_one(&ring);
		if (rc != block) {
			fprintf(stderr, "sync_probe: write: %s\n", rc < 0 ? strerror(-rc) : "short");
			return 1;
		}
		int64_t t1 = now_ns();
		io_uring_prep_fsync(io_uring_get_sqe(&ring), fd, IORING_FSYNC_DATASYNC);
		rc = run_one(&ring);
		if (rc != 0) {
			fprintf(stderr, "sync_probe: fdatasync: %s\n", strerror(-rc));
			return 1;
		}
		int64_t t2 = now_ns();
		pair[n] = t2 - t0;
		wr[n] = t1 - t0;
		sy[n] = t2 - t1;
		n++;
		pos += block;
		if (pos >= file_bytes)
			pos = 0;
	}
	printf("{\"ops\": %zu, ", n);
	print_pcts("pair_us", pair, n);
	printf(", ");
	print_pcts("write_us", wr, n);
	printf(", ");
	print_pcts("sync_us", sy, n);
	printf("}\n");
	io_uring_queue_exit(&ring);
	close(fd);
	free(pair);
	free(wr);
	free(sy);
	free(buf);
	return 0;
}

/*
 * index_fill: fill partition logs with many small segments, fast, for
 * tests/bench/index_memory.sh. A client would need a produce request per
 * batch to get one record per batch (an index entry each at interval 0);
 * this appends such batches straight through the storage library, into
 * the directories of a topic the broker already created, and closes the
 * logs cleanly, as the broker would have left them.
 *
 *   index_fill DATA_DIR TOPIC PARTITIONS SEGMENTS SEGMENT_BYTES INTERVAL
 *
 * Appends to each partition until it has rolled SEGMENTS / PARTITIONS
 * times: batches of one 100-byte record, timestamps rising by 1 ms every
 * 10 batches (a time index entry per 10 batches), from an hour ago.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/log.h"
#include "test_util.h"

#define FILL_VALUE_BYTES 100
#define FILL_DRIVE_EVERY 256 /* appends between writes */

static int fill_partition(const char *dir, int64_t rolls, const struct log_config *cfg,
			  struct io_uring *ring, int64_t ts0)
{
	int err;
	struct plog *l = plog_open(dir, cfg, &err);
	if (l == NULL) {
		fprintf(stderr, "index_fill: %s: %s\n", dir, strerror(-err));
		return 1;
	}
	uint8_t buf[512];
	for (int64_t i = 0; (int64_t)plog_stats(l)->rolls < rolls; i++) {
		struct tu_batch_spec spec = tu_spec(1, ts0 + i / 10, FILL_VALUE_BYTES);
		size_t len = tu_batch(buf, sizeof(buf), &spec);
		struct plog_append_result res;
		if (tu_append(l, buf, len, &res) != 0) {
			fprintf(stderr, "index_fill: %s: append failed\n", dir);
			plog_close(l);
			return 1;
		}
		if (i % FILL_DRIVE_EVERY == FILL_DRIVE_EVERY - 1)
			tu_drive(ring, l, 0);
	}
	tu_drive(ring, l, 0);
	plog_close(l);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: index_fill DATA_DIR TOPIC PARTITIONS SEGMENTS "
				"SEGMENT_BYTES INTERVAL\n");
		return 2;
	}
	int parts = atoi(argv[3]);
	int64_t segments = atoll(argv[4]);
	struct log_config cfg = tu_config(atoll(argv[5]), atoi(argv[6]), FLUSH_NONE);
	struct io_uring ring;
	if (parts < 1 || segments < parts || io_uring_queue_init(TU_RING_ENTRIES, &ring, 0) != 0)
		return 2;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t ts0 = (int64_t)now.tv_sec * 1000 - 3600 * 1000;
	int rc = 0;
	for (int p = 0; p < parts && rc == 0; p++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s-%d", argv[1], argv[2], p);
		rc = fill_partition(dir, (segments + parts - 1) / parts, &cfg, &ring, ts0);
	}
	io_uring_queue_exit(&ring);
	return rc;
}

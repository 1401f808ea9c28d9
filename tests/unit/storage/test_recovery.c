/*
 * Crash recovery of the active segment: torn tails (garbage, half a batch,
 * zeros, a corrupt batch) are cut at the last valid batch, indexes are
 * rebuilt, only the tail is read; sealed segments with broken indexes are
 * rebuilt from headers; stale producer snapshots are dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/log.h"
#include "test_util.h"

struct fixture {
	char *dir;
	struct io_uring ring;
	char log_path[4096], index_path[4096], timeindex_path[4096];
	uint8_t *index_copy, *timeindex_copy;
	int64_t index_len, timeindex_len, log_len;
	int64_t end_offset;
	size_t batch_len;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	if (io_uring_queue_init(64, &f->ring, 0) != 0)
		return -1;
	tu_seg_path(f->log_path, sizeof(f->log_path), f->dir, 0, ".log");
	tu_seg_path(f->index_path, sizeof(f->index_path), f->dir, 0, ".index");
	tu_seg_path(f->timeindex_path, sizeof(f->timeindex_path), f->dir, 0, ".timeindex");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	io_uring_queue_exit(&f->ring);
	tu_rm_rf(f->dir);
	free(f->dir);
	free(f->index_copy);
	free(f->timeindex_copy);
	free(f);
	return 0;
}

static struct plog *open_log(struct fixture *f, const struct log_config *cfg)
{
	int err = -1;
	struct plog *l = plog_open(f->dir, cfg, &err);
	assert_non_null(l);
	assert_int_equal(err, 0);
	return l;
}

static uint8_t *file_copy(const char *path, int64_t *len)
{
	*len = tu_file_size(path);
	uint8_t *p = malloc((size_t)*len + 1);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, p, (size_t)*len), *len);
	close(fd);
	return p;
}

static void file_truncate(const char *path, int64_t len)
{
	assert_int_equal(truncate(path, len), 0);
}

static const struct log_config recovery_cfg = {
	.segment_bytes = 1 << 20, .index_interval_bytes = 256, .flush = FLUSH_ALWAYS,
};

/* 60 batches of 2 records (~100 bytes) with rising timestamps, closed
 * cleanly; remember the files. */
static void build_log(struct fixture *f)
{
	struct plog *l = open_log(f, &recovery_cfg);
	struct plog_append_result res;
	for (int i = 0; i < 60; i++) {
		struct tu_batch_spec spec = tu_spec(2, 10000 + i * 10, 20);
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		if (i % 7 == 0)
			tu_drive(&f->ring, l, 0);
	}
	tu_drive(&f->ring, l, 0);
	f->end_offset = plog_end_offset(l);
	plog_close(l);
	f->index_copy = file_copy(f->index_path, &f->index_len);
	f->timeindex_copy = file_copy(f->timeindex_path, &f->timeindex_len);
	f->log_len = tu_file_size(f->log_path);
	f->batch_len = (size_t)(f->log_len / 60);
	assert_true(f->index_len >= 8 * 10);
	assert_true(f->timeindex_len >= 12 * 10);
}

/* Make the closed log look like one that crashed: no clean-close marker
 * (the name is the storage library's; see log_int.h). */
static void forget_clean_close(struct fixture *f)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/.sluice_cleanshutdown", f->dir);
	assert_int_equal(unlink(path), 0);
}

/* Reopen and check: the log is exactly the original, indexes included. */
static struct plog *reopen_expect_intact(struct fixture *f, int64_t truncated)
{
	struct plog *l = open_log(f, &recovery_cfg);
	assert_int_equal(plog_stats(l)->recovery_truncated_bytes, truncated);
	assert_int_equal(plog_end_offset(l), f->end_offset);
	assert_int_equal(plog_high_watermark(l), f->end_offset);
	assert_int_equal(tu_file_size(f->log_path), f->log_len);
	int64_t n;
	uint8_t *idx = file_copy(f->index_path, &n);
	assert_int_equal(n, f->index_len);
	assert_memory_equal(idx, f->index_copy, (size_t)n);
	free(idx);
	uint8_t *tidx = file_copy(f->timeindex_path, &n);
	assert_int_equal(n, f->timeindex_len);
	assert_memory_equal(tidx, f->timeindex_copy, (size_t)n);
	free(tidx);
	int64_t off, ts;
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(ts, 10000 + 59 * 10 + 1);
	assert_int_equal(off, f->end_offset - 1);
	assert_int_equal(plog_offset_for_timestamp(l, 10000 + 30 * 10 + 1, &off, &ts), 0);
	assert_int_equal(off, 61);
	return l;
}

/* After recovery the log takes appends at the right offset. */
static void append_after(struct fixture *f, struct plog *l)
{
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(2, 99999, 20);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(res.base_offset, f->end_offset);
	tu_drive(&f->ring, l, 0);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, f->end_offset, 4096, got, sizeof(got), &rr), 0);
	struct batch_hdr h;
	assert_int_equal(batch_validate(got, rr.len, &h), (int)rr.len);
	assert_int_equal(h.base_offset, f->end_offset);
	plog_close(l);
}

static void clean_reopen_reads_only_tail(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	struct plog *l = reopen_expect_intact(f, 0);
	assert_true(plog_stats(l)->recovery_clean);
	/* From the last index entry on: at most an interval plus a batch. */
	uint64_t read = plog_stats(l)->recovery_log_bytes_read;
	assert_true(read > 0);
	assert_true(read <= 256 + 2 * f->batch_len);
	assert_true(read < (uint64_t)f->log_len / 4);
	append_after(f, l);
}

static void torn_tail_garbage(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	forget_clean_close(f);
	uint8_t junk[300];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	tu_file_append(f->log_path, junk, sizeof(junk));
	struct plog *l = reopen_expect_intact(f, sizeof(junk));
	assert_true(plog_stats(l)->recovery_log_bytes_read <= 256 + 2 * f->batch_len + sizeof(junk));
	append_after(f, l);
}

static void torn_tail_half_batch(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	forget_clean_close(f);
	/* The first half of a real batch, as a torn write leaves it. */
	int64_t n;
	uint8_t *log = file_copy(f->log_path, &n);
	tu_file_append(f->log_path, log + n - f->batch_len, f->batch_len / 2);
	free(log);
	append_after(f, reopen_expect_intact(f, (int64_t)f->batch_len / 2));
}

static void torn_tail_zeros(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	forget_clean_close(f);
	static const uint8_t zeros[4096];
	tu_file_append(f->log_path, zeros, sizeof(zeros));
	append_after(f, reopen_expect_intact(f, sizeof(zeros)));
}

/* Index files lost their tail (never synced) and hold garbage: rebuilt. */
static void torn_indexes_rebuilt(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	forget_clean_close(f);
	file_truncate(f->index_path, f->index_len / 2 + 3);
	tu_file_append(f->index_path, "\xff\xff\xff\xff\x7f\x00\x00\x00", 8);
	file_truncate(f->timeindex_path, f->timeindex_len - 12);
	append_after(f, reopen_expect_intact(f, 0));
}

/* No time index at all: recovery cannot know the maximum timestamp before
 * the tail, so it scans the whole segment (and still gets it right). */
static void lost_timeindex_scans_segment(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	forget_clean_close(f);
	file_truncate(f->timeindex_path, 0);
	struct plog *l = reopen_expect_intact(f, 0);
	assert_int_equal(plog_stats(l)->recovery_log_bytes_read, f->log_len);
	append_after(f, l);
}

/* The maximum timestamp sits mid-segment and its time index entry was
 * lost in the crash: recovery must start early enough to see it again
 * (a scan from the last offset index entry alone would miss it). */
static void lost_timeindex_entry_keeps_max(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, &recovery_cfg);
	struct plog_append_result res;
	for (int i = 0; i < 60; i++) {
		struct tu_batch_spec spec = tu_spec(2, i == 20 ? 50000 : 10000 + i * 10, 20);
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	}
	tu_drive(&f->ring, l, 0);
	plog_close(l);
	forget_clean_close(f);
	file_truncate(f->timeindex_path, tu_file_size(f->timeindex_path) - 12);
	l = open_log(f, &recovery_cfg);
	assert_int_equal(plog_end_offset(l), 120);
	int64_t off, ts;
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(ts, 50001);
	assert_int_equal(off, 41);
	assert_int_equal(plog_offset_for_timestamp(l, 20000, &off, &ts), 0);
	assert_int_equal(off, 40);
	assert_int_equal(ts, 50000);
	assert_int_equal(plog_offset_for_timestamp(l, 10000 + 50 * 10, &off, &ts), 0);
	assert_int_equal(off, 40);
	plog_close(l);
}

/* The last batch's bytes rotted: it is cut, whether or not the last index
 * entry points at it. (Only the tail is checked: rot further back is for a
 * scrubber, as in Kafka.) */
static void corrupt_batch_in_tail(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	forget_clean_close(f);
	int fd = open(f->log_path, O_RDWR);
	uint8_t byte;
	int64_t pos = f->log_len - (int64_t)f->batch_len + 70;
	assert_int_equal(pread(fd, &byte, 1, pos), 1);
	byte ^= 0x55;
	assert_int_equal(pwrite(fd, &byte, 1, pos), 1);
	close(fd);
	struct plog *l = open_log(f, &recovery_cfg);
	assert_int_equal(plog_end_offset(l), f->end_offset - 2);
	assert_int_equal(plog_stats(l)->recovery_truncated_bytes, (int64_t)f->batch_len);
	assert_int_equal(tu_file_size(f->log_path), f->log_len - (int64_t)f->batch_len);
	int64_t off, ts;
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(ts, 10000 + 58 * 10 + 1);
	assert_int_equal(off, f->end_offset - 3);
	f->end_offset -= 2;
	append_after(f, l);
}

/* A sealed segment whose index files are broken gets them rebuilt from
 * its batch headers. */
static void sealed_segment_index_rebuilt(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = recovery_cfg;
	cfg.segment_bytes = 2000;
	cfg.index_interval_bytes = 150;
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	for (int i = 0; i < 50; i++) {
		struct tu_batch_spec spec = tu_spec(2, 10000 + i * 10, 20);
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	}
	tu_drive(&f->ring, l, 0);
	plog_close(l);
	assert_true(tu_count_files(f->dir, ".log") >= 3);
	int64_t ilen, tlen;
	uint8_t *idx = file_copy(f->index_path, &ilen);
	uint8_t *tidx = file_copy(f->timeindex_path, &tlen);
	assert_true(ilen > 16);
	file_truncate(f->index_path, 5);
	tu_file_append(f->timeindex_path, "\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x01", 12);

	l = open_log(f, &cfg);
	assert_int_equal(plog_end_offset(l), 100);
	int64_t n;
	uint8_t *again = file_copy(f->index_path, &n);
	assert_int_equal(n, ilen);
	assert_memory_equal(again, idx, (size_t)n);
	free(again);
	again = file_copy(f->timeindex_path, &n);
	assert_int_equal(n, tlen);
	assert_memory_equal(again, tidx, (size_t)n);
	free(again);
	free(idx);
	free(tidx);
	int64_t off, ts;
	assert_int_equal(plog_offset_for_timestamp(l, 10000 + 5 * 10 + 1, &off, &ts), 0);
	assert_int_equal(off, 11);
	plog_close(l);
}

/* A snapshot past the recovered end (its roll's data never became
 * durable) is removed, not trusted. */
static void snapshot_past_end_dropped(void **state)
{
	struct fixture *f = *state;
	build_log(f);
	char snap[4096], fake[4096];
	tu_seg_path(snap, sizeof(snap), f->dir, f->end_offset, ".snapshot");
	tu_seg_path(fake, sizeof(fake), f->dir, f->end_offset + 1000, ".snapshot");
	assert_true(tu_file_exists(snap));
	assert_int_equal(link(snap, fake), 0);
	struct plog *l = open_log(f, &recovery_cfg);
	assert_false(tu_file_exists(fake));
	assert_true(tu_file_exists(snap));
	append_after(f, l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(clean_reopen_reads_only_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_tail_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_tail_half_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_tail_zeros, setup, teardown),
		cmocka_unit_test_setup_teardown(torn_indexes_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(lost_timeindex_scans_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(lost_timeindex_entry_keeps_max, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_batch_in_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(sealed_segment_index_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_past_end_dropped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The log start offset and retention: DeleteRecords (inside a segment, -1,
 * out of range, no-op, durable across a crash and a clean close, past the
 * recovered end), retention.bytes and retention.ms (Kafka's rules, oldest
 * first, stopping at the first survivor, mtime for segments without
 * timestamps), segments wholly below the start offset (at a retention pass
 * and at open), the per-call budget, unsealed and active segments kept,
 * producer snapshots pruned, a corrupt start offset file refused.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/be.h"
#include "storage/log.h"
#include "storage/sio.h"
#include "test_util.h"

/* The start offset file's name (the storage library's; see log_int.h). */
#define START_FILE ".sluice_log_start_offset"

/* Segments of 400 bytes hold two one-record batches with 100-byte values. */
#define SEG_BYTES 400
#define VALUE_BYTES 100

static struct plog *open_log(struct tu_fixture *f, const struct log_config *cfg)
{
	return tu_open(f->dir, cfg);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One batch of `records` records with timestamps ts, ts+1, ..., written. */
static void append_one(struct tu_fixture *f, struct plog *l, int32_t records, int64_t ts)
{
	struct tu_batch_spec spec = tu_spec(records, ts, VALUE_BYTES);
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 0);
}

/* n one-record batches (two per segment), timestamps ts[i] or now. */
static void append_singles(struct tu_fixture *f, struct plog *l, int n, const int64_t *ts)
{
	for (int i = 0; i < n; i++)
		append_one(f, l, 1, ts != NULL ? ts[i] : wall_ms());
}

static bool seg_exists(struct tu_fixture *f, int64_t base)
{
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, base, ".log");
	return tu_file_exists(path);
}

/* What plog_retention_run reported. */
struct deleted {
	int n;
	int64_t base[32], bytes[32];
	enum plog_delete_reason why[32];
};

static void on_deleted(void *arg, const struct plog_deleted_segment *d)
{
	struct deleted *r = arg;
	assert_true(r->n < 32);
	r->base[r->n] = d->base_offset;
	r->bytes[r->n] = d->bytes;
	r->why[r->n] = d->reason;
	r->n++;
}

static void write_start_file(struct tu_fixture *f, const char *text)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", f->dir, START_FILE);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void delete_records_moves_start(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	for (int i = 0; i < 5; i++)
		append_one(f, l, 2, 1000 + i * 10); /* offsets 2i, 2i+1: ts +0, +1 */
	assert_int_equal(plog_high_watermark(l), 10);

	int64_t lw = -7;
	assert_int_equal(plog_delete_records(l, 3, &lw), 0);
	assert_int_equal(lw, 3);
	assert_int_equal(plog_start_offset(l), 3);

	/* Below the start: out of range. At it: the batch holding it. */
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 2, 1 << 20, got, sizeof(got), &rr), -ERANGE);
	assert_int_equal(plog_read(l, 3, 1 << 20, got, sizeof(got), &rr), 0);
	assert_true(rr.len > 0);
	assert_int_equal(rr.log_start_offset, 3);
	assert_int_equal((int64_t)be64_load(got), 2);

	/* Timestamp lookups never answer below the start: offset 2 (ts
	 * 1010) is the first at or after 1005, but it is gone. */
	int64_t off, ts;
	assert_int_equal(plog_offset_for_timestamp(l, 1005, &off, &ts), 0);
	assert_int_equal(off, 3);
	assert_int_equal(ts, 1011);
	assert_int_equal(plog_offset_for_timestamp(l, 1020, &off, &ts), 0);
	assert_int_equal(off, 4);

	/* Backwards is a no-op; past the HW or below -1 is refused. */
	assert_int_equal(plog_delete_records(l, 1, &lw), 0);
	assert_int_equal(lw, 3);
	assert_int_equal(plog_delete_records(l, 11, &lw), -ERANGE);
	assert_int_equal(lw, 3);
	assert_int_equal(plog_delete_records(l, -2, &lw), -ERANGE);
	assert_int_equal(plog_start_offset(l), 3);

	/* -1: everything up to the HW. */
	assert_int_equal(plog_delete_records(l, -1, &lw), 0);
	assert_int_equal(lw, 10);
	assert_int_equal(plog_read(l, 10, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, 0);
	assert_int_equal(plog_read(l, 9, 1 << 20, got, sizeof(got), &rr), -ERANGE);
	struct tu_batch_spec spec = tu_spec(1, 2000, 10);
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(res.base_offset, 10);
	assert_int_equal(res.log_start_offset, 10);
	tu_drive(&f->ring, l, 0);

	/* One segment, the active one: retention never deletes it. */
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, NULL, NULL), 0);
	assert_int_equal(plog_stats(l)->segments_deleted, 0);
	assert_true(seg_exists(f, 0));
	plog_close(l);
}

static void delete_records_survives_crash_and_close(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Dies without closing the log: no marker, no final sync. Its
		 * own ring: the parent's is not to be shared across fork. */
		struct io_uring ring;
		int err;
		if (io_uring_queue_init(64, &ring, 0) != 0)
			_exit(1);
		struct plog *l = plog_open(f->dir, &cfg, &err);
		struct tu_batch_spec spec = tu_spec(2, 1000, 10);
		struct plog_append_result res;
		for (int i = 0; i < 4; i++)
			if (l == NULL || tu_append_spec(l, &spec, &res) != 0)
				_exit(2);
		tu_drive(&ring, l, 0);
		int64_t lw;
		_exit(plog_delete_records(l, 5, &lw) == 0 && lw == 5 ? 0 : 3);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	struct plog *l = open_log(f, &cfg);
	assert_false(plog_stats(l)->recovery_clean);
	assert_int_equal(plog_start_offset(l), 5);
	assert_int_equal(plog_end_offset(l), 8);
	int64_t lw;
	assert_int_equal(plog_delete_records(l, 6, &lw), 0);
	plog_close(l);

	l = open_log(f, &cfg);
	assert_true(plog_stats(l)->recovery_clean);
	assert_int_equal(plog_start_offset(l), 6);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 5, 1 << 20, got, sizeof(got), &rr), -ERANGE);
	assert_int_equal(plog_read(l, 6, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.log_start_offset, 6);
	plog_close(l);
}

static void retention_bytes_deletes_oldest(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	append_singles(f, l, 10, NULL); /* segments at 0 2 4 6 8, 8 active */
	plog_close(l);
	assert_int_equal(tu_count_files(f->dir, ".log"), 5);
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, 0, ".log");
	int64_t seg = tu_file_size(path); /* every segment holds two batches */

	/* Keep at least three batches' worth: 10 -> 8 -> 6 -> 4 batches of
	 * bytes; without the next oldest only 2 would be left. */
	cfg.retention_bytes = seg / 2 * 3;
	l = open_log(f, &cfg);
	struct deleted d = { 0 };
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, on_deleted, &d), 3);
	assert_int_equal(d.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d.base[i], 2 * i);
		assert_int_equal(d.bytes[i], seg);
		assert_int_equal(d.why[i], PLOG_DELETE_RETENTION_BYTES);
		assert_false(seg_exists(f, 2 * i));
	}
	assert_true(seg_exists(f, 6) && seg_exists(f, 8));
	assert_int_equal(tu_count_files(f->dir, ".index"), 2);
	assert_int_equal(tu_count_files(f->dir, ".timeindex"), 2);
	assert_int_equal(plog_start_offset(l), 6);
	assert_int_equal(plog_stats(l)->segments_deleted, 3);
	assert_int_equal(plog_stats(l)->bytes_deleted, 3 * seg);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 5, 1 << 20, got, sizeof(got), &rr), -ERANGE);
	assert_int_equal(plog_read(l, 6, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.log_start_offset, 6);
	assert_int_equal((int64_t)be64_load(got), 6);
	/* Nothing more is due. */
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, on_deleted, &d), 0);
	plog_close(l);

	/* retention.bytes=0 keeps only the active segment. */
	cfg.retention_bytes = 0;
	l = open_log(f, &cfg);
	assert_int_equal(plog_start_offset(l), 6);
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, NULL, NULL), 1);
	assert_int_equal(plog_start_offset(l), 8);
	assert_int_equal(tu_count_files(f->dir, ".log"), 1);
	assert_true(seg_exists(f, 8));
	plog_close(l);
}

static void retention_ms_stops_at_first_survivor(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	int64_t now = wall_ms(), old = now - 3600 * 1000;
	/* Segments: 0 old, 2 new, 4 old, 6 active (old). */
	int64_t ts[7] = { old, old, now, now, old, old, old };
	struct plog *l = open_log(f, &cfg);
	append_singles(f, l, 7, ts);
	plog_close(l);

	cfg.retention_ms = -1;
	cfg.retention_bytes = -1;
	l = open_log(f, &cfg);
	assert_int_equal(plog_retention_run(l, now, 100, NULL, NULL), 0);
	plog_close(l);

	cfg.retention_ms = 60 * 1000;
	l = open_log(f, &cfg);
	struct deleted d = { 0 };
	/* Only the first: the second is recent, and Kafka stops there even
	 * though the third has expired. */
	assert_int_equal(plog_retention_run(l, now, 100, on_deleted, &d), 1);
	assert_int_equal(d.base[0], 0);
	assert_int_equal(d.why[0], PLOG_DELETE_RETENTION_MS);
	assert_int_equal(plog_start_offset(l), 2);
	assert_true(seg_exists(f, 4));
	/* An hour later everything but the active segment has expired. */
	assert_int_equal(plog_retention_run(l, now + 3600 * 1000, 100, on_deleted, &d), 2);
	assert_int_equal(d.base[1], 2);
	assert_int_equal(d.base[2], 4);
	assert_int_equal(plog_start_offset(l), 6);
	assert_int_equal(tu_count_files(f->dir, ".log"), 1);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 6, 1 << 20, got, sizeof(got), &rr), 0);
	assert_true(rr.len > 0);
	plog_close(l);
}

/* A segment whose batches carry no timestamp ages by its file's mtime. */
static void retention_ms_without_timestamps_uses_mtime(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	struct tu_batch_spec spec = tu_spec(1, BATCH_NO_TIMESTAMP, VALUE_BYTES);
	spec.ts_step = 0;
	struct plog_append_result res;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		tu_drive(&f->ring, l, 0);
	}
	plog_close(l);
	assert_true(seg_exists(f, 2));

	cfg.retention_ms = 60 * 1000;
	l = open_log(f, &cfg);
	int64_t now = wall_ms();
	assert_int_equal(plog_retention_run(l, now, 100, NULL, NULL), 0); /* fresh file */
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, 0, ".log");
	struct timespec times[2] = { { .tv_sec = (now / 1000) - 7200 },
				     { .tv_sec = (now / 1000) - 7200 } };
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	assert_int_equal(plog_retention_run(l, now, 100, NULL, NULL), 1);
	assert_false(seg_exists(f, 0));
	assert_int_equal(plog_start_offset(l), 2);
	plog_close(l);
}

static void start_offset_deletes_segments_below(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	append_singles(f, l, 10, NULL); /* segments at 0 2 4 6 8 */
	int64_t lw;
	assert_int_equal(plog_delete_records(l, 5, &lw), 0);
	/* DeleteRecords itself deletes no file. */
	assert_int_equal(tu_count_files(f->dir, ".log"), 5);
	struct deleted d = { 0 };
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, on_deleted, &d), 2);
	assert_int_equal(d.base[0], 0);
	assert_int_equal(d.base[1], 2);
	assert_int_equal(d.why[0], PLOG_DELETE_START_OFFSET);
	assert_int_equal(d.why[1], PLOG_DELETE_START_OFFSET);
	/* The segment holding the start stays; the start stays inside it. */
	assert_true(seg_exists(f, 4));
	assert_int_equal(plog_start_offset(l), 5);

	/* At open: segments wholly below a saved start are deleted. */
	assert_int_equal(plog_delete_records(l, 8, &lw), 0);
	plog_close(l);
	l = open_log(f, &cfg);
	assert_int_equal(plog_start_offset(l), 8);
	assert_int_equal(plog_stats(l)->segments_deleted, 2);
	assert_int_equal(tu_count_files(f->dir, ".log"), 1);
	assert_int_equal(tu_count_files(f->dir, ".index"), 1);
	assert_true(seg_exists(f, 8));
	assert_int_equal(plog_end_offset(l), 10);
	plog_close(l);
}

static void retention_budget_and_unsealed(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	cfg.retention_bytes = 0;
	struct plog *l = open_log(f, &cfg);
	/* Rolled but not written: no segment is sealed, none may go. */
	struct tu_batch_spec spec = tu_spec(1, wall_ms(), VALUE_BYTES);
	struct plog_append_result res;
	for (int i = 0; i < 10; i++)
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, NULL, NULL), 0);
	assert_int_equal(plog_start_offset(l), 0);
	tu_drive(&f->ring, l, 0);
	/* Four sealed segments, at most two per call. */
	assert_int_equal(plog_retention_run(l, wall_ms(), 2, NULL, NULL), 2);
	assert_int_equal(plog_start_offset(l), 4);
	assert_int_equal(plog_retention_run(l, wall_ms(), 2, NULL, NULL), 2);
	assert_int_equal(plog_retention_run(l, wall_ms(), 2, NULL, NULL), 0);
	assert_int_equal(plog_start_offset(l), 8);
	/* The log goes on: appends land in the active segment. */
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(res.base_offset, 10);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 11);
	plog_close(l);
}

static void retention_prunes_snapshots(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	/* Idempotent batches: each roll writes a producer snapshot. */
	struct plog_append_result res;
	for (int i = 0; i < 10; i++) {
		struct tu_batch_spec spec = tu_spec(1, wall_ms(), VALUE_BYTES);
		spec.producer_id = 42;
		spec.producer_epoch = 0;
		spec.base_sequence = i;
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		tu_drive(&f->ring, l, 0);
	}
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, 4, ".snapshot");
	assert_true(tu_file_exists(path));
	int64_t lw;
	assert_int_equal(plog_delete_records(l, 7, &lw), 0);
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, NULL, NULL), 3);
	assert_false(tu_file_exists(path));
	tu_seg_path(path, sizeof(path), f->dir, 6, ".snapshot");
	assert_true(tu_file_exists(path));
	plog_close(l);
	/* The producer is still known after the reopen (snapshot at 10). */
	l = open_log(f, &cfg);
	struct tu_batch_spec spec = tu_spec(1, wall_ms(), VALUE_BYTES);
	spec.producer_id = 42;
	spec.producer_epoch = 0;
	spec.base_sequence = 9; /* a retry of the last batch */
	assert_int_equal(tu_append_spec(l, &spec, &res), PLOG_DUPLICATE);
	assert_int_equal(res.base_offset, 9);
	plog_close(l);
}

/* A saved start past the recovered end (its data lost with flush=none):
 * the log starts again, empty, at the start offset. */
static void start_past_end_restarts_log(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	append_singles(f, l, 5, NULL);
	plog_close(l);
	write_start_file(f, "v1 100\n");
	l = open_log(f, &cfg);
	assert_int_equal(plog_start_offset(l), 100);
	assert_int_equal(plog_end_offset(l), 100);
	assert_int_equal(plog_high_watermark(l), 100);
	assert_int_equal(tu_count_files(f->dir, ".log"), 1);
	assert_true(seg_exists(f, 100));
	struct tu_batch_spec spec = tu_spec(1, wall_ms(), 10);
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(res.base_offset, 100);
	tu_drive(&f->ring, l, 0);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 100, 1 << 20, got, sizeof(got), &rr), 0);
	assert_true(rr.len > 0);
	plog_close(l);
	l = open_log(f, &cfg);
	assert_int_equal(plog_start_offset(l), 100);
	assert_int_equal(plog_end_offset(l), 101);
	plog_close(l);
}

static void corrupt_start_file_refused(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	append_singles(f, l, 3, NULL);
	plog_close(l);
	static const char *const bad[] = { "", "v1 \n", "v2 1\n", "v1 1", "v1 -1\n", "v1 +1\n",
					   "v1 1x\n", "v1 99999999999999999999\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_start_file(f, bad[i]);
		int err = 0;
		assert_null(plog_open(f->dir, &cfg, &err));
		assert_int_equal(err, -EINVAL);
	}
	write_start_file(f, "v1 1\n");
	l = open_log(f, &cfg);
	assert_int_equal(plog_start_offset(l), 1);
	plog_close(l);
	/* A bad retention setting is refused too. */
	cfg.retention_ms = -2;
	int err = 0;
	assert_null(plog_open(f->dir, &cfg, &err));
	assert_int_equal(err, -EINVAL);
}

/* An offline log answers DeleteRecords with its sticky error and is left
 * alone by retention. */
static void offline_log_untouched(void **state)
{
	struct tu_fixture *f = *state;
	/* Writes fail with EIO (the fault backend) once the flag exists:
	 * the log goes offline. */
	char flag[4200], rule[4400];
	snprintf(flag, sizeof(flag), "%s/eio", f->dir);
	snprintf(rule, sizeof(rule), "eio:write:file=log:while=%s", flag);
	struct sio io;
	struct log_config cfg = tu_config(SEG_BYTES, 4096, FLUSH_ALWAYS);
	cfg.retention_bytes = 0;
	tu_sio(&io, &f->ring, rule, &cfg);
	struct plog *l = open_log(f, &cfg);
	append_singles(f, l, 2, NULL);
	int fd = open(flag, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	struct tu_batch_spec spec = tu_spec(4, wall_ms(), 1000);
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 0);
	assert_true(plog_error(l) < 0);
	int64_t lw = -7;
	assert_int_equal(plog_delete_records(l, 1, &lw), plog_error(l));
	assert_int_equal(lw, 0);
	assert_int_equal(plog_retention_run(l, wall_ms(), 100, NULL, NULL), 0);
	assert_true(seg_exists(f, 0));
	assert_int_equal(plog_start_offset(l), 0);
	plog_close(l);
	sio_destroy(&io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(delete_records_moves_start, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(delete_records_survives_crash_and_close, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(retention_bytes_deletes_oldest, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(retention_ms_stops_at_first_survivor, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(retention_ms_without_timestamps_uses_mtime, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(start_offset_deletes_segments_below, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(retention_budget_and_unsealed, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(retention_prunes_snapshots, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(start_past_end_restarts_log, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(corrupt_start_file_refused, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(offline_log_untouched, tu_fixture_setup, tu_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

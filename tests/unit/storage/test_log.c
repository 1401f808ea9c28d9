/*
 * The partition log: append, group-committed flush, reads, segment rolls,
 * reopen, delete, timestamp lookups, flush modes, back-pressure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/be.h"
#include "storage/log.h"
#include "storage/uring_op.h"
#include "storage/sio.h"
#include "test_util.h"

static struct plog *open_log(struct tu_fixture *f, const struct log_config *cfg)
{
	return tu_open(f->dir, cfg);
}

/* What the log stores for an appended batch: the same bytes with the
 * broker's base offset and leader epoch (tu_append passes 7). */
static void expect_stored(uint8_t *copy, const uint8_t *orig, size_t len, int64_t base)
{
	memcpy(copy, orig, len);
	batch_set_base_offset(copy, base);
	batch_set_leader_epoch(copy, 7);
}

static void append_flush_read_round_trip(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	uint8_t b[3][512], want[1536], got[4096];
	size_t len[3], total = 0;
	for (int i = 0; i < 3; i++) {
		struct tu_batch_spec spec = tu_spec(5, 1000 + i * 10, 20);
		spec.fill = (uint8_t)('a' + i);
		len[i] = tu_batch(b[i], sizeof(b[i]), &spec);
		struct plog_append_result res;
		assert_int_equal(tu_append(l, b[i], len[i], &res), 0);
		assert_int_equal(res.base_offset, i * 5);
		assert_int_equal(res.log_append_time, -1);
		assert_int_equal(res.log_start_offset, 0);
		expect_stored(want + total, b[i], len[i], i * 5);
		total += len[i];
	}
	assert_int_equal(plog_end_offset(l), 15);
	assert_int_equal(plog_high_watermark(l), 0);
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 0, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, 0); /* nothing readable before the write */

	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 15);
	/* Group commit: three appends, one write, one fdatasync. */
	assert_int_equal(plog_stats(l)->writes, 1);
	assert_int_equal(plog_stats(l)->syncs, 1);

	assert_int_equal(plog_read(l, 0, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, total);
	assert_memory_equal(got, want, total);
	assert_int_equal(rr.high_watermark, 15);
	assert_int_equal(rr.log_start_offset, 0);
	/* A read inside a batch starts at that batch. */
	assert_int_equal(plog_read(l, 7, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, len[1] + len[2]);
	assert_memory_equal(got, want + len[0], rr.len);
	/* At the HW: nothing; past it or before the start: out of range. */
	assert_int_equal(plog_read(l, 15, 1 << 20, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, 0);
	assert_int_equal(plog_read(l, 16, 1 << 20, got, sizeof(got), &rr), -ERANGE);
	assert_int_equal(plog_read(l, -1, 1 << 20, got, sizeof(got), &rr), -ERANGE);
	assert_true(plog_idle(l));
	plog_close(l);
}

static void read_max_bytes_and_kip74(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	uint8_t b[512], got[4096];
	struct tu_batch_spec spec = tu_spec(2, 1000, 100);
	size_t len = tu_batch(b, sizeof(b), &spec);
	struct plog_append_result res;
	for (int i = 0; i < 4; i++)
		assert_int_equal(tu_append(l, b, len, &res), 0);
	tu_drive(&f->ring, l, 0);
	struct plog_read_result rr;
	/* Tiny max_bytes: still one whole batch (KIP-74). */
	assert_int_equal(plog_read(l, 0, 1, got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, len);
	assert_int_equal(rr.first_batch_bytes, (int32_t)len);
	/* Only whole batches fit under max_bytes. */
	assert_int_equal(plog_read(l, 0, (int32_t)(2 * len - 1), got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, len);
	assert_int_equal(plog_read(l, 0, (int32_t)(2 * len), got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, 2 * len);
	assert_int_equal(plog_read(l, 2, (int32_t)(3 * len + 10), got, sizeof(got), &rr), 0);
	assert_int_equal(rr.len, 3 * len);
	/* dst_cap bounds it too, in whole batches. */
	assert_int_equal(plog_read(l, 0, 1 << 20, got, 2 * len + 5, &rr), 0);
	assert_int_equal(rr.len, 2 * len);
	/* The first batch does not fit dst at all: nothing, and its size. */
	assert_int_equal(plog_read(l, 0, 1 << 20, got, len - 1, &rr), 0);
	assert_int_equal(rr.len, 0);
	assert_int_equal(rr.first_batch_bytes, (int32_t)len);
	plog_close(l);
}

/* Read the whole log as a consumer would: fetch, advance past the last
 * batch returned, fetch again. */
static size_t consume_all(struct plog *l, uint8_t *out, size_t cap, int *fetches)
{
	size_t used = 0;
	int64_t next = plog_start_offset(l);
	*fetches = 0;
	while (next < plog_high_watermark(l)) {
		struct plog_read_result rr;
		assert_int_equal(plog_read(l, next, 1 << 20, out + used, cap - used, &rr), 0);
		assert_true(rr.len > 0);
		size_t p = 0;
		while (p < rr.len) {
			struct batch_hdr h;
			int n = batch_validate(out + used + p, rr.len - p, &h);
			assert_true(n > 0);
			next = h.base_offset + h.last_offset_delta + 1;
			p += (size_t)n;
		}
		used += rr.len;
		(*fetches)++;
	}
	return used;
}

static void roll_and_read_across_segments(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1000, 100, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	uint8_t b[10][512], want[8192], got[8192];
	size_t total = 0;
	for (int i = 0; i < 10; i++) {
		struct tu_batch_spec spec = tu_spec(3, 5000 + i * 100, 60);
		spec.fill = (uint8_t)('A' + i);
		size_t len = tu_batch(b[i], sizeof(b[i]), &spec);
		struct plog_append_result res;
		assert_int_equal(tu_append(l, b[i], len, &res), 0);
		assert_int_equal(res.base_offset, i * 3);
		expect_stored(want + total, b[i], len, i * 3);
		total += len;
		if (i % 4 == 3)
			tu_drive(&f->ring, l, 0);
	}
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 30);
	/* ~260-byte batches, 1000-byte segments: 3 per segment. */
	assert_int_equal(tu_count_files(f->dir, ".log"), 4);
	assert_int_equal(tu_count_files(f->dir, ".index"), 4);
	assert_int_equal(tu_count_files(f->dir, ".timeindex"), 4);
	assert_int_equal(plog_stats(l)->rolls, 3);
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, 9, ".log");
	assert_true(tu_file_exists(path));
	int fetches;
	assert_int_equal(consume_all(l, got, sizeof(got), &fetches), total);
	assert_memory_equal(got, want, total);
	assert_int_equal(fetches, 4); /* one per segment */
	plog_close(l);

	/* And again after a clean reopen. */
	l = open_log(f, &cfg);
	assert_true(plog_stats(l)->recovery_clean);
	assert_int_equal(plog_end_offset(l), 30);
	assert_int_equal(plog_high_watermark(l), 30);
	assert_int_equal(consume_all(l, got, sizeof(got), &fetches), total);
	assert_memory_equal(got, want, total);
	plog_close(l);
}

static void reopen_continues_offsets(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 64, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	for (int i = 0; i < 20; i++) {
		struct tu_batch_spec spec = tu_spec(2, 100 + i, 30);
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	}
	/* Not flushed: close writes it. */
	plog_close(l);
	l = open_log(f, &cfg);
	assert_int_equal(plog_end_offset(l), 40);
	assert_int_equal(plog_high_watermark(l), 40);
	assert_int_equal(plog_stats(l)->recovery_truncated_bytes, 0);
	struct tu_batch_spec spec = tu_spec(2, 999, 30);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(res.base_offset, 40);
	tu_drive(&f->ring, l, 0);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 41, 1 << 20, got, sizeof(got), &rr), 0);
	struct batch_hdr h;
	assert_true(batch_validate(got, rr.len, &h) > 0);
	assert_int_equal(h.base_offset, 40);
	plog_close(l);
}

static void delete_removes_directory(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1000, 100, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	for (int i = 0; i < 8; i++) {
		struct tu_batch_spec spec = tu_spec(3, 1, 60);
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	}
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_delete(l), 0);
	assert_false(tu_file_exists(f->dir));
	/* The name is free at once. */
	l = open_log(f, &cfg);
	assert_int_equal(plog_end_offset(l), 0);
	plog_close(l);
}

/* Delete while a chain is in flight: removal happens at its completion. */
static void delete_with_write_in_flight(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 100, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(3, 1, 60);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_true(plog_flush(l, &f->ring, 0) > 0);
	assert_true(io_uring_submit(&f->ring) > 0);
	assert_int_equal(plog_delete(l), 0);
	assert_false(tu_file_exists(f->dir));
	struct io_uring_cqe *cqe;
	for (int done = 0; done < 2;) {
		assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
		uring_op_dispatch(cqe);
		io_uring_cqe_seen(&f->ring, cqe);
		done++;
	}
	/* ASan would report the log leaked if the last completion had not
	 * freed it. */
}

static void timestamps(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(700, 50, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	int64_t off, ts;
	assert_int_equal(plog_max_timestamp(l, &off, &ts), -ENOENT);
	assert_int_equal(plog_offset_for_timestamp(l, 0, &off, &ts), -ENOENT);
	/* Batches (3 records each) with these record timestamps: */
	static const int64_t deltas[6][3] = {
		{ 0, 10, 20 }, { 5, 40, 30 }, { 100, 90, 95 },
		{ 200, 250, 150 }, { 120, 130, 140 }, { 300, 290, 310 },
	};
	struct plog_append_result res;
	for (int i = 0; i < 6; i++) {
		struct tu_batch_spec spec = tu_spec(3, 1000, 40);
		spec.ts_deltas = deltas[i];
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	}
	/* A "compressed" batch: its records are opaque to the broker. */
	struct tu_batch_spec spec = tu_spec(3, 2000, 40);
	spec.attributes = 1;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(res.base_offset, 18);
	/* Below the HW only. */
	assert_int_equal(plog_offset_for_timestamp(l, 0, &off, &ts), -ENOENT);
	tu_drive(&f->ring, l, 0);
	assert_true(plog_stats(l)->rolls >= 2);

	struct { int64_t ts, off, found; } cases[] = {
		{ 0, 0, 1000 },      { 1000, 0, 1000 },  { 1001, 1, 1010 },
		{ 1021, 4, 1040 },   { 1031, 4, 1040 },  { 1041, 6, 1100 },
		{ 1096, 6, 1100 },   { 1101, 9, 1200 },  { 1201, 10, 1250 },
		{ 1251, 15, 1300 },  { 1301, 17, 1310 }, { 1311, 18, 2002 },
		{ 2002, 18, 2002 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(plog_offset_for_timestamp(l, cases[i].ts, &off, &ts), 0);
		assert_int_equal(off, cases[i].off);
		assert_int_equal(ts, cases[i].found);
	}
	assert_int_equal(plog_offset_for_timestamp(l, 2003, &off, &ts), -ENOENT);
	/* The max is in the compressed batch: its last offset. */
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(ts, 2002);
	assert_int_equal(off, 20);
	plog_close(l);

	/* Same answers after reopening (indexes from disk). */
	l = open_log(f, &cfg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(plog_offset_for_timestamp(l, cases[i].ts, &off, &ts), 0);
		assert_int_equal(off, cases[i].off);
	}
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(off, 20);
	assert_int_equal(ts, 2002);
	plog_close(l);
}

static void max_timestamp_exact_record(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_NONE);
	struct plog *l = open_log(f, &cfg);
	static const int64_t deltas[4] = { 0, 70, 10, 70 };
	struct tu_batch_spec spec = tu_spec(4, 500, 10);
	spec.ts_deltas = deltas;
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	int64_t off, ts;
	assert_int_equal(plog_max_timestamp(l, &off, &ts), 0);
	assert_int_equal(off, 1); /* first record with the max, not the last offset */
	assert_int_equal(ts, 570);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

static int advances;
static void count_advance(void *arg, struct plog *l)
{
	(void)l;
	(*(int *)arg)++;
}

/* Appends while a chain is in flight wait in the second buffer; the
 * completion queues them itself. */
static void appends_during_flight_follow(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	advances = 0;
	plog_set_listener(l, count_advance, &advances);
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(2, 1, 30);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(plog_flush(l, &f->ring, 0), 2); /* write + fdatasync */
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	assert_int_equal(plog_flush(l, &f->ring, 0), 0); /* one chain at a time */
	assert_false(plog_idle(l));
	assert_int_equal(io_uring_submit(&f->ring), 2);
	struct io_uring_cqe *cqe;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
		uring_op_dispatch(cqe);
		io_uring_cqe_seen(&f->ring, cqe);
	}
	assert_int_equal(plog_high_watermark(l), 2);
	assert_int_equal(advances, 1);
	/* The completion queued the second chain on our ring. */
	assert_int_equal(io_uring_sq_ready(&f->ring), 2);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 6);
	assert_int_equal(advances, 2);
	assert_int_equal(plog_stats(l)->writes, 2);
	plog_close(l);
}

static void flush_interval_mode(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_INTERVAL);
	cfg.flush_interval_ms = 1000;
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(2, 1, 30);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 5000);
	assert_int_equal(plog_stats(l)->syncs, 1);
	assert_int_equal(plog_sync_deadline_ms(l), -1);
	/* Within the interval: written and readable, not synced. */
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 5100);
	assert_int_equal(plog_high_watermark(l), 4);
	assert_int_equal(plog_stats(l)->syncs, 1);
	assert_int_equal(plog_stats(l)->writes, 2);
	assert_int_equal(plog_sync_deadline_ms(l), 6000);
	assert_false(plog_idle(l));
	/* Due: a flush with no new data queues the lone fdatasync. */
	assert_int_equal(plog_flush(l, &f->ring, 6000), 1);
	tu_drive(&f->ring, l, 6000);
	assert_int_equal(plog_stats(l)->syncs, 2);
	assert_true(plog_idle(l));
	plog_close(l);
}

static void flush_none_mode(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_NONE);
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(2, 1, 30);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		tu_drive(&f->ring, l, i);
	}
	assert_int_equal(plog_high_watermark(l), 6);
	assert_int_equal(plog_stats(l)->syncs, 0);
	assert_true(plog_idle(l));
	plog_close(l);
}

static void ring_full_is_ebusy(void **state)
{
	struct tu_fixture *f = *state;
	struct io_uring small;
	assert_int_equal(io_uring_queue_init(2, &small, 0), 0);
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	struct plog *l = open_log(f, &cfg);
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(2, 1, 30);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	io_uring_prep_nop(io_uring_get_sqe(&small));
	assert_int_equal(plog_flush(l, &small, 0), -EBUSY);
	assert_int_equal(io_uring_submit(&small), 1);
	struct io_uring_cqe *cqe;
	assert_int_equal(io_uring_wait_cqe(&small, &cqe), 0);
	io_uring_cqe_seen(&small, cqe);
	tu_drive(&small, l, 0);
	assert_int_equal(plog_high_watermark(l), 2);
	plog_close(l);
	io_uring_queue_exit(&small);
}

static void buffer_full_backpressure(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(INT32_MAX, 1 << 20, FLUSH_NONE);
	struct plog *l = open_log(f, &cfg);
	struct tu_batch_spec spec = tu_spec(1, 1, 1 << 20);
	size_t cap = (1 << 20) + 256;
	uint8_t *b = malloc(cap);
	size_t len = tu_batch(b, cap, &spec);
	struct plog_append_result res;
	int ok = 0, rc;
	while ((rc = tu_append(l, b, len, &res)) == 0)
		ok++;
	assert_int_equal(rc, PLOG_ERR_BUFFER_FULL);
	assert_in_range(ok, 60, 64);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), ok);
	assert_int_equal(tu_append(l, b, len, &res), 0);
	free(b);
	plog_close(l);
}

/* A write that fails (EIO, from the fault backend) takes the log
 * offline, sticky, and says so. */
static void write_error_takes_log_offline(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, "eio:write:file=log", &cfg);
	struct plog *l = open_log(f, &cfg);
	advances = 0;
	plog_set_listener(l, count_advance, &advances);
	struct plog_append_result res;
	struct tu_batch_spec spec = tu_spec(4, 1, 1000);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 0);
	assert_true(plog_error(l) < 0);
	assert_int_equal(advances, 1);
	assert_int_equal(plog_high_watermark(l), 0);
	assert_int_equal(tu_append_spec(l, &spec, &res), PLOG_ERR_STORAGE);
	uint8_t got[64];
	struct plog_read_result rr;
	assert_true(plog_read(l, 0, 64, got, sizeof(got), &rr) < 0);
	assert_true(plog_idle(l));
	assert_int_equal(io.stats.faults_injected, 1);
	plog_close(l);
	sio_destroy(&io);
}

static void bad_config_rejected(void **state)
{
	struct tu_fixture *f = *state;
	int err = 0;
	struct log_config cfg = tu_config(0, 4096, FLUSH_ALWAYS);
	assert_null(plog_open(f->dir, &cfg, &err));
	assert_int_equal(err, -EINVAL);
	cfg = tu_config((int64_t)INT32_MAX + 1, 4096, FLUSH_ALWAYS);
	assert_null(plog_open(f->dir, &cfg, &err));
	cfg = tu_config(1000, -1, FLUSH_ALWAYS);
	assert_null(plog_open(f->dir, &cfg, &err));
	assert_int_equal(err, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(append_flush_read_round_trip, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(read_max_bytes_and_kip74, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(roll_and_read_across_segments, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(reopen_continues_offsets, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(delete_removes_directory, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(delete_with_write_in_flight, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(timestamps, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(max_timestamp_exact_record, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(appends_during_flight_follow, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(flush_interval_mode, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(flush_none_mode, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(ring_full_is_ebusy, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(buffer_full_backpressure, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(write_error_takes_log_offline, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(bad_config_rejected, tu_fixture_setup, tu_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

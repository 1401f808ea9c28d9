/*
 * test_sio: the storage backend under the log. O_DIRECT page layout (every
 * byte appended reads back whatever the batch sizes and chain shapes),
 * pre-allocation (fallocate, and zeros that must never land on data) and
 * what a crash leaves of it, segment.ms rolls, the
 * fault rules, and what the log does with each fault: EIO on a write or
 * an fdatasync (offline, nothing acknowledged), a full disk (stall, reads
 * go on, resume once there is space), a torn write (recovery cuts it).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/bufpool.h"
#include "storage/limits.h"
#include "storage/log.h"
#include "storage/sio.h"
#include "test_util.h"

static struct plog *open_log(struct tu_fixture *f, const struct log_config *cfg)
{
	return tu_open(f->dir, cfg);
}

static int advances;

static void count_advance(void *arg, struct plog *l)
{
	(void)l;
	(*(int *)arg)++;
}

/* Read back every record from 0 to the HW and check record i's value is
 * (i % 251) repeated: what append_n writes. Returns the records seen. */
static int64_t read_all_check(struct plog *l)
{
	size_t cap = 4 << 20;
	uint8_t *buf = malloc(cap);
	int64_t off = 0, hw = plog_high_watermark(l);
	while (off < hw) {
		struct plog_read_result rr;
		assert_int_equal(plog_read(l, off, (int32_t)cap, buf, cap, &rr), 0);
		assert_true(rr.len > 0);
		size_t pos = 0;
		while (pos < rr.len) {
			struct batch_hdr h;
			int n = batch_parse(buf + pos, rr.len - pos, &h);
			assert_true(n > 0);
			assert_int_equal(batch_validate(buf + pos, (size_t)n, &h), n);
			if (h.base_offset + h.last_offset_delta >= off)
				off = h.base_offset + h.last_offset_delta + 1;
			pos += (size_t)n;
		}
	}
	free(buf);
	assert_int_equal(off, hw);
	return off;
}

/* Append n one-record batches of varying sizes (value bytes from sizes[],
 * cycled), driving the log every `every` appends. */
static void append_n(struct tu_fixture *f, struct plog *l, int n, const int32_t *sizes, int nsizes,
		     int every, int64_t now)
{
	for (int i = 0; i < n; i++) {
		struct tu_batch_spec spec = tu_spec(1, 1000 + i, sizes[i % nsizes]);
		spec.fill = (uint8_t)(i % 251);
		struct plog_append_result res;
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		if ((i + 1) % every == 0)
			tu_drive(&f->ring, l, now);
	}
	tu_drive(&f->ring, l, now);
}

/* Sizes that cut pages and buffers everywhere: tiny, page-ish, larger than
 * a write buffer (a buffer of its own). */
static const int32_t odd_sizes[] = { 1, 37, 4000, 4096, 5000, 70000, 300000, 13, 8191 };

static void direct_layout_reads_back(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, NULL, &cfg);
	struct plog *l = open_log(f, &cfg);
	/* One append per chain, then several per chain: partial pages are
	 * rewritten by the next chain, and handed between buffers within
	 * one. Small segments: rolls and seals in between. */
	append_n(f, l, 60, odd_sizes, 9, 1, 0);
	append_n(f, l, 90, odd_sizes, 9, 7, 0);
	assert_int_equal(plog_high_watermark(l), 150);
	assert_int_equal(read_all_check(l), 150);
	/* This filesystem takes O_DIRECT (ext4 and xfs do; tmpfs would
	 * fall back, and this test would then check the buffered path). */
	if (io.stats.direct_fallbacks == 0)
		assert_true(io.stats.direct_writes > 0);
	assert_true(plog_stats(l)->rolls > 0);
	plog_close(l);
	/* Closed cleanly: every file ends at its last batch. */
	l = open_log(f, &cfg);
	assert_true(plog_stats(l)->recovery_clean);
	assert_int_equal(plog_stats(l)->recovery_truncated_bytes, 0);
	assert_int_equal(read_all_check(l), 150);
	append_n(f, l, 20, odd_sizes, 9, 3, 0);
	assert_int_equal(read_all_check(l), 170);
	plog_close(l);
	sio_destroy(&io);
}

/* Registered buffers and files are used when the ring allows them. */
static void registered_buffers_and_files(void **state)
{
	struct tu_fixture *f = *state;
	struct bufpool pool;
	assert_int_equal(bufpool_init(&pool, 32 * WBUF_BYTES, HUGEMEM_OFF), 0);
	struct sio io;
	struct log_config cfg = tu_config(8 << 20, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, NULL, &cfg);
	int reg = sio_register_buffers(&io, pool.mem.base, pool.mem.bytes);
	cfg.pool = &pool;
	struct plog *l = open_log(f, &cfg);
	/* Batches larger than a buffer span several (from the tail's free
	 * space on). */
	static const int32_t sizes[] = { 100, 3000, 20000, 600000, 7 };
	append_n(f, l, 40, sizes, 5, 4, 0);
	assert_int_equal(read_all_check(l), 40);
	assert_int_equal(pool.oversize_bytes, 0);
	if (reg == 0)
		assert_true(io.stats.fixed_buf_writes > 0);
	if (io.slot_free != NULL) /* the kernel took a file table */
		assert_true(io.stats.fixed_file_ops > 0);
	plog_close(l);
	sio_destroy(&io);
	bufpool_destroy(&pool);
}

/* Pre-allocation: the active file is reserved ahead of the data; a clean
 * close cuts it to the data; so does recovery after a crash. */
static void preallocation_and_crash(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(8 << 20, 4096, FLUSH_ALWAYS);
	cfg.preallocate_bytes = 1 << 20;
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, 0, ".log");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The crash: append, make durable, exit without closing. */
		struct io_uring ring;
		if (io_uring_queue_init(64, &ring, 0) != 0)
			_exit(2);
		int err;
		struct plog *l = plog_open(f->dir, &cfg, &err);
		if (l == NULL)
			_exit(3);
		static const int32_t sizes[] = { 100, 3000, 5000, 37 };
		for (int i = 0; i < 30; i++) {
			struct tu_batch_spec spec = tu_spec(1, 1000 + i, sizes[i % 4]);
			spec.fill = (uint8_t)(i % 251);
			struct plog_append_result res;
			if (tu_append_spec(l, &spec, &res) != 0)
				_exit(4);
			tu_drive(&ring, l, 0);
		}
		if (plog_high_watermark(l) != 30 || plog_stats(l)->preallocated_bytes < (1 << 20))
			_exit(5);
		if (tu_file_size(path) < (1 << 20))
			_exit(6); /* reserved ahead of the data */
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(tu_file_size(path) >= 1 << 20);
	struct plog *l = open_log(f, &cfg);
	assert_false(plog_stats(l)->recovery_clean);
	assert_int_equal(plog_high_watermark(l), 30);
	assert_int_equal(read_all_check(l), 30);
	int64_t data = tu_file_size(path);
	assert_true(data < 1 << 20); /* the zeros after the data are gone */
	static const int32_t more[] = { 700, 12 };
	append_n(f, l, 10, more, 2, 2, 0);
	assert_int_equal(read_all_check(l), 40);
	plog_close(l);
	assert_true(tu_file_size(path) > data && tu_file_size(path) < 1 << 20);
}

/* Pre-allocation by zeros (a slowly written log): the zeros never land on
 * data, even when one chain writes past the reserved end (a 300 KB batch
 * against 64 KiB steps), and a crash or a close leaves every record. */
static void zero_preallocation_keeps_data(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(4 << 20, 4096, FLUSH_ALWAYS);
	cfg.preallocate_bytes = SIO_ZERO_CHUNK_BYTES;
	cfg.preallocate_zero_max_rate = INT64_MAX; /* any rate is slow */
	tu_sio(&io, &f->ring, NULL, &cfg);
	struct plog *l = open_log(f, &cfg);
	int64_t now = 0;
	for (int i = 0; i < 80; i++) {
		struct tu_batch_spec spec = tu_spec(1, 1000 + i, odd_sizes[i % 9]);
		spec.fill = (uint8_t)(i % 251);
		struct plog_append_result res;
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		if (i % 3 == 2)
			tu_drive(&f->ring, l, now += 1000);
	}
	tu_drive(&f->ring, l, now += 1000);
	assert_int_equal(plog_high_watermark(l), 80);
	assert_int_equal(read_all_check(l), 80);
	if (io.stats.direct_fallbacks == 0)
		assert_true(io.stats.zero_writes > 0 && io.stats.zeroed_bytes > 0);
	else
		assert_int_equal(io.stats.zero_writes, 0); /* buffered: fallocate */
	plog_close(l);
	l = open_log(f, &cfg);
	assert_int_equal(read_all_check(l), 80);
	plog_close(l);
	sio_destroy(&io);
}

static void segment_ms_rolls(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	cfg.segment_ms = 1000;
	struct plog *l = open_log(f, &cfg);
	static const int32_t sizes[] = { 10 };
	append_n(f, l, 3, sizes, 1, 1, 100);
	assert_int_equal(plog_stats(l)->rolls, 0);
	/* Time as plog_append sees it: the first append was at now_ms 0
	 * (tu_append passes 0), so a later clock is not what rolls; only
	 * an append with now_ms past the age does. */
	struct tu_batch_spec spec = tu_spec(1, 5000, 10);
	struct plog_append_result res;
	uint8_t buf[256];
	size_t len = tu_batch(buf, sizeof(buf), &spec);
	struct batch_hdr h;
	assert_int_equal(batch_validate(buf, len, &h), (int)len);
	assert_int_equal(plog_append(l, buf, len, &h, 0, 999, &res), 0);
	assert_int_equal(plog_stats(l)->rolls, 0);
	assert_int_equal(plog_append(l, buf, len, &h, 0, 1000, &res), 0);
	assert_int_equal(plog_stats(l)->rolls, 1);
	assert_int_equal(res.base_offset, 4);
	tu_drive(&f->ring, l, 1000);
	assert_int_equal(tu_count_files(f->dir, ".log"), 2);
	assert_int_equal(read_all_check(l), 5);
	plog_close(l);
}

static void fault_spec_parsing(void **state)
{
	(void)state;
	char why[128];
	assert_int_equal(sio_faults_parse("eio:write", NULL, 8, why, sizeof(why)), 1);
	assert_int_equal(sio_faults_parse("eio:fsync:file=log:after=3:count=1;enospc:write:while=/x",
					  NULL, 8, why, sizeof(why)), 2);
	assert_int_equal(sio_faults_parse("torn:write:file=index", NULL, 8, why, sizeof(why)), 1);
	assert_int_equal(sio_faults_parse("einval:open:file=log", NULL, 8, why, sizeof(why)), 1);
	assert_int_equal(sio_faults_parse("eio:open", NULL, 8, why, sizeof(why)), 1);
	assert_int_equal(sio_faults_parse("einval:write", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("enospc:open", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("boom:write", NULL, 8, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "boom"));
	assert_int_equal(sio_faults_parse("eio:read", NULL, 8, why, sizeof(why)), 1);
	assert_int_equal(sio_faults_parse("short:read:file=log:count=2", NULL, 8, why, sizeof(why)),
			 1);
	assert_int_equal(sio_faults_parse("enospc:read", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("torn:read", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("einval:read", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("short:fsync", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("torn:fsync", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("eio:write:after=x", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("eio:write:color=red", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("", NULL, 8, why, sizeof(why)), -1);
	assert_int_equal(sio_faults_parse("eio:write;eio:write;eio:write", NULL, 2, why,
					  sizeof(why)), -1);
}

/* fdatasync fails: what was written is not known to be durable, so none
 * of it is acknowledged and the log goes offline. */
static void fsync_error_acknowledges_nothing(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, "eio:fsync:file=log:after=2", &cfg);
	struct plog *l = open_log(f, &cfg);
	advances = 0;
	plog_set_listener(l, count_advance, &advances);
	static const int32_t sizes[] = { 500 };
	append_n(f, l, 2, sizes, 1, 1, 0); /* two chains, two good syncs */
	assert_int_equal(plog_high_watermark(l), 2);
	struct tu_batch_spec spec = tu_spec(3, 1, 100);
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_error(l), -EIO);
	assert_int_equal(plog_high_watermark(l), 2); /* the third batch: never */
	assert_int_equal(advances, 3);               /* two advances, then offline */
	assert_int_equal(tu_append_spec(l, &spec, &res), PLOG_ERR_STORAGE);
	uint8_t got[4096];
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 0, 4096, got, sizeof(got), &rr), -EIO);
	plog_close(l);
	sio_destroy(&io);
	/* Reopened (a restart): the batches acknowledged are there. */
	cfg.io = NULL;
	l = open_log(f, &cfg);
	assert_true(plog_high_watermark(l) >= 2);
	plog_close(l);
}

/* The disk fills (injected ENOSPC while a flag file exists): appends are
 * refused, reads go on, the write is retried and everything resumes once
 * the flag is gone. Nothing is lost or written twice. */
static void enospc_stalls_then_resumes(void **state)
{
	struct tu_fixture *f = *state;
	char flag[4200], spec_text[4400];
	snprintf(flag, sizeof(flag), "%s/full", f->dir);
	snprintf(spec_text, sizeof(spec_text), "enospc:write:file=log:while=%s", flag);
	struct sio io;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, spec_text, &cfg);
	cfg.retry_ms = 50;
	struct plog *l = open_log(f, &cfg);
	advances = 0;
	plog_set_listener(l, count_advance, &advances);
	append_n(f, l, 5, odd_sizes, 9, 1, 0);
	assert_int_equal(plog_high_watermark(l), 5);

	int fd = open(flag, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	struct tu_batch_spec spec = tu_spec(2, 1, 3000);
	spec.fill = 7;
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 10);
	assert_true(plog_write_stalled(l));
	assert_int_equal(plog_error(l), 0);
	assert_int_equal(plog_high_watermark(l), 5);
	assert_int_equal(plog_sync_deadline_ms(l), 60);
	assert_int_equal(tu_append_spec(l, &spec, &res), PLOG_ERR_NO_SPACE);
	assert_int_equal(read_all_check(l), 5); /* consumers keep reading */
	/* Still full at the retry: stalls again, later deadline. */
	tu_drive(&f->ring, l, 60);
	assert_true(plog_write_stalled(l));
	assert_int_equal(plog_sync_deadline_ms(l), 110);
	assert_int_equal(plog_stats(l)->write_retries, 2);

	unlink(flag);
	tu_drive(&f->ring, l, 100); /* not due yet */
	assert_true(plog_write_stalled(l));
	tu_drive(&f->ring, l, 110);
	assert_false(plog_write_stalled(l));
	assert_int_equal(plog_high_watermark(l), 7);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 120);
	assert_int_equal(plog_high_watermark(l), 9);
	assert_int_equal(read_all_check(l), 9);
	plog_close(l);
	sio_destroy(&io);
	cfg.io = NULL; /* reopened (a restart) on plain operations */
	l = open_log(f, &cfg);
	assert_int_equal(read_all_check(l), 9);
	plog_close(l);
}

/* A real short write (RLIMIT_FSIZE cuts it) is a full disk too. */
static void short_write_stalls(void **state)
{
	struct tu_fixture *f = *state;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	cfg.retry_ms = 10;
	struct plog *l = open_log(f, &cfg);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 8192;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct tu_batch_spec spec = tu_spec(4, 1, 5000);
	struct plog_append_result res;
	int rc = tu_append_spec(l, &spec, &res);
	tu_drive(&f->ring, l, 0);
	bool stalled = plog_write_stalled(l);
	int err = plog_error(l);
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(rc, 0);
	assert_true(stalled);
	assert_int_equal(err, 0);
	assert_int_equal(plog_high_watermark(l), 0);
	tu_drive(&f->ring, l, 10);
	assert_false(plog_write_stalled(l));
	assert_int_equal(plog_high_watermark(l), 4);
	assert_int_equal(read_all_check(l), 4);
	plog_close(l);
}

/* A write torn by the device (half of it lands, then EIO): the log goes
 * offline at once; reopened, recovery cuts the torn batch and keeps every
 * acknowledged one. */
static void torn_write_is_cut_at_recovery(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(1 << 20, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, "torn:write:file=log:after=4:count=1", &cfg);
	struct plog *l = open_log(f, &cfg);
	static const int32_t sizes[] = { 9000 };
	append_n(f, l, 4, sizes, 1, 1, 0);
	assert_int_equal(plog_high_watermark(l), 4);
	struct tu_batch_spec spec = tu_spec(1, 1, 30000);
	struct plog_append_result res;
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_error(l), -EIO);
	assert_int_equal(plog_high_watermark(l), 4);
	plog_close(l);
	sio_destroy(&io);
	cfg.io = NULL; /* reopened (a restart) on plain operations */
	l = open_log(f, &cfg);
	assert_int_equal(plog_high_watermark(l), 4);
	assert_true(plog_stats(l)->recovery_truncated_bytes > 0);
	assert_int_equal(read_all_check(l), 4);
	assert_int_equal(tu_append_spec(l, &spec, &res), 0);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(read_all_check(l), 5);
	plog_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(direct_layout_reads_back, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(registered_buffers_and_files, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(preallocation_and_crash, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(zero_preallocation_keeps_data, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(segment_ms_rolls, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test(fault_spec_parsing),
		cmocka_unit_test_setup_teardown(fsync_error_acknowledges_nothing, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(enospc_stalls_then_resumes, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(short_write_stalls, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(torn_write_is_cut_at_recovery, tu_fixture_setup, tu_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

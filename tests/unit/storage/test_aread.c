/*
 * test_aread: asynchronous reads (plog_read_disk) through the storage
 * backend. Into registered memory (any of several regions in the ring's
 * one table) they are READ_FIXED, elsewhere plain reads, with the same
 * bytes either way; the fault rules reach them (EIO, short reads).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/bufpool.h"
#include "storage/limits.h"
#include "storage/log.h"
#include "storage/sio.h"
#include "test_util.h"

#define WINDOW (256 * 1024)
#define RECORDS 300

/* RECORDS one-record batches, record i holding value bytes (i % 251)
 * of sizes that cut pages everywhere, written O_DIRECT (so not in the
 * page cache) in small segments: reads cross segment ends. */
static struct plog *fill_log(struct tu_fixture *f, struct log_config *cfg)
{
	static const int32_t sizes[] = { 900, 3000, 37, 5000, 1200 };
	struct plog *l = tu_open(f->dir, cfg);
	for (int i = 0; i < RECORDS; i++) {
		struct tu_batch_spec spec = tu_spec(1, 1000 + i, sizes[i % 5]);
		spec.fill = (uint8_t)(i % 251);
		struct plog_append_result res;
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		if (i % 7 == 6)
			tu_drive(&f->ring, l, 0);
	}
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), RECORDS);
	return l;
}

static void read_done(struct plog_aread *r)
{
	*(bool *)r->arg = true;
}

/* plog_read_disk of offset into buf[0 .. cap), driven to its end on the
 * fixture's ring. Returns r->err (or plog_read_disk's answer when it did
 * not go to the ring). */
static int aread(struct tu_fixture *f, struct plog *l, struct plog_aread *r, int64_t offset,
		 uint8_t *buf, size_t cap)
{
	bool done = false;
	*r = (struct plog_aread){ .done = read_done, .arg = &done, .offset = offset,
				  .max_bytes = (int32_t)cap, .buf = buf, .cap = cap };
	int rc = plog_read_disk(l, r);
	if (rc != 1)
		return rc;
	while (!done) {
		struct io_uring_cqe *cqe;
		assert_true(io_uring_submit_and_wait(&f->ring, 1) >= 0);
		unsigned head, n = 0;
		io_uring_for_each_cqe(&f->ring, head, cqe) {
			uring_op_dispatch(cqe);
			n++;
		}
		io_uring_cq_advance(&f->ring, n);
	}
	return r->err;
}

/* The batches r brought: whole, valid, in order from the one holding
 * *offset, each record's bytes as fill_log wrote them. Moves *offset past
 * them; returns how many records. */
static int check_batches(const struct plog_aread *r, int64_t *offset)
{
	const uint8_t *p = r->buf + r->skip;
	size_t pos = 0;
	int recs = 0;
	while (pos < r->res.len) {
		struct batch_hdr h;
		int n = batch_parse(p + pos, r->res.len - pos, &h);
		assert_true(n > 0);
		assert_int_equal(batch_validate(p + pos, (size_t)n, &h), n);
		assert_true(h.base_offset <= *offset || recs > 0);
		assert_int_equal(h.base_offset, recs > 0 ? *offset : h.base_offset);
		/* The value is the batch's last bytes (no headers). */
		int64_t i = h.base_offset;
		assert_int_equal(p[pos + (size_t)n - 2], (uint8_t)(i % 251));
		*offset = h.base_offset + h.last_offset_delta + 1;
		pos += (size_t)n;
		recs++;
	}
	assert_int_equal(pos, r->res.len);
	return recs;
}

/* Every record once, in order, reading window after window into buf. */
static void read_everything(struct tu_fixture *f, struct plog *l, uint8_t *buf, size_t cap)
{
	int64_t off = 0;
	while (off < RECORDS) {
		struct plog_aread r;
		assert_int_equal(aread(f, l, &r, off, buf, cap), 0);
		assert_true(r.res.len > 0);
		check_batches(&r, &off);
	}
	assert_int_equal(off, RECORDS);
}

/* Two pools registered as one table: reads into windows of either are
 * READ_FIXED (into the right slot, or the bytes would be wrong) and give
 * what plain reads into malloc'ed memory give. */
static void fixed_reads_into_registered_windows(void **state)
{
	struct tu_fixture *f = *state;
	struct bufpool a, b;
	assert_int_equal(bufpool_init_sized(&a, 2 * WINDOW, WINDOW, HUGEMEM_OFF), 0);
	assert_int_equal(bufpool_init_sized(&b, 2 * WINDOW, WINDOW, HUGEMEM_OFF), 0);
	struct sio io;
	struct log_config cfg = tu_config(256 * 1024, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, NULL, &cfg);
	struct sio_region regions[2] = { { a.mem.base, a.mem.bytes, 99 },
					 { b.mem.base, b.mem.bytes, 99 } };
	/* 1 MiB: within even an unprivileged RLIMIT_MEMLOCK (8 MiB). */
	assert_int_equal(sio_register_regions(&io, regions, 2), 0);
	assert_int_equal(regions[0].slot, 0);
	assert_int_equal(regions[1].slot, 1);
	struct plog *l = fill_log(f, &cfg);

	struct wbuf *wa = bufpool_get(&a, WINDOW), *wb = bufpool_get(&b, WINDOW);
	read_everything(f, l, wb->data, WINDOW);
	read_everything(f, l, wa->data, WINDOW);
	uint64_t fixed = io.stats.fixed_buf_reads, reads = io.stats.reads;
	assert_true(reads > 0);
	assert_int_equal(fixed, reads); /* every one of them */
	/* Not registered memory: plain reads, the same records. */
	uint8_t *plain = aligned_alloc(4096, WINDOW);
	read_everything(f, l, plain, WINDOW);
	assert_int_equal(io.stats.fixed_buf_reads, fixed);
	assert_true(io.stats.reads > reads);
	free(plain);
	bufpool_put(&a, wa);
	bufpool_put(&b, wb);
	plog_close(l);
	sio_destroy(&io);
	assert_int_equal(io.n_regs, 0);
	bufpool_destroy(&a);
	bufpool_destroy(&b);
}

/* Registration replaced: the old regions are no longer used. */
static void registration_is_replaced(void **state)
{
	struct tu_fixture *f = *state;
	struct bufpool a;
	assert_int_equal(bufpool_init_sized(&a, WINDOW, WINDOW, HUGEMEM_OFF), 0);
	uint8_t *other = aligned_alloc(4096, WINDOW);
	struct sio io;
	struct log_config cfg = tu_config(256 * 1024, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, NULL, &cfg);
	struct plog *l = fill_log(f, &cfg);
	struct wbuf *w = bufpool_get(&a, WINDOW);
	assert_int_equal(sio_register_buffers(&io, a.mem.base, a.mem.bytes), 0);
	struct sio_region r = { other, WINDOW, 0 };
	assert_int_equal(sio_register_regions(&io, &r, 1), 0);
	read_everything(f, l, w->data, WINDOW);
	assert_int_equal(io.stats.fixed_buf_reads, 0);
	read_everything(f, l, other, WINDOW);
	assert_int_equal(io.stats.fixed_buf_reads, io.stats.reads / 2);
	struct sio_region none = { other, 0, 0 };
	assert_int_equal(sio_register_regions(&io, &none, 1), -EINVAL);
	assert_int_equal(io.n_regs, 0);
	bufpool_put(&a, w);
	plog_close(l);
	sio_destroy(&io);
	bufpool_destroy(&a);
	free(other);
}

/* EIO on a read: the read fails with it, the log stays online (a read
 * error takes nothing offline), and the next read succeeds. */
static void read_error_fails_that_read(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(256 * 1024, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, "eio:read:file=log:count=1", &cfg);
	struct plog *l = fill_log(f, &cfg);
	uint8_t *buf = aligned_alloc(4096, WINDOW);
	struct plog_aread r;
	assert_int_equal(aread(f, l, &r, 10, buf, WINDOW), -EIO);
	assert_int_equal(r.res.len, 0);
	assert_int_equal(plog_error(l), 0);
	assert_int_equal(io.stats.faults_injected, 1);
	read_everything(f, l, buf, WINDOW);
	free(buf);
	plog_close(l);
	sio_destroy(&io);
}

/* Reads that bring half their bytes (a few in a row, then whole ones
 * again): the reader still answers whole, valid batches, every record
 * once. */
static void short_reads_still_give_whole_batches(void **state)
{
	struct tu_fixture *f = *state;
	struct sio io;
	struct log_config cfg = tu_config(256 * 1024, 4096, FLUSH_ALWAYS);
	tu_sio(&io, &f->ring, "short:read:count=5", &cfg);
	struct plog *l = fill_log(f, &cfg);
	uint8_t *buf = aligned_alloc(4096, WINDOW);
	read_everything(f, l, buf, WINDOW);
	assert_int_equal(io.stats.faults_injected, 5);
	free(buf);
	plog_close(l);
	sio_destroy(&io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(fixed_reads_into_registered_windows, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(registration_is_replaced, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(read_error_fails_that_read, tu_fixture_setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(short_reads_still_give_whole_batches, tu_fixture_setup, tu_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

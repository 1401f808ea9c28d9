/*
 * The log drawing its write buffers from a shard's pool: an empty pool
 * turns appends away with PLOG_ERR_BUFFER_FULL (changing nothing, not even
 * rolling), buffers come back when their writes complete, when the log
 * closes and when it goes offline; logs share one pool; oversize batches
 * are counted apart; with a warm pool, appending allocates nothing.
 * Anonymous memory (HUGEMEM_OFF): the carving is the same on hugepages,
 * and test_hugemem owns those.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/bufpool.h"
#include "storage/limits.h"
#include "storage/log.h"
#include "storage/sio.h"
#include "test_util.h"

/* A batch of one 100 KiB record: two fit a write buffer, three do not. */
#define VALUE_BYTES (100 * 1024)
#define BATCH_CAP (VALUE_BYTES + 256)
_Static_assert(2 * BATCH_CAP <= WBUF_BYTES && 3 * VALUE_BYTES > WBUF_BYTES, "two per buffer");

struct fixture {
	char *dir;
	struct io_uring ring;
	struct bufpool pool;
	uint8_t *batch;
	size_t len;
};

static int setup_bufs(void **state, uint32_t bufs)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	if (io_uring_queue_init(64, &f->ring, 0) != 0)
		return -1;
	if (bufpool_init(&f->pool, (size_t)bufs * WBUF_BYTES, HUGEMEM_OFF) != 0)
		return -1;
	f->batch = malloc(BATCH_CAP);
	struct tu_batch_spec spec = tu_spec(1, 1, VALUE_BYTES);
	f->len = tu_batch(f->batch, BATCH_CAP, &spec);
	*state = f;
	return 0;
}

static int setup2(void **state)
{
	return setup_bufs(state, 2);
}

static int setup4(void **state)
{
	return setup_bufs(state, 4);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	/* Every buffer is back, or bufpool_destroy aborts. */
	bufpool_destroy(&f->pool);
	io_uring_queue_exit(&f->ring);
	tu_rm_rf(f->dir);
	free(f->batch);
	free(f->dir);
	free(f);
	return 0;
}

static struct plog *open_pooled_io(struct fixture *f, const char *sub, int64_t segment_bytes,
				   struct sio *io)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%s", f->dir, sub);
	struct log_config cfg = tu_config(segment_bytes, 4096, FLUSH_ALWAYS);
	cfg.pool = &f->pool;
	cfg.io = io;
	int err = -1;
	struct plog *l = plog_open(dir, &cfg, &err);
	assert_non_null(l);
	assert_int_equal(err, 0);
	return l;
}

static struct plog *open_pooled(struct fixture *f, const char *sub, int64_t segment_bytes)
{
	return open_pooled_io(f, sub, segment_bytes, NULL);
}

static int append(struct fixture *f, struct plog *l)
{
	struct plog_append_result res;
	return tu_append(l, f->batch, f->len, &res);
}

/* Everything the log stored, read back, is the batches appended. */
static void expect_contents(struct plog *l, const struct fixture *f, int n)
{
	size_t cap = (size_t)n * f->len;
	uint8_t *got = malloc(cap), *want = malloc(f->len);
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 0, INT32_MAX, got, cap, &rr), 0);
	assert_int_equal(rr.len, cap);
	for (int i = 0; i < n; i++) {
		memcpy(want, f->batch, f->len);
		batch_set_base_offset(want, i);
		batch_set_leader_epoch(want, 7);
		assert_memory_equal(got + (size_t)i * f->len, want, f->len);
	}
	free(got);
	free(want);
}

static void exhaustion_then_appends_resume(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_pooled(f, "p", 64 << 20);
	for (int i = 0; i < 8; i++)
		assert_int_equal(append(f, l), 0);
	assert_int_equal(bufpool_free_count(&f->pool), 0);
	assert_int_equal(plog_unwritten_bytes(l), 8 * f->len);
	/* Pool empty: turned away, retriable, nothing changed. */
	assert_int_equal(append(f, l), PLOG_ERR_BUFFER_FULL);
	assert_int_equal(plog_end_offset(l), 8);
	assert_int_equal(plog_unwritten_bytes(l), 8 * f->len);
	assert_int_equal(f->pool.exhausted, 1);

	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 8);
	assert_int_equal(bufpool_free_count(&f->pool), 4);
	assert_int_equal(plog_unwritten_bytes(l), 0);
	assert_int_equal(append(f, l), 0);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(bufpool_free_count(&f->pool), 4);
	expect_contents(l, f, 9);
	plog_close(l);
}

/* The buffer is taken before a roll, so an empty pool does not roll. */
static void empty_pool_does_not_roll(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_pooled(f, "p", 2 * (int64_t)f->len);
	for (int i = 0; i < 4; i++)
		assert_int_equal(append(f, l), 0);
	assert_int_equal(plog_stats(l)->rolls, 1);
	assert_int_equal(bufpool_free_count(&f->pool), 0);
	assert_int_equal(append(f, l), PLOG_ERR_BUFFER_FULL);
	assert_int_equal(plog_stats(l)->rolls, 1);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(append(f, l), 0);
	assert_int_equal(plog_stats(l)->rolls, 2);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 5);
	assert_int_equal(bufpool_free_count(&f->pool), 2);
	plog_close(l);
}

/* One log holding every buffer turns another's first append away. */
static void logs_share_the_pool(void **state)
{
	struct fixture *f = *state;
	struct plog *a = open_pooled(f, "a", 64 << 20), *b = open_pooled(f, "b", 64 << 20);
	for (int i = 0; i < 4; i++)
		assert_int_equal(append(f, a), 0);
	assert_int_equal(append(f, b), PLOG_ERR_BUFFER_FULL);
	assert_int_equal(plog_unwritten_bytes(b), 0);
	tu_drive(&f->ring, a, 0);
	assert_int_equal(append(f, b), 0);
	assert_int_equal(bufpool_free_count(&f->pool), 1);
	tu_drive(&f->ring, b, 0);
	expect_contents(b, f, 1);
	plog_close(a);
	plog_close(b);
}

/* A batch larger than a pool buffer gets its own, counted apart. */
/* A batch larger than a buffer spans pool buffers (no memory of its own),
 * written page-aligned, and reads back whole. */
static void large_batch_spans_buffers(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_pooled(f, "p", 64 << 20);
	assert_int_equal(append(f, l), 0); /* a small one first: the big one starts mid-page */
	size_t cap = 3 * WBUF_BYTES;
	uint8_t *big = malloc(cap);
	struct tu_batch_spec spec = tu_spec(1, 1, 2 * WBUF_BYTES);
	size_t len = tu_batch(big, cap, &spec);
	struct plog_append_result res;
	assert_int_equal(tu_append(l, big, len, &res), 0);
	assert_int_equal(f->pool.oversize_bytes, 0);
	assert_int_equal(bufpool_free_count(&f->pool), 1); /* tail + 2 fresh of 4 */
	tu_drive(&f->ring, l, 0);
	assert_int_equal(bufpool_free_count(&f->pool), 4);
	assert_int_equal(plog_high_watermark(l), 2);
	uint8_t *got = malloc(cap);
	struct plog_read_result rr;
	assert_int_equal(plog_read(l, 1, INT32_MAX, got, cap, &rr), 0);
	assert_int_equal(rr.len, len);
	batch_set_base_offset(big, 1);
	batch_set_leader_epoch(big, 7);
	assert_memory_equal(got, big, len);
	/* Too big for what the pool has left: turned away, nothing changed. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(append(f, l), 0); /* two per buffer: one left free */
	assert_int_equal(bufpool_free_count(&f->pool), 1);
	assert_int_equal(tu_append(l, big, len, &res), PLOG_ERR_BUFFER_FULL);
	assert_int_equal(plog_end_offset(l), 7);
	assert_int_equal(bufpool_free_count(&f->pool), 1);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(tu_append(l, big, len, &res), 0);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(plog_high_watermark(l), 8);
	free(got);
	free(big);
	plog_close(l);
}

/* Closing writes what is pending and gives the buffers back. */
static void close_returns_buffers(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_pooled(f, "p", 64 << 20);
	for (int i = 0; i < 3; i++)
		assert_int_equal(append(f, l), 0);
	assert_int_equal(bufpool_free_count(&f->pool), 2);
	plog_close(l);
	assert_int_equal(bufpool_free_count(&f->pool), 4);
	l = open_pooled(f, "p", 64 << 20);
	assert_int_equal(plog_end_offset(l), 3);
	expect_contents(l, f, 3);
	plog_close(l);
}

/* An offline log writes nothing more: its buffers go back at once, with
 * the data appended after the failed write. */
static void offline_log_returns_buffers(void **state)
{
	struct fixture *f = *state;
	struct sio io;
	struct sio_config sc = { .direct = true, .faults = "eio:write:file=log" };
	assert_int_equal(sio_init(&io, &f->ring, &sc), 0);
	struct plog *l = open_pooled_io(f, "p", 64 << 20, &io);
	int rc = append(f, l), queued = plog_flush(l, &f->ring, 0);
	for (int i = 0; i < 3; i++)
		rc |= append(f, l); /* pending behind the write */
	uint32_t free_during = bufpool_free_count(&f->pool);
	tu_drive(&f->ring, l, 0);
	assert_int_equal(rc, 0);
	assert_int_equal(queued, 2);
	assert_int_equal(free_during, 1);
	assert_true(plog_error(l) < 0);
	assert_int_equal(bufpool_free_count(&f->pool), 4);
	assert_int_equal(plog_unwritten_bytes(l), 0);
	assert_int_equal(append(f, l), PLOG_ERR_STORAGE);
	plog_close(l);
	sio_destroy(&io);
}

/* A steady stream: every turn's buffers come back, none runs short. */
static void steady_stream_recycles(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_pooled(f, "p", 8 << 20);
	for (int turn = 0; turn < 100; turn++) {
		for (int i = 0; i < 3; i++)
			assert_int_equal(append(f, l), 0);
		tu_drive(&f->ring, l, turn);
		assert_int_equal(bufpool_free_count(&f->pool), 4);
	}
	assert_int_equal(f->pool.exhausted, 0);
	assert_int_equal(plog_high_watermark(l), 300);
	assert_true(plog_stats(l)->rolls > 0);
	plog_close(l);
}

/* Allocations made while counting is on. This binary is linked with
 * -Wl,--wrap for these (see meson.build), so every call from the storage
 * library comes through here. */
static long allocs;
static bool counting;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);

void *__wrap_malloc(size_t n)
{
	allocs += counting;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	allocs += counting;
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	allocs += counting;
	return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	allocs += counting;
	return __real_aligned_alloc(align, n);
}

/* The point of the pool: once warm, appending and writing allocate
 * nothing, headers included (no segment roll in between: a roll is a new
 * segment, and allocates). */
static void steady_stream_allocates_nothing(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_pooled(f, "p", 64 << 20);
	for (int turn = 0; turn < 100; turn++) {
		counting = turn >= 10;
		for (int i = 0; i < 3; i++)
			assert_int_equal(append(f, l), 0);
		tu_drive(&f->ring, l, turn);
	}
	counting = false;
	assert_int_equal(allocs, 0);
	assert_int_equal(plog_stats(l)->rolls, 0);
	plog_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(exhaustion_then_appends_resume, setup4, teardown),
		cmocka_unit_test_setup_teardown(empty_pool_does_not_roll, setup2, teardown),
		cmocka_unit_test_setup_teardown(logs_share_the_pool, setup2, teardown),
		cmocka_unit_test_setup_teardown(large_batch_spans_buffers, setup4, teardown),
		cmocka_unit_test_setup_teardown(close_returns_buffers, setup4, teardown),
		cmocka_unit_test_setup_teardown(offline_log_returns_buffers, setup4, teardown),
		cmocka_unit_test_setup_teardown(steady_stream_recycles, setup4, teardown),
		cmocka_unit_test_setup_teardown(steady_stream_allocates_nothing, setup4, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

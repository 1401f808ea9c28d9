/*
 * The tail cache's lookup (log_cache.c): a read of any window of any
 * segment is served from the cached buffers exactly when they hold all of
 * it, with the bytes of the right buffers, however often the ring of
 * cached buffers has wrapped, when the pool evicts for another log, and
 * after buffers of one segment are dropped from the middle (a compaction
 * swap) or the oldest segment is deleted (retention).
 *
 * How it can tell: once the log is written, every segment file is
 * overwritten with 0xEE, so a window read from the file is all 0xEE and
 * one from the cache is the data. Which windows the cache holds is worked
 * out independently, from the pool's list of retained buffers.
 */
#include <errno.h>
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
#include "storage/bufpool.h"
#include "storage/log_int.h"
#include "test_util.h"

#define POOL_BUFS 16
#define RETAIN 6
#define JUNK 0xEE
#define WINDOW_MAX (400 * 1024) /* the largest read tried */

struct fixture {
	char *dir;
	struct io_uring ring;
	struct bufpool pool;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	if (io_uring_queue_init(64, &f->ring, 0) != 0)
		return -1;
	if (bufpool_init(&f->pool, (size_t)POOL_BUFS * WBUF_BYTES, HUGEMEM_OFF) != 0)
		return -1;
	f->pool.retain_max = RETAIN;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	bufpool_destroy(&f->pool); /* every buffer back, cached ones too */
	io_uring_queue_exit(&f->ring);
	tu_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static struct plog *open_log(struct fixture *f, const char *sub, int64_t segment_bytes)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%s", f->dir, sub);
	struct log_config cfg = tu_config(segment_bytes, 4096, FLUSH_ALWAYS);
	cfg.pool = &f->pool;
	return tu_open(dir, &cfg);
}

/* Batch i: one record of 3 to 63 KiB filled with i, so buffers hold
 * different numbers of batches and end at different places. */
static void append_one(struct plog *l, int i)
{
	struct tu_batch_spec spec = tu_spec(1, 1000 + i, 3000 + (i * 7919) % 60000);
	spec.fill = (uint8_t)(i % 200 + 1);
	struct plog_append_result res;
	uint8_t *buf = malloc(128 * 1024);
	size_t len = tu_batch(buf, 128 * 1024, &spec);
	assert_int_equal(tu_append(l, buf, len, &res), 0);
	free(buf);
}

/* Appends with a write after every `every` of them, or (every 0) after
 * one to seven, so that buffers are cut at many places. */
static void fill(struct fixture *f, struct plog *l, int from, int n, int every)
{
	for (int i = from; i < from + n; i++) {
		append_one(l, i);
		if (every > 0 ? (i + 1) % every == 0 : (i * 5) % 7 < 2)
			tu_drive(&f->ring, l, 0);
	}
	tu_drive(&f->ring, l, 0);
}

/* What the files hold, per segment (in l->segs order); then the files are
 * overwritten with JUNK. */
static uint8_t **truth_then_junk(struct plog *l)
{
	uint8_t **truth = calloc(l->n_segs, sizeof(*truth));
	for (uint32_t i = 0; i < l->n_segs; i++) {
		const struct segment *s = l->segs[i];
		truth[i] = malloc((size_t)s->readable + 1);
		assert_int_equal(pread_full(s->log_fd, truth[i], (size_t)s->readable, 0),
				 s->readable);
		uint8_t *junk = malloc((size_t)s->readable + 1);
		memset(junk, JUNK, (size_t)s->readable);
		assert_int_equal(pwrite(s->log_fd, junk, (size_t)s->readable, 0), s->readable);
		free(junk);
	}
	return truth;
}

static void truth_free(uint8_t **truth, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		free(truth[i]);
	free(truth);
}

/* Does the pool hold l's buffers covering [pos, pos + n) of s? A walk of
 * every retained buffer, apart from the log's own structure. */
static bool pool_covers(const struct bufpool *p, const struct plog *l, const struct segment *s,
			int64_t pos, size_t n)
{
	int64_t cur = pos, end = pos + (int64_t)n;
	bool moved = true;
	while (cur < end && moved) {
		moved = false;
		for (const struct wbuf *b = p->ret_head; b != NULL; b = b->ret_next) {
			int64_t lo = b->file_pos, hi = b->file_pos + b->len;
			if (b->owner == l && b->seg == s && lo <= cur && cur < hi) {
				cur = hi;
				moved = true;
			}
		}
	}
	return cur >= end;
}

/* Read windows all over segment k: each comes from the cache (the data)
 * exactly when the pool holds it, else from the file (JUNK). Returns how
 * many came from the cache. */
static int check_segment(struct fixture *f, struct plog *l, uint32_t k, const uint8_t *truth)
{
	static const size_t sizes[] = { 1, 100, 4096, 5000, 70000, 300000, WINDOW_MAX };
	const struct segment *s = l->segs[k];
	uint8_t *buf = malloc(WINDOW_MAX), *junk = malloc(WINDOW_MAX);
	memset(junk, JUNK, WINDOW_MAX);
	int hits = 0;
	for (int64_t pos = 0; pos < s->readable; pos += 12007) {
		for (size_t j = 0; j < sizeof(sizes) / sizeof(sizes[0]); j++) {
			size_t n = sizes[j];
			if (pos + (int64_t)n > s->readable)
				n = (size_t)(s->readable - pos);
			bool want = pool_covers(&f->pool, l, s, pos, n);
			uint64_t before = plog_stats(l)->cache_reads;
			assert_int_equal(plog_pread(l, s, buf, n, pos), (ssize_t)n);
			bool hit = plog_stats(l)->cache_reads == before + 1;
			assert_int_equal(hit, want);
			if (hit) {
				assert_memory_equal(buf, truth + pos, n);
				hits++;
			} else {
				assert_memory_equal(buf, junk, n);
			}
		}
	}
	free(buf);
	free(junk);
	return hits;
}

static int check_all(struct fixture *f, struct plog *l, uint8_t **truth, uint32_t first)
{
	int hits = 0;
	for (uint32_t k = 0; k < l->n_segs; k++)
		hits += check_segment(f, l, k, truth[first + k]);
	return hits;
}

/* The log's cached buffers: in file order, and as many as the pool
 * retains for it. */
static void expect_ring_in_order(const struct fixture *f, const struct plog *l)
{
	const struct plog_cache *c = &l->cache;
	uint32_t owned = 0;
	for (const struct wbuf *b = f->pool.ret_head; b != NULL; b = b->ret_next)
		owned += b->owner == l;
	assert_int_equal(c->n, owned);
	assert_true(c->n < c->cap);
	for (uint32_t i = 1; i < c->n; i++) {
		const struct wbuf *a = c->slot[(c->first + i - 1) % c->cap];
		const struct wbuf *b = c->slot[(c->first + i) % c->cap];
		if (a->seg == b->seg)
			assert_true(a->file_pos + a->len <= b->file_pos + b->len);
		else
			assert_true(a->seg->base_offset < b->seg->base_offset);
	}
}

static void finds_buffers_across_wraps(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, "a", 1 << 20);
	fill(f, l, 0, 150, 0);
	/* The ring went round many times, and holds the newest buffers. */
	assert_true(f->pool.evictions > 4 * (RETAIN + 1));
	assert_int_equal(l->cache.n, RETAIN);
	assert_true(l->n_segs >= 4);
	expect_ring_in_order(f, l);
	uint32_t n_segs = l->n_segs;
	uint8_t **truth = truth_then_junk(l);
	assert_true(check_all(f, l, truth, 0) > 0);
	plog_close(l);
	truth_free(truth, n_segs);
}

static void shared_pool_evicts_across_logs(void **state)
{
	struct fixture *f = *state;
	struct plog *a = open_log(f, "a", 1 << 20), *b = open_log(f, "b", 768 * 1024);
	for (int round = 0; round < 12; round++) {
		fill(f, a, round * 10, 7 + round % 4, 0);
		fill(f, b, round * 10 + 5, 3 + round % 5, 2);
	}
	expect_ring_in_order(f, a);
	expect_ring_in_order(f, b);
	assert_true(a->cache.n > 0 && b->cache.n > 0);
	assert_int_equal(a->cache.n + b->cache.n, RETAIN);
	uint32_t na = a->n_segs, nb = b->n_segs;
	uint8_t **ta = truth_then_junk(a), **tb = truth_then_junk(b);
	assert_true(check_all(f, a, ta, 0) > 0);
	assert_true(check_all(f, b, tb, 0) > 0);
	plog_close(a);
	plog_close(b);
	truth_free(ta, na);
	truth_free(tb, nb);
}

/* Segments of about two buffers (one write of ten batches each): the
 * ring spans three or four of them.
 * Dropping the middle one's buffers (as a compaction swap does) and then
 * deleting the oldest segment (retention) leaves the rest findable. */
static void drop_middle_then_retention(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, "a", 300 * 1024);
	fill(f, l, 0, 60, 10);
	expect_ring_in_order(f, l);
	const struct plog_cache *c = &l->cache;
	const struct segment *oldest = c->slot[c->first]->seg;
	const struct segment *newest = c->slot[(c->first + c->n - 1) % c->cap]->seg;
	assert_true(newest->base_offset > oldest->base_offset);
	uint32_t mid = 0;
	while (l->segs[mid] != oldest)
		mid++;
	mid++; /* a segment after the oldest cached one */
	assert_true(l->segs[mid] != newest);
	uint32_t n_segs = l->n_segs;
	uint8_t **truth = truth_then_junk(l);
	uint32_t before = c->n;
	plog_cache_drop(l, l->segs[mid]);
	assert_true(c->n < before);
	expect_ring_in_order(f, l);
	assert_true(check_all(f, l, truth, 0) > 0);
	assert_int_equal(check_segment(f, l, mid, truth[mid]), 0);

	/* Retention: every sealed segment up to the oldest cached one. */
	l->cfg.retention_bytes = 0;
	uint32_t gone = 0;
	while (l->segs[0] != oldest) {
		assert_int_equal(plog_retention_run(l, 0, 1, NULL, NULL), 1);
		gone++;
	}
	assert_int_equal(plog_retention_run(l, 0, 1, NULL, NULL), 1);
	gone++;
	expect_ring_in_order(f, l);
	assert_true(check_all(f, l, truth, gone) > 0);
	plog_close(l);
	truth_free(truth, n_segs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(finds_buffers_across_wraps, setup, teardown),
		cmocka_unit_test_setup_teardown(shared_pool_evicts_across_logs, setup, teardown),
		cmocka_unit_test_setup_teardown(drop_middle_then_retention, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * bufpool: buffers come out aligned, distinct and inside the region, run
 * out cleanly, come back for reuse; oversize buffers are counted apart.
 * Anonymous memory (HUGEMEM_OFF) but for one test, which takes hugepages
 * when the host has them (test_hugemem, which counts them, runs alone).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "storage/bufpool.h"
#include "storage/limits.h"

#define POOL_BUFS 8

static void get_put_and_alignment(void **state)
{
	(void)state;
	struct bufpool p;
	/* A ragged size is rounded down to whole buffers. */
	assert_int_equal(bufpool_init(&p, POOL_BUFS * WBUF_BYTES + 1000, HUGEMEM_OFF), 0);
	assert_int_equal(bufpool_total_count(&p), POOL_BUFS);
	assert_int_equal(bufpool_free_count(&p), POOL_BUFS);
	assert_int_equal(bufpool_in_use_bytes(&p), 0);
	struct wbuf *b[POOL_BUFS];
	uint8_t *lo = p.mem.base, *hi = lo + (size_t)POOL_BUFS * WBUF_BYTES;
	for (int i = 0; i < POOL_BUFS; i++) {
		b[i] = bufpool_get(&p, i == 0 ? WBUF_BYTES : 100);
		assert_non_null(b[i]);
		assert_int_equal(b[i]->cap, WBUF_BYTES);
		assert_int_equal(b[i]->len, 0);
		assert_int_equal((uintptr_t)b[i]->data % WBUF_ALIGN, 0);
		assert_true(b[i]->data >= lo && b[i]->data + WBUF_BYTES <= hi);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(b[i]->data, b[j]->data);
		memset(b[i]->data, i, WBUF_BYTES); /* all of it is ours */
	}
	assert_int_equal(bufpool_free_count(&p), 0);
	assert_int_equal(bufpool_in_use_bytes(&p), (uint64_t)POOL_BUFS * WBUF_BYTES);
	for (int i = 0; i < POOL_BUFS; i++)
		bufpool_put(&p, b[i]);
	assert_int_equal(bufpool_free_count(&p), POOL_BUFS);
	assert_int_equal(bufpool_in_use_bytes(&p), 0);
	bufpool_destroy(&p);
	assert_null(p.mem.base);
}

/* Buffers of another size (read windows): carved, aligned and sized the
 * same way; sizes that are not whole pages, or past a registered slot,
 * are refused. */
static void other_buffer_sizes(void **state)
{
	(void)state;
	struct bufpool p;
	size_t sz = 1024 * 1024;
	assert_int_equal(bufpool_init_sized(&p, 3 * sz + 4096, sz, HUGEMEM_OFF), 0);
	assert_int_equal(bufpool_total_count(&p), 3);
	assert_int_equal(p.buf_bytes, sz);
	struct wbuf *b[3];
	for (int i = 0; i < 3; i++) {
		b[i] = bufpool_get(&p, sz);
		assert_non_null(b[i]);
		assert_int_equal(b[i]->cap, sz);
		assert_int_equal((uintptr_t)b[i]->data % WBUF_ALIGN, 0);
		assert_int_equal((size_t)(b[i]->data - (uint8_t *)p.mem.base) % sz, 0);
		memset(b[i]->data, i, sz);
	}
	assert_null(bufpool_get(&p, 1));
	assert_int_equal(bufpool_in_use_bytes(&p), 3 * sz);
	for (int i = 0; i < 3; i++)
		bufpool_put(&p, b[i]);
	assert_int_equal(bufpool_in_use_bytes(&p), 0);
	bufpool_destroy(&p);
	assert_int_equal(bufpool_init_sized(&p, sz, 0, HUGEMEM_OFF), -EINVAL);
	assert_int_equal(bufpool_init_sized(&p, sz, 4096 + 512, HUGEMEM_OFF), -EINVAL);
	assert_int_equal(bufpool_init_sized(&p, sz, sz + 4096, HUGEMEM_OFF), -EINVAL);
	assert_int_equal(bufpool_init_sized(&p, 4 * BUFPOOL_BUF_BYTES_MAX,
					    2 * BUFPOOL_BUF_BYTES_MAX, HUGEMEM_OFF), -EINVAL);
}

static void exhaustion_returns_null(void **state)
{
	(void)state;
	struct bufpool p;
	assert_int_equal(bufpool_init(&p, 2 * WBUF_BYTES, HUGEMEM_OFF), 0);
	struct wbuf *a = bufpool_get(&p, 1), *b = bufpool_get(&p, 1);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(bufpool_get(&p, 1));
	assert_null(bufpool_get(&p, WBUF_BYTES));
	assert_int_equal(p.exhausted, 2);
	/* The last put is the next got: its data is the warmest. */
	bufpool_put(&p, a);
	assert_ptr_equal(bufpool_get(&p, 1), a);
	bufpool_put(&p, a);
	bufpool_put(&p, b);
	bufpool_destroy(&p);
}

/* Larger than WBUF_BYTES: a buffer of its own, even with the pool empty,
 * counted in oversize_bytes while out. */
static void oversize_counted_apart(void **state)
{
	(void)state;
	struct bufpool p;
	assert_int_equal(bufpool_init(&p, WBUF_BYTES, HUGEMEM_OFF), 0);
	struct wbuf *small = bufpool_get(&p, 10);
	assert_non_null(small);
	size_t len = WBUF_BYTES + 1;
	struct wbuf *big = bufpool_get(&p, len);
	assert_non_null(big);
	assert_int_equal(big->cap, WBUF_BYTES + WBUF_ALIGN);
	assert_int_equal((uintptr_t)big->data % WBUF_ALIGN, 0);
	memset(big->data, 1, len);
	assert_int_equal(p.oversize_bytes, WBUF_BYTES + WBUF_ALIGN);
	assert_int_equal(bufpool_free_count(&p), 0);
	assert_int_equal(bufpool_in_use_bytes(&p), WBUF_BYTES);
	bufpool_put(&p, big);
	assert_int_equal(p.oversize_bytes, 0);
	assert_int_equal(bufpool_free_count(&p), 0);
	bufpool_put(&p, small);
	bufpool_destroy(&p);
}

/* AUTO: on hugepages when the host has them (a 2 MiB pool is one page,
 * eight buffers), else anonymous memory; carved the same either way. */
static void auto_pool_carves_the_same(void **state)
{
	(void)state;
	struct bufpool p;
	assert_int_equal(bufpool_init(&p, 2 * 1024 * 1024, HUGEMEM_AUTO), 0);
	print_message("2 MiB pool: %s\n", p.mem.huge ? "hugepages" : "anonymous memory");
	assert_int_equal(bufpool_total_count(&p), 8);
	assert_int_equal((uintptr_t)p.mem.base % p.mem.page_bytes, 0);
	struct wbuf *b[8];
	for (int i = 0; i < 8; i++) {
		b[i] = bufpool_get(&p, 1);
		assert_non_null(b[i]);
		assert_int_equal((uintptr_t)b[i]->data % WBUF_ALIGN, 0);
		assert_int_equal(b[i]->data[WBUF_BYTES - 1], 0);
		memset(b[i]->data, 0xff, WBUF_BYTES);
	}
	for (int i = 0; i < 8; i++)
		bufpool_put(&p, b[i]);
	bufpool_destroy(&p);
}

static void sizes_out_of_range(void **state)
{
	(void)state;
	struct bufpool p;
	assert_int_equal(bufpool_init(&p, 0, HUGEMEM_OFF), -EINVAL);
	assert_int_equal(bufpool_init(&p, WBUF_BYTES - 1, HUGEMEM_OFF), -EINVAL);
	assert_int_equal(bufpool_init(&p, ((size_t)BUFPOOL_BUFS_MAX + 1) * WBUF_BYTES, HUGEMEM_OFF),
			 -EINVAL);
}

/* Buffers of their own, for logs without a pool. */
static void wbuf_new_sizes(void **state)
{
	(void)state;
	struct wbuf *b = wbuf_new(1);
	assert_non_null(b);
	assert_int_equal(b->cap, WBUF_BYTES);
	assert_int_equal((uintptr_t)b->data % WBUF_ALIGN, 0);
	wbuf_free(b);
	b = wbuf_new(3 * WBUF_BYTES + 5);
	assert_non_null(b);
	assert_int_equal(b->cap, 3 * WBUF_BYTES + WBUF_ALIGN);
	wbuf_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_put_and_alignment),
		cmocka_unit_test(other_buffer_sizes),
		cmocka_unit_test(exhaustion_returns_null),
		cmocka_unit_test(oversize_counted_apart),
		cmocka_unit_test(auto_pool_carves_the_same),
		cmocka_unit_test(sizes_out_of_range),
		cmocka_unit_test(wbuf_new_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

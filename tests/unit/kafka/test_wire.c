/*
 * test_wire: the Kafka primitives in kafka_wire.c: varint edge cases and
 * their byte forms, strings and bytes in all four forms, the sticky error,
 * the writer's spliced ranges, patching and inserted sizes, and the arena.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/kafka_wire.h"

#define BYTES(...) ((const uint8_t[]){ __VA_ARGS__ })
#define NBYTES(...) sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Bytes the writer holds, flattened into a static buffer. */
static size_t flat(const struct kwriter *w, uint8_t *out, size_t cap)
{
	size_t n = kw_copy_out(w, out, cap);
	assert_int_equal(n, kw_total_len(w));
	return n;
}

static void expect_bytes(const struct kwriter *w, const uint8_t *want, size_t n)
{
	uint8_t got[64];
	assert_true(n <= sizeof(got));
	assert_int_equal(flat(w, got, sizeof(got)), n);
	assert_memory_equal(got, want, n);
}

#define EXPECT(w, ...) expect_bytes((w), BYTES(__VA_ARGS__), NBYTES(__VA_ARGS__))

static void test_wire_uvarint_bytes(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 0, 0);
	kw_uvarint(&w, 0);
	EXPECT(&w, 0x00);
	kw_reset(&w);
	kw_uvarint(&w, 127);
	EXPECT(&w, 0x7f);
	kw_reset(&w);
	kw_uvarint(&w, 128);
	EXPECT(&w, 0x80, 0x01);
	kw_reset(&w);
	kw_uvarint(&w, 300);
	EXPECT(&w, 0xac, 0x02);
	kw_reset(&w);
	kw_uvarint(&w, UINT32_MAX);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0x0f);
	kw_reset(&w);
	kw_varint(&w, -1);
	EXPECT(&w, 0x01);
	kw_reset(&w);
	kw_varint(&w, 1);
	EXPECT(&w, 0x02);
	kw_reset(&w);
	kw_varint(&w, INT32_MAX);
	EXPECT(&w, 0xfe, 0xff, 0xff, 0xff, 0x0f);
	kw_reset(&w);
	kw_varint(&w, INT32_MIN);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0x0f);
	kw_reset(&w);
	kw_varlong(&w, INT64_MIN);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	kw_reset(&w);
	kw_varlong(&w, INT64_MAX);
	EXPECT(&w, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	kw_reset(&w);
	kw_uvarlong(&w, UINT64_MAX);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	kw_free(&w);
}

static void test_wire_varint_roundtrip(void **state)
{
	(void)state;
	static const int32_t v32[] = { 0, 1, -1, 63, -64, 64, -65, 8191, -8192, INT32_MAX, INT32_MIN,
				       INT32_MAX - 1, INT32_MIN + 1 };
	static const int64_t v64[] = { 0, 1, -1, INT32_MAX, INT32_MIN, (int64_t)1 << 62, INT64_MAX,
				       INT64_MIN, INT64_MIN + 1 };
	struct kwriter w;
	kw_init(&w, 16, 0);
	uint8_t buf[16];
	for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
		kw_reset(&w);
		kw_varint(&w, v32[i]);
		kw_uvarint(&w, (uint32_t)v32[i]);
		size_t n = flat(&w, buf, sizeof(buf));
		struct kreader r;
		kr_init(&r, buf, n, NULL);
		assert_int_equal(kr_varint(&r), v32[i]);
		assert_int_equal(kr_uvarint(&r), (uint32_t)v32[i]);
		assert_int_equal(r.err, 0);
		assert_int_equal(kr_remaining(&r), 0);
	}
	for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
		kw_reset(&w);
		kw_varlong(&w, v64[i]);
		size_t n = flat(&w, buf, sizeof(buf));
		struct kreader r;
		kr_init(&r, buf, n, NULL);
		assert_true(kr_varlong(&r) == v64[i]);
		assert_int_equal(r.err, 0);
		assert_int_equal(kr_remaining(&r), 0);
	}
	kw_free(&w);
}

static int read_uvarint_err(const uint8_t *p, size_t n, uint32_t *out)
{
	struct kreader r;
	kr_init(&r, p, n, NULL);
	*out = kr_uvarint(&r);
	return r.err;
}

static int read_uvarlong_err(const uint8_t *p, size_t n)
{
	struct kreader r;
	kr_init(&r, p, n, NULL);
	(void)kr_uvarlong(&r);
	return r.err;
}

static void test_wire_varint_invalid(void **state)
{
	(void)state;
	uint32_t v;
	/* Five bytes is the most a 32-bit varint takes. */
	assert_int_equal(read_uvarint_err(BYTES(0xff, 0xff, 0xff, 0xff, 0x0f), 5, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	/* A sixth byte, or bits past 32 in the fifth, is overlong. */
	assert_int_equal(read_uvarint_err(BYTES(0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 6, &v),
			 KWIRE_ERR_INVALID);
	assert_int_equal(read_uvarint_err(BYTES(0xff, 0xff, 0xff, 0xff, 0x10), 5, &v), KWIRE_ERR_INVALID);
	assert_int_equal(v, 0);
	/* Non-minimal but short is accepted, as Kafka does. */
	assert_int_equal(read_uvarint_err(BYTES(0x80, 0x00), 2, &v), 0);
	assert_int_equal(v, 0);
	/* Input ending inside a varint is truncated, not invalid. */
	assert_int_equal(read_uvarint_err(BYTES(0x80, 0x80), 2, &v), KWIRE_ERR_TRUNCATED);
	assert_int_equal(read_uvarint_err(BYTES(0), 0, &v), KWIRE_ERR_TRUNCATED);

	assert_int_equal(read_uvarlong_err(BYTES(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 10), 0);
	assert_int_equal(read_uvarlong_err(BYTES(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), 10),
			 KWIRE_ERR_INVALID);
	assert_int_equal(read_uvarlong_err(BYTES(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), 11),
			 KWIRE_ERR_INVALID);
	assert_int_equal(read_uvarlong_err(BYTES(0x80, 0x80, 0x80), 3), KWIRE_ERR_TRUNCATED);
}

static void test_wire_fixed_and_sticky(void **state)
{
	(void)state;
	const uint8_t *in = BYTES(0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x02, 0x03);
	struct kreader r;
	kr_init(&r, in, 11, NULL);
	assert_int_equal(kr_int16(&r), 0x1234);
	assert_int_equal(kr_uint32(&r), 0x56789abc);
	assert_int_equal(kr_int8(&r), (int8_t)0xde);
	assert_int_equal(kr_remaining(&r), 4);
	/* Asking for 8 with 4 left fails and moves nothing. */
	const uint8_t *before = r.p;
	assert_true(kr_int64(&r) == 0);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);
	assert_ptr_equal(r.p, before);
	/* Sticky: even a read that would fit returns 0 now. */
	assert_int_equal(kr_int8(&r), 0);
	assert_int_equal(kr_remaining(&r), 0);
	/* A later error does not overwrite the first. */
	kr_fail(&r, KWIRE_ERR_INVALID);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);

	struct kwriter w;
	kw_init(&w, 0, 0);
	kw_int64(&w, -2);
	kw_uint16(&w, 0xbeef);
	kw_bool(&w, true);
	kw_float64(&w, 1.5);
	uint8_t buf[32];
	size_t n = flat(&w, buf, sizeof(buf));
	assert_int_equal(n, 8 + 2 + 1 + 8);
	kr_init(&r, buf, n, NULL);
	assert_true(kr_int64(&r) == -2);
	assert_int_equal(kr_uint16(&r), 0xbeef);
	assert_true(kr_bool(&r));
	assert_true(kr_float64(&r) == 1.5);
	assert_int_equal(r.err, 0);
	kw_free(&w);

	kr_init(&r, NULL, 0, NULL);
	assert_int_equal(kr_remaining(&r), 0);
	assert_int_equal(kr_int8(&r), 0);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);
}

static void test_wire_strings(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 0, 0);
	kw_compact_string(&w, KSTR(""));
	kw_compact_nullable_string(&w, KSTR_NULL);
	kw_compact_string(&w, KSTR("abc"));
	kw_nullable_string(&w, KSTR_NULL);
	kw_string(&w, KSTR("hi"));
	kw_string(&w, KSTR_NULL); /* not nullable: written as empty */
	kw_compact_string(&w, KSTR_NULL);
	EXPECT(&w, 0x01, 0x00, 0x04, 'a', 'b', 'c', 0xff, 0xff, 0x00, 0x02, 'h', 'i', 0x00, 0x00, 0x01);

	uint8_t buf[64];
	size_t n = flat(&w, buf, sizeof(buf));
	struct kreader r;
	kr_init(&r, buf, n, NULL);
	struct kstr s = kr_compact_string(&r);
	assert_int_equal(s.len, 0);
	assert_true(kstr_is_null(kr_compact_nullable_string(&r)));
	s = kr_compact_string(&r);
	assert_true(kstr_eq_cstr(s, "abc"));
	assert_ptr_equal(s.ptr, buf + 3); /* zero copy */
	assert_true(kstr_is_null(kr_nullable_string(&r)));
	assert_true(kstr_eq(kr_string(&r), KSTR("hi")));
	assert_true(kstr_eq(kr_string(&r), KSTR("")));
	assert_true(kstr_eq(kr_compact_string(&r), KSTR("")));
	assert_int_equal(r.err, 0);
	assert_int_equal(kr_remaining(&r), 0);

	/* Null where the form is not nullable. */
	kr_init(&r, BYTES(0xff, 0xff), 2, NULL);
	(void)kr_string(&r);
	assert_int_equal(r.err, KWIRE_ERR_INVALID);
	kr_init(&r, BYTES(0x00), 1, NULL);
	(void)kr_compact_string(&r);
	assert_int_equal(r.err, KWIRE_ERR_INVALID);
	/* Longer than the input: truncated. */
	kr_init(&r, BYTES(0x00, 0x05, 'a', 'b'), 4, NULL);
	(void)kr_string(&r);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);
	kr_init(&r, BYTES(0x06, 'a', 'b'), 3, NULL);
	(void)kr_compact_nullable_string(&r);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);
	/* Past 0x7fff: invalid in the compact form too. */
	kr_init(&r, BYTES(0x81, 0x80, 0x02), 3, NULL);
	(void)kr_compact_string(&r);
	assert_int_equal(r.err, KWIRE_ERR_INVALID);

	assert_true(kstr_eq(KSTR_NULL, kstr_from(NULL)));
	assert_false(kstr_eq(KSTR_NULL, KSTR("")));
	assert_true(kstr_eq_cstr(KSTR_NULL, NULL));
	assert_false(kstr_eq_cstr(KSTR("a"), NULL));
	assert_false(kstr_eq_cstr(KSTR("ab"), "abc"));
	kw_free(&w);
}

static void test_wire_bytes(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 0, 0);
	const uint8_t data[3] = { 7, 8, 9 };
	kw_nullable_bytes(&w, KBYTES_NULL);
	kw_bytes(&w, (struct kbytes){ data, 3 });
	kw_compact_nullable_bytes(&w, KBYTES_NULL);
	kw_compact_bytes(&w, (struct kbytes){ data, 3 });
	kw_bytes(&w, KBYTES_NULL);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 7, 8, 9, 0x00, 0x04, 7, 8, 9, 0x00, 0x00, 0x00,
	       0x00);
	uint8_t buf[64];
	size_t n = flat(&w, buf, sizeof(buf));
	struct kreader r;
	kr_init(&r, buf, n, NULL);
	assert_true(kr_nullable_bytes(&r).len < 0);
	struct kbytes b = kr_bytes(&r);
	assert_true(kbytes_eq(b, (struct kbytes){ data, 3 }));
	assert_ptr_equal(b.ptr, buf + 8);
	assert_true(kr_compact_nullable_bytes(&r).len < 0);
	assert_true(kbytes_eq(kr_compact_bytes(&r), (struct kbytes){ data, 3 }));
	assert_int_equal(kr_bytes(&r).len, 0);
	assert_int_equal(r.err, 0);
	assert_int_equal(kr_remaining(&r), 0);

	kr_init(&r, BYTES(0xff, 0xff, 0xff, 0xff), 4, NULL);
	(void)kr_bytes(&r);
	assert_int_equal(r.err, KWIRE_ERR_INVALID);
	kr_init(&r, BYTES(0x7f, 0xff, 0xff, 0xff, 1), 5, NULL);
	(void)kr_nullable_bytes(&r);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);
	kw_free(&w);
}

static void test_wire_array_count(void **state)
{
	(void)state;
	struct kreader r;
	kr_init(&r, BYTES(0xff, 0xff, 0xff, 0xff), 4, NULL);
	assert_int_equal(kr_field_array_count(&r, false, true), -1);
	assert_int_equal(r.err, 0);
	kr_init(&r, BYTES(0xff, 0xff, 0xff, 0xff), 4, NULL);
	assert_int_equal(kr_field_array_count(&r, false, false), 0);
	assert_int_equal(r.err, KWIRE_ERR_INVALID);
	kr_init(&r, BYTES(0x00), 1, NULL);
	assert_int_equal(kr_field_array_count(&r, true, true), -1);
	/* Each element takes a byte at least: a count past the input is truncated. */
	kr_init(&r, BYTES(0x00, 0x00, 0x00, 0x03, 1, 2), 6, NULL);
	assert_int_equal(kr_field_array_count(&r, false, false), 0);
	assert_int_equal(r.err, KWIRE_ERR_TRUNCATED);
	kr_init(&r, BYTES(0x03, 1, 2), 3, NULL);
	assert_int_equal(kr_field_array_count(&r, true, false), 2);
	assert_int_equal(r.err, 0);
	/* An array needs an arena. */
	assert_null(kr_alloc_array(&r, 2, 4));
	assert_int_equal(r.err, KWIRE_ERR_NOMEM);
}

static void test_wire_ref_iovecs(void **state)
{
	(void)state;
	uint8_t *big1 = malloc(5000), *big2 = malloc(KW_REF_MIN_BYTES);
	uint8_t small[10];
	assert_non_null(big1);
	assert_non_null(big2);
	memset(big1, 0x11, 5000);
	memset(big2, 0x22, KW_REF_MIN_BYTES);
	memset(small, 0x33, sizeof(small));

	struct kwriter w;
	kw_init(&w, 16, 0);
	kw_ref(&w, big2, KW_REF_MIN_BYTES); /* first: no empty inline range before it */
	kw_raw(&w, "AB", 2);
	kw_ref(&w, big1, 5000);
	kw_ref(&w, big2, KW_REF_MIN_BYTES); /* two refs back to back */
	kw_raw(&w, "CD", 2);
	kw_ref(&w, small, sizeof(small)); /* small: copied */
	assert_int_equal(w.ext_count, 3);
	assert_int_equal(w.len, 2 + 2 + sizeof(small));
	assert_int_equal(kw_total_len(&w), w.len + 5000 + 2 * KW_REF_MIN_BYTES);

	struct iovec iov[8];
	int n = kw_iovecs(&w, iov, 8);
	assert_int_equal(n, 5);
	assert_ptr_equal(iov[0].iov_base, big2);
	assert_int_equal(iov[0].iov_len, KW_REF_MIN_BYTES);
	assert_int_equal(iov[1].iov_len, 2);
	assert_memory_equal(iov[1].iov_base, "AB", 2);
	assert_ptr_equal(iov[2].iov_base, big1);
	assert_ptr_equal(iov[3].iov_base, big2);
	assert_int_equal(iov[4].iov_len, 2 + sizeof(small));
	assert_memory_equal(iov[4].iov_base, "CD", 2);
	assert_int_equal(kw_iovecs(&w, iov, 4), -1);

	size_t total = kw_total_len(&w);
	uint8_t *out = malloc(total);
	assert_non_null(out);
	assert_int_equal(kw_copy_out(&w, out, total), total);
	size_t at = 0;
	for (int i = 0; i < n; i++) {
		assert_memory_equal(out + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	assert_int_equal(at, total);
	/* A short destination gets a prefix. */
	assert_int_equal(kw_copy_out(&w, out, 100), 100);

	/* Reset keeps the memory and forgets the ranges. */
	uint8_t *buf = w.buf;
	kw_reset(&w);
	assert_int_equal(kw_total_len(&w), 0);
	assert_int_equal(kw_iovecs(&w, iov, 8), 0);
	kw_raw(&w, "x", 1);
	assert_ptr_equal(w.buf, buf);

	kw_free(&w);
	free(out);
	free(big1);
	free(big2);
}

static void test_wire_patch_and_limits(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 0, 0);
	size_t pos = kw_reserve(&w, 4);
	assert_int_equal(pos, 0);
	kw_int16(&w, 0x0102);
	kw_patch_int32(&w, pos, (int32_t)(kw_total_len(&w) - 4));
	EXPECT(&w, 0, 0, 0, 2, 1, 2);
	kw_patch_int32(&w, 3, 0); /* would run past the end */
	assert_int_equal(w.err, KWIRE_ERR_INVALID);
	kw_free(&w);

	/* max_bytes bounds the inline bytes; the error is sticky. */
	kw_init(&w, 4, 8);
	kw_int32(&w, 1);
	kw_int32(&w, 2);
	assert_int_equal(w.err, 0);
	kw_int8(&w, 3);
	assert_int_equal(w.err, KWIRE_ERR_OVERFLOW);
	assert_int_equal(w.len, 8);
	kw_int8(&w, 4);
	assert_int_equal(w.len, 8);
	kw_reset(&w);
	assert_int_equal(w.err, 0);
	kw_free(&w);
}

static void test_wire_insert_size(void **state)
{
	(void)state;
	uint8_t *big = malloc(KW_REF_MIN_BYTES);
	assert_non_null(big);
	memset(big, 0x44, KW_REF_MIN_BYTES);
	struct kwriter w;
	kw_init(&w, 0, 0);
	kw_raw(&w, "H", 1);
	kw_ref(&w, big, KW_REF_MIN_BYTES); /* before the mark: stays in front */
	struct kw_mark m = kw_mark(&w);
	kw_raw(&w, "xy", 2);
	kw_ref(&w, big, KW_REF_MIN_BYTES); /* after the mark: counted and moved */
	kw_raw(&w, "z", 1);
	kw_insert_size(&w, m);
	/* size = 2 + 4096 + 1 = 4099 = 0x83 0x20 as a uvarint */
	struct iovec iov[8];
	int n = kw_iovecs(&w, iov, 8);
	assert_int_equal(n, 5);
	assert_int_equal(iov[0].iov_len, 1);
	assert_ptr_equal(iov[1].iov_base, big);
	assert_int_equal(iov[2].iov_len, 4);
	assert_memory_equal(iov[2].iov_base, "\x83\x20xy", 4);
	assert_ptr_equal(iov[3].iov_base, big);
	assert_int_equal(iov[4].iov_len, 1);
	assert_memory_equal(iov[4].iov_base, "z", 1);
	kw_free(&w);
	free(big);
}

static void test_wire_arena(void **state)
{
	(void)state;
	struct karena a;
	karena_init(&a, 64, 256);
	uint8_t *p1 = karena_alloc(&a, 3);
	assert_non_null(p1);
	assert_int_equal((uintptr_t)p1 % 8, 0);
	uint8_t *p2 = karena_alloc(&a, 100); /* bigger than a chunk: its own */
	assert_non_null(p2);
	assert_int_equal((uintptr_t)p2 % 8, 0);
	memset(p1, 0xaa, 3);
	memset(p2, 0xbb, 100);
	assert_non_null(karena_alloc(&a, 100));
	/* 8 + 104 + 104 used; 48 more would pass 256. */
	assert_null(karena_alloc(&a, 48));
	assert_non_null(karena_alloc(&a, 40));
	assert_null(karena_alloc(&a, 1));

	/* Reset keeps the chunks: the same pattern gets the same memory, zeroed. */
	karena_reset(&a);
	uint8_t *q1 = karena_alloc(&a, 3);
	uint8_t *q2 = karena_alloc(&a, 100);
	assert_ptr_equal(q1, p1);
	assert_ptr_equal(q2, p2);
	assert_int_equal(q1[0], 0);
	assert_int_equal(q2[99], 0);
	assert_null(karena_alloc(&a, 1000));
	karena_free(&a);

	/* No limit. */
	karena_init(&a, 128, 0);
	for (int i = 0; i < 100; i++)
		assert_non_null(karena_alloc(&a, 100));
	karena_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_uvarint_bytes),
		cmocka_unit_test(test_wire_varint_roundtrip),
		cmocka_unit_test(test_wire_varint_invalid),
		cmocka_unit_test(test_wire_fixed_and_sticky),
		cmocka_unit_test(test_wire_strings),
		cmocka_unit_test(test_wire_bytes),
		cmocka_unit_test(test_wire_array_count),
		cmocka_unit_test(test_wire_ref_iovecs),
		cmocka_unit_test(test_wire_patch_and_limits),
		cmocka_unit_test(test_wire_insert_size),
		cmocka_unit_test(test_wire_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

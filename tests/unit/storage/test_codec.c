/*
 * storage/codec.h: every Kafka codec round trips (compressible and
 * incompressible data, several blocks, empty input), reads the forms
 * other writers produce (raw snappy as librdkafka writes it, lz4 frames
 * with linked blocks and checksums, zstd frames without a content size,
 * several gzip members and zstd frames), refuses empty, truncated and
 * garbage input with -EINVAL, survives flipped bytes, and never decompresses
 * past its limit (-EFBIG, the buffer at most one byte past it).
 */
#include <errno.h>
#include <lz4frame.h>
#include <setjmp.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <cmocka.h>

#include "storage/codec.h"

struct variant {
	int codec;
	unsigned form;
	const char *name;
};

static const struct variant variants[] = {
	{ CODEC_GZIP, 0, "gzip" },
	{ CODEC_SNAPPY, 0, "snappy (xerial)" },
	{ CODEC_SNAPPY, CODEC_FORM_SNAPPY_RAW, "snappy (raw)" },
	{ CODEC_LZ4, 0, "lz4" },
	{ CODEC_ZSTD, 0, "zstd" },
};
#define N_VARIANTS (sizeof(variants) / sizeof(variants[0]))

/* Record-like text: compresses well. */
static uint8_t *text(size_t n)
{
	uint8_t *p = malloc(n > 0 ? n : 1);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)("key-%d value padding padding "[i % 30] + (i / 997) % 3);
	return p;
}

/* xorshift bytes: do not compress. */
static uint8_t *noise(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n > 0 ? n : 1);
	uint64_t x = seed | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* Compress with v, checking the bound is honoured; returns the stream
 * (caller frees) and its length. */
static uint8_t *pack(struct codec_ctx *cx, const struct variant *v, const uint8_t *in, size_t n,
		     size_t *z)
{
	size_t bound = codec_compress_bound(v->codec, n);
	uint8_t *out = malloc(bound);
	int64_t r = codec_compress(cx, v->codec, v->form, in, n, out, bound);
	if (r < 0)
		print_message("%s: compress %zu bytes: %lld\n", v->name, n, (long long)r);
	assert_true(r > 0 && (size_t)r <= bound);
	*z = (size_t)r;
	return out;
}

static void round_trip_one(struct codec_ctx *cx, const struct variant *v, const uint8_t *in,
			   size_t n)
{
	size_t z;
	uint8_t *packed = pack(cx, v, in, n, &z);
	struct codec_buf out = { .max = n + 16 };
	unsigned form = 99;
	int64_t r = codec_decompress(cx, v->codec, packed, z, &out, &form);
	if (r != (int64_t)n)
		print_message("%s: %zu bytes came back as %lld\n", v->name, n, (long long)r);
	assert_int_equal(r, (int64_t)n);
	assert_true(n == 0 || memcmp(out.p, in, n) == 0);
	assert_int_equal(form, v->form); /* the form it was written in */
	codec_buf_free(&out);
	free(packed);
}

static void round_trips(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	/* 300 KiB spans several snappy-java (32 KiB) and lz4 (64 KiB) blocks. */
	size_t sizes[] = { 0, 1, 100, 32 * 1024, 32 * 1024 + 1, 300 * 1024 };
	for (size_t i = 0; i < N_VARIANTS; i++) {
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			uint8_t *t = text(sizes[k]), *r = noise(sizes[k], k + 1);
			round_trip_one(&cx, &variants[i], t, sizes[k]);
			round_trip_one(&cx, &variants[i], r, sizes[k]);
			free(t);
			free(r);
		}
	}
	assert_true(codec_ctx_bytes(&cx) > 0);
	codec_ctx_free(&cx);
	assert_int_equal(codec_ctx_bytes(&cx), 0);
}

static void formats_on_the_wire(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	uint8_t *t = text(70000);
	size_t z;
	/* xerial: magic, versions 1 and 1, then length-prefixed blocks. */
	uint8_t *x = pack(&cx, &variants[1], t, 70000, &z);
	static const uint8_t magic[16] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1,
					   0, 0, 0, 1 };
	assert_memory_equal(x, magic, 16);
	free(x);
	/* Empty input still makes one block: librdkafka only takes a stream
	 * longer than header + length as xerial. */
	x = pack(&cx, &variants[1], t, 0, &z);
	assert_true(z > 20);
	free(x);
	/* lz4: the frame magic, independent 64 KiB blocks (FLG bit 5, BD 4). */
	x = pack(&cx, &variants[3], t, 70000, &z);
	assert_int_equal(x[0] | x[1] << 8 | x[2] << 16 | (uint32_t)x[3] << 24, 0x184D2204);
	assert_true(x[4] & 0x20);
	assert_int_equal((x[5] >> 4) & 7, 4);
	free(x);
	/* gzip and zstd magics. */
	x = pack(&cx, &variants[0], t, 70000, &z);
	assert_true(x[0] == 0x1f && x[1] == 0x8b);
	free(x);
	x = pack(&cx, &variants[4], t, 70000, &z);
	assert_int_equal(x[0] | x[1] << 8 | x[2] << 16 | (uint32_t)x[3] << 24, 0xFD2FB528);
	free(x);
	free(t);
	codec_ctx_free(&cx);
}

/* What other writers produce, made with the libraries directly. */
static void foreign_streams(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	size_t n = 200000;
	uint8_t *t = text(n);
	struct codec_buf out = { .max = n };
	unsigned form;

	/* librdkafka's snappy: one raw block. */
	size_t sz = snappy_max_compressed_length(n);
	char *s = malloc(sz);
	assert_int_equal(snappy_compress((const char *)t, n, s, &sz), SNAPPY_OK);
	assert_int_equal(codec_decompress(&cx, CODEC_SNAPPY, (uint8_t *)s, sz, &out, &form), n);
	assert_memory_equal(out.p, t, n);
	assert_int_equal(form, CODEC_FORM_SNAPPY_RAW);
	free(s);

	/* lz4 as python-lz4 writes it by default: linked 64 KiB blocks,
	 * block and content checksums, the content size. */
	LZ4F_preferences_t prefs = { .frameInfo = { .blockSizeID = LZ4F_max64KB,
						    .blockMode = LZ4F_blockLinked,
						    .contentChecksumFlag = LZ4F_contentChecksumEnabled,
						    .blockChecksumFlag = LZ4F_blockChecksumEnabled,
						    .contentSize = n } };
	size_t lz = LZ4F_compressFrameBound(n, &prefs);
	uint8_t *l = malloc(lz);
	lz = LZ4F_compressFrame(l, lz, t, n, &prefs);
	assert_false(LZ4F_isError(lz));
	assert_int_equal(codec_decompress(&cx, CODEC_LZ4, l, lz, &out, NULL), n);
	assert_memory_equal(out.p, t, n);
	/* A flipped data byte: the block checksum says so. */
	l[lz / 2] ^= 0x40;
	assert_int_equal(codec_decompress(&cx, CODEC_LZ4, l, lz, &out, NULL), -EINVAL);
	free(l);

	/* zstd streamed without a content size, in two frames. */
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	size_t cap = 2 * ZSTD_compressBound(n), pos = 0;
	uint8_t *zb = malloc(cap);
	assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_contentSizeFlag, 0)));
	for (int f = 0; f < 2; f++) {
		ZSTD_outBuffer ob = { zb + pos, cap - pos, 0 };
		ZSTD_inBuffer ib = { t, n / 2, 0 };
		assert_int_equal(ZSTD_compressStream2(zc, &ob, &ib, ZSTD_e_end), 0);
		pos += ob.pos;
	}
	assert_true(ZSTD_getFrameContentSize(zb, pos) == ZSTD_CONTENTSIZE_UNKNOWN);
	assert_int_equal(codec_decompress(&cx, CODEC_ZSTD, zb, pos, &out, NULL), n / 2 * 2);
	assert_memory_equal(out.p, t, n / 2);
	assert_memory_equal(out.p + n / 2, t, n / 2);
	/* ... and past a limit it cannot know ahead. */
	struct codec_buf small = { .max = n / 2 + 10 };
	assert_int_equal(codec_decompress(&cx, CODEC_ZSTD, zb, pos, &small, NULL), -EFBIG);
	assert_true(small.cap <= small.max + 1);
	codec_buf_free(&small);
	ZSTD_freeCCtx(zc);
	free(zb);

	/* Two gzip members, one after the other (Java reads both). */
	size_t z1, z2;
	uint8_t *g1 = pack(&cx, &variants[0], t, 1000, &z1), *g2 = pack(&cx, &variants[0], t, 500, &z2);
	uint8_t *gg = malloc(z1 + z2);
	memcpy(gg, g1, z1);
	memcpy(gg + z1, g2, z2);
	assert_int_equal(codec_decompress(&cx, CODEC_GZIP, gg, z1 + z2, &out, NULL), 1500);
	assert_memory_equal(out.p + 1000, t, 500);
	free(g1);
	free(g2);
	free(gg);

	/* Not a Kafka codec. */
	assert_int_equal(codec_decompress(&cx, CODEC_NONE, t, 10, &out, NULL), -ENOTSUP);
	assert_int_equal(codec_decompress(&cx, 5, t, 10, &out, NULL), -ENOTSUP);
	assert_int_equal(codec_compress(&cx, 7, 0, t, 10, out.p, out.cap), -ENOTSUP);
	codec_buf_free(&out);
	free(t);
	codec_ctx_free(&cx);
}

static void empty_and_garbage(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	struct codec_buf out = { .max = 1 << 20 };
	static const char junk[] = "this is not compressed data, whatever the codec says it is";
	uint8_t zeros[64] = { 0 };
	for (size_t i = 0; i < N_VARIANTS; i++) {
		int c = variants[i].codec;
		assert_int_equal(codec_decompress(&cx, c, (const uint8_t *)"", 0, &out, NULL),
				 -EINVAL);
		assert_int_equal(codec_decompress(&cx, c, (const uint8_t *)junk, sizeof(junk), &out,
						  NULL),
				 -EINVAL);
		assert_int_equal(codec_decompress(&cx, c, zeros, sizeof(zeros), &out, NULL), -EINVAL);
	}
	codec_buf_free(&out);
	codec_ctx_free(&cx);
}

/* Every cut short stream is an error (or, for snappy-java's framing cut
 * at a block boundary, less than was written: the framing has no end
 * mark); the last byte missing is always -EINVAL. Flipped bytes never
 * crash nor write past the limit (ASan watches the reads). */
static void truncated_and_flipped(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	size_t n = 80000;
	uint8_t *t = text(n);
	for (size_t i = 0; i < N_VARIANTS; i++) {
		const struct variant *v = &variants[i];
		size_t z;
		uint8_t *packed = pack(&cx, v, t, n, &z);
		struct codec_buf out = { .max = n };
		for (size_t cut = 1; cut < z; cut += cut < 64 ? 1 : 97) {
			uint8_t *copy = malloc(cut); /* exactly cut bytes, for ASan */
			memcpy(copy, packed, cut);
			int64_t r = codec_decompress(&cx, v->codec, copy, cut, &out, NULL);
			if (r >= 0)
				print_message("%s: cut at %zu of %zu gave %lld\n", v->name, cut, z,
					      (long long)r);
			assert_true(r < 0 || (v->codec == CODEC_SNAPPY && r < (int64_t)n));
			free(copy);
		}
		uint8_t *copy = malloc(z - 1);
		memcpy(copy, packed, z - 1);
		print_message("%s: the last byte cut\n", v->name);
		assert_int_equal(codec_decompress(&cx, v->codec, copy, z - 1, &out, NULL), -EINVAL);
		free(copy);
		uint64_t x = 88172645463325252ull;
		for (int k = 0; k < 300; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			size_t at = (size_t)(x % z);
			packed[at] ^= (uint8_t)(1u << (x >> 61));
			int64_t r = codec_decompress(&cx, v->codec, packed, z, &out, NULL);
			assert_true(r == -EINVAL || r == -EFBIG || (r >= 0 && (size_t)r <= out.max));
			assert_true(out.cap <= out.max + 1);
			packed[at] ^= (uint8_t)(1u << (x >> 61));
		}
		codec_buf_free(&out);
		free(packed);
	}
	free(t);
	codec_ctx_free(&cx);
}

/* The limit: exactly max decompresses, one byte less is -EFBIG, and the
 * buffer never grows more than a byte past max. */
static void size_limit(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	size_t n = 150000;
	uint8_t *t = text(n);
	for (size_t i = 0; i < N_VARIANTS; i++) {
		const struct variant *v = &variants[i];
		size_t z;
		uint8_t *packed = pack(&cx, v, t, n, &z);
		struct codec_buf exact = { .max = n }, less = { .max = n - 1 },
				 tiny = { .max = 4096 };
		assert_int_equal(codec_decompress(&cx, v->codec, packed, z, &exact, NULL), n);
		assert_memory_equal(exact.p, t, n);
		assert_int_equal(codec_decompress(&cx, v->codec, packed, z, &less, NULL), -EFBIG);
		assert_int_equal(codec_decompress(&cx, v->codec, packed, z, &tiny, NULL), -EFBIG);
		assert_true(exact.cap <= n + 1 && less.cap <= n && tiny.cap <= 4097);
		codec_buf_free(&exact);
		codec_buf_free(&less);
		codec_buf_free(&tiny);
		free(packed);
	}
	/* A raw snappy header that claims 1 GiB is refused before anything is
	 * allocated for it. */
	uint8_t claim[8] = { 0x80, 0x80, 0x80, 0x80, 0x04, 0, 0, 0 };
	struct codec_buf out = { .max = 1 << 20 };
	assert_int_equal(codec_decompress(&cx, CODEC_SNAPPY, claim, sizeof(claim), &out, NULL),
			 -EFBIG);
	assert_null(out.p);
	free(t);
	codec_ctx_free(&cx);
}

/* A buffer too small for the output: -ENOSPC, never a write past it. */
static void compress_room(void **state)
{
	(void)state;
	struct codec_ctx cx = { 0 };
	uint8_t *r = noise(5000, 7);
	for (size_t i = 0; i < N_VARIANTS; i++) {
		uint8_t *out = malloc(100);
		assert_int_equal(codec_compress(&cx, variants[i].codec, variants[i].form, r, 5000,
						out, 100),
				 -ENOSPC);
		free(out);
	}
	free(r);
	codec_ctx_free(&cx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trips),
		cmocka_unit_test(formats_on_the_wire),
		cmocka_unit_test(foreign_streams),
		cmocka_unit_test(empty_and_garbage),
		cmocka_unit_test(truncated_and_flipped),
		cmocka_unit_test(size_limit),
		cmocka_unit_test(compress_room),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_codec: every generated message, at every valid version, survives
 * fill -> encode -> decode -> compare -> re-encode byte for byte; every
 * strict prefix of an encoding fails to decode (the decoder never mistakes a
 * short frame for a whole one), and mutated encodings decode or fail without
 * touching memory outside the input (run under ASan/UBSan to see that).
 *
 * One cmocka test per message, so a failure names the message; the version
 * and seed are printed to replay it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen/ktest_msgs.h"

/* Seeds per (message, version): enough for nulls, empty and full arrays and
 * present/absent tagged fields to all show up; 674 versions keep it fast. */
#define CODEC_SEEDS 32
#define CODEC_MUTATIONS 8
/* Past this, prefixes are sampled rather than all tried (records). */
#define CODEC_PREFIX_ALL_MAX 1024

struct codec_ctx {
	struct karena fill_arena, dec_arena;
	struct kwriter w1, w2;
	void *m1, *m2;
	uint8_t *buf, *buf2;
	size_t buf_cap;
};

static void codec_ctx_init(struct codec_ctx *c, size_t msg_size)
{
	karena_init(&c->fill_arena, 64 * 1024, 0);
	karena_init(&c->dec_arena, 64 * 1024, 0);
	kw_init(&c->w1, 256, 0);
	kw_init(&c->w2, 256, 0);
	c->m1 = calloc(1, msg_size);
	c->m2 = calloc(1, msg_size);
	c->buf = NULL;
	c->buf2 = NULL;
	c->buf_cap = 0;
	assert_non_null(c->m1);
	assert_non_null(c->m2);
}

static void codec_ctx_free(struct codec_ctx *c)
{
	karena_free(&c->fill_arena);
	karena_free(&c->dec_arena);
	kw_free(&c->w1);
	kw_free(&c->w2);
	free(c->m1);
	free(c->m2);
	free(c->buf);
	free(c->buf2);
}

static void codec_ctx_reserve(struct codec_ctx *c, size_t n)
{
	if (n <= c->buf_cap)
		return;
	free(c->buf);
	free(c->buf2);
	c->buf = malloc(n);
	c->buf2 = malloc(n);
	assert_non_null(c->buf);
	assert_non_null(c->buf2);
	c->buf_cap = n;
}

static bool codec_prefix_wanted(size_t plen, size_t n)
{
	if (n <= CODEC_PREFIX_ALL_MAX || plen < 256 || n - plen < 256)
		return true;
	return plen % 13 == 0;
}

static int codec_decode(struct codec_ctx *c, const struct ktest_msg *msg, int16_t v,
			const uint8_t *p, size_t len)
{
	struct kreader r;
	karena_reset(&c->dec_arena);
	kr_init(&r, p, len, &c->dec_arena);
	return msg->decode(&r, v, c->m2);
}

/* Bytes placed at the very end of buf2, so any read past them leaves the
 * allocation (ASan reports it). */
static uint8_t *codec_at_end(struct codec_ctx *c, const uint8_t *src, size_t len)
{
	uint8_t *at = c->buf2 + (c->buf_cap - len);
	memmove(at, src, len);
	return at;
}

static void codec_one(struct codec_ctx *c, const struct ktest_msg *msg, int16_t v, uint64_t seed)
{
	struct ktest_rng g;
	ktest_seed(&g, seed);
	karena_reset(&c->fill_arena);
	msg->fill(&g, &c->fill_arena, v, c->m1);

	kw_reset(&c->w1);
	int rc = msg->encode(&c->w1, v, c->m1);
	if (rc != 0)
		fail_msg("%s v%d seed %llu: encode %d", msg->name, v, (unsigned long long)seed, rc);
	size_t n = kw_total_len(&c->w1);
	codec_ctx_reserve(c, n + 1);
	assert_int_equal(kw_copy_out(&c->w1, c->buf, n), n);

	struct kreader r;
	karena_reset(&c->dec_arena);
	kr_init(&r, c->buf, n, &c->dec_arena);
	rc = msg->decode(&r, v, c->m2);
	if (rc != 0 || kr_remaining(&r) != 0)
		fail_msg("%s v%d seed %llu: decode %d, %zu bytes left of %zu", msg->name, v,
			 (unsigned long long)seed, rc, kr_remaining(&r), n);
	if (!msg->eq(c->m1, c->m2))
		fail_msg("%s v%d seed %llu: decoded differs", msg->name, v, (unsigned long long)seed);

	kw_reset(&c->w2);
	assert_int_equal(msg->encode(&c->w2, v, c->m2), 0);
	assert_int_equal(kw_total_len(&c->w2), n);
	assert_int_equal(kw_copy_out(&c->w2, c->buf2, n), n);
	if (memcmp(c->buf, c->buf2, n) != 0)
		fail_msg("%s v%d seed %llu: re-encoding differs", msg->name, v, (unsigned long long)seed);

	for (size_t plen = 0; plen < n; plen++) {
		if (!codec_prefix_wanted(plen, n))
			continue;
		if (codec_decode(c, msg, v, codec_at_end(c, c->buf, plen), plen) >= 0)
			fail_msg("%s v%d seed %llu: prefix %zu of %zu decoded", msg->name, v,
				 (unsigned long long)seed, plen, n);
	}

	/* Mutations: any outcome is fine except a crash or a stray read. */
	for (int i = 0; i < CODEC_MUTATIONS && n > 0; i++) {
		uint8_t *p = codec_at_end(c, c->buf, n);
		size_t at = ktest_u64(&g) % n;
		p[at] = (uint8_t)ktest_u64(&g);
		if (ktest_chance(&g, 2))
			p[at] |= 0x80;
		(void)codec_decode(c, msg, v, p, n);
	}
}

static void test_codec_message(void **state)
{
	const struct ktest_msg *msg = *state;
	struct codec_ctx c;
	codec_ctx_init(&c, msg->size);
	for (int v = msg->min_version; v <= msg->max_version; v++) {
		for (uint64_t s = 0; s < CODEC_SEEDS; s++)
			codec_one(&c, msg, (int16_t)v, s * 1000003u + (uint64_t)v);
	}
	codec_ctx_free(&c);
}

/* The API table agrees with the request and response schemas. */
static void test_codec_api_table(void **state)
{
	(void)state;
	assert_true(kafka_api_infos_count >= 80);
	for (size_t i = 0; i < kafka_api_infos_count; i++) {
		const struct kafka_api_info *a = &kafka_api_infos[i];
		assert_ptr_equal(kafka_api_info_get(a->api_key), a);
		assert_true(a->min_version <= a->max_version);
		if (i > 0)
			assert_true(kafka_api_infos[i - 1].api_key < a->api_key);
	}
	assert_null(kafka_api_info_get(-1));
	assert_null(kafka_api_info_get(32767));
	assert_int_equal(KAFKA_API_Produce, 0);
	assert_int_equal(KAFKA_API_Fetch, 1);
	assert_int_equal(KAFKA_API_Metadata, 3);
	assert_int_equal(KAFKA_API_ApiVersions, 18);
	assert_string_equal(kafka_api_info_get(KAFKA_API_ApiVersions)->name, "ApiVersions");
	assert_int_equal(kafka_api_info_get(KAFKA_API_Produce)->flexible_min, 9);
	assert_int_equal(kafka_api_info_get(KAFKA_API_Fetch)->flexible_min, 12);

	assert_int_equal(kafka_request_header_version(KAFKA_API_Produce, 8), 1);
	assert_int_equal(kafka_request_header_version(KAFKA_API_Produce, 9), 2);
	assert_int_equal(kafka_request_header_version(KAFKA_API_ControlledShutdown, 0), 0);
	assert_int_equal(kafka_request_header_version(KAFKA_API_ControlledShutdown, 1), 1);
	assert_int_equal(kafka_request_header_version(KAFKA_API_ApiVersions, 3), 2);
	assert_int_equal(kafka_response_header_version(KAFKA_API_ApiVersions, 3), 0);
	assert_int_equal(kafka_response_header_version(KAFKA_API_ApiVersions, 4), 0);
	assert_int_equal(kafka_response_header_version(KAFKA_API_Fetch, 11), 0);
	assert_int_equal(kafka_response_header_version(KAFKA_API_Fetch, 12), 1);
	assert_int_equal(kafka_request_header_version(-5, 0), -1);
}

int main(void)
{
	struct CMUnitTest *tests = calloc(ktest_msgs_count + 1, sizeof(*tests));
	assert_non_null(tests);
	tests[0] = (struct CMUnitTest)cmocka_unit_test(test_codec_api_table);
	for (size_t i = 0; i < ktest_msgs_count; i++) {
		tests[i + 1] = (struct CMUnitTest){
			.name = ktest_msgs[i].name,
			.test_func = test_codec_message,
			.initial_state = (void *)&ktest_msgs[i],
		};
	}
	int rc = _cmocka_run_group_tests("kafka_codec", tests, ktest_msgs_count + 1, NULL, NULL);
	free(tests);
	return rc;
}

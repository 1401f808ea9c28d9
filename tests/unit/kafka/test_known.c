/*
 * test_known: the generated codec against bytes written out by hand from the
 * protocol guide, so a generator bug that is symmetric (encode and decode
 * wrong the same way) still shows up. Each frame is decoded, checked field by
 * field, re-encoded and compared byte for byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/gen/kafka_msgs.h"
#include "kafka/kafka_errors.h"
#include "kafka/kafka_wire.h"

static struct karena arena;

static int setup(void **state)
{
	(void)state;
	karena_init(&arena, 4096, 1 << 20);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	karena_free(&arena);
	return 0;
}

static void expect_encoding(struct kwriter *w, const uint8_t *want, size_t n)
{
	uint8_t *got = malloc(n + 1);
	assert_non_null(got);
	assert_int_equal(w->err, 0);
	assert_int_equal(kw_total_len(w), n);
	assert_int_equal(kw_copy_out(w, got, n + 1), n);
	assert_memory_equal(got, want, n);
	free(got);
}

/* RequestHeader v2 + ApiVersionsRequest v3, as librdkafka sends it. The
 * client id keeps the classic int16 length even in header v2. */
static const uint8_t apiversions_v3[] = {
	0x00, 0x12,             /* RequestApiKey 18 */
	0x00, 0x03,             /* RequestApiVersion 3 */
	0x00, 0x00, 0x00, 0x07, /* CorrelationId 7 */
	0x00, 0x07, 'r', 'd', 'k', 'a', 'f', 'k', 'a', /* ClientId: STRING */
	0x00,                                           /* header tagged fields */
	0x0b, 'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a', /* ClientSoftwareName: COMPACT_STRING */
	0x06, '2', '.', '3', '.', '0',                        /* ClientSoftwareVersion */
	0x00,                                                 /* body tagged fields */
};

static void test_known_apiversions_request(void **state)
{
	(void)state;
	struct kreader r;
	kr_init(&r, apiversions_v3, sizeof(apiversions_v3), &arena);
	struct kafka_RequestHeader hdr;
	int16_t hv = kafka_request_header_version(KAFKA_API_ApiVersions, 3);
	assert_int_equal(hv, 2);
	assert_int_equal(kafka_RequestHeader_decode(&r, hv, &hdr), 0);
	assert_int_equal(hdr.RequestApiKey, 18);
	assert_int_equal(hdr.RequestApiVersion, 3);
	assert_int_equal(hdr.CorrelationId, 7);
	assert_true(kstr_eq_cstr(hdr.ClientId, "rdkafka"));
	assert_ptr_equal(hdr.ClientId.ptr, (const char *)apiversions_v3 + 10);

	struct kafka_ApiVersionsRequest body;
	assert_int_equal(kafka_ApiVersionsRequest_decode(&r, 3, &body), 0);
	assert_true(kstr_eq_cstr(body.ClientSoftwareName, "librdkafka"));
	assert_true(kstr_eq_cstr(body.ClientSoftwareVersion, "2.3.0"));
	assert_int_equal(kr_remaining(&r), 0);

	struct kwriter w;
	kw_init(&w, 64, 0);
	assert_int_equal(kafka_RequestHeader_encode(&w, hv, &hdr), 0);
	assert_int_equal(kafka_ApiVersionsRequest_encode(&w, 3, &body), 0);
	expect_encoding(&w, apiversions_v3, sizeof(apiversions_v3));
	kw_free(&w);
}

/* RequestHeader v1 with a null client id, and v0 without one. */
static void test_known_request_header_v1_v0(void **state)
{
	(void)state;
	static const uint8_t v1[] = { 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xff };
	struct kreader r;
	kr_init(&r, v1, sizeof(v1), &arena);
	struct kafka_RequestHeader hdr;
	assert_int_equal(kafka_RequestHeader_decode(&r, 1, &hdr), 0);
	assert_int_equal(hdr.RequestApiVersion, 5);
	assert_int_equal(hdr.CorrelationId, 42);
	assert_true(kstr_is_null(hdr.ClientId));
	assert_int_equal(kr_remaining(&r), 0);

	kr_init(&r, v1, 8, &arena);
	assert_int_equal(kafka_RequestHeader_decode(&r, 0, &hdr), 0);
	assert_int_equal(hdr.CorrelationId, 42);
	assert_int_equal(kr_remaining(&r), 0);
	assert_int_equal(kafka_request_header_version(KAFKA_API_ControlledShutdown, 0), 0);
}

/* ApiVersionsResponse v3 with one key, a tagged FinalizedFeaturesEpoch, and
 * an unknown tag the decoder must skip. */
static const uint8_t apiversions_resp_v3[] = {
	0x00, 0x00,                   /* ErrorCode */
	0x02,                         /* ApiKeys: compact array of 1 */
	0x00, 0x00, 0x00, 0x03, 0x00, 0x0b, 0x00, /* Produce 3..11, no tags */
	0x00, 0x00, 0x00, 0x00,       /* ThrottleTimeMs */
	0x01,                         /* one tagged field */
	0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, /* tag 1, 8 bytes: epoch 5 */
};

static void test_known_apiversions_response(void **state)
{
	(void)state;
	struct kreader r;
	kr_init(&r, apiversions_resp_v3, sizeof(apiversions_resp_v3), &arena);
	struct kafka_ApiVersionsResponse resp;
	assert_int_equal(kafka_ApiVersionsResponse_decode(&r, 3, &resp), 0);
	assert_int_equal(resp.ErrorCode, KAFKA_NONE);
	assert_int_equal(resp.ApiKeys_count, 1);
	assert_int_equal(resp.ApiKeys[0].ApiKey, KAFKA_API_Produce);
	assert_int_equal(resp.ApiKeys[0].MinVersion, 3);
	assert_int_equal(resp.ApiKeys[0].MaxVersion, 11);
	assert_true(resp.FinalizedFeaturesEpoch == 5);
	assert_int_equal(resp.SupportedFeatures_count, 0);
	assert_false(resp.ZkMigrationReady);
	assert_int_equal(kr_remaining(&r), 0);

	struct kwriter w;
	kw_init(&w, 64, 0);
	assert_int_equal(kafka_ApiVersionsResponse_encode(&w, 3, &resp), 0);
	expect_encoding(&w, apiversions_resp_v3, sizeof(apiversions_resp_v3));

	/* Defaults are not written: FinalizedFeaturesEpoch -1 is its default. */
	kafka_ApiVersionsResponse_init(&resp);
	assert_true(resp.FinalizedFeaturesEpoch == -1);
	kw_reset(&w);
	assert_int_equal(kafka_ApiVersionsResponse_encode(&w, 3, &resp), 0);
	static const uint8_t empty_v3[] = { 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00 };
	expect_encoding(&w, empty_v3, sizeof(empty_v3));
	/* v0: no throttle time, classic array. */
	kw_reset(&w);
	assert_int_equal(kafka_ApiVersionsResponse_encode(&w, 0, &resp), 0);
	static const uint8_t empty_v0[] = { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	expect_encoding(&w, empty_v0, sizeof(empty_v0));
	kw_free(&w);

	/* An unknown tag (7) is skipped; a known tag with a short value fails. */
	static const uint8_t unknown_tag[] = { 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
					       0x01, 0x07, 0x02, 0xaa, 0xbb };
	kr_init(&r, unknown_tag, sizeof(unknown_tag), &arena);
	assert_int_equal(kafka_ApiVersionsResponse_decode(&r, 3, &resp), 0);
	assert_int_equal(kr_remaining(&r), 0);
	static const uint8_t short_tag[] = { 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
					     0x01, 0x01, 0x02, 0xaa, 0xbb };
	kr_init(&r, short_tag, sizeof(short_tag), &arena);
	assert_int_equal(kafka_ApiVersionsResponse_decode(&r, 3, &resp), -KWIRE_ERR_TRUNCATED);
}

/* ProduceRequest v3 (classic encoding): records are zero-copy. */
static const uint8_t produce_v3[] = {
	0xff, 0xff,             /* TransactionalId: null */
	0xff, 0xff,             /* Acks -1 */
	0x00, 0x00, 0x75, 0x30, /* TimeoutMs 30000 */
	0x00, 0x00, 0x00, 0x01, /* TopicData: 1 */
	0x00, 0x03, 'f', 'o', 'o',
	0x00, 0x00, 0x00, 0x01, /* PartitionData: 1 */
	0x00, 0x00, 0x00, 0x02, /* Index 2 */
	0x00, 0x00, 0x00, 0x03, 0xde, 0xad, 0x01, /* Records: 3 bytes */
};

static void test_known_produce(void **state)
{
	(void)state;
	struct kreader r;
	kr_init(&r, produce_v3, sizeof(produce_v3), &arena);
	struct kafka_ProduceRequest req;
	assert_int_equal(kafka_ProduceRequest_decode(&r, 3, &req), 0);
	assert_true(kstr_is_null(req.TransactionalId));
	assert_int_equal(req.Acks, -1);
	assert_int_equal(req.TimeoutMs, 30000);
	assert_int_equal(req.TopicData_count, 1);
	assert_true(kstr_eq_cstr(req.TopicData[0].Name, "foo"));
	assert_int_equal(req.TopicData[0].PartitionData_count, 1);
	struct kbytes rec = req.TopicData[0].PartitionData[0].Records;
	assert_int_equal(req.TopicData[0].PartitionData[0].Index, 2);
	assert_int_equal(rec.len, 3);
	assert_ptr_equal(rec.ptr, produce_v3 + sizeof(produce_v3) - 3);

	struct kwriter w;
	kw_init(&w, 64, 0);
	assert_int_equal(kafka_ProduceRequest_encode(&w, 3, &req), 0);
	expect_encoding(&w, produce_v3, sizeof(produce_v3));
	kw_free(&w);

	/* A decode arena too small for the arrays: NOMEM, not a crash. */
	struct karena tiny;
	karena_init(&tiny, 64, 16);
	kr_init(&r, produce_v3, sizeof(produce_v3), &tiny);
	assert_int_equal(kafka_ProduceRequest_decode(&r, 3, &req), -KWIRE_ERR_NOMEM);
	karena_free(&tiny);
}

/* A nullable struct field is an int8 marker (-1 null) before the struct. */
static void test_known_nullable_struct(void **state)
{
	(void)state;
	struct kafka_ConsumerGroupHeartbeatResponse resp;
	kafka_ConsumerGroupHeartbeatResponse_init(&resp);
	assert_false(resp.Assignment_present);
	struct kwriter w;
	kw_init(&w, 64, 0);
	assert_int_equal(kafka_ConsumerGroupHeartbeatResponse_encode(&w, 0, &resp), 0);
	static const uint8_t null_assignment[] = {
		0x00, 0x00, 0x00, 0x00, /* ThrottleTimeMs */
		0x00, 0x00,             /* ErrorCode */
		0x00,                   /* ErrorMessage: null */
		0x00,                   /* MemberId: null */
		0x00, 0x00, 0x00, 0x00, /* MemberEpoch */
		0x00, 0x00, 0x00, 0x00, /* HeartbeatIntervalMs */
		0xff,                   /* Assignment: null */
		0x00,                   /* tagged fields */
	};
	expect_encoding(&w, null_assignment, sizeof(null_assignment));

	resp.Assignment_present = true;
	kw_reset(&w);
	assert_int_equal(kafka_ConsumerGroupHeartbeatResponse_encode(&w, 0, &resp), 0);
	static const uint8_t empty_assignment[] = {
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01,       /* Assignment present */
		0x01, 0x00, /* TopicPartitions: empty; struct tagged fields */
		0x00,       /* tagged fields */
	};
	expect_encoding(&w, empty_assignment, sizeof(empty_assignment));
	struct kreader r;
	kr_init(&r, empty_assignment, sizeof(empty_assignment), &arena);
	assert_int_equal(kafka_ConsumerGroupHeartbeatResponse_decode(&r, 0, &resp), 0);
	assert_true(resp.Assignment_present);
	kw_free(&w);
}

static void test_known_errors(void **state)
{
	(void)state;
	assert_int_equal(KAFKA_UNKNOWN_SERVER_ERROR, -1);
	assert_int_equal(KAFKA_NONE, 0);
	assert_int_equal(KAFKA_UNKNOWN_TOPIC_OR_PARTITION, 3);
	assert_int_equal(KAFKA_NOT_LEADER_OR_FOLLOWER, 6);
	assert_int_equal(KAFKA_UNSUPPORTED_VERSION, 35);
	assert_int_equal(KAFKA_KAFKA_STORAGE_ERROR, 56);
	assert_int_equal(KAFKA_UNKNOWN_TOPIC_ID, 100);
	assert_string_equal(kafka_error_name(KAFKA_UNKNOWN_SERVER_ERROR), "UNKNOWN_SERVER_ERROR");
	assert_string_equal(kafka_error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
	assert_string_equal(kafka_error_name(KAFKA_ERROR_CODE_MAX), "SHARE_SESSION_LIMIT_REACHED");
	assert_string_equal(kafka_error_name(-2), "UNKNOWN_ERROR_CODE");
	assert_string_equal(kafka_error_name(9999), "UNKNOWN_ERROR_CODE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_apiversions_request),
		cmocka_unit_test(test_known_request_header_v1_v0),
		cmocka_unit_test(test_known_apiversions_response),
		cmocka_unit_test(test_known_produce),
		cmocka_unit_test(test_known_nullable_struct),
		cmocka_unit_test(test_known_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Record batch v2: CRC-32C, header parsing and validation, the record
 * iterator, broker-side patching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/be.h"
#include "test_util.h"

/* A batch as sarama (an independent Go implementation, checked against
 * real brokers) encodes it in its record_test.go: one record, key
 * 01 02 03 04, value 05 06 07, one header 08 09 0a -> 0b 0c, first
 * timestamp 1479847795000, CRC 0x547961FD. */
static const uint8_t sarama_batch[] = {
	0, 0, 0, 0, 0, 0, 0, 0,           /* base offset */
	0, 0, 0, 70,                      /* batch length */
	0, 0, 0, 0,                       /* partition leader epoch */
	2,                                /* magic */
	0x54, 0x79, 0x61, 0xfd,           /* crc */
	0, 0,                             /* attributes */
	0, 0, 0, 0,                       /* last offset delta */
	0, 0, 1, 88, 141, 205, 89, 56,    /* base timestamp */
	0, 0, 0, 0, 0, 0, 0, 0,           /* max timestamp */
	0, 0, 0, 0, 0, 0, 0, 0,           /* producer id */
	0, 0,                             /* producer epoch */
	0, 0, 0, 0,                       /* base sequence */
	0, 0, 0, 1,                       /* records count */
	40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12,
};

static void crc32c_check_value(void **state)
{
	(void)state;
	assert_int_equal(batch_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(batch_crc32c("", 0), 0);
}

static void crc32c_matches_kafka_batch(void **state)
{
	(void)state;
	assert_int_equal(batch_crc32c(sarama_batch + 21, sizeof(sarama_batch) - 21), 0x547961FDu);
	struct batch_hdr h;
	assert_int_equal(batch_validate(sarama_batch, sizeof(sarama_batch), &h),
			 (int)sizeof(sarama_batch));
	assert_int_equal(h.batch_length, 70);
	assert_int_equal(h.magic, 2);
	assert_int_equal(h.crc, 0x547961FDu);
	assert_int_equal(h.base_timestamp, 1479847795000LL);
	assert_int_equal(h.records_count, 1);
	assert_int_equal(h.last_offset_delta, 0);

	struct batch_rec_iter it;
	struct batch_rec r;
	assert_int_equal(batch_rec_iter_init(&it, sarama_batch, sizeof(sarama_batch), &h), 0);
	assert_int_equal(batch_rec_iter_next(&it, &r), 1);
	assert_int_equal(r.offset_delta, 0);
	assert_int_equal(r.timestamp_delta, 5);
	assert_int_equal(batch_rec_iter_next(&it, &r), 0);
}

/* A second known vector from the same source: the empty batch. */
static void crc32c_matches_empty_kafka_batch(void **state)
{
	(void)state;
	uint8_t b[61] = { 0 };
	be32_store(b + 8, 49);
	b[16] = 2;
	assert_int_equal(batch_crc32c(b + 21, 40), 0x595FB7DDu);
}

static void validate_own_batches(void **state)
{
	(void)state;
	uint8_t buf[4096];
	struct tu_batch_spec spec = tu_spec(5, 1000, 10);
	size_t len = tu_batch(buf, sizeof(buf), &spec);
	struct batch_hdr h;
	assert_int_equal(batch_validate(buf, len, &h), (int)len);
	assert_int_equal(h.records_count, 5);
	assert_int_equal(h.last_offset_delta, 4);
	assert_int_equal(h.max_timestamp, 1004);
	/* Trailing bytes are the caller's business: the size says where the
	 * batch ends. */
	assert_int_equal(batch_validate(buf, len + 100, &h), (int)len);
}

static void validate_errors(void **state)
{
	(void)state;
	uint8_t buf[4096], bad[4096];
	struct tu_batch_spec spec = tu_spec(3, 1000, 10);
	size_t len = tu_batch(buf, sizeof(buf), &spec);
	struct batch_hdr h;

	/* Magic 0 and 1 (old message sets), even when short. */
	for (uint8_t m = 0; m < 2; m++) {
		memcpy(bad, buf, len);
		bad[16] = m;
		assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_MAGIC);
		assert_int_equal(batch_validate(bad, 30, &h), BATCH_ERR_MAGIC);
	}
	/* Bad CRC: a flipped record byte, and a flipped CRC. */
	memcpy(bad, buf, len);
	bad[len - 1] ^= 1;
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_CRC);
	memcpy(bad, buf, len);
	bad[18] ^= 0x80;
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_CRC);
	/* Fields outside the CRC do not matter to it. */
	memcpy(bad, buf, len);
	batch_set_base_offset(bad, 12345);
	batch_set_leader_epoch(bad, 9);
	assert_int_equal(batch_validate(bad, len, &h), (int)len);
	assert_int_equal(h.base_offset, 12345);
	assert_int_equal(h.partition_leader_epoch, 9);
	/* Truncated: before magic, inside the header, inside the records. */
	assert_int_equal(batch_validate(buf, 10, &h), BATCH_ERR_TRUNCATED);
	assert_int_equal(batch_validate(buf, 40, &h), BATCH_ERR_TRUNCATED);
	assert_int_equal(batch_validate(buf, len - 1, &h), BATCH_ERR_TRUNCATED);
	/* Absurd lengths and counts. */
	memcpy(bad, buf, len);
	be32_store(bad + 8, 10);
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_INVALID);
	be32_store(bad + 8, (uint32_t)-5);
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_INVALID);
	be32_store(bad + 8, 0x7fffffff);
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_INVALID);
	memcpy(bad, buf, len);
	be32_store(bad + 57, (uint32_t)-1);
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_INVALID);
	memcpy(bad, buf, len);
	be32_store(bad + 23, (uint32_t)-1);
	assert_int_equal(batch_validate(bad, len, &h), BATCH_ERR_INVALID);
	/* batch_parse needs only the header. */
	assert_int_equal(batch_parse(buf, BATCH_HEADER_BYTES, &h), (int)len);
}

static void record_iterator(void **state)
{
	(void)state;
	uint8_t buf[4096];
	const int64_t deltas[] = { 0, 50, -20, 400 };
	struct tu_batch_spec spec = tu_spec(4, 10000, 3);
	spec.ts_deltas = deltas;
	size_t len = tu_batch(buf, sizeof(buf), &spec);
	struct batch_hdr h;
	assert_int_equal(batch_validate(buf, len, &h), (int)len);
	struct batch_rec_iter it;
	struct batch_rec r;
	assert_int_equal(batch_rec_iter_init(&it, buf, len, &h), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(batch_rec_iter_next(&it, &r), 1);
		assert_int_equal(r.offset_delta, i);
		assert_int_equal(r.timestamp_delta, deltas[i]);
	}
	assert_int_equal(batch_rec_iter_next(&it, &r), 0);
	/* A record length past the batch is malformed, not a crash. */
	assert_int_equal(batch_rec_iter_init(&it, buf, 70, &h), 0);
	assert_int_equal(batch_rec_iter_next(&it, &r), BATCH_ERR_INVALID);
	/* Compressed batches are not walked. */
	h.attributes = 1;
	assert_int_equal(batch_rec_iter_init(&it, buf, len, &h), BATCH_ERR_INVALID);
}

static void sequence_wraps(void **state)
{
	(void)state;
	assert_int_equal(batch_seq_add(5, 3), 8);
	assert_int_equal(batch_seq_add(INT32_MAX, 1), 0);
	assert_int_equal(batch_seq_add(INT32_MAX - 1, 3), 1);
	assert_int_equal(batch_seq_add(INT32_MAX, 0), INT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc32c_check_value),
		cmocka_unit_test(crc32c_matches_kafka_batch),
		cmocka_unit_test(crc32c_matches_empty_kafka_batch),
		cmocka_unit_test(validate_own_batches),
		cmocka_unit_test(validate_errors),
		cmocka_unit_test(record_iterator),
		cmocka_unit_test(sequence_wraps),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * batch: Kafka record batch (magic v2) headers: parse, validate, patch, and
 * walk the records of an uncompressed batch.
 *
 * Layout (big-endian, offsets in bytes):
 *   0 baseOffset int64       8 batchLength int32     12 partitionLeaderEpoch int32
 *  16 magic int8            17 crc uint32            21 attributes int16
 *  23 lastOffsetDelta int32 27 baseTimestamp int64   35 maxTimestamp int64
 *  43 producerId int64      51 producerEpoch int16   53 baseSequence int32
 *  57 recordsCount int32    61 records...
 * batchLength counts the bytes after itself, so a batch is 12 + batchLength
 * bytes. The CRC-32C covers attributes to the end, so baseOffset and
 * partitionLeaderEpoch can be assigned by the broker without recomputing it.
 *
 * Pure functions on caller-owned memory: any thread, never block, no I/O.
 */
#ifndef SLUICE_STORAGE_BATCH_H
#define SLUICE_STORAGE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#define BATCH_HEADER_BYTES 61
#define BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define BATCH_MAGIC_OFFSET 16
#define BATCH_CRC_OFFSET 17
#define BATCH_ATTRIBUTES_OFFSET 21
#define BATCH_LEADER_EPOCH_OFFSET 12
#define BATCH_MAX_TIMESTAMP_OFFSET 35

#define BATCH_ATTR_COMPRESSION_MASK 0x07
#define BATCH_ATTR_TIMESTAMP_TYPE 0x08
#define BATCH_ATTR_TRANSACTIONAL 0x10
#define BATCH_ATTR_CONTROL 0x20

#define BATCH_NO_TIMESTAMP (-1)

struct batch_hdr {
	int64_t base_offset;
	int32_t batch_length;
	int32_t partition_leader_epoch;
	int8_t magic;
	uint32_t crc;
	int16_t attributes;
	int32_t last_offset_delta;
	int64_t base_timestamp, max_timestamp;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_sequence;
	int32_t records_count;
};

enum batch_err {
	BATCH_ERR_TRUNCATED = -1, /* shorter than the header or than its batchLength */
	BATCH_ERR_MAGIC = -2,     /* magic != 2 (v0/v1 message sets are not stored) */
	BATCH_ERR_CRC = -3,       /* CRC-32C mismatch */
	BATCH_ERR_INVALID = -4,   /* impossible lengths or counts */
};

/* CRC-32C (Castagnoli), as Kafka and iSCSI define it: initial value and
 * final xor 0xFFFFFFFF. crc32c("123456789") == 0xE3069283. */
uint32_t batch_crc32c(const void *p, size_t n);

/* Decode the 61-byte header at p into *h and check what the header alone
 * can tell: len >= 17 to see magic (else TRUNCATED), magic == 2 (else
 * MAGIC; checked before any v2 field is interpreted), len >= 61 (else
 * TRUNCATED), batchLength within [49, BATCH_BYTES_MAX], lastOffsetDelta >= 0,
 * recordsCount >= 0 (else INVALID). It does NOT require the whole batch to
 * be in [p, p+len), so header-only reads can use it.
 * Returns the batch's total size (12 + batchLength) or a BATCH_ERR_*. */
int batch_parse(const uint8_t *p, size_t len, struct batch_hdr *h);

/* batch_parse, plus: the whole batch lies within len (else TRUNCATED) and
 * its CRC is right (else CRC). len may hold more bytes after the batch (the
 * caller decides whether that is allowed). Returns the batch's total size or
 * a BATCH_ERR_*. Records themselves are not decoded (see batch_rec_iter). */
int batch_validate(const uint8_t *p, size_t len, struct batch_hdr *h);

/* Assign the broker's fields in place; both lie outside the CRC. */
void batch_set_base_offset(uint8_t *p, int64_t base_offset);
void batch_set_leader_epoch(uint8_t *p, int32_t partition_leader_epoch);

/* Stamp a validated batch (h from batch_validate) with the broker's clock
 * for a message.timestamp.type=LogAppendTime topic: sets the timestamp-type
 * attribute and max_timestamp, recomputes the CRC, updates h. */
void batch_set_log_append_time(uint8_t *p, size_t len, int64_t now_ms, struct batch_hdr *h);

static inline int batch_compression(const struct batch_hdr *h)
{
	return h->attributes & BATCH_ATTR_COMPRESSION_MASK;
}

/* Last sequence number of a batch: baseSequence + lastOffsetDelta, wrapping
 * from INT32_MAX to 0 as Kafka's DefaultRecordBatch.incrementSequence does. */
int32_t batch_seq_add(int32_t seq, int32_t delta);

/* Iterator over the records of an UNCOMPRESSED batch. Only the fields needed
 * for offset and timestamp lookups are decoded; the rest of each record is
 * skipped by its length. The iterator points into the caller's batch. */
struct batch_rec_iter {
	const uint8_t *p, *end;
	int32_t left; /* records not yet returned */
};

struct batch_rec {
	int32_t offset_delta;
	int64_t timestamp_delta;
};

/* batch is the whole batch (as validated), h its header. Returns 0, or
 * BATCH_ERR_INVALID if the batch is compressed. */
int batch_rec_iter_init(struct batch_rec_iter *it, const uint8_t *batch, size_t len,
			const struct batch_hdr *h);

/* Returns 1 with *rec filled, 0 at the end, or BATCH_ERR_INVALID if a record
 * is malformed (bad varint, length past the batch). */
int batch_rec_iter_next(struct batch_rec_iter *it, struct batch_rec *rec);

#endif

/*
 * batch: Kafka record batch v2 header decoding and validation.
 *
 * Everything here treats the bytes as untrusted (they come from clients and
 * from disks that may have been torn): every length is checked against the
 * buffer before it is used, and nothing asserts on content.
 */
#include "storage/batch.h"

#include <isa-l/crc.h>
#include <limits.h>

#include "storage/be.h"
#include "storage/limits.h"

_Static_assert(BATCH_HEADER_BYTES == 61, "v2 header size");
_Static_assert(BATCH_BYTES_MAX <= INT32_MAX, "batch size fits batchLength");

uint32_t batch_crc32c(const void *p, size_t n)
{
	/* isa-l's crc32_iscsi neither inverts its input state nor its result,
	 * and takes an int length: chain it in chunks, inverting once at each
	 * end, which yields the standard CRC-32C that Kafka uses. */
	const unsigned char *b = p;
	unsigned int crc = 0xFFFFFFFFu;
	while (n > 0) {
		int chunk = n > (size_t)(1 << 30) ? (1 << 30) : (int)n;
		crc = crc32_iscsi((unsigned char *)b, chunk, crc);
		b += chunk;
		n -= (size_t)chunk;
	}
	return ~crc;
}

int batch_parse(const uint8_t *p, size_t len, struct batch_hdr *h)
{
	if (len < BATCH_MAGIC_OFFSET + 1)
		return BATCH_ERR_TRUNCATED;
	/* Magic decides how the rest is laid out, so it comes first. */
	h->magic = (int8_t)p[BATCH_MAGIC_OFFSET];
	if (h->magic != 2)
		return BATCH_ERR_MAGIC;
	if (len < BATCH_HEADER_BYTES)
		return BATCH_ERR_TRUNCATED;
	h->base_offset = (int64_t)be64_load(p + 0);
	h->batch_length = (int32_t)be32_load(p + 8);
	h->partition_leader_epoch = (int32_t)be32_load(p + 12);
	h->crc = be32_load(p + 17);
	h->attributes = (int16_t)be16_load(p + 21);
	h->last_offset_delta = (int32_t)be32_load(p + 23);
	h->base_timestamp = (int64_t)be64_load(p + 27);
	h->max_timestamp = (int64_t)be64_load(p + 35);
	h->producer_id = (int64_t)be64_load(p + 43);
	h->producer_epoch = (int16_t)be16_load(p + 51);
	h->base_sequence = (int32_t)be32_load(p + 53);
	h->records_count = (int32_t)be32_load(p + 57);
	if (h->batch_length < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD ||
	    h->batch_length > BATCH_BYTES_MAX - BATCH_LOG_OVERHEAD)
		return BATCH_ERR_INVALID;
	if (h->last_offset_delta < 0 || h->records_count < 0)
		return BATCH_ERR_INVALID;
	return BATCH_LOG_OVERHEAD + h->batch_length;
}

int batch_validate(const uint8_t *p, size_t len, struct batch_hdr *h)
{
	int size = batch_parse(p, len, h);
	if (size < 0)
		return size;
	if ((size_t)size > len)
		return BATCH_ERR_TRUNCATED;
	uint32_t crc = batch_crc32c(p + BATCH_ATTRIBUTES_OFFSET,
				    (size_t)size - BATCH_ATTRIBUTES_OFFSET);
	if (crc != h->crc)
		return BATCH_ERR_CRC;
	return size;
}

void batch_set_base_offset(uint8_t *p, int64_t base_offset)
{
	be64_store(p, (uint64_t)base_offset);
}

void batch_set_leader_epoch(uint8_t *p, int32_t partition_leader_epoch)
{
	be32_store(p + BATCH_LEADER_EPOCH_OFFSET, (uint32_t)partition_leader_epoch);
}

void batch_set_log_append_time(uint8_t *p, size_t len, int64_t now_ms, struct batch_hdr *h)
{
	/* Both fields are inside the CRC, so it is computed again. The base
	 * timestamp and the records' deltas stay: with the type bit set,
	 * readers take max_timestamp for every record, as Kafka does. */
	h->attributes = (int16_t)(h->attributes | BATCH_ATTR_TIMESTAMP_TYPE);
	h->max_timestamp = now_ms;
	be16_store(p + BATCH_ATTRIBUTES_OFFSET, (uint16_t)h->attributes);
	be64_store(p + BATCH_MAX_TIMESTAMP_OFFSET, (uint64_t)now_ms);
	h->crc = batch_crc32c(p + BATCH_ATTRIBUTES_OFFSET, len - BATCH_ATTRIBUTES_OFFSET);
	be32_store(p + BATCH_CRC_OFFSET, h->crc);
}

int32_t batch_seq_add(int32_t seq, int32_t delta)
{
	if (seq > INT32_MAX - delta)
		return delta - (INT32_MAX - seq) - 1;
	return seq + delta;
}

int batch_rec_iter_init(struct batch_rec_iter *it, const uint8_t *batch, size_t len,
			const struct batch_hdr *h)
{
	if (batch_compression(h) != 0 || len < BATCH_HEADER_BYTES)
		return BATCH_ERR_INVALID;
	it->p = batch + BATCH_HEADER_BYTES;
	it->end = batch + len;
	it->left = h->records_count;
	return 0;
}

/* Protobuf-style unsigned varint of at most max_bytes; 0 or -1. */
static int varint_read(const uint8_t **pp, const uint8_t *end, int max_bytes, uint64_t *out)
{
	uint64_t v = 0;
	const uint8_t *p = *pp;
	for (int i = 0; i < max_bytes; i++) {
		if (p >= end)
			return -1;
		uint8_t b = *p++;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int64_t zigzag_decode(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int batch_rec_iter_next(struct batch_rec_iter *it, struct batch_rec *rec)
{
	if (it->left <= 0)
		return 0;
	uint64_t len, ts, od;
	const uint8_t *p = it->p;
	if (varint_read(&p, it->end, 5, &len) != 0)
		return BATCH_ERR_INVALID;
	int64_t rec_len = zigzag_decode(len);
	if (rec_len < 3 || rec_len > it->end - p)
		return BATCH_ERR_INVALID;
	const uint8_t *rec_end = p + rec_len;
	p++; /* attributes: unused in v2 */
	if (varint_read(&p, rec_end, 10, &ts) != 0 || varint_read(&p, rec_end, 5, &od) != 0)
		return BATCH_ERR_INVALID;
	int64_t offset_delta = zigzag_decode(od);
	if (offset_delta < 0 || offset_delta > INT32_MAX)
		return BATCH_ERR_INVALID;
	rec->timestamp_delta = zigzag_decode(ts);
	rec->offset_delta = (int32_t)offset_delta;
	it->p = rec_end;
	it->left--;
	return 1;
}

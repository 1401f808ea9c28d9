/*
 * compact_batch: the record-level half of compaction: read the keys of a
 * batch's records and write the batch again without some of them.
 *
 * Kept records are copied byte for byte: a v2 record carries its offset
 * and timestamp as deltas from the batch's base offset and base timestamp,
 * which a rewritten batch keeps, so nothing inside a record changes. The
 * rewritten batch keeps every header field (base offset, lastOffsetDelta,
 * leader epoch, attributes, base timestamp, producer id, epoch and base
 * sequence) but recordsCount, batchLength, maxTimestamp (the largest
 * retained timestamp, for CreateTime) and the CRC. A batch left with no
 * record, when it must be kept, is its header alone with the compression
 * bits cleared (what Kafka writes for an emptied batch).
 *
 * Codecs: uncompressed batches, and gzip ones (inflated and deflated again
 * with isa-l's igzip, the library the storage code links for CRC-32C).
 * Sluice has no snappy, lz4 or zstd code: such batches are not looked into
 * (compact_batch_records answers 0) and the cleaner keeps them whole.
 *
 * Threading: a codec context belongs to one thread. No I/O.
 */
#ifndef SLUICE_STORAGE_COMPACT_BATCH_H
#define SLUICE_STORAGE_COMPACT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/batch.h"

#define COMPACT_CODEC_NONE 0
#define COMPACT_CODEC_GZIP 1

/* One record as the cleaner sees it. */
struct compact_rec {
	int32_t offset_delta;
	int64_t timestamp_delta;
	const uint8_t *key;  /* NULL: no key (null) */
	int32_t key_len;
	bool tombstone;      /* null value */
	const uint8_t *value; /* NULL for a tombstone */
	int32_t value_len;
	const uint8_t *raw;  /* the whole record, its length varint included */
	size_t raw_len;
};

/* Buffers for gzip work, grown on demand up to COMPACT_INFLATE_BYTES_MAX
 * and kept between batches. Zero-initialise; free with
 * compact_codec_free. */
struct compact_codec {
	struct inflate_state *inflate;
	uint8_t *plain;      /* inflated records */
	size_t plain_cap;
	uint8_t *level_buf;  /* deflate's working memory */
};

void compact_codec_free(struct compact_codec *cc);

/* The records of the whole, CRC-checked batch at p (header h): 1 with
 * [*recs, *recs + *len), inflated into cc for gzip; 0 when they cannot be
 * looked into (another codec, or they inflate past
 * COMPACT_INFLATE_BYTES_MAX); -EINVAL when the gzip stream is corrupt;
 * -ENOMEM. */
int compact_batch_records(struct compact_codec *cc, const uint8_t *p, const struct batch_hdr *h,
			  const uint8_t **recs, size_t *len);

/* Walk records decoded from a records region. */
struct compact_rec_iter {
	const uint8_t *p, *end;
	int32_t left;
};

static inline void compact_rec_iter_init(struct compact_rec_iter *it, const uint8_t *recs,
					 size_t len, int32_t count)
{
	it->p = recs;
	it->end = recs + len;
	it->left = count;
}

/* 1 with *r filled, 0 at the end, BATCH_ERR_INVALID for a malformed record
 * (lengths past the region, bad varints, offsets out of order are the
 * caller's to check). */
int compact_rec_next(struct compact_rec_iter *it, struct compact_rec *r);

/* Does every record of the batch have a key? 1 yes, 0 no, -1 when the
 * records cannot be looked into (another codec, corrupt, or no memory):
 * what Produce checks on a compacted topic. Allocates for a gzip batch. */
int compact_batch_all_keyed(const uint8_t *p, const struct batch_hdr *h);

/* Decides about one record at offset (batch base + delta): keep it? */
typedef bool (*compact_keep_fn)(void *arg, const struct compact_rec *r, int64_t offset);

struct compact_filter_result {
	int32_t kept, removed; /* records */
	bool unchanged;        /* every record kept: out holds the batch as it was */
};

/* Write into out (room for out_cap bytes) the batch at p (whole, CRC
 * checked, header h, its records from compact_batch_records) without the
 * records keep() refuses. keep_empty: when no record is kept, write the
 * empty batch instead of nothing. Returns the bytes written (0 when the
 * batch goes away), -ENOSPC if out_cap is too small, -EINVAL for a
 * malformed record, -ENOMEM. */
int64_t compact_batch_filter(struct compact_codec *cc, const uint8_t *p, const struct batch_hdr *h,
			     const uint8_t *recs, size_t recs_len, compact_keep_fn keep, void *arg,
			     bool keep_empty, uint8_t *out, size_t out_cap,
			     struct compact_filter_result *res);

/* Room compact_batch_filter may need for a batch of batch_bytes whose
 * records are recs_len bytes decoded (deflate may grow incompressible
 * data a little). */
size_t compact_batch_filter_room(size_t batch_bytes, size_t recs_len);

#endif

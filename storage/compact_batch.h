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
 * Codecs: all of Kafka's (storage/codec.h). A compressed batch's records
 * are decompressed (at most a set limit: a batch that decompresses past it
 * is not looked into, and the cleaner keeps it whole), and a batch that
 * loses records is compressed again with its own codec, in the form its
 * producer wrote (snappy raw or xerial-framed), so its attributes do not
 * change.
 *
 * Threading: a codec context belongs to one thread. No I/O.
 */
#ifndef SLUICE_STORAGE_COMPACT_BATCH_H
#define SLUICE_STORAGE_COMPACT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/batch.h"
#include "storage/codec.h"

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

/* Decompression state and its output, grown on demand up to plain.max
 * (0 at the first use: COMPACT_DECOMPRESS_BYTES_DEFAULT) and kept between
 * batches. Zero-initialise; free with compact_codec_free. */
struct compact_codec {
	struct codec_ctx ctx;
	struct codec_buf plain; /* decompressed records */
	unsigned form;          /* CODEC_FORM_* of the last batch decompressed */
};

void compact_codec_free(struct compact_codec *cc);

/* Memory cc holds. */
size_t compact_codec_bytes(const struct compact_codec *cc);

/* The records of the whole, CRC-checked batch at p (header h): 1 with
 * [*recs, *recs + *len), decompressed into cc when the batch is
 * compressed; 0 when they cannot be looked into (no Kafka codec, or they
 * decompress past cc->plain.max); -EINVAL when the compressed data is
 * corrupt; -ENOMEM. */
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
 * records cannot be looked into (no Kafka codec, corrupt, past
 * COMPACT_DECOMPRESS_BYTES_DEFAULT, or no memory): what Produce checks on
 * a compacted topic. Allocates for a compressed batch. */
int compact_batch_all_keyed(const uint8_t *p, const struct batch_hdr *h);

/* Decides about one record at offset (batch base + delta): keep it? */
typedef bool (*compact_keep_fn)(void *arg, const struct compact_rec *r, int64_t offset);

struct compact_filter_result {
	int32_t kept, removed; /* records */
	bool unchanged;        /* every record kept: out holds the batch as it was */
};

/* Write into out (room for out_cap bytes) the batch at p (whole, CRC
 * checked, header h, its records from compact_batch_records) without the
 * records keep() refuses; a compressed batch's kept records are compressed
 * again into out with the batch's codec (cc's buffers are reused in
 * place). keep_empty: when no record is kept, write the empty batch
 * instead of nothing. Returns the bytes written (0 when the batch goes
 * away), -ENOSPC if out_cap is too small, -EINVAL for a malformed record,
 * -ENOMEM. */
int64_t compact_batch_filter(struct compact_codec *cc, const uint8_t *p, const struct batch_hdr *h,
			     const uint8_t *recs, size_t recs_len, compact_keep_fn keep, void *arg,
			     bool keep_empty, uint8_t *out, size_t out_cap,
			     struct compact_filter_result *res);

/* Room compact_batch_filter may need for the batch with header h of
 * batch_bytes whose records are recs_len bytes decoded (a codec may grow
 * incompressible data a little). */
size_t compact_batch_filter_room(const struct batch_hdr *h, size_t batch_bytes, size_t recs_len);

#endif

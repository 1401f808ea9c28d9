/*
 * compact_batch: record keys and batch rewriting for the cleaner; see
 * compact_batch.h. Everything read here came from disk or a producer:
 * every length is checked against its buffer before it is used.
 */
#include "storage/compact_batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/be.h"
#include "storage/limits.h"

void compact_codec_free(struct compact_codec *cc)
{
	codec_ctx_free(&cc->ctx);
	codec_buf_free(&cc->plain);
	memset(cc, 0, sizeof(*cc));
}

size_t compact_codec_bytes(const struct compact_codec *cc)
{
	return codec_ctx_bytes(&cc->ctx) + cc->plain.cap;
}

int compact_batch_records(struct compact_codec *cc, const uint8_t *p, const struct batch_hdr *h,
			  const uint8_t **recs, size_t *len)
{
	size_t size = BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
	*recs = p + BATCH_HEADER_BYTES;
	*len = size - BATCH_HEADER_BYTES;
	int codec = batch_compression(h);
	if (codec == CODEC_NONE)
		return 1;
	if (cc->plain.max == 0)
		cc->plain.max = COMPACT_DECOMPRESS_BYTES_DEFAULT;
	int64_t n = codec_decompress(&cc->ctx, codec, *recs, *len, &cc->plain, &cc->form);
	if (n == -EFBIG || n == -ENOTSUP)
		return 0;
	if (n < 0)
		return (int)n;
	*recs = cc->plain.p;
	*len = (size_t)n;
	return 1;
}

/* Zigzag varint of at most max_bytes; 0 or -1. */
static int varint_zz(const uint8_t **pp, const uint8_t *end, int max_bytes, int64_t *out)
{
	uint64_t v = 0;
	const uint8_t *p = *pp;
	for (int i = 0; i < max_bytes && p < end; i++) {
		uint8_t b = *p++;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*pp = p;
			*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
			return 0;
		}
	}
	return -1;
}

int compact_rec_next(struct compact_rec_iter *it, struct compact_rec *r)
{
	if (it->left <= 0)
		return 0;
	const uint8_t *p = it->p;
	int64_t len, ts, od, kl, vl;
	if (varint_zz(&p, it->end, 5, &len) != 0 || len < 3 || len > it->end - p)
		return BATCH_ERR_INVALID;
	const uint8_t *end = p + len;
	p++; /* attributes: unused in v2 */
	if (varint_zz(&p, end, 10, &ts) != 0 || varint_zz(&p, end, 5, &od) != 0 ||
	    od < 0 || od > INT32_MAX || varint_zz(&p, end, 5, &kl) != 0 || kl < -1 ||
	    kl > end - p)
		return BATCH_ERR_INVALID;
	r->key = kl < 0 ? NULL : p;
	r->key_len = kl < 0 ? 0 : (int32_t)kl;
	p += kl < 0 ? 0 : kl;
	if (varint_zz(&p, end, 5, &vl) != 0 || vl < -1 || vl > end - p)
		return BATCH_ERR_INVALID;
	r->offset_delta = (int32_t)od;
	r->timestamp_delta = ts;
	r->tombstone = vl < 0;
	r->value = vl < 0 ? NULL : p;
	r->value_len = vl < 0 ? 0 : (int32_t)vl;
	r->raw = it->p;
	r->raw_len = (size_t)(end - it->p);
	it->p = end;
	it->left--;
	return 1;
}

int compact_batch_all_keyed(const uint8_t *p, const struct batch_hdr *h)
{
	struct compact_codec cc = { 0 };
	const uint8_t *recs;
	size_t len;
	int rc = compact_batch_records(&cc, p, h, &recs, &len);
	if (rc == 1) {
		struct compact_rec_iter it;
		struct compact_rec r;
		compact_rec_iter_init(&it, recs, len, h->records_count);
		while ((rc = compact_rec_next(&it, &r)) == 1)
			if (r.key == NULL)
				break;
		rc = rc == 0 ? 1 : rc == 1 ? 0 : -1;
	} else {
		rc = -1;
	}
	compact_codec_free(&cc);
	return rc;
}

size_t compact_batch_filter_room(const struct batch_hdr *h, size_t batch_bytes, size_t recs_len)
{
	size_t z = codec_compress_bound(batch_compression(h), recs_len);
	return BATCH_HEADER_BYTES + (z > batch_bytes ? z : batch_bytes);
}

/* Header of the rewritten batch: the original's, with the new count,
 * length, max timestamp and (last) CRC. */
static int64_t batch_finish(uint8_t *out, const uint8_t *orig, const struct batch_hdr *h,
			    int16_t attributes, int32_t count, int64_t max_ts, size_t recs_len)
{
	memcpy(out, orig, BATCH_HEADER_BYTES);
	size_t size = BATCH_HEADER_BYTES + recs_len;
	be32_store(out + 8, (uint32_t)(size - BATCH_LOG_OVERHEAD));
	be16_store(out + BATCH_ATTRIBUTES_OFFSET, (uint16_t)attributes);
	if (!(h->attributes & BATCH_ATTR_TIMESTAMP_TYPE))
		be64_store(out + BATCH_MAX_TIMESTAMP_OFFSET, (uint64_t)max_ts);
	be32_store(out + 57, (uint32_t)count);
	be32_store(out + BATCH_CRC_OFFSET,
		   batch_crc32c(out + BATCH_ATTRIBUTES_OFFSET, size - BATCH_ATTRIBUTES_OFFSET));
	return (int64_t)size;
}

int64_t compact_batch_filter(struct compact_codec *cc, const uint8_t *p, const struct batch_hdr *h,
			     const uint8_t *recs, size_t recs_len, compact_keep_fn keep, void *arg,
			     bool keep_empty, uint8_t *out, size_t out_cap,
			     struct compact_filter_result *res)
{
	size_t size = BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
	int codec = batch_compression(h);
	/* Kept records are packed at dst: after the header in out, or, for a
	 * compressed batch, in place at the front of the decompressed records
	 * (a kept record never moves forward, so the walk ahead is not
	 * overwritten). */
	uint8_t *dst = codec != CODEC_NONE ? cc->plain.p : out + BATCH_HEADER_BYTES;
	size_t dst_cap = codec != CODEC_NONE ? cc->plain.cap : out_cap - BATCH_HEADER_BYTES;
	if (out_cap < size || out_cap < BATCH_HEADER_BYTES)
		return -ENOSPC;
	memset(res, 0, sizeof(*res));
	struct compact_rec_iter it;
	struct compact_rec r;
	compact_rec_iter_init(&it, recs, recs_len, h->records_count);
	size_t used = 0;
	int64_t max_ts = BATCH_NO_TIMESTAMP, prev_delta = -1;
	int rc;
	while ((rc = compact_rec_next(&it, &r)) == 1) {
		if (r.offset_delta <= prev_delta || r.offset_delta > h->last_offset_delta)
			return -EINVAL;
		prev_delta = r.offset_delta;
		if (!keep(arg, &r, h->base_offset + r.offset_delta)) {
			res->removed++;
			continue;
		}
		if (used + r.raw_len > dst_cap)
			return -ENOSPC;
		memmove(dst + used, r.raw, r.raw_len);
		used += r.raw_len;
		res->kept++;
		if (h->base_timestamp + r.timestamp_delta > max_ts)
			max_ts = h->base_timestamp + r.timestamp_delta;
	}
	if (rc != 0 || it.p != it.end)
		return -EINVAL;
	if (res->kept == 0 && !keep_empty)
		return 0; /* an emptied batch, or one emptied by an earlier round */
	if (res->removed == 0) {
		res->unchanged = true;
		memcpy(out, p, size);
		return (int64_t)size;
	}
	if (res->kept == 0) {
		return batch_finish(out, p, h, (int16_t)(h->attributes & ~BATCH_ATTR_COMPRESSION_MASK),
				    0, h->max_timestamp, 0);
	}
	if (codec != CODEC_NONE) {
		/* Its own codec, in the form it came in: the attributes stay. */
		int64_t z = codec_compress(&cc->ctx, codec, cc->form, cc->plain.p, used,
					   out + BATCH_HEADER_BYTES, out_cap - BATCH_HEADER_BYTES);
		if (z < 0)
			return z;
		used = (size_t)z;
	}
	return batch_finish(out, p, h, h->attributes, res->kept, max_ts, used);
}

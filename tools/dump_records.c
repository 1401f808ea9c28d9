/*
 * dump_records: the records inside one batch.
 *
 * Framing comes from the storage library's batch_rec_iter (record length,
 * timestamp and offset deltas, all bounds-checked); this file decodes only
 * what the broker itself never needs: key, value and headers. A record is
 * decoded whole before anything of it is printed, so a malformed one is
 * reported instead of half-printed.
 *
 * Compression: batches are decompressed with the storage library's codecs
 * (storage/codec.h: gzip, snappy in both forms, lz4, zstd), the code the
 * cleaner uses, up to DUMP_INFLATE_BYTES_MAX.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "dump_limits.h"

#define CODEC_GZIP 1

/* Bounds-checked cursor over one record, with a sticky error. */
struct rec_cur {
	const uint8_t *p, *end;
	bool bad;
};

/* Zigzag varint of at most 10 bytes (varlong; a varint is its subset). */
static int64_t cur_varint(struct rec_cur *c)
{
	uint64_t v = 0;
	for (int i = 0; i < 10 && !c->bad; i++) {
		if (c->p >= c->end)
			break;
		uint8_t b = *c->p++;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0)
			return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
	}
	c->bad = true;
	return 0;
}

/* A varint length and that many bytes; length -1 is null (NULL, *len -1)
 * when nullable. */
static const uint8_t *cur_bytes(struct rec_cur *c, int64_t *len, bool nullable)
{
	*len = cur_varint(c);
	if (!c->bad && *len == -1 && nullable)
		return NULL;
	if (c->bad || *len < 0 || *len > c->end - c->p) {
		c->bad = true;
		*len = -1;
		return NULL;
	}
	const uint8_t *p = c->p;
	c->p += *len;
	return p;
}

struct dump_rec {
	int64_t ts_delta, offset_delta;
	const uint8_t *key, *value;
	int64_t key_len, value_len;
	struct rec_cur headers; /* from the first header to the record's end */
	int64_t header_count;
};

/* Decode the record [p, end) (as framed by batch_rec_iter). NULL, or what
 * is wrong with it. */
static const char *rec_decode(const uint8_t *p, const uint8_t *end, struct dump_rec *r)
{
	struct rec_cur c = { p, end, false };
	cur_varint(&c); /* length: batch_rec_iter framed the record by it */
	if (c.p >= c.end)
		return "record ends before its attributes";
	c.p++; /* attributes: unused in v2 */
	r->ts_delta = cur_varint(&c);
	r->offset_delta = cur_varint(&c);
	r->key = cur_bytes(&c, &r->key_len, true);
	if (c.bad)
		return "key length runs past the record";
	r->value = cur_bytes(&c, &r->value_len, true);
	if (c.bad)
		return "value length runs past the record";
	r->header_count = cur_varint(&c);
	if (c.bad || r->header_count < 0)
		return "bad header count";
	r->headers = c;
	for (int64_t i = 0; i < r->header_count; i++) {
		int64_t n;
		cur_bytes(&c, &n, false);
		cur_bytes(&c, &n, true);
		if (c.bad)
			return "a header runs past the record";
	}
	if (c.p != c.end)
		return "bytes left over after the record's headers";
	return NULL;
}

static void rec_print(const struct dump_rec *r, const struct batch_hdr *h,
		      const struct dump_opts *o)
{
	int64_t ts = h->attributes & BATCH_ATTR_TIMESTAMP_TYPE ? h->max_timestamp
							       : h->base_timestamp + r->ts_delta;
	printf("| offset: %" PRId64 " timestamp: %" PRId64 " keySize: %" PRId64 " key: ",
	       h->base_offset + r->offset_delta, ts, r->key_len);
	dump_print_bytes(stdout, r->key, r->key_len, o->max_bytes);
	printf(" valueSize: %" PRId64 " value: ", r->value_len);
	dump_print_bytes(stdout, r->value, r->value_len, o->max_bytes);
	printf(" headers: {");
	struct rec_cur c = r->headers;
	for (int64_t i = 0; i < r->header_count; i++) {
		int64_t kl, vl;
		const uint8_t *k = cur_bytes(&c, &kl, false);
		const uint8_t *v = cur_bytes(&c, &vl, true);
		printf("%s", i > 0 ? ", " : "");
		dump_print_bytes(stdout, k, kl, o->max_bytes);
		printf(": ");
		dump_print_bytes(stdout, v, vl, o->max_bytes);
	}
	printf("}\n");
}

/* The records of a batch, decompressed if need be: 1 with [*recs, +*len),
 * 0 to skip them (noted), or -1 after reporting a problem. */
static int records_region(struct dump_file *f, struct dump_records_ctx *ctx,
			  const uint8_t *batch, const struct batch_hdr *h, int64_t pos,
			  const struct dump_opts *o, const uint8_t **recs, size_t *len)
{
	int codec = batch_compression(h);
	size_t size = BATCH_LOG_OVERHEAD + (size_t)h->batch_length;
	*recs = batch + BATCH_HEADER_BYTES;
	*len = size - BATCH_HEADER_BYTES;
	if (codec == 0)
		return 1;
	bool say = o->records && !o->quiet;
	ctx->out.max = DUMP_INFLATE_BYTES_MAX;
	int64_t n = codec_decompress(&ctx->cx, codec, *recs, *len, &ctx->out, NULL);
	if (n == -ENOTSUP) {
		if (say)
			printf("| records not shown: compressed with %s, which is not a Kafka "
			       "codec\n", dump_codec_name(codec));
		return 0;
	}
	if (n == -EFBIG || n == -ENOMEM) {
		if (say)
			printf("| records not shown: they decompress past %s\n",
			       n == -EFBIG ? "DUMP_INFLATE_BYTES_MAX" : "the memory available");
		return 0;
	}
	if (n < 0) {
		dump_problem(f, pos, "batch at offset %" PRId64 ": %s records do not decompress "
			     "(corrupt or truncated)", h->base_offset, dump_codec_name(codec));
		return -1;
	}
	*recs = ctx->out.p;
	*len = (size_t)n;
	return 1;
}

/* A record that does not decode: named by its file position, or inside a
 * compressed batch by its place in the decompressed records. */
static void rec_problem(struct dump_file *f, const struct batch_hdr *h, int64_t pos, int32_t i,
			ptrdiff_t at, bool decompressed, const char *why)
{
	if (decompressed)
		dump_problem(f, pos,
			     "batch at offset %" PRId64 ": record %" PRId32 " (byte %td of the "
			     "decompressed records) does not decode: %s", h->base_offset, i, at, why);
	else
		dump_problem(f, pos + BATCH_HEADER_BYTES + at,
			     "batch at offset %" PRId64 " (position %" PRId64 "): record %" PRId32
			     " does not decode: %s", h->base_offset, pos, i, why);
}

int dump_records(struct dump_file *f, struct dump_records_ctx *ctx, const uint8_t *batch,
		 const struct batch_hdr *h, int64_t pos, const struct dump_opts *o)
{
	const uint8_t *recs;
	size_t len;
	int rc = records_region(f, ctx, batch, h, pos, o, &recs, &len);
	if (rc <= 0)
		return rc < 0;
	/* batch_rec_iter_init refuses compressed batches; the decompressed
	 * records are walked by filling the iterator as it would. */
	struct batch_rec_iter it = { .p = recs, .end = recs + len, .left = h->records_count };
	int64_t prev_delta = -1;
	for (int32_t i = 0;; i++) {
		const uint8_t *start = it.p;
		struct batch_rec br;
		struct dump_rec r;
		const char *why = NULL;
		rc = batch_rec_iter_next(&it, &br);
		if (rc == 0)
			break;
		if (rc < 0)
			why = "bad varint, or its length runs past the batch";
		else
			why = rec_decode(start, it.p, &r);
		if (why == NULL && (r.offset_delta <= prev_delta ||
				    r.offset_delta > h->last_offset_delta))
			why = "offset delta out of order or past lastOffsetDelta";
		if (why != NULL) {
			rec_problem(f, h, pos, i, start - recs, recs == ctx->out.p, why);
			return 1;
		}
		prev_delta = r.offset_delta;
		if (o->records && !o->quiet)
			rec_print(&r, h, o);
	}
	if (it.p != it.end) {
		dump_problem(f, pos,
			     "batch at offset %" PRId64 ": %td bytes after the last of its %" PRId32
			     " records",
			     h->base_offset, it.end - it.p, h->records_count);
		return 1;
	}
	return 0;
}

void dump_records_ctx_free(struct dump_records_ctx *ctx)
{
	codec_ctx_free(&ctx->cx);
	codec_buf_free(&ctx->out);
	*ctx = (struct dump_records_ctx){ 0 };
}

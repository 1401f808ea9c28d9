/*
 * dump_records: the records inside one batch.
 *
 * Framing comes from the storage library's batch_rec_iter (record length,
 * timestamp and offset deltas, all bounds-checked); this file decodes only
 * what the broker itself never needs: key, value and headers. A record is
 * decoded whole before anything of it is printed, so a malformed one is
 * reported instead of half-printed.
 *
 * Compression: gzip batches are inflated with isa-l's igzip, the library
 * the storage code already links for CRC-32C. Sluice has no snappy, lz4 or
 * zstd code, so those batches are named and their records skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <isa-l/igzip_lib.h>
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

static const char *isal_err_name(int rc)
{
	switch (rc) {
	case ISAL_INVALID_BLOCK: return "invalid deflate block";
	case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK: return "invalid lookback distance";
	case ISAL_INVALID_WRAPPER: return "invalid gzip header";
	case ISAL_UNSUPPORTED_METHOD: return "not deflate";
	case ISAL_INCORRECT_CHECKSUM: return "gzip checksum mismatch";
	default: return "inflate error";
	}
}

/* Grow the output buffer: double it, up to DUMP_INFLATE_BYTES_MAX. */
static int inflate_grow(struct dump_records_ctx *ctx, size_t in_len)
{
	if (ctx->out_cap >= DUMP_INFLATE_BYTES_MAX)
		return -EFBIG;
	size_t cap = ctx->out_cap ? ctx->out_cap * 2 : in_len * 4 + 4096;
	if (cap > DUMP_INFLATE_BYTES_MAX)
		cap = DUMP_INFLATE_BYTES_MAX;
	uint8_t *nb = realloc(ctx->out, cap);
	if (nb == NULL)
		return -ENOMEM;
	ctx->out = nb;
	ctx->out_cap = cap;
	return 0;
}

/* Inflate one gzip member into ctx->out. Returns its length, -EFBIG past
 * the limit, -ENOMEM, or -EINVAL with *why. */
static int64_t inflate_gzip(struct dump_records_ctx *ctx, const uint8_t *in, size_t in_len,
			    const char **why)
{
	if (ctx->inflate == NULL && (ctx->inflate = malloc(sizeof(struct inflate_state))) == NULL)
		return -ENOMEM;
	struct inflate_state *s = ctx->inflate;
	isal_inflate_init(s);
	s->crc_flag = ISAL_GZIP; /* parse the header, verify the trailer */
	s->next_in = (uint8_t *)in;
	s->avail_in = (uint32_t)in_len; /* <= BATCH_BYTES_MAX */
	size_t out = 0;
	for (;;) {
		if (out == ctx->out_cap) {
			int rc = inflate_grow(ctx, in_len);
			if (rc != 0)
				return rc;
		}
		size_t room = ctx->out_cap - out;
		s->next_out = ctx->out + out;
		s->avail_out = (uint32_t)room;
		int rc = isal_inflate(s);
		out += room - s->avail_out;
		if (rc < 0) {
			*why = isal_err_name(rc);
			return -EINVAL;
		}
		if (s->block_state == ISAL_BLOCK_FINISH)
			break;
		if (s->avail_in == 0 && s->avail_out > 0) {
			*why = "the gzip stream ends early";
			return -EINVAL;
		}
	}
	if (s->avail_in != 0) {
		*why = "bytes follow the gzip stream";
		return -EINVAL;
	}
	return (int64_t)out;
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
	if (codec != CODEC_GZIP) {
		if (say)
			printf("| records not shown: compressed with %s, which Sluice has no "
			       "decompressor for\n", dump_codec_name(codec));
		return 0;
	}
	const char *why = "";
	int64_t n = inflate_gzip(ctx, *recs, *len, &why);
	if (n == -EFBIG || n == -ENOMEM) {
		if (say)
			printf("| records not shown: they inflate past %s\n",
			       n == -EFBIG ? "DUMP_INFLATE_BYTES_MAX" : "the memory available");
		return 0;
	}
	if (n < 0) {
		dump_problem(f, pos, "batch at offset %" PRId64 ": gzip records do not inflate (%s)",
			     h->base_offset, why);
		return -1;
	}
	*recs = ctx->out;
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
			rec_problem(f, h, pos, i, start - recs, recs == ctx->out, why);
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
	free(ctx->inflate);
	free(ctx->out);
	*ctx = (struct dump_records_ctx){ 0 };
}

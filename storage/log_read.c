/*
 * log_read: Fetch reads and ListOffsets lookups. Synchronous pread on the
 * segment files for now; they only ever look below a segment's readable
 * mark, i.e. at data whose write completed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "storage/be.h"
#include "storage/limits.h"
#include "storage/log_int.h"

struct find_batch {
	int64_t offset; /* wanted */
	int64_t pos;    /* out: position of the batch containing it */
	int32_t bytes;  /* out: its size */
	struct batch_hdr h;
};

static int find_batch_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t bytes)
{
	struct find_batch *f = arg;
	if (h->base_offset + h->last_offset_delta < f->offset)
		return 0;
	f->pos = pos;
	f->bytes = (int32_t)bytes;
	f->h = *h;
	return 1;
}

/* Locate the batch containing offset in s: offset index, then headers. */
static int read_find(struct plog *l, struct segment *s, int64_t offset, struct find_batch *f)
{
	uint64_t bytes_read = 0;
	f->offset = offset;
	int rc = segment_scan_headers(s, segment_index_lookup(s, offset), s->readable,
				      find_batch_cb, f, &bytes_read);
	l->stats.read_bytes += bytes_read;
	return rc == 1 ? 0 : rc < 0 ? rc : -ENOENT;
}

/* Whole batches at the start of p[0..len): how many bytes they span. */
static size_t whole_batches(const uint8_t *p, size_t len)
{
	size_t used = 0;
	while (len - used >= BATCH_LOG_OVERHEAD) {
		int64_t size = BATCH_LOG_OVERHEAD + (int32_t)be32_load(p + used + 8);
		if (size < BATCH_HEADER_BYTES || size > (int64_t)(len - used))
			break;
		used += (size_t)size;
	}
	return used;
}

/* Do the whole batches in p[0..len) hold no record at all? */
static bool batches_empty(const uint8_t *p, size_t len)
{
	for (size_t at = 0; at + BATCH_HEADER_BYTES <= len;
	     at += BATCH_LOG_OVERHEAD + (int32_t)be32_load(p + at + 8))
		if (be32_load(p + at + 57) != 0)
			return false;
	return true;
}

/* Compaction can leave a sealed segment holding nothing but emptied
 * batches (compact.h keeps the last one of each group): when a read of
 * such a segment ends at its end, it goes on into the next segments, since
 * a response without a record stalls consumers (librdkafka takes it for a
 * message too large to fetch). Otherwise a read stops at a segment's end. */
static int plog_read_more(struct plog *l, struct segment *s, int64_t pos, int64_t limit,
			  uint8_t *dst, struct plog_read_result *res)
{
	while (s != plog_active(l) && pos == s->readable && (int64_t)res->len < limit &&
	       s->end_offset > s->base_offset && batches_empty(dst, res->len)) {
		s = plog_segment_for(l, s->end_offset);
		int64_t want = limit - (int64_t)res->len;
		if (want > s->readable)
			want = s->readable;
		ssize_t r = want > 0 ? segment_pread(s, dst + res->len, (size_t)want, 0) : 0;
		if (r <= 0)
			break; /* what was read so far is a whole answer */
		l->stats.read_bytes += (uint64_t)r;
		size_t n = whole_batches(dst + res->len, (size_t)r);
		res->len += n;
		pos = (int64_t)n;
	}
	return 0;
}

int plog_read(struct plog *l, int64_t offset, int32_t max_bytes, uint8_t *dst, size_t dst_cap,
	      struct plog_read_result *res)
{
	*res = (struct plog_read_result){ .high_watermark = l->hw,
					  .log_start_offset = plog_start_offset(l) };
	if (l->err != 0)
		return l->err;
	if (offset < res->log_start_offset || offset > l->hw)
		return -ERANGE;
	if (offset == l->hw)
		return 0;
	struct segment *s = plog_segment_for(l, offset);
	struct find_batch f;
	int rc = read_find(l, s, offset, &f);
	/* Compaction leaves gaps: an offset past a sealed segment's last
	 * batch is served from the next segment's first. */
	while (rc == -ENOENT && s != plog_active(l) && s->end_offset > s->base_offset) {
		s = plog_segment_for(l, s->end_offset);
		rc = read_find(l, s, s->base_offset, &f);
	}
	if (rc != 0)
		return rc == -ENOENT ? -EIO : rc;
	res->first_batch_bytes = f.bytes;
	if ((size_t)f.bytes > dst_cap)
		return 0;
	/* KIP-74: the first batch whole even past max_bytes. */
	int64_t limit = max_bytes > f.bytes ? max_bytes : f.bytes;
	if (limit > (int64_t)dst_cap)
		limit = (int64_t)dst_cap;
	int64_t want = limit < s->readable - f.pos ? limit : s->readable - f.pos;
	ssize_t r = segment_pread(s, dst, (size_t)want, f.pos);
	if (r < 0)
		return (int)r;
	if (r < f.bytes)
		return -EIO;
	res->len = whole_batches(dst, (size_t)r);
	l->stats.reads++;
	l->stats.read_bytes += (uint64_t)r;
	return plog_read_more(l, s, f.pos + (int64_t)res->len, limit, dst, res);
}

/* The first record with timestamp >= ts in the batch at f (uncompressed:
 * read and walk it; compressed: the batch itself). 1 if found, 0 if not
 * (its maxTimestamp lied), or -errno. */
static int batch_first_at_or_after(struct plog *l, struct segment *s, const struct find_batch *f,
				   int64_t ts, int64_t *offset_out, int64_t *ts_out)
{
	const struct batch_hdr *h = &f->h;
	if (batch_compression(h) != 0 || (h->attributes & BATCH_ATTR_TIMESTAMP_TYPE)) {
		*offset_out = h->base_offset;
		*ts_out = h->max_timestamp;
		return 1;
	}
	uint8_t *buf = malloc((size_t)f->bytes);
	if (buf == NULL)
		return -ENOMEM;
	ssize_t r = segment_pread(s, buf, (size_t)f->bytes, f->pos);
	l->stats.read_bytes += r > 0 ? (uint64_t)r : 0;
	int rc = r < 0 ? (int)r : r < f->bytes ? -EIO : 0;
	struct batch_rec_iter it;
	struct batch_rec rec;
	if (rc == 0 && batch_rec_iter_init(&it, buf, (size_t)f->bytes, h) == 0) {
		while (batch_rec_iter_next(&it, &rec) == 1) {
			if (h->base_timestamp + rec.timestamp_delta >= ts) {
				*offset_out = h->base_offset + rec.offset_delta;
				*ts_out = h->base_timestamp + rec.timestamp_delta;
				rc = 1;
				break;
			}
		}
	}
	free(buf);
	return rc;
}

struct ts_scan {
	struct plog *l;
	struct segment *s;
	int64_t ts;
	int64_t *offset_out, *ts_out;
};

static int ts_scan_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t bytes)
{
	struct ts_scan *t = arg;
	if (h->max_timestamp < t->ts)
		return 0;
	struct find_batch f = { .pos = pos, .bytes = (int32_t)bytes, .h = *h };
	return batch_first_at_or_after(t->l, t->s, &f, t->ts, t->offset_out, t->ts_out);
}

int plog_offset_for_timestamp(struct plog *l, int64_t ts_ms, int64_t *offset_out,
			      int64_t *ts_out)
{
	for (uint32_t i = 0; i < l->n_segs; i++) {
		struct segment *s = l->segs[i];
		if (s->max_ts < ts_ms || s->readable == 0)
			continue;
		/* Every record up to `below` is older than ts_ms: start at
		 * the batch holding it (or the segment start). */
		int64_t below = segment_time_lookup(s, ts_ms);
		int64_t pos = below < 0 ? 0 : segment_index_lookup(s, below);
		struct ts_scan t = { l, s, ts_ms, offset_out, ts_out };
		uint64_t bytes_read = 0;
		int rc = segment_scan_headers(s, pos, s->readable, ts_scan_cb, &t, &bytes_read);
		l->stats.read_bytes += bytes_read;
		if (rc != 0)
			return rc == 1 ? 0 : rc;
	}
	return -ENOENT;
}

int plog_max_timestamp(struct plog *l, int64_t *offset_out, int64_t *ts_out)
{
	const struct segment *best = NULL;
	for (uint32_t i = 0; i < l->n_segs; i++)
		if (best == NULL || l->segs[i]->max_ts > best->max_ts)
			best = l->segs[i];
	if (best == NULL || best->max_ts == BATCH_NO_TIMESTAMP)
		return -ENOENT;
	*offset_out = best->max_ts_offset;
	*ts_out = best->max_ts;
	return 0;
}

/*
 * log_read: Fetch reads and ListOffsets lookups, through the tail cache
 * (log_cache.c) and else synchronous pread on the segment files, or
 * asynchronous reads on the shard's io_uring (plog_read_disk, through sio);
 * they only ever look below a segment's readable mark, i.e. at data whose
 * write completed.
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
static int read_find(struct plog *l, struct segment *s, int64_t offset, struct find_batch *f,
		     segment_pread_fn rd)
{
	uint64_t bytes_read = 0;
	f->offset = offset;
	int rc = segment_scan_headers_via(s, segment_index_lookup(s, offset), s->readable,
					  find_batch_cb, f, &bytes_read, rd, l);
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
			  uint8_t *dst, struct plog_read_result *res, segment_pread_fn rd)
{
	while (s != plog_active(l) && pos == s->readable && (int64_t)res->len < limit &&
	       s->end_offset > s->base_offset && batches_empty(dst, res->len)) {
		s = plog_segment_for(l, s->end_offset);
		int64_t want = limit - (int64_t)res->len;
		if (want > s->readable)
			want = s->readable;
		ssize_t r = want > 0 ? rd(l, s, dst + res->len, (size_t)want, 0) : 0;
		if (r == -EAGAIN)
			return (int)r; /* on the disk: the caller reads it all there */
		if (r <= 0)
			break; /* what was read so far is a whole answer */
		l->stats.read_bytes += (uint64_t)r;
		size_t n = whole_batches(dst + res->len, (size_t)r);
		res->len += n;
		pos = (int64_t)n;
	}
	return 0;
}

/* plog_read through rd: plog_pread, or plog_pread_nowait (then -EAGAIN
 * when the bytes are neither in the tail cache nor in the page cache). */
static int plog_read_via(struct plog *l, int64_t offset, int32_t max_bytes, uint8_t *dst,
			 size_t dst_cap, struct plog_read_result *res, segment_pread_fn rd)
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
	int rc = read_find(l, s, offset, &f, rd);
	/* Compaction leaves gaps: an offset past a sealed segment's last
	 * batch is served from the next segment's first. */
	while (rc == -ENOENT && s != plog_active(l) && s->end_offset > s->base_offset) {
		s = plog_segment_for(l, s->end_offset);
		rc = read_find(l, s, s->base_offset, &f, rd);
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
	ssize_t r = rd(l, s, dst, (size_t)want, f.pos);
	if (r < 0)
		return (int)r;
	if (r < f.bytes)
		return -EIO;
	res->len = whole_batches(dst, (size_t)r);
	l->stats.reads++;
	l->stats.read_bytes += (uint64_t)r;
	return plog_read_more(l, s, f.pos + (int64_t)res->len, limit, dst, res, rd);
}

int plog_read(struct plog *l, int64_t offset, int32_t max_bytes, uint8_t *dst, size_t dst_cap,
	      struct plog_read_result *res)
{
	return plog_read_via(l, offset, max_bytes, dst, dst_cap, res, plog_pread);
}

int plog_read_nowait(struct plog *l, int64_t offset, int32_t max_bytes, uint8_t *dst,
		     size_t dst_cap, struct plog_read_result *res)
{
	int rc = plog_read_via(l, offset, max_bytes, dst, dst_cap, res, plog_pread_nowait);
	if (rc == -EAGAIN)
		l->stats.nowait_misses++;
	return rc;
}

/* ---- asynchronous reads ---- */

/* Reads a cold read may take to find its batch before giving up: each
 * moves the window forward past whole batches, so only a corrupt file
 * gets near it. */
#define AREAD_STEPS_MAX 64

static void aread_op_done(struct uring_op *op, int res, uint32_t cqe_flags);
static void aread_submit(struct plog_aread *r);

static void aread_finish(struct plog_aread *r, int err)
{
	struct plog *l = r->l;
	r->err = err;
	r->res.high_watermark = l->hw; /* it may have read past the HW it started at */
	l->reads_in_flight--;
	r->s->readers--;
	l->stats.reads += err == 0;
	l->stats.cold_reads++;
	r->done(r);
	plog_maybe_finish(l);
}

/* Read the window at r->pos into r->buf, through the log's storage
 * backend: a READ_FIXED when r->buf is registered memory (a shard's read
 * pool), and the fault rules see it. */
static void aread_submit(struct plog_aread *r)
{
	struct sio *io = r->l->io;
	int64_t want = r->end - r->pos;
	if (want > (int64_t)r->cap)
		want = (int64_t)r->cap;
	r->want = (size_t)want;
	if (sio_sq_space(io) == 0) {
		/* The ring is full: submit what is queued to make room. */
		io_uring_submit(io->ring);
	}
	if (sio_sq_space(io) == 0) {
		aread_finish(r, -EAGAIN);
		return;
	}
	r->op.done = aread_op_done;
	struct sio_file f = sio_file_of(r->s->log_fd, SIO_FILE_LOG);
	sio_read(io, &f, r->buf, r->want, r->pos, &r->op);
}

/* What was found is emptied batches up to a sealed segment's end (see
 * plog_read_more): read the next segment instead. True if it did. */
static bool aread_next_segment(struct plog_aread *r);

static bool aread_past_emptied(struct plog_aread *r)
{
	if (r->pos + (int64_t)(r->skip + r->res.len) != r->end ||
	    !batches_empty(r->buf + r->skip, r->res.len) || ++r->steps > AREAD_STEPS_MAX)
		return false;
	return aread_next_segment(r);
}

/* Go on from the start of the segment after r->s (compaction leaves gaps
 * and emptied batches at the end of sealed segments). True if it did. */
static bool aread_next_segment(struct plog_aread *r)
{
	struct plog *l = r->l;
	struct segment *s = r->s;
	if (s == plog_active(l) || s->end_offset <= s->base_offset)
		return false;
	struct segment *next = plog_segment_for(l, s->end_offset);
	if (next == s)
		return false;
	s->readers--;
	next->readers++;
	r->s = next;
	r->offset = next->base_offset;
	r->pos = 0;
	r->fallback = -1;
	r->end = next->readable;
	r->skip = 0;
	r->res.len = 0;
	r->res.first_batch_bytes = 0;
	aread_submit(r);
	return true;
}

/* A window is in: find the batch holding r->offset in it, or move on. */
static void aread_op_done(struct uring_op *op, int res, uint32_t cqe_flags)
{
	(void)cqe_flags;
	struct plog_aread *r = container_of(op, struct plog_aread, op);
	struct plog *l = r->l;
	if (res < 0 || l->err != 0) {
		aread_finish(r, res < 0 ? res : l->err);
		return;
	}
	l->stats.read_bytes += (uint64_t)res;
	size_t n = (size_t)res, p = 0;
	while (p + BATCH_HEADER_BYTES <= n) {
		struct batch_hdr h;
		int size = batch_parse(r->buf + p, BATCH_HEADER_BYTES, &h);
		if (size < 0 || r->pos + (int64_t)p + size > r->end) {
			aread_finish(r, -EIO);
			return;
		}
		if (h.base_offset + h.last_offset_delta < r->offset) {
			p += (size_t)size;
			continue;
		}
		if (p == 0 && r->fallback >= 0 && h.base_offset > r->offset) {
			/* The guess skipped batches (or the offset was compacted
			 * away): read from the index entry instead. */
			r->pos = r->fallback;
			r->fallback = -1;
			aread_submit(r);
			return;
		}
		r->fallback = -1;
		r->res.first_batch_bytes = size;
		if ((size_t)size > r->cap) {
			aread_finish(r, 0); /* too big for the buffer: len 0 says so */
			return;
		}
		if (p + (size_t)size <= n) {
			/* KIP-74: the first batch whole, then up to max_bytes. */
			size_t lim = n - p, want = (size_t)(r->max_bytes > size ? r->max_bytes : size);
			r->skip = p;
			r->res.len = whole_batches(r->buf + p, lim < want ? lim : want);
			if (!aread_past_emptied(r))
				aread_finish(r, 0);
			return;
		}
		break; /* it starts here and runs past the window */
	}
	/* Move the window to the first batch not yet seen whole; past the
	 * segment's end, to the next segment. */
	if (r->pos + (int64_t)p >= r->end && ++r->steps <= AREAD_STEPS_MAX &&
	    aread_next_segment(r))
		return;
	if ((p == 0 && n >= r->want) || ++r->steps > AREAD_STEPS_MAX ||
	    r->pos + (int64_t)p >= r->end) {
		aread_finish(r, -EIO);
		return;
	}
	r->pos += (int64_t)p;
	aread_submit(r);
}

int plog_read_disk(struct plog *l, struct plog_aread *r)
{
	r->l = l;
	r->err = 0;
	r->skip = 0;
	r->steps = 0;
	r->res = (struct plog_read_result){ .high_watermark = l->hw,
					    .log_start_offset = plog_start_offset(l) };
	if (l->err != 0)
		return l->err;
	if (r->offset < plog_start_offset(l) || r->offset > l->hw)
		return -ERANGE;
	if (r->offset == l->hw || r->cap < BATCH_HEADER_BYTES)
		return 0; /* nothing yet, or no room for even a header */
	/* From the offset index entry before the offset, in windows of the
	 * buffer's size, without blocking the shard. */
	struct io_uring *ring = l->io->ring;
	if (ring != NULL && io_uring_sq_space_left(ring) == 0)
		io_uring_submit(ring);
	if (ring == NULL || io_uring_sq_space_left(ring) == 0)
		return plog_read(l, r->offset, r->max_bytes, r->buf, r->cap, &r->res);
	r->s = plog_segment_for(l, r->offset);
	/* Reading from the entry before the offset, the window would start
	 * with the previous batch, and with batches as large as the window
	 * the wanted one would take a second read: start where it most
	 * likely begins, and fall back if it begins earlier. */
	int64_t guess;
	r->pos = segment_index_lookup_next(r->s, r->offset, &guess);
	r->fallback = -1;
	if (guess > r->pos && guess < r->s->readable) {
		r->fallback = r->pos;
		r->pos = guess;
	}
	r->end = r->s->readable;
	l->reads_in_flight++;
	r->s->readers++;
	aread_submit(r);
	return 1;
}

int plog_read_start(struct plog *l, struct plog_aread *r)
{
	r->skip = 0;
	int rc = plog_read_nowait(l, r->offset, r->max_bytes, r->buf, r->cap, &r->res);
	return rc == -EAGAIN ? plog_read_disk(l, r) : rc;
}

/* The first record with timestamp >= ts and offset >= from (the start
 * offset: DeleteRecords may cut a batch) in the batch at f (uncompressed:
 * read and walk it; compressed: the batch itself, from `from` at the
 * earliest). 1 if found, 0 if not (its maxTimestamp lied), or -errno. */
static int batch_first_at_or_after(struct plog *l, struct segment *s, const struct find_batch *f,
				   int64_t ts, int64_t from, int64_t *offset_out, int64_t *ts_out)
{
	const struct batch_hdr *h = &f->h;
	if (batch_compression(h) != 0 || (h->attributes & BATCH_ATTR_TIMESTAMP_TYPE)) {
		*offset_out = h->base_offset < from ? from : h->base_offset;
		*ts_out = h->max_timestamp;
		return 1;
	}
	uint8_t *buf = malloc((size_t)f->bytes);
	if (buf == NULL)
		return -ENOMEM;
	ssize_t r = plog_pread(l, s, buf, (size_t)f->bytes, f->pos);
	l->stats.read_bytes += r > 0 ? (uint64_t)r : 0;
	int rc = r < 0 ? (int)r : r < f->bytes ? -EIO : 0;
	struct batch_rec_iter it;
	struct batch_rec rec;
	if (rc == 0 && batch_rec_iter_init(&it, buf, (size_t)f->bytes, h) == 0) {
		while (batch_rec_iter_next(&it, &rec) == 1) {
			if (h->base_timestamp + rec.timestamp_delta >= ts &&
			    h->base_offset + rec.offset_delta >= from) {
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
	int64_t ts, from;
	int64_t *offset_out, *ts_out;
};

static int ts_scan_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t bytes)
{
	struct ts_scan *t = arg;
	if (h->max_timestamp < t->ts || h->base_offset + h->last_offset_delta < t->from)
		return 0;
	struct find_batch f = { .pos = pos, .bytes = (int32_t)bytes, .h = *h };
	return batch_first_at_or_after(t->l, t->s, &f, t->ts, t->from, t->offset_out, t->ts_out);
}

int plog_offset_for_timestamp(struct plog *l, int64_t ts_ms, int64_t *offset_out,
			      int64_t *ts_out)
{
	for (uint32_t i = 0; i < l->n_segs; i++) {
		struct segment *s = l->segs[i];
		if (s->max_ts < ts_ms || s->readable == 0 || s->end_offset <= l->start_offset)
			continue;
		/* Every record up to `below` is older than ts_ms: start at
		 * the batch holding it (or the segment start). */
		int64_t below = segment_time_lookup(s, ts_ms);
		int64_t pos = below < 0 ? 0 : segment_index_lookup(s, below);
		struct ts_scan t = { l, s, ts_ms, l->start_offset, offset_out, ts_out };
		uint64_t bytes_read = 0;
		int rc = segment_scan_headers_via(s, pos, s->readable, ts_scan_cb, &t, &bytes_read,
						  plog_pread, l);
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

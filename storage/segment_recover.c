/*
 * segment_recover: bring a segment back from disk at start-up.
 *
 * Sealed segments were fdatasync'ed (data and indexes) before the next
 * segment's file was created, so they are trusted; their index files are
 * mapped (segment_index.c) and every entry is still sanity-checked, and
 * they are rebuilt from batch headers if they do not hold up. The active
 * segment may end in a torn write: its index files were written without
 * fsync and its tail may hold half a batch, garbage or zeros. Only the
 * tail is read: from the last offset index entry that points at a
 * CRC-valid batch (and that lies below the newest time index entry, see
 * recover_pick_start), every batch is CRC-checked, and the file is cut at
 * the first one that fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/be.h"
#include "storage/limits.h"
#include "storage/segment_int.h"

/* Open an index file for reading: *fd, or -1 if there is none. */
static int index_open(const char *dir, int64_t base, const char *ext, int *fd)
{
	char path[4096];
	int rc = segment_path(path, sizeof(path), dir, base, ext);
	if (rc != 0)
		return rc;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

/* Read the index file at fd into the array ix (at most ix->cap entries; a
 * partial trailing entry is a torn write and is dropped, and sets
 * *ragged). */
static int index_read(struct seg_index *ix, int fd, bool *ragged)
{
	struct stat st;
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0)
		return -errno;
	uint64_t n = (uint64_t)st.st_size / ix->entry_bytes;
	if (n > ix->cap || (uint64_t)st.st_size % ix->entry_bytes != 0)
		*ragged = true;
	if (n > ix->cap)
		n = ix->cap;
	ssize_t r = pread_full(fd, ix->raw, (size_t)n * ix->entry_bytes, 0);
	if (r < 0)
		return (int)r;
	ix->n = (uint32_t)((size_t)r / ix->entry_bytes);
	return 0;
}

/* An index file's entries into ix: read into its array (the active
 * segment), or mapped (a sealed one's, at most cap_max entries). */
static int index_load(const char *dir, int64_t base, const char *ext, struct seg_index *ix,
		      uint32_t cap_max, bool *ragged)
{
	int fd = -1;
	int rc = index_open(dir, base, ext, &fd);
	if (rc != 0)
		return rc;
	if (ix->kind == SEG_INDEX_ARRAY)
		rc = index_read(ix, fd, ragged);
	else
		rc = seg_index_load_file(ix, fd, cap_max, ragged, base);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Keep the longest prefix of entries that could have been written by
 * segment_track_batch: offsets and positions strictly increasing, inside
 * the segment. */
static void index_trim(struct segment *s, int64_t end_offset, int64_t size)
{
	int64_t prev_off = s->base_offset - 1, prev_pos = -1;
	uint32_t i;
	for (i = 0; i < s->idx.n; i++) {
		int64_t off, pos;
		segment_index_entry(s, i, &off, &pos);
		if (off <= prev_off || off >= end_offset || pos <= prev_pos || pos >= size)
			break;
		prev_off = off;
		prev_pos = pos;
	}
	s->idx.n = i;
}

/* Same for the time index: timestamps strictly increasing, offsets
 * non-decreasing and inside the segment. */
static void timeindex_trim(struct segment *s, int64_t end_offset)
{
	int64_t prev_ts = BATCH_NO_TIMESTAMP, prev_off = s->base_offset;
	uint32_t i;
	for (i = 0; i < s->tidx.n; i++) {
		int64_t ts, off;
		segment_timeindex_entry(s, i, &ts, &off);
		if (ts <= prev_ts || off < prev_off || off >= end_offset)
			break;
		prev_ts = ts;
		prev_off = off;
	}
	s->tidx.n = i;
}

/* Replace an index file by the in-memory entries. Not synced: the files
 * are rebuilt by the next recovery if a crash loses this. */
static int index_rewrite(int fd, struct seg_index *ix)
{
	size_t bytes = (size_t)ix->n * ix->entry_bytes;
	if (bytes > 0 && pwrite(fd, ix->raw, bytes, 0) != (ssize_t)bytes)
		return -EIO;
	if (ftruncate(fd, (off_t)bytes) != 0)
		return -errno;
	ix->flushed = ix->n;
	return 0;
}

static int segment_rewrite_indexes(struct segment *s, const char *dir)
{
	int rc = 0;
	if (s->index_fd < 0)
		rc = segment_open_files(s, dir);
	if (rc == 0)
		rc = index_rewrite(s->index_fd, &s->idx);
	if (rc == 0)
		rc = index_rewrite(s->timeindex_fd, &s->tidx);
	return rc;
}

static void segment_max_from_timeindex(struct segment *s)
{
	s->max_ts = BATCH_NO_TIMESTAMP;
	s->max_ts_offset = s->base_offset;
	if (s->tidx.n > 0)
		segment_timeindex_entry(s, s->tidx.n - 1, &s->max_ts, &s->max_ts_offset);
}

static int rebuild_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t bytes)
{
	struct segment *s = arg;
	if (pos != s->size)
		return -EIO;
	segment_track_batch(s, NULL, h, h->base_offset, bytes);
	return 0;
}

/* Rebuild a sealed segment's indexes from its batch headers, rewrite their
 * files and map them. The old mappings go first: the rewrite may shorten
 * the files under them. */
static int segment_rebuild_sealed(struct segment *s, const char *dir, int64_t file_size,
				  int64_t span, uint64_t *bytes_read)
{
	int rc = segment_index_arrays(s, span);
	if (rc != 0)
		return rc;
	s->size = 0;
	s->end_offset = s->base_offset;
	s->bytes_since_index = 0;
	s->max_ts = BATCH_NO_TIMESTAMP;
	rc = segment_scan_headers(s, 0, file_size, rebuild_cb, s, bytes_read);
	if (rc != 0)
		return rc;
	segment_seal_index(s);
	rc = segment_rewrite_indexes(s, dir);
	if (rc == 0)
		segment_settle_indexes(s, s->index_fd, s->timeindex_fd);
	segment_close_index_files(s);
	return rc;
}

/* The segment at base with its .log open and its indexes loaded: into
 * arrays for the active segment, mapped for a sealed one. *span: the
 * segment size its index capacity is reckoned for. */
static struct segment *segment_open_existing(const char *dir, int64_t base,
					     int64_t segment_bytes, int32_t interval, bool sealed,
					     int64_t *file_size, int64_t *span, bool *ragged,
					     int *err)
{
	char path[4096];
	struct stat st;
	*err = segment_path(path, sizeof(path), dir, base, ".log");
	if (*err != 0)
		return NULL;
	if (stat(path, &st) != 0) {
		*err = -errno;
		return NULL;
	}
	*file_size = st.st_size;
	/* Size the index arrays for what the file holds, whatever the config
	 * says now, so that every entry on disk can be kept. */
	*span = st.st_size > segment_bytes ? st.st_size : segment_bytes;
	struct segment *s = sealed ? segment_alloc(base, interval)
				   : segment_new(base, *span, interval);
	if (s == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	s->log_fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->log_fd < 0) {
		*err = -errno;
		segment_free(s);
		return NULL;
	}
	segment_read_advice(s);
	*ragged = false;
	*err = index_load(dir, base, ".index", &s->idx,
			  seg_index_cap(*span, interval, SEGMENT_INDEX_ENTRIES_MAX), ragged);
	if (*err == 0)
		*err = index_load(dir, base, ".timeindex", &s->tidx,
				  seg_index_cap(*span, interval, SEGMENT_TIMEINDEX_ENTRIES_MAX),
				  ragged);
	if (*err != 0) {
		segment_free(s);
		return NULL;
	}
	return s;
}

struct segment *segment_load_sealed(const char *dir, int64_t base, int64_t end_offset,
				    int64_t segment_bytes, int32_t index_interval_bytes,
				    uint64_t *bytes_read, int *err)
{
	int64_t file_size, span;
	bool ragged;
	struct segment *s = segment_open_existing(dir, base, segment_bytes, index_interval_bytes,
						  true, &file_size, &span, &ragged, err);
	if (s == NULL)
		return NULL;
	uint32_t ni = s->idx.n, nt = s->tidx.n;
	index_trim(s, end_offset, file_size);
	timeindex_trim(s, end_offset);
	if (ragged || s->idx.n != ni || s->tidx.n != nt) {
		*err = segment_rebuild_sealed(s, dir, file_size, span, bytes_read);
		if (*err != 0) {
			segment_free(s);
			return NULL;
		}
	}
	s->idx.flushed = s->idx.n;
	s->tidx.flushed = s->tidx.n;
	s->size = s->readable = file_size;
	s->end_offset = end_offset;
	segment_max_from_timeindex(s);
	/* Last: every entry has been read that will be until a lookup. */
	seg_index_forget_pages(&s->idx);
	seg_index_forget_pages(&s->tidx);
	return s;
}

/* The tail scanner's read buffer: a window of the file. */
struct tail_buf {
	uint8_t *p;
	size_t cap, len;
	int64_t pos; /* file position of p[0] */
};

static int tail_buf_fill(const struct segment *s, struct tail_buf *b, int64_t pos, size_t want,
			 uint64_t *bytes_read)
{
	if (want > b->cap) {
		uint8_t *np = realloc(b->p, want);
		if (np == NULL)
			return -ENOMEM;
		b->p = np;
		b->cap = want;
	}
	ssize_t r = segment_pread(s, b->p, want, pos);
	if (r < 0)
		return (int)r;
	*bytes_read += (uint64_t)r;
	b->pos = pos;
	b->len = (size_t)r;
	return 0;
}

/* Make [pos, pos + n) available in b (reading up to a chunk ahead). Returns
 * a pointer to pos, NULL if the file ends first, or sets *err. */
static const uint8_t *tail_buf_get(const struct segment *s, struct tail_buf *b, int64_t pos,
				   size_t n, int64_t file_size, uint64_t *bytes_read, int *err)
{
	if (pos >= b->pos && pos + (int64_t)n <= b->pos + (int64_t)b->len)
		return b->p + (pos - b->pos);
	if (pos + (int64_t)n > file_size)
		return NULL;
	size_t want = RECOVER_CHUNK_BYTES;
	if ((int64_t)want > file_size - pos)
		want = (size_t)(file_size - pos);
	if (want < n)
		want = n;
	*err = tail_buf_fill(s, b, pos, want, bytes_read);
	if (*err != 0 || b->len < n)
		return NULL;
	return b->p;
}

/* Read the batch at pos and check it whole: header, CRC, and (if want_base
 * >= 0) that it starts at offset want_base. Returns its size, or < 0. */
static int tail_batch_at(const struct segment *s, struct tail_buf *b, int64_t pos,
			 int64_t file_size, struct batch_hdr *h, const uint8_t **batch,
			 uint64_t *bytes_read, int *err)
{
	const uint8_t *p = tail_buf_get(s, b, pos, BATCH_HEADER_BYTES, file_size, bytes_read, err);
	if (p == NULL)
		return BATCH_ERR_TRUNCATED;
	int size = batch_parse(p, BATCH_HEADER_BYTES, h);
	if (size < 0)
		return size;
	p = tail_buf_get(s, b, pos, (size_t)size, file_size, bytes_read, err);
	if (p == NULL)
		return BATCH_ERR_TRUNCATED;
	*batch = p;
	return batch_validate(p, (size_t)size, h);
}

/*
 * Where the tail scan starts, and the state before it.
 *
 * The scan must start at a batch boundary (an offset index entry whose
 * batch is intact), and the segment's maximum timestamp before that point
 * must be known, since the scan only sees what follows.
 *
 * After a clean close both index files are complete, so the newest time
 * index entry holds the maximum up to the last offset index entry: start
 * at the last entry whose batch checks out.
 *
 * After a crash the time index may have lost entries that the offset index
 * kept (separate files, neither synced). The newest surviving time index
 * entry (T, O) still says every record up to O has a timestamp <= T, so
 * starting at or before O's batch with T as the running maximum gives the
 * exact maximum and a time index that keeps its meaning. Hence: the last
 * index entry at or below O whose batch checks out (an entry holds its
 * batch's last offset, so that batch starts at or before O's); with no time
 * index entry (lost, or no timestamps at all), the start of the file. With
 * timestamps that keep growing, O is near the end and this is the tail;
 * timestamps that stop growing make a crash recovery read further back.
 */
static void recover_pick_start(struct segment *s, struct tail_buf *b, int64_t file_size,
			       bool clean, uint64_t *bytes_read)
{
	int64_t o_last = s->base_offset;
	s->max_ts = BATCH_NO_TIMESTAMP;
	if (s->tidx.n > 0)
		segment_timeindex_entry(s, s->tidx.n - 1, &s->max_ts, &o_last);
	s->max_ts_offset = o_last;
	if (clean)
		o_last = INT64_MAX;
	uint32_t i = s->tidx.n > 0 || clean ? s->idx.n : 0;
	for (; i > 0; i--) {
		int64_t off, pos;
		struct batch_hdr h;
		const uint8_t *batch;
		int err = 0;
		segment_index_entry(s, i - 1, &off, &pos);
		if (off > o_last)
			continue;
		if (tail_batch_at(s, b, pos, file_size, &h, &batch, bytes_read, &err) < 0 ||
		    h.base_offset + h.last_offset_delta != off)
			continue;
		/* Drop entry i-1 too: scanning its batch adds it again. */
		s->idx.n = i - 1;
		s->size = pos;
		s->end_offset = h.base_offset;
		s->bytes_since_index = (int64_t)s->index_interval_bytes + 1;
		return;
	}
	s->idx.n = 0;
	s->size = 0;
	s->end_offset = s->base_offset;
	s->bytes_since_index = 0;
}

/* CRC-check batches from s->size on, tracking each; stop at the first that
 * is torn, corrupt, or does not continue the offsets. */
static int recover_scan(struct segment *s, struct tail_buf *b, int64_t file_size,
			uint64_t *bytes_read)
{
	for (;;) {
		struct batch_hdr h;
		const uint8_t *batch;
		int err = 0;
		int size = tail_batch_at(s, b, s->size, file_size, &h, &batch, bytes_read, &err);
		if (err != 0)
			return err;
		if (size < 0 || h.base_offset != s->end_offset)
			return 0;
		segment_track_batch(s, batch, &h, h.base_offset, size);
	}
}

/* Drop time index entries that point at or past the valid end. */
static void recover_timeindex_trim_end(struct segment *s)
{
	while (s->tidx.n > 0) {
		int64_t ts, off;
		segment_timeindex_entry(s, s->tidx.n - 1, &ts, &off);
		if (off < s->end_offset)
			break;
		s->tidx.n--;
	}
}

static int recover_tail(struct segment *s, int64_t file_size, bool clean, uint64_t *bytes_read)
{
	struct tail_buf b = { 0 };
	int rc;
	for (;;) {
		uint32_t kept = s->tidx.n;
		recover_pick_start(s, &b, file_size, clean, bytes_read);
		rc = recover_scan(s, &b, file_size, bytes_read);
		if (rc != 0 || kept == 0)
			break;
		int64_t ts, off;
		segment_timeindex_entry(s, kept - 1, &ts, &off);
		if (off < s->end_offset)
			break;
		/* The newest time index entry the scan started from points
		 * past the valid data, so the state it gave was not real:
		 * forget it (and what the scan added) and start again. Each
		 * round drops at least one entry. */
		s->tidx.n = kept;
		recover_timeindex_trim_end(s);
		file_size = s->size;
	}
	free(b.p);
	return rc;
}

struct segment *segment_load_active(const char *dir, int64_t base, int64_t segment_bytes,
				    int32_t index_interval_bytes, bool clean, uint64_t *bytes_read,
				    int64_t *truncated_bytes, int *err)
{
	int64_t file_size, span;
	bool ragged; /* the tail is checked anyway */
	*truncated_bytes = 0;
	struct segment *s = segment_open_existing(dir, base, segment_bytes, index_interval_bytes,
						  false, &file_size, &span, &ragged, err);
	if (s == NULL)
		return NULL;
	index_trim(s, INT64_MAX, file_size);
	timeindex_trim(s, INT64_MAX);
	*err = segment_open_files(s, dir);
	if (*err == 0)
		*err = recover_tail(s, file_size, clean && !ragged, bytes_read);
	if (*err == 0 && s->size < file_size) {
		/* Cut the torn tail, durably, before anything is appended
		 * after it: new batches must never follow garbage. */
		*truncated_bytes = file_size - s->size;
		if (ftruncate(s->log_fd, s->size) != 0 || fdatasync(s->log_fd) != 0)
			*err = -errno;
	}
	if (*err == 0)
		*err = segment_rewrite_indexes(s, dir);
	if (*err != 0) {
		segment_free(s);
		return NULL;
	}
	s->readable = s->size;
	return s;
}

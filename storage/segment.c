/*
 * segment: in-memory state of one segment and its files, index maintenance
 * and header scans. Where the indexes are kept, and lookups over them, is
 * segment_index.c; recovery of a segment from disk is segment_recover.c.
 */
#include "storage/segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/be.h"
#include "storage/limits.h"
#include "storage/segment_int.h"

int segment_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext)
{
	int n = snprintf(buf, cap, "%s/%020" PRId64 "%s", dir, base, ext);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

struct segment *segment_alloc(int64_t base, int32_t index_interval_bytes)
{
	struct segment *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->base_offset = base;
	s->end_offset = base;
	s->log_fd = s->index_fd = s->timeindex_fd = -1;
	s->wfile = sio_file_of(-1, SIO_FILE_LOG);
	s->index_interval_bytes = index_interval_bytes;
	s->max_ts = BATCH_NO_TIMESTAMP;
	s->max_ts_offset = base;
	s->idx.entry_bytes = SEGMENT_INDEX_ENTRY_BYTES;
	s->tidx.entry_bytes = SEGMENT_TIMEINDEX_ENTRY_BYTES;
	return s;
}

int segment_index_arrays(struct segment *s, int64_t segment_bytes)
{
	int32_t iv = s->index_interval_bytes;
	int rc = seg_index_array(&s->idx, seg_index_cap(segment_bytes, iv, SEGMENT_INDEX_ENTRIES_MAX),
				 SEGMENT_INDEX_ENTRY_BYTES);
	if (rc == 0)
		rc = seg_index_array(&s->tidx,
				     seg_index_cap(segment_bytes, iv, SEGMENT_TIMEINDEX_ENTRIES_MAX),
				     SEGMENT_TIMEINDEX_ENTRY_BYTES);
	return rc;
}

struct segment *segment_new(int64_t base, int64_t segment_bytes, int32_t index_interval_bytes)
{
	struct segment *s = segment_alloc(base, index_interval_bytes);
	if (s != NULL && segment_index_arrays(s, segment_bytes) != 0) {
		segment_free(s);
		return NULL;
	}
	return s;
}

static int seg_open_one(const char *dir, int64_t base, const char *ext, int *fd)
{
	char path[4096];
	int rc = segment_path(path, sizeof(path), dir, base, ext);
	if (rc != 0)
		return rc;
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	return *fd < 0 ? -errno : 0;
}

void segment_read_advice(const struct segment *s)
{
	/* Reads come whole (a fetch's window) and in the order consumers
	 * ask: the kernel's readahead would only add disk reads nobody
	 * scheduled, competing with the log's writes and syncs. */
	posix_fadvise(s->log_fd, 0, 0, POSIX_FADV_RANDOM);
}

int segment_open_files(struct segment *s, const char *dir)
{
	int rc = 0;
	if (s->log_fd < 0)
		rc = seg_open_one(dir, s->base_offset, ".log", &s->log_fd);
	if (rc == 0)
		segment_read_advice(s);
	if (rc == 0 && s->index_fd < 0)
		rc = seg_open_one(dir, s->base_offset, ".index", &s->index_fd);
	if (rc == 0 && s->timeindex_fd < 0)
		rc = seg_open_one(dir, s->base_offset, ".timeindex", &s->timeindex_fd);
	return rc;
}

static void fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void segment_close_index_files(struct segment *s)
{
	fd_close(&s->index_fd);
	fd_close(&s->timeindex_fd);
}

void segment_free(struct segment *s)
{
	if (s == NULL)
		return;
	/* The log releases wfile through its backend first (a registered
	 * slot); a descriptor still here is closed all the same. */
	fd_close(&s->wfile.fd);
	fd_close(&s->log_fd);
	segment_close_index_files(s);
	seg_index_release(&s->idx);
	seg_index_release(&s->tidx);
	free(s);
}

int segment_unlink(const char *dir, int64_t base)
{
	static const char *const exts[] = { ".log", ".index", ".timeindex" };
	int first = 0;
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		char path[4096];
		int rc = segment_path(path, sizeof(path), dir, base, exts[i]);
		if (rc == 0 && unlink(path) != 0 && errno != ENOENT)
			rc = -errno;
		if (first == 0)
			first = rc;
	}
	return first;
}

/* A full index drops the entry: lookups then start from an earlier entry,
 * which is slower but still right. Appends never get here (segment_fits
 * rolls first); recovery of a segment written with other settings can. */
static void seg_index_add(struct segment *s, int64_t offset, int64_t pos)
{
	if (s->idx.n >= s->idx.cap)
		return;
	uint8_t *e = s->idx.raw + (size_t)s->idx.n * SEGMENT_INDEX_ENTRY_BYTES;
	be32_store(e, (uint32_t)(offset - s->base_offset));
	be32_store(e + 4, (uint32_t)pos);
	s->idx.n++;
}

/* Kafka's TimeIndex.maybeAppend: only a timestamp larger than the last
 * entry's (or than "no timestamp" for an empty index) is recorded. */
static void seg_timeindex_maybe_add(struct segment *s)
{
	int64_t last_ts = BATCH_NO_TIMESTAMP, last_off = s->base_offset;
	if (s->tidx.n > 0)
		segment_timeindex_entry(s, s->tidx.n - 1, &last_ts, &last_off);
	if (s->max_ts <= last_ts || s->tidx.n >= s->tidx.cap)
		return;
	uint8_t *e = s->tidx.raw + (size_t)s->tidx.n * SEGMENT_TIMEINDEX_ENTRY_BYTES;
	be64_store(e, (uint64_t)s->max_ts);
	be32_store(e + 8, (uint32_t)(s->max_ts_offset - s->base_offset));
	s->tidx.n++;
}

/* Offset of the first record carrying the batch's max timestamp; the
 * batch's last offset when the records cannot be read (compressed, header
 * only, or a producer whose maxTimestamp matches no record). */
static int64_t seg_max_ts_offset(const uint8_t *batch, const struct batch_hdr *h,
				 int64_t base_offset, int64_t batch_bytes)
{
	int64_t last = base_offset + h->last_offset_delta;
	if (h->attributes & BATCH_ATTR_TIMESTAMP_TYPE)
		return base_offset; /* log append time: every record has it */
	struct batch_rec_iter it;
	if (batch == NULL || batch_rec_iter_init(&it, batch, (size_t)batch_bytes, h) != 0)
		return last;
	struct batch_rec r;
	while (batch_rec_iter_next(&it, &r) == 1)
		if (h->base_timestamp + r.timestamp_delta == h->max_timestamp)
			return base_offset + r.offset_delta;
	return last;
}

void segment_track_batch(struct segment *s, const uint8_t *batch, const struct batch_hdr *h,
			 int64_t base_offset, int64_t batch_bytes)
{
	int64_t pos = s->size;
	if (h->max_timestamp > s->max_ts) {
		s->max_ts = h->max_timestamp;
		s->max_ts_offset = seg_max_ts_offset(batch, h, base_offset, batch_bytes);
	}
	if (s->bytes_since_index > s->index_interval_bytes) {
		seg_index_add(s, base_offset + h->last_offset_delta, pos);
		seg_timeindex_maybe_add(s);
		s->bytes_since_index = 0;
	}
	s->bytes_since_index += batch_bytes;
	s->size += batch_bytes;
	s->end_offset = base_offset + h->last_offset_delta + 1;
}

bool segment_fits(const struct segment *s, int64_t batch_bytes, int32_t last_offset_delta,
		  int64_t segment_bytes)
{
	if (s->size == 0)
		return true;
	if (s->size + batch_bytes > segment_bytes)
		return false;
	if (s->end_offset + last_offset_delta - s->base_offset > INT32_MAX)
		return false;
	/* Room for this batch's entries, and the sealing time index entry. */
	return s->idx.n + 1 <= s->idx.cap && s->tidx.n + 2 <= s->tidx.cap;
}

void segment_seal_index(struct segment *s)
{
	seg_timeindex_maybe_add(s);
}

ssize_t segment_pread(const struct segment *s, void *buf, size_t n, int64_t pos)
{
	return pread_full(s->log_fd, buf, n, pos);
}

ssize_t pread_full(int fd, void *buf, size_t n, int64_t pos)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, pos + (int64_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* The scan's reads: a window of cap bytes at a header, or just its page
 * after a batch so large that a window would mostly hold its records. */
#define SCAN_PAGE_BYTES 4096

static int scan_headers(const struct segment *s, int64_t pos, int64_t end_pos,
			segment_batch_fn fn, void *arg, uint64_t *bytes_read,
			segment_pread_fn rd, void *rd_arg, uint8_t *buf, size_t cap)
{
	int64_t buf_pos = 0, last = 0;
	size_t buf_len = 0;
	while (pos + BATCH_HEADER_BYTES <= end_pos) {
		if (pos < buf_pos || pos + BATCH_HEADER_BYTES > buf_pos + (int64_t)buf_len) {
			int64_t want = last > (int64_t)cap / 4 ? SCAN_PAGE_BYTES : (int64_t)cap;
			if (want > end_pos - pos)
				want = end_pos - pos;
			ssize_t r = rd != NULL ? rd(rd_arg, s, buf, (size_t)want, pos)
					       : segment_pread(s, buf, (size_t)want, pos);
			if (r < 0)
				return (int)r;
			*bytes_read += (uint64_t)r;
			if (r < BATCH_HEADER_BYTES)
				return 0;
			buf_pos = pos;
			buf_len = (size_t)r;
		}
		struct batch_hdr h;
		int size = batch_parse(buf + (pos - buf_pos), BATCH_HEADER_BYTES, &h);
		if (size < 0 || pos + size > end_pos)
			return 0;
		int rc = fn(arg, &h, pos, size);
		if (rc != 0)
			return rc;
		pos += size;
		last = size;
	}
	return 0;
}

int segment_scan_headers(const struct segment *s, int64_t pos, int64_t end_pos,
			 segment_batch_fn fn, void *arg, uint64_t *bytes_read)
{
	/* Long scans (recovery, producer-state replay, index rebuilds) read
	 * big sequential windows: one read per many small batches, where a
	 * page per header would be a disk read per batch. */
	uint8_t *buf = malloc(SCAN_WINDOW_BYTES);
	if (buf == NULL)
		return -ENOMEM;
	int rc = scan_headers(s, pos, end_pos, fn, arg, bytes_read, NULL, NULL, buf,
			      SCAN_WINDOW_BYTES);
	free(buf);
	return rc;
}

int segment_scan_headers_via(const struct segment *s, int64_t pos, int64_t end_pos,
			     segment_batch_fn fn, void *arg, uint64_t *bytes_read,
			     segment_pread_fn rd, void *rd_arg)
{
	/* A lookup from an index entry: a page covers the few headers it
	 * passes. */
	uint8_t buf[SCAN_PAGE_BYTES];
	return scan_headers(s, pos, end_pos, fn, arg, bytes_read, rd, rd_arg, buf, sizeof(buf));
}

int64_t segment_name_offset(const char *name, const char *ext)
{
	size_t len = strlen(name), el = strlen(ext);
	if (len != SEGMENT_NAME_DIGITS + el || strcmp(name + SEGMENT_NAME_DIGITS, ext) != 0)
		return -1;
	int64_t v = 0;
	for (int i = 0; i < SEGMENT_NAME_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return v;
}

static int segment_cmp_offset(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int segment_dir_offsets(const char *dir, const char *ext, int64_t **out)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	int64_t *v = NULL;
	int n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int64_t off = segment_name_offset(de->d_name, ext);
		if (off < 0)
			continue;
		if (n == cap) {
			int64_t *g = realloc(v, sizeof(*v) * (size_t)(cap ? cap * 2 : 8));
			if (g == NULL) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = g;
			cap = cap ? cap * 2 : 8;
		}
		v[n++] = off;
	}
	closedir(d);
	if (n > 0)
		qsort(v, (size_t)n, sizeof(*v), segment_cmp_offset);
	*out = v;
	return n;
}

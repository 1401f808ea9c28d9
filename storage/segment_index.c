/*
 * segment_index: where a segment's index entries are kept, and the
 * lookups over them.
 *
 * The active segment's indexes are arrays of anonymous memory, mapped
 * once at their largest size (the kernel backs only the pages entries are
 * written to), which appends add entries to and the log's writes read
 * from. Once the segment is sealed and its files hold every entry, the
 * arrays go and the entries are read from a read-only shared mapping of
 * each index file. The page cache holds those pages, not the process: a
 * broker with thousands of sealed segments keeps resident only the index
 * pages that lookups touch, and the kernel drops them again under memory
 * pressure, where a copy of every index would stay in the heap for good.
 * Where a file cannot be mapped (the process is out of mappings,
 * vm.max_map_count, which each mapping counts against, or the filesystem
 * does not map), a malloc'ed copy of the entries does the same job.
 *
 * A mapping never covers more entries than its file held when it was
 * mapped (recovery maps whole entries of the file's size; a seal checks
 * the size first), so no lookup touches a page past the end of the file,
 * which would be SIGBUS. Nothing in the broker shrinks a sealed segment's
 * index file afterwards: retention unlinks it, a compaction swap renames
 * another file over it, recovery rewrites only files it has not mapped,
 * and a mapping keeps the file it was made from until the segment is
 * freed. (Truncating one by hand under a running broker would crash it,
 * as it would Kafka.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "storage/be.h"
#include "storage/segment_int.h"
#include "storage/slog.h"

/* Entries a segment of segment_bytes can need: one per interval (an entry
 * follows more than interval bytes), one for the first batch position, one
 * for sealing; capped where Kafka's default segment.index.bytes caps it. */
uint32_t seg_index_cap(int64_t segment_bytes, int32_t interval, uint32_t max)
{
	int64_t n = segment_bytes / ((int64_t)interval + 1) + 3;
	return n > (int64_t)max ? max : (uint32_t)n;
}

void seg_index_release(struct seg_index *ix)
{
	if (ix->kind == SEG_INDEX_ARRAY || ix->kind == SEG_INDEX_FILE)
		munmap(ix->raw, ix->held_bytes);
	else if (ix->kind == SEG_INDEX_HEAP)
		free(ix->raw);
	*ix = (struct seg_index){ .entry_bytes = ix->entry_bytes };
}

int seg_index_array(struct seg_index *ix, uint32_t cap, uint32_t entry_bytes)
{
	seg_index_release(ix);
	ix->entry_bytes = entry_bytes;
	size_t bytes = (size_t)cap * entry_bytes;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*ix = (struct seg_index){ .raw = p, .cap = cap, .entry_bytes = entry_bytes,
				  .kind = SEG_INDEX_ARRAY, .held_bytes = bytes };
	return 0;
}

static const char *seg_index_ext(const struct seg_index *ix)
{
	return ix->entry_bytes == SEGMENT_INDEX_ENTRY_BYTES ? ".index" : ".timeindex";
}

/* Said once per process: thousands of segments failing alike would say
 * it thousands of times, and the stats line counts the bytes. */
static void seg_index_warn(const struct seg_index *ix, int64_t base, int err)
{
	static atomic_bool warned;
	if (atomic_exchange_explicit(&warned, true, memory_order_relaxed))
		return;
	slog("segment %020" PRId64 "%s: index file not mapped (%s), its entries are kept in "
	     "memory instead (if the process is out of mappings, raise vm.max_map_count); "
	     "not logged again", base, seg_index_ext(ix), strerror(-err));
}

/* ix (empty) becomes a read-only mapping of the first n entries of the
 * file at fd, which must hold them, read as advice (madvise) says. 0 or
 * -errno. */
static int seg_index_map_file(struct seg_index *ix, int fd, uint32_t n, int advice)
{
	size_t bytes = (size_t)n * ix->entry_bytes;
	struct stat st;
	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) != 0)
		return -errno;
	if ((uint64_t)st.st_size < bytes)
		return -EIO; /* mapped, its last entries would be SIGBUS */
	void *p = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	madvise(p, bytes, advice);
	*ix = (struct seg_index){ .raw = p, .n = n, .cap = n, .flushed = n,
				  .entry_bytes = ix->entry_bytes, .kind = SEG_INDEX_FILE,
				  .held_bytes = bytes };
	return 0;
}

/* ix (empty) becomes a malloc'ed copy of n entries at src, or read from
 * the file at fd when src is NULL. 0 or -errno. */
static int seg_index_copy(struct seg_index *ix, const uint8_t *src, int fd, uint32_t n)
{
	size_t bytes = (size_t)n * ix->entry_bytes;
	uint8_t *p = malloc(bytes);
	if (p == NULL)
		return -ENOMEM;
	if (src != NULL) {
		memcpy(p, src, bytes);
	} else {
		ssize_t r = pread_full(fd, p, bytes, 0);
		if (r != (ssize_t)bytes) {
			free(p);
			return r < 0 ? (int)r : -EIO;
		}
	}
	*ix = (struct seg_index){ .raw = p, .n = n, .cap = n, .flushed = n,
				  .entry_bytes = ix->entry_bytes, .kind = SEG_INDEX_HEAP,
				  .held_bytes = bytes };
	return 0;
}

int seg_index_load_file(struct seg_index *ix, int fd, uint32_t cap_max, bool *ragged,
			int64_t base)
{
	seg_index_release(ix);
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	uint64_t n = (uint64_t)st.st_size / ix->entry_bytes;
	if (n > cap_max || (uint64_t)st.st_size % ix->entry_bytes != 0)
		*ragged = true;
	if (n > cap_max)
		n = cap_max;
	if (n == 0)
		return 0;
	/* Recovery reads every entry next: start reading the whole file, as
	 * one pread of it would. */
	int rc = seg_index_map_file(ix, fd, (uint32_t)n, MADV_WILLNEED);
	if (rc == 0)
		return 0;
	seg_index_warn(ix, base, rc);
	return seg_index_copy(ix, NULL, fd, (uint32_t)n);
}

/* A lookup touches a few entries far apart: the kernel's read-around
 * would bring in 128 KiB of the file for each of them. */
#define SEG_INDEX_LOOKUP_ADVICE MADV_RANDOM

void seg_index_forget_pages(struct seg_index *ix)
{
	if (ix->kind != SEG_INDEX_FILE)
		return;
	/* The pages stay in the page cache; only the process's page table
	 * entries go, so its resident size counts what lookups touch. */
	madvise(ix->raw, ix->held_bytes, MADV_DONTNEED);
	madvise(ix->raw, ix->held_bytes, SEG_INDEX_LOOKUP_ADVICE);
}

/* The array of a sealed segment gives way to the file it was written to. */
static void seg_index_settle(struct seg_index *ix, int fd, int64_t base)
{
	if (ix->kind != SEG_INDEX_ARRAY)
		return; /* already settled */
	struct seg_index to = { .entry_bytes = ix->entry_bytes };
	int rc = 0;
	if (ix->n > 0) {
		rc = seg_index_map_file(&to, fd, ix->n, SEG_INDEX_LOOKUP_ADVICE);
		if (rc != 0) {
			seg_index_warn(ix, base, rc);
			rc = seg_index_copy(&to, ix->raw, -1, ix->n);
		}
	}
	if (rc != 0)
		return; /* no memory for a copy: the array works just as well */
	seg_index_release(ix);
	*ix = to;
}

void segment_settle_indexes(struct segment *s, int index_fd, int timeindex_fd)
{
	seg_index_settle(&s->idx, index_fd, s->base_offset);
	seg_index_settle(&s->tidx, timeindex_fd, s->base_offset);
}

static void seg_index_bytes(const struct seg_index *ix, uint64_t *memory, uint64_t *mapped)
{
	uint64_t bytes = (uint64_t)ix->n * ix->entry_bytes;
	if (ix->kind == SEG_INDEX_FILE)
		*mapped += bytes;
	else
		*memory += bytes;
}

void segment_index_bytes(const struct segment *s, uint64_t *memory, uint64_t *mapped)
{
	seg_index_bytes(&s->idx, memory, mapped);
	seg_index_bytes(&s->tidx, memory, mapped);
}

/* ---- lookups: binary searches, O(log n) entries read ---- */

void segment_index_entry(const struct segment *s, uint32_t i, int64_t *offset, int64_t *pos)
{
	const uint8_t *e = s->idx.raw + (size_t)i * SEGMENT_INDEX_ENTRY_BYTES;
	*offset = s->base_offset + (int32_t)be32_load(e);
	*pos = (int32_t)be32_load(e + 4);
}

void segment_timeindex_entry(const struct segment *s, uint32_t i, int64_t *ts, int64_t *offset)
{
	const uint8_t *e = s->tidx.raw + (size_t)i * SEGMENT_TIMEINDEX_ENTRY_BYTES;
	*ts = (int64_t)be64_load(e);
	*offset = s->base_offset + (int32_t)be32_load(e + 8);
}

int64_t segment_index_lookup_next(const struct segment *s, int64_t offset, int64_t *next)
{
	uint32_t lo = 0, hi = s->idx.n; /* answer: last i < hi with entry <= offset */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int64_t off, pos;
		segment_index_entry(s, mid, &off, &pos);
		if (off <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	int64_t off = -1, pos = 0;
	if (lo > 0)
		segment_index_entry(s, lo - 1, &off, &pos);
	*next = -1;
	if (lo > 0 && off < offset && lo < s->idx.n) {
		int64_t noff;
		segment_index_entry(s, lo, &noff, next);
	}
	return pos;
}

int64_t segment_index_lookup(const struct segment *s, int64_t offset)
{
	int64_t next;
	return segment_index_lookup_next(s, offset, &next);
}

int64_t segment_time_lookup(const struct segment *s, int64_t ts)
{
	uint32_t lo = 0, hi = s->tidx.n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int64_t t, off;
		segment_timeindex_entry(s, mid, &t, &off);
		if (t < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	int64_t t, off;
	segment_timeindex_entry(s, lo - 1, &t, &off);
	return off;
}

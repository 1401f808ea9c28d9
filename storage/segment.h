/*
 * segment: one slice of a partition log, as Kafka lays it out on disk:
 *
 *   <base>.log        record batches back to back, exactly as on the wire
 *   <base>.index      sparse offset index: (int32 offset - base, int32 file
 *                     position) per entry, big-endian, 8 bytes
 *   <base>.timeindex  time index: (int64 timestamp, int32 offset - base),
 *                     big-endian, 12 bytes
 *
 * <base> is the segment's first offset as 20 decimal digits.
 *
 * An offset index entry is added for a batch when more than
 * index_interval_bytes were appended since the last entry; it holds that
 * batch's LAST offset and its start position (as Kafka's LogSegment.append).
 * A time index entry is added at the same moments when the largest timestamp
 * seen has grown, holding that timestamp and the offset where it first
 * occurred, so every record at or below an entry's offset has a timestamp at
 * or below the entry's. Sealing a segment adds a last entry for its maximum.
 *
 * The indexes are kept in their file format. An active segment's live in
 * arrays of its own, mapped once at their largest size (lazily backed by
 * the kernel), which never move, so the appender queues writes of new
 * entries straight from them while appends add more. A sealed segment's
 * are read-only shared mappings of its index files (segment_index.c): the
 * page cache holds them, and the process only the pages lookups touch.
 * Lookups are binary searches over the entries, O(log n).
 *
 * Threading: a segment belongs to its log's shard thread. Nothing here
 * blocks except the functions that say they do I/O.
 */
#ifndef SLUICE_STORAGE_SEGMENT_H
#define SLUICE_STORAGE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/batch.h"
#include "storage/sio.h"

#define SEGMENT_INDEX_ENTRY_BYTES 8
#define SEGMENT_TIMEINDEX_ENTRY_BYTES 12
#define SEGMENT_NAME_DIGITS 20

/* Where an index's entries are (segment_index.c). */
enum seg_index_kind {
	SEG_INDEX_NONE,  /* nowhere: no entries, nothing held */
	SEG_INDEX_ARRAY, /* an anonymous mapping of cap entries, writable:
			  * the active segment's (and recovery's rebuilds) */
	SEG_INDEX_FILE,  /* a read-only shared mapping of n entries of the
			  * index file: a sealed segment's */
	SEG_INDEX_HEAP,  /* a malloc'ed copy of n entries: a sealed segment's
			  * whose file could not be mapped */
};

struct seg_index {
	uint8_t *raw;         /* n entries in file format */
	uint32_t n, cap;      /* entries used / that fit */
	uint32_t flushed;     /* entries already queued to (or read from) the file */
	uint32_t entry_bytes; /* SEGMENT_INDEX_ENTRY_BYTES or _TIMEINDEX_ */
	enum seg_index_kind kind;
	size_t held_bytes;    /* length of the mapping or allocation at raw */
};

struct segment {
	int64_t base_offset;
	int64_t end_offset; /* next offset after the last appended batch */
	int64_t size;       /* .log bytes appended, written or not */
	int64_t readable;   /* .log bytes below the log's high watermark */
	int log_fd, index_fd, timeindex_fd; /* -1 until the files exist; log_fd
					     * is buffered: reads, recovery */
	struct sio_file wfile;  /* the .log as the log writes it (O_DIRECT when
				 * the filesystem allows), fd -1 when not open:
				 * the log opens it with the files and closes it
				 * at the seal */
	int64_t alloc_end;      /* .log bytes reserved by fallocate (the file's
				 * size while active, see log_flush.c) */
	int64_t created_ms;     /* first append (or recovery), for segment.ms */
	int readers;            /* asynchronous reads in flight on log_fd: the
				 * segment is not deleted or replaced meanwhile */
	struct seg_index idx, tidx;
	int64_t bytes_since_index;
	int32_t index_interval_bytes;
	int64_t max_ts;        /* largest timestamp, BATCH_NO_TIMESTAMP if none */
	int64_t max_ts_offset; /* offset where max_ts first occurs */
};

/* "<dir>/<20-digit base><ext>" into buf. Returns 0 or -ENAMETOOLONG. */
int segment_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext);

/* The offset a file name "<20 digits><ext>" carries, or -1 if it is not
 * one. */
int64_t segment_name_offset(const char *name, const char *ext);

/* The offsets of the files in dir named "<20-digit offset><ext>", ascending,
 * in a malloc'ed array (*out, freed by the caller; NULL when empty).
 * Returns their count or -errno. Blocks: readdir. */
int segment_dir_offsets(const char *dir, const char *ext, int64_t **out);

/* A new, empty segment in memory, with index arrays sized for
 * segment_bytes at index_interval_bytes (capped by the Kafka-like index
 * limits). No files yet: segment_open_files creates them. NULL on ENOMEM. */
struct segment *segment_new(int64_t base, int64_t segment_bytes, int32_t index_interval_bytes);

/* Open (creating if absent) the segment's three files read-write. Blocks
 * (open); the caller fsyncs the directory when it created files. Returns 0
 * or -errno; a no-op if already open. */
int segment_open_files(struct segment *s, const char *dir);

/* Tell the kernel how log_fd is read (no readahead: see segment.c). */
void segment_read_advice(const struct segment *s);

/* Close the index files (the log file stays open for reads). */
void segment_close_index_files(struct segment *s);

/* Close every file and free the segment. */
void segment_free(struct segment *s);

/* Remove the segment's files from dir. Blocks. 0 or the first -errno
 * (ENOENT is not an error). */
int segment_unlink(const char *dir, int64_t base);

/* Account one batch appended at position s->size, assigned base_offset:
 * grows size and end_offset, tracks the maximum timestamp (exact record
 * offset when batch is non-NULL and uncompressed, else the batch's last
 * offset) and adds index entries as described above. batch may be NULL when
 * only the header was read. */
void segment_track_batch(struct segment *s, const uint8_t *batch, const struct batch_hdr *h,
			 int64_t base_offset, int64_t batch_bytes);

/* Would a batch of batch_bytes with last_offset_delta, starting at offset
 * s->end_offset, still fit this segment? No when it would pass
 * segment_bytes (unless the segment is empty), when its relative offset
 * would overflow int32, or when an index is full: then the log rolls. */
bool segment_fits(const struct segment *s, int64_t batch_bytes, int32_t last_offset_delta,
		  int64_t segment_bytes);

/* Add the final time index entry of a segment that stops being active. */
void segment_seal_index(struct segment *s);

/* Once sealed, with every entry written to the index files and no index
 * write in flight: read the indexes from read-only shared mappings of the
 * files open at index_fd and timeindex_fd (which the caller still owns and
 * may close: a mapping keeps its file) and free the arrays. A file that
 * cannot be mapped, or holds fewer bytes than the entries, gets a malloc'ed
 * copy of the entries instead (logged once per process: slog). Blocks only
 * for mmap and fstat. */
void segment_settle_indexes(struct segment *s, int index_fd, int timeindex_fd);

/* Bytes of s's index entries held in memory of the process's own (arrays,
 * copies) and in mappings of the index files (the page cache's), added to
 * *memory and *mapped. */
void segment_index_bytes(const struct segment *s, uint64_t *memory, uint64_t *mapped);

/* Position to start a header scan for the batch containing offset: the
 * position of the last offset index entry whose offset is <= offset, or 0. */
int64_t segment_index_lookup(const struct segment *s, int64_t offset);

/* As segment_index_lookup, and *next: where the batch containing offset
 * most likely starts when that entry's batch ends before offset (an entry
 * names a batch's last offset), i.e. the next entry's position, since a
 * batch larger than the index interval is always followed by an indexed
 * one; -1 when there is no such guess (the entry's batch holds offset, or
 * no entry follows). A guess can be wrong after small batches: the caller
 * checks the batch it finds there. */
int64_t segment_index_lookup_next(const struct segment *s, int64_t offset, int64_t *next);

/* Offset below which every record's timestamp is < ts (from the time index:
 * the offset of the last entry with timestamp < ts), or -1 if none. A
 * search for the first timestamp >= ts starts after it. */
int64_t segment_time_lookup(const struct segment *s, int64_t ts);

/* Decode entry i (< n) of the offset index / time index. */
void segment_index_entry(const struct segment *s, uint32_t i, int64_t *offset, int64_t *pos);
void segment_timeindex_entry(const struct segment *s, uint32_t i, int64_t *ts, int64_t *offset);

/* pread n bytes of fd at pos, retrying short reads and EINTR. Blocks.
 * Returns n, the bytes read before end of file, or -errno. */
ssize_t pread_full(int fd, void *buf, size_t n, int64_t pos);

/* pread exactly n bytes at pos, retrying short reads. Blocks. Returns n, the
 * bytes read before end of file, or -errno. */
ssize_t segment_pread(const struct segment *s, void *buf, size_t n, int64_t pos);

/* Called for each batch a scan visits, in order; a non-zero return stops
 * the scan and is passed back. */
typedef int (*segment_batch_fn)(void *arg, const struct batch_hdr *h, int64_t pos,
				int64_t batch_bytes);

/* Visit the batch headers in [pos, end_pos) without reading record data
 * beyond a small read-ahead. Stops quietly at the first header that does
 * not parse or would pass end_pos (callers scan trusted ranges). Adds the
 * bytes read to *bytes_read. Blocks. Returns 0, a callback's value, or
 * -errno. */
int segment_scan_headers(const struct segment *s, int64_t pos, int64_t end_pos,
			 segment_batch_fn fn, void *arg, uint64_t *bytes_read);

/* A reader standing in for segment_pread (the log's tail cache). */
typedef ssize_t (*segment_pread_fn)(void *arg, const struct segment *s, void *buf, size_t n,
				    int64_t pos);

/* segment_scan_headers reading through rd(rd_arg, ...) (NULL: the file). */
int segment_scan_headers_via(const struct segment *s, int64_t pos, int64_t end_pos,
			     segment_batch_fn fn, void *arg, uint64_t *bytes_read,
			     segment_pread_fn rd, void *rd_arg);

/* Recovery (segment_recover.c). Both block and are start-up only. */

/* Load a sealed segment: its size from the .log file, its indexes mapped
 * from their files (segment_settle_indexes) after a check of every entry,
 * rebuilt from batch headers (and the files rewritten) if they are not
 * consistent: a partial trailing entry, entries out of order or outside
 * the segment. end_offset is the next segment's base. NULL with *err set
 * on failure. */
struct segment *segment_load_sealed(const char *dir, int64_t base, int64_t end_offset,
				    int64_t segment_bytes, int32_t index_interval_bytes,
				    uint64_t *bytes_read, int *err);

/* Load the active segment: validate its tail from the last trustworthy
 * index entry (CRC of every batch), truncate a torn or corrupt tail (with
 * ftruncate + fsync), and rebuild the index entries after the scan start.
 * Only the tail is read. clean: the log was closed cleanly, so its index
 * files are complete (see recover_pick_start for what that buys). NULL
 * with *err set on failure. */
struct segment *segment_load_active(const char *dir, int64_t base, int64_t segment_bytes,
				    int32_t index_interval_bytes, bool clean,
				    uint64_t *bytes_read, int64_t *truncated_bytes, int *err);

#endif

/*
 * segment_int: what the segment module's files (segment.c,
 * segment_index.c, segment_recover.c) share beside segment.h.
 */
#ifndef SLUICE_STORAGE_SEGMENT_INT_H
#define SLUICE_STORAGE_SEGMENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/segment.h"

/* A segment with no files and no index storage yet (kind SEG_INDEX_NONE).
 * NULL on ENOMEM. */
struct segment *segment_alloc(int64_t base, int32_t index_interval_bytes);

/* s's indexes become empty writable arrays with room for the entries of a
 * segment of segment_bytes (what it held before is released). 0 or
 * -errno. */
int segment_index_arrays(struct segment *s, int64_t segment_bytes);

/* Entries a segment of segment_bytes can need at interval, at most max. */
uint32_t seg_index_cap(int64_t segment_bytes, int32_t interval, uint32_t max);

/* ix becomes an empty writable array of cap entries (SEG_INDEX_ARRAY),
 * whatever it held before being released. 0 or -errno. */
int seg_index_array(struct seg_index *ix, uint32_t cap, uint32_t entry_bytes);

/* Free whatever ix holds; it is left empty (SEG_INDEX_NONE). */
void seg_index_release(struct seg_index *ix);

/* Recovery of a sealed segment: ix (released first) holds the whole
 * entries of the index file open at fd, at most cap_max of them, mapped
 * (a malloc'ed copy if it cannot be). *ragged is set when the file ends
 * in a partial entry or holds more than cap_max. fd < 0: no file, no
 * entries. 0 or -errno (fstat, or no memory for the copy). */
int seg_index_load_file(struct seg_index *ix, int fd, uint32_t cap_max, bool *ragged,
			int64_t base);

/* After recovery has read every entry of a mapped index to check it: give
 * the pages back to the page cache (the process keeps the mapping). */
void seg_index_forget_pages(struct seg_index *ix);

#endif

/*
 * dump: the inside of sluice-dump, shared by its files only.
 *
 *   sluice-dump.c     options, one file after another, exit status
 *   dump_file.c       windowed reads of one file, problem reports, printing
 *   dump_log.c        a .log: every batch, its CRC, offsets, zero-filled tail
 *   dump_records.c    the records of one batch (gzip through isa-l)
 *   dump_index.c      .index and .timeindex, checked against the .log
 *   dump_snapshot.c   a producer .snapshot
 *
 * The formats are read with the storage library's own code (batch_parse,
 * batch_validate, batch_rec_iter, segment_scan_headers,
 * producer_snapshot_decode), so the tool agrees with the broker about what
 * is valid. Output goes to stdout; every problem also goes to stderr as
 * "sluice-dump: FILE: position N: what", and makes the exit status 1.
 */
#ifndef SLUICE_TOOLS_DUMP_H
#define SLUICE_TOOLS_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "storage/batch.h"
#include "storage/codec.h"

struct dump_opts {
	bool records;      /* print every record (--records) */
	bool quiet;        /* no batch or entry lines: problems and summaries */
	int64_t max_bytes; /* print at most this much of a key or value; 0: all */
};

/* One file being read, through a window of at most a chunk (or one batch). */
struct dump_file {
	const char *path;
	int fd;
	int64_t size;     /* at open */
	uint8_t *buf;
	size_t cap, len;  /* buf's size / bytes of the file it holds */
	int64_t buf_pos;  /* file position of buf[0] */
	int problems;     /* reported so far */
};

/* Open path read-only and learn its size. 0 or -errno. */
int dump_file_open(struct dump_file *f, const char *path);
void dump_file_close(struct dump_file *f);

/* The n bytes at pos, valid until the next call on f. NULL if they pass
 * the end of the file (*err 0) or on a read error (*err -errno). */
const uint8_t *dump_file_get(struct dump_file *f, int64_t pos, size_t n, int *err);

/* Are the bytes [pos, size) all zero? Returns 1 or 0 (with *nonzero_pos the
 * first byte that is not), or -errno. Reads the tail in chunks. */
int dump_file_zero_from(struct dump_file *f, int64_t pos, int64_t *nonzero_pos);

/* End of the file's content: the position after its last non-zero byte (0
 * for an empty or all-zero file), reading backwards in chunks. Or -errno. */
int64_t dump_file_content_end(struct dump_file *f);

/* Report a problem at a byte position of f on stderr (and count it). */
void dump_problem(struct dump_file *f, int64_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Print p[0..n) quoted, printable ASCII as is and other bytes as \xNN (and
 * \", \\, \n, \r, \t), cut after max bytes (0: never) with the count of
 * bytes left out; n < 0 prints null. */
void dump_print_bytes(FILE *out, const uint8_t *p, int64_t n, int64_t max);

/* "<20 digits><ext>" at the end of path -> that offset, or -1. */
int64_t dump_name_offset(const char *path, const char *ext);

/* The same path with ext in place of its extension (from the last '.'),
 * in buf. 0, or -ENAMETOOLONG. */
int dump_sibling_path(char *buf, size_t cap, const char *path, const char *ext);

/* Is the segment of a file (its base offset from its name) followed by a
 * later segment in the same directory, so it was sealed? */
bool dump_segment_sealed(const char *path, int64_t base);

/* Say on stderr that path could not be read (err is -errno). Returns -1. */
int dump_cannot_read(const char *path, int err);

/* Per-file dumpers: each prints the file and returns its problem count (0:
 * it verifies), or -1 when it could not be read at all (said on stderr). */
int dump_log(const char *path, const struct dump_opts *o);
int dump_index(const char *path, const struct dump_opts *o);
int dump_timeindex(const char *path, const struct dump_opts *o);
int dump_snapshot(const char *path, const struct dump_opts *o);

/* What dump_records keeps from one batch to the next: the codecs' library
 * state and the buffer compressed batches are decompressed into (both made
 * on first use, freed by dump_records_ctx_free). Zero-initialised. */
struct dump_records_ctx {
	struct codec_ctx cx;
	struct codec_buf out; /* decompressed records */
};

/* Check and (with o->records) print the records of one CRC-valid batch
 * (whole, at pos in f), decompressed first if need be (any Kafka codec; an
 * unknown codec or records past DUMP_INFLATE_BYTES_MAX are skipped with a
 * note). Problems are reported against f. Returns how many. */
int dump_records(struct dump_file *f, struct dump_records_ctx *ctx, const uint8_t *batch,
		 const struct batch_hdr *h, int64_t pos, const struct dump_opts *o);
void dump_records_ctx_free(struct dump_records_ctx *ctx);

/* "none", "gzip", "snappy", "lz4", "zstd", or "unknown(N)" in a static. */
const char *dump_codec_name(int codec);

#endif

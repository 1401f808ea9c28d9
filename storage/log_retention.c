/*
 * log_retention: the log start offset and what moves it.
 *
 * The start offset is the first offset a reader may see. Two things move
 * it forward, never back:
 *
 *   DeleteRecords (plog_delete_records) sets it to any offset up to the HW,
 *   possibly inside a segment. It is saved in PLOG_START_FILE before the
 *   call returns, so the deleted records never come back after a crash.
 *
 *   Deleting the oldest segment (plog_retention_run) raises it to the next
 *   segment's base. That needs no file: at open the start offset is the
 *   larger of the saved one and the first segment's base.
 *
 * Segments are only ever deleted from the front and only while sealed
 * (index below n_sealed): their data and indexes are durable, no write
 * chain points at them (a chain writes segs[n_sealed]) and no write buffer
 * refers to them. Reads are synchronous on the same thread, so nothing
 * reads a segment while it is dropped.
 *
 * An unlink is not followed by a directory fsync: if a crash undoes it,
 * the segment is back below (or at) the start offset and the next
 * retention pass deletes it again. Nothing readable depends on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/compact.h"
#include "storage/log_int.h"
#include "storage/verify.h"

/* The start offset file: one line, "v1 <decimal offset>\n". */
#define START_FILE_VERSION "v1 "
#define START_FILE_BYTES_MAX 64

const char *plog_delete_reason_name(enum plog_delete_reason r)
{
	switch (r) {
	case PLOG_DELETE_RETENTION_MS:
		return "retention.ms";
	case PLOG_DELETE_RETENTION_BYTES:
		return "retention.bytes";
	case PLOG_DELETE_START_OFFSET:
		return "log start offset";
	}
	return "?";
}

/* ---- the start offset file ---- */

static int start_file_path(char *buf, size_t cap, const char *dir, const char *suffix)
{
	int n = snprintf(buf, cap, "%s/%s%s", dir, PLOG_START_FILE, suffix);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Replace the file atomically and durably: a reader (the next open) sees
 * the old offset or the new one, never a torn line; the rename is durable
 * once the directory is synced. */
static int start_file_write(const char *dir, int64_t offset)
{
	char path[4096], tmp[4096], line[START_FILE_BYTES_MAX];
	int rc = start_file_path(path, sizeof(path), dir, "");
	if (rc == 0)
		rc = start_file_path(tmp, sizeof(tmp), dir, ".tmp");
	if (rc != 0)
		return rc;
	int len = snprintf(line, sizeof(line), START_FILE_VERSION "%" PRId64 "\n", offset);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, line, (size_t)len);
	rc = w == len ? 0 : w < 0 ? -errno : -EIO;
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	return plog_dir_fsync(dir);
}

/* 0 with *offset, -ENOENT when there is no file, -EINVAL when it does not
 * hold what start_file_write writes, or -errno. */
static int start_file_read(const char *dir, int64_t *offset)
{
	char path[4096], buf[START_FILE_BYTES_MAX];
	int rc = start_file_path(path, sizeof(path), dir, "");
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc != 0)
		return rc;
	size_t len = (size_t)n, vlen = sizeof(START_FILE_VERSION) - 1;
	if (len <= vlen + 1)
		return -EINVAL;
	buf[len] = '\0';
	char *nl = buf + len - 1;
	if (memcmp(buf, START_FILE_VERSION, vlen) != 0 || *nl != '\n' || buf[vlen] < '0' ||
	    buf[vlen] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	long long v = strtoll(buf + vlen, &end, 10);
	if (errno != 0 || end != nl)
		return -EINVAL;
	*offset = v;
	return 0;
}

/* ---- deleting segments ---- */

/* Remove files named "<offset><ext>" below offset `below` (snapshots that
 * no longer have a segment to replay from, index files a crash separated
 * from their .log). */
static void plog_unlink_below(struct plog *l, const char *ext, int64_t below)
{
	int64_t *offs = NULL;
	int n = segment_dir_offsets(l->dir, ext, &offs);
	for (int i = 0; i < n && offs[i] < below; i++) {
		char path[4096];
		if (segment_path(path, sizeof(path), l->dir, offs[i], ext) == 0)
			unlink(path);
	}
	free(offs);
}

/* Delete segs[0], which must be sealed. 0, or -errno with the segment kept
 * (its files may be partly gone; a retry finishes them, ENOENT is fine). */
static int plog_drop_oldest(struct plog *l, enum plog_delete_reason why, plog_deleted_fn fn,
			    void *arg)
{
	struct segment *s = l->segs[0];
	VERIFY(l->n_sealed > 0 && l->n_segs > 1);
	VERIFY(!(l->chain.busy && l->chain.seg == s));
	int rc = segment_unlink(l->dir, s->base_offset);
	if (rc != 0)
		return rc;
	struct plog_deleted_segment d = { .base_offset = s->base_offset,
					  .end_offset = s->end_offset,
					  .bytes = s->size,
					  .max_timestamp = s->max_ts,
					  .reason = why };
	memmove(l->segs, l->segs + 1, sizeof(l->segs[0]) * (l->n_segs - 1));
	l->n_segs--;
	l->n_sealed--;
	if (l->start_offset < l->segs[0]->base_offset)
		l->start_offset = l->segs[0]->base_offset;
	l->stats.segments_deleted++;
	l->stats.bytes_deleted += (uint64_t)s->size;
	plog_cache_drop(l, s);
	sio_close(l->io, &s->wfile);
	segment_free(s);
	if (fn != NULL)
		fn(arg, &d);
	return 0;
}

/* Kafka's "largest timestamp" of a segment: its largest record timestamp,
 * or the .log file's modification time when no batch carried one. INT64_MAX
 * (never expires) if even that cannot be had. */
static int64_t segment_largest_ts(const struct segment *s, const char *dir)
{
	if (s->max_ts != BATCH_NO_TIMESTAMP)
		return s->max_ts;
	struct stat st;
	char path[4096];
	int rc = -1;
	if (s->log_fd >= 0)
		rc = fstat(s->log_fd, &st);
	else if (segment_path(path, sizeof(path), dir, s->base_offset, ".log") == 0)
		rc = stat(path, &st);
	if (rc != 0)
		return INT64_MAX;
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Does a rule condemn the oldest segment? Sets *why. total: the log's bytes. */
static bool plog_oldest_expired(const struct plog *l, int64_t now_ms, int64_t total,
				enum plog_delete_reason *why)
{
	if (l->n_sealed == 0)
		return false;
	const struct segment *s = l->segs[0];
	/* Sealed implies written below the HW; checked all the same, since
	 * deleting unreadable data would lose it for good. */
	if (s->end_offset > l->hw)
		return false;
	if (l->cfg.retention_ms >= 0) {
		int64_t ts = segment_largest_ts(s, l->dir);
		if (ts != INT64_MAX && now_ms - ts > l->cfg.retention_ms) {
			*why = PLOG_DELETE_RETENTION_MS;
			return true;
		}
	}
	if (l->cfg.retention_bytes >= 0 && total - s->size >= l->cfg.retention_bytes) {
		*why = PLOG_DELETE_RETENTION_BYTES;
		return true;
	}
	if (l->segs[1]->base_offset <= l->start_offset) {
		*why = PLOG_DELETE_START_OFFSET;
		return true;
	}
	return false;
}

int plog_retention_run(struct plog *l, int64_t now_ms, int max_segments, plog_deleted_fn fn,
		       void *arg)
{
	/* A compaction swap rearranges the segments: wait for it. */
	if (l->err != 0 || l->closing || plog_compact_swapping(l))
		return 0;
	int64_t total = 0;
	for (uint32_t i = 0; i < l->n_segs; i++)
		total += l->segs[i]->size;
	int deleted = 0, rc = 0;
	enum plog_delete_reason why;
	/* A segment being read (plog_read_start) waits for the next run. */
	while (deleted < max_segments && l->segs[0]->readers == 0 &&
	       plog_oldest_expired(l, now_ms, total, &why)) {
		int64_t bytes = l->segs[0]->size;
		rc = plog_drop_oldest(l, why, fn, arg);
		if (rc != 0)
			break;
		total -= bytes;
		deleted++;
	}
	if (deleted > 0)
		plog_unlink_below(l, ".snapshot", l->segs[0]->base_offset);
	return rc != 0 ? rc : deleted;
}

int plog_delete_records(struct plog *l, int64_t offset, int64_t *low_watermark)
{
	*low_watermark = l->start_offset;
	if (l->err != 0)
		return l->err;
	if (l->closing)
		return PLOG_ERR_STORAGE;
	if (offset == -1)
		offset = l->hw;
	if (offset < 0 || offset > l->hw)
		return -ERANGE;
	if (offset <= l->start_offset)
		return 0;
	/* Durable first: answering before the file is safe would let a crash
	 * bring back records the client was told are gone. */
	int rc = start_file_write(l->dir, offset);
	if (rc != 0)
		return rc;
	l->start_offset = offset;
	*low_watermark = offset;
	return 0;
}

/* ---- at open ---- */

/* The whole log lies below the start offset (its tail was lost in a crash
 * with flush=none or interval, after DeleteRecords moved the start past
 * it): drop every segment and start empty at offset, as Kafka does. */
static int plog_restart_at(struct plog *l, int64_t offset)
{
	for (uint32_t i = 0; i < l->n_segs; i++) {
		int rc = segment_unlink(l->dir, l->segs[i]->base_offset);
		if (rc != 0)
			return rc;
	}
	while (l->n_segs > 0)
		segment_free(l->segs[--l->n_segs]);
	int rc = plog_segs_push_new(l, offset);
	if (rc != 0)
		return rc;
	struct segment *s = plog_active(l);
	l->n_sealed = 0;
	l->end_offset = l->hw = offset;
	rc = segment_open_files(s, l->dir);
	return rc != 0 ? rc : plog_dir_fsync(l->dir);
}

int plog_start_recover(struct plog *l)
{
	int64_t saved = -1;
	int rc = start_file_read(l->dir, &saved);
	if (rc != 0 && rc != -ENOENT)
		return rc;
	l->start_offset = l->segs[0]->base_offset;
	if (saved > l->start_offset)
		l->start_offset = saved;
	if (l->start_offset > l->end_offset) {
		rc = plog_restart_at(l, l->start_offset);
		if (rc != 0)
			return rc;
	}
	while (l->n_sealed > 0 && l->segs[1]->base_offset <= l->start_offset) {
		rc = plog_drop_oldest(l, PLOG_DELETE_START_OFFSET, NULL, NULL);
		if (rc != 0)
			return rc;
	}
	/* Index files whose .log a crash already removed. (Snapshots below
	 * the first segment are dropped by producer recovery.) */
	plog_unlink_below(l, ".index", l->segs[0]->base_offset);
	plog_unlink_below(l, ".timeindex", l->segs[0]->base_offset);
	return 0;
}

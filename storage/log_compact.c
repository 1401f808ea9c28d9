/*
 * log_compact: cleaning rounds (compact.h), one bounded step at a time:
 * planning, the offset map, and the copy of each group of segments into a
 * cleaned segment. The swap itself, recovery and the checkpoint file are
 * in log_compact_swap.c.
 *
 * Reads and writes are synchronous and buffered (the cleaner is a reader
 * of sealed, already durable files, and its output is synced once per
 * group at the swap). Each step reads at most a slice. The fsyncs (swap,
 * checkpoint) go on the log's ring and the round waits for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/compact_int.h"
#include "storage/slog.h"

typedef int (*job_batch_fn)(struct cleaner *c, struct plog *l, struct compact_job *job,
			    const uint8_t *p, const struct batch_hdr *h, int64_t size,
			    int64_t pos);

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct cleaner *cleaner_new(const struct cleaner_config *cfg, int *err)
{
	*err = cfg->slice_bytes < 1 || cfg->decompress_bytes_max < 0 ? -EINVAL : 0;
	struct cleaner *c = *err == 0 ? calloc(1, sizeof(*c)) : NULL;
	if (*err == 0 && c == NULL)
		*err = -ENOMEM;
	if (c == NULL)
		return NULL;
	c->cfg = *cfg;
	c->codec.plain.max = cfg->decompress_bytes_max > 0 ? (size_t)cfg->decompress_bytes_max
							   : COMPACT_DECOMPRESS_BYTES_DEFAULT;
	size_t bytes = cfg->dedupe_buffer_bytes > 0 ? (size_t)cfg->dedupe_buffer_bytes : 0;
	*err = compact_map_init(&c->map, bytes);
	if (*err == 0) {
		c->rcap = COMPACT_IO_CHUNK_BYTES;
		c->ocap = 2 * COMPACT_IO_CHUNK_BYTES;
		c->rbuf = malloc(c->rcap);
		c->obuf = malloc(c->ocap);
		if (c->rbuf == NULL || c->obuf == NULL)
			*err = -ENOMEM;
	}
	if (*err != 0) {
		cleaner_free(c);
		return NULL;
	}
	return c;
}

void cleaner_free(struct cleaner *c)
{
	if (c == NULL)
		return;
	compact_map_free(&c->map);
	compact_codec_free(&c->codec);
	free(c->rbuf);
	free(c->obuf);
	free(c);
}

size_t cleaner_memory_bytes(const struct cleaner *c)
{
	return compact_map_bytes(&c->map) + c->rcap + c->ocap + compact_codec_bytes(&c->codec);
}

int64_t cleaner_step_us_max(const struct cleaner *c)
{
	return c->step_us_max;
}

bool plog_compact_busy(const struct plog *l)
{
	return l->cjob != NULL;
}

bool plog_compact_io_pending(const struct plog *l)
{
	return l->cjob != NULL && l->cjob->io != NULL && l->cjob->io->inflight > 0;
}

bool plog_compact_swapping(const struct plog *l)
{
	return l->cjob != NULL && l->cjob->phase == CJ_SWAP;
}

static int64_t seg_mtime_ms(const struct segment *s)
{
	struct stat st;
	if (s->log_fd < 0 || fstat(s->log_fd, &st) != 0)
		return 0;
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* The first offset a round may not clean: the first segment not sealed,
 * or the first dirty one holding a record younger than the lag (its
 * newest record's timestamp, or its file's time when it has none). */
static int64_t plan_first_uncleanable(const struct plog *l, int64_t first_dirty, int64_t now_ms)
{
	int64_t end = l->segs[l->n_sealed]->base_offset;
	if (l->cfg.min_compaction_lag_ms <= 0)
		return end;
	for (uint32_t i = 0; i < l->n_sealed; i++) {
		const struct segment *s = l->segs[i];
		if (s->end_offset <= first_dirty)
			continue;
		int64_t ts = s->max_ts != BATCH_NO_TIMESTAMP ? s->max_ts : seg_mtime_ms(s);
		if (now_ms - ts < l->cfg.min_compaction_lag_ms)
			return s->base_offset < end ? s->base_offset : end;
	}
	return end;
}

bool plog_compact_plan(struct plog *l, int64_t now_ms, struct plog_cleanable *out)
{
	struct plog_cleanable pc = { 0 };
	bool due = false;
	if (l->cfg.compact && l->err == 0 && !l->closing && l->n_sealed > 0) {
		int64_t start = l->segs[0]->base_offset;
		pc.first_dirty = l->cleaner_checkpoint > start ? l->cleaner_checkpoint : start;
		pc.first_uncleanable = plan_first_uncleanable(l, pc.first_dirty, now_ms);
		for (uint32_t i = 0; i < l->n_sealed; i++) {
			const struct segment *s = l->segs[i];
			if (s->base_offset >= pc.first_uncleanable)
				break;
			if (s->end_offset <= pc.first_dirty)
				pc.clean_bytes += s->size;
			else
				pc.dirty_bytes += s->size;
		}
		if (pc.clean_bytes + pc.dirty_bytes > 0)
			pc.dirty_ratio = (double)pc.dirty_bytes / (double)(pc.clean_bytes + pc.dirty_bytes);
		due = pc.dirty_bytes > 0 && pc.first_dirty < pc.first_uncleanable &&
		      pc.dirty_ratio >= l->cfg.min_cleanable_dirty_ratio;
	}
	if (out != NULL)
		*out = pc;
	return due;
}

void compact_job_free(struct plog *l)
{
	struct compact_job *job = l->cjob;
	if (job == NULL)
		return;
	if (job->out != NULL)
		compact_out_discard(l, job);
	compact_job_free_replaced(job);
	compact_io_release(job);
	free(job->segs);
	free(job);
	l->cjob = NULL;
}

void plog_compact_abort(struct plog *l)
{
	if (l->cjob == NULL)
		return;
	l->stats.compact_aborts++;
	compact_job_free(l);
}

/* Start a round on l if it is due. 1 started, 0 not due, -ENOMEM. */
static int job_start(struct cleaner *c, struct plog *l, int64_t now_ms)
{
	struct plog_cleanable pc;
	if (!plog_compact_plan(l, now_ms, &pc))
		return 0;
	uint32_t n = 0;
	while (n < l->n_sealed && l->segs[n]->base_offset < pc.first_uncleanable)
		n++;
	struct compact_job *job = calloc(1, sizeof(*job));
	struct compact_seg *segs = calloc(n, sizeof(*segs));
	if (job == NULL || segs == NULL) {
		free(job);
		free(segs);
		return -ENOMEM;
	}
	job->segs = segs;
	job->n = n;
	job->first_dirty = pc.first_dirty;
	job->first_uncleanable = pc.first_uncleanable;
	job->cur = n;
	for (uint32_t i = 0; i < n; i++) {
		struct segment *s = l->segs[i];
		segs[i] = (struct compact_seg){ .s = s, .base = s->base_offset, .end = s->end_offset,
						.size = s->size, .mtime_ms = seg_mtime_ms(s) };
		/* Kafka's delete horizon: the newest segment of the clean
		 * section, less delete.retention.ms (0 without one). */
		if (s->base_offset < pc.first_dirty)
			job->horizon_ms = segs[i].mtime_ms - l->cfg.delete_retention_ms;
		if (job->cur == n && s->end_offset > pc.first_dirty) {
			job->cur = i;
			job->pos = segment_index_lookup(s, pc.first_dirty);
		}
	}
	job->free_seg = -1;
	job->free_budget = c->cfg.slice_bytes * COMPACT_FREE_SLICES_PER_STEP;
	job->gen = ++c->gen;
	job->started_us = monotonic_us();
	compact_map_clear_begin(&c->map);
	job->phase = CJ_CLEAR;
	l->cjob = job;
	return 1;
}

int compact_job_locate(const struct plog *l, const struct compact_job *job, uint32_t from)
{
	if (from >= job->n)
		return 0;
	for (uint32_t k = 0; k < l->n_sealed; k++) {
		if (l->segs[k] != job->segs[from].s)
			continue;
		if (k + (job->n - from) > l->n_sealed)
			return -1;
		for (uint32_t i = from; i < job->n; i++)
			if (l->segs[k + i - from] != job->segs[i].s ||
			    l->segs[k + i - from]->base_offset != job->segs[i].base)
				return -1;
		return (int)k;
	}
	return -1;
}

/* All n bytes or an error: a sealed segment is never short. */
static int pread_whole(int fd, uint8_t *buf, size_t n, int64_t pos)
{
	ssize_t r = pread_full(fd, buf, n, pos);
	return r < 0 ? (int)r : (size_t)r == n ? 0 : -EIO;
}

static int buf_grow(uint8_t **buf, size_t *cap, size_t want)
{
	if (want <= *cap)
		return 0;
	uint8_t *p = realloc(*buf, want);
	if (p == NULL)
		return -ENOMEM;
	*buf = p;
	*cap = want;
	return 0;
}

/* Read whole batches of the current segment from job->pos into c->rbuf
 * and hand each (CRC-checked: a cleaned copy must not launder a bad
 * batch under a fresh CRC) to fn, until *budget is spent. fn returns 0
 * to go on, 1 to stop before that batch, or -errno. Returns 0 when the
 * segment is done, 1 when stopped, or -errno. */
static int job_read(struct cleaner *c, struct plog *l, struct compact_job *job, int64_t *budget,
		    uint64_t *io, job_batch_fn fn)
{
	const struct compact_seg *cs = &job->segs[job->cur];
	while (job->pos < cs->size) {
		if (*budget <= 0)
			return 1;
		int64_t left = cs->size - job->pos;
		size_t want = left < COMPACT_IO_CHUNK_BYTES ? (size_t)left : COMPACT_IO_CHUNK_BYTES;
		struct batch_hdr h;
		if (want < BATCH_HEADER_BYTES)
			return -EBADMSG;
		int rc = pread_whole(cs->s->log_fd, c->rbuf, want, job->pos);
		int size = rc == 0 ? batch_parse(c->rbuf, want, &h) : rc;
		if (size < 0 || size > left)
			return size < 0 && rc != 0 ? rc : -EBADMSG;
		if ((size_t)size > want) {
			/* A batch larger than a chunk is read on its own. */
			rc = buf_grow(&c->rbuf, &c->rcap, (size_t)size);
			if (rc == 0)
				rc = pread_whole(cs->s->log_fd, c->rbuf, (size_t)size, job->pos);
			if (rc != 0)
				return rc;
			want = (size_t)size;
		}
		*io += want;
		size_t off = 0;
		while (off + BATCH_HEADER_BYTES <= want && *budget > 0) {
			size = batch_parse(c->rbuf + off, want - off, &h);
			if (size < 0)
				return -EBADMSG;
			if (off + (size_t)size > want)
				break;
			if (batch_validate(c->rbuf + off, (size_t)size, &h) != size)
				return -EBADMSG;
			rc = fn(c, l, job, c->rbuf + off, &h, size, job->pos + (int64_t)off);
			if (rc != 0) {
				job->pos += (int64_t)off;
				return rc;
			}
			off += (size_t)size;
			*budget -= size;
		}
		job->pos += (int64_t)off;
	}
	return 0;
}

/* ---- map ---- */

static int map_batch(struct cleaner *c, struct plog *l, struct compact_job *job,
		     const uint8_t *p, const struct batch_hdr *h, int64_t size, int64_t pos)
{
	(void)l;
	(void)size;
	(void)pos;
	if (h->base_offset + h->last_offset_delta < job->first_dirty)
		return 0;
	/* No transactions yet: a transactional record might still be
	 * aborted, so it must not replace anything. Control records have
	 * no key to compact by. */
	if (h->attributes & (BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL))
		return 0;
	if (!compact_map_room(&c->map, (uint32_t)h->records_count)) {
		if (c->map.count == 0)
			return -ENOBUFS; /* not even one batch fits */
		job->map_end = h->base_offset;
		job->map_full = true;
		return 1;
	}
	const uint8_t *recs;
	size_t len;
	int rc = compact_batch_records(&c->codec, p, h, &recs, &len);
	if (rc != 1)
		return rc == -ENOMEM ? rc : 0; /* kept whole by the clean, so not mapped */
	struct compact_rec_iter it;
	struct compact_rec r;
	compact_rec_iter_init(&it, recs, len, h->records_count);
	while (compact_rec_next(&it, &r) == 1)
		if (r.key != NULL)
			compact_map_put(&c->map, r.key, (size_t)r.key_len,
					h->base_offset + r.offset_delta);
	return 0;
}

static int job_map(struct cleaner *c, struct plog *l, struct compact_job *job, int64_t budget,
		   uint64_t *io)
{
	int rc = 0;
	while (job->cur < job->n && budget > 0) {
		rc = job_read(c, l, job, &budget, io, map_batch);
		if (rc != 0)
			break;
		job->cur++;
		job->pos = 0;
	}
	if (rc < 0)
		return rc;
	if (!job->map_full && job->cur < job->n)
		return 1; /* slice spent */
	if (!job->map_full)
		job->map_end = job->first_uncleanable;
	while (job->n_clean < job->n && job->segs[job->n_clean].base < job->map_end)
		job->n_clean++;
	job->cur = 0;
	job->pos = 0;
	job->phase = CJ_GROUP;
	return 1;
}

/* ---- clean ---- */

static int job_group(struct cleaner *c, struct plog *l, struct compact_job *job)
{
	(void)c;
	if (job->cur >= job->n_clean) {
		job->phase = CJ_FINISH;
		return 1;
	}
	/* Consecutive segments while the result is sure to fit a segment:
	 * segment.bytes, and offsets relative to the first within int32
	 * (Kafka's groupSegmentsBySize). */
	uint32_t first = job->cur, end = first + 1;
	int64_t bytes = job->segs[first].size;
	while (end < job->n_clean && bytes + job->segs[end].size <= l->cfg.segment_bytes &&
	       job->segs[end].end - 1 - job->segs[first].base <= INT32_MAX) {
		bytes += job->segs[end].size;
		end++;
	}
	int64_t span = bytes > l->cfg.segment_bytes ? bytes : l->cfg.segment_bytes;
	struct segment *out = segment_new(job->segs[first].base, span, l->cfg.index_interval_bytes);
	if (out == NULL)
		return -ENOMEM;
	char path[4096];
	int rc = compact_path(path, sizeof(path), l->dir, out->base_offset, ".log",
			      COMPACT_CLEANED_SUFFIX);
	if (rc == 0) {
		out->log_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		rc = out->log_fd < 0 ? -errno : 0;
	}
	job->out = out;
	if (rc != 0)
		return rc;
	job->g_first = first;
	job->g_end = end;
	job->g_in_bytes = bytes;
	job->g_read_bytes = 0;
	job->g_removed = 0;
	job->g_changed = false;
	job->out_written = 0;
	job->pos = 0;
	job->phase = CJ_CLEAN;
	return 1;
}

/* Write the buffered output (to the page cache: the swap fsyncs it on the
 * ring, off this thread). */
static int out_flush(struct cleaner *c, struct compact_job *job, uint64_t *io)
{
	size_t done = 0;
	while (done < c->olen) {
		ssize_t w = pwrite(job->out->log_fd, c->obuf + done, c->olen - done,
				   job->out_written + (int64_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	job->out_written += (int64_t)c->olen;
	*io += c->olen;
	c->olen = 0;
	return 0;
}

/* Room for n more bytes in the output buffer: written out first if need
 * be, grown if one batch needs more. */
static int out_room(struct cleaner *c, struct compact_job *job, size_t n)
{
	uint64_t io = 0;
	if (c->olen + n > c->ocap) {
		int rc = out_flush(c, job, &io);
		if (rc != 0)
			return rc;
	}
	return buf_grow(&c->obuf, &c->ocap, n);
}

/* The batch at c->obuf + c->olen (n bytes) joins the cleaned segment. */
static void out_commit(struct cleaner *c, struct compact_job *job, int64_t n)
{
	struct batch_hdr h;
	batch_parse(c->obuf + c->olen, (size_t)n, &h);
	segment_track_batch(job->out, c->obuf + c->olen, &h, h.base_offset, n);
	c->olen += (size_t)n;
}

struct keep_ctx {
	struct compact_map *map;
	bool retain_deletes;
};

/* Kafka's LogCleaner.shouldRetainRecord: the record holds its key's
 * latest offset (or one the map has not seen), and is not a tombstone
 * past its time. Keyless records are invalid in a compacted log. */
static bool keep_record(void *arg, const struct compact_rec *r, int64_t offset)
{
	struct keep_ctx *k = arg;
	if (r->key == NULL)
		return false;
	if (compact_map_get(k->map, r->key, (size_t)r->key_len) > offset)
		return false;
	return !r->tombstone || k->retain_deletes;
}

/* Keep an emptied batch as its header? When it is the group's last (so
 * the cleaned segment ends where the group did) or the last batch of a
 * producer the log still tracks (its sequence must survive a restart). */
static bool keep_empty_batch(const struct plog *l, const struct compact_job *job,
			     const struct batch_hdr *h, int64_t size, int64_t pos)
{
	const struct compact_seg *cs = &job->segs[job->cur];
	if (job->cur + 1 == job->g_end && pos + size == cs->size)
		return true;
	return h->producer_id >= 0 &&
	       producer_state_last_offset(&l->producers, h->producer_id) ==
		       h->base_offset + h->last_offset_delta;
}

static int clean_batch(struct cleaner *c, struct plog *l, struct compact_job *job,
		       const uint8_t *p, const struct batch_hdr *h, int64_t size, int64_t pos)
{
	const uint8_t *recs = NULL;
	size_t len = 0;
	int rc = 0;
	job->g_read_bytes += size;
	if (!(h->attributes & (BATCH_ATTR_CONTROL | BATCH_ATTR_TRANSACTIONAL)))
		rc = compact_batch_records(&c->codec, p, h, &recs, &len);
	if (rc < 0 && rc != -EINVAL)
		return rc;
	if (rc == 1) {
		rc = out_room(c, job, compact_batch_filter_room(h, (size_t)size, len));
		if (rc != 0)
			return rc;
		struct keep_ctx k = { &c->map, job->segs[job->cur].mtime_ms > job->horizon_ms };
		struct compact_filter_result res;
		int64_t n = compact_batch_filter(&c->codec, p, h, recs, len, keep_record, &k,
						 keep_empty_batch(l, job, h, size, pos),
						 c->obuf + c->olen, c->ocap - c->olen, &res);
		/* The cleaned segment never gets longer than what it replaces,
		 * batch by batch: a batch compressed again may come out larger
		 * than its producer made it, and is then kept as it was. */
		if (n >= 0 && job->out->size + n <= job->g_read_bytes) {
			if (n > 0)
				out_commit(c, job, n);
			job->g_removed += (uint64_t)res.removed;
			job->g_changed |= !res.unchanged;
			return 0;
		}
		if (n == -ENOMEM)
			return (int)n;
		/* Records that do not decode, or that do not compress into the
		 * room: the batch stays as the producer wrote it. */
	}
	rc = out_room(c, job, (size_t)size);
	if (rc != 0)
		return rc;
	memcpy(c->obuf + c->olen, p, (size_t)size);
	out_commit(c, job, size);
	return 0;
}

static int job_clean(struct cleaner *c, struct plog *l, struct compact_job *job, int64_t budget,
		     uint64_t *io)
{
	int rc = 0;
	if (job->cur < job->g_first)
		job->cur = job->g_first;
	while (job->cur < job->g_end && budget > 0) {
		rc = job_read(c, l, job, &budget, io, clean_batch);
		if (rc != 0)
			break;
		job->cur++;
		job->pos = 0;
	}
	int frc = out_flush(c, job, io);
	if (rc < 0)
		return rc;
	if (frc != 0)
		return frc;
	if (job->cur == job->g_end) {
		job->g_out_bytes = job->out->size;
		job->phase = CJ_SWAP;
	}
	return 1;
}

static int job_swap(struct cleaner *c, struct plog *l, struct compact_job *job)
{
	(void)c;
	if (job->g_changed || job->g_end - job->g_first > 1) {
		int rc = compact_swap_step(l, job);
		if (rc != 0)
			return rc; /* 1: a stage is under way */
		job->groups_swapped++;
		job->segs_replaced += job->g_end - job->g_first;
	} else {
		/* One segment with nothing to drop: rewriting it gains nothing. */
		compact_out_discard(l, job);
	}
	job->bytes_before += (uint64_t)job->g_in_bytes;
	job->bytes_after += (uint64_t)job->g_out_bytes;
	job->records_removed += job->g_removed;
	job->cur = job->g_end;
	job->phase = CJ_GROUP;
	return 1;
}

static const char *dir_name(const char *dir)
{
	const char *s = strrchr(dir, '/');
	return s != NULL ? s + 1 : dir;
}

static int job_finish(struct plog *l, struct compact_job *job)
{
	int rc = compact_checkpoint_step(l, job);
	if (rc != 0)
		return rc; /* 1: its fsyncs are under way */
	l->cleaner_checkpoint = job->map_end;
	l->stats.compact_rounds++;
	l->stats.segments_cleaned += job->n_clean;
	l->stats.compact_bytes_before += job->bytes_before;
	l->stats.compact_bytes_after += job->bytes_after;
	l->stats.compact_records_removed += job->records_removed;
	slog("compaction of %s: %" PRIu32 " segments read, %" PRIu32 " replaced by %" PRIu32
	     ", %" PRIu64 " -> %" PRIu64 " bytes, %" PRIu64 " records removed, clean up to "
	     "offset %" PRId64 ", %" PRId64 " ms",
	     dir_name(l->dir), job->n_clean, job->segs_replaced, job->groups_swapped,
	     job->bytes_before, job->bytes_after, job->records_removed, job->map_end,
	     (monotonic_us() - job->started_us) / 1000);
	compact_job_free(l);
	return 0;
}

/* Where the round's segments must still be: from the group (or the
 * segment) it is at. */
static uint32_t job_first_needed(const struct compact_job *job)
{
	switch (job->phase) {
	case CJ_CLEAN:
		return job->g_first;
	case CJ_SWAP:
		/* Once in memory (stage 4 on) the group is one new segment. */
		return job->stage > 3 ? job->g_end : job->g_first;
	case CJ_CLEAR:
		return 0;
	default:
		return job->cur;
	}
}

static int job_step(struct cleaner *c, struct plog *l, struct compact_job *job, uint64_t *io)
{
	int64_t budget = c->cfg.slice_bytes;
	/* Waiting for the fsyncs of a swap or of the checkpoint. */
	if (job->io != NULL && job->io->inflight > 0)
		return 1;
	if (job->io != NULL && job->io->err != 0) {
		int err = job->io->err;
		job->io->err = 0;
		if (job->committed)
			plog_fail(l, err); /* see compact_swap_step */
		return err;
	}
	switch (job->phase) {
	case CJ_CLEAR:
		if (compact_map_clear_step(&c->map, (size_t)budget))
			job->phase = CJ_MAP;
		return 1;
	case CJ_MAP:
		return job_map(c, l, job, budget, io);
	case CJ_GROUP:
		return job_group(c, l, job);
	case CJ_CLEAN:
		return job_clean(c, l, job, budget, io);
	case CJ_SWAP:
		return job_swap(c, l, job);
	case CJ_FINISH:
	default:
		return job_finish(l, job);
	}
}

int cleaner_step(struct cleaner *c, struct plog *l, int64_t now_ms, uint64_t *io_bytes)
{
	*io_bytes = 0;
	if (l->cjob == NULL) {
		int rc = job_start(c, l, now_ms);
		if (rc <= 0)
			return rc;
	}
	struct compact_job *job = l->cjob;
	/* The map is the shard's: a round that lost it to another log's, or
	 * whose log went offline, or whose segments went away, starts over. */
	if (job->gen != c->gen || l->err != 0 || l->closing ||
	    compact_job_locate(l, job, job_first_needed(job)) < 0) {
		plog_compact_abort(l);
		return 0;
	}
	int64_t t0 = monotonic_us();
	int rc = job_step(c, l, job, io_bytes);
	int64_t dt = monotonic_us() - t0;
	if (dt > c->step_us_max)
		c->step_us_max = dt;
	if (rc < 0) {
		slog("compaction of %s failed: %s", dir_name(l->dir), strerror(-rc));
		plog_compact_abort(l);
	}
	return rc;
}

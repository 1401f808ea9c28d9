/*
 * log_recover: plog_open. Finds the segments in the directory, loads the
 * sealed ones (trusted), recovers the active one's tail, and rebuilds the
 * idempotent-producer state from the newest usable snapshot plus the batch
 * headers after it. Start-up only; blocks.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/log_int.h"

/* mkdir that is durable: a new directory exists after a crash only once
 * its parent is synced, and records acknowledged in a new topic must not
 * vanish with their directory. An existing directory is fine. */
static int mkdir_durable(const char *path)
{
	if (mkdir(path, 0755) == 0)
		return plog_parent_fsync(path);
	return errno == EEXIST ? 0 : -errno;
}

static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir_durable(path);
		if (rc != 0)
			return rc;
		*p = '/';
	}
	return mkdir_durable(path);
}

/* Base offsets of the .log files in dir, ascending, malloc'ed. Leftover
 * temporary files of an interrupted snapshot write are removed first. */
static int list_segments(const char *dir, int64_t **out)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return segment_dir_offsets(dir, ".log", out);
}

static int plog_load_segments(struct plog *l, const int64_t *bases, int n)
{
	for (int i = 0; i < n; i++) {
		int err = 0;
		struct segment *s;
		if (i < n - 1)
			s = segment_load_sealed(l->dir, bases[i], bases[i + 1],
						l->cfg.segment_bytes, l->cfg.index_interval_bytes,
						&l->stats.recovery_log_bytes_read, &err);
		else
			s = segment_load_active(l->dir, bases[i], l->cfg.segment_bytes,
						l->cfg.index_interval_bytes,
						l->stats.recovery_clean,
						&l->stats.recovery_log_bytes_read,
						&l->stats.recovery_truncated_bytes, &err);
		if (s == NULL)
			return err;
		int rc = plog_segs_push(l, s);
		if (rc != 0) {
			segment_free(s);
			return rc;
		}
	}
	return 0;
}

static int plog_create_first_segment(struct plog *l)
{
	int rc = plog_segs_push_new(l, 0);
	if (rc != 0)
		return rc;
	struct segment *s = plog_active(l);
	rc = segment_open_files(s, l->dir);
	return rc != 0 ? rc : plog_dir_fsync(l->dir);
}

struct replay {
	struct plog *l;
	int64_t from;
};

static int replay_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t bytes)
{
	struct replay *r = arg;
	(void)pos;
	(void)bytes;
	if (h->base_offset >= r->from && producer_batch_tracked(h))
		producer_state_update(&r->l->producers, h, h->base_offset);
	return 0;
}

/* Batch headers from offset `from` to the end, into the producer state. */
static int plog_replay_producers(struct plog *l, int64_t from)
{
	if (from >= l->end_offset)
		return 0;
	struct replay r = { l, from };
	for (uint32_t i = 0; i < l->n_segs; i++) {
		struct segment *s = l->segs[i];
		if (s->end_offset <= from)
			continue;
		int64_t pos = s->base_offset < from ? segment_index_lookup(s, from) : 0;
		int rc = segment_scan_headers(s, pos, s->size, replay_cb, &r,
					      &l->stats.recovery_log_bytes_read);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The newest snapshot that the recovered log still covers, then the
 * headers after it. Snapshots past the end (taken at a roll whose data did
 * not survive) or corrupt are removed. */
static int plog_recover_producers(struct plog *l)
{
	int64_t offs[PRODUCER_SNAPSHOTS_KEPT + 8];
	int n = producer_snapshot_list(l->dir, offs, (int)(sizeof(offs) / sizeof(offs[0])));
	if (n < 0)
		return n;
	/* The first segment, not the start offset: batches below a start
	 * moved by DeleteRecords are still on disk and still count. */
	int64_t from = l->segs[0]->base_offset;
	for (int i = 0; i < n; i++) {
		if (offs[i] > l->end_offset || offs[i] < from ||
		    producer_snapshot_load(&l->producers, l->dir, offs[i]) != 0) {
			producer_snapshot_unlink(l->dir, offs[i]);
			continue;
		}
		from = offs[i];
		break;
	}
	return plog_replay_producers(l, from);
}

static int plog_config_check(const struct log_config *cfg)
{
	if (cfg->segment_bytes < 1 || cfg->segment_bytes > INT32_MAX ||
	    cfg->index_interval_bytes < 0 || cfg->flush_interval_ms < 0 ||
	    cfg->segment_ms < 0 || cfg->preallocate_bytes < 0 || cfg->retry_ms < 0 ||
	    cfg->preallocate_zero_max_rate < 0 ||
	    cfg->preallocate_bytes % SIO_DIRECT_ALIGN != 0 ||
	    cfg->retention_ms < -1 || cfg->retention_bytes < -1 ||
	    (cfg->flush != FLUSH_ALWAYS && cfg->flush != FLUSH_INTERVAL && cfg->flush != FLUSH_NONE))
		return -EINVAL;
	if (!(cfg->min_cleanable_dirty_ratio >= 0 && cfg->min_cleanable_dirty_ratio <= 1) ||
	    cfg->delete_retention_ms < 0 || cfg->min_compaction_lag_ms < 0)
		return -EINVAL;
	return 0;
}

/* A clean-close marker is consumed at open: from now on the log is dirty. */
static bool plog_take_marker(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, PLOG_CLEAN_MARKER);
	return unlink(path) == 0;
}

/* The partial page the active segment ends in: the head of its next
 * write buffer. */
static int plog_tail_page_load(struct plog *l, struct segment *s)
{
	int64_t part = s->size % SIO_DIRECT_ALIGN;
	if (part == 0)
		return 0;
	ssize_t r = segment_pread(s, l->tail_page, (size_t)part, s->size - part);
	return r < 0 ? (int)r : r != part ? -EIO : 0;
}

static int plog_recover(struct plog *l)
{
	l->stats.recovery_clean = plog_take_marker(l->dir);
	int rc = compact_recover_dir(l->dir);
	if (rc != 0)
		return rc;
	l->cleaner_checkpoint = compact_checkpoint_load(l->dir);
	int64_t *bases = NULL;
	int n = list_segments(l->dir, &bases);
	if (n < 0)
		return n;
	rc = n > 0 ? plog_load_segments(l, bases, n) : plog_create_first_segment(l);
	free(bases);
	if (rc != 0)
		return rc;
	l->n_sealed = l->n_segs - 1;
	l->end_offset = l->hw = plog_active(l)->end_offset;
	rc = plog_start_recover(l);
	if (rc != 0)
		return rc;
	/* The active file ends at its data now (recovery cut any padding),
	 * and segment.ms counts from the first append after the restart for
	 * a segment of unknown age (the caller's clock is not known here). */
	struct segment *s = plog_active(l);
	s->alloc_end = s->size;
	s->created_ms = -1;
	rc = plog_tail_page_load(l, s);
	return rc != 0 ? rc : plog_recover_producers(l);
}

struct plog *plog_open(const char *dir, const struct log_config *cfg, int *err_out)
{
	int rc = plog_config_check(cfg);
	if (rc == 0)
		rc = mkdir_p(dir);
	struct plog *l = rc == 0 ? calloc(1, sizeof(*l)) : NULL;
	if (rc == 0 && l == NULL)
		rc = -ENOMEM;
	if (rc != 0) {
		*err_out = rc;
		return NULL;
	}
	l->cfg = *cfg;
	if (l->cfg.retry_ms == 0)
		l->cfg.retry_ms = PLOG_WRITE_RETRY_MS_DEFAULT;
	if (cfg->io != NULL) {
		l->io = cfg->io;
	} else {
		l->io = &l->own_io;
		l->own_io.direct = !cfg->no_direct;
	}
	l->retry_at_ms = -1;
	l->prealloc_at_ms = -1;
	if (cfg->pool != NULL && cfg->pool->retain_max > 0)
		cfg->pool->on_evict = plog_cache_on_evict; /* the tail cache */
	l->next_sync_ms = INT64_MIN;
	l->tail_page = aligned_alloc(SIO_DIRECT_ALIGN, SIO_DIRECT_ALIGN);
	plog_ops_init(l);
	l->dir = strdup(dir);
	rc = l->dir == NULL || l->tail_page == NULL ? -ENOMEM : plog_cache_init(l);
	if (rc == 0)
		rc = producer_state_init(&l->producers);
	if (rc == 0)
		rc = plog_recover(l);
	if (rc != 0) {
		plog_free(l);
		*err_out = rc;
		return NULL;
	}
	*err_out = 0;
	return l;
}

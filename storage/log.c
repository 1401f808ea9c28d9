/*
 * log: the plog object's life outside the hot path: accessors, the
 * listener, going offline, and closing (with the final synchronous flush,
 * producer snapshot and clean-shutdown marker) or deleting.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/log_int.h"
#include "storage/verify.h"

int64_t plog_high_watermark(const struct plog *l)
{
	return l->hw;
}

int64_t plog_end_offset(const struct plog *l)
{
	return l->end_offset;
}

int64_t plog_start_offset(const struct plog *l)
{
	return l->start_offset;
}

uint64_t plog_unwritten_bytes(const struct plog *l)
{
	return l->unwritten_bytes;
}

int plog_error(const struct plog *l)
{
	return l->err;
}

const struct plog_stats *plog_stats(const struct plog *l)
{
	return &l->stats;
}

void plog_index_bytes(const struct plog *l, uint64_t *memory, uint64_t *mapped)
{
	for (uint32_t i = 0; i < l->n_segs; i++)
		segment_index_bytes(l->segs[i], memory, mapped);
}

int plog_reads_in_flight(const struct plog *l)
{
	return l->reads_in_flight;
}

bool plog_idle(const struct plog *l)
{
	if (l->chain.busy || l->reads_in_flight > 0)
		return false;
	if (l->err != 0)
		return true;
	return l->pending.head == NULL && l->n_sealed == l->n_segs - 1 &&
	       plog_sync_deadline_ms(l) < 0;
}

void plog_set_listener(struct plog *l, void (*on_advance)(void *arg, struct plog *l), void *arg)
{
	l->on_advance = on_advance;
	l->listener_arg = arg;
}

void plog_notify(struct plog *l)
{
	if (l->on_advance == NULL || l->in_callback)
		return;
	l->in_callback = true;
	l->on_advance(l->listener_arg, l);
	l->in_callback = false;
}

void plog_fail(struct plog *l, int err)
{
	if (l->err != 0)
		return;
	l->err = err < 0 ? err : -EIO;
	/* Nothing of an offline log is written any more: its buffers go back
	 * now, not at close, since other logs draw from the same pool. */
	plog_wbufs_drop(l);
	plog_notify(l);
}

int plog_segs_push(struct plog *l, struct segment *s)
{
	if (l->n_segs == l->cap_segs) {
		uint32_t cap = l->cap_segs ? l->cap_segs * 2 : 8;
		struct segment **g = realloc(l->segs, sizeof(*g) * cap);
		if (g == NULL)
			return -ENOMEM;
		l->segs = g;
		l->cap_segs = cap;
	}
	l->segs[l->n_segs++] = s;
	return 0;
}

int plog_segs_push_new(struct plog *l, int64_t base)
{
	struct segment *s = segment_new(base, l->cfg.segment_bytes, l->cfg.index_interval_bytes);
	if (s == NULL)
		return -ENOMEM;
	int rc = plog_segs_push(l, s);
	if (rc != 0)
		segment_free(s);
	return rc;
}

struct segment *plog_segment_for(const struct plog *l, int64_t offset)
{
	uint32_t lo = 0, hi = l->n_segs;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (l->segs[mid]->base_offset <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return l->segs[lo];
}

int plog_dir_fsync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

int plog_parent_fsync(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return plog_dir_fsync(".");
	if (slash == path)
		return plog_dir_fsync("/");
	char parent[4096];
	size_t n = (size_t)(slash - path);
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	return plog_dir_fsync(parent);
}

void plog_free(struct plog *l)
{
	plog_cache_drop(l, NULL);
	free(l->cache.slot);
	compact_job_free(l);
	for (uint32_t i = 0; i < l->n_segs; i++) {
		sio_close(l->io, &l->segs[i]->wfile);
		segment_free(l->segs[i]);
	}
	free(l->tail_page);
	free(l->segs);
	plog_wbufs_drop(l);
	producer_state_free(&l->producers);
	free(l->dir);
	free(l);
}

static int pwrite_all(int fd, const void *p, size_t n, int64_t pos)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, pos);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
		pos += w;
	}
	return 0;
}

static int index_tail_write(int fd, struct seg_index *ix)
{
	size_t off = (size_t)ix->flushed * ix->entry_bytes;
	int rc = pwrite_all(fd, ix->raw + off, (size_t)(ix->n - ix->flushed) * ix->entry_bytes,
			    (int64_t)off);
	if (rc == 0)
		ix->flushed = ix->n;
	return rc;
}

/* Close-time flush, synchronous: pending buffers, index tails and an
 * fdatasync of every segment not sealed yet, oldest first. */
static int plog_flush_sync(struct plog *l)
{
	for (uint32_t i = l->n_sealed; i < l->n_segs; i++) {
		struct segment *s = l->segs[i];
		/* A segment created here gets its name made durable by the
		 * directory fsync of the snapshot and marker that follow. */
		int rc = segment_open_files(s, l->dir);
		struct wbuf *b;
		while (rc == 0 && l->pending.head != NULL && l->pending.head->seg == s) {
			b = wbuf_list_pop(&l->pending);
			rc = pwrite_all(s->log_fd, b->data, b->len, b->file_pos);
			l->stats.bytes_written += b->len - b->head;
			l->unwritten_bytes -= b->len - b->head;
			plog_wbuf_release(l, b);
		}
		if (rc == 0)
			rc = index_tail_write(s->index_fd, &s->idx);
		if (rc == 0)
			rc = index_tail_write(s->timeindex_fd, &s->tidx);
		/* The file may run past the data (padding, pre-allocation):
		 * a closed segment ends at its last batch. */
		if (rc == 0 && ftruncate(s->log_fd, s->size) != 0)
			rc = -errno;
		if (rc == 0 && (fdatasync(s->log_fd) != 0 || fdatasync(s->index_fd) != 0 ||
				fdatasync(s->timeindex_fd) != 0))
			rc = -errno;
		if (rc != 0)
			return rc;
		s->readable = s->size;
	}
	l->hw = l->end_offset;
	return 0;
}

static int plog_write_marker(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, PLOG_CLEAN_MARKER);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return plog_dir_fsync(dir);
}

/* Remove every file of a (renamed) log directory, then the directory. */
static int plog_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) != 0 && rc == 0)
			rc = -errno;
	}
	closedir(d);
	if (rmdir(dir) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

int plog_purge_deleted(const char *parent)
{
	DIR *d = opendir(parent);
	if (d == NULL)
		return -errno;
	int removed = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n <= PLOG_DELETE_SUFFIX_LEN ||
		    strcmp(de->d_name + n - PLOG_DELETE_SUFFIX_LEN, PLOG_DELETE_SUFFIX) != 0)
			continue;
		char path[4096];
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", parent, de->d_name) >= sizeof(path))
			continue;
		if (plog_remove_dir(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

static void plog_finish(struct plog *l)
{
	if (l->deleting) {
		plog_remove_dir(l->dir);
	} else if (l->err == 0 && plog_flush_sync(l) == 0 &&
		   producer_snapshot_write(&l->producers, l->dir, l->end_offset, true) == 0) {
		producer_snapshot_prune(l->dir, PRODUCER_SNAPSHOTS_KEPT);
		/* Last: the marker claims that everything above is complete. */
		plog_write_marker(l->dir);
	}
	plog_free(l);
}

void plog_maybe_finish(struct plog *l)
{
	if (l->closing && !l->chain.busy && !l->in_callback && l->reads_in_flight == 0)
		plog_finish(l);
}

void plog_close(struct plog *l)
{
	VERIFY(!l->closing);
	l->closing = true;
	plog_maybe_finish(l);
}

int plog_delete(struct plog *l)
{
	VERIFY(!l->closing);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	size_t cap = strlen(l->dir) + 64;
	char *gone = malloc(cap);
	int rc = gone == NULL ? -ENOMEM : 0;
	bool renamed = false;
	if (rc == 0) {
		snprintf(gone, cap, "%s.%" PRIx64 "%09ld" PLOG_DELETE_SUFFIX, l->dir,
			 (uint64_t)ts.tv_sec, ts.tv_nsec);
		renamed = rename(l->dir, gone) == 0;
		/* Make the rename durable before the caller forgets the topic:
		 * otherwise a crash could bring the old directory back under its
		 * name for a re-created topic to adopt. */
		rc = renamed ? plog_parent_fsync(gone) : -errno;
	}
	if (renamed) {
		free(l->dir);
		l->dir = gone;
	} else {
		/* Not renamed: removed in place, now, so nothing reappears. */
		free(gone);
	}
	l->deleting = true;
	l->closing = true;
	plog_maybe_finish(l);
	return rc;
}

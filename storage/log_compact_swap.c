/*
 * log_compact_swap: putting a cleaned segment in place of the segments it
 * was made from, crash-safely, and the cleaner checkpoint file.
 *
 * The swap of a group whose first segment has base B (Kafka's names), one
 * stage per cleaner step, each fsync queued on the log's ring and waited
 * for by the round (the shard goes on meanwhile):
 *   1. B.index.cleaned and B.timeindex.cleaned are written, and they and
 *      B.log.cleaned (written during the round) are fsynced.
 *   2. B.index.cleaned -> B.index.swap, B.timeindex.cleaned ->
 *      B.timeindex.swap; directory fsync.
 *   3. B.log.cleaned -> B.log.swap; directory fsync. THE COMMIT POINT: a
 *      B.log.swap names a complete replacement for every segment whose base
 *      lies in [B, the end offset of its last batch).
 *   4. In memory, the group's segments are replaced by the cleaned one
 *      (reads use it from now on, through its open descriptor).
 *   5. The old segments' .log files are shrunk, COMPACT_FREE_SLICES_PER_STEP
 *      slices a step: freeing a big file's blocks at once can stall like an fsync.
 *   6. The group's other segments' files are removed; B.index.swap ->
 *      B.index, B.timeindex.swap -> B.timeindex; directory fsync.
 *   7. B.log.swap -> B.log (replacing the old, now empty one); fsync.
 * Recovery (compact_recover_dir, before plog_open lists segments): every
 * *.cleaned is removed (not committed); an index .swap without its
 * B.log.swap is removed (not committed, or it would have been renamed
 * before B.log.swap was); for each B.log.swap, steps 6 and 7 are done
 * again (an index .swap already renamed is the new index, as its rename
 * and fsync come before step 7; an old segment shrunk by step 5 is
 * removed all the same). The cleaner keeps the last batch of every group (compact.h), so
 * the end offset of B.log.swap's last batch is exactly where the group
 * ended, and no segment after it is touched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/compact_int.h"
#include "storage/slog.h"

int compact_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext,
		 const char *suffix)
{
	int n = snprintf(buf, cap, "%s/%020" PRId64 "%s%s", dir, base, ext, suffix);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static const char *const seg_exts[] = { ".log", ".index", ".timeindex" };

void compact_out_discard(struct plog *l, struct compact_job *job)
{
	if (job->out == NULL)
		return;
	int64_t base = job->out->base_offset;
	segment_free(job->out);
	job->out = NULL;
	for (size_t i = 0; i < 3; i++) {
		char path[4096];
		if (compact_path(path, sizeof(path), l->dir, base, seg_exts[i],
				 COMPACT_CLEANED_SUFFIX) == 0)
			unlink(path);
	}
}

/* rename "<base><ext><from>" to "<base><ext><to>" in dir. ENOENT is
 * reported as such (recovery tolerates it). */
static int seg_rename(const char *dir, int64_t base, const char *ext, const char *from,
		      const char *to)
{
	char a[4096], b[4096];
	int rc = compact_path(a, sizeof(a), dir, base, ext, from);
	if (rc == 0)
		rc = compact_path(b, sizeof(b), dir, base, ext, to);
	if (rc == 0 && rename(a, b) != 0)
		rc = -errno;
	return rc;
}

/* ---- asynchronous fsyncs ---- */

static void compact_io_done(struct uring_op *op, int res, uint32_t cqe_flags);

static struct compact_io *compact_io_get(struct compact_job *job)
{
	if (job->io != NULL)
		return job->io;
	struct compact_io *io = calloc(1, sizeof(*io));
	if (io == NULL)
		return NULL;
	for (int i = 0; i < COMPACT_IO_OPS; i++) {
		io->ops[i].op.done = compact_io_done;
		io->ops[i].io = io;
		io->fds[i] = -1;
	}
	io->job = job;
	job->io = io;
	return io;
}

static void compact_io_done(struct uring_op *op, int res, uint32_t cqe_flags)
{
	(void)cqe_flags;
	struct compact_io_op *o = container_of(op, struct compact_io_op, op);
	struct compact_io *io = o->io;
	int i = (int)(o - io->ops);
	if (io->fds[i] >= 0)
		close(io->fds[i]);
	io->fds[i] = -1;
	io->busy[i] = false;
	if (res < 0 && io->err == 0)
		io->err = res;
	if (--io->inflight == 0 && io->job == NULL)
		free(io); /* its round was given up meanwhile */
}

void compact_io_release(struct compact_job *job)
{
	struct compact_io *io = job->io;
	if (io == NULL)
		return;
	job->io = NULL;
	if (io->inflight > 0)
		io->job = NULL; /* freed by its last completion */
	else
		free(io);
}

int compact_io_fsync(struct plog *l, struct compact_job *job, int fd, bool own)
{
	struct io_uring *ring = l->io->ring;
	struct compact_io *io = ring != NULL ? compact_io_get(job) : NULL;
	int slot = -1;
	for (int i = 0; io != NULL && i < COMPACT_IO_OPS && slot < 0; i++)
		if (!io->busy[i])
			slot = i;
	struct io_uring_sqe *sqe = NULL;
	if (slot >= 0) {
		sqe = io_uring_get_sqe(ring);
		if (sqe == NULL && io_uring_submit(ring) >= 0)
			sqe = io_uring_get_sqe(ring);
	}
	if (sqe == NULL) {
		/* No ring (a log never flushed, tests, tools) or no room:
		 * the same fsync, here and now. */
		int rc = fsync(fd) == 0 ? 0 : -errno;
		if (own)
			close(fd);
		return rc;
	}
	/* A full fsync: for a directory, its entries; for the cleaned log,
	 * its modification time too (the delete horizon reads it). */
	io_uring_prep_fsync(sqe, fd, 0);
	uring_op_prep(sqe, &io->ops[slot].op);
	io->fds[slot] = own ? fd : -1;
	io->busy[slot] = true;
	io->inflight++;
	return 0;
}

/* Queue an fsync of the directory. 0 or -errno. */
static int compact_io_dir_fsync(struct plog *l, struct compact_job *job)
{
	int fd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : compact_io_fsync(l, job, fd, true);
}

/* ---- the swap ---- */

/* Write an index array to "<base><ext>.cleaned"; its descriptor, for the
 * fsync, or -errno. */
static int index_file_write(const char *dir, int64_t base, const char *ext,
			    const struct seg_index *ix)
{
	char path[4096];
	int rc = compact_path(path, sizeof(path), dir, base, ext, COMPACT_CLEANED_SUFFIX);
	if (rc != 0)
		return rc;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t bytes = (size_t)ix->n * ix->entry_bytes, done = 0;
	while (rc == 0 && done < bytes) {
		ssize_t w = pwrite(fd, ix->raw + done, bytes - done, (off_t)done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = w < 0 ? -errno : -EIO;
		else
			done += (size_t)w;
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Step 1: the cleaned files complete, their fsyncs queued. */
static int swap_write(struct plog *l, struct compact_job *job)
{
	struct segment *out = job->out;
	int64_t base = out->base_offset, mtime = 0;
	for (uint32_t i = job->g_first; i < job->g_end; i++)
		if (job->segs[i].mtime_ms > mtime)
			mtime = job->segs[i].mtime_ms;
	segment_seal_index(out);
	out->end_offset = job->segs[job->g_end - 1].end;
	/* The cleaned segment is as old as the newest of its sources: the
	 * delete horizon of later rounds reads it (Kafka does the same). */
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
				  { .tv_sec = mtime / 1000, .tv_nsec = (mtime % 1000) * 1000000 } };
	if (futimens(out->log_fd, ts) != 0)
		return -errno;
	int fi = index_file_write(l->dir, base, ".index", &out->idx);
	if (fi < 0)
		return fi;
	int ft = index_file_write(l->dir, base, ".timeindex", &out->tidx);
	if (ft < 0) {
		close(fi);
		return ft;
	}
	int rc = compact_io_fsync(l, job, fi, true);
	int rc2 = compact_io_fsync(l, job, ft, true);
	int rc3 = compact_io_fsync(l, job, out->log_fd, false);
	return rc != 0 ? rc : rc2 != 0 ? rc2 : rc3;
}

/* Steps 4 to 6 at recovery (synchronous): replace the segments in
 * (base, end) by the committed B.log.swap. */
static int swap_finish(const char *dir, int64_t base, const int64_t *bases, int n, int64_t end)
{
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++)
		if (bases[i] > base && bases[i] < end)
			rc = segment_unlink(dir, bases[i]);
	for (size_t i = 1; i < 3 && rc == 0; i++) {
		rc = seg_rename(dir, base, seg_exts[i], COMPACT_SWAP_SUFFIX, "");
		if (rc == -ENOENT)
			rc = 0; /* renamed before the crash: already the new one */
	}
	if (rc == 0)
		rc = plog_dir_fsync(dir);
	if (rc == 0)
		rc = seg_rename(dir, base, ".log", COMPACT_SWAP_SUFFIX, "");
	if (rc == 0)
		rc = plog_dir_fsync(dir);
	return rc;
}

/* Is an asynchronous read (plog_read_start) in flight on one of the
 * group's segments, starting at l->segs[k]? Their files must stay whole
 * until it is done. */
static bool swap_group_read(const struct plog *l, const struct compact_job *job, uint32_t k)
{
	for (uint32_t i = 0; i < job->g_end - job->g_first; i++)
		if (l->segs[k + i]->readers > 0)
			return true;
	return false;
}

/* The cleaned segment's indexes are read from their files from now on,
 * as every sealed segment's: opened under their .swap names, since the
 * mappings keep their files through step 6's renames. */
static void swap_settle_indexes(struct plog *l, struct segment *out)
{
	int fds[2] = { -1, -1 };
	for (size_t i = 0; i < 2; i++) {
		char path[4096];
		if (compact_path(path, sizeof(path), l->dir, out->base_offset, seg_exts[i + 1],
				 COMPACT_SWAP_SUFFIX) == 0)
			fds[i] = open(path, O_RDONLY | O_CLOEXEC);
	}
	/* A file that did not open keeps its entries in memory instead. */
	segment_settle_indexes(out, fds[0], fds[1]);
	for (size_t i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Step 4: the cleaned segment replaces the group's in l->segs. The old
 * segments are kept aside (their files still open) to be emptied in
 * steps: removing a big file frees its blocks in one go, which on ext4 can
 * take as long as an fsync, and the shard must not wait for that. */
static void swap_in_memory(struct plog *l, struct compact_job *job, uint32_t k)
{
	struct segment *out = job->out;
	uint32_t cnt = job->g_end - job->g_first;
	out->readable = out->size;
	out->alloc_end = out->size;
	out->created_ms = -1;
	out->idx.flushed = out->idx.n;
	out->tidx.flushed = out->tidx.n;
	swap_settle_indexes(l, out);
	for (uint32_t i = 0; i < cnt; i++) {
		plog_cache_drop(l, l->segs[k + i]); /* the tail cache's copies of them */
		sio_close(l->io, &l->segs[k + i]->wfile);
		job->segs[job->g_first + i].s = l->segs[k + i]; /* now only the job's */
	}
	l->segs[k] = out;
	memmove(&l->segs[k + 1], &l->segs[k + cnt], (l->n_segs - k - cnt) * sizeof(l->segs[0]));
	l->n_segs -= cnt - 1;
	l->n_sealed -= cnt - 1;
	job->out = NULL;
	job->free_seg = job->g_first;
}

/* Step 5, a bounded part at a time: shrink the replaced segments' files
 * (recovery removes them anyway once the swap is committed). True when
 * they are all empty. */
static bool swap_free_some(struct compact_job *job, int64_t budget)
{
	while (job->free_seg < job->g_end && budget > 0) {
		struct segment *s = job->segs[job->free_seg].s;
		int64_t cut = s->size < budget ? s->size : budget;
		if (s->log_fd >= 0 && ftruncate(s->log_fd, s->size - cut) != 0)
			cut = s->size; /* it goes with its name anyway */
		s->size -= cut;
		budget -= cut;
		if (s->size == 0)
			job->free_seg++;
	}
	return job->free_seg == job->g_end;
}

/* The replaced segments, emptied and renamed away: closed and freed. */
void compact_job_free_replaced(struct compact_job *job)
{
	if (job->free_seg < 0)
		return;
	for (uint32_t i = job->g_first; i < job->g_end; i++) {
		segment_free(job->segs[i].s);
		job->segs[i].s = NULL;
	}
	job->free_seg = -1;
}

/* Step 6: the group's other segments' files go, the indexes take their
 * final names. */
static int swap_replace_files(struct plog *l, struct compact_job *job)
{
	int64_t base = job->segs[job->g_first].base;
	int rc = 0;
	for (uint32_t i = job->g_first + 1; i < job->g_end && rc == 0; i++)
		rc = segment_unlink(l->dir, job->segs[i].base);
	for (size_t i = 1; i < 3 && rc == 0; i++)
		rc = seg_rename(l->dir, base, seg_exts[i], COMPACT_SWAP_SUFFIX, "");
	return rc != 0 ? rc : compact_io_dir_fsync(l, job);
}

int compact_swap_step(struct plog *l, struct compact_job *job)
{
	int64_t base = job->segs[job->g_first].base; /* the cleaned segment's too */
	int rc = 0, k;
	switch (job->stage) {
	case 0: /* step 1 */
		rc = swap_write(l, job);
		break;
	case 1: /* step 2 */
		rc = seg_rename(l->dir, base, ".index", COMPACT_CLEANED_SUFFIX, COMPACT_SWAP_SUFFIX);
		if (rc == 0)
			rc = seg_rename(l->dir, base, ".timeindex", COMPACT_CLEANED_SUFFIX,
					COMPACT_SWAP_SUFFIX);
		if (rc == 0)
			rc = compact_io_dir_fsync(l, job);
		break;
	case 2: /* step 3: the commit, once this fsync is in */
		rc = seg_rename(l->dir, base, ".log", COMPACT_CLEANED_SUFFIX, COMPACT_SWAP_SUFFIX);
		if (rc == 0)
			rc = compact_io_dir_fsync(l, job);
		break;
	case 3: /* step 4 */
		job->committed = true;
		k = compact_job_locate(l, job, job->g_first);
		if (k < 0)
			rc = -ESTALE;
		else if (swap_group_read(l, job, (uint32_t)k))
			return 1; /* a fetch is reading one of them: next step */
		else
			swap_in_memory(l, job, (uint32_t)k);
		break;
	case 4: /* step 5, as many times as it takes */
		if (!swap_free_some(job, job->free_budget))
			return 1;
		break;
	case 5: /* step 6 */
		rc = swap_replace_files(l, job);
		break;
	case 6: /* step 7 */
		rc = seg_rename(l->dir, base, ".log", COMPACT_SWAP_SUFFIX, "");
		if (rc == 0)
			rc = compact_io_dir_fsync(l, job);
		compact_job_free_replaced(job);
		break;
	default:
		job->stage = 0;
		job->committed = false;
		return 0;
	}
	if (rc != 0 && job->committed) {
		slog("compaction swap of %s at %" PRId64 " failed after its commit point: %s; the "
		     "log goes offline until restarted, which finishes the swap",
		     l->dir, base, strerror(-rc));
		plog_fail(l, rc);
	}
	if (rc != 0)
		return rc;
	job->stage++;
	return 1;
}

/* ---- recovery ---- */

static int end_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t bytes)
{
	(void)pos;
	(void)bytes;
	*(int64_t *)arg = h->base_offset + h->last_offset_delta + 1;
	return 0;
}

/* End offset of the last batch of "<base>.log.swap", or -errno. */
static int64_t swap_end_offset(const char *dir, int64_t base)
{
	char path[4096];
	int rc = compact_path(path, sizeof(path), dir, base, ".log", COMPACT_SWAP_SUFFIX);
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int64_t end = base;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
	} else {
		/* Only the file descriptor of a segment is used by the scan. */
		struct segment tmp = { .log_fd = fd, .base_offset = base };
		uint64_t bytes_read = 0;
		rc = segment_scan_headers(&tmp, 0, st.st_size, end_cb, &end, &bytes_read);
	}
	close(fd);
	return rc != 0 ? rc : end;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t len = strlen(name), sl = strlen(suffix);
	return len > sl && strcmp(name + len - sl, suffix) == 0;
}

/* Remove the files of uncommitted swaps: *.cleaned, and index .swap files
 * without their log's .swap. Returns how many .log.swap files there are. */
static int recover_sweep(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	int swaps = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		int64_t b = -1;
		if (has_suffix(nm, COMPACT_CLEANED_SUFFIX)) {
			unlinkat(dirfd(d), nm, 0);
			continue;
		}
		if (segment_name_offset(nm, ".log" COMPACT_SWAP_SUFFIX) >= 0) {
			swaps++;
			continue;
		}
		if ((b = segment_name_offset(nm, ".index" COMPACT_SWAP_SUFFIX)) < 0)
			b = segment_name_offset(nm, ".timeindex" COMPACT_SWAP_SUFFIX);
		if (b < 0)
			continue;
		char path[4096];
		struct stat st;
		if (compact_path(path, sizeof(path), dir, b, ".log", COMPACT_SWAP_SUFFIX) == 0 &&
		    stat(path, &st) != 0)
			unlinkat(dirfd(d), nm, 0);
	}
	closedir(d);
	return swaps;
}

int compact_recover_dir(const char *dir)
{
	int swaps = recover_sweep(dir);
	if (swaps == -ENOENT)
		return 0; /* a new log: plog_open creates the directory */
	if (swaps <= 0)
		return swaps;
	int64_t *swap_bases = NULL, *bases = NULL;
	int ns = segment_dir_offsets(dir, ".log" COMPACT_SWAP_SUFFIX, &swap_bases);
	int n = ns >= 0 ? segment_dir_offsets(dir, ".log", &bases) : 0;
	int rc = ns < 0 ? ns : n < 0 ? n : 0;
	for (int i = 0; i < ns && rc == 0; i++) {
		int64_t end = swap_end_offset(dir, swap_bases[i]);
		if (end < 0) {
			rc = (int)end;
			break;
		}
		slog("%s: finishing the compaction swap of segment %" PRId64 " (up to offset %" PRId64
		     ") interrupted by a crash", dir, swap_bases[i], end);
		rc = swap_finish(dir, swap_bases[i], bases, n, end);
	}
	free(swap_bases);
	free(bases);
	return rc;
}

/* ---- checkpoint ---- */

int64_t compact_checkpoint_load(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" COMPACT_CHECKPOINT_FILE, dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long long v = -1;
	if (fscanf(f, "%lld", &v) != 1 || v < 0)
		v = -1;
	fclose(f);
	return v;
}

/* Written to a .tmp (a name plog_open removes if a crash leaves it),
 * synced, renamed over the old one, the directory synced. */
int compact_checkpoint_step(struct plog *l, struct compact_job *job)
{
	char path[4096], tmp[4096];
	snprintf(path, sizeof(path), "%s/" COMPACT_CHECKPOINT_FILE, l->dir);
	snprintf(tmp, sizeof(tmp), "%s/" COMPACT_CHECKPOINT_FILE ".tmp", l->dir);
	int rc = 0;
	switch (job->stage) {
	case 0: {
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		char line[32];
		int len = snprintf(line, sizeof(line), "%" PRId64 "\n", job->map_end);
		if (write(fd, line, (size_t)len) != len) {
			close(fd);
			return -EIO;
		}
		rc = compact_io_fsync(l, job, fd, true);
		break;
	}
	case 1:
		rc = rename(tmp, path) == 0 ? compact_io_dir_fsync(l, job) : -errno;
		break;
	default:
		job->stage = 0;
		return 0;
	}
	if (rc != 0)
		return rc;
	job->stage++;
	return 1;
}

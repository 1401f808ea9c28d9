/*
 * producer_snapshot: the producer state's file, "<20-digit offset>.snapshot",
 * written at segment rolls and at clean close, read by recovery.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/be.h"
#include "storage/log_int.h"
#include "storage/producer_state.h"
#include "storage/segment.h"

/* Snapshot file: "SLPS", u16 version, u32 count, then per producer: i64 id,
 * i16 epoch, u8 n, n x (i32 first_seq, i32 last_seq, i64 first_offset, i64
 * last_offset) oldest first; then the CRC-32C of everything before it. All
 * big-endian. Kafka's own snapshot keeps only the last batch, so the format
 * is ours; the name is Kafka's. */
#define SNAP_MAGIC "SLPS"
#define SNAP_VERSION 1
#define SNAP_HEAD_BYTES 10
#define SNAP_ENTRY_HEAD_BYTES 11
#define SNAP_BATCH_BYTES 24

static size_t snap_encode_entry(uint8_t *p, const struct producer_entry *e)
{
	uint8_t *start = p;
	be64_store(p, (uint64_t)e->producer_id);
	be16_store(p + 8, (uint16_t)e->epoch);
	p[10] = e->n;
	p += SNAP_ENTRY_HEAD_BYTES;
	for (int i = 0; i < e->n; i++) {
		int slot = (e->head + PRODUCER_BATCHES_KEPT - e->n + i) % PRODUCER_BATCHES_KEPT;
		const struct producer_batch *b = &e->b[slot];
		be32_store(p, (uint32_t)b->first_seq);
		be32_store(p + 4, (uint32_t)b->last_seq);
		be64_store(p + 8, (uint64_t)b->first_offset);
		be64_store(p + 16, (uint64_t)b->last_offset);
		p += SNAP_BATCH_BYTES;
	}
	return (size_t)(p - start);
}

static uint8_t *snap_encode(const struct producer_state *ps, size_t *len)
{
	size_t max = SNAP_HEAD_BYTES + 4 +
		     (size_t)ps->count * (SNAP_ENTRY_HEAD_BYTES +
					  PRODUCER_BATCHES_KEPT * SNAP_BATCH_BYTES);
	uint8_t *buf = malloc(max);
	if (buf == NULL)
		return NULL;
	memcpy(buf, SNAP_MAGIC, 4);
	be16_store(buf + 4, SNAP_VERSION);
	be32_store(buf + 6, ps->count);
	size_t off = SNAP_HEAD_BYTES;
	/* Every entry holds at least one batch: update creates and fills
	 * entries in one step. */
	for (uint32_t i = 0; i < ps->cap; i++)
		if (ps->slots[i].producer_id >= 0)
			off += snap_encode_entry(buf + off, &ps->slots[i]);
	be32_store(buf + off, batch_crc32c(buf, off));
	*len = off + 4;
	return buf;
}

static int fd_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int producer_snapshot_write(const struct producer_state *ps, const char *dir, int64_t offset,
			    bool sync)
{
	char path[4096], tmp[4200];
	int rc = segment_path(path, sizeof(path), dir, offset, ".snapshot");
	if (rc != 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	size_t len;
	uint8_t *buf = snap_encode(ps, &len);
	if (buf == NULL)
		return -ENOMEM;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	rc = fd_write_all(fd, buf, len);
	if (rc == 0 && sync && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	free(buf);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	if (rc == 0 && sync)
		rc = plog_dir_fsync(dir);
	return rc;
}

int producer_snapshot_decode(struct producer_state *ps, const uint8_t *p, size_t len,
			     size_t *bad_pos)
{
	*bad_pos = 0;
	if (len < SNAP_HEAD_BYTES + 4 || memcmp(p, SNAP_MAGIC, 4) != 0)
		return -EINVAL;
	*bad_pos = 4;
	if (be16_load(p + 4) != SNAP_VERSION)
		return -EINVAL;
	*bad_pos = len - 4;
	if (be32_load(p + len - 4) != batch_crc32c(p, len - 4))
		return -EINVAL;
	uint32_t count = be32_load(p + 6);
	size_t off = SNAP_HEAD_BYTES, end = len - 4;
	producer_state_clear(ps);
	for (uint32_t i = 0; i < count; i++) {
		*bad_pos = off;
		if (end - off < SNAP_ENTRY_HEAD_BYTES)
			return -EINVAL;
		struct batch_hdr h = { .producer_id = (int64_t)be64_load(p + off),
				       .producer_epoch = (int16_t)be16_load(p + off + 8) };
		uint8_t n = p[off + 10];
		off += SNAP_ENTRY_HEAD_BYTES;
		if (h.producer_id < 0 || n == 0 || n > PRODUCER_BATCHES_KEPT ||
		    end - off < (size_t)n * SNAP_BATCH_BYTES)
			return -EINVAL;
		for (int j = 0; j < n; j++, off += SNAP_BATCH_BYTES) {
			*bad_pos = off;
			h.base_sequence = (int32_t)be32_load(p + off);
			int64_t first = (int64_t)be64_load(p + off + 8);
			int64_t last = (int64_t)be64_load(p + off + 16);
			if (last < first || last - first > INT32_MAX)
				return -EINVAL;
			h.last_offset_delta = (int32_t)(last - first);
			int rc = producer_state_update(ps, &h, first);
			if (rc != 0)
				return rc;
		}
	}
	*bad_pos = off;
	return off == end ? 0 : -EINVAL;
}

int producer_snapshot_load(struct producer_state *ps, const char *dir, int64_t offset)
{
	char path[4096];
	int rc = segment_path(path, sizeof(path), dir, offset, ".snapshot");
	if (rc != 0)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	uint8_t *buf = NULL;
	ssize_t r = -1;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1 << 30)) {
		buf = malloc((size_t)st.st_size);
		if (buf != NULL)
			r = pread(fd, buf, (size_t)st.st_size, 0);
	}
	close(fd);
	size_t bad_pos;
	rc = r == st.st_size ? producer_snapshot_decode(ps, buf, (size_t)r, &bad_pos) : -EINVAL;
	if (rc != 0)
		producer_state_clear(ps);
	free(buf);
	return rc;
}

/* "<20 digits>.snapshot" -> offset, or -1. */
/* All snapshot offsets, newest first, in a malloc'ed array. */
static int snap_list_all(const char *dir, int64_t **out)
{
	int n = segment_dir_offsets(dir, ".snapshot", out);
	for (int i = 0; i < n / 2; i++) {
		int64_t t = (*out)[i];
		(*out)[i] = (*out)[n - 1 - i];
		(*out)[n - 1 - i] = t;
	}
	return n;
}

int producer_snapshot_list(const char *dir, int64_t *offs, int cap)
{
	int64_t *all = NULL;
	int n = snap_list_all(dir, &all);
	if (n < 0)
		return n;
	if (n > cap)
		n = cap;
	if (n > 0)
		memcpy(offs, all, sizeof(*offs) * (size_t)n);
	free(all);
	return n;
}

void producer_snapshot_unlink(const char *dir, int64_t offset)
{
	char path[4096];
	if (segment_path(path, sizeof(path), dir, offset, ".snapshot") == 0)
		unlink(path);
}

void producer_snapshot_prune(const char *dir, int keep)
{
	int64_t *all = NULL;
	int n = snap_list_all(dir, &all);
	for (int i = keep; i < n; i++)
		producer_snapshot_unlink(dir, all[i]);
	free(all);
}

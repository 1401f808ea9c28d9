/*
 * test_util: see test_util.h.
 */
#include "storage/sio.h"
#include "test_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/batch.h"
#include "storage/be.h"
#include "storage/uring_op.h"

#define TU_CHECK(cond)                                                               \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "test_util: %s failed at %s:%d\n", #cond,    \
				__FILE__, __LINE__);                                 \
			abort();                                                     \
		}                                                                    \
	} while (0)

struct tu_batch_spec tu_spec(int32_t records, int64_t base_ts, int32_t value_bytes)
{
	return (struct tu_batch_spec){ .records = records, .base_ts = base_ts, .ts_step = 1,
				       .value_bytes = value_bytes, .producer_id = -1,
				       .producer_epoch = -1, .base_sequence = -1, .fill = 'v' };
}

size_t tu_put_varint(uint8_t *p, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 0;
	while (z >= 0x80) {
		p[n++] = (uint8_t)(z | 0x80);
		z >>= 7;
	}
	p[n++] = (uint8_t)z;
	return n;
}

/* One record: attributes, timestampDelta, offsetDelta, key null, value,
 * no headers; prefixed by its length. */
static size_t put_record(uint8_t *p, int64_t ts_delta, int32_t off_delta,
			 const struct tu_batch_spec *spec)
{
	uint8_t body[64];
	size_t n = 0;
	body[n++] = 0;
	n += tu_put_varint(body + n, ts_delta);
	n += tu_put_varint(body + n, off_delta);
	n += tu_put_varint(body + n, -1);
	n += tu_put_varint(body + n, spec->value_bytes);
	size_t head = tu_put_varint(p, (int64_t)(n + (size_t)spec->value_bytes + 1));
	memcpy(p + head, body, n);
	memset(p + head + n, spec->fill, (size_t)spec->value_bytes);
	n += (size_t)spec->value_bytes;
	p[head + n++] = 0; /* headers count */
	return head + n;
}

size_t tu_batch(uint8_t *buf, size_t cap, const struct tu_batch_spec *spec)
{
	TU_CHECK(spec->records >= 1);
	TU_CHECK(cap >= BATCH_HEADER_BYTES + (size_t)spec->records * (32 + (size_t)spec->value_bytes));
	int64_t max_ts = INT64_MIN;
	size_t pos = BATCH_HEADER_BYTES;
	for (int32_t i = 0; i < spec->records; i++) {
		int64_t d = spec->ts_deltas ? spec->ts_deltas[i] : i * spec->ts_step;
		if (spec->base_ts + d > max_ts)
			max_ts = spec->base_ts + d;
		pos += put_record(buf + pos, d, i, spec);
	}
	be64_store(buf, 0);
	be32_store(buf + 8, (uint32_t)(pos - BATCH_LOG_OVERHEAD));
	be32_store(buf + 12, 0);
	buf[16] = 2;
	be16_store(buf + 21, (uint16_t)spec->attributes);
	be32_store(buf + 23, (uint32_t)(spec->records - 1));
	be64_store(buf + 27, (uint64_t)spec->base_ts);
	be64_store(buf + 35, (uint64_t)max_ts);
	be64_store(buf + 43, (uint64_t)spec->producer_id);
	be16_store(buf + 51, (uint16_t)spec->producer_epoch);
	be32_store(buf + 53, (uint32_t)spec->base_sequence);
	be32_store(buf + 57, (uint32_t)spec->records);
	be32_store(buf + 17, batch_crc32c(buf + 21, pos - 21));
	return pos;
}

int tu_append(struct plog *l, const uint8_t *buf, size_t len, struct plog_append_result *res)
{
	struct batch_hdr h;
	int n = batch_validate(buf, len, &h);
	TU_CHECK(n == (int)len);
	return plog_append(l, buf, len, &h, 7, 0, res);
}

int tu_append_spec(struct plog *l, const struct tu_batch_spec *spec,
		   struct plog_append_result *res)
{
	size_t cap = BATCH_HEADER_BYTES + (size_t)spec->records * (32 + (size_t)spec->value_bytes);
	uint8_t *buf = malloc(cap);
	TU_CHECK(buf != NULL);
	size_t len = tu_batch(buf, cap, spec);
	int rc = tu_append(l, buf, len, res);
	free(buf);
	return rc;
}

int tu_drive(struct io_uring *ring, struct plog *l, int64_t now_ms)
{
	/* SQEs submitted and not yet completed. plog queues its next chain
	 * from a completion, so keep going until nothing is in flight and a
	 * flush finds nothing to do. */
	int turns = 0, inflight = 0;
	for (;;) {
		TU_CHECK(++turns < 100000);
		int rc = plog_flush(l, ring, now_ms);
		TU_CHECK(rc >= 0 || rc == -EBUSY);
		int sub = io_uring_submit(ring);
		TU_CHECK(sub >= 0);
		inflight += sub;
		if (inflight == 0)
			break;
		struct io_uring_cqe *cqe;
		TU_CHECK(io_uring_wait_cqe(ring, &cqe) == 0);
		unsigned head, n = 0;
		io_uring_for_each_cqe(ring, head, cqe) {
			uring_op_dispatch(cqe);
			n++;
		}
		io_uring_cq_advance(ring, n);
		inflight -= (int)n;
	}
	return turns;
}

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/sluice-storage-XXXXXX", base ? base : "/tmp");
	TU_CHECK(mkdtemp(tmpl) != NULL);
	return strdup(tmpl);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct log_config tu_config(int64_t segment_bytes, int32_t index_interval_bytes,
			    enum flush_mode flush)
{
	return (struct log_config){ .segment_bytes = segment_bytes,
				    .index_interval_bytes = index_interval_bytes,
				    .flush = flush,
				    .flush_interval_ms = 1000,
				    .retention_ms = -1,
				    .retention_bytes = -1 };
}

void tu_seg_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext)
{
	snprintf(buf, cap, "%s/%020" PRId64 "%s", dir, base, ext);
}

int64_t tu_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : -1;
}

void tu_file_append(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	TU_CHECK(fd >= 0);
	TU_CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

int tu_file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

int tu_count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len >= sl && strcmp(de->d_name + len - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int tu_fixture_setup(void **state)
{
	struct tu_fixture *f = calloc(1, sizeof(*f));
	TU_CHECK(f != NULL);
	f->dir = tu_tmpdir();
	if (io_uring_queue_init(TU_RING_ENTRIES, &f->ring, 0) != 0)
		return -1;
	*state = f;
	return 0;
}

int tu_fixture_teardown(void **state)
{
	struct tu_fixture *f = *state;
	io_uring_queue_exit(&f->ring);
	tu_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

struct plog *tu_open(const char *dir, const struct log_config *cfg)
{
	int err = -1;
	struct plog *l = plog_open(dir, cfg, &err);
	TU_CHECK(l != NULL && err == 0);
	return l;
}

void tu_sio(struct sio *io, struct io_uring *ring, const char *faults, struct log_config *cfg)
{
	struct sio_config sc = { .direct = true, .faults = faults };
	TU_CHECK(sio_init(io, ring, &sc) == 0);
	cfg->io = io;
}

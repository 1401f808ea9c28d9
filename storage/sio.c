/*
 * sio: the storage I/O backend (see sio.h). The fault rules are in
 * sio_fault.c; this file is the real path.
 */
#include "storage/sio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/limits.h"
#include "storage/sio_int.h"
#include "storage/slog.h"
#include "storage/verify.h"

/* The zeros every sio_zero writes from (the kernel only reads them), and
 * the iovecs that repeat them: process-wide, set up once. */
static uint8_t sio_zeros[SIO_ZERO_CHUNK_BYTES] __attribute__((aligned(SIO_DIRECT_ALIGN)));
static struct iovec sio_zero_iov[SIO_ZERO_IOVS];
static pthread_once_t sio_zero_once = PTHREAD_ONCE_INIT;

static void sio_zero_init(void)
{
	for (int i = 0; i < SIO_ZERO_IOVS; i++)
		sio_zero_iov[i] = (struct iovec){ sio_zeros, SIO_ZERO_CHUNK_BYTES };
}

_Static_assert(SIO_REG_BUF_BYTES_MAX % BUFPOOL_BUF_BYTES_MAX == 0,
	       "a pool buffer never straddles two registered slots");

int sio_init(struct sio *io, struct io_uring *ring, const struct sio_config *cfg)
{
	pthread_once(&sio_zero_once, sio_zero_init);
	memset(io, 0, sizeof(*io));
	io->ring = ring;
	io->direct = cfg != NULL && cfg->direct;
	const char *spec = cfg != NULL ? cfg->faults : NULL;
	if (spec != NULL && spec[0] != '\0') {
		char why[128];
		io->rules = calloc(SIO_FAULT_RULES_MAX, sio_fault_rule_size());
		if (io->rules == NULL)
			return -ENOMEM;
		io->n_rules = sio_faults_parse(spec, io->rules, SIO_FAULT_RULES_MAX, why,
					       sizeof(why));
		if (io->n_rules < 0) {
			free(io->rules);
			io->rules = NULL;
			return -EINVAL;
		}
		slog("storage: fault injection on: %s", spec);
	}
	if (io_uring_register_files_sparse(ring, SIO_FILE_SLOTS) == 0) {
		io->slot_free = malloc(sizeof(int) * SIO_FILE_SLOTS);
		if (io->slot_free == NULL) {
			io_uring_unregister_files(ring);
			return 0; /* descriptors work too */
		}
		for (int i = 0; i < SIO_FILE_SLOTS; i++)
			io->slot_free[i] = SIO_FILE_SLOTS - 1 - i;
		io->n_slot_free = SIO_FILE_SLOTS;
	}
	return 0;
}

static void sio_unregister_buffers(struct sio *io)
{
	if (io->n_regs > 0 && io->ring != NULL)
		io_uring_unregister_buffers(io->ring);
	free(io->regs);
	io->regs = NULL;
	io->n_regs = 0;
}

void sio_destroy(struct sio *io)
{
	if (io->ring != NULL && io->slot_free != NULL)
		io_uring_unregister_files(io->ring);
	sio_unregister_buffers(io);
	free(io->slot_free);
	free(io->rules);
	memset(io, 0, sizeof(*io));
}

static size_t sio_region_slots(size_t len)
{
	return (len + SIO_REG_BUF_BYTES_MAX - 1) / SIO_REG_BUF_BYTES_MAX;
}

int sio_register_regions(struct sio *io, struct sio_region *regions, int n)
{
	sio_unregister_buffers(io);
	size_t slots = 0;
	for (int i = 0; i < n; i++)
		slots += sio_region_slots(regions[i].len);
	if (n <= 0 || slots == 0 || slots > SIO_REG_SLOTS_MAX)
		return -EINVAL;
	struct iovec *iov = calloc(slots, sizeof(*iov));
	struct sio_region *regs = calloc((size_t)n, sizeof(*regs));
	if (iov == NULL || regs == NULL) {
		free(iov);
		free(regs);
		return -ENOMEM;
	}
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		regions[i].slot = (unsigned)k;
		for (size_t off = 0; off < regions[i].len; off += SIO_REG_BUF_BYTES_MAX, k++) {
			size_t left = regions[i].len - off;
			iov[k].iov_base = (uint8_t *)regions[i].base + off;
			iov[k].iov_len = left < SIO_REG_BUF_BYTES_MAX ? left : SIO_REG_BUF_BYTES_MAX;
		}
		regs[i] = regions[i];
	}
	int rc = io_uring_register_buffers(io->ring, iov, (unsigned)slots);
	free(iov);
	if (rc != 0) {
		free(regs);
		return rc;
	}
	io->regs = regs;
	io->n_regs = n;
	return 0;
}

int sio_register_buffers(struct sio *io, void *base, size_t len)
{
	struct sio_region r = { .base = base, .len = len };
	return sio_register_regions(io, &r, 1);
}

/* The table slot covering [buf, buf + len), or -1: not registered, or
 * across two slots (pool buffers never are: slots are multiples of their
 * size, BUFPOOL_BUF_BYTES_MAX; checked rather than trusted). */
static int sio_fixed_slot(const struct sio *io, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	for (int i = 0; i < io->n_regs; i++) {
		const struct sio_region *r = &io->regs[i];
		const uint8_t *base = r->base;
		if (len == 0 || p < base || p + len > base + r->len)
			continue;
		size_t off = (size_t)(p - base), idx = off / SIO_REG_BUF_BYTES_MAX;
		if ((off + len - 1) / SIO_REG_BUF_BYTES_MAX != idx)
			return -1;
		return (int)(r->slot + idx);
	}
	return -1;
}

static void sio_slot_take(struct sio *io, struct sio_file *f)
{
	f->slot = -1;
	if (io->n_slot_free == 0)
		return;
	int slot = io->slot_free[io->n_slot_free - 1];
	if (io_uring_register_files_update(io->ring, (unsigned)slot, &f->fd, 1) != 1)
		return;
	io->n_slot_free--;
	f->slot = slot;
}

int sio_open(struct sio *io, const char *path, enum sio_file_kind kind, bool direct,
	     struct sio_file *f)
{
	*f = (struct sio_file){ .fd = -1, .slot = -1, .kind = kind, .own = true };
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
	direct = direct && io->direct;
	int fault = io->n_rules > 0 ? sio_fault_open(io, kind, direct) : 0;
	if (fault == -EIO)
		return fault;
	if (direct) {
		if (fault == -EINVAL) {
			errno = EINVAL;
			f->fd = -1;
		} else {
			f->fd = open(path, flags | O_DIRECT, 0644);
		}
		if (f->fd >= 0) {
			f->direct = true;
		} else if (errno == EINVAL) {
			io->stats.direct_fallbacks++;
			if (!io->warned_fallback) {
				io->warned_fallback = true;
				slog("storage: warning: the filesystem of %s refuses O_DIRECT; "
				     "writing through the page cache instead", path);
			}
		} else {
			return -errno;
		}
	}
	if (f->fd < 0)
		f->fd = open(path, flags, 0644);
	if (f->fd < 0)
		return -errno;
	sio_slot_take(io, f);
	return 0;
}

void sio_close(struct sio *io, struct sio_file *f)
{
	if (f->slot >= 0) {
		int none = -1;
		io_uring_register_files_update(io->ring, (unsigned)f->slot, &none, 1);
		io->slot_free[io->n_slot_free++] = f->slot;
		f->slot = -1;
	}
	if (f->own && f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

/* The SQE for f: by registered slot when it has one. */
static struct io_uring_sqe *sio_sqe(struct sio *io, const struct sio_file *f, int *fd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(io->ring);
	*fd = f->slot >= 0 ? f->slot : f->fd;
	return sqe;
}

static void sio_sqe_finish(struct sio *io, struct io_uring_sqe *sqe, const struct sio_file *f,
			   struct uring_op *op)
{
	if (f->slot >= 0) {
		sqe->flags |= IOSQE_FIXED_FILE;
		io->stats.fixed_file_ops++;
	}
	uring_op_prep(sqe, op);
}

void sio_write_real(struct sio *io, const struct sio_file *f, const void *buf, size_t len,
		    int64_t pos, unsigned sqe_flags, struct uring_op *op)
{
	int fd;
	struct io_uring_sqe *sqe = sio_sqe(io, f, &fd);
	int slot = sio_fixed_slot(io, buf, len);
	if (slot >= 0) {
		io_uring_prep_write_fixed(sqe, fd, buf, (unsigned)len, (uint64_t)pos, slot);
		io->stats.fixed_buf_writes++;
	} else {
		io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)pos);
	}
	io->stats.writes++;
	io->stats.direct_writes += f->direct;
	sqe->flags |= (uint8_t)sqe_flags;
	sio_sqe_finish(io, sqe, f, op);
}

void sio_read_real(struct sio *io, const struct sio_file *f, void *buf, size_t len, int64_t pos,
		   struct uring_op *op)
{
	int fd;
	struct io_uring_sqe *sqe = sio_sqe(io, f, &fd);
	int slot = sio_fixed_slot(io, buf, len);
	if (slot >= 0) {
		io_uring_prep_read_fixed(sqe, fd, buf, (unsigned)len, (uint64_t)pos, slot);
		io->stats.fixed_buf_reads++;
	} else {
		io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)pos);
	}
	io->stats.reads++;
	sio_sqe_finish(io, sqe, f, op);
}

void sio_fdatasync_real(struct sio *io, const struct sio_file *f, struct uring_op *op)
{
	int fd;
	struct io_uring_sqe *sqe = sio_sqe(io, f, &fd);
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	io->stats.syncs++;
	sio_sqe_finish(io, sqe, f, op);
}

void sio_fallocate_real(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
			struct uring_op *op)
{
	int fd;
	struct io_uring_sqe *sqe = sio_sqe(io, f, &fd);
	io_uring_prep_fallocate(sqe, fd, 0, (uint64_t)pos, (uint64_t)len);
	io->stats.fallocates++;
	sio_sqe_finish(io, sqe, f, op);
}

static void sio_zero_real(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
			  struct uring_op *op)
{
	int fd;
	struct io_uring_sqe *sqe = sio_sqe(io, f, &fd);
	io_uring_prep_writev(sqe, fd, sio_zero_iov, (unsigned)(len / SIO_ZERO_CHUNK_BYTES),
			     (uint64_t)pos);
	io->stats.zero_writes++;
	io->stats.zeroed_bytes += (uint64_t)len;
	sio_sqe_finish(io, sqe, f, op);
}

void sio_write(struct sio *io, const struct sio_file *f, const void *buf, size_t len,
	       int64_t pos, unsigned sqe_flags, struct uring_op *op)
{
	if (io->n_rules > 0 && sio_fault_write(io, f, buf, len, pos, sqe_flags, op))
		return;
	sio_write_real(io, f, buf, len, pos, sqe_flags, op);
}

void sio_read(struct sio *io, const struct sio_file *f, void *buf, size_t len, int64_t pos,
	      struct uring_op *op)
{
	if (io->n_rules > 0 && sio_fault_read(io, f, buf, len, pos, op))
		return;
	sio_read_real(io, f, buf, len, pos, op);
}

void sio_fdatasync(struct sio *io, const struct sio_file *f, struct uring_op *op)
{
	if (io->n_rules > 0 && sio_fault_other(io, f, SIO_OP_FSYNC, op))
		return;
	sio_fdatasync_real(io, f, op);
}

void sio_fallocate(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
		   struct uring_op *op)
{
	if (io->n_rules > 0 && sio_fault_other(io, f, SIO_OP_FALLOCATE, op))
		return;
	sio_fallocate_real(io, f, pos, len, op);
}

void sio_zero(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
	      struct uring_op *op)
{
	ASSERT(f->direct && len > 0 && len <= SIO_ZERO_MAX_BYTES &&
		   len % SIO_ZERO_CHUNK_BYTES == 0 && pos % SIO_DIRECT_ALIGN == 0);
	if (io->n_rules > 0 && sio_fault_other(io, f, SIO_OP_FALLOCATE, op))
		return;
	sio_zero_real(io, f, pos, len, op);
}

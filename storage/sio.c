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

void sio_destroy(struct sio *io)
{
	if (io->ring != NULL) {
		if (io->slot_free != NULL)
			io_uring_unregister_files(io->ring);
		if (io->reg_base != NULL)
			io_uring_unregister_buffers(io->ring);
	}
	free(io->slot_free);
	free(io->rules);
	memset(io, 0, sizeof(*io));
}

int sio_register_buffers(struct sio *io, void *base, size_t len)
{
	size_t n = (len + SIO_REG_BUF_BYTES_MAX - 1) / SIO_REG_BUF_BYTES_MAX;
	struct iovec *iov = calloc(n, sizeof(*iov));
	if (iov == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t off = i * SIO_REG_BUF_BYTES_MAX;
		iov[i].iov_base = (uint8_t *)base + off;
		iov[i].iov_len = len - off < SIO_REG_BUF_BYTES_MAX ? len - off
								  : SIO_REG_BUF_BYTES_MAX;
	}
	int rc = io_uring_register_buffers(io->ring, iov, (unsigned)n);
	free(iov);
	if (rc != 0)
		return rc;
	io->reg_base = base;
	io->reg_len = len;
	return 0;
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
	const uint8_t *p = buf;
	if (io->reg_base != NULL && p >= io->reg_base && p + len <= io->reg_base + io->reg_len) {
		size_t off = (size_t)(p - io->reg_base);
		int idx = (int)(off / SIO_REG_BUF_BYTES_MAX);
		/* Pool buffers never straddle a slot: slots are multiples of
		 * the buffer size. Check rather than trust. */
		if ((off + len - 1) / SIO_REG_BUF_BYTES_MAX == (size_t)idx) {
			io_uring_prep_write_fixed(sqe, fd, buf, (unsigned)len, (uint64_t)pos, idx);
			io->stats.fixed_buf_writes++;
		} else {
			io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)pos);
		}
	} else {
		io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)pos);
	}
	io->stats.writes++;
	io->stats.direct_writes += f->direct;
	sqe->flags |= (uint8_t)sqe_flags;
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

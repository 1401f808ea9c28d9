/*
 * sio_int: between sio.c (the real operations) and sio_fault.c (the rules
 * that replace some of them). Not for the backend's users.
 */
#ifndef SLUICE_STORAGE_SIO_INT_H
#define SLUICE_STORAGE_SIO_INT_H

#include "storage/sio.h"

enum sio_op_kind { SIO_OP_WRITE, SIO_OP_FSYNC, SIO_OP_FALLOCATE, SIO_OP_OPEN, SIO_OP_READ };

void sio_write_real(struct sio *io, const struct sio_file *f, const void *buf, size_t len,
		    int64_t pos, unsigned sqe_flags, struct uring_op *op);
void sio_read_real(struct sio *io, const struct sio_file *f, void *buf, size_t len, int64_t pos,
		   struct uring_op *op);
void sio_fdatasync_real(struct sio *io, const struct sio_file *f, struct uring_op *op);
void sio_fallocate_real(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
			struct uring_op *op);

size_t sio_fault_rule_size(void);

/* When a rule hits the operation: queue its stand-in (one SQE) and return
 * true; else false and the caller does the real thing. */
bool sio_fault_write(struct sio *io, const struct sio_file *f, const void *buf, size_t len,
		     int64_t pos, unsigned sqe_flags, struct uring_op *op);
bool sio_fault_read(struct sio *io, const struct sio_file *f, void *buf, size_t len,
		    int64_t pos, struct uring_op *op);
/* sio_open's rule: 0 (open for real), -EINVAL (as a filesystem that
 * refuses O_DIRECT: only asked when opening with it) or -EIO. */
int sio_fault_open(struct sio *io, enum sio_file_kind kind, bool direct);
bool sio_fault_other(struct sio *io, const struct sio_file *f, enum sio_op_kind kind,
		     struct uring_op *op);

#endif

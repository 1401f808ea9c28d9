/*
 * uring_op: the one completion mechanism shared by every io_uring user in a
 * shard (storage writes and syncs, network accept/recv/send, timers).
 *
 * Every SQE a shard submits carries, as user_data, a pointer to a struct
 * uring_op embedded in the object that owns the operation. The shard loop
 * reaps a CQE and calls op->done(op, cqe->res, cqe->flags); the owner uses
 * container_of() to find itself. No lookup tables, no allocation per I/O.
 *
 * Threading: an op belongs to the shard whose ring it was submitted on and
 * is completed on that shard's thread only.
 */
#ifndef SLUICE_URING_OP_H
#define SLUICE_URING_OP_H

#include <stddef.h>
#include <stdint.h>
#include <liburing.h>

struct uring_op;
typedef void (*uring_op_done_fn)(struct uring_op *op, int res, uint32_t cqe_flags);

struct uring_op {
	uring_op_done_fn done;
};

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/* Attach op to sqe; the CQE for sqe will be dispatched to op->done. */
static inline void uring_op_prep(struct io_uring_sqe *sqe, struct uring_op *op)
{
	io_uring_sqe_set_data(sqe, op);
}

/* Dispatch one CQE. An SQE submitted with user_data 0 (e.g. a linked op
 * whose result nobody needs) is ignored. */
static inline void uring_op_dispatch(const struct io_uring_cqe *cqe)
{
	struct uring_op *op = io_uring_cqe_get_data(cqe);
	if (op != NULL)
		op->done(op, cqe->res, cqe->flags);
}

#endif

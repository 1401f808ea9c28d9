/*
 * sio: a shard's storage I/O backend. Every write, fdatasync and
 * pre-allocation a log makes goes through here onto the shard's io_uring,
 * so one object decides how it reaches the disk:
 *
 *   O_DIRECT   .log files are opened for writing with O_DIRECT (a second
 *              descriptor; reads and recovery keep a buffered one). A
 *              filesystem that refuses it (tmpfs, some overlays) gets
 *              buffered writes instead, with one warning per shard.
 *   registered buffers   the shard's write-buffer pool and the read pools
 *              are registered with the ring (one table, several regions),
 *              so a write from them is a WRITE_FIXED and a read into them
 *              a READ_FIXED: the kernel does not pin and unpin the pages on
 *              every I/O. Memory outside the regions gets plain READ/WRITE.
 *   registered files     an open .log write descriptor takes a slot in the
 *              ring's sparse file table (IOSQE_FIXED_FILE), when one is free.
 *   faults     a rule list (sio_config.faults, the storage.faults knob) that
 *              makes chosen operations fail: EIO, ENOSPC, a short write or
 *              read, a torn write. Tests only; the log cannot tell it from a disk.
 *
 * Callers check sio_sq_space() before queuing: every sio_* call that takes
 * an op consumes exactly one SQE, faulted or not, and the op's done() is
 * called once with the result, as from the real operation.
 *
 * Threading: one per shard, used only on its thread (the ring is
 * IORING_SETUP_SINGLE_ISSUER). Registration calls are syscalls: start-up,
 * segment creation and sealing only.
 */
#ifndef SLUICE_STORAGE_SIO_H
#define SLUICE_STORAGE_SIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>

#include "storage/uring_op.h"

/* The alignment O_DIRECT needs of file offsets, lengths and memory: the
 * largest logical block size in use (4 KiB sectors; 512-byte devices
 * accept it too). */
#define SIO_DIRECT_ALIGN 4096

/* Registered-buffer slots are at most 1 GiB each (a kernel limit); a larger
 * pool is registered as several. */
#define SIO_REG_BUF_BYTES_MAX (1024UL * 1024 * 1024)

/* Slots in one ring's registered-buffer table (the kernel's
 * IORING_MAX_REG_BUFFERS). */
#define SIO_REG_SLOTS_MAX 16384

/* Slots in a shard's registered file table: one per segment being written
 * (each partition has one active segment). Past this, files are used by
 * descriptor, which works the same, a little slower. */
#define SIO_FILE_SLOTS 4096

/* Pre-allocation by writing zeros (sio_zero) sends one shared, read-only
 * chunk of zeros this many times per operation: a stretch is a multiple of
 * the chunk and at most SIO_ZERO_MAX_BYTES. */
#define SIO_ZERO_CHUNK_BYTES (64 * 1024)
#define SIO_ZERO_IOVS 256
#define SIO_ZERO_MAX_BYTES ((int64_t)SIO_ZERO_CHUNK_BYTES * SIO_ZERO_IOVS)

/* Fault rules in one storage.faults spec. */
#define SIO_FAULT_RULES_MAX 8

enum sio_file_kind { SIO_FILE_LOG, SIO_FILE_INDEX, SIO_FILE_TIMEINDEX, SIO_FILE_ANY };

/* A file as the backend writes it. */
struct sio_file {
	int fd;      /* the descriptor (-1 when closed) */
	int slot;    /* its registered slot, or -1 */
	bool direct; /* opened with O_DIRECT: offsets, lengths, memory aligned */
	bool own;    /* fd was opened by sio_open (sio_close closes it) */
	enum sio_file_kind kind;
};

struct sio_config {
	bool direct;        /* open .log files for writing with O_DIRECT */
	const char *faults; /* fault rules (see sio_faults_parse), NULL or "" */
};

struct sio_fault_rule;

/* A region of memory registered as fixed buffers: table slots from slot
 * on, slot + i covering SIO_REG_BUF_BYTES_MAX bytes from base + i * that. */
struct sio_region {
	void *base;
	size_t len;
	unsigned slot; /* set by sio_register_regions */
};

struct sio_stats {
	uint64_t writes, direct_writes, fixed_buf_writes, fixed_file_ops;
	uint64_t reads, fixed_buf_reads;
	uint64_t syncs, fallocates;
	uint64_t zero_writes, zeroed_bytes; /* pre-allocation by writing zeros */
	uint64_t faults_injected;
	uint64_t direct_fallbacks; /* files opened buffered because O_DIRECT was refused */
};

struct sio {
	struct io_uring *ring;
	bool direct;
	bool warned_fallback;
	/* Registered buffers: the regions of the ring's table (few: looked
	 * up by a scan on every I/O). */
	struct sio_region *regs;
	int n_regs;
	/* Registered files: free slots as a stack. */
	int *slot_free;
	uint32_t n_slot_free;
	struct sio_fault_rule *rules;
	int n_rules;
	struct sio_stats stats;
};

/* Parse a fault spec: rules separated by ';', each
 *   EFFECT:OP[:file=log|index|timeindex|any][:after=N][:count=N][:while=PATH]
 * EFFECT eio|enospc|short|torn|einval, OP write|fsync|fallocate|open|read
 * (einval goes with open only: the O_DIRECT open is refused as by a
 * filesystem without it, and the file is opened buffered; a read takes
 * eio or short). The rule hits the matching operations after the first
 * `after` (default 0), `count` times (default every time), and only while
 * PATH exists when given. eio/enospc: the operation is not done and fails
 * with that error. short: a write or read does half its bytes (a write
 * on a direct file rounded down to SIO_DIRECT_ALIGN) and reports that
 * count. torn: the same half is written, and the write reports -EIO. Returns the rule count, or -1 with
 * a reason in why. rules may be NULL to only check. */
int sio_faults_parse(const char *spec, struct sio_fault_rule *rules, int max, char *why,
		     size_t why_len);

/* Set up on ring (which must outlive it). -ENOMEM, -EINVAL for a bad fault
 * spec, or 0. Registering the file table is tried; refused (old kernel,
 * limits) means descriptors are used. */
int sio_init(struct sio *io, struct io_uring *ring, const struct sio_config *cfg);
void sio_destroy(struct sio *io);

/* Register [base, base + len) as fixed buffers. 0 or -errno; on failure
 * I/O simply does not use them. */
int sio_register_buffers(struct sio *io, void *base, size_t len);

/* Register n regions (memory of this shard or of others; the caller keeps
 * them mapped while registered) as the ring's one table, replacing what
 * was registered before; each region's slot is filled in. 0 or -errno
 * (-EINVAL past SIO_REG_SLOTS_MAX slots); on failure nothing stays
 * registered and I/O uses plain operations. A syscall that pins the
 * pages: start-up only. */
int sio_register_regions(struct sio *io, struct sio_region *regions, int n);

/* Open path for writing (created if absent, mode 0644), with O_DIRECT if
 * direct and the backend wants it and the filesystem allows it, and take a
 * registered slot when one is free. Blocks (open). 0 or -errno. */
int sio_open(struct sio *io, const char *path, enum sio_file_kind kind, bool direct,
	     struct sio_file *f);

/* A file opened elsewhere (buffered, by descriptor), for the calls below. */
static inline struct sio_file sio_file_of(int fd, enum sio_file_kind kind)
{
	return (struct sio_file){ .fd = fd, .slot = -1, .kind = kind };
}

/* Release the slot and close the descriptor if sio_open opened it. No
 * operation on f may be in flight. */
void sio_close(struct sio *io, struct sio_file *f);

static inline unsigned sio_sq_space(const struct sio *io)
{
	return io_uring_sq_space_left(io->ring);
}

/* Queue a write of len bytes from buf at pos (on a direct file all three
 * aligned to SIO_DIRECT_ALIGN). sqe_flags: 0, or IOSQE_IO_LINK to hold the
 * next SQE until this one succeeds. One SQE; the caller checked for room. */
void sio_write(struct sio *io, const struct sio_file *f, const void *buf, size_t len,
	       int64_t pos, unsigned sqe_flags, struct uring_op *op);

/* Queue a read of len bytes at pos into buf: a READ_FIXED when buf lies
 * within a registered region, else a plain READ (also when registration
 * failed). The fault rules see it (OP read). One SQE; the caller checked
 * for room. */
void sio_read(struct sio *io, const struct sio_file *f, void *buf, size_t len, int64_t pos,
	      struct uring_op *op);

/* Queue an fdatasync. One SQE. */
void sio_fdatasync(struct sio *io, const struct sio_file *f, struct uring_op *op);

/* Queue an fallocate of [pos, pos + len) (mode 0: the blocks are reserved
 * and the file grows to cover them, reading as zeros), so that appends
 * neither allocate blocks nor change the file's size one write at a time.
 * One SQE. */
void sio_fallocate(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
		   struct uring_op *op);

/* Pre-allocate [pos, pos + len) of a direct file by writing zeros: unlike
 * fallocate's unwritten extents, the blocks are then written, so a later
 * write there is an overwrite that fdatasync makes durable without a
 * journal commit (ext4, xfs). len is a multiple of SIO_ZERO_CHUNK_BYTES,
 * at most SIO_ZERO_MAX_BYTES. Faults: as a fallocate. */
void sio_zero(struct sio *io, const struct sio_file *f, int64_t pos, int64_t len,
	      struct uring_op *op);

#endif

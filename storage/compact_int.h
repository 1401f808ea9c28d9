/*
 * compact_int: the cleaner's inside, shared by log_compact.c (rounds) and
 * log_compact_swap.c (swaps, recovery, checkpoint) only.
 */
#ifndef SLUICE_STORAGE_COMPACT_INT_H
#define SLUICE_STORAGE_COMPACT_INT_H

#include "storage/compact.h"
#include "storage/compact_batch.h"
#include "storage/compact_map.h"
#include "storage/log_int.h"

#define COMPACT_CHECKPOINT_FILE "cleaner-offset-checkpoint"
#define COMPACT_CLEANED_SUFFIX ".cleaned"
#define COMPACT_SWAP_SUFFIX ".swap"

struct cleaner {
	struct cleaner_config cfg;
	struct compact_map map;
	uint64_t gen;              /* rounds started: which one the map is for */
	int64_t step_us_max;       /* the longest cleaner_step so far */
	struct compact_codec codec;
	uint8_t *rbuf;             /* segment bytes read */
	size_t rcap;
	uint8_t *obuf;             /* cleaned bytes not yet written */
	size_t olen, ocap;
};

/* The fsyncs of a swap and of the checkpoint go on the log's ring, so the
 * shard never blocks on them: the round waits for their completions. The
 * ops outlive a round that is given up meanwhile (job NULL: the last
 * completion frees them). */
#define COMPACT_IO_OPS 4

struct compact_job;

struct compact_io;

struct compact_io_op {
	struct uring_op op;
	struct compact_io *io;
};

struct compact_io {
	struct compact_io_op ops[COMPACT_IO_OPS];
	bool busy[COMPACT_IO_OPS]; /* in flight */
	int fds[COMPACT_IO_OPS];   /* closed when the op completes, or -1 */
	struct compact_job *job;
	int inflight;
	int err;                   /* first failure */
};

enum compact_phase {
	CJ_CLEAR,  /* emptying the offset map */
	CJ_MAP,    /* mapping the dirty section's keys */
	CJ_GROUP,  /* choosing the next group of segments and opening its output */
	CJ_CLEAN,  /* copying the group's records that stay */
	CJ_SWAP,   /* putting the cleaned segment in the group's place */
	CJ_FINISH, /* checkpoint, counters */
};

/* A sealed segment as the round found it. */
struct compact_seg {
	struct segment *s;
	int64_t base, end;   /* its offsets: [base, end) */
	int64_t size;
	int64_t mtime_ms;    /* .log modification time */
};

struct compact_job {
	enum compact_phase phase;
	uint64_t gen;
	int64_t first_dirty, first_uncleanable;
	int64_t map_end;           /* offsets below it were mapped (or clean) */
	bool map_full;             /* the map filled before first_uncleanable */
	int64_t horizon_ms;        /* tombstones of segments modified at or
				    * before it go */
	struct compact_seg *segs;  /* the log's first n sealed segments */
	uint32_t n, n_clean;       /* n_clean: those below map_end */
	uint32_t cur;              /* the segment being read ... */
	int64_t pos;               /* ... and where */
	uint32_t g_first, g_end;   /* the group being cleaned */
	struct segment *out;       /* its cleaned segment (log_fd: .log.cleaned) */
	int64_t out_written;       /* bytes of out written to the file */
	int64_t g_in_bytes;        /* bytes of the group's segments */
	int64_t g_read_bytes;      /* of them, bytes of the batches cleaned so far */
	int64_t g_out_bytes;       /* bytes of its cleaned segment */
	uint64_t g_removed;        /* records dropped from the group */
	bool g_changed;            /* some batch was not copied as it was */
	int stage;                 /* within CJ_SWAP and CJ_FINISH */
	bool committed;            /* the group's .log.swap is durable */
	int64_t free_seg;          /* swap step 5: the old segment being
				    * emptied (-1: none held) */
	int64_t free_budget;       /* bytes it frees per step */
	struct compact_io *io;
	int64_t started_us;
	/* round totals */
	uint32_t groups_swapped, segs_replaced;
	uint64_t bytes_before, bytes_after, records_removed;
};

/* log_compact.c */
/* The round's segments from job->segs[from] on must still be the log's,
 * consecutive and sealed (retention may have deleted some meanwhile).
 * Their index in l->segs (0 when from is past them), or -1. */
int compact_job_locate(const struct plog *l, const struct compact_job *job, uint32_t from);

/* log_compact_swap.c */
/* One stage of putting job's finished group (out) in place of its
 * segments in l: 1 when there is more, 0 when done (phase CJ_GROUP next),
 * or -errno. A failure before the commit point leaves the log as it was;
 * after it, the log goes offline (its files and memory would disagree
 * until recovery finishes the swap). */
int compact_swap_step(struct plog *l, struct compact_job *job);
/* The same for the checkpoint at the end of a round: 1, 0 (written), or
 * -errno. */
int compact_checkpoint_step(struct plog *l, struct compact_job *job);
/* Queue an fsync of fd on the log's ring (close it when done if own), or
 * do it now when the log has no ring. 0 or -errno. */
int compact_io_fsync(struct plog *l, struct compact_job *job, int fd, bool own);
/* Free the job's ops, or leave them to their completions. */
void compact_io_release(struct compact_job *job);
/* Close and free the segments a swap replaced (held for step 5). */
void compact_job_free_replaced(struct compact_job *job);
/* Remove the group's .cleaned files. */
void compact_out_discard(struct plog *l, struct compact_job *job);
/* "<dir>/<20-digit base><ext><suffix>" into buf: 0 or -ENAMETOOLONG. */
int compact_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext,
		 const char *suffix);

#endif

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
	struct compact_codec codec;
	uint8_t *rbuf;             /* segment bytes read */
	size_t rcap;
	uint8_t *obuf;             /* cleaned bytes not yet written */
	size_t olen, ocap;
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
	uint64_t g_removed;        /* records dropped from the group */
	bool g_changed;            /* some batch was not copied as it was */
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
/* Put job's finished group (out) in place of its segments in l. 0 or
 * -errno (the log is unchanged unless the commit point was passed, which
 * takes the log offline on a later failure: its files and memory would
 * disagree). */
int compact_swap(struct plog *l, struct compact_job *job);
/* Remove the group's .cleaned files. */
void compact_out_discard(struct plog *l, struct compact_job *job);
/* "<dir>/<20-digit base><ext><suffix>" into buf: 0 or -ENAMETOOLONG. */
int compact_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext,
		 const char *suffix);
/* Make off the cleaner checkpoint, durably. 0 or -errno. */
int compact_checkpoint_write(const char *dir, int64_t off);

#endif

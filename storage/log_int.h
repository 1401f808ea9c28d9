/*
 * log_int: the inside of struct plog, shared by the log_*.c files only.
 *
 * Split of the log module:
 *   log.c          getters, listener, close/delete and the final sync
 *   log_append.c   append, write buffers, segment roll
 *   log_flush.c    group-commit chains on io_uring and their completions
 *   log_read.c     reads and timestamp lookups (synchronous pread)
 *   log_recover.c  plog_open: directory scan, segments, producer state
 *   log_retention.c  the start offset (DeleteRecords, its file), retention
 *   log_compact*.c the cleaner (compact.h): rounds, and their swaps
 */
#ifndef SLUICE_STORAGE_LOG_INT_H
#define SLUICE_STORAGE_LOG_INT_H

#include <sys/uio.h>

#include "storage/bufpool.h"
#include "storage/limits.h"
#include "storage/log.h"
#include "storage/producer_state.h"
#include "storage/segment.h"
#include "storage/sio.h"
#include "storage/uring_op.h"

#define PLOG_CLEAN_MARKER ".sluice_cleanshutdown"
#define PLOG_DELETE_SUFFIX "-delete" /* of a directory renamed by plog_delete */
#define PLOG_DELETE_SUFFIX_LEN (sizeof(PLOG_DELETE_SUFFIX) - 1)
#define PLOG_START_FILE ".sluice_log_start_offset" /* DeleteRecords' start offset */

struct wbuf_list {
	struct wbuf *head, *tail;
};

/* The tail cache's buffers in file order, oldest first: a ring of cap
 * slots (the most a log can have retained: see plog_cache_init), so that a
 * read finds its first buffer by binary search. */
struct plog_cache {
	struct wbuf **slot;
	uint32_t cap, first, n; /* the i-th oldest is slot[(first + i) % cap] */
};

/* The SQEs one chain may queue; each has its own uring_op slot, so a log
 * needs no allocation per I/O. Data writes are one per buffer, from
 * PLOG_OP_DATA on. */
enum plog_op_kind {
	PLOG_OP_DATA_SYNC,
	PLOG_OP_INDEX,
	PLOG_OP_INDEX_SYNC,
	PLOG_OP_TIMEINDEX,
	PLOG_OP_TIMEINDEX_SYNC,
	PLOG_OP_FALLOCATE,
	PLOG_OP_DATA,
	PLOG_OP_COUNT = PLOG_OP_DATA + PLOG_CHAIN_BUFS_MAX
};

struct plog_op {
	struct uring_op op;
	struct plog *l;
	int64_t expect; /* result a write must return; -1 for the rest */
};

/* The one group-commit chain a log may have in flight. Phase 1 writes
 * (data, indexes, a pre-allocation); phase 2, queued when phase 1 is all
 * in, syncs. A chain of one data write and a sync links the two in phase 1
 * instead, saving a round trip. */
struct plog_chain {
	bool busy;
	int phase;
	int ops_left;
	int err;                 /* first failure among its ops */
	bool retry;              /* the failure was ENOSPC or a short write */
	struct segment *seg;
	struct wbuf_list bufs;   /* the data written */
	int nbufs, writes;       /* buffers, and data writes (some buffers
				  * have no whole page of their own) */
	uint32_t idx_from, tidx_from; /* index entries flushed before it */
	uint64_t bytes;          /* appended bytes in bufs (not page heads) */
	bool sync, seal, linked;
	bool phase2_owed;        /* its syncs wait for room in the ring */
	int64_t end_offset;      /* HW once it completes (if bufs) */
	int64_t readable;        /* seg->readable once it completes */
};

struct plog {
	char *dir;
	struct log_config cfg;

	/* segs[0 .. n_segs-1] by base offset; the last is active. Segments
	 * below n_sealed are sealed: data and indexes written and synced. */
	struct segment **segs;
	uint32_t n_segs, cap_segs, n_sealed;

	int64_t end_offset, hw;
	int64_t start_offset; /* >= segs[0]->base_offset, <= hw */
	int err; /* sticky -errno: offline */

	struct producer_state producers;

	struct wbuf_list pending;  /* appended, not yet in a chain */
	uint64_t unwritten_bytes;  /* pending + in the chain */
	uint64_t bytes_since_snapshot; /* appended since the last producer snapshot */
	/* The active segment's last partial page (its first size % 4096
	 * bytes are valid) while no pending buffer holds it: the head the
	 * next buffer starts with. */
	uint8_t *tail_page;
	/* Tail cache (log_cache.c): written buffers kept readable (retained
	 * in the pool). */
	struct plog_cache cache;

	struct plog_chain chain;
	struct plog_op ops[PLOG_OP_COUNT];
	struct sio *io;            /* cfg.io, or own_io */
	struct sio own_io;         /* plain operations on the last ring given to
				    * plog_flush, when cfg.io is NULL */
	int64_t retry_at_ms;       /* >= 0: the disk was full; write again then */
	/* When the last pre-allocation step was queued, and bytes_written then:
	 * the write rate that picks zeros or fallocate for the next. */
	int64_t prealloc_at_ms;
	uint64_t prealloc_at_bytes;
	int64_t now_ms;            /* last now_ms given to plog_flush */
	int64_t next_sync_ms;      /* FLUSH_INTERVAL: earliest next fdatasync */
	bool unsynced;             /* FLUSH_INTERVAL: written data not synced */

	void (*on_advance)(void *arg, struct plog *l);
	void *listener_arg;
	bool closing, deleting, in_callback;
	int reads_in_flight;       /* plog_read_start reads on the ring */

	struct plog_stats stats;

	/* Compaction (log_compact.c): the round under way, and where the
	 * last finished one left off (-1: never cleaned). */
	struct compact_job *cjob;
	int64_t cleaner_checkpoint;
};

static inline struct segment *plog_active(const struct plog *l)
{
	return l->segs[l->n_segs - 1];
}

/* log_append.c */
void wbuf_list_push(struct wbuf_list *list, struct wbuf *b);
struct wbuf *wbuf_list_pop(struct wbuf_list *list);
/* Give a buffer back to where it came from (the pool, or free it). */
void plog_wbuf_release(struct plog *l, struct wbuf *b);
/* Release every buffer the log holds, pending or in its chain, unwritten:
 * for a log going offline or being freed. The chain must not be in
 * flight. */
void plog_wbufs_drop(struct plog *l);

/* log_cache.c */
/* Room for as many buffers as the log's pool may retain (none without a
 * pool or a retain_max). plog_open's. 0 or -ENOMEM. */
int plog_cache_init(struct plog *l);
/* The pool's on_evict for the tail cache (set by plog_open). */
void plog_cache_on_evict(struct wbuf *b);
/* A chain wrote b: keep it in the tail cache, or give it back. */
void plog_wbuf_written(struct plog *l, struct wbuf *b);
/* Give back the cached buffers of s (all, with s NULL). */
void plog_cache_drop(struct plog *l, const struct segment *s);
/* Read n bytes of s at pos (all below s->readable): from the tail cache
 * when it holds them, else from the file. As segment_pread. */
ssize_t plog_pread(void *log, const struct segment *s, void *buf, size_t n, int64_t pos);
/* The same without touching the disk: -EAGAIN when the bytes are neither
 * in the tail cache nor in the page cache. */
ssize_t plog_pread_nowait(void *log, const struct segment *s, void *buf, size_t n, int64_t pos);

/* log_flush.c */
void plog_ops_init(struct plog *l);
/* Start the next chain if there is work; 0, SQEs queued, or -EBUSY. */
int plog_chain_start(struct plog *l);

/* log.c */
/* Take the log offline with err (sticky) and tell the listener. */
void plog_fail(struct plog *l, int err);
/* Call the listener, guarding against it closing the log under us. */
void plog_notify(struct plog *l);
/* Free the log now if it is closing and nothing is in flight. */
void plog_maybe_finish(struct plog *l);
/* Append a created segment to segs. 0 or -ENOMEM. */
int plog_segs_push(struct plog *l, struct segment *s);
/* A new, empty segment at base, appended to segs (the active one now).
 * 0 or -ENOMEM. */
int plog_segs_push_new(struct plog *l, int64_t base);
/* Segment holding offset (the last with base <= offset). */
struct segment *plog_segment_for(const struct plog *l, int64_t offset);
int plog_dir_fsync(const char *dir);
/* fsync the directory holding path (after creating or renaming it). */
int plog_parent_fsync(const char *path);
void plog_free(struct plog *l);

/* log_retention.c */
/* At open, once the segments are loaded and end_offset is known: the start
 * offset from its file and the first segment, the segments it makes
 * useless deleted (see plog_open). 0 or -errno. */
int plog_start_recover(struct plog *l);
/* log_compact.c */
/* Free the round under way, removing its files. */
void compact_job_free(struct plog *l);

/* log_compact_swap.c: at plog_open, before the segments are listed. */
/* Finish a committed swap and remove the files of an uncommitted one. */
int compact_recover_dir(const char *dir);
/* The cleaner checkpoint, or -1 when there is none (or it is unreadable). */
int64_t compact_checkpoint_load(const char *dir);

#endif

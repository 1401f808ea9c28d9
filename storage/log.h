/*
 * log: one partition's log (struct plog): a directory of segments holding
 * Kafka v2 record batches exactly as on the wire, with Kafka's offset and
 * time indexes, idempotent-producer state, group-committed io_uring writes
 * and tail-only crash recovery.
 *
 * Threading: a plog belongs to one shard thread; every function must be
 * called on it, and completions of the SQEs it queues must be dispatched on
 * it (uring_op_dispatch). No locks, nothing here touches the network.
 *
 * Life of an append:
 *   plog_append   copies the batch into the log's pending write buffers,
 *                 assigns offsets, updates indexes: in memory, not durable.
 *   plog_flush    (once per loop turn for each log appended to) queues one
 *                 write of everything pending, plus an fdatasync linked
 *                 after it per the flush mode: group commit.
 *   completion    advances the high watermark and calls the listener.
 *
 * Durability and the high watermark (HW):
 *   FLUSH_ALWAYS   HW = end of the data whose write AND fdatasync completed.
 *   FLUSH_INTERVAL HW = end of the written data; a write carries an
 *                  fdatasync when flush_interval_ms passed since the last one.
 *   FLUSH_NONE     HW = end of the written data; no fdatasync (except when a
 *                  segment is sealed, see below).
 * Offsets become readable (and durable) in order. A segment that is rolled
 * away from is always sealed with an fdatasync of its data and indexes
 * before the next segment's file is even created, so recovery can trust
 * every segment but the last.
 *
 * Files in the partition directory, named as Kafka names them:
 *   <20-digit base offset>.log / .index / .timeindex   one segment
 *   <20-digit offset>.snapshot                         producer state
 *   .sluice_cleanshutdown                              clean close marker
 *   .sluice_log_start_offset                           start offset moved by
 *                                                      DeleteRecords
 *
 * The log start offset (log_retention.c) is the first offset a reader may
 * see. It is the first segment's base offset, or more: DeleteRecords may
 * move it to any offset up to the HW, even inside a segment (which then
 * stays on disk until it lies wholly below). Retention deletes whole sealed
 * segments, oldest first, by time (retention_ms), by size (retention_bytes)
 * or because they lie wholly below the start offset; the active segment,
 * and any segment whose seal is still in flight, is never deleted.
 *   cleaner-offset-checkpoint                          compaction's progress
 *   <base>.{log,index,timeindex}.{cleaned,swap}        a compaction swap under
 *                                                      way (compact.h)
 */
#ifndef SLUICE_STORAGE_LOG_H
#define SLUICE_STORAGE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>

#include "storage/batch.h"
#include "storage/uring_op.h"

struct bufpool;
struct plog;

enum flush_mode { FLUSH_ALWAYS, FLUSH_INTERVAL, FLUSH_NONE };

struct log_config {
	int64_t segment_bytes;        /* roll before a segment would pass this (Kafka
				       * segment.bytes, 1 GiB); 1 .. INT32_MAX */
	int32_t index_interval_bytes; /* bytes between offset index entries (Kafka
				       * index.interval.bytes, 4096); >= 0 */
	enum flush_mode flush;
	int64_t flush_interval_ms;    /* FLUSH_INTERVAL: at most one fdatasync per
				       * interval */
	struct bufpool *pool;         /* the shard's write buffers, shared by its
				       * logs (it must outlive them); NULL
				       * (tests, tools): each buffer malloc'ed */
	struct sio *io;               /* the shard's storage backend (it must
				       * outlive the log); NULL: plain io_uring
				       * operations on plog_flush's ring, with
				       * O_DIRECT unless no_direct */
	bool no_direct;               /* with io NULL: buffered writes */
	int64_t segment_ms;           /* roll a segment this old at the next
				       * append (Kafka segment.ms); 0: never */
	int64_t preallocate_bytes;    /* reserve .log blocks ahead of the writes
				       * in steps of this (fallocate); 0: off */
	int64_t preallocate_zero_max_rate; /* while the log is written slower
				       * than this (bytes/s), a step is written
				       * as zeros instead (direct files): syncs
				       * then need no journal commit; 0: never */
	int64_t retry_ms;             /* after ENOSPC, retry the write this much
				       * later (log.write.retry.ms) */
	int64_t retention_ms;         /* Kafka retention.ms: a sealed segment whose
				       * largest timestamp is older than now minus
				       * this is deleted; -1 keeps forever */
	int64_t retention_bytes;      /* Kafka retention.bytes: the oldest sealed
				       * segment is deleted while the log without it
				       * still holds this many bytes; -1: no limit */

	/* Compaction (storage/compact.h): cleanup.policy includes compact. */
	bool compact;
	double min_cleanable_dirty_ratio; /* 0..1 (Kafka default 0.5) */
	int64_t delete_retention_ms;      /* tombstones kept this long (86400000) */
	int64_t min_compaction_lag_ms;    /* records younger are not cleaned (0) */
};

/* plog_append's answers besides 0 and the errors below. */
#define PLOG_DUPLICATE 1 /* retried idempotent batch: nothing appended, result
			  * holds the original batch's base offset */

/* plog_append errors. Distinct from every -errno so callers can switch on
 * them; each maps to one Kafka error code. */
enum plog_err {
	PLOG_ERR_OUT_OF_ORDER_SEQUENCE = -1001,  /* OUT_OF_ORDER_SEQUENCE_NUMBER */
	PLOG_ERR_INVALID_PRODUCER_EPOCH = -1002, /* INVALID_PRODUCER_EPOCH */
	PLOG_ERR_STORAGE = -1003,     /* log offline after an I/O error: KAFKA_STORAGE_ERROR */
	PLOG_ERR_BUFFER_FULL = -1004, /* PLOG_PENDING_BYTES_MAX not yet written, or
				       * the pool has no buffer free; retry later */
	PLOG_ERR_NO_SPACE = -1005,    /* the disk is full: appends wait for a write
				       * retry to succeed (KAFKA_STORAGE_ERROR,
				       * which producers retry) */
};

struct plog_append_result {
	int64_t base_offset;      /* offset assigned to the batch (or the original's) */
	int64_t log_append_time;  /* -1: CreateTime (LogAppendTime topics not yet) */
	int64_t log_start_offset;
};

struct plog_read_result {
	size_t len;               /* bytes of whole batches copied to dst */
	int64_t high_watermark;
	int64_t log_start_offset;
	int32_t first_batch_bytes; /* size of the first batch at offset, also when it
				    * did not fit dst_cap (then len is 0) */
};

/* Counters for tests, metrics and the operator. */
struct plog_stats {
	uint64_t recovery_log_bytes_read; /* .log bytes read by plog_open */
	int64_t recovery_truncated_bytes; /* torn tail cut off by plog_open */
	bool recovery_clean;              /* plog_open found a clean-close marker */
	uint64_t appends, duplicates;
	uint64_t writes, syncs, bytes_written;
	uint64_t rolls;
	uint64_t reads, read_bytes;
	uint64_t write_retries;           /* chains written again after ENOSPC */
	uint64_t cache_reads, cache_read_bytes; /* reads served by the tail cache */
	uint64_t nowait_misses;           /* reads that had to go to the disk */
	uint64_t cold_reads;              /* of those, done (io_uring) */
	uint64_t preallocated_bytes;
	uint64_t segments_deleted, bytes_deleted; /* by retention or DeleteRecords */
	/* Compaction (storage/compact.h). */
	uint64_t compact_rounds;          /* rounds finished */
	uint64_t segments_cleaned;        /* sealed segments read and rewritten */
	uint64_t compact_bytes_before, compact_bytes_after; /* of those segments */
	uint64_t compact_records_removed;
	uint64_t compact_aborts;          /* rounds given up or failed */
};

/* Open the log in dir (created with its parents if absent) and recover it:
 * sealed segments are trusted; the active segment's tail is CRC-checked
 * from its last trustworthy index entry and a torn tail is truncated; the
 * producer state comes from the newest snapshot plus the batch headers
 * after it. The start offset is the larger of the saved one (DeleteRecords)
 * and the first segment's base; sealed segments wholly below it are
 * deleted, and if it lies past the recovered end (data lost with
 * flush=none), the log restarts empty at it. Blocks: start-up or topic
 * creation only. Returns the log, or NULL with -errno in *err_out (-EINVAL
 * for a bad config or an unreadable start offset file). The caller owns
 * the log until plog_close or plog_delete. */
struct plog *plog_open(const char *dir, const struct log_config *cfg, int *err_out);

/* Append one batch that the caller has already validated (batch_validate,
 * which also filled h). First the idempotent-producer checks (producer_id
 * >= 0); then the batch is copied into the pending write buffer with
 * base_offset = log end offset and partition_leader_epoch = leader_epoch,
 * the in-memory indexes and the end offset advance. Nothing is written:
 * plog_flush does that. Rolls to a new segment first if the batch would
 * pass segment_bytes (writing the producer snapshot, blocking, once per
 * roll). A new write buffer, when one is needed, comes from cfg.pool and
 * goes back when the write carrying it completes; with the pool empty the
 * answer is PLOG_ERR_BUFFER_FULL and nothing changed (not even the roll).
 * now_ms is reserved for LogAppendTime and time-based rolls.
 * Returns 0 (res filled), PLOG_DUPLICATE (res->base_offset = original),
 * or a PLOG_ERR_*. Never blocks on I/O except at a roll. */
int plog_append(struct plog *l, const uint8_t *batch, size_t len, const struct batch_hdr *h,
		int32_t leader_epoch, int64_t now_ms, struct plog_append_result *res);

/* Queue the log's writes on ring (the caller submits once per loop turn):
 * one write (writev) of every appended byte not yet submitted, the new
 * index entries, and per flush mode an fdatasync linked after the data
 * write. At most one such chain is in flight per log: appends made
 * meanwhile are queued by the chain's completion itself, on the same ring.
 * FLUSH_INTERVAL: also queues a lone fdatasync when written data is
 * unsynced and the interval has passed (see plog_sync_deadline_ms).
 * Every SQE carries a struct uring_op owned by the log. Returns the number
 * of SQEs queued, 0 when there is nothing to do (or a chain is in flight,
 * or the log is offline or closing), -EBUSY when the ring has too few free
 * SQEs (retry next turn). Does not block, except when the chain is the
 * first for a new segment: creating its files and fsyncing the directory. */
int plog_flush(struct plog *l, struct io_uring *ring, int64_t now_ms);

/* FLUSH_INTERVAL: the now_ms at which written but unsynced data is due an
 * fdatasync (call plog_flush then, even without new appends), or -1 if
 * none is owed. Always -1 in the other modes. */
int64_t plog_sync_deadline_ms(const struct plog *l);

/* True when the log has nothing pending, nothing in flight and no sync
 * owed: what a shard waits for before a clean shutdown. */
bool plog_idle(const struct plog *l);

/* on_advance(arg, l) is called on the shard thread whenever the high
 * watermark advances or the log goes offline: from a completion, or from
 * plog_flush when the log goes offline there (a new segment's files could
 * not be created). It may append, flush or even close the log; a log it
 * closes is freed when the call that invoked it returns. */
void plog_set_listener(struct plog *l, void (*on_advance)(void *arg, struct plog *l), void *arg);

/* Offsets below the HW are readable (see the modes above). */
int64_t plog_high_watermark(const struct plog *l);
int64_t plog_end_offset(const struct plog *l);   /* next offset to assign */
int64_t plog_start_offset(const struct plog *l); /* first offset readable */

/* Bytes appended and not yet written (pending, or in the chain in flight):
 * what the log holds in write buffers besides their unused tails. 0 once
 * the log is offline (its unwritten data is dropped). */
uint64_t plog_unwritten_bytes(const struct plog *l);

/* True while the disk was found full: a write waits for its retry,
 * appends answer PLOG_ERR_NO_SPACE, reads go on. The listener hears when
 * it starts (and when the retry's success advances the HW). */
bool plog_write_stalled(const struct plog *l);

/* 0, or the sticky -errno that took the log offline. */
int plog_error(const struct plog *l);

const struct plog_stats *plog_stats(const struct plog *l);

/* Bytes of index entries of the log's segments held in the process's own
 * memory (the active segment's arrays, copies where a file could not be
 * mapped) and in mappings of the index files (sealed segments: the page
 * cache's), added to *memory and *mapped. Walks the segments: for stats
 * lines, not the hot path. */
void plog_index_bytes(const struct plog *l, uint64_t *memory, uint64_t *mapped);

/* Copy whole batches, starting with the one containing offset, into dst:
 * up to max_bytes, but always the first batch even if it is larger
 * (KIP-74) as long as it fits dst_cap; never data at or past the HW; may
 * stop at a segment end (the client fetches again), unless all it read
 * there are batches emptied by compaction. Offsets
 * may have gaps (compaction): an offset with no record left is served from
 * the next batch after it. offset == HW: len 0.
 * offset < start or > HW: -ERANGE. First batch larger than dst_cap: 0 with
 * len 0, and first_batch_bytes says how much room it needs. The log's
 * sticky error if it is offline; -EIO (or another -errno) if the file
 * cannot be read. Blocks: pread (async reads later). */
int plog_read(struct plog *l, int64_t offset, int32_t max_bytes, uint8_t *dst, size_t dst_cap,
	      struct plog_read_result *res);

/* plog_read from memory only (the tail cache, the page cache): -EAGAIN
 * when the bytes are on the disk alone. Never blocks on the disk. */
int plog_read_nowait(struct plog *l, int64_t offset, int32_t max_bytes, uint8_t *dst,
		     size_t dst_cap, struct plog_read_result *res);

/* An asynchronous plog_read, for data that may not be in memory. The
 * caller fills the inputs and keeps the struct and buf alive until done.
 * The reads go through the log's storage backend (log_config.io): into a
 * buf inside memory registered there (sio_register_regions) they are
 * READ_FIXED, else plain reads. */
struct plog_aread {
	struct uring_op op;
	void (*done)(struct plog_aread *r); /* in flight only: on the shard thread */
	void *arg;                          /* the caller's */
	/* in */
	int64_t offset;
	int32_t max_bytes;
	uint8_t *buf;  /* cap bytes; the batches land at buf + skip */
	size_t cap;
	/* out */
	int err;       /* 0, or as plog_read's return value */
	size_t skip;
	struct plog_read_result res;
	/* the log's */
	struct plog *l;
	struct segment *s;
	int64_t pos, end;
	int64_t fallback; /* where to read again if a guessed start (see
			   * segment_index_lookup_next) was past the batch, or -1 */
	size_t want;
	int steps;
};

/* Start r: what plog_read would give, without blocking the shard on the
 * disk. Data in the tail cache or the page cache is copied at once:
 * returns 0 (or plog_read's error) and done is not called. Else the read
 * goes to the disk through the log's io_uring (from the offset index entry
 * before the offset, in windows of cap bytes) and 1 is returned; done(r)
 * comes from a completion, with r->err and r->res, the batches at
 * r->buf + r->skip. The log stays allocated until its reads are done
 * (plog_close and plog_delete wait for them), and segments are not
 * deleted under them. A cap past max_bytes by a few index intervals saves
 * second reads. */
int plog_read_start(struct plog *l, struct plog_aread *r);

/* The disk half of plog_read_start, for a caller that already found the
 * bytes are not in memory (plog_read_nowait said -EAGAIN): same answers,
 * without trying memory again. */
int plog_read_disk(struct plog *l, struct plog_aread *r);

/* Reads in flight (plog_read_start): segments must stay while > 0. */
int plog_reads_in_flight(const struct plog *l);

/* The first offset whose timestamp is >= ts_ms among offsets below the HW,
 * and that timestamp: the exact record for an uncompressed batch, the
 * batch's base offset and max timestamp for a compressed one. -ENOENT if
 * there is none; -EIO on read errors. Blocks: pread. */
int plog_offset_for_timestamp(struct plog *l, int64_t ts_ms, int64_t *offset_out,
			      int64_t *ts_out);

/* The largest timestamp appended and its offset (the exact record for an
 * uncompressed batch, the batch's last offset otherwise). May lie at or
 * above the HW, as in Kafka: callers compare with it. -ENOENT if no batch
 * carries a timestamp. Does not block. */
int plog_max_timestamp(struct plog *l, int64_t *offset_out, int64_t *ts_out);

/* Why plog_retention_run deleted a segment. */
enum plog_delete_reason {
	PLOG_DELETE_RETENTION_MS,    /* its largest timestamp passed retention_ms */
	PLOG_DELETE_RETENTION_BYTES, /* the log is over retention_bytes without it */
	PLOG_DELETE_START_OFFSET,    /* wholly below the start offset (DeleteRecords) */
};

struct plog_deleted_segment {
	int64_t base_offset, end_offset; /* offsets [base, end) it held */
	int64_t bytes;                   /* its .log size */
	int64_t max_timestamp;           /* BATCH_NO_TIMESTAMP if none */
	enum plog_delete_reason reason;
};

/* Told about each segment deleted, after its files are gone. */
typedef void (*plog_deleted_fn)(void *arg, const struct plog_deleted_segment *d);

/* "retention.ms", "retention.bytes" or "log start offset", for log lines. */
const char *plog_delete_reason_name(enum plog_delete_reason r);

/* Retention: delete sealed segments, oldest first, stopping at the first
 * one that none of these rules condemns (Kafka's order):
 *   retention_ms >= 0     and now_ms - its largest timestamp > retention_ms
 *                         (the .log file's mtime if no batch has a timestamp)
 *   retention_bytes >= 0  and total log bytes - its bytes >= retention_bytes
 *   the next segment's base <= the start offset.
 * At most max_segments go in one call, so that the shard thread is not held
 * for long; call again to go on. The start offset advances to the new first
 * segment's base, producer snapshots older than that are removed, each
 * deletion counts in plog_stats and is reported to fn (may be NULL).
 * now_ms is wall-clock (timestamps are). Returns the number of segments
 * deleted, or -errno if one's files could not be removed (it is kept, and
 * retried next time). 0 for an offline or closing log. Blocks: unlink. */
int plog_retention_run(struct plog *l, int64_t now_ms, int max_segments, plog_deleted_fn fn,
		       void *arg);

/* DeleteRecords: move the start offset to offset (-1: the HW). Made durable
 * (a small file replaced atomically: write, fdatasync, rename, fsync of the
 * directory) before the call returns, so that a crash never brings the
 * records back. A start offset at or below the current one changes nothing.
 * Whole segments below the new start are deleted by the next
 * plog_retention_run, not here. *low_watermark is the start offset after
 * the call. Returns 0, -ERANGE when offset > HW or < -1, the log's sticky
 * error (or PLOG_ERR_STORAGE when closing) if it is offline, or -errno if
 * the file could not be written (nothing changed then). Blocks (two
 * fsyncs): meant for the rare admin call, on the shard thread. */
int plog_delete_records(struct plog *l, int64_t offset, int64_t *low_watermark);

/* Clean close. Writes what is still pending (synchronously), syncs, writes
 * the producer snapshot and the clean-shutdown marker, then frees the log.
 * If SQEs of the log are in flight it only marks the log closing; the
 * completion of the last one does the above, so the caller must keep
 * dispatching completions until they are in (a shard that waits for
 * plog_idle on every log before closing never has any). An offline log is
 * freed without marker. l must not be used after the call. Blocks. */
void plog_close(struct plog *l);

/* Close and remove the log's directory (DeleteTopics). The directory is
 * first renamed to "<dir>.<id>-delete", so a log re-created under the same
 * name at once cannot meet the old files; the files are removed when the
 * log's last in-flight SQE completes (at once if none). Returns 0 or the
 * rename's -errno (the log is freed either way). Blocks. */
int plog_delete(struct plog *l);

/* Remove the directories plog_delete renamed under parent but could not
 * finish removing (the process stopped first), as Kafka does at start-up.
 * Returns how many were removed, or -errno if parent cannot be read.
 * Blocks: start-up only. */
int plog_purge_deleted(const char *parent);

#endif

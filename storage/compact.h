/*
 * compact: the log cleaner, Kafka's cleanup.policy=compact for a plog.
 *
 * A round on one log (Kafka's LogCleaner.doClean, in slices):
 *   plan    the dirty section runs from the cleaner checkpoint (a file in
 *           the partition directory; the log start when there is none) to
 *           the first uncleanable offset: the first segment that is not
 *           sealed, or whose newest record is younger than
 *           min.compaction.lag.ms. The log is due when that section holds
 *           min.cleanable.dirty.ratio of the bytes from the log start.
 *   map     the dirty section's keys go into the shard's offset map (key ->
 *           last offset). A full map ends the mapping there: this round
 *           cleans up to that point and the next one goes on.
 *   clean   every sealed segment from the log start up to the mapped end is
 *           read again, a few consecutive segments at a time (a group that
 *           fits segment.bytes and int32 relative offsets), and written to
 *           "<base>.log.cleaned" without the records that a later offset of
 *           their key replaces, nor the tombstones that are past
 *           delete.retention.ms (Kafka's rule: a segment's tombstones go
 *           once it is delete.retention.ms older, by file modification
 *           time, than the newest segment of the already-clean section).
 *           Offsets stay: rewritten batches keep their base and last
 *           offsets (compact_batch.h), so the log gets gaps, never moves.
 *   swap    the group's cleaned files are synced and renamed .cleaned ->
 *           .swap (the commit point is the .log.swap rename), the old
 *           segments' files removed and the .swap files renamed to their
 *           final names; the segment array is updated in place. Recovery
 *           (plog_open) deletes what a crash left of an uncommitted swap
 *           and finishes a committed one.
 *   finish  the checkpoint moves to the mapped end; counters and one log
 *           line.
 *
 * Compressed batches (gzip, snappy, lz4, zstd) are decompressed to read
 * their keys and, when they lose records, compressed again with their own
 * codec (compact_batch.h). Kept whatever the keys say: control and
 * transactional batches (there are no transactions yet, so their keys are
 * not mapped either), batches whose records decompress past
 * decompress_bytes_max or do not decode, a batch whose rewrite would make
 * the cleaned segment longer than what it replaces up to that batch (a
 * producer's compressor may beat the cleaner's), the last batch of each producer the log still tracks (emptied of records if
 * none is left: it holds the producer's last sequence), and the last batch
 * of every group (emptied likewise), so a cleaned segment ends at exactly
 * the offset where the next one starts and recovery knows which old
 * segments a swap replaced. Keyless records are dropped, as Kafka's cleaner
 * does (Produce refuses them on a compacted topic anyway).
 *
 * Only segments below l->n_sealed are read or replaced: they are never in
 * a write chain. A round that finds its segments gone (retention deleted
 * them) or the log offline gives up, removing its files.
 *
 * Threading: a cleaner belongs to one shard thread, and cleans the logs of
 * that shard, one round at a time. Reads and writes are synchronous and
 * bounded per call (see cleaner_step); fsyncs are queued on the log's ring
 * (its sio's ring, or the last ring given to plog_flush; done on the spot
 * when the log has none), whose completions the caller dispatches.
 */
#ifndef SLUICE_STORAGE_COMPACT_H
#define SLUICE_STORAGE_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct plog;
struct cleaner;

struct cleaner_config {
	int64_t dedupe_buffer_bytes; /* offset map memory (Kafka's
				      * log.cleaner.dedupe.buffer.size) */
	int64_t slice_bytes;         /* work per cleaner_step: bytes read, or
				      * map memory cleared (log.cleaner.slice.bytes) */
	int64_t decompress_bytes_max; /* a compressed batch whose records
				       * decompress past this is kept whole
				       * (log.cleaner.decompress.max.bytes; 0:
				       * COMPACT_DECOMPRESS_BYTES_DEFAULT) */
};

/* What plog_compact_plan found. */
struct plog_cleanable {
	int64_t first_dirty;       /* cleaner checkpoint, or the log start */
	int64_t first_uncleanable; /* end of what may be cleaned now */
	int64_t clean_bytes, dirty_bytes;
	double dirty_ratio;        /* dirty / (clean + dirty) */
};

/* A cleaner with its offset map allocated. NULL with -EINVAL (a map of
 * fewer than two slots, a slice < 1, a negative decompress_bytes_max) or
 * -ENOMEM in *err. */
struct cleaner *cleaner_new(const struct cleaner_config *cfg, int *err);
void cleaner_free(struct cleaner *c);

/* Memory the cleaner holds (its map and buffers). */
size_t cleaner_memory_bytes(const struct cleaner *c);

/* The longest time one cleaner_step took, in microseconds: how long a
 * shard's loop was held by its cleaner at worst. */
int64_t cleaner_step_us_max(const struct cleaner *c);

/* Is l due a cleaning at now_ms (wall clock, as record timestamps and file
 * times are)? True when it is compacted, online, and its dirty section is
 * non-empty and at least min_cleanable_dirty_ratio of it; *out says what
 * was found either way (may be NULL). Blocks only for an fstat per segment
 * when min_compaction_lag_ms is set. */
bool plog_compact_plan(struct plog *l, int64_t now_ms, struct plog_cleanable *out);

/* A round of cleaning on l is under way. */
bool plog_compact_busy(const struct plog *l);

/* The round waits for fsyncs it queued on the log's ring (its sio's, as
 * plog_flush's writes): stepping does nothing until their completions
 * are dispatched, so the caller need not come back before then. */
bool plog_compact_io_pending(const struct plog *l);

/* The round is replacing segments (a swap is under way): whoever else
 * removes segments (retention) leaves the log alone meanwhile. */
bool plog_compact_swapping(const struct plog *l);

/* Do one slice of cleaning on l: start a round when none is under way and
 * l is due, then go on with it, reading at most cfg.slice_bytes of
 * segments (at least one batch) and writing what they become; a swap
 * (renames, removals and fsyncs of one group's files) takes steps of its
 * own.
 * Returns 1 when the round goes on (call again), 0 when it finished, was
 * not due or gave up because its segments went away, or a -errno when it
 * failed (the round is abandoned and its files removed; the log is as it
 * was, or offline if the failure came after a swap's commit point).
 * *io_bytes: the bytes read and written, for the caller's rate limit.
 * Blocks: synchronous pread/pwrite of one slice, or the renames, unlinks
 * and small writes of one stage of a swap; queues fsyncs (see
 * plog_compact_io_pending). */
int cleaner_step(struct cleaner *c, struct plog *l, int64_t now_ms, uint64_t *io_bytes);

/* Give up l's round (if any), removing its files. */
void plog_compact_abort(struct plog *l);

#endif

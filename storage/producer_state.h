/*
 * producer_state: what a partition remembers about idempotent producers, to
 * reject out-of-order and fenced batches and to answer retried ones with
 * their original offsets (Kafka's ProducerStateManager, without
 * transactions yet).
 *
 * Per producer id: its epoch and its last PRODUCER_BATCHES_KEPT batches
 * (first/last sequence, first/last offset). Rules, as Kafka applies them:
 *   - epoch older than the known one        -> INVALID_PRODUCER_EPOCH
 *   - same epoch, same sequence range as a kept batch -> duplicate
 *   - newer epoch, or unknown producer      -> baseSequence must be 0
 *   - same epoch                            -> baseSequence == last + 1
 *                                              (INT32_MAX wraps to 0)
 *   otherwise OUT_OF_ORDER_SEQUENCE.
 *
 * Survives restarts through snapshot files "<20-digit offset>.snapshot":
 * the state after every batch below that offset. Recovery loads the newest
 * usable one and replays batch headers after it.
 *
 * Threading: owned by one log, on its shard thread. Only the snapshot
 * functions do I/O (and block).
 */
#ifndef SLUICE_STORAGE_PRODUCER_STATE_H
#define SLUICE_STORAGE_PRODUCER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/batch.h"
#include "storage/limits.h"

struct producer_batch {
	int32_t first_seq, last_seq;
	int64_t first_offset, last_offset;
};

struct producer_entry {
	int64_t producer_id; /* < 0: free slot */
	int16_t epoch;
	uint8_t n;           /* batches kept */
	uint8_t head;        /* slot of the next batch (ring) */
	struct producer_batch b[PRODUCER_BATCHES_KEPT];
};

struct producer_state {
	struct producer_entry *slots; /* open addressing, linear probing */
	uint32_t cap, count;          /* cap is a power of two */
};

enum producer_check {
	PRODUCER_APPEND = 0,
	PRODUCER_DUPLICATE = 1,
	PRODUCER_ERR_OUT_OF_ORDER = -1,
	PRODUCER_ERR_EPOCH = -2,
};

/* Does a batch come from an idempotent producer (and so go through the
 * checks)? Control batches are written by the broker and skip them. */
static inline bool producer_batch_tracked(const struct batch_hdr *h)
{
	return h->producer_id >= 0 && (h->attributes & BATCH_ATTR_CONTROL) == 0;
}

/* 0 or -ENOMEM. */
int producer_state_init(struct producer_state *ps);
void producer_state_free(struct producer_state *ps);
void producer_state_clear(struct producer_state *ps);

/* Decide on a tracked batch. On PRODUCER_DUPLICATE, *dup_base_offset is the
 * original batch's base offset. Changes nothing. */
enum producer_check producer_state_check(const struct producer_state *ps,
					 const struct batch_hdr *h, int64_t *dup_base_offset);

/* Record a tracked batch appended at base_offset (after a PRODUCER_APPEND
 * check, or replayed from the log). Returns 0 or -ENOMEM (the table could
 * not grow; the producer is then not remembered, which only weakens
 * duplicate detection for it). */
int producer_state_update(struct producer_state *ps, const struct batch_hdr *h,
			  int64_t base_offset);

/* Last offset of the newest batch kept for producer pid, or -1 if the
 * producer is not known: the batch compaction must keep (compact.h). */
int64_t producer_state_last_offset(const struct producer_state *ps, int64_t pid);

/* Write "<dir>/<offset>.snapshot" (through a temporary file and rename).
 * With sync, the file and directory are fsync'ed. Returns 0 or -errno. */
int producer_snapshot_write(const struct producer_state *ps, const char *dir, int64_t offset,
			    bool sync);

/* Replace ps by the snapshot file's contents. Returns 0, -EINVAL when the
 * file is corrupt, or -errno. */
int producer_snapshot_load(struct producer_state *ps, const char *dir, int64_t offset);

/* Replace ps by a snapshot's contents, from the file's bytes p[0..len):
 * what producer_snapshot_load does after reading the file, for readers such
 * as tools/sluice-dump. Returns 0, -ENOMEM, or -EINVAL with *bad_pos the
 * byte position where the file stops making sense (that of the CRC for a
 * checksum mismatch). p is not changed. */
int producer_snapshot_decode(struct producer_state *ps, const uint8_t *p, size_t len,
			     size_t *bad_pos);

/* Offsets of the snapshot files in dir, newest first, into offs (at most
 * cap). Returns the count or -errno. */
int producer_snapshot_list(const char *dir, int64_t *offs, int cap);

/* Remove the snapshot of offset from dir. */
void producer_snapshot_unlink(const char *dir, int64_t offset);

/* Remove all but the newest `keep` snapshots. */
void producer_snapshot_prune(const char *dir, int keep);

#endif

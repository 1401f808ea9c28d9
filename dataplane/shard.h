/*
 * shard: one pinned thread that owns an io_uring, its connections, its
 * partitions and their logs, and runs every request to completion.
 *
 * A loop turn: submit what is queued and wait for completions (or the next
 * timer), dispatch a burst of completions (network reads run the requests
 * they complete, appending to logs), then group-commit: every log appended to
 * in the turn gets one write and one fdatasync. Parked fetches are
 * re-evaluated when a high watermark moved or their wait ran out.
 *
 * Threading: every function here runs on the shard's own thread and takes
 * the shard explicitly; nothing in a shard is touched by another thread.
 */
#ifndef SLUICE_SHARD_H
#define SLUICE_SHARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/uio.h>

#include "config.h"
#include "conn.h"
#include "kafka/kafka_wire.h"
#include "limits.h"
#include "metadata.h"
#include "storage/log.h"
#include "storage/uring_op.h"

struct shard;
struct conn;
struct request;

/* A produce request waiting for its bytes to become durable in one
 * partition. Lives in the request's arena; queued on the partition in offset
 * order (appends are in order, so a FIFO is sorted). */
struct durable_wait {
	struct request *req;
	int64_t offset_needed; /* high watermark that makes the batch durable */
	int16_t *error_code;   /* where to record a failure */
	struct durable_wait *next;
};

struct partition {
	struct shard *sh;
	struct topic_state *topic;
	int32_t index;
	struct plog *log;
	bool dirty;                      /* appended to in this turn */
	struct partition *dirty_next;
	bool sync_owed;                  /* flush=interval: an fdatasync is due later */
	struct partition *sync_next;
	struct durable_wait *waits_head, *waits_tail;
};

struct topic_state {
	const struct topic *meta; /* owned by metadata */
	struct partition *parts;  /* [n_parts] */
	int32_t n_parts;
	struct topic_state *by_name_next, *by_id_next;
};

#define TOPIC_TABLE_BUCKETS 16384
_Static_assert((TOPIC_TABLE_BUCKETS & (TOPIC_TABLE_BUCKETS - 1)) == 0, "power of two");

/* The shard's memory budget (memory.per.shard.bytes). The fixed pools are
 * mapped at start-up; `used` counts what comes and goes: partial frames,
 * requests, responses, batches appended but not yet written. Charges are
 * plain adds (one thread). At the end of a turn the shard pauses reading
 * from sockets above high water and resumes below low water. */
struct shard_mem {
	int64_t limit, high, low;
	int64_t used;
	bool paused;
	uint64_t pauses; /* times the budget paused reading */
};

static inline void shard_mem_charge(struct shard_mem *m, int64_t delta)
{
	m->used += delta;
}

struct shard_stats {
	uint64_t requests, bytes_in, bytes_out, batches, records_appended_bytes, fetch_bytes;
	uint64_t flushes, conns_accepted, conns_closed, protocol_errors;
	uint64_t zc_sends, recv_nobufs; /* sendmsg_zc issued; recvs ended by -ENOBUFS */
};

struct shard {
	int id;
	struct io_uring ring;
	const struct broker_config *cfg;
	struct metadata *md;
	int64_t now_ms; /* CLOCK_MONOTONIC ms, refreshed each turn */

	struct topic_state *topics_by_name[TOPIC_TABLE_BUCKETS];
	struct topic_state *topics_by_id[TOPIC_TABLE_BUCKETS];

	int listen_fd;
	struct uring_op accept_op;
	bool accept_armed;

	int signal_fd;
	struct uring_op signal_op;
	struct signalfd_siginfo siginfo;
	bool stopping;

	struct conn *conns;         /* open */
	struct conn *closing_conns; /* closed, freed by conn_reap */
	int n_conns;                /* both lists */

	struct partition *dirty_head;     /* logs to group-commit this turn */
	struct partition *sync_head;      /* flush=interval: logs owed an fdatasync */
	struct request *fetch_waiters;    /* parked fetches, doubly linked */
	bool fetch_recheck;               /* a high watermark moved this turn */
	uint64_t fetch_pass;              /* fetch_recheck_all passes so far */

	struct request *free_requests;
	int n_free_requests;
	int64_t accept_resume_ms; /* > 0: accept paused (out of fds) until then */
	struct shard_stats stats;
	struct shard_mem mem;
	struct net_shard net;
};

/* Start-up and shutdown (main thread, before/after the loop). */
int shard_init(struct shard *sh, int id, const struct broker_config *cfg, struct metadata *md);
int shard_run(struct shard *sh); /* returns when SIGINT/SIGTERM arrive and work has drained */
void shard_destroy(struct shard *sh);

/* Topics and partitions of this shard. */
struct topic_state *shard_topic_find(struct shard *sh, struct kstr name);
struct topic_state *shard_topic_find_id(struct shard *sh, struct kuuid id);
struct partition *shard_partition_find(struct shard *sh, struct kstr topic, int32_t index);
/* Make a metadata topic live on this shard: open its partition logs. */
int shard_topic_attach(struct shard *sh, const struct topic *t, struct topic_state **out);
/* Create a topic (metadata + logs). Returns 0 or a Kafka error code (> 0). */
int16_t shard_topic_create(struct shard *sh, struct kstr name, int32_t partitions,
			   const struct topic_config_entry *configs, int n_configs,
			   struct topic_state **out);
/* Delete a topic: fail its waiters, delete its logs, then the metadata. */
int16_t shard_topic_delete(struct shard *sh, struct topic_state *ts);

/* An SQE on the shard's ring; submits queued ones first if the queue is
 * full. NULL only if the kernel will not take any. */
struct io_uring_sqe *shard_sqe(struct shard *sh);

/* Mark a partition appended-to in this turn (group commit at turn end). */
void shard_partition_dirty(struct shard *sh, struct partition *p);

#endif

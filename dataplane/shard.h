/*
 * shard: one pinned thread that owns an io_uring, its connections, its
 * partitions and their logs, and runs every request to completion.
 *
 * A loop turn: submit what is queued and wait for completions (or the next
 * timer, or a doorbell from another shard), dispatch a burst of completions
 * (network reads run the requests they complete), run the calls other shards
 * sent (xcall.h), then group-commit: every log appended to in the turn gets
 * one write and one fdatasync. Parked fetches are re-evaluated when a high
 * watermark moved or their wait ran out.
 *
 * Partitions belong to shards by placement.h's hash of topic and partition.
 * Every shard knows every topic (so it can route and describe them) but
 * opens only the logs it owns; a request that touches another shard's
 * partition sends that part there as an xcall and answers once every part
 * is back.
 *
 * Threading: every function here runs on the shard's own thread and takes
 * the shard explicitly; nothing in a shard is touched by another thread
 * except through xcalls and the atomics marked in node.h and here.
 */
#ifndef SLUICE_SHARD_H
#define SLUICE_SHARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/uio.h>

#include "config.h"
#include "conn.h"
#include "kafka/kafka_wire.h"
#include "limits.h"
#include "metadata.h"
#include "read_pool.h"
#include "storage/bufpool.h"
#include "storage/sio.h"
#include "storage/log.h"
#include "storage/uring_op.h"
#include "xcall.h"

struct shard;
struct conn;
struct request;
struct node;
struct xproduce;

/* A produce waiting for its bytes to become durable in one partition.
 * Queued on the partition in offset order (appends are in order, so a FIFO
 * is sorted). A local produce's wait lives in its request's arena; one
 * forwarded from another shard is that request's message (x). Other
 * writers (the group coordinator's records) set done instead, which is
 * called once the wait is resolved (*error_code tells how). */
struct durable_wait {
	struct request *req;  /* local produce, or NULL */
	struct xproduce *x;   /* forwarded produce, or NULL */
	void (*done)(struct shard *sh, struct durable_wait *w); /* or NULL */
	int64_t offset_needed; /* high watermark that makes the batch durable */
	int16_t *error_code;   /* where to record a failure */
	struct durable_wait *next;
};

struct partition {
	struct shard *sh;
	struct topic_state *topic;
	int32_t index;
	int32_t owner;                   /* shard that owns the log */
	struct plog *log;                /* owner only; NULL elsewhere */
	bool dirty;                      /* appended to in this turn */
	struct partition *dirty_next;
	bool sync_owed;                  /* flush=interval: an fdatasync is due later */
	struct partition *sync_next;
	struct durable_wait *waits_head, *waits_tail;
	uint64_t watchers;               /* shards with a fetch parked on this partition */
};

/* A topic as one shard sees it: every shard has every topic, with the logs
 * of the partitions it owns. */
struct topic_state {
	const struct topic *meta; /* owned by metadata; lives until every shard detached */
	struct partition *parts;  /* [n_parts] */
	int32_t n_parts;
	int32_t n_owned;
	bool deleting;            /* shard 0: a delete is being broadcast */
	struct topic_state *by_name_next, *by_id_next;
	struct topic_state *list_next, *list_prev; /* creation order */
};

#define TOPIC_TABLE_BUCKETS 16384
_Static_assert((TOPIC_TABLE_BUCKETS & (TOPIC_TABLE_BUCKETS - 1)) == 0, "power of two");

/* The shard's memory budget (memory.per.shard.bytes). The fixed pools (the
 * provided receive buffers, the write-buffer pool) are mapped at start-up
 * and subtracted from it; `used` counts what comes and goes: partial
 * frames, requests with their arenas, responses and fetch buffers, batches
 * too large for a pool buffer. Charges are plain adds (one thread). At the
 * end of a turn the shard pauses reading from sockets when `used` is above
 * high water or the write pool is nearly empty, and resumes once both are
 * back below their low marks. */
struct shard_mem {
	int64_t limit, high, low;
	int64_t used;
	bool paused;
	int64_t paused_low;      /* least `used` seen while paused */
	int64_t paused_progress_ms; /* when paused_low last went down */
	uint64_t pauses; /* times the budget paused reading */
};

static inline void shard_mem_charge(struct shard_mem *m, int64_t delta)
{
	m->used += delta;
}

/* Counters: plain increments by the owning thread; printed on SIGUSR1 and
 * at exit (a torn read from another thread would only misprint). */
struct shard_stats {
	uint64_t requests, bytes_in, bytes_out, batches, records_appended_bytes, fetch_bytes;
	uint64_t flushes, conns_accepted, conns_closed, protocol_errors;
	uint64_t zc_sends, recv_nobufs; /* sendmsg_zc issued; recvs ended by -ENOBUFS */
	uint64_t xcalls_sent, xcalls_received, xcall_overflows, doorbells;
	uint64_t produce_forwarded, fetch_forwarded, fetch_notifies;
	uint64_t fetch_cold; /* partition reads that went to the disk (io_uring) */
	int64_t turn_max_us; /* the longest loop turn since the last stats line */
	uint64_t turns, sleeps;
};

/* Admin work done by shard 0, which owns the metadata: topic creation and
 * deletion (broadcast to every shard) and producer ids. The caller owns
 * the op until finish runs on the caller's shard. */
enum topic_op_kind {
	TOPIC_OP_CREATE,
	TOPIC_OP_DELETE,
	TOPIC_OP_PRODUCER_ID,
	TOPIC_OP_ADD_PARTITIONS, /* name, partitions: the new total */
};

struct topic_op {
	struct xcall xc;
	enum topic_op_kind kind;
	/* in */
	struct kstr name;      /* create, delete by name (memory owned by the caller) */
	struct kuuid id;       /* delete by id */
	bool by_id;
	int32_t partitions;
	const struct topic_config_entry *configs;
	int n_configs;
	/* out */
	int16_t error;
	const struct topic *topic;  /* create: the new topic */
	struct kuuid deleted_id;    /* delete: what was deleted */
	char deleted_name[TOPIC_NAME_LEN_MAX + 1];
	int64_t producer_id;
	/* caller */
	void (*finish)(struct shard *sh, struct topic_op *op);
	void *arg;
	/* shard 0 */
	int acks_pending;
	void *bcast;
	struct topic *retired; /* add partitions: the topic's old metadata, freed when done */
};

struct shard {
	int id;
	struct node *node;
	int n_shards;
	struct io_uring ring;
	bool ring_ready;
	const struct broker_config *cfg;
	int64_t now_ms; /* CLOCK_MONOTONIC ms, refreshed each turn */
	int64_t now_us;

	struct topic_state *topics_by_name[TOPIC_TABLE_BUCKETS];
	struct topic_state *topics_by_id[TOPIC_TABLE_BUCKETS];
	struct topic_state *topics_head, *topics_tail;
	int n_topics;

	int listen_fd;      /* shared port: shard 0 only; per-shard: every shard */
	struct uring_op accept_op;
	bool accept_armed;
	int next_handoff;   /* round robin over shards for shared-port connections */

	int signal_fd;      /* shard 0 only */
	struct uring_op signal_op;
	struct signalfd_siginfo siginfo;
	bool stopping;
	uint32_t stats_gen;

	/* Cross-shard calls (xcall.c). */
	_Alignas(64) _Atomic bool sleeping;
	int wake_fd;
	struct uring_op wake_op;
	uint64_t wake_buf;
	bool wake_armed;
	struct xcall *xq_head[SHARDS_MAX], *xq_tail[SHARDS_MAX];
	struct xcall *self_head, *self_tail;
	uint64_t xwake_mask;
	int x_outstanding;      /* calls sent, not answered yet */
	uint64_t notify_mask;   /* shards to tell that a watched partition moved */
	struct xcall *notify_x[SHARDS_MAX]; /* one per target, reused */
	bool notify_busy[SHARDS_MAX];
	int64_t idle_since_us;

	struct conn *conns;         /* open */
	struct conn *closing_conns; /* closed, freed by conn_reap */
	int n_conns;                /* both lists */

	struct partition *dirty_head;     /* logs to group-commit this turn */
	struct partition *sync_head;      /* flush=interval: logs owed an fdatasync */
	struct request *fetch_waiters;    /* parked fetches, doubly linked */
	int n_fetch_waiters;
	bool fetch_recheck;               /* a high watermark moved this turn */
	uint64_t fetch_pass;              /* fetch_recheck_all passes so far */

	int64_t retention_next_ms; /* next retention pass (shard_retention.c) */

	struct request *free_requests;
	int n_free_requests;
	int64_t accept_resume_ms; /* > 0: accept paused (out of fds) until then */
	struct shard_stats stats;
	struct shard_mem mem;
	struct bufpool wpool;   /* write buffers of every log this shard owns */
	bool wpool_ready;
	/* Fetch reads gone to the disk (io_uring), and those waiting for
	 * one of the log.read.concurrency.max places. */
	int disk_reads;
	struct xfetch *disk_wait_head, *disk_wait_tail;
	struct read_pool rpool; /* windows those reads land in (read_pool.h) */
	struct sio sio;         /* how those logs reach the disk (O_DIRECT,
				 * registered buffers and files, faults) */
	bool sio_ready;
	int64_t oversize_charged;
	struct shard_compact *compact; /* the log cleaner (shard_compact.h) */
	struct group_coord *groups;    /* the group coordinator (group.h) */
	struct net_shard net;
};

/* Shard thread: set up (on the shard's own thread: its io_uring belongs to
 * the thread that creates it), run until stopped and drained, tear down. */
int shard_init(struct shard *sh, int id, struct node *node);
int shard_run(struct shard *sh);
void shard_destroy(struct shard *sh);

/* Topics and partitions as this shard sees them (shard_topics.c). */
struct topic_state *shard_topic_find(struct shard *sh, struct kstr name);
struct topic_state *shard_topic_find_id(struct shard *sh, struct kuuid id);
struct partition *shard_partition_find(struct shard *sh, struct kstr topic, int32_t index);
/* The partition a forwarded call names, if this shard owns it; NULL when
 * its topic was deleted (or re-created) since the call was sent. */
struct xfetch;
struct partition *shard_partition_owned(struct shard *sh, struct kuuid topic_id, int32_t index);
/* Make a topic live on this shard: table entry, logs of owned partitions. */
int shard_topic_attach(struct shard *sh, const struct topic *t, struct topic_state **out);
/* Forget a topic on this shard: fail its waiters, delete its owned logs. */
void shard_topic_detach(struct shard *sh, struct topic_state *ts);
/* The topic has more partitions now (t, its new metadata): a larger
 * partition table (pointers into the old one are moved over), the logs of
 * the new partitions this shard owns opened. 0 or -errno (then nothing
 * changed). */
int shard_topic_grow(struct shard *sh, struct topic_state *ts, const struct topic *t);
void shard_topics_free(struct shard *sh);

/* Start an admin op on shard 0; op->finish runs on sh when it is done. */
void shard_topic_op(struct shard *sh, struct topic_op *op);
/* A finish for ops started by a request (op->arg): one of its remote parts
 * is back. */
void shard_topic_op_finish_request(struct shard *sh, struct topic_op *op);
/* Fire-and-forget auto-creation (a Produce to a missing topic). */
void shard_topic_autocreate(struct shard *sh, struct kstr name);

/* An SQE on the shard's ring; submits queued ones first if the queue is
 * full. NULL only if the kernel will not take any. */
struct io_uring_sqe *shard_sqe(struct shard *sh);

/* Queue w on p (a log this shard owns) until its high watermark reaches
 * offset_needed; a failure is written to *error_code. Appends are in
 * offset order, so the queue stays sorted. */
void partition_wait_durable(struct partition *p, struct durable_wait *w, int64_t offset_needed,
			    int16_t *error_code);

/* Mark a partition appended-to in this turn (group commit at turn end). */
void shard_partition_dirty(struct shard *sh, struct partition *p);
/* Keep p on the list of logs owed a flush at a deadline (flush=interval
 * syncs, write retries after ENOSPC): see plog_sync_deadline_ms. */
void shard_sync_owed(struct shard *sh, struct partition *p);

/* Retention (shard_retention.c), from the end of every turn: once
 * log.retention.check.interval.ms has passed, delete what retention.ms,
 * retention.bytes and DeleteRecords condemn in the logs this shard owns. */
void shard_retention_tick(struct shard *sh);

/* Run the retention pass at the end of this turn (a start offset moved). */
static inline void shard_retention_soon(struct shard *sh)
{
	sh->retention_next_ms = 0;
}

/* Kafka node id of the broker endpoint that serves partition p. */
int32_t shard_leader_id(const struct shard *sh, const struct partition *p);

#endif

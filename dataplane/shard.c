/*
 * shard: the per-core loop, its listener, signals, cross-shard wake-ups,
 * the memory budget and shutdown. Topic tables are in shard_topics.c. See
 * shard.h.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "group.h"
#include "kafka/kafka_errors.h"
#include "node.h"
#include "request.h"
#include "say.h"
#include "shard_compact.h"
#include "shard.h"
#include "storage/limits.h"

/* How long shutdown waits for in-flight writes to become durable. */
#define SHARD_DRAIN_TIMEOUT_MS 10000
/* Longest sleep of an idle loop: bounds how late interval flushes run. */
#define SHARD_IDLE_WAIT_MS 100
/* Budget hysteresis, in percent of the limit: reading pauses above high
 * and resumes below low, so a shard near its budget does not flap. */
#define SHARD_MEM_HIGH_PCT 85
#define SHARD_MEM_LOW_PCT 60

static int64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct io_uring_sqe *shard_sqe(struct shard *sh)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->ring);
	if (sqe == NULL) {
		/* Submission queue full: hand what is queued to the kernel. */
		io_uring_submit(&sh->ring);
		sqe = io_uring_get_sqe(&sh->ring);
	}
	return sqe;
}

/* ---- listener ---- */

/* The port this shard listens on: shard.endpoints=shared has one listener
 * (shard 0) that hands connections out; per-shard gives shard i port+i. */
static int32_t shard_listen_port(const struct shard *sh)
{
	if (config_per_shard_endpoints(sh->cfg))
		return sh->cfg->listen_port + sh->id;
	return sh->id == 0 ? sh->cfg->listen_port : -1;
}

static int listener_open(const struct broker_config *cfg, int32_t port_no, int *fd_out)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", port_no);
	int rc = getaddrinfo(cfg->listen_host, port, &hints, &res);
	if (rc != 0) {
		say_error("listeners: cannot resolve %s: %s", cfg->listen_host, gai_strerror(rc));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	int one = 1;
	/* Not SO_REUSEPORT: it would let a second broker bind the same port
	 * and silently take half the connections. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
		rc = -errno;
		say_error("cannot listen on %s:%d: %s", cfg->listen_host, port_no, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	*fd_out = fd;
	return 0;
}

static void shard_accept_done(struct uring_op *op, int res, uint32_t flags);

static void shard_accept_arm(struct shard *sh)
{
	if (sh->accept_armed || sh->stopping || sh->listen_fd < 0)
		return;
	if (sh->accept_resume_ms > 0) {
		if (sh->now_ms < sh->accept_resume_ms)
			return;
		sh->accept_resume_ms = 0;
	}
	struct io_uring_sqe *sqe = shard_sqe(sh);
	if (sqe == NULL)
		return;
	io_uring_prep_multishot_accept(sqe, sh->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	uring_op_prep(sqe, &sh->accept_op);
	sh->accept_armed = true;
}

/* A connection accepted on the shared port, handed to another shard. */
struct conn_handoff {
	struct xcall xc;
	int fd;
};

/* Count a new connection against max.connections (process-wide: an
 * atomic, but only touched at accept and close). False: closed. */
static bool conn_admit(struct shard *sh, int fd)
{
	if (sh->stopping) {
		close(fd);
		return false;
	}
	if (atomic_fetch_add(&sh->node->n_conns, 1) >= sh->cfg->max_connections) {
		atomic_fetch_sub(&sh->node->n_conns, 1);
		say_warn("max.connections (%d) reached: closing a new connection",
			 sh->cfg->max_connections);
		close(fd);
		return false;
	}
	return true;
}

static void conn_adopt(struct shard *sh, int fd)
{
	if (sh->stopping) {
		/* Handed over while the node began to stop. */
		atomic_fetch_sub(&sh->node->n_conns, 1);
		close(fd);
		return;
	}
	sh->stats.conns_accepted++;
	conn_start(sh, fd);
}

static void conn_handoff_run(struct shard *sh, struct xcall *x)
{
	struct conn_handoff *h = container_of(x, struct conn_handoff, xc);
	conn_adopt(sh, h->fd);
	free(h);
}

/* Spread shared-port connections over the shards in turn: counts stay even
 * however the clients' addresses hash. */
static void shard_handoff(struct shard *sh, int fd)
{
	int target = sh->next_handoff;
	sh->next_handoff = (sh->next_handoff + 1) % sh->n_shards;
	if (target == sh->id) {
		conn_adopt(sh, fd);
		return;
	}
	struct conn_handoff *h = malloc(sizeof(*h));
	if (h == NULL) {
		conn_adopt(sh, fd);
		return;
	}
	h->fd = fd;
	xcall_send(sh, target, &h->xc, conn_handoff_run, NULL);
}

static void shard_accept_done(struct uring_op *op, int res, uint32_t flags)
{
	struct shard *sh = container_of(op, struct shard, accept_op);
	if (!(flags & IORING_CQE_F_MORE))
		sh->accept_armed = false;
	if (res >= 0) {
		if (conn_admit(sh, res)) {
			if (config_per_shard_endpoints(sh->cfg))
				conn_adopt(sh, res);
			else
				shard_handoff(sh, res);
		}
	} else if (res == -EMFILE || res == -ENFILE) {
		/* Out of file descriptors: stop accepting for a while rather
		 * than failing again on every loop turn. */
		if (sh->accept_resume_ms == 0)
			say_warn("accept: %s: pausing new connections for %d ms (raise the "
				 "open-file limit or lower max.connections)", strerror(-res),
				 ACCEPT_BACKOFF_MS);
		sh->accept_resume_ms = sh->now_ms + ACCEPT_BACKOFF_MS;
		return; /* an error ends the multishot; re-armed after the pause */
	} else if (!sh->stopping && res != -ECANCELED && res != -EBADF && res != -EINVAL) {
		say_warn("accept: %s", strerror(-res));
	}
	shard_accept_arm(sh);
}

/* ---- signals (shard 0), doorbell, stats ---- */

static void shard_signal_done(struct uring_op *op, int res, uint32_t flags);

static void shard_signal_arm(struct shard *sh)
{
	if (sh->signal_fd < 0)
		return;
	struct io_uring_sqe *sqe = shard_sqe(sh);
	if (sqe == NULL)
		return;
	io_uring_prep_read(sqe, sh->signal_fd, &sh->siginfo, sizeof(sh->siginfo), 0);
	uring_op_prep(sqe, &sh->signal_op);
}

/* Wake every shard (stop or stats requests): they check on their turn. */
static void node_wake_all(struct node *n)
{
	uint64_t one = 1;
	for (int i = 0; i < n->n_shards; i++)
		if (write(n->shards[i]->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			say_warn("waking shard %d: %s", i, strerror(errno));
}

static void shard_signal_done(struct uring_op *op, int res, uint32_t flags)
{
	struct shard *sh = container_of(op, struct shard, signal_op);
	(void)flags;
	if (res == (int)sizeof(sh->siginfo)) {
		if (sh->siginfo.ssi_signo == SIGUSR1) {
			atomic_fetch_add(&sh->node->stats_gen, 1);
		} else {
			say_info("signal %u: stopping", sh->siginfo.ssi_signo);
			atomic_store(&sh->node->stop, true);
			node_wake_all(sh->node);
			return;
		}
		node_wake_all(sh->node);
	}
	shard_signal_arm(sh);
}

static void shard_wake_done(struct uring_op *op, int res, uint32_t flags);

static void shard_wake_arm(struct shard *sh)
{
	if (sh->wake_armed)
		return;
	struct io_uring_sqe *sqe = shard_sqe(sh);
	if (sqe == NULL)
		return;
	io_uring_prep_read(sqe, sh->wake_fd, &sh->wake_buf, sizeof(sh->wake_buf), 0);
	uring_op_prep(sqe, &sh->wake_op);
	sh->wake_armed = true;
}

static void shard_wake_done(struct uring_op *op, int res, uint32_t flags)
{
	struct shard *sh = container_of(op, struct shard, wake_op);
	(void)res;
	(void)flags;
	sh->wake_armed = false;
	shard_wake_arm(sh);
}

static void shard_stats_print(struct shard *sh)
{
	const struct shard_stats *s = &sh->stats;
	int queued = 0;
	for (int i = 0; i < sh->n_shards; i++)
		if (i != sh->id)
			queued += (int)spsc_count(node_ring(sh->node, i, sh->id));
	uint64_t index_mem = 0, index_mapped = 0;
	for (struct topic_state *ts = sh->topics_head; ts != NULL; ts = ts->list_next)
		for (int32_t i = 0; i < ts->n_parts; i++)
			if (ts->parts[i].log != NULL)
				plog_index_bytes(ts->parts[i].log, &index_mem, &index_mapped);
	say_info("shard %d: requests=%llu bytes_in=%llu bytes_out=%llu batches=%llu "
		 "flushes=%llu conns=%d accepted=%llu closed=%llu protocol_errors=%llu "
		 "xcalls_sent=%llu xcalls_received=%llu xcall_overflows=%llu doorbells=%llu "
		 "produce_forwarded=%llu fetch_forwarded=%llu fetch_notifies=%llu "
		 "xcall_queue=%d xcalls_outstanding=%d parked_fetches=%d mem_used=%lld "
		 "mem_limit=%lld mem_pauses=%llu turns=%llu sleeps=%llu zc_sends=%llu "
		 "recv_nobufs=%llu fetch_cold=%llu tail_cache_bytes=%llu tail_cache_evictions=%llu "
		 "direct_writes=%llu fixed_buf_writes=%llu zeroed_bytes=%llu storage_faults=%llu "
		 "turn_max_us=%lld cold_fixed_reads=%llu cold_plain_reads=%llu read_pool_free=%u "
		 "read_pool_waits=%llu index_mem_bytes=%llu index_mapped_bytes=%llu",
		 sh->id, (unsigned long long)s->requests, (unsigned long long)s->bytes_in,
		 (unsigned long long)s->bytes_out, (unsigned long long)s->batches,
		 (unsigned long long)s->flushes, sh->n_conns,
		 (unsigned long long)s->conns_accepted, (unsigned long long)s->conns_closed,
		 (unsigned long long)s->protocol_errors, (unsigned long long)s->xcalls_sent,
		 (unsigned long long)s->xcalls_received, (unsigned long long)s->xcall_overflows,
		 (unsigned long long)s->doorbells, (unsigned long long)s->produce_forwarded,
		 (unsigned long long)s->fetch_forwarded, (unsigned long long)s->fetch_notifies,
		 queued, sh->x_outstanding, sh->n_fetch_waiters, (long long)sh->mem.used,
		 (long long)sh->mem.limit, (unsigned long long)sh->mem.pauses,
		 (unsigned long long)s->turns, (unsigned long long)s->sleeps,
		 (unsigned long long)s->zc_sends, (unsigned long long)s->recv_nobufs,
		 (unsigned long long)s->fetch_cold,
		 (unsigned long long)sh->wpool.n_retained * WBUF_BYTES,
		 (unsigned long long)sh->wpool.evictions,
		 (unsigned long long)sh->sio.stats.direct_writes,
		 (unsigned long long)sh->sio.stats.fixed_buf_writes,
		 (unsigned long long)sh->sio.stats.zeroed_bytes,
		 (unsigned long long)sh->sio.stats.faults_injected,
		 (long long)s->turn_max_us,
		 (unsigned long long)sh->sio.stats.fixed_buf_reads,
		 (unsigned long long)(sh->sio.stats.reads - sh->sio.stats.fixed_buf_reads),
		 read_pool_free_count(&sh->rpool), (unsigned long long)sh->rpool.waits,
		 (unsigned long long)index_mem, (unsigned long long)index_mapped);
	sh->stats.turn_max_us = 0; /* the longest since the last print */
	shard_compact_stats_print(sh);
	group_coord_stats_print(sh);
}

static void shard_stop(struct shard *sh)
{
	if (sh->stopping)
		return;
	sh->stopping = true;
	if (sh->listen_fd >= 0) {
		/* The armed multishot accept holds a reference to the socket, so
		 * close() alone would leave it listening until io_uring lets go
		 * (even past exit). shutdown() stops listening now and completes
		 * the accept; shard_drained waits for that completion. */
		shutdown(sh->listen_fd, SHUT_RDWR);
		close(sh->listen_fd);
		sh->listen_fd = -1;
	}
	conn_close_all(sh);
}

/* ---- fetch watch notifications ---- */

static void shard_notify_run(struct shard *sh, struct xcall *x)
{
	sh->fetch_recheck = true;
	sh->stats.fetch_notifies++;
	xcall_reply(sh, x);
}

static void shard_notify_done(struct shard *sh, struct xcall *x)
{
	sh->notify_busy[x->dst] = false;
}

/* Tell shards with fetches parked on partitions of ours that moved. One
 * message per shard in flight; a shard whose message is still out keeps its
 * bit and is told again once it answered. */
static void shard_notify_send(struct shard *sh)
{
	uint64_t mask = sh->notify_mask;
	while (mask != 0) {
		int dst = __builtin_ctzll(mask);
		mask &= mask - 1;
		if (sh->notify_busy[dst])
			continue;
		sh->notify_busy[dst] = true;
		sh->notify_mask &= ~(1ull << dst);
		xcall_send(sh, dst, sh->notify_x[dst], shard_notify_run, shard_notify_done);
	}
}

/* ---- init ---- */

static int shard_fds_open(struct shard *sh)
{
	sh->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sh->wake_fd < 0)
		return -errno;
	if (sh->id == 0) {
		sigset_t mask;
		sigemptyset(&mask);
		sigaddset(&mask, SIGINT);
		sigaddset(&mask, SIGTERM);
		sigaddset(&mask, SIGUSR1);
		sh->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
		if (sh->signal_fd < 0)
			return -errno;
	}
	int32_t port = shard_listen_port(sh);
	return port < 0 ? 0 : listener_open(sh->cfg, port, &sh->listen_fd);
}

/*
 * Sizing, per shard (docs/ARCHITECTURE.md, "Memory"):
 *   memory.per.shard.bytes = receive buffers (recv.buffers.per.shard x
 *                            recv.buffer.bytes, mapped at start-up)
 *                          + write pool (write.buffer.pool.bytes, default
 *                            1/8 of the budget, mapped at start-up)
 *                          + read pool (log.read.buffer.bytes, default
 *                            log.read.concurrency.max x 1 MiB windows, at
 *                            most 1/16 of the budget, mapped at start-up)
 *                          + the rest, for memory that comes and goes.
 * config_validate insists the rest holds two requests of the largest size.
 */
static void shard_mem_init(struct shard *sh)
{
	const struct broker_config *cfg = sh->cfg;
	int64_t fixed = (int64_t)cfg->recv_buffers * cfg->recv_buffer_bytes +
			config_write_pool_bytes(cfg) + config_read_pool_bytes(cfg);
	sh->mem.limit = cfg->memory_per_shard_bytes - fixed;
	sh->mem.high = sh->mem.limit / 100 * SHARD_MEM_HIGH_PCT;
	sh->mem.low = sh->mem.limit / 100 * SHARD_MEM_LOW_PCT;
}

int shard_init(struct shard *sh, int id, struct node *node)
{
	sh->id = id;
	sh->node = node;
	sh->n_shards = node->n_shards;
	sh->cfg = node->cfg;
	sh->listen_fd = sh->signal_fd = sh->wake_fd = -1;
	sh->accept_op.done = shard_accept_done;
	sh->signal_op.done = shard_signal_done;
	sh->wake_op.done = shard_wake_done;
	shard_mem_init(sh);
	say_set_shard(id);

	struct io_uring_params p = { 0 };
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	int rc = io_uring_queue_init_params(SHARD_RING_ENTRIES, &sh->ring, &p);
	if (rc == -EINVAL) {
		/* Kernels before 6.1 lack these flags: same semantics, a bit slower. */
		memset(&p, 0, sizeof(p));
		rc = io_uring_queue_init_params(SHARD_RING_ENTRIES, &sh->ring, &p);
	}
	if (rc != 0) {
		say_error("io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	sh->ring_ready = true;
	rc = net_shard_init(sh);
	if (rc != 0)
		return rc;
	/* Mapped (and prefaulted) by the shard's own pinned thread, so the
	 * pages are local to its CPU. */
	rc = bufpool_init(&sh->wpool, (size_t)config_write_pool_bytes(sh->cfg),
			  hugemem_policy_parse(sh->cfg->hugepages));
	if (rc != 0) {
		say_error("write buffer pool of %lld bytes: %s",
			  (long long)config_write_pool_bytes(sh->cfg), strerror(-rc));
		return rc;
	}
	sh->wpool_ready = true;
	sh->wpool.retain_max = (uint32_t)(config_tail_cache_bytes(sh->cfg) / WBUF_BYTES);
	rc = read_pool_init(sh);
	if (rc != 0)
		return rc;
	struct sio_config sc = { .direct = sh->cfg->log_direct_io, .faults = sh->cfg->storage_faults };
	rc = sio_init(&sh->sio, &sh->ring, &sc);
	if (rc != 0) {
		say_error("storage backend: %s", strerror(-rc));
		return rc;
	}
	sh->sio_ready = true;
	/* The pools are registered with the ring in shard_run, once every
	 * shard's read pool exists (read_pool_register). */
	for (int i = 0; i < sh->n_shards; i++) {
		sh->notify_x[i] = calloc(1, sizeof(struct xcall));
		if (sh->notify_x[i] == NULL)
			return -ENOMEM;
	}
	rc = shard_compact_init(sh);
	if (rc != 0)
		return rc;
	int owned = 0;
	for (int i = 0; i < metadata_topic_count(node->md); i++) {
		struct topic_state *ts;
		rc = shard_topic_attach(sh, metadata_topic_at(node->md, i), &ts);
		if (rc != 0)
			return rc;
		owned += ts->n_owned;
	}
	if (sh->n_shards > 1)
		say_info("shard %d owns %d partitions", id, owned);
	rc = group_coord_init(sh); /* after the topics: it loads its partitions */
	if (rc != 0)
		return rc;
	return shard_fds_open(sh);
}

/* ---- group commit ---- */

void shard_sync_owed(struct shard *sh, struct partition *p)
{
	if (p->sync_owed || plog_sync_deadline_ms(p->log) < 0)
		return;
	p->sync_owed = true;
	p->sync_next = sh->sync_head;
	sh->sync_head = p;
}

/* Group commit: one write (and one fdatasync, per flush mode) per log that
 * was appended to in this turn. */
static void shard_flush_dirty(struct shard *sh)
{
	struct partition *p = sh->dirty_head, *keep = NULL;
	sh->dirty_head = NULL;
	while (p != NULL) {
		struct partition *next = p->dirty_next;
		int rc = plog_flush(p->log, &sh->ring, sh->now_ms);
		if (rc == -EBUSY) {
			/* No free SQE: retry next turn. */
			p->dirty_next = keep;
			keep = p;
		} else {
			p->dirty = false;
			if (rc > 0)
				sh->stats.flushes++;
			shard_sync_owed(sh, p);
		}
		p = next;
	}
	sh->dirty_head = keep;
}

/* flush=interval: logs whose data is written but not yet synced get their
 * fdatasync once log.flush.interval.ms has passed. */
static void shard_flush_owed(struct shard *sh)
{
	struct partition **pp = &sh->sync_head;
	while (*pp != NULL) {
		struct partition *p = *pp;
		int64_t due = plog_sync_deadline_ms(p->log);
		if (due >= 0 && due <= sh->now_ms && plog_flush(p->log, &sh->ring, sh->now_ms) > 0)
			sh->stats.flushes++;
		if (plog_sync_deadline_ms(p->log) < 0 || plog_error(p->log) != 0) {
			*pp = p->sync_next;
			p->sync_owed = false;
		} else {
			pp = &p->sync_next;
		}
	}
}

static int64_t shard_next_sync_ms(struct shard *sh)
{
	int64_t best = -1;
	for (struct partition *p = sh->sync_head; p != NULL; p = p->sync_next) {
		int64_t due = plog_sync_deadline_ms(p->log);
		if (due >= 0 && (best < 0 || due < best))
			best = due;
	}
	return best;
}

/* ---- the loop ---- */

/* Pool buffers free, in percent, below which reading pauses (and above
 * which it may resume): producers wait in their socket buffers instead of
 * getting BUFFER_FULL errors. */
#define SHARD_WPOOL_PAUSE_PCT 15
#define SHARD_WPOOL_RESUME_PCT 40
/* A pause that frees nothing for this long is lifted: the memory may be
 * held by frames that can only complete by reading more (every connection
 * paused halfway through a request), and then waiting frees nothing. */
#define SHARD_MEM_STALL_MS 200

static void shard_mem_check(struct shard *sh)
{
	struct shard_mem *m = &sh->mem;
	/* Batches larger than a pool buffer get memory of their own. */
	int64_t oversize = (int64_t)sh->wpool.oversize_bytes;
	shard_mem_charge(m, oversize - sh->oversize_charged);
	sh->oversize_charged = oversize;
	uint64_t free_pct = (uint64_t)bufpool_free_count(&sh->wpool) * 100 /
			    bufpool_total_count(&sh->wpool);
	if (m->paused && m->used < m->paused_low) {
		m->paused_low = m->used;
		m->paused_progress_ms = sh->now_ms;
	}
	bool stalled = m->paused && sh->now_ms - m->paused_progress_ms > SHARD_MEM_STALL_MS;
	if (!m->paused && (m->used > m->high || free_pct < SHARD_WPOOL_PAUSE_PCT)) {
		m->paused = true;
		m->paused_low = m->used;
		m->paused_progress_ms = sh->now_ms;
		m->pauses++;
		say_debug("memory budget: %lld of %lld bytes in use, %llu%% of write buffers "
			  "free: pausing reads", (long long)m->used, (long long)m->limit,
			  (unsigned long long)free_pct);
	} else if (m->paused &&
		   ((m->used < m->low && free_pct > SHARD_WPOOL_RESUME_PCT) || stalled)) {
		m->paused = false;
		conn_resume_all(sh);
	}
}

/* Nothing of ours in flight: no connections, no writes, no calls. */
static bool shard_drained(struct shard *sh)
{
	if (sh->n_conns > 0 || sh->dirty_head != NULL || sh->accept_armed ||
	    sh->x_outstanding > 0 || xcall_queued(sh) || xcall_incoming(sh) ||
	    !group_coord_idle(sh))
		return false;
	for (struct topic_state *ts = sh->topics_head; ts != NULL; ts = ts->list_next)
		for (int32_t i = 0; i < ts->n_parts; i++) {
			struct plog *l = ts->parts[i].log;
			if (l != NULL && plog_error(l) == 0 && !plog_idle(l))
				return false;
		}
	return true;
}

/* Shutdown ends when every shard is drained at once: until then a drained
 * shard keeps answering calls from the others. */
static bool node_drained(struct shard *sh)
{
	struct node *n = sh->node;
	bool mine = shard_drained(sh);
	atomic_store(&n->drained[sh->id], mine);
	if (!mine)
		return false;
	for (int i = 0; i < n->n_shards; i++)
		if (!atomic_load(&n->drained[i]))
			return false;
	return true;
}

static int64_t shard_wait_ms(struct shard *sh)
{
	int64_t wait = SHARD_IDLE_WAIT_MS;
	int64_t deadlines[5] = { fetch_next_deadline_ms(sh), shard_next_sync_ms(sh),
				 sh->accept_resume_ms > 0 ? sh->accept_resume_ms : -1,
				 shard_compact_deadline_ms(sh), group_coord_deadline_ms(sh) };
	for (int i = 0; i < 5; i++) {
		if (deadlines[i] < 0)
			continue;
		int64_t d = deadlines[i] - sh->now_ms;
		if (d < wait)
			wait = d < 0 ? 0 : d;
	}
	if (sh->dirty_head != NULL || sh->notify_mask != 0 || xcall_queued(sh))
		wait = 0;
	if (sh->stopping && wait > 10)
		wait = 10; /* shutdown polls the other shards' drained flags */
	if (wait > 0 && sh->cfg->shard_poll_us > 0 &&
	    sh->now_us - sh->idle_since_us < sh->cfg->shard_poll_us)
		wait = 0; /* busy-poll a while before sleeping */
	return wait;
}

/* Announce the sleep, then look for messages once more: a sender either
 * sees us asleep (and rings) or we see its message here. */
static int64_t shard_sleep_begin(struct shard *sh, int64_t wait_ms)
{
	if (wait_ms == 0 || sh->n_shards == 1)
		return wait_ms;
	atomic_store_explicit(&sh->sleeping, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (xcall_incoming(sh)) {
		atomic_store_explicit(&sh->sleeping, false, memory_order_relaxed);
		return 0;
	}
	sh->stats.sleeps++;
	return wait_ms;
}

static void shard_turn_end(struct shard *sh)
{
	shard_flush_dirty(sh);
	shard_flush_owed(sh);
	shard_compact_turn(sh); /* after this turn's writes are queued */
	group_coord_turn(sh);   /* timers, loading, expiry: may append records */
	fetch_recheck_all(sh, sh->fetch_recheck);
	sh->fetch_recheck = false;
	shard_notify_send(sh);
	conn_reap(sh);
	shard_retention_tick(sh);
	shard_mem_check(sh);
	shard_accept_arm(sh); /* after an out-of-fds pause */
	xcall_ring_doorbells(sh);
}

static void shard_turn_checks(struct shard *sh)
{
	struct node *n = sh->node;
	if (!sh->stopping && atomic_load_explicit(&n->stop, memory_order_relaxed))
		shard_stop(sh);
	uint32_t gen = atomic_load_explicit(&n->stats_gen, memory_order_relaxed);
	if (gen != sh->stats_gen) {
		sh->stats_gen = gen;
		shard_stats_print(sh);
	}
}

int shard_run(struct shard *sh)
{
	int64_t stop_deadline = -1;
	sh->now_us = monotonic_us();
	sh->now_ms = sh->now_us / 1000;
	sh->idle_since_us = sh->now_us;
	/* Writes from the write pool become WRITE_FIXED, cold reads into any
	 * shard's read windows READ_FIXED: no page pinning per I/O. */
	read_pool_register(sh);
	shard_accept_arm(sh);
	shard_signal_arm(sh);
	shard_wake_arm(sh);

	for (;;) {
		int64_t wait_ms = shard_sleep_begin(sh, shard_wait_ms(sh));
		struct __kernel_timespec ts = { .tv_sec = wait_ms / 1000,
						.tv_nsec = (wait_ms % 1000) * 1000000 };
		struct io_uring_cqe *cqe;
		int rc = io_uring_submit_and_wait_timeout(&sh->ring, &cqe, 1, &ts, NULL);
		atomic_store_explicit(&sh->sleeping, false, memory_order_relaxed);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
			say_error("io_uring_submit_and_wait: %s", strerror(-rc));
			return rc;
		}
		sh->now_us = monotonic_us();
		sh->now_ms = sh->now_us / 1000;
		sh->stats.turns++;

		unsigned head, n = 0;
		io_uring_for_each_cqe(&sh->ring, head, cqe) {
			uring_op_dispatch(cqe);
			if (++n == SHARD_CQE_BURST_MAX)
				break;
		}
		io_uring_cq_advance(&sh->ring, n);
		int ran = xcall_poll(sh);
		if (n > 0 || ran > 0)
			sh->idle_since_us = sh->now_us;

		shard_turn_checks(sh);
		shard_turn_end(sh);
		/* The longest turn: how long a request may wait behind the
		 * work of others on this shard. */
		int64_t took = monotonic_us() - sh->now_us;
		if (took > sh->stats.turn_max_us)
			sh->stats.turn_max_us = took;

		if (sh->stopping) {
			if (stop_deadline < 0)
				stop_deadline = sh->now_ms + SHARD_DRAIN_TIMEOUT_MS;
			if (node_drained(sh))
				break;
			if (sh->now_ms > stop_deadline) {
				say_warn("shutdown: gave up waiting for in-flight writes");
				break;
			}
		}
	}
	shard_stats_print(sh);
	return 0;
}

void shard_destroy(struct shard *sh)
{
	group_coord_destroy(sh);
	shard_topics_free(sh); /* logs give their buffers back to the pool */
	shard_compact_destroy(sh);
	if (sh->sio_ready)
		sio_destroy(&sh->sio); /* unregisters the pool before it goes */
	if (sh->wpool_ready)
		bufpool_destroy(&sh->wpool);
	request_free_all(sh);
	if (sh->listen_fd >= 0)
		close(sh->listen_fd);
	if (sh->signal_fd >= 0)
		close(sh->signal_fd);
	if (sh->ring_ready) {
		net_shard_destroy(sh);
		io_uring_queue_exit(&sh->ring);
	}
	read_pool_destroy(sh); /* after the ring: no read of ours still lands in it */
	if (sh->wake_fd >= 0)
		close(sh->wake_fd);
	for (int i = 0; i < sh->n_shards; i++)
		free(sh->notify_x[i]);
}

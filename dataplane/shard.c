/*
 * shard: the per-core loop, its listener, and its table of topics and
 * partitions. See shard.h.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "kafka/kafka_errors.h"
#include "request.h"
#include "say.h"
#include "shard.h"

/* How long shutdown waits for in-flight writes to become durable. */
#define SHARD_DRAIN_TIMEOUT_MS 10000
/* Longest sleep of an idle loop: bounds how late interval flushes run. */
#define SHARD_IDLE_WAIT_MS 100

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* ---- topics and partitions ---- */

struct topic_state *shard_topic_find(struct shard *sh, struct kstr name)
{
	if (name.len <= 0)
		return NULL;
	uint32_t b = hash_bytes(name.ptr, (size_t)name.len) & (TOPIC_TABLE_BUCKETS - 1);
	for (struct topic_state *ts = sh->topics_by_name[b]; ts != NULL; ts = ts->by_name_next)
		if (kstr_eq_cstr(name, ts->meta->name))
			return ts;
	return NULL;
}

struct topic_state *shard_topic_find_id(struct shard *sh, struct kuuid id)
{
	uint32_t b = hash_bytes(id.b, sizeof(id.b)) & (TOPIC_TABLE_BUCKETS - 1);
	for (struct topic_state *ts = sh->topics_by_id[b]; ts != NULL; ts = ts->by_id_next)
		if (memcmp(ts->meta->id.b, id.b, sizeof(id.b)) == 0)
			return ts;
	return NULL;
}

struct partition *shard_partition_find(struct shard *sh, struct kstr topic, int32_t index)
{
	struct topic_state *ts = shard_topic_find(sh, topic);
	if (ts == NULL || index < 0 || index >= ts->meta->partitions)
		return NULL;
	return &ts->parts[index];
}

static void partition_on_advance(void *arg, struct plog *log)
{
	struct partition *p = arg;
	(void)log;
	produce_waits_advance(p->sh, p);
	p->sh->fetch_recheck = true;
}

static void topic_log_config(const struct shard *sh, const struct topic *t, struct log_config *lc)
{
	memset(lc, 0, sizeof(*lc));
	lc->segment_bytes = t->segment_bytes;
	lc->index_interval_bytes = t->index_interval_bytes;
	lc->flush = (enum flush_mode)sh->cfg->flush;
	lc->flush_interval_ms = sh->cfg->flush_interval_ms;
}

static void topic_state_free(struct topic_state *ts)
{
	free(ts->parts);
	free(ts);
}

int shard_topic_attach(struct shard *sh, const struct topic *t, struct topic_state **out)
{
	struct topic_state *ts = calloc(1, sizeof(*ts));
	if (ts == NULL)
		return -ENOMEM;
	ts->meta = t;
	ts->n_parts = t->partitions;
	ts->parts = calloc((size_t)t->partitions, sizeof(ts->parts[0]));
	if (ts->parts == NULL) {
		free(ts);
		return -ENOMEM;
	}
	struct log_config lc;
	topic_log_config(sh, t, &lc);
	for (int32_t i = 0; i < t->partitions; i++) {
		struct partition *p = &ts->parts[i];
		char dir[PATH_MAX + TOPIC_NAME_LEN_MAX + 16];
		snprintf(dir, sizeof(dir), "%s/%s-%d", sh->cfg->data_dir, t->name, i);
		int err = 0;
		p->sh = sh;
		p->topic = ts;
		p->index = i;
		p->log = plog_open(dir, &lc, &err);
		if (p->log == NULL) {
			say_error("cannot open partition log %s: %s", dir, strerror(-err));
			for (int32_t j = 0; j < i; j++)
				plog_close(ts->parts[j].log);
			topic_state_free(ts);
			return err;
		}
		plog_set_listener(p->log, partition_on_advance, p);
	}
	uint32_t bn = hash_bytes(t->name, strlen(t->name)) & (TOPIC_TABLE_BUCKETS - 1);
	uint32_t bi = hash_bytes(t->id.b, sizeof(t->id.b)) & (TOPIC_TABLE_BUCKETS - 1);
	ts->by_name_next = sh->topics_by_name[bn];
	sh->topics_by_name[bn] = ts;
	ts->by_id_next = sh->topics_by_id[bi];
	sh->topics_by_id[bi] = ts;
	if (out != NULL)
		*out = ts;
	return 0;
}

static void shard_topic_unlink(struct shard *sh, struct topic_state *ts)
{
	uint32_t bn = hash_bytes(ts->meta->name, strlen(ts->meta->name)) & (TOPIC_TABLE_BUCKETS - 1);
	uint32_t bi = hash_bytes(ts->meta->id.b, sizeof(ts->meta->id.b)) & (TOPIC_TABLE_BUCKETS - 1);
	for (struct topic_state **pp = &sh->topics_by_name[bn]; *pp; pp = &(*pp)->by_name_next)
		if (*pp == ts) {
			*pp = ts->by_name_next;
			break;
		}
	for (struct topic_state **pp = &sh->topics_by_id[bi]; *pp; pp = &(*pp)->by_id_next)
		if (*pp == ts) {
			*pp = ts->by_id_next;
			break;
		}
}

int16_t shard_topic_create(struct shard *sh, struct kstr name, int32_t partitions,
			   const struct topic_config_entry *configs, int n_configs,
			   struct topic_state **out)
{
	const struct topic *t;
	int rc = metadata_topic_create(sh->md, name, partitions, configs, n_configs, &t);
	if (rc == -EEXIST)
		return KAFKA_TOPIC_ALREADY_EXISTS;
	if (rc != 0) {
		say_error("create topic %.*s: %s", name.len, name.ptr, strerror(-rc));
		return rc == -ENOSPC ? KAFKA_POLICY_VIOLATION : KAFKA_KAFKA_STORAGE_ERROR;
	}
	rc = shard_topic_attach(sh, t, out);
	if (rc != 0) {
		metadata_topic_delete(sh->md, name);
		return KAFKA_KAFKA_STORAGE_ERROR;
	}
	say_info("created topic %s (%d partitions, id %02x%02x%02x%02x...)", t->name,
		 t->partitions, t->id.b[0], t->id.b[1], t->id.b[2], t->id.b[3]);
	return KAFKA_NONE;
}

int16_t shard_topic_delete(struct shard *sh, struct topic_state *ts)
{
	char name[TOPIC_NAME_LEN_MAX + 1];
	snprintf(name, sizeof(name), "%s", ts->meta->name);

	/* Logs first, metadata last: a crash in between leaves a topic with
	 * empty logs (consistent, deletable again), never a deleted topic whose
	 * old data would reappear under a re-created name. */
	shard_topic_unlink(sh, ts);
	for (struct partition **pp = &sh->dirty_head; *pp;) {
		if ((*pp)->topic == ts)
			*pp = (*pp)->dirty_next;
		else
			pp = &(*pp)->dirty_next;
	}
	for (struct partition **pp = &sh->sync_head; *pp;) {
		if ((*pp)->topic == ts)
			*pp = (*pp)->sync_next;
		else
			pp = &(*pp)->sync_next;
	}
	for (int32_t i = 0; i < ts->n_parts; i++) {
		struct partition *p = &ts->parts[i];
		produce_waits_fail_all(sh, p, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
		/* p is freed below while the log may still complete a write:
		 * it must not call back into p. */
		plog_set_listener(p->log, NULL, NULL);
		int err = plog_delete(p->log);
		if (err != 0)
			say_warn("delete topic %s partition %d: %s", name, i, strerror(-err));
	}
	topic_state_free(ts);
	sh->fetch_recheck = true;

	int rc = metadata_topic_delete(sh->md, kstr_from(name));
	if (rc != 0) {
		say_error("delete topic %s: metadata: %s", name, strerror(-rc));
		return KAFKA_KAFKA_STORAGE_ERROR;
	}
	say_info("deleted topic %s", name);
	return KAFKA_NONE;
}

void shard_partition_dirty(struct shard *sh, struct partition *p)
{
	if (p->dirty)
		return;
	p->dirty = true;
	p->dirty_next = sh->dirty_head;
	sh->dirty_head = p;
}
/* ---- listener and signals ---- */

static int listener_open(const struct broker_config *cfg, int *fd_out)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[16];
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
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
		say_error("cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port,
			  strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	*fd_out = fd;
	return 0;
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

static void shard_accept_done(struct uring_op *op, int res, uint32_t flags)
{
	struct shard *sh = container_of(op, struct shard, accept_op);
	if (!(flags & IORING_CQE_F_MORE))
		sh->accept_armed = false;
	if (res >= 0) {
		if (sh->stopping || sh->n_conns >= sh->cfg->max_connections) {
			if (!sh->stopping)
				say_warn("max.connections (%d) reached: closing a new connection",
					 sh->cfg->max_connections);
			close(res);
		} else {
			sh->stats.conns_accepted++;
			conn_start(sh, res);
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

static void shard_signal_done(struct uring_op *op, int res, uint32_t flags);

static void shard_signal_arm(struct shard *sh)
{
	struct io_uring_sqe *sqe = shard_sqe(sh);
	if (sqe == NULL)
		return;
	io_uring_prep_read(sqe, sh->signal_fd, &sh->siginfo, sizeof(sh->siginfo), 0);
	uring_op_prep(sqe, &sh->signal_op);
}

static void shard_stats_print(const struct shard *sh)
{
	const struct shard_stats *s = &sh->stats;
	say_info("shard %d: requests=%llu bytes_in=%llu bytes_out=%llu batches=%llu "
		 "flushes=%llu conns=%d accepted=%llu closed=%llu protocol_errors=%llu "
		 "zc_sends=%llu recv_nobufs=%llu",
		 sh->id, (unsigned long long)s->requests, (unsigned long long)s->bytes_in,
		 (unsigned long long)s->bytes_out, (unsigned long long)s->batches,
		 (unsigned long long)s->flushes, sh->n_conns,
		 (unsigned long long)s->conns_accepted, (unsigned long long)s->conns_closed,
		 (unsigned long long)s->protocol_errors, (unsigned long long)s->zc_sends,
		 (unsigned long long)s->recv_nobufs);
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

static void shard_signal_done(struct uring_op *op, int res, uint32_t flags)
{
	struct shard *sh = container_of(op, struct shard, signal_op);
	(void)flags;
	if (res == (int)sizeof(sh->siginfo)) {
		if (sh->siginfo.ssi_signo == SIGUSR1) {
			shard_stats_print(sh);
		} else {
			say_info("signal %u: stopping", sh->siginfo.ssi_signo);
			shard_stop(sh);
			return;
		}
	}
	shard_signal_arm(sh);
}

int shard_init(struct shard *sh, int id, const struct broker_config *cfg, struct metadata *md)
{
	memset(sh, 0, sizeof(*sh));
	sh->id = id;
	sh->cfg = cfg;
	sh->md = md;
	sh->listen_fd = -1;
	sh->signal_fd = -1;
	sh->accept_op.done = shard_accept_done;
	sh->signal_op.done = shard_signal_done;

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

	rc = net_shard_init(sh);
	if (rc != 0)
		return rc;

	for (int i = 0; i < metadata_topic_count(md); i++) {
		rc = shard_topic_attach(sh, metadata_topic_at(md, i), NULL);
		if (rc != 0)
			return rc;
	}

	rc = listener_open(cfg, &sh->listen_fd);
	if (rc != 0)
		return rc;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGUSR1);
	sh->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sh->signal_fd < 0)
		return -errno;
	return 0;
}

static void shard_sync_owed(struct shard *sh, struct partition *p)
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

static bool shard_drained(struct shard *sh)
{
	if (sh->n_conns > 0 || sh->dirty_head != NULL || sh->accept_armed)
		return false;
	for (int b = 0; b < TOPIC_TABLE_BUCKETS; b++)
		for (struct topic_state *ts = sh->topics_by_name[b]; ts; ts = ts->by_name_next)
			for (int32_t i = 0; i < ts->n_parts; i++) {
				struct plog *l = ts->parts[i].log;
				if (plog_error(l) == 0 && !plog_idle(l))
					return false;
			}
	return true;
}

static int64_t shard_wait_ms(struct shard *sh)
{
	int64_t wait = SHARD_IDLE_WAIT_MS;
	int64_t deadlines[3] = { fetch_next_deadline_ms(sh), shard_next_sync_ms(sh),
				 sh->accept_resume_ms > 0 ? sh->accept_resume_ms : -1 };
	for (int i = 0; i < 3; i++) {
		if (deadlines[i] < 0)
			continue;
		int64_t d = deadlines[i] - sh->now_ms;
		if (d < wait)
			wait = d < 0 ? 0 : d;
	}
	if (sh->dirty_head != NULL)
		wait = 0;
	return wait;
}

int shard_run(struct shard *sh)
{
	int64_t stop_deadline = -1;
	sh->now_ms = monotonic_ms();
	shard_accept_arm(sh);
	shard_signal_arm(sh);

	for (;;) {
		int64_t wait_ms = shard_wait_ms(sh);
		struct __kernel_timespec ts = { .tv_sec = wait_ms / 1000,
						.tv_nsec = (wait_ms % 1000) * 1000000 };
		struct io_uring_cqe *cqe;
		int rc = io_uring_submit_and_wait_timeout(&sh->ring, &cqe, 1, &ts, NULL);
		if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
			say_error("io_uring_submit_and_wait: %s", strerror(-rc));
			return rc;
		}
		sh->now_ms = monotonic_ms();

		unsigned head, n = 0;
		io_uring_for_each_cqe(&sh->ring, head, cqe) {
			uring_op_dispatch(cqe);
			if (++n == SHARD_CQE_BURST_MAX)
				break;
		}
		io_uring_cq_advance(&sh->ring, n);

		shard_flush_dirty(sh);
		shard_flush_owed(sh);
		fetch_recheck_all(sh, sh->fetch_recheck);
		sh->fetch_recheck = false;
		conn_reap(sh);
		shard_accept_arm(sh); /* after an out-of-fds pause */

		if (sh->stopping) {
			if (stop_deadline < 0)
				stop_deadline = sh->now_ms + SHARD_DRAIN_TIMEOUT_MS;
			if (shard_drained(sh))
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
	for (int b = 0; b < TOPIC_TABLE_BUCKETS; b++) {
		struct topic_state *ts = sh->topics_by_name[b];
		while (ts != NULL) {
			struct topic_state *next = ts->by_name_next;
			for (int32_t i = 0; i < ts->n_parts; i++)
				if (ts->parts[i].log != NULL)
					plog_close(ts->parts[i].log);
			topic_state_free(ts);
			ts = next;
		}
		sh->topics_by_name[b] = NULL;
	}
	request_free_all(sh);
	if (sh->listen_fd >= 0)
		close(sh->listen_fd);
	if (sh->signal_fd >= 0)
		close(sh->signal_fd);
	net_shard_destroy(sh);
	io_uring_queue_exit(&sh->ring);
}

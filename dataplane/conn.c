/*
 * conn: client connections on kernel TCP driven by io_uring. See conn.h.
 *
 * Receive: one multishot recv per connection draws buffers from the shard's
 * provided buffer ring, which all connections share, so an idle connection
 * holds no receive memory. The bytes of each completion are run as frames
 * where they lie; only a frame cut by the end of the buffer is copied, into
 * the connection's assembly buffer (sized to the frame), and completed from
 * the buffers that follow. Every buffer goes back to the ring before its
 * completion handler returns: that is what lets a small ring serve many
 * connections.
 *
 * Send: one sendmsg per batch of ready responses, gathering response headers
 * and spliced record bytes without copying them. A batch of
 * CONN_SEND_ZC_MIN_BYTES or more goes as sendmsg_zc; the kernel then reads
 * the bytes after the send has completed, so the requests it carried are
 * released only when its notification arrives.
 *
 * Lifetime: a closed connection moves to the shard's closing list and is
 * freed by conn_reap at the end of a loop turn, once no io_uring operation,
 * no unfinished request and no unnotified zero-copy send refers to it.
 * Completion callbacks may therefore close a connection and keep using the
 * pointer until they return.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "node.h"
#include "request.h"
#include "say.h"
#include "shard.h"
#include "storage/verify.h"

/* Buffer group ids are per io_uring, and a shard has one ring and one group. */
#define NET_BUF_GROUP 0

static void conn_recv_done(struct uring_op *op, int res, uint32_t flags);
static void conn_send_done(struct uring_op *op, int res, uint32_t flags);
static void conn_zc_done(struct uring_op *op, int res, uint32_t flags);
static void conn_resume(struct conn *c);

static __thread uint64_t conn_next_id = 1;

/* ---- the shard's provided buffer ring ---- */

static uint8_t *net_buf(const struct net_shard *n, unsigned bid)
{
	return (uint8_t *)n->bufs.base + (size_t)bid * n->buf_bytes;
}

/* Give a buffer back to the kernel. */
static void net_buf_return(struct net_shard *n, unsigned bid)
{
	io_uring_buf_ring_add(n->br, net_buf(n, bid), n->buf_bytes, (unsigned short)bid,
			      n->buf_mask, 0);
	io_uring_buf_ring_advance(n->br, 1);
}

static int net_shard_fail(struct shard *sh, int rc, const char *what)
{
	say_error("shard %d: %s: %s", sh->id, what, strerror(-rc));
	net_shard_destroy(sh);
	return rc;
}

int net_shard_init(struct shard *sh)
{
	struct net_shard *n = &sh->net;
	const struct broker_config *cfg = sh->cfg;
	unsigned count = (unsigned)cfg->recv_buffers;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	n->buf_bytes = (uint32_t)cfg->recv_buffer_bytes;
	n->buf_mask = io_uring_buf_ring_mask(count);
	/* The kernel pins the ring itself, which must be page-aligned: it gets
	 * a small mapping of its own, apart from the buffers. */
	n->br_bytes = (count * sizeof(struct io_uring_buf) + page - 1) & ~(page - 1);
	void *br = mmap(NULL, n->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (br == MAP_FAILED)
		return net_shard_fail(sh, -errno, "mapping the receive buffer ring");
	n->br = br;
	io_uring_buf_ring_init(n->br);
	int rc = hugemem_map(&n->bufs, (size_t)count * n->buf_bytes,
			     hugemem_policy_parse(cfg->hugepages));
	if (rc != 0)
		return net_shard_fail(sh, rc, "mapping recv.buffers.per.shard x recv.buffer.bytes "
				      "of receive buffers (see hugepages)");
	struct io_uring_buf_reg reg = { .ring_addr = (uint64_t)(uintptr_t)n->br,
					.ring_entries = count, .bgid = NET_BUF_GROUP };
	rc = io_uring_register_buf_ring(&sh->ring, &reg, 0);
	if (rc != 0)
		return net_shard_fail(sh, rc, "registering the receive buffer ring "
				      "(provided buffer rings need Linux 5.19 or later)");
	n->registered = true;
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(n->br, net_buf(n, i), n->buf_bytes, (unsigned short)i,
				      n->buf_mask, (int)i);
	io_uring_buf_ring_advance(n->br, (int)count);
	return 0;
}

void net_shard_destroy(struct shard *sh)
{
	struct net_shard *n = &sh->net;
	if (n->registered)
		io_uring_unregister_buf_ring(&sh->ring, NET_BUF_GROUP);
	if (n->br != NULL)
		munmap(n->br, n->br_bytes);
	hugemem_unmap(&n->bufs);
	memset(n, 0, sizeof(*n));
}

/* ---- connection lists ---- */

static void conn_list_remove(struct conn **head, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

static void conn_list_push(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head != NULL)
		(*head)->prev = c;
	*head = c;
}

static void conn_peer_name(int fd, char *out, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(out, n, "%s:%d", host, port);
}

/* ---- memory ---- */

/* Charge bytes c owns to the shard's budget (a negative delta gives them
 * back); c->mem_bytes is c's share. */
static void conn_charge(struct conn *c, int64_t delta)
{
	shard_mem_charge(&c->sh->mem, delta);
	c->mem_bytes = (size_t)((int64_t)c->mem_bytes + delta);
}

/* Resize the assembly buffer to cap bytes (0 frees it). 0, or -1 after
 * closing c for want of memory. */
static int conn_asm_resize(struct conn *c, size_t cap)
{
	ASSERT(cap >= c->alen);
	if (cap == c->acap)
		return 0;
	uint8_t *nb = NULL;
	if (cap > 0) {
		nb = realloc(c->abuf, cap);
		if (nb == NULL) {
			say_warn("%s: no memory for a %zu-byte request: closing", c->peer, cap);
			conn_close(c, NULL);
			return -1;
		}
	} else {
		free(c->abuf);
	}
	conn_charge(c, (int64_t)cap - (int64_t)c->acap);
	c->abuf = nb;
	c->acap = cap;
	return 0;
}

/* Size the assembly buffer for a frame of total bytes: grow to it, or come
 * back down after a frame larger than CONN_RECV_BUF_KEEP_BYTES. */
static int conn_asm_fit(struct conn *c, size_t total)
{
	if (total > c->acap || (c->acap > CONN_RECV_BUF_KEEP_BYTES && total < c->acap))
		return conn_asm_resize(c, total);
	return 0;
}

/* An empty assembly buffer is kept while requests are in flight (more
 * frames are coming, each would allocate again) and freed once the
 * connection is idle, or after an outsized frame. */
static void conn_asm_trim(struct conn *c)
{
	if (c->alen == 0 && c->abuf != NULL &&
	    (c->n_requests == 0 || c->closing || c->acap > CONN_RECV_BUF_KEEP_BYTES))
		conn_asm_resize(c, 0);
}

/* Recount the unsent bytes of the ready responses in the queue: the part
 * of c's memory that a slow reader makes grow. A request still waiting
 * (for durability, or for a part on another shard) counts the read buffer
 * its answer will be sent from. Called when it changes; the queue is at
 * most CONN_INFLIGHT_REQUESTS_MAX long. */
static void conn_resp_update(struct conn *c)
{
	size_t sum = 0, waiting = 0;
	for (const struct request *r = c->rq_head; r != NULL; r = r->next)
		if (r->ready && !r->no_response)
			sum += kw_total_len(&r->resp);
		else if (!r->ready)
			waiting += r->read_cap;
	c->resp_bytes = (sum > c->send_skip ? sum - c->send_skip : 0) + waiting;
}

/* Whether c must not run more requests now, and so must not read. */
static bool conn_held(const struct conn *c)
{
	if (c->n_requests >= CONN_INFLIGHT_REQUESTS_MAX || c->sh->mem.paused)
		return true;
	/* Over its own limit a connection waits for its responses to drain.
	 * With none queued there is nothing to wait for, and the frame it is
	 * assembling (up to socket.request.max.bytes) must be let in. */
	return c->n_requests > 0 &&
	       (int64_t)(c->mem_bytes + c->resp_bytes) > c->sh->cfg->connection_memory_max_bytes;
}

/* ---- receive ---- */

static int32_t be32_at(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* The length, size prefix included, of the frame starting at p; 0 after
 * closing c because the size is out of bounds. */
static size_t conn_frame_total(struct conn *c, const uint8_t *p)
{
	int32_t size = be32_at(p);
	int64_t max = c->sh->cfg->socket_request_max_bytes;
	if (size >= 8 && size <= max)
		return 4 + (size_t)size;
	/* Kafka: InvalidReceiveException, the connection is closed. */
	c->sh->stats.protocol_errors++;
	say_warn("%s: request size %d outside [8, socket.request.max.bytes=%lld]: closing",
		 c->peer, size, (long long)max);
	conn_close(c, NULL);
	return 0;
}

/* Run one whole frame; body is valid only during the call. 0, or -1 after
 * closing c. */
static int conn_frame_run(struct conn *c, const uint8_t *body, size_t len)
{
	c->sh->stats.bytes_in += 4 + len;
	if (request_handle_frame(c, body, len) == 0) {
		conn_resp_update(c); /* an answer that waits still holds memory */
		return 0;
	}
	c->sh->stats.protocol_errors++;
	conn_close(c, NULL);
	return -1;
}

/* Run the whole frames at p, in order, while c may take requests. Returns
 * the bytes consumed: it stops at a partial frame, a hold or a close. */
static size_t conn_run_frames(struct conn *c, const uint8_t *p, size_t n)
{
	size_t off = 0;
	while (n - off >= 4 && !c->closing && !conn_held(c)) {
		size_t total = conn_frame_total(c, p + off);
		if (total == 0 || n - off < total || conn_frame_run(c, p + off + 4, total - 4) != 0)
			break;
		off += total;
	}
	return off;
}

/* Run the whole frames waiting in the assembly buffer and move what is
 * left to its front. */
static void conn_asm_run(struct conn *c)
{
	size_t off = conn_run_frames(c, c->abuf, c->alen);
	if (off == 0 || c->closing)
		return;
	memmove(c->abuf, c->abuf + off, c->alen - off);
	c->alen -= off;
}

/* Continue the frame being assembled (the buffer holds less than one
 * frame) with bytes from p, and run it once whole. Returns the bytes taken
 * from p. */
static size_t conn_asm_fill(struct conn *c, const uint8_t *p, size_t n)
{
	size_t used = 0;
	if (c->alen < 4) { /* the capacity is at least the 4-byte prefix */
		used = n < 4 - c->alen ? n : 4 - c->alen;
		memcpy(c->abuf + c->alen, p, used);
		c->alen += used;
		if (c->alen < 4)
			return used;
	}
	size_t total = conn_frame_total(c, c->abuf);
	if (total == 0 || conn_asm_fit(c, total) != 0)
		return n;
	ASSERT(c->alen < total);
	size_t take = total - c->alen < n - used ? total - c->alen : n - used;
	memcpy(c->abuf + c->alen, p + used, take);
	c->alen += take;
	if (c->alen == total) {
		conn_frame_run(c, c->abuf + 4, total - 4);
		c->alen = 0;
	}
	return used + take;
}

/* Keep bytes that cannot run now: the start of a frame cut by the end of
 * the buffer (room is made for the whole frame once its prefix is in), or
 * bytes that arrived while c was held back (the buffer doubles, so a burst
 * of them is not copied over and over). */
static void conn_asm_keep(struct conn *c, const uint8_t *p, size_t n)
{
	size_t want = c->alen + n;
	if (c->alen == 0 && n >= 4) {
		size_t total = conn_frame_total(c, p);
		if (total == 0)
			return;
		if (total > want)
			want = total;
	} else if (want > c->acap && want < 2 * c->acap) {
		want = 2 * c->acap;
	}
	if (want < 4)
		want = 4; /* conn_asm_fill completes the prefix in place */
	if (want > c->acap && conn_asm_resize(c, want) != 0)
		return;
	memcpy(c->abuf + c->alen, p, n);
	c->alen += n;
}

static void conn_recv_arm(struct conn *c)
{
	if (c->recv_armed || c->closing || conn_held(c))
		return;
	struct io_uring_sqe *sqe = shard_sqe(c->sh);
	if (sqe == NULL) {
		conn_close(c, "no submission queue entry");
		return;
	}
	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = NET_BUF_GROUP;
	uring_op_prep(sqe, &c->recv_op);
	c->recv_armed = true;
}

/* c is held back: cancel its recv, so that what the client sends next
 * waits in the socket (where TCP flow control pushes back on the client)
 * rather than in the assembly buffer. */
static void conn_recv_stop(struct conn *c)
{
	if (!c->recv_armed || c->recv_cancelling || c->closing)
		return;
	struct io_uring_sqe *sqe = shard_sqe(c->sh);
	if (sqe == NULL) {
		conn_close(c, "no submission queue entry");
		return;
	}
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&c->recv_op, 0);
	uring_op_prep(sqe, NULL); /* its own result does not matter */
	c->recv_cancelling = true;
}

/* The ring ran dry and ended c's recv. Re-arming now would fail again
 * until this turn's completions have given their buffers back. */
static void conn_recv_starved(struct conn *c)
{
	struct net_shard *n = &c->sh->net;
	c->sh->stats.recv_nobufs++;
	if (c->starved)
		return;
	c->starved = true;
	c->starved_next = n->starved;
	n->starved = c;
}

/* Bytes from the socket, in a provided buffer that goes back to the ring
 * as soon as this returns: run what can run where it lies, keep the rest.
 * `parsing` stops requests answered at once from re-entering here through
 * conn_response_ready while the assembly buffer is being read. */
static void conn_recv_bytes(struct conn *c, const uint8_t *p, size_t n)
{
	size_t used = 0;
	c->parsing = true;
	if (c->alen > 0 && !conn_held(c)) {
		conn_asm_run(c); /* normally nothing: resuming ran held bytes */
		if (c->alen > 0 && !c->closing && !conn_held(c))
			used = conn_asm_fill(c, p, n);
	}
	if (c->alen == 0 && !c->closing)
		used += conn_run_frames(c, p + used, n - used);
	if (used < n && !c->closing)
		conn_asm_keep(c, p + used, n - used);
	c->parsing = false;
	conn_asm_trim(c);
}

static void conn_recv_done(struct uring_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, recv_op);
	struct net_shard *n = &c->sh->net;
	if (!(flags & IORING_CQE_F_MORE))
		c->recv_armed = c->recv_cancelling = false;
	if (flags & IORING_CQE_F_BUFFER) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
		if (res > 0 && !c->closing)
			conn_recv_bytes(c, net_buf(n, bid), (size_t)res);
		net_buf_return(n, bid);
	}
	if (c->closing)
		return;
	if (res == -ENOBUFS) {
		conn_recv_starved(c);
		return;
	}
	if (res <= 0 && res != -ECANCELED) {
		if (res < 0 && res != -ECONNRESET)
			say_debug("%s: recv: %s", c->peer, strerror(-res));
		conn_close(c, NULL);
		return;
	}
	if (!c->recv_armed)
		conn_resume(c); /* bytes held back may be all the client sends */
	else if (conn_held(c))
		conn_recv_stop(c);
}

/* ---- send ---- */

/* Build the gather list of ready responses at the head of the queue;
 * *bytes gets its length. Returns the iovec count. */
static int conn_send_gather(struct conn *c, size_t *bytes)
{
	int niov = 0;
	size_t skip = c->send_skip;
	struct iovec tmp[RESPONSE_RANGES_MAX];
	for (struct request *r = c->rq_head; r != NULL && r->ready; r = r->next) {
		if (r->no_response)
			continue;
		int n = kw_iovecs(&r->resp, tmp, RESPONSE_RANGES_MAX);
		VERIFY(n >= 0); /* handlers keep responses within RESPONSE_RANGES_MAX */
		if (niov > 0 && niov + n > CONN_SEND_IOV_MAX)
			break;
		/* A response with more ranges than one sendmsg takes goes out in
		 * several; send_skip says where the next one starts. */
		for (int i = 0; i < n && niov < CONN_SEND_IOV_MAX; i++) {
			if (skip >= tmp[i].iov_len) {
				skip -= tmp[i].iov_len;
				continue;
			}
			c->iov[niov].iov_base = (char *)tmp[i].iov_base + skip;
			c->iov[niov].iov_len = tmp[i].iov_len - skip;
			*bytes += c->iov[niov].iov_len;
			skip = 0;
			niov++;
		}
		if (niov >= CONN_SEND_IOV_MAX)
			break;
	}
	return niov;
}

/* c is done with r. Release it, unless a zero-copy send may still read its
 * bytes: then it waits with the newest unnotified send, and goes when that
 * send and every earlier one are notified. */
static void conn_request_done(struct conn *c, struct request *r)
{
	if (c->zc_count == 0) {
		request_release(r);
		return;
	}
	struct conn_zc *z = &c->zc[(c->zc_head + c->zc_count - 1) % CONN_SEND_ZC_INFLIGHT_MAX];
	r->next = NULL;
	if (z->done_tail != NULL)
		z->done_tail->next = r;
	else
		z->done_head = r;
	z->done_tail = r;
}

/* Retire finished requests at the head whose bytes (sent of them) are out. */
static size_t conn_retire(struct conn *c, size_t sent)
{
	while (c->rq_head != NULL && c->rq_head->ready) {
		struct request *r = c->rq_head;
		size_t len = r->no_response ? 0 : kw_total_len(&r->resp);
		if (sent < len)
			break;
		sent -= len;
		c->rq_head = r->next;
		if (c->rq_head == NULL)
			c->rq_tail = NULL;
		c->n_requests--;
		conn_request_done(c, r);
	}
	return sent;
}

/* A slot for a zero-copy send, or NULL: copy this batch. */
static struct conn_zc *conn_zc_take(struct conn *c)
{
	if (c->zc_off || c->zc_count == CONN_SEND_ZC_INFLIGHT_MAX)
		return NULL;
	struct conn_zc *z = &c->zc[(c->zc_head + c->zc_count) % CONN_SEND_ZC_INFLIGHT_MAX];
	c->zc_count++;
	z->cqes_due = 2; /* until the completion says whether a notification follows */
	z->done_head = z->done_tail = NULL;
	return z;
}

/* Release the requests of notified zero-copy sends, oldest first: a later
 * send's notification may come before an earlier one's, whose bytes can
 * overlap (a response split across sends). */
static void conn_zc_reap(struct conn *c)
{
	while (c->zc_count > 0 && c->zc[c->zc_head].cqes_due == 0) {
		struct conn_zc *z = &c->zc[c->zc_head];
		struct request *r = z->done_head;
		z->done_head = z->done_tail = NULL;
		c->zc_head = (c->zc_head + 1) % CONN_SEND_ZC_INFLIGHT_MAX;
		c->zc_count--;
		while (r != NULL) {
			struct request *next = r->next;
			request_release(r);
			r = next;
		}
	}
}

static void conn_send_arm(struct conn *c)
{
	if (c->send_armed || c->closing)
		return;
	c->send_skip = conn_retire(c, c->send_skip);
	if (c->rq_head == NULL || !c->rq_head->ready)
		return;
	size_t bytes = 0;
	int niov = conn_send_gather(c, &bytes);
	if (niov == 0)
		return;
	struct io_uring_sqe *sqe = shard_sqe(c->sh);
	if (sqe == NULL) {
		conn_close(c, "no submission queue entry");
		return;
	}
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)niov;
	struct conn_zc *z = bytes >= CONN_SEND_ZC_MIN_BYTES ? conn_zc_take(c) : NULL;
	if (z != NULL) {
		io_uring_prep_sendmsg_zc(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
		uring_op_prep(sqe, &z->op);
		c->sh->stats.zc_sends++;
	} else {
		io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
		uring_op_prep(sqe, &c->send_op);
	}
	c->send_armed = true;
}

/* Something that held c back may have cleared (responses went out, the
 * budget resumed): run the bytes that waited, then read again. */
static void conn_resume(struct conn *c)
{
	if (c->closing || c->parsing)
		return;
	if (c->alen > 0 && !conn_held(c)) {
		c->parsing = true;
		conn_asm_run(c);
		c->parsing = false;
	}
	conn_asm_trim(c);
	conn_recv_arm(c);
}

/* A send completed (for a zero-copy send, its first completion). */
static void conn_send_finish(struct conn *c, int res, bool zc)
{
	c->send_armed = false;
	if (c->closing)
		return;
	if (zc && (res == -EOPNOTSUPP || res == -EINVAL)) {
		/* Not every kernel and socket take zero-copy sends. Nothing was
		 * sent: the same batch goes again, copied. */
		say_debug("%s: zero-copy send refused (%s): copying", c->peer, strerror(-res));
		c->zc_off = true;
		conn_send_arm(c);
		return;
	}
	if (res < 0) {
		if (res != -EPIPE && res != -ECONNRESET)
			say_debug("%s: send: %s", c->peer, strerror(-res));
		conn_close(c, NULL);
		return;
	}
	c->sh->stats.bytes_out += (size_t)res;
	c->send_skip = conn_retire(c, c->send_skip + (size_t)res);
	conn_resp_update(c);
	conn_send_arm(c);
	conn_resume(c);
}

static void conn_send_done(struct uring_op *op, int res, uint32_t flags)
{
	(void)flags;
	conn_send_finish(container_of(op, struct conn, send_op), res, false);
}

/* A zero-copy send's completion (IORING_CQE_F_MORE: a notification will
 * follow) or its notification (IORING_CQE_F_NOTIF: the kernel no longer
 * reads the bytes). */
static void conn_zc_done(struct uring_op *op, int res, uint32_t flags)
{
	struct conn_zc *z = container_of(op, struct conn_zc, op);
	struct conn *c = z->c;
	if (flags & IORING_CQE_F_NOTIF) {
		z->cqes_due--;
	} else {
		z->cqes_due -= (flags & IORING_CQE_F_MORE) ? 1 : 2;
		conn_send_finish(c, res, true);
	}
	conn_zc_reap(c);
}

void conn_response_ready(struct conn *c)
{
	if (c->closing)
		return;
	conn_resp_update(c);
	conn_send_arm(c);
	conn_resume(c); /* an acks=0 request retired at once: one fewer in flight */
}

/* ---- lifetime ---- */

void conn_start(struct shard *sh, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		say_warn("out of memory for a new connection: closing it");
		atomic_fetch_sub(&sh->node->n_conns, 1);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->sh = sh;
	c->fd = fd;
	c->id = conn_next_id++;
	c->recv_op.done = conn_recv_done;
	c->send_op.done = conn_send_done;
	for (int i = 0; i < CONN_SEND_ZC_INFLIGHT_MAX; i++) {
		c->zc[i].op.done = conn_zc_done;
		c->zc[i].c = c;
	}
	conn_charge(c, (int64_t)sizeof(*c));
	conn_peer_name(fd, c->peer, sizeof(c->peer));
	conn_list_push(&sh->conns, c);
	sh->n_conns++;
	say_debug("connection %llu from %s", (unsigned long long)c->id, c->peer);
	conn_recv_arm(c);
}

void conn_close(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	if (why != NULL)
		say_warn("%s: closing connection: %s", c->peer, why);
	c->closing = true;
	/* Shut the socket down so armed recv/send complete now. */
	shutdown(c->fd, SHUT_RDWR);
	for (struct request *r = c->rq_head; r != NULL; r = r->next)
		if (r->parked)
			fetch_cancel(r);
	conn_list_remove(&c->sh->conns, c);
	conn_list_push(&c->sh->closing_conns, c);
}

/* Free c if nothing refers to it any more. */
static void conn_try_free(struct conn *c)
{
	if (c->recv_armed || c->send_armed)
		return;
	/* Release finished requests; a produce still waiting for durability
	 * keeps the connection object until its waits resolve. */
	struct request **pp = &c->rq_head;
	c->rq_tail = NULL;
	while (*pp != NULL) {
		struct request *r = *pp;
		if (r->ready ||
		    (!r->parked && r->pending_waits == 0 && r->remote_pending == 0)) {
			*pp = r->next;
			c->n_requests--;
			conn_request_done(c, r);
		} else {
			c->rq_tail = r;
			pp = &r->next;
		}
	}
	if (c->rq_head != NULL)
		return;
	if (c->fd >= 0) {
		/* Zero-copy notifications are tied to the bytes, not to the
		 * descriptor: the socket need not wait for them. */
		close(c->fd);
		c->fd = -1;
	}
	if (c->zc_count > 0)
		return;
	struct shard *sh = c->sh;
	conn_list_remove(&sh->closing_conns, c);
	sh->n_conns--;
	atomic_fetch_sub(&sh->node->n_conns, 1);
	sh->stats.conns_closed++;
	c->alen = 0;
	conn_asm_resize(c, 0);
	conn_charge(c, -(int64_t)sizeof(*c));
	ASSERT(c->mem_bytes == 0);
	free(c);
}

void conn_reap(struct shard *sh)
{
	struct conn *c = sh->net.starved;
	sh->net.starved = NULL;
	while (c != NULL) {
		struct conn *next = c->starved_next;
		c->starved = false;
		c->starved_next = NULL;
		conn_resume(c);
		c = next;
	}
	c = sh->closing_conns;
	while (c != NULL) {
		struct conn *next = c->next;
		conn_try_free(c);
		c = next;
	}
}

void conn_resume_all(struct shard *sh)
{
	struct conn *c = sh->conns;
	while (c != NULL) {
		struct conn *next = c->next; /* c may close, leaving the list */
		conn_resume(c);
		c = next;
	}
}

void conn_close_all(struct shard *sh)
{
	while (sh->conns != NULL)
		conn_close(sh->conns, NULL);
}

/*
 * conn: client connections on kernel TCP driven by io_uring. See conn.h.
 *
 * One recv is armed per connection into its receive buffer; whole frames are
 * handled in place, the partial tail is moved to the front. Responses are
 * sent with one sendmsg per batch of ready responses, gathering the
 * response headers and spliced record bytes without copying them.
 *
 * Lifetime: a closed connection moves to the shard's closing list and is
 * freed by conn_reap at the end of the loop turn, once no io_uring operation
 * and no unfinished request refers to it. Completion callbacks may therefore
 * close a connection and keep using the pointer until they return.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "node.h"
#include "request.h"
#include "say.h"
#include "shard.h"
#include "storage/verify.h"

static void conn_recv_done(struct uring_op *op, int res, uint32_t flags);
static void conn_send_done(struct uring_op *op, int res, uint32_t flags);

static __thread uint64_t conn_next_id = 1;

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

static void conn_recv_arm(struct conn *c)
{
	if (c->recv_armed || c->closing || c->n_requests >= CONN_INFLIGHT_REQUESTS_MAX)
		return;
	if (c->rlen == c->rcap)
		return; /* a whole frame is buffered, waiting for the in-flight limit */
	struct io_uring_sqe *sqe = shard_sqe(c->sh);
	if (sqe == NULL) {
		conn_close(c, "no submission queue entry");
		return;
	}
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	uring_op_prep(sqe, &c->recv_op);
	c->recv_armed = true;
}

void conn_start(struct shard *sh, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	uint8_t *buf = malloc(CONN_RECV_BUF_INITIAL_BYTES);
	if (c == NULL || buf == NULL) {
		say_warn("out of memory for a new connection: closing it");
		free(c);
		free(buf);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->sh = sh;
	c->fd = fd;
	c->id = conn_next_id++;
	c->rbuf = buf;
	c->rcap = CONN_RECV_BUF_INITIAL_BYTES;
	c->recv_op.done = conn_recv_done;
	c->send_op.done = conn_send_done;
	conn_peer_name(fd, c->peer, sizeof(c->peer));
	conn_list_push(&sh->conns, c);
	sh->n_conns++;
	say_debug("connection %llu from %s", (unsigned long long)c->id, c->peer);
	conn_recv_arm(c);
}

static int32_t be32_at(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* Make the buffer hold a frame of frame_total bytes (size prefix included),
 * or shrink it back after a big frame. */
static int conn_rbuf_fit(struct conn *c, size_t frame_total)
{
	size_t want = c->rcap;
	if (frame_total > c->rcap)
		want = frame_total;
	else if (c->rcap > CONN_RECV_BUF_KEEP_BYTES && c->rlen <= CONN_RECV_BUF_INITIAL_BYTES &&
		 frame_total <= CONN_RECV_BUF_INITIAL_BYTES)
		want = CONN_RECV_BUF_INITIAL_BYTES;
	if (want == c->rcap)
		return 0;
	uint8_t *nb = realloc(c->rbuf, want);
	if (nb == NULL)
		return -1;
	c->rbuf = nb;
	c->rcap = want;
	return 0;
}

static void conn_parse_frames(struct conn *c);

/* Handle every whole frame in the buffer, in order. Requests answered
 * synchronously call back into conn_response_ready; `parsing` keeps that
 * from re-entering the parser or arming a recv into the moving buffer. */
static void conn_parse(struct conn *c)
{
	c->parsing = true;
	conn_parse_frames(c);
	c->parsing = false;
}

static void conn_parse_frames(struct conn *c)
{
	size_t off = 0;
	int64_t max = c->sh->cfg->socket_request_max_bytes;
	while (!c->closing && c->rlen - off >= 4) {
		int32_t size = be32_at(c->rbuf + off);
		if (size < 8 || size > max) {
			/* Kafka: InvalidReceiveException, the connection is closed. */
			c->sh->stats.protocol_errors++;
			say_warn("%s: request size %d outside [8, socket.request.max.bytes=%lld]: "
				 "closing", c->peer, size, (long long)max);
			conn_close(c, NULL);
			return;
		}
		if (c->rlen - off < 4 + (size_t)size)
			break;
		if (c->n_requests >= CONN_INFLIGHT_REQUESTS_MAX)
			break; /* backpressure: parsed again when responses drain */
		c->sh->stats.bytes_in += 4 + (size_t)size;
		if (request_handle_frame(c, c->rbuf + off + 4, (size_t)size) != 0) {
			c->sh->stats.protocol_errors++;
			conn_close(c, NULL);
			return;
		}
		off += 4 + (size_t)size;
	}
	if (off > 0) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
	size_t next = c->rlen >= 4 ? 4 + (size_t)be32_at(c->rbuf) : 0;
	if (conn_rbuf_fit(c, next) != 0) {
		say_warn("%s: no memory for a %zu-byte request: closing", c->peer, next);
		conn_close(c, NULL);
	}
}

static void conn_recv_done(struct uring_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, recv_op);
	(void)flags;
	c->recv_armed = false;
	if (c->closing)
		return;
	if (res <= 0) {
		if (res < 0 && res != -ECONNRESET)
			say_debug("%s: recv: %s", c->peer, strerror(-res));
		conn_close(c, NULL);
		return;
	}
	c->rlen += (size_t)res;
	conn_parse(c);
	conn_recv_arm(c);
}

/* Build the gather list of ready responses at the head of the queue. */
static int conn_send_gather(struct conn *c)
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
			skip = 0;
			niov++;
		}
		if (niov >= CONN_SEND_IOV_MAX)
			break;
	}
	return niov;
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
		request_release(r);
	}
	return sent;
}

static void conn_send_arm(struct conn *c)
{
	if (c->send_armed || c->closing)
		return;
	c->send_skip = conn_retire(c, c->send_skip);
	if (c->rq_head == NULL || !c->rq_head->ready)
		return;
	int niov = conn_send_gather(c);
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
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	uring_op_prep(sqe, &c->send_op);
	c->send_armed = true;
}

/* After responses drained: a connection held back by the in-flight limit
 * runs its buffered frames and reads again. */
static void conn_resume(struct conn *c)
{
	if (c->closing || c->parsing || c->recv_armed ||
	    c->n_requests >= CONN_INFLIGHT_REQUESTS_MAX)
		return;
	if (c->rlen >= 4)
		conn_parse(c);
	conn_recv_arm(c);
}

static void conn_send_done(struct uring_op *op, int res, uint32_t flags)
{
	struct conn *c = container_of(op, struct conn, send_op);
	(void)flags;
	c->send_armed = false;
	if (c->closing)
		return;
	if (res < 0) {
		if (res != -EPIPE && res != -ECONNRESET)
			say_debug("%s: send: %s", c->peer, strerror(-res));
		conn_close(c, NULL);
		return;
	}
	c->sh->stats.bytes_out += (size_t)res;
	c->send_skip = conn_retire(c, c->send_skip + (size_t)res);
	conn_send_arm(c);
	conn_resume(c);
}

void conn_response_ready(struct conn *c)
{
	if (c->closing)
		return;
	conn_send_arm(c);
	if (!c->recv_armed)
		conn_resume(c);
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
			request_release(r);
		} else {
			c->rq_tail = r;
			pp = &r->next;
		}
	}
	if (c->rq_head != NULL)
		return;
	struct shard *sh = c->sh;
	conn_list_remove(&sh->closing_conns, c);
	sh->n_conns--;
	atomic_fetch_sub(&sh->node->n_conns, 1);
	sh->stats.conns_closed++;
	close(c->fd);
	free(c->rbuf);
	free(c);
}

void conn_reap(struct shard *sh)
{
	struct conn *c = sh->closing_conns;
	while (c != NULL) {
		struct conn *next = c->next;
		conn_try_free(c);
		c = next;
	}
}

int net_shard_init(struct shard *sh)
{
	(void)sh;
	return 0;
}

void net_shard_destroy(struct shard *sh)
{
	(void)sh;
}

void conn_resume_all(struct shard *sh)
{
	for (struct conn *c = sh->conns; c != NULL; c = c->next)
		conn_resume(c);
}

void conn_close_all(struct shard *sh)
{
	while (sh->conns != NULL)
		conn_close(sh->conns, NULL);
}

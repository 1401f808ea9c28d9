/*
 * conn: one client TCP connection on the posix (kernel TCP over io_uring)
 * backend: framing, in-order responses, backpressure, memory accounting.
 *
 * Kafka framing: a 4-byte big-endian size, then the request. Bytes arrive
 * by a multishot recv into the shard's ring of provided buffers; whole
 * frames are run in place there and the buffer goes straight back to the
 * ring, so only a frame cut by a buffer boundary is copied, into the
 * connection's assembly buffer. Requests are run as soon as they are whole;
 * their responses may become ready out of order (a produce waits for
 * durability, a fetch may long-poll) but are sent in request order, as
 * clients require.
 *
 * A connection is held back (runs no more requests and takes no more bytes
 * from its socket) while CONN_INFLIGHT_REQUESTS_MAX requests are
 * unanswered, while its own memory is over connection.memory.max.bytes, or
 * while the shard's budget is paused. Bytes already received then wait in
 * the assembly buffer and the recv is cancelled; the connection resumes
 * when the condition clears.
 *
 * Threading: owned by one shard.
 */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "limits.h"
#include "storage/hugemem.h"
#include "storage/uring_op.h"

struct shard;
struct request;

/* A shard's network state shared by its connections. Embedded in struct
 * shard. */
struct net_shard {
	/* The provided buffer ring: recv.buffers.per.shard buffers of
	 * recv.buffer.bytes in `bufs`, handed to the kernel by `br`. Fixed for
	 * the shard's life, so not charged to its budget per use. */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	struct hugemem bufs;
	uint32_t buf_bytes;
	int buf_mask;
	bool registered;

	/* Connections whose recv ended for want of a buffer; re-armed at the
	 * end of the loop turn, once the turn's completions gave theirs back. */
	struct conn *starved;
};

/* Shard start-up and shutdown: set up / tear down the shard's network
 * state. 0 or -errno. */
int net_shard_init(struct shard *sh);
void net_shard_destroy(struct shard *sh);

/* One sendmsg_zc whose bytes the kernel may still read: requests whose
 * responses it carried are released only after its notification. */
struct conn_zc {
	struct uring_op op;
	struct conn *c;
	int cqes_due; /* the send's completion and its notification */
	struct request *done_head, *done_tail;
};

struct conn {
	struct shard *sh;
	int fd;
	uint64_t id;
	char peer[64];

	struct uring_op recv_op, send_op;
	bool recv_armed;      /* a multishot recv is live */
	bool recv_cancelling; /* ... and a cancel for it is on its way */
	bool send_armed, closing;
	bool parsing; /* running frames: the assembly buffer must not move */
	bool starved; /* on the shard's starved list */
	bool zc_off;  /* the kernel refused zero-copy sends: copy from now on */
	struct conn *starved_next;

	/* Received bytes not yet run: a frame cut by a buffer boundary, or
	 * whatever arrived while the connection was held back. Starts at a
	 * frame boundary; NULL while the connection is idle. */
	uint8_t *abuf;
	size_t alen, acap;

	size_t mem_bytes;  /* charged to the shard: this struct and abuf */
	size_t resp_bytes; /* unsent bytes of the ready responses queued */

	/* Requests in arrival order; the head is the next to answer. */
	struct request *rq_head, *rq_tail;
	int n_requests;

	/* The send in flight: ready responses at the head of the queue. */
	struct iovec iov[CONN_SEND_IOV_MAX];
	struct msghdr msg;
	size_t send_skip; /* bytes of the head response already sent */

	/* Zero-copy sends awaiting notification, oldest first (a ring). */
	struct conn_zc zc[CONN_SEND_ZC_INFLIGHT_MAX];
	int zc_head, zc_count;

	struct conn *next, *prev;
};

/* Take ownership of an accepted socket and start reading. */
void conn_start(struct shard *sh, int fd);

/* A request became ready (response encoded, or none due): send what can be
 * sent, in order. */
void conn_response_ready(struct conn *c);

/* Stop reading and close the connection; its memory is freed at the end
 * of a loop turn once no operation, unfinished request or unnotified
 * zero-copy send refers to it, so c stays valid for callers. Used for
 * framing errors, where Kafka closes the connection. */
void conn_close(struct conn *c, const char *why);

/* The shard's memory fell back under its low-water mark (mem.paused is
 * false again): run the bytes held back and read again from every
 * connection not held back for its own reasons. */
void conn_resume_all(struct shard *sh);

/* Close every connection (shutdown). */
void conn_close_all(struct shard *sh);

/* End of a loop turn: re-arm recvs that ran out of provided buffers, and
 * free closed connections nothing refers to any more. */
void conn_reap(struct shard *sh);

#endif

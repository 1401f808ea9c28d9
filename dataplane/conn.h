/*
 * conn: one client TCP connection on the posix (kernel TCP over io_uring)
 * backend: framing, in-order responses, backpressure.
 *
 * Kafka framing: a 4-byte big-endian size, then the request. Requests are
 * run as soon as they are whole; their responses may become ready out of
 * order (a produce waits for durability, a fetch may long-poll) but are sent
 * in request order, as clients require. While CONN_INFLIGHT_REQUESTS_MAX
 * requests are unanswered the connection is not read.
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
#include "storage/uring_op.h"

struct shard;
struct request;

/* A shard's network state shared by its connections (receive buffer ring,
 * and so on). Embedded in struct shard. */
struct net_shard {
	int unused;
};

/* Shard start-up and shutdown: set up / tear down the shard's network
 * state. 0 or -errno. */
int net_shard_init(struct shard *sh);
void net_shard_destroy(struct shard *sh);

struct conn {
	struct shard *sh;
	int fd;
	uint64_t id;
	char peer[64];

	struct uring_op recv_op, send_op;
	bool recv_armed, send_armed, closing;
	bool parsing; /* inside conn_parse: the buffer must not move or be read into */

	uint8_t *rbuf;
	size_t rlen, rcap;

	/* Requests in arrival order; the head is the next to answer. */
	struct request *rq_head, *rq_tail;
	int n_requests;

	/* The sendmsg in flight: responses of the first send_reqs requests. */
	struct iovec iov[CONN_SEND_IOV_MAX];
	struct msghdr msg;
	int send_reqs;
	size_t send_skip; /* bytes of the head response already sent */

	struct conn *next, *prev;
};

/* Take ownership of an accepted socket and start reading. */
void conn_start(struct shard *sh, int fd);

/* A request became ready (response encoded, or none due): send what can be
 * sent, in order. */
void conn_response_ready(struct conn *c);

/* Stop reading and close the connection; its memory is freed at the end
 * of the loop turn once nothing is in flight, so c stays valid for callers. Used for
 * framing errors, where Kafka closes the connection. */
void conn_close(struct conn *c, const char *why);

/* The shard's memory fell back under its low-water mark: read again from
 * every connection that was held back by the budget. */
void conn_resume_all(struct shard *sh);

/* Close every connection (shutdown). */
void conn_close_all(struct shard *sh);

/* End of a loop turn: free closed connections nothing refers to any more. */
void conn_reap(struct shard *sh);

#endif

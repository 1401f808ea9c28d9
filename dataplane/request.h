/*
 * request: one Kafka request from arrival to its response.
 *
 * A request object is taken from the shard's free list when a whole frame
 * has arrived and returned to it once its response has been sent; its arena
 * (decoded arrays), response writer and fetch buffer keep their memory
 * across uses, so a steady request mix allocates nothing.
 *
 * Handlers (handle_*.c) decode the body from the frame, act, and either
 * answer at once (request_respond_*) or keep what they need in the arena and
 * answer later; a frame is only valid during the handler call.
 */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka/gen/kafka_msgs.h"
#include "kafka/kafka_errors.h"
#include "kafka/kafka_wire.h"

struct shard;
struct conn;

struct request {
	struct shard *sh;
	struct conn *conn;
	struct request *next; /* in the connection's queue or the free list */

	int16_t api_key, api_version;
	int32_t correlation_id;
	int16_t response_header_version;
	struct kstr client_id;

	bool ready;       /* response encoded (or none is due) */
	bool no_response; /* acks=0 produce */

	struct karena arena;
	struct kwriter resp;
	int64_t mem_charged; /* this request's memory, as charged to the shard budget */

	/* Parts sent to other shards (xcall) and not back yet; the request
	 * (and its connection) stays allocated until they are. resume runs
	 * when the last one is back. */
	int remote_pending;
	void (*resume)(struct request *req);

	/* An answer that waits (for durability, other shards, shard 0): the
	 * decoded response being assembled, in the arena. */
	void *resp_body;
	/* Produce: partitions still waiting for durability or their owner. */
	int pending_waits;
	int16_t produce_acks;
	bool produce_failed; /* some partition failed (acks=0 closes the connection) */

	/* Fetch: parked until data, timeout or shutdown. */
	void *fetch_state;
	int64_t deadline_ms;
	struct request *wait_next, *wait_prev;
	bool parked;
	uint64_t fetch_pass; /* last fetch_recheck_all pass that saw it */
	uint8_t *read_buf;
	size_t read_cap, read_used;
};

/* Handle one whole request frame (the bytes after the size prefix). Returns
 * 0, or -1 when the connection must be closed (framing error, unknown API,
 * unsupported version, undecodable request: Kafka closes in those cases). */
int request_handle_frame(struct conn *c, const uint8_t *frame, size_t len);

/* Start a response: resets the writer, writes size placeholder and header. */
void request_response_begin(struct request *req);
/* Patch the size and mark ready; sends if it is at the head of the queue. */
void request_response_end(struct request *req);
/* Mark a request that gets no response (acks=0) as finished. */
void request_finish_silently(struct request *req);

/* Charge the change in this request's memory to the shard budget. */
void request_mem_sync(struct request *req);

/* A part of req that was sent to another shard is back. */
void request_remote_done(struct request *req);

/* Return a sent request to the shard. */
void request_release(struct request *req);
/* Free the shard's idle requests (shutdown). */
void request_free_all(struct shard *sh);

/* Memory for a fetch's record bytes (kept across uses). NULL on ENOMEM. */
uint8_t *request_read_buf(struct request *req, size_t need);

/* Handlers: decode with r at the start of the body. Return 0 or -1 (close). */
int handle_ApiVersions(struct request *req, struct kreader *r);
int handle_Metadata(struct request *req, struct kreader *r);
int handle_Produce(struct request *req, struct kreader *r);
int handle_Fetch(struct request *req, struct kreader *r);
int handle_ListOffsets(struct request *req, struct kreader *r);
int handle_CreateTopics(struct request *req, struct kreader *r);
int handle_DeleteTopics(struct request *req, struct kreader *r);
int handle_CreatePartitions(struct request *req, struct kreader *r);
int handle_InitProducerId(struct request *req, struct kreader *r);
int handle_DeleteRecords(struct request *req, struct kreader *r);
/* Consumer groups and committed offsets (handle_findcoordinator.c,
 * handle_group.c, handle_offsetcommit.c, handle_groupadmin.c). */
int handle_FindCoordinator(struct request *req, struct kreader *r);
int handle_JoinGroup(struct request *req, struct kreader *r);
int handle_SyncGroup(struct request *req, struct kreader *r);
int handle_Heartbeat(struct request *req, struct kreader *r);
int handle_LeaveGroup(struct request *req, struct kreader *r);
int handle_OffsetCommit(struct request *req, struct kreader *r);
int handle_OffsetFetch(struct request *req, struct kreader *r);
int handle_OffsetDelete(struct request *req, struct kreader *r);
int handle_DescribeGroups(struct request *req, struct kreader *r);
int handle_ListGroups(struct request *req, struct kreader *r);
int handle_DeleteGroups(struct request *req, struct kreader *r);
/* The consumer group protocol (KIP-848): handle_groupconsumer.c. */
int handle_ConsumerGroupHeartbeat(struct request *req, struct kreader *r);
int handle_ConsumerGroupDescribe(struct request *req, struct kreader *r);

/* Fill an ApiVersions response's API list (arena memory). 0 or -1. */
int handle_ApiVersions_fill(struct request *req, struct kafka_ApiVersionsResponse *resp);

/* The APIs this broker serves, with the versions it advertises. */
struct api_support {
	int16_t api_key;
	int16_t min_version, max_version; /* served */
	int16_t advertised_min;           /* listed in ApiVersions */
	int (*handle)(struct request *req, struct kreader *r);
};
const struct api_support *request_api_support(int16_t api_key);
extern const struct api_support request_apis[];
extern const int request_apis_count;

/* Fetch waiters: re-run parked fetches (a high watermark moved, or time). */
void fetch_recheck_all(struct shard *sh, bool all);
void fetch_cancel(struct request *req);
/* Give back the read windows a fetch holds (read_pool.h): its response was
 * sent, or will not be. No-op for other requests. */
void fetch_release(struct request *req);
int64_t fetch_next_deadline_ms(struct shard *sh);

/* Produce waiters: a partition's high watermark moved or it failed. */
struct partition;
void produce_waits_advance(struct shard *sh, struct partition *p);
void produce_waits_fail_all(struct shard *sh, struct partition *p, int16_t error_code);

#endif

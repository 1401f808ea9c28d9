/*
 * request: frame dispatch, the request pool, response framing, and the table
 * of APIs this broker serves. See request.h.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "request.h"
#include "say.h"
#include "shard.h"

/* Versions served: from Kafka 4.0's minimum (KIP-896) to the schema's
 * maximum; the group APIs from v0, every version the schemas declare
 * (their old versions differ only in fields, which the codec handles). ApiVersions lists these, except that Produce is listed from v0,
 * as Kafka 4.0 does: librdkafka before 2.11 only compresses with gzip,
 * snappy or lz4 when the broker's Produce range reaches v0. A Produce v0-2
 * request is still refused like any unsupported version (connection
 * closed); clients that speak v2 batches never send one. */
const struct api_support request_apis[] = {
	{ KAFKA_API_Produce, 3, 11, 0, handle_Produce },
	{ KAFKA_API_Fetch, 4, 17, 4, handle_Fetch },
	{ KAFKA_API_ListOffsets, 1, 10, 1, handle_ListOffsets },
	{ KAFKA_API_Metadata, 0, 12, 0, handle_Metadata },
	{ KAFKA_API_ApiVersions, 0, 4, 0, handle_ApiVersions },
	{ KAFKA_API_CreateTopics, 2, 7, 2, handle_CreateTopics },
	{ KAFKA_API_DeleteTopics, 1, 6, 1, handle_DeleteTopics },
	{ KAFKA_API_CreatePartitions, 0, 3, 0, handle_CreatePartitions },
	{ KAFKA_API_DeleteRecords, 0, 2, 0, handle_DeleteRecords },
	{ KAFKA_API_InitProducerId, 0, 5, 0, handle_InitProducerId },
	{ KAFKA_API_OffsetCommit, 0, 9, 0, handle_OffsetCommit },
	{ KAFKA_API_OffsetFetch, 0, 9, 0, handle_OffsetFetch },
	{ KAFKA_API_FindCoordinator, 0, 6, 0, handle_FindCoordinator },
	{ KAFKA_API_JoinGroup, 0, 9, 0, handle_JoinGroup },
	{ KAFKA_API_Heartbeat, 0, 4, 0, handle_Heartbeat },
	{ KAFKA_API_LeaveGroup, 0, 5, 0, handle_LeaveGroup },
	{ KAFKA_API_SyncGroup, 0, 5, 0, handle_SyncGroup },
	{ KAFKA_API_DescribeGroups, 0, 5, 0, handle_DescribeGroups },
	{ KAFKA_API_ListGroups, 0, 5, 0, handle_ListGroups },
	{ KAFKA_API_DeleteGroups, 0, 2, 0, handle_DeleteGroups },
	{ KAFKA_API_OffsetDelete, 0, 0, 0, handle_OffsetDelete },
	{ KAFKA_API_ConsumerGroupHeartbeat, 0, 1, 0, handle_ConsumerGroupHeartbeat },
	{ KAFKA_API_ConsumerGroupDescribe, 0, 0, 0, handle_ConsumerGroupDescribe },
};
const int request_apis_count = (int)(sizeof(request_apis) / sizeof(request_apis[0]));

const struct api_support *request_api_support(int16_t api_key)
{
	for (int i = 0; i < request_apis_count; i++)
		if (request_apis[i].api_key == api_key)
			return &request_apis[i];
	return NULL;
}

static struct request *request_get(struct shard *sh, struct conn *c)
{
	struct request *req = sh->free_requests;
	if (req != NULL) {
		sh->free_requests = req->next;
		sh->n_free_requests--;
	} else {
		req = calloc(1, sizeof(*req));
		if (req == NULL)
			return NULL;
		karena_init(&req->arena, REQUEST_ARENA_CHUNK_BYTES, REQUEST_ARENA_LIMIT_BYTES);
		kw_init(&req->resp, 4096, RESPONSE_INLINE_MAX_BYTES);
	}
	req->sh = sh;
	req->conn = c;
	req->next = NULL;
	return req;
}

static int64_t request_footprint(const struct request *req)
{
	return (int64_t)(sizeof(*req) + req->arena.cap_bytes + req->resp.cap + req->read_cap);
}

void request_mem_sync(struct request *req)
{
	int64_t now = request_footprint(req);
	shard_mem_charge(&req->sh->mem, now - req->mem_charged);
	req->mem_charged = now;
}

void request_remote_done(struct request *req)
{
	if (--req->remote_pending == 0 && req->resume != NULL)
		req->resume(req);
}

static void request_free(struct request *req)
{
	shard_mem_charge(&req->sh->mem, -req->mem_charged);
	karena_free(&req->arena);
	kw_free(&req->resp);
	free(req->read_buf);
	free(req);
}

void request_free_all(struct shard *sh)
{
	while (sh->free_requests != NULL) {
		struct request *r = sh->free_requests;
		sh->free_requests = r->next;
		request_free(r);
	}
	sh->n_free_requests = 0;
}

void request_release(struct request *req)
{
	struct shard *sh = req->sh;
	/* Sent (or never to be): its record bytes in read windows are free. */
	fetch_release(req);
	/* Near its budget the shard keeps no idle memory: pooled requests
	 * hold arenas and buffers. */
	if (sh->n_free_requests >= REQUEST_FREE_MAX || sh->mem.used > sh->mem.low) {
		request_free(req);
		return;
	}
	if (req->arena.used_bytes > REQUEST_ARENA_KEEP_BYTES) {
		karena_free(&req->arena);
		karena_init(&req->arena, REQUEST_ARENA_CHUNK_BYTES, REQUEST_ARENA_LIMIT_BYTES);
	} else {
		karena_reset(&req->arena);
	}
	if (req->resp.cap > RESPONSE_KEEP_BYTES) {
		kw_free(&req->resp);
		kw_init(&req->resp, 4096, RESPONSE_INLINE_MAX_BYTES);
	} else {
		kw_reset(&req->resp);
	}
	req->ready = req->no_response = req->parked = false;
	req->pending_waits = 0;
	req->remote_pending = 0;
	req->resume = NULL;
	req->produce_failed = false;
	req->resp_body = req->fetch_state = NULL;
	req->wait_next = req->wait_prev = NULL;
	req->read_used = 0;
	if (req->read_cap > FETCH_READ_BUF_KEEP_BYTES) {
		free(req->read_buf);
		req->read_buf = NULL;
		req->read_cap = 0;
	}
	request_mem_sync(req);
	req->conn = NULL;
	req->next = sh->free_requests;
	sh->free_requests = req;
	sh->n_free_requests++;
}

uint8_t *request_read_buf(struct request *req, size_t need)
{
	if (need > req->read_cap) {
		uint8_t *nb = realloc(req->read_buf, need);
		if (nb == NULL)
			return NULL;
		req->read_buf = nb;
		req->read_cap = need;
	}
	return req->read_buf;
}

static void conn_queue_push(struct conn *c, struct request *req)
{
	if (c->rq_tail != NULL)
		c->rq_tail->next = req;
	else
		c->rq_head = req;
	c->rq_tail = req;
	c->n_requests++;
}

/* Undo conn_queue_push of the tail request (its handler failed). */
static void conn_queue_pop_tail(struct conn *c, struct request *req)
{
	struct request **pp = &c->rq_head;
	c->rq_tail = NULL;
	while (*pp != NULL && *pp != req) {
		c->rq_tail = *pp;
		pp = &(*pp)->next;
	}
	if (*pp == req) {
		*pp = NULL;
		c->n_requests--;
	}
}

void request_response_begin(struct request *req)
{
	struct kwriter *w = &req->resp;
	kw_reset(w);
	kw_reserve(w, 4); /* frame size, patched in request_response_end */
	kw_int32(w, req->correlation_id);
	if (req->response_header_version >= 1)
		kw_uvarint(w, 0); /* no tagged fields in the header */
}

void request_response_end(struct request *req)
{
	struct kwriter *w = &req->resp;
	if (w->err != 0) {
		/* Only RESPONSE_INLINE_MAX_BYTES or ENOMEM get here: the client
		 * cannot be answered, so it is disconnected and retries. */
		say_warn("%s: response to api %d could not be encoded (error %d): closing",
			 req->conn->peer, req->api_key, w->err);
		req->ready = true;
		req->no_response = true;
		conn_close(req->conn, NULL);
		return;
	}
	kw_patch_int32(w, 0, (int32_t)(kw_total_len(w) - 4));
	request_mem_sync(req);
	req->ready = true;
	conn_response_ready(req->conn);
}

void request_finish_silently(struct request *req)
{
	req->ready = true;
	req->no_response = true;
	conn_response_ready(req->conn);
}

static int16_t be16_at(const uint8_t *p)
{
	return (int16_t)((uint16_t)p[0] << 8 | p[1]);
}

/* ApiVersions at a version we do not serve: answer UNSUPPORTED_VERSION with
 * the list of what we do serve, encoded as v0 so any client can read it
 * (KIP-511). */
static int request_apiversions_unsupported(struct request *req)
{
	struct kafka_ApiVersionsResponse resp;
	kafka_ApiVersionsResponse_init(&resp);
	resp.ErrorCode = KAFKA_UNSUPPORTED_VERSION;
	int rc = handle_ApiVersions_fill(req, &resp);
	if (rc != 0)
		return rc;
	req->response_header_version = 0;
	request_response_begin(req);
	kafka_ApiVersionsResponse_encode(&req->resp, 0, &resp);
	request_response_end(req);
	return 0;
}

int request_handle_frame(struct conn *c, const uint8_t *frame, size_t len)
{
	struct shard *sh = c->sh;
	int16_t api_key = be16_at(frame), api_version = be16_at(frame + 2);
	const struct api_support *api = request_api_support(api_key);
	if (api == NULL) {
		say_warn("%s: unknown or unsupported api key %d: closing", c->peer, api_key);
		return -1;
	}
	bool unsupported = api_version < api->min_version || api_version > api->max_version;
	if (unsupported && api_key != KAFKA_API_ApiVersions) {
		say_warn("%s: unsupported version %d of api %d (serving %d-%d): closing", c->peer,
			 api_version, api_key, api->min_version, api->max_version);
		return -1;
	}
	struct request *req = request_get(sh, c);
	if (req == NULL) {
		say_warn("%s: out of memory for a request: closing", c->peer);
		return -1;
	}
	req->api_key = api_key;
	req->api_version = api_version;
	req->correlation_id = (int32_t)((uint32_t)frame[4] << 24 | (uint32_t)frame[5] << 16 |
					(uint32_t)frame[6] << 8 | frame[7]);
	conn_queue_push(c, req);
	sh->stats.requests++;

	int rc;
	if (unsupported) {
		rc = request_apiversions_unsupported(req);
	} else {
		struct kreader r;
		struct kafka_RequestHeader hdr;
		kr_init(&r, frame, len, &req->arena);
		rc = kafka_RequestHeader_decode(&r, kafka_request_header_version(api_key, api_version),
						&hdr);
		req->client_id = hdr.ClientId;
		req->response_header_version = kafka_response_header_version(api_key, api_version);
		if (rc == 0)
			rc = api->handle(req, &r);
		else
			say_warn("%s: malformed request header: closing", c->peer);
		req->client_id = KSTR_NULL; /* it pointed into the frame */
	}
	if (rc != 0) {
		conn_queue_pop_tail(c, req);
		request_release(req);
		return -1;
	}
	request_mem_sync(req);
	return 0;
}

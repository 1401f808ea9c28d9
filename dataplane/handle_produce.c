/*
 * Produce: validate each partition's record batch, append it to the
 * partition log (idempotent-producer checks happen there), and answer once
 * every appended batch is durable (acks=1/-1) or at once (errors). acks=0
 * gets no response; an error on such a request closes the connection, as
 * Kafka does, since the client would otherwise never learn of it.
 *
 * Durability: the append only copies the batch into the log's write buffer.
 * The shard's end-of-turn group commit writes and syncs it; the log's
 * listener then calls produce_waits_advance, which finishes the requests
 * whose batches are now under the high watermark.
 *
 * A partition owned by another shard: this shard validates the batch (CRC
 * and all, so that work stays with the connection), copies it into the
 * request's arena (the receive buffer is reused once the handler returns)
 * and sends it to the owner as an xproduce; the owner appends it and
 * answers once it is durable. The response goes out when every partition,
 * local or not, has its answer.
 */
#include "conn.h"
#include "group.h"
#include "handlers.h"
#include "request.h"
#include "say.h"
#include "shard.h"
#include "storage/batch.h"
#include "storage/compact_batch.h"
#include "xcall.h"

typedef struct kafka_ProduceResponse_TopicProduceResponse pr_topic;
typedef struct kafka_ProduceResponse_PartitionProduceResponse pr_partition;

/* One partition's batch sent to the shard that owns it. Lives in the
 * request's arena; the owner writes the answer into *out. */
struct xproduce {
	struct xcall xc;
	struct request *req;   /* the caller's: only touched back on its shard */
	struct kuuid topic_id;
	int32_t index;
	const uint8_t *records; /* arena copy */
	int32_t len;
	struct batch_hdr h;
	int16_t acks;
	int64_t now_ms;
	pr_partition *out;
	struct durable_wait wait;
};

static void produce_finish(struct request *req)
{
	if (req->produce_acks == 0) {
		/* Kafka closes an acks=0 connection on an error: the client
		 * would otherwise never learn of it. */
		if (req->produce_failed)
			conn_close(req->conn, NULL);
		request_finish_silently(req);
		return;
	}
	struct kafka_ProduceResponse *resp = req->resp_body;
	request_response_begin(req);
	kafka_ProduceResponse_encode(&req->resp, req->api_version, resp);
	request_response_end(req);
}

static void produce_wait_resolved(struct request *req)
{
	if (--req->pending_waits == 0)
		produce_finish(req);
}

static void durable_wait_resolved(struct shard *sh, struct durable_wait *w)
{
	if (w->done != NULL)
		w->done(sh, w);
	else if (w->x != NULL)
		xcall_reply(sh, &w->x->xc);
	else
		produce_wait_resolved(w->req);
}

void produce_waits_advance(struct shard *sh, struct partition *p)
{
	/* Batches under the high watermark are durable even if the log has
	 * just gone offline (the same completion can do both): they succeed,
	 * and only the rest fail. */
	int64_t hw = plog_high_watermark(p->log);
	struct durable_wait **pp = &p->waits_head;
	p->waits_tail = NULL;
	while (*pp != NULL) {
		struct durable_wait *w = *pp;
		if (w->offset_needed <= hw) {
			*pp = w->next;
			durable_wait_resolved(sh, w);
		} else {
			p->waits_tail = w;
			pp = &w->next;
		}
	}
	/* Offline, or the disk is full: the rest are not acknowledged. A
	 * full disk keeps their data for the write retry, so a record told
	 * KAFKA_STORAGE_ERROR may still appear, as after any error Kafka
	 * gives (the producer's retry is deduplicated when idempotent). */
	if (plog_error(p->log) != 0 || plog_write_stalled(p->log))
		produce_waits_fail_all(sh, p, KAFKA_KAFKA_STORAGE_ERROR);
}

void produce_waits_fail_all(struct shard *sh, struct partition *p, int16_t error_code)
{
	while (p->waits_head != NULL) {
		struct durable_wait *w = p->waits_head;
		p->waits_head = w->next;
		*w->error_code = error_code;
		durable_wait_resolved(sh, w);
	}
	p->waits_tail = NULL;
}

void partition_wait_durable(struct partition *p, struct durable_wait *w, int64_t offset_needed,
			    int16_t *error_code)
{
	w->offset_needed = offset_needed;
	w->error_code = error_code;
	w->next = NULL;
	if (p->waits_tail != NULL)
		p->waits_tail->next = w;
	else
		p->waits_head = w;
	p->waits_tail = w;
}

static int16_t produce_error_of_batch(int rc)
{
	switch (rc) {
	case BATCH_ERR_MAGIC:
		/* Produce v3+ carries only magic v2 batches (Kafka 4 rejects
		 * v0/v1 message sets with INVALID_RECORD). */
		return KAFKA_INVALID_RECORD;
	case BATCH_ERR_CRC:
	case BATCH_ERR_TRUNCATED:
	case BATCH_ERR_INVALID:
	default:
		return KAFKA_CORRUPT_MESSAGE;
	}
}

static int16_t produce_error_of_append(int rc)
{
	switch (rc) {
	case PLOG_ERR_OUT_OF_ORDER_SEQUENCE:
		return KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
	case PLOG_ERR_INVALID_PRODUCER_EPOCH:
		return KAFKA_INVALID_PRODUCER_EPOCH;
	case PLOG_ERR_BUFFER_FULL:
		return KAFKA_REQUEST_TIMED_OUT; /* retriable: the producer backs off */
	default:
		return KAFKA_KAFKA_STORAGE_ERROR;
	}
}

/* Kafka's checks of one partition's records. 0, or the error code. */
static int16_t produce_validate(struct partition *p, struct kbytes records, struct batch_hdr *h)
{
	if (records.len <= 0)
		return KAFKA_INVALID_RECORD;
	int n = batch_validate(records.ptr, (size_t)records.len, h);
	if (n < 0)
		return produce_error_of_batch(n);
	if (n != records.len)
		return KAFKA_INVALID_RECORD; /* Produce v3+ carries exactly one batch */
	/* As Kafka's LogValidator: a client batch must hold records and its
	 * offset range must match its count. */
	if (h->records_count <= 0 || (int64_t)h->last_offset_delta + 1 != h->records_count)
		return KAFKA_INVALID_RECORD;
	if (n > p->topic->meta->max_message_bytes)
		return KAFKA_MESSAGE_TOO_LARGE;
	/* As Kafka's LogValidator.validateKey: a compacted log keeps records
	 * by key, so one without is refused. A compressed batch (any codec)
	 * is decompressed for this (the one allocation on this path, for
	 * compacted topics only); one that does not decode, or decompresses
	 * past COMPACT_DECOMPRESS_BYTES_DEFAULT, is let through unseen, and
	 * the cleaner keeps it whole. */
	if (p->topic->meta->cleanup_compact && compact_batch_all_keyed(records.ptr, h) == 0)
		return KAFKA_INVALID_RECORD;
	return KAFKA_NONE;
}

/* Append a validated batch to a log this shard owns; fill out. Returns
 * the high watermark the answer must wait for, or -1 to answer now. */
static int64_t produce_append(struct shard *sh, struct partition *p, const uint8_t *records,
			      int32_t len, const struct batch_hdr *h, int16_t acks, int64_t now_ms,
			      pr_partition *out)
{
	if (plog_error(p->log) != 0) {
		out->ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
		return -1;
	}
	struct plog_append_result res;
	int rc = plog_append(p->log, records, (size_t)len, h, 0, now_ms, &res);
	if (rc < 0) {
		out->ErrorCode = produce_error_of_append(rc);
		return -1;
	}
	out->BaseOffset = res.base_offset;
	out->LogStartOffset = res.log_start_offset;
	if (rc == 0) {
		sh->stats.batches++;
		sh->stats.records_appended_bytes += (uint64_t)len;
		shard_partition_dirty(sh, p);
	}
	/* A duplicate is answered with the original offsets, but only once
	 * the original is durable too. */
	int64_t needed = res.base_offset + h->last_offset_delta + 1;
	if (acks != 0 && plog_high_watermark(p->log) < needed)
		return needed;
	return -1;
}

/* Owner side of a forwarded batch. */
static void xproduce_run(struct shard *sh, struct xcall *xc)
{
	struct xproduce *x = container_of(xc, struct xproduce, xc);
	struct partition *p = shard_partition_owned(sh, x->topic_id, x->index);
	if (p == NULL) {
		x->out->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		xcall_reply(sh, xc);
		return;
	}
	int64_t needed = produce_append(sh, p, x->records, x->len, &x->h, x->acks, x->now_ms,
					x->out);
	if (needed < 0) {
		xcall_reply(sh, xc);
		return;
	}
	x->wait.req = NULL;
	x->wait.x = x;
	x->wait.done = NULL;
	partition_wait_durable(p, &x->wait, needed, &x->out->ErrorCode);
}

static void xproduce_done(struct shard *sh, struct xcall *xc)
{
	struct xproduce *x = container_of(xc, struct xproduce, xc);
	(void)sh;
	if (x->out->ErrorCode != KAFKA_NONE)
		x->req->produce_failed = true;
	produce_wait_resolved(x->req);
}

/* Send a validated batch to the shard that owns p. */
static void produce_forward(struct request *req, struct partition *p, struct kbytes records,
			    const struct batch_hdr *h, int64_t now_ms, pr_partition *out)
{
	struct shard *sh = req->sh;
	struct xproduce *x = karena_alloc(&req->arena, sizeof(*x));
	uint8_t *copy = karena_alloc(&req->arena, (size_t)records.len);
	if (x == NULL || copy == NULL) {
		out->ErrorCode = KAFKA_REQUEST_TIMED_OUT; /* out of memory: retriable */
		return;
	}
	memcpy(copy, records.ptr, (size_t)records.len);
	x->req = req;
	x->topic_id = p->topic->meta->id;
	x->index = p->index;
	x->records = copy;
	x->len = records.len;
	x->h = *h;
	x->acks = req->produce_acks;
	x->now_ms = now_ms;
	x->out = out;
	req->pending_waits++;
	sh->stats.produce_forwarded++;
	xcall_send(sh, p->owner, &x->xc, xproduce_run, xproduce_done);
}

/* Validate one partition's records and append them here or at their owner;
 * fill out. w is this partition's wait slot, used if the batch is local and
 * not durable yet. */
static void produce_partition(struct request *req, struct partition *p, struct kbytes records,
			      pr_partition *out, struct durable_wait *w)
{
	struct shard *sh = req->sh;
	struct batch_hdr h;
	out->ErrorCode = produce_validate(p, records, &h);
	if (out->ErrorCode != KAFKA_NONE)
		return;
	int64_t now_ms = handler_wall_ms();
	if (p->topic->meta->log_append_time) {
		/* The batch sits in the connection's receive buffer, which is ours
		 * until the handler returns: stamp it in place. */
		batch_set_log_append_time((uint8_t *)records.ptr, (size_t)records.len, now_ms, &h);
		out->LogAppendTimeMs = now_ms;
	}
	if (p->owner != sh->id) {
		produce_forward(req, p, records, &h, now_ms, out);
		return;
	}
	int64_t needed = produce_append(sh, p, (const uint8_t *)records.ptr, records.len, &h,
					req->produce_acks, now_ms, out);
	if (needed >= 0) {
		w->req = req;
		w->x = NULL;
		w->done = NULL;
		partition_wait_durable(p, w, needed, &out->ErrorCode);
		req->pending_waits++;
	}
}

static struct partition *produce_find(struct request *req, struct kstr topic, int32_t index)
{
	struct shard *sh = req->sh;
	struct topic_state *ts = shard_topic_find(sh, topic);
	if (ts == NULL && sh->cfg->auto_create_topics && metadata_topic_name_valid(topic)) {
		/* Created on shard 0 and broadcast; this request gets the
		 * retriable UNKNOWN_TOPIC_OR_PARTITION and the client's retry
		 * finds the topic. */
		shard_topic_autocreate(sh, topic);
		return NULL;
	}
	if (ts == NULL || index < 0 || index >= ts->n_parts)
		return NULL;
	return &ts->parts[index];
}

int handle_Produce(struct request *req, struct kreader *r)
{
	struct kafka_ProduceRequest body;
	if (kafka_ProduceRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	int16_t acks = body.Acks;
	bool acks_valid = acks == 0 || acks == 1 || acks == -1;
	req->produce_acks = acks;

	struct kafka_ProduceResponse *resp = karena_alloc(&req->arena, sizeof(*resp));
	if (resp == NULL)
		return -1;
	kafka_ProduceResponse_init(resp);
	req->resp_body = resp;
	resp->Responses = HANDLER_ARRAY(req, pr_topic, body.TopicData_count);
	if (resp->Responses == NULL)
		return -1;
	resp->Responses_count = body.TopicData_count < 0 ? 0 : body.TopicData_count;

	/* Everything the request needs is allocated before the first append:
	 * once a wait is queued on a partition the request must run to its
	 * response, so nothing after that point may fail. */
	int32_t n_parts = 0;
	for (int32_t i = 0; i < resp->Responses_count; i++) {
		const struct kafka_ProduceRequest_TopicProduceData *td = &body.TopicData[i];
		pr_topic *rt = &resp->Responses[i];
		kafka_ProduceResponse_TopicProduceResponse_init(rt);
		rt->Name = handler_strdup(req, td->Name);
		int32_t np = td->PartitionData_count < 0 ? 0 : td->PartitionData_count;
		rt->PartitionResponses = HANDLER_ARRAY(req, pr_partition, np);
		if (rt->PartitionResponses == NULL)
			return -1;
		rt->PartitionResponses_count = np;
		n_parts += np;
	}
	struct durable_wait *waits = HANDLER_ARRAY(req, struct durable_wait, n_parts);
	if (waits == NULL)
		return -1;

	/* Keep the response from completing while partitions are appended. */
	req->pending_waits = 1;
	for (int32_t i = 0; i < resp->Responses_count; i++) {
		const struct kafka_ProduceRequest_TopicProduceData *td = &body.TopicData[i];
		pr_topic *rt = &resp->Responses[i];
		for (int32_t j = 0; j < rt->PartitionResponses_count; j++) {
			const struct kafka_ProduceRequest_PartitionProduceData *pd = &td->PartitionData[j];
			pr_partition *out = &rt->PartitionResponses[j];
			kafka_ProduceResponse_PartitionProduceResponse_init(out);
			out->Index = pd->Index;
			out->BaseOffset = -1;
			out->LogAppendTimeMs = -1;
			out->LogStartOffset = -1;
			struct partition *p = acks_valid ? produce_find(req, td->Name, pd->Index) : NULL;
			if (!acks_valid)
				out->ErrorCode = KAFKA_INVALID_REQUIRED_ACKS;
			else if (p == NULL)
				out->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
			else if (group_topic_is_internal(p->topic->meta->name))
				out->ErrorCode = KAFKA_INVALID_TOPIC_EXCEPTION; /* as Kafka */
			else
				produce_partition(req, p, pd->Records, out, waits++);
			req->produce_failed |= out->ErrorCode != KAFKA_NONE;
		}
	}
	if (acks == 0 && req->pending_waits == 1 && req->produce_failed) {
		req->pending_waits = 0;
		return -1; /* all local: close at once, as Kafka does */
	}
	produce_wait_resolved(req);
	return 0;
}

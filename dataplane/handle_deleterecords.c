/*
 * DeleteRecords: move partitions' log start offsets forward (an offset up
 * to the high watermark; -1 means the high watermark). Each answer carries
 * the new low watermark. The start offset is durable before the answer
 * (plog_delete_records syncs a small file: this blocks the owning shard
 * for two fsyncs per partition, which is acceptable for a rare admin
 * call); whole segments below it are deleted by the owner's next
 * retention pass, run at the end of the same turn. Partitions of other
 * shards are sent to their owner (an xdelete each), as ListOffsets does,
 * and the answer goes out when all are back, in request order.
 */
#include <errno.h>
#include <string.h>

#include "handlers.h"
#include "request.h"
#include "say.h"
#include "shard.h"

/* DeleteRecordsResponse.INVALID_LOW_WATERMARK: the answer of a failed one. */
#define DELETE_RECORDS_NO_LOW_WATERMARK (-1)

typedef struct kafka_DeleteRecordsResponse_DeleteRecordsTopicResult dr_topic;
typedef struct kafka_DeleteRecordsResponse_DeleteRecordsPartitionResult dr_partition;

/* Owner side: move the start offset of p, fill out. */
static void delete_records_partition(struct shard *sh, struct partition *p, int64_t offset,
				     dr_partition *out)
{
	int64_t before = plog_start_offset(p->log), low = -1;
	int rc = plog_delete_records(p->log, offset, &low);
	out->LowWatermark = DELETE_RECORDS_NO_LOW_WATERMARK;
	if (rc == -ERANGE) {
		out->ErrorCode = KAFKA_OFFSET_OUT_OF_RANGE;
		return;
	}
	if (rc != 0) {
		/* Offline or closing logs say so elsewhere; a failed save is
		 * news (a full or failing disk). */
		if (plog_error(p->log) == 0 && rc != PLOG_ERR_STORAGE)
			say_warn("DeleteRecords %s-%d: cannot save the log start offset: %s",
				 p->topic->meta->name, p->index, strerror(-rc));
		out->ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
		return;
	}
	out->ErrorCode = KAFKA_NONE;
	out->LowWatermark = low;
	if (low != before) {
		say_info("DeleteRecords %s-%d: log start offset %lld -> %lld", p->topic->meta->name,
			 p->index, (long long)before, (long long)low);
		shard_retention_soon(sh);
	}
}

/* Owner side (partition_call). */
static void delete_records_step(struct shard *sh, struct partition *p, int64_t offset, void *out)
{
	delete_records_partition(sh, p, offset, out);
}

static void delete_records_respond(struct request *req)
{
	request_response_begin(req);
	kafka_DeleteRecordsResponse_encode(&req->resp, req->api_version, req->resp_body);
	request_response_end(req);
}

/* The answers of one topic, before anything is done: allocation can fail
 * (and the connection close) only while no part is out at another shard. */
static int delete_records_topic_prepare(struct request *req,
					const struct kafka_DeleteRecordsRequest_DeleteRecordsTopic *t,
					dr_topic *rt)
{
	kafka_DeleteRecordsResponse_DeleteRecordsTopicResult_init(rt);
	rt->Name = handler_strdup(req, t->Name);
	int32_t np = t->Partitions_count < 0 ? 0 : t->Partitions_count;
	rt->Partitions = HANDLER_ARRAY(req, dr_partition, np);
	if (rt->Partitions == NULL)
		return -1;
	rt->Partitions_count = np;
	for (int32_t j = 0; j < np; j++) {
		dr_partition *out = &rt->Partitions[j];
		kafka_DeleteRecordsResponse_DeleteRecordsPartitionResult_init(out);
		out->PartitionIndex = t->Partitions[j].PartitionIndex;
		out->LowWatermark = DELETE_RECORDS_NO_LOW_WATERMARK;
	}
	return 0;
}

static void delete_records_topic(struct request *req,
				 const struct kafka_DeleteRecordsRequest_DeleteRecordsTopic *t,
				 dr_topic *rt)
{
	for (int32_t j = 0; j < rt->Partitions_count; j++) {
		dr_partition *out = &rt->Partitions[j];
		struct partition *p = shard_partition_find(req->sh, t->Name, out->PartitionIndex);
		if (p == NULL)
			out->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		else
			partition_call(req, p, delete_records_step, t->Partitions[j].Offset, out,
				       &out->ErrorCode);
	}
}

int handle_DeleteRecords(struct request *req, struct kreader *r)
{
	struct kafka_DeleteRecordsRequest body;
	if (kafka_DeleteRecordsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	/* Kept in the arena: remote answers are written into it later. */
	struct kafka_DeleteRecordsResponse *resp = karena_alloc(&req->arena, sizeof(*resp));
	if (resp == NULL)
		return -1;
	kafka_DeleteRecordsResponse_init(resp);
	int32_t nt = body.Topics_count < 0 ? 0 : body.Topics_count;
	resp->Topics = HANDLER_ARRAY(req, dr_topic, nt);
	if (resp->Topics == NULL)
		return -1;
	resp->Topics_count = nt;
	for (int32_t i = 0; i < nt; i++)
		if (delete_records_topic_prepare(req, &body.Topics[i], &resp->Topics[i]) != 0)
			return -1;
	req->resp_body = resp;
	req->resume = delete_records_respond;
	for (int32_t i = 0; i < nt; i++)
		delete_records_topic(req, &body.Topics[i], &resp->Topics[i]);
	if (req->remote_pending == 0)
		delete_records_respond(req);
	return 0;
}

/*
 * ListOffsets: offsets by position (-1 latest, -2 earliest, -3 the record
 * with the largest timestamp, -4 earliest local) or by time (the first
 * record whose timestamp is at or after the one asked for, via the time
 * index). Only offsets below the high watermark are ever reported.
 * Partitions of other shards are asked of their owner (an xlist each) and
 * the answer goes out when all are back.
 */
#include <errno.h>
#include <string.h>

#include "handlers.h"
#include "request.h"
#include "shard.h"

#define LIST_OFFSETS_LATEST (-1)
#define LIST_OFFSETS_EARLIEST (-2)
#define LIST_OFFSETS_MAX_TIMESTAMP (-3)
#define LIST_OFFSETS_EARLIEST_LOCAL (-4)

typedef struct kafka_ListOffsetsResponse_ListOffsetsTopicResponse lo_topic;
typedef struct kafka_ListOffsetsResponse_ListOffsetsPartitionResponse lo_partition;

static void list_offsets_partition(struct plog *log, int64_t when, lo_partition *out)
{
	int64_t hw = plog_high_watermark(log), offset = -1, ts = -1;
	out->Timestamp = -1;
	out->Offset = -1;
	if (plog_error(log) != 0) {
		out->ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
		return;
	}
	switch (when) {
	case LIST_OFFSETS_LATEST:
		out->Offset = hw;
		return;
	case LIST_OFFSETS_EARLIEST:
	case LIST_OFFSETS_EARLIEST_LOCAL:
		out->Offset = plog_start_offset(log);
		return;
	case LIST_OFFSETS_MAX_TIMESTAMP:
		if (plog_max_timestamp(log, &offset, &ts) != 0 || offset >= hw)
			return;
		break;
	default:
		if (when < 0 || plog_offset_for_timestamp(log, when, &offset, &ts) != 0 ||
		    offset >= hw)
			return;
		break;
	}
	out->Offset = offset;
	out->Timestamp = ts;
}

/* Owner side (partition_call). */
static void list_offsets_step(struct shard *sh, struct partition *p, int64_t when, void *out)
{
	(void)sh;
	list_offsets_partition(p->log, when, out);
}

static void list_offsets_respond(struct request *req)
{
	request_response_begin(req);
	kafka_ListOffsetsResponse_encode(&req->resp, req->api_version, req->resp_body);
	request_response_end(req);
}

int handle_ListOffsets(struct request *req, struct kreader *r)
{
	struct kafka_ListOffsetsRequest body;
	if (kafka_ListOffsetsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	/* Kept in the arena: remote answers are written into it later. */
	struct kafka_ListOffsetsResponse *resp = karena_alloc(&req->arena, sizeof(*resp));
	if (resp == NULL)
		return -1;
	kafka_ListOffsetsResponse_init(resp);
	int32_t nt = body.Topics_count < 0 ? 0 : body.Topics_count;
	resp->Topics = HANDLER_ARRAY(req, lo_topic, nt);
	if (resp->Topics == NULL)
		return -1;
	resp->Topics_count = nt;
	req->resp_body = resp;
	req->resume = list_offsets_respond;
	/* Every allocation first: once a part is forwarded, the request must
	 * live until it is back, so nothing after may fail it. */
	for (int32_t i = 0; i < nt; i++) {
		const struct kafka_ListOffsetsRequest_ListOffsetsTopic *t = &body.Topics[i];
		lo_topic *rt = &resp->Topics[i];
		kafka_ListOffsetsResponse_ListOffsetsTopicResponse_init(rt);
		rt->Name = handler_strdup(req, t->Name);
		int32_t np = t->Partitions_count < 0 ? 0 : t->Partitions_count;
		rt->Partitions = HANDLER_ARRAY(req, lo_partition, np);
		if (rt->Partitions == NULL)
			return -1;
		rt->Partitions_count = np;
	}
	for (int32_t i = 0; i < nt; i++) {
		const struct kafka_ListOffsetsRequest_ListOffsetsTopic *t = &body.Topics[i];
		lo_topic *rt = &resp->Topics[i];
		for (int32_t j = 0; j < rt->Partitions_count; j++) {
			const struct kafka_ListOffsetsRequest_ListOffsetsPartition *tp = &t->Partitions[j];
			lo_partition *out = &rt->Partitions[j];
			kafka_ListOffsetsResponse_ListOffsetsPartitionResponse_init(out);
			out->PartitionIndex = tp->PartitionIndex;
			out->LeaderEpoch = 0;
			struct partition *p = shard_partition_find(req->sh, t->Name, tp->PartitionIndex);
			if (p == NULL) {
				out->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
				out->Timestamp = -1;
				out->Offset = -1;
				continue;
			}
			partition_call(req, p, list_offsets_step, tp->Timestamp, out, &out->ErrorCode);
		}
	}
	if (req->remote_pending == 0)
		list_offsets_respond(req);
	return 0;
}

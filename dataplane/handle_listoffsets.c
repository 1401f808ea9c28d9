/*
 * ListOffsets: offsets by position (-1 latest, -2 earliest, -3 the record
 * with the largest timestamp, -4 earliest local) or by time (the first
 * record whose timestamp is at or after the one asked for, via the time
 * index). Only offsets below the high watermark are ever reported.
 */
#include <errno.h>

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

int handle_ListOffsets(struct request *req, struct kreader *r)
{
	struct kafka_ListOffsetsRequest body;
	if (kafka_ListOffsetsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct kafka_ListOffsetsResponse resp;
	kafka_ListOffsetsResponse_init(&resp);
	int32_t nt = body.Topics_count < 0 ? 0 : body.Topics_count;
	resp.Topics = HANDLER_ARRAY(req, lo_topic, nt);
	if (resp.Topics == NULL)
		return -1;
	resp.Topics_count = nt;
	for (int32_t i = 0; i < nt; i++) {
		const struct kafka_ListOffsetsRequest_ListOffsetsTopic *t = &body.Topics[i];
		lo_topic *rt = &resp.Topics[i];
		kafka_ListOffsetsResponse_ListOffsetsTopicResponse_init(rt);
		rt->Name = t->Name;
		int32_t np = t->Partitions_count < 0 ? 0 : t->Partitions_count;
		rt->Partitions = HANDLER_ARRAY(req, lo_partition, np);
		if (rt->Partitions == NULL)
			return -1;
		rt->Partitions_count = np;
		for (int32_t j = 0; j < np; j++) {
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
			list_offsets_partition(p->log, tp->Timestamp, out);
		}
	}
	request_response_begin(req);
	kafka_ListOffsetsResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

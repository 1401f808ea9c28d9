/*
 * Metadata: this broker, the cluster id, and the topics asked for (or all),
 * auto-creating missing ones when the client and auto.create.topics.enable
 * allow it. One node leads every partition until replication exists.
 */
#include "handlers.h"
#include "metadata.h"
#include "request.h"
#include "shard.h"

typedef struct kafka_MetadataResponse_MetadataResponseTopic md_topic;
typedef struct kafka_MetadataResponse_MetadataResponsePartition md_partition;

static int metadata_describe(struct request *req, const struct topic *t, md_topic *out,
			     int32_t *node_list)
{
	int32_t node = req->sh->cfg->node_id;
	out->Name = kstr_from(t->name);
	out->TopicId = t->id;
	out->ErrorCode = KAFKA_NONE;
	out->Partitions = HANDLER_ARRAY(req, md_partition, t->partitions);
	if (out->Partitions == NULL)
		return -1;
	out->Partitions_count = t->partitions;
	node_list[0] = node;
	for (int32_t i = 0; i < t->partitions; i++) {
		md_partition *p = &out->Partitions[i];
		kafka_MetadataResponse_MetadataResponsePartition_init(p);
		p->ErrorCode = KAFKA_NONE;
		p->PartitionIndex = i;
		p->LeaderId = node;
		p->LeaderEpoch = 0;
		p->ReplicaNodes = node_list;
		p->ReplicaNodes_count = 1;
		p->IsrNodes = node_list;
		p->IsrNodes_count = 1;
		p->OfflineReplicas_count = 0;
	}
	return 0;
}

/* One requested topic: describe it, create it, or say why not. */
static int metadata_requested(struct request *req,
			      const struct kafka_MetadataRequest_MetadataRequestTopic *rt,
			      bool allow_create, md_topic *out, int32_t *node_list)
{
	struct shard *sh = req->sh;
	struct topic_state *ts = NULL;
	if (rt->Name.len >= 0)
		ts = shard_topic_find(sh, rt->Name);
	else
		ts = shard_topic_find_id(sh, rt->TopicId);
	if (ts != NULL)
		return metadata_describe(req, ts->meta, out, node_list);

	out->Name = handler_strdup(req, rt->Name);
	out->TopicId = rt->TopicId;
	out->Partitions_count = 0;
	if (rt->Name.len < 0) {
		out->ErrorCode = KAFKA_UNKNOWN_TOPIC_ID;
		return 0;
	}
	if (!metadata_topic_name_valid(rt->Name)) {
		out->ErrorCode = KAFKA_INVALID_TOPIC_EXCEPTION;
		return 0;
	}
	if (!allow_create || !sh->cfg->auto_create_topics) {
		out->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		return 0;
	}
	int16_t err = shard_topic_create(sh, rt->Name, sh->cfg->num_partitions, NULL, 0, &ts);
	if (err == KAFKA_NONE)
		return metadata_describe(req, ts->meta, out, node_list);
	out->ErrorCode = err;
	return 0;
}

int handle_Metadata(struct request *req, struct kreader *r)
{
	struct shard *sh = req->sh;
	struct kafka_MetadataRequest body;
	if (kafka_MetadataRequest_decode(r, req->api_version, &body) != 0)
		return -1;

	struct kafka_MetadataResponse resp;
	kafka_MetadataResponse_init(&resp);
	struct kafka_MetadataResponse_MetadataResponseBroker *broker =
		HANDLER_ARRAY(req, struct kafka_MetadataResponse_MetadataResponseBroker, 1);
	int32_t *node_list = HANDLER_ARRAY(req, int32_t, 1);
	if (broker == NULL || node_list == NULL)
		return -1;
	kafka_MetadataResponse_MetadataResponseBroker_init(broker);
	broker->NodeId = sh->cfg->node_id;
	broker->Host = kstr_from(config_advertised_host(sh->cfg));
	broker->Port = config_advertised_port(sh->cfg);
	resp.Brokers = broker;
	resp.Brokers_count = 1;
	resp.ClusterId = kstr_from(metadata_cluster_id(sh->md));
	resp.ControllerId = sh->cfg->node_id;

	/* v0: an empty list means all topics; v1+: null means all. */
	bool all = body.Topics_count < 0 || (req->api_version == 0 && body.Topics_count == 0);
	int32_t n = all ? metadata_topic_count(sh->md) : body.Topics_count;
	resp.Topics = HANDLER_ARRAY(req, md_topic, n);
	if (resp.Topics == NULL)
		return -1;
	resp.Topics_count = n;
	bool allow_create = req->api_version < 4 || body.AllowAutoTopicCreation;
	for (int32_t i = 0; i < n; i++) {
		md_topic *t = &resp.Topics[i];
		kafka_MetadataResponse_MetadataResponseTopic_init(t);
		int rc = all ? metadata_describe(req, metadata_topic_at(sh->md, i), t, node_list)
			     : metadata_requested(req, &body.Topics[i], allow_create, t, node_list);
		if (rc != 0)
			return -1;
	}
	request_response_begin(req);
	kafka_MetadataResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

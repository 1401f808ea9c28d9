/*
 * Metadata: the broker endpoints, the cluster id, and the topics asked for
 * (or all), auto-creating missing ones when the client and
 * auto.create.topics.enable allow it. One node leads every partition until
 * replication exists; with shard.endpoints=per-shard each shard is listed
 * as its own broker and leads the partitions it owns.
 *
 * Creation happens on shard 0 (it owns the metadata); a request that needs
 * it sends the creations there and is answered when they are done, so the
 * answer already describes the new topics.
 */
#include "conn.h"
#include "group.h"
#include "handlers.h"
#include "metadata.h"
#include "node.h"
#include "request.h"
#include "shard.h"

typedef struct kafka_MetadataResponse_MetadataResponseTopic md_topic;
typedef struct kafka_MetadataResponse_MetadataResponsePartition md_partition;
typedef struct kafka_MetadataResponse_MetadataResponseBroker md_broker;

struct metadata_state {
	struct kafka_MetadataRequest body; /* decoded from an arena copy */
	struct topic_op **ops;             /* creation asked for body.Topics[i], or NULL */
};

static int metadata_describe(struct request *req, struct topic_state *ts, md_topic *out)
{
	const struct topic *t = ts->meta;
	out->Name = kstr_from(t->name);
	out->TopicId = t->id;
	out->ErrorCode = KAFKA_NONE;
	/* Listed like any topic, flagged as Kafka flags it: clients leave
	 * internal topics out of pattern subscriptions. */
	out->IsInternal = group_topic_is_internal(t->name);
	out->Partitions = HANDLER_ARRAY(req, md_partition, t->partitions);
	int32_t *nodes = HANDLER_ARRAY(req, int32_t, t->partitions);
	if (out->Partitions == NULL || nodes == NULL)
		return -1;
	out->Partitions_count = t->partitions;
	for (int32_t i = 0; i < t->partitions; i++) {
		md_partition *p = &out->Partitions[i];
		kafka_MetadataResponse_MetadataResponsePartition_init(p);
		nodes[i] = shard_leader_id(req->sh, &ts->parts[i]);
		p->ErrorCode = KAFKA_NONE;
		p->PartitionIndex = i;
		p->LeaderId = nodes[i];
		p->LeaderEpoch = 0;
		p->ReplicaNodes = &nodes[i];
		p->ReplicaNodes_count = 1;
		p->IsrNodes = &nodes[i];
		p->IsrNodes_count = 1;
		p->OfflineReplicas_count = 0;
	}
	return 0;
}

static bool metadata_allow_create(struct request *req, const struct kafka_MetadataRequest *b)
{
	return (req->api_version < 4 || b->AllowAutoTopicCreation) && req->sh->cfg->auto_create_topics;
}

/* One requested topic: describe it, or say why not. */
static int metadata_requested(struct request *req, struct metadata_state *ms, int32_t i,
			      md_topic *out)
{
	const struct kafka_MetadataRequest_MetadataRequestTopic *rt = &ms->body.Topics[i];
	struct topic_state *ts = rt->Name.len >= 0 ? shard_topic_find(req->sh, rt->Name)
						   : shard_topic_find_id(req->sh, rt->TopicId);
	if (ts != NULL)
		return metadata_describe(req, ts, out);
	out->Name = rt->Name;
	out->TopicId = rt->TopicId;
	out->Partitions_count = 0;
	if (rt->Name.len < 0)
		out->ErrorCode = KAFKA_UNKNOWN_TOPIC_ID;
	else if (!metadata_topic_name_valid(rt->Name))
		out->ErrorCode = KAFKA_INVALID_TOPIC_EXCEPTION;
	else if (ms->ops[i] != NULL && ms->ops[i]->error != KAFKA_NONE &&
		 ms->ops[i]->error != KAFKA_TOPIC_ALREADY_EXISTS)
		out->ErrorCode = ms->ops[i]->error;
	else if (ms->ops[i] != NULL)
		out->ErrorCode = KAFKA_LEADER_NOT_AVAILABLE; /* deleted again meanwhile */
	else
		out->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
	return 0;
}

static int metadata_brokers(struct request *req, struct kafka_MetadataResponse *resp)
{
	struct shard *sh = req->sh;
	const struct broker_config *cfg = sh->cfg;
	int n = config_per_shard_endpoints(cfg) ? sh->n_shards : 1;
	md_broker *b = HANDLER_ARRAY(req, md_broker, n);
	if (b == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		kafka_MetadataResponse_MetadataResponseBroker_init(&b[i]);
		b[i].NodeId = n == 1 ? cfg->node_id : node_shard_id(cfg->node_id, i);
		b[i].Host = kstr_from(config_advertised_host(cfg));
		b[i].Port = config_advertised_port(cfg) + (n == 1 ? 0 : i);
	}
	resp->Brokers = b;
	resp->Brokers_count = n;
	return 0;
}

static int metadata_build(struct request *req)
{
	struct shard *sh = req->sh;
	struct metadata_state *ms = req->resp_body;
	struct kafka_MetadataResponse resp;
	kafka_MetadataResponse_init(&resp);
	if (metadata_brokers(req, &resp) != 0)
		return -1;
	resp.ClusterId = kstr_from(metadata_cluster_id(sh->node->md));
	resp.ControllerId = sh->cfg->node_id;
	/* v0: an empty list means all topics; v1+: null means all. */
	bool all = ms->body.Topics_count < 0 ||
		   (req->api_version == 0 && ms->body.Topics_count == 0);
	int32_t n = all ? sh->n_topics : ms->body.Topics_count;
	resp.Topics = HANDLER_ARRAY(req, md_topic, n);
	if (resp.Topics == NULL)
		return -1;
	resp.Topics_count = n;
	struct topic_state *ts = sh->topics_head;
	for (int32_t i = 0; i < n; i++) {
		md_topic *t = &resp.Topics[i];
		kafka_MetadataResponse_MetadataResponseTopic_init(t);
		int rc = all ? metadata_describe(req, ts, t) : metadata_requested(req, ms, i, t);
		if (rc != 0)
			return -1;
		if (all)
			ts = ts->list_next;
	}
	request_response_begin(req);
	kafka_MetadataResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

static void metadata_resume(struct request *req)
{
	if (metadata_build(req) != 0)
		conn_close(req->conn, "no memory for a Metadata response");
}

/* Ask shard 0 to create the requested topics that are missing. Every op
 * is allocated before the first is sent: once one is out, the request must
 * run to its answer. */
static int metadata_autocreate(struct request *req, struct metadata_state *ms)
{
	struct shard *sh = req->sh;
	for (int32_t i = 0; i < ms->body.Topics_count; i++) {
		const struct kafka_MetadataRequest_MetadataRequestTopic *rt = &ms->body.Topics[i];
		if (rt->Name.len < 0 || !metadata_topic_name_valid(rt->Name) ||
		    shard_topic_find(sh, rt->Name) != NULL)
			continue;
		struct topic_op *op = karena_alloc(&req->arena, sizeof(*op));
		if (op == NULL)
			return -1;
		op->kind = TOPIC_OP_CREATE;
		op->name = rt->Name;
		op->partitions = sh->cfg->num_partitions;
		op->finish = shard_topic_op_finish_request;
		op->arg = req;
		ms->ops[i] = op;
	}
	for (int32_t i = 0; i < ms->body.Topics_count; i++)
		if (ms->ops[i] != NULL) {
			req->remote_pending++;
			shard_topic_op(sh, ms->ops[i]);
		}
	return 0;
}

int handle_Metadata(struct request *req, struct kreader *r)
{
	/* The answer may wait for topic creation: decode from a copy. */
	struct kreader rc;
	struct metadata_state *ms = karena_alloc(&req->arena, sizeof(*ms));
	if (ms == NULL || handler_reader_copy(req, r, &rc) != 0)
		return -1;
	if (kafka_MetadataRequest_decode(&rc, req->api_version, &ms->body) != 0)
		return -1;
	req->resp_body = ms;
	int32_t nt = ms->body.Topics_count < 0 ? 0 : ms->body.Topics_count;
	ms->ops = HANDLER_ARRAY(req, struct topic_op *, nt);
	if (ms->ops == NULL)
		return -1;
	if (nt > 0 && metadata_allow_create(req, &ms->body) && metadata_autocreate(req, ms) != 0)
		return -1;
	if (req->remote_pending > 0) {
		req->resume = metadata_resume;
		return 0;
	}
	return metadata_build(req);
}

/*
 * CreateTopics and DeleteTopics. Every check Kafka makes that applies to a
 * single node is made here, with Kafka's error codes; replication factors
 * other than 1 are refused until replication exists.
 *
 * The changes themselves run on shard 0 (shard_topic_op), which owns the
 * metadata and tells every shard; the request is answered when all of its
 * topics are done.
 */
#include <stdio.h>
#include <string.h>

#include "group.h"
#include "handlers.h"
#include "node.h"
#include "request.h"
#include "say.h"
#include "shard.h"

typedef struct kafka_CreateTopicsRequest_CreatableTopic ct_req;
typedef struct kafka_CreateTopicsResponse_CreatableTopicResult ct_result;
typedef struct kafka_CreateTopicsResponse_CreatableTopicConfigs ct_config;

#define ERROR_MESSAGE_LEN_MAX 320

static void create_error(struct request *req, ct_result *out, int16_t code, const char *why)
{
	out->ErrorCode = code;
	out->ErrorMessage = handler_strdup(req, kstr_from(why));
}

/* A node id this process answers as (per-shard endpoints give it several).
 * Placement, not the assignment, decides which shard a partition lands on. */
static bool create_node_is_ours(const struct shard *sh, int32_t id)
{
	int32_t base = sh->cfg->node_id;
	if (!config_per_shard_endpoints(sh->cfg))
		return id == base;
	return id >= base && (id - base) % SHARD_NODE_ID_STRIDE == 0 &&
	       (id - base) / SHARD_NODE_ID_STRIDE < sh->n_shards;
}

/* Partition count from NumPartitions or from explicit assignments, which
 * must all name only this node. 0 on success, else fills out. */
static int create_partitions(struct request *req, const ct_req *t, int32_t *partitions,
			     ct_result *out)
{
	const struct broker_config *cfg = req->sh->cfg;
	if (t->Assignments_count > 0) {
		if (t->NumPartitions != -1 || t->ReplicationFactor != -1) {
			create_error(req, out, KAFKA_INVALID_REQUEST,
				     "Both numPartitions or replicationFactor and replicasAssignments "
				     "were set. Both cannot be used at the same time.");
			return -1;
		}
		for (int32_t i = 0; i < t->Assignments_count; i++) {
			const struct kafka_CreateTopicsRequest_CreatableReplicaAssignment *a =
				&t->Assignments[i];
			if (a->PartitionIndex != i || a->BrokerIds_count != 1 ||
			    !create_node_is_ours(req->sh, a->BrokerIds[0])) {
				create_error(req, out, KAFKA_INVALID_REPLICA_ASSIGNMENT,
					     "Replica assignments must list partitions 0..n-1, each "
					     "on this single broker");
				return -1;
			}
		}
		*partitions = t->Assignments_count;
		return 0;
	}
	int32_t n = t->NumPartitions == -1 ? cfg->num_partitions : t->NumPartitions;
	if (n <= 0 || n > TOPIC_PARTITIONS_MAX) {
		create_error(req, out, KAFKA_INVALID_PARTITIONS,
			     "Number of partitions must be between 1 and 100000.");
		return -1;
	}
	int32_t rf = t->ReplicationFactor == -1 ? cfg->default_replication_factor
						: t->ReplicationFactor;
	if (rf != 1) {
		create_error(req, out, KAFKA_INVALID_REPLICATION_FACTOR,
			     "Replication factor must be 1: this cluster has one broker and "
			     "replication is not available yet.");
		return -1;
	}
	*partitions = n;
	return 0;
}

static int create_configs(struct request *req, const ct_req *t,
			  struct topic_config_entry *configs, int *n_configs, ct_result *out)
{
	char why[ERROR_MESSAGE_LEN_MAX];
	*n_configs = 0;
	if (t->Configs_count > TOPIC_CONFIGS_MAX) {
		create_error(req, out, KAFKA_INVALID_CONFIG, "Too many topic configs.");
		return -1;
	}
	for (int32_t i = 0; i < t->Configs_count; i++) {
		const struct kafka_CreateTopicsRequest_CreatableTopicConfig *c = &t->Configs[i];
		if (c->Value.len < 0)
			continue; /* null: use the default */
		struct topic_config_entry *e = &configs[*n_configs];
		if (c->Name.len <= 0 || (size_t)c->Name.len >= sizeof(e->key) ||
		    c->Value.len > TOPIC_CONFIG_VALUE_LEN_MAX) {
			create_error(req, out, KAFKA_INVALID_CONFIG, "Invalid topic config.");
			return -1;
		}
		memcpy(e->key, c->Name.ptr, (size_t)c->Name.len);
		e->key[c->Name.len] = '\0';
		memcpy(e->value, c->Value.ptr, (size_t)c->Value.len);
		e->value[c->Value.len] = '\0';
		if (metadata_topic_config_check(e->key, e->value, why, sizeof(why)) != 0) {
			create_error(req, out, KAFKA_INVALID_CONFIG, why);
			return -1;
		}
		/* A key given twice: the last value wins, as in Kafka. */
		int dup = 0;
		while (dup < *n_configs && strcmp(configs[dup].key, e->key) != 0)
			dup++;
		if (dup < *n_configs)
			configs[dup] = *e;
		else
			(*n_configs)++;
	}
	return 0;
}

/* v5+ answers with the topic's settings; report its overrides. */
static void create_describe(struct request *req, const struct topic *t, ct_result *out)
{
	out->TopicId = t->id;
	out->NumPartitions = t->partitions;
	out->ReplicationFactor = 1;
	out->Configs = HANDLER_ARRAY(req, ct_config, t->n_configs);
	if (out->Configs == NULL) {
		out->Configs_count = -1;
		return;
	}
	out->Configs_count = t->n_configs;
	for (int i = 0; i < t->n_configs; i++) {
		kafka_CreateTopicsResponse_CreatableTopicConfigs_init(&out->Configs[i]);
		out->Configs[i].Name = kstr_from(t->configs[i].key);
		out->Configs[i].Value = kstr_from(t->configs[i].value);
		out->Configs[i].ConfigSource = 1; /* DYNAMIC_TOPIC_CONFIG */
	}
}

static bool create_duplicate(const struct kafka_CreateTopicsRequest *body, int32_t i)
{
	for (int32_t j = 0; j < body->Topics_count; j++)
		if (j != i && kstr_eq(body->Topics[j].Name, body->Topics[i].Name))
			return true;
	return false;
}

/* Validate one topic; an op for shard 0 if it is to be created, else NULL
 * (out says why not, or validateOnly). *oom on allocation failure. */
static struct topic_op *create_one(struct request *req,
				   const struct kafka_CreateTopicsRequest *body, int32_t i,
				   ct_result *out, bool *oom)
{
	struct shard *sh = req->sh;
	const ct_req *t = &body->Topics[i];
	struct topic_config_entry configs[TOPIC_CONFIGS_MAX];
	int n_configs = 0;
	int32_t partitions = 0;
	if (!metadata_topic_name_valid(t->Name)) {
		create_error(req, out, KAFKA_INVALID_TOPIC_EXCEPTION,
			     "Topic name is illegal: use 1 to 249 of [a-zA-Z0-9._-], not '.' or '..'");
		return NULL;
	}
	if (create_duplicate(body, i)) {
		create_error(req, out, KAFKA_INVALID_REQUEST,
			     "Create topics request from client contains duplicate topic names");
		return NULL;
	}
	struct topic_state *ts = shard_topic_find(sh, t->Name);
	if (ts != NULL) {
		char why[ERROR_MESSAGE_LEN_MAX];
		snprintf(why, sizeof(why), "Topic '%s' already exists.", ts->meta->name);
		create_error(req, out, KAFKA_TOPIC_ALREADY_EXISTS, why);
		return NULL;
	}
	if (create_partitions(req, t, &partitions, out) != 0 ||
	    create_configs(req, t, configs, &n_configs, out) != 0)
		return NULL;
	if (body->validateOnly) {
		out->NumPartitions = partitions;
		out->ReplicationFactor = 1;
		return NULL;
	}
	struct topic_op *op = karena_alloc(&req->arena, sizeof(*op));
	struct topic_config_entry *kept =
		HANDLER_ARRAY(req, struct topic_config_entry, n_configs);
	if (op == NULL || kept == NULL) {
		*oom = true;
		return NULL;
	}
	memcpy(kept, configs, sizeof(configs[0]) * (size_t)n_configs);
	op->kind = TOPIC_OP_CREATE;
	op->name = out->Name;
	op->partitions = partitions;
	op->configs = kept;
	op->n_configs = n_configs;
	return op;
}

/* The answer for a topic whose creation came back from shard 0. */
static void create_result(struct request *req, const struct topic_op *op, ct_result *out)
{
	if (op->error == KAFKA_TOPIC_ALREADY_EXISTS) {
		char why[ERROR_MESSAGE_LEN_MAX];
		snprintf(why, sizeof(why), "Topic '%.*s' already exists.", op->name.len,
			 op->name.ptr);
		create_error(req, out, op->error, why);
		return;
	}
	if (op->error != KAFKA_NONE) {
		create_error(req, out, op->error, NULL);
		return;
	}
	struct topic_state *ts = shard_topic_find(req->sh, op->name);
	if (ts == NULL) {
		create_error(req, out, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
			     "The topic was deleted while it was being created.");
		return;
	}
	create_describe(req, ts->meta, out);
}

struct create_state {
	struct kafka_CreateTopicsResponse resp;
	struct topic_op **ops; /* per topic, or NULL */
};

static void create_respond(struct request *req)
{
	struct create_state *cs = req->resp_body;
	for (int32_t i = 0; i < cs->resp.Topics_count; i++)
		if (cs->ops[i] != NULL)
			create_result(req, cs->ops[i], &cs->resp.Topics[i]);
	request_response_begin(req);
	kafka_CreateTopicsResponse_encode(&req->resp, req->api_version, &cs->resp);
	request_response_end(req);
}

/* Send every op (all allocated before the first goes: once one is out the
 * request must run to its answer); answer now if there are none. */
static void topics_ops_send(struct request *req, struct topic_op **ops, int32_t n,
			    void (*respond)(struct request *req))
{
	for (int32_t i = 0; i < n; i++)
		if (ops[i] != NULL) {
			ops[i]->finish = shard_topic_op_finish_request;
			ops[i]->arg = req;
			req->remote_pending++;
		}
	if (req->remote_pending == 0) {
		respond(req);
		return;
	}
	req->resume = respond;
	for (int32_t i = 0; i < n; i++)
		if (ops[i] != NULL)
			shard_topic_op(req->sh, ops[i]);
}

int handle_CreateTopics(struct request *req, struct kreader *r)
{
	struct kafka_CreateTopicsRequest body;
	if (kafka_CreateTopicsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct create_state *cs = karena_alloc(&req->arena, sizeof(*cs));
	if (cs == NULL)
		return -1;
	kafka_CreateTopicsResponse_init(&cs->resp);
	int32_t n = body.Topics_count < 0 ? 0 : body.Topics_count;
	cs->resp.Topics = HANDLER_ARRAY(req, ct_result, n);
	cs->ops = HANDLER_ARRAY(req, struct topic_op *, n);
	if (cs->resp.Topics == NULL || cs->ops == NULL)
		return -1;
	cs->resp.Topics_count = n;
	req->resp_body = cs;
	bool oom = false;
	for (int32_t i = 0; i < n; i++) {
		ct_result *out = &cs->resp.Topics[i];
		kafka_CreateTopicsResponse_CreatableTopicResult_init(out);
		out->Name = handler_strdup(req, body.Topics[i].Name);
		out->NumPartitions = -1;
		out->ReplicationFactor = -1;
		cs->ops[i] = create_one(req, &body, i, out, &oom);
		if (oom)
			return -1;
	}
	topics_ops_send(req, cs->ops, n, create_respond);
	return 0;
}

typedef struct kafka_DeleteTopicsResponse_DeletableTopicResult dt_result;

struct delete_state {
	struct kafka_DeleteTopicsResponse resp;
	struct topic_op **ops;
};

static void delete_respond(struct request *req)
{
	struct delete_state *ds = req->resp_body;
	for (int32_t i = 0; i < ds->resp.Responses_count; i++) {
		const struct topic_op *op = ds->ops[i];
		dt_result *out = &ds->resp.Responses[i];
		out->ErrorCode = op->error;
		if (op->error == KAFKA_NONE) {
			/* Answer with the name and id as they were. */
			out->Name = kstr_from(op->deleted_name);
			out->TopicId = op->deleted_id;
		}
	}
	request_response_begin(req);
	kafka_DeleteTopicsResponse_encode(&req->resp, req->api_version, &ds->resp);
	request_response_end(req);
}

static struct topic_op *delete_one(struct request *req, struct kstr name, struct kuuid id,
				   bool by_id, dt_result *out)
{
	kafka_DeleteTopicsResponse_DeletableTopicResult_init(out);
	out->Name = handler_strdup(req, name);
	out->TopicId = id;
	struct topic_op *op = karena_alloc(&req->arena, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->kind = TOPIC_OP_DELETE;
	op->name = out->Name;
	op->id = id;
	op->by_id = by_id;
	return op;
}

int handle_DeleteTopics(struct request *req, struct kreader *r)
{
	struct kafka_DeleteTopicsRequest body;
	if (kafka_DeleteTopicsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct delete_state *ds = karena_alloc(&req->arena, sizeof(*ds));
	if (ds == NULL)
		return -1;
	kafka_DeleteTopicsResponse_init(&ds->resp);
	bool v6 = req->api_version >= 6;
	int32_t n = v6 ? body.Topics_count : body.TopicNames_count;
	if (n < 0)
		n = 0;
	ds->resp.Responses = HANDLER_ARRAY(req, dt_result, n);
	ds->ops = HANDLER_ARRAY(req, struct topic_op *, n);
	if (ds->resp.Responses == NULL || ds->ops == NULL)
		return -1;
	ds->resp.Responses_count = n;
	req->resp_body = ds;
	for (int32_t i = 0; i < n; i++) {
		dt_result *out = &ds->resp.Responses[i];
		if (v6) {
			const struct kafka_DeleteTopicsRequest_DeleteTopicState *t = &body.Topics[i];
			ds->ops[i] = delete_one(req, t->Name, t->TopicId, t->Name.len < 0, out);
		} else {
			struct kuuid zero = { { 0 } };
			ds->ops[i] = delete_one(req, body.TopicNames[i], zero, false, out);
		}
		if (ds->ops[i] == NULL)
			return -1;
	}
	topics_ops_send(req, ds->ops, n, delete_respond);
	return 0;
}

/* ---- CreatePartitions ---- */

typedef struct kafka_CreatePartitionsResponse_CreatePartitionsTopicResult cp_result;
typedef struct kafka_CreatePartitionsRequest_CreatePartitionsTopic cp_req;

static void cp_error(struct request *req, cp_result *out, int16_t err, const char *why)
{
	out->ErrorCode = err;
	out->ErrorMessage = why != NULL ? handler_strdup(req, kstr_from(why)) : KSTR_NULL;
}

/* Sluice places partitions itself (placement.h) on this one node: an
 * explicit assignment is taken only if it says exactly that. */
static bool cp_assignments_ok(struct request *req, const cp_req *t, int32_t added)
{
	if (t->Assignments_count < 0)
		return true;
	if (t->Assignments_count != added)
		return false;
	for (int32_t i = 0; i < added; i++)
		if (t->Assignments[i].BrokerIds_count != 1 ||
		    t->Assignments[i].BrokerIds[0] != req->sh->cfg->node_id)
			return false;
	return true;
}

/* Validate one topic (Kafka's checks); an op for shard 0, or NULL (out
 * says why not, or validateOnly). *oom on allocation failure. */
static struct topic_op *cp_one(struct request *req, const struct kafka_CreatePartitionsRequest *b,
			       int32_t i, cp_result *out, bool *oom)
{
	const cp_req *t = &b->Topics[i];
	char why[ERROR_MESSAGE_LEN_MAX];
	for (int32_t j = 0; j < b->Topics_count; j++)
		if (j != i && kstr_eq(b->Topics[j].Name, t->Name)) {
			cp_error(req, out, KAFKA_INVALID_REQUEST, "Duplicate topic in request.");
			return NULL;
		}
	struct topic_state *ts = shard_topic_find(req->sh, t->Name);
	if (ts == NULL || ts->deleting) {
		cp_error(req, out, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
			 "This server does not host this topic-partition.");
		return NULL;
	}
	if (group_topic_is_internal(ts->meta->name)) {
		/* Groups are placed by this count: it must not change. */
		cp_error(req, out, KAFKA_INVALID_REQUEST,
			 "The partition count of __consumer_offsets cannot change.");
		return NULL;
	}
	if (t->Count <= ts->n_parts) {
		snprintf(why, sizeof(why), "Topic currently has %d partitions, which is higher than "
			 "the requested %d.", ts->n_parts, t->Count);
		cp_error(req, out, KAFKA_INVALID_PARTITIONS, why);
		return NULL;
	}
	if (t->Count > TOPIC_PARTITIONS_MAX) {
		snprintf(why, sizeof(why), "Sluice takes at most %d partitions per topic.",
			 TOPIC_PARTITIONS_MAX);
		cp_error(req, out, KAFKA_INVALID_PARTITIONS, why);
		return NULL;
	}
	if (!cp_assignments_ok(req, t, t->Count - ts->n_parts)) {
		cp_error(req, out, KAFKA_INVALID_REPLICA_ASSIGNMENT,
			 "Each new partition's one replica is this broker (placement is Sluice's).");
		return NULL;
	}
	if (b->ValidateOnly)
		return NULL;
	struct topic_op *op = karena_alloc(&req->arena, sizeof(*op));
	if (op == NULL) {
		*oom = true;
		return NULL;
	}
	op->kind = TOPIC_OP_ADD_PARTITIONS;
	op->name = out->Name;
	op->partitions = t->Count;
	return op;
}

struct cp_state {
	struct kafka_CreatePartitionsResponse resp;
	struct topic_op **ops;
};

static void cp_respond(struct request *req)
{
	struct cp_state *cs = req->resp_body;
	for (int32_t i = 0; i < cs->resp.Results_count; i++)
		if (cs->ops[i] != NULL && cs->ops[i]->error != KAFKA_NONE)
			cp_error(req, &cs->resp.Results[i], cs->ops[i]->error, NULL);
	request_response_begin(req);
	kafka_CreatePartitionsResponse_encode(&req->resp, req->api_version, &cs->resp);
	request_response_end(req);
}

int handle_CreatePartitions(struct request *req, struct kreader *r)
{
	struct kafka_CreatePartitionsRequest body;
	if (kafka_CreatePartitionsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct cp_state *cs = karena_alloc(&req->arena, sizeof(*cs));
	if (cs == NULL)
		return -1;
	kafka_CreatePartitionsResponse_init(&cs->resp);
	int32_t n = body.Topics_count < 0 ? 0 : body.Topics_count;
	cs->resp.Results = HANDLER_ARRAY(req, cp_result, n);
	cs->ops = HANDLER_ARRAY(req, struct topic_op *, n);
	if (cs->resp.Results == NULL || cs->ops == NULL)
		return -1;
	cs->resp.Results_count = n;
	req->resp_body = cs;
	bool oom = false;
	for (int32_t i = 0; i < n; i++) {
		cp_result *out = &cs->resp.Results[i];
		kafka_CreatePartitionsResponse_CreatePartitionsTopicResult_init(out);
		out->Name = handler_strdup(req, body.Topics[i].Name);
		cs->ops[i] = cp_one(req, &body, i, out, &oom);
		if (oom)
			return -1;
	}
	topics_ops_send(req, cs->ops, n, cp_respond);
	return 0;
}

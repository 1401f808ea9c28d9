/*
 * CreateTopics and DeleteTopics. Every check Kafka makes that applies to a
 * single node is made here, with Kafka's error codes; replication factors
 * other than 1 are refused until replication exists.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
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
			    a->BrokerIds[0] != cfg->node_id) {
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

static void create_one(struct request *req, const struct kafka_CreateTopicsRequest *body,
		       int32_t i, ct_result *out)
{
	struct shard *sh = req->sh;
	const ct_req *t = &body->Topics[i];
	struct topic_config_entry configs[TOPIC_CONFIGS_MAX];
	int n_configs = 0;
	int32_t partitions = 0;

	if (!metadata_topic_name_valid(t->Name)) {
		create_error(req, out, KAFKA_INVALID_TOPIC_EXCEPTION,
			     "Topic name is illegal: use 1 to 249 of [a-zA-Z0-9._-], not '.' or '..'");
		return;
	}
	if (create_duplicate(body, i)) {
		create_error(req, out, KAFKA_INVALID_REQUEST,
			     "Create topics request from client contains duplicate topic names");
		return;
	}
	struct topic_state *ts = shard_topic_find(sh, t->Name);
	if (ts != NULL) {
		char why[ERROR_MESSAGE_LEN_MAX];
		snprintf(why, sizeof(why), "Topic '%s' already exists.", ts->meta->name);
		create_error(req, out, KAFKA_TOPIC_ALREADY_EXISTS, why);
		return;
	}
	if (create_partitions(req, t, &partitions, out) != 0 ||
	    create_configs(req, t, configs, &n_configs, out) != 0)
		return;
	if (body->validateOnly) {
		out->NumPartitions = partitions;
		out->ReplicationFactor = 1;
		return;
	}
	int16_t err = shard_topic_create(sh, t->Name, partitions, configs, n_configs, &ts);
	if (err != KAFKA_NONE) {
		create_error(req, out, err, NULL);
		return;
	}
	create_describe(req, ts->meta, out);
}

int handle_CreateTopics(struct request *req, struct kreader *r)
{
	struct kafka_CreateTopicsRequest body;
	if (kafka_CreateTopicsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct kafka_CreateTopicsResponse resp;
	kafka_CreateTopicsResponse_init(&resp);
	int32_t n = body.Topics_count < 0 ? 0 : body.Topics_count;
	resp.Topics = HANDLER_ARRAY(req, ct_result, n);
	if (resp.Topics == NULL)
		return -1;
	resp.Topics_count = n;
	for (int32_t i = 0; i < n; i++) {
		ct_result *out = &resp.Topics[i];
		kafka_CreateTopicsResponse_CreatableTopicResult_init(out);
		out->Name = body.Topics[i].Name;
		out->NumPartitions = -1;
		out->ReplicationFactor = -1;
		create_one(req, &body, i, out);
	}
	request_response_begin(req);
	kafka_CreateTopicsResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

typedef struct kafka_DeleteTopicsResponse_DeletableTopicResult dt_result;

static void delete_one(struct request *req, struct kstr name, struct kuuid id, bool by_id,
		       dt_result *out)
{
	struct shard *sh = req->sh;
	struct topic_state *ts = by_id ? shard_topic_find_id(sh, id) : shard_topic_find(sh, name);
	kafka_DeleteTopicsResponse_DeletableTopicResult_init(out);
	out->Name = name;
	out->TopicId = id;
	if (ts == NULL) {
		out->ErrorCode = by_id ? KAFKA_UNKNOWN_TOPIC_ID : KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		return;
	}
	/* Answer with the name and id as they were (the metadata goes away). */
	out->Name = handler_strdup(req, kstr_from(ts->meta->name));
	out->TopicId = ts->meta->id;
	out->ErrorCode = shard_topic_delete(sh, ts);
}

int handle_DeleteTopics(struct request *req, struct kreader *r)
{
	struct kafka_DeleteTopicsRequest body;
	if (kafka_DeleteTopicsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct kafka_DeleteTopicsResponse resp;
	kafka_DeleteTopicsResponse_init(&resp);
	bool v6 = req->api_version >= 6;
	int32_t n = v6 ? body.Topics_count : body.TopicNames_count;
	if (n < 0)
		n = 0;
	resp.Responses = HANDLER_ARRAY(req, dt_result, n);
	if (resp.Responses == NULL)
		return -1;
	resp.Responses_count = n;
	for (int32_t i = 0; i < n; i++) {
		if (v6) {
			const struct kafka_DeleteTopicsRequest_DeleteTopicState *t = &body.Topics[i];
			delete_one(req, t->Name, t->TopicId, t->Name.len < 0, &resp.Responses[i]);
		} else {
			struct kuuid zero = { { 0 } };
			delete_one(req, body.TopicNames[i], zero, false, &resp.Responses[i]);
		}
	}
	request_response_begin(req);
	kafka_DeleteTopicsResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

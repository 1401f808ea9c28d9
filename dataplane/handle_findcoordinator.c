/*
 * FindCoordinator: which broker coordinates a group. Every group's
 * coordinator is this node: the shard that owns the group's
 * __consumer_offsets partition. With shard.endpoints=per-shard the answer
 * names that shard's own endpoint (node.id + 1000 * shard, port + shard),
 * so a client's group requests go straight to it; with one shared
 * endpoint the node itself, and the receiving shard forwards them.
 *
 * Versions 4+ carry a batch of keys. Transaction coordinators are not
 * built yet: such keys get COORDINATOR_NOT_AVAILABLE, which clients treat
 * as "retry later". Share groups (key type 2) are not supported:
 * INVALID_REQUEST, as Kafka answers an unknown key type.
 */
#include "config.h"
#include "group.h"
#include "handlers.h"
#include "node.h"
#include "request.h"
#include "shard.h"

#define COORDINATOR_TYPE_GROUP 0
#define COORDINATOR_TYPE_TRANSACTION 1

struct coordinator {
	int16_t error;
	struct kstr message;
	int32_t node_id;
	struct kstr host;
	int32_t port;
};

static struct coordinator coordinator_find(struct shard *sh, struct kstr key, int8_t key_type)
{
	const struct broker_config *cfg = sh->cfg;
	struct coordinator c = { .node_id = -1, .host = KSTR(""), .port = -1,
				 .message = KSTR_NULL };
	if (key_type == COORDINATOR_TYPE_TRANSACTION) {
		c.error = KAFKA_COORDINATOR_NOT_AVAILABLE;
		c.message = KSTR("transactions are not supported yet");
		return c;
	}
	if (key_type != COORDINATOR_TYPE_GROUP || key.len < 0) {
		c.error = KAFKA_INVALID_REQUEST;
		c.message = KSTR("unknown coordinator key type");
		return c;
	}
	int shard = group_coordinator_shard(sh, key);
	if (shard < 0) {
		c.error = KAFKA_COORDINATOR_NOT_AVAILABLE;
		c.message = KSTR("the __consumer_offsets topic is missing");
		return c;
	}
	c.error = KAFKA_NONE;
	c.host = kstr_from(config_advertised_host(cfg));
	if (config_per_shard_endpoints(cfg)) {
		c.node_id = node_shard_id(cfg->node_id, shard);
		c.port = config_advertised_port(cfg) + shard;
	} else {
		c.node_id = cfg->node_id;
		c.port = config_advertised_port(cfg);
	}
	return c;
}

int handle_FindCoordinator(struct request *req, struct kreader *r)
{
	struct kafka_FindCoordinatorRequest body;
	if (kafka_FindCoordinatorRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct kafka_FindCoordinatorResponse resp;
	kafka_FindCoordinatorResponse_init(&resp);
	if (req->api_version < 4) {
		struct coordinator c = coordinator_find(req->sh, body.Key, body.KeyType);
		resp.ErrorCode = c.error;
		resp.ErrorMessage = c.message;
		resp.NodeId = c.node_id;
		resp.Host = c.host;
		resp.Port = c.port;
	} else {
		int32_t n = body.CoordinatorKeys_count < 0 ? 0 : body.CoordinatorKeys_count;
		resp.Coordinators = HANDLER_ARRAY(req, struct kafka_FindCoordinatorResponse_Coordinator,
						  n);
		if (resp.Coordinators == NULL)
			return -1;
		resp.Coordinators_count = n;
		for (int32_t i = 0; i < n; i++) {
			struct kafka_FindCoordinatorResponse_Coordinator *o = &resp.Coordinators[i];
			struct coordinator c = coordinator_find(req->sh, body.CoordinatorKeys[i],
								body.KeyType);
			kafka_FindCoordinatorResponse_Coordinator_init(o);
			o->Key = body.CoordinatorKeys[i]; /* encoded before the frame goes */
			o->ErrorCode = c.error;
			o->ErrorMessage = c.message;
			o->NodeId = c.node_id;
			o->Host = c.host;
			o->Port = c.port;
		}
	}
	request_response_begin(req);
	kafka_FindCoordinatorResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

/*
 * InitProducerId for idempotent (non-transactional) producers: a producer
 * id never handed out before, epoch 0. Like Kafka, a non-transactional
 * request always gets a fresh id, even when it names its previous one
 * (KIP-360 epoch bumps only matter to transactional producers).
 */
#include "handlers.h"
#include "request.h"
#include "say.h"
#include "shard.h"

/* Producer ids come from the metadata, which shard 0 owns. */
static void init_pid_respond(struct request *req)
{
	struct topic_op *op = req->resp_body;
	struct kafka_InitProducerIdResponse resp;
	kafka_InitProducerIdResponse_init(&resp);
	resp.ProducerId = -1;
	resp.ProducerEpoch = -1;
	resp.ErrorCode = op->error;
	if (op->error == KAFKA_NONE) {
		resp.ProducerId = op->producer_id;
		resp.ProducerEpoch = 0;
	}
	request_response_begin(req);
	kafka_InitProducerIdResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
}

int handle_InitProducerId(struct request *req, struct kreader *r)
{
	struct kafka_InitProducerIdRequest body;
	if (kafka_InitProducerIdRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct topic_op *op = karena_alloc(&req->arena, sizeof(*op));
	if (op == NULL)
		return -1;
	req->resp_body = op;
	if (body.TransactionalId.len >= 0) {
		/* No transaction coordinator yet (FindCoordinator is not
		 * advertised either): a transactional producer is refused. */
		op->error = KAFKA_INVALID_REQUEST;
		init_pid_respond(req);
		return 0;
	}
	op->kind = TOPIC_OP_PRODUCER_ID;
	op->finish = shard_topic_op_finish_request;
	op->arg = req;
	req->remote_pending = 1;
	req->resume = init_pid_respond;
	shard_topic_op(req->sh, op);
	return 0;
}

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

int handle_InitProducerId(struct request *req, struct kreader *r)
{
	struct kafka_InitProducerIdRequest body;
	if (kafka_InitProducerIdRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct kafka_InitProducerIdResponse resp;
	kafka_InitProducerIdResponse_init(&resp);
	resp.ProducerId = -1;
	resp.ProducerEpoch = -1;
	if (body.TransactionalId.len >= 0) {
		/* No transaction coordinator yet (FindCoordinator is not
		 * advertised either): a transactional producer is refused. */
		resp.ErrorCode = KAFKA_INVALID_REQUEST;
	} else {
		int64_t id;
		int rc = metadata_producer_id_alloc(req->sh->md, &id);
		if (rc != 0) {
			say_error("producer id allocation failed: %d", rc);
			resp.ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
		} else {
			resp.ProducerId = id;
			resp.ProducerEpoch = 0;
		}
	}
	request_response_begin(req);
	kafka_InitProducerIdResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}

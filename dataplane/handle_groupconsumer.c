/*
 * ConsumerGroupHeartbeat and ConsumerGroupDescribe (KIP-848): decode,
 * check what Kafka's GroupCoordinatorService checks before a request
 * reaches the group (so a malformed one costs no hop), send it to the
 * group's coordinator (group.h) and encode the answer.
 *
 * A heartbeat is answered at once by the coordinator, or once the records
 * it caused are durable: never held for a rebalance, as the consumer
 * protocol has no join barrier.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "group.h"
#include "group_assign.h"
#include "handlers.h"
#include "limits.h"
#include "request.h"
#include "shard.h"

#define LEAVE_GROUP_MEMBER_EPOCH (-1)
#define LEAVE_GROUP_STATIC_MEMBER_EPOCH (-2)
/* From this version the client makes its own member id (KIP-1082). */
#define CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION 1

/* ---- ConsumerGroupHeartbeat ---- */

struct cheartbeat_state {
	struct kafka_ConsumerGroupHeartbeatRequest body;
	struct kafka_ConsumerGroupHeartbeatResponse resp;
	struct group_op op;
};

static void cheartbeat_respond(struct request *req)
{
	struct cheartbeat_state *st = req->resp_body;
	struct kafka_ConsumerGroupHeartbeatResponse *resp = &st->resp;
	struct kafka_ConsumerGroupHeartbeatResponse err;
	if (st->op.error != KAFKA_NONE) {
		/* Kafka's error answer: the code and message, nothing else. */
		kafka_ConsumerGroupHeartbeatResponse_init(&err);
		err.ErrorCode = st->op.error;
		err.ErrorMessage = st->resp.ErrorMessage;
		resp = &err;
	}
	request_response_begin(req);
	kafka_ConsumerGroupHeartbeatResponse_encode(&req->resp, req->api_version, resp);
	request_response_end(req);
	group_op_release(&st->op);
}

/* Kafka's throwIfEmptyString: present, and nothing but white space. */
static bool blank(struct kstr s)
{
	if (s.len < 0)
		return false;
	for (int32_t i = 0; i < s.len; i++)
		if ((unsigned char)s.ptr[i] > ' ')
			return false;
	return true;
}

static bool regex_compiles(struct kstr src)
{
	char pat[CGROUP_REGEX_BYTES_MAX + 8];
	memcpy(pat, "^(", 2);
	memcpy(pat + 2, src.ptr, (size_t)src.len);
	memcpy(pat + 2 + src.len, ")$", 3);
	regex_t re;
	if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	regfree(&re);
	return true;
}

/* Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid; and Sluice's
 * bounds on what a member may subscribe with. The error, *msg set. */
static int16_t cheartbeat_check(struct request *req, const struct kafka_ConsumerGroupHeartbeatRequest *b,
				const char **msg)
{
	int32_t e = b->MemberEpoch;
	if ((req->api_version >= CONSUMER_GENERATED_MEMBER_ID_REQUIRED_VERSION || e > 0 ||
	     e == LEAVE_GROUP_MEMBER_EPOCH) && blank(b->MemberId)) {
		*msg = "MemberId can't be empty.";
		return KAFKA_INVALID_REQUEST;
	}
	if (blank(b->GroupId)) {
		*msg = "GroupId can't be empty.";
		return KAFKA_INVALID_REQUEST;
	}
	if (blank(b->InstanceId)) {
		*msg = "InstanceId can't be empty.";
		return KAFKA_INVALID_REQUEST;
	}
	if (blank(b->RackId)) {
		*msg = "RackId can't be empty.";
		return KAFKA_INVALID_REQUEST;
	}
	if (e == 0) {
		if (b->RebalanceTimeoutMs == -1) {
			*msg = "RebalanceTimeoutMs must be provided in first request.";
			return KAFKA_INVALID_REQUEST;
		}
		if (b->TopicPartitions_count != 0) {
			*msg = "TopicPartitions must be empty when (re-)joining.";
			return KAFKA_INVALID_REQUEST;
		}
		if (b->SubscribedTopicNames_count < 0 && b->SubscribedTopicRegex.len < 0) {
			*msg = "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null "
			       "when (re-)joining.";
			return KAFKA_INVALID_REQUEST;
		}
	} else if (e == LEAVE_GROUP_STATIC_MEMBER_EPOCH && b->InstanceId.len < 0) {
		*msg = "InstanceId can't be null.";
		return KAFKA_INVALID_REQUEST;
	} else if (e < LEAVE_GROUP_STATIC_MEMBER_EPOCH) {
		*msg = "MemberEpoch is invalid.";
		return KAFKA_INVALID_REQUEST;
	}
	if (b->ServerAssignor.len >= 0) {
		int8_t list[GASSIGN_COUNT];
		int n = gassignor_list_parse(req->sh->cfg->group_consumer_assignors, list,
					     GASSIGN_COUNT);
		int a = gassignor_find(b->ServerAssignor);
		bool ok = false;
		for (int i = 0; i < n; i++)
			ok |= list[i] == a;
		if (!ok) {
			*msg = "ServerAssignor is not supported (group.consumer.assignors).";
			return KAFKA_UNSUPPORTED_ASSIGNOR;
		}
	}
	if (b->SubscribedTopicNames_count > CGROUP_MEMBER_TOPICS_MAX) {
		*msg = "Too many SubscribedTopicNames.";
		return KAFKA_INVALID_REQUEST;
	}
	if (b->SubscribedTopicRegex.len > 0 &&
	    (b->SubscribedTopicRegex.len > CGROUP_REGEX_BYTES_MAX ||
	     !regex_compiles(b->SubscribedTopicRegex))) {
		*msg = "SubscribedTopicRegex is not a valid regular expression.";
		return KAFKA_INVALID_REGULAR_EXPRESSION;
	}
	return KAFKA_NONE;
}

int handle_ConsumerGroupHeartbeat(struct request *req, struct kreader *r)
{
	struct cheartbeat_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_ConsumerGroupHeartbeatRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	kafka_ConsumerGroupHeartbeatResponse_init(&st->resp);
	group_op_init(&st->op, req, GROUP_OP_CHEARTBEAT, st->body.GroupId);
	st->op.u.cheartbeat.body = &st->body;
	st->op.u.cheartbeat.resp = &st->resp;
	st->op.u.cheartbeat.client_id = handler_strdup(req, req->client_id.len < 0 ? KSTR("")
									     : req->client_id);
	st->op.u.cheartbeat.client_host = group_client_host(req);
	req->resp_body = st;
	req->resume = cheartbeat_respond;
	const char *msg = NULL;
	int16_t err = cheartbeat_check(req, &st->body, &msg);
	if (err != KAFKA_NONE) {
		st->op.error = err;
		st->resp.ErrorMessage = kstr_from(msg);
		cheartbeat_respond(req);
		return 0;
	}
	group_op_send(&st->op, -1);
	return 0;
}

/* ---- ConsumerGroupDescribe ---- */

typedef struct kafka_ConsumerGroupDescribeResponse_DescribedGroup cgd_group;

struct cdescribe_state {
	struct kafka_ConsumerGroupDescribeRequest body;
	struct kafka_ConsumerGroupDescribeResponse resp;
	struct group_op *ops;
};

static void cdescribe_respond(struct request *req)
{
	struct cdescribe_state *st = req->resp_body;
	request_response_begin(req);
	kafka_ConsumerGroupDescribeResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	for (int32_t i = 0; i < st->resp.Groups_count; i++)
		group_op_release(&st->ops[i]);
}

int handle_ConsumerGroupDescribe(struct request *req, struct kreader *r)
{
	struct cdescribe_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_ConsumerGroupDescribeRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	int32_t n = st->body.GroupIds_count < 0 ? 0 : st->body.GroupIds_count;
	kafka_ConsumerGroupDescribeResponse_init(&st->resp);
	st->resp.Groups = HANDLER_ARRAY(req, cgd_group, n);
	st->ops = HANDLER_ARRAY(req, struct group_op, n);
	if (st->resp.Groups == NULL || st->ops == NULL)
		return -1;
	st->resp.Groups_count = n;
	for (int32_t i = 0; i < n; i++) {
		kafka_ConsumerGroupDescribeResponse_DescribedGroup_init(&st->resp.Groups[i]);
		st->resp.Groups[i].GroupId = st->body.GroupIds[i];
		group_op_init(&st->ops[i], req, GROUP_OP_CDESCRIBE, st->body.GroupIds[i]);
		st->ops[i].u.cdescribe.out = &st->resp.Groups[i];
		st->ops[i].u.cdescribe.include_authorized_operations =
			st->body.IncludeAuthorizedOperations;
	}
	req->resp_body = st;
	req->resume = cdescribe_respond;
	if (n == 0) {
		cdescribe_respond(req);
		return 0;
	}
	for (int32_t i = 0; i < n; i++)
		group_op_send(&st->ops[i], -1);
	return 0;
}

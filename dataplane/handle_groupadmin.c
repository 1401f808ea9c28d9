/*
 * DescribeGroups, ListGroups, DeleteGroups: one op per group to its
 * coordinator (ListGroups: one per shard, each listing the groups it
 * coordinates), and one answer once all are back.
 */
#include <string.h>

#include "conn.h"
#include "group.h"
#include "handlers.h"
#include "request.h"
#include "shard.h"

/* ---- DescribeGroups ---- */

typedef struct kafka_DescribeGroupsResponse_DescribedGroup dg_group;

struct describe_state {
	struct kafka_DescribeGroupsRequest body;
	struct kafka_DescribeGroupsResponse resp;
	struct group_op *ops;
};

static void describe_respond(struct request *req)
{
	struct describe_state *st = req->resp_body;
	request_response_begin(req);
	kafka_DescribeGroupsResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	for (int32_t i = 0; i < st->resp.Groups_count; i++)
		group_op_release(&st->ops[i]);
}

int handle_DescribeGroups(struct request *req, struct kreader *r)
{
	struct describe_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_DescribeGroupsRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	int32_t n = st->body.Groups_count < 0 ? 0 : st->body.Groups_count;
	kafka_DescribeGroupsResponse_init(&st->resp);
	st->resp.Groups = HANDLER_ARRAY(req, dg_group, n);
	st->ops = HANDLER_ARRAY(req, struct group_op, n);
	if (st->resp.Groups == NULL || st->ops == NULL)
		return -1;
	st->resp.Groups_count = n;
	for (int32_t i = 0; i < n; i++) {
		kafka_DescribeGroupsResponse_DescribedGroup_init(&st->resp.Groups[i]);
		st->resp.Groups[i].GroupId = st->body.Groups[i];
		group_op_init(&st->ops[i], req, GROUP_OP_DESCRIBE, st->body.Groups[i]);
		st->ops[i].u.describe.out = &st->resp.Groups[i];
		st->ops[i].u.describe.include_authorized_operations =
			req->api_version >= 3 && st->body.IncludeAuthorizedOperations;
	}
	req->resp_body = st;
	req->resume = describe_respond;
	if (n == 0) {
		describe_respond(req);
		return 0;
	}
	for (int32_t i = 0; i < n; i++)
		group_op_send(&st->ops[i], -1);
	return 0;
}

/* ---- ListGroups ---- */

struct list_state {
	struct kafka_ListGroupsRequest body;
	struct group_op *ops; /* one per shard */
	int n_ops;
};

static void list_respond(struct request *req)
{
	struct list_state *st = req->resp_body;
	struct kafka_ListGroupsResponse resp;
	kafka_ListGroupsResponse_init(&resp);
	int32_t total = 0;
	for (int i = 0; i < st->n_ops; i++) {
		total += st->ops[i].u.list.n_out;
		if (resp.ErrorCode == KAFKA_NONE)
			resp.ErrorCode = st->ops[i].error;
	}
	resp.Groups = HANDLER_ARRAY(req, struct kafka_ListGroupsResponse_ListedGroup, total);
	if (resp.Groups != NULL) {
		for (int i = 0; i < st->n_ops; i++) {
			int32_t n = st->ops[i].u.list.n_out;
			if (n > 0)
				memcpy(&resp.Groups[resp.Groups_count], st->ops[i].u.list.out,
				       sizeof(*resp.Groups) * (size_t)n);
			resp.Groups_count += n;
		}
		request_response_begin(req);
		kafka_ListGroupsResponse_encode(&req->resp, req->api_version, &resp);
		request_response_end(req);
	}
	for (int i = 0; i < st->n_ops; i++)
		group_op_release(&st->ops[i]);
	if (resp.Groups == NULL)
		conn_close(req->conn, "no memory for a ListGroups response");
}

int handle_ListGroups(struct request *req, struct kreader *r)
{
	struct list_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_ListGroupsRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	struct shard *sh = req->sh;
	st->n_ops = sh->n_shards;
	st->ops = HANDLER_ARRAY(req, struct group_op, st->n_ops);
	if (st->ops == NULL)
		return -1;
	for (int i = 0; i < st->n_ops; i++) {
		struct group_op *op = &st->ops[i];
		group_op_init(op, req, GROUP_OP_LIST, KSTR(""));
		op->u.list.states = st->body.StatesFilter;
		op->u.list.n_states = req->api_version >= 4 ? st->body.StatesFilter_count : 0;
		op->u.list.types = st->body.TypesFilter;
		op->u.list.n_types = req->api_version >= 5 ? st->body.TypesFilter_count : 0;
	}
	req->resp_body = st;
	req->resume = list_respond;
	for (int i = 0; i < st->n_ops; i++)
		group_op_send(&st->ops[i], i);
	return 0;
}

/* ---- DeleteGroups ---- */

struct delete_state {
	struct kafka_DeleteGroupsRequest body;
	struct kafka_DeleteGroupsResponse resp;
	struct group_op *ops;
};

static void delete_respond(struct request *req)
{
	struct delete_state *st = req->resp_body;
	for (int32_t i = 0; i < st->resp.Results_count; i++)
		st->resp.Results[i].ErrorCode = st->ops[i].error;
	request_response_begin(req);
	kafka_DeleteGroupsResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	for (int32_t i = 0; i < st->resp.Results_count; i++)
		group_op_release(&st->ops[i]);
}

int handle_DeleteGroups(struct request *req, struct kreader *r)
{
	struct delete_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_DeleteGroupsRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	int32_t n = st->body.GroupsNames_count < 0 ? 0 : st->body.GroupsNames_count;
	kafka_DeleteGroupsResponse_init(&st->resp);
	st->resp.Results = HANDLER_ARRAY(req, struct kafka_DeleteGroupsResponse_DeletableGroupResult,
					 n);
	st->ops = HANDLER_ARRAY(req, struct group_op, n);
	if (st->resp.Results == NULL || st->ops == NULL)
		return -1;
	st->resp.Results_count = n;
	for (int32_t i = 0; i < n; i++) {
		kafka_DeleteGroupsResponse_DeletableGroupResult_init(&st->resp.Results[i]);
		st->resp.Results[i].GroupId = st->body.GroupsNames[i];
		group_op_init(&st->ops[i], req, GROUP_OP_DELETE, st->body.GroupsNames[i]);
	}
	req->resp_body = st;
	req->resume = delete_respond;
	if (n == 0) {
		delete_respond(req);
		return 0;
	}
	for (int32_t i = 0; i < n; i++)
		group_op_send(&st->ops[i], -1);
	return 0;
}

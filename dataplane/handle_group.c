/*
 * JoinGroup, SyncGroup, Heartbeat, LeaveGroup: decode, send the request to
 * the group's coordinator (group.h) and encode what it answers. A
 * JoinGroup or SyncGroup may be held there until the rebalance gets far
 * enough (seconds, up to the rebalance timeout); the request and its
 * connection stay allocated until the answer comes back, and a connection
 * closed meanwhile just never sends it.
 */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "group.h"
#include "handlers.h"
#include "request.h"
#include "shard.h"

/* Kafka reports a member's host as Java's InetAddress.toString: "/" and
 * the address, without the port. conn->peer is "address:port". */
struct kstr group_client_host(struct request *req)
{
	const char *peer = req->conn->peer;
	const char *colon = strrchr(peer, ':');
	int32_t len = colon != NULL ? (int32_t)(colon - peer) : (int32_t)strlen(peer);
	char *p = karena_alloc(&req->arena, (size_t)len + 1);
	if (p == NULL)
		return KSTR("");
	p[0] = '/';
	memcpy(p + 1, peer, (size_t)len);
	return (struct kstr){ p, len + 1 };
}

/* The decoded request lives in the arena: decode from a copy of the frame
 * (the answer may come long after the frame is gone). */
#define GROUP_DECODE(req, r, type, body)                                             \
	do {                                                                         \
		struct kreader rc_;                                                  \
		if (handler_reader_copy((req), (r), &rc_) != 0 ||                    \
		    kafka_##type##_decode(&rc_, (req)->api_version, (body)) != 0)    \
			return -1;                                                   \
	} while (0)

/* ---- JoinGroup ---- */

struct join_state {
	struct kafka_JoinGroupRequest body;
	struct kafka_JoinGroupResponse resp;
	struct group_op op;
};

static void join_respond(struct request *req)
{
	struct join_state *st = req->resp_body;
	st->resp.ErrorCode = st->op.error;
	request_response_begin(req);
	kafka_JoinGroupResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	group_op_release(&st->op);
}

int handle_JoinGroup(struct request *req, struct kreader *r)
{
	struct join_state *st = karena_alloc(&req->arena, sizeof(*st));
	if (st == NULL)
		return -1;
	GROUP_DECODE(req, r, JoinGroupRequest, &st->body);
	kafka_JoinGroupResponse_init(&st->resp);
	st->resp.MemberId = st->body.MemberId;
	st->resp.ProtocolName = KSTR_NULL; /* null on errors from v7, "" before */
	group_op_init(&st->op, req, GROUP_OP_JOIN, st->body.GroupId);
	st->op.u.join.body = &st->body;
	st->op.u.join.resp = &st->resp;
	st->op.u.join.client_id = handler_strdup(req, req->client_id.len < 0 ? KSTR("")
									  : req->client_id);
	st->op.u.join.client_host = group_client_host(req);
	req->resp_body = st;
	req->resume = join_respond;
	group_op_send(&st->op, -1);
	return 0;
}

/* ---- SyncGroup ---- */

struct sync_state {
	struct kafka_SyncGroupRequest body;
	struct kafka_SyncGroupResponse resp;
	struct group_op op;
};

static void sync_respond(struct request *req)
{
	struct sync_state *st = req->resp_body;
	st->resp.ErrorCode = st->op.error;
	request_response_begin(req);
	kafka_SyncGroupResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	group_op_release(&st->op);
}

int handle_SyncGroup(struct request *req, struct kreader *r)
{
	struct sync_state *st = karena_alloc(&req->arena, sizeof(*st));
	if (st == NULL)
		return -1;
	GROUP_DECODE(req, r, SyncGroupRequest, &st->body);
	kafka_SyncGroupResponse_init(&st->resp);
	group_op_init(&st->op, req, GROUP_OP_SYNC, st->body.GroupId);
	st->op.u.sync.body = &st->body;
	st->op.u.sync.resp = &st->resp;
	req->resp_body = st;
	req->resume = sync_respond;
	group_op_send(&st->op, -1);
	return 0;
}

/* ---- Heartbeat ---- */

struct heartbeat_state {
	struct kafka_HeartbeatRequest body;
	struct group_op op;
};

static void heartbeat_respond(struct request *req)
{
	struct heartbeat_state *st = req->resp_body;
	struct kafka_HeartbeatResponse resp;
	kafka_HeartbeatResponse_init(&resp);
	resp.ErrorCode = st->op.error;
	request_response_begin(req);
	kafka_HeartbeatResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	group_op_release(&st->op);
}

int handle_Heartbeat(struct request *req, struct kreader *r)
{
	struct heartbeat_state *st = karena_alloc(&req->arena, sizeof(*st));
	if (st == NULL)
		return -1;
	GROUP_DECODE(req, r, HeartbeatRequest, &st->body);
	group_op_init(&st->op, req, GROUP_OP_HEARTBEAT, st->body.GroupId);
	st->op.u.heartbeat.body = &st->body;
	req->resp_body = st;
	req->resume = heartbeat_respond;
	group_op_send(&st->op, -1);
	return 0;
}

/* ---- LeaveGroup ---- */

struct leave_state {
	struct kafka_LeaveGroupRequest body;
	struct kafka_LeaveGroupRequest_MemberIdentity one; /* v0-2: the one member */
	struct kafka_LeaveGroupResponse resp;
	struct group_op op;
};

static void leave_respond(struct request *req)
{
	struct leave_state *st = req->resp_body;
	struct kafka_LeaveGroupResponse *resp = &st->resp;
	resp->ErrorCode = st->op.error;
	if (st->op.error != KAFKA_NONE)
		resp->Members_count = 0; /* a group-level error has no member answers */
	else if (req->api_version < 3 && resp->Members_count > 0)
		resp->ErrorCode = resp->Members[0].ErrorCode; /* before v3: one error */
	request_response_begin(req);
	kafka_LeaveGroupResponse_encode(&req->resp, req->api_version, resp);
	request_response_end(req);
	group_op_release(&st->op);
}

int handle_LeaveGroup(struct request *req, struct kreader *r)
{
	struct leave_state *st = karena_alloc(&req->arena, sizeof(*st));
	if (st == NULL)
		return -1;
	GROUP_DECODE(req, r, LeaveGroupRequest, &st->body);
	const struct kafka_LeaveGroupRequest_MemberIdentity *members = st->body.Members;
	int32_t n = st->body.Members_count < 0 ? 0 : st->body.Members_count;
	if (req->api_version < 3) {
		kafka_LeaveGroupRequest_MemberIdentity_init(&st->one);
		st->one.MemberId = st->body.MemberId;
		st->one.GroupInstanceId = KSTR_NULL;
		members = &st->one;
		n = 1;
	}
	kafka_LeaveGroupResponse_init(&st->resp);
	st->resp.Members = HANDLER_ARRAY(req, struct kafka_LeaveGroupResponse_MemberResponse, n);
	if (st->resp.Members == NULL)
		return -1;
	st->resp.Members_count = n;
	for (int32_t i = 0; i < n; i++) {
		kafka_LeaveGroupResponse_MemberResponse_init(&st->resp.Members[i]);
		st->resp.Members[i].MemberId = members[i].MemberId;
		st->resp.Members[i].GroupInstanceId = members[i].GroupInstanceId;
	}
	group_op_init(&st->op, req, GROUP_OP_LEAVE, st->body.GroupId);
	st->op.u.leave.members = members;
	st->op.u.leave.out = st->resp.Members;
	st->op.u.leave.n = n;
	req->resp_body = st;
	req->resume = leave_respond;
	group_op_send(&st->op, -1);
	return 0;
}

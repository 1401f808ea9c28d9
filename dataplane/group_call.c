/*
 * group_call: the request side of the group coordinator: which shard
 * coordinates a group, and the group_op xcalls that carry a request's
 * group part there and back. See group.h.
 */
#include <string.h>

#include "group_int.h"
#include "request.h"

/* The result arena's chunks: most answers (an error, a heartbeat, a few
 * offsets) fit one small chunk; a leader's JoinGroup takes as many as its
 * members' metadata needs, up to the request arena's limit. */
#define GROUP_RES_CHUNK_BYTES 4096

int group_coordinator_shard(struct shard *sh, struct kstr group_id)
{
	struct topic_state *ts = shard_topic_find(sh, KSTR(OFFSETS_TOPIC_NAME));
	if (ts == NULL || ts->n_parts <= 0)
		return -1;
	return ts->parts[group_partition_for(group_id, ts->n_parts)].owner;
}

void group_op_init(struct group_op *op, struct request *req, enum group_op_kind kind,
		   struct kstr group_id)
{
	memset(op, 0, sizeof(*op));
	op->req = req;
	op->kind = kind;
	op->version = req->api_version;
	op->group_id = group_id;
	karena_init(&op->res, GROUP_RES_CHUNK_BYTES, REQUEST_ARENA_LIMIT_BYTES);
}

static void group_op_done(struct shard *sh, struct xcall *xc)
{
	struct group_op *op = container_of(xc, struct group_op, xc);
	/* The answer's memory was taken on the coordinator's shard; it is
	 * this request's from now on. */
	shard_mem_charge(&sh->mem, (int64_t)op->res.cap_bytes);
	request_remote_done(op->req);
}

static void group_op_unavailable(struct shard *sh, struct xcall *xc)
{
	struct group_op *op = container_of(xc, struct group_op, xc);
	op->error = KAFKA_COORDINATOR_NOT_AVAILABLE;
	xcall_reply(sh, xc);
}

void group_op_send(struct group_op *op, int dst)
{
	struct shard *sh = op->req->sh;
	if (dst < 0)
		dst = group_coordinator_shard(sh, op->group_id);
	op->req->remote_pending++;
	if (dst < 0)
		xcall_send(sh, sh->id, &op->xc, group_op_unavailable, group_op_done);
	else
		xcall_send(sh, dst, &op->xc, group_op_run, group_op_done);
}

void group_op_release(struct group_op *op)
{
	shard_mem_charge(&op->req->sh->mem, -(int64_t)op->res.cap_bytes);
	karena_free(&op->res);
}

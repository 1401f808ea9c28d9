/*
 * OffsetCommit, OffsetFetch, OffsetDelete: decode, check which partitions
 * exist (every shard knows every topic), send the group's part to its
 * coordinator (group.h) and encode the answer. An OffsetCommit comes back
 * once its record is durable in __consumer_offsets.
 *
 * OffsetFetch v8+ asks for several groups at once: one op per group, to
 * each group's own coordinator, and the answer goes out when all are back.
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "group.h"
#include "handlers.h"
#include "request.h"
#include "shard.h"

typedef struct kafka_OffsetCommitResponse_OffsetCommitResponseTopic oc_topic;
typedef struct kafka_OffsetCommitResponse_OffsetCommitResponsePartition oc_partition;

static bool partition_exists(struct shard *sh, struct kstr topic, int32_t index)
{
	return shard_partition_find(sh, topic, index) != NULL;
}

/* ---- OffsetCommit ---- */

struct commit_state {
	struct kafka_OffsetCommitRequest body;
	struct kafka_OffsetCommitResponse resp;
	struct group_op op;
	bool sent;
};

static void commit_respond(struct request *req)
{
	struct commit_state *st = req->resp_body;
	if (st->sent && st->op.error != KAFKA_NONE)
		for (int32_t i = 0; i < st->op.u.commit.n; i++)
			*st->op.u.commit.parts[i].error = st->op.error;
	request_response_begin(req);
	kafka_OffsetCommitResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	group_op_release(&st->op);
}

/* The response skeleton, and the partitions to send (those that exist). */
static int commit_prepare(struct request *req, struct commit_state *st)
{
	const struct kafka_OffsetCommitRequest *b = &st->body;
	int32_t nt = b->Topics_count < 0 ? 0 : b->Topics_count, total = 0;
	st->resp.Topics = HANDLER_ARRAY(req, oc_topic, nt);
	if (st->resp.Topics == NULL)
		return -1;
	st->resp.Topics_count = nt;
	for (int32_t i = 0; i < nt; i++)
		total += b->Topics[i].Partitions_count < 0 ? 0 : b->Topics[i].Partitions_count;
	struct group_commit_part *parts = HANDLER_ARRAY(req, struct group_commit_part, total);
	if (parts == NULL)
		return -1;
	int64_t now = handler_wall_ms();
	/* v2-4 may set this commit's retention; -1 is the broker's. */
	int64_t retention = req->api_version >= 2 && req->api_version <= 4 ? b->RetentionTimeMs : -1;
	int32_t n = 0;
	for (int32_t i = 0; i < nt; i++) {
		const struct kafka_OffsetCommitRequest_OffsetCommitRequestTopic *t = &b->Topics[i];
		oc_topic *rt = &st->resp.Topics[i];
		int32_t np = t->Partitions_count < 0 ? 0 : t->Partitions_count;
		kafka_OffsetCommitResponse_OffsetCommitResponseTopic_init(rt);
		rt->Name = t->Name;
		rt->Partitions = HANDLER_ARRAY(req, oc_partition, np);
		if (rt->Partitions == NULL)
			return -1;
		rt->Partitions_count = np;
		for (int32_t j = 0; j < np; j++) {
			const struct kafka_OffsetCommitRequest_OffsetCommitRequestPartition *p =
				&t->Partitions[j];
			oc_partition *rp = &rt->Partitions[j];
			kafka_OffsetCommitResponse_OffsetCommitResponsePartition_init(rp);
			rp->PartitionIndex = p->PartitionIndex;
			if (!partition_exists(req->sh, t->Name, p->PartitionIndex)) {
				rp->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			/* v1 may carry the commit time; later versions use now. */
			parts[n++] = (struct group_commit_part){
				.topic = t->Name, .partition = p->PartitionIndex,
				.offset = p->CommittedOffset,
				.leader_epoch = req->api_version >= 6 ? p->CommittedLeaderEpoch : -1,
				.metadata = p->CommittedMetadata,
				.commit_timestamp = req->api_version == 1 && p->CommitTimestamp >= 0
							    ? p->CommitTimestamp : now,
				.expire_timestamp = retention >= 0 && retention < INT64_MAX - now
							    ? now + retention : -1,
				.error = &rp->ErrorCode };
		}
	}
	st->op.u.commit.parts = parts;
	st->op.u.commit.n = n;
	return 0;
}

int handle_OffsetCommit(struct request *req, struct kreader *r)
{
	struct commit_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_OffsetCommitRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	kafka_OffsetCommitResponse_init(&st->resp);
	group_op_init(&st->op, req, GROUP_OP_COMMIT, st->body.GroupId);
	if (commit_prepare(req, st) != 0)
		return -1;
	/* v0 has no membership: a commit of a group used for offsets only. */
	st->op.u.commit.generation = req->api_version >= 1 ? st->body.GenerationIdOrMemberEpoch : -1;
	st->op.u.commit.member_id = req->api_version >= 1 ? st->body.MemberId : KSTR("");
	st->op.u.commit.instance_id = req->api_version >= 7 ? st->body.GroupInstanceId : KSTR_NULL;
	req->resp_body = st;
	req->resume = commit_respond;
	if (st->op.u.commit.n == 0) {
		commit_respond(req);
		return 0;
	}
	st->sent = true;
	group_op_send(&st->op, -1);
	return 0;
}

/* ---- OffsetFetch ---- */

typedef struct kafka_OffsetFetchResponse_OffsetFetchResponseTopic of_topic;
typedef struct kafka_OffsetFetchResponse_OffsetFetchResponsePartition of_partition;
typedef struct kafka_OffsetFetchResponse_OffsetFetchResponseTopics of_topics;
typedef struct kafka_OffsetFetchResponse_OffsetFetchResponsePartitions of_partitions;
typedef struct kafka_OffsetFetchResponse_OffsetFetchResponseGroup of_group;

/* One group's question and answer. */
struct fetch_group {
	struct group_op op;
	struct group_offset_key *keys; /* NULL: all */
	int32_t n_keys;
};

struct fetch_state {
	struct kafka_OffsetFetchRequest body;
	struct fetch_group *groups;
	int32_t n_groups;
};

/* One topic of the answer, partitions in the order given. */
struct fetch_topic {
	struct kstr name;
	int32_t first, count; /* a run in the sorted results */
};

static int fetch_res_cmp(const void *a, const void *b)
{
	const struct group_offset_res *x = a, *y = b;
	int32_t n = x->topic.len < y->topic.len ? x->topic.len : y->topic.len;
	int c = n > 0 ? memcmp(x->topic.ptr, y->topic.ptr, (size_t)n) : 0;
	if (c != 0)
		return c;
	if (x->topic.len != y->topic.len)
		return x->topic.len < y->topic.len ? -1 : 1;
	return x->partition < y->partition ? -1 : x->partition > y->partition;
}

/* Group the results by topic (they are by topic already when asked for;
 * sorted first when the coordinator listed all). Returns the topic count,
 * or -1 without memory. */
static int32_t fetch_topics(struct request *req, struct fetch_group *fg, struct fetch_topic **out)
{
	struct group_offset_res *res = fg->op.u.fetch.out;
	int32_t n = fg->op.u.fetch.n_out;
	if (fg->keys == NULL && n > 1)
		qsort(res, (size_t)n, sizeof(*res), fetch_res_cmp);
	struct fetch_topic *t = HANDLER_ARRAY(req, struct fetch_topic, n);
	if (t == NULL)
		return -1;
	int32_t nt = 0;
	for (int32_t i = 0; i < n; i++) {
		if (nt > 0 && kstr_eq(t[nt - 1].name, res[i].topic) &&
		    t[nt - 1].first + t[nt - 1].count == i) {
			t[nt - 1].count++;
			continue;
		}
		t[nt++] = (struct fetch_topic){ res[i].topic, i, 1 };
	}
	*out = t;
	return nt;
}

/* v0-7: one group, topics at the top. */
static int fetch_encode_single(struct request *req, struct fetch_state *st,
			       struct kafka_OffsetFetchResponse *resp)
{
	struct fetch_group *fg = &st->groups[0];
	int16_t err = fg->op.error;
	if (err != KAFKA_NONE && fg->keys != NULL && fg->op.u.fetch.n_out == 0) {
		/* The partitions asked for, with no offset (and, before v2, the
		 * group's error on each). */
		struct group_offset_res *out = HANDLER_ARRAY(req, struct group_offset_res,
							     fg->n_keys);
		if (out == NULL)
			return -1;
		for (int32_t i = 0; i < fg->n_keys; i++)
			out[i] = (struct group_offset_res){ fg->keys[i].topic, fg->keys[i].partition,
							    -1, -1, KSTR(""), KAFKA_NONE };
		fg->op.u.fetch.out = out;
		fg->op.u.fetch.n_out = fg->n_keys;
	}
	struct fetch_topic *t;
	int32_t nt = fetch_topics(req, fg, &t);
	if (nt < 0)
		return -1;
	/* v2+ carry a top-level error; before, each partition does. */
	resp->ErrorCode = req->api_version >= 2 ? err : KAFKA_NONE;
	resp->Topics = HANDLER_ARRAY(req, of_topic, nt);
	if (resp->Topics == NULL)
		return -1;
	resp->Topics_count = nt;
	for (int32_t i = 0; i < nt; i++) {
		of_topic *rt = &resp->Topics[i];
		kafka_OffsetFetchResponse_OffsetFetchResponseTopic_init(rt);
		rt->Name = t[i].name;
		rt->Partitions = HANDLER_ARRAY(req, of_partition, t[i].count);
		if (rt->Partitions == NULL)
			return -1;
		rt->Partitions_count = t[i].count;
		for (int32_t j = 0; j < t[i].count; j++) {
			const struct group_offset_res *x = &fg->op.u.fetch.out[t[i].first + j];
			of_partition *p = &rt->Partitions[j];
			kafka_OffsetFetchResponse_OffsetFetchResponsePartition_init(p);
			p->PartitionIndex = x->partition;
			p->CommittedOffset = x->offset;
			p->CommittedLeaderEpoch = x->leader_epoch;
			p->Metadata = x->metadata;
			p->ErrorCode = req->api_version < 2 && err != KAFKA_NONE ? err : x->error;
		}
	}
	return 0;
}

/* v8+: a list of groups. */
static int fetch_encode_groups(struct request *req, struct fetch_state *st,
			       struct kafka_OffsetFetchResponse *resp)
{
	resp->Groups = HANDLER_ARRAY(req, of_group, st->n_groups);
	if (resp->Groups == NULL)
		return -1;
	resp->Groups_count = st->n_groups;
	for (int32_t g = 0; g < st->n_groups; g++) {
		struct fetch_group *fg = &st->groups[g];
		of_group *rg = &resp->Groups[g];
		kafka_OffsetFetchResponse_OffsetFetchResponseGroup_init(rg);
		rg->GroupId = fg->op.group_id;
		rg->ErrorCode = fg->op.error;
		struct fetch_topic *t;
		int32_t nt = fetch_topics(req, fg, &t);
		if (nt < 0)
			return -1;
		rg->Topics = HANDLER_ARRAY(req, of_topics, nt);
		if (rg->Topics == NULL)
			return -1;
		rg->Topics_count = nt;
		for (int32_t i = 0; i < nt; i++) {
			of_topics *rt = &rg->Topics[i];
			kafka_OffsetFetchResponse_OffsetFetchResponseTopics_init(rt);
			rt->Name = t[i].name;
			rt->Partitions = HANDLER_ARRAY(req, of_partitions, t[i].count);
			if (rt->Partitions == NULL)
				return -1;
			rt->Partitions_count = t[i].count;
			for (int32_t j = 0; j < t[i].count; j++) {
				const struct group_offset_res *x = &fg->op.u.fetch.out[t[i].first + j];
				of_partitions *p = &rt->Partitions[j];
				kafka_OffsetFetchResponse_OffsetFetchResponsePartitions_init(p);
				p->PartitionIndex = x->partition;
				p->CommittedOffset = x->offset;
				p->CommittedLeaderEpoch = x->leader_epoch;
				p->Metadata = x->metadata;
				p->ErrorCode = x->error;
			}
		}
	}
	return 0;
}

static void fetch_respond(struct request *req)
{
	struct fetch_state *st = req->resp_body;
	struct kafka_OffsetFetchResponse resp;
	kafka_OffsetFetchResponse_init(&resp);
	int rc = req->api_version >= 8 ? fetch_encode_groups(req, st, &resp)
				       : fetch_encode_single(req, st, &resp);
	if (rc == 0) {
		request_response_begin(req);
		kafka_OffsetFetchResponse_encode(&req->resp, req->api_version, &resp);
		request_response_end(req);
	}
	for (int32_t g = 0; g < st->n_groups; g++)
		group_op_release(&st->groups[g].op);
	if (rc != 0)
		conn_close(req->conn, "no memory for an OffsetFetch response");
}

/* The keys of one group's topics (NULL topics: all of them). */
static int fetch_keys(struct request *req, struct fetch_group *fg, const struct kstr *names,
		      int32_t *const *indexes, const int32_t *counts, int32_t nt)
{
	int32_t total = 0;
	for (int32_t i = 0; i < nt; i++)
		total += counts[i] < 0 ? 0 : counts[i];
	fg->keys = HANDLER_ARRAY(req, struct group_offset_key, total);
	if (fg->keys == NULL)
		return -1;
	for (int32_t i = 0; i < nt; i++)
		for (int32_t j = 0; j < counts[i]; j++)
			fg->keys[fg->n_keys++] = (struct group_offset_key){ names[i], indexes[i][j],
									     NULL };
	return 0;
}

static int fetch_prepare_single(struct request *req, struct fetch_state *st)
{
	const struct kafka_OffsetFetchRequest *b = &st->body;
	struct fetch_group *fg = &st->groups[0];
	group_op_init(&fg->op, req, GROUP_OP_FETCH, b->GroupId);
	fg->op.u.fetch.member_id = KSTR_NULL;
	fg->op.u.fetch.member_epoch = -1;
	if (b->Topics_count < 0)
		return 0; /* null: every committed offset */
	int32_t nt = b->Topics_count;
	struct kstr *names = HANDLER_ARRAY(req, struct kstr, nt);
	int32_t **idx = HANDLER_ARRAY(req, int32_t *, nt);
	int32_t *cnt = HANDLER_ARRAY(req, int32_t, nt);
	if (names == NULL || idx == NULL || cnt == NULL)
		return -1;
	for (int32_t i = 0; i < nt; i++) {
		names[i] = b->Topics[i].Name;
		idx[i] = b->Topics[i].PartitionIndexes;
		cnt[i] = b->Topics[i].PartitionIndexes_count;
	}
	return fetch_keys(req, fg, names, idx, cnt, nt);
}

static int fetch_prepare_group(struct request *req, struct fetch_group *fg,
			       const struct kafka_OffsetFetchRequest_OffsetFetchRequestGroup *rg)
{
	group_op_init(&fg->op, req, GROUP_OP_FETCH, rg->GroupId);
	/* v9: a consumer group member says who it is (checked against its
	 * epoch: STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID). */
	fg->op.u.fetch.member_id = req->api_version >= 9 ? rg->MemberId : KSTR_NULL;
	fg->op.u.fetch.member_epoch = req->api_version >= 9 ? rg->MemberEpoch : -1;
	if (rg->Topics_count < 0)
		return 0;
	int32_t nt = rg->Topics_count;
	struct kstr *names = HANDLER_ARRAY(req, struct kstr, nt);
	int32_t **idx = HANDLER_ARRAY(req, int32_t *, nt);
	int32_t *cnt = HANDLER_ARRAY(req, int32_t, nt);
	if (names == NULL || idx == NULL || cnt == NULL)
		return -1;
	for (int32_t i = 0; i < nt; i++) {
		names[i] = rg->Topics[i].Name;
		idx[i] = rg->Topics[i].PartitionIndexes;
		cnt[i] = rg->Topics[i].PartitionIndexes_count;
	}
	return fetch_keys(req, fg, names, idx, cnt, nt);
}

int handle_OffsetFetch(struct request *req, struct kreader *r)
{
	struct fetch_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_OffsetFetchRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	st->n_groups = req->api_version >= 8 ? (st->body.Groups_count < 0 ? 0 : st->body.Groups_count)
					     : 1;
	st->groups = HANDLER_ARRAY(req, struct fetch_group, st->n_groups);
	if (st->groups == NULL)
		return -1;
	for (int32_t g = 0; g < st->n_groups; g++) {
		int rc2 = req->api_version >= 8
				  ? fetch_prepare_group(req, &st->groups[g], &st->body.Groups[g])
				  : fetch_prepare_single(req, st);
		if (rc2 != 0)
			return -1;
		struct fetch_group *fg = &st->groups[g];
		fg->op.u.fetch.keys = fg->keys;
		fg->op.u.fetch.n = fg->n_keys;
	}
	req->resp_body = st;
	req->resume = fetch_respond;
	if (st->n_groups == 0) {
		fetch_respond(req);
		return 0;
	}
	for (int32_t g = 0; g < st->n_groups; g++)
		group_op_send(&st->groups[g].op, -1);
	return 0;
}

/* ---- OffsetDelete ---- */

typedef struct kafka_OffsetDeleteResponse_OffsetDeleteResponseTopic od_topic;
typedef struct kafka_OffsetDeleteResponse_OffsetDeleteResponsePartition od_partition;

struct odelete_state {
	struct kafka_OffsetDeleteRequest body;
	struct kafka_OffsetDeleteResponse resp;
	struct group_op op;
};

static void odelete_respond(struct request *req)
{
	struct odelete_state *st = req->resp_body;
	st->resp.ErrorCode = st->op.error;
	if (st->op.error != KAFKA_NONE)
		st->resp.Topics_count = 0; /* Kafka: a group error has no partition answers */
	request_response_begin(req);
	kafka_OffsetDeleteResponse_encode(&req->resp, req->api_version, &st->resp);
	request_response_end(req);
	group_op_release(&st->op);
}

int handle_OffsetDelete(struct request *req, struct kreader *r)
{
	struct odelete_state *st = karena_alloc(&req->arena, sizeof(*st));
	struct kreader rc;
	if (st == NULL || handler_reader_copy(req, r, &rc) != 0 ||
	    kafka_OffsetDeleteRequest_decode(&rc, req->api_version, &st->body) != 0)
		return -1;
	const struct kafka_OffsetDeleteRequest *b = &st->body;
	kafka_OffsetDeleteResponse_init(&st->resp);
	group_op_init(&st->op, req, GROUP_OP_OFFSET_DELETE, b->GroupId);
	int32_t nt = b->Topics_count < 0 ? 0 : b->Topics_count, total = 0;
	for (int32_t i = 0; i < nt; i++)
		total += b->Topics[i].Partitions_count < 0 ? 0 : b->Topics[i].Partitions_count;
	struct group_offset_key *keys = HANDLER_ARRAY(req, struct group_offset_key, total);
	st->resp.Topics = HANDLER_ARRAY(req, od_topic, nt);
	if (keys == NULL || st->resp.Topics == NULL)
		return -1;
	st->resp.Topics_count = nt;
	int32_t n = 0;
	for (int32_t i = 0; i < nt; i++) {
		const struct kafka_OffsetDeleteRequest_OffsetDeleteRequestTopic *t = &b->Topics[i];
		od_topic *rt = &st->resp.Topics[i];
		int32_t np = t->Partitions_count < 0 ? 0 : t->Partitions_count;
		kafka_OffsetDeleteResponse_OffsetDeleteResponseTopic_init(rt);
		rt->Name = t->Name;
		rt->Partitions = HANDLER_ARRAY(req, od_partition, np);
		if (rt->Partitions == NULL)
			return -1;
		rt->Partitions_count = np;
		for (int32_t j = 0; j < np; j++) {
			od_partition *rp = &rt->Partitions[j];
			kafka_OffsetDeleteResponse_OffsetDeleteResponsePartition_init(rp);
			rp->PartitionIndex = t->Partitions[j].PartitionIndex;
			if (!partition_exists(req->sh, t->Name, rp->PartitionIndex))
				rp->ErrorCode = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
			keys[n++] = (struct group_offset_key){ t->Name, rp->PartitionIndex,
							       &rp->ErrorCode };
		}
	}
	st->op.u.offset_delete.keys = keys;
	st->op.u.offset_delete.n = n;
	req->resp_body = st;
	req->resume = odelete_respond;
	group_op_send(&st->op, -1);
	return 0;
}

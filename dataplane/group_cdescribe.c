/*
 * group_cdescribe: ConsumerGroupDescribe on the coordinator, as Kafka
 * 4.0's ConsumerGroup.asDescribedGroup answers it: the group's state,
 * epochs and assignor, and each member with its epoch, subscription,
 * current assignment and target assignment (topics by id and name; a
 * partition of a deleted topic is left out, as Kafka leaves it out).
 * Everything is copied into the op's result arena.
 */
#include <string.h>

#include "group_int.h"

struct tps_fill {
	struct group_coord *gc;
	struct group_op *op;
	struct kafka_ConsumerGroupDescribeResponse_TopicPartitions *out;
	int32_t n;
};

static struct kstr res_str(struct group_op *op, struct kstr s, bool *oom)
{
	if (s.len <= 0)
		return s.len < 0 ? KSTR_NULL : KSTR("");
	char *p = karena_alloc(&op->res, (size_t)s.len);
	if (p == NULL) {
		*oom = true;
		return KSTR("");
	}
	memcpy(p, s.ptr, (size_t)s.len);
	return (struct kstr){ p, s.len };
}

static int tps_run(void *arg, struct kuuid topic, const struct gtp *v, int32_t n)
{
	struct tps_fill *f = arg;
	struct kstr name = cgroup_topic_name(f->gc, topic);
	if (name.len <= 0)
		return 0;
	bool oom = false;
	struct kafka_ConsumerGroupDescribeResponse_TopicPartitions *t = &f->out[f->n];
	kafka_ConsumerGroupDescribeResponse_TopicPartitions_init(t);
	t->TopicId = topic;
	t->TopicName = res_str(f->op, name, &oom);
	t->Partitions = karena_alloc(&f->op->res, sizeof(int32_t) * (size_t)n);
	if (oom || t->Partitions == NULL)
		return -1;
	for (int32_t i = 0; i < n; i++)
		t->Partitions[i] = v[i].partition;
	t->Partitions_count = n;
	f->n++;
	return 0;
}

static int fill_assignment(struct group_coord *gc, struct group_op *op, const struct gtpset *s,
			   struct kafka_ConsumerGroupDescribeResponse_Assignment *a)
{
	kafka_ConsumerGroupDescribeResponse_Assignment_init(a);
	if (s->n == 0)
		return 0;
	/* At most one run per partition. */
	struct tps_fill f = { gc, op, karena_alloc(&op->res, sizeof(*f.out) * (size_t)s->n), 0 };
	if (f.out == NULL || gtpset_runs(s, tps_run, &f) != 0)
		return -1;
	a->TopicPartitions = f.out;
	a->TopicPartitions_count = f.n;
	return 0;
}

static int fill_member(struct group_coord *gc, struct group_op *op, const struct cmember *m,
		       struct kafka_ConsumerGroupDescribeResponse_Member *d)
{
	bool oom = false;
	kafka_ConsumerGroupDescribeResponse_Member_init(d);
	d->MemberId = res_str(op, m->id, &oom);
	d->InstanceId = res_str(op, m->instance_id, &oom);
	d->RackId = res_str(op, m->rack_id, &oom);
	d->MemberEpoch = m->epoch;
	d->ClientId = res_str(op, m->client_id, &oom);
	d->ClientHost = res_str(op, m->client_host, &oom);
	if (m->n_topics > 0) {
		d->SubscribedTopicNames = karena_alloc(&op->res, sizeof(struct kstr) *
								      (size_t)m->n_topics);
		if (d->SubscribedTopicNames == NULL)
			return -1;
		for (int32_t i = 0; i < m->n_topics; i++)
			d->SubscribedTopicNames[i] = res_str(op, m->topics[i], &oom);
		d->SubscribedTopicNames_count = m->n_topics;
	}
	if (m->regex != NULL)
		d->SubscribedTopicRegex = res_str(op, (struct kstr){ m->regex->src, m->regex->len },
						  &oom);
	if (oom || fill_assignment(gc, op, &m->assigned, &d->Assignment) != 0 ||
	    fill_assignment(gc, op, &m->target, &d->TargetAssignment) != 0)
		return -1;
	return 0;
}

void group_do_cdescribe(struct group_coord *gc, struct group_op *op)
{
	struct kafka_ConsumerGroupDescribeResponse_DescribedGroup *out = op->u.cdescribe.out;
	bool oom = false;
	out->ErrorCode = group_status(gc, op->group_id, false);
	out->GroupState = KSTR("");
	if (out->ErrorCode != KAFKA_NONE) {
		group_op_reply(gc->sh, op);
		return;
	}
	struct group *g = group_find(gc, op->group_id);
	if (g == NULL || g->type != GROUP_TYPE_CONSUMER) {
		out->ErrorCode = KAFKA_GROUP_ID_NOT_FOUND;
		out->ErrorMessage = g == NULL ? KSTR("The group does not exist.")
					      : KSTR("The group is not a consumer group.");
		group_op_reply(gc->sh, op);
		return;
	}
	struct cgroup *cg = g->cg;
	out->GroupState = kstr_from(cgroup_state_name(cgroup_state(g)));
	out->GroupEpoch = cg->epoch;
	out->AssignmentEpoch = cg->assignment_epoch;
	out->AssignorName = kstr_from(gassignor_name(cgroup_preferred_assignor(gc, cg)));
	if (op->u.cdescribe.include_authorized_operations)
		out->AuthorizedOperations = GROUP_AUTHORIZED_OPERATIONS;
	if (cg->n_members > 0) {
		out->Members = karena_alloc(&op->res, sizeof(*out->Members) * (size_t)cg->n_members);
		oom = out->Members == NULL;
	}
	for (struct cmember *m = cg->head; m != NULL && !oom; m = m->next)
		oom = fill_member(gc, op, m, &out->Members[out->Members_count++]) != 0;
	if (oom) {
		out->Members_count = 0;
		out->ErrorCode = KAFKA_COORDINATOR_NOT_AVAILABLE;
	}
	group_op_reply(gc->sh, op);
}

/*
 * ctl_cgroup: `sluicectl group describe` of a consumer group of the
 * KIP-848 protocol. As Kafka's admin client does, describe asks
 * ConsumerGroupDescribe first and falls back to DescribeGroups when the
 * group is not a consumer group (GROUP_ID_NOT_FOUND) or the broker does
 * not have the API. What it adds over a classic group: the group and
 * assignment epochs, each member's epoch, and each member's target
 * assignment beside what it owns now (they differ while it reconciles).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_group.h"

/* One member's partitions of a ConsumerGroupDescribe assignment into s. */
static int add_partitions(struct tps *s, int mi, const struct kafka_ConsumerGroupDescribeResponse_Assignment *a,
			  int *count)
{
	for (int i = 0; i < a->TopicPartitions_count; i++) {
		const struct kafka_ConsumerGroupDescribeResponse_TopicPartitions *t = &a->TopicPartitions[i];
		char topic[NAME_CAP];
		kc_cstr(t->TopicName, topic, sizeof(topic));
		for (int j = 0; j < t->Partitions_count; j++) {
			struct tp *p = ctl_tps_get(s, topic, t->Partitions[j]);
			if (p == NULL)
				return ctl_fail("out of memory");
			p->member = mi;
			(*count)++;
		}
	}
	return 0;
}

static int fill(struct group *g, const struct kafka_ConsumerGroupDescribeResponse_DescribedGroup *d)
{
	g->consumer = true;
	kc_cstr(d->GroupState, g->state, sizeof(g->state));
	snprintf(g->ptype, sizeof(g->ptype), "consumer");
	kc_cstr(d->AssignorName, g->protocol, sizeof(g->protocol));
	g->group_epoch = d->GroupEpoch;
	g->assignment_epoch = d->AssignmentEpoch;
	g->m = calloc((size_t)d->Members_count + 1, sizeof(*g->m));
	if (g->m == NULL)
		return ctl_fail("out of memory");
	for (int i = 0; i < d->Members_count; i++) {
		const struct kafka_ConsumerGroupDescribeResponse_Member *dm = &d->Members[i];
		struct member *m = &g->m[g->n_members++];
		kc_cstr(dm->MemberId, m->id, sizeof(m->id));
		kc_cstr(dm->InstanceId, m->instance, sizeof(m->instance));
		kc_cstr(dm->ClientId, m->client, sizeof(m->client));
		kc_cstr(dm->ClientHost, m->host, sizeof(m->host));
		m->epoch = dm->MemberEpoch;
		int n_target = 0;
		if (add_partitions(&g->tps, i, &dm->Assignment, &m->n_assigned) != 0 ||
		    add_partitions(&g->target, i, &dm->TargetAssignment, &n_target) != 0)
			return CTL_EXIT_FAILED;
	}
	return 0;
}

int ctl_cgroup_describe(struct ctl *ctl, struct kc_conn *c, const char *id, struct group *g,
			bool *found)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->id, sizeof(g->id), "%s", id);
	*found = false;
	if (c->api_max[KAFKA_API_ConsumerGroupDescribe] < 0)
		return 0;
	int64_t deadline = ctl_mono_ms() + ctl->timeout_ms;
	struct kstr gid = kstr_from(id);
	for (;;) {
		struct kafka_ConsumerGroupDescribeRequest req;
		kafka_ConsumerGroupDescribeRequest_init(&req);
		req.GroupIds = &gid;
		req.GroupIds_count = 1;
		struct kafka_ConsumerGroupDescribeResponse resp;
		kafka_ConsumerGroupDescribeResponse_init(&resp);
		if (KC_CALL(c, KAFKA_API_ConsumerGroupDescribe, 0, ConsumerGroupDescribe, &req,
			    &resp) != 0)
			return ctl_fail("%s", kc_errbuf);
		if (resp.Groups_count != 1)
			return ctl_fail("ConsumerGroupDescribe: %d answers for one group",
					resp.Groups_count);
		const struct kafka_ConsumerGroupDescribeResponse_DescribedGroup *d = &resp.Groups[0];
		if (ctl_coordinator_retriable(d->ErrorCode) && ctl_mono_ms() + CTL_RETRY_MS <= deadline) {
			ctl_sleep_ms(CTL_RETRY_MS);
			continue;
		}
		if (d->ErrorCode == KAFKA_GROUP_ID_NOT_FOUND)
			return 0; /* classic, or no group: DescribeGroups says which */
		if (d->ErrorCode != 0)
			return ctl_fail("group %s: ConsumerGroupDescribe: %s", id,
					kc_err_str(d->ErrorCode));
		*found = true;
		return fill(g, d);
	}
}

/* "t:0,1 u:3": member mi's partitions of s (sorted by topic, partition). */
static void partitions_str(const struct tps *s, int mi, char *buf, size_t cap)
{
	size_t n = 0;
	const char *last = NULL;
	buf[0] = '\0';
	for (int j = 0; j < s->n && n + 1 < cap; j++) {
		const struct tp *p = &s->v[j];
		if (p->member != mi)
			continue;
		int w;
		if (last == NULL || strcmp(last, p->topic) != 0)
			w = snprintf(buf + n, cap - n, "%s%s:%d", last ? " " : "", p->topic, p->part);
		else
			w = snprintf(buf + n, cap - n, ",%d", p->part);
		if (w < 0 || (size_t)w >= cap - n)
			break;
		n += (size_t)w;
		last = p->topic;
	}
	if (n == 0)
		snprintf(buf, cap, "-");
}

void ctl_cgroup_print_members(const struct group *g)
{
	printf("\nGroup epoch %d, assignment epoch %d.\n", g->group_epoch, g->assignment_epoch);
	if (g->n_members == 0)
		return;
	static const char *head[] = { "MEMBER-ID", "EPOCH", "INSTANCE-ID", "CLIENT-ID", "HOST",
				      "ASSIGNED", "TARGET" };
	struct ctl_table t;
	ctl_table_init(&t, 7, head);
	for (int i = 0; i < g->n_members; i++) {
		const struct member *m = &g->m[i];
		char epoch[16], assigned[1024], target[1024];
		snprintf(epoch, sizeof(epoch), "%d", m->epoch);
		partitions_str(&g->tps, i, assigned, sizeof(assigned));
		partitions_str(&g->target, i, target, sizeof(target));
		const char *row[] = { m->id, epoch, m->instance[0] ? m->instance : "-", m->client,
				      m->host, assigned, target };
		ctl_table_add(&t, row);
	}
	ctl_table_print(&t, stdout);
	ctl_table_free(&t);
}

void ctl_cgroup_print_json_head(const struct group *g)
{
	printf(", \"group_epoch\": %d, \"assignment_epoch\": %d", g->group_epoch,
	       g->assignment_epoch);
}

void ctl_cgroup_print_json_member(const struct group *g, int i)
{
	printf(", \"member_epoch\": %d, \"target_assignment\": [", g->m[i].epoch);
	bool first = true;
	for (int j = 0; j < g->target.n; j++) {
		const struct tp *p = &g->target.v[j];
		if (p->member != i)
			continue;
		printf(first ? "{\"topic\": " : ", {\"topic\": ");
		ctl_json_str(stdout, p->topic, (int32_t)strlen(p->topic));
		printf(", \"partition\": %d}", p->part);
		first = false;
	}
	printf("]");
}

/*
 * ctl_group: `sluicectl group ...`, what kafka-consumer-groups.sh does.
 *
 *   list            ListGroups to every broker (each answers for the groups
 *                   it coordinates), merged and sorted
 *   describe G...   FindCoordinator, ConsumerGroupDescribe (a consumer
 *                   group of the KIP-848 protocol: ctl_cgroup.c) or else
 *                   DescribeGroups (members and their assignments),
 *                   OffsetFetch (committed offsets) and ListOffsets at each
 *                   partition's leader (log end, lag)
 *   delete G...     DeleteGroups at each group's coordinator
 *   reset-offsets   the new offsets from ListOffsets (earliest, latest, a
 *                   time) or arithmetic (an offset, a shift), clamped to
 *                   what the log holds as Kafka's tool does; printed, and
 *                   with --execute committed by OffsetCommit as a
 *                   non-member (generation -1), which the coordinator
 *                   accepts only while the group has no members
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_group.h"

/* ---- small helpers ---- */

void ctl_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

int64_t ctl_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool ctl_coordinator_retriable(int16_t err)
{
	return err == KAFKA_COORDINATOR_LOAD_IN_PROGRESS || err == KAFKA_COORDINATOR_NOT_AVAILABLE ||
	       err == KAFKA_NOT_COORDINATOR;
}

struct tp *ctl_tps_get(struct tps *s, const char *topic, int32_t part)
{
	for (int i = 0; i < s->n; i++)
		if (s->v[i].part == part && strcmp(s->v[i].topic, topic) == 0)
			return &s->v[i];
	if (s->n == CTL_PARTITIONS_MAX)
		return NULL;
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 64;
		struct tp *nv = realloc(s->v, sizeof(*nv) * (size_t)cap);
		if (nv == NULL)
			return NULL;
		s->v = nv;
		s->cap = cap;
	}
	struct tp *t = &s->v[s->n++];
	memset(t, 0, sizeof(*t));
	snprintf(t->topic, sizeof(t->topic), "%s", topic);
	t->part = part;
	t->leader = -1;
	t->committed = t->start = t->end = t->target = -1;
	t->member = -1;
	return t;
}

static int tp_cmp(const void *a, const void *b)
{
	const struct tp *x = a, *y = b;
	int c = strcmp(x->topic, y->topic);
	return c != 0 ? c : (x->part > y->part) - (x->part < y->part);
}

static void group_free(struct group *g)
{
	free(g->m);
	free(g->tps.v);
	free(g->target.v);
	memset(g, 0, sizeof(*g));
}

/* ---- requests ---- */

/* The connection to group's coordinator; NULL with a message printed. */
static struct kc_conn *coordinator(struct ctl *ctl, const char *group)
{
	char host[NAME_CAP];
	int32_t node, port;
	if (kc_find_coordinator(&ctl->k.boot, group, ctl->timeout_ms, &node, host, sizeof(host),
				&port) != 0) {
		ctl_fail("%s", kc_errbuf);
		return NULL;
	}
	struct kc_conn *c = kc_cluster_addr(&ctl->k, node, host, port);
	if (c == NULL)
		ctl_fail("group %s: its coordinator: %s", group, kc_errbuf);
	return c;
}

/* Members' assignments: ConsumerProtocolAssignment, after its version. */
static void add_assignment(struct group *g, int mi, struct kbytes b)
{
	if (b.len < 2)
		return;
	struct kreader r;
	struct karena a;
	karena_init(&a, 4096, 16 * 1024 * 1024);
	kr_init(&r, b.ptr, (size_t)b.len, &a);
	int16_t ver = kr_int16(&r);
	struct kafka_ConsumerProtocolAssignment as;
	kafka_ConsumerProtocolAssignment_init(&as);
	/* A newer version starts with the fields this one knows (Kafka's
	 * compatibility rule for these embedded schemas). */
	kafka_ConsumerProtocolAssignment_decode(&r, ver > 3 ? 3 : ver, &as);
	if (!r.err || r.err == KWIRE_ERR_TRUNCATED) {
		for (int i = 0; i < as.AssignedPartitions_count; i++) {
			char topic[NAME_CAP];
			kc_cstr(as.AssignedPartitions[i].Topic, topic, sizeof(topic));
			for (int j = 0; j < as.AssignedPartitions[i].Partitions_count; j++) {
				struct tp *t = ctl_tps_get(&g->tps, topic, as.AssignedPartitions[i].Partitions[j]);
				if (t != NULL) {
					t->member = mi;
					g->m[mi].n_assigned++;
				}
			}
		}
	}
	karena_free(&a);
}

/* DescribeGroups for one group at its coordinator. */
static int describe(struct ctl *ctl, struct kc_conn *c, const char *id, struct group *g)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->id, sizeof(g->id), "%s", id);
	int16_t v = kc_version(c, KAFKA_API_DescribeGroups, 5);
	if (v < 0)
		return ctl_fail("%s", kc_errbuf);
	int64_t deadline = ctl_mono_ms() + ctl->timeout_ms;
	struct kstr gid = kstr_from(id);
	for (;;) {
		struct kafka_DescribeGroupsRequest req;
		kafka_DescribeGroupsRequest_init(&req);
		req.Groups = &gid;
		req.Groups_count = 1;
		struct kafka_DescribeGroupsResponse resp;
		kafka_DescribeGroupsResponse_init(&resp);
		if (KC_CALL(c, KAFKA_API_DescribeGroups, v, DescribeGroups, &req, &resp) != 0)
			return ctl_fail("%s", kc_errbuf);
		if (resp.Groups_count != 1)
			return ctl_fail("DescribeGroups: %d answers for one group", resp.Groups_count);
		struct kafka_DescribeGroupsResponse_DescribedGroup *d = &resp.Groups[0];
		if (ctl_coordinator_retriable(d->ErrorCode) && ctl_mono_ms() + CTL_RETRY_MS <= deadline) {
			ctl_sleep_ms(CTL_RETRY_MS);
			continue;
		}
		g->err = d->ErrorCode;
		if (d->ErrorCode != 0 && d->ErrorCode != KAFKA_GROUP_ID_NOT_FOUND)
			return ctl_fail("group %s: DescribeGroups: %s", id, kc_err_str(d->ErrorCode));
		kc_cstr(d->GroupState, g->state, sizeof(g->state));
		if (d->ErrorCode == KAFKA_GROUP_ID_NOT_FOUND || g->state[0] == '\0')
			snprintf(g->state, sizeof(g->state), "Dead");
		kc_cstr(d->ProtocolType, g->ptype, sizeof(g->ptype));
		kc_cstr(d->ProtocolData, g->protocol, sizeof(g->protocol));
		g->m = calloc((size_t)d->Members_count + 1, sizeof(*g->m));
		if (g->m == NULL)
			return ctl_fail("out of memory");
		for (int i = 0; i < d->Members_count; i++) {
			struct kafka_DescribeGroupsResponse_DescribedGroupMember *dm = &d->Members[i];
			struct member *m = &g->m[g->n_members++];
			kc_cstr(dm->MemberId, m->id, sizeof(m->id));
			kc_cstr(dm->GroupInstanceId, m->instance, sizeof(m->instance));
			kc_cstr(dm->ClientId, m->client, sizeof(m->client));
			kc_cstr(dm->ClientHost, m->host, sizeof(m->host));
			if (strcmp(g->ptype, "consumer") == 0)
				add_assignment(g, i, dm->MemberAssignment);
		}
		return 0;
	}
}

/* The group's committed offsets (all topics) into g->tps. */
static int fetch_offsets(struct ctl *ctl, struct kc_conn *c, struct group *g)
{
	int16_t v = kc_version(c, KAFKA_API_OffsetFetch, 9);
	if (v < 0)
		return ctl_fail("%s", kc_errbuf);
	if (v < 2)
		return ctl_fail("%s: OffsetFetch v%d cannot ask for all topics", c->addr, v);
	int64_t deadline = ctl_mono_ms() + ctl->timeout_ms;
	for (;;) {
		struct kafka_OffsetFetchRequest req;
		kafka_OffsetFetchRequest_init(&req);
		struct kafka_OffsetFetchRequest_OffsetFetchRequestGroup rg;
		kafka_OffsetFetchRequest_OffsetFetchRequestGroup_init(&rg);
		if (v >= 8) {
			rg.GroupId = kstr_from(g->id);
			rg.Topics_count = -1; /* null: every topic */
			req.Groups = &rg;
			req.Groups_count = 1;
		} else {
			req.GroupId = kstr_from(g->id);
			req.Topics_count = -1;
		}
		struct kafka_OffsetFetchResponse resp;
		kafka_OffsetFetchResponse_init(&resp);
		if (KC_CALL(c, KAFKA_API_OffsetFetch, v, OffsetFetch, &req, &resp) != 0)
			return ctl_fail("%s", kc_errbuf);
		int16_t err = resp.ErrorCode;
		if (v >= 8) {
			if (resp.Groups_count != 1)
				return ctl_fail("OffsetFetch: %d answers for one group", resp.Groups_count);
			err = resp.Groups[0].ErrorCode;
		}
		if (ctl_coordinator_retriable(err) && ctl_mono_ms() + CTL_RETRY_MS <= deadline) {
			ctl_sleep_ms(CTL_RETRY_MS);
			continue;
		}
		if (err == KAFKA_GROUP_ID_NOT_FOUND)
			return 0;
		if (err != 0)
			return ctl_fail("group %s: OffsetFetch: %s", g->id, kc_err_str(err));
		/* The v8+ and older layouts hold the same fields. */
		int nt = v >= 8 ? resp.Groups[0].Topics_count : resp.Topics_count;
		for (int i = 0; i < nt; i++) {
			char topic[NAME_CAP];
			struct kstr name = v >= 8 ? resp.Groups[0].Topics[i].Name : resp.Topics[i].Name;
			int np = v >= 8 ? resp.Groups[0].Topics[i].Partitions_count
					: resp.Topics[i].Partitions_count;
			kc_cstr(name, topic, sizeof(topic));
			for (int j = 0; j < np; j++) {
				int32_t part;
				int64_t off;
				int16_t perr;
				if (v >= 8) {
					struct kafka_OffsetFetchResponse_OffsetFetchResponsePartitions *p =
						&resp.Groups[0].Topics[i].Partitions[j];
					part = p->PartitionIndex, off = p->CommittedOffset, perr = p->ErrorCode;
				} else {
					struct kafka_OffsetFetchResponse_OffsetFetchResponsePartition *p =
						&resp.Topics[i].Partitions[j];
					part = p->PartitionIndex, off = p->CommittedOffset, perr = p->ErrorCode;
				}
				if (perr == 0 && off < 0)
					continue; /* nothing committed */
				struct tp *t = ctl_tps_get(&g->tps, topic, part);
				if (t == NULL)
					return ctl_fail("out of memory");
				t->committed = perr == 0 ? off : -1;
				if (perr != 0)
					t->err = perr;
			}
		}
		return 0;
	}
}

/* Metadata for the topics in s: each partition's leader, or its error. */
static int fill_leaders(struct ctl *ctl, struct tps *s)
{
	if (s->n == 0)
		return 0;
	struct kstr *names = calloc((size_t)s->n, sizeof(*names));
	if (names == NULL)
		return ctl_fail("out of memory");
	int nt = 0;
	for (int i = 0; i < s->n; i++) {
		bool seen = false;
		for (int j = 0; j < nt && !seen; j++)
			seen = kstr_eq_cstr(names[j], s->v[i].topic);
		if (!seen)
			names[nt++] = kstr_from(s->v[i].topic);
	}
	struct kafka_MetadataResponse resp;
	int rc = kc_metadata(&ctl->k.boot, names, nt, &resp);
	free(names);
	if (rc != 0)
		return ctl_fail("%s", kc_errbuf);
	for (int i = 0; i < s->n; i++) {
		struct tp *t = &s->v[i];
		t->err = t->err ? t->err : KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		for (int j = 0; j < resp.Topics_count; j++) {
			const struct kafka_MetadataResponse_MetadataResponseTopic *rt = &resp.Topics[j];
			if (!kstr_eq_cstr(rt->Name, t->topic))
				continue;
			if (rt->ErrorCode != 0) {
				t->err = rt->ErrorCode;
				break;
			}
			for (int k = 0; k < rt->Partitions_count; k++)
				if (rt->Partitions[k].PartitionIndex == t->part) {
					t->leader = rt->Partitions[k].LeaderId;
					t->err = rt->Partitions[k].ErrorCode;
				}
		}
	}
	return 0;
}

/* Every partition of topic, from Metadata, into s. */
static int add_topic_partitions(struct ctl *ctl, struct tps *s, const char *topic)
{
	struct kstr name = kstr_from(topic);
	struct kafka_MetadataResponse resp;
	if (kc_metadata(&ctl->k.boot, &name, 1, &resp) != 0)
		return ctl_fail("%s", kc_errbuf);
	if (resp.Topics_count != 1 || resp.Topics[0].ErrorCode != 0)
		return ctl_fail("topic %s: %s", topic,
				kc_err_str(resp.Topics_count == 1 ? resp.Topics[0].ErrorCode
								  : KAFKA_UNKNOWN_TOPIC_OR_PARTITION));
	for (int k = 0; k < resp.Topics[0].Partitions_count; k++)
		if (ctl_tps_get(s, topic, resp.Topics[0].Partitions[k].PartitionIndex) == NULL)
			return ctl_fail("out of memory");
	return 0;
}

enum offset_field { OFF_START, OFF_END, OFF_TARGET };

/* ListOffsets at ts (-1 latest, -2 earliest, else a time) for every
 * partition of s with a leader, sent to each leader; the answers go to
 * field. An offset of -1 (no record at or after the time) is kept. */
static int list_offsets(struct ctl *ctl, struct tps *s, int64_t ts, enum offset_field field)
{
	for (int i = 0; i < s->n; i++) {
		int32_t leader = s->v[i].leader;
		if (leader < 0 || s->v[i].err != 0)
			continue;
		bool done = false;
		for (int j = 0; j < i && !done; j++)
			done = s->v[j].leader == leader && s->v[j].err == 0;
		if (done)
			continue; /* that leader's request covered it */
		struct kc_conn *c = kc_cluster_node(&ctl->k, leader);
		if (c == NULL)
			return ctl_fail("%s", kc_errbuf);
		int16_t v = kc_version(c, KAFKA_API_ListOffsets, 7);
		if (v < 1)
			return ctl_fail("%s", v < 0 ? kc_errbuf : "ListOffsets v1 is needed");
		/* One request per leader: a topic entry per partition is legal
		 * and keeps this simple. */
		int n = 0;
		for (int j = i; j < s->n; j++)
			n += s->v[j].leader == leader && s->v[j].err == 0;
		struct kafka_ListOffsetsRequest_ListOffsetsTopic *rt = calloc((size_t)n, sizeof(*rt));
		struct kafka_ListOffsetsRequest_ListOffsetsPartition *rp = calloc((size_t)n, sizeof(*rp));
		if (rt == NULL || rp == NULL) {
			free(rt);
			free(rp);
			return ctl_fail("out of memory");
		}
		int k = 0;
		for (int j = i; j < s->n; j++) {
			if (s->v[j].leader != leader || s->v[j].err != 0)
				continue;
			kafka_ListOffsetsRequest_ListOffsetsTopic_init(&rt[k]);
			kafka_ListOffsetsRequest_ListOffsetsPartition_init(&rp[k]);
			rp[k].PartitionIndex = s->v[j].part;
			rp[k].Timestamp = ts;
			rt[k].Name = kstr_from(s->v[j].topic);
			rt[k].Partitions = &rp[k];
			rt[k].Partitions_count = 1;
			k++;
		}
		struct kafka_ListOffsetsRequest req;
		kafka_ListOffsetsRequest_init(&req);
		req.ReplicaId = -1;
		req.Topics = rt;
		req.Topics_count = n;
		struct kafka_ListOffsetsResponse resp;
		kafka_ListOffsetsResponse_init(&resp);
		int rc = KC_CALL(c, KAFKA_API_ListOffsets, v, ListOffsets, &req, &resp);
		free(rt);
		free(rp);
		if (rc != 0)
			return ctl_fail("%s", kc_errbuf);
		for (int a = 0; a < resp.Topics_count; a++) {
			char topic[NAME_CAP];
			kc_cstr(resp.Topics[a].Name, topic, sizeof(topic));
			for (int p = 0; p < resp.Topics[a].Partitions_count; p++) {
				const struct kafka_ListOffsetsResponse_ListOffsetsPartitionResponse *r =
					&resp.Topics[a].Partitions[p];
				for (int j = i; j < s->n; j++) {
					struct tp *t = &s->v[j];
					if (t->part != r->PartitionIndex || strcmp(t->topic, topic) != 0)
						continue;
					if (r->ErrorCode != 0) {
						t->err = r->ErrorCode;
						continue;
					}
					int64_t *dst = field == OFF_START ? &t->start
						       : field == OFF_END ? &t->end : &t->target;
					*dst = r->Offset;
				}
			}
		}
	}
	return 0;
}

/* ---- list ---- */

struct listed {
	char id[NAME_CAP], state[64], type[32], ptype[64];
};

static int listed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct listed *)a)->id, ((const struct listed *)b)->id);
}

static int group_list(struct ctl *ctl, int argc, char **argv)
{
	const char *states[16], *types[16];
	int n_states = 0, n_types = 0;
	static const struct option opts[] = { { "state", required_argument, NULL, 's' },
					      { "type", required_argument, NULL, 't' }, { 0 } };
	int ch;
	optind = 0; /* 0: glibc starts a new scan, permutation state included */
	while ((ch = getopt_long(argc, argv, "+s:t:", opts, NULL)) != -1) {
		if (ch != 's' && ch != 't')
			return ctl_usage_error("group list: unknown option");
		if ((ch == 's' ? n_states : n_types) == 16)
			return ctl_usage_error("group list: at most 16 --state and 16 --type");
		if (ch == 's')
			states[n_states++] = optarg;
		else
			types[n_types++] = optarg;
	}
	if (optind != argc)
		return ctl_usage_error("group list takes no arguments");

	struct listed *g = NULL;
	int n = 0, cap = 0;
	int n_nodes = ctl->k.n_nodes;
	for (int i = 0; i < (n_nodes > 0 ? n_nodes : 1); i++) {
		struct kc_conn *c = n_nodes > 0 ? kc_cluster_node(&ctl->k, ctl->k.nodes[i].id)
						: &ctl->k.boot;
		if (c == NULL) {
			free(g);
			return ctl_fail("%s", kc_errbuf);
		}
		int16_t v = kc_version(c, KAFKA_API_ListGroups, 5);
		if (v < 0) {
			free(g);
			return ctl_fail("%s", kc_errbuf);
		}
		struct kstr filt[16], tfilt[16];
		struct kafka_ListGroupsRequest req;
		kafka_ListGroupsRequest_init(&req);
		if (v >= 4 && n_states > 0) {
			for (int s = 0; s < n_states; s++)
				filt[s] = kstr_from(states[s]);
			req.StatesFilter = filt;
			req.StatesFilter_count = n_states;
		}
		if (v >= 5 && n_types > 0) {
			for (int s = 0; s < n_types; s++)
				tfilt[s] = kstr_from(types[s]);
			req.TypesFilter = tfilt;
			req.TypesFilter_count = n_types;
		}
		struct kafka_ListGroupsResponse resp;
		kafka_ListGroupsResponse_init(&resp);
		if (KC_CALL(c, KAFKA_API_ListGroups, v, ListGroups, &req, &resp) != 0) {
			free(g);
			return ctl_fail("%s", kc_errbuf);
		}
		if (resp.ErrorCode != 0) {
			free(g);
			return ctl_fail("%s: ListGroups: %s", c->addr, kc_err_str(resp.ErrorCode));
		}
		for (int j = 0; j < resp.Groups_count; j++) {
			const struct kafka_ListGroupsResponse_ListedGroup *lg = &resp.Groups[j];
			char id[NAME_CAP], st[64];
			kc_cstr(lg->GroupId, id, sizeof(id));
			kc_cstr(lg->GroupState, st, sizeof(st));
			char ty[32];
			kc_cstr(lg->GroupType, ty, sizeof(ty));
			if (ty[0] == '\0')
				snprintf(ty, sizeof(ty), "classic"); /* before v5 */
			bool keep = n_states == 0;
			for (int s = 0; s < n_states && !keep; s++)
				keep = strcasecmp(states[s], st) == 0 || (v < 4);
			bool typed = n_types == 0;
			for (int s = 0; s < n_types && !typed; s++)
				typed = strcasecmp(types[s], ty) == 0;
			keep = keep && typed;
			bool dup = false;
			for (int k = 0; k < n && !dup; k++)
				dup = strcmp(g[k].id, id) == 0;
			if (!keep || dup)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				struct listed *ng = realloc(g, sizeof(*ng) * (size_t)cap);
				if (ng == NULL) {
					free(g);
					return ctl_fail("out of memory");
				}
				g = ng;
			}
			struct listed *l = &g[n++];
			snprintf(l->id, sizeof(l->id), "%s", id);
			snprintf(l->state, sizeof(l->state), "%s", v >= 4 ? st : "-");
			kc_cstr(lg->GroupType, l->type, sizeof(l->type));
			if (l->type[0] == '\0')
				snprintf(l->type, sizeof(l->type), "classic");
			kc_cstr(lg->ProtocolType, l->ptype, sizeof(l->ptype));
		}
	}
	if (n > 1)
		qsort(g, (size_t)n, sizeof(*g), listed_cmp);
	if (ctl->json) {
		printf("{\"groups\": [");
		for (int i = 0; i < n; i++) {
			printf(i ? ", {\"group\": " : "{\"group\": ");
			ctl_json_str(stdout, g[i].id, (int32_t)strlen(g[i].id));
			printf(", \"state\": ");
			ctl_json_str(stdout, g[i].state, (int32_t)strlen(g[i].state));
			printf(", \"type\": ");
			ctl_json_str(stdout, g[i].type, (int32_t)strlen(g[i].type));
			printf(", \"protocol_type\": ");
			ctl_json_str(stdout, g[i].ptype, (int32_t)strlen(g[i].ptype));
			printf("}");
		}
		printf("]}\n");
	} else {
		static const char *head[] = { "GROUP", "STATE", "TYPE", "PROTOCOL-TYPE" };
		struct ctl_table t;
		ctl_table_init(&t, 4, head);
		for (int i = 0; i < n; i++) {
			const char *row[] = { g[i].id, g[i].state, g[i].type,
					      g[i].ptype[0] ? g[i].ptype : "-" };
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t, stdout);
		ctl_table_free(&t);
	}
	free(g);
	return CTL_EXIT_OK;
}

/* ---- describe ---- */

static void fmt_off(char *buf, size_t cap, int64_t v)
{
	if (v < 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%" PRId64, v);
}

static void describe_print_json(const struct group *g, bool first)
{
	printf(first ? "{\"group\": " : ", {\"group\": ");
	ctl_json_str(stdout, g->id, (int32_t)strlen(g->id));
	printf(", \"state\": ");
	ctl_json_str(stdout, g->state, (int32_t)strlen(g->state));
	printf(", \"type\": \"%s\"", g->consumer ? "consumer" : "classic");
	printf(", \"protocol_type\": ");
	ctl_json_str(stdout, g->ptype, (int32_t)strlen(g->ptype));
	printf(", \"protocol\": ");
	ctl_json_str(stdout, g->protocol, (int32_t)strlen(g->protocol));
	if (g->consumer)
		ctl_cgroup_print_json_head(g);
	printf(", \"members\": [");
	for (int i = 0; i < g->n_members; i++) {
		const struct member *m = &g->m[i];
		printf(i ? ", {\"member_id\": " : "{\"member_id\": ");
		ctl_json_str(stdout, m->id, (int32_t)strlen(m->id));
		printf(", \"instance_id\": ");
		if (m->instance[0])
			ctl_json_str(stdout, m->instance, (int32_t)strlen(m->instance));
		else
			printf("null");
		printf(", \"client_id\": ");
		ctl_json_str(stdout, m->client, (int32_t)strlen(m->client));
		printf(", \"host\": ");
		ctl_json_str(stdout, m->host, (int32_t)strlen(m->host));
		printf(", \"assignment\": [");
		bool f = true;
		for (int j = 0; j < g->tps.n; j++) {
			if (g->tps.v[j].member != i)
				continue;
			printf(f ? "{\"topic\": " : ", {\"topic\": ");
			ctl_json_str(stdout, g->tps.v[j].topic, (int32_t)strlen(g->tps.v[j].topic));
			printf(", \"partition\": %d}", g->tps.v[j].part);
			f = false;
		}
		printf("]");
		if (g->consumer)
			ctl_cgroup_print_json_member(g, i);
		printf("}");
	}
	printf("], \"offsets\": [");
	for (int j = 0; j < g->tps.n; j++) {
		const struct tp *t = &g->tps.v[j];
		printf(j ? ", {\"topic\": " : "{\"topic\": ");
		ctl_json_str(stdout, t->topic, (int32_t)strlen(t->topic));
		printf(", \"partition\": %d, \"committed\": ", t->part);
		printf(t->committed >= 0 ? "%" PRId64 : "null", t->committed);
		printf(", \"log_end\": ");
		printf(t->end >= 0 ? "%" PRId64 : "null", t->end);
		printf(", \"lag\": ");
		if (t->committed >= 0 && t->end >= 0)
			printf("%" PRId64, t->end > t->committed ? t->end - t->committed : 0);
		else
			printf("null");
		printf(", \"member_id\": ");
		if (t->member >= 0)
			ctl_json_str(stdout, g->m[t->member].id, (int32_t)strlen(g->m[t->member].id));
		else
			printf("null");
		printf(", \"error\": ");
		if (t->err != 0)
			ctl_json_str(stdout, kafka_error_name(t->err), (int32_t)strlen(kafka_error_name(t->err)));
		else
			printf("null");
		printf("}");
	}
	printf("]}");
}

static void describe_print(const struct group *g)
{
	printf("Group %s: %s", g->id, g->state);
	if (g->consumer)
		printf(", consumer protocol (KIP-848)");
	else if (g->ptype[0])
		printf(", protocol type %s", g->ptype);
	if (g->protocol[0])
		printf(", assignor %s", g->protocol);
	printf(", %d member%s\n\n", g->n_members, g->n_members == 1 ? "" : "s");
	if (g->tps.n > 0) {
		static const char *head[] = { "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET",
					      "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID" };
		struct ctl_table t;
		ctl_table_init(&t, 8, head);
		for (int j = 0; j < g->tps.n; j++) {
			const struct tp *p = &g->tps.v[j];
			char part[16], cur[24], end[24], lag[24];
			snprintf(part, sizeof(part), "%d", p->part);
			fmt_off(cur, sizeof(cur), p->committed);
			fmt_off(end, sizeof(end), p->end);
			fmt_off(lag, sizeof(lag),
				p->committed >= 0 && p->end >= 0
					? (p->end > p->committed ? p->end - p->committed : 0)
					: -1);
			const struct member *m = p->member >= 0 ? &g->m[p->member] : NULL;
			const char *row[] = { p->topic, part, cur,
					      p->err ? kafka_error_name(p->err) : end, lag,
					      m ? m->id : "-", m ? m->host : "-", m ? m->client : "-" };
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t, stdout);
		ctl_table_free(&t);
	} else {
		printf("No committed offsets and no assigned partitions.\n");
	}
	if (g->consumer) {
		/* Every member, with its epoch and its target beside what it
		 * owns now. */
		ctl_cgroup_print_members(g);
		return;
	}
	/* Members with nothing assigned do not show in the partition table. */
	bool idle_header = false;
	for (int i = 0; i < g->n_members; i++) {
		if (g->m[i].n_assigned > 0)
			continue;
		if (!idle_header)
			printf("\nMembers without partitions:\n");
		idle_header = true;
		printf("  %s  %s  %s%s%s\n", g->m[i].id, g->m[i].host, g->m[i].client,
		       g->m[i].instance[0] ? "  instance " : "", g->m[i].instance);
	}
}

static int group_describe(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_error("group describe: name at least one group");
	int rc = CTL_EXIT_OK;
	if (ctl->json)
		printf("{\"groups\": [");
	for (int i = 1; i < argc; i++) {
		struct group g;
		memset(&g, 0, sizeof(g));
		struct kc_conn *c = coordinator(ctl, argv[i]);
		bool consumer = false;
		if (c == NULL || ctl_cgroup_describe(ctl, c, argv[i], &g, &consumer) != 0 ||
		    (!consumer && describe(ctl, c, argv[i], &g) != 0) ||
		    fetch_offsets(ctl, c, &g) != 0 || fill_leaders(ctl, &g.tps) != 0 ||
		    list_offsets(ctl, &g.tps, -1, OFF_END) != 0) {
			group_free(&g);
			rc = CTL_EXIT_FAILED;
			continue;
		}
		if (g.tps.n > 1)
			qsort(g.tps.v, (size_t)g.tps.n, sizeof(*g.tps.v), tp_cmp);
		if (g.target.n > 1)
			qsort(g.target.v, (size_t)g.target.n, sizeof(*g.target.v), tp_cmp);
		if (ctl->json) {
			describe_print_json(&g, i == 1);
		} else {
			if (i > 1)
				printf("\n");
			describe_print(&g);
		}
		group_free(&g);
	}
	if (ctl->json)
		printf("]}\n");
	return rc;
}

/* ---- delete ---- */

static int group_delete(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_error("group delete: name at least one group");
	int rc = CTL_EXIT_OK;
	if (ctl->json)
		printf("{\"groups\": [");
	for (int i = 1; i < argc; i++) {
		int16_t err = -2; /* no answer */
		struct kc_conn *c = coordinator(ctl, argv[i]);
		int16_t v = c != NULL ? kc_version(c, KAFKA_API_DeleteGroups, 2) : -1;
		if (c != NULL && v < 0)
			ctl_fail("%s", kc_errbuf);
		if (v >= 0) {
			struct kstr name = kstr_from(argv[i]);
			struct kafka_DeleteGroupsRequest req;
			kafka_DeleteGroupsRequest_init(&req);
			req.GroupsNames = &name;
			req.GroupsNames_count = 1;
			struct kafka_DeleteGroupsResponse resp;
			kafka_DeleteGroupsResponse_init(&resp);
			if (KC_CALL(c, KAFKA_API_DeleteGroups, v, DeleteGroups, &req, &resp) != 0)
				ctl_fail("%s", kc_errbuf);
			else if (resp.Results_count != 1)
				ctl_fail("DeleteGroups: %d answers for one group", resp.Results_count);
			else
				err = resp.Results[0].ErrorCode;
		}
		if (err != 0)
			rc = CTL_EXIT_FAILED;
		if (ctl->json) {
			printf(i > 1 ? ", {\"group\": " : "{\"group\": ");
			ctl_json_str(stdout, argv[i], (int32_t)strlen(argv[i]));
			printf(", \"error\": ");
			if (err == 0)
				printf("null}");
			else {
				const char *e = err == -2 ? "REQUEST_FAILED" : kafka_error_name(err);
				ctl_json_str(stdout, e, (int32_t)strlen(e));
				printf("}");
			}
		} else if (err == 0) {
			printf("Deleted group %s.\n", argv[i]);
		} else if (err != -2) {
			ctl_fail("group %s: not deleted: %s%s", argv[i], kc_err_str(err),
				 err == KAFKA_NON_EMPTY_GROUP ? " (it has members: stop them first)" : "");
		}
	}
	if (ctl->json)
		printf("]}\n");
	return rc;
}

/* ---- reset-offsets ---- */

enum reset_to { TO_NONE, TO_EARLIEST, TO_LATEST, TO_OFFSET, TO_DATETIME, TO_SHIFT };

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return -1;
	*out = v;
	return 0;
}

/* A time as Kafka's tool takes it, YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm|-hh:mm]
 * (local time without a zone), or milliseconds since the epoch. */
static int parse_datetime(const char *s, int64_t *ms)
{
	if (parse_i64(s, ms) == 0)
		return *ms >= 0 ? 0 : -1;
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	int64_t frac = 0;
	if (*p == '.') {
		int digits = 0;
		for (p++; isdigit((unsigned char)*p); p++, digits++)
			if (digits < 3)
				frac = frac * 10 + (*p - '0');
		for (; digits < 3; digits++)
			frac *= 10;
	}
	time_t t;
	if (*p == '\0') {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	} else if (*p == 'Z' && p[1] == '\0') {
		t = timegm(&tm);
	} else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
		   isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
		   isdigit((unsigned char)p[5]) && p[6] == '\0') {
		int off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		t = timegm(&tm) - (*p == '+' ? off : -off);
	} else {
		return -1;
	}
	if (t == (time_t)-1)
		return -1;
	*ms = (int64_t)t * 1000 + frac;
	return 0;
}

/* "T" or "T:0,2,5" into s. */
static int add_topic_arg(struct ctl *ctl, struct tps *s, const char *arg)
{
	char topic[NAME_CAP];
	const char *colon = strchr(arg, ':');
	size_t tl = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
	if (tl == 0 || tl >= sizeof(topic))
		return ctl_usage_error("--topic: '%s' is not TOPIC or TOPIC:P[,P...]", arg);
	memcpy(topic, arg, tl);
	topic[tl] = '\0';
	if (colon == NULL)
		return add_topic_partitions(ctl, s, topic) == 0 ? 0 : CTL_EXIT_FAILED;
	const char *p = colon + 1;
	while (*p != '\0') {
		char *end;
		long part = strtol(p, &end, 10);
		if (end == p || part < 0 || part > INT32_MAX || (*end != ',' && *end != '\0'))
			return ctl_usage_error("--topic: bad partition list in '%s'", arg);
		if (ctl_tps_get(s, topic, (int32_t)part) == NULL)
			return ctl_fail("out of memory");
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

/* OffsetCommit of every planned target, as a non-member. */
static int commit_targets(struct ctl *ctl, struct kc_conn *c, const char *group, struct tps *s)
{
	int16_t v = kc_version(c, KAFKA_API_OffsetCommit, 9);
	if (v < 0)
		return ctl_fail("%s", kc_errbuf);
	int n = 0;
	for (int i = 0; i < s->n; i++)
		n += s->v[i].target >= 0;
	struct kafka_OffsetCommitRequest_OffsetCommitRequestTopic *rt = calloc((size_t)n + 1, sizeof(*rt));
	struct kafka_OffsetCommitRequest_OffsetCommitRequestPartition *rp =
		calloc((size_t)n + 1, sizeof(*rp));
	if (rt == NULL || rp == NULL) {
		free(rt);
		free(rp);
		return ctl_fail("out of memory");
	}
	int k = 0;
	for (int i = 0; i < s->n; i++) {
		if (s->v[i].target < 0)
			continue;
		kafka_OffsetCommitRequest_OffsetCommitRequestTopic_init(&rt[k]);
		kafka_OffsetCommitRequest_OffsetCommitRequestPartition_init(&rp[k]);
		rp[k].PartitionIndex = s->v[i].part;
		rp[k].CommittedOffset = s->v[i].target;
		rp[k].CommittedMetadata = KSTR("");
		rt[k].Name = kstr_from(s->v[i].topic);
		rt[k].Partitions = &rp[k];
		rt[k].Partitions_count = 1;
		k++;
	}
	struct kafka_OffsetCommitRequest req;
	kafka_OffsetCommitRequest_init(&req);
	req.GroupId = kstr_from(group);
	req.GenerationIdOrMemberEpoch = -1;
	req.MemberId = KSTR("");
	req.Topics = rt;
	req.Topics_count = n;
	struct kafka_OffsetCommitResponse resp;
	kafka_OffsetCommitResponse_init(&resp);
	int rc = KC_CALL(c, KAFKA_API_OffsetCommit, v, OffsetCommit, &req, &resp);
	free(rt);
	free(rp);
	if (rc != 0)
		return ctl_fail("%s", kc_errbuf);
	int failed = 0;
	for (int a = 0; a < resp.Topics_count; a++) {
		char topic[NAME_CAP];
		kc_cstr(resp.Topics[a].Name, topic, sizeof(topic));
		for (int p = 0; p < resp.Topics[a].Partitions_count; p++) {
			int16_t err = resp.Topics[a].Partitions[p].ErrorCode;
			if (err == 0)
				continue;
			struct tp *t = ctl_tps_get(s, topic, resp.Topics[a].Partitions[p].PartitionIndex);
			if (t != NULL)
				t->err = err;
			failed++;
		}
	}
	return failed ? CTL_EXIT_FAILED : 0;
}

static int group_reset(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "topic", required_argument, NULL, 't' },
		{ "all-topics", no_argument, NULL, 'a' },
		{ "to-earliest", no_argument, NULL, 'e' },
		{ "to-latest", no_argument, NULL, 'l' },
		{ "to-offset", required_argument, NULL, 'o' },
		{ "to-datetime", required_argument, NULL, 'd' },
		{ "shift-by", required_argument, NULL, 's' },
		{ "execute", no_argument, NULL, 'x' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ 0 },
	};
	const char *topics[CTL_NAMES_MAX];
	int n_topics = 0;
	bool all = false, execute = false;
	enum reset_to to = TO_NONE;
	int64_t arg = 0;
	int ch;
	optind = 0; /* 0: glibc starts a new scan, permutation state included */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		enum reset_to want = TO_NONE;
		switch (ch) {
		case 't':
			if (n_topics == CTL_NAMES_MAX)
				return ctl_usage_error("at most %d --topic", CTL_NAMES_MAX);
			topics[n_topics++] = optarg;
			continue;
		case 'a':
			all = true;
			continue;
		case 'x':
			execute = true;
			continue;
		case 'n':
			execute = false;
			continue;
		case 'e':
			want = TO_EARLIEST;
			break;
		case 'l':
			want = TO_LATEST;
			break;
		case 'o':
			want = TO_OFFSET;
			if (parse_i64(optarg, &arg) != 0 || arg < 0)
				return ctl_usage_error("--to-offset: '%s' is not an offset", optarg);
			break;
		case 'd':
			want = TO_DATETIME;
			if (parse_datetime(optarg, &arg) != 0)
				return ctl_usage_error("--to-datetime: '%s' is not YYYY-MM-DDTHH:mm:SS[.sss]"
						       "[Z|+hh:mm] or epoch milliseconds", optarg);
			break;
		case 's':
			want = TO_SHIFT;
			if (parse_i64(optarg, &arg) != 0)
				return ctl_usage_error("--shift-by: '%s' is not a number", optarg);
			break;
		default:
			return ctl_usage_error("group reset-offsets: unknown option");
		}
		if (to != TO_NONE)
			return ctl_usage_error("group reset-offsets: give one --to-... or --shift-by");
		to = want;
	}
	if (optind + 1 != argc)
		return ctl_usage_error("group reset-offsets: name one group");
	if (to == TO_NONE)
		return ctl_usage_error("group reset-offsets: say where to: --to-earliest, --to-latest, "
				       "--to-offset N, --to-datetime T or --shift-by N");
	if ((n_topics > 0) == all)
		return ctl_usage_error("group reset-offsets: give --topic T (repeatable) or --all-topics");
	const char *gid = argv[optind];

	struct kc_conn *c = coordinator(ctl, gid);
	if (c == NULL)
		return CTL_EXIT_FAILED;
	struct group g;
	bool consumer = false;
	if (ctl_cgroup_describe(ctl, c, gid, &g, &consumer) != 0 ||
	    (!consumer && describe(ctl, c, gid, &g) != 0)) {
		group_free(&g);
		return CTL_EXIT_FAILED;
	}
	if (strcmp(g.state, "Empty") != 0 && strcmp(g.state, "Dead") != 0) {
		group_free(&g);
		return ctl_fail("group %s is %s: offsets can be reset only while it has no members "
				"(stop its consumers first)", gid, g.state);
	}
	/* The committed offsets, for the shift and for the report. */
	struct group committed;
	memset(&committed, 0, sizeof(committed));
	snprintf(committed.id, sizeof(committed.id), "%s", gid);
	if (fetch_offsets(ctl, c, &committed) != 0) {
		group_free(&g);
		group_free(&committed);
		return CTL_EXIT_FAILED;
	}
	struct tps plan = { 0 };
	int rc = 0;
	if (all) {
		for (int i = 0; i < committed.tps.n && rc == 0; i++)
			if (ctl_tps_get(&plan, committed.tps.v[i].topic, committed.tps.v[i].part) == NULL)
				rc = ctl_fail("out of memory");
	}
	for (int i = 0; i < n_topics && rc == 0; i++)
		rc = add_topic_arg(ctl, &plan, topics[i]);
	for (int i = 0; i < plan.n; i++)
		for (int j = 0; j < committed.tps.n; j++)
			if (committed.tps.v[j].part == plan.v[i].part &&
			    strcmp(committed.tps.v[j].topic, plan.v[i].topic) == 0)
				plan.v[i].committed = committed.tps.v[j].committed;
	if (rc == 0 && plan.n == 0)
		rc = ctl_fail("group %s: no partitions to reset", gid);
	if (rc == 0 && (fill_leaders(ctl, &plan) != 0 ||
			list_offsets(ctl, &plan, -2, OFF_START) != 0 ||
			list_offsets(ctl, &plan, -1, OFF_END) != 0 ||
			(to == TO_DATETIME && list_offsets(ctl, &plan, arg, OFF_TARGET) != 0)))
		rc = CTL_EXIT_FAILED;
	for (int i = 0; i < plan.n && rc == 0; i++) {
		struct tp *t = &plan.v[i];
		if (t->err != 0 || t->start < 0 || t->end < 0) {
			t->target = -1;
			continue;
		}
		int64_t want = 0;
		switch (to) {
		case TO_EARLIEST:
			want = t->start;
			break;
		case TO_LATEST:
			want = t->end;
			break;
		case TO_OFFSET:
			want = arg;
			break;
		case TO_DATETIME:
			/* No record at or after the time: the end, as Kafka does. */
			want = t->target >= 0 ? t->target : t->end;
			break;
		case TO_SHIFT:
			if (t->committed < 0) {
				t->target = -1;
				t->err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION; /* marked below */
				continue;
			}
			want = t->committed + arg;
			break;
		case TO_NONE:
			break;
		}
		/* Out of what the log holds: the nearest end, as Kafka's tool. */
		t->target = want < t->start ? t->start : want > t->end ? t->end : want;
	}
	if (plan.n > 1)
		qsort(plan.v, (size_t)plan.n, sizeof(*plan.v), tp_cmp);
	int planned = 0;
	for (int i = 0; i < plan.n; i++)
		planned += plan.v[i].target >= 0;
	if (rc == 0 && execute && planned > 0)
		rc = commit_targets(ctl, c, gid, &plan);
	if (rc == 0 && planned < plan.n)
		rc = CTL_EXIT_FAILED; /* some partitions could not be planned */

	if (ctl->json) {
		printf("{\"group\": ");
		ctl_json_str(stdout, gid, (int32_t)strlen(gid));
		printf(", \"executed\": %s, \"offsets\": [", execute && planned > 0 ? "true" : "false");
		for (int i = 0; i < plan.n; i++) {
			const struct tp *t = &plan.v[i];
			printf(i ? ", {\"topic\": " : "{\"topic\": ");
			ctl_json_str(stdout, t->topic, (int32_t)strlen(t->topic));
			printf(", \"partition\": %d, \"previous\": ", t->part);
			printf(t->committed >= 0 ? "%" PRId64 : "null", t->committed);
			printf(", \"new\": ");
			printf(t->target >= 0 ? "%" PRId64 : "null", t->target);
			printf(", \"error\": ");
			if (t->err != 0 && !(to == TO_SHIFT && t->committed < 0))
				ctl_json_str(stdout, kafka_error_name(t->err),
					     (int32_t)strlen(kafka_error_name(t->err)));
			else if (t->target < 0)
				printf("\"NO_COMMITTED_OFFSET\"");
			else
				printf("null");
			printf("}");
		}
		printf("]}\n");
	} else if (plan.n > 0) {
		static const char *head[] = { "GROUP", "TOPIC", "PARTITION", "PREVIOUS-OFFSET",
					      "NEW-OFFSET" };
		struct ctl_table t;
		ctl_table_init(&t, 5, head);
		for (int i = 0; i < plan.n; i++) {
			const struct tp *p = &plan.v[i];
			char part[16], prev[24], nw[64];
			snprintf(part, sizeof(part), "%d", p->part);
			fmt_off(prev, sizeof(prev), p->committed);
			if (p->target >= 0 && p->err == 0)
				snprintf(nw, sizeof(nw), "%" PRId64, p->target);
			else if (to == TO_SHIFT && p->committed < 0)
				snprintf(nw, sizeof(nw), "(no committed offset to shift)");
			else
				snprintf(nw, sizeof(nw), "(%s)", kafka_error_name(p->err));
			const char *row[] = { gid, p->topic, part, prev, nw };
			ctl_table_add(&t, row);
		}
		ctl_table_print(&t, stdout);
		ctl_table_free(&t);
		if (!execute)
			printf("\nDry run: nothing was changed. Add --execute to commit these offsets.\n");
		else if (rc == 0)
			printf("\nCommitted.\n");
	}
	group_free(&g);
	group_free(&committed);
	free(plan.v);
	return rc;
}

/* ---- dispatch ---- */

void ctl_group_usage(FILE *out)
{
	fprintf(out,
		"  group list [--state STATE]... [--type TYPE]...\n"
		"                                  the groups, with state and type (STATE: Empty,\n"
		"                                  Stable, PreparingRebalance, CompletingRebalance,\n"
		"                                  Assigning, Reconciling, Dead, ...; TYPE: classic or\n"
		"                                  consumer; each repeatable)\n"
		"  group describe GROUP...         state, members, assignments, committed offsets,\n"
		"                                  log end offsets and lag per partition; for a\n"
		"                                  consumer group (KIP-848) the group and assignment\n"
		"                                  epochs and each member's epoch and target\n"
		"  group delete GROUP...           delete groups without members, with their offsets\n"
		"  group reset-offsets GROUP (--topic TOPIC[:P[,P...]]... | --all-topics)\n"
		"        (--to-earliest | --to-latest | --to-offset N | --to-datetime TIME |\n"
		"         --shift-by N) [--execute]\n"
		"                                  print the new offsets (clamped to what the log\n"
		"                                  holds); with --execute commit them. The group must\n"
		"                                  have no members. TIME: YYYY-MM-DDTHH:mm:SS[.sss]\n"
		"                                  [Z|+hh:mm] (local time without a zone) or epoch ms.\n"
		"                                  --all-topics: the partitions it has offsets for.\n");
}

int ctl_group(struct ctl *ctl, int argc, char **argv)
{
	if (argc < 1)
		return ctl_usage_error("group: list, describe, delete or reset-offsets?");
	const char *sub = argv[0];
	int (*fn)(struct ctl *, int, char **) = NULL;
	if (strcmp(sub, "list") == 0)
		fn = group_list;
	else if (strcmp(sub, "describe") == 0)
		fn = group_describe;
	else if (strcmp(sub, "delete") == 0)
		fn = group_delete;
	else if (strcmp(sub, "reset-offsets") == 0)
		fn = group_reset;
	else
		return ctl_usage_error("group: unknown subcommand '%s'", sub);
	if (kc_cluster_open(&ctl->k, ctl->bootstrap, ctl->timeout_ms) != 0)
		return ctl_fail("%s", kc_errbuf);
	int rc = fn(ctl, argc, argv);
	kc_cluster_close(&ctl->k);
	return rc;
}

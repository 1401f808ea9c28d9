/*
 * offset_commit: OffsetCommit throughput and latency, as a group member
 * commits.
 *
 * Each of --clients threads is one consumer of its own group: it finds the
 * coordinator, joins (JoinGroup, again with the member id the broker asks
 * for, then SyncGroup as the group's leader), and then commits --partitions
 * offsets per OffsetCommit, one request at a time, for --duration seconds,
 * with a Heartbeat each second so the session stays alive. Every commit is
 * timed from send to answer; a commit answered with an error counts as an
 * error and stops the run's exit status from being 0.
 *
 * Prints one JSON line: commits, commits_per_s, errors, latency_us
 * {p50,p90,p99,p99_9,max}.
 *
 * Usage: offset_commit [--bootstrap H:P] [--topic T] [--clients N]
 *                      [--partitions N] [--duration S]
 * The topic is created with --partitions partitions if it does not exist
 * (the coordinator, like Kafka's, refuses commits for unknown partitions).
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "probe_stats.h"

#include "kclient.h"

#define OC_CLIENTS_MAX 256
#define OC_PARTITIONS_MAX 1024
/* Commits one client may time (a run is bounded by its duration anyway). */
#define OC_SAMPLES_MAX (4 * 1000 * 1000)
#define OC_HEARTBEAT_MS 1000
#define OC_SESSION_TIMEOUT_MS 30000

struct oc_args {
	const char *bootstrap, *topic;
	int clients, partitions;
	double duration;
};

struct oc_client {
	pthread_t th;
	int idx;
	const struct oc_args *a;
	int64_t *lat; /* ns */
	size_t n;
	uint64_t errors;
	char err[600];
};

static int oc_fail(struct oc_client *c, const char *what)
{
	snprintf(c->err, sizeof(c->err), "client %d: %s: %s", c->idx, what, kc_errbuf);
	return -1;
}

static int oc_fail_code(struct oc_client *c, const char *what, int16_t code)
{
	snprintf(c->err, sizeof(c->err), "client %d: %s: %s", c->idx, what, kc_err_str(code));
	return -1;
}

/* The coordinator of group, through boot. */
static int oc_coordinator(struct oc_client *cl, struct kc_conn *boot, const char *group,
			  struct kc_conn *out)
{
	char host[256];
	int32_t node, port;
	if (kc_find_coordinator(boot, group, 30000, &node, host, sizeof(host), &port) != 0)
		return oc_fail(cl, "FindCoordinator");
	if (kc_connect(out, host, port, 30000) != 0)
		return oc_fail(cl, "connecting to the coordinator");
	return 0;
}

static void *oc_run(void *arg)
{
	struct oc_client *cl = arg;
	const struct oc_args *a = cl->a;
	char group[128];
	snprintf(group, sizeof(group), "oc-bench-%d-%d", (int)getpid(), cl->idx);
	struct kc_conn boot, c;
	if (kc_connect_addr(&boot, a->bootstrap, 30000) != 0) {
		oc_fail(cl, "connect");
		return NULL;
	}
	if (oc_coordinator(cl, &boot, group, &c) != 0) {
		kc_close(&boot);
		return NULL;
	}
	kc_close(&boot);

	/* Join: the subscription is ConsumerProtocolSubscription v0. */
	uint8_t sub[512];
	struct kwriter w;
	kw_init(&w, 256, sizeof(sub));
	kw_int16(&w, 0);
	struct kafka_ConsumerProtocolSubscription s;
	kafka_ConsumerProtocolSubscription_init(&s);
	struct kstr topic = kstr_from(a->topic);
	s.Topics = &topic;
	s.Topics_count = 1;
	kafka_ConsumerProtocolSubscription_encode(&w, 0, &s);
	size_t sub_len = kw_copy_out(&w, sub, sizeof(sub));
	kw_free(&w);

	int16_t jv = kc_version(&c, KAFKA_API_JoinGroup, 9);
	int16_t sv = kc_version(&c, KAFKA_API_SyncGroup, 5);
	int16_t hv = kc_version(&c, KAFKA_API_Heartbeat, 4);
	int16_t cv = kc_version(&c, KAFKA_API_OffsetCommit, 9);
	if (jv < 0 || sv < 0 || hv < 0 || cv < 0) {
		oc_fail(cl, "versions");
		kc_close(&c);
		return NULL;
	}
	char member[256] = "";
	int32_t gen = -1;
	for (int attempt = 0; attempt < 10; attempt++) {
		struct kafka_JoinGroupRequest_JoinGroupRequestProtocol proto = {
			.Name = KSTR("range"), .Metadata = { sub, (int32_t)sub_len } };
		struct kafka_JoinGroupRequest jr;
		kafka_JoinGroupRequest_init(&jr);
		jr.GroupId = kstr_from(group);
		jr.SessionTimeoutMs = OC_SESSION_TIMEOUT_MS;
		jr.RebalanceTimeoutMs = OC_SESSION_TIMEOUT_MS;
		jr.MemberId = kstr_from(member);
		jr.ProtocolType = KSTR("consumer");
		jr.Protocols = &proto;
		jr.Protocols_count = 1;
		struct kafka_JoinGroupResponse jresp;
		kafka_JoinGroupResponse_init(&jresp);
		if (KC_CALL(&c, KAFKA_API_JoinGroup, jv, JoinGroup, &jr, &jresp) != 0) {
			oc_fail(cl, "JoinGroup");
			break;
		}
		kc_cstr(jresp.MemberId, member, sizeof(member));
		if (jresp.ErrorCode == KAFKA_MEMBER_ID_REQUIRED)
			continue;
		if (jresp.ErrorCode != 0) {
			oc_fail_code(cl, "JoinGroup", jresp.ErrorCode);
			break;
		}
		gen = jresp.GenerationId;
		break;
	}
	if (gen < 0) {
		if (cl->err[0] == '\0')
			oc_fail_code(cl, "JoinGroup", KAFKA_MEMBER_ID_REQUIRED);
		kc_close(&c);
		return NULL;
	}
	struct kafka_SyncGroupRequest_SyncGroupRequestAssignment as = {
		.MemberId = kstr_from(member), .Assignment = { (const uint8_t *)"", 0 } };
	struct kafka_SyncGroupRequest sr;
	kafka_SyncGroupRequest_init(&sr);
	sr.GroupId = kstr_from(group);
	sr.GenerationId = gen;
	sr.MemberId = kstr_from(member);
	sr.ProtocolType = KSTR("consumer");
	sr.ProtocolName = KSTR("range");
	sr.Assignments = &as;
	sr.Assignments_count = 1;
	struct kafka_SyncGroupResponse sresp;
	kafka_SyncGroupResponse_init(&sresp);
	if (KC_CALL(&c, KAFKA_API_SyncGroup, sv, SyncGroup, &sr, &sresp) != 0 || sresp.ErrorCode != 0) {
		if (sresp.ErrorCode != 0)
			oc_fail_code(cl, "SyncGroup", sresp.ErrorCode);
		else
			oc_fail(cl, "SyncGroup");
		kc_close(&c);
		return NULL;
	}

	struct kafka_OffsetCommitRequest_OffsetCommitRequestPartition parts[OC_PARTITIONS_MAX];
	for (int p = 0; p < a->partitions; p++) {
		kafka_OffsetCommitRequest_OffsetCommitRequestPartition_init(&parts[p]);
		parts[p].PartitionIndex = p;
		parts[p].CommittedMetadata = KSTR("");
	}
	struct kafka_OffsetCommitRequest_OffsetCommitRequestTopic ct;
	kafka_OffsetCommitRequest_OffsetCommitRequestTopic_init(&ct);
	ct.Name = topic;
	ct.Partitions = parts;
	ct.Partitions_count = a->partitions;
	int64_t end = now_ns() + (int64_t)(a->duration * 1e9), next_hb = now_ns();
	for (int64_t off = 1; now_ns() < end && cl->n < OC_SAMPLES_MAX; off++) {
		if (now_ns() >= next_hb) {
			struct kafka_HeartbeatRequest hr;
			kafka_HeartbeatRequest_init(&hr);
			hr.GroupId = kstr_from(group);
			hr.GenerationId = gen;
			hr.MemberId = kstr_from(member);
			struct kafka_HeartbeatResponse hresp;
			kafka_HeartbeatResponse_init(&hresp);
			if (KC_CALL(&c, KAFKA_API_Heartbeat, hv, Heartbeat, &hr, &hresp) != 0) {
				oc_fail(cl, "Heartbeat");
				break;
			}
			if (hresp.ErrorCode != 0) {
				oc_fail_code(cl, "Heartbeat", hresp.ErrorCode);
				break;
			}
			next_hb += (int64_t)OC_HEARTBEAT_MS * 1000000;
		}
		for (int p = 0; p < a->partitions; p++)
			parts[p].CommittedOffset = off;
		struct kafka_OffsetCommitRequest req;
		kafka_OffsetCommitRequest_init(&req);
		req.GroupId = kstr_from(group);
		req.GenerationIdOrMemberEpoch = gen;
		req.MemberId = kstr_from(member);
		req.Topics = &ct;
		req.Topics_count = 1;
		struct kafka_OffsetCommitResponse resp;
		kafka_OffsetCommitResponse_init(&resp);
		int64_t t0 = now_ns();
		if (KC_CALL(&c, KAFKA_API_OffsetCommit, cv, OffsetCommit, &req, &resp) != 0) {
			oc_fail(cl, "OffsetCommit");
			break;
		}
		cl->lat[cl->n++] = now_ns() - t0;
		for (int t = 0; t < resp.Topics_count; t++)
			for (int p = 0; p < resp.Topics[t].Partitions_count; p++)
				if (resp.Topics[t].Partitions[p].ErrorCode != 0) {
					if (cl->errors++ == 0)
						oc_fail_code(cl, "OffsetCommit",
							     resp.Topics[t].Partitions[p].ErrorCode);
				}
	}
	kc_close(&c);
	return NULL;
}

/* CreateTopics for a.topic; an existing topic is fine. */
static int oc_create_topic(const struct oc_args *a)
{
	struct kc_conn c;
	if (kc_connect_addr(&c, a->bootstrap, 30000) != 0) {
		fprintf(stderr, "offset_commit: %s\n", kc_errbuf);
		return -1;
	}
	int16_t v = kc_version(&c, KAFKA_API_CreateTopics, 7);
	struct kafka_CreateTopicsRequest_CreatableTopic t;
	kafka_CreateTopicsRequest_CreatableTopic_init(&t);
	t.Name = kstr_from(a->topic);
	t.NumPartitions = a->partitions;
	t.ReplicationFactor = 1;
	struct kafka_CreateTopicsRequest req;
	kafka_CreateTopicsRequest_init(&req);
	req.Topics = &t;
	req.Topics_count = 1;
	req.timeoutMs = 30000;
	struct kafka_CreateTopicsResponse resp;
	kafka_CreateTopicsResponse_init(&resp);
	int rc = v < 0 ? -1 : KC_CALL(&c, KAFKA_API_CreateTopics, v, CreateTopics, &req, &resp);
	if (rc != 0)
		fprintf(stderr, "offset_commit: creating %s: %s\n", a->topic, kc_errbuf);
	else if (resp.Topics_count != 1 || (resp.Topics[0].ErrorCode != 0 &&
					    resp.Topics[0].ErrorCode != KAFKA_TOPIC_ALREADY_EXISTS))
		rc = -1, fprintf(stderr, "offset_commit: creating %s: %s\n", a->topic,
				 kc_err_str(resp.Topics_count ? resp.Topics[0].ErrorCode : -1));
	kc_close(&c);
	return rc;
}

int main(int argc, char **argv)
{
	struct oc_args a = { .bootstrap = "127.0.0.1:9092", .topic = "oc-bench", .clients = 1,
			     .partitions = 1, .duration = 10 };
	static const struct option opts[] = {
		{ "bootstrap", required_argument, NULL, 'b' },
		{ "topic", required_argument, NULL, 't' },
		{ "clients", required_argument, NULL, 'c' },
		{ "partitions", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'b': a.bootstrap = optarg; break;
		case 't': a.topic = optarg; break;
		case 'c': a.clients = atoi(optarg); break;
		case 'p': a.partitions = atoi(optarg); break;
		case 'd': a.duration = atof(optarg); break;
		default:
			fprintf(stderr, "usage: offset_commit [--bootstrap H:P] [--topic T] "
					"[--clients N] [--partitions N] [--duration S]\n");
			return 2;
		}
	}
	if (a.clients < 1 || a.clients > OC_CLIENTS_MAX || a.partitions < 1 ||
	    a.partitions > OC_PARTITIONS_MAX || a.duration <= 0) {
		fprintf(stderr, "offset_commit: bad arguments\n");
		return 2;
	}
	if (oc_create_topic(&a) != 0)
		return 1;
	struct oc_client *cl = calloc((size_t)a.clients, sizeof(*cl));
	int64_t t0 = now_ns();
	for (int i = 0; i < a.clients; i++) {
		cl[i].idx = i;
		cl[i].a = &a;
		cl[i].lat = malloc(sizeof(int64_t) * OC_SAMPLES_MAX);
		if (cl[i].lat == NULL || pthread_create(&cl[i].th, NULL, oc_run, &cl[i]) != 0) {
			fprintf(stderr, "offset_commit: cannot start client %d\n", i);
			return 2;
		}
	}
	size_t total = 0;
	uint64_t errors = 0;
	int failed = 0;
	for (int i = 0; i < a.clients; i++) {
		pthread_join(cl[i].th, NULL);
		total += cl[i].n;
		errors += cl[i].errors;
		if (cl[i].err[0]) {
			fprintf(stderr, "offset_commit: %s\n", cl[i].err);
			failed = 1;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	int64_t *all = malloc(sizeof(int64_t) * (total + 1));
	size_t k = 0;
	for (int i = 0; i < a.clients; i++) {
		memcpy(all + k, cl[i].lat, cl[i].n * sizeof(int64_t));
		k += cl[i].n;
	}
	qsort(all, total, sizeof(int64_t), cmp_i64);
#define PCT(q) (total ? (long long)(all[(size_t)((q) * (double)total) < total ? (size_t)((q) * (double)total) : total - 1] / 1000) : 0LL)
	printf("{\"commits\": %zu, \"commits_per_s\": %.0f, \"errors\": %" PRIu64
	       ", \"clients\": %d, \"partitions_per_commit\": %d, "
	       "\"latency_us\": {\"p50\": %lld, \"p90\": %lld, \"p99\": %lld, \"p99_9\": %lld, "
	       "\"max\": %lld}}\n",
	       total, (double)total / secs, errors, a.clients, a.partitions, PCT(.5), PCT(.9),
	       PCT(.99), PCT(.999), total ? (long long)(all[total - 1] / 1000) : 0LL);
	return failed || errors ? 1 : 0;
}

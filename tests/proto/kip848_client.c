/*
 * kip848_client: a protocol-level client of the KIP-848 consumer group
 * protocol, for tests/integration/test_kip848.py. The installed librdkafka
 * (2.0.2) predates group.protocol=consumer, so the tests speak the
 * protocol themselves: this program encodes and decodes with the broker's
 * generated codec (through tools/kclient), acts as any number of named
 * members, and is driven line by line on stdin; each command answers one
 * JSON object on one line of stdout.
 *
 *   topics                              refresh topic names and ids (Metadata v12)
 *   hb name=M group=G [field=value...]  one ConsumerGroupHeartbeat of member M
 *   describe group=G[,G2]               ConsumerGroupDescribe
 *   commit name=M group=G topic=T partition=P offset=O [epoch=E] [version=V]
 *   fetch group=G topic=T partition=P [name=M] [epoch=E] [version=V]
 *   list [types=a,b] [states=a,b]       ListGroups v5
 *   dgroups group=G                     DescribeGroups v5
 *   delete group=G                      DeleteGroups
 *   odelete group=G topic=T partition=P OffsetDelete
 *   join group=G topic=T n=N [assignor=A]      N members join at once (pipelined), then
 *                                       heartbeat in rounds until the group is Stable
 *   flood name=M group=G topic=T hz=H seconds=S  one member heartbeating at H per second
 *   commits group=G topic=T n=N         N OffsetCommits one after another, latencies
 *   forget name=M                       drop member M's state here
 *
 * hb fields (default: the member's state): id=ID (the member id; v1
 * members make one, as KIP-1082 asks), epoch=E, instance=I, rack=R,
 * rebalance=MS (-1 unless joining), topics=a,b ("none": an empty list;
 * omitted: null), regex=RE, assignor=A, owned=auto|null|none|t:0,1;u:2
 * (auto: what the last answer assigned, [] when joining), version=0|1.
 * After an answer the member keeps its id, epoch and assignment (a fenced
 * or unknown member goes back to epoch 0 with nothing, as a client
 * does).
 *
 * Usage: kip848_client HOST:PORT
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kclient.h"

#define MEMBERS_MAX 4096
#define TOPICS_MAX 1024
#define OWNED_MAX 4096
#define ARGS_MAX 32
#define LINE_MAX_BYTES 65536
#define TIMEOUT_MS 30000

struct tp {
	int32_t topic; /* index in the topic table */
	int32_t partition;
};

struct member {
	char name[64];
	char id[64];
	int32_t epoch;
	struct tp owned[OWNED_MAX / 16];
	int n_owned;
};

struct topic {
	char name[256];
	struct kuuid id;
	int32_t parts;
};

static struct kc_conn conn;
static struct member *members;
static int n_members;
static struct topic topics[TOPICS_MAX];
static int n_topics;

/* ---- small things ---- */

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The output line being built. */
static char out[1 << 22];
static size_t out_len;

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void emit(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + out_len, sizeof(out) - out_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		out_len += (size_t)n < sizeof(out) - out_len ? (size_t)n : sizeof(out) - out_len - 1;
}

static void emit_str(struct kstr s)
{
	if (s.len < 0) {
		emit("null");
		return;
	}
	emit("\"");
	for (int32_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c == '"' || c == '\\')
			emit("\\%c", c);
		else if (c < 0x20)
			emit("\\u%04x", c);
		else
			emit("%c", c);
	}
	emit("\"");
}

static void flush_line(void)
{
	out[out_len] = '\0';
	puts(out);
	fflush(stdout);
	out_len = 0;
}

static void fail(const char *what)
{
	emit("{\"fail\":");
	emit_str(kstr_from(what));
	emit(",\"detail\":");
	emit_str(kstr_from(kc_errbuf));
	emit("}");
	flush_line();
}

/* key=value arguments of one command. */
struct args {
	char *key[ARGS_MAX], *val[ARGS_MAX];
	int n;
};

static const char *arg(const struct args *a, const char *key)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->val[i];
	return NULL;
}

static int64_t arg_int(const struct args *a, const char *key, int64_t def)
{
	const char *v = arg(a, key);
	return v != NULL ? strtoll(v, NULL, 10) : def;
}

/* Split a,b,c in place into kstrs (at most max). */
static int split(char *s, char sep, struct kstr *v, int max)
{
	int n = 0;
	while (s != NULL && *s != '\0' && n < max) {
		char *e = strchr(s, sep);
		if (e != NULL)
			*e = '\0';
		v[n++] = kstr_from(s);
		s = e != NULL ? e + 1 : NULL;
	}
	return n;
}

/* ---- topics ---- */

static int topics_refresh(void)
{
	struct kafka_MetadataRequest req;
	kafka_MetadataRequest_init(&req);
	req.Topics_count = -1;
	req.AllowAutoTopicCreation = false;
	struct kafka_MetadataResponse resp;
	if (KC_CALL(&conn, KAFKA_API_Metadata, 12, Metadata, &req, &resp) != 0)
		return -1;
	n_topics = 0;
	for (int i = 0; i < resp.Topics_count && n_topics < TOPICS_MAX; i++) {
		struct topic *t = &topics[n_topics++];
		kc_cstr(resp.Topics[i].Name, t->name, sizeof(t->name));
		t->id = resp.Topics[i].TopicId;
		t->parts = resp.Topics[i].Partitions_count;
	}
	return 0;
}

static int topic_by_id(struct kuuid id)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n_topics; i++)
			if (memcmp(topics[i].id.b, id.b, 16) == 0)
				return i;
		if (pass == 0 && topics_refresh() != 0)
			return -1;
	}
	return -1;
}

static int topic_by_name(const char *name)
{
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n_topics; i++)
			if (strcmp(topics[i].name, name) == 0)
				return i;
		if (pass == 0 && topics_refresh() != 0)
			return -1;
	}
	return -1;
}

/* ---- members ---- */

static struct member *member_get(const char *name)
{
	for (int i = 0; i < n_members; i++)
		if (strcmp(members[i].name, name) == 0)
			return &members[i];
	if (n_members == MEMBERS_MAX)
		return NULL;
	struct member *m = &members[n_members++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	return m;
}

/* A client-made member id (KIP-1082): a random UUID in Kafka's form. */
static void member_id_make(char *buf)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t u[18] = { 0 };
	if (getrandom(u, 16, 0) != 16)
		abort();
	int k = 0;
	for (int i = 0; i < 18; i += 3) {
		uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];
		for (int j = 0; j < 4 && k < 22; j++)
			buf[k++] = b64[(v >> (18 - 6 * j)) & 63];
	}
	buf[22] = '\0';
}

static void emit_tps(const struct tp *v, int n)
{
	emit("[");
	for (int i = 0; i < n; i++) {
		emit("%s[", i ? "," : "");
		emit_str(kstr_from(topics[v[i].topic].name));
		emit(",%d]", v[i].partition);
	}
	emit("]");
}

/* Parse owned=t:0,1;u:2 into v. */
static int parse_owned(char *s, struct tp *v, int max)
{
	int n = 0;
	struct kstr per[64];
	int nt = split(s, ';', per, 64);
	for (int i = 0; i < nt; i++) {
		char *colon = strchr(per[i].ptr, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		int t = topic_by_name(per[i].ptr);
		struct kstr parts[1024];
		int np = split(colon + 1, ',', parts, 1024);
		for (int j = 0; j < np && n < max && t >= 0; j++)
			v[n++] = (struct tp){ t, (int32_t)strtol(parts[j].ptr, NULL, 10) };
	}
	return n;
}

/* The request's TopicPartitions from v[0..n) (grouped by topic). */
static int fill_owned(struct kafka_ConsumerGroupHeartbeatRequest *req, const struct tp *v, int n,
		      struct kafka_ConsumerGroupHeartbeatRequest_TopicPartitions *tps, int32_t *parts)
{
	int nt = 0, k = 0;
	for (int t = 0; t < n_topics; t++) {
		int start = k;
		for (int i = 0; i < n; i++)
			if (v[i].topic == t)
				parts[k++] = v[i].partition;
		if (k == start)
			continue;
		kafka_ConsumerGroupHeartbeatRequest_TopicPartitions_init(&tps[nt]);
		tps[nt].TopicId = topics[t].id;
		tps[nt].Partitions = &parts[start];
		tps[nt].Partitions_count = k - start;
		nt++;
	}
	req->TopicPartitions = tps;
	req->TopicPartitions_count = nt;
	return nt;
}

/* A heartbeat answer copied out of the connection's arena (looking up a
 * topic name may send a Metadata request, which reuses that arena). */
struct hb_answer {
	int16_t error;
	bool message_null, member_id_null, has_assignment;
	char message[512], member_id[64];
	int32_t epoch, interval;
	int n;
	struct kuuid ids[OWNED_MAX];
	int32_t parts[OWNED_MAX];
};

static void answer_copy(struct hb_answer *x, const struct kafka_ConsumerGroupHeartbeatResponse *r)
{
	x->error = r->ErrorCode;
	x->message_null = r->ErrorMessage.len < 0;
	kc_cstr(r->ErrorMessage, x->message, sizeof(x->message));
	x->member_id_null = r->MemberId.len < 0;
	kc_cstr(r->MemberId, x->member_id, sizeof(x->member_id));
	x->epoch = r->MemberEpoch;
	x->interval = r->HeartbeatIntervalMs;
	x->has_assignment = r->Assignment_present;
	x->n = 0;
	for (int i = 0; i < r->Assignment.TopicPartitions_count; i++) {
		const struct kafka_ConsumerGroupHeartbeatResponse_TopicPartitions *t =
			&r->Assignment.TopicPartitions[i];
		for (int j = 0; j < t->Partitions_count && x->n < OWNED_MAX; j++) {
			x->ids[x->n] = t->TopicId;
			x->parts[x->n++] = t->Partitions[j];
		}
	}
}

/* The answer's assignment by topic index. */
static int answer_tps(const struct hb_answer *x, struct tp *v, int max)
{
	int n = 0;
	for (int i = 0; i < x->n && n < max; i++) {
		int ti = topic_by_id(x->ids[i]);
		if (ti >= 0)
			v[n++] = (struct tp){ ti, x->parts[i] };
	}
	return n;
}

/* What a client does with an answer. */
static void member_update(struct member *m, const struct hb_answer *x)
{
	if (x->error == KAFKA_FENCED_MEMBER_EPOCH || x->error == KAFKA_UNKNOWN_MEMBER_ID) {
		m->epoch = 0;
		m->n_owned = 0;
		return;
	}
	if (x->error != KAFKA_NONE)
		return;
	if (!x->member_id_null && x->member_id[0] != '\0')
		snprintf(m->id, sizeof(m->id), "%s", x->member_id);
	m->epoch = x->epoch;
	if (x->epoch < 0)
		m->n_owned = 0; /* left */
	else if (x->has_assignment)
		m->n_owned = answer_tps(x, m->owned, (int)(sizeof(m->owned) / sizeof(m->owned[0])));
}

static void emit_hb_answer(const struct member *m, const struct hb_answer *x)
{
	emit("{\"error\":%d,\"message\":", x->error);
	emit_str(x->message_null ? KSTR_NULL : kstr_from(x->message));
	emit(",\"member_id\":");
	emit_str(x->member_id_null ? KSTR_NULL : kstr_from(x->member_id));
	emit(",\"epoch\":%d,\"interval\":%d,\"assignment\":", x->epoch, x->interval);
	if (x->has_assignment) {
		static struct tp v[OWNED_MAX];
		emit_tps(v, answer_tps(x, v, OWNED_MAX));
	} else {
		emit("null");
	}
	emit(",\"owned\":");
	emit_tps(m->owned, m->n_owned);
	emit(",\"state_epoch\":%d}", m->epoch);
}

/* Build member m's heartbeat from its state and the arguments. */
static void hb_build(struct kafka_ConsumerGroupHeartbeatRequest *req, struct member *m,
		     const struct args *a, int16_t version, struct kstr *names, int32_t *parts,
		     struct kafka_ConsumerGroupHeartbeatRequest_TopicPartitions *tps, struct tp *own)
{
	kafka_ConsumerGroupHeartbeatRequest_init(req);
	req->GroupId = kstr_from(arg(a, "group") ? arg(a, "group") : "");
	const char *id = arg(a, "id");
	if (id == NULL && m->id[0] == '\0' && version >= 1)
		member_id_make(m->id);
	req->MemberId = kstr_from(id != NULL ? (strcmp(id, "-") == 0 ? "" : id) : m->id);
	req->MemberEpoch = (int32_t)arg_int(a, "epoch", m->epoch);
	if (arg(a, "instance"))
		req->InstanceId = kstr_from(arg(a, "instance"));
	if (arg(a, "rack"))
		req->RackId = kstr_from(arg(a, "rack"));
	req->RebalanceTimeoutMs = (int32_t)arg_int(a, "rebalance", req->MemberEpoch == 0 ? 30000 : -1);
	if (arg(a, "topics")) {
		/* names point into this copy until the request is encoded */
		static char tbuf[LINE_MAX_BYTES];
		snprintf(tbuf, sizeof(tbuf), "%s", arg(a, "topics"));
		req->SubscribedTopicNames = names;
		req->SubscribedTopicNames_count = strcmp(tbuf, "none") == 0 ? 0
								 : split(tbuf, ',', names, 256);
	}
	if (arg(a, "regex"))
		req->SubscribedTopicRegex = kstr_from(arg(a, "regex"));
	if (arg(a, "assignor"))
		req->ServerAssignor = kstr_from(arg(a, "assignor"));
	const char *owned = arg(a, "owned") ? arg(a, "owned") : "auto";
	if (strcmp(owned, "null") == 0) {
		req->TopicPartitions_count = -1;
	} else if (strcmp(owned, "none") == 0 || (strcmp(owned, "auto") == 0 && req->MemberEpoch <= 0)) {
		req->TopicPartitions = tps;
		req->TopicPartitions_count = 0;
	} else if (strcmp(owned, "auto") == 0) {
		fill_owned(req, m->owned, m->n_owned, tps, parts);
	} else {
		static char obuf[LINE_MAX_BYTES];
		snprintf(obuf, sizeof(obuf), "%s", owned);
		int n = parse_owned(obuf, own, OWNED_MAX);
		fill_owned(req, own, n, tps, parts);
	}
}

static void cmd_hb(const struct args *a)
{
	struct member *m = member_get(arg(a, "name") ? arg(a, "name") : "m");
	int16_t version = (int16_t)arg_int(a, "version", 1);
	static struct kstr names[256];
	static int32_t parts[OWNED_MAX];
	static struct kafka_ConsumerGroupHeartbeatRequest_TopicPartitions tps[TOPICS_MAX];
	static struct tp own[OWNED_MAX];
	struct kafka_ConsumerGroupHeartbeatRequest req;
	hb_build(&req, m, a, version, names, parts, tps, own);
	struct kafka_ConsumerGroupHeartbeatResponse resp;
	if (KC_CALL(&conn, KAFKA_API_ConsumerGroupHeartbeat, version, ConsumerGroupHeartbeat, &req,
		    &resp) != 0) {
		fail("ConsumerGroupHeartbeat");
		return;
	}
	static struct hb_answer x;
	answer_copy(&x, &resp);
	member_update(m, &x);
	emit_hb_answer(m, &x);
	flush_line();
}

/* ---- ConsumerGroupDescribe ---- */

static void emit_assignment(const struct kafka_ConsumerGroupDescribeResponse_Assignment *a)
{
	emit("[");
	int k = 0;
	for (int i = 0; i < a->TopicPartitions_count; i++)
		for (int j = 0; j < a->TopicPartitions[i].Partitions_count; j++) {
			emit("%s[", k++ ? "," : "");
			emit_str(a->TopicPartitions[i].TopicName);
			emit(",%d]", a->TopicPartitions[i].Partitions[j]);
		}
	emit("]");
}

static int describe(const char *groups_arg, bool print, struct kafka_ConsumerGroupDescribeResponse *resp)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", groups_arg);
	struct kstr ids[64];
	struct kafka_ConsumerGroupDescribeRequest req;
	kafka_ConsumerGroupDescribeRequest_init(&req);
	req.GroupIds = ids;
	req.GroupIds_count = split(buf, ',', ids, 64);
	req.IncludeAuthorizedOperations = true;
	if (KC_CALL(&conn, KAFKA_API_ConsumerGroupDescribe, 0, ConsumerGroupDescribe, &req, resp) != 0)
		return -1;
	if (!print)
		return 0;
	emit("{\"groups\":[");
	for (int i = 0; i < resp->Groups_count; i++) {
		const struct kafka_ConsumerGroupDescribeResponse_DescribedGroup *g = &resp->Groups[i];
		emit("%s{\"error\":%d,\"message\":", i ? "," : "", g->ErrorCode);
		emit_str(g->ErrorMessage);
		emit(",\"group\":");
		emit_str(g->GroupId);
		emit(",\"state\":");
		emit_str(g->GroupState);
		emit(",\"epoch\":%d,\"assignment_epoch\":%d,\"assignor\":", g->GroupEpoch,
		     g->AssignmentEpoch);
		emit_str(g->AssignorName);
		emit(",\"operations\":%d,\"members\":[", g->AuthorizedOperations);
		for (int j = 0; j < g->Members_count; j++) {
			const struct kafka_ConsumerGroupDescribeResponse_Member *m = &g->Members[j];
			emit("%s{\"member_id\":", j ? "," : "");
			emit_str(m->MemberId);
			emit(",\"instance\":");
			emit_str(m->InstanceId);
			emit(",\"rack\":");
			emit_str(m->RackId);
			emit(",\"epoch\":%d,\"client_id\":", m->MemberEpoch);
			emit_str(m->ClientId);
			emit(",\"client_host\":");
			emit_str(m->ClientHost);
			emit(",\"topics\":[");
			for (int k = 0; k < m->SubscribedTopicNames_count; k++) {
				emit(k ? "," : "");
				emit_str(m->SubscribedTopicNames[k]);
			}
			emit("],\"regex\":");
			emit_str(m->SubscribedTopicRegex);
			emit(",\"assignment\":");
			emit_assignment(&m->Assignment);
			emit(",\"target\":");
			emit_assignment(&m->TargetAssignment);
			emit("}");
		}
		emit("]}");
	}
	emit("]}");
	flush_line();
	return 0;
}

static void cmd_describe(const struct args *a)
{
	struct kafka_ConsumerGroupDescribeResponse resp;
	if (describe(arg(a, "group") ? arg(a, "group") : "", true, &resp) != 0)
		fail("ConsumerGroupDescribe");
}

/* ---- offsets ---- */

static int commit_one(const char *group, const char *member_id, int32_t epoch, const char *topic,
		      int32_t partition, int64_t offset, int16_t version, int16_t *err)
{
	struct kafka_OffsetCommitRequest req;
	kafka_OffsetCommitRequest_init(&req);
	struct kafka_OffsetCommitRequest_OffsetCommitRequestTopic t;
	kafka_OffsetCommitRequest_OffsetCommitRequestTopic_init(&t);
	struct kafka_OffsetCommitRequest_OffsetCommitRequestPartition p;
	kafka_OffsetCommitRequest_OffsetCommitRequestPartition_init(&p);
	p.PartitionIndex = partition;
	p.CommittedOffset = offset;
	p.CommittedMetadata = KSTR("");
	t.Name = kstr_from(topic);
	t.Partitions = &p;
	t.Partitions_count = 1;
	req.GroupId = kstr_from(group);
	req.GenerationIdOrMemberEpoch = epoch;
	req.MemberId = kstr_from(member_id);
	req.Topics = &t;
	req.Topics_count = 1;
	struct kafka_OffsetCommitResponse resp;
	if (KC_CALL(&conn, KAFKA_API_OffsetCommit, version, OffsetCommit, &req, &resp) != 0)
		return -1;
	*err = resp.Topics_count > 0 && resp.Topics[0].Partitions_count > 0
		       ? resp.Topics[0].Partitions[0].ErrorCode : -1;
	return 0;
}

static void cmd_commit(const struct args *a)
{
	const char *name = arg(a, "name");
	struct member *m = name != NULL ? member_get(name) : NULL;
	const char *id = arg(a, "id") ? arg(a, "id") : (m != NULL ? m->id : "");
	int32_t epoch = (int32_t)arg_int(a, "epoch", m != NULL ? m->epoch : -1);
	int16_t err;
	if (commit_one(arg(a, "group"), id, epoch, arg(a, "topic"),
		       (int32_t)arg_int(a, "partition", 0), arg_int(a, "offset", 0),
		       (int16_t)arg_int(a, "version", 9), &err) != 0) {
		fail("OffsetCommit");
		return;
	}
	emit("{\"error\":%d}", err);
	flush_line();
}

static void cmd_fetch(const struct args *a)
{
	const char *name = arg(a, "name");
	struct member *m = name != NULL ? member_get(name) : NULL;
	int16_t version = (int16_t)arg_int(a, "version", 9);
	struct kafka_OffsetFetchRequest req;
	kafka_OffsetFetchRequest_init(&req);
	struct kafka_OffsetFetchRequest_OffsetFetchRequestGroup g;
	kafka_OffsetFetchRequest_OffsetFetchRequestGroup_init(&g);
	struct kafka_OffsetFetchRequest_OffsetFetchRequestTopics t;
	kafka_OffsetFetchRequest_OffsetFetchRequestTopics_init(&t);
	int32_t part = (int32_t)arg_int(a, "partition", 0);
	t.Name = kstr_from(arg(a, "topic"));
	t.PartitionIndexes = &part;
	t.PartitionIndexes_count = 1;
	g.GroupId = kstr_from(arg(a, "group"));
	g.MemberId = m != NULL ? kstr_from(m->id) : KSTR_NULL;
	g.MemberEpoch = (int32_t)arg_int(a, "epoch", m != NULL ? m->epoch : -1);
	g.Topics = &t;
	g.Topics_count = 1;
	req.Groups = &g;
	req.Groups_count = 1;
	struct kafka_OffsetFetchResponse resp;
	if (KC_CALL(&conn, KAFKA_API_OffsetFetch, version, OffsetFetch, &req, &resp) != 0 ||
	    resp.Groups_count != 1) {
		fail("OffsetFetch");
		return;
	}
	const struct kafka_OffsetFetchResponse_OffsetFetchResponseGroup *rg = &resp.Groups[0];
	int64_t off = -1;
	int16_t perr = 0;
	if (rg->Topics_count > 0 && rg->Topics[0].Partitions_count > 0) {
		off = rg->Topics[0].Partitions[0].CommittedOffset;
		perr = rg->Topics[0].Partitions[0].ErrorCode;
	}
	emit("{\"error\":%d,\"partition_error\":%d,\"offset\":%lld}", rg->ErrorCode, perr,
	     (long long)off);
	flush_line();
}

/* ---- the classic admin APIs on consumer groups ---- */

static void cmd_list(const struct args *a)
{
	char tbuf[256] = "", sbuf[256] = "";
	struct kstr types[8], states[8];
	struct kafka_ListGroupsRequest req;
	kafka_ListGroupsRequest_init(&req);
	if (arg(a, "types")) {
		snprintf(tbuf, sizeof(tbuf), "%s", arg(a, "types"));
		req.TypesFilter = types;
		req.TypesFilter_count = split(tbuf, ',', types, 8);
	}
	if (arg(a, "states")) {
		snprintf(sbuf, sizeof(sbuf), "%s", arg(a, "states"));
		req.StatesFilter = states;
		req.StatesFilter_count = split(sbuf, ',', states, 8);
	}
	struct kafka_ListGroupsResponse resp;
	if (KC_CALL(&conn, KAFKA_API_ListGroups, 5, ListGroups, &req, &resp) != 0) {
		fail("ListGroups");
		return;
	}
	emit("{\"error\":%d,\"groups\":[", resp.ErrorCode);
	for (int i = 0; i < resp.Groups_count; i++) {
		emit("%s{\"group\":", i ? "," : "");
		emit_str(resp.Groups[i].GroupId);
		emit(",\"protocol_type\":");
		emit_str(resp.Groups[i].ProtocolType);
		emit(",\"state\":");
		emit_str(resp.Groups[i].GroupState);
		emit(",\"type\":");
		emit_str(resp.Groups[i].GroupType);
		emit("}");
	}
	emit("]}");
	flush_line();
}

static void cmd_dgroups(const struct args *a)
{
	struct kstr id = kstr_from(arg(a, "group"));
	struct kafka_DescribeGroupsRequest req;
	kafka_DescribeGroupsRequest_init(&req);
	req.Groups = &id;
	req.Groups_count = 1;
	struct kafka_DescribeGroupsResponse resp;
	if (KC_CALL(&conn, KAFKA_API_DescribeGroups, 5, DescribeGroups, &req, &resp) != 0 ||
	    resp.Groups_count != 1) {
		fail("DescribeGroups");
		return;
	}
	emit("{\"error\":%d,\"state\":", resp.Groups[0].ErrorCode);
	emit_str(resp.Groups[0].GroupState);
	emit(",\"protocol_type\":");
	emit_str(resp.Groups[0].ProtocolType);
	emit(",\"members\":%d}", resp.Groups[0].Members_count);
	flush_line();
}

static void cmd_delete(const struct args *a)
{
	struct kstr id = kstr_from(arg(a, "group"));
	struct kafka_DeleteGroupsRequest req;
	kafka_DeleteGroupsRequest_init(&req);
	req.GroupsNames = &id;
	req.GroupsNames_count = 1;
	struct kafka_DeleteGroupsResponse resp;
	if (KC_CALL(&conn, KAFKA_API_DeleteGroups, 2, DeleteGroups, &req, &resp) != 0 ||
	    resp.Results_count != 1) {
		fail("DeleteGroups");
		return;
	}
	emit("{\"error\":%d}", resp.Results[0].ErrorCode);
	flush_line();
}

static void cmd_odelete(const struct args *a)
{
	struct kafka_OffsetDeleteRequest req;
	kafka_OffsetDeleteRequest_init(&req);
	struct kafka_OffsetDeleteRequest_OffsetDeleteRequestTopic t;
	kafka_OffsetDeleteRequest_OffsetDeleteRequestTopic_init(&t);
	struct kafka_OffsetDeleteRequest_OffsetDeleteRequestPartition p;
	kafka_OffsetDeleteRequest_OffsetDeleteRequestPartition_init(&p);
	p.PartitionIndex = (int32_t)arg_int(a, "partition", 0);
	t.Name = kstr_from(arg(a, "topic"));
	t.Partitions = &p;
	t.Partitions_count = 1;
	req.GroupId = kstr_from(arg(a, "group"));
	req.Topics = &t;
	req.Topics_count = 1;
	struct kafka_OffsetDeleteResponse resp;
	if (KC_CALL(&conn, KAFKA_API_OffsetDelete, 0, OffsetDelete, &req, &resp) != 0) {
		fail("OffsetDelete");
		return;
	}
	int16_t perr = resp.Topics_count > 0 && resp.Topics[0].Partitions_count > 0
			       ? resp.Topics[0].Partitions[0].ErrorCode : -1;
	emit("{\"error\":%d,\"partition_error\":%d}", resp.ErrorCode, perr);
	flush_line();
}

/* ---- pipelining: many heartbeats on one connection ---- */

static int send_all(const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(conn.fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(uint8_t *p, size_t n)
{
	while (n > 0) {
		struct pollfd pfd = { .fd = conn.fd, .events = POLLIN };
		if (poll(&pfd, 1, TIMEOUT_MS) <= 0)
			return -1;
		ssize_t r = recv(conn.fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Send heartbeats for ms[0..n) all at once, then read the n answers in
 * order into each member's state. Returns how many answered without
 * error, or -1. */
static int hb_pipeline(struct member **ms, int n, const struct args *a, int16_t version,
		       int *errors_out)
{
	struct kwriter w;
	kw_init(&w, 1 << 16, 0);
	static struct kstr names[256];
	static int32_t parts[OWNED_MAX];
	static struct kafka_ConsumerGroupHeartbeatRequest_TopicPartitions tps[TOPICS_MAX];
	static struct tp own[OWNED_MAX];
	int32_t first = conn.corr + 1;
	for (int i = 0; i < n; i++) {
		struct kafka_ConsumerGroupHeartbeatRequest req;
		hb_build(&req, ms[i], a, version, names, parts, tps, own);
		size_t size_pos = kw_reserve(&w, 4);
		size_t start = w.len;
		struct kafka_RequestHeader h;
		kafka_RequestHeader_init(&h);
		h.RequestApiKey = KAFKA_API_ConsumerGroupHeartbeat;
		h.RequestApiVersion = version;
		h.CorrelationId = ++conn.corr;
		h.ClientId = KSTR("kip848_client");
		kafka_RequestHeader_encode(&w, kafka_request_header_version(h.RequestApiKey, version),
					   &h);
		kafka_ConsumerGroupHeartbeatRequest_encode(&w, version, &req);
		kw_patch_int32(&w, size_pos, (int32_t)(w.len - start));
	}
	int rc = w.err ? -1 : send_all(w.buf, w.len);
	kw_free(&w);
	if (rc != 0)
		return -1;
	int ok = 0;
	uint8_t *buf = malloc(1 << 20);
	struct karena arena;
	karena_init(&arena, 1 << 16, 0);
	for (int i = 0; i < n && rc == 0; i++) {
		uint8_t szb[4];
		if (recv_all(szb, 4) != 0) {
			rc = -1;
			break;
		}
		uint32_t size = (uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | szb[3];
		if (size > (1 << 20) || recv_all(buf, size) != 0) {
			rc = -1;
			break;
		}
		karena_reset(&arena);
		struct kreader r;
		kr_init(&r, buf, size, &arena);
		struct kafka_ResponseHeader rh;
		kafka_ResponseHeader_decode(&r, kafka_response_header_version(
							KAFKA_API_ConsumerGroupHeartbeat, version), &rh);
		struct kafka_ConsumerGroupHeartbeatResponse resp;
		kafka_ConsumerGroupHeartbeatResponse_decode(&r, version, &resp);
		if (r.err || rh.CorrelationId != first + i) {
			rc = -1;
			break;
		}
		static struct hb_answer x;
		answer_copy(&x, &resp);
		member_update(ms[i], &x);
		if (resp.ErrorCode == KAFKA_NONE)
			ok++;
		else
			(*errors_out)++;
	}
	karena_free(&arena);
	free(buf);
	return rc != 0 ? -1 : ok;
}

/* Every partition of topic assigned exactly once over the described
 * members, each at the group's assignment epoch and the group Stable. */
static bool group_settled(const char *group, int topic_parts, int *assigned_out)
{
	struct kafka_ConsumerGroupDescribeResponse resp;
	if (describe(group, false, &resp) != 0 || resp.Groups_count != 1)
		return false;
	const struct kafka_ConsumerGroupDescribeResponse_DescribedGroup *g = &resp.Groups[0];
	int count[OWNED_MAX] = { 0 }, assigned = 0;
	bool ok = kstr_eq(g->GroupState, KSTR("Stable"));
	for (int j = 0; j < g->Members_count; j++) {
		ok &= g->Members[j].MemberEpoch == g->AssignmentEpoch;
		const struct kafka_ConsumerGroupDescribeResponse_Assignment *as = &g->Members[j].Assignment;
		for (int i = 0; i < as->TopicPartitions_count; i++)
			for (int k = 0; k < as->TopicPartitions[i].Partitions_count; k++) {
				int32_t p = as->TopicPartitions[i].Partitions[k];
				if (p >= 0 && p < OWNED_MAX)
					count[p]++;
				assigned++;
			}
	}
	for (int p = 0; p < topic_parts && p < OWNED_MAX; p++)
		ok &= count[p] == 1;
	*assigned_out = assigned;
	return ok;
}

static void cmd_join(const struct args *a)
{
	const char *group = arg(a, "group"), *topic = arg(a, "topic");
	int n = (int)arg_int(a, "n", 10);
	int t = topic != NULL ? topic_by_name(topic) : -1;
	if (group == NULL || t < 0 || n <= 0 || n_members + n > MEMBERS_MAX) {
		fail("join: group=, topic= (existing) and n= are needed");
		return;
	}
	struct member **ms = malloc(sizeof(*ms) * (size_t)n);
	for (int i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s-%d", group, i);
		ms[i] = member_get(name);
	}
	/* The join: topics and assignor given; later rounds say nothing but
	 * what they own (owned=auto). */
	struct args ja = *a, ra = *a;
	ja.key[ja.n] = "topics";
	ja.val[ja.n++] = (char *)topic;
	int errors = 0, rounds = 0, assigned = 0;
	int64_t t0 = now_us();
	int joined = hb_pipeline(ms, n, &ja, 1, &errors);
	int64_t t_join = now_us();
	bool settled = false;
	while (joined >= 0 && !settled && rounds < 50) {
		rounds++;
		if (hb_pipeline(ms, n, &ra, 1, &errors) < 0)
			break;
		settled = group_settled(group, topics[t].parts, &assigned);
	}
	int64_t t_end = now_us();
	emit("{\"members\":%d,\"joined\":%d,\"errors\":%d,\"rounds\":%d,\"settled\":%s,"
	     "\"assigned\":%d,\"join_ms\":%.1f,\"total_ms\":%.1f}", n, joined, errors, rounds,
	     settled ? "true" : "false", assigned, (double)(t_join - t0) / 1000.0,
	     (double)(t_end - t0) / 1000.0);
	flush_line();
	free(ms);
}

/* ---- load ---- */

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

static void cmd_flood(const struct args *a)
{
	struct member *m = member_get(arg(a, "name") ? arg(a, "name") : "flood");
	int hz = (int)arg_int(a, "hz", 1000);
	int64_t seconds = arg_int(a, "seconds", 5);
	struct args ja = *a;
	ja.key[ja.n] = "topics";
	ja.val[ja.n++] = (char *)(arg(a, "topic") ? arg(a, "topic") : "none");
	static struct kstr names[256];
	static int32_t parts[OWNED_MAX];
	static struct kafka_ConsumerGroupHeartbeatRequest_TopicPartitions tps[TOPICS_MAX];
	static struct tp own[OWNED_MAX];
	struct kafka_ConsumerGroupHeartbeatRequest req;
	struct kafka_ConsumerGroupHeartbeatResponse resp;
	hb_build(&req, m, &ja, 1, names, parts, tps, own);
	if (KC_CALL(&conn, KAFKA_API_ConsumerGroupHeartbeat, 1, ConsumerGroupHeartbeat, &req,
		    &resp) != 0) {
		fail("flood: join");
		return;
	}
	static struct hb_answer x;
	answer_copy(&x, &resp);
	member_update(m, &x);
	struct args ha = { .n = 0 };
	ha.key[ha.n] = "group";
	ha.val[ha.n++] = (char *)arg(a, "group");
	ha.key[ha.n] = "owned";
	ha.val[ha.n++] = "null";
	int64_t period = 1000000 / (hz > 0 ? hz : 1), start = now_us(), next = start;
	int64_t sent = 0, errors = 0, worst = 0;
	while (now_us() - start < seconds * 1000000) {
		hb_build(&req, m, &ha, 1, names, parts, tps, own);
		int64_t t = now_us();
		if (KC_CALL(&conn, KAFKA_API_ConsumerGroupHeartbeat, 1, ConsumerGroupHeartbeat, &req,
			    &resp) != 0) {
			fail("flood: heartbeat");
			return;
		}
		int64_t d = now_us() - t;
		worst = d > worst ? d : worst;
		sent++;
		if (resp.ErrorCode != KAFKA_NONE)
			errors++;
		answer_copy(&x, &resp);
		member_update(m, &x);
		next += period;
		int64_t wait = next - now_us();
		if (wait > 0) {
			struct timespec ts = { wait / 1000000, (wait % 1000000) * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	double secs = (double)(now_us() - start) / 1e6;
	emit("{\"heartbeats\":%lld,\"errors\":%lld,\"rate\":%.1f,\"max_us\":%lld}", (long long)sent,
	     (long long)errors, (double)sent / secs, (long long)worst);
	flush_line();
}

static void cmd_commits(const struct args *a)
{
	const char *group = arg(a, "group"), *topic = arg(a, "topic");
	int n = (int)arg_int(a, "n", 200);
	int64_t *lat = malloc(sizeof(*lat) * (size_t)(n > 0 ? n : 1));
	int errors = 0;
	for (int i = 0; i < n; i++) {
		int16_t err;
		int64_t t = now_us();
		if (commit_one(group, "", -1, topic, 0, i, 9, &err) != 0) {
			free(lat);
			fail("commits");
			return;
		}
		lat[i] = now_us() - t;
		errors += err != 0;
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_i64);
	emit("{\"n\":%d,\"errors\":%d,\"p50_us\":%lld,\"p99_us\":%lld,\"max_us\":%lld}", n, errors,
	     (long long)lat[n / 2], (long long)lat[(n * 99) / 100], (long long)lat[n - 1]);
	flush_line();
	free(lat);
}

/* ---- main ---- */

static void run(char *line)
{
	struct args a = { .n = 0 };
	char *save = NULL, *cmd = strtok_r(line, " \t\r\n", &save);
	if (cmd == NULL)
		return;
	for (char *tok; (tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && a.n < ARGS_MAX - 2;) {
		char *eq = strchr(tok, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		a.key[a.n] = tok;
		a.val[a.n++] = eq + 1;
	}
	if (strcmp(cmd, "topics") == 0) {
		if (topics_refresh() != 0) {
			fail("Metadata");
			return;
		}
		emit("{\"topics\":%d}", n_topics);
		flush_line();
	} else if (strcmp(cmd, "hb") == 0) {
		cmd_hb(&a);
	} else if (strcmp(cmd, "describe") == 0) {
		cmd_describe(&a);
	} else if (strcmp(cmd, "commit") == 0) {
		cmd_commit(&a);
	} else if (strcmp(cmd, "fetch") == 0) {
		cmd_fetch(&a);
	} else if (strcmp(cmd, "list") == 0) {
		cmd_list(&a);
	} else if (strcmp(cmd, "dgroups") == 0) {
		cmd_dgroups(&a);
	} else if (strcmp(cmd, "delete") == 0) {
		cmd_delete(&a);
	} else if (strcmp(cmd, "odelete") == 0) {
		cmd_odelete(&a);
	} else if (strcmp(cmd, "join") == 0) {
		cmd_join(&a);
	} else if (strcmp(cmd, "flood") == 0) {
		cmd_flood(&a);
	} else if (strcmp(cmd, "commits") == 0) {
		cmd_commits(&a);
	} else if (strcmp(cmd, "forget") == 0) {
		struct member *m = member_get(arg(&a, "name") ? arg(&a, "name") : "");
		if (m != NULL)
			memset(m->id, 0, sizeof(m->id)), m->epoch = 0, m->n_owned = 0;
		emit("{}");
		flush_line();
	} else {
		kc_errbuf[0] = '\0';
		fail("unknown command");
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
		return 2;
	}
	members = calloc(MEMBERS_MAX, sizeof(*members));
	if (members == NULL || kc_connect_addr(&conn, argv[1], TIMEOUT_MS) != 0) {
		fprintf(stderr, "kip848_client: %s\n", kc_errbuf);
		return 1;
	}
	static char line[LINE_MAX_BYTES];
	while (fgets(line, sizeof(line), stdin) != NULL)
		run(line);
	kc_close(&conn);
	free(members);
	return 0;
}

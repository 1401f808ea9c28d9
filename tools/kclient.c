/*
 * kclient: blocking Kafka-protocol requests for the admin tools. See
 * kclient.h.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kclient.h"

char kc_errbuf[512];

/* The arena a response decodes into: chunks of this, up to the response cap. */
#define KC_ARENA_CHUNK_BYTES (64 * 1024)
/* ApiVersions is asked at v3 (flexible, client name) and retried at v0 when
 * the broker is older (it answers UNSUPPORTED_VERSION at v0). */
#define KC_APIVERSIONS_VERSION 3

static int kc_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int kc_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(kc_errbuf, sizeof(kc_errbuf), fmt, ap);
	va_end(ap);
	return -1;
}

const char *kc_err_str(int16_t code)
{
	static char buf[96];
	const char *name = kafka_error_name(code);
	snprintf(buf, sizeof(buf), "%s (%d)", name != NULL ? name : "UNKNOWN", code);
	return buf;
}

const char *kc_cstr(struct kstr s, char *buf, size_t cap)
{
	size_t n = s.len > 0 ? (size_t)s.len : 0;
	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(buf, s.ptr, n);
	buf[n] = '\0';
	return buf;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes. */
static int kc_wait(struct kc_conn *c, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return kc_fail("%s: timed out after %d ms", c->addr, c->timeout_ms);
		struct pollfd p = { .fd = c->fd, .events = events };
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return kc_fail("%s: poll: %s", c->addr, strerror(errno));
	}
}

static int kc_send_all(struct kc_conn *c, const struct iovec *iov_in, int n, int64_t deadline)
{
	struct iovec iov[64];
	if (n > 64)
		return kc_fail("%s: request too fragmented", c->addr);
	memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)n);
	int i = 0;
	while (i < n) {
		struct msghdr m = { .msg_iov = iov + i, .msg_iovlen = (size_t)(n - i) };
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && kc_wait(c, POLLOUT, deadline) == 0)
				continue;
			return errno == EAGAIN ? -1 : kc_fail("%s: send: %s", c->addr, strerror(errno));
		}
		while (i < n && (size_t)w >= iov[i].iov_len)
			w -= (ssize_t)iov[i++].iov_len;
		if (i < n) {
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int kc_recv_all(struct kc_conn *c, uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t r = recv(c->fd, p, n, MSG_DONTWAIT);
		if (r == 0)
			return kc_fail("%s: the broker closed the connection", c->addr);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && kc_wait(c, POLLIN, deadline) == 0)
				continue;
			return errno == EAGAIN ? -1 : kc_fail("%s: recv: %s", c->addr, strerror(errno));
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int kc_call(struct kc_conn *c, int16_t api_key, int16_t version, kc_encode_fn enc,
	    const void *req, kc_decode_fn dec, void *resp)
{
	const struct kafka_api_info *info = kafka_api_info_get(api_key);
	const char *api = info != NULL ? info->name : "?";
	if (c->fd < 0)
		return kc_fail("%s: not connected", c->addr);
	int64_t deadline = mono_ms() + c->timeout_ms;

	struct kwriter w;
	kw_init(&w, 256, 0);
	size_t size_pos = kw_reserve(&w, 4);
	struct kafka_RequestHeader h;
	kafka_RequestHeader_init(&h);
	h.RequestApiKey = api_key;
	h.RequestApiVersion = version;
	h.CorrelationId = ++c->corr;
	h.ClientId = KSTR("sluicectl");
	kafka_RequestHeader_encode(&w, kafka_request_header_version(api_key, version), &h);
	enc(&w, version, req);
	if (w.err) {
		kw_free(&w);
		return kc_fail("%s: encoding %s v%d: %s", c->addr, api, version, kwire_err_name(w.err));
	}
	kw_patch_int32(&w, size_pos, (int32_t)(kw_total_len(&w) - 4));
	struct iovec iov[64];
	int n = kw_iovecs(&w, iov, 64);
	int rc = n < 0 ? kc_fail("%s: request too fragmented", c->addr)
		       : kc_send_all(c, iov, n, deadline);
	kw_free(&w);
	if (rc != 0)
		return -1;

	uint8_t szb[4];
	if (kc_recv_all(c, szb, 4, deadline) != 0)
		return -1;
	uint32_t size = (uint32_t)szb[0] << 24 | (uint32_t)szb[1] << 16 | (uint32_t)szb[2] << 8 | szb[3];
	if (size < 4 || size > KC_RESPONSE_MAX_BYTES)
		return kc_fail("%s: %s response of %u bytes", c->addr, api, size);
	if (size > c->rcap) {
		uint8_t *nb = realloc(c->rbuf, size);
		if (nb == NULL)
			return kc_fail("%s: no memory for a %u-byte response", c->addr, size);
		c->rbuf = nb;
		c->rcap = size;
	}
	if (kc_recv_all(c, c->rbuf, size, deadline) != 0)
		return -1;

	karena_reset(&c->arena);
	struct kreader r;
	kr_init(&r, c->rbuf, size, &c->arena);
	struct kafka_ResponseHeader rh;
	kafka_ResponseHeader_init(&rh);
	kafka_ResponseHeader_decode(&r, kafka_response_header_version(api_key, version), &rh);
	if (!r.err && rh.CorrelationId != c->corr)
		return kc_fail("%s: %s response has correlation id %d, expected %d", c->addr, api,
			       rh.CorrelationId, c->corr);
	dec(&r, version, resp);
	if (r.err)
		return kc_fail("%s: decoding the %s v%d response: %s", c->addr, api, version,
			       kwire_err_name(r.err));
	return 0;
}

static int kc_api_versions(struct kc_conn *c)
{
	for (int i = 0; i < KC_API_KEYS; i++)
		c->api_max[i] = -1;
	struct kafka_ApiVersionsRequest req;
	kafka_ApiVersionsRequest_init(&req);
	req.ClientSoftwareName = KSTR("sluicectl");
	req.ClientSoftwareVersion = KSTR("1");
	struct kafka_ApiVersionsResponse resp;
	int16_t v = KC_APIVERSIONS_VERSION;
	for (;;) {
		kafka_ApiVersionsResponse_init(&resp);
		if (KC_CALL(c, KAFKA_API_ApiVersions, v, ApiVersions, &req, &resp) != 0)
			return -1;
		if (resp.ErrorCode == KAFKA_UNSUPPORTED_VERSION && v > 0) {
			v = 0; /* an older broker: it listed its versions anyway */
			continue;
		}
		break;
	}
	if (resp.ErrorCode != 0)
		return kc_fail("%s: ApiVersions: %s", c->addr, kc_err_str(resp.ErrorCode));
	for (int i = 0; i < resp.ApiKeys_count; i++) {
		const struct kafka_ApiVersionsResponse_ApiVersion *a = &resp.ApiKeys[i];
		if (a->ApiKey >= 0 && a->ApiKey < KC_API_KEYS)
			c->api_max[a->ApiKey] = a->MaxVersion;
	}
	return 0;
}

int16_t kc_version(struct kc_conn *c, int16_t api_key, int16_t want_max)
{
	const struct kafka_api_info *info = kafka_api_info_get(api_key);
	int16_t v = api_key >= 0 && api_key < KC_API_KEYS ? c->api_max[api_key] : -1;
	if (info == NULL || v < 0) {
		kc_fail("%s: the broker does not support %s", c->addr, info ? info->name : "this API");
		return -1;
	}
	if (v > want_max)
		v = want_max;
	if (v > info->max_version)
		v = info->max_version;
	return v;
}

int kc_connect(struct kc_conn *c, const char *host, int port, int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : KC_TIMEOUT_MS_DEFAULT;
	karena_init(&c->arena, KC_ARENA_CHUNK_BYTES, KC_RESPONSE_MAX_BYTES * 2);
	snprintf(c->addr, sizeof(c->addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);

	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc != 0)
		return kc_fail("%s: %s", c->addr, gai_strerror(rc));
	int64_t deadline = mono_ms() + c->timeout_ms;
	int err = 0;
	for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = errno;
			continue;
		}
		c->fd = fd;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && kc_wait(c, POLLOUT, deadline) == 0)) {
			socklen_t len = sizeof(err);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			if (err == 0)
				break;
		} else {
			err = errno ? errno : ETIMEDOUT;
		}
		close(fd);
		c->fd = -1;
	}
	freeaddrinfo(ai);
	if (c->fd < 0)
		return kc_fail("%s: cannot connect: %s", c->addr, strerror(err ? err : ECONNREFUSED));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (kc_api_versions(c) != 0) {
		kc_close(c);
		return -1;
	}
	return 0;
}

int kc_connect_addr(struct kc_conn *c, const char *hostport, int timeout_ms)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	const char *h = hostport;
	size_t hl = colon != NULL ? (size_t)(colon - hostport) : 0;
	if (hl > 1 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	char *end;
	long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
	if (colon == NULL || hl == 0 || hl >= sizeof(host) || *end != '\0' || port <= 0 ||
	    port > 65535) {
		memset(c, 0, sizeof(*c));
		c->fd = -1;
		return kc_fail("'%s' is not HOST:PORT", hostport);
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	return kc_connect(c, host, (int)port, timeout_ms);
}

void kc_close(struct kc_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	karena_free(&c->arena);
	free(c->rbuf);
	c->rbuf = NULL;
	c->rcap = 0;
}

int kc_metadata(struct kc_conn *c, const struct kstr *topics, int n,
		struct kafka_MetadataResponse *resp)
{
	int16_t v = kc_version(c, KAFKA_API_Metadata, 12);
	if (v < 0)
		return -1;
	struct kafka_MetadataRequest_MetadataRequestTopic *mt = NULL;
	if (n > 0 && (mt = calloc((size_t)n, sizeof(*mt))) == NULL)
		return kc_fail("out of memory");
	for (int i = 0; i < n; i++) {
		kafka_MetadataRequest_MetadataRequestTopic_init(&mt[i]);
		mt[i].Name = topics[i];
	}
	struct kafka_MetadataRequest req;
	kafka_MetadataRequest_init(&req);
	req.AllowAutoTopicCreation = false; /* a tool never creates topics */
	req.Topics = mt;
	req.Topics_count = n; /* 0: an empty list, no topics (not null: all) */
	kafka_MetadataResponse_init(resp);
	int rc = KC_CALL(c, KAFKA_API_Metadata, v, Metadata, &req, resp);
	free(mt);
	return rc;
}

static bool kc_coordinator_retriable(int16_t err)
{
	return err == KAFKA_COORDINATOR_LOAD_IN_PROGRESS || err == KAFKA_COORDINATOR_NOT_AVAILABLE ||
	       err == KAFKA_NOT_COORDINATOR;
}

int kc_find_coordinator(struct kc_conn *c, const char *group, int timeout_ms, int32_t *node,
			char *host, size_t host_cap, int32_t *port)
{
	int16_t v = kc_version(c, KAFKA_API_FindCoordinator, 6);
	if (v < 0)
		return -1;
	int64_t deadline = mono_ms() + timeout_ms;
	struct kstr key = kstr_from(group);
	for (;;) {
		struct kafka_FindCoordinatorRequest req;
		kafka_FindCoordinatorRequest_init(&req);
		req.KeyType = 0; /* a group */
		if (v >= 4) {
			req.CoordinatorKeys = &key;
			req.CoordinatorKeys_count = 1;
		} else {
			req.Key = key;
		}
		struct kafka_FindCoordinatorResponse resp;
		kafka_FindCoordinatorResponse_init(&resp);
		if (KC_CALL(c, KAFKA_API_FindCoordinator, v, FindCoordinator, &req, &resp) != 0)
			return -1;
		int16_t err = resp.ErrorCode;
		struct kstr h = resp.Host;
		*node = resp.NodeId;
		*port = resp.Port;
		if (v >= 4) {
			if (resp.Coordinators_count != 1)
				return kc_fail("FindCoordinator: %d answers for one group",
					       resp.Coordinators_count);
			err = resp.Coordinators[0].ErrorCode;
			h = resp.Coordinators[0].Host;
			*node = resp.Coordinators[0].NodeId;
			*port = resp.Coordinators[0].Port;
		}
		if (err == 0) {
			kc_cstr(h, host, host_cap);
			return 0;
		}
		if (!kc_coordinator_retriable(err) || mono_ms() + KC_COORDINATOR_RETRY_MS > deadline)
			return kc_fail("group %s: FindCoordinator: %s", group, kc_err_str(err));
		struct timespec ts = { 0, KC_COORDINATOR_RETRY_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
}

int kc_cluster_open(struct kc_cluster *k, const char *bootstrap, int timeout_ms)
{
	memset(k, 0, sizeof(*k));
	k->timeout_ms = timeout_ms;
	if (kc_connect_addr(&k->boot, bootstrap, timeout_ms) != 0)
		return -1;
	struct kafka_MetadataResponse resp;
	if (kc_metadata(&k->boot, NULL, 0, &resp) != 0)
		return -1;
	if (resp.Brokers_count > KC_NODES_MAX)
		return kc_fail("%s: %d brokers, more than %d", k->boot.addr, resp.Brokers_count,
			       KC_NODES_MAX);
	k->nodes = calloc((size_t)resp.Brokers_count + 1, sizeof(*k->nodes));
	if (k->nodes == NULL)
		return kc_fail("out of memory");
	for (int i = 0; i < resp.Brokers_count; i++) {
		struct kc_node *n = &k->nodes[k->n_nodes++];
		n->id = resp.Brokers[i].NodeId;
		kc_cstr(resp.Brokers[i].Host, n->host, sizeof(n->host));
		n->port = resp.Brokers[i].Port;
	}
	return 0;
}

void kc_cluster_close(struct kc_cluster *k)
{
	for (int i = 0; i < k->n_nodes; i++)
		if (k->nodes[i].conn != NULL) {
			kc_close(k->nodes[i].conn);
			free(k->nodes[i].conn);
		}
	free(k->nodes);
	k->nodes = NULL;
	k->n_nodes = 0;
	kc_close(&k->boot);
}

static struct kc_conn *kc_node_conn(struct kc_cluster *k, struct kc_node *n)
{
	if (n->conn != NULL)
		return n->conn;
	struct kc_conn *c = malloc(sizeof(*c));
	if (c == NULL) {
		kc_fail("out of memory");
		return NULL;
	}
	if (kc_connect(c, n->host, n->port, k->timeout_ms) != 0) {
		free(c);
		return NULL;
	}
	n->conn = c;
	return c;
}

struct kc_conn *kc_cluster_node(struct kc_cluster *k, int32_t id)
{
	for (int i = 0; i < k->n_nodes; i++)
		if (k->nodes[i].id == id)
			return kc_node_conn(k, &k->nodes[i]);
	kc_fail("node %d is not in the cluster's metadata", id);
	return NULL;
}

struct kc_conn *kc_cluster_addr(struct kc_cluster *k, int32_t id, const char *host, int32_t port)
{
	for (int i = 0; i < k->n_nodes; i++)
		if (k->nodes[i].id == id && strcmp(k->nodes[i].host, host) == 0 &&
		    k->nodes[i].port == port)
			return kc_node_conn(k, &k->nodes[i]);
	/* A coordinator the metadata did not list (yet): remember it too. */
	struct kc_node *nn = realloc(k->nodes, sizeof(*nn) * ((size_t)k->n_nodes + 1));
	if (nn == NULL) {
		kc_fail("out of memory");
		return NULL;
	}
	k->nodes = nn;
	struct kc_node *n = &k->nodes[k->n_nodes++];
	memset(n, 0, sizeof(*n));
	n->id = id;
	snprintf(n->host, sizeof(n->host), "%s", host);
	n->port = port;
	return kc_node_conn(k, n);
}

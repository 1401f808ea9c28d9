/*
 * kclient: a small blocking Kafka-protocol client for the admin tools,
 * built on the broker's own generated codec (dataplane/kafka/gen), so a tool
 * encodes requests and decodes responses exactly as the schemas say.
 *
 * One struct kc_conn is one TCP connection to one broker. On connect it
 * asks ApiVersions and remembers what the broker takes; kc_version picks
 * the highest version both sides know. kc_call sends one request and waits
 * for its response, decoding into the connection's arena (valid until the
 * next kc_call). A struct kc_cluster keeps one connection per node id,
 * opened on demand from the addresses Metadata gave, for requests that must
 * go to a partition's leader or a group's coordinator.
 *
 * Errors: functions return 0 or -1 and leave a message in kc_errbuf (what
 * failed and why: the address, the API, the Kafka error name), which the
 * tool prints. Nothing here exits.
 */
#ifndef SLUICE_TOOLS_KCLIENT_H
#define SLUICE_TOOLS_KCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka/gen/kafka_msgs.h"
#include "kafka/kafka_errors.h"
#include "kafka/kafka_wire.h"

/* How long one request may take, connect included. */
#define KC_TIMEOUT_MS_DEFAULT 30000
/* The largest response a tool accepts (a describe of a big group). */
#define KC_RESPONSE_MAX_BYTES (64 * 1024 * 1024)
/* API keys a connection remembers versions for (Kafka 4.0 is below 100). */
#define KC_API_KEYS 128
/* Nodes a cluster map keeps connections to. */
#define KC_NODES_MAX 4096

extern char kc_errbuf[512];

struct kc_conn {
	int fd;
	char addr[300];   /* host:port, for messages */
	int32_t corr;
	int timeout_ms;
	int16_t api_max[KC_API_KEYS]; /* -1: the broker does not take it */
	struct karena arena;                     /* the last response */
	uint8_t *rbuf;
	size_t rcap;
};

typedef int (*kc_encode_fn)(struct kwriter *w, int16_t version, const void *req);
typedef int (*kc_decode_fn)(struct kreader *r, int16_t version, void *resp);

/* Connect to host:port and ask ApiVersions. */
int kc_connect(struct kc_conn *c, const char *host, int port, int timeout_ms);
/* "host:port" (IPv6 as [addr]:port). */
int kc_connect_addr(struct kc_conn *c, const char *hostport, int timeout_ms);
void kc_close(struct kc_conn *c);

/* The highest version of api_key both the broker and this tool take, at
 * most want_max; -1 (with kc_errbuf set) if there is none. */
int16_t kc_version(struct kc_conn *c, int16_t api_key, int16_t want_max);

/* Send req (encoded by enc at version) and decode the response into resp
 * (which dec fills, from this connection's arena). */
int kc_call(struct kc_conn *c, int16_t api_key, int16_t version, kc_encode_fn enc,
	    const void *req, kc_decode_fn dec, void *resp);

#define KC_CALL(c, api, ver, Msg, req, resp)                                                 \
	kc_call((c), (api), (ver), (kc_encode_fn)kafka_##Msg##Request_encode, (req),          \
		(kc_decode_fn)kafka_##Msg##Response_decode, (resp))

/* Metadata for n topics (none for n 0: just the brokers), at the highest
 * version both sides take; topics are never auto-created. */
int kc_metadata(struct kc_conn *c, const struct kstr *topics, int n,
		struct kafka_MetadataResponse *resp);

/* A FindCoordinator retry waits this long; errors that say the
 * coordinator is loading or moving are retried until timeout_ms. */
#define KC_COORDINATOR_RETRY_MS 200

/* The coordinator of group (FindCoordinator, batched form from v4): its
 * node id and address. 0, or -1 with kc_errbuf naming the Kafka error. */
int kc_find_coordinator(struct kc_conn *c, const char *group, int timeout_ms, int32_t *node,
			char *host, size_t host_cap, int32_t *port);

/* The nodes of a cluster, from a bootstrap connection's Metadata. */
struct kc_node {
	int32_t id;
	char host[256];
	int32_t port;
	struct kc_conn *conn; /* opened on first use */
};

struct kc_cluster {
	struct kc_conn boot;
	struct kc_node *nodes;
	int n_nodes;
	int timeout_ms;
};

/* Connect to the bootstrap address and learn the nodes. */
int kc_cluster_open(struct kc_cluster *k, const char *bootstrap, int timeout_ms);
void kc_cluster_close(struct kc_cluster *k);
/* The connection to node id (opened now if needed); NULL if unknown. */
struct kc_conn *kc_cluster_node(struct kc_cluster *k, int32_t id);
/* The connection to host:port given by a coordinator lookup. */
struct kc_conn *kc_cluster_addr(struct kc_cluster *k, int32_t id, const char *host, int32_t port);

/* A Kafka error code as "NAME (code)". */
const char *kc_err_str(int16_t code);

/* A kstr as a NUL-terminated copy in buf (truncated to cap). */
const char *kc_cstr(struct kstr s, char *buf, size_t cap);

#endif

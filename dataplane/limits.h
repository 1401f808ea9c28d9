/*
 * limits.h: every bound the dataplane enforces, in one place.
 *
 * Settings a user can change live in config.c (with Kafka's names where Kafka
 * has one); these are the compile-time ceilings and sizes behind them. Each
 * says why it has the value it has.
 */
#ifndef SLUICE_LIMITS_H
#define SLUICE_LIMITS_H

/* Kafka's legal topic name length (Topic.MAX_NAME_LENGTH). */
#define TOPIC_NAME_LEN_MAX 249

/* Partitions per topic. Kafka has no hard limit; one shard keeps a log per
 * partition, and 100k partitions on one host is already far past what a
 * single-node Sluice is for. */
#define TOPIC_PARTITIONS_MAX 100000

/* Topics in the cluster: bounds the metadata file and Metadata responses. */
#define TOPICS_MAX 10000

/* Configs per topic in a CreateTopics request. */
#define TOPIC_CONFIGS_MAX 64
#define TOPIC_CONFIG_VALUE_LEN_MAX 255

/* A connection's assembly buffer (a frame cut by a receive-buffer
 * boundary) larger than this is freed once its frame is handled, so one
 * huge produce does not pin memory for the life of the connection. */
#define CONN_RECV_BUF_KEEP_BYTES (4 * 1024 * 1024)

/* Requests read from one connection but not yet answered. Kafka handles one
 * request per connection at a time; clients pipeline up to
 * max.in.flight.requests.per.connection (5 by default). Past this, the
 * connection is not read until responses drain (backpressure, not an error). */
#define CONN_INFLIGHT_REQUESTS_MAX 64

/* iovecs in one sendmsg: the response header plus one per spliced record
 * range. Larger gathers are sent in several sendmsg calls. */
#define CONN_SEND_IOV_MAX 64

/* A batch of ready responses at least this large is sent with
 * sendmsg_zc: the kernel then sends record bytes straight from fetch read
 * buffers, at the price of pinning pages and one extra completion (the
 * notification) per send, which costs more than copying a small batch. */
#define CONN_SEND_ZC_MIN_BYTES (64 * 1024)

/* Zero-copy sends of one connection whose notification has not arrived
 * (it comes once the peer has acknowledged the bytes). Their requests stay
 * allocated until then; past this, sends copy instead. */
#define CONN_SEND_ZC_INFLIGHT_MAX 4

/* Separate byte ranges in one response: its inline bytes plus record
 * ranges spliced in by reference. A Fetch copies small reads instead of
 * splicing once it has FETCH_SPLICE_RANGES_MAX ranges. */
#define RESPONSE_RANGES_MAX 1024
#define FETCH_SPLICE_RANGES_MAX 500
_Static_assert(2 * FETCH_SPLICE_RANGES_MAX + 2 <= RESPONSE_RANGES_MAX, "fetch ranges fit");

/* Bytes of decoded request structures per request (arrays of topics and
 * partitions). A request whose decoded form needs more is answered as
 * malformed: the wire bytes already bound the counts, this bounds memory. */
#define REQUEST_ARENA_LIMIT_BYTES (64 * 1024 * 1024)
#define REQUEST_ARENA_CHUNK_BYTES (16 * 1024)

/* Response bytes held by one request (not counting spliced record bytes). */
#define RESPONSE_INLINE_MAX_BYTES (256 * 1024 * 1024)

/* CQEs reaped per loop turn before running end-of-turn work (group commit),
 * so a flood of completions cannot starve the flush. */
#define SHARD_CQE_BURST_MAX 256

/* io_uring submission queue entries per shard. */
#define SHARD_RING_ENTRIES 1024

/* A pooled request keeps an arena and a response buffer up to these sizes;
 * larger ones (one huge request) are freed when it is released, and the
 * shard keeps at most REQUEST_FREE_MAX idle requests, so a burst does not
 * pin its peak memory for the life of the process. */
#define REQUEST_ARENA_KEEP_BYTES (256 * 1024)
#define RESPONSE_KEEP_BYTES (256 * 1024)
#define REQUEST_FREE_MAX 1024

/* After accept fails for lack of file descriptors, wait this long before
 * accepting again (instead of failing in a tight loop). */
#define ACCEPT_BACKOFF_MS 100

/* A request object keeps a fetch read buffer up to this size for its next
 * use; a larger one (a big catch-up fetch) is freed when the response is
 * sent, so idle pooled requests do not pin fetch.max.bytes each. */
#define FETCH_READ_BUF_KEEP_BYTES (1024 * 1024)

/* Cold fetch reads (data on the disk alone) land in windows of this size
 * from the shard's read pool (log.read.buffer.bytes, registered with its
 * io_uring) and are sent from there. 1 MiB is Kafka's and librdkafka's
 * default max.partition.fetch.bytes, so one window answers a partition of
 * a default consumer's fetch; a larger share of a fetch is cut to it (the
 * client fetches again), and a first batch larger than a window (KIP-74)
 * is read into the request's own buffer instead. 2 MiB hugepages hold two. */
#define FETCH_READ_WINDOW_BYTES (1024 * 1024)

/* The default read pool (log.read.buffer.bytes=0) holds one window per
 * read log.read.concurrency.max lets go to the disk, but takes at most
 * this fraction of memory.per.shard.bytes, so small budgets still leave
 * room for requests (and at least one window). */
#define FETCH_READ_POOL_BUDGET_DIV 16

/* The fetches of one connection hold at most 1/this of their shard's read
 * windows together (at least one): a consumer with many cold partitions,
 * or one that stops reading its responses, cannot hold the whole pool;
 * its other cold partitions are answered empty this time and read on its
 * next fetch. */
#define FETCH_READ_WINDOWS_SHARE_DIV 2

/* Fetch long-poll: the broker never waits longer than this, whatever
 * max_wait_ms a client sends (Kafka clients send 500 ms by default). */
#define FETCH_MAX_WAIT_MS_MAX (5 * 60 * 1000)

/* Shards per process. A fetch watching partitions on other shards is
 * remembered as a 64-bit mask of shards, and per-shard endpoints take node
 * ids node.id + SHARD_NODE_ID_STRIDE * shard. */
#define SHARDS_MAX 64
#define SHARD_NODE_ID_STRIDE 1000
_Static_assert(SHARDS_MAX <= 64, "watch masks are 64-bit");

/* Segments one shard deletes at the end of one loop turn (retention and
 * DeleteRecords): each costs three unlinks, blocking the shard, so a log
 * with a large backlog is trimmed over several turns rather than in one
 * long stall. */
#define RETENTION_SEGMENTS_PER_TURN 16

/* Group coordinator (group*.c). The sizes a client controls have
 * settings (group.max.size, group.max.metadata.bytes,
 * group.coordinator.max.groups, offset.metadata.max.bytes); these bound
 * the rest. */

/* Protocols (assignors) one JoinGroup may list, and distinct protocol
 * names one group's members may list between them: selection compares
 * them member by member, and clients send one to three. A join past
 * either is refused with INCONSISTENT_GROUP_PROTOCOL. */
#define GROUP_MEMBER_PROTOCOLS_MAX 64
#define GROUP_PROTOCOL_NAMES_MAX 64

/* How long a new member's JoinGroup may wait for its first rebalance
 * before the member is dropped (Kafka's NewMemberJoinTimeoutMs): such a
 * member has no id to heartbeat with yet. */
#define GROUP_NEW_MEMBER_JOIN_TIMEOUT_MS (5 * 60 * 1000)

/* Groups the offset expiry pass looks at in one loop turn; a shard with
 * more goes on in the next turns, so a pass never stalls the loop. */
#define GROUP_EXPIRE_GROUPS_PER_TURN 1024

/* Timers that may fire in one loop turn (sessions, rebalance and sync
 * deadlines); the rest fire on the next turn. */
#define GROUP_TIMERS_PER_TURN 4096

/* KIP-848 consumer groups (group_consumer.c, group_assign.c). */

/* Passes of the uniform assignor's balancing step when members subscribe
 * to different topics: each pass moves partitions from a member to a
 * subscriber of the same topic with at least two fewer; passes stop once
 * nothing moves, and in any case after this many (an assignment is then
 * a little less even, never wrong). */
#define GASSIGN_BALANCE_PASSES_MAX 64

/* Topics one member may subscribe to by name in a ConsumerGroupHeartbeat
 * (INVALID_REQUEST past it), and the longest SubscribedTopicRegex: a
 * member's subscription is copied into the coordinator and written in its
 * member record. */
#define CGROUP_MEMBER_TOPICS_MAX 10000
#define CGROUP_REGEX_BYTES_MAX 1024

/* Bytes of records one write of a consumer group carries before the
 * coordinator cuts it into another batch (a new target assignment of a
 * large group, or the whole group rewritten after a failed write). */
#define CGROUP_WRITE_BATCH_BYTES 1048576

/* The longest ErrorMessage a ConsumerGroupHeartbeat answer carries (it
 * names a member or instance id, cut short past this). */
#define CGROUP_ERROR_MESSAGE_BYTES 512

#endif

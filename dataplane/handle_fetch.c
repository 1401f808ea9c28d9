/*
 * Fetch: read whole batches below each partition's high watermark and send
 * them back by reference (the response splices the read buffer; nothing is
 * copied into the response writer). When fewer than MinBytes are available
 * the request parks on the shard until a high watermark moves or MaxWaitMs
 * passes (long poll), so a waiting consumer gets a record as soon as it is
 * durable. Fetch sessions are declined (session id 0), as Kafka allows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "request.h"
#include "shard.h"

typedef struct kafka_FetchResponse_FetchableTopicResponse fr_topic;
typedef struct kafka_FetchResponse_PartitionData fr_partition;

/* Where a partition's bytes sit in the request's read buffer. */
struct fetch_slot {
	size_t off;
	int32_t len;
};

struct fetch_state {
	struct kafka_FetchRequest body;
	struct kafka_FetchResponse resp; /* arrays allocated once, refilled per run */
	struct fetch_slot *slots;        /* one per response partition, in order */
	int32_t max_bytes;
};

static void fetch_park(struct request *req)
{
	struct shard *sh = req->sh;
	if (req->parked)
		return;
	req->parked = true;
	req->wait_prev = NULL;
	req->wait_next = sh->fetch_waiters;
	if (sh->fetch_waiters != NULL)
		sh->fetch_waiters->wait_prev = req;
	sh->fetch_waiters = req;
}

void fetch_cancel(struct request *req)
{
	struct shard *sh = req->sh;
	if (!req->parked)
		return;
	if (req->wait_prev != NULL)
		req->wait_prev->wait_next = req->wait_next;
	else
		sh->fetch_waiters = req->wait_next;
	if (req->wait_next != NULL)
		req->wait_next->wait_prev = req->wait_prev;
	req->wait_next = req->wait_prev = NULL;
	req->parked = false;
}

/* Allocate the response skeleton once per request. */
static int fetch_prepare(struct request *req, struct fetch_state *fs)
{
	struct kafka_FetchRequest *b = &fs->body;
	int32_t nt = b->Topics_count < 0 ? 0 : b->Topics_count, np_total = 0;
	kafka_FetchResponse_init(&fs->resp);
	fs->resp.Responses = HANDLER_ARRAY(req, fr_topic, nt);
	if (fs->resp.Responses == NULL)
		return -1;
	fs->resp.Responses_count = nt;
	for (int32_t i = 0; i < nt; i++) {
		fr_topic *rt = &fs->resp.Responses[i];
		int32_t np = b->Topics[i].Partitions_count < 0 ? 0 : b->Topics[i].Partitions_count;
		kafka_FetchResponse_FetchableTopicResponse_init(rt);
		rt->Topic = b->Topics[i].Topic;
		rt->TopicId = b->Topics[i].TopicId;
		rt->Partitions = HANDLER_ARRAY(req, fr_partition, np);
		if (rt->Partitions == NULL)
			return -1;
		rt->Partitions_count = np;
		np_total += np;
	}
	fs->slots = HANDLER_ARRAY(req, struct fetch_slot, np_total);
	return fs->slots == NULL ? -1 : 0;
}

struct fetch_totals {
	int64_t bytes;
	int with_data;
	bool error;
};

/* Fill one partition's response; read its bytes into the read buffer. */
static void fetch_partition(struct request *req, struct fetch_state *fs, struct topic_state *ts,
			    const struct kafka_FetchRequest_FetchPartition *fp, fr_partition *out,
			    struct fetch_slot *slot, struct fetch_totals *tot)
{
	kafka_FetchResponse_PartitionData_init(out);
	out->PartitionIndex = fp->Partition;
	out->AbortedTransactions_count = -1;
	out->Records = (struct kbytes){ NULL, 0 };
	slot->len = 0;
	if (ts == NULL || fp->Partition < 0 || fp->Partition >= ts->n_parts) {
		out->ErrorCode = ts == NULL && req->api_version >= 13 ? KAFKA_UNKNOWN_TOPIC_ID
							       : KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		tot->error = true;
		return;
	}
	struct plog *log = ts->parts[fp->Partition].log;
	if (plog_error(log) != 0) {
		out->ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
		tot->error = true;
		return;
	}
	int64_t hw = plog_high_watermark(log), start = plog_start_offset(log);
	out->HighWatermark = hw;
	out->LastStableOffset = hw;
	out->LogStartOffset = start;
	if (fp->FetchOffset < start || fp->FetchOffset > plog_end_offset(log)) {
		out->ErrorCode = KAFKA_OFFSET_OUT_OF_RANGE;
		tot->error = true;
		return;
	}
	int64_t room = fs->max_bytes - tot->bytes;
	if (fp->FetchOffset >= hw || (tot->bytes > 0 && room <= 0) ||
	    tot->with_data >= FETCH_SPLICE_RANGES_MAX)
		return;
	int32_t limit = fp->PartitionMaxBytes < room ? fp->PartitionMaxBytes : (int32_t)room;
	size_t cap = (size_t)(limit > 0 ? limit : 0);
	uint8_t *buf = request_read_buf(req, req->read_used + cap);
	if (buf == NULL)
		return; /* no memory: answer without this partition's data */
	struct plog_read_result res;
	int rc = plog_read(log, fp->FetchOffset, limit, buf + req->read_used, cap, &res);
	if (rc == 0 && res.len == 0 && tot->bytes == 0 && (size_t)res.first_batch_bytes > cap) {
		/* KIP-74: the first partition with data returns at least one
		 * whole batch, whatever the limits, so consumers progress: make
		 * room for it and read again (rare: batches are usually smaller
		 * than the partition limit). */
		cap = (size_t)res.first_batch_bytes;
		buf = request_read_buf(req, req->read_used + cap);
		if (buf == NULL)
			return;
		rc = plog_read(log, fp->FetchOffset, limit, buf + req->read_used, cap, &res);
	}
	if (rc == -ERANGE) {
		out->ErrorCode = KAFKA_OFFSET_OUT_OF_RANGE;
		tot->error = true;
		return;
	}
	if (rc < 0) {
		out->ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
		tot->error = true;
		return;
	}
	if (res.len == 0)
		return;
	slot->off = req->read_used;
	slot->len = (int32_t)res.len;
	req->read_used += res.len;
	tot->bytes += (int64_t)res.len;
	tot->with_data++;
}

static void fetch_respond(struct request *req, struct fetch_state *fs)
{
	struct fetch_slot *slot = fs->slots;
	for (int32_t i = 0; i < fs->resp.Responses_count; i++) {
		fr_topic *rt = &fs->resp.Responses[i];
		for (int32_t j = 0; j < rt->Partitions_count; j++, slot++)
			if (slot->len > 0)
				rt->Partitions[j].Records =
					(struct kbytes){ req->read_buf + slot->off, slot->len };
	}
	fetch_cancel(req);
	req->sh->stats.fetch_bytes += (uint64_t)req->read_used;
	request_response_begin(req);
	kafka_FetchResponse_encode(&req->resp, req->api_version, &fs->resp);
	request_response_end(req);
}

/* Run (or re-run) a fetch: answer it, or leave it parked. */
static void fetch_run(struct request *req, bool final)
{
	struct shard *sh = req->sh;
	struct fetch_state *fs = req->fetch_state;
	struct kafka_FetchRequest *b = &fs->body;
	struct fetch_totals tot = { 0 };
	struct fetch_slot *slot = fs->slots;

	req->read_used = 0;
	if (req->api_version >= 7 && b->SessionId != 0) {
		/* We never hand out sessions, so any id is unknown. */
		fs->resp.ErrorCode = KAFKA_FETCH_SESSION_ID_NOT_FOUND;
		fs->resp.Responses_count = 0;
		fetch_respond(req, fs);
		return;
	}
	for (int32_t i = 0; i < fs->resp.Responses_count; i++) {
		const struct kafka_FetchRequest_FetchTopic *ft = &b->Topics[i];
		fr_topic *rt = &fs->resp.Responses[i];
		struct topic_state *ts = req->api_version >= 13 ? shard_topic_find_id(sh, ft->TopicId)
								: shard_topic_find(sh, ft->Topic);
		for (int32_t j = 0; j < rt->Partitions_count; j++, slot++)
			fetch_partition(req, fs, ts, &ft->Partitions[j], &rt->Partitions[j], slot, &tot);
	}
	if (!final && !tot.error && tot.bytes < b->MinBytes && sh->now_ms < req->deadline_ms &&
	    !sh->stopping) {
		fetch_park(req);
		return;
	}
	fetch_respond(req, fs);
}

int handle_Fetch(struct request *req, struct kreader *r)
{
	struct shard *sh = req->sh;
	/* The request may outlive its frame (long poll): decode from a copy. */
	size_t n = kr_remaining(r);
	uint8_t *copy = karena_alloc(&req->arena, n > 0 ? n : 1);
	struct fetch_state *fs = karena_alloc(&req->arena, sizeof(*fs));
	if (copy == NULL || fs == NULL)
		return -1;
	memcpy(copy, r->p, n);
	struct kreader rc;
	kr_init(&rc, copy, n, &req->arena);
	if (kafka_FetchRequest_decode(&rc, req->api_version, &fs->body) != 0)
		return -1;
	if (fetch_prepare(req, fs) != 0)
		return -1;
	req->fetch_state = fs;

	fs->max_bytes = sh->cfg->fetch_max_bytes;
	if (req->api_version >= 3 && fs->body.MaxBytes < fs->max_bytes)
		fs->max_bytes = fs->body.MaxBytes;
	int32_t wait = fs->body.MaxWaitMs;
	if (wait < 0)
		wait = 0;
	if (wait > FETCH_MAX_WAIT_MS_MAX)
		wait = FETCH_MAX_WAIT_MS_MAX;
	req->deadline_ms = sh->now_ms + wait;
	fetch_run(req, false);
	return 0;
}

void fetch_recheck_all(struct shard *sh, bool all)
{
	/* Running one fetch may close connections and so cancel other parked
	 * fetches, including the saved next one: then start again from the
	 * head. Every fetch is marked with the pass that ran it so none runs
	 * twice. (A cancelled request stays allocated until conn_reap.) */
	uint64_t pass = ++sh->fetch_pass;
	struct request *req = sh->fetch_waiters;
	while (req != NULL) {
		struct request *next = req->wait_next;
		if (req->fetch_pass != pass) {
			req->fetch_pass = pass;
			bool expired = sh->now_ms >= req->deadline_ms || sh->stopping;
			if (all || expired)
				fetch_run(req, expired);
			if (next != NULL && !next->parked)
				next = sh->fetch_waiters;
		}
		req = next;
	}
}

int64_t fetch_next_deadline_ms(struct shard *sh)
{
	int64_t best = -1;
	for (struct request *req = sh->fetch_waiters; req != NULL; req = req->wait_next)
		if (best < 0 || req->deadline_ms < best)
			best = req->deadline_ms;
	return best;
}

/*
 * Fetch: read whole batches below each partition's high watermark and send
 * them back by reference (the response splices the read buffer; nothing is
 * copied into the response writer). When fewer than MinBytes are available
 * the request parks on the shard until a high watermark moves or MaxWaitMs
 * passes (long poll), so a waiting consumer gets a record as soon as it is
 * durable. Fetch sessions are declined (session id 0), as Kafka allows.
 *
 * Partitions of other shards: a run reads the local partitions first, then
 * splits what is left of the response budget evenly between the remote
 * ones and sends each owner an xfetch naming a slice of the request's read
 * buffer; the owner copies what it has in memory straight into it. The
 * answer (or the decision to park) waits until every part is back. A
 * parked fetch leaves a watch on the remote partitions it read nothing
 * from; when one of them moves, its owner tells this shard, which runs its
 * parked fetches again.
 *
 * Cold data (on the disk alone, local or remote): once the memory part of
 * the run is back, each such partition gets a window of this shard's read
 * pool (read_pool.h) and an xfetch to its owner (this shard or another),
 * which reads into the window through io_uring (READ_FIXED: every ring
 * registers every pool) at most log.read.concurrency.max at a time; the
 * response sends the bytes from the window, which goes back to the pool
 * once the response is sent (request_release), the fetch parks, or the
 * read brought nothing. A fetch that finds no window free waits for one,
 * holding none; one that holds windows never waits for more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "handlers.h"
#include "request.h"
#include "shard.h"
#include "xcall.h"

typedef struct kafka_FetchResponse_FetchableTopicResponse fr_topic;
typedef struct kafka_FetchResponse_PartitionData fr_partition;

/* A read of one partition owned by another shard. Kept in the request's
 * arena and reused by every run; in flight only between send and done. */
struct xfetch {
	struct xcall xc;
	struct request *req;
	struct kuuid topic_id;
	int32_t index;
	int64_t offset;
	int32_t limit;
	uint8_t *dst; /* slice of the caller's read buffer */
	size_t cap;
	bool watch;   /* the caller may park: watch the partition if empty */
	bool disk;    /* read from the disk, into window (else dst) */
	bool whole;   /* KIP-74 retry: cap is the size of the first batch */
	struct wbuf *window; /* the caller's read window, lent for the read */
	/* answer */
	int16_t error;
	int64_t hw, start;
	int32_t len, first_batch_bytes;
	size_t skip;  /* the batches start this far into dst or the window */
	bool on_disk; /* nothing read: the bytes are on the disk alone, the
		       * caller lends a window and asks again (disk) */
	/* owner side: the read, when it has to go to the disk */
	struct plog_aread ar;
	struct shard *owner;
	struct xfetch *disk_next; /* waiting for a disk read place */
};

/* Where a partition's bytes sit in the request's read buffer. */
struct fetch_slot {
	size_t off;
	int32_t len;
	struct xfetch *x;  /* remote partitions */
};

struct fetch_state {
	struct kafka_FetchRequest body;
	struct kafka_FetchResponse resp; /* arrays allocated once, refilled per run */
	struct fetch_slot *slots;        /* one per response partition, in order */
	int32_t n_slots;
	int32_t max_bytes;
	bool final;   /* this run answers, whatever it finds */
	bool rerun;   /* asked to run again while parts were out */
	struct request *req;
	struct read_pool_waiter pool_wait; /* waiting for a read window */
	bool pool_woken;     /* at the head of the wait: take what is free */
	uint32_t disk_rotor; /* which cold partition gets the first window */
	uint32_t windows;    /* read windows held */
};

struct fetch_totals {
	int64_t bytes;
	int with_data;
	bool error;
};

static void fetch_window_put(struct request *req, struct xfetch *x)
{
	struct fetch_state *fs = req->fetch_state;
	read_pool_put(req->sh, x->window);
	x->window = NULL;
	fs->windows--;
}

void fetch_release(struct request *req)
{
	struct fetch_state *fs = req->fetch_state;
	if (fs == NULL)
		return;
	for (int32_t i = 0; i < fs->n_slots && fs->windows > 0; i++) {
		struct xfetch *x = fs->slots[i].x;
		if (x != NULL && x->window != NULL)
			fetch_window_put(req, x);
	}
}

static void fetch_park(struct request *req)
{
	struct shard *sh = req->sh;
	if (req->parked)
		return;
	/* The next run reads again: what this one read is let go. */
	fetch_release(req);
	req->parked = true;
	req->wait_prev = NULL;
	req->wait_next = sh->fetch_waiters;
	if (sh->fetch_waiters != NULL)
		sh->fetch_waiters->wait_prev = req;
	sh->fetch_waiters = req;
	sh->n_fetch_waiters++;
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
	sh->n_fetch_waiters--;
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
	fs->n_slots = np_total;
	return fs->slots == NULL ? -1 : 0;
}

/* Owner side: the partition's state; false when there is nothing to read
 * (an error, or nothing at the offset yet). */
static bool fetch_read_begin(struct plog *log, int64_t offset, struct xfetch *out)
{
	out->len = 0;
	out->first_batch_bytes = 0;
	out->skip = 0;
	if (plog_error(log) != 0) {
		out->error = KAFKA_KAFKA_STORAGE_ERROR;
		return false;
	}
	out->hw = plog_high_watermark(log);
	out->start = plog_start_offset(log);
	if (offset < out->start || offset > plog_end_offset(log)) {
		out->error = KAFKA_OFFSET_OUT_OF_RANGE;
		return false;
	}
	out->error = KAFKA_NONE;
	return offset < out->hw;
}

static void fetch_read_end(int rc, const struct plog_read_result *res, size_t skip,
			   struct xfetch *out)
{
	if (rc == -ERANGE) {
		out->error = KAFKA_OFFSET_OUT_OF_RANGE;
	} else if (rc == -EAGAIN) {
		out->error = KAFKA_NONE; /* the ring was full: nothing this time */
	} else if (rc < 0) {
		out->error = KAFKA_KAFKA_STORAGE_ERROR;
	} else {
		out->len = (int32_t)res->len;
		out->skip = skip;
		out->first_batch_bytes = res->len == 0 ? (int32_t)res->first_batch_bytes : 0;
	}
}

/* Up to cap bytes from offset, from memory only. Returns false when the
 * bytes are on the disk alone (then nothing is filled in): the caller reads
 * them without blocking the shard (xfetch_run). */
static bool fetch_read(struct plog *log, int64_t offset, int32_t limit, uint8_t *dst,
		       size_t cap, struct xfetch *out)
{
	if (!fetch_read_begin(log, offset, out))
		return true;
	struct plog_read_result res;
	int rc = plog_read_nowait(log, offset, limit, dst, cap, &res);
	if (rc == -EAGAIN)
		return false;
	fetch_read_end(rc, &res, 0, out);
	return true;
}

static void fetch_fill(fr_partition *out, const struct xfetch *r)
{
	out->ErrorCode = r->error;
	if (r->error == KAFKA_KAFKA_STORAGE_ERROR)
		return;
	out->HighWatermark = r->hw;
	out->LastStableOffset = r->hw;
	out->LogStartOffset = r->start;
}

static void fetch_partition_reset(fr_partition *out, int32_t index)
{
	kafka_FetchResponse_PartitionData_init(out);
	out->PartitionIndex = index;
	out->AbortedTransactions_count = -1;
	out->Records = (struct kbytes){ NULL, 0 };
}

/* A read of fp by its owner (another shard, or this one for data on the
 * disk alone), in the request's arena; NULL without memory. */
static struct xfetch *xfetch_new(struct request *req, int owner, struct kuuid topic_id,
				 const struct kafka_FetchRequest_FetchPartition *fp, bool on_disk)
{
	struct xfetch *x = karena_alloc(&req->arena, sizeof(*x));
	if (x != NULL)
		*x = (struct xfetch){ .req = req, .xc.dst = (int16_t)owner, .topic_id = topic_id,
				      .index = fp->Partition, .offset = fp->FetchOffset,
				      .limit = fp->PartitionMaxBytes, .on_disk = on_disk };
	return x;
}

/* Read one local partition into the read buffer (room permitting). */
static void fetch_local(struct request *req, struct fetch_state *fs, struct plog *log,
			struct kuuid topic_id,
			const struct kafka_FetchRequest_FetchPartition *fp, fr_partition *out,
			struct fetch_slot *slot, struct fetch_totals *tot)
{
	struct xfetch r;
	int64_t room = fs->max_bytes - tot->bytes;
	bool want = (tot->bytes == 0 || room > 0) && tot->with_data < FETCH_SPLICE_RANGES_MAX;
	int32_t limit = fp->PartitionMaxBytes < room ? fp->PartitionMaxBytes : (int32_t)room;
	size_t cap = want && limit > 0 ? (size_t)limit : 0;
	uint8_t *buf = request_read_buf(req, req->read_used + cap);
	if (buf == NULL)
		cap = 0; /* no memory: answer without this partition's data */
	bool in_memory = fetch_read(log, fp->FetchOffset, limit, buf ? buf + req->read_used : NULL,
				    cap, &r);
	if (in_memory && r.error == KAFKA_NONE && r.len == 0 && tot->bytes == 0 &&
	    r.first_batch_bytes > 0) {
		/* KIP-74: the first partition with data returns at least one
		 * whole batch, whatever the limits, so consumers progress. */
		cap = (size_t)r.first_batch_bytes;
		buf = request_read_buf(req, req->read_used + cap);
		if (buf != NULL)
			in_memory = fetch_read(log, fp->FetchOffset, limit, buf + req->read_used,
					       cap, &r);
	}
	if (!in_memory) {
		/* Cold data: read like another shard's partition whose owner
		 * found it on the disk, by an xfetch to this very shard with
		 * a read window (fetch_disk_phase). */
		slot->x = xfetch_new(req, req->sh->id, topic_id, fp, true);
		if (slot->x != NULL) {
			/* What it answers if it gets no window this time. */
			slot->x->hw = r.hw;
			slot->x->start = r.start;
			return;
		}
		r.error = KAFKA_KAFKA_STORAGE_ERROR;
	}
	fetch_fill(out, &r);
	if (r.error != KAFKA_NONE) {
		tot->error = true;
		return;
	}
	if (r.len == 0)
		return;
	slot->off = req->read_used;
	slot->len = r.len;
	req->read_used += (size_t)r.len;
	tot->bytes += r.len;
	tot->with_data++;
}

/* Where a partition's answer bytes are: a read window, or the request's
 * read buffer. */
static const uint8_t *fetch_slot_bytes(const struct request *req, const struct fetch_slot *slot)
{
	const struct xfetch *x = slot->x;
	if (x != NULL && x->window != NULL)
		return x->window->data + x->skip;
	return req->read_buf + slot->off + (x != NULL ? x->skip : 0);
}

static void fetch_respond(struct request *req, struct fetch_state *fs)
{
	struct fetch_slot *slot = fs->slots;
	uint64_t bytes = 0;
	for (int32_t i = 0; i < fs->resp.Responses_count; i++) {
		fr_topic *rt = &fs->resp.Responses[i];
		for (int32_t j = 0; j < rt->Partitions_count; j++, slot++)
			if (slot->len > 0) {
				rt->Partitions[j].Records = (struct kbytes){
					fetch_slot_bytes(req, slot), slot->len };
				bytes += (uint64_t)slot->len;
			}
	}
	fetch_cancel(req);
	req->sh->stats.fetch_bytes += bytes;
	request_response_begin(req);
	kafka_FetchResponse_encode(&req->resp, req->api_version, &fs->resp);
	request_response_end(req);
}

/* ---- remote partitions ---- */

/* Leave a watch for the caller when it may park and got nothing (not
 * when it is about to read from the disk). */
static void xfetch_reply(struct shard *sh, struct xfetch *x, struct partition *p)
{
	if (x->watch && x->error == KAFKA_NONE && x->len == 0 && !x->on_disk)
		p->watchers |= 1ull << x->xc.src;
	xcall_reply(sh, &x->xc);
}

static void xfetch_disk_start(struct shard *sh, struct xfetch *x);

/* A disk read place is free: the oldest waiting xfetch takes it. */
static void xfetch_disk_next(struct shard *sh)
{
	while (sh->disk_wait_head != NULL &&
	       sh->disk_reads < sh->cfg->read_concurrency_max) {
		struct xfetch *x = sh->disk_wait_head;
		sh->disk_wait_head = x->disk_next;
		if (sh->disk_wait_head == NULL)
			sh->disk_wait_tail = NULL;
		xfetch_disk_start(sh, x);
	}
}

/* The disk read of an xfetch is in (on the owner). The partition is looked
 * up again: its topic may have gone meanwhile (its log stayed until the
 * read was done). */
static void xfetch_read_done(struct plog_aread *ar)
{
	struct xfetch *x = container_of(ar, struct xfetch, ar);
	struct shard *sh = x->owner;
	sh->disk_reads--;
	fetch_read_end(ar->err, &ar->res, ar->skip, x);
	x->hw = ar->res.high_watermark;
	struct partition *p = shard_partition_owned(sh, x->topic_id, x->index);
	if (p == NULL) {
		x->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		x->len = 0;
		xcall_reply(sh, &x->xc);
	} else {
		xfetch_reply(sh, x, p);
	}
	xfetch_disk_next(sh);
}

/* Read x's bytes from the disk through the ring, now that it has a place
 * (a queued one finds its partition again, and may find it in memory). */
static void xfetch_disk_start(struct shard *sh, struct xfetch *x)
{
	struct partition *p = shard_partition_owned(sh, x->topic_id, x->index);
	if (p == NULL) {
		x->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		x->len = 0;
		xcall_reply(sh, &x->xc);
		return;
	}
	x->owner = sh;
	/* Windows of the share's size, as reads into memory: a larger one
	 * would read bytes that only the page cache would keep. */
	x->ar = (struct plog_aread){ .done = xfetch_read_done, .offset = x->offset,
				     .max_bytes = x->limit,
				     .buf = x->window != NULL ? x->window->data : x->dst,
				     .cap = x->cap };
	int rc = plog_read_disk(p->log, &x->ar);
	if (rc == 1) {
		sh->disk_reads++;
		sh->stats.fetch_cold++;
		return;
	}
	fetch_read_end(rc, &x->ar.res, x->ar.skip, x);
	xfetch_reply(sh, x, p);
}

static void xfetch_run(struct shard *sh, struct xcall *xc)
{
	struct xfetch *x = container_of(xc, struct xfetch, xc);
	struct partition *p = shard_partition_owned(sh, x->topic_id, x->index);
	x->on_disk = false;
	if (p == NULL) {
		x->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
		x->len = 0;
		xcall_reply(sh, xc);
		return;
	}
	/* From memory at once if it is there; if not, the caller lends a
	 * read window and asks again. That read goes to the disk through
	 * the ring while the shard goes on, log.read.concurrency.max at a
	 * time, the rest in order of arrival. */
	bool done;
	if (x->disk) {
		done = !fetch_read_begin(p->log, x->offset, x);
	} else {
		done = true;
		x->on_disk = !fetch_read(p->log, x->offset, x->limit, x->dst, x->cap, x);
	}
	if (done) {
		xfetch_reply(sh, x, p);
		return;
	}
	if (sh->disk_reads >= sh->cfg->read_concurrency_max) {
		x->disk_next = NULL;
		if (sh->disk_wait_tail != NULL)
			sh->disk_wait_tail->disk_next = x;
		else
			sh->disk_wait_head = x;
		sh->disk_wait_tail = x;
		return;
	}
	xfetch_disk_start(sh, x);
}

static void xfetch_done(struct shard *sh, struct xcall *xc)
{
	struct xfetch *x = container_of(xc, struct xfetch, xc);
	(void)sh;
	if (x->window != NULL && (x->error != KAFKA_NONE || x->len == 0))
		fetch_window_put(x->req, x); /* nothing in it to send */
	request_remote_done(x->req);
}

/* Ask the owner for what it has in memory, into the read buffer at off. */
static void fetch_send(struct request *req, struct xfetch *x, size_t off, size_t cap, bool watch)
{
	struct shard *sh = req->sh;
	x->dst = req->read_buf + off;
	x->cap = cap;
	x->watch = watch;
	x->disk = false;
	req->remote_pending++;
	sh->stats.fetch_forwarded += x->xc.dst != sh->id;
	xcall_send(sh, x->xc.dst, &x->xc, xfetch_run, xfetch_done);
}

/* Ask the owner to read from the disk into window (NULL: into x->dst, a
 * first batch larger than any window). */
static void fetch_send_disk(struct request *req, struct xfetch *x, struct wbuf *window)
{
	x->window = window;
	x->disk = true;
	if (window != NULL && x->cap > window->cap)
		x->cap = window->cap; /* the rest of its share: on its next fetch */
	req->remote_pending++;
	xcall_send(req->sh, x->xc.dst, &x->xc, xfetch_run, xfetch_done);
}

/* At the head of the wait for a read window: the run goes on. */
static void fetch_pool_ready(struct shard *sh, struct read_pool_waiter *w)
{
	struct fetch_state *fs = container_of(w, struct fetch_state, pool_wait);
	(void)sh;
	fs->pool_woken = true;
	request_remote_done(fs->req); /* the wait was its last part out */
}

/* Partitions found on the disk alone that need no read after all: the
 * connection is gone, or there is no room left for them. Count the rest
 * (*windows: of those, the ones that read into a window). */
static int fetch_disk_count(struct request *req, struct fetch_state *fs, int *windows)
{
	int n = 0;
	*windows = 0;
	for (int32_t i = 0; i < fs->n_slots; i++) {
		struct xfetch *x = fs->slots[i].x;
		if (x == NULL || !x->on_disk)
			continue;
		if (req->conn->closing || x->error != KAFKA_NONE || x->cap < BATCH_HEADER_BYTES) {
			x->on_disk = false;
			continue;
		}
		n++;
		*windows += !(x->whole && x->cap > FETCH_READ_WINDOW_BYTES);
	}
	return n;
}

/* Windows held by the other fetches of req's connection whose responses
 * are not sent yet (at most CONN_INFLIGHT_REQUESTS_MAX of them). */
static uint32_t fetch_conn_windows(const struct request *req)
{
	uint32_t n = 0;
	for (const struct request *r = req->conn->rq_head; r != NULL; r = r->next)
		if (r != req && r->api_key == KAFKA_API_Fetch && r->fetch_state != NULL)
			n += ((const struct fetch_state *)r->fetch_state)->windows;
	return n;
}

/* The partitions found on the disk alone (local ones, and remote ones
 * whose owner said so) are read now, each into a window of this shard's
 * read pool. A run that finds no window free waits for one, holding none
 * (windows are only taken here, once per run); once it has some it never
 * waits for more: partitions left without one answer empty this time,
 * taking turns (disk_rotor) across runs. A connection's fetches hold at
 * most 1/FETCH_READ_WINDOWS_SHARE_DIV of the pool together, so a client
 * that stops reading its responses cannot take every window. Returns true
 * when the run goes on later (reads sent, or waiting). */
static bool fetch_disk_phase(struct request *req, struct fetch_state *fs)
{
	struct shard *sh = req->sh;
	struct read_pool *pool = &sh->rpool;
	bool woken = fs->pool_woken;
	fs->pool_woken = false;
	int windows, n = fetch_disk_count(req, fs, &windows);
	if (n == 0)
		return false;
	uint32_t share = read_pool_total_count(pool) / FETCH_READ_WINDOWS_SHARE_DIV;
	uint32_t held = fetch_conn_windows(req), allowed = share > 0 ? share : 1;
	allowed = held < allowed ? allowed - held : 0;
	if (!woken && windows == n && allowed > 0 &&
	    (read_pool_free_count(pool) == 0 || pool->wait_head != NULL)) {
		fs->pool_wait.ready = fetch_pool_ready;
		read_pool_wait(sh, &fs->pool_wait);
		req->remote_pending++; /* keeps the request until it is served */
		return true;
	}
	bool sent = false;
	int32_t first = (int32_t)(fs->disk_rotor++ % (uint32_t)fs->n_slots);
	for (int32_t k = 0; k < fs->n_slots; k++) {
		struct xfetch *x = fs->slots[(first + k) % fs->n_slots].x;
		if (x == NULL || !x->on_disk)
			continue;
		x->on_disk = false;
		struct wbuf *w = NULL;
		if (!(x->whole && x->cap > FETCH_READ_WINDOW_BYTES)) {
			if (fs->windows >= allowed || (w = read_pool_get(sh)) == NULL)
				continue; /* nothing this time: read on its next fetch */
			fs->windows++;
		}
		fetch_send_disk(req, x, w);
		sent = true;
	}
	return sent;
}

/* Send every remote partition its share of what is left of the budget.
 * The read buffer is sized once, before any owner writes into it. */
static void fetch_remote(struct request *req, struct fetch_state *fs, struct fetch_totals *tot)
{
	int n_remote = 0;
	for (int32_t i = 0; i < fs->n_slots; i++)
		n_remote += fs->slots[i].x != NULL;
	if (n_remote == 0)
		return;
	int64_t room = fs->max_bytes - tot->bytes;
	int64_t share = room > 0 ? room / n_remote : 0;
	int ranges_left = FETCH_SPLICE_RANGES_MAX - tot->with_data;
	size_t need = req->read_used;
	for (int32_t i = 0; i < fs->n_slots; i++) {
		struct xfetch *x = fs->slots[i].x;
		if (x == NULL)
			continue;
		int64_t lim = x->limit < share ? x->limit : share;
		x->cap = ranges_left-- > 0 && lim > 0 ? (size_t)lim : 0;
		if (!x->on_disk)
			need += x->cap; /* the others read into windows */
	}
	if (request_read_buf(req, need > 0 ? need : 1) == NULL)
		for (int32_t i = 0; i < fs->n_slots; i++)
			if (fs->slots[i].x != NULL)
				fs->slots[i].x->cap = 0;
	size_t off = req->read_used;
	for (int32_t i = 0; i < fs->n_slots; i++) {
		struct fetch_slot *slot = &fs->slots[i];
		if (slot->x == NULL || slot->x->on_disk)
			continue;
		slot->off = off;
		fetch_send(req, slot->x, off, slot->x->cap, !fs->final);
		off += slot->x->cap;
	}
}

/* Fold the remote answers into the response; the totals of the run. */
static void fetch_collect(struct fetch_state *fs, struct fetch_totals *tot)
{
	struct fetch_slot *slot = fs->slots;
	*tot = (struct fetch_totals){ 0 };
	for (int32_t i = 0; i < fs->resp.Responses_count; i++) {
		fr_topic *rt = &fs->resp.Responses[i];
		for (int32_t j = 0; j < rt->Partitions_count; j++, slot++) {
			if (slot->x != NULL) {
				fetch_fill(&rt->Partitions[j], slot->x);
				slot->len = slot->x->error == KAFKA_NONE ? slot->x->len : 0;
			}
			if (rt->Partitions[j].ErrorCode != KAFKA_NONE)
				tot->error = true;
			if (slot->len > 0) {
				tot->bytes += slot->len;
				tot->with_data++;
			}
		}
	}
}

/* KIP-74 across shards: nothing came back but a remote partition has a
 * batch larger than its share. Fetch that one whole. */
static bool fetch_remote_first_batch(struct request *req, struct fetch_state *fs)
{
	for (int32_t i = 0; i < fs->n_slots; i++) {
		struct fetch_slot *slot = &fs->slots[i];
		struct xfetch *x = slot->x;
		if (x == NULL || x->error != KAFKA_NONE || x->first_batch_bytes <= 0)
			continue;
		size_t off = req->read_used, cap = (size_t)x->first_batch_bytes;
		if (request_read_buf(req, off + cap) == NULL)
			return false;
		slot->off = off;
		x->whole = true;
		fetch_send(req, x, off, cap, false);
		return true;
	}
	return false;
}

/* Every part of the run is in: answer, park, or run again. */
static void fetch_evaluate(struct request *req)
{
	struct shard *sh = req->sh;
	struct fetch_state *fs = req->fetch_state;
	struct fetch_totals tot;
	if (fetch_disk_phase(req, fs))
		return;
	fetch_collect(fs, &tot);
	if (tot.bytes == 0 && !tot.error && fetch_remote_first_batch(req, fs))
		return;
	bool closing = req->conn->closing;
	if (!fs->final && !closing && !tot.error && tot.bytes < fs->body.MinBytes &&
	    sh->now_ms < req->deadline_ms && !sh->stopping) {
		fetch_park(req);
		if (fs->rerun) {
			/* A watched partition moved while this run was out. */
			fs->rerun = false;
			sh->fetch_recheck = true;
		}
		return;
	}
	fetch_respond(req, fs);
}

/* Run (or re-run) a fetch: answer it, or leave it parked. */
static void fetch_run(struct request *req, bool final)
{
	struct shard *sh = req->sh;
	struct fetch_state *fs = req->fetch_state;
	struct kafka_FetchRequest *b = &fs->body;
	struct fetch_totals tot = { 0 };
	struct fetch_slot *slot = fs->slots;

	if (req->remote_pending > 0) {
		/* Parts of the previous run are still out; their answer
		 * decides. A deadline that passed makes it the last. */
		fs->rerun = true;
		fs->final |= final;
		return;
	}
	fs->final = final;
	fetch_release(req); /* windows of a run that parked went back then */
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
		for (int32_t j = 0; j < rt->Partitions_count; j++, slot++) {
			const struct kafka_FetchRequest_FetchPartition *fp = &ft->Partitions[j];
			fr_partition *out = &rt->Partitions[j];
			fetch_partition_reset(out, fp->Partition);
			slot->len = 0;
			slot->x = NULL;
			if (ts == NULL || fp->Partition < 0 || fp->Partition >= ts->n_parts) {
				out->ErrorCode = ts == NULL && req->api_version >= 13
							 ? KAFKA_UNKNOWN_TOPIC_ID
							 : KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
				tot.error = true;
				continue;
			}
			struct partition *p = &ts->parts[fp->Partition];
			if (p->owner == sh->id) {
				fetch_local(req, fs, p->log, ts->meta->id, fp, out, slot, &tot);
				continue;
			}
			slot->x = xfetch_new(req, p->owner, ts->meta->id, fp, false);
			if (slot->x == NULL) {
				out->ErrorCode = KAFKA_KAFKA_STORAGE_ERROR;
				tot.error = true;
			}
		}
	}
	fetch_remote(req, fs, &tot);
	if (req->remote_pending == 0)
		fetch_evaluate(req);
}

int handle_Fetch(struct request *req, struct kreader *r)
{
	struct shard *sh = req->sh;
	/* The request may outlive its frame (long poll): decode from a copy. */
	struct kreader rc;
	struct fetch_state *fs = karena_alloc(&req->arena, sizeof(*fs));
	if (fs == NULL || handler_reader_copy(req, r, &rc) != 0)
		return -1;
	if (kafka_FetchRequest_decode(&rc, req->api_version, &fs->body) != 0)
		return -1;
	if (fetch_prepare(req, fs) != 0)
		return -1;
	fs->req = req;
	req->fetch_state = fs;
	req->resume = fetch_evaluate; /* the last remote part is back */

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

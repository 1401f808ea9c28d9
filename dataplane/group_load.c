/*
 * group_load: rebuild a shard's groups from the __consumer_offsets
 * partitions it owns, at start-up.
 *
 * Each partition is read from its start offset to the high watermark it
 * had when loading began, offsets.load.buffer.size at a time, through the
 * log's asynchronous reads (plog_read_start: memory first, else io_uring),
 * one read per partition in flight and one buffer processed per partition
 * per loop turn, so the shard keeps serving its other partitions
 * meanwhile. Records are applied in offset order, so the latest record of
 * a key wins and a tombstone deletes: what compaction will keep is what
 * is loaded. Until its partition is loaded a group's requests get
 * COORDINATOR_LOAD_IN_PROGRESS (a Heartbeat: NONE, a SyncGroup:
 * REBALANCE_IN_PROGRESS, as on Kafka).
 *
 * A group with members in its last metadata record comes back Stable with
 * those members, their protocol's subscription and their assignment; each
 * member's session starts when loading ends, so members that survived the
 * restart keep their partitions if they heartbeat in time. A group with
 * only offsets comes back Empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "group_int.h"
#include "say.h"
#include "storage/compact_batch.h"
#include "storage/limits.h"

struct gload {
	struct plog_aread ar;
	struct group_coord *gc;
	int32_t partition;
	int64_t next, end;
	uint8_t *buf;
	size_t cap;
	bool in_flight;      /* an io_uring read is out */
	bool done_pending;   /* its answer came: process it this turn */
	int read_rc;
	struct compact_codec codec;
	uint64_t records, batches;
	int64_t started_ms;
};

static struct plog *load_log(struct group_coord *gc, int32_t p)
{
	struct partition *part = shard_partition_find(gc->sh, KSTR(OFFSETS_TOPIC_NAME), p);
	return part != NULL ? part->log : NULL;
}

/* ---- applying records ---- */

static struct group *load_group(struct group_coord *gc, struct kstr id, bool create)
{
	struct group *g = group_find(gc, id);
	if (g == NULL && create) {
		g = group_create(gc, id);
		if (g != NULL)
			g->loading = true;
	}
	return g;
}

static void load_offset(struct group_coord *gc, const struct offsets_key *k,
			const struct compact_rec *r)
{
	struct group *g = load_group(gc, k->group, !r->tombstone);
	if (g == NULL)
		return;
	if (r->tombstone) {
		struct goffset *o = group_offset_find(g, k->topic, k->partition);
		if (o != NULL)
			group_offset_delete(gc, g, o);
		return;
	}
	struct offset_commit_value v;
	if (offsets_value_commit_decode(r->value, (size_t)r->value_len, &v) != 0) {
		say_warn("loading group %.*s: unreadable offset record skipped", k->group.len,
			 k->group.ptr);
		return;
	}
	if (group_offset_put(gc, g, &v, k->topic, k->partition) == NULL)
		say_warn("loading group %.*s: out of memory for an offset", k->group.len,
			 k->group.ptr);
}

/* Forget what the group's metadata said (a tombstone, or a newer record
 * coming). */
static void load_group_reset(struct group_coord *gc, struct group *g)
{
	group_members_clear(gc, g, KAFKA_NOT_COORDINATOR);
	gstr_free(&g->protocol_type);
	gstr_free(&g->protocol);
	g->generation = 0;
	g->state = GROUP_EMPTY;
	g->state_ts = -1;
}

static void load_group_metadata(struct group_coord *gc, const struct offsets_key *k,
				const struct compact_rec *r)
{
	struct group *g = load_group(gc, k->group, !r->tombstone);
	if (g == NULL)
		return;
	if (g->type == GROUP_TYPE_CONSUMER) {
		if (r->tombstone)
			return; /* a classic group that became a consumer group */
		cgroup_free(gc, g); /* ... and this one became classic again */
	}
	load_group_reset(gc, g);
	if (r->tombstone)
		return;
	struct group_value v;
	if (offsets_value_group_decode(r->value, (size_t)r->value_len, &v) != 0) {
		say_warn("loading group %.*s: unreadable metadata record skipped", k->group.len,
			 k->group.ptr);
		return;
	}
	g->protocol_type = gstr_dup(v.protocol_type);
	g->protocol = gstr_dup(v.protocol);
	if (g->protocol_type.len < -1)
		g->protocol_type = KSTR_NULL;
	if (g->protocol.len < -1)
		g->protocol = KSTR_NULL;
	g->generation = v.generation;
	g->state_ts = v.state_timestamp;
	struct group_value_member m;
	int rc;
	while ((rc = offsets_value_group_next_member(&v, &m)) == 1)
		if (group_member_load(gc, g, &m, g->protocol) == NULL)
			break;
	if (rc < 0)
		say_warn("loading group %.*s: malformed member in its metadata record",
			 k->group.len, k->group.ptr);
	g->leader = group_member_find(g, v.leader);
	if (g->leader == NULL)
		g->leader = g->members_head;
}

static void load_record(struct gload *gl, const struct compact_rec *r)
{
	struct offsets_key k;
	if (r->key == NULL || offsets_key_decode(r->key, (size_t)r->key_len, &k) != 0)
		return; /* not a classic group record (or corrupt): skipped */
	gl->records++;
	if (k.version == OFFSETS_KEY_GROUP)
		load_group_metadata(gl->gc, &k, r);
	else if (k.version >= CGREC_GROUP && k.version <= CGREC_CURRENT)
		cgroup_load_record(gl->gc, &k, r->tombstone ? NULL : r->value,
				   r->tombstone ? 0 : r->value_len);
	else
		load_offset(gl->gc, &k, r);
}

/* Apply the batches in [p, p + len); returns the offset after the last. */
static int64_t load_batches(struct gload *gl, const uint8_t *p, size_t len, int64_t next)
{
	size_t off = 0;
	while (off < len) {
		struct batch_hdr h;
		int n = batch_validate(p + off, len - off, &h);
		if (n < 0)
			break; /* a partial batch at the end of a read window */
		next = h.base_offset + h.last_offset_delta + 1;
		gl->batches++;
		const uint8_t *recs;
		size_t recs_len;
		if (!(h.attributes & BATCH_ATTR_CONTROL) &&
		    compact_batch_records(&gl->codec, p + off, &h, &recs, &recs_len) == 1) {
			struct compact_rec_iter it;
			struct compact_rec r;
			compact_rec_iter_init(&it, recs, recs_len, h.records_count);
			while (compact_rec_next(&it, &r) == 1)
				load_record(gl, &r);
		}
		off += (size_t)n;
	}
	return next;
}

/* ---- the partition's read loop ---- */

static void load_finish(struct gload *gl, bool ok)
{
	struct group_coord *gc = gl->gc;
	int32_t p = gl->partition;
	int n_groups = 0;
	for (struct group *g = gc->groups_head, *next; g != NULL; g = next) {
		next = g->next;
		if (!g->loading || g->partition != p)
			continue;
		g->loading = false;
		n_groups++;
		if (g->type == GROUP_TYPE_CONSUMER) {
			if (!cgroup_loaded(gc, g))
				group_remove(gc, g, KAFKA_NONE);
		} else if (g->n_members > 0) {
			g->state = GROUP_STABLE;
			group_members_loaded(gc, g);
		} else if (g->n_offsets == 0 && g->generation == 0) {
			group_remove(gc, g, KAFKA_NONE); /* only tombstones were left */
		}
	}
	gc->parts[p].state = ok ? GPART_LOADED : GPART_FAILED;
	gc->parts[p].load = NULL;
	gc->n_loading--;
	if ((gl->records > 0 || !ok) && !gc->stopped)
		say_info("%s-%d: %s %llu records (%d groups) in %lld ms", OFFSETS_TOPIC_NAME, p,
			 ok ? "loaded" : "FAILED loading after", (unsigned long long)gl->records,
			 n_groups, (long long)(gc->sh->now_ms - gl->started_ms));
	group_mem(gc, -(int64_t)gl->cap);
	compact_codec_free(&gl->codec);
	free(gl->buf);
	free(gl);
}

/* What a read gave (rc as plog_read_start's, or the async read's error). */
static void load_consume(struct gload *gl, int rc)
{
	struct plog *log = load_log(gl->gc, gl->partition);
	if (rc == -ERANGE && log != NULL && gl->next < plog_start_offset(log)) {
		gl->next = plog_start_offset(log); /* retention moved the start */
		return;
	}
	if (rc < 0 || log == NULL) {
		say_error("%s-%d: cannot read it to load groups: %s", OFFSETS_TOPIC_NAME,
			  gl->partition, strerror(rc < 0 ? -rc : ENOENT));
		load_finish(gl, false);
		return;
	}
	const struct plog_read_result *res = &gl->ar.res;
	if (res->len == 0) {
		size_t need = (size_t)res->first_batch_bytes;
		if (need > gl->cap && need <= BATCH_BYTES_MAX) {
			uint8_t *nb = realloc(gl->buf, need);
			if (nb != NULL) {
				group_mem(gl->gc, (int64_t)(need - gl->cap));
				gl->buf = nb;
				gl->cap = need;
				return; /* read again, with room for the batch */
			}
		}
		if (gl->next < gl->end)
			say_warn("%s-%d: loading stopped at offset %lld of %lld (nothing to read)",
				 OFFSETS_TOPIC_NAME, gl->partition, (long long)gl->next,
				 (long long)gl->end);
		load_finish(gl, gl->next >= gl->end);
		return;
	}
	gl->next = load_batches(gl, gl->buf + gl->ar.skip, res->len, gl->next);
	if (gl->next >= gl->end)
		load_finish(gl, true);
}

static void load_read_done(struct plog_aread *r)
{
	struct gload *gl = r->arg;
	gl->in_flight = false;
	gl->done_pending = true;
	gl->read_rc = r->err;
}

/* One step: process an answer that came, or start the next read. */
static void load_step(struct gload *gl)
{
	if (gl->in_flight)
		return;
	if (gl->gc->stopped) {
		load_finish(gl, false); /* shutting down: nothing will be served */
		return;
	}
	if (gl->started_ms < 0)
		gl->started_ms = gl->gc->sh->now_ms;
	if (gl->done_pending) {
		gl->done_pending = false;
		load_consume(gl, gl->read_rc);
		return;
	}
	struct plog *log = load_log(gl->gc, gl->partition);
	if (log == NULL) {
		load_consume(gl, -ENOENT);
		return;
	}
	gl->ar.done = load_read_done;
	gl->ar.arg = gl;
	gl->ar.offset = gl->next;
	gl->ar.max_bytes = (int32_t)gl->cap;
	gl->ar.buf = gl->buf;
	gl->ar.cap = gl->cap;
	int rc = plog_read_start(log, &gl->ar);
	if (rc == 1) {
		gl->in_flight = true;
		return;
	}
	load_consume(gl, rc);
}

void group_load_start(struct group_coord *gc, int32_t p)
{
	struct plog *log = load_log(gc, p);
	int64_t start = plog_start_offset(log), end = plog_high_watermark(log);
	if (start >= end) {
		gc->parts[p].state = GPART_LOADED;
		return;
	}
	struct gload *gl = calloc(1, sizeof(*gl));
	size_t cap = (size_t)gc->cfg->offsets_load_buffer_size;
	uint8_t *buf = malloc(cap);
	if (gl == NULL || buf == NULL) {
		free(gl);
		free(buf);
		say_error("%s-%d: no memory to load its groups", OFFSETS_TOPIC_NAME, p);
		gc->parts[p].state = GPART_FAILED;
		return;
	}
	group_mem(gc, (int64_t)cap);
	gl->gc = gc;
	gl->partition = p;
	gl->next = start;
	gl->end = end;
	gl->buf = buf;
	gl->cap = cap;
	gl->started_ms = -1; /* set by the first step: the loop's clock runs then */
	gc->parts[p].state = GPART_LOADING;
	gc->parts[p].load = gl;
	gc->n_loading++;
}

void group_load_turn(struct group_coord *gc)
{
	for (int32_t p = 0; p < gc->n_partitions; p++) {
		struct gload *gl = gc->parts[p].load;
		if (gl != NULL)
			load_step(gl);
	}
}

void group_load_free(struct group_coord *gc)
{
	for (int32_t p = 0; p < gc->n_partitions; p++) {
		struct gload *gl = gc->parts[p].load;
		if (gl == NULL)
			continue;
		group_mem(gc, -(int64_t)gl->cap);
		gc->parts[p].load = NULL;
		compact_codec_free(&gl->codec);
		free(gl->buf);
		free(gl);
	}
}

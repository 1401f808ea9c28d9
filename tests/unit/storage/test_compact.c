/*
 * Compaction (storage/compact.h): latest record per key, tombstones kept
 * then dropped, offsets and batch offset ranges kept (gaps readable),
 * idempotent producers across compaction and restart, compressed batches
 * of every codec (filtered and compressed again with their own codec and
 * form, header fields kept; over the decompression limit or undecodable:
 * kept whole), merged segments, a crash at each step of the swap, and a
 * bounded offset map.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <isa-l/igzip_lib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/be.h"
#include "storage/codec.h"
#include "storage/compact.h"
#include "storage/compact_batch.h"
#include "storage/log.h"
#include "storage/segment.h"
#include "storage/uring_op.h"
#include "test_util.h"

#define SEG_BYTES 4096
#define MAP_BYTES (1 << 20)

struct fixture {
	char *dir;
	struct io_uring ring;
	struct cleaner *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	if (io_uring_queue_init(64, &f->ring, 0) != 0)
		return -1;
	struct cleaner_config cc = { .dedupe_buffer_bytes = MAP_BYTES, .slice_bytes = 8192 };
	int err;
	f->c = cleaner_new(&cc, &err);
	*state = f;
	return f->c == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	cleaner_free(f->c);
	io_uring_queue_exit(&f->ring);
	tu_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct log_config compact_config(int64_t segment_bytes)
{
	struct log_config cfg = tu_config(segment_bytes, 256, FLUSH_ALWAYS);
	cfg.compact = true;
	cfg.min_cleanable_dirty_ratio = 0.01;
	cfg.delete_retention_ms = 86400000;
	return cfg;
}

static struct plog *open_log(const char *dir, const struct log_config *cfg)
{
	int err = -1;
	struct plog *l = plog_open(dir, cfg, &err);
	assert_non_null(l);
	assert_int_equal(err, 0);
	return l;
}

/* ---- building batches with keys ---- */

struct rec {
	const char *key;   /* NULL: keyless */
	const char *value; /* NULL: tombstone */
};

struct batch_opts {
	int64_t producer_id;
	int16_t epoch;
	int32_t base_sequence;
	bool gzip;       /* compressed with isa-l here, independently of codec.c */
	int codec;       /* else: compressed with codec.c (CODEC_*) ... */
	unsigned form;   /* ... in this form */
	int64_t base_ts;
};

static const struct batch_opts plain = { .producer_id = -1, .epoch = -1, .base_sequence = -1,
					 .base_ts = 1000 };

static size_t put_bytes(uint8_t *p, const char *s)
{
	if (s == NULL)
		return tu_put_varint(p, -1);
	size_t n = tu_put_varint(p, (int64_t)strlen(s));
	memcpy(p + n, s, strlen(s));
	return n + strlen(s);
}

static size_t put_record(uint8_t *p, int32_t i, const struct rec *r)
{
	uint8_t body[512];
	size_t n = 0;
	body[n++] = 0;
	n += tu_put_varint(body + n, i);
	n += tu_put_varint(body + n, i);
	n += put_bytes(body + n, r->key);
	n += put_bytes(body + n, r->value);
	body[n++] = 0;
	size_t head = tu_put_varint(p, (int64_t)n);
	memcpy(p + head, body, n);
	return head + n;
}

static size_t gzip_into(uint8_t *out, size_t cap, const uint8_t *in, size_t len)
{
	static uint8_t level_buf[ISAL_DEF_LVL1_DEFAULT];
	struct isal_zstream z;
	isal_deflate_stateless_init(&z);
	z.level = 1;
	z.level_buf = level_buf;
	z.level_buf_size = sizeof(level_buf);
	z.gzip_flag = IGZIP_GZIP;
	z.end_of_stream = 1;
	z.next_in = (uint8_t *)in;
	z.avail_in = (uint32_t)len;
	z.next_out = out;
	z.avail_out = (uint32_t)cap;
	assert_int_equal(isal_deflate_stateless(&z), COMP_OK);
	return z.total_out;
}

/* A v2 batch of n records (offset and timestamp deltas 0..n-1). */
static size_t make_batch(uint8_t *buf, size_t cap, const struct rec *recs, int n,
			 const struct batch_opts *o)
{
	uint8_t plain_recs[16384];
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += put_record(plain_recs + len, i, &recs[i]);
	assert_true(len < sizeof(plain_recs));
	size_t pos = BATCH_HEADER_BYTES;
	int codec = o->gzip ? CODEC_GZIP : o->codec;
	if (o->gzip) {
		pos += gzip_into(buf + pos, (uint32_t)(cap - pos), plain_recs, len);
	} else if (codec != CODEC_NONE) {
		struct codec_ctx cx = { 0 };
		int64_t z = codec_compress(&cx, codec, o->form, plain_recs, len, buf + pos, cap - pos);
		codec_ctx_free(&cx);
		assert_true(z > 0);
		pos += (size_t)z;
	} else {
		assert_true(pos + len <= cap);
		memcpy(buf + pos, plain_recs, len);
		pos += len;
	}
	memset(buf, 0, BATCH_HEADER_BYTES);
	be32_store(buf + 8, (uint32_t)(pos - BATCH_LOG_OVERHEAD));
	buf[16] = 2;
	be16_store(buf + 21, (uint16_t)codec);
	be32_store(buf + 23, (uint32_t)(n - 1));
	be64_store(buf + 27, (uint64_t)o->base_ts);
	be64_store(buf + 35, (uint64_t)(o->base_ts + n - 1));
	be64_store(buf + 43, (uint64_t)o->producer_id);
	be16_store(buf + 51, (uint16_t)o->epoch);
	be32_store(buf + 53, (uint32_t)o->base_sequence);
	be32_store(buf + 57, (uint32_t)n);
	be32_store(buf + 17, batch_crc32c(buf + 21, pos - 21));
	return pos;
}

static int64_t append(struct plog *l, const struct rec *recs, int n, const struct batch_opts *o)
{
	uint8_t buf[32768];
	size_t len = make_batch(buf, sizeof(buf), recs, n, o);
	struct plog_append_result res;
	int rc = tu_append(l, buf, len, &res);
	assert_true(rc == 0 || rc == PLOG_DUPLICATE);
	return res.base_offset;
}

static int64_t put1(struct plog *l, const char *key, const char *value)
{
	struct rec r = { key, value };
	return append(l, &r, 1, &plain);
}

/* One cleaner step, then what a shard loop does after it: submit the
 * SQEs it queued (the swap's and checkpoint's fsyncs) and dispatch their
 * completions, waiting for them when the round waits. */
static int step(struct fixture *f, struct cleaner *c, struct plog *l)
{
	uint64_t io;
	/* plog_flush gives a log without a backend its ring. */
	assert_true(plog_flush(l, &f->ring, 0) >= 0);
	int rc = cleaner_step(c, l, wall_ms(), &io);
	assert_true(io_uring_submit(&f->ring) >= 0);
	struct io_uring_cqe *cqe;
	while (plog_compact_io_pending(l) || io_uring_peek_cqe(&f->ring, &cqe) == 0) {
		assert_int_equal(io_uring_wait_cqe(&f->ring, &cqe), 0);
		uring_op_dispatch(cqe);
		io_uring_cqe_seen(&f->ring, cqe);
	}
	return rc;
}

/* Run cleaner steps until the round ends; returns the steps taken. */
static int clean_round(struct fixture *f, struct plog *l)
{
	int rc, steps = 0;
	while ((rc = step(f, f->c, l)) == 1)
		assert_true(++steps < 1000000);
	assert_int_equal(rc, 0);
	return steps;
}

/* ---- reading back ---- */

struct got {
	int64_t offset;
	char key[64];
	char value[64];
	bool tombstone;
};

struct readback {
	struct got recs[4096];
	int n;
	int64_t batch_base[4096], batch_last[4096];
	int32_t batch_count[4096];
	int16_t batch_attr[4096];
	int64_t batch_pid[4096];
	int16_t batch_epoch[4096];
	int32_t batch_seq[4096];
	unsigned batch_form[4096]; /* CODEC_FORM_* its records came in */
	int nb;
};

static void read_all(struct plog *l, int64_t from, struct readback *rb)
{
	static uint8_t buf[1 << 20];
	struct compact_codec cc = { 0 };
	memset(rb, 0, sizeof(*rb));
	int64_t off = from;
	while (off < plog_high_watermark(l)) {
		struct plog_read_result res;
		assert_int_equal(plog_read(l, off, 1 << 20, buf, sizeof(buf), &res), 0);
		assert_true(res.len > 0);
		size_t pos = 0;
		while (pos < res.len) {
			struct batch_hdr h;
			int size = batch_validate(buf + pos, res.len - pos, &h);
			assert_true(size > 0);
			assert_true(h.base_offset + h.last_offset_delta >= off);
			rb->batch_base[rb->nb] = h.base_offset;
			rb->batch_last[rb->nb] = h.base_offset + h.last_offset_delta;
			rb->batch_count[rb->nb] = h.records_count;
			rb->batch_attr[rb->nb] = h.attributes;
			rb->batch_epoch[rb->nb] = h.producer_epoch;
			rb->batch_seq[rb->nb] = h.base_sequence;
			rb->batch_pid[rb->nb] = h.producer_id;
			const uint8_t *recs;
			size_t len;
			assert_int_equal(compact_batch_records(&cc, buf + pos, &h, &recs, &len), 1);
			rb->batch_form[rb->nb++] = batch_compression(&h) != CODEC_NONE ? cc.form : 0;
			struct compact_rec_iter it;
			struct compact_rec r;
			compact_rec_iter_init(&it, recs, len, h.records_count);
			while (compact_rec_next(&it, &r) == 1) {
				struct got *g = &rb->recs[rb->n++];
				g->offset = h.base_offset + r.offset_delta;
				if (r.key != NULL)
					snprintf(g->key, sizeof(g->key), "%.*s", r.key_len, r.key);
				g->tombstone = r.tombstone;
				if (!r.tombstone)
					snprintf(g->value, sizeof(g->value), "%.*s", r.value_len,
						 r.value);
			}
			off = h.base_offset + h.last_offset_delta + 1;
			pos += (size_t)size;
		}
	}
	compact_codec_free(&cc);
}

/* The latest (offset, value) per key as written, for comparison. */
struct model {
	char key[32][16];
	char value[32][64];
	bool tomb[32];
	int64_t offset[32];
	int n;
};

static void model_put(struct model *m, const char *k, const char *v, int64_t off)
{
	int i;
	for (i = 0; i < m->n && strcmp(m->key[i], k) != 0; i++)
		;
	if (i == 32)
		return; /* only the first 32 keys are modelled */
	if (i == m->n) {
		m->n++;
		snprintf(m->key[i], sizeof(m->key[i]), "%s", k);
	}
	snprintf(m->value[i], sizeof(m->value[i]), "%s", v ? v : "");
	m->tomb[i] = v == NULL;
	m->offset[i] = off;
}

static int64_t segment_count(const char *dir)
{
	return tu_count_files(dir, ".log");
}

/* n updates cycling over k keys, one record per batch, until the log has
 * at least segs sealed segments; each put is recorded in m. */
static void fill(struct plog *l, struct model *m, int keys, int segs, const char *dir,
		 struct io_uring *ring, int *seq)
{
	(void)dir;
	while (plog_stats(l)->rolls < (uint64_t)segs) {
		char k[16], v[64];
		snprintf(k, sizeof(k), "key%d", *seq % keys);
		snprintf(v, sizeof(v), "value-%d-padding-padding-padding", *seq);
		model_put(m, k, v, put1(l, k, v));
		(*seq)++;
		tu_drive(ring, l, 0);
	}
}

/* Compare the log after a round (after) with before it: below clean_end,
 * exactly the last record of each key there (tombstones as allowed); from
 * clean_end on, everything as it was. Offsets only grow. */
static void check_cleaned(const struct readback *before, const struct readback *after,
			  int64_t clean_end, bool tombstones_kept)
{
	int j = 0;
	for (int i = 0; i < before->n; i++) {
		const struct got *g = &before->recs[i];
		bool last = true;
		for (int k = i + 1; k < before->n && before->recs[k].offset < clean_end; k++)
			if (strcmp(before->recs[k].key, g->key) == 0)
				last = false;
		bool want = g->offset >= clean_end ||
			    (last && g->key[0] != 0 && (!g->tombstone || tombstones_kept));
		bool have = j < after->n && after->recs[j].offset == g->offset;
		if (want != have)
			print_message("record %s at %lld: want %d have %d (clean end %lld)\n",
				      g->key, (long long)g->offset, want, have,
				      (long long)clean_end);
		assert_int_equal(want, have);
		if (have) {
			assert_string_equal(after->recs[j].key, g->key);
			assert_string_equal(after->recs[j].value, g->value);
			assert_int_equal(after->recs[j].tombstone, g->tombstone);
			j++;
		}
	}
	assert_int_equal(j, after->n);
}

/* One round, checked against the log as it was; returns the readback
 * after it (the caller frees it). */
static struct readback *round_checked(struct fixture *f, struct plog *l, bool tombstones_kept)
{
	struct plog_cleanable pc;
	assert_true(plog_compact_plan(l, wall_ms(), &pc));
	struct readback *before = malloc(sizeof(*before)), *after = malloc(sizeof(*after));
	read_all(l, 0, before);
	clean_round(f, l);
	read_all(l, 0, after);
	check_cleaned(before, after, pc.first_uncleanable, tombstones_kept);
	free(before);
	return after;
}

static void latest_per_key(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 4, 6, f->dir, &f->ring, &seq);
	int64_t hw = plog_high_watermark(l);
	struct plog_cleanable pc;
	assert_true(plog_compact_plan(l, wall_ms(), &pc));
	assert_int_equal(pc.first_dirty, 0);
	assert_true(pc.dirty_ratio > 0.99);
	struct readback *rb = round_checked(f, l, true);
	assert_true(rb->n < hw / 2);
	const struct plog_stats *st = plog_stats(l);
	assert_int_equal(st->compact_rounds, 1);
	assert_true(st->segments_cleaned >= 6);
	assert_true(st->compact_records_removed > 0);
	assert_true(st->compact_bytes_after < st->compact_bytes_before / 2);
	assert_int_equal(plog_high_watermark(l), hw);
	assert_int_equal(plog_start_offset(l), 0);
	/* The checkpoint is where the next round starts: nothing is due. */
	assert_false(plog_compact_plan(l, wall_ms(), &pc));
	assert_int_equal(pc.first_dirty, pc.first_uncleanable);
	plog_close(l);
	/* After a restart: same records, same checkpoint. */
	l = open_log(f->dir, &cfg);
	struct readback *rb2 = malloc(sizeof(*rb2));
	read_all(l, 0, rb2);
	assert_int_equal(rb2->n, rb->n);
	assert_false(plog_compact_plan(l, wall_ms(), &pc));
	plog_close(l);
	free(rb);
	free(rb2);
}

/* Batches keep their base and last offsets even when their last records
 * go; a fetch at an offset that went returns the next batch. */
static void offsets_and_gaps(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct model m = { 0 };
	/* Batches of 3: a (kept), b, c (replaced later by the filler). */
	int64_t bases[8];
	for (int i = 0; i < 8; i++) {
		char a[16];
		snprintf(a, sizeof(a), "a%d", i);
		struct rec r[3] = { { a, "keep" }, { "b", "old" }, { "c", "old" } };
		bases[i] = append(l, r, 3, &plain);
		model_put(&m, a, "keep", bases[i]);
	}
	tu_drive(&f->ring, l, 0);
	int seq = 0;
	fill(l, &m, 2, 4, f->dir, &f->ring, &seq); /* key0, key1 */
	put1(l, "b", "new");
	put1(l, "c", "new");
	int64_t c_new = put1(l, "c", "newest");
	model_put(&m, "b", "new", c_new - 2);
	model_put(&m, "c", "newest", c_new);
	fill(l, &m, 2, 6, f->dir, &f->ring, &seq);
	struct readback *rb = round_checked(f, l, true);
	for (int i = 0; i < 8; i++) {
		int j;
		for (j = 0; j < rb->nb && rb->batch_base[j] != bases[i]; j++)
			;
		assert_true(j < rb->nb);
		assert_int_equal(rb->batch_last[j], bases[i] + 2);
		assert_int_equal(rb->batch_count[j], 1);
	}
	/* Reading at an offset compacted away gives the next batch at or
	 * after it; every offset below the HW reads. */
	static uint8_t buf[1 << 16];
	for (int64_t o = 0; o < plog_high_watermark(l); o++) {
		struct plog_read_result res;
		assert_int_equal(plog_read(l, o, 100, buf, sizeof(buf), &res), 0);
		assert_true(res.len > 0);
		struct batch_hdr h;
		assert_true(batch_validate(buf, res.len, &h) > 0);
		assert_true(h.base_offset + h.last_offset_delta >= o);
	}
	/* Timestamp lookups still find records across the gaps. */
	int64_t off, ts;
	assert_int_equal(plog_offset_for_timestamp(l, 0, &off, &ts), 0);
	assert_int_equal(off, rb->recs[0].offset);
	plog_close(l);
	free(rb);
}

static void set_mtime(const char *dir, int64_t base, int64_t ms)
{
	char path[4096];
	tu_seg_path(path, sizeof(path), dir, base, ".log");
	struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT },
				  { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* Set every sealed segment's file time: old, but the last one now. */
static void age_segments(const char *dir, int64_t old_ms, int64_t keep_last)
{
	int64_t *bases;
	int n = segment_count(dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	bases = calloc((size_t)n, sizeof(*bases));
	int k = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len == 24 && strcmp(de->d_name + 20, ".log") == 0)
			bases[k++] = strtoll(de->d_name, NULL, 10);
	}
	closedir(d);
	for (int i = 0; i < k; i++)
		if (bases[i] != keep_last)
			set_mtime(dir, bases[i], old_ms);
	free(bases);
}

static bool has_tombstone(const struct readback *rb, const char *key)
{
	for (int j = 0; j < rb->n; j++)
		if (strcmp(rb->recs[j].key, key) == 0 && rb->recs[j].tombstone)
			return true;
	return false;
}

/* The base of the newest sealed segment (the second largest). */
static int64_t last_sealed_base(const char *dir)
{
	int64_t *all = NULL, best = -1;
	int n = segment_dir_offsets(dir, ".log", &all);
	if (n >= 2)
		best = all[n - 2];
	free(all);
	return best;
}

/* Kafka's rule: a segment's tombstones stay until the newest segment of
 * the clean section is delete.retention.ms younger than it. */
static void tombstones_kept_then_dropped(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	cfg.delete_retention_ms = 200000;
	struct plog *l = open_log(f->dir, &cfg);
	struct model m = { 0 };
	put1(l, "gone", "v");
	put1(l, "gone", NULL);
	int seq = 0;
	fill(l, &m, 1000, 3, f->dir, &f->ring, &seq); /* unique keys: no shrinking */
	clean_round(f, l);
	struct readback *rb = malloc(sizeof(*rb));
	read_all(l, 0, rb);
	assert_true(has_tombstone(rb, "gone")); /* no clean section yet: kept */

	/* The tombstone's segment is 100 s older than the newest clean one,
	 * which is less than delete.retention.ms: kept. */
	int64_t now = wall_ms();
	age_segments(f->dir, now - 100000, last_sealed_base(f->dir));
	fill(l, &m, 1000, 5, f->dir, &f->ring, &seq);
	clean_round(f, l);
	read_all(l, 0, rb);
	assert_true(has_tombstone(rb, "gone"));
	assert_int_equal(plog_stats(l)->compact_rounds, 2);
	plog_close(l);

	/* With delete.retention.ms below those 100 s: dropped, and the
	 * value before it too. */
	cfg.delete_retention_ms = 50000;
	l = open_log(f->dir, &cfg);
	age_segments(f->dir, now - 100000, last_sealed_base(f->dir));
	fill(l, &m, 1000, 7, f->dir, &f->ring, &seq);
	clean_round(f, l);
	read_all(l, 0, rb);
	assert_false(has_tombstone(rb, "gone"));
	for (int j = 0; j < rb->n; j++)
		assert_string_not_equal(rb->recs[j].key, "gone");
	plog_close(l);
	free(rb);
}

/* An idempotent producer whose every record was replaced keeps its last
 * batch (empty), and goes on after compaction and a restart. */
static void producer_state_survives(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct batch_opts o = { .producer_id = 4242, .epoch = 3, .base_sequence = 0,
				.base_ts = 1000 };
	int64_t last_base = -1;
	for (int i = 0; i < 4; i++) {
		struct rec r[2] = { { "p1", "idem" }, { "p2", "idem" } };
		o.base_sequence = i * 2;
		last_base = append(l, r, 2, &o);
	}
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 4, 3, f->dir, &f->ring, &seq);
	put1(l, "p1", "replaced");
	put1(l, "p2", "replaced");
	fill(l, &m, 4, 5, f->dir, &f->ring, &seq);
	clean_round(f, l);
	struct readback *rb = malloc(sizeof(*rb));
	read_all(l, 0, rb);
	int kept = 0;
	for (int j = 0; j < rb->nb; j++) {
		if (rb->batch_pid[j] != 4242)
			continue;
		kept++;
		assert_int_equal(rb->batch_base[j], last_base);
		assert_int_equal(rb->batch_last[j], last_base + 1);
		assert_int_equal(rb->batch_count[j], 0);
	}
	assert_int_equal(kept, 1); /* the earlier batches went */
	plog_close(l);
	/* Forget the snapshots: the producer state comes from the batches
	 * alone, and the kept one carries the last sequence. */
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -f %s/*.snapshot", f->dir);
	assert_int_equal(system(cmd), 0);
	l = open_log(f->dir, &cfg);
	struct rec r[2] = { { "p1", "after" }, { "p2", "after" } };
	uint8_t buf[4096];
	struct plog_append_result res;
	o.base_sequence = 6; /* a retry of the last batch: a duplicate */
	size_t len = make_batch(buf, sizeof(buf), r, 2, &o);
	assert_int_equal(tu_append(l, buf, len, &res), PLOG_DUPLICATE);
	assert_int_equal(res.base_offset, last_base);
	o.base_sequence = 10; /* a gap: out of order */
	len = make_batch(buf, sizeof(buf), r, 2, &o);
	assert_int_equal(tu_append(l, buf, len, &res), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	o.base_sequence = 8; /* the next one */
	len = make_batch(buf, sizeof(buf), r, 2, &o);
	assert_int_equal(tu_append(l, buf, len, &res), 0);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
	free(rb);
}

/* gzip batches are inflated, filtered and deflated again. */
static void gzip_batches(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct batch_opts o = plain;
	o.gzip = true;
	struct model m = { 0 };
	for (int i = 0; i < 40; i++) {
		char v[3][32];
		struct rec r[3];
		for (int j = 0; j < 3; j++) {
			snprintf(v[j], sizeof(v[j]), "gz-%d-%d", i, j);
			r[j] = (struct rec){ j == 2 ? "gz-unique" : (j ? "gzb" : "gza"), v[j] };
		}
		char uk[16];
		snprintf(uk, sizeof(uk), "u%d", i);
		r[2].key = uk;
		int64_t base = append(l, r, 3, &o);
		for (int j = 0; j < 3; j++)
			model_put(&m, r[j].key, r[j].value, base + j);
		tu_drive(&f->ring, l, 0);
	}
	int seq = 0;
	fill(l, &m, 2, plog_stats(l)->rolls + 2, f->dir, &f->ring, &seq);
	struct readback *rb = round_checked(f, l, true); /* CRCs checked, inflated */
	assert_true(plog_stats(l)->compact_records_removed >= 70);
	int gz = 0;
	for (int j = 0; j < rb->nb; j++)
		gz += (rb->batch_attr[j] & 7) == 1;
	assert_true(gz >= 30); /* still gzip */
	plog_close(l);
	free(rb);
}

/* Batches of one codec (and form) from an idempotent producer: the
 * records a later offset of their key replaces go, what stays is
 * compressed again with the batch's own codec in the form it came in, and
 * the batch keeps its base offset, last offset delta, producer id, epoch
 * and base sequence. */
static void codec_batches(struct fixture *f, int codec, unsigned form)
{
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct batch_opts o = plain;
	o.codec = codec;
	o.form = form;
	o.producer_id = 77;
	o.epoch = 2;
	struct model m = { 0 };
	int64_t bases[40];
	for (int i = 0; i < 40; i++) {
		char v[3][32], uk[16];
		for (int j = 0; j < 3; j++)
			snprintf(v[j], sizeof(v[j]), "%s-%d-%d", codec_name(codec), i, j);
		snprintf(uk, sizeof(uk), "u%d", i);
		struct rec r[3] = { { "ca", v[0] }, { "cb", v[1] }, { uk, v[2] } };
		o.base_sequence = 3 * i;
		bases[i] = append(l, r, 3, &o);
		for (int j = 0; j < 3; j++)
			model_put(&m, r[j].key, r[j].value, bases[i] + j);
		tu_drive(&f->ring, l, 0);
	}
	int seq = 0;
	fill(l, &m, 2, plog_stats(l)->rolls + 2, f->dir, &f->ring, &seq);
	struct readback *rb = round_checked(f, l, true); /* CRCs checked, decompressed */
	assert_true(plog_stats(l)->compact_records_removed >= 78);
	int rewritten = 0;
	for (int j = 0; j < rb->nb; j++) {
		if (rb->batch_pid[j] != 77)
			continue;
		int i = 0;
		while (i < 40 && bases[i] != rb->batch_base[j])
			i++;
		assert_true(i < 40);
		assert_int_equal(rb->batch_last[j], bases[i] + 2);
		assert_int_equal(rb->batch_epoch[j], 2);
		assert_int_equal(rb->batch_seq[j], 3 * i);
		assert_int_equal(rb->batch_count[j], i == 39 ? 3 : 1);
		assert_int_equal(rb->batch_attr[j] & 7, codec);
		assert_int_equal(rb->batch_form[j], form);
		rewritten += i < 39;
	}
	assert_int_equal(rewritten, 39);
	plog_close(l);
	free(rb);
}

static void snappy_xerial_batches(void **state)
{
	codec_batches(*state, CODEC_SNAPPY, 0);
}

static void snappy_raw_batches(void **state)
{
	codec_batches(*state, CODEC_SNAPPY, CODEC_FORM_SNAPPY_RAW);
}

static void lz4_batches(void **state)
{
	codec_batches(*state, CODEC_LZ4, 0);
}

static void zstd_batches(void **state)
{
	codec_batches(*state, CODEC_ZSTD, 0);
}

static void gzip_codec_batches(void **state)
{
	codec_batches(*state, CODEC_GZIP, 0);
}

/* What Produce asks of a batch for a compacted topic, in every codec:
 * every record keyed (1), one without a key (0), records that do not
 * decode (-1: the caller decides). */
static void all_keyed_every_codec(void **state)
{
	(void)state;
	static const struct {
		int codec;
		unsigned form;
	} v[] = { { CODEC_NONE, 0 }, { CODEC_GZIP, 0 }, { CODEC_SNAPPY, 0 },
		  { CODEC_SNAPPY, CODEC_FORM_SNAPPY_RAW }, { CODEC_LZ4, 0 }, { CODEC_ZSTD, 0 } };
	struct rec keyed[2] = { { "a", "1" }, { "b", "2" } }, keyless[2] = { { "a", "1" }, { NULL, "2" } };
	uint8_t buf[4096];
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		struct batch_opts o = plain;
		o.codec = v[i].codec;
		o.form = v[i].form;
		struct batch_hdr h;
		size_t len = make_batch(buf, sizeof(buf), keyed, 2, &o);
		assert_int_equal(batch_validate(buf, len, &h), (int)len);
		assert_int_equal(compact_batch_all_keyed(buf, &h), 1);
		len = make_batch(buf, sizeof(buf), keyless, 2, &o);
		assert_int_equal(batch_validate(buf, len, &h), (int)len);
		assert_int_equal(compact_batch_all_keyed(buf, &h), 0);
		if (v[i].codec == CODEC_NONE)
			continue;
		/* The compressed bytes cut short (the batch's own length and
		 * CRC made to match). */
		len -= 3;
		be32_store(buf + 8, (uint32_t)(len - BATCH_LOG_OVERHEAD));
		be32_store(buf + BATCH_CRC_OFFSET, batch_crc32c(buf + BATCH_ATTRIBUTES_OFFSET,
								len - BATCH_ATTRIBUTES_OFFSET));
		assert_int_equal(batch_validate(buf, len, &h), (int)len);
		assert_int_equal(compact_batch_all_keyed(buf, &h), -1);
	}
}

/* The batch at off, as the log holds it, is want (len bytes) as it was
 * appended: at that base offset, the bytes from the magic on (the log
 * stamped the leader epoch before them) the same. */
static void batch_is(struct plog *l, int64_t off, const uint8_t *want, size_t len)
{
	static uint8_t buf[1 << 16];
	struct plog_read_result res;
	assert_int_equal(plog_read(l, off, sizeof(buf), buf, sizeof(buf), &res), 0);
	assert_true(res.len >= len);
	assert_int_equal((int64_t)be64_load(buf), off);
	assert_int_equal(be32_load(buf + 8), be32_load(want + 8));
	assert_memory_equal(buf + BATCH_MAGIC_OFFSET, want + BATCH_MAGIC_OFFSET,
			    len - BATCH_MAGIC_OFFSET);
}

/* A compressed batch that decompresses past the cleaner's limit, and one
 * whose records do not decode (its CRC is right: what a buggy producer
 * could send), are kept byte for byte; the round around them goes on. */
static void undecodable_batches_kept_whole(void **state)
{
	struct fixture *f = *state;
	struct cleaner_config ccfg = { .dedupe_buffer_bytes = MAP_BYTES, .slice_bytes = 8192,
				       .decompress_bytes_max = 64 };
	int err;
	struct cleaner *c = cleaner_new(&ccfg, &err);
	assert_non_null(c);
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct batch_opts o = plain;
	o.codec = CODEC_ZSTD;
	struct rec r[3] = { { "ca", "big-value-0-padding-padding" },
			    { "cb", "big-value-1-padding-padding" },
			    { "cc", "big-value-2-padding-padding" } };
	static uint8_t big[4096], junk[4096];
	size_t big_len = make_batch(big, sizeof(big), r, 3, &o);
	struct plog_append_result res;
	assert_int_equal(tu_append(l, big, big_len, &res), 0);
	int64_t big_off = res.base_offset;
	/* lz4 by its attributes, not by its bytes. */
	o.codec = CODEC_NONE;
	size_t junk_len = make_batch(junk, sizeof(junk), r, 2, &o);
	be16_store(junk + BATCH_ATTRIBUTES_OFFSET, CODEC_LZ4);
	be32_store(junk + BATCH_CRC_OFFSET,
		   batch_crc32c(junk + BATCH_ATTRIBUTES_OFFSET, junk_len - BATCH_ATTRIBUTES_OFFSET));
	assert_int_equal(tu_append(l, junk, junk_len, &res), 0);
	int64_t junk_off = res.base_offset;
	tu_drive(&f->ring, l, 0);
	/* Newer values of the same keys, and segments to clean. */
	put1(l, "ca", "new");
	put1(l, "cb", "new");
	put1(l, "cc", "new");
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 2, plog_stats(l)->rolls + 3, f->dir, &f->ring, &seq);
	assert_true(plog_compact_plan(l, wall_ms(), NULL));
	int rc, steps = 0;
	while ((rc = step(f, c, l)) == 1)
		assert_true(++steps < 100000);
	assert_int_equal(rc, 0);
	assert_true(plog_stats(l)->compact_records_removed > 0);
	assert_int_equal(plog_stats(l)->compact_aborts, 0);
	batch_is(l, big_off, big, big_len);
	batch_is(l, junk_off, junk, junk_len);
	plog_close(l);
	cleaner_free(c);
}

/* Many small segments of one key each: they merge into fewer. */
/* Only the active segment's index entries are in memory: every sealed
 * segment's, cleaned ones too, are mapped from their files. */
static void expect_indexes_mapped(const struct plog *l, const char *dir)
{
	int64_t *bases = NULL;
	int n = segment_dir_offsets(dir, ".log", &bases);
	assert_true(n > 1);
	uint64_t total = 0, active = 0, mem = 0, mapped = 0;
	for (int i = 0; i < n; i++) {
		static const char *const exts[] = { ".index", ".timeindex" };
		for (int e = 0; e < 2; e++) {
			char path[4096];
			tu_seg_path(path, sizeof(path), dir, bases[i], exts[e]);
			uint64_t size = (uint64_t)tu_file_size(path);
			total += size;
			active += i == n - 1 ? size : 0;
		}
	}
	free(bases);
	plog_index_bytes(l, &mem, &mapped);
	assert_int_equal(mem, active);
	assert_int_equal(mapped, total - active);
	assert_true(mapped > 0);
}

static void small_segments_merge(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 1, 12, f->dir, &f->ring, &seq);
	int before = (int)segment_count(f->dir);
	struct readback *rb = round_checked(f, l, true);
	/* Groups are chosen by the segments' sizes before cleaning (as
	 * Kafka's are): full ones stay apart in this round ... */
	assert_int_equal(segment_count(f->dir), before);
	free(rb);
	fill(l, &m, 1, 14, f->dir, &f->ring, &seq);
	/* ... and the small segments they became merge in the next. */
	rb = round_checked(f, l, true);
	int after = (int)segment_count(f->dir);
	assert_true(before >= 13);
	assert_true(after <= 4);
	assert_int_equal(tu_count_files(f->dir, ".index"), after);
	assert_int_equal(tu_count_files(f->dir, ".cleaned"), 0);
	assert_int_equal(tu_count_files(f->dir, ".swap"), 0);
	expect_indexes_mapped(l, f->dir);
	plog_close(l);
	free(rb);
}

/* ---- crashes during a swap ---- */

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(in >= 0 && out >= 0);
	char buf[65536];
	ssize_t r;
	while ((r = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)r), r);
	close(in);
	close(out);
}

static void copy_dir(const char *from, const char *to)
{
	mkdir(to, 0755);
	DIR *d = opendir(from);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && (de->d_name[1] == 0 || de->d_name[1] == '.'))
			continue;
		char a[4096], b[4096];
		snprintf(a, sizeof(a), "%s/%s", from, de->d_name);
		snprintf(b, sizeof(b), "%s/%s", to, de->d_name);
		copy_file(a, b);
	}
	closedir(d);
}

static void seg_file(char *buf, size_t cap, const char *dir, int64_t base, const char *ext,
		     const char *suffix)
{
	snprintf(buf, cap, "%s/%020" PRId64 "%s%s", dir, base, ext, suffix);
}

/* The compacted segment at base in done/ placed in crash/ under suffix
 * (for the extensions asked). */
static void plant(const char *done, const char *crash, int64_t base, const char *suffix,
		  bool log, bool idx)
{
	static const char *const exts[] = { ".log", ".index", ".timeindex" };
	for (int i = 0; i < 3; i++) {
		if ((i == 0 && !log) || (i > 0 && !idx))
			continue;
		char a[4096], b[4096];
		seg_file(a, sizeof(a), done, base, exts[i], "");
		seg_file(b, sizeof(b), crash, base, exts[i], suffix);
		copy_file(a, b);
	}
}

static void same_records(const struct readback *a, const struct readback *b)
{
	assert_int_equal(a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		assert_int_equal(a->recs[i].offset, b->recs[i].offset);
		assert_string_equal(a->recs[i].key, b->recs[i].key);
		assert_string_equal(a->recs[i].value, b->recs[i].value);
	}
}

static void crash_at_each_swap_step(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	char orig[4200], done[4200];
	snprintf(orig, sizeof(orig), "%s/orig", f->dir);
	snprintf(done, sizeof(done), "%s/done", f->dir);
	struct plog *l = open_log(orig, &cfg);
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 2, 8, orig, &f->ring, &seq);
	/* A first round shrinks the segments, so that the next merges them:
	 * a swap of one group of several segments. */
	clean_round(f, l);
	fill(l, &m, 2, 10, orig, &f->ring, &seq);
	plog_close(l);
	copy_dir(orig, done);
	struct readback *want_orig = malloc(sizeof(*want_orig));
	struct readback *want_done = malloc(sizeof(*want_done));
	struct readback *got = malloc(sizeof(*got));
	l = open_log(orig, &cfg);
	read_all(l, 0, want_orig);
	plog_close(l);
	l = open_log(done, &cfg);
	clean_round(f, l);
	read_all(l, 0, want_done);
	assert_true(want_done->n < want_orig->n);
	plog_close(l);
	/* The first group became segment 0; find which old segments it
	 * covered: those below the next segment of done/. */
	int64_t *ob, *db;
	int on = segment_dir_offsets(orig, ".log", &ob),
	    dn = segment_dir_offsets(done, ".log", &db);
	assert_true(dn >= 2 && on > dn);
	int64_t group_end = db[1];

	struct step {
		const char *what;
		const char *log_suffix;   /* where the cleaned .log is, or NULL */
		const char *idx_suffix;   /* where the cleaned indexes are, or NULL */
		bool old_emptied;         /* the group's old .log files shrunk to 0 */
		bool old_removed;         /* old segments after the first already gone */
		bool committed;
	} steps[] = {
		{ "cleaned files only", ".cleaned", ".cleaned", false, false, false },
		{ "indexes renamed to .swap", ".cleaned", ".swap", false, false, false },
		{ "log renamed to .swap (commit)", ".swap", ".swap", false, false, true },
		{ "old segments emptied", ".swap", ".swap", true, false, true },
		{ "old segments removed", ".swap", ".swap", true, true, true },
		{ "indexes in place", ".swap", "", true, true, true },
	};
	/* A committed swap of the first group: done's records below its end,
	 * orig's after it (the later groups' swaps never happened). */
	struct readback *want_swapped = malloc(sizeof(*want_swapped));
	memset(want_swapped, 0, sizeof(*want_swapped));
	for (int i = 0; i < want_done->n && want_done->recs[i].offset < group_end; i++)
		want_swapped->recs[want_swapped->n++] = want_done->recs[i];
	for (int i = 0; i < want_orig->n; i++)
		if (want_orig->recs[i].offset >= group_end)
			want_swapped->recs[want_swapped->n++] = want_orig->recs[i];
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		char crash[4300];
		snprintf(crash, sizeof(crash), "%s/crash%zu", f->dir, s);
		copy_dir(orig, crash);
		plant(done, crash, 0, steps[s].log_suffix, true, false);
		plant(done, crash, 0, steps[s].idx_suffix, false, true);
		if (steps[s].old_emptied) {
			for (int i = 0; i < on && ob[i] < group_end; i++) {
				char p[4400];
				seg_file(p, sizeof(p), crash, ob[i], ".log", "");
				assert_int_equal(truncate(p, 0), 0);
			}
		}
		if (steps[s].old_removed) {
			for (int i = 1; i < on && ob[i] < group_end; i++) {
				char p[4400];
				seg_file(p, sizeof(p), crash, ob[i], ".log", "");
				unlink(p);
			}
		}
		l = open_log(crash, &cfg);
		read_all(l, 0, got);
		print_message("crash after: %s\n", steps[s].what);
		same_records(got, steps[s].committed ? want_swapped : want_orig);
		plog_close(l);
		assert_int_equal(tu_count_files(crash, ".cleaned"), 0);
		assert_int_equal(tu_count_files(crash, ".swap"), 0);
		tu_rm_rf(crash);
	}
	free(ob);
	free(db);
	free(want_orig);
	free(want_done);
	free(want_swapped);
	free(got);
}

/* A map far smaller than the keys: each round cleans what it mapped, the
 * next goes on from there, and the result is the same. */
static void bounded_map(void **state)
{
	struct fixture *f = *state;
	struct cleaner_config cc = { .dedupe_buffer_bytes = 24 * 40, .slice_bytes = 4096 };
	int err;
	struct cleaner *small = cleaner_new(&cc, &err);
	assert_non_null(small);
	assert_true(cleaner_memory_bytes(small) < 24 * 40 + 4 * 1024 * 1024);
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 32, 10, f->dir, &f->ring, &seq); /* 32 keys, the map takes 30 */
	int rounds = 0;
	struct plog_cleanable pc, first;
	struct readback *before = malloc(sizeof(*before));
	read_all(l, 0, before);
	assert_true(plog_compact_plan(l, wall_ms(), &first));
	while (plog_compact_plan(l, wall_ms(), &pc)) {
		int rc;
		while ((rc = step(f, small, l)) == 1)
			;
		assert_int_equal(rc, 0);
		assert_true(++rounds < 100);
	}
	assert_true(rounds >= 2);
	struct readback *rb = malloc(sizeof(*rb));
	read_all(l, 0, rb);
	check_cleaned(before, rb, first.first_uncleanable, true);
	plog_close(l);
	cleaner_free(small);
	free(before);
	free(rb);
}

/* A log given up mid-round (its segments changed under it) leaves no
 * files, and a cleaner too small for one batch says so. */
static void abort_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct log_config cfg = compact_config(SEG_BYTES);
	struct plog *l = open_log(f->dir, &cfg);
	struct model m = { 0 };
	int seq = 0;
	fill(l, &m, 4, 6, f->dir, &f->ring, &seq);
	int steps = 0;
	while (steps < 1000 && tu_count_files(f->dir, ".cleaned") == 0) {
		assert_int_equal(step(f, f->c, l), 1);
		steps++;
	}
	assert_true(plog_compact_busy(l));
	plog_compact_abort(l);
	assert_false(plog_compact_busy(l));
	assert_int_equal(tu_count_files(f->dir, ".cleaned"), 0);
	assert_int_equal(plog_stats(l)->compact_aborts, 1);
	plog_close(l);
	struct cleaner_config bad = { .dedupe_buffer_bytes = 24, .slice_bytes = 1 };
	int err;
	assert_null(cleaner_new(&bad, &err));
	assert_int_equal(err, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(latest_per_key, setup, teardown),
		cmocka_unit_test_setup_teardown(offsets_and_gaps, setup, teardown),
		cmocka_unit_test_setup_teardown(tombstones_kept_then_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(producer_state_survives, setup, teardown),
		cmocka_unit_test_setup_teardown(gzip_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(gzip_codec_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(snappy_xerial_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(snappy_raw_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(lz4_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(zstd_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(undecodable_batches_kept_whole, setup, teardown),
		cmocka_unit_test(all_keyed_every_codec),
		cmocka_unit_test_setup_teardown(small_segments_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(crash_at_each_swap_step, setup, teardown),
		cmocka_unit_test_setup_teardown(bounded_map, setup, teardown),
		cmocka_unit_test_setup_teardown(abort_leaves_nothing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Where a segment's indexes live (segment_index.c): a sealed segment's are
 * mapped from its files and answer every lookup as its in-memory arrays
 * did; the lookups agree with a linear search over the entries; a short,
 * odd-sized or empty index file is handled without reading past it (kept
 * shorter, rebuilt, or copied instead of mapped); a log of many segments
 * holds only its active segment's indexes in memory, before and after a
 * reopen, and after retention deletes mapped segments.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/be.h"
#include "storage/log_int.h"
#include "storage/segment.h"
#include "test_util.h"

#define BASE 1000
#define SEG_BYTES (1 << 20)
#define INTERVAL 100
#define BATCHES 400

/* What a segment's arrays said before it was sealed. */
struct ref {
	int64_t end_offset, max_ts;
	uint32_t ni, nt;
	uint8_t *idx, *tidx;   /* copies of the entries */
	int64_t *pos_of;       /* lookup of offsets BASE - 2 .. end + 2 */
	int64_t *off_below;    /* time lookup of timestamps 0 .. max + 2 */
};

static void ref_free(struct ref *r)
{
	free(r->idx);
	free(r->tidx);
	free(r->pos_of);
	free(r->off_below);
}

/* Timestamps that go up and back down, so the time index skips batches. */
static int64_t batch_ts(int i)
{
	return 1000 + i * 3 + (i * 37) % 50;
}

/* A segment at BASE of BATCHES batches (1 to 3 records of 40 bytes), its
 * files written as the log writes them: batches at their positions, then
 * the index entries from the arrays. Sealed, still on its arrays. */
static struct segment *seg_build(const char *dir)
{
	struct segment *s = segment_new(BASE, SEG_BYTES, INTERVAL);
	assert_non_null(s);
	assert_int_equal(segment_open_files(s, dir), 0);
	int64_t off = BASE;
	for (int i = 0; i < BATCHES; i++) {
		uint8_t buf[1024];
		struct tu_batch_spec spec = tu_spec(1 + i % 3, batch_ts(i), 40);
		size_t len = tu_batch(buf, sizeof(buf), &spec);
		batch_set_base_offset(buf, off);
		struct batch_hdr h;
		assert_int_equal(batch_validate(buf, len, &h), (int)len);
		assert_int_equal(pwrite(s->log_fd, buf, len, s->size), (ssize_t)len);
		segment_track_batch(s, buf, &h, off, (int64_t)len);
		off += h.last_offset_delta + 1;
	}
	segment_seal_index(s);
	size_t ib = (size_t)s->idx.n * SEGMENT_INDEX_ENTRY_BYTES;
	size_t tb = (size_t)s->tidx.n * SEGMENT_TIMEINDEX_ENTRY_BYTES;
	assert_int_equal(pwrite(s->index_fd, s->idx.raw, ib, 0), (ssize_t)ib);
	assert_int_equal(pwrite(s->timeindex_fd, s->tidx.raw, tb, 0), (ssize_t)tb);
	s->idx.flushed = s->idx.n;
	s->tidx.flushed = s->tidx.n;
	s->readable = s->size;
	assert_int_equal(s->idx.kind, SEG_INDEX_ARRAY);
	/* Enough entries for the searches to have depth. */
	assert_true(s->idx.n > 100);
	assert_true(s->tidx.n > 50 && s->tidx.n < s->idx.n);
	return s;
}

static struct ref ref_take(const struct segment *s)
{
	struct ref r = { .end_offset = s->end_offset, .max_ts = s->max_ts,
			 .ni = s->idx.n, .nt = s->tidx.n };
	r.idx = malloc((size_t)r.ni * SEGMENT_INDEX_ENTRY_BYTES);
	r.tidx = malloc((size_t)r.nt * SEGMENT_TIMEINDEX_ENTRY_BYTES);
	memcpy(r.idx, s->idx.raw, (size_t)r.ni * SEGMENT_INDEX_ENTRY_BYTES);
	memcpy(r.tidx, s->tidx.raw, (size_t)r.nt * SEGMENT_TIMEINDEX_ENTRY_BYTES);
	r.pos_of = malloc(sizeof(int64_t) * (size_t)(r.end_offset + 2 - (BASE - 2)));
	for (int64_t o = BASE - 2; o < r.end_offset + 2; o++)
		r.pos_of[o - (BASE - 2)] = segment_index_lookup(s, o);
	r.off_below = malloc(sizeof(int64_t) * (size_t)(r.max_ts + 3));
	for (int64_t t = 0; t <= r.max_ts + 2; t++)
		r.off_below[t] = segment_time_lookup(s, t);
	return r;
}

/* The answer a linear walk over the first k offset index entries gives. */
static int64_t linear_lookup(const struct ref *r, uint32_t k, int64_t offset)
{
	int64_t pos = 0;
	for (uint32_t i = 0; i < k; i++) {
		const uint8_t *e = r->idx + (size_t)i * SEGMENT_INDEX_ENTRY_BYTES;
		if (BASE + (int32_t)be32_load(e) <= offset)
			pos = (int32_t)be32_load(e + 4);
	}
	return pos;
}

static int64_t linear_time_lookup(const struct ref *r, int64_t ts)
{
	int64_t off = -1;
	for (uint32_t i = 0; i < r->nt; i++) {
		const uint8_t *e = r->tidx + (size_t)i * SEGMENT_TIMEINDEX_ENTRY_BYTES;
		if ((int64_t)be64_load(e) < ts)
			off = BASE + (int32_t)be32_load(e + 8);
	}
	return off;
}

/* s answers every lookup as the arrays did, and as a linear search of the
 * entries does; its entries are the same. */
static void expect_same(const struct segment *s, const struct ref *r)
{
	assert_int_equal(s->idx.n, r->ni);
	assert_int_equal(s->tidx.n, r->nt);
	for (uint32_t i = 0; i < r->ni; i++) {
		int64_t off, pos;
		segment_index_entry(s, i, &off, &pos);
		const uint8_t *e = r->idx + (size_t)i * SEGMENT_INDEX_ENTRY_BYTES;
		assert_int_equal(off, BASE + (int32_t)be32_load(e));
		assert_int_equal(pos, (int32_t)be32_load(e + 4));
	}
	for (int64_t o = BASE - 2; o < r->end_offset + 2; o++) {
		int64_t got = segment_index_lookup(s, o);
		assert_int_equal(got, r->pos_of[o - (BASE - 2)]);
		assert_int_equal(got, linear_lookup(r, r->ni, o));
	}
	for (int64_t t = 0; t <= r->max_ts + 2; t++) {
		int64_t got = segment_time_lookup(s, t);
		assert_int_equal(got, r->off_below[t]);
		assert_int_equal(got, linear_time_lookup(r, t));
	}
}

static void path_of(char *buf, size_t cap, const char *dir, const char *ext)
{
	tu_seg_path(buf, cap, dir, BASE, ext);
}

/* Files of a built segment, and its reference answers; the segment freed. */
static struct ref seg_files(const char *dir)
{
	struct segment *s = seg_build(dir);
	struct ref r = ref_take(s);
	segment_free(s);
	return r;
}

static struct segment *load_sealed(const char *dir, const struct ref *r, uint64_t *bytes_read)
{
	int err = -1;
	*bytes_read = 0;
	struct segment *s = segment_load_sealed(dir, BASE, r->end_offset, SEG_BYTES, INTERVAL,
						bytes_read, &err);
	assert_non_null(s);
	assert_int_equal(err, 0);
	return s;
}

/* The seal: the arrays give way to mappings of the files, which answer
 * exactly as they did. */
static void sealed_mapping_answers_as_arrays(void **state)
{
	struct tu_fixture *f = *state;
	struct segment *s = seg_build(f->dir);
	struct ref r = ref_take(s);
	expect_same(s, &r); /* the arrays against the linear search */
	uint64_t mem = 0, mapped = 0;
	segment_index_bytes(s, &mem, &mapped);
	assert_int_equal(mem, r.ni * 8 + r.nt * 12);
	assert_int_equal(mapped, 0);

	segment_settle_indexes(s, s->index_fd, s->timeindex_fd);
	segment_close_index_files(s); /* the mappings keep their files */
	assert_int_equal(s->idx.kind, SEG_INDEX_FILE);
	assert_int_equal(s->tidx.kind, SEG_INDEX_FILE);
	expect_same(s, &r);
	mem = mapped = 0;
	segment_index_bytes(s, &mem, &mapped);
	assert_int_equal(mem, 0);
	assert_int_equal(mapped, r.ni * 8 + r.nt * 12);
	/* Settling again changes nothing. */
	segment_settle_indexes(s, -1, -1);
	assert_int_equal(s->idx.kind, SEG_INDEX_FILE);
	expect_same(s, &r);
	segment_free(s);
	ref_free(&r);
}

/* Recovery maps a sealed segment's files, checks every entry, and does
 * not read the .log when they hold up. */
static void sealed_load_maps_files(void **state)
{
	struct tu_fixture *f = *state;
	struct ref r = seg_files(f->dir);
	uint64_t bytes_read;
	struct segment *s = load_sealed(f->dir, &r, &bytes_read);
	assert_int_equal(bytes_read, 0);
	assert_int_equal(s->idx.kind, SEG_INDEX_FILE);
	assert_int_equal(s->tidx.kind, SEG_INDEX_FILE);
	assert_int_equal(s->max_ts, r.max_ts);
	expect_same(s, &r);
	segment_free(s);
	ref_free(&r);
}

/* The guessed start of a cold read: where an entry's batch ends before the
 * offset, the next entry's position. Every batch here is larger than the
 * index interval, so each is indexed and the guess is exactly the batch
 * holding the offset; no guess where the entry's own batch holds it. */
static void lookup_next_guesses_the_batch(void **state)
{
	struct tu_fixture *f = *state;
	struct segment *s = seg_build(f->dir);
	int guesses = 0;
	for (int64_t o = BASE; o < s->end_offset; o++) {
		int64_t next;
		int64_t pos = segment_index_lookup_next(s, o, &next);
		assert_int_equal(pos, segment_index_lookup(s, o));
		uint8_t hdr[BATCH_HEADER_BYTES];
		struct batch_hdr h;
		assert_int_equal(pread(s->log_fd, hdr, sizeof(hdr), pos), (ssize_t)sizeof(hdr));
		assert_true(batch_parse(hdr, sizeof(hdr), &h) > 0);
		if (next < 0) {
			/* Before the first entry, or the entry's batch is it. */
			assert_true(pos == 0 || h.base_offset + h.last_offset_delta >= o);
			continue;
		}
		guesses++;
		assert_true(h.base_offset + h.last_offset_delta < o);
		assert_true(next > pos);
		assert_int_equal(pread(s->log_fd, hdr, sizeof(hdr), next), (ssize_t)sizeof(hdr));
		assert_true(batch_parse(hdr, sizeof(hdr), &h) > 0);
		assert_true(h.base_offset <= o && o <= h.base_offset + h.last_offset_delta);
	}
	assert_true(guesses > BATCHES / 2);
	segment_free(s);
}

/* An index file cut at an entry boundary (lost entries, not garbage) is
 * consistent: kept, shorter, and mapped no further than it reaches. Lookups
 * past its end start from its last entry: slower, still right. */
static void truncated_index_kept_shorter(void **state)
{
	struct tu_fixture *f = *state;
	struct ref r = seg_files(f->dir);
	char path[4096];
	path_of(path, sizeof(path), f->dir, ".index");
	uint32_t k = r.ni / 3;
	assert_int_equal(truncate(path, (off_t)k * 8), 0);
	uint64_t bytes_read;
	struct segment *s = load_sealed(f->dir, &r, &bytes_read);
	assert_int_equal(bytes_read, 0);
	assert_int_equal(s->idx.kind, SEG_INDEX_FILE);
	assert_int_equal(s->idx.n, k);
	assert_int_equal(s->idx.held_bytes, (size_t)k * 8);
	for (int64_t o = BASE - 2; o < r.end_offset + 2; o++) {
		int64_t got = segment_index_lookup(s, o);
		assert_int_equal(got, linear_lookup(&r, k, o));
		assert_true(got <= r.pos_of[o - (BASE - 2)]);
	}
	segment_free(s);
	ref_free(&r);
}

/* A partial trailing entry (a torn write, or a file cut by hand) is not
 * mapped: the indexes are rebuilt from the batches, the files rewritten,
 * and the rebuilt files mapped. */
static void odd_sized_index_rebuilt(void **state)
{
	struct tu_fixture *f = *state;
	struct ref r = seg_files(f->dir);
	char ipath[4096], tpath[4096];
	path_of(ipath, sizeof(ipath), f->dir, ".index");
	path_of(tpath, sizeof(tpath), f->dir, ".timeindex");
	assert_int_equal(truncate(ipath, (off_t)(r.ni / 2) * 8 + 3), 0);
	tu_file_append(tpath, "\x01\x02\x03\x04\x05", 5);
	uint64_t bytes_read;
	struct segment *s = load_sealed(f->dir, &r, &bytes_read);
	assert_true(bytes_read > 0); /* the batch headers, for the rebuild */
	assert_int_equal(s->idx.kind, SEG_INDEX_FILE);
	assert_int_equal(s->tidx.kind, SEG_INDEX_FILE);
	assert_int_equal(tu_file_size(ipath), (int64_t)r.ni * 8);
	assert_int_equal(tu_file_size(tpath), (int64_t)r.nt * 12);
	expect_same(s, &r);
	segment_free(s);
	ref_free(&r);
}

/* Empty index files: nothing to map, nothing held; lookups start at the
 * segment's first batch. */
static void empty_index_files(void **state)
{
	struct tu_fixture *f = *state;
	struct ref r = seg_files(f->dir);
	char path[4096];
	path_of(path, sizeof(path), f->dir, ".index");
	assert_int_equal(truncate(path, 0), 0);
	path_of(path, sizeof(path), f->dir, ".timeindex");
	assert_int_equal(truncate(path, 0), 0);
	uint64_t bytes_read;
	struct segment *s = load_sealed(f->dir, &r, &bytes_read);
	assert_int_equal(s->idx.kind, SEG_INDEX_NONE);
	assert_int_equal(s->tidx.kind, SEG_INDEX_NONE);
	assert_int_equal(segment_index_lookup(s, BASE + 50), 0);
	assert_int_equal(segment_time_lookup(s, r.max_ts), -1);
	uint64_t mem = 0, mapped = 0;
	segment_index_bytes(s, &mem, &mapped);
	assert_int_equal(mem + mapped, 0);
	segment_free(s);
	ref_free(&r);
}

/* A seal whose file holds fewer bytes than the entries (or that has no
 * file) must not map it, since a lookup would fault past its end: the
 * entries are copied into memory instead, and answer the same. */
static void seal_onto_short_file_copies(void **state)
{
	struct tu_fixture *f = *state;
	struct segment *s = seg_build(f->dir);
	struct ref r = ref_take(s);
	assert_int_equal(ftruncate(s->index_fd, (off_t)(r.ni - 1) * 8), 0);
	segment_settle_indexes(s, s->index_fd, -1);
	assert_int_equal(s->idx.kind, SEG_INDEX_HEAP);
	assert_int_equal(s->tidx.kind, SEG_INDEX_HEAP);
	expect_same(s, &r);
	uint64_t mem = 0, mapped = 0;
	segment_index_bytes(s, &mem, &mapped);
	assert_int_equal(mem, r.ni * 8 + r.nt * 12);
	assert_int_equal(mapped, 0);
	segment_free(s);
	ref_free(&r);
}

/* ---- a log of many segments ---- */

#define MANY_SEGMENTS 300

/* Index entry bytes of the sealed segments, as the files hold them. */
static uint64_t sealed_index_file_bytes(const struct plog *l)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i + 1 < l->n_segs; i++) {
		char path[4096];
		tu_seg_path(path, sizeof(path), l->dir, l->segs[i]->base_offset, ".index");
		sum += (uint64_t)tu_file_size(path);
		tu_seg_path(path, sizeof(path), l->dir, l->segs[i]->base_offset, ".timeindex");
		sum += (uint64_t)tu_file_size(path);
	}
	return sum;
}

/* Only the active segment's entries are in memory; every sealed one's are
 * mapped, and the mappings hold exactly what the files hold. */
static void expect_sealed_mapped(const struct plog *l)
{
	uint64_t mem = 0, mapped = 0;
	plog_index_bytes(l, &mem, &mapped);
	const struct segment *a = plog_active(l);
	assert_int_equal(mem, (uint64_t)a->idx.n * 8 + (uint64_t)a->tidx.n * 12);
	assert_int_equal(mapped, sealed_index_file_bytes(l));
	assert_true(mapped > 0);
	for (uint32_t i = 0; i + 1 < l->n_segs; i++) {
		assert_int_equal(l->segs[i]->idx.kind, SEG_INDEX_FILE);
		assert_int_equal(l->segs[i]->tidx.kind, SEG_INDEX_FILE);
	}
}

/* Every offset reads back from the batch that holds it, and timestamps
 * find their records. */
static void expect_reads(struct plog *l, int64_t from)
{
	uint8_t buf[4096];
	for (int64_t o = from; o < plog_end_offset(l); o++) {
		struct plog_read_result rr;
		assert_int_equal(plog_read(l, o, 1, buf, sizeof(buf), &rr), 0);
		struct batch_hdr h;
		assert_true(rr.len > 0);
		assert_true(batch_validate(buf, rr.len, &h) > 0);
		assert_true(h.base_offset <= o && o <= h.base_offset + h.last_offset_delta);
	}
	int64_t off, ts;
	/* Batch i has records at 10000 + 10 i and + 1 (see fill_many). */
	int64_t first = from / 2;
	assert_int_equal(plog_offset_for_timestamp(l, 10000 + first * 10 + 5, &off, &ts), 0);
	assert_int_equal(ts, 10000 + (first + 1) * 10);
	assert_int_equal(off, 2 * (first + 1));
}

static void fill_many(struct tu_fixture *f, struct plog *l, int batches)
{
	struct plog_append_result res;
	for (int i = 0; i < batches; i++) {
		struct tu_batch_spec spec = tu_spec(2, 10000 + i * 10, 20);
		assert_int_equal(tu_append_spec(l, &spec, &res), 0);
		if (i % 5 == 4)
			tu_drive(&f->ring, l, 0);
	}
	tu_drive(&f->ring, l, 0);
}

static void reopen_many_segments(void **state)
{
	struct tu_fixture *f = *state;
	/* About 4 batches of ~100 bytes per segment, an index entry each. */
	struct log_config cfg = tu_config(400, 0, FLUSH_ALWAYS);
	struct plog *l = tu_open(f->dir, &cfg);
	fill_many(f, l, 4 * MANY_SEGMENTS);
	assert_true(l->n_segs >= MANY_SEGMENTS);
	expect_sealed_mapped(l); /* sealed while running */
	expect_reads(l, 0);
	int64_t end = plog_end_offset(l);
	uint32_t n_segs = l->n_segs;
	plog_close(l);

	l = tu_open(f->dir, &cfg);
	assert_int_equal(plog_end_offset(l), end);
	assert_int_equal(l->n_segs, n_segs);
	assert_int_equal(plog_stats(l)->recovery_truncated_bytes, 0);
	expect_sealed_mapped(l); /* loaded at open */
	expect_reads(l, 0);

	/* Retention unlinks mapped segments' files, then unmaps them. */
	l->cfg.retention_bytes = (int64_t)plog_active(l)->size + 100 * 400;
	int deleted = 0, rc;
	while ((rc = plog_retention_run(l, 0, 64, NULL, NULL)) > 0)
		deleted += rc;
	assert_int_equal(rc, 0);
	assert_true(deleted > MANY_SEGMENTS / 2);
	assert_int_equal(tu_count_files(f->dir, ".index"), (int)l->n_segs);
	expect_sealed_mapped(l);
	expect_reads(l, plog_start_offset(l));
	/* Appends go on, and roll into more mapped segments. */
	fill_many(f, l, 40);
	expect_sealed_mapped(l);
	plog_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(sealed_mapping_answers_as_arrays, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(sealed_load_maps_files, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(lookup_next_guesses_the_batch, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(truncated_index_kept_shorter, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(odd_sized_index_rebuilt, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(empty_index_files, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(seal_onto_short_file_copies, tu_fixture_setup,
						tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(reopen_many_segments, tu_fixture_setup,
						tu_fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * dump_snapshot: a producer state snapshot, "<20-digit offset>.snapshot".
 *
 * Decoded by storage's producer_snapshot_decode, the code recovery uses, so
 * a file this accepts is one the broker would load. The file is small
 * (bounded by DUMP_SNAPSHOT_BYTES_MAX) and read whole. Producers are
 * printed by id, each with its kept batches oldest first.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "dump_limits.h"
#include "storage/be.h"
#include "storage/producer_state.h"

static int snap_cmp_id(const void *a, const void *b)
{
	int64_t x = (*(const struct producer_entry *const *)a)->producer_id;
	int64_t y = (*(const struct producer_entry *const *)b)->producer_id;
	return x < y ? -1 : x > y;
}

static void snap_print_entry(const struct producer_entry *e)
{
	printf("producerId: %" PRId64 " producerEpoch: %d batches:", e->producer_id, e->epoch);
	for (int i = 0; i < e->n; i++) {
		const struct producer_batch *b =
			&e->b[(e->head + PRODUCER_BATCHES_KEPT - e->n + i) % PRODUCER_BATCHES_KEPT];
		printf(" [sequence %" PRId32 "..%" PRId32 " offsets %" PRId64 "..%" PRId64 "]",
		       b->first_seq, b->last_seq, b->first_offset, b->last_offset);
	}
	printf("\n");
}

/* Every producer, by id. 0 or -ENOMEM. */
static int snap_print(const struct producer_state *ps)
{
	const struct producer_entry **v = malloc(sizeof(*v) * (ps->count ? ps->count : 1));
	if (v == NULL)
		return -ENOMEM;
	uint32_t n = 0;
	for (uint32_t i = 0; i < ps->cap; i++)
		if (ps->slots[i].producer_id >= 0)
			v[n++] = &ps->slots[i];
	qsort(v, n, sizeof(*v), snap_cmp_id);
	for (uint32_t i = 0; i < n; i++)
		snap_print_entry(v[i]);
	free(v);
	return 0;
}

/* What is wrong at bad_pos, as producer_snapshot_decode left it. */
static void snap_report(struct dump_file *f, const uint8_t *p, size_t len, size_t bad_pos)
{
	if (bad_pos == 0) {
		dump_problem(f, 0, "not a producer snapshot: no \"SLPS\" magic, or too short");
		return;
	}
	if (bad_pos == 4) {
		dump_problem(f, 4, "unsupported snapshot version %u", be16_load(p + 4));
		return;
	}
	uint32_t stored = be32_load(p + len - 4), computed = batch_crc32c(p, len - 4);
	if (stored != computed)
		dump_problem(f, (int64_t)len - 4,
			     "CRC-32C mismatch (stored 0x%08" PRIx32 ", computed 0x%08" PRIx32 ")",
			     stored, computed);
	else
		dump_problem(f, (int64_t)bad_pos,
			     "producer entry does not decode (the header says %" PRIu32 " producers; "
			     "a count, epoch or offset range is out of bounds, or the entries end "
			     "before or after the CRC)", be32_load(p + 6));
}

static int snap_decode_and_print(struct dump_file *f, const struct dump_opts *o)
{
	int err;
	const uint8_t *p = dump_file_get(f, 0, (size_t)f->size, &err);
	if (p == NULL)
		return err != 0 ? err : -EIO;
	struct producer_state ps;
	if (producer_state_init(&ps) != 0)
		return -ENOMEM;
	size_t bad_pos;
	int rc = producer_snapshot_decode(&ps, p, (size_t)f->size, &bad_pos);
	if (rc == -EINVAL) {
		snap_report(f, p, (size_t)f->size, bad_pos);
		rc = 0;
	} else if (rc == 0) {
		printf("producers: %" PRIu32 "\n", ps.count);
		if (!o->quiet)
			rc = snap_print(&ps);
	}
	producer_state_free(&ps);
	return rc;
}

int dump_snapshot(const char *path, const struct dump_opts *o)
{
	struct dump_file f;
	int rc = dump_file_open(&f, path);
	if (rc != 0)
		return dump_cannot_read(path, rc);
	int64_t offset = dump_name_offset(path, ".snapshot");
	printf("Dumping %s (producer snapshot, %" PRId64 " bytes", path, f.size);
	if (offset >= 0)
		printf(", the state after every batch below offset %" PRId64, offset);
	printf(")\n");
	if (f.size == 0)
		dump_problem(&f, 0, "empty file");
	else if (f.size > DUMP_SNAPSHOT_BYTES_MAX)
		dump_problem(&f, 0, "%" PRId64 " bytes: larger than any producer snapshot "
			     "(at most %" PRId64 ")", f.size, (int64_t)DUMP_SNAPSHOT_BYTES_MAX);
	else
		rc = snap_decode_and_print(&f, o);
	if (rc == 0)
		printf("summary: %d problems\n", f.problems);
	int problems = f.problems;
	dump_file_close(&f);
	return rc != 0 ? dump_cannot_read(path, rc) : problems;
}

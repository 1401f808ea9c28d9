/*
 * dump_log: one .log segment, batch by batch.
 *
 * Every batch is read whole (through the file's window) so that its CRC-32C
 * can be checked with batch_validate, the check the broker applies on
 * produce and on recovery. A CRC mismatch leaves the framing intact, so the
 * walk goes on to the next batch; a header that does not parse, or a length
 * that runs past the file, ends it, because nothing after it can be framed.
 *
 * Zero fill: the active segment may end in zero bytes after its last batch
 * (O_DIRECT writes padded to a page, space pre-allocated with fallocate).
 * A tail made only of zeros is reported as such and is not corruption; a
 * zero batch header could never be valid anyway (magic 0), so nothing real
 * is hidden by accepting it. Anything else after the last batch is.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "dump.h"

struct log_walk {
	struct dump_file f;
	const struct dump_opts *o;
	int64_t name_base;   /* base offset from the file name, or -1 */
	int64_t next_offset; /* base offset the next batch must have, or -1 */
	int64_t batches, records, batch_bytes, zero_fill;
	int64_t first_offset, last_offset;
	int64_t gaps;        /* batches after an offset gap, or a first batch
			      * after the name's base (compaction) */
};

static const char *bool_str(bool b)
{
	return b ? "true" : "false";
}

static void log_print_batch(const struct batch_hdr *h, int64_t pos, int size, bool crc_ok)
{
	int64_t last = h->base_offset + h->last_offset_delta;
	int32_t last_seq = h->base_sequence < 0 ? -1
						: batch_seq_add(h->base_sequence, h->last_offset_delta);
	printf("baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %" PRId32
	       " position: %" PRId64 " size: %d magic: %d partitionLeaderEpoch: %" PRId32
	       " compression: %s timestampType: %s transactional: %s control: %s"
	       " producerId: %" PRId64 " producerEpoch: %d baseSequence: %" PRId32
	       " lastSequence: %" PRId32 " baseTimestamp: %" PRId64 " maxTimestamp: %" PRId64
	       " crc: 0x%08" PRIx32 " crcValid: %s\n",
	       h->base_offset, last, h->records_count, pos, size, h->magic,
	       h->partition_leader_epoch, dump_codec_name(batch_compression(h)),
	       h->attributes & BATCH_ATTR_TIMESTAMP_TYPE ? "LogAppendTime" : "CreateTime",
	       bool_str(h->attributes & BATCH_ATTR_TRANSACTIONAL),
	       bool_str(h->attributes & BATCH_ATTR_CONTROL), h->producer_id, h->producer_epoch,
	       h->base_sequence, last_seq, h->base_timestamp, h->max_timestamp, h->crc,
	       bool_str(crc_ok));
}

/* The header at pos does not parse: the end of the batches. Zero fill, or
 * corruption. */
static void log_bad_header(struct log_walk *w, int64_t pos, int rc, const uint8_t *p,
			   size_t avail, const struct batch_hdr *h)
{
	int64_t nonzero = pos;
	int z = dump_file_zero_from(&w->f, pos, &nonzero);
	if (z < 0) {
		dump_problem(&w->f, pos, "read error: %s", strerror(-z));
		return;
	}
	if (z == 1) {
		w->zero_fill = w->f.size - pos;
		if (!w->o->quiet)
			printf("%" PRId64 " bytes of zero fill at position %" PRId64
			       " (after the last batch)\n", w->zero_fill, pos);
		return;
	}
	char why[160];
	if (rc == BATCH_ERR_MAGIC)
		snprintf(why, sizeof(why), "magic byte is %d, expected 2", (int8_t)p[16]);
	else if (rc == BATCH_ERR_TRUNCATED)
		snprintf(why, sizeof(why), "the file ends %zu bytes into a %d-byte batch header",
			 avail, BATCH_HEADER_BYTES);
	else
		snprintf(why, sizeof(why),
			 "batchLength %" PRId32 ", lastOffsetDelta %" PRId32 " or recordsCount %" PRId32
			 " is out of range",
			 h->batch_length, h->last_offset_delta, h->records_count);
	dump_problem(&w->f, pos,
		     "batch header does not parse (%s); the %" PRId64 " bytes from here to the end "
		     "of the file are not zero fill (non-zero byte at position %" PRId64 ")",
		     why, w->f.size - pos, nonzero);
}

/* Offsets must grow: a batch starts after the previous batch's last
 * offset (the broker assigns them back to back; compaction leaves gaps,
 * never an overlap), and the first batch at or after the base offset in
 * the file name (compaction may have removed the records at the base).
 * A batch holds at most lastOffsetDelta + 1 records: exactly that many as
 * produced, fewer once compaction removed some (its offset range stays). */
static void log_check_offsets(struct log_walk *w, const struct batch_hdr *h, int64_t pos)
{
	if (w->next_offset < 0 && w->name_base >= 0 && h->base_offset < w->name_base)
		dump_problem(&w->f, pos,
			     "first batch has base offset %" PRId64 " but the file name says the "
			     "segment starts at %" PRId64,
			     h->base_offset, w->name_base);
	else if (w->next_offset >= 0 && h->base_offset < w->next_offset)
		dump_problem(&w->f, pos,
			     "batch base offset %" PRId64 " is not after the previous batch's "
			     "last offset %" PRId64 " (offsets go backwards or overlap)",
			     h->base_offset, w->next_offset - 1);
	if ((w->next_offset >= 0 && h->base_offset > w->next_offset) ||
	    (w->next_offset < 0 && w->name_base >= 0 && h->base_offset > w->name_base))
		w->gaps++;
	if ((int64_t)h->records_count > (int64_t)h->last_offset_delta + 1)
		dump_problem(&w->f, pos,
			     "batch at offset %" PRId64 ": recordsCount %" PRId32 " is more than "
			     "lastOffsetDelta %" PRId32 " + 1 allows",
			     h->base_offset, h->records_count, h->last_offset_delta);
}

static void log_count_batch(struct log_walk *w, const struct batch_hdr *h, int size)
{
	int64_t last = h->base_offset + h->last_offset_delta;
	if (w->batches == 0)
		w->first_offset = h->base_offset;
	w->last_offset = last;
	w->next_offset = last + 1;
	w->batches++;
	w->records += h->records_count;
	w->batch_bytes += size;
}

/* One batch at pos: returns its size to go on, or 0 to stop the walk. */
static int log_batch_at(struct log_walk *w, int64_t pos, struct dump_records_ctx *rc_ctx)
{
	int err;
	size_t avail = w->f.size - pos < BATCH_HEADER_BYTES ? (size_t)(w->f.size - pos)
							    : BATCH_HEADER_BYTES;
	const uint8_t *p = dump_file_get(&w->f, pos, avail, &err);
	if (p == NULL) {
		dump_problem(&w->f, pos, "read error: %s", strerror(err ? -err : EIO));
		return 0;
	}
	struct batch_hdr h;
	memset(&h, 0, sizeof(h));
	int size = batch_parse(p, avail, &h);
	if (size < 0) {
		log_bad_header(w, pos, size, p, avail, &h);
		return 0;
	}
	if (size > w->f.size - pos) {
		dump_problem(&w->f, pos,
			     "batch at offset %" PRId64 " is %d bytes long but only %" PRId64
			     " bytes are left in the file (truncated mid-batch)",
			     h.base_offset, size, w->f.size - pos);
		return 0;
	}
	const uint8_t *batch = dump_file_get(&w->f, pos, (size_t)size, &err);
	if (batch == NULL) {
		dump_problem(&w->f, pos, "read error: %s", strerror(err ? -err : EIO));
		return 0;
	}
	bool crc_ok = batch_validate(batch, (size_t)size, &h) == size;
	if (!w->o->quiet)
		log_print_batch(&h, pos, size, crc_ok);
	log_check_offsets(w, &h, pos);
	if (!crc_ok) {
		uint32_t computed = batch_crc32c(batch + BATCH_ATTRIBUTES_OFFSET,
						 (size_t)size - BATCH_ATTRIBUTES_OFFSET);
		dump_problem(&w->f, pos,
			     "batch at offset %" PRId64 ": CRC-32C mismatch (stored 0x%08" PRIx32
			     ", computed 0x%08" PRIx32 ")",
			     h.base_offset, h.crc, computed);
		if (w->o->records && !w->o->quiet)
			printf("| records not shown: the batch fails its CRC\n");
	} else {
		dump_records(&w->f, rc_ctx, batch, &h, pos, w->o);
	}
	log_count_batch(w, &h, size);
	return size;
}

int dump_log(const char *path, const struct dump_opts *o)
{
	struct log_walk w = { .o = o, .next_offset = -1 };
	int rc = dump_file_open(&w.f, path);
	if (rc != 0)
		return dump_cannot_read(path, rc);
	w.name_base = dump_name_offset(path, ".log");
	printf("Dumping %s (log segment, %" PRId64 " bytes)\n", path, w.f.size);
	struct dump_records_ctx ctx = { 0 };
	int64_t pos = 0;
	while (pos < w.f.size) {
		int size = log_batch_at(&w, pos, &ctx);
		if (size == 0)
			break;
		pos += size;
	}
	dump_records_ctx_free(&ctx);
	if (w.batches > 0)
		printf("summary: %" PRId64 " batches, %" PRId64 " records, offsets %" PRId64
		       "..%" PRId64 ", %" PRId64 " offset gaps, %" PRId64 " bytes of batches, %" PRId64
		       " bytes of zero fill, %d problems\n",
		       w.batches, w.records, w.first_offset, w.last_offset, w.gaps, w.batch_bytes,
		       w.zero_fill, w.f.problems);
	else
		printf("summary: no batches, %" PRId64 " bytes of zero fill, %d problems\n",
		       w.zero_fill, w.f.problems);
	dump_file_close(&w.f);
	return w.f.problems;
}

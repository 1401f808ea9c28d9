/*
 * dump_index: a segment's .index (offset index) or .timeindex (time index).
 *
 * Two passes, both streaming. The first prints the entries and checks what
 * the file alone can tell, as recovery's index_trim does: offset index
 * offsets and positions strictly increasing, time index timestamps strictly
 * increasing (TimeIndex.maybeAppend only adds a larger one) and offsets
 * non-decreasing, nothing below the segment's base. A tail of zero bytes is
 * zero fill, not entries: the writer never indexes position 0, and a zero
 * time index entry past the first could not be larger than the one before.
 *
 * The second pass checks the ordered entries against the sibling .log, the
 * rules of segment.h (segment_track_batch), walking the log's batch headers
 * with segment_scan_headers alongside the entries:
 *   offset index: each entry is the start position of a batch and holds
 *     that batch's LAST offset;
 *   time index: the batch holding each entry's offset has the entry's
 *     timestamp as its max timestamp, and no earlier batch reached it (the
 *     entry is where that timestamp first occurs); in a sealed segment the
 *     last entry holds the segment's largest timestamp.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "storage/be.h"
#include "storage/segment.h"

struct ix_file {
	struct dump_file f;
	const struct dump_opts *o;
	bool time;            /* .timeindex, else .index */
	uint32_t entry_bytes;
	int64_t base;         /* segment base offset, from the name */
	uint32_t n;           /* whole entries before any zero fill */
	uint32_t n_ordered;   /* leading entries in order: checked against the log */
};

/* Entry i: (offset, position) or (timestamp, offset). Relative offsets are
 * stored as int32 and read back as such. */
static int ix_entry(struct ix_file *x, uint32_t i, int64_t *a, int64_t *b)
{
	int err;
	const uint8_t *e = dump_file_get(&x->f, (int64_t)i * x->entry_bytes, x->entry_bytes, &err);
	if (e == NULL)
		return err != 0 ? err : -EIO;
	if (x->time) {
		*a = (int64_t)be64_load(e);
		*b = x->base + (int32_t)be32_load(e + 8);
	} else {
		*a = x->base + (int32_t)be32_load(e);
		*b = (int32_t)be32_load(e + 4);
	}
	return 0;
}

static int64_t ix_pos(const struct ix_file *x, uint32_t i)
{
	return (int64_t)i * x->entry_bytes;
}

/* How many whole entries precede the zero fill; a ragged non-zero tail is a
 * torn entry. */
static int ix_count(struct ix_file *x)
{
	int64_t end = dump_file_content_end(&x->f);
	if (end < 0)
		return (int)end;
	int64_t whole = (end + x->entry_bytes - 1) / x->entry_bytes;
	if (whole * x->entry_bytes > x->f.size) {
		whole = x->f.size / x->entry_bytes;
		dump_problem(&x->f, ix_pos(x, (uint32_t)whole),
			     "%" PRId64 " trailing bytes are not a whole %" PRIu32 "-byte entry",
			     x->f.size - ix_pos(x, (uint32_t)whole), x->entry_bytes);
	}
	if (whole > UINT32_MAX) {
		/* Far past SEGMENT_INDEX_ENTRIES_MAX: not an index the broker
		 * wrote; the first 2^32 - 1 entries are still shown. */
		dump_problem(&x->f, 0, "%" PRId64 " entries: more than any index holds", whole);
		whole = UINT32_MAX;
	}
	x->n = (uint32_t)whole;
	return 0;
}

/* Pass 1: print, and check the order of, every entry. */
static int ix_print_and_order(struct ix_file *x)
{
	int64_t prev_a = x->time ? BATCH_NO_TIMESTAMP : x->base - 1, prev_b = x->time ? x->base : -1;
	x->n_ordered = x->n;
	for (uint32_t i = 0; i < x->n; i++) {
		int64_t a, b;
		int rc = ix_entry(x, i, &a, &b);
		if (rc != 0)
			return rc;
		if (!x->o->quiet)
			printf(x->time ? "timestamp: %" PRId64 " offset: %" PRId64 "\n"
				       : "offset: %" PRId64 " position: %" PRId64 "\n", a, b);
		const char *why = NULL;
		if (x->time && a <= prev_a)
			why = "timestamp not larger than the previous entry's";
		else if (x->time && b < prev_b)
			why = "offset smaller than the previous entry's (or the segment's base)";
		else if (!x->time && a <= prev_a)
			why = "offset not larger than the previous entry's (or below the segment's base)";
		else if (!x->time && b <= prev_b)
			why = "position not larger than the previous entry's";
		if (why != NULL) {
			dump_problem(&x->f, ix_pos(x, i),
				     x->time ? "entry %" PRIu32 " (timestamp %" PRId64 ", offset %"
					       PRId64 "): %s"
					     : "entry %" PRIu32 " (offset %" PRId64 ", position %"
					       PRId64 "): %s",
				     i, a, b, why);
			if (x->n_ordered == x->n)
				x->n_ordered = i;
		}
		prev_a = a;
		prev_b = b;
	}
	return 0;
}

/* Pass 2's state: the next entry to meet, and what the batches so far say. */
struct ix_check {
	struct ix_file *x;
	uint32_t next;
	int64_t a, b;                   /* entry `next`, when next < n_ordered */
	int64_t prev_pos, prev_base, prev_last; /* the batch before this one */
	int64_t end_pos, last_offset;   /* after the last batch seen */
	int64_t max_ts;                 /* largest max timestamp of those batches */
	bool scan_all;                  /* go on past the last entry (sealed) */
	int err;
};

static bool ixc_load(struct ix_check *c)
{
	if (c->next >= c->x->n_ordered)
		return false;
	c->err = ix_entry(c->x, c->next, &c->a, &c->b);
	return c->err == 0;
}

static void ixc_advance(struct ix_check *c)
{
	c->next++;
}

static void ixc_offset_batch(struct ix_check *c, const struct batch_hdr *h, int64_t pos)
{
	int64_t last = h->base_offset + h->last_offset_delta;
	while (ixc_load(c) && c->b < pos) {
		dump_problem(&c->x->f, ix_pos(c->x, c->next),
			     "entry (offset %" PRId64 ", position %" PRId64 ") does not point at the "
			     "start of a batch: it falls inside the batch at position %" PRId64
			     " (offsets %" PRId64 "..%" PRId64 ")",
			     c->a, c->b, c->prev_pos, c->prev_base, c->prev_last);
		ixc_advance(c);
	}
	if (ixc_load(c) && c->b == pos) {
		if (c->a != last)
			dump_problem(&c->x->f, ix_pos(c->x, c->next),
				     "entry (offset %" PRId64 ", position %" PRId64 ") points at the "
				     "batch of offsets %" PRId64 "..%" PRId64 ", but an entry holds "
				     "its batch's last offset",
				     c->a, c->b, h->base_offset, last);
		ixc_advance(c);
	}
}

static void ixc_time_batch(struct ix_check *c, const struct batch_hdr *h, int64_t pos)
{
	int64_t last = h->base_offset + h->last_offset_delta;
	while (ixc_load(c) && c->b <= last) {
		int64_t at = ix_pos(c->x, c->next);
		if (c->b < h->base_offset)
			dump_problem(&c->x->f, at,
				     "entry (timestamp %" PRId64 ", offset %" PRId64 ") names an offset "
				     "in no batch (the batch at position %" PRId64 " starts at %" PRId64
				     ")", c->a, c->b, pos, h->base_offset);
		else if (h->max_timestamp != c->a)
			dump_problem(&c->x->f, at,
				     "entry (timestamp %" PRId64 ", offset %" PRId64 "): the batch "
				     "holding that offset (position %" PRId64 ") has max timestamp %"
				     PRId64 ", not the entry's",
				     c->a, c->b, pos, h->max_timestamp);
		else if (c->max_ts >= c->a)
			dump_problem(&c->x->f, at,
				     "entry (timestamp %" PRId64 ", offset %" PRId64 "): an earlier "
				     "batch already reached timestamp %" PRId64 ", so the entry's "
				     "timestamp does not first occur at its offset",
				     c->a, c->b, c->max_ts);
		ixc_advance(c);
	}
	if (h->max_timestamp > c->max_ts)
		c->max_ts = h->max_timestamp;
}

static int ixc_batch_cb(void *arg, const struct batch_hdr *h, int64_t pos, int64_t size)
{
	struct ix_check *c = arg;
	if (c->x->time)
		ixc_time_batch(c, h, pos);
	else
		ixc_offset_batch(c, h, pos);
	c->prev_pos = pos;
	c->prev_base = h->base_offset;
	c->prev_last = c->last_offset = h->base_offset + h->last_offset_delta;
	c->end_pos = pos + size;
	if (c->err != 0)
		return c->err;
	/* Every entry met: the rest of the log is not needed, unless the
	 * sealed segment's maximum must be found. */
	return c->next >= c->x->n_ordered && !c->scan_all ? 1 : 0;
}

/* Entries the batch walk did not reach: inside the last batch it saw (an
 * offset index position short of its end), or past every batch. */
static void ixc_leftovers(struct ix_check *c)
{
	for (; ixc_load(c); ixc_advance(c)) {
		if (!c->x->time && c->b < c->end_pos)
			dump_problem(&c->x->f, ix_pos(c->x, c->next),
				     "entry (offset %" PRId64 ", position %" PRId64 ") does not point "
				     "at the start of a batch: it falls inside the batch at position %"
				     PRId64 " (offsets %" PRId64 "..%" PRId64 ")",
				     c->a, c->b, c->prev_pos, c->prev_base, c->prev_last);
		else
			dump_problem(&c->x->f, ix_pos(c->x, c->next),
				     "entry (%s %" PRId64 ", %s %" PRId64 ") points past the last "
				     "batch of the log (its batches end at position %" PRId64
				     ", offset %" PRId64 ")",
				     c->x->time ? "timestamp" : "offset", c->a,
				     c->x->time ? "offset" : "position", c->b, c->end_pos,
				     c->last_offset);
	}
}

/* The sealed segment's largest timestamp must be in its time index. */
static void ixc_sealed_max(struct ix_check *c)
{
	int64_t last_ts = BATCH_NO_TIMESTAMP, off;
	if (c->x->n_ordered > 0 && ix_entry(c->x, c->x->n_ordered - 1, &last_ts, &off) != 0)
		return;
	if (c->max_ts > last_ts)
		dump_problem(&c->x->f, ix_pos(c->x, c->x->n_ordered),
			     "the segment is sealed (a later segment follows) but its largest "
			     "timestamp %" PRId64 " has no entry (the last is %" PRId64 "); sealing "
			     "adds one", c->max_ts, last_ts);
}

/* Pass 2, when the sibling .log exists. */
static int ix_check_log(struct ix_file *x, const char *log_path)
{
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	/* segment_scan_headers reads through segment_pread, which needs only
	 * the log's descriptor. */
	struct segment seg = { .base_offset = x->base, .log_fd = fd, .index_fd = -1,
			       .timeindex_fd = -1 };
	struct ix_check c = { .x = x, .prev_pos = -1, .max_ts = BATCH_NO_TIMESTAMP,
			      .last_offset = x->base - 1,
			      .scan_all = x->time && dump_segment_sealed(log_path, x->base) };
	uint64_t bytes_read = 0;
	int rc = 0;
	if (x->n_ordered > 0 || c.scan_all)
		rc = segment_scan_headers(&seg, 0, st.st_size, ixc_batch_cb, &c, &bytes_read);
	close(fd);
	if (rc < 0)
		return rc;
	ixc_leftovers(&c);
	if (c.err != 0)
		return c.err;
	if (c.scan_all)
		ixc_sealed_max(&c);
	if (!x->o->quiet)
		printf("checked %" PRIu32 " entries against %s%s\n", x->n_ordered, log_path,
		       c.scan_all ? " (sealed segment)" : "");
	return 0;
}

static void ix_summary(struct ix_file *x)
{
	int64_t fill = x->f.size > ix_pos(x, x->n) ? x->f.size - ix_pos(x, x->n) : 0;
	if (fill > 0 && !x->o->quiet)
		printf("%" PRId64 " bytes of zero fill at position %" PRId64 " (after the last "
		       "entry)\n", fill, ix_pos(x, x->n));
	printf("summary: %" PRIu32 " entries, %" PRId64 " bytes of zero fill, %d problems\n", x->n,
	       fill, x->f.problems);
}

/* Pass 2 if the sibling .log is there. 0, or -errno about the .log. */
static int ix_maybe_check_log(struct ix_file *x, const char *path, char *log_path, size_t cap)
{
	if (dump_sibling_path(log_path, cap, path, ".log") != 0)
		return -ENAMETOOLONG;
	if (access(log_path, F_OK) != 0) {
		if (!x->o->quiet)
			printf("no %s: entries not checked against batches\n", log_path);
		return 0;
	}
	return ix_check_log(x, log_path);
}

static int ix_dump(const char *path, const struct dump_opts *o, bool time)
{
	const char *ext = time ? ".timeindex" : ".index";
	struct ix_file x = { .o = o, .time = time,
			     .entry_bytes = time ? SEGMENT_TIMEINDEX_ENTRY_BYTES
						 : SEGMENT_INDEX_ENTRY_BYTES };
	x.base = dump_name_offset(path, ext);
	if (x.base < 0) {
		fprintf(stderr, "sluice-dump: %s: cannot tell the segment's base offset: the name is "
			"not <20 digits>%s\n", path, ext);
		return -1;
	}
	int rc = dump_file_open(&x.f, path);
	if (rc != 0)
		return dump_cannot_read(path, rc);
	printf("Dumping %s (%s, %" PRId64 " bytes, base offset %" PRId64 ")\n", path,
	       time ? "time index" : "offset index", x.f.size, x.base);
	char log_path[4096] = "";
	const char *failed = path;
	rc = ix_count(&x);
	if (rc == 0)
		rc = ix_print_and_order(&x);
	if (rc == 0) {
		failed = log_path;
		rc = ix_maybe_check_log(&x, path, log_path, sizeof(log_path));
	}
	if (rc == 0)
		ix_summary(&x);
	int problems = x.f.problems;
	dump_file_close(&x.f);
	return rc != 0 ? dump_cannot_read(failed, rc) : problems;
}

int dump_index(const char *path, const struct dump_opts *o)
{
	return ix_dump(path, o, false);
}

int dump_timeindex(const char *path, const struct dump_opts *o)
{
	return ix_dump(path, o, true);
}

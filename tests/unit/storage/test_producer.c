/*
 * Idempotent producers: duplicates, sequence gaps, epochs, the 5-batch
 * window, sequence wrap-around, and the state surviving reopen (clean, with
 * rolls, and after a crash that lost snapshots).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "storage/batch.h"
#include "storage/log.h"
#include "storage/producer_state.h"
#include "test_util.h"

struct fixture {
	char *dir;
	struct io_uring ring;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir();
	if (io_uring_queue_init(64, &f->ring, 0) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	io_uring_queue_exit(&f->ring);
	tu_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static struct plog *open_log(struct fixture *f, int64_t segment_bytes)
{
	struct log_config cfg = tu_config(segment_bytes, 128, FLUSH_ALWAYS);
	int err = -1;
	struct plog *l = plog_open(f->dir, &cfg, &err);
	assert_non_null(l);
	return l;
}

/* Append a batch of n records from producer pid/epoch at seq. */
static int produce(struct plog *l, int64_t pid, int16_t epoch, int32_t seq, int32_t n,
		   int64_t *base)
{
	struct tu_batch_spec spec = tu_spec(n, 1000, 30);
	spec.producer_id = pid;
	spec.producer_epoch = epoch;
	spec.base_sequence = seq;
	struct plog_append_result res;
	int rc = tu_append_spec(l, &spec, &res);
	if (base != NULL)
		*base = res.base_offset;
	return rc;
}

static void duplicates_answered_with_original_offset(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, 1 << 20);
	int64_t base;
	assert_int_equal(produce(l, 1000, 0, 0, 5, &base), 0);
	assert_int_equal(base, 0);
	assert_int_equal(produce(l, 1000, 0, 5, 3, &base), 0);
	assert_int_equal(base, 5);
	assert_int_equal(produce(l, 2000, 3, 0, 2, &base), 0); /* another producer */
	assert_int_equal(base, 8);
	assert_int_equal(produce(l, 1000, 0, 0, 5, &base), PLOG_DUPLICATE);
	assert_int_equal(base, 0);
	assert_int_equal(produce(l, 1000, 0, 5, 3, &base), PLOG_DUPLICATE);
	assert_int_equal(base, 5);
	assert_int_equal(plog_end_offset(l), 10);
	/* Same first sequence, different length: not a duplicate. */
	assert_int_equal(produce(l, 1000, 0, 5, 2, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	assert_int_equal(plog_stats(l)->duplicates, 2);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

static void out_of_order_sequences(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, 1 << 20);
	int64_t base;
	/* An unknown producer must start at 0. */
	assert_int_equal(produce(l, 7, 0, 3, 1, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	assert_int_equal(produce(l, 7, 0, 0, 4, &base), 0);
	assert_int_equal(produce(l, 7, 0, 5, 1, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	assert_int_equal(produce(l, 7, 0, 3, 1, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	assert_int_equal(produce(l, 7, 0, 4, 1, &base), 0);
	assert_int_equal(plog_end_offset(l), 5);
	/* Non-idempotent batches are never checked. */
	assert_int_equal(produce(l, -1, -1, -1, 2, &base), 0);
	assert_int_equal(produce(l, -1, -1, -1, 2, &base), 0);
	assert_int_equal(plog_end_offset(l), 9);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

static void epochs(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, 1 << 20);
	int64_t base;
	assert_int_equal(produce(l, 9, 0, 0, 2, &base), 0);
	assert_int_equal(produce(l, 9, 0, 2, 2, &base), 0);
	/* A new epoch restarts the sequence at 0, and nothing else. */
	assert_int_equal(produce(l, 9, 1, 4, 2, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	assert_int_equal(produce(l, 9, 1, 0, 2, &base), 0);
	assert_int_equal(base, 4);
	/* The old epoch is fenced, retries included. */
	assert_int_equal(produce(l, 9, 0, 4, 2, &base), PLOG_ERR_INVALID_PRODUCER_EPOCH);
	assert_int_equal(produce(l, 9, 0, 0, 2, &base), PLOG_ERR_INVALID_PRODUCER_EPOCH);
	assert_int_equal(produce(l, 9, 1, 0, 2, &base), PLOG_DUPLICATE);
	assert_int_equal(base, 4);
	assert_int_equal(produce(l, 9, 1, 2, 1, &base), 0);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

/* Only the last five batches are remembered, as in Kafka. */
static void five_batch_window(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, 1 << 20);
	int64_t base;
	for (int i = 0; i < 6; i++)
		assert_int_equal(produce(l, 5, 0, i, 1, &base), 0);
	assert_int_equal(produce(l, 5, 0, 0, 1, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	for (int i = 1; i < 6; i++) {
		assert_int_equal(produce(l, 5, 0, i, 1, &base), PLOG_DUPLICATE);
		assert_int_equal(base, i);
	}
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

static void sequence_wraps_at_int32_max(void **state)
{
	(void)state;
	struct producer_state ps;
	assert_int_equal(producer_state_init(&ps), 0);
	struct batch_hdr h = { .producer_id = 42, .producer_epoch = 3,
			       .base_sequence = INT32_MAX - 2, .last_offset_delta = 2 };
	assert_int_equal(producer_state_update(&ps, &h, 100), 0);
	int64_t dup;
	struct batch_hdr next = h;
	next.base_sequence = 0;
	next.last_offset_delta = 0;
	assert_int_equal(producer_state_check(&ps, &next, &dup), PRODUCER_APPEND);
	assert_int_equal(producer_state_check(&ps, &h, &dup), PRODUCER_DUPLICATE);
	assert_int_equal(dup, 100);
	next.base_sequence = 1;
	assert_int_equal(producer_state_check(&ps, &next, &dup), PRODUCER_ERR_OUT_OF_ORDER);
	/* A batch that itself wraps: INT32_MAX, 0, 1. */
	h.base_sequence = INT32_MAX;
	h.producer_epoch = 4;
	producer_state_clear(&ps);
	assert_int_equal(producer_state_update(&ps, &h, 200), 0);
	next.producer_epoch = 4;
	next.base_sequence = 2;
	assert_int_equal(producer_state_check(&ps, &next, &dup), PRODUCER_APPEND);
	producer_state_free(&ps);
}

/* Many producers: the table grows, and every one is found again. */
static void many_producers(void **state)
{
	(void)state;
	struct producer_state ps;
	assert_int_equal(producer_state_init(&ps), 0);
	for (int64_t pid = 0; pid < 5000; pid++) {
		struct batch_hdr h = { .producer_id = pid * 7919, .base_sequence = 0,
				       .last_offset_delta = 1 };
		assert_int_equal(producer_state_update(&ps, &h, pid * 2), 0);
	}
	assert_int_equal(ps.count, 5000);
	for (int64_t pid = 0; pid < 5000; pid++) {
		struct batch_hdr h = { .producer_id = pid * 7919, .base_sequence = 0,
				       .last_offset_delta = 1 };
		int64_t dup;
		assert_int_equal(producer_state_check(&ps, &h, &dup), PRODUCER_DUPLICATE);
		assert_int_equal(dup, pid * 2);
	}
	producer_state_free(&ps);
}

/* Producer state after reopening: dups still found, sequences continue. */
static void check_state_after_reopen(struct plog *l, int64_t end)
{
	int64_t base;
	assert_int_equal(plog_end_offset(l), end);
	assert_int_equal(produce(l, 77, 2, 36, 4, &base), PLOG_DUPLICATE);
	assert_int_equal(base, end - 4);
	assert_int_equal(produce(l, 77, 2, 32, 4, &base), PLOG_DUPLICATE);
	assert_int_equal(produce(l, 77, 2, 44, 4, &base), PLOG_ERR_OUT_OF_ORDER_SEQUENCE);
	assert_int_equal(produce(l, 77, 1, 40, 4, &base), PLOG_ERR_INVALID_PRODUCER_EPOCH);
	assert_int_equal(produce(l, 88, 0, 2, 1, &base), PLOG_DUPLICATE);
	assert_int_equal(produce(l, 77, 2, 40, 4, &base), 0);
	assert_int_equal(base, end);
}

/* 10 batches of producer 77 (epoch 2, 4 records each) with producer 88
 * and plain batches in between. Returns the end offset. */
static int64_t produce_history(struct fixture *f, struct plog *l)
{
	int64_t base;
	assert_int_equal(produce(l, 88, 0, 0, 1, &base), 0);
	assert_int_equal(produce(l, 88, 0, 1, 1, &base), 0);
	assert_int_equal(produce(l, 88, 0, 2, 1, &base), 0);
	assert_int_equal(produce(l, 77, 1, 0, 4, &base), 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(produce(l, -1, -1, -1, 2, &base), 0);
		assert_int_equal(produce(l, 77, 2, i * 4, 4, &base), 0);
		if (i % 3 == 0)
			tu_drive(&f->ring, l, 0);
	}
	tu_drive(&f->ring, l, 0);
	return plog_end_offset(l);
}

static void survives_clean_reopen(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, 1 << 20);
	int64_t end = produce_history(f, l);
	plog_close(l);
	l = open_log(f, 1 << 20);
	/* From the close-time snapshot: no batch header was read. */
	assert_true(plog_stats(l)->recovery_log_bytes_read < 1024);
	check_state_after_reopen(l, end);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

static void survives_reopen_with_rolls(void **state)
{
	struct fixture *f = *state;
	struct plog *l = open_log(f, 600);
	int64_t end = produce_history(f, l);
	assert_true(plog_stats(l)->rolls >= 4);
	plog_close(l);
	l = open_log(f, 600);
	check_state_after_reopen(l, end);
	tu_drive(&f->ring, l, 0);
	plog_close(l);
}

/* A crash: no clean-close snapshot. The state comes from the newest roll
 * snapshot plus the headers after it, or from all headers if none. */
static void rebuilt_after_crash(void **state)
{
	struct fixture *f = *state;
	for (int keep_roll_snapshots = 1; keep_roll_snapshots >= 0; keep_roll_snapshots--) {
		struct plog *l = open_log(f, 600);
		int64_t end = produce_history(f, l);
		plog_close(l);
		char snap[4096];
		tu_seg_path(snap, sizeof(snap), f->dir, end, ".snapshot");
		assert_int_equal(unlink(snap), 0);
		if (!keep_roll_snapshots) {
			int64_t offs[16];
			int n = producer_snapshot_list(f->dir, offs, 16);
			for (int i = 0; i < n; i++)
				producer_snapshot_unlink(f->dir, offs[i]);
		}
		l = open_log(f, 600);
		assert_false(tu_file_exists(snap));
		check_state_after_reopen(l, end);
		tu_drive(&f->ring, l, 0);
		assert_int_equal(plog_delete(l), 0);
	}
}

/* producer_snapshot_decode (used by sluice-dump) accepts what
 * producer_snapshot_write wrote and names where a damaged copy breaks. */
static void snapshot_decode_reports_position(void **state)
{
	struct fixture *f = *state;
	struct producer_state ps;
	assert_int_equal(producer_state_init(&ps), 0);
	struct batch_hdr h = { .producer_id = 7, .producer_epoch = 2, .base_sequence = 0,
			       .last_offset_delta = 4 };
	assert_int_equal(producer_state_update(&ps, &h, 100), 0);
	assert_int_equal(producer_snapshot_write(&ps, f->dir, 105, false), 0);
	char path[4096];
	tu_seg_path(path, sizeof(path), f->dir, 105, ".snapshot");
	uint8_t buf[256];
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	size_t len = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_true(len > 14 && len < sizeof(buf));
	size_t bad = 99;
	producer_state_clear(&ps);
	assert_int_equal(producer_snapshot_decode(&ps, buf, len, &bad), 0);
	assert_int_equal(ps.count, 1);
	buf[5] ^= 1; /* version */
	assert_int_equal(producer_snapshot_decode(&ps, buf, len, &bad), -EINVAL);
	assert_int_equal(bad, 4);
	buf[5] ^= 1;
	buf[len / 2] ^= 1; /* inside the entry: the CRC catches it */
	assert_int_equal(producer_snapshot_decode(&ps, buf, len, &bad), -EINVAL);
	assert_int_equal(bad, len - 4);
	buf[len / 2] ^= 1;
	assert_int_equal(producer_snapshot_decode(&ps, buf, len - 1, &bad), -EINVAL);
	producer_state_free(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(duplicates_answered_with_original_offset, setup,
						teardown),
		cmocka_unit_test_setup_teardown(out_of_order_sequences, setup, teardown),
		cmocka_unit_test_setup_teardown(epochs, setup, teardown),
		cmocka_unit_test_setup_teardown(five_batch_window, setup, teardown),
		cmocka_unit_test(sequence_wraps_at_int32_max),
		cmocka_unit_test(many_producers),
		cmocka_unit_test_setup_teardown(survives_clean_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(survives_reopen_with_rolls, setup, teardown),
		cmocka_unit_test_setup_teardown(rebuilt_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshot_decode_reports_position, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

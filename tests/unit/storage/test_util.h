/*
 * test_util: helpers for the storage unit tests: scratch directories, a
 * batch builder, and a tiny "shard loop" that drives a log's async flush
 * on a private io_uring (plog_flush, submit and wait, dispatch CQEs with
 * uring_op_dispatch) until the log is idle.
 */
#ifndef SLUICE_TEST_STORAGE_UTIL_H
#define SLUICE_TEST_STORAGE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <liburing.h>

#include "storage/log.h"

struct tu_batch_spec {
	int32_t records;        /* >= 1 */
	int64_t base_ts;
	int64_t ts_step;        /* record i has base_ts + i * ts_step ... */
	const int64_t *ts_deltas; /* ... unless given explicitly */
	int32_t value_bytes;
	int64_t producer_id;    /* -1: not idempotent */
	int16_t producer_epoch;
	int32_t base_sequence;
	int16_t attributes;     /* compression bits make the records opaque */
	uint8_t fill;           /* value byte */
};

/* A spec for n plain records with timestamps ts, ts+1, ... */
struct tu_batch_spec tu_spec(int32_t records, int64_t base_ts, int32_t value_bytes);

/* Kafka's zigzag varint of v at p; returns its length. */
size_t tu_put_varint(uint8_t *p, int64_t v);

/* Encode a v2 batch (base offset 0, CRC set) into buf. Returns its size;
 * aborts if cap is too small. */
size_t tu_batch(uint8_t *buf, size_t cap, const struct tu_batch_spec *spec);

/* Validate and append; returns plog_append's result. */
int tu_append(struct plog *l, const uint8_t *buf, size_t len, struct plog_append_result *res);

/* Build and append a batch from spec; returns plog_append's result. */
int tu_append_spec(struct plog *l, const struct tu_batch_spec *spec,
		   struct plog_append_result *res);

/* Run a miniature shard loop at now_ms: plog_flush, submit, wait,
 * dispatch, until nothing is in flight and a flush queues nothing (the log
 * is then idle, or only owes an interval sync that is not due). Returns
 * the number of turns, aborting after very many. */
int tu_drive(struct io_uring *ring, struct plog *l, int64_t now_ms);

/* The common fixture: a scratch directory and a private ring of
 * TU_RING_ENTRIES. For cmocka's setup/teardown. */
#define TU_RING_ENTRIES 256
struct tu_fixture {
	char *dir;
	struct io_uring ring;
};
int tu_fixture_setup(void **state);
int tu_fixture_teardown(void **state);

/* A storage backend on ring with O_DIRECT and the fault rules of faults
 * (NULL: none), put in cfg->io. Aborts if the rules do not parse. */
struct sio;
void tu_sio(struct sio *io, struct io_uring *ring, const char *faults, struct log_config *cfg);

/* plog_open that must succeed (aborts otherwise). */
struct plog *tu_open(const char *dir, const struct log_config *cfg);

/* A fresh scratch directory (malloc'ed path) and its removal. */
char *tu_tmpdir(void);
void tu_rm_rf(const char *path);

/* A log config for tests: small segments by default, retention off. */
struct log_config tu_config(int64_t segment_bytes, int32_t index_interval_bytes,
			    enum flush_mode flush);

/* "<dir>/<20-digit base><ext>" into buf. */
void tu_seg_path(char *buf, size_t cap, const char *dir, int64_t base, const char *ext);

int64_t tu_file_size(const char *path);
void tu_file_append(const char *path, const void *p, size_t n);
int tu_file_exists(const char *path);
int tu_count_files(const char *dir, const char *suffix);

#endif

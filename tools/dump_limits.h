/*
 * dump_limits.h: every bound sluice-dump holds itself to, in one place.
 *
 * The tool reads files of any size with memory bounded by the largest single
 * thing it must hold whole: one record batch (to check its CRC), its
 * decompressed records, or one producer snapshot.
 */
#ifndef SLUICE_TOOLS_DUMP_LIMITS_H
#define SLUICE_TOOLS_DUMP_LIMITS_H

#include "storage/limits.h"
#include "storage/producer_state.h"

/* Bytes read from a file at a time. 1 MiB holds many small batches (one
 * pread for all of them) and is read ahead sequentially by the kernel; a
 * batch larger than this is read on its own, up to BATCH_BYTES_MAX, which
 * batch_parse enforces before anything is allocated for it. */
#define DUMP_READ_CHUNK_BYTES (1024 * 1024)

/* Decompressed records of one compressed batch. An uncompressed batch may not pass
 * BATCH_BYTES_MAX, so neither may what a compressed one stands for; past it
 * the records are not shown (a note, not an error: the batch itself checked
 * out). */
#define DUMP_INFLATE_BYTES_MAX BATCH_BYTES_MAX

/* The largest producer snapshot storage can write: its 10-byte head, the CRC,
 * and PRODUCER_IDS_MAX producers with PRODUCER_BATCHES_KEPT batches each (11
 * + 24 bytes per batch; see producer_snapshot.c). A bigger file is not a
 * snapshot, and is not read into memory. */
#define DUMP_SNAPSHOT_BYTES_MAX \
	(10 + 4 + (int64_t)PRODUCER_IDS_MAX * (11 + PRODUCER_BATCHES_KEPT * 24))

#endif

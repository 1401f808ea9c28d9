/*
 * limits.h: every bound the storage library enforces, in one place.
 *
 * Per-topic settings (segment.bytes, index.interval.bytes, flush mode) come
 * in struct log_config; these are the compile-time ceilings and sizes behind
 * them. Each says why it has the value it has.
 */
#ifndef SLUICE_STORAGE_LIMITS_H
#define SLUICE_STORAGE_LIMITS_H

/* Largest record batch accepted from anyone (produce or disk). Kafka bounds a
 * batch by message.max.bytes (1 MiB default) and a request by
 * socket.request.max.bytes (100 MiB default); anything past 256 MiB is not a
 * batch but a corrupt length, and recovery must not trust it. */
#define BATCH_BYTES_MAX (256 * 1024 * 1024)

/* Write buffers: appends are copied into buffers of this size (a batch larger
 * than this gets a buffer of its own, rounded up to WBUF_ALIGN). 256 KiB holds
 * a turn's worth of typical produce traffic for one partition; several
 * buffers of one segment go out in one writev, so a bigger turn still costs
 * one write and one fdatasync. A shard's write-buffer pool is carved into
 * buffers of this size; 2 MiB hugepages hold exactly eight. */
#define WBUF_BYTES (256 * 1024)

/* Buffers are 4 KiB aligned and sized in 4 KiB multiples, as O_DIRECT
 * writes need (SIO_DIRECT_ALIGN). */
#define WBUF_ALIGN 4096

/* Buffers in one write-buffer pool (struct bufpool): 64 Ki x 256 KiB =
 * 16 GiB, past any sane share of a host's memory for one shard's unwritten
 * data (each log stops at PLOG_PENDING_BYTES_MAX anyway). Bounds the header
 * array allocated with the pool and keeps counts in 32 bits. */
#define BUFPOOL_BUFS_MAX (64 * 1024)

/* Largest buffer a pool carves (bufpool_init_sized): the size of one
 * registered-buffer slot (SIO_REG_BUF_BYTES_MAX, a kernel limit), so that
 * a buffer never straddles two slots and every I/O on it can be fixed. */
#define BUFPOOL_BUF_BYTES_MAX (1024UL * 1024 * 1024)

/* Bytes appended to a log but not yet written (pending plus in flight).
 * Past this plog_append answers PLOG_ERR_BUFFER_FULL: the disk is not keeping
 * up, and queueing more only adds latency and memory. 64 MiB is about a
 * quarter second of a fast NVMe device. */
#define PLOG_PENDING_BYTES_MAX (64 * 1024 * 1024)

/* Buffers one group commit writes (one write each, in parallel): 64 x
 * 256 KiB = 16 MiB per chain; more waits for the next chain. */
#define PLOG_CHAIN_BUFS_MAX 64

/* After a write finds the disk full, the log writes again this much later
 * (log_config.retry_ms 0; the broker's knob is log.write.retry.ms). Often
 * enough that producers resume soon after space is freed, rarely enough
 * that a full disk costs nothing. */
#define PLOG_WRITE_RETRY_MS_DEFAULT 1000

/* Index entries per segment file, as Kafka's segment.index.bytes default of
 * 10 MiB allows (10 MiB / 8 and 10 MiB / 12). A segment whose index is full
 * is rolled, exactly as Kafka does; this also bounds the memory an active
 * segment's index may map. */
#define SEGMENT_INDEX_ENTRIES_MAX (10 * 1024 * 1024 / 8)
#define SEGMENT_TIMEINDEX_ENTRIES_MAX (10 * 1024 * 1024 / 12)

/* Header scans over long stretches of a segment (producer-state replay,
 * index rebuilds) read windows of this size; after a batch larger than a
 * quarter of it, only the next header's page. */
#define SCAN_WINDOW_BYTES (1024 * 1024)

/* A log writes a producer snapshot (without sync) after every this many
 * bytes appended, besides the one at each roll: recovery replays batch
 * headers only from the newest snapshot, so this bounds the replay after a
 * crash whatever the segment size. */
#define PRODUCER_SNAPSHOT_INTERVAL_BYTES (64 * 1024 * 1024)

/* Recovery reads the active segment's tail in chunks of this size; a batch
 * larger than a chunk is read on its own. */
#define RECOVER_CHUNK_BYTES (1024 * 1024)

/* Idempotent producers remembered per partition. Kafka expires idle
 * producers after producer.id.expiration.ms; until expiry exists here, the
 * producer with the oldest last append is forgotten when the table is full
 * (it then has to start a new epoch, as after expiry in Kafka). */
#define PRODUCER_IDS_MAX (64 * 1024)

/* Batches per producer kept for duplicate detection: Kafka's
 * ProducerStateEntry.NUM_BATCHES_TO_RETAIN, matching the client's
 * max.in.flight.requests.per.connection limit of 5 for idempotence. */
#define PRODUCER_BATCHES_KEPT 5

/* Producer snapshots kept in a partition directory. More than one, so that a
 * crash that loses the newest (taken at a roll whose data never became
 * durable) can still start from the one before. */
#define PRODUCER_SNAPSHOTS_KEPT 3

/* Compaction (log_compact.c). The cleaner's offset map holds at most this
 * share of its slots (Kafka's log.cleaner.io.buffer.load.factor is 0.9;
 * linear probing wants a little more room to stay short). */
#define COMPACT_MAP_LOAD_PCT 75

/* The cleaner reads segments in chunks of this size (a larger batch is
 * read on its own), and writes its output when this much is buffered. */
#define COMPACT_IO_CHUNK_BYTES (256 * 1024)

/* A compressed batch (gzip, snappy, lz4, zstd) whose records decompress
 * past this is kept whole rather than filtered, so the cleaner's buffers
 * stay bounded whatever a producer sent: the default of the broker's
 * log.cleaner.decompress.max.bytes (struct cleaner_config), and the bound
 * Produce uses when it looks for keyless records on a compacted topic.
 * 64 MiB is 64 times message.max.bytes' default of 1 MiB, past the ratio
 * of any codec on real records. */
#define COMPACT_DECOMPRESS_BYTES_DEFAULT (64 * 1024 * 1024)

/* The knob's range: at least a default-size batch uncompressed (smaller
 * would leave most compressed batches uncleaned), at most 1 GiB (isa-l
 * counts output in 32 bits, and a shard's cleaner should not hold more
 * for one batch). */
#define COMPACT_DECOMPRESS_BYTES_MIN (1024 * 1024)
#define COMPACT_DECOMPRESS_BYTES_MAX (1024 * 1024 * 1024)

/* After a compaction swap, the replaced segments' files are shrunk by this
 * many slices (log.cleaner.slice.bytes) per cleaner step before they are
 * removed: ext4 frees a file's blocks when its last reference goes, about
 * 0.25-1 ms per MiB on the benchmark machine, so a 1 GiB segment removed
 * at once would stall the thread for a quarter of a second or more; 4 x
 * 256 KiB is about a millisecond a step. */
#define COMPACT_FREE_SLICES_PER_STEP 4

/* Smallest offset map the cleaner accepts (log.cleaner.dedupe.buffer.size):
 * it must hold the records of any one batch, and 1 MiB holds ~32 Ki keys. */
#define COMPACT_MAP_BYTES_MIN (1024 * 1024)

/* Largest offset map: Kafka's cap of 2 GiB per cleaner thread (its
 * "cannot use more than 2G of cleaner buffer space per cleaner thread"),
 * ~67 M keys a round, which also keeps the map's slot count in 32 bits. */
#define COMPACT_MAP_BYTES_MAX ((int64_t)2 * 1024 * 1024 * 1024 - 1)

/* Besides fitting the shard's budget, the offset maps of all shards
 * together may take at most this share of the machine's physical memory
 * (they are allocated whole, and the page cache, the write pools and
 * everything else on the host need the rest). */
#define COMPACT_MAP_PHYS_MEMORY_PCT 50

#endif

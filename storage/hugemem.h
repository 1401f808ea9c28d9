/*
 * hugemem: large, long-lived memory regions for buffer pools (a shard's
 * provided receive buffers, its write-buffer pool), on hugepages when the
 * host has them reserved and plain anonymous memory otherwise.
 *
 * Regions are mapped once at start-up and unmapped at shutdown; nothing on
 * the hot path maps or unmaps. Either kind comes prefaulted, so the pool's
 * first use takes no page faults and a shortage shows at start-up.
 *
 * Which kind a process got is told once, by the first mapping, through the
 * storage logger (slog_set_logger). One more line is told at most once: when a
 * later region falls back to anonymous memory after an earlier one got
 * hugepages (the reserve ran out part way through the shards), since the
 * first line would then no longer be the whole truth.
 *
 * Threading: hugemem_map and hugemem_unmap may be called from any thread;
 * they block (mmap, prefaulting, reading sysfs): start-up and shutdown only.
 */
#ifndef SLUICE_STORAGE_HUGEMEM_H
#define SLUICE_STORAGE_HUGEMEM_H

#include <stdbool.h>
#include <stddef.h>

enum hugemem_policy {
	HUGEMEM_AUTO,    /* hugepages when reserved, else anonymous memory */
	HUGEMEM_OFF,     /* always anonymous memory */
	HUGEMEM_REQUIRE, /* hugepages or fail */
};

struct hugemem {
	void *base;
	size_t bytes;      /* mapped (rounded up to the page size used) */
	size_t page_bytes; /* page size backing it: 4 KiB, or the hugepage size */
	bool huge;         /* backed by hugepages */
};

/* "auto" | "off" | "require" (anything else: AUTO). */
enum hugemem_policy hugemem_policy_parse(const char *s);

/* Map a zeroed, prefaulted region of at least bytes (> 0), 4 KiB aligned
 * at least (hugepage aligned when huge). Returns 0 (m filled), -EINVAL for
 * bytes 0, -ENOMEM for REQUIRE without enough free hugepages (also told
 * to the logger, with the reason), or the -errno of a failed mmap. On
 * failure m is zeroed. */
int hugemem_map(struct hugemem *m, size_t bytes, enum hugemem_policy policy);

/* Unmap a region from hugemem_map (a zeroed m is fine) and zero m. */
void hugemem_unmap(struct hugemem *m);

#endif

/*
 * hugemem: large, long-lived memory regions for buffer pools (a shard's
 * provided receive buffers, its write-buffer pool), on hugepages when the
 * host has them reserved and plain anonymous memory otherwise.
 *
 * Regions are mapped once at start-up and unmapped at shutdown; nothing on
 * the hot path maps or unmaps. Which kind a process got is logged once, by
 * the first mapping.
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
	size_t bytes; /* mapped (rounded up to the page size used) */
	bool huge;    /* backed by hugepages */
};

/* "auto" | "off" | "require" (anything else: AUTO). */
enum hugemem_policy hugemem_policy_parse(const char *s);

/* Map a zeroed region of at least bytes, 4 KiB aligned at least. 0, or
 * -errno (-ENOMEM for REQUIRE without enough hugepages). */
int hugemem_map(struct hugemem *m, size_t bytes, enum hugemem_policy policy);
void hugemem_unmap(struct hugemem *m);

#endif

/*
 * hugemem: regions on hugepages through libhugetlbfs, else anonymous mmap.
 *
 * Hugepages come from libhugetlbfs's get_huge_pages rather than a bare
 * mmap(MAP_HUGETLB) because the library knows the kernels' differences:
 * it maps from a hugetlbfs mount where MAP_HUGETLB is missing or the page
 * size is not the default, and prefaults where the kernel does not reserve
 * private hugepages at mmap time. Where it does (every kernel we run on),
 * a short reserve fails the mmap, here at start-up, rather than with
 * SIGBUS on a first touch in the middle of a produce; the library then
 * leaves the pages unfaulted, so we touch them ourselves.
 *
 * Before asking the library we count the free pages ourselves (sysfs, for
 * the page size the library will use): without enough, the answer is known
 * and the library would only print a warning of its own on stderr. The
 * count can be stale when shards map at the same time; then
 * get_huge_pages fails and the policy decides, as with any shortage.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* hugetlbfs.h uses size_t without including its definition. */
#include <stddef.h>
#include <hugetlbfs.h>

#include "storage/hugemem.h"
#include "storage/slog.h"

#define HUGEMEM_BASE_PAGE_BYTES 4096
#define HUGEMEM_LINE_BYTES 256
#define HUGEMEM_HINT "deploy/hugepages.sh reserves"

/* What has been told: the first mapping, and the one fallback line. */
static atomic_bool hugemem_told_first, hugemem_told_fallback;
/* Some region of this process got hugepages. */
static atomic_bool hugemem_got_huge;

static void hugemem_tell(const char *line)
{
	slog("%s", line);
}

enum hugemem_policy hugemem_policy_parse(const char *s)
{
	if (strcmp(s, "off") == 0)
		return HUGEMEM_OFF;
	if (strcmp(s, "require") == 0)
		return HUGEMEM_REQUIRE;
	return HUGEMEM_AUTO;
}

/* One counter of the hugepage pool of a size, or 0 if it cannot be read
 * (no such size, no sysfs: no hugepages to be had either way). */
static long hugemem_sysfs_count(long page_bytes, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%ldkB/%s",
		 page_bytes / 1024, name);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	long v = 0;
	if (fscanf(f, "%ld", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* Pages a new mapping may still take: the free ones not promised to
 * mappings made earlier (resv), plus what overcommit may add. *reserved
 * says whether the host set any aside at all. */
static long hugemem_pages_available(long page_bytes, bool *reserved)
{
	long total = hugemem_sysfs_count(page_bytes, "nr_hugepages");
	long free_pages = hugemem_sysfs_count(page_bytes, "free_hugepages");
	long resv = hugemem_sysfs_count(page_bytes, "resv_hugepages");
	long over = hugemem_sysfs_count(page_bytes, "nr_overcommit_hugepages");
	long surplus = hugemem_sysfs_count(page_bytes, "surplus_hugepages");
	*reserved = total > 0 || over > 0;
	long avail = free_pages > resv ? free_pages - resv : 0;
	return avail + (over > surplus ? over - surplus : 0);
}

/* "2 MiB", "1 GiB": hugepage sizes read as people write them. */
static void hugemem_size_str(char *buf, size_t cap, long page_bytes)
{
	if (page_bytes >= (1L << 30))
		snprintf(buf, cap, "%ld GiB", page_bytes >> 30);
	else
		snprintf(buf, cap, "%ld MiB", page_bytes >> 20);
}

/* Whether need pages of page bytes can be had; if not, why says so. */
static bool hugemem_enough(long page, long need, long *avail, char *why)
{
	bool reserved;
	char size[32];
	*avail = hugemem_pages_available(page, &reserved);
	hugemem_size_str(size, sizeof(size), page);
	if (!reserved)
		snprintf(why, HUGEMEM_LINE_BYTES, "no %s hugepages reserved; " HUGEMEM_HINT " them",
			 size);
	else if (*avail < need)
		snprintf(why, HUGEMEM_LINE_BYTES,
			 "%s hugepages: %ld free, %ld needed; " HUGEMEM_HINT " more", size, *avail, need);
	return reserved && *avail >= need;
}

/* Take the page faults now, one per page, not on the hot path. The pages
 * are zero already; writing a zero changes nothing but makes them ours. */
static void hugemem_touch(uint8_t *p, size_t len, size_t page)
{
	for (size_t off = 0; off < len; off += page)
		((volatile uint8_t *)p)[off] = 0;
}

/* Try hugepages. 0 with m filled and line describing it, or -ENOMEM with
 * why saying what was missing. */
static int hugemem_map_huge(struct hugemem *m, size_t bytes, char *line, char *why)
{
	long page = gethugepagesize();
	if (page <= 0) {
		snprintf(why, HUGEMEM_LINE_BYTES, "the kernel offers no hugepages");
		return -ENOMEM;
	}
	if (bytes > SIZE_MAX - (size_t)page) {
		snprintf(why, HUGEMEM_LINE_BYTES, "%zu bytes is no size for a region", bytes);
		return -ENOMEM;
	}
	size_t len = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
	long need = (long)(len / (size_t)page), avail;
	if (!hugemem_enough(page, need, &avail, why))
		return -ENOMEM;
	char size[32];
	hugemem_size_str(size, sizeof(size), page);
	void *p = get_huge_pages(len, GHP_DEFAULT);
	if (p == NULL) {
		snprintf(why, HUGEMEM_LINE_BYTES, "%s hugepages: %ld looked free, but taking %ld failed: %s",
			 size, avail, need, strerror(errno));
		return -ENOMEM;
	}
	hugemem_touch(p, len, (size_t)page);
	*m = (struct hugemem){ .base = p, .bytes = len, .page_bytes = (size_t)page, .huge = true };
	snprintf(line, HUGEMEM_LINE_BYTES, "buffer pools: %s hugepages (%ld for this region, %ld left)",
		 size, need, avail - need);
	return 0;
}

/* Anonymous memory, prefaulted (MAP_POPULATE) like the hugepage kind: the
 * faults are taken here once rather than on the hot path, and the memory
 * is really there when start-up says it is. */
static int hugemem_map_anon(struct hugemem *m, size_t bytes)
{
	if (bytes > SIZE_MAX - HUGEMEM_BASE_PAGE_BYTES)
		return -ENOMEM;
	size_t len = (bytes + HUGEMEM_BASE_PAGE_BYTES - 1) & ~(size_t)(HUGEMEM_BASE_PAGE_BYTES - 1);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*m = (struct hugemem){ .base = p, .bytes = len, .page_bytes = HUGEMEM_BASE_PAGE_BYTES };
	return 0;
}

/* Tell the first mapping's kind once, and once more an AUTO region that
 * fell back to anonymous memory after another got hugepages (hugemem.h). */
static void hugemem_tell_mapped(const struct hugemem *m, enum hugemem_policy policy,
				const char *line, const char *why)
{
	char buf[2 * HUGEMEM_LINE_BYTES];
	if (m->huge)
		atomic_store(&hugemem_got_huge, true);
	if (!atomic_exchange(&hugemem_told_first, true)) {
		if (!m->huge) {
			snprintf(buf, sizeof(buf), "buffer pools: anonymous memory (%s)", why);
			line = buf;
		}
		hugemem_tell(line);
		return;
	}
	if (!m->huge && policy == HUGEMEM_AUTO && atomic_load(&hugemem_got_huge) &&
	    !atomic_exchange(&hugemem_told_fallback, true)) {
		snprintf(buf, sizeof(buf),
			 "buffer pools: hugepages ran out, a %zu MiB region is anonymous memory (%s)",
			 (m->bytes + (1 << 20) - 1) >> 20, why);
		hugemem_tell(buf);
	}
}

int hugemem_map(struct hugemem *m, size_t bytes, enum hugemem_policy policy)
{
	memset(m, 0, sizeof(*m));
	if (bytes == 0)
		return -EINVAL;
	char line[HUGEMEM_LINE_BYTES] = "", why[HUGEMEM_LINE_BYTES] = "hugepages = off";
	int rc = -ENOMEM;
	if (policy != HUGEMEM_OFF)
		rc = hugemem_map_huge(m, bytes, line, why);
	if (rc != 0 && policy == HUGEMEM_REQUIRE) {
		/* Told every time: the caller is about to fail start-up. */
		char buf[2 * HUGEMEM_LINE_BYTES];
		snprintf(buf, sizeof(buf), "buffer pools: hugepages = require, but %s", why);
		hugemem_tell(buf);
		return rc;
	}
	if (rc != 0)
		rc = hugemem_map_anon(m, bytes);
	if (rc != 0)
		return rc;
	hugemem_tell_mapped(m, policy, line, why);
	return 0;
}

void hugemem_unmap(struct hugemem *m)
{
	if (m->base != NULL && m->huge)
		free_huge_pages(m->base);
	else if (m->base != NULL)
		munmap(m->base, m->bytes);
	memset(m, 0, sizeof(*m));
}

/*
 * hugemem: regions of either kind are zeroed, aligned and writable; AUTO
 * takes hugepages exactly when the host has enough free, REQUIRE fails
 * cleanly without them; the kind is told once. What to expect is read from
 * /proc/meminfo, so the same tests pass with and without a reserve (to
 * see hugepages used: echo 64 > /proc/sys/vm/nr_hugepages first).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "storage/hugemem.h"
#include "storage/slog.h"

#define MIB (1024 * 1024)

/* What the logger was told, in order. */
static char told[16][512];
static int n_told;

static void capture(const char *line)
{
	print_message("hugemem told: %s\n", line);
	if (n_told < (int)(sizeof(told) / sizeof(told[0])))
		snprintf(told[n_told++], sizeof(told[0]), "%s", line);
}

struct meminfo {
	long total, free_pages, rsvd, page_bytes;
};

static struct meminfo meminfo_read(void)
{
	struct meminfo mi = { 0 };
	FILE *f = fopen("/proc/meminfo", "r");
	assert_non_null(f);
	char line[256];
	long kb;
	while (fgets(line, sizeof(line), f) != NULL) {
		sscanf(line, "HugePages_Total: %ld", &mi.total);
		sscanf(line, "HugePages_Free: %ld", &mi.free_pages);
		sscanf(line, "HugePages_Rsvd: %ld", &mi.rsvd);
		if (sscanf(line, "Hugepagesize: %ld kB", &kb) == 1)
			mi.page_bytes = kb * 1024;
	}
	fclose(f);
	return mi;
}

/* Hugepages a new mapping may take now. */
static long meminfo_available(void)
{
	struct meminfo mi = meminfo_read();
	return mi.free_pages > mi.rsvd ? mi.free_pages - mi.rsvd : 0;
}

static void expect_zeroed_and_usable(const struct hugemem *m, size_t asked)
{
	assert_non_null(m->base);
	assert_true(m->bytes >= asked);
	assert_true(m->page_bytes >= 4096);
	assert_int_equal(m->bytes % m->page_bytes, 0);
	assert_int_equal((uintptr_t)m->base % m->page_bytes, 0);
	const uint64_t *w = m->base;
	for (size_t i = 0; i < m->bytes / sizeof(*w); i++)
		assert_int_equal(w[i], 0);
	memset(m->base, 0xa5, m->bytes);
}

static void expect_unmapped(struct hugemem *m)
{
	hugemem_unmap(m);
	assert_null(m->base);
	assert_int_equal(m->bytes, 0);
	assert_false(m->huge);
}

/* Runs first: the first mapping of the process is told, the rest not
 * (OFF, so that none can be an AUTO fallback, which has a line of its
 * own: see fallback_after_hugepages_told_once). */
static void first_mapping_told_once(void **state)
{
	(void)state;
	struct hugemem m[3];
	assert_int_equal(hugemem_map(&m[0], 1 * MIB, HUGEMEM_AUTO), 0);
	assert_int_equal(hugemem_map(&m[1], 1 * MIB, HUGEMEM_OFF), 0);
	assert_int_equal(hugemem_map(&m[2], 1 * MIB, HUGEMEM_OFF), 0);
	assert_int_equal(n_told, 1);
	assert_int_equal(strncmp(told[0], "buffer pools: ", 14), 0);
	if (m[0].huge)
		assert_non_null(strstr(told[0], "hugepages"));
	else
		assert_non_null(strstr(told[0], "anonymous memory"));
	for (int i = 0; i < 3; i++)
		hugemem_unmap(&m[i]);
}

static void off_gives_zeroed_anonymous_memory(void **state)
{
	(void)state;
	struct hugemem m;
	size_t asked = 3 * MIB + 1;
	assert_int_equal(hugemem_map(&m, asked, HUGEMEM_OFF), 0);
	assert_false(m.huge);
	assert_int_equal(m.page_bytes, 4096);
	assert_int_equal(m.bytes, 3 * MIB + 4096);
	expect_zeroed_and_usable(&m, asked);
	expect_unmapped(&m);
}

/* AUTO takes hugepages exactly when enough are free, else falls back. */
static void auto_gives_zeroed_memory(void **state)
{
	(void)state;
	struct meminfo mi = meminfo_read();
	size_t asked = 4 * MIB;
	long need = mi.page_bytes > 0 ? (long)((asked + (size_t)mi.page_bytes - 1) /
					       (size_t)mi.page_bytes) : 1;
	bool expect_huge = mi.page_bytes > 0 && meminfo_available() >= need;
	struct hugemem m;
	assert_int_equal(hugemem_map(&m, asked, HUGEMEM_AUTO), 0);
	print_message("AUTO: %s (%ld hugepages free before)\n",
		      m.huge ? "hugepages" : "anonymous memory", mi.free_pages);
	assert_int_equal(m.huge, expect_huge);
	if (m.huge) {
		assert_int_equal(m.page_bytes, (size_t)mi.page_bytes);
		/* The pages are taken now (prefaulted), not at first touch. */
		assert_int_equal(meminfo_read().free_pages, mi.free_pages - need);
	}
	expect_zeroed_and_usable(&m, asked);
	expect_unmapped(&m);
	if (expect_huge)
		assert_int_equal(meminfo_read().free_pages, mi.free_pages);
}

static void require_fails_cleanly_without_hugepages(void **state)
{
	(void)state;
	struct meminfo mi = meminfo_read();
	long avail = meminfo_available();
	int before = n_told;
	struct hugemem m;
	int rc = hugemem_map(&m, 2 * MIB, HUGEMEM_REQUIRE);
	if (mi.total == 0) {
		assert_int_equal(rc, -ENOMEM);
		assert_null(m.base);
		assert_int_equal(m.bytes, 0);
		/* Failures are told every time, with the way out. */
		assert_int_equal(n_told, before + 1);
		assert_non_null(strstr(told[before], "hugepages = require"));
		assert_non_null(strstr(told[before], "deploy/hugepages.sh"));
		return;
	}
	if (avail * mi.page_bytes < 2 * MIB) {
		assert_int_equal(rc, -ENOMEM);
		return;
	}
	assert_int_equal(rc, 0);
	assert_true(m.huge);
	expect_zeroed_and_usable(&m, 2 * MIB);
	expect_unmapped(&m);
}

static void bad_arguments(void **state)
{
	(void)state;
	struct hugemem m;
	assert_int_equal(hugemem_map(&m, 0, HUGEMEM_OFF), -EINVAL);
	assert_null(m.base);
	hugemem_unmap(&m); /* a zeroed region is fine */
	assert_int_equal(hugemem_policy_parse("off"), HUGEMEM_OFF);
	assert_int_equal(hugemem_policy_parse("require"), HUGEMEM_REQUIRE);
	assert_int_equal(hugemem_policy_parse("auto"), HUGEMEM_AUTO);
	assert_int_equal(hugemem_policy_parse("bogus"), HUGEMEM_AUTO);
}

/* With a reserve: once it is used up, AUTO falls back, and says so once. */
static void fallback_after_hugepages_told_once(void **state)
{
	(void)state;
	struct meminfo mi = meminfo_read();
	long avail = meminfo_available();
	if (mi.page_bytes <= 0 || avail == 0)
		skip();
	struct hugemem all, rest[2];
	assert_int_equal(hugemem_map(&all, (size_t)(avail * mi.page_bytes), HUGEMEM_AUTO), 0);
	assert_true(all.huge);
	int before = n_told;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(hugemem_map(&rest[i], 1 * MIB, HUGEMEM_AUTO), 0);
		assert_false(rest[i].huge);
		expect_zeroed_and_usable(&rest[i], 1 * MIB);
	}
	/* Once per process: an earlier test may have had it told already
	 * (with a reserve too small for auto_gives_zeroed_memory). */
	int ran_out = 0;
	for (int i = 0; i < n_told; i++)
		ran_out += strstr(told[i], "ran out") != NULL;
	assert_int_equal(ran_out, 1);
	assert_true(n_told <= before + 1);
	hugemem_unmap(&all);
	for (int i = 0; i < 2; i++)
		hugemem_unmap(&rest[i]);
}

int main(void)
{
	slog_set_logger(capture);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(first_mapping_told_once),
		cmocka_unit_test(off_gives_zeroed_anonymous_memory),
		cmocka_unit_test(auto_gives_zeroed_memory),
		cmocka_unit_test(require_fails_cleanly_without_hugepages),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(fallback_after_hugepages_told_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

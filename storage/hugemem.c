/*
 * hugemem: see hugemem.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "storage/hugemem.h"

enum hugemem_policy hugemem_policy_parse(const char *s)
{
	if (strcmp(s, "off") == 0)
		return HUGEMEM_OFF;
	if (strcmp(s, "require") == 0)
		return HUGEMEM_REQUIRE;
	return HUGEMEM_AUTO;
}

int hugemem_map(struct hugemem *m, size_t bytes, enum hugemem_policy policy)
{
	memset(m, 0, sizeof(*m));
	if (policy == HUGEMEM_REQUIRE)
		return -ENOMEM; /* hugepage support arrives with libhugetlbfs */
	size_t len = (bytes + 4095) & ~(size_t)4095;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->base = p;
	m->bytes = len;
	return 0;
}

void hugemem_unmap(struct hugemem *m)
{
	if (m->base != NULL)
		munmap(m->base, m->bytes);
	memset(m, 0, sizeof(*m));
}

/*
 * verify: the two tiers of assertions, for the storage library (which may
 * not depend on dataplane/, where the same macros live).
 *
 * VERIFY(cond) is always on: an invariant whose failure means the process
 * can no longer be trusted with data, so it aborts with the location.
 * ASSERT(cond) is for checks too costly for production builds (NDEBUG).
 * Disk contents and client input never reach either: they get an error.
 */
#ifndef SLUICE_STORAGE_VERIFY_H
#define SLUICE_STORAGE_VERIFY_H

#include <stdio.h>
#include <stdlib.h>

#ifndef VERIFY
#define VERIFY(cond)                                                              \
	do {                                                                      \
		if (__builtin_expect(!(cond), 0)) {                               \
			fprintf(stderr, "VERIFY failed: %s at %s:%d\n", #cond,    \
				__FILE__, __LINE__);                              \
			abort();                                                  \
		}                                                                 \
	} while (0)
#endif

#ifndef ASSERT
#ifdef NDEBUG
#define ASSERT(cond) ((void)0)
#else
#define ASSERT(cond) VERIFY(cond)
#endif
#endif

#endif

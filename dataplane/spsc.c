/* spsc: ring set-up. The push/pop fast paths are inline in spsc.h. */
#include <errno.h>
#include <string.h>

#include "spsc.h"

int spsc_init(struct spsc *r, void **slots, uint32_t capacity)
{
	if (capacity < 2 || (capacity & (capacity - 1)) != 0 || slots == NULL)
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	r->slots = slots;
	r->mask = capacity - 1;
	return 0;
}

/*
 * bufpool: see bufpool.h. A free list threaded through the headers; a
 * buffer is the pool's when its header lies inside hdrs[], so a put needs
 * no lookup and no flag.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/bufpool.h"
#include "storage/limits.h"
#include "storage/verify.h"

/* hugemem regions are at least 4 KiB aligned, so every buffer carved at a
 * multiple of the buffer size (WBUF_BYTES, or a multiple of WBUF_ALIGN)
 * is WBUF_ALIGN aligned. */
_Static_assert(WBUF_BYTES % WBUF_ALIGN == 0, "buffers must stay aligned");
_Static_assert(4096 % WBUF_ALIGN == 0, "hugemem's alignment must cover WBUF_ALIGN");
_Static_assert(BATCH_BYTES_MAX <= UINT32_MAX - WBUF_ALIGN, "wbuf cap is 32 bits");

int bufpool_init(struct bufpool *p, size_t bytes, enum hugemem_policy policy)
{
	return bufpool_init_sized(p, bytes, WBUF_BYTES, policy);
}

int bufpool_init_sized(struct bufpool *p, size_t bytes, size_t buf_bytes,
		       enum hugemem_policy policy)
{
	memset(p, 0, sizeof(*p));
	if (buf_bytes == 0 || buf_bytes % WBUF_ALIGN != 0 || buf_bytes > BUFPOOL_BUF_BYTES_MAX)
		return -EINVAL;
	size_t n = bytes / buf_bytes;
	if (n == 0 || n > BUFPOOL_BUFS_MAX)
		return -EINVAL;
	p->hdrs = calloc(n, sizeof(*p->hdrs));
	if (p->hdrs == NULL)
		return -ENOMEM;
	int rc = hugemem_map(&p->mem, n * buf_bytes, policy);
	if (rc != 0) {
		free(p->hdrs);
		p->hdrs = NULL;
		return rc;
	}
	uint8_t *base = p->mem.base;
	/* Pushed from the top down, so buffers go out from the bottom of the
	 * region first: a lightly used pool touches the fewest pages. */
	for (size_t i = n; i-- > 0;) {
		struct wbuf *b = &p->hdrs[i];
		b->data = base + i * buf_bytes;
		b->cap = (uint32_t)buf_bytes;
		b->next = p->free;
		p->free = b;
	}
	p->total = p->n_free = (uint32_t)n;
	p->buf_bytes = (uint32_t)buf_bytes;
	return 0;
}

void bufpool_destroy(struct bufpool *p)
{
	VERIFY(p->n_free == p->total && p->oversize_bytes == 0 && p->n_retained == 0);
	hugemem_unmap(&p->mem);
	free(p->hdrs);
	memset(p, 0, sizeof(*p));
}

bool bufpool_owns(const struct bufpool *p, const struct wbuf *b)
{
	uintptr_t a = (uintptr_t)b, lo = (uintptr_t)p->hdrs;
	return a >= lo && a < lo + (uintptr_t)p->total * sizeof(*b);
}

static void ret_unlink(struct bufpool *p, struct wbuf *b)
{
	if (b->ret_prev != NULL)
		b->ret_prev->ret_next = b->ret_next;
	else
		p->ret_head = b->ret_next;
	if (b->ret_next != NULL)
		b->ret_next->ret_prev = b->ret_prev;
	else
		p->ret_tail = b->ret_prev;
	b->ret_prev = b->ret_next = NULL;
	b->owner = NULL;
	p->n_retained--;
}

static void bufpool_put_free(struct bufpool *p, struct wbuf *b)
{
	/* More buffers back than exist: a buffer was put twice. */
	VERIFY(p->n_free + p->n_retained < p->total);
	b->next = p->free;
	p->free = b;
	p->n_free++;
}

/* Take the oldest retained buffer back from its owner. */
static void bufpool_evict_oldest(struct bufpool *p)
{
	struct wbuf *b = p->ret_head;
	p->on_evict(b);
	ret_unlink(p, b);
	bufpool_put_free(p, b);
	p->evictions++;
}

void bufpool_retain(struct bufpool *p, struct wbuf *b, void *owner)
{
	VERIFY(bufpool_owns(p, b));
	if (p->retain_max == 0 || p->on_evict == NULL) {
		bufpool_put_free(p, b);
		return;
	}
	b->owner = owner;
	b->ret_next = NULL;
	b->ret_prev = p->ret_tail;
	if (p->ret_tail != NULL)
		p->ret_tail->ret_next = b;
	else
		p->ret_head = b;
	p->ret_tail = b;
	p->n_retained++;
	while (p->n_retained > p->retain_max)
		bufpool_evict_oldest(p);
}

void bufpool_unretain(struct bufpool *p, struct wbuf *b)
{
	ret_unlink(p, b);
	bufpool_put_free(p, b);
}

struct wbuf *bufpool_get(struct bufpool *p, size_t len)
{
	if (len > p->buf_bytes) {
		struct wbuf *big = wbuf_new(len);
		if (big != NULL)
			p->oversize_bytes += big->cap;
		return big;
	}
	if (p->free == NULL && p->ret_head != NULL)
		bufpool_evict_oldest(p);
	struct wbuf *b = p->free;
	if (b == NULL) {
		p->exhausted++;
		return NULL;
	}
	p->free = b->next;
	p->n_free--;
	b->next = NULL;
	b->seg = NULL;
	b->len = 0;
	b->head = 0;
	return b;
}

void bufpool_put(struct bufpool *p, struct wbuf *b)
{
	if (!bufpool_owns(p, b)) {
		VERIFY(p->oversize_bytes >= b->cap);
		p->oversize_bytes -= b->cap;
		wbuf_free(b);
		return;
	}
	bufpool_put_free(p, b);
}

uint64_t bufpool_in_use_bytes(const struct bufpool *p)
{
	return (uint64_t)(p->total - p->n_free - p->n_retained) * p->buf_bytes;
}

struct wbuf *wbuf_new(size_t len)
{
	ASSERT(len <= BATCH_BYTES_MAX + WBUF_ALIGN);
	size_t cap = len > WBUF_BYTES ? len : WBUF_BYTES;
	cap = (cap + WBUF_ALIGN - 1) / WBUF_ALIGN * WBUF_ALIGN;
	struct wbuf *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->data = aligned_alloc(WBUF_ALIGN, cap);
	if (b->data == NULL) {
		free(b);
		return NULL;
	}
	b->cap = (uint32_t)cap;
	return b;
}

void wbuf_free(struct wbuf *b)
{
	free(b->data);
	free(b);
}

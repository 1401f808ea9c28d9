/*
 * kafka_wire.c: the out-of-line half of the Kafka primitive codec (see
 * kafka_wire.h for the contract): arena chunks, varints past one byte,
 * strings and bytes in their four forms, and the writer's buffer management.
 */
#include "kafka/kafka_wire.h"

#include <stdalign.h>
#include <stdlib.h>

/* Kafka's classic STRING has an int16 length; no version may carry more. */
#define KWIRE_STRING_LEN_MAX 0x7fff

bool kstr_eq(struct kstr a, struct kstr b)
{
	if (a.len < 0 || b.len < 0)
		return a.len < 0 && b.len < 0;
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

bool kstr_eq_cstr(struct kstr a, const char *s)
{
	return kstr_eq(a, kstr_from(s));
}

bool kbytes_eq(struct kbytes a, struct kbytes b)
{
	if (a.len < 0 || b.len < 0)
		return a.len < 0 && b.len < 0;
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

bool kuuid_is_zero(struct kuuid u)
{
	static const struct kuuid zero;
	return memcmp(u.b, zero.b, sizeof(u.b)) == 0;
}

const char *kwire_err_name(int err)
{
	switch (err < 0 ? -err : err) {
	case KWIRE_OK: return "ok";
	case KWIRE_ERR_TRUNCATED: return "truncated";
	case KWIRE_ERR_INVALID: return "invalid";
	case KWIRE_ERR_NOMEM: return "nomem";
	case KWIRE_ERR_OVERFLOW: return "overflow";
	default: return "unknown";
	}
}

/* ---- arena ------------------------------------------------------------ */

struct karena_chunk {
	struct karena_chunk *next;
	size_t cap, used;
	alignas(16) uint8_t data[];
};

#define KARENA_ALIGN 8

void karena_init(struct karena *a, size_t chunk_bytes, size_t limit_bytes)
{
	a->head = a->cur = NULL;
	a->chunk_bytes = chunk_bytes ? chunk_bytes : 4096;
	a->used_bytes = 0;
	a->cap_bytes = 0;
	a->limit_bytes = limit_bytes;
}

/* Chunks after cur are unused since the last reset: reuse the first that
 * fits. One too small for this allocation is skipped for the rest of the
 * cycle, not freed: the next cycle (same request mix) will want it again. */
static struct karena_chunk *karena_chunk_for(struct karena *a, size_t size)
{
	struct karena_chunk *c = a->cur;
	if (c && c->cap - c->used >= size)
		return c;
	for (c = c ? c->next : a->head; c; c = c->next) {
		if (c->cap - c->used >= size)
			return c;
	}
	size_t cap = size > a->chunk_bytes ? size : a->chunk_bytes;
	c = malloc(sizeof(*c) + cap);
	if (!c)
		return NULL;
	c->cap = cap;
	c->used = 0;
	a->cap_bytes += sizeof(*c) + cap;
	if (a->cur) {
		c->next = a->cur->next;
		a->cur->next = c;
	} else {
		c->next = a->head;
		a->head = c;
	}
	return c;
}

void *karena_alloc(struct karena *a, size_t bytes)
{
	if (bytes > SIZE_MAX / 2)
		return NULL;
	size_t size = (bytes + KARENA_ALIGN - 1) & ~(size_t)(KARENA_ALIGN - 1);
	if (a->limit_bytes && size > a->limit_bytes - a->used_bytes)
		return NULL;
	struct karena_chunk *c = karena_chunk_for(a, size);
	if (!c)
		return NULL;
	a->cur = c;
	void *p = c->data + c->used;
	c->used += size;
	a->used_bytes += size;
	memset(p, 0, size);
	return p;
}

void karena_reset(struct karena *a)
{
	for (struct karena_chunk *c = a->head; c; c = c->next)
		c->used = 0;
	a->cur = a->head;
	a->used_bytes = 0;
}

void karena_free(struct karena *a)
{
	struct karena_chunk *c = a->head;
	while (c) {
		struct karena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = a->cur = NULL;
	a->used_bytes = 0;
	a->cap_bytes = 0;
}

/* ---- reader ----------------------------------------------------------- */

void kr_init(struct kreader *r, const void *buf, size_t len, struct karena *arena)
{
	/* A NULL buffer becomes an empty one, so no arithmetic on NULL follows. */
	static const uint8_t empty[1];
	const uint8_t *p = buf ? buf : empty;
	r->p = p;
	r->end = buf ? p + len : p;
	r->err = 0;
	r->arena = arena;
}

uint32_t kr_uvarint_slow_(struct kreader *r)
{
	uint32_t v = 0;
	for (int i = 0; i < 5; i++) {
		if (!kr_need(r, 1))
			return 0;
		uint8_t b = *r->p++;
		/* The fifth byte holds bits 28..31: anything above, or a sixth byte, is invalid. */
		if (i == 4 && (b & 0xf0)) {
			kr_fail(r, KWIRE_ERR_INVALID);
			return 0;
		}
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return v;
	}
	return 0; /* not reached */
}

uint64_t kr_uvarlong(struct kreader *r)
{
	uint64_t v = 0;
	for (int i = 0; i < 10; i++) {
		if (!kr_need(r, 1))
			return 0;
		uint8_t b = *r->p++;
		/* The tenth byte holds bit 63 only. */
		if (i == 9 && (b & 0xfe)) {
			kr_fail(r, KWIRE_ERR_INVALID);
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return v;
	}
	return 0; /* not reached */
}

void kr_skip(struct kreader *r, size_t n)
{
	if (kr_need(r, n))
		r->p += n;
}

/* Take len bytes as they are (the length is already validated). */
static const uint8_t *kr_take(struct kreader *r, int32_t len)
{
	if (!kr_need(r, (size_t)len))
		return NULL;
	const uint8_t *p = r->p;
	r->p += len;
	return p;
}

/* len is the decoded length: < 0 means null. */
static struct kstr kr_string_body(struct kreader *r, int64_t len, bool nullable)
{
	if (r->err)
		return (struct kstr){ "", 0 };
	if (len < 0) {
		if (!nullable)
			kr_fail(r, KWIRE_ERR_INVALID);
		return nullable ? KSTR_NULL : (struct kstr){ "", 0 };
	}
	if (len > KWIRE_STRING_LEN_MAX) {
		kr_fail(r, KWIRE_ERR_INVALID);
		return (struct kstr){ "", 0 };
	}
	const uint8_t *p = kr_take(r, (int32_t)len);
	if (!p)
		return (struct kstr){ "", 0 };
	return (struct kstr){ (const char *)p, (int32_t)len };
}

static struct kbytes kr_bytes_body(struct kreader *r, int64_t len, bool nullable)
{
	if (r->err)
		return (struct kbytes){ NULL, 0 };
	if (len < 0) {
		if (!nullable)
			kr_fail(r, KWIRE_ERR_INVALID);
		return nullable ? KBYTES_NULL : (struct kbytes){ NULL, 0 };
	}
	if (len > INT32_MAX) {
		kr_fail(r, KWIRE_ERR_INVALID);
		return (struct kbytes){ NULL, 0 };
	}
	const uint8_t *p = kr_take(r, (int32_t)len);
	return (struct kbytes){ p, (int32_t)len };
}

/* Compact lengths are uvarint(len + 1), 0 for null. */
static int64_t kr_compact_len(struct kreader *r)
{
	return (int64_t)kr_uvarint(r) - 1;
}

struct kstr kr_field_string(struct kreader *r, bool compact, bool nullable)
{
	int64_t len = compact ? kr_compact_len(r) : kr_int16(r);
	return kr_string_body(r, len, nullable);
}

struct kbytes kr_field_bytes(struct kreader *r, bool compact, bool nullable)
{
	int64_t len = compact ? kr_compact_len(r) : kr_int32(r);
	return kr_bytes_body(r, len, nullable);
}

struct kstr kr_string(struct kreader *r) { return kr_field_string(r, false, false); }
struct kstr kr_nullable_string(struct kreader *r) { return kr_field_string(r, false, true); }
struct kstr kr_compact_string(struct kreader *r) { return kr_field_string(r, true, false); }
struct kstr kr_compact_nullable_string(struct kreader *r) { return kr_field_string(r, true, true); }
struct kbytes kr_bytes(struct kreader *r) { return kr_field_bytes(r, false, false); }
struct kbytes kr_nullable_bytes(struct kreader *r) { return kr_field_bytes(r, false, true); }
struct kbytes kr_compact_bytes(struct kreader *r) { return kr_field_bytes(r, true, false); }
struct kbytes kr_compact_nullable_bytes(struct kreader *r) { return kr_field_bytes(r, true, true); }

int32_t kr_field_array_count(struct kreader *r, bool compact, bool nullable)
{
	int64_t n = compact ? kr_compact_len(r) : kr_int32(r);
	if (r->err)
		return 0;
	if (n < 0) {
		if (!nullable) {
			kr_fail(r, KWIRE_ERR_INVALID);
			return 0;
		}
		return -1;
	}
	if (n > INT32_MAX) {
		kr_fail(r, KWIRE_ERR_INVALID);
		return 0;
	}
	if ((uint64_t)n > kr_remaining(r)) {
		kr_fail(r, KWIRE_ERR_TRUNCATED);
		return 0;
	}
	return (int32_t)n;
}

void *kr_alloc_array(struct kreader *r, int32_t n, size_t elem_bytes)
{
	if (r->err)
		return NULL;
	void *p = r->arena ? karena_alloc(r->arena, (size_t)n * elem_bytes) : NULL;
	if (!p)
		kr_fail(r, KWIRE_ERR_NOMEM);
	return p;
}

void kr_skip_tagged_fields(struct kreader *r)
{
	uint32_t n = kr_uvarint(r);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		(void)kr_uvarint(r); /* tag */
		kr_skip(r, kr_uvarint(r));
	}
}

/* ---- writer ----------------------------------------------------------- */

void kw_init(struct kwriter *w, size_t initial_cap, size_t max_bytes)
{
	memset(w, 0, sizeof(*w));
	w->max_bytes = max_bytes;
	w->owns_buf = true;
	if (initial_cap) {
		w->buf = malloc(initial_cap);
		if (w->buf)
			w->cap = initial_cap;
		else
			w->err = KWIRE_ERR_NOMEM;
	}
}

void kw_reset(struct kwriter *w)
{
	w->len = 0;
	w->err = 0;
	w->ext_count = 0;
	w->ext_bytes = 0;
}

void kw_free(struct kwriter *w)
{
	if (w->owns_buf)
		free(w->buf);
	free(w->ext);
	memset(w, 0, sizeof(*w));
}

uint8_t *kw_grow_(struct kwriter *w, size_t n)
{
	if (w->err)
		return NULL;
	size_t max = w->max_bytes ? w->max_bytes : SIZE_MAX / 2;
	if (n > max || w->len > max - n) {
		kw_fail(w, KWIRE_ERR_OVERFLOW);
		return NULL;
	}
	if (w->cap - w->len < n) {
		if (!w->owns_buf) {
			kw_fail(w, KWIRE_ERR_OVERFLOW);
			return NULL;
		}
		/* Doubling keeps appends amortised O(1); the cap never exceeds max_bytes. */
		size_t cap = w->cap ? w->cap : 256;
		while (cap - w->len < n)
			cap = cap > max / 2 ? max : cap * 2;
		uint8_t *buf = realloc(w->buf, cap);
		if (!buf) {
			kw_fail(w, KWIRE_ERR_NOMEM);
			return NULL;
		}
		w->buf = buf;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

void kw_uvarint(struct kwriter *w, uint32_t v)
{
	uint8_t tmp[5];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	kw_raw(w, tmp, n);
}

void kw_uvarlong(struct kwriter *w, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	while (v >= 0x80) {
		tmp[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[n++] = (uint8_t)v;
	kw_raw(w, tmp, n);
}

void kw_raw(struct kwriter *w, const void *p, size_t n)
{
	if (n == 0)
		return;
	uint8_t *dst = kw_space_(w, n);
	if (dst)
		memcpy(dst, p, n);
}

void kw_ref(struct kwriter *w, const void *p, size_t n)
{
	if (n < KW_REF_MIN_BYTES) {
		kw_raw(w, p, n);
		return;
	}
	if (w->err)
		return;
	if (w->ext_count == w->ext_cap) {
		int cap = w->ext_cap ? w->ext_cap * 2 : 8;
		struct kwriter_ext *ext = realloc(w->ext, (size_t)cap * sizeof(*ext));
		if (!ext) {
			kw_fail(w, KWIRE_ERR_NOMEM);
			return;
		}
		w->ext = ext;
		w->ext_cap = cap;
	}
	w->ext[w->ext_count++] = (struct kwriter_ext){ w->len, p, n };
	w->ext_bytes += n;
}

size_t kw_reserve(struct kwriter *w, size_t n)
{
	size_t pos = w->len;
	uint8_t *p = kw_space_(w, n);
	if (p)
		memset(p, 0, n);
	return pos;
}

void kw_patch_int32(struct kwriter *w, size_t pos, int32_t v)
{
	if (w->err)
		return;
	if (pos > w->len || w->len - pos < 4) {
		kw_fail(w, KWIRE_ERR_INVALID);
		return;
	}
	uint32_t be = __builtin_bswap32((uint32_t)v);
	memcpy(w->buf + pos, &be, 4);
}

/* (length + 1) as uvarint, 0 for null; or the classic int16/int32 length. */
static void kw_len_prefix(struct kwriter *w, bool compact, bool wide, int32_t len)
{
	if (compact)
		kw_uvarint(w, (uint32_t)(len < 0 ? 0 : len + 1));
	else if (wide)
		kw_int32(w, len < 0 ? -1 : len);
	else
		kw_int16(w, (int16_t)(len < 0 ? -1 : len));
}

void kw_field_string(struct kwriter *w, bool compact, bool nullable, struct kstr s)
{
	if (s.len < 0 && !nullable)
		s = (struct kstr){ "", 0 };
	if (s.len > KWIRE_STRING_LEN_MAX) {
		kw_fail(w, KWIRE_ERR_INVALID);
		return;
	}
	kw_len_prefix(w, compact, false, s.len);
	if (s.len > 0)
		kw_raw(w, s.ptr, (size_t)s.len);
}

void kw_field_bytes(struct kwriter *w, bool compact, bool nullable, struct kbytes b)
{
	if (b.len < 0 && !nullable)
		b = (struct kbytes){ NULL, 0 };
	kw_len_prefix(w, compact, true, b.len);
	if (b.len > 0)
		kw_raw(w, b.ptr, (size_t)b.len);
}

void kw_field_records(struct kwriter *w, bool compact, bool nullable, struct kbytes b)
{
	if (b.len < 0 && !nullable)
		b = (struct kbytes){ NULL, 0 };
	kw_len_prefix(w, compact, true, b.len);
	if (b.len > 0)
		kw_ref(w, b.ptr, (size_t)b.len);
}

void kw_field_array_count(struct kwriter *w, bool compact, bool nullable, int32_t count)
{
	if (count < 0 && !nullable)
		count = 0;
	kw_len_prefix(w, compact, true, count);
}

void kw_string(struct kwriter *w, struct kstr s) { kw_field_string(w, false, false, s); }
void kw_nullable_string(struct kwriter *w, struct kstr s) { kw_field_string(w, false, true, s); }
void kw_compact_string(struct kwriter *w, struct kstr s) { kw_field_string(w, true, false, s); }
void kw_compact_nullable_string(struct kwriter *w, struct kstr s) { kw_field_string(w, true, true, s); }
void kw_bytes(struct kwriter *w, struct kbytes b) { kw_field_bytes(w, false, false, b); }
void kw_nullable_bytes(struct kwriter *w, struct kbytes b) { kw_field_bytes(w, false, true, b); }
void kw_compact_bytes(struct kwriter *w, struct kbytes b) { kw_field_bytes(w, true, false, b); }
void kw_compact_nullable_bytes(struct kwriter *w, struct kbytes b) { kw_field_bytes(w, true, true, b); }

int kw_iovecs(const struct kwriter *w, struct iovec *iov, int iov_max)
{
	int n = 0;
	size_t at = 0;
	for (int i = 0; i < w->ext_count; i++) {
		const struct kwriter_ext *e = &w->ext[i];
		if (e->at > at) {
			if (n == iov_max)
				return -1;
			iov[n++] = (struct iovec){ w->buf + at, e->at - at };
			at = e->at;
		}
		if (n == iov_max)
			return -1;
		iov[n++] = (struct iovec){ (void *)e->ptr, e->len };
	}
	if (w->len > at) {
		if (n == iov_max)
			return -1;
		iov[n++] = (struct iovec){ w->buf + at, w->len - at };
	}
	return n;
}

static size_t kw_copy_piece(uint8_t *dst, size_t done, size_t cap, const void *src, size_t n)
{
	size_t room = cap - done;
	size_t k = n < room ? n : room;
	if (k)
		memcpy(dst + done, src, k);
	return done + k;
}

size_t kw_copy_out(const struct kwriter *w, void *dst, size_t cap)
{
	uint8_t *d = dst;
	size_t done = 0, at = 0;
	for (int i = 0; i < w->ext_count; i++) {
		const struct kwriter_ext *e = &w->ext[i];
		done = kw_copy_piece(d, done, cap, w->buf + at, e->at - at);
		at = e->at;
		done = kw_copy_piece(d, done, cap, e->ptr, e->len);
	}
	return kw_copy_piece(d, done, cap, w->buf + at, w->len - at);
}

void kw_insert_size(struct kwriter *w, struct kw_mark m)
{
	if (w->err)
		return;
	size_t size = (w->len - m.pos) + (w->ext_bytes - m.ext_bytes);
	if (size > UINT32_MAX) {
		kw_fail(w, KWIRE_ERR_OVERFLOW);
		return;
	}
	uint8_t tmp[5];
	size_t k = 0;
	uint32_t v = (uint32_t)size;
	while (v >= 0x80) {
		tmp[k++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	tmp[k++] = (uint8_t)v;
	if (!kw_space_(w, k))
		return;
	/* Shift what was written since the mark, and the ranges spliced in
	 * since it: ranges from before the mark stay in front of the size. */
	memmove(w->buf + m.pos + k, w->buf + m.pos, w->len - k - m.pos);
	memcpy(w->buf + m.pos, tmp, k);
	for (int i = m.ext_count; i < w->ext_count; i++)
		w->ext[i].at += k;
}

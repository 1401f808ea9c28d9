/*
 * kafka_wire: the primitive encodings of the Kafka protocol, and the memory
 * the codec decodes into and encodes from.
 *
 * Three pieces:
 *
 *  - struct kreader, a decode cursor over one borrowed buffer. Every read is
 *    bounds-checked; the first failure is recorded in r->err (a positive
 *    enum kwire_err) and from then on every read returns 0 / an empty value
 *    without moving, so a decoder can read a whole structure and look at the
 *    error once at the end. Strings and bytes returned by a reader point into
 *    the buffer (zero copy): they live as long as the buffer does.
 *
 *  - struct karena, the chunked bump allocator decoded arrays are taken
 *    from. karena_reset() keeps the chunks, so a steady request mix does no
 *    malloc at all. limit_bytes bounds what one decode may take, whatever the
 *    wire counts claim.
 *
 *  - struct kwriter, an encode buffer: a growable inline buffer plus byte
 *    ranges spliced in by reference (kw_ref), so a Fetch response can send
 *    record bytes straight from storage buffers. Positions (kw_reserve,
 *    kw_patch_int32) are offsets into the inline buffer. Errors are sticky
 *    like the reader's.
 *
 * None of this is thread-safe; each object belongs to the one thread (shard)
 * that uses it. Nothing here blocks.
 *
 * Encodings follow the "Protocol Primitive Types" section of the Kafka
 * protocol guide: big-endian fixed-width integers, unsigned varints (LEB128,
 * at most 5 bytes for 32 bits, 10 for 64), zigzag varint/varlong, STRING
 * (int16 length), COMPACT_STRING (uvarint length+1), BYTES (int32 length),
 * COMPACT_BYTES (uvarint length+1); a null is length -1, or 0 in the compact
 * forms.
 */
#ifndef SLUICE_KAFKA_WIRE_H
#define SLUICE_KAFKA_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* A string as the protocol carries it: not NUL-terminated, borrowed memory.
 * len < 0 is the null string; len == 0 with any ptr is the empty string. */
struct kstr {
	const char *ptr;
	int32_t len;
};

/* "bytes" and "records" fields; len < 0 is null. Borrowed memory. */
struct kbytes {
	const uint8_t *ptr;
	int32_t len;
};

struct kuuid {
	uint8_t b[16];
};

#define KSTR(lit) ((struct kstr){ (lit), (int32_t)(sizeof(lit) - 1) })
#define KSTR_NULL ((struct kstr){ NULL, -1 })
#define KBYTES_NULL ((struct kbytes){ NULL, -1 })

/* A kstr for a C string; NULL gives the null kstr. */
static inline struct kstr kstr_from(const char *s)
{
	if (!s)
		return KSTR_NULL;
	return (struct kstr){ s, (int32_t)strlen(s) };
}

static inline bool kstr_is_null(struct kstr s) { return s.len < 0; }

/* Equal content; two nulls are equal, null never equals a non-null. */
bool kstr_eq(struct kstr a, struct kstr b);
/* s == NULL matches only the null kstr. */
bool kstr_eq_cstr(struct kstr a, const char *s);
bool kbytes_eq(struct kbytes a, struct kbytes b);
bool kuuid_is_zero(struct kuuid u);

/* ---- arena ------------------------------------------------------------ */

struct karena_chunk;

struct karena {
	struct karena_chunk *head; /* all chunks, kept across resets */
	struct karena_chunk *cur;  /* the chunk allocations come from now */
	size_t chunk_bytes;        /* size of a regular chunk */
	size_t used_bytes;         /* handed out since the last reset */
	size_t cap_bytes;          /* held in chunks (memory accounting) */
	size_t limit_bytes;        /* karena_alloc fails past this; 0: no limit */
};

/* No memory is taken until the first allocation. */
void karena_init(struct karena *a, size_t chunk_bytes, size_t limit_bytes);
/* 8-aligned, zeroed memory valid until karena_reset/karena_free. NULL when
 * the total since the last reset would pass limit_bytes, or on ENOMEM. An
 * allocation larger than chunk_bytes gets a chunk of its own (kept too). */
void *karena_alloc(struct karena *a, size_t bytes);
/* Forget every allocation; keeps the chunks for reuse. */
void karena_reset(struct karena *a);
/* Return all chunks to malloc; the arena can be used again afterwards. */
void karena_free(struct karena *a);

/* ---- errors ----------------------------------------------------------- */

enum kwire_err {
	KWIRE_OK = 0,
	KWIRE_ERR_TRUNCATED = 1, /* input ended inside a value */
	KWIRE_ERR_INVALID = 2,   /* a value no encoder produces (bad length, overlong varint, null where not nullable) */
	KWIRE_ERR_NOMEM = 3,     /* arena limit or malloc */
	KWIRE_ERR_OVERFLOW = 4,  /* writer would pass max_bytes */
};

const char *kwire_err_name(int err);

/* ---- reader ----------------------------------------------------------- */

struct kreader {
	const uint8_t *p, *end;
	int err; /* 0 or a positive enum kwire_err; sticky */
	struct karena *arena; /* for decoded arrays; may be NULL if none are expected */
};

void kr_init(struct kreader *r, const void *buf, size_t len, struct karena *arena);

/* Record an error (the first one wins). Returns -r->err, for "return kr_fail(...)". */
static inline int kr_fail(struct kreader *r, int err)
{
	if (!r->err)
		r->err = err;
	return -r->err;
}

static inline size_t kr_remaining(const struct kreader *r)
{
	return r->err ? 0 : (size_t)(r->end - r->p);
}

/* True when n more bytes can be read; otherwise records TRUNCATED. */
static inline bool kr_need(struct kreader *r, size_t n)
{
	if (__builtin_expect(!r->err && (size_t)(r->end - r->p) >= n, 1))
		return true;
	kr_fail(r, KWIRE_ERR_TRUNCATED);
	return false;
}

static inline uint8_t kr_uint8_(struct kreader *r)
{
	if (!kr_need(r, 1))
		return 0;
	return *r->p++;
}

static inline int8_t kr_int8(struct kreader *r) { return (int8_t)kr_uint8_(r); }

static inline uint16_t kr_uint16(struct kreader *r)
{
	if (!kr_need(r, 2))
		return 0;
	uint16_t v;
	memcpy(&v, r->p, 2);
	r->p += 2;
	return __builtin_bswap16(v);
}

static inline uint32_t kr_uint32(struct kreader *r)
{
	if (!kr_need(r, 4))
		return 0;
	uint32_t v;
	memcpy(&v, r->p, 4);
	r->p += 4;
	return __builtin_bswap32(v);
}

static inline uint64_t kr_uint64_(struct kreader *r)
{
	if (!kr_need(r, 8))
		return 0;
	uint64_t v;
	memcpy(&v, r->p, 8);
	r->p += 8;
	return __builtin_bswap64(v);
}

static inline int16_t kr_int16(struct kreader *r) { return (int16_t)kr_uint16(r); }
static inline int32_t kr_int32(struct kreader *r) { return (int32_t)kr_uint32(r); }
static inline int64_t kr_int64(struct kreader *r) { return (int64_t)kr_uint64_(r); }
/* Any non-zero byte is true, as in Kafka's readers. */
static inline bool kr_bool(struct kreader *r) { return kr_uint8_(r) != 0; }

static inline double kr_float64(struct kreader *r)
{
	uint64_t u = kr_uint64_(r);
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

/* Unsigned varints. More than 5 (10) bytes, or bits past 32 (64), is
 * KWIRE_ERR_INVALID: no encoder produces them and accepting them would let a
 * length silently wrap. Non-minimal encodings (0x80 0x00) are accepted. */
uint32_t kr_uvarint_slow_(struct kreader *r);
static inline uint32_t kr_uvarint(struct kreader *r)
{
	if (__builtin_expect(!r->err && r->p < r->end && *r->p < 0x80, 1))
		return *r->p++;
	return kr_uvarint_slow_(r);
}
uint64_t kr_uvarlong(struct kreader *r);

static inline int32_t kr_varint(struct kreader *r)
{
	uint32_t v = kr_uvarint(r);
	return (int32_t)((v >> 1) ^ (~(v & 1) + 1));
}

static inline int64_t kr_varlong(struct kreader *r)
{
	uint64_t v = kr_uvarlong(r);
	return (int64_t)((v >> 1) ^ (~(v & 1) + 1));
}

static inline struct kuuid kr_uuid(struct kreader *r)
{
	struct kuuid u = { { 0 } };
	if (kr_need(r, 16)) {
		memcpy(u.b, r->p, 16);
		r->p += 16;
	}
	return u;
}

void kr_skip(struct kreader *r, size_t n);

/* Strings longer than 0x7fff are rejected in every form (Kafka does the
 * same: the classic form cannot carry them). A null where the form is not
 * nullable is KWIRE_ERR_INVALID. */
struct kstr kr_string(struct kreader *r);
struct kstr kr_nullable_string(struct kreader *r);
struct kstr kr_compact_string(struct kreader *r);
struct kstr kr_compact_nullable_string(struct kreader *r);
struct kbytes kr_bytes(struct kreader *r);
struct kbytes kr_nullable_bytes(struct kreader *r);
struct kbytes kr_compact_bytes(struct kreader *r);
struct kbytes kr_compact_nullable_bytes(struct kreader *r);

/* The generated codec picks the form per field and version with these. */
struct kstr kr_field_string(struct kreader *r, bool compact, bool nullable);
struct kbytes kr_field_bytes(struct kreader *r, bool compact, bool nullable);
/* An array length: -1 for a null array (only if nullable; otherwise
 * INVALID). A count larger than the bytes left is TRUNCATED, because every
 * element takes at least one byte; that bounds what a hostile count can make
 * the decoder allocate. Returns 0 after an error. */
int32_t kr_field_array_count(struct kreader *r, bool compact, bool nullable);
/* n * elem_bytes from r->arena, zeroed; NULL (and KWIRE_ERR_NOMEM) when the
 * arena is missing or full. n must be > 0. */
void *kr_alloc_array(struct kreader *r, int32_t n, size_t elem_bytes);

/* Skip a flexible version's tagged-field section we do not want. */
void kr_skip_tagged_fields(struct kreader *r);

/* ---- writer ----------------------------------------------------------- */

/* Below this, kw_ref copies: an iovec per small range costs more than the
 * copy. */
#define KW_REF_MIN_BYTES 4096

struct kwriter_ext {
	size_t at; /* inline offset the range is spliced in before */
	const uint8_t *ptr;
	size_t len;
};

struct kwriter {
	uint8_t *buf;
	size_t len, cap;
	size_t max_bytes; /* inline bytes allowed; 0: no limit */
	int err;          /* 0 or a positive enum kwire_err; sticky */
	bool owns_buf;
	struct kwriter_ext *ext;
	int ext_count, ext_cap;
	size_t ext_bytes;
};

/* Allocates initial_cap bytes (may be 0); buffers grow by realloc as needed
 * up to max_bytes. */
void kw_init(struct kwriter *w, size_t initial_cap, size_t max_bytes);
/* Empty the writer and clear its error; keeps its memory. */
void kw_reset(struct kwriter *w);
void kw_free(struct kwriter *w);

static inline int kw_fail(struct kwriter *w, int err)
{
	if (!w->err)
		w->err = err;
	return -w->err;
}

/* Room for n more inline bytes; NULL after (or on) an error. */
uint8_t *kw_grow_(struct kwriter *w, size_t n);
static inline uint8_t *kw_space_(struct kwriter *w, size_t n)
{
	if (__builtin_expect(!w->err && w->cap - w->len >= n, 1)) {
		uint8_t *p = w->buf + w->len;
		w->len += n;
		return p;
	}
	return kw_grow_(w, n);
}

static inline void kw_int8(struct kwriter *w, int8_t v)
{
	uint8_t *p = kw_space_(w, 1);
	if (p)
		*p = (uint8_t)v;
}

static inline void kw_uint16(struct kwriter *w, uint16_t v)
{
	uint8_t *p = kw_space_(w, 2);
	if (p) {
		v = __builtin_bswap16(v);
		memcpy(p, &v, 2);
	}
}

static inline void kw_uint32(struct kwriter *w, uint32_t v)
{
	uint8_t *p = kw_space_(w, 4);
	if (p) {
		v = __builtin_bswap32(v);
		memcpy(p, &v, 4);
	}
}

static inline void kw_uint64_(struct kwriter *w, uint64_t v)
{
	uint8_t *p = kw_space_(w, 8);
	if (p) {
		v = __builtin_bswap64(v);
		memcpy(p, &v, 8);
	}
}

static inline void kw_int16(struct kwriter *w, int16_t v) { kw_uint16(w, (uint16_t)v); }
static inline void kw_int32(struct kwriter *w, int32_t v) { kw_uint32(w, (uint32_t)v); }
static inline void kw_int64(struct kwriter *w, int64_t v) { kw_uint64_(w, (uint64_t)v); }
static inline void kw_bool(struct kwriter *w, bool v) { kw_int8(w, v ? 1 : 0); }

static inline void kw_float64(struct kwriter *w, double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	kw_uint64_(w, u);
}

void kw_uvarint(struct kwriter *w, uint32_t v);
void kw_uvarlong(struct kwriter *w, uint64_t v);
static inline void kw_varint(struct kwriter *w, int32_t v)
{
	kw_uvarint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}
static inline void kw_varlong(struct kwriter *w, int64_t v)
{
	kw_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline void kw_uuid(struct kwriter *w, struct kuuid u)
{
	uint8_t *p = kw_space_(w, 16);
	if (p)
		memcpy(p, u.b, 16);
}

/* A null given to a non-nullable form is written as empty; a string longer
 * than 0x7fff is KWIRE_ERR_INVALID. */
void kw_string(struct kwriter *w, struct kstr s);
void kw_nullable_string(struct kwriter *w, struct kstr s);
void kw_compact_string(struct kwriter *w, struct kstr s);
void kw_compact_nullable_string(struct kwriter *w, struct kstr s);
void kw_bytes(struct kwriter *w, struct kbytes b);
void kw_nullable_bytes(struct kwriter *w, struct kbytes b);
void kw_compact_bytes(struct kwriter *w, struct kbytes b);
void kw_compact_nullable_bytes(struct kwriter *w, struct kbytes b);

void kw_field_string(struct kwriter *w, bool compact, bool nullable, struct kstr s);
void kw_field_bytes(struct kwriter *w, bool compact, bool nullable, struct kbytes b);
/* Length prefix, then the bytes by reference (kw_ref): the caller keeps
 * them alive until the writer's bytes are sent. */
void kw_field_records(struct kwriter *w, bool compact, bool nullable, struct kbytes b);
/* count < 0 is null; written as empty when not nullable. */
void kw_field_array_count(struct kwriter *w, bool compact, bool nullable, int32_t count);

/* Copy n bytes in. */
void kw_raw(struct kwriter *w, const void *p, size_t n);
/* Splice p..p+n in by reference if n >= KW_REF_MIN_BYTES, else copy. The
 * caller keeps p alive until the writer's bytes are sent or reset. */
void kw_ref(struct kwriter *w, const void *p, size_t n);
/* Append n zero bytes to patch later; returns their inline position. */
size_t kw_reserve(struct kwriter *w, size_t n);
/* Overwrite 4 inline bytes at pos (big-endian). Out of range: INVALID. */
void kw_patch_int32(struct kwriter *w, size_t pos, int32_t v);

/* Inline plus spliced bytes. */
static inline size_t kw_total_len(const struct kwriter *w) { return w->len + w->ext_bytes; }

/* The bytes in stream order as an iovec list. Returns the count, or -1 if
 * iov_max is too small. Empty ranges are left out. */
int kw_iovecs(const struct kwriter *w, struct iovec *iov, int iov_max);
/* Flatten up to cap bytes into dst (tests, small responses). Returns bytes copied. */
size_t kw_copy_out(const struct kwriter *w, void *dst, size_t cap);

/* A place in the stream, for writing a value whose length prefix (a
 * uvarint, so of unknown width) goes in front of it once it is written: the
 * size of a tagged field. */
struct kw_mark {
	size_t pos;
	int ext_count;
	size_t ext_bytes;
};

static inline struct kw_mark kw_mark(const struct kwriter *w)
{
	return (struct kw_mark){ w->len, w->ext_count, w->ext_bytes };
}

/* Insert, at the mark, a uvarint of the number of bytes written since it. */
void kw_insert_size(struct kwriter *w, struct kw_mark m);

#endif

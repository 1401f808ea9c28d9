/*
 * group_records: __consumer_offsets record keys and values, record batches
 * of them, and the group -> partition hash. See group_records.h.
 */
#include <string.h>

#include "group_crecords.h"
#include "group_records.h"
#include "storage/batch.h"

/* ---- the partition of a group ---- */

/* One code point from UTF-8 at p (p < end). Returns the bytes consumed;
 * *cp is U+FFFD for a malformed sequence (a bad lead byte, a missing or
 * bad continuation byte, an overlong form, a surrogate, past U+10FFFF). */
static int utf8_next(const uint8_t *p, const uint8_t *end, uint32_t *cp)
{
	uint8_t b = p[0];
	int need;
	uint32_t v, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if (b >= 0xc2 && b <= 0xdf) {
		need = 1, v = b & 0x1f, min = 0x80;
	} else if (b >= 0xe0 && b <= 0xef) {
		need = 2, v = b & 0x0f, min = 0x800;
	} else if (b >= 0xf0 && b <= 0xf4) {
		need = 3, v = b & 0x07, min = 0x10000;
	} else {
		*cp = 0xfffd;
		return 1;
	}
	int i;
	for (i = 1; i <= need; i++) {
		if (p + i >= end || (p[i] & 0xc0) != 0x80) {
			*cp = 0xfffd;
			return i; /* the valid prefix is one malformed sequence */
		}
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		v = 0xfffd;
	*cp = v;
	return i;
}

int32_t group_java_hash(struct kstr s)
{
	/* Unsigned arithmetic: Java's int overflow wraps, C's signed one is
	 * undefined. */
	uint32_t h = 0;
	const uint8_t *p = (const uint8_t *)s.ptr, *end = p + (s.len > 0 ? s.len : 0);
	while (p < end) {
		uint32_t cp;
		p += utf8_next(p, end, &cp);
		if (cp >= 0x10000) {
			cp -= 0x10000;
			h = h * 31 + (0xd800 + (cp >> 10));
			h = h * 31 + (0xdc00 + (cp & 0x3ff));
		} else {
			h = h * 31 + cp;
		}
	}
	return (int32_t)h;
}

int32_t group_partition_for(struct kstr group_id, int32_t n_partitions)
{
	int32_t h = group_java_hash(group_id);
	/* Kafka's Utils.abs: Integer.MIN_VALUE has no positive twin and
	 * becomes 0 (Math.abs would leave it negative). */
	int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
	return a % n_partitions;
}

/* ---- keys ---- */

int offsets_key_decode(const uint8_t *p, size_t n, struct offsets_key *k)
{
	struct kreader r;
	kr_init(&r, p, n, NULL);
	memset(k, 0, sizeof(*k));
	k->version = kr_int16(&r);
	if (r.err)
		return -1;
	switch (k->version) {
	case OFFSETS_KEY_COMMIT_V0:
	case OFFSETS_KEY_COMMIT:
		k->group = kr_string(&r);
		k->topic = kr_string(&r);
		k->partition = kr_int32(&r);
		break;
	case OFFSETS_KEY_GROUP:
	case CGREC_GROUP:
	case CGREC_PARTITIONS:
	case CGREC_TARGET:
		k->group = kr_string(&r);
		break;
	case CGREC_MEMBER:
	case CGREC_TARGET_MEMBER:
	case CGREC_CURRENT:
		k->group = kr_string(&r);
		k->member = kr_string(&r);
		break;
	default:
		return 1;
	}
	return r.err ? -1 : 0;
}

void offsets_key_commit_encode(struct kwriter *w, struct kstr group, struct kstr topic,
			       int32_t partition)
{
	kw_int16(w, OFFSETS_KEY_COMMIT);
	kw_string(w, group);
	kw_string(w, topic);
	kw_int32(w, partition);
}

void offsets_key_group_encode(struct kwriter *w, struct kstr group)
{
	kw_int16(w, OFFSETS_KEY_GROUP);
	kw_string(w, group);
}

/* ---- offset commit values ---- */

void offsets_value_commit_encode(struct kwriter *w, const struct offset_commit_value *v)
{
	struct kstr md = v->metadata.len < 0 ? KSTR("") : v->metadata;
	if (v->expire_timestamp >= 0) {
		/* Only version 1 carries an expiry (OffsetCommit v2-4's
		 * retention time), as Kafka writes it: without leader epoch. */
		kw_int16(w, 1);
		kw_int64(w, v->offset);
		kw_string(w, md);
		kw_int64(w, v->commit_timestamp);
		kw_int64(w, v->expire_timestamp);
		return;
	}
	kw_int16(w, OFFSETS_VALUE_COMMIT_VERSION);
	kw_int64(w, v->offset);
	kw_int32(w, v->leader_epoch);
	kw_string(w, md);
	kw_int64(w, v->commit_timestamp);
}

int offsets_value_commit_decode(const uint8_t *p, size_t n, struct offset_commit_value *v)
{
	struct kreader r;
	kr_init(&r, p, n, NULL);
	int16_t version = kr_int16(&r);
	if (r.err || version < 0 || version > 4)
		return -1;
	bool flexible = version >= 4;
	v->offset = kr_int64(&r);
	v->leader_epoch = version >= 3 ? kr_int32(&r) : -1;
	v->metadata = kr_field_string(&r, flexible, false);
	v->commit_timestamp = kr_int64(&r);
	v->expire_timestamp = version == 1 ? kr_int64(&r) : -1;
	if (flexible)
		kr_skip_tagged_fields(&r);
	return r.err ? -1 : 0;
}

/* ---- group metadata values ---- */

void offsets_value_group_encode_header(struct kwriter *w, const struct group_value *v)
{
	kw_int16(w, OFFSETS_VALUE_GROUP_VERSION);
	kw_string(w, v->protocol_type.len < 0 ? KSTR("") : v->protocol_type);
	kw_int32(w, v->generation);
	kw_nullable_string(w, v->protocol);
	kw_nullable_string(w, v->leader);
	kw_int64(w, v->state_timestamp);
	kw_int32(w, v->n_members);
}

void offsets_value_group_encode_member(struct kwriter *w, const struct group_value_member *m)
{
	kw_string(w, m->member_id);
	kw_nullable_string(w, m->instance_id);
	kw_string(w, m->client_id);
	kw_string(w, m->client_host);
	kw_int32(w, m->rebalance_timeout_ms);
	kw_int32(w, m->session_timeout_ms);
	kw_bytes(w, m->subscription.len < 0 ? (struct kbytes){ NULL, 0 } : m->subscription);
	kw_bytes(w, m->assignment.len < 0 ? (struct kbytes){ NULL, 0 } : m->assignment);
}

int offsets_value_group_decode(const uint8_t *p, size_t n, struct group_value *v)
{
	struct kreader *r = &v->members;
	kr_init(r, p, n, NULL);
	v->version = kr_int16(r);
	if (r->err || v->version < 0 || v->version > 4)
		return -1;
	bool flexible = v->version >= 4;
	v->protocol_type = kr_field_string(r, flexible, false);
	v->generation = kr_int32(r);
	v->protocol = kr_field_string(r, flexible, true);
	v->leader = kr_field_string(r, flexible, true);
	v->state_timestamp = v->version >= 2 ? kr_int64(r) : -1;
	/* Not kr_field_array_count: it would reject a count larger than the
	 * bytes left only by setting an error, which is what we want too, but
	 * members are walked one by one, so a plain count does. */
	if (flexible)
		v->n_members = (int32_t)kr_uvarint(r) - 1;
	else
		v->n_members = kr_int32(r);
	if (r->err || v->n_members < 0 || (size_t)v->n_members > kr_remaining(r))
		return -1;
	return 0;
}

int offsets_value_group_next_member(struct group_value *v, struct group_value_member *m)
{
	struct kreader *r = &v->members;
	if (v->n_members <= 0)
		return 0;
	bool flexible = v->version >= 4;
	memset(m, 0, sizeof(*m));
	m->member_id = kr_field_string(r, flexible, false);
	m->instance_id = v->version >= 3 ? kr_field_string(r, flexible, true) : KSTR_NULL;
	m->client_id = kr_field_string(r, flexible, false);
	m->client_host = kr_field_string(r, flexible, false);
	m->rebalance_timeout_ms = v->version >= 1 ? kr_int32(r) : -1;
	m->session_timeout_ms = kr_int32(r);
	m->subscription = kr_field_bytes(r, flexible, false);
	m->assignment = kr_field_bytes(r, flexible, false);
	if (flexible)
		kr_skip_tagged_fields(r);
	if (r->err)
		return -1;
	if (m->rebalance_timeout_ms < 0)
		m->rebalance_timeout_ms = m->session_timeout_ms; /* v0: Kafka's rule */
	v->n_members--;
	return 1;
}

/* ---- record batches ---- */

static size_t varint_bytes(int64_t v)
{
	uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 1;
	while (u >= 0x80) {
		u >>= 7;
		n++;
	}
	return n;
}

void offsets_batch_begin(struct offsets_batch *b, struct kwriter *w, int64_t now_ms)
{
	b->w = w;
	b->start = w->len;
	b->count = 0;
	b->now_ms = now_ms;
	kw_reserve(w, BATCH_HEADER_BYTES);
}

void offsets_batch_add(struct offsets_batch *b, struct kbytes key, struct kbytes value)
{
	struct kwriter *w = b->w;
	int32_t klen = key.len < 0 ? 0 : key.len;
	/* attributes, timestampDelta 0, offsetDelta, key, value, 0 headers */
	size_t body = 1 + 1 + varint_bytes(b->count) + varint_bytes(klen) + (size_t)klen +
		      varint_bytes(value.len < 0 ? -1 : value.len) +
		      (value.len > 0 ? (size_t)value.len : 0) + 1;
	kw_varint(w, (int32_t)body);
	kw_int8(w, 0);
	kw_varint(w, 0);
	kw_varint(w, b->count);
	kw_varint(w, klen);
	kw_raw(w, key.ptr, (size_t)klen);
	if (value.len < 0) {
		kw_varint(w, -1);
	} else {
		kw_varint(w, value.len);
		kw_raw(w, value.ptr, (size_t)value.len);
	}
	kw_varint(w, 0);
	b->count++;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

size_t offsets_batch_end(struct offsets_batch *b)
{
	struct kwriter *w = b->w;
	if (w->err || b->count == 0)
		return 0;
	size_t len = w->len - b->start;
	/* The header, in place: see storage/batch.h for the layout. */
	uint8_t *p = w->buf + b->start;
	p = put_be(p, 0, 8);                                 /* baseOffset: the log's */
	p = put_be(p, (uint32_t)(len - BATCH_LOG_OVERHEAD), 4); /* batchLength */
	p = put_be(p, (uint32_t)-1, 4);                      /* partitionLeaderEpoch */
	p = put_be(p, 2, 1);                                 /* magic */
	p = put_be(p, 0, 4);                                 /* crc, below */
	p = put_be(p, 0, 2);                                 /* attributes */
	p = put_be(p, (uint32_t)(b->count - 1), 4);          /* lastOffsetDelta */
	p = put_be(p, (uint64_t)b->now_ms, 8);               /* baseTimestamp */
	p = put_be(p, (uint64_t)b->now_ms, 8);               /* maxTimestamp */
	p = put_be(p, (uint64_t)-1, 8);                      /* producerId */
	p = put_be(p, (uint16_t)-1, 2);                      /* producerEpoch */
	p = put_be(p, (uint32_t)-1, 4);                      /* baseSequence */
	put_be(p, (uint32_t)b->count, 4);                    /* recordsCount */
	uint8_t *batch = w->buf + b->start;
	uint32_t crc = batch_crc32c(batch + BATCH_ATTRIBUTES_OFFSET, len - BATCH_ATTRIBUTES_OFFSET);
	put_be(batch + BATCH_CRC_OFFSET, crc, 4);
	return len;
}

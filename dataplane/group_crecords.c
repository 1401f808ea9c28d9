/*
 * group_crecords: encoders and decoders of the consumer group records of
 * __consumer_offsets. See group_crecords.h.
 */
#include <stdlib.h>
#include <string.h>

#include "group_crecords.h"

#define CGREC_VALUE_VERSION 0

/* ---- keys ---- */

void cgrec_key_encode(struct kwriter *w, int type, struct kstr group, struct kstr member)
{
	kw_int16(w, (int16_t)type);
	kw_string(w, group);
	if (cgrec_has_member(type))
		kw_string(w, member);
}

/* ---- shared pieces ---- */

static void tagged_none(struct kwriter *w)
{
	kw_uvarint(w, 0);
}

static void compact_count(struct kwriter *w, int32_t n)
{
	kw_uvarint(w, (uint32_t)n + 1);
}

/* A version-0 value's header; false (and r->err) otherwise. */
static bool value_begin(struct kreader *r, const uint8_t *p, size_t n)
{
	kr_init(r, p, n, NULL);
	int16_t v = kr_int16(r);
	if (!r->err && v != CGREC_VALUE_VERSION)
		kr_fail(r, KWIRE_ERR_INVALID);
	return !r->err;
}

/* A compact array count that is not null and fits what is left (each
 * element takes at least min_bytes). */
static int32_t array_count(struct kreader *r, size_t min_bytes)
{
	int32_t n = kr_field_array_count(r, true, false);
	if (!r->err && (size_t)n * min_bytes > kr_remaining(r))
		kr_fail(r, KWIRE_ERR_TRUNCATED);
	return r->err ? 0 : n;
}

/* TopicPartitions[]: runs of s by topic id. */
static void tps_encode(struct kwriter *w, const struct gtpset *s)
{
	int32_t n_topics = 0;
	for (int32_t i = 0; i < s->n; i++)
		if (i == 0 || memcmp(s->v[i].topic.b, s->v[i - 1].topic.b, 16) != 0)
			n_topics++;
	compact_count(w, n_topics);
	for (int32_t i = 0; i < s->n;) {
		int32_t j = i;
		while (j < s->n && memcmp(s->v[j].topic.b, s->v[i].topic.b, 16) == 0)
			j++;
		kw_uuid(w, s->v[i].topic);
		compact_count(w, j - i);
		for (int32_t k = i; k < j; k++)
			kw_int32(w, s->v[k].partition);
		tagged_none(w);
		i = j;
	}
}

static int tps_decode(struct kreader *r, struct gtpset *out)
{
	out->v = NULL;
	out->n = 0;
	int32_t nt = array_count(r, 18);
	/* Two passes: count, then copy (the partitions are bounded by the
	 * bytes, 4 each). */
	struct kreader scan = *r;
	int64_t total = 0;
	for (int32_t t = 0; t < nt && !scan.err; t++) {
		(void)kr_uuid(&scan);
		int32_t np = array_count(&scan, 4);
		kr_skip(&scan, (size_t)np * 4);
		kr_skip_tagged_fields(&scan);
		total += np;
	}
	if (scan.err)
		return kr_fail(r, scan.err);
	struct gtp *v = total > 0 ? malloc(sizeof(*v) * (size_t)total) : NULL;
	if (total > 0 && v == NULL)
		return kr_fail(r, KWIRE_ERR_NOMEM);
	int32_t k = 0;
	for (int32_t t = 0; t < nt && !r->err; t++) {
		struct kuuid id = kr_uuid(r);
		int32_t np = array_count(r, 4);
		for (int32_t i = 0; i < np && !r->err; i++)
			v[k++] = (struct gtp){ id, kr_int32(r) };
		kr_skip_tagged_fields(r);
	}
	if (r->err) {
		free(v);
		return -r->err;
	}
	gtpset_adopt(out, v, k);
	return 0;
}

/* ---- epochs (types 3 and 6) ---- */

void cgrec_epoch_encode(struct kwriter *w, int32_t epoch)
{
	kw_int16(w, CGREC_VALUE_VERSION);
	kw_int32(w, epoch);
	tagged_none(w);
}

int cgrec_epoch_decode(const uint8_t *p, size_t n, int32_t *epoch)
{
	struct kreader r;
	if (!value_begin(&r, p, n))
		return -1;
	*epoch = kr_int32(&r);
	kr_skip_tagged_fields(&r);
	return r.err ? -1 : 0;
}

/* ---- subscription metadata (type 4) ---- */

void cgrec_partitions_encode(struct kwriter *w, const struct cgrec_topic *t, int32_t n)
{
	kw_int16(w, CGREC_VALUE_VERSION);
	compact_count(w, n);
	for (int32_t i = 0; i < n; i++) {
		kw_uuid(w, t[i].id);
		kw_compact_string(w, t[i].name);
		kw_int32(w, t[i].n_parts);
		compact_count(w, 0); /* PartitionMetadata: no racks */
		tagged_none(w);
	}
	tagged_none(w);
}

/* One PartitionMetadata entry: Partition int32, Racks []string. */
static void skip_partition_metadata(struct kreader *r)
{
	(void)kr_int32(r);
	int32_t nr = array_count(r, 1);
	for (int32_t i = 0; i < nr && !r->err; i++)
		(void)kr_compact_string(r);
	kr_skip_tagged_fields(r);
}

int cgrec_partitions_decode(const uint8_t *p, size_t n, struct cgrec_topic **out, int32_t *n_out)
{
	struct kreader r;
	*out = NULL;
	*n_out = 0;
	if (!value_begin(&r, p, n))
		return -1;
	int32_t nt = array_count(&r, 22);
	struct cgrec_topic *t = nt > 0 ? calloc((size_t)nt, sizeof(*t)) : NULL;
	if (nt > 0 && t == NULL)
		return -1;
	for (int32_t i = 0; i < nt && !r.err; i++) {
		t[i].id = kr_uuid(&r);
		t[i].name = kr_compact_string(&r);
		t[i].n_parts = kr_int32(&r);
		int32_t npm = array_count(&r, 6);
		for (int32_t k = 0; k < npm && !r.err; k++)
			skip_partition_metadata(&r);
		kr_skip_tagged_fields(&r);
	}
	kr_skip_tagged_fields(&r);
	if (r.err) {
		free(t);
		return -1;
	}
	*out = t;
	*n_out = nt;
	return 0;
}

/* ---- member metadata (type 5) ---- */

void cgrec_member_encode(struct kwriter *w, const struct cgrec_member *m)
{
	kw_int16(w, CGREC_VALUE_VERSION);
	kw_compact_nullable_string(w, m->instance_id);
	kw_compact_nullable_string(w, m->rack_id);
	kw_compact_string(w, m->client_id.len < 0 ? KSTR("") : m->client_id);
	kw_compact_string(w, m->client_host.len < 0 ? KSTR("") : m->client_host);
	compact_count(w, m->n_topics);
	for (int32_t i = 0; i < m->n_topics; i++)
		kw_compact_string(w, m->topics[i]);
	kw_compact_nullable_string(w, m->regex);
	kw_int32(w, m->rebalance_timeout_ms);
	kw_compact_nullable_string(w, m->assignor);
	tagged_none(w); /* ClassicMemberMetadata (tag 0): only for classic members */
}

int cgrec_member_decode(const uint8_t *p, size_t n, struct cgrec_member *m)
{
	struct kreader r;
	memset(m, 0, sizeof(*m));
	if (!value_begin(&r, p, n))
		return -1;
	m->instance_id = kr_compact_nullable_string(&r);
	m->rack_id = kr_compact_nullable_string(&r);
	m->client_id = kr_compact_string(&r);
	m->client_host = kr_compact_string(&r);
	int32_t nt = array_count(&r, 1);
	struct kstr *topics = nt > 0 ? malloc(sizeof(*topics) * (size_t)nt) : NULL;
	if (nt > 0 && topics == NULL)
		return -1;
	for (int32_t i = 0; i < nt && !r.err; i++)
		topics[i] = kr_compact_string(&r);
	m->regex = kr_compact_nullable_string(&r);
	m->rebalance_timeout_ms = kr_int32(&r);
	m->assignor = kr_compact_nullable_string(&r);
	kr_skip_tagged_fields(&r);
	if (r.err) {
		free(topics);
		return -1;
	}
	m->topics = topics;
	m->n_topics = nt;
	return 0;
}

/* ---- target assignment of a member (type 7) ---- */

void cgrec_target_encode(struct kwriter *w, const struct gtpset *s)
{
	kw_int16(w, CGREC_VALUE_VERSION);
	tps_encode(w, s);
	tagged_none(w);
}

int cgrec_target_decode(const uint8_t *p, size_t n, struct gtpset *out)
{
	struct kreader r;
	out->v = NULL;
	out->n = 0;
	if (!value_begin(&r, p, n))
		return -1;
	if (tps_decode(&r, out) != 0)
		return -1;
	kr_skip_tagged_fields(&r);
	if (r.err) {
		gtpset_free(out);
		return -1;
	}
	return 0;
}

/* ---- current assignment of a member (type 8) ---- */

void cgrec_current_encode(struct kwriter *w, const struct cgrec_current *c)
{
	kw_int16(w, CGREC_VALUE_VERSION);
	kw_int32(w, c->epoch);
	kw_int32(w, c->prev_epoch);
	kw_int8(w, c->state);
	tps_encode(w, &c->assigned);
	tps_encode(w, &c->revoking);
	tagged_none(w);
}

int cgrec_current_decode(const uint8_t *p, size_t n, struct cgrec_current *c)
{
	struct kreader r;
	memset(c, 0, sizeof(*c));
	if (!value_begin(&r, p, n))
		return -1;
	c->epoch = kr_int32(&r);
	c->prev_epoch = kr_int32(&r);
	c->state = kr_int8(&r);
	if (r.err || tps_decode(&r, &c->assigned) != 0)
		return -1;
	if (tps_decode(&r, &c->revoking) != 0) {
		gtpset_free(&c->assigned);
		return -1;
	}
	kr_skip_tagged_fields(&r);
	if (r.err) {
		gtpset_free(&c->assigned);
		gtpset_free(&c->revoking);
		return -1;
	}
	return 0;
}

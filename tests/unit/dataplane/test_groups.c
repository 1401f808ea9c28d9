/* Unit tests for the group coordinator's pure parts: the group ->
 * __consumer_offsets partition hash (Java's String.hashCode), the record
 * formats of __consumer_offsets (against bytes laid out by hand from
 * Kafka's schemas; the KIP-848 consumer group records too), record
 * batches of them, protocol selection, consumer subscriptions, and the
 * string-keyed hash map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "group_crecords.h"
#include "group_protocol.h"
#include "group_records.h"
#include "storage/batch.h"
#include "storage/compact_batch.h"
#include "storage/uring_op.h" /* container_of */
#include "strmap.h"

/* ---- hashing ---- */

static void test_java_hash_known_values(void **state)
{
	(void)state;
	/* Values any JVM prints for "...".hashCode(). */
	assert_int_equal(group_java_hash(KSTR("")), 0);
	assert_int_equal(group_java_hash(KSTR("a")), 97);
	assert_int_equal(group_java_hash(KSTR("hello")), 99162322);
	assert_int_equal(group_java_hash(KSTR("Hello World")), -862545276);
	assert_int_equal(group_java_hash(KSTR("Aa")), 2112);
	assert_int_equal(group_java_hash(KSTR("BB")), 2112);
	assert_int_equal(group_java_hash(KSTR("polygenelubricants")), INT32_MIN);
	/* Non-ASCII: "é" is one UTF-16 unit (233); U+1F600 two (a surrogate
	 * pair D83D DE00): 0xD83D * 31 + 0xDE00. */
	assert_int_equal(group_java_hash(KSTR("\xc3\xa9")), 233);
	assert_int_equal(group_java_hash(KSTR("\xf0\x9f\x98\x80")), 0xD83D * 31 + 0xDE00);
	/* Malformed UTF-8 counts as U+FFFD, like Java's decoder. */
	assert_int_equal(group_java_hash(KSTR("\xff")), 0xfffd);
}

static void test_partition_for(void **state)
{
	(void)state;
	assert_int_equal(group_partition_for(KSTR("hello"), 50), 99162322 % 50);
	assert_int_equal(group_partition_for(KSTR("Hello World"), 50), 862545276 % 50);
	/* Kafka's Utils.abs(Integer.MIN_VALUE) is 0, not MIN_VALUE. */
	assert_int_equal(group_partition_for(KSTR("polygenelubricants"), 50), 0);
	assert_int_equal(group_partition_for(KSTR(""), 7), 0);
	for (int i = 0; i < 1000; i++) {
		char id[32];
		snprintf(id, sizeof(id), "group-%d", i);
		int32_t p = group_partition_for(kstr_from(id), 13);
		assert_true(p >= 0 && p < 13);
	}
}

/* ---- record formats ---- */

static void kw_expect(struct kwriter *w, const void *want, size_t n)
{
	assert_int_equal(w->err, 0);
	assert_int_equal(w->len, n);
	assert_memory_equal(w->buf, want, n);
}

static void test_offset_commit_key(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	offsets_key_commit_encode(&w, KSTR("grp"), KSTR("top"), 3);
	/* version 1, STRING group, STRING topic, INT32 partition */
	static const uint8_t want[] = { 0, 1, 0, 3, 'g', 'r', 'p', 0, 3, 't', 'o', 'p', 0, 0, 0, 3 };
	kw_expect(&w, want, sizeof(want));
	struct offsets_key k;
	assert_int_equal(offsets_key_decode(want, sizeof(want), &k), 0);
	assert_int_equal(k.version, 1);
	assert_true(kstr_eq(k.group, KSTR("grp")) && kstr_eq(k.topic, KSTR("top")));
	assert_int_equal(k.partition, 3);
	/* Version 0 has the same layout. */
	uint8_t v0[sizeof(want)];
	memcpy(v0, want, sizeof(v0));
	v0[1] = 0;
	assert_int_equal(offsets_key_decode(v0, sizeof(v0), &k), 0);
	assert_int_equal(k.partition, 3);
	/* Truncated: malformed. */
	assert_int_equal(offsets_key_decode(want, sizeof(want) - 1, &k), -1);
	kw_free(&w);
}

static void test_group_key_and_unknown_versions(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	offsets_key_group_encode(&w, KSTR("g1"));
	static const uint8_t want[] = { 0, 2, 0, 2, 'g', '1' };
	kw_expect(&w, want, sizeof(want));
	struct offsets_key k;
	assert_int_equal(offsets_key_decode(want, sizeof(want), &k), 0);
	assert_int_equal(k.version, OFFSETS_KEY_GROUP);
	assert_true(kstr_eq(k.group, KSTR("g1")));
	/* Records of the consumer protocol (KIP-848, types 3-8) are decoded
	 * (group_crecords.h); later types (share and streams groups) are
	 * skipped, not errors. */
	static const uint8_t v3[] = { 0, 3, 0, 1, 'x' };
	assert_int_equal(offsets_key_decode(v3, sizeof(v3), &k), 0);
	assert_int_equal(k.version, CGREC_GROUP);
	assert_true(kstr_eq(k.group, KSTR("x")));
	static const uint8_t v9[] = { 0, 9, 0, 1, 'x' };
	assert_int_equal(offsets_key_decode(v9, sizeof(v9), &k), 1);
	kw_free(&w);
}

static void test_offset_commit_value(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	struct offset_commit_value v = { .offset = 0x0102030405060708ll, .leader_epoch = 7,
					 .metadata = KSTR("md"), .commit_timestamp = 1000,
					 .expire_timestamp = -1 };
	offsets_value_commit_encode(&w, &v);
	/* version 3: offset INT64, leaderEpoch INT32, metadata STRING,
	 * commitTimestamp INT64 */
	static const uint8_t want[] = { 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 7,
					0, 2, 'm', 'd', 0, 0, 0, 0, 0, 0, 0x03, 0xe8 };
	kw_expect(&w, want, sizeof(want));
	struct offset_commit_value d;
	assert_int_equal(offsets_value_commit_decode(want, sizeof(want), &d), 0);
	assert_true(d.offset == v.offset && d.leader_epoch == 7 && d.commit_timestamp == 1000);
	assert_true(kstr_eq(d.metadata, KSTR("md")) && d.expire_timestamp == -1);
	/* A null metadata is written as "" (Kafka's NoMetadata). */
	kw_reset(&w);
	v.metadata = KSTR_NULL;
	offsets_value_commit_encode(&w, &v);
	assert_int_equal(w.len, sizeof(want) - 2);
	/* An expiry (OffsetCommit v2-4's retention time) needs version 1:
	 * offset, metadata, commitTimestamp, expireTimestamp. */
	kw_reset(&w);
	v.metadata = KSTR("");
	v.expire_timestamp = 2000;
	offsets_value_commit_encode(&w, &v);
	static const uint8_t want1[] = { 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0,
					 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0, 0, 0, 0x07, 0xd0 };
	kw_expect(&w, want1, sizeof(want1));
	assert_int_equal(offsets_value_commit_decode(want1, sizeof(want1), &d), 0);
	assert_true(d.expire_timestamp == 2000 && d.leader_epoch == -1 && d.offset == v.offset);
	kw_free(&w);
}

static void test_offset_commit_value_old_and_flexible(void **state)
{
	(void)state;
	struct offset_commit_value d;
	/* v1: offset, metadata, commitTimestamp, expireTimestamp */
	static const uint8_t v1[] = { 0, 1, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0,
				      0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9 };
	assert_int_equal(offsets_value_commit_decode(v1, sizeof(v1), &d), 0);
	assert_true(d.offset == 42 && d.leader_epoch == -1 && d.commit_timestamp == 5 &&
		    d.expire_timestamp == 9);
	/* v4 (flexible): offset, leaderEpoch, COMPACT_STRING metadata,
	 * commitTimestamp, tagged fields */
	static const uint8_t v4[] = { 0, 4, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 1,
				      3, 'a', 'b', 0, 0, 0, 0, 0, 0, 0, 5, 0 };
	assert_int_equal(offsets_value_commit_decode(v4, sizeof(v4), &d), 0);
	assert_true(d.offset == 42 && d.leader_epoch == 1 && kstr_eq(d.metadata, KSTR("ab")));
	static const uint8_t v9[] = { 0, 9, 0 };
	assert_int_equal(offsets_value_commit_decode(v9, sizeof(v9), &d), -1);
}

static void test_group_value_round_trip(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 256, 0);
	struct group_value v = { .protocol_type = KSTR("consumer"), .generation = 5,
				 .protocol = KSTR("range"), .leader = KSTR("m1"),
				 .state_timestamp = 77, .n_members = 2 };
	offsets_value_group_encode_header(&w, &v);
	struct group_value_member m1 = { .member_id = KSTR("m1"), .instance_id = KSTR_NULL,
					 .client_id = KSTR("c"), .client_host = KSTR("/h"),
					 .rebalance_timeout_ms = 300, .session_timeout_ms = 100,
					 .subscription = { (const uint8_t *)"s", 1 },
					 .assignment = { (const uint8_t *)"as", 2 } };
	struct group_value_member m2 = m1;
	m2.member_id = KSTR("m2");
	m2.instance_id = KSTR("i2");
	offsets_value_group_encode_member(&w, &m1);
	offsets_value_group_encode_member(&w, &m2);
	/* The header and the first member, laid out from GroupMetadataValue v3. */
	static const uint8_t head[] = {
		0, 3, 0, 8, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r', 0, 0, 0, 5,
		0, 5, 'r', 'a', 'n', 'g', 'e', 0, 2, 'm', '1', 0, 0, 0, 0, 0, 0, 0, 77,
		0, 0, 0, 2,
		0, 2, 'm', '1', 0xff, 0xff, 0, 1, 'c', 0, 2, '/', 'h', 0, 0, 1, 0x2c,
		0, 0, 0, 100, 0, 0, 0, 1, 's', 0, 0, 0, 2, 'a', 's' };
	assert_true(w.len > sizeof(head));
	assert_memory_equal(w.buf, head, sizeof(head));
	struct group_value d;
	assert_int_equal(offsets_value_group_decode(w.buf, w.len, &d), 0);
	assert_true(kstr_eq(d.protocol_type, KSTR("consumer")) && d.generation == 5);
	assert_true(kstr_eq(d.protocol, KSTR("range")) && kstr_eq(d.leader, KSTR("m1")));
	assert_true(d.state_timestamp == 77 && d.n_members == 2);
	struct group_value_member got;
	assert_int_equal(offsets_value_group_next_member(&d, &got), 1);
	assert_true(kstr_eq(got.member_id, KSTR("m1")) && kstr_is_null(got.instance_id));
	assert_true(got.rebalance_timeout_ms == 300 && got.session_timeout_ms == 100);
	assert_true(kbytes_eq(got.assignment, m1.assignment));
	assert_int_equal(offsets_value_group_next_member(&d, &got), 1);
	assert_true(kstr_eq(got.instance_id, KSTR("i2")));
	assert_int_equal(offsets_value_group_next_member(&d, &got), 0);
	/* An empty group: null protocol and leader. */
	kw_reset(&w);
	struct group_value e = { .protocol_type = KSTR("consumer"), .generation = 6,
				 .protocol = KSTR_NULL, .leader = KSTR_NULL, .state_timestamp = -1 };
	offsets_value_group_encode_header(&w, &e);
	assert_int_equal(offsets_value_group_decode(w.buf, w.len, &d), 0);
	assert_true(kstr_is_null(d.protocol) && kstr_is_null(d.leader) && d.n_members == 0);
	/* A member count larger than the bytes: malformed. */
	kw_patch_int32(&w, w.len - 4, 1000);
	assert_int_equal(offsets_value_group_decode(w.buf, w.len, &d), -1);
	kw_free(&w);
}

static void test_group_value_v0(void **state)
{
	(void)state;
	/* v0: no rebalanceTimeout (it takes the session timeout), no state
	 * timestamp, no instance id. */
	static const uint8_t v0[] = { 0, 0, 0, 1, 'c', 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff,
				      0, 0, 0, 1, 0, 1, 'm', 0, 1, 'x', 0, 1, 'h',
				      0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct group_value d;
	struct group_value_member m;
	assert_int_equal(offsets_value_group_decode(v0, sizeof(v0), &d), 0);
	assert_true(d.state_timestamp == -1 && d.generation == 1 && kstr_is_null(d.protocol));
	assert_int_equal(offsets_value_group_next_member(&d, &m), 1);
	assert_true(m.session_timeout_ms == 9 && m.rebalance_timeout_ms == 9);
	assert_true(kstr_is_null(m.instance_id));
}

static void test_batch_of_records(void **state)
{
	(void)state;
	struct kwriter w, k;
	kw_init(&w, 64, 0);
	kw_init(&k, 64, 0);
	struct offsets_batch b;
	offsets_batch_begin(&b, &w, 123456);
	offsets_key_commit_encode(&k, KSTR("g"), KSTR("t"), 0);
	size_t klen = k.len;
	struct offset_commit_value v = { .offset = 10, .leader_epoch = -1, .metadata = KSTR(""),
					 .commit_timestamp = 1, .expire_timestamp = -1 };
	offsets_value_commit_encode(&k, &v);
	offsets_batch_add(&b, (struct kbytes){ k.buf, (int32_t)klen },
			  (struct kbytes){ k.buf + klen, (int32_t)(k.len - klen) });
	offsets_batch_add(&b, (struct kbytes){ k.buf, (int32_t)klen }, KBYTES_NULL);
	size_t len = offsets_batch_end(&b);
	assert_int_equal(len, w.len);
	struct batch_hdr h;
	assert_int_equal(batch_validate(w.buf, len, &h), (int)len); /* CRC and all */
	assert_true(h.records_count == 2 && h.last_offset_delta == 1);
	assert_true(h.base_timestamp == 123456 && h.producer_id == -1);
	struct compact_rec_iter it;
	struct compact_rec r;
	compact_rec_iter_init(&it, w.buf + BATCH_HEADER_BYTES, len - BATCH_HEADER_BYTES, 2);
	assert_int_equal(compact_rec_next(&it, &r), 1);
	assert_true(r.offset_delta == 0 && !r.tombstone && r.key_len == (int32_t)klen);
	assert_memory_equal(r.key, k.buf, klen);
	assert_int_equal(compact_rec_next(&it, &r), 1);
	assert_true(r.offset_delta == 1 && r.tombstone);
	assert_int_equal(compact_rec_next(&it, &r), 0);
	/* A batch is only as good as its records: an empty one is refused. */
	offsets_batch_begin(&b, &w, 0);
	assert_int_equal(offsets_batch_end(&b), 0);
	kw_free(&w);
	kw_free(&k);
}

/* ---- protocol selection ---- */

#define P(name) { KSTR(name), { NULL, 0 } }

static void test_protocol_selection(void **state)
{
	(void)state;
	const struct gproto a[] = { P("range"), P("roundrobin") };
	const struct gproto b[] = { P("roundrobin"), P("range") };
	const struct gproto c[] = { P("roundrobin") };
	const struct gproto d[] = { P("sticky") };
	struct gproto_list l1[] = { { a, 2 } };
	assert_int_equal(group_protocol_select(l1, 1), 0); /* its first choice */
	struct gproto_list l2[] = { { a, 2 }, { b, 2 }, { b, 2 } };
	assert_int_equal(group_protocol_select(l2, 3), 1); /* roundrobin 2 votes to 1 */
	struct gproto_list l3[] = { { a, 2 }, { c, 1 } };
	assert_int_equal(group_protocol_select(l3, 2), 1); /* the only common one */
	struct gproto_list l4[] = { { a, 2 }, { d, 1 } };
	assert_int_equal(group_protocol_select(l4, 2), -1); /* none in common */
	struct gproto_list l5[] = { { a, 2 }, { b, 2 } };
	assert_int_equal(group_protocol_select(l5, 2), 0); /* a tie: the first member's */
	assert_int_equal(group_protocol_select(l5, 0), -1);
}

static void test_subscription_topics(void **state)
{
	(void)state;
	/* ConsumerProtocolSubscription v1: version, [topics], userData,
	 * ownedPartitions (ignored: v0 is its prefix). */
	static const uint8_t sub[] = { 0, 1, 0, 0, 0, 2, 0, 1, 'a', 0, 2, 'b', 'c',
				       0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	struct kbytes m = { sub, sizeof(sub) };
	assert_int_equal(group_subscription_has_topic(m, KSTR("a")), 1);
	assert_int_equal(group_subscription_has_topic(m, KSTR("bc")), 1);
	assert_int_equal(group_subscription_has_topic(m, KSTR("b")), 0);
	struct kbytes bad = { sub, 7 };
	assert_int_equal(group_subscription_has_topic(bad, KSTR("a")), -1);
}

/* ---- strmap ---- */

struct item {
	struct strmap_node node;
	char key[16];
	int value;
};

static void test_strmap(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct strmap m;
	strmap_init(&m);
	struct item *items = calloc(N, sizeof(*items));
	assert_non_null(items);
	for (int i = 0; i < N; i++) {
		snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
		items[i].value = i;
		assert_int_equal(strmap_insert(&m, &items[i].node, items[i].key,
					       strlen(items[i].key)), 0);
	}
	assert_int_equal(m.count, N);
	assert_true(m.n_buckets >= N); /* it grew */
	for (int i = 0; i < N; i += 7) {
		struct strmap_node *n = strmap_find(&m, items[i].key, strlen(items[i].key));
		assert_ptr_equal(n, &items[i].node);
	}
	assert_null(strmap_find(&m, "nope", 4));
	for (int i = 0; i < N; i += 2)
		strmap_remove(&m, &items[i].node);
	assert_int_equal(m.count, N / 2);
	int seen = 0;
	for (struct strmap_node *n = strmap_first(&m); n != NULL; n = strmap_next(&m, n)) {
		assert_int_equal(container_of(n, struct item, node)->value % 2, 1);
		seen++;
	}
	assert_int_equal(seen, N / 2);
	/* Removing while iterating, as the coordinator does. */
	struct strmap_node *n = strmap_first(&m);
	while (n != NULL) {
		struct strmap_node *next = strmap_next(&m, n);
		strmap_remove(&m, n);
		n = next;
	}
	assert_int_equal(m.count, 0);
	assert_null(strmap_first(&m));
	strmap_free(&m);
	free(items);
}

/* ---- consumer group records (KIP-848) ---- */

static struct kuuid uuid_n(uint8_t b)
{
	struct kuuid u;
	memset(&u, 0, sizeof(u));
	u.b[15] = b;
	return u;
}

static void test_cgroup_keys(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	/* Type 5 (member metadata): int16 type, STRING group, STRING member. */
	cgrec_key_encode(&w, CGREC_MEMBER, KSTR("g"), KSTR("m1"));
	static const uint8_t want[] = { 0, 5, 0, 1, 'g', 0, 2, 'm', '1' };
	kw_expect(&w, want, sizeof(want));
	struct offsets_key k;
	assert_int_equal(offsets_key_decode(want, sizeof(want), &k), 0);
	assert_int_equal(k.version, CGREC_MEMBER);
	assert_true(kstr_eq(k.group, KSTR("g")) && kstr_eq(k.member, KSTR("m1")));
	/* Group-level types carry the group only. */
	kw_reset(&w);
	cgrec_key_encode(&w, CGREC_TARGET, KSTR("g"), KSTR("ignored"));
	static const uint8_t want6[] = { 0, 6, 0, 1, 'g' };
	kw_expect(&w, want6, sizeof(want6));
	for (int t = CGREC_GROUP; t <= CGREC_CURRENT; t++) {
		kw_reset(&w);
		cgrec_key_encode(&w, t, KSTR("grp"), KSTR("mem"));
		assert_int_equal(offsets_key_decode(w.buf, w.len, &k), 0);
		assert_int_equal(k.version, t);
		assert_true(kstr_eq(k.group, KSTR("grp")));
		assert_true(kstr_eq(k.member, cgrec_has_member(t) ? KSTR("mem") : KSTR("")));
	}
	/* A member key cut short is malformed. */
	assert_int_equal(offsets_key_decode(want, sizeof(want) - 1, &k), -1);
	kw_free(&w);
}

static void test_cgroup_epoch_and_partitions(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	/* Version 0, Epoch int32, no tagged fields. */
	cgrec_epoch_encode(&w, 7);
	static const uint8_t want[] = { 0, 0, 0, 0, 0, 7, 0 };
	kw_expect(&w, want, sizeof(want));
	int32_t e = 0;
	assert_int_equal(cgrec_epoch_decode(want, sizeof(want), &e), 0);
	assert_int_equal(e, 7);
	static const uint8_t v1[] = { 0, 1, 0, 0, 0, 7, 0 };
	assert_int_equal(cgrec_epoch_decode(v1, sizeof(v1), &e), -1);
	/* Topics[] (compact: count+1): TopicId, TopicName (compact), NumPartitions,
	 * PartitionMetadata[] (empty), tagged; then the value's tagged fields. */
	kw_reset(&w);
	struct cgrec_topic t = { uuid_n(9), KSTR("ab"), 6 };
	cgrec_partitions_encode(&w, &t, 1);
	uint8_t want4[2 + 1 + 16 + 3 + 4 + 1 + 1 + 1];
	size_t k = 0;
	want4[k++] = 0, want4[k++] = 0, want4[k++] = 2;
	memset(want4 + k, 0, 16);
	want4[k + 15] = 9;
	k += 16;
	want4[k++] = 3, want4[k++] = 'a', want4[k++] = 'b';
	want4[k++] = 0, want4[k++] = 0, want4[k++] = 0, want4[k++] = 6;
	want4[k++] = 1, want4[k++] = 0, want4[k++] = 0;
	kw_expect(&w, want4, k);
	struct cgrec_topic *out;
	int32_t n;
	assert_int_equal(cgrec_partitions_decode(want4, k, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_true(kstr_eq(out[0].name, KSTR("ab")));
	assert_int_equal(out[0].n_parts, 6);
	assert_int_equal(out[0].id.b[15], 9);
	free(out);
	assert_int_equal(cgrec_partitions_decode(want4, k - 2, &out, &n), -1);
	kw_free(&w);
}

static void test_cgroup_member_value(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	struct kstr topics[] = { KSTR("t") };
	struct cgrec_member m = { .instance_id = KSTR("i"), .rack_id = KSTR_NULL,
				  .client_id = KSTR("c"), .client_host = KSTR("/h"),
				  .topics = topics, .n_topics = 1, .regex = KSTR_NULL,
				  .rebalance_timeout_ms = 1000, .assignor = KSTR("range") };
	cgrec_member_encode(&w, &m);
	static const uint8_t want[] = {
		0, 0,                     /* version */
		2, 'i',                   /* InstanceId */
		0,                        /* RackId: null */
		2, 'c',                   /* ClientId */
		3, '/', 'h',              /* ClientHost */
		2, 2, 't',                /* SubscribedTopicNames */
		0,                        /* SubscribedTopicRegex: null */
		0, 0, 3, 0xe8,            /* RebalanceTimeoutMs */
		6, 'r', 'a', 'n', 'g', 'e', /* ServerAssignor */
		0,                        /* tagged fields */
	};
	kw_expect(&w, want, sizeof(want));
	struct cgrec_member d;
	assert_int_equal(cgrec_member_decode(want, sizeof(want), &d), 0);
	assert_true(kstr_eq(d.instance_id, KSTR("i")));
	assert_true(d.rack_id.len < 0 && d.regex.len < 0);
	assert_true(kstr_eq(d.client_host, KSTR("/h")));
	assert_int_equal(d.n_topics, 1);
	assert_true(kstr_eq(d.topics[0], KSTR("t")));
	assert_int_equal(d.rebalance_timeout_ms, 1000);
	assert_true(kstr_eq(d.assignor, KSTR("range")));
	free((void *)d.topics);
	/* Kafka's tagged ClassicMemberMetadata (tag 0) is skipped. */
	uint8_t tagged[sizeof(want) + 3];
	memcpy(tagged, want, sizeof(want) - 1);
	tagged[sizeof(want) - 1] = 1; /* one tagged field */
	tagged[sizeof(want)] = 0;     /* tag 0 */
	tagged[sizeof(want) + 1] = 1; /* one byte */
	tagged[sizeof(want) + 2] = 0x55;
	assert_int_equal(cgrec_member_decode(tagged, sizeof(tagged), &d), 0);
	free((void *)d.topics);
	assert_int_equal(cgrec_member_decode(want, 12, &d), -1);
	kw_free(&w);
}

static struct gtpset tps3(void)
{
	struct gtp *v = malloc(3 * sizeof(*v));
	v[0] = (struct gtp){ uuid_n(2), 4 };
	v[1] = (struct gtp){ uuid_n(1), 1 };
	v[2] = (struct gtp){ uuid_n(1), 0 };
	struct gtpset s;
	gtpset_adopt(&s, v, 3);
	return s;
}

static void test_cgroup_assignment_values(void **state)
{
	(void)state;
	struct kwriter w;
	kw_init(&w, 64, 0);
	struct gtpset s = tps3();
	/* Type 7: TopicPartitions[] by topic id: (1: 0 1) (2: 4). */
	cgrec_target_encode(&w, &s);
	uint8_t want[2 + 1 + (16 + 1 + 8 + 1) + (16 + 1 + 4 + 1) + 1];
	size_t k = 0;
	want[k++] = 0, want[k++] = 0, want[k++] = 3;
	memset(want + k, 0, 16), want[k + 15] = 1, k += 16;
	want[k++] = 3;
	memcpy(want + k, "\0\0\0\0\0\0\0\1", 8), k += 8;
	want[k++] = 0;
	memset(want + k, 0, 16), want[k + 15] = 2, k += 16;
	want[k++] = 2;
	memcpy(want + k, "\0\0\0\4", 4), k += 4;
	want[k++] = 0;
	want[k++] = 0;
	kw_expect(&w, want, k);
	struct gtpset d;
	assert_int_equal(cgrec_target_decode(want, k, &d), 0);
	assert_true(gtpset_eq(&d, &s));
	gtpset_free(&d);
	/* Type 8: epochs, state, assigned and pending revocation. */
	kw_reset(&w);
	struct cgrec_current c = { .epoch = 5, .prev_epoch = 4, .state = 1, .assigned = s,
				   .revoking = { NULL, 0 } };
	cgrec_current_encode(&w, &c);
	assert_int_equal(w.len, 2 + 4 + 4 + 1 + (k - 3) + 1 + 1);
	static const uint8_t head[] = { 0, 0, 0, 0, 0, 5, 0, 0, 0, 4, 1 };
	assert_memory_equal(w.buf, head, sizeof(head));
	struct cgrec_current dc;
	assert_int_equal(cgrec_current_decode(w.buf, w.len, &dc), 0);
	assert_int_equal(dc.epoch, 5);
	assert_int_equal(dc.prev_epoch, 4);
	assert_int_equal(dc.state, 1);
	assert_true(gtpset_eq(&dc.assigned, &s));
	assert_int_equal(dc.revoking.n, 0);
	gtpset_free(&dc.assigned);
	/* A partition count past the bytes is malformed, not a crash. */
	uint8_t bad[64];
	memcpy(bad, want, 20);
	bad[19] = 0x7f;
	assert_int_equal(cgrec_target_decode(bad, 20, &d), -1);
	gtpset_free(&s);
	kw_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_keys),
		cmocka_unit_test(test_cgroup_epoch_and_partitions),
		cmocka_unit_test(test_cgroup_member_value),
		cmocka_unit_test(test_cgroup_assignment_values),
		cmocka_unit_test(test_java_hash_known_values),
		cmocka_unit_test(test_partition_for),
		cmocka_unit_test(test_offset_commit_key),
		cmocka_unit_test(test_group_key_and_unknown_versions),
		cmocka_unit_test(test_offset_commit_value),
		cmocka_unit_test(test_offset_commit_value_old_and_flexible),
		cmocka_unit_test(test_group_value_round_trip),
		cmocka_unit_test(test_group_value_v0),
		cmocka_unit_test(test_batch_of_records),
		cmocka_unit_test(test_protocol_selection),
		cmocka_unit_test(test_subscription_topics),
		cmocka_unit_test(test_strmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

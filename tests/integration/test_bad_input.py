"""Bad input on the wire, with the raw client: each case checks the broker's
answer (Kafka's behaviour), that a second well-behaved connection still works,
and that a record acknowledged before the bad input is still readable."""

import struct

import pytest

import kafka_raw as kr
from conftest import unique, wait_for


def test_crc32c_check_value():
    assert kr.crc32c(b"123456789") == 0xE3069283
    assert kr.crc32c(b"") == 0
    # incremental use gives the same result
    assert kr.crc32c(b"56789", kr.crc32c(b"1234")) == 0xE3069283


def test_record_batch_builder_roundtrip():
    batch = kr.record_batch([(b"k", b"v", [(b"h", b"x")]), (None, b"v2")], base_offset=7,
                            producer_id=42, producer_epoch=3, base_sequence=9,
                            base_timestamp=1000)
    (b,) = kr.parse_record_batches(batch)
    assert b["base_offset"] == 7
    assert (b["producer_id"], b["producer_epoch"], b["base_sequence"]) == (42, 3, 9)
    assert b["records"] == [(7, 1000, b"k", b"v", [(b"h", b"x")]), (8, 1000, None, b"v2", [])]
    # the batch length field covers everything after it
    assert struct.unpack(">i", batch[8:12])[0] == len(batch) - 12
    with pytest.raises(ValueError):
        kr.parse_record_batches(kr.record_batch([(b"k", b"v")], corrupt_crc=True))


class Setup:
    """A topic with one acknowledged record, produced before the bad input."""

    def __init__(self, broker, partitions=1, configs=None):
        self.broker = broker
        self.topic = unique("bad")
        with kr.Conn.to(broker.bootstrap) as c:
            err, msg = c.create_topic(self.topic, partitions, configs=configs)
            assert err == 0, (err, msg)
            self.value = b"acked-before-" + self.topic.encode()
            err, off = c.produce_v3(self.topic, 0, kr.record_batch([(b"key", self.value)]))
            assert (err, off) == (0, 0)

    def conn(self):
        return kr.Conn.to(self.broker.bootstrap)

    def check_still_serving(self):
        """A new connection works and the acknowledged record is intact."""
        assert self.broker.running(), "sluiced died; stderr:\n" + self.broker.log_tail()
        with self.conn() as c:
            err, apis = c.api_versions(0)
            assert err == 0
            assert apis == kr.EXPECTED_API_VERSIONS
            md = c.metadata([self.topic])
            assert md["topics"][self.topic]["error"] == 0
            hw, recs = c.fetch_all(self.topic, 0)
            assert hw >= 1
            assert recs[0][0] == 0 and recs[0][2] == b"key" and recs[0][3] == self.value
            # and it still accepts writes
            err, off = c.produce_v3(self.topic, 0, kr.record_batch([(None, b"after")]))
            assert err == 0 and off == hw


def send_tolerant(c, data):
    """Send, ignoring a reset: the broker may close before reading it all."""
    try:
        c.send_raw(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def assert_closed(c, what):
    assert c.is_closed_by_peer(10), "broker kept the connection open after " + what


# ----------------------------------------------------------------- framing


def test_frame_smaller_than_8_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        c.send_raw(kr.i32(4) + b"\x00\x12\x00\x00")
        assert_closed(c, "a 4-byte frame")
    s.check_still_serving()


def test_frame_size_zero_and_negative_close(broker):
    s = Setup(broker)
    for size in (0, -1, -2147483648):
        with s.conn() as c:
            c.send_raw(kr.i32(size))
            assert_closed(c, "frame size %d" % size)
    s.check_still_serving()


def test_frame_over_socket_request_max_bytes_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # 104857600 is the default socket.request.max.bytes: one byte more
        send_tolerant(c, kr.i32(104857601) + b"\x00\x12\x00\x00\x00\x00\x00\x01")
        assert_closed(c, "a frame size of 104857601")
    s.check_still_serving()


@pytest.mark.broker_args("--set", "socket.request.max.bytes=100000",
                         "--set", "message.max.bytes=50000")
def test_frame_over_configured_limit_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # a well-formed Produce whose frame is just over the configured limit
        batch = kr.record_batch([(None, b"x" * 100000)])
        body = c.produce_body_v3(s.topic, 0, batch)
        payload = c.header(kr.PRODUCE, 3, 99, 1) + body
        assert len(payload) > 100000
        send_tolerant(c, kr.i32(len(payload)) + payload)
        assert_closed(c, "a 100 kB frame with socket.request.max.bytes=100000")
    s.check_still_serving()


def test_unknown_api_key_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        c.send_request(12345, 0, b"")
        assert_closed(c, "API key 12345")
    s.check_still_serving()


def test_truncated_header_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # api key, version, correlation id, then a client id length of 50 with 2 bytes
        c.send_frame(kr.i16(kr.METADATA) + kr.i16(4) + kr.i32(1) + kr.i16(50) + b"ab")
        assert_closed(c, "a header whose client id runs past the frame")
    s.check_still_serving()


# ----------------------------------------------------------------- versions


@pytest.mark.parametrize("version", [5, 127, -1])
def test_unsupported_api_versions_version_answers_v0(broker, version):
    s = Setup(broker)
    with s.conn() as c:
        if version >= 3:
            # what a newer client sends: header v2 and a v3-style body
            body = kr.compact_string("future-client") + kr.compact_string("9.9") + kr.TAGS
            corr = c.send_request(kr.API_VERSIONS, version, body, flexible=True)
        else:
            corr = c.send_request(kr.API_VERSIONS, version, b"")
        r = c.recv_response(corr)  # response header v0
        err, apis = kr.parse_api_versions_body(r, 0)
        assert err == kr.UNSUPPORTED_VERSION
        assert apis == kr.EXPECTED_API_VERSIONS
        # Kafka keeps this connection open: the client retries with a version it knows.
        err, apis = c.api_versions(0)
        assert err == 0 and apis == kr.EXPECTED_API_VERSIONS
    s.check_still_serving()


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_api_versions_supported_versions(shared_broker, version):
    with kr.Conn.to(shared_broker.bootstrap) as c:
        err, apis = c.api_versions(version)
        assert err == 0
        assert apis == kr.EXPECTED_API_VERSIONS


@pytest.mark.parametrize("api,version", [
    (kr.PRODUCE, 2), (kr.PRODUCE, 12), (kr.FETCH, 3), (kr.FETCH, 18), (kr.METADATA, 13),
    (kr.LIST_OFFSETS, 0), (kr.CREATE_TOPICS, 1), (kr.DELETE_TOPICS, 0),
    (kr.INIT_PRODUCER_ID, 6),
])
def test_unsupported_version_of_other_api_closes(broker, api, version):
    s = Setup(broker)
    with s.conn() as c:
        c.send_request(api, version, b"\x00" * 16)
        assert_closed(c, "api %d version %d" % (api, version))
    s.check_still_serving()


# ----------------------------------------------------------------- undecodable bodies


def test_array_count_past_end_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # Metadata v4: topics array claims 1000 entries, then nothing
        c.send_request(kr.METADATA, 4, kr.i32(1000))
        assert_closed(c, "Metadata with a topics count of 1000 and no entries")
    s.check_still_serving()


def test_negative_count_non_nullable_array_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # Produce v3 whose topic_data (not nullable) has count -1
        body = kr.string(None) + kr.i16(-1) + kr.i32(1000) + kr.i32(-1)
        c.send_request(kr.PRODUCE, 3, body)
        assert_closed(c, "Produce with topic_data count -1")
    s.check_still_serving()


def test_very_negative_array_count_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        body = kr.string(None) + kr.i16(-1) + kr.i32(1000) + kr.i32(-7)
        c.send_request(kr.PRODUCE, 3, body)
        assert_closed(c, "Produce with topic_data count -7")
    s.check_still_serving()


def test_truncated_produce_body_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        body = c.produce_body_v3(s.topic, 0, kr.record_batch([(b"k", b"v")]))
        c.send_request(kr.PRODUCE, 3, body[:-10])
        assert_closed(c, "a Produce body cut 10 bytes short")
    s.check_still_serving()


def test_string_length_past_end_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # Metadata v4 with one topic whose name length says 300 bytes
        c.send_request(kr.METADATA, 4, kr.i32(1) + kr.i16(300) + b"abc")
        assert_closed(c, "a topic name running past the frame")
    s.check_still_serving()


def test_flexible_compact_array_past_end_closes(broker):
    s = Setup(broker)
    with s.conn() as c:
        # Produce v9: transactional id null, acks, timeout, topic_data compact count 1000
        body = kr.compact_string(None) + kr.i16(-1) + kr.i32(1000) + kr.uvarint(1001)
        c.send_request(kr.PRODUCE, 9, body, flexible=True)
        assert_closed(c, "a Produce v9 whose compact array runs past the frame")
    s.check_still_serving()


# ----------------------------------------------------------------- record batches


@pytest.mark.parametrize("flexible", [False, True], ids=["v3", "v9"])
def test_bad_crc_is_corrupt_message(broker, flexible):
    s = Setup(broker)
    batch = kr.record_batch([(b"k", b"corrupt")], corrupt_crc=True)
    with s.conn() as c:
        if flexible:
            err, _, _ = c.produce_v9(s.topic, 0, batch)
        else:
            err, _ = c.produce_v3(s.topic, 0, batch)
        assert err == kr.CORRUPT_MESSAGE
        hw, recs = c.fetch_all(s.topic, 0)
        assert hw == 1 and [r[3] for r in recs] == [s.value]
    s.check_still_serving()


def test_flipped_payload_byte_is_corrupt_message(broker):
    s = Setup(broker)
    batch = bytearray(kr.record_batch([(b"k", b"payload-to-flip")]))
    batch[-3] ^= 0x01  # inside the value: the stored CRC no longer matches
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, bytes(batch))
        assert err == kr.CORRUPT_MESSAGE
    s.check_still_serving()


def test_batch_over_topic_max_message_bytes(broker):
    s = Setup(broker, configs={"max.message.bytes": "1000"})
    with s.conn() as c:
        small = kr.record_batch([(None, b"s" * 100)])
        err, off = c.produce_v3(s.topic, 0, small)
        assert (err, off) == (0, 1)
        big = kr.record_batch([(None, b"b" * 2000)])
        assert len(big) > 1000
        err, _ = c.produce_v3(s.topic, 0, big)
        assert err == kr.MESSAGE_TOO_LARGE
        err, _, _ = c.produce_v9(s.topic, 0, big)
        assert err == kr.MESSAGE_TOO_LARGE
        hw, _ = c.fetch_all(s.topic, 0)
        assert hw == 2
    s.check_still_serving()


@pytest.mark.broker_args("--set", "message.max.bytes=5000")
def test_batch_over_broker_message_max_bytes(broker):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, kr.record_batch([(None, b"b" * 6000)]))
        assert err == kr.MESSAGE_TOO_LARGE
    s.check_still_serving()


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_magic_is_invalid_record(broker, magic):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, kr.legacy_message_set(b"k", b"old", magic=magic))
        assert err == kr.INVALID_RECORD
        hw, _ = c.fetch_all(s.topic, 0)
        assert hw == 1
    s.check_still_serving()


def test_v2_header_with_magic_1_is_invalid_record(broker):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, kr.record_batch([(b"k", b"v")], magic=1))
        assert err in (kr.INVALID_RECORD, kr.CORRUPT_MESSAGE)
    s.check_still_serving()


def test_two_batches_in_one_partition_is_invalid_record(broker):
    s = Setup(broker)
    two = kr.record_batch([(None, b"one")]) + kr.record_batch([(None, b"two")])
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, two)
        assert err == kr.INVALID_RECORD
        hw, _ = c.fetch_all(s.topic, 0)
        assert hw == 1
    s.check_still_serving()


def test_empty_records_is_invalid_record(broker):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, b"")
        assert err == kr.INVALID_RECORD
    s.check_still_serving()


def test_null_records_is_refused(broker):
    """Null records: Kafka refuses it (an error or a closed connection); it must
    not append anything nor take the broker down."""
    s = Setup(broker)
    with s.conn() as c:
        try:
            err, _ = c.produce_v3(s.topic, 0, None)
            assert err != 0
        except (kr.ConnectionClosed, ConnectionResetError):
            pass
    s.check_still_serving()


def test_batch_with_zero_records_is_invalid_record(broker):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, kr.record_batch([]))
        assert err in (kr.INVALID_RECORD, kr.CORRUPT_MESSAGE)
    s.check_still_serving()


def test_record_count_mismatch_is_rejected(broker):
    """A batch whose records-count field says 3 but holds 2 records (valid CRC)."""
    s = Setup(broker)
    batch = bytearray(kr.record_batch([(None, b"a"), (None, b"b")]))
    # records count is at offset 57 (8+4+4+1+4 +2+4+8+8+8+2+4)
    assert struct.unpack(">i", batch[57:61])[0] == 2
    batch[57:61] = kr.i32(3)
    batch[17:21] = kr.u32(kr.crc32c(bytes(batch[21:])))
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, bytes(batch))
        assert err in (kr.INVALID_RECORD, kr.CORRUPT_MESSAGE)
        hw, _ = c.fetch_all(s.topic, 0)
        assert hw == 1
    s.check_still_serving()


def test_truncated_batch_is_rejected(broker):
    """batchLength says more bytes than the records field holds."""
    s = Setup(broker)
    batch = kr.record_batch([(None, b"abcdef")])
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, batch[:-4])
        assert err in (kr.INVALID_RECORD, kr.CORRUPT_MESSAGE)
    s.check_still_serving()


# ----------------------------------------------------------------- produce semantics


@pytest.mark.parametrize("acks", [2, -2, 5])
def test_bad_acks_is_invalid_required_acks(broker, acks):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 0, kr.record_batch([(None, b"x")]), acks=acks)
        assert err == kr.INVALID_REQUIRED_ACKS
        hw, _ = c.fetch_all(s.topic, 0)
        assert hw == 1
    s.check_still_serving()


@pytest.mark.broker_args("--set", "auto.create.topics.enable=false")
def test_produce_missing_topic_without_auto_create(broker):
    s = Setup(broker)
    missing = unique("missing")
    with s.conn() as c:
        err, _ = c.produce_v3(missing, 0, kr.record_batch([(None, b"x")]))
        assert err == kr.UNKNOWN_TOPIC_OR_PARTITION
        err, _, _ = c.produce_v9(missing, 0, kr.record_batch([(None, b"x")]))
        assert err == kr.UNKNOWN_TOPIC_OR_PARTITION
        md = c.metadata([missing], allow_auto_create=True)
        assert md["topics"][missing]["error"] == kr.UNKNOWN_TOPIC_OR_PARTITION
        assert missing not in c.metadata(None)["topics"]
    s.check_still_serving()


def test_produce_missing_partition(broker):
    s = Setup(broker)
    with s.conn() as c:
        err, _ = c.produce_v3(s.topic, 7, kr.record_batch([(None, b"x")]))
        assert err == kr.UNKNOWN_TOPIC_OR_PARTITION
    s.check_still_serving()


def test_acks0_failed_produce_closes_connection(broker):
    s = Setup(broker)
    with s.conn() as c:
        c.produce_v3(s.topic, 0, kr.record_batch([(None, b"bad")], corrupt_crc=True), acks=0)
        assert_closed(c, "a failed acks=0 produce (bad CRC)")
    s.check_still_serving()


def test_acks0_good_produce_keeps_connection(broker):
    s = Setup(broker)
    with s.conn() as c:
        c.produce_v3(s.topic, 0, kr.record_batch([(None, b"fire-and-forget")]), acks=0)
        # no response to acks=0; the next request on the same connection is answered
        err, apis = c.api_versions(0)
        assert err == 0
        wait_for(lambda: c.fetch_all(s.topic, 0)[0] == 2, timeout=10,
                 what="the acks=0 record to become visible")
        hw, recs = c.fetch_all(s.topic, 0)
        assert hw == 2 and recs[1][3] == b"fire-and-forget"
    s.check_still_serving()


def test_many_bad_connections_then_good(broker):
    """A burst of garbage connections does not wedge the broker."""
    s = Setup(broker)
    for i in range(30):
        with s.conn() as c:
            send_tolerant(c, bytes([(i * 37 + j) % 256 for j in range(64)]))
    s.check_still_serving()


def test_client_disconnect_mid_request(broker):
    s = Setup(broker)
    for cut in (2, 4, 10, 30):
        with s.conn() as c:
            body = c.produce_body_v3(s.topic, 0, kr.record_batch([(None, b"half")]))
            payload = c.header(kr.PRODUCE, 3, 1, 1) + body
            c.send_raw((kr.i32(len(payload)) + payload)[:cut])
    s.check_still_serving()
    with s.conn() as c:
        hw, recs = c.fetch_all(s.topic, 0)
        assert b"half" not in [r[3] for r in recs]

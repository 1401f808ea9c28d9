"""confluent-kafka (librdkafka) against sluiced: admin, produce/consume,
idempotence, compression, offsets, long poll, auto-creation, size limits."""

import glob
import os
import threading
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, KafkaError, TopicPartition)

import kafka_raw as kr
from conftest import unique, wait_for
from helpers import (admin, consume, consumer, create_topic, expected_librdkafka_codecs,
                     list_topics, produce_all, producer, stored_codecs)

# ----------------------------------------------------------------- admin


def test_create_topic_with_partitions_and_configs(shared_broker):
    b = shared_broker
    t = unique("cfg")
    err = create_topic(b.bootstrap, t, partitions=3, config={
        "retention.ms": "3600000",
        "segment.bytes": "1048576",
        "max.message.bytes": "200000",
        "cleanup.policy": "delete",
    })
    assert err is None, err
    md = list_topics(b.bootstrap, t)
    tm = md.topics[t]
    assert tm.error is None
    assert sorted(tm.partitions) == [0, 1, 2]
    for p in tm.partitions.values():
        assert p.leader == 1 and p.replicas == [1] and p.isrs == [1]
    # each partition has its directory with Kafka-named segment files
    for p in range(3):
        d = os.path.join(b.data_dir, "%s-%d" % (t, p))
        wait_for(lambda: os.path.exists(os.path.join(d, "00000000000000000000.log")),
                 timeout=10, what="%s to hold 00000000000000000000.log" % d)

    # max.message.bytes=200000 is in force: 150 kB goes, 300 kB is refused
    p = producer(b.bootstrap)
    d = produce_all(p, t, [{"value": b"a" * 150000, "partition": 0}])
    assert not d.errors and d.ok[0][:2] == (0, 0)
    d = produce_all(p, t, [{"value": b"b" * 300000, "partition": 0}])
    assert len(d.errors) == 1
    assert d.errors[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE

    # segment.bytes=1 MiB is in force: ~2.5 MB written to one partition rolls segments
    # (one message per batch, to stay under max.message.bytes)
    d = produce_all(producer(b.bootstrap, **{"batch.num.messages": 1}), t, [{"value": bytes([i % 256]) * 100000, "partition": 1}
                           for i in range(25)])
    assert not d.errors
    logs = sorted(glob.glob(os.path.join(b.data_dir, "%s-1" % t, "*.log")))
    assert len(logs) >= 2, "expected rolled segments, found %s" % logs
    for f in logs:
        assert len(os.path.basename(f)) == len("00000000000000000000.log")
    assert os.path.exists(logs[0][:-4] + ".index")
    assert os.path.exists(logs[0][:-4] + ".timeindex")
    # and the data spans segments correctly
    got = consume(b.bootstrap, t, [1], count=25)[1]
    assert [m["offset"] for m in got] == list(range(25))
    assert [m["value"] for m in got] == [bytes([i % 256]) * 100000 for i in range(25)]


def test_create_topic_replication_factor_3(shared_broker):
    t = unique("rf")
    err = create_topic(shared_broker.bootstrap, t, replication_factor=3)
    assert err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR, err
    assert t not in list_topics(shared_broker.bootstrap).topics


@pytest.mark.parametrize("config", [
    {"no.such.config": "1"},
    {"retention.ms": "abc"},
    {"segment.bytes": "-5"},
    {"cleanup.policy": "bogus"},
    {"max.message.bytes": "12x"},
    {"compression.type": "brotli"},
    {"message.timestamp.type": "Whenever"},
    {"unclean.leader.election.enable": "maybe"},
    {"min.insync.replicas": "0"},
], ids=["unknown-name", "retention-not-int", "segment-negative", "policy-bogus",
        "max-message-not-int", "compression-bogus", "timestamp-type-bogus",
        "unclean-not-bool", "min-isr-0"])
def test_create_topic_bad_config(shared_broker, config):
    t = unique("badcfg")
    err = create_topic(shared_broker.bootstrap, t, config=config)
    assert err is not None, "topic created with the invalid config %s" % config
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert t not in list_topics(shared_broker.bootstrap).topics


def test_create_existing_topic(shared_broker):
    t = unique("exists")
    assert create_topic(shared_broker.bootstrap, t, partitions=2) is None
    err = create_topic(shared_broker.bootstrap, t, partitions=2)
    assert err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err


def test_create_topic_validate_only(shared_broker):
    b = shared_broker
    t = unique("validate")
    assert create_topic(b.bootstrap, t, partitions=4, validate_only=True) is None
    assert t not in list_topics(b.bootstrap).topics
    assert not glob.glob(os.path.join(b.data_dir, t + "-*"))
    err = create_topic(b.bootstrap, t, replication_factor=3, validate_only=True)
    assert err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR
    err = create_topic(b.bootstrap, t, config={"no.such.config": "1"}, validate_only=True)
    assert err is not None and err.code() == KafkaError.INVALID_CONFIG
    # the real thing still works afterwards
    assert create_topic(b.bootstrap, t, partitions=4) is None
    assert sorted(list_topics(b.bootstrap, t).topics[t].partitions) == [0, 1, 2, 3]


def test_create_several_topics_at_once_independent_results(shared_broker):
    from confluent_kafka.admin import NewTopic
    good, bad = unique("multi-ok"), unique("multi-bad")
    a = admin(shared_broker.bootstrap)  # keep a reference: futures die with the handle
    fs = a.create_topics(
        [NewTopic(good, 2, 1), NewTopic(bad, 1, 3)], operation_timeout=10, request_timeout=15)
    assert fs[good].result(timeout=20) is None
    with pytest.raises(Exception) as ei:
        fs[bad].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR
    topics = list_topics(shared_broker.bootstrap).topics
    assert good in topics and bad not in topics


def test_delete_topic_then_recreate_is_empty(shared_broker):
    b = shared_broker
    t = unique("del")
    assert create_topic(b.bootstrap, t, partitions=2) is None
    p = producer(b.bootstrap)
    d = produce_all(p, t, [{"value": b"old-%d" % i, "partition": i % 2} for i in range(20)])
    assert not d.errors and len(d.ok) == 20

    a = admin(b.bootstrap)
    fs = a.delete_topics([t], operation_timeout=10, request_timeout=15)
    assert fs[t].result(timeout=20) is None
    assert t not in list_topics(b.bootstrap).topics
    with kr.Conn.to(b.bootstrap) as c:
        md = c.metadata([t], allow_auto_create=False)
        assert md["topics"][t]["error"] == kr.UNKNOWN_TOPIC_OR_PARTITION
        # deleting it again: unknown
        assert c.delete_topic(t) == kr.UNKNOWN_TOPIC_OR_PARTITION

    assert create_topic(b.bootstrap, t, partitions=1) is None
    c = consumer(b.bootstrap)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
        assert (lo, hi) == (0, 0)
    finally:
        c.close()
    p2 = producer(b.bootstrap)
    d = produce_all(p2, t, [{"value": b"new", "partition": 0}])
    assert not d.errors and d.ok[0][:2] == (0, 0)
    got = consume(b.bootstrap, t, [0])[0]
    assert [m["value"] for m in got] == [b"new"]


def test_delete_unknown_topic(shared_broker):
    t = unique("nodel")
    a = admin(shared_broker.bootstrap)
    fs = a.delete_topics([t], operation_timeout=10, request_timeout=15)
    with pytest.raises(Exception) as ei:
        fs[t].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


# ----------------------------------------------------------------- produce / consume


@pytest.mark.parametrize("acks", ["all", "1", "0"])
def test_produce_consume_roundtrip(shared_broker, acks):
    b = shared_broker
    t = unique("rt-acks" + acks)
    assert create_topic(b.bootstrap, t, partitions=3) is None
    base_ts = 1_600_000_000_000
    n = 300
    msgs = [{
        "partition": i % 3,
        "key": b"key-%d" % i,
        "value": b"value-%d-" % i + bytes(range(256)) * (i % 3),
        "headers": [("h1", b"hv-%d" % i), ("h2", b""), ("h1", b"dup")],
        "timestamp": base_ts + i,
    } for i in range(n)]
    p = producer(b.bootstrap, acks=acks)
    d = produce_all(p, t, msgs)
    assert not d.errors, d.errors[:3]
    assert len(d.ok) == n

    got = consume(b.bootstrap, t, [0, 1, 2], count=n)
    for part in range(3):
        expect = [m for m in msgs if m["partition"] == part]
        recs = got[part]
        assert [r["offset"] for r in recs] == list(range(len(expect)))
        assert [r["key"] for r in recs] == [m["key"] for m in expect]
        assert [r["value"] for r in recs] == [m["value"] for m in expect]
        assert [r["headers"] for r in recs] == [m["headers"] for m in expect]
        assert [r["timestamp"] for r in recs] == [(1, m["timestamp"]) for m in expect]
    if acks != "0":
        # delivery reports carry the offsets the consumer sees
        by_value = {v: (part, off) for part, off, _, v in d.ok}
        for part in range(3):
            for r in got[part]:
                assert by_value[r["value"]] == (part, r["offset"])


def test_null_key_and_null_value(shared_broker):
    t = unique("nulls")
    p = producer(shared_broker.bootstrap)
    d = produce_all(p, t, [{"value": None, "key": b"k", "partition": 0},
                           {"value": b"v", "partition": 0},
                           {"value": b"", "key": b"", "partition": 0}])
    assert not d.errors
    got = consume(shared_broker.bootstrap, t, [0], count=3)[0]
    assert [(m["key"], m["value"]) for m in got] == [(b"k", None), (None, b"v"), (b"", b"")]


def test_idempotent_producer_exactly_once(shared_broker):
    b = shared_broker
    t = unique("idem")
    assert create_topic(b.bootstrap, t, partitions=3) is None
    n = 6000
    p = producer(b.bootstrap, **{"enable.idempotence": True, "linger.ms": 2,
                                 "batch.num.messages": 200})
    msgs = [{"partition": i % 3, "key": b"%d" % i, "value": b"idem-%06d" % i} for i in range(n)]
    d = produce_all(p, t, msgs)
    assert not d.errors, d.errors[:3]
    assert len(d.ok) == n
    got = consume(b.bootstrap, t, [0, 1, 2], count=n, timeout=60)
    values = [m["value"] for part in range(3) for m in got[part]]
    assert len(values) == n and len(set(values)) == n
    for part in range(3):
        assert [m["value"] for m in got[part]] == \
            [m["value"] for m in msgs if m["partition"] == part]
        assert [m["offset"] for m in got[part]] == list(range(n // 3))
    # nothing beyond them (no duplicate appended after the last one we counted)
    c = consumer(b.bootstrap)
    try:
        for part in range(3):
            assert c.get_watermark_offsets(TopicPartition(t, part), timeout=10) == (0, n // 3)
    finally:
        c.close()
    # the stored batches carry the producer id and consecutive sequences
    with kr.Conn.to(b.bootstrap) as c:
        err, hw, data = c.fetch(t, 0, 0)
        assert err == 0
        batches = kr.parse_record_batches(data)
        assert batches
        pids = {bt["producer_id"] for bt in batches}
        assert len(pids) == 1 and min(pids) >= 0
        seq = 0
        for bt in batches:
            assert bt["base_sequence"] == seq
            seq += len(bt["records"])


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression(shared_broker, codec):
    b = shared_broker
    t = unique("comp-" + codec)
    n = 500
    msgs = [{"partition": 0, "key": b"k%d" % i,
             "value": (b"compressible %d " % i) * 20, "headers": [("c", codec.encode())]}
            for i in range(n)]
    p = producer(b.bootstrap, **{"compression.type": codec, "linger.ms": 20})
    d = produce_all(p, t, msgs)
    assert not d.errors, d.errors[:3]
    got = consume(b.bootstrap, t, [0], count=n)[0]
    assert [m["offset"] for m in got] == list(range(n))
    assert [(m["key"], m["value"], m["headers"]) for m in got] == \
        [(m["key"], m["value"], m["headers"]) for m in msgs]
    # the batches really went (and are stored) compressed with that codec
    codecs = stored_codecs(b.bootstrap, t)
    assert codecs and set(codecs) <= expected_librdkafka_codecs(codec), \
        "stored batches are %s after producing with %s" % (sorted(set(codecs)), codec)


def test_raw_gzip_batch_roundtrip(shared_broker):
    """A gzip batch built here is accepted, kept compressed and decoded by librdkafka."""
    b = shared_broker
    t = unique("rawgzip")
    recs = [(b"k%d" % i, b"gzip value %d " % i * 10, [(b"h", b"%d" % i)]) for i in range(50)]
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t)[0] == 0
        assert c.produce_v3(t, 0, kr.record_batch(recs, gzip_records=True)) == (0, 0)
        assert c.produce_v9(t, 0, kr.record_batch(recs[:5], gzip_records=True))[:2] == (0, 50)
        err, hw, data = c.fetch(t, 0, 0)
        assert err == 0 and hw == 55
        assert kr.batch_codecs(data) == ["gzip", "gzip"]
        got = [r for bt in kr.parse_record_batches(data) for r in bt["records"]]
        assert [(r[0], r[2], r[3], r[4]) for r in got] == \
            [(i, k, v, h) for i, (k, v, h) in enumerate(recs + recs[:5])]
    got = consume(b.bootstrap, t, [0], count=55)[0]
    assert [(m["key"], m["value"]) for m in got] == [(k, v) for k, v, _ in recs + recs[:5]]
    assert [m["headers"] for m in got] == [[("h", h[0][1])] for _, _, h in recs + recs[:5]]


@pytest.mark.xfail(strict=True, reason="not built yet: the broker does not decompress batches on produce to validate records")
def test_raw_corrupt_gzip_payload_is_rejected(shared_broker):
    """A gzip batch whose CRC is right but whose payload is not gzip."""
    t = unique("badgzip")
    batch = bytearray(kr.record_batch([(None, b"x" * 100)]))
    # flip the codec bits to gzip and fix the CRC: the records are not gzip data
    batch[21:23] = kr.i16(1)
    batch[17:21] = kr.u32(kr.crc32c(bytes(batch[21:])))
    with kr.Conn.to(shared_broker.bootstrap) as c:
        assert c.create_topic(t)[0] == 0
        err, _ = c.produce_v3(t, 0, bytes(batch))
        # Kafka decompresses to validate and refuses it (CORRUPT_MESSAGE or another
        # error); storing it would break every consumer that reaches this offset
        assert err != 0, "an undecodable gzip batch was accepted and stored"
        assert c.fetch_all(t, 0)[0] == 0
        assert c.produce_v3(t, 0, kr.record_batch([(None, b"fine")])) == (0, 0)


# ----------------------------------------------------------------- offsets


def test_watermarks_offsets_for_times_and_logical_offsets(shared_broker):
    b = shared_broker
    t = unique("offs")
    t0 = 1_700_000_000_000
    p = producer(b.bootstrap)
    d = produce_all(p, t, [{"partition": 0, "value": b"m%d" % i, "timestamp": t0 + 1000 * i}
                           for i in range(10)])
    assert not d.errors
    c = consumer(b.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(t, 0), timeout=10) == (0, 10)
        q = [TopicPartition(t, 0, ts) for ts in (t0 - 5, t0, t0 + 3500, t0 + 9000, t0 + 99999)]
        res = [c.offsets_for_times([tp], timeout=10)[0] for tp in q]
        assert [r.error for r in res] == [None] * 5
        assert [r.offset for r in res] == [0, 0, 4, 9, -1]
    finally:
        c.close()

    # OFFSET_BEGINNING reads from 0
    got = consume(b.bootstrap, t, [0], start=OFFSET_BEGINNING)[0]
    assert [m["value"] for m in got] == [b"m%d" % i for i in range(10)]

    # OFFSET_END: only what is produced after the assignment
    c = consumer(b.bootstrap)  # enable.partition.eof: tells when it reached the end
    try:
        c.assign([TopicPartition(t, 0, OFFSET_END)])
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "no end-of-partition event"
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() and m.error().code() == KafkaError._PARTITION_EOF, \
                "unexpected message at OFFSET_END: %r" % (m.value(),)
            assert m.offset() == 10
            break
        d = produce_all(p, t, [{"partition": 0, "value": b"after-end"}])
        assert not d.errors
        while True:
            assert time.monotonic() < deadline, "new message never arrived"
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            assert (m.offset(), m.value()) == (10, b"after-end")
            break
    finally:
        c.close()


# ----------------------------------------------------------------- long poll


def test_raw_fetch_waits_max_wait_at_log_end(shared_broker):
    t = unique("wait")
    with kr.Conn.to(shared_broker.bootstrap) as c:
        assert c.create_topic(t)[0] == 0
        assert c.produce_v3(t, 0, kr.record_batch([(None, b"x")])) == (0, 0)
        t0 = time.monotonic()
        err, hw, data = c.fetch(t, 0, 1, max_wait_ms=1000, min_bytes=1)
        took = time.monotonic() - t0
        assert err == 0 and hw == 1 and data == b""
        assert 0.8 <= took < 4.0, "empty fetch with max_wait 1000 ms returned after %.2f s" % took


def test_raw_fetch_wakes_on_produce(shared_broker):
    t = unique("wake")
    with kr.Conn.to(shared_broker.bootstrap) as c, kr.Conn.to(shared_broker.bootstrap) as w:
        assert c.create_topic(t)[0] == 0
        result = {}

        def fetcher():
            t0 = time.monotonic()
            result["resp"] = c.fetch(t, 0, 0, max_wait_ms=8000, min_bytes=1)
            result["done"] = time.monotonic()
            result["took"] = result["done"] - t0

        th = threading.Thread(target=fetcher)
        th.start()
        time.sleep(1.0)  # let the fetch park at the log end
        assert "resp" not in result, "fetch returned before any data: %r" % (result,)
        t_prod = time.monotonic()
        assert w.produce_v3(t, 0, kr.record_batch([(b"k", b"wake-up")])) == (0, 0)
        th.join(12)
        assert not th.is_alive()
        err, hw, data = result["resp"]
        assert err == 0 and hw == 1
        recs = [r for bt in kr.parse_record_batches(data) for r in bt["records"]]
        assert [(r[0], r[3]) for r in recs] == [(0, b"wake-up")]
        assert result["done"] - t_prod < 2.0, \
            "parked fetch answered %.2f s after the produce" % (result["done"] - t_prod)


def test_consumer_long_poll_gets_record_quickly(shared_broker):
    b = shared_broker
    t = unique("longpoll")
    p = producer(b.bootstrap)
    d = produce_all(p, t, [{"partition": 0, "value": b"before"}])
    assert not d.errors
    c = consumer(b.bootstrap, **{"fetch.wait.max.ms": 5000, "enable.partition.eof": False})
    try:
        # assigned at the end (offset 1; OFFSET_END itself is covered above)
        c.assign([TopicPartition(t, 0, 1)])
        t_start = time.monotonic()
        # poll ~1 s so the consumer connects and parks a fetch at the end
        while time.monotonic() - t_start < 1.0:
            m = c.poll(0.1)
            assert m is None or m.error(), "unexpected record %r" % (m and m.value())
        d = produce_all(p, t, [{"partition": 0, "value": b"long-poll"}])
        t_prod = time.monotonic()
        assert not d.errors
        while True:
            m = c.poll(0.05)
            now = time.monotonic()
            assert now - t_prod < 10, "record never arrived"
            if m is None or m.error():
                continue
            assert m.value() == b"long-poll" and m.offset() == 1
            break
        assert now - t_prod < 3.0, "record arrived %.2f s after produce" % (now - t_prod)
    finally:
        c.close()


# ----------------------------------------------------------------- auto-creation


def test_auto_create_on_produce(shared_broker):
    b = shared_broker
    t = unique("auto-prod")
    p = producer(b.bootstrap)
    d = produce_all(p, t, [{"value": b"auto"}])
    assert not d.errors and d.ok[0][:2] == (0, 0)
    tm = list_topics(b.bootstrap, t).topics[t]
    assert tm.error is None and sorted(tm.partitions) == [0]  # num.partitions=1
    assert [m["value"] for m in consume(b.bootstrap, t, [0])[0]] == [b"auto"]


def test_auto_create_on_metadata(shared_broker):
    t = unique("auto-md")
    n = unique("no-auto")
    with kr.Conn.to(shared_broker.bootstrap) as c:
        md = c.metadata([t], allow_auto_create=True)
        assert md["topics"][t]["error"] in (0, 5)  # NONE or LEADER_NOT_AVAILABLE while creating
        md = wait_for(lambda: (lambda m: m if m["topics"][t]["error"] == 0 else None)(
            c.metadata([t])), timeout=10, what="auto-created topic")
        assert [p["partition"] for p in md["topics"][t]["partitions"]] == [0]
        assert md["topics"][t]["partitions"][0]["leader"] == 1
        assert md["brokers"] == [(1, "127.0.0.1", shared_broker.port, None)]
        assert md["controller_id"] == 1
        md = c.metadata([n], allow_auto_create=False)
        assert md["topics"][n]["error"] == kr.UNKNOWN_TOPIC_OR_PARTITION
        assert n not in c.metadata(None)["topics"]


@pytest.mark.broker_args("--set", "auto.create.topics.enable=false")
def test_no_auto_create_when_disabled(broker):
    """The producer's delivery fails: librdkafka reports UNKNOWN_TOPIC_OR_PART
    (or its local _UNKNOWN_TOPIC) once the broker keeps saying the topic is unknown."""
    t = unique("noauto")
    p = producer(broker.bootstrap, **{"message.timeout.ms": 5000,
                                      "topic.metadata.propagation.max.ms": 1000})
    d = produce_all(p, t, [{"value": b"nowhere", "partition": 0}], timeout=30)
    assert len(d.errors) == 1 and not d.ok
    assert d.errors[0][0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART,
                                     KafkaError._UNKNOWN_TOPIC), d.errors[0][0]
    md = list_topics(broker.bootstrap)
    assert t not in md.topics
    # explicit creation still works (a fresh producer: the old one cached "unknown")
    assert create_topic(broker.bootstrap, t) is None
    d = produce_all(producer(broker.bootstrap), t, [{"value": b"now", "partition": 0}])
    assert not d.errors and d.ok[0][:2] == (0, 0)


@pytest.mark.broker_args("--set", "num.partitions=4")
def test_auto_create_uses_num_partitions(broker):
    t = unique("auto4")
    with kr.Conn.to(broker.bootstrap) as c:
        c.metadata([t], allow_auto_create=True)
        md = wait_for(lambda: (lambda m: m if m["topics"][t]["error"] == 0 else None)(
            c.metadata([t])), timeout=10, what="auto-created topic")
        assert sorted(p["partition"] for p in md["topics"][t]["partitions"]) == [0, 1, 2, 3]


# ----------------------------------------------------------------- size limits


def test_message_larger_than_default_max_message_bytes(shared_broker):
    b = shared_broker
    t = unique("big")
    # raise the client's own limits so that the broker is the one refusing
    p = producer(b.bootstrap, **{"message.max.bytes": 5_000_000, "batch.size": 5_000_000})
    d = produce_all(p, t, [{"value": b"ok", "partition": 0}])
    assert not d.errors
    d = produce_all(p, t, [{"value": b"x" * 2_000_000, "partition": 0}])
    assert len(d.errors) == 1
    assert d.errors[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE, d.errors[0][0]
    # just under the limit goes through (1048588 minus batch and record overhead)
    d = produce_all(p, t, [{"value": b"y" * 1_000_000, "partition": 0}])
    assert not d.errors, d.errors
    got = consume(b.bootstrap, t, [0])[0]
    assert [len(m["value"]) for m in got] == [2, 1_000_000]


def test_message_larger_than_topic_max_message_bytes(shared_broker):
    b = shared_broker
    t = unique("big-topic")
    assert create_topic(b.bootstrap, t, config={"max.message.bytes": "10000"}) is None
    p = producer(b.bootstrap)
    d = produce_all(p, t, [{"value": b"z" * 50000, "partition": 0}])
    assert len(d.errors) == 1
    assert d.errors[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE, d.errors[0][0]
    d = produce_all(p, t, [{"value": b"z" * 5000, "partition": 0}])
    assert not d.errors and d.ok[0][:2] == (0, 0)


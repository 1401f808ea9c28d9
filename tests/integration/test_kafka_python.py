"""kafka-python (pure-Python client, 2.0.2) against sluiced.

Broker version auto-detection is used everywhere (no api_version given):
kafka-python sends ApiVersions and infers a broker version from the API
ranges it advertises; test_api_version_autodetect records what it finds."""

import time

import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka import codec as kcodec  # noqa: E402
from kafka import errors as kerrors  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from conftest import unique  # noqa: E402
from helpers import list_topics, stored_codecs  # noqa: E402

TIMEOUTS = dict(request_timeout_ms=15000, api_version_auto_timeout_ms=10000,
                reconnect_backoff_max_ms=500)


def kproducer(b, **kw):
    return KafkaProducer(bootstrap_servers=b.bootstrap, max_block_ms=15000, **TIMEOUTS, **kw)


def kconsumer(b, **kw):
    return KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None,
                         enable_auto_commit=False, consumer_timeout_ms=1000,
                         fetch_max_wait_ms=100, **TIMEOUTS, **kw)


def kadmin(b):
    return KafkaAdminClient(bootstrap_servers=b.bootstrap, **TIMEOUTS)


def read_all(b, topic, partitions, count, timeout=30):
    c = kconsumer(b)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = {p: [] for p in partitions}
        n = 0
        deadline = time.monotonic() + timeout
        while n < count:
            assert time.monotonic() < deadline, "got %d of %d records" % (n, count)
            for tp, recs in c.poll(timeout_ms=500).items():
                out[tp.partition].extend(recs)
                n += len(recs)
        return out
    finally:
        c.close()


def test_api_version_autodetect(shared_broker):
    p = kproducer(shared_broker)
    try:
        detected = p.config["api_version"]
        # headers and record batch v2 need 0.11+; the broker serves Produce 3-11 and Fetch 4-17
        assert detected >= (0, 11), detected
    finally:
        p.close(timeout=10)


CODECS = {
    None: lambda: True,
    "gzip": kcodec.has_gzip,
    "snappy": kcodec.has_snappy,
    "lz4": kcodec.has_lz4,
    "zstd": kcodec.has_zstd,
}
MODULE_FOR = {"snappy": "python3-snappy", "lz4": "python3-lz4", "zstd": "python3-zstandard"}


@pytest.mark.parametrize("codec", list(CODECS), ids=lambda c: c or "none")
def test_produce_consume(shared_broker, codec):
    if not CODECS[codec]():
        pytest.skip("kafka-python cannot use %s here: its Python module is not installed "
                    "(Debian package %s)" % (codec, MODULE_FOR.get(codec)))
    b = shared_broker
    t = unique("kp-%s" % codec)
    a = kadmin(b)
    try:
        a.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)], timeout_ms=10000)
    finally:
        a.close()
    p = kproducer(b, acks="all", compression_type=codec, linger_ms=10)
    n = 400
    msgs = [(i % 2, b"k%d" % i, b"kafka-python %d " % i * 5, [("hdr", b"%d" % i)])
            for i in range(n)]
    try:
        futs = [p.send(t, key=k, value=v, partition=part, headers=h) for part, k, v, h in msgs]
        p.flush(timeout=30)
        metas = [f.get(timeout=30) for f in futs]
    finally:
        p.close(timeout=10)
    for part in range(2):
        offs = [m.offset for m, msg in zip(metas, msgs) if msg[0] == part]
        assert offs == list(range(n // 2))
    got = read_all(b, t, [0, 1], n)
    for part in range(2):
        expect = [m for m in msgs if m[0] == part]
        recs = got[part]
        assert [r.offset for r in recs] == list(range(len(expect)))
        assert [(r.key, r.value, list(r.headers)) for r in recs] == \
            [(k, v, h) for _, k, v, h in expect]
        # kafka-python compresses whatever the broker advertises: check it was kept
        assert set(stored_codecs(b.bootstrap, t, part)) == {codec or "none"}


def test_admin_create_delete(shared_broker):
    b = shared_broker
    t = unique("kpa")
    a = kadmin(b)
    try:
        a.create_topics([NewTopic(t, num_partitions=3, replication_factor=1,
                                  topic_configs={"retention.ms": "600000"})], timeout_ms=10000)
        assert sorted(list_topics(b.bootstrap, t).topics[t].partitions) == [0, 1, 2]
        assert t in a.list_topics()
        with pytest.raises(kerrors.TopicAlreadyExistsError):
            a.create_topics([NewTopic(t, 3, 1)], timeout_ms=10000)
        with pytest.raises(kerrors.InvalidReplicationFactorError):
            a.create_topics([NewTopic(unique("kpa-rf"), 1, 3)], timeout_ms=10000)
        with pytest.raises(kerrors.InvalidConfigurationError):
            a.create_topics([NewTopic(unique("kpa-cfg"), 1, 1,
                                      topic_configs={"no.such.config": "x"})], timeout_ms=10000)
        a.delete_topics([t], timeout_ms=10000)
        assert t not in list_topics(b.bootstrap).topics
        assert t not in a.list_topics()
    finally:
        a.close()


def test_seek_to_end_then_new_record(shared_broker):
    b = shared_broker
    t = unique("kpend")
    p = kproducer(b, acks="all")
    try:
        for i in range(5):
            p.send(t, value=b"old%d" % i, partition=0).get(timeout=30)
        c = kconsumer(b)
        try:
            tp = TopicPartition(t, 0)
            c.assign([tp])
            c.seek_to_end(tp)
            assert c.position(tp) == 5
            assert c.end_offsets([tp])[tp] == 5
            assert c.beginning_offsets([tp])[tp] == 0
            p.send(t, value=b"new", partition=0).get(timeout=30)
            deadline = time.monotonic() + 20
            got = []
            while not got:
                assert time.monotonic() < deadline
                for recs in c.poll(timeout_ms=500).values():
                    got.extend(recs)
            assert [(r.offset, r.value) for r in got] == [(5, b"new")]
        finally:
            c.close()
    finally:
        p.close(timeout=10)

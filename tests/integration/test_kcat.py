"""kcat (librdkafka's command-line client) against sluiced."""

import json
import re

import pytest

from conftest import unique
from helpers import create_topic, expected_librdkafka_codecs, kcat, stored_codecs


def produce(b, topic, lines, *extra):
    data = "".join(l + "\n" for l in lines).encode()
    return kcat("-b", b.bootstrap, "-t", topic, "-P", "-p", "0", "-X",
                "broker.address.family=v4", *extra, input=data)


def consume(b, topic, fmt, *extra, partition="0"):
    r = kcat("-b", b.bootstrap, "-t", topic, "-C", "-p", partition, "-o", "beginning", "-e",
             "-q", "-f", fmt, "-X", "broker.address.family=v4", *extra)
    return r.stdout.decode()


def test_metadata_list(shared_broker):
    b = shared_broker
    t1, t3 = unique("kl1"), unique("kl3")
    assert create_topic(b.bootstrap, t1, partitions=1) is None
    assert create_topic(b.bootstrap, t3, partitions=3) is None
    out = kcat("-b", b.bootstrap, "-L", "-m", "10").stdout.decode()
    assert re.search(r"^\s*1 brokers:\s*$", out, re.M), out
    assert re.search(r"^\s*broker 1 at 127\.0\.0\.1:%d\b" % b.port, out, re.M), out
    assert re.search(r'topic "%s" with 1 partitions:' % t1, out), out
    assert re.search(r'topic "%s" with 3 partitions:' % t3, out), out
    for p in range(3):
        assert re.search(r"partition %d, leader 1, replicas: 1, isrs: 1" % p, out), out

    one = kcat("-b", b.bootstrap, "-L", "-t", t3, "-m", "10").stdout.decode()
    assert t3 in one and t1 not in one


def test_metadata_json(shared_broker):
    b = shared_broker
    t = unique("kj")
    assert create_topic(b.bootstrap, t, partitions=2) is None
    md = json.loads(kcat("-b", b.bootstrap, "-L", "-J", "-m", "10").stdout)
    assert md["brokers"] == [{"id": 1, "name": "127.0.0.1:%d" % b.port}]
    assert md["controllerid"] == 1
    topics = {x["topic"]: x for x in md["topics"]}
    assert t in topics
    tm = topics[t]
    assert "error" not in tm, tm
    parts = sorted(tm["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1]
    for p in parts:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}]
        assert p["isrs"] == [{"id": 1}]


def test_keys_and_headers_roundtrip(shared_broker):
    b = shared_broker
    t = unique("kkh")
    lines = ["key%d:value number %d" % (i, i) for i in range(50)]
    produce(b, t, lines, "-K", ":", "-H", "h1=v1", "-H", "trace=abc-123")
    out = consume(b, t, "%k|%h|%s|%o\n")
    expect = "".join("key%d|h1=v1,trace=abc-123|value number %d|%d\n" % (i, i, i)
                     for i in range(50))
    assert out == expect


def test_empty_key_and_no_key(shared_broker):
    b = shared_broker
    t = unique("knk")
    produce(b, t, ["plain-1", "plain-2"])
    r = kcat("-b", b.bootstrap, "-t", t, "-C", "-p", "0", "-o", "beginning", "-e", "-q", "-J",
             "-X", "broker.address.family=v4")
    msgs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [(m["key"], m["payload"], m["offset"]) for m in msgs] == \
        [(None, "plain-1", 0), (None, "plain-2", 1)]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_roundtrip(shared_broker, codec):
    b = shared_broker
    t = unique("kz-" + codec)
    lines = ["k%04d:%s payload %d %s" % (i, codec, i, "abc" * (i % 40)) for i in range(1000)]
    produce(b, t, lines, "-K", ":", "-z", codec, "-X", "linger.ms=50")
    out = consume(b, t, "%k|%s\n")
    assert out == "".join(l.replace(":", "|", 1) + "\n" for l in lines)
    codecs = stored_codecs(b.bootstrap, t)
    assert codecs and set(codecs) <= expected_librdkafka_codecs(codec), \
        "stored batches are %s after producing with %s" % (sorted(set(codecs)), codec)


def test_many_messages_in_order(shared_broker):
    b = shared_broker
    t = unique("kmany")
    n = 10000
    lines = ["message-%05d" % i for i in range(n)]
    produce(b, t, lines)
    out = consume(b, t, "%o %s\n").splitlines()
    assert len(out) == n
    assert out == ["%d message-%05d" % (i, i) for i in range(n)]


def test_consume_from_offset_and_count(shared_broker):
    b = shared_broker
    t = unique("koff")
    produce(b, t, ["m%d" % i for i in range(20)])
    r = kcat("-b", b.bootstrap, "-t", t, "-C", "-p", "0", "-o", "15", "-e", "-q", "-f",
             "%o:%s\n", "-X", "broker.address.family=v4")
    assert r.stdout.decode() == "".join("%d:m%d\n" % (i, i) for i in range(15, 20))
    r = kcat("-b", b.bootstrap, "-t", t, "-C", "-p", "0", "-o", "-3", "-e", "-q", "-f",
             "%s\n", "-X", "broker.address.family=v4")
    assert r.stdout.decode() == "m17\nm18\nm19\n"

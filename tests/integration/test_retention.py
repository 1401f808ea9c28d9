"""The log start offset, retention and DeleteRecords, with real clients.

DeleteRecords (raw client: neither confluent-kafka 1.7 nor kafka-python 2.0
has it) on partitions of both shards moves the low watermark that
confluent-kafka's get_watermark_offsets, ListOffsets earliest, a consumer
reading from the beginning, Fetch and Produce responses all see; fetches
below it are out of range, offsets past the high watermark are refused, and
the start offset survives kill -9 and a clean restart. Retention by size and
by time (records produced with old CreateTime timestamps) deletes whole old
segment files while recent records stay readable; -1 turns each off, and a
topic override beats the broker default.
"""

import os
import re
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition

import kafka_raw as kr
from conftest import _die_with_parent, unique, wait_for
from helpers import consume, consumer, create_topic, produce_all, producer

FAST_CHECKS = ("--set", "log.retention.check.interval.ms=200")


# ----------------------------------------------------------------- helpers


def shard_of(broker, shards, topic, partition):
    """The shard owning a partition, from sluiced --describe-placement."""
    r = subprocess.run([broker.binary, "--describe-placement", "--data-dir", broker.data_dir,
                        "--shards", str(shards)], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    for line in r.stdout.decode().splitlines()[1:]:
        m = re.fullmatch(r"(\S+) (\d+) shard (\d+) leader (\d+)", line)
        if m and m.group(1) == topic and int(m.group(2)) == partition:
            return int(m.group(3))
    raise AssertionError("%s-%d not in --describe-placement" % (topic, partition))


def watermarks(bootstrap, topic, partition):
    """(low, high) as confluent-kafka reads them (ListOffsets earliest/latest)."""
    c = consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10,
                                       cached=False)
    finally:
        c.close()


def data_bytes(path):
    """Bytes of whole batches at the start of a .log file: its size, less
    the zero padding and pre-allocated space an active segment ends in."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        n = int.from_bytes(data[pos + 8:pos + 12], "big", signed=True)
        if n <= 0 or pos + 12 + n > len(data):
            break
        pos += 12 + n
    return pos


def segments(broker, topic, partition):
    """{base offset: bytes of batches} of the partition's segment files."""
    d = os.path.join(broker.data_dir, "%s-%d" % (topic, partition))
    out = {}
    for name in os.listdir(d):
        if re.fullmatch(r"\d{20}\.log", name):
            try:
                out[int(name[:20])] = data_bytes(os.path.join(d, name))
            except FileNotFoundError:
                pass  # retention deleted it since the listing
    return out


def produce_in_batches(bootstrap, topic, values, per_batch, partition=0, timestamp=None):
    """Produce values to one partition, flushing every per_batch messages so
    that batches stay small (a segment rolls only between batches).
    Returns the delivered offsets in order."""
    p = producer(bootstrap, linger_ms=0)
    offsets = []
    for i in range(0, len(values), per_batch):
        msgs = [dict(value=v, partition=partition) for v in values[i:i + per_batch]]
        if timestamp is not None:
            for m in msgs:
                m["timestamp"] = timestamp
        d = produce_all(p, topic, msgs)
        assert not d.errors, d.errors
        offsets += sorted(o for _, o, _, _ in d.ok)
    return offsets


def read_from_beginning(bootstrap, topic, partition=0):
    """[(offset, value, timestamp)] a consumer starting at the beginning gets."""
    got = consume(bootstrap, topic, partitions=(partition,))[partition]
    return [(m["offset"], m["value"], m["timestamp"][1]) for m in got]


# ----------------------------------------------------------------- DeleteRecords


@pytest.mark.timeout_s(180)
def test_delete_records_on_both_shards(make_broker):
    """One DeleteRecords over partitions of both shards (and an unknown
    topic), answered in request order; every way a client reads the low
    watermark sees the new one; fetching below it is out of range; offsets
    past the high watermark or below -1 are refused; it survives kill -9 and
    a clean restart."""
    b = make_broker("--shards", "2")
    t = unique("dr")
    assert create_topic(b.bootstrap, t, partitions=2) is None
    assert {shard_of(b, 2, t, 0), shard_of(b, 2, t, 1)} == {0, 1}
    p = producer(b.bootstrap)
    d = produce_all(p, t, [dict(value=b"v%d-%d" % (part, i), partition=part)
                           for part in (0, 1) for i in range(10)])
    assert len(d.ok) == 20 and not d.errors

    with kr.Conn.to(b.bootstrap) as c:
        resp = c.delete_records_multi([(t, [(0, 4), (1, -1), (9, 0)]),
                                       ("no-such-topic-" + t, [(0, 0)])], version=1)
        assert resp == [(t, [(0, 4, kr.NONE), (1, 10, kr.NONE),
                             (9, -1, kr.UNKNOWN_TOPIC_OR_PARTITION)]),
                        ("no-such-topic-" + t, [(0, -1, kr.UNKNOWN_TOPIC_OR_PARTITION)])]
        # not auto-created by DeleteRecords
        assert "no-such-topic-" + t not in c.metadata()["topics"]

    assert watermarks(b.bootstrap, t, 0) == (4, 10)
    assert watermarks(b.bootstrap, t, 1) == (10, 10)
    got = read_from_beginning(b.bootstrap, t, 0)
    assert [(o, v) for o, v, _ in got] == [(i, b"v0-%d" % i) for i in range(4, 10)]
    assert read_from_beginning(b.bootstrap, t, 1) == []

    with kr.Conn.to(b.bootstrap) as c:
        assert c.list_offset(t, 0, -2) == (kr.NONE, -1, 4)
        assert c.list_offset(t, 1, -2) == (kr.NONE, -1, 10)
        # below the start: out of range; at it: served, with the start offset
        assert c.fetch(t, 0, 3)[0] == kr.OFFSET_OUT_OF_RANGE
        assert c.fetch(t, 1, 9)[0] == kr.OFFSET_OUT_OF_RANGE
        f = c.fetch_v11(t, 0, 4)["topics"][0][1][0]
        assert f["error"] == kr.NONE and f["log_start"] == 4 and f["hw"] == 10
        offsets = [r[0] for bt in kr.parse_record_batches(f["records"]) for r in bt["records"]]
        assert offsets[-1] == 9 and 4 in offsets
        # Produce answers carry it too
        pr = c.produce_v9_full(t, 0, kr.record_batch([(None, b"v0-10")]))
        assert pr["error"] == kr.NONE and pr["base_offset"] == 10
        assert pr["log_start_offset"] == 4
        # past the high watermark (11) or below -1: refused, nothing moves
        assert c.delete_records(t, 0, 12) == (kr.OFFSET_OUT_OF_RANGE, -1)
        assert c.delete_records(t, 0, -2) == (kr.OFFSET_OUT_OF_RANGE, -1)
        # v2 (flexible); backwards is a no-op answering the current start
        assert c.delete_records(t, 0, 5, version=2) == (kr.NONE, 5)
        assert c.delete_records(t, 0, 2, version=0) == (kr.NONE, 5)
        assert c.list_offset(t, 0, -2) == (kr.NONE, -1, 5)
    assert "DeleteRecords %s-0: log start offset 0 -> 4" % t in b.log()

    b.kill()
    b.start()
    assert watermarks(b.bootstrap, t, 0) == (5, 11)
    assert watermarks(b.bootstrap, t, 1) == (10, 10)
    with kr.Conn.to(b.bootstrap) as c:
        assert c.fetch(t, 0, 4)[0] == kr.OFFSET_OUT_OF_RANGE
        assert c.delete_records(t, 0, 7, version=2) == (kr.NONE, 7)
    b.restart()
    assert watermarks(b.bootstrap, t, 0) == (7, 11)
    got = read_from_beginning(b.bootstrap, t, 0)
    assert [(o, v) for o, v, _ in got] == [(i, b"v0-%d" % i) for i in range(7, 11)]


def test_delete_records_removes_whole_segments(make_broker):
    """Segments wholly below the new start offset are deleted at once (the
    owner runs its retention pass at the end of the turn, whatever
    log.retention.check.interval.ms says); the one holding it stays."""
    b = make_broker("--shards", "1")
    t = unique("drs")
    assert create_topic(b.bootstrap, t, config={"segment.bytes": "1024"}) is None
    values = [b"%03d" % i + b"x" * 150 for i in range(40)]
    offsets = produce_in_batches(b.bootstrap, t, values, per_batch=2)
    assert offsets == list(range(40))
    before = segments(b, t, 0)
    assert len(before) >= 8, before
    cut = 25
    holding = max(base for base in before if base <= cut)
    with kr.Conn.to(b.bootstrap) as c:
        assert c.delete_records(t, 0, cut) == (kr.NONE, cut)
    wait_for(lambda: min(segments(b, t, 0)) == holding, timeout=10,
             what="segments below %d deleted" % holding)
    assert set(segments(b, t, 0)) == {base for base in before if base >= holding}
    assert watermarks(b.bootstrap, t, 0) == (cut, 40)
    assert "deleted segment 0 " in b.log() and "log start offset" in b.log()
    got = read_from_beginning(b.bootstrap, t)
    assert [(o, v) for o, v, _ in got] == [(i, values[i]) for i in range(cut, 40)]


def test_delete_records_unsupported_version_closes(broker):
    with kr.Conn.to(broker.bootstrap) as c:
        c.send_request(kr.DELETE_RECORDS, 3, b"\x00" * 16)
        assert c.is_closed_by_peer(), "DeleteRecords v3 must close the connection"
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.api_versions(3)[1][kr.DELETE_RECORDS] == (0, 2)


# ----------------------------------------------------------------- retention


@pytest.mark.broker_args(*FAST_CHECKS)
def test_retention_bytes_deletes_old_segments(broker):
    """retention.bytes with small segments: the oldest segment files go while
    the log would still hold retention.bytes without them; the low watermark
    follows; the recent records stay readable."""
    t = unique("rb")
    retention = 8192
    assert create_topic(broker.bootstrap, t, config={
        "segment.bytes": "2048", "retention.bytes": str(retention)}) is None
    values = [b"%04d" % i + b"r" * 100 for i in range(200)]
    offsets = produce_in_batches(broker.bootstrap, t, values, per_batch=4)
    assert offsets == list(range(200))

    def settled():
        segs = segments(broker, t, 0)
        total = sum(segs.values())
        return total - segs[min(segs)] < retention and segs

    segs = wait_for(settled, timeout=15, what="retention.bytes to trim the log")
    assert sum(segs.values()) >= retention  # it keeps at least retention.bytes
    low, high = watermarks(broker.bootstrap, t, 0)
    assert low == min(segs) > 0 and high == 200
    got = read_from_beginning(broker.bootstrap, t)
    assert [(o, v) for o, v, _ in got] == [(i, values[i]) for i in range(low, 200)]
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.fetch(t, 0, low - 1)[0] == kr.OFFSET_OUT_OF_RANGE
        assert c.list_offset(t, 0, -2) == (kr.NONE, -1, low)
    assert re.search(r"retention: %s-0: deleted segment 0 .*: retention\.bytes" % t, broker.log())


@pytest.mark.broker_args(*FAST_CHECKS)
def test_retention_ms_deletes_old_timestamps(broker):
    """Records produced with CreateTime timestamps two hours old fill the
    first segments; with retention.ms of ten minutes every sealed segment
    holding only them is deleted, and the recent records stay."""
    t = unique("rm")
    assert create_topic(broker.bootstrap, t, config={
        "segment.bytes": "1024", "retention.ms": "600000"}) is None
    old_ts = int(time.time() * 1000) - 2 * 3600 * 1000
    old = [b"old%02d" % i + b"o" * 100 for i in range(30)]
    new = [b"new%02d" % i + b"n" * 100 for i in range(30)]
    assert produce_in_batches(broker.bootstrap, t, old, 3, timestamp=old_ts) == list(range(30))
    assert produce_in_batches(broker.bootstrap, t, new, 3) == list(range(30, 60))

    def trimmed():
        bases = sorted(segments(broker, t, 0))
        # the first segment left may hold old and new records; none after it is old
        return bases[0] > 0 and (len(bases) == 1 or bases[1] > 30) and bases

    bases = wait_for(trimmed, timeout=15, what="retention.ms to delete the old segments")
    low = bases[0]
    assert low <= 30
    assert watermarks(broker.bootstrap, t, 0) == (low, 60)
    got = read_from_beginning(broker.bootstrap, t)
    assert [o for o, _, _ in got] == list(range(low, 60))
    assert all(v == new[o - 30] and ts > old_ts + 3600 * 1000 for o, v, ts in got if o >= 30)
    assert all(ts == old_ts for o, _, ts in got if o < 30)
    assert re.search(r"retention: %s-0: deleted segment 0 .*: retention\.ms" % t, broker.log())


@pytest.mark.broker_args("--shards", "1", *FAST_CHECKS, "--set", "log.retention.ms=1000")
def test_retention_off_and_broker_default(broker):
    """The broker default log.retention.ms (1 s here) trims a topic without
    overrides; a topic with retention.ms=-1 and retention.bytes=-1 keeps
    every segment and record, old timestamps and all."""
    kept, trimmed = unique("keep"), unique("dflt")
    assert create_topic(broker.bootstrap, kept, config={
        "segment.bytes": "1024", "retention.ms": "-1", "retention.bytes": "-1"}) is None
    assert create_topic(broker.bootstrap, trimmed, config={"segment.bytes": "1024"}) is None
    old_ts = int(time.time() * 1000) - 24 * 3600 * 1000
    values = [b"%02d" % i + b"k" * 100 for i in range(30)]
    for t in (kept, trimmed):
        assert produce_in_batches(broker.bootstrap, t, values, 3, timestamp=old_ts) == \
            list(range(30))
    kept_segs = segments(broker, kept, 0)
    assert len(kept_segs) >= 4
    wait_for(lambda: len(segments(broker, trimmed, 0)) == 1, timeout=15,
             what="the broker default to trim %s" % trimmed)
    assert watermarks(broker.bootstrap, trimmed, 0)[0] == min(segments(broker, trimmed, 0)) > 0
    # the same shard ran several more passes over the kept topic meanwhile
    time.sleep(1.0)
    assert segments(broker, kept, 0) == kept_segs
    assert watermarks(broker.bootstrap, kept, 0) == (0, 30)
    got = read_from_beginning(broker.bootstrap, kept)
    assert [(o, v, ts) for o, v, ts in got] == [(i, values[i], old_ts) for i in range(30)]
    assert "retention: %s-" % kept not in broker.log()

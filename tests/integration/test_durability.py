"""Durability: idempotent producer state across restarts, torn segment tails,
acknowledged records and topic metadata across kill -9, Kafka's on-disk
formats, flush modes. kill -9 under load is test_crash.py's."""

import glob
import os
import struct

import pytest

import kafka_raw as kr
from conftest import unique
from helpers import consume, create_topic, produce_all, producer


# ----------------------------------------------------------------- producer state


def idem_batch(pid, epoch, seq, tag, n=3):
    return kr.record_batch([(b"k%d" % i, b"%s-%d" % (tag, i)) for i in range(n)],
                           producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                           base_timestamp=1_650_000_000_000)


def test_idempotent_duplicate_and_gap(broker):
    t = unique("idem-raw")
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.create_topic(t)[0] == 0
        err, pid, epoch = c.init_producer_id()
        assert err == 0 and pid >= 0 and epoch >= 0
        first = idem_batch(pid, epoch, 0, b"a")
        assert c.produce_v3(t, 0, first) == (0, 0)
        # the identical batch again: answered with the original offset, not appended
        assert c.produce_v3(t, 0, first) == (0, 0)
        assert c.fetch_all(t, 0)[0] == 3
        # a gap in the sequence
        err, _ = c.produce_v3(t, 0, idem_batch(pid, epoch, 5, b"gap"))
        assert err == kr.OUT_OF_ORDER_SEQUENCE_NUMBER
        # the next sequence is accepted
        assert c.produce_v3(t, 0, idem_batch(pid, epoch, 3, b"b")) == (0, 3)
        hw, recs = c.fetch_all(t, 0)
        assert hw == 6
        assert [r[3] for r in recs] == [b"a-0", b"a-1", b"a-2", b"b-0", b"b-1", b"b-2"]
        # a second InitProducerId gives another producer id
        err, pid2, _ = c.init_producer_id()
        assert err == 0 and pid2 != pid


@pytest.mark.parametrize("how", ["clean", "kill9"])
def test_idempotent_state_survives_restart(broker, how):
    t = unique("idem-restart")
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.create_topic(t)[0] == 0
        err, pid, epoch = c.init_producer_id()
        assert err == 0
        # something from another producer first, so that offsets are not trivially 0
        assert c.produce_v3(t, 0, kr.record_batch([(None, b"other")])) == (0, 0)
        first = idem_batch(pid, epoch, 0, b"a")
        assert c.produce_v3(t, 0, first) == (0, 1)
    if how == "clean":
        broker.restart()
    else:
        broker.kill()
        broker.start()
    with kr.Conn.to(broker.bootstrap) as c:
        # the identical batch: same base offset, nothing new
        assert c.produce_v3(t, 0, first) == (0, 1)
        hw, recs = c.fetch_all(t, 0)
        assert hw == 4 and [r[3] for r in recs] == [b"other", b"a-0", b"a-1", b"a-2"]
        err, _ = c.produce_v3(t, 0, idem_batch(pid, epoch, 5, b"gap"))
        assert err == kr.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert c.produce_v3(t, 0, idem_batch(pid, epoch, 3, b"b")) == (0, 4)
        # producer ids are not reused after a restart
        err, pid2, _ = c.init_producer_id()
        assert err == 0 and pid2 != pid
    broker.restart()
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.produce_v3(t, 0, idem_batch(pid, epoch, 3, b"b")) == (0, 4)
        assert c.fetch_all(t, 0)[0] == 7


# ----------------------------------------------------------------- torn tail


def active_log(data_dir, topic, partition=0):
    logs = sorted(glob.glob(os.path.join(data_dir, "%s-%d" % (topic, partition), "*.log")))
    assert logs, "no segment files for %s-%d in %s: %s" % (
        topic, partition, data_dir, os.listdir(data_dir))
    return logs[-1]


def garbage(kind):
    if kind == "random":
        return bytes((i * 131 + 7) % 256 for i in range(1000))
    if kind == "zeros":
        return b"\x00" * 4096
    if kind == "partial-batch":
        full = kr.record_batch([(None, b"never acknowledged" * 20)], base_offset=100)
        return full[: len(full) // 2]
    if kind == "bad-crc-batch":
        return kr.record_batch([(None, b"never acknowledged")], base_offset=100,
                               corrupt_crc=True)
    if kind == "huge-length":
        return kr.i64(100) + kr.i32(0x7FFFFFF0) + b"\x00" * 40
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["random", "zeros", "partial-batch", "bad-crc-batch",
                                  "huge-length"])
def test_torn_tail_is_truncated_on_restart(broker, kind):
    t = unique("torn")
    n = 100
    p = producer(broker.bootstrap, acks="all")
    d = produce_all(p, t, [{"partition": 0, "value": b"rec-%03d" % i, "key": b"%d" % i}
                           for i in range(n)])
    assert not d.errors and sorted(o for _, o, _, _ in d.ok) == list(range(n))
    del p
    broker.kill()
    log = active_log(broker.data_dir, t)
    with open(log, "ab") as f:
        f.write(garbage(kind))
    broker.start()

    with kr.Conn.to(broker.bootstrap) as c:
        hw, recs = c.fetch_all(t, 0)
        assert hw == n, "high watermark %d after restart, expected %d" % (hw, n)
        assert [(r[0], r[3]) for r in recs] == [(i, b"rec-%03d" % i) for i in range(n)]
        assert c.list_offset(t, 0, -1)[2] == n
        # new produces continue right after the last good record
        assert c.produce_v3(t, 0, kr.record_batch([(None, b"after-restart")])) == (0, n)
        hw, recs = c.fetch_all(t, 0)
        assert hw == n + 1 and recs[-1][3] == b"after-restart"
    got = consume(broker.bootstrap, t, [0], count=n + 1)[0]
    assert [m["value"] for m in got] == [b"rec-%03d" % i for i in range(n)] + [b"after-restart"]
    # and it stays that way across a clean restart
    broker.restart()
    with kr.Conn.to(broker.bootstrap) as c:
        hw, recs = c.fetch_all(t, 0)
        assert hw == n + 1 and recs[-1][3] == b"after-restart"
    # a cleanly closed segment ends at its last batch: no garbage, no
    # padding or pre-allocated space left after it
    with open(active_log(broker.data_dir, t), "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        pos += 12 + struct.unpack(">i", data[pos + 8:pos + 12])[0]
    assert pos == len(data) and len(data) > 0


def test_acknowledged_records_survive_kill9(broker):
    """Simple version: acks=all records from several partitions after SIGKILL."""
    t = unique("k9")
    assert create_topic(broker.bootstrap, t, partitions=3) is None
    p = producer(broker.bootstrap, acks="all")
    d = produce_all(p, t, [{"partition": i % 3, "value": b"s%d" % i} for i in range(600)])
    assert not d.errors
    broker.kill()
    broker.start()
    got = consume(broker.bootstrap, t, [0, 1, 2], count=600)
    for part in range(3):
        assert [m["value"] for m in got[part]] == [b"s%d" % i for i in range(part, 600, 3)]


# ----------------------------------------------------------------- metadata


@pytest.mark.parametrize("how", ["clean", "kill9"])
def test_topics_and_configs_survive_restart(broker, how):
    """Created, deleted and re-created topics, their partition counts and
    configs, as they were before the restart."""
    keep = [unique("meta-keep") for _ in range(20)]
    gone, again = unique("meta-gone"), unique("meta-again")
    with kr.Conn.to(broker.bootstrap) as c:
        for i, t in enumerate(keep):
            assert c.create_topic(t, 1 + i % 4)[0] == 0
        assert c.create_topic(gone)[0] == 0
        assert c.create_topic(again, 1)[0] == 0
        assert c.produce_v3(again, 0, kr.record_batch([(None, b"old")])) == (0, 0)
        assert c.delete_topic(gone) == 0
        assert c.delete_topic(again) == 0
        assert c.create_topic(again, 3, configs={"max.message.bytes": "1000"})[0] == 0
        assert c.produce_v3(again, 2, kr.record_batch([(None, b"new")])) == (0, 0)
        ids = {t: m["topic_id"] for t, m in c.metadata_v12(None)["topics"].items()}
    if how == "clean":
        broker.restart()
    else:
        broker.kill()
        broker.start()
    with kr.Conn.to(broker.bootstrap) as c:
        md = c.metadata_v12(None)["topics"]
        for i, t in enumerate(keep):
            assert t in md and len(md[t]["partitions"]) == 1 + i % 4
            assert md[t]["topic_id"] == ids[t]
        assert gone not in md
        assert len(md[again]["partitions"]) == 3 and md[again]["topic_id"] == ids[again]
        assert c.fetch_all(again, 0)[0] == 0  # the old topic's record is not back
        hw, recs = c.fetch_all(again, 2)
        assert hw == 1 and recs[0][3] == b"new"
        # the topic config is still in force
        err, _ = c.produce_v3(again, 0, kr.record_batch([(None, b"x" * 2000)]))
        assert err == kr.MESSAGE_TOO_LARGE
        # and new topics still get fresh ids
        t = unique("meta-after")
        assert c.create_topic(t)[0] == 0
        assert c.metadata_v12([t])["topics"][t]["topic_id"] not in ids.values()


# ----------------------------------------------------------------- on-disk format


@pytest.mark.broker_args("--set", "log.index.interval.bytes=4096")
def test_segment_files_are_kafka_format(broker):
    """After a clean stop the partition directory holds Kafka's formats: the
    .log is a sequence of v2 batches with absolute offsets, the .index maps
    (offset - base) -> byte position of a batch holding that offset, 8 bytes per
    entry, and the .timeindex (timestamp, offset - base), 12 bytes per entry."""
    import struct
    t = unique("fmt")
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.create_topic(t)[0] == 0
        for i in range(100):
            assert c.produce_v3(t, 0, kr.record_batch(
                [(b"k%d" % i, b"x" * 1000), (None, b"y%d" % i)],
                base_timestamp=1_600_000_000_000 + i)) == (0, 2 * i)
    broker.stop()
    d = os.path.join(broker.data_dir, "%s-0" % t)
    base = "00000000000000000000"
    with open(os.path.join(d, base + ".log"), "rb") as f:
        log = f.read()
    batches = kr.parse_record_batches(log)  # checks every CRC
    assert sum(len(b["records"]) for b in batches) == 200
    recs = [r for b in batches for r in b["records"]]
    assert [r[0] for r in recs] == list(range(200))
    assert [r[3] for r in recs[1::2]] == [b"y%d" % i for i in range(100)]
    # byte position of each batch
    pos, starts = 0, {}
    for b in batches:
        starts[pos] = b
        pos += 12 + struct.unpack(">i", log[pos + 8:pos + 12])[0]
    assert pos == len(log), "trailing bytes after the last batch"

    with open(os.path.join(d, base + ".index"), "rb") as f:
        ix = f.read()
    assert len(ix) % 8 == 0
    entries = [struct.unpack(">ii", ix[i:i + 8]) for i in range(0, len(ix), 8)]
    assert entries, "empty offset index after 100 kB with log.index.interval.bytes=4096"
    assert len(entries) >= 10
    for (r1, p1), (r2, p2) in zip(entries, entries[1:]):
        assert r2 > r1 and p2 > p1, "index not increasing: %s" % entries[:20]
    for rel, p in entries:
        assert p in starts, "index entry (%d, %d) does not point at a batch" % (rel, p)
        b = starts[p]
        assert b["base_offset"] <= rel <= b["base_offset"] + b["last_offset_delta"]

    with open(os.path.join(d, base + ".timeindex"), "rb") as f:
        ti = f.read()
    assert len(ti) % 12 == 0
    tentries = [struct.unpack(">qi", ti[i:i + 12]) for i in range(0, len(ti), 12)]
    assert tentries
    for (t1, o1), (t2, o2) in zip(tentries, tentries[1:]):
        assert t2 >= t1 and o2 >= o1
    by_offset = {r[0]: b for b in batches for r in b["records"]}
    for ts, rel in tentries:
        assert by_offset[rel]["max_timestamp"] == ts, (ts, rel)
    broker.start()


@pytest.mark.parametrize("mode", [["--set", "flush=none"],
                                  ["--set", "flush=interval", "--set", "log.flush.interval.ms=50"]],
                         ids=["none", "interval"])
def test_other_flush_modes_work(make_broker, mode):
    b = make_broker(*mode)
    t = unique("flush")
    p = producer(b.bootstrap, acks="all")
    d = produce_all(p, t, [{"partition": 0, "value": b"f%d" % i} for i in range(300)])
    assert not d.errors and len(d.ok) == 300
    b.restart()
    got = consume(b.bootstrap, t, [0], count=300)[0]
    assert [m["value"] for m in got] == [b"f%d" % i for i in range(300)]

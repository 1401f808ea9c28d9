"""Sealed segments' indexes are read from their files (mapped), not kept
in the broker's memory: the SIGUSR1 counters index_mem_bytes and
index_mapped_bytes match the active and the sealed segments' index files
on disk, while running and after a restart, and consumers and
timestamp lookups still find every record through those indexes."""

import glob
import os
import time

import kafka_raw as kr
from conftest import unique
from helpers import broker_stats, consume, create_topic, produce_all, producer

PARTS = 2
RECORDS = 3000
# Recent timestamps: old ones would be deleted by retention.ms at restart.
T0 = int(time.time() * 1000) - 3600 * 1000


def _index_file_bytes(data_dir, topic):
    """(active, sealed): bytes of the .index and .timeindex files of each
    partition's newest segment, and of all the others."""
    active = sealed = 0
    for p in range(PARTS):
        d = os.path.join(data_dir, "%s-%d" % (topic, p))
        bases = sorted(os.path.basename(f)[:-4] for f in glob.glob(os.path.join(d, "*.log")))
        for i, base in enumerate(bases):
            size = sum(os.path.getsize(os.path.join(d, base + ext))
                       for ext in (".index", ".timeindex"))
            if i == len(bases) - 1:
                active += size
            else:
                sealed += size
    return active, sealed


def _expect_mapped(broker, topic):
    stats = broker_stats(broker)
    active, sealed = _index_file_bytes(broker.data_dir, topic)
    assert sealed > 0
    assert stats["index_mapped_bytes"] == sealed
    assert stats["index_mem_bytes"] == active


def _expect_reads(broker, topic, msgs):
    got = consume(broker.bootstrap, topic, list(range(PARTS)))
    for p in range(PARTS):
        want = [m for m in msgs if m["partition"] == p]
        assert [m["value"] for m in got[p]] == [m["value"] for m in want]
        assert [m["offset"] for m in got[p]] == list(range(len(want)))
    # Timestamp lookups go through every segment's time index, then its
    # offset index; record i of a partition has timestamp T0 + 10 i.
    with kr.Conn.to(broker.bootstrap) as c:
        for p in range(PARTS):
            n = len([m for m in msgs if m["partition"] == p])
            for i in (0, 1, n // 3, n // 2, n - 1):
                err, ts, off = c.list_offset(topic, p, T0 + 10 * i - 5)
                assert (err, ts, off) == (0, T0 + 10 * i, i)


def test_sealed_indexes_mapped_across_restart(make_broker):
    broker = make_broker()
    t = unique("idxmem")
    # 16 KiB segments and an index entry for every batch: many sealed
    # segments with dense indexes.
    assert create_topic(broker.bootstrap, t, partitions=PARTS,
                        config={"segment.bytes": "16384", "index.interval.bytes": "0"}) is None
    msgs, counts = [], [0] * PARTS
    for i in range(RECORDS):
        p = i % PARTS
        msgs.append({"partition": p, "value": b"v-%05d-" % i + b"x" * 200,
                     "timestamp": T0 + 10 * counts[p]})
        counts[p] += 1
    # A batch per record: ~80 batches per segment, an entry each.
    p = producer(broker.bootstrap, acks="all", **{"linger.ms": 0, "batch.num.messages": 1})
    d = produce_all(p, t, msgs)
    assert not d.errors and len(d.ok) == RECORDS
    segs = len(glob.glob(os.path.join(broker.data_dir, "%s-*" % t, "*.log")))
    assert segs > 20 * PARTS
    _expect_mapped(broker, t)
    _expect_reads(broker, t, msgs)

    broker.restart()
    _expect_mapped(broker, t)
    _expect_reads(broker, t, msgs)

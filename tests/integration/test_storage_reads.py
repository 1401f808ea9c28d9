"""The read path: the tail cache serves consumers at the end of the log
from memory (O_DIRECT writes leave nothing in the page cache), and data
that is only on the disk is read through io_uring without blocking the
shard, for partitions of this shard and of the other one alike."""

import os

import pytest

import kafka_raw as kr
from conftest import unique
from helpers import broker_stats, consume, create_topic, produce_all, producer


def _produce(bootstrap, topic, parts, n):
    msgs = [{"partition": i % parts, "key": b"k%d" % i, "value": b"v-%05d-" % i + b"x" * 300}
            for i in range(n)]
    d = produce_all(producer(bootstrap, acks="all", **{"linger.ms": 5}), topic, msgs)
    assert not d.errors and len(d.ok) == n
    return msgs


def _check(bootstrap, topic, parts, msgs):
    got = consume(bootstrap, topic, list(range(parts)))
    for p in range(parts):
        want = [m["value"] for m in msgs if m["partition"] == p]
        assert [m["value"] for m in got[p]] == want, "partition %d" % p
        assert [m["offset"] for m in got[p]] == list(range(len(want)))


@pytest.mark.parametrize("concurrency", [1, 32])
def test_cold_reads_go_through_io_uring(make_broker, concurrency):
    """No tail cache: every first read of the data is a disk read, done
    asynchronously (one at a time per shard, the others queued, or many),
    and consumers get every record in order, on both shards, with small
    and large fetches."""
    broker = make_broker("--set", "log.tail.cache.bytes=0",
                         "--set", "log.read.concurrency.max=%d" % concurrency)
    t = unique("cold")
    create_topic(broker.bootstrap, t, partitions=4)
    msgs = _produce(broker.bootstrap, t, 4, 4000)
    before = broker_stats(broker)
    _check(broker.bootstrap, t, 4, msgs)
    after = broker_stats(broker)
    assert after["fetch_cold"] > before["fetch_cold"], "no fetch went to the disk"
    assert after["tail_cache_bytes"] == 0
    # small max bytes: windows that cut batches, KIP-74 first batches
    with kr.Conn.to(broker.bootstrap) as c:
        for p in range(4):
            off, seen = 0, []
            while True:
                err, hw, data = c.fetch(t, p, off, max_bytes=700, partition_max_bytes=700)
                assert err == 0
                recs = [r for b in kr.parse_record_batches(data) for r in b["records"]]
                recs = [r for r in recs if r[0] >= off]
                if off >= hw:
                    break
                assert recs, "no progress at offset %d (hw %d)" % (off, hw)
                seen += [r[3] for r in recs]
                off = recs[-1][0] + 1
            assert seen == [m["value"] for m in msgs if m["partition"] == p]


def test_tail_consumers_read_from_the_cache(broker):
    """With the tail cache (the default), data just written is read from
    memory: no fetch goes to the disk."""
    t = unique("tail")
    create_topic(broker.bootstrap, t, partitions=4)
    msgs = _produce(broker.bootstrap, t, 4, 2000)
    before = broker_stats(broker)
    _check(broker.bootstrap, t, 4, msgs)
    after = broker_stats(broker)
    assert after["tail_cache_bytes"] > 0
    assert after["fetch_cold"] == before["fetch_cold"]
    # and after a restart (cache empty) with the files out of the page
    # cache (recovery read some of them), the same records come from the
    # disk
    broker.restart()
    for p in range(4):
        d = os.path.join(broker.data_dir, "%s-%d" % (t, p))
        for name in os.listdir(d):
            fd = os.open(os.path.join(d, name), os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
    _check(broker.bootstrap, t, 4, msgs)
    assert broker_stats(broker)["fetch_cold"] > 0

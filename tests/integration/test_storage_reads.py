"""The read path: the tail cache serves consumers at the end of the log
from memory (O_DIRECT writes leave nothing in the page cache), and data
that is only on the disk is read through io_uring without blocking the
shard, for partitions of this shard and of the other one alike."""

import os
import socket
import threading
import time

import pytest

import kafka_raw as kr
from conftest import unique, wait_for
from helpers import (Delivery, broker_stats, consume, create_topic, flush, kcat, produce_all,
                     producer)


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


# ---- read windows: cold reads land in registered memory and are sent from it

MiB = 1024 * 1024


def _drop_page_cache(broker, topic, parts):
    """Out of the page cache: the next read of these files goes to the disk."""
    for p in range(parts):
        d = os.path.join(broker.data_dir, "%s-%d" % (topic, p))
        for name in os.listdir(d):
            if name.endswith(".log"):
                fd = os.open(os.path.join(d, name), os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd)


def _values(tag, n, size=700):
    """Distinct printable values (kcat prints them as they are)."""
    return [(b"%s-%06d-" % (tag, i)) + os.urandom(size // 2).hex().encode() for i in range(n)]


def _small_batches(bootstrap):
    """A producer whose batches are small, so that a fetch of old data
    takes several of them and a catch-up many disk reads."""
    return producer(bootstrap, acks="all", **{"batch.size": 16384})


def _expected(delivery, parts):
    """{partition: [values in offset order]} from delivery reports, checking
    the offsets are 0..n-1 with no hole."""
    out = {p: [] for p in range(parts)}
    for p, off, _, value in sorted(delivery, key=lambda d: (d[0], d[1])):
        assert off == len(out[p])
        out[p].append(value)
    return out


def _kcat_values(bootstrap, topic, partition):
    r = kcat("-C", "-b", bootstrap, "-t", topic, "-p", str(partition), "-o", "beginning",
             "-e", "-q", "-f", "%o %s\n", "-X", "broker.address.family=v4", timeout=120)
    out = []
    for line in r.stdout.splitlines():
        off, value = line.split(b" ", 1)
        assert int(off) == len(out), "kcat: offset %s after %d records" % (off, len(out))
        out.append(value)
    return out


@pytest.mark.timeout_s(240)
def test_cold_catch_up_beside_a_producer_reads_into_fixed_windows(make_broker):
    """A consumer catching up over data that is neither in the tail cache
    nor in the page cache, while a producer keeps appending to the same
    partitions, gets every record byte for byte and in order (confluent-kafka,
    then kcat over the same data dropped from the page cache again); the
    disk reads are READ_FIXED into registered read windows, none plain."""
    broker = make_broker("--set", "log.tail.cache.bytes=%d" % (512 * 1024),
                         "--set", "log.segment.bytes=%d" % (4 * MiB))
    t = unique("catchup")
    parts = 4
    create_topic(broker.bootstrap, t, partitions=parts)
    old = _values(b"old", 8000)
    d = produce_all(_small_batches(broker.bootstrap), t,
                    [{"partition": i % parts, "value": v} for i, v in enumerate(old)])
    assert not d.errors
    _drop_page_cache(broker, t, parts)
    before = broker_stats(broker)

    live = Delivery()
    stop = threading.Event()

    def produce_more():
        p = _small_batches(broker.bootstrap)
        i = 0
        for v in _values(b"new", 100000, size=300):
            if stop.is_set():
                break
            while True:
                try:
                    p.produce(t, value=v, partition=i % parts, on_delivery=live)
                    break
                except BufferError:
                    p.poll(0.05)
            p.poll(0)
            i += 1
            if i % 50 == 0:
                time.sleep(0.01)
        flush(p)

    th = threading.Thread(target=produce_more)
    th.start()
    try:
        # the old records, while the producer runs
        got = consume(broker.bootstrap, t, list(range(parts)), count=len(old), timeout=120)
    finally:
        stop.set()
        th.join()
    assert not live.errors
    assert len(live.ok) > 0, "the producer produced nothing meanwhile"
    want = _expected(d.ok + live.ok, parts)
    for p in range(parts):
        n = len(got[p])
        assert [m["value"] for m in got[p]] == want[p][:n], "partition %d" % p
        assert [m["offset"] for m in got[p]] == list(range(n))
    # every record, old and new, with confluent-kafka then kcat
    got = consume(broker.bootstrap, t, list(range(parts)), timeout=120)
    for p in range(parts):
        assert [m["value"] for m in got[p]] == want[p], "partition %d" % p
    _drop_page_cache(broker, t, parts)
    for p in range(parts):
        assert _kcat_values(broker.bootstrap, t, p) == want[p], "kcat, partition %d" % p
    after = broker_stats(broker)
    assert after["fetch_cold"] > before["fetch_cold"], "no read went to the disk"
    assert after["cold_fixed_reads"] >= after["fetch_cold"] - before["fetch_cold"]
    assert after["cold_plain_reads"] == before["cold_plain_reads"], \
        "a cold read did not land in a registered window"
    assert after["read_pool_free"] == before["read_pool_free"], "a read window was not given back"


@pytest.mark.timeout_s(240)
def test_a_read_pool_smaller_than_the_demand_serves_everything(make_broker):
    """One read window per shard and six consumers reading cold data at
    once (each its own topic, so nobody warms the page cache for another):
    fetches wait for the window, none fails, every record arrives in
    order, and every window is back at the end."""
    broker = make_broker("--set", "log.tail.cache.bytes=0",
                         "--set", "log.read.buffer.bytes=%d" % MiB)
    topics = [unique("tiny%d" % i) for i in range(6)]
    want = {}
    for t in topics:
        create_topic(broker.bootstrap, t, partitions=2)
        vals = _values(t.encode(), 1500)
        d = produce_all(_small_batches(broker.bootstrap), t,
                        [{"partition": i % 2, "value": v} for i, v in enumerate(vals)])
        assert not d.errors
        want[t] = _expected(d.ok, 2)
        _drop_page_cache(broker, t, 2)
    before = broker_stats(broker)
    assert before["read_pool_free"] == 2
    results, failures = {}, []

    def read(t):
        try:
            results[t] = consume(broker.bootstrap, t, [0, 1], timeout=150,
                                 **{"max.partition.fetch.bytes": 64 * 1024})
        except Exception as e:  # reported below, in the test's thread
            failures.append((t, e))

    threads = [threading.Thread(target=read, args=(t,)) for t in topics]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures, failures
    for t in topics:
        for p in range(2):
            assert [m["value"] for m in results[t][p]] == want[t][p], "%s-%d" % (t, p)
    after = broker_stats(broker)
    assert after["fetch_cold"] > before["fetch_cold"]
    assert after["read_pool_waits"] > before["read_pool_waits"], "no fetch waited for a window"
    assert after["read_pool_free"] == 2, "a read window was not given back"


def _fetch_and_walk_away(bootstrap, topic, parts, fetches):
    """A client with a tiny receive buffer that sends fetches of cold data
    and never reads the answers: the broker is left mid-send."""
    host, port = bootstrap.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, int(port)))
    for corr in range(1, fetches + 1):
        body = kr.fetch_body_v4([(topic, [(p, 0) for p in range(parts)])], 0, 0,
                                50 * MiB, MiB)
        frame = kr.i16(kr.FETCH) + kr.i16(4) + kr.i32(corr) + kr.string("walkaway") + body
        s.sendall(kr.i32(len(frame)) + frame)
    return s


@pytest.mark.timeout_s(180)
def test_clients_that_disconnect_mid_fetch_leak_no_window(make_broker):
    """With one read window per shard, clients that fetch cold data and
    close without reading their responses (mid-send, or while a pipelined
    fetch still waits for the window) give every window back: another
    consumer then catches up over everything, and the pool is whole."""
    broker = make_broker("--set", "log.tail.cache.bytes=0",
                         "--set", "log.read.buffer.bytes=%d" % MiB)
    t = unique("walkaway")
    create_topic(broker.bootstrap, t, partitions=2)
    vals = _values(b"w", 3000)
    d = produce_all(_small_batches(broker.bootstrap), t,
                    [{"partition": i % 2, "value": v} for i, v in enumerate(vals)])
    assert not d.errors
    want = _expected(d.ok, 2)
    for _ in range(3):
        _drop_page_cache(broker, t, 2)
        socks = [_fetch_and_walk_away(broker.bootstrap, t, 2, 3) for _ in range(4)]
        # the windows are taken: their responses cannot leave
        wait_for(lambda: broker_stats(broker)["read_pool_free"] < 2, timeout=10,
                 what="windows held by unsent responses")
        for s in socks:
            s.close()
    wait_for(lambda: broker_stats(broker)["read_pool_free"] == 2, timeout=10,
             what="every window back")
    _drop_page_cache(broker, t, 2)
    got = consume(broker.bootstrap, t, [0, 1], timeout=120)
    for p in range(2):
        assert [m["value"] for m in got[p]] == want[p], "partition %d" % p
    assert broker_stats(broker)["read_pool_free"] == 2


def test_a_failing_cold_read_answers_storage_error_and_recovers(make_broker, tmp_path):
    """A disk read that fails (injected EIO on reads while a flag file
    exists) answers that partition KAFKA_STORAGE_ERROR, takes nothing
    offline and leaks no window; once reads work again the same fetch
    returns the records."""
    flag = tmp_path / "fail-reads"
    flag.write_text("")
    broker = make_broker("--set", "log.tail.cache.bytes=0",
                         "--set", "storage.faults=eio:read:file=log:while=%s" % flag)
    t = unique("eio")
    create_topic(broker.bootstrap, t, partitions=2)
    vals = _values(b"e", 400)
    d = produce_all(_small_batches(broker.bootstrap), t,
                    [{"partition": i % 2, "value": v} for i, v in enumerate(vals)])
    assert not d.errors
    want = _expected(d.ok, 2)
    _drop_page_cache(broker, t, 2)
    free = broker_stats(broker)["read_pool_free"]
    with kr.Conn.to(broker.bootstrap) as c:
        for p in range(2):
            err, hw, data = c.fetch(t, p, 0)
            assert err == kr.KAFKA_STORAGE_ERROR and data == b"", (p, err)
        stats = broker_stats(broker)
        assert stats["storage_faults"] >= 2
        assert stats["read_pool_free"] == free
        flag.unlink()
        for p in range(2):
            hw, recs = c.fetch_all(t, p)
            assert hw == len(want[p])
            assert [r[3] for r in recs] == want[p]

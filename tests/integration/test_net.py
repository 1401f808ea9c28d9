"""The connection receive/send path: multishot recv into the shard's ring of
provided buffers, frames cut across buffers and TCP segments, pipelining past
the in-flight limit, the per-connection memory limit, zero-copy sends of large
responses, and a ring far smaller than the number of busy connections."""

import random
import socket
import threading
import time

import pytest

import kafka_raw as kr
from conftest import unique, wait_for
from helpers import broker_stats


def _frame(c, api_key, version, corr, body):
    payload = c.header(api_key, version, corr, 1) + body
    return kr.i32(len(payload)) + payload


def _produce_frame(c, corr, topic, partition, records, acks=1):
    body = c.produce_body_v3(topic, partition, kr.record_batch(records), acks=acks)
    return _frame(c, kr.PRODUCE, 3, corr, body)


def _fetch_body(topic, partition, offset, max_bytes=50 << 20, partition_max_bytes=10 << 20):
    pd = kr.i32(partition) + kr.i64(offset) + kr.i32(partition_max_bytes)
    return (kr.i32(-1) + kr.i32(0) + kr.i32(0) + kr.i32(max_bytes) + kr.i8(0)
            + kr.array([kr.string(topic) + kr.array([pd])]))


def _produce_result(r):
    """(error, base_offset) of a one-partition Produce v3 response."""
    resp = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
    return resp[0][1][0][1], resp[0][1][0][2]


def _fetch_result(r):
    """(error, high watermark, record bytes) of a one-partition Fetch v4 response."""
    r.i32()
    resp = r.array(lambda r: (r.string(), r.array(lambda r: (
        r.i32(), r.i16(), r.i64(), r.i64(), r.array(lambda r: (r.i64(), r.i64())), r.bytes_()))))
    p = resp[0][1][0]
    return p[1], p[2], p[5] or b""


def _records(data, check_crc=True):
    return [rec for b in kr.parse_record_batches(data, check_crc) for rec in b["records"]]


def _new_topic(broker, prefix, partitions=1, configs=None):
    t = unique(prefix)
    with kr.Conn.to(broker.bootstrap) as c:
        assert c.create_topic(t, partitions, configs=configs)[0] == 0
    return t



def test_many_connections_produce_and_fetch(make_broker):
    """200 connections, each with a request in flight at the same time: every
    produce is acknowledged with its own offset and every connection fetches
    back exactly its own record."""
    b = make_broker()
    t = _new_topic(b, "net-many", partitions=4)
    n = 200
    conns = [kr.Conn.to(b.bootstrap) for _ in range(n)]
    try:
        for i, c in enumerate(conns):
            c.send_raw(_produce_frame(c, 1, t, i % 4, [(b"k%d" % i, b"v%d-" % i * 40)]))
        offsets = []
        for c in conns:
            err, off = _produce_result(c.recv_response(1))
            assert err == 0
            offsets.append(off)
        for p in range(4):
            assert sorted(offsets[p::4]) == list(range(n // 4))
        for i, c in enumerate(conns):
            c.send_raw(_frame(c, kr.FETCH, 4, 2, _fetch_body(t, i % 4, offsets[i])))
        for i, c in enumerate(conns):
            err, hw, data = _fetch_result(c.recv_response(2))
            assert err == 0 and hw == n // 4
            rec = _records(data)[0]
            assert (rec[0], rec[2], rec[3]) == (offsets[i], b"k%d" % i, b"v%d-" % i * 40)
    finally:
        for c in conns:
            c.close()


def test_frame_split_across_many_small_writes(make_broker):
    """A request arriving a byte at a time (size prefix and header), then in
    small chunks, each its own TCP segment: it is assembled and answered."""
    b = make_broker()
    t = _new_topic(b, "net-split")
    values = [bytes([65 + i]) * 3000 for i in range(5)]
    with kr.Conn.to(b.bootstrap) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frame = _produce_frame(c, 7, t, 0, [(None, v) for v in values])
        for i in range(40):
            c.send_raw(frame[i:i + 1])
            time.sleep(0.005)
        for i in range(40, len(frame), 777):
            c.send_raw(frame[i:i + 777])
            time.sleep(0.002)
        assert _produce_result(c.recv_response(7)) == (0, 0)
        # The connection is still in step afterwards.
        assert [r[3] for r in c.fetch_all(t, 0)[1]] == values


def test_random_chunking_of_many_frames(make_broker):
    """Requests of many sizes (some larger than a receive buffer) sent as one
    byte stream cut at random places: frames straddle buffers and writes in
    every possible way, and each is answered in order."""
    b = make_broker()
    t = _new_topic(b, "net-chunks")
    rnd = random.Random(1234)
    values = [bytes([rnd.randrange(256)]) * rnd.choice([10, 900, 5000, 70000, 200000])
              for _ in range(40)]
    with kr.Conn.to(b.bootstrap) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = b"".join(_produce_frame(c, 100 + i, t, 0, [(None, v)])
                          for i, v in enumerate(values))
        pos = 0
        while pos < len(stream):
            step = rnd.choice([1, 2, 3, 5, 100, 4096, 65536, 100000])
            c.send_raw(stream[pos:pos + step])
            pos += step
            if rnd.random() < 0.05:
                time.sleep(0.002)
        for i in range(len(values)):
            assert _produce_result(c.recv_response(100 + i)) == (0, i)
        assert [r[3] for r in c.fetch_all(t, 0)[1]] == values


def test_pipelined_requests_in_one_write(make_broker):
    """300 requests in a single write, far past the 64 a connection may have
    unanswered: the broker stops taking them, keeps the rest, and answers all
    of them in order as responses drain. A quarter are acks=0 produces, which
    get no response and leave the in-flight count at once."""
    b = make_broker()
    t = _new_topic(b, "net-pipe")
    with kr.Conn.to(b.bootstrap) as c:
        frames, kinds, produced = [], [], []
        for i in range(300):
            kind = i % 4
            if kind in (0, 3):
                frames.append(_produce_frame(c, i, t, 0, [(None, b"p%d" % i)],
                                             acks=1 if kind == 0 else 0))
                produced.append(b"p%d" % i)
            elif kind == 1:
                frames.append(_frame(c, kr.API_VERSIONS, 0, i, b""))
            else:
                frames.append(_frame(c, kr.METADATA, 4, i, kr.array([t], kr.string)
                                     + kr.boolean(False)))
            kinds.append(kind)
        c.send_raw(b"".join(frames))
        offsets = []
        for i, kind in enumerate(kinds):
            if kind == 3:
                continue
            r = c.recv_response(i)  # asserts the correlation id, so the order
            if kind == 0:
                err, off = _produce_result(r)
                assert err == 0
                offsets.append(off)
        assert offsets == list(range(0, 150, 2))
        assert [r[3] for r in c.fetch_all(t, 0)[1]] == produced


def test_frame_larger_than_connection_memory_limit(make_broker):
    """A connection with nothing in flight always takes its next frame in,
    even one larger than connection.memory.max.bytes (it could never drain
    below the limit otherwise)."""
    b = make_broker("--set", "connection.memory.max.bytes=1048576")
    t = _new_topic(b, "net-bigframe", configs={"max.message.bytes": str(8 << 20)})
    value = bytes(range(256)) * (12 << 10)  # 3 MiB
    with kr.Conn.to(b.bootstrap, timeout=30) as c:
        for j in range(3):
            assert c.produce_v3(t, 0, kr.record_batch([(None, value)])) == (0, j)
        assert [r[3] for r in c.fetch_all(t, 0)[1]] == [value] * 3


@pytest.mark.timeout_s(180)
def test_large_produce_and_fetch_intact(make_broker):
    """A 4 MiB produce (one frame over many receive buffers) and a fetch of
    about 9 MiB in one response, compared byte for byte; the response went out
    with zero-copy sends."""
    b = make_broker()
    t = _new_topic(b, "net-large", configs={"max.message.bytes": str(8 << 20)})
    rnd = random.Random(99)
    batches = []
    for n in range(5):
        size = (4 << 20) if n == 0 else 1200000
        value = bytes(rnd.getrandbits(8) for _ in range(4096)) * (size // 4096)
        batches.append([(b"b%d-%d" % (n, j), value[j::2] + b"%d" % j) for j in range(2)])
    with kr.Conn.to(b.bootstrap, timeout=60) as c:
        off = 0
        for recs in batches:
            assert c.produce_v3(t, 0, kr.record_batch(recs)) == (0, off)
            off += len(recs)
        zc_before = broker_stats(b)["zc_sends"]
        err, hw, data = c.fetch(t, 0, 0, partition_max_bytes=32 << 20)
        assert err == 0 and hw == off
        assert len(data) > 8 << 20
        got = [(r[2], r[3]) for r in _records(data)]
        assert got == [(k, v) for recs in batches for k, v in recs]
    assert broker_stats(b)["zc_sends"] > zc_before


def test_tiny_receive_ring_many_producers(make_broker):
    """Two 4 KiB receive buffers for 24 connections producing 6 KiB batches at
    once: recvs run out of buffers (ENOBUFS) and are re-armed, frames are
    assembled across buffers, and every batch lands exactly once."""
    b = make_broker("--set", "recv.buffers.per.shard=2", "--set", "recv.buffer.bytes=4096")
    t = _new_topic(b, "net-tiny", partitions=3)
    errors, acked = [], []

    def worker(w):
        try:
            with kr.Conn.to(b.bootstrap, timeout=30) as c:
                for i in range(40):
                    # Two requests in flight, so each connection keeps sending.
                    frames = [_produce_frame(c, 2 * i + k, t, w % 3,
                                             [(b"w%d" % w, b"%d-%d-%d|" % (w, i, k) * 600)])
                              for k in range(2)]
                    c.send_raw(b"".join(frames))
                    for k in range(2):
                        err, off = _produce_result(c.recv_response(2 * i + k))
                        assert err == 0
                        acked.append((w % 3, off, b"%d-%d-%d|" % (w, i, k) * 600))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    assert not errors, errors[:3]
    assert len(acked) == 24 * 40 * 2
    with kr.Conn.to(b.bootstrap) as c:
        for p in range(3):
            stored = {r[0]: r[3] for r in c.fetch_all(t, p)[1]}
            mine = {off: v for q, off, v in acked if q == p}
            assert stored == mine
    assert broker_stats(b)["recv_nobufs"] > 0


def test_slow_reader_is_held_alone(make_broker):
    """A connection that pipelines big fetches and reads nothing stops being
    read once its unsent responses pass connection.memory.max.bytes, while
    another connection keeps working; when it reads, every response arrives,
    in order and intact."""
    b = make_broker("--set", "connection.memory.max.bytes=1048576")
    t = _new_topic(b, "net-slow")
    value = bytes(range(256)) * 3000  # 750 KiB
    with kr.Conn.to(b.bootstrap) as c:
        for j in range(2):
            assert c.produce_v3(t, 0, kr.record_batch([(None, value)])) == (0, j)
    slow = kr.Conn.to(b.bootstrap, timeout=60)
    try:
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        requests_before = broker_stats(b)["requests"]
        n = 30
        slow.send_raw(b"".join(_frame(slow, kr.FETCH, 4, 1000 + i, _fetch_body(t, 0, 0))
                               for i in range(n)))
        time.sleep(1.0)
        with kr.Conn.to(b.bootstrap) as other:
            for j in range(3):
                assert other.produce_v3(t, 0, kr.record_batch([(None, b"x%d" % j)])) == (0, 2 + j)
            assert len(other.fetch_all(t, 0)[1]) == 5
        # The other connection made 3 produces and 1 fetch, plus the stats
        # requests; the slow one has run only the fetches that fit.
        ran = broker_stats(b)["requests"] - requests_before - 4
        assert ran < n // 2, "the slow connection ran %d of %d fetches" % (ran, n)
        for i in range(n):
            err, hw, data = _fetch_result(slow.recv_response(1000 + i))
            assert err == 0
            assert [r[3] for r in _records(data, check_crc=(i == 0))][:2] == [value, value]
    finally:
        slow.close()


def test_close_with_requests_held_and_partial_frame(make_broker):
    """Clients that vanish while the broker holds their pipelined requests or
    half a frame: nothing leaks (checked by the sanitizer build at teardown)
    and the broker keeps serving."""
    b = make_broker()
    t = _new_topic(b, "net-close")
    for _ in range(5):
        c = kr.Conn.to(b.bootstrap)
        c.send_raw(b"".join(_produce_frame(c, i, t, 0, [(None, b"v" * 1000)])
                            for i in range(150)))
        half = _produce_frame(c, 999, t, 0, [(None, b"h" * 100000)])
        c.send_raw(half[:len(half) // 2])
        c.close()
    with kr.Conn.to(b.bootstrap) as c:
        err, off = c.produce_v3(t, 0, kr.record_batch([(None, b"after")]))
        assert err == 0
        # (requests the vanished clients had fully sent may still be
        # appended after it: they were received)
        assert [r[3] for r in c.fetch_all(t, 0)[1] if r[0] == off] == [b"after"]


def test_bad_size_among_held_bytes_closes(make_broker):
    """A frame with an impossible size behind more requests than the
    connection may have in flight (so it waits, unchecked, with the held
    bytes) still closes the connection once reached; others are unaffected."""
    b = make_broker()
    t = _new_topic(b, "net-badheld")
    with kr.Conn.to(b.bootstrap) as c:
        frames = [_frame(c, kr.API_VERSIONS, 0, i, b"") for i in range(100)]
        c.send_raw(b"".join(frames) + kr.i32(-5) + b"\x00" * 16)
        assert c.is_closed_by_peer()
    with kr.Conn.to(b.bootstrap) as c:
        assert c.produce_v3(t, 0, kr.record_batch([(None, b"ok")])) == (0, 0)

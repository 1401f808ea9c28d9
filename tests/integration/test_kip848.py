"""The KIP-848 consumer group protocol (ConsumerGroupHeartbeat,
ConsumerGroupDescribe) against a real sluiced with two shards.

The installed librdkafka (2.0.2) predates group.protocol=consumer (2.4 has
it as a preview), so these tests speak the protocol at the wire level with
tests/proto/kip848_client (built next to SLUICED, in <build>/tests/proto/),
a C program on the broker's generated codec that acts as named members
and answers each command with one JSON line.

Members here behave as a client does: a member holds a partition from the
answer that gives it until the heartbeat in which it reports having let it
go, so "no partition is owned by two members" is checked at every answer
against what each member really holds, which is what revoke-then-assign
must guarantee.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import group_raw as gr
import kafka_raw as kr
from conftest import unique, wait_for
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewPartitions

from helpers import admin, consume, create_topic, list_topics, produce_all, producer

from kip848 import (FENCED_INSTANCE_ID, FENCED_MEMBER_EPOCH, GROUP_ID_NOT_FOUND,
                    GROUP_MAX_SIZE_REACHED, GROUP_SUBSCRIBED_TO_TOPIC, INVALID_REGULAR_EXPRESSION,
                    INVALID_REQUEST, NON_EMPTY_GROUP, NONE, SESSION_MS, FAST, STALE_MEMBER_EPOCH,
                    UNRELEASED_INSTANCE_ID, UNSUPPORTED_ASSIGNOR, UNSUPPORTED_VERSION, Client,
                    Group, assert_exactly_once, tp_set)


HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def kb(make_broker):
    return make_broker(*FAST)


@pytest.fixture
def cl(kb):
    c = Client(kb)
    yield c
    c.close()


def join_all(g, names, topic, **kw):
    for n in names:
        r = g.hb(n, topics=topic, **kw)
        assert r["error"] == NONE, r
        assert r["member_id"] and r["interval"] == 500
    return g.settle(names)


# ------------------------------------------------------------------ membership


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_three_members_six_partitions(kb, cl, assignor):
    """Three members over two 6-partition topics: every partition assigned
    exactly once in the stable target, four each; with range each member
    gets the same partition numbers of both topics (co-partitioning, two of
    each); the group epoch goes up with each join and every member ends at
    it; ConsumerGroupDescribe says so."""
    t1, t2 = unique("t"), unique("t")
    for t in (t1, t2):
        assert create_topic(kb.bootstrap, t, partitions=6) is None
    g = Group(cl, unique("g"))
    epochs = []
    for n in ("a", "b", "c"):
        r = g.hb(n, topics="%s,%s" % (t1, t2), assignor=assignor)
        assert r["error"] == NONE, r
        epochs.append(g.describe()["epoch"])
    assert epochs == sorted(epochs) and len(set(epochs)) == 3, epochs
    d = g.settle(["a", "b", "c"])
    assert d["epoch"] == d["assignment_epoch"] == epochs[-1]
    assert d["assignor"] == assignor and len(d["members"]) == 3
    owners = assert_exactly_once(d, [t1, t2], 6)
    per = {}
    for (t, p), mid in owners.items():
        per.setdefault(mid, {}).setdefault(t, set()).add(p)
    assert sorted(sum(len(x) for x in v.values()) for v in per.values()) == [4, 4, 4]
    if assignor == "range":
        for mid, by_topic in per.items():
            assert by_topic[t1] == by_topic[t2] and len(by_topic[t1]) == 2, per
    for m in d["members"]:
        assert sorted(m["topics"]) == sorted([t1, t2])
        assert m["regex"] is None and m["instance"] is None
        assert m["client_host"] == "/127.0.0.1" and m["epoch"] == d["epoch"]
    # Each member's epochs only went up.
    for n, seen in g.epochs.items():
        assert seen == sorted(seen), (n, seen)
    # The members' own view agrees with the description.
    by_id = {m["member_id"]: tp_set(m["assignment"]) for m in d["members"]}
    for n in ("a", "b", "c"):
        r = g.hb(n)
        assert r["error"] == NONE and r["epoch"] == d["epoch"]
        assert tp_set(r["owned"]) == by_id[r["member_id"]]


def test_fourth_member_revoke_then_assign(kb, cl):
    """A fourth member joins a stable group of three: partitions move only
    after their previous owner's heartbeat released them (checked at every
    answer), and the group ends balanced 2-2-1-1."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=6) is None
    g = Group(cl, unique("g"))
    d = join_all(g, ["a", "b", "c"], t)
    before = assert_exactly_once(d, t, 6)
    r = g.hb("d", topics=t)
    assert r["error"] == NONE
    # The newcomer gets nothing yet: its target is still someone's.
    assert r["assignment"] == []
    d2 = g.settle(["d", "a", "b", "c"])
    after = assert_exactly_once(d2, t, 6)
    assert sorted(len([p for p in after if after[p] == m]) for m in set(after.values())) == \
        [1, 1, 2, 2]
    # Sticky: only the newcomer's one partition changed hands (quota 1,
    # two members keep a second one).
    assert sum(1 for tp in before if before[tp] != after[tp]) == 1
    assert d2["epoch"] > d["epoch"]


def test_leave_and_session_timeout(kb, cl):
    """A member leaving with epoch -1 and one that stops heartbeating (its
    session expires) each give their partitions to the others; the silent
    one is then told UNKNOWN_MEMBER_ID, and rejoins with epoch 0."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=6) is None
    g = Group(cl, unique("g"))
    join_all(g, ["a", "b", "c"], t)
    r = g.hb("c", epoch=-1)
    assert r["error"] == NONE and r["epoch"] == -1
    d = g.settle(["a", "b"])
    assert len(d["members"]) == 2
    assert_exactly_once(d, t, 6)
    # "b" falls silent (a dead process: what it held is no longer used);
    # "a" goes on heartbeating and takes everything once b's session ends.
    g.forget("b")
    t0 = time.monotonic()
    deadline = t0 + SESSION_MS / 1000 + 10
    while True:
        assert time.monotonic() < deadline, g.describe()
        g.hb("a")
        d = g.describe()
        if len(d["members"]) == 1 and d["state"] == "Stable" and \
                d["members"][0]["epoch"] == d["assignment_epoch"]:
            break
        time.sleep(0.3)
    assert time.monotonic() - t0 >= SESSION_MS / 1000 - 1.0
    assert_exactly_once(d, t, 6)
    r = g.hb("b")
    assert r["error"] == gr.UNKNOWN_MEMBER_ID, r
    r = g.hb("b", topics=t)
    assert r["error"] == NONE and r["epoch"] > 0
    d = g.settle(["a", "b"])
    assert_exactly_once(d, t, 6)


def test_rebalance_timeout_fences_a_member_that_does_not_revoke(kb, cl):
    """A member asked to give partitions up that keeps reporting them is
    fenced once its rebalance timeout (2 s here) passes, though it goes on
    heartbeating; until then the newcomer gets none of them; afterwards it
    gets them all, and the fenced member hears UNKNOWN_MEMBER_ID."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=4) is None
    g = Group(cl, unique("g"))
    assert g.hb("slow", topics=t, rebalance=2000)["error"] == NONE
    g.settle(["slow"])
    everything = ";".join(["%s:0,1,2,3" % t])
    assert g.hb("new", topics=t)["error"] == NONE
    t0 = time.monotonic()
    while True:
        assert time.monotonic() - t0 < 10, g.describe()
        r = cl.cmd("hb", name="slow", group=g.group, owned=everything)
        if r["error"] != NONE:
            break
        assert r["epoch"] < g.describe()["epoch"]  # still in its old epoch
        r = g.hb("new")
        assert r["error"] == NONE and r["owned"] == [], r
        time.sleep(0.2)
    assert r["error"] == gr.UNKNOWN_MEMBER_ID, r
    assert 1.5 <= time.monotonic() - t0 < 6
    assert "did not revoke its partitions within its rebalance timeout" in kb.log()
    g.forget("slow")
    d = g.settle(["new"])
    assert len(d["members"]) == 1
    assert_exactly_once(d, t, 4)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_membership(kb, cl, seed):
    """Members joining, heartbeating, leaving and changing subscriptions in
    a seeded random order over two topics (uniform and range voted for):
    at every answer no partition is held by two members, and at the end
    the group settles with every partition of the subscribed topics
    exactly once."""
    import random
    rnd = random.Random(seed)
    t1, t2 = unique("t"), unique("t")
    assert create_topic(kb.bootstrap, t1, partitions=5) is None
    assert create_topic(kb.bootstrap, t2, partitions=3) is None
    g = Group(cl, unique("g"))
    names = ["m%d" % i for i in range(6)]
    live = set()
    for _ in range(150):
        n = rnd.choice(names)
        op = rnd.random()
        if n not in live:
            subs = rnd.choice([t1, "%s,%s" % (t1, t2)])
            r = g.hb(n, topics=subs, assignor=rnd.choice(["uniform", "range"]))
            assert r["error"] == NONE, r
            live.add(n)
        elif op < 0.1:
            assert g.hb(n, epoch=-1)["error"] == NONE
            live.discard(n)
            cl.cmd("forget", name=n)
        elif op < 0.2:
            r = g.hb(n, topics=rnd.choice([t1, t2, "%s,%s" % (t1, t2)]))
            assert r["error"] == NONE, r
        else:
            r = g.hb(n)
            assert r["error"] == NONE, r
    # Everyone reads both topics at the end, so all 8 partitions are owned.
    for n in sorted(live):
        assert g.hb(n, topics="%s,%s" % (t1, t2))["error"] == NONE
    d = g.settle(sorted(live))
    assert len(d["members"]) == len(live)
    owned = [tuple(x) for m in d["members"] for x in m["assignment"]]
    assert sorted(owned) == sorted([(t1, p) for p in range(5)] + [(t2, p) for p in range(3)])
    for m in d["members"]:
        assert tp_set(m["assignment"]) == tp_set(m["target"])


def test_static_member_keeps_its_partitions(kb, cl):
    """A static member (instance id) leaving with epoch -2 keeps its
    partitions reserved: the group epoch does not move and nobody else gets
    them; another member with its instance id meanwhile is refused
    (UNRELEASED_INSTANCE_ID); it rejoins under a new member id with epoch 0
    and gets the same partitions back, still without a new group epoch."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=6) is None
    g = Group(cl, unique("g"))
    r = g.hb("s", topics=t, instance="inst-1")
    assert r["error"] == NONE
    for n in ("a", "b"):
        assert g.hb(n, topics=t)["error"] == NONE
    d = g.settle(["s", "a", "b"])
    mine = tp_set(next(m["assignment"] for m in d["members"] if m["instance"] == "inst-1"))
    assert len(mine) == 2
    # Another process with the same instance id while it is there.
    r = g.hb("s2", topics=t, instance="inst-1")
    assert r["error"] == UNRELEASED_INSTANCE_ID, r
    old_id = g.hb("s", instance="inst-1")["member_id"]
    r = g.hb("s", epoch=-2, instance="inst-1")
    assert r["error"] == NONE and r["epoch"] == -2
    g.forget("s")
    # The others go on; the group epoch stays and its partitions stay out.
    for _ in range(3):
        for n in ("a", "b"):
            r = g.hb(n)
            assert r["error"] == NONE
            assert not (tp_set(r["owned"]) & mine)
    d2 = g.describe()
    assert d2["epoch"] == d["epoch"]
    gone = next(m for m in d2["members"] if m["instance"] == "inst-1")
    assert gone["epoch"] == -2 and tp_set(gone["assignment"]) == mine
    # Back, as a new process: a new member id, epoch 0, the same instance.
    cl.cmd("forget", name="s")
    r = g.hb("s", topics=t, instance="inst-1")
    assert r["error"] == NONE, r
    assert r["member_id"] != old_id
    assert tp_set(r["assignment"]) == mine
    d3 = g.settle(["s", "a", "b"])
    assert d3["epoch"] == d["epoch"]
    assert {m["member_id"] for m in d3["members"]} >= {r["member_id"]}
    assert old_id not in {m["member_id"] for m in d3["members"]}
    # The old incarnation is fenced.
    r = cl.cmd("hb", name="s-old", group=g.group, id=old_id, epoch=d["epoch"],
               instance="inst-1")
    assert r["error"] == FENCED_INSTANCE_ID, r


def test_new_topic_and_regex(kb, cl):
    """Subscribed topics that appear later: a member subscribed to a topic
    that does not exist yet gets its partitions once it is created (the
    next heartbeat after the shard attaches it bumps the group epoch); a
    regex subscription (v1) follows topics created later too."""
    t1, t2 = unique("t"), unique("t")
    assert create_topic(kb.bootstrap, t1, partitions=2) is None
    g = Group(cl, unique("g"))
    assert g.hb("a", topics="%s,%s" % (t1, t2))["error"] == NONE
    d = g.settle(["a"])
    assert tp_set(d["members"][0]["assignment"]) == {(t1, 0), (t1, 1)}
    assert create_topic(kb.bootstrap, t2, partitions=3) is None
    d2 = g.settle(["a"])
    assert d2["epoch"] > d["epoch"]
    assert tp_set(d2["members"][0]["assignment"]) == {(t1, 0), (t1, 1), (t2, 0), (t2, 1),
                                                      (t2, 2)}
    # A regex: every topic whose whole name matches.
    prefix = unique("rx").replace("-", "_")
    ra = prefix + "_a"
    assert create_topic(kb.bootstrap, ra, partitions=2) is None
    rg = Group(cl, unique("g"))
    r = rg.hb("r", regex="%s_.*" % prefix)
    assert r["error"] == NONE
    d = rg.settle(["r"])
    assert tp_set(d["members"][0]["assignment"]) == {(ra, 0), (ra, 1)}
    assert d["members"][0]["regex"] == "%s_.*" % prefix
    rb = prefix + "_b"
    assert create_topic(kb.bootstrap, rb, partitions=1) is None
    assert create_topic(kb.bootstrap, "x" + prefix + "_c", partitions=1) is None
    d = rg.settle(["r"])
    assert tp_set(d["members"][0]["assignment"]) == {(ra, 0), (ra, 1), (rb, 0)}
    r = rg.hb("bad", regex="(unclosed")
    assert r["error"] == INVALID_REGULAR_EXPRESSION, r


def test_partitions_added(kb, cl):
    """CreatePartitions (confluent-kafka's admin client) on a subscribed
    topic: the next heartbeat sees the new partition count, bumps the group
    epoch and assigns the new partitions (every partition still exactly
    once). The new partitions take records, and stay across a restart;
    fewer partitions than the topic has is INVALID_PARTITIONS."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=3) is None
    g = Group(cl, unique("g"))
    d = join_all(g, ["a", "b"], t)
    assert_exactly_once(d, t, 3)
    a = admin(kb.bootstrap)
    a.create_partitions([NewPartitions(t, 7)], request_timeout=15)[t].result(timeout=20)
    # Fewer than it has: Kafka's INVALID_PARTITIONS.
    with pytest.raises(KafkaException) as e:
        a.create_partitions([NewPartitions(t, 5)], request_timeout=15)[t].result(timeout=20)
    assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    wait_for(lambda: len(list_topics(kb.bootstrap, t).topics[t].partitions) == 7,
             what="7 partitions in Metadata")
    d2 = g.settle(["a", "b"])
    assert d2["epoch"] > d["epoch"]
    assert_exactly_once(d2, t, 7)
    d3 = produce_all(producer(kb.bootstrap), t, [{"value": b"p%d" % p, "partition": p}
                                                 for p in range(7)])
    assert not d3.errors and len(d3.ok) == 7
    cl.close()
    kb.restart()
    assert len(list_topics(kb.bootstrap, t).topics[t].partitions) == 7
    got = consume(kb.bootstrap, t, partitions=range(7))
    assert [got[p][0]["value"] for p in range(7)] == [b"p%d" % p for p in range(7)]


RDKAFKA_DIR = os.environ.get("SLUICE_KIP848_LIBRDKAFKA")


@pytest.mark.skipif(not RDKAFKA_DIR,
                    reason="needs librdkafka >= 2.4 for group.protocol=consumer (the installed "
                           "2.0.2 predates it): set SLUICE_KIP848_LIBRDKAFKA to the directory "
                           "of a newer librdkafka.so.1")
def test_librdkafka_consumer_protocol(kb):
    """A real client: confluent-kafka over a librdkafka with
    group.protocol=consumer (kip848_rdkafka.py): three consumers read 600
    records exactly once, committing each synchronously (OffsetCommit v9
    with member epochs), spread over the three; two close and the third
    takes all six partitions; the committed offsets are the log ends."""
    t, grp = unique("t"), unique("g")
    assert create_topic(kb.bootstrap, t, partitions=6) is None
    d = produce_all(producer(kb.bootstrap), t, [{"value": b"v%d" % i, "partition": i % 6}
                                                for i in range(600)])
    assert not d.errors
    env = dict(os.environ, LD_LIBRARY_PATH=RDKAFKA_DIR)
    p = subprocess.run([sys.executable, os.path.join(HERE, "kip848_rdkafka.py"), kb.bootstrap,
                        t, grp, "600"], env=env, capture_output=True, text=True, timeout=150)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    print("librdkafka %s: %s" % (r["librdkafka"], r))
    assert r["consumed"] == 600 and r["duplicates"] == 0 and not r["errors"], r
    assert r["consumers_used"] >= 2, r
    assert r["last"] == list(range(6)) and r["takeover_s"] < 20, r
    assert r["committed"] == [100] * 6, r


# ------------------------------------------------------------------ offsets


def test_commits_with_member_epochs(kb, cl):
    """OffsetCommit v9 carries the member epoch: the current one commits, a
    stale one gets STALE_MEMBER_EPOCH, an unknown member UNKNOWN_MEMBER_ID,
    a consumer-protocol member on v8 UNSUPPORTED_VERSION, an admin commit
    (-1) of a group with members UNKNOWN_MEMBER_ID; OffsetFetch v9 checks
    the epoch the same way; a missing group is GROUP_ID_NOT_FOUND at v9."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=2) is None
    g = Group(cl, unique("g"))
    d = join_all(g, ["a", "b"], t)
    epoch = d["epoch"]
    assert cl.cmd("commit", name="a", group=g.group, topic=t, partition=0,
                  offset=17)["error"] == NONE
    assert cl.cmd("commit", name="a", group=g.group, topic=t, partition=0, offset=18,
                  epoch=epoch - 1)["error"] == STALE_MEMBER_EPOCH
    assert cl.cmd("commit", name="a", group=g.group, topic=t, partition=0, offset=18,
                  epoch=epoch + 1)["error"] == STALE_MEMBER_EPOCH
    assert cl.cmd("commit", group=g.group, id="nobody", epoch=epoch, topic=t, partition=0,
                  offset=18)["error"] == gr.UNKNOWN_MEMBER_ID
    assert cl.cmd("commit", name="a", group=g.group, topic=t, partition=0, offset=18,
                  version=8)["error"] == UNSUPPORTED_VERSION
    assert cl.cmd("commit", group=g.group, id="", epoch=-1, topic=t, partition=0,
                  offset=18)["error"] == gr.UNKNOWN_MEMBER_ID
    assert cl.cmd("commit", group=unique("none"), id="x", epoch=3, topic=t, partition=0,
                  offset=1)["error"] == GROUP_ID_NOT_FOUND
    f = cl.cmd("fetch", name="a", group=g.group, topic=t, partition=0)
    assert f == {"error": NONE, "partition_error": NONE, "offset": 17}
    f = cl.cmd("fetch", name="a", group=g.group, topic=t, partition=0, epoch=epoch - 1)
    assert f["error"] == STALE_MEMBER_EPOCH
    f = cl.cmd("fetch", group=g.group, topic=t, partition=0)  # admin: no member
    assert f["error"] == NONE and f["offset"] == 17
    # The group empties: an admin commit (-1) works again.
    for n in ("a", "b"):
        assert g.hb(n, epoch=-1)["error"] == NONE
    assert cl.cmd("commit", group=g.group, id="", epoch=-1, topic=t, partition=1,
                  offset=5)["error"] == NONE


def test_restart_keeps_group_and_offsets(kb, cl):
    """A consumer group and its offsets survive a broker restart: the
    description is the same, the members go on heartbeating with the epochs
    they had (keeping their partitions), and the offsets are there."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=6) is None
    g = Group(cl, unique("g"))
    d = join_all(g, ["a", "b", "c"], t, assignor="range")
    for p in range(6):
        owner = next(n for n in ("a", "b", "c") if (t, p) in g.assigned[n])
        assert cl.cmd("commit", name=owner, group=g.group, topic=t, partition=p,
                      offset=100 + p)["error"] == NONE
    cl.close()
    kb.restart()
    cl2 = Client(kb)
    try:
        g.cl = cl2
        d2 = wait_for(lambda: (lambda r: r if r["error"] == NONE else None)(
            cl2.cmd("describe", group=g.group)["groups"][0]), what="group loaded")
        key = lambda x: sorted((m["member_id"], m["epoch"], sorted(map(tuple, m["assignment"])))
                               for m in x["members"])
        assert key(d2) == key(d)
        assert (d2["epoch"], d2["assignment_epoch"], d2["state"], d2["assignor"]) == \
            (d["epoch"], d["assignment_epoch"], "Stable", "range")
        # The members carry on as they were: same ids, epochs, partitions.
        for m in d["members"]:
            r = cl2.cmd("hb", name="x" + m["member_id"], group=g.group, id=m["member_id"],
                        epoch=m["epoch"], owned="null")
            assert r["error"] == NONE and r["epoch"] == m["epoch"], r
        for p in range(6):
            f = cl2.cmd("fetch", group=g.group, topic=t, partition=p)
            assert f["offset"] == 100 + p
    finally:
        cl2.close()


# ------------------------------------------------------------------ errors and types


def test_heartbeat_errors(make_broker):
    """What Kafka refuses: missing fields of a join (INVALID_REQUEST), an
    unknown assignor, epochs the coordinator does not know
    (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID), a group past
    group.consumer.max.size, a group that does not exist."""
    b = make_broker(*FAST, "--set", "group.consumer.max.size=2")
    t = unique("t")
    assert create_topic(b.bootstrap, t, partitions=2) is None
    cl = Client(b)
    try:
        grp = unique("g")
        bad = [dict(rebalance=-1, topics=t),            # no rebalance timeout
               dict(owned="%s:0" % t, topics=t),        # owned partitions on a join
               dict(),                                  # neither topics nor regex
               dict(epoch=-3),                          # no such epoch
               dict(id="-", epoch=0, topics=t),         # v1: the client makes the id
               dict(id="m", epoch=-2)]                  # static leave without instance
        for kw in bad:
            r = cl.cmd("hb", name="bad", group=grp, **kw)
            assert r["error"] == INVALID_REQUEST and r["message"], (kw, r)
        r = cl.cmd("hb", name="bad", group=" ", topics=t)
        assert r["error"] == INVALID_REQUEST
        r = cl.cmd("hb", name="x", group=grp, topics=t, assignor="sticky")
        assert r["error"] == UNSUPPORTED_ASSIGNOR
        # v0: the coordinator makes the member id.
        r = cl.cmd("hb", name="v0", group=grp, topics=t, version=0, id="-")
        assert r["error"] == NONE and len(r["member_id"]) == 22
        e = r["epoch"]
        r = cl.cmd("hb", name="v0", group=grp, version=0, epoch=e + 5)
        assert r["error"] == FENCED_MEMBER_EPOCH
        r = cl.cmd("hb", name="ghost", group=grp, id="ghost", epoch=3)
        assert r["error"] == gr.UNKNOWN_MEMBER_ID
        r = cl.cmd("hb", name="ghost", group=unique("nogroup"), id="ghost", epoch=3)
        assert r["error"] == GROUP_ID_NOT_FOUND
        assert cl.cmd("hb", name="two", group=grp, topics=t)["error"] == NONE
        r = cl.cmd("hb", name="three", group=grp, topics=t)
        assert r["error"] == GROUP_MAX_SIZE_REACHED, r
    finally:
        cl.close()


def test_group_types(kb, cl):
    """A group id held by the other protocol: an empty classic group (only
    offsets) becomes a consumer group on a join with epoch 0, keeping its
    offsets; a classic group with members is GROUP_ID_NOT_FOUND to the
    consumer protocol; a JoinGroup to a consumer group with members is
    INCONSISTENT_GROUP_PROTOCOL; an empty consumer group becomes classic on
    a JoinGroup. ListGroups says which type each is (and filters by it),
    DescribeGroups answers Dead for a consumer group (Kafka 4.0, v5) and
    ConsumerGroupDescribe GROUP_ID_NOT_FOUND for a classic one."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=2) is None
    offsets_only = unique("oo")
    with kr.Conn.to(kb.bootstrap) as c:
        assert gr.offset_commit(c, offsets_only, {t: [(0, 55)]}, version=8) == {(t, 0): 0}
        classic = unique("cl")
        m = gr.Member(c, classic, [t], session_ms=30000)
        m.join()
        m.sync([(m.member_id, gr.assignment({t: [0, 1]}))])
        r = cl.cmd("hb", name="c1", group=classic, topics=t)
        assert r["error"] == GROUP_ID_NOT_FOUND, r
        d = cl.cmd("describe", group=classic)["groups"][0]
        assert d["error"] == GROUP_ID_NOT_FOUND
        # The offsets-only group converts; its offset is still there.
        g = Group(cl, offsets_only)
        assert g.hb("a", topics=t)["error"] == NONE
        g.settle(["a"])
        assert cl.cmd("fetch", group=offsets_only, topic=t, partition=0)["offset"] == 55
        listed = {x["group"]: x for x in cl.cmd("list")["groups"]}
        assert listed[offsets_only]["type"] == "consumer"
        assert listed[offsets_only]["protocol_type"] == "consumer"
        assert listed[offsets_only]["state"] == "Stable"
        assert listed[classic]["type"] == "classic"
        only_consumer = {x["group"] for x in cl.cmd("list", types="consumer")["groups"]}
        assert offsets_only in only_consumer and classic not in only_consumer
        only_classic = {x["group"] for x in cl.cmd("list", types="Classic")["groups"]}
        assert classic in only_classic and offsets_only not in only_classic
        stable = {x["group"] for x in cl.cmd("list", states="stable", types="consumer")["groups"]}
        assert offsets_only in stable
        assert cl.cmd("dgroups", group=offsets_only) == {"error": 0, "state": "Dead",
                                                          "protocol_type": "", "members": 0}
        # A classic JoinGroup to it while it has a member.
        j = gr.join_group(c, offsets_only, "", (("range", gr.subscription([t])),), 10000,
                          10000, version=5)
        assert j["error"] == gr.INCONSISTENT_GROUP_PROTOCOL
        # Empty again: a JoinGroup makes it classic (the offset stays).
        assert g.hb("a", epoch=-1)["error"] == NONE
        x = gr.Member(c, offsets_only, [t], session_ms=30000)
        x.join()
        x.sync([(x.member_id, gr.assignment({t: [0, 1]}))])
        listed = {x["group"]: x for x in cl.cmd("list")["groups"]}
        assert listed[offsets_only]["type"] == "classic"
        assert cl.cmd("describe", group=offsets_only)["groups"][0]["error"] == GROUP_ID_NOT_FOUND
        assert cl.cmd("fetch", group=offsets_only, topic=t, partition=0)["offset"] == 55


def test_delete_and_offset_delete(kb, cl):
    """DeleteGroups refuses a consumer group with members (NON_EMPTY_GROUP)
    and deletes an empty one (with its offsets, across a restart);
    OffsetDelete refuses a topic a member subscribes to
    (GROUP_SUBSCRIBED_TO_TOPIC) and deletes the others' offsets."""
    t, other = unique("t"), unique("t")
    assert create_topic(kb.bootstrap, t, partitions=2) is None
    assert create_topic(kb.bootstrap, other, partitions=1) is None
    g = Group(cl, unique("g"))
    join_all(g, ["a"], t)
    assert cl.cmd("commit", name="a", group=g.group, topic=t, partition=0, offset=3)["error"] == 0
    assert cl.cmd("commit", name="a", group=g.group, topic=other, partition=0,
                  offset=9)["error"] == 0
    r = cl.cmd("odelete", group=g.group, topic=t, partition=0)
    assert r == {"error": 0, "partition_error": GROUP_SUBSCRIBED_TO_TOPIC}
    r = cl.cmd("odelete", group=g.group, topic=other, partition=0)
    assert r == {"error": 0, "partition_error": 0}
    assert cl.cmd("fetch", group=g.group, topic=other, partition=0)["offset"] == -1
    assert cl.cmd("delete", group=g.group)["error"] == NON_EMPTY_GROUP
    assert g.hb("a", epoch=-1)["error"] == NONE
    assert cl.cmd("describe", group=g.group)["groups"][0]["state"] == "Empty"
    assert cl.cmd("delete", group=g.group)["error"] == NONE
    assert cl.cmd("describe", group=g.group)["groups"][0]["error"] == GROUP_ID_NOT_FOUND
    cl.close()
    kb.restart()
    c2 = Client(kb)
    try:
        d = wait_for(lambda: (lambda r: r if r["error"] != 14 else None)(
            c2.cmd("describe", group=g.group)["groups"][0]), what="loaded")
        assert d["error"] == GROUP_ID_NOT_FOUND
        assert c2.cmd("fetch", group=g.group, topic=t, partition=0)["offset"] == -1
        assert g.group not in {x["group"] for x in c2.cmd("list")["groups"]}
    finally:
        c2.close()


# ------------------------------------------------------------------ scale


def owner_shards(broker):
    out = subprocess.run([broker.binary, "--describe-placement", "--data-dir", broker.data_dir,
                          "--shards", "2"], capture_output=True, text=True).stdout
    return {int(p[1]): int(p[3]) for p in (ln.split() for ln in out.splitlines())
            if p[0] == "__consumer_offsets"}


def group_on_shard(owner, shard, prefix):
    i = 0
    while True:
        g = "%s-%d" % (prefix, i)
        if owner[gr.partition_for(g, 50)] == shard:
            return g
        i += 1


@pytest.mark.timeout_s(300)
def test_thousand_members(kb, cl):
    """1,000 members join a group at once (pipelined on one connection) and
    heartbeat in rounds until it is Stable: every member at the assignment
    epoch, the 6 partitions each assigned once, in reasonable time."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=6) is None
    cl.cmd("topics")
    grp = unique("big")
    r = cl.cmd("join", group=grp, topic=t, n=1000)
    print("1000-member consumer group: joined in %.0f ms, stable after %d rounds in %.0f ms"
          % (r["join_ms"], r["rounds"], r["total_ms"]))
    assert r["joined"] == 1000 and r["errors"] == 0, r
    assert r["settled"] and r["assigned"] == 6, r
    assert r["total_ms"] < 60000, r
    d = cl.cmd("describe", group=grp)["groups"][0]
    assert len(d["members"]) == 1000 and d["state"] == "Stable"
    assert_exactly_once(d, t, 6)


@pytest.mark.timeout_s(180)
def test_heartbeat_flood_does_not_slow_other_groups(kb):
    """One member heartbeating at 1 kHz does not slow another group's
    commits on the same shard: their latency against a baseline taken in
    this test before the flood."""
    owner = owner_shards(kb)
    flood_group = group_on_shard(owner, 1, "flood")
    quiet_group = group_on_shard(owner, 1, "quiet")
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=2) is None
    quiet, flood = Client(kb), Client(kb)
    try:
        base = quiet.cmd("commits", group=quiet_group, topic=t, n=300)
        assert base["errors"] == 0
        flood.p.stdin.write("flood name=f group=%s topic=%s hz=1000 seconds=6\n"
                            % (flood_group, t))
        flood.p.stdin.flush()
        time.sleep(1.0)
        loaded = quiet.cmd("commits", group=quiet_group, topic=t, n=300)
        f = json.loads(flood.p.stdout.readline())
        print("commits p50 %d -> %d us, p99 %d -> %d us; heartbeats %.0f/s (%d errors)"
              % (base["p50_us"], loaded["p50_us"], base["p99_us"], loaded["p99_us"],
                 f["rate"], f["errors"]))
        assert loaded["errors"] == 0
        assert f["errors"] == 0 and f["rate"] > 700, f
        assert loaded["p50_us"] < max(4 * base["p50_us"], base["p50_us"] + 20000), (base, loaded)
        assert loaded["p99_us"] < max(6 * base["p99_us"], base["p99_us"] + 50000), (base, loaded)
    finally:
        quiet.close()
        flood.close()


def test_shutdown_with_members(kb, cl):
    """SIGTERM with a consumer group mid-rebalance: a clean exit (the
    teardown checks exit code 0 and the sanitizers)."""
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=4) is None
    g = Group(cl, unique("g"))
    join_all(g, ["a", "b"], t)
    assert g.hb("c", topics=t)["error"] == NONE
    cl.close()
    kb.stop(signal.SIGTERM)


def test_api_versions(kb):
    """ApiVersions lists ConsumerGroupHeartbeat v0-1, ConsumerGroupDescribe
    v0 and CreatePartitions v0-3 (every version of their schemas)."""
    with kr.Conn.to(kb.bootstrap) as c:
        err, apis = c.api_versions(3)
    assert err == 0
    assert apis[68] == (0, 1) and apis[69] == (0, 0) and apis[37] == (0, 3)


def test_malformed_requests(kb):
    """ConsumerGroupHeartbeat (68), ConsumerGroupDescribe (69) and
    CreatePartitions (37) at every version with bodies cut short or made of
    random bytes (seeded), and heartbeats with hostile contents: the broker
    answers or closes the connection and keeps serving (the sanitizers are
    checked at teardown)."""
    import random
    import socket
    rnd = random.Random(848)
    for api, top, flex_from in ((68, 1, 0), (69, 0, 0), (37, 3, 2)):
        for v in range(top + 1):
            for trial in range(6):
                body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 64)))
                if trial == 0:
                    body = b""
                with kr.Conn.to(kb.bootstrap, timeout=5) as c:
                    try:
                        c.send_request(api, v, body, flexible=v >= flex_from)
                        c.recv_frame()
                    except (kr.ConnectionClosed, ConnectionResetError, socket.timeout,
                            TimeoutError, ValueError):
                        pass
    t = unique("t")
    assert create_topic(kb.bootstrap, t, partitions=2) is None
    cl = Client(kb)
    try:
        grp = unique("g")
        # Owned partitions of topics and partitions that do not exist, a
        # huge partition number, a subscription to hundreds of names.
        r = cl.cmd("hb", name="h", group=grp, topics=",".join("n%d" % i for i in range(300)))
        assert r["error"] == NONE
        r = cl.cmd("hb", name="h", group=grp, owned="%s:0,1,2147483647,-5" % t)
        assert r["error"] == NONE
        r = cl.cmd("hb", name="h", group=grp, topics=t)
        assert r["error"] == NONE
        g = Group(cl, grp)
        d = g.settle(["h"])
        assert_exactly_once(d, t, 2)
    finally:
        cl.close()

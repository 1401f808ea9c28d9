"""sluicectl group commands against a real sluiced, with groups that real
clients (confluent-kafka consumers) made.

sluicectl is found next to SLUICED, in <build>/tools/sluicectl. Every check
reads sluicectl's --json output (and, for the tables, its text) and compares
it with what the clients did: what they consumed and committed, what the
log holds, and what a consumer reads after a reset. Consumer groups of the
KIP-848 protocol are driven at the wire level (kip848.py), since the
installed librdkafka predates group.protocol=consumer.
"""

import json
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

import kip848
from conftest import built_path, unique, wait_for
from helpers import create_topic, produce_all, producer
from helpers import consumer as plain_consumer

GROUP_ARGS = ("--set", "group.initial.rebalance.delay.ms=0")
N_PARTS = 3
N_RECORDS = 90


def ctl_binary():
    return built_path("tools", "sluicectl")


def ctl(broker, *args, check=True, json_out=True):
    cmd = [ctl_binary(), "--bootstrap", broker.bootstrap, "--timeout-ms", "15000"]
    if json_out:
        cmd.append("--json")
    p = subprocess.run(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    if check:
        assert p.returncode == 0, "sluicectl %s: exit %d\n%s%s" % (
            " ".join(args), p.returncode, p.stdout, p.stderr)
    if json_out and p.returncode == 0:
        return json.loads(p.stdout.strip().splitlines()[-1])
    return p


def group_consumer(broker, group, **extra):
    conf = {"group.id": group, "enable.partition.eof": False, "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500}
    conf.update(extra)
    return plain_consumer(broker.bootstrap, **conf)


def consume_n(c, n, timeout=30):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, "consumed %d of %d" % (len(got), n)
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            continue
        got.append((m.partition(), m.offset()))
    return got


@pytest.fixture
def loaded(make_broker):
    """A broker with a 3-partition topic of 30 records per partition."""
    b = make_broker(*GROUP_ARGS)
    topic = unique("ctl")
    assert create_topic(b.bootstrap, topic, partitions=N_PARTS) is None
    p = producer(b.bootstrap)
    d = produce_all(p, topic, [{"value": b"v%d" % i, "partition": i % N_PARTS}
                               for i in range(N_RECORDS)])
    assert not d.errors and len(d.ok) == N_RECORDS
    return b, topic


def offsets_of(desc, topic):
    return {o["partition"]: o for o in desc["offsets"] if o["topic"] == topic}


def test_describe_list_active_group(loaded):
    b, topic = loaded
    group = unique("g")
    c = group_consumer(b, group)
    c.subscribe([topic])
    got = consume_n(c, 45)
    # Commit exactly what was consumed: the next offset per partition.
    nxt = {}
    for part, off in got:
        nxt[part] = max(nxt.get(part, 0), off + 1)
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()], asynchronous=False)

    desc = ctl(b, "group", "describe", group)["groups"][0]
    assert desc["group"] == group and desc["state"] == "Stable"
    assert desc["protocol_type"] == "consumer" and desc["protocol"] in ("range", "roundrobin",
                                                                       "cooperative-sticky")
    assert len(desc["members"]) == 1
    member = desc["members"][0]
    assert sorted(a["partition"] for a in member["assignment"]) == list(range(N_PARTS))
    offs = offsets_of(desc, topic)
    assert sorted(offs) == list(range(N_PARTS))
    for part in range(N_PARTS):
        o = offs[part]
        assert o["log_end"] == N_RECORDS // N_PARTS
        assert o["committed"] == nxt.get(part)
        if o["committed"] is not None:
            assert o["lag"] == o["log_end"] - o["committed"]
        assert o["member_id"] == member["member_id"]

    listed = ctl(b, "group", "list")["groups"]
    assert [g for g in listed if g["group"] == group][0]["state"] == "Stable"
    assert group not in [g["group"] for g in ctl(b, "group", "list", "--state", "Empty")["groups"]]
    assert group in [g["group"] for g in ctl(b, "group", "list", "--state", "Stable")["groups"]]

    # The table says the same.
    text = ctl(b, "group", "describe", group, json_out=False).stdout
    assert "Group %s: Stable" % group in text and "LOG-END-OFFSET" in text

    # An active group is neither reset nor deleted.
    p = ctl(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute",
            check=False, json_out=False)
    assert p.returncode == 1 and "no members" in p.stderr
    p = ctl(b, "group", "delete", group, check=False, json_out=False)
    assert p.returncode == 1 and "NON_EMPTY_GROUP" in p.stderr
    c.close()


def test_reset_offsets_and_delete(loaded):
    b, topic = loaded
    group = unique("g")
    c = group_consumer(b, group)
    c.subscribe([topic])
    got = consume_n(c, N_RECORDS)
    nxt = {}
    for part, off in got:
        nxt[part] = max(nxt.get(part, 0), off + 1)
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in nxt.items()], asynchronous=False)
    c.close()
    per = N_RECORDS // N_PARTS
    wait_for(lambda: ctl(b, "group", "describe", group)["groups"][0]["state"] == "Empty",
             what="group empty after close")
    offs = offsets_of(ctl(b, "group", "describe", group)["groups"][0], topic)
    assert {p: o["committed"] for p, o in offs.items()} == {p: per for p in range(N_PARTS)}

    # Dry run: a plan, nothing changed.
    plan = ctl(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert plan["executed"] is False
    assert {(o["partition"], o["previous"], o["new"]) for o in plan["offsets"]} == \
        {(p, per, 0) for p in range(N_PARTS)}
    offs = offsets_of(ctl(b, "group", "describe", group)["groups"][0], topic)
    assert all(o["committed"] == per for o in offs.values())

    # Execute: a new member resumes from the beginning and reads everything again.
    res = ctl(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    assert res["executed"] is True and all(o["error"] is None for o in res["offsets"])
    offs = offsets_of(ctl(b, "group", "describe", group)["groups"][0], topic)
    assert all(o["committed"] == 0 and o["lag"] == per for o in offs.values())
    c = group_consumer(b, group)
    c.subscribe([topic])
    again = consume_n(c, N_RECORDS)
    assert sorted(again) == sorted((p, o) for p in range(N_PARTS) for o in range(per))
    c.close()
    wait_for(lambda: ctl(b, "group", "describe", group)["groups"][0]["state"] == "Empty",
             what="group empty again")

    # One partition to an offset, clamped to the log; a shift; the latest.
    ctl(b, "group", "reset-offsets", group, "--topic", "%s:1" % topic, "--to-offset", "7",
        "--execute")
    ctl(b, "group", "reset-offsets", group, "--topic", "%s:2" % topic, "--to-offset", "999",
        "--execute")
    offs = offsets_of(ctl(b, "group", "describe", group)["groups"][0], topic)
    assert offs[1]["committed"] == 7 and offs[2]["committed"] == per
    ctl(b, "group", "reset-offsets", group, "--topic", "%s:1" % topic, "--shift-by", "-5",
        "--execute")
    ctl(b, "group", "reset-offsets", group, "--topic", "%s:2" % topic, "--shift-by", "-1000",
        "--execute")
    offs = offsets_of(ctl(b, "group", "describe", group)["groups"][0], topic)
    assert offs[1]["committed"] == 2 and offs[2]["committed"] == 0
    ctl(b, "group", "reset-offsets", group, "--all-topics", "--to-latest", "--execute")
    offs = offsets_of(ctl(b, "group", "describe", group)["groups"][0], topic)
    assert all(o["committed"] == per and o["lag"] == 0 for o in offs.values())

    # Delete: gone from the list, and describe says Dead.
    assert ctl(b, "group", "delete", group)["groups"] == [{"group": group, "error": None}]
    assert group not in [g["group"] for g in ctl(b, "group", "list")["groups"]]
    desc = ctl(b, "group", "describe", group)["groups"][0]
    assert desc["state"] == "Dead" and desc["offsets"] == []


def test_reset_to_datetime(loaded):
    b, topic = loaded
    group = unique("g")
    time.sleep(0.05)
    cut_ms = int(time.time() * 1000)
    time.sleep(0.05)
    p = producer(b.bootstrap)
    d = produce_all(p, topic, [{"value": b"late", "partition": 0}] * 4)
    assert not d.errors
    per = N_RECORDS // N_PARTS
    res = ctl(b, "group", "reset-offsets", group, "--topic", topic, "--to-datetime", str(cut_ms),
              "--execute")
    new = {o["partition"]: o["new"] for o in res["offsets"]}
    # Partition 0: the first record after the cut; the others have none
    # after it: their end.
    assert new == {0: per, 1: per, 2: per}
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut_ms // 1000 - 3600)) + ".000Z"
    res = ctl(b, "group", "reset-offsets", group, "--topic", "%s:0" % topic, "--to-datetime", iso)
    assert res["offsets"][0]["new"] == 0


def test_errors(broker):
    p = ctl(broker, "group", "frobnicate", check=False, json_out=False)
    assert p.returncode == 2 and "unknown subcommand" in p.stderr
    p = ctl(broker, "group", "reset-offsets", "g", "--to-earliest", check=False, json_out=False)
    assert p.returncode == 2 and "--topic" in p.stderr
    p = ctl(broker, "group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "yesterday",
            check=False, json_out=False)
    assert p.returncode == 2 and "--to-datetime" in p.stderr
    p = ctl(broker, "group", "reset-offsets", "g", "--topic", "no-such-topic", "--to-earliest",
            check=False, json_out=False)
    assert p.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in p.stderr
    # Deleting a group nobody made.
    p = ctl(broker, "group", "delete", unique("nothere"), check=False, json_out=False)
    assert p.returncode == 1 and "GROUP_ID_NOT_FOUND" in p.stderr
    p = subprocess.run([ctl_binary(), "--bootstrap", "127.0.0.1:1", "group", "list"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert p.returncode == 1 and "cannot connect" in p.stderr


def test_consumer_protocol_group(make_broker):
    """A consumer group of the KIP-848 protocol (members driven with
    kip848_client, see kip848.py): describe uses ConsumerGroupDescribe (type
    consumer, group and assignment epochs, each member's epoch, assignment
    and target, lag per partition), list shows and filters the type, reset
    and delete are refused while it has members and work once it is empty."""
    b = make_broker(*kip848.FAST)
    topic = unique("ctl")
    assert create_topic(b.bootstrap, topic, partitions=N_PARTS) is None
    p = producer(b.bootstrap)
    d = produce_all(p, topic, [{"value": b"v%d" % i, "partition": i % N_PARTS}
                               for i in range(N_RECORDS)])
    assert not d.errors
    cl = kip848.Client(b)
    try:
        group = unique("cg")
        g = kip848.Group(cl, group)
        for n in ("a", "b"):
            assert g.hb(n, topics=topic, assignor="range")["error"] == 0
        settled = g.settle(["a", "b"])
        owner = {tp: m for m in ("a", "b") for tp in g.assigned[m]}
        for (t, part), m in owner.items():
            assert cl.cmd("commit", name=m, group=group, topic=t, partition=part,
                          offset=part + 1)["error"] == 0

        desc = ctl(b, "group", "describe", group)["groups"][0]
        assert desc["type"] == "consumer" and desc["state"] == "Stable"
        assert desc["protocol"] == "range"
        assert desc["group_epoch"] == desc["assignment_epoch"] == settled["epoch"]
        by_id = {m["member_id"]: m for m in settled["members"]}
        assert {m["member_id"] for m in desc["members"]} == set(by_id)
        for m in desc["members"]:
            want = sorted(tuple(x) for x in by_id[m["member_id"]]["assignment"])
            assert m["member_epoch"] == settled["epoch"]
            assert sorted((a["topic"], a["partition"]) for a in m["assignment"]) == want
            assert sorted((a["topic"], a["partition"]) for a in m["target_assignment"]) == want
        offs = offsets_of(desc, topic)
        for part in range(N_PARTS):
            assert offs[part]["committed"] == part + 1
            assert offs[part]["lag"] == N_RECORDS // N_PARTS - (part + 1)
            assert by_id[offs[part]["member_id"]]
        text = ctl(b, "group", "describe", group, json_out=False).stdout
        assert "consumer protocol (KIP-848)" in text and "TARGET" in text
        assert "Group epoch %d" % settled["epoch"] in text

        listed = {x["group"]: x for x in ctl(b, "group", "list")["groups"]}
        assert listed[group]["type"] == "consumer" and listed[group]["state"] == "Stable"
        assert group in [x["group"] for x in ctl(b, "group", "list", "--type", "consumer")["groups"]]
        assert group not in [x["group"] for x in ctl(b, "group", "list", "--type",
                                                     "classic")["groups"]]

        r = ctl(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest",
                "--execute", check=False, json_out=False)
        assert r.returncode == 1 and "no members" in r.stderr
        r = ctl(b, "group", "delete", group, check=False, json_out=False)
        assert r.returncode == 1 and "NON_EMPTY_GROUP" in r.stderr

        for n in ("a", "b"):
            assert g.hb(n, epoch=-1)["error"] == 0
        assert ctl(b, "group", "describe", group)["groups"][0]["state"] == "Empty"
        res = ctl(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest",
                  "--execute")
        assert {o["partition"]: o["new"] for o in res["offsets"]} == {p: 0 for p in
                                                                     range(N_PARTS)}
        assert cl.cmd("fetch", group=group, topic=topic, partition=1)["offset"] == 0
        ctl(b, "group", "delete", group)
        assert group not in [x["group"] for x in ctl(b, "group", "list")["groups"]]
    finally:
        cl.close()

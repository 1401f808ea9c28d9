"""A protocol-level client of the KIP-848 consumer group protocol for the
integration tests (test_kip848.py, test_sluicectl.py).

The installed librdkafka (2.0.2) predates group.protocol=consumer, so the
tests speak the protocol with tests/proto/kip848_client (built next to
SLUICED, in <build>/tests/proto/): a C program on the broker's generated
codec that acts as named members, driven one command per line, answering
one JSON object per line (see its header comment for the commands).

Group tracks what each member holds as a client does: a partition is held
from the answer that gives it until the member's next heartbeat (which
reports it released), so "no partition is owned by two members" can be
checked at every answer.
"""

import json
import subprocess

import group_raw as gr
from conftest import built_path

# Error codes of the consumer protocol.
NONE = 0
UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
GROUP_MAX_SIZE_REACHED = 81
FENCED_INSTANCE_ID = 82
GROUP_SUBSCRIBED_TO_TOPIC = 86
FENCED_MEMBER_EPOCH = 110
UNRELEASED_INSTANCE_ID = 111
UNSUPPORTED_ASSIGNOR = 112
STALE_MEMBER_EPOCH = 113
INVALID_REGULAR_EXPRESSION = 128

SESSION_MS = 4000
FAST = ("--shards", "2",
        "--set", "group.consumer.session.timeout.ms=%d" % SESSION_MS,
        "--set", "group.consumer.min.session.timeout.ms=1000",
        "--set", "group.consumer.heartbeat.interval.ms=500",
        "--set", "group.consumer.min.heartbeat.interval.ms=100",
        "--set", "group.initial.rebalance.delay.ms=0")


def client_binary():
    return built_path("tests", "proto", "kip848_client")


class Client:
    """One kip848_client process: members by name, one command at a time."""

    def __init__(self, broker):
        self.p = subprocess.Popen([client_binary(), broker.bootstrap], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

    def cmd(self, line, **kw):
        words = [line] + ["%s=%s" % (k, v) for k, v in kw.items() if v is not None]
        self.p.stdin.write(" ".join(words) + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        assert out, "kip848_client exited"
        r = json.loads(out)
        assert "fail" not in r, r
        return r

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(30)


def tp_set(pairs):
    return {(t, p) for t, p in pairs or []}


class Group:
    """Members of one group driven through a Client, tracking what each
    holds as a client does: a partition is held from the answer that gives
    it until the member's next heartbeat (which reports it released)."""

    def __init__(self, cl, group):
        self.cl, self.group = cl, group
        self.held = {}       # member -> set of (topic, partition)
        self.assigned = {}   # member -> last assignment told
        self.epochs = {}     # member -> epochs seen, in order
        self.answers = 0

    def hb(self, name, **kw):
        # Sending the heartbeat releases what the last answer took away.
        self.held[name] = set(self.assigned.get(name, set()))
        r = self.cl.cmd("hb", name=name, group=self.group, **kw)
        self.answers += 1
        if r["error"] == NONE:
            self.epochs.setdefault(name, []).append(r["epoch"])
            if r["epoch"] < 0:
                self.held.pop(name, None)
                self.assigned.pop(name, None)
            elif r["assignment"] is not None:
                a = tp_set(r["assignment"])
                self.held[name] |= a
                self.assigned[name] = a
        elif r["error"] in (FENCED_MEMBER_EPOCH, gr.UNKNOWN_MEMBER_ID):
            self.held.pop(name, None)
            self.assigned.pop(name, None)
        self.check_exclusive()
        return r

    def check_exclusive(self):
        seen = {}
        for m, parts in self.held.items():
            for tp in parts:
                assert tp not in seen, "partition %s held by %s and %s" % (tp, seen[tp], m)
                seen[tp] = m

    def forget(self, name):
        self.held.pop(name, None)
        self.assigned.pop(name, None)

    def describe(self):
        d = self.cl.cmd("describe", group=self.group)["groups"][0]
        assert d["error"] == NONE, d
        return d

    def settle(self, names, rounds=30):
        """Heartbeat every member in turn until the group is Stable with
        every member at the assignment epoch; returns the description."""
        for _ in range(rounds):
            for n in names:
                r = self.hb(n)
                assert r["error"] == NONE, (n, r)
            d = self.describe()
            if d["state"] == "Stable" and all(m["epoch"] == d["assignment_epoch"]
                                              for m in d["members"]):
                return d
        raise AssertionError("group %s did not settle: %s" % (self.group, self.describe()))


def assert_exactly_once(d, topics, n_parts):
    """Every partition of topics (a name or a list) has one owner, whose
    current assignment is its target."""
    if isinstance(topics, str):
        topics = [topics]
    owners = {}
    for m in d["members"]:
        assert tp_set(m["assignment"]) == tp_set(m["target"]), m
        for t, p in m["assignment"]:
            assert (t, p) not in owners, "partition %s:%d assigned twice" % (t, p)
            owners[(t, p)] = m["member_id"]
    assert set(owners) == {(t, p) for t in topics for p in range(n_parts)}
    return owners



#!/usr/bin/python3
"""rebalance: how long a consumer group takes from the first join to every
member consuming, with real clients (confluent-kafka / librdkafka).

The topic (--partitions, default 20) is filled with a few records per
partition first. Then --members consumers (threads, one librdkafka client
each) subscribe at once; each notes when its first record arrives. The
rebalance time is from the first subscribe to the last member's first
record. Then one more member joins the stable group and the time until it
and every earlier member consume again is measured the same way (a
rebalance of a running group; each member polls throughout).

Prints one JSON line: members, join_ms (first join to all consuming),
rejoin_ms (one member added to a stable group until all consume again),
generation changes seen.

Usage: rebalance.py [--bootstrap H:P] [--members N] [--partitions N]
                    [--strategy range|roundrobin|cooperative-sticky]
"""

import argparse
import json
import sys
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def fill(bootstrap, topic, partitions, per_partition=50):
    a = AdminClient({"bootstrap.servers": bootstrap})
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    fs[topic].result(timeout=30)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=b"r%d" % i, partition=part)
    assert p.flush(30) == 0


class Member(threading.Thread):
    def __init__(self, bootstrap, group, topic, strategy, start_evt, stop_evt):
        super().__init__(daemon=True)
        self.c = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "partition.assignment.strategy": strategy,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 50,
        })
        self.topic = topic
        self.cooperative = strategy == "cooperative-sticky"
        self.start_evt, self.stop_evt = start_evt, stop_evt
        self.first = None       # time of the first record
        self.assigned_at = []   # times assignments arrived
        self.since = None       # after this time, the next record counts as "consuming"
        self.consuming_at = None
        self.lock = threading.Lock()

    def on_assign(self, c, parts):
        with self.lock:
            self.assigned_at.append(time.monotonic())
        # Read from the start after each assignment, so a member always
        # has records to show that it consumes.
        for tp in parts:
            tp.offset = OFFSET_BEGINNING
        if self.cooperative:
            c.incremental_assign(parts)
        else:
            c.assign(parts)

    def mark(self, since):
        with self.lock:
            self.since = since
            self.consuming_at = None

    def run(self):
        self.start_evt.wait()
        self.c.subscribe([self.topic], on_assign=self.on_assign)
        while not self.stop_evt.is_set():
            m = self.c.poll(0.05)
            if m is None or m.error():
                continue
            now = time.monotonic()
            with self.lock:
                if self.first is None:
                    self.first = now
                if self.since is not None and self.consuming_at is None and now > self.since:
                    self.consuming_at = now
        self.c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=20)
    ap.add_argument("--strategy", default="range")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    topic = "rebalance-" + uuid.uuid4().hex[:8]
    group = "rb-" + uuid.uuid4().hex[:8]
    fill(a.bootstrap, topic, a.partitions)

    start, stop = threading.Event(), threading.Event()
    members = [Member(a.bootstrap, group, topic, a.strategy, start, stop)
               for _ in range(a.members)]
    for m in members:
        m.start()
    t0 = time.monotonic()
    start.set()
    deadline = t0 + a.timeout
    while any(m.first is None for m in members):
        if time.monotonic() > deadline:
            sys.exit("rebalance: %d of %d members consumed within %d s" % (
                sum(m.first is not None for m in members), a.members, a.timeout))
        time.sleep(0.005)
    join_ms = (max(m.first for m in members) - t0) * 1000

    # One more member: every member must get a new assignment and consume
    # after it. A member's on_assign re-reads from the start, so each has
    # records to consume once its new assignment arrives.
    time.sleep(1.0)
    t1 = time.monotonic()
    for m in members:
        m.mark(t1)
    extra_start = threading.Event()
    extra = Member(a.bootstrap, group, topic, a.strategy, extra_start, stop)
    extra.mark(t1)
    extra.start()
    extra_start.set()
    everyone = members + [extra]
    deadline = t1 + a.timeout
    while True:
        done = [m for m in everyone
                if m.consuming_at is not None and any(t > t1 for t in m.assigned_at)]
        if len(done) == len(everyone):
            break
        if time.monotonic() > deadline:
            sys.exit("rebalance: after a join, %d of %d members consuming within %d s" % (
                len(done), len(everyone), a.timeout))
        time.sleep(0.005)
    rejoin_ms = (max(m.consuming_at for m in everyone) - t1) * 1000
    stop.set()
    for m in everyone:
        m.join(timeout=30)
    print(json.dumps({"members": a.members, "partitions": a.partitions,
                      "strategy": a.strategy, "join_ms": round(join_ms, 1),
                      "rejoin_ms": round(rejoin_ms, 1)}))


if __name__ == "__main__":
    main()

"""A group consumer process for test_groups.py (confluent-kafka).

Subscribes to TOPIC in GROUP and appends one line per event to OUT:

    start
    assign P,P,...        the assignment after a rebalance (sorted; "" when none)
    cb assign|revoke|lost N   a rebalance callback with N partitions
    rec PARTITION OFFSET VALUE
    commitfail ERROR
    closed

Each record is committed synchronously before it is written to OUT, and
on_revoke commits the positions again before the partitions go: a record
in OUT is one whose offset is committed, so when the process is killed
nothing it reported is delivered again, and nothing is lost. Stops (closing the consumer, which leaves the
group) when STOPFILE exists.

usage: group_consumer.py BOOTSTRAP TOPIC GROUP OUT STOPFILE [JSON-CONFIG]
"""

import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException


def main():
    bootstrap, topic, group, out_path, stop_path = sys.argv[1:6]
    extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    out = open(out_path, "a", buffering=1)

    def say(line):
        out.write(line + "\n")

    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    conf.update(extra)
    c = Consumer(conf)

    def commit_positions():
        try:
            c.commit(asynchronous=False)
        except KafkaException as e:
            # Nothing consumed since the last commit, or the generation is
            # gone: either way nothing unreported is lost.
            if e.args[0].code() != -168:  # _NO_OFFSET
                say("commitfail %s" % e.args[0])

    def on_assign(consumer, parts):
        say("cb assign %d" % len(parts))

    def on_revoke(consumer, parts):
        say("cb revoke %d" % len(parts))
        commit_positions()

    def on_lost(consumer, parts):
        say("cb lost %d" % len(parts))

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    say("start")
    last = None
    while not os.path.exists(stop_path):
        # One record at a time, committed before it is reported: a batch
        # taken by consume() may straddle a rebalance whose on_revoke
        # commits positions past records the batch then carries.
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            try:
                res = c.commit(message=m, asynchronous=False) or []
                ok = all(tp.error is None for tp in res)
            except KafkaException as e:
                say("commitfail %s" % e.args[0])
                ok = False
            if ok:
                say("rec %d %d %s" % (m.partition(), m.offset(), m.value().decode()))
        now = ",".join(str(tp.partition) for tp in sorted(c.assignment(),
                                                          key=lambda tp: tp.partition))
        if now != last:
            say("assign %s" % now)
            last = now
    c.close()
    say("closed")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        time.sleep(0)

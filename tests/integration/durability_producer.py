"""The producer process of the kill -9 tests (helpers.Producers): produces
continuously with acks=all and enable.idempotence=true, and appends one line
per delivery report to OUT:

    start
    ok PARTITION OFFSET VALUE
    err PARTITION VALUE ERROR
    done PRODUCED UNDELIVERED

Value i is PREFIX followed by i in 8 digits (PREFIX defaults to "v"), key
the same, and goes to partition i % PARTITIONS. "start" is written just
before the first record is handed to the client. RATE (records/s, 0 or
absent: as fast as the client takes them) paces it. While STOPFILE.pause
exists it hands the client no new records (the client goes on delivering
and retrying what it holds). Stops producing when STOPFILE exists (or
after MAX messages), flushes, writes "done" and exits.
It runs in a process of its own so that the client lives on while the
broker is killed and restarted.

usage: durability_producer.py BOOTSTRAP TOPIC PARTITIONS OUT STOPFILE MAX [PREFIX [RATE]]
"""

import os
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, partitions, out_path, stop_file, max_n = sys.argv[1:7]
    prefix = sys.argv[7] if len(sys.argv) > 7 else "v"
    rate = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
    partitions = int(partitions)
    max_n = int(max_n)
    out = open(out_path, "a", buffering=1)

    def report(err, msg):
        if err is None:
            out.write("ok %d %d %s\n" % (msg.partition(), msg.offset(), msg.value().decode()))
        else:
            out.write("err %d %s %s\n" % (msg.partition(), msg.value().decode(),
                                          str(err).replace("\n", " ")))

    p = Producer({
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "acks": "all",
        "enable.idempotence": True,
        "message.timeout.ms": 120000,
        "linger.ms": 2,
        "socket.timeout.ms": 10000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "queue.buffering.max.messages": 20000,
    })
    pause_file = stop_file + ".pause"
    out.write("start\n")
    t0 = time.monotonic()
    i = 0
    while i < max_n and not os.path.exists(stop_file):
        if os.path.exists(pause_file):
            paused = time.monotonic()
            p.poll(0.01)
            t0 += time.monotonic() - paused  # no burst to catch up afterwards
            continue
        value = "%s%08d" % (prefix, i)
        try:
            p.produce(topic, value=value.encode(), key=value.encode(),
                      partition=i % partitions, on_delivery=report)
            i += 1
        except BufferError:
            p.poll(0.05)
            continue
        if i % 50 == 0:
            p.poll(0)
            # a steady stream rather than one huge burst
            ahead = t0 + i / rate - time.monotonic() if rate > 0 else 0.0
            time.sleep(max(ahead, 0.001))
    left = p.flush(90)
    out.write("done %d %d\n" % (i, left))
    out.close()


if __name__ == "__main__":
    main()

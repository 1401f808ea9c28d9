"""Helper process for test_durability: produces continuously with acks=all and
enable.idempotence=true, and appends one line per delivery report to OUT:

    ok PARTITION OFFSET VALUE
    err PARTITION VALUE ERROR

Value i goes to partition i % PARTITIONS. Stops producing when STOPFILE
exists (or after MAX messages), flushes, writes "done PRODUCED" and exits.

usage: durability_producer.py BOOTSTRAP TOPIC PARTITIONS OUT STOPFILE MAX
"""

import os
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, partitions, out_path, stop_file, max_n = sys.argv[1:7]
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
    i = 0
    while i < max_n and not os.path.exists(stop_file):
        value = "v%08d" % i
        try:
            p.produce(topic, value=value.encode(), key=value.encode(),
                      partition=i % partitions, on_delivery=report)
            i += 1
        except BufferError:
            p.poll(0.05)
            continue
        if i % 50 == 0:
            p.poll(0)
            time.sleep(0.001)  # keep a steady stream rather than one huge burst
    left = p.flush(90)
    out.write("done %d %d\n" % (i, left))
    out.close()


if __name__ == "__main__":
    main()

"""confluent-kafka consumers with group.protocol=consumer (KIP-848), run as
a process of its own by test_kip848.py so that LD_LIBRARY_PATH can point
the Python binding at a librdkafka new enough for it (>= 2.4; the
installed 2.0.2 predates it; the binding passes the setting through).

Usage: kip848_rdkafka.py BOOTSTRAP TOPIC GROUP N_RECORDS. Three consumers
subscribe, each record is committed synchronously as it is consumed; then
two close and the third must end up with all six partitions. Prints one
JSON line: librdkafka's version, records consumed (and duplicates), the
partitions the last one holds and how long that took, committed offsets.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition, libversion


def consumer(boot, group, name):
    return Consumer({"bootstrap.servers": boot, "group.id": group,
                     "group.protocol": "consumer", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "client.id": name,
                     "broker.address.family": "v4"})


def main():
    boot, topic, group, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cons = [consumer(boot, group, "c%d" % i) for i in range(3)]
    for c in cons:
        c.subscribe([topic])
    seen, dups, errors = {}, 0, []
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        for i, c in enumerate(cons):
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    errors.append(str(m.error()))
                continue
            key = (m.partition(), m.offset())
            dups += key in seen
            seen[key] = i
            c.commit(message=m, asynchronous=False)
    for c in cons[1:]:
        c.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and len(cons[0].assignment()) < 6:
        cons[0].poll(0.2)
    took = time.monotonic() - t0
    last = sorted(tp.partition for tp in cons[0].assignment())
    committed = cons[0].committed([TopicPartition(topic, p) for p in range(6)], timeout=10)
    cons[0].close()
    print(json.dumps({"librdkafka": libversion()[0], "consumed": len(seen), "duplicates": dups,
                      "errors": errors, "consumers_used": len(set(seen.values())),
                      "last": last, "takeover_s": took,
                      "committed": [tp.offset for tp in committed]}))


if __name__ == "__main__":
    main()

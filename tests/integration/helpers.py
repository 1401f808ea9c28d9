"""Client helpers shared by the integration tests (confluent-kafka and kcat)."""

import os
import subprocess
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# librdkafka settings that keep every client call bounded and reconnects fast.
COMMON = {
    "broker.address.family": "v4",
    "socket.timeout.ms": 10000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "topic.metadata.refresh.interval.ms": 5000,
}


def producer(bootstrap, **extra):
    conf = dict(COMMON)
    conf.update({
        "bootstrap.servers": bootstrap,
        "message.timeout.ms": 30000,
        "linger.ms": 5,
    })
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Producer(conf)


def consumer(bootstrap, **extra):
    conf = dict(COMMON)
    conf.update({
        "bootstrap.servers": bootstrap,
        # group.id is mandatory in confluent-kafka-python, but we only assign().
        "group.id": "sluice-test-" + uuid.uuid4().hex[:8],
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 100,
        "auto.offset.reset": "earliest",
    })
    conf.update({k.replace("_", "."): v for k, v in extra.items()})
    return Consumer(conf)


def admin(bootstrap):
    conf = dict(COMMON)
    conf["bootstrap.servers"] = bootstrap
    return AdminClient(conf)


def create_topic(bootstrap, name, partitions=1, config=None, replication_factor=1,
                 validate_only=False, timeout=20):
    """Create a topic; returns None on success or the KafkaError."""
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions,
                                   replication_factor=replication_factor,
                                   config=config or {})],
                         operation_timeout=10, request_timeout=15,
                         validate_only=validate_only)
    try:
        fs[name].result(timeout=timeout)
        return None
    except KafkaException as e:
        return e.args[0]


def list_topics(bootstrap, topic=None, timeout=10):
    return admin(bootstrap).list_topics(topic=topic, timeout=timeout)


class Delivery:
    """Collects delivery reports."""

    def __init__(self):
        self.ok = []  # (partition, offset, key, value)
        self.errors = []  # (KafkaError, value)

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append((err, msg.value()))
        else:
            self.ok.append((msg.partition(), msg.offset(), msg.key(), msg.value()))


def flush(p, timeout=60):
    left = p.flush(timeout)
    assert left == 0, "%d messages still undelivered after %d s" % (left, timeout)


def produce_all(p, topic, msgs, timeout=60):
    """msgs: iterable of dicts of Producer.produce kwargs (value, key, partition,
    headers, timestamp). Returns the Delivery, after flush."""
    d = Delivery()
    for m in msgs:
        while True:
            try:
                p.produce(topic, on_delivery=d, **m)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    flush(p, timeout)
    return d


def msg_tuple(m):
    return {
        "partition": m.partition(),
        "offset": m.offset(),
        "key": m.key(),
        "value": m.value(),
        "headers": m.headers() or [],
        "timestamp": m.timestamp(),
    }


def consume(bootstrap, topic, partitions=(0,), count=None, start=None, timeout=30, **extra):
    """Assign the partitions (from start, default the beginning) and read until
    `count` messages arrived (or, with count None, until every partition hit
    its end). Returns {partition: [msg dicts]}."""
    from confluent_kafka import OFFSET_BEGINNING

    c = consumer(bootstrap, **extra)
    try:
        start = OFFSET_BEGINNING if start is None else start
        c.assign([TopicPartition(topic, p, start) for p in partitions])
        out = {p: [] for p in partitions}
        n = 0
        eof = set()
        deadline = time.monotonic() + timeout
        while True:
            if count is not None and n >= count:
                break
            if count is None and eof >= set(partitions):
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    "consume %s: got %d of %s messages in %d s (eof on %s)"
                    % (topic, n, count, timeout, sorted(eof)))
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                raise AssertionError("consumer error: %s" % m.error())
            eof.discard(m.partition())
            out[m.partition()].append(msg_tuple(m))
            n += 1
        return out
    finally:
        c.close()


def kcat(*args, input=None, timeout=60, check=True):
    r = subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("kcat %s exited %d: %s" % (" ".join(args), r.returncode,
                                                         r.stderr.decode(errors="replace")))
    return r


# librdkafka <= 2.11.0 (Debian has 2.0.2) only compresses gzip/snappy/lz4 when the
# broker's Produce range reaches down to v0 (rd_kafka_msgset_writer_select_caps asks
# for Produce in [0, 0]). sluiced, like Kafka 4.0, lists Produce from v0 in
# ApiVersions (while serving v3-11), so gzip, snappy and zstd arrive compressed.
# lz4 also needs librdkafka's "LZ4" feature, which it keys on FindCoordinator v0
# (rdkafka_feature.c): until the group coordinator exists, librdkafka sends lz4
# batches uncompressed. kafka-python and the raw tests cover broker-side lz4.
def expected_librdkafka_codecs(codec):
    """What librdkafka 2.0.2 sends for compression.type=codec to sluiced."""
    return {"none"} if codec == "lz4" else {codec}


def stored_codecs(bootstrap, topic, partition=0):
    """Codec names of the batches the broker returns for a partition (raw Fetch)."""
    import kafka_raw as kr
    with kr.Conn.to(bootstrap) as c:
        err, hw, data = c.fetch(topic, partition, 0)
        assert err == 0
        return kr.batch_codecs(data)


def read_acks(path):
    """The delivery log written by durability_producer.py: (ok, errs, done) with
    ok [(partition, offset, value)], errs [line] and done (produced, left) or None."""
    ok, errs, done = [], [], None
    try:
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # partially written line
                parts = line.split()
                if parts[0] == "ok":
                    ok.append((int(parts[1]), int(parts[2]), parts[3]))
                elif parts[0] == "err":
                    errs.append(line.strip())
                elif parts[0] == "done":
                    done = (int(parts[1]), int(parts[2]))
    except FileNotFoundError:
        pass
    return ok, errs, done


def produce_through_kills(broker, topic, parts, tmp_path, step, pause_s=0.0, rounds=3):
    """Run durability_producer.py (idempotent, acks=all) on topic and kill -9
    the broker `rounds` times, each after `step` more acknowledgements, waiting
    for `step` more after each restart (`pause_s` between kill and start). Then
    stop the producer and let it flush. Returns (read_acks of its log, the
    rounds as (acks at kill, acks after restart), the producer process)."""
    from conftest import HERE, wait_for
    out, stop = tmp_path / "acks.txt", tmp_path / "stop"
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "durability_producer.py"), broker.bootstrap, topic,
         str(parts), str(out), str(stop), "400000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    done_rounds = []
    try:
        for rnd in range(rounds):
            before = len(read_acks(out)[0])
            wait_for(lambda: len(read_acks(out)[0]) >= before + step, timeout=60,
                     what="%d more acknowledgements before kill %d" % (step, rnd + 1))
            assert proc.poll() is None, "producer exited early"
            broker.kill()
            at_kill = len(read_acks(out)[0])
            if pause_s:
                time.sleep(pause_s)
            broker.start()
            wait_for(lambda: len(read_acks(out)[0]) >= at_kill + step, timeout=60,
                     what="%d more acknowledgements after restart %d" % (step, rnd + 1))
            done_rounds.append((at_kill, len(read_acks(out)[0])))
        stop.touch()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("producer did not finish flushing")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return read_acks(out), done_rounds, proc


def broker_stats(broker):
    """The broker's counters, summed over its shards: SIGUSR1, then the
    newest stats line of each shard in its log."""
    import re
    import signal
    from conftest import wait_for

    def lines():
        return [ln for ln in broker.log().splitlines() if "zc_sends=" in ln]
    shards = int(re.search(r"(\d+) shards on CPUs", broker.log()).group(1))
    before = len(lines())
    broker.proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: len(lines()) >= before + shards, what="the stats lines")
    total = {}
    for line in lines()[before:before + shards]:
        for k, v in re.findall(r"(\w+)=(\d+)", line):
            if k != "shard":
                total[k] = total.get(k, 0) + int(v)
    return total

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
# (rdkafka_feature.c); sluiced serves FindCoordinator since the group coordinator
# exists, so lz4 arrives compressed too.
def expected_librdkafka_codecs(codec):
    """What librdkafka 2.0.2 sends for compression.type=codec to sluiced."""
    return {codec}


def stored_codecs(bootstrap, topic, partition=0):
    """Codec names of the batches the broker returns for a partition (raw Fetch)."""
    import kafka_raw as kr
    with kr.Conn.to(bootstrap) as c:
        err, hw, data = c.fetch(topic, partition, 0)
        assert err == 0
        return kr.batch_codecs(data)


# ------------------------------------------------------------ kill -9 under load
#
# The kill -9 tests (test_crash.py, test_shards.py) run durability_producer.py
# processes (idempotent, acks=all; a process each, so that the client lives
# on while the broker is killed), kill the broker under that load with
# produce_through_kills, read the partitions back with read_log and hold them
# against the delivery reports with check_log.


class Acks:
    """What one durability_producer.py log says: ok [(partition, offset,
    value)] in delivery-report order, errs [line], done (produced,
    undelivered) or None, started (it has begun producing). update() reads
    what the producer appended since the last call (its complete lines)."""

    def __init__(self, path):
        self.path, self.pos = path, 0
        self.ok, self.errs, self.done, self.started = [], [], None, False

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return self
        complete = data[:data.rfind(b"\n") + 1]  # not a partially written line
        self.pos += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            parts = line.split()
            if parts[0] == "ok":
                self.ok.append((int(parts[1]), int(parts[2]), parts[3]))
            elif parts[0] == "err":
                self.errs.append(line.strip())
            elif parts[0] == "done":
                self.done = (int(parts[1]), int(parts[2]))
            elif parts[0] == "start":
                self.started = True
        return self

    def snapshot(self):
        c = Acks(self.path)
        c.pos, c.ok, c.errs, c.done, c.started = (self.pos, list(self.ok), list(self.errs),
                                                   self.done, self.started)
        return c


class Producers:
    """n durability_producer.py processes on one topic, each with its delivery
    log (workdir/acksI.txt) and its value prefix ("v" for one producer,
    "pI-" for several), each at up to `rate` records/s (0: as fast as it
    goes), paused and stopped together through one pause file and one stop
    file. A context manager: leaving it kills whatever still runs."""

    def __init__(self, bootstrap, topic, parts, workdir, n=1, rate=0, max_n=10**7):
        from conftest import HERE, _die_with_parent
        self.stop_file = os.path.join(str(workdir), "stop")
        self.logs, self.procs, self.outputs = [], [], []
        for i in range(n):
            path = os.path.join(str(workdir), "acks%d.txt" % i)
            prefix = "v" if n == 1 else "p%d-" % i
            output = path + ".out"  # a file, not a pipe that could fill up and block it
            with open(output, "wb") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, os.path.join(HERE, "durability_producer.py"), bootstrap,
                     topic, str(parts), path, self.stop_file, str(max_n), prefix, str(rate)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent))
            self.logs.append(Acks(path))
            self.outputs.append(output)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)

    def acks(self):
        """Every producer's Acks as they are now (copies)."""
        return [a.update().snapshot() for a in self.logs]

    def acked(self):
        """How many acknowledgements each producer has had so far."""
        return [len(a.update().ok) for a in self.logs]

    def pause(self, on):
        """Stop (on) or resume handing new records to the clients; what
        they hold is still delivered and retried."""
        if on:
            with open(self.stop_file + ".pause", "w"):
                pass
        else:
            os.unlink(self.stop_file + ".pause")

    def output(self, i):
        with open(self.outputs[i], "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def check_alive(self):
        for i, p in enumerate(self.procs):
            assert p.poll() is None, "producer %d exited early (%s): %s" % (
                i, p.returncode, self.output(i))

    def wait(self, pred, what, timeout=60):
        """Until pred([Acks]) holds; fails early if a producer died."""
        from conftest import wait_for

        def ready():
            self.check_alive()
            return pred([a.update() for a in self.logs])
        wait_for(ready, timeout=timeout, what=what)

    def finish(self, timeout=120):
        """Stop producing, let every producer flush and exit, and check that
        each delivered everything it produced without a single delivery
        error. Returns their Acks."""
        with open(self.stop_file, "w"):
            pass
        deadline = time.monotonic() + timeout
        for i, p in enumerate(self.procs):
            try:
                p.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                raise AssertionError("producer %d did not finish flushing in %d s: %s"
                                     % (i, timeout, self.output(i)))
        os.unlink(self.stop_file)
        acks = self.acks()
        for i, a in enumerate(acks):
            assert a.done is not None, "producer %d died: %s" % (i, self.output(i))
            assert not a.errs, "producer %d: delivery failures (first 5 of %d): %s" % (
                i, len(a.errs), a.errs[:5])
            produced, left = a.done
            assert left == 0 and len(a.ok) == produced, (
                "producer %d: %d produced, %d acknowledged, %d undelivered"
                % (i, produced, len(a.ok), left))
        return acks


def produce_through_kills(broker, prod, rounds=3, step=None, delay_s=None, pause_s=0.0,
                          after_restart=None):
    """kill -9 the broker `rounds` times while the Producers `prod` run and
    start it again after `pause_s` (seconds, or a function of the round).
    When to kill: after `step` more acknowledgements, or `delay_s(round)`
    seconds after the load started (round 0: every producer has begun;
    later rounds: every producer has had an acknowledgement since the
    restart). after_restart(round), if given, runs right after each
    restart, while the producers retry what they hold but take no new
    records (so that a check there has a bounded log to read, however many
    rounds). Returns the rounds as (acknowledgements at the kill,
    acknowledgements once all resumed)."""
    assert (step is None) != (delay_s is None), "step or delay_s"
    prod.wait(lambda acks: all(a.started for a in acks), "the producers to start")
    done_rounds = []
    for rnd in range(rounds):
        if step is not None:
            before = sum(prod.acked())
            prod.wait(lambda acks: sum(len(a.ok) for a in acks) >= before + step,
                      "%d more acknowledgements before kill %d" % (step, rnd + 1))
        else:
            time.sleep(delay_s(rnd))
        prod.check_alive()
        broker.kill()
        at_kill = prod.acked()
        time.sleep(pause_s(rnd) if callable(pause_s) else pause_s)
        broker.start()
        if after_restart is not None:
            prod.pause(True)
            try:
                after_restart(rnd)
            finally:
                prod.pause(False)
        prod.wait(lambda acks: all(len(a.ok) > n for a, n in zip(acks, at_kill)),
                  "an acknowledgement for every producer after restart %d" % (rnd + 1))
        done_rounds.append((sum(at_kill), sum(prod.acked())))
    return done_rounds


def read_log(bootstrap, topic, partitions, timeout=60):
    """Every record of the partitions from offset 0 to the high watermark
    they have when it is called, as {partition: [(offset, value as str)]},
    through a consumer that checks every batch's CRC (in C: these logs are
    too long for kafka_raw's pure-Python CRC). A fixed end, not end-of-
    partition events: under load, those may never come."""
    from confluent_kafka import OFFSET_BEGINNING

    c = consumer(bootstrap, check_crcs=True, enable_partition_eof=False)
    try:
        end = {}
        for p in partitions:
            w = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assert w is not None, "no high watermark for %s-%d in 10 s" % (topic, p)
            end[p] = w[1]
        log = {p: [] for p in partitions}
        left = {p for p in partitions if end[p] > 0}
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in left])
        deadline = time.monotonic() + timeout
        while left:
            assert time.monotonic() < deadline, (
                "read_log %s: after %d s, read %s of %s" % (
                    topic, timeout, {p: len(log[p]) for p in partitions}, end))
            for m in c.consume(10000, 0.5):
                assert m.error() is None, "consumer error: %s" % m.error()
                p, o = m.partition(), m.offset()
                if o < end[p]:
                    log[p].append((o, m.value().decode()))
                if o >= end[p] - 1:
                    left.discard(p)
        return log
    finally:
        c.close()


def check_log(log, acks, parts, exact=False):
    """Hold a log (read_log) against the producers' delivery reports (a list
    of Acks): offsets contiguous from 0; no value twice; each producer's
    values in the order it produced them, on the partition it chose;
    every acknowledged record at its acknowledged offset, each producer's
    acknowledgements in increasing offset order per partition. With exact
    (the producers have finished), the log holds the acknowledged records
    and nothing else. Returns the number of records in the log."""
    where = {}
    for p, recs in log.items():
        offs = [o for o, _ in recs]
        assert offs == list(range(len(offs))), (
            "partition %d: offsets not contiguous from 0: first gap after %s" % (
                p, next((a for a, b in zip(offs, offs[1:]) if b != a + 1), offs[:1])))
        last = {}
        for o, v in recs:
            assert v not in where, "%s twice: at %d/%d and %d/%d" % (v, *where[v], p, o)
            where[v] = (p, o)
            tag, seq = v[:-8], int(v[-8:])  # durability_producer.py's PREFIX%08d
            assert seq % parts == p, "partition %d offset %d: %s belongs to %d" % (
                p, o, v, seq % parts)
            assert seq > last.get(tag, -1), "partition %d offset %d: %s after %s%08d" % (
                p, o, v, tag, last[tag])
            last[tag] = seq
    for i, a in enumerate(acks):
        prev = {}
        for p, o, v in a.ok:
            assert where.get(v) == (p, o), (
                "producer %d: acknowledged %s at %d/%d, the log has it at %s (there: %r)"
                % (i, v, p, o, where.get(v), dict(log[p]).get(o) if p in log else None))
            assert o > prev.get(p, -1), "producer %d: acknowledged %d/%d after %d/%d" % (
                i, p, o, p, prev[p])
            prev[p] = o
    if exact:
        acked = sum(len(a.ok) for a in acks)
        assert len(where) == acked, "%d records in the log, %d acknowledged" % (
            len(where), acked)
    return len(where)


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

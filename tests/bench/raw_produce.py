#!/usr/bin/python3
"""raw_produce: the cheapest Kafka producer there is, to show what the broker
can take when the client costs next to nothing.

A real client (librdkafka, in sluice-bench) builds every batch, copies every
value and checksums it: on a 2-core machine that leaves the broker a core
or less. This one builds one record batch per partition once (CRC and all;
the base offset the broker assigns is outside the CRC, so the same bytes
are valid every time) and then only sends it: each ProduceRequest (v3) is a
fresh 4-byte size and header followed by the same body, gathered by one
sendmsg, so the client's cost is the kernel's copy into the socket.

Modes:
  throughput (default)  one connection per partition leader (per-shard
                        endpoints give one per shard), --inflight requests
                        outstanding on each, for --duration seconds.
  --rate R              one connection, one request at a time, sent on an
                        open-loop schedule of R per second; latency is from
                        the scheduled send time (coordinated omission
                        corrected) to the response.
  --rate R --probe P    the same, timed by the C probe P (produce_probe.c,
                        built as build*/tests/bench/produce_probe): no
                        interpreter or timer slack in the figures.
  --probe-cpu C         run the probe on CPU C only; "leader" picks the CPU
                        of the shard that leads the partition, for a broker
                        with per-shard endpoints (shard i on port+i) whose
                        shards sit on this process's allowed CPUs in order
                        (sluiced's default pinning). Client and shard on one
                        core hand each other the request and the response
                        without waking the other core.

Prints one line of JSON: mb_per_s, records_per_s, requests, errors (responses
with a non-zero error code), latency_us percentiles (rate mode: per request;
throughput mode: request round trips), client_cpu_s.

Usage: raw_produce.py [--bootstrap H:P] [--topic T] [--partitions N]
         [--record-size B] [--batch-bytes B] [--inflight N] [--acks 0|1|-1]
         [--duration S] [--rate R [--probe PATH [--probe-cpu C|leader]]]
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import tempfile
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kafka_raw as kr  # noqa: E402

TOPIC_EXISTS = 36


def batch_for(record_size, batch_bytes):
    """One uncompressed batch of about batch_bytes of record_size values."""
    n = max(1, batch_bytes // (record_size + 8))
    value = bytes((i * 7) & 0xFF for i in range(record_size))
    return kr.record_batch([(None, value)] * n), n


def produce_body(topic, partition, batch, acks):
    return kr.produce_body_v3_multi([(topic, [(partition, batch)])], acks, 30000)


class Link:
    """One connection sending one prebuilt body, pipelined."""

    def __init__(self, host, port, body, records, acks):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.body = body
        self.records = records
        self.acks = acks
        self.corr = 0
        self.buf = bytearray()
        self.sent = self.acked = self.errors = 0
        self.rtts = []

    def send(self):
        self.corr += 1
        hdr = kr.i16(kr.PRODUCE) + kr.i16(3) + kr.i32(self.corr) + kr.string("raw-produce")
        self.sock.sendmsg([kr.i32(len(hdr) + len(self.body)) + hdr, self.body])
        self.sent += 1

    def recv(self):
        """One response; returns its error code."""
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack_from(">i", self.buf)[0]:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise kr.ConnectionClosed("broker closed the connection")
            self.buf += chunk
        size = struct.unpack_from(">i", self.buf)[0]
        r = kr.Reader(bytes(self.buf[4:4 + size]))
        del self.buf[:4 + size]
        r.i32()  # correlation id: responses come in order
        topics = r.array(lambda r: (r.string(), r.array(
            lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
        err = topics[0][1][0][1]
        self.acked += 1
        if err != 0:
            self.errors += 1
        return err


def leaders(bootstrap, topic, partitions):
    """Create the topic (if new); the leader's (host, port) per partition,
    and how many brokers the metadata lists."""
    host, port = bootstrap.rsplit(":", 1)
    with kr.Conn(host, int(port)) as c:
        err, msg = c.create_topic(topic, partitions=partitions)
        if err not in (0, TOPIC_EXISTS):
            sys.exit("raw_produce: creating %s: error %d %s" % (topic, err, msg))
        for _ in range(100):
            md = c.metadata([topic])
            t = md["topics"].get(topic)
            if t and t["error"] == 0 and len(t["partitions"]) == partitions:
                break
            time.sleep(0.1)
        else:
            sys.exit("raw_produce: topic %s has no metadata" % topic)
        brokers = {b[0]: (b[1], b[2]) for b in md["brokers"]}
        return {p["partition"]: brokers[p["leader"]] for p in t["partitions"]}, len(brokers)


def pct(sorted_us, q):
    if not sorted_us:
        return 0
    return sorted_us[min(len(sorted_us) - 1, int(q * len(sorted_us)))]


def run_throughput(a, lead, batch, n):
    links = [Link(*lead[p], produce_body(a.topic, p, batch, a.acks), n, a.acks)
             for p in sorted(lead)]
    stop = time.monotonic() + a.duration
    no_resp = a.acks == 0

    def pump(lk):
        sent_at = []
        while time.monotonic() < stop:
            while lk.sent - lk.acked < a.inflight and not no_resp:
                sent_at.append(time.monotonic())
                lk.send()
            if no_resp:
                lk.send()
                lk.acked += 1
                continue
            lk.recv()
            lk.rtts.append(time.monotonic() - sent_at[lk.acked - 1])
        while lk.acked < lk.sent:
            lk.recv()

    t0 = time.monotonic()
    threads = [threading.Thread(target=pump, args=(lk,)) for lk in links]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return links, time.monotonic() - t0


def run_rate(a, lead, batch, n):
    p = sorted(lead)[0]
    lk = Link(*lead[p], produce_body(a.topic, p, batch, a.acks), n, a.acks)
    period = 1.0 / a.rate
    t0 = time.monotonic()
    stop = t0 + a.duration
    due = t0
    while due < stop:
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        lk.send()
        lk.recv()
        lk.rtts.append(time.monotonic() - due)  # from the scheduled time
        due += period
    return [lk], time.monotonic() - t0


def run_probe(a, lead, n_brokers, batch):
    """--probe: the C probe sends the frame built here."""
    p = sorted(lead)[0]
    body = produce_body(a.topic, p, batch, a.acks)
    hdr = kr.i16(kr.PRODUCE) + kr.i16(3) + kr.i32(1) + kr.string("raw-produce")
    frame = kr.i32(len(hdr) + len(body)) + hdr + body
    # Response v3: correlation id, topics[1]: name, partitions[1]: index, error.
    err_off = 4 + 4 + 2 + len(a.topic.encode()) + 4 + 4
    pin = None
    if a.probe_cpu == "leader":
        shard = lead[p][1] - int(a.bootstrap.rsplit(":", 1)[1])
        allowed = sorted(os.sched_getaffinity(0))
        if n_brokers < 2 or not 0 <= shard < len(allowed):
            sys.exit("raw_produce: --probe-cpu leader: the leader's port is not port+i of a "
                     "shard on an allowed CPU (per-shard endpoints?)")
        pin = allowed[shard]
    elif a.probe_cpu is not None:
        pin = int(a.probe_cpu)
    with tempfile.NamedTemporaryFile(prefix="probe-frame-") as f:
        f.write(frame)
        f.flush()
        out = subprocess.run([a.probe, f.name, lead[p][0], str(lead[p][1]), str(a.rate),
                              str(a.duration), str(err_off)],
                             stdout=subprocess.PIPE, check=False, text=True,
                             preexec_fn=None if pin is None else
                             lambda: os.sched_setaffinity(0, {pin}))
    if not out.stdout.strip():
        sys.exit("raw_produce: the probe failed (exit %d)" % out.returncode)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["batch_bytes"] = len(batch)
    res["seconds"] = a.duration
    res["probe_cpu"] = pin
    print(json.dumps(res))
    return 1 if res["errors"] else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="raw-produce")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--record-size", type=int, default=65536)
    ap.add_argument("--batch-bytes", type=int, default=1 << 20)
    ap.add_argument("--inflight", type=int, default=4)
    ap.add_argument("--acks", type=int, default=1, choices=(0, 1, -1))
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--rate", type=float, default=0, help="requests/s, one in flight")
    ap.add_argument("--probe", help="with --rate: time with this produce_probe binary")
    ap.add_argument("--probe-cpu", help="run the probe on this CPU, or 'leader'")
    a = ap.parse_args()
    if a.rate > 0 and a.acks == 0:
        ap.error("--rate measures acknowledgements: acks 0 has none")
    if a.probe_cpu is not None and not a.probe:
        ap.error("--probe-cpu needs --probe")
    if a.probe_cpu not in (None, "leader") and not a.probe_cpu.isdigit():
        ap.error("--probe-cpu: a CPU number or 'leader'")

    try:
        lead, n_brokers = leaders(a.bootstrap, a.topic, a.partitions)
    except OSError as e:
        sys.exit("raw_produce: %s: %s" % (a.bootstrap, e))
    batch, n = batch_for(a.record_size, a.batch_bytes)
    if a.probe:
        if a.rate <= 0:
            ap.error("--probe needs --rate")
        return run_probe(a, lead, n_brokers, batch)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    links, secs = (run_rate if a.rate > 0 else run_throughput)(a, lead, batch, n)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    acked = sum(lk.acked for lk in links)
    rtts = sorted(int(r * 1e6) for lk in links for r in lk.rtts)
    out = {
        "mb_per_s": round(acked * len(batch) / secs / 1e6, 1),
        "records_per_s": round(acked * n / secs),
        "requests": acked,
        "errors": sum(lk.errors for lk in links),
        "batch_bytes": len(batch),
        "seconds": round(secs, 2),
        "latency_us": {k: pct(rtts, q) for k, q in
                       (("p50", .5), ("p90", .9), ("p99", .99), ("p99_9", .999))},
        "client_cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2),
    }
    out["latency_us"]["max"] = rtts[-1] if rtts else 0
    print(json.dumps(out))
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

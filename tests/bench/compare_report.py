#!/usr/bin/env python3
"""The JSON checks and the markdown report of tests/bench/compare.sh.

    compare_report.py check RESULT.json
        a sluice-bench --json result: exit 0 printing a one-line summary,
        or exit 1 printing why it is not usable
    compare_report.py check-limit RESULT.json
        the same for an `iperf3 -J` or fio JSON output
    compare_report.py median-rate INDEX KIND VARIANT PARTS SIZE
        the median records/s of one cell's good runs (nothing if none)
    compare_report.py report RESULTS CHARTS LINKBASE
        the markdown section on stdout, from RESULTS/index.tsv and
        RESULTS/meta.tsv (written by compare.sh) and the JSON files beside
        them; charts drawn with plot.py into CHARTS and linked relative to
        LINKBASE; exit 1 if a chart could not be drawn

Index lines (tab-separated): kind variant partitions size tag run status
reason file server_cpu_s command. Python's standard library only.
"""
import json
import os
import re
import statistics
import sys


FIELDS = "kind variant parts size tag run status reason file cpu cmd".split()
VARIANTS = [
    ("sluice-acks1", "Sluice, acks=1"),
    ("sluice-acksall", "Sluice, acks=all"),
    ("redis-everysec", "Redis, AOF everysec"),
    ("redis-always", "Redis, AOF always"),
    ("nats", "NATS JetStream"),
]
NAME = dict(VARIANTS)
SIZES = ("1024", "100")
PARTS = ("1", "16")
KINDS = (("max", "max-rate produce"),
         ("lat", "latency at a rate: R = a share of the median max records/s"),
         ("e2e", "hot-tail consume"),
         ("one", "one request in flight"),
         ("catchup-write", "catch-up write"),
         ("catchup", "catch-up read from the start"))
# An open-loop run that sent less than this share of its rate fell behind:
# its latency is then the client's queue.
BEHIND = 0.9


def cache_note(m):
    """Where the catch-up reads found their data, as the run says."""
    if m.get("catchup_cache_dropped") == "yes":
        return ("The page cache was dropped before each read (`sync; echo 3 >"
                " /proc/sys/vm/drop_caches`), so Sluice and NATS read from the disk.")
    return ("The page cache was not dropped between reads, so reads after the first may"
            " come from memory (%s GiB): Sluice writes with O_DIRECT, so its first read"
            " is from the disk; NATS writes through the page cache." % m["memory_gib"])


def last_json(path):
    try:
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def whole_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt_num(x):
    """Three significant digits, no exponent."""
    if x >= 100:
        return "{:,.0f}".format(x)
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def fmt_us(us):
    if us < 1000:
        return "%d us" % us
    if us < 1e6:
        return "%s ms" % fmt_num(us / 1e3)
    return "%s s" % fmt_num(us / 1e6)


def fmt_size(n):
    n = int(n)
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return "%d %s" % (n // div, unit)
    return "%d B" % n


def summary(r):
    lat = r.get("latency_us", {})
    text = "%s MB/s, %s records/s" % (fmt_num(r["mb_per_s"]), fmt_num(r["records_per_s"]))
    if r.get("latency") not in (None, "none"):
        text += ", %s p50 %s p99 %s" % (r["latency"], fmt_us(lat["p50"]), fmt_us(lat["p99"]))
    return text


def problem(r):
    if r is None:
        return "no JSON line on stdout"
    if r.get("records", 0) <= 0:
        return "no records measured"
    p = r.get("produce")
    if p is not None and p.get("failed", 0) > 0:
        return "%d records failed" % p["failed"]
    f = r.get("fetch")
    if f is not None and (f.get("records", 0) <= 0 or f.get("complete") is False):
        return "the consumer read %d of %d records" % (f.get("records", 0), f.get("wanted", 0))
    if r.get("complete") is False:
        return "incomplete run"
    return None


def cmd_check(path):
    r = last_json(path)
    why = problem(r)
    print(why or summary(r))
    return 1 if why else 0


def limit_value(j):
    """(kind, value) of an iperf3 or fio JSON output, or None."""
    if "end" in j:
        bps = j["end"].get("sum_received", {}).get("bits_per_second", 0)
        return ("iperf", bps / 8e6) if bps > 0 else None
    jobs = j.get("jobs")
    if jobs:
        job = jobs[0]
        sync = job.get("sync", {}).get("lat_ns", {})
        if sync.get("N", 0) > 0:
            return ("sync", job)
        bw = job.get("write", {}).get("bw_bytes", 0)
        return ("seq", bw / 1e6) if bw > 0 else None
    return None


def cmd_check_limit(path):
    try:
        with open(path) as f:
            j = json.load(f)
    except (OSError, ValueError) as e:
        print("unreadable JSON: %s" % e)
        return 1
    v = limit_value(j)
    if v is None:
        print("no bandwidth or latency in it")
        return 1
    if v[0] == "sync":
        pct = v[1]["sync"]["lat_ns"]["percentile"]
        print("fdatasync p50 %s p99 %s" % (fmt_us(pct["50.000000"] / 1e3), fmt_us(pct["99.000000"] / 1e3)))
    else:
        print("%s MB/s" % fmt_num(v[1]))
    return 0


def read_index(path):
    rows = []
    base = os.path.dirname(path)
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) != len(FIELDS):
                continue
            row = dict(zip(FIELDS, cols))
            row["path"] = os.path.join(base, row["file"])
            row["json"] = None
            if row["status"] == "ok":
                row["json"] = (whole_json(row["path"]) if row["kind"] == "limit"
                               else last_json(row["path"]))
            if row["status"] == "ok" and row["json"] is None:
                row["status"], row["reason"] = "failed", "no JSON"
            rows.append(row)
    return rows


def select(rows, kind, variant=None, parts=None, size=None, tag=None):
    return [r for r in rows if r["kind"] == kind
            and variant in (None, r["variant"]) and parts in (None, r["parts"])
            and size in (None, r["size"]) and tag in (None, r["tag"])]


def good(rows):
    return [r for r in rows if r["status"] == "ok"]


def cmd_median_rate(index, kind, variant, parts, size):
    ok = good(select(read_index(index), kind, variant, parts, size))
    if ok:
        print(int(statistics.median(r["json"]["records_per_s"] for r in ok)))
    return 0


# ---- values of one run -------------------------------------------------------

def produce_mb(r):
    return r["json"]["produce"]["mb_per_s"]


def headline_mb(r):
    return r["json"]["mb_per_s"]


def lat(q):
    return lambda r: r["json"]["latency_us"][q]


def cpu_per_gb(r):
    """Server core-seconds per GB moved in the run (all of it, warm-up too)."""
    if r["cpu"] in ("", "-"):
        return None
    j = r["json"]
    if "produce" in j:
        moved = j["produce"]["acked_total"] * j["record_size"]
    else:
        moved = j["fetch"]["bytes"]
    return float(r["cpu"]) / (moved / 1e9) if moved > 0 else None


def behind(r):
    j = r["json"]
    rate = j["produce"].get("rate", 0)
    return rate > 0 and j["produce"]["records_per_s"] < BEHIND * rate


# ---- cells --------------------------------------------------------------------

def stats(rows, value):
    """(median, min, max, runs, failed runs) of VALUE over the good runs."""
    vals = [v for v in (value(r) for r in good(rows)) if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals), len(vals), len(rows) - len(good(rows))


def failed_text(rows):
    return "not run" if not rows else "failed"


def runs_note(rows):
    bad = len(rows) - len(good(rows))
    return " (%d of %d runs failed)" % (bad, len(rows)) if bad and good(rows) else ""


def with_range(rows, value, fmt, unit=""):
    s = stats(rows, value)
    if s is None:
        return failed_text(rows)
    med, lo, hi, n, _ = s
    text = fmt(med) + unit
    if n > 1:
        text += " (%s–%s)" % (fmt(lo), fmt(hi))
    return text + runs_note(rows)


def lat_unit(values):
    top = max(values)
    if top < 1000:
        return "us", 1
    if top < 1e7:
        return "ms", 1e3
    return "s", 1e6


def lat_pair(rows, qs=("p50", "p99")):
    """'p50 / p99 UNIT', each a median with its range over the runs."""
    ok = good(rows)
    if not ok:
        return failed_text(rows)
    unit, div = lat_unit([r["json"]["latency_us"][q] for r in ok for q in qs])
    parts = []
    for q in qs:
        med, lo, hi, n, _ = stats(rows, lat(q))
        text = fmt_num(med / div)
        if n > 1:
            text += " (%s–%s)" % (fmt_num(lo / div), fmt_num(hi / div))
        parts.append(text)
    text = " / ".join(parts) + " " + unit
    late = sum(1 for r in ok if "produce" in r["json"] and behind(r))
    if late:
        text += " (behind in %d of %d)" % (late, len(ok))
    return text + runs_note(rows)


def median_of(rows, value):
    s = stats(rows, value)
    return s[0] if s else None


def pick_median(rows, value):
    """The good run whose VALUE is the median (the lower one of two)."""
    ok = sorted(good(rows), key=value)
    return ok[(len(ok) - 1) // 2] if ok else None


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def size_name(size):
    return "1 KiB" if size == "1024" else "%s B" % size


# ---- the report ----------------------------------------------------------------

class Report:
    def __init__(self, results, charts, linkbase):
        self.rows = read_index(os.path.join(results, "index.tsv"))
        self.meta = {}
        with open(os.path.join(results, "meta.tsv")) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("\t")
                self.meta[key] = value
        self.charts = charts
        self.linkbase = linkbase
        self.chart_errors = []
        self.pcts = [int(p) for p in self.meta.get("lat_pcts", "25 50 75").split()]

    # -- pieces

    def limit(self, tag):
        rows = good(select(self.rows, "limit", tag=tag))
        return limit_value(rows[0]["json"])[1] if rows else None

    def limit_text(self, tag):
        rows = select(self.rows, "limit", tag=tag)
        if not rows:
            return "not run"
        if rows[0]["status"] != "ok":
            return "failed (%s)" % rows[0]["reason"]
        v = self.limit(tag)
        if tag == "fio-sync":
            pct = v["sync"]["lat_ns"]["percentile"]
            wpct = v["write"]["clat_ns"]["percentile"]
            return "fdatasync %s / %s; the write before it %s / %s" % (
                fmt_us(pct["50.000000"] / 1e3), fmt_us(pct["99.000000"] / 1e3),
                fmt_us(wpct["50.000000"] / 1e3), fmt_us(wpct["99.000000"] / 1e3))
        return "%s MB/s" % fmt_num(v)

    def chart(self, name, alt, runs, only, title, value=headline_mb):
        """Draw one chart from (label, rows) pairs, each cell's median run;
        return a markdown image line (or a note why there is none)."""
        args = []
        for label, rows in runs:
            r = pick_median(rows, value)
            if r is not None:
                args.append("%s=%s" % (label, r["path"]))
        if not args:
            return "(chart %s: no good runs)" % name
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import plot  # tests/bench/plot.py; only the report draws
        try:
            written = plot.draw(self.charts, args, prefix=name, only=[only], title=title)
        except (RuntimeError, OSError, SystemExit) as e:
            self.chart_errors.append("%s: %s" % (name, e))
            return "(chart %s failed: %s)" % (name, e)
        if not written:
            return "(chart %s: nothing to draw)" % name
        return "![%s](%s)" % (alt, os.path.relpath(written[0], self.linkbase))

    def cell(self, kind, v, parts, size, tag=None):
        return select(self.rows, kind, v, parts, size, tag)

    # -- sections

    def header(self):
        m = self.meta
        out = ["## Sluice beside Redis Streams and NATS JetStream (issue 6), %s" % m["date"], ""]
        if m["mode"] == "smoke":
            out += ["**SMOKE RUN** (SMOKE=1: 1 run of %s s, tiny catch-up): a check of the"
                    " script, not a measurement; do not quote these numbers." % m["seconds"], ""]
        out += [
            "Command: `%s` (everything below in one run, on loopback)." % m["command"],
            "Machine: %s cores (%s), %s GiB, kernel %s; data on %s." % (
                m["cores"], m["cpu"], m["memory_gib"], m["kernel"], m["disk"]),
            "Each figure is the median of %s run%s of %s s (%s), with the range over the"
            " runs in parentheses; every run had a freshly started server with an empty"
            " data directory. Single client (one producer, one consumer) throughout." % (
                m["runs"], "" if m["runs"] == "1" else "s", m["seconds"],
                "no warm-up" if float(m["warmup"]) == 0 else
                "the first %s s a warm-up, not measured" % m["warmup"]),
            "",
            "Versions: %s (release build); %s; %s; clients in sluice-bench: librdkafka %s,"
            " hiredis %s, cnats %s; %s; %s." % (
                m["sluiced"], m["redis"], m["nats"], m["librdkafka"], m["hiredis"],
                m["cnats"], m["iperf3"], m["fio"]),
            "",
            "Core pinning: this script pins nothing. Broker, peers and the sluice-bench"
            " client share all %s cores. sluiced runs one shard thread per core, each"
            " pinned to its core (its default: `shard.cpus` empty); its io_uring workers,"
            " redis-server, nats-server and the client are placed by the scheduler. Only"
            " the pinned iperf3 row pins (server on CPU 0, client on CPU 1)." % m["cores"],
        ]
        if m.get("sluiced_args"):
            out.append("sluiced had the extra arguments `%s`." % m["sluiced_args"])
        return out

    def durability(self):
        said = {}
        for r in good(self.rows):
            server = r["json"].get("server", {}) if r["json"] else {}
            if server.get("durability") and r["variant"] not in said:
                said[r["variant"]] = server["durability"]
        nats = said.get("nats", "NATS 2.9 JetStream does not fsync per message").rstrip(".")
        return ["", "### Durability", "",
                "- **Sluice** (`flush=always`): a produce with acks=1 or acks=all is"
                " answered only once its batch is on disk (`fdatasync`, group commit)."
                " With one broker acks=all waits for no other replica, so both rows are"
                " equally durable.",
                "- **Redis AOF everysec**: XADD is answered once in the AOF buffer; the AOF"
                " is fsynced about once a second, so up to a second of acknowledged records"
                " can be lost when the machine fails (nearest Sluice setting:"
                " `flush=interval`). Redis has no acks: both Redis rows are its fsync policy.",
                "- **Redis AOF always**: the AOF is written and fsynced before the replies"
                " of each event-loop turn go out (a group commit, like Sluice's"
                " `flush=always`).",
                "- **NATS JetStream** (file storage; no per-publish durability setting):"
                " %s. The nearest Sluice setting is `flush=none`." % nats]

    def limits(self):
        rows = [
            ("iperf3 loopback TCP, 127.0.0.1, one stream", self.limit_text("iperf")),
            ("iperf3 pinned loopback TCP (server CPU 0, client CPU 1)", self.limit_text("iperf-pinned")),
            ("fio io_uring O_DIRECT sequential write, 1 MiB blocks, iodepth 8", self.limit_text("fio-seq")),
            ("fio 16 KiB write + fdatasync (io_uring, O_DIRECT), p50 / p99", self.limit_text("fio-sync")),
        ]
        return ["", "### The machine's limits (same run)", "", table(("measure", "value"), rows)]

    def best_durable(self):
        """(parts, median MB/s) of Sluice acks=all, 1 KiB, best partition count."""
        best = None
        for parts in PARTS:
            mb = median_of(self.cell("max", "sluice-acksall", parts, "1024"), produce_mb)
            if mb is not None and (best is None or mb > best[1]):
                best = (parts, mb)
        return best

    def goals(self):
        out = ["", "### Goals (issue 6)", "",
               "1 KiB records, broker and client sharing the cores. Sluice's durable"
               " figures are acks=all with `flush=always` at the partition count where it"
               " produced most; the peers are compared on that same workload."]
        rows = []
        best = self.best_durable()
        parts = best[0] if best else "1"
        where = "1 KiB, %s partition%s" % (parts, "" if parts == "1" else "s")

        def at_least(goal, target, measured, shown, target_shown):
            if measured is None or target is None:
                rows.append((goal, target_shown, shown or "failed", "-", "cannot tell"))
                return
            r = measured / target
            verdict = ("met (%.2fx the goal)" % r if r >= 1 else
                       "**not met**: %.0f%% of the goal, needs %.1fx" % (100 * r, 1 / r))
            rows.append((goal, target_shown, shown, "%.2f" % r, verdict))

        def at_most(goal, target, measured, shown, target_shown):
            if measured is None:
                rows.append((goal, target_shown, "failed", "-", "cannot tell"))
                return
            r = measured / target
            verdict = ("met (%.0f%% of the limit)" % (100 * r) if r <= 1 else
                       "**not met**: %.1fx the limit" % r)
            rows.append((goal, target_shown, shown, "%.2f" % r, verdict))

        mb = best[1] if best else None
        at_least("durable produce (%s)" % where, 1000, mb,
                 mb is not None and "%s MB/s" % fmt_num(mb), ">= 1 GB/s")
        fio = self.limit("fio-seq")
        at_least("durable produce against the disk", fio and 0.4 * fio,
                 mb, mb is not None and fio and "%s MB/s = %.2fx fio" % (fmt_num(mb), mb / fio),
                 ">= 0.4x fio sequential write" + (" (%s MB/s)" % fmt_num(0.4 * fio) if fio else ""))
        for peer, factor in (("redis-everysec", 4), ("redis-always", 10), ("nats", 5)):
            other = median_of(self.cell("max", peer, parts, "1024"), produce_mb)
            ratio = mb / other if mb is not None and other else None
            at_least("produce against %s (%s)" % (NAME[peer], where), factor, ratio,
                     ratio is not None and "%s / %s MB/s = %.1fx" % (fmt_num(mb), fmt_num(other), ratio),
                     ">= %dx" % factor)
        hot = None
        for v in ("sluice-acks1", "sluice-acksall"):
            for p in PARTS:
                x = median_of(self.cell("e2e", v, p, "1024"), headline_mb)
                if x is not None and (hot is None or x > hot[0]):
                    hot = (x, "%s, %s partition%s" % (NAME[v], p, "" if p == "1" else "s"))
        hot_mb = hot[0] if hot else None
        at_least("hot-tail consume (best Sluice row: %s)" % (hot[1] if hot else "-"), 2000, hot_mb,
                 hot_mb is not None and "%s MB/s" % fmt_num(hot_mb), ">= 2 GB/s")
        tcp = self.limit("iperf-pinned")
        at_least("hot-tail consume against pinned loopback TCP", tcp and tcp / 2, hot_mb,
                 hot_mb is not None and tcp and "%s MB/s = %.2fx TCP" % (fmt_num(hot_mb), hot_mb / tcp),
                 ">= 0.5x pinned iperf3" + (" (%s MB/s)" % fmt_num(tcp / 2) if tcp else ""))
        one = self.cell("one", "sluice-acksall", "1", "1024")
        for q, limit in (("p50", 200), ("p99", 300)):
            x = median_of(one, lat(q))
            at_most("one request in flight, durable, %s" % q, limit, x,
                    x is not None and fmt_us(x), "<= %d us" % limit)
        cpu = median_of(self.cell("max", "sluice-acksall", parts, "1024"), cpu_per_gb)
        at_most("broker CPU per GB produced (%s)" % where, 1.0, cpu,
                cpu is not None and "%.2f core-s/GB" % cpu, "<= 1 core-s/GB")
        out += ["", table(("goal", "target", "measured", "measured / target", "verdict"), rows)]
        out += ["", "Hot-tail consume is the consumer's rate in the e2e run below, so it can"
                " be no faster than the producer beside it on the same cores."]
        return out

    def produce(self):
        rows = []
        for size in SIZES:
            for parts in PARTS:
                for v, name in VARIANTS:
                    c = self.cell("max", v, parts, size)
                    rows.append((size_name(size), parts, name,
                                 with_range(c, produce_mb, fmt_num),
                                 with_range(c, lambda r: r["json"]["produce"]["records_per_s"], fmt_num),
                                 lat_pair(c),
                                 with_range(c, cpu_per_gb, lambda x: "%.2f" % x)))
        out = ["", "### Max-rate produce, single client", "",
               "Kafka client: librdkafka defaults of sluice-bench (linger 5 ms, 1 MiB"
               " batches, 5 requests in flight); Redis: 64 pipelined XADDs; NATS: 4096"
               " async publishes pending. Ack latency at max rate is mostly the client's"
               " own queue. Server CPU: user + system time of the server process (all its"
               " threads) over the run, per GB of values produced; on loopback part of"
               " TCP's receive work runs in the sending client's context, so it is"
               " charged to the client, not the server.", "",
               table(("records", "partitions", "system", "MB/s", "records/s",
                      "ack p50 / p99", "server core-s per GB"), rows), ""]
        for size, tag in (("1024", "1k"), ("100", "100b")):
            runs = [("%s %sp" % (NAME[v], p), self.cell("max", v, p, size))
                    for p in PARTS for v, _ in VARIANTS]
            out.append(self.chart("produce-" + tag, "max-rate produce, %s records" % size_name(size),
                                  runs, "compare", "Max-rate produce, %s records" % size_name(size),
                                  produce_mb))
        out.append(self.chart("produce-1k-16p", "produce throughput over time",
                              [(NAME[v], self.cell("max", v, "16", "1024")) for v, _ in VARIANTS],
                              "throughput", "Max-rate produce, 1 KiB, 16 partitions", produce_mb))
        return out

    def latency(self):
        rows = []
        for size in SIZES:
            for parts in PARTS:
                for v, name in VARIANTS:
                    rate = median_of(self.cell("max", v, parts, size),
                                     lambda r: r["json"]["records_per_s"])
                    cells = [lat_pair(self.cell("lat", v, parts, size, "at%d" % p)) for p in self.pcts]
                    rows.append([size_name(size), parts, name,
                                 fmt_num(rate) if rate is not None else "-"] + cells)
        out = ["", "### Produce ack latency at %s%% of each system's own max" % (
            " / ".join(str(p) for p in self.pcts)), "",
               "Open loop at a fixed rate (`--rate`, a share of the median max records/s"
               " above); latency from each record's scheduled send time to its ack"
               " (coordinated omission corrected), so it includes the client's batching"
               " (Kafka: linger 5 ms). \"behind\": the client sent under %d%% of the"
               " rate, so the latency is its queue." % (BEHIND * 100), "",
               table(["records", "partitions", "system", "max records/s"] +
                     ["%d%%: p50 / p99" % p for p in self.pcts], rows), ""]
        for parts in PARTS:
            out.append(self.chart(
                "latency50-1k-%sp" % parts, "latency at half of max, %s partition(s)" % parts,
                [(NAME[v], self.cell("lat", v, parts, "1024", "at50")) for v, _ in VARIANTS],
                "latency", "1 KiB, %s partition(s), 50%% of max" % parts, lat("p50")))
        return out

    def hot_tail(self):
        rows = []
        for size in SIZES:
            for parts in PARTS:
                for v, name in VARIANTS:
                    c = self.cell("e2e", v, parts, size)
                    rows.append((size_name(size), parts, name, with_range(c, headline_mb, fmt_num),
                                 with_range(c, produce_mb, fmt_num), lat_pair(c)))
        out = ["", "### Hot-tail consume", "",
               "`e2e` at max rate: one producer as fast as it goes and one consumer"
               " starting at the end, reading each record right after it was written;"
               " end-to-end latency from the send time stamped in each value.", "",
               table(("records", "partitions", "system", "consume MB/s", "produce MB/s",
                      "end to end p50 / p99"), rows), ""]
        out.append(self.chart("hot-tail-1k", "hot-tail consume, 1 KiB",
                              [("%s %sp" % (NAME[v], p), self.cell("e2e", v, p, "1024"))
                               for p in PARTS for v, _ in VARIANTS],
                              "compare", "Hot-tail consume, 1 KiB records"))
        out.append(self.chart("hot-tail-1k-16p", "hot-tail throughput over time",
                              [(NAME[v], self.cell("e2e", v, "16", "1024")) for v, _ in VARIANTS],
                              "throughput", "e2e, 1 KiB, 16 partitions"))
        return out

    def one_in_flight(self):
        rows = []
        for v, name in VARIANTS:
            c = self.cell("one", v, "1", "1024")
            rows.append((name, lat_pair(c, ("p50", "p99", "p999"))))
        opts = {"kafka": "`--inflight 1 --linger-ms 0`", "redis": "`--pipeline 1`",
                "nats": "`--max-pending 1`"}
        out = ["", "### One request in flight", "",
               "1 KiB records, 1 partition, %s records/s, one request at a time (Kafka"
               " %s, Redis %s, NATS %s). The durable goal is the Sluice acks=all row;"
               " Redis AOF always is the peer with the same durability." % (
                   fmt_num(float(self.meta["one_rate"])), opts["kafka"], opts["redis"], opts["nats"]),
               "", table(("system", "ack p50 / p99 / p99.9"), rows), ""]
        out.append(self.chart("one-in-flight", "one in flight latency",
                              [(NAME[v], self.cell("one", v, "1", "1024")) for v, _ in VARIANTS],
                              "latency", "One request in flight, 1 KiB", lat("p50")))
        return out

    def catch_up(self):
        rows = []
        systems = (("sluice-acks1", "Sluice"), ("redis-everysec", "Redis"), ("nats", "NATS JetStream"))
        for v, name in systems:
            fill = select(self.rows, "catchup-write", v)
            written = "-"
            if good(fill):
                written = fmt_size(good(fill)[0]["json"]["bytes"])
            row = [name, written]
            for parts in PARTS:
                row.append(with_range(self.cell("catchup", v, parts, "1024"), headline_mb, fmt_num))
            for parts in PARTS:
                c = self.cell("catchup", v, parts, "1024")
                row.append(with_range(c, cpu_per_gb, lambda x: "%.2f" % x) if c else "-")
            rows.append(row)
        m = self.meta
        out = ["", "### Catch-up consume", "",
               "%s of 1 KiB records written (Redis: %s, since it keeps its streams in"
               " memory), then read from the start by one consumer, %s time%s. %s"
               " Redis was the AOF everysec server (reads do not touch the AOF)." % (
                   fmt_size(m["catchup_bytes"]), fmt_size(m["redis_catchup_bytes"]), m["runs"],
                   "" if m["runs"] == "1" else "s", cache_note(m)), "",
               table(("system", "written", "1 partition MB/s", "16 partitions MB/s",
                      "server core-s per GB read, 1 p", "16 p"), rows), ""]
        out.append(self.chart("catch-up", "catch-up consume",
                              [("%s %sp" % (name, p), self.cell("catchup", v, p, "1024"))
                               for v, name in systems for p in PARTS],
                              "compare", "Catch-up consume, 1 KiB records"))
        return out

    def failures(self):
        bad = [r for r in self.rows if r["status"] != "ok"]
        if not bad:
            return []
        out = ["", "### Failed measurements", ""]
        what = dict(KINDS)
        for r in bad:
            where = [what.get(r["kind"], r["kind"]).split(":")[0], NAME.get(r["variant"], r["variant"])]
            if r["kind"] == "limit":
                where = [r["tag"]]
            else:
                where.append("%s, %s partition%s" % (size_name(r["size"]), r["parts"],
                                                      "" if r["parts"] == "1" else "s"))
            if r["kind"] == "lat":
                where.append(r["tag"].replace("at", "") + "% of max")
            out.append("- %s, run %s: %s" % (", ".join(where), r["run"], r["reason"]))
        return out

    def commands(self):
        m = self.meta
        out = ["", "### Commands", "",
               "Servers, one per measurement (DIR a fresh directory under DATA_PARENT_DIR):", ""]
        for s in ("sluice", "redis-everysec", "redis-always", "nats"):
            out.append("    " + m["cmd_" + s])
        out += ["", "Machine limits:", ""]
        for r in select(self.rows, "limit"):
            out.append("    " + r["cmd"])
        out += ["", "Clients (the Redis lines ran against both Redis servers; P is 1"
                " and 16, S 1024 and 100):", ""]
        for kind, what in KINDS:
            shown = []
            for r in select(self.rows, kind):
                if r["cmd"] in ("", "-"):
                    continue
                cmd = r["cmd"]
                if kind in ("max", "lat", "e2e"):
                    cmd = re.sub(r"--partitions \d+", "--partitions P", cmd)
                    cmd = re.sub(r"--record-size \d+", "--record-size S", cmd)
                if kind == "lat":
                    cmd = re.sub(r"--rate \d+", "--rate R", cmd)
                if kind in ("catchup", "catchup-write"):
                    cmd = re.sub(r"--partitions \d+", "--partitions P", cmd)
                if cmd not in shown:
                    shown.append(cmd)
            if shown:
                out += ["    # %s" % what] + ["    " + c for c in shown]
        return out

    def render(self):
        out = self.header() + self.durability() + self.limits() + self.goals()
        out += self.produce() + self.latency() + self.hot_tail()
        out += self.one_in_flight() + self.catch_up() + self.failures() + self.commands()
        if self.chart_errors:
            out += ["", "Charts that failed: " + "; ".join(self.chart_errors)]
        return "\n".join(out) + "\n"


def main(argv):
    cmds = {"check": (2, cmd_check), "check-limit": (2, cmd_check_limit),
            "median-rate": (6, cmd_median_rate)}
    if len(argv) > 1 and argv[1] in cmds and len(argv) == cmds[argv[1]][0] + 1:
        return cmds[argv[1]][1](*argv[2:])
    if len(argv) == 5 and argv[1] == "report":
        rep = Report(argv[2], argv[3], argv[4])
        sys.stdout.write(rep.render())
        return 1 if rep.chart_errors else 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

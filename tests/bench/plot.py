#!/usr/bin/env python3
"""Charts from sluice-bench --json results, drawn with gnuplot.

    tests/bench/plot.py OUTDIR [LABEL=]RESULT.json ...

Each RESULT file holds sluice-bench's stdout (its last JSON line is used),
so `sluice-bench --json ... > r.json` is enough. LABEL names the run in the
legends (default: "<target> <workload>", then the file name if two clash).
Writes, in OUTDIR:

  throughput.png  MB/s over time, one line per run and side (produce,
                  consume), from the per-second "series"
  latency.png     latency percentile curve per run (the headline latency:
                  ack for produce, end to end for e2e), x = percentile on a
                  1/(1-q) log axis as HDR histograms are drawn
  compare.png     bar chart of each run's headline MB/s, e.g. Sluice beside
                  Redis and NATS for the same workload

Prints the paths written. Exit 1 if gnuplot is missing or fails, 2 on bad
arguments. Python's standard library and gnuplot only.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def load(arg):
    label, _, path = arg.rpartition("=") if "=" in arg else ("", "", arg)
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.strip().startswith("{")]
    if not lines:
        sys.exit("plot.py: %s has no JSON line" % path)
    r = json.loads(lines[-1])
    return label or "%s %s" % (r["target"], r["workload"]), path, r


def labels_unique(runs):
    seen = {}
    for label, _, _ in runs:
        seen[label] = seen.get(label, 0) + 1
    return [(l if seen[l] == 1 else "%s (%s)" % (l, os.path.basename(p)), p, r)
            for l, p, r in runs]


def quote(s):
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def write(tmp, name, rows):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for row in rows:
            f.write(" ".join(str(v) for v in row) + "\n")
    return path


def throughput(tmp, out, runs):
    plots = []
    for i, (label, _, r) in enumerate(runs):
        s = r.get("series", {})
        for side in ("produce", "consume"):
            ys = s.get(side + "_mb_per_s")
            if not ys:
                continue
            d = write(tmp, "tput%d%s.dat" % (i, side), zip(s["t"], ys))
            plots.append("%s using 1:2 with linespoints title %s" % (
                quote(d), quote("%s: %s" % (label, side))))
    return """set output %s
set title "Throughput over time"
set xlabel "seconds"
set ylabel "MB/s"
set yrange [0:*]
set key outside bottom center horizontal
set grid
plot %s
""" % (quote(out), ", ".join(plots))


def latency(tmp, out, runs):
    plots = []
    for i, (label, _, r) in enumerate(runs):
        curve = [(q, us) for q, us in r.get("latency_curve", []) if q < 1 and us > 0]
        if r.get("latency") == "none" or not curve:
            continue
        d = write(tmp, "lat%d.dat" % i, [(1 / (1 - q), us) for q, us in curve])
        plots.append("%s using 1:2 with lines lw 2 title %s" % (
            quote(d), quote("%s (%s)" % (label, r["latency"]))))
    if not plots:
        return None
    return """set output %s
set title "Latency by percentile"
set logscale x
set logscale y
set xlabel "percentile"
set ylabel "latency (us)"
set xtics ("0%%%%" 1, "90%%%%" 10, "99%%%%" 100, "99.9%%%%" 1000, "99.99%%%%" 10000, "99.999%%%%" 100000)
set key top left
set grid
plot %s
""" % (quote(out), ", ".join(plots))


def compare(tmp, out, runs):
    rows = [(i, r["mb_per_s"], quote(label)) for i, (label, _, r) in enumerate(runs)]
    d = write(tmp, "bars.dat", rows)
    return """set output %s
set title "Throughput (MB/s)"
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set xtics rotate by -20
set grid y
unset key
plot %s using 1:2:xtic(3) with boxes, '' using 1:2:(sprintf("%%.1f", $2)) with labels offset 0,1
""" % (quote(out), quote(d))


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) > 1 and argv[1] in ("-h", "--help") else 2
    if shutil.which("gnuplot") is None:
        print("plot.py: gnuplot not found (Debian: gnuplot-nox)", file=sys.stderr)
        return 1
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    runs = labels_unique([load(a) for a in argv[2:]])
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("throughput.png", throughput), ("latency.png", latency),
                         ("compare.png", compare)):
            out = os.path.join(outdir, name)
            script = fn(tmp, out, runs)
            if script is None:
                continue
            script = "set terminal pngcairo size 1000,600 font ',10'\n" + script
            p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
            if p.returncode != 0:
                print("plot.py: gnuplot failed on %s: %s" % (name, p.stderr.strip()),
                      file=sys.stderr)
                return 1
            written.append(out)
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

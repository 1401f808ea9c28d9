#!/usr/bin/env python3
"""Charts from sluice-bench --json results, drawn with gnuplot.

    tests/bench/plot.py [--prefix P] [--only CHARTS] [--title T] OUTDIR [LABEL=]RESULT.json ...

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

--prefix P writes P-throughput.png and so on instead, so several sets fit
in one directory; --only draws a comma-separated subset of throughput,
latency, compare; --title T puts T before each chart's own title.

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


def throughput(tmp, out, runs, title):
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
set title %s
set xlabel "seconds"
set ylabel "MB/s"
set yrange [0:*]
set key outside bottom center horizontal
set grid
plot %s
""" % (quote(out), quote(title + "Throughput over time"), ", ".join(plots))


def latency(tmp, out, runs, title):
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
set title %s
set logscale x
set logscale y
set xlabel "percentile"
set ylabel "latency (us)"
set xtics ("0%%%%" 1, "90%%%%" 10, "99%%%%" 100, "99.9%%%%" 1000, "99.99%%%%" 10000, "99.999%%%%" 100000)
set key top left
set grid
plot %s
""" % (quote(out), quote(title + "Latency by percentile"), ", ".join(plots))


def compare(tmp, out, runs, title):
    rows = [(i, r["mb_per_s"], quote(label)) for i, (label, _, r) in enumerate(runs)]
    d = write(tmp, "bars.dat", rows)
    return """set output %s
set title %s
set style fill solid 0.8 border -1
set boxwidth 0.6
set yrange [0:*]
set xtics rotate by -20
set grid y
unset key
plot %s using 1:2:xtic(3) with boxes, '' using 1:2:(sprintf("%%.1f", $2)) with labels offset 0,1
""" % (quote(out), quote(title + "Throughput (MB/s)"), quote(d))


CHARTS = (("throughput", throughput), ("latency", latency), ("compare", compare))


def draw(outdir, args, prefix="", only=None, title=""):
    """Draw the charts for results ARGS ([LABEL=]PATH) into OUTDIR; return
    the paths written. Raises RuntimeError if gnuplot fails."""
    os.makedirs(outdir, exist_ok=True)
    runs = labels_unique([load(a) for a in args])
    title = title + ": " if title else ""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in CHARTS:
            if only and name not in only:
                continue
            out = os.path.join(outdir, "%s%s.png" % (prefix + "-" if prefix else "", name))
            script = fn(tmp, out, runs, title)
            if script is None:
                continue
            script = "set terminal pngcairo size 1000,600 font ',10'\n" + script
            p = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
            if p.returncode != 0:
                raise RuntimeError("gnuplot failed on %s: %s" % (out, p.stderr.strip()))
            written.append(out)
    return written


def main(argv):
    opts = {"--prefix": "", "--only": "", "--title": ""}
    args = argv[1:]
    while args and args[0] in opts and len(args) > 1:
        opts[args[0]] = args[1]
        args = args[2:]
    if len(args) < 2 or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args and args[0] in ("-h", "--help") else 2
    only = [c for c in opts["--only"].split(",") if c]
    bad = [c for c in only if c not in dict(CHARTS)]
    if bad:
        print("plot.py: unknown chart %s (throughput, latency, compare)" % bad[0], file=sys.stderr)
        return 2
    if shutil.which("gnuplot") is None:
        print("plot.py: gnuplot not found (Debian: gnuplot-nox)", file=sys.stderr)
        return 1
    try:
        written = draw(args[0], args[1:], opts["--prefix"], only, opts["--title"])
    except (RuntimeError, OSError) as e:
        print("plot.py: %s" % e, file=sys.stderr)
        return 1
    for w in written:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env bash
# Recovery time: how long sluiced takes from exec until it answers an
# ApiVersions request, on a data directory of 1 GiB and of 20 GiB, after a
# clean stop and after kill -9 under load. The claim under test: start-up
# reads the unflushed tail of each partition, not its whole history, so the
# figures are about the same for 1 GiB and 20 GiB.
#
#   tests/bench/recovery.sh [REPORT.md]
#
# Writes a markdown report to REPORT.md, or to stdout; progress goes to
# stderr. Builds nothing: it runs $BUILD/dataplane/sluiced and
# $BUILD/tools/sluice-bench (BUILD defaults to build-release; make it with
#   meson setup build-release -Dbuildtype=release && meson compile -C build-release).
#
# For each size in RECOVERY_SIZES_GIB (default "1 20"), in a fresh data
# directory under BENCH_DATA (default ./bench-data), deleted afterwards:
#   fill   sluice-bench produces SIZE GiB of 1 KiB records round-robin over
#          RECOVERY_PARTITIONS (default 8) partitions of one topic created
#          with the default segment.bytes (1 GiB), acks=1, flush=always;
#          then a clean stop.
#   clean  RECOVERY_REPEATS (default 3) times: start sluiced and time it to
#          its first ApiVersions answer, then stop it with SIGTERM.
#   kill   as many times: start sluiced, produce to the same topic at
#          RECOVERY_LOAD_RATE records/s (default 20000, about 20 MB/s: the
#          runs should not change the size under test much) for
#          RECOVERY_LOAD_S (default 5) seconds, kill -9 sluiced while the
#          load runs, then time the start on what it left.
#   long   the same with RECOVERY_LONG_LOAD_S (default 25; 0 skips it)
#          seconds of load: a crash start reads the batch headers written
#          since the partition's last producer-state snapshot (taken at a
#          clean stop and at a segment roll), so this shows whether the
#          time follows that rather than the unflushed tail.
# An empty data directory is timed first, for the fixed cost of a start.
# With RECOVERY_COLD=1, each clean and kill start is also timed with a
# cold page cache (sync, then echo 3 > /proc/sys/vm/drop_caches before the
# exec: root only, and it empties the cache of the whole machine).
#
# The time runs from just before the exec (taken by the Python driver that
# starts sluiced) to the first ApiVersions v0 response on a fresh
# connection, polled every millisecond. Phases come from sluiced's own log
# lines (millisecond timestamps): exec -> the last shard's "owns N
# partitions" line (every partition log opened and recovered) -> the
# "listening" line (all shards ready) -> the first answer.
#
# The script refuses to run unless the filesystem of BENCH_DATA has room
# for the largest size plus 15% and 5 GiB. BENCH_PORT sets the first port
# tried (default 19400).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. tests/bench/lib.sh

bench_help "$0" "${1:-}"
report_file=${1:-}
bench_binaries recovery.sh

sizes=${RECOVERY_SIZES_GIB:-"1 20"}
partitions=${RECOVERY_PARTITIONS:-8}
repeats=${RECOVERY_REPEATS:-3}
load_s=${RECOVERY_LOAD_S:-5}
long_load_s=${RECOVERY_LONG_LOAD_S:-25}
load_rate=${RECOVERY_LOAD_RATE:-20000}
cold=${RECOVERY_COLD:-0}
record_size=1024
GiB=$((1024 * 1024 * 1024))

parent=${BENCH_DATA:-$root/bench-data}
mkdir -p "$parent"

# Room for the largest size, plus 15% for record and batch overhead and
# the indexes, plus 5 GiB for the kill runs' extra load (up to 12 runs of
# 25 s at 20 MB/s) and the rest of the machine.
largest=0
for s in $sizes; do
  case "$s" in '' | *[!0-9]*) echo "recovery.sh: sizes are whole GiB: '$s'" >&2; exit 2 ;; esac
  [ "$s" -le "$largest" ] || largest=$s
done
need=$((largest * GiB * 115 / 100 + 5 * GiB))
avail=$(df --output=avail -B1 "$parent" | tail -1 | tr -d ' ')
if [ "$avail" -lt "$need" ]; then
  echo "recovery.sh: $parent has $((avail / GiB)) GiB free, $((need / GiB)) GiB needed for" \
    "$largest GiB of data: refusing (free some space or set BENCH_DATA/RECOVERY_SIZES_GIB)" >&2
  exit 2
fi
if [ "$cold" = 1 ] && ! (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
  echo "recovery.sh: RECOVERY_COLD=1 needs to write /proc/sys/vm/drop_caches (root)" >&2
  exit 2
fi

work=$(mktemp -d "$parent/recovery.XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(/usr/bin/python3 - "${BENCH_PORT:-19400}" <<'EOF'
import socket, sys
for p in range(int(sys.argv[1]), 65000):
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))
        print(p)
        break
    except OSError:
        pass
EOF
)

# The driver: starts sluiced itself so that the clock starts at the exec,
# times it to its first ApiVersions answer, and runs the kill -9 rounds.
cat >"$work/driver.py" <<'EOF'
import ctypes, datetime, json, os, re, signal, socket, struct, subprocess, sys, time

sluiced, bench, data, port, mode, repeats, load_s, load_rate, parts, cold = sys.argv[1:11]
port, repeats, load_s, parts, cold = int(port), int(repeats), float(load_s), int(parts), cold == "1"
args = [sluiced, "--listen", "127.0.0.1:%d" % port, "--data-dir", data, "--set", "flush=always"]
log_path = data.rstrip("/") + ".log"
CLIENT = b"recovery-bench"
API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, 7, len(CLIENT)) + CLIENT
FRAME = struct.pack(">i", len(API_VERSIONS_V0)) + API_VERSIONS_V0


def die_with_parent():
    """preexec_fn: SIGKILL the child if this driver dies (PR_SET_PDEATHSIG)."""
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)


def answered(deadline):
    """One ApiVersions v0 round trip on a new connection; False if refused."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        return False
    try:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        s.sendall(FRAME)
        buf = b""
        while len(buf) < 8:
            chunk = s.recv(8 - len(buf))
            if not chunk:
                return False
            buf += chunk
        return struct.unpack(">ii", buf)[1] == 7
    except OSError:
        return False
    finally:
        s.close()


def log_times(text):
    """Epoch seconds of the last shard's 'owns N partitions' line and of
    the 'listening' line."""
    def ts(line):
        t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
        return t.replace(tzinfo=datetime.timezone.utc).timestamp()
    owns = [ts(l) for l in text.splitlines() if re.search(r"shard \d+ owns \d+ partitions$", l)]
    listening = [ts(l) for l in text.splitlines() if " listening on " in l]
    return (max(owns) if owns else None), (listening[-1] if listening else None)


def start(timeout=600):
    """Start sluiced; returns (process, result dict)."""
    if cold:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    with open(log_path, "w") as log:
        t0_wall, t0 = time.time(), time.monotonic()
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                preexec_fn=die_with_parent)
    deadline = t0 + timeout
    while not answered(deadline):
        if proc.poll() is not None:
            sys.exit("sluiced exited with %d while starting: %s" % (proc.returncode, open(log_path).read()[-2000:]))
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("sluiced did not answer within %d s" % timeout)
        time.sleep(0.001)
    ms = (time.monotonic() - t0) * 1000
    owns, listening = log_times(open(log_path).read())
    r = {"ms": round(ms, 1)}
    if owns and listening:
        r["open_ms"] = round((owns - t0_wall) * 1000, 1)
        r["listening_ms"] = round((listening - t0_wall) * 1000, 1)
    return proc, r


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(120)
    if rc != 0:
        sys.exit("sluiced exited with %d on SIGTERM: %s" % (rc, open(log_path).read()[-2000:]))


def load_then_kill(proc):
    """Produce at load_rate records/s for load_s seconds, then kill -9 the broker
    while the producer is still going. Returns the bytes the broker had
    written to its data directory during the load (a bound on the tail)."""
    before = du(data)
    b = subprocess.Popen([bench, "--bootstrap", "127.0.0.1:%d" % port, "produce", "--topic", "fill",
                          "--partitions", str(parts), "--record-size", "1024",
                          "--duration", str(int(load_s) + 60), "--rate", load_rate,
                          "--acks", "1"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
    time.sleep(load_s)
    if b.poll() is not None:
        sys.exit("sluice-bench exited with %d before the kill" % b.returncode)
    proc.kill()
    proc.wait()
    b.kill()
    b.wait()
    return du(data) - before


def du(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


for i in range(repeats):
    if mode == "kill":
        proc, _ = start()
        grown = load_then_kill(proc)
        proc, r = start()
        r["load_bytes"] = grown
    else:
        proc, r = start()
    stop(proc)
    print(json.dumps(r), flush=True)
EOF

sluiced_up() { # wait for the listener of the sluiced started by fill
  local _
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || { echo "recovery.sh: sluiced exited: $(tail -3 "$1")" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "recovery.sh: sluiced not listening after 60 s" >&2
  exit 1
}

fill() { # DATA_DIR GIB
  local dir=$1 gib=$2 records
  records=$((gib * GiB / record_size))
  "$sluiced" --listen "127.0.0.1:$port" --data-dir "$dir" --set flush=always \
    --set log.level=warn >"$dir.fill.log" 2>&1 &
  pid=$!
  sluiced_up "$dir.fill.log"
  echo "recovery.sh: filling $dir with $gib GiB ($records records of $record_size B)" >&2
  local t0=$SECONDS
  "$bench" --bootstrap "127.0.0.1:$port" --json produce --topic fill --partitions "$partitions" \
    --record-size $record_size --records "$records" --acks 1 >"$work/fill.out" 2>"$work/fill.err" ||
    { echo "recovery.sh: sluice-bench failed: $(tail -2 "$work/fill.err")" >&2; exit 1; }
  kill -TERM "$pid"
  wait "$pid" || { echo "recovery.sh: sluiced exited with $? after the fill" >&2; exit 1; }
  pid=""
  echo "recovery.sh: filled in $((SECONDS - t0)) s" >&2
}

# measure LABEL DATA_DIR MODE COLD [LOAD_S]: rows of the table.
rows=""
measure() {
  local label=$1 dir=$2 mode=$3 c=$4 ls=${5:-$load_s} out
  echo "recovery.sh: [$label] $mode start x$repeats${c:+ (cold cache)}" >&2
  out=$(/usr/bin/python3 "$work/driver.py" "$sluiced" "$bench" "$dir" "$port" "$mode" "$repeats" \
    "$ls" "$load_rate" "$partitions" "${c:-0}") || { echo "recovery.sh: driver failed" >&2; exit 1; }
  rows+=$(/usr/bin/python3 - "$label" "$mode" "${c:-0}" "$(du -sb "$dir" | cut -f1)" \
    "$(find "$dir" -name '*.log' | wc -l)" "$ls" "$out" <<'EOF'
import json, statistics, sys
label, mode, cold, size, segs, load_s, out = sys.argv[1:8]
runs = [json.loads(l) for l in out.splitlines() if l.strip()]
med = lambda k: statistics.median(r[k] for r in runs) if all(k in r for r in runs) else None
fmt = lambda v: "?" if v is None else "%.0f" % v
after = {"clean": "clean stop", "kill": "kill -9 after %s s of load" % load_s,
         "empty": "(empty directory)"}[mode]
load = ""
if mode == "kill":
    load = "%.0f MB" % (statistics.median(r["load_bytes"] for r in runs) / 1e6)
print("| %s | %.2f GiB, %s segments | %s | %s | %s | **%s** | %s | %s | %s |" % (
    label, int(size) / 2**30, segs, after, "cold" if cold == "1" else "warm",
    " / ".join(fmt(r["ms"]) for r in runs), fmt(med("ms")), fmt(med("open_ms")),
    fmt(med("listening_ms")), load))
EOF
)$'\n'
}

empty=$work/empty
mkdir -p "$empty"
measure "empty" "$empty/data" empty ""
for gib in $sizes; do
  dir=$work/data-$gib
  fill "$dir" "$gib"
  for mode in clean kill; do
    measure "$gib GiB" "$dir" $mode ""
    [ "$cold" != 1 ] || measure "$gib GiB" "$dir" $mode 1
  done
  if [ "$long_load_s" -gt 0 ]; then
    measure "$gib GiB" "$dir" kill "" "$long_load_s"
    [ "$cold" != 1 ] || measure "$gib GiB" "$dir" kill 1 "$long_load_s"
  fi
  rm -rf "$dir" "$dir".*
done

report=$(cat <<EOT
## Recovery time, $(date -u +%Y-%m-%d)

Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,
kernel $(uname -r); data on $(df --output=source,fstype "$work" | tail -1 | xargs).
sluiced $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), build $(basename "$build"), default shards (one per CPU), flush=always.

Data: one topic of $partitions partitions, default segment.bytes (1 GiB), 1 KiB
records produced round-robin by sluice-bench (acks=1). "clean stop": SIGTERM,
then start. "kill -9 after N s of load": start, sluice-bench produces
$load_rate records/s for N s, kill -9 while it runs, then start (the "load"
column is what the data directory grew by during those seconds). Times from the exec to:
the last shard's "owns N partitions" log line (every log opened and
recovered), the "listening" line, and the first ApiVersions answer
(median of $repeats, and each run). Warm: the page cache as the previous step
left it; cold: dropped just before the exec.

Command: \`tests/bench/recovery.sh\` (RECOVERY_SIZES_GIB="$sizes", RECOVERY_PARTITIONS=$partitions, RECOVERY_REPEATS=$repeats, RECOVERY_LOAD_S=$load_s, RECOVERY_LONG_LOAD_S=$long_load_s, RECOVERY_LOAD_RATE=$load_rate, RECOVERY_COLD=$cold)

| data | on disk | after | page cache | runs, ms | median ms to ApiVersions answer | median ms to partitions open | median ms to listening line | load before the kill |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows}
EOT
)
if [ -n "$report_file" ]; then
  printf '%s\n' "$report" >"$report_file"
  echo "recovery.sh: report in $report_file" >&2
else
  printf '%s\n' "$report"
fi

#!/usr/bin/env bash
# Produce latency with and without a big compaction on the same shard.
#
#   tests/bench/compaction.sh [DATA_PARENT_DIR]   (default: ./bench-data)
#
# One shard. A compacted topic is filled (cleaner off) with BENCH_BIG_MB of
# 1 KiB records over BENCH_KEYS keys (kcat, keyed); the data directory is
# kept aside. Then, for each configuration, the broker starts on a fresh
# copy of it and sluice-bench produces to another topic of the same shard
# at a fixed low rate (BENCH_RATE records/s, 1 request in flight, linger 0,
# acks=1) for BENCH_DURATION s while the cleaner works through the big
# topic. The first row is the same run with the cleaner off.
#
# Prints a markdown section for docs/BENCHMARKS.md. Measures, asserts
# nothing. Needs a release build (build-release/, made here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
parent=${1:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/compact.XXXXXX")
port=${BENCH_PORT:-19292}
big_mb=${BENCH_BIG_MB:-2048}
keys=${BENCH_KEYS:-200000}
rate=${BENCH_RATE:-1000}
duration=${BENCH_DURATION:-15}
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

deploy/install-deps.sh test >/dev/null
if [ ! -d build-release ]; then
  meson setup build-release --buildtype=release -Dtests=false >/dev/null
fi
meson compile -C build-release >/dev/null
bench=build-release/tools/sluice-bench
bootstrap=127.0.0.1:$port

start_broker() { # data dir, log file, extra args...
  local data=$1 log=$2; shift 2
  build-release/dataplane/sluiced --listen $bootstrap --data-dir "$data" --shards 1 \
    --set log.cleaner.backoff.ms=200 "$@" 2>>"$log" &
  pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && return; sleep 0.1; done
  echo "sluiced did not start" >&2; exit 1
}
stop_broker() {
  kill -TERM $pid; wait $pid || true; pid=
  while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.05; done
}

# 1. The big compacted topic, written with the cleaner off.
start_broker "$work/seed" "$work/seed.log" --set log.cleaner.enable=false
/usr/bin/python3 - "$bootstrap" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
cfg = {"cleanup.policy": "compact", "segment.bytes": str(64 << 20),
       "min.cleanable.dirty.ratio": "0.01"}
for f in a.create_topics([NewTopic("big", 1, 1, config=cfg), NewTopic("lat", 1, 1)]).values():
    f.result(30)
EOF
records=$((big_mb * 1024))
/usr/bin/python3 - "$records" "$keys" <<'EOF' | kcat -P -b $bootstrap -t big -K: -X acks=1 \
  -X linger.ms=5 -X batch.num.messages=10000 -X queue.buffering.max.kbytes=262144
import sys
n, keys = int(sys.argv[1]), int(sys.argv[2])
pad = "x" * 1000
out = sys.stdout
for i in range(n):
    out.write("k%08d:%010d%s\n" % (i % keys, i, pad))
EOF
stop_broker
seed_bytes=$(du -sb "$work/seed/big-0" | cut -f1)

field() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, d))' "$1" "$2"; }
cmd_lat="$bench --bootstrap $bootstrap --json produce --topic lat --partitions 1 --record-size 1024 --duration $duration --rate $rate --linger-ms 0 --inflight 1 --acks 1"

# 2. One run per configuration, each on a fresh copy of the seed.
rows=()
run() { # label, extra broker args...
  local label=$1; shift
  rm -rf "$work/data"; cp -a "$work/seed" "$work/data"; sync
  sleep 5 # let the copy's writeback finish: the disk is shared with the run
  local log="$work/run.log"; : >"$log"
  start_broker "$work/data" "$log" "$@"
  local t0 lat cl ms
  t0=$(date +%s.%N)
  lat=$($cmd_lat | tail -1)
  # The round's log line says how long it took; wait for it (or give up).
  if [[ "$label" != "cleaner off"* ]]; then
    for _ in $(seq 600); do grep -q "compaction of big-0" "$log" && break; sleep 0.5; done
  fi
  stop_broker
  cl=$(grep -m1 "compaction of big-0" "$log" || true)
  ms=$(sed -n 's/.*, \([0-9]*\) ms$/\1/p' <<<"$cl")
  local during="-"
  if [ -n "$ms" ]; then
    during="$(/usr/bin/python3 -c 'import sys; print("%.1f s, %s" % (int(sys.argv[1]) / 1000, sys.argv[2]))' \
      "$ms" "$(sed -n 's/.*, \([0-9]* -> [0-9]* bytes\).*/\1/p' <<<"$cl")")"
  fi
  # The shard's exit line: the longest its loop was held by one cleaner step.
  local held
  held=$(sed -n 's/.*cleaner: .*step_us_max=\([0-9]*\).*/\1/p' "$log" | tail -1)
  rows+=("| $label | $(field "$lat" 'produce["latency_us"]["p50"]') / $(field "$lat" 'produce["latency_us"]["p99"]') / $(field "$lat" 'produce["latency_us"]["p999"]') / $(field "$lat" 'produce["latency_us"]["max"]') | $during | ${held:--} |")
}
for r in 1 2; do
  run "cleaner off, run $r" --set log.cleaner.enable=false
  run "cleaner on, slice 256 KiB (default), no I/O limit, run $r"
  run "cleaner on, slice 4 MiB, no I/O limit, run $r" --set log.cleaner.slice.bytes=4194304
  run "cleaner on, slice 256 KiB, io.max 100 MB/s, run $r" \
    --set log.cleaner.io.max.bytes.per.second=100000000
done

echo "## Issue 4: compaction and produce latency, $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB,"
echo "kernel $(uname -r); data on $(df --output=source,fstype "$work" | tail -1 | xargs)."
echo "Broker with 1 shard; client, cleaner and broker share the machine's cores."
echo
echo "Compacted topic: $big_mb MiB of 1 KiB records over $keys keys ($seed_bytes bytes on disk), 64 MiB segments,"
echo "min.cleanable.dirty.ratio 0.01: each run starts on a fresh copy and the cleaner begins at once."
echo "Produce to another partition of the same shard at $rate records/s, 1 KiB, acks=1, flush=always,"
echo "1 request in flight, linger 0, for $duration s from broker start."
echo
echo "| configuration | ack latency p50 / p99 / p99.9 / max (us) | cleaning round (broker's log line) | longest cleaner step (us) |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
echo "Commands:"
echo
echo "    BENCH_BIG_MB=$big_mb BENCH_KEYS=$keys BENCH_RATE=$rate BENCH_DURATION=$duration tests/bench/compaction.sh"
echo "    ${cmd_lat/--bootstrap $bootstrap/--bootstrap HOST:PORT}"

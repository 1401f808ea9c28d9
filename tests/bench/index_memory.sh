#!/usr/bin/env bash
# Index memory: what a broker holds for the offset and time indexes of
# many sealed segments. Fills a topic with SEGMENTS (default 2000) sealed
# segments of 1 MiB (log.segment.bytes=1048576, the smallest allowed) with
# an index entry per batch (log.index.interval.bytes=INTERVAL, default 0)
# and one ~170-byte batch per record: ~6,000 entries (~48 KiB of .index)
# per segment, so 2,000 of them hold about as much index as 50 segments of
# 1 GiB at the default 4 KiB interval (2 MiB of .index each). Then, REPEATS
# (default 3) times for each build, starts sluiced on that directory, and
# once it answers takes VmRSS, RssAnon and RssFile from /proc/PID/status
# (and the SIGUSR1 index counters where the build has them), then reads
# the whole topic with sluice-bench fetch and takes them again.
#
#   BEFORE_BUILD=DIR tests/bench/index_memory.sh [DATA_PARENT_DIR]
#
# BUILD (default build-release) is the build measured; BEFORE_BUILD, if
# set, a build of other code (e.g. the commit before a change) measured on
# the same files. The fill is tests/bench/index_fill of FILL_BUILD
# (default build, a build with tests): batches of one record straight
# into the partition logs, where a client would need a request per batch.
# PARTITIONS (default 40) share the segments. Prints a markdown table for
# docs/BENCHMARKS.md; the data (about SEGMENTS MiB) is deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
. tests/bench/lib.sh
bench_help "$0" "${1:-}"
bench_binaries index_memory.sh
fill=${FILL_BUILD:-build}/tests/bench/index_fill
[ -x "$fill" ] || { echo "index_memory.sh: $fill missing: build it (ninja -C build)" >&2; exit 2; }
parent=${1:-$root/bench-data}
mkdir -p "$parent"
work=$(mktemp -d "$parent/idxmem.XXXXXX")
port=${BENCH_PORT:-19294}
segments=${SEGMENTS:-2000}
parts=${PARTITIONS:-40}
interval=${INTERVAL:-0}
repeats=${REPEATS:-3}
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
args=(--set log.segment.bytes=1048576 --set log.index.interval.bytes=$interval
      --set log.retention.ms=-1)

start() { # binary
  : > "$work/sluiced.log"
  "$1" --listen 127.0.0.1:$port --data-dir "$work/data" "${args[@]}" 2>>"$work/sluiced.log" &
  pid=$!
  bench_wait_port $port
}
stop() { kill -TERM $pid; wait $pid || true; pid=; }
status_kib() { awk -v k="$1:" '$1 == k {print $2}' /proc/$pid/status; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
sealed() { find "$work/data" -name '*.log' | wc -l | awk -v p=$parts '{print $1 - p}'; }

# Fill: the broker creates the topic, then index_fill appends batches of
# one record straight into its partition logs (a client would need a
# request per batch).
start "$sluiced"
"$bench" --bootstrap 127.0.0.1:$port produce --topic idx --partitions $parts --records 1 \
  --acks 1 >/dev/null
stop
"$fill" "$work/data" idx $parts $segments 1048576 $interval
on_disk=$(du -sm "$work/data" | cut -f1)
index_mib=$(find "$work/data" \( -name '*.index' -o -name '*.timeindex' \) -printf '%s\n' |
  awk '{s += $1} END {printf "%.1f", s / 1048576}')

# One start: RSS (KiB) once it answers, then after reading everything.
measure() { # binary
  start "$1"
  sleep 1
  local rss=$(status_kib VmRSS) anon=$(status_kib RssAnon) file=$(status_kib RssFile)
  kill -USR1 $pid
  sleep 0.5
  local counters
  counters=$(grep -o 'index_mem_bytes=[0-9]* index_mapped_bytes=[0-9]*' "$work/sluiced.log" |
    awk -F'[= ]' '{m += $2; p += $4} END {if (NR) printf "%.1f / %.1f", m / 1048576, p / 1048576; else print "n/a"}')
  "$bench" --bootstrap 127.0.0.1:$port fetch --topic idx >/dev/null
  local rss2=$(status_kib VmRSS) anon2=$(status_kib RssAnon) file2=$(status_kib RssFile)
  stop
  echo "$(mib $rss) | $(mib $anon) | $(mib $file) | $counters | $(mib $rss2) | $(mib $anon2) | $(mib $file2)"
}

echo "$(sealed) sealed segments of 1 MiB over $parts partitions, $on_disk MiB on disk, $index_mib MiB of .index + .timeindex files"
echo
echo "| build | run | VmRSS MiB | RssAnon MiB | RssFile MiB | index in memory / mapped, MiB (SIGUSR1) | after reading all: VmRSS | RssAnon | RssFile |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
builds=("$build")
[ -z "${BEFORE_BUILD:-}" ] || builds=("$BEFORE_BUILD" "$build")
for r in $(seq "$repeats"); do
  for b in "${builds[@]}"; do
    echo "| ${b#"$root"/} | $r | $(measure "$b/dataplane/sluiced") |"
  done
done
